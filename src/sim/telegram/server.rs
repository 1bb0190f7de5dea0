//! The HTTP side: accept loop, per-connection serving, the request record and
//! the Bot API envelope.
//!
//! Role: an injected Stall or Reset must close a connection without writing
//! a byte, so that a client sees a transport failure rather than an HTTP
//! answer. A handler cannot do that under `axum::serve`, so this module owns
//! the connections itself with hyper's HTTP/1 server, and only routing and
//! extraction stay with axum. A handler asks for a hang-up by marking its
//! response with `HangUp`; the service around the router turns that into a
//! service error, on which hyper drops the connection unanswered.
//!
//! Invariants: every task (the accept loop and one per connection) is on the
//! caller's `TaskTracker`; on shutdown the loop stops accepting and each
//! connection finishes its answer in progress, which is prompt because every
//! simulated wait ends on shutdown.

use std::convert::Infallible;
use std::pin::pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, Request, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::{Service, service_fn};
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use serde_json::{Value, json};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::RecordedRequest;
use super::methods::{ApiFailure, ApiResult, Outcome, dispatch};
use super::params::parse_params;
use super::state::Inner;

/// How long the accept loop pauses after a failed accept (such as running
/// out of file descriptors), so it does not spin while the cause lasts.
const ACCEPT_RETRY: Duration = Duration::from_millis(100);

/// Marks a response that must not be sent: the connection is closed instead.
#[derive(Clone, Copy, Debug, thiserror::Error)]
#[error("connection closed without an answer, as an injected fault asks")]
struct HangUp;

/// Serves `sim` on `listener` until `shutdown`, every task on `tracker`.
pub(super) fn spawn(listener: TcpListener, sim: Arc<Inner>, shutdown: CancellationToken, tracker: &TaskTracker) {
    let app = Router::new()
        .route("/{bot}/{method}", any(handle))
        .fallback(|| async { envelope(Err(ApiFailure::new(404, "Not Found"))) })
        .with_state(sim);
    tracker.spawn(accept_loop(listener, app, shutdown, tracker.clone()));
}

async fn accept_loop(listener: TcpListener, app: Router, shutdown: CancellationToken, tracker: TaskTracker) {
    loop {
        let accepted = tokio::select! {
            () = shutdown.cancelled() => return,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((stream, _peer)) => {
                tracker.spawn(serve_connection(stream, app.clone(), shutdown.clone()));
            }
            Err(e) => {
                tracing::warn!(error = %e, "telegram sim: accept failed");
                tokio::select! {
                    () = shutdown.cancelled() => return,
                    () = tokio::time::sleep(ACCEPT_RETRY) => {}
                }
            }
        }
    }
}

async fn serve_connection(stream: TcpStream, app: Router, shutdown: CancellationToken) {
    // Answers are small and written at once; without this, Nagle's algorithm
    // could hold back the tail of one until the client acknowledges.
    if let Err(e) = stream.set_nodelay(true) {
        tracing::debug!(error = %e, "telegram sim: could not set TCP_NODELAY");
    }
    let app = TowerToHyperService::new(app);
    let service = service_fn(move |request: Request<Incoming>| {
        let answer = app.call(request);
        async move {
            let response: Response = answer.await.unwrap_or_else(|never: Infallible| match never {});
            if response.extensions().get::<HangUp>().is_some() { Err(HangUp) } else { Ok(response) }
        }
    });
    let mut connection = pin!(http1::Builder::new().serve_connection(TokioIo::new(stream), service));
    let served = tokio::select! {
        served = connection.as_mut() => served,
        () = shutdown.cancelled() => {
            // Lets the answer in progress go out, then closes.
            connection.as_mut().graceful_shutdown();
            connection.await
        }
    };
    // A hang-up ends the connection with an error by design, and clients
    // going away is normal, so nothing here is worth more than debug.
    if let Err(e) = served {
        tracing::debug!(error = %e, "telegram sim: connection ended");
    }
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

async fn handle(
    State(sim): State<Arc<Inner>>,
    Path((bot, method)): Path<(String, String)>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let at = Instant::now();
    let _in_progress = method.eq_ignore_ascii_case("sendmessage").then(|| InProgress::enter(&sim));
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
            let mut response = StatusCode::INTERNAL_SERVER_ERROR.into_response();
            response.extensions_mut().insert(HangUp);
            response
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
