//! Feed ids for the imported codifier: ours, from alerts.in.ua's and ukrainealarm's
//! region lists, against the reference crosswalk in ../shared/data; and how an
//! operator's hand-written feed id moves one.

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use sirena::config::codifier::{FeedList, KeepFeedIds, generated_path, import};
use sirena::regions::crosswalk::{Crosswalk, FeedLevel, alerts_in_ua_places, crosswalk, ukrainealarm_places};
use sirena::regions::{Region, RegionId, codifier};

const CODIFIER: &str = "katottg/kodifikator-16-05-2025.csv";
const ALERTS_IN_UA: &str = "alerts_in_ua/locations_hierarchy.json";
const UKRAINEALARM: &str = "ukrainealarm/regions_v3_2022-07.json";
const REFERENCE: &str = "katottg/alerts_in_ua_uid_to_katottg.json";

fn read(data: &Path, rel: &str) -> String {
    std::fs::read_to_string(data.join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

fn ours(data: &Path) -> (Vec<Region>, Crosswalk) {
    let regions = codifier::parse(&read(data, CODIFIER)).expect("codifier");
    let lists = [
        alerts_in_ua_places(&read(data, ALERTS_IN_UA)).expect("alerts.in.ua list"),
        ukrainealarm_places(&read(data, UKRAINEALARM)).expect("ukrainealarm list"),
    ];
    let walk = crosswalk(&regions, &lists);
    (regions, walk)
}

/// uid → (type, name, katottg) of the reference file.
fn reference(data: &Path) -> BTreeMap<u32, (String, String, Option<String>)> {
    let rows: serde_json::Value = serde_json::from_str(&read(data, REFERENCE)).expect("reference JSON");
    rows.as_array()
        .expect("an array")
        .iter()
        .map(|r| {
            let uid = r["location_uid"].as_u64().and_then(|u| u32::try_from(u).ok()).expect("uid");
            let s = |k: &str| r[k].as_str().unwrap_or_default().to_owned();
            (uid, (s("type"), s("name"), r["katottg"].as_str().map(str::to_owned)))
        })
        .collect()
}

#[test]
fn our_crosswalk_agrees_with_the_reference_wherever_both_place_a_uid() {
    let Some(data) = common::shared_data() else { return };
    let (regions, walk) = ours(&data);
    let reference = reference(&data);
    let name = |id: &RegionId| regions.iter().find(|r| r.id == *id).map_or("?", |r| r.name.uk.as_str()).to_owned();
    let mut conflicts = Vec::new();
    let mut ours_only = Vec::new();
    let mut reference_only = Vec::new();
    for (uid, (kind, feed_name, code)) in &reference {
        let mine = walk.assigned.get(uid);
        match (mine, code) {
            (Some(m), Some(c)) if m.as_str() != c => {
                conflicts.push(format!("{uid} {feed_name}: ours {m} {}, reference {c}", name(m)))
            }
            (Some(m), None) => ours_only.push(format!("{uid} ({kind}) {feed_name} → {m} {}", name(m))),
            (None, Some(c)) => reference_only.push(format!("{uid} {feed_name} → {c}")),
            _ => {}
        }
    }
    let placed_by_reference = reference.values().filter(|(_, _, c)| c.is_some()).count();
    println!(
        "crosswalk: ours places {} uids, the reference {placed_by_reference}; {} conflicts; {} placed only by us; {} only by the reference; {} unplaced by us",
        walk.assigned.len(),
        conflicts.len(),
        ours_only.len(),
        reference_only.len(),
        walk.unmatched.len()
    );
    for line in &ours_only {
        println!("  only ours: {line}");
    }
    for u in &walk.unmatched {
        println!("  unplaced: {} {}: {}", u.place.uid, u.place.name, u.reason);
    }
    assert!(conflicts.is_empty(), "ours and the reference disagree:\n{}", conflicts.join("\n"));
    assert!(reference_only.is_empty(), "the reference places what we do not:\n{}", reference_only.join("\n"));
    // Every oblast and raion the feeds name is placed.
    for list in [ALERTS_IN_UA, UKRAINEALARM] {
        let places = if list == ALERTS_IN_UA {
            alerts_in_ua_places(&read(&data, list))
        } else {
            ukrainealarm_places(&read(&data, list))
        }
        .expect("list");
        let unplaced: Vec<String> = places
            .iter()
            .filter(|p| matches!(p.level, FeedLevel::Oblast | FeedLevel::Raion) && !walk.assigned.contains_key(&p.uid))
            .map(|p| format!("{} {}", p.uid, p.name))
            .collect();
        assert!(unplaced.is_empty(), "{list}: oblasts and raions unplaced: {unplaced:?}");
    }
    // Each region has one uid at most.
    let mut seen = std::collections::HashSet::new();
    for id in walk.assigned.values() {
        assert!(seen.insert(id), "{id} has two uids");
    }
}

#[test]
fn imported_feed_ids_map_alerts_and_a_hand_written_one_moves_a_uid_for_a_renaming() {
    let Some(data) = common::shared_data() else { return };
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("config");
    sirena::demo::write_embedded_config(&dir).expect("the shipped config");
    let lists = [FeedList::AlertsInUa(data.join(ALERTS_IN_UA)), FeedList::UkraineAlarm(data.join(UKRAINEALARM))];
    let report = import(&data.join(CODIFIER), &dir, &lists, KeepFeedIds::Refuse).expect("import");
    let placed = report.feed_ids;
    assert!(placed > 1_600, "{placed} uids placed");
    let config = sirena::config::load(&dir).unwrap_or_else(|e| panic!("{e}"));
    let (_, walk) = ours(&data);
    // A hromada far from the hand-written files, and the hand-written ones.
    let hromada = |id: &RegionId| config.tree.get(id).is_some_and(|r| r.level == sirena::regions::Level::Hromada);
    let (&uid, id) = walk
        .assigned
        .iter()
        .find(|(_, id)| id.as_str().starts_with("UA07") && hromada(id))
        .expect("a hromada's uid in Volyn oblast");
    assert_eq!(config.tree.by_feed_id(uid).map(|r| &r.id), Some(id), "uid {uid}");
    assert_eq!(config.tree.by_feed_id(22).map(|r| r.id.as_str()), Some("UA63000000000041885"), "Kharkiv oblast");
    assert_eq!(config.tree.by_feed_id(6293).map(|r| r.id.as_str()), Some("UA63120270010096107"), "Kharkiv city");

    // The operator says the uid is another hromada's (a renaming the lists missed).
    let other = walk
        .assigned
        .values()
        .find(|o| o.as_str().starts_with("UA07") && *o != id && hromada(o))
        .expect("another Volyn hromada")
        .clone();
    std::fs::write(
        dir.join("regions/renamings.toml"),
        format!("# The feed's uid {uid} names this hromada since its renaming.\n[[region]]\nid = \"{other}\"\nfeed_id = {uid}\n"),
    )
    .expect("write override");
    for round in 0..2 {
        let config = sirena::config::load(&dir).unwrap_or_else(|e| panic!("round {round}: {e}"));
        assert_eq!(config.tree.by_feed_id(uid).map(|r| &r.id), Some(&other), "round {round}");
        assert_eq!(config.tree.get(id).and_then(|r| r.feed_id), None, "the crosswalk's region lost the uid");
        let again = import(&data.join(CODIFIER), &dir, &lists, KeepFeedIds::Refuse).expect("re-import");
        assert!(!again.changed, "the same codifier and lists write the same bytes");
    }
    assert!(generated_path(&dir.join("regions")).is_file());
}
