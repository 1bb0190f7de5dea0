//! The daemon's own HTTP endpoint (`[http] listen`): feed webhooks and SMS delivery
//! reports.
//!
//! `POST /webhooks/{source}/{secret}`, or `POST /webhooks/{source}` with the secret in
//! an `X-Webhook-Secret` header: a ukrainealarm push. The body must be a record the
//! adapter can read (checked against the region tree, so garbage is refused with 400
//! rather than trusted); then the source polls at once, and the change reaches
//! residents without waiting for the next interval. The poll, not the push, is what
//! the alert state hears: a push cannot forge an alert the API does not list.
//! A wrong or missing secret is 401, counted and logged without the secret.
//!
//! `POST /reports/{gateway}/{secret}`, or `POST /reports/{gateway}` with the secret in
//! an `X-Report-Secret` header: an SMS gateway's delivery report (TurboSMS callback,
//! Twilio `StatusCallback`, whose `X-Twilio-Signature` must also match when present).
//! It moves the deliveries that went out as that message from `sent` to `delivered`
//! or `undelivered` (or back to the queue, when the gateway dropped the message for a
//! rate reason). A report for an id nobody sent, or one replayed after a final report,
//! is answered 200 so the gateway stops retrying, and counted; a store failure is 503,
//! so the gateway tries again later.
//!
//! `POST /telegram/{hook}` (`[telegram] mode = "webhook"`, the path of `webhook_url`):
//! an update from Telegram, with the registered secret in
//! `X-Telegram-Bot-Api-Secret-Token`. A wrong or missing secret is 401 and counted
//! (`telegram_unauthorized`); a body that is not JSON 400; an update taken in (queued
//! on its chat, as a polled one would be) 200; 503 while the bot is still starting, so
//! Telegram delivers it again.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use tokio::sync::{Notify, watch};
use tokio_util::sync::CancellationToken;

use crate::channels::ChannelKind;
use crate::channels::sms::{ReportReader, ReportStatus};
use crate::config::secret::Secret;
use crate::internal_events::InternalEvent;
use crate::internal_events::web::{Poster, PushAccepted, Refusal, Refused, ReportRead, Reported, TelegramUpdateTaken};
use crate::regions::RegionTree;
use crate::sources::ukrainealarm;
use crate::store::{Report, Store, now_ms};

/// Where the secret may come instead of the path.
pub const SECRET_HEADER: &str = "x-webhook-secret";
/// Where a delivery report's secret may come instead of the path.
pub const REPORT_SECRET_HEADER: &str = "x-report-secret";
/// Where Telegram sends the webhook's secret token.
pub const TELEGRAM_SECRET_HEADER: &str = "x-telegram-bot-api-secret-token";

/// The Telegram webhook: its path under `/telegram/`, secret and where updates go.
pub struct TelegramHook {
    /// The path segment after `/telegram/`.
    pub path: String,
    pub secret: Secret,
    pub inbox: crate::bot::Inbox,
}

/// One source's webhook.
pub struct Webhook {
    pub source: String,
    pub secret: Secret,
    /// Rings the source's poller.
    pub nudge: Arc<Notify>,
}

crate::metrics::counters! {
    /// What the endpoint did, for tests and `/metrics`.
    pub struct WebStats {
        /// Pushes accepted (each made its source poll).
        pushes,
        /// Refused for a wrong or missing secret.
        unauthorized,
        /// Refused as unreadable.
        malformed,
        /// Delivery reports that changed a delivery.
        reports,
        /// Delivery reports of a message still on its way: nothing to record.
        reports_in_progress,
        /// Delivery reports for an id nobody sent, or replayed after a final one.
        reports_unmatched,
        /// Telegram webhook updates taken in.
        telegram_updates,
        /// Telegram webhook posts refused for a wrong or missing secret token.
        telegram_unauthorized,
    }
}

/// What `/metrics` and `/readyz` read.
pub struct Figures {
    pub dispatch: Arc<crate::dispatch::DispatchStats>,
    pub pipeline: Arc<crate::metrics::PipelineStats>,
    pub reloads: watch::Receiver<u64>,
    pub sources: BTreeMap<String, watch::Receiver<crate::sources::SourceHealth>>,
    /// A source whose last good answer is older than this is not healthy.
    pub stale_after: std::time::Duration,
    /// The bot's transport counters, when it runs.
    pub bot: Option<Arc<crate::bot::BotStats>>,
    /// How the bot token stands with Telegram, when the bot runs: not ready until
    /// Telegram has answered, nor while it cannot be reached or refuses the token.
    pub telegram: Option<watch::Receiver<crate::credentials::Standing>>,
    /// Credentials refused after they worked, and accepted again.
    pub credentials: Arc<crate::credentials::CredentialStats>,
}

/// What the endpoint serves.
pub struct Routes {
    pub hooks: Vec<Webhook>,
    pub reports: Vec<ReportReader>,
    pub store: Arc<dyn Store>,
    pub tree: watch::Receiver<Arc<RegionTree>>,
    pub stats: Arc<WebStats>,
    pub figures: Figures,
    pub telegram: Option<TelegramHook>,
}

struct Shared {
    hooks: BTreeMap<String, Webhook>,
    reports: BTreeMap<String, ReportReader>,
    store: Arc<dyn Store>,
    tree: watch::Receiver<Arc<RegionTree>>,
    stats: Arc<WebStats>,
    figures: Figures,
    telegram: Option<TelegramHook>,
}

/// Serves until `cancel`.
pub async fn serve(
    listener: tokio::net::TcpListener,
    routes: Routes,
    cancel: CancellationToken,
) -> std::io::Result<()> {
    let shared = Arc::new(Shared {
        hooks: routes.hooks.into_iter().map(|h| (h.source.clone(), h)).collect(),
        reports: routes.reports.into_iter().map(|r| (r.gateway.clone(), r)).collect(),
        store: routes.store,
        tree: routes.tree,
        stats: routes.stats,
        figures: routes.figures,
        telegram: routes.telegram,
    });
    let app = Router::new()
        .route("/webhooks/{source}", post(push_with_header))
        .route("/webhooks/{source}/{secret}", post(push_with_path))
        .route("/reports/{gateway}", post(report_with_header))
        .route("/reports/{gateway}/{secret}", post(report_with_path))
        .route("/telegram/{hook}", post(telegram_update))
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(ready))
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
        Refused { by: Poster::Feed { source }, why: Refusal::Secret("wrong secret") }.emit(&shared.stats);
        return StatusCode::UNAUTHORIZED;
    }
    let tree = shared.tree.borrow().clone();
    if let Err(e) = ukrainealarm::decode_record(body, &tree) {
        Refused { by: Poster::Feed { source }, why: Refusal::Unreadable(&e) }.emit(&shared.stats);
        return StatusCode::BAD_REQUEST;
    }
    PushAccepted { source }.emit(&shared.stats);
    hook.nudge.notify_one();
    StatusCode::OK
}

async fn telegram_update(
    State(shared): State<Arc<Shared>>,
    Path(path): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let Some(hook) = shared.telegram.as_ref().filter(|h| h.path == path) else { return StatusCode::NOT_FOUND };
    let secret = header(&headers, TELEGRAM_SECRET_HEADER).unwrap_or_default();
    if !same(hook.secret.expose().as_bytes(), secret.as_bytes()) {
        Refused { by: Poster::Telegram, why: Refusal::Secret("wrong secret token") }.emit(&shared.stats);
        return StatusCode::UNAUTHORIZED;
    }
    let update = match serde_json::from_slice::<serde_json::Value>(&body) {
        Ok(update) => update,
        Err(e) => {
            Refused { by: Poster::Telegram, why: Refusal::Unreadable(&e) }.emit(&shared.stats);
            return StatusCode::BAD_REQUEST;
        }
    };
    match hook.inbox.push(&update) {
        Ok(()) => {
            TelegramUpdateTaken.emit(&shared.stats);
            StatusCode::OK
        }
        Err(crate::bot::NotReady) => StatusCode::SERVICE_UNAVAILABLE,
    }
}

async fn report_with_header(
    State(shared): State<Arc<Shared>>,
    Path(gateway): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let secret = header(&headers, REPORT_SECRET_HEADER).unwrap_or_default().to_owned();
    report(&shared, &gateway, &secret, &headers, &body).await
}

async fn report_with_path(
    State(shared): State<Arc<Shared>>,
    Path((gateway, secret)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    report(&shared, &gateway, &secret, &headers, &body).await
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

async fn report(shared: &Shared, gateway: &str, secret: &str, headers: &HeaderMap, body: &[u8]) -> StatusCode {
    let Some(reader) = shared.reports.get(gateway) else { return StatusCode::NOT_FOUND };
    let refuse = |why: &str| {
        Refused { by: Poster::Gateway { gateway }, why: Refusal::Secret(why) }.emit(&shared.stats);
        StatusCode::UNAUTHORIZED
    };
    if !same(reader.secret.expose().as_bytes(), secret.as_bytes()) {
        return refuse("wrong secret");
    }
    let signature = reader.signature_header().and_then(|h| header(headers, h));
    let (platform_id, status) = match reader.read(body, signature) {
        Ok(r) => r,
        Err(crate::channels::sms::ReportError::Signature) => return refuse("signature does not match"),
        Err(e) => {
            Refused { by: Poster::Gateway { gateway }, why: Refusal::Unreadable(&e) }.emit(&shared.stats);
            return StatusCode::BAD_REQUEST;
        }
    };
    let report = match status {
        ReportStatus::Delivered => Report::Delivered,
        ReportStatus::Undelivered(error) => Report::Undelivered { error },
        ReportStatus::RateLimited { error, retry_after } => {
            Report::Retry { not_before_ms: now_ms() + retry_after.as_millis() as i64, error }
        }
        ReportStatus::InProgress => {
            ReportRead { gateway, platform_id: &platform_id, outcome: Reported::InProgress }.emit(&shared.stats);
            return StatusCode::OK;
        }
    };
    match shared.store.report(ChannelKind::Sms, &platform_id, report.clone()).await {
        Ok(deliveries) => {
            let outcome =
                if deliveries == 0 { Reported::Unmatched } else { Reported::Recorded { deliveries, report: &report } };
            ReportRead { gateway, platform_id: &platform_id, outcome }.emit(&shared.stats);
            StatusCode::OK
        }
        Err(e) => {
            tracing::error!(gateway, error = %e, "could not record a delivery report; the gateway will retry");
            StatusCode::SERVICE_UNAVAILABLE
        }
    }
}

/// The source figures at this moment: age of the last good answer, failures in a row.
fn source_figures(figures: &Figures) -> Vec<crate::metrics::SourceFigures> {
    let now = chrono::Utc::now();
    figures
        .sources
        .iter()
        .map(|(name, h)| {
            let h = h.borrow();
            crate::metrics::SourceFigures {
                name: name.clone(),
                last_success_age_s: h.last_success.map(|t| (now - t).num_milliseconds().max(0) as f64 / 1000.0),
                consecutive_failures: h.consecutive_failures,
                dropped: h.dropped.iter().map(|(f, n)| (*f, *n)).collect(),
            }
        })
        .collect()
}

async fn metrics(
    State(shared): State<Arc<Shared>>,
) -> (StatusCode, [(axum::http::HeaderName, &'static str); 1], String) {
    let f = &shared.figures;
    let deliveries = match shared.store.counts_by_channel().await {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "metrics: the store did not answer");
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                [(axum::http::header::CONTENT_TYPE, "text/plain")],
                format!("store: {e}\n"),
            );
        }
    };
    let snapshot = crate::metrics::Snapshot {
        reload_generation: *f.reloads.borrow(),
        config_refused: f.pipeline.refused.load(Ordering::Relaxed),
        snapshots_held: f.pipeline.held.load(Ordering::Relaxed),
        operator_refused: f.pipeline.operator_refused.load(Ordering::Relaxed),
        events: f.pipeline.events(),
        deliveries,
        dispatch: f.dispatch.figures(),
        latency: f.dispatch.latency.read(),
        web: shared.stats.figures(),
        bot: f.bot.as_ref().map(|b| b.figures()).unwrap_or_default(),
        credentials: f.credentials.figures(),
        sources: source_figures(f),
    };
    let text = crate::metrics::render(&snapshot);
    (StatusCode::OK, [(axum::http::header::CONTENT_TYPE, "text/plain; version=0.0.4")], text)
}

/// Ready when the store answers, every configured source has answered well at least
/// once and one has within `stale_after` (a daemon that hears no feed is up, not
/// ready), and the bot, when it runs, has had Telegram accept its token and reaches it
/// now. Otherwise 503 with every reason, one a line. Config is loaded by
/// construction: the daemon does not start without a valid one.
async fn ready(State(shared): State<Arc<Shared>>) -> (StatusCode, String) {
    let mut not = Vec::new();
    if let Err(e) = shared.store.kv_get("ready-check").await {
        not.push(format!("store: {e}"));
    }
    for (name, health) in &shared.figures.sources {
        let h = health.borrow();
        if h.last_success.is_none() {
            not.push(match &h.last_error {
                Some(e) => format!("source {name} has not answered well yet (last error: {e})"),
                None => format!("source {name} has not answered yet"),
            });
        }
    }
    let sources = source_figures(&shared.figures);
    let limit = shared.figures.stale_after.as_secs_f64();
    let healthy = sources.iter().filter(|s| s.last_success_age_s.is_some_and(|a| a <= limit)).count();
    if healthy == 0 {
        not.push(format!("no source healthy (of {})", sources.len()));
    }
    if let Some(standing) = &shared.figures.telegram {
        let s = standing.borrow();
        match (&s.refused, &s.accepted, &s.unreachable) {
            (Some(r), _, _) => not.push(format!("Telegram refuses the bot token (HTTP {})", r.status)),
            (None, None, Some(why)) => not.push(format!("the bot has not reached Telegram yet: {why}")),
            (None, None, None) => not.push("the bot has not reached Telegram yet".to_owned()),
            (None, Some(_), Some(why)) => not.push(format!("the bot cannot reach Telegram: {why}")),
            (None, Some(_), None) => {}
        }
    }
    if !not.is_empty() {
        return (StatusCode::SERVICE_UNAVAILABLE, format!("not ready: {}\n", not.join("\n")));
    }
    let bot = if shared.figures.telegram.is_some() { ", Telegram answers" } else { "" };
    (StatusCode::OK, format!("ready: {healthy} of {} sources healthy{bot}\n", sources.len()))
}

/// Compares in time that does not depend on where the two differ.
pub fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// `application/x-www-form-urlencoded` decoding; undecodable escapes are
/// kept literally rather than rejected, as lenient servers do.
pub fn parse_form(s: &str) -> Vec<(String, String)> {
    s.split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b'%' => {
                let hex = bytes
                    .get(i + 1..i + 3)
                    .and_then(|h| std::str::from_utf8(h).ok())
                    .and_then(|h| u8::from_str_radix(h, 16).ok());
                match hex {
                    Some(b) => {
                        out.push(b);
                        i += 3;
                    }
                    None => {
                        out.push(b'%');
                        i += 1;
                    }
                }
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms_decode_plus_and_percent() {
        let got = parse_form("To=%2B380501234567&Body=a+b%20c&Empty=&Bad=%zz&Tail=%4");
        assert_eq!(
            got,
            vec![
                ("To".to_owned(), "+380501234567".to_owned()),
                ("Body".to_owned(), "a b c".to_owned()),
                ("Empty".to_owned(), String::new()),
                ("Bad".to_owned(), "%zz".to_owned()),
                ("Tail".to_owned(), "%4".to_owned()),
            ]
        );
        assert_eq!(parse_form("Body=%D0%A2%D0%B5%D1%81%D1%82"), vec![("Body".to_owned(), "Тест".to_owned())]);
    }
}
