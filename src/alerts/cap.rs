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
//! - The latest `expires` of the infos ends an alert, when every info has one (an info
//!   without one, or with one that did not read, is in force until a Cancel);
//!   [`CapBook::active`] leaves expired ones out. Ended alerts are kept [`KEEP_ENDED`] so a message seen again
//!   stays a duplicate rather than a new start; [`CapBook::prune`] drops them after.
//! - `effective` and `onset` are not waited for: a warning is told when it is sent.
//! - Kind: an info whose `responseType` is `Evacuate`, or an evacuation event code
//!   (`alert_type` `evacuation`, the US EAS code `SAME` `EVI`), makes an evacuation: the
//!   sender tells people to leave, and the pipeline gives its start the most urgent
//!   class. A configured CAP source is an official sender (the operator chose it), so
//!   its word is taken. Else an `alert_type` code (alerts.in.ua's names), else CBRNE →
//!   chemical, else unknown with the event text kept.

use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use super::area::regions_in;
use super::state::ObservedAlert;
use super::{AlertKey, AlertKind};
use crate::regions::{RegionId, RegionTree};
use crate::sources::alerts_in_ua::kind_of;
use crate::sources::cap::{CapInfo, CapMessage, CapReference, CapStatus, Category, MsgType, ResponseType, triple};

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
    /// No area of the message resolves to a region of the tree; what the areas held,
    /// in words ("3 geocodes of scheme UGC, FIPS6 and no polygon").
    NoArea(String),
    /// A new alert already past its `expires`.
    Expired,
}

impl fmt::Display for CapApplied {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CapApplied::Started(id) => write!(f, "started the alert {id}"),
            CapApplied::Updated(id) => write!(f, "updated the alert {id}"),
            CapApplied::Cancelled(id) => write!(f, "cancelled the alert {id}"),
            CapApplied::Ignored(why) => write!(f, "ignored: {why}"),
        }
    }
}

impl fmt::Display for CapIgnored {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CapIgnored::NotActual(status) => {
                write!(f, "status {}, not Actual: never delivered as real", status.as_str())
            }
            CapIgnored::NotAnAlert(t) => {
                write!(f, "message type {}: neither an alert, an update nor a cancel", t.as_str())
            }
            CapIgnored::Duplicate => f.write_str("already applied (the same sender and identifier)"),
            CapIgnored::UnknownReference(refs) => {
                write!(f, "it refers to no alert sirena has seen ({})", refs.join(" "))
            }
            CapIgnored::Ended(id) => write!(f, "its alert {id} has already ended"),
            CapIgnored::NoArea(what) => write!(f, "no area in Ukraine: {what}"),
            CapIgnored::Expired => f.write_str("already past its expires"),
        }
    }
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
            return CapApplied::Ignored(CapIgnored::NoArea(areas_in_words(msg)));
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
        expires: expires(&msg.infos),
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

/// The latest `expires` of the infos, if every info has one; see the module docs.
fn expires(infos: &[CapInfo]) -> Option<DateTime<Utc>> {
    let all: Option<Vec<DateTime<Utc>>> = infos.iter().map(|i| i.expires.map(|e| e.to_utc())).collect();
    all.and_then(|all| all.into_iter().max())
}

/// What a message's areas held, for an operator to see why none is in Ukraine:
/// "3 geocodes of scheme UGC, FIPS6 and no polygon".
pub fn areas_in_words(msg: &CapMessage) -> String {
    if msg.infos.is_empty() {
        return "the message has no <info>, so no <area>".to_owned();
    }
    let areas: Vec<_> = msg.infos.iter().flat_map(|i| &i.areas).collect();
    if areas.is_empty() {
        return "its <info> names no <area>".to_owned();
    }
    let mut schemes: Vec<&str> = Vec::new();
    let mut geocodes = 0;
    for (name, _) in areas.iter().flat_map(|a| &a.geocodes) {
        geocodes += 1;
        let name = if name.trim().is_empty() { "(unnamed)" } else { name.trim() };
        if !schemes.contains(&name) {
            schemes.push(name);
        }
    }
    let count = |n: usize, one: &str, many: &str| match n {
        0 => format!("no {one}"),
        1 => format!("1 {one}"),
        n => format!("{n} {many}"),
    };
    let mut parts = vec![match geocodes {
        0 => "no geocode".to_owned(),
        n => format!("{} of scheme {}", count(n, "geocode", "geocodes"), schemes.join(", ")),
    }];
    let polygons = areas.iter().map(|a| a.polygons.len()).sum();
    let circles: usize = areas.iter().map(|a| a.circles.len()).sum();
    parts.push(count(polygons, "polygon", "polygons"));
    if circles > 0 {
        parts.push(count(circles, "circle", "circles"));
    }
    let last = parts.pop().unwrap_or_default();
    let mut words = parts.join(", ");
    words.push_str(" and ");
    words.push_str(&last);
    if polygons + circles > 0 {
        words.push_str(" holding no settlement sirena knows");
    }
    words
}

/// See the module docs for the order.
fn kind(infos: &[CapInfo]) -> (AlertKind, Option<String>) {
    let evacuate = infos.iter().any(|i| {
        i.response_types.contains(&ResponseType::Evacuate)
            || i.event_codes.iter().any(|(name, value)| {
                let (name, value) = (name.trim(), value.trim());
                (name.eq_ignore_ascii_case("alert_type") && value.eq_ignore_ascii_case("evacuation"))
                    || (name.eq_ignore_ascii_case("SAME") && value.eq_ignore_ascii_case("EVI"))
            })
    });
    if evacuate {
        return (AlertKind::Evacuation, None);
    }
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
            response_types: vec![ResponseType::Shelter],
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
            dropped: vec![],
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
        let why = CapIgnored::NoArea("1 geocode of scheme KATOTTG and no polygon".into());
        assert_eq!(book.apply(&m, now(), &tree()), CapApplied::Ignored(why));
        let bare = msg("N2", MsgType::Alert, &[], vec![]);
        assert_eq!(
            book.apply(&bare, now(), &tree()).to_string(),
            "ignored: no area in Ukraine: the message has no <info>, so no <area>"
        );

        let mut far = info("en-US", "x", geocode("UA46060250010015970"));
        far.areas[0].geocodes =
            vec![("UGC".into(), "MNZ020".into()), ("FIPS6".into(), "027031".into()), ("UGC".into(), "MNZ021".into())];
        far.areas.push(CapArea {
            desc: "b".into(),
            polygons: vec![vec![(1.0, 1.0), (1.0, 2.0), (2.0, 2.0)]],
            circles: vec![((1.0, 1.0), 3.0)],
            geocodes: vec![],
        });
        let m = msg("N3", MsgType::Alert, &[], vec![far]);
        assert_eq!(
            book.apply(&m, now(), &tree()).to_string(),
            "ignored: no area in Ukraine: 3 geocodes of scheme UGC, FIPS6, 1 polygon and 1 circle holding no settlement sirena knows"
        );
    }

    #[test]
    fn evacuate_or_an_evacuation_code_makes_an_evacuation() {
        let mut i = info("uk-UA", "Евакуація", geocode(RAION));
        i.response_types = vec![ResponseType::Evacuate];
        assert_eq!(kind(std::slice::from_ref(&i)), (AlertKind::Evacuation, None), "Evacuate beats alert_type air_raid");
        i.response_types = vec![ResponseType::Prepare];
        i.event_codes = vec![("SAME".into(), "EVI".into())];
        assert_eq!(kind(std::slice::from_ref(&i)), (AlertKind::Evacuation, None));
        i.event_codes = vec![("alert_type".into(), "Evacuation".into())];
        assert_eq!(kind(std::slice::from_ref(&i)), (AlertKind::Evacuation, None));
        i.event_codes = vec![];
        assert_eq!(kind(&[i]).0, AlertKind::Unknown, "Prepare alone is not an evacuation");
    }

    #[test]
    fn an_info_without_expires_keeps_the_alert_until_a_cancel() {
        let mut book = CapBook::default();
        let mut open = info("en-US", "x", geocode(KUPIANSK_H));
        open.expires = None;
        let m = msg("E1", MsgType::Alert, &[], vec![info("uk-UA", "x", geocode(KUPIANSK_H)), open]);
        book.apply(&m, now(), &tree());
        assert_eq!(book.active(now())[0].expires, None);
        assert_eq!(book.active(at("2024-01-02T00:00:00Z").to_utc()).len(), 1);
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
