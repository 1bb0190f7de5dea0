//! What the CAP book did with a message, in an operator's words: `sirena feed decode`
//! prints these and the poller logs them, so none is a type name.

use std::fmt;

use super::{CapApplied, CapIgnored};
use crate::sources::cap::CapMessage;

impl fmt::Display for CapApplied {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CapApplied::Started(id) => write!(f, "started the alert {id}"),
            CapApplied::Updated(id) => write!(f, "updated the alert {id}"),
            CapApplied::Cancelled(id) => write!(f, "cancelled the alert {id}"),
            CapApplied::Ignored(why) => write!(f, "ignored: {why}"),
        }
    }
}

impl fmt::Display for CapIgnored {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CapIgnored::NotActual(status) => {
                write!(f, "status {}, not Actual: never delivered as real", status.as_str())
            }
            CapIgnored::NotAnAlert(t) => {
                write!(f, "message type {}: neither an alert, an update nor a cancel", t.as_str())
            }
            CapIgnored::Duplicate => f.write_str("already applied (the same sender and identifier)"),
            CapIgnored::UnknownReference(refs) => {
                write!(f, "it refers to no alert sirena has seen ({})", refs.join(" "))
            }
            CapIgnored::Ended(id) => write!(f, "its alert {id} has already ended"),
            CapIgnored::NoArea(what) => write!(f, "no area in Ukraine: {what}"),
            CapIgnored::Expired => f.write_str("already past its expires"),
        }
    }
}

/// What a message's areas held, for an operator to see why none is in Ukraine:
/// "3 geocodes of scheme UGC, FIPS6 and no polygon".
pub fn areas_in_words(msg: &CapMessage) -> String {
    if msg.infos.is_empty() {
        return "the message has no <info>, so no <area>".to_owned();
    }
    let areas: Vec<_> = msg.infos.iter().flat_map(|i| &i.areas).collect();
    if areas.is_empty() {
        return "its <info> names no <area>".to_owned();
    }
    let mut schemes: Vec<&str> = Vec::new();
    let mut geocodes = 0;
    for (name, _) in areas.iter().flat_map(|a| &a.geocodes) {
        geocodes += 1;
        let name = if name.trim().is_empty() { "(unnamed)" } else { name.trim() };
        if !schemes.contains(&name) {
            schemes.push(name);
        }
    }
    let count = |n: usize, one: &str, many: &str| match n {
        0 => format!("no {one}"),
        1 => format!("1 {one}"),
        n => format!("{n} {many}"),
    };
    let mut parts = vec![match geocodes {
        0 => "no geocode".to_owned(),
        n => format!("{} of scheme {}", count(n, "geocode", "geocodes"), schemes.join(", ")),
    }];
    let polygons = areas.iter().map(|a| a.polygons.len()).sum();
    let circles: usize = areas.iter().map(|a| a.circles.len()).sum();
    parts.push(count(polygons, "polygon", "polygons"));
    if circles > 0 {
        parts.push(count(circles, "circle", "circles"));
    }
    let last = parts.pop().unwrap_or_default();
    let mut words = parts.join(", ");
    words.push_str(" and ");
    words.push_str(&last);
    if polygons + circles > 0 {
        words.push_str(" holding no settlement sirena knows");
    }
    words
}
