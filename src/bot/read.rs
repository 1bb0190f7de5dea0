//! What the bot makes of one update, without IO: an input to answer (in which chat,
//! which forum topic, from whom), a change of the bot's own membership in a chat, or
//! nothing — and then why. Every real update shape in `../shared/data/real/telegram`
//! goes through [`read`] in `tests/telegram_fixtures.rs`.
//!
//! Rules (Bot API): a message in a forum topic has `is_topic_message` and the topic's
//! `message_thread_id`, and the answer goes to that topic. A message in a supergroup
//! without topics (or in a forum's General topic) may carry a `message_thread_id`
//! without `is_topic_message`: that is a reply thread, which `sendMessage` refuses
//! ("message thread not found"), so it is not kept. In a group only what is meant for
//! the bot is read: its own commands bare or with `@ourbot`, `/cmd@ourbot` whatever
//! the command, replies to its messages, presses of its buttons. A bare command that
//! is not one of ours is for another bot in the group and is ignored; in a private
//! chat it gets help.

use serde_json::Value;

use super::api::{RawMessage, RawUpdate, read_update};
use super::commands::{self, Command};
use super::updates::Me;
use super::{Input, Sender};

/// What one update is to the bot.
#[derive(Clone, Debug, PartialEq)]
pub enum Reading {
    /// Something to answer.
    Input(Inbound),
    /// The bot's own membership in a chat changed (`my_chat_member`).
    Membership(Membership),
    /// Nothing for the bot to do, and why.
    Ignored(Ignored),
}

/// An input to answer, and where.
#[derive(Clone, Debug, PartialEq)]
pub struct Inbound {
    /// The chat the answer goes to.
    pub chat: i64,
    /// The forum topic the input came from; the answer goes there too.
    pub thread: Option<i32>,
    pub sender: Sender,
    pub input: Input,
    /// A pressed button's query id, answered to stop its spinner.
    pub callback: Option<String>,
}

/// A change of the bot's status in a chat.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Membership {
    pub chat: i64,
    pub kind: ChatKind,
    pub change: MemberChange,
}

/// The chats the bot tells apart.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChatKind {
    Private,
    /// A group or supergroup.
    Group,
    Channel,
}

/// What a `my_chat_member` update means for the chat.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MemberChange {
    /// The bot is out: blocked in a private chat (`kicked`), removed (`left`) or
    /// banned (`kicked`) from a group or channel.
    Gone,
    /// The bot is back (unblocked, added again): from `left`/`kicked` to a member.
    Back,
    /// Anything else (rights changed, restricted).
    Other,
}

/// Why an update gets nothing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ignored {
    /// A kind of update the bot does not read, named by its field (`inline_query`,
    /// `chat_boost`, a field nobody knows yet…).
    Kind(String),
    /// A kind it reads, with fields that do not (its id still reads).
    Unreadable,
    /// In a group and not meant for the bot: chatter, `/cmd@other_bot`, a bare
    /// command that is not one of ours.
    NotForUs,
    /// A message in a channel.
    Channel,
    /// A press on an inline-mode message (no `message`): the bot sends none.
    InlineButton,
}

impl std::fmt::Display for Ignored {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Ignored::Kind(kind) => write!(f, "a `{kind}` update, which the bot does not read"),
            Ignored::Unreadable => f.write_str("an update whose fields do not read"),
            Ignored::NotForUs => f.write_str("not meant for the bot"),
            Ignored::Channel => f.write_str("a channel message"),
            Ignored::InlineButton => f.write_str("a press on an inline-mode message"),
        }
    }
}

/// Reads one update: its id and what the bot makes of it; `None` when even the id
/// does not read.
pub fn read(update: &Value, me: &Me) -> Option<(i64, Reading)> {
    let (id, raw) = read_update(update)?;
    let reading = match raw {
        Some(raw) => reading(raw, me, update),
        None => Reading::Ignored(Ignored::Unreadable),
    };
    Some((id, reading))
}

fn reading(update: RawUpdate, me: &Me, json: &Value) -> Reading {
    if let Some(q) = update.callback_query {
        // A press answers in the chat of the message the button is on (a group's,
        // for a group message; its topic, in a forum), as the person who pressed it.
        let Some(message) = q.message.as_ref() else { return Reading::Ignored(Ignored::InlineButton) };
        let group = is_group(&message.chat.kind);
        let chat = message.chat.id;
        let sender =
            Sender { chat, user: Some(q.from.id), app_lang: q.from.language_code.clone(), group, admin: !group };
        let input = Input::Button(q.data.unwrap_or_default());
        return Reading::Input(Inbound { chat, thread: topic(message), sender, input, callback: Some(q.id) });
    }
    if let Some(m) = update.my_chat_member {
        let kind = match m.chat.kind.as_str() {
            "private" => ChatKind::Private,
            "channel" => ChatKind::Channel,
            _ => ChatKind::Group,
        };
        let out = |s: &str| matches!(s, "left" | "kicked");
        let change = match (m.old_chat_member.status.as_str(), m.new_chat_member.status.as_str()) {
            (_, new) if out(new) => MemberChange::Gone,
            (old, "member" | "administrator" | "creator") if out(old) => MemberChange::Back,
            _ => MemberChange::Other,
        };
        return Reading::Membership(Membership { chat: m.chat.id, kind, change });
    }
    let Some(message) = update.message.or(update.edited_message) else {
        let kind = json.as_object().and_then(|o| o.keys().find(|k| *k != "update_id")).map_or("", String::as_str);
        return Reading::Ignored(Ignored::Kind(kind.to_owned()));
    };
    if message.chat.kind == "channel" {
        return Reading::Ignored(Ignored::Channel);
    }
    let group = is_group(&message.chat.kind);
    let mut input = read_input(&message);
    if group {
        match for_us_in_group(input, &message, me) {
            Some(i) => input = i,
            None => return Reading::Ignored(Ignored::NotForUs),
        }
    }
    let from = message.from.as_ref();
    let anonymous = from.is_some_and(|u| u.is_bot && u.username.as_deref() == Some("GroupAnonymousBot"));
    let user = from.filter(|_| !anonymous).map(|u| u.id);
    let sender = Sender {
        chat: message.chat.id,
        user,
        app_lang: from.and_then(|u| u.language_code.clone()),
        group,
        admin: !group,
    };
    Reading::Input(Inbound { chat: message.chat.id, thread: topic(&message), sender, input, callback: None })
}

/// The forum topic a message is in: its `message_thread_id` when `is_topic_message`
/// says it names a topic (a reply thread's id would be refused by `sendMessage`).
fn topic(message: &RawMessage) -> Option<i32> {
    let id = message.message_thread_id.filter(|_| message.is_topic_message)?;
    i32::try_from(id).ok()
}

fn is_group(kind: &str) -> bool {
    kind == "group" || kind == "supergroup"
}

fn read_input(message: &RawMessage) -> Input {
    if let Some(t) = &message.text {
        Input::Text(t.clone())
    } else if let Some(l) = &message.location {
        Input::Location { lat: l.latitude, lon: l.longitude }
    } else if let Some(c) = &message.contact {
        let own = c.user_id.is_some() && c.user_id == message.from.as_ref().map(|u| u.id);
        Input::Contact { phone: c.phone_number.clone(), own }
    } else {
        Input::NotText
    }
}

/// Whether `/name` is one of the bot's commands: a resident's, `/sms`, `/drills` or
/// an operator's.
pub fn is_our_command(name: &str) -> bool {
    let text = format!("/{name}");
    !matches!(commands::parse(&text), Command::Unknown(_))
        || name.eq_ignore_ascii_case("sms")
        || crate::operators::commands::parse_drills(&text).is_some()
        || crate::operators::commands::parse(&format!("{text} x")).is_some()
}

/// In a group: one of our commands bare, any command with our `@name` (taken off),
/// or anything that answers one of the bot's messages. `None` for the rest.
fn for_us_in_group(input: Input, message: &RawMessage, me: &Me) -> Option<Input> {
    let reply_to_us = message.reply_to_message.as_ref().and_then(|m| m.from.as_ref()).is_some_and(|u| u.id == me.id);
    match input {
        Input::Text(text) if text.trim_start().starts_with('/') => {
            let text = text.trim_start();
            let (head, rest) = text.split_once(char::is_whitespace).unwrap_or((text, ""));
            match head.split_once('@') {
                None => is_our_command(&head[1..]).then(|| Input::Text(text.to_owned())),
                Some((cmd, name)) if name.eq_ignore_ascii_case(&me.username) => {
                    Some(Input::Text(if rest.is_empty() { cmd.to_owned() } else { format!("{cmd} {rest}") }))
                }
                Some(_) => None,
            }
        }
        other => reply_to_us.then_some(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn me() -> Me {
        Me { id: 42, username: "sirena_bot".into() }
    }

    fn group_text(text: &str, reply_to_bot: bool) -> Value {
        let mut m = json!({"message_id": 1, "chat": {"id": -5, "type": "supergroup"}, "from": {"id": 7}, "text": text});
        if reply_to_bot {
            m["reply_to_message"] =
                json!({"message_id": 0, "chat": {"id": -5, "type": "supergroup"}, "from": {"id": 42, "is_bot": true}});
        }
        json!({"update_id": 1, "message": m})
    }

    fn text_of(update: &Value) -> Option<String> {
        match read(update, &me()) {
            Some((_, Reading::Input(Inbound { input: Input::Text(t), .. }))) => Some(t),
            _ => None,
        }
    }

    #[test]
    fn in_groups_only_what_is_meant_for_the_bot_is_read() {
        let cases: &[(&str, bool, Option<&str>)] = &[
            ("/subscribe Харків", false, Some("/subscribe Харків")),
            ("/subscribe@sirena_bot Харків", false, Some("/subscribe Харків")),
            ("/list@Sirena_Bot", false, Some("/list")),
            ("/status", false, Some("/status")),
            ("/sms", false, Some("/sms")),
            ("/drills on", false, Some("/drills on")),
            ("/sources", false, Some("/sources")),
            ("/cancel air_raid:x:started", false, Some("/cancel air_raid:x:started")),
            // Another bot's command, bare: not ours, so not for us.
            ("/report", false, None),
            ("/weather@sirena_bot", false, Some("/weather")),
            ("/subscribe@other_bot Харків", false, None),
            ("Привіт усім", false, None),
            ("Харків", true, Some("Харків")),
        ];
        for (text, reply, want) in cases {
            let got = text_of(&group_text(text, *reply));
            assert_eq!(got.as_deref(), *want, "{text:?} (reply to the bot: {reply})");
        }
        let private = json!({"update_id": 2, "message": {"message_id": 1, "chat": {"id": 8, "type": "private"}, "text": "/report"}});
        assert_eq!(text_of(&private).as_deref(), Some("/report"), "in a private chat an unknown command gets help");
    }

    #[test]
    fn a_press_in_a_group_answers_the_group_as_the_presser() {
        let q = json!({"update_id": 3, "callback_query": {"id": "q1", "from": {"id": 7, "language_code": "en"}, "data": "sub:x",
            "message": {"message_id": 9, "chat": {"id": -5, "type": "group"}, "from": {"id": 42, "is_bot": true}}}});
        let Some((3, Reading::Input(got))) = read(&q, &me()) else { panic!("not an input") };
        assert_eq!(got.chat, -5);
        let s = &got.sender;
        assert_eq!((s.chat, s.user, s.group, s.admin), (-5, Some(7), true, false));
        assert_eq!(got.callback.as_deref(), Some("q1"));
        assert_eq!(got.thread, None);
    }

    #[test]
    fn a_topic_is_kept_a_reply_thread_is_not() {
        let topic = json!({"update_id": 4, "message": {"message_id": 5, "chat": {"id": -100, "type": "supergroup", "is_forum": true},
            "from": {"id": 7}, "text": "/status", "message_thread_id": 4, "is_topic_message": true}});
        let Some((_, Reading::Input(got))) = read(&topic, &me()) else { panic!("not an input") };
        assert_eq!((got.chat, got.thread), (-100, Some(4)));
        let reply_thread = json!({"update_id": 5, "message": {"message_id": 6, "chat": {"id": -100, "type": "supergroup"},
            "from": {"id": 7}, "text": "/status", "message_thread_id": 3}});
        let Some((_, Reading::Input(got))) = read(&reply_thread, &me()) else { panic!("not an input") };
        assert_eq!(got.thread, None);
        let press = json!({"update_id": 6, "callback_query": {"id": "q", "from": {"id": 7}, "data": "d",
            "message": {"message_id": 9, "chat": {"id": -100, "type": "supergroup", "is_forum": true},
                "from": {"id": 42, "is_bot": true}, "message_thread_id": 4, "is_topic_message": true}}});
        let Some((_, Reading::Input(got))) = read(&press, &me()) else { panic!("not an input") };
        assert_eq!(got.thread, Some(4), "a press in a topic is answered in it");
    }

    #[test]
    fn edited_messages_and_stickers_are_read() {
        let edited = json!({"update_id": 4, "edited_message": {"message_id": 3, "chat": {"id": 8, "type": "private"}, "from": {"id": 8}, "text": "Харків"}});
        assert_eq!(text_of(&edited).as_deref(), Some("Харків"));
        let sticker = json!({"update_id": 5, "message": {"message_id": 4, "chat": {"id": 8, "type": "private"}, "from": {"id": 8}, "sticker": {"file_id": "x"}}});
        assert!(matches!(
            read(&sticker, &me()),
            Some((5, Reading::Input(Inbound { chat: 8, input: Input::NotText, .. })))
        ));
    }

    #[test]
    fn membership_changes() {
        let change = |kind: &str, old: &str, new: &str| {
            let u = json!({"update_id": 9, "my_chat_member": {"chat": {"id": 3, "type": kind}, "from": {"id": 3}, "date": 0,
                "old_chat_member": {"status": old, "user": {"id": 42}}, "new_chat_member": {"status": new, "user": {"id": 42}}}});
            match read(&u, &me()) {
                Some((9, Reading::Membership(m))) => (m.kind, m.change),
                other => panic!("{other:?}"),
            }
        };
        assert_eq!(change("private", "member", "kicked"), (ChatKind::Private, MemberChange::Gone));
        assert_eq!(change("private", "kicked", "member"), (ChatKind::Private, MemberChange::Back));
        assert_eq!(change("group", "member", "left"), (ChatKind::Group, MemberChange::Gone));
        assert_eq!(change("supergroup", "left", "administrator"), (ChatKind::Group, MemberChange::Back));
        assert_eq!(change("supergroup", "member", "administrator"), (ChatKind::Group, MemberChange::Other));
        assert_eq!(change("channel", "administrator", "left"), (ChatKind::Channel, MemberChange::Gone));
    }

    #[test]
    fn other_kinds_keep_their_id_and_are_named() {
        let poll = json!({"update_id": 5_000_000_000_i64, "poll": {"id": "x"}});
        assert_eq!(read(&poll, &me()), Some((5_000_000_000, Reading::Ignored(Ignored::Kind("poll".into())))));
        let broken = json!({"update_id": 7, "message": {"chat": "nonsense"}});
        assert_eq!(read(&broken, &me()), Some((7, Reading::Ignored(Ignored::Unreadable))));
        assert_eq!(read(&json!({"message": {}}), &me()), None);
    }
}
