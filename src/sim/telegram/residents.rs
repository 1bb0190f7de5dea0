//! Scripted residents: what users do on their side of the chat.
//!
//! Role: tests and the demo make simulated people write to the bot and
//! press its buttons; each action becomes an update queued for `getUpdates`
//! (or the webhook), shaped as Telegram shapes it, and wakes the long pollers.
//!
//! Threads, as the real fixtures show them (`../shared/data/real/telegram`,
//! `wrapped__teloxide_message__topic_message__L2824.json`,
//! `teloxide_update__issue_1107__L685.json`): a message in a forum topic has
//! the topic's `message_thread_id`, `is_topic_message: true` and, unless it
//! answers something else, the topic's creation message as
//! `reply_to_message`; a reply in a supergroup without topics (or in a
//! forum's General topic) carries its reply thread's `message_thread_id`
//! (the first message replied to) and no `is_topic_message`; a basic group
//! has no threads.

use serde_json::{Value, json};

use super::TelegramSim;
use super::state::{GroupKind, SimState, SimUser, UserStatus, private_chat_json, unix_now, user_json};

/// Every forum's General topic: never a created topic's id, and refused as a
/// `message_thread_id` (a message in General carries none).
const GENERAL_TOPIC: i64 = 1;

/// A topic icon colour Telegram allows (0x6FB9F0).
const TOPIC_ICON_COLOR: i64 = 7_322_096;

/// Where a message goes besides its chat.
#[derive(Default)]
struct Place {
    /// The group member who writes (a group's messages); `None`: the chat's own user.
    member: Option<i64>,
    /// The bot's message this one answers.
    reply_to: Option<i64>,
    /// An edit of this earlier message.
    edit_of: Option<i64>,
    /// The forum topic it is written in.
    topic: Option<i64>,
}

/// What a message carries besides its chat and sender.
enum Content<'a> {
    Text(&'a str),
    Sticker,
    Photo,
    /// Another field of a message as Telegram writes it (`location`, `contact`).
    Field(&'static str, Value),
}

impl TelegramSim {
    /// Queues a text message from the user (or, for a negative id, from a
    /// member of that group) and wakes long pollers.
    ///
    /// A user nobody added is added with a placeholder name, since anyone can
    /// write to a bot. A user who had blocked the bot unblocks it: Telegram
    /// makes a user restart a blocked bot before writing to it.
    pub fn user_sends(&self, chat_id: i64, text: &str) {
        self.user_sends_message(chat_id, text);
    }

    /// [`TelegramSim::user_sends`], returning the message's id (0 if it could not
    /// be written: an unknown group), for a later edit.
    pub fn user_sends_message(&self, chat_id: i64, text: &str) -> i64 {
        self.queue_message(chat_id, Content::Text(text), Place::default())
    }

    /// Queues a text message from `user` in the group `group`.
    pub fn member_sends(&self, group: i64, user: i64, text: &str) -> i64 {
        self.queue_message(group, Content::Text(text), Place { member: Some(user), ..Place::default() })
    }

    /// Queues a text message from `user` in the forum topic `thread` of `forum`
    /// (0 if there is no such topic).
    pub fn member_sends_in_topic(&self, forum: i64, user: i64, thread: i64, text: &str) -> i64 {
        self.queue_message(
            forum,
            Content::Text(text),
            Place { member: Some(user), topic: Some(thread), ..Place::default() },
        )
    }

    /// Queues `user`'s answer in `group` to the bot's message `to`.
    pub fn member_replies(&self, group: i64, user: i64, to: i64, text: &str) -> i64 {
        self.queue_message(
            group,
            Content::Text(text),
            Place { member: Some(user), reply_to: Some(to), ..Place::default() },
        )
    }

    /// Queues a sticker from the user, with no text.
    pub fn user_sends_sticker(&self, chat_id: i64) -> i64 {
        self.queue_message(chat_id, Content::Sticker, Place::default())
    }

    /// Queues a photo from the user, with no caption.
    pub fn user_sends_photo(&self, chat_id: i64) -> i64 {
        self.queue_message(chat_id, Content::Photo, Place::default())
    }

    /// Queues an `edited_message`: the user's message `message_id` now reads `text`.
    pub fn user_edits(&self, chat_id: i64, message_id: i64, text: &str) {
        self.queue_message(chat_id, Content::Text(text), Place { edit_of: Some(message_id), ..Place::default() });
    }

    /// `user` opens a topic called `name` in the forum `forum`: Telegram posts the
    /// service message `forum_topic_created` (an update the bot gets too), whose id
    /// is the topic's `message_thread_id`, returned (0 if `forum` is not a known
    /// forum).
    pub fn create_topic(&self, forum: i64, user: i64, name: &str) -> i64 {
        let mut st = self.inner.lock();
        let Some(chat) = st.groups.get(&forum).filter(|g| g.kind == GroupKind::Forum).map(|g| g.chat_json(forum))
        else {
            tracing::warn!(forum, "telegram sim: a topic in a chat that is not a known forum");
            return 0;
        };
        let mut id = st.take_message_id();
        if id == GENERAL_TOPIC {
            id = st.take_message_id();
        }
        let message = json!({
            "message_id": id,
            "date": unix_now(),
            "chat": chat,
            "from": member_json(&st, user),
            "message_thread_id": id,
            "is_topic_message": true,
            "forum_topic_created": {"name": name, "icon_color": TOPIC_ICON_COLOR},
        });
        if let Some(group) = st.groups.get_mut(&forum) {
            group.topics.insert(id, message.clone());
        }
        st.push_update("message", message);
        drop(st);
        self.inner.updates_changed.send_modify(|n| *n += 1);
        id
    }

    fn queue_message(&self, chat_id: i64, content: Content<'_>, place: Place) -> i64 {
        let Place { member, reply_to, edit_of, topic } = place;
        let mut st = self.inner.lock();
        let message_id = match edit_of {
            Some(id) => id,
            None => st.take_message_id(),
        };
        // (thread id, is_topic_message, the message it hangs under)
        let mut thread: Option<(i64, bool, Value)> = None;
        let (chat, from) = if chat_id < 0 {
            let Some(group) = st.groups.get(&chat_id) else {
                tracing::warn!(chat_id, "telegram sim: a message to an unknown group");
                return 0;
            };
            if let Some(t) = topic {
                let Some(root) = group.topics.get(&t) else {
                    tracing::warn!(chat_id, t, "telegram sim: a message in a topic the forum does not have");
                    return 0;
                };
                thread = Some((t, true, root.clone()));
            }
            let chat = group.chat_json(chat_id);
            let kind = group.kind;
            if let Some(original) =
                reply_to.and_then(|to| st.bot_messages.get(&to)).filter(|m| m["chat"]["id"] == chat_id)
                && kind != GroupKind::Basic
            {
                thread = Some(match original["message_thread_id"].as_i64() {
                    Some(t) => (t, original["is_topic_message"] == true, original.clone()),
                    // A reply starts a reply thread named by the message replied to.
                    None => (original["message_id"].as_i64().unwrap_or_default(), false, original.clone()),
                });
            }
            let user = member.unwrap_or(chat_id.saturating_neg());
            (chat, member_json(&st, user))
        } else {
            let user = st.users.entry(chat_id).or_insert_with(|| SimUser {
                first_name: format!("User {chat_id}"),
                language_code: None,
                status: UserStatus::Active,
            });
            let unblocked = user.status == UserStatus::Blocked;
            if unblocked {
                user.status = UserStatus::Active;
            }
            let chat = private_chat_json(chat_id, &user.first_name);
            let from = user_json(chat_id, user);
            if unblocked {
                // Restarting a blocked bot is a status change the bot hears of first.
                let bot = self.inner.bot_user_json();
                st.push_my_chat_member(chat.clone(), from.clone(), bot, "kicked", "member");
            }
            (chat, from)
        };
        let mut message = json!({
            "message_id": message_id,
            "date": unix_now(),
            "chat": chat,
            "from": from,
        });
        if let Some((id, is_topic, root)) = thread {
            message["message_thread_id"] = json!(id);
            if is_topic {
                message["is_topic_message"] = json!(true);
                if reply_to.is_none() {
                    message["reply_to_message"] = root;
                }
            }
        }
        match content {
            Content::Text(text) => {
                message["text"] = json!(text);
                if text.starts_with('/') {
                    let command = text.split(char::is_whitespace).next().unwrap_or(text);
                    message["entities"] = json!([{
                        "type": "bot_command",
                        "offset": 0,
                        "length": command.encode_utf16().count(),
                    }]);
                }
            }
            Content::Sticker => {
                message["sticker"] = json!({
                    "file_id": format!("sticker-{message_id}"), "file_unique_id": format!("su-{message_id}"),
                    "type": "regular", "width": 512, "height": 512, "is_animated": false, "is_video": false,
                    "emoji": "👍",
                });
            }
            Content::Field(field, value) => message[field] = value,
            Content::Photo => {
                message["photo"] = json!([{
                    "file_id": format!("photo-{message_id}"), "file_unique_id": format!("pu-{message_id}"),
                    "width": 90, "height": 60, "file_size": 1200,
                }]);
            }
        }
        if let Some(to) = reply_to {
            match st.bot_messages.get(&to).filter(|m| m["chat"]["id"].as_i64() == Some(chat_id)) {
                Some(original) => message["reply_to_message"] = original.clone(),
                None => tracing::warn!(chat_id, to, "telegram sim: a reply to a message the bot did not send here"),
            }
        }
        match edit_of {
            Some(_) => {
                message["edit_date"] = json!(unix_now());
                st.push_update("edited_message", message);
            }
            None => {
                st.push_update("message", message);
            }
        }
        drop(st);
        self.inner.updates_changed.send_modify(|n| *n += 1);
        message_id
    }

    /// Queues a location the user shares (the attachment menu, or a reply keyboard's
    /// `request_location` button), as Telegram shapes it: a message with `location`
    /// and no text.
    pub fn user_sends_location(&self, chat_id: i64, latitude: f64, longitude: f64) {
        let location = json!({"latitude": latitude, "longitude": longitude});
        self.queue_message(chat_id, Content::Field("location", location), Place::default());
    }

    /// Queues a contact card the user shares. `own` is a card of the user's own
    /// number (a `request_contact` button): Telegram sets its `user_id` to the
    /// sender's; a card from the address book carries another user's id, or none.
    pub fn user_sends_contact(&self, chat_id: i64, phone: &str, own: bool) {
        let mut contact = json!({"phone_number": phone, "first_name": "Contact"});
        if own {
            contact["user_id"] = json!(chat_id);
        }
        self.queue_message(chat_id, Content::Field("contact", contact), Place::default());
    }

    /// Queues a press of an inline button on a message the bot sent to
    /// `chat_id` earlier. An unknown message is logged and ignored, since
    /// Telegram could not produce such a press.
    pub fn user_presses(&self, chat_id: i64, message_id: i64, data: &str) {
        let presser = if chat_id < 0 { chat_id.saturating_neg() } else { chat_id };
        self.member_presses(chat_id, presser, message_id, data);
    }

    /// Queues `user`'s press of an inline button on the bot's message
    /// `message_id` in `chat_id` (a group, or the user's own chat).
    pub fn member_presses(&self, chat_id: i64, user: i64, message_id: i64, data: &str) {
        let mut st = self.inner.lock();
        let message = st.bot_messages.get(&message_id).filter(|m| m["chat"]["id"].as_i64() == Some(chat_id)).cloned();
        let Some(message) = message else {
            tracing::warn!(chat_id, message_id, "telegram sim: press on a message the bot did not send to this chat");
            return;
        };
        let from = member_json(&st, user);
        let query_id = format!("{}", 9_000_000_000_u64 + st.next_callback_id);
        st.next_callback_id += 1;
        st.open_callbacks.insert(query_id.clone());
        let query = json!({
            "id": query_id,
            "from": from,
            "message": message,
            "chat_instance": format!("sim-{chat_id}"),
            "data": data,
        });
        st.push_update("callback_query", query);
        drop(st);
        self.inner.updates_changed.send_modify(|n| *n += 1);
    }
}

/// A known user as Telegram shows them, or a placeholder group member.
pub(super) fn member_json(st: &SimState, user: i64) -> Value {
    match st.users.get(&user) {
        Some(u) => user_json(user, u),
        None => json!({"id": user, "is_bot": false, "first_name": "Group member"}),
    }
}
