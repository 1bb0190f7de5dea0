//! `sirena bench evacuate`: the seed scenario. A mandatory evacuation of Kupiansk raion
//! reaches N residents in private chats and the raion's Telegram channel; how close to
//! the platform's bound (N / limit) is the last resident told?

use std::time::{Duration, Instant};

use serde_json::json;

use super::scale::{settlements_in, shipped_tree, spread};
use super::{received, round};
use crate::alerts::{AlertKind, Priority, Transition};
use crate::config::TelegramLimits;
use crate::demo::{EMBEDDED_CONFIG, Harness};

const RAION: &str = "UA63080000000032022";
const FIRST_CHAT: i64 = 20_000_000;
const CHANNEL_ID: i64 = -1_001_630_800_000;

const ORDER: &str = r#"
[[evacuation]]
id = "kupiansk-raion-bench"
status = "mandatory"
targets = ["UA63080000000032022"]
issued_at = 2023-11-06T08:00:00+02:00
destination = { uk = "Харків", en = "Kharkiv" }
transport = { uk = "Автобуси від збірних пунктів", en = "Buses from the assembly points" }
hotline = "0 800 000 000"
[[evacuation.assembly_points]]
name = { uk = "Адмінбудівля громади", en = "Hromada administration building" }
place = "UA63080070010082928"
times = ["10:00", "14:00"]
"#;

pub async fn evacuate(evacuees: usize, paid: bool) -> anyhow::Result<String> {
    let tree = shipped_tree()?;
    let places = settlements_in(&tree, RAION)?;
    let mut opts = super::options(paid, spread(FIRST_CHAT, evacuees, &places));
    if paid {
        opts.paid_broadcast = vec![Priority::MandatoryEvacuation];
    }
    opts.region_channels = vec![(RAION.to_owned(), CHANNEL_ID.to_string())];
    let limit = if paid { TelegramLimits::default().paid_per_sec } else { TelegramLimits::default().global_per_sec };
    let mut h = Harness::start(opts).await?;
    h.telegram.add_channel(CHANNEL_ID, Some("kupiansk_raion_alerts"), "Куп’янщина: тривоги", true);
    let base = EMBEDDED_CONFIG.iter().find(|(p, _)| *p == "regions/kharkiv.toml").map(|(_, t)| *t).unwrap_or_default();
    let path = h.config_dir.join("regions/kharkiv.toml");
    let current = std::fs::read_to_string(&path)?;
    anyhow::ensure!(current.starts_with(base.lines().next().unwrap_or_default()), "unexpected kharkiv.toml");
    h.write_region_file("kharkiv.toml", &format!("{current}{ORDER}"))?;
    let fanout = h
        .next_fanout(Duration::from_secs(60), |f| {
            f.event.kind == AlertKind::Evacuation && f.event.transition == Transition::Started
        })
        .await?;
    let t0 = Instant::now();
    let bound_s = (evacuees + 1) as f64 / f64::from(limit);
    h.wait_drained(Duration::from_secs_f64(bound_s * 3.0 + 60.0)).await?;
    let got = received(&h, FIRST_CHAT..FIRST_CHAT + evacuees as i64);
    let first = h.telegram.sent().iter().map(|m| m.at).min();
    let posts = h.telegram.sent_to(CHANNEL_ID).len();
    let stats = h.telegram.stats();
    h.shutdown().await;
    let last_told_s = got.last.map_or(0.0, |l| l.saturating_duration_since(t0).as_secs_f64());
    let first_told_s = first.map_or(0.0, |f| f.saturating_duration_since(t0).as_secs_f64());
    let bound_s = evacuees as f64 / f64::from(limit);
    let ratio = last_told_s / bound_s;
    let line = json!({
        "evacuees": evacuees,
        "last_told_s": round(last_told_s, 2),
        "bound_s": round(bound_s, 2),
        "ratio": round(ratio, 3),
        "http_429": stats.rate_limited,
    });
    Ok(format!(
        "mandatory evacuation of Kupiansk raion{}: {} residents over {} settlements and the raion's channel\n\
         first told {first_told_s:.2} s after the order was queued, last {last_told_s:.1} s; bound {bound_s:.1} s at {limit} msg/s → ratio {ratio:.3}\n\
         told once {} · twice or more {} · missed {} · channel posts {posts} · simulator 429s {}\n{line}",
        if paid { " with paid broadcast" } else { "" },
        fanout.recipients,
        places.len(),
        got.once,
        got.duplicates,
        got.missed,
        stats.rate_limited,
    ))
}
