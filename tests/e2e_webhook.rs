//! The ukrainealarm webhook through the real daemon: a push makes the change arrive
//! long before the next poll would; a wrong secret or an unreadable body is refused
//! and counted, and changes nothing.

use std::time::Duration;

use sirena::alerts::{AlertKind, Transition};
use sirena::demo::{Harness, Options, kharkiv_air_raid, luhansk};
use sirena::messages::Lang;
use sirena::sim::feed::FeedKind;
use sirena::web::WebStats;

const WAIT: Duration = Duration::from_secs(20);
const CHAT: i64 = 2101;
const KHARKIV_CITY: &str = "UA63120270010096107";

async fn harness() -> Harness {
    let opts = Options {
        sources: vec![FeedKind::UkraineAlarm],
        webhook: true,
        // Far beyond the test's wait: only a push can bring a change in time.
        poll: Duration::from_secs(600),
        ..Options::default()
    };
    let h = Harness::start(opts).await.expect("harness");
    h.add_resident(CHAT, KHARKIV_CITY, Lang::Uk).await.expect("resident");
    // The first poll, at start, has happened once the source reports.
    h.wait_polls(0, 1, WAIT).await.expect("first poll");
    h
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_push_brings_the_change_without_waiting_for_the_poll() {
    let mut h = harness().await;
    h.webhook().expect("webhook");
    h.feed.set_alerts(vec![luhansk(), kharkiv_air_raid()]);
    let f = h
        .next_fanout(WAIT, |f| {
            f.event.kind == AlertKind::AirRaid && f.event.transition == Transition::Started && f.recipients == 1
        })
        .await
        .expect("the push made the source poll");
    assert_eq!(f.event.targets[0].as_str(), "UA63000000000041885");
    let got = h.telegram.wait_for_sent(CHAT, 1, WAIT).await;
    assert_eq!(got.len(), 1);
    assert!(WebStats::get(&h.daemon.web.pushes) >= 1);
    h.feed.set_alerts(vec![luhansk()]);
    h.next_fanout(WAIT, |f| f.event.transition == Transition::Ended && f.recipients == 1)
        .await
        .expect("all clear by push");
    assert_eq!(h.telegram.wait_for_sent(CHAT, 2, WAIT).await.len(), 2);
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_secret_or_garbage_is_refused_and_counted() {
    let h = harness().await;
    let addr = h.daemon.web_addr.expect("listening");
    let http = reqwest::Client::new();
    let record = r#"{"regionId":"22","regionType":"State","regionName":"Харківська область","lastUpdate":"2026-12-01T10:00:00Z","activeAlerts":[]}"#;
    let status = |r: Result<reqwest::Response, reqwest::Error>| r.expect("answered").status().as_u16();
    let wrong = http.post(format!("http://{addr}/webhooks/ukrainealarm/nope")).body(record).send().await;
    assert_eq!(status(wrong), 401);
    let missing = http.post(format!("http://{addr}/webhooks/ukrainealarm")).body(record).send().await;
    assert_eq!(status(missing), 401);
    let unknown = http.post(format!("http://{addr}/webhooks/elsewhere/x")).body(record).send().await;
    assert_eq!(status(unknown), 404);
    let garbage = http
        .post(format!("http://{addr}/webhooks/ukrainealarm/{}", sirena::demo::WEBHOOK_SECRET))
        .body("<html>oops</html>")
        .send()
        .await;
    assert_eq!(status(garbage), 400);
    let since = h.feed_requests();
    let good = http
        .post(format!("http://{addr}/webhooks/ukrainealarm"))
        .header(sirena::web::SECRET_HEADER, sirena::demo::WEBHOOK_SECRET)
        .body(record)
        .send()
        .await;
    assert_eq!(status(good), 200);
    assert_eq!(WebStats::get(&h.daemon.web.unauthorized), 2);
    assert_eq!(WebStats::get(&h.daemon.web.malformed), 1);
    assert_eq!(WebStats::get(&h.daemon.web.pushes), 1);
    // The good push, and only it, made the source poll long before its interval.
    h.wait_polls(since, 1, WAIT).await.expect("the push made the source poll");
    h.shutdown().await;
}
