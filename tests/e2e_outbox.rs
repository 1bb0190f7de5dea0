//! The outbox's promises through the real daemon: several things due for one chat go
//! out as one message; a start that ended before it was told is one line (or nothing);
//! late deliveries expire, counted; region channels get one post and never stop private
//! chats; a channel kind without an adapter fails its deliveries, counted; paid
//! broadcast is used only by the classes allowed it.
//!
//! "Due at once" is made deterministic with a real mechanism rather than timing: a
//! canary chat draws a bot-wide 429, which holds every send for its `retry_after`, and
//! the events under test are queued inside that hold.

mod common;

use std::time::Duration;

use common::*;
use sirena::alerts::{AlertKind, Priority, Transition};
use sirena::channels::ChannelKind;
use sirena::config::Deadlines;
use sirena::demo::{Harness, Options, kharkiv_air_raid, luhansk};
use sirena::dispatch::DispatchStats;
use sirena::messages::Lang;
use sirena::sim::feed::SimAlert;
use sirena::sim::telegram::{FaultTarget, SendFault};
use sirena::store::Import;

const LVIV_CITY: &str = "UA46060250010015970";
const CANARY: i64 = 9001;
const HOLD_S: u64 = 3;

fn lviv_air_raid() -> SimAlert {
    SimAlert {
        location_uid: 27,
        location_title: "Львівська область".into(),
        location_oblast: "Львівська область".into(),
        location_oblast_uid: 27,
        katottg: Some("UA46000000000026241".into()),
        ..kharkiv_air_raid()
    }
}

fn hromada_alert(uid: u32, title: &str) -> SimAlert {
    SimAlert {
        location_uid: uid,
        location_title: title.into(),
        location_type: "hromada".into(),
        alert_type: "artillery_shelling".into(),
        katottg: None,
        ..kharkiv_air_raid()
    }
}

/// Holds every send of the bot for `HOLD_S` seconds: a Lviv resident's air raid draws
/// a bot-wide 429. Returns once the simulator has answered the 429. `base` are the
/// alerts that stay in the feed.
async fn hold_sends(h: &mut Harness, base: Vec<SimAlert>) {
    h.telegram.inject(FaultTarget::Chat(CANARY), SendFault::TooManyRequests { retry_after: HOLD_S }, 1);
    let mut alerts = base;
    alerts.push(lviv_air_raid());
    h.feed.set_alerts(alerts);
    let telegram = h.telegram.clone();
    wait_until("the canary's 429", || telegram.send_requests().iter().any(|r| r.status == 429)).await;
}

/// The operator adds a mandatory evacuation of Kindrashivka hromada.
fn add_order(h: &Harness, id: &str) {
    let order = format!(
        r#"
[[evacuation]]
id = "{id}"
status = "mandatory"
targets = ["{KINDRASHIVKA_HROMADA}"]
issued_at = 2023-11-06T08:00:00+02:00
hotline = "0 800 000 000"
"#
    );
    let text = std::fs::read_to_string(h.config_dir.join("regions/kharkiv.toml")).expect("file");
    h.write_region_file("kharkiv.toml", &format!("{text}{order}")).expect("write");
}

async fn with_canary(opts: Options) -> Harness {
    let h = Harness::start(opts).await.expect("harness");
    h.add_resident(CANARY, LVIV_CITY, Lang::Uk).await.expect("canary");
    h
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_alerts_for_one_resident_due_at_once_are_one_message() {
    const CHAT: i64 = 4001;
    let mut h = with_canary(Options::default()).await;
    let id = h.add_resident(CHAT, KINDRASHIVKA, Lang::Uk).await.expect("resident");
    for place in ["UA63080090010026457", "UA63080050000048455"] {
        // Kupiansk city and Dvorichna hromada: three places, three hromadas.
        let place = sirena::regions::RegionId::parse(place).expect("id");
        h.store().add_place(id, &place).await.expect("place");
        let _ = h.daemon.deltas.send(sirena::matcher::IndexDelta::Added { subscriber: id, places: vec![place] });
    }
    hold_sends(&mut h, vec![luhansk()]).await;
    h.feed.set_alerts(vec![
        luhansk(),
        lviv_air_raid(),
        hromada_alert(1307, "Дворічанська територіальна громада"),
        hromada_alert(1308, "Кіндрашівська територіальна громада"),
        hromada_alert(1309, "Куп’янська територіальна громада"),
    ]);
    for _ in 0..3 {
        let f = h.next_fanout(WAIT, started(AlertKind::Artillery)).await.expect("artillery");
        assert_eq!(f.event.priority, Priority::LocalThreat, "a hromada alert is a threat in one's own place");
    }
    h.wait_drained(WAIT).await.expect("drained");
    let got = h.telegram.sent_to(CHAT);
    assert_eq!(got.len(), 1, "one message per chat per update: {:?}", texts(&got));
    let parts: Vec<&str> = got[0].text.split("\n\n").collect();
    assert_eq!(parts.len(), 3, "{}", got[0].text);
    for hromada in ["Дворічанська громада", "Кіндрашівська громада", "Куп’янська громада"]
    {
        assert!(got[0].text.contains(hromada), "{hromada} missing: {}", got[0].text);
    }
    assert_eq!(DispatchStats::get(&h.daemon.stats.coalesced), 1);
    h.shutdown().await;
}

/// Kharkiv city residents, and a start and its end both queued for them inside a hold.
async fn start_and_end_inside_a_hold(superseded: &'static str) -> Harness {
    let opts = Options { superseded, seed: sirena::bench::residents(4100, 3, KHARKIV_CITY), ..Options::default() };
    let mut h = with_canary(opts).await;
    hold_sends(&mut h, vec![luhansk()]).await;
    h.feed.set_alerts(vec![luhansk(), lviv_air_raid(), kharkiv_air_raid()]);
    let on_kharkiv = |f: &sirena::daemon::Fanout| f.event.targets.iter().any(|t| t.as_str() == KHARKIV_OBLAST);
    h.next_fanout(WAIT, |f| started(AlertKind::AirRaid)(f) && on_kharkiv(f)).await.expect("start");
    h.feed.set_alerts(vec![luhansk(), lviv_air_raid()]);
    let end = h.next_fanout(WAIT, |f| ended(AlertKind::AirRaid)(f) && on_kharkiv(f)).await.expect("end");
    assert_eq!(end.recipients, 3, "the still-queued start counts as told: they get the end");
    h.wait_drained(WAIT).await.expect("drained");
    h
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_start_that_ended_before_it_was_told_is_one_line() {
    let h = start_and_end_inside_a_hold("line").await;
    for chat in 4100..4103 {
        let got = h.telegram.sent_to(chat);
        assert_eq!(got.len(), 1, "{:?}", texts(&got));
        let text = &got[0].text;
        assert!(text.starts_with("🟢 Повітряна тривога: Харківська область, ") && text.ends_with(", відбій"), "{text}");
        assert!(got[0].disable_notification, "news already over does not ring");
    }
    let counts = h.store().counts().await.expect("counts");
    assert_eq!((counts.superseded, counts.sent), (3, 3 + 1), "the starts superseded, the ends sent: {counts:?}");
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_start_that_ended_before_it_was_told_can_be_nothing() {
    let h = start_and_end_inside_a_hold("nothing").await;
    each_got(&h, 4100..4103, 0);
    let counts = h.store().counts().await.expect("counts");
    assert_eq!(counts.superseded, 6, "start and end superseded, counted: {counts:?}");
    assert_eq!(DispatchStats::get(&h.daemon.stats.superseded), 6);
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_start_past_its_deadline_expires_counted_and_an_order_does_not() {
    let deadlines = Deadlines { other_start: Some(Duration::from_secs(1)), ..Deadlines::default() };
    let opts = Options { deadlines, seed: sirena::bench::residents(4200, 5, KINDRASHIVKA), ..Options::default() };
    let mut h = with_canary(opts).await;
    hold_sends(&mut h, vec![luhansk()]).await;
    h.feed.set_alerts(vec![luhansk(), lviv_air_raid(), kharkiv_air_raid()]);
    h.next_fanout(WAIT, |f| started(AlertKind::AirRaid)(f) && f.recipients == 5).await.expect("air raid");
    add_order(&h, "deadline-test");
    h.next_fanout(WAIT, started(AlertKind::Evacuation)).await.expect("order");
    h.wait_drained(WAIT).await.expect("drained");
    for chat in 4200..4205 {
        let got = h.telegram.sent_to(chat);
        assert_eq!(got.len(), 1, "{:?}", texts(&got));
        assert!(
            got[0].text.starts_with("🚨 <b>Обов’язкова евакуація"),
            "the order, without the stale start: {}",
            got[0].text
        );
        assert!(!got[0].text.contains("Повітряна тривога"), "{}", got[0].text);
    }
    // The five stale starts, and the canary's own start, whose 429 asked for a wait
    // longer than its one-second deadline.
    let counts = h.store().counts().await.expect("counts");
    assert_eq!(counts.expired, 6, "{counts:?}");
    assert_eq!(DispatchStats::get(&h.daemon.stats.expired), 6);
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_region_channel_gets_one_post_and_its_403_keeps_private_chats_flowing() {
    const CHANNEL_ID: i64 = -1_001_000_000_022;
    let opts = Options {
        seed: sirena::bench::residents(4300, 20, KHARKIV_CITY),
        region_channels: vec![(KHARKIV_OBLAST.into(), "@sirena_kharkiv".into())],
        ..Options::default()
    };
    let mut h = Harness::start(opts).await.expect("harness");
    h.telegram.add_channel(CHANNEL_ID, Some("sirena_kharkiv"), "Харківщина", false);
    h.feed.set_alerts(vec![kharkiv_air_raid()]);
    let f = h.next_fanout(WAIT, started(AlertKind::AirRaid)).await.expect("air raid");
    assert_eq!(f.recipients, 21, "twenty residents and the channel");
    h.wait_drained(WAIT).await.expect("drained");
    each_got(&h, 4300..4320, 1);
    assert!(h.telegram.sent_to(CHANNEL_ID).is_empty(), "the bot is not an admin there");
    assert_eq!(DispatchStats::get(&h.daemon.stats.channel_errors), 1, "counted as an operator error");
    assert_eq!(DispatchStats::get(&h.daemon.stats.deactivated), 0, "a channel is never deactivated like a person");
    let channel = h.store().subscriber(ChannelKind::TelegramChannel, "@sirena_kharkiv").await.expect("store");
    assert!(channel.is_some_and(|c| c.active));

    // The operator makes the bot an admin: the next event is posted, once.
    h.telegram.set_channel_admin(CHANNEL_ID, true);
    h.feed.set_alerts(vec![kharkiv_air_raid(), SimAlert { alert_type: "chemical".into(), ..kharkiv_air_raid() }]);
    h.next_fanout(WAIT, started(AlertKind::Chemical)).await.expect("chemical");
    h.wait_drained(WAIT).await.expect("drained");
    let posts = h.telegram.sent_to(CHANNEL_ID);
    assert_eq!(posts.len(), 1, "{:?}", texts(&posts));
    assert!(
        posts[0].text.contains("Хімічна загроза") && posts[0].text.contains("#Харківська_область"),
        "{}",
        posts[0].text
    );
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_sms_delivery_without_a_gateway_is_a_counted_failure_never_a_telegram_send() {
    const PHONE: &str = "+380501234567";
    let mut seed = sirena::bench::residents(4400, 2, KHARKIV_CITY);
    seed.push(Import {
        kind: ChannelKind::Sms,
        address: PHONE.into(),
        lang: Lang::Uk,
        places: vec![sirena::regions::RegionId::parse(KHARKIV_CITY).expect("id")],
    });
    let mut h = Harness::start(Options { seed, ..Options::default() }).await.expect("harness");
    h.feed.set_alerts(vec![kharkiv_air_raid()]);
    let f = h.next_fanout(WAIT, started(AlertKind::AirRaid)).await.expect("air raid");
    assert_eq!(f.recipients, 3);
    h.wait_drained(WAIT).await.expect("drained");
    each_got(&h, 4400..4402, 1);
    let counts = h.store().counts().await.expect("counts");
    assert_eq!((counts.sent, counts.failed), (2, 1), "{counts:?}");
    assert_eq!(DispatchStats::get(&h.daemon.stats.unconfigured), 1);
    let to_phone =
        h.telegram.send_requests().into_iter().filter(|r| r.body.to_string().contains("380501234567")).count();
    assert_eq!(to_phone, 0, "an SMS delivery never goes out through Telegram");
    let sms = h.store().subscriber(ChannelKind::Sms, PHONE).await.expect("store");
    assert!(sms.is_some_and(|s| s.active), "a missing gateway is not the subscriber's fault");
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paid_broadcast_is_used_only_by_the_classes_allowed_it() {
    let opts = Options {
        paid_broadcast: vec![Priority::MandatoryEvacuation],
        seed: [sirena::bench::residents(4500, 2, KINDRASHIVKA), sirena::bench::residents(4600, 2, KHARKIV_CITY)]
            .concat(),
        ..Options::default()
    };
    let mut h = Harness::start(opts).await.expect("harness");
    h.feed.set_alerts(vec![kharkiv_air_raid()]);
    h.next_fanout(WAIT, started(AlertKind::AirRaid)).await.expect("air raid");
    h.wait_drained(WAIT).await.expect("drained");
    add_order(&h, "paid-test");
    let f = h.next_fanout(WAIT, |f| f.event.kind == AlertKind::Evacuation && f.event.transition == Transition::Started);
    f.await.expect("order");
    h.wait_drained(WAIT).await.expect("drained");
    for r in h.telegram.send_requests().into_iter().filter(|r| r.status == 200) {
        let paid = r.body.get("allow_paid_broadcast").and_then(|v| v.as_bool()).unwrap_or(false);
        let is_order = r.body.get("text").and_then(|t| t.as_str()).is_some_and(|t| t.contains("евакуація"));
        assert_eq!(paid, is_order, "allow_paid_broadcast on {:?}", r.body.get("text"));
    }
    assert_eq!(h.telegram.stats().paid, 2);
    h.shutdown().await;
}
