//! The store conformance suite over every implementation (`sirena::store::conformance`):
//! SQLite on a file and in memory, and PostgreSQL, each case in a database of its own.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use sirena::store::postgres::scratch::ScratchDatabase;
use sirena::store::{PgStore, SqliteStore, Store, conformance};
use tokio::sync::Mutex;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_on_a_file_conforms() {
    let dir = tempfile::tempdir().expect("tempdir");
    let n = AtomicUsize::new(0);
    conformance::run(|| {
        let path = dir.path().join(format!("store-{}.db", n.fetch_add(1, Ordering::Relaxed)));
        async move { Arc::new(SqliteStore::open(&path).expect("open")) as Arc<dyn Store> }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_in_memory_conforms() {
    conformance::run(|| async { Arc::new(SqliteStore::open_in_memory().expect("open")) as Arc<dyn Store> }).await;
}

/// A scratch database and the store on it, dropped once the suite is done.
type Made = (ScratchDatabase, Arc<PgStore>);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_conforms() {
    let Some(admin) = common::postgres().await else { return };
    let made: Arc<Mutex<Vec<Made>>> = Arc::default();
    conformance::run(|| {
        let (admin, made) = (admin.clone(), made.clone());
        async move {
            let db = ScratchDatabase::create(&admin).await.expect("create a scratch database");
            let store = Arc::new(PgStore::with_config(db.config.clone()).await.expect("connect and migrate"));
            made.lock().await.push((db, store.clone()));
            store as Arc<dyn Store>
        }
    })
    .await;
    for (db, store) in made.lock().await.drain(..) {
        store.close();
        db.drop_now().await.expect("drop the scratch database");
    }
}

/// Two stores on one database: the second start finds the schema current, and what
/// one wrote the other reads.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_nodes_share_one_schema() {
    let Some(admin) = common::postgres().await else { return };
    let db = ScratchDatabase::create(&admin).await.expect("scratch database");
    let (a, b) = tokio::join!(PgStore::with_config(db.config.clone()), PgStore::with_config(db.config.clone()));
    let (a, b) = (a.expect("first node"), b.expect("second node, started at the same time"));
    a.kv_put("k", "from a").await.expect("put");
    assert_eq!(b.kv_get("k").await.expect("get").as_deref(), Some("from a"));
    a.close();
    b.close();
    db.drop_now().await.expect("drop");
}

/// Two nodes claiming from one queue at once (`FOR UPDATE SKIP LOCKED`) never take the
/// same row, never wait on each other into a deadlock, and leave nothing behind.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_concurrent_claims_never_share_a_row() {
    use sirena::alerts::{AlertKind, Event, EventDetail, EventId, Priority, Transition};
    use sirena::channels::ChannelKind;
    use sirena::messages::Lang;
    use sirena::regions::RegionId;
    use sirena::store::{Audience, Claim, Import, NodeId, now_ms};

    let Some(admin) = common::postgres().await else { return };
    let db = ScratchDatabase::create(&admin).await.expect("scratch database");
    let a = Arc::new(PgStore::with_config(db.config.clone()).await.expect("node a"));
    let b = Arc::new(PgStore::with_config(db.config.clone()).await.expect("node b"));
    let n = 3_000;
    let city = RegionId::parse(common::KHARKIV_CITY).expect("region");
    let rows = (0..n)
        .map(|i| Import {
            kind: ChannelKind::TelegramChat,
            address: format!("{}", 5_000_000 + i),
            lang: Lang::Uk,
            places: vec![city.clone()],
        })
        .collect();
    a.import(rows).await.expect("import");
    let ids: Vec<i64> = a.active_places().await.expect("places").into_iter().map(|(s, _)| s).collect();
    let at = chrono::DateTime::from_timestamp(1_700_000_000, 0).unwrap_or_default();
    let event = Event {
        id: EventId("air_raid:UA63000000000041885:race:started".into()),
        kind: AlertKind::AirRaid,
        transition: Transition::Started,
        revision: 1,
        targets: vec![city],
        reach: Default::default(),
        at,
        priority: Priority::OtherStart,
        detail: EventDetail::Alert {
            started_at: at,
            raw_kind: None,
            subject: None,
            level: None,
            threats: vec![],
            texts: vec![],
        },
    };
    // Every delivery a chat of its own, and half the chats a second row, so the
    // claims race for chats as well as rows.
    assert_eq!(a.enqueue(&event, Audience::Subscribers(ids.clone()), None).await.expect("enqueue").deliveries, n);
    let mut second = event.clone();
    second.id = EventId("air_raid:UA63000000000041885:race2:started".into());
    a.enqueue(&second, Audience::Subscribers(ids[..n / 2].to_vec()), None).await.expect("enqueue");
    let total = n + n / 2;
    let drain = |store: Arc<PgStore>, node: i64| async move {
        let mut got = Vec::new();
        loop {
            let now = now_ms();
            let claim = Claim {
                kind: ChannelKind::TelegramChat,
                priorities: Priority::MandatoryEvacuation..=Priority::Info,
                chats: 25,
                busy: vec![],
                node: NodeId(node),
                now_ms: now,
                lease_until_ms: now + 60_000,
            };
            let rows = store.claim(claim).await.expect("claim");
            if rows.is_empty() {
                return got;
            }
            got.extend(rows.into_iter().map(|r| r.key));
        }
    };
    let (got_a, got_b) = tokio::join!(drain(a.clone(), 1), drain(b.clone(), 2));
    let mut all: Vec<_> = got_a.iter().chain(&got_b).copied().collect();
    all.sort();
    let claimed = all.len();
    all.dedup();
    assert_eq!(all.len(), claimed, "a row was claimed twice");
    assert_eq!(claimed, total, "every row claimed once: a {} + b {}", got_a.len(), got_b.len());
    assert!(!got_a.is_empty() && !got_b.is_empty(), "both nodes claimed (a {}, b {})", got_a.len(), got_b.len());
    let held = a.leases().await.expect("leases");
    assert_eq!(held.iter().filter(|(_, n)| *n == NodeId(1)).count(), got_a.len());
    a.close();
    b.close();
    db.drop_now().await.expect("drop");
}

/// A database that does not exist or refuses us will not come back by retrying; a
/// server that is down may.
#[tokio::test]
async fn postgres_errors_say_whether_retrying_helps() {
    let Some(admin) = common::postgres().await else { return };
    let mut missing = sirena::store::postgres::parse_url(&admin).expect("admin url");
    missing.dbname("sirena_no_such_database");
    let e = PgStore::with_config(missing).await.expect_err("no such database");
    assert!(e.is_permanent(), "a missing database is permanent: {e}");
    assert!(e.to_string().contains("3D000"), "the SQLSTATE is shown: {e}");
    let mut down = sirena::store::postgres::parse_url(&admin).expect("admin url");
    // Nothing listens on port 1 of loopback: connection refused.
    down.port(1);
    let e = PgStore::with_config(down).await.expect_err("nothing listens");
    assert!(!e.is_permanent(), "a server that is down may come back: {e}");
}
