//! Several nodes on one PostgreSQL (DESIGN §15) on the real binary, CI-sized: three
//! `sirena run` processes, the leader SIGKILLed mid-fan-out and then the next leader;
//! and a leader whose database session is terminated. `sirena bench failover` is the
//! full-sized run.

mod common;

use std::path::Path;
use std::time::Duration;

use sirena::bench::{failover_run, partition_run};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_two_leaders_in_turn_loses_nothing_and_never_doubles_the_bot_or_the_feed() {
    let Some(admin) = common::postgres().await else { return };
    let seed = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(1, |d| d.as_nanos() as u64);
    println!("seed {seed}");
    let takeover = Duration::from_secs(3);
    let r = failover_run(Path::new(env!("CARGO_BIN_EXE_sirena")), &admin, 3, 2, 1500, takeover, seed)
        .await
        .expect("failover run");
    println!("{r:?}");
    assert_eq!(r.lost, 0, "residents without the alert: {r:?}");
    assert!(r.duplicates as u64 <= r.in_flight_at_kills, "more duplicates than deliveries in flight: {r:?}");
    assert_eq!((r.overlapping_polls, r.poll_conflicts), (0, 0), "two consumers of the bot at once: {r:?}");
    assert_eq!(r.feed_overlaps, 0, "two nodes polled the feed at once: {r:?}");
    assert_eq!(r.feed_refused, 0, "the feed's budget was spent: {r:?}");
    assert_eq!(r.events_after_first, 0, "a later leader wrote events again: {r:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_whose_session_is_terminated_stops_before_the_standby_leads() {
    let Some(admin) = common::postgres().await else { return };
    let r = partition_run(Path::new(env!("CARGO_BIN_EXE_sirena")), &admin, 800).await.expect("partition run");
    println!("{r:?}");
    assert!(r.old_stopped <= r.new_leads, "the standby led before the old leader stopped: {r:?}");
    assert_eq!(r.lost, 0, "{r:?}");
    // Cut off but alive, the old leader lets its requests on the wire finish and
    // records them before it hands the rest back: nothing goes out twice.
    assert_eq!(r.duplicates, 0, "a stepped-down leader's sends were repeated: {r:?}");
    assert_eq!(r.overlapping_polls, 0, "{r:?}");
}
