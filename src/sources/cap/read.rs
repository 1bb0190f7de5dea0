//! Reading a CAP `<alert>` element into a [`CapMessage`]: required parts strictly,
//! optional ones leniently (see the parent module's docs).

use chrono::{DateTime, FixedOffset};

use super::xml::Element;
use super::{
    CapArea, CapInfo, CapMessage, CapReference, CapStatus, Category, Certainty, MsgType, ResponseType, Scope, Severity,
    Urgency,
};
use crate::sources::Dropped;

/// Reads an `<alert>` element (a whole document, or one embedded in an index).
pub(super) fn message(alert: &Element) -> Result<CapMessage, String> {
    let required = |name: &str| alert.child_text(name).ok_or_else(|| format!("missing <{name}>"));
    let name_part = |name: &str| {
        let value = required(name)?;
        match value.chars().find(|c| c.is_whitespace() || *c == ',') {
            Some(c) => Err(format!(
                "<{name}> `{value}` holds {}, which CAP forbids: no Update or Cancel could name this message",
                if c == ',' { "a comma" } else { "a space" }
            )),
            None => Ok(value.to_owned()),
        }
    };
    let identifier = name_part("identifier")?;
    let sender = name_part("sender")?;
    let sent = date("sent", required("sent")?)?;
    let references = match alert.child_text("references") {
        Some(text) => {
            text.split_whitespace().enumerate().map(|(i, r)| reference(i, r)).collect::<Result<Vec<_>, _>>()?
        }
        None => Vec::new(),
    };
    let mut dropped = Vec::new();
    let infos =
        alert.children_named("info").enumerate().map(|(i, el)| info(i, el, &mut dropped)).collect::<Result<_, _>>()?;
    Ok(CapMessage {
        identifier,
        sender,
        sent,
        status: CapStatus::parse(required("status")?),
        msg_type: MsgType::parse(required("msgType")?),
        scope: alert.child_text("scope").map(Scope::parse),
        references,
        infos,
        dropped,
    })
}

fn reference(i: usize, text: &str) -> Result<CapReference, String> {
    let mut parts = text.splitn(3, ',');
    match (parts.next(), parts.next(), parts.next()) {
        (Some(sender), Some(identifier), Some(sent)) if !sender.is_empty() && !identifier.is_empty() => {
            Ok(CapReference {
                sender: sender.to_owned(),
                identifier: identifier.to_owned(),
                sent: date(&format!("references[{i}]"), sent)?,
            })
        }
        _ => Err(format!("references[{i}] `{text}` is not `sender,identifier,sent`")),
    }
}

fn info(i: usize, el: &Element, dropped: &mut Vec<Dropped>) -> Result<CapInfo, String> {
    let path = format!("info[{i}]");
    let text = |name: &str| el.child_text(name).map(str::to_owned);
    let mut opt_date = |name: &'static str| {
        let value = el.child_text(name)?;
        match date(name, value) {
            Ok(d) => Some(d),
            Err(_) => {
                dropped.push(Dropped::new(name, format!("`{value}`, which is not a CAP date-time")));
                None
            }
        }
    };
    let (effective, onset, expires) = (opt_date("effective"), opt_date("onset"), opt_date("expires"));
    let event_codes = named_pairs(el, "eventCode", dropped);
    let parameters = named_pairs(el, "parameter", dropped);
    Ok(CapInfo {
        language: el.child_text("language").unwrap_or("en-US").to_owned(),
        categories: el.children_named("category").map(|c| Category::parse(c.text())).collect(),
        event: el.child_text("event").unwrap_or_default().to_owned(),
        response_types: el.children_named("responseType").map(|c| ResponseType::parse(c.text())).collect(),
        urgency: Urgency::parse(el.child_text("urgency").unwrap_or_default()),
        severity: Severity::parse(el.child_text("severity").unwrap_or_default()),
        certainty: Certainty::parse(el.child_text("certainty").unwrap_or_default()),
        headline: text("headline"),
        description: text("description"),
        instruction: text("instruction"),
        effective,
        onset,
        expires,
        event_codes,
        parameters,
        areas: el
            .children_named("area")
            .enumerate()
            .map(|(j, a)| area(&format!("{path}.area[{j}]"), a))
            .collect::<Result<_, _>>()?,
    })
}

fn area(path: &str, el: &Element) -> Result<CapArea, String> {
    let mut polygons = Vec::new();
    for (k, p) in el.children_named("polygon").enumerate() {
        // NWS sends an empty <polygon/> when the area is given by geocodes only.
        if p.text().is_empty() {
            continue;
        }
        let path = format!("{path}.polygon[{k}]");
        let ring =
            normalize(p.text()).split_whitespace().map(|pair| coord(&path, pair)).collect::<Result<Vec<_>, _>>()?;
        if ring.len() < 3 {
            return Err(format!("{path} has {} points; a polygon needs at least 3", ring.len()));
        }
        polygons.push(ring);
    }
    let mut circles = Vec::new();
    for (k, c) in el.children_named("circle").enumerate() {
        if c.text().is_empty() {
            continue;
        }
        let path = format!("{path}.circle[{k}]");
        let text = normalize(c.text());
        let (center, radius) = match text.split_whitespace().collect::<Vec<_>>()[..] {
            [center, radius] => (coord(&path, center)?, radius),
            _ => return Err(format!("{path} `{text}` is not `lat,lon radius`")),
        };
        let radius: f64 = radius
            .parse()
            .ok()
            .filter(|r: &f64| r.is_finite() && *r >= 0.0)
            .ok_or_else(|| format!("{path} radius `{radius}` is not a distance in km"))?;
        circles.push((center, radius));
    }
    Ok(CapArea {
        desc: el.child_text("areaDesc").unwrap_or_default().to_owned(),
        polygons,
        circles,
        geocodes: el.children_named("geocode").flat_map(pairs).collect(),
    })
}

/// `lat, lon` written with a space after the comma (seen in the wild) → `lat,lon`.
fn normalize(text: &str) -> String {
    let mut out = text.to_owned();
    while out.contains(", ") {
        out = out.replace(", ", ",");
    }
    out
}

fn coord(path: &str, pair: &str) -> Result<(f64, f64), String> {
    let bad = || format!("{path} point `{pair}` is not `lat,lon` in degrees");
    let (lat, lon) = pair.split_once(',').ok_or_else(bad)?;
    let lat: f64 = lat.parse().map_err(|_| bad())?;
    let lon: f64 = lon.parse().map_err(|_| bad())?;
    if !(-90.0..=90.0).contains(&lat) || !(-180.0..=180.0).contains(&lon) {
        return Err(bad());
    }
    Ok((lat, lon))
}

/// `(valueName, value)` pairs in document order. CAP has one pair per element; NWS
/// Atom indexes put several pairs into one `<cap:geocode>`, which this reads too.
fn pairs(el: &Element) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut name = None;
    for c in &el.children {
        match c.name.as_str() {
            "valueName" => name = Some(c.text().to_owned()),
            "value" => out.push((name.take().unwrap_or_default(), c.text().to_owned())),
            _ => {}
        }
    }
    out
}

/// `(valueName, value)` of each `name` element; one without a `valueName` cannot be
/// interpreted and is dropped.
fn named_pairs(el: &Element, name: &'static str, dropped: &mut Vec<Dropped>) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for c in el.children_named(name) {
        for (key, value) in pairs(c) {
            if key.trim().is_empty() {
                dropped.push(Dropped::new(name, format!("a <{name}> value `{value}` without its <valueName>")));
            } else {
                out.push((key, value));
            }
        }
    }
    out
}

fn date(field: &str, value: &str) -> Result<DateTime<FixedOffset>, String> {
    DateTime::parse_from_rfc3339(value.trim()).map_err(|e| format!("{field} `{value}` is not a CAP date-time: {e}"))
}
