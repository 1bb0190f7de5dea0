//! Location shares, the SMS fallback opt-in and help to evacuate, through the real
//! daemon and the Telegram simulator (locations and contact cards in the Bot API's
//! own message shapes).

mod common;

use common::*;
use sirena::alerts::{AlertKind, Transition};
use sirena::channels::ChannelKind;
use sirena::demo::{Harness, Options};
use sirena::sim::telegram::SentMessage;
use sirena::store::{HelpStep, SubscriberId};

const KUPIANSK: &str = "UA63080090010026457";
const KHARKIV_OBLAST: &str = "UA63000000000041885";

/// Waits for the bot's next message to `chat` after `before` of them.
async fn next(h: &Harness, chat: i64, before: usize) -> SentMessage {
    let got = h.telegram.wait_for_sent(chat, before + 1, WAIT).await;
    assert!(got.len() > before, "no reply; so far: {:?}", texts(&got));
    got[before].clone()
}

/// Does `act`, then returns the bot's next message.
async fn after(h: &Harness, chat: i64, act: impl FnOnce()) -> SentMessage {
    let before = h.telegram.sent_to(chat).len();
    act();
    next(h, chat, before).await
}

fn buttons(m: &SentMessage) -> Vec<(String, String)> {
    let markup = m.reply_markup.as_ref().unwrap_or_else(|| panic!("no buttons: {}", m.text));
    markup["inline_keyboard"]
        .as_array()
        .unwrap_or_else(|| panic!("not inline: {markup}"))
        .iter()
        .flat_map(|row| row.as_array().cloned().unwrap_or_default())
        .map(|b| {
            (
                b["text"].as_str().unwrap_or_default().to_owned(),
                b["callback_data"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

async fn chat_id(h: &Harness, chat: i64) -> SubscriberId {
    h.store().subscriber(ChannelKind::TelegramChat, &chat.to_string()).await.expect("store").expect("subscriber").id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_location_in_kupiansk_offers_kupiansk_and_the_sea_and_poland_are_told_to_type_a_name() {
    const CHAT: i64 = 4101;
    let h = Harness::start(Options::default()).await.expect("harness");
    h.telegram.add_user(CHAT, "Resident", Some("uk"));

    // A street in Kupiansk, a kilometre from the city's point.
    let offer = after(&h, CHAT, || h.telegram.user_sends_location(CHAT, 49.71, 37.595)).await;
    assert!(offer.text.contains("Куп’янськ") && offer.text.contains("Куп’янський район"), "{}", offer.text);
    assert_eq!(buttons(&offer)[0].1, format!("sub:{KUPIANSK}"), "the conversation's subscribe button");
    let id = chat_id(&h, CHAT).await;
    assert!(h.store().places(id).await.expect("places").is_empty(), "offered, not subscribed");
    assert!(h.store().place_points(id).await.expect("points").is_empty(), "no point without its place");

    let done = after(&h, CHAT, || h.telegram.user_presses(CHAT, offer.message_id, &format!("sub:{KUPIANSK}"))).await;
    assert!(done.text.contains("Куп’янськ"), "{}", done.text);
    let places: Vec<String> = h.store().places(id).await.expect("places").iter().map(|p| p.to_string()).collect();
    assert_eq!(places, vec![KUPIANSK.to_owned()]);
    let points = h.store().place_points(id).await.expect("points");
    assert_eq!(points.len(), 1);
    assert_eq!(
        (points[0].0.as_str(), points[0].1.lat, points[0].1.lon),
        (KUPIANSK, 49.71, 37.595),
        "the point is kept"
    );

    // The Black Sea and Warsaw: a helpful answer, no button, nothing stored.
    for (lat, lon) in [(43.9, 32.5), (52.23, 21.01)] {
        let reply = after(&h, CHAT, || h.telegram.user_sends_location(CHAT, lat, lon)).await;
        assert!(reply.text.contains("поза Україною") && reply.text.contains("Напишіть назву"), "{}", reply.text);
        assert!(reply.reply_markup.is_none(), "{:?}", reply.reply_markup);
    }
    assert_eq!(h.store().places(id).await.expect("places").len(), 1);
    assert_eq!(h.store().place_points(id).await.expect("points").len(), 1);

    // With the operator's boundaries, a point far from any surveyed settlement is the
    // oblast that holds it; the sea is still the sea.
    if let Some(shared) = shared_data() {
        let mut reloads = h.daemon.reloads.clone();
        let seen = *reloads.borrow_and_update();
        let file = shared.join("geo/ralertsinua_oblasts_simplified.geojson");
        sirena::config::codifier::import_geo(&file, &h.config_dir).expect("import-geo");
        tokio::time::timeout(WAIT, reloads.wait_for(|n| *n > seen)).await.expect("reloaded").expect("daemon alive");
        // Balakliia district, 60 km from Kupiansk and Kharkiv.
        let reply = after(&h, CHAT, || h.telegram.user_sends_location(CHAT, 49.45, 36.85)).await;
        assert!(reply.text.contains("Харківська область"), "{}", reply.text);
        assert_eq!(buttons(&reply)[0].1, format!("sub:{KHARKIV_OBLAST}"));
        let sea = after(&h, CHAT, || h.telegram.user_sends_location(CHAT, 43.9, 32.5)).await;
        assert!(sea.text.contains("поза Україною"), "{}", sea.text);
    }
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sharing_ones_own_contact_adds_an_sms_fallback_that_sms_off_removes() {
    const CHAT: i64 = 4201;
    const PHONE: &str = "+380 50 123 45 67";
    let h = Harness::start(Options::default()).await.expect("harness");
    h.telegram.add_user(CHAT, "Resident", Some("uk"));
    h.telegram.user_sends(CHAT, "/subscribe Кіндрашівка");
    next(&h, CHAT, 0).await;

    let offer = after(&h, CHAT, || h.telegram.user_sends(CHAT, "/sms")).await;
    let markup = offer.reply_markup.as_ref().expect("a reply keyboard");
    assert_eq!(markup["keyboard"][0][0]["request_contact"], true, "{markup}");

    // Somebody else's card: refused, nothing stored.
    let refused = after(&h, CHAT, || h.telegram.user_sends_contact(CHAT, "+380671112233", false)).await;
    assert!(refused.text.contains("не ваш номер"), "{}", refused.text);
    assert!(h.store().subscriber(ChannelKind::Sms, "+380671112233").await.expect("store").is_none());

    let before = h.telegram.sent_to(CHAT).len();
    h.telegram.user_sends_contact(CHAT, PHONE, true);
    let got = h.telegram.wait_for_sent(CHAT, before + 2, WAIT).await;
    assert!(got.len() >= before + 2, "{:?}", texts(&got));
    let on = &got[before + 1];
    assert!(on.text.contains("+38050***4567"), "masked: {}", on.text);
    assert!(!on.text.contains("1234567"), "never the whole number: {}", on.text);
    let sms = h.store().subscriber(ChannelKind::Sms, "+380501234567").await.expect("store").expect("SMS subscriber");
    assert!(sms.active);
    let chat = chat_id(&h, CHAT).await;
    assert_eq!(h.store().places(sms.id).await.expect("places"), h.store().places(chat).await.expect("places"));
    assert_eq!(h.store().linked_sms(chat).await.expect("link"), Some(sms.id));

    let off = after(&h, CHAT, || h.telegram.user_sends(CHAT, "/sms off")).await;
    assert!(off.text.contains("вимкнено"), "{}", off.text);
    let sms = h.store().subscriber(ChannelKind::Sms, "+380501234567").await.expect("store").expect("kept, inactive");
    assert!(!sms.active);
    assert!(h.store().places(sms.id).await.expect("places").is_empty());
    assert_eq!(h.store().linked_sms(chat).await.expect("link"), None);
    let again = after(&h, CHAT, || h.telegram.user_sends(CHAT, "/sms off")).await;
    assert!(again.text.contains("не увімкнено"), "{}", again.text);
    h.shutdown().await;
}

const ORDER: &str = r#"
[[evacuation]]
id = "help-test"
status = "mandatory"
targets = ["UA63080070000080622"]
issued_at = 2023-11-06T08:00:00+02:00
destination = { uk = "Харків", en = "Kharkiv" }
hotline = "0 800 000 000"
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_evacuation_message_carries_help_and_a_second_press_updates_the_request() {
    const CHAT: i64 = 4301;
    let mut h = Harness::start(Options::default()).await.expect("harness");
    h.telegram.add_user(CHAT, "Resident", Some("uk"));
    h.telegram.user_sends(CHAT, "/subscribe Кіндрашівка");
    next(&h, CHAT, 0).await;
    let kharkiv = std::fs::read_to_string(h.config_dir.join("regions/kharkiv.toml")).expect("region file");
    let before = h.telegram.sent_to(CHAT).len();
    h.write_region_file("kharkiv.toml", &format!("{kharkiv}{ORDER}")).expect("write");
    h.next_fanout(WAIT, |f| f.event.kind == AlertKind::Evacuation && f.event.transition == Transition::Started)
        .await
        .expect("order announced");
    let order = next(&h, CHAT, before).await;
    let help = buttons(&order);
    assert_eq!(
        help,
        vec![("Потрібна допомога з евакуацією".to_owned(), "help:help-test:UA63080070000080622".to_owned())]
    );

    let press = |m: &SentMessage, data: &str| {
        let (id, data) = (m.message_id, data.to_owned());
        let tg = h.telegram.clone();
        move || tg.user_presses(CHAT, id, &data)
    };
    let people = after(&h, CHAT, press(&order, &help[0].1)).await;
    assert!(people.text.contains("Скільки людей") && people.text.contains("Кіндрашівка"), "{}", people.text);
    let mobility = after(&h, CHAT, press(&people, "help:p:3")).await;
    assert!(buttons(&mobility).iter().any(|(_, d)| d == "help:m:wheelchair"), "{:?}", buttons(&mobility));
    let phone = after(&h, CHAT, press(&mobility, "help:m:wheelchair")).await;
    let markup = phone.reply_markup.as_ref().expect("reply keyboard");
    assert_eq!(markup["keyboard"][0][0]["request_contact"], true, "{markup}");
    let done = after(&h, CHAT, || h.telegram.user_sends_contact(CHAT, "+380501234567", true)).await;
    assert!(done.text.contains("0 800 000 000"), "the order's hotline: {}", done.text);
    assert!(done.text.contains("+38050***4567") && done.text.contains('3'), "{}", done.text);

    let requests = h.store().help_requests(Some("help-test")).await.expect("requests");
    assert_eq!(requests.len(), 1);
    let r = &requests[0];
    assert_eq!(
        (r.people, r.mobility.as_deref(), r.phone.as_deref()),
        (Some(3), Some("wheelchair"), Some("+380501234567"))
    );
    assert_eq!((r.step, r.region.as_str(), r.address.as_str()), (HelpStep::Done, "UA63080070010082928", "4301"));
    assert!(h.store().subscriber(ChannelKind::Sms, "+380501234567").await.expect("store").is_none(), "no SMS opt-in");

    // A second press: the same request, updated; the later questions skipped this time.
    let again = after(&h, CHAT, press(&order, &help[0].1)).await;
    assert!(again.text.contains("оновимо"), "{}", again.text);
    let mobility = after(&h, CHAT, press(&again, "help:p:2")).await;
    let phone = after(&h, CHAT, press(&mobility, "help:m:-")).await;
    let done = after(&h, CHAT, || h.telegram.user_sends(CHAT, "Пропустити")).await;
    assert!(done.text.contains("0 800 000 000"), "{}", done.text);
    let _ = phone;
    let requests = h.store().help_requests(None).await.expect("requests");
    assert_eq!(requests.len(), 1, "updated, not duplicated: {requests:?}");
    assert_eq!((requests[0].people, requests[0].mobility.as_deref()), (Some(2), Some("wheelchair")));
    assert_eq!(requests[0].phone.as_deref(), Some("+380501234567"), "a skipped question keeps the earlier answer");
    h.shutdown().await;
}
