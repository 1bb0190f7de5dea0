//! sirena: a civilian air-raid and evacuation alert broadcaster.
//!
//! The module tree follows the pipeline (see ARCHITECTURE.md):
//!
//! ```text
//! sources ──Observation──▶ alerts ──Event──▶ matcher ──recipients──▶ messages ──▶ store (outbox) ──▶ dispatch ──▶ channels
//!   config (region files) ──orders──┘                                                                    bot ◀──▶ store
//! ```
//! - [`config`]: the operator's files, validated as a whole, with file:line errors.
//! - [`regions`]: the KATOTTG tree and name search.
//! - [`sources`]: feed adapters (HTTP) that produce observations.
//! - [`alerts`]: pure alert state and order lifecycle → events with deterministic ids.
//! - [`matcher`]: pure: which subscribers an event reaches.
//! - [`messages`]: pure: Fluent texts, per language, per channel.
//! - [`store`]: SQLite: subscribers, places, events, the delivery outbox.
//! - [`dispatch`]: rate limits decided before each request, retries, the send loop.
//! - [`channels`]: platform adapters (Telegram via teloxide).
//! - [`bot`]: residents talk to sirena.
//! - [`daemon`]: wires the pipeline together for `sirena run`.
//! - [`sim`]: simulators of the platforms, for the demo and the tests.
//! - [`demo`]: the Kupiansk scenario end to end.

pub mod alerts;
pub mod bot;
pub mod channels;
pub mod cli;
pub mod config;
pub mod daemon;
pub mod demo;
pub mod dispatch;
pub mod matcher;
pub mod messages;
pub mod regions;
pub mod sim;
pub mod sources;
pub mod store;
