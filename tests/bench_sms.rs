//! `sirena bench sms`, tiny: one gateway end to end reports the figures the issue asked
//! for, with nobody lost or texted twice. The rate is checked loosely; the figures are in
//! docs/benchmarks.md.

use serde_json::Value;
use sirena::demo::SmsKind;

const RECIPIENTS: usize = 60;
/// Slow enough that 60 texts take a dozen windows of the limiter, so the rate means
/// something (at 100/s they would all go in one burst).
const PER_SEC: u32 = 5;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sms_bench_through_turbosms_loses_nothing_and_keeps_to_the_limit() {
    let report = sirena::bench::sms(RECIPIENTS, &[SmsKind::TurboSms], PER_SEC).await.expect("bench sms");
    println!("{report}");
    let line = report.lines().last().expect("a report");
    let v: Value = serde_json::from_str(line).expect("the last line is JSON");
    let keys: Vec<&str> = v.as_object().expect("an object").keys().map(String::as_str).collect();
    assert_eq!(&keys[..6], ["gateway", "recipients", "seconds", "rate_vs_limit", "duplicates", "lost"], "{line}");
    assert_eq!(v["gateway"], "turbosms", "{line}");
    assert_eq!(v["recipients"], RECIPIENTS, "{line}");
    assert_eq!(v["duplicates"], 0, "{line}");
    assert_eq!(v["lost"], 0, "{line}");
    let ratio = v["rate_vs_limit"].as_f64().expect("rate_vs_limit a number");
    assert!(ratio > 0.5 && ratio < 1.1, "{line}");
}
