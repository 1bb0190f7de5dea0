//! The daemon's figures in the Prometheus text format (`GET /metrics` on `[http]`).
//!
//! Counters live where the work happens (`DispatchStats`, `WebStats`, the pipeline's
//! `PipelineStats`); this module only reads a [`Snapshot`] of them and writes the text,
//! so rendering is pure and tested on its own.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::time::Duration;

use crate::alerts::{AlertKind, Transition};
use crate::channels::ChannelKind;
use crate::store::Counts;

/// A component's counters: a struct of `AtomicU64` fields, each documented, with
/// `get` and `figures` (every counter by name, for `/metrics`), and after a `;` any
/// other figures it keeps. They are bumped by the component's internal events
/// (`crate::internal_events`), never by hand.
macro_rules! counters {
    (
        $(#[$meta:meta])* pub struct $name:ident {
            $($(#[$doc:meta])* $field:ident,)*
            $(; $($(#[$other_doc:meta])* $other:ident: $other_ty:ty,)*)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Default)]
        pub struct $name {
            $($(#[$doc])* pub $field: std::sync::atomic::AtomicU64,)*
            $($($(#[$other_doc])* pub $other: $other_ty,)*)?
        }

        impl $name {
            pub fn get(counter: &std::sync::atomic::AtomicU64) -> u64 {
                counter.load(std::sync::atomic::Ordering::Relaxed)
            }

            /// Every counter by name, for `/metrics`.
            pub fn figures(&self) -> Vec<(&'static str, u64)> {
                vec![$((stringify!($field), Self::get(&self.$field)),)*]
            }
        }
    };
}
pub(crate) use counters;

/// Adds `n` to a counter; for `internal_events` only.
pub(crate) fn bump(counter: &std::sync::atomic::AtomicU64, n: u64) -> u64 {
    counter.fetch_add(n, std::sync::atomic::Ordering::Relaxed) + n
}

/// What the pipeline counts for `/metrics`.
#[derive(Debug, Default)]
pub struct PipelineStats {
    /// Events written, by kind and transition.
    events: Mutex<BTreeMap<(AlertKind, Transition), u64>>,
    /// Config changes refused (invalid, or guarded), since start.
    pub refused: std::sync::atomic::AtomicU64,
    /// Source snapshots held as implausible, since start.
    pub held: std::sync::atomic::AtomicU64,
    /// Operator commands from Telegram users not on the allowlist, since start.
    pub operator_refused: std::sync::atomic::AtomicU64,
}

impl PipelineStats {
    pub(crate) fn event(&self, kind: AlertKind, transition: Transition) {
        let mut m = self.events.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        *m.entry((kind, transition)).or_default() += 1;
    }

    pub fn events(&self) -> BTreeMap<(AlertKind, Transition), u64> {
        self.events.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }
}

/// Upper bounds of the send-latency buckets, in seconds: from a fast Telegram fan-out
/// to an SMS wave at a gateway's pace or a message held through quiet hours.
pub const LATENCY_BUCKETS: [f64; 12] = [0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0];

/// One channel's latency histogram: counts per bucket (not cumulative; the last slot
/// is above every bound), their sum and count.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct HistogramCounts {
    pub buckets: [u64; LATENCY_BUCKETS.len() + 1],
    pub sum_s: f64,
    pub count: u64,
}

impl HistogramCounts {
    fn observe(&mut self, d: Duration) {
        let s = d.as_secs_f64();
        let slot = LATENCY_BUCKETS.iter().position(|&le| s <= le).unwrap_or(LATENCY_BUCKETS.len());
        self.buckets[slot] += 1;
        self.sum_s += s;
        self.count += 1;
    }
}

/// Time from an event to the platform accepting a message that carries it, by
/// channel kind.
#[derive(Debug, Default)]
pub struct Latency(Mutex<BTreeMap<ChannelKind, HistogramCounts>>);

impl Latency {
    pub(crate) fn observe(&self, kind: ChannelKind, latencies: impl IntoIterator<Item = Duration>) {
        let mut m = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let h = m.entry(kind).or_default();
        for d in latencies {
            h.observe(d);
        }
    }

    pub fn read(&self) -> BTreeMap<ChannelKind, HistogramCounts> {
        self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }
}

/// One source's state at scrape time.
#[derive(Clone, Debug, PartialEq)]
pub struct SourceFigures {
    pub name: String,
    /// Seconds since its last good answer; `None` before the first.
    pub last_success_age_s: Option<f64>,
    pub consecutive_failures: u32,
    /// Optional parts dropped from its answers since start, by field.
    pub dropped: Vec<(&'static str, u64)>,
}

/// Every figure `/metrics` shows, read at one moment.
#[derive(Clone, Debug, Default)]
pub struct Snapshot {
    pub reload_generation: u64,
    pub config_refused: u64,
    pub snapshots_held: u64,
    pub operator_refused: u64,
    pub events: BTreeMap<(AlertKind, Transition), u64>,
    /// Deliveries by channel and state (queue depth is `pending` + `sending`).
    pub deliveries: BTreeMap<ChannelKind, Counts>,
    /// Event-to-send latency by channel.
    pub latency: BTreeMap<ChannelKind, HistogramCounts>,
    /// Dispatch outcomes since start, by name.
    pub dispatch: Vec<(&'static str, u64)>,
    /// HTTP endpoint counters, by name.
    pub web: Vec<(&'static str, u64)>,
    /// The bot's transport counters, by name (empty without `[telegram]`).
    pub bot: Vec<(&'static str, u64)>,
    /// Credentials refused after they worked, and accepted again, by name.
    pub credentials: Vec<(&'static str, u64)>,
    pub sources: Vec<SourceFigures>,
}

/// The Prometheus text exposition of `s`.
pub fn render(s: &Snapshot) -> String {
    let mut t = Text::default();
    t.family("sirena_reload_generation", "gauge", "Config reloads applied since start.");
    t.sample("sirena_reload_generation", &[], s.reload_generation);
    t.family(
        "sirena_config_refused_total",
        "counter",
        "Config changes refused (invalid, or ending orders or dropping held places).",
    );
    t.sample("sirena_config_refused_total", &[], s.config_refused);
    t.family("sirena_snapshots_held_total", "counter", "Feed snapshots held as implausible (their all-clears wait).");
    t.sample("sirena_snapshots_held_total", &[], s.snapshots_held);
    t.family(
        "sirena_operator_refused_total",
        "counter",
        "Operator commands from Telegram users not on the allowlist (answered \"not allowed\").",
    );
    t.sample("sirena_operator_refused_total", &[], s.operator_refused);
    t.family("sirena_events_total", "counter", "Events written to the outbox, by kind and transition.");
    for ((kind, transition), n) in &s.events {
        t.sample("sirena_events_total", &[("kind", kind.as_str()), ("transition", transition.as_str())], n);
    }
    t.family(
        "sirena_deliveries",
        "gauge",
        "Deliveries in the outbox, by channel and state; pending + sending is the queue.",
    );
    for kind in ChannelKind::ALL {
        let d = s.deliveries.get(&kind).cloned().unwrap_or_default();
        for state in crate::store::DeliveryState::ALL {
            t.sample("sirena_deliveries", &[("channel", kind.as_str()), ("state", state.as_str())], d.of(state));
        }
    }
    t.family(
        "sirena_send_latency_seconds",
        "histogram",
        "Time from an event to the platform accepting a message that carries it, by channel.",
    );
    for (kind, h) in &s.latency {
        let channel = kind.as_str();
        let mut cumulative = 0;
        for (le, n) in LATENCY_BUCKETS.iter().zip(&h.buckets) {
            cumulative += n;
            t.sample(
                "sirena_send_latency_seconds_bucket",
                &[("channel", channel), ("le", &le.to_string())],
                cumulative,
            );
        }
        t.sample("sirena_send_latency_seconds_bucket", &[("channel", channel), ("le", "+Inf")], h.count);
        t.sample("sirena_send_latency_seconds_sum", &[("channel", channel)], format!("{:.3}", h.sum_s));
        t.sample("sirena_send_latency_seconds_count", &[("channel", channel)], h.count);
    }
    t.family(
        "sirena_dispatch_total",
        "counter",
        "What the dispatcher did since start, by outcome (rate_limited: 429s).",
    );
    for (outcome, n) in &s.dispatch {
        t.sample("sirena_dispatch_total", &[("outcome", outcome)], n);
    }
    t.family("sirena_http_total", "counter", "Requests to the daemon's HTTP endpoint, by what became of them.");
    for (what, n) in &s.web {
        t.sample("sirena_http_total", &[("what", what)], n);
    }
    t.family("sirena_bot_total", "counter", "Residents' updates by what became of them, flood notices, polls.");
    for (what, n) in &s.bot {
        t.sample("sirena_bot_total", &[("what", what)], n);
    }
    t.family(
        "sirena_credentials_total",
        "counter",
        "Tokens a platform refused after it had accepted them, and refused tokens accepted again.",
    );
    for (what, n) in &s.credentials {
        t.sample("sirena_credentials_total", &[("what", what)], n);
    }
    t.family("sirena_source_last_success_age_seconds", "gauge", "Seconds since each source's last good answer.");
    for src in &s.sources {
        if let Some(age) = src.last_success_age_s {
            t.sample("sirena_source_last_success_age_seconds", &[("source", &src.name)], format!("{age:.3}"));
        }
    }
    t.family("sirena_source_consecutive_failures", "gauge", "Failed polls in a row, by source.");
    for src in &s.sources {
        t.sample("sirena_source_consecutive_failures", &[("source", &src.name)], src.consecutive_failures);
    }
    t.family(
        "sirena_source_dropped_total",
        "counter",
        "Optional parts of feed answers that did not read (level, threats, notes, CAP entries…), by source and field; each alert was kept without them.",
    );
    for src in &s.sources {
        for (field, n) in &src.dropped {
            t.sample("sirena_source_dropped_total", &[("source", &src.name), ("field", field)], n);
        }
    }
    t.0
}

#[derive(Default)]
struct Text(String);

impl Text {
    fn family(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.0, "# HELP {name} {help}\n# TYPE {name} {kind}");
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: impl std::fmt::Display) {
        self.0.push_str(name);
        if !labels.is_empty() {
            let body: Vec<String> = labels.iter().map(|(k, v)| format!("{k}=\"{}\"", escape(v))).collect();
            let _ = write!(self.0, "{{{}}}", body.join(","));
        }
        let _ = writeln!(self.0, " {value}");
    }
}

/// Label values escape backslash, quote and newline.
fn escape(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_exposition_has_every_family_with_labels_escaped() {
        let mut events = BTreeMap::new();
        events.insert((AlertKind::AirRaid, Transition::Started), 3);
        let s = Snapshot {
            reload_generation: 2,
            events,
            deliveries: [(ChannelKind::Sms, Counts { pending: 5, sending: 1, ..Counts::default() })].into(),
            latency: [(ChannelKind::TelegramChat, {
                let mut h = HistogramCounts::default();
                for ms in [30, 200, 200, 4_000, 2_000_000] {
                    h.observe(Duration::from_millis(ms));
                }
                h
            })]
            .into(),
            dispatch: vec![("rate_limited", 4)],
            web: vec![("unauthorized", 1)],
            bot: vec![("dropped", 2)],
            credentials: vec![("refused", 1)],
            sources: vec![
                SourceFigures {
                    name: "a\"b".into(),
                    last_success_age_s: Some(1.5),
                    consecutive_failures: 0,
                    dropped: vec![("threats", 2)],
                },
                SourceFigures {
                    name: "never".into(),
                    last_success_age_s: None,
                    consecutive_failures: 7,
                    dropped: Vec::new(),
                },
            ],
            ..Snapshot::default()
        };
        let text = render(&s);
        for line in [
            "sirena_reload_generation 2",
            "sirena_events_total{kind=\"air_raid\",transition=\"started\"} 3",
            "sirena_deliveries{channel=\"sms\",state=\"pending\"} 5",
            "sirena_deliveries{channel=\"telegram\",state=\"pending\"} 0",
            "sirena_send_latency_seconds_bucket{channel=\"telegram\",le=\"0.05\"} 1",
            "sirena_send_latency_seconds_bucket{channel=\"telegram\",le=\"0.1\"} 1",
            "sirena_send_latency_seconds_bucket{channel=\"telegram\",le=\"0.25\"} 3",
            "sirena_send_latency_seconds_bucket{channel=\"telegram\",le=\"5\"} 4",
            "sirena_send_latency_seconds_bucket{channel=\"telegram\",le=\"900\"} 4",
            "sirena_send_latency_seconds_bucket{channel=\"telegram\",le=\"+Inf\"} 5",
            "sirena_send_latency_seconds_sum{channel=\"telegram\"} 2004.430",
            "sirena_send_latency_seconds_count{channel=\"telegram\"} 5",
            "sirena_dispatch_total{outcome=\"rate_limited\"} 4",
            "sirena_http_total{what=\"unauthorized\"} 1",
            "sirena_bot_total{what=\"dropped\"} 2",
            "sirena_credentials_total{what=\"refused\"} 1",
            "sirena_source_last_success_age_seconds{source=\"a\\\"b\"} 1.500",
            "sirena_source_consecutive_failures{source=\"never\"} 7",
            "sirena_source_dropped_total{source=\"a\\\"b\",field=\"threats\"} 2",
        ] {
            assert!(text.lines().any(|l| l == line), "missing `{line}` in:\n{text}");
        }
        assert!(!text.contains("source=\"never\"} 0"), "no age before a first success");
        // Every sample line belongs to a family declared before it.
        let mut declared = std::collections::BTreeSet::new();
        for l in text.lines() {
            if let Some(rest) = l.strip_prefix("# TYPE ") {
                declared.insert(rest.split(' ').next().unwrap_or_default().to_owned());
            } else if !l.starts_with('#') {
                let sample = l.split(['{', ' ']).next().unwrap_or_default();
                let family = ["_bucket", "_sum", "_count"]
                    .iter()
                    .find_map(|suffix| sample.strip_suffix(suffix).filter(|f| declared.contains(*f)))
                    .unwrap_or(sample);
                assert!(declared.contains(family), "{sample} undeclared");
            }
        }
    }
}
