//! Alert state: what is active where, and the events that tell residents about changes.
//!
//! Two kinds of input feed it. Snapshot sources (alerts.in.ua, later ukrainealarm)
//! report the full set of active alerts; [`state::AlertState`] diffs each source's
//! snapshots and merges sources. Evacuation orders come from operators' region files;
//! [`orders::OrderBook`] diffs one set of orders against the last.
//!
//! **Architecture invariant:** this module does no IO and cannot fail on input that
//! was already accepted. Give it data and a clock, get events back. Event ids are
//! deterministic, so replaying the same input after a restart produces the same ids,
//! and the outbox turns a replay into a no-op.

pub mod area;
pub mod cap;
pub mod coverage;
pub mod orders;
pub mod state;
pub mod status;
mod threat;

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::regions::RegionId;
use coverage::Reach;
pub use threat::{Threat, ThreatKind};

/// What the alert is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertKind {
    AirRaid,
    Artillery,
    UrbanFights,
    Chemical,
    Nuclear,
    Evacuation,
    Info,
    /// A kind a feed reported that sirena does not know yet. Kept, never dropped:
    /// residents get a generic, still-correct message.
    Unknown,
}

impl AlertKind {
    pub const ALL: [AlertKind; 8] = [
        AlertKind::AirRaid,
        AlertKind::Artillery,
        AlertKind::UrbanFights,
        AlertKind::Chemical,
        AlertKind::Nuclear,
        AlertKind::Evacuation,
        AlertKind::Info,
        AlertKind::Unknown,
    ];

    /// The kinds a resident may choose for a place: [`AlertKind::ALL`] but `Unknown`,
    /// in its order. A kind sirena does not know yet always comes through: it may be a
    /// threat. A kind's index here is in the filter buttons' data (`fk:<place>:<n>`)
    /// of keyboards already in residents' chats, so a new kind goes last (before
    /// `Unknown` in `ALL`), never between.
    pub const FILTERABLE: [AlertKind; AlertKind::ALL.len() - 1] = {
        let mut out = [AlertKind::Unknown; AlertKind::ALL.len() - 1];
        let (mut i, mut n) = (0, 0);
        while i < AlertKind::ALL.len() {
            if !matches!(AlertKind::ALL[i], AlertKind::Unknown) {
                // Out of bounds — a compile error — if `ALL` lost `Unknown`.
                out[n] = AlertKind::ALL[i];
                n += 1;
            }
            i += 1;
        }
        out
    };

    /// The kind [`AlertKind::as_str`] names.
    pub fn parse(s: &str) -> Option<AlertKind> {
        AlertKind::ALL.into_iter().find(|k| k.as_str() == s)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            AlertKind::AirRaid => "air_raid",
            AlertKind::Artillery => "artillery",
            AlertKind::UrbanFights => "urban_fights",
            AlertKind::Chemical => "chemical",
            AlertKind::Nuclear => "nuclear",
            AlertKind::Evacuation => "evacuation",
            AlertKind::Info => "info",
            AlertKind::Unknown => "unknown",
        }
    }
}

impl fmt::Display for AlertKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How serious an alert or one of its threats is, where the feed says (alerts.in.ua
/// `alert_level` and each threat's `level`, ukrainealarm `activeAlertLevels`). Yellow is
/// a lower tier and messages say so.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertLevel {
    Red,
    Yellow,
    /// A level sirena does not know, kept as the feed spelled it.
    Unknown(String),
}

impl AlertLevel {
    /// Reads a feed's level name, case-insensitively; never fails.
    pub fn parse(s: &str) -> AlertLevel {
        match s.trim().to_ascii_lowercase().as_str() {
            "red" => AlertLevel::Red,
            "yellow" => AlertLevel::Yellow,
            _ => AlertLevel::Unknown(s.trim().to_owned()),
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            AlertLevel::Red => "red",
            AlertLevel::Yellow => "yellow",
            AlertLevel::Unknown(s) => s,
        }
    }

    /// Red over yellow over a level sirena does not know over none; of two equal, `a`.
    pub fn stronger(a: Option<AlertLevel>, b: Option<AlertLevel>) -> Option<AlertLevel> {
        fn rank(l: &Option<AlertLevel>) -> u8 {
            match l {
                Some(AlertLevel::Red) => 3,
                Some(AlertLevel::Yellow) => 2,
                Some(AlertLevel::Unknown(_)) => 1,
                None => 0,
            }
        }
        if rank(&b) > rank(&a) { b } else { a }
    }
}

/// An alert is identified by what it is about and where.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct AlertKey {
    pub kind: AlertKind,
    pub region: RegionId,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Transition {
    Started,
    Updated,
    Ended,
    /// An order withdrawn as issued in error; everyone who got it is told.
    Cancelled,
}

impl Transition {
    pub fn as_str(self) -> &'static str {
        match self {
            Transition::Started => "started",
            Transition::Updated => "updated",
            Transition::Ended => "ended",
            Transition::Cancelled => "cancelled",
        }
    }
}

/// Delivery priority classes, highest first (DESIGN §7). The derived order is the
/// dispatch order: a smaller value goes out first. Each class has its own deadline
/// (`[dispatch.deadlines]`) and may be allowed Telegram's paid broadcast.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Priority {
    MandatoryEvacuation = 0,
    NuclearChemical = 1,
    /// A new threat in the resident's own hromada or settlement: an alert on a local
    /// region rather than a raion or the whole oblast.
    LocalThreat = 2,
    /// Every other start, and recommended evacuations. Events stored before the
    /// classes were refined called an air-raid start `air_raid_start`.
    #[serde(alias = "air_raid_start")]
    OtherStart = 3,
    Update = 4,
    End = 5,
    Info = 6,
}

impl Priority {
    pub const ALL: [Priority; 7] = [
        Priority::MandatoryEvacuation,
        Priority::NuclearChemical,
        Priority::LocalThreat,
        Priority::OtherStart,
        Priority::Update,
        Priority::End,
        Priority::Info,
    ];

    pub fn as_i64(self) -> i64 {
        self as i64
    }

    pub fn from_i64(n: i64) -> Option<Priority> {
        Priority::ALL.into_iter().find(|p| p.as_i64() == n)
    }

    /// The class's name in config (`[dispatch.deadlines]`, `paid_broadcast`).
    pub fn as_str(self) -> &'static str {
        match self {
            Priority::MandatoryEvacuation => "mandatory_evacuation",
            Priority::NuclearChemical => "nuclear_chemical",
            Priority::LocalThreat => "local_threat",
            Priority::OtherStart => "other_start",
            Priority::Update => "update",
            Priority::End => "end",
            Priority::Info => "info",
        }
    }
}

/// A deterministic event id: `kind:subject:occurrence:transition`, e.g.
/// `air_raid:UA63000000000041885:20231106T080000Z:started` or
/// `evacuation:kindrashivka-2023-11-06:r2:updated`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct EventId(pub String);

impl fmt::Display for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Something residents must hear about.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub id: EventId,
    pub kind: AlertKind,
    pub transition: Transition,
    pub revision: u32,
    /// Regions the event concerns; a subscriber place inside any of them is reached,
    /// unless `reach` leaves it out.
    pub targets: Vec<RegionId>,
    /// For an alert's start or end: what coverage leaves out of the targets and which
    /// enclosing places it adds (`coverage`). Empty for orders.
    #[serde(default, skip_serializing_if = "Reach::is_empty")]
    pub reach: Reach,
    pub at: DateTime<Utc>,
    pub priority: Priority,
    pub detail: EventDetail,
}

impl Event {
    /// What the event is about, shared by every event of one alert occurrence or one
    /// order: `air_raid:UA63000000000041885:20231106T080000Z`,
    /// `evacuation:kindrashivka-2023-11`. An all-clear goes to whoever was told of the
    /// same subject, and pending events of one subject for one reader are merged.
    pub fn subject(&self) -> String {
        match &self.detail {
            EventDetail::Order { order, .. } => format!("evacuation:{}", order.id),
            EventDetail::Broadcast { id, .. } => format!("broadcast:{id}"),
            EventDetail::Drill { drill, run, .. } => format!("drill:{drill}:{run}"),
            // A correction closes what it corrects: a reader who was never told the
            // original gets neither (`dispatch::plan`), and late subscribers are not
            // told of it.
            EventDetail::Correction { original, .. } => original.subject(),
            EventDetail::Alert { subject: Some(subject), .. } => subject.clone(),
            // Events stored before alerts carried their subject.
            EventDetail::Alert { subject: None, .. } => match self.id.0.rsplit_once(':') {
                Some((subject, _transition)) => subject.to_owned(),
                None => self.id.0.clone(),
            },
        }
    }

    /// True for the events that close their subject: an end or a cancellation.
    pub fn is_closing(&self) -> bool {
        matches!(self.transition, Transition::Ended | Transition::Cancelled)
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum EventDetail {
    /// A feed alert (air raid, shelling, …).
    Alert {
        /// When the alert started, as the first source to report it said.
        started_at: DateTime<Utc>,
        /// The kind name the feed used, kept for `unknown` kinds so operators see it.
        raw_kind: Option<String>,
        /// One occurrence of one alert: `air_raid:UA63…:20231106T080000Z:o12`. Every
        /// occurrence has its own, so an alert that ends and comes back with the same
        /// start time is announced again.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        subject: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        level: Option<AlertLevel>,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        threats: Vec<Threat>,
        /// The sender's own words per language (CAP); the reader's language is used,
        /// else the first.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        texts: Vec<cap::CapText>,
    },
    /// An evacuation order, as it stands after this transition.
    Order {
        order: Box<orders::Order>,
        /// What changed since the previous revision (for `updated`).
        changes: Vec<orders::Change>,
    },
    /// An operator's own words to the residents of a place (`/broadcast`), sent once a
    /// second operator approved the draft. Marked as an official message.
    Broadcast {
        /// The draft's number.
        id: String,
        /// The operator's text, as typed.
        text: String,
        by: i64,
        approved_by: i64,
    },
    /// A scheduled test (`[[drill]]`) to residents who opted in: marked as a drill in
    /// every language, the lowest class, never said like an alert.
    Drill {
        drill: String,
        /// When it was due, `20261201T100000Z`: one run of the drill.
        run: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        text: Option<String>,
    },
    /// `/cancel`: an earlier event was sent in error; everyone who got it is told.
    Correction { original: Box<Event>, by: i64 },
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Keyboards already sent carry these indices: the kinds there are keep their
    /// places, and only `Unknown` is left out.
    #[test]
    fn filterable_kinds_keep_their_button_numbers() {
        let names: Vec<&str> = AlertKind::FILTERABLE.iter().map(|k| k.as_str()).collect();
        let sent = ["air_raid", "artillery", "urban_fights", "chemical", "nuclear", "evacuation", "info"];
        assert_eq!(names.get(..sent.len()), Some(&sent[..]), "{names:?}");
        assert!(!AlertKind::FILTERABLE.contains(&AlertKind::Unknown));
        assert_eq!(AlertKind::FILTERABLE.len() + 1, AlertKind::ALL.len());
    }
}
