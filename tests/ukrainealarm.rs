//! The ukrainealarm v3 decoder against the reference payloads in
//! `../shared/data/ukrainealarm`, mapped with the shipped region tree.
//!
//! The data lives outside the repository. Without it these tests print `SKIP` and pass,
//! unless `SIRENA_REQUIRE_SHARED=1`, where its absence is a failure.

mod common;

use common::{shared_data, shipped};
use std::path::Path;

use chrono::DateTime;
use serde_json::Value;
use sirena::alerts::{AlertKind, AlertLevel, Threat, ThreatKind};
use sirena::sources::SourceError;
use sirena::sources::ukrainealarm::{decode_alerts, decode_record, decode_status, record_region_id};

const ZAKARPATTIA: &str = "UA21000000000011690";

/// The samples file: fragments keyed by a description.
fn samples(dir: &Path) -> serde_json::Map<String, Value> {
    let path = dir.join("ukrainealarm/alerts_v3_samples.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    match serde_json::from_str(&text) {
        Ok(Value::Object(map)) => map,
        other => panic!("{}: not an object: {other:?}", path.display()),
    }
}

fn fragment(samples: &serde_json::Map<String, Value>, prefix: &str) -> Value {
    let found: Vec<&Value> = samples.iter().filter(|(k, _)| k.starts_with(prefix)).map(|(_, v)| v).collect();
    assert_eq!(found.len(), 1, "one fragment named {prefix}…");
    found[0].clone()
}

fn bytes(v: &Value) -> Vec<u8> {
    serde_json::to_vec(v).expect("serialises")
}

#[test]
fn every_sample_fragment_decodes_in_its_decoder() {
    let Some(dir) = shared_data() else { return };
    let cfg = shipped();
    let tree = &cfg.tree;
    let samples = samples(&dir);
    let mut seen = 0;

    // An oblast's own air raid: a record as in /api/v3/alerts, and as a webhook push.
    let state = fragment(&samples, "jaam_test_state_level_alert");
    for decoded in [
        decode_alerts(&bytes(&Value::Array(vec![state.clone()])), tree).expect("list decodes"),
        decode_record(&bytes(&state), tree).expect("record decodes"),
    ] {
        assert_eq!(decoded.alerts.len(), 1);
        let a = &decoded.alerts[0];
        assert_eq!(a.key.kind, AlertKind::AirRaid);
        assert_eq!(a.key.region.as_str(), ZAKARPATTIA);
        assert_eq!(a.started_at, DateTime::parse_from_rfc3339("2025-01-15T10:00:00Z").expect("date"));
        assert_eq!((a.level.clone(), a.threats.clone()), (None, vec![]));
        assert!(decoded.unmapped.is_empty());
    }
    assert_eq!(record_region_id(&bytes(&state)).expect("id"), sirena::sources::ukrainealarm::FeedId::Number(11));
    seen += 1;

    // A raion's alert inside the oblast record goes to the raion (Uzhhorod raion, 66),
    // never to the oblast. The shipped tree has no Zakarpattia raions: reported.
    let district = fragment(&samples, "jaam_test_district_alert_inside_state_record");
    let decoded = decode_alerts(&bytes(&Value::Array(vec![district])), tree).expect("decodes");
    match tree.by_feed_id(66) {
        None => {
            assert!(decoded.alerts.is_empty(), "{:?}", decoded.alerts);
            assert_eq!(decoded.unmapped.len(), 1);
            assert_eq!(decoded.unmapped[0].id, "66");
            assert_eq!(decoded.unmapped[0].title, "District in Закарпатська область");
        }
        Some(raion) => {
            assert_eq!(decoded.alerts.len(), 1);
            assert_eq!(decoded.alerts[0].key.region, raion.id);
            assert_ne!(raion.id.as_str(), ZAKARPATTIA);
        }
    }
    seen += 1;

    // Home Assistant's mock of /api/v3/alerts/{regionId} leaves out every id and date.
    // Such a body cannot place an alert, so it is refused, naming the first gap.
    let levels = fragment(&samples, "home_assistant_test_alert_levels");
    match decode_alerts(&bytes(&levels), tree) {
        Err(SourceError::Decode(msg)) => assert!(msg.starts_with("[0].activeAlerts[0].regionId"), "{msg}"),
        other => panic!("the id-less mock decoded: {other:?}"),
    }
    // With an id and a date filled in, its levels and reasons are read.
    let mut filled = levels.clone();
    for alert in filled[0]["activeAlerts"].as_array_mut().expect("alerts") {
        alert["regionId"] = Value::from("11");
        alert["lastUpdate"] = Value::from("2026-09-08T11:15:58.635824Z");
    }
    let decoded = decode_alerts(&bytes(&filled), tree).expect("filled mock decodes");
    assert_eq!(decoded.alerts.len(), 2);
    let air = &decoded.alerts[0];
    assert_eq!(air.key.kind, AlertKind::AirRaid);
    assert_eq!(air.level, Some(AlertLevel::Red));
    // Each reason's threat at its entry's level and from its createdAt.
    let created = |s| Some(DateTime::parse_from_rfc3339(s).expect("date").to_utc());
    assert_eq!(
        air.threats,
        vec![
            Threat {
                kind: ThreatKind::UnspecifiedMissiles,
                level: Some(AlertLevel::Red),
                started_at: created("2026-09-08T11:40:15.440927Z")
            },
            Threat {
                kind: ThreatKind::Drones,
                level: Some(AlertLevel::Yellow),
                started_at: created("2026-09-08T11:15:58.635824Z")
            },
        ]
    );
    assert!(decoded.dropped.is_empty(), "{:?}", decoded.dropped);
    let nuclear = &decoded.alerts[1];
    assert_eq!(nuclear.key.kind, AlertKind::Nuclear);
    assert_eq!((nuclear.level.clone(), nuclear.threats.clone()), (None, vec![]));
    seen += 1;

    let status = fragment(&samples, "status_endpoint");
    assert_eq!(decode_status(&bytes(&status)).expect("status decodes"), 0);
    seen += 1;

    // A fragment added to the file later must get a decoder here too.
    assert_eq!(samples.keys().filter(|k| !k.starts_with('_')).count(), seen, "fragments: {:?}", samples.keys());
}

#[test]
fn the_regions_tree_has_the_documented_shape_and_states_map_to_oblasts() {
    let Some(dir) = shared_data() else { return };
    let path = dir.join("ukrainealarm/regions_v3_2022-07.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let body: Value = serde_json::from_str(&text).expect("regions JSON");
    let states = body["states"].as_array().expect("states[]");
    assert_eq!(states.len(), 25, "24 oblasts and Kyiv city");

    let mut counts = [0usize; 3];
    fn walk(node: &Value, depth: usize, counts: &mut [usize; 3]) {
        let expect = ["State", "District", "Community"][depth];
        assert_eq!(node["regionType"], expect, "{node}");
        assert!(node["regionId"].as_str().is_some_and(|id| id.parse::<u32>().is_ok()), "{node}");
        assert!(node["regionName"].as_str().is_some_and(|n| !n.is_empty()), "{node}");
        counts[depth] += 1;
        for child in node["regionChildIds"].as_array().into_iter().flatten() {
            walk(child, depth + 1, counts);
        }
    }
    for state in states {
        walk(state, 0, &mut counts);
    }
    assert_eq!(counts, [25, 122, 1457]);

    // regionId is the alerts.in.ua uid space: every state is an oblast-level region
    // of the shipped tree (Kyiv city is a top-level region of its own).
    let cfg = shipped();
    for state in states {
        let id: u32 = state["regionId"].as_str().and_then(|s| s.parse().ok()).expect("id");
        let region =
            cfg.tree.by_feed_id(id).unwrap_or_else(|| panic!("state {id} {} not in the tree", state["regionName"]));
        assert!(region.level.is_top(), "{id} maps to {:?} at {:?}", region.id, region.level);
        assert_eq!(region.parent, None);
    }
}
