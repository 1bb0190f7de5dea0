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
//! What an update means is decided in `read.rs`: in groups only what is meant for the
//! bot is read (its own commands bare, any command with our `@name`, learnt from getMe
//! at start, replies to its messages, presses of its buttons), and an input from a
//! forum topic is answered in that topic. Whether the person may change the group's
//! subscriptions (`Sender::admin`) is asked with getChatMember (creator or
//! administrator), only for such inputs, and remembered for [`ADMIN_TTL`]. Edited
//! messages are read as new input: a resident who corrects a mistyped village name
//! expects the bot to answer the corrected one.
//!
//! A `my_chat_member` update saying the bot was blocked in a private chat, or removed
//! or banned from a group, deactivates the chat at once, as a 403 would (the store's
//! `deactivate`, and the match index told), in the chat's queue, so it comes after
//! what the chat wrote before. An unblock (or being added back) changes nothing by
//! itself: the chat's next message reactivates it, as after a 403 — Telegram's
//! "Restart bot" button sends `/start`. A paused chat (`/stop`) stays paused.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::api::{ApiError, BotApi};
use super::read::{ChatKind, Inbound, MemberChange, Membership, Reading, read};
use super::{CHANNEL, Conversation, Input, Replies, Reply, Sender};
use crate::config::secret::{Secret, mask};
use crate::internal_events::InternalEvent;
use crate::internal_events::bot::{
    FloodNoticeSent, Handled, MembershipChanged, Polling, UpdateDropped, UpdateHandled, UpdateReceived,
};
use crate::matcher::IndexDelta;
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
        /// Chats deactivated at once because a resident blocked the bot or a group
        /// removed it (`my_chat_member`).
        deactivated,
        /// Chats that unblocked the bot or added it back (`my_chat_member`); they
        /// resume with their next message.
        returned,
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
pub struct Me {
    pub id: i64,
    pub username: String,
}

/// One input waiting in its chat's queue.
enum Job {
    Update {
        sender: Sender,
        input: Input,
        callback: Option<String>,
        /// The forum topic the answers go to.
        thread: Option<i32>,
    },
    /// "You write faster than I can answer", once per flood.
    FloodNotice { app_lang: Option<String>, thread: Option<i32> },
    /// The bot's status in the chat changed; never dropped from a full queue.
    Membership(Membership),
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
        let Some((id, reading)) = read(update, &me) else {
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
        let job = match reading {
            Reading::Input(Inbound { chat, thread, sender, input, callback }) => {
                Ok((chat, Job::Update { sender, input, callback, thread }))
            }
            Reading::Membership(m) => Ok((m.chat, Job::Membership(m))),
            Reading::Ignored(why) => Err(why),
        };
        UpdateReceived { id, ignored: job.as_ref().err() }.emit(&self.core.stats);
        if let Ok((chat, job)) = job {
            self.enqueue(chat, job);
        }
        Ok(())
    }

    fn enqueue(&self, chat: i64, job: Job) {
        let mut chats = lock(&self.core.chats);
        let new = !chats.contains_key(&chat);
        let queue = chats.entry(chat).or_default();
        let (app_lang, thread) = match &job {
            Job::Update { sender, thread, .. } => (sender.app_lang.clone(), *thread),
            Job::FloodNotice { app_lang, thread } => (app_lang.clone(), *thread),
            Job::Membership(_) => (None, None),
        };
        let waiting = queue.jobs.iter().filter(|j| matches!(j, Job::Update { .. })).count();
        let update = matches!(job, Job::Update { .. });
        if update && waiting >= MAX_QUEUED {
            UpdateDropped { chat }.emit(&self.core.stats);
        } else {
            queue.jobs.push_back(job);
        }
        if update && waiting + 1 > SLOW_AFTER && !queue.told {
            queue.told = true;
            // Right after what is being answered now (after the first message, if
            // the worker has not taken it yet).
            let at = usize::from(!queue.started).min(queue.jobs.len());
            queue.jobs.insert(at, Job::FloodNotice { app_lang, thread });
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
            Job::FloodNotice { app_lang, thread } => {
                let lang = match core.conversation.store.subscriber(CHANNEL, &chat.to_string()).await {
                    Ok(Some(s)) => s.lang,
                    _ => Lang::from_telegram(app_lang.as_deref()),
                };
                let composer = core.conversation.composer.borrow().clone();
                let text =
                    escape(&composer.text(lang, "bot-flood-slowed", &[], "Too many messages: answers will be slower."));
                core.replies.send(chat, thread, Reply::text(text)).await;
                FloodNoticeSent { chat }.emit(&core.stats);
            }
            Job::Update { mut sender, input, callback, thread } => {
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
                    core.replies.send(chat, thread, reply).await;
                }
                UpdateHandled { chat, outcome }.emit(&core.stats);
            }
            Job::Membership(m) => {
                let outcome = match tokio::time::timeout(core.handle_timeout, self.membership(m)).await {
                    Ok(Ok(deactivated)) => {
                        MembershipChanged { chat, kind: m.kind, change: m.change, deactivated }.emit(&core.stats);
                        Handled::Answered
                    }
                    Ok(Err(e)) => Handled::StoreFailed(e),
                    Err(_) => Handled::TimedOut(core.handle_timeout),
                };
                UpdateHandled { chat, outcome }.emit(&core.stats);
            }
        }
    }

    /// Deactivates a private chat or group the bot is out of (blocked, removed,
    /// banned), as a 403 does; true if it was active. A region channel is the
    /// operators' to fix and stays as it is.
    async fn membership(&self, m: Membership) -> Result<bool, crate::store::StoreError> {
        if m.change != MemberChange::Gone || m.kind == ChatKind::Channel {
            return Ok(false);
        }
        let store = &self.core.conversation.store;
        let Some(sub) = store.subscriber(CHANNEL, &m.chat.to_string()).await?.filter(|s| s.active) else {
            return Ok(false);
        };
        let why = match m.kind {
            ChatKind::Private => "Forbidden: bot was blocked by the user (my_chat_member)",
            _ => "Forbidden: bot was removed from the group (my_chat_member)",
        };
        store.deactivate(sub.id, why).await?;
        self.core.conversation.delta(IndexDelta::Deactivated(sub.id));
        Ok(true)
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
