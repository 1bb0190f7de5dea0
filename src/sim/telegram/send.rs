//! `sendMessage` and the edits: the path every alert takes.
//!
//! Role: the checks Telegram makes on a message, in the order it makes them
//! (listed in the parent module), the flood limits with their paid-broadcast
//! ceiling, channels, the record of what was accepted, and where injected
//! faults and the configured latency come in.

use std::time::{Duration, Instant};

use serde_json::{Map, Value, json};

use super::SentMessage;
use super::html::parse_html;
use super::methods::{ApiFailure, ApiResult, Outcome};
use super::params::{param_bool, param_i64, param_json, param_str};
use super::state::{GroupKind, Inner, SimState, UserStatus, unix_now};

/// Telegram's limit on a message's text, counted in UTF-16 code units after
/// entity parsing.
const MAX_TEXT_UTF16: usize = 4096;

/// Telegram's limit on `callback_data`, in bytes.
const MAX_CALLBACK_DATA_BYTES: usize = 64;

const DESC_NOT_MODIFIED: &str = "Bad Request: message is not modified: specified new message content and reply markup are exactly the same as a current content and reply markup of the message";
const DESC_NOT_CHANNEL_ADMIN: &str = "Forbidden: bot is not a member of the channel chat";

pub(super) fn send_message(sim: &Inner, p: &Map<String, Value>) -> Outcome {
    let accepted = {
        let mut st = sim.lock();
        // The fault comes before every check: a broken path to Telegram
        // fails a request whatever it says, and a faulted request must not
        // use up a limit it never reached.
        let target = resolve_chat(&st, p).ok();
        if let Some(fault) = st.faults.draw(target) {
            return fault.outcome();
        }
        accept_message(sim, &mut st, p)
    };
    match accepted {
        Ok(message) => {
            sim.sent_changed.send_modify(|n| *n += 1);
            if sim.cfg.latency.is_zero() {
                Outcome::Now(Ok(message))
            } else {
                Outcome::Delayed(message, sim.cfg.latency)
            }
        }
        Err(failure) => Outcome::Now(Err(failure)),
    }
}

/// Runs Telegram's checks and, if all pass, records the message as sent and
/// returns the Message object Telegram would answer with.
fn accept_message(sim: &Inner, st: &mut SimState, p: &Map<String, Value>) -> ApiResult {
    let chat_id = resolve_chat(st, p)?;
    let text = param_str(p, "text");
    let parse_mode = param_str(p, "parse_mode");
    let Some(chat) = st.chat_json(chat_id) else {
        return Err(ApiFailure::bad_request("Bad Request: chat not found"));
    };
    let thread = check_thread(st, chat_id, p)?;
    let visible = check_text(text, parse_mode)?;
    let reply_markup = param_json(p, "reply_markup")?;
    let echoed_markup = check_reply_markup(reply_markup.as_ref())?;
    check_reachable(st, chat_id)?;
    let paid = param_bool(p, "allow_paid_broadcast");
    let now = Instant::now();
    if let Some(wait) = st.flood_wait(&sim.cfg, chat_id, paid, now) {
        return Err(ApiFailure::too_many_requests(retry_after_secs(wait)));
    }
    st.record_hit(chat_id, now);
    let message_id = st.take_message_id();
    let mut message = json!({
        "message_id": message_id,
        "chat": chat,
        "date": unix_now(),
        // Telegram returns the text with the markup already parsed out.
        "text": visible,
    });
    // A channel post is sent on behalf of the channel: Telegram names the
    // channel as `sender_chat` and gives no `from`.
    if st.channels.contains_key(&chat_id) {
        message["sender_chat"] = message["chat"].clone();
    } else {
        message["from"] = sim.bot_user_json();
    }
    if let Some(markup) = echoed_markup {
        message["reply_markup"] = markup;
    }
    if let Some(thread) = thread {
        message["message_thread_id"] = json!(thread);
        message["is_topic_message"] = json!(true);
    }
    st.bot_messages.insert(message_id, message.clone());
    st.sent.push(SentMessage {
        message_id,
        chat_id,
        text: text.unwrap_or("").to_owned(),
        parse_mode: parse_mode.map(str::to_owned),
        disable_notification: param_bool(p, "disable_notification"),
        reply_markup,
        message_thread_id: thread,
        at: now,
    });
    st.stats.sent += 1;
    if paid {
        st.stats.paid += 1;
    }
    Ok(message)
}

/// Whole seconds, rounded up, never 0: a client sleeping for the advertised
/// time must then succeed.
fn retry_after_secs(wait: Duration) -> u64 {
    let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    secs.max(1)
}

/// The numeric id `chat_id` names: a number (JSON or string), or a channel's
/// `"@username"`, which is the only kind of chat Telegram resolves by name.
fn resolve_chat(st: &SimState, p: &Map<String, Value>) -> Result<i64, ApiFailure> {
    let not_found = || ApiFailure::bad_request("Bad Request: chat not found");
    match p.get("chat_id") {
        None | Some(Value::Null) => Err(ApiFailure::bad_request("Bad Request: chat_id is empty")),
        Some(Value::String(s)) if s.trim_start().starts_with('@') => {
            let username = s.trim().trim_start_matches('@');
            st.channel_by_username(username).ok_or_else(not_found)
        }
        _ => param_i64(p, "chat_id").ok_or_else(not_found),
    }
}

/// `message_thread_id`: a topic of that forum, or 400 as Telegram answers for
/// any other id (a reply thread's, the General topic's 1, a deleted topic's).
fn check_thread(st: &SimState, chat_id: i64, p: &Map<String, Value>) -> Result<Option<i64>, ApiFailure> {
    if p.get("message_thread_id").is_none_or(Value::is_null) {
        return Ok(None);
    }
    let thread = param_i64(p, "message_thread_id");
    let known = thread.is_some_and(|t| {
        st.groups.get(&chat_id).is_some_and(|g| g.kind == GroupKind::Forum && g.topics.contains_key(&t))
    });
    if known { Ok(thread) } else { Err(ApiFailure::bad_request("Bad Request: message thread not found")) }
}

/// 403 when Telegram would not deliver to this chat at all.
fn check_reachable(st: &SimState, chat_id: i64) -> Result<(), ApiFailure> {
    match st.users.get(&chat_id).map(|u| u.status) {
        Some(UserStatus::Blocked) => return Err(ApiFailure::new(403, "Forbidden: bot was blocked by the user")),
        Some(UserStatus::Deactivated) => return Err(ApiFailure::new(403, "Forbidden: user is deactivated")),
        Some(UserStatus::Active) | None => {}
    }
    if let Some(g) = st.groups.get(&chat_id).filter(|g| g.bot_kicked) {
        let what = if g.kind == GroupKind::Basic { "group" } else { "supergroup" };
        return Err(ApiFailure::new(403, format!("Forbidden: bot was kicked from the {what} chat")));
    }
    if st.channels.get(&chat_id).is_some_and(|c| !c.bot_is_admin) {
        return Err(ApiFailure::new(403, DESC_NOT_CHANNEL_ADMIN));
    }
    Ok(())
}

/// `editMessageText` (`with_text`) and `editMessageReplyMarkup`.
pub(super) fn edit_message(sim: &Inner, p: &Map<String, Value>, with_text: bool) -> ApiResult {
    if p.contains_key("inline_message_id") {
        return Err(ApiFailure::bad_request("Bad Request: inline messages are not simulated"));
    }
    // Resolved under a short lock of its own: the checks below need none.
    let chat_id = resolve_chat(&sim.lock(), p)?;
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
