//! alerts.in.ua: `GET /v1/alerts/active.json`.
//!
//! Rules it enforces, because the real service does and sirena must cope:
//! - the token comes as `Authorization: Bearer <token>` (or `?token=`, which
//!   the real API also takes), otherwise 401 `{"message":"Unauthorized"}`;
//! - more than `requests_per_min` requests in any sliding 60 s window get 429
//!   `{"message":"Too many requests"}` (the live API allows 8 a minute);
//!   rejected requests do not count, so a client that backs off recovers;
//! - every answer carries `Last-Modified`, and `If-Modified-Since` at or after
//!   the last change gets 304 with an empty body.
//!
//! Body shape as the official Python client `alerts_in_ua` 0.4.0 reads it
//! (DESIGN §11): `location_title_en`, `notes`, `calculated` and `country`
//! on every alert, `alert_level` when set (bodies before levels had none), and
//! `threats` as objects `{threat_type, level, started_at, source_message}`
//! when the alert has any (the live API leaves the key out otherwise).

use std::sync::Arc;

use axum::Router;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::{Fault, FeedKind, FeedSimConfig, Inner, View, common_fault, error_answer, ok_body, served_body};

pub(super) fn routes() -> Router<Arc<Inner>> {
    Router::new().route("/v1/alerts/active.json", get(active_alerts))
}

async fn active_alerts(State(sim): State<Arc<Inner>>, RawQuery(query): RawQuery, headers: HeaderMap) -> Response {
    let (fault, view) = sim.begin(FeedKind::AlertsInUa, &headers, true);
    match fault {
        Some(Fault::Truncated) => return with_last_modified(ok_json(render(&sim.cfg, &view, false), true), &view),
        Some(Fault::EmptyList) => {
            tracing::debug!("feed sim: injected empty list");
            return with_last_modified(ok_json(render(&sim.cfg, &view, true), false), &view);
        }
        Some(Fault::ListMissing) => {
            tracing::debug!("feed sim: injected body without alerts");
            let mut body: Value = serde_json::from_str(&render(&sim.cfg, &view, false)).unwrap_or_default();
            if let Some(o) = body.as_object_mut() {
                o.remove("alerts");
            }
            return with_last_modified(ok_json(body.to_string(), false), &view);
        }
        Some(f) => {
            if let Some(answer) = common_fault(&sim, FeedKind::AlertsInUa, &f).await {
                return answer;
            }
        }
        None => {}
    }

    if !sim.admit(FeedKind::AlertsInUa, sim.cfg.requests_per_min) {
        return error_answer(FeedKind::AlertsInUa, StatusCode::TOO_MANY_REQUESTS);
    }
    if !authorized(&sim.cfg.token, query.as_deref(), &headers) {
        return error_answer(FeedKind::AlertsInUa, StatusCode::UNAUTHORIZED);
    }
    let if_modified_since = headers
        .get(header::IF_MODIFIED_SINCE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| DateTime::parse_from_rfc2822(v).ok());
    if let Some(since) = if_modified_since
        && since >= view.last_modified
    {
        return with_last_modified(StatusCode::NOT_MODIFIED.into_response(), &view);
    }
    let body = render(&sim.cfg, &view, false);
    let served = served_body(&sim, FeedKind::AlertsInUa, view.version, "application/json; charset=utf-8", body);
    with_last_modified(served, &view)
}

fn authorized(token: &str, query: Option<&str>, headers: &HeaderMap) -> bool {
    let from_header = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .is_some_and(|t| t.trim() == token);
    let from_query = query.is_some_and(|q| q.split('&').any(|pair| pair.strip_prefix("token=") == Some(token)));
    from_header || from_query
}

fn ok_json(body: String, truncate: bool) -> Response {
    ok_body("application/json; charset=utf-8", body, truncate)
}

fn with_last_modified(mut resp: Response, view: &View) -> Response {
    if let Ok(v) = HeaderValue::from_str(&http_date(view.last_modified)) {
        resp.headers_mut().insert(header::LAST_MODIFIED, v);
    }
    resp
}

fn http_date(t: DateTime<Utc>) -> String {
    t.format("%a, %d %b %Y %H:%M:%S GMT").to_string()
}

fn api_timestamp(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

/// The body in the live API's shape.
fn render(cfg: &FeedSimConfig, view: &View, empty: bool) -> String {
    let alerts: Vec<Value> = if empty {
        Vec::new()
    } else {
        view.alerts
            .iter()
            .map(|(id, a)| {
                let uid = if cfg.uid_as_string { json!(a.location_uid.to_string()) } else { json!(a.location_uid) };
                let mut alert = json!({
                    "id": id,
                    "location_title": a.location_title,
                    "location_title_en": a.location_title_en,
                    "location_type": a.location_type,
                    "location_uid": uid,
                    "location_oblast": a.location_oblast,
                    "location_oblast_uid": a.location_oblast_uid,
                    "alert_type": a.alert_type,
                    "started_at": api_timestamp(a.started_at),
                    "finished_at": null,
                    "updated_at": api_timestamp(a.started_at),
                    "notes": null,
                    "calculated": null,
                    "country": null,
                });
                if let Some(level) = &a.alert_level {
                    alert["alert_level"] = json!(level);
                }
                if let Some(raw) = &a.threats_as_sent {
                    alert["threats"] = raw.clone();
                } else if !a.threats.is_empty() {
                    let threats: Vec<Value> = a
                        .threats
                        .iter()
                        .map(|t| {
                            json!({
                                "threat_type": t.threat_type,
                                "level": t.level,
                                "started_at": api_timestamp(t.started_at.unwrap_or(a.started_at)),
                                "source_message": t.source_message,
                            })
                        })
                        .collect();
                    alert["threats"] = json!(threats);
                }
                alert
            })
            .collect()
    };
    json!({
        "alerts": alerts,
        "disclaimer": "",
        "meta": {
            "last_updated_at": view.last_modified.format("%Y/%m/%d %H:%M:%S +0000").to_string(),
        },
    })
    .to_string()
}
