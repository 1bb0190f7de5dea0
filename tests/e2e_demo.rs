//! The Kupiansk scenario end to end (DESIGN §13): the real daemon against the feed and
//! Telegram simulators on loopback. `run` checks every resident's messages against the
//! Telegram simulator's records: each got exactly what concerns their place, once, and
//! the resident in Lviv got nothing.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kupiansk_scenario_every_resident_gets_exactly_their_messages() {
    let ok = sirena::demo::run().await.expect("the demo could not run");
    assert!(ok, "the demo finished but some resident got the wrong messages (see the table above)");
}
