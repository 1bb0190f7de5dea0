//! The SQLite schema's history: numbered migrations, each a function run in one
//! transaction; `PRAGMA user_version` records how many have run.

use rusqlite::{Transaction, params};

use crate::alerts::Event;
use crate::store::sql::{channel_case, known_channels, lang_case};
use crate::store::{StoreError, now_ms};

/// Numbered migrations; `PRAGMA user_version` records how many have run.
pub(super) const MIGRATIONS: &[Migration] =
    &[migrate_1_spine, migrate_2_outbox, migrate_3_reports, migrate_4_bot, migrate_5_operators, migrate_6_residents];

type Migration = fn(&Transaction<'_>) -> Result<(), StoreError>;

fn migrate_1_spine(tx: &Transaction<'_>) -> Result<(), StoreError> {
    tx.execute_batch(
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
    )?;
    Ok(())
}

/// The channel-neutral outbox: deliveries without text, keyed by (event, subscriber),
/// with leases; events with a small integer key, their subject and a completion mark.
/// Queued deliveries of the spine keep their place in the queue (their text is
/// rendered again from the event when they are claimed).
fn migrate_2_outbox(tx: &Transaction<'_>) -> Result<(), StoreError> {
    tx.execute_batch(
        "DROP INDEX deliveries_due;
        ALTER TABLE deliveries RENAME TO deliveries_v1;
        ALTER TABLE events RENAME TO events_v1;
        CREATE TABLE events (
            ref INTEGER PRIMARY KEY,
            id TEXT NOT NULL UNIQUE,
            subject TEXT NOT NULL,
            kind TEXT NOT NULL,
            transition TEXT NOT NULL,
            revision INTEGER NOT NULL,
            priority INTEGER NOT NULL,
            at TEXT NOT NULL,
            body TEXT NOT NULL,
            created_ms INTEGER NOT NULL,
            complete INTEGER NOT NULL DEFAULT 0
        );
        CREATE INDEX events_by_subject ON events (subject, ref);
        CREATE TABLE deliveries (
            event_ref INTEGER NOT NULL REFERENCES events(ref),
            subscriber_id INTEGER NOT NULL REFERENCES subscribers(id) ON DELETE CASCADE,
            channel INTEGER NOT NULL,
            address TEXT NOT NULL,
            lang INTEGER NOT NULL,
            priority INTEGER NOT NULL,
            state INTEGER NOT NULL DEFAULT 0,
            attempts INTEGER NOT NULL DEFAULT 0,
            not_before INTEGER NOT NULL DEFAULT 0,
            deadline INTEGER,
            claimed_by INTEGER,
            lease_until INTEGER,
            sent_at INTEGER,
            platform_id TEXT,
            last_error TEXT,
            PRIMARY KEY (event_ref, subscriber_id)
        ) WITHOUT ROWID;
        CREATE INDEX deliveries_by_subscriber ON deliveries (subscriber_id);
        CREATE INDEX deliveries_due ON deliveries (channel, priority, not_before) WHERE state = 0;
        CREATE INDEX deliveries_leased ON deliveries (lease_until) WHERE state = 1;",
    )?;
    // Subjects and priority classes are computed from each stored event.
    type V1Event = (String, String, String, i64, String, String);
    let old: Vec<V1Event> = {
        let mut stmt = tx.prepare("SELECT id, kind, transition, revision, at, body FROM events_v1")?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?)))?;
        rows.collect::<Result<_, _>>()?
    };
    let now = now_ms();
    for (id, kind, transition, revision, at, body) in old {
        let event: Event = serde_json::from_str(&body)?;
        tx.execute(
            "INSERT INTO events (id, subject, kind, transition, revision, priority, at, body, created_ms, complete)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, 1)",
            params![id, event.subject(), kind, transition, revision, event.priority.as_i64(), at, body, now],
        )?;
    }
    tx.execute_batch(&format!(
        "INSERT OR IGNORE INTO deliveries
            (event_ref, subscriber_id, channel, address, lang, priority, state, attempts, not_before, deadline,
             sent_at, platform_id, last_error)
         SELECT e.ref, d.subscriber_id, {channel}, d.address, {lang}, e.priority,
                CASE d.state WHEN 'sent' THEN 2 WHEN 'failed' THEN 4 WHEN 'expired' THEN 6 ELSE 0 END,
                d.attempts, d.not_before, d.deadline, d.sent_at, d.platform_id, d.last_error
         FROM deliveries_v1 d JOIN events e ON e.id = d.event_id JOIN subscribers s ON s.id = d.subscriber_id
         WHERE d.channel IN ({known});
         DROP TABLE deliveries_v1;
         DROP TABLE events_v1;",
        channel = channel_case("d.channel"),
        lang = lang_case("s.lang"),
        known = known_channels(),
    ))?;
    Ok(())
}

/// Delivery reports: when a platform said a sent message arrived (or will not), and
/// an index to find sent rows by the platform's message id.
fn migrate_3_reports(tx: &Transaction<'_>) -> Result<(), StoreError> {
    tx.execute_batch(
        "ALTER TABLE deliveries ADD COLUMN reported_at INTEGER;
         CREATE INDEX deliveries_by_platform_id ON deliveries (channel, platform_id) WHERE state = 2;",
    )?;
    Ok(())
}

/// The bot's memory: a label and a kind filter per place, and per chat the dialog in
/// progress, quiet hours and whether the resident paused.
fn migrate_4_bot(tx: &Transaction<'_>) -> Result<(), StoreError> {
    tx.execute_batch(
        "ALTER TABLE places ADD COLUMN label TEXT;
         ALTER TABLE places ADD COLUMN kinds TEXT;
         CREATE TABLE chats (
             subscriber_id INTEGER PRIMARY KEY REFERENCES subscribers(id) ON DELETE CASCADE,
             dialog TEXT,
             quiet_from INTEGER,
             quiet_to INTEGER,
             paused INTEGER NOT NULL DEFAULT 0
         );",
    )?;
    Ok(())
}

/// Operators: the audit log, and each subscriber's opt-in to drills.
fn migrate_5_operators(tx: &Transaction<'_>) -> Result<(), StoreError> {
    tx.execute_batch(
        "CREATE TABLE audit (
            id INTEGER PRIMARY KEY,
            at_ms INTEGER NOT NULL,
            who TEXT NOT NULL,
            action TEXT NOT NULL,
            what TEXT NOT NULL
         );
         CREATE INDEX audit_by_time ON audit (at_ms);
         ALTER TABLE subscribers ADD COLUMN drills INTEGER NOT NULL DEFAULT 0;",
    )?;
    Ok(())
}

/// What residents give besides a place name: the point they shared for a place, their
/// SMS fallback (a Telegram chat's linked SMS subscriber), and help requests for an
/// evacuation order, one per (subscriber, order).
fn migrate_6_residents(tx: &Transaction<'_>) -> Result<(), StoreError> {
    tx.execute_batch(
        "CREATE TABLE place_points (
            subscriber_id INTEGER NOT NULL REFERENCES subscribers(id) ON DELETE CASCADE,
            region_id TEXT NOT NULL,
            lat REAL NOT NULL,
            lon REAL NOT NULL,
            PRIMARY KEY (subscriber_id, region_id)
        ) WITHOUT ROWID;
        CREATE TABLE sms_links (
            chat_id INTEGER PRIMARY KEY REFERENCES subscribers(id) ON DELETE CASCADE,
            sms_id INTEGER NOT NULL REFERENCES subscribers(id) ON DELETE CASCADE
        );
        CREATE TABLE help_requests (
            id INTEGER PRIMARY KEY,
            subscriber_id INTEGER NOT NULL REFERENCES subscribers(id) ON DELETE CASCADE,
            order_id TEXT NOT NULL,
            region_id TEXT NOT NULL,
            people INTEGER,
            mobility TEXT,
            phone TEXT,
            step TEXT NOT NULL,
            created_at INTEGER NOT NULL,
            updated_at INTEGER NOT NULL,
            UNIQUE (subscriber_id, order_id)
        );
        CREATE INDEX help_requests_by_order ON help_requests (order_id, created_at);",
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alerts::Priority;
    use crate::channels::ChannelKind;
    use crate::messages::Lang;
    use crate::store::sqlite::SqliteStore;
    use crate::store::{Claim, NodeId, Store};
    use rusqlite::Connection;

    /// A database written by the spine (schema 1), with a queued delivery holding its
    /// text, opens as schema 2 with the delivery still queued.
    #[test]
    fn the_spine_schema_migrates_with_its_queue() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("old.db");
        {
            let mut conn = Connection::open(&path).expect("open");
            let tx = conn.transaction().expect("tx");
            migrate_1_spine(&tx).expect("schema 1");
            tx.pragma_update(None, "user_version", 1).expect("version");
            tx.commit().expect("commit");
            let body = r#"{"id":"air_raid:UA63000000000041885:20231106T080000Z:started","kind":"air_raid","transition":"started","revision":1,"targets":["UA63000000000041885"],"at":"2023-11-06T08:00:00Z","priority":"air_raid_start","detail":{"type":"alert","started_at":"2023-11-06T08:00:00Z","raw_kind":null}}"#;
            conn.execute_batch(&format!(
                "INSERT INTO subscribers (id, channel, address, lang, created_at) VALUES (1, 'telegram', '42', 'en', 0);
                 INSERT INTO events VALUES ('air_raid:UA63000000000041885:20231106T080000Z:started', 'air_raid', 'started', 1, '2023-11-06T08:00:00Z', '{body}');
                 INSERT INTO deliveries (event_id, subscriber_id, channel, address, text, silent, priority, not_before, deadline, created_at)
                 VALUES ('air_raid:UA63000000000041885:20231106T080000Z:started', 1, 'telegram', '42', '<b>old</b>', 0, 2, 0, 9999999999999, 0);"
            ))
            .expect("old rows");
        }
        let store = SqliteStore::open(&path).expect("migrates");
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        let counts = rt.block_on(store.counts()).expect("counts");
        assert_eq!(counts.pending, 1, "{counts:?}");
        let claimed = rt
            .block_on(store.claim(Claim {
                kind: ChannelKind::TelegramChat,
                priorities: Priority::MandatoryEvacuation..=Priority::Info,
                chats: 10,
                busy: vec![],
                node: NodeId(7),
                now_ms: now_ms(),
                lease_until_ms: now_ms() + 1000,
            }))
            .expect("claim");
        assert_eq!(claimed.len(), 1);
        assert_eq!(claimed[0].lang, Lang::En);
        assert_eq!(claimed[0].priority, Priority::OtherStart, "the old air-raid class is an ordinary start");
        let events = rt.block_on(store.events(vec![claimed[0].key.event])).expect("events");
        assert_eq!(events[0].1.subject(), "air_raid:UA63000000000041885:20231106T080000Z");
    }
}
