//! The HTTP side: routing, the request record and the Bot API envelope.
//! Connections are served by `sim::serve`, so that an injected Stall or Reset
//! can close one without writing a byte.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::RecordedRequest;
use super::methods::{ApiFailure, ApiResult, Outcome, dispatch};
use super::params::parse_params;
use super::state::Inner;
use crate::sim::serve;

/// Serves `sim` on `listener` until `shutdown`, every task on `tracker`.
pub(super) fn spawn(listener: TcpListener, sim: Arc<Inner>, shutdown: CancellationToken, tracker: &TaskTracker) {
    let app = Router::new()
        .route("/{bot}/{method}", any(handle))
        .fallback(|| async { envelope(Err(ApiFailure::new(404, "Not Found"))) })
        .with_state(sim);
    serve::spawn(listener, app, shutdown, tracker, "telegram");
}

/// Counts a `sendMessage` as in progress from arrival until its answer (or
/// hang-up) is handed to hyper, including when the client goes away first
/// and hyper drops the handler.
struct InProgress(Arc<Inner>);

impl InProgress {
    fn enter(sim: &Arc<Inner>) -> Self {
        sim.in_progress.fetch_add(1, Ordering::SeqCst);
        Self(sim.clone())
    }
}

impl Drop for InProgress {
    fn drop(&mut self) {
        self.0.in_progress.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Counts a `getUpdates` as live from arrival until its answer is handed to hyper or
/// its client hangs up (hyper then drops the handler); one that arrives while another
/// is live is an overlap.
struct PollLive(Arc<Inner>);

impl PollLive {
    fn enter(sim: &Arc<Inner>) -> Self {
        if sim.polls_live.fetch_add(1, Ordering::SeqCst) > 0 {
            sim.lock().stats.overlapping_polls += 1;
        }
        Self(sim.clone())
    }
}

impl Drop for PollLive {
    fn drop(&mut self) {
        self.0.polls_live.fetch_sub(1, Ordering::SeqCst);
    }
}

async fn handle(
    State(sim): State<Arc<Inner>>,
    Path((bot, method)): Path<(String, String)>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let at = Instant::now();
    let _in_progress = method.eq_ignore_ascii_case("sendmessage").then(|| InProgress::enter(&sim));
    let _poll = method.eq_ignore_ascii_case("getupdates").then(|| PollLive::enter(&sim));
    let (params, outcome) = match parse_params(query.as_deref(), &headers, &body) {
        Ok(params) => {
            let outcome = dispatch(&sim, &bot, &method, &params).await;
            (Value::Object(params), outcome)
        }
        // Keep what was sent, so a malformed body can still be inspected.
        Err(failure) => (Value::String(String::from_utf8_lossy(&body).into_owned()), Outcome::Now(Err(failure))),
    };
    // Recorded before any delay, so that a client killed while waiting
    // leaves its request on record, as Telegram would have it.
    record(&sim, &method, params, at, &outcome);
    match outcome {
        Outcome::Now(result) => envelope(result),
        Outcome::Delayed(message, latency) => {
            wait_unless_shutdown(&sim, latency).await;
            envelope(Ok(message))
        }
        Outcome::HangUp(hold) => {
            wait_unless_shutdown(&sim, hold).await;
            serve::hang_up()
        }
    }
}

/// Sleeps, but not past shutdown: a simulated delay must not hold up the
/// caller's graceful shutdown.
async fn wait_unless_shutdown(sim: &Inner, delay: Duration) {
    if delay.is_zero() {
        return;
    }
    tokio::select! {
        () = tokio::time::sleep(delay) => {}
        () = sim.shutdown.cancelled() => {}
    }
}

fn record(sim: &Inner, method: &str, body: Value, at: Instant, outcome: &Outcome) {
    let (status, retry_after) = match outcome {
        Outcome::Now(Ok(_)) | Outcome::Delayed(..) => (200, None),
        Outcome::Now(Err(failure)) => (failure.code, failure.retry_after),
        Outcome::HangUp(_) => (0, None),
    };
    match outcome {
        Outcome::Now(Ok(_)) | Outcome::Delayed(..) => tracing::debug!(%method, "telegram sim: ok"),
        Outcome::Now(Err(failure)) => tracing::debug!(%method, %failure, "telegram sim: rejected"),
        Outcome::HangUp(hold) => tracing::debug!(%method, ?hold, "telegram sim: hanging up"),
    }
    let mut st = sim.lock();
    st.stats.requests += 1;
    match status {
        0 => st.stats.dropped += 1,
        400 => st.stats.bad_requests += 1,
        401 => st.stats.unauthorized += 1,
        403 => st.stats.forbidden += 1,
        429 => st.stats.rate_limited += 1,
        500..=599 => st.stats.server_errors += 1,
        _ => {}
    }
    st.requests.push(RecordedRequest { method: method.to_owned(), body, status, retry_after, at });
}

/// The Bot API envelope, with the error code as the HTTP status.
fn envelope(outcome: ApiResult) -> Response {
    match outcome {
        Ok(result) => (StatusCode::OK, axum::Json(json!({"ok": true, "result": result}))).into_response(),
        Err(failure) => {
            let mut body = json!({
                "ok": false,
                "error_code": failure.code,
                "description": failure.description,
            });
            if let Some(secs) = failure.retry_after {
                body["parameters"] = json!({"retry_after": secs});
            }
            let status = StatusCode::from_u16(failure.code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            (status, axum::Json(body)).into_response()
        }
    }
}
