//! `sirena bench latency`, tiny: both modes run end to end and report the figures the
//! issue asked for. No timing is asserted; the figures are in docs/benchmarks.md.

use serde_json::Value;

/// More than the 26 oblasts, so some air raids end too.
const CHANGES: usize = 30;

/// The report's last line, as JSON, checked for the required keys and sane numbers.
fn last_line(report: &str) -> Value {
    println!("{report}");
    let line = report.lines().last().expect("a report");
    let v: Value = serde_json::from_str(line).expect("the last line is JSON");
    let keys: Vec<&str> = v.as_object().expect("an object").keys().map(String::as_str).collect();
    assert_eq!(&keys[..3], ["changes", "p50_ms", "p99_ms"], "required keys first: {line}");
    assert_eq!(v["changes"], CHANGES, "{line}");
    let p50 = v["p50_ms"].as_f64().expect("p50_ms a number");
    let p99 = v["p99_ms"].as_f64().expect("p99_ms a number");
    assert!(p50 > 0.0 && p50 <= p99, "{line}");
    assert!(p99 <= v["max_ms"].as_f64().expect("max_ms a number"), "{line}");
    // The pacing is meant to keep Telegram's limits out of the figures.
    assert_eq!(v["http_429"], 0, "{line}");
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn latency_from_the_served_body_reports_its_percentiles() {
    let report = sirena::bench::latency(CHANGES, false).await.expect("bench latency");
    assert_eq!(last_line(&report)["goal_ms"], 50.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn latency_through_the_webhook_reports_its_percentiles() {
    let report = sirena::bench::latency(CHANGES, true).await.expect("bench latency --webhook");
    assert_eq!(last_line(&report)["goal_ms"], 1000.0);
}
