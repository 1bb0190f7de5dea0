//! Several feeds through the real daemon: alerts from alerts.in.ua and ukrainealarm
//! merge into one alert state, so a resident is rung once and cleared once however
//! many sources report an alert, at whatever level, and whichever of them misbehaves.
//! Every count is taken from the Telegram simulator's records.

use std::time::Duration;

use sirena::alerts::{AlertKind, Transition};
use sirena::daemon::Fanout;
use sirena::demo::{Harness, Options, kharkiv_air_raid, luhansk};
use sirena::messages::Lang;
use sirena::sim::feed::{Fault, FeedKind, SimAlert};

/// Failure bound for anything event-driven; never reached when things work.
const WAIT: Duration = Duration::from_secs(30);
const KHARKIV_CHAT: i64 = 3001;
const KUPIANSK_CHAT: i64 = 3002;
const KHARKIV_CITY: &str = "UA63120270010096107";
const KUPIANSK_CITY: &str = "UA63080090010026457";
const KHARKIV_OBLAST: &str = "UA63000000000041885";
const KUPIANSK_RAION: &str = "UA63080000000032022";
const LUHANSK_OBLAST: &str = "UA44000000000018893";

const BOTH: [FeedKind; 2] = [FeedKind::AlertsInUa, FeedKind::UkraineAlarm];

fn is(kind: AlertKind, transition: Transition, region: &'static str) -> impl Fn(&Fanout) -> bool {
    move |f: &Fanout| {
        f.event.kind == kind && f.event.transition == transition && f.event.targets.iter().any(|t| t.as_str() == region)
    }
}

fn air_raid(transition: Transition, region: &'static str) -> impl Fn(&Fanout) -> bool {
    is(AlertKind::AirRaid, transition, region)
}

/// Kupiansk raion's air raid, started with `oblast`'s.
fn kupiansk_raion(oblast: &SimAlert) -> SimAlert {
    SimAlert {
        location_uid: 123,
        location_title: "Куп’янський район".into(),
        location_type: "raion".into(),
        katottg: Some(KUPIANSK_RAION.into()),
        ..oblast.clone()
    }
}

fn texts(h: &Harness, chat: i64) -> Vec<String> {
    h.telegram.sent_to(chat).into_iter().map(|m| m.text).collect()
}

/// Waits until `feed` has answered at least `n` requests in all.
async fn wait_requests(h: &Harness, feed: FeedKind, n: u64) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while h.feed.requests_for(feed) < n {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{} got {} requests, not {n}",
            feed.label(),
            h.feed.requests_for(feed)
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// Waits until every feed the daemon polls has answered `more` requests beyond now.
/// `more` ≥ 4 covers two full ukrainealarm polls (status, then the list) and leaves the
/// pipeline time to handle the earlier ones.
async fn more_polls(h: &Harness, more: u64) {
    let targets: Vec<(FeedKind, u64)> = h.sources.iter().map(|k| (*k, h.feed.requests_for(*k) + more)).collect();
    for (feed, n) in targets {
        wait_requests(h, feed, n).await;
    }
}

/// Waits for the `n`-th message to `chat` and returns all it has got.
async fn nth_message(h: &Harness, chat: i64, n: usize) -> Vec<String> {
    h.wait_drained(WAIT).await.expect("delivered");
    let got: Vec<String> = h.telegram.wait_for_sent(chat, n, WAIT).await.into_iter().map(|m| m.text).collect();
    assert_eq!(got.len(), n, "chat {chat}: {got:?}");
    got
}

/// Both feeds list only Luhansk and each has answered with it a few times; a resident
/// of Kharkiv city has got nothing.
async fn two_sources_with_luhansk() -> Harness {
    let mut h = Harness::start(Options { sources: BOTH.to_vec(), ..Options::default() }).await.expect("harness");
    h.add_resident(KHARKIV_CHAT, KHARKIV_CITY, Lang::Uk).await.expect("resident");
    // Luhansk oblast has been under alert since 2022: a real snapshot is never empty.
    h.feed.set_alerts(vec![luhansk()]);
    let f = h.next_fanout(WAIT, air_raid(Transition::Started, LUHANSK_OBLAST)).await.expect("Luhansk listed");
    assert_eq!(f.recipients, 0);
    more_polls(&h, 4).await;
    let stray = h.drain_fanouts();
    assert!(stray.is_empty(), "events before the test: {:?}", stray.iter().map(|f| &f.event.id).collect::<Vec<_>>());
    h
}

/// alerts.in.ua answers `times` requests with `fault` while ukrainealarm reports the
/// Kharkiv air raid starting and ending: one message each, and nothing more once
/// alerts.in.ua is back.
async fn one_source_out_the_other_rings_once_and_clears_once(fault: Fault, times: u32) {
    let mut h = two_sources_with_luhansk().await;
    let first = FeedKind::AlertsInUa;
    let since = h.feed.requests_for(first);
    h.feed.inject_for(first, fault.clone(), times);
    // A stall serves the list as it was at its first request: Luhansk only.
    wait_requests(&h, first, since + 1).await;

    h.feed.set_alerts(vec![luhansk(), kharkiv_air_raid()]);
    let f = h.next_fanout(WAIT, air_raid(Transition::Started, KHARKIV_OBLAST)).await.expect("air raid started");
    assert_eq!(f.recipients, 1);
    let got = nth_message(&h, KHARKIV_CHAT, 1).await;
    assert!(got[0].starts_with("🔴 <b>Повітряна тривога"), "{}", got[0]);

    h.feed.set_alerts(vec![luhansk()]);
    let f = h.next_fanout(WAIT, air_raid(Transition::Ended, KHARKIV_OBLAST)).await.expect("all clear");
    assert_eq!(f.recipients, 1);
    // Every alerts.in.ua request so far got the fault, so it never saw the alert.
    let asked = h.feed.requests_for(first) - since;
    assert!(asked < u64::from(times), "{fault:?} was over ({asked} requests) before the all-clear; inject more");
    let got = nth_message(&h, KHARKIV_CHAT, 2).await;
    assert!(got[1].starts_with("🟢 <b>Відбій: Повітряна тривога"), "{}", got[1]);

    // alerts.in.ua comes back with the current list: nothing to say.
    wait_requests(&h, first, since + u64::from(times) + 4).await;
    more_polls(&h, 4).await;
    let stray = h.drain_fanouts();
    assert!(
        stray.is_empty(),
        "after {fault:?} ended: {:?}",
        stray.iter().map(|f| (&f.event.id, f.recipients)).collect::<Vec<_>>()
    );
    h.wait_drained(WAIT).await.expect("drained");
    let got = texts(&h, KHARKIV_CHAT);
    assert_eq!(got.len(), 2, "air raid and all clear only: {got:?}");
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_source_and_a_live_one_ring_once_and_clear_once() {
    // 40 requests at a 250 ms poll: about ten seconds of a feed frozen on the old list.
    one_source_out_the_other_rings_once_and_clears_once(Fault::Stall, 40).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timed_out_source_and_a_live_one_ring_once_and_clear_once() {
    // The Harness gives the client a 1 s timeout. With the backoff (250 ms doubling)
    // five timeouts last about eight seconds.
    one_source_out_the_other_rings_once_and_clears_once(Fault::Delay(Duration::from_secs(3)), 5).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_sources_at_two_levels_ring_once() {
    let mut h = two_sources_with_luhansk().await;
    h.add_resident(KUPIANSK_CHAT, KUPIANSK_CITY, Lang::Uk).await.expect("resident");
    let oblast = kharkiv_air_raid();
    let raion = kupiansk_raion(&oblast);

    // Both feeds list both alerts.
    h.feed.set_alerts(vec![luhansk(), oblast.clone(), raion.clone()]);
    let f = h.next_fanout(WAIT, air_raid(Transition::Started, KHARKIV_OBLAST)).await.expect("oblast started");
    assert_eq!(f.recipients, 2, "both residents live in the oblast");
    let f = h.next_fanout(WAIT, air_raid(Transition::Started, KUPIANSK_RAION)).await.expect("raion started");
    assert_eq!(f.recipients, 0, "the raion's alert inside the oblast's rings nobody again");
    nth_message(&h, KHARKIV_CHAT, 1).await;
    nth_message(&h, KUPIANSK_CHAT, 1).await;
    // The second feed has reported both as well: it only confirms.
    more_polls(&h, 4).await;
    let stray = h.drain_fanouts();
    assert!(
        stray.is_empty(),
        "a second source made events: {:?}",
        stray.iter().map(|f| &f.event.id).collect::<Vec<_>>()
    );

    // The oblast's alert ends, the raion's goes on.
    h.feed.set_alerts(vec![luhansk(), raion.clone()]);
    let f = h.next_fanout(WAIT, air_raid(Transition::Ended, KHARKIV_OBLAST)).await.expect("oblast ended");
    assert_eq!(f.recipients, 1, "only places outside the raion are cleared");
    let got = nth_message(&h, KHARKIV_CHAT, 2).await;
    assert!(got[1].starts_with("🟢 <b>Відбій: Повітряна тривога"), "{}", got[1]);
    assert!(got[1].contains("Тривога триває: Куп’янський район"), "{}", got[1]);
    more_polls(&h, 4).await;
    h.wait_drained(WAIT).await.expect("drained");
    let stray = h.drain_fanouts();
    assert!(stray.is_empty(), "{:?}", stray.iter().map(|f| &f.event.id).collect::<Vec<_>>());
    assert_eq!(texts(&h, KUPIANSK_CHAT).len(), 1, "Kupiansk is still under the raion's alert");

    // The raion's alert ends.
    h.feed.set_alerts(vec![luhansk()]);
    let f = h.next_fanout(WAIT, air_raid(Transition::Ended, KUPIANSK_RAION)).await.expect("raion ended");
    assert_eq!(f.recipients, 1);
    let got = nth_message(&h, KUPIANSK_CHAT, 2).await;
    assert!(got[1].starts_with("🟢 <b>Відбій: Повітряна тривога"), "{}", got[1]);
    assert!(got[1].contains("Куп’янський район"), "{}", got[1]);

    more_polls(&h, 4).await;
    h.wait_drained(WAIT).await.expect("drained");
    let stray = h.drain_fanouts();
    assert!(stray.is_empty(), "{:?}", stray.iter().map(|f| &f.event.id).collect::<Vec<_>>());
    assert_eq!(texts(&h, KHARKIV_CHAT).len(), 2, "{:?}", texts(&h, KHARKIV_CHAT));
    assert_eq!(texts(&h, KUPIANSK_CHAT).len(), 2, "{:?}", texts(&h, KUPIANSK_CHAT));
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_alert_that_ends_and_returns_with_the_same_start_is_announced_again() {
    let mut h = Harness::start(Options::default()).await.expect("harness");
    h.add_resident(KHARKIV_CHAT, KHARKIV_CITY, Lang::Uk).await.expect("resident");
    // One occurrence as the feed dates it: the same `started_at` both times.
    let raid = kharkiv_air_raid();
    let mut starts = Vec::new();
    for round in 0..2 {
        h.feed.set_alerts(vec![luhansk(), raid.clone()]);
        let f = h.next_fanout(WAIT, air_raid(Transition::Started, KHARKIV_OBLAST)).await.expect("started");
        assert_eq!(f.recipients, 1, "round {round}");
        starts.push(f.event.id.clone());
        let got = nth_message(&h, KHARKIV_CHAT, 2 * round + 1).await;
        assert!(got[2 * round].starts_with("🔴 <b>Повітряна тривога"), "round {round}: {got:?}");

        h.feed.set_alerts(vec![luhansk()]);
        let f = h.next_fanout(WAIT, air_raid(Transition::Ended, KHARKIV_OBLAST)).await.expect("ended");
        assert_eq!(f.recipients, 1, "round {round}");
        let got = nth_message(&h, KHARKIV_CHAT, 2 * round + 2).await;
        assert!(got[2 * round + 1].starts_with("🟢 <b>Відбій: Повітряна тривога"), "round {round}: {got:?}");
    }
    assert_ne!(starts[0], starts[1], "each occurrence has its own event");
    more_polls(&h, 4).await;
    h.wait_drained(WAIT).await.expect("drained");
    assert_eq!(texts(&h, KHARKIV_CHAT).len(), 4, "{:?}", texts(&h, KHARKIV_CHAT));
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_list_is_held_not_believed() {
    // The regression: [alert], [], HTTP 500, [], [] sent everyone an all-clear. The hold
    // window is shorter than the whole sequence (four polls, 1.5 s) but longer than any
    // run of empty lists without an error in between (two, 0.5 s apart): an empty list
    // is believed only if it persists without errors, so here it never is. The polls
    // after the faults run past the window, so a held list left standing would be
    // believed among them.
    let opts = Options {
        poll: Duration::from_millis(500),
        hold_implausible: Duration::from_millis(1200),
        ..Options::default()
    };
    let mut h = Harness::start(opts).await.expect("harness");
    h.add_resident(KHARKIV_CHAT, KHARKIV_CITY, Lang::Uk).await.expect("resident");
    h.feed.set_alerts(vec![luhansk(), kharkiv_air_raid()]);
    let f = h.next_fanout(WAIT, air_raid(Transition::Started, KHARKIV_OBLAST)).await.expect("air raid started");
    assert_eq!(f.recipients, 1);
    let got = nth_message(&h, KHARKIV_CHAT, 1).await;
    assert!(got[0].starts_with("🔴 <b>Повітряна тривога"), "{}", got[0]);
    let stray = h.drain_fanouts();
    assert!(stray.iter().all(|f| f.event.transition == Transition::Started), "{stray:?}");

    let since = h.feed.requests();
    let faults = [Fault::EmptyList, Fault::Status(500), Fault::EmptyList, Fault::EmptyList];
    for fault in &faults {
        h.feed.inject(fault.clone(), 1);
    }
    // The faults, then six normal answers (3 s, past the hold window).
    h.wait_polls(since, faults.len() as u64 + 6, WAIT).await.expect("the daemon keeps polling");
    let stray = h.drain_fanouts();
    assert!(
        stray.is_empty(),
        "[], 500, [], [] made events: {:?}",
        stray.iter().map(|f| (&f.event.id, f.recipients)).collect::<Vec<_>>()
    );
    h.wait_drained(WAIT).await.expect("drained");
    let got = texts(&h, KHARKIV_CHAT);
    assert_eq!(got.len(), 1, "the resident got more than the air raid: {got:?}");
    h.shutdown().await;
}

/// A CAP `Evacuate` for Kupiansk raion from the configured (official) sender reaches
/// the raion's residents as an evacuation in the most urgent class, with the sender's
/// instruction in each resident's language; Kharkiv city, outside the raion, hears
/// nothing. The Cancel clears it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cap_evacuate_reaches_the_raion_with_its_instruction() {
    const KUPIANSK_EN_CHAT: i64 = 3003;
    let mut h = Harness::start(Options { sources: vec![FeedKind::Cap], ..Options::default() }).await.expect("harness");
    h.add_resident(KHARKIV_CHAT, KHARKIV_CITY, Lang::Uk).await.expect("resident");
    h.add_resident(KUPIANSK_CHAT, KUPIANSK_CITY, Lang::Uk).await.expect("resident");
    h.add_resident(KUPIANSK_EN_CHAT, KUPIANSK_CITY, Lang::En).await.expect("resident");
    let evacuation = SimAlert {
        alert_type: "evacuation".into(),
        instructions: vec![
            ("uk-UA".into(), "Збір о 10:00 біля вокзалу Куп’янськ-Вузловий, автобуси до Харкова.".into()),
            ("en-US".into(), "Gather at 10:00 at Kupiansk-Vuzlovyi station; buses to Kharkiv.".into()),
        ],
        ..kupiansk_raion(&kharkiv_air_raid())
    };
    h.feed.set_alerts(vec![evacuation]);
    let f = h
        .next_fanout(WAIT, is(AlertKind::Evacuation, Transition::Started, KUPIANSK_RAION))
        .await
        .expect("evacuation started");
    assert_eq!(f.event.priority, sirena::alerts::Priority::MandatoryEvacuation);
    assert_eq!(f.recipients, 2, "both Kupiansk residents, not Kharkiv");
    let uk = nth_message(&h, KUPIANSK_CHAT, 1).await;
    assert!(uk[0].contains("Евакуація"), "{}", uk[0]);
    assert!(uk[0].contains("Збір о 10:00 біля вокзалу Куп’янськ-Вузловий, автобуси до Харкова."), "{}", uk[0]);
    let en = nth_message(&h, KUPIANSK_EN_CHAT, 1).await;
    assert!(en[0].contains("Evacuation"), "{}", en[0]);
    assert!(en[0].contains("Gather at 10:00 at Kupiansk-Vuzlovyi station; buses to Kharkiv."), "{}", en[0]);
    assert!(!en[0].contains("Збір"), "the English reader gets the English info: {}", en[0]);

    h.feed.set_alerts(vec![]);
    let f = h.next_fanout(WAIT, is(AlertKind::Evacuation, Transition::Ended, KUPIANSK_RAION)).await.expect("cancelled");
    assert_eq!(f.recipients, 2);
    nth_message(&h, KUPIANSK_CHAT, 2).await;
    h.wait_drained(WAIT).await.expect("drained");
    assert!(texts(&h, KHARKIV_CHAT).is_empty(), "{:?}", texts(&h, KHARKIV_CHAT));
    h.shutdown().await;
}
