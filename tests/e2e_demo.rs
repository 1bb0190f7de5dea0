//! The Kupiansk scenario end to end (DESIGN §13): the real daemon against the feed and
//! Telegram simulators on loopback. `run` checks every resident's messages against the
//! Telegram simulator's records: each got exactly what concerns their place, once, and
//! the resident in Lviv got nothing. The same scenario is served from each of the three
//! feeds, with the same verdict.

use sirena::sim::feed::FeedKind;

async fn scenario(source: FeedKind) {
    let ok = sirena::demo::run(source).await.expect("the demo could not run");
    assert!(ok, "the demo from {source:?} finished but some resident got the wrong messages (see the table above)");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kupiansk_scenario_from_alerts_in_ua() {
    scenario(FeedKind::AlertsInUa).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kupiansk_scenario_from_ukrainealarm() {
    scenario(FeedKind::UkraineAlarm).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kupiansk_scenario_from_cap() {
    scenario(FeedKind::Cap).await;
}
