//! Telegram Bot API simulator.
//!
//! Role: stands in for `api.telegram.org` so the real bot adapter (teloxide)
//! can be driven end to end on loopback. `TelegramSim::base_url` is what
//! `Bot::set_api_url` takes; requests arrive as `{base}/bot<TOKEN>/<method>`.
//!
//! Rules it enforces, because the real service does and sirena must cope:
//! - the token must match (401 `Unauthorized`, the body
//!   `{"ok":false,"error_code":401,"description":"Unauthorized"}`, as Telegram
//!   answers an unknown or revoked token), and not be revoked
//!   ([`TelegramSim::revoke_token`]); a path that is not
//!   `/bot<token>/<method>` and unknown methods get 404;
//! - a body must decode: JSON (whatever the content type says), a form, or
//!   multipart, plus query parameters (400 otherwise);
//! - `sendMessage` first draws injected faults (see below), then checks, in
//!   order: `chat_id` present (400 chat_id is empty) and known — a number
//!   naming a user, group or channel, or a channel's `"@username"`, matched
//!   case-insensitively (400 chat not found); `message_thread_id`, when
//!   given, a topic of that forum (400 message thread not found: also for a
//!   reply thread's id and for the General topic's); text present (400
//!   message text is empty); HTML well formed (400 can't parse entities); visible text at
//!   most 4096 UTF-16 code units (400 message is too long); inline keyboard
//!   valid, `callback_data` at most 64 bytes (400); the recipient reachable:
//!   not blocked (403 bot was blocked by the user), not deactivated (403 user
//!   is deactivated), a group the bot was not kicked from (403 bot was kicked
//!   from the group chat), a channel where the bot is an administrator (403
//!   bot is not a member of the channel chat); and the flood limits over sliding
//!   windows, answered with 429 and `retry_after` in whole seconds rounded
//!   up:
//!   - global: `global_per_sec` accepted messages in any second; a request
//!     flagged `allow_paid_broadcast` (JSON `true`, or `"true"`/`"1"` in a
//!     form) is refused only when that same window of all accepted messages,
//!     paid or not, holds `paid_per_sec` — how Telegram grants up to 1000/s
//!     to paid broadcasts only;
//!   - per private chat: `per_chat_per_sec` in any second;
//!   - per group or channel (negative id): `group_per_min` in any minute;
//!   - the per-chat and per-group limits bind paid requests too, and refused
//!     or faulted requests use up no limit;
//! - an accepted message is recorded (`sent`, `stats`) before its answer,
//!   which waits `latency`, so a client killed meanwhile leaves an accepted
//!   but unanswered message, as on the real service; the Message returned
//!   for a channel post names the channel as `chat` and `sender_chat`
//!   (`"type":"channel"`, title, username) and has no `from`; one sent into a
//!   topic has its `message_thread_id` and `is_topic_message`;
//! - the bot's membership: a user who blocks it (`block`), or a group that
//!   bans it (`kick_bot`), queues a `my_chat_member` update shaped as the
//!   real `tgbot_update__bot_status.json` (chat, from, date, old and new
//!   ChatMember with status and the bot as user, `until_date` 0 for
//!   `kicked`); a blocked user who writes again first queues the reverse
//!   (`kicked` → `member`);
//! - `editMessageText`/`editMessageReplyMarkup` need a message the bot sent
//!   to that chat (400 message to edit not found) and a change (400 message
//!   is not modified); an edit without `reply_markup` removes the keyboard;
//! - `answerCallbackQuery` answers each press once (400 query is too old);
//! - `getMe` names the bot (`@sirena_sim_bot`); `getChatMember` answers
//!   `administrator` for the pairs `set_group_admin` made, `member` for
//!   anyone else in a known group, 400 chat not found otherwise;
//! - `getUpdates` long-polls, confirms updates below `offset`, honours
//!   `allowed_updates` like Telegram (the setting persists between calls;
//!   without one, every kind but `chat_member`, `message_reaction` and
//!   `message_reaction_count`, which Telegram sends only on request),
//!   refuses while a webhook is set (409), and terminates an older poll with
//!   409 when a newer one arrives, which is how Telegram reports two bot
//!   instances polling at once; update ids may pass `i32::MAX`
//!   (`set_next_update_id`);
//! - `setWebhook` takes only https URLs on ports 443, 80, 88 or 8443 and a
//!   `secret_token` of 0–256 `A-Za-z0-9_-`; while a webhook is set, updates
//!   are POSTed to it in order, each until answered 2xx (`webhook.rs`), and
//!   `getUpdates` is refused with 409; `deleteWebhook` hands them back to
//!   `getUpdates`; `getWebhookInfo` reports the URL, pending count and last
//!   delivery error.
//!
//! Injected faults (`inject`, `inject_share`) stand for the path to Telegram
//! failing: a `sendMessage` draws them after authentication and before any
//! other check, and a faulted request never enters a limit window nor the
//! record of sent messages. Stall and Reset close the connection without a
//! byte of answer, so the client sees a transport error, not a status.
//!
//! Every reply is the Bot API envelope (`{"ok":true,"result":…}` or
//! `{"ok":false,"error_code":N,"description":…}`) with HTTP status N.
//!
//! Groups are basic groups, supergroups (replies carry reply threads) or
//! forums (topics from `create_topic`, messages in them from
//! `member_sends_in_topic`); see `residents.rs` for the thread rules.
//!
//! Not simulated: file uploads (multipart parts are noted, not stored),
//! MarkdownV2 validation, message entities in returned messages, migrations,
//! closing topics, and limits on edits.
//!
//! Layout: `state` (the simulated world and its limit windows), `server`
//! (accept loop, request record, envelope), `methods` (dispatch and every
//! method but sending), `send` (`sendMessage` and the edits), `residents`
//! (what scripted users do: write, press buttons), `faults`,
//! `params` (parameter decoding), `html` (the HTML subset).

mod faults;
mod html;
mod methods;
mod params;
mod residents;
mod send;
mod server;
mod state;
mod webhook;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use faults::{FaultTarget, SendFault};
pub use html::parse_html;
use state::{GroupKind, Inner, SimChannel, SimGroup, SimUser, UserStatus};
pub use webhook::{SECRET_TOKEN_HEADER, WebhookDelivery};

/// Used when the token does not start with a numeric bot id.
const FALLBACK_BOT_ID: i64 = 123_456;

/// Limits and identity of the simulated bot.
#[derive(Clone, Debug)]
pub struct TelegramSimConfig {
    /// The only token the simulator accepts.
    pub token: String,
    /// Accepted messages across all chats in any sliding second.
    pub global_per_sec: u32,
    /// The ceiling of the same window for requests flagged
    /// `allow_paid_broadcast`. A value below `global_per_sec` acts as
    /// `global_per_sec`: paying never lowers the limit.
    pub paid_per_sec: u32,
    /// Accepted messages to one private chat in any sliding second.
    pub per_chat_per_sec: u32,
    /// Accepted messages to one group or channel (negative chat id) in any
    /// sliding minute.
    pub group_per_min: u32,
    /// How long the answer to an accepted `sendMessage` waits after the
    /// message is recorded, so crash tests really have requests in flight.
    pub latency: Duration,
}

impl Default for TelegramSimConfig {
    fn default() -> Self {
        // Telegram's published flood limits, and no added latency.
        Self {
            token: "123456:TEST-TOKEN".to_owned(),
            global_per_sec: 30,
            paid_per_sec: 1000,
            per_chat_per_sec: 1,
            group_per_min: 20,
            latency: Duration::ZERO,
        }
    }
}

/// A message the simulator accepted from the bot via `sendMessage`.
#[derive(Clone, Debug)]
pub struct SentMessage {
    pub message_id: i64,
    /// Numeric, also for a channel addressed by `"@username"`.
    pub chat_id: i64,
    /// The text exactly as the bot sent it (markup included).
    pub text: String,
    pub parse_mode: Option<String>,
    pub disable_notification: bool,
    pub reply_markup: Option<Value>,
    /// The forum topic it was sent into (`message_thread_id`).
    pub message_thread_id: Option<i64>,
    pub at: Instant,
}

/// Counters over every request the simulator answered or hung up on.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SimStats {
    pub requests: u64,
    pub sent: u64,
    /// Accepted messages that were flagged `allow_paid_broadcast`.
    pub paid: u64,
    /// 429 answers.
    pub rate_limited: u64,
    /// 403 answers.
    pub forbidden: u64,
    /// 400 answers.
    pub bad_requests: u64,
    /// 401 answers.
    pub unauthorized: u64,
    /// 5xx answers (all injected: the simulator itself never fails).
    pub server_errors: u64,
    /// Connections closed without an answer (injected stalls and resets).
    pub dropped: u64,
    /// `getUpdates` calls that arrived while another was still being answered to a
    /// client that was still there: two consumers of one bot (DESIGN §15).
    pub overlapping_polls: u64,
    /// 409 "terminated by other getUpdates request" answers.
    pub poll_conflicts: u64,
    /// Updates delivered to the webhook (answered 2xx).
    pub webhook_delivered: u64,
    /// Webhook deliveries that failed and will be tried again.
    pub webhook_failed: u64,
}

/// One request as received, rejected ones included.
///
/// Records are kept in the order the simulator decided each answer, so a
/// long poll comes after the requests that arrived while it waited.
#[derive(Clone, Debug)]
pub struct RecordedRequest {
    /// The method name as it appeared in the URL.
    pub method: String,
    /// Parameters merged from query string and body, as a JSON object.
    /// Form and query values stay strings, as they were sent.
    pub body: Value,
    /// The HTTP status of the answer; 0 for a connection closed without
    /// one (an injected stall or reset).
    pub status: u16,
    /// `parameters.retry_after` of a 429 answer.
    pub retry_after: Option<u64>,
    /// When the request had arrived and its body been read.
    pub at: Instant,
}

/// A running simulator. Cloning is cheap; all clones share one server.
#[derive(Clone)]
pub struct TelegramSim {
    inner: Arc<Inner>,
}

impl TelegramSim {
    /// Binds `127.0.0.1:0` and serves until `shutdown` is cancelled. The
    /// accept loop and every connection run on `tracker`.
    pub async fn start(
        cfg: TelegramSimConfig,
        shutdown: CancellationToken,
        tracker: &TaskTracker,
    ) -> std::io::Result<TelegramSim> {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let bot_id = cfg.token.split(':').next().and_then(|id| id.parse().ok()).unwrap_or(FALLBACK_BOT_ID);
        let inner = Arc::new(Inner::new(cfg, bot_id, addr, shutdown.clone()));
        server::spawn(listener, inner.clone(), shutdown.clone(), tracker);
        webhook::spawn(inner.clone(), shutdown, tracker);
        tracing::debug!(%addr, "telegram sim listening");
        Ok(TelegramSim { inner })
    }

    /// `http://127.0.0.1:PORT`, for `Bot::set_api_url`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.inner.addr)
    }

    /// Makes a private chat known, as if the user had started the bot.
    pub fn add_user(&self, chat_id: i64, first_name: &str, language_code: Option<&str>) {
        self.inner.lock().users.insert(
            chat_id,
            SimUser {
                first_name: first_name.to_owned(),
                language_code: language_code.map(str::to_owned),
                status: UserStatus::Active,
            },
        );
    }

    /// Makes a basic group known (`"type":"group"`, no threads). Group ids are
    /// negative, as Telegram's are.
    pub fn add_group(&self, chat_id: i64, title: &str) {
        self.inner.lock().groups.insert(chat_id, SimGroup::new(title, GroupKind::Basic));
    }

    /// Makes a supergroup without topics known: its replies carry reply threads.
    pub fn add_supergroup(&self, chat_id: i64, title: &str) {
        self.inner.lock().groups.insert(chat_id, SimGroup::new(title, GroupKind::Supergroup));
    }

    /// Makes a forum known (a supergroup with topics, `"is_forum":true`); topics
    /// are opened with [`TelegramSim::create_topic`].
    pub fn add_forum(&self, chat_id: i64, title: &str) {
        self.inner.lock().groups.insert(chat_id, SimGroup::new(title, GroupKind::Forum));
    }

    /// An administrator deletes the forum topic `thread`: later sends into it get
    /// 400 "message thread not found".
    pub fn delete_topic(&self, forum: i64, thread: i64) {
        if let Some(g) = self.inner.lock().groups.get_mut(&forum) {
            g.topics.remove(&thread);
        }
    }

    /// `by` removes the bot from the group (banning it, `"kicked"`, as in the
    /// real `tgbot_update__bot_status.json`): a `my_chat_member` update is queued
    /// and later messages to the group get 403.
    pub fn kick_bot(&self, group: i64, by: i64) {
        let mut st = self.inner.lock();
        let Some(g) = st.groups.get_mut(&group) else {
            tracing::warn!(group, "telegram sim: no such group");
            return;
        };
        if g.bot_kicked {
            return;
        }
        g.bot_kicked = true;
        let chat = g.chat_json(group);
        let from = residents::member_json(&st, by);
        st.push_my_chat_member(chat, from, self.inner.bot_user_json(), "member", "kicked");
        drop(st);
        self.inner.updates_changed.send_modify(|n| *n += 1);
    }

    /// Queues a whole update as given (a real one from a fixture), under the
    /// simulator's next update id, which it returns; its kind, for
    /// `allowed_updates`, is its first field other than `update_id`.
    pub fn queue_raw_update(&self, mut update: Value) -> u64 {
        let kind = update.as_object().and_then(|o| o.keys().find(|k| *k != "update_id").cloned()).unwrap_or_default();
        if let Some(o) = update.as_object_mut() {
            o.remove("update_id");
        }
        let id = self.inner.lock().push_raw(&kind, update);
        self.inner.updates_changed.send_modify(|n| *n += 1);
        id
    }

    /// Makes `user` an administrator of the group, or a plain member again
    /// (`getChatMember` answers by it).
    pub fn set_group_admin(&self, group: i64, user: i64, admin: bool) {
        let mut st = self.inner.lock();
        if admin {
            st.group_admins.insert((group, user));
        } else {
            st.group_admins.remove(&(group, user));
        }
    }

    /// The next update queued gets this id (later ones count on from it), so a
    /// test can cross `i32::MAX` or `u32::MAX` as a long-lived bot does.
    pub fn set_next_update_id(&self, id: u64) {
        self.inner.lock().set_next_update_id(id);
    }

    /// The username `getMe` gives, without the `@`.
    pub fn bot_username(&self) -> String {
        self.inner.bot_user_json()["username"].as_str().unwrap_or_default().to_owned()
    }

    /// Requests of one method (case-insensitive) among `requests`.
    pub fn requests_of(&self, method: &str) -> Vec<RecordedRequest> {
        let st = self.inner.lock();
        st.requests.iter().filter(|r| r.method.eq_ignore_ascii_case(method)).cloned().collect()
    }

    /// From now on every method answers 401 `Unauthorized`, as Telegram answers a
    /// token revoked in @BotFather (long polls already waiting run to their end).
    pub fn revoke_token(&self) {
        self.inner.revoked.store(true, Ordering::SeqCst);
    }

    /// Undoes [`TelegramSim::revoke_token`]: the token is accepted again.
    pub fn restore_token(&self) {
        self.inner.revoked.store(false, Ordering::SeqCst);
    }

    /// The user blocks the bot: a `my_chat_member` update (`member` → `kicked`,
    /// from the user, in their private chat) is queued, as Telegram sends it, and
    /// later messages to the user get 403 "bot was blocked by the user". Writing
    /// to the bot again unblocks it (with the reverse update first).
    pub fn block(&self, chat_id: i64) {
        let mut st = self.inner.lock();
        let Some(user) = st.users.get_mut(&chat_id) else {
            tracing::warn!(chat_id, "telegram sim: no such user");
            return;
        };
        if user.status != UserStatus::Active {
            return;
        }
        user.status = UserStatus::Blocked;
        let chat = state::private_chat_json(chat_id, &user.first_name);
        let from = state::user_json(chat_id, user);
        st.push_my_chat_member(chat, from, self.inner.bot_user_json(), "member", "kicked");
        drop(st);
        self.inner.updates_changed.send_modify(|n| *n += 1);
    }

    /// The user blocks the bot and the bot never reads the `my_chat_member`
    /// update before it next sends there: as when that update was lost (Telegram
    /// keeps updates 24 hours; `drop_pending_updates` discards them) or is still
    /// unread when the fan-out reaches the chat. Only the 403 tells.
    pub fn block_unseen(&self, chat_id: i64) {
        self.set_status(chat_id, UserStatus::Blocked);
    }

    /// Later messages to this user get 403 "user is deactivated".
    pub fn deactivate(&self, chat_id: i64) {
        self.set_status(chat_id, UserStatus::Deactivated);
    }

    fn set_status(&self, chat_id: i64, status: UserStatus) {
        let mut st = self.inner.lock();
        match st.users.get_mut(&chat_id) {
            Some(user) => user.status = status,
            None => tracing::warn!(chat_id, ?status, "telegram sim: no such user"),
        }
    }

    /// Makes a channel known. Channel ids are negative, like
    /// `-1001234567890`; `username` is its public name without the `@`
    /// (given one anyway, it is dropped). Posts need `bot_is_admin`.
    pub fn add_channel(&self, chat_id: i64, username: Option<&str>, title: &str, bot_is_admin: bool) {
        let username = username.map(|u| u.trim_start_matches('@').to_owned());
        self.inner.lock().channels.insert(chat_id, SimChannel { username, title: title.to_owned(), bot_is_admin });
    }

    /// Makes the bot an administrator of the channel, or takes that away, as
    /// its owner would in the channel's settings.
    pub fn set_channel_admin(&self, chat_id: i64, bot_is_admin: bool) {
        match self.inner.lock().channels.get_mut(&chat_id) {
            Some(channel) => channel.bot_is_admin = bot_is_admin,
            None => tracing::warn!(chat_id, "telegram sim: no such channel"),
        }
    }

    /// The next `times` sendMessage requests matching `target` draw `fault`
    /// (scripts queue up in order).
    pub fn inject(&self, target: FaultTarget, fault: SendFault, times: u32) {
        self.inner.lock().faults.script(target, fault, times);
    }

    /// From now on, a deterministic pseudo-random share (per_mille/1000) of
    /// sendMessage requests draw `fault`, seeded by `seed`, until
    /// `clear_faults`. A later call replaces the share; queued scripts go
    /// first.
    pub fn inject_share(&self, fault: SendFault, per_mille: u32, seed: u64) {
        self.inner.lock().faults.share(fault, per_mille, seed);
    }

    /// Drops every queued script and the share.
    pub fn clear_faults(&self) {
        self.inner.lock().faults.clear();
    }

    /// sendMessage requests received whose answer has not been written yet,
    /// stalled ones included.
    /// `getUpdates` calls being answered now.
    pub fn polls_live(&self) -> usize {
        self.inner.polls_live.load(Ordering::SeqCst)
    }

    pub fn in_progress(&self) -> usize {
        self.inner.in_progress.load(Ordering::SeqCst)
    }

    /// Every accepted `sendMessage`, in order.
    pub fn sent(&self) -> Vec<SentMessage> {
        self.inner.lock().sent.clone()
    }

    /// Accepted messages to one chat, in order.
    pub fn sent_to(&self, chat_id: i64) -> Vec<SentMessage> {
        let st = self.inner.lock();
        st.sent.iter().filter(|m| m.chat_id == chat_id).cloned().collect()
    }

    pub fn stats(&self) -> SimStats {
        self.inner.lock().stats.clone()
    }

    /// Every request answered or hung up on so far, rejected ones included.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.inner.lock().requests.clone()
    }

    /// The `sendMessage` requests among `requests`, faulted ones included.
    pub fn send_requests(&self) -> Vec<RecordedRequest> {
        let st = self.inner.lock();
        st.requests.iter().filter(|r| r.method.eq_ignore_ascii_case("sendmessage")).cloned().collect()
    }

    /// Waits until `chat_id` has at least `n` accepted messages, or until
    /// `timeout` or shutdown, and returns that chat's messages either way.
    pub async fn wait_for_sent(&self, chat_id: i64, n: usize, timeout: Duration) -> Vec<SentMessage> {
        let deadline = tokio::time::Instant::now() + timeout;
        // Subscribing before looking means a send between the look and the
        // wait still wakes us.
        let mut changed = self.inner.sent_changed.subscribe();
        loop {
            let got = self.sent_to(chat_id);
            if got.len() >= n {
                return got;
            }
            tokio::select! {
                r = changed.changed() => if r.is_err() { return self.sent_to(chat_id) },
                _ = tokio::time::sleep_until(deadline) => return self.sent_to(chat_id),
                _ = self.inner.shutdown.cancelled() => return self.sent_to(chat_id),
            }
        }
    }
}
