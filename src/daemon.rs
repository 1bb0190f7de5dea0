//! The daemon: wires sources, the pipeline, the dispatcher and the bot together, and
//! stops them all on shutdown.
//!
//! ```text
//! poller ──SourceReport──▶ ┐
//! watcher ──new Config───▶ ├─ pipeline task ──enqueue──▶ store ◀── dispatcher task ──▶ Telegram
//! tick (order expiry) ───▶ ┘                                ▲
//!                                                         bot task ◀──▶ Telegram
//! ```
//! The pipeline task alone owns the alert state and the order book, so events are
//! produced in one order and need no locks. Every task is spawned on one
//! [`TaskTracker`] and watches one [`CancellationToken`].

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use chrono::Utc;
use tokio::sync::{Notify, broadcast, mpsc, watch};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::alerts::orders::OrderBook;
use crate::alerts::state::{AlertState, Applied};
use crate::alerts::{AlertKind, Event, Transition};
use crate::bot::{self, Conversation};
use crate::channels::telegram::{self, TelegramChannel};
use crate::config::secret::Secret;
use crate::config::{self, Config, ConfigErrors};
use crate::dispatch::limits::SharedLimiter;
use crate::dispatch::{DispatchStats, Dispatcher};
use crate::matcher::MatchIndex;
use crate::messages::Lang;
use crate::sources::{self, SourceReport};
use crate::store::{NewDelivery, Store, StoreError, now_ms};

/// Secrets resolved by the caller: from the environment for `sirena run`, from the
/// simulators for the demo and tests.
#[derive(Clone, Debug, Default)]
pub struct Secrets {
    pub telegram: Option<Secret>,
    pub alerts_in_ua: Option<Secret>,
}

impl Secrets {
    /// Reads every secret the config names from the environment.
    pub fn from_env(config: &Config) -> anyhow::Result<Secrets> {
        let s = &config.settings;
        Ok(Secrets {
            telegram: match &s.telegram {
                Some(t) => Some(Secret::from_env(&t.token_env).context("telegram bot token")?),
                None => None,
            },
            alerts_in_ua: match &s.sources.alerts_in_ua {
                Some(a) => Some(Secret::from_env(&a.token_env).context("alerts.in.ua token")?),
                None => None,
            },
        })
    }
}

/// One event's fan-out, as the timeline shows it.
#[derive(Clone, Debug)]
pub struct Fanout {
    pub event: Event,
    pub recipients: usize,
    /// New deliveries; 0 for an event replayed after a restart.
    pub enqueued: usize,
}

/// A running daemon. Dropping it does not stop it: call [`Running::shutdown`].
pub struct Running {
    pub store: Arc<Store>,
    pub stats: Arc<DispatchStats>,
    pub fanouts: broadcast::Sender<Fanout>,
    /// A receiver subscribed before any task started, so an observer that takes it
    /// misses nothing; `None` once taken.
    pub first_fanouts: Option<broadcast::Receiver<Fanout>>,
    cancel: CancellationToken,
    tracker: TaskTracker,
}

impl Running {
    /// Stops every task: sources and the bot at once, the dispatcher after a short
    /// grace for requests in flight. Nothing queued is lost.
    pub async fn shutdown(&self) {
        self.cancel.cancel();
        self.tracker.close();
        self.tracker.wait().await;
    }
}

/// Starts every part of the daemon on the given config.
pub async fn start(config: Config, secrets: Secrets) -> anyhow::Result<Running> {
    let store_path = config.store_path();
    let store =
        Arc::new(Store::open(&store_path).with_context(|| format!("opening the store {}", store_path.display()))?);
    start_with_store(config, secrets, store).await
}

pub async fn start_with_store(config: Config, secrets: Secrets, store: Arc<Store>) -> anyhow::Result<Running> {
    let cancel = CancellationToken::new();
    let tracker = TaskTracker::new();
    let wake = Arc::new(Notify::new());
    let stats = Arc::new(DispatchStats::default());
    let (fanouts, first_fanouts) = broadcast::channel(1024);
    let (tree_tx, tree_rx) = watch::channel(config.tree.clone());
    let (composer_tx, composer_rx) = watch::channel(config.composer.clone());
    let (report_tx, report_rx) = mpsc::channel(64);
    let (reload_tx, reload_rx) = mpsc::channel(4);

    // Everything that can fail is built before anything is spawned, so a failed start
    // leaves no task running.
    let feed = match config.settings.sources.alerts_in_ua.clone() {
        Some(settings) => {
            let token = secrets.alerts_in_ua.clone().context("alerts.in.ua is configured but has no token")?;
            let client = sources::alerts_in_ua::Client::new(&settings, token).context("alerts.in.ua client")?;
            Some((settings, client))
        }
        None => None,
    };
    let telegram_bot = match &config.settings.telegram {
        Some(t) => {
            let token = secrets.telegram.clone().context("telegram is configured but has no bot token")?;
            Some((t.clone(), telegram::bot(&token, &t.api_url, t.long_poll)?))
        }
        None => None,
    };
    let watcher = ConfigWatcher::new(&config.dir);
    let config_dir = config.dir.clone();
    let pipeline = Pipeline::restore(config, store.clone(), wake.clone(), fanouts.clone(), tree_tx, composer_tx)?;

    if let Some((settings, client)) = feed {
        tracker.spawn(sources::alerts_in_ua::run(settings, client, tree_rx.clone(), report_tx.clone(), cancel.clone()));
    }
    drop(report_tx);

    if let Some((t, bot)) = telegram_bot {
        // 50 ms on every window absorbs clock jitter between us and the platform.
        let limiter = SharedLimiter::new(t.limits, Duration::from_millis(50));
        let dispatcher = Dispatcher {
            store: store.clone(),
            telegram: TelegramChannel::new(bot.clone()),
            limiter: limiter.clone(),
            settings: pipeline.config.settings.dispatch.clone(),
            wake: wake.clone(),
            stats: stats.clone(),
        };
        let c = cancel.clone();
        tracker.spawn(async move {
            if let Err(e) = dispatcher.run(c, Duration::from_secs(5)).await {
                tracing::error!(error = %e, "dispatcher stopped: the store failed");
            }
        });
        let conversation =
            Arc::new(Conversation { store: store.clone(), tree: tree_rx.clone(), composer: composer_rx });
        tracker.spawn(bot::run(bot, conversation, limiter, t.long_poll, cancel.clone(), tracker.clone()));
    } else {
        tracing::warn!("no [telegram] section: events are stored but nothing is sent");
    }

    // The watch was set up above, before `start` returns, so no later change is missed.
    tracker.spawn(watcher.run(config_dir, reload_tx, cancel.clone()));
    tracker.spawn(pipeline.run(report_rx, reload_rx, cancel.clone()));

    Ok(Running { store, stats, fanouts, first_fanouts: Some(first_fanouts), cancel, tracker })
}

/// Runs the daemon until `shutdown` resolves (SIGTERM or Ctrl-C in `sirena run`).
pub async fn run(config_dir: PathBuf, shutdown: impl std::future::Future<Output = ()>) -> anyhow::Result<()> {
    let config = config::load(&config_dir)
        .map_err(|e| anyhow::anyhow!("{e}"))
        .with_context(|| format!("config {} is not valid", config_dir.display()))?;
    let secrets = Secrets::from_env(&config)?;
    let running = start(config, secrets).await?;
    tracing::info!(config = %config_dir.display(), "sirena running");
    shutdown.await;
    tracing::info!("shutting down");
    running.shutdown().await;
    Ok(())
}

const ALERT_STATE_KEY: &str = "alert_state";
const ORDER_BOOK_KEY: &str = "order_book";

struct Pipeline {
    config: Config,
    store: Arc<Store>,
    alerts: AlertState,
    orders: OrderBook,
    /// Failed polls in a row per source, to log a recovery once.
    failures_in_row: BTreeMap<String, u32>,
    unpublished: Vec<Event>,
    wake: Arc<Notify>,
    fanouts: broadcast::Sender<Fanout>,
    tree_tx: watch::Sender<Arc<crate::regions::RegionTree>>,
    composer_tx: watch::Sender<Arc<crate::messages::Composer>>,
}

impl Pipeline {
    /// Loads the alert state and order book the last run left, so alerts that ended
    /// and orders lifted while sirena was down are still announced.
    fn restore(
        config: Config,
        store: Arc<Store>,
        wake: Arc<Notify>,
        fanouts: broadcast::Sender<Fanout>,
        tree_tx: watch::Sender<Arc<crate::regions::RegionTree>>,
        composer_tx: watch::Sender<Arc<crate::messages::Composer>>,
    ) -> Result<Pipeline, StoreError> {
        let settings = &config.settings.alerts;
        let fresh = AlertState::new(
            chrono::Duration::from_std(settings.stale_after).unwrap_or(chrono::Duration::minutes(5)),
            settings.confirm_empty,
        );
        let alerts = match store.kv_get(ALERT_STATE_KEY)? {
            Some(json) => serde_json::from_str(&json).unwrap_or_else(|e| {
                tracing::warn!(error = %e, "stored alert state unreadable; starting empty");
                fresh
            }),
            None => fresh,
        };
        let orders = match store.kv_get(ORDER_BOOK_KEY)? {
            Some(json) => serde_json::from_str(&json).unwrap_or_else(|e| {
                tracing::warn!(error = %e, "stored order book unreadable; starting empty");
                OrderBook::default()
            }),
            None => OrderBook::default(),
        };
        Ok(Pipeline {
            config,
            store,
            alerts,
            orders,
            failures_in_row: BTreeMap::new(),
            unpublished: Vec::new(),
            wake,
            fanouts,
            tree_tx,
            composer_tx,
        })
    }

    async fn run(
        mut self,
        mut reports: mpsc::Receiver<SourceReport>,
        mut reloads: mpsc::Receiver<Result<Config, ConfigErrors>>,
        cancel: CancellationToken,
    ) {
        // Orders from the files as they stand now.
        let events = self.orders.apply(&self.config.orders, Utc::now());
        self.publish(events);
        let mut tick = tokio::time::interval(Duration::from_secs(30));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut retry = tokio::time::interval(Duration::from_secs(1));
        retry.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = cancel.cancelled() => return,
                Some(report) = reports.recv() => self.on_report(report),
                Some(reload) = reloads.recv() => self.on_reload(reload),
                _ = tick.tick() => {
                    // Expiry needs no file change to happen.
                    let events = self.orders.apply(&self.config.orders, Utc::now());
                    self.publish(events);
                }
                _ = retry.tick(), if !self.unpublished.is_empty() => self.publish(Vec::new()),
            }
        }
    }

    fn on_report(&mut self, report: SourceReport) {
        match report {
            SourceReport::Observed(obs) => {
                if let Some(failures) = self.failures_in_row.remove(&obs.source) {
                    tracing::info!(source = %obs.source, after_failures = failures, "source recovered");
                }
                match self.alerts.apply(&obs) {
                    Applied::Events(events) => self.publish(events),
                    Applied::HeldEmpty { streak } => {
                        tracing::warn!(source = %obs.source, streak, "empty snapshot after a non-empty one; not believed yet");
                    }
                }
            }
            SourceReport::Failed { source, error } => {
                let failures = self.failures_in_row.entry(source.clone()).or_default();
                *failures += 1;
                // The last good view stays; staleness grows until the source answers.
                tracing::warn!(source = %source, failures_in_row = *failures, error = %error, "source poll failed; keeping the last good view");
            }
        }
    }

    fn on_reload(&mut self, reload: Result<Config, ConfigErrors>) {
        match reload {
            Ok(config) => {
                tracing::info!(regions = config.tree.len(), orders = config.orders.len(), "config reloaded");
                // Sources keep their own settings until restart; regions, orders and
                // texts take effect now.
                let _ = self.tree_tx.send(config.tree.clone());
                let _ = self.composer_tx.send(config.composer.clone());
                self.config.tree = config.tree;
                self.config.composer = config.composer;
                self.config.orders = config.orders;
                let events = self.orders.apply(&self.config.orders, Utc::now());
                self.publish(events);
            }
            Err(errors) => {
                for e in &errors.0 {
                    tracing::error!(file = %e.file.display(), line = e.line, col = e.col, message = %e.message, "config change rejected");
                }
                tracing::error!(
                    errors = errors.0.len(),
                    "config change rejected; still running on the last good config"
                );
            }
        }
    }

    /// Matches, composes and enqueues events, then saves the state that produced them.
    /// Events that could not be enqueued yet (the store failed) wait here and are
    /// retried every second, in order, before anything newer; the state that produced
    /// them is saved only once they are in the outbox, so a restart replays them too.
    fn publish(&mut self, events: Vec<Event>) {
        self.unpublished.extend(events);
        if !self.unpublished.is_empty() {
            match self.fan_out(&self.unpublished) {
                Ok(()) => {
                    self.unpublished.clear();
                    self.wake.notify_one();
                }
                Err(e) => {
                    tracing::error!(error = %e, waiting = self.unpublished.len(), "could not enqueue events; retrying");
                    return;
                }
            }
        }
        if let Err(e) = self.save_state() {
            tracing::error!(error = %e, "could not save alert state");
        }
    }

    /// Idempotent: an event already in the store is skipped, so a retry after a partial
    /// failure does not enqueue anything twice.
    fn fan_out(&self, events: &[Event]) -> Result<(), StoreError> {
        let tree = &self.config.tree;
        let index = MatchIndex::build(tree, self.store.active_places()?);
        let deadline = now_ms() + self.config.settings.dispatch.deadline.as_millis() as i64;
        for event in events {
            if self.store.event_exists(&event.id.0)? {
                tracing::debug!(event = %event.id, "event already stored; replay ignored");
                continue;
            }
            let recipients = index.recipients(&event.targets);
            let mut rendered: BTreeMap<Lang, crate::messages::Rendered> = BTreeMap::new();
            let deliveries: Vec<NewDelivery> = recipients
                .iter()
                .map(|s| {
                    let r =
                        rendered.entry(s.lang).or_insert_with(|| self.config.composer.telegram(event, tree, s.lang));
                    NewDelivery {
                        subscriber_id: s.id,
                        channel: s.channel.clone(),
                        address: s.address.clone(),
                        text: r.text.clone(),
                        silent: r.silent,
                    }
                })
                .collect();
            let enqueued = self.store.enqueue(event, &deliveries, deadline)?;
            tracing::info!(
                event = %event.id,
                kind = %event.kind,
                transition = event.transition.as_str(),
                recipients = recipients.len(),
                enqueued = enqueued.deliveries,
                "event"
            );
            let _ = self.fanouts.send(Fanout {
                event: event.clone(),
                recipients: recipients.len(),
                enqueued: enqueued.deliveries,
            });
        }
        Ok(())
    }

    fn save_state(&self) -> Result<(), StoreError> {
        self.store.kv_put(ALERT_STATE_KEY, &serde_json::to_string(&self.alerts)?)?;
        self.store.kv_put(ORDER_BOOK_KEY, &serde_json::to_string(&self.orders)?)?;
        Ok(())
    }
}

/// Watches the config directory and sends every changed, re-validated config. A burst
/// of file events (an editor's save) becomes one reload. SIGHUP forces a reload.
struct ConfigWatcher {
    /// Kept alive for as long as the watch should last; `None` when the platform's
    /// watcher failed and only SIGHUP reloads.
    _watcher: Option<notify::RecommendedWatcher>,
    changes: mpsc::Receiver<()>,
}

impl ConfigWatcher {
    fn new(dir: &std::path::Path) -> ConfigWatcher {
        use notify::Watcher;
        let (tx, changes) = mpsc::channel::<()>(16);
        let watcher = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
            if res.is_ok_and(|e| !e.kind.is_access()) {
                // Full channel: a reload is already pending, which covers this change.
                let _ = tx.try_send(());
            }
        });
        let watcher = match watcher {
            Ok(mut w) => match w.watch(dir, notify::RecursiveMode::Recursive) {
                Ok(()) => Some(w),
                Err(e) => {
                    tracing::error!(error = %e, dir = %dir.display(), "cannot watch the config directory; reload with SIGHUP");
                    None
                }
            },
            Err(e) => {
                tracing::error!(error = %e, "cannot watch the config directory; reload with SIGHUP");
                None
            }
        };
        ConfigWatcher { _watcher: watcher, changes }
    }

    async fn run(
        mut self,
        dir: PathBuf,
        reloads: mpsc::Sender<Result<Config, ConfigErrors>>,
        cancel: CancellationToken,
    ) {
        let mut hup = hangup_signal();
        // One reload at once covers a change made between the caller's load and the
        // watch being set up; applying an unchanged config produces no events.
        let mut pending = true;
        loop {
            if !pending {
                tokio::select! {
                    () = cancel.cancelled() => return,
                    Some(()) = self.changes.recv() => {}
                    Some(()) = recv_opt(&mut hup) => tracing::info!("SIGHUP: reloading config"),
                }
                // Let the editor finish writing, then read once.
                tokio::select! {
                    () = cancel.cancelled() => return,
                    () = tokio::time::sleep(Duration::from_millis(200)) => {}
                }
            }
            pending = false;
            while self.changes.try_recv().is_ok() {}
            let loaded = config::load(&dir);
            if reloads.send(loaded).await.is_err() {
                return;
            }
        }
    }
}

#[cfg(unix)]
fn hangup_signal() -> Option<tokio::signal::unix::Signal> {
    tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok()
}

#[cfg(not(unix))]
fn hangup_signal() -> Option<()> {
    None
}

#[cfg(unix)]
async fn recv_opt(sig: &mut Option<tokio::signal::unix::Signal>) -> Option<()> {
    match sig {
        Some(s) => s.recv().await,
        None => std::future::pending().await,
    }
}

#[cfg(not(unix))]
async fn recv_opt(_: &mut Option<()>) -> Option<()> {
    std::future::pending().await
}

/// Human summary of an event for the timeline: "air_raid started".
pub fn describe(event: &Event) -> String {
    let what = match event.kind {
        AlertKind::Evacuation => "evacuation order",
        k => k.as_str(),
    };
    let how = match event.transition {
        Transition::Started => "started",
        Transition::Updated => "updated",
        Transition::Ended => "ended",
        Transition::Cancelled => "cancelled",
    };
    format!("{what} {how}")
}
