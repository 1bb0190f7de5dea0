//! The `sirena` binary as an operator runs it: `run` refuses to start without its
//! secrets, and on SIGTERM stops cleanly while pointed at the simulators.

mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

use sirena::sim::feed::{FeedSim, FeedSimConfig};
use sirena::sim::telegram::{TelegramSim, TelegramSimConfig};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

const BIN: &str = env!("CARGO_BIN_EXE_sirena");

#[test]
fn run_without_tokens_lists_every_missing_variable_in_one_run() {
    let (_tmp, config) = common::shipped_copy();
    let out = Command::new(BIN)
        .args(["run", "--config"])
        .arg(&config)
        .env_remove("TELEGRAM_BOT_TOKEN")
        .env("ALERTS_IN_UA_TOKEN", " ")
        .output()
        .expect("binary runs");
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let want = "error: 2 secrets are missing; set each environment variable and start again:\n  \
        TELEGRAM_BOT_TOKEN is not set: the Telegram bot token ([telegram] token_env)\n  \
        ALERTS_IN_UA_TOKEN is empty: the token of source alerts_in_ua (its token_env)\n";
    assert!(stderr.ends_with(want), "{stderr}");
}

#[test]
fn run_on_an_invalid_config_says_where() {
    let dir = tempfile::tempdir().expect("tempdir");
    sirena::demo::write_embedded_config(dir.path()).expect("config");
    let path = dir.path().join("sirena.toml");
    let text = std::fs::read_to_string(&path).expect("read");
    std::fs::write(&path, text.replace("poll = \"10s\"", "pol = \"10s\"")).expect("write");
    let out = Command::new(BIN).args(["run", "--config"]).arg(dir.path()).output().expect("binary runs");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("sirena.toml:") && stderr.contains("unknown field `pol`"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_answers_residents_and_stops_cleanly_on_sigterm() {
    let cancel = CancellationToken::new();
    let tracker = TaskTracker::new();
    let feed_cfg = FeedSimConfig { requests_per_min: 600, ..FeedSimConfig::default() };
    let feed_token = feed_cfg.token.clone();
    let feed = FeedSim::start(feed_cfg, cancel.clone(), &tracker).await.expect("feed sim");
    let tg_cfg = TelegramSimConfig::default();
    let tg_token = tg_cfg.token.clone();
    let telegram = TelegramSim::start(tg_cfg, cancel.clone(), &tracker).await.expect("telegram sim");

    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("config");
    sirena::demo::write_embedded_config(&config).expect("config");
    let settings = std::fs::read_to_string(config.join("sirena.toml"))
        .expect("read")
        .replace("https://api.alerts.in.ua", &feed.base_url())
        .replace("https://api.telegram.org", &telegram.base_url())
        // The first `poll` is the alerts.in.ua source's; the others are commented examples.
        .replacen("poll = \"10s\"", "poll = \"2s\"\nmax_requests_per_min = 600", 1)
        .replace("[telegram]", "[telegram]\nlong_poll = \"1s\"")
        // Tests run in parallel: each daemon listens on a port of its own.
        .replace("listen = \"127.0.0.1:8640\"", "listen = \"127.0.0.1:0\"");
    std::fs::write(config.join("sirena.toml"), settings).expect("write");

    let mut child = Command::new(BIN)
        .args(["run", "--config"])
        .arg(&config)
        .env("TELEGRAM_BOT_TOKEN", &tg_token)
        .env("ALERTS_IN_UA_TOKEN", &feed_token)
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("daemon starts");

    telegram.add_user(4001, "Оксана", Some("uk"));
    telegram.user_sends(4001, "/start");
    let replies = telegram.wait_for_sent(4001, 1, Duration::from_secs(20)).await;
    if replies.is_empty() {
        let _ = child.kill();
        let out = child.wait_with_output().expect("collect output");
        panic!("the daemon's bot never answered /start; log:\n{}", String::from_utf8_lossy(&out.stderr));
    }
    assert!(feed.requests() >= 1, "the daemon polled the feed");
    assert!(dir.path().join("sirena.db").exists(), "the store sits beside config/");

    let status = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().expect("kill runs");
    assert!(status.success());
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let exit = loop {
        if let Some(exit) = child.try_wait().expect("wait") {
            break exit;
        }
        assert!(std::time::Instant::now() < deadline, "sirena did not stop after SIGTERM");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let mut log = String::new();
    if let Some(mut err) = child.stderr.take() {
        use std::io::Read;
        let _ = err.read_to_string(&mut log);
    }
    assert!(exit.success(), "exit {exit:?}; log:\n{log}");
    assert!(log.contains("shutting down"), "{log}");
    assert!(!log.contains(&tg_token), "the bot token never reaches the log");
    cancel.cancel();
    tracker.close();
    tracker.wait().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn network_errors_are_logged_without_the_bot_token() {
    // A port that nothing listens on: bound, then released.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr");
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("config");
    sirena::demo::write_embedded_config(&config).expect("config");
    let url = format!("http://{closed}");
    let settings = std::fs::read_to_string(config.join("sirena.toml"))
        .expect("read")
        .replace("https://api.alerts.in.ua", &url)
        .replace("https://api.telegram.org", &url)
        .replace("listen = \"127.0.0.1:8640\"", "listen = \"127.0.0.1:0\"");
    std::fs::write(config.join("sirena.toml"), settings).expect("write");
    const TOKEN: &str = "987654:SECRET-token-that-must-not-leak";
    let mut child = Command::new(BIN)
        .args(["run", "--config"])
        .arg(&config)
        .env("TELEGRAM_BOT_TOKEN", TOKEN)
        .env("ALERTS_IN_UA_TOKEN", "feed-secret-that-must-not-leak")
        .env("RUST_LOG", "debug")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("daemon starts");
    // Until the bot's first request (getMe, before any getUpdates) and the first feed poll have failed (a busy machine
    // takes a while to start a debug build), reading the log as it comes.
    let stderr = child.stderr.take().expect("stderr piped");
    let (tx, lines) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stderr).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    let mut log = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let seen = |log: &[String], what: &str| log.iter().any(|l| l.contains(what));
    while !(seen(&log, "getMe failed") && seen(&log, "source poll failed")) {
        match lines.recv_timeout(deadline.saturating_duration_since(std::time::Instant::now())) {
            Ok(line) => log.push(line),
            Err(_) => break,
        }
    }
    let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
    // The reader ends when the daemon closes stderr, at exit.
    while let Ok(line) = lines.recv_timeout(Duration::from_secs(20)) {
        log.push(line);
    }
    let status = child.wait().expect("wait");
    let log = log.join("\n");
    assert!(log.contains("getMe failed"), "the failure is logged:\n{log}");
    assert!(log.contains("source poll failed"), "the feed failure is logged:\n{log}");
    assert!(!log.contains("SECRET-token") && !log.contains("feed-secret"), "a secret leaked:\n{log}");
    assert!(status.success(), "a dead network is no reason to crash: {status:?}");
}
