//! `sirena run` is never silently deaf, as an operator's service manager sees it: a
//! token the platform refuses at start ends the process with exit 1 and a line naming
//! its variable; a platform that cannot be reached at start is not fatal (the daemon
//! stays up, not ready, and becomes ready when it answers); `sirena health` says which,
//! by exit code. Each runs the real binary on the shipped config pointed at the
//! simulators.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::child::{Sirena as Daemon, WAIT};

use sirena::sim::feed::{Fault, FeedKind, FeedSim, FeedSimConfig};
use sirena::sim::telegram::{TelegramSim, TelegramSimConfig};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

const BIN: &str = env!("CARGO_BIN_EXE_sirena");

struct World {
    feed: FeedSim,
    telegram: TelegramSim,
    feed_token: String,
    ukrainealarm_key: String,
    tg_token: String,
    cancel: CancellationToken,
    tracker: TaskTracker,
    _dir: tempfile::TempDir,
    config: PathBuf,
    /// The daemon's `[http] listen` port, written into the config.
    port: u16,
}

impl World {
    async fn start() -> World {
        let cancel = CancellationToken::new();
        let tracker = TaskTracker::new();
        let cfg =
            FeedSimConfig { requests_per_min: 600, ukrainealarm_requests_per_min: 600, ..FeedSimConfig::default() };
        let (feed_token, ukrainealarm_key) = (cfg.token.clone(), cfg.ukrainealarm_key.clone());
        let feed = FeedSim::start(cfg, cancel.clone(), &tracker).await.expect("feed sim");
        let tg_cfg = TelegramSimConfig::default();
        let tg_token = tg_cfg.token.clone();
        let telegram = TelegramSim::start(tg_cfg, cancel.clone(), &tracker).await.expect("telegram sim");
        let dir = tempfile::tempdir().expect("tempdir");
        let config = dir.path().join("config");
        sirena::demo::write_embedded_config(&config).expect("config");
        let port = free_port();
        let world =
            World { feed, telegram, feed_token, ukrainealarm_key, tg_token, cancel, tracker, _dir: dir, config, port };
        world.write_settings(&world.telegram.base_url(), |s| s);
        world
    }

    /// The shipped `sirena.toml` pointed at the simulators (Telegram at `telegram`),
    /// listening on this world's port, then `edit`ed.
    fn write_settings(&self, telegram: &str, edit: impl Fn(String) -> String) {
        let shipped = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("config/sirena.toml"))
            .expect("shipped sirena.toml");
        let listen = "listen = \"127.0.0.1:8640\"";
        assert!(shipped.contains(listen), "the shipped config serves /readyz on 8640");
        let settings = shipped
            .replace("https://api.alerts.in.ua", &self.feed.base_url())
            .replace("https://api.telegram.org", telegram)
            .replacen("poll = \"10s\"", "poll = \"1s\"\nmax_requests_per_min = 600", 1)
            .replacen("timeout = \"5s\"", "timeout = \"1s\"", 1)
            .replace("[telegram]", "[telegram]\nlong_poll = \"1s\"")
            .replace(listen, &format!("listen = \"127.0.0.1:{}\"", self.port));
        std::fs::write(self.config.join("sirena.toml"), edit(settings)).expect("write");
    }

    fn run(&self, env: &[(&str, &str)]) -> Daemon {
        Daemon::start(&self.config, env)
    }

    /// `sirena health` on this world's config: its exit code and its one line.
    fn health(&self) -> (Option<i32>, String) {
        let out = Command::new(BIN).args(["health", "--config"]).arg(&self.config).output().expect("health runs");
        (out.status.code(), String::from_utf8_lossy(&out.stdout).into_owned())
    }

    async fn readyz(&self) -> (u16, String) {
        let r = reqwest::get(format!("http://127.0.0.1:{}/readyz", self.port)).await.expect("the daemon answers");
        (r.status().as_u16(), r.text().await.expect("body"))
    }

    async fn stop(self) {
        self.cancel.cancel();
        self.tracker.close();
        self.tracker.wait().await;
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port()
}

/// The last line of the log, which `sirena run` prints on its way out.
fn last_line(log: &str) -> &str {
    log.lines().last().unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_telegram_token_telegram_refuses_stops_sirena_at_once_naming_its_variable() {
    let w = World::start().await;
    let daemon = w.run(&[("TELEGRAM_BOT_TOKEN", "123456:WRONG-TOKEN"), ("ALERTS_IN_UA_TOKEN", &w.feed_token)]);
    let (code, took, log) = daemon.exit();
    assert_eq!(code, Some(1), "{log}");
    assert!(took < Duration::from_secs(30), "took {took:?}");
    assert_eq!(
        last_line(&log),
        "error: credential check failed: Telegram refused the token in TELEGRAM_BOT_TOKEN (HTTP 401); \
         set the right one and start sirena again",
        "{log}"
    );
    assert!(!log.contains("WRONG-TOKEN"), "the token never reaches the log");
    assert!(w.telegram.requests().iter().any(|r| r.status == 401), "Telegram was asked and refused");
    w.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_alerts_in_ua_token_refused_at_the_first_poll_stops_sirena_naming_its_variable() {
    let w = World::start().await;
    let daemon = w.run(&[("TELEGRAM_BOT_TOKEN", &w.tg_token), ("ALERTS_IN_UA_TOKEN", "wrong-feed-token")]);
    let (code, _, log) = daemon.exit();
    assert_eq!(code, Some(1), "{log}");
    assert!(
        last_line(&log).ends_with(
            "alerts_in_ua refused the token in ALERTS_IN_UA_TOKEN (HTTP 401); set the right one and start sirena again"
        ),
        "{log}"
    );
    assert!(!log.contains("wrong-feed-token"));
    w.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ukrainealarm_key_refused_on_its_first_request_stops_sirena_naming_its_variable() {
    let w = World::start().await;
    let feed = w.feed.base_url();
    w.write_settings(&w.telegram.base_url(), |s| {
        let from = format!("kind = \"alerts_in_ua\"\nbase_url = \"{feed}\"\ntoken_env = \"ALERTS_IN_UA_TOKEN\"");
        assert!(s.contains(&from), "{s}");
        s.replace(&from, &format!("kind = \"ukrainealarm\"\nbase_url = \"{feed}\"\ntoken_env = \"UKRAINEALARM_TOKEN\""))
    });
    let daemon = w.run(&[("TELEGRAM_BOT_TOKEN", &w.tg_token), ("UKRAINEALARM_TOKEN", "not-the-key")]);
    let (code, _, log) = daemon.exit();
    assert_eq!(code, Some(1), "{log}");
    assert!(last_line(&log).contains("ukrainealarm refused the token in UKRAINEALARM_TOKEN (HTTP 401)"), "{log}");
    assert_eq!(w.feed.requests_for(FeedKind::UkraineAlarm), 1, "its first request decided it");

    // The same config with the right key runs (the 401 was the key, not the config).
    let mut daemon = w.run(&[("TELEGRAM_BOT_TOKEN", &w.tg_token), ("UKRAINEALARM_TOKEN", &w.ukrainealarm_key)]);
    daemon.wait_for_lines("sirena running", 1);
    let deadline = Instant::now() + WAIT;
    while w.health().0 != Some(0) {
        assert!(Instant::now() < deadline && daemon.still_running(), "never ready: {:?}", w.health());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(daemon.stop().0.code(), Some(0));
    w.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_feed_that_fails_at_start_is_not_fatal_and_sirena_health_follows_readiness() {
    let w = World::start().await;
    // The feed answers 503 to the first polls, as a feed that is down does.
    w.feed.inject_for(FeedKind::AlertsInUa, Fault::Status(503), 3);
    let (code, said) = w.health();
    assert_eq!(code, Some(1), "nothing listens yet: {said}");
    assert!(said.starts_with(&format!("no answer from http://127.0.0.1:{}/readyz", w.port)), "{said}");

    let mut daemon = w.run(&[("TELEGRAM_BOT_TOKEN", &w.tg_token), ("ALERTS_IN_UA_TOKEN", &w.feed_token)]);
    daemon.wait_for_lines("source poll failed", 1);
    // The first poll failed, and the next two will (1 s, then 2 s later): not ready.
    let (status, body) = w.readyz().await;
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("source alerts_in_ua has not answered well yet (last error: HTTP 503"), "{body}");
    let (code, said) = w.health();
    assert_eq!(code, Some(1), "{said}");
    assert!(said.starts_with("not ready: source alerts_in_ua has not answered well yet"), "{said}");
    assert!(daemon.still_running());
    // Then the feed answers: ready, and `sirena health` exits 0 with the body's line.
    let deadline = Instant::now() + WAIT;
    let said = loop {
        let (code, said) = w.health();
        if code == Some(0) {
            break said;
        }
        assert!(Instant::now() < deadline && daemon.still_running(), "never ready: {said}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(said, "ready: 1 of 1 sources healthy, Telegram answers\n");
    assert!(w.feed.requests_for(FeedKind::AlertsInUa) >= 4, "three failures, then answers");
    assert_eq!(daemon.stop().0.code(), Some(0));
    w.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn telegram_unreachable_at_start_is_not_fatal_the_daemon_stays_up_not_ready() {
    let w = World::start().await;
    let closed = format!("http://127.0.0.1:{}", free_port());
    w.write_settings(&closed, |s| s);
    let mut daemon = w.run(&[("TELEGRAM_BOT_TOKEN", &w.tg_token), ("ALERTS_IN_UA_TOKEN", &w.feed_token)]);
    // getMe retried (1 s, then 2 s): the network error did not stop it.
    daemon.wait_for_lines("getMe failed", 3);
    assert!(daemon.still_running(), "a network error at start is not fatal");
    let deadline = Instant::now() + WAIT;
    let body = loop {
        let (status, body) = w.readyz().await;
        assert_eq!(status, 503, "{body}");
        if !body.contains("has not answered") {
            break body;
        }
        assert!(Instant::now() < deadline, "the feed never answered: {body}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(body.starts_with("not ready: the bot has not reached Telegram yet: network: "), "{body}");
    let (code, said) = w.health();
    assert_eq!(code, Some(1), "{said}");
    assert!(said.starts_with("not ready: the bot has not reached Telegram yet"), "{said}");
    assert_eq!(said.lines().count(), 1, "{said}");
    assert_eq!(daemon.stop().0.code(), Some(0));
    w.stop().await;
}
