//! The daemon's own HTTP endpoint (`[http] listen`): feed webhooks.
//!
//! `POST /webhooks/{source}/{secret}`, or `POST /webhooks/{source}` with the secret in
//! an `X-Webhook-Secret` header: a ukrainealarm push. The body must be a record the
//! adapter can read (checked against the region tree, so garbage is refused with 400
//! rather than trusted); then the source polls at once, and the change reaches
//! residents without waiting for the next interval. The poll, not the push, is what
//! the alert state hears: a push cannot forge an alert the API does not list.
//! A wrong or missing secret is 401, counted and logged without the secret.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use tokio::sync::{Notify, watch};
use tokio_util::sync::CancellationToken;

use crate::config::secret::Secret;
use crate::regions::RegionTree;
use crate::sources::ukrainealarm;

/// Where the secret may come instead of the path.
pub const SECRET_HEADER: &str = "x-webhook-secret";

/// One source's webhook.
pub struct Webhook {
    pub source: String,
    pub secret: Secret,
    /// Rings the source's poller.
    pub nudge: Arc<Notify>,
}

/// What the endpoint has seen.
#[derive(Debug, Default)]
pub struct WebStats {
    /// Pushes accepted (each made its source poll).
    pub pushes: AtomicU64,
    /// Refused for a wrong or missing secret.
    pub unauthorized: AtomicU64,
    /// Refused as unreadable.
    pub malformed: AtomicU64,
}

impl WebStats {
    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }
}

struct Shared {
    hooks: BTreeMap<String, Webhook>,
    tree: watch::Receiver<Arc<RegionTree>>,
    stats: Arc<WebStats>,
}

/// Serves until `cancel`.
pub async fn serve(
    listener: tokio::net::TcpListener,
    hooks: Vec<Webhook>,
    tree: watch::Receiver<Arc<RegionTree>>,
    stats: Arc<WebStats>,
    cancel: CancellationToken,
) -> std::io::Result<()> {
    let shared = Arc::new(Shared { hooks: hooks.into_iter().map(|h| (h.source.clone(), h)).collect(), tree, stats });
    let app = Router::new()
        .route("/webhooks/{source}", post(push_with_header))
        .route("/webhooks/{source}/{secret}", post(push_with_path))
        .with_state(shared);
    axum::serve(listener, app).with_graceful_shutdown(cancel.cancelled_owned()).await
}

async fn push_with_header(
    State(shared): State<Arc<Shared>>,
    Path(source): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let secret = headers.get(SECRET_HEADER).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    push(&shared, &source, &secret, &body)
}

async fn push_with_path(
    State(shared): State<Arc<Shared>>,
    Path((source, secret)): Path<(String, String)>,
    body: Bytes,
) -> StatusCode {
    push(&shared, &source, &secret, &body)
}

fn push(shared: &Shared, source: &str, secret: &str, body: &[u8]) -> StatusCode {
    let Some(hook) = shared.hooks.get(source) else { return StatusCode::NOT_FOUND };
    if !same(hook.secret.expose().as_bytes(), secret.as_bytes()) {
        let n = shared.stats.unauthorized.fetch_add(1, Ordering::Relaxed) + 1;
        tracing::warn!(source, refused = n, "webhook push with a wrong secret refused");
        return StatusCode::UNAUTHORIZED;
    }
    let tree = shared.tree.borrow().clone();
    if let Err(e) = ukrainealarm::decode_record(body, &tree) {
        let n = shared.stats.malformed.fetch_add(1, Ordering::Relaxed) + 1;
        tracing::warn!(source, error = %e, refused = n, "unreadable webhook push refused");
        return StatusCode::BAD_REQUEST;
    }
    shared.stats.pushes.fetch_add(1, Ordering::Relaxed);
    hook.nudge.notify_one();
    StatusCode::OK
}

/// Compares in time that does not depend on where the two differ.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
