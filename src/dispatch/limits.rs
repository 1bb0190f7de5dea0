//! Rate limits, decided before each request (DESIGN §2, invariant 5).
//!
//! Sliding windows, the same rule the platform applies: at most N messages in any
//! window of W. A token bucket with a burst would be kinder to short spikes but can
//! put 2N messages into one window, which Telegram answers with 429s. A small margin
//! is added to each window so loopback or network jitter between our clock and the
//! platform's cannot turn a send that was on time into a 429.
//!
//! **Architecture invariant:** the limiter is pure: it takes `now` and answers when a
//! send may happen. [`SharedLimiter`] adds the lock and the sleep.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

use crate::config::TelegramLimits;

#[derive(Clone, Debug)]
struct Window {
    max: usize,
    width: Duration,
    sent: VecDeque<Instant>,
}

impl Window {
    fn new(max: u32, width: Duration) -> Self {
        Window { max: max.max(1) as usize, width, sent: VecDeque::new() }
    }

    fn prune(&mut self, now: Instant) {
        while self.sent.front().is_some_and(|&t| now.saturating_duration_since(t) >= self.width) {
            self.sent.pop_front();
        }
    }

    /// When the next send fits: `now` if it fits already.
    fn ready_at(&self, now: Instant) -> Instant {
        if self.sent.len() < self.max {
            return now;
        }
        let oldest_that_must_leave = self.sent[self.sent.len() - self.max];
        (oldest_that_must_leave + self.width).max(now)
    }
}

/// Why a send must wait, and until when.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Wait {
    /// Every chat must wait: the global limit (or a global 429) holds.
    Global(Instant),
    /// Only this chat must wait.
    Chat(Instant),
}

impl Wait {
    pub fn until(self) -> Instant {
        match self {
            Wait::Global(t) | Wait::Chat(t) => t,
        }
    }
}

#[derive(Debug)]
pub struct RateLimiter {
    limits: TelegramLimits,
    margin: Duration,
    global: Window,
    chats: HashMap<i64, Window>,
    global_block: Option<Instant>,
    chat_block: HashMap<i64, Instant>,
}

impl RateLimiter {
    pub fn new(limits: TelegramLimits, margin: Duration) -> Self {
        RateLimiter {
            limits,
            margin,
            global: Window::new(limits.global_per_sec, Duration::from_secs(1) + margin),
            chats: HashMap::new(),
            global_block: None,
            chat_block: HashMap::new(),
        }
    }

    fn chat_window(&self, chat: i64) -> Window {
        // Negative ids are groups and channels: 20 per minute. Positive: private chats.
        if chat < 0 {
            Window::new(self.limits.group_per_min, Duration::from_secs(60) + self.margin)
        } else {
            Window::new(self.limits.per_chat_per_sec, Duration::from_secs(1) + self.margin)
        }
    }

    /// May a message go to `chat` at `now`? If so it is counted; if not, nothing changes.
    pub fn try_acquire(&mut self, chat: i64, now: Instant) -> Result<(), Wait> {
        self.global.prune(now);
        let global_ready = self.global.ready_at(now).max(self.global_block.unwrap_or(now));
        if global_ready > now {
            return Err(Wait::Global(global_ready));
        }
        let fresh = self.chat_window(chat);
        let window = self.chats.entry(chat).or_insert(fresh);
        window.prune(now);
        let chat_ready = window.ready_at(now).max(self.chat_block.get(&chat).copied().unwrap_or(now));
        if chat_ready > now {
            return Err(Wait::Chat(chat_ready));
        }
        window.sent.push_back(now);
        self.global.sent.push_back(now);
        self.chat_block.remove(&chat);
        if self.global_block.is_some_and(|t| t <= now) {
            self.global_block = None;
        }
        // Forget idle chats now and then so the map does not grow with every chat ever
        // served.
        if self.chats.len() > 4096 {
            self.chats.retain(|_, w| {
                w.prune(now);
                !w.sent.is_empty()
            });
        }
        Ok(())
    }

    /// The platform said 429 anyway: hold the chat (or everyone) until `until`.
    pub fn penalize(&mut self, chat: Option<i64>, until: Instant) {
        match chat {
            Some(c) => {
                let e = self.chat_block.entry(c).or_insert(until);
                *e = (*e).max(until);
            }
            None => self.global_block = Some(self.global_block.map_or(until, |t| t.max(until))),
        }
    }
}

/// The limiter shared by everything that sends through one bot: the dispatcher's
/// fan-out and the bot's replies count against the same platform limits.
#[derive(Clone, Debug)]
pub struct SharedLimiter(Arc<Mutex<RateLimiter>>);

impl SharedLimiter {
    pub fn new(limits: TelegramLimits, margin: Duration) -> Self {
        SharedLimiter(Arc::new(Mutex::new(RateLimiter::new(limits, margin))))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, RateLimiter> {
        // The limiter's state stays valid at every step, so a poisoned lock is usable.
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn try_acquire(&self, chat: i64) -> Result<(), Wait> {
        self.lock().try_acquire(chat, Instant::now())
    }

    /// Waits until a message may go to `chat`, then counts it.
    pub async fn acquire(&self, chat: i64) {
        loop {
            let wait = self.try_acquire(chat);
            match wait {
                Ok(()) => return,
                Err(w) => tokio::time::sleep_until(w.until()).await,
            }
        }
    }

    pub fn penalize(&self, chat: Option<i64>, until: Instant) {
        self.lock().penalize(chat, until);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limiter() -> RateLimiter {
        RateLimiter::new(TelegramLimits { global_per_sec: 30, per_chat_per_sec: 1, group_per_min: 20 }, Duration::ZERO)
    }

    #[test]
    fn no_window_of_one_second_holds_more_than_thirty() {
        let mut l = limiter();
        let start = Instant::now();
        let mut sent = Vec::new();
        // Offer a send every millisecond for three seconds, each to a new chat.
        for ms in 0..3000u64 {
            let now = start + Duration::from_millis(ms);
            if l.try_acquire(ms as i64 + 1, now).is_ok() {
                sent.push(now);
            }
        }
        for (i, t) in sent.iter().enumerate() {
            let in_window = sent[i..].iter().take_while(|&&u| u - *t < Duration::from_secs(1)).count();
            assert!(in_window <= 30, "{in_window} sends within one second from send {i}");
        }
        assert_eq!(sent.len(), 90, "the limit is also reached, not just respected");
    }

    #[test]
    fn one_per_second_per_private_chat_and_twenty_per_minute_per_group() {
        let mut l = limiter();
        let t0 = Instant::now();
        assert!(l.try_acquire(7, t0).is_ok());
        assert_eq!(l.try_acquire(7, t0 + Duration::from_millis(500)), Err(Wait::Chat(t0 + Duration::from_secs(1))));
        assert!(l.try_acquire(8, t0 + Duration::from_millis(500)).is_ok(), "other chats are not held");
        assert!(l.try_acquire(7, t0 + Duration::from_secs(1)).is_ok());

        for i in 0..20 {
            assert!(l.try_acquire(-100, t0 + Duration::from_millis(1100 * i)).is_ok(), "group send {i}");
        }
        assert!(matches!(l.try_acquire(-100, t0 + Duration::from_secs(23)), Err(Wait::Chat(_))));
        assert!(l.try_acquire(-100, t0 + Duration::from_secs(61)).is_ok());
    }

    #[test]
    fn penalty_holds_chat_or_everyone() {
        let mut l = limiter();
        let t0 = Instant::now();
        l.penalize(Some(5), t0 + Duration::from_secs(3));
        assert_eq!(l.try_acquire(5, t0 + Duration::from_secs(2)), Err(Wait::Chat(t0 + Duration::from_secs(3))));
        l.penalize(None, t0 + Duration::from_secs(10));
        assert!(matches!(l.try_acquire(6, t0 + Duration::from_secs(4)), Err(Wait::Global(_))));
        assert!(l.try_acquire(6, t0 + Duration::from_secs(10)).is_ok());
    }
}
