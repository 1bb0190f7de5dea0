//! Simulators of the platforms sirena talks to, for the demo, drills and tests.
//!
//! Each simulator is a real HTTP server on loopback that speaks the platform's
//! wire format, so the production adapters run unchanged against it.
//!
//! Rules:
//! - They share no code with the adapters they exercise: a shared type or
//!   helper would make a bug on one side invisible on the other.
//! - They enforce the platforms' rules (rate limits, size limits, markup
//!   validation, authentication) rather than saying yes, so that code which
//!   passes against a simulator has a fair chance against the real service.
//! - Every task they spawn goes on the caller's `TaskTracker` and ends when
//!   the caller's `CancellationToken` is cancelled.
//!
//! What the simulators share with each other (serving connections that a fault
//! may close unanswered, form decoding) is in `serve`.

pub mod feed;
mod serve;
pub mod sms;
pub mod telegram;
