//! The PostgreSQL store: several sirena nodes on one database (DESIGN §15).
//!
//! tokio-postgres with a deadpool pool: every call is async on the pool's
//! connections, so no store work blocks a worker (the SQLite store needs the blocking
//! pool for that). Statements are prepared once per connection (`prepare_cached`).
//! Lists travel as PostgreSQL arrays (`unnest($1::bigint[])`), so a write of many rows
//! is one statement per chunk, never a statement per row.
//!
//! The claim is `UPDATE … FROM (SELECT … FOR UPDATE SKIP LOCKED LIMIT n) RETURNING`:
//! two nodes claiming at once never take the same row and never wait for each other.
//! All due rows of a chat come together when one node claims, which is how sirena runs
//! (only the leader runs the lanes, [`crate::leader`]); a second claimer could at worst
//! take another of a chat's rows at the same instant, never the same row.
//!
//! The rows are the SQLite store's: keyed (event, subscriber), integers for channel,
//! language, priority and state, partial indexes for queued and claimed rows.

pub mod migrations;
pub mod scratch;

use std::time::Duration;

use async_trait::async_trait;
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use tokio_postgres::NoTls;
use tokio_postgres::types::ToSql;

use super::*;

pub(crate) type PgClient = deadpool_postgres::Client;

/// Subscribers per statement in a large enqueue or import: one array parameter each,
/// a few hundred milliseconds of writing, so other callers wait at most that long.
const CHUNK: usize = 50_000;

/// Connections in the pool: the pipeline, three lanes, the bot and a spare.
const POOL_SIZE: usize = 8;

/// Claims the due rows of the most urgent chats in one statement: `chats` walks
/// `deliveries_due` in (priority, not_before) order to pick the chats' first rows,
/// `rows` takes every due row of those chats, both skipping rows another claim holds.
const CLAIM: &str = "WITH chats AS (
         SELECT subscriber_id FROM deliveries
         WHERE state = 0 AND channel = $4 AND priority BETWEEN $5 AND $6 AND not_before <= $3
           AND NOT (subscriber_id = ANY($7::bigint[]))
         ORDER BY priority, not_before LIMIT $8
         FOR UPDATE SKIP LOCKED),
     rows AS (
         SELECT event_ref, subscriber_id FROM deliveries
         WHERE state = 0 AND not_before <= $3 AND subscriber_id IN (SELECT subscriber_id FROM chats)
         FOR UPDATE SKIP LOCKED)
     UPDATE deliveries d SET state = 1, claimed_by = $1, lease_until = $2, attempts = d.attempts + 1
     FROM rows r WHERE d.event_ref = r.event_ref AND d.subscriber_id = r.subscriber_id
     RETURNING d.event_ref, d.subscriber_id, d.channel, d.address, d.lang, d.priority, d.attempts, d.deadline";

/// The earliest queued row of one channel: one index seek per priority class in
/// `deliveries_due`, in one statement.
const NEXT_DUE: &str = "SELECT MIN(m.not_before) FROM unnest($2::smallint[]) AS p(priority),
     LATERAL (SELECT not_before FROM deliveries
              WHERE state = 0 AND channel = $1 AND priority = p.priority
              ORDER BY not_before LIMIT 1) m";

const SUBSCRIBER: &str =
    "SELECT id, channel, address, lang, active FROM subscribers WHERE channel = $1 AND address = $2";

/// A small code (channel, language, priority, state) as its column type.
fn small(code: i64) -> i16 {
    i16::try_from(code).unwrap_or(i16::MAX)
}

pub struct PgStore {
    pool: Pool,
    config: tokio_postgres::Config,
}

impl fmt::Debug for PgStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PgStore")
    }
}

/// Parses a `postgres://` URL (or a key=value string) into a client config, with the
/// time limits sirena wants: a connect that takes more than 5 s has failed, and a
/// dead peer is noticed by TCP keepalives within seconds.
pub fn parse_url(url: &str) -> Result<tokio_postgres::Config, StoreError> {
    let mut config: tokio_postgres::Config = url.parse()?;
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(Duration::from_secs(5));
    }
    config.keepalives(true).keepalives_idle(Duration::from_secs(5)).keepalives_interval(Duration::from_secs(2));
    if config.get_application_name().is_none() {
        config.application_name("sirena");
    }
    Ok(config)
}

/// The URL with its password replaced, for logs and errors.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    match rest.split_once('@') {
        Some((user, host)) if user.contains(':') => {
            let name = user.split(':').next().unwrap_or_default();
            format!("{scheme}://{name}:***@{host}")
        }
        _ => url.to_owned(),
    }
}

impl PgStore {
    /// Connects to the database at `url` and brings its schema up to date.
    pub async fn connect(url: &str) -> Result<PgStore, StoreError> {
        PgStore::with_config(parse_url(url)?).await
    }

    pub async fn with_config(config: tokio_postgres::Config) -> Result<PgStore, StoreError> {
        let manager =
            Manager::from_config(config.clone(), NoTls, ManagerConfig { recycling_method: RecyclingMethod::Fast });
        let pool = Pool::builder(manager)
            .max_size(POOL_SIZE)
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(Duration::from_secs(30)))
            .create_timeout(Some(Duration::from_secs(10)))
            .recycle_timeout(Some(Duration::from_secs(5)))
            .build()
            .map_err(|e| StoreError::Worker(format!("building the connection pool: {e}")))?;
        let store = PgStore { pool, config };
        let mut client = store.client().await?;
        migrations::run(&mut client).await?;
        drop(client);
        Ok(store)
    }

    /// The client config, for a connection of its own outside the pool (the leader's
    /// advisory lock lives on one).
    pub fn config(&self) -> &tokio_postgres::Config {
        &self.config
    }

    /// Every claimed (`sending`) delivery with the node that holds its lease; for
    /// inspecting a store from outside (benches and tests).
    pub async fn leases(&self) -> Result<Vec<(DeliveryKey, NodeId)>, StoreError> {
        let client = self.client().await?;
        let rows =
            client.query("SELECT event_ref, subscriber_id, claimed_by FROM deliveries WHERE state = 1", &[]).await?;
        rows.iter()
            .map(|r| {
                Ok((
                    DeliveryKey { event: r.try_get(0)?, subscriber: r.try_get(1)? },
                    NodeId(r.try_get::<_, Option<i64>>(2)?.unwrap_or(0)),
                ))
            })
            .collect()
    }

    /// Closes the pool: its connections end once they are returned.
    pub fn close(&self) {
        self.pool.close();
    }

    async fn client(&self) -> Result<PgClient, StoreError> {
        Ok(self.pool.get().await?)
    }
}

fn subscriber_from_row(r: &tokio_postgres::Row) -> Result<Option<Subscriber>, StoreError> {
    let kind: String = r.try_get(1)?;
    let lang: String = r.try_get(3)?;
    // A row of a channel this sirena does not know cannot be served; it is skipped.
    Ok(match ChannelKind::parse(&kind) {
        Some(kind) => Some(Subscriber {
            id: r.try_get(0)?,
            kind,
            address: r.try_get(2)?,
            lang: Lang::parse(&lang).unwrap_or(Lang::Uk),
            active: r.try_get(4)?,
        }),
        None => None,
    })
}

async fn query_subscriber<C: deadpool_postgres::GenericClient>(
    client: &C,
    kind: ChannelKind,
    address: &str,
) -> Result<Option<Subscriber>, StoreError> {
    let stmt = client.prepare_cached(SUBSCRIBER).await?;
    match client.query_opt(&stmt, &[&kind.as_str(), &address]).await? {
        Some(r) => subscriber_from_row(&r),
        None => Ok(None),
    }
}

fn parse_places(rows: &[tokio_postgres::Row]) -> Result<Vec<RegionId>, StoreError> {
    // A row that is not a valid code cannot come from sirena itself; it is skipped
    // rather than failing the whole list.
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        if let Ok(region) = RegionId::parse(r.try_get::<_, &str>(0)?) {
            out.push(region);
        }
    }
    Ok(out)
}

/// Inserts or reactivates one subscriber inside a transaction.
async fn upsert(
    tx: &deadpool_postgres::Transaction<'_>,
    kind: ChannelKind,
    address: &str,
    lang: Lang,
) -> Result<Upserted, StoreError> {
    let insert = tx
        .prepare_cached(
            "INSERT INTO subscribers (channel, address, lang, created_at) VALUES ($1, $2, $3, $4)
             ON CONFLICT (channel, address) DO NOTHING",
        )
        .await?;
    let created = tx.execute(&insert, &[&kind.as_str(), &address, &lang.code(), &now_ms()]).await? == 1;
    let reactivate = tx
        .prepare_cached(
            "UPDATE subscribers SET active = TRUE, inactive_reason = NULL
             WHERE channel = $1 AND address = $2 AND NOT active",
        )
        .await?;
    let reactivated = tx.execute(&reactivate, &[&kind.as_str(), &address]).await? == 1;
    let subscriber = query_subscriber(tx, kind, address)
        .await?
        .ok_or_else(|| StoreError::Worker(format!("subscriber {} vanished during its upsert", kind.as_str())))?;
    Ok(Upserted { subscriber, created, reactivated })
}

fn decode_event(body: &str) -> Result<Event, StoreError> {
    Ok(serde_json::from_str(body)?)
}

#[async_trait]
impl Store for PgStore {
    async fn upsert_subscriber(&self, kind: ChannelKind, address: &str, lang: Lang) -> Result<Upserted, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let up = upsert(&tx, kind, address, lang).await?;
        tx.commit().await?;
        Ok(up)
    }

    async fn subscriber(&self, kind: ChannelKind, address: &str) -> Result<Option<Subscriber>, StoreError> {
        let client = self.client().await?;
        query_subscriber(&client, kind, address).await
    }

    async fn set_lang(&self, id: SubscriberId, lang: Lang) -> Result<(), StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        tx.execute("UPDATE subscribers SET lang = $2 WHERE id = $1", &[&id, &lang.code()]).await?;
        tx.execute(
            "UPDATE deliveries SET lang = $2 WHERE subscriber_id = $1 AND state = 0",
            &[&id, &small(lang.index())],
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn deactivate(&self, id: SubscriberId, reason: &str) -> Result<u64, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        tx.execute("UPDATE subscribers SET active = FALSE, inactive_reason = $2 WHERE id = $1", &[&id, &reason])
            .await?;
        let failed = tx
            .execute(
                "UPDATE deliveries SET state = 4, last_error = $2 WHERE subscriber_id = $1 AND state = 0",
                &[&id, &format!("subscriber inactive: {reason}")],
            )
            .await?;
        tx.commit().await?;
        Ok(failed)
    }

    async fn rewrite_address(&self, kind: ChannelKind, old: &str, new: &str) -> Result<(), StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        tx.execute(
            "UPDATE subscribers SET address = $3 WHERE channel = $1 AND address = $2",
            &[&kind.as_str(), &old, &new],
        )
        .await?;
        tx.execute(
            "UPDATE deliveries SET address = $2
             WHERE subscriber_id IN (SELECT id FROM subscribers WHERE channel = $1 AND address = $2)
               AND state IN (0, 1)",
            &[&kind.as_str(), &new],
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn add_place(&self, id: SubscriberId, region: &RegionId) -> Result<bool, StoreError> {
        let client = self.client().await?;
        let stmt = client
            .prepare_cached("INSERT INTO places (subscriber_id, region_id) VALUES ($1, $2) ON CONFLICT DO NOTHING")
            .await?;
        Ok(client.execute(&stmt, &[&id, &region.as_str()]).await? == 1)
    }

    async fn remove_places(&self, id: SubscriberId, region: Option<&RegionId>) -> Result<Vec<RegionId>, StoreError> {
        let client = self.client().await?;
        let stmt = client
            .prepare_cached(
                "DELETE FROM places WHERE subscriber_id = $1 AND ($2::text IS NULL OR region_id = $2)
                 RETURNING region_id",
            )
            .await?;
        let region = region.map(|r| r.as_str());
        let mut rows = client.query(&stmt, &[&id, &region]).await?;
        rows.sort_by(|a, b| a.try_get::<_, &str>(0).ok().cmp(&b.try_get::<_, &str>(0).ok()));
        parse_places(&rows)
    }

    async fn places(&self, id: SubscriberId) -> Result<Vec<RegionId>, StoreError> {
        let client = self.client().await?;
        let stmt =
            client.prepare_cached("SELECT region_id FROM places WHERE subscriber_id = $1 ORDER BY region_id").await?;
        parse_places(&client.query(&stmt, &[&id]).await?)
    }

    async fn active_places(&self) -> Result<Vec<(SubscriberId, RegionId)>, StoreError> {
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT p.subscriber_id, p.region_id FROM places p JOIN subscribers s ON s.id = p.subscriber_id
                 WHERE s.active",
                &[],
            )
            .await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in &rows {
            if let Ok(region) = RegionId::parse(r.try_get::<_, &str>(1)?) {
                out.push((r.try_get(0)?, region));
            }
        }
        Ok(out)
    }

    async fn place_settings(&self, id: SubscriberId) -> Result<Vec<PlaceSettings>, StoreError> {
        let client = self.client().await?;
        let stmt = client
            .prepare_cached("SELECT region_id, label, kinds FROM places WHERE subscriber_id = $1 ORDER BY seq")
            .await?;
        let mut out = Vec::new();
        for r in client.query(&stmt, &[&id]).await? {
            let Ok(region) = RegionId::parse(r.try_get::<_, &str>(0)?) else { continue };
            let kinds: Option<&str> = r.try_get(2)?;
            out.push(PlaceSettings { region, label: r.try_get(1)?, kinds: kinds.map(sql::parse_kinds) });
        }
        Ok(out)
    }

    async fn set_place_label(
        &self,
        id: SubscriberId,
        region: &RegionId,
        label: Option<&str>,
    ) -> Result<bool, StoreError> {
        let client = self.client().await?;
        let stmt =
            client.prepare_cached("UPDATE places SET label = $3 WHERE subscriber_id = $1 AND region_id = $2").await?;
        Ok(client.execute(&stmt, &[&id, &region.as_str(), &label]).await? == 1)
    }

    async fn set_place_kinds(
        &self,
        id: SubscriberId,
        region: &RegionId,
        kinds: Option<&[AlertKind]>,
    ) -> Result<bool, StoreError> {
        let client = self.client().await?;
        let stmt =
            client.prepare_cached("UPDATE places SET kinds = $3 WHERE subscriber_id = $1 AND region_id = $2").await?;
        let kinds = kinds.map(sql::kinds_text);
        Ok(client.execute(&stmt, &[&id, &region.as_str(), &kinds]).await? == 1)
    }

    async fn filtered_places(
        &self,
        id: Option<SubscriberId>,
    ) -> Result<Vec<(SubscriberId, RegionId, Vec<AlertKind>)>, StoreError> {
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT p.subscriber_id, p.region_id, p.kinds FROM places p JOIN subscribers s ON s.id = p.subscriber_id
                 WHERE s.active AND p.kinds IS NOT NULL AND ($1::bigint IS NULL OR p.subscriber_id = $1)",
                &[&id],
            )
            .await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in &rows {
            let Ok(region) = RegionId::parse(r.try_get::<_, &str>(1)?) else { continue };
            out.push((r.try_get(0)?, region, sql::parse_kinds(r.try_get(2)?)));
        }
        Ok(out)
    }

    async fn chat_settings(&self, id: SubscriberId) -> Result<ChatSettings, StoreError> {
        let client = self.client().await?;
        let stmt = client
            .prepare_cached("SELECT dialog, quiet_from, quiet_to, paused FROM chats WHERE subscriber_id = $1")
            .await?;
        let Some(r) = client.query_opt(&stmt, &[&id]).await? else { return Ok(ChatSettings::default()) };
        let (from, to): (Option<i32>, Option<i32>) = (r.try_get(1)?, r.try_get(2)?);
        Ok(ChatSettings {
            dialog: r.try_get(0)?,
            quiet: from.zip(to).and_then(|(f, t)| QuietHours::from_stored(f.into(), t.into())),
            paused: r.try_get(3)?,
        })
    }

    async fn set_chat_settings(&self, id: SubscriberId, settings: &ChatSettings) -> Result<(), StoreError> {
        let client = self.client().await?;
        let stmt = client
            .prepare_cached(
                "INSERT INTO chats (subscriber_id, dialog, quiet_from, quiet_to, paused) VALUES ($1, $2, $3, $4, $5)
                 ON CONFLICT (subscriber_id) DO UPDATE SET dialog = $2, quiet_from = $3, quiet_to = $4, paused = $5",
            )
            .await?;
        let (from, to) = (settings.quiet.map(|q| i32::from(q.from)), settings.quiet.map(|q| i32::from(q.to)));
        client.execute(&stmt, &[&id, &settings.dialog, &from, &to, &settings.paused]).await?;
        Ok(())
    }

    async fn quiet_hours(&self, ids: Vec<SubscriberId>) -> Result<Vec<Quiet>, StoreError> {
        let client = self.client().await?;
        let stmt = client
            .prepare_cached(
                "SELECT c.subscriber_id, c.quiet_from, c.quiet_to,
                        (SELECT region_id FROM places p WHERE p.subscriber_id = c.subscriber_id ORDER BY seq LIMIT 1)
                 FROM chats c WHERE c.subscriber_id = ANY($1::bigint[]) AND c.quiet_from IS NOT NULL",
            )
            .await?;
        let mut out = Vec::new();
        for r in client.query(&stmt, &[&ids]).await? {
            let (from, to): (i32, i32) = (r.try_get(1)?, r.try_get(2)?);
            let Some(hours) = QuietHours::from_stored(from.into(), to.into()) else { continue };
            let home: Option<&str> = r.try_get(3)?;
            out.push(Quiet { subscriber: r.try_get(0)?, hours, home: home.and_then(|h| RegionId::parse(h).ok()) });
        }
        Ok(out)
    }

    async fn forget(&self, id: SubscriberId) -> Result<Vec<RegionId>, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let mut rows = tx.query("DELETE FROM places WHERE subscriber_id = $1 RETURNING region_id", &[&id]).await?;
        tx.execute("DELETE FROM chats WHERE subscriber_id = $1", &[&id]).await?;
        tx.execute("DELETE FROM place_points WHERE subscriber_id = $1", &[&id]).await?;
        tx.execute("DELETE FROM help_requests WHERE subscriber_id = $1", &[&id]).await?;
        tx.execute("DELETE FROM sms_links WHERE chat_id = $1", &[&id]).await?;
        tx.execute("UPDATE subscribers SET active = FALSE, inactive_reason = 'forgotten' WHERE id = $1", &[&id])
            .await?;
        tx.execute(
            "UPDATE deliveries SET state = 4, last_error = 'subscriber inactive: forgotten'
             WHERE subscriber_id = $1 AND state = 0",
            &[&id],
        )
        .await?;
        tx.commit().await?;
        rows.sort_by(|a, b| a.try_get::<_, &str>(0).ok().cmp(&b.try_get::<_, &str>(0).ok()));
        parse_places(&rows)
    }

    async fn import(&self, rows: Vec<Import>) -> Result<usize, StoreError> {
        let mut client = self.client().await?;
        let mut created = 0;
        for chunk in rows.chunks(CHUNK / 2) {
            let (mut channels, mut addresses, mut langs) = (Vec::new(), Vec::new(), Vec::new());
            let (mut place_channels, mut place_addresses, mut place_regions) = (Vec::new(), Vec::new(), Vec::new());
            for row in chunk {
                channels.push(row.kind.as_str());
                addresses.push(row.address.as_str());
                langs.push(row.lang.code());
                for place in &row.places {
                    place_channels.push(row.kind.as_str());
                    place_addresses.push(row.address.as_str());
                    place_regions.push(place.as_str());
                }
            }
            let tx = client.transaction().await?;
            let insert = tx
                .prepare_cached(
                    "INSERT INTO subscribers (channel, address, lang, created_at)
                     SELECT c, a, l, $4 FROM unnest($1::text[], $2::text[], $3::text[]) AS u(c, a, l)
                     ON CONFLICT (channel, address) DO NOTHING",
                )
                .await?;
            created += tx.execute(&insert, &[&channels, &addresses, &langs, &now_ms()]).await? as usize;
            let reactivate = tx
                .prepare_cached(
                    "UPDATE subscribers s SET active = TRUE, inactive_reason = NULL
                     FROM unnest($1::text[], $2::text[]) AS u(c, a)
                     WHERE s.channel = u.c AND s.address = u.a AND NOT s.active",
                )
                .await?;
            tx.execute(&reactivate, &[&channels, &addresses]).await?;
            let places = tx
                .prepare_cached(
                    "INSERT INTO places (subscriber_id, region_id)
                     SELECT s.id, u.r FROM unnest($1::text[], $2::text[], $3::text[]) AS u(c, a, r)
                     JOIN subscribers s ON s.channel = u.c AND s.address = u.a
                     ON CONFLICT DO NOTHING",
                )
                .await?;
            tx.execute(&places, &[&place_channels, &place_addresses, &place_regions]).await?;
            tx.commit().await?;
        }
        Ok(created)
    }

    async fn export(&self) -> Result<Vec<Import>, StoreError> {
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT s.channel, s.address, s.lang, p.region_id FROM subscribers s
                 JOIN places p ON p.subscriber_id = s.id
                 WHERE s.active ORDER BY s.channel, s.address, p.region_id",
                &[],
            )
            .await?;
        let mut out: Vec<Import> = Vec::new();
        for r in &rows {
            let (channel, address, lang, region): (&str, String, &str, &str) =
                (r.try_get(0)?, r.try_get(1)?, r.try_get(2)?, r.try_get(3)?);
            // Rows sirena itself could not have written are skipped, as elsewhere.
            let (Some(kind), Ok(region)) = (ChannelKind::parse(channel), RegionId::parse(region)) else {
                continue;
            };
            match out.last_mut() {
                Some(last) if last.kind == kind && last.address == address => last.places.push(region),
                _ => out.push(Import {
                    kind,
                    address,
                    lang: Lang::parse(lang).unwrap_or(Lang::Uk),
                    places: vec![region],
                }),
            }
        }
        Ok(out)
    }

    async fn sync_region_channels(&self, channels: Vec<RegionChannel>) -> Result<PlaceChanges, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let mut changes = PlaceChanges::default();
        let kind = ChannelKind::TelegramChannel;
        let mut keep: Vec<SubscriberId> = Vec::new();
        for ch in &channels {
            let up = upsert(&tx, kind, &ch.address, ch.lang).await?;
            let id = up.subscriber.id;
            keep.push(id);
            tx.execute("UPDATE subscribers SET lang = $2 WHERE id = $1", &[&id, &ch.lang.code()]).await?;
            let old = tx.query("SELECT region_id FROM places WHERE subscriber_id = $1", &[&id]).await?;
            for place in parse_places(&old)? {
                let configured = channels.iter().any(|c| c.address == ch.address && c.region == place);
                if !configured {
                    tx.execute(
                        "DELETE FROM places WHERE subscriber_id = $1 AND region_id = $2",
                        &[&id, &place.as_str()],
                    )
                    .await?;
                    changes.removed.push((id, place));
                }
            }
            let added = tx
                .execute(
                    "INSERT INTO places (subscriber_id, region_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
                    &[&id, &ch.region.as_str()],
                )
                .await?;
            if added == 1 {
                changes.added.push((id, ch.region.clone()));
            }
        }
        // Channels no longer in any region file stop receiving.
        let gone = tx
            .query(
                "SELECT s.id, p.region_id FROM subscribers s JOIN places p ON p.subscriber_id = s.id
                 WHERE s.channel = $1 AND s.active AND NOT (s.id = ANY($2::bigint[]))",
                &[&kind.as_str(), &keep],
            )
            .await?;
        for r in &gone {
            let (id, place): (SubscriberId, &str) = (r.try_get(0)?, r.try_get(1)?);
            tx.execute(
                "UPDATE subscribers SET active = FALSE, inactive_reason = 'removed from the region files' WHERE id = $1",
                &[&id],
            )
            .await?;
            tx.execute("DELETE FROM places WHERE subscriber_id = $1", &[&id]).await?;
            if let Ok(place) = RegionId::parse(place) {
                changes.removed.push((id, place));
            }
        }
        tx.commit().await?;
        Ok(changes)
    }

    async fn event_complete(&self, id: &EventId) -> Result<bool, StoreError> {
        let client = self.client().await?;
        let stmt = client.prepare_cached("SELECT complete FROM events WHERE id = $1").await?;
        match client.query_opt(&stmt, &[&id.0]).await? {
            Some(r) => Ok(r.try_get(0)?),
            None => Ok(false),
        }
    }

    async fn enqueue(
        &self,
        event: &Event,
        audience: Audience,
        deadline_ms: Option<i64>,
    ) -> Result<Enqueued, StoreError> {
        let client = self.client().await?;
        let body = serde_json::to_string(event)?;
        let insert = client
            .prepare_cached(
                "INSERT INTO events (id, subject, kind, transition, revision, priority, at, body, created_ms)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (id) DO NOTHING",
            )
            .await?;
        let event_new = client
            .execute(
                &insert,
                &[
                    &event.id.0,
                    &event.subject(),
                    &event.kind.as_str(),
                    &event.transition.as_str(),
                    &i64::from(event.revision),
                    &small(event.priority.as_i64()),
                    &event.at.to_rfc3339(),
                    &body,
                    &now_ms(),
                ],
            )
            .await?
            == 1;
        let event_ref: EventRef = {
            let stmt = client.prepare_cached("SELECT ref FROM events WHERE id = $1").await?;
            client.query_one(&stmt, &[&event.id.0]).await?.try_get(0)?
        };
        let subscribers: Vec<SubscriberId> = match audience {
            Audience::Subscribers(ids) => ids,
            Audience::ToldAbout(subject) => {
                let stmt = client
                    .prepare_cached(
                        "SELECT DISTINCT d.subscriber_id FROM events e JOIN deliveries d ON d.event_ref = e.ref
                         WHERE e.subject = $1 AND e.ref <> $2 AND d.state IN (0, 1, 2, 3)",
                    )
                    .await?;
                let rows = client.query(&stmt, &[&subject, &event_ref]).await?;
                rows.iter().map(|r| r.try_get(0)).collect::<Result<_, _>>()?
            }
        };
        let sql = format!(
            "INSERT INTO deliveries (event_ref, subscriber_id, channel, address, lang, priority, deadline)
             SELECT $1, s.id, ({channel})::smallint, s.address, ({lang})::smallint, $2, $3
             FROM unnest($4::bigint[]) AS r(id) JOIN subscribers s ON s.id = r.id
             WHERE s.active AND s.channel IN ({known})
             ON CONFLICT (event_ref, subscriber_id) DO NOTHING",
            channel = sql::channel_case("s.channel"),
            lang = sql::lang_case("s.lang"),
            known = sql::known_channels(),
        );
        let stmt = client.prepare_cached(&sql).await?;
        let priority = small(event.priority.as_i64());
        let mut added = 0;
        for chunk in subscribers.chunks(CHUNK) {
            let params: [&(dyn ToSql + Sync); 4] = [&event_ref, &priority, &deadline_ms, &chunk];
            added += client.execute(&stmt, &params).await? as usize;
        }
        client.execute("UPDATE events SET complete = TRUE WHERE ref = $1", &[&event_ref]).await?;
        Ok(Enqueued { event_new, deliveries: added })
    }

    async fn latest_event(&self, subject: &str) -> Result<Option<Event>, StoreError> {
        let client = self.client().await?;
        let stmt =
            client.prepare_cached("SELECT body FROM events WHERE subject = $1 ORDER BY ref DESC LIMIT 1").await?;
        match client.query_opt(&stmt, &[&subject]).await? {
            Some(r) => Ok(Some(decode_event(r.try_get(0)?)?)),
            None => Ok(None),
        }
    }

    async fn events(&self, refs: Vec<EventRef>) -> Result<Vec<(EventRef, Event)>, StoreError> {
        let client = self.client().await?;
        let stmt = client.prepare_cached("SELECT ref, body FROM events WHERE ref = ANY($1::bigint[])").await?;
        let rows = client.query(&stmt, &[&refs]).await?;
        rows.iter().map(|r| Ok((r.try_get(0)?, decode_event(r.try_get(1)?)?))).collect()
    }

    async fn claim(&self, claim: Claim) -> Result<Vec<Claimed>, StoreError> {
        let client = self.client().await?;
        let stmt = client.prepare_cached(CLAIM).await?;
        let rows = client
            .query(
                &stmt,
                &[
                    &claim.node.0,
                    &claim.lease_until_ms,
                    &claim.now_ms,
                    &small(claim.kind.code()),
                    &small(claim.priorities.start().as_i64()),
                    &small(claim.priorities.end().as_i64()),
                    &claim.busy,
                    &(claim.chats as i64),
                ],
            )
            .await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in &rows {
            let attempts: i32 = r.try_get(6)?;
            out.push(Claimed {
                key: DeliveryKey { event: r.try_get(0)?, subscriber: r.try_get(1)? },
                kind: ChannelKind::from_code(i64::from(r.try_get::<_, i16>(2)?)).unwrap_or(claim.kind),
                address: r.try_get(3)?,
                lang: Lang::from_index(i64::from(r.try_get::<_, i16>(4)?)),
                priority: Priority::from_i64(i64::from(r.try_get::<_, i16>(5)?)).unwrap_or(Priority::Info),
                attempts: u32::try_from(attempts).unwrap_or(0),
                deadline_ms: r.try_get(7)?,
            });
        }
        // The order of a chat's rows is the claim's order: most urgent first.
        out.sort_by_key(|c| (c.priority, c.key));
        Ok(out)
    }

    async fn finish(&self, node: NodeId, done: Vec<Finished>) -> Result<(), StoreError> {
        // One statement per kind of outcome, each over arrays of keys.
        let (mut sent_e, mut sent_s, mut sent_id) = (Vec::new(), Vec::new(), Vec::new());
        let (mut retry_e, mut retry_s, mut retry_at, mut retry_err) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        let (mut final_e, mut final_s, mut final_state, mut final_err) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for f in done {
            let (e, s) = (f.key.event, f.key.subscriber);
            match f.finish {
                Finish::Sent { platform_id } => {
                    sent_e.push(e);
                    sent_s.push(s);
                    sent_id.push(platform_id);
                }
                Finish::Retry { not_before_ms, error } => {
                    retry_e.push(e);
                    retry_s.push(s);
                    retry_at.push(not_before_ms);
                    retry_err.push(error);
                }
                other => {
                    let (state, error) = match other {
                        Finish::Failed { error } => (DeliveryState::Failed, Some(error)),
                        Finish::Expired { reason } => (DeliveryState::Expired, Some(reason)),
                        _ => (DeliveryState::Superseded, None),
                    };
                    final_e.push(e);
                    final_s.push(s);
                    final_state.push(small(state.code()));
                    final_err.push(error);
                }
            }
        }
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        if !sent_e.is_empty() {
            let stmt = tx
                .prepare_cached(
                    "UPDATE deliveries d SET state = 2, sent_at = $2, platform_id = u.p, last_error = NULL,
                            claimed_by = NULL, lease_until = NULL
                     FROM unnest($3::bigint[], $4::bigint[], $5::text[]) AS u(e, s, p)
                     WHERE d.event_ref = u.e AND d.subscriber_id = u.s AND d.state = 1 AND d.claimed_by = $1",
                )
                .await?;
            tx.execute(&stmt, &[&node.0, &now_ms(), &sent_e, &sent_s, &sent_id]).await?;
        }
        if !retry_e.is_empty() {
            let stmt = tx
                .prepare_cached(
                    "UPDATE deliveries d SET state = 0, not_before = u.t, last_error = u.m,
                            claimed_by = NULL, lease_until = NULL
                     FROM unnest($2::bigint[], $3::bigint[], $4::bigint[], $5::text[]) AS u(e, s, t, m)
                     WHERE d.event_ref = u.e AND d.subscriber_id = u.s AND d.state = 1 AND d.claimed_by = $1",
                )
                .await?;
            tx.execute(&stmt, &[&node.0, &retry_e, &retry_s, &retry_at, &retry_err]).await?;
        }
        if !final_e.is_empty() {
            let stmt = tx
                .prepare_cached(
                    "UPDATE deliveries d SET state = u.st, last_error = u.m, claimed_by = NULL, lease_until = NULL
                     FROM unnest($2::bigint[], $3::bigint[], $4::smallint[], $5::text[]) AS u(e, s, st, m)
                     WHERE d.event_ref = u.e AND d.subscriber_id = u.s AND d.state = 1 AND d.claimed_by = $1",
                )
                .await?;
            tx.execute(&stmt, &[&node.0, &final_e, &final_s, &final_state, &final_err]).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn report(&self, kind: ChannelKind, platform_id: &str, report: Report) -> Result<u64, StoreError> {
        let client = self.client().await?;
        let (channel, sent) = (small(kind.code()), small(DeliveryState::Sent.code()));
        let n = match report {
            Report::Delivered => {
                let stmt = client
                    .prepare_cached(
                        "UPDATE deliveries SET state = $4, reported_at = $5
                         WHERE channel = $1 AND platform_id = $2 AND state = $3",
                    )
                    .await?;
                let delivered = small(DeliveryState::Delivered.code());
                client.execute(&stmt, &[&channel, &platform_id, &sent, &delivered, &now_ms()]).await?
            }
            Report::Undelivered { error } => {
                let stmt = client
                    .prepare_cached(
                        "UPDATE deliveries SET state = $4, reported_at = $5, last_error = $6
                         WHERE channel = $1 AND platform_id = $2 AND state = $3",
                    )
                    .await?;
                let undelivered = small(DeliveryState::Undelivered.code());
                client.execute(&stmt, &[&channel, &platform_id, &sent, &undelivered, &now_ms(), &error]).await?
            }
            Report::Retry { not_before_ms, error } => {
                let stmt = client
                    .prepare_cached(
                        "UPDATE deliveries SET state = $4, not_before = $5, last_error = $6, reported_at = NULL
                         WHERE channel = $1 AND platform_id = $2 AND state = $3",
                    )
                    .await?;
                let pending = small(DeliveryState::Pending.code());
                client.execute(&stmt, &[&channel, &platform_id, &sent, &pending, &not_before_ms, &error]).await?
            }
        };
        Ok(n)
    }

    async fn renew_leases(&self, node: NodeId, until_ms: i64) -> Result<u64, StoreError> {
        let client = self.client().await?;
        let stmt =
            client.prepare_cached("UPDATE deliveries SET lease_until = $2 WHERE state = 1 AND claimed_by = $1").await?;
        Ok(client.execute(&stmt, &[&node.0, &until_ms]).await?)
    }

    async fn release(&self, node: NodeId) -> Result<u64, StoreError> {
        let client = self.client().await?;
        let stmt = client
            .prepare_cached(
                "UPDATE deliveries SET state = 0, claimed_by = NULL, lease_until = NULL
                 WHERE state = 1 AND claimed_by = $1",
            )
            .await?;
        Ok(client.execute(&stmt, &[&node.0]).await?)
    }

    async fn requeue_expired_leases(&self, now_ms: i64) -> Result<u64, StoreError> {
        let client = self.client().await?;
        let stmt = client
            .prepare_cached(
                "UPDATE deliveries SET state = 0, claimed_by = NULL, lease_until = NULL
                 WHERE state = 1 AND lease_until < $1",
            )
            .await?;
        Ok(client.execute(&stmt, &[&now_ms]).await?)
    }

    async fn next_due(&self, kind: ChannelKind) -> Result<Option<i64>, StoreError> {
        let client = self.client().await?;
        let stmt = client.prepare_cached(NEXT_DUE).await?;
        let priorities: Vec<i16> = Priority::ALL.iter().map(|p| small(p.as_i64())).collect();
        Ok(client.query_one(&stmt, &[&small(kind.code()), &priorities]).await?.try_get(0)?)
    }

    async fn drained(&self) -> Result<bool, StoreError> {
        let client = self.client().await?;
        let stmt = client
            .prepare_cached(
                "SELECT EXISTS (SELECT 1 FROM deliveries WHERE state = 0)
                     OR EXISTS (SELECT 1 FROM deliveries WHERE state = 1)",
            )
            .await?;
        let busy: bool = client.query_one(&stmt, &[]).await?.try_get(0)?;
        Ok(!busy)
    }

    async fn counts_by_channel(&self) -> Result<BTreeMap<ChannelKind, Counts>, StoreError> {
        let client = self.client().await?;
        let rows = client.query("SELECT channel, state, COUNT(*) FROM deliveries GROUP BY channel, state", &[]).await?;
        let mut by = BTreeMap::new();
        for r in &rows {
            let (channel, state, n): (i16, i16, i64) = (r.try_get(0)?, r.try_get(1)?, r.try_get(2)?);
            let kind = ChannelKind::from_code(i64::from(channel));
            if let (Some(kind), Some(state)) = (kind, DeliveryState::from_code(i64::from(state))) {
                *by.entry(kind).or_insert_with(Counts::default).slot(state) = n.max(0) as u64;
            }
        }
        Ok(by)
    }

    async fn event(&self, id: &EventId) -> Result<Option<Event>, StoreError> {
        let client = self.client().await?;
        let stmt = client.prepare_cached("SELECT body FROM events WHERE id = $1").await?;
        match client.query_opt(&stmt, &[&id.0]).await? {
            Some(r) => Ok(Some(decode_event(r.try_get(0)?)?)),
            None => Ok(None),
        }
    }

    async fn audit_append(&self, entry: AuditEntry) -> Result<(), StoreError> {
        let client = self.client().await?;
        let stmt =
            client.prepare_cached("INSERT INTO audit (at_ms, who, action, what) VALUES ($1, $2, $3, $4)").await?;
        client.execute(&stmt, &[&entry.at_ms, &entry.who, &entry.action, &entry.what]).await?;
        Ok(())
    }

    async fn audit(&self, since_ms: Option<i64>) -> Result<Vec<AuditEntry>, StoreError> {
        let client = self.client().await?;
        let stmt = client
            .prepare_cached("SELECT at_ms, who, action, what FROM audit WHERE at_ms >= $1 ORDER BY at_ms, id")
            .await?;
        let rows = client.query(&stmt, &[&since_ms.unwrap_or(i64::MIN)]).await?;
        rows.iter()
            .map(|r| {
                Ok(AuditEntry { at_ms: r.try_get(0)?, who: r.try_get(1)?, action: r.try_get(2)?, what: r.try_get(3)? })
            })
            .collect()
    }

    async fn set_drills(&self, id: SubscriberId, on: bool) -> Result<(), StoreError> {
        let client = self.client().await?;
        let stmt = client.prepare_cached("UPDATE subscribers SET drills = $2 WHERE id = $1").await?;
        client.execute(&stmt, &[&id, &on]).await?;
        Ok(())
    }

    async fn drill_subscribers(&self) -> Result<Vec<SubscriberId>, StoreError> {
        let client = self.client().await?;
        let stmt = client.prepare_cached("SELECT id FROM subscribers WHERE drills AND active ORDER BY id").await?;
        let rows = client.query(&stmt, &[]).await?;
        rows.iter().map(|r| Ok(r.try_get(0)?)).collect()
    }

    async fn received(&self, event: &EventId) -> Result<Vec<SubscriberId>, StoreError> {
        let client = self.client().await?;
        let stmt = client
            .prepare_cached(
                "SELECT d.subscriber_id FROM events e JOIN deliveries d ON d.event_ref = e.ref
                 JOIN subscribers s ON s.id = d.subscriber_id
                 WHERE e.id = $1 AND d.state IN (0, 1, 2, 3) AND s.active ORDER BY d.subscriber_id",
            )
            .await?;
        let rows = client.query(&stmt, &[&event.0]).await?;
        rows.iter().map(|r| Ok(r.try_get(0)?)).collect()
    }

    async fn progress(&self, events: usize) -> Result<Vec<Progress>, StoreError> {
        let limit = i64::try_from(events).unwrap_or(i64::MAX);
        let client = self.client().await?;
        let recent = client
            .query(
                &client.prepare_cached("SELECT ref, body, created_ms FROM events ORDER BY ref DESC LIMIT $1").await?,
                &[&limit],
            )
            .await?;
        let refs: Vec<i64> = recent.iter().map(|r| r.try_get(0)).collect::<Result<_, _>>()?;
        let stmt = client
            .prepare_cached(
                "SELECT event_ref, state, COUNT(*) FROM deliveries WHERE event_ref = ANY($1::bigint[])
                 GROUP BY event_ref, state",
            )
            .await?;
        let mut counts: std::collections::HashMap<i64, Counts> = std::collections::HashMap::new();
        for r in client.query(&stmt, &[&refs]).await? {
            let (event_ref, state, n): (i64, i16, i64) = (r.try_get(0)?, r.try_get(1)?, r.try_get(2)?);
            if let Some(state) = DeliveryState::from_code(i64::from(state)) {
                *counts.entry(event_ref).or_default().slot(state) = n.max(0) as u64;
            }
        }
        recent
            .iter()
            .map(|r| {
                let event_ref: i64 = r.try_get(0)?;
                Ok(Progress {
                    event: decode_event(r.try_get(1)?)?,
                    created_ms: r.try_get(2)?,
                    counts: counts.get(&event_ref).copied().unwrap_or_default(),
                })
            })
            .collect()
    }

    async fn receipts(&self, event: &EventId) -> Result<Option<(i64, Vec<Receipt>)>, StoreError> {
        let client = self.client().await?;
        let stmt = client.prepare_cached("SELECT ref, created_ms FROM events WHERE id = $1").await?;
        let Some(found) = client.query_opt(&stmt, &[&event.0]).await? else { return Ok(None) };
        let (event_ref, created_ms): (i64, i64) = (found.try_get(0)?, found.try_get(1)?);
        let stmt = client
            .prepare_cached(
                "SELECT channel, state, attempts, sent_at FROM deliveries WHERE event_ref = $1 ORDER BY subscriber_id",
            )
            .await?;
        let mut out = Vec::new();
        for r in client.query(&stmt, &[&event_ref]).await? {
            let (channel, state, attempts, sent_at_ms): (i16, i16, i32, Option<i64>) =
                (r.try_get(0)?, r.try_get(1)?, r.try_get(2)?, r.try_get(3)?);
            if let (Some(kind), Some(state)) =
                (ChannelKind::from_code(i64::from(channel)), DeliveryState::from_code(i64::from(state)))
            {
                out.push(Receipt { kind, state, attempts: u32::try_from(attempts).unwrap_or(0), sent_at_ms });
            }
        }
        Ok(Some((created_ms, out)))
    }

    async fn purge_finished(&self, before_ms: i64) -> Result<u64, StoreError> {
        let client = self.client().await?;
        Ok(client.execute(sql::PURGE_FINISHED, &[&before_ms]).await?)
    }

    async fn kv_get(&self, key: &str) -> Result<Option<String>, StoreError> {
        let client = self.client().await?;
        let stmt = client.prepare_cached("SELECT value FROM kv WHERE key = $1").await?;
        match client.query_opt(&stmt, &[&key]).await? {
            Some(r) => Ok(Some(r.try_get(0)?)),
            None => Ok(None),
        }
    }

    async fn kv_put(&self, key: &str, value: &str) -> Result<(), StoreError> {
        let client = self.client().await?;
        let stmt = client
            .prepare_cached(
                "INSERT INTO kv (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            )
            .await?;
        client.execute(&stmt, &[&key, &value]).await?;
        Ok(())
    }

    async fn set_place_point(&self, id: SubscriberId, region: &RegionId, point: Point) -> Result<(), StoreError> {
        let client = self.client().await?;
        let stmt = client
            .prepare_cached(
                "INSERT INTO place_points (subscriber_id, region_id, lat, lon) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (subscriber_id, region_id) DO UPDATE SET lat = excluded.lat, lon = excluded.lon",
            )
            .await?;
        client.execute(&stmt, &[&id, &region.as_str(), &point.lat, &point.lon]).await?;
        Ok(())
    }

    async fn place_points(&self, id: SubscriberId) -> Result<Vec<(RegionId, Point)>, StoreError> {
        let client = self.client().await?;
        let stmt = client
            .prepare_cached(
                "SELECT pp.region_id, pp.lat, pp.lon FROM place_points pp
                 JOIN places p ON p.subscriber_id = pp.subscriber_id AND p.region_id = pp.region_id
                 WHERE pp.subscriber_id = $1 ORDER BY pp.region_id",
            )
            .await?;
        let mut out = Vec::new();
        for r in client.query(&stmt, &[&id]).await? {
            if let Ok(region) = RegionId::parse(r.try_get::<_, &str>(0)?) {
                out.push((region, Point { lat: r.try_get(1)?, lon: r.try_get(2)? }));
            }
        }
        Ok(out)
    }

    async fn link_sms(&self, chat: SubscriberId, sms: SubscriberId) -> Result<(), StoreError> {
        let client = self.client().await?;
        let stmt = client
            .prepare_cached(
                "INSERT INTO sms_links (chat_id, sms_id) VALUES ($1, $2)
                 ON CONFLICT (chat_id) DO UPDATE SET sms_id = excluded.sms_id",
            )
            .await?;
        client.execute(&stmt, &[&chat, &sms]).await?;
        Ok(())
    }

    async fn linked_sms(&self, chat: SubscriberId) -> Result<Option<SubscriberId>, StoreError> {
        let client = self.client().await?;
        let stmt = client.prepare_cached("SELECT sms_id FROM sms_links WHERE chat_id = $1").await?;
        Ok(client.query_opt(&stmt, &[&chat]).await?.map(|r| r.try_get(0)).transpose()?)
    }

    async fn unlink_sms(&self, chat: SubscriberId) -> Result<Option<SubscriberId>, StoreError> {
        let client = self.client().await?;
        let stmt = client.prepare_cached("DELETE FROM sms_links WHERE chat_id = $1 RETURNING sms_id").await?;
        Ok(client.query_opt(&stmt, &[&chat]).await?.map(|r| r.try_get(0)).transpose()?)
    }

    async fn save_help_request(&self, request: &HelpRequest) -> Result<bool, StoreError> {
        let client = self.client().await?;
        // `xmax = 0` only on a row this statement inserted.
        let stmt = client
            .prepare_cached(
                "INSERT INTO help_requests
                   (subscriber_id, order_id, region_id, people, mobility, phone, step, created_at, updated_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
                 ON CONFLICT (subscriber_id, order_id) DO UPDATE SET region_id = excluded.region_id,
                   people = excluded.people, mobility = excluded.mobility, phone = excluded.phone,
                   step = excluded.step, updated_at = excluded.updated_at
                 RETURNING (xmax = 0)",
            )
            .await?;
        let r = request;
        let people = r.people.map(i64::from);
        let row = client
            .query_one(
                &stmt,
                &[
                    &r.subscriber,
                    &r.order,
                    &r.region.as_str(),
                    &people,
                    &r.mobility,
                    &r.phone,
                    &r.step.as_str(),
                    &r.created_ms,
                    &r.updated_ms,
                ],
            )
            .await?;
        Ok(row.try_get(0)?)
    }

    async fn help_request(&self, id: SubscriberId, order: Option<&str>) -> Result<Option<HelpRequest>, StoreError> {
        let client = self.client().await?;
        let sql = format!(
            "{HELP_SELECT} WHERE h.subscriber_id = $1 AND ($2::text IS NULL OR h.order_id = $2)
             ORDER BY h.updated_at DESC, h.id DESC LIMIT 1"
        );
        let stmt = client.prepare_cached(&sql).await?;
        let rows = client.query(&stmt, &[&id, &order]).await?;
        Ok(rows.iter().map(help_row).collect::<Result<Vec<_>, _>>()?.into_iter().flatten().next())
    }

    async fn help_requests(&self, order: Option<&str>) -> Result<Vec<HelpRequest>, StoreError> {
        let client = self.client().await?;
        let sql = format!("{HELP_SELECT} WHERE ($1::text IS NULL OR h.order_id = $1) ORDER BY h.created_at, h.id");
        let stmt = client.prepare_cached(&sql).await?;
        let rows = client.query(&stmt, &[&order]).await?;
        Ok(rows.iter().map(help_row).collect::<Result<Vec<_>, _>>()?.into_iter().flatten().collect())
    }

    async fn purge_help_requests(&self, before_ms: i64) -> Result<u64, StoreError> {
        let client = self.client().await?;
        Ok(client.execute(sql::PURGE_HELP_REQUESTS, &[&before_ms]).await?)
    }
}

const HELP_SELECT: &str = "SELECT h.subscriber_id, s.address, h.order_id, h.region_id, h.people, h.mobility,
        h.phone, h.step, h.created_at, h.updated_at
    FROM help_requests h JOIN subscribers s ON s.id = h.subscriber_id";

/// One help request row; `None` for a row sirena cannot have written.
fn help_row(r: &tokio_postgres::Row) -> Result<Option<HelpRequest>, tokio_postgres::Error> {
    let (Ok(region), Some(step)) =
        (RegionId::parse(r.try_get::<_, &str>(3)?), HelpStep::parse(r.try_get::<_, &str>(7)?))
    else {
        return Ok(None);
    };
    let people: Option<i64> = r.try_get(4)?;
    Ok(Some(HelpRequest {
        subscriber: r.try_get(0)?,
        address: r.try_get(1)?,
        order: r.try_get(2)?,
        region,
        people: people.and_then(|p| u32::try_from(p).ok()),
        mobility: r.try_get(5)?,
        phone: r.try_get(6)?,
        step,
        created_ms: r.try_get(8)?,
        updated_ms: r.try_get(9)?,
    }))
}

/// Whether a PostgreSQL error will not go away by retrying: a database that does not
/// exist, refused credentials or privileges, a read-only server (a standby), a full
/// disk, corruption, or a schema that is not sirena's. Connection losses and
/// serialization failures are not: the server may come back, or a standby be promoted.
pub(super) fn is_permanent(e: &tokio_postgres::Error) -> bool {
    use tokio_postgres::error::SqlState;
    let Some(code) = e.code() else {
        return false;
    };
    let class = &code.code()[..2.min(code.code().len())];
    matches!(class, "28" | "3D" | "42" | "XX" | "58")
        || [SqlState::READ_ONLY_SQL_TRANSACTION, SqlState::DISK_FULL, SqlState::INSUFFICIENT_PRIVILEGE].contains(code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_url_is_redacted_and_parsed_with_time_limits() {
        assert_eq!(redact_url("postgres://sirena:hunter2@db:5432/sirena"), "postgres://sirena:***@db:5432/sirena");
        assert_eq!(redact_url("postgres://postgres@127.0.0.1/x"), "postgres://postgres@127.0.0.1/x");
        let c = parse_url("postgres://sirena@127.0.0.1:5432/sirena").expect("parses");
        assert_eq!(c.get_connect_timeout(), Some(&Duration::from_secs(5)));
        assert_eq!(c.get_dbname(), Some("sirena"));
        assert!(matches!(parse_url("postgres://a@b:notaport/x"), Err(StoreError::Postgres(_))));
    }
}
