//! The store's files hold chat ids, phone numbers and home villages: only the daemon's
//! user may read them. The database and its `-wal` and `-shm` companions are made
//! 0600 (SQLite creates the companions with the database file's mode), and a state
//! directory that does not exist yet is created 0700.

use std::path::{Path, PathBuf};

use super::StoreError;

/// Prepares `path` for SQLite: creates missing parent directories 0700, creates the
/// database file 0600 if it is missing, and takes group and other access away from an
/// existing one and its companions (files the spine created 0644). An existing
/// directory is left as it is, but one that others may enter is logged.
pub(super) fn prepare(path: &Path) -> Result<(), StoreError> {
    let err = |p: &Path| {
        let p = p.to_owned();
        move |source| StoreError::File { path: p, source }
    };
    let parent = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    if !parent.exists() {
        create_private_dir(parent).map_err(err(parent))?;
    } else {
        warn_if_open(parent);
    }
    create_private_file(path).map_err(err(path))?;
    for companion in [suffixed(path, "-wal"), suffixed(path, "-shm"), suffixed(path, "-journal")] {
        if companion.exists() {
            restrict(&companion).map_err(err(&companion))?;
        }
    }
    Ok(())
}

fn suffixed(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

#[cfg(unix)]
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir)
}

#[cfg(not(unix))]
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)
}

#[cfg(unix)]
fn create_private_file(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    match std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => restrict(path),
        Err(e) => Err(e),
    }
}

#[cfg(not(unix))]
fn create_private_file(_: &Path) -> std::io::Result<()> {
    Ok(())
}

/// Clears the group and other bits of an existing file.
#[cfg(unix)]
fn restrict(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path)?.permissions().mode();
    if mode & 0o077 != 0 {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode & 0o700))?;
        tracing::warn!(file = %path.display(), was = format!("{:o}", mode & 0o777), "the store file was readable by others; now 0600");
    }
    Ok(())
}

#[cfg(not(unix))]
fn restrict(_: &Path) -> std::io::Result<()> {
    Ok(())
}

#[cfg(unix)]
fn warn_if_open(dir: &Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(m) = std::fs::metadata(dir) {
        let mode = m.permissions().mode();
        if mode & 0o077 != 0 {
            tracing::info!(
                dir = %dir.display(),
                mode = format!("{:o}", mode & 0o777),
                "the store's directory is open to other users (the files themselves are 0600); a state directory is best 0700"
            );
        }
    }
}

#[cfg(not(unix))]
fn warn_if_open(_: &Path) {}

#[cfg(all(test, unix))]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::super::SqliteStore;
    use super::*;

    fn mode(p: &Path) -> u32 {
        std::fs::metadata(p).expect("metadata").permissions().mode() & 0o777
    }

    #[tokio::test]
    async fn a_new_store_is_0600_in_a_new_0700_directory() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let state = tmp.path().join("var/lib/sirena");
        let db = state.join("sirena.db");
        let store = SqliteStore::open(&db).expect("open");
        // A write, so the WAL and shared-memory files exist too.
        crate::store::Store::kv_put(&store, "k", "v").await.expect("write");
        assert_eq!(mode(&state), 0o700, "the state directory");
        assert_eq!(mode(&tmp.path().join("var/lib")), 0o700, "every directory created for it");
        for f in [db.clone(), suffixed(&db, "-wal"), suffixed(&db, "-shm")] {
            assert!(f.exists(), "{} exists", f.display());
            assert_eq!(mode(&f), 0o600, "{}", f.display());
        }
    }

    #[test]
    fn an_existing_world_readable_store_is_tightened_and_its_directory_left_alone() {
        let tmp = tempfile::tempdir().expect("tempdir");
        std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o755)).expect("chmod dir");
        let db = tmp.path().join("sirena.db");
        drop(SqliteStore::open(&db).expect("create"));
        let wal = suffixed(&db, "-wal");
        std::fs::write(&wal, b"").expect("wal");
        for f in [&db, &wal] {
            std::fs::set_permissions(f, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        }
        prepare(&db).expect("prepare");
        assert_eq!((mode(&db), mode(&wal)), (0o600, 0o600));
        drop(SqliteStore::open(&db).expect("reopen"));
        assert_eq!(mode(&db), 0o600);
        assert_eq!(mode(tmp.path()), 0o755, "a directory the operator made is theirs");
    }

    #[test]
    fn a_directory_that_cannot_be_created_is_a_file_error_naming_it() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let blocker = tmp.path().join("not-a-dir");
        std::fs::write(&blocker, b"").expect("file");
        match SqliteStore::open(&blocker.join("state/sirena.db")) {
            Err(StoreError::File { path, .. }) => assert_eq!(path, blocker.join("state")),
            other => panic!("expected a file error, got {other:?}"),
        }
    }
}
