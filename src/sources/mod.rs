//! Sources: adapters that poll official feeds and turn good answers into
//! [`Observation`]s.
//!
//! **Architecture invariant** (DESIGN §2, invariant 2): a failed poll — transport
//! error, non-2xx, timeout, a body that does not decode — produces no observation, only
//! a [`SourceReport::Failed`]. Nothing downstream can read a failure as "no alerts".

pub mod alerts_in_ua;

use crate::alerts::state::Observation;

/// What a poller tells the pipeline after each poll.
#[derive(Debug)]
pub enum SourceReport {
    Observed(Observation),
    Failed { source: String, error: SourceError },
}

#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("request failed: {0}")]
    Transport(String),
    #[error("timed out after {0:?}")]
    Timeout(std::time::Duration),
    #[error("HTTP {status}: {message}")]
    Status { status: u16, message: String },
    #[error("unparsable body: {0}")]
    Decode(String),
}
