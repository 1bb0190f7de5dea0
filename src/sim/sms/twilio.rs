//! Twilio Programmable Messaging simulator (`https://api.twilio.com`).
//!
//! Role: stands in for Twilio so the Twilio adapter can send on loopback:
//! `POST {base}/2010-04-01/Accounts/{AccountSid}/Messages.json`, HTTP Basic
//! auth `AccountSid:AuthToken`, a form body with `To`, `From` or
//! `MessagingServiceSid`, `Body` and optionally `StatusCallback`. A created
//! message can be read back with `GET …/Messages/{Sid}.json`.
//!
//! Sources: twilio.com/docs/messaging/api/message-resource (properties;
//! `num_segments` is a string, and 0 for messages sent through a Messaging
//! Service), a captured create answer (gist labiak/19a1cc41…, the shape of
//! the 201 body), twilio.com/docs/errors/{20003, 20429, 21211, 21610, 14107,
//! 63017, 21701, 21705, 21604, 21608} and a captured 400 body
//! `{"code":21211,"message":"The 'To' number 5551234567 is not a valid phone
//! number.","more_info":…,"status":400}` (gist Tuan-T-Nguyen/b50a8350…),
//! twilio.com/docs/usage/webhooks/webhooks-security and the twilio-node
//! signature guide (X-Twilio-Signature).
//!
//! Rules, in the order they are applied:
//! 1. an injected fault, if one is queued (see the parent module);
//! 2. Basic auth must be this account's SID and token, and the path's
//!    account SID the same, else 401 code 20003 `Authenticate`;
//! 3. `messages_per_sec` create requests in any sliding second, else 429
//!    code 20429 — "never processed and always safe to retry"; Twilio's
//!    real limit is on concurrent requests, a rate stands in for it;
//! 4. the form, each 400: `To` missing → 21604; neither `From` nor
//!    `MessagingServiceSid` → 21603; `Body` missing or empty → 21602;
//!    a `MessagingServiceSid` not of the form `MG` + 32 hex → 21705, not
//!    this account's → 21701; a `From` not this account's → 21606; `To` not
//!    E.164 (`+`, 7 to 15 digits) → 21211; a body over 1600 characters →
//!    21617; a recipient who replied STOP ([`TwilioSim::unsubscribe`]) →
//!    21610;
//! 5. accepted: 201 with the Message resource, `status` `queued` (or
//!    `accepted` with a Messaging Service), `sid` `SM` + 32 hex;
//! 6. then, after `callback_delay`, the message moves on and each change is
//!    posted to `StatusCallback` as a form (`MessageSid`, `MessageStatus`,
//!    `To`, `From`, `AccountSid`, `ApiVersion`, `SmsSid`, `SmsStatus`,
//!    `MessagingServiceSid`, and `ErrorCode` when there is one), signed with
//!    `X-Twilio-Signature` = base64(HMAC-SHA1(auth token, URL + each
//!    parameter's name and value, sorted by name)) when `sign_callbacks`:
//!    - more than `pair_limit` (30) messages between the same sender and
//!      recipient within `pair_window` (30 s) → `failed` with 14107. Twilio
//!      says so itself: the API accepts these and sets them to failed, so
//!      14107 is never an HTTP error and does not mean a bad number;
//!    - more than `account_mps` (2000) accepted messages in a second →
//!      `failed` with 63017, again after a 201;
//!    - otherwise the recipient's outcome ([`TwilioSim::set_outcome`]):
//!      `sent` then `delivered`, `sent` then `undelivered` with a 30xxx
//!      code, or `failed` with one.
//!
//! Not simulated: media, scheduling, the `queued`/`sending` callbacks,
//! per-sender opt-outs (an opt-out here covers the whole account), the real
//! queueing behind a sender's own rate. A `StatusCallback` that is not on
//! loopback is accepted, as Twilio would, but never posted to.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{OriginalUri, Path, State};
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use chrono::Utc;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::core::{Core, GatewayState, Records, sim_accessors};
use super::http::{hang_up, loopback_url, pause, proxy_page};
use super::{CallbackRecord, Gateway, SentSms, SmsFault, SmsMode, Window, mixed_hex, segments};
use crate::channels::sms::twilio::signature;
use crate::sim::serve::parse_form;

const API_VERSION: &str = "2010-04-01";

/// Twilio's cap on a message body, in characters.
const MAX_BODY_CHARS: usize = 1600;

/// Identity and limits of the simulated Twilio account.
#[derive(Clone, Debug)]
pub struct TwilioSimConfig {
    pub account_sid: String,
    pub auth_token: String,
    /// Numbers (E.164) and alphanumeric sender IDs this account may send from.
    pub from_numbers: Vec<String>,
    /// Messaging Services of this account.
    pub messaging_service_sids: Vec<String>,
    /// Create requests past authentication in any sliding second (429 /
    /// 20429 beyond).
    pub messages_per_sec: u32,
    /// Messages between one sender and one recipient within `pair_window`
    /// before the next ones fail with 14107.
    pub pair_limit: u32,
    pub pair_window: Duration,
    /// Accepted messages in any second before the next ones fail with 63017.
    pub account_mps: u32,
    /// How long after creation a message moves on (and its callbacks go).
    pub callback_delay: Duration,
    /// Sign status callbacks with `X-Twilio-Signature`.
    pub sign_callbacks: bool,
    /// How long a 201 waits after the message is recorded.
    pub latency: Duration,
}

impl Default for TwilioSimConfig {
    fn default() -> Self {
        Self {
            account_sid: "AC00000000000000000000000000000001".to_owned(),
            auth_token: "sim-twilio-auth-token".to_owned(),
            from_numbers: vec!["+15005550006".to_owned(), "SIRENA".to_owned()],
            messaging_service_sids: vec!["MG00000000000000000000000000000001".to_owned()],
            messages_per_sec: 100,
            pair_limit: 30,
            pair_window: Duration::from_secs(30),
            account_mps: 2000,
            callback_delay: Duration::from_millis(50),
            sign_callbacks: true,
            latency: Duration::ZERO,
        }
    }
}

/// How a message ends, after `sent`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum FinalStatus {
    #[default]
    Delivered,
    /// `undelivered` with this error code, e.g. 30003 unreachable handset,
    /// 30005 unknown handset, 30006 landline.
    Undelivered(u32),
    /// `failed` with this error code, e.g. 30007 filtered, 30008 unknown.
    Failed(u32),
}

/// A message as the simulated Twilio holds it.
#[derive(Clone, Debug, PartialEq)]
pub struct TwilioMessage {
    pub sms: SentSms,
    pub from: Option<String>,
    pub messaging_service_sid: Option<String>,
    pub status_callback: Option<String>,
    /// Current status: `queued`/`accepted`, `sent`, `delivered`,
    /// `undelivered` or `failed`.
    pub status: String,
    pub error_code: Option<u32>,
}

/// A running simulator. Cloning is cheap; all clones share one server.
#[derive(Clone)]
pub struct TwilioSim {
    inner: Arc<Inner>,
}

type Inner = Core<TwilioSimConfig, TwState>;

struct TwState {
    unsubscribed: HashSet<String>,
    outcomes: HashMap<String, FinalStatus>,
    requests_window: Window,
    account_window: Window,
    /// (sender, recipient) → recent messages between them.
    pairs: HashMap<(String, String), Window>,
    messages: Vec<TwilioMessage>,
    next_id: u64,
    rec: Records,
}

impl GatewayState for TwState {
    fn records(&mut self) -> &mut Records {
        &mut self.rec
    }

    fn sent_count(&self) -> usize {
        self.messages.len()
    }
}

impl TwilioSim {
    /// Binds `127.0.0.1:0` and serves until `shutdown` is cancelled; every
    /// task (connections, status progressions) runs on `tracker`.
    pub async fn start(
        cfg: TwilioSimConfig,
        shutdown: CancellationToken,
        tracker: &TaskTracker,
    ) -> std::io::Result<TwilioSim> {
        let state = TwState {
            unsubscribed: HashSet::new(),
            outcomes: HashMap::new(),
            requests_window: Window::new(Duration::from_secs(1)),
            account_window: Window::new(Duration::from_secs(1)),
            pairs: HashMap::new(),
            messages: Vec::new(),
            next_id: 0,
            rec: Records::default(),
        };
        let inner = Core::start(cfg, state, 0x7477_696c_696f, shutdown, tracker, "twilio", |inner| {
            Router::new()
                .route("/2010-04-01/Accounts/{account}/Messages.json", post(create))
                .route("/2010-04-01/Accounts/{account}/Messages/{message}", get(fetch))
                .fallback(|uri: OriginalUri| async move { not_found(uri.path()) })
                .with_state(inner)
        })
        .await?;
        Ok(TwilioSim { inner })
    }

    sim_accessors!();

    /// As if the recipient had replied STOP: later messages get 21610.
    pub fn unsubscribe(&self, to: &str) {
        self.inner.lock().unsubscribed.insert(to.to_owned());
    }

    /// As if the recipient had replied START.
    pub fn resubscribe(&self, to: &str) {
        self.inner.lock().unsubscribed.remove(to);
    }

    /// How later messages to this number end.
    pub fn set_outcome(&self, to: &str, outcome: FinalStatus) {
        self.inner.lock().outcomes.insert(to.to_owned(), outcome);
    }

    /// Every message answered 201, in order.
    pub fn sent(&self) -> Vec<SentSms> {
        self.inner.lock().messages.iter().map(|m| m.sms.clone()).collect()
    }

    /// Messages answered 201 to one number (E.164).
    pub fn sent_to(&self, to: &str) -> Vec<SentSms> {
        self.inner.lock().messages.iter().filter(|m| m.sms.to == to).map(|m| m.sms.clone()).collect()
    }

    /// Every message with its current status.
    pub fn messages(&self) -> Vec<TwilioMessage> {
        self.inner.lock().messages.clone()
    }
}

/// A Twilio REST error: HTTP status, code, message.
struct ApiError {
    status: u16,
    code: i64,
    message: String,
}

impl ApiError {
    fn new(status: u16, code: i64, message: impl Into<String>) -> Self {
        Self { status, code, message: message.into() }
    }

    fn bad_request(code: i64, message: impl Into<String>) -> Self {
        Self::new(400, code, message)
    }

    fn authenticate() -> Self {
        Self::new(401, 20003, "Authenticate")
    }

    /// The answer for an injected code: the status that code comes with.
    fn injected(code: i64) -> Self {
        let (status, message) = match code {
            20003 => (401, "Authenticate"),
            20404 => (404, "The requested resource was not found"),
            20429 => (429, "Too Many Requests"),
            20500 => (500, "An internal server error has occurred"),
            20503 => (503, "Service Unavailable"),
            _ => (400, "Error"),
        };
        Self::new(status, code, message)
    }

    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = json!({
            "code": self.code,
            "message": self.message,
            "more_info": format!("https://www.twilio.com/docs/errors/{}", self.code),
            "status": self.status,
        });
        let mut response = (status, axum::Json(body)).into_response();
        if self.status == 401 {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, header::HeaderValue::from_static("Basic realm=\"Twilio API\""));
        }
        response
    }
}

fn not_found(path: &str) -> Response {
    ApiError::new(404, 20404, format!("The requested resource {path} was not found")).into_response()
}

/// How an accepted message will end, decided at creation.
#[derive(Clone, Copy, Debug)]
enum Fate {
    Final(FinalStatus),
    /// Failed by Twilio's own limits (14107, 63017).
    Refused(u32),
}

async fn create(
    State(sim): State<Arc<Inner>>,
    Path(account): Path<String>,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let at = sim.clock.now();
    let path = uri.path().to_owned();
    let task_sim = sim.clone();
    let task_body = body.clone();
    sim.on_arrival(
        move |drop_after| answer(task_sim, account, uri, headers, task_body, at, drop_after),
        |fault| faulted(&sim, fault, path, &body, at),
    )
    .await
}

/// Handles a create normally; with `drop_after`, hangs up instead of
/// answering, that long after the message was recorded.
async fn answer(
    sim: Arc<Inner>,
    account: String,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
    at: Instant,
    drop_after: Option<Duration>,
) -> Response {
    let path = uri.path().to_owned();
    let outcome = sim.lock().create(&sim, &account, &headers, &body);
    let (http_status, code) = match &outcome {
        Ok(_) => (201, None),
        Err(e) => (e.status, Some(e.code)),
    };
    sim.lock().rec.answered(path, &body, http_status, code, at, drop_after.is_some());
    let response = match outcome {
        Ok((index, fate)) => {
            // Taken before the message can move on, as Twilio answers with
            // the message as created.
            let resource = resource_json(&sim.cfg, &sim.lock().messages[index]);
            sim.bump();
            schedule_progress(&sim, index, fate);
            (StatusCode::CREATED, axum::Json(resource)).into_response()
        }
        Err(e) => e.into_response(),
    };
    if let Some(hold) = drop_after {
        return sim.hang_up_after(hold).await;
    }
    if response.status() == StatusCode::CREATED {
        pause(&sim.shutdown, sim.cfg.latency).await;
    }
    response
}

async fn fetch(
    State(sim): State<Arc<Inner>>,
    Path((account, message)): Path<(String, String)>,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
) -> Response {
    if !authorised(&sim.cfg, &account, &headers) {
        sim.lock().rec.stats.auth_failures += 1;
        return ApiError::authenticate().into_response();
    }
    let Some(sid) = message.strip_suffix(".json") else { return not_found(uri.path()) };
    let st = sim.lock();
    match st.messages.iter().find(|m| m.sms.id == sid) {
        Some(m) => axum::Json(resource_json(&sim.cfg, m)).into_response(),
        None => not_found(uri.path()),
    }
}

fn faulted(sim: &Inner, fault: SmsFault, path: String, body: &[u8], at: Instant) -> Response {
    let (response, http_status, code) = match fault {
        SmsFault::Status(status @ (500 | 503)) => {
            let code = 20000 + i64::from(status);
            (ApiError::injected(code).into_response(), status, Some(code))
        }
        SmsFault::Status(status) => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            (proxy_page(status), status.as_u16(), None)
        }
        SmsFault::Garbage => (
            (StatusCode::OK, [(header::CONTENT_TYPE, "text/html")], "<html><body>Bad gateway</body></html>")
                .into_response(),
            200,
            None,
        ),
        SmsFault::ErrorCode(code) => {
            let e = ApiError::injected(code);
            let status = e.status;
            (e.into_response(), status, Some(code))
        }
        SmsFault::Reset | SmsFault::Delay(_) | SmsFault::AcceptThenDrop(_) => (hang_up(), 0, None),
    };
    sim.lock().rec.faulted(path, body, http_status, code, at);
    response
}

/// Basic `AccountSid:AuthToken`, for the account in the path.
fn authorised(cfg: &TwilioSimConfig, account: &str, headers: &HeaderMap) -> bool {
    let Some(encoded) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("basic"))
        .map(|(_, rest)| rest.trim().to_owned())
    else {
        return false;
    };
    let Some(decoded) = BASE64.decode(encoded).ok().and_then(|b| String::from_utf8(b).ok()) else {
        return false;
    };
    let Some((user, pass)) = decoded.split_once(':') else { return false };
    user == cfg.account_sid && pass == cfg.auth_token && account == cfg.account_sid
}

impl TwState {
    /// Rules 2 to 5: the index of the new message and how it will end.
    fn create(
        &mut self,
        sim: &Inner,
        account: &str,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<(usize, Fate), ApiError> {
        let cfg = &sim.cfg;
        let now = sim.clock.now();
        if !authorised(cfg, account, headers) {
            self.rec.stats.auth_failures += 1;
            return Err(ApiError::authenticate());
        }
        if self.requests_window.wait(cfg.messages_per_sec, 1, now).is_some() {
            self.rec.stats.rate_limited += 1;
            return Err(ApiError::new(429, 20429, "Too Many Requests"));
        }
        self.requests_window.add(1, now);
        let accepted = self.validate(cfg, body);
        let form = match accepted {
            Ok(form) => form,
            Err(e) => {
                self.rec.stats.rejected += 1;
                return Err(e);
            }
        };

        let sender = form.from.clone().or_else(|| form.service.clone()).unwrap_or_default();
        let pair = self.pairs.entry((sender.clone(), form.to.clone())).or_insert_with(|| Window::new(cfg.pair_window));
        let pair_full = pair.count(now) >= usize::try_from(cfg.pair_limit).unwrap_or(usize::MAX);
        pair.add(1, now);
        let account_full = self.account_window.count(now) >= usize::try_from(cfg.account_mps).unwrap_or(usize::MAX);
        let fate = if pair_full {
            Fate::Refused(14107)
        } else if account_full {
            Fate::Refused(63017)
        } else {
            self.account_window.add(1, now);
            Fate::Final(self.outcomes.get(&form.to).copied().unwrap_or_default())
        };

        self.next_id += 1;
        let sid = format!("SM{}", mixed_hex(sim.id_seed, self.next_id, 32));
        let parts = segments(&form.body).parts;
        self.messages.push(TwilioMessage {
            sms: SentSms {
                gateway: Gateway::Twilio,
                to: form.to,
                text: form.body,
                sender,
                id: sid,
                mode: SmsMode::Sms,
                parts,
                at: now,
            },
            status: if form.service.is_some() { "accepted" } else { "queued" }.to_owned(),
            from: form.from,
            messaging_service_sid: form.service,
            status_callback: form.status_callback,
            error_code: None,
        });
        self.rec.stats.accepted += 1;
        Ok((self.messages.len() - 1, fate))
    }

    /// Rule 4.
    fn validate(&self, cfg: &TwilioSimConfig, body: &[u8]) -> Result<Form, ApiError> {
        let params = parse_form(&String::from_utf8_lossy(body));
        let field =
            |name: &str| params.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()).filter(|v| !v.is_empty());
        let to = field("To").ok_or_else(|| ApiError::bad_request(21604, "A 'To' phone number is required."))?;
        let from = field("From");
        let service = field("MessagingServiceSid");
        if from.is_none() && service.is_none() {
            return Err(ApiError::bad_request(21603, "A 'From' phone number is required."));
        }
        let text = field("Body").ok_or_else(|| ApiError::bad_request(21602, "Message body is required."))?;
        if let Some(service) = &service {
            if !is_sid(service, "MG") {
                return Err(ApiError::bad_request(21705, format!("The Messaging Service Sid {service} is invalid.")));
            }
            if !cfg.messaging_service_sids.contains(service) {
                return Err(ApiError::bad_request(21701, "The Messaging Service does not exist"));
            }
        }
        if let Some(from) = from.as_ref().filter(|f| !cfg.from_numbers.contains(f)) {
            return Err(ApiError::bad_request(
                21606,
                format!(
                    "The From phone number {from} is not a valid, SMS-capable inbound phone number or short code for \
                     your account."
                ),
            ));
        }
        if !is_e164(&to) {
            return Err(ApiError::bad_request(21211, format!("The 'To' number {to} is not a valid phone number.")));
        }
        if text.chars().count() > MAX_BODY_CHARS {
            return Err(ApiError::bad_request(
                21617,
                "The concatenated message body exceeds the 1600 character limit.",
            ));
        }
        if self.unsubscribed.contains(&to) {
            return Err(ApiError::bad_request(21610, "Attempt to send to unsubscribed recipient"));
        }
        Ok(Form { to, from, service, body: text, status_callback: field("StatusCallback") })
    }
}

struct Form {
    to: String,
    from: Option<String>,
    service: Option<String>,
    body: String,
    status_callback: Option<String>,
}

fn is_e164(number: &str) -> bool {
    number
        .strip_prefix('+')
        .is_some_and(|d| (7..=15).contains(&d.len()) && d.bytes().all(|b| b.is_ascii_digit()) && !d.starts_with('0'))
}

fn is_sid(sid: &str, prefix: &str) -> bool {
    sid.strip_prefix(prefix).is_some_and(|hex| hex.len() == 32 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
}

fn resource_json(cfg: &TwilioSimConfig, m: &TwilioMessage) -> Value {
    let now = Utc::now().to_rfc2822();
    let num_segments = if m.messaging_service_sid.is_some() { 0 } else { m.sms.parts };
    let uri = format!("/{API_VERSION}/Accounts/{}/Messages/{}.json", cfg.account_sid, m.sms.id);
    json!({
        "account_sid": cfg.account_sid,
        "api_version": API_VERSION,
        "body": m.sms.text,
        "date_created": now,
        "date_sent": null,
        "date_updated": now,
        "direction": "outbound-api",
        "error_code": m.error_code,
        "error_message": null,
        "from": m.from,
        "messaging_service_sid": m.messaging_service_sid,
        "num_media": "0",
        "num_segments": num_segments.to_string(),
        "price": null,
        "price_unit": "USD",
        "sid": m.sms.id,
        "status": m.status,
        "subresource_uris": {
            "media": format!("/{API_VERSION}/Accounts/{}/Messages/{}/Media.json", cfg.account_sid, m.sms.id),
        },
        "to": m.sms.to,
        "uri": uri,
    })
}

/// Moves message `index` on after `callback_delay`, posting each change.
fn schedule_progress(sim: &Arc<Inner>, index: usize, fate: Fate) {
    let sim = sim.clone();
    let tracker = sim.tracker.clone();
    tracker.spawn(async move {
        pause(&sim.shutdown, sim.cfg.callback_delay).await;
        let steps: Vec<(&str, Option<u32>)> = match fate {
            Fate::Refused(code) | Fate::Final(FinalStatus::Failed(code)) => vec![("failed", Some(code))],
            Fate::Final(FinalStatus::Delivered) => vec![("sent", None), ("delivered", None)],
            Fate::Final(FinalStatus::Undelivered(code)) => vec![("sent", None), ("undelivered", Some(code))],
        };
        for (status, code) in steps {
            if sim.shutdown.is_cancelled() {
                return;
            }
            let message = {
                let mut st = sim.lock();
                let m = &mut st.messages[index];
                m.status = status.to_owned();
                m.error_code = code;
                m.clone()
            };
            let Some(url) = message.status_callback.clone() else { continue };
            let http_status = tokio::select! {
                () = sim.shutdown.cancelled() => return,
                s = post_status(&sim, &url, &message) => s,
            };
            let at = sim.clock.now();
            sim.record_callback(CallbackRecord {
                message_id: message.sms.id.clone(),
                status: status.to_owned(),
                url,
                http_status,
                at,
            });
        }
    });
}

async fn post_status(sim: &Inner, url: &str, m: &TwilioMessage) -> Option<u16> {
    let Some(target) = loopback_url(url) else {
        tracing::warn!(%url, "twilio sim: StatusCallback is not loopback; not posted");
        return None;
    };
    let mut params: Vec<(&str, String)> = vec![
        ("AccountSid", sim.cfg.account_sid.clone()),
        ("ApiVersion", API_VERSION.to_owned()),
        ("MessageSid", m.sms.id.clone()),
        ("MessageStatus", m.status.clone()),
        ("SmsSid", m.sms.id.clone()),
        ("SmsStatus", m.status.clone()),
        ("To", m.sms.to.clone()),
    ];
    if let Some(from) = &m.from {
        params.push(("From", from.clone()));
    }
    if let Some(service) = &m.messaging_service_sid {
        params.push(("MessagingServiceSid", service.clone()));
    }
    if let Some(code) = m.error_code {
        params.push(("ErrorCode", code.to_string()));
    }
    let mut request = sim.http().post(target).form(&params);
    if sim.cfg.sign_callbacks {
        request = request.header("X-Twilio-Signature", signature(&sim.cfg.auth_token, url, &params));
    }
    match request.send().await {
        Ok(resp) => Some(resp.status().as_u16()),
        Err(e) => {
            tracing::debug!(error = %e, "twilio sim: status callback post failed");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_and_sids() {
        assert!(is_e164("+380501234567"));
        assert!(!is_e164("380501234567"));
        assert!(!is_e164("+0501234567"));
        assert!(!is_e164("+38050123456789012"));
        assert!(!is_e164("+3805012x4567"));
        assert!(is_sid("MG00000000000000000000000000000001", "MG"));
        assert!(!is_sid("MG0000", "MG"));
        assert!(!is_sid("AC00000000000000000000000000000001", "MG"));
    }
}
