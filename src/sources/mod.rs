//! Sources: adapters that poll official feeds and turn good answers into
//! [`Observation`]s.
//!
//! **Architecture invariant** (DESIGN §2, invariant 2): a failed poll — transport
//! error, non-2xx, timeout, a body that does not decode — produces no observation, only
//! a [`SourceReport::Failed`]. Nothing downstream can read a failure as "no alerts".

pub mod alerts_in_ua;
pub mod cap;

use crate::alerts::state::{Observation, ObservedAlert};

/// A decoded snapshot: the alerts mapped to regions, and the feed's locations the
/// region files lack (reported, never guessed).
#[derive(Debug, PartialEq)]
pub struct Decoded {
    pub alerts: Vec<ObservedAlert>,
    pub unmapped: Vec<Unmapped>,
}

/// A feed location no region carries.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Unmapped {
    /// The feed's id for it (alerts.in.ua `location_uid`, ukrainealarm `regionId`).
    pub id: String,
    pub title: String,
}

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
