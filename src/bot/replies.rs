//! How answers leave: through the fan-out's Telegram adapter and limiter.

use std::time::Duration;

use tokio::time::Instant;

use super::Reply;
use crate::channels::telegram::TelegramChannel;
use crate::channels::{Address, LimitScope, Outgoing, SendError};
use crate::config::secret::mask;
use crate::dispatch::limits::{Recipient, SharedLimiter};

/// How the bot's replies leave: through the same Telegram adapter, classification and
/// limiter as the fan-out, ahead of the fan-out's next send.
#[derive(Clone)]
pub struct Replies {
    pub channel: TelegramChannel,
    pub limiter: SharedLimiter,
}

/// How long a reply keeps being tried over 429s and network failures. A resident
/// waiting longer than this has given up on the answer; a reply is never dropped
/// before it.
pub const REPLY_DEADLINE: Duration = Duration::from_secs(60);
/// The first pause after a network failure; it doubles up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(500);
const MAX_BACKOFF: Duration = Duration::from_secs(8);

/// What became of one reply.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Delivered {
    Yes,
    /// Telegram refused it for good (blocked, chat gone, a bad message).
    Refused,
    /// Still failing at the deadline.
    GaveUp,
}

impl Replies {
    /// Sends one plain message (operators' notices) the way replies go.
    pub async fn notify(&self, chat: i64, text: String) {
        self.send(chat, None, Reply::text(text)).await;
    }

    /// Sends one reply to a private chat or a group (a negative id, under the
    /// per-group limit), into the forum topic `thread` when the question came from
    /// one. A 429 holds the shared limiter, as for the fan-out, and the reply waits it
    /// out and goes again; a network failure is tried again after a growing pause;
    /// both until [`REPLY_DEADLINE`]. A permanent refusal stops, except that a topic
    /// deleted or closed since the question ("message thread not found",
    /// `TOPIC_CLOSED`) gets the answer in the group's General topic instead.
    pub(super) async fn send(&self, chat: i64, mut thread: Option<i32>, reply: Reply) -> Delivered {
        let to = Address::TelegramChat(chat);
        let recipient = Recipient::of(&to);
        let deadline = Instant::now() + REPLY_DEADLINE;
        let mut backoff = FIRST_BACKOFF;
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            self.limiter.acquire_reply(&recipient).await;
            let message =
                Outgoing { to: &to, text: &reply.text, silent: false, paid: false, keyboard: &reply.keyboard, key: "" };
            // How long to sleep here, and how far off the next try is.
            let (wait, next_try) = match self.channel.send_in_thread(message, thread).await {
                Ok(_) => return Delivered::Yes,
                Err(SendError::RateLimited { scope, retry_after }) => {
                    let who = (scope == LimitScope::Recipient).then_some(&recipient);
                    // The limiter holds every later send (this one's too) until then.
                    self.limiter.penalize(who, Instant::now() + retry_after);
                    tracing::info!(chat = %mask(&chat.to_string()), attempt, ?retry_after, "bot reply rate limited; waiting");
                    (Duration::ZERO, retry_after)
                }
                Err(SendError::Transient(why)) => {
                    tracing::info!(%why, chat = %mask(&chat.to_string()), attempt, "bot reply failed; trying again");
                    let wait = backoff;
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                    (wait, wait)
                }
                Err(SendError::Rejected(why)) if thread.is_some() && topic_gone(&why) => {
                    tracing::info!(%why, chat = %mask(&chat.to_string()), "forum topic gone; answering in General");
                    thread = None;
                    (Duration::ZERO, Duration::ZERO)
                }
                Err(e) => {
                    tracing::warn!(error = %e, chat = %mask(&chat.to_string()), "bot reply refused");
                    return Delivered::Refused;
                }
            };
            if Instant::now() + next_try >= deadline {
                tracing::warn!(chat = %mask(&chat.to_string()), attempt, "bot reply not delivered within {REPLY_DEADLINE:?}");
                return Delivered::GaveUp;
            }
            tokio::time::sleep(wait).await;
        }
    }
}

/// Telegram's refusals of a `message_thread_id` whose topic is deleted or closed.
fn topic_gone(why: &str) -> bool {
    why.contains("message thread not found") || why.contains("TOPIC_CLOSED") || why.contains("TOPIC_DELETED")
}
