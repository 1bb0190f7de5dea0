//! `kind = "http"` in `[[sms.gateway]]`: a generic HTTP SMS gateway, described by the
//! operator (`channels::sms::generic` sends it), and its checks at load.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;

use crate::channels::sms::generic::{self, Encoding, SAMPLE, Statuses, Template, Values, Var};

/// A generic gateway: the request to make and what its answers mean.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpGateway {
    pub name: String,
    /// May carry `{token}` (a key in the query string).
    pub url: String,
    /// POST (default), PUT, or GET with the body template as the query string.
    #[serde(default = "default_method")]
    pub method: String,
    /// Values may use `{token}`, `{id}` and `{sender}`.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Where the secret `{token}` stands for is read from; optional here.
    #[serde(default)]
    pub token_env: Option<String>,
    /// The body (or the query, for GET): `{to}` or `{to_digits}`, `{text}`, and
    /// optionally `{id}`, `{sender}`, `{token}`.
    pub body: String,
    /// `application/json` (default) or `application/x-www-form-urlencoded`; decides
    /// how substitutions are escaped.
    #[serde(default)]
    pub content_type: Option<String>,
    /// Statuses meaning sent (default `["2xx"]`).
    #[serde(default)]
    pub sent: Option<Vec<StatusEntry>>,
    /// Statuses worth retrying (default `[401, 403, 408, 429, "5xx"]`).
    #[serde(default)]
    pub retry: Option<Vec<StatusEntry>>,
    /// Statuses refusing the message for good (default `["4xx"]`).
    #[serde(default)]
    pub permanent: Option<Vec<StatusEntry>>,
    /// A JSON pointer (`/message_id`) to the gateway's id in a sent answer.
    #[serde(default)]
    pub id_path: Option<String>,
    #[serde(default = "default_per_sec")]
    pub per_sec: u32,
    #[serde(with = "crate::config::duration", default = "default_timeout")]
    pub timeout: Duration,
    /// What `{sender}` becomes.
    #[serde(default)]
    pub sender: Option<String>,
}

/// One entry of a status list: `429` or `"5xx"` (checked by `generic::Statuses`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StatusEntry {
    Code(i64),
    Class(String),
}

impl<'de> Deserialize<'de> for StatusEntry {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = StatusEntry;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an HTTP status such as 429, or a class such as \"5xx\"")
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<StatusEntry, E> {
                Ok(StatusEntry::Code(v))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<StatusEntry, E> {
                Ok(StatusEntry::Code(i64::try_from(v).unwrap_or(i64::MAX)))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<StatusEntry, E> {
                Ok(StatusEntry::Class(v.to_owned()))
            }
        }
        d.deserialize_any(Visitor)
    }
}

impl std::fmt::Display for StatusEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StatusEntry::Code(c) => write!(f, "{c}"),
            StatusEntry::Class(s) => write!(f, "\"{s}\""),
        }
    }
}

fn default_method() -> String {
    "POST".to_owned()
}
fn default_per_sec() -> u32 {
    10
}
fn default_timeout() -> Duration {
    Duration::from_secs(10)
}

/// Every mistake in one gateway, as (the key it is about, what is wrong).
pub fn check(g: &HttpGateway) -> Vec<(&'static str, String)> {
    let mut errors = Vec::new();
    let kind = match generic::body_kind(&g.method, g.content_type.as_deref()) {
        Ok((_, kind)) => Some(kind),
        Err(e) => {
            errors.push(e);
            None
        }
    };
    let mut token_used = false;
    match Template::parse(&g.url, &Var::URL) {
        Ok(t) => {
            token_used |= t.uses(Var::Token);
            let filled = t.render(&SAMPLE, Encoding::Form);
            match reqwest::Url::parse(&filled) {
                Ok(u) if matches!(u.scheme(), "http" | "https") => {}
                Ok(u) => errors.push(("url", format!("`{}`: scheme {} is not http or https", g.url, u.scheme()))),
                Err(e) => errors.push(("url", format!("`{}` is not a URL: {e}", g.url))),
            }
        }
        Err(e) => errors.push(("url", e.to_string())),
    }
    match Template::parse(&g.body, &Var::BODY) {
        Ok(t) => {
            token_used |= t.uses(Var::Token);
            if let Err(e) = t.check_body() {
                errors.push(("body", e.to_string()));
            }
            if let Some(generic::BodyKind::Body { encoding: Encoding::Json, .. }) = kind
                && let Err(e) = t.check_json()
            {
                errors.push(("body", e.to_string()));
            }
            if t.uses(Var::Sender) && g.sender.is_none() {
                errors.push(("body", "`{sender}` needs `sender`".to_owned()));
            }
        }
        Err(e) => errors.push(("body", e.to_string())),
    }
    for (name, value) in &g.headers {
        match generic::header(name, value) {
            Ok((_, t)) => {
                token_used |= t.uses(Var::Token);
                if t.uses(Var::Sender) && g.sender.is_none() {
                    errors.push(("headers", format!("header `{name}`: `{{sender}}` needs `sender`")));
                }
                let sample = Values { token: "t", ..SAMPLE };
                if reqwest::header::HeaderValue::from_str(&t.render(&sample, Encoding::Raw)).is_err() {
                    errors.push(("headers", format!("header `{name}`: `{value}` is not a valid header value")));
                }
            }
            Err(e) => errors.push(("headers", e)),
        }
    }
    match (&g.token_env, token_used) {
        (None, true) => {
            errors.push(("name", "`{token}` is used but no token_env names the variable holding it".into()))
        }
        (Some(_), false) => {
            errors.push(("token_env", "token_env is set but no url, header or body uses `{token}`".into()))
        }
        _ => {}
    }
    if let Err(e) = Statuses::new(g.sent.as_deref(), g.retry.as_deref(), g.permanent.as_deref()) {
        errors.push((e.key(), e.to_string()));
    }
    if let Some(path) = &g.id_path
        && !path.starts_with('/')
    {
        errors.push(("id_path", format!("id_path `{path}` must be a JSON pointer such as \"/message_id\"")));
    }
    if g.sender.as_deref().is_some_and(|s| s.trim().is_empty()) {
        errors.push(("sender", "sender must not be empty".into()));
    }
    if g.timeout.is_zero() {
        errors.push(("timeout", "timeout must be more than zero".into()));
    }
    errors
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gateway(extra: &str) -> HttpGateway {
        let text = format!(
            "name = \"gw\"\nurl = \"https://sms.example.org/send\"\nbody = '{{\"to\":\"{{to}}\",\"text\":\"{{text}}\"}}'\n{extra}"
        );
        toml::from_str(&text).unwrap_or_else(|e| panic!("{e}\n{text}"))
    }

    fn keys(extra: &str) -> Vec<&'static str> {
        check(&gateway(extra)).into_iter().map(|(k, _)| k).collect()
    }

    #[test]
    fn a_plain_json_gateway_is_fine() {
        assert_eq!(check(&gateway("")), vec![]);
        assert_eq!(
            check(&gateway(
                "token_env = \"GW\"\nheaders = { Authorization = \"Bearer {token}\", \"Idempotency-Key\" = \"{id}\" }"
            )),
            vec![]
        );
    }

    #[test]
    fn each_mistake_names_its_key() {
        assert_eq!(keys("token_env = \"GW\""), ["token_env"], "a token nobody uses");
        assert_eq!(keys("headers = { \"X-Key\" = \"{token}\" }"), ["name"], "a token from nowhere");
        assert_eq!(keys("headers = { \"Bad Name\" = \"x\" }"), ["headers"]);
        assert_eq!(keys("method = \"GET\"\ncontent_type = \"application/json\""), ["content_type"]);
        assert_eq!(keys("content_type = \"text/plain\""), ["content_type"]);
        assert_eq!(keys("permanent = [400, 429]"), ["permanent"]);
        assert_eq!(keys("sent = [200, \"2x\"]"), ["sent"]);
        assert_eq!(keys("id_path = \"message_id\""), ["id_path"]);
        assert_eq!(keys("timeout = \"0s\""), ["timeout"]);
        let mut g = gateway("");
        g.url = "sms.example.org/send".into();
        assert_eq!(check(&g).into_iter().map(|(k, _)| k).collect::<Vec<_>>(), ["url"]);
        g = gateway("");
        g.body = "{\"to\":\"{to}\",\"text\":\"{text}\",\"x\":\"{foo}\"}".into();
        assert_eq!(
            check(&g)[0].1,
            "`{foo}` is not a placeholder here; use `{to}`, `{to_digits}`, `{text}`, `{id}`, `{sender}`, `{token}`"
        );
        g.body = "{\"to\":\"{to}\",\"from\":\"{sender}\"}".into();
        let errors = check(&g);
        assert_eq!(errors.iter().map(|(k, _)| *k).collect::<Vec<_>>(), ["body", "body"], "{errors:?}");
    }

    #[test]
    fn a_form_or_get_template_is_not_held_to_json() {
        let mut g = gateway("content_type = \"application/x-www-form-urlencoded\"");
        g.body = "to={to_digits}&text={text}".into();
        assert_eq!(check(&g), vec![]);
        let mut g = gateway("method = \"GET\"\ntoken_env = \"K\"");
        g.url = "https://sms.example.org/send?key={token}".into();
        g.body = "to={to}&msg={text}".into();
        assert_eq!(check(&g), vec![]);
    }
}
