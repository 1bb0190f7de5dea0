//! `sirena preview ORDER_ID`: who an evacuation order would reach, and what they would
//! read, before it is live.
//!
//! It reads the config and the store the daemon uses, matches the order's start the
//! way the pipeline does (the same [`MatchIndex`] over every stored place), and renders
//! the message in each language and channel with the same composer. Nothing is
//! written and nothing is sent. [`plan`] is pure; [`run`] does the IO.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::path::Path;

use chrono::Utc;

use crate::alerts::orders::OrderBook;
use crate::alerts::{Event, Transition};
use crate::channels::ChannelKind;
use crate::config::{self, Config, ConfigErrors};
use crate::matcher::MatchIndex;
use crate::messages::plural::count;
use crate::messages::{Lang, Part};
use crate::store::Import;

#[derive(Debug, thiserror::Error)]
pub enum PreviewError {
    #[error("config in {}:\n{errors}", dir.display())]
    Config { dir: std::path::PathBuf, errors: ConfigErrors },
    #[error("no evacuation order `{id}` in the region files{}", known_ids(known))]
    NoSuchOrder { id: String, known: Vec<String> },
    #[error(transparent)]
    Store(#[from] crate::subscribers::SubscribersError),
}

fn known_ids(known: &[String]) -> String {
    if known.is_empty() { String::new() } else { format!("; the orders are: {}", known.join(", ")) }
}

/// What the order would do.
#[derive(Clone, Debug)]
pub struct Preview {
    pub order: String,
    pub event: Event,
    /// Recipients by (channel, language).
    pub by_channel: BTreeMap<(ChannelKind, Lang), usize>,
    /// Recipients by the place they chose that the order reaches.
    pub by_place: BTreeMap<String, usize>,
    /// The message as each (channel, language) would get it, with its SMS part count.
    pub texts: Vec<(ChannelKind, Lang, String, Option<usize>)>,
    /// Seconds until the last recipient of each channel, at the configured limits;
    /// `None` for a channel no adapter is configured for (its deliveries would fail).
    pub eta_s: BTreeMap<ChannelKind, Option<f64>>,
}

/// Reads the config in `dir` and its store, and previews order `id`.
pub async fn run(dir: &Path, id: &str) -> Result<Preview, PreviewError> {
    let config = config::load(dir).map_err(|errors| PreviewError::Config { dir: dir.to_owned(), errors })?;
    config::location::announce(&config);
    // A SQLite store that does not exist yet has nobody in it (and is not created).
    let missing = config.store_path().is_some_and(|p| !p.exists());
    let subscribers = if missing {
        Vec::new()
    } else {
        let store = crate::subscribers::open_store(&config).await?;
        store.export().await.map_err(crate::subscribers::SubscribersError::from)?
    };
    plan(&config, id, &subscribers)
}

/// The preview of order `id` for these subscribers (as `Store::export` lists them).
pub fn plan(config: &Config, id: &str, subscribers: &[Import]) -> Result<Preview, PreviewError> {
    let Some(order) = config.orders.iter().find(|o| o.id == id) else {
        return Err(PreviewError::NoSuchOrder {
            id: id.to_owned(),
            known: config.orders.iter().map(|o| o.id.clone()).collect(),
        });
    };
    // The order as if it started now, whatever its status: what residents would read.
    let mut live = order.clone();
    if !live.status.is_in_force() {
        live.status = crate::alerts::orders::OrderStatus::Mandatory;
    }
    live.expires_at = None;
    let mut events = OrderBook::default().apply(std::slice::from_ref(&live), Utc::now());
    let event = events
        .pop()
        .filter(|e| e.transition == Transition::Started)
        .ok_or_else(|| PreviewError::NoSuchOrder { id: id.to_owned(), known: Vec::new() })?;
    let tree = &config.tree;
    let places = subscribers.iter().enumerate().flat_map(|(i, s)| s.places.iter().map(move |p| (i as i64, p.clone())));
    let index = MatchIndex::build(tree, places);
    let reached = index.recipients_of(tree, event.kind, &event.targets, &event.reach);
    let mut by_channel: BTreeMap<(ChannelKind, Lang), usize> = BTreeMap::new();
    let mut by_place: BTreeMap<String, usize> = BTreeMap::new();
    for i in reached {
        let Some(s) = usize::try_from(i).ok().and_then(|i| subscribers.get(i)) else { continue };
        *by_channel.entry((s.kind, s.lang)).or_default() += 1;
        // The place that brought them in: one inside a target, or one containing it.
        let place =
            s.places.iter().find(|p| event.targets.iter().any(|t| tree.is_within(p, t) || tree.is_within(t, p)));
        let name = place.map_or_else(|| "—".to_owned(), |p| tree.qualified_name(p, Lang::Uk));
        *by_place.entry(name).or_default() += 1;
    }
    // Region channels are posted to by the pipeline's own subscribers.
    for r in tree.iter().filter(|r| r.channel.is_some()) {
        if event.targets.iter().any(|t| tree.is_within(t, &r.id) || tree.is_within(&r.id, t)) {
            *by_channel.entry((ChannelKind::TelegramChannel, Lang::Uk)).or_default() += 1;
        }
    }
    let mut texts = Vec::new();
    for kind in ChannelKind::ALL {
        for lang in Lang::ALL {
            let r = config.composer.render(&[Part::Event { event: &event, as_new: true }], lang, kind.format(), tree);
            let (text, parts) = match kind {
                ChannelKind::Sms => (r.text.clone(), Some(crate::messages::sms::segments(&r.text).parts)),
                ChannelKind::TelegramChat | ChannelKind::TelegramChannel => (crate::messages::plain(&r.text), None),
            };
            texts.push((kind, lang, text, parts));
        }
    }
    let mut eta_s = BTreeMap::new();
    for kind in ChannelKind::ALL {
        let n: usize = by_channel.iter().filter(|((k, _), _)| *k == kind).map(|(_, n)| n).sum();
        if n == 0 {
            continue;
        }
        let rate = rate(config, kind, event.priority);
        eta_s.insert(kind, (rate > 0.0).then(|| n as f64 / rate));
    }
    Ok(Preview { order: id.to_owned(), event, by_channel, by_place, texts, eta_s })
}

/// Messages a second a channel may carry for this class, as the limiters decide.
fn rate(config: &Config, kind: ChannelKind, priority: crate::alerts::Priority) -> f64 {
    let s = &config.settings;
    match kind {
        ChannelKind::TelegramChat => s.telegram.as_ref().map_or(0.0, |t| {
            let paid = t.paid_broadcast.contains(&priority);
            f64::from(if paid { t.limits.paid_per_sec.max(t.limits.global_per_sec) } else { t.limits.global_per_sec })
        }),
        // 20 posts a minute per channel; each channel gets one post.
        ChannelKind::TelegramChannel => s.telegram.as_ref().map_or(0.0, |t| f64::from(t.limits.global_per_sec)),
        ChannelKind::Sms => {
            s.sms.as_ref().and_then(|sms| sms.gateways.iter().map(|g| g.per_sec()).min()).map_or(0.0, f64::from)
        }
    }
}

/// The preview as an operator reads it.
pub fn report(p: &Preview) -> String {
    let mut out = String::new();
    let total: usize = p.by_channel.values().sum();
    let _ = writeln!(out, "order `{}` would reach {}:", p.order, count(total, "recipient", "recipients"));
    for ((kind, lang), n) in &p.by_channel {
        let _ = writeln!(out, "  {:<18} {:<3} {n}", kind.to_string(), lang.code());
    }
    if !p.by_place.is_empty() {
        let _ = writeln!(out, "by place:");
        for (place, n) in &p.by_place {
            let _ = writeln!(out, "  {n:>6}  {place}");
        }
    }
    for (kind, eta) in &p.eta_s {
        let _ = match eta {
            Some(s) => {
                writeln!(out, "last {kind} recipient about {s:.0} s after the order is saved, at the configured limits")
            }
            None => writeln!(out, "no {kind} channel is configured: those deliveries would fail"),
        };
    }
    for (kind, lang, text, parts) in &p.texts {
        let parts = parts.map_or(String::new(), |n| format!(", {}", count(n, "SMS part", "SMS parts")));
        let _ = writeln!(out, "\n── {kind}, {}{parts}:", lang.code());
        for line in text.lines() {
            let _ = writeln!(out, "  │ {line}");
        }
    }
    if total == 0 {
        let _ = writeln!(out, "\nnobody subscribed to these places yet: nobody would be told");
    }
    out
}
