//! alerts.in.ua: `GET /v1/alerts/active.json`, Bearer token, `If-Modified-Since`.
//!
//! Decoding is strict about the envelope and lenient about what the API is known to
//! vary: `location_uid` comes as a string or a number, and an `alert_type` sirena does
//! not know is kept as `unknown`, and so are levels and threats it does not know
//! (`alert_level` and `threats` are optional and may be null). One malformed alert
//! rejects the whole body: dropping it alone would read as "that alert ended".

use std::collections::HashSet;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Deserialize;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

use super::{Decoded, SourceError, SourceReport, Unmapped};
use crate::alerts::state::{Observation, ObservedAlert};
use crate::alerts::{AlertKey, AlertKind, AlertLevel, Threat};
use crate::config::AlertsInUaSettings;
use crate::config::secret::Secret;
use crate::regions::RegionTree;

pub const SOURCE: &str = "alerts_in_ua";

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
        });
    }
    Ok(Decoded { alerts, unmapped })
}

/// The feed's threat names, parsed, sorted and without duplicates; blank names
/// are dropped rather than kept as an unknown threat called "".
fn threats_of(names: &[String]) -> Vec<Threat> {
    let mut threats: Vec<Threat> = names.iter().filter(|n| !n.trim().is_empty()).map(|n| Threat::parse(n)).collect();
    threats.sort();
    threats.dedup();
    threats
}

/// An HTTP client for one alerts.in.ua endpoint.
pub struct Client {
    http: reqwest::Client,
    url: String,
    token: Secret,
    timeout: Duration,
    last_modified: Option<String>,
}

/// A good answer.
pub enum Answer {
    NotModified,
    Body(bytes::Bytes),
}

impl Client {
    pub fn new(settings: &AlertsInUaSettings, token: Secret) -> Result<Client, SourceError> {
        let http = reqwest::Client::builder()
            .timeout(settings.timeout)
            .user_agent(concat!("sirena/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| SourceError::Transport(e.to_string()))?;
        Ok(Client {
            http,
            url: format!("{}/v1/alerts/active.json", settings.base_url.trim_end_matches('/')),
            token,
            timeout: settings.timeout,
            last_modified: None,
        })
    }

    pub async fn fetch(&mut self) -> Result<Answer, SourceError> {
        let mut req = self.http.get(&self.url).bearer_auth(self.token.expose());
        if let Some(lm) = &self.last_modified {
            req = req.header(reqwest::header::IF_MODIFIED_SINCE, lm);
        }
        let resp = req.send().await.map_err(|e| self.transport(e))?;
        let status = resp.status();
        if status == reqwest::StatusCode::NOT_MODIFIED {
            return Ok(Answer::NotModified);
        }
        let last_modified =
            resp.headers().get(reqwest::header::LAST_MODIFIED).and_then(|v| v.to_str().ok()).map(str::to_owned);
        let body = resp.bytes().await.map_err(|e| self.transport(e))?;
        if !status.is_success() {
            let message = serde_json::from_slice::<serde_json::Value>(&body)
                .ok()
                .and_then(|v| v.get("message").and_then(|m| m.as_str()).map(str::to_owned))
                .unwrap_or_else(|| String::from_utf8_lossy(&body).chars().take(200).collect());
            return Err(SourceError::Status { status: status.as_u16(), message });
        }
        // Remember the date only once the body is in hand, so a body lost to a
        // timeout is fetched again instead of answered with 304.
        self.last_modified = last_modified;
        Ok(Answer::Body(body))
    }

    /// Forgets `Last-Modified`, so the next fetch gets a full body. Used after a body
    /// failed to decode.
    pub fn forget_last_modified(&mut self) {
        self.last_modified = None;
    }

    fn transport(&self, e: reqwest::Error) -> SourceError {
        if e.is_timeout() {
            SourceError::Timeout(self.timeout)
        } else {
            SourceError::Transport(e.without_url().to_string())
        }
    }
}

/// Polls until cancelled, sending a report after every poll. A 429 pauses polling for
/// a minute: the budget is per client and hammering only extends the ban.
pub async fn run(
    settings: AlertsInUaSettings,
    mut client: Client,
    tree: watch::Receiver<std::sync::Arc<RegionTree>>,
    reports: mpsc::Sender<SourceReport>,
    cancel: CancellationToken,
) {
    let mut interval = tokio::time::interval(settings.poll);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_good: Option<Vec<ObservedAlert>> = None;
    loop {
        tokio::select! {
            () = cancel.cancelled() => return,
            _ = interval.tick() => {}
        }
        let answer = tokio::select! {
            () = cancel.cancelled() => return,
            a = client.fetch() => a,
        };
        let now: DateTime<Utc> = Utc::now();
        let report = match answer {
            Ok(Answer::NotModified) => match &last_good {
                // Unchanged since the last good body: the same view, confirmed now.
                Some(alerts) => {
                    SourceReport::Observed(Observation { source: SOURCE.into(), at: now, alerts: alerts.clone() })
                }
                None => {
                    client.forget_last_modified();
                    continue;
                }
            },
            Ok(Answer::Body(body)) => {
                let tree = tree.borrow().clone();
                match decode(&body, &tree) {
                    Ok(decoded) => {
                        if !decoded.unmapped.is_empty() {
                            tracing::debug!(source = SOURCE, unmapped = ?decoded.unmapped, "alerts for locations no region file carries");
                        }
                        if decoded.alerts.is_empty() {
                            // An empty list is believed only when it repeats in full bodies
                            // (see `alerts::state`); a 304 after it must not count again.
                            client.forget_last_modified();
                        }
                        last_good = Some(decoded.alerts.clone());
                        SourceReport::Observed(Observation { source: SOURCE.into(), at: now, alerts: decoded.alerts })
                    }
                    Err(error) => {
                        client.forget_last_modified();
                        SourceReport::Failed { source: SOURCE.into(), error }
                    }
                }
            }
            Err(error) => {
                if matches!(error, SourceError::Status { status: 429, .. }) {
                    interval.reset_after(Duration::from_secs(60));
                }
                SourceReport::Failed { source: SOURCE.into(), error }
            }
        };
        if reports.send(report).await.is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::regions::{Level, Localized, Region, RegionId};

    fn tree() -> RegionTree {
        RegionTree::build(vec![Region {
            id: RegionId::parse("UA63000000000041885").expect("id"),
            parent: None,
            level: Level::Oblast,
            name: Localized { uk: "Харківська область".into(), en: None },
            aliases: vec![],
            point: None,
            approx: false,
            feed_id: Some(22),
            channel: None,
        }])
        .expect("tree")
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
