//! The outbox's crash promise (DESIGN §2, invariant 4) on the real binary, CI-sized:
//! `sirena run` is SIGKILLed three times mid-fan-out and restarted on the same store;
//! no resident may go without the alert, and no more may get it twice than the outbox
//! held claimed when the kills landed. `sirena bench crash` is the full-sized run.
//! Stopped with SIGTERM instead, as systemd stops it, the daemon exits 0, hands every
//! claim back, and the restarts send each delivery exactly once.

use std::path::Path;

use sirena::bench::{Stop, crash_run, stop_run};

fn seed() -> u64 {
    // The seed only moves the stop points; it is printed so a failure names it.
    let seed = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(1, |d| d.as_nanos() as u64);
    println!("seed {seed}");
    seed
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkills_mid_fanout_lose_nothing_and_repeat_only_what_was_in_flight() {
    let r = crash_run(Path::new(env!("CARGO_BIN_EXE_sirena")), 3, 300, seed()).await.expect("crash run");
    println!("{r:?}");
    assert_eq!((r.kills, r.deliveries), (3, 300));
    assert_eq!(r.lost, 0, "residents without the alert: {r:?}");
    assert!(r.duplicates as u64 <= r.in_flight_at_kills, "more duplicates than deliveries in flight: {r:?}");
    // Each kill comes after messages went out since the last start (crash_run waits for
    // that); these say the kills caught work half done, not a daemon at rest.
    assert!(r.in_flight_at_kills > 0, "no delivery was claimed at any kill: {r:?}");
    assert!(r.requests_unanswered_at_kills > 0, "no request was on the wire at any kill: {r:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_mid_fanout_exits_0_and_after_a_restart_every_delivery_went_out_once() {
    let r = stop_run(Path::new(env!("CARGO_BIN_EXE_sirena")), Stop::Term, 3, 300, seed()).await.expect("stop run");
    println!("{r:?}");
    assert_eq!(r.exits, vec![Some(0); 3], "each SIGTERM is a clean exit: {r:?}");
    // Each stop came with work left and requests on the wire, not a daemon at rest…
    assert!(r.sent_at_stops.iter().all(|&n| n < 300), "a stop after the fan-out: {r:?}");
    assert!(r.requests_unanswered_at_kills > 0, "no request was on the wire at any SIGTERM: {r:?}");
    // …and those requests finished within the grace and were recorded: nothing was left
    // claimed, nothing lost, nothing sent twice.
    assert_eq!(r.in_flight_at_kills, 0, "claims left behind by a graceful stop: {r:?}");
    assert_eq!(r.lost, 0, "residents without the alert: {r:?}");
    assert_eq!(r.duplicates, 0, "residents who got it twice: {r:?}");
    assert_eq!(r.log_escapes, 0, "colour codes in a log written to a file: {r:?}");
}
