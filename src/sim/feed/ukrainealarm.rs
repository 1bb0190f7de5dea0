//! ukrainealarm v3: `GET /api/v3/alerts`, `/api/v3/alerts/{regionId}`,
//! `/api/v3/alerts/status`, `/api/v3/regions`, and webhook pushes.
//!
//! Rules it enforces, because the real service does and sirena must cope:
//! - the key comes bare in `Authorization` (the spec's `apiKey` scheme);
//!   `Bearer <key>`, another key or none get 401 with an empty body;
//! - more than `ukrainealarm_requests_per_min` requests in any sliding 60 s
//!   window also get 401, which is how the provider answers throttling, so a
//!   client cannot tell a revoked key from a burst; refused requests do not
//!   count;
//! - `lastActionIndex` grows by one for every alert started, ended or
//!   changed, and stays put otherwise, so a client that polls the status
//!   first fetches the list only when something happened.
//!
//! Shapes: `/api/v3/alerts` lists one `State` record per oblast with an
//! active alert, its `activeAlerts` holding the oblast's own alerts and its
//! raions' and hromadas' (grouped by `location_oblast_uid`), each with its
//! own `regionId`. The sim serves whatever the timeline holds, oblast-level
//! air raids included, which the real provider has not raised since November
//! 2025. An alert with threats gets one `activeAlertLevels` entry per level
//! its threats are at (`alertLevel`, a Ukrainian `reason` naming them, and
//! `createdAt`), as the provider's own clients' fixtures show ("Ракетна
//! загроза (червоний рівень)" beside "Дронова загроза (жовтий рівень)"); an
//! alert with a level and no threats gets one entry at that level.
//! `regionEngName` is a string, `""` where the sim has no English name, as
//! the provider sends for communities. `/api/v3/regions` is the tree of
//! every region the timeline has named, children flat under their oblast. A
//! webhook push is the oblast's record, with an empty `activeAlerts` once
//! nothing is active there.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::Response;
use axum::routing::get;
use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use tokio::sync::mpsc;

use super::{
    Fault, FeedKind, Inner, KnownRegion, PushError, SimAlert, View, WebhookTarget, common_fault, error_answer, ok_body,
    served_body,
};

const FEED: FeedKind = FeedKind::UkraineAlarm;

pub(super) fn routes() -> Router<Arc<Inner>> {
    Router::new()
        .route("/api/v3/alerts", get(alerts))
        .route("/api/v3/alerts/status", get(status))
        .route("/api/v3/alerts/{region_id}", get(region_alerts))
        .route("/api/v3/regions", get(regions))
}

/// What a request asks for, rendered from the view it is answered from.
enum Ask {
    Alerts,
    Region(String),
    Status,
    Regions,
}

async fn alerts(State(sim): State<Arc<Inner>>, headers: HeaderMap) -> Response {
    answer(&sim, &headers, Ask::Alerts).await
}

async fn region_alerts(State(sim): State<Arc<Inner>>, Path(region_id): Path<String>, headers: HeaderMap) -> Response {
    answer(&sim, &headers, Ask::Region(region_id)).await
}

async fn status(State(sim): State<Arc<Inner>>, headers: HeaderMap) -> Response {
    answer(&sim, &headers, Ask::Status).await
}

async fn regions(State(sim): State<Arc<Inner>>, headers: HeaderMap) -> Response {
    answer(&sim, &headers, Ask::Regions).await
}

async fn answer(sim: &Inner, headers: &HeaderMap, ask: Ask) -> Response {
    let lists = matches!(ask, Ask::Alerts | Ask::Region(_));
    let (fault, view) = sim.begin(FEED, headers, lists);
    let mut truncate = false;
    let mut empty = false;
    let mut list_missing = false;
    match fault {
        Some(Fault::Truncated) => truncate = true,
        Some(Fault::EmptyList) => {
            tracing::debug!("feed sim: injected empty list");
            empty = true;
        }
        Some(Fault::ListMissing) => {
            tracing::debug!("feed sim: injected records without activeAlerts");
            list_missing = true;
        }
        Some(f) => {
            if let Some(answer) = common_fault(sim, FEED, &f).await {
                return answer;
            }
        }
        None => {}
    }
    // Faults come before the gate; the gate only refuses real requests.
    if !truncate && !empty {
        if !sim.admit(FEED, sim.cfg.ukrainealarm_requests_per_min) {
            return error_answer(FEED, StatusCode::UNAUTHORIZED);
        }
        let key = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
        if key.map(str::trim) != Some(sim.cfg.ukrainealarm_key.as_str()) {
            return error_answer(FEED, StatusCode::UNAUTHORIZED);
        }
    }
    // Only a whole `/api/v3/alerts` list counts as the version served.
    let whole_list = matches!(ask, Ask::Alerts) && !empty && !truncate && !list_missing;
    let mut body = {
        let st = sim.lock();
        match ask {
            Ask::Alerts if empty => json!([]),
            Ask::Alerts => alert_records(&view, &st.regions),
            Ask::Region(_) if empty => json!([]),
            Ask::Region(id) => match id.trim().parse::<u32>().ok().and_then(|id| region_record(&view, &st.regions, id))
            {
                Some(record) => json!([record]),
                None => return error_answer(FEED, StatusCode::NOT_FOUND),
            },
            Ask::Status => json!({ "lastActionIndex": view.action_index }),
            Ask::Regions => regions_tree(&st.regions),
        }
    };
    if list_missing {
        for record in body.as_array_mut().into_iter().flatten() {
            if let Some(r) = record.as_object_mut() {
                r.remove("activeAlerts");
            }
        }
    }
    if whole_list {
        return served_body(sim, FEED, view.version, "application/json; charset=utf-8", body.to_string());
    }
    ok_body("application/json; charset=utf-8", body.to_string(), truncate)
}

/// `/api/v3/alerts`: a `State` record per oblast with anything active.
fn alert_records(view: &View, regions: &BTreeMap<u32, KnownRegion>) -> Value {
    let mut oblasts: Vec<u32> = view.alerts.iter().map(|(_, a)| a.location_oblast_uid).collect();
    oblasts.sort_unstable();
    oblasts.dedup();
    Value::Array(oblasts.into_iter().map(|o| state_record(view, regions, o)).collect())
}

/// The `State` record of one oblast: its alerts and its children's, in list
/// order. Also a webhook push's body.
pub(super) fn state_record(view: &View, regions: &BTreeMap<u32, KnownRegion>, oblast: u32) -> Value {
    let alerts: Vec<&SimAlert> =
        view.alerts.iter().map(|(_, a)| a).filter(|a| a.location_oblast_uid == oblast).collect();
    let name = regions.get(&oblast).map(|r| r.name.clone()).unwrap_or_default();
    record(oblast, "State", &name, &alerts)
}

/// `/api/v3/alerts/{regionId}`: an oblast's `State` record, or a child's own
/// record with its own alerts. `None` for a region never seen.
fn region_record(view: &View, regions: &BTreeMap<u32, KnownRegion>, id: u32) -> Option<Value> {
    let region = regions.get(&id)?;
    if region.oblast_uid == id {
        return Some(state_record(view, regions, id));
    }
    let alerts: Vec<&SimAlert> = view.alerts.iter().map(|(_, a)| a).filter(|a| a.location_uid == id).collect();
    Some(record(id, region_type(&region.location_type), &region.name, &alerts))
}

fn record(id: u32, region_type: &str, name: &str, alerts: &[&SimAlert]) -> Value {
    let last_update = alerts.iter().map(|a| a.started_at).max().unwrap_or(DateTime::UNIX_EPOCH);
    let eng_name =
        alerts.iter().find(|a| a.location_uid == id).and_then(|a| a.location_title_en.clone()).unwrap_or_default();
    json!({
        "regionId": id.to_string(),
        "regionType": region_type,
        "regionName": name,
        "regionEngName": eng_name,
        "lastUpdate": timestamp(last_update),
        "activeAlerts": alerts.iter().map(|a| alert(a)).collect::<Vec<_>>(),
    })
}

fn alert(a: &SimAlert) -> Value {
    let mut v = json!({
        "regionId": a.location_uid.to_string(),
        "regionType": if a.location_uid == a.location_oblast_uid { "State" } else { region_type(&a.location_type) },
        "type": alert_type(&a.alert_type),
        "lastUpdate": timestamp(a.started_at),
    });
    let levels = alert_levels(a);
    if !levels.is_empty() {
        v["activeAlertLevels"] = json!(levels);
    }
    v
}

/// One entry per level the alert's threats are at, red first; with no threats,
/// one entry at the alert's level, if it has one.
fn alert_levels(a: &SimAlert) -> Vec<Value> {
    let mut by_level: BTreeMap<String, (Vec<&str>, DateTime<Utc>)> = BTreeMap::new();
    for t in &a.threats {
        let entry = by_level.entry(level_name(&t.level)).or_insert((Vec::new(), DateTime::<Utc>::MAX_UTC));
        entry.0.push(&t.threat_type);
        entry.1 = entry.1.min(t.started_at.unwrap_or(a.started_at));
    }
    if by_level.is_empty()
        && let Some(level) = &a.alert_level
    {
        by_level.insert(level_name(level), (Vec::new(), a.started_at));
    }
    // "Red" sorts before "Yellow".
    by_level
        .into_iter()
        .map(|(level, (threats, created))| {
            json!({ "alertLevel": level, "reason": reason(&level, &threats), "createdAt": timestamp(created) })
        })
        .collect()
}

/// `/api/v3/regions`: oblasts with their known children, flat.
fn regions_tree(regions: &BTreeMap<u32, KnownRegion>) -> Value {
    let states: Vec<Value> = regions
        .iter()
        .filter(|(id, r)| r.oblast_uid == **id)
        .map(|(id, r)| {
            let children: Vec<Value> = regions
                .iter()
                .filter(|(cid, c)| c.oblast_uid == *id && *cid != id)
                .map(|(cid, c)| {
                    json!({
                        "regionId": cid.to_string(),
                        "regionName": c.name,
                        "regionType": region_type(&c.location_type),
                        "regionChildIds": [],
                    })
                })
                .collect();
            json!({ "regionId": id.to_string(), "regionName": r.name, "regionType": "State", "regionChildIds": children })
        })
        .collect();
    json!({ "states": states })
}

fn region_type(location_type: &str) -> &'static str {
    match location_type {
        "oblast" => "State",
        "raion" => "District",
        // The provider lists cities as the hromadas they lead.
        "hromada" | "city" => "Community",
        _ => "Null",
    }
}

/// alerts.in.ua's `alert_type` in ukrainealarm's spelling; a type neither
/// knows goes through upper-cased, for the adapter to keep as unknown.
fn alert_type(t: &str) -> String {
    match t {
        "air_raid" => "AIR".to_owned(),
        "artillery_shelling" => "ARTILLERY".to_owned(),
        "urban_fights" => "URBAN_FIGHTS".to_owned(),
        "chemical" => "CHEMICAL".to_owned(),
        "nuclear" => "NUCLEAR".to_owned(),
        "info" => "INFO".to_owned(),
        other => other.to_ascii_uppercase(),
    }
}

fn level_name(level: &str) -> String {
    match level.to_ascii_lowercase().as_str() {
        "red" => "Red".to_owned(),
        "yellow" => "Yellow".to_owned(),
        _ => level.to_owned(),
    }
}

/// A reason text in the provider's style: "Загроза балістичних ракет, дронова
/// загроза (червоний рівень)". Threats the sim cannot say go through as
/// written, which the adapter will not read as a threat.
fn reason(level: &str, threats: &[&str]) -> String {
    let mut parts: Vec<String> = threats.iter().map(|t| phrase(t)).collect();
    if parts.is_empty() {
        parts.push("загроза".to_owned());
    }
    let mut text = parts.join(", ");
    if let Some(first) = text.chars().next() {
        text = first.to_uppercase().chain(text.chars().skip(1)).collect();
    }
    let tier = match level.to_ascii_lowercase().as_str() {
        "red" => "червоний рівень".to_owned(),
        "yellow" => "жовтий рівень".to_owned(),
        other => format!("рівень {other}"),
    };
    format!("{text} ({tier})")
}

/// An alerts.in.ua `threat_type` (or an older plain name) in Ukrainian.
fn phrase(threat_type: &str) -> String {
    let t = threat_type.to_ascii_lowercase();
    let said = match t.as_str() {
        "tactic_aircraft_activity" => "активність тактичної авіації",
        "strategic_aircraft_activity" => "активність стратегічної авіації",
        "mig31k_departure" => "зліт МіГ-31К",
        "unspecified_missiles" => "ракетна загроза",
        "air_defense" => "робота ППО",
        "unknown" => "загроза",
        _ if t.contains("ballistic") => "загроза балістичних ракет",
        _ if t.contains("cruise") => "загроза крилатих ракет",
        _ if t.contains("missile") || t.contains("rocket") => "ракетна загроза",
        _ if t.contains("drone") || t.contains("uav") || t.contains("shahed") => "дронова загроза",
        _ if t.contains("bomb") || t == "kab" || t == "kabs" => "загроза застосування КАБ",
        _ if t.contains("aircraft") || t.contains("aviation") => "активність тактичної авіації",
        _ => return t,
    };
    said.to_owned()
}

/// `2025-01-15T10:00:00Z`, with a fraction only when there is one.
fn timestamp(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.fZ").to_string()
}

/// Posts one record to a loopback URL and counts it once answered.
pub(super) async fn post(sim: &Inner, target: &WebhookTarget, body: Vec<u8>) -> Result<u16, PushError> {
    let url = reqwest::Url::parse(&target.url).map_err(|_| PushError::NotLoopback(target.url.clone()))?;
    let host = url.host_str().unwrap_or_default().trim_start_matches('[').trim_end_matches(']');
    let loopback = host == "localhost" || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback());
    if !loopback {
        return Err(PushError::NotLoopback(target.url.clone()));
    }
    let name = HeaderName::from_bytes(target.secret_header.as_bytes())
        .map_err(|e| PushError::BadHeader(format!("{}: {e}", target.secret_header)))?;
    let value = HeaderValue::from_str(&target.secret).map_err(|e| PushError::BadHeader(e.to_string()))?;
    let resp = sim
        .http()
        .post(url)
        .header(header::CONTENT_TYPE, "application/json")
        .header(name, value)
        .body(body)
        .send()
        .await?;
    sim.pushes.fetch_add(1, Ordering::Relaxed);
    Ok(resp.status().as_u16())
}

/// Posts queued pushes one at a time, so a receiver sees them in timeline
/// order. Ends on shutdown.
pub(super) async fn push_worker(sim: Arc<Inner>, mut queue: mpsc::UnboundedReceiver<(WebhookTarget, Vec<u8>)>) {
    loop {
        let (target, body) = tokio::select! {
            () = sim.shutdown.cancelled() => return,
            next = queue.recv() => match next {
                Some(push) => push,
                None => return,
            },
        };
        let pushed = tokio::select! {
            () = sim.shutdown.cancelled() => return,
            r = post(&sim, &target, body) => r,
        };
        match pushed {
            Ok(status) => tracing::debug!(status, url = %target.url, "feed sim: webhook pushed"),
            Err(e) => tracing::warn!(error = %e, "feed sim: webhook push failed"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::feed::SimThreat;

    #[test]
    fn reasons_say_the_threats_and_the_tier() {
        assert_eq!(
            reason("red", &["ballistic_missiles", "drones"]),
            "Загроза балістичних ракет, дронова загроза (червоний рівень)"
        );
        assert_eq!(reason("Red", &["unspecified_missiles"]), "Ракетна загроза (червоний рівень)");
        assert_eq!(reason("Yellow", &[]), "Загроза (жовтий рівень)");
        assert_eq!(reason("orange", &["hypersonic"]), "Hypersonic (рівень orange)");
    }

    #[test]
    fn one_level_entry_per_level_of_the_threats() {
        let start = DateTime::from_timestamp(1_790_000_000, 0).expect("time");
        let a = SimAlert {
            alert_level: Some("yellow".into()),
            threats: vec![
                SimThreat::new("drones", "yellow"),
                SimThreat {
                    started_at: Some(start + chrono::TimeDelta::seconds(60)),
                    ..SimThreat::new("unspecified_missiles", "red")
                },
            ],
            started_at: start,
            ..SimAlert::default()
        };
        assert_eq!(
            alert_levels(&a),
            vec![
                json!({"alertLevel": "Red", "reason": "Ракетна загроза (червоний рівень)", "createdAt": "2026-09-21T14:14:20Z"}),
                json!({"alertLevel": "Yellow", "reason": "Дронова загроза (жовтий рівень)", "createdAt": "2026-09-21T14:13:20Z"}),
            ]
        );
        let plain = SimAlert { alert_level: Some("red".into()), started_at: start, ..SimAlert::default() };
        assert_eq!(
            alert_levels(&plain),
            vec![
                json!({"alertLevel": "Red", "reason": "Загроза (червоний рівень)", "createdAt": "2026-09-21T14:13:20Z"})
            ]
        );
        assert!(alert_levels(&SimAlert::default()).is_empty());
    }
}
