//! What an alert is about in detail: the kinds of threat the feeds name, and each
//! threat an alert carries with its own level and start.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::AlertLevel;

/// What flies or threatens (alerts.in.ua `threat_type`, ukrainealarm's level reasons).
/// The derived order is the order messages name them in.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ThreatKind {
    BallisticMissiles,
    CruiseMissiles,
    /// Missiles of a type not said (alerts.in.ua `unspecified_missiles`, ukrainealarm's
    /// "Ракетна загроза").
    UnspecifiedMissiles,
    Drones,
    GuidedBombs,
    /// Tactical aviation (alerts.in.ua `tactic_aircraft_activity`).
    Aircraft,
    StrategicAviation,
    Mig31kDeparture,
    AirDefense,
    /// A threat the feed itself calls unknown (alerts.in.ua `unknown`).
    Unidentified,
    /// A name sirena does not know, kept as the feed spelled it: it may be a threat.
    Unknown(String),
}

impl ThreatKind {
    /// Reads a feed's threat name (snake_case, kebab-case or spaces, singular or
    /// plural, case-insensitive); never fails.
    pub fn parse(s: &str) -> ThreatKind {
        let norm: String =
            s.trim().to_ascii_lowercase().chars().map(|c| if c == '-' || c == ' ' { '_' } else { c }).collect();
        match norm.trim_end_matches('s') {
            "ballistic" | "ballistic_missile" | "ballistic_missile_threat" => ThreatKind::BallisticMissiles,
            "cruise" | "cruise_missile" => ThreatKind::CruiseMissiles,
            "unspecified_missile" | "missile" | "rocket" => ThreatKind::UnspecifiedMissiles,
            "drone" | "uav" | "shahed" | "attack_drone" => ThreatKind::Drones,
            "guided_bomb" | "guided_aerial_bomb" | "kab" | "glide_bomb" => ThreatKind::GuidedBombs,
            "aircraft" | "aviation" | "tactical_aviation" | "tactic_aircraft_activity" | "plane" => {
                ThreatKind::Aircraft
            }
            "strategic_aviation" | "strategic_aircraft_activity" => ThreatKind::StrategicAviation,
            "mig31k_departure" | "mig31k" => ThreatKind::Mig31kDeparture,
            "air_defense" | "air_defence" => ThreatKind::AirDefense,
            "unknown" | "unidentified" => ThreatKind::Unidentified,
            _ => ThreatKind::Unknown(s.trim().to_owned()),
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            ThreatKind::BallisticMissiles => "ballistic_missiles",
            ThreatKind::CruiseMissiles => "cruise_missiles",
            ThreatKind::UnspecifiedMissiles => "unspecified_missiles",
            ThreatKind::Drones => "drones",
            ThreatKind::GuidedBombs => "guided_bombs",
            ThreatKind::Aircraft => "aircraft",
            ThreatKind::StrategicAviation => "strategic_aviation",
            ThreatKind::Mig31kDeparture => "mig31k_departure",
            ThreatKind::AirDefense => "air_defense",
            ThreatKind::Unidentified => "unidentified",
            ThreatKind::Unknown(s) => s,
        }
    }
}

/// One threat an alert carries: its kind, and its own level and start where the feed
/// gives them — a yellow alert can carry a red threat (alerts.in.ua `threats[]`).
///
/// Saved alert state and events from before threats had levels hold a bare kind
/// (`"drones"`, `{"unknown":"x"}`); those still read, as a threat without level.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(from = "ThreatRepr")]
pub struct Threat {
    pub kind: ThreatKind,
    /// This threat's own level, independent of its alert's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub level: Option<AlertLevel>,
    /// Since when the feed reports this threat; not news by itself (a restart of the
    /// same threat at the same level is no update).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<DateTime<Utc>>,
}

/// A saved threat, in either of its formats.
#[derive(Deserialize)]
#[serde(untagged)]
enum ThreatRepr {
    Full {
        kind: ThreatKind,
        #[serde(default)]
        level: Option<AlertLevel>,
        #[serde(default)]
        started_at: Option<DateTime<Utc>>,
    },
    Bare(ThreatKind),
}

impl From<ThreatRepr> for Threat {
    fn from(r: ThreatRepr) -> Threat {
        match r {
            ThreatRepr::Full { kind, level, started_at } => Threat { kind, level, started_at },
            ThreatRepr::Bare(kind) => Threat::of(kind),
        }
    }
}

impl Threat {
    /// A threat of `kind` with no level or start of its own.
    pub fn of(kind: ThreatKind) -> Threat {
        Threat { kind, level: None, started_at: None }
    }

    /// A threat of `kind` at `level`.
    pub fn at(kind: ThreatKind, level: AlertLevel) -> Threat {
        Threat { kind, level: Some(level), started_at: None }
    }

    /// One threat per kind, in [`ThreatKind`] order: threats of one kind (from two
    /// entries or two sources) merge into the stronger level and the earlier start.
    pub fn merged(threats: impl IntoIterator<Item = Threat>) -> Vec<Threat> {
        let mut by_kind: std::collections::BTreeMap<ThreatKind, Threat> = std::collections::BTreeMap::new();
        for t in threats {
            match by_kind.get_mut(&t.kind) {
                Some(seen) => {
                    seen.level = AlertLevel::stronger(seen.level.take(), t.level);
                    seen.started_at = match (seen.started_at, t.started_at) {
                        (Some(a), Some(b)) => Some(a.min(b)),
                        (a, b) => a.or(b),
                    };
                }
                None => {
                    by_kind.insert(t.kind.clone(), t);
                }
            }
        }
        by_kind.into_values().collect()
    }

    /// What residents are told of it: the kind and its level, not its start.
    pub fn news(&self) -> (&ThreatKind, Option<&AlertLevel>) {
        (&self.kind, self.level.as_ref())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Saved state and events from before threats had levels hold bare kinds.
    #[test]
    fn threats_read_in_the_old_and_the_new_format() {
        let old: Vec<Threat> = serde_json::from_str(r#"["drones",{"unknown":"hypersonic"}]"#).expect("old format");
        assert_eq!(old, vec![Threat::of(ThreatKind::Drones), Threat::of(ThreatKind::Unknown("hypersonic".into()))]);
        let t = Threat {
            kind: ThreatKind::BallisticMissiles,
            level: Some(AlertLevel::Red),
            started_at: DateTime::from_timestamp(1_790_000_000, 0),
        };
        let json = serde_json::to_string(&t).expect("serialises");
        assert_eq!(json, r#"{"kind":"ballistic_missiles","level":"red","started_at":"2026-09-21T14:13:20Z"}"#);
        assert_eq!(serde_json::from_str::<Threat>(&json).expect("reads back"), t);
        assert_eq!(
            serde_json::from_str::<Threat>(r#"{"kind":"drones"}"#).expect("bare"),
            Threat::of(ThreatKind::Drones)
        );
    }

    #[test]
    fn threats_of_one_kind_merge_into_the_stronger_level_and_earlier_start() {
        let at = |s| DateTime::from_timestamp(s, 0);
        let merged = Threat::merged([
            Threat { kind: ThreatKind::Drones, level: Some(AlertLevel::Yellow), started_at: at(20) },
            Threat::at(ThreatKind::BallisticMissiles, AlertLevel::Red),
            Threat { kind: ThreatKind::Drones, level: Some(AlertLevel::Red), started_at: at(10) },
            Threat::of(ThreatKind::Drones),
        ]);
        assert_eq!(
            merged,
            vec![
                Threat::at(ThreatKind::BallisticMissiles, AlertLevel::Red),
                Threat { kind: ThreatKind::Drones, level: Some(AlertLevel::Red), started_at: at(10) },
            ]
        );
    }

    #[test]
    fn every_official_threat_type_has_a_kind() {
        let official = [
            ("tactic_aircraft_activity", ThreatKind::Aircraft),
            ("strategic_aircraft_activity", ThreatKind::StrategicAviation),
            ("mig31k_departure", ThreatKind::Mig31kDeparture),
            ("ballistic_missiles", ThreatKind::BallisticMissiles),
            ("cruise_missiles", ThreatKind::CruiseMissiles),
            ("unspecified_missiles", ThreatKind::UnspecifiedMissiles),
            ("drones", ThreatKind::Drones),
            ("guided_aerial_bombs", ThreatKind::GuidedBombs),
            ("air_defense", ThreatKind::AirDefense),
            ("unknown", ThreatKind::Unidentified),
        ];
        for (name, kind) in official {
            assert_eq!(ThreatKind::parse(name), kind, "{name}");
        }
        assert_eq!(ThreatKind::parse(" Hypersonic "), ThreatKind::Unknown("Hypersonic".into()));
    }
}
