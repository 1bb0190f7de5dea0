//! A typical generic SMS HTTP API (`https://sms.example.org/api/v1/messages`), the
//! kind of gateway `kind = "http"` is configured for.
//!
//! Role: the far end of the generic adapter on loopback. No one platform is copied;
//! the rules are what such APIs commonly check (an API key header, a JSON or form
//! body, one recipient per request, an idempotency key, `429` with `Retry-After`,
//! `400` with a JSON error for a bad number), so a template that a real gateway would
//! misread fails here too: an unescaped `&` in a form splits the text, an unescaped
//! quote breaks the JSON, a `Content-Type` that does not match the body is refused.
//!
//! `POST {path}` with `Content-Type: application/json` (an object of strings) or
//! `application/x-www-form-urlencoded`, or `GET {path}?…` with the fields in the query.
//! The field names are configurable (default `to`, `text`, `id`, `from`).
//!
//! Rules, in the order they are applied:
//! 1. an injected fault, if one is queued (see the parent module);
//!    [`SmsFault::ErrorCode`] is that HTTP status with this API's JSON error;
//! 2. another method → 405;
//! 3. the credential: `auth_header` missing → 401 `missing_credentials`, not exactly
//!    `auth_value` → 401 `invalid_credentials`;
//! 4. `requests_per_sec` requests in any sliding second, else 429 `rate_limited`
//!    with `Retry-After` in whole seconds;
//! 5. the body: a POST whose `Content-Type` is neither JSON nor a form → 415; bytes
//!    that are not UTF-8 (after percent-decoding, for a form) → 400
//!    `invalid_encoding`; JSON that does not parse → 400 `invalid_json`, not an
//!    object or a field not a string → 400 `invalid_field`;
//! 6. the idempotency key (`id`), when given: seen before with the same recipient,
//!    text and sender → 200 with the first answer and `"duplicate": true`, nothing
//!    sent; seen with anything else → 409 `idempotency_conflict`;
//! 7. the fields, each 400: `to` missing → `missing_to`, not a number (an optional
//!    `+`, 10 to 15 digits, not starting with 0) → `invalid_number`; `text` missing or
//!    empty → `missing_text`, longer than `max_parts` parts → `text_too_long`; `from`
//!    not one of `senders` (when any are listed) → `invalid_sender`;
//! 8. accepted: 200 `{"message_id":"msg_…","status":"accepted","to":"+…","parts":n}`;
//!    the number is kept in E.164 with `+`.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{OriginalUri, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::core::{Core, GatewayState, Records, sim_accessors};
use super::http::{hang_up, pause, proxy_page};
use super::{Gateway, SentSms, SmsFault, SmsMode, Window, mixed_hex, segments};
use crate::sim::serve::parse_form;

/// The simulated account and API.
#[derive(Clone, Debug)]
pub struct GenericSmsSimConfig {
    pub path: String,
    /// The header that carries the credential, and its exact value.
    pub auth_header: String,
    pub auth_value: String,
    pub to_field: String,
    pub text_field: String,
    pub id_field: String,
    pub sender_field: String,
    /// Registered senders; empty takes any (or none).
    pub senders: Vec<String>,
    /// Requests past authentication in any sliding second.
    pub requests_per_sec: u32,
    /// Longest text, in parts.
    pub max_parts: u32,
    /// How long an answer waits after its message is recorded.
    pub latency: Duration,
}

impl Default for GenericSmsSimConfig {
    fn default() -> Self {
        Self {
            path: "/api/v1/messages".to_owned(),
            auth_header: "X-API-Key".to_owned(),
            auth_value: "sim-generic-key".to_owned(),
            to_field: "to".to_owned(),
            text_field: "text".to_owned(),
            id_field: "id".to_owned(),
            sender_field: "from".to_owned(),
            senders: vec!["SIRENA".to_owned()],
            requests_per_sec: 20,
            max_parts: 6,
            latency: Duration::ZERO,
        }
    }
}

/// A running simulator. Cloning is cheap; all clones share one server.
#[derive(Clone)]
pub struct GenericSmsSim {
    inner: Arc<Inner>,
}

type Inner = Core<GenericSmsSimConfig, GenState>;

/// What an idempotency key was first used for, and the answer it got.
struct Remembered {
    fields: (String, String, String),
    answer: Value,
}

struct GenState {
    window: Window,
    keys: HashMap<String, Remembered>,
    sent: Vec<SentSms>,
    next_id: u64,
    rec: Records,
}

impl GatewayState for GenState {
    fn records(&mut self) -> &mut Records {
        &mut self.rec
    }

    fn sent_count(&self) -> usize {
        self.sent.len()
    }
}

impl GenericSmsSim {
    /// Binds `127.0.0.1:0` and serves until `shutdown` is cancelled.
    pub async fn start(
        cfg: GenericSmsSimConfig,
        shutdown: CancellationToken,
        tracker: &TaskTracker,
    ) -> std::io::Result<GenericSmsSim> {
        let state = GenState {
            window: Window::new(Duration::from_secs(1)),
            keys: HashMap::new(),
            sent: Vec::new(),
            next_id: 0,
            rec: Records::default(),
        };
        let path = cfg.path.clone();
        let inner = Core::start(cfg, state, 0x6765_6e65_7269, shutdown, tracker, "generic-sms", |inner| {
            Router::new()
                .route(&path, any(send))
                .fallback(|| async { error(StatusCode::NOT_FOUND, "not_found", "no such endpoint") })
                .with_state(inner)
        })
        .await?;
        Ok(GenericSmsSim { inner })
    }

    sim_accessors!();

    /// `http://127.0.0.1:PORT` and the configured path: what `url` is set to.
    pub fn url(&self) -> String {
        format!("{}{}", self.inner.base_url(), self.inner.cfg.path)
    }

    /// Every accepted message, in order.
    pub fn sent(&self) -> Vec<SentSms> {
        self.inner.lock().sent.clone()
    }

    /// Accepted messages to one number (E.164).
    pub fn sent_to(&self, to: &str) -> Vec<SentSms> {
        self.inner.lock().sent.iter().filter(|m| m.to == to).cloned().collect()
    }
}

/// This API's error answer.
fn error(status: StatusCode, code: &str, message: &str) -> Response {
    (status, axum::Json(json!({ "error": code, "message": message }))).into_response()
}

/// An answer decided by the rules: status, body, and a `Retry-After` if throttled.
struct Reply {
    status: StatusCode,
    body: Value,
    retry_after: Option<u64>,
}

impl Reply {
    fn error(status: StatusCode, code: &str, message: impl Into<String>) -> Reply {
        Reply { status, body: json!({ "error": code, "message": message.into() }), retry_after: None }
    }

    fn bad(code: &str, message: impl Into<String>) -> Reply {
        Reply::error(StatusCode::BAD_REQUEST, code, message)
    }

    fn into_response(self) -> Response {
        let mut response = (self.status, axum::Json(self.body)).into_response();
        if let Some(secs) = self.retry_after
            && let Ok(v) = HeaderValue::from_str(&secs.to_string())
        {
            response.headers_mut().insert(header::RETRY_AFTER, v);
        }
        response
    }
}

async fn send(
    State(sim): State<Arc<Inner>>,
    method: Method,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let at = sim.clock.now();
    let path = uri.path().to_owned();
    // A GET's "body" is its query, recorded as such.
    let recorded: Bytes = if method == Method::GET { Bytes::from(uri.query().unwrap_or("").to_owned()) } else { body };
    let task_sim = sim.clone();
    let task_body = recorded.clone();
    let task_method = method.clone();
    sim.on_arrival(
        move |drop_after| answer(task_sim, task_method, uri, headers, task_body, at, drop_after),
        |fault| faulted(&sim, &method, fault, path, &recorded, at),
    )
    .await
}

async fn answer(
    sim: Arc<Inner>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
    at: Instant,
    drop_after: Option<Duration>,
) -> Response {
    let path = uri.path().to_owned();
    let (reply, accepted) = sim.lock().process(&sim, &method, &headers, &body);
    {
        let mut st = sim.lock();
        st.rec.answered(path, &body, reply.status.as_u16(), None, at, drop_after.is_some());
        if let Some(r) = st.rec.requests.last_mut() {
            r.method = method.to_string();
        }
    }
    if accepted {
        sim.bump();
    }
    if let Some(hold) = drop_after {
        return sim.hang_up_after(hold).await;
    }
    if accepted {
        pause(&sim.shutdown, sim.cfg.latency).await;
    }
    reply.into_response()
}

fn faulted(sim: &Inner, method: &Method, fault: SmsFault, path: String, body: &[u8], at: Instant) -> Response {
    let (response, http_status) = match fault {
        SmsFault::Status(code) => {
            let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            (proxy_page(status), status.as_u16())
        }
        SmsFault::Garbage => (
            (StatusCode::OK, [(header::CONTENT_TYPE, "text/html")], "<html><body>Please wait…</body></html>")
                .into_response(),
            200,
        ),
        SmsFault::ErrorCode(code) => {
            let status = u16::try_from(code)
                .ok()
                .and_then(|c| StatusCode::from_u16(c).ok())
                .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            (error(status, "injected", "injected failure"), status.as_u16())
        }
        SmsFault::Reset | SmsFault::Delay(_) | SmsFault::AcceptThenDrop(_) => (hang_up(), 0),
    };
    let mut st = sim.lock();
    st.rec.faulted(path, body, http_status, None, at);
    if let Some(r) = st.rec.requests.last_mut() {
        r.method = method.to_string();
    }
    response
}

impl GenState {
    /// Rules 2 to 8: the answer, and whether a message was accepted.
    fn process(&mut self, sim: &Inner, method: &Method, headers: &HeaderMap, body: &[u8]) -> (Reply, bool) {
        let cfg = &sim.cfg;
        let now = sim.clock.now();
        if method != Method::POST && method != Method::GET {
            return (Reply::error(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed", "use POST or GET"), false);
        }
        match headers.get(cfg.auth_header.as_str()) {
            None => {
                self.rec.stats.auth_failures += 1;
                return (Reply::error(StatusCode::UNAUTHORIZED, "missing_credentials", "no API key"), false);
            }
            Some(v) if v.as_bytes() != cfg.auth_value.as_bytes() => {
                self.rec.stats.auth_failures += 1;
                return (Reply::error(StatusCode::UNAUTHORIZED, "invalid_credentials", "wrong API key"), false);
            }
            Some(_) => {}
        }
        if let Some(wait) = self.window.wait(cfg.requests_per_sec, 1, now) {
            self.rec.stats.rate_limited += 1;
            let secs = (wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(1);
            let mut reply = Reply::error(StatusCode::TOO_MANY_REQUESTS, "rate_limited", "too many requests");
            reply.retry_after = Some(secs);
            return (reply, false);
        }
        self.window.add(1, now);
        let fields = match fields(method, headers, body) {
            Ok(f) => f,
            Err(reply) => {
                self.rec.stats.rejected += 1;
                return (reply, false);
            }
        };
        let field = |name: &str| fields.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
        let to = field(&cfg.to_field).unwrap_or_default();
        let text = field(&cfg.text_field).unwrap_or_default();
        let sender = field(&cfg.sender_field).unwrap_or_default();
        let key = field(&cfg.id_field).filter(|k| !k.is_empty());
        if let Some(earlier) = key.as_ref().and_then(|k| self.keys.get(k)) {
            if earlier.fields == (to.clone(), text.clone(), sender.clone()) {
                self.rec.stats.replayed += 1;
                let mut answer = earlier.answer.clone();
                answer["duplicate"] = json!(true);
                return (Reply { status: StatusCode::OK, body: answer, retry_after: None }, false);
            }
            self.rec.stats.rejected += 1;
            let reply =
                Reply::error(StatusCode::CONFLICT, "idempotency_conflict", "this id was used for a different message");
            return (reply, false);
        }
        let checked = (|| {
            if to.is_empty() {
                return Err(Reply::bad("missing_to", format!("`{}` is required", cfg.to_field)));
            }
            let number =
                e164(&to).ok_or_else(|| Reply::bad("invalid_number", format!("`{to}` is not a phone number")))?;
            if text.is_empty() {
                return Err(Reply::bad("missing_text", format!("`{}` is required", cfg.text_field)));
            }
            let parts = segments(&text).parts;
            if parts > cfg.max_parts {
                return Err(Reply::bad("text_too_long", format!("{parts} parts, at most {}", cfg.max_parts)));
            }
            if !cfg.senders.is_empty() && !cfg.senders.contains(&sender) {
                return Err(Reply::bad("invalid_sender", format!("sender `{sender}` is not registered")));
            }
            Ok((number, parts))
        })();
        let (number, parts) = match checked {
            Ok(ok) => ok,
            Err(reply) => {
                self.rec.stats.rejected += 1;
                return (reply, false);
            }
        };
        self.next_id += 1;
        let id = format!("msg_{}", mixed_hex(sim.id_seed, self.next_id, 24));
        let answer = json!({ "message_id": id, "status": "accepted", "to": number, "parts": parts });
        self.sent.push(SentSms {
            gateway: Gateway::Generic,
            to: number,
            text: text.clone(),
            sender: sender.clone(),
            id,
            mode: SmsMode::Sms,
            parts,
            at: now,
        });
        self.rec.stats.accepted += 1;
        if let Some(k) = key {
            self.keys.insert(k, Remembered { fields: (to, text, sender), answer: answer.clone() });
        }
        (Reply { status: StatusCode::OK, body: answer, retry_after: None }, true)
    }
}

/// Rule 5: the request's fields.
fn fields(method: &Method, headers: &HeaderMap, body: &[u8]) -> Result<Vec<(String, String)>, Reply> {
    let utf8 = |b: &[u8]| {
        std::str::from_utf8(b).map(str::to_owned).map_err(|_| Reply::bad("invalid_encoding", "the body is not UTF-8"))
    };
    if method == Method::GET {
        // The recorded body of a GET is its query.
        return form(&utf8(body)?);
    }
    let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    let media = content_type.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    if media == "application/json" || (media.starts_with("application/") && media.ends_with("+json")) {
        let value: Value = serde_json::from_slice(body)
            .map_err(|e| Reply::bad("invalid_json", format!("the body is not JSON: {e}")))?;
        let Value::Object(obj) = value else {
            return Err(Reply::bad("invalid_field", "the body must be a JSON object"));
        };
        obj.into_iter()
            .map(|(k, v)| match v {
                Value::String(s) => Ok((k, s)),
                other => Err(Reply::bad("invalid_field", format!("`{k}` must be a string, not {other}"))),
            })
            .collect()
    } else if media == "application/x-www-form-urlencoded" {
        form(&utf8(body)?)
    } else {
        Err(Reply::error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            format!("Content-Type `{content_type}`: send application/json or a form"),
        ))
    }
}

fn form(text: &str) -> Result<Vec<(String, String)>, Reply> {
    let pairs = parse_form(text);
    // The decoder keeps undecodable bytes as U+FFFD; a gateway would refuse them.
    if pairs.iter().any(|(k, v)| k.contains('\u{FFFD}') || v.contains('\u{FFFD}')) {
        return Err(Reply::bad("invalid_encoding", "a field is not UTF-8 once decoded"));
    }
    Ok(pairs)
}

/// `+380501234567` or `380501234567` → `+380501234567`, if it is a number.
fn e164(raw: &str) -> Option<String> {
    let d = raw.strip_prefix('+').unwrap_or(raw);
    let ok = (10..=15).contains(&d.len()) && d.bytes().all(|b| b.is_ascii_digit()) && !d.starts_with('0');
    ok.then(|| format!("+{d}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers() {
        assert_eq!(e164("+380501234567").as_deref(), Some("+380501234567"));
        assert_eq!(e164("380501234567").as_deref(), Some("+380501234567"));
        assert_eq!(e164("0501234567"), None);
        assert_eq!(e164("+38050 123"), None);
        assert_eq!(e164(" +380501234567"), None, "a gateway does not trim for you");
    }
}
