//! Residents scripted through the Telegram simulator into the real daemon: every way
//! of onboarding (a typed name, a Latin name, a Russian spelling, a misspelt name, an
//! ambiguous name, the drill-down), and a place's kind filter honoured in delivery.

mod common;

use common::*;
use sirena::alerts::AlertKind;
use sirena::channels::ChannelKind;
use sirena::demo::{Harness, Options, kharkiv_air_raid};
use sirena::sim::telegram::SentMessage;

const KUPIANSK: &str = "UA63080090010026457";

/// Does `act` and returns the `n` messages the bot sent the chat after it.
async fn after(h: &Harness, chat: i64, n: usize, act: impl FnOnce()) -> Vec<SentMessage> {
    let before = h.telegram.sent_to(chat).len();
    act();
    let got = h.telegram.wait_for_sent(chat, before + n, WAIT).await;
    assert!(got.len() >= before + n, "{n} replies expected: {:?}", texts(&got[before..]));
    got[before..].to_vec()
}

fn data(m: &SentMessage) -> Vec<String> {
    let Some(markup) = m.reply_markup.as_ref() else { return vec![] };
    let Some(rows) = markup["inline_keyboard"].as_array() else { return vec![] };
    rows.iter()
        .flat_map(|row| row.as_array().cloned().unwrap_or_default())
        .filter_map(|b| b["callback_data"].as_str().map(str::to_owned))
        .collect()
}

/// The "next page" button's data.
fn next_page(m: &SentMessage) -> Option<String> {
    let rows = m.reply_markup.as_ref()?["inline_keyboard"].as_array()?.clone();
    rows.iter()
        .flat_map(|row| row.as_array().cloned().unwrap_or_default())
        .find(|b| b["text"] == "▶")
        .and_then(|b| b["callback_data"].as_str().map(str::to_owned))
}

async fn places(h: &Harness, chat: i64) -> Vec<String> {
    let sub = h.store().subscriber(ChannelKind::TelegramChat, &chat.to_string()).await.expect("store").expect("sub");
    h.store().places(sub.id).await.expect("places").iter().map(|p| p.to_string()).collect()
}

/// `/start`, Українська, then the "where do you live" question and the oblasts.
async fn begin(h: &Harness, chat: i64) -> Vec<SentMessage> {
    h.telegram.add_user(chat, "Resident", Some("uk"));
    let hello = after(h, chat, 1, || h.telegram.user_sends(chat, "/start")).await;
    assert_eq!(data(&hello[0]), vec!["lang:uk", "lang:en"], "{}", hello[0].text);
    let asked = after(h, chat, 2, || h.telegram.user_presses(chat, hello[0].message_id, "lang:uk")).await;
    assert!(asked[0].text.contains("Де ви живете"), "{}", asked[0].text);
    let location = &asked[0].reply_markup.as_ref().expect("reply keyboard")["keyboard"][0][0];
    assert_eq!(location["request_location"], serde_json::json!(true), "{location}");
    asked
}

/// The confirmation names the place with its hromada and raion, says what comes, and
/// what is on there now.
fn confirmed(m: &SentMessage, place: &str) {
    for want in [place, "громада", "район", "Надсилатиму", "Зараз там"] {
        assert!(m.text.contains(want), "confirmation lacks {want:?}: {}", m.text);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn residents_onboard_by_name_latin_russian_misspelt_and_ambiguous() {
    let h = Harness::start(Options::default()).await.expect("harness");
    // A name typed as the app's keyboard gives it, and a Latin one: subscribed at once.
    for (chat, typed, place, id) in
        [(3501, "куп'янськ", "Куп’янськ", KUPIANSK), (3502, "Kupiansk", "Куп’янськ", KUPIANSK)]
    {
        begin(&h, chat).await;
        let done = after(&h, chat, 1, || h.telegram.user_sends(chat, typed)).await;
        confirmed(&done[0], place);
        assert_eq!(places(&h, chat).await, vec![id], "{typed}");
    }
    // A Russian spelling and a typo: "did you mean", subscribed only once pressed.
    for (chat, typed, place, id) in
        [(3503, "Купянск", "Куп’янськ", KUPIANSK), (3504, "Кіндрашівко", "Кіндрашівка", KINDRASHIVKA)]
    {
        begin(&h, chat).await;
        let offer = after(&h, chat, 1, || h.telegram.user_sends(chat, typed)).await;
        assert!(offer[0].text.contains("Можливо"), "{typed}: {}", offer[0].text);
        assert!(places(&h, chat).await.is_empty(), "{typed}: a near name subscribes nobody");
        let button = format!("sub:{id}");
        assert!(data(&offer[0]).contains(&button), "{typed}: {:?}", data(&offer[0]));
        let done = after(&h, chat, 1, || h.telegram.user_presses(chat, offer[0].message_id, &button)).await;
        confirmed(&done[0], place);
        assert_eq!(places(&h, chat).await, vec![id], "{typed}");
    }
    // Two villages of one name: candidates with hromada, raion and oblast.
    let chat = 3505;
    begin(&h, chat).await;
    let offer = after(&h, chat, 1, || h.telegram.user_sends(chat, "Василівка")).await;
    let choices = data(&offer[0]);
    assert_eq!(choices.len(), 2, "{}", offer[0].text);
    let labels = offer[0].reply_markup.as_ref().expect("buttons")["inline_keyboard"][0][0]["text"].to_string();
    assert!(labels.contains("громада") && labels.contains("район") && labels.contains("область"), "{labels}");
    let done = after(&h, chat, 1, || h.telegram.user_presses(chat, offer[0].message_id, &choices[1])).await;
    confirmed(&done[0], "Василівка");
    assert_eq!(places(&h, chat).await, vec![choices[1].trim_start_matches("sub:").to_owned()]);
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resident_drills_down_to_their_village() {
    let h = Harness::start(Options::default()).await.expect("harness");
    let chat = 3511;
    let asked = begin(&h, chat).await;
    let mut last = asked[1].clone();
    for want in [
        format!("d:{KHARKIV_OBLAST}:0"),
        "d:UA63080000000032022:0".to_owned(),
        format!("d:{KINDRASHIVKA_HROMADA}:0"),
        format!("sub:{KINDRASHIVKA}"),
    ] {
        // Page on until the button is there, then press it.
        for _ in 0..10 {
            if data(&last).contains(&want) {
                break;
            }
            let next = next_page(&last).unwrap_or_else(|| panic!("no {want}: {:?}", data(&last)));
            last = after(&h, chat, 1, || h.telegram.user_presses(chat, last.message_id, &next)).await.remove(0);
        }
        last = after(&h, chat, 1, || h.telegram.user_presses(chat, last.message_id, &want)).await.remove(0);
    }
    confirmed(&last, "Кіндрашівка");
    assert_eq!(places(&h, chat).await, vec![KINDRASHIVKA]);
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_place_filtered_to_evacuation_hears_no_air_raid_but_an_unfiltered_one_does() {
    let mut h = Harness::start(Options::default()).await.expect("harness");
    let (only_evac, two_places) = (3521, 3522);
    for chat in [only_evac, two_places] {
        h.telegram.add_user(chat, "Resident", Some("uk"));
        let r = after(&h, chat, 1, || h.telegram.user_sends(chat, "/subscribe Кіндрашівка")).await;
        let filter = format!("f:{KINDRASHIVKA}");
        assert!(data(&r[0]).contains(&filter), "{:?}", data(&r[0]));
        let mut last = after(&h, chat, 1, || h.telegram.user_presses(chat, r[0].message_id, &filter)).await.remove(0);
        // Everything but evacuation (the sixth button) off.
        for n in [0, 1, 2, 3, 4, 6] {
            let b = format!("fk:{KINDRASHIVKA}:{n}");
            last = after(&h, chat, 1, || h.telegram.user_presses(chat, last.message_id, &b)).await.remove(0);
        }
        assert!(last.text.contains("Збережено"), "{}", last.text);
    }
    after(&h, two_places, 1, || h.telegram.user_sends(two_places, "/subscribe м. Харків")).await;
    let before_filtered = h.telegram.sent_to(only_evac).len();
    h.feed.set_alerts(vec![kharkiv_air_raid()]);
    let fanout = h.next_fanout(WAIT, started(AlertKind::AirRaid)).await.expect("air raid");
    h.wait_drained(WAIT).await.expect("drained");
    let got = h.telegram.wait_for_sent(two_places, 1, WAIT).await;
    assert!(got.iter().any(|m| m.text.contains("тривога")), "the unfiltered place hears it: {:?}", texts(&got));
    // Everything enqueued was sent (drained): nothing is on its way to the filtered one.
    assert_eq!(h.telegram.sent_to(only_evac).len(), before_filtered, "{:?}", texts(&h.telegram.sent_to(only_evac)));
    assert!(fanout.recipients >= 1);
    h.shutdown().await;
}

/// Quiet hours from an hour ago to an hour ahead, Kyiv time: now is inside them.
fn quiet_now() -> String {
    let now = sirena::messages::kyiv(chrono::Utc::now());
    let at = |d: chrono::Duration| (now + d).format("%H:%M").to_string();
    format!("/quiet {}-{}", at(-chrono::Duration::hours(1)), at(chrono::Duration::hours(1)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_quiet_hours_only_a_new_threat_at_home_rings() {
    let mut h = Harness::start(Options::default()).await.expect("harness");
    // Both set quiet hours covering now. One lives in Kindrashivka; the other lives in
    // Lviv and follows Kindrashivka for their parents; a third has no quiet hours.
    let (at_home, for_parents, no_quiet) = (3531, 3532, 3533);
    let scripts: [(i64, &[&str]); 3] = [
        (at_home, &["/subscribe Кіндрашівка"]),
        (for_parents, &["/subscribe Львів", "/subscribe Кіндрашівка"]),
        (no_quiet, &["/subscribe Львів", "/subscribe Кіндрашівка"]),
    ];
    let quiet = quiet_now();
    for (chat, lines) in scripts {
        h.telegram.add_user(chat, "Resident", Some("uk"));
        for line in lines {
            after(&h, chat, 1, || h.telegram.user_sends(chat, line)).await;
        }
        if chat != no_quiet {
            let r = after(&h, chat, 1, || h.telegram.user_sends(chat, &quiet)).await;
            assert!(r[0].text.contains("Тихі години"), "{}", r[0].text);
        }
    }
    let before: Vec<usize> = [at_home, for_parents, no_quiet].iter().map(|c| h.telegram.sent_to(*c).len()).collect();
    h.feed.set_alerts(vec![kharkiv_air_raid()]);
    h.next_fanout(WAIT, started(AlertKind::AirRaid)).await.expect("air raid");
    let sim = &h.telegram;
    let alert = |chat: i64, n: usize| async move {
        let got = sim.wait_for_sent(chat, n + 1, WAIT).await;
        assert!(got.len() > n, "chat {chat} got no alert");
        got[n].clone()
    };
    let home = alert(at_home, before[0]).await;
    let parents = alert(for_parents, before[1]).await;
    let plain = alert(no_quiet, before[2]).await;
    assert!(home.text.contains("тривога") && parents.text.contains("тривога"), "{} / {}", home.text, parents.text);
    assert!(!home.disable_notification, "a new threat at home rings in quiet hours");
    assert!(parents.disable_notification, "another place's alert arrives, without sound");
    assert!(!plain.disable_notification, "no quiet hours: it rings");
    h.shutdown().await;
}
