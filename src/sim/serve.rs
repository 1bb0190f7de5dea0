//! What every simulator's HTTP side shares: serving connections with hyper so that an
//! injected fault can close one without an answer, and form decoding.
//!
//! Role: a Reset, a stall or an answer lost after accepting must close a connection
//! without writing a byte, so that the client sees a transport failure rather than an
//! HTTP answer. A handler cannot do that under `axum::serve`, so connections are
//! served here with hyper's HTTP/1 server and only routing and extraction stay with
//! axum; a handler asks for a hang-up by returning [`hang_up`].
//!
//! Invariants: the accept loop and every connection run on the caller's
//! `TaskTracker`; on shutdown the loop stops accepting and each connection finishes
//! the answer in progress, which is prompt because every simulated wait ends on
//! shutdown.

use std::convert::Infallible;
use std::pin::pin;
use std::time::Duration;

use axum::Router;
use axum::http::{Request, StatusCode};
use axum::response::{IntoResponse, Response};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::{Service, service_fn};
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// How long the accept loop pauses after a failed accept, so it does not
/// spin while the cause (such as running out of descriptors) lasts.
const ACCEPT_RETRY: Duration = Duration::from_millis(100);

/// Marks a response that must not be sent: the connection is closed instead.
#[derive(Clone, Copy, Debug, thiserror::Error)]
#[error("connection closed without an answer, as an injected fault asks")]
struct HangUp;

/// A response that closes the connection instead of being written.
pub(super) fn hang_up() -> Response {
    let mut response = StatusCode::INTERNAL_SERVER_ERROR.into_response();
    response.extensions_mut().insert(HangUp);
    response
}

/// Serves `app` on `listener` until `shutdown`, every task on `tracker`.
pub(super) fn spawn(
    listener: TcpListener,
    app: Router,
    shutdown: CancellationToken,
    tracker: &TaskTracker,
    name: &'static str,
) {
    tracker.spawn(accept_loop(listener, app, shutdown, tracker.clone(), name));
}

async fn accept_loop(
    listener: TcpListener,
    app: Router,
    shutdown: CancellationToken,
    tracker: TaskTracker,
    name: &'static str,
) {
    loop {
        let accepted = tokio::select! {
            () = shutdown.cancelled() => return,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((stream, _peer)) => {
                tracker.spawn(serve_connection(stream, app.clone(), shutdown.clone(), name));
            }
            Err(e) => {
                tracing::warn!(error = %e, sim = name, "sim: accept failed");
                tokio::select! {
                    () = shutdown.cancelled() => return,
                    () = tokio::time::sleep(ACCEPT_RETRY) => {}
                }
            }
        }
    }
}

async fn serve_connection(stream: TcpStream, app: Router, shutdown: CancellationToken, name: &'static str) {
    // Answers are small and written at once; Nagle's algorithm could hold
    // back the tail of one until the client acknowledges.
    if let Err(e) = stream.set_nodelay(true) {
        tracing::debug!(error = %e, sim = name, "sim: could not set TCP_NODELAY");
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
            connection.as_mut().graceful_shutdown();
            connection.await
        }
    };
    // A hang-up ends the connection with an error by design, and clients
    // going away is normal.
    if let Err(e) = served {
        tracing::debug!(error = %e, sim = name, "sim: connection ended");
    }
}

pub(super) use crate::web::parse_form;
