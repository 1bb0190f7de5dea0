//! Feed alerts: per-source snapshot diffs merged into one view of what is active.
//!
//! Merge rule (DESIGN §4): an alert starts on the first source that reports it;
//! later sources only confirm. It ends when no healthy source that had reported it
//! still does. A failed poll never reaches this module (the adapter produces no
//! observation), so a source outage can never end an alert here.
//!
//! A snapshot that is suddenly empty while the source's previous one was not is
//! suspicious (in wartime Ukraine some oblasts are always under alert, and an empty
//! body is a common failure of a proxy or an overloaded API): it is held back until
//! it repeats `confirm_empty` times in a row.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use super::{AlertKey, AlertKind, AlertLevel, Event, EventDetail, EventId, Priority, Threat, Transition};

/// One source's full list of active alerts at one moment.
#[derive(Clone, Debug, PartialEq)]
pub struct Observation {
    pub source: String,
    pub at: DateTime<Utc>,
    pub alerts: Vec<ObservedAlert>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct ObservedAlert {
    pub key: AlertKey,
    pub started_at: DateTime<Utc>,
    /// The feed's own name of the kind, when sirena mapped it to `unknown`.
    pub raw_kind: Option<String>,
    /// Red or yellow, where the feed says.
    pub level: Option<AlertLevel>,
    /// Sorted and without duplicates.
    pub threats: Vec<Threat>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Active {
    pub started_at: DateTime<Utc>,
    pub reported_by: BTreeSet<String>,
    pub raw_kind: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
struct SourceView {
    last_ok: Option<DateTime<Utc>>,
    last_count: usize,
    empty_streak: u32,
}

/// What the merged feeds say is active. Persisted between runs so an alert that ends
/// while sirena restarts still gets its all-clear.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AlertState {
    #[serde(with = "as_pairs")]
    active: BTreeMap<AlertKey, Active>,
    sources: BTreeMap<String, SourceView>,
    /// A source silent for longer than this is stale: it neither starts nor ends alerts.
    stale_after: Duration,
    confirm_empty: u32,
}

/// What [`AlertState::apply`] did with an observation.
#[derive(Debug, PartialEq)]
pub enum Applied {
    Events(Vec<Event>),
    /// An empty snapshot after a non-empty one, held back until confirmed.
    HeldEmpty {
        streak: u32,
    },
}

impl AlertState {
    pub fn new(stale_after: Duration, confirm_empty: u32) -> Self {
        AlertState {
            active: BTreeMap::new(),
            sources: BTreeMap::new(),
            stale_after,
            confirm_empty: confirm_empty.max(1),
        }
    }

    /// When a source last gave a good answer.
    pub fn last_ok(&self, source: &str) -> Option<DateTime<Utc>> {
        self.sources.get(source).and_then(|s| s.last_ok)
    }

    fn is_healthy(&self, source: &str, now: DateTime<Utc>) -> bool {
        self.last_ok(source).is_some_and(|t| now - t <= self.stale_after)
    }

    /// Every active alert's subject and region, to tell a new subscriber what is going
    /// on where they live.
    pub fn active_subjects(&self) -> Vec<(String, crate::regions::RegionId)> {
        self.active.iter().map(|(key, a)| (alert_subject(key, a.started_at), key.region.clone())).collect()
    }

    pub fn apply(&mut self, obs: &Observation) -> Applied {
        let view = self.sources.entry(obs.source.clone()).or_default();
        if obs.alerts.is_empty() && view.last_count > 0 {
            view.empty_streak += 1;
            if view.empty_streak < self.confirm_empty {
                return Applied::HeldEmpty { streak: view.empty_streak };
            }
        } else {
            view.empty_streak = 0;
        }
        view.last_ok = Some(obs.at);
        view.last_count = obs.alerts.len();

        let mut events = Vec::new();
        let reported: BTreeMap<&AlertKey, &ObservedAlert> = obs.alerts.iter().map(|a| (&a.key, a)).collect();
        for (key, seen) in &reported {
            match self.active.get_mut(*key) {
                Some(active) => {
                    active.reported_by.insert(obs.source.clone());
                }
                None => {
                    let active = Active {
                        started_at: seen.started_at,
                        reported_by: BTreeSet::from([obs.source.clone()]),
                        raw_kind: seen.raw_kind.clone(),
                    };
                    events.push(alert_event(key, &active, Transition::Started, obs.at));
                    self.active.insert((*key).clone(), active);
                }
            }
        }
        let mut ended = Vec::new();
        for (key, active) in self.active.iter_mut() {
            if reported.contains_key(key) || !active.reported_by.remove(&obs.source) {
                continue;
            }
            ended.push(key.clone());
        }
        for key in ended {
            let still_reported =
                self.active.get(&key).is_some_and(|a| a.reported_by.iter().any(|s| self.is_healthy(s, obs.at)));
            if !still_reported && let Some(active) = self.active.remove(&key) {
                events.push(alert_event(&key, &active, Transition::Ended, obs.at));
            }
        }
        Applied::Events(events)
    }
}

/// JSON object keys must be strings; the alert map is stored as a list of pairs.
mod as_pairs {
    use std::collections::BTreeMap;

    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub fn serialize<S: Serializer, K: Serialize, V: Serialize>(map: &BTreeMap<K, V>, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(map.iter())
    }

    pub fn deserialize<'de, D, K, V>(d: D) -> Result<BTreeMap<K, V>, D::Error>
    where
        D: Deserializer<'de>,
        K: Deserialize<'de> + Ord,
        V: Deserialize<'de>,
    {
        Ok(Vec::<(K, V)>::deserialize(d)?.into_iter().collect())
    }
}

/// `air_raid:UA63000000000041885:20231106T080000Z`: one occurrence of one alert.
fn alert_subject(key: &AlertKey, started_at: DateTime<Utc>) -> String {
    format!("{}:{}:{}", key.kind, key.region, started_at.format("%Y%m%dT%H%M%SZ"))
}

fn alert_event(key: &AlertKey, active: &Active, transition: Transition, at: DateTime<Utc>) -> Event {
    let priority = match (transition, key.kind) {
        (_, AlertKind::Info) => Priority::Info,
        (Transition::Started, AlertKind::Nuclear | AlertKind::Chemical) => Priority::NuclearChemical,
        // A local alert is promoted to `LocalThreat` by the pipeline, which knows the
        // region's level.
        (Transition::Started, _) => Priority::OtherStart,
        (Transition::Updated, _) => Priority::Update,
        (Transition::Ended | Transition::Cancelled, _) => Priority::End,
    };
    Event {
        id: EventId(format!("{}:{}", alert_subject(key, active.started_at), transition.as_str())),
        kind: key.kind,
        transition,
        revision: 1,
        targets: vec![key.region.clone()],
        at,
        priority,
        detail: EventDetail::Alert { started_at: active.started_at, raw_kind: active.raw_kind.clone() },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::regions::RegionId;

    fn t(secs: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_700_000_000 + secs, 0).expect("valid timestamp")
    }

    fn alert(kind: AlertKind, region: &str) -> ObservedAlert {
        ObservedAlert {
            key: AlertKey { kind, region: RegionId::parse(region).expect("valid id") },
            started_at: t(0),
            raw_kind: None,
            level: None,
            threats: Vec::new(),
        }
    }

    fn obs(source: &str, at: i64, alerts: Vec<ObservedAlert>) -> Observation {
        Observation { source: source.into(), at: t(at), alerts }
    }

    /// Applies observations in order and returns the event ids each produced.
    fn check(state: &mut AlertState, steps: Vec<Observation>) -> Vec<Vec<String>> {
        steps
            .iter()
            .map(|o| match state.apply(o) {
                Applied::Events(ev) => ev.into_iter().map(|e| e.id.0).collect(),
                Applied::HeldEmpty { .. } => vec!["held".to_string()],
            })
            .collect()
    }

    const KHARKIV: &str = "UA63000000000041885";
    const LUHANSK: &str = "UA44000000000018893";

    #[test]
    fn diff_starts_and_ends_with_deterministic_ids() {
        let mut s = AlertState::new(Duration::minutes(5), 3);
        let got = check(
            &mut s,
            vec![
                obs("a", 0, vec![alert(AlertKind::AirRaid, LUHANSK)]),
                obs("a", 10, vec![alert(AlertKind::AirRaid, LUHANSK), alert(AlertKind::AirRaid, KHARKIV)]),
                obs("a", 20, vec![alert(AlertKind::AirRaid, LUHANSK), alert(AlertKind::AirRaid, KHARKIV)]),
                obs("a", 30, vec![alert(AlertKind::AirRaid, LUHANSK)]),
            ],
        );
        let start = t(0).format("%Y%m%dT%H%M%SZ");
        assert_eq!(
            got,
            vec![
                vec![format!("air_raid:{LUHANSK}:{start}:started")],
                vec![format!("air_raid:{KHARKIV}:{start}:started")],
                vec![],
                vec![format!("air_raid:{KHARKIV}:{start}:ended")],
            ]
        );
    }

    #[test]
    fn sudden_empty_snapshot_is_held_until_confirmed() {
        let mut s = AlertState::new(Duration::minutes(5), 3);
        let got = check(
            &mut s,
            vec![
                obs("a", 0, vec![alert(AlertKind::AirRaid, KHARKIV)]),
                obs("a", 10, vec![]),
                obs("a", 20, vec![alert(AlertKind::AirRaid, KHARKIV)]),
                obs("a", 30, vec![]),
                obs("a", 40, vec![]),
                obs("a", 50, vec![]),
            ],
        );
        assert_eq!(got[1], vec!["held"]);
        assert!(got[2].is_empty(), "the alert never ended, so nothing restarts");
        assert_eq!(got[3], vec!["held"]);
        assert_eq!(got[4], vec!["held"]);
        assert_eq!(got[5].len(), 1, "third empty answer in a row is believed: {got:?}");
    }

    #[test]
    fn second_source_confirms_and_keeps_alert_alive() {
        let mut s = AlertState::new(Duration::minutes(5), 1);
        let got = check(
            &mut s,
            vec![
                obs("a", 0, vec![alert(AlertKind::AirRaid, KHARKIV)]),
                obs("b", 1, vec![alert(AlertKind::AirRaid, KHARKIV)]),
                obs("a", 10, vec![alert(AlertKind::Artillery, LUHANSK)]),
                obs("b", 11, vec![]),
            ],
        );
        assert_eq!(got[1], Vec::<String>::new(), "a second source only confirms");
        assert_eq!(got[2].len(), 1, "only the artillery start: b still reports the air raid");
        assert!(got[2][0].starts_with("artillery:"));
        assert_eq!(got[3].len(), 1, "ends once no healthy source reports it");
        assert!(got[3][0].ends_with(":ended"));
    }

    #[test]
    fn state_survives_a_json_round_trip() {
        let mut s = AlertState::new(Duration::minutes(5), 3);
        s.apply(&obs("a", 0, vec![alert(AlertKind::AirRaid, KHARKIV)]));
        let json = serde_json::to_string(&s).expect("serialises");
        let mut back: AlertState = serde_json::from_str(&json).expect("deserialises");
        assert_eq!(back, s);
        // The restored state still knows the alert, so its end is announced.
        let got = check(&mut back, vec![obs("a", 10, vec![alert(AlertKind::AirRaid, LUHANSK)])]);
        assert!(got[0].iter().any(|id| id.ends_with(":ended")), "{got:?}");
    }

    #[test]
    fn stale_source_does_not_keep_an_alert_alive() {
        let mut s = AlertState::new(Duration::minutes(5), 1);
        s.apply(&obs("a", 0, vec![alert(AlertKind::AirRaid, KHARKIV)]));
        s.apply(&obs("b", 0, vec![alert(AlertKind::AirRaid, KHARKIV)]));
        // b goes silent; ten minutes later a says the alert is over.
        let got = check(&mut s, vec![obs("a", 600, vec![alert(AlertKind::AirRaid, LUHANSK)])]);
        assert!(got[0].iter().any(|id| id.starts_with("air_raid:UA63") && id.ends_with(":ended")), "{got:?}");
    }
}
