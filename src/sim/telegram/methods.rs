//! The Bot API methods other than sending, and the types every method
//! answers with.
//!
//! Role: maps `/bot<token>/<method>` to a method after checking the token,
//! and implements `getMe`, `getUpdates`, the webhook and command methods
//! and `answerCallbackQuery` as Telegram does (the rules are listed in the
//! parent module). `sendMessage` and the edits live in `send`.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Map, Value, json};

use super::params::{param_bool, param_i64, param_json, param_str};
use super::send;
use super::state::{Inner, SimWebhook, user_json};

const DESC_TERMINATED: &str =
    "Conflict: terminated by other getUpdates request; make sure that only one bot instance is running";
const DESC_WEBHOOK_ACTIVE: &str =
    "Conflict: can't use getUpdates method while webhook is active; use deleteWebhook to delete the webhook first";

/// A Bot API error reply.
#[derive(Debug, thiserror::Error)]
#[error("{code} {description}")]
pub(super) struct ApiFailure {
    pub(super) code: u16,
    pub(super) description: String,
    pub(super) retry_after: Option<u64>,
}

impl ApiFailure {
    pub(super) fn new(code: u16, description: impl Into<String>) -> Self {
        Self { code, description: description.into(), retry_after: None }
    }

    pub(super) fn bad_request(description: impl Into<String>) -> Self {
        Self::new(400, description)
    }

    pub(super) fn too_many_requests(retry_after: u64) -> Self {
        Self {
            code: 429,
            description: format!("Too Many Requests: retry after {retry_after}"),
            retry_after: Some(retry_after),
        }
    }
}

pub(super) type ApiResult = Result<Value, ApiFailure>;

/// What the HTTP side does with a request once a method has decided.
pub(super) enum Outcome {
    /// Answer at once.
    Now(ApiResult),
    /// An accepted message, already recorded as sent: answer after this
    /// delay (the configured latency).
    Delayed(Value, Duration),
    /// Close the connection without any answer, after holding it this long
    /// (an injected Stall or Reset).
    HangUp(Duration),
}

impl From<ApiResult> for Outcome {
    fn from(result: ApiResult) -> Self {
        Outcome::Now(result)
    }
}

pub(super) async fn dispatch(sim: &Arc<Inner>, bot: &str, method: &str, p: &Map<String, Value>) -> Outcome {
    // Telegram answers a URL that is not `/bot<token>/…` with 404.
    let Some(token) = bot.strip_prefix("bot") else {
        return Err(ApiFailure::new(404, "Not Found")).into();
    };
    if token != sim.cfg.token || sim.revoked.load(std::sync::atomic::Ordering::SeqCst) {
        return Err(ApiFailure::new(401, "Unauthorized")).into();
    }
    // Telegram matches method names case-insensitively.
    let result = match method.to_ascii_lowercase().as_str() {
        "sendmessage" => return send::send_message(sim, p),
        "getme" => Ok(get_me(sim)),
        "getupdates" => get_updates(sim, p).await,
        "getwebhookinfo" => Ok(get_webhook_info(sim)),
        "setwebhook" => set_webhook(sim, p),
        "deletewebhook" => Ok(delete_webhook(sim, p)),
        "setmycommands" => set_my_commands(sim, p),
        "getmycommands" => get_my_commands(sim, p),
        "deletemycommands" => delete_my_commands(sim, p),
        "getchatmember" => get_chat_member(sim, p),
        "answercallbackquery" => answer_callback_query(sim, p),
        "editmessagetext" => send::edit_message(sim, p, true),
        "editmessagereplymarkup" => send::edit_message(sim, p, false),
        _ => Err(ApiFailure::new(404, "Not Found")),
    };
    result.into()
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
    let allowed = allowed_updates(p)?;
    let deadline = tokio::time::Instant::now() + timeout;
    // Subscribe before the first look so an update queued in between still
    // wakes this poll.
    let mut changed = sim.updates_changed.subscribe();
    let generation = {
        let mut st = sim.lock();
        if st.webhook.is_some() {
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
                st.stats.poll_conflicts += 1;
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
    let mut info = json!({
        "url": st.webhook.as_ref().map_or("", |w| w.url.as_str()),
        "has_custom_certificate": false,
        "pending_update_count": st.updates.len(),
    });
    if let Some((date, message)) = st.webhook.as_ref().and_then(|w| w.last_error.clone()) {
        info["last_error_date"] = json!(date);
        info["last_error_message"] = json!(message);
    }
    if let Some(allowed) = &st.allowed_updates {
        info["allowed_updates"] = json!(allowed);
    }
    info
}

/// Ports Telegram delivers webhooks to.
const WEBHOOK_PORTS: [u16; 4] = [443, 80, 88, 8443];

fn set_webhook(sim: &Inner, p: &Map<String, Value>) -> ApiResult {
    let url = param_str(p, "url").unwrap_or("");
    let secret = param_str(p, "secret_token").unwrap_or("");
    let allowed = allowed_updates(p)?;
    if !url.is_empty() {
        let parsed = reqwest::Url::parse(url)
            .map_err(|_| ApiFailure::bad_request("Bad Request: bad webhook: Failed to resolve host"))?;
        if parsed.scheme() != "https" {
            return Err(ApiFailure::bad_request("Bad Request: bad webhook: An HTTPS URL must be provided for webhook"));
        }
        if !WEBHOOK_PORTS.contains(&parsed.port_or_known_default().unwrap_or(0)) {
            return Err(ApiFailure::bad_request(
                "Bad Request: bad webhook: Webhook can be set up only on ports 80, 88, 443 or 8443",
            ));
        }
    }
    let secret_ok = secret.len() <= 256 && secret.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if !secret_ok {
        return Err(ApiFailure::bad_request("Bad Request: secret token contains unallowed characters"));
    }
    let mut st = sim.lock();
    st.webhook =
        (!url.is_empty()).then(|| SimWebhook { url: url.to_owned(), secret: secret.to_owned(), last_error: None });
    if let Some(allowed) = allowed {
        st.allowed_updates = Some(allowed);
    }
    if param_bool(p, "drop_pending_updates") {
        st.updates.clear();
    }
    drop(st);
    // A terminated poll and the delivery loop both look again.
    sim.updates_changed.send_modify(|n| *n += 1);
    Ok(json!(true))
}

fn delete_webhook(sim: &Inner, p: &Map<String, Value>) -> Value {
    let mut st = sim.lock();
    st.webhook = None;
    if param_bool(p, "drop_pending_updates") {
        st.updates.clear();
    }
    json!(true)
}

/// `allowed_updates` as a list of kinds, when given.
fn allowed_updates(p: &Map<String, Value>) -> Result<Option<Vec<String>>, ApiFailure> {
    match param_json(p, "allowed_updates")? {
        None => Ok(None),
        Some(Value::Array(kinds)) => Ok(Some(kinds.iter().filter_map(|k| k.as_str().map(str::to_owned)).collect())),
        Some(_) => Err(ApiFailure::bad_request("Bad Request: can't parse allowed updates")),
    }
}

/// `getChatMember`: a group's member as an administrator or a plain member (every
/// user counts as a member of a group the simulator knows).
fn get_chat_member(sim: &Inner, p: &Map<String, Value>) -> ApiResult {
    let Some(chat) = param_i64(p, "chat_id") else {
        return Err(ApiFailure::bad_request("Bad Request: chat not found"));
    };
    let Some(user) = param_i64(p, "user_id") else {
        return Err(ApiFailure::bad_request("Bad Request: invalid user_id specified"));
    };
    let st = sim.lock();
    if !st.groups.contains_key(&chat) {
        return Err(ApiFailure::bad_request("Bad Request: chat not found"));
    }
    let user_json = match st.users.get(&user) {
        Some(u) => user_json(user, u),
        None => json!({"id": user, "is_bot": false, "first_name": format!("Member {user}")}),
    };
    let mut member = json!({"user": user_json});
    if st.group_admins.contains(&(chat, user)) {
        // Telegram's ChatMemberAdministrator: every right is stated.
        member["status"] = json!("administrator");
        member["can_be_edited"] = json!(false);
        member["is_anonymous"] = json!(false);
        for right in [
            "can_manage_chat",
            "can_change_info",
            "can_delete_messages",
            "can_manage_video_chats",
            "can_invite_users",
            "can_restrict_members",
            "can_pin_messages",
            "can_promote_members",
            "can_post_stories",
            "can_edit_stories",
            "can_delete_stories",
        ] {
            member[right] = json!(true);
        }
    } else {
        member["status"] = json!("member");
    }
    Ok(member)
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
