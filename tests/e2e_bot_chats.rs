//! The bot in the chats Telegram really has, through the real daemon and the Telegram
//! simulator: forum topics, other bots' commands in a group, a resident who blocks
//! the bot and a group that bans it.
//!
//! Regressions of issue 18's "found by trying real payloads": a command typed in a
//! forum topic was answered in the General topic; a bare `/report` meant for another
//! bot got "unknown command" and the whole command list; a block was learnt only at
//! the next alert's 403, because `my_chat_member` was not requested.

mod common;

use std::sync::Arc;

use common::*;
use sirena::alerts::AlertKind;
use sirena::bot::BotStats;
use sirena::channels::ChannelKind;
use sirena::demo::{Harness, Options, kharkiv_air_raid};
use sirena::messages::Lang;
use sirena::sim::telegram::SentMessage;

fn bot_stats(h: &Harness) -> Arc<BotStats> {
    h.daemon.bot.clone().expect("the daemon runs the bot")
}

async fn settled(h: &Harness, n: u64) {
    let stats = bot_stats(h);
    wait_until(&format!("{n} updates settled"), || BotStats::get(&stats.received) >= n && stats.settled()).await;
}

fn buttons(m: &SentMessage) -> Vec<String> {
    let Some(markup) = &m.reply_markup else { return Vec::new() };
    markup["inline_keyboard"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|row| row.as_array().cloned().unwrap_or_default())
        .filter_map(|b| b["callback_data"].as_str().map(str::to_owned))
        .collect()
}

async fn active(h: &Harness, chat: i64) -> Option<bool> {
    let sub = h.store().subscriber(ChannelKind::TelegramChat, &chat.to_string()).await.expect("store");
    sub.map(|s| s.active)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_command_in_a_forum_topic_is_answered_in_that_topic_and_general_in_general() {
    const FORUM: i64 = -1_005_101;
    const ADMIN: i64 = 5102;
    let h = Harness::start(Options::default()).await.expect("harness");
    h.telegram.add_forum(FORUM, "Кіндрашівка");
    h.telegram.set_group_admin(FORUM, ADMIN, true);
    let topic = h.telegram.create_topic(FORUM, ADMIN, "Тривоги");
    assert!(topic > 0);
    h.telegram.member_sends_in_topic(FORUM, ADMIN, topic, "/status");
    let got = h.telegram.wait_for_sent(FORUM, 1, WAIT).await;
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].message_thread_id, Some(topic), "answered in the topic: {}", got[0].text);

    // A choice of two villages offered in the topic, pressed there: the confirmation
    // goes to the topic too.
    h.telegram.member_sends_in_topic(FORUM, ADMIN, topic, "/subscribe Василівка");
    let got = h.telegram.wait_for_sent(FORUM, 2, WAIT).await;
    let offer = got[1].clone();
    assert_eq!(offer.message_thread_id, Some(topic));
    let data = buttons(&offer);
    assert_eq!(data.len(), 2, "{}", offer.text);
    h.telegram.member_presses(FORUM, ADMIN, offer.message_id, &data[0]);
    let got = h.telegram.wait_for_sent(FORUM, 3, WAIT).await;
    assert!(got.len() == 3 && got[2].text.contains("Василівка"), "{:?}", texts(&got));
    assert_eq!(got[2].message_thread_id, Some(topic), "a press in a topic is answered in it");

    // In the General topic: no thread. A reply there carries its reply thread's id
    // (no `is_topic_message`), which sendMessage would refuse: the answer has none.
    h.telegram.member_sends(FORUM, ADMIN, "/help");
    let got = h.telegram.wait_for_sent(FORUM, 4, WAIT).await;
    assert_eq!(got.len(), 4);
    assert_eq!(got[3].message_thread_id, None, "General is answered in General");
    h.telegram.member_replies(FORUM, ADMIN, got[3].message_id, "/list");
    let got = h.telegram.wait_for_sent(FORUM, 5, WAIT).await;
    assert_eq!(got.len(), 5);
    assert_eq!(got[4].message_thread_id, None);
    // The topic's creation message is chatter: read and ignored.
    settled(&h, 6).await;
    assert_eq!(BotStats::get(&bot_stats(&h).ignored), 1);
    assert_eq!(h.telegram.stats().bad_requests, 0, "no send named a thread Telegram would refuse");

    // A topic deleted between the question and the answer: the answer goes to General.
    h.telegram.member_sends_in_topic(FORUM, ADMIN, topic, "/help");
    h.telegram.delete_topic(FORUM, topic);
    let got = h.telegram.wait_for_sent(FORUM, 6, WAIT).await;
    assert_eq!(got.len(), 6);
    assert_eq!(got[5].message_thread_id, None);
    // A message is in `sent` a moment before its request is in the record.
    let telegram = h.telegram.clone();
    wait_until("seven requests recorded", || telegram.send_requests().len() == 7).await;
    let last_two: Vec<(Option<i64>, u16)> = h
        .telegram
        .send_requests()
        .iter()
        .rev()
        .take(2)
        .map(|r| (r.body["message_thread_id"].as_i64(), r.status))
        .collect();
    assert_eq!(last_two, [(None, 200), (Some(topic), 400)], "refused in the topic, then sent to General");
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bare_command_for_another_bot_is_ignored_in_a_group_and_answered_in_private() {
    const GROUP: i64 = -1_005_201;
    const MEMBER: i64 = 5202;
    const PRIVATE: i64 = 5203;
    let h = Harness::start(Options::default()).await.expect("harness");
    h.telegram.add_supergroup(GROUP, "Громада");
    h.telegram.add_user(PRIVATE, "Resident", Some("uk"));
    h.telegram.member_sends(GROUP, MEMBER, "/report");
    settled(&h, 1).await;
    assert_eq!(BotStats::get(&bot_stats(&h).ignored), 1, "counted as ignored");
    h.telegram.member_sends(GROUP, MEMBER, "/status");
    let got = h.telegram.wait_for_sent(GROUP, 1, WAIT).await;
    settled(&h, 2).await;
    // The record holds the one answer, to /status; /report got nothing.
    assert_eq!(h.telegram.sent_to(GROUP).len(), 1, "{:?}", texts(&got));
    assert!(!got[0].text.contains("/report"), "{}", got[0].text);
    let bot = h.telegram.bot_username();
    h.telegram.member_sends(GROUP, MEMBER, &format!("/report@{bot}"));
    let got = h.telegram.wait_for_sent(GROUP, 2, WAIT).await;
    assert!(got.len() == 2 && got[1].text.contains("/report"), "addressed to us, so answered: {:?}", texts(&got));
    // A resident is never left in silence: in private, the same command gets help.
    h.telegram.user_sends(PRIVATE, "/report");
    let got = h.telegram.wait_for_sent(PRIVATE, 1, WAIT).await;
    assert!(
        got.len() == 1 && got[0].text.contains("/report") && got[0].text.contains("/subscribe"),
        "{:?}",
        texts(&got)
    );
    settled(&h, 4).await;
    assert_eq!(BotStats::get(&bot_stats(&h).ignored), 1);
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_block_or_a_ban_deactivates_the_chat_before_the_next_alert_which_sends_it_nothing() {
    const BLOCKER: i64 = 5301;
    const NEIGHBOUR: i64 = 5302;
    const GROUP: i64 = -1_005_303;
    const ADMIN: i64 = 5304;
    let mut h = Harness::start(Options::default()).await.expect("harness");
    h.telegram.add_supergroup(GROUP, "Харків");
    for chat in [BLOCKER, NEIGHBOUR, GROUP] {
        h.add_resident(chat, KHARKIV_CITY, Lang::Uk).await.expect("resident");
    }
    h.telegram.block(BLOCKER);
    h.telegram.kick_bot(GROUP, ADMIN);
    let stats = bot_stats(&h);
    wait_until("two chats deactivated", || BotStats::get(&stats.deactivated) == 2).await;
    assert_eq!(active(&h, BLOCKER).await, Some(false), "inactive in the store before any alert");
    assert_eq!(active(&h, GROUP).await, Some(false));
    assert_eq!(active(&h, NEIGHBOUR).await, Some(true));
    // The updates were requested and are what Telegram sends.
    let polls = h.telegram.requests_of("getUpdates");
    assert!(polls.iter().all(|r| r.body["allowed_updates"].to_string().contains("my_chat_member")));

    h.feed.set_alerts(vec![kharkiv_air_raid()]);
    let f = h.next_fanout(WAIT, started(AlertKind::AirRaid)).await.expect("air raid");
    assert_eq!(f.recipients, 1, "only the neighbour");
    h.wait_drained(WAIT).await.expect("drained");
    each_got(&h, [NEIGHBOUR], 1);
    let to = |chat: i64| h.telegram.send_requests().iter().filter(|r| r.body["chat_id"].as_i64() == Some(chat)).count();
    assert_eq!((to(BLOCKER), to(GROUP)), (0, 0), "not even tried: no 403");
    assert_eq!(h.telegram.stats().forbidden, 0);

    // Unblocking is heard (Telegram's "Restart" sends /start after it); the /start
    // brings the resident back.
    h.telegram.user_sends(BLOCKER, "/start");
    h.telegram.wait_for_sent(BLOCKER, 1, WAIT).await;
    wait_until("the unblock counted", || BotStats::get(&stats.returned) == 1).await;
    assert_eq!(active(&h, BLOCKER).await, Some(true));
    h.shutdown().await;
}
