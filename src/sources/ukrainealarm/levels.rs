//! ukrainealarm's `activeAlertLevels`: an alert's level and, from each entry's
//! Ukrainian `reason`, its threats at that entry's level and from its `createdAt`.
//! Enrichment: an entry or a part of the wrong shape is dropped and listed, never the
//! alert.

use serde_json::Value;

use super::{kind_name, timestamp};
use crate::alerts::{AlertLevel, Threat, ThreatKind};
use crate::sources::Dropped;

/// The alert's level (the most serious of its levels) and the threats its reasons
/// name, each at its entry's level and from its `createdAt`. Entries or parts of the
/// wrong shape are dropped and listed.
pub(super) fn levels(v: Option<&Value>, dropped: &mut Vec<Dropped>) -> (Option<AlertLevel>, Vec<Threat>) {
    const FIELD: &str = "activeAlertLevels";
    let entries = match v {
        None | Some(Value::Null) => return (None, Vec::new()),
        Some(Value::Array(a)) => a,
        Some(other) => {
            dropped.push(Dropped::new(FIELD, format!("{} instead of a list", kind_name(other))));
            return (None, Vec::new());
        }
    };
    let mut level = None;
    let mut threats = Vec::new();
    for entry in entries {
        let Some(entry) = entry.as_object() else {
            dropped.push(Dropped::new(FIELD, format!("an entry that is {}", kind_name(entry))));
            continue;
        };
        let mut text = |field: &str, what: &'static str| match entry.get(field) {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) if s.trim().is_empty() => None,
            Some(Value::String(s)) => Some(s.trim().to_owned()),
            Some(other) => {
                dropped.push(Dropped::new(what, kind_name(other)));
                None
            }
        };
        let entry_level = text("alertLevel", "activeAlertLevels.alertLevel").map(|name| AlertLevel::parse(&name));
        let reason = text("reason", "activeAlertLevels.reason");
        let created = text("createdAt", "activeAlertLevels.createdAt");
        let started_at = created.and_then(|c| match timestamp(Some(&Value::String(c)), "") {
            Ok(t) => Some(t),
            Err(_) => {
                dropped.push(Dropped::new("activeAlertLevels.createdAt", "a text that is not a time"));
                None
            }
        });
        level = AlertLevel::stronger(level, entry_level.clone());
        if let Some(reason) = reason {
            threats.extend(threats_in_reason(&reason).into_iter().map(|kind| Threat {
                kind,
                level: entry_level.clone(),
                started_at,
            }));
        }
    }
    (level, Threat::merged(threats))
}

/// The threats a level's Ukrainian `reason` names ("Ракетна загроза (червоний
/// рівень)", "Дронова загроза", "Загроза застосування КАБ"). Only words that say
/// what flies count; a reason with none names no threat rather than a guessed one.
pub fn threats_in_reason(reason: &str) -> Vec<ThreatKind> {
    let lower = reason.to_lowercase();
    let words: Vec<&str> = lower.split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty()).collect();
    let has = |prefixes: &[&str]| words.iter().any(|w| prefixes.iter().any(|p| w.starts_with(p)));
    let mut threats = Vec::new();
    if has(&["баліст"]) {
        threats.push(ThreatKind::BallisticMissiles);
    } else if has(&["крилат"]) {
        threats.push(ThreatKind::CruiseMissiles);
    } else if has(&["ракет"]) {
        // "Ракетна загроза" without a type: alerts.in.ua reads the same words as
        // `unspecified_missiles` (its official client's fixtures).
        threats.push(ThreatKind::UnspecifiedMissiles);
    }
    if has(&["дрон", "бпла", "безпілот", "шахед", "shahed"]) {
        threats.push(ThreatKind::Drones);
    }
    // КАБ as a word of its own (and its plural), not the start of "кабель".
    let kab = words.iter().any(|w| matches!(*w, "каб" | "каби" | "кабів" | "кабами" | "кабах"));
    if kab || has(&["авіабомб"]) || (has(&["керован"]) && has(&["бомб"])) {
        threats.push(ThreatKind::GuidedBombs);
    }
    if has(&["стратегічн"]) && has(&["авіаці"]) {
        threats.push(ThreatKind::StrategicAviation);
    } else if has(&["авіаці", "літак", "винищувач"]) {
        threats.push(ThreatKind::Aircraft);
    }
    if has(&["міг"]) && words.iter().any(|w| w.starts_with("31")) {
        threats.push(ThreatKind::Mig31kDeparture);
    }
    threats.sort();
    threats.dedup();
    threats
}

#[cfg(test)]
mod tests {
    use chrono::DateTime;

    use super::*;

    fn read(levels: &str) -> (Option<AlertLevel>, Vec<Threat>, Vec<Dropped>) {
        let v: Value = serde_json::from_str(levels).expect(levels);
        let mut dropped = Vec::new();
        let (level, threats) = super::levels(Some(&v), &mut dropped);
        (level, threats, dropped)
    }

    #[test]
    fn levels_take_the_most_serious_and_keep_unknown_names() {
        let cases = [
            (r#"[{"alertLevel":"Yellow"},{"alertLevel":"Red"}]"#, Some(AlertLevel::Red)),
            (r#"[{"alertLevel":"Yellow"}]"#, Some(AlertLevel::Yellow)),
            (r#"[{"alertLevel":"Orange"},{"alertLevel":"Yellow"}]"#, Some(AlertLevel::Yellow)),
            (r#"[{"alertLevel":"Orange"}]"#, Some(AlertLevel::Unknown("Orange".into()))),
            (r#"[{"reason":"Ракетна загроза"}]"#, None),
            ("[]", None),
            ("null", None),
        ];
        for (levels, expect) in cases {
            let (level, _, dropped) = read(levels);
            assert_eq!(level, expect, "{levels}");
            assert!(dropped.is_empty(), "{levels}: {dropped:?}");
        }
    }

    #[test]
    fn each_threat_has_its_entry_s_level_and_start() {
        let (level, threats, dropped) = read(
            r#"[
            {"alertLevel":"Red","reason":"Ракетна загроза (червоний рівень)","createdAt":"2026-09-08T11:40:15.440927Z"},
            {"alertLevel":"Yellow","reason":"Дронова загроза (жовтий рівень)","createdAt":"2026-09-08T11:15:58.635824Z"}]"#,
        );
        let at = |s| Some(DateTime::parse_from_rfc3339(s).expect("date").to_utc());
        assert_eq!(level, Some(AlertLevel::Red));
        assert_eq!(
            threats,
            vec![
                Threat {
                    kind: ThreatKind::UnspecifiedMissiles,
                    level: Some(AlertLevel::Red),
                    started_at: at("2026-09-08T11:40:15.440927Z")
                },
                Threat {
                    kind: ThreatKind::Drones,
                    level: Some(AlertLevel::Yellow),
                    started_at: at("2026-09-08T11:15:58.635824Z")
                },
            ]
        );
        assert!(dropped.is_empty(), "{dropped:?}");
    }

    #[test]
    fn parts_of_the_wrong_shape_are_dropped_and_listed() {
        let cases: [(&str, &[(&str, &str)]); 5] = [
            (r#"{"alertLevel":"Red"}"#, &[("activeAlertLevels", "an object instead of a list")]),
            (r#"[3,{"alertLevel":"Red"}]"#, &[("activeAlertLevels", "an entry that is a number")]),
            (r#"[{"alertLevel":1,"reason":"Дронова загроза"}]"#, &[("activeAlertLevels.alertLevel", "a number")]),
            (r#"[{"alertLevel":"Red","reason":["дрони"]}]"#, &[("activeAlertLevels.reason", "an array")]),
            (
                r#"[{"alertLevel":"Red","reason":"Дронова загроза","createdAt":"вчора"}]"#,
                &[("activeAlertLevels.createdAt", "a text that is not a time")],
            ),
        ];
        for (levels, drops) in cases {
            let (_, _, dropped) = read(levels);
            let expect: Vec<Dropped> = drops.iter().map(|(f, s)| Dropped::new(f, *s)).collect();
            assert_eq!(dropped, expect, "{levels}");
        }
        // What did read is kept: the red entry after the number, the drones without a start.
        assert_eq!(read(r#"[3,{"alertLevel":"Red"}]"#).0, Some(AlertLevel::Red));
        let (_, threats, _) = read(r#"[{"alertLevel":"Red","reason":"Дронова загроза","createdAt":"вчора"}]"#);
        assert_eq!(threats, vec![Threat::at(ThreatKind::Drones, AlertLevel::Red)]);
    }

    #[test]
    fn threats_come_from_recognised_reasons_only() {
        let cases: [(&str, &[ThreatKind]); 12] = [
            ("Ракетна загроза (червоний рівень)", &[ThreatKind::UnspecifiedMissiles]),
            ("Загроза балістичних ракет", &[ThreatKind::BallisticMissiles]),
            ("Загроза крилатих ракет", &[ThreatKind::CruiseMissiles]),
            ("Дронова загроза (жовтий рівень)", &[ThreatKind::Drones]),
            ("Загроза ударних БПЛА типу «Шахед»", &[ThreatKind::Drones]),
            ("Загроза застосування КАБ", &[ThreatKind::GuidedBombs]),
            ("Загроза застосування керованих авіабомб", &[ThreatKind::GuidedBombs]),
            ("Активність тактичної авіації", &[ThreatKind::Aircraft]),
            ("Активність стратегічної авіації", &[ThreatKind::StrategicAviation]),
            ("Зліт МіГ-31К", &[ThreatKind::Mig31kDeparture]),
            ("Ракети та дрони", &[ThreatKind::UnspecifiedMissiles, ThreatKind::Drones]),
            ("Пошкоджено кабель, загроза невідома", &[]),
        ];
        for (reason, expect) in cases {
            assert_eq!(threats_in_reason(reason), expect, "{reason}");
        }
    }
}
