//! Which config and which store a command uses, in one line for stderr: an operator who
//! runs `sirena preview` without the daemon's `STATE_DIRECTORY` reads another (empty)
//! store, and only this line tells them.

use std::fmt;
use std::path::{Path, PathBuf};

use super::{Config, StoreLocation};

/// The SQLite file, or the PostgreSQL URL with its password masked.
impl fmt::Display for StoreLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreLocation::Sqlite(path) => write!(f, "{}", absolute(path).display()),
            StoreLocation::Postgres { url, .. } => {
                write!(f, "PostgreSQL {}", crate::store::postgres::redact_url(url))
            }
        }
    }
}

/// `config DIR, store WHERE (why there)`: the one line every command that reads a
/// config and its store prints on stderr (and `sirena run` logs).
pub fn store_line(config: &Config) -> String {
    let location = config.store_location();
    let mut line = format!("config {}, store {location}", absolute(&config.dir).display());
    if let StoreLocation::Sqlite(path) = &location {
        let relative = config.settings.store.path.as_deref().is_none_or(Path::is_relative);
        let state = std::env::var_os("STATE_DIRECTORY").filter(|s| !s.is_empty());
        let mut why = Vec::new();
        match (relative, state) {
            (false, _) => {}
            (true, Some(_)) => why.push("in STATE_DIRECTORY"),
            (true, None) => why.push("beside the config directory: STATE_DIRECTORY is not set"),
        }
        if !path.exists() {
            why.push("not created yet, so empty");
        }
        if !why.is_empty() {
            line.push_str(&format!(" ({})", why.join("; ")));
        }
    }
    line
}

/// Prints [`store_line`] on stderr, where it stays out of a command's output (a CSV, a
/// table) but in front of the operator.
pub fn announce(config: &Config) {
    eprintln!("{}", store_line(config));
}

/// `path` made absolute against the working directory, for a line read out of context.
fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_owned())
}
