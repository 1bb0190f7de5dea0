//! Dispatcher: claims due deliveries from the outbox, renders each chat's as one
//! message, paces them under the channel's limits and records each outcome.
//!
//! One [`lane::Lane`] per channel kind, each with its own admit loop, so a Telegram
//! backlog never stalls SMS; lanes of one platform account share its limiter. A lane:
//! - claims the due deliveries of as many chats as its limiter lets through now,
//!   highest priority first, all of a chat's due rows together, under a lease it renews;
//! - plans each chat's message ([`plan`]): expired and superseded rows are recorded as
//!   such, the rest are rendered as one message from the stored events, with texts
//!   cached per (event set, language, format);
//! - sends, at most one request per chat in flight, `max_in_flight` in all, each with
//!   its own timeout; a send task that panics frees its chat and puts its rows back;
//! - decides what each answer means ([`decide`], pure) and records outcomes in batches.
//!
//! On shutdown a lane stops claiming, waits a short grace for requests on the wire,
//! records what it learnt and hands everything else back to the queue.

pub mod lane;
pub mod limits;
pub mod plan;
pub mod quiet;

use std::time::Duration;

use crate::alerts::Priority;
use crate::channels::{ChannelKind, SendError, Sent};
use crate::config::DispatchSettings;

pub use lane::Lane;
pub use plan::SupersededMode;

/// What to do with a send's deliveries after the platform answered. Pure, so the
/// policy is tested without a platform.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    Sent(String),
    /// Back to the queue after this delay.
    Retry {
        after: Duration,
        reason: String,
    },
    /// A person is gone (blocked the bot, deleted the account): fail and deactivate.
    Deactivate(String),
    /// A region channel refused the post: an operator must fix the channel; the post
    /// fails, the channel is kept, private chats go on.
    OperatorError(String),
    /// Chat moved: rewrite the address and send again at once.
    Migrate(String),
    Fail(String),
    Expire(String),
}

/// Decides the fate of one attempt. `attempts` counts this one; `until_deadline` is how
/// long the deliveries may still be tried (`None`: until their subject ends).
pub fn decide(
    result: Result<Sent, SendError>,
    kind: ChannelKind,
    attempts: u32,
    until_deadline: Option<Duration>,
    settings: &DispatchSettings,
    jitter: f64,
) -> Outcome {
    let too_late = |after: Duration| until_deadline.is_some_and(|d| after >= d);
    match result {
        Ok(sent) => Outcome::Sent(sent.platform_id),
        // The limiter is held by the lane for every 429, whatever becomes of the rows.
        Err(SendError::RateLimited { retry_after, .. }) => {
            if too_late(retry_after) {
                Outcome::Expire(format!("rate limited past the deadline (retry after {retry_after:?})"))
            } else {
                Outcome::Retry { after: retry_after, reason: "429 too many requests".into() }
            }
        }
        Err(SendError::RecipientGone(why)) if kind.is_personal() => Outcome::Deactivate(why),
        Err(SendError::RecipientGone(why)) => Outcome::OperatorError(why),
        Err(SendError::Migrated(to)) => Outcome::Migrate(to),
        Err(SendError::Rejected(why)) => Outcome::Fail(why),
        Err(SendError::Transient(why)) => {
            let exp = settings.retry_base.saturating_mul(1u32 << attempts.saturating_sub(1).min(16));
            let base = exp.min(settings.retry_max);
            // Jitter in [0.5, 1.0) of the backoff spreads retries of a whole fan-out.
            let after = base.mul_f64(0.5 + 0.5 * jitter.clamp(0.0, 1.0));
            if too_late(after) {
                Outcome::Expire(format!("gave up at the deadline: {why}"))
            } else {
                Outcome::Retry { after, reason: why }
            }
        }
    }
}

crate::metrics::counters! {
    /// Counters of what the dispatcher did, for logs, metrics and the demo summary.
    /// Message counters count requests; delivery counters count outbox rows.
    pub struct DispatchStats {
        /// Messages the platform accepted.
        messages,
        /// Deliveries those messages carried.
        sent,
        /// Messages that carried more than one delivery.
        coalesced,
        retried,
        /// 429 answers: each one a defect of our limiter, counted.
        rate_limited,
        failed,
        expired,
        superseded,
        deactivated,
        /// Region channels that refused a post (the bot is not an admin, the channel
        /// is gone): for an operator to fix.
        channel_errors,
        /// Deliveries for a channel kind no adapter is configured for.
        unconfigured,
        /// Send tasks that panicked; their deliveries went back to the queue.
        panics,
        migrated,
        ;
        /// From each event to the platform accepting a message carrying it.
        latency: crate::metrics::Latency,
    }
}

/// Per-class deadlines and the classes that may use paid broadcast, resolved from
/// config for the lanes.
#[derive(Clone, Debug)]
pub struct DeliveryPolicy {
    pub settings: DispatchSettings,
    /// Classes allowed Telegram's paid broadcast, highest first (a prefix of the
    /// class order; config validation ensures it).
    pub paid: Vec<Priority>,
}

impl DeliveryPolicy {
    /// The deadline of a delivery of this class enqueued at `now_ms`.
    pub fn deadline_ms(&self, priority: Priority, now_ms: i64) -> Option<i64> {
        self.settings.deadlines.of(priority).map(|d| now_ms.saturating_add(d.as_millis() as i64))
    }

    pub fn is_paid(&self, priority: Priority) -> bool {
        self.paid.contains(&priority)
    }

    /// The lowest class allowed paid broadcast, if any.
    pub fn lowest_paid(&self) -> Option<Priority> {
        self.paid.iter().copied().max()
    }
}

/// A hash that is the same across runs and builds (FNV-1a), unlike the standard
/// hasher's random seed: for keys a platform remembers between our restarts.
pub fn stable_hash(value: &impl std::hash::Hash) -> u64 {
    struct Fnv(u64);
    impl std::hash::Hasher for Fnv {
        fn finish(&self) -> u64 {
            self.0
        }
        fn write(&mut self, bytes: &[u8]) {
            for b in bytes {
                self.0 = (self.0 ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3);
            }
        }
    }
    let mut h = Fnv(0xcbf2_9ce4_8422_2325);
    value.hash(&mut h);
    std::hash::Hasher::finish(&h)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::channels::LimitScope;

    fn settings() -> DispatchSettings {
        DispatchSettings {
            retry_base: Duration::from_secs(1),
            retry_max: Duration::from_secs(60),
            ..DispatchSettings::default()
        }
    }

    fn check(result: Result<Sent, SendError>, kind: ChannelKind, attempts: u32, until_deadline_s: u64) -> Outcome {
        decide(result, kind, attempts, Some(Duration::from_secs(until_deadline_s)), &settings(), 1.0)
    }

    const CHAT: ChannelKind = ChannelKind::TelegramChat;

    #[test]
    fn outcomes() {
        assert_eq!(check(Ok(Sent { platform_id: "9".into() }), CHAT, 1, 60), Outcome::Sent("9".into()));
        assert_eq!(
            check(
                Err(SendError::RateLimited { scope: LimitScope::Channel, retry_after: Duration::from_secs(7) }),
                CHAT,
                1,
                60
            ),
            Outcome::Retry { after: Duration::from_secs(7), reason: "429 too many requests".into() }
        );
        assert!(matches!(check(Err(SendError::RecipientGone("blocked".into())), CHAT, 1, 60), Outcome::Deactivate(_)));
        assert!(
            matches!(
                check(Err(SendError::RecipientGone("not a member".into())), ChannelKind::TelegramChannel, 1, 60),
                Outcome::OperatorError(_)
            ),
            "a region channel is never deactivated like a person"
        );
        assert!(matches!(check(Err(SendError::Rejected("too long".into())), CHAT, 1, 60), Outcome::Fail(_)));
        assert_eq!(check(Err(SendError::Migrated("-100".into())), CHAT, 1, 60), Outcome::Migrate("-100".into()));
    }

    #[test]
    fn transient_backoff_doubles_caps_and_expires_only_with_a_deadline() {
        let after = |attempts| match check(Err(SendError::Transient("502".into())), CHAT, attempts, 3600) {
            Outcome::Retry { after, .. } => after,
            other => panic!("expected retry, got {other:?}"),
        };
        assert_eq!(after(1), Duration::from_secs(1));
        assert_eq!(after(2), Duration::from_secs(2));
        assert_eq!(after(4), Duration::from_secs(8));
        assert_eq!(after(30), Duration::from_secs(60), "capped at retry_max");
        assert!(matches!(check(Err(SendError::Transient("502".into())), CHAT, 5, 3), Outcome::Expire(_)));
        let no_deadline = decide(Err(SendError::Transient("502".into())), CHAT, 30, None, &settings(), 1.0);
        assert!(matches!(no_deadline, Outcome::Retry { .. }), "an evacuation order is retried until it ends");
    }
}
