//! Store: subscribers, their places, events and the delivery outbox, behind one async
//! [`Store`] trait. [`sqlite::SqliteStore`] is the embedded default; a second backend
//! (PostgreSQL, DESIGN §15) implements the same trait and must pass the same
//! [`conformance`] suite.
//!
//! The outbox is what makes delivery durable (DESIGN §2, invariants 3 and 4):
//! - a delivery is channel-neutral and holds no text: (event, subscriber, channel,
//!   address, language, priority, state, lease, deadline). It is keyed by (event,
//!   subscriber) — a subscriber is one address on one channel — so enqueueing the same
//!   delivery twice is a no-op. Messages are rendered when a delivery is claimed;
//! - an event's deliveries are written set-based from a list of subscriber ids, or from
//!   the store's own record of who was told of the same subject (an all-clear goes to
//!   whoever was told the start);
//! - the dispatcher claims due deliveries in one atomic statement, all due rows of a
//!   chat together, under a lease (`claimed_by`, `lease_until`) it renews while it
//!   works; only an expired lease is put back in the queue, so after a crash only what
//!   was in flight can be sent twice, and a live node's work is never taken.
//!
//! States: `pending` → `sending` (claimed) → `sent` → `delivered` | `undelivered`
//! (where the platform reports what became of a message, [`Store::report`]) |
//! `failed` | `superseded` | `expired`. A delivery is `sent` once the platform took
//! it, `delivered` only once the platform says it reached the phone.
//!
//! **Architecture invariant:** store work never runs on the async workers. Every
//! method of the SQLite store runs on tokio's blocking pool, and large writes are cut
//! into short transactions so a bot reply never waits behind a million-row fan-out.

pub mod conformance;
pub mod postgres;
pub mod sqlite;

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;

use crate::alerts::{AlertKind, Event, EventId, Priority};
use crate::channels::ChannelKind;
use crate::dispatch::quiet::QuietHours;
use crate::messages::Lang;
use crate::regions::{Point, RegionId};

pub use postgres::PgStore;
pub use sqlite::SqliteStore;

pub type SubscriberId = i64;
/// The store's own small key of a stored event (its row), used by deliveries.
pub type EventRef = i64;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// A PostgreSQL statement, connection or URL failed (the message carries the
    /// server's SQLSTATE where it sent one).
    #[error("PostgreSQL: {}", postgres_message(.0))]
    Postgres(#[from] tokio_postgres::Error),
    /// No pooled PostgreSQL connection could be had in time, or the pool is closed.
    /// (A connection that failed to open is [`StoreError::Postgres`].)
    #[error("PostgreSQL connection pool: {0}")]
    PostgresPool(deadpool_postgres::PoolError),
    #[error("stored JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("database schema version {found} is newer than this sirena knows ({known})")]
    TooNew { found: i64, known: i64 },
    #[error("the store's worker thread failed: {0}")]
    Worker(String),
    /// The database's file or directory could not be created or made private.
    #[error("{}: {source}", path.display())]
    File { path: std::path::PathBuf, source: std::io::Error },
}

impl StoreError {
    /// Errors that will not go away by retrying the same statement: a read-only or
    /// corrupt file, a full disk. The daemon stops on them so systemd can restart it
    /// once an operator has fixed the cause.
    pub fn is_permanent(&self) -> bool {
        use rusqlite::ErrorCode::*;
        match self {
            StoreError::Sqlite(rusqlite::Error::SqliteFailure(e, _)) => {
                matches!(e.code, ReadOnly | DatabaseCorrupt | NotADatabase | DiskFull | CannotOpen | PermissionDenied)
            }
            StoreError::Postgres(e) => postgres::is_permanent(e),
            StoreError::TooNew { .. } => true,
            _ => false,
        }
    }
}

impl From<deadpool_postgres::PoolError> for StoreError {
    fn from(e: deadpool_postgres::PoolError) -> StoreError {
        match e {
            deadpool_postgres::PoolError::Backend(e) => StoreError::Postgres(e),
            e => StoreError::PostgresPool(e),
        }
    }
}

/// A PostgreSQL error with the server's own message and SQLSTATE when it sent one
/// (tokio-postgres's Display says only "db error").
fn postgres_message(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{} ({})", db.message(), db.code().code()),
        None => match std::error::Error::source(e) {
            Some(cause) => format!("{e}: {cause}"),
            None => e.to_string(),
        },
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Subscriber {
    pub id: SubscriberId,
    pub kind: ChannelKind,
    pub address: String,
    pub lang: Lang,
    pub active: bool,
}

/// What [`Store::upsert_subscriber`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Upserted {
    pub subscriber: Subscriber,
    pub created: bool,
    /// The subscriber existed but was inactive (blocked the bot, then came back).
    pub reactivated: bool,
}

/// One subscriber for a bulk import: the address on a channel, a language, places.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Import {
    pub kind: ChannelKind,
    pub address: String,
    pub lang: Lang,
    pub places: Vec<RegionId>,
}

/// A region's Telegram channel as the region files name it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RegionChannel {
    /// `@username` or `-100…`, as parsed by [`crate::channels::Address`].
    pub address: String,
    pub lang: Lang,
    pub region: RegionId,
}

/// Places added to and removed from the match index by a channel sync.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PlaceChanges {
    pub added: Vec<(SubscriberId, RegionId)>,
    pub removed: Vec<(SubscriberId, RegionId)>,
}

/// One of a subscriber's places with the resident's settings for it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlaceSettings {
    pub region: RegionId,
    /// The resident's name for it ("home", "parents"); `None` means the place's name.
    pub label: Option<String>,
    /// The only alert kinds wanted for this place; `None` means every kind.
    pub kinds: Option<Vec<AlertKind>>,
}

/// What the bot keeps about one chat besides its places.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ChatSettings {
    /// Where a multi-step conversation stands, as the bot serialised it.
    pub dialog: Option<String>,
    pub quiet: Option<QuietHours>,
    /// Paused with `/stop`: the subscriber is inactive until `/start`.
    pub paused: bool,
}

/// A subscriber's quiet hours and home (first) place, as the lanes need them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Quiet {
    pub subscriber: SubscriberId,
    pub hours: QuietHours,
    pub home: Option<RegionId>,
}

/// Who an event's deliveries go to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Audience {
    /// These subscribers (inactive ones are skipped).
    Subscribers(Vec<SubscriberId>),
    /// Every active subscriber told of (or still queued for) an earlier event of this
    /// subject: an all-clear goes to whoever was told the start.
    ToldAbout(String),
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Enqueued {
    /// False when the event was already stored (a replay, or a late subscriber).
    pub event_new: bool,
    /// Deliveries actually added; duplicates are not counted.
    pub deliveries: usize,
}

/// Delivery states. Stored as [`DeliveryState::code`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DeliveryState {
    Pending,
    Sending,
    Sent,
    Delivered,
    Failed,
    Superseded,
    Expired,
    /// Sent, and the platform reported it will not reach the phone.
    Undelivered,
}

impl DeliveryState {
    pub const ALL: [DeliveryState; 8] = [
        DeliveryState::Pending,
        DeliveryState::Sending,
        DeliveryState::Sent,
        DeliveryState::Delivered,
        DeliveryState::Failed,
        DeliveryState::Superseded,
        DeliveryState::Expired,
        DeliveryState::Undelivered,
    ];

    pub fn code(self) -> i64 {
        match self {
            DeliveryState::Pending => 0,
            DeliveryState::Sending => 1,
            DeliveryState::Sent => 2,
            DeliveryState::Delivered => 3,
            DeliveryState::Failed => 4,
            DeliveryState::Superseded => 5,
            DeliveryState::Expired => 6,
            DeliveryState::Undelivered => 7,
        }
    }

    pub fn from_code(code: i64) -> Option<DeliveryState> {
        DeliveryState::ALL.into_iter().find(|s| s.code() == code)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryState::Pending => "pending",
            DeliveryState::Sending => "sending",
            DeliveryState::Sent => "sent",
            DeliveryState::Delivered => "delivered",
            DeliveryState::Failed => "failed",
            DeliveryState::Superseded => "superseded",
            DeliveryState::Expired => "expired",
            DeliveryState::Undelivered => "undelivered",
        }
    }
}

/// A node's identity in leases; random per process start.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct NodeId(pub i64);

impl NodeId {
    pub fn random() -> NodeId {
        // Process id and start time are unique enough among a handful of nodes;
        // zero is avoided so an unset column never matches.
        let t = chrono::Utc::now().timestamp_nanos_opt().unwrap_or_default();
        NodeId(((t ^ (i64::from(std::process::id()) << 40)) & i64::MAX) | 1)
    }
}

/// One delivery's key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DeliveryKey {
    pub event: EventRef,
    pub subscriber: SubscriberId,
}

impl fmt::Display for DeliveryKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "e{}/s{}", self.event, self.subscriber)
    }
}

/// What to claim: due deliveries of one channel, of priorities `priorities`, for at
/// most `chats` subscribers not in `busy`. All due rows of a chosen subscriber are
/// claimed together, whatever their priority, so they can go out as one message.
#[derive(Clone, Debug)]
pub struct Claim {
    pub kind: ChannelKind,
    pub priorities: std::ops::RangeInclusive<Priority>,
    pub chats: usize,
    pub busy: Vec<SubscriberId>,
    pub node: NodeId,
    pub now_ms: i64,
    pub lease_until_ms: i64,
}

/// A claimed delivery, as the dispatcher sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Claimed {
    pub key: DeliveryKey,
    pub kind: ChannelKind,
    pub address: String,
    pub lang: Lang,
    pub priority: Priority,
    /// Attempts so far, this one included.
    pub attempts: u32,
    /// After this the delivery is noise: it expires instead of going out.
    pub deadline_ms: Option<i64>,
}

/// How a claimed delivery ended this round.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Finish {
    Sent {
        platform_id: String,
    },
    /// Back to the queue, not before this time.
    Retry {
        not_before_ms: i64,
        error: String,
    },
    Failed {
        error: String,
    },
    /// The reader got a newer message of the same subject instead (or nothing, when the
    /// subject was over before they were told).
    Superseded,
    Expired {
        reason: String,
    },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finished {
    pub key: DeliveryKey,
    pub finish: Finish,
}

/// Deliveries by state.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    pub pending: u64,
    pub sending: u64,
    pub sent: u64,
    pub delivered: u64,
    pub failed: u64,
    pub superseded: u64,
    pub expired: u64,
    pub undelivered: u64,
}

impl Counts {
    /// The count of one state.
    pub fn slot(&mut self, state: DeliveryState) -> &mut u64 {
        match state {
            DeliveryState::Pending => &mut self.pending,
            DeliveryState::Sending => &mut self.sending,
            DeliveryState::Sent => &mut self.sent,
            DeliveryState::Delivered => &mut self.delivered,
            DeliveryState::Failed => &mut self.failed,
            DeliveryState::Superseded => &mut self.superseded,
            DeliveryState::Expired => &mut self.expired,
            DeliveryState::Undelivered => &mut self.undelivered,
        }
    }

    pub fn of(self, state: DeliveryState) -> u64 {
        let mut c = self;
        *c.slot(state)
    }

    /// Both counts added, state by state.
    pub fn plus(mut self, other: Counts) -> Counts {
        for state in DeliveryState::ALL {
            *self.slot(state) += other.of(state);
        }
        self
    }

    pub fn total(&self) -> u64 {
        self.pending
            + self.sending
            + self.sent
            + self.delivered
            + self.failed
            + self.superseded
            + self.expired
            + self.undelivered
    }
}

/// What a platform's delivery report says became of a sent message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Report {
    /// It reached the phone.
    Delivered,
    /// It will not reach the phone (unreachable, expired, filtered).
    Undelivered { error: String },
    /// The platform dropped it for a reason that passes (Twilio's 14107: too many
    /// messages between the same two numbers): it goes back to the queue.
    Retry { not_before_ms: i64, error: String },
}

/// One line of the audit log: who did what, when (`sirena audit`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditEntry {
    pub at_ms: i64,
    /// An operator's Telegram user id, `config` (a reload) or `system`.
    pub who: String,
    /// What kind of thing happened: `order_started`, `broadcast_drafted`, `approved`,
    /// `config_refused`, … (see `operators::audit`).
    pub action: String,
    /// What exactly: an id and a short description.
    pub what: String,
}

/// One delivery of an event as a receipt report reads it (`sirena drills report`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Receipt {
    pub kind: ChannelKind,
    pub state: DeliveryState,
    /// Attempts made; more than one for a sent row means it may have gone out twice.
    pub attempts: u32,
    pub sent_at_ms: Option<i64>,
}

/// One recent event with its deliveries by state (`/deliveries`).
#[derive(Clone, Debug, PartialEq)]
pub struct Progress {
    pub event: Event,
    pub created_ms: i64,
    pub counts: Counts,
}

/// The store as every part of sirena uses it. Implementations must pass
/// [`conformance::run`].
#[async_trait]
pub trait Store: Send + Sync + 'static {
    // -------------------------------------------------------------- subscribers

    /// Finds or creates the subscriber for an address on a channel. An existing but
    /// inactive subscriber is reactivated: they came back.
    async fn upsert_subscriber(&self, kind: ChannelKind, address: &str, lang: Lang) -> Result<Upserted, StoreError>;
    async fn subscriber(&self, kind: ChannelKind, address: &str) -> Result<Option<Subscriber>, StoreError>;
    /// Also changes the language of the subscriber's queued deliveries.
    async fn set_lang(&self, id: SubscriberId, lang: Lang) -> Result<(), StoreError>;
    /// Stops all deliveries to a subscriber (blocked the bot, account deleted): their
    /// queued deliveries fail. Returns how many did.
    async fn deactivate(&self, id: SubscriberId, reason: &str) -> Result<u64, StoreError>;
    /// The platform moved a chat to a new address; queued and claimed deliveries follow.
    async fn rewrite_address(&self, kind: ChannelKind, old: &str, new: &str) -> Result<(), StoreError>;
    /// Adds a place; false when the subscriber already had it.
    async fn add_place(&self, id: SubscriberId, region: &RegionId) -> Result<bool, StoreError>;
    /// Removes one place, or all with `None`; returns the places removed.
    async fn remove_places(&self, id: SubscriberId, region: Option<&RegionId>) -> Result<Vec<RegionId>, StoreError>;
    async fn places(&self, id: SubscriberId) -> Result<Vec<RegionId>, StoreError>;
    /// Every place of every active subscriber, to build the match index at start.
    async fn active_places(&self) -> Result<Vec<(SubscriberId, RegionId)>, StoreError>;
    /// A subscriber's places in the order they were added (the first is their home),
    /// with labels and kind filters.
    async fn place_settings(&self, id: SubscriberId) -> Result<Vec<PlaceSettings>, StoreError>;
    /// Names a place (`None`: back to the place's own name); false when the
    /// subscriber does not have it.
    async fn set_place_label(
        &self,
        id: SubscriberId,
        region: &RegionId,
        label: Option<&str>,
    ) -> Result<bool, StoreError>;
    /// Sets the only kinds wanted for a place (`None`: every kind); false when the
    /// subscriber does not have it.
    async fn set_place_kinds(
        &self,
        id: SubscriberId,
        region: &RegionId,
        kinds: Option<&[AlertKind]>,
    ) -> Result<bool, StoreError>;
    /// The places of active subscribers that have a kind filter, with the kinds
    /// wanted; of one subscriber with `Some`.
    async fn filtered_places(
        &self,
        id: Option<SubscriberId>,
    ) -> Result<Vec<(SubscriberId, RegionId, Vec<AlertKind>)>, StoreError>;
    /// The bot's state of a chat; the default for one it keeps nothing about.
    async fn chat_settings(&self, id: SubscriberId) -> Result<ChatSettings, StoreError>;
    async fn set_chat_settings(&self, id: SubscriberId, settings: &ChatSettings) -> Result<(), StoreError>;
    /// Quiet hours and home place of those of `ids` that set quiet hours.
    async fn quiet_hours(&self, ids: Vec<SubscriberId>) -> Result<Vec<Quiet>, StoreError>;
    /// Deletes everything the bot keeps about a subscriber (places, settings, dialog)
    /// and deactivates it, failing its queued deliveries. Returns the places removed.
    async fn forget(&self, id: SubscriberId) -> Result<Vec<RegionId>, StoreError>;
    /// Adds (or reactivates) many subscribers with their places; returns how many
    /// subscribers were created.
    async fn import(&self, rows: Vec<Import>) -> Result<usize, StoreError>;
    /// Every active subscriber that has a place, with their places: what [`Store::import`]
    /// takes, so importing an export changes nothing. Ordered by channel name, address,
    /// then place. Reads every subscriber: for `sirena subscribers export`, not for loops.
    async fn export(&self) -> Result<Vec<Import>, StoreError>;
    /// Makes the region channels in the store exactly `channels`: new ones are added,
    /// ones no longer configured are deactivated.
    async fn sync_region_channels(&self, channels: Vec<RegionChannel>) -> Result<PlaceChanges, StoreError>;

    // -------------------------------------------------------------- events and outbox

    /// True once an event and all its first deliveries are stored; a replay of it after
    /// a restart can be skipped.
    async fn event_complete(&self, id: &EventId) -> Result<bool, StoreError>;
    /// Stores the event (if new) and its deliveries to `audience`, each with this
    /// deadline. Idempotent; marks the event complete at the end.
    async fn enqueue(
        &self,
        event: &Event,
        audience: Audience,
        deadline_ms: Option<i64>,
    ) -> Result<Enqueued, StoreError>;
    /// The last stored event of a subject, to tell a late subscriber what is going on.
    async fn latest_event(&self, subject: &str) -> Result<Option<Event>, StoreError>;
    async fn events(&self, refs: Vec<EventRef>) -> Result<Vec<(EventRef, Event)>, StoreError>;
    /// Claims due deliveries in one atomic statement (see [`Claim`]).
    async fn claim(&self, claim: Claim) -> Result<Vec<Claimed>, StoreError>;
    /// Records outcomes of claimed deliveries, in one transaction. A row no longer
    /// claimed by `node` (its lease expired and someone else took it) is left alone.
    async fn finish(&self, node: NodeId, done: Vec<Finished>) -> Result<(), StoreError>;
    /// Applies a delivery report to the `sent` deliveries of `kind` that went out as
    /// the message `platform_id` (one message may carry several). Returns how many
    /// changed: 0 for an id nobody sent, or a report replayed after a final one.
    async fn report(&self, kind: ChannelKind, platform_id: &str, report: Report) -> Result<u64, StoreError>;
    /// Extends the leases of everything `node` holds.
    async fn renew_leases(&self, node: NodeId, until_ms: i64) -> Result<u64, StoreError>;
    /// Puts everything `node` holds back in the queue (a clean stop).
    async fn release(&self, node: NodeId) -> Result<u64, StoreError>;
    /// Puts deliveries whose lease ended before `now_ms` back in the queue.
    async fn requeue_expired_leases(&self, now_ms: i64) -> Result<u64, StoreError>;
    /// When the earliest queued delivery of `kind` falls due.
    async fn next_due(&self, kind: ChannelKind) -> Result<Option<i64>, StoreError>;
    /// True when nothing is queued or claimed. Cheap at any size.
    async fn drained(&self) -> Result<bool, StoreError>;
    /// Deliveries by channel kind and state; kinds with no delivery are left out.
    /// Reads every row: for summaries, not for loops.
    async fn counts_by_channel(&self) -> Result<BTreeMap<ChannelKind, Counts>, StoreError>;
    /// Deliveries by state, over every channel.
    async fn counts(&self) -> Result<Counts, StoreError> {
        Ok(self.counts_by_channel().await?.into_values().fold(Counts::default(), Counts::plus))
    }

    // -------------------------------------------------------------- operators

    /// One stored event by its id (`/cancel`).
    async fn event(&self, id: &EventId) -> Result<Option<Event>, StoreError>;
    /// Appends one line to the audit log.
    async fn audit_append(&self, entry: AuditEntry) -> Result<(), StoreError>;
    /// The audit log from `since_ms` on (everything with `None`), oldest first.
    async fn audit(&self, since_ms: Option<i64>) -> Result<Vec<AuditEntry>, StoreError>;
    /// Whether a subscriber takes part in drills (`/drills on|off`); off by default.
    async fn set_drills(&self, id: SubscriberId, on: bool) -> Result<(), StoreError>;
    /// The active subscribers who take part in drills.
    async fn drill_subscribers(&self) -> Result<Vec<SubscriberId>, StoreError>;
    /// Active subscribers with a delivery of this event that was not dropped (queued,
    /// claimed, sent, delivered): whoever a correction must reach.
    async fn received(&self, event: &EventId) -> Result<Vec<SubscriberId>, StoreError>;
    /// The `events` most recently stored events, newest first, each with its
    /// deliveries by state.
    async fn progress(&self, events: usize) -> Result<Vec<Progress>, StoreError>;
    /// Every delivery of one event, for a receipt report; `None` for an unknown event.
    async fn receipts(&self, event: &EventId) -> Result<Option<(i64, Vec<Receipt>)>, StoreError>;
    /// Retention: deletes finished deliveries (sent, delivered, failed, superseded,
    /// expired, undelivered) finished — sent, or stored when never sent — before
    /// `before_ms`, but only of subjects that are over (an end or a cancellation is
    /// stored) or have no end (broadcasts, drills): an all-clear still finds whoever
    /// was told of a long alert. Returns how many rows went.
    async fn purge_finished(&self, before_ms: i64) -> Result<u64, StoreError>;

    // -------------------------------------------------------------- small state

    async fn kv_get(&self, key: &str) -> Result<Option<String>, StoreError>;
    async fn kv_put(&self, key: &str, value: &str) -> Result<(), StoreError>;

    // -------------------------------------------------------------- shared points, SMS fallback, help

    /// Keeps the point a resident shared for one of their places, replacing an earlier
    /// one, so polygon and circle alerts can match it.
    async fn set_place_point(&self, id: SubscriberId, region: &RegionId, point: Point) -> Result<(), StoreError>;
    /// The shared points of the subscriber's current places (a removed place's is not).
    async fn place_points(&self, id: SubscriberId) -> Result<Vec<(RegionId, Point)>, StoreError>;
    /// Records `sms` as the SMS fallback of the Telegram chat `chat`, replacing an
    /// earlier one.
    async fn link_sms(&self, chat: SubscriberId, sms: SubscriberId) -> Result<(), StoreError>;
    /// The chat's SMS fallback subscriber, if it has one.
    async fn linked_sms(&self, chat: SubscriberId) -> Result<Option<SubscriberId>, StoreError>;
    /// Forgets the chat's SMS fallback link; returns the SMS subscriber it named.
    async fn unlink_sms(&self, chat: SubscriberId) -> Result<Option<SubscriberId>, StoreError>;
    /// Stores a help request, keyed (subscriber, order): a second one for the same
    /// order replaces the first's details and keeps its `created_ms`. True when new.
    async fn save_help_request(&self, request: &HelpRequest) -> Result<bool, StoreError>;
    /// The subscriber's request for `order`, or with `None` the one they changed last.
    async fn help_request(&self, id: SubscriberId, order: Option<&str>) -> Result<Option<HelpRequest>, StoreError>;
    /// Every request (of one order), oldest first: for operators.
    async fn help_requests(&self, order: Option<&str>) -> Result<Vec<HelpRequest>, StoreError>;
    /// Retention: deletes the help requests of orders that ended (lifted, expired or
    /// cancelled) before `before_ms` — the order's last stored event (an operator's
    /// correction aside) is its end or cancellation, stored before then. The requests
    /// of an order in force, one re-issued after it ended, or one with no stored event
    /// are kept. Returns how many went.
    async fn purge_help_requests(&self, before_ms: i64) -> Result<u64, StoreError>;
}

/// Where a help request's questions stand: the next one to answer, or done.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HelpStep {
    People,
    Mobility,
    Phone,
    Done,
}

impl HelpStep {
    pub const ALL: [HelpStep; 4] = [HelpStep::People, HelpStep::Mobility, HelpStep::Phone, HelpStep::Done];

    pub fn as_str(self) -> &'static str {
        match self {
            HelpStep::People => "people",
            HelpStep::Mobility => "mobility",
            HelpStep::Phone => "phone",
            HelpStep::Done => "done",
        }
    }

    pub fn parse(s: &str) -> Option<HelpStep> {
        HelpStep::ALL.into_iter().find(|h| h.as_str() == s)
    }
}

/// A resident's request for help to evacuate, tied to an order and a place. Every
/// detail is optional: the resident may skip each question.
#[derive(Clone, Debug, PartialEq)]
pub struct HelpRequest {
    pub subscriber: SubscriberId,
    /// The subscriber's address (the Telegram chat id); filled when read, ignored when
    /// saved.
    pub address: String,
    /// The evacuation order's id.
    pub order: String,
    pub region: RegionId,
    /// How many people need to leave.
    pub people: Option<u32>,
    /// Mobility needs, as a key the bot's buttons give (`wheelchair`, `bedridden`,
    /// `walks-slowly`, `none`).
    pub mobility: Option<String>,
    /// A phone to call back, normalised to E.164.
    pub phone: Option<String>,
    pub step: HelpStep,
    pub created_ms: i64,
    pub updated_ms: i64,
}

/// The small-state key `sirena subscribers import` bumps after writing subscribers, so
/// a running daemon rebuilds its match index and the imported hear the next event.
pub const IMPORTED_KEY: &str = "subscribers.imported";

/// Milliseconds since the Unix epoch, the store's clock.
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// An opened store of either backend. The daemon needs to know which: on PostgreSQL
/// it runs for leadership ([`crate::leader`]); on SQLite it is always the leader.
#[derive(Clone, Debug)]
pub enum Backend {
    Sqlite(Arc<SqliteStore>),
    Postgres(Arc<PgStore>),
}

impl Backend {
    /// Opens the store `[store]` names: the SQLite file (created if missing), or the
    /// PostgreSQL database with `password` (from `password_env`) if it needs one. The
    /// schema is brought up to date either way.
    pub async fn open(
        location: &crate::config::StoreLocation,
        password: Option<&crate::config::secret::Secret>,
    ) -> Result<Backend, StoreError> {
        match location {
            crate::config::StoreLocation::Sqlite(path) => {
                let path = path.clone();
                let store = tokio::task::spawn_blocking(move || SqliteStore::open(&path))
                    .await
                    .map_err(|e| StoreError::Worker(e.to_string()))??;
                Ok(Backend::Sqlite(Arc::new(store)))
            }
            crate::config::StoreLocation::Postgres { url, .. } => {
                let mut config = postgres::parse_url(url)?;
                if let Some(p) = password {
                    config.password(p.expose());
                }
                Ok(Backend::Postgres(Arc::new(PgStore::with_config(config).await?)))
            }
        }
    }

    pub fn store(&self) -> Arc<dyn Store> {
        match self {
            Backend::Sqlite(s) => s.clone(),
            Backend::Postgres(s) => s.clone(),
        }
    }
}

/// SQL both backends use to read stored channel names and language codes (plain
/// `CASE` expressions; PostgreSQL casts them).
pub(crate) mod sql {
    use crate::channels::ChannelKind;

    /// The retention rule of [`super::Store::purge_finished`], for both backends; `$1`
    /// is the cut-off in milliseconds (SQLite reads `$1` as `?1`).
    pub(crate) const PURGE_FINISHED: &str = "DELETE FROM deliveries WHERE state IN (2, 3, 4, 5, 6, 7)
         AND event_ref IN (
             SELECT e.ref FROM events e
             WHERE e.subject LIKE 'broadcast:%' OR e.subject LIKE 'drill:%'
                OR EXISTS (SELECT 1 FROM events c WHERE c.subject = e.subject
                           AND c.transition IN ('ended', 'cancelled')))
         AND COALESCE(sent_at, (SELECT created_ms FROM events x WHERE x.ref = event_ref)) < $1";

    /// The retention rule of [`super::Store::purge_help_requests`], for both backends;
    /// `$1` is the cut-off in milliseconds. An order's own events have ids starting
    /// `evacuation:`; an operator's correction of one (`correction:…`, transition
    /// `cancelled`, the order's subject) withdraws a message, not the order, so it
    /// neither ends the order nor hides a later end.
    pub(crate) const PURGE_HELP_REQUESTS: &str = "DELETE FROM help_requests WHERE EXISTS (
             SELECT 1 FROM events e
             WHERE e.subject = 'evacuation:' || help_requests.order_id
               AND e.id LIKE 'evacuation:%'
               AND e.transition IN ('ended', 'cancelled')
               AND e.created_ms < $1
               AND NOT EXISTS (SELECT 1 FROM events l WHERE l.subject = e.subject
                               AND l.id LIKE 'evacuation:%' AND l.ref > e.ref))";
    use crate::messages::Lang;

    /// SQL that turns a stored channel name into its [`ChannelKind::code`].
    pub(crate) fn channel_case(column: &str) -> String {
        let arms: String =
            ChannelKind::ALL.iter().map(|k| format!(" WHEN '{}' THEN {}", k.as_str(), k.code())).collect();
        format!("CASE {column}{arms} END")
    }

    pub(crate) fn known_channels() -> String {
        ChannelKind::ALL.iter().map(|k| format!("'{}'", k.as_str())).collect::<Vec<_>>().join(", ")
    }

    /// A place's kind filter as stored: kind names joined by commas.
    pub(crate) fn kinds_text(kinds: &[crate::alerts::AlertKind]) -> String {
        kinds.iter().map(|k| k.as_str()).collect::<Vec<_>>().join(",")
    }

    /// A stored kind filter; names sirena no longer knows are skipped.
    pub(crate) fn parse_kinds(text: &str) -> Vec<crate::alerts::AlertKind> {
        text.split(',').filter_map(crate::alerts::AlertKind::parse).collect()
    }

    /// SQL that turns a stored language code into its [`Lang::index`].
    pub(crate) fn lang_case(column: &str) -> String {
        let arms: String = Lang::ALL.iter().map(|l| format!(" WHEN '{}' THEN {}", l.code(), l.index())).collect();
        format!("CASE {column}{arms} ELSE {} END", Lang::Uk.index())
    }
}
