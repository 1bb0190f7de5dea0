//! The config watcher: file changes and SIGHUP become re-validated configs for the
//! pipeline, which applies only those that pass.

use std::path::PathBuf;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::config::{self, Config, ConfigErrors};

/// Watches the config directory and sends every changed, re-validated config. A burst
/// of file events (an editor's save) becomes one reload. SIGHUP forces a reload.
pub(super) struct ConfigWatcher {
    /// Kept alive for as long as the watch should last; `None` when the platform's
    /// watcher failed and only SIGHUP reloads.
    _watcher: Option<notify::RecommendedWatcher>,
    changes: mpsc::Receiver<()>,
    /// Installed with the watcher, while the daemon starts: SIGHUP's default action is
    /// to terminate, so a reload right after the start must already find it.
    hup: Option<HangupSignal>,
}

impl ConfigWatcher {
    pub(super) fn new(dir: &std::path::Path) -> ConfigWatcher {
        use notify::Watcher;
        let (tx, changes) = mpsc::channel::<()>(16);
        let watcher = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
            if res.is_ok_and(|e| !e.kind.is_access()) {
                // Full channel: a reload is already pending, which covers this change.
                let _ = tx.try_send(());
            }
        });
        let watcher = match watcher {
            Ok(mut w) => match w.watch(dir, notify::RecursiveMode::Recursive) {
                Ok(()) => Some(w),
                Err(e) => {
                    tracing::error!(error = %e, dir = %dir.display(), "cannot watch the config directory; reload with SIGHUP");
                    None
                }
            },
            Err(e) => {
                tracing::error!(error = %e, "cannot watch the config directory; reload with SIGHUP");
                None
            }
        };
        ConfigWatcher { _watcher: watcher, changes, hup: hangup_signal() }
    }

    pub(super) async fn run(
        mut self,
        dir: PathBuf,
        reloads: mpsc::Sender<Result<Config, ConfigErrors>>,
        cancel: CancellationToken,
    ) {
        let mut hup = self.hup.take();
        // One reload at once covers a change made between the caller's load and the
        // watch being set up; applying an unchanged config produces no events.
        let mut pending = true;
        loop {
            if !pending {
                tokio::select! {
                    () = cancel.cancelled() => return,
                    Some(()) = self.changes.recv() => {}
                    Some(()) = recv_opt(&mut hup) => tracing::info!("SIGHUP: reloading config"),
                }
                // Let the editor finish writing, then read once.
                tokio::select! {
                    () = cancel.cancelled() => return,
                    () = tokio::time::sleep(Duration::from_millis(200)) => {}
                }
            }
            pending = false;
            while self.changes.try_recv().is_ok() {}
            let loaded = config::load(&dir);
            if reloads.send(loaded).await.is_err() {
                return;
            }
        }
    }
}

#[cfg(unix)]
type HangupSignal = tokio::signal::unix::Signal;
#[cfg(not(unix))]
type HangupSignal = ();

#[cfg(unix)]
fn hangup_signal() -> Option<HangupSignal> {
    tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok()
}

#[cfg(not(unix))]
fn hangup_signal() -> Option<HangupSignal> {
    None
}

#[cfg(unix)]
async fn recv_opt(sig: &mut Option<tokio::signal::unix::Signal>) -> Option<()> {
    match sig {
        Some(s) => s.recv().await,
        None => std::future::pending().await,
    }
}

#[cfg(not(unix))]
async fn recv_opt(_: &mut Option<()>) -> Option<()> {
    std::future::pending().await
}
