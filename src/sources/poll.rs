//! The one poll loop, for every source.
//!
//! A [`Feed`] knows how to ask its feed (one or more GETs through [`HttpGet`]) and how
//! to read the answer; the [`Poller`] decides when to ask:
//! - every `poll` while the feed answers, measured from the start of each poll;
//! - after failures, exponentially later (`poll`, 2·`poll`, 4·`poll` … up to
//!   `max_backoff`, each shortened by up to a quarter at random so sources that failed
//!   together do not retry together, never below `poll`); one success resets it;
//! - after a 429, not before its `Retry-After` (or `rate_limited` when it gave none),
//!   whatever the backoff says;
//! - the request budget (`max_requests_per_min`) is kept by [`HttpGet`] itself, since
//!   one poll may take several requests.
//!
//! What it reports: every answer becomes a [`SourceReport`]: `Observed` for a
//! snapshot, and for "unchanged" the last good snapshot again, confirmed now;
//! `Failed` for an error. "Unchanged" with no good snapshot in hand, or after an
//! empty one, reports nothing and forgets the validators: an empty list is believed
//! only when it repeats in full bodies (`alerts::state` counts the repeats), so a 304
//! must not count as one. Feed locations no region carries are logged once per id and
//! counted in [`SourceHealth`].

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tokio::sync::{Notify, mpsc, watch};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::{Decoded, Dropped, HttpGet, SourceError, SourceReport, Unmapped};
use crate::alerts::state::{Observation, ObservedAlert};
use crate::credentials::CredentialCheck;
use crate::internal_events::InternalEvent;
use crate::internal_events::sources::EnrichmentDropped;
use crate::regions::RegionTree;

/// One feed's adapter: how to ask and how to read the answer.
#[async_trait]
pub trait Feed: Send {
    /// The source's configured name, used in reports and logs.
    fn name(&self) -> &str;

    /// Asks the feed once. A body that decoded is [`HttpGet::keep`]t before this
    /// returns, so the next request is conditional; a body that did not decode is not.
    /// After a snapshot with no alerts, the next poll must fetch a full snapshot
    /// rather than answer [`Polled::Unchanged`] from a cheaper check.
    async fn poll(&mut self, http: &mut HttpGet, tree: &RegionTree) -> Result<Polled, SourceError>;

    /// True for a feed whose alerts end by explicit messages (CAP Cancel, expiry)
    /// rather than by dropping out of a list: its snapshot may legitimately empty.
    fn ends_explicitly(&self) -> bool {
        false
    }
}

/// A good answer.
#[derive(Debug, PartialEq)]
pub enum Polled {
    /// Nothing changed since the last snapshot this feed returned.
    Unchanged,
    Snapshot(Decoded),
}

/// When to poll.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Schedule {
    pub poll: Duration,
    /// The longest wait between failed polls (never shorter than `poll`).
    pub max_backoff: Duration,
    /// The wait after a 429 that did not say how long.
    pub rate_limited: Duration,
}

impl Default for Schedule {
    fn default() -> Self {
        Schedule {
            poll: Duration::from_secs(10),
            max_backoff: Duration::from_secs(120),
            rate_limited: Duration::from_secs(60),
        }
    }
}

impl Schedule {
    /// The wait before the next poll after `failures` failures in a row (≥ 1), with
    /// `jitter` in [0, 1).
    pub fn backoff(&self, failures: u32, jitter: f64) -> Duration {
        let cap = self.max_backoff.max(self.poll);
        let doubled = self.poll.saturating_mul(1u32 << failures.saturating_sub(1).min(20));
        doubled.min(cap).mul_f64(1.0 - 0.25 * jitter.clamp(0.0, 1.0)).max(self.poll)
    }
}

/// How a source is doing, for operators and the pipeline to read.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SourceHealth {
    /// When a snapshot last reached the pipeline (a fresh one or a confirmed one).
    pub last_success: Option<DateTime<Utc>>,
    pub consecutive_failures: u32,
    /// The latest failure; kept after a recovery.
    pub last_error: Option<String>,
    /// Distinct feed location ids seen that no region carries.
    pub unmapped: usize,
    /// Optional parts dropped from decoded answers since start, by field: enrichment
    /// that did not read, each alert kept without it.
    pub dropped: BTreeMap<&'static str, u64>,
}

/// Polls one feed until cancelled.
pub struct Poller {
    feed: Box<dyn Feed>,
    http: HttpGet,
    schedule: Schedule,
    tree: watch::Receiver<Arc<RegionTree>>,
    reports: mpsc::Sender<SourceReport>,
    health: watch::Sender<SourceHealth>,
    /// xorshift state for the backoff's jitter.
    seed: u64,
    /// The alerts of the last snapshot, re-sent when the feed says nothing changed.
    last_good: Option<Vec<ObservedAlert>>,
    /// Unmapped ids already logged.
    told_unmapped: HashSet<String>,
    /// Dropped (field, shape) pairs already logged: each is told once, counted always.
    told_dropped: HashSet<Dropped>,
    /// Rung by a webhook push: poll now rather than at the next interval.
    nudge: Arc<Notify>,
    /// Told whether each answer accepted the source's token, for a source that has
    /// one: a refused token stops the daemon (`crate::credentials`).
    credential: Option<CredentialCheck>,
}

impl Poller {
    pub fn new(
        feed: Box<dyn Feed>,
        http: HttpGet,
        schedule: Schedule,
        tree: watch::Receiver<Arc<RegionTree>>,
        reports: mpsc::Sender<SourceReport>,
    ) -> (Poller, watch::Receiver<SourceHealth>) {
        let (health, health_rx) = watch::channel(SourceHealth::default());
        let seed = Utc::now().timestamp_nanos_opt().unwrap_or(1) as u64 | 1;
        let poller = Poller {
            feed,
            http,
            schedule,
            tree,
            reports,
            health,
            seed,
            last_good: None,
            told_unmapped: HashSet::new(),
            told_dropped: HashSet::new(),
            nudge: Arc::new(Notify::new()),
            credential: None,
        };
        (poller, health_rx)
    }

    /// What a webhook rings to make this source poll now. A nudge never cuts short a
    /// rate limit's wait: the feed asked for that.
    pub fn nudger(&self) -> Arc<Notify> {
        self.nudge.clone()
    }

    /// Reports what each poll says of the source's token to `check`.
    pub fn with_credential(mut self, check: CredentialCheck) -> Poller {
        self.credential = Some(check);
        self
    }

    /// Fixes the jitter's sequence, for tests.
    pub fn with_seed(mut self, seed: u64) -> Poller {
        self.seed = seed | 1;
        self
    }

    pub async fn run(mut self, cancel: CancellationToken) {
        let mut next = Instant::now();
        // No request before this, nudged or not: a 429's Retry-After.
        let mut held_until = Instant::now();
        let mut failures = 0u32;
        let nudge = self.nudge.clone();
        loop {
            tokio::select! {
                () = cancel.cancelled() => return,
                () = tokio::time::sleep_until(next) => {}
                () = nudge.notified() => {
                    if Instant::now() < held_until {
                        continue;
                    }
                }
            }
            let started = Instant::now();
            let tree = self.tree.borrow().clone();
            let polled = tokio::select! {
                () = cancel.cancelled() => return,
                p = self.feed.poll(&mut self.http, &tree) => p,
            };
            if let Some(check) = &self.credential {
                tell_credential(check, &polled);
            }
            let report = match polled {
                Ok(polled) => {
                    failures = 0;
                    next = started + self.schedule.poll;
                    self.on_answer(polled)
                }
                Err(error) => {
                    failures = failures.saturating_add(1);
                    let jitter = self.jitter();
                    next = started + self.schedule.backoff(failures, jitter);
                    if let SourceError::RateLimited { retry_after } = &error {
                        held_until = Instant::now() + retry_after.unwrap_or(self.schedule.rate_limited);
                        next = next.max(held_until);
                    }
                    if matches!(error, SourceError::Decode(_)) {
                        // What came was not what the validators describe; start over.
                        self.http.forget_all();
                    }
                    self.health.send_modify(|h| {
                        h.consecutive_failures = failures;
                        h.last_error = Some(error.to_string());
                    });
                    Some(SourceReport::Failed { source: self.feed.name().to_owned(), error })
                }
            };
            let Some(report) = report else { continue };
            tokio::select! {
                () = cancel.cancelled() => return,
                sent = self.reports.send(report) => if sent.is_err() { return },
            }
        }
    }

    fn on_answer(&mut self, polled: Polled) -> Option<SourceReport> {
        let alerts = match polled {
            Polled::Unchanged => match &self.last_good {
                Some(alerts) if !alerts.is_empty() => alerts.clone(),
                _ => {
                    self.http.forget_all();
                    self.health.send_modify(|h| h.consecutive_failures = 0);
                    return None;
                }
            },
            Polled::Snapshot(decoded) => {
                self.tell_unmapped(&decoded.unmapped);
                for dropped in &decoded.dropped {
                    let first = self.told_dropped.insert(dropped.clone());
                    EnrichmentDropped { source: self.feed.name(), dropped, first }.emit(&self.health);
                }
                if decoded.alerts.is_empty() {
                    self.http.forget_all();
                }
                self.last_good = Some(decoded.alerts.clone());
                decoded.alerts
            }
        };
        let at = Utc::now();
        self.health.send_modify(|h| {
            h.consecutive_failures = 0;
            h.last_success = Some(at);
        });
        Some(SourceReport::Observed(Observation {
            source: self.feed.name().to_owned(),
            at,
            alerts,
            explicit_ends: self.feed.ends_explicitly(),
        }))
    }

    fn tell_unmapped(&mut self, unmapped: &[Unmapped]) {
        let mut new = 0;
        for u in unmapped {
            if self.told_unmapped.insert(u.id.clone()) {
                new += 1;
                tracing::warn!(source = %self.feed.name(), id = %u.id, title = %u.title, "the feed reports a location no region carries; give a region this feed_id to hear its alerts");
            }
        }
        if new > 0 {
            self.health.send_modify(|h| h.unmapped += new);
        }
    }

    fn jitter(&mut self) -> f64 {
        // xorshift64: enough to spread retries, no dependency.
        let mut x = self.seed;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.seed = x;
        (x % 10_000) as f64 / 10_000.0
    }
}

/// What one poll says of the token: an answer accepted it, a 401/403 to it refused it
/// (ukrainealarm's throttling already reads as a 429), no answer says nothing of it.
fn tell_credential(check: &CredentialCheck, polled: &Result<Polled, SourceError>) {
    match polled {
        Ok(_) | Err(SourceError::Decode(_) | SourceError::TooLarge { .. } | SourceError::RateLimited { .. }) => {
            check.accepted();
        }
        Err(SourceError::Unauthorized { status, .. }) => check.refused(*status),
        Err(SourceError::Status { status, .. }) if *status < 500 => check.accepted(),
        Err(e @ (SourceError::Status { .. } | SourceError::Transport(_) | SourceError::Timeout(_))) => {
            check.unreachable(e.to_string());
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;
    use std::sync::Mutex;

    use super::*;
    use crate::alerts::{AlertKey, AlertKind};
    use crate::regions::RegionId;
    use crate::sources::HttpOptions;

    const KHARKIV: &str = "UA63000000000041885";

    fn tree() -> RegionTree {
        crate::regions::tests_support::kharkiv_oblast()
    }

    fn air_raid() -> ObservedAlert {
        ObservedAlert {
            key: AlertKey { kind: AlertKind::AirRaid, region: RegionId::parse(KHARKIV).expect("id") },
            started_at: DateTime::parse_from_rfc3339("2023-11-06T08:00:00Z").expect("date").to_utc(),
            raw_kind: None,
            level: None,
            threats: Vec::new(),
            texts: Vec::new(),
        }
    }

    fn snapshot(alerts: Vec<ObservedAlert>, unmapped: &[&str]) -> Result<Polled, SourceError> {
        let unmapped =
            unmapped.iter().map(|id| Unmapped { id: (*id).to_owned(), title: format!("place {id}") }).collect();
        Ok(Polled::Snapshot(Decoded { alerts, unmapped, dropped: Vec::new() }))
    }

    fn status(code: u16) -> Result<Polled, SourceError> {
        Err(SourceError::Status { status: code, message: "boom".into() })
    }

    /// Answers from a script and notes when it was asked; when the script is done it
    /// says so and never answers again.
    struct FakeFeed {
        script: VecDeque<Result<Polled, SourceError>>,
        asked: Arc<Mutex<Vec<Instant>>>,
        done: Option<tokio::sync::oneshot::Sender<()>>,
    }

    #[async_trait]
    impl Feed for FakeFeed {
        fn name(&self) -> &str {
            "fake"
        }

        async fn poll(&mut self, _: &mut HttpGet, _: &RegionTree) -> Result<Polled, SourceError> {
            self.asked.lock().expect("lock").push(Instant::now());
            match self.script.pop_front() {
                Some(answer) => answer,
                None => {
                    if let Some(done) = self.done.take() {
                        let _ = done.send(());
                    }
                    std::future::pending().await
                }
            }
        }
    }

    struct Run {
        /// The gaps between consecutive polls, the script's answers only.
        gaps: Vec<Duration>,
        reports: Vec<SourceReport>,
        health: SourceHealth,
    }

    async fn run(script: Vec<Result<Polled, SourceError>>, schedule: Schedule, seed: u64) -> Run {
        let answers = script.len();
        let asked = Arc::new(Mutex::new(Vec::new()));
        let (done_tx, done_rx) = tokio::sync::oneshot::channel();
        let feed = FakeFeed { script: script.into(), asked: asked.clone(), done: Some(done_tx) };
        let options = HttpOptions { timeout: Duration::from_secs(1), max_body: 1024, max_requests_per_min: 60 };
        let http = HttpGet::new(&options, None).expect("client");
        let (_tree_tx, tree_rx) = watch::channel(Arc::new(tree()));
        let (tx, mut rx) = mpsc::channel(256);
        let (poller, health) = Poller::new(Box::new(feed), http, schedule, tree_rx, tx);
        let cancel = CancellationToken::new();
        let task = tokio::spawn(poller.with_seed(seed).run(cancel.clone()));
        done_rx.await.expect("the script runs to its end");
        cancel.cancel();
        task.await.expect("poller ends");
        let mut reports = Vec::new();
        while let Ok(r) = rx.try_recv() {
            reports.push(r);
        }
        let asked = asked.lock().expect("lock").clone();
        assert_eq!(asked.len(), answers + 1, "one more poll is asked than the script answers");
        let gaps = asked.windows(2).map(|w| w[1] - w[0]).collect();
        let health = health.borrow().clone();
        Run { gaps, reports, health }
    }

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    fn schedule() -> Schedule {
        Schedule { poll: secs(10), max_backoff: secs(120), rate_limited: secs(60) }
    }

    fn observed(r: &SourceReport) -> &[ObservedAlert] {
        match r {
            SourceReport::Observed(o) => {
                assert_eq!(o.source, "fake");
                &o.alerts
            }
            SourceReport::Failed { error, .. } => panic!("failed: {error}"),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn polls_every_interval_while_the_feed_answers() {
        let r = run(
            vec![snapshot(vec![air_raid()], &[]), snapshot(vec![air_raid()], &[]), Ok(Polled::Unchanged)],
            schedule(),
            1,
        )
        .await;
        assert_eq!(r.gaps, [secs(10); 3]);
        assert_eq!(r.reports.len(), 3);
        assert!(r.health.last_success.is_some());
        assert_eq!(r.health.consecutive_failures, 0);
    }

    #[tokio::test(start_paused = true)]
    async fn backoff_grows_with_jitter_up_to_its_cap_and_resets_on_success() {
        let mut script: Vec<_> = (0..7).map(|_| status(500)).collect();
        script.push(snapshot(vec![air_raid()], &[]));
        script.push(snapshot(vec![air_raid()], &[]));
        let a = run(script, schedule(), 7).await;
        // After failure n the wait is 10 s · 2^(n-1), capped at 120 s, less up to a quarter.
        let full = [10, 20, 40, 80, 120, 120, 120];
        for (i, (gap, full)) in a.gaps.iter().zip(full).enumerate() {
            let (lo, hi) = (secs(full).mul_f64(0.75).max(secs(10)), secs(full));
            assert!(*gap >= lo && *gap <= hi, "wait {i} after failure {}: {gap:?} not in [{lo:?}, {hi:?}]", i + 1);
        }
        assert!(a.gaps[3] > a.gaps[1] && a.gaps[1] >= a.gaps[0], "{:?}", a.gaps);
        assert_eq!(a.gaps[7], secs(10), "a success resets the backoff: {:?}", a.gaps);
        assert_eq!(a.gaps[8], secs(10));
        let failed = a.reports.iter().filter(|r| matches!(r, SourceReport::Failed { .. })).count();
        assert_eq!((failed, a.reports.len()), (7, 9), "each failure is reported");
        assert_eq!(a.health.consecutive_failures, 0);
        assert_eq!(a.health.last_error.as_deref(), Some("HTTP 500: boom"));

        let mut script: Vec<_> = (0..7).map(|_| status(500)).collect();
        script.push(snapshot(vec![], &[]));
        let b = run(script, schedule(), 12_345).await;
        assert_ne!(a.gaps[1..7], b.gaps[1..7], "another seed waits differently: jitter");
    }

    #[tokio::test(start_paused = true)]
    async fn health_counts_failures_in_a_row() {
        let r = run(vec![snapshot(vec![air_raid()], &[]), status(502), status(503)], schedule(), 1).await;
        assert_eq!(r.health.consecutive_failures, 2);
        assert_eq!(r.health.last_error.as_deref(), Some("HTTP 503: boom"));
        assert!(r.health.last_success.is_some());
    }

    /// Regression: a 429 with `Retry-After: 90` was followed by a poll 60 s later.
    #[tokio::test(start_paused = true)]
    async fn a_429_holds_every_poll_until_its_retry_after() {
        let limited = |s| Err(SourceError::RateLimited { retry_after: s });
        let r = run(
            vec![snapshot(vec![air_raid()], &[]), limited(Some(secs(90))), limited(None), Ok(Polled::Unchanged)],
            schedule(),
            1,
        )
        .await;
        assert_eq!(r.gaps[0], secs(10));
        assert!(r.gaps[1] >= secs(90), "polled {:?} after Retry-After: 90", r.gaps[1]);
        assert!(r.gaps[2] >= secs(60), "a 429 without Retry-After waits the default: {:?}", r.gaps[2]);
        assert_eq!(r.gaps[3], secs(10), "then the interval again");

        // A Retry-After shorter than the backoff does not shorten it.
        let mut script: Vec<_> = (0..4).map(|_| status(500)).collect();
        script.push(limited(Some(secs(1))));
        let r = run(script, schedule(), 1).await;
        assert!(r.gaps[4] >= secs(90), "{:?}", r.gaps);
    }

    #[tokio::test(start_paused = true)]
    async fn unchanged_resends_the_last_good_snapshot() {
        let r = run(
            vec![
                Ok(Polled::Unchanged),
                snapshot(vec![air_raid()], &[]),
                Ok(Polled::Unchanged),
                status(500),
                Ok(Polled::Unchanged),
            ],
            schedule(),
            1,
        )
        .await;
        // Nothing for the first "unchanged": there is no snapshot to confirm yet.
        assert_eq!(r.reports.len(), 4, "{:?}", r.reports);
        assert_eq!(observed(&r.reports[0]), [air_raid()]);
        assert_eq!(observed(&r.reports[1]), [air_raid()]);
        assert!(matches!(r.reports[2], SourceReport::Failed { .. }));
        assert_eq!(observed(&r.reports[3]), [air_raid()], "a failure in between does not lose it");
    }

    #[tokio::test(start_paused = true)]
    async fn unchanged_after_an_empty_snapshot_is_no_confirmation() {
        let r = run(
            vec![snapshot(vec![air_raid()], &[]), snapshot(vec![], &[]), Ok(Polled::Unchanged), snapshot(vec![], &[])],
            schedule(),
            1,
        )
        .await;
        let counts: Vec<usize> = r.reports.iter().map(|r| observed(r).len()).collect();
        assert_eq!(counts, [1, 0, 0], "only full bodies count as empty answers");
    }

    #[tokio::test(start_paused = true)]
    async fn each_unmapped_id_is_told_once() {
        let r = run(
            vec![
                snapshot(vec![air_raid()], &["9999", "8888"]),
                snapshot(vec![air_raid()], &["9999", "8888"]),
                snapshot(vec![air_raid()], &["9999", "7777"]),
            ],
            schedule(),
            1,
        )
        .await;
        assert_eq!(r.health.unmapped, 3);
        assert_eq!(r.reports.len(), 3);
    }

    #[tokio::test(start_paused = true)]
    async fn dropped_enrichment_is_counted_by_field_and_the_alerts_still_go_out() {
        let with_drops = |drops: &[(&'static str, &str)]| {
            Ok(Polled::Snapshot(Decoded {
                alerts: vec![air_raid()],
                dropped: drops.iter().map(|(f, s)| Dropped::new(f, *s)).collect(),
                ..Decoded::default()
            }))
        };
        let r = run(
            vec![
                with_drops(&[("threats", "a number"), ("alert_level", "a list")]),
                with_drops(&[("threats", "a number")]),
                with_drops(&[]),
            ],
            schedule(),
            1,
        )
        .await;
        assert_eq!(r.health.dropped, BTreeMap::from([("alert_level", 1), ("threats", 2)]));
        let observed = r.reports.iter().filter(|x| matches!(x, SourceReport::Observed(o) if o.alerts.len() == 1));
        assert_eq!(observed.count(), 3, "every answer with a drop is still a good answer");
        assert_eq!(r.health.consecutive_failures, 0);
    }

    #[tokio::test(start_paused = true)]
    async fn each_poll_tells_what_it_says_of_the_token() {
        let check = crate::credentials::CredentialCheck::standalone("alerts_in_ua", "ALERTS_IN_UA_TOKEN");
        let standing = check.standing();
        tell_credential(&check, &Err(SourceError::Transport("connection refused".into())));
        let s = standing.borrow().clone();
        assert_eq!(
            (s.accepted, s.refused, s.unreachable.as_deref()),
            (None, None, Some("request failed: connection refused"))
        );
        tell_credential(&check, &snapshot(vec![air_raid()], &[]));
        assert!(standing.borrow().accepted.is_some() && standing.borrow().unreachable.is_none());
        tell_credential(&check, &Err(SourceError::Unauthorized { status: 403, message: "Forbidden".into() }));
        let since = standing.borrow().refused.expect("refused").since;
        tokio::time::sleep(secs(30)).await;
        tell_credential(&check, &status(503));
        tell_credential(&check, &Err(SourceError::Unauthorized { status: 401, message: "Unauthorized".into() }));
        let r = standing.borrow().refused.expect("still refused");
        assert_eq!((r.status, r.since), (401, since), "a 5xx in between neither ends nor restarts the refusal");
        tell_credential(&check, &Err(SourceError::RateLimited { retry_after: None }));
        assert_eq!(standing.borrow().refused, None, "a 429 is an answer to an accepted token");
    }

    #[test]
    fn backoff_never_waits_less_than_the_interval() {
        let s = Schedule { poll: secs(300), ..schedule() };
        assert_eq!(s.backoff(1, 0.99), secs(300));
        assert_eq!(s.backoff(9, 0.99), secs(300), "a cap below the interval is the interval");
        assert_eq!(schedule().backoff(40, 0.0), secs(120), "no overflow after many failures");
    }
}
