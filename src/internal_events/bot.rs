//! What the residents' bot's transport did with the updates it read.

use std::time::Duration;

use super::InternalEvent;
use crate::bot::BotStats;
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
pub struct UpdateReceived {
    pub id: i64,
    /// Not meant for the bot (group chatter, another bot's command) or of a kind it
    /// does not read.
    pub ignored: bool,
}

impl InternalEvent for UpdateReceived {
    type Counters = BotStats;
    fn emit(self, c: &BotStats) {
        bump(&c.received, 1);
        if self.ignored {
            bump(&c.ignored, 1);
            tracing::trace!(update = self.id, "update ignored");
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
