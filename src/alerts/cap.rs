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

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use super::area::regions_in;
use super::state::ObservedAlert;
use super::{AlertKey, AlertKind};
use crate::regions::{RegionId, RegionTree};
use crate::sources::alerts_in_ua::kind_of;
use crate::sources::cap::{CapInfo, CapMessage, CapReference, CapStatus, Category, MsgType, ResponseType, triple};

mod words;

pub use words::areas_in_words;

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
mod tests;
