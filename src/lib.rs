//! sirena: a civilian air-raid and evacuation alert broadcaster.
//!
//! The module tree follows the pipeline (see ARCHITECTURE.md):
//!
//! ```text
//! sources ──Observation──▶ alerts ──Event──▶ pipeline (matcher) ──▶ store (outbox) ──▶ dispatch (messages) ──▶ channels
//!   config (region files) ──orders──┘                                                               bot ◀──▶ store
//! ```
//! - [`config`]: the operator's files, validated as a whole, with file:line errors.
//! - [`regions`]: the KATOTTG tree and name search.
//! - [`sources`]: feed adapters (HTTP) that produce observations.
//! - [`alerts`]: pure alert state and order lifecycle → events with deterministic ids.
//! - [`pipeline`]: the heart: feed reports and config reloads in, events with their
//!   audience out to the outbox.
//! - [`matcher`]: pure: which subscribers an event reaches (an in-memory index).
//! - [`messages`]: pure: Fluent texts, per language, per channel.
//! - [`store`]: one async `Store` trait (SQLite, or PostgreSQL for several nodes):
//!   subscribers, places, events, the channel-neutral delivery outbox with leases.
//! - [`leader`]: on PostgreSQL, which node runs the feeds, pipeline, bot and lanes.
//! - [`dispatch`]: one lane per channel: claims, coalesces, renders at claim, rate
//!   limits decided before each request, retries.
//! - [`channels`]: the closed set of channels and their adapters (Telegram).
//! - [`bot`]: residents talk to sirena.
//! - [`preview`]: `sirena preview ORDER_ID`: an order's audience and texts before it is live.
//! - [`subscribers`]: `sirena subscribers import | export`: subscriber lists as CSV.
//! - [`daemon`]: wires the pipeline together for `sirena run`.
//! - [`credentials`]: tokens the platforms refuse: stop at start, tell and stop later.
//! - [`health`]: `sirena health`: a running daemon's `/readyz` as an exit code.
//! - [`web`]: the daemon's HTTP endpoint (feed webhooks, SMS delivery reports, metrics).
//! - [`metrics`]: the daemon's figures in the Prometheus text format.
//! - [`sim`]: simulators of the platforms, for the demo and the tests.
//! - [`demo`]: the Kupiansk scenario end to end.
//! - [`bench`]: `sirena bench …`: the figures in docs/benchmarks.md.

pub mod alerts;
pub mod bench;
pub mod bot;
pub mod channels;
pub mod check_config;
pub mod cli;
pub mod config;
pub mod credentials;
pub mod daemon;
pub mod demo;
pub mod dispatch;
pub mod health;
pub mod help_requests;
pub mod internal_events;
pub mod leader;
pub mod matcher;
pub mod messages;
pub mod metrics;
pub mod operators;
pub mod pipeline;
pub mod preview;
pub mod regions;
pub mod sim;
pub mod sources;
pub mod store;
pub mod subscribers;
pub mod web;
