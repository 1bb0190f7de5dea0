//! Telegram Bot API simulator.
//!
//! Role: stands in for `api.telegram.org` so the real bot adapter (teloxide)
//! can be driven end to end on loopback. `TelegramSim::base_url` is what
//! `Bot::set_api_url` takes; requests arrive as `{base}/bot<TOKEN>/<method>`.
//!
//! Rules it enforces, because the real service does and sirena must cope:
//! - the token must match (401 `Unauthorized`); unknown methods get 404;
//! - `sendMessage` checks, in order: chat known (400 chat not found), text
//!   present, HTML well formed (400 can't parse entities), visible text at
//!   most 4096 UTF-16 code units (400 message is too long), inline keyboard
//!   valid, recipient has not blocked the bot or been deactivated (403), and
//!   the flood limits — global per second, per private chat per second, per
//!   group per minute, over sliding windows — answered with 429 and
//!   `retry_after`;
//! - `getUpdates` long-polls, confirms updates below `offset`, honours
//!   `allowed_updates` like Telegram (the setting persists between calls),
//!   and terminates an older poll with 409 when a newer one arrives, which is
//!   how Telegram reports two bot instances polling at once.
//!
//! Every reply is the Bot API envelope (`{"ok":true,"result":…}` or
//! `{"ok":false,"error_code":N,"description":…}`) with HTTP status N.
//! Request bodies may be JSON (what teloxide sends), a form, or a query string.
//!
//! Not simulated: file uploads (multipart), MarkdownV2 validation, message
//! entities in returned messages, and limits on edits.

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use serde_json::{Map, Value, json};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Network jitter on loopback can make two requests a client spaced exactly
/// one window apart arrive slightly closer together; without this slack a
/// well-behaved client would be rate limited at random.
const WINDOW_TOLERANCE: Duration = Duration::from_millis(15);

/// Telegram's limit on a message's text, counted in UTF-16 code units after
/// entity parsing.
const MAX_TEXT_UTF16: usize = 4096;

/// Telegram's limit on `callback_data`, in bytes.
const MAX_CALLBACK_DATA_BYTES: usize = 64;

/// Used when the token does not start with a numeric bot id.
const FALLBACK_BOT_ID: i64 = 123_456;

/// Update ids start high, as Telegram's do, so code that assumes small ids
/// (or ids equal to message ids) shows up.
const FIRST_UPDATE_ID: u64 = 100_000_001;

const HTML_TAGS: &[&str] = &[
    "b",
    "strong",
    "i",
    "em",
    "u",
    "ins",
    "s",
    "strike",
    "del",
    "a",
    "code",
    "pre",
    "tg-spoiler",
    "span",
    "blockquote",
];

const DESC_TERMINATED: &str =
    "Conflict: terminated by other getUpdates request; make sure that only one bot instance is running";
const DESC_WEBHOOK_ACTIVE: &str =
    "Conflict: can't use getUpdates method while webhook is active; use deleteWebhook to delete the webhook first";
const DESC_NOT_MODIFIED: &str = "Bad Request: message is not modified: specified new message content and reply markup are exactly the same as a current content and reply markup of the message";

/// Limits and identity of the simulated bot.
#[derive(Clone, Debug)]
pub struct TelegramSimConfig {
    /// The only token the simulator accepts.
    pub token: String,
    /// Accepted messages across all chats in any sliding second.
    pub global_per_sec: u32,
    /// Accepted messages to one private chat in any sliding second.
    pub per_chat_per_sec: u32,
    /// Accepted messages to one group (negative chat id) in any sliding minute.
    pub group_per_min: u32,
}

impl Default for TelegramSimConfig {
    fn default() -> Self {
        // Telegram's published flood limits.
        Self { token: "123456:TEST-TOKEN".to_owned(), global_per_sec: 30, per_chat_per_sec: 1, group_per_min: 20 }
    }
}

/// A message the simulator accepted from the bot via `sendMessage`.
#[derive(Clone, Debug)]
pub struct SentMessage {
    pub message_id: i64,
    pub chat_id: i64,
    /// The text exactly as the bot sent it (markup included).
    pub text: String,
    pub parse_mode: Option<String>,
    pub disable_notification: bool,
    pub reply_markup: Option<Value>,
    pub at: Instant,
}

/// Counters over every request the simulator answered.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SimStats {
    pub requests: u64,
    pub sent: u64,
    /// 429 answers.
    pub rate_limited: u64,
    /// 403 answers.
    pub forbidden: u64,
    /// 400 answers.
    pub bad_requests: u64,
    /// 401 answers.
    pub unauthorized: u64,
}

/// One request as received, rejected ones included.
#[derive(Clone, Debug)]
pub struct RecordedRequest {
    /// The method name as it appeared in the URL.
    pub method: String,
    /// Parameters merged from query string and body, as a JSON object.
    /// Form and query values stay strings, as they were sent.
    pub body: Value,
    pub status: u16,
}

/// A running simulator. Cloning is cheap; all clones share one server.
#[derive(Clone)]
pub struct TelegramSim {
    inner: Arc<Inner>,
}

struct Inner {
    cfg: TelegramSimConfig,
    bot_id: i64,
    addr: SocketAddr,
    shutdown: CancellationToken,
    state: Mutex<SimState>,
    /// Bumped whenever long pollers should re-check: a new update, or a newer
    /// poll that terminates older ones.
    updates_changed: watch::Sender<u64>,
    /// Bumped on every accepted message, for `wait_for_sent`.
    sent_changed: watch::Sender<u64>,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum UserStatus {
    Active,
    Blocked,
    Deactivated,
}

struct SimUser {
    first_name: String,
    language_code: Option<String>,
    status: UserStatus,
}

struct QueuedUpdate {
    id: u64,
    /// The update's kind as named in `allowed_updates`.
    kind: &'static str,
    json: Value,
}

struct SimState {
    users: HashMap<i64, SimUser>,
    groups: HashMap<i64, String>,
    next_message_id: i64,
    next_update_id: u64,
    next_callback_id: u64,
    updates: VecDeque<QueuedUpdate>,
    /// `None` or empty means Telegram's default: every kind we produce.
    allowed_updates: Option<Vec<String>>,
    /// Incremented by each `getUpdates`; a waiting poll whose number is no
    /// longer current has been superseded.
    poll_generation: u64,
    webhook_url: String,
    /// Keyed by (scope JSON, language code).
    commands: HashMap<(String, String), Value>,
    /// The bot's messages as Telegram currently holds them, for callbacks
    /// and edits.
    bot_messages: HashMap<i64, Value>,
    open_callbacks: HashSet<String>,
    sent: Vec<SentMessage>,
    stats: SimStats,
    requests: Vec<RecordedRequest>,
    global_hits: VecDeque<Instant>,
    chat_hits: HashMap<i64, VecDeque<Instant>>,
}

/// A Bot API error reply.
#[derive(Debug, thiserror::Error)]
#[error("{code} {description}")]
struct ApiFailure {
    code: u16,
    description: String,
    retry_after: Option<u64>,
}

impl ApiFailure {
    fn new(code: u16, description: impl Into<String>) -> Self {
        Self { code, description: description.into(), retry_after: None }
    }

    fn bad_request(description: impl Into<String>) -> Self {
        Self::new(400, description)
    }
}

type ApiResult = Result<Value, ApiFailure>;

impl TelegramSim {
    /// Binds `127.0.0.1:0` and serves until `shutdown` is cancelled.
    pub async fn start(
        cfg: TelegramSimConfig,
        shutdown: CancellationToken,
        tracker: &TaskTracker,
    ) -> std::io::Result<TelegramSim> {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let bot_id = cfg.token.split(':').next().and_then(|id| id.parse().ok()).unwrap_or(FALLBACK_BOT_ID);
        let inner = Arc::new(Inner {
            cfg,
            bot_id,
            addr,
            shutdown: shutdown.clone(),
            state: Mutex::new(SimState {
                users: HashMap::new(),
                groups: HashMap::new(),
                next_message_id: 1,
                next_update_id: FIRST_UPDATE_ID,
                next_callback_id: 1,
                updates: VecDeque::new(),
                allowed_updates: None,
                poll_generation: 0,
                webhook_url: String::new(),
                commands: HashMap::new(),
                bot_messages: HashMap::new(),
                open_callbacks: HashSet::new(),
                sent: Vec::new(),
                stats: SimStats::default(),
                requests: Vec::new(),
                global_hits: VecDeque::new(),
                chat_hits: HashMap::new(),
            }),
            updates_changed: watch::Sender::new(0),
            sent_changed: watch::Sender::new(0),
        });
        let app = Router::new()
            .route("/{bot}/{method}", any(handle))
            .fallback(|| async { envelope(Err(ApiFailure::new(404, "Not Found"))) })
            .with_state(inner.clone());
        tracker.spawn(async move {
            let served = axum::serve(listener, app).with_graceful_shutdown(shutdown.cancelled_owned()).await;
            if let Err(e) = served {
                tracing::warn!(error = %e, "telegram sim server stopped with an error");
            }
        });
        tracing::debug!(%addr, "telegram sim listening");
        Ok(TelegramSim { inner })
    }

    /// `http://127.0.0.1:PORT`, for `Bot::set_api_url`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.inner.addr)
    }

    /// Makes a private chat known, as if the user had started the bot.
    pub fn add_user(&self, chat_id: i64, first_name: &str, language_code: Option<&str>) {
        self.inner.lock().users.insert(
            chat_id,
            SimUser {
                first_name: first_name.to_owned(),
                language_code: language_code.map(str::to_owned),
                status: UserStatus::Active,
            },
        );
    }

    /// Makes a group known. Group ids are negative, as Telegram's are.
    pub fn add_group(&self, chat_id: i64, title: &str) {
        self.inner.lock().groups.insert(chat_id, title.to_owned());
    }

    /// Later messages to this user get 403 "bot was blocked by the user".
    pub fn block(&self, chat_id: i64) {
        self.set_status(chat_id, UserStatus::Blocked);
    }

    /// Later messages to this user get 403 "user is deactivated".
    pub fn deactivate(&self, chat_id: i64) {
        self.set_status(chat_id, UserStatus::Deactivated);
    }

    fn set_status(&self, chat_id: i64, status: UserStatus) {
        let mut st = self.inner.lock();
        match st.users.get_mut(&chat_id) {
            Some(user) => user.status = status,
            None => tracing::warn!(chat_id, ?status, "telegram sim: no such user"),
        }
    }

    /// Queues a text message from the user (or, for a negative id, from a
    /// member of that group) and wakes long pollers.
    ///
    /// A user nobody added is added with a placeholder name, since anyone can
    /// write to a bot. A user who had blocked the bot unblocks it: Telegram
    /// makes a user restart a blocked bot before writing to it.
    pub fn user_sends(&self, chat_id: i64, text: &str) {
        let mut st = self.inner.lock();
        let message_id = st.take_message_id();
        let (chat, from) = if chat_id < 0 {
            let Some(title) = st.groups.get(&chat_id) else {
                tracing::warn!(chat_id, "telegram sim: user_sends to an unknown group");
                return;
            };
            // A synthetic member; enough for a valid `from`.
            let member = json!({
                "id": chat_id.unsigned_abs(),
                "is_bot": false,
                "first_name": "Group member",
            });
            (json!({"id": chat_id, "type": "group", "title": title}), member)
        } else {
            let user = st.users.entry(chat_id).or_insert_with(|| SimUser {
                first_name: format!("User {chat_id}"),
                language_code: None,
                status: UserStatus::Active,
            });
            if user.status == UserStatus::Blocked {
                user.status = UserStatus::Active;
            }
            let chat = private_chat_json(chat_id, &user.first_name);
            (chat, user_json(chat_id, user))
        };
        let mut message = json!({
            "message_id": message_id,
            "date": unix_now(),
            "chat": chat,
            "from": from,
            "text": text,
        });
        if text.starts_with('/') {
            let command = text.split(char::is_whitespace).next().unwrap_or(text);
            message["entities"] = json!([{
                "type": "bot_command",
                "offset": 0,
                "length": command.encode_utf16().count(),
            }]);
        }
        st.push_update("message", "message", message);
        drop(st);
        self.inner.updates_changed.send_modify(|n| *n += 1);
    }

    /// Queues a press of an inline button on a message the bot sent to
    /// `chat_id` earlier. An unknown message is logged and ignored, since
    /// Telegram could not produce such a press.
    pub fn user_presses(&self, chat_id: i64, message_id: i64, data: &str) {
        let mut st = self.inner.lock();
        let message = st.bot_messages.get(&message_id).filter(|m| m["chat"]["id"].as_i64() == Some(chat_id)).cloned();
        let Some(message) = message else {
            tracing::warn!(chat_id, message_id, "telegram sim: press on a message the bot did not send to this chat");
            return;
        };
        let from = match st.users.get(&chat_id) {
            Some(user) => user_json(chat_id, user),
            None => {
                json!({"id": chat_id.unsigned_abs(), "is_bot": false, "first_name": "Group member"})
            }
        };
        let query_id = format!("{}", 9_000_000_000_u64 + st.next_callback_id);
        st.next_callback_id += 1;
        st.open_callbacks.insert(query_id.clone());
        let query = json!({
            "id": query_id,
            "from": from,
            "message": message,
            "chat_instance": format!("sim-{chat_id}"),
            "data": data,
        });
        st.push_update("callback_query", "callback_query", query);
        drop(st);
        self.inner.updates_changed.send_modify(|n| *n += 1);
    }

    /// Every accepted `sendMessage`, in order.
    pub fn sent(&self) -> Vec<SentMessage> {
        self.inner.lock().sent.clone()
    }

    /// Accepted messages to one chat, in order.
    pub fn sent_to(&self, chat_id: i64) -> Vec<SentMessage> {
        let st = self.inner.lock();
        st.sent.iter().filter(|m| m.chat_id == chat_id).cloned().collect()
    }

    pub fn stats(&self) -> SimStats {
        self.inner.lock().stats.clone()
    }

    /// Every request answered so far, rejected ones included.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.inner.lock().requests.clone()
    }

    /// Waits until `chat_id` has at least `n` accepted messages, or until
    /// `timeout` or shutdown, and returns that chat's messages either way.
    pub async fn wait_for_sent(&self, chat_id: i64, n: usize, timeout: Duration) -> Vec<SentMessage> {
        let deadline = tokio::time::Instant::now() + timeout;
        // Subscribing before looking means a send between the look and the
        // wait still wakes us.
        let mut changed = self.inner.sent_changed.subscribe();
        loop {
            let got = self.sent_to(chat_id);
            if got.len() >= n {
                return got;
            }
            tokio::select! {
                r = changed.changed() => if r.is_err() { return self.sent_to(chat_id) },
                _ = tokio::time::sleep_until(deadline) => return self.sent_to(chat_id),
                _ = self.inner.shutdown.cancelled() => return self.sent_to(chat_id),
            }
        }
    }
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, SimState> {
        self.state.lock().expect("sim state lock")
    }

    fn bot_user_json(&self) -> Value {
        json!({
            "id": self.bot_id,
            "is_bot": true,
            "first_name": "sirena",
            "username": "sirena_sim_bot",
        })
    }
}

impl SimState {
    fn take_message_id(&mut self) -> i64 {
        let id = self.next_message_id;
        self.next_message_id += 1;
        id
    }

    fn push_update(&mut self, kind: &'static str, field: &str, payload: Value) {
        let id = self.next_update_id;
        self.next_update_id += 1;
        let mut json = json!({ "update_id": id });
        json[field] = payload;
        self.updates.push_back(QueuedUpdate { id, kind, json });
    }

    fn chat_json(&self, chat_id: i64) -> Option<Value> {
        if chat_id < 0 {
            let title = self.groups.get(&chat_id)?;
            Some(json!({"id": chat_id, "type": "group", "title": title}))
        } else {
            let user = self.users.get(&chat_id)?;
            Some(private_chat_json(chat_id, &user.first_name))
        }
    }

    /// Drops confirmed updates (and, for a negative offset, all but the last
    /// `-offset`), then takes up to `limit` of the allowed kinds.
    fn take_updates(&mut self, offset: i64, limit: usize) -> Vec<Value> {
        if offset < 0 {
            let keep = usize::try_from(offset.unsigned_abs()).unwrap_or(usize::MAX);
            while self.updates.len() > keep {
                self.updates.pop_front();
            }
        } else {
            let offset = offset.unsigned_abs();
            self.updates.retain(|u| u.id >= offset);
        }
        // Telegram never creates updates of kinds the bot opted out of; we
        // filter at delivery so the setting can arrive after the update.
        if let Some(allowed) = self.allowed_updates.as_ref().filter(|a| !a.is_empty()) {
            self.updates.retain(|u| allowed.iter().any(|kind| kind == u.kind));
        }
        self.updates.iter().take(limit).map(|u| u.json.clone()).collect()
    }

    /// `Some(wait)` if one more message to `chat_id` now would break a limit.
    fn flood_wait(&mut self, cfg: &TelegramSimConfig, chat_id: i64, now: Instant) -> Option<Duration> {
        let global = window_wait(&mut self.global_hits, Duration::from_secs(1), cfg.global_per_sec, now);
        let (span, limit) = if chat_id < 0 {
            (Duration::from_secs(60), cfg.group_per_min)
        } else {
            (Duration::from_secs(1), cfg.per_chat_per_sec)
        };
        let chat = window_wait(self.chat_hits.entry(chat_id).or_default(), span, limit, now);
        global.max(chat)
    }

    fn record_hit(&mut self, chat_id: i64, now: Instant) {
        self.global_hits.push_back(now);
        self.chat_hits.entry(chat_id).or_default().push_back(now);
    }
}

/// Prunes hits older than the window and says how long until one more fits.
fn window_wait(hits: &mut VecDeque<Instant>, span: Duration, limit: u32, now: Instant) -> Option<Duration> {
    let span = span.saturating_sub(WINDOW_TOLERANCE);
    while hits.front().is_some_and(|&at| now.saturating_duration_since(at) >= span) {
        hits.pop_front();
    }
    let limit = usize::try_from(limit).unwrap_or(usize::MAX);
    if hits.len() < limit {
        return None;
    }
    if limit == 0 {
        return Some(span);
    }
    // The hit that has to leave the window before one more fits.
    let blocking = hits[hits.len() - limit];
    Some(span.saturating_sub(now.saturating_duration_since(blocking)))
}

fn private_chat_json(chat_id: i64, first_name: &str) -> Value {
    json!({"id": chat_id, "type": "private", "first_name": first_name})
}

fn user_json(id: i64, user: &SimUser) -> Value {
    let mut v = json!({"id": id, "is_bot": false, "first_name": user.first_name});
    if let Some(lang) = &user.language_code {
        v["language_code"] = json!(lang);
    }
    v
}

fn unix_now() -> i64 {
    chrono::Utc::now().timestamp()
}

fn envelope(outcome: ApiResult) -> Response {
    match outcome {
        Ok(result) => (StatusCode::OK, axum::Json(json!({"ok": true, "result": result}))).into_response(),
        Err(failure) => {
            let mut body = json!({
                "ok": false,
                "error_code": failure.code,
                "description": failure.description,
            });
            if let Some(secs) = failure.retry_after {
                body["parameters"] = json!({"retry_after": secs});
            }
            let status = StatusCode::from_u16(failure.code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            (status, axum::Json(body)).into_response()
        }
    }
}

async fn handle(
    State(sim): State<Arc<Inner>>,
    Path((bot, method)): Path<(String, String)>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (params, outcome) = match parse_params(query.as_deref(), &headers, &body) {
        Ok(params) => {
            let outcome = dispatch(&sim, &bot, &method, &params).await;
            (Value::Object(params), outcome)
        }
        // Keep what was sent, so a malformed body can still be inspected.
        Err(failure) => (Value::String(String::from_utf8_lossy(&body).into_owned()), Err(failure)),
    };
    let status = match &outcome {
        Ok(_) => 200,
        Err(f) => f.code,
    };
    match &outcome {
        Ok(_) => tracing::debug!(%method, "telegram sim: ok"),
        Err(f) => tracing::debug!(%method, failure = %f, "telegram sim: rejected"),
    }
    {
        let mut st = sim.lock();
        st.stats.requests += 1;
        match status {
            400 => st.stats.bad_requests += 1,
            401 => st.stats.unauthorized += 1,
            403 => st.stats.forbidden += 1,
            429 => st.stats.rate_limited += 1,
            _ => {}
        }
        st.requests.push(RecordedRequest { method: method.clone(), body: params, status });
    }
    envelope(outcome)
}

/// Merges query-string and body parameters into one object. Body values win.
fn parse_params(query: Option<&str>, headers: &HeaderMap, body: &[u8]) -> Result<Map<String, Value>, ApiFailure> {
    let mut params = Map::new();
    if let Some(q) = query {
        for (k, v) in parse_form(q) {
            params.insert(k, Value::String(v));
        }
    }
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(params);
    }
    let content_type =
        headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("").to_ascii_lowercase();
    if content_type.starts_with("multipart/form-data") {
        // teloxide sends setWebhook and the file-carrying methods this way.
        // Boundaries are case-sensitive, so read the header as sent.
        let boundary = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .split(';')
            .find_map(|part| {
                let part = part.trim();
                part.get(..9).filter(|key| key.eq_ignore_ascii_case("boundary=")).map(|_| part[9..].trim_matches('"'))
            })
            .ok_or_else(|| ApiFailure::bad_request("Bad Request: multipart boundary is missing"))?;
        params.extend(parse_multipart(body, boundary)?);
        return Ok(params);
    }
    if content_type.starts_with("application/x-www-form-urlencoded") {
        let text = std::str::from_utf8(body)
            .map_err(|_| ApiFailure::bad_request("Bad Request: invalid form body encoding"))?;
        for (k, v) in parse_form(text) {
            params.insert(k, Value::String(v));
        }
        return Ok(params);
    }
    // Telegram reads JSON whether or not the content type says so.
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(obj)) => {
            params.extend(obj);
            Ok(params)
        }
        _ => Err(ApiFailure::bad_request("Bad Request: can't parse JSON object")),
    }
}

/// Text fields of a `multipart/form-data` body. File parts are recorded as
/// a note of their name and size; the simulator stores no files.
fn parse_multipart(body: &[u8], boundary: &str) -> Result<Map<String, Value>, ApiFailure> {
    let malformed = || ApiFailure::bad_request("Bad Request: can't parse multipart body");
    let delimiter = format!("--{boundary}");
    let mut fields = Map::new();
    let mut rest = body;
    // Skip the preamble up to the first delimiter.
    let start = find_bytes(rest, delimiter.as_bytes()).ok_or_else(malformed)?;
    rest = &rest[start + delimiter.len()..];
    loop {
        if rest.starts_with(b"--") {
            return Ok(fields);
        }
        rest = rest.strip_prefix(b"\r\n").ok_or_else(malformed)?;
        let next = find_bytes(rest, format!("\r\n{delimiter}").as_bytes()).ok_or_else(malformed)?;
        let part = &rest[..next];
        rest = &rest[next + 2 + delimiter.len()..];
        let split = find_bytes(part, b"\r\n\r\n").ok_or_else(malformed)?;
        let head = String::from_utf8_lossy(&part[..split]);
        let content = &part[split + 4..];
        let disposition =
            head.lines().find(|l| l.to_ascii_lowercase().starts_with("content-disposition:")).ok_or_else(malformed)?;
        let attr = |key: &str| {
            disposition.split(';').find_map(|kv| {
                kv.trim().strip_prefix(key).and_then(|v| v.strip_prefix('=')).map(|v| v.trim_matches('"').to_owned())
            })
        };
        let name = attr("name").ok_or_else(malformed)?;
        let value = match attr("filename") {
            Some(file) => format!("<file {file:?}, {} bytes>", content.len()),
            None => String::from_utf8_lossy(content).into_owned(),
        };
        fields.insert(name, Value::String(value));
    }
}

fn find_bytes(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// `application/x-www-form-urlencoded` decoding; undecodable escapes are
/// kept literally rather than rejected, as lenient servers do.
fn parse_form(s: &str) -> Vec<(String, String)> {
    s.split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b'%' => {
                let hex = bytes
                    .get(i + 1..i + 3)
                    .and_then(|h| std::str::from_utf8(h).ok())
                    .and_then(|h| u8::from_str_radix(h, 16).ok());
                match hex {
                    Some(b) => {
                        out.push(b);
                        i += 3;
                    }
                    None => {
                        out.push(b'%');
                        i += 1;
                    }
                }
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

// Parameter accessors: JSON bodies carry native types, forms carry strings.

fn param_str<'a>(p: &'a Map<String, Value>, key: &str) -> Option<&'a str> {
    p.get(key).and_then(Value::as_str)
}

fn param_i64(p: &Map<String, Value>, key: &str) -> Option<i64> {
    match p.get(key)? {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn param_bool(p: &Map<String, Value>, key: &str) -> bool {
    match p.get(key) {
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) => s == "true" || s == "1",
        Some(Value::Number(n)) => n.as_i64() == Some(1),
        _ => false,
    }
}

/// A JSON-valued parameter: an object in a JSON body, a JSON string in a form.
fn param_json(p: &Map<String, Value>, key: &str) -> Result<Option<Value>, ApiFailure> {
    match p.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => serde_json::from_str(s)
            .map(Some)
            .map_err(|_| ApiFailure::bad_request(format!("Bad Request: can't parse {key} JSON object"))),
        Some(v) => Ok(Some(v.clone())),
    }
}

async fn dispatch(sim: &Arc<Inner>, bot: &str, method: &str, p: &Map<String, Value>) -> ApiResult {
    // Telegram answers a URL that is not `/bot<token>/…` with 404.
    let Some(token) = bot.strip_prefix("bot") else {
        return Err(ApiFailure::new(404, "Not Found"));
    };
    if token != sim.cfg.token {
        return Err(ApiFailure::new(401, "Unauthorized"));
    }
    // Telegram matches method names case-insensitively.
    match method.to_ascii_lowercase().as_str() {
        "getme" => Ok(get_me(sim)),
        "getupdates" => get_updates(sim, p).await,
        "getwebhookinfo" => Ok(get_webhook_info(sim)),
        "setwebhook" => set_webhook(sim, p),
        "deletewebhook" => Ok(delete_webhook(sim, p)),
        "setmycommands" => set_my_commands(sim, p),
        "getmycommands" => get_my_commands(sim, p),
        "deletemycommands" => delete_my_commands(sim, p),
        "answercallbackquery" => answer_callback_query(sim, p),
        "sendmessage" => send_message(sim, p),
        "editmessagetext" => edit_message(sim, p, true),
        "editmessagereplymarkup" => edit_message(sim, p, false),
        _ => Err(ApiFailure::new(404, "Not Found")),
    }
}

fn get_me(sim: &Inner) -> Value {
    let mut me = sim.bot_user_json();
    me["can_join_groups"] = json!(true);
    me["can_read_all_group_messages"] = json!(false);
    me["supports_inline_queries"] = json!(false);
    me["can_connect_to_business"] = json!(false);
    // teloxide 0.17 requires this field.
    me["has_main_web_app"] = json!(false);
    me
}

async fn get_updates(sim: &Arc<Inner>, p: &Map<String, Value>) -> ApiResult {
    let offset = param_i64(p, "offset").unwrap_or(0);
    let limit = param_i64(p, "limit").unwrap_or(100).clamp(1, 100);
    let limit = usize::try_from(limit).unwrap_or(100);
    let timeout_secs = param_i64(p, "timeout").unwrap_or(0).max(0);
    let timeout = Duration::from_secs(timeout_secs.unsigned_abs());
    let allowed = match param_json(p, "allowed_updates")? {
        None => None,
        Some(Value::Array(kinds)) => {
            Some(kinds.iter().filter_map(|k| k.as_str().map(str::to_owned)).collect::<Vec<_>>())
        }
        Some(_) => {
            return Err(ApiFailure::bad_request("Bad Request: can't parse allowed updates"));
        }
    };
    let deadline = tokio::time::Instant::now() + timeout;
    // Subscribe before the first look so an update queued in between still
    // wakes this poll.
    let mut changed = sim.updates_changed.subscribe();
    let generation = {
        let mut st = sim.lock();
        if !st.webhook_url.is_empty() {
            return Err(ApiFailure::new(409, DESC_WEBHOOK_ACTIVE));
        }
        if let Some(allowed) = allowed {
            st.allowed_updates = Some(allowed);
        }
        st.poll_generation += 1;
        st.poll_generation
    };
    // Wake older polls so they notice they were superseded.
    sim.updates_changed.send_modify(|n| *n += 1);
    changed.borrow_and_update();
    let mut timed_out = false;
    loop {
        {
            let mut st = sim.lock();
            if st.poll_generation != generation {
                return Err(ApiFailure::new(409, DESC_TERMINATED));
            }
            let batch = st.take_updates(offset, limit);
            if !batch.is_empty() || timed_out || timeout.is_zero() {
                return Ok(Value::Array(batch));
            }
        }
        tokio::select! {
            r = changed.changed() => if r.is_err() { return Ok(json!([])) },
            _ = tokio::time::sleep_until(deadline) => timed_out = true,
            // Answer at once so graceful shutdown is not held up by a poll.
            _ = sim.shutdown.cancelled() => return Ok(json!([])),
        }
    }
}

fn get_webhook_info(sim: &Inner) -> Value {
    let st = sim.lock();
    json!({
        "url": st.webhook_url,
        "has_custom_certificate": false,
        "pending_update_count": st.updates.len(),
    })
}

fn set_webhook(sim: &Inner, p: &Map<String, Value>) -> ApiResult {
    let url = param_str(p, "url").unwrap_or("");
    if !url.is_empty() && !url.starts_with("https://") {
        return Err(ApiFailure::bad_request("Bad Request: bad webhook: An HTTPS URL must be provided for webhook"));
    }
    let mut st = sim.lock();
    st.webhook_url = url.to_owned();
    if param_bool(p, "drop_pending_updates") {
        st.updates.clear();
    }
    Ok(json!(true))
}

fn delete_webhook(sim: &Inner, p: &Map<String, Value>) -> Value {
    let mut st = sim.lock();
    st.webhook_url.clear();
    if param_bool(p, "drop_pending_updates") {
        st.updates.clear();
    }
    json!(true)
}

fn commands_key(p: &Map<String, Value>) -> Result<(String, String), ApiFailure> {
    let scope = param_json(p, "scope")?.unwrap_or_else(|| json!({"type": "default"}));
    let lang = param_str(p, "language_code").unwrap_or("").to_owned();
    Ok((scope.to_string(), lang))
}

fn set_my_commands(sim: &Inner, p: &Map<String, Value>) -> ApiResult {
    let Some(Value::Array(commands)) = param_json(p, "commands")? else {
        return Err(ApiFailure::bad_request("Bad Request: parameter \"commands\" is required"));
    };
    if commands.len() > 100 {
        return Err(ApiFailure::bad_request("Bad Request: too many commands"));
    }
    for c in &commands {
        let name = c["command"].as_str().unwrap_or("");
        let valid_name = (1..=32).contains(&name.len())
            && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
        if !valid_name {
            return Err(ApiFailure::bad_request("Bad Request: BOT_COMMAND_INVALID"));
        }
        let description = c["description"].as_str().unwrap_or("");
        if !(1..=256).contains(&description.chars().count()) {
            return Err(ApiFailure::bad_request("Bad Request: command description must be non-empty"));
        }
    }
    let key = commands_key(p)?;
    sim.lock().commands.insert(key, Value::Array(commands));
    Ok(json!(true))
}

fn get_my_commands(sim: &Inner, p: &Map<String, Value>) -> ApiResult {
    let key = commands_key(p)?;
    Ok(sim.lock().commands.get(&key).cloned().unwrap_or_else(|| json!([])))
}

fn delete_my_commands(sim: &Inner, p: &Map<String, Value>) -> ApiResult {
    let key = commands_key(p)?;
    sim.lock().commands.remove(&key);
    Ok(json!(true))
}

fn answer_callback_query(sim: &Inner, p: &Map<String, Value>) -> ApiResult {
    let id = param_str(p, "callback_query_id")
        .map(str::to_owned)
        .or_else(|| param_i64(p, "callback_query_id").map(|n| n.to_string()))
        .unwrap_or_default();
    if let Some(text) = param_str(p, "text")
        && text.chars().count() > 200
    {
        return Err(ApiFailure::bad_request("Bad Request: MESSAGE_TOO_LONG"));
    }
    // Each query can be answered once, as on Telegram.
    if !sim.lock().open_callbacks.remove(&id) {
        return Err(ApiFailure::bad_request(
            "Bad Request: query is too old and response timeout expired or query id is invalid",
        ));
    }
    Ok(json!(true))
}

/// Checks a message's text and markup; returns the visible text.
fn check_text(text: Option<&str>, parse_mode: Option<&str>) -> Result<String, ApiFailure> {
    let text = text.unwrap_or("");
    if text.trim().is_empty() {
        return Err(ApiFailure::bad_request("Bad Request: message text is empty"));
    }
    let visible = match parse_mode {
        None | Some("") => text.to_owned(),
        Some(mode) if mode.eq_ignore_ascii_case("html") => {
            parse_html(text).map_err(|e| ApiFailure::bad_request(format!("Bad Request: can't parse entities: {e}")))?
        }
        // Accepted without validation; sirena sends HTML.
        Some(mode) if mode.eq_ignore_ascii_case("markdownv2") || mode.eq_ignore_ascii_case("markdown") => {
            text.to_owned()
        }
        Some(_) => {
            return Err(ApiFailure::bad_request("Bad Request: unsupported parse_mode"));
        }
    };
    if visible.trim().is_empty() {
        return Err(ApiFailure::bad_request("Bad Request: message text is empty"));
    }
    // Telegram counts UTF-16 code units of the text after entity parsing.
    if visible.encode_utf16().count() > MAX_TEXT_UTF16 {
        return Err(ApiFailure::bad_request("Bad Request: message is too long"));
    }
    Ok(visible)
}

/// Validates `reply_markup`; returns the part Telegram echoes in the sent
/// Message (only inline keyboards are echoed — teloxide's `Message` accepts
/// nothing else there).
fn check_reply_markup(markup: Option<&Value>) -> Result<Option<Value>, ApiFailure> {
    let Some(markup) = markup else {
        return Ok(None);
    };
    let invalid = || ApiFailure::bad_request("Bad Request: can't parse reply keyboard markup JSON object");
    let obj = markup.as_object().ok_or_else(invalid)?;
    if let Some(rows) = obj.get("inline_keyboard") {
        let rows = rows.as_array().ok_or_else(invalid)?;
        for row in rows {
            for button in row.as_array().ok_or_else(invalid)? {
                check_inline_button(button)?;
            }
        }
        return Ok(Some(markup.clone()));
    }
    if obj.contains_key("keyboard") || obj.contains_key("remove_keyboard") || obj.contains_key("force_reply") {
        return Ok(None);
    }
    Err(invalid())
}

fn check_inline_button(button: &Value) -> Result<(), ApiFailure> {
    if button["text"].as_str().is_none_or(str::is_empty) {
        return Err(ApiFailure::bad_request("Bad Request: can't parse inline keyboard button: Text must be non-empty"));
    }
    if let Some(data) = button.get("callback_data") {
        let len = data.as_str().map_or(0, str::len);
        if !(1..=MAX_CALLBACK_DATA_BYTES).contains(&len) {
            return Err(ApiFailure::bad_request("Bad Request: BUTTON_DATA_INVALID"));
        }
        return Ok(());
    }
    const ACTIONS: &[&str] = &[
        "url",
        "login_url",
        "web_app",
        "switch_inline_query",
        "switch_inline_query_current_chat",
        "switch_inline_query_chosen_chat",
        "copy_text",
        "callback_game",
        "pay",
    ];
    if ACTIONS.iter().any(|a| button.get(*a).is_some()) {
        Ok(())
    } else {
        Err(ApiFailure::bad_request(
            "Bad Request: can't parse inline keyboard button: Text buttons are unallowed in the inline keyboard",
        ))
    }
}

fn chat_id_param(p: &Map<String, Value>) -> Result<i64, ApiFailure> {
    match p.get("chat_id") {
        None | Some(Value::Null) => Err(ApiFailure::bad_request("Bad Request: chat_id is empty")),
        // "@username" and other non-numeric ids name no chat the sim knows.
        _ => param_i64(p, "chat_id").ok_or_else(|| ApiFailure::bad_request("Bad Request: chat not found")),
    }
}

fn send_message(sim: &Inner, p: &Map<String, Value>) -> ApiResult {
    let chat_id = chat_id_param(p)?;
    let text = param_str(p, "text");
    let parse_mode = param_str(p, "parse_mode");
    let mut st = sim.lock();
    let Some(chat) = st.chat_json(chat_id) else {
        return Err(ApiFailure::bad_request("Bad Request: chat not found"));
    };
    let visible = check_text(text, parse_mode)?;
    let reply_markup = param_json(p, "reply_markup")?;
    let echoed_markup = check_reply_markup(reply_markup.as_ref())?;
    match st.users.get(&chat_id).map(|u| u.status) {
        Some(UserStatus::Blocked) => {
            return Err(ApiFailure::new(403, "Forbidden: bot was blocked by the user"));
        }
        Some(UserStatus::Deactivated) => {
            return Err(ApiFailure::new(403, "Forbidden: user is deactivated"));
        }
        _ => {}
    }
    let now = Instant::now();
    if let Some(wait) = st.flood_wait(&sim.cfg, chat_id, now) {
        // Whole seconds, rounded up, never 0: a client sleeping for the
        // advertised time must then succeed.
        let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
        let secs = secs.max(1);
        return Err(ApiFailure {
            code: 429,
            description: format!("Too Many Requests: retry after {secs}"),
            retry_after: Some(secs),
        });
    }
    st.record_hit(chat_id, now);
    let message_id = st.take_message_id();
    let mut message = json!({
        "message_id": message_id,
        "from": sim.bot_user_json(),
        "chat": chat,
        "date": unix_now(),
        // Telegram returns the text with the markup already parsed out.
        "text": visible,
    });
    if let Some(markup) = echoed_markup {
        message["reply_markup"] = markup;
    }
    st.bot_messages.insert(message_id, message.clone());
    st.sent.push(SentMessage {
        message_id,
        chat_id,
        text: text.unwrap_or("").to_owned(),
        parse_mode: parse_mode.map(str::to_owned),
        disable_notification: param_bool(p, "disable_notification"),
        reply_markup,
        at: now,
    });
    st.stats.sent += 1;
    drop(st);
    sim.sent_changed.send_modify(|n| *n += 1);
    Ok(message)
}

/// `editMessageText` (`with_text`) and `editMessageReplyMarkup`.
fn edit_message(sim: &Inner, p: &Map<String, Value>, with_text: bool) -> ApiResult {
    if p.contains_key("inline_message_id") {
        return Err(ApiFailure::bad_request("Bad Request: inline messages are not simulated"));
    }
    let chat_id = chat_id_param(p)?;
    let message_id = param_i64(p, "message_id")
        .ok_or_else(|| ApiFailure::bad_request("Bad Request: message identifier is not specified"))?;
    let visible = if with_text { Some(check_text(param_str(p, "text"), param_str(p, "parse_mode"))?) } else { None };
    let markup = param_json(p, "reply_markup")?;
    let echoed = check_reply_markup(markup.as_ref())?;
    let mut st = sim.lock();
    let Some(message) = st.bot_messages.get_mut(&message_id).filter(|m| m["chat"]["id"].as_i64() == Some(chat_id))
    else {
        return Err(ApiFailure::bad_request("Bad Request: message to edit not found"));
    };
    let mut edited = message.clone();
    if let Some(text) = visible {
        edited["text"] = json!(text);
    }
    // An edit without reply_markup removes the keyboard, as on Telegram.
    match echoed {
        Some(m) => edited["reply_markup"] = m,
        None => {
            if let Some(obj) = edited.as_object_mut() {
                obj.remove("reply_markup");
            }
        }
    }
    if let (Some(obj), Some(old)) = (edited.as_object_mut(), message.as_object()) {
        obj.remove("edit_date");
        let mut old = old.clone();
        old.remove("edit_date");
        if *obj == old {
            return Err(ApiFailure::bad_request(DESC_NOT_MODIFIED));
        }
    }
    edited["edit_date"] = json!(unix_now());
    *message = edited.clone();
    Ok(edited)
}

/// Validates Telegram's HTML subset; returns the visible text (tags removed,
/// entities decoded) or the reason Telegram would give. Public so composer tests can
/// hold every rendered message to the same rule the simulator enforces.
pub fn parse_html(text: &str) -> Result<String, String> {
    let mut visible = String::with_capacity(text.len());
    let mut open: Vec<String> = Vec::new();
    let mut i = 0;
    while let Some(c) = text[i..].chars().next() {
        match c {
            '<' => {
                let rest = &text[i..];
                let starts_tag = rest[1..].chars().next().is_some_and(|n| n.is_ascii_alphabetic() || n == '/');
                if !starts_tag {
                    return Err(format!("Unsupported start tag \"\" at byte offset {i}"));
                }
                let end = tag_end(rest).ok_or_else(|| format!("Can't find end of the tag at byte offset {i}"))?;
                let inner = &rest[1..end];
                if let Some(closing) = inner.strip_prefix('/') {
                    let name = closing.trim().to_ascii_lowercase();
                    match open.pop() {
                        Some(expected) if expected == name => {}
                        Some(expected) => {
                            return Err(format!(
                                "Unmatched end tag at byte offset {i}, expected \"</{expected}>\", found \"</{name}>\""
                            ));
                        }
                        None => {
                            return Err(format!("Unexpected end tag at byte offset {i}"));
                        }
                    }
                } else {
                    let name: String = inner
                        .chars()
                        .take_while(|ch| ch.is_ascii_alphanumeric() || *ch == '-')
                        .collect::<String>()
                        .to_ascii_lowercase();
                    if !HTML_TAGS.contains(&name.as_str()) {
                        return Err(format!("Unsupported start tag \"{name}\" at byte offset {i}"));
                    }
                    let attrs = &inner[name.len()..];
                    if name == "span" && !attrs.contains("tg-spoiler") {
                        return Err(format!("Tag \"span\" must have class \"tg-spoiler\" at byte offset {i}"));
                    }
                    open.push(name);
                }
                i += end + 1;
            }
            '&' => {
                let rest = &text[i..];
                let (decoded, len) =
                    html_entity(rest).ok_or_else(|| format!("Unsupported HTML entity at byte offset {i}"))?;
                visible.push(decoded);
                i += len;
            }
            _ => {
                visible.push(c);
                i += c.len_utf8();
            }
        }
    }
    match open.pop() {
        Some(tag) => Err(format!("Can't find end tag corresponding to start tag \"{tag}\"")),
        None => Ok(visible),
    }
}

/// Byte index of the `>` closing the tag that starts `s`, skipping quoted
/// attribute values.
fn tag_end(s: &str) -> Option<usize> {
    let mut quote: Option<char> = None;
    for (idx, c) in s.char_indices().skip(1) {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '"' | '\'') => quote = Some(c),
            (None, '>') => return Some(idx),
            (None, '<') => return None,
            _ => {}
        }
    }
    None
}

/// Decodes the entity at the start of `s` (which begins with `&`): the four
/// named ones Telegram supports, or a numeric one. Returns the character and
/// the entity's length in bytes.
fn html_entity(s: &str) -> Option<(char, usize)> {
    let semi = s.get(..12).unwrap_or(s).find(';')?;
    let name = &s[1..semi];
    let c = match name {
        "lt" => '<',
        "gt" => '>',
        "amp" => '&',
        "quot" => '"',
        _ => {
            let num = name.strip_prefix('#')?;
            let code = match num.strip_prefix(['x', 'X']) {
                Some(hex) => u32::from_str_radix(hex, 16).ok()?,
                None => num.parse().ok()?,
            };
            char::from_u32(code)?
        }
    };
    Some((c, semi + 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn html_subset() {
        assert_eq!(parse_html("<b>x</b> &lt;b&gt;").as_deref(), Ok("x <b>"));
        assert!(parse_html("<b>x").is_err());
        assert!(parse_html("<b><i>x</b></i>").is_err());
        assert!(parse_html("a < b").is_err());
        assert!(parse_html("fish & chips").is_err());
        assert!(parse_html("<div>x</div>").is_err());
        assert!(parse_html("<span>x</span>").is_err());
        assert_eq!(parse_html(r#"<a href="https://e.x/?a=1&b=2">l</a> &#1071;&#x44f;"#).as_deref(), Ok("l Яя"));
        assert_eq!(parse_html(r#"<span class="tg-spoiler">s</span> <tg-spoiler>t</tg-spoiler>"#).as_deref(), Ok("s t"));
        assert_eq!(parse_html("1 > 0").as_deref(), Ok("1 > 0"));
    }

    #[test]
    fn windows() {
        let t0 = Instant::now();
        let mut hits = VecDeque::new();
        assert_eq!(window_wait(&mut hits, Duration::from_secs(1), 1, t0), None);
        hits.push_back(t0);
        let wait = window_wait(&mut hits, Duration::from_secs(1), 1, t0 + Duration::from_millis(400));
        assert_eq!(wait, Some(Duration::from_millis(585)));
        // Within the tolerance of a full window counts as a full window.
        let later = t0 + Duration::from_millis(990);
        assert_eq!(window_wait(&mut hits, Duration::from_secs(1), 1, later), None);
    }

    #[test]
    fn form_decoding() {
        assert_eq!(
            parse_form("chat_id=-5&text=a+b%26c%zz"),
            vec![("chat_id".to_owned(), "-5".to_owned()), ("text".to_owned(), "a b&c%zz".to_owned())]
        );
    }
}
