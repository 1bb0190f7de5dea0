//! The store conformance suite over every implementation (`sirena::store::conformance`).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use sirena::store::{SqliteStore, Store, conformance};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_on_a_file_conforms() {
    let dir = tempfile::tempdir().expect("tempdir");
    let n = AtomicUsize::new(0);
    conformance::run(|| {
        let path = dir.path().join(format!("store-{}.db", n.fetch_add(1, Ordering::Relaxed)));
        Arc::new(SqliteStore::open(&path).expect("open")) as Arc<dyn Store>
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_in_memory_conforms() {
    conformance::run(|| Arc::new(SqliteStore::open_in_memory().expect("open")) as Arc<dyn Store>).await;
}
