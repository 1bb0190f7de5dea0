//! `sirena bench crash`: the outbox's crash promise (DESIGN §2, invariant 4) checked on
//! the real binary. A confirmed delivery is never sent again; after a crash only what
//! was in flight is sent again.
//!
//! The bench runs `sirena run` as a child process against the simulators, starts one
//! air raid over Kharkiv oblast to `deliveries` residents, and SIGKILLs the child at
//! random points of the fan-out — never a graceful stop, so nothing is handed back —
//! restarting it on the same store file each time. The Telegram simulator holds every
//! answer for [`LATENCY`] after it accepted the message, so at each kill there are
//! messages Telegram has but sirena never heard of. Afterwards the last run drains
//! the outbox and the simulator's record is counted per chat: no chat may be missing,
//! and the extra messages may not outnumber the deliveries the outbox held claimed
//! (`sending`) when a kill landed.
//!
//! Every wait is on something observable (the simulator's counters, the store, the
//! child's exit) and its timeout only fires on failure; the one sleep is the random
//! delay that picks a kill point.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::Context;
use serde_json::json;
use tokio::process::{Child, Command};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::{KHARKIV_CITY, residents, round};
use crate::config::{self, TelegramLimits};
use crate::demo::{ALERTS_TOKEN_ENV, Options, TELEGRAM_TOKEN_ENV, kharkiv_air_raid, luhansk, write_embedded_config};
use crate::messages::Lang;
use crate::sim::feed::{FeedSim, FeedSimConfig};
use crate::sim::telegram::{TelegramSim, TelegramSimConfig};
use crate::store::{DeliveryKey, NodeId, SqliteStore, Store};

/// Chat ids of the residents; nothing else in the run uses this range.
const FIRST_CHAT: i64 = 700_000;
/// How long the simulator holds each accepted message's answer: at the bench's rate
/// about `RATE × LATENCY` (16) requests are accepted but unanswered at any moment.
pub(super) const LATENCY: Duration = Duration::from_millis(40);
/// Messages per second both the simulator and the daemon allow, far above Telegram's
/// 30 so a 10 000-chat fan-out with 20 kills takes seconds, not minutes. With
/// `max_in_flight = 16` and [`LATENCY`] the daemon can just reach it.
pub(super) const RATE: u32 = 400;
/// The longest random extra delay before a kill.
const MAX_DELAY_MS: u64 = 400;
/// A started daemon must show progress within this (a debug build on a busy machine
/// loads the region tree in a few seconds); only a failure waits this long.
const PROGRESS_TIMEOUT: Duration = Duration::from_secs(60);
/// A SIGTERMed daemon waits at most 5 s for requests on the wire, then exits.
const STOP_TIMEOUT: Duration = Duration::from_secs(30);
/// How often the waits look at the simulator; a few messages go out between looks.
pub(super) const LOOK: Duration = Duration::from_millis(5);
const LOG_TAIL_LINES: usize = 40;

/// How the daemon under test is stopped mid-fan-out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stop {
    /// SIGKILL: nothing is handed back; claims wait for their leases to run out.
    Kill,
    /// SIGTERM, as systemd stops it: requests on the wire finish within the grace,
    /// the rest is handed back, and the daemon exits 0.
    Term,
}

/// What one crash run found.
#[derive(Debug, Clone)]
pub struct CrashReport {
    /// SIGKILLs delivered, each after progress since the previous start.
    pub kills: usize,
    /// Residents, one delivery each.
    pub deliveries: usize,
    /// Residents the simulator never accepted a message for.
    pub lost: usize,
    /// Messages beyond the first, summed over residents.
    pub duplicates: usize,
    /// Distinct claims the outbox held (`sending`, by a given node) at the kills: the
    /// only deliveries allowed to go out twice. A claim a dead node still held at the
    /// next kill (its lease had not run out yet) is counted once. After a SIGTERM: the
    /// claims the stopped daemon left behind, which a clean stop must not.
    pub in_flight_at_kills: u64,
    /// `sendMessage` requests the simulator had received and not yet answered just
    /// before each kill, summed.
    pub requests_unanswered_at_kills: u64,
    /// From the first start until the outbox was drained.
    pub seconds: f64,
    /// 429 answers from the simulator (a restarted daemon's limiter does not know what
    /// its killed predecessor sent in its last second).
    pub http_429: u64,
    /// Each stopped run's exit code (`None`: ended by a signal, as SIGKILL ends it).
    pub exits: Vec<Option<i32>>,
    /// Messages the simulator had accepted when each stop landed, counted from the
    /// first start: each below `deliveries` means the stop came mid-fan-out.
    pub sent_at_stops: Vec<u64>,
    /// ESC bytes in the daemons' log, which goes to a file: colour codes there are a bug.
    pub log_escapes: usize,
}

/// `sirena bench crash`: `kills` SIGKILLs of this very binary during a fan-out to
/// `deliveries` residents; the figures, then one JSON line.
pub async fn crash(kills: usize, deliveries: usize) -> anyhow::Result<String> {
    // The schedule of kill points follows the seed, which is printed; the machine's
    // timing decides the rest, so a run is not exactly repeatable anyway.
    let seed = chrono::Utc::now().timestamp_nanos_opt().unwrap_or(1) as u64;
    let binary = std::env::current_exe().context("locating the sirena binary")?;
    let r = crash_run(&binary, kills, deliveries, seed).await?;
    let holds = r.lost == 0 && r.duplicates as u64 <= r.in_flight_at_kills;
    let line = json!({
        "kills": r.kills,
        "deliveries": r.deliveries,
        "lost": r.lost,
        "duplicates": r.duplicates,
        "in_flight_at_kills": r.in_flight_at_kills,
    });
    Ok(format!(
        "{} SIGKILLs of `sirena run` during a fan-out of one air raid to {} residents (seed {seed}): {:.1} s\n\
         at the kills: {} deliveries claimed but not recorded as sent · {} requests unanswered by Telegram\n\
         received: {} lost · {} duplicates · {} × 429\n\
         {}\n{line}",
        r.kills,
        r.deliveries,
        r.seconds,
        r.in_flight_at_kills,
        r.requests_unanswered_at_kills,
        r.lost,
        r.duplicates,
        r.http_429,
        if holds {
            format!(
                "invariant holds: nothing lost, and {} duplicates ≤ {} in flight at the kills",
                r.duplicates, r.in_flight_at_kills
            )
        } else {
            format!(
                "INVARIANT BROKEN: {} lost (must be 0), {} duplicates (must be ≤ {} in flight at the kills)",
                r.lost, r.duplicates, r.in_flight_at_kills
            )
        },
    ))
}

/// Runs `binary run` against the simulators, kills it `kills` times mid-fan-out and
/// counts what the residents received. `seed` picks the kill points.
pub async fn crash_run(binary: &Path, kills: usize, deliveries: usize, seed: u64) -> anyhow::Result<CrashReport> {
    stop_run(binary, Stop::Kill, kills, deliveries, seed).await
}

/// [`crash_run`] with the stop chosen: `stops` times `stop`, each mid-fan-out, each
/// followed by a restart on the same store.
pub async fn stop_run(
    binary: &Path,
    stop: Stop,
    stops: usize,
    deliveries: usize,
    seed: u64,
) -> anyhow::Result<CrashReport> {
    anyhow::ensure!(deliveries > 0, "a crash run needs at least one delivery");
    let cancel = CancellationToken::new();
    let tracker = TaskTracker::new();
    let result = run(binary, stop, stops, deliveries, seed, &cancel, &tracker).await;
    // The child is gone by now (killed on drop if the run failed), so every
    // connection to the simulators ends promptly.
    cancel.cancel();
    tracker.close();
    tracker.wait().await;
    result
}

/// The daemon's settings: the simulator's limits, a short lease so a killed run's
/// claims are taken over within seconds, and fast feed polls.
fn options() -> Options {
    Options {
        poll: Duration::from_millis(200),
        requests_per_min: 6000,
        telegram_limits: TelegramLimits { global_per_sec: RATE, per_chat_per_sec: 1, ..TelegramLimits::default() },
        // A timeout that fires on an accepted message is a duplicate no kill caused;
        // 2 s is fifty times the simulated latency. The lease must be longer.
        send_timeout: Duration::from_secs(2),
        lease: Duration::from_secs(3),
        max_in_flight: 16,
        ..Options::default()
    }
}

async fn run(
    binary: &Path,
    stop: Stop,
    kills: usize,
    deliveries: usize,
    seed: u64,
    cancel: &CancellationToken,
    tracker: &TaskTracker,
) -> anyhow::Result<CrashReport> {
    let opts = options();
    let feed_cfg = FeedSimConfig { requests_per_min: opts.requests_per_min, ..FeedSimConfig::default() };
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

    let dir = tempfile::tempdir().context("temporary directory")?;
    let config_dir = dir.path().join("config");
    write_embedded_config(&config_dir)?;
    std::fs::write(config_dir.join("sirena.toml"), opts.settings(&feed.base_url(), &telegram.base_url()))
        .context("writing sirena.toml")?;
    let store_path = config::load(&config_dir)
        .map_err(|e| anyhow::anyhow!("config invalid:\n{e}"))?
        .store_path()
        .context("the crash bench runs on SQLite")?;
    let chats = FIRST_CHAT..FIRST_CHAT + deliveries as i64;
    for chat in chats.clone() {
        telegram.add_user(chat, "Resident", Some(Lang::Uk.code()));
    }
    {
        // The daemon builds its match index from the store at start, so the residents
        // must be there before the first one.
        let store = SqliteStore::open(&store_path).context("opening the store")?;
        store.import(residents(FIRST_CHAT, deliveries, KHARKIV_CITY)).await.context("seeding residents")?;
    }

    let daemon = DaemonProcess {
        binary: binary.to_owned(),
        config_dir,
        log: dir.path().join("daemon.log"),
        env: vec![(TELEGRAM_TOKEN_ENV, tg_token), (ALERTS_TOKEN_ENV, feed_token)],
    };
    let t0 = Instant::now();
    let mut child = daemon.spawn(1)?;
    feed.set_alerts(vec![kharkiv_air_raid(), luhansk()]);

    // Each kill lands after between 1 and `per_kill` messages since the last start,
    // plus a random delay worth at most as many again, so all kills together use at
    // most about half the fan-out and every one of them interrupts it.
    let per_kill = (deliveries / (kills.max(1) * 4)).max(1) as u64;
    let max_delay_ms = MAX_DELAY_MS.min(per_kill * 1000 / u64::from(RATE));
    let mut rng = seed | 1;
    let mut claims: HashSet<(DeliveryKey, NodeId)> = HashSet::new();
    let mut unanswered = 0u64;
    let (mut exits, mut sent_at_stops) = (Vec::new(), Vec::new());
    for k in 1..=kills {
        let since = telegram.stats().sent;
        let target = since + 1 + next(&mut rng) % per_kill;
        let progressed = async {
            while telegram.stats().sent < target {
                tokio::time::sleep(LOOK).await;
            }
        };
        daemon.watch(&mut child, PROGRESS_TIMEOUT, progressed).await.with_context(|| {
            format!("run {k}: no progress within {PROGRESS_TIMEOUT:?} (fewer deliveries than kills need?)")
        })?;
        if max_delay_ms > 0 {
            // Not a check: the delay only picks where in the fan-out the kill lands.
            tokio::time::sleep(Duration::from_millis(next(&mut rng) % max_delay_ms)).await;
        }
        // Sampled just before the signal: once the process is dead its sockets close
        // and the simulator drops those handlers.
        unanswered += telegram.in_progress() as u64;
        sent_at_stops.push(telegram.stats().sent);
        // Both wait for the process to be gone, so the store below is exactly what it
        // left. `kill` is SIGKILL on Unix.
        match stop {
            Stop::Kill => {
                child.kill().await.with_context(|| format!("run {k}: SIGKILL"))?;
                exits.push(None);
            }
            Stop::Term => exits.push(daemon.terminate(&mut child).await?.code()),
        }
        let store = SqliteStore::open(&store_path).context("opening the store after a kill")?;
        claims.extend(store.leases().await.context("reading leases after a kill")?);
        drop(store);
        child = daemon.spawn(k + 1)?;
    }

    // The last run finishes the fan-out, the killed runs' claims included once their
    // leases run out.
    let store = SqliteStore::open(&store_path).context("opening the store")?;
    let drain_timeout = Duration::from_secs(deliveries as u64 / u64::from(RATE) * 3 + 60);
    let drained = async {
        loop {
            match store.drained().await {
                Ok(true) => return Ok(()),
                Ok(false) => tokio::time::sleep(Duration::from_millis(25)).await,
                Err(e) => return Err(e),
            }
        }
    };
    daemon.watch(&mut child, drain_timeout, drained).await.context("the outbox did not drain")??;
    let seconds = t0.elapsed().as_secs_f64();
    drop(store);
    daemon.stop(child).await?;

    let mut per_chat: HashMap<i64, usize> = HashMap::new();
    for m in telegram.sent() {
        if chats.contains(&m.chat_id) {
            *per_chat.entry(m.chat_id).or_default() += 1;
        }
    }
    let lost = chats.clone().filter(|c| !per_chat.contains_key(c)).count();
    let duplicates = per_chat.values().map(|n| n - 1).sum();
    Ok(CrashReport {
        kills,
        deliveries,
        lost,
        duplicates,
        in_flight_at_kills: claims.len() as u64,
        requests_unanswered_at_kills: unanswered,
        seconds: round(seconds, 2),
        http_429: telegram.stats().rate_limited,
        exits,
        sent_at_stops,
        log_escapes: std::fs::read(&daemon.log).map_or(0, |log| log.iter().filter(|b| **b == 0x1b).count()),
    })
}

/// How to start the daemon under test, and where its log goes.
pub(super) struct DaemonProcess {
    pub(super) binary: PathBuf,
    pub(super) config_dir: PathBuf,
    /// Every start appends to one file, so a failure shows the runs before it too.
    pub(super) log: PathBuf,
    pub(super) env: Vec<(&'static str, String)>,
}

impl DaemonProcess {
    pub(super) fn spawn(&self, run: usize) -> anyhow::Result<Child> {
        use std::io::Write;
        let mut log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .with_context(|| format!("opening {}", self.log.display()))?;
        writeln!(log, "---- run {run} ----")?;
        let mut cmd = Command::new(&self.binary);
        cmd.args(["run", "--config"])
            .arg(&self.config_dir)
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(log))
            // A failed bench must not leave a daemon behind.
            .kill_on_drop(true);
        for (name, value) in &self.env {
            cmd.env(name, value);
        }
        cmd.spawn().with_context(|| format!("starting {} (run {run})", self.binary.display()))
    }

    /// Waits for `until`, failing with the log's tail when `timeout` passes or the
    /// child exits first.
    pub(super) async fn watch<T>(
        &self,
        child: &mut Child,
        timeout: Duration,
        until: impl std::future::Future<Output = T>,
    ) -> anyhow::Result<T> {
        tokio::select! {
            out = until => Ok(out),
            exit = child.wait() => Err(anyhow::anyhow!("the daemon exited on its own ({exit:?}); log:\n{}", self.tail())),
            () = tokio::time::sleep(timeout) => Err(anyhow::anyhow!("timed out after {timeout:?}; log:\n{}", self.tail())),
        }
    }

    /// SIGTERM, as systemd stops it, and a clean exit.
    pub(super) async fn stop(&self, mut child: Child) -> anyhow::Result<()> {
        let exit = self.terminate(&mut child).await?;
        anyhow::ensure!(exit.success(), "the daemon exited with {exit} after SIGTERM; log:\n{}", self.tail());
        Ok(())
    }

    /// SIGTERM, and the exit status once the daemon is gone.
    async fn terminate(&self, child: &mut Child) -> anyhow::Result<std::process::ExitStatus> {
        let pid = child.id().context("the daemon has already exited")?;
        let status = std::process::Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .context("running kill -TERM")?;
        anyhow::ensure!(status.success(), "kill -TERM {pid} failed: {status}");
        let exit = match tokio::time::timeout(STOP_TIMEOUT, child.wait()).await {
            Ok(exit) => exit.context("waiting for the daemon")?,
            Err(_) => {
                anyhow::bail!("the daemon did not stop within {STOP_TIMEOUT:?} of SIGTERM; log:\n{}", self.tail())
            }
        };
        Ok(exit)
    }

    pub(super) fn tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(LOG_TAIL_LINES)..].join("\n")
    }
}

/// xorshift64: a deterministic schedule of kill points from the seed.
pub(super) fn next(x: &mut u64) -> u64 {
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    *x
}
