//! Where each key of a TOML file was written, for errors found after the file is
//! deserialized into structs that keep no positions.
//!
//! Keys are dotted paths through tables and array items: `dispatch.lease`,
//! `dispatch.deadlines.info`, `sms.gateway.1.per_sec` (the second `[[sms.gateway]]`).
//! A path that is not written (a default) falls back to the nearest enclosing table
//! that is, so an error always points into the table it is about, never at a
//! same-named key of another table.

use std::collections::HashMap;
use std::ops::Range;

use toml::Spanned;
use toml::de::{DeTable, DeValue};

#[derive(Debug, Default)]
pub struct KeySpans(HashMap<String, Range<usize>>);

impl KeySpans {
    pub fn of(root: &DeTable<'_>) -> KeySpans {
        let mut spans = KeySpans::default();
        spans.table("", root);
        spans
    }

    fn table(&mut self, prefix: &str, table: &DeTable<'_>) {
        for (key, value) in table {
            let path =
                if prefix.is_empty() { key.get_ref().to_string() } else { format!("{prefix}.{}", key.get_ref()) };
            self.0.insert(path.clone(), key.span());
            self.value(&path, value);
        }
    }

    fn value(&mut self, path: &str, value: &Spanned<DeValue<'_>>) {
        match value.get_ref() {
            DeValue::Table(t) => self.table(path, t),
            DeValue::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    let item_path = format!("{path}.{i}");
                    self.0.insert(item_path.clone(), item.span());
                    self.value(&item_path, item);
                }
            }
            _ => {}
        }
    }

    /// The span of `path`'s key, else of its nearest written enclosing key.
    pub fn at(&self, path: &str) -> Option<Range<usize>> {
        let mut path = path;
        loop {
            if let Some(span) = self.0.get(path) {
                return Some(span.clone());
            }
            path = &path[..path.rfind('.')?];
        }
    }
}

/// A deserializer's message with a "did you mean" for an unknown key or kind:
/// serde says "unknown field `pol`, expected one of `kind`, `poll`, …"; the nearest
/// expected name within two edits is named first, so the fix is read, not searched.
pub fn with_suggestion(message: &str) -> String {
    let Some(rest) = message.strip_prefix("unknown field `").or_else(|| message.strip_prefix("unknown variant `"))
    else {
        return message.to_owned();
    };
    let Some((typed, expected)) = rest.split_once('`') else { return message.to_owned() };
    match nearest(typed, expected.split('`').skip(1).step_by(2)) {
        Some(name) => format!("{message} (did you mean `{name}`?)"),
        None => message.to_owned(),
    }
}

/// The name nearest to what was typed, within one edit for short names and two for
/// longer ones.
pub fn nearest<'a>(typed: &str, names: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    let max = if typed.len() > 4 { 2 } else { 1 };
    let mut rows = Default::default();
    names
        .filter_map(|name| {
            Some((crate::regions::names::distance(typed.as_bytes(), name.as_bytes(), max, &mut rows)?, name))
        })
        .min()
        .map(|(_, name)| name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unknown_key_gets_the_nearest_name() {
        let m = "unknown field `pol`, expected one of `kind`, `name`, `poll`, `timeout`";
        assert_eq!(with_suggestion(m), format!("{m} (did you mean `poll`?)"));
        let m = "unknown variant `ukrainalarm`, expected `alerts_in_ua` or `ukrainealarm`";
        assert!(with_suggestion(m).ends_with("(did you mean `ukrainealarm`?)"));
        // Nothing near: no guess.
        let m = "unknown field `colour`, expected one of `id`, `status`, `targets`";
        assert_eq!(with_suggestion(m), m);
        assert_eq!(with_suggestion("missing field `status`"), "missing field `status`");
    }

    #[test]
    fn keys_are_found_in_their_own_table() {
        let text = "lease = 1\n[dispatch]\nmax_in_flight = 2\n[dispatch.deadlines]\ninfo = \"1m\"\n\
                    [[sms.gateway]]\nname = \"a\"\n[[sms.gateway]]\nname = \"b\"\nper_sec = 3\n";
        let root = DeTable::parse(text).expect("toml");
        let spans = KeySpans::of(root.get_ref());
        let at = |path: &str| spans.at(path).map(|r| &text[r]);
        assert_eq!(at("dispatch.max_in_flight"), Some("max_in_flight"));
        assert_eq!(at("dispatch.deadlines.info"), Some("info"));
        // Not written: the table it would be in.
        assert_eq!(at("dispatch.lease"), Some("dispatch"));
        assert_eq!(at("dispatch.deadlines.urgent"), Some("deadlines"));
        assert_eq!(at("sms.gateway.1.per_sec"), Some("per_sec"));
        assert_eq!(spans.at("sms.gateway.1.per_sec").map(|r| r.start), text.rfind("per_sec"));
        // The first gateway has none: its own table, before the second one starts.
        let first = spans.at("sms.gateway.0.per_sec").map(|r| r.start);
        assert!(first.is_some_and(|s| s >= text.find("[[sms.gateway]]").unwrap_or(0) && s < text.rfind("[[sms").unwrap_or(0)));
        assert_eq!(at("telegram.api_url"), None);
    }
}
