//! What the HTTP endpoint did with feed pushes, delivery reports and Telegram's
//! webhook posts.

use super::InternalEvent;
use crate::metrics::bump;
use crate::store::Report;
use crate::web::WebStats;

/// Why a post was refused.
pub enum Refusal<'a> {
    /// A wrong or missing secret (or signature).
    Secret(&'a str),
    /// A body that does not read.
    Unreadable(&'a dyn std::fmt::Display),
}

/// A feed's push accepted: its source polls now.
pub struct PushAccepted<'a> {
    pub source: &'a str,
}

impl InternalEvent for PushAccepted<'_> {
    type Counters = WebStats;
    fn emit(self, c: &WebStats) {
        bump(&c.pushes, 1);
        tracing::debug!(source = self.source, "webhook push accepted");
    }
}

/// A feed's push refused.
pub struct PushRefused<'a> {
    pub source: &'a str,
    pub why: Refusal<'a>,
}

impl InternalEvent for PushRefused<'_> {
    type Counters = WebStats;
    fn emit(self, c: &WebStats) {
        match self.why {
            Refusal::Secret(why) => {
                let refused = bump(&c.unauthorized, 1);
                tracing::warn!(source = self.source, why, refused, "webhook push refused");
            }
            Refusal::Unreadable(error) => {
                let refused = bump(&c.malformed, 1);
                tracing::warn!(source = self.source, %error, refused, "unreadable webhook push refused");
            }
        }
    }
}

/// A Telegram webhook post taken into the bot's queues.
pub struct TelegramUpdateTaken;

impl InternalEvent for TelegramUpdateTaken {
    type Counters = WebStats;
    fn emit(self, c: &WebStats) {
        bump(&c.telegram_updates, 1);
        tracing::trace!("telegram webhook update taken");
    }
}

/// A Telegram webhook post refused.
pub struct TelegramPostRefused<'a> {
    pub why: Refusal<'a>,
}

impl InternalEvent for TelegramPostRefused<'_> {
    type Counters = WebStats;
    fn emit(self, c: &WebStats) {
        match self.why {
            Refusal::Secret(why) => {
                let refused = bump(&c.telegram_unauthorized, 1);
                tracing::warn!(why, refused, "telegram webhook post refused");
            }
            Refusal::Unreadable(error) => {
                let refused = bump(&c.malformed, 1);
                tracing::warn!(%error, refused, "unreadable telegram webhook post refused");
            }
        }
    }
}

/// A gateway's delivery report refused.
pub struct ReportRefused<'a> {
    pub gateway: &'a str,
    pub why: Refusal<'a>,
}

impl InternalEvent for ReportRefused<'_> {
    type Counters = WebStats;
    fn emit(self, c: &WebStats) {
        match self.why {
            Refusal::Secret(why) => {
                let refused = bump(&c.unauthorized, 1);
                tracing::warn!(gateway = self.gateway, why, refused, "delivery report refused");
            }
            Refusal::Unreadable(error) => {
                let refused = bump(&c.malformed, 1);
                tracing::warn!(gateway = self.gateway, %error, refused, "unreadable delivery report refused");
            }
        }
    }
}

/// What a readable delivery report came to.
pub enum Reported<'a> {
    /// The message is still on its way: nothing to record.
    InProgress,
    /// No sent delivery has this id (unknown, or replayed after a final report).
    Unmatched,
    /// It changed this many deliveries.
    Recorded { deliveries: u64, report: &'a Report },
}

/// A gateway's delivery report read.
pub struct ReportRead<'a> {
    pub gateway: &'a str,
    pub platform_id: &'a str,
    pub outcome: Reported<'a>,
}

impl InternalEvent for ReportRead<'_> {
    type Counters = WebStats;
    fn emit(self, c: &WebStats) {
        let (gateway, platform_id) = (self.gateway, self.platform_id);
        match self.outcome {
            Reported::InProgress => {
                bump(&c.reports_in_progress, 1);
                tracing::trace!(gateway, platform_id, "delivery report of a message on its way");
            }
            Reported::Unmatched => {
                let unmatched = bump(&c.reports_unmatched, 1);
                tracing::info!(
                    gateway,
                    platform_id,
                    unmatched,
                    "delivery report for no sent delivery (unknown id, or replayed)"
                );
            }
            Reported::Recorded { deliveries, report } => {
                bump(&c.reports, 1);
                tracing::debug!(gateway, platform_id, deliveries, ?report, "delivery report recorded");
            }
        }
    }
}
