//! Telegram channel: `sendMessage` through teloxide, errors classified for the
//! dispatcher.

use std::time::Duration;

use teloxide::prelude::*;
use teloxide::types::{LinkPreviewOptions, ParseMode};
use teloxide::{ApiError, RequestError};

use super::{SendError, Sent};
use crate::config::secret::Secret;

/// A Telegram bot client pointed at a configurable Bot API base URL.
#[derive(Clone, Debug)]
pub struct TelegramChannel {
    bot: Bot,
}

/// Builds a teloxide bot for a token and base URL, with a request timeout longer
/// than the long-poll wait so getUpdates is not cut short.
pub fn bot(token: &Secret, api_url: &str, long_poll: Duration) -> Result<Bot, TelegramSetupError> {
    let url = reqwest::Url::parse(api_url).map_err(|e| TelegramSetupError::Url(api_url.to_owned(), e.to_string()))?;
    let client = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(10))
        .timeout(long_poll + Duration::from_secs(15))
        .build()
        .map_err(|e| TelegramSetupError::Client(e.to_string()))?;
    Ok(Bot::with_client(token.expose(), client).set_api_url(url))
}

#[derive(Debug, thiserror::Error)]
pub enum TelegramSetupError {
    #[error("telegram api_url `{0}`: {1}")]
    Url(String, String),
    #[error("HTTP client: {0}")]
    Client(String),
}

impl TelegramChannel {
    pub fn new(bot: Bot) -> Self {
        TelegramChannel { bot }
    }

    pub fn bot(&self) -> &Bot {
        &self.bot
    }

    /// Sends one HTML message to a chat id written as a decimal string.
    pub async fn send(&self, address: &str, text: &str, silent: bool) -> Result<Sent, SendError> {
        let chat: i64 =
            address.parse().map_err(|_| SendError::Rejected(format!("`{address}` is not a Telegram chat id")))?;
        let result = self
            .bot
            .send_message(ChatId(chat), text)
            .parse_mode(ParseMode::Html)
            .disable_notification(silent)
            .link_preview_options(LinkPreviewOptions {
                is_disabled: true,
                url: None,
                prefer_small_media: false,
                prefer_large_media: false,
                show_above_text: false,
            })
            .await;
        match result {
            Ok(msg) => Ok(Sent { platform_id: msg.id.0.to_string() }),
            Err(e) => Err(classify(e)),
        }
    }
}

/// Sorts a teloxide error into what the dispatcher should do about it.
pub fn classify(e: RequestError) -> SendError {
    match e {
        RequestError::RetryAfter(s) => SendError::RetryAfter {
            retry_after: s.duration().max(Duration::from_secs(1)),
            // Telegram's 429 on sendMessage does not say which limit was hit; holding
            // only this chat lets the rest of a fan-out proceed, and the global window
            // already keeps the overall rate down.
            chat_scoped: true,
        },
        RequestError::MigrateToChatId(id) => SendError::Migrated(id.0.to_string()),
        RequestError::Api(api) => match api {
            ApiError::BotBlocked
            | ApiError::UserDeactivated
            | ApiError::BotKicked
            | ApiError::BotKickedFromSupergroup
            | ApiError::ChatNotFound
            | ApiError::CantInitiateConversation
            | ApiError::CantTalkWithBots => SendError::RecipientGone(api.to_string()),
            ApiError::Unknown(ref text) if is_server_side(text) => SendError::Transient(text.clone()),
            other => SendError::Rejected(other.to_string()),
        },
        RequestError::Network(e) => SendError::Transient(network_error(&e)),
        RequestError::Io(e) => SendError::Transient(format!("io: {e}")),
        // A body that is not the Bot API's JSON is a proxy or gateway failure page.
        RequestError::InvalidJson { source, .. } => SendError::Transient(format!("unparsable answer: {source}")),
    }
}

/// Describes a teloxide error for a log line. reqwest's own message names the URL,
/// and a Bot API URL carries the bot token, so network errors are described by their
/// causes instead.
pub fn describe(e: &RequestError) -> String {
    match e {
        RequestError::Network(e) => network_error(e),
        other => other.to_string(),
    }
}

fn network_error(e: &reqwest::Error) -> String {
    let what = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "cannot connect"
    } else {
        "request failed"
    };
    let mut out = format!("network: {what}");
    let mut cause = std::error::Error::source(e);
    while let Some(c) = cause {
        out.push_str(": ");
        out.push_str(&c.to_string());
        cause = c.source();
    }
    out
}

fn is_server_side(text: &str) -> bool {
    let t = text.to_ascii_lowercase();
    ["internal server error", "bad gateway", "gateway timeout", "service unavailable", "too many requests"]
        .iter()
        .any(|s| t.contains(s))
}
