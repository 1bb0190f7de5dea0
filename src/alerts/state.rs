//! Feed alerts: per-source snapshot diffs merged into one view of what is active, and
//! the events that tell residents about it by what covers their place.
//!
//! **Merge** (DESIGN §4): an alert — one kind on one region — starts on the first
//! source that reports it; later sources only confirm. It ends when no healthy source
//! that had reported it still does. A failed poll never reaches [`AlertState::apply`]
//! (the poller produces no observation), so an outage can never end an alert here.
//!
//! **Coverage** (DESIGN §16, `coverage`): overlapping alerts of one kind — another
//! level, another source — ring a place once and clear it once. A start reaches only
//! the places it newly puts under alert, an end only those it leaves clear; an alert
//! that changes no place is still stored (for residents who subscribe later) but
//! reaches no one. Every occurrence of an alert has its own subject, so one that ends
//! and comes back is announced again.
//!
//! **Implausible snapshots** (DESIGN §16): a snapshot that is empty after a non-empty
//! one, or that drops long-standing alerts (active over a day, like Luhansk oblast
//! since 2022) together with most of the rest, is a suspected fault. Its drops are
//! held: an alert it dropped stays on until another healthy source that does not
//! report it confirms, or until the source has said the same for `hold_for` without
//! failing in between. A held answer is not a success, so a source that only gives
//! held answers goes stale. An ordinary all-clear — one alert drops out, the rest stay
//! — is believed at once.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use super::cap::CapText;
use super::coverage::{self, Reach};
use super::{AlertKey, AlertKind, AlertLevel, Event, EventDetail, EventId, Priority, Threat, Transition};
use crate::regions::{RegionId, RegionTree};

/// One source's full list of active alerts at one moment.
#[derive(Clone, Debug, PartialEq)]
pub struct Observation {
    pub source: String,
    pub at: DateTime<Utc>,
    pub alerts: Vec<ObservedAlert>,
    /// The source ends alerts by explicit messages (CAP), not by leaving them out, so
    /// its snapshots are never implausible.
    pub explicit_ends: bool,
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
    /// The sender's own words, one per language (CAP infos); empty for list feeds.
    pub texts: Vec<CapText>,
}

/// What one source says about an active alert beyond its existence.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Content {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub level: Option<AlertLevel>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub threats: Vec<Threat>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub texts: Vec<CapText>,
}

impl Content {
    /// Every source's word together: the highest level any gives (red over yellow),
    /// every threat any names, each at the highest level any gives it.
    fn merged<'a>(all: impl IntoIterator<Item = &'a Content>) -> Content {
        let mut level: Option<AlertLevel> = None;
        let mut threats = Vec::new();
        let mut texts: Vec<CapText> = Vec::new();
        for c in all {
            // The first source (by name) with words of its own speaks.
            if texts.is_empty() {
                texts = c.texts.clone();
            }
            level = AlertLevel::stronger(level, c.level.clone());
            threats.extend(c.threats.iter().cloned());
        }
        Content { level, threats: Threat::merged(threats), texts }
    }

    /// Whether residents would be told something new: another level, a threat added,
    /// gone or at another level, other words. A threat's start alone is no news.
    fn same_news(&self, other: &Content) -> bool {
        self.level == other.level
            && self.texts == other.texts
            && self.threats.iter().map(Threat::news).eq(other.threats.iter().map(Threat::news))
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Active {
    pub started_at: DateTime<Utc>,
    pub reported_by: BTreeSet<String>,
    pub raw_kind: Option<String>,
    /// This occurrence's subject; `None` for alerts stored before occurrences had one.
    #[serde(default)]
    pub subject: Option<String>,
    /// What each reporting source says of it.
    #[serde(default)]
    pub content: BTreeMap<String, Content>,
    #[serde(default = "first_revision")]
    pub revision: u32,
}

fn first_revision() -> u32 {
    1
}

impl Active {
    fn subject(&self, key: &AlertKey) -> String {
        self.subject.clone().unwrap_or_else(|| legacy_subject(key, self.started_at))
    }

    fn merged(&self) -> Content {
        Content::merged(self.content.values())
    }
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
struct SourceView {
    /// The last answer sirena believed.
    last_ok: Option<DateTime<Utc>>,
    last_count: usize,
    /// Since when the source's answers are held as suspected faults.
    #[serde(default)]
    held_since: Option<DateTime<Utc>>,
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
    /// How long a source must repeat an implausible snapshot before it is believed.
    #[serde(default = "default_hold_for")]
    hold_for: Duration,
    /// Occurrences numbered so far; each new alert takes the next number.
    #[serde(default)]
    occurrences: u64,
}

fn default_hold_for() -> Duration {
    Duration::minutes(5)
}

/// An alert is long-standing, and its sudden loss suspicious, after this long.
const LONG_STANDING: Duration = Duration::days(1);

/// What [`AlertState::apply`] did with an observation.
#[derive(Debug, Default, PartialEq)]
pub struct Applied {
    pub events: Vec<Event>,
    /// Set when the snapshot was implausible.
    pub suspect: Option<Suspect>,
}

/// An implausible snapshot and what became of it.
#[derive(Clone, Debug, PartialEq)]
pub enum Suspect {
    /// Its drops are held: `held` alerts stay on.
    Holding { since: DateTime<Utc>, held: usize },
    /// It persisted for the whole window and is now believed.
    Believed { since: DateTime<Utc> },
}

/// A source's health, as operators and `/status` see it.
#[derive(Clone, Debug, PartialEq)]
pub struct SourceHealth {
    pub source: String,
    pub last_ok: Option<DateTime<Utc>>,
    pub stale: bool,
    pub held_since: Option<DateTime<Utc>>,
}

impl AlertState {
    pub fn new(stale_after: Duration, hold_for: Duration) -> Self {
        AlertState { active: BTreeMap::new(), sources: BTreeMap::new(), stale_after, hold_for, occurrences: 0 }
    }

    /// Applies the operator's settings to a state restored from the store.
    pub fn configure(&mut self, stale_after: Duration, hold_for: Duration) {
        self.stale_after = stale_after;
        self.hold_for = hold_for;
    }

    /// When a source last gave an answer sirena believed.
    pub fn last_ok(&self, source: &str) -> Option<DateTime<Utc>> {
        self.sources.get(source).and_then(|s| s.last_ok)
    }

    fn is_healthy(&self, source: &str, now: DateTime<Utc>) -> bool {
        self.last_ok(source).is_some_and(|t| now - t <= self.stale_after)
    }

    fn is_holding(&self, source: &str) -> bool {
        self.sources.get(source).is_some_and(|s| s.held_since.is_some())
    }

    /// Every source sirena has heard from, with its health at `now`.
    pub fn health(&self, now: DateTime<Utc>) -> Vec<SourceHealth> {
        self.sources
            .iter()
            .map(|(name, v)| SourceHealth {
                source: name.clone(),
                last_ok: v.last_ok,
                stale: !self.is_healthy(name, now),
                held_since: v.held_since,
            })
            .collect()
    }

    /// A poll failed. An implausible snapshot must then persist afresh: answers broken
    /// by errors are not the steady word of a healthy source.
    pub fn failed(&mut self, source: &str) {
        if let Some(v) = self.sources.get_mut(source) {
            v.held_since = None;
        }
    }

    /// What is active and how the sources stand, for `/status`; `sources` are every
    /// configured one, heard from or not.
    pub fn status_view(&self, sources: &[String]) -> (Vec<super::status::ActiveAlert>, Vec<super::status::SourceSeen>) {
        let alerts = self
            .active
            .iter()
            .map(|(key, a)| {
                let content = a.merged();
                super::status::ActiveAlert {
                    kind: key.kind,
                    region: key.region.clone(),
                    started_at: a.started_at,
                    level: content.level,
                    threats: content.threats,
                    sources: a.reported_by.iter().cloned().collect(),
                }
            })
            .collect();
        let seen = sources
            .iter()
            .map(|name| super::status::SourceSeen {
                source: name.clone(),
                last_ok: self.last_ok(name),
                held_since: self.sources.get(name).and_then(|v| v.held_since),
            })
            .collect();
        (alerts, seen)
    }

    pub fn stale_after(&self) -> Duration {
        self.stale_after
    }

    /// Every active alert's subject and region, to tell a new subscriber what is going
    /// on where they live.
    pub fn active_subjects(&self) -> Vec<(AlertKind, String, RegionId)> {
        self.active.iter().map(|(key, a)| (key.kind, a.subject(key), key.region.clone())).collect()
    }

    pub fn apply(&mut self, obs: &Observation, tree: &RegionTree) -> Applied {
        let source = obs.source.as_str();
        let now = obs.at;
        let mut seen: BTreeMap<&AlertKey, &ObservedAlert> = BTreeMap::new();
        for a in &obs.alerts {
            seen.entry(&a.key).or_insert(a);
        }
        let previous: Vec<AlertKey> =
            self.active.iter().filter(|(_, a)| a.reported_by.contains(source)).map(|(k, _)| k.clone()).collect();
        let dropped: Vec<AlertKey> = previous.iter().filter(|k| !seen.contains_key(k)).cloned().collect();

        // Which drops to hold back: those of an implausible snapshot that no other
        // healthy, unsuspected source confirms by not reporting the alert.
        let mut suspect = None;
        let mut held: BTreeSet<AlertKey> = BTreeSet::new();
        if !obs.explicit_ends && self.implausible(&previous, &dropped, seen.is_empty(), now) {
            let since = self.sources.get(source).and_then(|v| v.held_since).unwrap_or(now);
            if now - since >= self.hold_for {
                suspect = Some(Suspect::Believed { since });
            } else {
                held = dropped
                    .iter()
                    .filter(|k| {
                        let reported_by = self.active.get(k).map(|a| &a.reported_by);
                        !self.sources.keys().any(|other| {
                            other != source
                                && self.is_healthy(other, now)
                                && !self.is_holding(other)
                                && !reported_by.is_some_and(|r| r.contains(other))
                        })
                    })
                    .cloned()
                    .collect();
                if !held.is_empty() {
                    suspect = Some(Suspect::Holding { since, held: held.len() });
                }
            }
        }
        let view = self.sources.entry(source.to_owned()).or_default();
        if let Some(Suspect::Holding { since, .. }) = suspect {
            view.held_since = Some(since);
        } else {
            view.held_since = None;
            view.last_ok = Some(now);
            view.last_count = seen.len();
        }

        let mut events = Vec::new();
        // Starts and confirmations, widest regions first: an alert that starts together
        // with one around it then rings no one twice.
        let mut order: Vec<&AlertKey> = seen.keys().copied().collect();
        order.sort_by_key(|k| (depth(tree, &k.region), *k));
        for key in order {
            self.observe(key, seen[key], source, now, tree, &mut events);
        }
        // Ends, narrowest first: an alert that ends together with one around it is
        // then cleared by that one, in one message.
        let mut ended: Vec<AlertKey> = dropped.into_iter().filter(|k| !held.contains(k)).collect();
        ended.sort_by_key(|k| (std::cmp::Reverse(depth(tree, &k.region)), k.clone()));
        for key in ended {
            let Some(active) = self.active.get_mut(&key) else { continue };
            active.reported_by.remove(source);
            active.content.remove(source);
            let reporters: Vec<String> = active.reported_by.iter().cloned().collect();
            if reporters.iter().any(|s| self.is_healthy(s, now)) {
                continue;
            }
            if let Some(active) = self.active.remove(&key) {
                let reach = self.reach(tree, &key);
                events.push(alert_event(&key, &active, Transition::Ended, reach, now));
            }
        }
        Applied { events, suspect }
    }

    /// A snapshot is implausible when it is empty after a non-empty one, or when it
    /// drops long-standing alerts together with most of the others.
    fn implausible(&self, previous: &[AlertKey], dropped: &[AlertKey], empty: bool, now: DateTime<Utc>) -> bool {
        if previous.is_empty() || dropped.is_empty() {
            return false;
        }
        if empty {
            return true;
        }
        let long_standing =
            dropped.iter().filter(|k| self.active.get(k).is_some_and(|a| now - a.started_at > LONG_STANDING)).count();
        long_standing > 0 && dropped.len() * 2 > previous.len()
    }

    fn observe(
        &mut self,
        key: &AlertKey,
        seen: &ObservedAlert,
        source: &str,
        now: DateTime<Utc>,
        tree: &RegionTree,
        events: &mut Vec<Event>,
    ) {
        let content = Content { level: seen.level.clone(), threats: seen.threats.clone(), texts: seen.texts.clone() };
        if let Some(active) = self.active.get_mut(key) {
            let before = active.merged();
            active.reported_by.insert(source.to_owned());
            active.content.insert(source.to_owned(), content);
            if !active.merged().same_news(&before) {
                active.revision += 1;
                // Everyone under this alert hears of the change: its own subtree and
                // the places around it.
                let reach =
                    Reach { enclosing: tree.ancestors(&key.region).skip(1).cloned().collect(), ..Reach::default() };
                events.push(alert_event(key, active, Transition::Updated, Some(reach), now));
            }
            return;
        }
        self.occurrences += 1;
        let active = Active {
            started_at: seen.started_at,
            reported_by: BTreeSet::from([source.to_owned()]),
            raw_kind: seen.raw_kind.clone(),
            subject: Some(format!("{}:o{}", legacy_subject(key, seen.started_at), self.occurrences)),
            content: BTreeMap::from([(source.to_owned(), content)]),
            revision: 1,
        };
        let reach = self.reach(tree, key);
        events.push(alert_event(key, &active, Transition::Started, reach, now));
        self.active.insert(key.clone(), active);
    }

    /// The places an alert on `key` alone decides, against the other active alerts of
    /// its kind (it must not be among them).
    fn reach(&self, tree: &RegionTree, key: &AlertKey) -> Option<Reach> {
        let others = self.active.keys().filter(|k| k.kind == key.kind && *k != key).map(|k| &k.region);
        coverage::delta(tree, &key.region, others)
    }
}

/// How deep a region sits in the tree: 0 for an oblast.
fn depth(tree: &RegionTree, id: &RegionId) -> usize {
    tree.ancestors(id).count()
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

/// `air_raid:UA63000000000041885:20231106T080000Z`: an alert and its start, the whole
/// subject of alerts stored before occurrences were numbered.
fn legacy_subject(key: &AlertKey, started_at: DateTime<Utc>) -> String {
    format!("{}:{}:{}", key.kind, key.region, started_at.format("%Y%m%dT%H%M%SZ"))
}

/// `reach` is `None` when the transition changes no place: the event is stored but
/// reaches no one.
fn alert_event(
    key: &AlertKey,
    active: &Active,
    transition: Transition,
    reach: Option<Reach>,
    at: DateTime<Utc>,
) -> Event {
    let priority = match (transition, key.kind) {
        (_, AlertKind::Info) => Priority::Info,
        // A sender telling people to leave (CAP `Evacuate`): the most urgent class.
        (Transition::Started, AlertKind::Evacuation) => Priority::MandatoryEvacuation,
        (Transition::Started, AlertKind::Nuclear | AlertKind::Chemical) => Priority::NuclearChemical,
        // A local alert is promoted to `LocalThreat` by the pipeline, which knows the
        // region's level.
        (Transition::Started, _) => Priority::OtherStart,
        (Transition::Updated, _) => Priority::Update,
        (Transition::Ended | Transition::Cancelled, _) => Priority::End,
    };
    let subject = active.subject(key);
    let id = match transition {
        Transition::Updated => format!("{subject}:updated:r{}", active.revision),
        t => format!("{subject}:{}", t.as_str()),
    };
    let content = active.merged();
    let reach = reach.unwrap_or(Reach { quiet: true, ..Reach::default() });
    Event {
        id: EventId(id),
        kind: key.kind,
        transition,
        revision: active.revision,
        targets: vec![key.region.clone()],
        reach,
        at,
        priority,
        detail: EventDetail::Alert {
            started_at: active.started_at,
            raw_kind: active.raw_kind.clone(),
            subject: Some(subject),
            level: content.level,
            threats: content.threats,
            texts: content.texts,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alerts::ThreatKind;
    use crate::matcher::MatchIndex;
    use crate::regions::tests_support::*;

    fn t(secs: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_700_000_000 + secs, 0).expect("valid timestamp")
    }

    fn rid(s: &str) -> RegionId {
        RegionId::parse(s).expect("id")
    }

    fn air(region: &str) -> ObservedAlert {
        seen(AlertKind::AirRaid, region, 0)
    }

    fn seen(kind: AlertKind, region: &str, started: i64) -> ObservedAlert {
        ObservedAlert {
            key: AlertKey { kind, region: rid(region) },
            started_at: t(started),
            raw_kind: None,
            level: None,
            threats: Vec::new(),
            texts: Vec::new(),
        }
    }

    /// Artillery over Lviv oblast since two days before the tests' clock: a snapshot
    /// that keeps it is never empty, so the plain diff is what the tests see.
    fn baseline() -> ObservedAlert {
        seen(AlertKind::Artillery, LVIV_OBLAST, -2 * 86_400)
    }

    fn obs(source: &str, at: i64, alerts: Vec<ObservedAlert>) -> Observation {
        Observation { source: source.into(), at: t(at), alerts, explicit_ends: false }
    }

    /// Residents by what they chose: 1 Kindrashivka village, 2 Kupiansk city, 3 Kharkiv
    /// city, 5 Kupiansk raion, 6 Kharkiv oblast, 7 Lviv oblast.
    const RESIDENTS: [(i64, &str); 6] =
        [(1, KINDRASHIVKA), (2, KUPIANSK), (3, KHARKIV), (5, RAION), (6, OBLAST), (7, LVIV_OBLAST)];

    /// Runs observations through the alert state and the match index and returns, per
    /// resident, the air-raid messages they would get: `+` a start, `-` an all-clear,
    /// `~` an update, each with the alert's region's last 5 digits.
    fn told(state: &mut AlertState, steps: Vec<Observation>) -> BTreeMap<i64, Vec<String>> {
        let tree = tree();
        let index = MatchIndex::build(&tree, RESIDENTS.iter().map(|(s, p)| (*s, rid(p))));
        let mut told: BTreeMap<i64, Vec<String>> = RESIDENTS.iter().map(|(s, _)| (*s, Vec::new())).collect();
        for o in steps {
            for e in state.apply(&o, &tree).events {
                if e.kind != AlertKind::AirRaid {
                    continue;
                }
                let sign = match e.transition {
                    Transition::Started => "+",
                    Transition::Ended => "-",
                    _ => "~",
                };
                let region = &e.targets[0].as_str()[14..];
                for r in index.recipients(&tree, &e.targets, &e.reach) {
                    told.entry(r).or_default().push(format!("{sign}{region}"));
                }
            }
        }
        told.retain(|_, v| !v.is_empty());
        told
    }

    fn state() -> AlertState {
        AlertState::new(Duration::minutes(5), Duration::minutes(5))
    }

    fn expect(pairs: &[(i64, &[&str])]) -> BTreeMap<i64, Vec<String>> {
        pairs.iter().map(|(r, m)| (*r, m.iter().map(|s| s.to_string()).collect())).collect()
    }

    const O: &str = "+41885";
    const O_END: &str = "-41885";

    #[test]
    fn an_evacuation_starts_in_the_most_urgent_class() {
        let mut st = state();
        let events = st.apply(&obs("cap", 0, vec![baseline(), seen(AlertKind::Evacuation, RAION, 0)]), &tree()).events;
        let evac: Vec<_> = events.iter().filter(|e| e.kind == AlertKind::Evacuation).collect();
        assert_eq!(evac.len(), 1);
        assert_eq!((evac[0].transition, evac[0].priority), (Transition::Started, Priority::MandatoryEvacuation));
        let events = st.apply(&obs("cap", 10, vec![baseline()]), &tree()).events;
        assert_eq!(
            events.iter().map(|e| (e.kind, e.priority)).collect::<Vec<_>>(),
            [(AlertKind::Evacuation, Priority::End)]
        );
    }

    #[test]
    fn raion_then_oblast_rings_once_and_clears_the_raion_only_when_it_ends() {
        let got = told(
            &mut state(),
            vec![
                obs("a", 0, vec![baseline(), air(RAION)]),
                obs("a", 10, vec![baseline(), air(RAION), air(OBLAST)]),
                obs("a", 20, vec![baseline(), air(RAION)]),
                obs("a", 30, vec![baseline()]),
            ],
        );
        let raion: &[&str] = &["+32022", "-32022"];
        assert_eq!(got, expect(&[(1, raion), (2, raion), (3, &[O, O_END]), (5, raion), (6, raion)]));
    }

    #[test]
    fn oblast_then_raion_clears_kharkiv_first_and_the_raion_at_its_end() {
        let got = told(
            &mut state(),
            vec![
                obs("a", 0, vec![baseline(), air(OBLAST)]),
                obs("a", 10, vec![baseline(), air(OBLAST), air(RAION)]),
                obs("a", 20, vec![baseline(), air(RAION)]),
                obs("a", 30, vec![baseline()]),
            ],
        );
        let inside: &[&str] = &[O, "-32022"];
        assert_eq!(got, expect(&[(1, inside), (2, inside), (3, &[O, O_END]), (5, inside), (6, inside)]));
    }

    #[test]
    fn two_hromadas_of_one_raion_ring_the_raion_and_oblast_once() {
        let got = told(
            &mut state(),
            vec![
                obs("a", 0, vec![baseline(), air(KINDRASHIVKA_H)]),
                obs("a", 10, vec![baseline(), air(KINDRASHIVKA_H), air(KUPIANSK_H)]),
                obs("a", 20, vec![baseline(), air(KUPIANSK_H)]),
                obs("a", 30, vec![baseline()]),
            ],
        );
        assert_eq!(
            got,
            expect(&[
                (1, &["+80622", "-80622"]),
                (2, &["+67457", "-67457"]),
                (5, &["+80622", "-67457"]),
                (6, &["+80622", "-67457"]),
            ])
        );
    }

    #[test]
    fn two_sources_at_different_levels_ring_once_and_confirm_each_other_s_ends() {
        // The oblast comes from one source, the raion from another; each then goes quiet
        // with an empty list, which the other, healthy source confirms.
        let got = told(
            &mut state(),
            vec![
                obs("a", 0, vec![air(OBLAST)]),
                obs("b", 1, vec![air(RAION)]),
                obs("a", 10, vec![]),
                obs("b", 11, vec![]),
            ],
        );
        let inside: &[&str] = &[O, "-32022"];
        assert_eq!(got, expect(&[(1, inside), (2, inside), (3, &[O, O_END]), (5, inside), (6, inside)]));
    }

    #[test]
    fn one_alert_from_two_sources_is_one_alert() {
        let got = told(
            &mut state(),
            vec![
                obs("a", 0, vec![baseline(), air(OBLAST)]),
                obs("b", 1, vec![baseline(), air(OBLAST)]),
                obs("a", 10, vec![baseline()]),
                obs("b", 11, vec![baseline()]),
            ],
        );
        assert_eq!(got[&3], vec![O, O_END], "a second source only confirms; the end waits for both");
        assert_eq!(got.len(), 5, "{got:?}");
    }

    #[test]
    fn an_alert_that_ends_and_comes_back_with_the_same_start_is_announced_again() {
        let mut s = state();
        let tree = tree();
        let ids = |s: &mut AlertState, o: Observation| -> Vec<String> {
            s.apply(&o, &tree).events.into_iter().filter(|e| e.kind == AlertKind::AirRaid).map(|e| e.id.0).collect()
        };
        let first = ids(&mut s, obs("a", 0, vec![baseline(), air(RAION)]));
        let end = ids(&mut s, obs("a", 10, vec![baseline()]));
        let again = ids(&mut s, obs("a", 20, vec![baseline(), air(RAION)]));
        let end_again = ids(&mut s, obs("a", 30, vec![baseline()]));
        assert_eq!(first.len(), 1);
        assert_eq!(again.len(), 1);
        assert_ne!(first, again, "each occurrence has its own id");
        assert_ne!(end, end_again);
        assert!(again[0].ends_with(":started") && end_again[0].ends_with(":ended"));
    }

    #[test]
    fn an_empty_list_after_errors_is_held_and_errors_restart_the_window() {
        // The regression: [alert], [], 500, [], [] once sent an all-clear to everyone.
        let mut s = state();
        let tree = tree();
        assert_eq!(s.apply(&obs("a", 0, vec![air(RAION)]), &tree).events.len(), 1);
        let mut ends = 0;
        // Ten minutes of empty lists broken by failures every other minute.
        for minute in 1..=10 {
            let applied = s.apply(&obs("a", minute * 60, vec![]), &tree);
            assert!(matches!(applied.suspect, Some(Suspect::Holding { held: 1, .. })), "minute {minute}: {applied:?}");
            ends += applied.events.len();
            if minute % 2 == 0 {
                s.failed("a");
            }
        }
        assert_eq!(ends, 0);
        let health = s.health(t(600));
        assert!(health[0].stale, "held answers are not successes: {health:?}");
    }

    #[test]
    fn an_empty_list_that_persists_for_the_window_is_believed() {
        let mut s = state();
        let tree = tree();
        s.apply(&obs("a", 0, vec![air(RAION)]), &tree);
        for at in [10, 100, 200, 299] {
            let applied = s.apply(&obs("a", at, vec![]), &tree);
            assert!(applied.events.is_empty(), "at {at}: {applied:?}");
        }
        let applied = s.apply(&obs("a", 310, vec![]), &tree);
        assert_eq!(applied.suspect, Some(Suspect::Believed { since: t(10) }));
        assert_eq!(applied.events.len(), 1);
        assert_eq!(applied.events[0].transition, Transition::Ended);
    }

    #[test]
    fn losing_long_standing_alerts_with_most_others_is_held_but_one_all_clear_is_believed() {
        let mut s = state();
        let tree = tree();
        let all = vec![baseline(), air(RAION), air(KHARKIV_CITY_H)];
        s.apply(&obs("a", 0, all.clone()), &tree);
        // An ordinary all-clear: one alert drops out, the rest stay.
        let applied = s.apply(&obs("a", 10, vec![baseline(), air(KHARKIV_CITY_H)]), &tree);
        assert_eq!(applied.suspect, None);
        assert_eq!(applied.events.len(), 1);
        // The long-standing alert and most others vanish together: a fault.
        s.apply(&obs("a", 20, all), &tree);
        let applied = s.apply(&obs("a", 30, vec![air(KHARKIV_CITY_H)]), &tree);
        assert!(matches!(applied.suspect, Some(Suspect::Holding { held: 2, .. })), "{applied:?}");
        assert!(applied.events.is_empty());
    }

    #[test]
    fn a_change_of_threats_or_level_is_an_update_for_everyone_under_the_alert() {
        let mut raion = air(RAION);
        raion.threats = vec![Threat::at(ThreatKind::Drones, AlertLevel::Yellow)];
        let mut worse = raion.clone();
        worse.threats =
            vec![Threat::of(ThreatKind::BallisticMissiles), Threat::at(ThreatKind::Drones, AlertLevel::Yellow)];
        worse.level = Some(AlertLevel::Red);
        let got = told(
            &mut state(),
            vec![
                obs("a", 0, vec![baseline(), raion]),
                obs("a", 10, vec![baseline(), worse.clone()]),
                obs("a", 20, vec![baseline(), worse]),
            ],
        );
        let msgs: &[&str] = &["+32022", "~32022"];
        assert_eq!(got, expect(&[(1, msgs), (2, msgs), (5, msgs), (6, msgs)]));
    }

    #[test]
    fn a_threat_turning_red_is_an_update_and_its_restart_alone_is_not() {
        let drones = |level, at: i64| Threat { kind: ThreatKind::Drones, level: Some(level), started_at: Some(t(at)) };
        let mut yellow = air(RAION);
        yellow.level = Some(AlertLevel::Yellow);
        yellow.threats = vec![drones(AlertLevel::Yellow, 0)];
        let mut restarted = yellow.clone();
        restarted.threats = vec![drones(AlertLevel::Yellow, 5)];
        let mut red_threat = yellow.clone();
        red_threat.threats = vec![drones(AlertLevel::Red, 5)];
        let mut s = state();
        let tree = tree();
        s.apply(&obs("a", 0, vec![baseline(), yellow]), &tree);
        assert!(s.apply(&obs("a", 10, vec![baseline(), restarted]), &tree).events.is_empty());
        let events = s.apply(&obs("a", 20, vec![baseline(), red_threat]), &tree).events;
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].transition, Transition::Updated);
        let EventDetail::Alert { level, threats, .. } = &events[0].detail else { panic!("{:?}", events[0]) };
        assert_eq!(level, &Some(AlertLevel::Yellow), "a yellow alert with a red threat stays yellow");
        assert_eq!(threats, &vec![drones(AlertLevel::Red, 5)]);
    }

    #[test]
    fn stale_source_does_not_keep_an_alert_alive() {
        let mut s = state();
        let tree = tree();
        s.apply(&obs("a", 0, vec![baseline(), air(OBLAST)]), &tree);
        s.apply(&obs("b", 0, vec![baseline(), air(OBLAST)]), &tree);
        // b goes silent; ten minutes later a says the alert is over.
        let events = s.apply(&obs("a", 600, vec![baseline()]), &tree).events;
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].transition, Transition::Ended);
    }

    #[test]
    fn state_survives_a_json_round_trip_and_reads_the_older_format() {
        let tree = tree();
        let mut s = state();
        s.apply(&obs("a", 0, vec![baseline(), air(OBLAST)]), &tree);
        let json = serde_json::to_string(&s).expect("serialises");
        let back: AlertState = serde_json::from_str(&json).expect("deserialises");
        assert_eq!(back, s);
        // The format before occurrences, content and the hold window.
        let mut old: serde_json::Value = serde_json::from_str(&json).expect("json");
        for pair in old["active"].as_array_mut().expect("pairs") {
            let active = pair[1].as_object_mut().expect("active");
            for k in ["subject", "content", "revision"] {
                active.remove(k);
            }
        }
        let top = old.as_object_mut().expect("object");
        top.remove("hold_for");
        top.remove("occurrences");
        top.insert("confirm_empty".into(), 3.into());
        let mut back: AlertState = serde_json::from_value(old).expect("older format reads");
        // The restored alert's end is still announced, under the subject it had.
        let events = back.apply(&obs("a", 10, vec![baseline()]), &tree).events;
        let start = t(0).format("%Y%m%dT%H%M%SZ");
        assert_eq!(events[0].id.0, format!("air_raid:{OBLAST}:{start}:ended"));
    }
}
