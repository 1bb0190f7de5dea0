//! ukrainealarm v3 (`api.ukrainealarm.com`): pure decoding of its three bodies.
//!
//! - `GET /api/v3/alerts` (and `/api/v3/alerts/{regionId}`): a JSON array of region
//!   records `{regionId, regionType, regionName, regionEngName, lastUpdate,
//!   activeAlerts:[{regionId, regionType, type, lastUpdate, activeAlertLevels?}]}` →
//!   [`decode_alerts`];
//! - `GET /api/v3/alerts/status`: `{lastActionIndex}` → [`decode_status`], so a poller
//!   fetches the full list only when the index moved;
//! - a webhook push: one record of the same shape → [`decode_record`]. A push
//!   replaces what was known inside that record's region ([`record_region_id`]); the
//!   caller does the merge.
//!
//! A record nests its children's alerts: an oblast (`State`) record lists alerts of its
//! raions and hromadas, each with its own `regionId`. The alert's id, never the
//! record's, says where it is — reading the record's would turn one hromada's alert
//! into an oblast-wide one. Ids are the alerts.in.ua `location_uid` space and come as
//! strings or numbers.
//!
//! Strict about what places and times an alert: a missing or malformed `regionId`,
//! `type` or `lastUpdate` rejects the whole body with the field's path
//! (`[2].activeAlerts[0].lastUpdate`), since dropping one alert would read as "it
//! ended"; so does a record without its `activeAlerts` list (a missing list is not an
//! empty one: read as one, it would end every alert of that region). Lenient about the
//! rest: unknown kinds, levels and regions are kept or reported, and threats are read
//! from the levels' Ukrainian `reason` texts only where a known word says so, each at
//! its entry's level and from its `createdAt`. Enrichment of the wrong shape — an
//! `activeAlertLevels` that is not a list, an entry that is not an object, a level,
//! reason or time that is not a text, a region name that is not a text — is dropped
//! and listed in [`Decoded::dropped`]; the alert is kept.

use std::collections::HashMap;

use chrono::{DateTime, NaiveDateTime, Utc};
use serde_json::{Map, Value};

use super::{Decoded, Dropped, SourceError, Unmapped};
use crate::alerts::state::ObservedAlert;
use crate::alerts::{AlertKey, AlertKind, AlertLevel, Threat};
use crate::regions::RegionTree;

mod levels;

use levels::levels;
pub use levels::threats_in_reason;

pub const SOURCE: &str = "ukrainealarm";

/// Decodes a `GET /api/v3/alerts` (or `/api/v3/alerts/{regionId}`) body.
pub fn decode_alerts(body: &[u8], tree: &RegionTree) -> Result<Decoded, SourceError> {
    let value = parse(body)?;
    let Value::Array(records) = value else {
        return Err(decode_err(format!("body is {}, not an array of region records", kind_name(&value))));
    };
    let mut out = Collector::default();
    for (i, record) in records.iter().enumerate() {
        out.record(record, &format!("[{i}]"), &format!("record {}", i + 1), tree)?;
    }
    Ok(out.finish())
}

/// Decodes one webhook push: a single region record.
pub fn decode_record(body: &[u8], tree: &RegionTree) -> Result<Decoded, SourceError> {
    // A record without its own region id says nothing about where.
    record_region_id(body)?;
    let value = parse(body)?;
    let mut out = Collector::default();
    out.record(&value, "", "the record", tree)?;
    Ok(out.finish())
}

/// The `regionId` of a single record (a webhook push): the region whose alerts the
/// push replaces.
pub fn record_region_id(body: &[u8]) -> Result<FeedId, SourceError> {
    let value = parse(body)?;
    let record = value.as_object().ok_or_else(|| decode_err(format!("record is {}", kind_name(&value))))?;
    region_id(record, "regionId", "regionId")
}

/// Decodes `GET /api/v3/alerts/status` into its `lastActionIndex`.
pub fn decode_status(body: &[u8]) -> Result<u64, SourceError> {
    let value = parse(body)?;
    match value.get("lastActionIndex") {
        Some(Value::Number(n)) => {
            n.as_u64().ok_or_else(|| decode_err(format!("lastActionIndex {n} is not a non-negative integer")))
        }
        Some(other) => Err(decode_err(format!("lastActionIndex {other} is not a number"))),
        None => Err(decode_err("lastActionIndex is missing".to_owned())),
    }
}

fn parse(body: &[u8]) -> Result<Value, SourceError> {
    serde_json::from_slice(body).map_err(|e| decode_err(e.to_string()))
}

fn decode_err(message: String) -> SourceError {
    SourceError::Decode(message)
}

fn kind_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Alerts in order of first appearance; a (kind, region) seen again is merged into
/// the first.
#[derive(Default)]
struct Collector {
    alerts: Vec<ObservedAlert>,
    index: HashMap<AlertKey, usize>,
    unmapped: Vec<Unmapped>,
    dropped: Vec<Dropped>,
}

impl Collector {
    /// One region record; `named` is how an operator would point at it ("record 3").
    fn record(&mut self, record: &Value, path: &str, named: &str, tree: &RegionTree) -> Result<(), SourceError> {
        let record = record.as_object().ok_or_else(|| decode_err(format!("{} is {}", at(path), kind_name(record))))?;
        // The spec declares the list nullable, so `null` is the server's "none"; a
        // record without the field at all is not its serialiser's output (the spec
        // forbids other properties and lists this one on every record).
        let alerts = match record.get("activeAlerts") {
            Some(Value::Array(alerts)) => alerts.as_slice(),
            Some(Value::Null) => &[],
            None => return Err(decode_err(format!("{named}{} has no activeAlerts", region_of(record)))),
            Some(other) => {
                let named = format!("{named}{}", region_of(record));
                return Err(decode_err(format!("{named}: activeAlerts is {}, not a list", kind_name(other))));
            }
        };
        for field in ["regionName", "regionEngName"] {
            if let Some(v) = record.get(field).filter(|v| !v.is_string() && !v.is_null()) {
                self.dropped.push(Dropped::new(field, kind_name(v)));
            }
        }
        for (j, alert) in alerts.iter().enumerate() {
            let path = format!("{}activeAlerts[{j}]", dotted(path));
            let alert = alert.as_object().ok_or_else(|| decode_err(format!("{path} is {}", kind_name(alert))))?;
            self.alert(record, alert, &path, tree)?;
        }
        Ok(())
    }

    fn alert(
        &mut self,
        record: &Map<String, Value>,
        alert: &Map<String, Value>,
        path: &str,
        tree: &RegionTree,
    ) -> Result<(), SourceError> {
        let id = region_id(alert, "regionId", &format!("{path}.regionId"))?;
        let raw_kind = match alert.get("type") {
            Some(Value::String(s)) => s.as_str(),
            Some(other) => return Err(decode_err(format!("{path}.type {other} is not a string"))),
            None => return Err(decode_err(format!("{path}.type is missing"))),
        };
        let started_at = timestamp(alert.get("lastUpdate"), &format!("{path}.lastUpdate"))?;
        let (level, threats) = levels(alert.get("activeAlertLevels"), &mut self.dropped);

        let region = match &id {
            FeedId::Number(n) => tree.by_feed_id(*n),
            FeedId::Other(_) => None,
        };
        let Some(region) = region else {
            let id = match id {
                FeedId::Number(n) => n.to_string(),
                FeedId::Other(s) => s,
            };
            if !self.unmapped.iter().any(|u| u.id == id) {
                let title = unmapped_title(record, alert, &id);
                self.unmapped.push(Unmapped { id, title });
            }
            return Ok(());
        };
        let kind = kind_of(raw_kind);
        let key = AlertKey { kind, region: region.id.clone() };
        if let Some(&i) = self.index.get(&key) {
            let seen = &mut self.alerts[i];
            seen.started_at = seen.started_at.min(started_at);
            seen.level = AlertLevel::stronger(seen.level.take(), level);
            seen.threats = Threat::merged(seen.threats.drain(..).chain(threats));
            return Ok(());
        }
        self.index.insert(key.clone(), self.alerts.len());
        self.alerts.push(ObservedAlert {
            key,
            started_at,
            raw_kind: (kind == AlertKind::Unknown).then(|| raw_kind.to_owned()),
            level,
            threats,
            texts: Vec::new(),
        });
        Ok(())
    }

    fn finish(self) -> Decoded {
        Decoded { alerts: self.alerts, unmapped: self.unmapped, dropped: self.dropped }
    }
}

/// `path` for messages about the root itself.
fn at(path: &str) -> &str {
    if path.is_empty() { "record" } else { path }
}

/// `path.` or nothing, so a lone record's fields read `activeAlerts[0]…`.
fn dotted(path: &str) -> String {
    if path.is_empty() { String::new() } else { format!("{path}.") }
}

pub fn kind_of(t: &str) -> AlertKind {
    match t {
        "AIR" => AlertKind::AirRaid,
        "ARTILLERY" => AlertKind::Artillery,
        "URBAN_FIGHTS" => AlertKind::UrbanFights,
        "CHEMICAL" => AlertKind::Chemical,
        "NUCLEAR" => AlertKind::Nuclear,
        "INFO" => AlertKind::Info,
        _ => AlertKind::Unknown,
    }
}

/// A region's id as the feed gives it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FeedId {
    /// Digits that fit the tree's feed ids: the ids the live API sends.
    Number(u32),
    /// Any other non-empty string: the spec types `regionId` as a string (its own
    /// example says `"regionId"`), so it is an id no region carries — reported as
    /// unmapped, never a reason to refuse the other records.
    Other(String),
}

/// A `regionId`: a string or a number. Missing, null, blank or a negative or
/// fractional number says nothing of where, and refuses the body.
fn region_id(obj: &Map<String, Value>, field: &str, path: &str) -> Result<FeedId, SourceError> {
    let v = obj.get(field).ok_or_else(|| decode_err(format!("{path} is missing")))?;
    match v {
        Value::String(s) if !s.trim().is_empty() => {
            Ok(s.trim().parse::<u32>().map_or_else(|_| FeedId::Other(s.trim().to_owned()), FeedId::Number))
        }
        Value::Number(n) => n
            .as_u64()
            .and_then(|n| u32::try_from(n).ok())
            .map(FeedId::Number)
            .ok_or_else(|| decode_err(format!("{path} {v} is not an id"))),
        _ => Err(decode_err(format!("{path} {v} is not an id"))),
    }
}

/// RFC 3339, with or without a fraction; a time without an offset is UTC, as the
/// API's .NET serialiser writes `DateTime`s of kind UTC either way.
fn timestamp(v: Option<&Value>, path: &str) -> Result<DateTime<Utc>, SourceError> {
    let s = match v {
        Some(Value::String(s)) => s.trim(),
        Some(other) => return Err(decode_err(format!("{path} {other} is not a date"))),
        None => return Err(decode_err(format!("{path} is missing"))),
    };
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(t.to_utc());
    }
    NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f")
        .map(|t| t.and_utc())
        .map_err(|e| decode_err(format!("{path} `{s}`: {e}")))
}

/// ` (regionId 22)` where the record says which region it is.
fn region_of(record: &Map<String, Value>) -> String {
    match record.get("regionId") {
        Some(Value::String(s)) if !s.trim().is_empty() => format!(" (regionId {})", s.trim()),
        Some(Value::Number(n)) => format!(" (regionId {n})"),
        _ => String::new(),
    }
}

/// A name for an id no region carries: the alert's own name if it has one, the
/// record's if the alert is the record's region, else the record's name as the
/// place it lies in.
fn unmapped_title(record: &Map<String, Value>, alert: &Map<String, Value>, id: &str) -> String {
    let name = |o: &Map<String, Value>| {
        ["regionName", "regionEngName"]
            .iter()
            .find_map(|f| o.get(*f).and_then(Value::as_str).filter(|s| !s.trim().is_empty()))
            .map(str::to_owned)
    };
    if let Some(own) = name(alert) {
        return own;
    }
    let record_id = match record.get("regionId") {
        Some(Value::String(s)) => Some(s.trim().to_owned()),
        Some(Value::Number(n)) => Some(n.to_string()),
        _ => None,
    };
    let record_name = name(record).unwrap_or_default();
    if record_id.as_deref() == Some(id) {
        return record_name;
    }
    let kind = alert.get("regionType").and_then(Value::as_str).unwrap_or("region");
    if record_name.is_empty() { kind.to_owned() } else { format!("{kind} in {record_name}") }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alerts::ThreatKind;
    use crate::regions::{Level, Localized, Region, RegionId};
    use crate::sources::Dropped;

    const OBLAST: &str = "UA63000000000041885";
    const RAION: &str = "UA63080000000032022";

    fn tree() -> RegionTree {
        let rid = |s: &str| RegionId::parse(s).expect("id");
        let region = |id: &str, parent: Option<&str>, level, name: &str, feed_id| Region {
            name: Localized { uk: name.into(), en: None },
            feed_id: Some(feed_id),
            ..Region::bare(rid(id), parent.map(rid), level)
        };
        RegionTree::build(vec![
            region(OBLAST, None, Level::Oblast, "Харківська область", 22),
            region(RAION, Some(OBLAST), Level::Raion, "Куп’янський район", 123),
        ])
        .expect("tree")
    }

    fn record(id: &str, alerts: &str) -> String {
        format!(
            r#"{{"regionId":{id},"regionType":"State","regionName":"Харківська область","regionEngName":"Kharkiv region","lastUpdate":"2025-01-15T10:00:00Z","activeAlerts":[{alerts}]}}"#
        )
    }

    fn alert(id: &str, kind: &str, last_update: &str) -> String {
        format!(r#"{{"regionId":{id},"regionType":"District","type":"{kind}","lastUpdate":"{last_update}"}}"#)
    }

    fn key(kind: AlertKind, region: &str) -> AlertKey {
        AlertKey { kind, region: RegionId::parse(region).expect("id") }
    }

    #[test]
    fn child_alerts_map_to_their_own_region_not_the_record() {
        let body = format!("[{}]", record(r#""22""#, &alert(r#""123""#, "AIR", "2025-01-15T10:00:00Z")));
        let d = decode_alerts(body.as_bytes(), &tree()).expect("decodes");
        assert_eq!(d.alerts.len(), 1);
        assert_eq!(d.alerts[0].key, key(AlertKind::AirRaid, RAION));
        assert_eq!(d.alerts[0].started_at, DateTime::parse_from_rfc3339("2025-01-15T10:00:00Z").unwrap());
        assert!(d.unmapped.is_empty());
    }

    #[test]
    fn ids_as_strings_or_ints_and_every_kind() {
        let kinds = [
            ("AIR", AlertKind::AirRaid),
            ("ARTILLERY", AlertKind::Artillery),
            ("URBAN_FIGHTS", AlertKind::UrbanFights),
            ("CHEMICAL", AlertKind::Chemical),
            ("NUCLEAR", AlertKind::Nuclear),
            ("INFO", AlertKind::Info),
            ("UNKNOWN", AlertKind::Unknown),
            ("DRONE_SWARM", AlertKind::Unknown),
        ];
        for (raw, kind) in kinds {
            for id in ["22", r#""22""#, r#"" 22 ""#] {
                let body = format!("[{}]", record(id, &alert(id, raw, "2025-01-15T10:00:00Z")));
                let d = decode_alerts(body.as_bytes(), &tree()).expect("decodes");
                assert_eq!(d.alerts[0].key, key(kind, OBLAST), "{raw} {id}");
                let expect_raw = (kind == AlertKind::Unknown).then(|| raw.to_owned());
                assert_eq!(d.alerts[0].raw_kind, expect_raw);
            }
        }
    }

    #[test]
    fn timestamps_with_or_without_fraction_and_offset() {
        let expect = DateTime::parse_from_rfc3339("2025-01-15T10:00:00Z").unwrap().to_utc();
        for t in
            ["2025-01-15T10:00:00Z", "2025-01-15T12:00:00+02:00", "2025-01-15T10:00:00.000Z", "2025-01-15T10:00:00"]
        {
            let body = format!("[{}]", record("22", &alert("22", "AIR", t)));
            let d = decode_alerts(body.as_bytes(), &tree()).expect(t);
            assert_eq!(d.alerts[0].started_at, expect, "{t}");
        }
        let body = format!("[{}]", record("22", &alert("22", "AIR", "2025-01-15T10:00:00.123456")));
        let d = decode_alerts(body.as_bytes(), &tree()).expect("decodes");
        assert_eq!(d.alerts[0].started_at.timestamp_subsec_micros(), 123_456);
    }

    /// The spec types `regionId` as a string, and its own example is `"regionId"`: an id
    /// that is not digits is one no region carries, reported, and the rest decodes.
    #[test]
    fn a_region_id_that_is_not_digits_is_unmapped_not_a_broken_body() {
        let body = format!(
            "[{}]",
            record(
                "22",
                &format!(
                    "{},{}",
                    alert("22", "AIR", "2025-01-15T10:00:00Z"),
                    alert(r#""x""#, "AIR", "2025-01-15T10:00:00Z")
                )
            )
        );
        let d = decode_alerts(body.as_bytes(), &tree()).expect("decodes");
        assert_eq!(d.alerts.len(), 1);
        assert_eq!(d.unmapped.iter().map(|u| u.id.as_str()).collect::<Vec<_>>(), ["x"]);
    }

    #[test]
    fn one_malformed_alert_rejects_the_body_naming_its_field() {
        let good = record("22", &alert("22", "AIR", "2025-01-15T10:00:00Z"));
        let cases = [
            (alert("22", "AIR", "yesterday"), "[1].activeAlerts[1].lastUpdate"),
            (alert(r#""""#, "AIR", "2025-01-15T10:00:00Z"), "[1].activeAlerts[1].regionId"),
            (alert("-3", "AIR", "2025-01-15T10:00:00Z"), "[1].activeAlerts[1].regionId"),
            (alert("null", "AIR", "2025-01-15T10:00:00Z"), "[1].activeAlerts[1].regionId"),
            (r#"{"regionId":"22","lastUpdate":"2025-01-15T10:00:00Z"}"#.to_owned(), "[1].activeAlerts[1].type"),
            (r#"{"regionId":"22","type":"AIR"}"#.to_owned(), "[1].activeAlerts[1].lastUpdate"),
            ("17".to_owned(), "[1].activeAlerts[1]"),
        ];
        for (bad, path) in cases {
            let body =
                format!("[{good},{}]", record("22", &format!("{},{bad}", alert("123", "AIR", "2025-01-15T10:00:00Z"))));
            match decode_alerts(body.as_bytes(), &tree()) {
                Err(SourceError::Decode(msg)) => assert!(msg.starts_with(path), "{msg:?} should name {path}"),
                other => panic!("{bad}: {other:?}"),
            }
        }
    }

    #[test]
    fn garbage_and_wrong_shapes_are_errors_not_empty_lists() {
        let full = format!("[{}]", record("22", &alert("22", "AIR", "2025-01-15T10:00:00Z")));
        for bad in ["<html>502</html>", &full[..full.len() / 2], "", "{}", "null", "[1]", r#"[{"activeAlerts":{}}]"#] {
            assert!(matches!(decode_alerts(bad.as_bytes(), &tree()), Err(SourceError::Decode(_))), "{bad:?}");
        }
        // No alerts is a valid answer: no records, or an empty or null (the spec's
        // nullable) activeAlerts.
        for empty in ["[]", r#"[{"regionId":"22","activeAlerts":[]}]"#, r#"[{"regionId":"22","activeAlerts":null}]"#] {
            let d = decode_alerts(empty.as_bytes(), &tree()).expect(empty);
            assert_eq!(d, Decoded::default());
        }
    }

    /// A missing list is not an empty one: read as one, it would end every alert of
    /// that region once the implausible-snapshot hold ran out.
    #[test]
    fn a_record_without_active_alerts_is_refused_naming_it() {
        let good = record("22", &alert("22", "AIR", "2025-01-15T10:00:00Z"));
        let cases = [
            (
                format!(
                    r#"[{good},{good},{{"regionId":"22","regionType":"State","regionName":"Харківська область"}}]"#
                ),
                "record 3 (regionId 22) has no activeAlerts",
            ),
            (
                r#"[{"regionId":22,"activeAlerts":"none"}]"#.to_owned(),
                "record 1 (regionId 22): activeAlerts is a string, not a list",
            ),
            (r#"[{"regionName":"Харківська область"}]"#.to_owned(), "record 1 has no activeAlerts"),
        ];
        for (body, expect) in cases {
            match decode_alerts(body.as_bytes(), &tree()) {
                Err(SourceError::Decode(msg)) => assert_eq!(msg, expect),
                other => panic!("{body}: {other:?}"),
            }
        }
        match decode_record(br#"{"regionId":"22","regionType":"State"}"#, &tree()) {
            Err(SourceError::Decode(msg)) => assert_eq!(msg, "the record (regionId 22) has no activeAlerts"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn region_names_of_the_wrong_shape_are_dropped_and_listed_never_the_alert() {
        let body = format!(
            r#"[{{"regionId":"22","regionName":{{}},"regionEngName":7,"activeAlerts":[{}]}}]"#,
            alert("22", "AIR", "2025-01-15T10:00:00Z")
        );
        let d = decode_alerts(body.as_bytes(), &tree()).expect("decodes");
        assert_eq!(d.alerts.len(), 1);
        assert_eq!(d.dropped, vec![Dropped::new("regionName", "an object"), Dropped::new("regionEngName", "a number")]);
        // Enrichment nested in an alert is dropped the same way (`levels.rs`).
        let levels =
            alert("22", "AIR", "2025-01-15T10:00:00Z").replace('}', r#","activeAlertLevels":{"alertLevel":"Red"}}"#);
        let d = decode_alerts(format!("[{}]", record("22", &levels)).as_bytes(), &tree()).expect("decodes");
        assert_eq!(d.alerts.len(), 1);
        assert_eq!(d.dropped, vec![Dropped::new("activeAlertLevels", "an object instead of a list")]);
    }

    #[test]
    fn duplicates_merge_into_one_alert() {
        let levels = |level: &str, reason: &str| {
            format!(r#","activeAlertLevels":[{{"alertLevel":"{level}","reason":"{reason}"}}]"#)
        };
        let a1 = alert("123", "AIR", "2025-01-15T10:05:00Z")
            .replace('}', &format!("{}}}", levels("Yellow", "Дронова загроза")));
        let a2 = alert("123", "AIR", "2025-01-15T10:00:00Z")
            .replace('}', &format!("{}}}", levels("Red", "Ракетна загроза")));
        // The same raion alert under the oblast record and under its own record.
        let body = format!("[{},{}]", record("22", &a1), record("123", &a2));
        let d = decode_alerts(body.as_bytes(), &tree()).expect("decodes");
        assert_eq!(d.alerts.len(), 1);
        let a = &d.alerts[0];
        assert_eq!(a.started_at, DateTime::parse_from_rfc3339("2025-01-15T10:00:00Z").unwrap());
        assert_eq!(a.level, Some(AlertLevel::Red));
        assert_eq!(
            a.threats,
            vec![
                Threat::at(ThreatKind::UnspecifiedMissiles, AlertLevel::Red),
                Threat::at(ThreatKind::Drones, AlertLevel::Yellow)
            ]
        );
    }

    #[test]
    fn unmapped_ids_are_reported_once_with_a_title() {
        let alerts = [
            alert("22", "AIR", "2025-01-15T10:00:00Z"),
            alert("9999", "AIR", "2025-01-15T10:00:00Z"),
            alert("9999", "ARTILLERY", "2025-01-15T10:00:00Z"),
        ]
        .join(",");
        let body =
            format!("[{},{}]", record("22", &alerts), record(r#""777""#, &alert("777", "AIR", "2025-01-15T10:00:00Z")));
        let d = decode_alerts(body.as_bytes(), &tree()).expect("decodes");
        assert_eq!(d.alerts.len(), 1);
        assert_eq!(
            d.unmapped,
            vec![
                Unmapped { id: "9999".into(), title: "District in Харківська область".into() },
                // The record's own region: its name.
                Unmapped { id: "777".into(), title: "Харківська область".into() },
            ]
        );
    }

    #[test]
    fn a_webhook_record_decodes_alone() {
        let body = record(
            "22",
            &[alert("22", "AIR", "2025-01-15T10:00:00Z"), alert("123", "ARTILLERY", "2025-01-15T10:00:00Z")].join(","),
        );
        let d = decode_record(body.as_bytes(), &tree()).expect("decodes");
        assert_eq!(
            d.alerts.iter().map(|a| a.key.clone()).collect::<Vec<_>>(),
            vec![key(AlertKind::AirRaid, OBLAST), key(AlertKind::Artillery, RAION)]
        );
        assert_eq!(record_region_id(body.as_bytes()).expect("id"), FeedId::Number(22));
        // An all-clear push: the record with nothing active.
        let d = decode_record(record("22", "").as_bytes(), &tree()).expect("decodes");
        assert!(d.alerts.is_empty());
        // Paths of a lone record start at its fields.
        let bad = record("22", &alert("22", "AIR", "soon"));
        match decode_record(bad.as_bytes(), &tree()) {
            Err(SourceError::Decode(msg)) => assert!(msg.starts_with("activeAlerts[0].lastUpdate"), "{msg}"),
            other => panic!("{other:?}"),
        }
        assert!(decode_record(b"[]", &tree()).is_err());
    }

    #[test]
    fn status_reads_the_last_action_index() {
        assert_eq!(decode_status(br#"{"lastActionIndex":0}"#).expect("ok"), 0);
        assert_eq!(decode_status(br#"{"lastActionIndex":9007199254740993}"#).expect("ok"), 9_007_199_254_740_993);
        for bad in [&br#"{}"#[..], br#"{"lastActionIndex":-1}"#, br#"{"lastActionIndex":"5"}"#, b"<html>", b"[]"] {
            assert!(decode_status(bad).is_err(), "{}", String::from_utf8_lossy(bad));
        }
    }
}
