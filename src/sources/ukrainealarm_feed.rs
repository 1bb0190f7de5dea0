//! The ukrainealarm v3 adapter's requests, waiting for its decoders.
//!
//! `GET /api/v3/alerts/status` is cheap and answers `{lastActionIndex}`; the full
//! `GET /api/v3/alerts` is fetched only when that index moved since the last snapshot
//! (or the last snapshot was empty, or there is none). The key goes in
//! `Authorization` as it is ([`Auth::Raw`](super::Auth::Raw)).
//!
//! The decoders are in `ukrainealarm.rs`; this adapter takes them as functions, so its
//! tests can drive it with simpler ones.
//!
//! The provider answers throttling with 401, not 429. A 401 after requests that
//! worked is taken for throttling (the poller backs off) until it has repeated
//! [`THROTTLING_401S`] times in a row; then it is what it says, a refused key
//! ([`SourceError::Unauthorized`]). A 401 to the very first request is a refused key
//! at once: nothing has worked yet that could be throttled.

use async_trait::async_trait;

use super::{Decoded, Feed, Fetched, HttpGet, Polled, SourceError};
use crate::regions::RegionTree;

/// `/api/v3/alerts/status` body → `lastActionIndex`.
pub type DecodeStatus = fn(&[u8]) -> Result<u64, SourceError>;
/// `/api/v3/alerts` body → the snapshot.
pub type DecodeAlerts = fn(&[u8], &RegionTree) -> Result<Decoded, SourceError>;

/// 401s in a row, after the key has worked, still read as throttling.
pub const THROTTLING_401S: u32 = 5;

pub struct UkraineAlarm {
    name: String,
    /// The key has been accepted at least once.
    worked: bool,
    unauthorized_in_row: u32,
    status_url: String,
    alerts_url: String,
    decode_status: DecodeStatus,
    decode_alerts: DecodeAlerts,
    /// The index in the status body last kept, for when the status answers 304.
    status_index: Option<u64>,
    /// The index the last snapshot was fetched under; `None` after an empty snapshot,
    /// which must be confirmed by full bodies, not by an unmoved index.
    snapshot_index: Option<u64>,
}

impl UkraineAlarm {
    pub fn new(name: &str, base_url: &str, decode_status: DecodeStatus, decode_alerts: DecodeAlerts) -> UkraineAlarm {
        let base = base_url.trim_end_matches('/');
        UkraineAlarm {
            name: name.to_owned(),
            worked: false,
            unauthorized_in_row: 0,
            status_url: format!("{base}/api/v3/alerts/status"),
            alerts_url: format!("{base}/api/v3/alerts"),
            decode_status,
            decode_alerts,
            status_index: None,
            snapshot_index: None,
        }
    }
}

#[async_trait]
impl Feed for UkraineAlarm {
    fn name(&self) -> &str {
        &self.name
    }

    async fn poll(&mut self, http: &mut HttpGet, tree: &RegionTree) -> Result<Polled, SourceError> {
        match self.ask(http, tree).await {
            Err(SourceError::Unauthorized { status: 401, message })
                if self.worked && self.unauthorized_in_row < THROTTLING_401S =>
            {
                self.unauthorized_in_row += 1;
                tracing::debug!(source = %self.name, message, in_row = self.unauthorized_in_row, "401 after working requests: throttled");
                Err(SourceError::RateLimited { retry_after: None })
            }
            Err(e) => Err(e),
            Ok(polled) => {
                self.worked = true;
                self.unauthorized_in_row = 0;
                Ok(polled)
            }
        }
    }
}

impl UkraineAlarm {
    async fn ask(&mut self, http: &mut HttpGet, tree: &RegionTree) -> Result<Polled, SourceError> {
        let index = match http.get(&self.status_url).await? {
            Fetched::NotModified => self.status_index,
            Fetched::Body(body) => {
                let index = (self.decode_status)(&body)?;
                http.keep(&self.status_url);
                self.status_index = Some(index);
                Some(index)
            }
        };
        if index.is_some() && index == self.snapshot_index {
            return Ok(Polled::Unchanged);
        }
        match http.get(&self.alerts_url).await? {
            Fetched::NotModified => {
                self.snapshot_index = index;
                Ok(Polled::Unchanged)
            }
            Fetched::Body(body) => {
                let decoded = (self.decode_alerts)(&body, tree)?;
                http.keep(&self.alerts_url);
                self.snapshot_index = if decoded.alerts.is_empty() { None } else { index };
                Ok(Polled::Snapshot(decoded))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use axum::Router;
    use axum::extract::State;
    use axum::http::HeaderMap;
    use axum::routing::get;
    use chrono::DateTime;

    use super::*;
    use crate::alerts::state::ObservedAlert;
    use crate::alerts::{AlertKey, AlertKind};
    use crate::config::secret::Secret;
    use crate::regions::RegionId;
    use crate::sources::{Auth, HttpOptions};

    const KHARKIV: &str = "UA63000000000041885";

    /// What the fake API serves and what it was asked.
    #[derive(Default)]
    struct Api {
        index: u64,
        /// The `/api/v3/alerts` body, in the fake decoder's format: the number of alerts.
        alerts: String,
        status_hits: u32,
        alerts_hits: u32,
        auth: Vec<String>,
        /// Answer 401 with an empty body, as the provider does for a wrong key and for
        /// throttling alike.
        refuse: bool,
    }

    type Shared = Arc<Mutex<Api>>;

    fn note_auth(api: &mut Api, headers: &HeaderMap) {
        let auth = headers.get("authorization").and_then(|v| v.to_str().ok()).unwrap_or("none");
        api.auth.push(auth.to_owned());
    }

    async fn status(State(api): State<Shared>, headers: HeaderMap) -> axum::response::Response {
        use axum::response::IntoResponse;
        let mut api = api.lock().expect("lock");
        api.status_hits += 1;
        note_auth(&mut api, &headers);
        if api.refuse {
            return axum::http::StatusCode::UNAUTHORIZED.into_response();
        }
        format!("{{\"lastActionIndex\":{}}}", api.index).into_response()
    }

    async fn alerts(State(api): State<Shared>, headers: HeaderMap) -> String {
        let mut api = api.lock().expect("lock");
        api.alerts_hits += 1;
        note_auth(&mut api, &headers);
        api.alerts.clone()
    }

    fn fake_status(body: &[u8]) -> Result<u64, SourceError> {
        let v: serde_json::Value = serde_json::from_slice(body).map_err(|e| SourceError::Decode(e.to_string()))?;
        v["lastActionIndex"].as_u64().ok_or_else(|| SourceError::Decode("lastActionIndex".into()))
    }

    fn fake_alerts(body: &[u8], _: &RegionTree) -> Result<Decoded, SourceError> {
        let n: usize = std::str::from_utf8(body)
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| SourceError::Decode("not a count".into()))?;
        let alert = ObservedAlert {
            key: AlertKey { kind: AlertKind::AirRaid, region: RegionId::parse(KHARKIV).expect("id") },
            started_at: DateTime::parse_from_rfc3339("2025-11-06T08:00:00Z").expect("date").to_utc(),
            raw_kind: None,
            level: None,
            threats: Vec::new(),
            texts: Vec::new(),
        };
        Ok(Decoded { alerts: vec![alert; n.min(1)], ..Decoded::default() })
    }

    fn tree() -> RegionTree {
        crate::regions::tests_support::kharkiv_oblast()
    }

    async fn setup() -> (Shared, UkraineAlarm, HttpGet) {
        let api: Shared = Arc::new(Mutex::new(Api { index: 1, alerts: "1".into(), ..Api::default() }));
        let app = Router::new()
            .route("/api/v3/alerts/status", get(status))
            .route("/api/v3/alerts", get(alerts))
            .with_state(api.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let base = format!("http://{}/", listener.local_addr().expect("addr"));
        tokio::spawn(async move { axum::serve(listener, app).await });
        let feed = UkraineAlarm::new("ukrainealarm", &base, fake_status, fake_alerts);
        let options = HttpOptions { timeout: Duration::from_secs(5), max_body: 1024, max_requests_per_min: 600 };
        let http = HttpGet::new(&options, Some(Auth::Raw(Secret::new("key-1")))).expect("client");
        (api, feed, http)
    }

    fn hits(api: &Shared) -> (u32, u32) {
        let api = api.lock().expect("lock");
        (api.status_hits, api.alerts_hits)
    }

    fn count(p: &Polled) -> Option<usize> {
        match p {
            Polled::Unchanged => None,
            Polled::Snapshot(d) => Some(d.alerts.len()),
        }
    }

    #[tokio::test]
    async fn the_full_list_is_fetched_only_when_the_index_moves() {
        let (api, mut feed, mut http) = setup().await;
        let tree = tree();
        let mut poll = async || count(&feed.poll(&mut http, &tree).await.expect("poll"));
        assert_eq!(poll().await, Some(1));
        assert_eq!(hits(&api), (1, 1));
        assert_eq!(poll().await, None, "same index: unchanged");
        assert_eq!(hits(&api), (2, 1), "without asking for the list");
        api.lock().expect("lock").index = 2;
        assert_eq!(poll().await, Some(1));
        assert_eq!(hits(&api), (3, 2));
        assert!(api.lock().expect("lock").auth.iter().all(|a| a == "key-1"), "the key as it is, no Bearer");
    }

    #[tokio::test]
    async fn a_list_that_did_not_decode_or_was_empty_is_fetched_again() {
        let (api, mut feed, mut http) = setup().await;
        let tree = tree();
        api.lock().expect("lock").alerts = "<html>".into();
        assert!(matches!(feed.poll(&mut http, &tree).await, Err(SourceError::Decode(_))));
        api.lock().expect("lock").alerts = "1".into();
        assert_eq!(count(&feed.poll(&mut http, &tree).await.expect("poll")), Some(1), "same index, list fetched");
        assert_eq!(hits(&api), (2, 2));

        api.lock().expect("lock").index = 5;
        api.lock().expect("lock").alerts = "0".into();
        assert_eq!(count(&feed.poll(&mut http, &tree).await.expect("poll")), Some(0));
        assert_eq!(count(&feed.poll(&mut http, &tree).await.expect("poll")), Some(0), "an empty list is re-read");
        assert_eq!(hits(&api), (4, 4));
    }

    #[tokio::test]
    async fn a_401_is_a_refused_key_at_first_contact_and_throttling_after_the_key_worked() {
        let (api, mut feed, mut http) = setup().await;
        let tree = tree();
        api.lock().expect("lock").refuse = true;
        let first = feed.poll(&mut http, &tree).await;
        assert!(matches!(first, Err(SourceError::Unauthorized { status: 401, .. })), "{first:?}");

        let (api, mut feed, mut http) = setup().await;
        assert_eq!(count(&feed.poll(&mut http, &tree).await.expect("poll")), Some(1));
        api.lock().expect("lock").refuse = true;
        for n in 1..=THROTTLING_401S {
            let got = feed.poll(&mut http, &tree).await;
            assert!(matches!(got, Err(SourceError::RateLimited { retry_after: None })), "401 number {n}: {got:?}");
        }
        let got = feed.poll(&mut http, &tree).await;
        assert!(matches!(got, Err(SourceError::Unauthorized { status: 401, .. })), "past the allowance: {got:?}");
        api.lock().expect("lock").refuse = false;
        assert!(feed.poll(&mut http, &tree).await.is_ok());
        api.lock().expect("lock").refuse = true;
        let got = feed.poll(&mut http, &tree).await;
        assert!(matches!(got, Err(SourceError::RateLimited { .. })), "a success resets the allowance: {got:?}");
    }

    #[tokio::test]
    async fn a_bad_status_body_is_a_decode_error() {
        let (api, mut feed, mut http) = setup().await;
        feed.decode_status = |_| Err(SourceError::Decode("lastActionIndex missing".into()));
        assert!(matches!(feed.poll(&mut http, &tree()).await, Err(SourceError::Decode(_))));
        assert_eq!(hits(&api), (1, 0), "no list without a status");
    }
}
