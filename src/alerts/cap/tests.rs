//! The CAP book's lifecycle rules, one at a time.
use chrono::{DateTime, FixedOffset};

use super::*;
use crate::regions::tests_support::{KUPIANSK, KUPIANSK_H, OBLAST, RAION};
use crate::regions::{Level, Point, Region};
use crate::sources::cap::{CapArea, Certainty, Severity, Urgency};

const SENDER: &str = "dsns@example.gov.ua";

fn rid(s: &str) -> RegionId {
    RegionId::parse(s).expect("id")
}

fn tree() -> RegionTree {
    let region = |id: &str, parent: Option<&str>, level, point: Option<Point>| Region {
        point,
        ..Region::bare(rid(id), parent.map(rid), level)
    };
    RegionTree::build(vec![
        region(OBLAST, None, Level::Oblast, None),
        region(RAION, Some(OBLAST), Level::Raion, None),
        region(KUPIANSK_H, Some(RAION), Level::Hromada, None),
        region(KUPIANSK, Some(KUPIANSK_H), Level::City, Some(Point { lat: 49.717, lon: 37.583 })),
    ])
    .expect("tree")
}

fn at(s: &str) -> DateTime<FixedOffset> {
    DateTime::parse_from_rfc3339(s).expect("date")
}

fn now() -> DateTime<Utc> {
    at("2024-01-01T10:05:00+00:00").to_utc()
}

fn geocode(id: &str) -> CapArea {
    CapArea { desc: id.into(), polygons: vec![], circles: vec![], geocodes: vec![("KATOTTG".into(), id.into())] }
}

fn info(lang: &str, headline: &str, area: CapArea) -> CapInfo {
    CapInfo {
        language: lang.into(),
        categories: vec![Category::Safety],
        event: "Повітряна тривога".into(),
        response_types: vec![ResponseType::Shelter],
        urgency: Urgency::Immediate,
        severity: Severity::Extreme,
        certainty: Certainty::Observed,
        headline: Some(headline.into()),
        description: None,
        instruction: None,
        effective: None,
        onset: None,
        expires: Some(at("2024-01-01T12:00:00+00:00")),
        event_codes: vec![("alert_type".into(), "air_raid".into())],
        parameters: vec![],
        areas: vec![area],
    }
}

fn msg(id: &str, msg_type: MsgType, refs: &[&str], infos: Vec<CapInfo>) -> CapMessage {
    CapMessage {
        identifier: id.into(),
        sender: SENDER.into(),
        sent: at("2024-01-01T10:00:00+00:00"),
        status: CapStatus::Actual,
        msg_type,
        scope: None,
        references: refs
            .iter()
            .map(|r| CapReference { sender: SENDER.into(), identifier: (*r).into(), sent: at("2024-01-01T10:00:00Z") })
            .collect(),
        infos,
        dropped: vec![],
    }
}

fn air_raid(id: &str) -> CapMessage {
    msg(id, MsgType::Alert, &[], vec![info("uk-UA", "Тривога", geocode(KUPIANSK_H))])
}

fn identity(id: &str) -> String {
    format!("{SENDER},{id},2024-01-01T10:00:00+00:00")
}

#[test]
fn an_alert_starts_and_is_observed() {
    let mut book = CapBook::default();
    assert_eq!(book.apply(&air_raid("A1"), now(), &tree()), CapApplied::Started(identity("A1")));
    let active = book.active(now());
    assert_eq!(active.len(), 1);
    assert_eq!(active[0].kind, AlertKind::AirRaid);
    assert_eq!(active[0].regions, vec![rid(KUPIANSK_H)]);
    assert_eq!(active[0].started_at, at("2024-01-01T10:00:00Z").to_utc());
    let observed = book.observed(now());
    assert_eq!(observed.len(), 1);
    assert_eq!(observed[0].key, AlertKey { kind: AlertKind::AirRaid, region: rid(KUPIANSK_H) });
    assert_eq!(observed[0].started_at, active[0].started_at);
}

#[test]
fn an_update_replaces_regions_expiry_and_text() {
    let mut book = CapBook::default();
    book.apply(&air_raid("A1"), now(), &tree());
    let mut new = info(
        "uk-UA",
        "Тривога триває",
        CapArea {
            desc: "Куп’янськ".into(),
            polygons: vec![],
            circles: vec![((49.717, 37.583), 3.0)],
            geocodes: vec![],
        },
    );
    new.expires = Some(at("2024-01-01T14:00:00Z"));
    let update = msg("A2", MsgType::Update, &["A1"], vec![new]);
    assert_eq!(book.apply(&update, now(), &tree()), CapApplied::Updated(identity("A1")));
    let a = &book.active(now())[0];
    assert_eq!(a.regions, vec![rid(KUPIANSK)]);
    assert_eq!(a.expires, Some(at("2024-01-01T14:00:00Z").to_utc()));
    assert_eq!(a.infos[0].headline.as_deref(), Some("Тривога триває"));
    assert_eq!(a.started_at, at("2024-01-01T10:00:00Z").to_utc(), "an update does not restart");

    // An update about places the tree lacks keeps the regions it had.
    let elsewhere = msg("A3", MsgType::Update, &["A1", "A2"], vec![info("uk-UA", "?", geocode("UA46060250010015970"))]);
    assert_eq!(book.apply(&elsewhere, now(), &tree()), CapApplied::Updated(identity("A1")));
    assert_eq!(book.active(now())[0].regions, vec![rid(KUPIANSK)]);
}

#[test]
fn a_cancel_ends_and_is_said_once() {
    let mut book = CapBook::default();
    book.apply(&air_raid("A1"), now(), &tree());
    let cancel = msg("C1", MsgType::Cancel, &["A1"], vec![]);
    assert_eq!(book.apply(&cancel, now(), &tree()), CapApplied::Cancelled(identity("A1")));
    assert!(book.active(now()).is_empty());
    assert!(book.observed(now()).is_empty());
    assert_eq!(book.apply(&cancel, now(), &tree()), CapApplied::Ignored(CapIgnored::Duplicate));
    let again = msg("C2", MsgType::Cancel, &["A1"], vec![]);
    assert_eq!(book.apply(&again, now(), &tree()), CapApplied::Ignored(CapIgnored::Ended(identity("A1"))));
    let late = msg("U1", MsgType::Update, &["A1"], vec![info("uk-UA", "x", geocode(KUPIANSK_H))]);
    assert_eq!(book.apply(&late, now(), &tree()), CapApplied::Ignored(CapIgnored::Ended(identity("A1"))));
}

#[test]
fn a_cancel_of_an_unknown_alert_is_ignored() {
    let mut book = CapBook::default();
    let cancel = msg("C1", MsgType::Cancel, &["NEVER"], vec![]);
    assert_eq!(
        book.apply(&cancel, now(), &tree()),
        CapApplied::Ignored(CapIgnored::UnknownReference(vec![identity("NEVER")]))
    );
    assert_eq!(book, CapBook::default());
}

#[test]
fn an_update_of_an_unknown_alert_starts_it_under_the_original_identity() {
    let mut book = CapBook::default();
    let update = msg("A2", MsgType::Update, &["A1"], vec![info("uk-UA", "x", geocode(KUPIANSK_H))]);
    assert_eq!(book.apply(&update, now(), &tree()), CapApplied::Started(identity("A1")));
    assert_eq!(book.apply(&air_raid("A1"), now(), &tree()), CapApplied::Ignored(CapIgnored::Duplicate));
    assert_eq!(book.active(now()).len(), 1);
}

#[test]
fn the_last_known_reference_names_the_alert() {
    let mut book = CapBook::default();
    book.apply(&air_raid("A1"), now(), &tree());
    book.apply(&air_raid("B1"), now(), &tree());
    let cancel = msg("C1", MsgType::Cancel, &["A1", "B1", "UNSEEN"], vec![]);
    assert_eq!(book.apply(&cancel, now(), &tree()), CapApplied::Cancelled(identity("B1")));
    assert_eq!(book.active(now()).len(), 1);
}

#[test]
fn exercises_tests_drafts_and_acks_are_never_active() {
    let mut book = CapBook::default();
    for status in [CapStatus::Exercise, CapStatus::Test, CapStatus::Draft, CapStatus::System] {
        let mut m = air_raid("X");
        m.status = status.clone();
        assert_eq!(book.apply(&m, now(), &tree()), CapApplied::Ignored(CapIgnored::NotActual(status)));
    }
    let ack = msg("K", MsgType::Ack, &["A1"], vec![]);
    assert_eq!(book.apply(&ack, now(), &tree()), CapApplied::Ignored(CapIgnored::NotAnAlert(MsgType::Ack)));
    assert_eq!(book, CapBook::default());
}

#[test]
fn expiry_ends_and_prune_forgets_later() {
    let mut book = CapBook::default();
    book.apply(&air_raid("A1"), now(), &tree());
    let expiry = at("2024-01-01T12:00:00Z").to_utc();
    assert_eq!(book.active(expiry - Duration::seconds(1)).len(), 1);
    assert!(book.active(expiry).is_empty(), "ends at its expires");
    assert!(book.observed(expiry).is_empty());

    assert_eq!(book.prune(expiry + Duration::hours(1)), 0, "kept a while after it ended");
    assert_eq!(book.apply(&air_raid("A1"), expiry, &tree()), CapApplied::Ignored(CapIgnored::Duplicate));
    assert_eq!(book.prune(expiry + KEEP_ENDED), 1);
    assert_eq!(book, CapBook::default(), "its messages are forgotten too");

    let mut stale = air_raid("OLD");
    stale.infos[0].expires = Some(at("2024-01-01T10:01:00Z"));
    assert_eq!(book.apply(&stale, now(), &tree()), CapApplied::Ignored(CapIgnored::Expired));
}

#[test]
fn a_message_seen_twice_is_a_no_op() {
    let mut book = CapBook::default();
    book.apply(&air_raid("A1"), now(), &tree());
    let before = book.clone();
    assert_eq!(book.apply(&air_raid("A1"), now(), &tree()), CapApplied::Ignored(CapIgnored::Duplicate));
    assert_eq!(book, before);
}

#[test]
fn no_region_no_alert() {
    let mut book = CapBook::default();
    let m = msg("N", MsgType::Alert, &[], vec![info("en-US", "x", geocode("UA46060250010015970"))]);
    let why = CapIgnored::NoArea("1 geocode of scheme KATOTTG and no polygon".into());
    assert_eq!(book.apply(&m, now(), &tree()), CapApplied::Ignored(why));
    let bare = msg("N2", MsgType::Alert, &[], vec![]);
    assert_eq!(
        book.apply(&bare, now(), &tree()).to_string(),
        "ignored: no area in Ukraine: the message has no <info>, so no <area>"
    );

    let mut far = info("en-US", "x", geocode("UA46060250010015970"));
    far.areas[0].geocodes =
        vec![("UGC".into(), "MNZ020".into()), ("FIPS6".into(), "027031".into()), ("UGC".into(), "MNZ021".into())];
    far.areas.push(CapArea {
        desc: "b".into(),
        polygons: vec![vec![(1.0, 1.0), (1.0, 2.0), (2.0, 2.0)]],
        circles: vec![((1.0, 1.0), 3.0)],
        geocodes: vec![],
    });
    let m = msg("N3", MsgType::Alert, &[], vec![far]);
    assert_eq!(
        book.apply(&m, now(), &tree()).to_string(),
        "ignored: no area in Ukraine: 3 geocodes of scheme UGC, FIPS6, 1 polygon and 1 circle holding no settlement sirena knows"
    );
}

#[test]
fn evacuate_or_an_evacuation_code_makes_an_evacuation() {
    let mut i = info("uk-UA", "Евакуація", geocode(RAION));
    i.response_types = vec![ResponseType::Evacuate];
    assert_eq!(kind(std::slice::from_ref(&i)), (AlertKind::Evacuation, None), "Evacuate beats alert_type air_raid");
    i.response_types = vec![ResponseType::Prepare];
    i.event_codes = vec![("SAME".into(), "EVI".into())];
    assert_eq!(kind(std::slice::from_ref(&i)), (AlertKind::Evacuation, None));
    i.event_codes = vec![("alert_type".into(), "Evacuation".into())];
    assert_eq!(kind(std::slice::from_ref(&i)), (AlertKind::Evacuation, None));
    i.event_codes = vec![];
    assert_eq!(kind(&[i]).0, AlertKind::Unknown, "Prepare alone is not an evacuation");
}

#[test]
fn an_info_without_expires_keeps_the_alert_until_a_cancel() {
    let mut book = CapBook::default();
    let mut open = info("en-US", "x", geocode(KUPIANSK_H));
    open.expires = None;
    let m = msg("E1", MsgType::Alert, &[], vec![info("uk-UA", "x", geocode(KUPIANSK_H)), open]);
    book.apply(&m, now(), &tree());
    assert_eq!(book.active(now())[0].expires, None);
    assert_eq!(book.active(at("2024-01-02T00:00:00Z").to_utc()).len(), 1);
}

#[test]
fn kinds_from_codes_categories_or_the_event() {
    let mut i = info("uk-UA", "x", geocode(KUPIANSK_H));
    i.event_codes = vec![("ALERT_TYPE".into(), "drone_swarm".into())];
    assert_eq!(kind(std::slice::from_ref(&i)), (AlertKind::Unknown, Some("drone_swarm".into())));
    i.event_codes = vec![("SAME".into(), "CAE".into())];
    i.categories = vec![Category::Cbrne];
    assert_eq!(kind(std::slice::from_ref(&i)), (AlertKind::Chemical, None));
    i.categories = vec![Category::Met];
    assert_eq!(kind(&[i]), (AlertKind::Unknown, Some("Повітряна тривога".into())));
}

#[test]
fn every_language_is_kept_and_picked_by_primary_subtag() {
    let mut book = CapBook::default();
    let m = msg(
        "L1",
        MsgType::Alert,
        &[],
        vec![info("en-US", "Air raid", geocode(KUPIANSK_H)), info("uk-UA", "Тривога", geocode(KUPIANSK))],
    );
    book.apply(&m, now(), &tree());
    let a = &book.active(now())[0];
    assert_eq!(a.regions, vec![rid(KUPIANSK_H), rid(KUPIANSK)], "areas of every info");
    assert_eq!(a.infos.len(), 2);
    assert_eq!(a.pick_info("uk").map(|t| t.headline.as_deref()), Some(Some("Тривога")));
    assert_eq!(a.pick_info("en-GB").map(|t| t.lang.as_str()), Some("en-US"));
    assert_eq!(a.pick_info("fr").map(|t| t.lang.as_str()), Some("en-US"), "else the first");
    assert_eq!(pick_info(&[], "uk"), None);
}

#[test]
fn the_book_survives_a_json_round_trip() {
    let mut book = CapBook::default();
    book.apply(&air_raid("A1"), now(), &tree());
    let json = serde_json::to_string(&book).expect("serialises");
    let mut back: CapBook = serde_json::from_str(&json).expect("deserialises");
    assert_eq!(back, book);
    let cancel = msg("C1", MsgType::Cancel, &["A1"], vec![]);
    assert_eq!(back.apply(&cancel, now(), &tree()), CapApplied::Cancelled(identity("A1")));
}
