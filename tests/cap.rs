//! The CAP decoders and the CAP book against the real samples in `../shared/data/cap`.
//!
//! The data lives outside the repository. Without it these tests print `SKIP` and pass,
//! unless `SIRENA_REQUIRE_SHARED=1`, as in CI, where its absence is a failure.
//!
//! The samples hold Updates and a Cancel but not the messages they refer to, so the
//! lifecycle tests write each referenced original from the reference's own
//! `sender,identifier,sent`, placed on a Ukrainian region, and then apply the real
//! message to it.

mod common;

use common::shared_data;

use chrono::{DateTime, FixedOffset, Utc};
use sirena::alerts::AlertKind;
use sirena::alerts::cap::{CapApplied, CapBook, CapIgnored};
use sirena::regions::{Level, Point, Region, RegionId, RegionTree};
use sirena::sources::SourceError;
use sirena::sources::cap::{
    CapMessage, CapReference, CapStatus, Category, Certainty, MsgType, Scope, Severity, Urgency, decode_index,
    decode_message,
};

fn read(name: &str) -> Option<Vec<u8>> {
    let path = shared_data()?.join("cap").join(name);
    Some(std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display())))
}

fn message(name: &str) -> Option<CapMessage> {
    let bytes = read(name)?;
    Some(decode_message(&bytes).unwrap_or_else(|e| panic!("{name}: {e}")))
}

fn at(s: &str) -> DateTime<FixedOffset> {
    DateTime::parse_from_rfc3339(s).expect("date")
}

fn reference(sender: &str, identifier: &str, sent: &str) -> CapReference {
    CapReference { sender: sender.into(), identifier: identifier.into(), sent: at(sent) }
}

fn decode_error(xml: &[u8]) -> String {
    match decode_message(xml) {
        Err(SourceError::Decode(e)) => e,
        other => panic!("expected a decode error, got {other:?}"),
    }
}

const IPAWS_CANCEL: &str = "ipaws-cap12-cancel-signed.xml";
const TSUNAMI: &str = "ntwc-google-cap12-tsunami-cancellation-update.xml";
const NWS_INDEX: &str = "nws-atom-cap-index-feed.xml";
const BLIZZARD: &str = "nws-cap11-blizzard-warning.xml";
const A1: &str = "oasis-cap12-a1-homeland-security.xml";
const A2: &str = "oasis-cap12-a2-severe-thunderstorm-polygon.xml";
const A3: &str = "oasis-cap12-a3-earthquake-update.xml";
const A4: &str = "oasis-cap12-a4-amber-multilang.xml";

// ---------------------------------------------------------------- decoding

#[test]
fn every_sample_decodes() {
    let Some(dir) = shared_data() else { return };
    let mut names: Vec<String> = std::fs::read_dir(dir.join("cap"))
        .expect("cap folder")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".xml"))
        .collect();
    names.sort();
    assert_eq!(names, [IPAWS_CANCEL, TSUNAMI, NWS_INDEX, BLIZZARD, A1, A2, A3, A4], "the samples this suite knows");
    for name in &names {
        let bytes = read(name).expect("present");
        if name == NWS_INDEX {
            decode_index(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
        } else {
            decode_message(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
        }
    }
}

#[test]
fn a_signed_ipaws_cancel() {
    let Some(m) = message(IPAWS_CANCEL) else { return };
    assert_eq!(m.identifier, "AS-NV-58d33e3a-1f9a-4909-9d59-34e90b33b3e8");
    assert_eq!(m.sender, "bbrundage@dps.state.nv.us");
    assert_eq!(m.sent, at("2019-04-19T11:46:20-06:00"));
    assert_eq!(m.status, CapStatus::Actual);
    assert_eq!(m.msg_type, MsgType::Cancel);
    assert_eq!(m.scope, Some(Scope::Public));
    assert_eq!(
        m.references,
        vec![reference(
            "bbrundage@dps.state.nv.us",
            "AS-NV-e18921c7-1b35-4a81-9705-42d25c265ddd",
            "2019-04-18T12:02:32-06:00"
        )]
    );
    assert!(m.infos.is_empty(), "the signature is not read as content");
}

#[test]
fn a_tsunami_update_with_three_references() {
    let Some(m) = message(TSUNAMI) else { return };
    assert_eq!((m.identifier.as_str(), m.msg_type.clone()), ("PAAQ-4-mg5a94", MsgType::Update));
    let s = "wcatwc@noaa.gov";
    assert_eq!(
        m.references,
        vec![
            reference(s, "PAAQ-1-mg5a94", "2013-01-05T09:01:16Z"),
            reference(s, "PAAQ-2-mg5a94", "2013-01-05T09:30:16Z"),
            reference(s, "PAAQ-3-mg5a94", "2013-01-05T10:17:31Z"),
        ]
    );
    let info = &m.infos[0];
    assert_eq!(info.categories, vec![Category::Geo]);
    assert_eq!(info.event, "Tsunami Cancellation");
    assert_eq!(info.urgency, Urgency::Past);
    assert_eq!(info.severity, Severity::Unknown("Unknown".into()), "CAP's own Unknown");
    assert_eq!(info.certainty, Certainty::Unlikely);
    assert_eq!(info.expires, Some(at("2013-01-05T10:58:23Z")));
    assert_eq!(info.parameters.len(), 11);
    let ugc = info.parameters.iter().find(|(n, _)| n == "NWSUGC").map(|(_, v)| v.as_str());
    assert_eq!(ugc, Some("BCZ220-210-922-912-921-911-110-AKZ026>029-023-024-019>022-025-051258-"), "entities resolved");
    assert_eq!(info.areas.len(), 1);
    assert_eq!(info.areas[0].desc, "95 miles NW of Dixon Entrance, Alaska");
    assert_eq!(info.areas[0].circles, vec![((55.3, -134.9), 0.0)]);
}

#[test]
fn an_nws_cap_1_1_warning() {
    let Some(m) = message(BLIZZARD) else { return };
    assert!(m.identifier.starts_with("NOAA-NWS-ALERTS-MN1261CB03F0E0.BlizzardWarning."), "{}", m.identifier);
    assert_eq!(m.sent, at("2021-12-27T10:08:00-06:00"));
    assert_eq!(m.msg_type, MsgType::Alert);
    let info = &m.infos[0];
    assert_eq!(info.language, "en-US", "CAP's default");
    assert_eq!(info.event, "Blizzard Warning");
    assert_eq!(info.event_codes, vec![("SAME".to_string(), "BZW".to_string())]);
    assert_eq!(info.expires, Some(at("2021-12-27T18:00:00-06:00")));
    let area = &info.areas[0];
    assert!(area.polygons.is_empty(), "an empty <polygon> is no polygon");
    let codes: Vec<(&str, &str)> = area.geocodes.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
    assert_eq!(codes, [("FIPS6", "027031"), ("FIPS6", "027075"), ("UGC", "MNZ020"), ("UGC", "MNZ021")]);
}

#[test]
fn the_oasis_examples() {
    let (Some(a1), Some(a2), Some(a3), Some(a4)) = (message(A1), message(A2), message(A3), message(A4)) else {
        return;
    };
    assert_eq!(a1.identifier, "43b080713727");
    assert_eq!(a1.infos[0].categories, vec![Category::Security]);
    assert_eq!(a1.infos[0].parameters, vec![("HSAS".to_string(), "ORANGE".to_string())]);
    assert_eq!(a1.infos[0].areas[0].desc, "U.S. nationwide and interests worldwide");

    assert_eq!(a2.identifier, "KSTO1055887203");
    let polygon = &a2.infos[0].areas[0].polygons[0];
    assert_eq!(polygon.len(), 5);
    assert_eq!(polygon[0], (38.47, -120.14));
    assert_eq!(polygon.first(), polygon.last(), "CAP closes its rings");
    assert_eq!(a2.infos[0].areas[0].geocodes.len(), 3);
    assert_eq!(a2.infos[0].expires, Some(at("2003-06-17T16:00:00-07:00")));

    assert_eq!((a3.identifier.as_str(), a3.msg_type.clone()), ("TRI13970876.2", MsgType::Update));
    assert_eq!(a3.references, vec![reference("trinet@caltech.edu", "TRI13970876.1", "2003-06-11T20:30:00-07:00")]);
    assert_eq!(a3.infos[0].areas[0].circles, vec![((32.9525, -115.5527), 0.0)]);

    assert_eq!(a4.identifier, "KAR0-0306112239-SW");
    let langs: Vec<&str> = a4.infos.iter().map(|i| i.language.as_str()).collect();
    assert_eq!(langs, ["en-US", "es-US"]);
    assert_eq!(a4.infos[1].event, "Abducción de Niño");
    assert_eq!(a4.infos[1].headline.as_deref(), Some("Alerta Amber en el condado de Los Ángeles"));
}

#[test]
fn the_nws_atom_index() {
    let Some(bytes) = read(NWS_INDEX) else { return };
    let index = decode_index(&bytes).expect("decodes");
    assert!(index.skipped.is_empty());
    let entries = index.entries;
    assert_eq!(entries.len(), 1);
    let url = "https://alerts.weather.gov/cap/wwacapget.php?x=AK125867734B60.SpecialWeatherStatement.12586773BBE0AK.AFGSPSAFG.88fff69aab9bb2a74b526abf4c216ea1";
    assert_eq!(entries[0].id, url);
    assert_eq!(entries[0].url.as_deref(), Some(url), "the entry's link, not the feed's");
    assert_eq!(entries[0].updated, Some(at("2017-09-01T19:12:00-08:00")));
    assert_eq!(entries[0].embedded, None, "cap:* summary elements are not a message");
}

#[test]
fn bad_inputs_are_clear_errors() {
    let (Some(a1), Some(index)) = (read(A1), read(NWS_INDEX)) else { return };
    let text = String::from_utf8(a1.clone()).expect("utf-8");

    let truncated = decode_error(&a1[..a1.len() / 2]);
    assert!(truncated.contains("never closed") || truncated.contains("not well-formed"), "{truncated}");

    let html = decode_error(
        b"<!DOCTYPE html>\n<html><head><title>502 Bad Gateway</title></head><body><h1>502</h1></body></html>",
    );
    assert!(html.contains("root element <html> is not a CAP <alert>"), "{html}");
    let sloppy_html = decode_error(b"<html><head><meta charset=utf-8></head></html>");
    assert!(sloppy_html.contains("not well-formed"), "{sloppy_html}");

    let no_id = decode_error(text.replace("<identifier>43b080713727</identifier>", "").as_bytes());
    assert_eq!(no_id, "missing <identifier>");
    let no_status = decode_error(text.replace("<status>Actual</status>", "<status> </status>").as_bytes());
    assert_eq!(no_status, "missing <status>");

    let bad_sent = decode_error(text.replace("2003-04-02T14:39:01-05:00", "April 2nd").as_bytes());
    assert!(bad_sent.starts_with("sent `April 2nd`"), "{bad_sent}");

    let not_a_message = decode_error(&index);
    assert!(not_a_message.contains("root element <feed>"), "{not_a_message}");
    let not_an_index = decode_index(&a1).expect_err("a message is not an index").to_string();
    assert!(not_an_index.contains("neither an Atom <feed> nor an RSS <rss>"), "{not_an_index}");
    assert!(decode_index(&index[..index.len() - 40]).is_err(), "a truncated index");
}

// ---------------------------------------------------------------- lifecycle

const KUPIANSK_H: &str = "UA63080090000067457";
const KUPIANSK: &str = "UA63080090010026457";

fn tree() -> RegionTree {
    let rid = |s: &str| RegionId::parse(s).expect("id");
    let region = |id: &str, parent: Option<&str>, level, point: Option<Point>| Region {
        point,
        ..Region::bare(rid(id), parent.map(rid), level)
    };
    RegionTree::build(vec![
        region("UA63000000000041885", None, Level::Oblast, Some(Point { lat: 49.9935, lon: 36.2304 })),
        region("UA63080000000032022", Some("UA63000000000041885"), Level::Raion, None),
        region(KUPIANSK_H, Some("UA63080000000032022"), Level::Hromada, None),
        region(KUPIANSK, Some(KUPIANSK_H), Level::City, Some(Point { lat: 49.717, lon: 37.583 })),
    ])
    .expect("tree")
}

/// The original an Update or Cancel refers to, written from its reference: an air raid
/// on Kupiansk hromada, with `extra` XML inside `<alert>` (references, for an Update).
fn original(r: &CapReference, msg_type: &str, extra: &str) -> CapMessage {
    let xml = format!(
        r#"<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2"><identifier>{}</identifier><sender>{}</sender><sent>{}</sent><status>Actual</status><msgType>{msg_type}</msgType><scope>Public</scope>{extra}
        <info><category>Safety</category><event>Air raid</event><urgency>Immediate</urgency><severity>Extreme</severity><certainty>Observed</certainty>
        <eventCode><valueName>alert_type</valueName><value>air_raid</value></eventCode>
        <area><areaDesc>Kupiansk hromada</areaDesc><geocode><valueName>KATOTTG</valueName><value>{KUPIANSK_H}</value></geocode></area></info></alert>"#,
        r.identifier,
        r.sender,
        r.sent.to_rfc3339()
    );
    decode_message(xml.as_bytes()).expect("the written original decodes")
}

fn utc(s: &str) -> DateTime<Utc> {
    at(s).to_utc()
}

#[test]
fn the_ipaws_cancel_ends_the_alert_it_names() {
    let Some(cancel) = message(IPAWS_CANCEL) else { return };
    let tree = tree();
    let now = utc("2019-04-19T17:46:30Z");

    let mut empty = CapBook::default();
    let unknown = empty.apply(&cancel, now, &tree);
    assert_eq!(
        unknown,
        CapApplied::Ignored(CapIgnored::UnknownReference(vec![
            "bbrundage@dps.state.nv.us,AS-NV-e18921c7-1b35-4a81-9705-42d25c265ddd,2019-04-18T12:02:32-06:00".into()
        ]))
    );

    let mut book = CapBook::default();
    let identity = "bbrundage@dps.state.nv.us,AS-NV-e18921c7-1b35-4a81-9705-42d25c265ddd,2019-04-18T12:02:32-06:00";
    let started = book.apply(&original(&cancel.references[0], "Alert", ""), utc("2019-04-18T18:02:40Z"), &tree);
    assert_eq!(started, CapApplied::Started(identity.into()));
    assert_eq!(book.observed(now).len(), 1);
    assert_eq!(book.apply(&cancel, now, &tree), CapApplied::Cancelled(identity.into()));
    assert!(book.observed(now).is_empty());
    assert_eq!(book.apply(&cancel, now, &tree), CapApplied::Ignored(CapIgnored::Duplicate));
}

#[test]
fn the_earthquake_update_resolves_to_its_original_and_keeps_its_regions() {
    let Some(update) = message(A3) else { return };
    let tree = tree();
    let mut book = CapBook::default();
    let first = original(&update.references[0], "Alert", "");
    let identity = "trinet@caltech.edu,TRI13970876.1,2003-06-11T20:30:00-07:00";
    assert_eq!(book.apply(&first, utc("2003-06-12T03:30:10Z"), &tree), CapApplied::Started(identity.into()));

    let now = utc("2003-06-12T03:56:10Z");
    assert_eq!(book.apply(&update, now, &tree), CapApplied::Updated(identity.into()));
    let active = book.active(now);
    assert_eq!(active.len(), 1);
    // The update's circle (radius 0 in California) reaches no Ukrainian region, so
    // the alert keeps its regions; its text is the update's.
    assert_eq!(active[0].regions, vec![RegionId::parse(KUPIANSK_H).expect("id")]);
    assert_eq!(active[0].infos[0].headline.as_deref(), Some("EQ 3.4 Imperial County CA"));
    assert_eq!(active[0].kind, AlertKind::Unknown, "the update carries no alert_type");
    assert_eq!(active[0].raw_kind.as_deref(), Some("Earthquake"));
    assert_eq!(active[0].started_at, utc("2003-06-12T03:30:00Z"), "started when the original was sent");
}

#[test]
fn the_tsunami_cancellation_update_takes_the_last_known_reference_and_expires() {
    let Some(update) = message(TSUNAMI) else { return };
    let tree = tree();
    let mut book = CapBook::default();
    let [paaq1, _paaq2, paaq3] = &update.references[..] else { panic!("three references") };
    let identity = "wcatwc@noaa.gov,PAAQ-1-mg5a94,2013-01-05T09:01:16+00:00";
    assert_eq!(
        book.apply(&original(paaq1, "Alert", ""), utc("2013-01-05T09:01:20Z"), &tree),
        CapApplied::Started(identity.into())
    );
    let refs = format!("<references>{}</references>", paaq1.triple());
    assert_eq!(
        book.apply(&original(paaq3, "Update", &refs), utc("2013-01-05T10:17:40Z"), &tree),
        CapApplied::Updated(identity.into())
    );

    let now = utc("2013-01-05T10:58:00Z");
    assert_eq!(book.apply(&update, now, &tree), CapApplied::Updated(identity.into()));
    // A tsunami "cancellation" sent as an Update ends by expiring when it is sent.
    assert_eq!(book.active(now).len(), 1);
    assert!(book.active(utc("2013-01-05T10:58:23Z")).is_empty());
}

#[test]
fn real_messages_about_other_countries_resolve_to_no_region() {
    let tree = tree();
    let mut book = CapBook::default();
    for name in [A1, A2, A4, BLIZZARD] {
        let Some(m) = message(name) else { return };
        let verdict = book.apply(&m, m.sent.to_utc(), &tree);
        assert!(matches!(verdict, CapApplied::Ignored(CapIgnored::NoArea(_))), "{name}: {verdict}");
    }
    assert_eq!(book, CapBook::default());
}
