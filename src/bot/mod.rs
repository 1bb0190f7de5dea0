//! Bot: residents subscribe and manage their places by chatting.
//!
//! Split in five. [`Conversation`] (`conversation.rs`) decides the replies to one input
//! using the store and the region tree, with no Telegram in sight, so it is tested
//! directly. [`run`] and [`Inbox`] (`updates.rs`) are the Telegram side: getUpdates
//! long polling or the webhook, one ordered queue per chat, the flood limit, the
//! bot's membership in chats. `read.rs` is what an update means (pure: groups, forum
//! topics, kinds the bot ignores). `api.rs` is the Bot API calls the bot makes
//! itself. [`Replies`] (`replies.rs`) sends answers under the same rate limiter as the
//! fan-out, into the forum topic they were asked in.
//!
//! Every input gets an answer: unknown commands and stray text get help, not silence
//! (in a group, a bare command that is not ours is another bot's and gets nothing).

pub mod api;
pub mod commands;
mod conversation;
pub mod help;
mod location;
pub mod read;
mod replies;
mod sms;
mod updates;

pub use api::BotApi;
pub use conversation::{Conversation, Dialog, Input, PAGE, Reply, Sender, drill};
pub use replies::{Delivered, REPLY_DEADLINE, Replies};
pub use updates::{BotStats, Inbox, MAX_QUEUED, Me, NotReady, SLOW_AFTER, Transport, run};

use crate::channels::ChannelKind;

/// The channel residents talk to the bot on.
pub const CHANNEL: ChannelKind = ChannelKind::TelegramChat;
