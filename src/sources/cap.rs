//! CAP (OASIS Common Alerting Protocol) 1.1 and 1.2: messages and the Atom / RSS
//! indexes that list them.
//!
//! Decoding is pure. Elements are looked up by local name, so the CAP namespace (1.1,
//! 1.2, a prefix or none) does not matter, and an enveloped XML signature is skipped.
//! The message's required elements (`identifier`, `sender`, `sent`, `status`,
//! `msgType`) must be there, every date must parse, and every coordinate must be a
//! number in range: a message that breaks one of those is an error naming the element,
//! never a message with a hole. Values sirena does not know (a status, a category, …)
//! are kept as `Unknown(text)`. Inside `<info>`, missing elements are read leniently
//! (an empty event, `Unknown("")` enums): a sender's sloppy info should still warn.
//! Optional parts that do not read — an `effective`, `onset` or `expires` that is not
//! a date, a `parameter` or `eventCode` without its `valueName` — are left out of the
//! message and listed in [`CapMessage::dropped`]; the message is kept. An `expires`
//! left out means the alert lasts until a Cancel or an Update that says otherwise:
//! an alert that lasts too long is safer than an all-clear the sender never gave.
//! `identifier` and `sender` must not hold spaces or commas (CAP 1.2 §3.2.1): a later
//! Update or Cancel could not name such a message.
//!
//! Identity and lifecycle (Alert → Update → Cancel) live in the core:
//! [`crate::alerts::cap::CapBook`]. Areas resolve to regions in
//! [`crate::alerts::area`].

pub mod feed;
mod index;
mod read;
mod xml;

pub use index::{CapIndex, IndexEntry, decode_index};

use chrono::{DateTime, FixedOffset, SecondsFormat};
use serde::{Deserialize, Serialize};

use super::{Dropped, SourceError};
use crate::alerts::area::Shape;

macro_rules! cap_enum {
    ($(#[$meta:meta])* $name:ident { $($variant:ident = $text:literal $(| $alias:literal)*),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
        pub enum $name {
            $($variant,)+
            /// A value sirena does not know, kept as the sender spelled it.
            Unknown(String),
        }

        impl $name {
            /// Reads a CAP value, case-insensitively; never fails.
            pub fn parse(s: &str) -> Self {
                let s = s.trim();
                $(if s.eq_ignore_ascii_case($text) $(|| s.eq_ignore_ascii_case($alias))* {
                    return $name::$variant;
                })+
                $name::Unknown(s.to_owned())
            }

            /// The CAP spelling.
            pub fn as_str(&self) -> &str {
                match self {
                    $($name::$variant => $text,)+
                    $name::Unknown(s) => s,
                }
            }
        }
    };
}

cap_enum! {
    /// `<status>`. Only `Actual` is ever delivered as real (DESIGN §4).
    CapStatus { Actual = "Actual", Exercise = "Exercise", System = "System", Test = "Test", Draft = "Draft" }
}

cap_enum! {
    /// `<msgType>`.
    MsgType { Alert = "Alert", Update = "Update", Cancel = "Cancel", Ack = "Ack", Error = "Error" }
}

cap_enum! {
    /// `<scope>`.
    Scope { Public = "Public", Restricted = "Restricted", Private = "Private" }
}

cap_enum! {
    /// `<info><category>`.
    Category {
        Geo = "Geo", Met = "Met", Safety = "Safety", Security = "Security", Rescue = "Rescue",
        Fire = "Fire", Health = "Health", Env = "Env", Transport = "Transport", Infra = "Infra",
        Cbrne = "CBRNE", Other = "Other",
    }
}

cap_enum! {
    /// `<urgency>`. CAP's own value `Unknown` reads as `Unknown("Unknown")`.
    Urgency { Immediate = "Immediate", Expected = "Expected", Future = "Future", Past = "Past" }
}

cap_enum! {
    /// `<severity>`. CAP's own value `Unknown` reads as `Unknown("Unknown")`.
    Severity { Extreme = "Extreme", Severe = "Severe", Moderate = "Moderate", Minor = "Minor" }
}

cap_enum! {
    /// `<certainty>`. CAP 1.1's `Very Likely` reads as `Likely`, as CAP 1.2 says to.
    /// CAP's own value `Unknown` reads as `Unknown("Unknown")`.
    Certainty { Observed = "Observed", Likely = "Likely" | "Very Likely", Possible = "Possible", Unlikely = "Unlikely" }
}

cap_enum! {
    /// `<info><responseType>`: what the sender tells people to do.
    ResponseType {
        Shelter = "Shelter", Evacuate = "Evacuate", Prepare = "Prepare", Execute = "Execute",
        Avoid = "Avoid", Monitor = "Monitor", Assess = "Assess", AllClear = "AllClear", NoAction = "None",
    }
}

/// One entry of `<references>`: an earlier message, named as `sender,identifier,sent`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct CapReference {
    pub sender: String,
    pub identifier: String,
    pub sent: DateTime<FixedOffset>,
}

impl CapReference {
    /// `sender,identifier,sent`, with `sent` in RFC 3339 as parsed.
    pub fn triple(&self) -> String {
        triple(&self.sender, &self.identifier, &self.sent)
    }
}

/// `sender,identifier,sent` of a message or a reference: how CAP names a message.
pub fn triple(sender: &str, identifier: &str, sent: &DateTime<FixedOffset>) -> String {
    format!("{sender},{identifier},{}", sent.to_rfc3339_opts(SecondsFormat::AutoSi, false))
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CapMessage {
    pub identifier: String,
    pub sender: String,
    pub sent: DateTime<FixedOffset>,
    pub status: CapStatus,
    pub msg_type: MsgType,
    pub scope: Option<Scope>,
    /// The earlier messages an Update or Cancel refers to, in the sender's order.
    pub references: Vec<CapReference>,
    /// One per language (or per event); a Cancel often has none.
    pub infos: Vec<CapInfo>,
    /// Optional parts that did not read and were left out, for the poller to tell.
    #[serde(skip)]
    pub dropped: Vec<Dropped>,
}

impl CapMessage {
    /// This message's own `sender,identifier,sent`.
    pub fn triple(&self) -> String {
        triple(&self.sender, &self.identifier, &self.sent)
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CapInfo {
    /// RFC 3066 tag; CAP's default `en-US` when absent.
    pub language: String,
    pub categories: Vec<Category>,
    pub event: String,
    /// What the sender tells people to do; `Evacuate` makes an evacuation.
    pub response_types: Vec<ResponseType>,
    pub urgency: Urgency,
    pub severity: Severity,
    pub certainty: Certainty,
    pub headline: Option<String>,
    pub description: Option<String>,
    pub instruction: Option<String>,
    pub effective: Option<DateTime<FixedOffset>>,
    pub onset: Option<DateTime<FixedOffset>>,
    pub expires: Option<DateTime<FixedOffset>>,
    /// `(valueName, value)` of each `<eventCode>`.
    pub event_codes: Vec<(String, String)>,
    /// `(valueName, value)` of each `<parameter>`.
    pub parameters: Vec<(String, String)>,
    pub areas: Vec<CapArea>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CapArea {
    pub desc: String,
    /// Each a ring of `(lat, lon)` in degrees (WGS 84), as sent (CAP closes rings).
    pub polygons: Vec<Vec<(f64, f64)>>,
    /// `((lat, lon), radius_km)`.
    pub circles: Vec<((f64, f64), f64)>,
    /// `(valueName, value)` of each `<geocode>`.
    pub geocodes: Vec<(String, String)>,
}

impl CapArea {
    /// The area as the region resolver takes it.
    pub fn shape(&self) -> Shape<'_> {
        Shape { polygons: &self.polygons, circles: &self.circles, geocodes: &self.geocodes }
    }
}

/// What a CAP source's body holds.
#[derive(Clone, Debug, PartialEq)]
pub enum CapBody {
    Message(CapMessage),
    Index(CapIndex),
}

/// Decodes a body that is either one CAP message or an index of them, as the root
/// element says.
pub fn decode_body(xml: &[u8]) -> Result<CapBody, SourceError> {
    let root = xml::parse(xml).map_err(SourceError::Decode)?;
    match root.name.as_str() {
        "alert" => read::message(&root).map(CapBody::Message).map_err(SourceError::Decode),
        "feed" | "rss" | "alerts" | "EDXLDistribution" => index::index(&root).map(CapBody::Index),
        other => Err(SourceError::Decode(format!(
            "root element <{other}> is neither a CAP <alert> nor an Atom <feed> or RSS <rss> index of them"
        ))),
    }
}

/// Decodes one CAP 1.1 or 1.2 `<alert>` document.
pub fn decode_message(xml: &[u8]) -> Result<CapMessage, SourceError> {
    let root = xml::parse(xml).map_err(SourceError::Decode)?;
    if root.name != "alert" {
        return Err(SourceError::Decode(format!("root element <{}> is not a CAP <alert>", root.name)));
    }
    read::message(&root).map_err(SourceError::Decode)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alert(body: &str) -> String {
        format!(
            r#"<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2"><identifier>X1</identifier><sender>s@example.org</sender><sent>2024-01-01T10:00:00+02:00</sent><status>Actual</status><msgType>Alert</msgType><scope>Public</scope>{body}</alert>"#
        )
    }

    fn decode(body: &str) -> Result<CapMessage, String> {
        decode_message(alert(body).as_bytes()).map_err(|e| e.to_string())
    }

    #[test]
    fn unknown_values_are_kept_and_defaults_applied() {
        let m = decode_message(
            alert("").replace("Actual", "Rehearsal").replace("<msgType>Alert", "<msgType>Notice").as_bytes(),
        )
        .expect("decodes");
        assert_eq!(m.status, CapStatus::Unknown("Rehearsal".into()));
        assert_eq!(m.msg_type, MsgType::Unknown("Notice".into()));
        let m = decode("<info><category>CBRNE</category><category>Nope</category><event>E</event><urgency>Unknown</urgency><severity>extreme</severity><certainty>Very Likely</certainty></info>")
            .expect("decodes");
        let info = &m.infos[0];
        assert_eq!(info.language, "en-US");
        assert_eq!(info.categories, vec![Category::Cbrne, Category::Unknown("Nope".into())]);
        assert_eq!(info.urgency, Urgency::Unknown("Unknown".into()));
        assert_eq!(info.severity, Severity::Extreme);
        assert_eq!(info.certainty, Certainty::Likely);
    }

    #[test]
    fn prefixed_namespace_reads_the_same() {
        let prefixed = alert("").replace("<alert xmlns=", "<cap:alert xmlns:cap=").replace("</alert>", "</cap:alert>");
        let prefixed =
            prefixed.replace("<identifier>", "<cap:identifier>").replace("</identifier>", "</cap:identifier>");
        assert_eq!(decode_message(prefixed.as_bytes()).expect("decodes").identifier, "X1");
    }

    #[test]
    fn geometry_is_read_and_checked() {
        let m = decode("<info><area><areaDesc>A</areaDesc><polygon>49.7,37.5 49.8, 37.6 49.6,37.7 49.7,37.5</polygon><circle>49.717,37.583 5</circle><geocode><valueName>KATOTTG</valueName><value>UA63080090010026457</value></geocode></area></info>")
            .expect("decodes");
        let a = &m.infos[0].areas[0];
        assert_eq!(a.polygons, vec![vec![(49.7, 37.5), (49.8, 37.6), (49.6, 37.7), (49.7, 37.5)]]);
        assert_eq!(a.circles, vec![((49.717, 37.583), 5.0)]);
        assert_eq!(a.geocodes, vec![("KATOTTG".into(), "UA63080090010026457".into())]);

        for (area, want) in [
            ("<polygon>49.7,37.5 91,37.6 49.6,37.7</polygon>", "info[0].area[0].polygon[0] point `91,37.6`"),
            ("<polygon>49.7,37.5 49.6,37.7</polygon>", "has 2 points"),
            ("<circle>49.7,37.5</circle>", "info[0].area[0].circle[0] `49.7,37.5` is not `lat,lon radius`"),
            ("<circle>49.7,37.5 -3</circle>", "radius `-3`"),
        ] {
            let err = decode(&format!("<info><area>{area}</area></info>")).expect_err(area);
            assert!(err.contains(want), "{area}: {err}");
        }
    }

    #[test]
    fn bad_references_and_dates_name_the_field() {
        let err = decode("<references>a,b</references>").expect_err("bad reference");
        assert!(err.contains("references[0] `a,b`"), "{err}");
        let err = decode("<references>a,b,2024-01-01T10:00:00Z a,c,yesterday</references>").expect_err("bad date");
        assert!(err.contains("references[1] `yesterday`"), "{err}");
    }

    #[test]
    fn optional_parts_that_do_not_read_are_dropped_and_the_message_kept() {
        let m = decode(
            "<info><responseType>Evacuate</responseType><responseType>Monitor</responseType><effective>now</effective><expires>soon</expires>\
             <eventCode><value>EVI</value></eventCode><eventCode><valueName>SAME</valueName><value>EVI</value></eventCode>\
             <parameter><valueName>p</valueName><value>1</value></parameter><parameter><value>orphan</value></parameter></info>",
        )
        .expect("kept");
        let info = &m.infos[0];
        assert_eq!(info.response_types, vec![ResponseType::Evacuate, ResponseType::Monitor]);
        assert_eq!((info.effective, info.expires), (None, None), "an alert without an end lasts until a Cancel");
        assert_eq!(info.event_codes, vec![("SAME".to_string(), "EVI".to_string())]);
        assert_eq!(info.parameters, vec![("p".to_string(), "1".to_string())]);
        assert_eq!(
            m.dropped,
            vec![
                Dropped::new("effective", "`now`, which is not a CAP date-time"),
                Dropped::new("expires", "`soon`, which is not a CAP date-time"),
                Dropped::new("eventCode", "a <eventCode> value `EVI` without its <valueName>"),
                Dropped::new("parameter", "a <parameter> value `orphan` without its <valueName>"),
            ]
        );
    }

    #[test]
    fn identifiers_and_senders_that_cannot_be_referenced_are_refused() {
        let err = decode_message(alert("").replace("<identifier>X1", "<identifier>INVALID,").as_bytes())
            .expect_err("comma")
            .to_string();
        assert!(err.contains("<identifier> `INVALID,` holds a comma, which CAP forbids"), "{err}");
        let err = decode_message(alert("").replace("s@example.org", "Civil Protection").as_bytes())
            .expect_err("space")
            .to_string();
        assert!(err.contains("<sender> `Civil Protection` holds a space"), "{err}");
    }
}
