//! The Telegram simulator's forums, reply threads and `my_chat_member` updates,
//! read with the real teloxide client and held against the real payloads in
//! `../shared/data/real/telegram` (field for field where the shapes meet).

mod common;

use common::telegram::Harness;

use std::collections::BTreeSet;

use serde_json::{Value, json};
use sirena::sim::telegram::TelegramSimConfig;
use teloxide::prelude::*;
use teloxide::types::{ChatMemberStatus, MessageId, ThreadId, UpdateKind};

type TestResult = Result<(), Box<dyn std::error::Error + Send + Sync>>;

impl Harness {
    async fn call(&self, method: &str, body: Value) -> Result<(u16, Value), reqwest::Error> {
        let url = format!("{}/bot{}/{method}", self.sim.base_url(), TelegramSimConfig::default().token);
        let response = self.http.post(url).json(&body).send().await?;
        Ok((response.status().as_u16(), response.json().await?))
    }

    /// Every waiting update as raw JSON, confirmed.
    async fn updates(&self, allowed: Option<&[&str]>) -> Result<Vec<Value>, reqwest::Error> {
        let mut body = json!({"timeout": 0});
        if let Some(a) = allowed {
            body["allowed_updates"] = json!(a);
        }
        let (_, got) = self.call("getUpdates", body).await?;
        let list = got["result"].as_array().cloned().unwrap_or_default();
        if let Some(last) = list.last().and_then(|u| u["update_id"].as_i64()) {
            self.call("getUpdates", json!({"offset": last + 1, "timeout": 0})).await?;
        }
        Ok(list)
    }
}

fn keys(v: &Value) -> BTreeSet<String> {
    v.as_object().map(|o| o.keys().cloned().collect()).unwrap_or_default()
}

fn real(file: &str) -> Option<Value> {
    let dir = common::shared_data()?.join("real/telegram");
    let text = std::fs::read_to_string(dir.join(file)).expect("fixture");
    Some(serde_json::from_str(&text).expect("json"))
}

#[tokio::test]
async fn a_block_is_a_my_chat_member_update_shaped_as_telegrams() -> TestResult {
    let h = Harness::new().await?;
    h.sim.add_user(10, "Оксана", Some("uk"));
    h.sim.block(10);
    h.sim.block(10); // already blocked: no second update
    let got = h.bot.get_updates().await?;
    assert_eq!(got.len(), 1);
    let UpdateKind::MyChatMember(m) = &got[0].kind else { panic!("{:?}", got[0]) };
    assert_eq!((m.chat.id, m.from.id.0), (ChatId(10), 10));
    assert_eq!(m.old_chat_member.status(), ChatMemberStatus::Member);
    assert_eq!(m.new_chat_member.status(), ChatMemberStatus::Banned);
    assert_eq!(m.new_chat_member.user.id.0, 123_456, "the bot is the member");
    h.bot.get_updates().offset(got[0].id.as_offset()).await?;
    let err = h.bot.send_message(ChatId(10), "x").await.expect_err("blocked");
    assert!(err.to_string().contains("blocked"), "{err}");

    // Writing again unblocks: the reverse update comes first.
    h.sim.user_sends(10, "/start");
    let raw = h.updates(None).await?;
    assert_eq!(raw.len(), 2);
    assert_eq!(raw[0]["my_chat_member"]["old_chat_member"]["status"], "kicked");
    assert_eq!(raw[0]["my_chat_member"]["new_chat_member"]["status"], "member");
    assert_eq!(raw[1]["message"]["text"], "/start");

    // A group that bans the bot, against the real one field for field.
    h.sim.add_group(-20, "Група");
    h.sim.kick_bot(-20, 21);
    let raw = h.updates(None).await?;
    assert_eq!(raw.len(), 1);
    let (status, body) = h.call("sendMessage", json!({"chat_id": -20, "text": "x"})).await?;
    assert_eq!((status, body["description"].as_str()), (403, Some("Forbidden: bot was kicked from the group chat")));
    if let Some(fixture) = real("tgbot_update__bot_status.json") {
        let (ours, theirs) = (&raw[0]["my_chat_member"], &fixture["my_chat_member"]);
        assert_eq!(keys(&raw[0]), keys(&fixture));
        assert_eq!(keys(ours), keys(theirs));
        for part in ["chat", "from", "old_chat_member", "new_chat_member"] {
            assert_eq!(keys(&ours[part]), keys(&theirs[part]), "{part}");
        }
        assert_eq!(ours["new_chat_member"]["status"], theirs["new_chat_member"]["status"]);
        assert_eq!(ours["new_chat_member"]["user"]["is_bot"], true);
    }
    h.stop().await;
    Ok(())
}

#[tokio::test]
async fn forum_topics_carry_their_thread_and_sends_into_them_are_checked() -> TestResult {
    let h = Harness::new().await?;
    h.sim.add_forum(-30, "twest");
    h.sim.add_supergroup(-40, "Група");
    let topic = h.sim.create_topic(-30, 31, "Тривоги");
    h.sim.member_sends_in_topic(-30, 31, topic, "blah");
    assert_eq!(h.sim.member_sends_in_topic(-30, 31, topic + 100, "nowhere"), 0, "no such topic");
    let got = h.bot.get_updates().await?;
    assert_eq!(got.len(), 2);
    let UpdateKind::Message(created) = &got[0].kind else { panic!("{:?}", got[0]) };
    assert!(created.forum_topic_created().is_some_and(|t| t.name == "Тривоги"));
    let UpdateKind::Message(m) = &got[1].kind else { panic!("{:?}", got[1]) };
    assert_eq!(m.thread_id, Some(ThreadId(MessageId(topic as i32))));
    assert!(m.is_topic_message);
    assert_eq!(m.reply_to_message().map(|r| r.id), Some(MessageId(topic as i32)), "hangs under the topic's start");
    h.bot.get_updates().offset(got[1].id.as_offset()).await?;
    h.sim.member_sends_in_topic(-30, 31, topic, "blah");
    let raw = h.updates(None).await?;
    assert_eq!(raw.len(), 1);
    if let Some(fixture) = real("wrapped__teloxide_message__topic_message__L2824.json") {
        let (ours, theirs) = (&raw[0]["message"], &fixture["message"]);
        assert_eq!(keys(ours), keys(theirs));
        assert_eq!(keys(&ours["chat"]), keys(&theirs["chat"]));
        assert_eq!(keys(&ours["reply_to_message"]), keys(&theirs["reply_to_message"]));
    }

    // sendMessage: the topic's id is taken and recorded; any other is refused.
    let (status, body) =
        h.call("sendMessage", json!({"chat_id": -30, "text": "ok", "message_thread_id": topic})).await?;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        (body["result"]["message_thread_id"].as_i64(), &body["result"]["is_topic_message"]),
        (Some(topic), &json!(true))
    );
    assert_eq!(h.sim.sent_to(-30)[0].message_thread_id, Some(topic));
    for (chat, thread) in [(-30, topic + 100), (-30, 1), (-40, topic)] {
        let (status, body) =
            h.call("sendMessage", json!({"chat_id": chat, "text": "x", "message_thread_id": thread})).await?;
        assert_eq!(
            (status, body["description"].as_str()),
            (400, Some("Bad Request: message thread not found")),
            "{chat} {thread}"
        );
    }
    h.sim.delete_topic(-30, topic);
    let (status, _) = h.call("sendMessage", json!({"chat_id": -30, "text": "x", "message_thread_id": topic})).await?;
    assert_eq!(status, 400, "a deleted topic");
    h.stop().await;
    Ok(())
}

#[tokio::test]
async fn a_reply_in_a_supergroup_carries_its_reply_thread_without_is_topic_message() -> TestResult {
    let h = Harness::new().await?;
    h.sim.add_supergroup(-40, "Група");
    h.sim.add_group(-50, "Базова");
    let (_, sent) = h.call("sendMessage", json!({"chat_id": -40, "text": "root"})).await?;
    let root = sent["result"]["message_id"].as_i64().expect("id");
    h.sim.member_replies(-40, 41, root, "/report");
    let (_, sent) = h.call("sendMessage", json!({"chat_id": -50, "text": "root"})).await?;
    h.sim.member_replies(-50, 51, sent["result"]["message_id"].as_i64().expect("id"), "ok");
    let raw = h.updates(None).await?;
    let reply = &raw[0]["message"];
    assert_eq!(reply["message_thread_id"].as_i64(), Some(root));
    assert!(reply.get("is_topic_message").is_none());
    assert_eq!(reply["chat"]["type"], "supergroup");
    if let Some(fixture) = real("teloxide_update__issue_1107__L685.json") {
        // Telegram's: the same fields, but `entities`, the sender's `username`, and
        // the replied-to message's content (a story there, text here).
        let theirs = &fixture["message"];
        let ours: BTreeSet<String> = keys(reply);
        assert_eq!(ours, keys(theirs), "{reply}");
    }
    assert!(raw[1]["message"].get("message_thread_id").is_none(), "a basic group has no threads");
    h.stop().await;
    Ok(())
}

#[tokio::test]
async fn kinds_sent_only_on_request_are_not_sent_by_default() -> TestResult {
    let h = Harness::new().await?;
    let reaction = json!({"update_id": 1, "message_reaction": {"chat": {"id": -5, "type": "supergroup", "title": "T"},
        "message_id": 3, "date": 0, "user": {"id": 6, "is_bot": false, "first_name": "U"}, "old_reaction": [],
        "new_reaction": [{"type": "emoji", "emoji": "🌭"}]}});
    let boost = json!({"update_id": 1, "chat_boost": {"chat": {"id": -6, "type": "channel", "title": "C"},
        "boost": {"boost_id": "b", "add_date": 0, "expiration_date": 0, "source": {"source": "premium",
        "user": {"id": 6, "is_bot": false, "first_name": "U"}}}}});
    h.sim.queue_raw_update(reaction.clone());
    let id = h.sim.queue_raw_update(boost);
    let got = h.updates(None).await?;
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0]["update_id"].as_u64(), Some(id));
    assert!(got[0].get("chat_boost").is_some());
    // Asked for, it comes.
    h.sim.queue_raw_update(reaction);
    let got = h.updates(Some(&["message_reaction"])).await?;
    assert_eq!(got.len(), 1);
    assert_eq!(got[0]["message_reaction"]["new_reaction"][0]["emoji"], "🌭");
    h.stop().await;
    Ok(())
}
