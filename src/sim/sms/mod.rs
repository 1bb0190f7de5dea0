//! SMS gateway simulators: TurboSMS (HTTP API v2), Twilio Programmable
//! Messaging, and a typical generic SMS HTTP API.
//!
//! Role: stand in for `api.turbosms.ua` and `api.twilio.com` so the SMS
//! adapters in `crate::channels::sms` can be driven end to end on loopback,
//! and so tests can make each gateway refuse, throttle, fail and report
//! deliveries the way the real one does. Each simulator is a real HTTP server
//! on `127.0.0.1:0`; `base_url()` is what an adapter's configured base URL
//! becomes.
//!
//! What each enforces is listed in its module: [`turbosms`], [`twilio`] and
//! [`generic`]. Common to all:
//! - every request is recorded ([`SmsRequest`]), every accepted message too
//!   ([`SentSms`]), before the answer is written, so a client that gives up
//!   on an answer leaves an accepted message behind, as on the real service;
//! - injected faults ([`SmsFault`], `inject(fault, times)`) are drawn in the
//!   order queued, one per request, on arrival and before authentication:
//!   they model the path to the gateway failing. A faulted request uses up
//!   no rate limit and sends nothing, except [`SmsFault::Delay`] and
//!   [`SmsFault::AcceptThenDrop`], which are the gateway handling the
//!   request normally while the client waits in vain;
//! - time for the gateways' windows (rate limits, TurboSMS's 90 s duplicate
//!   rule, Twilio's 30-in-30 s rule) is read from the simulator's own clock,
//!   which tests move forward with `advance(d)` instead of waiting. Records
//!   carry that clock's instants. Delays of callbacks and answers are real;
//! - delivery callbacks go only to loopback URLs, from tasks on the caller's
//!   `TaskTracker`, and stop on the caller's `CancellationToken`.
//!
//! Layout: this module (record types, faults, the clock, sliding windows,
//! SMS segment counting, form decoding), `core` (the server plumbing and
//! record accessors both simulators share), `http` (connection serving that
//! can hang up without answering, loopback checks), `turbosms`, `twilio`,
//! `generic`.

mod core;
pub mod generic;
mod http;
pub mod turbosms;
pub mod twilio;

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

pub use generic::{GenericSmsSim, GenericSmsSimConfig};
pub use turbosms::{DlrSecret, DlrStatus, DlrTarget, TurboSmsSim, TurboSmsSimConfig};
pub use twilio::{FinalStatus, TwilioMessage, TwilioSim, TwilioSimConfig};

/// Loopback jitter can put two requests a client spaced exactly one window
/// apart slightly inside it; without this slack a well-behaved client would
/// be throttled at random.
const WINDOW_TOLERANCE: Duration = Duration::from_millis(15);

/// Which simulator accepted a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Gateway {
    TurboSms,
    Twilio,
    Generic,
}

/// How a message was to reach the phone.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SmsMode {
    Sms,
    /// TurboSMS `viber` without `sms`.
    Viber,
    /// TurboSMS `viber` and `sms` together: Viber first, SMS if Viber fails.
    ViberWithSmsFallback,
}

/// A message a gateway accepted, one per recipient.
#[derive(Clone, Debug, PartialEq)]
pub struct SentSms {
    pub gateway: Gateway,
    /// As the gateway keeps it: TurboSMS digits without `+`, Twilio and the
    /// generic API E.164.
    pub to: String,
    /// The SMS text (the Viber text for a Viber-only message).
    pub text: String,
    /// TurboSMS sender name; Twilio `From`, or the `MessagingServiceSid`
    /// when no `From` was given.
    pub sender: String,
    /// TurboSMS `message_id`, Twilio `sid`, the generic API's `message_id`.
    pub id: String,
    pub mode: SmsMode,
    /// SMS parts the text takes (see [`segments`]).
    pub parts: u32,
    /// On the simulator's clock.
    pub at: Instant,
}

/// One request as received, refused and faulted ones included.
#[derive(Clone, Debug)]
pub struct SmsRequest {
    pub method: String,
    pub path: String,
    /// The body as sent (lossy UTF-8).
    pub body: String,
    /// The HTTP status answered; 0 for a connection closed without one.
    pub http_status: u16,
    /// TurboSMS top-level `response_code`, Twilio error `code`; `None` for
    /// answers that carry neither (injected faults, Twilio successes).
    pub code: Option<i64>,
    /// On the simulator's clock, when the body had been read.
    pub at: Instant,
}

/// Counters over every request answered or hung up on.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SmsStats {
    pub requests: u64,
    /// Messages accepted (one per recipient).
    pub accepted: u64,
    /// Recipients or requests refused by a gateway rule (bad number,
    /// duplicate, sender, balance, …); authentication and throttling are
    /// counted on their own.
    pub rejected: u64,
    pub auth_failures: u64,
    /// Requests refused for a rate limit.
    pub rate_limited: u64,
    /// Retries answered from an earlier result (TurboSMS `sequence_id`).
    pub replayed: u64,
    /// Requests that drew an injected fault.
    pub faulted: u64,
    /// Connections closed without an answer.
    pub dropped: u64,
}

/// A delivery report the simulator posted (or tried to).
#[derive(Clone, Debug, PartialEq)]
pub struct CallbackRecord {
    pub message_id: String,
    /// The status as sent: TurboSMS `Delivered`…, Twilio `sent`, `delivered`…
    pub status: String,
    pub url: String,
    /// The receiver's answer; `None` when the post failed or the URL was
    /// refused (not loopback).
    pub http_status: Option<u16>,
    pub at: Instant,
}

/// A misbehaviour served instead of the gateway's normal handling.
#[derive(Clone, Debug, PartialEq)]
pub enum SmsFault {
    /// This HTTP status with a proxy's HTML page (Twilio: its error JSON for
    /// 500 and 503). Nothing is processed.
    Status(u16),
    /// Wait this long, then handle the request normally — also when the
    /// client has given up meanwhile, since the gateway already has the whole
    /// request. With a shorter client timeout this is a timeout after which
    /// the messages still go out. Cut short by shutdown.
    Delay(Duration),
    /// HTTP 200 with an HTML page where JSON belongs. Nothing is processed.
    Garbage,
    /// Close the connection at once without an answer. Nothing is processed.
    Reset,
    /// Handle the request normally — accepted messages are recorded and a
    /// `sequence_id` is remembered — then hold the connection this long and
    /// close it without an answer: the client cannot know the messages went
    /// out. Zero closes at once.
    AcceptThenDrop(Duration),
    /// The gateway refuses the whole request with this code, nothing sent:
    /// TurboSMS HTTP 200 with this `response_code` (e.g. 999 FATAL_ERROR,
    /// 503 FAILED_SMS_SEND), Twilio its error JSON with the HTTP status the
    /// code implies (20429 → 429, 20003 → 401, 20500 → 500, else 400), the
    /// generic API this HTTP status with its JSON error.
    ErrorCode(i64),
}

/// Queued faults, used in order, one per request.
#[derive(Default)]
pub(super) struct FaultQueue(VecDeque<SmsFault>);

impl FaultQueue {
    pub(super) fn push(&mut self, fault: SmsFault, times: u32) {
        for _ in 0..times {
            self.0.push_back(fault.clone());
        }
    }

    pub(super) fn draw(&mut self) -> Option<SmsFault> {
        self.0.pop_front()
    }

    pub(super) fn clear(&mut self) {
        self.0.clear();
    }
}

/// The simulator's clock: real time plus whatever tests have advanced it by.
#[derive(Default)]
pub(super) struct SimClock {
    offset: Mutex<Duration>,
}

impl SimClock {
    pub(super) fn now(&self) -> Instant {
        Instant::now() + *self.offset.lock().expect("sim clock lock")
    }

    pub(super) fn advance(&self, by: Duration) {
        *self.offset.lock().expect("sim clock lock") += by;
    }
}

/// A sliding window of hits with a ceiling.
pub(super) struct Window {
    span: Duration,
    hits: VecDeque<Instant>,
}

impl Window {
    pub(super) fn new(span: Duration) -> Self {
        Self { span, hits: VecDeque::new() }
    }

    fn prune(&mut self, now: Instant) {
        let span = self.span.saturating_sub(WINDOW_TOLERANCE);
        while self.hits.front().is_some_and(|&at| now.saturating_duration_since(at) >= span) {
            self.hits.pop_front();
        }
    }

    /// Hits in the window now.
    pub(super) fn count(&mut self, now: Instant) -> usize {
        self.prune(now);
        self.hits.len()
    }

    /// `Some(wait)` if `n` more hits now would exceed `limit`. An empty
    /// window takes any `n`, so a batch larger than the limit is not refused
    /// for ever.
    pub(super) fn wait(&mut self, limit: u32, n: usize, now: Instant) -> Option<Duration> {
        self.prune(now);
        let limit = usize::try_from(limit).unwrap_or(usize::MAX);
        if self.hits.is_empty() || self.hits.len() + n <= limit {
            return None;
        }
        // The oldest hit leaving frees at least one place; a client is told
        // to wait for that, then asks again.
        let oldest = self.hits.front().copied().unwrap_or(now);
        let span = self.span.saturating_sub(WINDOW_TOLERANCE);
        Some(span.saturating_sub(now.saturating_duration_since(oldest)).max(Duration::from_millis(1)))
    }

    pub(super) fn add(&mut self, n: usize, now: Instant) {
        for _ in 0..n {
            self.hits.push_back(now);
        }
    }
}

/// How a text is encoded on the air and what it costs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Segments {
    /// GSM 03.38 7-bit; otherwise UCS-2.
    pub gsm7: bool,
    /// Septets (GSM-7, extension characters count 2) or UTF-16 units.
    pub units: usize,
    pub parts: u32,
}

/// GSM 03.38 default alphabet, without the escape.
const GSM7_BASIC: &str = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?\
¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà";
/// The extension table: each is an escape plus a septet.
const GSM7_EXTENDED: &str = "^{}\\[~]|€\u{c}";

/// Parts a text takes: GSM-7 160 in one part, 153 per part when
/// concatenated; UCS-2 70 and 67. An empty text takes one part.
// Deliberately repeats `crate::messages::sms`: a simulator must not share code with what it tests.
pub fn segments(text: &str) -> Segments {
    let gsm7 = text.chars().all(|c| GSM7_BASIC.contains(c) || GSM7_EXTENDED.contains(c));
    let (units, single, multi) = if gsm7 {
        (text.chars().map(|c| if GSM7_EXTENDED.contains(c) { 2 } else { 1 }).sum(), 160, 153)
    } else {
        (text.encode_utf16().count(), 70, 67)
    };
    let parts = if units <= single { 1 } else { units.div_ceil(multi) };
    Segments { gsm7, units, parts: u32::try_from(parts).unwrap_or(u32::MAX) }
}

/// Waits until `done()` holds, `timeout` passes or shutdown, re-checking on
/// every bump of `changed`.
pub(super) async fn wait_for(
    changed: &watch::Sender<u64>,
    shutdown: &CancellationToken,
    timeout: Duration,
    done: impl Fn() -> bool,
) {
    let deadline = tokio::time::Instant::now() + timeout;
    // Subscribing before looking means a change between the look and the
    // wait still wakes us.
    let mut rx = changed.subscribe();
    while !done() {
        tokio::select! {
            r = rx.changed() => if r.is_err() { return },
            () = tokio::time::sleep_until(deadline) => return,
            () = shutdown.cancelled() => return,
        }
    }
}

/// `digits` lowercase hex digits from a counter mixed with a seed, so ids
/// look random but are reproducible within one simulator.
pub(super) fn mixed_hex(seed: u64, counter: u64, digits: usize) -> String {
    let mut out = String::with_capacity(digits);
    let mut round = 0u64;
    while out.len() < digits {
        let mut z = seed ^ counter.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ round.wrapping_mul(0xD1B5_4A32_D192_ED03);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        out.push_str(&format!("{z:016x}"));
        round += 1;
    }
    out.truncate(digits);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_follow_gsm7_and_ucs2_limits() {
        assert_eq!(segments(""), Segments { gsm7: true, units: 0, parts: 1 });
        assert_eq!(segments(&"a".repeat(160)).parts, 1);
        assert_eq!(segments(&"a".repeat(161)).parts, 2);
        assert_eq!(segments(&"a".repeat(306)).parts, 2);
        assert_eq!(segments(&"a".repeat(307)).parts, 3);
        // Extension characters take two septets.
        assert_eq!(segments(&"€".repeat(80)), Segments { gsm7: true, units: 160, parts: 1 });
        assert_eq!(segments(&"€".repeat(81)).parts, 2);
        // One Cyrillic letter makes the whole text UCS-2.
        let uk = "Повітряна тривога";
        assert!(!segments(uk).gsm7);
        assert_eq!(segments(&"я".repeat(70)).parts, 1);
        assert_eq!(segments(&"я".repeat(71)).parts, 2);
        assert_eq!(segments(&"я".repeat(134)).parts, 2);
        assert_eq!(segments(&"я".repeat(135)).parts, 3);
        // An emoji is two UTF-16 units.
        assert_eq!(segments("🚨").units, 2);
    }

    #[test]
    fn windows_refuse_past_the_limit_and_reopen() {
        let t0 = Instant::now();
        let mut w = Window::new(Duration::from_secs(1));
        assert_eq!(w.wait(2, 5, t0), None, "an empty window takes any batch");
        w.add(1, t0);
        assert_eq!(w.wait(2, 1, t0), None);
        w.add(1, t0);
        let wait = w.wait(2, 1, t0 + Duration::from_millis(400));
        assert_eq!(wait, Some(Duration::from_millis(585)));
        assert_eq!(w.wait(2, 1, t0 + Duration::from_millis(990)), None);
        assert_eq!(w.count(t0 + Duration::from_millis(990)), 0);
    }

    #[test]
    fn ids_are_reproducible_and_distinct() {
        assert_eq!(mixed_hex(1, 2, 32), mixed_hex(1, 2, 32));
        assert_ne!(mixed_hex(1, 2, 32), mixed_hex(1, 3, 32));
        assert_eq!(mixed_hex(7, 1, 40).len(), 40);
    }
}
