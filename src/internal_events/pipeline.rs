//! What the pipeline did: events written, snapshots held, config refused, and
//! operators' commands refused.

use super::InternalEvent;
use crate::alerts::Event;
use crate::config::ConfigErrors;
use crate::metrics::{PipelineStats, bump};

/// An event given its audience and written to the outbox.
pub struct EventWritten<'a> {
    pub event: &'a Event,
    /// False when the store already had it (a replay after a restart).
    pub new: bool,
    pub recipients: usize,
    pub enqueued: usize,
    pub match_ms: f64,
    pub enqueue_ms: f64,
}

impl InternalEvent for EventWritten<'_> {
    type Counters = PipelineStats;
    fn emit(self, c: &PipelineStats) {
        let e = self.event;
        if self.new {
            c.event(e.kind, e.transition);
        }
        tracing::info!(
            event = %e.id,
            kind = %e.kind,
            transition = e.transition.as_str(),
            new = self.new,
            recipients = self.recipients,
            enqueued = self.enqueued,
            match_ms = self.match_ms,
            enqueue_ms = self.enqueue_ms,
            "event"
        );
    }
}

/// A source's snapshot held as implausible: its all-clears wait.
pub struct SnapshotHeld<'a> {
    pub source: &'a str,
    pub since: chrono::DateTime<chrono::Utc>,
    pub held: usize,
}

impl InternalEvent for SnapshotHeld<'_> {
    type Counters = PipelineStats;
    fn emit(self, c: &PipelineStats) {
        bump(&c.held, 1);
        tracing::warn!(
            source = self.source,
            since = %self.since,
            held = self.held,
            "implausible snapshot (empty, or losing long-standing alerts with most others); its all-clears are held"
        );
    }
}

/// A config change refused: the daemon runs on the last good config.
pub struct ConfigRefused<'a> {
    pub errors: &'a ConfigErrors,
}

impl InternalEvent for ConfigRefused<'_> {
    type Counters = PipelineStats;
    fn emit(self, c: &PipelineStats) {
        bump(&c.refused, 1);
        for e in &self.errors.0 {
            tracing::error!(file = %e.file.display(), line = e.line, col = e.col, message = %e.message, "config change rejected");
        }
        tracing::error!(errors = self.errors.0.len(), "config change rejected; still running on the last good config");
    }
}

/// An operator command from a Telegram user not on the allowlist, answered "not
/// allowed".
pub struct OperatorRefused<'a> {
    /// The user's id, masked; `None` for an anonymous sender.
    pub user: Option<&'a str>,
}

impl InternalEvent for OperatorRefused<'_> {
    type Counters = PipelineStats;
    fn emit(self, c: &PipelineStats) {
        bump(&c.operator_refused, 1);
        tracing::warn!(user = ?self.user, "operator command from a user not on the allowlist");
    }
}
