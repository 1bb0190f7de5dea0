//! The PostgreSQL schema's history: numbered migrations, each one SQL batch run in
//! one transaction; the table `sirena_schema` records how many have run. Nodes that
//! start together take turns: the runner holds a transaction-scoped advisory lock.
//!
//! Migration 1 is the SQLite schema's version 2 (the channel-neutral outbox) in
//! PostgreSQL's types: the spine's text-holding outbox never ran on PostgreSQL.
//! Text columns that are keys or sort orders use the `C` collation, so their order is
//! byte order, as on SQLite, whatever the database's locale.

use super::PgClient;
use crate::store::StoreError;

/// Advisory lock key of the migration runner ("sirena" in ASCII, then 1).
const MIGRATION_LOCK: i64 = 0x7369_7265_6e61_0001;

/// Numbered migrations; `sirena_schema.version` records how many have run.
pub(super) const MIGRATIONS: &[&str] =
    &[MIGRATE_1_OUTBOX, MIGRATE_2_REPORTS, MIGRATE_3_BOT, MIGRATE_4_OPERATORS, MIGRATE_5_RESIDENTS];

/// Integer columns come first, widest to narrowest, so a delivery row has no padding:
/// seven 8-byte columns, one 4-byte, four 2-byte, then the address.
const MIGRATE_1_OUTBOX: &str = r#"
CREATE TABLE subscribers (
    id BIGSERIAL PRIMARY KEY,
    created_at BIGINT NOT NULL,
    active BOOLEAN NOT NULL DEFAULT TRUE,
    channel TEXT COLLATE "C" NOT NULL,
    address TEXT COLLATE "C" NOT NULL,
    lang TEXT NOT NULL,
    inactive_reason TEXT,
    UNIQUE (channel, address)
);
CREATE TABLE places (
    subscriber_id BIGINT NOT NULL REFERENCES subscribers(id) ON DELETE CASCADE,
    region_id TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (subscriber_id, region_id)
);
CREATE TABLE events (
    ref BIGSERIAL PRIMARY KEY,
    revision BIGINT NOT NULL,
    created_ms BIGINT NOT NULL,
    priority SMALLINT NOT NULL,
    complete BOOLEAN NOT NULL DEFAULT FALSE,
    id TEXT COLLATE "C" NOT NULL UNIQUE,
    subject TEXT COLLATE "C" NOT NULL,
    kind TEXT NOT NULL,
    transition TEXT NOT NULL,
    at TEXT NOT NULL,
    body TEXT NOT NULL
);
CREATE INDEX events_by_subject ON events (subject, ref);
CREATE TABLE deliveries (
    event_ref BIGINT NOT NULL REFERENCES events(ref),
    subscriber_id BIGINT NOT NULL REFERENCES subscribers(id) ON DELETE CASCADE,
    not_before BIGINT NOT NULL DEFAULT 0,
    deadline BIGINT,
    claimed_by BIGINT,
    lease_until BIGINT,
    sent_at BIGINT,
    attempts INTEGER NOT NULL DEFAULT 0,
    channel SMALLINT NOT NULL,
    lang SMALLINT NOT NULL,
    priority SMALLINT NOT NULL,
    state SMALLINT NOT NULL DEFAULT 0,
    address TEXT COLLATE "C" NOT NULL,
    platform_id TEXT,
    last_error TEXT,
    PRIMARY KEY (event_ref, subscriber_id)
);
CREATE INDEX deliveries_by_subscriber ON deliveries (subscriber_id);
CREATE INDEX deliveries_due ON deliveries (channel, priority, not_before) WHERE state = 0;
CREATE INDEX deliveries_leased ON deliveries (lease_until) WHERE state = 1;
CREATE INDEX deliveries_by_node ON deliveries (claimed_by) WHERE state = 1;
CREATE TABLE kv (key TEXT COLLATE "C" PRIMARY KEY, value TEXT NOT NULL);
"#;

/// Delivery reports: when a report came, and the sent rows by their platform id.
const MIGRATE_2_REPORTS: &str = r#"
ALTER TABLE deliveries ADD COLUMN reported_at BIGINT;
CREATE INDEX deliveries_by_platform_id ON deliveries (channel, platform_id) WHERE state = 2;
"#;

/// The bot's memory: a label, a kind filter and the order of adding per place, and
/// per chat the dialog in progress, quiet hours and whether the resident paused.
const MIGRATE_3_BOT: &str = r#"
ALTER TABLE places ADD COLUMN seq BIGSERIAL;
ALTER TABLE places ADD COLUMN label TEXT;
ALTER TABLE places ADD COLUMN kinds TEXT;
CREATE TABLE chats (
    subscriber_id BIGINT PRIMARY KEY REFERENCES subscribers(id) ON DELETE CASCADE,
    quiet_from INTEGER,
    quiet_to INTEGER,
    paused BOOLEAN NOT NULL DEFAULT FALSE,
    dialog TEXT
);
"#;

/// Operators: the audit log, and each subscriber's opt-in to drills.
const MIGRATE_4_OPERATORS: &str = r#"
CREATE TABLE audit (
    id BIGSERIAL PRIMARY KEY,
    at_ms BIGINT NOT NULL,
    who TEXT NOT NULL,
    action TEXT NOT NULL,
    what TEXT NOT NULL
);
CREATE INDEX audit_by_time ON audit (at_ms);
ALTER TABLE subscribers ADD COLUMN drills BOOLEAN NOT NULL DEFAULT FALSE;
"#;

/// SQLite's migration 6: shared points of places, SMS fallback links, help requests.
const MIGRATE_5_RESIDENTS: &str = r#"
CREATE TABLE place_points (
    subscriber_id BIGINT NOT NULL REFERENCES subscribers(id) ON DELETE CASCADE,
    lat DOUBLE PRECISION NOT NULL,
    lon DOUBLE PRECISION NOT NULL,
    region_id TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (subscriber_id, region_id)
);
CREATE TABLE sms_links (
    chat_id BIGINT PRIMARY KEY REFERENCES subscribers(id) ON DELETE CASCADE,
    sms_id BIGINT NOT NULL REFERENCES subscribers(id) ON DELETE CASCADE
);
CREATE TABLE help_requests (
    id BIGSERIAL PRIMARY KEY,
    subscriber_id BIGINT NOT NULL REFERENCES subscribers(id) ON DELETE CASCADE,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    people BIGINT,
    order_id TEXT COLLATE "C" NOT NULL,
    region_id TEXT COLLATE "C" NOT NULL,
    mobility TEXT,
    phone TEXT,
    step TEXT NOT NULL,
    UNIQUE (subscriber_id, order_id)
);
CREATE INDEX help_requests_by_order ON help_requests (order_id, created_at);
"#;

/// Brings the database's schema up to date, or refuses one newer than this sirena.
pub(super) async fn run(client: &mut PgClient) -> Result<(), StoreError> {
    let tx = client.transaction().await?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK]).await?;
    tx.batch_execute("CREATE TABLE IF NOT EXISTS sirena_schema (version BIGINT NOT NULL)").await?;
    let version: i64 = tx.query_one("SELECT COALESCE(MAX(version), 0) FROM sirena_schema", &[]).await?.try_get(0)?;
    let known = MIGRATIONS.len() as i64;
    if version > known {
        return Err(StoreError::TooNew { found: version, known });
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(version.max(0) as usize) {
        tx.batch_execute(sql).await?;
        tx.execute("DELETE FROM sirena_schema", &[]).await?;
        tx.execute("INSERT INTO sirena_schema (version) VALUES ($1)", &[&((i + 1) as i64)]).await?;
    }
    tx.commit().await?;
    Ok(())
}
