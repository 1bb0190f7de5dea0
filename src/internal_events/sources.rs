//! What the pollers make of their feeds' answers beyond the alerts themselves.

use tokio::sync::watch;

use super::InternalEvent;
use crate::sources::{Dropped, SourceHealth};

/// An optional part of an answer that did not read, dropped from its alert (which is
/// kept). Logged the first time a source sends that field in that shape; counted
/// every time, by field, in the source's health (`sirena_source_dropped_total`).
pub struct EnrichmentDropped<'a> {
    pub source: &'a str,
    pub dropped: &'a Dropped,
    /// True the first time this source sent this field in this shape.
    pub first: bool,
}

impl InternalEvent for EnrichmentDropped<'_> {
    type Counters = watch::Sender<SourceHealth>;
    fn emit(self, health: &watch::Sender<SourceHealth>) {
        health.send_modify(|h| *h.dropped.entry(self.dropped.field).or_default() += 1);
        if self.first {
            tracing::warn!(
                source = self.source,
                field = self.dropped.field,
                "the feed sent {} as {}; the rest of the answer is used without it (told once per shape, counted in sirena_source_dropped_total)",
                self.dropped.field,
                self.dropped.shape,
            );
        }
    }
}
