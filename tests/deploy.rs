//! What a deployment relies on: the store lands in the state directory (systemd's
//! `StateDirectory=`, the Docker volume) and not beside a read-only `/etc/sirena`, its
//! files are private, and the log is plain text or JSON lines — no colour codes — when
//! it goes to a file or the journal. Each runs the real `sirena run` binary on a config
//! with no feeds and no Telegram, so no simulator is needed.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::child::Sirena as Daemon;

const BIN: &str = env!("CARGO_BIN_EXE_sirena");

/// A config directory at `root/etc/sirena/config` with the shipped regions and locales
/// and a `sirena.toml` of just `settings`.
fn config_dir(root: &Path, settings: &str) -> PathBuf {
    let dir = root.join("etc/sirena/config");
    sirena::demo::write_embedded_config(&dir).expect("config");
    std::fs::write(dir.join("sirena.toml"), settings).expect("sirena.toml");
    dir
}

fn mode(p: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).unwrap_or_else(|e| panic!("{}: {e}", p.display())).permissions().mode() & 0o777
}

// ---------------------------------------------------------------- the state directory

#[test]
fn a_relative_store_path_goes_into_the_state_directory_when_there_is_one() {
    let (tmp, dir) = common::shipped_copy();
    let config = sirena::config::load(&dir).expect("shipped config");
    assert_eq!(config.store_path_in(None), tmp.path().join("sirena.db"), "beside config/, the README's path");
    assert_eq!(config.store_path_in(Some(Path::new("/var/lib/sirena"))), Path::new("/var/lib/sirena/sirena.db"));
    // systemd lists several directories colon-separated when the unit names several.
    assert_eq!(
        config.store_path_in(Some(Path::new("/var/lib/sirena:/var/lib/other"))),
        Path::new("/var/lib/sirena/sirena.db")
    );
    assert_eq!(config.store_path_in(Some(Path::new(""))), config.store_path_in(None), "empty is unset");
    let mut absolute = config.clone();
    absolute.settings.store.path = Some(PathBuf::from("/srv/sirena/alerts.db"));
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
    d.wait_for("config reloaded: no order or region changed generation=2");
    let (exit, log) = d.stop();
    assert!(exit.success(), "exit {exit:?}; log:\n{}", log.join("\n"));
}

/// Issue 19: a reload that worked was logged at WARN as a Rust Debug dump of the
/// operators' notice. It is one INFO sentence naming what changed.
#[test]
fn a_reload_that_adds_an_order_is_logged_as_one_info_sentence_not_a_debug_dump() {
    let root = tempfile::tempdir().expect("tempdir");
    let config = config_dir(root.path(), "[store]\npath = \"sirena.db\"\n");
    let mut d = Daemon::start(&config, &[]);
    d.running();
    let kharkiv = config.join("regions/kharkiv.toml");
    let text = std::fs::read_to_string(&kharkiv).expect("kharkiv.toml");
    let order = "\n[[evacuation]]\nid = \"deploy-reload\"\nstatus = \"mandatory\"\ntargets = [\"UA63080070000080622\"]\n\
                 issued_at = 2023-11-06T08:00:00+02:00\n";
    std::fs::write(&kharkiv, format!("{text}{order}")).expect("write");
    d.wait_for("operator notice: the config reload above");
    let (exit, log) = d.stop();
    assert!(exit.success(), "exit {exit:?}; log:\n{}", log.join("\n"));
    let line = log
        .iter()
        .find(|l| l.contains("config reloaded: 1 order added (deploy-reload)"))
        .unwrap_or_else(|| panic!("no sentence: {}", log.join("\n")));
    assert!(line.contains(" INFO "), "{line}");
    let dumps: Vec<&String> = log.iter().filter(|l| l.contains("ConfigApplied") || l.contains("OrderAdded")).collect();
    assert!(dumps.is_empty(), "a Debug dump in the log: {dumps:?}");
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
    assert!(log.iter().any(|l| l.contains("no operators configured: every operator notice")), "{log:?}");
    let store = config.parent().expect("parent").join("sirena.db");
    let line = format!("store {} (beside the config directory: STATE_DIRECTORY is not set", store.display());
    assert!(log.iter().any(|l| l.contains(&line)), "the store is named: {log:?}");
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

// ---------------------------------------------------------------- the shipped files

fn deploy_file(name: &str) -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy").join(name)).expect("deploy file")
}

/// The values of `key=` lines in a unit file, in order.
fn unit_values<'a>(unit: &'a str, key: &str) -> Vec<&'a str> {
    unit.lines().filter_map(|l| l.trim().strip_prefix(key)?.strip_prefix('=')).collect()
}

fn seconds(s: &str) -> u64 {
    s.trim().trim_end_matches('s').parse().unwrap_or_else(|e| panic!("`{s}` is not seconds: {e}"))
}

#[test]
fn the_unit_validates_before_start_and_reload_stops_after_the_grace_and_keeps_state_private() {
    let unit = deploy_file("sirena.service");
    let one = |key: &str| -> &str {
        match unit_values(&unit, key)[..] {
            [v] => v,
            ref all => panic!("{key}= should be set once, is {all:?}"),
        }
    };
    assert!(one("ExecStartPre").ends_with("sirena check-config --config /etc/sirena/config"));
    assert_eq!(one("ExecStart"), "/usr/local/bin/sirena run --config /etc/sirena/config");
    let reload = unit_values(&unit, "ExecReload");
    assert!(reload.first().is_some_and(|c| c.contains("check-config")), "{reload:?}");
    assert!(reload.last().is_some_and(|c| c.contains("kill -HUP $MAINPID")), "{reload:?}");
    assert_eq!((one("Restart"), one("KillSignal")), ("on-failure", "SIGTERM"));
    assert_eq!((one("StateDirectory"), one("StateDirectoryMode")), ("sirena", "0700"));
    assert_eq!((one("ProtectSystem"), one("NoNewPrivileges")), ("strict", "true"));
    assert!(one("EnvironmentFile").starts_with("/etc/sirena/"));
    // Longer than the lanes' grace, with room for the store's last writes.
    assert!(seconds(one("TimeoutStopSec")) >= 2 * sirena::daemon::GRACE.as_secs(), "TimeoutStopSec");
    let compose = deploy_file("docker-compose.yml");
    let grace = compose.lines().find_map(|l| l.trim().strip_prefix("stop_grace_period:")).expect("stop_grace_period");
    assert!(seconds(grace) >= 2 * sirena::daemon::GRACE.as_secs(), "stop_grace_period");
}

#[test]
fn the_image_is_built_locked_in_one_stage_and_runs_as_a_user_in_another() {
    let dockerfile = deploy_file("Dockerfile");
    let froms = dockerfile.lines().filter(|l| l.starts_with("FROM ")).count();
    assert_eq!(froms, 2, "a build stage and a runtime stage");
    assert!(dockerfile.contains("cargo build --release --locked"));
    let user = dockerfile.lines().rev().find_map(|l| l.strip_prefix("USER ")).expect("USER");
    assert!(!user.starts_with("root") && !user.starts_with('0'), "runs as {user}");
    assert!(dockerfile.contains("ENV STATE_DIRECTORY=/data"), "the store in the volume");
    // The distroless image has no shell or curl: the healthcheck is the binary, in
    // exec form, on the config the image runs.
    let check = dockerfile.lines().find_map(|l| l.trim().strip_prefix("CMD [\"/usr/local/bin/sirena\", \"health\""));
    assert_eq!(check, Some(", \"--config\", \"/etc/sirena/config\"]"), "HEALTHCHECK CMD in exec form");
    assert!(dockerfile.contains("HEALTHCHECK --interval="), "{dockerfile}");
    assert!(dockerfile.contains("CMD [\"run\", \"--config\", \"/etc/sirena/config\"]"));
}

/// The healthcheck the image runs, against a daemon on the shipped port layout: it
/// reads `[http] listen` from the config it is given, says why in one line, and its
/// exit code is what Docker reads.
#[test]
fn sirena_health_reads_the_configs_listen_and_answers_with_its_exit_code() {
    let tmp = tempfile::tempdir().expect("tempdir");
    // Nothing listens there: a free port, bound and released.
    let port = std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port();
    let config =
        config_dir(tmp.path(), &format!("[store]\npath = \"sirena.db\"\n\n[http]\nlisten = \"0.0.0.0:{port}\"\n"));
    let out = Command::new(BIN).args(["health", "--config"]).arg(&config).output().expect("health runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.starts_with(&format!("no answer from http://127.0.0.1:{port}/readyz: ")), "{stdout}");
    assert_eq!(stdout.lines().count(), 1, "{stdout}");

    // The daemon up on it: no source, so not ready (and says so); live all the same.
    let mut daemon = Daemon::start(&config, &[("STATE_DIRECTORY", tmp.path().join("state").to_str().expect("utf-8"))]);
    daemon.running();
    let health = |extra: &[&str]| {
        let out =
            Command::new(BIN).args(["health", "--config"]).arg(&config).args(extra).output().expect("health runs");
        (out.status.code(), String::from_utf8_lossy(&out.stdout).into_owned())
    };
    let (code, said) = health(&[]);
    assert_eq!(code, Some(1), "{said}");
    assert!(said.starts_with("not ready: no source healthy (of 0)") && said.contains("HTTP 503"), "{said}");
    assert_eq!(health(&["--live"]), (Some(0), "ok\n".to_owned()));
    let (status, _) = daemon.stop();
    assert!(status.success());
}
