//! CAP alerts: the lifecycle of messages that name each other.
//!
//! Unlike a snapshot feed, a CAP sender says what changed: an `Alert` starts an alert,
//! an `Update` replaces its content, a `Cancel` ends it, both naming the earlier
//! messages in `references`. [`CapBook`] keeps that lifecycle, the way the order book
//! keeps orders, and offers the result as a snapshot ([`CapBook::observed`]) for the
//! alert state to diff, so CAP merges with the other sources by the same rules.
//!
//! - An alert's identity is its first message's `sender,identifier,sent`. Messages are
//!   matched by `sender,identifier`, which CAP requires to be unique per sender, so a
//!   reference that writes `sent` in another offset still matches.
//! - Only `Actual` messages count (DESIGN §4): every other status is ignored, and said
//!   so, for the caller to count.
//! - An Update names its alert by the last of its references the book knows. An
//!   Update whose alert the book never saw starts it (under the identity of the
//!   earliest reference, so the original arriving later is a duplicate). A Cancel of
//!   an unknown alert is ignored.
//! - An Update whose area resolves to no region keeps the regions it had: a sender
//!   speaking of places sirena does not know must not silently end a warning.
//! - The latest `expires` of the infos ends an alert; [`CapBook::active`] leaves
//!   expired ones out. Ended alerts are kept [`KEEP_ENDED`] so a message seen again
//!   stays a duplicate rather than a new start; [`CapBook::prune`] drops them after.
//! - `effective` and `onset` are not waited for: a warning is told when it is sent.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use super::area::regions_in;
use super::state::ObservedAlert;
use super::{AlertKey, AlertKind};
use crate::regions::{RegionId, RegionTree};
use crate::sources::alerts_in_ua::kind_of;
use crate::sources::cap::{CapInfo, CapMessage, CapReference, CapStatus, Category, MsgType, triple};

/// How long an ended alert is remembered after it ended.
pub const KEEP_ENDED: Duration = Duration::hours(24);

/// One info's text, in its language.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CapText {
    pub lang: String,
    pub event: String,
    pub headline: Option<String>,
    pub description: Option<String>,
    pub instruction: Option<String>,
}

/// An alert in force, as of its latest message.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CapActive {
    /// `sender,identifier,sent` of the alert's first message.
    pub identity: String,
    pub kind: AlertKind,
    /// The feed's kind (an `alert_type` code or the event text) when `kind` is unknown.
    pub raw_kind: Option<String>,
    /// The first message's `sent`.
    pub started_at: DateTime<Utc>,
    pub expires: Option<DateTime<Utc>>,
    /// Sorted, without duplicates; never empty.
    pub regions: Vec<RegionId>,
    /// One per info of the latest message, in its order.
    pub infos: Vec<CapText>,
}

impl CapActive {
    /// The text for a reader of `lang`; see [`pick_info`].
    pub fn pick_info(&self, lang: &str) -> Option<&CapText> {
        pick_info(&self.infos, lang)
    }
}

/// The info in the reader's language: the same tag, else the same primary subtag (`uk`
/// matches `uk-UA`, `en-GB` matches `en-US`), else the first. `None` only without infos.
pub fn pick_info<'a>(infos: &'a [CapText], lang: &str) -> Option<&'a CapText> {
    let primary = |tag: &str| tag.split(['-', '_']).next().unwrap_or_default().to_ascii_lowercase();
    infos
        .iter()
        .find(|t| t.lang.eq_ignore_ascii_case(lang))
        .or_else(|| infos.iter().find(|t| primary(&t.lang) == primary(lang)))
        .or(infos.first())
}

/// What [`CapBook::apply`] did with a message. Each names the alert's identity.
#[derive(Clone, Debug, PartialEq)]
pub enum CapApplied {
    Started(String),
    Updated(String),
    Cancelled(String),
    Ignored(CapIgnored),
}

/// Why a message changed nothing.
#[derive(Clone, Debug, PartialEq)]
pub enum CapIgnored {
    /// Exercise, Test, Draft, System, …: never delivered as real.
    NotActual(CapStatus),
    /// Ack, Error or a message type sirena does not know.
    NotAnAlert(MsgType),
    /// This message (`sender,identifier`) was applied before.
    Duplicate,
    /// A Cancel of an alert the book never saw; its references' triples.
    UnknownReference(Vec<String>),
    /// An Update or Cancel of an alert that already ended (its identity).
    Ended(String),
    /// No area of the message resolves to a region of the tree.
    NoArea,
    /// A new alert already past its `expires`.
    Expired,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Entry {
    alert: CapActive,
    cancelled_at: Option<DateTime<Utc>>,
}

impl Entry {
    fn is_active(&self, now: DateTime<Utc>) -> bool {
        self.cancelled_at.is_none() && self.alert.expires.is_none_or(|e| e > now)
    }

    fn ended_at(&self) -> Option<DateTime<Utc>> {
        match (self.cancelled_at, self.alert.expires) {
            (Some(c), Some(e)) => Some(c.min(e)),
            (c, e) => c.or(e),
        }
    }
}

/// The CAP alerts seen so far. Persisted between runs so a Cancel after a restart
/// still finds its alert.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CapBook {
    /// Identity → alert.
    alerts: BTreeMap<String, Entry>,
    /// `sender,identifier` of every message applied → the identity of its alert.
    messages: BTreeMap<String, String>,
}

/// What a message says about its alert.
struct Content {
    kind: AlertKind,
    raw_kind: Option<String>,
    expires: Option<DateTime<Utc>>,
    regions: Vec<RegionId>,
    infos: Vec<CapText>,
}

impl CapBook {
    /// Applies one decoded message; see the module docs for the rules.
    pub fn apply(&mut self, msg: &CapMessage, now: DateTime<Utc>, tree: &RegionTree) -> CapApplied {
        if msg.status != CapStatus::Actual {
            return CapApplied::Ignored(CapIgnored::NotActual(msg.status.clone()));
        }
        let own = message_key(&msg.sender, &msg.identifier);
        if self.messages.contains_key(&own) {
            return CapApplied::Ignored(CapIgnored::Duplicate);
        }
        match &msg.msg_type {
            MsgType::Alert => self.start(msg, msg.triple(), msg.sent.to_utc(), now, tree),
            MsgType::Update => match self.referenced(msg) {
                Some(identity) => self.update(msg, identity, now, tree),
                None => {
                    let first = msg.references.iter().min_by_key(|r| r.sent);
                    let identity = first.map_or_else(|| msg.triple(), CapReference::triple);
                    let started_at = first.map_or(msg.sent, |r| r.sent).to_utc();
                    self.start(msg, identity, started_at, now, tree)
                }
            },
            MsgType::Cancel => match self.referenced(msg) {
                Some(identity) => {
                    let Some(entry) = self.alerts.get_mut(&identity) else {
                        return CapApplied::Ignored(CapIgnored::UnknownReference(triples(msg)));
                    };
                    if !entry.is_active(now) {
                        return CapApplied::Ignored(CapIgnored::Ended(identity));
                    }
                    entry.cancelled_at = Some(now);
                    self.messages.insert(own, identity.clone());
                    CapApplied::Cancelled(identity)
                }
                None => CapApplied::Ignored(CapIgnored::UnknownReference(triples(msg))),
            },
            other => CapApplied::Ignored(CapIgnored::NotAnAlert(other.clone())),
        }
    }

    /// Every alert in force at `now`.
    pub fn active(&self, now: DateTime<Utc>) -> Vec<CapActive> {
        self.alerts.values().filter(|e| e.is_active(now)).map(|e| e.alert.clone()).collect()
    }

    /// The snapshot for the alert state: one alert per (kind, region) in force at
    /// `now`; where two CAP alerts share one, the earlier start.
    pub fn observed(&self, now: DateTime<Utc>) -> Vec<ObservedAlert> {
        let mut out: BTreeMap<AlertKey, ObservedAlert> = BTreeMap::new();
        for entry in self.alerts.values().filter(|e| e.is_active(now)) {
            let a = &entry.alert;
            for region in &a.regions {
                let key = AlertKey { kind: a.kind, region: region.clone() };
                let seen = ObservedAlert {
                    key: key.clone(),
                    started_at: a.started_at,
                    raw_kind: a.raw_kind.clone(),
                    level: None,
                    threats: Vec::new(),
                    texts: a.infos.clone(),
                };
                match out.get(&key) {
                    Some(earlier) if earlier.started_at <= seen.started_at => {}
                    _ => {
                        out.insert(key, seen);
                    }
                }
            }
        }
        out.into_values().collect()
    }

    /// Forgets alerts that ended at least [`KEEP_ENDED`] before `now`, and their
    /// messages. Returns how many alerts it dropped.
    pub fn prune(&mut self, now: DateTime<Utc>) -> usize {
        let before = self.alerts.len();
        self.alerts.retain(|_, e| e.ended_at().is_none_or(|end| end + KEEP_ENDED > now));
        let alerts = &self.alerts;
        self.messages.retain(|_, identity| alerts.contains_key(identity));
        before - self.alerts.len()
    }

    /// The identity of the alert a message refers to: the last reference the book knows.
    fn referenced(&self, msg: &CapMessage) -> Option<String> {
        msg.references.iter().rev().find_map(|r| self.messages.get(&message_key(&r.sender, &r.identifier))).cloned()
    }

    fn start(
        &mut self,
        msg: &CapMessage,
        identity: String,
        started_at: DateTime<Utc>,
        now: DateTime<Utc>,
        tree: &RegionTree,
    ) -> CapApplied {
        let c = content(msg, tree);
        if c.regions.is_empty() {
            return CapApplied::Ignored(CapIgnored::NoArea);
        }
        if c.expires.is_some_and(|e| e <= now) {
            return CapApplied::Ignored(CapIgnored::Expired);
        }
        let alert = CapActive {
            identity: identity.clone(),
            kind: c.kind,
            raw_kind: c.raw_kind,
            started_at,
            expires: c.expires,
            regions: c.regions,
            infos: c.infos,
        };
        self.alerts.insert(identity.clone(), Entry { alert, cancelled_at: None });
        // An Update that started the alert stands for the messages it names too.
        for r in &msg.references {
            self.messages.insert(message_key(&r.sender, &r.identifier), identity.clone());
        }
        self.messages.insert(message_key(&msg.sender, &msg.identifier), identity.clone());
        CapApplied::Started(identity)
    }

    fn update(&mut self, msg: &CapMessage, identity: String, now: DateTime<Utc>, tree: &RegionTree) -> CapApplied {
        let Some(entry) = self.alerts.get_mut(&identity) else {
            return CapApplied::Ignored(CapIgnored::UnknownReference(triples(msg)));
        };
        if !entry.is_active(now) {
            return CapApplied::Ignored(CapIgnored::Ended(identity));
        }
        if !msg.infos.is_empty() {
            let c = content(msg, tree);
            let a = &mut entry.alert;
            a.kind = c.kind;
            a.raw_kind = c.raw_kind;
            a.expires = c.expires;
            a.infos = c.infos;
            if !c.regions.is_empty() {
                a.regions = c.regions;
            }
        }
        self.messages.insert(message_key(&msg.sender, &msg.identifier), identity.clone());
        CapApplied::Updated(identity)
    }
}

fn message_key(sender: &str, identifier: &str) -> String {
    format!("{sender},{identifier}")
}

fn triples(msg: &CapMessage) -> Vec<String> {
    msg.references.iter().map(|r| triple(&r.sender, &r.identifier, &r.sent)).collect()
}

fn content(msg: &CapMessage, tree: &RegionTree) -> Content {
    let mut regions: Vec<RegionId> =
        msg.infos.iter().flat_map(|i| &i.areas).flat_map(|a| regions_in(a.shape(), tree)).collect();
    regions.sort();
    regions.dedup();
    let (kind, raw_kind) = kind(&msg.infos);
    Content {
        kind,
        raw_kind,
        expires: msg.infos.iter().filter_map(|i| i.expires).map(|e| e.to_utc()).max(),
        regions,
        infos: msg
            .infos
            .iter()
            .map(|i| CapText {
                lang: i.language.clone(),
                event: i.event.clone(),
                headline: i.headline.clone(),
                description: i.description.clone(),
                instruction: i.instruction.clone(),
            })
            .collect(),
    }
}

/// An `alert_type` event code (alerts.in.ua's names), else CBRNE → chemical, else
/// unknown, with the event text kept.
fn kind(infos: &[CapInfo]) -> (AlertKind, Option<String>) {
    let code = infos
        .iter()
        .flat_map(|i| &i.event_codes)
        .find(|(name, _)| name.trim().eq_ignore_ascii_case("alert_type"))
        .map(|(_, value)| value.trim());
    if let Some(value) = code {
        let kind = kind_of(&value.to_ascii_lowercase());
        return (kind, (kind == AlertKind::Unknown).then(|| value.to_owned()));
    }
    if infos.iter().any(|i| i.categories.contains(&Category::Cbrne)) {
        return (AlertKind::Chemical, None);
    }
    (AlertKind::Unknown, infos.first().map(|i| i.event.clone()).filter(|e| !e.is_empty()))
}

#[cfg(test)]
mod tests {
    use chrono::{DateTime, FixedOffset};

    use super::*;
    use crate::regions::tests_support::{KUPIANSK, KUPIANSK_H, OBLAST, RAION};
    use crate::regions::{Level, Point, Region};
    use crate::sources::cap::{CapArea, Certainty, Severity, Urgency};

    const SENDER: &str = "dsns@example.gov.ua";

    fn rid(s: &str) -> RegionId {
        RegionId::parse(s).expect("id")
    }

    fn tree() -> RegionTree {
        let region = |id: &str, parent: Option<&str>, level, point: Option<Point>| Region {
            point,
            ..Region::bare(rid(id), parent.map(rid), level)
        };
        RegionTree::build(vec![
            region(OBLAST, None, Level::Oblast, None),
            region(RAION, Some(OBLAST), Level::Raion, None),
            region(KUPIANSK_H, Some(RAION), Level::Hromada, None),
            region(KUPIANSK, Some(KUPIANSK_H), Level::City, Some(Point { lat: 49.717, lon: 37.583 })),
        ])
        .expect("tree")
    }

    fn at(s: &str) -> DateTime<FixedOffset> {
        DateTime::parse_from_rfc3339(s).expect("date")
    }

    fn now() -> DateTime<Utc> {
        at("2024-01-01T10:05:00+00:00").to_utc()
    }

    fn geocode(id: &str) -> CapArea {
        CapArea { desc: id.into(), polygons: vec![], circles: vec![], geocodes: vec![("KATOTTG".into(), id.into())] }
    }

    fn info(lang: &str, headline: &str, area: CapArea) -> CapInfo {
        CapInfo {
            language: lang.into(),
            categories: vec![Category::Safety],
            event: "Повітряна тривога".into(),
            urgency: Urgency::Immediate,
            severity: Severity::Extreme,
            certainty: Certainty::Observed,
            headline: Some(headline.into()),
            description: None,
            instruction: None,
            effective: None,
            onset: None,
            expires: Some(at("2024-01-01T12:00:00+00:00")),
            event_codes: vec![("alert_type".into(), "air_raid".into())],
            parameters: vec![],
            areas: vec![area],
        }
    }

    fn msg(id: &str, msg_type: MsgType, refs: &[&str], infos: Vec<CapInfo>) -> CapMessage {
        CapMessage {
            identifier: id.into(),
            sender: SENDER.into(),
            sent: at("2024-01-01T10:00:00+00:00"),
            status: CapStatus::Actual,
            msg_type,
            scope: None,
            references: refs
                .iter()
                .map(|r| CapReference {
                    sender: SENDER.into(),
                    identifier: (*r).into(),
                    sent: at("2024-01-01T10:00:00Z"),
                })
                .collect(),
            infos,
        }
    }

    fn air_raid(id: &str) -> CapMessage {
        msg(id, MsgType::Alert, &[], vec![info("uk-UA", "Тривога", geocode(KUPIANSK_H))])
    }

    fn identity(id: &str) -> String {
        format!("{SENDER},{id},2024-01-01T10:00:00+00:00")
    }

    #[test]
    fn an_alert_starts_and_is_observed() {
        let mut book = CapBook::default();
        assert_eq!(book.apply(&air_raid("A1"), now(), &tree()), CapApplied::Started(identity("A1")));
        let active = book.active(now());
        assert_eq!(active.len(), 1);
        assert_eq!(active[0].kind, AlertKind::AirRaid);
        assert_eq!(active[0].regions, vec![rid(KUPIANSK_H)]);
        assert_eq!(active[0].started_at, at("2024-01-01T10:00:00Z").to_utc());
        let observed = book.observed(now());
        assert_eq!(observed.len(), 1);
        assert_eq!(observed[0].key, AlertKey { kind: AlertKind::AirRaid, region: rid(KUPIANSK_H) });
        assert_eq!(observed[0].started_at, active[0].started_at);
    }

    #[test]
    fn an_update_replaces_regions_expiry_and_text() {
        let mut book = CapBook::default();
        book.apply(&air_raid("A1"), now(), &tree());
        let mut new = info(
            "uk-UA",
            "Тривога триває",
            CapArea {
                desc: "Куп’янськ".into(),
                polygons: vec![],
                circles: vec![((49.717, 37.583), 3.0)],
                geocodes: vec![],
            },
        );
        new.expires = Some(at("2024-01-01T14:00:00Z"));
        let update = msg("A2", MsgType::Update, &["A1"], vec![new]);
        assert_eq!(book.apply(&update, now(), &tree()), CapApplied::Updated(identity("A1")));
        let a = &book.active(now())[0];
        assert_eq!(a.regions, vec![rid(KUPIANSK)]);
        assert_eq!(a.expires, Some(at("2024-01-01T14:00:00Z").to_utc()));
        assert_eq!(a.infos[0].headline.as_deref(), Some("Тривога триває"));
        assert_eq!(a.started_at, at("2024-01-01T10:00:00Z").to_utc(), "an update does not restart");

        // An update about places the tree lacks keeps the regions it had.
        let elsewhere =
            msg("A3", MsgType::Update, &["A1", "A2"], vec![info("uk-UA", "?", geocode("UA46060250010015970"))]);
        assert_eq!(book.apply(&elsewhere, now(), &tree()), CapApplied::Updated(identity("A1")));
        assert_eq!(book.active(now())[0].regions, vec![rid(KUPIANSK)]);
    }

    #[test]
    fn a_cancel_ends_and_is_said_once() {
        let mut book = CapBook::default();
        book.apply(&air_raid("A1"), now(), &tree());
        let cancel = msg("C1", MsgType::Cancel, &["A1"], vec![]);
        assert_eq!(book.apply(&cancel, now(), &tree()), CapApplied::Cancelled(identity("A1")));
        assert!(book.active(now()).is_empty());
        assert!(book.observed(now()).is_empty());
        assert_eq!(book.apply(&cancel, now(), &tree()), CapApplied::Ignored(CapIgnored::Duplicate));
        let again = msg("C2", MsgType::Cancel, &["A1"], vec![]);
        assert_eq!(book.apply(&again, now(), &tree()), CapApplied::Ignored(CapIgnored::Ended(identity("A1"))));
        let late = msg("U1", MsgType::Update, &["A1"], vec![info("uk-UA", "x", geocode(KUPIANSK_H))]);
        assert_eq!(book.apply(&late, now(), &tree()), CapApplied::Ignored(CapIgnored::Ended(identity("A1"))));
    }

    #[test]
    fn a_cancel_of_an_unknown_alert_is_ignored() {
        let mut book = CapBook::default();
        let cancel = msg("C1", MsgType::Cancel, &["NEVER"], vec![]);
        assert_eq!(
            book.apply(&cancel, now(), &tree()),
            CapApplied::Ignored(CapIgnored::UnknownReference(vec![identity("NEVER")]))
        );
        assert_eq!(book, CapBook::default());
    }

    #[test]
    fn an_update_of_an_unknown_alert_starts_it_under_the_original_identity() {
        let mut book = CapBook::default();
        let update = msg("A2", MsgType::Update, &["A1"], vec![info("uk-UA", "x", geocode(KUPIANSK_H))]);
        assert_eq!(book.apply(&update, now(), &tree()), CapApplied::Started(identity("A1")));
        assert_eq!(book.apply(&air_raid("A1"), now(), &tree()), CapApplied::Ignored(CapIgnored::Duplicate));
        assert_eq!(book.active(now()).len(), 1);
    }

    #[test]
    fn the_last_known_reference_names_the_alert() {
        let mut book = CapBook::default();
        book.apply(&air_raid("A1"), now(), &tree());
        book.apply(&air_raid("B1"), now(), &tree());
        let cancel = msg("C1", MsgType::Cancel, &["A1", "B1", "UNSEEN"], vec![]);
        assert_eq!(book.apply(&cancel, now(), &tree()), CapApplied::Cancelled(identity("B1")));
        assert_eq!(book.active(now()).len(), 1);
    }

    #[test]
    fn exercises_tests_drafts_and_acks_are_never_active() {
        let mut book = CapBook::default();
        for status in [CapStatus::Exercise, CapStatus::Test, CapStatus::Draft, CapStatus::System] {
            let mut m = air_raid("X");
            m.status = status.clone();
            assert_eq!(book.apply(&m, now(), &tree()), CapApplied::Ignored(CapIgnored::NotActual(status)));
        }
        let ack = msg("K", MsgType::Ack, &["A1"], vec![]);
        assert_eq!(book.apply(&ack, now(), &tree()), CapApplied::Ignored(CapIgnored::NotAnAlert(MsgType::Ack)));
        assert_eq!(book, CapBook::default());
    }

    #[test]
    fn expiry_ends_and_prune_forgets_later() {
        let mut book = CapBook::default();
        book.apply(&air_raid("A1"), now(), &tree());
        let expiry = at("2024-01-01T12:00:00Z").to_utc();
        assert_eq!(book.active(expiry - Duration::seconds(1)).len(), 1);
        assert!(book.active(expiry).is_empty(), "ends at its expires");
        assert!(book.observed(expiry).is_empty());

        assert_eq!(book.prune(expiry + Duration::hours(1)), 0, "kept a while after it ended");
        assert_eq!(book.apply(&air_raid("A1"), expiry, &tree()), CapApplied::Ignored(CapIgnored::Duplicate));
        assert_eq!(book.prune(expiry + KEEP_ENDED), 1);
        assert_eq!(book, CapBook::default(), "its messages are forgotten too");

        let mut stale = air_raid("OLD");
        stale.infos[0].expires = Some(at("2024-01-01T10:01:00Z"));
        assert_eq!(book.apply(&stale, now(), &tree()), CapApplied::Ignored(CapIgnored::Expired));
    }

    #[test]
    fn a_message_seen_twice_is_a_no_op() {
        let mut book = CapBook::default();
        book.apply(&air_raid("A1"), now(), &tree());
        let before = book.clone();
        assert_eq!(book.apply(&air_raid("A1"), now(), &tree()), CapApplied::Ignored(CapIgnored::Duplicate));
        assert_eq!(book, before);
    }

    #[test]
    fn no_region_no_alert() {
        let mut book = CapBook::default();
        let m = msg("N", MsgType::Alert, &[], vec![info("en-US", "x", geocode("UA46060250010015970"))]);
        assert_eq!(book.apply(&m, now(), &tree()), CapApplied::Ignored(CapIgnored::NoArea));
        let bare = msg("N2", MsgType::Alert, &[], vec![]);
        assert_eq!(book.apply(&bare, now(), &tree()), CapApplied::Ignored(CapIgnored::NoArea));
    }

    #[test]
    fn kinds_from_codes_categories_or_the_event() {
        let mut i = info("uk-UA", "x", geocode(KUPIANSK_H));
        i.event_codes = vec![("ALERT_TYPE".into(), "drone_swarm".into())];
        assert_eq!(kind(std::slice::from_ref(&i)), (AlertKind::Unknown, Some("drone_swarm".into())));
        i.event_codes = vec![("SAME".into(), "CAE".into())];
        i.categories = vec![Category::Cbrne];
        assert_eq!(kind(std::slice::from_ref(&i)), (AlertKind::Chemical, None));
        i.categories = vec![Category::Met];
        assert_eq!(kind(&[i]), (AlertKind::Unknown, Some("Повітряна тривога".into())));
    }

    #[test]
    fn every_language_is_kept_and_picked_by_primary_subtag() {
        let mut book = CapBook::default();
        let m = msg(
            "L1",
            MsgType::Alert,
            &[],
            vec![info("en-US", "Air raid", geocode(KUPIANSK_H)), info("uk-UA", "Тривога", geocode(KUPIANSK))],
        );
        book.apply(&m, now(), &tree());
        let a = &book.active(now())[0];
        assert_eq!(a.regions, vec![rid(KUPIANSK_H), rid(KUPIANSK)], "areas of every info");
        assert_eq!(a.infos.len(), 2);
        assert_eq!(a.pick_info("uk").map(|t| t.headline.as_deref()), Some(Some("Тривога")));
        assert_eq!(a.pick_info("en-GB").map(|t| t.lang.as_str()), Some("en-US"));
        assert_eq!(a.pick_info("fr").map(|t| t.lang.as_str()), Some("en-US"), "else the first");
        assert_eq!(pick_info(&[], "uk"), None);
    }

    #[test]
    fn the_book_survives_a_json_round_trip() {
        let mut book = CapBook::default();
        book.apply(&air_raid("A1"), now(), &tree());
        let json = serde_json::to_string(&book).expect("serialises");
        let mut back: CapBook = serde_json::from_str(&json).expect("deserialises");
        assert_eq!(back, book);
        let cancel = msg("C1", MsgType::Cancel, &["A1"], vec![]);
        assert_eq!(back.apply(&cancel, now(), &tree()), CapApplied::Cancelled(identity("A1")));
    }
}
