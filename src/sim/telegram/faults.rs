//! Faults injected into `sendMessage`.
//!
//! Role: models the path to Telegram failing, not Telegram refusing: its
//! front end answering 5xx, a 429 out of the blue, a chat that vanished, a
//! connection that hangs or breaks. Crash and retry tests script these so a
//! sender's error handling is exercised on every branch.
//!
//! Rules:
//! - A fault is drawn after authentication and before any other check, so it
//!   hits a request whatever it carries; a request that draws one never
//!   enters the flood-limit windows and is never recorded as sent.
//! - Scripts (`TelegramSim::inject`) are used in the order they were queued:
//!   a request takes one draw from the first script whose target matches it.
//!   Only a request no script took consults the share.
//! - The share draws once per such request from a generator seeded by the
//!   caller, so the same seed and the same sequence of requests fault the
//!   same requests on every run.

use std::collections::VecDeque;
use std::time::Duration;

use super::methods::{ApiFailure, Outcome};

/// What a faulted `sendMessage` gets instead of Telegram's normal handling.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SendFault {
    /// Bot API error envelope with this error_code as HTTP status, e.g. 500
    /// "Internal Server Error", 502 "Bad Gateway". A code HTTP cannot carry
    /// is sent as 500.
    Status { code: u16, description: String },
    /// 429 with `parameters.retry_after`.
    TooManyRequests { retry_after: u64 },
    /// 400 "Bad Request: chat not found".
    ChatNotFound,
    /// Hold the request this long, then close the connection without
    /// answering. Nothing is recorded as sent. Cut short by shutdown.
    Stall(Duration),
    /// Close the connection at once without an answer. Nothing is recorded
    /// as sent.
    Reset,
}

/// Which `sendMessage` requests a script applies to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FaultTarget {
    /// Requests whose `chat_id` is this chat; an `"@username"` counts as its
    /// channel's numeric id.
    Chat(i64),
    /// Every request.
    Any,
}

impl FaultTarget {
    fn matches(self, chat: Option<i64>) -> bool {
        match self {
            FaultTarget::Any => true,
            FaultTarget::Chat(id) => chat == Some(id),
        }
    }
}

impl SendFault {
    /// How the request is answered, or not answered.
    pub(super) fn outcome(self) -> Outcome {
        match self {
            SendFault::Status { code, description } => {
                // The envelope's error_code and the HTTP status must agree,
                // so a code outside HTTP's range becomes 500 in both.
                let code = if (100..=999).contains(&code) { code } else { 500 };
                Outcome::Now(Err(ApiFailure::new(code, description)))
            }
            SendFault::TooManyRequests { retry_after } => Outcome::Now(Err(ApiFailure::too_many_requests(retry_after))),
            SendFault::ChatNotFound => Outcome::Now(Err(ApiFailure::bad_request("Bad Request: chat not found"))),
            SendFault::Stall(hold) => Outcome::HangUp(hold),
            SendFault::Reset => Outcome::HangUp(Duration::ZERO),
        }
    }
}

/// The scripts and the share currently in force.
#[derive(Default)]
pub(super) struct FaultPlan {
    scripts: VecDeque<Script>,
    share: Option<Share>,
}

struct Script {
    target: FaultTarget,
    fault: SendFault,
    /// Always at least 1: a used-up script is removed at once, so it cannot
    /// shadow the scripts queued after it.
    left: u32,
}

struct Share {
    fault: SendFault,
    /// Out of 1000 draws, capped at 1000.
    per_mille: u32,
    rng: SplitMix64,
}

impl FaultPlan {
    pub(super) fn script(&mut self, target: FaultTarget, fault: SendFault, times: u32) {
        if times > 0 {
            self.scripts.push_back(Script { target, fault, left: times });
        }
    }

    /// Replaces any earlier share: one share at a time keeps the odds a
    /// test reads off its own call.
    pub(super) fn share(&mut self, fault: SendFault, per_mille: u32, seed: u64) {
        self.share = Some(Share { fault, per_mille: per_mille.min(1000), rng: SplitMix64(seed) });
    }

    pub(super) fn clear(&mut self) {
        *self = Self::default();
    }

    /// The fault this request draws, if any. `chat` is the request's chat as
    /// far as it resolves; `None` matches only `FaultTarget::Any`.
    pub(super) fn draw(&mut self, chat: Option<i64>) -> Option<SendFault> {
        let hit = self.scripts.iter_mut().enumerate().find(|(_, s)| s.target.matches(chat));
        if let Some((index, script)) = hit {
            let fault = script.fault.clone();
            script.left = script.left.saturating_sub(1);
            if script.left == 0 {
                self.scripts.remove(index);
            }
            return Some(fault);
        }
        let share = self.share.as_mut()?;
        (share.rng.next_u64() % 1000 < u64::from(share.per_mille)).then(|| share.fault.clone())
    }
}

/// SplitMix64: tiny, fast and fully determined by its seed, which is all a
/// fault share needs; nothing here has to be unpredictable.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scripts_are_used_in_order_and_only_for_their_target() {
        let mut plan = FaultPlan::default();
        plan.script(FaultTarget::Chat(1), SendFault::Reset, 2);
        plan.script(FaultTarget::Any, SendFault::ChatNotFound, 1);
        plan.script(FaultTarget::Chat(1), SendFault::TooManyRequests { retry_after: 3 }, 1);
        plan.script(FaultTarget::Chat(2), SendFault::Reset, 0);

        // Chat 2 skips chat 1's script and takes the first `Any`.
        assert_eq!(plan.draw(Some(2)), Some(SendFault::ChatNotFound));
        assert_eq!(plan.draw(Some(2)), None, "a script of zero times is no script");
        assert_eq!(plan.draw(Some(1)), Some(SendFault::Reset));
        assert_eq!(plan.draw(None), None, "an unresolved chat matches only Any");
        assert_eq!(plan.draw(Some(1)), Some(SendFault::Reset));
        assert_eq!(plan.draw(Some(1)), Some(SendFault::TooManyRequests { retry_after: 3 }));
        assert_eq!(plan.draw(Some(1)), None);
    }

    #[test]
    fn share_is_deterministic_and_near_its_odds() {
        let pattern = |seed: u64, per_mille: u32| {
            let mut plan = FaultPlan::default();
            plan.share(SendFault::Reset, per_mille, seed);
            (0..1000).map(|_| plan.draw(Some(1)).is_some()).collect::<Vec<_>>()
        };
        assert_eq!(pattern(7, 250), pattern(7, 250));
        assert_ne!(pattern(7, 250), pattern(8, 250));
        let hits = pattern(7, 250).iter().filter(|&&hit| hit).count();
        assert!((200..=300).contains(&hits), "{hits} of 1000 at 250 per mille");
        assert!(pattern(1, 0).iter().all(|&hit| !hit));
        assert!(pattern(1, 1000).iter().all(|&hit| hit));
        assert!(pattern(1, 5000).iter().all(|&hit| hit), "capped at all of them");
    }

    #[test]
    fn scripts_come_before_the_share_and_clear_ends_both() {
        let mut plan = FaultPlan::default();
        plan.share(SendFault::Reset, 1000, 1);
        plan.script(FaultTarget::Any, SendFault::ChatNotFound, 1);
        assert_eq!(plan.draw(Some(5)), Some(SendFault::ChatNotFound));
        assert_eq!(plan.draw(Some(5)), Some(SendFault::Reset));
        plan.script(FaultTarget::Any, SendFault::ChatNotFound, 1);
        plan.clear();
        assert_eq!(plan.draw(Some(5)), None);
    }
}
