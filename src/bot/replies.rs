//! How answers leave: through the fan-out's Telegram adapter and limiter.

use std::time::Duration;

use super::Reply;
use crate::channels::telegram::TelegramChannel;
use crate::channels::{Address, Channel, LimitScope, Outgoing, SendError};
use crate::config::secret::mask;
use crate::dispatch::limits::{Recipient, SharedLimiter};

/// How the bot's replies leave: through the same Telegram adapter, classification and
/// limiter as the fan-out, ahead of the fan-out's next send.
#[derive(Clone)]
pub struct Replies {
    pub channel: TelegramChannel,
    pub limiter: SharedLimiter,
}

/// A reply is tried this many times over a 429 or a network failure before giving up.
const REPLY_ATTEMPTS: u32 = 3;

impl Replies {
    /// Sends one plain message (operators' notices) the way replies go.
    pub async fn notify(&self, chat: i64, text: String) {
        self.send(chat, Reply::text(text)).await;
    }

    /// Sends one reply. A 429 holds the shared limiter, as for the fan-out, and the
    /// reply waits it out; a transient failure is tried again a second later.
    pub(super) async fn send(&self, chat: i64, reply: Reply) {
        let to = Address::TelegramChat(chat);
        let recipient = Recipient::of(&to);
        for attempt in 1..=REPLY_ATTEMPTS {
            self.limiter.acquire_reply(&recipient).await;
            let message =
                Outgoing { to: &to, text: &reply.text, silent: false, paid: false, keyboard: &reply.keyboard, key: "" };
            let wait = match self.channel.send(message).await {
                Ok(_) => return,
                Err(SendError::RateLimited { scope, retry_after }) => {
                    let who = (scope == LimitScope::Recipient).then_some(&recipient);
                    self.limiter.penalize(who, tokio::time::Instant::now() + retry_after);
                    retry_after
                }
                Err(SendError::Transient(why)) => {
                    tracing::info!(%why, chat = %mask(&chat.to_string()), attempt, "bot reply failed; trying again");
                    Duration::from_secs(1)
                }
                Err(e) => {
                    tracing::warn!(error = %e, chat = %mask(&chat.to_string()), "bot reply refused");
                    return;
                }
            };
            tokio::time::sleep(wait).await;
        }
        tracing::warn!(chat = %mask(&chat.to_string()), "bot reply not delivered after {REPLY_ATTEMPTS} attempts");
    }
}
