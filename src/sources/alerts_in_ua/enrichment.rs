//! alerts.in.ua enrichment: an alert's level, its threats (objects with a `threat_type`,
//! a level and a start of their own, or older plain names) and its title. What does
//! not read is dropped and listed in `Decoded::dropped`; the alert is kept.

use serde_json::{Map, Value};

use super::{date, shape};
use crate::alerts::{AlertLevel, Threat, ThreatKind};
use crate::sources::Dropped;

/// An optional text; one of another shape is dropped.
pub(super) fn optional_str(a: &Map<String, Value>, field: &'static str, dropped: &mut Vec<Dropped>) -> Option<String> {
    match a.get(field) {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.trim().to_owned()),
        Some(other) => {
            dropped.push(Dropped::new(field, shape(other)));
            None
        }
    }
}

/// A level name; blank or null is no level, another shape is dropped.
pub(super) fn level(v: Option<&Value>, field: &'static str, dropped: &mut Vec<Dropped>) -> Option<AlertLevel> {
    match v {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if s.trim().is_empty() => None,
        Some(Value::String(s)) => Some(AlertLevel::parse(s)),
        Some(other) => {
            dropped.push(Dropped::new(field, shape(other)));
            None
        }
    }
}

/// The alert's threats, one per kind. Objects (`threat_type`, `level`, `started_at`)
/// and plain names both read; a `threat_type` sirena does not know is kept as an
/// unknown threat. Anything else is dropped and listed.
pub(super) fn threats(v: Option<&Value>, dropped: &mut Vec<Dropped>) -> Vec<Threat> {
    let list = match v {
        None | Some(Value::Null) => return Vec::new(),
        Some(Value::Array(list)) => list,
        Some(other) => {
            dropped.push(Dropped::new("threats", format!("{} instead of a list", shape(other))));
            return Vec::new();
        }
    };
    let mut out = Vec::new();
    for item in list {
        match item {
            Value::String(name) if !name.trim().is_empty() => out.push(Threat::of(ThreatKind::parse(name))),
            Value::String(_) => dropped.push(Dropped::new("threats", "an empty name")),
            Value::Object(t) => {
                let kind = match t.get("threat_type") {
                    Some(Value::String(name)) if !name.trim().is_empty() => ThreatKind::parse(name),
                    Some(Value::String(_)) => {
                        dropped.push(Dropped::new("threats", "an object with an empty threat_type"));
                        continue;
                    }
                    None | Some(Value::Null) => {
                        dropped.push(Dropped::new("threats", "an object without threat_type"));
                        continue;
                    }
                    Some(other) => {
                        dropped
                            .push(Dropped::new("threats", format!("an object whose threat_type is {}", shape(other))));
                        continue;
                    }
                };
                let level = level(t.get("level"), "threats.level", dropped);
                let started_at =
                    match t.get("started_at") {
                        None | Some(Value::Null) => None,
                        v => match date(v) {
                            Ok(at) => Some(at),
                            Err(_) => {
                                let what = v.map_or("nothing", |v| {
                                    if v.is_string() { "a text that is not a time" } else { shape(v) }
                                });
                                dropped.push(Dropped::new("threats.started_at", what));
                                None
                            }
                        },
                    };
                out.push(Threat { kind, level, started_at });
            }
            other => dropped.push(Dropped::new("threats", shape(other))),
        }
    }
    Threat::merged(out)
}
