//! Credentials the platforms may refuse: the Telegram bot token and each feed's token.
//!
//! Every adapter that sends a credential holds a [`CredentialCheck`] and says what came
//! of each request: **accepted** (the platform answered, whatever else it said),
//! **refused** (Telegram's 401, a feed's 401 or 403 — ukrainealarm's only past its
//! throttling allowance), or **unreachable** (a network error, a timeout, a 5xx: no
//! word on the credential at all). The [`Watchdog`], a core task, reads them all:
//! - refused before it was ever accepted: the daemon stops at once, naming the
//!   variable ("Telegram refused the token in TELEGRAM_BOT_TOKEN (HTTP 401)"): a wrong
//!   token is an operator's mistake that no retry mends;
//! - refused after it worked: operators are told at once
//!   ([`Notice::CredentialRefused`], to their chats and the log); still refused
//!   `[health] exit_after_refused` after the first refusal, the daemon stops, so
//!   systemd or Docker restarts it and the host's monitoring sees it. An acceptance in
//!   between starts the count again, and operators are told
//!   ([`Notice::CredentialAccepted`]).
//!
//! Being unreachable never counts here: a platform that is down is not a refused
//! credential. `/readyz` reports it (a [`Standing`] is also what it reads).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{broadcast, watch};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::internal_events::InternalEvent;
use crate::internal_events::credentials::{CredentialAccepted, CredentialRefused};
use crate::pipeline::Notice;

/// How one credential stands with its platform, as the adapters last heard.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Standing {
    /// When the platform last accepted the credential; `None` until it first did.
    pub accepted: Option<Instant>,
    /// Every answer since this one refused it; `None` once one accepts it.
    pub refused: Option<Refusal>,
    /// Why the latest request got no answer at all; `None` once one is answered.
    pub unreachable: Option<String>,
}

/// A refusal that has lasted since `since`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Refusal {
    /// The HTTP status of the latest refusal (401, or a feed's 403).
    pub status: u16,
    /// The first refusal of this run of refusals.
    pub since: Instant,
}

/// Whose credential it is and where it came from, for every line that names it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Credential {
    /// The platform in an operator's words: "Telegram", or the source's name.
    pub platform: String,
    /// The environment variable the credential was read from.
    pub var: String,
}

crate::metrics::counters! {
    /// What the watchdog has seen, for `/metrics` and tests.
    pub struct CredentialStats {
        /// Credentials that worked and then were refused (each run of refusals once).
        refused,
        /// Refused credentials accepted again within the window.
        recovered,
    }
}

/// One credential's reporter. Cheap to clone; every clone reports to the same
/// [`Standing`].
#[derive(Clone)]
pub struct CredentialCheck {
    /// Whose it is and its variable.
    credential: Arc<Credential>,
    /// What the adapters last heard; `/readyz` and the watchdog read it.
    standing: Arc<watch::Sender<Standing>>,
    /// Rung whenever any credential's standing changes in a way the watchdog acts on.
    tick: Arc<watch::Sender<u64>>,
}

impl std::fmt::Debug for CredentialCheck {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CredentialCheck").field("var", &self.credential.var).finish()
    }
}

impl CredentialCheck {
    /// A check of its own, not watched by any [`Watchdog`] (tests, tools).
    pub fn standalone(platform: &str, var: &str) -> CredentialCheck {
        Registry::default().check(platform, var)
    }

    pub fn credential(&self) -> &Credential {
        &self.credential
    }

    /// The platform answered a request that carried the credential, and did not
    /// refuse it.
    pub fn accepted(&self) {
        let now = Instant::now();
        let changed = self.standing.send_if_modified(|s| {
            let news = s.accepted.is_none() || s.refused.is_some() || s.unreachable.is_some();
            s.accepted = Some(now);
            s.refused = None;
            s.unreachable = None;
            news
        });
        self.ring(changed);
    }

    /// The platform refused the credential with this HTTP status.
    pub fn refused(&self, status: u16) {
        let now = Instant::now();
        let changed = self.standing.send_if_modified(|s| {
            s.unreachable = None;
            match &mut s.refused {
                Some(r) => {
                    r.status = status;
                    false
                }
                None => {
                    s.refused = Some(Refusal { status, since: now });
                    true
                }
            }
        });
        self.ring(changed);
    }

    /// The request got no answer from the platform (network, timeout, 5xx): nothing is
    /// known of the credential, only that the platform cannot be reached.
    pub fn unreachable(&self, why: impl Into<String>) {
        let why = why.into();
        let changed = self.standing.send_if_modified(|s| {
            let news = s.unreachable.is_none();
            s.unreachable = Some(why);
            news
        });
        self.ring(changed);
    }

    /// The standing as it changes.
    pub fn standing(&self) -> watch::Receiver<Standing> {
        self.standing.subscribe()
    }

    fn ring(&self, changed: bool) {
        if changed {
            self.tick.send_modify(|n| *n += 1);
        }
    }
}

/// Every credential of one daemon.
#[derive(Default)]
pub struct Registry {
    checks: Vec<CredentialCheck>,
    /// Shared by every check made here, so the watchdog waits on one thing.
    tick: Arc<watch::Sender<u64>>,
}

impl Registry {
    /// A check for the credential in `var`, watched by this registry's watchdog.
    pub fn check(&mut self, platform: &str, var: &str) -> CredentialCheck {
        let check = CredentialCheck {
            credential: Arc::new(Credential { platform: platform.to_owned(), var: var.to_owned() }),
            standing: Arc::new(watch::channel(Standing::default()).0),
            tick: self.tick.clone(),
        };
        self.checks.push(check.clone());
        check
    }

    pub fn is_empty(&self) -> bool {
        self.checks.is_empty()
    }

    /// Each credential's standing, by its variable.
    pub fn standings(&self) -> BTreeMap<String, watch::Receiver<Standing>> {
        self.checks.iter().map(|c| (c.credential.var.clone(), c.standing())).collect()
    }

    /// The task that acts on what the checks hear.
    pub fn watchdog(
        self,
        window: Duration,
        notices: broadcast::Sender<Notice>,
        stats: Arc<CredentialStats>,
    ) -> Watchdog {
        Watchdog { checks: self.checks, tick: self.tick, window, notices, stats }
    }
}

/// Why the watchdog stopped the daemon.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CredentialError {
    #[error("{platform} refused the token in {var} (HTTP {status}); set the right one and start sirena again")]
    RefusedAtStart { platform: String, var: String, status: u16 },
    #[error(
        "{platform} has refused the token in {var} (HTTP {status}) for {minutes} min ([health] exit_after_refused); \
         stopping so that the service manager restarts sirena"
    )]
    RefusedTooLong { platform: String, var: String, status: u16, minutes: u64 },
}

/// Stops the daemon on a credential refused at first contact or for too long, and
/// tells operators of refusals and recoveries in between.
pub struct Watchdog {
    checks: Vec<CredentialCheck>,
    tick: Arc<watch::Sender<u64>>,
    /// `[health] exit_after_refused`.
    window: Duration,
    notices: broadcast::Sender<Notice>,
    stats: Arc<CredentialStats>,
}

impl Watchdog {
    /// Runs until cancelled (`Ok`) or until a credential must stop the daemon (`Err`).
    pub async fn run(self, cancel: CancellationToken) -> Result<(), CredentialError> {
        let mut tick = self.tick.subscribe();
        // Checks whose refusal operators were told of, by index.
        let mut told = vec![false; self.checks.len()];
        loop {
            tick.borrow_and_update();
            let now = Instant::now();
            let mut wake: Option<Instant> = None;
            for (i, check) in self.checks.iter().enumerate() {
                let standing = check.standing.borrow().clone();
                let c = &check.credential;
                match standing.refused {
                    Some(r) if standing.accepted.is_none() => {
                        return Err(CredentialError::RefusedAtStart {
                            platform: c.platform.clone(),
                            var: c.var.clone(),
                            status: r.status,
                        });
                    }
                    Some(r) => {
                        let deadline = r.since + self.window;
                        if now >= deadline {
                            return Err(CredentialError::RefusedTooLong {
                                platform: c.platform.clone(),
                                var: c.var.clone(),
                                status: r.status,
                                minutes: self.window.as_secs().div_ceil(60),
                            });
                        }
                        if !told[i] {
                            told[i] = true;
                            let exit_in = deadline - now;
                            CredentialRefused { credential: c, status: r.status, exit_in }.emit(&self.stats);
                            let _ = self.notices.send(Notice::CredentialRefused {
                                platform: c.platform.clone(),
                                var: c.var.clone(),
                                status: r.status,
                                exit_in,
                            });
                        }
                        wake = Some(wake.map_or(deadline, |w| w.min(deadline)));
                    }
                    None if told[i] => {
                        told[i] = false;
                        CredentialAccepted { credential: c }.emit(&self.stats);
                        let _ = self
                            .notices
                            .send(Notice::CredentialAccepted { platform: c.platform.clone(), var: c.var.clone() });
                    }
                    None => {}
                }
            }
            let deadline = async {
                match wake {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                () = cancel.cancelled() => return Ok(()),
                changed = tick.changed() => if changed.is_err() { return Ok(()) },
                () = deadline => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const WINDOW: Duration = Duration::from_secs(15 * 60);

    struct World {
        telegram: CredentialCheck,
        feed: CredentialCheck,
        notices: broadcast::Receiver<Notice>,
        stats: Arc<CredentialStats>,
        task: tokio::task::JoinHandle<Result<(), CredentialError>>,
        cancel: CancellationToken,
    }

    fn start() -> World {
        let mut registry = Registry::default();
        let telegram = registry.check("Telegram", "TELEGRAM_BOT_TOKEN");
        let feed = registry.check("alerts_in_ua", "ALERTS_IN_UA_TOKEN");
        let (tx, notices) = broadcast::channel(16);
        let stats = Arc::new(CredentialStats::default());
        let cancel = CancellationToken::new();
        let task = tokio::spawn(registry.watchdog(WINDOW, tx, stats.clone()).run(cancel.clone()));
        World { telegram, feed, notices, stats, task, cancel }
    }

    /// Lets the watchdog act on what was reported.
    async fn settle() {
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_credential_refused_before_it_ever_worked_stops_at_once() {
        let w = start();
        w.telegram.unreachable("connection refused");
        w.feed.accepted();
        settle().await;
        assert!(!w.task.is_finished(), "unreachable is not refused");
        w.telegram.refused(401);
        let got = w.task.await.expect("joins");
        assert_eq!(
            got,
            Err(CredentialError::RefusedAtStart {
                platform: "Telegram".into(),
                var: "TELEGRAM_BOT_TOKEN".into(),
                status: 401
            })
        );
        assert_eq!(
            got.expect_err("refused").to_string(),
            "Telegram refused the token in TELEGRAM_BOT_TOKEN (HTTP 401); set the right one and start sirena again"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_revoked_credential_is_told_at_once_and_stops_the_daemon_after_the_window() {
        let mut w = start();
        w.telegram.accepted();
        w.feed.accepted();
        settle().await;
        let revoked = Instant::now();
        w.feed.refused(403);
        settle().await;
        match w.notices.try_recv() {
            Ok(Notice::CredentialRefused { var, status, exit_in, .. }) => {
                assert_eq!((var.as_str(), status, exit_in), ("ALERTS_IN_UA_TOKEN", 403, WINDOW));
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(CredentialStats::get(&w.stats.refused), 1);
        // Refusals go on; nothing more is said, and the daemon runs until the window ends.
        tokio::time::sleep(WINDOW - Duration::from_secs(1)).await;
        w.feed.refused(401);
        w.feed.unreachable("timed out");
        settle().await;
        assert!(!w.task.is_finished());
        assert!(w.notices.try_recv().is_err(), "told once");
        let got = w.task.await.expect("joins");
        assert_eq!(revoked.elapsed(), WINDOW, "stopped exactly at the window");
        let e = got.expect_err("refused too long");
        assert_eq!(
            e,
            CredentialError::RefusedTooLong {
                platform: "alerts_in_ua".into(),
                var: "ALERTS_IN_UA_TOKEN".into(),
                status: 401,
                minutes: 15
            }
        );
        assert!(e.to_string().contains("ALERTS_IN_UA_TOKEN (HTTP 401) for 15 min"), "{e}");
    }

    #[tokio::test(start_paused = true)]
    async fn an_acceptance_within_the_window_starts_the_count_again() {
        let mut w = start();
        w.telegram.accepted();
        w.feed.accepted();
        w.telegram.refused(401);
        settle().await;
        assert!(matches!(w.notices.try_recv(), Ok(Notice::CredentialRefused { .. })));
        tokio::time::sleep(WINDOW - Duration::from_secs(60)).await;
        w.telegram.accepted();
        settle().await;
        assert!(
            matches!(w.notices.try_recv(), Ok(Notice::CredentialAccepted { ref var, .. }) if var == "TELEGRAM_BOT_TOKEN")
        );
        assert_eq!(CredentialStats::get(&w.stats.recovered), 1);
        let again = Instant::now();
        w.telegram.refused(401);
        settle().await;
        assert!(matches!(w.notices.try_recv(), Ok(Notice::CredentialRefused { .. })), "a new run of refusals is told");
        tokio::time::sleep(WINDOW - Duration::from_secs(1)).await;
        settle().await;
        assert!(!w.task.is_finished(), "the window counts from the second refusal");
        let got = w.task.await.expect("joins");
        assert!(matches!(got, Err(CredentialError::RefusedTooLong { .. })), "{got:?}");
        assert_eq!(again.elapsed(), WINDOW);
    }

    #[tokio::test(start_paused = true)]
    async fn cancel_ends_the_watchdog_quietly() {
        let w = start();
        w.telegram.accepted();
        w.cancel.cancel();
        assert_eq!(w.task.await.expect("joins"), Ok(()));
    }
}
