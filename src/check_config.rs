//! `sirena check-config`: the config, then the store the daemon would use, checked the
//! way the daemon's start needs them, so systemd's `ExecStartPre` fails where the start
//! would. It creates and migrates nothing.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::config::{self, Config, StoreLocation};
use crate::messages::plural::count;

/// The longest `check-config` waits for PostgreSQL (the client's own connect limit is
/// 5 s; this bounds the query after it too).
const PG_TIMEOUT: Duration = Duration::from_secs(8);

/// Checks the config in `dir` and its store, printing every finding; `false` means
/// exit 1.
pub async fn run(dir: &Path) -> bool {
    if !dir.join("sirena.toml").is_file() {
        println!("{} has no sirena.toml: is this a config directory?", dir.display());
        return false;
    }
    let config = match config::load(dir) {
        Ok(c) => c,
        Err(errors) => {
            for e in &errors.0 {
                println!("{e}");
            }
            eprintln!("{} in {}", count(errors.0.len(), "error", "errors"), dir.display());
            return false;
        }
    };
    config::location::announce(&config);
    for n in &config.notes {
        println!("{n}");
    }
    for w in config::warnings::warnings(&config) {
        println!("{w}");
    }
    if let Err(why) = store_usable(&config) {
        println!("{why}");
        return false;
    }
    match sms_residents(&config).await {
        Ok(n) => {
            if let Some(w) = config::warnings::sms_without_gateway(&config, n) {
                println!("{w}");
            }
        }
        Err(why) => {
            println!("{why}");
            return false;
        }
    }
    println!(
        "{}: ok ({}, {})",
        dir.display(),
        count(config.tree.len(), "region", "regions"),
        count(config.orders.len(), "evacuation order", "evacuation orders")
    );
    true
}

/// Whether the daemon could open its SQLite store: the file's directory exists and this
/// user may write it (and the file, when there is one). PostgreSQL is checked by
/// [`sms_residents`], which connects.
fn store_usable(config: &Config) -> Result<(), String> {
    let StoreLocation::Sqlite(path) = config.store_location() else { return Ok(()) };
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
        _ => PathBuf::from("."),
    };
    let store = config::location::store_line(config);
    if !parent.is_dir() {
        return Err(format!(
            "error: the store's directory {} does not exist or is not a directory ({store}); the daemon would not \
             start",
            parent.display()
        ));
    }
    use rustix::fs::{Access, access};
    if let Err(e) = access(&parent, Access::WRITE_OK | Access::EXEC_OK) {
        return Err(format!(
            "error: the store's directory {} cannot be written by this user ({e}; {store}); the daemon would not \
             start",
            parent.display()
        ));
    }
    if path.exists()
        && let Err(e) = access(&path, Access::READ_OK | Access::WRITE_OK)
    {
        return Err(format!(
            "error: the store {} cannot be read and written by this user ({e}); the daemon would not start",
            path.display()
        ));
    }
    Ok(())
}

/// SQL counting the active SMS residents; the same on both backends.
const SMS_RESIDENTS: &str = "SELECT count(*) FROM subscribers WHERE channel = 'sms' AND active";

/// How many SMS residents the store holds, read without creating or migrating it: a
/// SQLite file opened read-only (none yet: 0), PostgreSQL by one connection. An error
/// (in words) when PostgreSQL cannot be reached: the daemon would not start either.
pub(crate) async fn sms_residents(config: &Config) -> Result<u64, String> {
    match config.store_location() {
        StoreLocation::Sqlite(path) => sqlite_sms(&path),
        StoreLocation::Postgres { url, password_env } => postgres_sms(&url, password_env.as_deref()).await,
    }
}

fn sqlite_sms(path: &Path) -> Result<u64, String> {
    if !path.exists() {
        return Ok(0);
    }
    use rusqlite::OpenFlags;
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let read = rusqlite::Connection::open_with_flags(path, flags)
        .and_then(|c| c.query_row(SMS_RESIDENTS, [], |r| r.get::<_, i64>(0)));
    match read {
        Ok(n) => Ok(u64::try_from(n).unwrap_or_default()),
        // A file the daemon has not laid out yet holds nobody.
        Err(e) if e.to_string().contains("no such table") => Ok(0),
        Err(e) => Err(format!("error: the store {} cannot be read: {e}", path.display())),
    }
}

async fn postgres_sms(url: &str, password_env: Option<&str>) -> Result<u64, String> {
    let shown = crate::store::postgres::redact_url(url);
    let mut pg = crate::store::postgres::parse_url(url).map_err(|e| format!("error: [store] url {shown}: {e}"))?;
    if let Some(var) = password_env {
        let password =
            config::secret::Secret::from_env(var).map_err(|e| format!("error: the store's password: {e}"))?;
        pg.password(password.expose());
    }
    let unreachable = |e: &dyn std::fmt::Display| {
        format!("error: the store PostgreSQL {shown} cannot be reached ({e}); the daemon would not start")
    };
    let ask = async {
        let (client, connection) = pg.connect(tokio_postgres::NoTls).await.map_err(|e| unreachable(&e))?;
        // The connection does the IO while the query waits on it.
        tokio::select! {
            r = connection => Err(unreachable(&r.err().map_or("closed".to_owned(), |e| e.to_string()))),
            r = client.query_one(SMS_RESIDENTS, &[]) => match r {
                Ok(row) => Ok(u64::try_from(row.get::<_, i64>(0)).unwrap_or_default()),
                // A database the daemon has not laid out yet holds nobody.
                Err(e) if e.code() == Some(&tokio_postgres::error::SqlState::UNDEFINED_TABLE) => Ok(0),
                Err(e) => Err(format!("error: the store PostgreSQL {shown} cannot be read: {e}")),
            },
        }
    };
    tokio::time::timeout(PG_TIMEOUT, ask).await.unwrap_or_else(|_| Err(unreachable(&"no answer within 8 s")))
}
