//! Channels: adapters that put a rendered message on a platform.
//!
//! Every platform answer is classified into [`SendError`] here, at the edge, so the
//! dispatcher decides retries and deactivation without knowing any platform's wire
//! format.

pub mod telegram;

use std::time::Duration;

/// The platform accepted the message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sent {
    /// The platform's id of the message, for the record.
    pub platform_id: String,
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// 429: wait this long, then try again. `chat_scoped` when only this chat is held.
    #[error("rate limited, retry after {retry_after:?}")]
    RetryAfter { retry_after: Duration, chat_scoped: bool },
    /// The recipient blocked us or no longer exists: stop writing to them.
    #[error("recipient gone: {0}")]
    RecipientGone(String),
    /// The chat moved to a new address (a group upgraded to a supergroup).
    #[error("chat migrated to {0}")]
    Migrated(String),
    /// Network trouble, timeouts, 5xx: worth retrying with backoff.
    #[error("transient: {0}")]
    Transient(String),
    /// The platform rejected the message itself; retrying would not help.
    #[error("rejected: {0}")]
    Rejected(String),
}
