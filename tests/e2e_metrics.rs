//! `/metrics`, `/healthz` and `/readyz` on the daemon's HTTP endpoint, read during a
//! fan-out as an operator's Prometheus would.

use std::time::Duration;

use sirena::alerts::AlertKind;
use sirena::demo::{Harness, Options, kharkiv_air_raid, luhansk};
use sirena::messages::Lang;
use sirena::sim::feed::{Fault, FeedKind};

const WAIT: Duration = Duration::from_secs(20);
const KHARKIV_CITY: &str = "UA63120270010096107";

fn options() -> Options {
    Options { sources: vec![FeedKind::UkraineAlarm], webhook: true, ..Options::default() }
}

async fn get(url: String) -> (u16, String) {
    let r = reqwest::get(url).await.expect("request");
    (r.status().as_u16(), r.text().await.expect("body"))
}

fn value(text: &str, sample: &str) -> Option<f64> {
    text.lines().find_map(|l| l.strip_prefix(sample)?.strip_prefix(' ')?.parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_show_the_fan_out_and_readiness_follows_the_feeds() {
    let mut h = Harness::start(options()).await.expect("harness");
    for chat in 0..3 {
        h.add_resident(4100 + chat, KHARKIV_CITY, Lang::Uk).await.expect("resident");
    }
    let addr = h.daemon.web_addr.expect("listening");
    assert_eq!(get(format!("http://{addr}/healthz")).await.0, 200);
    // Ready once the first poll has been answered.
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let (status, body) = get(format!("http://{addr}/readyz")).await;
        if status == 200 {
            assert!(body.contains("1 of 1 sources healthy"), "{body}");
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "never ready: {status} {body}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    h.feed.set_alerts(vec![luhansk(), kharkiv_air_raid()]);
    h.next_fanout(WAIT, |f| f.event.kind == AlertKind::AirRaid && f.recipients == 3).await.expect("air raid");
    h.wait_drained(WAIT).await.expect("delivered");
    let (status, text) = get(format!("http://{addr}/metrics")).await;
    assert_eq!(status, 200);
    // Luhansk oblast's (nobody there) and Kharkiv oblast's.
    assert_eq!(value(&text, r#"sirena_events_total{kind="air_raid",transition="started"}"#), Some(2.0), "{text}");
    assert_eq!(value(&text, r#"sirena_deliveries{channel="telegram",state="sent"}"#), Some(3.0), "{text}");
    assert_eq!(value(&text, r#"sirena_deliveries{channel="telegram",state="pending"}"#), Some(0.0), "{text}");
    assert_eq!(value(&text, r#"sirena_deliveries{channel="sms",state="sent"}"#), Some(0.0), "{text}");
    assert_eq!(value(&text, r#"sirena_dispatch_total{outcome="messages"}"#), Some(3.0), "{text}");
    // Every delivery sent is one latency sample, and all are below the top bucket.
    assert_eq!(value(&text, r#"sirena_send_latency_seconds_count{channel="telegram"}"#), Some(3.0), "{text}");
    assert_eq!(value(&text, r#"sirena_send_latency_seconds_bucket{channel="telegram",le="900"}"#), Some(3.0), "{text}");
    assert!(value(&text, r#"sirena_send_latency_seconds_sum{channel="telegram"}"#).is_some_and(|s| s >= 0.0), "{text}");
    assert!(value(&text, "sirena_reload_generation").is_some(), "{text}");
    let age = value(&text, r#"sirena_source_last_success_age_seconds{source="ukrainealarm"}"#).expect("age");
    assert!((0.0..60.0).contains(&age), "{age}");
    assert_eq!(value(&text, r#"sirena_source_consecutive_failures{source="ukrainealarm"}"#), Some(0.0));
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_daemon_that_hears_no_feed_is_up_but_not_ready() {
    let opts = Options { feed_faults: vec![(FeedKind::UkraineAlarm, Fault::Status(503), 1000)], ..options() };
    let h = Harness::start(opts).await.expect("harness");
    // The first poll failed once the pipeline has handled its report.
    let mut seen = h.daemon.reports_seen.clone();
    tokio::time::timeout(WAIT, seen.wait_for(|n| *n >= 1)).await.expect("a report").expect("alive");
    let addr = h.daemon.web_addr.expect("listening");
    assert_eq!(get(format!("http://{addr}/healthz")).await.0, 200);
    let (status, body) = get(format!("http://{addr}/readyz")).await;
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("no source healthy"), "{body}");
    let (_, text) = get(format!("http://{addr}/metrics")).await;
    let failures = value(&text, r#"sirena_source_consecutive_failures{source="ukrainealarm"}"#).expect("failures");
    assert!(failures >= 1.0, "{text}");
    h.shutdown().await;
}
