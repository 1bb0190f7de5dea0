//! The Telegram side of the bot: updates in (getUpdates long polling, or the webhook
//! through [`Inbox::push`]), one ordered queue per chat, answers out.
//!
//! Each chat has a queue and, while it holds anything, one worker task (on the
//! daemon's `TaskTracker`) that takes its updates in arrival order and ends when the
//! queue is empty, so a chat's `/start` is always decided before its `/subscribe`.
//! A chat whose queue passes [`SLOW_AFTER`] is flooding: it is told once (the
//! `bot-flood-slowed` message, next in its queue) that answers will be slower, and
//! updates beyond [`MAX_QUEUED`] are dropped (counted), so memory stays bounded while
//! every chat still gets an answer to its first messages. Each update is decided
//! within `handle_timeout`; one that takes longer is answered with `bot-error`.
//!
//! In groups only what is meant for the bot is read: commands without a `@name` or
//! with ours (learnt from getMe at start), replies to the bot's messages, and presses
//! of its buttons. `/cmd@other_bot` and plain chatter get nothing. Whether the
//! person may change the group's subscriptions (`Sender::admin`) is asked with
//! getChatMember (creator or administrator), only for such inputs, and remembered for
//! [`ADMIN_TTL`]. Edited messages are read as new input: a resident who corrects a
//! mistyped village name expects the bot to answer the corrected one.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::api::{ApiError, BotApi, RawMessage, RawUpdate, read_update};
use super::{CHANNEL, Conversation, Input, Replies, Reply, Sender};
use crate::config::secret::{Secret, mask};
use crate::internal_events::InternalEvent;
use crate::internal_events::bot::{FloodNoticeSent, Handled, Polling, UpdateDropped, UpdateHandled, UpdateReceived};
use crate::messages::{Lang, escape};

/// A chat with more updates than this waiting is flooding and is told so once.
pub const SLOW_AFTER: usize = 5;
/// Updates of one chat kept waiting at most; later ones are dropped until it drains.
pub const MAX_QUEUED: usize = 12;
/// How long a group member's admin status is believed.
const ADMIN_TTL: Duration = Duration::from_secs(60);
/// Pauses after a failed getUpdates, getMe or setWebhook: doubling up to the last.
const FIRST_RETRY: Duration = Duration::from_secs(1);
const MAX_RETRY: Duration = Duration::from_secs(30);

/// How updates arrive.
#[derive(Clone, Debug)]
pub enum Transport {
    /// getUpdates, each poll waiting up to this long.
    Polling(Duration),
    /// Telegram POSTs to `url` (served by `web.rs`, which calls [`Inbox::push`]).
    Webhook { url: String, secret: Secret },
}

crate::metrics::counters! {
    /// What the bot's transport has done, for tests and `/metrics`.
    pub struct BotStats {
        /// Updates read (each id once).
        received,
        /// Updates not meant for the bot (group chatter, another bot's command) or of
        /// a kind it does not read.
        ignored,
        /// Updates decided and answered (or whose answer failed for good).
        handled,
        /// Updates dropped from a flooding chat's full queue.
        dropped,
        /// Flood notices sent.
        flood_notices,
        /// Updates that took longer than `handle_timeout`.
        timed_out,
        /// Updates answered with the error text because the store failed.
        store_errors,
        /// getUpdates requests made.
        polls,
    }
}

impl BotStats {
    /// Every update read is handled, ignored or dropped: nothing is still waiting.
    pub fn settled(&self) -> bool {
        let g = Self::get;
        g(&self.received) == g(&self.ignored) + g(&self.handled) + g(&self.dropped)
    }
}

/// The bot's own account, from getMe.
#[derive(Clone, Debug)]
struct Me {
    id: i64,
    username: String,
}

/// One input waiting in its chat's queue.
enum Job {
    Update {
        sender: Sender,
        input: Input,
        callback: Option<String>,
    },
    /// "You write faster than I can answer", once per flood.
    FloodNotice {
        app_lang: Option<String>,
    },
}

#[derive(Default)]
struct ChatQueue {
    jobs: VecDeque<Job>,
    /// The worker has taken this chat's first job.
    started: bool,
    /// The chat was told it is flooding.
    told: bool,
}

/// Where updates go in, from the poll loop or the webhook. Cheap to clone.
#[derive(Clone)]
pub struct Inbox {
    core: Arc<Core>,
}

struct Core {
    api: BotApi,
    conversation: Arc<Conversation>,
    operators: Arc<crate::operators::Operators>,
    replies: Replies,
    handle_timeout: Duration,
    me: watch::Sender<Option<Me>>,
    /// A chat is here exactly while its worker runs.
    chats: Mutex<HashMap<i64, ChatQueue>>,
    /// The highest update id taken in: a webhook may deliver one again.
    last_id: Mutex<Option<i64>>,
    admins: Mutex<HashMap<(i64, i64), (bool, Instant)>>,
    stats: Arc<BotStats>,
    tracker: TaskTracker,
    cancel: CancellationToken,
}

/// The bot does not know its own name yet (getMe has not answered): a webhook
/// delivery is refused so that Telegram delivers it again.
#[derive(Debug, thiserror::Error)]
#[error("the bot is still starting")]
pub struct NotReady;

impl Inbox {
    pub fn new(
        api: BotApi,
        conversation: Arc<Conversation>,
        operators: Arc<crate::operators::Operators>,
        replies: Replies,
        handle_timeout: Duration,
        tracker: TaskTracker,
        cancel: CancellationToken,
    ) -> Inbox {
        let core = Core {
            api,
            conversation,
            operators,
            replies,
            handle_timeout,
            me: watch::Sender::new(None),
            chats: Mutex::new(HashMap::new()),
            last_id: Mutex::new(None),
            admins: Mutex::new(HashMap::new()),
            stats: Arc::new(BotStats::default()),
            tracker,
            cancel,
        };
        Inbox { core: Arc::new(core) }
    }

    pub fn stats(&self) -> Arc<BotStats> {
        self.core.stats.clone()
    }

    /// Takes one update in (its raw JSON): read, filtered, queued on its chat. An
    /// update whose id was already taken is skipped.
    pub fn push(&self, update: &Value) -> Result<(), NotReady> {
        let Some(me) = self.core.me.borrow().clone() else { return Err(NotReady) };
        let Some((id, raw)) = read_update(update) else {
            tracing::warn!("an update without an id ignored");
            return Ok(());
        };
        {
            let mut last = lock(&self.core.last_id);
            if last.is_some_and(|l| id <= l) {
                return Ok(());
            }
            *last = Some(id);
        }
        let job = raw.and_then(|u| read_job(u, &me));
        UpdateReceived { id, ignored: job.is_none() }.emit(&self.core.stats);
        if let Some((chat, job)) = job {
            self.enqueue(chat, job);
        }
        Ok(())
    }

    fn enqueue(&self, chat: i64, job: Job) {
        let mut chats = lock(&self.core.chats);
        let new = !chats.contains_key(&chat);
        let queue = chats.entry(chat).or_default();
        let app_lang = match &job {
            Job::Update { sender, .. } => sender.app_lang.clone(),
            Job::FloodNotice { app_lang } => app_lang.clone(),
        };
        let waiting = queue.jobs.iter().filter(|j| matches!(j, Job::Update { .. })).count();
        if waiting >= MAX_QUEUED {
            UpdateDropped { chat }.emit(&self.core.stats);
        } else {
            queue.jobs.push_back(job);
        }
        if waiting + 1 > SLOW_AFTER && !queue.told {
            queue.told = true;
            // Right after what is being answered now (after the first message, if
            // the worker has not taken it yet).
            let at = usize::from(!queue.started).min(queue.jobs.len());
            queue.jobs.insert(at, Job::FloodNotice { app_lang });
        }
        if new {
            let inbox = self.clone();
            self.core.tracker.spawn(async move { inbox.work(chat).await });
        }
    }

    /// A chat's worker: its jobs in order until the queue is empty.
    async fn work(self, chat: i64) {
        loop {
            let job = {
                let mut chats = lock(&self.core.chats);
                let Some(queue) = chats.get_mut(&chat) else { return };
                match queue.jobs.pop_front() {
                    Some(job) => {
                        queue.started = true;
                        job
                    }
                    None => {
                        chats.remove(&chat);
                        return;
                    }
                }
            };
            tokio::select! {
                () = self.core.cancel.cancelled() => return,
                () = self.process(chat, job) => {}
            }
        }
    }

    async fn process(&self, chat: i64, job: Job) {
        let core = &self.core;
        match job {
            Job::FloodNotice { app_lang } => {
                let lang = match core.conversation.store.subscriber(CHANNEL, &chat.to_string()).await {
                    Ok(Some(s)) => s.lang,
                    _ => Lang::from_telegram(app_lang.as_deref()),
                };
                let composer = core.conversation.composer.borrow().clone();
                let text =
                    escape(&composer.text(lang, "bot-flood-slowed", &[], "Too many messages: answers will be slower."));
                core.replies.send(chat, Reply::text(text)).await;
                FloodNoticeSent { chat }.emit(&core.stats);
            }
            Job::Update { mut sender, input, callback } => {
                if let Some(id) = callback {
                    // Stops the button's spinner; failure only leaves it spinning.
                    if let Err(e) = core.api.answer_callback_query(&id).await {
                        tracing::debug!(error = %e, "answerCallbackQuery failed");
                    }
                }
                if sender.group {
                    sender.admin = match sender.user {
                        Some(user) => self.is_admin(chat, user).await,
                        // An anonymous admin writes as the group itself.
                        None => true,
                    };
                }
                // Operators' commands (and `/drills`) are answered by their own module.
                let decided = async {
                    match core.operators.handle(&sender, &input).await {
                        Some(answers) => Ok(answers),
                        None => core.conversation.handle(&sender, input).await,
                    }
                };
                let (answers, outcome) = match tokio::time::timeout(core.handle_timeout, decided).await {
                    Ok(Ok(r)) => (r, Handled::Answered),
                    Ok(Err(e)) => (vec![self.error_reply(&sender)], Handled::StoreFailed(e)),
                    Err(_) => (vec![self.error_reply(&sender)], Handled::TimedOut(core.handle_timeout)),
                };
                for reply in answers {
                    core.replies.send(chat, reply).await;
                }
                UpdateHandled { chat, outcome }.emit(&core.stats);
            }
        }
    }

    fn error_reply(&self, sender: &Sender) -> Reply {
        let composer = self.core.conversation.composer.borrow().clone();
        let lang = Lang::from_telegram(sender.app_lang.as_deref());
        Reply::text(escape(&composer.text(lang, "bot-error", &[], "Error")))
    }

    /// Whether `user` is the group's creator or an administrator, asked at most once
    /// per [`ADMIN_TTL`]; a failed question counts as no (and is not remembered).
    async fn is_admin(&self, chat: i64, user: i64) -> bool {
        let now = Instant::now();
        if let Some(&(admin, at)) = lock(&self.core.admins).get(&(chat, user))
            && now.duration_since(at) < ADMIN_TTL
        {
            return admin;
        }
        match self.core.api.chat_member_status(chat, user).await {
            Ok(status) => {
                let admin = matches!(status.as_str(), "creator" | "administrator");
                let mut admins = lock(&self.core.admins);
                admins.retain(|_, (_, at)| now.duration_since(*at) < ADMIN_TTL);
                admins.insert((chat, user), (admin, now));
                admin
            }
            Err(e) => {
                tracing::warn!(error = %e, chat = %mask(&chat.to_string()), "getChatMember failed; not an admin this time");
                false
            }
        }
    }

    /// Learns the bot's own name, trying until Telegram answers (or cancel).
    async fn learn_me(&self) -> bool {
        let mut retry = FIRST_RETRY;
        loop {
            match self.core.api.get_me().await {
                Ok((id, username)) => {
                    tracing::info!(%username, "bot account");
                    self.core.me.send_replace(Some(Me { id, username }));
                    return true;
                }
                Err(e) => tracing::warn!(error = %e, ?retry, "getMe failed; retrying"),
            }
            if !pause(&self.core.cancel, &mut retry).await {
                return false;
            }
        }
    }
}

/// Runs the bot's transport until cancelled: getMe, then either the getUpdates loop
/// or (webhook) setWebhook and nothing more, the web endpoint feeding the inbox.
pub async fn run(inbox: Inbox, transport: Transport) {
    if !inbox.learn_me().await {
        return;
    }
    let cancel = inbox.core.cancel.clone();
    let api = inbox.core.api.clone();
    match transport {
        Transport::Webhook { url, secret } => {
            let mut retry = FIRST_RETRY;
            loop {
                match api.set_webhook(&url, &secret).await {
                    Ok(()) => {
                        tracing::info!("telegram webhook registered");
                        break;
                    }
                    Err(e) => tracing::warn!(error = %e, ?retry, "setWebhook failed; retrying"),
                }
                if !pause(&cancel, &mut retry).await {
                    return;
                }
            }
            cancel.cancelled().await;
        }
        Transport::Polling(long_poll) => poll(&inbox, &api, long_poll, &cancel).await,
    }
}

async fn poll(inbox: &Inbox, api: &BotApi, long_poll: Duration, cancel: &CancellationToken) {
    // Ids are 64-bit here: they pass i32::MAX on a long-lived bot.
    let mut offset: i64 = 0;
    let mut retry = FIRST_RETRY;
    loop {
        Polling.emit(&inbox.core.stats);
        let answer = tokio::select! {
            () = cancel.cancelled() => return,
            r = api.get_updates(offset, long_poll) => r,
        };
        let updates = match answer {
            Ok(u) => {
                retry = FIRST_RETRY;
                u
            }
            Err(e) if e.is_webhook_conflict() => {
                tracing::warn!("a webhook is set but the bot polls: deleting the webhook");
                if let Err(e) = api.delete_webhook().await {
                    tracing::warn!(error = %e, "deleteWebhook failed");
                }
                if !pause(cancel, &mut retry).await {
                    return;
                }
                continue;
            }
            Err(e) => {
                log_poll_error(&e, retry);
                if !pause(cancel, &mut retry).await {
                    return;
                }
                continue;
            }
        };
        for update in &updates {
            match update.get("update_id").and_then(Value::as_i64) {
                Some(id) => offset = offset.max(id.saturating_add(1)),
                None => tracing::warn!("an update without an id"),
            }
            // getMe answered before the first poll, so the inbox is ready.
            if inbox.push(update).is_err() {
                tracing::error!("inbox not ready while polling");
            }
        }
    }
}

fn log_poll_error(e: &ApiError, retry: Duration) {
    tracing::warn!(error = %e, ?retry, "getUpdates failed; retrying");
}

/// Sleeps `retry` (doubling it for next time) unless cancelled; false if cancelled.
async fn pause(cancel: &CancellationToken, retry: &mut Duration) -> bool {
    let wait = *retry;
    *retry = (*retry * 2).min(MAX_RETRY);
    tokio::select! {
        () = cancel.cancelled() => false,
        () = tokio::time::sleep(wait) => true,
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // Every section leaves the data valid, so a poisoned lock is usable.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The chat to answer and the job, or `None` for what the bot does not read.
fn read_job(update: RawUpdate, me: &Me) -> Option<(i64, Job)> {
    if let Some(q) = update.callback_query {
        // A press answers in the chat of the message the button is on (a group's,
        // for a group message), as the person who pressed it.
        let message = q.message.as_ref();
        let chat = message.map_or(q.from.id, |m| m.chat.id);
        let group = message.is_some_and(|m| is_group(&m.chat.kind));
        let sender =
            Sender { chat, user: Some(q.from.id), app_lang: q.from.language_code.clone(), group, admin: !group };
        let input = Input::Button(q.data.unwrap_or_default());
        return Some((chat, Job::Update { sender, input, callback: Some(q.id) }));
    }
    let message = update.message.or(update.edited_message)?;
    let group = is_group(&message.chat.kind);
    if message.chat.kind == "channel" {
        return None;
    }
    let mut input = read_input(&message);
    if group {
        input = for_us_in_group(input, &message, me)?;
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
    Some((message.chat.id, Job::Update { sender, input, callback: None }))
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

/// In a group: a command for us (without `@name`, or with ours, which is taken off),
/// or anything that answers one of the bot's messages. `None` for the rest.
fn for_us_in_group(input: Input, message: &RawMessage, me: &Me) -> Option<Input> {
    let reply_to_us = message.reply_to_message.as_ref().and_then(|m| m.from.as_ref()).is_some_and(|u| u.id == me.id);
    match input {
        Input::Text(text) if text.trim_start().starts_with('/') => {
            let text = text.trim_start();
            let (head, rest) = text.split_once(char::is_whitespace).unwrap_or((text, ""));
            match head.split_once('@') {
                None => Some(Input::Text(text.to_owned())),
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

    fn group_text(text: &str, reply_to_bot: bool) -> RawUpdate {
        let mut m = json!({"message_id": 1, "chat": {"id": -5, "type": "supergroup"}, "from": {"id": 7}, "text": text});
        if reply_to_bot {
            m["reply_to_message"] =
                json!({"message_id": 0, "chat": {"id": -5, "type": "supergroup"}, "from": {"id": 42, "is_bot": true}});
        }
        serde_json::from_value(json!({"update_id": 1, "message": m})).expect("update")
    }

    fn text_of(job: Option<(i64, Job)>) -> Option<String> {
        match job {
            Some((_, Job::Update { input: Input::Text(t), .. })) => Some(t),
            _ => None,
        }
    }

    #[test]
    fn in_groups_only_what_is_meant_for_the_bot_is_read() {
        let me = me();
        let cases: &[(&str, bool, Option<&str>)] = &[
            ("/subscribe Харків", false, Some("/subscribe Харків")),
            ("/subscribe@sirena_bot Харків", false, Some("/subscribe Харків")),
            ("/list@Sirena_Bot", false, Some("/list")),
            ("/subscribe@other_bot Харків", false, None),
            ("Привіт усім", false, None),
            ("Харків", true, Some("Харків")),
        ];
        for (text, reply, want) in cases {
            let got = text_of(read_job(group_text(text, *reply), &me));
            assert_eq!(got.as_deref(), *want, "{text:?} (reply to the bot: {reply})");
        }
    }

    #[test]
    fn a_press_in_a_group_answers_the_group_as_the_presser() {
        let q = json!({"update_id": 3, "callback_query": {"id": "q1", "from": {"id": 7, "language_code": "en"}, "data": "sub:x",
            "message": {"message_id": 9, "chat": {"id": -5, "type": "group"}, "from": {"id": 42, "is_bot": true}}}});
        let (chat, job) = read_job(serde_json::from_value(q).expect("update"), &me()).expect("read");
        assert_eq!(chat, -5);
        let Job::Update { sender, callback, .. } = job else { panic!("not an update") };
        assert_eq!((sender.chat, sender.user, sender.group, sender.admin), (-5, Some(7), true, false));
        assert_eq!(callback.as_deref(), Some("q1"));
    }

    #[test]
    fn edited_messages_and_stickers_are_read() {
        let edited = json!({"update_id": 4, "edited_message": {"message_id": 3, "chat": {"id": 8, "type": "private"}, "from": {"id": 8}, "text": "Харків"}});
        assert_eq!(
            text_of(read_job(serde_json::from_value(edited).expect("update"), &me())).as_deref(),
            Some("Харків")
        );
        let sticker = json!({"update_id": 5, "message": {"message_id": 4, "chat": {"id": 8, "type": "private"}, "from": {"id": 8}, "sticker": {"file_id": "x"}}});
        let job = read_job(serde_json::from_value(sticker).expect("update"), &me());
        assert!(matches!(job, Some((8, Job::Update { input: Input::NotText, .. }))));
    }
}
