//! The SQLite store: one file in WAL mode, the embedded default.
//!
//! Two connections: a writer and a reader. WAL lets the reader see the last committed
//! state while the writer works, so the bot's lookups never wait for a fan-out. Both
//! sit behind tokio mutexes, which are fair (first come, first served): between the
//! short transactions of a large enqueue, a waiting bot write gets its turn. Every
//! call runs on tokio's blocking pool.
//!
//! A delivery row is small on purpose (DESIGN §7: ≤ 100 bytes): a `WITHOUT ROWID`
//! table keyed by (event, subscriber), integers for channel, language, priority and
//! state, no text but the address, nothing stored that is not needed, and partial
//! indexes that hold only queued (`deliveries_due`) or claimed (`deliveries_leased`)
//! rows.

use std::path::Path;
use std::rc::Rc;
use std::sync::Arc;

use async_trait::async_trait;
use rusqlite::types::Value;
use rusqlite::{Connection, OptionalExtension, params};
use tokio::sync::Mutex;

use super::*;

mod files;
mod migrations;

use migrations::MIGRATIONS;

/// Rows per transaction in a large enqueue: about 50 ms of writing each, so other
/// writers wait at most that long.
const CHUNK: usize = 25_000;

/// Claims the due rows of the most urgent chats in one statement: the inner query walks
/// `deliveries_due` in (priority, not_before) order to pick the chats, the outer one
/// takes every due row of those chats through `deliveries_by_subscriber`.
const CLAIM: &str = "UPDATE deliveries SET state = 1, claimed_by = ?1, lease_until = ?2, attempts = attempts + 1
     WHERE state = 0 AND not_before <= ?3 AND subscriber_id IN (
         SELECT subscriber_id FROM deliveries
         WHERE state = 0 AND channel = ?4 AND priority BETWEEN ?5 AND ?6 AND not_before <= ?3
           AND subscriber_id NOT IN (SELECT value FROM rarray(?7))
         ORDER BY priority, not_before LIMIT ?8)
     RETURNING event_ref, subscriber_id, channel, address, lang, priority, attempts, deadline";

/// The earliest queued row of one (channel, class): a seek to the start of its range
/// in `deliveries_due`. (The spine ran an unindexed `MIN(not_before)` after every send,
/// which took 400 ms at a million queued rows and held the rate at 4.5 msg/s.)
const NEXT_DUE: &str = "SELECT MIN(not_before) FROM deliveries WHERE state = 0 AND channel = ?1 AND priority = ?2";

pub struct SqliteStore {
    writer: Arc<Mutex<Connection>>,
    /// `None` for an in-memory store, whose second connection would be another database.
    reader: Option<Arc<Mutex<Connection>>>,
}

impl fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SqliteStore")
    }
}

impl SqliteStore {
    /// Opens (or creates, 0600 in a 0700 directory: see `files`) the database at `path`.
    pub fn open(path: &Path) -> Result<SqliteStore, StoreError> {
        files::prepare(path)?;
        let writer = Connection::open(path)?;
        writer.pragma_update(None, "journal_mode", "WAL")?;
        // NORMAL is durable across process crashes in WAL mode; only an OS crash or
        // power loss can drop the last transactions.
        writer.pragma_update(None, "synchronous", "NORMAL")?;
        let writer = init(writer)?;
        let reader = Connection::open_with_flags(
            path,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        let reader = setup(reader)?;
        Ok(SqliteStore { writer: Arc::new(Mutex::new(writer)), reader: Some(Arc::new(Mutex::new(reader))) })
    }

    pub fn open_in_memory() -> Result<SqliteStore, StoreError> {
        let writer = init(Connection::open_in_memory()?)?;
        Ok(SqliteStore { writer: Arc::new(Mutex::new(writer)), reader: None })
    }

    /// Every claimed (`sending`) delivery with the node that holds its lease. For
    /// inspecting a store from outside (the crash bench counts what a killed process
    /// held); the dispatcher never needs it.
    pub async fn leases(&self) -> Result<Vec<(DeliveryKey, NodeId)>, StoreError> {
        self.read(|conn| {
            let mut stmt =
                conn.prepare_cached("SELECT event_ref, subscriber_id, claimed_by FROM deliveries WHERE state = 1")?;
            let rows = stmt.query_map([], |r| {
                Ok((
                    DeliveryKey { event: r.get(0)?, subscriber: r.get(1)? },
                    NodeId(r.get::<_, Option<i64>>(2)?.unwrap_or(0)),
                ))
            })?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
        .await
    }

    /// Runs `f` on the blocking pool with the writer.
    async fn write<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let conn = self.writer.clone();
        run_blocking(move || f(&mut conn.blocking_lock())).await
    }

    /// Runs `f` on the blocking pool with the reader (the writer for in-memory stores).
    async fn read<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let conn = self.reader.clone().unwrap_or_else(|| self.writer.clone());
        run_blocking(move || f(&conn.blocking_lock())).await
    }
}

async fn run_blocking<T, F>(f: F) -> Result<T, StoreError>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T, StoreError> + Send + 'static,
{
    match tokio::task::spawn_blocking(f).await {
        Ok(r) => r,
        Err(e) if e.is_panic() => Err(StoreError::Worker("a store call panicked".into())),
        Err(e) => Err(StoreError::Worker(e.to_string())),
    }
}

fn setup(conn: Connection) -> Result<Connection, StoreError> {
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    rusqlite::vtab::array::load_module(&conn)?;
    conn.set_prepared_statement_cache_capacity(64);
    Ok(conn)
}

fn init(mut conn: Connection) -> Result<Connection, StoreError> {
    // Migrations rebuild tables, which foreign keys would block; they are switched on
    // once the schema is current.
    conn.pragma_update(None, "foreign_keys", "OFF")?;
    let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    let known = MIGRATIONS.len() as i64;
    if version > known {
        return Err(StoreError::TooNew { found: version, known });
    }
    for (i, migrate) in MIGRATIONS.iter().enumerate().skip(version.max(0) as usize) {
        let tx = conn.transaction()?;
        migrate(&tx)?;
        tx.pragma_update(None, "user_version", (i + 1) as i64)?;
        tx.commit()?;
    }
    conn.pragma_update(None, "foreign_keys", "ON")?;
    setup(conn)
}

fn ids(values: impl IntoIterator<Item = i64>) -> Rc<Vec<Value>> {
    Rc::new(values.into_iter().map(Value::from).collect())
}

fn subscriber_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Option<Subscriber>> {
    let kind: String = r.get(1)?;
    let lang: String = r.get(3)?;
    // A row of a channel this sirena does not know cannot be served; it is skipped.
    Ok(ChannelKind::parse(&kind).map(|kind| Subscriber {
        id: r.get(0).unwrap_or_default(),
        kind,
        address: r.get(2).unwrap_or_default(),
        lang: Lang::parse(&lang).unwrap_or(Lang::Uk),
        active: r.get(4).unwrap_or(false),
    }))
}

fn query_subscriber(conn: &Connection, kind: ChannelKind, address: &str) -> Result<Option<Subscriber>, StoreError> {
    Ok(conn
        .prepare_cached(
            "SELECT id, channel, address, lang, active FROM subscribers WHERE channel = ?1 AND address = ?2",
        )?
        .query_row(params![kind.as_str(), address], subscriber_from_row)
        .optional()?
        .flatten())
}

fn parse_places(rows: Vec<String>) -> Vec<RegionId> {
    // A row that is not a valid code cannot come from sirena itself; it is skipped
    // rather than failing the whole list.
    rows.iter().filter_map(|r| RegionId::parse(r).ok()).collect()
}

/// Inserts or reactivates one subscriber inside a transaction.
fn upsert(conn: &Connection, kind: ChannelKind, address: &str, lang: Lang) -> Result<Upserted, StoreError> {
    let created = conn
        .prepare_cached(
            "INSERT INTO subscribers (channel, address, lang, created_at) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (channel, address) DO NOTHING",
        )?
        .execute(params![kind.as_str(), address, lang.code(), now_ms()])?
        == 1;
    let reactivated = conn
        .prepare_cached(
            "UPDATE subscribers SET active = 1, inactive_reason = NULL
             WHERE channel = ?1 AND address = ?2 AND active = 0",
        )?
        .execute(params![kind.as_str(), address])?
        == 1;
    let subscriber = query_subscriber(conn, kind, address)?.ok_or(rusqlite::Error::QueryReturnedNoRows)?;
    Ok(Upserted { subscriber, created, reactivated })
}

fn insert_event(conn: &Connection, event: &Event) -> Result<(EventRef, bool, bool), StoreError> {
    let body = serde_json::to_string(event)?;
    let new =
        conn.prepare_cached(
            "INSERT INTO events (id, subject, kind, transition, revision, priority, at, body, created_ms)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) ON CONFLICT (id) DO NOTHING",
        )?
        .execute(params![
            event.id.0,
            event.subject(),
            event.kind.as_str(),
            event.transition.as_str(),
            event.revision,
            event.priority.as_i64(),
            event.at.to_rfc3339(),
            body,
            now_ms()
        ])? == 1;
    let (r, complete): (EventRef, bool) = conn
        .prepare_cached("SELECT ref, complete FROM events WHERE id = ?1")?
        .query_row(params![event.id.0], |r| Ok((r.get(0)?, r.get(1)?)))?;
    Ok((r, new, complete))
}

fn decode_event(body: &str) -> Result<Event, StoreError> {
    Ok(serde_json::from_str(body)?)
}

#[async_trait]
impl Store for SqliteStore {
    async fn upsert_subscriber(&self, kind: ChannelKind, address: &str, lang: Lang) -> Result<Upserted, StoreError> {
        let address = address.to_owned();
        self.write(move |conn| {
            let tx = conn.transaction()?;
            let up = upsert(&tx, kind, &address, lang)?;
            tx.commit()?;
            Ok(up)
        })
        .await
    }

    async fn subscriber(&self, kind: ChannelKind, address: &str) -> Result<Option<Subscriber>, StoreError> {
        let address = address.to_owned();
        self.read(move |conn| query_subscriber(conn, kind, &address)).await
    }

    async fn set_lang(&self, id: SubscriberId, lang: Lang) -> Result<(), StoreError> {
        self.write(move |conn| {
            let tx = conn.transaction()?;
            tx.execute("UPDATE subscribers SET lang = ?2 WHERE id = ?1", params![id, lang.code()])?;
            tx.execute(
                "UPDATE deliveries SET lang = ?2 WHERE subscriber_id = ?1 AND state = 0",
                params![id, lang.index()],
            )?;
            tx.commit()?;
            Ok(())
        })
        .await
    }

    async fn deactivate(&self, id: SubscriberId, reason: &str) -> Result<u64, StoreError> {
        let reason = reason.to_owned();
        self.write(move |conn| {
            let tx = conn.transaction()?;
            tx.execute("UPDATE subscribers SET active = 0, inactive_reason = ?2 WHERE id = ?1", params![id, reason])?;
            let failed = tx.execute(
                "UPDATE deliveries SET state = 4, last_error = ?2 WHERE subscriber_id = ?1 AND state = 0",
                params![id, format!("subscriber inactive: {reason}")],
            )?;
            tx.commit()?;
            Ok(failed as u64)
        })
        .await
    }

    async fn rewrite_address(&self, kind: ChannelKind, old: &str, new: &str) -> Result<(), StoreError> {
        let (old, new) = (old.to_owned(), new.to_owned());
        self.write(move |conn| {
            let tx = conn.transaction()?;
            tx.execute(
                "UPDATE subscribers SET address = ?3 WHERE channel = ?1 AND address = ?2",
                params![kind.as_str(), old, new],
            )?;
            tx.execute(
                "UPDATE deliveries SET address = ?3
                 WHERE subscriber_id IN (SELECT id FROM subscribers WHERE channel = ?1 AND address = ?3)
                   AND state IN (0, 1)",
                params![kind.as_str(), old, new],
            )?;
            tx.commit()?;
            Ok(())
        })
        .await
    }

    async fn add_place(&self, id: SubscriberId, region: &RegionId) -> Result<bool, StoreError> {
        let region = region.to_string();
        self.write(move |conn| {
            let n = conn
                .prepare_cached("INSERT OR IGNORE INTO places (subscriber_id, region_id) VALUES (?1, ?2)")?
                .execute(params![id, region])?;
            Ok(n == 1)
        })
        .await
    }

    async fn remove_places(&self, id: SubscriberId, region: Option<&RegionId>) -> Result<Vec<RegionId>, StoreError> {
        let region = region.map(|r| r.to_string());
        self.write(move |conn| {
            let mut stmt = conn.prepare_cached(
                "DELETE FROM places WHERE subscriber_id = ?1 AND (?2 IS NULL OR region_id = ?2) RETURNING region_id",
            )?;
            let rows = stmt.query_map(params![id, region], |r| r.get::<_, String>(0))?;
            Ok(parse_places(rows.collect::<Result<_, _>>()?))
        })
        .await
    }

    async fn places(&self, id: SubscriberId) -> Result<Vec<RegionId>, StoreError> {
        self.read(move |conn| {
            let mut stmt =
                conn.prepare_cached("SELECT region_id FROM places WHERE subscriber_id = ?1 ORDER BY region_id")?;
            let rows = stmt.query_map(params![id], |r| r.get::<_, String>(0))?;
            Ok(parse_places(rows.collect::<Result<_, _>>()?))
        })
        .await
    }

    async fn active_places(&self) -> Result<Vec<(SubscriberId, RegionId)>, StoreError> {
        self.read(move |conn| {
            let mut stmt = conn.prepare(
                "SELECT p.subscriber_id, p.region_id FROM places p JOIN subscribers s ON s.id = p.subscriber_id
                 WHERE s.active = 1",
            )?;
            let mut out = Vec::new();
            let mut rows = stmt.query([])?;
            while let Some(r) = rows.next()? {
                if let Ok(region) = RegionId::parse(r.get_ref(1)?.as_str().unwrap_or_default()) {
                    out.push((r.get(0)?, region));
                }
            }
            Ok(out)
        })
        .await
    }

    async fn place_settings(&self, id: SubscriberId) -> Result<Vec<PlaceSettings>, StoreError> {
        self.read(move |conn| {
            let mut stmt = conn
                .prepare_cached("SELECT region_id, label, kinds FROM places WHERE subscriber_id = ?1 ORDER BY rowid")?;
            let mut rows = stmt.query(params![id])?;
            let mut out = Vec::new();
            while let Some(r) = rows.next()? {
                let Ok(region) = RegionId::parse(r.get_ref(0)?.as_str().unwrap_or_default()) else { continue };
                let kinds: Option<String> = r.get(2)?;
                out.push(PlaceSettings { region, label: r.get(1)?, kinds: kinds.map(|k| sql::parse_kinds(&k)) });
            }
            Ok(out)
        })
        .await
    }

    async fn set_place_label(
        &self,
        id: SubscriberId,
        region: &RegionId,
        label: Option<&str>,
    ) -> Result<bool, StoreError> {
        let (region, label) = (region.to_string(), label.map(str::to_owned));
        self.write(move |conn| {
            let n = conn
                .prepare_cached("UPDATE places SET label = ?3 WHERE subscriber_id = ?1 AND region_id = ?2")?
                .execute(params![id, region, label])?;
            Ok(n == 1)
        })
        .await
    }

    async fn set_place_kinds(
        &self,
        id: SubscriberId,
        region: &RegionId,
        kinds: Option<&[AlertKind]>,
    ) -> Result<bool, StoreError> {
        let (region, kinds) = (region.to_string(), kinds.map(sql::kinds_text));
        self.write(move |conn| {
            let n = conn
                .prepare_cached("UPDATE places SET kinds = ?3 WHERE subscriber_id = ?1 AND region_id = ?2")?
                .execute(params![id, region, kinds])?;
            Ok(n == 1)
        })
        .await
    }

    async fn filtered_places(
        &self,
        id: Option<SubscriberId>,
    ) -> Result<Vec<(SubscriberId, RegionId, Vec<AlertKind>)>, StoreError> {
        self.read(move |conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT p.subscriber_id, p.region_id, p.kinds FROM places p JOIN subscribers s ON s.id = p.subscriber_id
                 WHERE s.active = 1 AND p.kinds IS NOT NULL AND (?1 IS NULL OR p.subscriber_id = ?1)",
            )?;
            let mut rows = stmt.query(params![id])?;
            let mut out = Vec::new();
            while let Some(r) = rows.next()? {
                let Ok(region) = RegionId::parse(r.get_ref(1)?.as_str().unwrap_or_default()) else { continue };
                out.push((r.get(0)?, region, sql::parse_kinds(&r.get::<_, String>(2)?)));
            }
            Ok(out)
        })
        .await
    }

    async fn chat_settings(&self, id: SubscriberId) -> Result<ChatSettings, StoreError> {
        self.read(move |conn| {
            let row = conn
                .prepare_cached("SELECT dialog, quiet_from, quiet_to, paused FROM chats WHERE subscriber_id = ?1")?
                .query_row(params![id], |r| {
                    let (from, to): (Option<i64>, Option<i64>) = (r.get(1)?, r.get(2)?);
                    Ok(ChatSettings {
                        dialog: r.get(0)?,
                        quiet: from.zip(to).and_then(|(f, t)| QuietHours::from_stored(f, t)),
                        paused: r.get::<_, i64>(3)? != 0,
                    })
                })
                .optional()?;
            Ok(row.unwrap_or_default())
        })
        .await
    }

    async fn set_chat_settings(&self, id: SubscriberId, settings: &ChatSettings) -> Result<(), StoreError> {
        let s = settings.clone();
        self.write(move |conn| {
            conn.prepare_cached(
                "INSERT INTO chats (subscriber_id, dialog, quiet_from, quiet_to, paused) VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (subscriber_id) DO UPDATE SET dialog = ?2, quiet_from = ?3, quiet_to = ?4, paused = ?5",
            )?
            .execute(params![
                id,
                s.dialog,
                s.quiet.map(|q| q.from),
                s.quiet.map(|q| q.to),
                i64::from(s.paused)
            ])?;
            Ok(())
        })
        .await
    }

    async fn quiet_hours(&self, ids: Vec<SubscriberId>) -> Result<Vec<Quiet>, StoreError> {
        self.read(move |conn| {
            let ids: Rc<Vec<Value>> = Rc::new(ids.into_iter().map(Value::from).collect());
            let mut stmt = conn.prepare_cached(
                "SELECT c.subscriber_id, c.quiet_from, c.quiet_to,
                        (SELECT region_id FROM places p WHERE p.subscriber_id = c.subscriber_id ORDER BY rowid LIMIT 1)
                 FROM chats c WHERE c.subscriber_id IN (SELECT value FROM rarray(?1)) AND c.quiet_from IS NOT NULL",
            )?;
            let mut rows = stmt.query(params![ids])?;
            let mut out = Vec::new();
            while let Some(r) = rows.next()? {
                let Some(hours) = QuietHours::from_stored(r.get(1)?, r.get(2)?) else { continue };
                let home: Option<String> = r.get(3)?;
                out.push(Quiet { subscriber: r.get(0)?, hours, home: home.and_then(|h| RegionId::parse(&h).ok()) });
            }
            Ok(out)
        })
        .await
    }

    async fn forget(&self, id: SubscriberId) -> Result<Vec<RegionId>, StoreError> {
        self.write(move |conn| {
            let tx = conn.transaction()?;
            let removed: Vec<String> = tx
                .prepare("DELETE FROM places WHERE subscriber_id = ?1 RETURNING region_id")?
                .query_map(params![id], |r| r.get(0))?
                .collect::<Result<_, _>>()?;
            tx.execute("DELETE FROM chats WHERE subscriber_id = ?1", params![id])?;
            tx.execute("DELETE FROM place_points WHERE subscriber_id = ?1", params![id])?;
            tx.execute("DELETE FROM help_requests WHERE subscriber_id = ?1", params![id])?;
            tx.execute("DELETE FROM sms_links WHERE chat_id = ?1", params![id])?;
            tx.execute("UPDATE subscribers SET active = 0, inactive_reason = 'forgotten' WHERE id = ?1", params![id])?;
            tx.execute(
                "UPDATE deliveries SET state = 4, last_error = 'subscriber inactive: forgotten'
                 WHERE subscriber_id = ?1 AND state = 0",
                params![id],
            )?;
            tx.commit()?;
            let mut removed = parse_places(removed);
            removed.sort();
            Ok(removed)
        })
        .await
    }

    async fn import(&self, rows: Vec<Import>) -> Result<usize, StoreError> {
        let writer = self.writer.clone();
        run_blocking(move || {
            let mut created = 0;
            for chunk in rows.chunks(CHUNK / 2) {
                let mut conn = writer.blocking_lock();
                let tx = conn.transaction()?;
                for row in chunk {
                    let up = upsert(&tx, row.kind, &row.address, row.lang)?;
                    created += usize::from(up.created);
                    let mut stmt =
                        tx.prepare_cached("INSERT OR IGNORE INTO places (subscriber_id, region_id) VALUES (?1, ?2)")?;
                    for place in &row.places {
                        stmt.execute(params![up.subscriber.id, place.as_str()])?;
                    }
                }
                tx.commit()?;
            }
            Ok(created)
        })
        .await
    }

    async fn export(&self) -> Result<Vec<Import>, StoreError> {
        self.read(move |conn| {
            let mut stmt = conn.prepare(
                "SELECT s.channel, s.address, s.lang, p.region_id FROM subscribers s
                 JOIN places p ON p.subscriber_id = s.id
                 WHERE s.active = 1 ORDER BY s.channel, s.address, p.region_id",
            )?;
            let mut out: Vec<Import> = Vec::new();
            let mut rows = stmt.query([])?;
            while let Some(r) = rows.next()? {
                let (channel, address, lang, region): (String, String, String, String) =
                    (r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?);
                // Rows sirena itself could not have written are skipped, as elsewhere.
                let (Some(kind), Ok(region)) = (ChannelKind::parse(&channel), RegionId::parse(&region)) else {
                    continue;
                };
                match out.last_mut() {
                    Some(last) if last.kind == kind && last.address == address => last.places.push(region),
                    _ => out.push(Import {
                        kind,
                        address,
                        lang: Lang::parse(&lang).unwrap_or(Lang::Uk),
                        places: vec![region],
                    }),
                }
            }
            Ok(out)
        })
        .await
    }

    async fn sync_region_channels(&self, channels: Vec<RegionChannel>) -> Result<PlaceChanges, StoreError> {
        self.write(move |conn| {
            let tx = conn.transaction()?;
            let mut changes = PlaceChanges::default();
            let kind = ChannelKind::TelegramChannel;
            let mut keep = Vec::new();
            for ch in &channels {
                let up = upsert(&tx, kind, &ch.address, ch.lang)?;
                let id = up.subscriber.id;
                keep.push(id);
                tx.execute("UPDATE subscribers SET lang = ?2 WHERE id = ?1", params![id, ch.lang.code()])?;
                let old: Vec<String> = tx
                    .prepare("SELECT region_id FROM places WHERE subscriber_id = ?1")?
                    .query_map(params![id], |r| r.get(0))?
                    .collect::<Result<_, _>>()?;
                for place in parse_places(old) {
                    let configured = channels.iter().any(|c| c.address == ch.address && c.region == place);
                    if !configured {
                        tx.execute("DELETE FROM places WHERE subscriber_id = ?1 AND region_id = ?2", params![id, place.as_str()])?;
                        changes.removed.push((id, place));
                    }
                }
                let added = tx.execute(
                    "INSERT OR IGNORE INTO places (subscriber_id, region_id) VALUES (?1, ?2)",
                    params![id, ch.region.as_str()],
                )?;
                if added == 1 {
                    changes.added.push((id, ch.region.clone()));
                }
            }
            // Channels no longer in any region file stop receiving.
            let gone: Vec<(SubscriberId, String)> = tx
                .prepare(
                    "SELECT s.id, p.region_id FROM subscribers s JOIN places p ON p.subscriber_id = s.id
                     WHERE s.channel = ?1 AND s.active = 1 AND s.id NOT IN (SELECT value FROM rarray(?2))",
                )?
                .query_map(params![kind.as_str(), ids(keep.iter().copied())], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<Result<_, _>>()?;
            for (id, place) in gone {
                tx.execute(
                    "UPDATE subscribers SET active = 0, inactive_reason = 'removed from the region files' WHERE id = ?1",
                    params![id],
                )?;
                tx.execute("DELETE FROM places WHERE subscriber_id = ?1", params![id])?;
                if let Ok(place) = RegionId::parse(&place) {
                    changes.removed.push((id, place));
                }
            }
            tx.commit()?;
            Ok(changes)
        })
        .await
    }

    async fn event_complete(&self, id: &EventId) -> Result<bool, StoreError> {
        let id = id.0.clone();
        self.read(move |conn| {
            let complete: Option<bool> = conn
                .prepare_cached("SELECT complete FROM events WHERE id = ?1")?
                .query_row(params![id], |r| r.get(0))
                .optional()?;
            Ok(complete.unwrap_or(false))
        })
        .await
    }

    async fn enqueue(
        &self,
        event: &Event,
        audience: Audience,
        deadline_ms: Option<i64>,
    ) -> Result<Enqueued, StoreError> {
        let event = event.clone();
        let writer = self.writer.clone();
        run_blocking(move || {
            let columns = format!(
                "INSERT OR IGNORE INTO deliveries (event_ref, subscriber_id, channel, address, lang, priority, deadline)
                 SELECT ?1, s.id, {channel}, s.address, {lang}, ?2, ?3",
                channel = sql::channel_case("s.channel"),
                lang = sql::lang_case("s.lang"),
            );
            let known = sql::known_channels();
            let priority = event.priority.as_i64();
            let (event_ref, event_new) = {
                let mut conn = writer.blocking_lock();
                let tx = conn.transaction()?;
                let (r, new, _complete) = insert_event(&tx, &event)?;
                tx.commit()?;
                (r, new)
            };
            let subscribers = match audience {
                Audience::Subscribers(ids) => ids,
                Audience::ToldAbout(subject) => {
                    let conn = writer.blocking_lock();
                    let mut stmt = conn.prepare_cached(
                        "SELECT DISTINCT d.subscriber_id FROM events e JOIN deliveries d ON d.event_ref = e.ref
                         WHERE e.subject = ?1 AND e.ref <> ?2 AND d.state IN (0, 1, 2, 3)",
                    )?;
                    let rows = stmt.query_map(params![subject, event_ref], |r| r.get::<_, SubscriberId>(0))?;
                    rows.collect::<Result<Vec<_>, _>>()?
                }
            };
            let sql = format!(
                // CROSS JOIN keeps the id list as the outer loop: each id is one primary-key
                // lookup. Left to choose, the planner may scan the subscribers for every id.
                "{columns} FROM rarray(?4) r CROSS JOIN subscribers s ON s.id = r.value
                 WHERE s.active = 1 AND s.channel IN ({known})"
            );
            let mut added = 0;
            for chunk in subscribers.chunks(CHUNK) {
                let mut conn = writer.blocking_lock();
                let tx = conn.transaction()?;
                added += tx.prepare_cached(&sql)?.execute(params![
                    event_ref,
                    priority,
                    deadline_ms,
                    ids(chunk.iter().copied())
                ])?;
                tx.commit()?;
            }
            writer.blocking_lock().execute("UPDATE events SET complete = 1 WHERE ref = ?1", params![event_ref])?;
            Ok(Enqueued { event_new, deliveries: added })
        })
        .await
    }

    async fn latest_event(&self, subject: &str) -> Result<Option<Event>, StoreError> {
        let subject = subject.to_owned();
        self.read(move |conn| {
            let body: Option<String> = conn
                .prepare_cached("SELECT body FROM events WHERE subject = ?1 ORDER BY ref DESC LIMIT 1")?
                .query_row(params![subject], |r| r.get(0))
                .optional()?;
            body.as_deref().map(decode_event).transpose()
        })
        .await
    }

    async fn events(&self, refs: Vec<EventRef>) -> Result<Vec<(EventRef, Event)>, StoreError> {
        self.read(move |conn| {
            let mut stmt =
                conn.prepare_cached("SELECT ref, body FROM events WHERE ref IN (SELECT value FROM rarray(?1))")?;
            let rows =
                stmt.query_map(params![ids(refs)], |r| Ok((r.get::<_, EventRef>(0)?, r.get::<_, String>(1)?)))?;
            let mut out = Vec::new();
            for row in rows {
                let (r, body) = row?;
                out.push((r, decode_event(&body)?));
            }
            Ok(out)
        })
        .await
    }

    async fn claim(&self, claim: Claim) -> Result<Vec<Claimed>, StoreError> {
        self.write(move |conn| {
            let mut stmt = conn.prepare_cached(CLAIM)?;
            let rows = stmt.query_map(
                params![
                    claim.node.0,
                    claim.lease_until_ms,
                    claim.now_ms,
                    claim.kind.code(),
                    claim.priorities.start().as_i64(),
                    claim.priorities.end().as_i64(),
                    ids(claim.busy.iter().copied()),
                    claim.chats as i64,
                ],
                |r| {
                    Ok((
                        DeliveryKey { event: r.get(0)?, subscriber: r.get(1)? },
                        r.get::<_, i64>(2)?,
                        r.get::<_, String>(3)?,
                        r.get::<_, i64>(4)?,
                        r.get::<_, i64>(5)?,
                        r.get::<_, i64>(6)?,
                        r.get::<_, Option<i64>>(7)?,
                    ))
                },
            )?;
            let mut out = Vec::new();
            for row in rows {
                let (key, channel, address, lang, priority, attempts, deadline_ms) = row?;
                out.push(Claimed {
                    key,
                    kind: ChannelKind::from_code(channel).unwrap_or(claim.kind),
                    address,
                    lang: Lang::from_index(lang),
                    priority: Priority::from_i64(priority).unwrap_or(Priority::Info),
                    attempts: u32::try_from(attempts).unwrap_or(u32::MAX),
                    deadline_ms,
                });
            }
            Ok(out)
        })
        .await
    }

    async fn finish(&self, node: NodeId, done: Vec<Finished>) -> Result<(), StoreError> {
        self.write(move |conn| {
            let tx = conn.transaction()?;
            {
                let mut final_state = tx.prepare_cached(
                    "UPDATE deliveries SET state = ?4, last_error = ?5, claimed_by = NULL, lease_until = NULL
                     WHERE event_ref = ?1 AND subscriber_id = ?2 AND state = 1 AND claimed_by = ?3",
                )?;
                let mut sent = tx.prepare_cached(
                    "UPDATE deliveries SET state = 2, sent_at = ?4, platform_id = ?5, last_error = NULL,
                            claimed_by = NULL, lease_until = NULL
                     WHERE event_ref = ?1 AND subscriber_id = ?2 AND state = 1 AND claimed_by = ?3",
                )?;
                let mut retry = tx.prepare_cached(
                    "UPDATE deliveries SET state = 0, not_before = ?4, last_error = ?5, claimed_by = NULL, lease_until = NULL
                     WHERE event_ref = ?1 AND subscriber_id = ?2 AND state = 1 AND claimed_by = ?3",
                )?;
                let now = now_ms();
                for f in done {
                    let (e, s) = (f.key.event, f.key.subscriber);
                    match f.finish {
                        Finish::Sent { platform_id } => sent.execute(params![e, s, node.0, now, platform_id])?,
                        Finish::Retry { not_before_ms, error } => retry.execute(params![e, s, node.0, not_before_ms, error])?,
                        Finish::Failed { error } => {
                            final_state.execute(params![e, s, node.0, DeliveryState::Failed.code(), error])?
                        }
                        Finish::Superseded => final_state.execute(params![
                            e,
                            s,
                            node.0,
                            DeliveryState::Superseded.code(),
                            Option::<String>::None
                        ])?,
                        Finish::Expired { reason } => {
                            final_state.execute(params![e, s, node.0, DeliveryState::Expired.code(), reason])?
                        }
                    };
                }
            }
            tx.commit()?;
            Ok(())
        })
        .await
    }

    async fn report(&self, kind: ChannelKind, platform_id: &str, report: Report) -> Result<u64, StoreError> {
        let platform_id = platform_id.to_owned();
        self.write(move |conn| {
            let (channel, now) = (kind.code(), now_ms());
            let sent = DeliveryState::Sent.code();
            let n = match report {
                Report::Delivered => conn.execute(
                    "UPDATE deliveries SET state = ?4, reported_at = ?5
                     WHERE channel = ?1 AND platform_id = ?2 AND state = ?3",
                    params![channel, platform_id, sent, DeliveryState::Delivered.code(), now],
                )?,
                Report::Undelivered { error } => conn.execute(
                    "UPDATE deliveries SET state = ?4, reported_at = ?5, last_error = ?6
                     WHERE channel = ?1 AND platform_id = ?2 AND state = ?3",
                    params![channel, platform_id, sent, DeliveryState::Undelivered.code(), now, error],
                )?,
                Report::Retry { not_before_ms, error } => conn.execute(
                    "UPDATE deliveries SET state = ?4, not_before = ?5, last_error = ?6, reported_at = NULL
                     WHERE channel = ?1 AND platform_id = ?2 AND state = ?3",
                    params![channel, platform_id, sent, DeliveryState::Pending.code(), not_before_ms, error],
                )?,
            };
            Ok(n as u64)
        })
        .await
    }

    async fn renew_leases(&self, node: NodeId, until_ms: i64) -> Result<u64, StoreError> {
        self.write(move |conn| {
            Ok(conn.execute(
                "UPDATE deliveries SET lease_until = ?2 WHERE state = 1 AND claimed_by = ?1",
                params![node.0, until_ms],
            )? as u64)
        })
        .await
    }

    async fn release(&self, node: NodeId) -> Result<u64, StoreError> {
        self.write(move |conn| {
            Ok(conn.execute(
                "UPDATE deliveries SET state = 0, claimed_by = NULL, lease_until = NULL WHERE state = 1 AND claimed_by = ?1",
                params![node.0],
            )? as u64)
        })
        .await
    }

    async fn requeue_expired_leases(&self, now_ms: i64) -> Result<u64, StoreError> {
        self.write(move |conn| {
            Ok(conn.execute(
                "UPDATE deliveries SET state = 0, claimed_by = NULL, lease_until = NULL WHERE state = 1 AND lease_until < ?1",
                params![now_ms],
            )? as u64)
        })
        .await
    }

    async fn next_due(&self, kind: ChannelKind) -> Result<Option<i64>, StoreError> {
        self.read(move |conn| {
            // One index seek per class: the minimum of each (channel, priority) range.
            let mut stmt = conn.prepare_cached(NEXT_DUE)?;
            let mut earliest: Option<i64> = None;
            for p in Priority::ALL {
                let t: Option<i64> = stmt.query_row(params![kind.code(), p.as_i64()], |r| r.get(0))?;
                earliest = match (earliest, t) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                };
            }
            Ok(earliest)
        })
        .await
    }

    async fn drained(&self) -> Result<bool, StoreError> {
        self.read(move |conn| {
            let busy: bool = conn
                .prepare_cached(
                    "SELECT EXISTS (SELECT 1 FROM deliveries WHERE state = 0)
                         OR EXISTS (SELECT 1 FROM deliveries WHERE state = 1)",
                )?
                .query_row([], |r| r.get(0))?;
            Ok(!busy)
        })
        .await
    }

    async fn counts_by_channel(&self) -> Result<BTreeMap<ChannelKind, Counts>, StoreError> {
        self.read(move |conn| {
            let mut stmt =
                conn.prepare_cached("SELECT channel, state, COUNT(*) FROM deliveries GROUP BY channel, state")?;
            let rows = stmt.query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?, r.get::<_, i64>(2)?)))?;
            let mut by = BTreeMap::new();
            for row in rows {
                let (channel, state, n) = row?;
                if let (Some(kind), Some(state)) = (ChannelKind::from_code(channel), DeliveryState::from_code(state)) {
                    *by.entry(kind).or_insert_with(Counts::default).slot(state) = n.max(0) as u64;
                }
            }
            Ok(by)
        })
        .await
    }

    async fn event(&self, id: &EventId) -> Result<Option<Event>, StoreError> {
        let id = id.0.clone();
        self.read(move |conn| {
            let body: Option<String> = conn
                .prepare_cached("SELECT body FROM events WHERE id = ?1")?
                .query_row(params![id], |r| r.get(0))
                .optional()?;
            body.as_deref().map(decode_event).transpose()
        })
        .await
    }

    async fn audit_append(&self, entry: AuditEntry) -> Result<(), StoreError> {
        self.write(move |conn| {
            conn.prepare_cached("INSERT INTO audit (at_ms, who, action, what) VALUES (?1, ?2, ?3, ?4)")?
                .execute(params![entry.at_ms, entry.who, entry.action, entry.what])?;
            Ok(())
        })
        .await
    }

    async fn audit(&self, since_ms: Option<i64>) -> Result<Vec<AuditEntry>, StoreError> {
        self.read(move |conn| {
            let mut stmt =
                conn.prepare_cached("SELECT at_ms, who, action, what FROM audit WHERE at_ms >= ?1 ORDER BY at_ms, id")?;
            let rows = stmt.query_map(params![since_ms.unwrap_or(i64::MIN)], |r| {
                Ok(AuditEntry { at_ms: r.get(0)?, who: r.get(1)?, action: r.get(2)?, what: r.get(3)? })
            })?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
        .await
    }

    async fn set_drills(&self, id: SubscriberId, on: bool) -> Result<(), StoreError> {
        self.write(move |conn| {
            conn.execute("UPDATE subscribers SET drills = ?2 WHERE id = ?1", params![id, on])?;
            Ok(())
        })
        .await
    }

    async fn drill_subscribers(&self) -> Result<Vec<SubscriberId>, StoreError> {
        self.read(move |conn| {
            let mut stmt =
                conn.prepare_cached("SELECT id FROM subscribers WHERE drills = 1 AND active = 1 ORDER BY id")?;
            let rows = stmt.query_map([], |r| r.get(0))?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
        .await
    }

    async fn received(&self, event: &EventId) -> Result<Vec<SubscriberId>, StoreError> {
        let id = event.0.clone();
        self.read(move |conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT d.subscriber_id FROM events e JOIN deliveries d ON d.event_ref = e.ref
                 JOIN subscribers s ON s.id = d.subscriber_id
                 WHERE e.id = ?1 AND d.state IN (0, 1, 2, 3) AND s.active = 1 ORDER BY d.subscriber_id",
            )?;
            let rows = stmt.query_map(params![id], |r| r.get(0))?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
        .await
    }

    async fn progress(&self, events: usize) -> Result<Vec<Progress>, StoreError> {
        let limit = i64::try_from(events).unwrap_or(i64::MAX);
        self.read(move |conn| {
            let recent: Vec<(i64, String, i64)> = {
                let mut stmt =
                    conn.prepare_cached("SELECT ref, body, created_ms FROM events ORDER BY ref DESC LIMIT ?1")?;
                let rows = stmt.query_map(params![limit], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
                rows.collect::<Result<_, _>>()?
            };
            let mut out = Vec::with_capacity(recent.len());
            let mut stmt =
                conn.prepare_cached("SELECT state, COUNT(*) FROM deliveries WHERE event_ref = ?1 GROUP BY state")?;
            for (event_ref, body, created_ms) in recent {
                let mut counts = Counts::default();
                let rows = stmt.query_map(params![event_ref], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?)))?;
                for row in rows {
                    let (state, n) = row?;
                    if let Some(state) = DeliveryState::from_code(state) {
                        *counts.slot(state) = n.max(0) as u64;
                    }
                }
                out.push(Progress { event: decode_event(&body)?, created_ms, counts });
            }
            Ok(out)
        })
        .await
    }

    async fn receipts(&self, event: &EventId) -> Result<Option<(i64, Vec<Receipt>)>, StoreError> {
        let id = event.0.clone();
        self.read(move |conn| {
            let found: Option<(i64, i64)> = conn
                .prepare_cached("SELECT ref, created_ms FROM events WHERE id = ?1")?
                .query_row(params![id], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()?;
            let Some((event_ref, created_ms)) = found else { return Ok(None) };
            let mut stmt = conn.prepare_cached(
                "SELECT channel, state, attempts, sent_at FROM deliveries WHERE event_ref = ?1 ORDER BY subscriber_id",
            )?;
            let rows = stmt.query_map(params![event_ref], |r| {
                Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?, r.get::<_, i64>(2)?, r.get::<_, Option<i64>>(3)?))
            })?;
            let mut out = Vec::new();
            for row in rows {
                let (channel, state, attempts, sent_at_ms) = row?;
                if let (Some(kind), Some(state)) = (ChannelKind::from_code(channel), DeliveryState::from_code(state)) {
                    out.push(Receipt { kind, state, attempts: u32::try_from(attempts).unwrap_or(0), sent_at_ms });
                }
            }
            Ok(Some((created_ms, out)))
        })
        .await
    }

    async fn purge_finished(&self, before_ms: i64) -> Result<u64, StoreError> {
        self.write(move |conn| Ok(conn.execute(sql::PURGE_FINISHED, params![before_ms])? as u64)).await
    }

    async fn kv_get(&self, key: &str) -> Result<Option<String>, StoreError> {
        let key = key.to_owned();
        self.read(move |conn| {
            Ok(conn.query_row("SELECT value FROM kv WHERE key = ?1", params![key], |r| r.get(0)).optional()?)
        })
        .await
    }

    async fn kv_put(&self, key: &str, value: &str) -> Result<(), StoreError> {
        let (key, value) = (key.to_owned(), value.to_owned());
        self.write(move |conn| {
            conn.execute(
                "INSERT INTO kv (key, value) VALUES (?1, ?2) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                params![key, value],
            )?;
            Ok(())
        })
        .await
    }

    async fn set_place_point(&self, id: SubscriberId, region: &RegionId, point: Point) -> Result<(), StoreError> {
        let region = region.to_string();
        self.write(move |conn| {
            conn.prepare_cached(
                "INSERT INTO place_points (subscriber_id, region_id, lat, lon) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (subscriber_id, region_id) DO UPDATE SET lat = excluded.lat, lon = excluded.lon",
            )?
            .execute(params![id, region, point.lat, point.lon])?;
            Ok(())
        })
        .await
    }

    async fn place_points(&self, id: SubscriberId) -> Result<Vec<(RegionId, Point)>, StoreError> {
        self.read(move |conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT pp.region_id, pp.lat, pp.lon FROM place_points pp
                 JOIN places p ON p.subscriber_id = pp.subscriber_id AND p.region_id = pp.region_id
                 WHERE pp.subscriber_id = ?1 ORDER BY pp.region_id",
            )?;
            let rows = stmt.query_map(params![id], |r| Ok((r.get::<_, String>(0)?, r.get(1)?, r.get(2)?)))?;
            let mut out = Vec::new();
            for row in rows {
                let (region, lat, lon) = row?;
                if let Ok(region) = RegionId::parse(&region) {
                    out.push((region, Point { lat, lon }));
                }
            }
            Ok(out)
        })
        .await
    }

    async fn link_sms(&self, chat: SubscriberId, sms: SubscriberId) -> Result<(), StoreError> {
        self.write(move |conn| {
            conn.prepare_cached(
                "INSERT INTO sms_links (chat_id, sms_id) VALUES (?1, ?2)
                 ON CONFLICT (chat_id) DO UPDATE SET sms_id = excluded.sms_id",
            )?
            .execute(params![chat, sms])?;
            Ok(())
        })
        .await
    }

    async fn linked_sms(&self, chat: SubscriberId) -> Result<Option<SubscriberId>, StoreError> {
        self.read(move |conn| {
            Ok(conn
                .prepare_cached("SELECT sms_id FROM sms_links WHERE chat_id = ?1")?
                .query_row(params![chat], |r| r.get(0))
                .optional()?)
        })
        .await
    }

    async fn unlink_sms(&self, chat: SubscriberId) -> Result<Option<SubscriberId>, StoreError> {
        self.write(move |conn| {
            Ok(conn
                .prepare_cached("DELETE FROM sms_links WHERE chat_id = ?1 RETURNING sms_id")?
                .query_row(params![chat], |r| r.get(0))
                .optional()?)
        })
        .await
    }

    async fn save_help_request(&self, request: &HelpRequest) -> Result<bool, StoreError> {
        let r = request.clone();
        self.write(move |conn| {
            let tx = conn.transaction()?;
            let existed: bool = tx
                .prepare_cached("SELECT 1 FROM help_requests WHERE subscriber_id = ?1 AND order_id = ?2")?
                .exists(params![r.subscriber, r.order])?;
            tx.prepare_cached(
                "INSERT INTO help_requests
                   (subscriber_id, order_id, region_id, people, mobility, phone, step, created_at, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
                 ON CONFLICT (subscriber_id, order_id) DO UPDATE SET region_id = excluded.region_id,
                   people = excluded.people, mobility = excluded.mobility, phone = excluded.phone,
                   step = excluded.step, updated_at = excluded.updated_at",
            )?
            .execute(params![
                r.subscriber,
                r.order,
                r.region.as_str(),
                r.people,
                r.mobility,
                r.phone,
                r.step.as_str(),
                r.created_ms,
                r.updated_ms
            ])?;
            tx.commit()?;
            Ok(!existed)
        })
        .await
    }

    async fn help_request(&self, id: SubscriberId, order: Option<&str>) -> Result<Option<HelpRequest>, StoreError> {
        let order = order.map(str::to_owned);
        self.read(move |conn| {
            let sql = format!(
                "{HELP_SELECT} WHERE h.subscriber_id = ?1 AND (?2 IS NULL OR h.order_id = ?2)
                 ORDER BY h.updated_at DESC, h.id DESC LIMIT 1"
            );
            let mut stmt = conn.prepare_cached(&sql)?;
            let rows = stmt.query_map(params![id, order], help_row)?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?.into_iter().flatten().next())
        })
        .await
    }

    async fn help_requests(&self, order: Option<&str>) -> Result<Vec<HelpRequest>, StoreError> {
        let order = order.map(str::to_owned);
        self.read(move |conn| {
            let sql = format!("{HELP_SELECT} WHERE (?1 IS NULL OR h.order_id = ?1) ORDER BY h.created_at, h.id");
            let mut stmt = conn.prepare_cached(&sql)?;
            let rows = stmt.query_map(params![order], help_row)?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?.into_iter().flatten().collect())
        })
        .await
    }

    async fn purge_help_requests(&self, before_ms: i64) -> Result<u64, StoreError> {
        self.write(move |conn| Ok(conn.execute(sql::PURGE_HELP_REQUESTS, params![before_ms])? as u64)).await
    }
}

const HELP_SELECT: &str = "SELECT h.subscriber_id, s.address, h.order_id, h.region_id, h.people, h.mobility,
        h.phone, h.step, h.created_at, h.updated_at
    FROM help_requests h JOIN subscribers s ON s.id = h.subscriber_id";

/// One help request row; `None` for a row sirena cannot have written (a bad region
/// code or step), skipped rather than failing the list.
fn help_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Option<HelpRequest>> {
    let (Ok(region), Some(step)) = (RegionId::parse(&r.get::<_, String>(3)?), HelpStep::parse(&r.get::<_, String>(7)?))
    else {
        return Ok(None);
    };
    Ok(Some(HelpRequest {
        subscriber: r.get(0)?,
        address: r.get(1)?,
        order: r.get(2)?,
        region,
        people: r.get(4)?,
        mobility: r.get(5)?,
        phone: r.get(6)?,
        step,
        created_ms: r.get(8)?,
        updated_ms: r.get(9)?,
    }))
}

#[cfg(test)]
mod plans {
    use super::*;

    /// The query plan of `sql` with `args` bound, one line per step.
    fn plan(conn: &Connection, sql: &str, args: impl rusqlite::Params) -> String {
        let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).expect("plan");
        let rows = stmt.query_map(args, |r| r.get::<_, String>(3)).expect("rows");
        rows.map(|r| r.expect("row")).collect::<Vec<_>>().join("\n")
    }

    /// Regression: with a million rows queued, the next-due query scanned the table
    /// after every send. Both hot statements must be served by indexes, at any size.
    #[test]
    fn the_hot_statements_use_their_indexes() {
        let store = SqliteStore::open_in_memory().expect("store");
        let conn = store.writer.blocking_lock();
        let next = plan(&conn, NEXT_DUE, params![0, 3]);
        assert!(next.contains("COVERING INDEX deliveries_due"), "{next}");
        let claim = plan(&conn, CLAIM, params![1, 2, 3, 0, 0, 6, ids([]), 30]);
        assert!(
            claim.contains("USING INDEX deliveries_due") || claim.contains("COVERING INDEX deliveries_due"),
            "{claim}"
        );
        assert!(claim.contains("deliveries_by_subscriber"), "{claim}");
        assert!(!claim.contains("SCAN deliveries") && !claim.contains("TEMP B-TREE FOR ORDER BY"), "{claim}");
    }
}
