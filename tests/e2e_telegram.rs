//! Telegram delivery end to end: the dispatcher killed mid-fan-out and restarted,
//! 429 and 403 from the platform, and residents typing nonsense to the real bot.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use sirena::alerts::{AlertKind, Event, EventDetail, EventId, Priority, Transition};
use sirena::channels::telegram::{TelegramChannel, bot};
use sirena::config::secret::Secret;
use sirena::config::{DispatchSettings, TelegramLimits};
use sirena::daemon::Fanout;
use sirena::demo::{Harness, Options, kharkiv_air_raid};
use sirena::dispatch::limits::SharedLimiter;
use sirena::dispatch::{DispatchStats, Dispatcher};
use sirena::messages::Lang;
use sirena::regions::RegionId;
use sirena::sim::feed::SimAlert;
use sirena::sim::telegram::{SentMessage, TelegramSim, TelegramSimConfig};
use sirena::store::{NewDelivery, Store};
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Failure bound for anything event-driven; never reached when things work.
const WAIT: Duration = Duration::from_secs(25);
const KHARKIV_CITY: &str = "UA63120270010096107";
const KHARKIV_OBLAST: &str = "UA63000000000041885";

fn kharkiv_city() -> RegionId {
    RegionId::parse(KHARKIV_CITY).expect("region id")
}

/// Polls `cond` until it holds; `what` names it in the failure.
async fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while !cond() {
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

// ---------------------------------------------------------------- crash and restart

fn air_raid_event() -> Event {
    let now = chrono::Utc::now();
    Event {
        id: EventId(format!("air_raid:{KHARKIV_OBLAST}:crash-test:started")),
        kind: AlertKind::AirRaid,
        transition: Transition::Started,
        revision: 1,
        targets: vec![RegionId::parse(KHARKIV_OBLAST).expect("region id")],
        at: now,
        priority: Priority::AirRaidStart,
        detail: EventDetail::Alert { started_at: now, raw_kind: None },
    }
}

/// A dispatcher as the daemon builds it, with a limiter of its own (a new process
/// knows nothing of what the last one sent).
fn spawn_dispatcher(store: Arc<Store>, sim: &TelegramSim, cancel: CancellationToken) -> JoinHandle<()> {
    let bot =
        bot(&Secret::new(TelegramSimConfig::default().token), &sim.base_url(), Duration::from_secs(1)).expect("bot");
    let dispatcher = Dispatcher {
        store,
        telegram: TelegramChannel::new(bot),
        limiter: SharedLimiter::new(TelegramLimits::default(), Duration::from_millis(50)),
        settings: DispatchSettings { max_in_flight: 16, ..DispatchSettings::default() },
        wake: Arc::new(Notify::new()),
        stats: Arc::new(DispatchStats::default()),
    };
    tokio::spawn(async move {
        dispatcher.run(cancel, Duration::from_secs(5)).await.expect("the store works");
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dispatcher_killed_mid_fanout_loses_nothing_and_repeats_only_what_was_in_flight() {
    const RESIDENTS: i64 = 300;
    const FIRST_CHAT: i64 = 10_000;
    let sims_cancel = CancellationToken::new();
    let sims = TaskTracker::new();
    let sim = TelegramSim::start(TelegramSimConfig::default(), sims_cancel.clone(), &sims).await.expect("sim");
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("sirena.db");

    let store = Arc::new(Store::open(&path).expect("store"));
    let mut deliveries = Vec::new();
    for chat in FIRST_CHAT..FIRST_CHAT + RESIDENTS {
        sim.add_user(chat, "Resident", Some("uk"));
        let (sub, _) = store.upsert_subscriber("telegram", &chat.to_string(), Lang::Uk).expect("subscriber");
        store.add_place(sub.id, &kharkiv_city()).expect("place");
        deliveries.push(NewDelivery {
            subscriber_id: sub.id,
            channel: "telegram".into(),
            address: chat.to_string(),
            text: "🔴 <b>Повітряна тривога</b>\nХарківська область".into(),
            silent: false,
        });
    }
    let enqueued = store.enqueue(&air_raid_event(), &deliveries, i64::MAX).expect("enqueue");
    assert_eq!(enqueued.deliveries, RESIDENTS as usize);

    // First run, killed without grace once a third is out.
    let first = spawn_dispatcher(store.clone(), &sim, CancellationToken::new());
    wait_until("100 messages accepted", || sim.stats().sent >= 100).await;
    first.abort();
    let joined = first.await;
    assert!(joined.is_err_and(|e| e.is_cancelled()), "the first dispatcher was killed, not finished");
    let at_kill = store.counts().expect("counts");
    assert!(!at_kill.is_drained(), "the kill came mid-fan-out: {at_kill:?}");
    let in_flight_at_kill = at_kill.sending;
    assert!(in_flight_at_kill <= 16, "never more than max_in_flight in flight: {at_kill:?}");
    drop(store);

    // A new process: the store reopened from the file, a fresh dispatcher and limiter.
    let store = Arc::new(Store::open(&path).expect("reopen store"));
    assert_eq!(store.counts().expect("counts"), at_kill, "the file holds what the killed run wrote");
    let cancel = CancellationToken::new();
    let second = spawn_dispatcher(store.clone(), &sim, cancel.clone());
    wait_until("the outbox drained", || store.counts().expect("counts").is_drained()).await;
    cancel.cancel();
    second.await.expect("the second dispatcher stops cleanly");

    let counts = store.counts().expect("counts");
    assert_eq!(counts.sent, RESIDENTS as u64, "{counts:?}");
    assert_eq!((counts.failed, counts.expired), (0, 0), "{counts:?}");
    let mut duplicates = 0u64;
    for chat in FIRST_CHAT..FIRST_CHAT + RESIDENTS {
        let got = sim.sent_to(chat).len() as u64;
        assert!(got >= 1, "chat {chat} never got the air raid");
        duplicates += got - 1;
    }
    assert!(
        duplicates <= in_flight_at_kill,
        "{duplicates} duplicates, but only {in_flight_at_kill} deliveries were in flight at the kill"
    );
    println!(
        "in flight at the kill: {in_flight_at_kill}; duplicates: {duplicates}; simulator 429s: {}",
        sim.stats().rate_limited
    );
    sims_cancel.cancel();
    sims.close();
    sims.wait().await;
}

// ---------------------------------------------------------------- through the daemon

/// A daemon with residents of Kharkiv city subscribed directly in the store.
async fn with_residents(opts: Options, chats: &[i64]) -> Harness {
    let h = Harness::start(opts).await.expect("harness");
    for &chat in chats {
        h.telegram.add_user(chat, "Resident", Some("uk"));
        let (sub, _) = h.store().upsert_subscriber("telegram", &chat.to_string(), Lang::Uk).expect("subscriber");
        h.store().add_place(sub.id, &kharkiv_city()).expect("place");
    }
    h
}

fn started(kind: AlertKind) -> impl Fn(&Fanout) -> bool {
    move |f: &Fanout| f.event.kind == kind && f.event.transition == Transition::Started
}

fn texts(messages: &[SentMessage]) -> Vec<&str> {
    messages.iter().map(|m| m.text.as_str()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn platform_429_is_honoured_and_nothing_is_lost_or_repeated() {
    const CHAT: i64 = 3001;
    // Our limiter deliberately looser (5/s per chat) than the simulator's (1/s).
    let opts = Options {
        telegram_limits: TelegramLimits { per_chat_per_sec: 5, ..TelegramLimits::default() },
        ..Options::default()
    };
    let mut h = with_residents(opts, &[CHAT]).await;
    // Three alerts at once over the resident's oblast: three messages to one chat.
    let alerts: Vec<SimAlert> = ["air_raid", "artillery_shelling", "urban_fights"]
        .into_iter()
        .map(|t| SimAlert { alert_type: t.into(), ..kharkiv_air_raid() })
        .collect();
    h.feed.set_alerts(alerts);
    for kind in [AlertKind::AirRaid, AlertKind::Artillery, AlertKind::UrbanFights] {
        let f = h.next_fanout(WAIT, started(kind)).await.expect("fan-out");
        assert_eq!(f.recipients, 1);
    }
    h.wait_drained(WAIT).await.expect("drained");
    let counts = h.store().counts().expect("counts");
    assert_eq!(counts.sent, 3, "{counts:?}");
    assert_eq!((counts.failed, counts.expired), (0, 0), "{counts:?}");
    let got = h.telegram.sent_to(CHAT);
    let distinct: BTreeSet<&str> = texts(&got).into_iter().collect();
    assert_eq!(got.len(), 3, "each message exactly once: {:?}", texts(&got));
    assert_eq!(distinct.len(), 3, "no message twice: {:?}", texts(&got));
    assert!(h.telegram.stats().rate_limited >= 1, "the simulator should have answered 429 at least once");
    assert!(h.daemon.stats.rate_limited.load(Ordering::Relaxed) >= 1, "the dispatcher counted the 429");
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resident_who_blocked_the_bot_is_deactivated_and_skipped() {
    const BLOCKER: i64 = 3101;
    const OTHER: i64 = 3102;
    let mut h = with_residents(Options::default(), &[BLOCKER, OTHER]).await;
    h.telegram.block(BLOCKER);

    h.feed.set_alerts(vec![kharkiv_air_raid()]);
    let f = h.next_fanout(WAIT, started(AlertKind::AirRaid)).await.expect("air raid");
    assert_eq!(f.recipients, 2);
    h.wait_drained(WAIT).await.expect("drained");
    let counts = h.store().counts().expect("counts");
    assert_eq!((counts.sent, counts.failed), (1, 1), "{counts:?}");
    assert!(h.telegram.stats().forbidden >= 1);
    let blocker = h.store().subscriber("telegram", &BLOCKER.to_string()).expect("store").expect("subscriber");
    assert!(!blocker.active, "a 403 deactivates the subscriber");
    assert!(h.store().subscriber("telegram", &OTHER.to_string()).expect("store").expect("subscriber").active);
    assert_eq!(h.daemon.stats.deactivated.load(Ordering::Relaxed), 1);

    // A second alert: nothing is queued for the blocker, the other resident gets it.
    let artillery = SimAlert { alert_type: "artillery_shelling".into(), ..kharkiv_air_raid() };
    h.feed.set_alerts(vec![kharkiv_air_raid(), artillery]);
    let f = h.next_fanout(WAIT, started(AlertKind::Artillery)).await.expect("artillery");
    assert_eq!((f.recipients, f.enqueued), (1, 1), "only the resident who did not block the bot");
    h.wait_drained(WAIT).await.expect("drained");
    let counts = h.store().counts().expect("counts");
    assert_eq!((counts.sent, counts.failed), (2, 1), "{counts:?}");
    assert_eq!(h.telegram.sent_to(OTHER).len(), 2);
    assert!(h.telegram.sent_to(BLOCKER).is_empty());
    h.shutdown().await;
}

// ---------------------------------------------------------------- the bot

/// Sends `text` as the resident and returns the bot's reply; waits for exactly one
/// more message than the chat had.
async fn say(h: &Harness, chat: i64, text: &str) -> SentMessage {
    let before = h.telegram.sent_to(chat).len();
    h.telegram.user_sends(chat, text);
    let got = h.telegram.wait_for_sent(chat, before + 1, WAIT).await;
    assert!(got.len() > before, "no reply to {:?}", text.chars().take(40).collect::<String>());
    got[before].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bot_answers_garbage_helpfully_and_keeps_working() {
    const CHAT: i64 = 3201;
    let h = Harness::start(Options::default()).await.expect("harness");
    h.telegram.add_user(CHAT, "Resident", Some("uk"));
    let long = "ї".repeat(5_000);
    // (input, what the reply must echo or say besides pointing to /subscribe or /help)
    let cases: [(&str, &str); 4] =
        [("asdf qwerty", "asdf qwerty"), ("/weather", "/weather"), (&long, "задовге"), ("/", "Не знаю команди")];
    for (input, marker) in cases {
        let reply = say(&h, CHAT, input).await;
        let shown: String = input.chars().take(40).collect();
        assert!(reply.text.contains(marker), "reply to {shown:?} lacks {marker:?}: {}", reply.text);
        assert!(
            reply.text.contains("/subscribe") || reply.text.contains("/help"),
            "reply to {shown:?} does not point to /subscribe or /help: {}",
            reply.text
        );
    }
    // Still answering, and for real.
    let reply = say(&h, CHAT, "/subscribe Кіндрашівка").await;
    assert!(reply.text.contains("Кіндрашівка"), "{}", reply.text);
    // Exactly one reply each: the replies to one chat are sent in order, so anything
    // extra would have shown up before the last one.
    assert_eq!(h.telegram.sent_to(CHAT).len(), cases.len() + 1, "{:?}", texts(&h.telegram.sent_to(CHAT)));
    let sub = h.store().subscriber("telegram", &CHAT.to_string()).expect("store").expect("subscriber");
    let places: Vec<String> = h.store().places(sub.id).expect("places").iter().map(|p| p.to_string()).collect();
    assert_eq!(places, vec!["UA63080070010082928".to_string()], "subscribed to Kindrashivka village");
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_villages_of_one_name_are_told_apart_by_buttons() {
    const CHAT: i64 = 3301;
    let h = Harness::start(Options::default()).await.expect("harness");
    h.telegram.add_user(CHAT, "Resident", Some("uk"));
    let offer = say(&h, CHAT, "/subscribe Василівка").await;
    let markup = offer.reply_markup.as_ref().unwrap_or_else(|| panic!("no buttons: {}", offer.text));
    let data: Vec<String> = markup["inline_keyboard"]
        .as_array()
        .expect("inline keyboard")
        .iter()
        .flat_map(|row| row.as_array().cloned().unwrap_or_default())
        .map(|b| b["callback_data"].as_str().expect("callback data").to_owned())
        .collect();
    assert_eq!(data.len(), 2, "two villages named Василівка: {markup}");
    let region = |d: &str| d.strip_prefix("sub:").map(str::to_owned).unwrap_or_else(|| panic!("button data {d}"));
    let (first, second) = (region(&data[0]), region(&data[1]));
    assert_ne!(first, second);

    let sub = h.store().subscriber("telegram", &CHAT.to_string()).expect("store").expect("subscriber");
    let places =
        || -> Vec<String> { h.store().places(sub.id).expect("places").iter().map(|p| p.to_string()).collect() };
    let press = |data: &str| {
        let before = h.telegram.sent_to(CHAT).len();
        h.telegram.user_presses(CHAT, offer.message_id, data);
        before
    };
    let before = press(&data[1]);
    let got = h.telegram.wait_for_sent(CHAT, before + 1, WAIT).await;
    assert!(got.len() > before, "no reply to the button");
    assert!(got[before].text.contains("Василівка"), "{}", got[before].text);
    assert_eq!(places(), vec![second.clone()], "the second button subscribes to the second village");

    let before = press(&data[0]);
    let got = h.telegram.wait_for_sent(CHAT, before + 1, WAIT).await;
    assert!(got.len() > before, "no reply to the button");
    let mut both = vec![first, second];
    both.sort();
    assert_eq!(places(), both, "the first button is the other village");
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flooding_chat_is_cut_short_and_others_are_not_held_back() {
    const FLOODER: i64 = 3401;
    const NEIGHBOUR: i64 = 3402;
    let h = Harness::start(Options::default()).await.expect("harness");
    h.telegram.add_user(FLOODER, "Flooder", Some("uk"));
    h.telegram.add_user(NEIGHBOUR, "Neighbour", Some("uk"));
    for _ in 0..40 {
        h.telegram.user_sends(FLOODER, "/help");
    }
    // Another resident is answered at once, not after the flood.
    let reply = say(&h, NEIGHBOUR, "/start").await;
    assert!(reply.text.contains("/subscribe"), "{}", reply.text);
    // The flooder's queue drains at one reply a second; wait until it stops growing.
    let mut seen = 0;
    loop {
        let now = h.telegram.wait_for_sent(FLOODER, seen + 1, Duration::from_secs(3)).await.len();
        if now == seen {
            break;
        }
        seen = now;
    }
    assert!(seen >= 5, "the flooder still gets answers: {seen}");
    assert!(seen < 40, "a flood is not answered message by message: {seen}");
    // Once the flood is over, the chat is answered normally again.
    let reply = say(&h, FLOODER, "/list").await;
    assert!(reply.text.contains("/subscribe"), "{}", reply.text);
    assert_eq!(h.telegram.stats().rate_limited, 0, "replies stayed within the limits");
    h.shutdown().await;
}
