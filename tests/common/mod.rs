//! Helpers shared by the end-to-end tests. Each test crate uses a different subset.
#![allow(dead_code)]

pub mod child;
pub mod telegram;

use std::time::Duration;

use sirena::alerts::{AlertKind, Transition};
use sirena::daemon::Fanout;
use sirena::demo::Harness;
use sirena::sim::telegram::SentMessage;

/// Copies a directory tree (a config directory into a scratch one).
pub fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).expect("create dir");
    for entry in std::fs::read_dir(from).expect("read dir") {
        let entry = entry.expect("dir entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("file type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy file");
        }
    }
}

/// The reference data beside the checkout (`../shared/data`). Without it a test prints
/// `SKIP` and passes, unless `SIRENA_REQUIRE_SHARED=1` (as in CI), which makes its
/// absence a failure.
pub fn shared_data() -> Option<std::path::PathBuf> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data");
    if dir.is_dir() {
        return Some(dir);
    }
    if std::env::var("SIRENA_REQUIRE_SHARED").is_ok_and(|v| v == "1") {
        panic!("SIRENA_REQUIRE_SHARED=1 but {} does not exist", dir.display());
    }
    println!("SKIP: ../shared/data not found");
    None
}

/// A fresh copy of the shipped config as git tracks it (the embedded copy, which
/// `config::demo_embeds_every_config_file_unchanged` holds equal to the tracked files),
/// at `<tmp>/config`. Tests never read `config/` itself: an operator following the
/// README leaves generated and local files there (`sirena regions import`).
pub fn shipped_copy() -> (tempfile::TempDir, std::path::PathBuf) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("config");
    sirena::demo::write_embedded_config(&dir).expect("write the shipped config");
    (tmp, dir)
}

/// The shipped config, loaded from a [`shipped_copy`].
pub fn shipped() -> sirena::config::Config {
    let (_tmp, dir) = shipped_copy();
    sirena::config::load(&dir).unwrap_or_else(|e| panic!("shipped config has errors:\n{e}"))
}

/// Failure bound for anything event-driven; never reached when things work.
pub const WAIT: Duration = Duration::from_secs(30);
pub const KHARKIV_CITY: &str = "UA63120270010096107";
pub const KHARKIV_OBLAST: &str = "UA63000000000041885";
pub const KINDRASHIVKA: &str = "UA63080070010082928";
pub const KINDRASHIVKA_HROMADA: &str = "UA63080070000080622";

/// Polls `cond` until it holds; `what` names it in the failure.
pub async fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while !cond() {
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

pub fn started(kind: AlertKind) -> impl Fn(&Fanout) -> bool {
    move |f: &Fanout| f.event.kind == kind && f.event.transition == Transition::Started
}

pub fn ended(kind: AlertKind) -> impl Fn(&Fanout) -> bool {
    move |f: &Fanout| f.event.kind == kind && f.event.transition == Transition::Ended
}

pub fn texts(messages: &[SentMessage]) -> Vec<&str> {
    messages.iter().map(|m| m.text.as_str()).collect()
}

/// Every chat in `chats` got exactly `n` messages.
pub fn each_got(h: &Harness, chats: impl IntoIterator<Item = i64>, n: usize) {
    for chat in chats {
        let got = h.telegram.sent_to(chat);
        assert_eq!(got.len(), n, "chat {chat}: {:?}", texts(&got));
    }
}

/// The PostgreSQL server's administrator URL (`SIRENA_TEST_POSTGRES`, else
/// `postgres://postgres@127.0.0.1:5432/postgres`) when one answers. Without one a test
/// prints `SKIP` and passes, unless `SIRENA_REQUIRE_POSTGRES=1` (as in CI), which
/// makes its absence a failure.
pub async fn postgres() -> Option<String> {
    let url = sirena::store::postgres::scratch::admin_url();
    match sirena::store::postgres::scratch::reachable(&url).await {
        Ok(()) => Some(url),
        Err(e) => {
            let shown = sirena::store::postgres::redact_url(&url);
            if std::env::var("SIRENA_REQUIRE_POSTGRES").is_ok_and(|v| v == "1") {
                panic!("SIRENA_REQUIRE_POSTGRES=1 but no PostgreSQL answers at {shown}: {e}");
            }
            println!("SKIP: no PostgreSQL at {shown} ({e}); set SIRENA_TEST_POSTGRES to point at one");
            None
        }
    }
}
