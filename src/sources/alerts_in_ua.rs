//! alerts.in.ua: `GET /v1/alerts/active.json`, Bearer token, `If-Modified-Since`.
//! The request, its limits and the poll loop are shared (`http.rs`, `poll.rs`).
//!
//! Decoding is strict about the envelope and lenient about what the API is known to
//! vary: `location_uid` comes as a string or a number, and an `alert_type` sirena does
//! not know is kept as `unknown`, and so are levels and threats it does not know
//! (`alert_level` and `threats` are optional and may be null). One malformed alert
//! rejects the whole body: dropping it alone would read as "that alert ended".

use std::collections::HashSet;

use async_trait::async_trait;
use chrono::DateTime;
use serde::Deserialize;

use super::{Decoded, Feed, Fetched, HttpGet, Polled, SourceError, Unmapped};
use crate::alerts::state::ObservedAlert;
use crate::alerts::{AlertKey, AlertKind, AlertLevel, Threat};
use crate::regions::RegionTree;

#[derive(Debug, Deserialize)]
struct Body {
    alerts: Vec<RawAlert>,
}

#[derive(Debug, Deserialize)]
struct RawAlert {
    location_uid: Uid,
    alert_type: String,
    started_at: String,
    #[serde(default)]
    finished_at: Option<String>,
    #[serde(default)]
    location_title: Option<String>,
    #[serde(default)]
    alert_level: Option<String>,
    #[serde(default)]
    threats: Option<Vec<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Uid {
    Int(u64),
    Str(String),
}

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
    let body: Body = serde_json::from_slice(body).map_err(|e| SourceError::Decode(e.to_string()))?;
    let mut alerts = Vec::new();
    let mut unmapped = Vec::new();
    let mut seen = HashSet::new();
    for (i, a) in body.alerts.into_iter().enumerate() {
        if a.finished_at.as_deref().is_some_and(|f| !f.is_empty()) {
            continue;
        }
        let uid = match &a.location_uid {
            Uid::Int(n) => u32::try_from(*n).ok(),
            Uid::Str(s) => s.trim().parse().ok(),
        }
        .ok_or_else(|| SourceError::Decode(format!("alerts[{i}].location_uid {:?} is not an id", a.location_uid)))?;
        let started_at = DateTime::parse_from_rfc3339(&a.started_at)
            .map_err(|e| SourceError::Decode(format!("alerts[{i}].started_at `{}`: {e}", a.started_at)))?
            .to_utc();
        let Some(region) = tree.by_feed_id(uid) else {
            unmapped.push(Unmapped { id: uid.to_string(), title: a.location_title.clone().unwrap_or_default() });
            continue;
        };
        let kind = kind_of(&a.alert_type);
        let key = AlertKey { kind, region: region.id.clone() };
        if !seen.insert(key.clone()) {
            continue;
        }
        alerts.push(ObservedAlert {
            key,
            started_at,
            raw_kind: (kind == AlertKind::Unknown).then(|| a.alert_type.clone()),
            level: a.alert_level.as_deref().filter(|l| !l.trim().is_empty()).map(AlertLevel::parse),
            threats: threats_of(a.threats.as_deref().unwrap_or_default()),
            texts: Vec::new(),
        });
    }
    Ok(Decoded { alerts, unmapped, dropped: Vec::new() })
}

/// The feed's threat names, parsed, sorted and without duplicates; blank names
/// are dropped rather than kept as an unknown threat called "".
fn threats_of(names: &[String]) -> Vec<Threat> {
    let mut threats: Vec<Threat> = names.iter().filter(|n| !n.trim().is_empty()).map(|n| Threat::parse(n)).collect();
    threats.sort();
    threats.dedup();
    threats
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

    #[test]
    fn level_and_threats_are_read() {
        let d = decode(
            body_with(r#""alert_level":"Red","threats":["drones","ballistic","Drone","glide-bomb","hypersonic"]"#)
                .as_bytes(),
            &tree(),
        )
        .expect("decodes");
        let a = &d.alerts[0];
        assert_eq!(a.level, Some(AlertLevel::Red));
        assert_eq!(
            a.threats,
            vec![Threat::BallisticMissiles, Threat::Drones, Threat::GuidedBombs, Threat::Unknown("hypersonic".into())]
        );
        let d = decode(body_with(r#""alert_level":"orange""#).as_bytes(), &tree()).expect("decodes");
        assert_eq!(d.alerts[0].level, Some(AlertLevel::Unknown("orange".into())));
    }

    #[test]
    fn level_and_threats_may_be_missing_null_or_blank() {
        for extra in [r#""x":0"#, r#""alert_level":null,"threats":null"#, r#""alert_level":"","threats":[""," "]"#] {
            let d = decode(body_with(extra).as_bytes(), &tree()).expect("decodes");
            assert_eq!(d.alerts[0].level, None, "{extra}");
            assert!(d.alerts[0].threats.is_empty(), "{extra}");
        }
        // A threat that is not a string is a malformed alert, not a silent drop.
        assert!(decode(body_with(r#""threats":[1]"#).as_bytes(), &tree()).is_err());
    }

    #[test]
    fn unmapped_locations_are_reported() {
        let d = decode(body("9999", "air_raid").as_bytes(), &tree()).expect("decodes");
        assert!(d.alerts.is_empty());
        assert_eq!(d.unmapped, vec![Unmapped { id: "9999".into(), title: "Харківська область".into() }]);
    }
}
