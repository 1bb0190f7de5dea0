//! Store: SQLite (WAL) holding subscribers, their places, events and the delivery
//! outbox.
//!
//! The outbox is what makes delivery durable (DESIGN §2, invariants 3 and 4):
//! - an event and all its deliveries are written in one transaction, keyed by
//!   (event id, subscriber, channel), so enqueueing the same delivery twice is a no-op;
//! - the dispatcher marks a delivery `sending` before the request and `sent` after the
//!   platform confirmed it; a confirmed delivery is never picked again;
//! - after a crash, [`Store::recover_in_flight`] puts `sending` rows back to `pending`:
//!   only a request that was in flight can be sent twice.
//!
//! rusqlite is synchronous. Each call holds the connection for one short statement or
//! transaction (well under a millisecond on WAL), so callers use it directly from async
//! code rather than paying a thread hop per call; nothing holds the lock across an
//! `.await`.

use std::path::Path;
use std::sync::{Mutex, MutexGuard};

use rusqlite::{Connection, OptionalExtension, params};

use crate::alerts::Event;
use crate::messages::Lang;
use crate::regions::RegionId;

pub type SubscriberId = i64;
pub type DeliveryId = i64;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("stored JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("database schema version {found} is newer than this sirena knows ({known})")]
    TooNew { found: i64, known: i64 },
}

/// Numbered migrations; `PRAGMA user_version` records how many have run.
const MIGRATIONS: &[&str] = &[
    // 1: the spine.
    "CREATE TABLE subscribers (
        id INTEGER PRIMARY KEY,
        channel TEXT NOT NULL,
        address TEXT NOT NULL,
        lang TEXT NOT NULL,
        active INTEGER NOT NULL DEFAULT 1,
        inactive_reason TEXT,
        created_at INTEGER NOT NULL,
        UNIQUE (channel, address)
    );
    CREATE TABLE places (
        subscriber_id INTEGER NOT NULL REFERENCES subscribers(id) ON DELETE CASCADE,
        region_id TEXT NOT NULL,
        PRIMARY KEY (subscriber_id, region_id)
    );
    CREATE TABLE events (
        id TEXT PRIMARY KEY,
        kind TEXT NOT NULL,
        transition TEXT NOT NULL,
        revision INTEGER NOT NULL,
        at TEXT NOT NULL,
        body TEXT NOT NULL
    );
    CREATE TABLE deliveries (
        id INTEGER PRIMARY KEY,
        event_id TEXT NOT NULL REFERENCES events(id),
        subscriber_id INTEGER NOT NULL REFERENCES subscribers(id) ON DELETE CASCADE,
        channel TEXT NOT NULL,
        address TEXT NOT NULL,
        text TEXT NOT NULL,
        silent INTEGER NOT NULL,
        priority INTEGER NOT NULL,
        state TEXT NOT NULL DEFAULT 'pending',
        attempts INTEGER NOT NULL DEFAULT 0,
        not_before INTEGER NOT NULL,
        deadline INTEGER NOT NULL,
        created_at INTEGER NOT NULL,
        sent_at INTEGER,
        platform_id TEXT,
        last_error TEXT,
        UNIQUE (event_id, subscriber_id, channel)
    );
    CREATE INDEX deliveries_due ON deliveries (state, priority, id);
    CREATE TABLE kv (key TEXT PRIMARY KEY, value TEXT NOT NULL);",
];

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Subscriber {
    pub id: SubscriberId,
    pub channel: String,
    pub address: String,
    pub lang: Lang,
    pub active: bool,
}

/// A message to queue for one subscriber on one channel.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewDelivery {
    pub subscriber_id: SubscriberId,
    pub channel: String,
    pub address: String,
    pub text: String,
    pub silent: bool,
}

/// A queued message as the dispatcher sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Delivery {
    pub id: DeliveryId,
    pub event_id: String,
    pub subscriber_id: SubscriberId,
    pub channel: String,
    pub address: String,
    pub text: String,
    pub silent: bool,
    pub priority: i64,
    pub attempts: i64,
    pub deadline_ms: i64,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Enqueued {
    /// False when the event was already stored (a replay after restart).
    pub event_new: bool,
    /// Deliveries actually added; duplicates are not counted.
    pub deliveries: usize,
}

/// Deliveries by state.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    pub pending: u64,
    pub sending: u64,
    pub sent: u64,
    pub failed: u64,
    pub expired: u64,
}

impl Counts {
    /// Nothing left to send.
    pub fn is_drained(&self) -> bool {
        self.pending == 0 && self.sending == 0
    }
}

pub struct Store {
    conn: Mutex<Connection>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Store")
    }
}

impl Store {
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        let conn = Connection::open(path)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        // NORMAL is durable across process crashes in WAL mode; only an OS crash or
        // power loss can drop the last transactions.
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        Self::init(conn)
    }

    pub fn open_in_memory() -> Result<Store, StoreError> {
        Self::init(Connection::open_in_memory()?)
    }

    fn init(mut conn: Connection) -> Result<Store, StoreError> {
        conn.pragma_update(None, "foreign_keys", "ON")?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
        let known = MIGRATIONS.len() as i64;
        if version > known {
            return Err(StoreError::TooNew { found: version, known });
        }
        for (i, sql) in MIGRATIONS.iter().enumerate().skip(version as usize) {
            let tx = conn.transaction()?;
            tx.execute_batch(sql)?;
            tx.pragma_update(None, "user_version", (i + 1) as i64)?;
            tx.commit()?;
        }
        Ok(Store { conn: Mutex::new(conn) })
    }

    fn conn(&self) -> MutexGuard<'_, Connection> {
        // A panic while holding the lock leaves SQLite itself consistent (every write
        // is a statement or a transaction), so the poison flag carries no meaning here.
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    // ------------------------------------------------------------ subscribers

    /// Finds or creates the subscriber for a channel address. Returns it and whether it
    /// was created. An existing but inactive subscriber is reactivated: they came back.
    pub fn upsert_subscriber(
        &self,
        channel: &str,
        address: &str,
        lang: Lang,
    ) -> Result<(Subscriber, bool), StoreError> {
        let conn = self.conn();
        let created = conn.execute(
            "INSERT INTO subscribers (channel, address, lang, created_at) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (channel, address) DO NOTHING",
            params![channel, address, lang.code(), now_ms()],
        )? == 1;
        conn.execute(
            "UPDATE subscribers SET active = 1, inactive_reason = NULL WHERE channel = ?1 AND address = ?2",
            params![channel, address],
        )?;
        let sub = query_subscriber(&conn, channel, address)?.ok_or(rusqlite::Error::QueryReturnedNoRows)?;
        Ok((sub, created))
    }

    pub fn subscriber(&self, channel: &str, address: &str) -> Result<Option<Subscriber>, StoreError> {
        query_subscriber(&self.conn(), channel, address)
    }

    pub fn set_lang(&self, id: SubscriberId, lang: Lang) -> Result<(), StoreError> {
        self.conn().execute("UPDATE subscribers SET lang = ?2 WHERE id = ?1", params![id, lang.code()])?;
        Ok(())
    }

    /// Stops all deliveries to a subscriber (blocked the bot, account deleted).
    pub fn deactivate(&self, id: SubscriberId, reason: &str) -> Result<(), StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        tx.execute("UPDATE subscribers SET active = 0, inactive_reason = ?2 WHERE id = ?1", params![id, reason])?;
        tx.execute(
            "UPDATE deliveries SET state = 'failed', last_error = ?2 WHERE subscriber_id = ?1 AND state = 'pending'",
            params![id, format!("subscriber inactive: {reason}")],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// The platform moved a chat to a new id (a group became a supergroup).
    pub fn rewrite_address(&self, channel: &str, old: &str, new: &str) -> Result<(), StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        tx.execute(
            "UPDATE subscribers SET address = ?3 WHERE channel = ?1 AND address = ?2",
            params![channel, old, new],
        )?;
        tx.execute(
            "UPDATE deliveries SET address = ?3 WHERE channel = ?1 AND address = ?2 AND state = 'pending'",
            params![channel, old, new],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// Adds a place; false when the subscriber already had it.
    pub fn add_place(&self, id: SubscriberId, region: &RegionId) -> Result<bool, StoreError> {
        let n = self.conn().execute(
            "INSERT OR IGNORE INTO places (subscriber_id, region_id) VALUES (?1, ?2)",
            params![id, region.as_str()],
        )?;
        Ok(n == 1)
    }

    /// Removes one place, or all of them with `None`. Returns how many were removed.
    pub fn remove_places(&self, id: SubscriberId, region: Option<&RegionId>) -> Result<usize, StoreError> {
        let conn = self.conn();
        let n = match region {
            Some(r) => {
                conn.execute("DELETE FROM places WHERE subscriber_id = ?1 AND region_id = ?2", params![id, r.as_str()])?
            }
            None => conn.execute("DELETE FROM places WHERE subscriber_id = ?1", params![id])?,
        };
        Ok(n)
    }

    pub fn places(&self, id: SubscriberId) -> Result<Vec<RegionId>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare("SELECT region_id FROM places WHERE subscriber_id = ?1 ORDER BY region_id")?;
        let rows = stmt.query_map(params![id], |r| r.get::<_, String>(0))?;
        let mut out = Vec::new();
        for row in rows {
            // A row that is not a valid code cannot come from sirena itself; skip it
            // rather than fail the whole list.
            if let Ok(id) = RegionId::parse(&row?) {
                out.push(id);
            }
        }
        Ok(out)
    }

    /// Every place of every active subscriber, for the matcher.
    pub fn active_places(&self) -> Result<Vec<(Subscriber, RegionId)>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare(
            "SELECT s.id, s.channel, s.address, s.lang, s.active, p.region_id
             FROM places p JOIN subscribers s ON s.id = p.subscriber_id
             WHERE s.active = 1 ORDER BY s.id",
        )?;
        let rows = stmt.query_map([], |r| Ok((subscriber_from_row(r)?, r.get::<_, String>(5)?)))?;
        let mut out = Vec::new();
        for row in rows {
            let (sub, region) = row?;
            if let Ok(region) = RegionId::parse(&region) {
                out.push((sub, region));
            }
        }
        Ok(out)
    }

    // ------------------------------------------------------------ events and outbox

    pub fn event_exists(&self, id: &str) -> Result<bool, StoreError> {
        let conn = self.conn();
        Ok(conn.query_row("SELECT 1 FROM events WHERE id = ?1", params![id], |_| Ok(())).optional()?.is_some())
    }

    /// Stores an event and its deliveries in one transaction. Idempotent.
    pub fn enqueue(&self, event: &Event, deliveries: &[NewDelivery], deadline_ms: i64) -> Result<Enqueued, StoreError> {
        let body = serde_json::to_string(event)?;
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let event_new = tx.execute(
            "INSERT OR IGNORE INTO events (id, kind, transition, revision, at, body) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![
                event.id.0,
                event.kind.as_str(),
                event.transition.as_str(),
                event.revision,
                event.at.to_rfc3339(),
                body
            ],
        )? == 1;
        let now = now_ms();
        let mut added = 0;
        {
            let mut stmt = tx.prepare(
                "INSERT OR IGNORE INTO deliveries
                 (event_id, subscriber_id, channel, address, text, silent, priority, not_before, deadline, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?8)",
            )?;
            for d in deliveries {
                added += stmt.execute(params![
                    event.id.0,
                    d.subscriber_id,
                    d.channel,
                    d.address,
                    d.text,
                    d.silent,
                    event.priority.as_i64(),
                    now,
                    deadline_ms
                ])?;
            }
        }
        tx.commit()?;
        Ok(Enqueued { event_new, deliveries: added })
    }

    /// After a crash: deliveries that were in flight go back to the queue. Returns how
    /// many; each may reach its recipient twice, and nothing else can.
    pub fn recover_in_flight(&self) -> Result<usize, StoreError> {
        Ok(self.conn().execute("UPDATE deliveries SET state = 'pending' WHERE state = 'sending'", [])?)
    }

    /// Pending deliveries due at `now_ms`, highest priority first, then oldest.
    pub fn due(&self, now_ms: i64, limit: usize) -> Result<Vec<Delivery>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "SELECT id, event_id, subscriber_id, channel, address, text, silent, priority, attempts, deadline
             FROM deliveries WHERE state = 'pending' AND not_before <= ?1
             ORDER BY priority, id LIMIT ?2",
        )?;
        let rows = stmt.query_map(params![now_ms, limit as i64], |r| {
            Ok(Delivery {
                id: r.get(0)?,
                event_id: r.get(1)?,
                subscriber_id: r.get(2)?,
                channel: r.get(3)?,
                address: r.get(4)?,
                text: r.get(5)?,
                silent: r.get(6)?,
                priority: r.get(7)?,
                attempts: r.get(8)?,
                deadline_ms: r.get(9)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// When the earliest pending delivery that is not due at `now_ms` becomes due.
    pub fn next_not_before(&self, now_ms: i64) -> Result<Option<i64>, StoreError> {
        let conn = self.conn();
        Ok(conn.query_row(
            "SELECT MIN(not_before) FROM deliveries WHERE state = 'pending' AND not_before > ?1",
            params![now_ms],
            |r| r.get(0),
        )?)
    }

    pub fn mark_sending(&self, id: DeliveryId) -> Result<(), StoreError> {
        self.conn()
            .execute("UPDATE deliveries SET state = 'sending', attempts = attempts + 1 WHERE id = ?1", params![id])?;
        Ok(())
    }

    pub fn mark_sent(&self, id: DeliveryId, platform_id: &str) -> Result<(), StoreError> {
        self.conn().execute(
            "UPDATE deliveries SET state = 'sent', sent_at = ?2, platform_id = ?3, last_error = NULL WHERE id = ?1",
            params![id, now_ms(), platform_id],
        )?;
        Ok(())
    }

    /// Back to the queue, not before `not_before_ms`.
    pub fn mark_retry(&self, id: DeliveryId, not_before_ms: i64, error: &str) -> Result<(), StoreError> {
        self.conn().execute(
            "UPDATE deliveries SET state = 'pending', not_before = ?2, last_error = ?3 WHERE id = ?1",
            params![id, not_before_ms, error],
        )?;
        Ok(())
    }

    /// A final state other than sent: `failed` or `expired`.
    pub fn mark_final(&self, id: DeliveryId, state: FinalState, error: &str) -> Result<(), StoreError> {
        self.conn().execute(
            "UPDATE deliveries SET state = ?2, last_error = ?3 WHERE id = ?1",
            params![id, state.as_str(), error],
        )?;
        Ok(())
    }

    pub fn counts(&self) -> Result<Counts, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare("SELECT state, COUNT(*) FROM deliveries GROUP BY state")?;
        let mut counts = Counts::default();
        let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?;
        for row in rows {
            let (state, n) = row?;
            let n = n.max(0) as u64;
            match state.as_str() {
                "pending" => counts.pending = n,
                "sending" => counts.sending = n,
                "sent" => counts.sent = n,
                "failed" => counts.failed = n,
                "expired" => counts.expired = n,
                _ => {}
            }
        }
        Ok(counts)
    }

    // ------------------------------------------------------------ small state

    pub fn kv_get(&self, key: &str) -> Result<Option<String>, StoreError> {
        Ok(self.conn().query_row("SELECT value FROM kv WHERE key = ?1", params![key], |r| r.get(0)).optional()?)
    }

    pub fn kv_put(&self, key: &str, value: &str) -> Result<(), StoreError> {
        self.conn().execute(
            "INSERT INTO kv (key, value) VALUES (?1, ?2) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            params![key, value],
        )?;
        Ok(())
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FinalState {
    Failed,
    Expired,
}

impl FinalState {
    fn as_str(self) -> &'static str {
        match self {
            FinalState::Failed => "failed",
            FinalState::Expired => "expired",
        }
    }
}

fn query_subscriber(conn: &Connection, channel: &str, address: &str) -> Result<Option<Subscriber>, StoreError> {
    Ok(conn
        .query_row(
            "SELECT id, channel, address, lang, active FROM subscribers WHERE channel = ?1 AND address = ?2",
            params![channel, address],
            subscriber_from_row,
        )
        .optional()?)
}

fn subscriber_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Subscriber> {
    let lang: String = r.get(3)?;
    Ok(Subscriber {
        id: r.get(0)?,
        channel: r.get(1)?,
        address: r.get(2)?,
        lang: Lang::parse(&lang).unwrap_or(Lang::Uk),
        active: r.get(4)?,
    })
}

/// Milliseconds since the Unix epoch, the store's clock.
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alerts::{AlertKind, EventDetail, EventId, Priority, Transition};

    fn event(id: &str) -> Event {
        Event {
            id: EventId(id.into()),
            kind: AlertKind::AirRaid,
            transition: Transition::Started,
            revision: 1,
            targets: vec![],
            at: chrono::Utc::now(),
            priority: Priority::AirRaidStart,
            detail: EventDetail::Alert { started_at: chrono::Utc::now(), raw_kind: None },
        }
    }

    fn delivery(sub: &Subscriber) -> NewDelivery {
        NewDelivery {
            subscriber_id: sub.id,
            channel: "telegram".into(),
            address: sub.address.clone(),
            text: "hello".into(),
            silent: false,
        }
    }

    #[test]
    fn enqueue_is_idempotent() {
        let store = Store::open_in_memory().expect("store");
        let (a, created) = store.upsert_subscriber("telegram", "1", Lang::Uk).expect("sub");
        assert!(created);
        let (b, _) = store.upsert_subscriber("telegram", "2", Lang::En).expect("sub");
        let e = event("e1");
        let first = store.enqueue(&e, &[delivery(&a), delivery(&b)], i64::MAX).expect("enqueue");
        assert_eq!(first, Enqueued { event_new: true, deliveries: 2 });
        let again = store.enqueue(&e, &[delivery(&a), delivery(&b)], i64::MAX).expect("enqueue");
        assert_eq!(again, Enqueued { event_new: false, deliveries: 0 });
        assert_eq!(store.counts().expect("counts").pending, 2);
    }

    #[test]
    fn sent_is_never_due_again_and_in_flight_recovers() {
        let store = Store::open_in_memory().expect("store");
        let (a, _) = store.upsert_subscriber("telegram", "1", Lang::Uk).expect("sub");
        let (b, _) = store.upsert_subscriber("telegram", "2", Lang::Uk).expect("sub");
        store.enqueue(&event("e1"), &[delivery(&a), delivery(&b)], i64::MAX).expect("enqueue");
        let due = store.due(now_ms(), 10).expect("due");
        assert_eq!(due.len(), 2);
        store.mark_sending(due[0].id).expect("mark");
        store.mark_sent(due[0].id, "m1").expect("mark");
        store.mark_sending(due[1].id).expect("mark");
        // Crash here: due[1] was in flight.
        assert!(store.due(now_ms(), 10).expect("due").is_empty());
        assert_eq!(store.recover_in_flight().expect("recover"), 1);
        let again = store.due(now_ms(), 10).expect("due");
        assert_eq!(again.iter().map(|d| d.id).collect::<Vec<_>>(), vec![due[1].id]);
    }

    #[test]
    fn migrations_run_once_on_a_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("s.db");
        {
            let s = Store::open(&path).expect("open");
            s.kv_put("k", "v").expect("put");
        }
        let s = Store::open(&path).expect("reopen");
        assert_eq!(s.kv_get("k").expect("get").as_deref(), Some("v"));
    }

    #[test]
    fn deactivation_fails_pending_deliveries() {
        let store = Store::open_in_memory().expect("store");
        let (a, _) = store.upsert_subscriber("telegram", "1", Lang::Uk).expect("sub");
        store.enqueue(&event("e1"), &[delivery(&a)], i64::MAX).expect("enqueue");
        store.deactivate(a.id, "blocked").expect("deactivate");
        assert_eq!(store.counts().expect("counts").failed, 1);
        assert!(store.active_places().expect("places").is_empty());
    }
}
