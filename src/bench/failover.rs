//! `sirena bench failover`: several `sirena run` nodes on one PostgreSQL database
//! (DESIGN §15), the leader SIGKILLed mid-fan-out and then the next leader too.
//!
//! The nodes run the real binary against the simulators; a throwaway database is
//! made on the server `SIRENA_TEST_POSTGRES` names (default
//! `postgres://postgres@127.0.0.1:5432/postgres`). Who leads is read from the
//! database (the holder of the leader's advisory lock) and matched to a process by the
//! node id each one logs. After each kill the run measures the takeover: from the
//! SIGKILL until Telegram accepts a new message. Afterwards: no resident without the
//! alert, no more duplicates than deliveries claimed at the kills, no overlapping
//! `getUpdates` (one consumer of the bot at a time), the feed's budget never spent
//! (its simulator refused nothing) and no event written after the first leader's.
//!
//! [`partition_run`] cuts the leader off instead: its lock's backend is terminated
//! (`pg_terminate_backend`), and the node must log that it stopped leading before the
//! standby logs that it leads.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Context;
use serde_json::json;
use tokio::process::Child;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::crash::{DaemonProcess, next};
use super::{KHARKIV_CITY, residents, round};
use crate::config::TelegramLimits;
use crate::demo::{ALERTS_TOKEN_ENV, Options, TELEGRAM_TOKEN_ENV, kharkiv_air_raid, write_embedded_config};
use crate::leader::LEADER_LOCK;
use crate::messages::Lang;
use crate::sim::feed::{FeedKind, FeedSim, FeedSimConfig};
use crate::sim::telegram::{TelegramSim, TelegramSimConfig};
use crate::store::postgres::scratch::{ScratchDatabase, admin_url};
use crate::store::{DeliveryKey, NodeId, PgStore, Store};
// The simulators run as in the crash bench.
use super::crash::{LATENCY, LOOK, RATE};

const FIRST_CHAT: i64 = 800_000;
/// One node polls every 200 ms within a budget of 300 requests a minute. The
/// simulated feed allows 600: a new leader does not know how much of the minute its
/// dead predecessor used, so the two may share one window (docs/deploy.md).
/// Double polling shows as connections whose requests interleave.
const POLL: Duration = Duration::from_millis(200);
const NODE_BUDGET: u32 = 300;
const FEED_LIMIT: u32 = 600;
const PROGRESS_TIMEOUT: Duration = Duration::from_secs(90);

/// What one failover run found.
#[derive(Debug, Clone)]
pub struct FailoverReport {
    pub nodes: usize,
    pub deliveries: usize,
    pub kills: usize,
    /// The longest time from a SIGKILL of the leader to the next accepted message.
    pub takeover_s: f64,
    pub lost: usize,
    pub duplicates: usize,
    /// Distinct claims (delivery, node) held when the kills landed.
    pub in_flight_at_kills: u64,
    /// `getUpdates` calls that overlapped a live one, and the 409s answered.
    pub overlapping_polls: u64,
    pub poll_conflicts: u64,
    /// Feed requests refused for the budget.
    pub feed_refused: u64,
    /// Pairs of feed connections that polled at the same time.
    pub feed_overlaps: usize,
    /// Events stored after the first leader's fan-out began (a pipeline that wrote
    /// again would add some).
    pub events_after_first: i64,
    pub seconds: f64,
}

/// `sirena bench failover`: `nodes` nodes, the leader killed twice (or `nodes - 1`
/// times if fewer), a fan-out of `deliveries`; the figures, then one JSON line.
pub async fn failover(nodes: usize, deliveries: usize) -> anyhow::Result<String> {
    let binary = std::env::current_exe().context("locating the sirena binary")?;
    let seed = chrono::Utc::now().timestamp_nanos_opt().unwrap_or(1) as u64;
    let kills = 2.min(nodes.saturating_sub(1));
    let r = failover_run(&binary, &admin_url(), nodes, kills, deliveries, Duration::from_secs(10), seed).await?;
    let line = json!({
        "nodes": r.nodes,
        "deliveries": r.deliveries,
        "takeover_s": r.takeover_s,
        "lost": r.lost,
        "duplicates": r.duplicates,
        "in_flight_at_kills": r.in_flight_at_kills,
    });
    Ok(format!(
        "{} nodes on one PostgreSQL, the leader SIGKILLed {} times during a fan-out to {} residents (seed {seed}): {:.1} s\n\
         takeover ≤ {:.2} s · {} lost · {} duplicates · {} in flight at the kills\n\
         {} overlapping getUpdates · {} × 409 · {} feed pollers at once · {} feed requests refused · {} events written after the first leader's\n{line}",
        r.nodes,
        r.kills,
        r.deliveries,
        r.seconds,
        r.takeover_s,
        r.lost,
        r.duplicates,
        r.in_flight_at_kills,
        r.overlapping_polls,
        r.poll_conflicts,
        r.feed_overlaps,
        r.feed_refused,
        r.events_after_first,
    ))
}

/// The simulators, a scratch database, a config and `nodes` daemon processes.
struct Cluster {
    feed: FeedSim,
    telegram: TelegramSim,
    db: Option<ScratchDatabase>,
    store: PgStore,
    daemons: Vec<DaemonProcess>,
    children: Vec<Option<Child>>,
    _dir: tempfile::TempDir,
    chats: std::ops::Range<i64>,
}

impl Cluster {
    #[allow(clippy::too_many_arguments)]
    async fn start(
        binary: &Path,
        admin: &str,
        nodes: usize,
        deliveries: usize,
        takeover: Duration,
        cancel: &CancellationToken,
        tracker: &TaskTracker,
    ) -> anyhow::Result<Cluster> {
        let opts = Options {
            poll: POLL,
            requests_per_min: NODE_BUDGET,
            telegram_limits: TelegramLimits { global_per_sec: RATE, per_chat_per_sec: 1, ..TelegramLimits::default() },
            send_timeout: Duration::from_secs(2),
            lease: Duration::from_secs(3),
            max_in_flight: 16,
            ..Options::default()
        };
        let feed_cfg = FeedSimConfig { requests_per_min: FEED_LIMIT, ..FeedSimConfig::default() };
        let feed_token = feed_cfg.token.clone();
        let feed = FeedSim::start(feed_cfg, cancel.clone(), tracker).await.context("feed simulator")?;
        let tg_cfg = TelegramSimConfig {
            global_per_sec: RATE,
            per_chat_per_sec: 1,
            latency: LATENCY,
            ..TelegramSimConfig::default()
        };
        let tg_token = tg_cfg.token.clone();
        let telegram = TelegramSim::start(tg_cfg, cancel.clone(), tracker).await.context("Telegram simulator")?;
        let db = ScratchDatabase::create(admin).await.context("creating a scratch database")?;
        let store = PgStore::with_config(db.config.clone()).await.context("opening the scratch database")?;
        let dir = tempfile::tempdir().context("temporary directory")?;
        let config_dir = dir.path().join("config");
        write_embedded_config(&config_dir)?;
        let settings = opts.settings(&feed.base_url(), &telegram.base_url()).replacen(
            "[store]\npath = \"sirena.db\"\n",
            &format!("[store]\nurl = \"{}\"\ntakeover = \"{}s\"\n", db.url(), takeover.as_secs()),
            1,
        );
        anyhow::ensure!(settings.contains("url = \"postgres://"), "the settings have no [store] path to replace");
        std::fs::write(config_dir.join("sirena.toml"), settings).context("writing sirena.toml")?;
        let chats = FIRST_CHAT..FIRST_CHAT + deliveries as i64;
        for chat in chats.clone() {
            telegram.add_user(chat, "Resident", Some(Lang::Uk.code()));
        }
        store.import(residents(FIRST_CHAT, deliveries, KHARKIV_CITY)).await.context("seeding residents")?;
        let daemons: Vec<DaemonProcess> = (0..nodes)
            .map(|i| DaemonProcess {
                binary: binary.to_owned(),
                config_dir: config_dir.clone(),
                log: dir.path().join(format!("node-{i}.log")),
                env: vec![(TELEGRAM_TOKEN_ENV, tg_token.clone()), (ALERTS_TOKEN_ENV, feed_token.clone())],
            })
            .collect();
        let mut children = Vec::new();
        for d in &daemons {
            children.push(Some(d.spawn(1)?));
        }
        Ok(Cluster { feed, telegram, db: Some(db), store, daemons, children, _dir: dir, chats })
    }

    /// The node id a process logged at start.
    fn node_of(&self, i: usize) -> Option<i64> {
        let text = std::fs::read_to_string(&self.daemons[i].log).ok()?;
        let line = text.lines().find(|l| l.contains("waiting to lead"))?;
        let at = line.find("node=")? + "node=".len();
        line[at..].split(|c: char| !c.is_ascii_digit()).next()?.parse().ok()
    }

    /// The leader by the database: the node whose session holds the lock, and the
    /// server pid of that session.
    async fn leader(&self) -> anyhow::Result<Option<(NodeId, i32)>> {
        let pg = self.db.as_ref().context("no database")?;
        let (client, conn) = pg.config.connect(tokio_postgres::NoTls).await?;
        let query = async {
            client
                .query_opt(
                    "SELECT a.application_name, a.pid FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
                     WHERE l.locktype = 'advisory' AND l.granted AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
                       AND l.classid = $1 AND l.objid = $2 AND l.objsubid = 1",
                    &[&tokio_postgres::types::Oid::from((LEADER_LOCK >> 32) as u32), &(LEADER_LOCK as u32)],
                )
                .await
        };
        let row = tokio::select! {
            r = query => r?,
            r = conn => anyhow::bail!("connection ended: {r:?}"),
        };
        Ok(row.and_then(|r| {
            let name: String = r.get(0);
            let pid: i32 = r.get(1);
            name.rsplit(' ').next().and_then(|n| n.parse().ok()).map(|n| (NodeId(n), pid))
        }))
    }

    /// Waits until some node leads; returns its index and its lock's backend pid.
    async fn wait_for_leader(&self) -> anyhow::Result<(usize, i32)> {
        let deadline = Instant::now() + PROGRESS_TIMEOUT;
        loop {
            if let Some((node, pid)) = self.leader().await?
                && let Some(i) = (0..self.daemons.len()).find(|&i| self.node_of(i) == Some(node.0))
            {
                return Ok((i, pid));
            }
            anyhow::ensure!(Instant::now() < deadline, "no node became the leader; logs:\n{}", self.tails());
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn wait_sent(&self, at_least: u64, what: &str) -> anyhow::Result<()> {
        let deadline = Instant::now() + PROGRESS_TIMEOUT;
        while self.telegram.stats().sent < at_least {
            anyhow::ensure!(Instant::now() < deadline, "{what}: no progress; logs:\n{}", self.tails());
            tokio::time::sleep(LOOK).await;
        }
        Ok(())
    }

    async fn wait_drained(&self) -> anyhow::Result<()> {
        let deadline = Instant::now()
            + PROGRESS_TIMEOUT
            + Duration::from_secs((self.chats.end - self.chats.start).unsigned_abs() / 100);
        while !self.store.drained().await? {
            anyhow::ensure!(Instant::now() < deadline, "the outbox did not drain; logs:\n{}", self.tails());
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        Ok(())
    }

    async fn events(&self) -> anyhow::Result<i64> {
        // Every event the pipeline stored, by its one statement per event.
        let pg = self.db.as_ref().context("no database")?;
        let (client, conn) = pg.config.connect(tokio_postgres::NoTls).await?;
        let n = tokio::select! {
            r = client.query_one("SELECT COUNT(*) FROM events", &[]) => r?.get::<_, i64>(0),
            r = conn => anyhow::bail!("connection ended: {r:?}"),
        };
        Ok(n)
    }

    fn per_chat(&self) -> (usize, usize) {
        let mut per_chat: HashMap<i64, usize> = HashMap::new();
        for m in self.telegram.sent() {
            if self.chats.contains(&m.chat_id) {
                *per_chat.entry(m.chat_id).or_default() += 1;
            }
        }
        let lost = self.chats.clone().filter(|c| !per_chat.contains_key(c)).count();
        (lost, per_chat.values().map(|n| n - 1).sum())
    }

    fn tails(&self) -> String {
        self.daemons.iter().enumerate().map(|(i, d)| format!("---- node {i}\n{}\n", d.tail())).collect()
    }

    /// Stops the live nodes with SIGTERM and drops the database.
    async fn finish(mut self) -> anyhow::Result<()> {
        for (i, child) in self.children.iter_mut().enumerate() {
            if let Some(c) = child.take() {
                self.daemons[i].stop(c).await?;
            }
        }
        self.store.close();
        if let Some(db) = self.db.take() {
            db.drop_now().await?;
        }
        Ok(())
    }
}

/// Runs `nodes` nodes, SIGKILLs the leader `kills` times mid-fan-out, and counts.
pub async fn failover_run(
    binary: &Path,
    admin: &str,
    nodes: usize,
    kills: usize,
    deliveries: usize,
    takeover: Duration,
    seed: u64,
) -> anyhow::Result<FailoverReport> {
    anyhow::ensure!(kills < nodes, "{kills} kills need more than {nodes} nodes");
    let cancel = CancellationToken::new();
    let tracker = TaskTracker::new();
    let result = async {
        let mut c = Cluster::start(binary, admin, nodes, deliveries, takeover, &cancel, &tracker).await?;
        let t0 = Instant::now();
        c.wait_for_leader().await?;
        c.feed.set_alerts(vec![kharkiv_air_raid()]);
        c.wait_sent(1, "the first leader").await?;
        let events_first = c.events().await?;
        let per_kill = (deliveries / ((kills + 1) * 3)).max(1) as u64;
        let mut rng = seed | 1;
        let mut claims: HashSet<(DeliveryKey, NodeId)> = HashSet::new();
        let mut takeover_s: f64 = 0.0;
        for k in 1..=kills {
            let target = c.telegram.stats().sent + 1 + next(&mut rng) % per_kill;
            c.wait_sent(target, &format!("kill {k}")).await?;
            let (leader, _) = c.wait_for_leader().await?;
            let child = c.children[leader].as_mut().context("the leader was already killed")?;
            child.kill().await.with_context(|| format!("kill {k}: SIGKILL"))?;
            c.children[leader] = None;
            let killed_at = Instant::now();
            let sent_at_kill = c.telegram.stats().sent;
            claims.extend(c.store.leases().await?);
            if sent_at_kill >= deliveries as u64 {
                break;
            }
            c.wait_sent(sent_at_kill + 1, &format!("takeover after kill {k}")).await?;
            takeover_s = takeover_s.max(killed_at.elapsed().as_secs_f64());
        }
        c.wait_drained().await?;
        let seconds = t0.elapsed().as_secs_f64();
        let (lost, duplicates) = c.per_chat();
        let stats = c.telegram.stats();
        let events_after_first = c.events().await? - events_first;
        let feed_refused = c.feed.refused_for(FeedKind::AlertsInUa);
        let feed_overlaps = c.feed.overlapping_peers(FeedKind::AlertsInUa);
        c.finish().await?;
        Ok(FailoverReport {
            nodes,
            deliveries,
            kills,
            takeover_s: round(takeover_s, 2),
            lost,
            duplicates,
            in_flight_at_kills: claims.len() as u64,
            overlapping_polls: stats.overlapping_polls,
            poll_conflicts: stats.poll_conflicts,
            feed_refused,
            feed_overlaps,
            events_after_first,
            seconds: round(seconds, 2),
        })
    }
    .await;
    cancel.cancel();
    tracker.close();
    tracker.wait().await;
    result
}

/// What a partition run found: when the cut-off leader said it stopped and when the
/// standby said it leads (from their logs' timestamps), and the deliveries.
#[derive(Debug, Clone)]
pub struct PartitionReport {
    pub old_stopped: chrono::DateTime<chrono::Utc>,
    pub new_leads: chrono::DateTime<chrono::Utc>,
    pub lost: usize,
    pub duplicates: usize,
    /// Claims held at the cut (the bound a kill would allow).
    pub in_flight_at_cut: u64,
    pub overlapping_polls: u64,
}

/// The first log line of `log` after `after` that contains `needle`, by its timestamp.
fn logged(log: &Path, needle: &str, after: chrono::DateTime<chrono::Utc>) -> Option<chrono::DateTime<chrono::Utc>> {
    let text = std::fs::read_to_string(log).ok()?;
    text.lines().filter(|l| l.contains(needle)).find_map(|l| {
        let ts = l.split_whitespace().next()?;
        let t = chrono::DateTime::parse_from_rfc3339(ts).ok()?.with_timezone(&chrono::Utc);
        (t >= after).then_some(t)
    })
}

/// Two nodes; the leader's lock backend is terminated mid-fan-out.
pub async fn partition_run(binary: &Path, admin: &str, deliveries: usize) -> anyhow::Result<PartitionReport> {
    let cancel = CancellationToken::new();
    let tracker = TaskTracker::new();
    let result = async {
        let c = Cluster::start(binary, admin, 2, deliveries, Duration::from_secs(3), &cancel, &tracker).await?;
        let (leader, pid) = c.wait_for_leader().await?;
        c.feed.set_alerts(vec![kharkiv_air_raid()]);
        c.wait_sent((deliveries / 4).max(1) as u64, "the first leader").await?;
        let cut = chrono::Utc::now();
        let claims: HashSet<(DeliveryKey, NodeId)> = c.store.leases().await?.into_iter().collect();
        {
            let pg = c.db.as_ref().context("no database")?;
            let (client, conn) = pg.config.connect(tokio_postgres::NoTls).await?;
            let params: [&(dyn tokio_postgres::types::ToSql + Sync); 1] = [&pid];
            let terminate = client.query_one("SELECT pg_terminate_backend($1)", &params);
            tokio::select! {
                r = terminate => {
                    anyhow::ensure!(r?.get::<_, bool>(0), "backend {pid} was not there to terminate");
                }
                r = conn => anyhow::bail!("connection ended: {r:?}"),
            }
        }
        // The node that lost its session waits before asking again, so the standby
        // leads next.
        let standby = 1 - leader;
        let deadline = Instant::now() + PROGRESS_TIMEOUT;
        let (old_stopped, new_leads) = loop {
            let old = logged(&c.daemons[leader].log, "leadership lost", cut);
            let new = logged(&c.daemons[standby].log, "this node is the leader", cut);
            if let (Some(old), Some(new)) = (old, new) {
                break (old, new);
            }
            anyhow::ensure!(Instant::now() < deadline, "no handover after the cut; logs:\n{}", c.tails());
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        c.wait_drained().await?;
        let (lost, duplicates) = c.per_chat();
        let overlapping_polls = c.telegram.stats().overlapping_polls;
        c.finish().await?;
        Ok(PartitionReport {
            old_stopped,
            new_leads,
            lost,
            duplicates,
            in_flight_at_cut: claims.len() as u64,
            overlapping_polls,
        })
    }
    .await;
    cancel.cancel();
    tracker.close();
    tracker.wait().await;
    result
}
