//! What the residents' bot's transport did with the updates it read.

use std::time::Duration;

use super::InternalEvent;
use crate::bot::BotStats;
use crate::bot::read::{ChatKind, Ignored, MemberChange};
use crate::metrics::bump;

/// A chat id as logs show it: masked, only when a line is written.
fn masked(chat: i64) -> String {
    crate::config::secret::mask(&chat.to_string())
}

/// A getUpdates request about to go out.
pub struct Polling;

impl InternalEvent for Polling {
    type Counters = BotStats;
    fn emit(self, c: &BotStats) {
        bump(&c.polls, 1);
        tracing::trace!("getUpdates");
    }
}

/// An update read for the first time, and whether the bot reads it.
pub struct UpdateReceived<'a> {
    pub id: i64,
    /// Why the bot does nothing with it: not meant for the bot (group chatter,
    /// another bot's command) or of a kind it does not read.
    pub ignored: Option<&'a Ignored>,
}

impl InternalEvent for UpdateReceived<'_> {
    type Counters = BotStats;
    fn emit(self, c: &BotStats) {
        bump(&c.received, 1);
        if let Some(why) = self.ignored {
            bump(&c.ignored, 1);
            tracing::debug!(update = self.id, "update ignored: {why}");
        }
    }
}

/// The bot's status in a chat changed (`my_chat_member`).
pub struct MembershipChanged {
    pub chat: i64,
    pub kind: ChatKind,
    pub change: MemberChange,
    /// The chat was active and is now deactivated.
    pub deactivated: bool,
}

impl InternalEvent for MembershipChanged {
    type Counters = BotStats;
    fn emit(self, c: &BotStats) {
        let chat = masked(self.chat);
        match (self.kind, self.change) {
            _ if self.deactivated => {
                bump(&c.deactivated, 1);
                tracing::info!(%chat, kind = ?self.kind, "bot blocked or removed; chat deactivated");
            }
            (ChatKind::Channel, MemberChange::Gone) => {
                tracing::error!(%chat, "the bot was removed from a channel: its posts fail until it is an administrator there again");
            }
            (_, MemberChange::Back) => {
                bump(&c.returned, 1);
                tracing::info!(%chat, kind = ?self.kind, "bot unblocked or added back; the chat resumes with its next message");
            }
            _ => tracing::debug!(%chat, kind = ?self.kind, change = ?self.change, "bot's status in a chat changed"),
        }
    }
}

/// An update dropped from a flooding chat's full queue.
pub struct UpdateDropped {
    pub chat: i64,
}

impl InternalEvent for UpdateDropped {
    type Counters = BotStats;
    fn emit(self, c: &BotStats) {
        bump(&c.dropped, 1);
        tracing::debug!(chat = %masked(self.chat), "flood: update dropped");
    }
}

/// A flooding chat told once that its answers will be slower.
pub struct FloodNoticeSent {
    pub chat: i64,
}

impl InternalEvent for FloodNoticeSent {
    type Counters = BotStats;
    fn emit(self, c: &BotStats) {
        bump(&c.flood_notices, 1);
        tracing::info!(chat = %masked(self.chat), "flood: chat slowed down and told so");
    }
}

/// How deciding an update's answer ended.
pub enum Handled {
    Answered,
    /// The store failed: the chat got the error text.
    StoreFailed(crate::store::StoreError),
    /// It took longer than this: the chat got the error text.
    TimedOut(Duration),
}

/// An update decided and its answers sent (or given up).
pub struct UpdateHandled {
    pub chat: i64,
    pub outcome: Handled,
}

impl InternalEvent for UpdateHandled {
    type Counters = BotStats;
    fn emit(self, c: &BotStats) {
        bump(&c.handled, 1);
        match self.outcome {
            Handled::Answered => {}
            Handled::StoreFailed(error) => {
                bump(&c.store_errors, 1);
                tracing::error!(%error, chat = %masked(self.chat), "bot could not use the store");
            }
            Handled::TimedOut(timeout) => {
                bump(&c.timed_out, 1);
                tracing::error!(chat = %masked(self.chat), ?timeout, "bot update took too long");
            }
        }
    }
}
