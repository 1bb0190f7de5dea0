//! Webhook delivery: once `setWebhook` registers a URL, queued updates are POSTed to
//! it one at a time, in order, as Telegram does, each with the registered secret in
//! `X-Telegram-Bot-Api-Secret-Token`.
//!
//! Rules: an update leaves the queue only when its POST is answered 2xx; any other
//! answer, or no answer within the time limit, is noted for `getWebhookInfo`
//! (`last_error_date`, `last_error_message`) and the same update is tried again after
//! a growing pause, with nothing behind it delivered meanwhile. Deleting the webhook
//! stops delivery; the updates stay for `getUpdates`.
//!
//! Telegram only calls https URLs; on loopback the bot listens on plain HTTP behind
//! what in production is a TLS-terminating proxy. [`TelegramSim::set_webhook_proxy`]
//! is that proxy: a registered URL starting with its public prefix is delivered to
//! the loopback base instead, path and query unchanged.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::TelegramSim;
use super::state::{Inner, unix_now};

/// The header Telegram sends the webhook's secret in.
pub const SECRET_TOKEN_HEADER: &str = "x-telegram-bot-api-secret-token";

/// How long one delivery may take before it counts as failed.
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(10);
const FIRST_RETRY: Duration = Duration::from_millis(50);
const MAX_RETRY: Duration = Duration::from_secs(2);

/// One delivery attempt, as the simulator made it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WebhookDelivery {
    pub update_id: u64,
    /// The HTTP status of the answer; 0 for none (a connection failure or timeout).
    pub status: u16,
}

impl TelegramSim {
    /// Routes deliveries for registered URLs starting with `public` (e.g.
    /// `https://bot.example.org`) to `local` (e.g. `http://127.0.0.1:8080`).
    pub fn set_webhook_proxy(&self, public: &str, local: &str) {
        self.inner.lock().webhook_proxy = Some((public.to_owned(), local.to_owned()));
        self.inner.updates_changed.send_modify(|n| *n += 1);
    }

    /// The registered webhook URL, if any.
    pub fn webhook_url(&self) -> Option<String> {
        self.inner.lock().webhook.as_ref().map(|w| w.url.clone())
    }

    /// Every delivery attempt so far, in order.
    pub fn webhook_deliveries(&self) -> Vec<WebhookDelivery> {
        self.inner.lock().webhook_deliveries.clone()
    }

    /// Posts to the registered webhook with this secret header, as someone who is
    /// not Telegram might; returns the HTTP status (0: no answer).
    pub async fn forge_webhook_post(&self, secret: &str, body: serde_json::Value) -> u16 {
        let Some(url) = self.webhook_url() else { return 0 };
        let url = self.inner.lock().delivery_url(&url);
        let client = reqwest::Client::new();
        match client.post(url).header(SECRET_TOKEN_HEADER, secret).json(&body).send().await {
            Ok(r) => r.status().as_u16(),
            Err(_) => 0,
        }
    }
}

/// Starts the delivery loop; it idles while no webhook is set.
pub(super) fn spawn(sim: Arc<Inner>, shutdown: CancellationToken, tracker: &TaskTracker) {
    tracker.spawn(deliver(sim, shutdown));
}

async fn deliver(sim: Arc<Inner>, shutdown: CancellationToken) {
    let client = match reqwest::Client::builder().timeout(DELIVERY_TIMEOUT).build() {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "telegram sim: no HTTP client for webhooks");
            return;
        }
    };
    let mut retry = FIRST_RETRY;
    loop {
        // Subscribed before looking, so an update queued in between still wakes us.
        let mut changed = sim.updates_changed.subscribe();
        let next = {
            let mut st = sim.lock();
            match st.webhook.clone() {
                Some(hook) => {
                    st.next_for_webhook().map(|(id, json)| (id, json, st.delivery_url(&hook.url), hook.secret))
                }
                None => None,
            }
        };
        let Some((id, json, url, secret)) = next else {
            tokio::select! {
                r = changed.changed() => if r.is_err() { return },
                () = shutdown.cancelled() => return,
            }
            continue;
        };
        let mut request = client.post(url).json(&json);
        if !secret.is_empty() {
            request = request.header(SECRET_TOKEN_HEADER, secret);
        }
        let answer = tokio::select! {
            r = request.send() => r,
            () = shutdown.cancelled() => return,
        };
        let status = answer.as_ref().map_or(0, |r| r.status().as_u16());
        let why = match &answer {
            Ok(r) => format!(
                "Wrong response from the webhook: {} {}",
                r.status().as_u16(),
                r.status().canonical_reason().unwrap_or("")
            ),
            Err(e) if e.is_timeout() => "Read timeout expired".to_owned(),
            Err(_) => "Connection refused".to_owned(),
        };
        let delivered = (200..300).contains(&status);
        {
            let mut st = sim.lock();
            st.webhook_deliveries.push(super::WebhookDelivery { update_id: id, status });
            if delivered {
                st.updates.retain(|u| u.id != id);
                st.stats.webhook_delivered += 1;
            } else {
                st.stats.webhook_failed += 1;
                if let Some(hook) = st.webhook.as_mut() {
                    hook.last_error = Some((unix_now(), why));
                }
            }
        }
        if delivered {
            retry = FIRST_RETRY;
            continue;
        }
        tokio::select! {
            () = tokio::time::sleep(retry) => {}
            () = shutdown.cancelled() => return,
        }
        retry = (retry * 2).min(MAX_RETRY);
    }
}
