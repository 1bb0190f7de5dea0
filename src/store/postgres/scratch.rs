//! Throwaway databases on a PostgreSQL server, for tests and benchmarks: each one is
//! created empty from an administrator's URL and dropped when done. Databases left by
//! a process that died (a failed test) are dropped by the next one that starts.

use std::time::Duration;

use tokio_postgres::NoTls;

use super::parse_url;
use crate::store::StoreError;

/// The server the tests use unless `SIRENA_TEST_POSTGRES` names another.
pub const DEFAULT_ADMIN_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// Name prefix of every scratch database: `sirena_scratch_<pid>_<n>`.
const PREFIX: &str = "sirena_scratch_";

/// The administrator URL from `SIRENA_TEST_POSTGRES`, or [`DEFAULT_ADMIN_URL`].
pub fn admin_url() -> String {
    std::env::var("SIRENA_TEST_POSTGRES").ok().filter(|v| !v.trim().is_empty()).unwrap_or(DEFAULT_ADMIN_URL.to_owned())
}

/// A database created for one test; [`ScratchDatabase::drop_now`] removes it.
#[derive(Debug)]
pub struct ScratchDatabase {
    admin: tokio_postgres::Config,
    pub name: String,
    /// The database's own config (the admin's with this database).
    pub config: tokio_postgres::Config,
}

/// Runs `work` on a connection of its own, driving the connection alongside it (no
/// task is spawned); the connection ends with `work`.
async fn with_client<T>(
    config: &tokio_postgres::Config,
    work: impl AsyncFnOnce(&tokio_postgres::Client) -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    let (client, connection) = config.connect(NoTls).await?;
    let work = async move {
        let r = work(&client).await;
        drop(client);
        r
    };
    let (r, ended) = tokio::join!(work, connection);
    if let Err(e) = ended {
        tracing::debug!(error = %e, "scratch admin connection ended");
    }
    r
}

/// True when a server answers at `admin_url` within a few seconds.
pub async fn reachable(admin_url: &str) -> Result<(), StoreError> {
    let mut config = parse_url(admin_url)?;
    config.connect_timeout(Duration::from_secs(3));
    with_client(&config, async |client| {
        client.simple_query("SELECT 1").await?;
        Ok(())
    })
    .await
}

impl ScratchDatabase {
    /// Creates an empty database on the server at `admin_url`.
    pub async fn create(admin_url: &str) -> Result<ScratchDatabase, StoreError> {
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let admin = parse_url(admin_url)?;
        let name = format!("{PREFIX}{}_{}", std::process::id(), N.fetch_add(1, std::sync::atomic::Ordering::Relaxed));
        with_client(&admin, async |client| {
            drop_orphans(client).await;
            client.batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).await?;
            client.batch_execute(&format!("CREATE DATABASE {name}")).await?;
            Ok(())
        })
        .await?;
        let mut config = admin.clone();
        config.dbname(&name);
        Ok(ScratchDatabase { admin, name, config })
    }

    /// The database's URL-less config as a key=value string a `sirena.toml` can hold.
    pub fn url(&self) -> String {
        let host = match self.config.get_hosts().first() {
            Some(tokio_postgres::config::Host::Tcp(h)) => h.clone(),
            #[cfg(unix)]
            Some(tokio_postgres::config::Host::Unix(p)) => p.display().to_string(),
            None => "127.0.0.1".to_owned(),
        };
        let port = self.config.get_ports().first().copied().unwrap_or(5432);
        let user = self.config.get_user().unwrap_or("postgres");
        let password =
            self.config.get_password().map(|p| format!(":{}", String::from_utf8_lossy(p))).unwrap_or_default();
        format!("postgres://{user}{password}@{host}:{port}/{}", self.name)
    }

    /// Drops the database, ending whatever is still connected to it.
    pub async fn drop_now(self) -> Result<(), StoreError> {
        let sql = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name);
        with_client(&self.admin, async |client| Ok(client.batch_execute(&sql).await?)).await
    }
}

/// Drops scratch databases whose process is gone (best effort: another user's running
/// tests on the same server keep theirs, since their process still exists here or
/// the name's pid is alive).
async fn drop_orphans(client: &tokio_postgres::Client) {
    let Ok(rows) =
        client.query("SELECT datname::text FROM pg_database WHERE datname LIKE $1", &[&format!("{PREFIX}%")]).await
    else {
        return;
    };
    for r in rows {
        let Ok(name) = r.try_get::<_, String>(0) else { continue };
        let pid = name.strip_prefix(PREFIX).and_then(|rest| rest.split('_').next()).and_then(|p| p.parse::<u32>().ok());
        let alive = pid.is_some_and(|p| std::path::Path::new(&format!("/proc/{p}")).exists());
        if !alive {
            let _ = client.batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).await;
        }
    }
}
