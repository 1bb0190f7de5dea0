//! The shipped regions against the reference data in `../shared/data`: the official
//! KATOTTG codifier and the alerts.in.ua id crosswalk.
//!
//! The data lives outside the repository. Without it these tests print `SKIP` and pass,
//! unless `SIRENA_REQUIRE_SHARED=1`, as in CI, where its absence is a failure.

mod common;

use common::{shared_data, shipped};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde_json::Value;
use sirena::config::Config;
use sirena::regions::names::normalize;
use sirena::regions::{Level, Region, RegionId};

// ---------------------------------------------------------------- the codifier

/// One row of the KATOTTG codifier.
#[derive(Debug)]
struct Entry {
    category: char,
    /// The previous non-empty level column.
    parent: Option<String>,
    /// Trimmed; raion, hromada and oblast names are bare adjectives ("Харківська").
    name: String,
}

const HEADER: [&str; 7] = [
    "Перший рівень",
    "Другий рівень",
    "Третій рівень",
    "Четвертий рівень",
    "Додатковий рівень",
    "Категорія об’єкта",
    "Назва об’єкта",
];

/// Code → entry. `;`-separated, UTF-8, CRLF, a header row, no quoting.
fn read_codifier(path: &Path) -> HashMap<String, Entry> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
    let mut lines = text.split("\r\n");
    let header: Vec<&str> = lines.next().expect("a header row").split(';').collect();
    assert_eq!(header, HEADER, "codifier header");
    let mut entries = HashMap::new();
    for (i, line) in lines.enumerate() {
        if line.is_empty() {
            continue;
        }
        let row = i + 2;
        let fields: Vec<&str> = line.split(';').collect();
        assert_eq!(fields.len(), 7, "codifier row {row}: {line:?}");
        let levels: Vec<&str> = fields[..5].iter().copied().filter(|f| !f.is_empty()).collect();
        let (code, parent) = match levels.as_slice() {
            [.., parent, code] => (*code, Some((*parent).to_owned())),
            [code] => (*code, None),
            [] => panic!("codifier row {row} has no code: {line:?}"),
        };
        let mut category = fields[5].chars();
        let entry = Entry {
            category: category.next().unwrap_or_else(|| panic!("codifier row {row} has no category")),
            parent,
            name: fields[6].trim().to_owned(),
        };
        assert!(category.next().is_none(), "codifier row {row}: category {:?}", fields[5]);
        let previous = entries.insert(code.to_owned(), entry);
        assert!(previous.is_none(), "codifier row {row}: {code} appears twice");
    }
    assert!(entries.len() > 30_000, "only {} codifier rows", entries.len());
    entries
}

fn level_of(category: char) -> Option<Level> {
    Some(match category {
        'O' => Level::Oblast,
        'K' => Level::SpecialCity,
        'P' => Level::Raion,
        'H' => Level::Hromada,
        'M' => Level::City,
        'X' => Level::Settlement,
        'C' => Level::Village,
        'B' => Level::CityDistrict,
        _ => return None,
    })
}

/// What is wrong with one region against its codifier row.
fn codifier_mismatch(r: &Region, codifier: &HashMap<String, Entry>) -> Option<String> {
    let Some(e) = codifier.get(r.id.as_str()) else {
        return Some(format!("{} ({}) is not in the codifier", r.id, r.name.uk));
    };
    let mut wrong = Vec::new();
    if level_of(e.category) != Some(r.level) {
        wrong.push(format!("level {:?}, codifier category {}", r.level, e.category));
    }
    if r.parent.as_ref().map(RegionId::as_str) != e.parent.as_deref() {
        wrong.push(format!("parent {:?}, codifier {:?}", r.parent.as_ref().map(RegionId::as_str), e.parent));
    }
    // Raion, hromada and oblast names are written "<adjective> район" and so on.
    if !r.name.uk.starts_with(&e.name) {
        wrong.push(format!("name {:?}, codifier {:?}", r.name.uk, e.name));
    }
    (!wrong.is_empty()).then(|| format!("{}: {}", r.id, wrong.join("; ")))
}

#[test]
fn every_region_matches_the_codifier() {
    let Some(data) = shared_data() else { return };
    let codifier = read_codifier(&data.join("katottg/kodifikator-16-05-2025.csv"));
    let config = shipped();
    let wrong: Vec<String> = config.tree.iter().filter_map(|r| codifier_mismatch(r, &codifier)).collect();
    assert!(wrong.is_empty(), "{} regions disagree with the codifier:\n{}", wrong.len(), wrong.join("\n"));
}

#[test]
fn both_villages_named_vasylivka_exist_in_the_codifier() {
    let Some(data) = shared_data() else { return };
    let codifier = read_codifier(&data.join("katottg/kodifikator-16-05-2025.csv"));
    let hromada = "UA63080070000080622";
    let mut found: Vec<&str> = codifier
        .iter()
        .filter(|(_, e)| e.name == "Василівка" && e.parent.as_deref() == Some(hromada))
        .map(|(code, e)| {
            assert_eq!(e.category, 'C', "{code}");
            code.as_str()
        })
        .collect();
    found.sort();
    assert_eq!(found, ["UA63080070030051324", "UA63080070040035330"]);
    let config = shipped();
    for code in found {
        assert!(config.tree.get(&RegionId::parse(code).expect("code")).is_some(), "{code} is not in config/");
    }
}

// ---------------------------------------------------------------- feed ids

/// One row of `alerts_in_ua_uid_to_katottg.json`.
struct Crosswalk {
    uid: u32,
    katottg: Option<String>,
}

fn read_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn read_crosswalk(path: &Path) -> Vec<Crosswalk> {
    let Value::Array(rows) = read_json(path) else { panic!("{}: not an array", path.display()) };
    rows.iter()
        .map(|row| Crosswalk {
            uid: row["location_uid"]
                .as_u64()
                .and_then(|u| u32::try_from(u).ok())
                .unwrap_or_else(|| panic!("no location_uid in {row}")),
            katottg: row["katottg"].as_str().map(str::to_owned),
        })
        .collect()
}

/// The alerts.in.ua feed id of the nearest ancestor (the region included) at `level`.
fn feed_id_at(config: &Config, id: &RegionId, level: Level) -> Option<u64> {
    config.tree.ancestors(id).filter_map(|a| config.tree.get(a)).find(|r| r.level == level)?.feed_id.map(u64::from)
}

/// A feed id the crosswalk leaves unmapped must be a city uid of locations_hierarchy.json
/// with the region's name, in the region's oblast and raion.
fn hierarchy_mismatch(config: &Config, r: &Region, uid: u32, hierarchy: &Value) -> Option<String> {
    let Some(loc) = hierarchy.get(uid.to_string()) else {
        return Some(format!("{}: feed_id {uid} is in neither the crosswalk nor locations_hierarchy.json", r.id));
    };
    let mut wrong = Vec::new();
    if loc["type"] != "city" || r.level != Level::City {
        wrong.push(format!("type {}, level {:?}", loc["type"], r.level));
    }
    if loc["name"].as_str().map(normalize) != Some(normalize(&r.name.uk)) {
        wrong.push(format!("name {}, region {:?}", loc["name"], r.name.uk));
    }
    if loc["oblast_id"].as_u64() != feed_id_at(config, &r.id, Level::Oblast) {
        wrong.push(format!("oblast_id {}", loc["oblast_id"]));
    }
    if loc["district_id"].as_u64() != feed_id_at(config, &r.id, Level::Raion) {
        wrong.push(format!("district_id {}", loc["district_id"]));
    }
    (!wrong.is_empty()).then(|| format!("{}: feed_id {uid} in locations_hierarchy.json: {}", r.id, wrong.join("; ")))
}

#[test]
fn every_feed_id_agrees_with_the_crosswalk() {
    let Some(data) = shared_data() else { return };
    let crosswalk = read_crosswalk(&data.join("katottg/alerts_in_ua_uid_to_katottg.json"));
    let hierarchy = read_json(&data.join("alerts_in_ua/locations_hierarchy.json"));
    assert!(hierarchy.as_object().is_some_and(|o| o.len() > 1000), "locations_hierarchy.json is not a uid map");
    let by_uid: HashMap<u32, Option<&str>> = crosswalk.iter().map(|c| (c.uid, c.katottg.as_deref())).collect();
    let config = shipped();
    let mut wrong = Vec::new();
    let mut checked = 0;
    for r in config.tree.iter() {
        let Some(uid) = r.feed_id else { continue };
        checked += 1;
        match by_uid.get(&uid) {
            Some(Some(code)) if *code == r.id.as_str() => {}
            Some(Some(code)) => wrong.push(format!("{}: feed_id {uid} is {code} in the crosswalk", r.id)),
            Some(None) | None => wrong.extend(hierarchy_mismatch(&config, r, uid, &hierarchy)),
        }
    }
    // The other way round: a region the crosswalk maps a uid to carries that uid.
    for c in &crosswalk {
        let Some(code) = &c.katottg else { continue };
        if let Some(r) = config.tree.get(&RegionId::parse(code).expect("crosswalk code"))
            && r.feed_id != Some(c.uid)
        {
            wrong.push(format!("{}: feed_id {:?}, the crosswalk maps uid {} to it", r.id, r.feed_id, c.uid));
        }
    }
    assert!(checked > 30, "only {checked} regions have a feed_id");
    assert!(wrong.is_empty(), "feed ids disagree with the reference data:\n{}", wrong.join("\n"));
}

/// Real and fixture bodies of alerts.in.ua decode with the shipped region files.
#[test]
fn adapter_decodes_every_sample_body() {
    let Some(data) = shared_data() else { return };
    let config = shipped();
    let dir = data.join("alerts_in_ua");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    let mut decoded = Vec::new();
    for path in files {
        let bytes = std::fs::read(&path).expect("read sample");
        let json: Value = serde_json::from_slice(&bytes).expect("sample is JSON");
        if !json.get("alerts").is_some_and(Value::is_array) {
            continue;
        }
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_owned();
        let d = sirena::sources::alerts_in_ua::decode(&bytes, &config.tree)
            .unwrap_or_else(|e| panic!("{name}: not decoded: {e}"));
        assert!(d.unmapped.is_empty(), "{name}: locations without a region: {:?}", d.unmapped);
        let listed = json["alerts"]
            .as_array()
            .map(|a| a.iter().filter(|x| x.get("finished_at").is_none_or(Value::is_null)).count())
            .unwrap_or(0);
        assert_eq!(d.alerts.len(), listed, "{name}: every active alert is kept: {:?}", d.alerts);
        decoded.push((name, d));
    }
    let get = |name: &str| {
        decoded
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, d)| d)
            .unwrap_or_else(|| panic!("{name} missing from {}", dir.display()))
    };
    // A real record: Luhansk oblast, uid as a string.
    let luhansk = get("ralertsinua_active_alerts_sample.json");
    assert_eq!(luhansk.alerts.len(), 1);
    assert_eq!(luhansk.alerts[0].key.kind, sirena::alerts::AlertKind::AirRaid);
    assert_eq!(luhansk.alerts[0].key.region.as_str(), "UA44000000000018893");
    // A fixture with integer uids: Kharkiv oblast and uid 1293 (Kharkiv hromada).
    let php = get("php_fixture_active_alerts.json");
    let regions: Vec<&str> = php.alerts.iter().map(|a| a.key.region.as_str()).collect();
    assert_eq!(regions, vec!["UA63000000000041885", "UA63120270000028556"]);
    assert!(php.alerts.iter().all(|a| a.key.kind == sirena::alerts::AlertKind::AirRaid && a.raw_kind.is_none()));
}
