//! What a deployment relies on: the store lands in the state directory (systemd's
//! `StateDirectory=`, the Docker volume) and not beside a read-only `/etc/sirena`, its
//! files are private, and the log is plain text or JSON lines — no colour codes — when
//! it goes to a file or the journal. Each runs the real `sirena run` binary on a config
//! with no feeds and no Telegram, so no simulator is needed.

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_sirena");
/// Only a failure waits this long (a debug build on a busy machine loads the tree in a
/// few seconds).
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// A config directory at `root/etc/sirena/config` with the shipped regions and locales
/// and a `sirena.toml` of just `settings`.
fn config_dir(root: &Path, settings: &str) -> PathBuf {
    let dir = root.join("etc/sirena/config");
    sirena::demo::write_embedded_config(&dir).expect("config");
    std::fs::write(dir.join("sirena.toml"), settings).expect("sirena.toml");
    dir
}

/// `sirena run` with stderr piped (not a terminal), its log lines sent as they come.
struct Daemon {
    child: Child,
    lines: mpsc::Receiver<String>,
    log: Vec<String>,
}

impl Daemon {
    fn start(config: &Path, env: &[(&str, &str)]) -> Daemon {
        let mut cmd = Command::new(BIN);
        cmd.args(["run", "--config"])
            .arg(config)
            .env_remove("STATE_DIRECTORY")
            .env_remove("SIRENA_LOG_FORMAT")
            .env_remove("NO_COLOR")
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("sirena starts");
        let stderr = child.stderr.take().expect("stderr piped");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stderr).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        Daemon { child, lines, log: Vec::new() }
    }

    /// Waits for the log line that says the daemon runs.
    fn running(&mut self) {
        self.wait_for("sirena running");
    }

    /// Waits for a log line containing `what`; fails on exit or after [`START_TIMEOUT`].
    fn wait_for(&mut self, what: &str) {
        let deadline = std::time::Instant::now() + START_TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    let done = line.contains(what);
                    self.log.push(line);
                    if done {
                        return;
                    }
                }
                Err(_) => {
                    let _ = self.child.kill();
                    let exit = self.child.wait();
                    panic!("no log line with `{what}` ({exit:?}); log:\n{}", self.log.join("\n"));
                }
            }
        }
    }

    fn signal(&self, name: &str) {
        let pid = self.child.id().to_string();
        assert!(Command::new("kill").args([&format!("-{name}"), &pid]).status().expect("kill runs").success());
    }

    /// SIGTERM; the exit status and the whole log.
    fn stop(mut self) -> (std::process::ExitStatus, Vec<String>) {
        self.signal("TERM");
        // The reader thread ends when the daemon closes stderr, at exit.
        while let Ok(line) = self.lines.recv_timeout(START_TIMEOUT) {
            self.log.push(line);
        }
        let exit = self.child.wait().expect("wait");
        (exit, self.log)
    }
}

fn mode(p: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).unwrap_or_else(|e| panic!("{}: {e}", p.display())).permissions().mode() & 0o777
}

// ---------------------------------------------------------------- the state directory

#[test]
fn a_relative_store_path_goes_into_the_state_directory_when_there_is_one() {
    let config = sirena::config::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("config")).expect("shipped config");
    assert_eq!(config.store_path_in(None), Path::new(env!("CARGO_MANIFEST_DIR")).join("sirena.db"), "README's path");
    assert_eq!(config.store_path_in(Some(Path::new("/var/lib/sirena"))), Path::new("/var/lib/sirena/sirena.db"));
    // systemd lists several directories colon-separated when the unit names several.
    assert_eq!(
        config.store_path_in(Some(Path::new("/var/lib/sirena:/var/lib/other"))),
        Path::new("/var/lib/sirena/sirena.db")
    );
    assert_eq!(config.store_path_in(Some(Path::new(""))), config.store_path_in(None), "empty is unset");
    let mut absolute = config.clone();
    absolute.settings.store.path = PathBuf::from("/srv/sirena/alerts.db");
    assert_eq!(absolute.store_path_in(Some(Path::new("/var/lib/sirena"))), Path::new("/srv/sirena/alerts.db"));
}

#[test]
fn under_systemd_the_store_is_created_private_in_state_directory_not_under_etc() {
    let root = tempfile::tempdir().expect("tempdir");
    let config = config_dir(root.path(), "[store]\npath = \"sirena.db\"\n");
    let state = root.path().join("var/lib/sirena");
    let mut d = Daemon::start(&config, &[("STATE_DIRECTORY", state.to_str().expect("utf-8 path"))]);
    d.running();
    let (exit, log) = d.stop();
    assert!(exit.success(), "exit {exit:?}; log:\n{}", log.join("\n"));
    assert!(!root.path().join("etc/sirena/sirena.db").exists(), "a store under /etc/sirena");
    assert_eq!(mode(&state), 0o700, "the state directory");
    assert_eq!(mode(&state.join("sirena.db")), 0o600, "the database");
    let store = sirena::store::SqliteStore::open(&state.join("sirena.db")).expect("the store is there");
    drop(store);
}

// ---------------------------------------------------------------- signals

#[test]
fn sighup_right_after_the_start_reloads_the_config_and_sigterm_then_exits_0() {
    let root = tempfile::tempdir().expect("tempdir");
    let config = config_dir(root.path(), "[store]\npath = \"sirena.db\"\n");
    let mut d = Daemon::start(&config, &[]);
    d.running();
    // SIGHUP's default action is to terminate: the handler must be in place by now.
    d.signal("HUP");
    d.wait_for("SIGHUP: reloading config");
    // The start's own reload is generation 1; the SIGHUP's comes after it.
    d.wait_for("config reloaded generation=2");
    let (exit, log) = d.stop();
    assert!(exit.success(), "exit {exit:?}; log:\n{}", log.join("\n"));
}

// ---------------------------------------------------------------- the log

#[test]
fn the_log_on_a_pipe_has_no_colour_codes() {
    let root = tempfile::tempdir().expect("tempdir");
    let config = config_dir(root.path(), "[store]\npath = \"sirena.db\"\n");
    let mut d = Daemon::start(&config, &[]);
    d.running();
    let (exit, log) = d.stop();
    assert!(exit.success(), "exit {exit:?}");
    assert!(log.iter().any(|l| l.contains("no [[source]] configured")), "the warning is logged: {log:?}");
    assert!(log.iter().any(|l| l.contains("shutting down")), "{log:?}");
    let escapes: Vec<&String> = log.iter().filter(|l| l.contains('\u{1b}')).collect();
    assert!(escapes.is_empty(), "ANSI escapes in a log that is not a terminal: {escapes:?}");
}

#[test]
fn log_format_json_by_config_writes_one_json_object_per_line_and_the_environment_overrides_it() {
    let root = tempfile::tempdir().expect("tempdir");
    let config = config_dir(root.path(), "[store]\npath = \"sirena.db\"\n\n[log]\nformat = \"json\"\n");
    let mut d = Daemon::start(&config, &[]);
    d.running();
    let (exit, log) = d.stop();
    assert!(exit.success(), "exit {exit:?}");
    assert!(log.len() >= 3, "{log:?}");
    for line in &log {
        let v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not a JSON line ({e}): {line}"));
        assert!(v["timestamp"].is_string() && v["level"].is_string() && v["message"].is_string(), "{line}");
    }
    let warn = log.iter().find(|l| l.contains("no [[source]] configured")).expect("the warning");
    assert!(warn.contains("\"level\":\"WARN\""), "{warn}");

    let mut d = Daemon::start(&config, &[("SIRENA_LOG_FORMAT", "pretty")]);
    d.running();
    let (exit, log) = d.stop();
    assert!(exit.success(), "exit {exit:?}");
    assert!(log.iter().all(|l| serde_json::from_str::<serde_json::Value>(l).is_err()), "still JSON: {log:?}");
    assert!(log.iter().any(|l| l.contains(" WARN ") && l.contains("no [[source]] configured")), "{log:?}");
}

#[test]
fn a_bad_log_format_is_refused_with_where_it_was_written() {
    let root = tempfile::tempdir().expect("tempdir");
    let config = config_dir(root.path(), "[store]\npath = \"sirena.db\"\n");
    let out = Command::new(BIN)
        .args(["run", "--config"])
        .arg(&config)
        .env("SIRENA_LOG_FORMAT", "xml")
        .output()
        .expect("sirena runs");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("SIRENA_LOG_FORMAT") && stderr.contains("`xml`"), "{stderr}");

    std::fs::write(config.join("sirena.toml"), "[store]\npath = \"sirena.db\"\n\n[log]\nformat = \"xml\"\n")
        .expect("write");
    let out = Command::new(BIN).arg("check-config").arg(&config).output().expect("sirena runs");
    assert!(!out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("sirena.toml:5:") && stdout.contains("xml"), "{stdout}");
}
