//! `sirena bench scale`: one oblast-wide air raid for a million subscribers.
//!
//! The daemon runs as in production (feed → pipeline → outbox → lanes, bot polling),
//! with the subscribers imported before it starts. Figures:
//! - `match_ms`, `enqueue_ms`: the pipeline's own timing of the event (from its
//!   [`Fanout`](crate::daemon::Fanout));
//! - `index_bytes_per_subscriber`: resident memory grown by building the match index
//!   of the same places, over the subscriber count, read before anything else of size
//!   is allocated (so the allocator has no freed memory to hand back instead);
//! - `db_bytes_per_delivery`: database pages grown by the enqueue, over the rows added;
//! - `bot_reply_ms_during_enqueue`: the slowest answer to a `/start` sent, every 100 ms,
//!   from the feed's air raid until the fan-out was written, measured from the moment
//!   the resident's message was queued in the simulator to the simulator's receipt of
//!   the reply;
//! - `peak_rss_mb`: the process's high-water mark (the benchmark's own seed data
//!   included).

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use serde_json::json;

use super::{peak_rss_mb, round, rss_bytes};
use crate::alerts::{AlertKind, Transition};
use crate::channels::ChannelKind;
use crate::demo::{Harness, Options, kharkiv_air_raid, luhansk, write_embedded_config};
use crate::matcher::MatchIndex;
use crate::messages::Lang;
use crate::regions::{RegionId, RegionTree};
use crate::store::Import;

const OBLAST: &str = "UA63000000000041885";
const FIRST_CHAT: i64 = 10_000_000;

/// The shipped region tree.
pub(super) fn shipped_tree() -> anyhow::Result<std::sync::Arc<RegionTree>> {
    let dir = tempfile::tempdir()?;
    write_embedded_config(dir.path())?;
    let config = crate::config::load(dir.path()).map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(config.tree)
}

/// Every settlement of the tree inside `area`.
pub(super) fn settlements_in(tree: &RegionTree, area: &str) -> anyhow::Result<Vec<RegionId>> {
    let area = RegionId::parse(area)?;
    let places: Vec<RegionId> =
        tree.iter().filter(|r| r.level.is_settlement() && tree.is_within(&r.id, &area)).map(|r| r.id.clone()).collect();
    anyhow::ensure!(!places.is_empty(), "no settlements in {area}");
    Ok(places)
}

/// `count` Telegram residents spread over `places`, one in ten speaking English.
pub(super) fn spread(first_chat: i64, count: usize, places: &[RegionId]) -> Vec<Import> {
    (0..count)
        .map(|i| Import {
            kind: ChannelKind::TelegramChat,
            address: (first_chat + i as i64).to_string(),
            lang: if i % 10 == 0 { Lang::En } else { Lang::Uk },
            places: vec![places[i % places.len()].clone()],
        })
        .collect()
}

fn db_bytes(path: &std::path::Path) -> anyhow::Result<u64> {
    let conn = rusqlite::Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    let pages: i64 = conn.pragma_query_value(None, "page_count", |r| r.get(0))?;
    let size: i64 = conn.pragma_query_value(None, "page_size", |r| r.get(0))?;
    Ok((pages * size).max(0) as u64)
}

pub async fn scale(subscribers: usize) -> anyhow::Result<String> {
    let tree = shipped_tree()?;
    let places = settlements_in(&tree, OBLAST)?;
    // The index's memory is read first, while the process is small and the allocator
    // has no freed memory to reuse: the same (subscriber, place) pairs the import below
    // writes (ids are given in import order), kept alive across both readings so that
    // only the index counts.
    let pairs: Vec<(i64, RegionId)> =
        (0..subscribers).map(|i| (i as i64 + 1, places[i % places.len()].clone())).collect();
    let before = rss_bytes().context("no /proc/self/status")?;
    let index = MatchIndex::build(&tree, pairs.iter().cloned());
    let after = rss_bytes().context("no /proc/self/status")?;
    let index_bytes = after.saturating_sub(before) as f64 / subscribers.max(1) as f64;
    drop(index);
    drop(pairs);

    let started = Instant::now();
    let mut h =
        Harness::start(Options { seed: spread(FIRST_CHAT, subscribers, &places), ..Options::default() }).await?;
    let seeded_s = started.elapsed().as_secs_f64();

    let path = h.config_dir.parent().unwrap_or(&h.config_dir).join("sirena.db");
    let db_before = db_bytes(&path)?;
    h.feed.set_alerts(vec![luhansk(), kharkiv_air_raid()]);
    let done = AtomicBool::new(false);
    let telegram = h.telegram.clone();
    let on_kharkiv = |f: &crate::daemon::Fanout| {
        f.event.kind == AlertKind::AirRaid
            && f.event.transition == Transition::Started
            && f.event.targets.iter().any(|t| t.as_str() == OBLAST)
    };
    let fanout = async {
        let f = h.next_fanout(Duration::from_secs(300), on_kharkiv).await;
        done.store(true, Ordering::SeqCst);
        f
    };
    // A new resident says /start every 100 ms while the fan-out is written.
    let probes = async {
        let mut sent = Vec::new();
        let mut chat = 900_000_000;
        while !done.load(Ordering::SeqCst) {
            chat += 1;
            telegram.add_user(chat, "Probe", Some("uk"));
            sent.push((chat, Instant::now()));
            telegram.user_sends(chat, "/start");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        sent
    };
    let (fanout, probes) = tokio::join!(fanout, probes);
    let fanout = fanout?;
    let mut slowest_ms: f64 = 0.0;
    // Probes answered within ten seconds count; one that is not is a failure to report.
    for (chat, asked) in &probes {
        let replies = telegram.wait_for_sent(*chat, 1, Duration::from_secs(10)).await;
        let Some(reply) = replies.first() else {
            anyhow::bail!("the bot did not answer /start within 10 s during the enqueue");
        };
        slowest_ms = slowest_ms.max(reply.at.saturating_duration_since(*asked).as_secs_f64() * 1000.0);
    }
    let db_after = db_bytes(&path)?;
    let per_row = db_after.saturating_sub(db_before) as f64 / fanout.enqueued.max(1) as f64;
    let peak = peak_rss_mb().unwrap_or(0.0);
    h.shutdown().await;
    let line = json!({
        "subscribers": subscribers,
        "match_ms": round(fanout.match_ms, 1),
        "enqueue_ms": round(fanout.enqueue_ms, 0),
        "index_bytes_per_subscriber": round(index_bytes, 0),
        "db_bytes_per_delivery": round(per_row, 1),
        "peak_rss_mb": round(peak, 0),
        "bot_reply_ms_during_enqueue": round(slowest_ms, 0),
    });
    Ok(format!(
        "{subscribers} subscribers over {} settlements of Kharkiv oblast (imported and daemon started in {seeded_s:.1} s)\n\
         one oblast air raid: matched {} in {:.1} ms, enqueued {} in {:.0} ms\n\
         match index: {index_bytes:.0} B per subscriber · outbox: {per_row:.1} B per delivery row\n\
         {} /start probes during the enqueue, slowest answered in {slowest_ms:.0} ms · peak RSS {peak:.0} MB\n{line}",
        places.len(),
        fanout.recipients,
        fanout.match_ms,
        fanout.enqueued,
        fanout.enqueue_ms,
        probes.len(),
    ))
}
