//! Name search over the whole imported codifier, as residents type names: case,
//! apostrophes, settlement-type prefixes, Latin, typos, Russian spellings.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use sirena::config::Config;
use sirena::regions::names::MatchKind;

const KUPIANSK: &str = "UA63080090010026457";
const KINDRASHIVKA: &str = "UA63080070010082928";
const KHARKIV: &str = "UA63120270010096107";
const KYIV: &str = "UA80000000000093317";
const YENAKIIEVE: &str = "UA14060070010013898";
const YAHOTYN: &str = "UA32040210010094429";
const ODESA: &str = "UA51100270010076757";

struct Country {
    /// Keeps the files for the CLI test.
    _tmp: tempfile::TempDir,
    dir: PathBuf,
    config: Config,
}

/// The shipped config with the whole codifier imported, once for every test here.
fn country() -> Option<(&'static Path, &'static Config)> {
    static COUNTRY: OnceLock<Option<Country>> = OnceLock::new();
    let c = COUNTRY
        .get_or_init(|| {
            let data = common::shared_data()?;
            let tmp = tempfile::tempdir().expect("tempdir");
            let dir = tmp.path().join("config");
            sirena::demo::write_embedded_config(&dir).expect("config");
            let csv = data.join("katottg/kodifikator-16-05-2025.csv");
            sirena::config::codifier::import(&csv, &dir, &[], sirena::config::codifier::KeepFeedIds::Refuse)
                .expect("import");
            let config = sirena::config::load(&dir).unwrap_or_else(|e| panic!("{e}"));
            Some(Country { _tmp: tmp, dir, config })
        })
        .as_ref()?;
    Some((c.dir.as_path(), &c.config))
}

/// (kind, ids) of a search.
fn search(config: &Config, query: &str) -> (MatchKind, Vec<String>) {
    let s = config.tree.search(query);
    (s.kind, s.regions.iter().map(|r| r.id.to_string()).collect())
}

#[test]
fn however_a_name_is_written_the_place_is_found_exactly() {
    let Some((_, config)) = country() else { return };
    let exact = |query: &str, want: &str| {
        let (kind, ids) = search(config, query);
        assert_eq!((kind, ids.as_slice()), (MatchKind::Exact, [want.to_string()].as_slice()), "query {query:?}");
    };
    for q in ["Куп’янськ", "куп'янськ", "КУПʼЯНСЬК", "Куп`янськ", "м. Куп’янськ", "м.Куп'янськ", "с. Куп'янськ"]
    {
        exact(q, KUPIANSK);
    }
    // The national transliteration, in any case.
    exact("Kupiansk", KUPIANSK);
    exact("KINDRASHIVKA", KINDRASHIVKA);
    exact("Kharkiv", KHARKIV);
    // Є, Я at the start of a word are Ye, Ya; inside it ie, ia.
    exact("Yenakiieve", YENAKIIEVE);
    exact("Yahotyn", YAHOTYN);
}

/// Kupiansk raion's Петропавлівська громада has a hand-written English name
/// (config/regions/kharkiv.toml: "Petropavlivka Hromada"); the Dnipropetrovsk one, from the
/// codifier, is named by the transliteration. The transliteration finds both, exactly.
#[test]
fn the_transliteration_finds_a_hromada_whose_english_name_is_written_otherwise() {
    let Some((_, config)) = country() else { return };
    let (kind, ids) = search(config, "Petropavlivska hromada");
    assert_eq!(kind, MatchKind::Exact, "{ids:?}");
    assert!(ids.contains(&"UA63080130000077600".to_string()), "Kupiansk raion's: {ids:?}");
    assert!(ids.contains(&"UA12140230000057328".to_string()), "Dnipropetrovsk oblast's: {ids:?}");
    let (kind, ids) = search(config, "Petropavlivka Hromada");
    assert_eq!((kind, ids.as_slice()), (MatchKind::Exact, ["UA63080130000077600".to_string()].as_slice()));
}

#[test]
fn typos_and_russian_spellings_are_offered_marked_fuzzy() {
    let Some((_, config)) = country() else { return };
    let first = |query: &str, want: &str| {
        let (kind, ids) = search(config, query);
        assert_eq!(kind, MatchKind::Fuzzy, "query {query:?}: {ids:?}");
        assert_eq!(ids.first().map(String::as_str), Some(want), "query {query:?}: {ids:?}");
        assert!(ids.len() <= sirena::regions::names::FUZZY_LIMIT);
    };
    // Russian spellings.
    first("Купянск", KUPIANSK);
    first("Харьков", KHARKIV);
    first("Киев", KYIV);
    first("Одесса", ODESA);
    first("Kharkov", KHARKIV);
    first("Kiev", KYIV);
    // One typo in a long name: a letter lost, a letter wrong, two letters swapped.
    first("Кіндрашвка", KINDRASHIVKA);
    first("Кіндрашівкп", KINDRASHIVKA);
    first("Кіндрашівак", KINDRASHIVKA);
    first("Kindrashivla", KINDRASHIVKA);
    // Nonsense finds nothing.
    assert!(search(config, "Атлантида-на-Дніпрі").1.is_empty());
    assert!(search(config, "qzxqzxqzx").1.is_empty());
}

#[test]
fn a_name_of_many_places_returns_every_one_cities_first() {
    let Some((_, config)) = country() else { return };
    let (kind, ids) = search(config, "Василівка");
    assert_eq!(kind, MatchKind::Exact);
    let codifier =
        std::fs::read_to_string(common::shared_data().expect("data").join("katottg/kodifikator-16-05-2025.csv"))
            .expect("codifier");
    let named = codifier.lines().filter(|l| l.trim_end().ends_with(";Василівка")).count();
    assert_eq!(ids.len(), named, "every Василівка of the codifier");
    for id in &ids {
        assert_eq!(
            config.tree.get(&sirena::regions::RegionId::parse(id).expect("id")).expect("region").name.uk,
            "Василівка"
        );
    }
    // Kyiv the city before the village of Kyiv.
    let (kind, ids) = search(config, "м. Київ");
    assert_eq!(kind, MatchKind::Exact);
    assert_eq!(ids.first().map(String::as_str), Some(KYIV), "{ids:?}");
    assert!(ids.len() > 1, "the village of Київ is there too: {ids:?}");
}

#[test]
fn regions_find_prints_the_city_with_its_hromada_raion_and_oblast() {
    let Some((dir, _)) = country() else { return };
    let run = |q: &str| {
        let out = Command::new(env!("CARGO_BIN_EXE_sirena"))
            .env_remove("RUST_LOG")
            .args(["regions", "find", q, "--config", dir.to_str().expect("utf-8")])
            .output()
            .expect("run sirena");
        assert!(out.status.success(), "{q}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let out = run("kupiansk");
    assert_eq!(
        out.trim(),
        format!("{KUPIANSK}  City  Куп’янськ, Куп’янська громада, Куп’янський район, Харківська область"),
        "{out}"
    );
    let out = run("Купянск");
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines[0].contains("did you mean"), "{out}");
    assert!(lines[1].starts_with(KUPIANSK), "{out}");
}
