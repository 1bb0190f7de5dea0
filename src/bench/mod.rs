//! `sirena bench …`: the figures quoted in docs/benchmarks.md. Each benchmark runs the
//! real daemon against the simulators on loopback, prints its figures, and prints as
//! its last line one JSON object with the keys the issue that asked for it named.

mod crash;
mod evacuate;
mod failover;
mod latency;
mod scale;
mod search;
mod sms;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::alerts::Priority;
use crate::channels::ChannelKind;
use crate::config::TelegramLimits;
use crate::demo::{Harness, Options, kharkiv_air_raid};
use crate::messages::Lang;
use crate::regions::RegionId;
use crate::sim::telegram::TelegramSimConfig;
use crate::store::Import;

pub use crash::{CrashReport, Stop, crash, crash_run, stop_run};
pub use evacuate::evacuate;
pub use failover::{FailoverReport, PartitionReport, failover, failover_run, partition_run};
pub use latency::latency;
pub use scale::scale;
pub use search::search;
pub use sms::{PER_SEC as SMS_PER_SEC, sms};

pub const KHARKIV_CITY: &str = "UA63120270010096107";

/// `count` Telegram residents of `place`, chats numbered from `first_chat`.
pub fn residents(first_chat: i64, count: usize, place: &str) -> Vec<Import> {
    let place = RegionId::parse(place).map(|p| vec![p]).unwrap_or_default();
    (0..count)
        .map(|i| Import {
            kind: ChannelKind::TelegramChat,
            address: (first_chat + i as i64).to_string(),
            lang: Lang::Uk,
            places: place.clone(),
        })
        .collect()
}

/// The daemon's options for a bench: the simulator enforces Telegram's published
/// limits (and the paid rate for flagged requests), sirena applies the same.
pub fn options(paid: bool, seed: Vec<Import>) -> Options {
    let mut opts = Options { seed, ..Options::default() };
    opts.telegram_sim = TelegramSimConfig::default();
    opts.telegram_limits = TelegramLimits::default();
    if paid {
        // Every class down to ordinary starts may use paid broadcast in this bench.
        opts.paid_broadcast = Priority::ALL[..=Priority::OtherStart as usize].to_vec();
        opts.max_in_flight = 64;
    }
    opts
}

/// What the simulator received, per chat: how many chats got exactly one message, how
/// many more than one, how many none.
pub struct Received {
    pub once: usize,
    pub duplicates: usize,
    pub missed: usize,
    pub last: Option<Instant>,
}

pub fn received(h: &Harness, chats: impl Iterator<Item = i64>) -> Received {
    let mut per_chat: HashMap<i64, usize> = HashMap::new();
    let mut last = None;
    for m in h.telegram.sent() {
        *per_chat.entry(m.chat_id).or_default() += 1;
        last = last.max(Some(m.at));
    }
    let mut r = Received { once: 0, duplicates: 0, missed: 0, last };
    for chat in chats {
        match per_chat.get(&chat).copied().unwrap_or(0) {
            0 => r.missed += 1,
            1 => r.once += 1,
            n => {
                r.once += 1;
                r.duplicates += n - 1;
            }
        }
    }
    r
}

/// `sirena bench fanout`: one oblast air raid to `residents` Telegram chats, at the
/// free limit or, with `paid`, through paid broadcast.
pub async fn fanout(count: usize, paid: bool) -> anyhow::Result<String> {
    const FIRST_CHAT: i64 = 500_000;
    let mut h = Harness::start(options(paid, residents(FIRST_CHAT, count, KHARKIV_CITY))).await?;
    let limit = if paid { TelegramLimits::default().paid_per_sec } else { TelegramLimits::default().global_per_sec };
    h.feed.set_alerts(vec![kharkiv_air_raid()]);
    let fanout = h.next_fanout(Duration::from_secs(30), |_| true).await?;
    let t0 = Instant::now();
    h.wait_drained(Duration::from_secs(count as u64 / u64::from(limit).max(1) * 3 + 60)).await?;
    let got = received(&h, FIRST_CHAT..FIRST_CHAT + count as i64);
    let seconds = got.last.map_or(0.0, |l| l.saturating_duration_since(t0).as_secs_f64());
    let stats = h.telegram.stats();
    let counts = h.store().counts().await?;
    h.shutdown().await;
    let rate = got.once as f64 / seconds.max(1e-9);
    let ratio = rate / f64::from(limit);
    let line = json!({
        "channel": "telegram",
        "deliveries": got.once,
        "seconds": round(seconds, 2),
        "limit_per_s": limit,
        "rate_vs_limit": round(ratio, 3),
        "http_429": stats.rate_limited,
        "duplicates": got.duplicates,
        "missed": got.missed,
    });
    Ok(format!(
        "fan-out of one air raid to {} residents{}: {:.1} s from the event to the last message\n\
         Telegram limit {limit} msg/s → {rate:.1} msg/s, {ratio:.3} of the limit\n\
         outbox: sent {} · failed {} · expired {} · simulator: {} × 429, {} paid\n{line}",
        fanout.recipients,
        if paid { " with paid broadcast" } else { "" },
        seconds,
        counts.sent,
        counts.failed,
        counts.expired,
        stats.rate_limited,
        stats.paid,
    ))
}

pub fn round(x: f64, places: i32) -> f64 {
    let f = 10f64.powi(places);
    (x * f).round() / f
}

/// Peak resident memory of this process, from /proc (Linux), in MB.
pub fn peak_rss_mb() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let kb: f64 = status.lines().find(|l| l.starts_with("VmHWM:"))?.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

/// Current resident memory of this process, in bytes.
pub fn rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let kb: u64 = status.lines().find(|l| l.starts_with("VmRSS:"))?.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}
