//! The Bot API calls the bot itself makes (not `sendMessage`, which is the Telegram
//! channel's), over our own HTTP exchange: `getUpdates` with a 64-bit offset (the
//! ids pass `i32::MAX` on a long-lived bot, where teloxide's offset is an `i32`),
//! `getMe`, `getChatMember`, `answerCallbackQuery` and the webhook methods.
//!
//! Updates are read into the few fields the bot uses ([`RawUpdate`]), so an update
//! of a kind or shape nobody here knows still has its id read and is confirmed.
//! URLs carry the token, so no error here ever includes one.

use std::time::Duration;

use serde::Deserialize;
use serde_json::{Value, json};

use crate::channels::telegram::network_error;
use crate::config::secret::Secret;
use crate::credentials::CredentialCheck;

/// The update kinds the bot asks for (`allowed_updates` of getUpdates and setWebhook).
/// `my_chat_member` tells at once that a resident blocked the bot or a group removed
/// it, rather than at the next message's 403.
pub const ALLOWED_UPDATES: [&str; 4] = ["message", "edited_message", "callback_query", "my_chat_member"];

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("network: {0}")]
    Network(String),
    /// Telegram answered with an error envelope (or a non-2xx status).
    #[error("HTTP {code}: {description}")]
    Refused { code: u16, description: String, retry_after: Option<u64> },
    #[error("unreadable answer: {0}")]
    Decode(String),
    #[error("telegram api_url: {0}")]
    Url(String),
}

impl ApiError {
    /// 409 because a webhook is set: polling needs `deleteWebhook` first.
    pub fn is_webhook_conflict(&self) -> bool {
        matches!(self, ApiError::Refused { code: 409, description, .. } if description.contains("webhook"))
    }
}

/// One update, as far as the bot reads it.
#[derive(Clone, Debug, Deserialize)]
pub struct RawUpdate {
    pub update_id: i64,
    pub message: Option<RawMessage>,
    pub edited_message: Option<RawMessage>,
    pub callback_query: Option<RawCallback>,
    pub my_chat_member: Option<RawMemberUpdate>,
}

#[derive(Clone, Debug, Deserialize)]
pub struct RawMessage {
    pub message_id: i64,
    pub chat: RawChat,
    pub from: Option<RawUser>,
    pub text: Option<String>,
    pub location: Option<RawLocation>,
    pub contact: Option<RawContact>,
    pub reply_to_message: Option<Box<RawMessage>>,
    /// The forum topic (with `is_topic_message`) or, in a supergroup without topics,
    /// the reply thread the message belongs to.
    pub message_thread_id: Option<i64>,
    /// The message is in a forum topic: `message_thread_id` names the topic.
    #[serde(default)]
    pub is_topic_message: bool,
}

#[derive(Clone, Debug, Deserialize)]
pub struct RawChat {
    pub id: i64,
    #[serde(rename = "type")]
    pub kind: String,
}

#[derive(Clone, Debug, Deserialize)]
pub struct RawUser {
    pub id: i64,
    #[serde(default)]
    pub is_bot: bool,
    pub username: Option<String>,
    pub language_code: Option<String>,
}

#[derive(Clone, Debug, Deserialize)]
pub struct RawLocation {
    pub latitude: f64,
    pub longitude: f64,
}

#[derive(Clone, Debug, Deserialize)]
pub struct RawContact {
    pub phone_number: String,
    pub user_id: Option<i64>,
}

/// `my_chat_member`: the bot's own status in a chat changed.
#[derive(Clone, Debug, Deserialize)]
pub struct RawMemberUpdate {
    pub chat: RawChat,
    pub old_chat_member: RawMember,
    pub new_chat_member: RawMember,
}

#[derive(Clone, Debug, Deserialize)]
pub struct RawMember {
    /// `creator`, `administrator`, `member`, `restricted`, `left` or `kicked`.
    pub status: String,
}

#[derive(Clone, Debug, Deserialize)]
pub struct RawCallback {
    pub id: String,
    pub from: RawUser,
    pub message: Option<RawMessage>,
    pub data: Option<String>,
}

/// Reads one update; `None` when even its id cannot be read.
pub fn read_update(value: &Value) -> Option<(i64, Option<RawUpdate>)> {
    let id = value.get("update_id")?.as_i64()?;
    Some((id, serde_json::from_value(value.clone()).ok()))
}

#[derive(Deserialize)]
struct Envelope {
    ok: bool,
    result: Option<Value>,
    error_code: Option<u16>,
    description: Option<String>,
    parameters: Option<Parameters>,
}

#[derive(Deserialize)]
struct Parameters {
    retry_after: Option<u64>,
}

/// The bot's own Bot API client. Cheap to clone.
#[derive(Clone)]
pub struct BotApi {
    http: reqwest::Client,
    /// `{api_url}/bot<token>/`: a secret, never printed.
    base: reqwest::Url,
    /// Told of every call whether Telegram accepted the token, refused it (401) or
    /// could not be reached: getMe refused at start stops the daemon
    /// (`crate::credentials`), and `/readyz` reads it.
    credential: Option<CredentialCheck>,
}

impl std::fmt::Debug for BotApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BotApi")
    }
}

impl BotApi {
    /// A client whose time limit outlasts a long poll of `long_poll`.
    pub fn new(token: &Secret, api_url: &str, long_poll: Duration) -> Result<BotApi, ApiError> {
        let mut base = reqwest::Url::parse(api_url).map_err(|e| ApiError::Url(format!("`{api_url}`: {e}")))?;
        let path = format!("{}/bot{}/", base.path().trim_end_matches('/'), token.expose());
        base.set_path(&path);
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .timeout(long_poll + Duration::from_secs(15))
            .build()
            .map_err(|e| ApiError::Network(e.to_string()))?;
        Ok(BotApi { http, base, credential: None })
    }

    /// Reports what each call says of the token to `check`.
    pub fn with_credential(mut self, check: CredentialCheck) -> BotApi {
        self.credential = Some(check);
        self
    }

    async fn call(&self, method: &str, params: Value, timeout: Option<Duration>) -> Result<Value, ApiError> {
        let answer = self.exchange(method, params, timeout).await;
        if let Some(check) = &self.credential {
            match &answer {
                Ok(_) => check.accepted(),
                Err(ApiError::Refused { code: 401, .. }) => check.refused(401),
                Err(ApiError::Refused { code, .. }) if *code < 500 => check.accepted(),
                Err(e @ (ApiError::Refused { .. } | ApiError::Network(_) | ApiError::Decode(_))) => {
                    check.unreachable(e.to_string());
                }
                Err(ApiError::Url(_)) => {}
            }
        }
        answer
    }

    async fn exchange(&self, method: &str, params: Value, timeout: Option<Duration>) -> Result<Value, ApiError> {
        let url = self.base.join(method).map_err(|e| ApiError::Url(e.to_string()))?;
        let mut request = self.http.post(url).json(&params);
        if let Some(t) = timeout {
            request = request.timeout(t);
        }
        let response = request.send().await.map_err(|e| ApiError::Network(network_error(&e)))?;
        let status = response.status();
        let body = response.bytes().await.map_err(|e| ApiError::Network(network_error(&e)))?;
        let envelope: Envelope = serde_json::from_slice(&body)
            .map_err(|_| ApiError::Decode(format!("HTTP {} with a body that is not the Bot API's", status.as_u16())))?;
        if status.is_success() && envelope.ok {
            return Ok(envelope.result.unwrap_or(Value::Null));
        }
        Err(ApiError::Refused {
            code: envelope.error_code.unwrap_or(status.as_u16()),
            description: envelope.description.unwrap_or_default(),
            retry_after: envelope.parameters.and_then(|p| p.retry_after),
        })
    }

    /// One long poll: updates from `offset` on, waiting up to `timeout`. Each is the
    /// raw JSON, read with [`read_update`].
    pub async fn get_updates(&self, offset: i64, timeout: Duration) -> Result<Vec<Value>, ApiError> {
        let params = json!({
            "offset": offset,
            "timeout": timeout.as_secs(),
            "allowed_updates": ALLOWED_UPDATES,
        });
        match self.call("getUpdates", params, None).await? {
            Value::Array(updates) => Ok(updates),
            other => Err(ApiError::Decode(format!("getUpdates result is not a list: {}", kind_of(&other)))),
        }
    }

    /// The bot's own user id and username.
    pub async fn get_me(&self) -> Result<(i64, String), ApiError> {
        let me = self.call("getMe", json!({}), Some(Duration::from_secs(10))).await?;
        let id = me.get("id").and_then(Value::as_i64).ok_or_else(|| ApiError::Decode("getMe has no id".into()))?;
        let name = me.get("username").and_then(Value::as_str).unwrap_or_default().to_owned();
        Ok((id, name))
    }

    /// The member's status in the chat: `creator`, `administrator`, `member`, …
    pub async fn chat_member_status(&self, chat: i64, user: i64) -> Result<String, ApiError> {
        let params = json!({"chat_id": chat, "user_id": user});
        let member = self.call("getChatMember", params, Some(Duration::from_secs(10))).await?;
        Ok(member.get("status").and_then(Value::as_str).unwrap_or_default().to_owned())
    }

    /// Stops a pressed button's spinner.
    pub async fn answer_callback_query(&self, id: &str) -> Result<(), ApiError> {
        self.call("answerCallbackQuery", json!({"callback_query_id": id}), Some(Duration::from_secs(10))).await?;
        Ok(())
    }

    /// Registers the webhook: Telegram then POSTs updates to `url` with `secret` in
    /// `X-Telegram-Bot-Api-Secret-Token`.
    pub async fn set_webhook(&self, url: &str, secret: &Secret) -> Result<(), ApiError> {
        let params = json!({"url": url, "secret_token": secret.expose(), "allowed_updates": ALLOWED_UPDATES});
        self.call("setWebhook", params, Some(Duration::from_secs(30))).await?;
        Ok(())
    }

    /// Removes the webhook, keeping the pending updates for `getUpdates`.
    pub async fn delete_webhook(&self) -> Result<(), ApiError> {
        self.call("deleteWebhook", json!({}), Some(Duration::from_secs(30))).await?;
        Ok(())
    }
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_past_i32_and_u32_are_read_and_odd_updates_keep_their_id() {
        let big = json!({"update_id": 2_147_483_647_i64, "message": {"message_id": 1, "chat": {"id": 5, "type": "private"}, "text": "hi"}});
        let (id, update) = read_update(&big).expect("id");
        assert_eq!(id, 2_147_483_647);
        assert_eq!(update.and_then(|u| u.message).and_then(|m| m.text).as_deref(), Some("hi"));
        let huge = json!({"update_id": 5_000_000_000_i64, "poll": {"id": "x"}});
        let (id, update) = read_update(&huge).expect("id");
        assert_eq!(id, 5_000_000_000);
        assert!(update.is_some_and(|u| u.message.is_none() && u.callback_query.is_none()));
        let broken = json!({"update_id": 7, "message": {"chat": "nonsense"}});
        assert_eq!(read_update(&broken).map(|(id, u)| (id, u.is_none())), Some((7, true)));
        assert!(read_update(&json!({"message": {}})).is_none());
    }

    #[test]
    fn the_token_never_shows() {
        let api =
            BotApi::new(&Secret::new("123:SECRET"), "http://127.0.0.1:9/api", Duration::from_secs(1)).expect("api");
        assert_eq!(api.base.path(), "/api/bot123:SECRET/");
        assert_eq!(format!("{api:?}"), "BotApi");
    }
}
