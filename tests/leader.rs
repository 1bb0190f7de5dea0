//! Leadership on PostgreSQL (`sirena::leader`): one holder at a time, and a holder that
//! loses the database stops before anyone else can start.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use sirena::leader::{Candidate, Lost};
use sirena::store::NodeId;
use sirena::store::postgres::scratch::ScratchDatabase;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::Instant;

const TAKEOVER: Duration = Duration::from_secs(3);

async fn terminate(admin: &str, pid: i32) {
    let config = sirena::store::postgres::parse_url(admin).expect("admin url");
    let (client, conn) = config.connect(tokio_postgres::NoTls).await.expect("admin connection");
    let work = async move {
        let row = client.query_one("SELECT pg_terminate_backend($1)", &[&pid]).await.expect("terminate");
        assert!(row.get::<_, bool>(0), "backend {pid} was there to terminate");
    };
    tokio::select! {
        () = work => {}
        _ = conn => panic!("admin connection ended"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_leader_and_a_terminated_backend_hands_over() {
    let Some(admin) = common::postgres().await else { return };
    let db = ScratchDatabase::create(&admin).await.expect("scratch database");
    let a = Candidate::new(db.config.clone(), TAKEOVER, NodeId(1));
    let b = Arc::new(Candidate::new(db.config.clone(), TAKEOVER, NodeId(2)));
    let mut held_a = a.acquire().await;
    let pid = held_a.backend_pid().await.expect("pid");
    let b_task = {
        let b = b.clone();
        tokio::spawn(async move {
            let held = b.acquire().await;
            (held, Instant::now())
        })
    };
    // B asks again and again while A holds: it must not get the lock.
    common::wait_until("b to ask three times", || b.tries() >= 3).await;
    assert!(!b_task.is_finished(), "a second node became leader while the first held the lock");
    // The leader's backend is killed (a partition as the server sees it).
    let lost_a = {
        let terminated = terminate(&admin, pid);
        let lost = held_a.lost();
        let (_, lost) = tokio::join!(terminated, async {
            let l = lost.await;
            (l, Instant::now())
        });
        lost
    };
    assert!(matches!(lost_a.0, Lost::Connection(_) | Lost::Heartbeat(_)), "{:?}", lost_a.0);
    let (_held_b, b_at) = tokio::time::timeout(TAKEOVER * 2, b_task).await.expect("b takes over").expect("task");
    assert!(lost_a.1 <= b_at, "the old leader knew it had lost before the new one started");
    assert!(b_at - lost_a.1 <= TAKEOVER, "takeover within the bound: {:?}", b_at - lost_a.1);
    drop(_held_b);
    db.drop_now().await.expect("drop");
}

/// A TCP relay to the database that can be frozen: bytes stop flowing both ways but
/// the connections stay open, as in a network partition.
async fn freezable_relay(target: std::net::SocketAddr) -> (std::net::SocketAddr, Arc<AtomicBool>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let frozen = Arc::new(AtomicBool::new(false));
    let f = frozen.clone();
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let Ok(server) = TcpStream::connect(target).await else { continue };
            let (cr, cw) = client.into_split();
            let (sr, sw) = server.into_split();
            tokio::spawn(pump(cr, sw, f.clone()));
            tokio::spawn(pump(sr, cw, f.clone()));
        }
    });
    (addr, frozen)
}

async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    frozen: Arc<AtomicBool>,
) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        if frozen.load(Ordering::SeqCst) {
            // Swallowed: a partition loses what was on the wire and holds the rest.
            std::future::pending::<()>().await;
        }
        if to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_cut_off_from_the_database_stops_before_the_standby_starts() {
    let Some(admin) = common::postgres().await else { return };
    let db = ScratchDatabase::create(&admin).await.expect("scratch database");
    let host = db.config.get_ports().first().copied().unwrap_or(5432);
    let (relay, frozen) = freezable_relay(std::net::SocketAddr::from(([127, 0, 0, 1], host))).await;
    // A config of its own: `host`/`port` on a copy would add a second address after
    // the database's, not replace it.
    let mut via_relay = tokio_postgres::Config::new();
    via_relay.host("127.0.0.1").port(relay.port()).dbname(&db.name);
    via_relay.user(db.config.get_user().unwrap_or("postgres"));
    if let Some(p) = db.config.get_password() {
        via_relay.password(p);
    }
    let a = Candidate::new(via_relay, TAKEOVER, NodeId(1));
    let b = Arc::new(Candidate::new(db.config.clone(), TAKEOVER, NodeId(2)));
    let mut held_a = a.acquire().await;
    let b_task = {
        let b = b.clone();
        tokio::spawn(async move {
            let held = b.acquire().await;
            (held, Instant::now())
        })
    };
    common::wait_until("b to ask twice", || b.tries() >= 2).await;
    assert!(!b_task.is_finished(), "b led while a held the lock");
    let cut = Instant::now();
    frozen.store(true, Ordering::SeqCst);
    let lost = held_a.lost().await;
    let a_stopped = Instant::now();
    assert!(matches!(lost, Lost::Silent(_)), "the cut-off leader stopped on silence: {lost:?}");
    let (_held_b, b_at) = tokio::time::timeout(TAKEOVER * 2, b_task).await.expect("b takes over").expect("task");
    assert!(a_stopped < b_at, "the cut-off leader stopped before the standby started");
    assert!(b_at - cut <= TAKEOVER + a.timings().beat, "takeover within the bound: {:?}", b_at - cut);
    drop(held_a);
    drop(_held_b);
    db.drop_now().await.expect("drop");
}
