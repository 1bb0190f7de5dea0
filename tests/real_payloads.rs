//! Every real alerts.in.ua and ukrainealarm payload in `../shared/data/real/` (origins
//! in its `SOURCES.md`) through the decoder of the endpoint it comes from, with the
//! regions, kinds, levels and threats it holds, or the refusal sirena rightly gives in
//! an operator's words; and the alerts.in.ua body written from the provider's official
//! client (`tests/fixtures/SOURCES.md`). A real file missing from a table fails.
//!
//! Without the shared data the real-payload tests print `SKIP` and pass, unless
//! `SIRENA_REQUIRE_SHARED=1`.

mod common;

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use common::{shared_data, shipped};
use sirena::alerts::{AlertKind, AlertLevel, Threat, ThreatKind};
use sirena::regions::RegionTree;
use sirena::sources::{Decoded, SourceError, Unmapped, alerts_in_ua, ukrainealarm};

const ZAKARPATTIA: &str = "UA21000000000011690";
const KHARKIV_OBLAST: &str = "UA63000000000041885";

fn files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("dir entry").path())
        .collect();
    files.sort();
    files
}

fn name(path: &Path) -> &str {
    path.file_name().and_then(|n| n.to_str()).unwrap_or_default()
}

fn time(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).expect("time").to_utc()
}

/// (kind, region, start, level, threats) of each alert, in order.
type Seen = (AlertKind, String, DateTime<Utc>, Option<AlertLevel>, Vec<Threat>);

fn seen(d: &Decoded) -> Vec<Seen> {
    d.alerts
        .iter()
        .map(|a| (a.key.kind, a.key.region.as_str().to_owned(), a.started_at, a.level.clone(), a.threats.clone()))
        .collect()
}

fn refused(result: Result<Decoded, SourceError>, file: &str) -> String {
    match result {
        Err(SourceError::Decode(msg)) => msg,
        other => panic!("{file}: decoded: {other:?}"),
    }
}

/// What each real ukrainealarm payload is and what sirena makes of it.
fn ukrainealarm_case(file: &str, body: &[u8], tree: &RegionTree) {
    match file {
        // A v1 history record of an oblast with nothing active: no alerts, and no
        // error (an empty list is an empty list).
        "jaam__hist_v1_no_active.json" => {
            let d = ukrainealarm::decode_alerts(body, tree).expect(file);
            assert_eq!(d, Decoded::default(), "{file}");
        }
        // A Community record (495) holding its own ARTILLERY alert and an oblast's AIR
        // alert (11, Zakarpattia), with an empty regionEngName. The shipped regions
        // lack hromada 495: reported under the record's name, the oblast's alert kept.
        "jaam__ws_v3_community_artillery.json" => {
            let d = ukrainealarm::decode_alerts(body, tree).expect(file);
            assert!(tree.by_feed_id(495).is_none(), "the shipped regions gained 495: update this case");
            assert_eq!(
                seen(&d),
                vec![(AlertKind::AirRaid, ZAKARPATTIA.to_owned(), time("2022-04-04T16:45:00Z"), None, vec![])]
            );
            assert_eq!(d.unmapped, vec![Unmapped { id: "495".into(), title: "Закарпатська область".into() }]);
            assert!(d.dropped.is_empty(), "{:?}", d.dropped);
        }
        // An oblast's own air raid, as /api/v3/alerts lists it.
        "jaam__ws_v3_state_air.json" => {
            let d = ukrainealarm::decode_alerts(body, tree).expect(file);
            assert_eq!(
                seen(&d),
                vec![(AlertKind::AirRaid, ZAKARPATTIA.to_owned(), time("2025-01-15T10:00:00Z"), None, vec![])]
            );
            assert!(d.unmapped.is_empty() && d.dropped.is_empty(), "{d:?}");
        }
        // The spec's example: codegen placeholders where ids go. The spec types
        // `regionId` as a string, so "regionId" is an id no region carries: decoded,
        // reported as unmapped, no alert placed.
        "openapi__alerts_example.json" => {
            let d = ukrainealarm::decode_alerts(body, tree).expect(file);
            assert!(d.alerts.is_empty(), "{d:?}");
            assert_eq!(d.unmapped.iter().map(|u| u.id.as_str()).collect::<Vec<_>>(), ["regionId"], "{d:?}");
        }
        // /api/v3/regions is another endpoint: not a list of alerts.
        "openapi__regions_example.json" => {
            let msg = refused(ukrainealarm::decode_alerts(body, tree), file);
            assert_eq!(msg, "body is an object, not an array of region records");
        }
        // The spec's webhook example, placeholders for ids: decoded, its region unmapped.
        "openapi__webhook_push_example.json" => {
            let d = ukrainealarm::decode_record(body, tree).expect(file);
            assert!(d.alerts.is_empty(), "{d:?}");
            assert_eq!(d.unmapped.iter().map(|u| u.id.as_str()).collect::<Vec<_>>(), ["regionId"], "{d:?}");
        }
        other => panic!("real/ukrainealarm/{other} is not in this test's table: add what it holds"),
    }
}

/// What each real alerts.in.ua payload is and what sirena makes of it.
fn alerts_in_ua_case(file: &str, body: &[u8], tree: &RegionTree) {
    match file {
        // A history body: the finished alert is not active, the other is.
        "php-client__alerts_history.json" => {
            let d = alerts_in_ua::decode(body, tree).expect(file);
            assert_eq!(
                seen(&d),
                vec![(AlertKind::AirRaid, KHARKIV_OBLAST.to_owned(), time("2023-04-15T08:30:00Z"), None, vec![])]
            );
            assert!(d.unmapped.is_empty() && d.dropped.is_empty(), "{d:?}");
        }
        // The IoT endpoint's per-oblast string: another endpoint, refused as such.
        "ralertsinua__iot_by_oblast_string.json" => {
            let msg = refused(alerts_in_ua::decode(body, tree), file);
            assert_eq!(
                msg,
                "the body is the 27-letter oblast string of /v1/iot/active_air_raid_alerts_by_oblast.json (A, P, N \
                 per oblast), which names no raion or hromada: sirena reads /v1/alerts/active.json (give the source \
                 its base_url, not that endpoint)"
            );
        }
        other => panic!("real/alerts_in_ua/{other} is not in this test's table: add what it holds"),
    }
}

#[test]
fn every_real_ukrainealarm_payload_goes_through_its_decoder() {
    let Some(data) = shared_data() else { return };
    let tree = shipped().tree;
    let all = files(&data.join("real/ukrainealarm"));
    assert_eq!(all.len(), 6, "{all:?}");
    for path in &all {
        let body = std::fs::read(path).expect("read");
        ukrainealarm_case(name(path), &body, &tree);
    }
}

#[test]
fn every_real_alerts_in_ua_payload_goes_through_its_decoder() {
    let Some(data) = shared_data() else { return };
    let tree = shipped().tree;
    let all = files(&data.join("real/alerts_in_ua"));
    assert_eq!(all.len(), 2, "{all:?}");
    for path in &all {
        let body = std::fs::read(path).expect("read");
        alerts_in_ua_case(name(path), &body, &tree);
    }
}

/// The live API's shape as the official client reads it: every threat an object with
/// its own level and start; a yellow alert with a red threat; no `threats` key at all.
#[test]
fn the_official_client_shaped_body_decodes_with_per_threat_levels() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/alerts_in_ua/active_with_threats.json");
    let body = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let d = alerts_in_ua::decode(&body, &shipped().tree).expect("decodes");
    let threat = |kind, level, at: &str| Threat { kind, level: Some(level), started_at: Some(time(at)) };
    let missiles = |at: &str| threat(ThreatKind::UnspecifiedMissiles, AlertLevel::Red, at);
    let red = Some(AlertLevel::Red);
    let yellow = Some(AlertLevel::Yellow);
    assert_eq!(
        seen(&d),
        vec![
            (AlertKind::AirRaid, "UA44000000000018893".into(), time("2022-04-04T16:45:39Z"), red.clone(), vec![]),
            (
                AlertKind::AirRaid,
                KHARKIV_OBLAST.into(),
                time("2026-10-13T07:10:00Z"),
                red.clone(),
                vec![missiles("2026-10-13T07:12:05.123Z")]
            ),
            (
                AlertKind::Artillery,
                "UA63080090000067457".into(),
                time("2026-10-13T06:30:00Z"),
                red,
                vec![missiles("2026-10-13T07:00:00Z")]
            ),
            // A yellow alert carrying a red threat.
            (
                AlertKind::AirRaid,
                "UA46000000000026241".into(),
                time("2026-10-13T07:05:00Z"),
                yellow.clone(),
                vec![missiles("2026-10-13T07:20:00Z")]
            ),
            (
                AlertKind::AirRaid,
                "UA80000000000093317".into(),
                time("2026-10-13T07:12:05.123Z"),
                yellow.clone(),
                vec![threat(ThreatKind::Drones, AlertLevel::Yellow, "2026-10-13T07:12:05.123Z")]
            ),
            // No `threats` key: no threats, and nothing dropped.
            (AlertKind::AirRaid, "UA63080000000032022".into(), time("2026-10-13T07:30:00Z"), yellow, vec![]),
        ]
    );
    assert!(d.unmapped.is_empty() && d.dropped.is_empty(), "{d:?}");
}
