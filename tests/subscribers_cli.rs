//! `sirena subscribers import | export` as an operator runs them, on the shipped config
//! in a temporary directory (the store lands beside `config/`, as `sirena.db`).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_sirena");
const CITY: &str = "UA63080070010082928";
const VILLAGE: &str = "UA63080090010026457";

fn config_dir() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("config");
    sirena::demo::write_embedded_config(&config).expect("config");
    (dir, config)
}

fn sirena(args: &[&str], config: &Path) -> Output {
    Command::new(BIN).args(["subscribers"]).args(args).arg("--config").arg(config).output().expect("binary runs")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn import_reports_bad_rows_imports_good_ones_once_and_export_prints_them() {
    let (dir, config) = config_dir();
    let csv = dir.path().join("residents.csv");
    let lines = [
        "channel,address,place,lang".to_owned(),
        format!("sms,+380501234567,{CITY},uk"),
        format!("telegram,123456789,{VILLAGE},en"),
        format!("sms, 067 123 45 67 ,{CITY},uk"),
        "sms,+380501234567,UA99000000000000000,uk".to_owned(),
        format!("sms,+38050123,{CITY},uk"),
        format!("telegram,555,{CITY}"),
        format!("sms,0501234567,{CITY},uk"),
        format!("\"telegram\",\"123456789\",\"{CITY}\",\"en\""),
        String::new(),
        format!("telegram_chat,777,{VILLAGE},de"),
    ];
    // As a spreadsheet saves it: a byte order mark and CRLF.
    std::fs::write(&csv, format!("\u{feff}{}\r\n", lines.join("\r\n"))).expect("write csv");
    let path = csv.to_str().expect("utf-8 path");

    let first = sirena(&["import", path], &config);
    let (out, err) = (text(&first.stdout), text(&first.stderr));
    assert_eq!(first.status.code(), Some(1), "a rejected row fails the run\n{out}\n{err}");
    for want in [
        "line 5: place UA99000000000000000 is not a region in the config",
        "line 6: `+38050123` is not a sms address: 8 digits; a Ukrainian number has 12: 380 and 9 more",
        "line 7: 4 columns expected, found 3",
        "line 8: duplicate of line 2",
        "line 11: lang `de` is not uk or en",
    ] {
        assert!(err.contains(want), "missing `{want}` in:\n{err}");
    }
    assert_eq!(err.lines().filter(|l| l.starts_with("line ")).count(), 5, "only the bad rows are reported:\n{err}");
    assert!(out.contains("rows read: 9, imported new: 4, already there: 0, rejected: 5 (3 new subscribers)"), "{out}");
    assert!(dir.path().join("sirena.db").exists(), "the store is where `sirena run` opens it");

    let again = sirena(&["import", path], &config);
    let out = text(&again.stdout);
    assert_eq!(again.status.code(), Some(1));
    assert!(
        out.contains("rows read: 9, imported new: 0, already there: 4, rejected: 5 (0 new subscribers)"),
        "a second run changes nothing: {out}"
    );

    let export = sirena(&["export"], &config);
    assert!(export.status.success(), "{}", text(&export.stderr));
    let exported = text(&export.stdout);
    assert_eq!(
        exported,
        format!(
            "channel,address,place,lang\n\
             sms,+380501234567,{CITY},uk\n\
             sms,+380671234567,{CITY},uk\n\
             telegram,123456789,{CITY},en\n\
             telegram,123456789,{VILLAGE},en\n"
        )
    );

    let back = dir.path().join("export.csv");
    std::fs::write(&back, &exported).expect("write export");
    let reimport = sirena(&["import", back.to_str().expect("utf-8 path")], &config);
    assert!(reimport.status.success(), "{}", text(&reimport.stderr));
    assert!(
        text(&reimport.stdout).contains("rows read: 4, imported new: 0, already there: 4, rejected: 0"),
        "{}",
        text(&reimport.stdout)
    );
}

#[test]
fn a_file_that_is_not_a_subscriber_list_imports_nothing() {
    let (dir, config) = config_dir();
    let headless = dir.path().join("headless.csv");
    std::fs::write(&headless, format!("sms,+380501234567,{CITY},uk\n")).expect("write");
    let out = sirena(&["import", headless.to_str().expect("path")], &config);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("line 1: the header must name the columns"), "{}", text(&out.stderr));

    // Windows-1251, as an old spreadsheet saves Cyrillic.
    let cp1251 = dir.path().join("cp1251.csv");
    std::fs::write(&cp1251, b"channel,address,place,lang\nsms,+380501234567,\xcf\xee\xeb\xf2\xe0\xe2\xe0,uk\n")
        .expect("write");
    let out = sirena(&["import", cp1251.to_str().expect("path")], &config);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("is not UTF-8"), "{}", text(&out.stderr));

    assert!(!dir.path().join("sirena.db").exists(), "nothing was opened, let alone imported");
    let export = sirena(&["export"], &config);
    assert!(export.status.success());
    assert_eq!(text(&export.stdout), "channel,address,place,lang\n");
    assert!(!dir.path().join("sirena.db").exists(), "exporting does not create a store");
}

/// The operator running the import sees a bad number as they typed it; the log line of
/// the same row (JSON, as the journal gets it) keeps it masked.
#[test]
fn a_bad_phone_is_shown_as_typed_to_the_operator_and_masked_in_the_log() {
    let (dir, config) = config_dir();
    let csv = dir.path().join("one-bad.csv");
    std::fs::write(&csv, format!("channel,address,place,lang\nsms,+38050123,{CITY},uk\n")).expect("write");
    let out = Command::new(BIN)
        .args(["subscribers", "import", csv.to_str().expect("path"), "--config"])
        .arg(&config)
        .env("RUST_LOG", "info")
        .env("SIRENA_LOG_FORMAT", "json")
        .output()
        .expect("binary runs");
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    let (logs, said): (Vec<&str>, Vec<&str>) = err.lines().partition(|l| l.starts_with('{'));
    assert!(
        said.contains(&"line 2: `+38050123` is not a sms address: 8 digits; a Ukrainian number has 12: 380 and 9 more"),
        "the operator's output shows the number as typed:\n{err}"
    );
    // A count of one is singular (messages::plural::count): "1 row", never "1 row(s)".
    assert!(
        said.iter().any(|l| l.starts_with("1 row of ") && l.ends_with(" rejected; the others were imported")),
        "{err}"
    );
    let logged: Vec<&&str> = logs.iter().filter(|l| l.contains("subscriber row rejected")).collect();
    assert_eq!(logged.len(), 1, "one log line for the row:\n{err}");
    assert!(logged[0].contains("`******123` is not a sms address"), "masked in the log: {}", logged[0]);
    assert!(!logs.iter().any(|l| l.contains("38050123")), "no log line holds the number:\n{err}");
}

#[test]
fn import_help_states_the_exit_code() {
    let out = Command::new(BIN).args(["subscribers", "import", "--help"]).output().expect("binary runs");
    let help = text(&out.stdout);
    assert!(help.contains("channel,address,place,lang") && help.contains("exit code is 1"), "{help}");
}
