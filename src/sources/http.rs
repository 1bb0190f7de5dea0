//! The one GET client every feed adapter uses.
//!
//! It holds what is the same for every feed: auth, conditional requests, the request
//! budget, and limits a misbehaving server cannot push past:
//! - **time**: `timeout` bounds the whole exchange, body included, so a body trickled
//!   byte by byte is cut off like a server that never answers;
//! - **size**: a body longer than `max_body` is refused, by its `Content-Length` or
//!   once the chunks read so far pass it; nothing larger is ever buffered;
//! - **budget**: at most `max_requests_per_min` requests in any sliding minute, waited
//!   for before sending, since a feed that counts requests bans whoever exceeds it.
//!
//! Conditional requests: each URL's `Last-Modified` and `ETag` are sent back as
//! `If-Modified-Since` / `If-None-Match`, but only once the adapter said the body they
//! came with decoded ([`HttpGet::keep`]). A body lost to a timeout or a decode error is
//! so fetched again in full instead of being answered with 304.

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use chrono::{DateTime, Utc};
use reqwest::StatusCode;
use reqwest::header::{self, HeaderMap, HeaderValue};
use tokio::time::Instant;

use super::SourceError;
use crate::config::secret::Secret;

/// How much of an error body is read for its message.
const ERROR_BODY: usize = 4096;

#[derive(Clone, Copy, Debug)]
pub struct HttpOptions {
    pub timeout: Duration,
    pub max_body: u64,
    pub max_requests_per_min: u32,
}

/// How a feed wants its token.
#[derive(Clone, Debug)]
pub enum Auth {
    /// `Authorization: Bearer <token>` (alerts.in.ua, CAP feeds that want one).
    Bearer(Secret),
    /// `Authorization: <token>` as it is (ukrainealarm).
    Raw(Secret),
}

/// A good answer.
#[derive(Debug, PartialEq)]
pub enum Fetched {
    /// 304: nothing changed since the body last kept for this URL.
    NotModified,
    Body(Bytes),
}

#[derive(Clone, Debug, Default)]
struct Validators {
    last_modified: Option<HeaderValue>,
    etag: Option<HeaderValue>,
}

impl Validators {
    fn of(headers: &HeaderMap) -> Validators {
        Validators {
            last_modified: headers.get(header::LAST_MODIFIED).cloned(),
            etag: headers.get(header::ETAG).cloned(),
        }
    }

    fn is_empty(&self) -> bool {
        self.last_modified.is_none() && self.etag.is_none()
    }
}

pub struct HttpGet {
    client: reqwest::Client,
    auth: Option<Auth>,
    timeout: Duration,
    max_body: u64,
    budget: Budget,
    /// Validators of each URL's last body that decoded: sent as conditions.
    kept: HashMap<String, Validators>,
    /// Validators of each URL's last body, until the adapter keeps them.
    fresh: HashMap<String, Validators>,
}

impl HttpGet {
    pub fn new(options: &HttpOptions, auth: Option<Auth>) -> Result<HttpGet, SourceError> {
        let client = reqwest::Client::builder()
            .user_agent(concat!("sirena/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| SourceError::Transport(e.to_string()))?;
        Ok(HttpGet {
            client,
            auth,
            timeout: options.timeout,
            max_body: options.max_body,
            budget: Budget::new(options.max_requests_per_min),
            kept: HashMap::new(),
            fresh: HashMap::new(),
        })
    }

    /// GETs `url`, conditionally when a body of it was kept. Waits for the request
    /// budget first; the timeout starts when the request is sent.
    pub async fn get(&mut self, url: &str) -> Result<Fetched, SourceError> {
        self.budget.admit().await;
        let timeout = self.timeout;
        match tokio::time::timeout(timeout, self.exchange(url)).await {
            Ok(answer) => answer,
            Err(_) => Err(SourceError::Timeout(timeout)),
        }
    }

    /// The last body of `url` decoded: from now on ask for it only if it changed.
    pub fn keep(&mut self, url: &str) {
        match self.fresh.remove(url) {
            Some(v) if !v.is_empty() => {
                self.kept.insert(url.to_owned(), v);
            }
            // A body without validators: the old ones no longer describe what we hold.
            _ => {
                self.kept.remove(url);
            }
        }
    }

    /// Forgets every URL's validators, so the next answers are full bodies.
    pub fn forget_all(&mut self) {
        self.kept.clear();
        self.fresh.clear();
    }

    async fn exchange(&mut self, url: &str) -> Result<Fetched, SourceError> {
        let mut req = self.client.get(url);
        match &self.auth {
            Some(Auth::Bearer(t)) => req = req.bearer_auth(t.expose()),
            Some(Auth::Raw(t)) => {
                let mut v = HeaderValue::from_str(t.expose())
                    .map_err(|_| SourceError::Transport("the token is not a valid header value".into()))?;
                v.set_sensitive(true);
                req = req.header(header::AUTHORIZATION, v);
            }
            None => {}
        }
        if let Some(v) = self.kept.get(url) {
            if let Some(lm) = &v.last_modified {
                req = req.header(header::IF_MODIFIED_SINCE, lm.clone());
            }
            if let Some(etag) = &v.etag {
                req = req.header(header::IF_NONE_MATCH, etag.clone());
            }
        }
        let mut resp = req.send().await.map_err(transport)?;
        let status = resp.status();
        if status == StatusCode::NOT_MODIFIED {
            return Ok(Fetched::NotModified);
        }
        if status == StatusCode::TOO_MANY_REQUESTS {
            return Err(SourceError::RateLimited { retry_after: retry_after(resp.headers(), Utc::now()) });
        }
        if !status.is_success() {
            let body = read_prefix(&mut resp, ERROR_BODY).await;
            let (status, message) = (status.as_u16(), error_message(&body));
            // A refusal of the token we sent is not a feed that is down.
            if self.auth.is_some() && matches!(status, 401 | 403) {
                return Err(SourceError::Unauthorized { status, message });
            }
            return Err(SourceError::Status { status, message });
        }
        let validators = Validators::of(resp.headers());
        let body = read_limited(&mut resp, self.max_body).await?;
        self.fresh.insert(url.to_owned(), validators);
        Ok(Fetched::Body(body))
    }
}

/// Reads the body chunk by chunk, refusing it as soon as it is known to be too long.
async fn read_limited(resp: &mut reqwest::Response, limit: u64) -> Result<Bytes, SourceError> {
    if resp.content_length().is_some_and(|n| n > limit) {
        return Err(SourceError::TooLarge { limit });
    }
    let mut body = BytesMut::new();
    while let Some(chunk) = resp.chunk().await.map_err(transport)? {
        if (body.len() + chunk.len()) as u64 > limit {
            return Err(SourceError::TooLarge { limit });
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

/// Up to `limit` bytes of an error body; what cannot be read is left out.
async fn read_prefix(resp: &mut reqwest::Response, limit: usize) -> Vec<u8> {
    let mut body = Vec::new();
    while body.len() < limit {
        match resp.chunk().await {
            Ok(Some(chunk)) => body.extend_from_slice(&chunk[..chunk.len().min(limit - body.len())]),
            _ => break,
        }
    }
    body
}

/// A feed's `{"message": "..."}`, or the start of the body.
fn error_message(body: &[u8]) -> String {
    serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v.get("message").and_then(|m| m.as_str()).map(str::to_owned))
        .unwrap_or_else(|| String::from_utf8_lossy(body).chars().take(200).collect())
}

/// `Retry-After` as seconds or as an HTTP date (a date past is no wait).
fn retry_after(headers: &HeaderMap, now: DateTime<Utc>) -> Option<Duration> {
    let v = headers.get(header::RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    // IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`), the form senders must use, is
    // also RFC 2822.
    let at = DateTime::parse_from_rfc2822(v).ok()?.to_utc();
    Some((at - now).to_std().unwrap_or(Duration::ZERO))
}

/// reqwest's error with its causes ("error sending request: connection refused"),
/// without the URL, which may carry a token.
fn transport(e: reqwest::Error) -> SourceError {
    if e.is_timeout() {
        // Only reqwest's own timeouts, which are not set: ours is around the exchange.
        return SourceError::Transport("timed out".into());
    }
    let e = e.without_url();
    let mut text = e.to_string();
    let mut cause = std::error::Error::source(&e);
    while let Some(c) = cause {
        text.push_str(": ");
        text.push_str(&c.to_string());
        cause = c.source();
    }
    SourceError::Transport(text)
}

/// At most `per_min` requests in any sliding 60 s window.
#[derive(Debug)]
struct Budget {
    per_min: usize,
    sent: VecDeque<Instant>,
}

const WINDOW: Duration = Duration::from_secs(60);

impl Budget {
    fn new(per_min: u32) -> Budget {
        let per_min = usize::try_from(per_min.max(1)).unwrap_or(usize::MAX);
        Budget { per_min, sent: VecDeque::new() }
    }

    /// Waits until one more request fits in the window, and counts it.
    async fn admit(&mut self) {
        loop {
            let now = Instant::now();
            while self.sent.front().is_some_and(|t| now.duration_since(*t) >= WINDOW) {
                self.sent.pop_front();
            }
            match self.sent.front() {
                Some(first) if self.sent.len() >= self.per_min => tokio::time::sleep_until(*first + WINDOW).await,
                _ => break,
            }
        }
        self.sent.push_back(Instant::now());
    }
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, Ordering};

    use axum::Router;
    use axum::body::Body;
    use axum::http::{HeaderMap as AxHeaders, StatusCode as AxStatus};
    use axum::response::{IntoResponse, Response};
    use axum::routing::get;
    use tokio::io::AsyncWriteExt;
    use tokio_util::io::ReaderStream;

    use super::*;

    const LAST_MODIFIED: &str = "Mon, 06 Nov 2023 08:00:00 GMT";
    const ETAG: &str = "\"v1\"";

    /// Serves `app` on 127.0.0.1 until the test ends; returns its base URL.
    async fn serve(app: Router) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr: SocketAddr = listener.local_addr().expect("addr");
        tokio::spawn(async move { axum::serve(listener, app).await });
        format!("http://{addr}")
    }

    fn client(timeout: Duration, max_body: u64) -> HttpGet {
        HttpGet::new(&HttpOptions { timeout, max_body, max_requests_per_min: 600 }, None).expect("client")
    }

    /// Answers 304 to a request that carries either validator of the one version.
    async fn conditional(headers: AxHeaders) -> Response {
        let ims = headers.get("if-modified-since").is_some_and(|v| v == LAST_MODIFIED);
        let inm = headers.get("if-none-match").is_some_and(|v| v == ETAG);
        if ims || inm {
            return AxStatus::NOT_MODIFIED.into_response();
        }
        ([("last-modified", LAST_MODIFIED), ("etag", ETAG)], "{\"alerts\":[]}").into_response()
    }

    #[tokio::test]
    async fn not_modified_only_after_the_body_was_kept() {
        let base = serve(Router::new().route("/a", get(conditional))).await;
        let url = format!("{base}/a");
        let mut http = client(Duration::from_secs(5), 1024);
        assert!(matches!(http.get(&url).await, Ok(Fetched::Body(_))));
        // Not kept (say it failed to decode): asked for in full again.
        assert!(matches!(http.get(&url).await, Ok(Fetched::Body(_))));
        http.keep(&url);
        assert_eq!(http.get(&url).await.expect("answer"), Fetched::NotModified);
        http.forget_all();
        assert!(matches!(http.get(&url).await, Ok(Fetched::Body(_))));
    }

    #[tokio::test]
    async fn an_etag_alone_makes_the_request_conditional() {
        async fn etag_only(headers: AxHeaders) -> Response {
            if headers.get("if-none-match").is_some_and(|v| v == ETAG) {
                return AxStatus::NOT_MODIFIED.into_response();
            }
            assert!(headers.get("if-modified-since").is_none());
            ([("etag", ETAG)], "x").into_response()
        }
        let base = serve(Router::new().route("/e", get(etag_only))).await;
        let url = format!("{base}/e");
        let mut http = client(Duration::from_secs(5), 1024);
        assert_eq!(http.get(&url).await.expect("body"), Fetched::Body(Bytes::from_static(b"x")));
        http.keep(&url);
        assert_eq!(http.get(&url).await.expect("answer"), Fetched::NotModified);
    }

    /// A body written into a pipe by a task that counts what the server took; the
    /// task ends when the server drops the body (the client went away).
    fn streamed(total: usize, chunk: usize, every: Option<Duration>, written: Arc<AtomicU64>) -> Body {
        let (mut tx, rx) = tokio::io::duplex(64 * 1024);
        tokio::spawn(async move {
            let block = vec![b'x'; chunk];
            let mut sent = 0;
            while sent < total {
                if let Some(d) = every {
                    tokio::time::sleep(d).await;
                }
                if tx.write_all(&block).await.is_err() {
                    return;
                }
                sent += chunk;
                written.store(sent as u64, Ordering::SeqCst);
            }
        });
        Body::from_stream(ReaderStream::new(rx))
    }

    #[tokio::test]
    async fn a_50_mb_body_is_refused_after_the_first_mebibyte() {
        const TOTAL: usize = 50 * 1024 * 1024;
        let written = Arc::new(AtomicU64::new(0));
        let w = written.clone();
        let app = Router::new().route("/big", get(move || async move { streamed(TOTAL, 64 * 1024, None, w.clone()) }));
        let base = serve(app).await;
        let mut http = client(Duration::from_secs(20), 1024 * 1024);
        let got = http.get(&format!("{base}/big")).await;
        assert!(matches!(got, Err(SourceError::TooLarge { limit: 1_048_576 })), "{got:?}");
        // The server stops once the connection is gone; what it wrote by then is what
        // sockets buffered, a few MiB at most, not the 50 MB.
        let mut last = written.load(Ordering::SeqCst);
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            tokio::time::sleep(Duration::from_millis(200)).await;
            let now = written.load(Ordering::SeqCst);
            if now == last || Instant::now() > deadline {
                break;
            }
            last = now;
        }
        assert!(last < 16 * 1024 * 1024, "the server wrote {last} bytes: the client kept reading");
    }

    #[tokio::test]
    async fn a_declared_length_over_the_limit_is_refused_unread() {
        let app = Router::new().route(
            "/big",
            get(|| async { ([("content-length", "52428800")], streamed(1024, 1024, None, Arc::default())) }),
        );
        let base = serve(app).await;
        let mut http = client(Duration::from_secs(5), 1024 * 1024);
        let got = http.get(&format!("{base}/big")).await;
        assert!(matches!(got, Err(SourceError::TooLarge { .. })), "{got:?}");
    }

    #[tokio::test]
    async fn a_trickled_body_is_cut_off_at_the_timeout() {
        let app = Router::new()
            .route("/slow", get(|| async { streamed(100, 1, Some(Duration::from_millis(50)), Arc::default()) }));
        let base = serve(app).await;
        let mut http = client(Duration::from_millis(500), 1024 * 1024);
        let started = Instant::now();
        let got = http.get(&format!("{base}/slow")).await;
        let took = started.elapsed();
        assert!(matches!(got, Err(SourceError::Timeout(d)) if d == Duration::from_millis(500)), "{got:?}");
        assert!(took >= Duration::from_millis(500) && took < Duration::from_secs(3), "took {took:?}");
    }

    #[tokio::test]
    async fn a_429_carries_its_retry_after_in_seconds_or_as_a_date() {
        let in_two_minutes = (Utc::now() + chrono::Duration::seconds(120)).to_rfc2822().replace("+0000", "GMT");
        let app = Router::new()
            .route("/secs", get(|| async { (AxStatus::TOO_MANY_REQUESTS, [("retry-after", "90")], "slow down") }))
            .route(
                "/date",
                get(move || {
                    let d = in_two_minutes.clone();
                    async move { (AxStatus::TOO_MANY_REQUESTS, [("retry-after", d)], "") }
                }),
            )
            .route("/none", get(|| async { AxStatus::TOO_MANY_REQUESTS }))
            .route(
                "/401",
                get(|| async { (AxStatus::UNAUTHORIZED, "{\"message\":\"API key is invalid\"}").into_response() }),
            );
        let base = serve(app).await;
        let mut http = client(Duration::from_secs(5), 1024);
        let got = http.get(&format!("{base}/secs")).await;
        assert!(
            matches!(got, Err(SourceError::RateLimited { retry_after: Some(d) }) if d == Duration::from_secs(90)),
            "{got:?}"
        );
        match http.get(&format!("{base}/date")).await {
            Err(SourceError::RateLimited { retry_after: Some(d) }) => {
                assert!(d > Duration::from_secs(110) && d <= Duration::from_secs(120), "{d:?}");
            }
            other => panic!("{other:?}"),
        }
        let got = http.get(&format!("{base}/none")).await;
        assert!(matches!(got, Err(SourceError::RateLimited { retry_after: None })), "{got:?}");
        let got = http.get(&format!("{base}/401")).await;
        assert!(
            matches!(&got, Err(SourceError::Status { status: 401, message }) if message == "API key is invalid"),
            "without a token a 401 is only a status: {got:?}"
        );
        let options = HttpOptions { timeout: Duration::from_secs(5), max_body: 1024, max_requests_per_min: 600 };
        let mut with_token = HttpGet::new(&options, Some(Auth::Bearer(Secret::new("k")))).expect("client");
        let got = with_token.get(&format!("{base}/401")).await;
        assert!(
            matches!(&got, Err(SourceError::Unauthorized { status: 401, message }) if message == "API key is invalid"),
            "with a token it is a refused credential: {got:?}"
        );
    }

    #[tokio::test]
    async fn tokens_go_in_the_authorization_header_as_the_feed_wants() {
        async fn echo(headers: AxHeaders) -> String {
            headers.get("authorization").and_then(|v| v.to_str().ok()).unwrap_or("none").to_owned()
        }
        let base = serve(Router::new().route("/", get(echo))).await;
        let options = HttpOptions { timeout: Duration::from_secs(5), max_body: 1024, max_requests_per_min: 600 };
        for (auth, want) in [
            (Some(Auth::Bearer(Secret::new("k1"))), "Bearer k1"),
            (Some(Auth::Raw(Secret::new("k2"))), "k2"),
            (None, "none"),
        ] {
            let mut http = HttpGet::new(&options, auth).expect("client");
            assert_eq!(http.get(&format!("{base}/")).await.expect("body"), Fetched::Body(Bytes::from(want)));
        }
    }

    #[test]
    fn retry_after_forms() {
        let now = DateTime::parse_from_rfc3339("1994-11-06T08:49:00Z").expect("date").to_utc();
        let h = |v: &str| {
            let mut m = HeaderMap::new();
            m.insert(header::RETRY_AFTER, HeaderValue::from_str(v).expect("value"));
            retry_after(&m, now)
        };
        assert_eq!(h("90"), Some(Duration::from_secs(90)));
        assert_eq!(h(" 0 "), Some(Duration::ZERO));
        assert_eq!(h("Sun, 06 Nov 1994 08:49:37 GMT"), Some(Duration::from_secs(37)));
        assert_eq!(h("Sun, 06 Nov 1994 08:00:00 GMT"), Some(Duration::ZERO), "a date past is no wait");
        assert_eq!(h("soon"), None);
        assert_eq!(retry_after(&HeaderMap::new(), now), None);
    }

    #[tokio::test(start_paused = true)]
    async fn the_budget_holds_a_request_until_the_window_frees() {
        let mut budget = Budget::new(3);
        let start = Instant::now();
        for _ in 0..3 {
            budget.admit().await;
        }
        assert_eq!(start.elapsed(), Duration::ZERO, "three fit at once");
        tokio::time::sleep(Duration::from_secs(10)).await;
        budget.admit().await;
        assert_eq!(start.elapsed(), Duration::from_secs(60), "the fourth waits for the first to leave the window");
        budget.admit().await;
        budget.admit().await;
        assert_eq!(start.elapsed(), Duration::from_secs(60));
        budget.admit().await;
        assert_eq!(start.elapsed(), Duration::from_secs(120), "the window is sliding: 60 s after the fourth");
    }
}
