//! Dispatcher: takes due deliveries from the outbox, paces them under the platform's
//! limits and records each outcome.
//!
//! The loop is the only writer of delivery states after enqueueing:
//! `pending` → `sending` (before the request) → `sent` | back to `pending` with a delay
//! | `failed` | `expired`. Requests run concurrently up to `max_in_flight`, never two to
//! the same chat at once (so one chat's messages keep their order). On shutdown the
//! loop stops admitting, waits a short grace period for requests in flight, and leaves
//! any still unanswered as `sending`; the next start puts them back in the queue.

pub mod limits;

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::channels::telegram::TelegramChannel;
use crate::channels::{SendError, Sent};
use crate::config::DispatchSettings;
use crate::config::secret::mask;
use crate::store::{Delivery, FinalState, Store, StoreError, now_ms};
use limits::{SharedLimiter, Wait};

/// What to do with a delivery after the platform answered. Pure, so the policy is
/// tested without a platform.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    Sent(String),
    /// Back to the queue after this delay.
    Retry {
        after: Duration,
        reason: String,
        hold_chat: bool,
    },
    /// Recipient gone: fail this delivery and deactivate the subscriber.
    Deactivate(String),
    /// Chat moved: rewrite the address and send again at once.
    Migrate(String),
    Fail(String),
    Expire(String),
}

/// Decides the fate of one attempt. `attempts` counts this one; `until_deadline` is how
/// long the delivery may still be tried.
pub fn decide(
    result: Result<Sent, SendError>,
    attempts: u32,
    until_deadline: Duration,
    settings: &DispatchSettings,
    jitter: f64,
) -> Outcome {
    match result {
        Ok(sent) => Outcome::Sent(sent.platform_id),
        Err(SendError::RetryAfter { retry_after, chat_scoped }) => {
            if retry_after >= until_deadline {
                Outcome::Expire(format!("rate limited past the deadline (retry after {retry_after:?})"))
            } else {
                Outcome::Retry { after: retry_after, reason: "429 too many requests".into(), hold_chat: chat_scoped }
            }
        }
        Err(SendError::RecipientGone(why)) => Outcome::Deactivate(why),
        Err(SendError::Migrated(to)) => Outcome::Migrate(to),
        Err(SendError::Rejected(why)) => Outcome::Fail(why),
        Err(SendError::Transient(why)) => {
            let exp = settings.retry_base.saturating_mul(1u32 << attempts.saturating_sub(1).min(16));
            let base = exp.min(settings.retry_max);
            // Jitter in [0.5, 1.0) of the backoff spreads retries of a whole fan-out.
            let after = base.mul_f64(0.5 + 0.5 * jitter.clamp(0.0, 1.0));
            if after >= until_deadline {
                Outcome::Expire(format!("gave up at the deadline: {why}"))
            } else {
                Outcome::Retry { after, reason: why, hold_chat: false }
            }
        }
    }
}

/// Counters of what the dispatcher did, for logs, `/sources` and the demo summary.
#[derive(Debug, Default)]
pub struct DispatchStats {
    pub sent: AtomicU64,
    pub retried: AtomicU64,
    pub rate_limited: AtomicU64,
    pub failed: AtomicU64,
    pub expired: AtomicU64,
    pub deactivated: AtomicU64,
}

impl DispatchStats {
    fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

pub struct Dispatcher {
    pub store: Arc<Store>,
    pub telegram: TelegramChannel,
    pub limiter: SharedLimiter,
    pub settings: DispatchSettings,
    /// Poked by the pipeline when it enqueued something.
    pub wake: Arc<Notify>,
    pub stats: Arc<DispatchStats>,
}

type Attempt = (Delivery, Result<Sent, SendError>);

impl Dispatcher {
    /// Runs until `cancel`, then drains for at most `grace`.
    pub async fn run(self, cancel: CancellationToken, grace: Duration) -> Result<(), StoreError> {
        let recovered = self.store.recover_in_flight()?;
        if recovered > 0 {
            tracing::warn!(recovered, "deliveries that were in flight at the last stop are queued again");
        }
        let mut in_flight: JoinSet<Attempt> = JoinSet::new();
        let mut busy_chats: HashSet<String> = HashSet::new();
        // Answers the store failed to record; retried before anything new is admitted.
        let mut unrecorded: Vec<(Delivery, Result<Sent, SendError>)> = Vec::new();
        let mut seed: u64 = now_ms() as u64 | 1;
        loop {
            let mut retry: Vec<_> = Vec::new();
            for (delivery, result) in unrecorded.drain(..) {
                seed = xorshift(seed);
                if let Err(e) = self.record(delivery.clone(), result.clone(), (seed % 10_000) as f64 / 10_000.0) {
                    tracing::error!(error = %e, delivery = delivery.id, "cannot record a send; will retry");
                    retry.push((delivery, result));
                }
            }
            unrecorded = retry;
            let wake_at = if unrecorded.is_empty() {
                self.admit(&mut in_flight, &mut busy_chats).unwrap_or_else(|e| {
                    tracing::error!(error = %e, "cannot read the outbox; retrying in a second");
                    Instant::now() + Duration::from_secs(1)
                })
            } else {
                Instant::now() + Duration::from_secs(1)
            };
            tokio::select! {
                biased;
                () = cancel.cancelled() => break,
                Some(joined) = in_flight.join_next(), if !in_flight.is_empty() => {
                    if let Ok((delivery, result)) = joined {
                        busy_chats.remove(&delivery.address);
                        unrecorded.push((delivery, result));
                    }
                }
                () = self.wake.notified() => {}
                () = tokio::time::sleep_until(wake_at) => {}
            }
        }
        // Shutdown: let requests already on the wire finish, briefly. What cannot be
        // recorded now stays `sending` and is queued again at the next start.
        let deadline = Instant::now() + grace;
        for (delivery, result) in unrecorded {
            self.record(delivery, result, 0.5)?;
        }
        while !in_flight.is_empty() {
            match tokio::time::timeout_at(deadline, in_flight.join_next()).await {
                Ok(Some(Ok((delivery, result)))) => self.record(delivery, result, 0.5)?,
                Ok(Some(Err(_))) => {}
                Ok(None) => break,
                Err(_) => {
                    tracing::warn!(
                        left = in_flight.len(),
                        "shutdown grace over; unanswered sends stay in flight and are retried at next start"
                    );
                    in_flight.abort_all();
                    break;
                }
            }
        }
        Ok(())
    }

    /// Starts as many due deliveries as limits allow; returns when to look again.
    fn admit(&self, in_flight: &mut JoinSet<Attempt>, busy_chats: &mut HashSet<String>) -> Result<Instant, StoreError> {
        let idle = Instant::now() + Duration::from_secs(5);
        let mut wake_at = idle;
        let free = self.settings.max_in_flight.saturating_sub(in_flight.len());
        if free == 0 {
            return Ok(wake_at);
        }
        let now = now_ms();
        // Look past chats that must wait, but not through the whole queue.
        let due = self.store.due(now, free.max(64) * 4)?;
        for d in due {
            if in_flight.len() >= self.settings.max_in_flight {
                break;
            }
            if busy_chats.contains(&d.address) {
                continue;
            }
            if d.deadline_ms <= now {
                self.store.mark_final(d.id, FinalState::Expired, "deadline passed before sending")?;
                DispatchStats::bump(&self.stats.expired);
                continue;
            }
            let chat: i64 = d.address.parse().unwrap_or(0);
            match self.limiter.try_acquire(chat) {
                Ok(()) => {}
                Err(Wait::Global(t)) => {
                    wake_at = wake_at.min(t);
                    break;
                }
                Err(Wait::Chat(t)) => {
                    wake_at = wake_at.min(t);
                    continue;
                }
            }
            self.store.mark_sending(d.id)?;
            busy_chats.insert(d.address.clone());
            let channel = self.telegram.clone();
            in_flight.spawn(async move {
                let result = channel.send(&d.address, &d.text, d.silent).await;
                (d, result)
            });
        }
        // Deliveries waiting out a retry delay wake the loop when they fall due.
        if let Some(nb) = self.store.next_not_before(now)? {
            wake_at = wake_at.min(Instant::now() + Duration::from_millis((nb - now) as u64));
        }
        Ok(wake_at)
    }

    fn record(&self, d: Delivery, result: Result<Sent, SendError>, jitter: f64) -> Result<(), StoreError> {
        let until_deadline = Duration::from_millis((d.deadline_ms - now_ms()).max(0) as u64);
        let attempts = u32::try_from(d.attempts + 1).unwrap_or(u32::MAX);
        let outcome = decide(result, attempts, until_deadline, &self.settings, jitter);
        let to = mask(&d.address);
        match outcome {
            Outcome::Sent(platform_id) => {
                self.store.mark_sent(d.id, &platform_id)?;
                DispatchStats::bump(&self.stats.sent);
                tracing::debug!(delivery = d.id, event = %d.event_id, to, "sent");
            }
            Outcome::Retry { after, reason, hold_chat } => {
                if reason.starts_with("429") {
                    DispatchStats::bump(&self.stats.rate_limited);
                    let chat = d.address.parse().ok().filter(|_| hold_chat);
                    self.limiter.penalize(chat, Instant::now() + after);
                    tracing::warn!(
                        delivery = d.id,
                        to,
                        ?after,
                        "platform answered 429 despite our limiter; honouring retry_after"
                    );
                } else {
                    tracing::info!(delivery = d.id, to, ?after, %reason, "send failed, will retry");
                }
                DispatchStats::bump(&self.stats.retried);
                self.store.mark_retry(d.id, now_ms() + after.as_millis() as i64, &reason)?;
            }
            Outcome::Deactivate(why) => {
                tracing::info!(subscriber = d.subscriber_id, to, %why, "recipient gone; subscriber deactivated");
                self.store.mark_final(d.id, FinalState::Failed, &why)?;
                self.store.deactivate(d.subscriber_id, &why)?;
                DispatchStats::bump(&self.stats.deactivated);
            }
            Outcome::Migrate(new) => {
                tracing::info!(to, new = %mask(&new), "chat migrated; address rewritten");
                self.store.mark_retry(d.id, now_ms(), "chat migrated")?;
                self.store.rewrite_address(&d.channel, &d.address, &new)?;
            }
            Outcome::Fail(why) => {
                tracing::warn!(delivery = d.id, to, %why, "platform rejected the message");
                self.store.mark_final(d.id, FinalState::Failed, &why)?;
                DispatchStats::bump(&self.stats.failed);
            }
            Outcome::Expire(why) => {
                tracing::warn!(delivery = d.id, to, %why, "delivery expired");
                self.store.mark_final(d.id, FinalState::Expired, &why)?;
                DispatchStats::bump(&self.stats.expired);
            }
        }
        Ok(())
    }
}

fn xorshift(mut x: u64) -> u64 {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    x
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> DispatchSettings {
        DispatchSettings {
            max_in_flight: 4,
            retry_base: Duration::from_secs(1),
            retry_max: Duration::from_secs(60),
            deadline: Duration::from_secs(3600),
        }
    }

    fn check(result: Result<Sent, SendError>, attempts: u32, until_deadline_s: u64) -> Outcome {
        decide(result, attempts, Duration::from_secs(until_deadline_s), &settings(), 1.0)
    }

    #[test]
    fn outcomes() {
        assert_eq!(check(Ok(Sent { platform_id: "9".into() }), 1, 60), Outcome::Sent("9".into()));
        assert_eq!(
            check(Err(SendError::RetryAfter { retry_after: Duration::from_secs(7), chat_scoped: true }), 1, 60),
            Outcome::Retry { after: Duration::from_secs(7), reason: "429 too many requests".into(), hold_chat: true }
        );
        assert!(matches!(check(Err(SendError::RecipientGone("blocked".into())), 1, 60), Outcome::Deactivate(_)));
        assert!(matches!(check(Err(SendError::Rejected("too long".into())), 1, 60), Outcome::Fail(_)));
        assert_eq!(check(Err(SendError::Migrated("-100".into())), 1, 60), Outcome::Migrate("-100".into()));
    }

    #[test]
    fn transient_backoff_doubles_caps_and_expires() {
        let after = |attempts| match check(Err(SendError::Transient("502".into())), attempts, 3600) {
            Outcome::Retry { after, .. } => after,
            other => panic!("expected retry, got {other:?}"),
        };
        assert_eq!(after(1), Duration::from_secs(1));
        assert_eq!(after(2), Duration::from_secs(2));
        assert_eq!(after(4), Duration::from_secs(8));
        assert_eq!(after(30), Duration::from_secs(60), "capped at retry_max");
        assert!(matches!(check(Err(SendError::Transient("502".into())), 5, 3), Outcome::Expire(_)));
    }
}
