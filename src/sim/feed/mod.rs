//! alerts.in.ua feed simulator.
//!
//! Role: stands in for `api.alerts.in.ua` so the real feed adapter can poll
//! it on loopback, and so tests and drills can switch alerts on and off and
//! make the feed misbehave on purpose.
//!
//! Rules it enforces, because the real service does and sirena must cope:
//! - `GET /v1/alerts/active.json` only; the token comes as
//!   `Authorization: Bearer <token>` (or `?token=`, which the real API also
//!   takes), otherwise 401 `{"message":"Unauthorized"}`;
//! - more than `requests_per_min` requests in any sliding 60 s window get 429
//!   `{"message":"Too many requests"}` (the live API allows 8 a minute);
//!   rejected requests do not count, so a client that backs off recovers;
//! - every answer carries `Last-Modified`, and `If-Modified-Since` at or after
//!   the last change gets 304 with an empty body.
//!
//! Injected faults (`FeedSim::inject`) replace the next requests' answers
//! outright, before authentication and rate limiting, and do not count
//! towards the rate limit: they model the path to the API failing, not the
//! API refusing.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use chrono::{DateTime, TimeDelta, Utc};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Clients poll on a timer, and loopback jitter can put two polls spaced a
/// full window apart slightly inside it; this slack keeps such a client legal.
const WINDOW_TOLERANCE: Duration = Duration::from_millis(15);

const RATE_WINDOW: Duration = Duration::from_secs(60);

/// Alert ids start where the real API's were in 2024, so code that confuses
/// alert ids with location uids shows up.
const FIRST_ALERT_ID: u64 = 40_001;

/// What the simulated feed accepts and how it formats uids.
#[derive(Clone, Debug)]
pub struct FeedSimConfig {
    /// The only token accepted.
    pub token: String,
    /// Requests allowed in any sliding 60 s window.
    pub requests_per_min: u32,
    /// The live API sends `location_uid` as a string; some fixtures use ints.
    pub uid_as_string: bool,
}

impl Default for FeedSimConfig {
    fn default() -> Self {
        Self { token: "sim-alerts-token".to_owned(), requests_per_min: 8, uid_as_string: true }
    }
}

/// One active alert, as the feed will list it.
#[derive(Clone, Debug)]
pub struct SimAlert {
    pub location_uid: u32,
    pub location_title: String,
    /// `oblast`, `raion`, `hromada` or `city`.
    pub location_type: String,
    pub location_oblast: String,
    pub location_oblast_uid: u32,
    /// `air_raid`, `artillery_shelling`, `urban_fights`, `chemical`,
    /// `nuclear`, or anything else the adapter must tolerate.
    pub alert_type: String,
    pub started_at: DateTime<Utc>,
}

/// A misbehaviour to serve instead of the normal answer.
#[derive(Clone, Debug)]
pub enum Fault {
    /// This status with `{"message":"Internal server error"}`.
    Status(u16),
    /// Sleep, then answer normally; with a short client timeout this is a
    /// timeout. Cut short by shutdown.
    Delay(Duration),
    /// 200 with an HTML error page, as a broken proxy sends.
    Garbage,
    /// 200 with the real body cut in half.
    Truncated,
    /// 200 with a valid body listing no alerts.
    EmptyList,
}

/// A running simulator. Cloning is cheap; all clones share one server.
#[derive(Clone)]
pub struct FeedSim {
    inner: Arc<Inner>,
}

struct Inner {
    cfg: FeedSimConfig,
    addr: SocketAddr,
    shutdown: CancellationToken,
    state: Mutex<FeedState>,
}

struct FeedState {
    /// With the id each was given when it first appeared.
    alerts: Vec<(u64, SimAlert)>,
    /// Ids stay stable while the same alert stays active, as on the real
    /// API; keyed by (location uid, alert type, start).
    ids: HashMap<(u32, String, i64), u64>,
    next_id: u64,
    /// Whole seconds, since HTTP dates carry no more.
    last_modified: DateTime<Utc>,
    faults: VecDeque<Fault>,
    hits: VecDeque<Instant>,
    requests: u64,
}

impl FeedSim {
    /// Binds `127.0.0.1:0` and serves until `shutdown` is cancelled.
    pub async fn start(
        cfg: FeedSimConfig,
        shutdown: CancellationToken,
        tracker: &TaskTracker,
    ) -> std::io::Result<FeedSim> {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let inner = Arc::new(Inner {
            cfg,
            addr,
            shutdown: shutdown.clone(),
            state: Mutex::new(FeedState {
                alerts: Vec::new(),
                ids: HashMap::new(),
                next_id: FIRST_ALERT_ID,
                last_modified: whole_seconds(Utc::now()),
                faults: VecDeque::new(),
                hits: VecDeque::new(),
                requests: 0,
            }),
        });
        let app = Router::new()
            .route("/v1/alerts/active.json", get(active_alerts))
            .fallback(not_found)
            .with_state(inner.clone());
        tracker.spawn(async move {
            let served = axum::serve(listener, app).with_graceful_shutdown(shutdown.cancelled_owned()).await;
            if let Err(e) = served {
                tracing::warn!(error = %e, "feed sim server stopped with an error");
            }
        });
        tracing::debug!(%addr, "feed sim listening");
        Ok(FeedSim { inner })
    }

    /// `http://127.0.0.1:PORT`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.inner.addr)
    }

    /// Replaces the active list and moves `Last-Modified` forward.
    pub fn set_alerts(&self, alerts: Vec<SimAlert>) {
        let mut st = self.inner.lock();
        let mut ids = HashMap::new();
        let mut listed = Vec::with_capacity(alerts.len());
        for alert in alerts {
            let key = (alert.location_uid, alert.alert_type.clone(), alert.started_at.timestamp_millis());
            let id = match st.ids.get(&key) {
                Some(&id) => id,
                None => {
                    st.next_id += 1;
                    st.next_id - 1
                }
            };
            ids.insert(key, id);
            listed.push((id, alert));
        }
        st.alerts = listed;
        st.ids = ids;
        // HTTP dates have one-second resolution; two changes within a second
        // would share a Last-Modified and a client holding it would miss the
        // second. Moving forward by at least a second keeps every change
        // visible, at the cost of a stamp slightly ahead of the clock.
        let now = whole_seconds(Utc::now());
        st.last_modified = now.max(st.last_modified + TimeDelta::seconds(1));
    }

    /// The next `times` requests get `fault` instead of a normal answer.
    /// Faults injected earlier are served first.
    pub fn inject(&self, fault: Fault, times: u32) {
        let mut st = self.inner.lock();
        for _ in 0..times {
            st.faults.push_back(fault.clone());
        }
    }

    /// Requests received so far, of any kind.
    pub fn requests(&self) -> u64 {
        self.inner.lock().requests
    }
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, FeedState> {
        self.state.lock().expect("sim state lock")
    }
}

fn whole_seconds(t: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp(t.timestamp(), 0).unwrap_or(t)
}

fn http_date(t: DateTime<Utc>) -> String {
    t.format("%a, %d %b %Y %H:%M:%S GMT").to_string()
}

fn api_timestamp(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

fn message(status: StatusCode, text: &str) -> Response {
    (status, axum::Json(json!({ "message": text }))).into_response()
}

async fn not_found() -> Response {
    message(StatusCode::NOT_FOUND, "Not found")
}

async fn active_alerts(State(sim): State<Arc<Inner>>, RawQuery(query): RawQuery, headers: HeaderMap) -> Response {
    let fault = {
        let mut st = sim.lock();
        st.requests += 1;
        st.faults.pop_front()
    };
    match fault {
        None => {}
        Some(Fault::Status(code)) => {
            tracing::debug!(code, "feed sim: injected status");
            let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            return message(status, "Internal server error");
        }
        Some(Fault::Delay(d)) => {
            tracing::debug!(?d, "feed sim: injected delay");
            // Shutdown must not wait out a long injected delay.
            tokio::select! {
                _ = tokio::time::sleep(d) => {}
                _ = sim.shutdown.cancelled() => {
                    return message(StatusCode::SERVICE_UNAVAILABLE, "Shutting down");
                }
            }
        }
        Some(Fault::Garbage) => {
            tracing::debug!("feed sim: injected garbage");
            return (StatusCode::OK, [(header::CONTENT_TYPE, "text/html")], "<html>502 Bad Gateway</html>")
                .into_response();
        }
        Some(Fault::Truncated) => {
            tracing::debug!("feed sim: injected truncation");
            let (body, last_modified) = {
                let st = sim.lock();
                (render(&sim.cfg, &st, false), st.last_modified)
            };
            let mut bytes = body.into_bytes();
            bytes.truncate(bytes.len() / 2);
            return ok_json(bytes, last_modified);
        }
        Some(Fault::EmptyList) => {
            tracing::debug!("feed sim: injected empty list");
            let (body, last_modified) = {
                let st = sim.lock();
                (render(&sim.cfg, &st, true), st.last_modified)
            };
            return ok_json(body.into_bytes(), last_modified);
        }
    }
    normal_answer(&sim, query.as_deref(), &headers)
}

fn normal_answer(sim: &Inner, query: Option<&str>, headers: &HeaderMap) -> Response {
    let mut st = sim.lock();
    let now = Instant::now();
    let span = RATE_WINDOW.saturating_sub(WINDOW_TOLERANCE);
    while st.hits.front().is_some_and(|&at| now.saturating_duration_since(at) >= span) {
        st.hits.pop_front();
    }
    let limit = usize::try_from(sim.cfg.requests_per_min).unwrap_or(usize::MAX);
    if st.hits.len() >= limit {
        tracing::debug!("feed sim: rate limited");
        return message(StatusCode::TOO_MANY_REQUESTS, "Too many requests");
    }
    st.hits.push_back(now);

    if !authorized(&sim.cfg.token, query, headers) {
        return message(StatusCode::UNAUTHORIZED, "Unauthorized");
    }

    let if_modified_since = headers
        .get(header::IF_MODIFIED_SINCE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| DateTime::parse_from_rfc2822(v).ok());
    if let Some(since) = if_modified_since
        && since >= st.last_modified
    {
        let mut resp = StatusCode::NOT_MODIFIED.into_response();
        set_last_modified(&mut resp, st.last_modified);
        return resp;
    }
    let body = render(&sim.cfg, &st, false);
    ok_json(body.into_bytes(), st.last_modified)
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

fn ok_json(body: Vec<u8>, last_modified: DateTime<Utc>) -> Response {
    let mut resp = (StatusCode::OK, [(header::CONTENT_TYPE, "application/json; charset=utf-8")], body).into_response();
    set_last_modified(&mut resp, last_modified);
    resp
}

fn set_last_modified(resp: &mut Response, t: DateTime<Utc>) {
    if let Ok(v) = HeaderValue::from_str(&http_date(t)) {
        resp.headers_mut().insert(header::LAST_MODIFIED, v);
    }
}

/// The body in the live API's shape.
fn render(cfg: &FeedSimConfig, st: &FeedState, empty: bool) -> String {
    let alerts: Vec<Value> = if empty {
        Vec::new()
    } else {
        st.alerts
            .iter()
            .map(|(id, a)| {
                let uid = if cfg.uid_as_string { json!(a.location_uid.to_string()) } else { json!(a.location_uid) };
                json!({
                    "id": id,
                    "location_title": a.location_title,
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
                })
            })
            .collect()
    };
    json!({
        "alerts": alerts,
        "disclaimer": "",
        "meta": {
            "last_updated_at": st.last_modified.format("%Y/%m/%d %H:%M:%S +0000").to_string(),
        },
    })
    .to_string()
}
