//! `sirena bench latency`: how long one change of the feed takes to become the first
//! message on the wire.
//!
//! Measured black-box, from the simulators' side, so nothing in the daemon times
//! itself:
//! - plain (alerts.in.ua, polled every 25 ms): from the instant the feed simulator
//!   first handed a whole `active.json` of the changed list to the connection
//!   ([`FeedSim::first_served`](crate::sim::feed::FeedSim::first_served); on loopback
//!   the client has the body within microseconds) to the arrival at the Telegram
//!   simulator of the first `sendMessage` to the chat that change concerns. The wait
//!   for the next poll is not counted: the poll interval is the operator's choice, and
//!   the goal (p99 ≤ 50 ms) is for sirena's own work: decode, diff, match, outbox
//!   write, claim, render, send.
//! - `--webhook` (ukrainealarm, polled every 600 s, so only a push can deliver in
//!   time): from the instant the simulator's list was changed (which queues the push)
//!   to that first `sendMessage`: the push, its check, the status and list requests it
//!   triggers, and all of the above. Goal: p99 ≤ 1,000 ms.
//!
//! Each change toggles one oblast's air raid (a start, and the next time round its
//! end), for one resident per oblast, the oblasts taken in turn: the 26 top-level
//! regions of the shipped tree with a feed id, all but Luhansk, whose years-long alert
//! stays in every list so that no list looks like a feed fault. Changes go one at a
//! time: change, wait for the resulting message, record, next. They are paced so that
//! Telegram's limits never hold a message: at least [`GAP`] between changes (at most
//! 20 messages in any second, under the 30/s global limit) and at least
//! [`PER_CHAT_GAP`] since the chat's last message (its limit is 1/s). A 429 from the
//! simulator would show in `http_429`.

use std::time::{Duration, Instant};

use anyhow::Context;
use serde_json::{Value, json};

use super::round;
use super::scale::shipped_tree;
use crate::demo::{Harness, Options, kharkiv_air_raid, luhansk};
use crate::regions::Region;
use crate::sim::feed::{FeedKind, SimAlert};
use crate::sim::telegram::TelegramSim;

/// Between one change and the next, at least.
pub const GAP: Duration = Duration::from_millis(50);
/// Between a chat's last message and the next change that concerns it, at least.
pub const PER_CHAT_GAP: Duration = Duration::from_millis(1200);
/// How long one change may take to reach Telegram before the run fails.
const WAIT: Duration = Duration::from_secs(15);
const FIRST_CHAT: i64 = 30_000_000;
const LUHANSK_FEED_ID: u32 = 16;
const PLAIN_POLL: Duration = Duration::from_millis(25);
const WEBHOOK_POLL: Duration = Duration::from_secs(600);
const PLAIN_GOAL_MS: f64 = 50.0;
const WEBHOOK_GOAL_MS: f64 = 1000.0;

/// One resident's oblast: its air raid as the feed lists it, and whether it is on.
struct Oblast {
    alert: SimAlert,
    name: String,
    chat: i64,
    on: bool,
    /// When the simulator last accepted a message to the chat.
    last_sent: Option<Instant>,
    /// Messages the chat has had.
    received: usize,
}

impl Oblast {
    fn new(region: &Region, feed_id: u32, chat: i64) -> Oblast {
        let name = region.name.uk.clone();
        let alert = SimAlert {
            location_uid: feed_id,
            location_title: name.clone(),
            location_oblast: name.clone(),
            location_oblast_uid: feed_id,
            katottg: Some(region.id.as_str().to_owned()),
            ..kharkiv_air_raid()
        };
        Oblast { alert, name, chat, on: false, last_sent: None, received: 0 }
    }
}

/// `sirena bench latency --changes N [--webhook]`.
pub async fn latency(changes: usize, webhook: bool) -> anyhow::Result<String> {
    anyhow::ensure!(changes > 0, "--changes must be at least 1");
    let tree = shipped_tree()?;
    let mut oblasts: Vec<Oblast> = tree
        .iter()
        .filter(|r| r.level.is_top())
        .filter_map(|r| r.feed_id.filter(|&id| id != LUHANSK_FEED_ID).map(|id| (r, id)))
        .enumerate()
        .map(|(i, (r, id))| Oblast::new(r, id, FIRST_CHAT + i as i64))
        .collect();
    anyhow::ensure!(oblasts.len() >= 2, "the shipped tree has {} oblasts with a feed id", oblasts.len());
    let seed = oblasts
        .iter()
        .flat_map(|o| super::residents(o.chat, 1, o.alert.katottg.as_deref().unwrap_or_default()))
        .collect();
    let feed = if webhook { FeedKind::UkraineAlarm } else { FeedKind::AlertsInUa };
    let opts = Options {
        sources: vec![feed],
        webhook,
        poll: if webhook { WEBHOOK_POLL } else { PLAIN_POLL },
        // Room for a poll every 25 ms (2,400 a minute) and for the pushes' polls; the
        // simulator is told the same budget.
        requests_per_min: 10_000,
        ..super::options(false, seed)
    };
    let h = Harness::start(opts).await?;
    let result = run(&h, &mut oblasts, changes, webhook, feed).await;
    let stats = h.telegram.stats();
    let pushes = h.feed.webhook_pushes();
    h.shutdown().await;
    let Measured { latency: mut ms, mut from_change, ends } = result?;

    ms.sort_by(f64::total_cmp);
    from_change.sort_by(f64::total_cmp);
    let (p50, p90, p99, max) =
        (percentile(&ms, 0.50), percentile(&ms, 0.90), percentile(&ms, 0.99), percentile(&ms, 1.0));
    let goal = if webhook { WEBHOOK_GOAL_MS } else { PLAIN_GOAL_MS };
    let met = p99 <= goal;
    let line = json!({
        "changes": ms.len(),
        "p50_ms": round(p50, 2),
        "p99_ms": round(p99, 2),
        "p90_ms": round(p90, 2),
        "max_ms": round(max, 2),
        "goal_ms": goal,
        "met": met,
        "http_429": stats.rate_limited,
    });
    let how = if webhook {
        format!("simulator change → first sendMessage, through the ukrainealarm webhook ({pushes} pushes)")
    } else {
        format!(
            "alerts.in.ua body served → first sendMessage (polled every {} ms; from the change itself, \
             the wait for the poll included: p50 {:.2} ms, p99 {:.2} ms)",
            PLAIN_POLL.as_millis(),
            percentile(&from_change, 0.50),
            percentile(&from_change, 0.99),
        )
    };
    Ok(format!(
        "{} changes ({} air raids starting, {ends} ending) over {} oblasts, one at a time\n\
         {how}\n\
         p50 {p50:.2} ms · p90 {p90:.2} ms · p99 {p99:.2} ms · max {max:.2} ms · goal p99 ≤ {goal:.0} ms: {}\n\
         simulator: {} messages, {} × 429\n{line}",
        ms.len(),
        ms.len() - ends,
        oblasts.len(),
        if met { "met" } else { "NOT met" },
        stats.sent,
        stats.rate_limited,
    ))
}

/// What the changes took, in ms, in order.
#[derive(Default)]
struct Measured {
    /// The figure: from the body served (plain) or the change (webhook).
    latency: Vec<f64>,
    /// From the change, the wait for the next poll included (the same for webhook).
    from_change: Vec<f64>,
    ends: usize,
}

/// Makes the changes, one at a time.
async fn run(
    h: &Harness,
    oblasts: &mut [Oblast],
    changes: usize,
    webhook: bool,
    feed: FeedKind,
) -> anyhow::Result<Measured> {
    // The daemon's first poll (of the empty list) is done before anything changes.
    h.wait_polls(0, 1, WAIT).await?;
    if webhook {
        h.webhook()?;
    }
    // Luhansk first, alone, and taken in, so every measured list differs from the one
    // before by exactly one alert.
    let v = h.feed.set_alerts(vec![luhansk()]);
    wait_served(h, feed, v).await?;

    let mut m = Measured::default();
    let mut last_change: Option<Instant> = None;
    for i in 0..changes {
        let k = i % oblasts.len();
        let earliest = [last_change.map(|t| t + GAP), oblasts[k].last_sent.map(|t| t + PER_CHAT_GAP)];
        if let Some(at) = earliest.into_iter().flatten().max() {
            tokio::time::sleep_until(at.into()).await;
        }
        let o = &mut oblasts[k];
        o.on = !o.on;
        if o.on {
            o.alert.started_at = chrono::Utc::now();
        }
        let list: Vec<SimAlert> =
            std::iter::once(luhansk()).chain(oblasts.iter().filter(|o| o.on).map(|o| o.alert.clone())).collect();
        let o = &mut oblasts[k];
        let changed = Instant::now();
        last_change = Some(changed);
        let version = h.feed.set_alerts(list);
        let got = h.telegram.wait_for_sent(o.chat, o.received + 1, WAIT).await;
        let what = if o.on { "start" } else { "end" };
        anyhow::ensure!(
            got.len() > o.received,
            "change {} (the {what} of an air raid over {}) brought no message within {WAIT:?}",
            i + 1,
            o.name
        );
        // The accepted message, or a refused request for it before (the simulator
        // records a request only after it has decided the answer).
        let accepted = got[o.received].at;
        let sent = first_send_after(&h.telegram, o.chat, changed).map_or(accepted, |r| r.min(accepted));
        o.received = got.len();
        o.last_sent = got.last().map(|m| m.at);
        let from = if webhook {
            changed
        } else {
            h.feed.first_served(feed, version).with_context(|| format!("version {version} was never served"))?
        };
        m.latency.push(ms(sent.saturating_duration_since(from)));
        m.from_change.push(ms(sent.saturating_duration_since(changed)));
        m.ends += usize::from(!o.on);
    }
    Ok(m)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Waits until a whole list of `version` has gone out (setup only, not measured).
async fn wait_served(h: &Harness, feed: FeedKind, version: u64) -> anyhow::Result<()> {
    let deadline = Instant::now() + WAIT;
    while h.feed.first_served(feed, version).is_none() {
        anyhow::ensure!(Instant::now() < deadline, "the daemon never fetched version {version} of the list");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    Ok(())
}

/// The arrival of the first `sendMessage` to `chat` recorded at or after `since`,
/// refused ones included.
fn first_send_after(telegram: &TelegramSim, chat: i64, since: Instant) -> Option<Instant> {
    telegram.send_requests().iter().filter(|r| r.at >= since && chat_of(&r.body) == Some(chat)).map(|r| r.at).min()
}

/// `chat_id` of a request's parameters, sent as a number or as a string.
fn chat_of(body: &Value) -> Option<i64> {
    match &body["chat_id"] {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

/// Nearest rank: the smallest value with at least `p` of the sample at or below it.
/// `sorted` must be sorted and not empty.
fn percentile(sorted: &[f64], p: f64) -> f64 {
    let rank = (p * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank() {
        let v: Vec<f64> = (1..=200).map(f64::from).collect();
        assert_eq!(percentile(&v, 0.5), 100.0);
        assert_eq!(percentile(&v, 0.99), 198.0);
        assert_eq!(percentile(&v, 1.0), 200.0);
        assert_eq!(percentile(&[7.0], 0.99), 7.0);
    }

    #[test]
    fn chat_ids_are_read_as_numbers_or_strings() {
        assert_eq!(chat_of(&json!({"chat_id": 42})), Some(42));
        assert_eq!(chat_of(&json!({"chat_id": "-100"})), Some(-100));
        assert_eq!(chat_of(&json!({"text": "x"})), None);
    }
}
