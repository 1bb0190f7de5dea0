//! Every real Telegram update in `../shared/data/real/telegram` (origins in
//! `../shared/data/real/SOURCES.md`: teloxide's and tgbot's own test payloads) through
//! the bot's update reader, `sirena::bot::read::read` — what `Inbox::push` uses for
//! getUpdates and the webhook alike — with one expected outcome per file; a file
//! missing from the table, or an entry without its file, fails. Then all of them go
//! through the Telegram simulator's getUpdates into the running daemon: each is
//! confirmed, those of kinds the bot asked for are read, and the answers land where the
//! table says.

mod common;

use std::collections::BTreeSet;
use std::sync::Arc;

use common::*;
use serde_json::Value;
use sirena::bot::read::{ChatKind, Ignored, Inbound, MemberChange, Membership, Reading, read};
use sirena::bot::{BotStats, Input, Me};
use sirena::demo::{Harness, Options};
use sirena::messages::Lang;

/// What the bot must make of one file.
#[derive(Debug)]
enum Want {
    /// Text to answer in `chat` (no forum topic), from `user`.
    Text {
        chat: i64,
        user: Option<i64>,
        text: &'static str,
    },
    /// A sticker, a video…: answered with the "send text" help.
    NotText {
        chat: i64,
    },
    Location {
        chat: i64,
        lat: f64,
        lon: f64,
    },
    /// `my_chat_member`: the bot is out of the chat.
    Gone {
        chat: i64,
        kind: ChatKind,
    },
    Ignored(Ignored),
}

fn kind(k: &str) -> Want {
    Want::Ignored(Ignored::Kind(k.into()))
}

/// (file, its update id, the outcome)
fn table() -> Vec<(&'static str, i64, Want)> {
    let not_for_us = || Want::Ignored(Ignored::NotForUs);
    vec![
        ("teloxide_update__chat_boost_updated__L1082.json", 71_651_297, kind("chat_boost")),
        // A dice thrown in a supergroup: chatter.
        ("teloxide_update__dice_works__L828.json", 573_255_266, not_for_us()),
        // A bare `/report` in a supergroup: another bot's command.
        ("teloxide_update__issue_1107__L685.json", 439_432_600, not_for_us()),
        (
            "teloxide_update__message__L558.json",
            892_252_934,
            Want::Text { chat: 218_485_655, user: Some(218_485_655), text: "hello there" },
        ),
        ("teloxide_update__message_reaction_updated__L901.json", 71_651_249, kind("message_reaction")),
        ("teloxide_update__paid_media_purchased_de__L1206.json", 573_255_267, kind("purchased_paid_media")),
        ("tgbot_update__bot_status.json", 1, Want::Gone { chat: 1, kind: ChatKind::Group }),
        ("tgbot_update__business_message.json", 1, kind("business_message")),
        ("tgbot_update__channel_post.json", 1, kind("channel_post")),
        ("tgbot_update__chat_boost_updated.json", 1, kind("chat_boost")),
        ("tgbot_update__chosen_inline_result.json", 1, kind("chosen_inline_result")),
        ("tgbot_update__edited_business_message.json", 1, kind("edited_business_message")),
        ("tgbot_update__edited_message.json", 1, Want::Text { chat: 1111, user: Some(1111), text: "Edited text" }),
        ("tgbot_update__inline_query.json", 1, kind("inline_query")),
        ("tgbot_update__message.json", 1, Want::Text { chat: 1, user: Some(1), text: "message-text" }),
        ("tgbot_update__message_reaction_count.json", 1, kind("message_reaction_count")),
        ("tgbot_update__poll_answer.json", 1, kind("poll_answer")),
        ("tgbot_update__purchased_paid_media.json", 1, kind("purchased_paid_media")),
        ("tgbot_update__unknown.json", 1, kind("key")),
        // A press on an inline-mode message (no `message`): the bot sends none.
        ("wrapped__teloxide_callback_query__deserialize__L103.json", 1, Want::Ignored(Ignored::InlineButton)),
        ("wrapped__teloxide_message__de_media_group_forwarded__L2411.json", 1, Want::NotText { chat: 250_918_540 }),
        ("wrapped__teloxide_message__de_sticker__L2479.json", 1, Want::NotText { chat: 250_918_540 }),
        (
            "wrapped__teloxide_message__effect_id__L3462.json",
            1,
            Want::Text { chat: 1_459_074_222, user: Some(1_459_074_222), text: "El Psy Kongroo" },
        ),
        // An anonymous admin's plain text in a supergroup: chatter.
        ("wrapped__teloxide_message__issue_419__L2571.json", 1, not_for_us()),
        ("wrapped__teloxide_message__issue_481__L2666.json", 1, Want::Location { chat: 0, lat: 0.0, lon: 0.0 }),
        // "blah" in a forum topic: chatter (its thread is checked below with a command).
        ("wrapped__teloxide_message__topic_message__L2824.json", 1, not_for_us()),
        ("wrapped__tgbot_message__location.json", 1, not_for_us()),
        ("wrapped__tgbot_message__sticker.json", 1, not_for_us()),
        ("wrapped__tgbot_message__users_shared.json", 1, not_for_us()),
        ("wrapped__tgbot_message__web_app_data.json", 1, not_for_us()),
    ]
}

fn me() -> Me {
    Me { id: 777, username: "sirena_bot".into() }
}

/// Every file of the folder, read, by name; panics if the table and the folder differ.
fn fixtures(dir: &std::path::Path) -> Vec<(&'static str, i64, Want, Value)> {
    let on_disk: BTreeSet<String> = std::fs::read_dir(dir)
        .expect("telegram fixtures")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".json"))
        .collect();
    let table = table();
    let listed: BTreeSet<String> = table.iter().map(|(f, ..)| f.to_string()).collect();
    assert_eq!(on_disk, listed, "every real update has exactly one expected outcome");
    table
        .into_iter()
        .map(|(file, id, want)| {
            let text = std::fs::read_to_string(dir.join(file)).expect("fixture");
            let value: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{file}: {e}"));
            (file, id, want, value)
        })
        .collect()
}

fn check(file: &str, want: &Want, got: &Reading) {
    let ok = match (want, got) {
        (Want::Text { chat, user, text }, Reading::Input(i)) => {
            i.chat == *chat
                && i.sender.user == *user
                && i.thread.is_none()
                && i.callback.is_none()
                && i.input == Input::Text((*text).into())
        }
        (Want::NotText { chat }, Reading::Input(i)) => i.chat == *chat && i.input == Input::NotText,
        (Want::Location { chat, lat, lon }, Reading::Input(i)) => {
            i.chat == *chat && i.input == Input::Location { lat: *lat, lon: *lon }
        }
        (Want::Gone { chat, kind }, Reading::Membership(m)) => {
            *m == Membership { chat: *chat, kind: *kind, change: MemberChange::Gone }
        }
        (Want::Ignored(want), Reading::Ignored(got)) => want == got,
        _ => false,
    };
    assert!(ok, "{file}: wanted {want:?}, the bot made {got:?}");
}

#[test]
fn every_real_update_is_read_as_the_table_says() {
    let Some(data) = shared_data() else { return };
    let me = me();
    for (file, id, want, value) in fixtures(&data.join("real/telegram")) {
        let (got_id, reading) = read(&value, &me).unwrap_or_else(|| panic!("{file}: no update id read"));
        assert_eq!(got_id, id, "{file}: the id the poll confirms");
        check(file, &want, &reading);
    }
}

/// The two real messages that carry a `message_thread_id`, as commands: only the forum
/// topic's is kept (`is_topic_message`); the other is a reply thread, which
/// `sendMessage` would refuse.
#[test]
fn a_forum_topic_is_kept_and_a_reply_thread_is_not() {
    let Some(data) = shared_data() else { return };
    let dir = data.join("real/telegram");
    let as_command = |file: &str| -> Inbound {
        let text = std::fs::read_to_string(dir.join(file)).expect("fixture");
        let mut value: Value = serde_json::from_str(&text).expect("json");
        value["message"]["text"] = "/status".into();
        match read(&value, &me()) {
            Some((_, Reading::Input(i))) => i,
            other => panic!("{file}: {other:?}"),
        }
    };
    let topic = as_command("wrapped__teloxide_message__topic_message__L2824.json");
    assert_eq!((topic.chat, topic.thread, topic.sender.user), (-1_001_847_508_954, Some(4), Some(1_253_681_278)));
    assert!(topic.sender.group && !topic.sender.admin, "admins are asked with getChatMember");
    let reply_thread = as_command("teloxide_update__issue_1107__L685.json");
    assert_eq!((reply_thread.chat, reply_thread.thread), (-1_001_293_752_024, None));
    // In a private chat even another bot's command gets an answer (help).
    let mut private: Value = serde_json::from_str(
        &std::fs::read_to_string(dir.join("teloxide_update__message__L558.json")).expect("fixture"),
    )
    .expect("json");
    private["message"]["text"] = "/report".into();
    let Some((_, Reading::Input(i))) = read(&private, &me()) else { panic!("not read") };
    assert_eq!(i.input, Input::Text("/report".into()));
}

/// All thirty through the simulator's getUpdates into the real daemon, in table order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_real_update_over_get_updates_is_confirmed_and_answered_where_it_belongs() {
    let Some(data) = shared_data() else { return };
    let fixtures = fixtures(&data.join("real/telegram"));
    let h = Harness::start(Options::default()).await.expect("harness");
    // Chat 1 is already a resident, so the real `my_chat_member` (the bot banned from
    // the "group" with id 1) has something to deactivate.
    h.add_resident(1, KHARKIV_CITY, Lang::En).await.expect("resident");
    let answered: [i64; 5] = [218_485_655, 1111, 250_918_540, 1_459_074_222, 0];
    for chat in answered {
        h.telegram.add_user(chat, "Resident", Some("en"));
    }
    let mut ids = Vec::new();
    for (_, _, _, value) in &fixtures {
        ids.push(h.telegram.queue_raw_update(value.clone()));
    }
    let last = *ids.last().expect("ids");
    // Telegram delivers only the kinds the bot asked for: messages, edits, presses and
    // its own membership (17 of the 30).
    let stats: Arc<BotStats> = h.daemon.bot.clone().expect("bot");
    wait_until("17 updates settled", || BotStats::get(&stats.received) == 17 && stats.settled()).await;
    let telegram = h.telegram.clone();
    wait_until("the last update confirmed", || {
        telegram.requests_of("getUpdates").iter().any(|r| r.body["offset"].as_i64() == Some(last as i64 + 1))
    })
    .await;
    let polls = h.telegram.requests_of("getUpdates");
    let allowed = &polls[0].body["allowed_updates"];
    for kind in ["message", "edited_message", "callback_query", "my_chat_member"] {
        assert!(allowed.as_array().is_some_and(|a| a.iter().any(|k| k == kind)), "{kind} in {allowed}");
    }
    // 7 inputs and 1 membership change handled; 9 chatter or inline presses ignored.
    assert_eq!(BotStats::get(&stats.handled), 8);
    assert_eq!(BotStats::get(&stats.ignored), 9);
    assert_eq!(BotStats::get(&stats.deactivated), 1, "the real my_chat_member deactivated chat 1");
    assert_eq!(BotStats::get(&stats.store_errors) + BotStats::get(&stats.timed_out), 0);
    // Chat 1 then wrote ("message-text") and is active again, answered.
    let want = [(218_485_655, 1), (1111, 1), (1, 1), (250_918_540, 2), (1_459_074_222, 1), (0, 1)];
    for (chat, n) in want {
        let got = h.telegram.wait_for_sent(chat, n, WAIT).await;
        assert_eq!(got.len(), n, "chat {chat}: {:?}", texts(&got));
        assert!(got.iter().all(|m| m.message_thread_id.is_none()), "chat {chat}");
    }
    for m in h.telegram.sent_to(250_918_540) {
        assert!(m.text.contains("only understand text") && m.text.contains("/help"), "{}", m.text);
    }
    // No `from`, so no app language: Ukrainian.
    let outside = &h.telegram.sent_to(0)[0].text;
    assert!(outside.contains("поза Україною"), "the location (0, 0) was read: {outside}");
    let sent: usize = want.iter().map(|(_, n)| n).sum();
    assert_eq!(h.telegram.send_requests().len(), sent, "nothing to the groups, the channel or anyone else");
    let sub = h.store().subscriber(sirena::channels::ChannelKind::TelegramChat, "1").await.expect("store");
    assert!(sub.is_some_and(|s| s.active), "chat 1 came back by writing");
    h.shutdown().await;
}
