//! Sources: adapters that poll official feeds and turn good answers into
//! [`Observation`]s.
//!
//! ```text
//! [[source]] ──build──▶ Feed (one per kind: decode + its requests) ─┐
//!                        HttpGet (limits, 304s, the request budget) ─┴─ Poller ──SourceReport──▶ pipeline
//!                                                                       └──SourceHealth (watch)
//! ```
//! `http.rs` is the one GET client, `poll.rs` the one poll loop (interval, backoff,
//! 429s, re-sending the last good snapshot on "unchanged"); an adapter only says how
//! to ask its feed and how to read the answer.
//!
//! **Architecture invariant** (DESIGN §2, invariant 2): a failed poll — transport
//! error, non-2xx, timeout, a body that does not decode — produces no observation, only
//! a [`SourceReport::Failed`]. Nothing downstream can read a failure as "no alerts".

pub mod alerts_in_ua;
pub mod cap;
pub mod decode;
pub mod http;
pub mod poll;
pub mod ukrainealarm;
pub mod ukrainealarm_feed;

use std::time::Duration;

use crate::alerts::state::{Observation, ObservedAlert};
use crate::config::SourceSettings;
use crate::config::secret::Secret;

pub use http::{Auth, Fetched, HttpGet, HttpOptions};
pub use poll::{Feed, Polled, Poller, Schedule, SourceHealth};

/// A decoded snapshot: the alerts mapped to regions, the feed's locations the
/// region files lack (reported, never guessed), and the optional parts that did not
/// read (each alert kept without them).
#[derive(Debug, Default, PartialEq)]
pub struct Decoded {
    pub alerts: Vec<ObservedAlert>,
    pub unmapped: Vec<Unmapped>,
    pub dropped: Vec<Dropped>,
}

/// An optional part of a payload — enrichment such as a level, a threat, a note, an
/// English title, a CAP parameter, or one entry of a CAP index — that did not read.
/// The alert it belonged to is kept without it: enrichment never costs the alert, and
/// never the body (DESIGN §11). The poller logs each (field, shape) once per source and
/// counts every drop by source and field (`sirena_source_dropped_total`).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Dropped {
    /// Which part, as the feed names it: `threats`, `alert_level`, `entry`, ….
    pub field: &'static str,
    /// What it was instead, in an operator's words: "a number", "an object without
    /// threat_type", "a link that answered HTTP 404".
    pub shape: String,
}

impl Dropped {
    pub fn new(field: &'static str, shape: impl Into<String>) -> Dropped {
        Dropped { field, shape: shape.into() }
    }
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
    /// The whole request, body included, took longer than the source's `timeout`.
    #[error("timed out after {0:?}")]
    Timeout(Duration),
    /// Any non-2xx answer except 429, and 401/403 to a request that carried no
    /// credential.
    #[error("HTTP {status}: {message}")]
    Status { status: u16, message: String },
    /// 401 or 403 to a request that carried the source's token: the feed refuses the
    /// credential (or, on ukrainealarm after working requests, throttles: its adapter
    /// tells the two apart). Refused at first contact, it stops the daemon; refused
    /// for `[health] exit_after_refused` while running, too (`crate::credentials`).
    #[error("HTTP {status}: {message} (the token was refused)")]
    Unauthorized { status: u16, message: String },
    /// HTTP 429. The poller sends nothing to this source before `retry_after` (its
    /// own default when the feed gave none).
    #[error("HTTP 429: rate limited{}", retry_after.map(|d| format!(", retry after {d:?}")).unwrap_or_default())]
    RateLimited { retry_after: Option<Duration> },
    /// The body was longer than the source's `max_body`; it was not read further.
    #[error("body longer than {limit} bytes")]
    TooLarge { limit: u64 },
    #[error("body refused: {0}")]
    Decode(String),
}

/// Why a configured source could not be built.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error(transparent)]
    Client(#[from] SourceError),
}

impl SourceSettings {
    /// The source's adapter and the HTTP client it polls with. `token` is the secret
    /// its `token_env` names, if it has one.
    pub fn build(&self, token: Option<Secret>) -> Result<(Box<dyn Feed>, HttpGet), BuildError> {
        let c = self.common();
        let options =
            HttpOptions { timeout: c.timeout, max_body: c.max_body, max_requests_per_min: c.max_requests_per_min };
        match self {
            SourceSettings::AlertsInUa(s) => {
                let http = HttpGet::new(&options, token.map(Auth::Bearer))?;
                Ok((Box::new(alerts_in_ua::AlertsInUa::new(c.name, &s.base_url)), http))
            }
            SourceSettings::UkraineAlarm(s) => {
                let http = HttpGet::new(&options, token.map(Auth::Raw))?;
                let feed = ukrainealarm_feed::UkraineAlarm::new(
                    c.name,
                    &s.base_url,
                    ukrainealarm::decode_status,
                    ukrainealarm::decode_alerts,
                );
                Ok((Box::new(feed), http))
            }
            SourceSettings::Cap(s) => {
                let http = HttpGet::new(&options, token.map(Auth::Bearer))?;
                Ok((Box::new(cap::feed::CapFeed::new(c.name, &s.url)), http))
            }
        }
    }

    /// The configured `poll`, with the default backoff cap (2 min) and wait after a 429
    /// that gave no `Retry-After` (1 min).
    pub fn schedule(&self) -> Schedule {
        Schedule { poll: self.common().poll, ..Schedule::default() }
    }
}
