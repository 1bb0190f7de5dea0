//! `sirena regions import`: the whole codifier from ../shared/data into a copy of the
//! shipped config, read beside the hand-written region files, which override it.

mod common;

use std::process::{Command, Output};

use sirena::config::codifier::{FeedList, ImportError, KeepFeedIds, generated_path, import};
use sirena::regions::{Level, RegionId};

const CODIFIER: &str = "katottg/kodifikator-16-05-2025.csv";
const KHARKIV_OBLAST: &str = "UA63000000000041885";
/// A village of Crimea: in the codifier, in no hand-written file.
const ANDRIIVKA_CRIMEA: &str = "UA01020010010075540";
const ANDRIIVSKA_HROMADA: &str = "UA01020010000048857";

fn sirena(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sirena")).env_remove("RUST_LOG").args(args).output().expect("run sirena")
}

fn id(s: &str) -> RegionId {
    RegionId::parse(s).expect("code")
}

#[test]
fn the_whole_codifier_loads_beside_the_hand_written_files_which_override_it() {
    let Some(data) = common::shared_data() else { return };
    let (_tmp, dir) = common::shipped_copy();
    let report = import(&data.join(CODIFIER), &dir, &[], KeepFeedIds::Refuse).expect("import");
    assert!(report.changed);
    assert_eq!(report.regions, 31_748, "every row of the codifier");
    let count = |l: Level| report.levels.iter().find(|(x, _)| *x == l).map_or(0, |(_, n)| *n);
    assert_eq!((count(Level::Oblast), count(Level::Raion), count(Level::Hromada)), (25, 136, 1772));
    assert_eq!(count(Level::Village), 27_237);

    let config = sirena::config::load(&dir).unwrap_or_else(|e| panic!("imported config has errors:\n{e}"));
    let tree = &config.tree;
    assert_eq!(tree.len(), 31_748, "the hand-written regions are all in the codifier");
    // Generated: the codifier's name with its noun, the transliteration, the parent.
    let village = tree.get(&id(ANDRIIVKA_CRIMEA)).expect("a Crimean village");
    assert_eq!((village.name.uk.as_str(), village.name.en.as_deref()), ("Андріївка", Some("Andriivka")));
    assert_eq!(village.parent, Some(id(ANDRIIVSKA_HROMADA)));
    assert_eq!(tree.get(&id(ANDRIIVSKA_HROMADA)).expect("hromada").name.uk, "Андріївська громада");
    // Hand-written: names, aliases, point and feed id of the shipped file win.
    let oblast = tree.get(&id(KHARKIV_OBLAST)).expect("Kharkiv oblast");
    assert_eq!(oblast.name.en.as_deref(), Some("Kharkiv Oblast"));
    assert_eq!(oblast.aliases, vec!["Харківщина".to_string()]);
    assert_eq!(oblast.feed_id, Some(22));
    assert!(oblast.point.is_some());
    // The renamed raion keeps its hand-written name over the codifier's.
    assert_eq!(tree.get(&id("UA63060000000053698")).expect("raion").name.uk, "Берестинський район");
    let shipped = common::shipped();
    for r in shipped.tree.iter() {
        assert_eq!(tree.get(&r.id), Some(r), "hand-written {} survives as written", r.id);
    }

    // Importing the same file again changes nothing, not even the file's time.
    let path = generated_path(&dir.join("regions"));
    let before = std::fs::read(&path).expect("generated file");
    let mtime = std::fs::metadata(&path).and_then(|m| m.modified()).expect("mtime");
    let again = import(&data.join(CODIFIER), &dir, &[], KeepFeedIds::Refuse).expect("import again");
    assert!(!again.changed);
    assert_eq!(std::fs::read(&path).expect("generated file"), before);
    assert_eq!(std::fs::metadata(&path).and_then(|m| m.modified()).expect("mtime"), mtime);
    // Nor does it from another copy of the same file in another place.
    let elsewhere = tempfile::tempdir().expect("tempdir");
    let copy = elsewhere.path().join("kodifikator-16-05-2025.csv");
    std::fs::copy(data.join(CODIFIER), &copy).expect("copy");
    assert!(!import(&copy, &dir, &[], KeepFeedIds::Refuse).expect("import a copy").changed);
}

#[test]
fn an_override_gives_only_what_it_changes_and_survives_a_re_import() {
    let Some(data) = common::shared_data() else { return };
    let (_tmp, dir) = common::shipped_copy();
    import(&data.join(CODIFIER), &dir, &[], KeepFeedIds::Refuse).expect("import");
    std::fs::write(
        dir.join("regions/overrides.toml"),
        format!(
            "# The village is known locally by another name.\n\
             [[region]]\nid = \"{ANDRIIVKA_CRIMEA}\"\naliases = [\"Андріївка-Кримська\"]\nfeed_id = 99001\n"
        ),
    )
    .expect("write overrides");
    for round in 0..2 {
        let config = sirena::config::load(&dir).unwrap_or_else(|e| panic!("round {round}: {e}"));
        let r = config.tree.get(&id(ANDRIIVKA_CRIMEA)).expect("village");
        assert_eq!(r.name.uk, "Андріївка", "the generated name stays");
        assert_eq!(r.parent, Some(id(ANDRIIVSKA_HROMADA)), "the generated parent stays");
        assert_eq!(r.feed_id, Some(99001));
        assert_eq!(config.tree.by_feed_id(99001).map(|r| r.id.as_str()), Some(ANDRIIVKA_CRIMEA));
        assert!(config.tree.find("Андріївка-Кримська").iter().any(|r| r.id.as_str() == ANDRIIVKA_CRIMEA));
        assert!(!import(&data.join(CODIFIER), &dir, &[], KeepFeedIds::Refuse).expect("re-import").changed);
    }
}

#[test]
fn an_override_of_a_region_that_is_not_generated_is_an_error_at_its_line() {
    let (_tmp, dir) = common::shipped_copy();
    std::fs::write(
        dir.join("regions/overrides.toml"),
        format!("\n[[region]]\nid = \"{ANDRIIVKA_CRIMEA}\"\nfeed_id = 5\n"),
    )
    .expect("write");
    let errors = sirena::config::load(&dir).expect_err("no generated file");
    let e = errors.0.iter().find(|e| e.file.ends_with("overrides.toml")).unwrap_or_else(|| panic!("{errors}"));
    assert_eq!((e.line, e.col), (3, 6), "{e}");
    assert!(e.message.contains("needs a level and a name") && e.message.contains("regions import"), "{e}");
}

#[test]
fn a_broken_codifier_is_reported_by_file_and_line_and_writes_nothing() {
    let (tmp, dir) = common::shipped_copy();
    let csv = tmp.path().join("bad.csv");
    std::fs::write(
        &csv,
        "Перший рівень;Другий рівень;Третій рівень;Четвертий рівень;Додатковий рівень;Категорія об’єкта;Назва об’єкта\r\n\
         UA63000000000041885;;;;;O;Харківська\r\n\
         UA63000000000041885;UA63080000000032022;;;;Q;Куп’янський\r\n",
    )
    .expect("write csv");
    match import(&csv, &dir, &[], KeepFeedIds::Refuse) {
        Err(ImportError::Codifier { path, errors }) => {
            assert_eq!(path, csv);
            assert_eq!(errors.iter().map(|e| e.line).collect::<Vec<_>>(), vec![3], "{errors:?}");
        }
        other => panic!("expected a codifier error, got {other:?}"),
    }
    assert!(!generated_path(&dir.join("regions")).exists(), "nothing written");
    let out = sirena(&["regions", "import", csv.to_str().expect("utf-8"), "--config", dir.to_str().expect("utf-8")]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(&format!("{}:3: ", csv.display())) && stderr.contains("`Q`"), "stderr: {stderr}");
}

#[test]
fn a_damaged_generated_file_is_reported_by_check_config_at_its_line() {
    let Some(data) = common::shared_data() else { return };
    let (_tmp, dir) = common::shipped_copy();
    import(&data.join(CODIFIER), &dir, &[], KeepFeedIds::Refuse).expect("import");
    let path = generated_path(&dir.join("regions"));
    let text = std::fs::read_to_string(&path).expect("read");
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    let at = (100..lines.len()).find(|&i| lines[i].contains("\tvillage\t")).expect("a village line");
    lines[at] = lines[at].replacen("\tvillage\t", "\tvilage\t", 1);
    std::fs::write(&path, lines.join("\n") + "\n").expect("write");
    let out = sirena(&["check-config", dir.to_str().expect("utf-8")]);
    assert!(!out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains(&format!("{}:{}:", path.display(), at + 1)) && stdout.contains("`vilage`"),
        "stdout: {stdout}"
    );
}

/// Regression: `regions import FILE.csv` without the feed lists — the first import
/// command the README showed — wrote the generated file with no feed ids; after a full
/// import it dropped all of them, every raion and hromada alert was then unmapped, and
/// check-config still said ok.
#[test]
fn a_re_import_without_feed_lists_keeps_every_feed_id_and_one_that_would_lose_some_is_refused() {
    let Some(data) = common::shared_data() else { return };
    let (tmp, dir) = common::shipped_copy();
    let lists = [
        FeedList::AlertsInUa(data.join("alerts_in_ua/locations_hierarchy.json")),
        FeedList::UkraineAlarm(data.join("ukrainealarm/regions_v3_2022-07.json")),
    ];
    let full = import(&data.join(CODIFIER), &dir, &lists, KeepFeedIds::Refuse).expect("full import");
    let path = generated_path(&dir.join("regions"));
    let with_ids = std::fs::read(&path).expect("generated file");
    let held = |text: &[u8]| {
        String::from_utf8_lossy(text)
            .lines()
            .filter(|l| !l.starts_with('#') && !l.starts_with("id\t"))
            .filter(|l| l.rsplit('\t').next().is_some_and(|f| !f.is_empty()))
            .count()
    };
    assert_eq!(held(&with_ids), full.feed_ids);
    assert!(full.feed_ids > 1_600, "{} feed ids", full.feed_ids);

    // Without lists: every region keeps its id; the bytes do not change.
    let config = dir.to_str().expect("utf-8");
    let csv = data.join(CODIFIER);
    let out = sirena(&["regions", "import", csv.to_str().expect("utf-8"), "--config", config]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(
        stdout.contains(&format!("feed ids: {} kept from the file this import replaces", full.feed_ids)),
        "{stdout}"
    );
    assert_eq!(std::fs::read(&path).expect("generated file"), with_ids, "nothing lost, nothing rewritten");

    // A codifier without Volyn oblast (UA07…) would lose Volyn's ids: refused, nothing written.
    let text = std::fs::read_to_string(&csv).expect("codifier");
    let without_volyn: String = text.split_inclusive('\n').filter(|l| !l.starts_with("UA07")).collect();
    let short = tmp.path().join("short.csv");
    std::fs::write(&short, without_volyn).expect("write");
    let volyn = held(&with_ids)
        - held(&with_ids.split(|b| *b == b'\n').filter(|l| !l.starts_with(b"UA07")).collect::<Vec<_>>().join(&b'\n'));
    assert!(volyn > 50, "{volyn} Volyn feed ids");
    match import(&short, &dir, &[], KeepFeedIds::Refuse) {
        Err(ImportError::WouldLoseFeedIds { lost, held: n, .. }) => assert_eq!((lost, n), (volyn, full.feed_ids)),
        other => panic!("expected a refusal, got {other:?}"),
    }
    let out = sirena(&["regions", "import", short.to_str().expect("utf-8"), "--config", config]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains(&format!("would drop {volyn} of the {} feed ids", full.feed_ids))
            && stderr.contains("--drop-feed-ids"),
        "{stderr}"
    );
    assert_eq!(std::fs::read(&path).expect("generated file"), with_ids, "nothing written");

    // Told to drop them, it does, and check-config then says what is missing and how to fix it.
    let out = sirena(&["regions", "import", csv.to_str().expect("utf-8"), "--config", config, "--drop-feed-ids"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(stdout.contains(&format!("feed ids: {} dropped (--drop-feed-ids)", full.feed_ids)), "{stdout}");
    assert_eq!(held(&std::fs::read(&path).expect("generated file")), 0);
    let out = sirena(&["check-config", config]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "a warning, not an error: {stdout}");
    let warning =
        stdout.lines().find(|l| l.starts_with("warning: source `alerts_in_ua`")).unwrap_or_else(|| panic!("{stdout}"));
    assert!(warning.contains("hromadas have no feed id") && warning.contains("--alerts-in-ua"), "{warning}");
}
