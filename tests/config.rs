//! The shipped config loads, the demo embeds it unchanged, and each kind of mistake an
//! operator can make is reported with the right file, line and a message that helps.
//!
//! Every error case copies `config/` into a temporary directory, breaks one thing, and
//! finds the expected line by searching the text it wrote.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use sirena::config::{ConfigError, load};
use tempfile::TempDir;

/// The shipped config as git tracks it, in a directory of its own for this test binary:
/// never `config/` itself, where an operator's `sirena regions import` leaves
/// generated files (`common::shipped_copy`).
fn shipped() -> &'static Path {
    static COPY: std::sync::OnceLock<(TempDir, PathBuf)> = std::sync::OnceLock::new();
    &COPY.get_or_init(common::shipped_copy).1
}

fn sirena() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_sirena"));
    cmd.current_dir(env!("CARGO_MANIFEST_DIR")).env_remove("RUST_LOG");
    cmd
}

/// The files under `config/` that git tracks, relative to it; without git (a tarball),
/// every file but generated, hidden and backup ones.
fn tracked_config_files() -> Vec<String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let git = Command::new("git").current_dir(root).args(["ls-files", "-z", "--", "config"]).output();
    let mut files: Vec<String> = match git {
        Ok(out) if out.status.success() && !out.stdout.is_empty() => String::from_utf8_lossy(&out.stdout)
            .split('\0')
            .filter_map(|f| f.strip_prefix("config/"))
            .map(str::to_owned)
            .collect(),
        _ => files_under(&root.join("config"))
            .into_iter()
            .filter(|f| {
                let name = f.rsplit('/').next().unwrap_or(f);
                !name.contains(".generated.") && !name.starts_with('.') && !name.ends_with('~')
            })
            .collect(),
    };
    files.sort();
    files
}

/// Every file under `dir`, as paths relative to it with `/` separators, sorted.
fn files_under(dir: &Path) -> Vec<String> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
        for entry in std::fs::read_dir(dir).expect("read config dir") {
            let path = entry.expect("dir entry").path();
            if path.is_dir() {
                walk(root, &path, out);
            } else {
                let rel = path.strip_prefix(root).expect("under root");
                let parts: Vec<String> =
                    rel.components().map(|c| c.as_os_str().to_string_lossy().into_owned()).collect();
                out.push(parts.join("/"));
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

// ---------------------------------------------------------------- the shipped config

#[test]
fn shipped_config_loads() {
    let config = load(shipped()).unwrap_or_else(|e| panic!("shipped config has errors:\n{e}"));
    assert!(config.tree.len() > 80, "only {} regions", config.tree.len());
}

#[test]
fn check_config_accepts_the_shipped_config() {
    let out = sirena().arg("check-config").arg(shipped()).output().expect("run sirena");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "exit {:?}\nstdout: {stdout}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("ok ("), "stdout: {stdout}");
}

/// The demo, and every test, runs on an embedded copy of `config/`; it must not drift
/// from the files git tracks there.
#[test]
fn demo_embeds_every_config_file_unchanged() {
    let tracked = tracked_config_files();
    let mut embedded: Vec<String> = sirena::demo::EMBEDDED_CONFIG.iter().map(|(rel, _)| (*rel).to_owned()).collect();
    embedded.sort();
    assert_eq!(embedded, tracked, "EMBEDDED_CONFIG lists different files than git tracks in config/");
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("config");
    for (rel, text) in sirena::demo::EMBEDDED_CONFIG {
        let disk = std::fs::read_to_string(dir.join(rel)).expect("read config file");
        assert!(disk == *text, "the embedded {rel} differs from config/{rel}");
    }
}

// ---------------------------------------------------------------- breaking one thing

/// A copy of the shipped config in a temporary directory.
struct Scratch {
    _tmp: TempDir,
    dir: PathBuf,
}

/// A file after an edit, with where the edit began, to find lines in the new text.
struct Edited {
    path: PathBuf,
    text: String,
    from: usize,
}

impl Edited {
    /// 1-based line of the first line at or after the edit that contains `needle` and is
    /// not a comment.
    fn line_of(&self, needle: &str) -> usize {
        let mut offset = self.text[..self.from].rfind('\n').map_or(0, |i| i + 1);
        for line in self.text[offset..].split_inclusive('\n') {
            let t = line.trim_start();
            if !t.starts_with('#') && line.contains(needle) {
                return self.text[..offset].matches('\n').count() + 1;
            }
            offset += line.len();
        }
        panic!("`{needle}` is not in {} after byte {}", self.path.display(), self.from);
    }
}

impl Scratch {
    fn new() -> Self {
        let tmp = TempDir::new().expect("tempdir");
        let dir = tmp.path().join("config");
        common::copy_dir(shipped(), &dir);
        Scratch { _tmp: tmp, dir }
    }

    fn append(&self, rel: &str, snippet: &str) -> Edited {
        let path = self.dir.join(rel);
        let mut text = std::fs::read_to_string(&path).expect("read");
        if !text.ends_with('\n') {
            text.push('\n');
        }
        let from = text.len();
        text.push_str(snippet);
        std::fs::write(&path, &text).expect("write");
        Edited { path, text, from }
    }

    fn replace(&self, rel: &str, old: &str, new: &str) -> Edited {
        let path = self.dir.join(rel);
        let before = std::fs::read_to_string(&path).expect("read");
        let from = before.find(old).unwrap_or_else(|| panic!("`{old}` is not in {rel}"));
        let text = before.replacen(old, new, 1);
        std::fs::write(&path, &text).expect("write");
        Edited { path, text, from }
    }

    fn errors(&self) -> Vec<ConfigError> {
        match load(&self.dir) {
            Ok(c) => panic!("the broken config loaded ({} regions, {} orders)", c.tree.len(), c.orders.len()),
            Err(e) => e.0,
        }
    }
}

fn listing(errors: &[ConfigError]) -> String {
    errors.iter().map(|e| format!("  {e}")).collect::<Vec<_>>().join("\n")
}

/// One error in `file` at `line` (0: the file as a whole) whose message has every needle.
fn find_error(errors: &[ConfigError], file: &Path, line: usize, says: &[&str]) -> Result<(), String> {
    if errors.iter().any(|e| e.file == file && e.line == line && says.iter().all(|s| e.message.contains(s))) {
        Ok(())
    } else {
        Err(format!("no error at {}:{line} saying {says:?}; got:\n{}", file.display(), listing(errors)))
    }
}

/// A valid order, appended to `regions/kharkiv.toml`; the cases below vary it.
const ORDER: &str = r#"
[[evacuation]]
id = "kupiansk-2025-05"
status = "mandatory"
targets = ["UA63080090010026457", "UA63080070010082928"]
issued_at = 2025-05-16T08:00:00+03:00
expires_at = 2025-05-30T20:00:00+03:00
hotline = "+380 57 700 00 00"
destination = { uk = "Харків", en = "Kharkiv" }
assembly_points = [
  { name = { uk = "Залізничний вокзал" }, place = "UA63080090010026457", times = ["08:00", "14:30"] },
]
"#;

#[test]
fn the_order_the_error_cases_vary_is_valid() {
    let s = Scratch::new();
    s.append("regions/kharkiv.toml", ORDER);
    let config = load(&s.dir).unwrap_or_else(|e| panic!("{e}"));
    let shipped_orders = load(shipped()).expect("shipped config").orders.len();
    assert_eq!(config.orders.len(), shipped_orders + 1);
    let order = config.orders.iter().find(|o| o.id == "kupiansk-2025-05").expect("the appended order");
    assert_eq!(order.targets.len(), 2);
    assert_eq!(order.assembly_points[0].times, ["08:00", "14:30"]);
}

enum Edit {
    Append(&'static str),
    /// Replace the first occurrence of `.0` in the shipped file with `.1`.
    Replace(&'static str, &'static str),
    /// Replace within [`ORDER`], then append it.
    Order(&'static str, &'static str),
    /// Take the shipped `[http]` table out of sirena.toml, then make the edit.
    NoHttp(&'static Edit),
}

/// The shipped endpoint, as `Edit::NoHttp` takes it out.
const SHIPPED_HTTP: &str = "[http]\nlisten = \"127.0.0.1:8640\"\n";

enum At {
    /// The first non-comment line of the edited file, from the edit on, containing this.
    Line(&'static str),
    /// A path relative to the config dir, as a whole (line 0).
    Whole(&'static str),
}

struct Case {
    name: &'static str,
    file: &'static str,
    edit: Edit,
    at: At,
    says: &'static [&'static str],
}

fn check(case: &Case) -> Result<(), String> {
    let s = Scratch::new();
    let edited = apply(&s, case, &case.edit);
    let (file, line) = match case.at {
        At::Line(needle) => (edited.path.clone(), edited.line_of(needle)),
        At::Whole(rel) => (s.dir.join(rel), 0),
    };
    find_error(&s.errors(), &file, line, case.says).map_err(|e| format!("{}: {e}", case.name))
}

fn apply(s: &Scratch, case: &Case, edit: &Edit) -> Edited {
    match *edit {
        Edit::Append(snippet) => s.append(case.file, snippet),
        Edit::Replace(old, new) => s.replace(case.file, old, new),
        Edit::Order(old, new) => {
            assert!(ORDER.contains(old), "{}: `{old}` is not in ORDER", case.name);
            s.append(case.file, &ORDER.replacen(old, new, 1))
        }
        Edit::NoHttp(edit) => {
            s.replace("sirena.toml", SHIPPED_HTTP, "");
            apply(s, case, edit)
        }
    }
}

fn check_all(cases: &[Case]) {
    let failures: Vec<String> = cases.iter().filter_map(|c| check(c).err()).collect();
    assert!(failures.is_empty(), "{} of {} cases failed:\n\n{}", failures.len(), cases.len(), failures.join("\n\n"));
}

#[test]
fn each_mistake_is_reported_at_its_file_and_line() {
    check_all(&[
        Case {
            name: "unknown key in sirena.toml",
            file: "sirena.toml",
            edit: Edit::Replace("poll = \"10s\"", "pol = \"10s\""),
            at: At::Line("pol = "),
            says: &["unknown field `pol`", "did you mean `poll`?"],
        },
        Case {
            name: "a store with both a file and a database",
            file: "sirena.toml",
            edit: Edit::Replace(
                "path = \"sirena.db\"",
                "path = \"sirena.db\"\nurl = \"postgres://sirena@127.0.0.1/sirena\"",
            ),
            at: At::Line("url = "),
            says: &["both path (SQLite) and url (PostgreSQL)"],
        },
        Case {
            name: "a store with neither",
            file: "sirena.toml",
            edit: Edit::Replace(
                "[store]\n# SQLite file, relative to the directory that holds config/.\npath = \"sirena.db\"",
                "[store]\n",
            ),
            at: At::Line("[store]"),
            says: &["[store] needs path (SQLite) or url (PostgreSQL)"],
        },
        Case {
            name: "a store url that is not PostgreSQL, its password hidden",
            file: "sirena.toml",
            edit: Edit::Replace("path = \"sirena.db\"", "url = \"mysql://root:hunter2@db/sirena\""),
            at: At::Line("url = "),
            says: &["`mysql://root:***@db/sirena` is not a postgres:// URL"],
        },
        Case {
            name: "a PostgreSQL url with a bad port",
            file: "sirena.toml",
            edit: Edit::Replace("path = \"sirena.db\"", "url = \"postgres://sirena@db:54x2/sirena\""),
            at: At::Line("url = "),
            says: &["`postgres://sirena@db:54x2/sirena`", "port"],
        },
        Case {
            name: "a takeover too short to tell a slow leader from a dead one",
            file: "sirena.toml",
            edit: Edit::Replace("path = \"sirena.db\"", "url = \"postgres://sirena@db/sirena\"\ntakeover = \"500ms\""),
            at: At::Line("takeover = "),
            says: &["takeover must be at least 2s"],
        },
        Case {
            name: "unknown key in an [[evacuation]] table",
            file: "regions/kharkiv.toml",
            edit: Edit::Order("status = \"mandatory\"", "status = \"mandatory\"\ncolour = \"red\""),
            at: At::Line("colour = "),
            says: &["unknown field `colour`", "`status`"],
        },
        Case {
            name: "malformed target code",
            file: "regions/kharkiv.toml",
            edit: Edit::Order("targets = [\"UA63080090010026457\", \"UA63080070010082928\"]", "targets = [\"UA123\"]"),
            at: At::Line("targets = [\"UA123\"]"),
            says: &["`UA123` is not a KATOTTG code", "17 digits"],
        },
        Case {
            name: "well-formed target that is not defined",
            file: "regions/kharkiv.toml",
            edit: Edit::Order("\"UA63080070010082928\"]", "\"UA63080070010082999\"]"),
            at: At::Line("UA63080070010082999"),
            says: &["UA63080070010082999", "not a region defined"],
        },
        Case {
            name: "a target in another oblast than the file's",
            file: "regions/kharkiv.toml",
            edit: Edit::Order("\"UA63080070010082928\"]", "\"UA46060250010015970\"]"),
            at: At::Line("UA46060250010015970"),
            says: &["target UA46060250010015970 (Lviv", "is outside Kharkiv Oblast", "its own oblast's file"],
        },
        Case {
            name: "an assembly point nobody could find",
            file: "regions/kharkiv.toml",
            edit: Edit::Order("place = \"UA63080090010026457\", ", ""),
            at: At::Line("{ name = { uk = \"Залізничний вокзал\" }"),
            says: &["assembly point `Залізничний вокзал` has no coordinates", "at = [latitude, longitude]"],
        },
        Case {
            name: "an assembly point's latitude and longitude swapped (a point in Iran)",
            file: "regions/kharkiv.toml",
            edit: Edit::Order("place = \"UA63080090010026457\", ", "at = [37.583, 49.717], "),
            at: At::Line("at = [37.583, 49.717]"),
            says: &[
                "assembly point `Залізничний вокзал`: [37.583, 49.717] is outside Ukraine",
                "latitude and longitude swapped? write [49.717, 37.583]",
            ],
        },
        Case {
            name: "an assembly point in Poland for a Kharkiv village",
            file: "regions/kharkiv.toml",
            edit: Edit::Order(
                "place = \"UA63080090010026457\", ",
                "place = \"UA63080090010026457\", at = [52.2297, 21.0122], ",
            ),
            at: At::Line("at = [52.2297, 21.0122]"),
            says: &["assembly point `Залізничний вокзал`: [52.2297, 21.0122] is outside Ukraine"],
        },
        Case {
            name: "a region's point in Poland",
            file: "regions/kharkiv.toml",
            edit: Edit::Replace("point = [49.717, 37.583]", "point = [52.2297, 21.0122]"),
            at: At::Line("point = [52.2297, 21.0122]"),
            says: &["region UA63080090010026457: point [52.2297, 21.0122] is outside Ukraine"],
        },
        Case {
            name: "a region's point swapped",
            file: "regions/kharkiv.toml",
            edit: Edit::Replace("point = [49.717, 37.583]", "point = [37.583, 49.717]"),
            at: At::Line("point = [37.583, 49.717]"),
            says: &["outside Ukraine: latitude and longitude swapped? write [49.717, 37.583] (latitude first)"],
        },
        Case {
            name: "missing status",
            file: "regions/kharkiv.toml",
            edit: Edit::Order("status = \"mandatory\"\n", ""),
            at: At::Line("[[evacuation]]"),
            says: &["missing field `status`"],
        },
        Case {
            name: "assembly time 25:00",
            file: "regions/kharkiv.toml",
            edit: Edit::Order("\"14:30\"", "\"25:00\""),
            at: At::Line("\"25:00\""),
            says: &["`25:00` is not a time HH:MM"],
        },
        Case {
            name: "assembly time without a leading zero",
            file: "regions/kharkiv.toml",
            edit: Edit::Order("\"08:00\"", "\"8:00\""),
            at: At::Line("\"8:00\""),
            says: &["`8:00` is not a time HH:MM"],
        },
        Case {
            name: "issued_at without a UTC offset",
            file: "regions/kharkiv.toml",
            edit: Edit::Order("issued_at = 2025-05-16T08:00:00+03:00", "issued_at = 2025-05-16T08:00:00"),
            at: At::Line("issued_at = "),
            says: &["`2025-05-16T08:00:00`", "UTC offset"],
        },
        Case {
            name: "expires_at before issued_at",
            file: "regions/kharkiv.toml",
            edit: Edit::Order("expires_at = 2025-05-30", "expires_at = 2025-05-01"),
            at: At::Line("expires_at = "),
            says: &["expires_at is not after issued_at"],
        },
        Case {
            name: "region whose parent is missing",
            file: "regions/lviv.toml",
            edit: Edit::Append(
                "\n[[region]]\nid = \"UA46060250020011111\"\nparent = \"UA46060250000099999\"\n\
                 level = \"village\"\nname = { uk = \"Нове\" }\n",
            ),
            at: At::Line("[[region]]"),
            says: &["UA46060250020011111", "parent UA46060250000099999", "not defined"],
        },
        Case {
            name: "an absurd duration (it overflowed the poller's clock)",
            file: "sirena.toml",
            edit: Edit::Replace("poll = \"10s\"", "poll = \"1000000000h\""),
            at: At::Line("poll = \"1000000000h\""),
            says: &["`1000000000h` is longer than 31 days"],
        },
        Case {
            name: "poll over the 8/min budget",
            file: "sirena.toml",
            edit: Edit::Replace("poll = \"10s\"", "poll = \"2s\""),
            at: At::Line("poll = \"2s\""),
            says: &["poll = 2s", "budget of 8 requests/min", "7s 500ms"],
        },
        Case {
            name: "Fluent syntax error",
            file: "locales/en/alerts.ftl",
            edit: Edit::Append("broken = { $kind ]\n"),
            at: At::Line("broken = "),
            says: &["Fluent syntax error"],
        },
        Case {
            name: "a Fluent variable sirena never passes",
            file: "locales/uk/alerts.ftl",
            edit: Edit::Append("alert-typo = Тривога в { $plcae }\n"),
            at: At::Line("alert-typo = "),
            says: &["message `alert-typo` uses `$plcae`, which sirena never passes (did you mean `$place`?)"],
        },
        Case {
            name: "missing Fluent message",
            file: "locales/uk/bot.ftl",
            edit: Edit::Replace("bot-help =", "bot-hlep ="),
            at: At::Whole("locales/uk"),
            says: &["`bot-help` is missing"],
        },
    ]);
}

/// What editors and file transfers leave in `regions/`: a byte-order mark and CRLF line
/// ends load as the file they are; swap, lock and backup files are not read; a file
/// that is not UTF-8 is named.
#[test]
fn editor_leftovers_bom_and_crlf_in_the_regions_directory() {
    let shipped_regions = load(shipped()).expect("shipped config").tree.len();
    let s = Scratch::new();
    let kharkiv = s.dir.join("regions/kharkiv.toml");
    let text = std::fs::read_to_string(&kharkiv).expect("read");
    std::fs::write(&kharkiv, format!("\u{feff}{}", text.replace('\n', "\r\n"))).expect("write");
    // Leftovers that would, if read, define every region twice or not parse at all.
    std::fs::write(s.dir.join("regions/kharkiv.toml~"), &text).expect("write");
    std::fs::write(s.dir.join("regions/.kharkiv.toml.swp"), b"b0VIM 9.0\0\0garbage").expect("write");
    std::fs::write(s.dir.join("regions/.#kharkiv.toml"), &text).expect("write");
    let config = load(&s.dir).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(config.tree.len(), shipped_regions);

    std::fs::write(s.dir.join("regions/odessa.toml"), b"[[region]]\nid = \"\xff\xfe\"\n").expect("write");
    let errors = s.errors();
    find_error(&errors, &s.dir.join("regions/odessa.toml"), 0, &["cannot read", "UTF-8"])
        .unwrap_or_else(|e| panic!("{e}"));
}

#[test]
fn a_duplicate_order_id_names_where_it_was_first_used() {
    let s = Scratch::new();
    let first = s.append("regions/kharkiv.toml", ORDER);
    let second = s.append("regions/lviv.toml", &ORDER.replace("UA63080090010026457", "UA46060250010015970"));
    let errors = s.errors();
    let first_at = format!("{}:{}", first.path.display(), first.line_of("id = \"kupiansk-2025-05\""));
    let result = find_error(
        &errors,
        &second.path,
        second.line_of("id = \"kupiansk-2025-05\""),
        &["`kupiansk-2025-05` is already used", &first_at],
    );
    result.unwrap_or_else(|e| panic!("{e}"));
}

/// The loader trims order ids, so ids that differ only in surrounding spaces are the
/// same id and must be reported as a duplicate.
#[test]
fn order_ids_that_differ_only_in_spaces_are_duplicates() {
    let s = Scratch::new();
    let first = s.append("regions/kharkiv.toml", ORDER);
    let second = s.append(
        "regions/lviv.toml",
        &ORDER
            .replace("UA63080090010026457", "UA46060250010015970")
            .replace("\"kupiansk-2025-05\"", "\" kupiansk-2025-05\""),
    );
    let first_at = format!("{}:{}", first.path.display(), first.line_of("id = \"kupiansk-2025-05\""));
    find_error(&s.errors(), &second.path, second.line_of("id = \" kupiansk-2025-05\""), &["already used", &first_at])
        .unwrap_or_else(|e| panic!("{e}"));
}

/// `u8::from_str` accepts a leading `+`, so a check built on it lets "+1:00" through.
#[test]
fn assembly_time_with_a_sign_is_rejected() {
    check_all(&[Case {
        name: "assembly time +1:00",
        file: "regions/kharkiv.toml",
        edit: Edit::Order("\"14:30\"", "\"+1:00\""),
        at: At::Line("\"+1:00\""),
        says: &["`+1:00` is not a time HH:MM"],
    }]);
}

/// An unclosed placeable at the end of a line is detected on the next line; the error
/// must still point at the broken message, not at the innocent one after it.
#[test]
fn fluent_error_points_at_the_broken_message() {
    check_all(&[Case {
        name: "unclosed placeable",
        file: "locales/en/alerts.ftl",
        edit: Edit::Append("broken = { $kind\nalso-fine = fine\n"),
        at: At::Line("broken = "),
        says: &["Fluent syntax error"],
    }]);
}

/// Two regions that name each other as parent: neither is missing, but neither chain
/// reaches an oblast, so `is_within` could never place them.
#[test]
fn a_parent_cycle_is_reported() {
    let s = Scratch::new();
    let edited = s.append(
        "regions/lviv.toml",
        "\n[[region]]\nid = \"UA46060250020011111\"\nparent = \"UA46060250030022222\"\nlevel = \"village\"\n\
         name = { uk = \"Перше\" }\n\
         \n[[region]]\nid = \"UA46060250030022222\"\nparent = \"UA46060250020011111\"\nlevel = \"village\"\n\
         name = { uk = \"Друге\" }\n",
    );
    let errors = match load(&s.dir) {
        Ok(_) => panic!("a config with a parent cycle loaded"),
        Err(e) => e.0,
    };
    let first = edited.line_of("[[region]]");
    let second = edited.line_of("id = \"UA46060250030022222\"") - 1;
    assert!(
        errors.iter().any(|e| e.file == edited.path
            && (e.line == first || e.line == second)
            && (e.message.contains("UA46060250020011111") || e.message.contains("UA46060250030022222"))),
        "no error at {}:{first} or :{second} about the cycle; got:\n{}",
        edited.path.display(),
        listing(&errors)
    );
}

#[test]
fn errors_in_different_files_are_all_reported_in_one_load() {
    let s = Scratch::new();
    let settings = s.replace("sirena.toml", "poll = \"10s\"", "poll = \"2s\"");
    let kharkiv = s.append(
        "regions/kharkiv.toml",
        "\n[[region]]\nid = \"UA63080070990011111\"\nparent = \"UA63080070000080622\"\nlevel = \"village\"\n\
         name = { uk = \"Нове\" }\ncolour = \"red\"\n",
    );
    let lviv = s.append(
        "regions/lviv.toml",
        "\n[[region]]\nid = \"UA4606\"\nparent = \"UA46060250000025047\"\nlevel = \"village\"\nname = { uk = \"Нове\" }\n",
    );
    let ftl = s.append("locales/en/alerts.ftl", "broken = { $kind ]\n");
    s.replace("locales/uk/bot.ftl", "bot-help =", "bot-hlep =");
    let errors = s.errors();
    let expected: [(&Path, usize, &[&str]); 5] = [
        (&settings.path, settings.line_of("poll = "), &["budget"]),
        (&kharkiv.path, kharkiv.line_of("colour = "), &["unknown field `colour`"]),
        (&lviv.path, lviv.line_of("id = \"UA4606\""), &["`UA4606` is not a KATOTTG code"]),
        (&ftl.path, ftl.line_of("broken = "), &["Fluent syntax error"]),
        (&s.dir.join("locales/uk"), 0, &["`bot-help` is missing"]),
    ];
    let failures: Vec<String> =
        expected.iter().filter_map(|(file, line, says)| find_error(&errors, file, *line, says).err()).collect();
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// Orders are checked only when every region is valid, so a broken region in one file
/// hides the order mistakes in another. Checks that need no tree (times, dates) should
/// still be reported.
#[test]
fn order_mistakes_are_reported_alongside_region_mistakes() {
    let s = Scratch::new();
    let lviv = s.append(
        "regions/lviv.toml",
        "\n[[region]]\nid = \"UA46060250020011111\"\nparent = \"UA46060250000099999\"\nlevel = \"village\"\n\
         name = { uk = \"Нове\" }\n",
    );
    let kharkiv = s.append("regions/kharkiv.toml", &ORDER.replacen("\"14:30\"", "\"25:00\"", 1));
    let errors = s.errors();
    let failures: Vec<String> = [
        find_error(&errors, &lviv.path, lviv.line_of("[[region]]"), &["not defined"]),
        find_error(&errors, &kharkiv.path, kharkiv.line_of("\"25:00\""), &["`25:00` is not a time HH:MM"]),
    ]
    .into_iter()
    .filter_map(Result::err)
    .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

// ---------------------------------------------------------------- check-config

#[test]
fn check_config_prints_file_line_col_and_exits_1() {
    let s = Scratch::new();
    let settings = s.replace("sirena.toml", "poll = \"10s\"", "poll = \"2s\"");
    let order = s.append(
        "regions/kharkiv.toml",
        &ORDER.replacen("status = \"mandatory\"", "status = \"mandatory\"\ncolour = \"red\"", 1),
    );
    let out = sirena().arg("check-config").arg(&s.dir).output().expect("run sirena");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "stdout: {stdout}\nstderr: {stderr}");

    let mut located = Vec::new();
    for line in stdout.lines() {
        let (path, rest) = line.split_once(".toml:").unwrap_or_else(|| panic!("not `file:line:col: message`: {line}"));
        let mut parts = rest.splitn(3, ':');
        let l: usize = parts.next().and_then(|n| n.parse().ok()).unwrap_or_else(|| panic!("no line number: {line}"));
        let c: usize = parts.next().and_then(|n| n.parse().ok()).unwrap_or_else(|| panic!("no column: {line}"));
        let message = parts.next().unwrap_or_else(|| panic!("no message: {line}"));
        assert!(l >= 1 && c >= 1 && message.starts_with(' ') && message.len() > 1, "malformed: {line}");
        located.push((PathBuf::from(format!("{path}.toml")), l));
    }
    located.sort();
    let mut expected =
        vec![(settings.path.clone(), settings.line_of("poll = ")), (order.path.clone(), order.line_of("colour = "))];
    expected.sort();
    assert_eq!(located, expected, "stdout: {stdout}");
    assert!(stderr.contains("2 errors in"), "stderr: {stderr}");
}

/// `[[source]]` tables: names are unique (the default is the kind), kinds without an
/// adapter are refused at their `kind`, and a mistyped key is reported on its line.
#[test]
fn source_mistakes_are_reported_at_their_line() {
    check_all(&[
        Case {
            name: "a second source with the default name",
            file: "sirena.toml",
            edit: Edit::Append(
                "\n[[source]]\nkind = \"alerts_in_ua\"\nbase_url = \"https://mirror.example.org\"\ntoken_env = \"MIRROR_TOKEN\"\n",
            ),
            at: At::Line("[[source]]"),
            says: &["source name `alerts_in_ua`", "is already used by the source at", "sirena.toml:"],
        },
        Case {
            name: "two sources named alike",
            file: "sirena.toml",
            edit: Edit::Append(
                "\n[[source]]\nkind = \"alerts_in_ua\"\nname = \"alerts_in_ua\"\nbase_url = \"https://a.example.org\"\ntoken_env = \"A\"\n",
            ),
            at: At::Line("name = \"alerts_in_ua\""),
            says: &["source name `alerts_in_ua` is already used"],
        },
        Case {
            name: "a CAP index that is not a URL",
            file: "sirena.toml",
            edit: Edit::Append("\n[[source]]\nkind = \"cap\"\nurl = \"cap/index.atom\"\n"),
            at: At::Line("url = \"cap/index.atom\""),
            says: &["`cap/index.atom` is not a URL"],
        },
        Case {
            name: "a webhook without the HTTP endpoint",
            file: "sirena.toml",
            edit: Edit::NoHttp(&Edit::Append(
                "\n[[source]]\nkind = \"ukrainealarm\"\nbase_url = \"https://api.ukrainealarm.com\"\ntoken_env = \"UA_KEY\"\nwebhook_secret_env = \"UA_HOOK\"\n",
            )),
            at: At::Line("webhook_secret_env = \"UA_HOOK\""),
            says: &["a webhook needs the daemon's HTTP endpoint", "[http]"],
        },
        Case {
            name: "an unknown kind",
            file: "sirena.toml",
            edit: Edit::Append("\n[[source]]\nkind = \"sms\"\nurl = \"https://example.org\"\n"),
            at: At::Line("kind = \"sms\""),
            says: &["unknown variant `sms`", "`alerts_in_ua`"],
        },
        Case {
            name: "a mistyped key in a [[source]]",
            file: "sirena.toml",
            edit: Edit::Replace("timeout = \"5s\"", "timeot = \"5s\""),
            at: At::Line("timeot = "),
            says: &["unknown field `timeot`", "`max_body`"],
        },
        Case {
            name: "an empty body limit",
            file: "sirena.toml",
            edit: Edit::Replace("timeout = \"5s\"", "timeout = \"5s\"\nmax_body = 0"),
            at: At::Line("max_body = 0"),
            says: &["max_body must be at least 1 byte"],
        },
    ]);
}

#[test]
fn sms_gateway_mistakes_are_reported_at_their_line() {
    check_all(&[
        Case {
            name: "delivery reports without the HTTP endpoint",
            file: "sirena.toml",
            edit: Edit::NoHttp(&Edit::Append(
                "\n[sms]\n\n[[sms.gateway]]\nname = \"tsms\"\nkind = \"turbosms\"\ntoken_env = \"T\"\nsender = \"SIRENA\"\nreport_secret_env = \"R\"\n",
            )),
            at: At::Line("report_secret_env = "),
            says: &["[http] listen"],
        },
        Case {
            name: "a batch over the gateway's ceiling",
            file: "sirena.toml",
            edit: Edit::Append(
                "\n[sms]\n\n[[sms.gateway]]\nname = \"tsms\"\nkind = \"turbosms\"\ntoken_env = \"T\"\nsender = \"SIRENA\"\nbatch = 9000\n",
            ),
            at: At::Line("batch = 9000"),
            says: &["batch must be 1 to 5000"],
        },
        Case {
            name: "no requests at all",
            file: "sirena.toml",
            edit: Edit::Append(
                "\n[sms]\n\n[[sms.gateway]]\nname = \"tsms\"\nkind = \"turbosms\"\ntoken_env = \"T\"\nsender = \"SIRENA\"\nrequests_per_sec = 0\n",
            ),
            at: At::Line("requests_per_sec = 0"),
            says: &["requests_per_sec must be at least 1"],
        },
        Case {
            name: "a report URL without a secret",
            file: "sirena.toml",
            edit: Edit::Append(
                "\n[sms]\n\n[[sms.gateway]]\nname = \"tw\"\nkind = \"twilio\"\naccount_sid = \"AC1\"\ntoken_env = \"T\"\nfrom = \"SIRENA\"\nreport_url = \"https://sirena.example.org/reports/tw\"\n",
            ),
            at: At::Line("report_url = "),
            says: &["needs report_secret_env"],
        },
        Case {
            // Found by where the key is, not by searching for `name = "tw"`, which
            // the source table has too.
            name: "a gateway named like a source, its mistake in its own table",
            file: "sirena.toml",
            edit: Edit::Append(
                "\n[[source]]\nname = \"tw\"\nkind = \"alerts_in_ua\"\nbase_url = \"https://api.alerts.in.ua\"\ntoken_env = \"A\"\n\
                 \n[sms]\n\n[[sms.gateway]]\nname = \"tw\"\nkind = \"twilio\"\naccount_sid = \"AC1\"\ntoken_env = \"T\"\nfrom = \"SIRENA\"\nper_sec = 0\n",
            ),
            at: At::Line("per_sec = 0"),
            says: &["per_sec must be at least 1"],
        },
    ]);
}

/// The layout before `[[source]]` still loads, as one source named after its kind.
#[test]
fn the_deprecated_sources_table_still_loads() {
    let s = Scratch::new();
    s.replace("sirena.toml", "[[source]]\nkind = \"alerts_in_ua\"\n", "[sources.alerts_in_ua]\n");
    let config = load(&s.dir).unwrap_or_else(|e| panic!("{e}"));
    let sources = &config.settings.sources;
    assert_eq!(sources.len(), 1, "{sources:?}");
    let c = sources[0].common();
    assert_eq!(
        (c.kind, c.name, c.url),
        (sirena::config::SourceKind::AlertsInUa, "alerts_in_ua", "https://api.alerts.in.ua")
    );
    assert_eq!(c.token_env, Some("ALERTS_IN_UA_TOKEN"));
}

#[test]
fn an_order_that_cannot_fit_the_sms_limit_is_reported_at_its_id() {
    let s = Scratch::new();
    s.append(
        "sirena.toml",
        "\n[sms]\nmax_parts = 1\n\n[[sms.gateway]]\nname = \"turbosms\"\nkind = \"turbosms\"\ntoken_env = \"T\"\nsender = \"SIRENA\"\n",
    );
    // Its title, both places and two hotline numbers alone are longer than one part
    // (70 characters in Cyrillic), whatever details are dropped.
    let long = ORDER.replace("hotline = \"+380 57 700 00 00\"", "hotline = \"+380 57 700 00 00, +380 50 700 00 00\"");
    let kharkiv = s.append("regions/kharkiv.toml", &long);
    let errors = s.errors();
    let at = kharkiv.line_of("id = \"kupiansk-2025-05\"");
    let hit = errors.iter().find(|e| e.file == kharkiv.path && e.line == at);
    let hit = hit.unwrap_or_else(|| panic!("no error at the order's id line {at}:\n{}", listing(&errors)));
    assert!(hit.message.contains("takes 2 parts") && hit.message.contains("max_parts = 1"), "{}", hit.message);
    assert!(hit.message.contains("uk"), "{}", hit.message);
}

/// An overlong operator text would be cut to Telegram's 4096 characters when sent,
/// its last lines lost: refused at load instead, at the order's id.
#[test]
fn an_order_too_long_for_a_telegram_message_is_reported_at_its_id() {
    let s = Scratch::new();
    let line = "Мешканців просять взяти документи, ліки, воду та теплий одяг на три доби.\n";
    let text = line.repeat(60);
    let long = format!("{ORDER}text = {{ uk = \"\"\"{text}\"\"\" }}\n");
    let kharkiv = s.append("regions/kharkiv.toml", &long);
    let errors = s.errors();
    let at = kharkiv.line_of("id = \"kupiansk-2025-05\"");
    let hit = errors.iter().find(|e| e.file == kharkiv.path && e.line == at);
    let hit = hit.unwrap_or_else(|| panic!("no error at the order's id line {at}:\n{}", listing(&errors)));
    assert!(hit.message.contains("longer than a Telegram message (4096 characters)"), "{}", hit.message);
    // A text that fits is taken whole.
    let s = Scratch::new();
    s.append("regions/kharkiv.toml", &format!("{ORDER}text = {{ uk = \"\"\"{}\"\"\" }}\n", line.repeat(5)));
    if let Err(e) = load(&s.dir) {
        panic!("a text that fits was refused: {e}");
    }
}

const DRILL: &str = r#"
[[drill]]
id = "monthly"
schedule = "0 10 * * Mon"
places = ["UA63000000000041885"]
text = "Перевірка"

[retention]
delivered_days = 30
help_requests_days = 90
"#;

#[test]
fn a_drill_and_retention_load_and_their_mistakes_point_at_their_lines() {
    let s = Scratch::new();
    s.append("sirena.toml", DRILL);
    let config = load(&s.dir).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(config.settings.drill.len(), 1);
    assert_eq!(config.settings.drill[0].regions().len(), 1);
    assert!(config.settings.drill[0].cron().is_ok());
    assert_eq!(config.settings.retention.delivered_days, Some(30));
    assert_eq!(config.settings.retention.help_requests_days, Some(90));
    let drill = |old: &'static str, new: &'static str| -> &'static str {
        Box::leak(DRILL.replacen(old, new, 1).into_boxed_str())
    };
    check_all(&[
        Case {
            name: "a schedule that is not cron",
            file: "sirena.toml",
            edit: Edit::Append(drill("0 10 * * Mon", "every monday")),
            at: At::Line("schedule = "),
            says: &["not a cron expression"],
        },
        Case {
            name: "a drill place that is no region",
            file: "sirena.toml",
            edit: Edit::Append(drill("UA63000000000041885", "UA63999999999999999")),
            at: At::Line("places = "),
            says: &["UA63999999999999999", "not a region"],
        },
        Case {
            name: "a drill place that is not a code",
            file: "sirena.toml",
            edit: Edit::Append(drill("UA63000000000041885", "Kharkiv")),
            at: At::Line("places = "),
            says: &["place:"],
        },
        Case {
            name: "an unknown key in a drill",
            file: "sirena.toml",
            edit: Edit::Append(drill("text = ", "txt = ")),
            at: At::Line("txt = "),
            says: &["unknown field"],
        },
        Case {
            name: "retention of zero days",
            file: "sirena.toml",
            edit: Edit::Append(drill("delivered_days = 30", "delivered_days = 0")),
            at: At::Line("delivered_days"),
            says: &["delivered_days must be at least 1"],
        },
        Case {
            name: "help requests kept for zero days",
            file: "sirena.toml",
            edit: Edit::Append(drill("help_requests_days = 90", "help_requests_days = 0")),
            at: At::Line("help_requests_days"),
            says: &["help_requests_days must be at least 1"],
        },
    ]);
}

/// `[telegram] mode = "webhook"` needs a public https URL under `/telegram/`, a secret
/// and the HTTP endpoint; each mistake is reported at its key, a missing key at `mode`.
#[test]
fn telegram_webhook_mistakes_are_reported_at_their_key() {
    const TOKEN: &str = "token_env = \"TELEGRAM_BOT_TOKEN\"";
    check_all(&[
        Case {
            name: "webhook mode without a URL",
            file: "sirena.toml",
            edit: Edit::Replace(
                TOKEN,
                "token_env = \"TELEGRAM_BOT_TOKEN\"\nmode = \"webhook\"\nwebhook_secret_env = \"TG_HOOK\"",
            ),
            at: At::Line("mode = \"webhook\""),
            says: &["needs webhook_url"],
        },
        Case {
            name: "webhook mode without a secret",
            file: "sirena.toml",
            edit: Edit::Replace(
                TOKEN,
                "token_env = \"TELEGRAM_BOT_TOKEN\"\nmode = \"webhook\"\nwebhook_url = \"https://bot.example.org/telegram/hook\"",
            ),
            at: At::Line("mode = \"webhook\""),
            says: &["needs webhook_secret_env"],
        },
        Case {
            name: "webhook mode without [http]",
            file: "sirena.toml",
            edit: Edit::NoHttp(&Edit::Replace(TOKEN, "token_env = \"TELEGRAM_BOT_TOKEN\"\nmode = \"webhook\"")),
            at: At::Line("mode = \"webhook\""),
            says: &["HTTP endpoint", "[http] listen"],
        },
        Case {
            name: "a webhook URL that is not https",
            file: "sirena.toml",
            edit: Edit::Replace(
                TOKEN,
                "token_env = \"TELEGRAM_BOT_TOKEN\"\nmode = \"webhook\"\nwebhook_url = \"http://bot.example.org/telegram/hook\"\nwebhook_secret_env = \"TG_HOOK\"",
            ),
            at: At::Line("webhook_url = "),
            says: &["must be https"],
        },
        Case {
            name: "a webhook URL outside /telegram/",
            file: "sirena.toml",
            edit: Edit::Replace(
                TOKEN,
                "token_env = \"TELEGRAM_BOT_TOKEN\"\nmode = \"webhook\"\nwebhook_url = \"https://bot.example.org/hook\"\nwebhook_secret_env = \"TG_HOOK\"",
            ),
            at: At::Line("webhook_url = "),
            says: &["/telegram/<name>"],
        },
        Case {
            name: "an empty webhook secret variable",
            file: "sirena.toml",
            edit: Edit::Replace(
                TOKEN,
                "token_env = \"TELEGRAM_BOT_TOKEN\"\nmode = \"webhook\"\nwebhook_url = \"https://bot.example.org/telegram/hook\"\nwebhook_secret_env = \" \"",
            ),
            at: At::Line("webhook_secret_env = "),
            says: &["must name an environment variable"],
        },
        Case {
            name: "an unknown mode",
            file: "sirena.toml",
            edit: Edit::Replace(TOKEN, "token_env = \"TELEGRAM_BOT_TOKEN\"\nmode = \"push\""),
            at: At::Line("mode = \"push\""),
            says: &["unknown variant `push`"],
        },
        Case {
            name: "a zero handle_timeout",
            file: "sirena.toml",
            edit: Edit::Replace(TOKEN, "token_env = \"TELEGRAM_BOT_TOKEN\"\nhandle_timeout = \"0s\""),
            at: At::Line("handle_timeout = "),
            says: &["handle_timeout must be more than zero"],
        },
    ]);
}
