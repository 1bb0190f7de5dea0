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

/// A Telegram webhook post taken into the bot's queues.
pub struct TelegramUpdateTaken;

impl InternalEvent for TelegramUpdateTaken {
    type Counters = WebStats;
    fn emit(self, c: &WebStats) {
        bump(&c.telegram_updates, 1);
        tracing::trace!("telegram webhook update taken");
    }
}

/// Who posted what was refused.
pub enum Poster<'a> {
    /// A feed's push.
    Feed { source: &'a str },
    /// A gateway's delivery report.
    Gateway { gateway: &'a str },
    /// Telegram's webhook post (its secret token is counted apart: a wrong one means
    /// someone else posts, or our token changed).
    Telegram,
}

/// A post to the endpoint refused.
pub struct Refused<'a> {
    pub by: Poster<'a>,
    pub why: Refusal<'a>,
}

impl InternalEvent for Refused<'_> {
    type Counters = WebStats;
    fn emit(self, c: &WebStats) {
        let (what, source, gateway) = match self.by {
            Poster::Feed { source } => ("webhook push", Some(source), None),
            Poster::Gateway { gateway } => ("delivery report", None, Some(gateway)),
            Poster::Telegram => ("telegram webhook post", None, None),
        };
        match self.why {
            Refusal::Secret(why) => {
                let counter =
                    if matches!(self.by, Poster::Telegram) { &c.telegram_unauthorized } else { &c.unauthorized };
                let refused = bump(counter, 1);
                tracing::warn!(source, gateway, why, refused, "{what} refused");
            }
            Refusal::Unreadable(error) => {
                let refused = bump(&c.malformed, 1);
                tracing::warn!(source, gateway, %error, refused, "unreadable {what} refused");
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
