//! Bot: residents subscribe and manage their places by chatting.
//!
//! Split in three. [`Conversation`] (`conversation.rs`) decides the replies to one input
//! using the store and the region tree, with no Telegram in sight, so it is tested
//! directly. [`run`] (`updates.rs`) is the Telegram side: a getUpdates long-poll loop
//! that hands each update to a tracked task, one chat at a time in order. [`Replies`]
//! (`replies.rs`) sends answers under the same rate limiter as the fan-out.
//!
//! Every input gets an answer: unknown commands and stray text get help, not silence.

pub mod commands;
mod conversation;
pub mod help;
mod location;
mod replies;
mod sms;
mod updates;

pub use conversation::{Conversation, Dialog, Input, PAGE, Reply, Sender, drill};
pub use replies::Replies;
pub use updates::run;

use crate::channels::ChannelKind;

/// The channel residents talk to the bot on.
pub const CHANNEL: ChannelKind = ChannelKind::TelegramChat;
