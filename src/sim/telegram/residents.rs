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
        let message_id = st.take_message_id();
        let (chat, from) = if chat_id < 0 {
            let Some(title) = st.groups.get(&chat_id) else {
                tracing::warn!(chat_id, "telegram sim: user_sends to an unknown group");
                return;
            };
            // A synthetic member; enough for a valid `from`.
            let member = json!({
                "id": chat_id.unsigned_abs(),
                "is_bot": false,
                "first_name": "Group member",
            });
            (json!({"id": chat_id, "type": "group", "title": title}), member)
        } else {
            let user = st.users.entry(chat_id).or_insert_with(|| SimUser {
                first_name: format!("User {chat_id}"),
                language_code: None,
                status: UserStatus::Active,
            });
            if user.status == UserStatus::Blocked {
                user.status = UserStatus::Active;
            }
            let chat = private_chat_json(chat_id, &user.first_name);
            (chat, user_json(chat_id, user))
        };
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
