//! Telegram: `sendMessage` for private chats and region channels.
//!
//! The request body is teloxide's own `SendMessage` payload and a successful answer is
//! read as teloxide's `Message`, but the HTTP exchange is ours: teloxide's client drops
//! the HTTP status and the envelope's `error_code`, and sleeps ten seconds on every 5xx
//! before reading it, so a `500 {"description":"Internal error"}` cannot be told from a
//! 400 by its text and would block a send task for longer than its timeout. Here the
//! status decides first ([`classify`]), then the envelope, then teloxide's parsing of
//! the description into [`ApiError`] variants.
//!
//! The sending client has its own timeout (`send_timeout`), separate from the bot's
//! long poll ([`bot`]). Bot API URLs carry the token, so no error text here ever
//! includes a URL.

use std::time::Duration;

use reqwest::StatusCode;
use serde::Deserialize;
use teloxide::ApiError;
use teloxide::payloads::SendMessage;
use teloxide::prelude::*;
use teloxide::types::{
    ButtonRequest, InlineKeyboardButton, InlineKeyboardMarkup, KeyboardButton, KeyboardMarkup, KeyboardRemove,
    LinkPreviewOptions, MessageId, ParseMode, Recipient, ReplyMarkup, ThreadId,
};

use super::{Address, Channel, ChannelRef, Keyboard, LimitScope, Outgoing, ReplyButton, SendError, Sent};
use crate::config::secret::Secret;

/// When a 429 carries no `retry_after`, wait this long.
const DEFAULT_RETRY_AFTER: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
pub enum TelegramSetupError {
    #[error("telegram api_url `{0}`: {1}")]
    Url(String, String),
    #[error("HTTP client: {0}")]
    Client(String),
}

fn parse_url(api_url: &str) -> Result<reqwest::Url, TelegramSetupError> {
    reqwest::Url::parse(api_url).map_err(|e| TelegramSetupError::Url(api_url.to_owned(), e.to_string()))
}

/// Sends through one bot. Cheap to clone.
#[derive(Clone)]
pub struct TelegramChannel {
    http: reqwest::Client,
    /// `{api_url}/bot<token>/sendMessage`: a secret, never printed.
    send_url: reqwest::Url,
    /// Told whether Telegram accepted the token on each answer (401: refused), so a
    /// revoked token is noticed in webhook mode too (`crate::credentials`).
    credential: Option<crate::credentials::CredentialCheck>,
}

impl std::fmt::Debug for TelegramChannel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TelegramChannel")
    }
}

impl TelegramChannel {
    pub fn new(token: &Secret, api_url: &str, send_timeout: Duration) -> Result<Self, TelegramSetupError> {
        let base = parse_url(api_url)?;
        let path = format!("{}/bot{}/sendMessage", base.path().trim_end_matches('/'), token.expose());
        let mut send_url = base;
        send_url.set_path(&path);
        let http = reqwest::Client::builder()
            .connect_timeout(send_timeout.min(Duration::from_secs(5)))
            .timeout(send_timeout)
            .pool_max_idle_per_host(64)
            .build()
            .map_err(|e| TelegramSetupError::Client(e.to_string()))?;
        Ok(TelegramChannel { http, send_url, credential: None })
    }

    /// Reports what each answer says of the token to `check`.
    pub fn with_credential(mut self, check: crate::credentials::CredentialCheck) -> Self {
        self.credential = Some(check);
        self
    }

    /// Sends into a forum topic (`message_thread_id`) when `thread` is set: the bot's
    /// answer to a question asked in a topic. [`Channel::send`] is this without one.
    pub async fn send_in_thread(&self, message: Outgoing<'_>, thread: Option<i32>) -> Result<Sent, SendError> {
        let mut payload = Self::payload(&message)?;
        payload.message_thread_id = thread.map(|t| ThreadId(MessageId(t)));
        let answer = async {
            let response = self.http.post(self.send_url.clone()).json(&payload).send().await?;
            let status = response.status();
            Ok::<_, reqwest::Error>((status, response.bytes().await?))
        };
        let (status, body) = match answer.await {
            Ok(answer) => answer,
            Err(e) => {
                let why = format!("network: {}", network_error(&e));
                if let Some(check) = &self.credential {
                    check.unreachable(why.clone());
                }
                return Err(SendError::Transient(why));
            }
        };
        if let Some(check) = &self.credential {
            match token_word(status, &body) {
                Some(true) => check.accepted(),
                Some(false) => check.refused(401),
                None => check.unreachable(format!("HTTP {}", status.as_u16())),
            }
        }
        classify(status, &body)
    }

    fn payload(message: &Outgoing<'_>) -> Result<SendMessage, SendError> {
        let chat = match message.to {
            Address::TelegramChat(id) | Address::TelegramChannel(ChannelRef::Id(id)) => Recipient::Id(ChatId(*id)),
            Address::TelegramChannel(ChannelRef::Username(name)) => Recipient::ChannelUsername(format!("@{name}")),
            Address::Phone(_) => {
                return Err(SendError::Rejected(format!("{} is not a Telegram address", message.to.masked())));
            }
        };
        let mut p = SendMessage::new(chat, message.text);
        p.parse_mode = Some(ParseMode::Html);
        p.disable_notification = Some(message.silent);
        p.link_preview_options = Some(LinkPreviewOptions {
            is_disabled: true,
            url: None,
            prefer_small_media: false,
            prefer_large_media: false,
            show_above_text: false,
        });
        if message.paid {
            p.allow_paid_broadcast = Some(true);
        }
        p.reply_markup = markup(message.keyboard);
        Ok(p)
    }
}

/// A [`Keyboard`] as Telegram's `reply_markup`.
fn markup(keyboard: &Keyboard) -> Option<ReplyMarkup> {
    match keyboard {
        Keyboard::None => None,
        Keyboard::Inline(rows) => {
            let rows = rows.iter().map(|row| {
                row.iter().map(|b| InlineKeyboardButton::callback(b.label.clone(), b.data.clone())).collect::<Vec<_>>()
            });
            Some(InlineKeyboardMarkup::new(rows).into())
        }
        Keyboard::Reply(rows) => {
            let rows = rows.iter().map(|row| {
                row.iter()
                    .map(|b| match b {
                        ReplyButton::Text(t) => KeyboardButton::new(t.clone()),
                        ReplyButton::Location(t) => KeyboardButton::new(t.clone()).request(ButtonRequest::Location),
                        ReplyButton::Contact(t) => KeyboardButton::new(t.clone()).request(ButtonRequest::Contact),
                    })
                    .collect::<Vec<_>>()
            });
            Some(KeyboardMarkup::new(rows).one_time_keyboard().resize_keyboard().into())
        }
        Keyboard::Remove => Some(KeyboardRemove::new().into()),
    }
}

#[async_trait::async_trait]
impl Channel for TelegramChannel {
    async fn send(&self, message: Outgoing<'_>) -> Result<Sent, SendError> {
        self.send_in_thread(message, None).await
    }
}

#[derive(Deserialize)]
struct Envelope {
    ok: bool,
    result: Option<serde_json::Value>,
    error_code: Option<u16>,
    description: Option<String>,
    parameters: Option<Parameters>,
}

#[derive(Deserialize)]
struct Parameters {
    retry_after: Option<u64>,
    migrate_to_chat_id: Option<i64>,
}

/// What an answer says of the token: refused (401), accepted (any other answer in the
/// Bot API's envelope below 500), or nothing (Telegram's own trouble, a proxy's page).
fn token_word(status: StatusCode, body: &[u8]) -> Option<bool> {
    let code = serde_json::from_slice::<Envelope>(body).ok().map(|e| e.error_code.unwrap_or(status.as_u16()));
    match code {
        _ if status == StatusCode::UNAUTHORIZED => Some(false),
        Some(401) => Some(false),
        Some(code) if code < 500 && !status.is_server_error() => Some(true),
        _ => None,
    }
}

/// Sorts one `sendMessage` answer into what happened, by HTTP status first.
pub fn classify(status: StatusCode, body: &[u8]) -> Result<Sent, SendError> {
    let Ok(envelope) = serde_json::from_slice::<Envelope>(body) else {
        // The Bot API always answers with its JSON envelope; anything else came from
        // a proxy or a half-written answer and says nothing about the message.
        return Err(SendError::Transient(format!("HTTP {} with a body that is not the Bot API's", status.as_u16())));
    };
    let code = envelope.error_code.unwrap_or(status.as_u16());
    let description = envelope.description.clone().unwrap_or_default();
    if status.is_success() && envelope.ok {
        let result = envelope.result.unwrap_or_default();
        // The message is out; a result teloxide cannot read must not cause a resend.
        let platform_id = match serde_json::from_value::<Message>(result.clone()) {
            Ok(m) => m.id.0.to_string(),
            Err(_) => result.get("message_id").map(|v| v.to_string()).unwrap_or_else(|| "?".into()),
        };
        return Ok(Sent { platform_id });
    }
    let params = envelope.parameters;
    if status == StatusCode::TOO_MANY_REQUESTS || code == 429 {
        let retry_after = params
            .as_ref()
            .and_then(|p| p.retry_after)
            .map(|s| Duration::from_secs(s.max(1)))
            .unwrap_or(DEFAULT_RETRY_AFTER);
        // Telegram does not say which limit was hit. Treating every 429 as bot-wide
        // costs at most `retry_after` of throughput; sending to other chats inside a
        // bot-wide wait extends the ban and loses messages to it.
        return Err(SendError::RateLimited { scope: LimitScope::Channel, retry_after });
    }
    if let Some(to) = params.as_ref().and_then(|p| p.migrate_to_chat_id) {
        return Err(SendError::Migrated(to.to_string()));
    }
    if status.is_server_error() || code >= 500 {
        return Err(SendError::Transient(format!("HTTP {code}: {description}")));
    }
    match code {
        401 => Err(SendError::Transient("HTTP 401: the bot token is not accepted".into())),
        404 => Err(SendError::Transient("HTTP 404: check telegram api_url and the bot token".into())),
        408 => Err(SendError::Transient(format!("HTTP 408: {description}"))),
        403 => Err(SendError::RecipientGone(description)),
        400 => {
            let parsed: Option<ApiError> = serde_json::from_value(serde_json::Value::String(description.clone())).ok();
            match parsed {
                Some(
                    ApiError::ChatNotFound
                    | ApiError::UserNotFound
                    | ApiError::GroupDeactivated
                    | ApiError::CantInitiateConversation
                    | ApiError::CantTalkWithBots,
                ) => Err(SendError::RecipientGone(description)),
                _ => Err(SendError::Rejected(format!("HTTP 400: {description}"))),
            }
        }
        other => Err(SendError::Rejected(format!("HTTP {other}: {description}"))),
    }
}

/// A network failure for a log line. reqwest's own message names the URL, and a Bot
/// API URL carries the bot token, so it is described by its causes instead.
pub(crate) fn network_error(e: &reqwest::Error) -> String {
    let what = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "cannot connect"
    } else {
        "request failed"
    };
    let mut out = what.to_owned();
    let mut cause = std::error::Error::source(e);
    while let Some(c) = cause {
        out.push_str(": ");
        out.push_str(&c.to_string());
        cause = c.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(status: u16, body: &str) -> Result<Sent, SendError> {
        classify(StatusCode::from_u16(status).expect("status"), body.as_bytes())
    }

    const SENT: &str = r#"{"ok":true,"result":{"message_id":7,"date":1700000000,"chat":{"id":5,"type":"private","first_name":"A"},"text":"x"}}"#;

    #[test]
    fn status_decides_before_the_description() {
        assert_eq!(check(200, SENT), Ok(Sent { platform_id: "7".into() }));
        // The regression: a 500 whose description is not a known phrase was failed
        // for good. By status it is a server error, so it is retried.
        assert!(matches!(
            check(500, r#"{"ok":false,"error_code":500,"description":"Internal error"}"#),
            Err(SendError::Transient(_))
        ));
        assert!(matches!(check(502, "<html>Bad Gateway</html>"), Err(SendError::Transient(_))));
        assert!(matches!(check(200, "{\"ok\":tr"), Err(SendError::Transient(_))));
        assert_eq!(
            check(
                429,
                r#"{"ok":false,"error_code":429,"description":"Too Many Requests: retry after 5","parameters":{"retry_after":5}}"#
            ),
            Err(SendError::RateLimited { scope: LimitScope::Channel, retry_after: Duration::from_secs(5) })
        );
        assert!(matches!(
            check(403, r#"{"ok":false,"error_code":403,"description":"Forbidden: bot was blocked by the user"}"#),
            Err(SendError::RecipientGone(_))
        ));
        assert!(matches!(
            check(400, r#"{"ok":false,"error_code":400,"description":"Bad Request: chat not found"}"#),
            Err(SendError::RecipientGone(_))
        ));
        assert!(matches!(
            check(400, r#"{"ok":false,"error_code":400,"description":"Bad Request: message is too long"}"#),
            Err(SendError::Rejected(_))
        ));
        assert_eq!(
            check(
                400,
                r#"{"ok":false,"error_code":400,"description":"Bad Request: group chat was upgraded to a supergroup chat","parameters":{"migrate_to_chat_id":-1001}}"#
            ),
            Err(SendError::Migrated("-1001".into()))
        );
        assert!(matches!(
            check(401, r#"{"ok":false,"error_code":401,"description":"Unauthorized"}"#),
            Err(SendError::Transient(_))
        ));
    }

    #[test]
    fn the_token_never_shows() {
        let token = Secret::new("123:SECRET");
        let ch = TelegramChannel::new(&token, "http://127.0.0.1:9/api", Duration::from_secs(1)).expect("channel");
        assert_eq!(ch.send_url.path(), "/api/bot123:SECRET/sendMessage");
        assert_eq!(format!("{ch:?}"), "TelegramChannel");
    }
}
