//! TurboSMS HTTP API simulator (`https://api.turbosms.ua`).
//!
//! Role: stands in for TurboSMS so the TurboSMS adapter can send on loopback:
//! `POST {base}/message/send.json` with `Authorization: Bearer <token>` and a
//! JSON body `{"recipients":[…],"sms":{"sender","text"},"viber":{…},
//! "sequence_id":…}`.
//!
//! Sources. turbosms.ua/en/api.html (stored copy; only its opening could be
//! read): every valid HTTP request is answered HTTP 200 with
//! `{"response_code","response_status","response_result"}`; the token may
//! come as `?token=`, `Authorization: Basic <token>` or `Authorization:
//! Bearer <token>`; `sequence_id` makes a request execute only once. The
//! code list is the one TurboSMS publishes on that page, as copied into
//! public clients (eduard-romaniuk/turbosms-spring-boot-starter
//! `TsResponseStatus.java`; a newer copy in a public front end, with the
//! page's Russian descriptions, adds 427 and 507): 0 OK, 103 REQUIRED_TOKEN, 104
//! REQUIRED_CONTENT, 105 REQUIRED_AUTH (wrong token), 200
//! REQUIRED_MESSAGE_SENDER, 201 REQUIRED_MESSAGE_TEXT, 202
//! REQUIRED_MESSAGE_RECIPIENT, 203 REQUIRED_BALANCE, 300 INVALID_REQUEST, 302
//! INVALID_MESSAGE_SENDER, 304 INVALID_MESSAGE_TEXT, 305 INVALID_PHONE, 400
//! NOT_ALLOWED_MESSAGE_SENDER, 401 NOT_ALLOWED_MESSAGE_SENDER_NOT_ACTIVE
//! ("not paid for the current month"), 404 NOT_ALLOWED_NUMBER_STOPLIST, 405
//! NOT_ALLOWED_RECIPIENTS_LIMIT, 406 NOT_ALLOWED_RECIPIENT_COUNTRY, 407
//! NOT_ALLOWED_RECIPIENT_DUPLICATE (twice in one request), 413
//! NOT_ALLOWED_MESSAGE_TEXT_LENGTH, 427 NOT_ALLOWED_MESSAGE_DUPLICATE ("already
//! created within the last 90 seconds"), 502 FAILED_PARSE_BODY, 503
//! FAILED_SMS_SEND, 507 FAILED_DUPLICATE_REQUEST ("duplicate request, the
//! results of the previous request are returned"), 800
//! SUCCESS_MESSAGE_ACCEPTED, 801 SUCCESS_MESSAGE_SENT, 802/803 the same with
//! some recipients left out, 999 FATAL_ERROR. Per-recipient entries
//! `{"phone","response_code":0,"message_id","response_status":"OK"}` follow
//! answers quoted in public clients. Ten parts as the longest text is from
//! the MyChat server's TurboSMS integration guide ("10 segments").
//!
//! Rules, in the order they are applied:
//! 1. an injected fault, if one is queued (see the parent module);
//! 2. the token: missing → 103, wrong → 105;
//! 3. `requests_per_sec` requests in any sliding second, else HTTP 429;
//! 4. the body: empty → 104, not JSON → 502, not an object or a field of the
//!    wrong shape → 300;
//! 5. a `sequence_id` seen before on a request that sent something → 507
//!    with that request's `response_result`, and nothing is sent;
//! 6. `recipients`: missing or empty → 202, more than `max_recipients` → 405;
//! 7. `sms` and/or `viber`, each `{sender, text}`: sender missing → 200, not
//!    a string → 302, not registered → 400, inactive → 401; text missing →
//!    201, not a string → 304; SMS text over `max_parts` parts → 413;
//! 8. each recipient, on its own: not a number (digits, one optional leading
//!    `+`, 10 to 15 digits; `380` numbers exactly 12) → 305, outside
//!    `country_prefixes` → 406, on the stoplist → 404, already in this
//!    request → 407, the same text to the same number within
//!    `duplicate_window` (90 s) → 427; refused entries carry `message_id`
//!    null and nothing is sent to them;
//! 9. the balance, in parts, when one is set: short → 203, nothing sent;
//! 10. `messages_per_sec` accepted messages in any sliding second, else HTTP
//!     429 and nothing sent (an empty window takes any batch);
//! 11. the answer: 800 when every recipient was accepted, 802 when some
//!     were (801/803 with `answer_sent`), and when none was, the first
//!     recipient's own code at the top.
//!
//! Not known from the sources, and chosen here: what TurboSMS answers when
//! throttling (here HTTP 429 with an nginx page and `Retry-After` in whole
//! seconds — an adapter must not expect JSON); whether `+` is accepted in
//! front of a number (public clients disagree; accepted here, and numbers
//! are kept without it); the recipient limit (5000, from a public client's
//! comment); the top-level code when no recipient was accepted, and
//! `message_id` null in a refused entry; and the delivery-report callback,
//! whose documented shape (turbosms.ua/en/callback.html) could not be read:
//! the simulator posts `{"message_id","phone","status"}` as JSON, `status`
//! one of `Delivered`, `Undelivered`, `Expired`, `Rejected` (status words a
//! public TurboSMS client expects), with the secret in a header or as the
//! last path segment.
//! The rates TurboSMS allows are not published; the defaults are guesses.
//! Only JSON bodies are read (the API also takes forms and GET parameters).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{OriginalUri, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, post};
use serde_json::{Map, Value, json};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::core::{Core, GatewayState, Records, sim_accessors};
use super::http::{hang_up, loopback_url, pause, proxy_page};
use super::{CallbackRecord, Gateway, SentSms, SmsFault, SmsMode, Window, mixed_hex, segments};
use crate::sim::serve::parse_form;

/// Limits and identity of the simulated TurboSMS account.
#[derive(Clone, Debug)]
pub struct TurboSmsSimConfig {
    /// The only token accepted.
    pub token: String,
    /// Registered SMS alpha names (case-sensitive, as registered).
    pub senders: Vec<String>,
    /// Registered Viber sender names.
    pub viber_senders: Vec<String>,
    /// Requests in any sliding second.
    pub requests_per_sec: u32,
    /// Accepted messages (one per recipient) in any sliding second.
    pub messages_per_sec: u32,
    pub max_recipients: usize,
    /// Longest SMS text, in parts.
    pub max_parts: u32,
    /// The same text to the same number within this is refused with 427.
    pub duplicate_window: Duration,
    /// Number prefixes the account may send to (406 otherwise).
    pub country_prefixes: Vec<String>,
    /// Credit in SMS parts; `None` is unlimited.
    pub balance: Option<u64>,
    /// Answer 801/803 (sent) instead of 800/802 (queued).
    pub answer_sent: bool,
    /// How long an answer waits after its messages are recorded, so crash
    /// tests have requests in flight.
    pub latency: Duration,
    /// Where delivery reports go, if anywhere.
    pub dlr: Option<DlrTarget>,
    /// How long after acceptance a message's report is posted.
    pub dlr_delay: Duration,
}

impl Default for TurboSmsSimConfig {
    fn default() -> Self {
        Self {
            token: "sim-turbosms-token".to_owned(),
            senders: vec!["SIRENA".to_owned()],
            viber_senders: vec!["SIRENA".to_owned()],
            requests_per_sec: 10,
            messages_per_sec: 500,
            max_recipients: 5000,
            max_parts: 10,
            duplicate_window: Duration::from_secs(90),
            country_prefixes: vec!["380".to_owned()],
            balance: None,
            answer_sent: false,
            latency: Duration::ZERO,
            dlr: None,
            dlr_delay: Duration::from_millis(50),
        }
    }
}

/// A loopback URL that receives delivery reports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DlrTarget {
    pub url: String,
    pub secret: DlrSecret,
}

/// How the receiver recognises the simulator.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DlrSecret {
    None,
    /// Sent as this header.
    Header {
        name: String,
        value: String,
    },
    /// Appended to the URL's path as its last segment.
    Path(String),
}

/// The final status a delivery report carries.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum DlrStatus {
    #[default]
    Delivered,
    Undelivered,
    Expired,
    Rejected,
}

impl DlrStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            DlrStatus::Delivered => "Delivered",
            DlrStatus::Undelivered => "Undelivered",
            DlrStatus::Expired => "Expired",
            DlrStatus::Rejected => "Rejected",
        }
    }
}

/// A running simulator. Cloning is cheap; all clones share one server.
#[derive(Clone)]
pub struct TurboSmsSim {
    inner: Arc<Inner>,
}

type Inner = Core<TurboSmsSimConfig, TsState>;

struct TsState {
    inactive: HashSet<String>,
    stoplist: HashSet<String>,
    balance: Option<u64>,
    outcomes: HashMap<String, DlrStatus>,
    request_window: Window,
    message_window: Window,
    /// (number, text) → when last accepted, for the 90 s rule.
    recent: HashMap<(String, String), Instant>,
    /// `sequence_id` → the `response_result` of the request that used it.
    sequences: HashMap<String, Value>,
    next_id: u64,
    sent: Vec<SentSms>,
    rec: Records,
}

impl GatewayState for TsState {
    fn records(&mut self) -> &mut Records {
        &mut self.rec
    }

    fn sent_count(&self) -> usize {
        self.sent.len()
    }
}

impl TurboSmsSim {
    /// Binds `127.0.0.1:0` and serves until `shutdown` is cancelled; every
    /// task (connections, delivery reports) runs on `tracker`.
    pub async fn start(
        cfg: TurboSmsSimConfig,
        shutdown: CancellationToken,
        tracker: &TaskTracker,
    ) -> std::io::Result<TurboSmsSim> {
        let state = TsState {
            inactive: HashSet::new(),
            stoplist: HashSet::new(),
            balance: cfg.balance,
            outcomes: HashMap::new(),
            request_window: Window::new(Duration::from_secs(1)),
            message_window: Window::new(Duration::from_secs(1)),
            recent: HashMap::new(),
            sequences: HashMap::new(),
            next_id: 0,
            sent: Vec::new(),
            rec: Records::default(),
        };
        let inner = Core::start(cfg, state, 0x7475_7262_6f00, shutdown, tracker, "turbosms", |inner| {
            Router::new()
                .route("/message/send.json", post(send))
                .route("/message/send", post(send))
                .route("/message/ping.json", any(ping))
                .fallback(|| async { (StatusCode::NOT_FOUND, "Not Found").into_response() })
                .with_state(inner)
        })
        .await?;
        Ok(TurboSmsSim { inner })
    }

    sim_accessors!();

    /// An inactive sender (month not paid) is refused with 401.
    pub fn set_sender_active(&self, sender: &str, active: bool) {
        let mut st = self.inner.lock();
        if active {
            st.inactive.remove(sender);
        } else {
            st.inactive.insert(sender.to_owned());
        }
    }

    /// Later messages to this number are refused with 404 (stoplist).
    pub fn add_to_stoplist(&self, phone: &str) {
        self.inner.lock().stoplist.insert(digits(phone));
    }

    /// Credit left, in SMS parts; `None` is unlimited.
    pub fn set_balance(&self, parts: Option<u64>) {
        self.inner.lock().balance = parts;
    }

    pub fn balance(&self) -> Option<u64> {
        self.inner.lock().balance
    }

    /// The status later delivery reports for this number carry.
    pub fn set_outcome(&self, phone: &str, status: DlrStatus) {
        self.inner.lock().outcomes.insert(digits(phone), status);
    }

    /// Every accepted message, in order.
    pub fn sent(&self) -> Vec<SentSms> {
        self.inner.lock().sent.clone()
    }

    /// Accepted messages to one number, given with or without `+`.
    pub fn sent_to(&self, phone: &str) -> Vec<SentSms> {
        let phone = digits(phone);
        self.inner.lock().sent.iter().filter(|m| m.to == phone).cloned().collect()
    }
}

/// What a processed request is answered with.
enum Reply {
    /// HTTP 200 with this envelope.
    Envelope(Value),
    /// HTTP 429: retry after this long.
    Throttled(Duration),
}

struct Processed {
    reply: Reply,
    /// Accepted (message_id, number) pairs, for delivery reports.
    accepted: Vec<(String, String)>,
}

impl Processed {
    fn refuse(code: i64) -> Self {
        Self { reply: Reply::Envelope(envelope(code, Value::Null)), accepted: Vec::new() }
    }
}

async fn ping() -> Response {
    axum::Json(envelope(1, Value::Null)).into_response()
}

async fn send(
    State(sim): State<Arc<Inner>>,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let at = sim.clock.now();
    let path = uri.path().to_owned();
    let task_sim = sim.clone();
    let task_body = body.clone();
    sim.on_arrival(
        move |drop_after| answer(task_sim, uri, headers, task_body, at, drop_after),
        |fault| faulted(&sim, fault, path, &body, at),
    )
    .await
}

/// Handles a request normally; with `drop_after`, hangs up instead of
/// answering, that long after the messages were recorded.
async fn answer(
    sim: Arc<Inner>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
    at: Instant,
    drop_after: Option<Duration>,
) -> Response {
    let path = uri.path().to_owned();
    let token = token_of(&headers, uri.query());
    let processed = sim.lock().process(&sim, token.as_deref(), &body);
    let (http_status, code) = match &processed.reply {
        Reply::Envelope(v) => (200, v["response_code"].as_i64()),
        Reply::Throttled(_) => (429, None),
    };
    sim.lock().rec.answered(path, &body, http_status, code, at, drop_after.is_some());
    if !processed.accepted.is_empty() {
        sim.bump();
        schedule_reports(&sim, processed.accepted);
    }

    if let Some(hold) = drop_after {
        return sim.hang_up_after(hold).await;
    }
    pause(&sim.shutdown, sim.cfg.latency).await;
    match processed.reply {
        Reply::Envelope(v) => axum::Json(v).into_response(),
        Reply::Throttled(wait) => {
            let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
            let mut response = proxy_page(StatusCode::TOO_MANY_REQUESTS);
            if let Ok(v) = HeaderValue::from_str(&secs.max(1).to_string()) {
                response.headers_mut().insert(header::RETRY_AFTER, v);
            }
            response
        }
    }
}

/// Answers a fault that replaces all processing.
fn faulted(sim: &Inner, fault: SmsFault, path: String, body: &[u8], at: Instant) -> Response {
    let (response, http_status, code) = match fault {
        SmsFault::Status(code) => {
            let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            (proxy_page(status), status.as_u16(), None)
        }
        SmsFault::Garbage => (
            (
                StatusCode::OK,
                [(header::CONTENT_TYPE, "text/html")],
                "<html><body>Service temporarily unavailable</body></html>",
            )
                .into_response(),
            200,
            None,
        ),
        SmsFault::ErrorCode(code) => (axum::Json(envelope(code, Value::Null)).into_response(), 200, Some(code)),
        SmsFault::Reset | SmsFault::Delay(_) | SmsFault::AcceptThenDrop(_) => (hang_up(), 0, None),
    };
    sim.lock().rec.faulted(path, body, http_status, code, at);
    response
}

/// One recipient's fate: accepted (its number) or refused (its code).
struct Verdict {
    shown: String,
    result: Result<String, i64>,
}

/// The `sms` or `viber` part of a request.
struct Part {
    sender: String,
    text: String,
}

impl TsState {
    fn process(&mut self, sim: &Inner, token: Option<&str>, body: &[u8]) -> Processed {
        let cfg = &sim.cfg;
        let now = sim.clock.now();
        match token {
            None => return self.auth_failure(103),
            Some(t) if t != cfg.token => return self.auth_failure(105),
            Some(_) => {}
        }
        if let Some(wait) = self.request_window.wait(cfg.requests_per_sec, 1, now) {
            self.rec.stats.rate_limited += 1;
            return Processed { reply: Reply::Throttled(wait), accepted: Vec::new() };
        }
        self.request_window.add(1, now);

        match self.validate_and_send(sim, body, now) {
            Ok(processed) => processed,
            Err(code) => {
                self.rec.stats.rejected += 1;
                Processed::refuse(code)
            }
        }
    }

    fn auth_failure(&mut self, code: i64) -> Processed {
        self.rec.stats.auth_failures += 1;
        Processed::refuse(code)
    }

    /// Rules 4 to 11; `Err` is a code refusing the whole request.
    fn validate_and_send(&mut self, sim: &Inner, body: &[u8], now: Instant) -> Result<Processed, i64> {
        let cfg = &sim.cfg;
        if body.iter().all(u8::is_ascii_whitespace) {
            return Err(104);
        }
        let obj = match serde_json::from_slice::<Value>(body) {
            Ok(Value::Object(obj)) => obj,
            Ok(_) => return Err(300),
            Err(_) => return Err(502),
        };
        let sequence_id = match obj.get("sequence_id") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) if !s.is_empty() => Some(s.clone()),
            Some(Value::Number(n)) => Some(n.to_string()),
            Some(_) => return Err(300),
        };
        if let Some(earlier) = sequence_id.as_ref().and_then(|id| self.sequences.get(id)) {
            self.rec.stats.replayed += 1;
            return Ok(Processed { reply: Reply::Envelope(envelope(507, earlier.clone())), accepted: Vec::new() });
        }

        let recipients = match obj.get("recipients") {
            None | Some(Value::Null) => return Err(202),
            Some(Value::Array(list)) if list.is_empty() => return Err(202),
            Some(Value::Array(list)) if list.len() > cfg.max_recipients => return Err(405),
            Some(Value::Array(list)) => list,
            Some(_) => return Err(300),
        };
        let sms = self.part(&obj, "sms", &cfg.senders)?;
        let viber = self.part(&obj, "viber", &cfg.viber_senders)?;
        let (mode, main) = match (&sms, &viber) {
            (Some(s), None) => (SmsMode::Sms, s),
            (None, Some(v)) => (SmsMode::Viber, v),
            (Some(s), Some(_)) => (SmsMode::ViberWithSmsFallback, s),
            (None, None) => return Err(300),
        };
        let parts = if sms.is_some() { segments(&main.text).parts } else { 1 };
        if parts > cfg.max_parts {
            return Err(413);
        }

        self.recent.retain(|_, at| now.saturating_duration_since(*at) < cfg.duplicate_window);
        let mut seen = HashSet::new();
        let verdicts: Vec<Verdict> = recipients.iter().map(|r| self.judge(cfg, r, &main.text, &mut seen)).collect();
        let accepted_count = verdicts.iter().filter(|v| v.result.is_ok()).count();
        if accepted_count == 0 {
            self.rec.stats.rejected += verdicts.len() as u64;
            let code = verdicts.iter().find_map(|v| v.result.as_ref().err().copied()).unwrap_or(202);
            return Ok(Processed {
                reply: Reply::Envelope(envelope(code, results_json(&verdicts, &[]))),
                accepted: Vec::new(),
            });
        }
        let cost = u64::from(parts) * accepted_count as u64;
        if self.balance.is_some_and(|b| b < cost) {
            return Err(203);
        }
        if let Some(wait) = self.message_window.wait(cfg.messages_per_sec, accepted_count, now) {
            self.rec.stats.rate_limited += 1;
            return Ok(Processed { reply: Reply::Throttled(wait), accepted: Vec::new() });
        }

        // Everything checked: send.
        self.message_window.add(accepted_count, now);
        if let Some(b) = self.balance.as_mut() {
            *b -= cost;
        }
        let mut ids = Vec::with_capacity(verdicts.len());
        let mut accepted = Vec::with_capacity(accepted_count);
        for v in &verdicts {
            let Ok(phone) = &v.result else {
                ids.push(None);
                continue;
            };
            self.next_id += 1;
            let id = uuid_like(&mixed_hex(sim.id_seed, self.next_id, 32));
            self.recent.insert((phone.clone(), main.text.clone()), now);
            self.sent.push(SentSms {
                gateway: Gateway::TurboSms,
                to: phone.clone(),
                text: main.text.clone(),
                sender: main.sender.clone(),
                id: id.clone(),
                mode,
                parts,
                at: now,
            });
            accepted.push((id.clone(), phone.clone()));
            ids.push(Some(id));
        }
        self.rec.stats.accepted += accepted_count as u64;
        self.rec.stats.rejected += (verdicts.len() - accepted_count) as u64;
        let result = results_json(&verdicts, &ids);
        if let Some(id) = sequence_id {
            self.sequences.insert(id, result.clone());
        }
        let all = accepted_count == verdicts.len();
        let code = match (all, cfg.answer_sent) {
            (true, false) => 800,
            (true, true) => 801,
            (false, false) => 802,
            (false, true) => 803,
        };
        Ok(Processed { reply: Reply::Envelope(envelope(code, result)), accepted })
    }

    /// Rule 7 for one part; `Ok(None)` when the request has no such part.
    fn part(&self, obj: &Map<String, Value>, key: &str, registered: &[String]) -> Result<Option<Part>, i64> {
        let part = match obj.get(key) {
            None | Some(Value::Null) => return Ok(None),
            Some(Value::Object(part)) => part,
            Some(_) => return Err(300),
        };
        let sender = match part.get("sender") {
            None | Some(Value::Null) => return Err(200),
            Some(Value::String(s)) if s.trim().is_empty() => return Err(200),
            Some(Value::String(s)) => s.clone(),
            Some(_) => return Err(302),
        };
        if !registered.contains(&sender) {
            return Err(400);
        }
        if self.inactive.contains(&sender) {
            return Err(401);
        }
        let text = match part.get("text") {
            None | Some(Value::Null) => return Err(201),
            Some(Value::String(s)) if s.is_empty() => return Err(201),
            Some(Value::String(s)) => s.clone(),
            Some(_) => return Err(304),
        };
        Ok(Some(Part { sender, text }))
    }

    /// Rule 8 for one recipient.
    fn judge(&self, cfg: &TurboSmsSimConfig, raw: &Value, text: &str, seen: &mut HashSet<String>) -> Verdict {
        let shown = match raw {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            other => return Verdict { shown: other.to_string(), result: Err(305) },
        };
        let result = (|| {
            let phone = normalise(&shown).ok_or(305)?;
            if !cfg.country_prefixes.iter().any(|p| phone.starts_with(p.as_str())) {
                return Err(406);
            }
            if self.stoplist.contains(&phone) {
                return Err(404);
            }
            if !seen.insert(phone.clone()) {
                return Err(407);
            }
            if self.recent.contains_key(&(phone.clone(), text.to_owned())) {
                return Err(427);
            }
            Ok(phone)
        })();
        Verdict { shown, result }
    }
}

/// The number as TurboSMS keeps it (digits only), if it is one.
fn normalise(raw: &str) -> Option<String> {
    let d = raw.trim().strip_prefix('+').unwrap_or(raw.trim());
    let ok = (10..=15).contains(&d.len())
        && d.bytes().all(|b| b.is_ascii_digit())
        && !d.starts_with('0')
        && (!d.starts_with("380") || d.len() == 12);
    ok.then(|| d.to_owned())
}

/// For lookups: what `normalise` would keep, or the input without `+`.
fn digits(phone: &str) -> String {
    normalise(phone).unwrap_or_else(|| phone.trim().trim_start_matches('+').to_owned())
}

fn results_json(verdicts: &[Verdict], ids: &[Option<String>]) -> Value {
    let list = verdicts
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let (phone, code) = match &v.result {
                Ok(phone) => (phone.clone(), 0),
                Err(code) => (v.shown.clone(), *code),
            };
            json!({
                "phone": phone,
                "response_code": code,
                "message_id": ids.get(i).cloned().flatten(),
                "response_status": status_name(code),
            })
        })
        .collect();
    Value::Array(list)
}

fn envelope(code: i64, result: Value) -> Value {
    json!({"response_code": code, "response_status": status_name(code), "response_result": result})
}

/// TurboSMS's name for a code (from its published list).
fn status_name(code: i64) -> &'static str {
    match code {
        0 => "OK",
        1 => "PONG",
        103 => "REQUIRED_TOKEN",
        104 => "REQUIRED_CONTENT",
        105 => "REQUIRED_AUTH",
        106 => "REQUIRED_ACTIVE_USER",
        200 => "REQUIRED_MESSAGE_SENDER",
        201 => "REQUIRED_MESSAGE_TEXT",
        202 => "REQUIRED_MESSAGE_RECIPIENT",
        203 => "REQUIRED_BALANCE",
        300 => "INVALID_REQUEST",
        301 => "INVALID_TOKEN",
        302 => "INVALID_MESSAGE_SENDER",
        304 => "INVALID_MESSAGE_TEXT",
        305 => "INVALID_PHONE",
        400 => "NOT_ALLOWED_MESSAGE_SENDER",
        401 => "NOT_ALLOWED_MESSAGE_SENDER_NOT_ACTIVE",
        404 => "NOT_ALLOWED_NUMBER_STOPLIST",
        405 => "NOT_ALLOWED_RECIPIENTS_LIMIT",
        406 => "NOT_ALLOWED_RECIPIENT_COUNTRY",
        407 => "NOT_ALLOWED_RECIPIENT_DUPLICATE",
        412 => "NOT_ALLOWED_MESSAGE_TEXT",
        413 => "NOT_ALLOWED_MESSAGE_TEXT_LENGTH",
        427 => "NOT_ALLOWED_MESSAGE_DUPLICATE",
        500 => "FAILED_CONVERT_RESULT2JSON",
        502 => "FAILED_PARSE_BODY",
        503 => "FAILED_SMS_SEND",
        504 => "FAILED_VIBER_SEND",
        507 => "FAILED_DUPLICATE_REQUEST",
        800 => "SUCCESS_MESSAGE_ACCEPTED",
        801 => "SUCCESS_MESSAGE_SENT",
        802 => "SUCCESS_MESSAGE_PARTIAL_ACCEPTED",
        803 => "SUCCESS_MESSAGE_PARTIAL_SENT",
        999 => "FATAL_ERROR",
        _ => "UNKNOWN_ERROR",
    }
}

/// The token from `Authorization: Bearer|Basic <token>` or `?token=`.
fn token_of(headers: &HeaderMap, query: Option<&str>) -> Option<String> {
    let from_header = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(|v| {
        let (scheme, rest) = v.trim().split_once(' ')?;
        (scheme.eq_ignore_ascii_case("bearer") || scheme.eq_ignore_ascii_case("basic")).then(|| rest.trim().to_owned())
    });
    from_header
        .or_else(|| query.and_then(|q| parse_form(q).into_iter().find(|(k, _)| k == "token").map(|(_, v)| v)))
        .filter(|t| !t.is_empty())
}

/// 8-4-4-4-12, as TurboSMS message ids are written.
fn uuid_like(hex: &str) -> String {
    format!("{}-{}-{}-{}-{}", &hex[..8], &hex[8..12], &hex[12..16], &hex[16..20], &hex[20..32])
}

/// Posts one report per accepted message after `dlr_delay`, in order, on
/// the tracker.
fn schedule_reports(sim: &Arc<Inner>, accepted: Vec<(String, String)>) {
    let Some(target) = sim.cfg.dlr.clone() else { return };
    let sim = sim.clone();
    let tracker = sim.tracker.clone();
    tracker.spawn(async move {
        pause(&sim.shutdown, sim.cfg.dlr_delay).await;
        for (id, phone) in accepted {
            if sim.shutdown.is_cancelled() {
                return;
            }
            let status = sim.lock().outcomes.get(&phone).copied().unwrap_or_default();
            let http_status = tokio::select! {
                () = sim.shutdown.cancelled() => return,
                s = post_report(&sim, &target, &id, &phone, status) => s,
            };
            let at = sim.clock.now();
            sim.record_callback(CallbackRecord {
                message_id: id,
                status: status.as_str().to_owned(),
                url: target.url.clone(),
                http_status,
                at,
            });
        }
    });
}

async fn post_report(sim: &Inner, target: &DlrTarget, id: &str, phone: &str, status: DlrStatus) -> Option<u16> {
    let Some(mut url) = loopback_url(&target.url) else {
        tracing::warn!(url = %target.url, "turbosms sim: delivery report URL is not loopback; not posted");
        return None;
    };
    let mut request_headers = HeaderMap::new();
    match &target.secret {
        DlrSecret::None => {}
        DlrSecret::Path(secret) => {
            if let Ok(mut segments) = url.path_segments_mut() {
                segments.pop_if_empty().push(secret);
            }
        }
        DlrSecret::Header { name, value } => {
            match (HeaderName::from_bytes(name.as_bytes()), HeaderValue::from_str(value)) {
                (Ok(n), Ok(v)) => {
                    request_headers.insert(n, v);
                }
                _ => tracing::warn!(%name, "turbosms sim: bad delivery report secret header; sent without"),
            }
        }
    }
    let body = json!({"message_id": id, "phone": phone, "status": status.as_str()});
    match sim.http().post(url).headers(request_headers).json(&body).send().await {
        Ok(resp) => Some(resp.status().as_u16()),
        Err(e) => {
            tracing::debug!(error = %e, "turbosms sim: delivery report post failed");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_kept_as_digits() {
        assert_eq!(normalise("380501234567").as_deref(), Some("380501234567"));
        assert_eq!(normalise("+380501234567").as_deref(), Some("380501234567"));
        assert_eq!(normalise("38050123456"), None, "a 380 number has 12 digits");
        assert_eq!(normalise("0501234567"), None, "national format is not international");
        assert_eq!(normalise("++380501234567"), None);
        assert_eq!(normalise("38050123456a"), None);
        assert_eq!(normalise("48501234567").as_deref(), Some("48501234567"), "foreign numbers parse; 406 decides");
    }

    #[test]
    fn tokens_come_from_either_header_scheme_or_the_query() {
        let mut h = HeaderMap::new();
        assert_eq!(token_of(&h, Some("token=q")), Some("q".to_owned()));
        assert_eq!(token_of(&h, Some("token=")), None);
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("Bearer abc"));
        assert_eq!(token_of(&h, None), Some("abc".to_owned()));
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("basic abc"));
        assert_eq!(token_of(&h, None), Some("abc".to_owned()));
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("Token abc"));
        assert_eq!(token_of(&h, None), None);
    }

    #[test]
    fn ids_look_like_turbosms_ids() {
        let id = uuid_like(&mixed_hex(1, 1, 32));
        assert_eq!(id.len(), 36);
        assert_eq!(id.matches('-').count(), 4);
    }
}
