//! `sirena feed decode`: one saved payload through the same decoders the pollers use,
//! printed as normalised alerts, so an operator can check what sirena makes of it.

use serde_json::json;

use super::{Decoded, SourceError, alerts_in_ua, cap, ukrainealarm};
use crate::alerts::cap::CapBook;
use crate::alerts::state::ObservedAlert;
use crate::regions::RegionTree;

/// Which feed a payload comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Payload {
    AlertsInUa,
    UkraineAlarm,
    Cap,
}

/// What a payload holds: one JSON object per alert, and notes on what was not an
/// alert (unmapped ids, ignored CAP messages, an index's entries).
#[derive(Debug, Default)]
pub struct Output {
    pub lines: Vec<String>,
    pub notes: Vec<String>,
}

pub fn decode(payload: Payload, body: &[u8], tree: &RegionTree) -> Result<Output, SourceError> {
    match payload {
        Payload::AlertsInUa => Ok(output("alerts_in_ua", alerts_in_ua::decode(body, tree)?, tree)),
        Payload::UkraineAlarm => {
            // `/api/v3/alerts` is a list, a webhook push one record, the status index
            // an object with `lastActionIndex`.
            let value: serde_json::Value =
                serde_json::from_slice(body).map_err(|e| SourceError::Decode(format!("not JSON: {e}")))?;
            if value.is_array() {
                Ok(output("ukrainealarm", ukrainealarm::decode_alerts(body, tree)?, tree))
            } else if let Some(states) = value.get("states").and_then(|s| s.as_array()) {
                Ok(Output {
                    lines: Vec::new(),
                    notes: vec![format!("a regions tree (/api/v3/regions) of {} oblasts, no alerts", states.len())],
                })
            } else if value.get("lastActionIndex").is_some() {
                let index = ukrainealarm::decode_status(body)?;
                Ok(Output { lines: Vec::new(), notes: vec![format!("status index: lastActionIndex {index}")] })
            } else {
                Ok(output("ukrainealarm", ukrainealarm::decode_record(body, tree)?, tree))
            }
        }
        Payload::Cap => decode_cap(body, tree),
    }
}

fn decode_cap(body: &[u8], tree: &RegionTree) -> Result<Output, SourceError> {
    let mut notes = Vec::new();
    let mut dropped = Vec::new();
    let messages = match cap::decode_body(body)? {
        cap::CapBody::Message(msg) => vec![msg],
        cap::CapBody::Index(index) => {
            let mut messages = Vec::new();
            for (entry, d) in index.skipped {
                notes.push(match d.field {
                    "entry" => format!("{entry}: skipped, {}", d.shape),
                    field => format!("{entry}: dropped {field} {}", d.shape),
                });
            }
            for e in index.entries {
                match e.embedded {
                    Some(msg) => messages.push(msg),
                    None => notes.push(format!("index entry {} links to {}", e.id, e.url.unwrap_or_default())),
                }
            }
            messages
        }
    };
    let mut book = CapBook::default();
    // A saved message is judged as of when it was sent, so an old one is not expired.
    let mut now = chrono::Utc::now();
    let mut messages = messages;
    messages.sort_by_key(|m| m.sent);
    for msg in &messages {
        let sent = msg.sent.to_utc();
        now = now.min(sent);
        let applied = book.apply(msg, sent, tree);
        notes.push(format!("message {} from {}: {applied}", msg.identifier, msg.sender));
        dropped.extend(msg.dropped.iter().cloned());
    }
    let alerts = book.observed(now);
    Ok(output("cap", Decoded { alerts, dropped, ..Decoded::default() }, tree).with_notes(notes))
}

impl Output {
    fn with_notes(mut self, notes: Vec<String>) -> Output {
        self.notes.splice(0..0, notes);
        self
    }
}

fn output(source: &str, decoded: Decoded, tree: &RegionTree) -> Output {
    let lines = decoded.alerts.iter().map(|a| line(source, a, tree)).collect();
    let unmapped = decoded.unmapped.iter().map(|u| format!("unmapped feed id {} ({})", u.id, u.title));
    let dropped =
        decoded.dropped.iter().map(|d| format!("dropped {}: {} (the alert is kept without it)", d.field, d.shape));
    let notes = unmapped.chain(dropped).collect();
    Output { lines, notes }
}

fn line(source: &str, a: &ObservedAlert, tree: &RegionTree) -> String {
    json!({
        "source": source,
        "kind": a.key.kind.as_str(),
        "raw_kind": a.raw_kind,
        "region": a.key.region.as_str(),
        "region_name": tree.name(&a.key.region, crate::messages::Lang::En),
        "level": a.level.as_ref().map(|l| l.as_str()),
        "threats": a.threats.iter().map(|t| json!({
            "kind": t.kind.as_str(),
            "level": t.level.as_ref().map(|l| l.as_str()),
            "started_at": t.started_at.map(|s| s.to_rfc3339()),
        })).collect::<Vec<_>>(),
        "started_at": a.started_at.to_rfc3339(),
    })
    .to_string()
}
