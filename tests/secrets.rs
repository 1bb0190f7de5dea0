//! A full demo run, logging at debug level, never prints a secret or a phone number:
//! not the bot token, the feeds' and gateways' keys, the report or webhook secrets,
//! nor the SMS residents' numbers (those appear only masked, `+38067***4501`).

use std::process::Command;

use sirena::sim::feed::FeedSimConfig;
use sirena::sim::sms::{GenericSmsSimConfig, TurboSmsSimConfig, TwilioSimConfig};
use sirena::sim::telegram::TelegramSimConfig;

#[test]
fn a_demo_run_logs_no_secret_and_no_phone_number() {
    let out = Command::new(env!("CARGO_BIN_EXE_sirena"))
        .arg("demo")
        .env("RUST_LOG", "debug")
        .current_dir(std::env::temp_dir())
        .output()
        .expect("run sirena demo");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "the demo failed:\n{stdout}\n{stderr}");
    assert!(stderr.lines().count() > 100, "debug logging was not on: {stderr}");
    let telegram = TelegramSimConfig::default().token;
    let mut secrets = vec![
        // The token, and its secret half alone (`123456:` is the bot's public id).
        telegram.clone(),
        telegram.split_once(':').map_or(telegram.clone(), |(_, s)| s.to_owned()),
        FeedSimConfig::default().token,
        TurboSmsSimConfig::default().token,
        TwilioSimConfig::default().auth_token,
        GenericSmsSimConfig::default().auth_value,
        sirena::demo::SMS_REPORT_SECRET.to_owned(),
        sirena::demo::WEBHOOK_SECRET.to_owned(),
    ];
    for phone in sirena::demo::sms_phones() {
        // With or without the plus, and the national form.
        secrets.push(phone.trim_start_matches('+').to_owned());
        secrets.push(phone.trim_start_matches("+38").to_owned());
    }
    let leaks: Vec<String> = secrets
        .iter()
        .filter_map(|s| {
            let line = stdout.lines().chain(stderr.lines()).find(|l| l.contains(s.as_str()))?;
            Some(format!("`{s}` in: {line}"))
        })
        .collect();
    assert!(leaks.is_empty(), "the demo printed secrets:\n{}", leaks.join("\n"));
}
