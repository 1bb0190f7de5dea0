//! `[[source]]` tables: the feeds sirena polls, one table per feed.
//!
//! ```toml
//! [[source]]
//! kind = "alerts_in_ua"          # alerts_in_ua | ukrainealarm | cap
//! name = "alerts_in_ua"          # optional, default: the kind; unique
//! base_url = "https://api.alerts.in.ua"
//! token_env = "ALERTS_IN_UA_TOKEN"
//! poll = "10s"
//! ```
//! The deprecated `[sources.alerts_in_ua]` table is read as one more source.
//!
//! The tables are taken out of toml's spanned tree and each is deserialized into its
//! kind's struct directly. serde's internally tagged enum (which [`SourceSettings`]
//! also derives) buffers the whole table before it knows the kind, and toml's
//! positions are lost in the buffer: an unknown key would be reported at
//! `[[source]]` instead of on its own line.

use std::collections::HashMap;
use std::ops::Range;
use std::time::Duration;

use serde::Deserialize;
use serde::de::IntoDeserializer;
use toml::Spanned;
use toml::de::{DeTable, DeValue};

use super::{ConfigError, SourceText, check_url};

/// The largest body a source reads unless it says otherwise.
pub const DEFAULT_MAX_BODY: u64 = 4 * 1024 * 1024;

/// The feeds sirena has adapters for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Deserialize)]
pub enum SourceKind {
    #[serde(rename = "alerts_in_ua")]
    AlertsInUa,
    #[serde(rename = "ukrainealarm")]
    UkraineAlarm,
    #[serde(rename = "cap")]
    Cap,
}

impl SourceKind {
    pub fn as_str(self) -> &'static str {
        match self {
            SourceKind::AlertsInUa => "alerts_in_ua",
            SourceKind::UkraineAlarm => "ukrainealarm",
            SourceKind::Cap => "cap",
        }
    }
}

/// One `[[source]]` table.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(tag = "kind")]
pub enum SourceSettings {
    #[serde(rename = "alerts_in_ua")]
    AlertsInUa(AlertsInUaSettings),
    #[serde(rename = "ukrainealarm")]
    UkraineAlarm(UkraineAlarmSettings),
    #[serde(rename = "cap")]
    Cap(CapSettings),
}

/// alerts.in.ua: `GET {base_url}/v1/alerts/active.json` with a Bearer token.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertsInUaSettings {
    /// The source's name in logs and in the alert state; the kind when absent.
    pub name: Option<String>,
    pub base_url: String,
    pub token_env: String,
    #[serde(with = "crate::config::duration", default = "default_poll")]
    pub poll: Duration,
    /// For the whole request, body included.
    #[serde(with = "crate::config::duration", default = "default_timeout")]
    pub timeout: Duration,
    /// The API's budget per client. The default is the published 8/min; raise it only
    /// for a feed that allows more, such as the simulator.
    #[serde(default = "default_requests_per_min")]
    pub max_requests_per_min: u32,
    /// Bytes; a longer body is refused unread.
    #[serde(default = "default_max_body")]
    pub max_body: u64,
}

/// ukrainealarm v3: `{base_url}/api/v3/alerts/status`, then `/api/v3/alerts` when it
/// changed; the key goes in `Authorization` as it is.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UkraineAlarmSettings {
    pub name: Option<String>,
    pub base_url: String,
    pub token_env: String,
    /// The environment variable holding the shared secret of the webhook receiver
    /// (`POST /webhooks/NAME/SECRET` on `[http] listen`): a push makes the source poll
    /// at once instead of at its next interval. No webhook when absent.
    #[serde(default)]
    pub webhook_secret_env: Option<String>,
    #[serde(with = "crate::config::duration", default = "default_poll")]
    pub poll: Duration,
    #[serde(with = "crate::config::duration", default = "default_timeout")]
    pub timeout: Duration,
    #[serde(default = "default_requests_per_min")]
    pub max_requests_per_min: u32,
    #[serde(default = "default_max_body")]
    pub max_body: u64,
}

/// A CAP 1.2 feed: `url` is an Atom/RSS index of messages or a single message.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CapSettings {
    pub name: Option<String>,
    pub url: String,
    /// A Bearer token, for feeds that want one.
    pub token_env: Option<String>,
    #[serde(with = "crate::config::duration", default = "default_poll")]
    pub poll: Duration,
    #[serde(with = "crate::config::duration", default = "default_timeout")]
    pub timeout: Duration,
    #[serde(default = "default_requests_per_min")]
    pub max_requests_per_min: u32,
    #[serde(default = "default_max_body")]
    pub max_body: u64,
}

fn default_poll() -> Duration {
    Duration::from_secs(10)
}
fn default_timeout() -> Duration {
    Duration::from_secs(5)
}
fn default_requests_per_min() -> u32 {
    8
}
fn default_max_body() -> u64 {
    DEFAULT_MAX_BODY
}

/// The fields every kind has, borrowed.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Common<'a> {
    pub kind: SourceKind,
    pub name: &'a str,
    /// `base_url`, or `url` for CAP.
    pub url: &'a str,
    pub token_env: Option<&'a str>,
    pub poll: Duration,
    pub timeout: Duration,
    pub max_requests_per_min: u32,
    pub max_body: u64,
}

impl SourceSettings {
    pub fn kind(&self) -> SourceKind {
        match self {
            SourceSettings::AlertsInUa(_) => SourceKind::AlertsInUa,
            SourceSettings::UkraineAlarm(_) => SourceKind::UkraineAlarm,
            SourceSettings::Cap(_) => SourceKind::Cap,
        }
    }

    pub fn common(&self) -> Common<'_> {
        let kind = self.kind();
        let (name, url, token_env, poll, timeout, rpm, max_body) = match self {
            SourceSettings::AlertsInUa(s) => {
                (&s.name, &s.base_url, Some(&s.token_env), s.poll, s.timeout, s.max_requests_per_min, s.max_body)
            }
            SourceSettings::UkraineAlarm(s) => {
                (&s.name, &s.base_url, Some(&s.token_env), s.poll, s.timeout, s.max_requests_per_min, s.max_body)
            }
            SourceSettings::Cap(s) => {
                (&s.name, &s.url, s.token_env.as_ref(), s.poll, s.timeout, s.max_requests_per_min, s.max_body)
            }
        };
        Common {
            kind,
            name: name.as_deref().unwrap_or(kind.as_str()),
            url,
            token_env: token_env.map(String::as_str),
            poll,
            timeout,
            max_requests_per_min: rpm,
            max_body,
        }
    }

    /// The environment variable of the source's webhook secret, if it takes pushes.
    pub fn webhook_secret_env(&self) -> Option<&str> {
        match self {
            SourceSettings::UkraineAlarm(s) => s.webhook_secret_env.as_deref(),
            SourceSettings::AlertsInUa(_) | SourceSettings::Cap(_) => None,
        }
    }

    /// The name in logs and in the alert state: `name`, or the kind.
    pub fn name(&self) -> &str {
        self.common().name
    }
}

/// Where a source's table and keys are in the file, to point errors found after
/// parsing at the key they concern.
pub(super) struct Located {
    table: Range<usize>,
    keys: HashMap<String, Range<usize>>,
}

impl Located {
    fn at(&self, key: &str) -> Option<Range<usize>> {
        Some(self.keys.get(key).cloned().unwrap_or_else(|| self.table.clone()))
    }
}

/// Takes `[[source]]` and the deprecated `[sources]` out of the file's tree, so the
/// rest deserializes as `Settings`, and parses them. The legacy table comes first,
/// where it stood in the old layout.
pub(super) fn take(
    root: &mut DeTable<'_>,
    src: &SourceText<'_>,
    errors: &mut Vec<ConfigError>,
) -> Vec<(SourceSettings, Located)> {
    let mut out = Vec::new();
    if let Some(legacy) = root.remove("sources") {
        let span = legacy.span();
        match legacy.into_inner() {
            DeValue::Table(table) => {
                for (key, value) in table.iter() {
                    if key.get_ref() == "alerts_in_ua" {
                        tracing::warn!(
                            file = %src.path.display(),
                            "[sources.alerts_in_ua] is deprecated: write it as a [[source]] table with kind = \"alerts_in_ua\""
                        );
                        if let Some(s) = parse_kind(SourceKind::AlertsInUa, value.clone(), src, errors) {
                            out.push(s);
                        }
                    } else {
                        let message = format!("unknown source `{}`; sources are [[source]] tables", key.get_ref());
                        errors.push(src.error(Some(key.span()), message));
                    }
                }
            }
            _ => errors.push(src.error(Some(span), "`sources` must be a table; sources are [[source]] tables")),
        }
    }
    if let Some(list) = root.remove("source") {
        let span = list.span();
        match list.into_inner() {
            DeValue::Array(items) => {
                for item in items.iter() {
                    if let Some(s) = parse_one(item.clone(), src, errors) {
                        out.push(s);
                    }
                }
            }
            _ => errors.push(src.error(Some(span), "`source` must be [[source]] tables")),
        }
    }
    out
}

fn parse_one(
    item: Spanned<DeValue<'_>>,
    src: &SourceText<'_>,
    errors: &mut Vec<ConfigError>,
) -> Option<(SourceSettings, Located)> {
    let span = item.span();
    let DeValue::Table(mut table) = item.into_inner() else {
        errors.push(src.error(Some(span), "`source` must be [[source]] tables"));
        return None;
    };
    let Some(kind) = table.remove("kind") else {
        errors.push(src.error(Some(span), "[[source]] needs kind = \"alerts_in_ua\", \"ukrainealarm\" or \"cap\""));
        return None;
    };
    let kind_span = kind.span();
    let kind = match SourceKind::deserialize(kind.into_deserializer()) {
        Ok(k) => k,
        Err(e) => {
            errors.push(src.error(e.span().or(Some(kind_span)), super::spans::with_suggestion(e.message().trim())));
            return None;
        }
    };
    let (settings, mut located) = parse_kind(kind, Spanned::new(span, DeValue::Table(table)), src, errors)?;
    located.keys.insert("kind".to_owned(), kind_span);
    Some((settings, located))
}

/// Deserializes a table (without `kind`) as `kind`'s settings, keeping key positions.
fn parse_kind(
    kind: SourceKind,
    table: Spanned<DeValue<'_>>,
    src: &SourceText<'_>,
    errors: &mut Vec<ConfigError>,
) -> Option<(SourceSettings, Located)> {
    let span = table.span();
    let keys = match table.get_ref() {
        DeValue::Table(t) => t.iter().map(|(k, _)| (k.get_ref().to_string(), k.span())).collect(),
        _ => HashMap::new(),
    };
    let de = table.into_deserializer();
    let parsed = match kind {
        SourceKind::AlertsInUa => AlertsInUaSettings::deserialize(de).map(SourceSettings::AlertsInUa),
        SourceKind::UkraineAlarm => UkraineAlarmSettings::deserialize(de).map(SourceSettings::UkraineAlarm),
        SourceKind::Cap => CapSettings::deserialize(de).map(SourceSettings::Cap),
    };
    match parsed {
        Ok(s) => Some((s, Located { table: span, keys })),
        Err(e) => {
            errors.push(src.error(e.span().or(Some(span)), super::spans::with_suggestion(e.message().trim())));
            None
        }
    }
}

/// Checks each source and that their names are unique.
/// `http_listens`: whether sirena.toml has an `[http]` table, which a webhook needs.
pub(super) fn check(
    src: &SourceText<'_>,
    sources: &[(SourceSettings, Located)],
    http_listens: bool,
    errors: &mut Vec<ConfigError>,
) {
    let mut names: HashMap<&str, usize> = HashMap::new();
    for (s, loc) in sources {
        let c = s.common();
        let at = |key: &str| loc.at(key);
        if let Some(var) = s.webhook_secret_env() {
            if !http_listens {
                errors.push(src.error(
                    at("webhook_secret_env"),
                    "a webhook needs the daemon's HTTP endpoint: add [http] with listen = \"127.0.0.1:8640\" (or another address)",
                ));
            }
            if var.trim().is_empty() {
                errors
                    .push(src.error(at("webhook_secret_env"), "webhook_secret_env must name an environment variable"));
            }
        }
        let name_ok = !c.name.is_empty()
            && c.name.len() <= 64
            && c.name.chars().all(|ch| ch.is_ascii_alphanumeric() || ch == '-' || ch == '_');
        if !name_ok {
            errors.push(src.error(at("name"), "source name must be 1–64 characters of a-z, A-Z, 0-9, `-` and `_`"));
        }
        let line = super::line_col(src.text, loc.table.start).0;
        if let Some(first) = names.insert(c.name, line) {
            let hint = if loc.keys.contains_key("name") { "" } else { " (the default name is the kind)" };
            errors.push(src.error(
                at("name"),
                format!(
                    "source name `{}`{hint} is already used by the source at {}:{first}; give each source its own `name`",
                    c.name,
                    src.path.display()
                ),
            ));
        }
        let url_key = if c.kind == SourceKind::Cap { "url" } else { "base_url" };
        check_url(src, c.url, at(url_key), errors);
        if c.token_env.is_some_and(|t| t.trim().is_empty()) {
            errors.push(src.error(at("token_env"), "token_env must name an environment variable"));
        }
        if c.max_requests_per_min == 0 {
            errors.push(src.error(at("max_requests_per_min"), "max_requests_per_min must be at least 1"));
        } else {
            let min_poll = Duration::from_secs(60).div_f64(f64::from(c.max_requests_per_min));
            if c.poll < min_poll {
                errors.push(src.error(
                    at("poll"),
                    format!(
                        "poll = {} would exceed the feed's budget of {} requests/min; use at least {}",
                        humantime::format_duration(c.poll),
                        c.max_requests_per_min,
                        humantime::format_duration(min_poll)
                    ),
                ));
            }
        }
        if c.timeout.is_zero() {
            errors.push(src.error(at("timeout"), "timeout must be more than zero"));
        } else if c.timeout >= c.poll.max(Duration::from_secs(1)) * 3 {
            errors.push(src.error(at("timeout"), "timeout should be shorter than three poll intervals"));
        }
        if c.max_body == 0 {
            errors.push(src.error(at("max_body"), "max_body must be at least 1 byte"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> (Vec<SourceSettings>, Vec<ConfigError>) {
        let path = std::path::Path::new("sirena.toml");
        let src = SourceText { path, text };
        let mut errors = Vec::new();
        let mut root = DeTable::parse(text).expect("toml").into_inner();
        let sources = take(&mut root, &src, &mut errors);
        check(&src, &sources, false, &mut errors);
        (sources.into_iter().map(|(s, _)| s).collect(), errors)
    }

    const ONE: &str =
        "[[source]]\nkind = \"alerts_in_ua\"\nbase_url = \"https://api.alerts.in.ua\"\ntoken_env = \"T\"\n";

    #[test]
    fn the_spanned_parse_agrees_with_the_serde_derive() {
        let (sources, errors) = parse(ONE);
        assert!(errors.is_empty(), "{errors:?}");
        #[derive(Deserialize)]
        struct File {
            source: Vec<SourceSettings>,
        }
        let derived: File = toml::from_str(ONE).expect("derive parses");
        assert_eq!(sources, derived.source);
        let c = sources[0].common();
        assert_eq!((c.name, c.poll, c.max_body), ("alerts_in_ua", Duration::from_secs(10), DEFAULT_MAX_BODY));
    }

    #[test]
    fn errors_point_at_the_key() {
        let text = ONE.replace("token_env", "tokn_env");
        let (_, errors) = parse(&text);
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert_eq!((errors[0].line, errors[0].col), (4, 1), "{errors:?}");
        assert!(errors[0].message.contains("unknown field `tokn_env`"), "{errors:?}");

        let (_, errors) = parse(&ONE.replace("alerts_in_ua", "alerts_in_uk"));
        assert_eq!(errors[0].line, 2, "{errors:?}");
        assert!(errors[0].message.contains("unknown variant `alerts_in_uk`"), "{errors:?}");

        let (_, errors) = parse(&format!("{ONE}max_body = 0\n"));
        assert_eq!((errors[0].line, errors[0].message.as_str()), (5, "max_body must be at least 1 byte"));
    }

    #[test]
    fn names_are_unique_and_default_to_the_kind() {
        let (_, errors) = parse(&format!("{ONE}\n{ONE}"));
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert_eq!(errors[0].line, 6, "at the second table: {errors:?}");
        assert!(errors[0].message.contains("`alerts_in_ua` (the default name is the kind) is already used"));
        assert!(errors[0].message.contains("sirena.toml:1"), "{errors:?}");

        let (sources, errors) = parse(&format!("{ONE}\n{ONE}name = \"backup\"\n"));
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(sources.iter().map(SourceSettings::name).collect::<Vec<_>>(), ["alerts_in_ua", "backup"]);

        let legacy = "[sources.alerts_in_ua]\nbase_url = \"https://api.alerts.in.ua\"\ntoken_env = \"T\"\n";
        let (_, errors) = parse(&format!("{legacy}\n{ONE}"));
        assert!(errors[0].message.contains("already used by the source at sirena.toml:1"), "{errors:?}");
    }

    #[test]
    fn the_legacy_table_is_one_source() {
        let legacy =
            "[sources.alerts_in_ua]\nbase_url = \"https://api.alerts.in.ua\"\ntoken_env = \"T\"\npoll = \"2s\"\n";
        let (sources, errors) = parse(legacy);
        assert_eq!(sources.len(), 1);
        assert_eq!(sources[0].name(), "alerts_in_ua");
        assert_eq!(errors.len(), 1, "the budget check applies: {errors:?}");
        assert_eq!(errors[0].line, 4, "{errors:?}");
        let (_, errors) = parse("[sources.ukrainealarm]\nbase_url = \"x\"\n");
        assert!(errors[0].message.contains("unknown source `ukrainealarm`"), "{errors:?}");
    }

    #[test]
    fn every_kind_parses() {
        let text = "[[source]]\nkind = \"cap\"\nurl = \"https://example.org/cap.atom\"\n\n\
                    [[source]]\nkind = \"ukrainealarm\"\nbase_url = \"https://api.ukrainealarm.com\"\ntoken_env = \"U\"\n";
        let (sources, errors) = parse(text);
        assert_eq!(sources.len(), 2, "both parse");
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(sources[0].common().kind, SourceKind::Cap);
        assert_eq!(sources[1].common().name, "ukrainealarm");
    }

    #[test]
    fn missing_kind_and_missing_fields() {
        let (_, errors) = parse("[[source]]\nbase_url = \"x\"\n");
        assert_eq!(errors[0].line, 1);
        assert!(errors[0].message.contains("needs kind"), "{errors:?}");
        let (_, errors) = parse("[[source]]\nkind = \"alerts_in_ua\"\nbase_url = \"https://a.b\"\n");
        assert_eq!(errors[0].line, 1, "{errors:?}");
        assert!(errors[0].message.contains("missing field `token_env`"), "{errors:?}");
    }
}
