//! Name search and containment on the shipped region tree, as residents and the bot use
//! them.

mod common;

use std::process::Command;

use sirena::config::Config;
use sirena::regions::{Level, RegionId};

const KUPIANSK_CITY: &str = "UA63080090010026457";
const KINDRASHIVKA_HROMADA: &str = "UA63080070000080622";
const KINDRASHIVKA_VILLAGE: &str = "UA63080070010082928";
const KHARKIV_CITY: &str = "UA63120270010096107";
const KHARKIV_OBLAST: &str = "UA63000000000041885";
const LVIV_CITY: &str = "UA46060250010015970";
const LVIV_OBLAST: &str = "UA46000000000026241";

fn shipped() -> Config {
    common::shipped()
}

fn id(s: &str) -> RegionId {
    RegionId::parse(s).expect("a KATOTTG code")
}

/// The ids `find` returns for `query`, sorted.
fn find(config: &Config, query: &str) -> Vec<String> {
    let mut ids: Vec<String> = config.tree.find(query).iter().map(|r| r.id.to_string()).collect();
    ids.sort();
    ids
}

#[test]
fn names_find_exactly_the_place_meant() {
    let config = shipped();
    let check = |query: &str, expected: &[&str]| {
        assert_eq!(find(&config, query), expected, "query {query:?}");
    };
    // However Kupiansk is typed: apostrophes, case, the "м." prefix, transliterations.
    check("Куп’янськ", &[KUPIANSK_CITY]);
    check("куп'янськ", &[KUPIANSK_CITY]);
    check("КУПʼЯНСЬК", &[KUPIANSK_CITY]);
    check("м. Куп’янськ", &[KUPIANSK_CITY]);
    check("Kupiansk", &[KUPIANSK_CITY]);
    check("Kupyansk", &[KUPIANSK_CITY]);
    // The village, not the hromada named after it (Кіндрашівська громада).
    check("Кіндрашівка", &[KINDRASHIVKA_VILLAGE]);
    // The city, not the oblast, raion or hromada that share its stem.
    check("Харків", &[KHARKIV_CITY]);
    check("Львів", &[LVIV_CITY]);
    // By code.
    check(KINDRASHIVKA_HROMADA, &[KINDRASHIVKA_HROMADA]);
    check("Атлантида", &[]);
}

#[test]
fn two_villages_of_one_name_are_both_returned() {
    let config = shipped();
    let found = config.tree.find("Василівка");
    assert_eq!(found.len(), 2, "found {:?}", found.iter().map(|r| r.id.as_str()).collect::<Vec<_>>());
    assert_ne!(found[0].id, found[1].id);
    for r in &found {
        assert_eq!(r.level, Level::Village, "{}", r.id);
        assert_eq!(r.parent.as_ref().map(RegionId::as_str), Some(KINDRASHIVKA_HROMADA), "{}", r.id);
        assert_eq!(r.name.uk, "Василівка");
    }
}

#[test]
fn the_code_finds_the_hromada_itself() {
    let config = shipped();
    let found = config.tree.find(KINDRASHIVKA_HROMADA);
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].level, Level::Hromada);
    assert_eq!(found[0].name.uk, "Кіндрашівська громада");
}

#[test]
fn containment_follows_the_tree() {
    let config = shipped();
    let tree = &config.tree;
    let check = |place: &str, area: &str, expected: bool| {
        assert_eq!(tree.is_within(&id(place), &id(area)), expected, "is_within({place}, {area})");
    };
    check(KINDRASHIVKA_VILLAGE, KHARKIV_OBLAST, true);
    check(KINDRASHIVKA_VILLAGE, KINDRASHIVKA_HROMADA, true);
    check(KINDRASHIVKA_VILLAGE, KINDRASHIVKA_VILLAGE, true);
    check(KINDRASHIVKA_VILLAGE, LVIV_OBLAST, false);
    check(KINDRASHIVKA_HROMADA, KINDRASHIVKA_VILLAGE, false);
    check(KUPIANSK_CITY, KINDRASHIVKA_HROMADA, false);
    check(LVIV_CITY, LVIV_OBLAST, true);
    check(LVIV_CITY, KHARKIV_OBLAST, false);
}

#[test]
fn every_ancestor_chain_ends_at_a_top_level_region() {
    let config = shipped();
    let tree = &config.tree;
    let mut bad = Vec::new();
    for r in tree.iter() {
        let chain: Vec<&RegionId> = tree.ancestors(&r.id).collect();
        let last = chain.last().and_then(|top| tree.get(top));
        match last {
            Some(top) if top.level.is_top() && top.parent.is_none() => {}
            _ => bad.push(format!("{}: {:?}", r.id, chain.iter().map(|i| i.as_str()).collect::<Vec<_>>())),
        }
    }
    assert!(bad.is_empty(), "chains that do not reach an oblast:\n{}", bad.join("\n"));
}

#[test]
fn regions_find_prints_both_villages() {
    let (_tmp, config) = common::shipped_copy();
    let out = Command::new(env!("CARGO_BIN_EXE_sirena"))
        .env_remove("RUST_LOG")
        .args(["regions", "find", "Василівка", "--config"])
        .arg(&config)
        .output()
        .expect("run sirena");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "exit {:?}\nstderr: {}", out.status, String::from_utf8_lossy(&out.stderr));
    let lines: Vec<&str> = stdout.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 2, "stdout: {stdout}");
    let mut ids: Vec<&str> = lines.iter().filter_map(|l| l.split_whitespace().next()).collect();
    ids.sort();
    assert_eq!(ids, ["UA63080070030051324", "UA63080070040035330"], "stdout: {stdout}");
    for line in lines {
        assert!(line.contains("Василівка") && line.contains("Кіндрашівська громада"), "line: {line}");
    }
}
