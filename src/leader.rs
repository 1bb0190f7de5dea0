//! Leadership among several nodes on one PostgreSQL database (DESIGN §15).
//!
//! Exactly one node at a time polls the feeds, runs the pipeline, long-polls Telegram
//! and runs the lanes: the one that holds a **session advisory lock** on a dedicated
//! connection of its own (never a pooled one: a pool would hand the session, and the
//! lock with it, to someone else, or recycle it). Whoever holds the lock is the leader;
//! the others try for it every `takeover / 10`.
//!
//! Fencing, with `T` the configured takeover bound (default 10 s):
//! - the leader runs a heartbeat (`SELECT 1`) every `T / 10` with a time limit of
//!   `T / 10`; a heartbeat that fails, times out, or a connection that ends is the loss
//!   of leadership, and so is no good heartbeat for `T * 0.4` — the node stops its
//!   leader's tasks at once ([`Held::lost`] resolves);
//! - the server ends the leader's session when it has been idle for `T * 0.6`
//!   (`idle_session_timeout`; a live leader is never idle that long), which frees the
//!   lock: a leader cut off from the database has stopped itself `T * 0.2` before any
//!   standby can hold the lock;
//! - a leader that dies (SIGKILL, a crash) closes its socket with the process, so the
//!   server frees the lock at once and a standby takes over within `T / 10`.
//!
//! A standby takes over within `T * 0.6 + T / 10 ≤ T` of the leader's last heartbeat.
//! Work a dead leader had claimed stays claimed until its lease expires (the store's
//! leases are the fence for delivery rows: a late answer from a stopped node cannot
//! finish a row another node holds).

use std::pin::Pin;
use std::time::Duration;

use tokio::time::Instant;
use tokio_postgres::{Client, Connection, NoTls, Socket, tls::NoTlsStream};

use crate::store::NodeId;

/// Advisory lock key of leadership ("sirena" in ASCII, then 2).
pub const LEADER_LOCK: i64 = 0x7369_7265_6e61_0002;

type Conn = Pin<Box<Connection<Socket, NoTlsStream>>>;

/// The timings derived from the takeover bound.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timings {
    /// How often a standby tries for the lock, and the leader's heartbeat period.
    pub beat: Duration,
    /// The leader stops when it has had no good heartbeat for this long.
    pub self_fence: Duration,
    /// The server ends a session idle this long, freeing its lock.
    pub server_idle: Duration,
}

impl Timings {
    pub fn for_takeover(takeover: Duration) -> Timings {
        Timings { beat: takeover / 10, self_fence: takeover * 2 / 5, server_idle: takeover * 3 / 5 }
    }
}

/// Why leadership ended.
#[derive(Debug, thiserror::Error)]
pub enum Lost {
    #[error("the leader's database connection ended: {0}")]
    Connection(String),
    #[error("a heartbeat failed: {0}")]
    Heartbeat(String),
    #[error("no heartbeat answered for {0:?}")]
    Silent(Duration),
}

/// Tries for leadership on a connection of its own.
pub struct Candidate {
    config: tokio_postgres::Config,
    timings: Timings,
    node: NodeId,
    tries: std::sync::atomic::AtomicU64,
}

/// Leadership held: the connection with the lock. Dropping it closes the connection,
/// which releases the lock.
pub struct Held {
    client: Client,
    conn: Conn,
    timings: Timings,
    node: NodeId,
}

impl std::fmt::Debug for Held {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Held").field("node", &self.node).finish()
    }
}

/// Runs `fut` while driving `conn`; an ending connection is an error.
async fn on<T, E: std::fmt::Display>(conn: &mut Conn, fut: impl Future<Output = Result<T, E>>) -> Result<T, String> {
    tokio::select! {
        r = fut => r.map_err(|e| error_text(&e)),
        r = conn.as_mut() => Err(match r {
            Ok(()) => "closed".to_owned(),
            Err(e) => error_text(&e),
        }),
    }
}

fn error_text(e: &dyn std::fmt::Display) -> String {
    e.to_string()
}

fn pg_text(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{} ({})", db.message(), db.code().code()),
        None => match std::error::Error::source(e) {
            Some(cause) => format!("{e}: {cause}"),
            None => e.to_string(),
        },
    }
}

impl Candidate {
    pub fn new(config: tokio_postgres::Config, takeover: Duration, node: NodeId) -> Candidate {
        let mut config = config;
        config.application_name(format!("sirena leader candidate {}", node.0));
        config.connect_timeout(Timings::for_takeover(takeover).beat.max(Duration::from_secs(1)));
        Candidate { config, timings: Timings::for_takeover(takeover), node, tries: Default::default() }
    }

    /// How many times this candidate has asked for the lock.
    pub fn tries(&self) -> u64 {
        self.tries.load(std::sync::atomic::Ordering::Relaxed)
    }

    pub fn timings(&self) -> Timings {
        self.timings
    }

    /// Waits until this node holds the lock. Connection failures are logged and retried;
    /// this never returns an error.
    pub async fn acquire(&self) -> Held {
        let mut said_standby = false;
        loop {
            match self.try_session(&mut said_standby).await {
                Ok(held) => return held,
                Err(e) => {
                    tracing::warn!(error = %e, "leader election: no database session; retrying");
                    tokio::time::sleep(self.timings.beat).await;
                }
            }
        }
    }

    /// One session: set it up, then try for the lock every beat until it is ours or the
    /// session fails.
    async fn try_session(&self, said_standby: &mut bool) -> Result<Held, String> {
        let (client, conn) = self.config.connect(NoTls).await.map_err(|e| pg_text(&e))?;
        let mut conn: Conn = Box::pin(conn);
        let idle_ms = self.timings.server_idle.as_millis();
        // The server ends this session when it has heard nothing for `server_idle`:
        // that is what frees the lock of a leader cut off from the database. TCP
        // keepalives notice a dead peer on servers older than 14 (no idle timeout).
        let setup = format!(
            "SET idle_session_timeout = {idle_ms}; SET tcp_keepalives_idle = 1; \
             SET tcp_keepalives_interval = 1; SET tcp_keepalives_count = 2"
        );
        if let Err(e) = on(&mut conn, client.batch_execute(&setup)).await {
            tracing::warn!(error = %e, "the database has no idle_session_timeout (PostgreSQL < 14): a cut-off leader's lock is freed by TCP keepalives");
            on(&mut conn, client.batch_execute("SET tcp_keepalives_idle = 1; SET tcp_keepalives_count = 2")).await?;
        }
        loop {
            let got = on(&mut conn, client.query_one("SELECT pg_try_advisory_lock($1)", &[&LEADER_LOCK])).await?;
            let got: bool = got.try_get(0).map_err(|e| pg_text(&e))?;
            self.tries.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            if got {
                return Ok(Held { client, conn, timings: self.timings, node: self.node });
            }
            if !*said_standby {
                tracing::info!(node = self.node.0, "another node is the leader: standing by");
                *said_standby = true;
            }
            let pause = tokio::time::sleep(self.timings.beat);
            tokio::select! {
                () = pause => {}
                r = conn.as_mut() => return Err(format!("connection ended while standing by: {r:?}")),
            }
        }
    }
}

impl Held {
    /// Holds leadership until it is lost; resolves with why. Drop the future (and the
    /// `Held`) to give it up.
    pub async fn lost(&mut self) -> Lost {
        let mut last_ok = Instant::now();
        loop {
            let beat = tokio::time::timeout(self.timings.beat, self.client.simple_query("SELECT 1"));
            tokio::select! {
                r = self.conn.as_mut() => {
                    return Lost::Connection(match r { Ok(()) => "closed".into(), Err(e) => pg_text(&e) });
                }
                r = beat => match r {
                    Ok(Ok(_)) => last_ok = Instant::now(),
                    Ok(Err(e)) => return Lost::Heartbeat(pg_text(&e)),
                    Err(_) => tracing::warn!(waited = ?self.timings.beat, "leader heartbeat timed out"),
                },
            }
            if last_ok.elapsed() >= self.timings.self_fence {
                return Lost::Silent(last_ok.elapsed());
            }
            let pause = tokio::time::sleep_until(Instant::now() + self.timings.beat);
            tokio::select! {
                () = pause => {}
                r = self.conn.as_mut() => {
                    return Lost::Connection(match r { Ok(()) => "closed".into(), Err(e) => pg_text(&e) });
                }
            }
            if last_ok.elapsed() >= self.timings.self_fence {
                return Lost::Silent(last_ok.elapsed());
            }
        }
    }

    /// The server's process id of the leader's session (for `pg_terminate_backend` in
    /// tests, and for operators).
    pub async fn backend_pid(&mut self) -> Result<i32, String> {
        let row = on(&mut self.conn, self.client.query_one("SELECT pg_backend_pid()", &[])).await?;
        row.try_get(0).map_err(|e| pg_text(&e))
    }

    pub fn node(&self) -> NodeId {
        self.node
    }
}
