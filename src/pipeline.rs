//! The pipeline: the heart of the daemon. Source reports and validated config reloads
//! come in; events go out to the outbox, each with its audience.
//!
//! ```text
//! SourceReport ──▶ AlertState ──┐
//! Config reload ─▶ OrderBook ───┼─ events ─▶ audience ─▶ store.enqueue ─▶ wake the lanes
//! tick (expiry) ─▶ OrderBook ───┘      (match index, or "who was told")
//! IndexDelta (bot, dispatcher) ─▶ match index, and catch-up of late subscribers
//! ```
//! One task owns the alert state, the order book and the match index, so events are
//! produced in one order and need no locks. A start reaches the subscribers whose
//! places lie in its targets (the in-memory [`MatchIndex`], kept current by deltas);
//! an end or cancellation reaches whoever was told of the same subject, which the
//! store knows. A subscriber who adds a place while something is active there is told
//! of it at once.
//!
//! Events that could not be enqueued (the store failed) wait here and are retried
//! every second, in order, before anything newer; the state that produced them is
//! saved only once they are in the outbox, so a restart replays them too. A store that
//! keeps failing stops the pipeline, and with it the daemon.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::{broadcast, mpsc, watch};
use tokio_util::sync::CancellationToken;

use crate::alerts::coverage::overlaps;
use crate::alerts::orders::OrderBook;
use crate::alerts::state::{AlertState, Applied, Suspect};
use crate::alerts::status::{OrderInForce, StatusView};
use crate::alerts::{AlertKind, Event, EventDetail, Priority, Transition};
use crate::config::{Config, ConfigErrors};
use crate::dispatch::DeliveryPolicy;
use crate::internal_events::InternalEvent;
use crate::internal_events::pipeline::{ConfigRefused, EventWritten, SnapshotHeld};
use crate::matcher::{IndexDelta, MatchIndex};
use crate::messages::Composer;
use crate::regions::{RegionId, RegionTree};
use crate::sources::SourceReport;
use crate::store::{Audience, IMPORTED_KEY, RegionChannel, Store, StoreError, SubscriberId, now_ms};

const ALERT_STATE_KEY: &str = "alert_state";
const ORDER_BOOK_KEY: &str = "order_book";
/// How long the store may fail in a row before the pipeline gives up.
const STORE_PATIENCE: Duration = Duration::from_secs(60);

/// One event's fan-out, as the timeline shows it.
#[derive(Clone, Debug)]
pub struct Fanout {
    pub event: Event,
    /// Subscribers the event is for.
    pub recipients: usize,
    /// New deliveries; 0 for an event replayed after a restart.
    pub enqueued: usize,
    /// Time spent finding the recipients in the match index.
    pub match_ms: f64,
    /// Time spent writing the event and its deliveries.
    pub enqueue_ms: f64,
}

/// Where the pipeline's output goes besides the store.
pub struct Outputs {
    /// Bumped after every enqueue, to wake the dispatcher's lanes.
    pub wake: watch::Sender<u64>,
    pub fanouts: broadcast::Sender<Fanout>,
    pub tree: watch::Sender<Arc<RegionTree>>,
    pub composer: watch::Sender<Arc<Composer>>,
    /// `[telegram] operators` as of the last applied config: who may use operator
    /// commands and whose chats get the notices. Follows reloads, so an operator added
    /// or removed in the file gains or loses access without a restart.
    pub operators: watch::Sender<Arc<Vec<i64>>>,
    /// Bumped after every config reload the pipeline applied, so whoever waits for a
    /// reload (tests, operators' tools) sees it happen instead of guessing.
    pub reloaded: watch::Sender<u64>,
    /// What is active and how the sources stand, after every change (`/status`).
    pub status: watch::Sender<Arc<StatusView>>,
    /// What operators must hear about the feeds (also logged and counted).
    pub notices: broadcast::Sender<Notice>,
    /// Source reports handled so far, so a test can wait for one instead of guessing.
    pub reports: watch::Sender<u64>,
    /// Subscriber imports taken into the match index while running
    /// (`sirena subscribers import` into the store of a running daemon).
    pub imports: watch::Sender<u64>,
    /// Counters for `/metrics`.
    pub stats: Arc<crate::metrics::PipelineStats>,
}

/// How often the pipeline looks whether `sirena subscribers import` wrote to the store.
const IMPORT_CHECK: Duration = Duration::from_secs(5);

/// Something operators must know about the feeds.
#[derive(Clone, Debug, PartialEq)]
pub enum Notice {
    /// No believed answer for `stale_after`: the source neither starts nor ends alerts.
    SourceStale {
        source: String,
        last_ok: Option<DateTime<Utc>>,
    },
    SourceRecovered {
        source: String,
    },
    /// Every source is stale: residents' `/status` says "unknown".
    AllStale {
        since: Option<DateTime<Utc>>,
    },
    /// An implausible snapshot whose all-clears are held.
    SnapshotHeld {
        source: String,
        held: usize,
    },
    /// An implausible snapshot that persisted for the whole window and was believed.
    SnapshotBelieved {
        source: String,
        since: DateTime<Utc>,
    },
    /// A config change was refused (invalid, or it would end orders or drop places
    /// residents hold); the daemon runs on its last good config. `file:line: message`.
    ConfigRefused {
        errors: Vec<String>,
    },
    /// A config change was taken: the reload generation and what it changed.
    ConfigApplied {
        generation: u64,
        changes: Vec<crate::config::diff::ConfigChange>,
    },
    /// At start, orders in force (announced before) that no region file has any more:
    /// they stay in force until an operator lifts them.
    OrdersMissing {
        ids: Vec<String>,
    },
    /// A drill's deliveries are done (or its deadline passed): what it reached.
    DrillReport {
        drill: String,
        run: String,
        summary: String,
    },
    /// A credential that had worked is refused (`crate::credentials`): the daemon
    /// stops in `exit_in` unless the platform accepts it again.
    CredentialRefused {
        platform: String,
        var: String,
        status: u16,
        exit_in: std::time::Duration,
    },
    /// A refused credential is accepted again.
    CredentialAccepted {
        platform: String,
        var: String,
    },
}

/// The pipeline's inputs.
pub struct Inputs {
    pub reports: mpsc::Receiver<SourceReport>,
    pub reloads: mpsc::Receiver<Result<Config, ConfigErrors>>,
    pub deltas: mpsc::UnboundedReceiver<IndexDelta>,
    /// Events made by operators and drills (`operators`): approved broadcasts,
    /// corrections, drill runs.
    pub operator: mpsc::Receiver<Event>,
}

pub struct Pipeline {
    config: Config,
    store: Arc<dyn Store>,
    policy: Arc<DeliveryPolicy>,
    alerts: AlertState,
    orders: OrderBook,
    index: MatchIndex,
    /// Failed polls in a row per source, to log a recovery once.
    failures_in_row: BTreeMap<String, u32>,
    unpublished: Vec<Event>,
    failing_since: Option<tokio::time::Instant>,
    out: Outputs,
    /// Configured sources, by name.
    sources: Vec<String>,
    started: DateTime<Utc>,
    stale_told: BTreeSet<String>,
    all_stale_told: bool,
    held_told: BTreeSet<String>,
    /// The last subscriber import the match index holds ([`IMPORTED_KEY`]).
    imported: Option<String>,
}

impl Pipeline {
    /// Loads the alert state and order book the last run left (so alerts that ended
    /// and orders lifted while sirena was down are still announced), syncs the region
    /// channels and builds the match index.
    pub async fn restore(
        config: Config,
        store: Arc<dyn Store>,
        policy: Arc<DeliveryPolicy>,
        out: Outputs,
    ) -> Result<Pipeline, StoreError> {
        let settings = &config.settings.alerts;
        let stale_after = chrono::Duration::from_std(settings.stale_after).unwrap_or(chrono::Duration::minutes(5));
        let hold_for = chrono::Duration::from_std(settings.hold_implausible).unwrap_or(chrono::Duration::minutes(5));
        let fresh = AlertState::new(stale_after, hold_for);
        let mut alerts = match store.kv_get(ALERT_STATE_KEY).await? {
            Some(json) => serde_json::from_str(&json).unwrap_or_else(|e| {
                tracing::warn!(error = %e, "stored alert state unreadable; starting empty");
                fresh
            }),
            None => fresh,
        };
        alerts.configure(stale_after, hold_for);
        let orders = match store.kv_get(ORDER_BOOK_KEY).await? {
            Some(json) => serde_json::from_str(&json).unwrap_or_else(|e| {
                tracing::warn!(error = %e, "stored order book unreadable; starting empty");
                OrderBook::default()
            }),
            None => OrderBook::default(),
        };
        store.sync_region_channels(region_channels(&config.tree)).await?;
        let imported = store.kv_get(IMPORTED_KEY).await?;
        let index = build_index(&config.tree, &*store).await?;
        let sources: Vec<String> = config.settings.sources.iter().map(|s| s.name().to_owned()).collect();
        Ok(Pipeline {
            config,
            store,
            policy,
            alerts,
            orders,
            index,
            failures_in_row: BTreeMap::new(),
            unpublished: Vec::new(),
            failing_since: None,
            out,
            sources,
            started: Utc::now(),
            stale_told: BTreeSet::new(),
            all_stale_told: false,
            held_told: BTreeSet::new(),
            imported,
        })
    }

    /// Runs until cancelled. Returns an error only when the store has failed for good.
    pub async fn run(mut self, mut inputs: Inputs, cancel: CancellationToken) -> Result<(), StoreError> {
        let missing: Vec<String> =
            self.orders.missing_from(&self.config.orders).into_iter().map(str::to_owned).collect();
        if !missing.is_empty() {
            tracing::warn!(orders = ?missing, "orders in force are in no region file; they stay in force until lifted with status = \"lifted\"");
            self.notice(Notice::OrdersMissing { ids: missing });
        }
        // Orders from the files as they stand now.
        let events = self.orders.apply(&self.config.orders, Utc::now());
        self.publish(events).await?;
        let mut tick = tokio::time::interval(Duration::from_secs(30));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut retry = tokio::time::interval(Duration::from_secs(1));
        retry.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut imports = tokio::time::interval(IMPORT_CHECK);
        imports.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                biased;
                () = cancel.cancelled() => return Ok(()),
                // Deltas first: the index is current before any event is matched.
                Some(delta) = inputs.deltas.recv() => self.on_delta(delta).await?,
                Some(report) = inputs.reports.recv() => {
                    self.on_report(report).await?;
                    self.watch_health(Utc::now());
                    self.out.reports.send_modify(|n| *n += 1);
                }
                Some(reload) = inputs.reloads.recv() => self.on_reload(reload).await?,
                Some(event) = inputs.operator.recv() => self.publish(vec![event]).await?,
                _ = tick.tick() => {
                    // Expiry needs no file change to happen, nor staleness a report.
                    let events = self.orders.apply(&self.config.orders, Utc::now());
                    self.publish(events).await?;
                    self.watch_health(Utc::now());
                }
                _ = retry.tick(), if !self.unpublished.is_empty() => self.publish(Vec::new()).await?,
                _ = imports.tick() => self.check_imports().await?,
            }
        }
    }

    /// Rebuilds the match index when subscribers were imported into the store since it
    /// was built, so they hear the next event without a restart.
    async fn check_imports(&mut self) -> Result<(), StoreError> {
        let now = self.store.kv_get(IMPORTED_KEY).await?;
        if now == self.imported {
            return Ok(());
        }
        tracing::info!(
            import = now.as_deref().unwrap_or_default(),
            "subscribers were imported; rebuilding the match index"
        );
        self.index = build_index(&self.config.tree, &*self.store).await?;
        self.imported = now;
        self.out.imports.send_modify(|n| *n += 1);
        Ok(())
    }

    async fn on_report(&mut self, report: SourceReport) -> Result<(), StoreError> {
        match report {
            SourceReport::Observed(obs) => {
                if let Some(failures) = self.failures_in_row.remove(&obs.source) {
                    tracing::info!(source = %obs.source, after_failures = failures, "source recovered");
                }
                let Applied { events, suspect } = self.alerts.apply(&obs, &self.config.tree);
                match suspect {
                    Some(Suspect::Holding { since, held }) => {
                        SnapshotHeld { source: &obs.source, since, held }.emit(&self.out.stats);
                        if self.held_told.insert(obs.source.clone()) {
                            self.notice(Notice::SnapshotHeld { source: obs.source.clone(), held });
                        }
                    }
                    Some(Suspect::Believed { since }) => {
                        tracing::warn!(
                            source = %obs.source,
                            %since,
                            "an implausible snapshot persisted for the whole hold window; believed"
                        );
                        self.held_told.remove(&obs.source);
                        self.notice(Notice::SnapshotBelieved { source: obs.source.clone(), since });
                    }
                    None => {
                        self.held_told.remove(&obs.source);
                    }
                }
                self.publish(events).await?;
            }
            SourceReport::Failed { source, error } => {
                self.alerts.failed(&source);
                let failures = self.failures_in_row.entry(source.clone()).or_default();
                *failures += 1;
                // The last good view stays; staleness grows until the source answers.
                tracing::warn!(source = %source, failures_in_row = *failures, error = %error, "source poll failed; keeping the last good view");
            }
        }
        Ok(())
    }

    async fn on_reload(&mut self, reload: Result<Config, ConfigErrors>) -> Result<(), StoreError> {
        // Valid files can still be a mistake: an emptied or half-written region file
        // would end orders and drop residents' places. Those changes wait for the
        // operator to say so (`config::guard`).
        let reload = reload.and_then(|config| {
            let held = |id: &RegionId| self.index.holders(id);
            let refused = crate::config::guard::refusals(&self.config, &config, &self.orders.in_force_ids(), &held);
            if refused.is_empty() { Ok(config) } else { Err(ConfigErrors(refused)) }
        });
        match reload {
            Ok(config) => {
                let rebuild = config.tree.ancestry_fingerprint() != self.config.tree.ancestry_fingerprint();
                // Sources and channels keep their own settings until restart; regions,
                // region channels, orders, texts and the operators take effect now.
                let changed =
                    crate::config::diff::changes(&self.config.orders, &config.orders, &self.config.tree, &config.tree);
                let _ = self.out.tree.send(config.tree.clone());
                let _ = self.out.composer.send(config.composer.clone());
                // Before the reload counts as applied: whoever waits for the generation
                // finds the new allowlist in force.
                let operators = config.settings.telegram.as_ref().map(|t| t.operators.clone()).unwrap_or_default();
                let before = self.out.operators.send_replace(Arc::new(operators.clone()));
                if let Some(entry) = crate::operators::audit::operators_changed(&before, &operators) {
                    tracing::info!(operators = operators.len(), change = %entry.what, "operators' allowlist changed");
                    self.audit(entry).await;
                }
                self.config.tree = config.tree;
                self.config.composer = config.composer;
                self.config.orders = config.orders;
                self.config.origins = config.origins;
                let changes = self.store.sync_region_channels(region_channels(&self.config.tree)).await?;
                if rebuild {
                    tracing::info!("region ancestry changed; rebuilding the match index");
                    self.index = build_index(&self.config.tree, &*self.store).await?;
                } else {
                    for (sub, place) in changes.removed {
                        self.index.remove(&self.config.tree, sub, &place);
                    }
                    for (sub, place) in &changes.added {
                        self.index.add(&self.config.tree, *sub, place);
                    }
                }
                let events = self.orders.apply(&self.config.orders, Utc::now());
                self.publish(events).await?;
                self.out.reloaded.send_modify(|g| *g += 1);
                let generation = *self.out.reloaded.borrow();
                self.audit(crate::operators::audit::reload(Ok((self.config.tree.len(), self.config.orders.len()))))
                    .await;
                tracing::info!(
                    generation,
                    regions = self.config.tree.len(),
                    orders = self.config.orders.len(),
                    "{}",
                    crate::config::diff::summary(&changed)
                );
                // A reload that changed no order or region (texts, or the watcher's
                // first look at start) is only logged.
                if !changed.is_empty() {
                    self.notice(Notice::ConfigApplied { generation, changes: changed });
                }
            }
            Err(errors) => {
                ConfigRefused { errors: &errors }.emit(&self.out.stats);
                let listed: Vec<String> = errors.0.iter().map(|e| e.to_string()).collect();
                self.audit(crate::operators::audit::reload(Err(&listed))).await;
                self.notice(Notice::ConfigRefused { errors: listed });
            }
        }
        Ok(())
    }

    async fn on_delta(&mut self, delta: IndexDelta) -> Result<(), StoreError> {
        let tree = self.config.tree.clone();
        match delta {
            IndexDelta::Added { subscriber, places } => {
                for p in &places {
                    self.index.add(&tree, subscriber, p);
                }
                self.catch_up(subscriber, &places).await
            }
            IndexDelta::Removed { subscriber, places } => {
                for p in &places {
                    self.index.remove(&tree, subscriber, p);
                }
                Ok(())
            }
            IndexDelta::Deactivated(subscriber) => {
                for p in self.store.places(subscriber).await? {
                    self.index.remove(&tree, subscriber, &p);
                }
                Ok(())
            }
            IndexDelta::Reactivated(subscriber) => {
                let places = self.store.places(subscriber).await?;
                for p in &places {
                    self.index.add(&tree, subscriber, p);
                }
                for (sub, place, kinds) in self.store.filtered_places(Some(subscriber)).await? {
                    self.index.set_kinds(&tree, sub, &place, Some(&kinds));
                }
                self.catch_up(subscriber, &places).await
            }
            IndexDelta::Kinds { subscriber, place, kinds } => {
                self.index.set_kinds(&tree, subscriber, &place, kinds.as_deref());
                Ok(())
            }
        }
    }

    /// Tells a subscriber of everything active in their new places: for each new place
    /// and alert kind, the latest event of the first alert over it (one is enough:
    /// coverage rings a place once), and of each order covering them. Enqueueing is
    /// idempotent, so one who already had it gets nothing twice.
    async fn catch_up(&mut self, subscriber: SubscriberId, places: &[RegionId]) -> Result<(), StoreError> {
        let tree = &self.config.tree;
        let covers = |targets: &[RegionId]| places.iter().any(|p| targets.iter().any(|t| tree.is_within(p, t)));
        let mut subjects: Vec<String> = Vec::new();
        let active = self.alerts.active_subjects();
        for place in places {
            let mut kinds = std::collections::BTreeSet::new();
            for (kind, subject, region) in &active {
                if overlaps(tree, place, region) && kinds.insert(*kind) && !subjects.contains(subject) {
                    subjects.push(subject.clone());
                }
            }
        }
        for (subject, targets) in self.orders.in_force() {
            if covers(&targets) {
                subjects.push(subject);
            }
        }
        let mut told = 0;
        for subject in subjects {
            let Some(event) = self.store.latest_event(&subject).await? else { continue };
            if event.is_closing() {
                continue;
            }
            let deadline = self.policy.deadline_ms(event.priority, now_ms());
            told += self.store.enqueue(&event, Audience::Subscribers(vec![subscriber]), deadline).await?.deliveries;
        }
        if told > 0 {
            tracing::info!(subscriber, active = told, "a new subscriber is told what is active in their place");
            self.out.wake.send_modify(|n| *n += 1);
        }
        Ok(())
    }

    /// Tells operators when a source goes stale or comes back, and when every source
    /// is stale; publishes the status view.
    fn watch_health(&mut self, now: DateTime<Utc>) {
        let stale_after = self.alerts.stale_after();
        let (mut alerts, seen) = self.alerts.status_view(&self.sources);
        // Residents know a feed by its service (alerts.in.ua, Тривога), not by the
        // operator's name for it: /status gets each source's kind.
        let kinds: BTreeMap<&str, &str> =
            self.config.settings.sources.iter().map(|s| (s.name(), s.kind().as_str())).collect();
        alerts.iter_mut().for_each(|a| a.name_sources_by_kind(&kinds));
        for s in &seen {
            // A source never heard from gets `stale_after` from the start to answer.
            let stale = match s.last_ok {
                Some(t) => now - t > stale_after,
                None => now - self.started > stale_after,
            };
            if stale && self.stale_told.insert(s.source.clone()) {
                self.notice(Notice::SourceStale { source: s.source.clone(), last_ok: s.last_ok });
            } else if !stale && self.stale_told.remove(&s.source) {
                self.notice(Notice::SourceRecovered { source: s.source.clone() });
            }
        }
        let all_stale = !self.sources.is_empty() && self.stale_told.len() == self.sources.len();
        if all_stale && !self.all_stale_told {
            let since = seen.iter().filter_map(|s| s.last_ok).max();
            self.notice(Notice::AllStale { since });
        }
        self.all_stale_told = all_stale;
        let orders = self.orders_in_force();
        let view = StatusView { alerts, orders, sources: seen, stale_after };
        self.out.status.send_if_modified(|old| {
            let changed = **old != view;
            if changed {
                *old = Arc::new(view);
            }
            changed
        });
    }

    fn orders_in_force(&self) -> Vec<OrderInForce> {
        let in_force: BTreeSet<String> = self.orders.in_force().into_iter().map(|(subject, _)| subject).collect();
        self.config
            .orders
            .iter()
            .filter(|o| in_force.contains(&format!("evacuation:{}", o.id)))
            .map(|o| OrderInForce {
                id: o.id.clone(),
                status: o.status,
                targets: o.targets.clone(),
                hotline: o.hotline.clone(),
            })
            .collect()
    }

    /// Writes one audit line; a failure is logged, never fatal: the log is a record,
    /// not a gate on alerts.
    async fn audit(&self, entry: crate::store::AuditEntry) {
        if let Err(e) = self.store.audit_append(entry).await {
            tracing::warn!(error = %e, "audit log not written");
        }
    }

    fn notice(&self, notice: Notice) {
        match &notice {
            // A reload that worked is news, not a warning, and is already logged as a
            // sentence (`config::diff::summary`).
            Notice::ConfigApplied { generation, .. } => {
                tracing::info!(generation, "operator notice: the config reload above")
            }
            _ => tracing::warn!(?notice, "operator notice"),
        }
        let _ = self.out.notices.send(notice);
    }

    /// Matches and enqueues events, then saves the state that produced them.
    async fn publish(&mut self, events: Vec<Event>) -> Result<(), StoreError> {
        self.unpublished.extend(events);
        if !self.unpublished.is_empty() {
            let pending = std::mem::take(&mut self.unpublished);
            let result = self.fan_out(&pending).await;
            if let Err(e) = result {
                self.unpublished = pending;
                return self.store_failed(e, "could not enqueue events; retrying");
            }
            self.out.wake.send_modify(|n| *n += 1);
        }
        match self.save_state().await {
            Ok(()) => {
                self.failing_since = None;
                Ok(())
            }
            Err(e) => self.store_failed(e, "could not save alert state"),
        }
    }

    /// Logs a store failure and decides whether it is time to give up.
    fn store_failed(&mut self, e: StoreError, what: &str) -> Result<(), StoreError> {
        let since = *self.failing_since.get_or_insert_with(tokio::time::Instant::now);
        if e.is_permanent() || since.elapsed() > STORE_PATIENCE {
            tracing::error!(error = %e, "the store keeps failing; the pipeline stops");
            return Err(e);
        }
        tracing::error!(error = %e, waiting = self.unpublished.len(), "{what}");
        Ok(())
    }

    /// Idempotent: an event already completely stored is skipped, so a retry after a
    /// partial failure, or a replay after a restart, enqueues nothing twice.
    async fn fan_out(&self, events: &[Event]) -> Result<(), StoreError> {
        for event in events {
            if self.store.event_complete(&event.id).await? {
                tracing::debug!(event = %event.id, "event already stored; replay ignored");
                continue;
            }
            let event = self.prioritised(event);
            let matching = std::time::Instant::now();
            // An order's end goes to whoever was told of it; an alert's goes by coverage
            // to the places it leaves clear.
            let by_subject = event.is_closing() && matches!(event.detail, EventDetail::Order { .. });
            let (audience, recipients) = if by_subject {
                (Audience::ToldAbout(event.subject()), None)
            } else if let EventDetail::Correction { original, .. } = &event.detail {
                // A correction goes to whoever got (or is about to get) the original.
                let ids = self.store.received(&original.id).await?;
                let n = ids.len();
                (Audience::Subscribers(ids), Some(n))
            } else if matches!(event.detail, EventDetail::Drill { .. }) {
                // A drill reaches its places' residents who opted in, nobody else.
                let opted: BTreeSet<SubscriberId> = self.store.drill_subscribers().await?.into_iter().collect();
                let mut ids = self.index.recipients(&self.config.tree, &event.targets, &event.reach);
                ids.retain(|id| opted.contains(id));
                let n = ids.len();
                (Audience::Subscribers(ids), Some(n))
            } else {
                let ids = self.index.recipients_of(&self.config.tree, event.kind, &event.targets, &event.reach);
                let n = ids.len();
                (Audience::Subscribers(ids), Some(n))
            };
            let match_ms = ms_since(matching);
            let deadline = self.policy.deadline_ms(event.priority, now_ms());
            let enqueuing = std::time::Instant::now();
            let enqueued = self.store.enqueue(&event, audience, deadline).await?;
            if enqueued.event_new
                && let Some(entry) = crate::operators::audit::of_order_event(&event)
            {
                self.audit(entry).await;
            }
            let enqueue_ms = ms_since(enqueuing);
            let recipients = recipients.unwrap_or(enqueued.deliveries);
            EventWritten {
                event: &event,
                new: enqueued.event_new,
                recipients,
                enqueued: enqueued.deliveries,
                match_ms,
                enqueue_ms,
            }
            .emit(&self.out.stats);
            let _ = self.out.fanouts.send(Fanout {
                event,
                recipients,
                enqueued: enqueued.deliveries,
                match_ms,
                enqueue_ms,
            });
        }
        Ok(())
    }

    /// A start on a hromada or settlement is a threat in the residents' own place and
    /// goes before oblast- and raion-wide starts (DESIGN §7).
    fn prioritised(&self, event: &Event) -> Event {
        let mut e = event.clone();
        let local = !e.targets.is_empty() && e.targets.iter().all(|t| self.config.tree.is_local(t));
        if e.transition == Transition::Started
            && matches!(e.detail, EventDetail::Alert { .. })
            && e.kind != AlertKind::Evacuation
            && e.priority == Priority::OtherStart
            && local
        {
            e.priority = Priority::LocalThreat;
        }
        e
    }

    async fn save_state(&self) -> Result<(), StoreError> {
        self.store.kv_put(ALERT_STATE_KEY, &serde_json::to_string(&self.alerts)?).await?;
        self.store.kv_put(ORDER_BOOK_KEY, &serde_json::to_string(&self.orders)?).await?;
        Ok(())
    }
}

/// Builds the match index from every stored place and kind filter, off the async workers: a million
/// places take about a second of CPU.
async fn build_index(tree: &Arc<RegionTree>, store: &dyn Store) -> Result<MatchIndex, StoreError> {
    let places = store.active_places().await?;
    let filtered = store.filtered_places(None).await?;
    let started = std::time::Instant::now();
    let tree = tree.clone();
    let index = tokio::task::spawn_blocking(move || {
        let mut index = MatchIndex::build(&tree, places);
        for (sub, place, kinds) in filtered {
            index.set_kinds(&tree, sub, &place, Some(&kinds));
        }
        index
    })
    .await
    .map_err(|e| StoreError::Worker(format!("building the match index: {e}")))?;
    tracing::info!(took_ms = started.elapsed().as_millis() as u64, "match index built");
    Ok(index)
}

fn ms_since(t: std::time::Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1000.0
}

/// The region channels the tree names.
fn region_channels(tree: &RegionTree) -> Vec<RegionChannel> {
    tree.iter()
        .filter_map(|r| {
            r.channel.as_ref().map(|c| RegionChannel { address: c.address.clone(), lang: c.lang, region: r.id.clone() })
        })
        .collect()
}
