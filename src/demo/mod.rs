//! `sirena demo`: the Kupiansk scenario of DESIGN §13, end to end.
//!
//! Everything real runs: the alerts.in.ua adapter polls the feed simulator over
//! loopback HTTP, the region files are rewritten on disk and picked up by the file
//! watcher, residents subscribe by chatting with the real bot through the Telegram
//! simulator, and the dispatcher sends through teloxide under the simulator's enforced
//! limits. The demo only plays the outside world (the feed, the operator, the
//! residents) and checks what each resident received against what they should have.
//!
//! [`Harness`] is that outside world, shared with `sirena bench fanout` and the
//! end-to-end tests.

mod scenario;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config;
use crate::daemon::{self, Fanout, Running, Secrets};
use crate::sim::feed::{FeedSim, FeedSimConfig, SimAlert};
use crate::sim::telegram::{TelegramSim, TelegramSimConfig};
use crate::store::Store;

pub use scenario::run;

/// The shipped config files, embedded so the demo runs from any directory.
pub const EMBEDDED_CONFIG: &[(&str, &str)] = &[
    ("sirena.toml", include_str!("../../config/sirena.toml")),
    ("regions/ukraine.toml", include_str!("../../config/regions/ukraine.toml")),
    ("regions/kharkiv.toml", include_str!("../../config/regions/kharkiv.toml")),
    ("regions/lviv.toml", include_str!("../../config/regions/lviv.toml")),
    ("locales/uk/alerts.ftl", include_str!("../../config/locales/uk/alerts.ftl")),
    ("locales/uk/bot.ftl", include_str!("../../config/locales/uk/bot.ftl")),
    ("locales/en/alerts.ftl", include_str!("../../config/locales/en/alerts.ftl")),
    ("locales/en/bot.ftl", include_str!("../../config/locales/en/bot.ftl")),
];

/// The simulators, a config directory pointing at them, and a running daemon.
pub struct Harness {
    pub feed: FeedSim,
    pub telegram: TelegramSim,
    pub config_dir: PathBuf,
    pub daemon: Running,
    pub fanouts: broadcast::Receiver<Fanout>,
    pub started: Instant,
    secrets: Secrets,
    sims_cancel: CancellationToken,
    sims: TaskTracker,
    _dir: tempfile::TempDir,
}

/// How the demo world is set up. Poll intervals far below production are fine here:
/// the feed simulator is told the same budget and enforces it.
#[derive(Clone, Debug)]
pub struct Options {
    pub poll: Duration,
    pub requests_per_min: u32,
    /// Limits the Telegram simulator enforces.
    pub telegram_sim: TelegramSimConfig,
    /// Limits sirena's own limiter applies (normally the same as the simulator's).
    pub telegram_limits: crate::config::TelegramLimits,
    pub max_in_flight: usize,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            poll: Duration::from_millis(250),
            requests_per_min: 600,
            telegram_sim: TelegramSimConfig::default(),
            telegram_limits: crate::config::TelegramLimits::default(),
            max_in_flight: 16,
        }
    }
}

impl Harness {
    /// Starts both simulators, writes the embedded config (pointed at them) into a
    /// temporary directory, and starts the daemon on it.
    pub async fn start(opts: Options) -> anyhow::Result<Harness> {
        let sims_cancel = CancellationToken::new();
        let sims = TaskTracker::new();
        let feed_cfg = FeedSimConfig { requests_per_min: opts.requests_per_min, ..FeedSimConfig::default() };
        let feed_token = feed_cfg.token.clone();
        let feed = FeedSim::start(feed_cfg, sims_cancel.clone(), &sims).await.context("feed simulator")?;
        let tg_cfg = opts.telegram_sim.clone();
        let tg_token = tg_cfg.token.clone();
        let telegram = TelegramSim::start(tg_cfg, sims_cancel.clone(), &sims).await.context("Telegram simulator")?;

        let dir = tempfile::tempdir().context("temporary directory")?;
        let config_dir = dir.path().join("config");
        write_embedded_config(&config_dir)?;
        let settings = format!(
            r#"# Written by sirena demo: the shipped settings, pointed at the simulators.
[store]
path = "sirena.db"

[sources.alerts_in_ua]
base_url = "{feed}"
token_env = "SIRENA_DEMO_ALERTS_TOKEN"
poll = "{poll}ms"
timeout = "1s"
max_requests_per_min = {rpm}

[telegram]
api_url = "{tg}"
token_env = "SIRENA_DEMO_TELEGRAM_TOKEN"
long_poll = "1s"
limits = {{ global_per_sec = {gps}, per_chat_per_sec = {pcs}, group_per_min = {gpm} }}

[alerts]
stale_after = "1m"
confirm_empty = 3

[dispatch]
max_in_flight = {mif}
"#,
            feed = feed.base_url(),
            tg = telegram.base_url(),
            poll = opts.poll.as_millis(),
            rpm = opts.requests_per_min,
            gps = opts.telegram_limits.global_per_sec,
            pcs = opts.telegram_limits.per_chat_per_sec,
            gpm = opts.telegram_limits.group_per_min,
            mif = opts.max_in_flight,
        );
        std::fs::write(config_dir.join("sirena.toml"), settings)?;
        let config = config::load(&config_dir).map_err(|e| anyhow::anyhow!("embedded config invalid:\n{e}"))?;
        let secrets = Secrets {
            telegram: Some(config::secret::Secret::new(tg_token)),
            alerts_in_ua: Some(config::secret::Secret::new(feed_token)),
        };
        let mut daemon = daemon::start(config, secrets.clone()).await?;
        let fanouts = daemon.first_fanouts.take().unwrap_or_else(|| daemon.fanouts.subscribe());
        Ok(Harness {
            feed,
            telegram,
            config_dir,
            daemon,
            fanouts,
            started: Instant::now(),
            secrets,
            sims_cancel,
            sims,
            _dir: dir,
        })
    }

    /// Stops the daemon; the simulators keep running. Follow with [`Harness::start_daemon`].
    pub async fn stop_daemon(&self) {
        self.daemon.shutdown().await;
    }

    /// Starts a new daemon on the same config directory and store file, as a restart by
    /// systemd would.
    pub async fn start_daemon(&mut self) -> anyhow::Result<()> {
        let config = config::load(&self.config_dir).map_err(|e| anyhow::anyhow!("config invalid:\n{e}"))?;
        self.daemon = daemon::start(config, self.secrets.clone()).await?;
        self.fanouts = self.daemon.first_fanouts.take().unwrap_or_else(|| self.daemon.fanouts.subscribe());
        Ok(())
    }

    pub fn store(&self) -> &Arc<Store> {
        &self.daemon.store
    }

    /// Seconds since start, for the timeline.
    pub fn clock(&self) -> String {
        format!("{:>5.1}s", self.started.elapsed().as_secs_f64())
    }

    /// Waits for the next fan-out matching `pred`, skipping others.
    pub async fn next_fanout(&mut self, timeout: Duration, pred: impl Fn(&Fanout) -> bool) -> anyhow::Result<Fanout> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            match tokio::time::timeout_at(deadline, self.fanouts.recv()).await {
                Ok(Ok(f)) if pred(&f) => return Ok(f),
                Ok(Ok(_)) | Ok(Err(broadcast::error::RecvError::Lagged(_))) => continue,
                Ok(Err(broadcast::error::RecvError::Closed)) => anyhow::bail!("the daemon stopped"),
                Err(_) => anyhow::bail!("no matching event within {timeout:?}"),
            }
        }
    }

    /// Fan-outs that happened and nobody waited for.
    pub fn drain_fanouts(&mut self) -> Vec<Fanout> {
        let mut out = Vec::new();
        while let Ok(f) = self.fanouts.try_recv() {
            out.push(f);
        }
        out
    }

    /// Waits until the outbox has nothing pending or in flight.
    pub async fn wait_drained(&self, timeout: Duration) -> anyhow::Result<()> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if self.store().counts()?.is_drained() {
                return Ok(());
            }
            if tokio::time::Instant::now() >= deadline {
                anyhow::bail!("outbox not drained within {timeout:?}: {:?}", self.store().counts()?);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits until the feed simulator has answered `n` more requests than `since`.
    pub async fn wait_polls(&self, since: u64, n: u64, timeout: Duration) -> anyhow::Result<()> {
        let deadline = tokio::time::Instant::now() + timeout;
        while self.feed.requests() < since + n {
            if tokio::time::Instant::now() >= deadline {
                anyhow::bail!("the daemon stopped polling the feed");
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        Ok(())
    }

    /// Replaces a region file the way a careful operator's tool does (write, rename),
    /// so the watcher never reads half a file.
    pub fn write_region_file(&self, name: &str, text: &str) -> anyhow::Result<()> {
        let path = self.config_dir.join("regions").join(name);
        let tmp = self.config_dir.join(format!(".{name}.tmp"));
        std::fs::write(&tmp, text)?;
        std::fs::rename(&tmp, &path)?;
        Ok(())
    }

    pub async fn shutdown(self) {
        self.daemon.shutdown().await;
        self.sims_cancel.cancel();
        self.sims.close();
        self.sims.wait().await;
    }
}

/// Writes the embedded config files under `dir`.
pub fn write_embedded_config(dir: &Path) -> anyhow::Result<()> {
    for (rel, text) in EMBEDDED_CONFIG {
        let path = dir.join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

/// An air raid over Kharkiv oblast, as the feed lists it.
pub fn kharkiv_air_raid() -> SimAlert {
    SimAlert {
        location_uid: 22,
        location_title: "Харківська область".into(),
        location_type: "oblast".into(),
        location_oblast: "Харківська область".into(),
        location_oblast_uid: 22,
        alert_type: "air_raid".into(),
        started_at: chrono::Utc::now(),
    }
}

/// `sirena bench fanout`: one oblast air raid to `residents` Telegram chats.
pub async fn bench_fanout(residents: usize) -> anyhow::Result<String> {
    let h = Harness::start(Options::default()).await?;
    let kharkiv = crate::regions::RegionId::parse("UA63120270010096107")?;
    for i in 0..residents {
        let chat = 500_000 + i as i64;
        h.telegram.add_user(chat, "Resident", Some("uk"));
        let (sub, _) =
            h.store().upsert_subscriber(crate::bot::CHANNEL, &chat.to_string(), crate::messages::Lang::Uk)?;
        h.store().add_place(sub.id, &kharkiv)?;
    }
    let mut h = h;
    h.feed.set_alerts(vec![kharkiv_air_raid()]);
    let fanout = h.next_fanout(Duration::from_secs(10), |_| true).await?;
    let t0 = Instant::now();
    h.wait_drained(Duration::from_secs(residents as u64 / 10 + 60)).await?;
    let took = t0.elapsed();
    let stats = h.telegram.stats();
    let counts = h.store().counts()?;
    h.shutdown().await;
    let ideal = residents as f64 / 30.0;
    Ok(format!(
        "fan-out of one air raid to {} residents: {:.1} s from event to last delivery\n\
         Telegram limit 30 msg/s → ideal {:.1} s; ratio {:.2}\n\
         sent {} · failed {} · expired {} · simulator 429s {}",
        fanout.recipients,
        took.as_secs_f64(),
        ideal,
        took.as_secs_f64() / ideal,
        counts.sent,
        counts.failed,
        counts.expired,
        stats.rate_limited,
    ))
}
