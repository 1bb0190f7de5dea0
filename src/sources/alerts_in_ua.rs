//! alerts.in.ua: `GET /v1/alerts/active.json`, Bearer token, `If-Modified-Since`.
//! The request, its limits and the poll loop are shared (`http.rs`, `poll.rs`).
//!
//! Body (DESIGN §11, as the official Python client `alerts_in_ua` 0.4.0 reads it):
//! `{alerts:[{id, location_title, location_title_en, location_type, location_uid,
//! location_oblast, location_oblast_uid, alert_type, started_at, finished_at,
//! updated_at, notes, calculated, country, alert_level, threats:[{threat_type, level,
//! started_at, source_message}]}], meta:{last_updated_at}}`.
//!
//! Strict about the core fields — `location_uid` (a string or a number), `alert_type`,
//! `started_at`, `finished_at` — since they decide whether an alert is readable: one
//! malformed core field rejects the whole body, as dropping that alert alone would read
//! as "it ended". Lenient about the rest: an `alert_type` sirena does not know is kept
//! as `unknown`, and so are levels and threat types it does not know. Enrichment that
//! does not read — a level that is not a string, a threat that is a number or an
//! object without `threat_type`, a threat's level or start of the wrong shape, a title
//! that is not a string — is dropped from its alert and listed in
//! [`Decoded::dropped`]; the alert is kept. Threats come as objects (the live API) or,
//! in older bodies, as plain names.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

use super::{Decoded, Feed, Fetched, HttpGet, Polled, SourceError, Unmapped};
use crate::alerts::state::ObservedAlert;
use crate::alerts::{AlertKey, AlertKind, AlertLevel, Threat};
use crate::regions::RegionTree;

mod enrichment;

use enrichment::{level, optional_str, threats};

pub fn kind_of(alert_type: &str) -> AlertKind {
    match alert_type {
        "air_raid" => AlertKind::AirRaid,
        "artillery_shelling" => AlertKind::Artillery,
        "urban_fights" => AlertKind::UrbanFights,
        "chemical" => AlertKind::Chemical,
        "nuclear" => AlertKind::Nuclear,
        _ => AlertKind::Unknown,
    }
}

/// Decodes an `active.json` body against the region tree.
pub fn decode(body: &[u8], tree: &RegionTree) -> Result<Decoded, SourceError> {
    let value: Value = serde_json::from_slice(body).map_err(|e| decode_err(format!("not JSON: {e}")))?;
    let listed = match (&value, value.get("alerts")) {
        (_, Some(Value::Array(list))) => list,
        (_, Some(other)) => return Err(decode_err(format!("`alerts` is {}, not a list of alerts", shape(other)))),
        (Value::Object(_), None) => {
            return Err(decode_err("the body has no `alerts` list: the answer of another endpoint?".to_owned()));
        }
        // `/v1/iot/active_air_raid_alerts_by_oblast.json`: one letter per oblast.
        (Value::String(t), None) if !t.is_empty() && t.chars().all(|c| matches!(c, 'A' | 'P' | 'N')) => {
            return Err(decode_err(format!(
                "the body is the {}-letter oblast string of /v1/iot/active_air_raid_alerts_by_oblast.json \
                 (A, P, N per oblast), which names no raion or hromada: sirena reads /v1/alerts/active.json \
                 (give the source its base_url, not that endpoint)",
                t.chars().count()
            )));
        }
        (other, None) => {
            return Err(decode_err(format!(
                "the body is {}, not an object with an `alerts` list: the answer of another endpoint?",
                shape(other)
            )));
        }
    };
    let mut out = Decoded::default();
    for (i, raw) in listed.iter().enumerate() {
        let Value::Object(a) = raw else {
            return Err(decode_err(format!("alert {} is {}, not an alert", i + 1, shape(raw))));
        };
        let at = Place::of(i, a);
        if !is_active(a, &at)? {
            continue;
        }
        let uid = location_uid(a, &at)?;
        let alert_type = match a.get("alert_type") {
            Some(Value::String(t)) => t.trim(),
            Some(other) => return Err(at.error(format!("alert_type is {}, not a name", shape(other)))),
            None => return Err(at.error("has no alert_type".to_owned())),
        };
        let started_at = date(a.get("started_at")).map_err(|e| at.error(format!("started_at {e}")))?;
        let title = optional_str(a, "location_title", &mut out.dropped);
        let Some(region) = tree.by_feed_id(uid) else {
            if !out.unmapped.iter().any(|u| u.id == uid.to_string()) {
                out.unmapped.push(Unmapped { id: uid.to_string(), title: title.unwrap_or_default() });
            }
            continue;
        };
        let kind = kind_of(alert_type);
        let level = level(a.get("alert_level"), "alert_level", &mut out.dropped);
        let threats = threats(a.get("threats"), &mut out.dropped);
        let key = AlertKey { kind, region: region.id.clone() };
        // The same kind on the same place twice: one alert, the earlier start, every
        // word of both.
        if let Some(seen) = out.alerts.iter_mut().find(|s| s.key == key) {
            seen.started_at = seen.started_at.min(started_at);
            seen.level = AlertLevel::stronger(seen.level.take(), level);
            seen.threats = Threat::merged(seen.threats.drain(..).chain(threats));
            continue;
        }
        out.alerts.push(ObservedAlert {
            key,
            started_at,
            raw_kind: (kind == AlertKind::Unknown).then(|| alert_type.to_owned()),
            level,
            threats,
            texts: Vec::new(),
        });
    }
    Ok(out)
}

fn decode_err(message: String) -> SourceError {
    SourceError::Decode(message)
}

/// A JSON value's shape, in words.
fn shape(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a true/false value",
        Value::Number(_) => "a number",
        Value::String(_) => "a text",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

/// Which alert an error is about: its position, and its id and place where it has them.
struct Place(String);

impl Place {
    fn of(i: usize, a: &Map<String, Value>) -> Place {
        let mut about = Vec::new();
        if let Some(id) = a.get("id").filter(|v| v.is_number() || v.is_string()) {
            about.push(format!("id {}", id.as_str().map_or_else(|| id.to_string(), str::to_owned)));
        }
        if let Some(title) = a.get("location_title").and_then(Value::as_str).filter(|t| !t.trim().is_empty()) {
            about.push(title.trim().to_owned());
        }
        let n = i + 1;
        Place(if about.is_empty() { format!("alert {n}") } else { format!("alert {n} ({})", about.join(", ")) })
    }

    fn error(&self, what: String) -> SourceError {
        decode_err(format!("{}: {what}", self.0))
    }
}

/// Active unless `finished_at` holds a time; a `finished_at` of another shape is a
/// malformed alert (it may have ended, it may not).
fn is_active(a: &Map<String, Value>, at: &Place) -> Result<bool, SourceError> {
    match a.get("finished_at") {
        None | Some(Value::Null) => Ok(true),
        Some(Value::String(s)) if s.trim().is_empty() => Ok(true),
        Some(Value::String(_)) => Ok(false),
        Some(other) => Err(at.error(format!("finished_at is {}, not a time", shape(other)))),
    }
}

fn location_uid(a: &Map<String, Value>, at: &Place) -> Result<u32, SourceError> {
    let v = a.get("location_uid").ok_or_else(|| at.error("has no location_uid".to_owned()))?;
    let uid = match v {
        Value::Number(n) => n.as_u64().and_then(|n| u32::try_from(n).ok()),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    };
    uid.ok_or_else(|| at.error(format!("location_uid {v} is not a location id")))
}

/// An RFC 3339 time (the API writes `2026-10-13T07:12:05.123Z`).
fn date(v: Option<&Value>) -> Result<DateTime<Utc>, String> {
    match v {
        Some(Value::String(s)) => DateTime::parse_from_rfc3339(s.trim())
            .map(|t| t.to_utc())
            .map_err(|_| format!("`{}` is not a time", s.trim())),
        Some(other) => Err(format!("is {}, not a time", shape(other))),
        None => Err("is missing".to_owned()),
    }
}

/// The alerts.in.ua adapter: one GET of `active.json` per poll.
pub struct AlertsInUa {
    name: String,
    url: String,
}

impl AlertsInUa {
    pub fn new(name: &str, base_url: &str) -> AlertsInUa {
        AlertsInUa { name: name.to_owned(), url: format!("{}/v1/alerts/active.json", base_url.trim_end_matches('/')) }
    }
}

#[async_trait]
impl Feed for AlertsInUa {
    fn name(&self) -> &str {
        &self.name
    }

    async fn poll(&mut self, http: &mut HttpGet, tree: &RegionTree) -> Result<Polled, SourceError> {
        match http.get(&self.url).await? {
            Fetched::NotModified => Ok(Polled::Unchanged),
            Fetched::Body(body) => {
                let decoded = decode(&body, tree)?;
                http.keep(&self.url);
                Ok(Polled::Snapshot(decoded))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alerts::ThreatKind;
    use crate::sources::Dropped;

    fn tree() -> RegionTree {
        crate::regions::tests_support::kharkiv_oblast()
    }

    fn body(uid: &str, kind: &str) -> String {
        format!(
            r#"{{"alerts":[{{"id":1,"location_title":"Харківська область","location_type":"oblast","location_uid":{uid},"alert_type":"{kind}","started_at":"2023-11-06T08:00:00.000Z","finished_at":null}}],"meta":{{"last_updated_at":"2023/11/06 08:00:01 +0000"}}}}"#
        )
    }

    #[test]
    fn uid_as_string_or_int() {
        for uid in ["\"22\"", "22"] {
            let d = decode(body(uid, "air_raid").as_bytes(), &tree()).expect("decodes");
            assert_eq!(d.alerts.len(), 1, "uid {uid}");
            assert_eq!(d.alerts[0].key.kind, AlertKind::AirRaid);
        }
    }

    #[test]
    fn unknown_kind_is_kept() {
        let d = decode(body("22", "drone_swarm").as_bytes(), &tree()).expect("decodes");
        assert_eq!(d.alerts[0].key.kind, AlertKind::Unknown);
        assert_eq!(d.alerts[0].raw_kind.as_deref(), Some("drone_swarm"));
    }

    #[test]
    fn garbage_and_truncation_are_errors_not_empty_lists() {
        let full = body("22", "air_raid");
        for bad in ["<html>502</html>", &full[..full.len() / 2], "", "{\"alerts\":null}"] {
            assert!(matches!(decode(bad.as_bytes(), &tree()), Err(SourceError::Decode(_))), "{bad:?}");
        }
        let bad_date = full.replace("2023-11-06T08:00:00.000Z", "yesterday");
        assert!(decode(bad_date.as_bytes(), &tree()).is_err());
    }

    /// The body of `body("22", "air_raid")` with `extra` fields added to its alert.
    fn body_with(extra: &str) -> String {
        body("22", "air_raid").replace(r#""finished_at":null"#, &format!(r#""finished_at":null,{extra}"#))
    }

    fn at(s: &str) -> Option<DateTime<Utc>> {
        Some(DateTime::parse_from_rfc3339(s).expect("date").to_utc())
    }

    #[test]
    fn threat_objects_read_with_their_own_level_and_start() {
        let d = decode(
            body_with(
                r#""alert_level":"yellow","threats":[
                    {"threat_type":"unspecified_missiles","level":"red","started_at":"2026-10-13T07:12:05.123Z","source_message":"Ракетна загроза (червоний рівень)"},
                    {"threat_type":"drones","level":"yellow","started_at":"2026-10-13T07:00:00.000Z","source_message":null},
                    {"threat_type":"hypersonic_glider","level":"red","started_at":"2026-10-13T07:20:00.000Z"}]"#,
            )
            .as_bytes(),
            &tree(),
        )
        .expect("decodes");
        assert!(d.dropped.is_empty(), "{:?}", d.dropped);
        let a = &d.alerts[0];
        assert_eq!(a.level, Some(AlertLevel::Yellow), "a yellow alert…");
        assert_eq!(
            a.threats,
            vec![
                // …with a red threat.
                Threat {
                    kind: ThreatKind::UnspecifiedMissiles,
                    level: Some(AlertLevel::Red),
                    started_at: at("2026-10-13T07:12:05.123Z")
                },
                Threat {
                    kind: ThreatKind::Drones,
                    level: Some(AlertLevel::Yellow),
                    started_at: at("2026-10-13T07:00:00Z")
                },
                // A threat_type sirena does not know is kept: it may be a threat.
                Threat {
                    kind: ThreatKind::Unknown("hypersonic_glider".into()),
                    level: Some(AlertLevel::Red),
                    started_at: at("2026-10-13T07:20:00Z")
                },
            ]
        );
    }

    #[test]
    fn plain_threat_names_of_older_bodies_still_read() {
        let d = decode(
            body_with(r#""alert_level":"Red","threats":["drones","ballistic","Drone","glide-bomb","hypersonic"]"#)
                .as_bytes(),
            &tree(),
        )
        .expect("decodes");
        let a = &d.alerts[0];
        assert_eq!(a.level, Some(AlertLevel::Red));
        let kinds: Vec<ThreatKind> = a.threats.iter().map(|t| t.kind.clone()).collect();
        assert_eq!(
            kinds,
            vec![
                ThreatKind::BallisticMissiles,
                ThreatKind::Drones,
                ThreatKind::GuidedBombs,
                ThreatKind::Unknown("hypersonic".into())
            ]
        );
        assert!(a.threats.iter().all(|t| t.level.is_none() && t.started_at.is_none()));
        let d = decode(body_with(r#""alert_level":"orange""#).as_bytes(), &tree()).expect("decodes");
        assert_eq!(d.alerts[0].level, Some(AlertLevel::Unknown("orange".into())));
    }

    #[test]
    fn level_and_threats_may_be_missing_or_null() {
        for extra in [r#""x":0"#, r#""alert_level":null,"threats":null"#, r#""alert_level":"","threats":[]"#] {
            let d = decode(body_with(extra).as_bytes(), &tree()).expect("decodes");
            assert_eq!(d.alerts[0].level, None, "{extra}");
            assert!(d.alerts[0].threats.is_empty(), "{extra}");
            assert!(d.dropped.is_empty(), "{extra}: {:?}", d.dropped);
        }
    }

    /// Issue 18: threats as objects, as names and as garbage, in one body. Every alert
    /// is kept; the one garbage threat is dropped and listed.
    #[test]
    fn objects_names_and_garbage_threats_in_one_body_keep_every_alert() {
        let body = r#"{"alerts":[
            {"id":1,"location_title":"Харківська область","location_uid":"22","alert_type":"air_raid","started_at":"2026-10-13T07:00:00.000Z","finished_at":null,"alert_level":"red",
             "threats":[{"threat_type":"ballistic_missiles","level":"red","started_at":"2026-10-13T07:01:00.000Z","source_message":null}]},
            {"id":2,"location_title":"Харківська область","location_uid":22,"alert_type":"urban_fights","started_at":"2026-10-13T07:05:00.000Z","finished_at":null,
             "threats":["drones"]},
            {"id":3,"location_title":"Харківська область","location_uid":"22","alert_type":"artillery_shelling","started_at":"2026-10-13T07:10:00.000Z","finished_at":null,"alert_level":"yellow",
             "threats":[42]}
        ],"meta":{"last_updated_at":"2026/10/13 07:36:50 +0000"}}"#;
        let d = decode(body.as_bytes(), &tree()).expect("decodes");
        let kept: Vec<(AlertKind, &str, Vec<Threat>)> =
            d.alerts.iter().map(|a| (a.key.kind, a.key.region.as_str(), a.threats.clone())).collect();
        assert_eq!(
            kept,
            vec![
                (
                    AlertKind::AirRaid,
                    "UA63000000000041885",
                    vec![Threat {
                        kind: ThreatKind::BallisticMissiles,
                        level: Some(AlertLevel::Red),
                        started_at: at("2026-10-13T07:01:00Z")
                    }]
                ),
                (AlertKind::UrbanFights, "UA63000000000041885", vec![Threat::of(ThreatKind::Drones)]),
                (AlertKind::Artillery, "UA63000000000041885", vec![]),
            ]
        );
        assert_eq!(d.alerts[2].level, Some(AlertLevel::Yellow), "the rest of the garbage threat's alert is read");
        assert_eq!(d.dropped, vec![Dropped::new("threats", "a number")]);
    }

    #[test]
    fn enrichment_that_does_not_read_is_dropped_and_listed_never_the_alert() {
        let cases: [(&str, &[(&str, &str)]); 8] = [
            (r#""threats":[{"level":"red"}]"#, &[("threats", "an object without threat_type")]),
            (r#""threats":[{"threat_type":7}]"#, &[("threats", "an object whose threat_type is a number")]),
            (
                r#""threats":[true,[1],""]"#,
                &[("threats", "a true/false value"), ("threats", "a list"), ("threats", "an empty name")],
            ),
            (r#""threats":{"drones":1}"#, &[("threats", "an object instead of a list")]),
            (r#""alert_level":3"#, &[("alert_level", "a number")]),
            (r#""threats":[{"threat_type":"drones","level":["red"]}]"#, &[("threats.level", "a list")]),
            (
                r#""threats":[{"threat_type":"drones","started_at":"soon"}]"#,
                &[("threats.started_at", "a text that is not a time")],
            ),
            (
                r#""location_title_en":5,"notes":{"x":1},"country":[],"location_title":1"#,
                &[("location_title", "a number")],
            ),
        ];
        for (extra, drops) in cases {
            let body = body_with(extra).replace(r#""location_title":"Харківська область","#, "");
            let d = decode(body.as_bytes(), &tree()).unwrap_or_else(|e| panic!("{extra}: {e}"));
            assert_eq!(d.alerts.len(), 1, "{extra}");
            assert_eq!(d.alerts[0].key.kind, AlertKind::AirRaid, "{extra}");
            let expect: Vec<Dropped> = drops.iter().map(|(f, s)| Dropped::new(f, *s)).collect();
            assert_eq!(d.dropped, expect, "{extra}");
        }
        // A threat whose own level or start does not read is kept without it.
        let d =
            decode(body_with(r#""threats":[{"threat_type":"drones","level":1,"started_at":2}]"#).as_bytes(), &tree())
                .expect("decodes");
        assert_eq!(d.alerts[0].threats, vec![Threat::of(ThreatKind::Drones)]);
    }

    #[test]
    fn a_malformed_core_field_rejects_the_body_naming_the_alert() {
        let cases = [
            (
                r#""started_at":"2023-11-06T08:00:00.000Z""#,
                r#""started_at":"yesterday""#,
                "alert 1 (id 1, Харківська область): started_at `yesterday` is not a time",
            ),
            (
                r#""started_at":"2023-11-06T08:00:00.000Z""#,
                r#""started_at":null"#,
                "alert 1 (id 1, Харківська область): started_at is null, not a time",
            ),
            (
                r#""location_uid":22"#,
                r#""location_uid":"Kharkiv""#,
                "alert 1 (id 1, Харківська область): location_uid \"Kharkiv\" is not a location id",
            ),
            (
                r#""alert_type":"air_raid""#,
                r#""alert_type":5"#,
                "alert 1 (id 1, Харківська область): alert_type is a number, not a name",
            ),
            (
                r#""finished_at":null"#,
                r#""finished_at":17"#,
                "alert 1 (id 1, Харківська область): finished_at is a number, not a time",
            ),
        ];
        for (from, to, expect) in cases {
            let bad = body("22", "air_raid").replace(from, to);
            match decode(bad.as_bytes(), &tree()) {
                Err(SourceError::Decode(msg)) => assert_eq!(msg, expect),
                other => panic!("{to}: {other:?}"),
            }
        }
        match decode(br#"{"alerts":[7]}"#, &tree()) {
            Err(SourceError::Decode(msg)) => assert_eq!(msg, "alert 1 is a number, not an alert"),
            other => panic!("{other:?}"),
        }
        match decode(br#"{"alerts":null}"#, &tree()) {
            Err(SourceError::Decode(msg)) => assert_eq!(msg, "`alerts` is null, not a list of alerts"),
            other => panic!("{other:?}"),
        }
        match decode(br#"[]"#, &tree()) {
            Err(SourceError::Decode(msg)) => {
                assert_eq!(
                    msg,
                    "the body is a list, not an object with an `alerts` list: the answer of another endpoint?"
                )
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn unmapped_locations_are_reported() {
        let d = decode(body("9999", "air_raid").as_bytes(), &tree()).expect("decodes");
        assert!(d.alerts.is_empty());
        assert_eq!(d.unmapped, vec![Unmapped { id: "9999".into(), title: "Харківська область".into() }]);
    }
}
