//! The residents' bot through the real daemon and the Telegram simulator: garbage
//! in, help out; same-named villages told apart; floods cut short; and a resident who
//! subscribes while an alert is on is told of it at once.

mod common;

use std::time::Duration;

use common::*;
use sirena::alerts::AlertKind;
use sirena::channels::ChannelKind;
use sirena::demo::{Harness, Options, kharkiv_air_raid};
use sirena::sim::telegram::SentMessage;

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
    let sub =
        h.store().subscriber(ChannelKind::TelegramChat, &CHAT.to_string()).await.expect("store").expect("subscriber");
    let places: Vec<String> = h.store().places(sub.id).await.expect("places").iter().map(|p| p.to_string()).collect();
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

    let sub =
        h.store().subscriber(ChannelKind::TelegramChat, &CHAT.to_string()).await.expect("store").expect("subscriber");
    let places = || async {
        h.store().places(sub.id).await.expect("places").iter().map(|p| p.to_string()).collect::<Vec<String>>()
    };
    let press = |data: &str| {
        let before = h.telegram.sent_to(CHAT).len();
        h.telegram.user_presses(CHAT, offer.message_id, data);
        before
    };
    let before = press(&data[1]);
    let got = h.telegram.wait_for_sent(CHAT, before + 1, WAIT).await;
    assert!(got.len() > before, "no reply to the button");
    assert!(got[before].text.contains("Василівка"), "{}", got[before].text);
    assert_eq!(places().await, vec![second.clone()], "the second button subscribes to the second village");

    let before = press(&data[0]);
    let got = h.telegram.wait_for_sent(CHAT, before + 1, WAIT).await;
    assert!(got.len() > before, "no reply to the button");
    let mut both = vec![first, second];
    both.sort();
    assert_eq!(places().await, both, "the first button is the other village");
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_russian_spelling_is_offered_as_did_you_mean_and_subscribed_only_when_pressed() {
    const CHAT: i64 = 3311;
    const KUPIANSK: &str = "UA63080090010026457";
    let h = Harness::start(Options::default()).await.expect("harness");
    h.telegram.add_user(CHAT, "Resident", Some("uk"));
    let offer = say(&h, CHAT, "/subscribe Купянск").await;
    assert!(offer.text.contains("Можливо, ви мали на увазі"), "{}", offer.text);
    let markup = offer.reply_markup.as_ref().unwrap_or_else(|| panic!("no buttons: {}", offer.text));
    let first = &markup["inline_keyboard"][0][0];
    assert_eq!(first["callback_data"].as_str(), Some(format!("sub:{KUPIANSK}").as_str()), "{markup}");
    assert!(first["text"].as_str().is_some_and(|t| t.contains("Харківська область")), "{markup}");
    let sub =
        h.store().subscriber(ChannelKind::TelegramChat, &CHAT.to_string()).await.expect("store").expect("subscriber");
    assert!(h.store().places(sub.id).await.expect("places").is_empty(), "a near name subscribes nobody");
    let before = h.telegram.sent_to(CHAT).len();
    h.telegram.user_presses(CHAT, offer.message_id, &format!("sub:{KUPIANSK}"));
    let got = h.telegram.wait_for_sent(CHAT, before + 1, WAIT).await;
    assert!(got.len() > before && got[before].text.contains("Куп’янськ"), "{:?}", texts(&got));
    let places: Vec<String> = h.store().places(sub.id).await.expect("places").iter().map(|p| p.to_string()).collect();
    assert_eq!(places, vec![KUPIANSK.to_string()]);
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resident_who_subscribes_during_an_alert_is_told_at_once_and_gets_the_all_clear() {
    const CHAT: i64 = 3501;
    let mut h = Harness::start(Options::default()).await.expect("harness");
    h.feed.set_alerts(vec![sirena::demo::luhansk(), kharkiv_air_raid()]);
    let on_kharkiv = |f: &sirena::daemon::Fanout| f.event.targets.iter().any(|t| t.as_str() == KHARKIV_OBLAST);
    let f = h.next_fanout(WAIT, |f| started(AlertKind::AirRaid)(f) && on_kharkiv(f)).await.expect("air raid");
    assert_eq!(f.recipients, 0, "nobody lives there yet");
    h.telegram.add_user(CHAT, "Resident", Some("uk"));
    let reply = say(&h, CHAT, "/subscribe м. Харків").await;
    assert!(reply.text.contains("Харків"), "{}", reply.text);
    let got = h.telegram.wait_for_sent(CHAT, 2, WAIT).await;
    assert_eq!(got.len(), 2, "{:?}", texts(&got));
    assert!(got[1].text.starts_with("🔴 <b>Повітряна тривога"), "told of the alert at once: {}", got[1].text);
    h.feed.set_alerts(vec![sirena::demo::luhansk()]);
    let f = h.next_fanout(WAIT, |f| ended(AlertKind::AirRaid)(f) && on_kharkiv(f)).await.expect("all clear");
    assert_eq!(f.recipients, 1, "the all-clear goes to whoever was told the start");
    let got = h.telegram.wait_for_sent(CHAT, 3, WAIT).await;
    assert!(got.len() == 3 && got[2].text.contains("Відбій"), "{:?}", texts(&got));
    h.wait_drained(WAIT).await.expect("drained");
    assert_eq!(h.telegram.sent_to(CHAT).len(), 3);
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reply_that_draws_a_429_or_a_reset_still_arrives() {
    use sirena::sim::telegram::{FaultTarget, SendFault};
    const CHAT: i64 = 3601;
    let h = Harness::start(Options::default()).await.expect("harness");
    h.telegram.add_user(CHAT, "Resident", Some("uk"));
    h.telegram.inject(FaultTarget::Chat(CHAT), SendFault::TooManyRequests { retry_after: 1 }, 1);
    h.telegram.inject(FaultTarget::Chat(CHAT), SendFault::Reset, 1);
    let reply = say(&h, CHAT, "/help").await;
    assert!(reply.text.contains("/subscribe"), "{}", reply.text);
    // The simulator records a request once its answer is written, just after the message.
    let telegram = h.telegram.clone();
    wait_until("the third request recorded", || telegram.send_requests().len() >= 3).await;
    let tries: Vec<_> = h.telegram.send_requests().into_iter().map(|r| (r.status, r.at)).collect();
    assert_eq!(tries.iter().map(|t| t.0).collect::<Vec<_>>(), vec![429, 0, 200], "{tries:?}");
    assert!(tries[1].1 - tries[0].1 >= Duration::from_secs(1), "the reply waited out retry_after");
    h.shutdown().await;
}
