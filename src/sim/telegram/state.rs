//! The simulated world: who the bot can reach, what it has sent, what it was
//! asked, the fault plan, and the sliding windows of the flood limits.
//!
//! Role: plain data and the bookkeeping on it, with no HTTP in sight, so the
//! methods read as Telegram's rules and nothing else.
//!
//! Invariants: all of it lives behind one std mutex in `Inner`, locked only
//! for short sections that never await; only accepted messages enter the
//! limit windows, so refused and faulted requests never use up a limit.

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::AtomicUsize;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::faults::FaultPlan;
use super::{RecordedRequest, SentMessage, SimStats, TelegramSimConfig};

/// Network jitter on loopback can make two requests a client spaced exactly
/// one window apart arrive slightly closer together; without this slack a
/// well-behaved client would be rate limited at random.
const WINDOW_TOLERANCE: Duration = Duration::from_millis(15);

/// Kinds Telegram sends only to a bot that names them in `allowed_updates`.
const ON_REQUEST_ONLY: [&str; 3] = ["chat_member", "message_reaction", "message_reaction_count"];

/// Update ids start high, as Telegram's do, so code that assumes small ids
/// (or ids equal to message ids) shows up.
const FIRST_UPDATE_ID: u64 = 100_000_001;

/// Everything one running simulator shares between its API handle and its
/// request handlers.
pub(super) struct Inner {
    /// Fixed at start: tests change the world through `TelegramSim`'s
    /// methods, never the limits under a running client.
    pub(super) cfg: TelegramSimConfig,
    /// The token's numeric prefix, as a real bot's id is.
    pub(super) bot_id: i64,
    pub(super) addr: SocketAddr,
    /// Lets every wait (long polls, latency, stalls) end at once on shutdown,
    /// so graceful shutdown is never held up by a simulated delay.
    pub(super) shutdown: CancellationToken,
    /// A std mutex rather than tokio's: every critical section is short and
    /// none awaits.
    state: Mutex<SimState>,
    /// Bumped whenever long pollers should re-check: a new update, or a newer
    /// poll that terminates older ones.
    pub(super) updates_changed: watch::Sender<u64>,
    /// Bumped on every accepted message, for `wait_for_sent`.
    pub(super) sent_changed: watch::Sender<u64>,
    /// `sendMessage` requests that arrived and have no answer yet. Kept out
    /// of `state` so that reading it never waits on the lock.
    pub(super) in_progress: AtomicUsize,
    /// `getUpdates` calls being answered now (a poll whose client hung up is not).
    pub(super) polls_live: AtomicUsize,
    /// The token was revoked (as @BotFather's /revoke does): every method answers 401
    /// until it is restored.
    pub(super) revoked: std::sync::atomic::AtomicBool,
}

impl Inner {
    pub(super) fn new(cfg: TelegramSimConfig, bot_id: i64, addr: SocketAddr, shutdown: CancellationToken) -> Self {
        Self {
            cfg,
            bot_id,
            addr,
            shutdown,
            state: Mutex::new(SimState::new()),
            updates_changed: watch::Sender::new(0),
            sent_changed: watch::Sender::new(0),
            in_progress: AtomicUsize::new(0),
            polls_live: AtomicUsize::new(0),
            revoked: std::sync::atomic::AtomicBool::new(false),
        }
    }

    pub(super) fn lock(&self) -> MutexGuard<'_, SimState> {
        // A panic while holding the lock is a bug in the simulator itself;
        // carrying on with half-updated state would hide it.
        self.state.lock().expect("sim state lock")
    }

    pub(super) fn bot_user_json(&self) -> Value {
        json!({
            "id": self.bot_id,
            "is_bot": true,
            "first_name": "sirena",
            "username": "sirena_sim_bot",
        })
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum UserStatus {
    Active,
    Blocked,
    Deactivated,
}

pub(super) struct SimUser {
    pub(super) first_name: String,
    pub(super) language_code: Option<String>,
    pub(super) status: UserStatus,
}

/// The kinds of group chat, as `chat.type` (and `is_forum`) show them.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum GroupKind {
    /// A basic group (`"type":"group"`): no threads at all.
    Basic,
    /// A supergroup without topics: a reply carries its reply thread's
    /// `message_thread_id`, without `is_topic_message`.
    Supergroup,
    /// A supergroup with topics (`"is_forum":true`).
    Forum,
}

pub(super) struct SimGroup {
    pub(super) title: String,
    pub(super) kind: GroupKind,
    /// A forum's topics: thread id (the id of the message that created the topic)
    /// to that message, which Telegram attaches as `reply_to_message` to the
    /// topic's messages.
    pub(super) topics: HashMap<i64, Value>,
    /// The bot was removed from the group: sends get 403.
    pub(super) bot_kicked: bool,
}

impl SimGroup {
    pub(super) fn new(title: &str, kind: GroupKind) -> Self {
        Self { title: title.to_owned(), kind, topics: HashMap::new(), bot_kicked: false }
    }

    pub(super) fn chat_json(&self, chat_id: i64) -> Value {
        match self.kind {
            GroupKind::Basic => json!({"id": chat_id, "type": "group", "title": self.title}),
            GroupKind::Supergroup => json!({"id": chat_id, "type": "supergroup", "title": self.title}),
            GroupKind::Forum => json!({"id": chat_id, "type": "supergroup", "title": self.title, "is_forum": true}),
        }
    }
}

pub(super) struct SimChannel {
    /// Without the `@`; looked up case-insensitively, as Telegram does.
    pub(super) username: Option<String>,
    pub(super) title: String,
    /// A bot can post to a channel only as one of its administrators.
    pub(super) bot_is_admin: bool,
}

/// A webhook registered with `setWebhook`.
#[derive(Clone, Debug)]
pub(super) struct SimWebhook {
    pub(super) url: String,
    /// Sent as `X-Telegram-Bot-Api-Secret-Token` with every delivery; empty: none.
    pub(super) secret: String,
    /// The last failed delivery: (unix time, what went wrong), for getWebhookInfo.
    pub(super) last_error: Option<(i64, String)>,
}

pub(super) struct QueuedUpdate {
    pub(super) id: u64,
    /// The update's kind as named in `allowed_updates`.
    pub(super) kind: String,
    pub(super) json: Value,
}

pub(super) struct SimState {
    pub(super) users: HashMap<i64, SimUser>,
    pub(super) groups: HashMap<i64, SimGroup>,
    pub(super) channels: HashMap<i64, SimChannel>,
    next_message_id: i64,
    next_update_id: u64,
    pub(super) next_callback_id: u64,
    pub(super) updates: VecDeque<QueuedUpdate>,
    /// `None` or empty means Telegram's default: every kind but those it sends
    /// only on request ([`ON_REQUEST_ONLY`]).
    pub(super) allowed_updates: Option<Vec<String>>,
    /// Incremented by each `getUpdates`; a waiting poll whose number is no
    /// longer current has been superseded.
    pub(super) poll_generation: u64,
    pub(super) webhook: Option<SimWebhook>,
    /// Where a registered https URL is really reached: (public prefix, loopback
    /// base), as a TLS-terminating proxy in front of the bot would forward it.
    pub(super) webhook_proxy: Option<(String, String)>,
    /// Every webhook delivery attempt, in order.
    pub(super) webhook_deliveries: Vec<super::WebhookDelivery>,
    /// (group, user) pairs that are the group's administrators.
    pub(super) group_admins: HashSet<(i64, i64)>,
    /// Keyed by (scope JSON, language code).
    pub(super) commands: HashMap<(String, String), Value>,
    /// The bot's messages as Telegram currently holds them, for callbacks
    /// and edits.
    pub(super) bot_messages: HashMap<i64, Value>,
    pub(super) open_callbacks: HashSet<String>,
    pub(super) faults: FaultPlan,
    pub(super) sent: Vec<SentMessage>,
    pub(super) stats: SimStats,
    pub(super) requests: Vec<RecordedRequest>,
    /// Every accepted message, paid or not: both global limits are read off
    /// this one window, which is how a flagged request sees the unflagged
    /// traffic too.
    global_hits: VecDeque<Instant>,
    chat_hits: HashMap<i64, VecDeque<Instant>>,
}

impl SimState {
    fn new() -> Self {
        Self {
            users: HashMap::new(),
            groups: HashMap::new(),
            channels: HashMap::new(),
            next_message_id: 1,
            next_update_id: FIRST_UPDATE_ID,
            next_callback_id: 1,
            updates: VecDeque::new(),
            allowed_updates: None,
            poll_generation: 0,
            webhook: None,
            webhook_proxy: None,
            group_admins: HashSet::new(),
            webhook_deliveries: Vec::new(),
            commands: HashMap::new(),
            bot_messages: HashMap::new(),
            open_callbacks: HashSet::new(),
            faults: FaultPlan::default(),
            sent: Vec::new(),
            stats: SimStats::default(),
            requests: Vec::new(),
            global_hits: VecDeque::new(),
            chat_hits: HashMap::new(),
        }
    }

    pub(super) fn take_message_id(&mut self) -> i64 {
        let id = self.next_message_id;
        self.next_message_id += 1;
        id
    }

    /// The id the next queued update gets; tests set it high to cross `i32::MAX`.
    pub(super) fn set_next_update_id(&mut self, id: u64) {
        self.next_update_id = id;
    }

    /// The first update of an allowed kind waiting for a webhook delivery.
    pub(super) fn next_for_webhook(&mut self) -> Option<(u64, Value)> {
        self.drop_unwanted();
        self.updates.front().map(|u| (u.id, u.json.clone()))
    }

    /// Telegram never creates updates of kinds the bot opted out of; we filter at
    /// delivery so the setting can arrive after the update.
    fn drop_unwanted(&mut self) {
        match self.allowed_updates.as_ref().filter(|a| !a.is_empty()) {
            Some(allowed) => self.updates.retain(|u| allowed.contains(&u.kind)),
            None => self.updates.retain(|u| !ON_REQUEST_ONLY.contains(&u.kind.as_str())),
        }
    }

    /// Where a delivery for `url` really goes, through the proxy if it covers it.
    pub(super) fn delivery_url(&self, url: &str) -> String {
        match &self.webhook_proxy {
            Some((public, local)) if url.starts_with(public.as_str()) => format!("{local}{}", &url[public.len()..]),
            _ => url.to_owned(),
        }
    }

    /// Queues an update whose one field `kind` holds `payload`; returns its id.
    pub(super) fn push_update(&mut self, kind: &str, payload: Value) -> u64 {
        let mut json = json!({});
        json[kind] = payload;
        self.push_raw(kind, json)
    }

    /// Queues `json` as it is, with the next update id.
    pub(super) fn push_raw(&mut self, kind: &str, mut json: Value) -> u64 {
        let id = self.next_update_id;
        self.next_update_id += 1;
        json["update_id"] = json!(id);
        self.updates.push_back(QueuedUpdate { id, kind: kind.to_owned(), json });
        id
    }

    /// Queues a `my_chat_member` update: `from` changed the bot's status in `chat`
    /// from `old` to `new`, in the shape of Telegram's ChatMemberUpdated.
    pub(super) fn push_my_chat_member(&mut self, chat: Value, from: Value, bot: Value, old: &str, new: &str) -> u64 {
        let member = |status: &str| {
            let mut m = json!({"status": status, "user": bot});
            if status == "kicked" {
                // "Forever", as Telegram writes it for a block or a ban.
                m["until_date"] = json!(0);
            }
            m
        };
        let update = json!({
            "chat": chat,
            "from": from,
            "date": unix_now(),
            "old_chat_member": member(old),
            "new_chat_member": member(new),
        });
        self.push_update("my_chat_member", update)
    }

    /// The chat object Telegram would return for this id, if it is known.
    pub(super) fn chat_json(&self, chat_id: i64) -> Option<Value> {
        if let Some(group) = self.groups.get(&chat_id) {
            return Some(group.chat_json(chat_id));
        }
        if let Some(channel) = self.channels.get(&chat_id) {
            let mut chat = json!({"id": chat_id, "type": "channel", "title": channel.title});
            if let Some(username) = &channel.username {
                chat["username"] = json!(username);
            }
            return Some(chat);
        }
        let user = self.users.get(&chat_id)?;
        Some(private_chat_json(chat_id, &user.first_name))
    }

    /// The channel whose public username this is (given without the `@`).
    pub(super) fn channel_by_username(&self, username: &str) -> Option<i64> {
        self.channels
            .iter()
            .find(|(_, c)| c.username.as_deref().is_some_and(|u| u.eq_ignore_ascii_case(username)))
            .map(|(&id, _)| id)
    }

    /// Drops confirmed updates (and, for a negative offset, all but the last
    /// `-offset`), then takes up to `limit` of the allowed kinds.
    pub(super) fn take_updates(&mut self, offset: i64, limit: usize) -> Vec<Value> {
        if offset < 0 {
            let keep = usize::try_from(offset.unsigned_abs()).unwrap_or(usize::MAX);
            while self.updates.len() > keep {
                self.updates.pop_front();
            }
        } else {
            let offset = offset.unsigned_abs();
            self.updates.retain(|u| u.id >= offset);
        }
        self.drop_unwanted();
        self.updates.iter().take(limit).map(|u| u.json.clone()).collect()
    }

    /// `Some(wait)` if one more message to `chat_id` now would break a limit.
    ///
    /// A `paid` request (flagged `allow_paid_broadcast`) is held to
    /// `paid_per_sec` instead of `global_per_sec`, over the same window of
    /// all accepted messages; the flag never lowers the ceiling. Negative ids
    /// (groups and channels) have a per-minute window, private chats a
    /// per-second one, and both apply to paid requests alike.
    pub(super) fn flood_wait(
        &mut self,
        cfg: &TelegramSimConfig,
        chat_id: i64,
        paid: bool,
        now: Instant,
    ) -> Option<Duration> {
        let global_limit = if paid { cfg.paid_per_sec.max(cfg.global_per_sec) } else { cfg.global_per_sec };
        let global = window_wait(&mut self.global_hits, Duration::from_secs(1), global_limit, now);
        let (span, limit) = if chat_id < 0 {
            (Duration::from_secs(60), cfg.group_per_min)
        } else {
            (Duration::from_secs(1), cfg.per_chat_per_sec)
        };
        let chat = window_wait(self.chat_hits.entry(chat_id).or_default(), span, limit, now);
        global.max(chat)
    }

    pub(super) fn record_hit(&mut self, chat_id: i64, now: Instant) {
        self.global_hits.push_back(now);
        self.chat_hits.entry(chat_id).or_default().push_back(now);
    }
}

/// Prunes hits older than the window and says how long until one more fits.
fn window_wait(hits: &mut VecDeque<Instant>, span: Duration, limit: u32, now: Instant) -> Option<Duration> {
    let span = span.saturating_sub(WINDOW_TOLERANCE);
    while hits.front().is_some_and(|&at| now.saturating_duration_since(at) >= span) {
        hits.pop_front();
    }
    let limit = usize::try_from(limit).unwrap_or(usize::MAX);
    if hits.len() < limit {
        return None;
    }
    if limit == 0 {
        return Some(span);
    }
    // The hit that has to leave the window before one more fits.
    let blocking = hits[hits.len() - limit];
    Some(span.saturating_sub(now.saturating_duration_since(blocking)))
}

pub(super) fn private_chat_json(chat_id: i64, first_name: &str) -> Value {
    json!({"id": chat_id, "type": "private", "first_name": first_name})
}

pub(super) fn user_json(id: i64, user: &SimUser) -> Value {
    let mut v = json!({"id": id, "is_bot": false, "first_name": user.first_name});
    if let Some(lang) = &user.language_code {
        v["language_code"] = json!(lang);
    }
    v
}

pub(super) fn unix_now() -> i64 {
    chrono::Utc::now().timestamp()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows() {
        let t0 = Instant::now();
        let mut hits = VecDeque::new();
        assert_eq!(window_wait(&mut hits, Duration::from_secs(1), 1, t0), None);
        hits.push_back(t0);
        let wait = window_wait(&mut hits, Duration::from_secs(1), 1, t0 + Duration::from_millis(400));
        assert_eq!(wait, Some(Duration::from_millis(585)));
        // Within the tolerance of a full window counts as a full window.
        let later = t0 + Duration::from_millis(990);
        assert_eq!(window_wait(&mut hits, Duration::from_secs(1), 1, later), None);
    }

    #[test]
    fn paid_requests_get_the_higher_ceiling_over_the_same_window() {
        let cfg = TelegramSimConfig { global_per_sec: 2, paid_per_sec: 3, ..TelegramSimConfig::default() };
        let mut st = SimState::new();
        let now = Instant::now();
        for chat in 1..=2 {
            assert_eq!(st.flood_wait(&cfg, chat, false, now), None);
            st.record_hit(chat, now);
        }
        assert!(st.flood_wait(&cfg, 3, false, now).is_some(), "unflagged: the window holds global_per_sec");
        assert_eq!(st.flood_wait(&cfg, 3, true, now), None, "flagged: room up to paid_per_sec");
        st.record_hit(3, now);
        assert!(st.flood_wait(&cfg, 4, true, now).is_some(), "flagged: the window holds paid_per_sec");
        assert!(st.flood_wait(&cfg, 1, true, now).is_some(), "the per-chat limit still applies");

        // A paid limit set below the free one does not make the flag a penalty.
        let low = TelegramSimConfig { global_per_sec: 2, paid_per_sec: 1, ..TelegramSimConfig::default() };
        let mut st = SimState::new();
        st.record_hit(1, now);
        assert_eq!(st.flood_wait(&low, 2, true, now), None);
    }
}
