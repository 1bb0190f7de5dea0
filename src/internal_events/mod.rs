//! Internal events: what the daemon tells its operators through the log and
//! `/metrics`, each in one place.
//!
//! An internal event is a struct whose [`InternalEvent::emit`] writes its log line and
//! bumps its counters together, so a figure in `/metrics` and the line that explains
//! it cannot drift apart, and a new call site cannot do one and forget the other
//! (vector's internal events are the model). The counters are typed fields of each
//! component's stats (`crate::metrics::counters!`), which `/metrics`, the demo summary
//! and tests read.
//!
//! One file per component: `dispatch` (the lanes), `web` (the HTTP endpoint), `bot`
//! (the residents' bot's transport), `pipeline` (events, held snapshots, reloads,
//! operators' refusals), `sources` (what the pollers drop from answers), `credentials`
//! (tokens the platforms refuse while the daemon runs).

pub mod bot;
pub mod credentials;
pub mod dispatch;
pub mod pipeline;
pub mod sources;
pub mod web;

/// Something the daemon did that operators see in the log and in `/metrics`.
pub trait InternalEvent: Sized {
    /// The counters the event bumps.
    type Counters;

    /// Writes the event's log line and bumps its counters.
    fn emit(self, counters: &Self::Counters);
}
