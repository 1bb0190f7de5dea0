//! The daemon's figures in the Prometheus text format (`GET /metrics` on `[http]`).
//!
//! Counters live where the work happens (`DispatchStats`, `WebStats`, the pipeline's
//! `PipelineStats`); this module only reads a [`Snapshot`] of them and writes the text,
//! so rendering is pure and tested on its own.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;

use crate::alerts::{AlertKind, Transition};
use crate::store::Counts;

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
    pub fn event(&self, kind: AlertKind, transition: Transition) {
        let mut m = self.events.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        *m.entry((kind, transition)).or_default() += 1;
    }

    pub fn events(&self) -> BTreeMap<(AlertKind, Transition), u64> {
        self.events.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }
}

/// One source's state at scrape time.
#[derive(Clone, Debug, PartialEq)]
pub struct SourceFigures {
    pub name: String,
    /// Seconds since its last good answer; `None` before the first.
    pub last_success_age_s: Option<f64>,
    pub consecutive_failures: u32,
}

/// Every figure `/metrics` shows, read at one moment.
#[derive(Clone, Debug, Default)]
pub struct Snapshot {
    pub reload_generation: u64,
    pub config_refused: u64,
    pub snapshots_held: u64,
    pub operator_refused: u64,
    pub events: BTreeMap<(AlertKind, Transition), u64>,
    /// Deliveries by state (queue depth is `pending` + `sending`).
    pub deliveries: Counts,
    /// Dispatch outcomes since start, by name.
    pub dispatch: Vec<(&'static str, u64)>,
    /// HTTP endpoint counters, by name.
    pub web: Vec<(&'static str, u64)>,
    /// The bot's transport counters, by name (empty without `[telegram]`).
    pub bot: Vec<(&'static str, u64)>,
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
    let d = &s.deliveries;
    t.family("sirena_deliveries", "gauge", "Deliveries in the outbox, by state; pending + sending is the queue.");
    for state in crate::store::DeliveryState::ALL {
        t.sample("sirena_deliveries", &[("state", state.as_str())], d.of(state));
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
            deliveries: Counts { pending: 5, sending: 1, ..Counts::default() },
            dispatch: vec![("rate_limited", 4)],
            web: vec![("unauthorized", 1)],
            bot: vec![("dropped", 2)],
            sources: vec![
                SourceFigures { name: "a\"b".into(), last_success_age_s: Some(1.5), consecutive_failures: 0 },
                SourceFigures { name: "never".into(), last_success_age_s: None, consecutive_failures: 7 },
            ],
            ..Snapshot::default()
        };
        let text = render(&s);
        for line in [
            "sirena_reload_generation 2",
            "sirena_events_total{kind=\"air_raid\",transition=\"started\"} 3",
            "sirena_deliveries{state=\"pending\"} 5",
            "sirena_dispatch_total{outcome=\"rate_limited\"} 4",
            "sirena_http_total{what=\"unauthorized\"} 1",
            "sirena_bot_total{what=\"dropped\"} 2",
            "sirena_source_last_success_age_seconds{source=\"a\\\"b\"} 1.500",
            "sirena_source_consecutive_failures{source=\"never\"} 7",
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
                let name = l.split(['{', ' ']).next().unwrap_or_default();
                assert!(declared.contains(name), "{name} undeclared");
            }
        }
    }
}
