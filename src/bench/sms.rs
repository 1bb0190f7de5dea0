//! `sirena bench sms --recipients N [--gateway turbosms|twilio|both]`: one oblast air
//! raid to N SMS residents through one gateway, at the gateway's `per_sec`.
//!
//! Each gateway is run on its own daemon, configured with only that gateway at
//! [`PER_SEC`] (sirena's SMS lane applies one limiter at that rate, one text per
//! request). The simulator is told a little more ([`sim_limit`]): like a real
//! gateway, it must not be what holds sirena back, and loopback jitter within
//! sirena's 5 ms window margin must not turn into 429s. Its 429s are reported.
//!
//! Measured black-box from the simulator's records: `seconds` from the first accepted
//! text to the last, `rate_vs_limit = (recipients - 1) / seconds / per_sec` (the
//! first text starts the clock), `duplicates` = numbers that got more than one text,
//! `lost` = numbers that got none once the outbox drained. The limiter is a sliding
//! window, so each second's quota goes out as one burst: with k = N / per_sec windows
//! the span is k - 1 windows and the figure is about k / (k - 1) (1.02 for 5,000 at
//! 100/s).
//!
//! With `--gateway both` each gateway prints its figures block (ending with its JSON
//! line) and the report's last line is the JSON of the worst of the two: the one with
//! the most duplicates and lost texts, then the lowest `rate_vs_limit`.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::{KHARKIV_CITY, round};
use crate::alerts::AlertKind;
use crate::channels::ChannelKind;
use crate::demo::{Harness, Options, SmsKind, kharkiv_air_raid, luhansk};
use crate::messages::Lang;
use crate::regions::RegionId;
use crate::sim::sms::GenericSmsSimConfig;
use crate::sim::sms::SentSms;
use crate::sim::sms::turbosms::TurboSmsSimConfig;
use crate::sim::sms::twilio::TwilioSimConfig;
use crate::store::Import;

/// The gateways' `per_sec` in `sirena bench sms`.
pub const PER_SEC: u32 = 100;
const FIRST_NUMBER: usize = 1_000_000;

/// What the simulator allows for a gateway configured at `per_sec`: 10 % more.
pub fn sim_limit(per_sec: u32) -> u32 {
    per_sec + (per_sec / 10).max(1)
}

/// `count` SMS residents of `place`, numbered +38050 1000000 on.
pub fn sms_residents(count: usize, place: &str) -> Vec<Import> {
    let places = RegionId::parse(place).map(|p| vec![p]).unwrap_or_default();
    (0..count)
        .map(|i| Import { kind: ChannelKind::Sms, address: number(i), lang: Lang::Uk, places: places.clone() })
        .collect()
}

fn number(i: usize) -> String {
    format!("+38050{:07}", FIRST_NUMBER + i)
}

/// `sirena bench sms`: each of `gateways` in turn, at `per_sec`.
pub async fn sms(recipients: usize, gateways: &[SmsKind], per_sec: u32) -> anyhow::Result<String> {
    anyhow::ensure!(recipients >= 2, "--recipients must be at least 2");
    anyhow::ensure!(per_sec > 0, "per_sec must be at least 1");
    let mut blocks = Vec::new();
    let mut worst: Option<Value> = None;
    for &gateway in gateways {
        let (block, line) = run(recipients, gateway, per_sec).await?;
        blocks.push(block);
        let badness = |v: &Value| {
            let faults = v["duplicates"].as_u64().unwrap_or(0) + v["lost"].as_u64().unwrap_or(0);
            (faults, -v["rate_vs_limit"].as_f64().unwrap_or(0.0))
        };
        if worst.as_ref().is_none_or(|w| badness(&line) > badness(w)) {
            worst = Some(line);
        }
    }
    let mut report = blocks.join("\n");
    if gateways.len() > 1
        && let Some(w) = worst
    {
        report.push_str(&format!("\nworst of the {} gateways:\n{w}", gateways.len()));
    }
    Ok(report)
}

/// One gateway: its figures block, ending with its JSON line, and that line.
async fn run(recipients: usize, gateway: SmsKind, per_sec: u32) -> anyhow::Result<(String, Value)> {
    let limit = sim_limit(per_sec);
    let opts = Options {
        sms: vec![gateway],
        sms_per_sec: Some(per_sec),
        turbosms_sim: TurboSmsSimConfig {
            requests_per_sec: limit,
            messages_per_sec: limit.max(TurboSmsSimConfig::default().messages_per_sec),
            ..TurboSmsSimConfig::default()
        },
        twilio_sim: TwilioSimConfig { messages_per_sec: limit, ..TwilioSimConfig::default() },
        generic_sim: GenericSmsSimConfig { requests_per_sec: limit, ..GenericSmsSimConfig::default() },
        seed: sms_residents(recipients, KHARKIV_CITY),
        ..Options::default()
    };
    let mut h = Harness::start(opts).await?;
    let result = measure(&mut h, recipients, gateway, per_sec).await;
    let stats = match gateway {
        SmsKind::TurboSms => h.turbosms.as_ref().map(|s| s.stats()),
        SmsKind::Twilio => h.twilio.as_ref().map(|s| s.stats()),
        SmsKind::GenericJson | SmsKind::GenericForm => h.generic.as_ref().map(|s| s.stats()),
    };
    let counts = h.store().counts().await;
    h.shutdown().await;
    let sent = result?;
    let counts = counts?;
    let stats = stats.unwrap_or_default();

    let got = tally(&sent, recipients);
    let seconds = got.span.as_secs_f64();
    let rate = (recipients - 1) as f64 / seconds.max(1e-9);
    let ratio = rate / f64::from(per_sec);
    let name = gateway.name();
    let line = json!({
        "gateway": name,
        "recipients": recipients,
        "seconds": round(seconds, 2),
        "rate_vs_limit": round(ratio, 3),
        "duplicates": got.duplicates,
        "lost": got.lost,
        "per_sec": per_sec,
        "http_429": stats.rate_limited,
        "requests": stats.requests,
    });
    let block = format!(
        "{name}: one air raid to {recipients} SMS residents, {seconds:.1} s from the first text to the last\n\
         per_sec {per_sec} (simulator allows {limit}) → {rate:.1} texts/s, {ratio:.3} of the limit\n\
         outbox: sent {} · failed {} · expired {} · simulator: {} requests, {} accepted, {} × 429\n{line}",
        counts.sent, counts.failed, counts.expired, stats.requests, stats.accepted, stats.rate_limited,
    );
    Ok((block, line))
}

/// Starts the air raid, waits until every resident has a text and the outbox has
/// drained (a failed text counts as lost, a late second one as a duplicate), and
/// returns what the simulator accepted.
async fn measure(h: &mut Harness, recipients: usize, gateway: SmsKind, per_sec: u32) -> anyhow::Result<Vec<SentSms>> {
    let timeout = Duration::from_secs(recipients as u64 / u64::from(per_sec) * 3 + 60);
    h.feed.set_alerts(vec![luhansk(), kharkiv_air_raid()]);
    h.next_fanout(Duration::from_secs(30), |f| f.event.kind == AlertKind::AirRaid && f.recipients == recipients)
        .await?;
    let started = Instant::now();
    match gateway {
        SmsKind::TurboSms => {
            let sim = h.turbosms.as_ref().ok_or_else(|| anyhow::anyhow!("no TurboSMS simulator"))?;
            sim.wait_for_sent(recipients, timeout).await;
        }
        SmsKind::Twilio => {
            let sim = h.twilio.as_ref().ok_or_else(|| anyhow::anyhow!("no Twilio simulator"))?;
            sim.wait_for_sent(recipients, timeout).await;
        }
        SmsKind::GenericJson | SmsKind::GenericForm => {
            let sim = h.generic.as_ref().ok_or_else(|| anyhow::anyhow!("no generic SMS simulator"))?;
            sim.wait_for_sent(recipients, timeout).await;
        }
    }
    h.wait_drained(timeout.saturating_sub(started.elapsed()).max(Duration::from_secs(5))).await?;
    Ok(match gateway {
        SmsKind::TurboSms => h.turbosms.as_ref().map(|s| s.sent()),
        SmsKind::Twilio => h.twilio.as_ref().map(|s| s.sent()),
        SmsKind::GenericJson | SmsKind::GenericForm => h.generic.as_ref().map(|s| s.sent()),
    }
    .unwrap_or_default())
}

struct Tally {
    duplicates: usize,
    lost: usize,
    /// From the first accepted text to the last.
    span: Duration,
}

/// Texts per resident's number (TurboSMS records it without `+`).
fn tally(sent: &[SentSms], recipients: usize) -> Tally {
    let mut per_number: HashMap<&str, usize> = HashMap::new();
    for s in sent {
        *per_number.entry(s.to.trim_start_matches('+')).or_default() += 1;
    }
    let (mut duplicates, mut lost) = (0, 0);
    for i in 0..recipients {
        match per_number.get(number(i).trim_start_matches('+')).copied().unwrap_or(0) {
            0 => lost += 1,
            1 => {}
            _ => duplicates += 1,
        }
    }
    let first = sent.iter().map(|s| s.at).min();
    let last = sent.iter().map(|s| s.at).max();
    let span = first.zip(last).map_or(Duration::ZERO, |(f, l)| l.saturating_duration_since(f));
    Tally { duplicates, lost, span }
}
