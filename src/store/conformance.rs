//! The behaviour every [`Store`] implementation must have, as one suite of cases.
//!
//! `tests/store.rs` runs [`run`] over every implementation (SQLite on a file and in
//! memory, PostgreSQL in a throwaway database). A case takes a fresh, empty store and
//! panics with a message naming what broke.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use chrono::{DateTime, Utc};

use super::*;
use crate::alerts::{AlertKind, EventDetail, Transition};

type Case = fn(Arc<dyn Store>) -> Pin<Box<dyn Future<Output = ()> + Send>>;

/// Every case, by name.
pub const CASES: &[(&str, Case)] = &[
    ("enqueue_is_idempotent", |s| Box::pin(enqueue_is_idempotent(s))),
    ("claim_takes_a_chats_due_rows_together_in_priority_order", |s| Box::pin(claim_groups_by_chat(s))),
    ("claim_honours_kind_range_busy_and_not_before", |s| Box::pin(claim_filters(s))),
    ("finished_rows_are_never_claimed_again", |s| Box::pin(finished_rows_stay_final(s))),
    ("only_expired_leases_are_requeued", |s| Box::pin(leases(s))),
    ("delivery_reports_move_only_sent_rows", |s| Box::pin(reports(s))),
    ("an_all_clear_goes_to_whoever_was_told", |s| Box::pin(told_about(s))),
    ("subscribers_deactivate_reactivate_and_follow_their_address", |s| Box::pin(subscriber_lifecycle(s))),
    ("places_import_and_region_channels", |s| Box::pin(places_and_channels(s))),
    ("an_export_is_what_import_takes", |s| Box::pin(export_round_trips(s))),
    ("a_large_enqueue_is_complete", |s| Box::pin(large_enqueue(s))),
    ("events_and_small_state_round_trip", |s| Box::pin(events_and_kv(s))),
    ("place_labels_filters_and_chat_settings_round_trip", |s| Box::pin(bot_memory(s))),
    ("forget_leaves_nothing_of_a_chat", |s| Box::pin(forget(s))),
    ("the_audit_log_reads_in_time_order_from_since", |s| Box::pin(audit_log(s))),
    ("drills_are_opt_in_and_a_correction_reaches_who_got_the_event", |s| Box::pin(drills_and_corrections(s))),
    ("progress_and_receipts_count_an_events_deliveries", |s| Box::pin(progress_and_receipts(s))),
    ("retention_purges_finished_rows_of_subjects_that_are_over", |s| Box::pin(retention(s))),
    ("a_shared_point_is_kept_with_its_place", |s| Box::pin(place_points(s))),
    ("an_sms_fallback_is_linked_and_unlinked", |s| Box::pin(sms_links(s))),
    ("a_second_help_request_for_an_order_updates_the_first", |s| Box::pin(help_requests(s))),
    ("retention_deletes_help_requests_only_of_orders_that_ended", |s| Box::pin(help_retention(s))),
];

/// Runs every case, each on a fresh store from `make`. A failing case panics; the
/// cases printed before it passed.
pub async fn run<F, Fut>(make: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = Arc<dyn Store>>,
{
    for (name, case) in CASES {
        let started = std::time::Instant::now();
        case(make().await).await;
        println!("store conformance: {name} ok ({} ms)", started.elapsed().as_millis());
    }
}

fn t(secs: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(1_700_000_000 + secs, 0).unwrap_or_default()
}

fn region(s: &str) -> RegionId {
    RegionId::parse(s).unwrap_or_else(|e| panic!("{e}"))
}

const OBLAST: &str = "UA63000000000041885";
const CITY: &str = "UA63120270010096107";

/// An alert event of occurrence `tag`; events of one tag share a subject.
fn alert(tag: &str, transition: Transition, priority: Priority) -> Event {
    Event {
        id: EventId(format!("air_raid:{OBLAST}:{tag}:{}", transition.as_str())),
        kind: AlertKind::AirRaid,
        transition,
        revision: 1,
        targets: vec![region(OBLAST)],
        reach: Default::default(),
        at: t(0),
        priority,
        detail: EventDetail::Alert {
            started_at: t(0),
            raw_kind: None,
            subject: None,
            level: None,
            threats: vec![],
            texts: vec![],
        },
    }
}

async fn chat(store: &dyn Store, address: &str) -> SubscriberId {
    store.upsert_subscriber(ChannelKind::TelegramChat, address, Lang::Uk).await.expect("upsert").subscriber.id
}

fn claim(kind: ChannelKind, chats: usize, node: i64, now_ms: i64) -> Claim {
    Claim {
        kind,
        priorities: Priority::MandatoryEvacuation..=Priority::Info,
        chats,
        busy: vec![],
        node: NodeId(node),
        now_ms,
        lease_until_ms: now_ms + 60_000,
    }
}

fn subscribers_of(rows: &[Claimed]) -> Vec<SubscriberId> {
    let mut s: Vec<SubscriberId> = rows.iter().map(|r| r.key.subscriber).collect();
    s.sort();
    s.dedup();
    s
}

async fn enqueue_is_idempotent(store: Arc<dyn Store>) {
    let a = chat(&*store, "1").await;
    let b = chat(&*store, "2").await;
    let e = alert("idem", Transition::Started, Priority::OtherStart);
    assert!(!store.event_complete(&e.id).await.expect("complete"));
    let first = store.enqueue(&e, Audience::Subscribers(vec![a, b]), None).await.expect("enqueue");
    assert_eq!(first, Enqueued { event_new: true, deliveries: 2 });
    let again = store.enqueue(&e, Audience::Subscribers(vec![a, b]), None).await.expect("enqueue");
    assert_eq!(again, Enqueued { event_new: false, deliveries: 0 }, "enqueueing twice is a no-op");
    assert!(store.event_complete(&e.id).await.expect("complete"));
    let counts = store.counts().await.expect("counts");
    assert_eq!((counts.pending, counts.total()), (2, 2), "{counts:?}");
    assert!(!store.drained().await.expect("drained"));
}

async fn claim_groups_by_chat(store: Arc<dyn Store>) {
    let a = chat(&*store, "10").await;
    let b = chat(&*store, "11").await;
    let info = alert("info", Transition::Started, Priority::Info);
    let end = alert("end", Transition::Ended, Priority::End);
    let mandatory = alert("mandatory", Transition::Started, Priority::MandatoryEvacuation);
    store.enqueue(&info, Audience::Subscribers(vec![a]), None).await.expect("enqueue");
    store.enqueue(&end, Audience::Subscribers(vec![a]), None).await.expect("enqueue");
    store.enqueue(&mandatory, Audience::Subscribers(vec![b]), Some(now_ms() + 5_000)).await.expect("enqueue");
    let now = now_ms();
    let first = store.claim(claim(ChannelKind::TelegramChat, 1, 1, now)).await.expect("claim");
    assert_eq!(subscribers_of(&first), vec![b], "the chat with the highest class goes first: {first:?}");
    assert_eq!(first[0].priority, Priority::MandatoryEvacuation);
    assert!(first[0].deadline_ms.is_some());
    assert_eq!(first[0].attempts, 1);
    let second = store.claim(claim(ChannelKind::TelegramChat, 1, 1, now)).await.expect("claim");
    assert_eq!(second.len(), 2, "both of a chat's due rows come together: {second:?}");
    assert_eq!(subscribers_of(&second), vec![a]);
    assert!(store.claim(claim(ChannelKind::TelegramChat, 5, 1, now)).await.expect("claim").is_empty());
    assert_eq!(store.counts().await.expect("counts").sending, 3);
}

async fn claim_filters(store: Arc<dyn Store>) {
    let a = chat(&*store, "20").await;
    let b = chat(&*store, "21").await;
    let sms = store.upsert_subscriber(ChannelKind::Sms, "+380501234567", Lang::Uk).await.expect("upsert").subscriber.id;
    let e = alert("filters", Transition::Started, Priority::OtherStart);
    store.enqueue(&e, Audience::Subscribers(vec![a, b, sms]), None).await.expect("enqueue");
    let now = now_ms();
    let mut only_top = claim(ChannelKind::TelegramChat, 10, 1, now);
    only_top.priorities = Priority::MandatoryEvacuation..=Priority::NuclearChemical;
    assert!(store.claim(only_top).await.expect("claim").is_empty(), "outside the priority range");
    let mut not_b = claim(ChannelKind::TelegramChat, 10, 1, now);
    not_b.busy = vec![b];
    let got = store.claim(not_b).await.expect("claim");
    assert_eq!(subscribers_of(&got), vec![a], "busy chats are skipped and SMS is another channel: {got:?}");
    // b's row goes back with a delay: not due before it.
    let got_b = store.claim(claim(ChannelKind::TelegramChat, 10, 1, now)).await.expect("claim");
    assert_eq!(subscribers_of(&got_b), vec![b]);
    let later = now + 30_000;
    let retry = Finished { key: got_b[0].key, finish: Finish::Retry { not_before_ms: later, error: "502".into() } };
    store.finish(NodeId(1), vec![retry]).await.expect("finish");
    assert_eq!(store.next_due(ChannelKind::TelegramChat).await.expect("next"), Some(later));
    assert!(store.claim(claim(ChannelKind::TelegramChat, 10, 1, now)).await.expect("claim").is_empty());
    let due = store.claim(claim(ChannelKind::TelegramChat, 10, 1, later)).await.expect("claim");
    assert_eq!(subscribers_of(&due), vec![b], "due once its time has come");
    assert_eq!(due[0].attempts, 2);
    let sms_rows = store.claim(claim(ChannelKind::Sms, 10, 1, now)).await.expect("claim");
    assert_eq!(sms_rows.len(), 1);
    assert_eq!(sms_rows[0].kind, ChannelKind::Sms);
    assert_eq!(sms_rows[0].address, "+380501234567");
}

async fn finished_rows_stay_final(store: Arc<dyn Store>) {
    let mut subs = Vec::new();
    for i in 0..5 {
        subs.push(chat(&*store, &format!("3{i}")).await);
    }
    let e = alert("final", Transition::Started, Priority::OtherStart);
    store.enqueue(&e, Audience::Subscribers(subs.clone()), None).await.expect("enqueue");
    let now = now_ms();
    let rows = store.claim(claim(ChannelKind::TelegramChat, 10, 1, now)).await.expect("claim");
    assert_eq!(rows.len(), 5);
    let finishes = [
        Finish::Sent { platform_id: "m1".into() },
        Finish::Failed { error: "400".into() },
        Finish::Superseded,
        Finish::Expired { reason: "late".into() },
        Finish::Sent { platform_id: "m2".into() },
    ];
    let done = rows.iter().zip(finishes).map(|(r, finish)| Finished { key: r.key, finish }).collect();
    store.finish(NodeId(1), done).await.expect("finish");
    let c = store.counts().await.expect("counts");
    assert_eq!((c.sent, c.failed, c.superseded, c.expired, c.pending, c.sending), (2, 1, 1, 1, 0, 0), "{c:?}");
    assert!(store.drained().await.expect("drained"));
    assert_eq!(store.requeue_expired_leases(now + 3_600_000).await.expect("requeue"), 0);
    assert!(store.claim(claim(ChannelKind::TelegramChat, 10, 2, now + 3_600_000)).await.expect("claim").is_empty());
}

async fn leases(store: Arc<dyn Store>) {
    let a = chat(&*store, "40").await;
    let b = chat(&*store, "41").await;
    let e = alert("lease", Transition::Started, Priority::OtherStart);
    store.enqueue(&e, Audience::Subscribers(vec![a, b]), None).await.expect("enqueue");
    let now = now_ms();
    let mut first = claim(ChannelKind::TelegramChat, 1, 1, now);
    first.lease_until_ms = now + 1_000;
    let held_by_1 = store.claim(first).await.expect("claim");
    let mut second = claim(ChannelKind::TelegramChat, 1, 2, now);
    second.lease_until_ms = now + 100_000;
    let held_by_2 = store.claim(second).await.expect("claim");
    assert_eq!(held_by_1.len() + held_by_2.len(), 2);
    // Node 1 renews; node 2 dies. Only node 2's lease runs out.
    assert_eq!(store.renew_leases(NodeId(1), now + 200_000).await.expect("renew"), 1);
    assert_eq!(store.requeue_expired_leases(now + 150_000).await.expect("requeue"), 1, "only the expired lease");
    let taken = store.claim(claim(ChannelKind::TelegramChat, 5, 3, now + 150_000)).await.expect("claim");
    assert_eq!(taken.iter().map(|r| r.key).collect::<Vec<_>>(), held_by_2.iter().map(|r| r.key).collect::<Vec<_>>());
    // Node 2 comes back late with an answer: the row is node 3's now and stays so.
    let late = Finished { key: held_by_2[0].key, finish: Finish::Sent { platform_id: "late".into() } };
    store.finish(NodeId(2), vec![late]).await.expect("finish");
    assert_eq!(store.counts().await.expect("counts").sending, 2, "a stale node cannot finish a row it lost");
    // A clean stop of node 1 hands its work back at once.
    assert_eq!(store.release(NodeId(1)).await.expect("release"), 1);
    assert_eq!(store.counts().await.expect("counts").pending, 1);
}

async fn reports(store: Arc<dyn Store>) {
    let phones = ["+380501234560", "+380501234561", "+380501234562", "+380501234563"];
    let mut subs = Vec::new();
    for p in phones {
        subs.push(store.upsert_subscriber(ChannelKind::Sms, p, Lang::Uk).await.expect("upsert").subscriber.id);
    }
    let tg = chat(&*store, "70").await;
    let first = alert("report-a", Transition::Started, Priority::OtherStart);
    let second = alert("report-b", Transition::Started, Priority::OtherStart);
    store.enqueue(&first, Audience::Subscribers(subs.clone()), None).await.expect("enqueue");
    store.enqueue(&second, Audience::Subscribers(vec![subs[0], tg]), None).await.expect("enqueue");
    let now = now_ms();
    // Before anything is sent, a report changes nothing.
    assert_eq!(store.report(ChannelKind::Sms, "gw:m0", Report::Delivered).await.expect("report"), 0);
    let rows = store.claim(claim(ChannelKind::Sms, 10, 1, now)).await.expect("claim");
    assert_eq!(rows.len(), 5, "four phones, the first with two events");
    // The first phone's two events went out as one message, m0; the others one each.
    let id = |r: &Claimed| format!("gw:m{}", subs.iter().position(|&s| s == r.key.subscriber).unwrap_or(9));
    let done = rows.iter().map(|r| Finished { key: r.key, finish: Finish::Sent { platform_id: id(r) } }).collect();
    store.finish(NodeId(1), done).await.expect("finish");
    let tg_rows = store.claim(claim(ChannelKind::TelegramChat, 10, 1, now)).await.expect("claim");
    let done = tg_rows.iter().map(|r| Finished { key: r.key, finish: Finish::Sent { platform_id: "gw:m0".into() } });
    store.finish(NodeId(1), done.collect()).await.expect("finish");

    assert_eq!(
        store.report(ChannelKind::Sms, "gw:m0", Report::Delivered).await.expect("report"),
        2,
        "both rows of one message"
    );
    assert_eq!(store.report(ChannelKind::Sms, "gw:m0", Report::Delivered).await.expect("report"), 0, "replayed");
    let undelivered = Report::Undelivered { error: "30003".into() };
    assert_eq!(store.report(ChannelKind::Sms, "gw:m1", undelivered.clone()).await.expect("report"), 1);
    assert_eq!(store.report(ChannelKind::Sms, "gw:m0", undelivered).await.expect("report"), 0, "final stays final");
    assert_eq!(store.report(ChannelKind::Sms, "other:m2", Report::Delivered).await.expect("report"), 0, "unknown id");
    let retry = Report::Retry { not_before_ms: now + 60_000, error: "14107".into() };
    assert_eq!(store.report(ChannelKind::Sms, "gw:m2", retry).await.expect("report"), 1);
    let c = store.counts().await.expect("counts");
    assert_eq!((c.delivered, c.undelivered, c.pending, c.sent), (2, 1, 1, 2), "{c:?}");
    let by = store.counts_by_channel().await.expect("counts by channel");
    assert_eq!(by.keys().copied().collect::<Vec<_>>(), vec![ChannelKind::TelegramChat, ChannelKind::Sms]);
    let (sms, tg) = (by[&ChannelKind::Sms], by[&ChannelKind::TelegramChat]);
    assert_eq!((sms.delivered, sms.undelivered, sms.pending, sms.sent), (2, 1, 1, 1), "{sms:?}");
    assert_eq!((tg.sent, tg.total()), (1, 1), "{tg:?}");
    // The retried one is queued again, not before its time; a Telegram row with the
    // same platform id was never touched.
    assert!(store.claim(claim(ChannelKind::Sms, 10, 1, now + 1_000)).await.expect("claim").is_empty());
    let again = store.claim(claim(ChannelKind::Sms, 10, 1, now + 61_000)).await.expect("claim");
    assert_eq!(again.iter().map(|r| r.key.subscriber).collect::<Vec<_>>(), vec![subs[2]]);
    assert_eq!(again[0].attempts, 2);
}

async fn told_about(store: Arc<dyn Store>) {
    let told = chat(&*store, "50").await;
    let queued = chat(&*store, "51").await;
    let expired = chat(&*store, "52").await;
    let gone = chat(&*store, "53").await;
    let never = chat(&*store, "54").await;
    let start = alert("told", Transition::Started, Priority::OtherStart);
    store.enqueue(&start, Audience::Subscribers(vec![told, queued, expired, gone]), None).await.expect("enqueue");
    let now = now_ms();
    let mut c = claim(ChannelKind::TelegramChat, 10, 1, now);
    c.busy = vec![queued];
    let rows = store.claim(c).await.expect("claim");
    let finish = |s: SubscriberId| {
        if s == told { Finish::Sent { platform_id: "1".into() } } else { Finish::Expired { reason: "late".into() } }
    };
    let done = rows
        .iter()
        .filter(|r| r.key.subscriber != gone)
        .map(|r| Finished { key: r.key, finish: finish(r.key.subscriber) })
        .collect();
    store.finish(NodeId(1), done).await.expect("finish");
    store.deactivate(gone, "blocked").await.expect("deactivate");
    let end = alert("told", Transition::Ended, Priority::End);
    let got = store.enqueue(&end, Audience::ToldAbout(end.subject()), None).await.expect("enqueue");
    assert_eq!(got.deliveries, 2, "the told and the still-queued get the all-clear, nobody else");
    let rows = store.claim(claim(ChannelKind::TelegramChat, 10, 1, now)).await.expect("claim");
    let ends: Vec<SubscriberId> = {
        let mut v: Vec<_> = rows.iter().filter(|r| r.priority == Priority::End).map(|r| r.key.subscriber).collect();
        v.sort();
        v
    };
    assert_eq!(ends, vec![told, queued]);
    assert!(!ends.contains(&never) && !ends.contains(&expired));
}

async fn subscriber_lifecycle(store: Arc<dyn Store>) {
    let up = store.upsert_subscriber(ChannelKind::TelegramChat, "60", Lang::Uk).await.expect("upsert");
    assert!(up.created && !up.reactivated);
    let id = up.subscriber.id;
    assert!(store.add_place(id, &region(CITY)).await.expect("place"));
    assert!(!store.add_place(id, &region(CITY)).await.expect("place"), "a place is added once");
    let e1 = alert("life1", Transition::Started, Priority::OtherStart);
    store.enqueue(&e1, Audience::Subscribers(vec![id]), None).await.expect("enqueue");
    store.set_lang(id, Lang::En).await.expect("lang");
    let rows = store.claim(claim(ChannelKind::TelegramChat, 5, 1, now_ms())).await.expect("claim");
    assert_eq!(rows[0].lang, Lang::En, "queued deliveries follow a language change");
    store.release(NodeId(1)).await.expect("release");
    // The chat moves: queued deliveries follow it.
    store.rewrite_address(ChannelKind::TelegramChat, "60", "-1001").await.expect("rewrite");
    let rows = store.claim(claim(ChannelKind::TelegramChat, 5, 1, now_ms())).await.expect("claim");
    assert_eq!(rows[0].address, "-1001");
    store.release(NodeId(1)).await.expect("release");
    assert!(store.subscriber(ChannelKind::TelegramChat, "60").await.expect("lookup").is_none());
    // Blocked: queued deliveries fail, places stop matching, and coming back reactivates.
    assert_eq!(store.deactivate(id, "blocked").await.expect("deactivate"), 1);
    assert!(store.active_places().await.expect("places").is_empty());
    let e2 = alert("life2", Transition::Started, Priority::OtherStart);
    assert_eq!(store.enqueue(&e2, Audience::Subscribers(vec![id]), None).await.expect("enqueue").deliveries, 0);
    let back = store.upsert_subscriber(ChannelKind::TelegramChat, "-1001", Lang::Uk).await.expect("upsert");
    assert!(back.reactivated && !back.created && back.subscriber.active);
    assert_eq!(back.subscriber.lang, Lang::En, "coming back keeps the chosen language");
    assert_eq!(store.active_places().await.expect("places"), vec![(id, region(CITY))]);
    assert_eq!(store.counts().await.expect("counts").failed, 1);
}

async fn places_and_channels(store: Arc<dyn Store>) {
    let id = chat(&*store, "70").await;
    store.add_place(id, &region(CITY)).await.expect("place");
    store.add_place(id, &region(OBLAST)).await.expect("place");
    assert_eq!(store.places(id).await.expect("places"), vec![region(OBLAST), region(CITY)], "in code order");
    assert_eq!(store.remove_places(id, Some(&region(CITY))).await.expect("remove"), vec![region(CITY)]);
    assert_eq!(store.remove_places(id, None).await.expect("remove"), vec![region(OBLAST)]);
    assert!(store.places(id).await.expect("places").is_empty());

    let rows = (0..3)
        .map(|i| Import {
            kind: ChannelKind::Sms,
            address: format!("+38050000000{i}"),
            lang: Lang::Uk,
            places: vec![region(CITY)],
        })
        .collect::<Vec<_>>();
    assert_eq!(store.import(rows.clone()).await.expect("import"), 3);
    assert_eq!(store.import(rows).await.expect("import"), 0, "importing again creates nobody");
    assert_eq!(store.active_places().await.expect("places").len(), 3);

    let channel = |address: &str, r: &str| RegionChannel { address: address.into(), lang: Lang::Uk, region: region(r) };
    let first = store.sync_region_channels(vec![channel("@kharkiv_alerts", OBLAST)]).await.expect("sync");
    assert_eq!(first.added.len(), 1);
    assert!(first.removed.is_empty());
    let again = store.sync_region_channels(vec![channel("@kharkiv_alerts", OBLAST)]).await.expect("sync");
    assert_eq!(again, PlaceChanges::default(), "an unchanged list changes nothing");
    let swapped = store.sync_region_channels(vec![channel("@kharkiv_city", CITY)]).await.expect("sync");
    assert_eq!(swapped.added.len(), 1);
    assert_eq!(swapped.removed, first.added, "a channel no longer configured is dropped");
    let old = store.subscriber(ChannelKind::TelegramChannel, "@kharkiv_alerts").await.expect("lookup");
    assert!(old.is_some_and(|s| !s.active));
}

async fn bot_memory(store: Arc<dyn Store>) {
    use crate::dispatch::quiet::QuietHours;
    let id = chat(&*store, "71").await;
    let other = chat(&*store, "72").await;
    store.add_place(id, &region(CITY)).await.expect("place");
    store.add_place(id, &region(OBLAST)).await.expect("place");
    store.add_place(other, &region(CITY)).await.expect("place");
    let settings = store.place_settings(id).await.expect("settings");
    let order: Vec<RegionId> = settings.iter().map(|p| p.region.clone()).collect();
    assert_eq!(order, vec![region(CITY), region(OBLAST)], "in the order added: the first is home");
    assert!(settings.iter().all(|p| p.label.is_none() && p.kinds.is_none()), "{settings:?}");

    assert!(store.set_place_label(id, &region(OBLAST), Some("батьки <b>")).await.expect("label"));
    assert!(!store.set_place_label(id, &region("UA46060250010015970"), Some("x")).await.expect("label"));
    let kinds = [AlertKind::Evacuation, AlertKind::AirRaid];
    assert!(store.set_place_kinds(id, &region(OBLAST), Some(&kinds)).await.expect("kinds"));
    let settings = store.place_settings(id).await.expect("settings");
    assert_eq!(settings[1].label.as_deref(), Some("батьки <b>"));
    assert_eq!(settings[1].kinds.as_deref(), Some(&kinds[..]));
    assert_eq!(settings[0].kinds, None, "the other place keeps every kind");
    assert_eq!(store.filtered_places(None).await.expect("filtered"), vec![(id, region(OBLAST), kinds.to_vec())]);
    assert!(store.filtered_places(Some(other)).await.expect("filtered").is_empty());
    assert!(store.set_place_kinds(id, &region(OBLAST), None).await.expect("kinds"));
    assert!(store.filtered_places(None).await.expect("filtered").is_empty(), "back to every kind");
    store.set_place_kinds(id, &region(OBLAST), Some(&kinds)).await.expect("kinds");
    store.deactivate(id, "blocked").await.expect("deactivate");
    assert!(store.filtered_places(None).await.expect("filtered").is_empty(), "inactive ones do not count");
    store.upsert_subscriber(ChannelKind::TelegramChat, "71", Lang::Uk).await.expect("back");

    assert_eq!(store.chat_settings(id).await.expect("chat"), ChatSettings::default());
    let night = QuietHours { from: 23 * 60, to: 7 * 60 };
    let set = ChatSettings { dialog: Some(r#"{"naming":"x"}"#.into()), quiet: Some(night), paused: true };
    store.set_chat_settings(id, &set).await.expect("set");
    assert_eq!(store.chat_settings(id).await.expect("chat"), set);
    let cleared = ChatSettings { dialog: None, quiet: Some(night), paused: false };
    store.set_chat_settings(id, &cleared).await.expect("set");
    assert_eq!(store.chat_settings(id).await.expect("chat"), cleared);
    assert_eq!(
        store.quiet_hours(vec![id, other]).await.expect("quiet"),
        vec![Quiet { subscriber: id, hours: night, home: Some(region(CITY)) }],
        "only those with quiet hours, with their first place"
    );
}

async fn forget(store: Arc<dyn Store>) {
    let id = chat(&*store, "73").await;
    let kept = chat(&*store, "74").await;
    for s in [id, kept] {
        store.add_place(s, &region(CITY)).await.expect("place");
        store
            .set_chat_settings(s, &ChatSettings { dialog: Some("x".into()), ..Default::default() })
            .await
            .expect("set");
    }
    store.add_place(id, &region(OBLAST)).await.expect("place");
    // What else a chat leaves: a shared point, a help request, an SMS fallback link.
    store.set_place_point(id, &region(CITY), Point { lat: 49.7, lon: 37.6 }).await.expect("point");
    let sms = store.upsert_subscriber(ChannelKind::Sms, "+380501230073", Lang::Uk).await.expect("sms").subscriber.id;
    store.link_sms(id, sms).await.expect("link");
    let request = HelpRequest {
        subscriber: id,
        address: String::new(),
        order: "kupiansk-1".into(),
        region: region(CITY),
        people: Some(2),
        mobility: None,
        phone: Some("+380501230073".into()),
        step: HelpStep::Done,
        created_ms: 1,
        updated_ms: 1,
    };
    store.save_help_request(&request).await.expect("help");
    let e = alert("f", Transition::Started, Priority::OtherStart);
    store.enqueue(&e, Audience::Subscribers(vec![id, kept]), None).await.expect("enqueue");
    assert_eq!(store.forget(id).await.expect("forget"), vec![region(OBLAST), region(CITY)]);
    assert!(store.place_points(id).await.expect("points").is_empty());
    assert!(store.help_request(id, None).await.expect("help").is_none(), "the help request is gone");
    assert_eq!(store.linked_sms(id).await.expect("linked"), None);
    assert!(store.places(id).await.expect("places").is_empty());
    assert_eq!(store.chat_settings(id).await.expect("chat"), ChatSettings::default());
    let gone = store.subscriber(ChannelKind::TelegramChat, "73").await.expect("lookup");
    assert!(gone.is_some_and(|s| !s.active), "no more deliveries");
    let claimed = store.claim(claim(ChannelKind::TelegramChat, 10, 1, now_ms())).await.expect("claim");
    assert_eq!(subscribers_of(&claimed), vec![kept], "the forgotten chat's queued delivery is gone");
    assert_eq!(store.places(kept).await.expect("places"), vec![region(CITY)], "another chat keeps its own");
    assert_eq!(store.chat_settings(kept).await.expect("chat").dialog.as_deref(), Some("x"));
    assert!(store.forget(id).await.expect("again").is_empty(), "forgetting twice is harmless");
}

async fn export_round_trips(store: Arc<dyn Store>) {
    assert!(store.export().await.expect("export").is_empty());
    let import = |kind, address: &str, lang, places: &[&str]| Import {
        kind,
        address: address.into(),
        lang,
        places: places.iter().map(|p| region(p)).collect(),
    };
    let rows = vec![
        import(ChannelKind::TelegramChat, "91", Lang::Uk, &[CITY]),
        import(ChannelKind::TelegramChat, "90", Lang::En, &[CITY]),
        import(ChannelKind::Sms, "+380501234567", Lang::Uk, &[CITY, OBLAST]),
    ];
    assert_eq!(store.import(rows).await.expect("import"), 3);
    chat(&*store, "92").await;
    let gone = store.subscriber(ChannelKind::TelegramChat, "91").await.expect("lookup").expect("imported");
    store.deactivate(gone.id, "blocked").await.expect("deactivate");
    let exported = store.export().await.expect("export");
    assert_eq!(
        exported,
        vec![
            import(ChannelKind::Sms, "+380501234567", Lang::Uk, &[OBLAST, CITY]),
            import(ChannelKind::TelegramChat, "90", Lang::En, &[CITY]),
        ],
        "active subscribers with places, by channel, address and place; their languages kept"
    );
    assert_eq!(store.import(exported.clone()).await.expect("import"), 0);
    assert_eq!(store.export().await.expect("export"), exported, "importing an export changes nothing");
}

async fn large_enqueue(store: Arc<dyn Store>) {
    let n = 60_000;
    let rows = (0..n)
        .map(|i| Import {
            kind: ChannelKind::TelegramChat,
            address: format!("{}", 1_000_000 + i),
            lang: Lang::Uk,
            places: vec![region(CITY)],
        })
        .collect();
    store.import(rows).await.expect("import");
    let all: Vec<SubscriberId> = store.active_places().await.expect("places").into_iter().map(|(s, _)| s).collect();
    assert_eq!(all.len(), n);
    let e = alert("large", Transition::Started, Priority::OtherStart);
    let got = store.enqueue(&e, Audience::Subscribers(all), None).await.expect("enqueue");
    assert_eq!(got.deliveries, n, "every chunk of a large enqueue is written");
    assert!(store.event_complete(&e.id).await.expect("complete"));
    assert_eq!(store.counts().await.expect("counts").pending, n as u64);
}

async fn events_and_kv(store: Arc<dyn Store>) {
    let id = chat(&*store, "80").await;
    let start = alert("round", Transition::Started, Priority::OtherStart);
    let end = alert("round", Transition::Ended, Priority::End);
    store.enqueue(&start, Audience::Subscribers(vec![id]), None).await.expect("enqueue");
    assert_eq!(store.latest_event(&start.subject()).await.expect("latest").as_ref(), Some(&start));
    store.enqueue(&end, Audience::ToldAbout(end.subject()), None).await.expect("enqueue");
    assert_eq!(store.latest_event(&start.subject()).await.expect("latest").as_ref(), Some(&end));
    assert!(store.latest_event("air_raid:nowhere").await.expect("latest").is_none());
    let rows = store.claim(claim(ChannelKind::TelegramChat, 5, 1, now_ms())).await.expect("claim");
    let refs: Vec<EventRef> = rows.iter().map(|r| r.key.event).collect();
    let events = store.events(refs).await.expect("events");
    let mut ids: Vec<&str> = events.iter().map(|(_, e)| e.id.0.as_str()).collect();
    ids.sort();
    assert_eq!(ids, vec![end.id.0.as_str(), start.id.0.as_str()]);
    assert_eq!(store.kv_get("k").await.expect("get"), None);
    store.kv_put("k", "v1").await.expect("put");
    store.kv_put("k", "v2").await.expect("put");
    assert_eq!(store.kv_get("k").await.expect("get").as_deref(), Some("v2"));
}

async fn audit_log(store: Arc<dyn Store>) {
    assert!(store.audit(None).await.expect("audit").is_empty());
    let entry = |at_ms: i64, who: &str, action: &str| AuditEntry {
        at_ms,
        who: who.to_owned(),
        action: action.to_owned(),
        what: format!("{action} by {who}"),
    };
    // Written out of time order: the log reads in time order.
    store.audit_append(entry(2_000, "config", "config_applied")).await.expect("append");
    store.audit_append(entry(1_000, "42", "broadcast_drafted")).await.expect("append");
    store.audit_append(entry(3_000, "43", "broadcast_approved")).await.expect("append");
    let all = store.audit(None).await.expect("audit");
    assert_eq!(all.iter().map(|e| e.at_ms).collect::<Vec<_>>(), vec![1_000, 2_000, 3_000], "oldest first: {all:?}");
    assert_eq!(all[0], entry(1_000, "42", "broadcast_drafted"));
    let since = store.audit(Some(2_000)).await.expect("audit");
    assert_eq!(
        since.iter().map(|e| e.action.as_str()).collect::<Vec<_>>(),
        vec!["config_applied", "broadcast_approved"]
    );
}

async fn drills_and_corrections(store: Arc<dyn Store>) {
    let (a, b, c) = (chat(&*store, "91").await, chat(&*store, "92").await, chat(&*store, "93").await);
    assert!(store.drill_subscribers().await.expect("drills").is_empty(), "drills are opt-in");
    store.set_drills(a, true).await.expect("on");
    store.set_drills(b, true).await.expect("on");
    store.set_drills(b, false).await.expect("off");
    store.set_drills(c, true).await.expect("on");
    store.deactivate(c, "blocked").await.expect("deactivate");
    assert_eq!(store.drill_subscribers().await.expect("drills"), vec![a], "inactive and opted-out left out");

    let start = alert("corr", Transition::Started, Priority::OtherStart);
    store.enqueue(&start, Audience::Subscribers(vec![a, b]), None).await.expect("enqueue");
    assert_eq!(store.received(&start.id).await.expect("received"), vec![a, b], "queued rows count");
    // b's delivery fails: b never got it, so a correction is not for b.
    let rows = store.claim(claim(ChannelKind::TelegramChat, 5, 1, now_ms())).await.expect("claim");
    let done = rows
        .iter()
        .map(|r| Finished {
            key: r.key,
            finish: if r.key.subscriber == a {
                Finish::Sent { platform_id: "1".into() }
            } else {
                Finish::Failed { error: "x".into() }
            },
        })
        .collect();
    store.finish(NodeId(1), done).await.expect("finish");
    assert_eq!(store.received(&start.id).await.expect("received"), vec![a]);
    assert!(store.received(&EventId("nothing".into())).await.expect("received").is_empty());
}

async fn progress_and_receipts(store: Arc<dyn Store>) {
    let (a, b) = (chat(&*store, "95").await, chat(&*store, "96").await);
    let first = alert("p1", Transition::Started, Priority::OtherStart);
    let second = alert("p2", Transition::Started, Priority::OtherStart);
    store.enqueue(&first, Audience::Subscribers(vec![a, b]), None).await.expect("enqueue");
    let rows = store.claim(claim(ChannelKind::TelegramChat, 1, 1, now_ms())).await.expect("claim");
    assert_eq!(rows.len(), 1);
    let sent_key = rows[0].key;
    store
        .finish(NodeId(1), vec![Finished { key: sent_key, finish: Finish::Sent { platform_id: "7".into() } }])
        .await
        .expect("finish");
    store.enqueue(&second, Audience::Subscribers(vec![a]), None).await.expect("enqueue");

    let progress = store.progress(10).await.expect("progress");
    assert_eq!(
        progress.iter().map(|p| p.event.id.clone()).collect::<Vec<_>>(),
        vec![second.id.clone(), first.id.clone()]
    );
    assert_eq!((progress[1].counts.sent, progress[1].counts.pending), (1, 1), "{:?}", progress[1].counts);
    assert_eq!(progress[0].counts.pending, 1);
    assert_eq!(store.progress(1).await.expect("progress").len(), 1, "newest only");

    let (created, receipts) = store.receipts(&first.id).await.expect("receipts").expect("known event");
    assert!(created > 0);
    assert_eq!(receipts.len(), 2);
    let sent: Vec<&Receipt> = receipts.iter().filter(|r| r.state == DeliveryState::Sent).collect();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].kind, ChannelKind::TelegramChat);
    assert_eq!(sent[0].attempts, 1);
    assert!(sent[0].sent_at_ms.is_some_and(|t| t >= created), "{receipts:?}");
    assert!(receipts.iter().any(|r| r.state == DeliveryState::Pending && r.sent_at_ms.is_none()));
    assert!(store.receipts(&EventId("nothing".into())).await.expect("receipts").is_none());
    assert_eq!(store.event(&first.id).await.expect("event"), Some(first.clone()));
    assert_eq!(store.event(&EventId("nothing".into())).await.expect("event"), None);
}

async fn retention(store: Arc<dyn Store>) {
    let a = chat(&*store, "97").await;
    // An alert that ended, one still going on: both of their starts were sent.
    let over = alert("over", Transition::Started, Priority::OtherStart);
    let over_end = alert("over", Transition::Ended, Priority::End);
    let going = alert("going", Transition::Started, Priority::OtherStart);
    for e in [&over, &going] {
        store.enqueue(e, Audience::Subscribers(vec![a]), None).await.expect("enqueue");
        let rows = store.claim(claim(ChannelKind::TelegramChat, 1, 1, now_ms())).await.expect("claim");
        let done = rows.iter().map(|r| Finished { key: r.key, finish: Finish::Sent { platform_id: "1".into() } });
        store.finish(NodeId(1), done.collect()).await.expect("finish");
    }
    store.enqueue(&over_end, Audience::ToldAbout(over_end.subject()), None).await.expect("enqueue");
    assert_eq!(store.counts().await.expect("counts").pending, 1, "the all-clear is queued");

    // A cut-off in the past keeps everything.
    assert_eq!(store.purge_finished(now_ms() - 3_600_000).await.expect("purge"), 0);
    let removed = store.purge_finished(now_ms() + 3_600_000).await.expect("purge");
    assert_eq!(removed, 1, "only the finished start of the ended alert goes");
    let counts = store.counts().await.expect("counts");
    assert_eq!((counts.sent, counts.pending), (1, 1), "{counts:?}");
    // The alert still going on keeps its row, so its all-clear finds its reader.
    assert_eq!(store.received(&going.id).await.expect("received"), vec![a]);
    assert!(store.received(&over.id).await.expect("received").is_empty());
}

async fn place_points(store: Arc<dyn Store>) {
    let id = chat(&*store, "80").await;
    let other = chat(&*store, "81").await;
    store.add_place(id, &region(CITY)).await.expect("place");
    store.add_place(other, &region(CITY)).await.expect("place");
    let at = Point { lat: 49.99, lon: 36.23 };
    store.set_place_point(id, &region(CITY), at).await.expect("point");
    assert_eq!(store.place_points(id).await.expect("points"), vec![(region(CITY), at)]);
    assert!(store.place_points(other).await.expect("points").is_empty(), "another chat's place has no point");
    let moved = Point { lat: 50.0, lon: 36.3 };
    store.set_place_point(id, &region(CITY), moved).await.expect("point");
    assert_eq!(store.place_points(id).await.expect("points"), vec![(region(CITY), moved)], "replaced, not added");
    store.remove_places(id, Some(&region(CITY))).await.expect("remove");
    assert!(store.place_points(id).await.expect("points").is_empty(), "a removed place's point is gone");
}

async fn sms_links(store: Arc<dyn Store>) {
    let tg = chat(&*store, "90").await;
    let sms = store.upsert_subscriber(ChannelKind::Sms, "+380501234567", Lang::Uk).await.expect("sms").subscriber.id;
    assert_eq!(store.linked_sms(tg).await.expect("linked"), None);
    store.link_sms(tg, sms).await.expect("link");
    store.link_sms(tg, sms).await.expect("linking twice is fine");
    assert_eq!(store.linked_sms(tg).await.expect("linked"), Some(sms));
    assert_eq!(store.unlink_sms(tg).await.expect("unlink"), Some(sms));
    assert_eq!(store.unlink_sms(tg).await.expect("unlink"), None, "nothing left to unlink");
    assert_eq!(store.linked_sms(tg).await.expect("linked"), None);
}

async fn help_requests(store: Arc<dyn Store>) {
    let a = chat(&*store, "100").await;
    let b = chat(&*store, "101").await;
    let request = |subscriber, order: &str, at: i64| HelpRequest {
        subscriber,
        address: String::new(),
        order: order.into(),
        region: region(CITY),
        people: None,
        mobility: None,
        phone: None,
        step: HelpStep::People,
        created_ms: at,
        updated_ms: at,
    };
    assert!(store.save_help_request(&request(a, "kupiansk-1", 1_000)).await.expect("save"), "new");
    assert!(store.save_help_request(&request(b, "kupiansk-1", 2_000)).await.expect("save"));
    assert!(store.save_help_request(&request(a, "kharkiv-2", 3_000)).await.expect("save"));
    let mut second = request(a, "kupiansk-1", 4_000);
    second.people = Some(3);
    second.mobility = Some("wheelchair".into());
    second.phone = Some("+380501234567".into());
    second.step = HelpStep::Done;
    assert!(!store.save_help_request(&second).await.expect("save"), "a second press updates");

    let all = store.help_requests(None).await.expect("list");
    assert_eq!(all.len(), 3, "no duplicate: {all:?}");
    let one = store.help_requests(Some("kupiansk-1")).await.expect("list");
    assert_eq!(one.iter().map(|r| r.subscriber).collect::<Vec<_>>(), vec![a, b], "oldest first");
    let first = &one[0];
    assert_eq!(
        (first.people, first.mobility.as_deref(), first.phone.as_deref()),
        (Some(3), Some("wheelchair"), Some("+380501234567"))
    );
    assert_eq!((first.step, first.created_ms, first.updated_ms), (HelpStep::Done, 1_000, 4_000), "created kept");
    assert_eq!(first.address, "100");
    let latest = store.help_request(a, None).await.expect("latest").expect("some");
    assert_eq!(latest.order, "kupiansk-1", "the one changed last");
    let by_order = store.help_request(a, Some("kharkiv-2")).await.expect("one").expect("some");
    assert_eq!(by_order.step, HelpStep::People);
    assert_eq!(store.help_request(b, Some("kharkiv-2")).await.expect("none"), None);
}

/// An evacuation order as a region file would give it, on one city, with nothing
/// but its id and status (also for other modules' tests).
pub fn evacuation(id: &str, status: crate::alerts::orders::OrderStatus) -> crate::alerts::orders::Order {
    crate::alerts::orders::Order {
        id: id.into(),
        status,
        targets: vec![region(CITY)],
        issued_at: t(0).fixed_offset(),
        expires_at: None,
        destination: None,
        transport: None,
        hotline: None,
        who: None,
        text: None,
        assembly_points: vec![],
    }
}

async fn help_retention(store: Arc<dyn Store>) {
    use crate::alerts::orders::{OrderBook, OrderStatus::*};
    let a = chat(&*store, "110").await;
    let ask = |order: &str| HelpRequest {
        subscriber: a,
        address: String::new(),
        order: order.into(),
        region: region(CITY),
        people: Some(1),
        mobility: None,
        phone: None,
        step: HelpStep::Done,
        created_ms: 1_000,
        updated_ms: 1_000,
    };
    // in-force: never ended. lifted: ended. cancelled: cancelled. reissued: ended, then
    // in force again. corrected: in force, one of its messages withdrawn by an operator.
    // unknown: no stored event at all (the steps below give it no status).
    let orders = ["in-force", "lifted", "cancelled", "reissued", "corrected", "unknown"];
    for o in orders {
        store.save_help_request(&ask(o)).await.expect("save");
    }
    let mut book = OrderBook::default();
    let steps = [
        [Mandatory, Mandatory, Mandatory, Mandatory, Mandatory],
        [Mandatory, Lifted, Mandatory, Lifted, Mandatory],
        [Mandatory, Lifted, Cancelled, Mandatory, Mandatory],
    ];
    let mut stored = Vec::new();
    for statuses in steps {
        let set: Vec<_> = orders.iter().zip(statuses).map(|(id, s)| evacuation(id, s)).collect();
        for event in book.apply(&set, t(0)) {
            store.enqueue(&event, Audience::Subscribers(vec![a]), None).await.expect("enqueue");
            stored.push(event);
        }
    }
    // An operator withdraws a message of an order in force, and one of an order that
    // has ended since: neither changes whether the order is over.
    for subject in ["evacuation:corrected", "evacuation:lifted"] {
        let started = stored.iter().find(|e| e.subject() == subject).expect("started").clone();
        let correction = Event {
            id: EventId(format!("correction:{}", started.id)),
            transition: Transition::Cancelled,
            at: t(1),
            detail: EventDetail::Correction { original: Box::new(started.clone()), by: 7 },
            ..started
        };
        store.enqueue(&correction, Audience::Subscribers(vec![a]), None).await.expect("enqueue");
    }
    let ended = |subject: &str, transition: Transition| {
        let e = stored.iter().find(|e| e.subject() == subject && e.transition == transition);
        e.unwrap_or_else(|| panic!("{subject} has no {transition:?} event: {stored:?}")).id.clone()
    };
    let mut ends = Vec::new();
    for id in [ended("evacuation:lifted", Transition::Ended), ended("evacuation:cancelled", Transition::Cancelled)] {
        ends.push(store.receipts(&id).await.expect("receipts").expect("stored").0);
    }
    let left = |requests: Vec<HelpRequest>| requests.into_iter().map(|r| r.order).collect::<Vec<_>>();

    // Ended, but not before the cut-off: kept.
    let earliest = ends.iter().copied().min().unwrap_or_default();
    assert_eq!(store.purge_help_requests(earliest).await.expect("purge"), 0, "an order ended at the cut-off is kept");
    assert_eq!(store.help_requests(None).await.expect("list").len(), orders.len());
    let removed = store.purge_help_requests(now_ms() + 3_600_000).await.expect("purge");
    assert_eq!(
        left(store.help_requests(None).await.expect("list")),
        vec!["in-force", "reissued", "corrected", "unknown"],
        "only the lifted and the cancelled order's requests go"
    );
    assert_eq!(removed, 2);
    assert_eq!(store.purge_help_requests(now_ms() + 3_600_000).await.expect("purge"), 0, "nothing left to purge");
}
