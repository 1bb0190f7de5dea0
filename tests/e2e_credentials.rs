//! A token revoked while the daemon runs — the Telegram simulator's `revoke_token`, the
//! feed simulator's `revoke` — is told to the operators at once and, still refused
//! after `[health] exit_after_refused`, stops the daemon with the variable named, for
//! its supervisor to restart it. A token accepted again in between starts the count
//! over. The simulators answer over loopback in real time until the refusal is seen;
//! then the clock is paused and the window passes in simulated time.

use std::time::Duration;

use sirena::daemon::Failure;
use sirena::demo::{ALERTS_TOKEN_ENV, Harness, Options, TELEGRAM_TOKEN_ENV};
use sirena::pipeline::Notice;
use sirena::sim::feed::FeedKind;
use tokio::sync::broadcast;
use tokio::time::Instant;

const WAIT: Duration = Duration::from_secs(20);
const OPERATOR: i64 = 9001;
const WINDOW: Duration = Duration::from_secs(15 * 60);

async fn start() -> Harness {
    let opts = Options {
        sources: vec![FeedKind::AlertsInUa],
        operators: vec![OPERATOR],
        settings_extra: "\n[health]\nexit_after_refused = \"15m\"\n".into(),
        ..Options::default()
    };
    let h = Harness::start(opts).await.expect("harness");
    h.telegram.add_user(OPERATOR, "Operator", Some("uk"));
    for var in [TELEGRAM_TOKEN_ENV, ALERTS_TOKEN_ENV] {
        let mut standing = h.daemon.credentials.get(var).expect("a watched credential").clone();
        tokio::time::timeout(WAIT, standing.wait_for(|s| s.accepted.is_some()))
            .await
            .unwrap_or_else(|_| panic!("{var} never accepted"))
            .expect("daemon alive");
    }
    h
}

/// The next credential notice (other notices skipped), within `wait`.
async fn next_credential_notice_within(rx: &mut broadcast::Receiver<Notice>, wait: Duration) -> Notice {
    loop {
        let notice = tokio::time::timeout(wait, rx.recv()).await.expect("a notice in time").expect("notices");
        if matches!(notice, Notice::CredentialRefused { .. } | Notice::CredentialAccepted { .. }) {
            return notice;
        }
    }
}

async fn next_credential_notice(rx: &mut broadcast::Receiver<Notice>) -> Notice {
    next_credential_notice_within(rx, WAIT).await
}

/// Waits in paused time; `Some` if the daemon failed meanwhile.
async fn failure_within(h: &Harness, d: Duration) -> Option<Failure> {
    tokio::select! {
        f = h.daemon.failed() => Some(f),
        () = tokio::time::sleep(d) => None,
    }
}

#[tokio::test]
async fn a_telegram_token_revoked_mid_run_is_told_then_stops_the_daemon_after_the_window() {
    let h = start().await;
    let mut notices = h.daemon.notices.subscribe();
    h.telegram.revoke_token();
    let notice = next_credential_notice(&mut notices).await;
    let told = Instant::now();
    match &notice {
        Notice::CredentialRefused { platform, var, status, exit_in } => {
            assert_eq!((platform.as_str(), var.as_str(), *status), ("Telegram", TELEGRAM_TOKEN_ENV, 401));
            assert!(*exit_in <= WINDOW && *exit_in > WINDOW - Duration::from_secs(20), "{exit_in:?}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(h.daemon.credential_stats.refused.load(std::sync::atomic::Ordering::Relaxed), 1);
    let standing = h.daemon.credentials[TELEGRAM_TOKEN_ENV].borrow().clone();
    assert_eq!(standing.refused.map(|r| r.status), Some(401));

    tokio::time::pause();
    assert_eq!(failure_within(&h, WINDOW - Duration::from_secs(30)).await, None, "up until the window ends");
    let f = tokio::time::timeout(Duration::from_secs(120), h.daemon.failed()).await.expect("stopped after the window");
    let waited = told.elapsed();
    assert!(waited >= WINDOW - Duration::from_secs(20) && waited <= WINDOW + Duration::from_secs(5), "{waited:?}");
    assert_eq!(f.task, "credential check");
    assert!(
        f.reason.starts_with(&format!("Telegram has refused the token in {TELEGRAM_TOKEN_ENV} (HTTP 401) for 15 min")),
        "{}",
        f.reason
    );
    h.shutdown().await;
}

#[tokio::test]
async fn a_feed_token_revoked_mid_run_reaches_the_operators_and_an_acceptance_starts_over() {
    let h = start().await;
    let mut notices = h.daemon.notices.subscribe();
    h.feed.revoke(FeedKind::AlertsInUa);
    match next_credential_notice(&mut notices).await {
        Notice::CredentialRefused { platform, var, status, .. } => {
            assert_eq!((platform.as_str(), var.as_str(), status), ("alerts_in_ua", ALERTS_TOKEN_ENV, 401));
        }
        other => panic!("{other:?}"),
    }
    // The operators' chat hears it (Telegram still accepts the bot's token).
    let told = h.telegram.wait_for_sent(OPERATOR, 1, WAIT).await;
    assert!(
        told.iter()
            .any(|m| m.text.contains(ALERTS_TOKEN_ENV) && m.text.contains("HTTP 401") && m.text.contains("15 хв")),
        "{told:?}"
    );

    // Accepted again before the window ends: operators are told, and the count is over.
    h.feed.restore(FeedKind::AlertsInUa);
    match next_credential_notice(&mut notices).await {
        Notice::CredentialAccepted { var, .. } => assert_eq!(var, ALERTS_TOKEN_ENV),
        other => panic!("{other:?}"),
    }
    assert_eq!(h.daemon.credential_stats.recovered.load(std::sync::atomic::Ordering::Relaxed), 1);
    tokio::time::pause();
    assert_eq!(failure_within(&h, WINDOW + Duration::from_secs(60)).await, None, "a success reset the window");

    // Revoked again (still in paused time, where the poller may be backing off after
    // requests the jumping clock timed out): a new window, at whose end the daemon
    // stops naming the feed's variable.
    h.feed.revoke(FeedKind::AlertsInUa);
    let notice = next_credential_notice_within(&mut notices, Duration::from_secs(300)).await;
    assert!(matches!(notice, Notice::CredentialRefused { .. }), "{notice:?}");
    let told = Instant::now();
    let f = tokio::time::timeout(WINDOW + Duration::from_secs(120), h.daemon.failed()).await.expect("stopped");
    assert!(told.elapsed() >= WINDOW - Duration::from_secs(120), "{:?}", told.elapsed());
    assert!(
        f.reason.contains(&format!("alerts_in_ua has refused the token in {ALERTS_TOKEN_ENV} (HTTP 401)")),
        "{}",
        f.reason
    );
    h.shutdown().await;
}
