//! What a dispatch lane did with the messages it planned and sent.

use std::time::Duration;

use super::InternalEvent;
use crate::channels::{ChannelKind, LimitScope};
use crate::dispatch::DispatchStats;
use crate::metrics::bump;

/// A delivery left unsent because a later event of its subject replaces it.
pub struct Superseded;

impl InternalEvent for Superseded {
    type Counters = DispatchStats;
    fn emit(self, c: &DispatchStats) {
        bump(&c.superseded, 1);
        tracing::debug!("delivery superseded by a later event before it was sent");
    }
}

/// A delivery whose deadline passed before it could be sent.
pub struct ExpiredUnsent;

impl InternalEvent for ExpiredUnsent {
    type Counters = DispatchStats;
    fn emit(self, c: &DispatchStats) {
        bump(&c.expired, 1);
        tracing::debug!("delivery expired before it was sent");
    }
}

/// Deliveries for a channel kind no adapter is configured for: they fail.
pub struct NoChannel {
    pub kind: ChannelKind,
    pub deliveries: usize,
}

impl InternalEvent for NoChannel {
    type Counters = DispatchStats;
    fn emit(self, c: &DispatchStats) {
        bump(&c.unconfigured, self.deliveries as u64);
        tracing::warn!(kind = %self.kind, deliveries = self.deliveries, "no channel of this kind is configured; deliveries fail");
    }
}

/// A stored address the channel cannot read: its deliveries fail.
pub struct Undeliverable<'a> {
    pub subscriber: i64,
    pub error: &'a dyn std::fmt::Display,
    pub deliveries: usize,
}

impl InternalEvent for Undeliverable<'_> {
    type Counters = DispatchStats;
    fn emit(self, c: &DispatchStats) {
        bump(&c.failed, self.deliveries as u64);
        tracing::warn!(subscriber = self.subscriber, error = %self.error, "undeliverable address");
    }
}

/// A send task panicked: nothing is known of its request, so its messages are queued
/// again.
pub struct SendPanicked {
    pub kind: ChannelKind,
    pub messages: usize,
}

impl InternalEvent for SendPanicked {
    type Counters = DispatchStats;
    fn emit(self, c: &DispatchStats) {
        bump(&c.panics, 1);
        tracing::error!(kind = %self.kind, messages = self.messages, "a send task panicked; its deliveries are queued again");
    }
}

/// The platform answered 429 although our limiter let the request go.
pub struct RateLimited<'a> {
    pub kind: ChannelKind,
    pub to: &'a str,
    pub retry_after: Duration,
    pub scope: LimitScope,
}

impl InternalEvent for RateLimited<'_> {
    type Counters = DispatchStats;
    fn emit(self, c: &DispatchStats) {
        bump(&c.rate_limited, 1);
        tracing::warn!(
            kind = %self.kind,
            to = self.to,
            retry_after = ?self.retry_after,
            scope = ?self.scope,
            "platform answered 429 despite our limiter; holding sends for retry_after"
        );
    }
}

/// The platform accepted a message carrying `latencies.len()` deliveries, each this
/// long after its event.
pub struct Sent<'a> {
    pub kind: ChannelKind,
    pub to: &'a str,
    pub parts: usize,
    pub latencies: &'a [Duration],
}

impl InternalEvent for Sent<'_> {
    type Counters = DispatchStats;
    fn emit(self, c: &DispatchStats) {
        bump(&c.messages, 1);
        bump(&c.sent, self.latencies.len() as u64);
        if self.parts > 1 {
            bump(&c.coalesced, 1);
        }
        c.latency.observe(self.kind, self.latencies.iter().copied());
        tracing::debug!(kind = %self.kind, to = self.to, deliveries = self.latencies.len(), parts = self.parts, "sent");
    }
}

/// A send failed in a way that passes; it is tried again after `after`.
pub struct Retrying<'a> {
    pub kind: ChannelKind,
    pub to: &'a str,
    pub after: Duration,
    pub reason: &'a str,
}

impl InternalEvent for Retrying<'_> {
    type Counters = DispatchStats;
    fn emit(self, c: &DispatchStats) {
        bump(&c.retried, 1);
        tracing::info!(kind = %self.kind, to = self.to, after = ?self.after, reason = self.reason, "send failed, will retry");
    }
}

/// The recipient is gone (blocked the bot, deleted the chat): the subscriber is
/// deactivated and the message's deliveries fail.
pub struct Deactivated<'a> {
    pub kind: ChannelKind,
    pub subscriber: i64,
    pub to: &'a str,
    pub why: &'a str,
    pub deliveries: usize,
}

impl InternalEvent for Deactivated<'_> {
    type Counters = DispatchStats;
    fn emit(self, c: &DispatchStats) {
        bump(&c.deactivated, 1);
        bump(&c.failed, self.deliveries as u64);
        tracing::info!(kind = %self.kind, subscriber = self.subscriber, to = self.to, why = self.why, "recipient gone; subscriber deactivated");
    }
}

/// A region channel refused a post: for an operator to fix.
pub struct ChannelRefused<'a> {
    pub kind: ChannelKind,
    pub channel: &'a dyn std::fmt::Display,
    pub why: &'a str,
    pub deliveries: usize,
}

impl InternalEvent for ChannelRefused<'_> {
    type Counters = DispatchStats;
    fn emit(self, c: &DispatchStats) {
        bump(&c.channel_errors, 1);
        bump(&c.failed, self.deliveries as u64);
        tracing::error!(
            kind = %self.kind,
            channel = %self.channel,
            why = self.why,
            "the region channel refused a post: make the bot an admin of the channel or fix the region file"
        );
    }
}

/// A Telegram group became a supergroup: its address is rewritten and the message
/// goes again at once.
pub struct Migrated<'a> {
    pub kind: ChannelKind,
    pub to: &'a str,
    /// The new address, masked.
    pub new: &'a str,
}

impl InternalEvent for Migrated<'_> {
    type Counters = DispatchStats;
    fn emit(self, c: &DispatchStats) {
        bump(&c.migrated, 1);
        tracing::info!(kind = %self.kind, to = self.to, new = self.new, "chat migrated; address rewritten");
    }
}

/// The platform rejected the message for good.
pub struct Rejected<'a> {
    pub kind: ChannelKind,
    pub to: &'a str,
    pub why: &'a str,
    pub deliveries: usize,
}

impl InternalEvent for Rejected<'_> {
    type Counters = DispatchStats;
    fn emit(self, c: &DispatchStats) {
        bump(&c.failed, self.deliveries as u64);
        tracing::warn!(kind = %self.kind, to = self.to, why = self.why, "platform rejected the message");
    }
}

/// Retries ran out at the deliveries' deadline.
pub struct Expired<'a> {
    pub kind: ChannelKind,
    pub to: &'a str,
    pub why: &'a str,
    pub deliveries: usize,
}

impl InternalEvent for Expired<'_> {
    type Counters = DispatchStats;
    fn emit(self, c: &DispatchStats) {
        bump(&c.expired, self.deliveries as u64);
        tracing::warn!(kind = %self.kind, to = self.to, why = self.why, "delivery expired");
    }
}
