//! The Telegram side of the bot: getUpdates long polling, one chat at a time in order.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use teloxide::prelude::*;
use teloxide::types::{CallbackQueryId, UpdateKind};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::{Conversation, Input, Replies, Reply, Sender};
use crate::channels::telegram;
use crate::config::secret::mask;
use crate::messages::{Lang, escape};

/// Updates of one chat waiting for an answer before further ones are dropped.
const MAX_QUEUED_PER_CHAT: usize = 10;

/// Polls Telegram for updates until cancelled. Each update is handled in a task on
/// `tracker`; updates of one chat are handled in arrival order.
pub async fn run(
    bot: Bot,
    conversation: Arc<Conversation>,
    operators: Arc<crate::operators::Operators>,
    replies: Replies,
    long_poll: Duration,
    cancel: CancellationToken,
    tracker: TaskTracker,
) {
    let mut offset: i32 = 0;
    let mut backoff = Duration::from_secs(1);
    let mut chat_locks: HashMap<i64, Arc<tokio::sync::Mutex<()>>> = HashMap::new();
    loop {
        let request = bot.get_updates().offset(offset).timeout(long_poll.as_secs().min(u64::from(u32::MAX)) as u32);
        let updates = tokio::select! {
            () = cancel.cancelled() => return,
            r = request.send() => r,
        };
        let updates = match updates {
            Ok(u) => {
                backoff = Duration::from_secs(1);
                u
            }
            Err(e) => {
                tracing::warn!(error = %telegram::describe(&e), ?backoff, "getUpdates failed; retrying");
                tokio::select! {
                    () = cancel.cancelled() => return,
                    () = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(Duration::from_secs(30));
                continue;
            }
        };
        chat_locks.retain(|_, l| Arc::strong_count(l) > 1);
        for update in updates {
            offset = offset.max(i32::try_from(update.id.0).unwrap_or(i32::MAX).saturating_add(1));
            let Some((from, input, callback_id)) = read_update(update) else { continue };
            let chat = from.chat;
            let lock = chat_locks.entry(chat).or_default().clone();
            // Each waiting update holds a clone of its chat's lock (besides the map and
            // this one). A chat with a long queue is flooding: answering it would take
            // minutes at one reply per second, so the excess is dropped, not queued.
            if Arc::strong_count(&lock) > MAX_QUEUED_PER_CHAT + 2 {
                tracing::warn!(chat = %mask(&chat.to_string()), "flood: update dropped");
                continue;
            }
            let (bot, conversation, replies) = (bot.clone(), conversation.clone(), replies.clone());
            let operators = operators.clone();
            tracker.spawn(async move {
                let _turn = lock.lock().await;
                if let Some(id) = callback_id {
                    // Stops the button's spinner; failure only leaves it spinning.
                    if let Err(e) = bot.answer_callback_query(id).await {
                        tracing::debug!(error = %telegram::describe(&e), "answerCallbackQuery failed");
                    }
                }
                // Operators' commands (and `/drills`) are answered by their own module.
                let handled = match operators.handle(&from, &input).await {
                    Some(answers) => Ok(answers),
                    None => conversation.handle(&from, input).await,
                };
                let answers = match handled {
                    Ok(r) => r,
                    Err(e) => {
                        tracing::error!(error = %e, chat = %mask(&chat.to_string()), "bot could not use the store");
                        let composer = conversation.composer.borrow().clone();
                        vec![Reply::text(escape(&composer.text(Lang::Uk, "bot-error", &[], "Error")))]
                    }
                };
                for reply in answers {
                    replies.send(chat, reply).await;
                }
            });
        }
    }
}

/// Who sent it, the input and (for buttons) the callback id.
fn read_update(update: Update) -> Option<(Sender, Input, Option<CallbackQueryId>)> {
    match update.kind {
        UpdateKind::Message(msg) => {
            let user = msg.from.as_ref().and_then(|u| i64::try_from(u.id.0).ok());
            let lang = msg.from.as_ref().and_then(|u| u.language_code.clone());
            let input = if let Some(t) = msg.text() {
                Input::Text(t.to_owned())
            } else if let Some(l) = msg.location() {
                Input::Location { lat: l.latitude, lon: l.longitude }
            } else if let Some(c) = msg.contact() {
                let own = c.user_id.is_some_and(|id| i64::try_from(id.0).ok() == user);
                Input::Contact { phone: c.phone_number.clone(), own }
            } else {
                Input::NotText
            };
            let group = msg.chat.is_group() || msg.chat.is_supergroup();
            // A group's admins are told apart once group subscriptions are handled;
            // until then nobody in a group may change them.
            let from = Sender { chat: msg.chat.id.0, user, app_lang: lang, group, admin: !group };
            Some((from, input, None))
        }
        UpdateKind::CallbackQuery(q) => {
            let chat = i64::try_from(q.from.id.0).ok()?;
            let data = q.data.clone().unwrap_or_default();
            let from = Sender::private(chat, q.from.language_code.as_deref());
            Some((from, Input::Button(data), Some(q.id.clone())))
        }
        _ => None,
    }
}
