//! A running daemon takes the imported codifier on its next reload: a resident of a
//! village no hand-written file names subscribes by name, and an air raid the feed
//! reports by that village's hromada uid reaches them.

mod common;

use common::*;
use sirena::alerts::{AlertKind, Transition};
use sirena::channels::ChannelKind;
use sirena::config::codifier::{FeedList, KeepFeedIds, import};
use sirena::demo::{Harness, Options};
use sirena::regions::Level;
use sirena::sim::feed::SimAlert;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daemon_reloads_the_imported_codifier_and_alerts_reach_a_generated_village() {
    let Some(data) = shared_data() else { return };
    const CHAT: i64 = 3701;
    let mut h = Harness::start(Options::default()).await.expect("harness");
    let mut reloads = h.daemon.reloads.clone();
    tokio::time::timeout(WAIT, reloads.wait_for(|g| *g >= 1)).await.expect("first reload").expect("daemon alive");
    let before = *reloads.borrow_and_update();
    let lists = [
        FeedList::AlertsInUa(data.join("alerts_in_ua/locations_hierarchy.json")),
        FeedList::UkraineAlarm(data.join("ukrainealarm/regions_v3_2022-07.json")),
    ];
    import(&data.join("katottg/kodifikator-16-05-2025.csv"), &h.config_dir, &lists, KeepFeedIds::Refuse)
        .expect("import");
    tokio::time::timeout(WAIT, reloads.wait_for(|g| *g > before)).await.expect("reloaded").expect("daemon alive");

    // A Volyn village whose name no other place has, in a hromada the feed names.
    let config = sirena::config::load(&h.config_dir).unwrap_or_else(|e| panic!("{e}"));
    let tree = &config.tree;
    let (village, hromada) = tree
        .iter()
        .filter(|r| r.level == Level::Village && r.id.as_str().starts_with("UA07"))
        .filter_map(|r| Some((r, tree.get(r.parent.as_ref()?)?)))
        .find(|(v, h)| h.feed_id.is_some() && tree.search(&v.name.uk).regions.len() == 1)
        .expect("a village of its own name");
    let oblast = tree.get(&sirena::regions::RegionId::parse("UA07000000000024379").expect("id")).expect("Volyn");

    h.telegram.add_user(CHAT, "Resident", Some("uk"));
    h.telegram.user_sends(CHAT, &format!("/subscribe {}", village.name.uk));
    let got = h.telegram.wait_for_sent(CHAT, 1, WAIT).await;
    assert!(got.first().is_some_and(|m| m.text.contains(&village.name.uk)), "{:?}", texts(&got));
    let sub =
        h.store().subscriber(ChannelKind::TelegramChat, &CHAT.to_string()).await.expect("store").expect("subscriber");
    let places: Vec<String> = h.store().places(sub.id).await.expect("places").iter().map(|p| p.to_string()).collect();
    assert_eq!(places, vec![village.id.to_string()]);

    let uid = hromada.feed_id.expect("uid");
    h.feed.set_alerts(vec![SimAlert {
        location_uid: uid,
        location_title: format!("{} територіальна громада", hromada.name.uk.trim_end_matches(" громада")),
        location_type: "hromada".into(),
        location_oblast: oblast.name.uk.clone(),
        location_oblast_uid: oblast.feed_id.expect("oblast uid"),
        alert_type: "air_raid".into(),
        started_at: chrono::Utc::now(),
        katottg: None,
        ..SimAlert::default()
    }]);
    let fanout = h
        .next_fanout(WAIT, |f| f.event.kind == AlertKind::AirRaid && f.event.transition == Transition::Started)
        .await
        .expect("air raid on the hromada");
    assert_eq!(fanout.event.targets, vec![hromada.id.clone()]);
    let got = h.telegram.wait_for_sent(CHAT, 2, WAIT).await;
    assert_eq!(got.len(), 2, "{:?}", texts(&got));
    h.shutdown().await;
}
