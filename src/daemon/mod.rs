//! The daemon: wires sources, the pipeline, the dispatcher's lanes and the bot
//! together, supervises them, and stops them all on shutdown.
//!
//! ```text
//! pollers ──SourceReport──▶ ┐
//! watcher ──new Config────▶ ├─ pipeline ──enqueue──▶ store ◀── lanes (one per channel) ──▶ Telegram, SMS
//! bot, lanes ──IndexDelta─▶ ┘        │ wake                ▲
//!                                    └──────────────▶ lanes │
//!                                               bot ◀──▶ store, Telegram
//! ```
//! Every task is spawned on one [`TaskTracker`] and watches one [`CancellationToken`].
//! The core tasks — pipeline, sources, lanes, bot, watcher — are supervised: if one
//! panics or returns while the daemon runs, everything is cancelled and
//! [`Running::failed`] resolves, so `sirena run` exits non-zero for systemd to restart
//! it instead of staying up deaf.
//! So does the credential check ([`crate::credentials`]): a token refused at first
//! contact, or refused for `[health] exit_after_refused` after it worked.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::sync::{broadcast, mpsc, watch};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::alerts::status::StatusView;
use crate::alerts::{AlertKind, Event, Transition};
use crate::bot::{self, Conversation};
use crate::channels::sms::{Gateway, ReportReader, SmsChannel};
use crate::channels::telegram::TelegramChannel;
use crate::channels::{Channel, ChannelKind};
use crate::config::{self, Config};
use crate::dispatch::limits::{RateLimiter, SharedLimiter};
use crate::dispatch::{DeliveryPolicy, DispatchStats, Lane};
use crate::pipeline::{Inputs, Outputs, Pipeline};
use crate::sources::{Poller, SourceHealth};
use crate::store::{Backend, NodeId, Store};
use crate::web::{WebStats, Webhook};

pub use crate::pipeline::Fanout;
pub use secrets::Secrets;
use watcher::ConfigWatcher;

mod notice_text;
mod secrets;
mod watcher;

/// How long the lanes wait for requests on the wire at shutdown.
pub const GRACE: Duration = Duration::from_secs(5);

/// Why the daemon stopped on its own.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    pub task: String,
    pub reason: String,
}

/// A running daemon. Dropping it does not stop it: call [`Running::shutdown`].
pub struct Running {
    pub store: Arc<dyn Store>,
    pub stats: Arc<DispatchStats>,
    pub fanouts: broadcast::Sender<Fanout>,
    /// A receiver subscribed before any task started, so an observer that takes it
    /// misses nothing; `None` once taken.
    pub first_fanouts: Option<broadcast::Receiver<Fanout>>,
    /// For whoever changes subscribers' places outside the bot (imports, tests): tells
    /// the pipeline so its match index follows.
    pub deltas: mpsc::UnboundedSender<crate::matcher::IndexDelta>,
    /// The number of config reloads applied so far.
    pub reloads: watch::Receiver<u64>,
    /// Each source's health, by source name.
    pub sources: BTreeMap<String, watch::Receiver<SourceHealth>>,
    /// What is active and how the feeds stand (what `/status` reads).
    pub status: watch::Receiver<Arc<StatusView>>,
    /// Operators' notices about the feeds, as they happen.
    pub notices: broadcast::Sender<crate::pipeline::Notice>,
    /// Source reports the pipeline has handled.
    pub reports_seen: watch::Receiver<u64>,
    /// Subscriber imports the running pipeline has taken into its match index.
    pub imports_seen: watch::Receiver<u64>,
    /// The pipeline's counters (`/metrics`).
    pub pipeline_stats: Arc<crate::metrics::PipelineStats>,
    /// Where sources send their reports: tools and tests may send observations too.
    pub reports_in: mpsc::Sender<crate::sources::SourceReport>,
    /// Into the pipeline, as operators' commands and drills send events.
    pub operator_events: mpsc::Sender<crate::alerts::Event>,
    /// Where `[http] listen` was bound (with its real port when the config said 0).
    pub web_addr: Option<std::net::SocketAddr>,
    pub web: Arc<WebStats>,
    /// The bot's transport counters (updates read, handled, dropped, flood notices).
    pub bot: Option<Arc<bot::BotStats>>,
    /// How each credential stands with its platform, by environment variable.
    pub credentials: BTreeMap<String, watch::Receiver<crate::credentials::Standing>>,
    /// Credentials refused while running, and recovered.
    pub credential_stats: Arc<crate::credentials::CredentialStats>,
    failure: watch::Receiver<Option<Failure>>,
    cancel: CancellationToken,
    tracker: TaskTracker,
}

impl Running {
    /// Stops every task: sources and the bot at once, the lanes after a short grace
    /// for requests in flight. Nothing queued is lost.
    pub async fn shutdown(&self) {
        self.cancel.cancel();
        self.tracker.close();
        self.tracker.wait().await;
    }

    /// Resolves when a core task panicked or stopped on its own; the daemon is then
    /// already shutting down.
    pub async fn failed(&self) -> Failure {
        let mut rx = self.failure.clone();
        loop {
            if let Some(f) = rx.borrow_and_update().clone() {
                return f;
            }
            if rx.changed().await.is_err() {
                return std::future::pending().await;
            }
        }
    }
}

/// Spawns a core task on the tracker with a watcher that stops the daemon if the task
/// panics, fails, or returns while the daemon is still meant to run.
struct Supervisor {
    tracker: TaskTracker,
    cancel: CancellationToken,
    failure: Arc<watch::Sender<Option<Failure>>>,
}

impl Supervisor {
    fn spawn<F, E>(&self, task: impl Into<String>, fut: F)
    where
        F: std::future::Future<Output = Result<(), E>> + Send + 'static,
        E: std::fmt::Display + Send + 'static,
    {
        let task = task.into();
        let handle = self.tracker.spawn(fut);
        let (cancel, failure) = (self.cancel.clone(), self.failure.clone());
        self.tracker.spawn(async move {
            let reason = match handle.await {
                Ok(Ok(())) if cancel.is_cancelled() => return,
                Ok(Ok(())) => "stopped while the daemon was running".to_owned(),
                Ok(Err(e)) => e.to_string(),
                Err(e) if e.is_panic() => format!("panicked: {}", panic_text(e.into_panic())),
                Err(e) => e.to_string(),
            };
            tracing::error!(task, %reason, "a core task stopped; the daemon stops so its supervisor can restart it");
            failure.send_if_modified(|f| {
                if f.is_none() {
                    *f = Some(Failure { task, reason });
                    true
                } else {
                    false
                }
            });
            cancel.cancel();
        });
    }
}

fn panic_text(p: Box<dyn std::any::Any + Send>) -> String {
    p.downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_default()
}

/// Starts every part of the daemon on the given config.
pub async fn start(config: Config, secrets: Secrets) -> anyhow::Result<Running> {
    let backend = open_store(&config, &secrets).await?;
    start_with_store(config, secrets, backend.store()).await
}

/// Opens the store the config names, saying which in the error.
pub async fn open_store(config: &Config, secrets: &Secrets) -> anyhow::Result<Backend> {
    let location = config.store_location();
    Backend::open(&location, secrets.store_password.as_ref()).await.with_context(|| match &location {
        config::StoreLocation::Sqlite(path) => format!("opening the store {}", path.display()),
        config::StoreLocation::Postgres { url, .. } => {
            format!("opening the store {}", crate::store::postgres::redact_url(url))
        }
    })
}

pub async fn start_with_store(config: Config, secrets: Secrets, store: Arc<dyn Store>) -> anyhow::Result<Running> {
    // A store that cannot be written (a read-only file, a full disk) is found now, not
    // by the first alert.
    store.kv_put("started_at", &chrono::Utc::now().to_rfc3339()).await.context("the store cannot be written")?;
    let cancel = CancellationToken::new();
    let tracker = TaskTracker::new();
    let stats = Arc::new(DispatchStats::default());
    let (wake_tx, wake_rx) = watch::channel(0u64);
    let (fanouts, first_fanouts) = broadcast::channel(1024);
    let (tree_tx, tree_rx) = watch::channel(config.tree.clone());
    let (composer_tx, composer_rx) = watch::channel(config.composer.clone());
    let start_operators = config.settings.telegram.as_ref().map(|t| t.operators.clone()).unwrap_or_default();
    let (operators_tx, operators_rx) = watch::channel(Arc::new(start_operators));
    let (report_tx, report_rx) = mpsc::channel(64);
    let (reload_tx, reload_rx) = mpsc::channel(4);
    let (delta_tx, delta_rx) = mpsc::unbounded_channel();
    let (failure_tx, failure_rx) = watch::channel(None);
    let (reloaded_tx, reloads) = watch::channel(0u64);
    let stale_after_std = config.settings.alerts.stale_after;
    let stale_after = chrono::Duration::from_std(stale_after_std).unwrap_or(chrono::Duration::minutes(5));
    let pipeline_stats = Arc::new(crate::metrics::PipelineStats::default());
    let (status_tx, status_rx) = watch::channel(Arc::new(StatusView::empty(stale_after)));
    let (notices, _) = broadcast::channel(256);
    let (reports_seen_tx, reports_seen) = watch::channel(0u64);
    let (imports_tx, imports_seen) = watch::channel(0u64);
    let (operator_tx, operator_rx) = mpsc::channel(64);
    let drills = config.settings.drill.clone();
    let retention = config.settings.retention.clone();
    let refused_window = config.settings.health.exit_after_refused;
    let mut credentials = crate::credentials::Registry::default();
    let policy = Arc::new(DeliveryPolicy {
        settings: config.settings.dispatch.clone(),
        paid: config.settings.telegram.as_ref().map(|t| t.paid_broadcast.clone()).unwrap_or_default(),
    });

    // Everything that can fail is built before anything is spawned, so a failed start
    // leaves no task running.
    let mut pollers = Vec::new();
    let mut hooks = Vec::new();
    let mut health = BTreeMap::new();
    for source in &config.settings.sources {
        let c = source.common();
        let token = secrets.sources.get(c.name).cloned();
        if c.token_env.is_some() && token.is_none() {
            anyhow::bail!("source {} is configured but has no token", c.name);
        }
        let (feed, http) = source.build(token).with_context(|| format!("source {}", c.name))?;
        let (mut poller, h) = Poller::new(feed, http, source.schedule(), tree_rx.clone(), report_tx.clone());
        if let Some(var) = c.token_env {
            poller = poller.with_credential(credentials.check(c.name, var));
        }
        if source.webhook_secret_env().is_some() {
            let secret = secrets
                .webhooks
                .get(c.name)
                .cloned()
                .with_context(|| format!("source {} has a webhook but no secret", c.name))?;
            hooks.push(Webhook { source: c.name.to_owned(), secret, nudge: poller.nudger() });
        }
        pollers.push((c.name.to_owned(), poller));
        health.insert(c.name.to_owned(), h);
    }
    if pollers.is_empty() {
        tracing::warn!("no [[source]] configured: sirena hears no alerts");
    }
    let web = match &config.settings.http {
        Some(http) => {
            let listener = tokio::net::TcpListener::bind(http.listen)
                .await
                .with_context(|| format!("[http] listen = \"{}\"", http.listen))?;
            Some(listener)
        }
        // Config validation requires [http] for a webhook.
        None => None,
    };
    let web_addr = web.as_ref().and_then(|l| l.local_addr().ok());
    let web_stats = Arc::new(WebStats::default());
    let telegram = match &config.settings.telegram {
        Some(t) => {
            let token = secrets.telegram.clone().context("telegram is configured but has no bot token")?;
            let check = credentials.check("Telegram", &t.token_env);
            let poller = crate::bot::BotApi::new(&token, &t.api_url, t.long_poll)?.with_credential(check.clone());
            let sender = TelegramChannel::new(&token, &t.api_url, t.send_timeout)?.with_credential(check);
            Some((t.clone(), poller, sender, SharedLimiter::new(t.limits)))
        }
        None => None,
    };
    let credential_standings = credentials.standings();
    let telegram_standing =
        config.settings.telegram.as_ref().and_then(|t| credential_standings.get(&t.token_env).cloned());
    let mut reports = Vec::new();
    let sms = match &config.settings.sms {
        Some(settings) if !settings.gateways.is_empty() => {
            let mut gateways = Vec::new();
            for g in &settings.gateways {
                let token = secrets
                    .sms
                    .get(g.name())
                    .cloned()
                    .with_context(|| format!("SMS gateway {} has no token", g.name()))?;
                let report_secret = secrets.sms_reports.get(g.name());
                if g.report_secret_env().is_some() {
                    let secret = report_secret.cloned().with_context(|| {
                        format!("SMS gateway {} takes delivery reports but has no secret", g.name())
                    })?;
                    reports.extend(ReportReader::new(g, token.clone(), secret));
                }
                gateways.push(
                    Gateway::build(g, token, report_secret)
                        .map_err(|e| anyhow::anyhow!("SMS gateway {}: {e}", g.name()))?,
                );
            }
            // One limiter for the SMS lane, at the slowest gateway's rate, so a failover
            // never outruns the gateway that takes over; one text a second per number.
            let per_sec = settings.gateways.iter().map(|g| g.per_sec()).min().unwrap_or(1);
            let limits = crate::config::TelegramLimits {
                global_per_sec: per_sec,
                paid_per_sec: per_sec,
                per_chat_per_sec: 1,
                group_per_min: 20,
                margin: Duration::from_millis(5),
            };
            // Requests too, where a gateway takes many recipients per request.
            let requests = settings.gateways.iter().map(|g| g.requests_per_sec()).min().unwrap_or(1);
            let limiter = SharedLimiter::of(RateLimiter::new(limits).with_requests(requests));
            let timeout = settings.gateways.iter().map(|g| g.timeout()).max().unwrap_or(Duration::from_secs(10));
            let channel: Arc<dyn Channel> = Arc::new(SmsChannel::new(gateways));
            Some((channel, limiter, timeout + Duration::from_secs(2)))
        }
        _ => None,
    };
    let watcher = ConfigWatcher::new(&config.dir);
    let config_dir = config.dir.clone();
    let outputs = Outputs {
        wake: wake_tx,
        fanouts: fanouts.clone(),
        tree: tree_tx,
        composer: composer_tx,
        operators: operators_tx,
        reloaded: reloaded_tx,
        status: status_tx,
        notices: notices.clone(),
        reports: reports_seen_tx,
        imports: imports_tx,
        stats: pipeline_stats.clone(),
    };
    let pipeline = Pipeline::restore(config, store.clone(), policy.clone(), outputs).await?;

    let sup = Supervisor { tracker: tracker.clone(), cancel: cancel.clone(), failure: Arc::new(failure_tx) };
    let node = NodeId::random();
    let lane =
        |kind: ChannelKind, channel: Option<Arc<dyn Channel>>, limiter: Option<SharedLimiter>, send_timeout| Lane {
            kind,
            channel,
            limiter,
            store: store.clone(),
            policy: policy.clone(),
            composer: composer_rx.clone(),
            tree: tree_rx.clone(),
            node: lane_node(node, kind),
            stats: stats.clone(),
            wake: wake_rx.clone(),
            deltas: Some(delta_tx.clone()),
            send_timeout,
        };
    let mut lanes = Vec::new();
    match &telegram {
        Some((t, _, sender, limiter)) => {
            let channel: Arc<dyn Channel> = Arc::new(sender.clone());
            // The request's own timeout comes first; the lane's is a backstop.
            let budget = t.send_timeout + Duration::from_secs(2);
            for kind in [ChannelKind::TelegramChat, ChannelKind::TelegramChannel] {
                lanes.push(lane(kind, Some(channel.clone()), Some(limiter.clone()), budget));
            }
        }
        None => {
            tracing::warn!("no [telegram] section: Telegram deliveries fail as not configured");
            for kind in [ChannelKind::TelegramChat, ChannelKind::TelegramChannel] {
                lanes.push(lane(kind, None, None, Duration::from_secs(10)));
            }
        }
    }
    match sms {
        Some((channel, limiter, budget)) => lanes.push(lane(ChannelKind::Sms, Some(channel), Some(limiter), budget)),
        None => lanes.push(lane(ChannelKind::Sms, None, None, Duration::from_secs(10))),
    }
    for lane in lanes {
        let task = match lane.kind {
            ChannelKind::TelegramChat => "dispatcher (telegram chats)",
            ChannelKind::TelegramChannel => "dispatcher (telegram channels)",
            ChannelKind::Sms => "dispatcher (sms)",
        };
        sup.spawn(task, lane.run(cancel.clone(), GRACE));
    }

    let mut telegram_hook = None;
    // The bot's inbox exists before the HTTP endpoint, which feeds it in webhook mode.
    let bot = match telegram {
        Some((t, api, sender, limiter)) => {
            let conversation = Arc::new(Conversation {
                store: store.clone(),
                tree: tree_rx.clone(),
                composer: composer_rx.clone(),
                deltas: delta_tx.clone(),
                status: status_rx.clone(),
            });
            let replies = bot::Replies { channel: sender, limiter };
            let operators = Arc::new(crate::operators::Operators {
                allowlist: operators_rx.clone(),
                store: store.clone(),
                tree: tree_rx.clone(),
                composer: composer_rx.clone(),
                sources: health.clone(),
                events: operator_tx.clone(),
                config_dir: config_dir.clone(),
                replies: Some(replies.clone()),
                stats: pipeline_stats.clone(),
                book: Default::default(),
            });
            let inbox = bot::Inbox::new(
                api,
                conversation,
                operators,
                replies.clone(),
                t.handle_timeout,
                tracker.clone(),
                cancel.clone(),
            );
            let transport = match t.mode {
                crate::config::TelegramMode::Polling => bot::Transport::Polling(t.long_poll),
                crate::config::TelegramMode::Webhook => {
                    // check-config makes sure of the URL; the secret was read from the environment.
                    let url = t.webhook_url.clone().context("telegram webhook mode needs webhook_url")?;
                    let secret = secrets.telegram_webhook.clone().context("telegram webhook mode needs its secret")?;
                    let parsed = reqwest::Url::parse(&url).context("telegram webhook_url")?;
                    let path = crate::config::webhook_hook(&parsed).context("webhook_url path")?.to_owned();
                    anyhow::ensure!(web.is_some(), "telegram webhook mode needs [http] listen");
                    telegram_hook =
                        Some(crate::web::TelegramHook { path, secret: secret.clone(), inbox: inbox.clone() });
                    bot::Transport::Webhook { url, secret }
                }
            };
            Some((t, inbox, transport, replies))
        }
        None => None,
    };
    let bot_stats = bot.as_ref().map(|(_, inbox, _, _)| inbox.stats());

    let credential_stats = Arc::new(crate::credentials::CredentialStats::default());
    if let Some(listener) = web {
        tracing::info!(addr = ?web_addr, webhooks = hooks.len(), reports = reports.len(), "HTTP endpoint listening");
        let routes = crate::web::Routes {
            hooks,
            reports,
            store: store.clone(),
            tree: tree_rx.clone(),
            stats: web_stats.clone(),
            figures: crate::web::Figures {
                dispatch: stats.clone(),
                pipeline: pipeline_stats.clone(),
                reloads: reloads.clone(),
                sources: health.clone(),
                stale_after: stale_after_std,
                bot: bot_stats.clone(),
                telegram: telegram_standing,
                credentials: credential_stats.clone(),
            },
            telegram: telegram_hook,
        };
        sup.spawn("http endpoint", crate::web::serve(listener, routes, cancel.clone()));
    }
    for (name, poller) in pollers {
        let c = cancel.clone();
        sup.spawn(format!("source {name}"), async move {
            poller.run(c).await;
            Ok::<(), std::convert::Infallible>(())
        });
    }

    if let Some((_, inbox, transport, replies)) = bot {
        // Always, even with no operators yet: a reload may add some.
        let (operators, replies, composer) = (operators_rx.clone(), replies.clone(), composer_rx.clone());
        let (rx, c) = (notices.subscribe(), cancel.clone());
        sup.spawn("operator notices", async move {
            tell_operators(rx, operators, replies, composer, c).await;
            Ok::<(), std::convert::Infallible>(())
        });
        sup.spawn("bot", async move {
            bot::run(inbox, transport).await;
            Ok::<(), std::convert::Infallible>(())
        });
    }

    // The watch was set up above, before `start` returns, so no later change is missed.
    let c = cancel.clone();
    sup.spawn("config watcher", async move {
        watcher.run(config_dir, reload_tx, c).await;
        Ok::<(), std::convert::Infallible>(())
    });
    if !drills.is_empty() {
        let runner = crate::operators::drills::DrillRunner {
            drills,
            store: store.clone(),
            events: operator_tx.clone(),
            notices: notices.clone(),
            check_every: Duration::from_secs(5),
        };
        let c = cancel.clone();
        sup.spawn("drills", async move {
            runner.run(c).await;
            Ok::<(), std::convert::Infallible>(())
        });
    }
    if retention.delivered_days.is_some() || retention.help_requests_days.is_some() {
        let (s, c) = (store.clone(), cancel.clone());
        sup.spawn("retention", async move {
            crate::operators::drills::retention(s, retention, c).await;
            Ok::<(), std::convert::Infallible>(())
        });
    }
    if !credentials.is_empty() {
        let watchdog = credentials.watchdog(refused_window, notices.clone(), credential_stats.clone());
        sup.spawn("credential check", watchdog.run(cancel.clone()));
    }
    let inputs = Inputs { reports: report_rx, reloads: reload_rx, deltas: delta_rx, operator: operator_rx };
    sup.spawn("pipeline", pipeline.run(inputs, cancel.clone()));

    Ok(Running {
        store,
        stats,
        fanouts,
        first_fanouts: Some(first_fanouts),
        deltas: delta_tx,
        reloads,
        sources: health,
        status: status_rx,
        notices,
        reports_seen,
        imports_seen,
        pipeline_stats,
        reports_in: report_tx,
        operator_events: operator_tx,
        web_addr,
        web: web_stats,
        bot: bot_stats,
        credentials: credential_standings,
        credential_stats,
        failure: failure_rx,
        cancel,
        tracker,
    })
}

/// Each lane holds its leases under a node id of its own: a lane's clean stop hands back
/// what it claimed (`Store::release`), and must not hand back the claims another lane
/// still has on the wire, whose answers it could then no longer record (they would be
/// sent again after a restart).
fn lane_node(process: NodeId, kind: ChannelKind) -> NodeId {
    NodeId(process.0 ^ ((kind.code() + 1) << 56))
}

/// Sends every operator notice to the operators' Telegram chats, in Ukrainian (they
/// are civil-protection staff), through the bot's limiter. A notice missed because the
/// channel overflowed is logged, never fatal. Each notice goes to the operators of the
/// config in force when it is sent: one removed by a reload hears nothing more.
async fn tell_operators(
    mut rx: broadcast::Receiver<crate::pipeline::Notice>,
    operators: watch::Receiver<Arc<Vec<i64>>>,
    replies: bot::Replies,
    composer: watch::Receiver<Arc<crate::messages::Composer>>,
    cancel: CancellationToken,
) {
    loop {
        let notice = tokio::select! {
            () = cancel.cancelled() => return,
            n = rx.recv() => match n {
                Ok(n) => n,
                Err(broadcast::error::RecvError::Lagged(missed)) => {
                    tracing::warn!(missed, "operator notices came faster than they could be sent");
                    continue;
                }
                Err(broadcast::error::RecvError::Closed) => return,
            },
        };
        let c = composer.borrow().clone();
        let text = notice_text::notice_text(&c, crate::messages::Lang::Uk, &notice);
        let text = crate::messages::escape(&text);
        let operators = operators.borrow().clone();
        for op in operators.iter() {
            replies.notify(*op, text.clone()).await;
        }
    }
}

/// Runs the daemon until `shutdown` resolves (SIGTERM or Ctrl-C in `sirena run`), or
/// until a core task fails, which is an error. On PostgreSQL the node first becomes
/// the leader ([`crate::leader`]); one that loses leadership stops everything it runs
/// and stands by again.
pub async fn run(config_dir: PathBuf, shutdown: impl std::future::Future<Output = ()>) -> anyhow::Result<()> {
    let config = config::load(&config_dir)
        .map_err(|e| anyhow::anyhow!("{e}"))
        .with_context(|| format!("config {} is not valid", config_dir.display()))?;
    tracing::info!("{}", config::location::store_line(&config));
    for warning in config::warnings::warnings(&config) {
        tracing::warn!("{}", warning.trim_start_matches("warning: "));
    }
    let secrets = Secrets::from_env(&config)?;
    let backend = open_store(&config, &secrets).await?;
    let pg = match backend {
        Backend::Sqlite(store) => return run_single(config_dir, config, secrets, store, shutdown).await,
        Backend::Postgres(pg) => pg,
    };
    let shutdown = std::pin::pin!(shutdown);
    run_clustered(config_dir, config, secrets, pg, shutdown).await
}

async fn run_single(
    config_dir: PathBuf,
    config: Config,
    secrets: Secrets,
    store: Arc<crate::store::SqliteStore>,
    shutdown: impl std::future::Future<Output = ()>,
) -> anyhow::Result<()> {
    let running = start_with_store(config, secrets, store).await?;
    tracing::info!(config = %config_dir.display(), "sirena running");
    let failed = tokio::select! {
        () = shutdown => None,
        f = running.failed() => Some(f),
    };
    tracing::info!("shutting down");
    running.shutdown().await;
    match failed {
        None => Ok(()),
        Some(f) => Err(anyhow::anyhow!("{} failed: {}", f.task, f.reason)),
    }
}

/// One node of several on PostgreSQL: stand by until this node holds the leader's
/// lock, run everything while it does, stop everything the moment it is lost.
async fn run_clustered(
    config_dir: PathBuf,
    first: Config,
    secrets: Secrets,
    pg: Arc<crate::store::PgStore>,
    mut shutdown: std::pin::Pin<&mut impl std::future::Future<Output = ()>>,
) -> anyhow::Result<()> {
    let takeover = first.settings.store.takeover;
    let node = NodeId::random();
    let candidate = crate::leader::Candidate::new(pg.config().clone(), takeover, node);
    tracing::info!(node = node.0, ?takeover, "sirena running on PostgreSQL: waiting to lead");
    let mut config = first;
    loop {
        let mut held = tokio::select! {
            () = shutdown.as_mut() => return Ok(()),
            h = candidate.acquire() => h,
        };
        let pid = held.backend_pid().await.unwrap_or_default();
        tracing::info!(node = node.0, backend_pid = pid, "this node is the leader");
        // The files may have changed while this node stood by; a bad edit keeps the
        // config this node started with, as a reload would.
        match config::load(&config_dir) {
            Ok(c) => config = c,
            Err(e) => tracing::error!(errors = %e, "the config is not valid; leading with the last good one"),
        }
        let store: Arc<dyn Store> = pg.clone();
        let running = start_with_store(config.clone(), secrets.clone(), store).await?;
        let outcome = tokio::select! {
            () = shutdown.as_mut() => None,
            f = running.failed() => Some(Err(f)),
            lost = held.lost() => Some(Ok(lost)),
        };
        match outcome {
            None => {
                tracing::info!("shutting down");
                running.shutdown().await;
                return Ok(());
            }
            Some(Err(f)) => {
                running.shutdown().await;
                return Err(anyhow::anyhow!("{} failed: {}", f.task, f.reason));
            }
            Some(Ok(lost)) => {
                // Fenced: every leader's task is told to stop now; requests already on
                // the wire get the lanes' grace, nothing new starts.
                tracing::error!(node = node.0, reason = %lost, "leadership lost: stopping the feeds, pipeline, bot and lanes");
                drop(held);
                running.shutdown().await;
                tracing::info!(node = node.0, "stopped; standing by");
                // The node that just lost its session is the suspect one: the standbys
                // get the first chance to lead.
                tokio::select! {
                    () = shutdown.as_mut() => return Ok(()),
                    () = tokio::time::sleep(candidate.timings().self_fence) => {}
                }
            }
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn supervisor() -> (Supervisor, watch::Receiver<Option<Failure>>) {
        let (tx, rx) = watch::channel(None);
        let sup = Supervisor { tracker: TaskTracker::new(), cancel: CancellationToken::new(), failure: Arc::new(tx) };
        (sup, rx)
    }

    async fn first_failure(rx: &mut watch::Receiver<Option<Failure>>) -> Failure {
        let f = rx.wait_for(Option::is_some).await.expect("sender alive");
        f.clone().expect("some")
    }

    #[tokio::test]
    async fn a_core_task_that_panics_or_returns_stops_everything() {
        let (sup, mut rx) = supervisor();
        let c = sup.cancel.clone();
        sup.spawn("listener", async move {
            c.cancelled().await;
            Ok::<(), String>(())
        });
        sup.spawn("pipeline", explode());
        let f = first_failure(&mut rx).await;
        assert_eq!((f.task.as_str(), f.reason.as_str()), ("pipeline", "panicked: boom"));
        assert!(sup.cancel.is_cancelled(), "the other tasks are told to stop");
        sup.tracker.close();
        sup.tracker.wait().await;

        let (sup, mut rx) = supervisor();
        sup.spawn("bot", async { Ok::<(), String>(()) });
        assert_eq!(first_failure(&mut rx).await.reason, "stopped while the daemon was running");
        let (sup, mut rx) = supervisor();
        sup.spawn("dispatcher", async { Err::<(), String>("database: readonly".into()) });
        assert_eq!(first_failure(&mut rx).await.reason, "database: readonly");
    }

    async fn explode() -> Result<(), String> {
        panic!("boom")
    }

    #[tokio::test]
    async fn a_task_that_ends_on_shutdown_is_no_failure() {
        let (sup, rx) = supervisor();
        let c = sup.cancel.clone();
        sup.spawn("watcher", async move {
            c.cancelled().await;
            Ok::<(), String>(())
        });
        sup.cancel.cancel();
        sup.tracker.close();
        sup.tracker.wait().await;
        assert!(rx.borrow().is_none());
    }
}
