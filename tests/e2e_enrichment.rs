//! Issue 18 through the real daemon: enrichment never costs the alert, and a missing
//! list is never read as an empty one.
//!
//! - alerts.in.ua threats as objects (the live API), as plain names (older bodies) and as
//!   garbage, in one body: every alert reaches residents, the garbage threat is dropped
//!   and counted in `/metrics` (`sirena_source_dropped_total`), and the message names
//!   the threats with their levels.
//! - a ukrainealarm body whose records have no `activeAlerts` is refused: a failed
//!   poll, no all-clear.

mod common;

use std::time::Duration;

use common::{KHARKIV_CITY, KHARKIV_OBLAST, texts};
use sirena::alerts::{AlertKind, AlertLevel, EventDetail, ThreatKind, Transition};
use sirena::demo::{Harness, Options, kharkiv_air_raid, luhansk};
use sirena::messages::Lang;
use sirena::sim::feed::{Fault, FeedKind, SimAlert, SimThreat};

const WAIT: Duration = Duration::from_secs(20);
const CHAT: i64 = 5101;

async fn get(url: String) -> String {
    reqwest::get(url).await.expect("request").text().await.expect("body")
}

fn value(text: &str, sample: &str) -> Option<f64> {
    text.lines().find_map(|l| l.strip_prefix(sample)?.strip_prefix(' ')?.parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn threat_objects_names_and_garbage_keep_every_alert_and_the_drop_is_counted() {
    // `webhook` gives the daemon its HTTP endpoint, where /metrics is.
    let mut h = Harness::start(Options { webhook: true, ..Options::default() }).await.expect("harness");
    h.add_resident(CHAT, KHARKIV_CITY, Lang::Uk).await.expect("resident");
    let objects = SimAlert {
        alert_level: Some("red".into()),
        threats: vec![SimThreat::new("ballistic_missiles", "red"), SimThreat::new("drones", "yellow")],
        ..kharkiv_air_raid()
    };
    let names = SimAlert {
        alert_type: "artillery_shelling".into(),
        threats_as_sent: Some(serde_json::json!(["drones"])),
        ..kharkiv_air_raid()
    };
    let garbage = SimAlert {
        alert_type: "urban_fights".into(),
        threats_as_sent: Some(serde_json::json!([42])),
        ..kharkiv_air_raid()
    };
    h.feed.set_alerts(vec![luhansk(), objects, names, garbage]);

    let mut started = Vec::new();
    for _ in 0..3 {
        let f = h
            .next_fanout(WAIT, |f| {
                f.event.transition == Transition::Started
                    && f.event.targets.iter().any(|t| t.as_str() == KHARKIV_OBLAST)
            })
            .await
            .expect("a start on Kharkiv oblast");
        assert_eq!(f.recipients, 1, "{f:?}");
        let EventDetail::Alert { threats, .. } = &f.event.detail else { panic!("{f:?}") };
        started.push((f.event.kind, threats.iter().map(|t| (t.kind.clone(), t.level.clone())).collect::<Vec<_>>()));
    }
    started.sort();
    assert_eq!(
        started,
        vec![
            (
                AlertKind::AirRaid,
                vec![
                    (ThreatKind::BallisticMissiles, Some(AlertLevel::Red)),
                    (ThreatKind::Drones, Some(AlertLevel::Yellow))
                ]
            ),
            (AlertKind::Artillery, vec![(ThreatKind::Drones, None)]),
            // The garbage threat's alert is kept, without it.
            (AlertKind::UrbanFights, vec![]),
        ]
    );

    h.wait_drained(WAIT).await.expect("delivered");
    let got = h.telegram.sent_to(CHAT);
    let all = texts(&got).join("\n\n");
    assert!(all.contains("Червоний рівень: пряма загроза."), "{all}");
    assert!(all.contains("Загроза: балістичні ракети, ударні дрони (жовтий рівень)"), "{all}");

    // One body was decoded with one garbage threat: one drop, by source and field.
    let addr = h.daemon.web_addr.expect("listening");
    let text = get(format!("http://{addr}/metrics")).await;
    assert_eq!(
        value(&text, r#"sirena_source_dropped_total{source="alerts_in_ua",field="threats"}"#),
        Some(1.0),
        "{text}"
    );
    assert!(!text.contains(r#"field="alert_level""#), "nothing else was dropped: {text}");
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ukrainealarm_record_without_active_alerts_is_refused_and_no_all_clear_follows() {
    let opts = Options { sources: vec![FeedKind::UkraineAlarm], ..Options::default() };
    let mut h = Harness::start(opts).await.expect("harness");
    h.add_resident(CHAT, KHARKIV_CITY, Lang::Uk).await.expect("resident");
    h.feed.set_alerts(vec![luhansk(), kharkiv_air_raid()]);
    let f = h
        .next_fanout(WAIT, |f| {
            f.event.kind == AlertKind::AirRaid && f.event.targets.iter().any(|t| t.as_str() == KHARKIV_OBLAST)
        })
        .await
        .expect("air raid");
    assert_eq!(f.event.transition, Transition::Started);
    h.wait_drained(WAIT).await.expect("delivered");
    assert_eq!(h.telegram.wait_for_sent(CHAT, 1, WAIT).await.len(), 1);
    let _ = h.drain_fanouts();

    // The next list the daemon fetches has records without `activeAlerts`; the
    // timeline moves (shelling in Luhansk oblast) so that it fetches one.
    h.feed.inject_for(FeedKind::UkraineAlarm, Fault::ListMissing, 1);
    let shelling = SimAlert { alert_type: "artillery_shelling".into(), ..luhansk() };
    h.feed.set_alerts(vec![luhansk(), kharkiv_air_raid(), shelling]);
    let mut health = h.daemon.sources.get("ukrainealarm").expect("the source's health").clone();
    let refused = tokio::time::timeout(
        WAIT,
        health.wait_for(|s| s.last_error.as_deref().is_some_and(|e| e.contains("has no activeAlerts"))),
    )
    .await
    .expect("the body is refused")
    .expect("health")
    .clone();
    assert_eq!(
        refused.last_error.as_deref(),
        Some("body refused: record 1 (regionId 16) has no activeAlerts"),
        "{refused:?}"
    );
    // The next good list brings the shelling, and no end of anything comes before it
    // or with it.
    let mut seen = Vec::new();
    while !seen.iter().any(|(kind, _)| *kind == AlertKind::Artillery) {
        let f = h.next_fanout(WAIT, |_| true).await.expect("the shelling's start");
        seen.push((f.event.kind, f.event.transition));
    }
    h.wait_drained(WAIT).await.expect("drained");
    seen.extend(h.drain_fanouts().iter().map(|f| (f.event.kind, f.event.transition)));
    assert!(seen.iter().all(|(_, t)| *t == Transition::Started), "{seen:?}");
    let got = h.telegram.sent_to(CHAT);
    assert_eq!(got.len(), 1, "the resident got only the air raid: {:?}", texts(&got));
    h.shutdown().await;
}
