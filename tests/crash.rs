//! The outbox's crash promise (DESIGN §2, invariant 4) on the real binary, CI-sized:
//! `sirena run` is SIGKILLed three times mid-fan-out and restarted on the same store;
//! no resident may go without the alert, and no more may get it twice than the outbox
//! held claimed when the kills landed. `sirena bench crash` is the full-sized run.

use std::path::Path;

use sirena::bench::crash_run;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkills_mid_fanout_lose_nothing_and_repeat_only_what_was_in_flight() {
    // The seed only moves the kill points; it is printed so a failure names it.
    let seed = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(1, |d| d.as_nanos() as u64);
    println!("seed {seed}");
    let r = crash_run(Path::new(env!("CARGO_BIN_EXE_sirena")), 3, 300, seed).await.expect("crash run");
    println!("{r:?}");
    assert_eq!((r.kills, r.deliveries), (3, 300));
    assert_eq!(r.lost, 0, "residents without the alert: {r:?}");
    assert!(r.duplicates as u64 <= r.in_flight_at_kills, "more duplicates than deliveries in flight: {r:?}");
    // Each kill comes after messages went out since the last start (crash_run waits for
    // that); these say the kills caught work half done, not a daemon at rest.
    assert!(r.in_flight_at_kills > 0, "no delivery was claimed at any kill: {r:?}");
    assert!(r.requests_unanswered_at_kills > 0, "no request was on the wire at any kill: {r:?}");
}
