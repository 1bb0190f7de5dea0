//! Every command says which config and store it uses, and `check-config` checks the
//! store the way the daemon's start needs it (issue 19): the real binary, on the
//! shipped config in a temporary directory, `STATE_DIRECTORY` set or not as the test
//! says (never inherited).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_sirena");
const CITY: &str = "UA63080070010082928";
const ORDER: &str = r#"
[[evacuation]]
id = "cli-store-order"
status = "mandatory"
targets = ["UA63080070000080622"]
issued_at = 2023-11-06T08:00:00+02:00
"#;

/// `root/config` with the shipped files and the `sirena.toml` edited by `edit`.
fn config_dir(root: &Path, edit: impl Fn(String) -> String) -> PathBuf {
    let dir = root.join("config");
    sirena::demo::write_embedded_config(&dir).expect("config");
    let toml = std::fs::read_to_string(dir.join("sirena.toml")).expect("sirena.toml");
    std::fs::write(dir.join("sirena.toml"), edit(toml)).expect("write sirena.toml");
    dir
}

fn sirena(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(BIN);
    cmd.args(args).env_remove("STATE_DIRECTORY").env_remove("RUST_LOG");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("sirena runs")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

#[test]
fn check_config_on_a_directory_without_sirena_toml_says_so_in_one_line_and_exits_1() {
    let root = tempfile::tempdir().expect("tempdir");
    let out = sirena(&["check-config", s(root.path())], &[]);
    assert_eq!(out.status.code(), Some(1));
    let all = text(&out.stdout) + &text(&out.stderr);
    assert_eq!(all, format!("{} has no sirena.toml: is this a config directory?\n", root.path().display()));
}

#[test]
fn check_config_takes_the_directory_positionally_or_by_config_but_not_two_different_ones() {
    let root = tempfile::tempdir().expect("tempdir");
    let config = config_dir(root.path(), |t| t);
    for args in [
        vec!["check-config", s(&config)],
        vec!["check-config", "--config", s(&config)],
        vec!["check-config", s(&config), "--config", s(&config)],
    ] {
        let out = sirena(&args, &[]);
        let stdout = text(&out.stdout);
        assert!(out.status.success(), "{args:?}: {stdout}{}", text(&out.stderr));
        assert!(stdout.contains(&format!("{}: ok (", config.display())), "{args:?}: {stdout}");
    }
    let out = sirena(&["check-config", s(&config), "--config", s(root.path())], &[]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("two config directories given"), "{stderr}");
}

/// Root ignores permission bits, and these tests run as root in CI: a store directory
/// that is a regular file fails `access(2)` for root too, and the daemon could not
/// create its database there either.
#[test]
fn check_config_fails_naming_a_store_directory_that_cannot_be_written_also_from_state_directory() {
    let root = tempfile::tempdir().expect("tempdir");
    let file = root.path().join("a-file");
    std::fs::write(&file, "not a directory").expect("write");
    let absolute = file.join("sirena.db");
    let config =
        config_dir(root.path(), |t| t.replace("path = \"sirena.db\"", &format!("path = \"{}\"", s(&absolute))));
    let out = sirena(&["check-config", "--config", s(&config)], &[]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));
    let stdout = text(&out.stdout);
    assert!(
        stdout
            .contains(&format!("error: the store's directory {} does not exist or is not a directory", file.display())),
        "{stdout}"
    );
    assert!(!stdout.contains(": ok ("), "{stdout}");

    // The relative path of the shipped config, inside a STATE_DIRECTORY under the file.
    let config = config_dir(root.path(), |t| t);
    let state = file.join("state");
    let out = sirena(&["check-config", s(&config)], &[("STATE_DIRECTORY", s(&state))]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));
    let stdout = text(&out.stdout);
    assert!(stdout.contains(&format!("error: the store's directory {} ", state.display())), "{stdout}");
    assert!(stdout.contains("(in STATE_DIRECTORY"), "{stdout}");
    assert!(!state.exists() && std::fs::read_to_string(&file).expect("read") == "not a directory", "nothing created");
}

#[test]
fn check_config_fails_on_an_unreachable_postgres_with_its_password_masked() {
    let root = tempfile::tempdir().expect("tempdir");
    // Port 1 on loopback: refused at once.
    let url = "postgres://sirena:hunter2@127.0.0.1:1/sirena";
    let config = config_dir(root.path(), |t| t.replace("path = \"sirena.db\"", &format!("url = \"{url}\"")));
    let out = sirena(&["check-config", s(&config)], &[]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(
        stdout.contains("error: the store PostgreSQL postgres://sirena:***@127.0.0.1:1/sirena cannot be reached"),
        "{stdout}"
    );
    assert!(stderr.contains("store PostgreSQL postgres://sirena:***@127.0.0.1:1/sirena"), "{stderr}");
    assert!(!(stdout + &stderr).contains("hunter2"), "the password is masked");
}

#[test]
fn no_operators_is_a_warning_of_check_config_and_gone_once_one_is_configured() {
    let root = tempfile::tempdir().expect("tempdir");
    let config = config_dir(root.path(), |t| t);
    let out = sirena(&["check-config", s(&config)], &[]);
    assert!(out.status.success());
    let stdout = text(&out.stdout);
    let warning = "warning: no operators configured: every operator notice — stale feeds, refused tokens, refused \
                   reloads — goes nowhere; add Telegram user ids to [telegram] operators";
    assert!(stdout.lines().any(|l| l == warning), "{stdout}");

    let config = config_dir(root.path(), |t| t.replace("operators = []", "operators = [123456789]"));
    let out = sirena(&["check-config", s(&config)], &[]);
    assert!(out.status.success());
    assert!(!text(&out.stdout).contains("no operators configured"), "{}", text(&out.stdout));
}

#[test]
fn sms_residents_without_a_gateway_are_kept_with_a_warning_by_import_and_check_config() {
    let root = tempfile::tempdir().expect("tempdir");
    let config = config_dir(root.path(), |t| t);
    assert!(sirena::config::load(&config).expect("valid").settings.sms.is_none(), "the shipped config has no [sms]");
    let csv = root.path().join("residents.csv");
    std::fs::write(
        &csv,
        format!(
            "channel,address,place,lang\nsms,+380501234567,{CITY},uk\nsms,0671234567,{CITY},en\ntelegram,42,{CITY},uk\n"
        ),
    )
    .expect("write csv");
    let out = sirena(&["subscribers", "import", s(&csv), "--config", s(&config)], &[]);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "kept, so not a failure: {stdout}{stderr}");
    assert!(
        stderr.contains("warning: SMS residents waiting for a gateway: 2. No [sms] gateway is configured"),
        "{stderr}"
    );
    let store = root.path().join("sirena.db");
    assert!(
        stderr.starts_with(&format!(
            "config {}, store {} (beside the config directory: STATE_DIRECTORY is not set; not created yet, so empty)\n",
            config.display(),
            store.display()
        )),
        "the store line first: {stderr}"
    );
    let export = sirena(&["subscribers", "export", "--config", s(&config)], &[]);
    let csv_out = text(&export.stdout);
    assert!(csv_out.contains("sms,+380501234567,") && csv_out.contains("sms,+380671234567,"), "{csv_out}");
    assert!(text(&export.stderr).contains(&format!("store {} (beside the config", store.display())));

    let out = sirena(&["check-config", s(&config)], &[]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "a warning, not an error: {stdout}");
    assert!(stdout.contains("warning: SMS residents waiting for a gateway: 2."), "{stdout}");
}

#[test]
fn preview_and_the_other_store_commands_name_the_store_they_read() {
    let root = tempfile::tempdir().expect("tempdir");
    let config = config_dir(root.path(), |t| t);
    let kharkiv = config.join("regions/kharkiv.toml");
    let regions = std::fs::read_to_string(&kharkiv).expect("kharkiv.toml");
    std::fs::write(&kharkiv, format!("{regions}{ORDER}")).expect("write");
    let beside = format!(
        "config {}, store {} (beside the config directory: STATE_DIRECTORY is not set; not created yet, so empty)",
        config.display(),
        root.path().join("sirena.db").display()
    );
    let out = sirena(&["preview", "cli-store-order", "--config", s(&config)], &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stderr).lines().collect::<Vec<_>>(), vec![beside.as_str()], "one line");

    let state = root.path().join("state");
    std::fs::create_dir(&state).expect("mkdir");
    let in_state = format!(
        "config {}, store {} (in STATE_DIRECTORY; not created yet, so empty)",
        config.display(),
        state.join("sirena.db").display()
    );
    let env = [("STATE_DIRECTORY", s(&state))];
    for args in [
        vec!["preview", "cli-store-order", "--config", s(&config)],
        vec!["audit", "--config", s(&config)],
        vec!["help-requests", "--config", s(&config)],
        vec!["drills", "report", "--config", s(&config)],
        vec!["subscribers", "export", "--config", s(&config)],
        vec!["check-config", s(&config)],
    ] {
        let out = sirena(&args, &env);
        assert!(out.status.success(), "{args:?}: {}", text(&out.stderr));
        let stderr = text(&out.stderr);
        assert_eq!(
            stderr.lines().filter(|l| l.starts_with("config ")).collect::<Vec<_>>(),
            vec![in_state.as_str()],
            "{args:?}"
        );
    }
    assert!(!state.join("sirena.db").exists(), "reading commands create no store");
}
