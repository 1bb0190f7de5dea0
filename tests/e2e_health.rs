//! Feeds that fail and then answer with empty lists, for ten minutes of simulated time
//! (the observations carry their own clock, as the pollers stamp them): nobody is told
//! "all clear", operators are told the feeds are stale and their lists held, and a
//! resident's `/status` says the status is unknown instead of "no alerts".

use std::time::Duration;

use chrono::{DateTime, Utc};
use sirena::alerts::state::{Observation, ObservedAlert};
use sirena::alerts::{AlertKey, AlertKind, Transition};
use sirena::demo::{Harness, Options};
use sirena::messages::Lang;
use sirena::pipeline::Notice;
use sirena::regions::RegionId;
use sirena::sim::feed::{Fault, FeedKind};
use sirena::sources::{SourceError, SourceReport};

const WAIT: Duration = Duration::from_secs(20);
const CHAT: i64 = 2201;
const OPERATOR: i64 = 9001;
const KUPIANSK: &str = "UA63080090010026457";
const KUPIANSK_RAION: &str = "UA63080000000032022";
const SOURCES: [&str; 2] = ["alerts_in_ua", "ukrainealarm"];

fn raion_air_raid(started_at: DateTime<Utc>) -> ObservedAlert {
    ObservedAlert {
        key: AlertKey { kind: AlertKind::AirRaid, region: RegionId::parse(KUPIANSK_RAION).expect("id") },
        started_at,
        raw_kind: None,
        level: None,
        threats: Vec::new(),
        texts: Vec::new(),
    }
}

fn observed(source: &str, at: DateTime<Utc>, alerts: Vec<ObservedAlert>) -> SourceReport {
    SourceReport::Observed(Observation { source: source.into(), at, alerts, explicit_ends: false })
}

fn failed(source: &str) -> SourceReport {
    SourceReport::Failed { source: source.into(), error: SourceError::Status { status: 500, message: "down".into() } }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_feeds_then_empty_lists_for_ten_minutes_send_no_all_clear() {
    // Both sources are configured, fail their first poll and are not polled again in
    // this test: the timeline below is the only word the pipeline gets.
    let opts = Options {
        sources: vec![FeedKind::AlertsInUa, FeedKind::UkraineAlarm],
        poll: Duration::from_secs(600),
        feed_faults: vec![
            (FeedKind::AlertsInUa, Fault::Status(500), 1),
            (FeedKind::UkraineAlarm, Fault::Status(500), 1),
        ],
        operators: vec![OPERATOR],
        ..Options::default()
    };
    let mut h = Harness::start(opts).await.expect("harness");
    h.telegram.add_user(OPERATOR, "Operator", Some("uk"));
    let mut notices = h.daemon.notices.subscribe();
    h.add_resident(CHAT, KUPIANSK, Lang::Uk).await.expect("resident");
    let reports = h.daemon.reports_in.clone();
    let mut seen = h.daemon.reports_seen.clone();
    let first_polls = 2;
    seen.wait_for(|n| *n >= first_polls).await.expect("the first polls failed");

    // Ten minutes ago both feeds reported an air raid over Kupiansk raion.
    let t0 = Utc::now() - chrono::Duration::minutes(10);
    let mut sent = 0u64;
    for source in SOURCES {
        reports.send(observed(source, t0, vec![raion_air_raid(t0)])).await.expect("pipeline");
        sent += 1;
    }
    h.next_fanout(WAIT, |f| f.event.transition == Transition::Started && f.recipients == 1).await.expect("the start");
    assert_eq!(h.telegram.wait_for_sent(CHAT, 1, WAIT).await.len(), 1);

    // Then, every 20 seconds for ten minutes, each feed fails and then answers `[]`.
    let mut at = t0;
    while at < t0 + chrono::Duration::minutes(10) {
        for source in SOURCES {
            reports.send(failed(source)).await.expect("pipeline");
            reports.send(observed(source, at + chrono::Duration::seconds(10), Vec::new())).await.expect("pipeline");
            sent += 2;
        }
        at += chrono::Duration::seconds(20);
    }
    seen.wait_for(|n| *n >= first_polls + sent).await.expect("every report handled");

    let ends: Vec<_> = h.drain_fanouts().into_iter().filter(|f| f.event.transition == Transition::Ended).collect();
    assert!(ends.is_empty(), "false all-clears: {:?}", ends.iter().map(|f| &f.event.id).collect::<Vec<_>>());
    h.wait_drained(WAIT).await.expect("drained");
    assert_eq!(h.telegram.sent_to(CHAT).len(), 1, "only the start");

    let mut told = Vec::new();
    while let Ok(n) = notices.try_recv() {
        told.push(n);
    }
    for source in SOURCES {
        assert!(told.contains(&Notice::SourceStale { source: source.into(), last_ok: Some(t0) }), "{told:?}");
        assert!(
            told.iter().any(|n| matches!(n, Notice::SnapshotHeld { source: s, held: 1 } if s == source)),
            "{told:?}"
        );
    }
    assert!(told.iter().any(|n| matches!(n, Notice::AllStale { .. })), "{told:?}");
    // The operator's chat heard every notice (one a second: Telegram's per-chat limit).
    let to_operator = h.telegram.wait_for_sent(OPERATOR, told.len(), WAIT).await;
    assert_eq!(to_operator.len(), told.len());
    assert!(to_operator.iter().any(|m| m.text.contains("застарілі")), "{to_operator:?}");

    // The resident asks: the answer is "unknown", not "no alerts".
    h.telegram.user_sends(CHAT, "/status");
    let got = h.telegram.wait_for_sent(CHAT, 2, WAIT).await;
    let status = &got[1].text;
    assert!(status.contains("Стан невідомий з"), "{status}");
    assert!(!status.contains("Тривог немає"), "{status}");
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_names_what_is_on_in_a_residents_place() {
    let mut h = Harness::start(Options::default()).await.expect("harness");
    h.add_resident(CHAT, KUPIANSK, Lang::En).await.expect("resident");
    let reports = h.daemon.reports_in.clone();
    let now = Utc::now();
    reports.send(observed("alerts_in_ua", now, vec![raion_air_raid(now)])).await.expect("pipeline");
    h.next_fanout(WAIT, |f| f.event.transition == Transition::Started).await.expect("the start");
    h.wait_drained(WAIT).await.expect("drained");
    let before = h.telegram.wait_for_sent(CHAT, 1, WAIT).await.len();
    h.telegram.user_sends(CHAT, "/status");
    let got = h.telegram.wait_for_sent(CHAT, before + 1, WAIT).await;
    let status = &got[before].text;
    assert!(status.contains("Air raid alert in Kupiansk Raion since"), "{status}");
    assert!(status.contains("(source: alerts.in.ua)"), "the source as residents know it: {status}");
    h.shutdown().await;
}
