//! The daemon across restarts and config reloads, over loopback with both simulators.

use std::time::Duration;

use sirena::alerts::{AlertKind, Transition};
use sirena::demo::{Harness, Options, kharkiv_air_raid};
use sirena::messages::Lang;
use sirena::pipeline::Notice;

const WAIT: Duration = Duration::from_secs(20);

async fn resident(h: &Harness, chat: i64, place: &str) {
    h.add_resident(chat, place, Lang::Uk).await.expect("resident");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_alert_that_ends_across_a_restart_gets_its_all_clear_once() {
    let mut h = Harness::start(Options::default()).await.expect("harness");
    resident(&h, 3001, "UA63120270010096107").await; // Kharkiv city
    h.feed.set_alerts(vec![kharkiv_air_raid()]);
    let started = h
        .next_fanout(WAIT, |f| f.event.kind == AlertKind::AirRaid && f.event.transition == Transition::Started)
        .await
        .expect("air raid started");
    assert_eq!(started.recipients, 1);
    h.wait_drained(WAIT).await.expect("delivered");

    // A restart while the alert is still on: the restarted daemon sees the same alert
    // and must not announce it again.
    h.stop_daemon().await;
    h.start_daemon().await.expect("restart");
    let since = h.feed.requests();
    h.wait_polls(since, 4, WAIT).await.expect("polling resumed");
    let replays: Vec<_> = h.drain_fanouts().into_iter().filter(|f| f.enqueued > 0).collect();
    assert!(replays.is_empty(), "restart re-sent: {:?}", replays.iter().map(|f| &f.event.id).collect::<Vec<_>>());

    // The alert ends while sirena is down (another oblast keeps the list non-empty).
    h.stop_daemon().await;
    let mut elsewhere = kharkiv_air_raid();
    elsewhere.location_uid = 27;
    elsewhere.location_title = "Львівська область".into();
    h.feed.set_alerts(vec![elsewhere]);
    h.start_daemon().await.expect("restart");
    let ended = h
        .next_fanout(WAIT, |f| f.event.kind == AlertKind::AirRaid && f.event.transition == Transition::Ended)
        .await
        .expect("the restored state knows the alert and announces its end");
    assert_eq!(ended.event.id.0.replace(":ended", ":started"), started.event.id.0);
    h.wait_drained(WAIT).await.expect("delivered");

    let got = h.telegram.sent_to(3001);
    assert_eq!(got.len(), 2, "start and all-clear, once each: {got:#?}");
    assert!(got[0].text.contains("Повітряна тривога") && !got[0].text.contains("Відбій"));
    assert!(got[1].text.contains("Відбій"));
    h.shutdown().await;
}

const ORDER: &str = r#"
[[evacuation]]
id = "reload-test"
status = "mandatory"
targets = ["UA63080070000080622"]
issued_at = 2023-11-06T08:00:00+02:00
destination = { uk = "Харків", en = "Kharkiv" }
hotline = "0 800 000 000"
"#;

/// Waits for the operators' notice that a config change was refused, and returns it.
async fn refused(notices: &mut tokio::sync::broadcast::Receiver<Notice>) -> Vec<String> {
    loop {
        match tokio::time::timeout(WAIT, notices.recv()).await.expect("a refusal notice").expect("daemon alive") {
            Notice::ConfigRefused { errors } => return errors,
            _ => continue,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalid_or_truncated_region_file_never_replaces_the_running_config() {
    let mut h = Harness::start(Options::default()).await.expect("harness");
    resident(&h, 3002, "UA63080070010082928").await; // Kindrashivka village
    let kharkiv = h.config_dir.join("regions/kharkiv.toml");
    let base = std::fs::read_to_string(&kharkiv).expect("region file");
    let mut notices = h.daemon.notices.subscribe();
    let mut reloads = h.daemon.reloads.clone();

    h.write_region_file("kharkiv.toml", &format!("{base}{ORDER}")).expect("write");
    h.next_fanout(WAIT, |f| f.event.kind == AlertKind::Evacuation && f.event.transition == Transition::Started)
        .await
        .expect("order announced");
    h.wait_drained(WAIT).await.expect("delivered");
    let applied = *reloads.borrow_and_update();

    // The operator deletes the order and, in the same save, breaks the file. Had the
    // broken file been taken, the order would have ended.
    let broken = base.replacen("level = \"oblast\"", "levle = \"oblast\"", 1);
    assert_ne!(broken, base, "the test must really break the file");
    h.write_region_file("kharkiv.toml", &broken).expect("write");
    let errors = refused(&mut notices).await;
    assert!(errors.iter().any(|e| e.contains("kharkiv.toml:") && e.contains("levle")), "{errors:?}");

    // A valid file without the order (saved half-written, just before its table) is
    // refused too: an order ends only when the operator says so.
    h.write_region_file("kharkiv.toml", &base).expect("write");
    let errors = refused(&mut notices).await;
    assert!(
        errors.iter().any(|e| e.contains("kharkiv.toml:") && e.contains("`reload-test` is in force")),
        "{errors:?}"
    );
    // An emptied file would drop the resident's village: refused, naming it.
    h.write_region_file("kharkiv.toml", "").expect("write");
    let errors = refused(&mut notices).await;
    assert!(errors.iter().any(|e| e.contains("Kindrashivka") && e.contains("1 resident")), "{errors:?}");
    assert_eq!(*reloads.borrow(), applied, "no refused change was applied");
    let stray = h.drain_fanouts();
    assert!(
        stray.is_empty(),
        "a refused change produced events: {:?}",
        stray.iter().map(|f| &f.event.id).collect::<Vec<_>>()
    );

    // The operator lifts the order: that change is taken and the order ends.
    h.write_region_file("kharkiv.toml", &format!("{base}{}", ORDER.replace("\"mandatory\"", "\"lifted\"")))
        .expect("write");
    h.next_fanout(WAIT, |f| f.event.kind == AlertKind::Evacuation && f.event.transition == Transition::Ended)
        .await
        .expect("order ended by the operator");
    h.wait_drained(WAIT).await.expect("delivered");
    let got = h.telegram.sent_to(3002);
    assert_eq!(got.len(), 2, "{got:#?}");
    assert!(got[0].text.contains("Обов’язкова евакуація"));
    assert!(got[1].text.contains("знято"));
    tokio::time::timeout(WAIT, reloads.wait_for(|g| *g > applied)).await.expect("applied").expect("alive");
    let lifted = *reloads.borrow();
    // Once lifted, removing it from the file is an ordinary change.
    h.write_region_file("kharkiv.toml", &base).expect("write");
    tokio::time::timeout(WAIT, reloads.wait_for(|g| *g > lifted)).await.expect("applied").expect("alive");
    h.shutdown().await;
}

/// Messages are rendered when they are sent, from the catalogue in force then: an
/// operator's rewording reaches the next message without a restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reworded_catalogue_reaches_the_next_message() {
    let mut h = Harness::start(Options::default()).await.expect("harness");
    resident(&h, 3003, "UA63120270010096107").await; // Kharkiv city
    h.feed.set_alerts(vec![kharkiv_air_raid()]);
    h.next_fanout(WAIT, |f| f.event.kind == AlertKind::AirRaid && f.event.transition == Transition::Started)
        .await
        .expect("air raid");
    h.wait_drained(WAIT).await.expect("delivered");
    let path = h.config_dir.join("locales/uk/alerts.ftl");
    let text = std::fs::read_to_string(&path).expect("catalogue");
    let reworded =
        text.replace("alert-kind-artillery = Загроза артобстрілу", "alert-kind-artillery = УВАГА: артобстріл");
    assert_ne!(reworded, text, "the test must really reword the message");
    let mut reloads = h.daemon.reloads.clone();
    // The watcher reloads once at start; count from after that one.
    tokio::time::timeout(WAIT, reloads.wait_for(|g| *g >= 1)).await.expect("first reload").expect("daemon alive");
    let before = *reloads.borrow_and_update();
    let tmp = h.config_dir.join("locales/uk/.alerts.ftl.tmp");
    std::fs::write(&tmp, reworded).expect("write");
    std::fs::rename(&tmp, &path).expect("rename");
    tokio::time::timeout(WAIT, reloads.wait_for(|g| *g > before)).await.expect("reloaded").expect("daemon alive");
    let shelling = sirena::sim::feed::SimAlert { alert_type: "artillery_shelling".into(), ..kharkiv_air_raid() };
    h.feed.set_alerts(vec![kharkiv_air_raid(), shelling]);
    h.next_fanout(WAIT, |f| f.event.kind == AlertKind::Artillery).await.expect("artillery");
    let got = h.telegram.wait_for_sent(3003, 2, WAIT).await;
    assert!(
        got.len() == 2 && got[1].text.contains("УВАГА: артобстріл"),
        "{:?}",
        got.iter().map(|m| &m.text).collect::<Vec<_>>()
    );
    h.shutdown().await;
}

/// The operator's day: an order is edited while the daemon runs (an assembly time
/// added) and residents get the update within that one reload, the operators' chat
/// is told what changed; then a broken edit is refused with its file and line while
/// an air raid still reaches residents on the last good config.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_order_edit_is_sent_and_a_broken_edit_is_refused_while_alerts_flow() {
    const OPERATOR: i64 = 777;
    let opts = Options { operators: vec![OPERATOR], ..Options::default() };
    let mut h = Harness::start(opts).await.expect("harness");
    h.telegram.add_user(OPERATOR, "Operator", Some("uk"));
    resident(&h, 3004, "UA63080070010082928").await; // Kindrashivka village
    resident(&h, 3005, "UA63120270010096107").await; // Kharkiv city
    let base = std::fs::read_to_string(h.config_dir.join("regions/kharkiv.toml")).expect("region file");
    let order = format!(
        "{ORDER}assembly_points = [{{ name = {{ uk = \"Школа\", en = \"School\" }}, place = \"UA63080070010082928\", times = [\"09:00\"] }}]\n"
    );
    let mut notices = h.daemon.notices.subscribe();
    let mut reloads = h.daemon.reloads.clone();

    h.write_region_file("kharkiv.toml", &format!("{base}{order}")).expect("write");
    h.next_fanout(WAIT, |f| f.event.kind == AlertKind::Evacuation && f.event.transition == Transition::Started)
        .await
        .expect("order announced");
    h.wait_drained(WAIT).await.expect("delivered");
    let before = *reloads.borrow_and_update();

    // The edit: a second departure at 15:00.
    let edited = order.replace("[\"09:00\"]", "[\"09:00\", \"15:00\"]");
    h.write_region_file("kharkiv.toml", &format!("{base}{edited}")).expect("write");
    let update = h
        .next_fanout(WAIT, |f| f.event.kind == AlertKind::Evacuation && f.event.transition == Transition::Updated)
        .await
        .expect("the update");
    tokio::time::timeout(WAIT, reloads.wait_for(|g| *g > before)).await.expect("applied").expect("alive");
    assert_eq!(*reloads.borrow(), before + 1, "the update came with one reload");
    assert_eq!(update.recipients, 1, "Kindrashivka only");
    // The first reload's notice (the order added) may still be queued.
    let told = loop {
        match tokio::time::timeout(WAIT, notices.recv()).await.expect("a reload notice").expect("alive") {
            Notice::ConfigApplied { generation, changes } if generation > before => break changes,
            _ => continue,
        }
    };
    assert!(
        told.iter().any(|c| matches!(c, sirena::config::diff::ConfigChange::OrderChanged { id, times_added, .. }
            if id == "reload-test" && times_added == &["15:00".to_owned()])),
        "{told:?}"
    );
    let to_operator = h.telegram.wait_for_sent(OPERATOR, 2, WAIT).await;
    assert!(
        to_operator.iter().any(|m| m.text.contains("reload-test") && m.text.contains("час збору 15:00 додано")),
        "{to_operator:#?}"
    );
    h.wait_drained(WAIT).await.expect("delivered");
    let got = h.telegram.sent_to(3004);
    assert_eq!(got.len(), 2, "the order and its update: {got:#?}");
    assert!(got[1].text.contains("15:00"), "{}", got[1].text);

    // A broken edit: refused at its line, the order stays as it was.
    let broken = format!("{base}{}", edited.replace("status = \"mandatory\"", "status = \"mandatroy\""));
    h.write_region_file("kharkiv.toml", &broken).expect("write");
    let errors = refused(&mut notices).await;
    let line = broken.lines().position(|l| l.contains("mandatroy")).map(|i| i + 1).expect("the line");
    assert!(
        errors.iter().any(|e| e.contains(&format!("kharkiv.toml:{line}:")) && e.contains("mandatroy")),
        "{errors:?}"
    );
    let applied = *reloads.borrow();

    // Alerts keep flowing on the last good config.
    h.feed.set_alerts(vec![kharkiv_air_raid()]);
    h.next_fanout(WAIT, |f| f.event.kind == AlertKind::AirRaid && f.event.transition == Transition::Started)
        .await
        .expect("the air raid");
    h.wait_drained(WAIT).await.expect("delivered");
    assert_eq!(h.telegram.sent_to(3005).len(), 1, "Kharkiv heard the air raid");
    assert_eq!(*reloads.borrow(), applied, "the broken file was never applied");
    h.shutdown().await;
}
