//! Scripted residents: what users do on their side of the chat.
//!
//! Role: tests and the demo make simulated people write to the bot and
//! press its buttons; each action becomes an update queued for `getUpdates`,
//! shaped as Telegram shapes it, and wakes the long pollers.

use serde_json::json;

use super::TelegramSim;
use super::state::{SimUser, UserStatus, private_chat_json, unix_now, user_json};

impl TelegramSim {
    /// Queues a text message from the user (or, for a negative id, from a
    /// member of that group) and wakes long pollers.
    ///
    /// A user nobody added is added with a placeholder name, since anyone can
    /// write to a bot. A user who had blocked the bot unblocks it: Telegram
    /// makes a user restart a blocked bot before writing to it.
    pub fn user_sends(&self, chat_id: i64, text: &str) {
        let mut st = self.inner.lock();
        let Some((chat, from)) = sender(&mut st, chat_id) else { return };
        let message_id = st.take_message_id();
        let mut message = json!({
            "message_id": message_id,
            "date": unix_now(),
            "chat": chat,
            "from": from,
            "text": text,
        });
        if text.starts_with('/') {
            let command = text.split(char::is_whitespace).next().unwrap_or(text);
            message["entities"] = json!([{
                "type": "bot_command",
                "offset": 0,
                "length": command.encode_utf16().count(),
            }]);
        }
        st.push_update("message", "message", message);
        drop(st);
        self.inner.updates_changed.send_modify(|n| *n += 1);
    }

    /// Queues a location the user shares (the attachment menu, or a reply keyboard's
    /// `request_location` button), as Telegram shapes it: a message with `location`
    /// and no text.
    pub fn user_sends_location(&self, chat_id: i64, latitude: f64, longitude: f64) {
        self.push_message(chat_id, "location", json!({"latitude": latitude, "longitude": longitude}));
    }

    /// Queues a contact card the user shares. `own` is a card of the user's own
    /// number (a `request_contact` button): Telegram sets its `user_id` to the
    /// sender's; a card from the address book carries another user's id, or none.
    pub fn user_sends_contact(&self, chat_id: i64, phone: &str, own: bool) {
        let mut contact = json!({"phone_number": phone, "first_name": "Contact"});
        if own {
            contact["user_id"] = json!(chat_id);
        }
        self.push_message(chat_id, "contact", contact);
    }

    fn push_message(&self, chat_id: i64, field: &str, value: serde_json::Value) {
        let mut st = self.inner.lock();
        let Some((chat, from)) = sender(&mut st, chat_id) else { return };
        let message_id = st.take_message_id();
        let mut message = json!({"message_id": message_id, "date": unix_now(), "chat": chat, "from": from});
        message[field] = value;
        st.push_update("message", "message", message);
        drop(st);
        self.inner.updates_changed.send_modify(|n| *n += 1);
    }

    /// Queues a press of an inline button on a message the bot sent to
    /// `chat_id` earlier. An unknown message is logged and ignored, since
    /// Telegram could not produce such a press.
    pub fn user_presses(&self, chat_id: i64, message_id: i64, data: &str) {
        let mut st = self.inner.lock();
        let message = st.bot_messages.get(&message_id).filter(|m| m["chat"]["id"].as_i64() == Some(chat_id)).cloned();
        let Some(message) = message else {
            tracing::warn!(chat_id, message_id, "telegram sim: press on a message the bot did not send to this chat");
            return;
        };
        let from = match st.users.get(&chat_id) {
            Some(user) => user_json(chat_id, user),
            None => {
                json!({"id": chat_id.unsigned_abs(), "is_bot": false, "first_name": "Group member"})
            }
        };
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
        st.push_update("callback_query", "callback_query", query);
        drop(st);
        self.inner.updates_changed.send_modify(|n| *n += 1);
    }
}

/// The `chat` and `from` of a message from `chat_id`: a user (added if new, unblocked
/// if they had blocked the bot) or, for a negative id, a member of that group; `None`
/// for an unknown group.
fn sender(st: &mut super::state::SimState, chat_id: i64) -> Option<(serde_json::Value, serde_json::Value)> {
    if chat_id < 0 {
        let Some(title) = st.groups.get(&chat_id) else {
            tracing::warn!(chat_id, "telegram sim: a message to an unknown group");
            return None;
        };
        // A synthetic member; enough for a valid `from`.
        let member = json!({
            "id": chat_id.unsigned_abs(),
            "is_bot": false,
            "first_name": "Group member",
        });
        return Some((json!({"id": chat_id, "type": "group", "title": title}), member));
    }
    let user = st.users.entry(chat_id).or_insert_with(|| SimUser {
        first_name: format!("User {chat_id}"),
        language_code: None,
        status: UserStatus::Active,
    });
    if user.status == UserStatus::Blocked {
        user.status = UserStatus::Active;
    }
    Some((private_chat_json(chat_id, &user.first_name), user_json(chat_id, user)))
}
