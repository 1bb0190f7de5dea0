//! Rate limits, decided before each request (DESIGN §2, invariant 5).
//!
//! Sliding windows, the same rule the platform applies: at most N messages in any
//! window of W. A token bucket with a burst would be kinder to short spikes but can
//! put 2N messages into one window, which Telegram answers with 429s. A small margin
//! (`limits.margin`, 5 ms by default) is added to each window so loopback or network
//! jitter between our clock and the platform's cannot turn a send that was on time
//! into a 429; it costs 0.5 % of the rate.
//!
//! One limiter per bot (Telegram's limits are per bot): the fan-out to private chats,
//! posts to region channels and the bot's replies all count against it. The global
//! window holds every send; an ordinary send fits while it holds fewer than
//! `global_per_sec`, a paid-broadcast send while it holds fewer than `paid_per_sec`.
//! A bot reply waiting for a slot goes before the fan-out's next send.
//!
//! **Architecture invariant:** [`RateLimiter`] is pure: it takes `now` and answers
//! when a send may happen. [`SharedLimiter`] adds the lock and the sleep.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

use crate::channels::Address;
use crate::config::TelegramLimits;

#[derive(Clone, Debug)]
struct Window {
    /// Most sends the window ever needs to remember.
    cap: usize,
    width: Duration,
    sent: VecDeque<Instant>,
}

impl Window {
    fn new(cap: u32, width: Duration) -> Self {
        Window { cap: cap.max(1) as usize, width, sent: VecDeque::new() }
    }

    fn prune(&mut self, now: Instant) {
        while self.sent.front().is_some_and(|&t| now.saturating_duration_since(t) >= self.width) {
            self.sent.pop_front();
        }
    }

    /// When one more send fits under `limit`: `now` if it fits already.
    fn ready_at(&self, limit: usize, now: Instant) -> Instant {
        let limit = limit.max(1);
        if self.sent.len() < limit {
            return now;
        }
        let oldest_that_must_leave = self.sent[self.sent.len() - limit];
        (oldest_that_must_leave + self.width).max(now)
    }

    fn push(&mut self, now: Instant) {
        self.sent.push_back(now);
        while self.sent.len() > self.cap {
            self.sent.pop_front();
        }
    }
}

/// Why a send must wait, and until when.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Wait {
    /// Every chat must wait: the global limit (or a bot-wide 429) holds.
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

/// Which per-chat window a recipient falls under.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Recipient {
    key: String,
    group: bool,
}

impl Recipient {
    /// Private chats (positive ids) get the per-chat window; groups and channels the
    /// per-group one.
    pub fn of(address: &Address) -> Recipient {
        let group = match address {
            Address::TelegramChat(id) => *id < 0,
            Address::TelegramChannel(_) => true,
            Address::Phone(_) => false,
        };
        Recipient { key: address.to_string(), group }
    }

    #[cfg(test)]
    pub fn chat(id: i64) -> Recipient {
        Recipient::of(&Address::TelegramChat(id))
    }

    #[cfg(test)]
    pub fn channel(name: &str) -> Recipient {
        Recipient::of(&Address::TelegramChannel(crate::channels::ChannelRef::Username(name.to_owned())))
    }
}

#[derive(Debug)]
pub struct RateLimiter {
    limits: TelegramLimits,
    margin: Duration,
    /// Every send in the last second, up to the paid limit.
    global: Window,
    chats: HashMap<Recipient, Window>,
    global_block: Option<Instant>,
    chat_block: HashMap<Recipient, Instant>,
    /// Requests in the last second, where a request may carry several messages (SMS
    /// gateways that batch) and the platform limits both.
    requests: Option<(usize, Window)>,
}

impl RateLimiter {
    pub fn new(limits: TelegramLimits) -> Self {
        let margin = limits.margin;
        let cap = limits.paid_per_sec.max(limits.global_per_sec);
        RateLimiter {
            limits,
            margin,
            global: Window::new(cap, Duration::from_secs(1) + margin),
            chats: HashMap::new(),
            global_block: None,
            chat_block: HashMap::new(),
            requests: None,
        }
    }

    /// Also at most `per_sec` requests in any second, whatever each carries.
    pub fn with_requests(mut self, per_sec: u32) -> Self {
        self.requests = Some((per_sec.max(1) as usize, Window::new(per_sec, Duration::from_secs(1) + self.margin)));
        self
    }

    fn requests_ready(&mut self, now: Instant) -> Instant {
        match &mut self.requests {
            Some((limit, w)) => {
                w.prune(now);
                w.ready_at(*limit, now)
            }
            None => now,
        }
    }

    /// One request carrying messages to the first of `to` that may go now (a prefix:
    /// the first recipient whose own window is full ends it). Returns how many go, at
    /// least one, all counted; or, when none may, the wait and nothing changes.
    pub fn try_acquire_many(&mut self, to: &[Recipient], now: Instant) -> Result<usize, Wait> {
        let ready = self.global_ready(false, now).max(self.requests_ready(now));
        if ready > now {
            return Err(Wait::Global(ready));
        }
        let room = self.global_limit(false).saturating_sub(self.global.sent.len());
        let mut taken = 0;
        for r in to.iter().take(room) {
            let fresh = self.chat_window(r);
            let window = self.chats.entry(r.clone()).or_insert(fresh);
            window.prune(now);
            let chat_ready = window.ready_at(window.cap, now).max(self.chat_block.get(r).copied().unwrap_or(now));
            if chat_ready > now {
                if taken == 0 {
                    return Err(Wait::Chat(chat_ready));
                }
                break;
            }
            window.push(now);
            self.global.push(now);
            self.chat_block.remove(r);
            taken += 1;
        }
        if let Some((_, w)) = &mut self.requests {
            w.push(now);
        }
        if self.global_block.is_some_and(|t| t <= now) {
            self.global_block = None;
        }
        Ok(taken)
    }

    fn global_limit(&self, paid: bool) -> usize {
        let l =
            if paid { self.limits.paid_per_sec.max(self.limits.global_per_sec) } else { self.limits.global_per_sec };
        l as usize
    }

    fn chat_window(&self, to: &Recipient) -> Window {
        if to.group {
            Window::new(self.limits.group_per_min, Duration::from_secs(60) + self.margin)
        } else {
            Window::new(self.limits.per_chat_per_sec, Duration::from_secs(1) + self.margin)
        }
    }

    fn global_ready(&mut self, paid: bool, now: Instant) -> Instant {
        self.global.prune(now);
        let limit = self.global_limit(paid);
        let requests = self.requests_ready(now);
        self.global.ready_at(limit, now).max(self.global_block.unwrap_or(now)).max(requests)
    }

    /// How many sends fit globally right now.
    pub fn available(&mut self, paid: bool, now: Instant) -> usize {
        if self.global_block.is_some_and(|t| t > now) || self.requests_ready(now) > now {
            return 0;
        }
        self.global.prune(now);
        self.global_limit(paid).saturating_sub(self.global.sent.len())
    }

    /// When a send (of either kind) next fits globally.
    pub fn next_free(&mut self, paid: bool, now: Instant) -> Instant {
        self.global_ready(paid, now)
    }

    /// May a message go to `to` at `now`? If so it is counted; if not, nothing changes.
    pub fn try_acquire(&mut self, to: &Recipient, paid: bool, now: Instant) -> Result<(), Wait> {
        let global_ready = self.global_ready(paid, now);
        if global_ready > now {
            return Err(Wait::Global(global_ready));
        }
        let fresh = self.chat_window(to);
        let window = self.chats.entry(to.clone()).or_insert(fresh);
        window.prune(now);
        let limit = window.cap;
        let chat_ready = window.ready_at(limit, now).max(self.chat_block.get(to).copied().unwrap_or(now));
        if chat_ready > now {
            return Err(Wait::Chat(chat_ready));
        }
        window.push(now);
        self.global.push(now);
        if let Some((_, w)) = &mut self.requests {
            w.push(now);
        }
        self.chat_block.remove(to);
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
    pub fn penalize(&mut self, chat: Option<&Recipient>, until: Instant) {
        match chat {
            Some(c) => {
                let e = self.chat_block.entry(c.clone()).or_insert(until);
                *e = (*e).max(until);
            }
            None => self.global_block = Some(self.global_block.map_or(until, |t| t.max(until))),
        }
    }
}

/// The limiter shared by everything that sends through one bot.
#[derive(Clone, Debug)]
pub struct SharedLimiter {
    inner: Arc<Mutex<RateLimiter>>,
    /// Bot replies waiting for a slot; while any wait, the fan-out leaves the slots to
    /// them, so a resident typing /start during a million-message fan-out is answered
    /// in a second, not in hours.
    replies_waiting: Arc<AtomicUsize>,
}

impl SharedLimiter {
    pub fn new(limits: TelegramLimits) -> Self {
        SharedLimiter::of(RateLimiter::new(limits))
    }

    pub fn of(limiter: RateLimiter) -> Self {
        SharedLimiter { inner: Arc::new(Mutex::new(limiter)), replies_waiting: Arc::new(AtomicUsize::new(0)) }
    }

    /// See [`RateLimiter::try_acquire_many`].
    pub fn try_acquire_many(&self, to: &[Recipient]) -> Result<usize, Wait> {
        self.lock().try_acquire_many(to, Instant::now())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, RateLimiter> {
        // The limiter's state stays valid at every step, so a poisoned lock is usable.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn replies_first(&self, now: Instant) -> Result<(), Wait> {
        if self.replies_waiting.load(Ordering::Acquire) > 0 {
            // Look again shortly; the reply takes the slot meanwhile.
            return Err(Wait::Global(now + Duration::from_millis(5)));
        }
        Ok(())
    }

    /// For the fan-out: may a message go to `to` now?
    pub fn try_acquire(&self, to: &Recipient, paid: bool) -> Result<(), Wait> {
        let now = Instant::now();
        self.replies_first(now)?;
        self.lock().try_acquire(to, paid, now)
    }

    /// For the fan-out: how many sends fit right now.
    pub fn available(&self, paid: bool) -> usize {
        let now = Instant::now();
        if self.replies_first(now).is_err() {
            return 0;
        }
        self.lock().available(paid, now)
    }

    pub fn next_free(&self, paid: bool) -> Instant {
        let now = Instant::now();
        if let Err(w) = self.replies_first(now) {
            return w.until();
        }
        self.lock().next_free(paid, now)
    }

    /// For a bot reply: waits until a message may go to `to`, ahead of the fan-out,
    /// then counts it.
    pub async fn acquire_reply(&self, to: &Recipient) {
        self.replies_waiting.fetch_add(1, Ordering::AcqRel);
        loop {
            let wait = self.lock().try_acquire(to, false, Instant::now());
            match wait {
                Ok(()) => break,
                Err(w) => tokio::time::sleep_until(w.until()).await,
            }
        }
        self.replies_waiting.fetch_sub(1, Ordering::AcqRel);
    }

    pub fn penalize(&self, chat: Option<&Recipient>, until: Instant) {
        self.lock().penalize(chat, until);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> TelegramLimits {
        TelegramLimits { margin: Duration::ZERO, ..TelegramLimits::default() }
    }

    /// Offers a send every millisecond for `ms`, each to a new chat; returns the times
    /// of those let through.
    fn offer(l: &mut RateLimiter, paid: bool, ms: u64) -> Vec<Instant> {
        let start = Instant::now();
        let mut sent = Vec::new();
        for i in 0..ms {
            let now = start + Duration::from_millis(i);
            if l.try_acquire(&Recipient::chat(i as i64 + 1), paid, now).is_ok() {
                sent.push(now);
            }
        }
        sent
    }

    fn max_in_any_second(sent: &[Instant]) -> usize {
        (0..sent.len())
            .map(|i| sent[i..].iter().take_while(|&&u| u - sent[i] < Duration::from_secs(1)).count())
            .max()
            .unwrap_or(0)
    }

    #[test]
    fn no_window_of_one_second_holds_more_than_the_limit() {
        let mut l = RateLimiter::new(limits());
        let sent = offer(&mut l, false, 3000);
        assert!(max_in_any_second(&sent) <= 30);
        assert_eq!(sent.len(), 90, "the limit is also reached, not just respected");
    }

    #[test]
    fn batches_keep_both_the_message_and_the_request_rate() {
        let l = TelegramLimits { global_per_sec: 100, paid_per_sec: 100, ..limits() };
        let mut l = RateLimiter::new(l).with_requests(3);
        let start = Instant::now();
        let (mut messages, mut requests) = (Vec::new(), Vec::new());
        let mut next = 0u32;
        for ms in 0..3000 {
            let now = start + Duration::from_millis(ms);
            let batch: Vec<Recipient> = (0..60).map(|i| Recipient::chat(i64::from(next + i) + 1)).collect();
            if let Ok(n) = l.try_acquire_many(&batch, now) {
                assert!((1..=60).contains(&n));
                next += n as u32;
                messages.extend(std::iter::repeat_n(now, n));
                requests.push(now);
            }
        }
        assert!(max_in_any_second(&messages) <= 100, "{}", max_in_any_second(&messages));
        assert!(max_in_any_second(&requests) <= 3, "{}", max_in_any_second(&requests));
        assert!(messages.len() >= 280, "the message rate is used, not wasted: {}", messages.len());
        // A recipient whose own window is full ends the batch, or holds it when first.
        let now = start + Duration::from_secs(10);
        let same = vec![Recipient::chat(7), Recipient::chat(8)];
        assert_eq!(l.try_acquire_many(&same, now), Ok(2));
        let later = now + Duration::from_millis(400);
        assert!(matches!(l.try_acquire_many(&same, later), Err(Wait::Chat(_))));
        let mixed = vec![Recipient::chat(9), Recipient::chat(7)];
        assert_eq!(l.try_acquire_many(&mixed, later), Ok(1));
    }

    #[test]
    fn paid_sends_get_the_paid_limit_and_ordinary_ones_do_not() {
        let mut l = RateLimiter::new(TelegramLimits { paid_per_sec: 200, ..limits() });
        let paid = offer(&mut l, true, 2000);
        assert_eq!(paid.len(), 400);
        assert!(max_in_any_second(&paid) <= 200);
        // With the window full of paid sends, an ordinary send waits.
        let now = *paid.last().expect("sent");
        assert!(matches!(l.try_acquire(&Recipient::chat(-1), false, now), Err(Wait::Global(_))));
        assert_eq!(l.available(true, now), 0);
    }

    #[test]
    fn one_per_second_per_private_chat_and_twenty_per_minute_per_group() {
        let mut l = RateLimiter::new(limits());
        let t0 = Instant::now();
        let seven = Recipient::chat(7);
        assert!(l.try_acquire(&seven, false, t0).is_ok());
        assert_eq!(
            l.try_acquire(&seven, false, t0 + Duration::from_millis(500)),
            Err(Wait::Chat(t0 + Duration::from_secs(1)))
        );
        assert!(l.try_acquire(&Recipient::chat(8), false, t0 + Duration::from_millis(500)).is_ok());
        assert!(l.try_acquire(&seven, false, t0 + Duration::from_secs(1)).is_ok());

        let channel = Recipient::channel("kharkiv_alerts");
        for i in 0..20 {
            assert!(l.try_acquire(&channel, false, t0 + Duration::from_millis(1100 * i)).is_ok(), "post {i}");
        }
        assert!(matches!(l.try_acquire(&channel, false, t0 + Duration::from_secs(23)), Err(Wait::Chat(_))));
        assert!(l.try_acquire(&channel, false, t0 + Duration::from_secs(61)).is_ok());
    }

    #[test]
    fn penalty_holds_chat_or_everyone() {
        let mut l = RateLimiter::new(limits());
        let t0 = Instant::now();
        let five = Recipient::chat(5);
        l.penalize(Some(&five), t0 + Duration::from_secs(3));
        assert_eq!(
            l.try_acquire(&five, false, t0 + Duration::from_secs(2)),
            Err(Wait::Chat(t0 + Duration::from_secs(3)))
        );
        l.penalize(None, t0 + Duration::from_secs(10));
        assert!(matches!(l.try_acquire(&Recipient::chat(6), false, t0 + Duration::from_secs(4)), Err(Wait::Global(_))));
        assert_eq!(l.available(false, t0 + Duration::from_secs(4)), 0);
        assert!(l.try_acquire(&Recipient::chat(6), false, t0 + Duration::from_secs(10)).is_ok());
    }

    #[tokio::test(start_paused = true)]
    async fn a_waiting_reply_goes_before_the_fan_out() {
        let l = SharedLimiter::new(TelegramLimits { global_per_sec: 1, ..limits() });
        assert!(l.try_acquire(&Recipient::chat(1), false).is_ok());
        let replier = l.clone();
        let reply = tokio::spawn(async move { replier.acquire_reply(&Recipient::chat(2)).await });
        tokio::task::yield_now().await;
        assert_eq!(l.available(false), 0, "the fan-out yields while a reply waits");
        assert!(l.try_acquire(&Recipient::chat(3), false).is_err());
        reply.await.expect("reply");
        tokio::time::advance(Duration::from_secs(1)).await;
        assert!(l.try_acquire(&Recipient::chat(3), false).is_ok(), "and resumes after it");
    }
}
