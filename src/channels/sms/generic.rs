//! A generic HTTP SMS gateway (`kind = "http"`): the operator describes the request —
//! URL, method, headers, a body template — and which HTTP statuses mean sent, retry
//! or a permanent refusal. One recipient per request.
//!
//! Templates. `{to}` is the number in E.164 with `+`, `{to_digits}` without it,
//! `{text}` the SMS text, `{id}` the message's key ([`crate::channels::Outgoing::key`]:
//! the same on every retry of one message, so a gateway that deduplicates by it
//! cannot send twice), `{sender}` the configured sender, `{token}` the secret from
//! `token_env`. Every substitution is escaped for where it lands: JSON string
//! escaping in a JSON body (a placeholder must sit inside a JSON string), percent
//! encoding in a form body, a GET query and the URL, nothing in a header (a value
//! that is not a valid header is refused before the request). A `{` not followed by a
//! name and `}` is plain text, so JSON's own braces need no escaping.
//!
//! Answers. The status decides (`sent` / `retry` / `permanent`, a code listed exactly
//! before a class like `"4xx"`): sent → [`Attempt::Sent`], with the platform id read
//! at `id_path` (a JSON pointer) when one is configured — a 2xx whose body has no id
//! there is not the gateway's answer (a captive proxy page, a half-read body), so its
//! outcome is unknown; retry → a transient failure (a 429 holds the channel for its
//! `Retry-After`, 1 s without one), which failover counts; permanent → the message is
//! refused; a status in no list (a redirect, which is never followed) → unknown.

use std::fmt::Write as _;
use std::ops::RangeInclusive;
use std::time::Duration;

use reqwest::header::{CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue, RETRY_AFTER};

use super::{Attempt, digits, transport};
use crate::channels::{LimitScope, SendError, Sent};
use crate::config::secret::Secret;
use crate::config::sms::GatewaySettings;
use crate::config::sms_http::{HttpGateway, StatusEntry};

/// A placeholder in a template.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Var {
    To,
    ToDigits,
    Text,
    Id,
    Sender,
    Token,
}

impl Var {
    pub const ALL: [Var; 6] = [Var::To, Var::ToDigits, Var::Text, Var::Id, Var::Sender, Var::Token];
    /// What a body (or a GET query) may use.
    pub const BODY: [Var; 6] = Var::ALL;
    /// What a header value may use.
    pub const HEADER: [Var; 3] = [Var::Id, Var::Sender, Var::Token];
    /// What the URL may use (a key in the query string).
    pub const URL: [Var; 1] = [Var::Token];

    pub fn name(self) -> &'static str {
        match self {
            Var::To => "to",
            Var::ToDigits => "to_digits",
            Var::Text => "text",
            Var::Id => "id",
            Var::Sender => "sender",
            Var::Token => "token",
        }
    }

    fn from_name(name: &str) -> Option<Var> {
        Var::ALL.into_iter().find(|v| v.name() == name)
    }
}

/// How substitutions are escaped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Encoding {
    /// Inside a JSON string: `"`, `\` and control characters escaped.
    Json,
    /// `application/x-www-form-urlencoded`: everything but `A-Za-z0-9*-._` as `%XX`
    /// of its UTF-8 bytes, a space as `+`.
    Form,
    /// As is (header values; validity is checked on the result).
    Raw,
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    #[error("`{{{name}}}` is not a placeholder here; use {known}")]
    Unknown { name: String, known: String },
    #[error("the body template has no `{{{0}}}`")]
    Missing(&'static str),
    #[error("`{{{0}}}` must be inside a JSON string, as in \"{{{0}}}\"")]
    OutsideJsonString(&'static str),
    #[error("the body is not JSON once filled in: {0}")]
    NotJson(String),
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Piece {
    Lit(String),
    Var(Var),
}

/// A parsed template: literal text and placeholders.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Template {
    pieces: Vec<Piece>,
}

/// What placeholders become for one message.
#[derive(Clone, Copy, Debug)]
pub struct Values<'a> {
    /// E.164 with `+`.
    pub to: &'a str,
    pub text: &'a str,
    pub id: &'a str,
    pub sender: &'a str,
    pub token: &'a str,
}

impl Values<'_> {
    fn get(&self, var: Var) -> &str {
        match var {
            Var::To => self.to,
            Var::ToDigits => digits(self.to),
            Var::Text => self.text,
            Var::Id => self.id,
            Var::Sender => self.sender,
            Var::Token => self.token,
        }
    }
}

/// Values that exercise every escape, for checking a template at load.
pub const SAMPLE: Values<'static> = Values {
    to: "+380501234567",
    text: "Тривога \"A&B\" 100%\n\\ {to} = 🚨",
    id: "s1-0123456789abcdef",
    sender: "SIRENA",
    token: "sample-token",
};

impl Template {
    /// Splits `text` into literals and placeholders, refusing a name not in `allowed`.
    pub fn parse(text: &str, allowed: &[Var]) -> Result<Template, TemplateError> {
        let mut pieces = Vec::new();
        let mut lit = String::new();
        let mut rest = text;
        while let Some(open) = rest.find('{') {
            lit.push_str(&rest[..open]);
            let after = &rest[open + 1..];
            let name_len = after.bytes().take_while(|b| b.is_ascii_alphanumeric() || *b == b'_').count();
            if name_len == 0 || after.as_bytes().get(name_len) != Some(&b'}') {
                lit.push('{');
                rest = after;
                continue;
            }
            let name = &after[..name_len];
            match Var::from_name(name).filter(|v| allowed.contains(v)) {
                Some(var) => {
                    if !lit.is_empty() {
                        pieces.push(Piece::Lit(std::mem::take(&mut lit)));
                    }
                    pieces.push(Piece::Var(var));
                }
                None => {
                    let known: Vec<String> = allowed.iter().map(|v| format!("`{{{}}}`", v.name())).collect();
                    return Err(TemplateError::Unknown { name: name.to_owned(), known: known.join(", ") });
                }
            }
            rest = &after[name_len + 1..];
        }
        lit.push_str(rest);
        if !lit.is_empty() {
            pieces.push(Piece::Lit(lit));
        }
        Ok(Template { pieces })
    }

    pub fn uses(&self, var: Var) -> bool {
        self.pieces.contains(&Piece::Var(var))
    }

    pub fn render(&self, values: &Values<'_>, encoding: Encoding) -> String {
        let mut out = String::new();
        for piece in &self.pieces {
            match piece {
                Piece::Lit(s) => out.push_str(s),
                Piece::Var(v) => escape(values.get(*v), encoding, &mut out),
            }
        }
        out
    }

    /// A body template must name the recipient and carry the text.
    pub fn check_body(&self) -> Result<(), TemplateError> {
        if !self.uses(Var::To) && !self.uses(Var::ToDigits) {
            return Err(TemplateError::Missing("to"));
        }
        if !self.uses(Var::Text) {
            return Err(TemplateError::Missing("text"));
        }
        Ok(())
    }

    /// A JSON body: every placeholder inside a string literal, and the template filled
    /// with [`SAMPLE`] parses as JSON.
    pub fn check_json(&self) -> Result<(), TemplateError> {
        let (mut in_string, mut escaped) = (false, false);
        for piece in &self.pieces {
            match piece {
                Piece::Lit(s) => {
                    for c in s.chars() {
                        if escaped {
                            escaped = false;
                        } else if in_string && c == '\\' {
                            escaped = true;
                        } else if c == '"' {
                            in_string = !in_string;
                        }
                    }
                }
                Piece::Var(v) if !in_string => return Err(TemplateError::OutsideJsonString(v.name())),
                Piece::Var(_) => {}
            }
        }
        serde_json::from_str::<serde_json::Value>(&self.render(&SAMPLE, Encoding::Json))
            .map(|_| ())
            .map_err(|e| TemplateError::NotJson(e.to_string()))
    }
}

fn escape(value: &str, encoding: Encoding, out: &mut String) {
    match encoding {
        Encoding::Raw => out.push_str(value),
        Encoding::Json => {
            for c in value.chars() {
                match c {
                    '"' => out.push_str("\\\""),
                    '\\' => out.push_str("\\\\"),
                    '\n' => out.push_str("\\n"),
                    '\r' => out.push_str("\\r"),
                    '\t' => out.push_str("\\t"),
                    c if u32::from(c) < 0x20 => {
                        let _ = write!(out, "\\u{:04x}", u32::from(c));
                    }
                    c => out.push(c),
                }
            }
        }
        Encoding::Form => {
            for b in value.bytes() {
                match b {
                    b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'*' | b'-' | b'.' | b'_' => out.push(char::from(b)),
                    b' ' => out.push('+'),
                    b => {
                        let _ = write!(out, "%{b:02X}");
                    }
                }
            }
        }
    }
}

/// What an HTTP status means for the message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    Sent,
    Retry,
    Permanent,
}

impl Verdict {
    pub fn key(self) -> &'static str {
        match self {
            Verdict::Sent => "sent",
            Verdict::Retry => "retry",
            Verdict::Permanent => "permanent",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Rule {
    Code(u16),
    /// `4xx`: the hundreds digit.
    Class(u16),
}

impl std::fmt::Display for Rule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Rule::Code(c) => write!(f, "{c}"),
            Rule::Class(h) => write!(f, "{h}xx"),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum StatusError {
    #[error("`{entry}` in {list} is not an HTTP status: use a code from 100 to 599 or a class like \"4xx\"")]
    Bad { list: &'static str, entry: String },
    #[error("sent lists no status: nothing could ever count as sent")]
    NothingSent,
    /// `a` is the list the default put it in, if a default did.
    #[error("{rule} is in both {a} and {b}")]
    Overlap { rule: String, a: String, b: &'static str },
}

impl StatusError {
    /// The key the error is about: the list the operator wrote.
    pub fn key(&self) -> &'static str {
        match self {
            StatusError::Bad { list, .. } => list,
            StatusError::NothingSent => "sent",
            StatusError::Overlap { b, .. } => b,
        }
    }
}

/// Which statuses mean what. Defaults: `sent = ["2xx"]`, `retry = [401, 403, 408, 429,
/// "5xx"]`, `permanent = ["4xx"]` — a wrong token, an unpaid account or a slow proxy
/// is the gateway's trouble, which the next gateway may not have, not the message's.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Statuses {
    lists: Vec<(Verdict, Vec<Rule>)>,
}

const DEFAULT_SENT: &[Rule] = &[Rule::Class(2)];
const DEFAULT_RETRY: &[Rule] = &[Rule::Code(401), Rule::Code(403), Rule::Code(408), Rule::Code(429), Rule::Class(5)];
const DEFAULT_PERMANENT: &[Rule] = &[Rule::Class(4)];

impl Statuses {
    /// The three lists as configured; `None` takes the default. A code (or a class) in
    /// two lists is an error: which one wins would be a guess.
    pub fn new(
        sent: Option<&[StatusEntry]>,
        retry: Option<&[StatusEntry]>,
        permanent: Option<&[StatusEntry]>,
    ) -> Result<Statuses, StatusError> {
        let mut lists = Vec::new();
        let mut set_by_operator = Vec::new();
        for (verdict, given, default) in [
            (Verdict::Sent, sent, DEFAULT_SENT),
            (Verdict::Retry, retry, DEFAULT_RETRY),
            (Verdict::Permanent, permanent, DEFAULT_PERMANENT),
        ] {
            let rules = match given {
                Some(entries) => entries.iter().map(|e| rule(verdict.key(), e)).collect::<Result<Vec<_>, _>>()?,
                None => default.to_vec(),
            };
            if verdict == Verdict::Sent && rules.is_empty() {
                return Err(StatusError::NothingSent);
            }
            set_by_operator.push(given.is_some());
            lists.push((verdict, rules));
        }
        for i in 0..lists.len() {
            for j in i + 1..lists.len() {
                if let Some(rule) = lists[i].1.iter().find(|r| lists[j].1.contains(r)) {
                    // Name the operator's list last: the error points at it.
                    let (a, b) = if set_by_operator[j] { (i, j) } else { (j, i) };
                    let a_key = lists[a].0.key();
                    let a_label = match set_by_operator[a] {
                        true => a_key.to_owned(),
                        false => format!("{a_key} (by default: set {a_key} too to move it)"),
                    };
                    return Err(StatusError::Overlap { rule: rule.to_string(), a: a_label, b: lists[b].0.key() });
                }
            }
        }
        Ok(Statuses { lists })
    }

    /// An exact code wins over a class; `None` for a status in no list.
    pub fn classify(&self, status: u16) -> Option<Verdict> {
        let find = |want: Rule| self.lists.iter().find(|(_, rules)| rules.contains(&want)).map(|(v, _)| *v);
        find(Rule::Code(status)).or_else(|| find(Rule::Class(status / 100)))
    }
}

const STATUS_RANGE: RangeInclusive<i64> = 100..=599;

fn rule(list: &'static str, entry: &StatusEntry) -> Result<Rule, StatusError> {
    let bad = || StatusError::Bad { list, entry: entry.to_string() };
    match entry {
        StatusEntry::Code(c) if STATUS_RANGE.contains(c) => u16::try_from(*c).map(Rule::Code).map_err(|_| bad()),
        StatusEntry::Code(_) => Err(bad()),
        StatusEntry::Class(s) => {
            let b = s.as_bytes();
            match b {
                [d @ b'1'..=b'5', x, y] if x.eq_ignore_ascii_case(&b'x') && y.eq_ignore_ascii_case(&b'x') => {
                    Ok(Rule::Class(u16::from(d - b'0')))
                }
                _ => Err(bad()),
            }
        }
    }
}

/// How the body travels.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BodyKind {
    /// POST or PUT with this `Content-Type`, escaped as `encoding`.
    Body { content_type: String, encoding: Encoding },
    /// GET: the template is the query string, percent-encoded.
    Query,
}

/// `method` and `content_type` as configured → the method and where the body goes.
pub fn body_kind(
    method: &str,
    content_type: Option<&str>,
) -> Result<(reqwest::Method, BodyKind), (&'static str, String)> {
    let m = method.to_ascii_uppercase();
    match (m.as_str(), content_type) {
        ("GET", None) => Ok((reqwest::Method::GET, BodyKind::Query)),
        ("GET", Some(_)) => {
            Err(("content_type", "a GET sends its template as the query string: drop content_type".into()))
        }
        ("POST" | "PUT", ct) => {
            let ct = ct.unwrap_or("application/json");
            let media = ct.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
            let encoding = if media == "application/json"
                || (media.starts_with("application/") && media.ends_with("+json"))
            {
                Encoding::Json
            } else if media == "application/x-www-form-urlencoded" {
                Encoding::Form
            } else {
                return Err((
                    "content_type",
                    format!(
                        "content_type `{ct}` is not one sirena can escape for: use application/json (or …+json) or application/x-www-form-urlencoded"
                    ),
                ));
            };
            let method = if m == "PUT" { reqwest::Method::PUT } else { reqwest::Method::POST };
            Ok((method, BodyKind::Body { content_type: ct.to_owned(), encoding }))
        }
        _ => Err(("method", format!("method `{method}` must be POST, PUT or GET"))),
    }
}

/// A header of the request: its name and value template.
pub fn header(name: &str, value: &str) -> Result<(HeaderName, Template), String> {
    let header = HeaderName::from_bytes(name.as_bytes()).map_err(|_| format!("`{name}` is not a header name"))?;
    if header == CONTENT_TYPE {
        return Err("set content_type instead of a Content-Type header".into());
    }
    if header == reqwest::header::CONTENT_LENGTH || header == reqwest::header::HOST {
        return Err(format!("`{name}` is set by sirena itself"));
    }
    let template = Template::parse(value, &Var::HEADER).map_err(|e| format!("header `{name}`: {e}"))?;
    Ok((header, template))
}

/// One configured generic gateway.
pub struct Generic {
    name: String,
    http: reqwest::Client,
    method: reqwest::Method,
    url: Template,
    headers: Vec<(HeaderName, Template)>,
    body: Template,
    kind: BodyKind,
    statuses: Statuses,
    id_path: Option<String>,
    sender: String,
    token: Secret,
}

impl Generic {
    /// From settings already validated at load; an error here is a config bug (or a
    /// token that cannot go into a header).
    pub fn new(settings: &GatewaySettings, token: Secret) -> Result<Generic, SendError> {
        let GatewaySettings::Http(g) = settings else {
            return Err(SendError::Rejected("not a generic HTTP gateway".to_owned()));
        };
        Self::from_settings(g, token).map_err(SendError::Rejected)
    }

    fn from_settings(g: &HttpGateway, token: Secret) -> Result<Generic, String> {
        let (method, kind) = body_kind(&g.method, g.content_type.as_deref()).map_err(|(_, e)| e)?;
        let url = Template::parse(&g.url, &Var::URL).map_err(|e| e.to_string())?;
        let body = Template::parse(&g.body, &Var::BODY).map_err(|e| e.to_string())?;
        let statuses =
            Statuses::new(g.sent.as_deref(), g.retry.as_deref(), g.permanent.as_deref()).map_err(|e| e.to_string())?;
        let mut headers = Vec::new();
        for (name, value) in &g.headers {
            let (name, template) = header(name, value)?;
            let sample = Values { token: token.expose(), ..SAMPLE };
            if HeaderValue::from_str(&template.render(&sample, Encoding::Raw)).is_err() {
                return Err(format!("header `{name}` is not a valid header value once filled in (check the token)"));
            }
            headers.push((name, template));
        }
        let http = reqwest::Client::builder()
            .timeout(g.timeout)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("sirena/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| e.to_string())?;
        Ok(Generic {
            name: g.name.clone(),
            http,
            method,
            url,
            headers,
            body,
            kind,
            statuses,
            id_path: g.id_path.clone().filter(|p| !p.is_empty()),
            sender: g.sender.clone().unwrap_or_default(),
            token,
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The request for one message, ready to send.
    fn request(&self, values: &Values<'_>) -> Result<reqwest::RequestBuilder, String> {
        let mut url = reqwest::Url::parse(&self.url.render(values, Encoding::Form))
            .map_err(|e| format!("the URL does not parse once filled in: {e}"))?;
        let mut request = match &self.kind {
            BodyKind::Query => {
                let filled = self.body.render(values, Encoding::Form);
                let query = match url.query() {
                    Some(q) if !q.is_empty() => format!("{q}&{filled}"),
                    _ => filled,
                };
                url.set_query(Some(&query));
                self.http.request(self.method.clone(), url)
            }
            BodyKind::Body { content_type, encoding } => self
                .http
                .request(self.method.clone(), url)
                .header(CONTENT_TYPE, content_type.as_str())
                .body(self.body.render(values, *encoding)),
        };
        for (name, template) in &self.headers {
            let mut value = HeaderValue::from_str(&template.render(values, Encoding::Raw))
                .map_err(|_| format!("header `{name}` is not a valid header value once filled in"))?;
            value.set_sensitive(template.uses(Var::Token));
            request = request.header(name.clone(), value);
        }
        Ok(request)
    }

    pub async fn send(&self, to: &str, text: &str, key: &str) -> Attempt {
        let values = Values { to, text, id: key, sender: &self.sender, token: self.token.expose() };
        let request = match self.request(&values) {
            Ok(r) => r,
            // Nothing went out; this message cannot be written as configured.
            Err(why) => return Attempt::Failed(SendError::Rejected(format!("{}: {why}", self.name))),
        };
        let resp = match request.send().await {
            Ok(r) => r,
            Err(e) => return transport(e),
        };
        let status = resp.status().as_u16();
        let wait = retry_after(resp.headers(), chrono::Utc::now());
        let body = match resp.bytes().await {
            Ok(b) => b,
            Err(e) => return transport(e),
        };
        classify(&self.statuses, status, wait, &body, self.id_path.as_deref())
    }
}

/// What an answer means, by its status (and, for a sent one with `id_path`, its body).
fn classify(
    statuses: &Statuses,
    status: u16,
    retry_after: Option<Duration>,
    body: &[u8],
    id_path: Option<&str>,
) -> Attempt {
    let what = || format!("HTTP {status}: {}", snippet(body));
    match statuses.classify(status) {
        Some(Verdict::Sent) => match id_path {
            None => Attempt::Sent(Sent { platform_id: String::new() }),
            Some(path) => match platform_id(body, path) {
                Some(id) => Attempt::Sent(Sent { platform_id: id }),
                None => Attempt::Unknown(format!("HTTP {status} without an id at {path}: {}", snippet(body))),
            },
        },
        Some(Verdict::Retry) if status == 429 => Attempt::Failed(SendError::RateLimited {
            scope: LimitScope::Channel,
            retry_after: retry_after.unwrap_or(Duration::from_secs(1)),
        }),
        Some(Verdict::Retry) => Attempt::Failed(SendError::Transient(what())),
        Some(Verdict::Permanent) => Attempt::Failed(SendError::Rejected(what())),
        None => Attempt::Unknown(format!("HTTP {status} is in none of sent, retry and permanent")),
    }
}

fn platform_id(body: &[u8], pointer: &str) -> Option<String> {
    let value: serde_json::Value = serde_json::from_slice(body).ok()?;
    match value.pointer(pointer)? {
        serde_json::Value::String(s) if !s.is_empty() => Some(s.clone()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// The start of an answer, for an error message (never the request: it holds the number).
fn snippet(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let one_line: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    one_line.chars().take(200).collect()
}

/// `Retry-After` as seconds or as an HTTP date (a date past is no wait).
fn retry_after(headers: &HeaderMap, now: chrono::DateTime<chrono::Utc>) -> Option<Duration> {
    let v = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = chrono::DateTime::parse_from_rfc2822(v).ok()?.to_utc();
    Some((at - now).to_std().unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(text: &str) -> Values<'_> {
        Values { to: "+380501234567", text, id: "s7-00ff", sender: "SIRENA", token: "k&y" }
    }

    const TRICKY: &str = "Тривога! \"Укриття\" №3 & 50%\nвул. Сумська, 1\\2\ttab\u{1}🚨";

    #[test]
    fn a_json_template_keeps_every_character_of_the_text() {
        let t = Template::parse(
            r#"{"to":"{to}","text":"{text}","id":"{id}","from":"{sender}","n":{"d":"{to_digits}"}}"#,
            &Var::BODY,
        )
        .expect("parse");
        t.check_body().expect("has to and text");
        t.check_json().expect("json");
        let body = t.render(&values(TRICKY), Encoding::Json);
        let v: serde_json::Value = serde_json::from_str(&body).expect("valid JSON");
        assert_eq!(v["text"], TRICKY);
        assert_eq!(v["to"], "+380501234567");
        assert_eq!(v["n"]["d"], "380501234567");
        assert_eq!(v["id"], "s7-00ff");
        assert_eq!(v["from"], "SIRENA");
    }

    #[test]
    fn a_form_template_percent_encodes_each_value() {
        let t = Template::parse("phone={to}&msg={text}&ref={id}", &Var::BODY).expect("parse");
        let body = t.render(&values("a&b=c +d Ї"), Encoding::Form);
        assert_eq!(body, "phone=%2B380501234567&msg=a%26b%3Dc+%2Bd+%D0%87&ref=s7-00ff");
        // Decoded the way a server decodes a form, every field is intact.
        let pairs: Vec<(String, String)> = body
            .split('&')
            .map(|p| {
                let (k, v) = p.split_once('=').expect("pair");
                (k.to_owned(), percent_decode(v))
            })
            .collect();
        assert_eq!(pairs[1].1, "a&b=c +d Ї");
        assert_eq!(
            percent_decode(&t.render(&values(TRICKY), Encoding::Form).split('&').nth(1).expect("msg")[4..]),
            TRICKY
        );
    }

    fn percent_decode(s: &str) -> String {
        let mut out = Vec::new();
        let b = s.as_bytes();
        let mut i = 0;
        while i < b.len() {
            match b[i] {
                b'+' => out.push(b' '),
                b'%' => {
                    out.push(u8::from_str_radix(&s[i + 1..i + 3], 16).expect("hex"));
                    i += 2;
                }
                c => out.push(c),
            }
            i += 1;
        }
        String::from_utf8(out).expect("utf-8")
    }

    #[test]
    fn templates_refuse_what_they_cannot_fill() {
        assert_eq!(
            Template::parse("to={to}&t={txt}", &Var::BODY),
            Err(TemplateError::Unknown {
                name: "txt".into(),
                known: "`{to}`, `{to_digits}`, `{text}`, `{id}`, `{sender}`, `{token}`".into()
            })
        );
        assert!(matches!(Template::parse("Bearer {text}", &Var::HEADER), Err(TemplateError::Unknown { .. })));
        let no_text = Template::parse("to={to}", &Var::BODY).expect("parse");
        assert_eq!(no_text.check_body(), Err(TemplateError::Missing("text")));
        let no_to = Template::parse("t={text}", &Var::BODY).expect("parse");
        assert_eq!(no_to.check_body(), Err(TemplateError::Missing("to")));
        let bare = Template::parse(r#"{"to":{to},"text":"{text}"}"#, &Var::BODY).expect("parse");
        assert_eq!(bare.check_json(), Err(TemplateError::OutsideJsonString("to")));
        let broken = Template::parse(r#"{"to":"{to}","text":"{text}""#, &Var::BODY).expect("parse");
        assert!(matches!(broken.check_json(), Err(TemplateError::NotJson(_))));
        // An escaped quote does not end the string the placeholder is in.
        let escaped = Template::parse(r#"{"text":"say \"{text}\"","to":"{to}"}"#, &Var::BODY).expect("parse");
        assert_eq!(escaped.check_json(), Ok(()));
        // Braces that are not a placeholder are text.
        let braces = Template::parse("{ {x y} {} {to}", &Var::BODY).expect("parse");
        assert_eq!(braces.render(&values(""), Encoding::Raw), "{ {x y} {} +380501234567");
    }

    fn entries(list: &[StatusEntry]) -> Option<&[StatusEntry]> {
        Some(list)
    }

    #[test]
    fn statuses_classify_with_defaults_and_exact_codes_first() {
        let s = Statuses::new(None, None, None).expect("defaults");
        assert_eq!(s.classify(200), Some(Verdict::Sent));
        assert_eq!(s.classify(202), Some(Verdict::Sent));
        assert_eq!(s.classify(429), Some(Verdict::Retry));
        assert_eq!(s.classify(503), Some(Verdict::Retry));
        assert_eq!(s.classify(401), Some(Verdict::Retry), "a wrong token is the gateway's trouble");
        assert_eq!(s.classify(400), Some(Verdict::Permanent));
        assert_eq!(s.classify(422), Some(Verdict::Permanent));
        assert_eq!(s.classify(302), None);
        let custom = Statuses::new(
            entries(&[StatusEntry::Code(200)]),
            entries(&[StatusEntry::Class("5XX".into()), StatusEntry::Code(409)]),
            entries(&[StatusEntry::Class("4xx".into())]),
        )
        .expect("custom");
        assert_eq!(custom.classify(201), None, "only 200 was listed as sent");
        assert_eq!(custom.classify(409), Some(Verdict::Retry));
        assert_eq!(custom.classify(429), Some(Verdict::Permanent));
    }

    #[test]
    fn overlapping_or_bad_status_lists_are_refused() {
        let e = Statuses::new(None, None, entries(&[StatusEntry::Code(429)])).expect_err("429 twice");
        assert_eq!(e.key(), "permanent");
        assert_eq!(e.to_string(), "429 is in both retry (by default: set retry too to move it) and permanent");
        let e = Statuses::new(
            entries(&[StatusEntry::Class("2xx".into())]),
            entries(&[StatusEntry::Class("2xx".into())]),
            None,
        )
        .expect_err("2xx twice");
        assert_eq!(e.to_string(), "2xx is in both sent and retry");
        let e = Statuses::new(entries(&[StatusEntry::Code(700)]), None, None).expect_err("700");
        assert_eq!(e.key(), "sent");
        assert!(Statuses::new(None, entries(&[StatusEntry::Class("50x".into())]), None).is_err());
        assert_eq!(Statuses::new(entries(&[]), None, None), Err(StatusError::NothingSent));
        // An empty retry list is allowed: a 5xx is then in no list, so unknown.
        let no_retry = Statuses::new(None, entries(&[]), None).expect("allowed");
        assert_eq!(no_retry.classify(503), None);
        assert_eq!(no_retry.classify(429), Some(Verdict::Permanent));
    }

    #[test]
    fn answers_mean_what_the_lists_say() {
        let s = Statuses::new(None, None, None).expect("defaults");
        assert!(matches!(classify(&s, 200, None, b"", None), Attempt::Sent(_)));
        match classify(&s, 201, None, br#"{"data":{"message_id":"m-9"}}"#, Some("/data/message_id")) {
            Attempt::Sent(sent) => assert_eq!(sent.platform_id, "m-9"),
            other => panic!("{other:?}"),
        }
        assert!(
            matches!(classify(&s, 200, None, b"<html>proxy</html>", Some("/message_id")), Attempt::Unknown(_)),
            "a 2xx that is not the gateway's answer"
        );
        match classify(&s, 429, Some(Duration::from_secs(7)), b"", None) {
            Attempt::Failed(SendError::RateLimited { scope: LimitScope::Channel, retry_after }) => {
                assert_eq!(retry_after, Duration::from_secs(7));
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            classify(&s, 429, None, b"", None),
            Attempt::Failed(SendError::RateLimited { retry_after, .. }) if retry_after == Duration::from_secs(1)
        ));
        assert!(matches!(classify(&s, 502, None, b"bad gateway", None), Attempt::Failed(SendError::Transient(_))));
        assert!(matches!(classify(&s, 400, None, b"{}", None), Attempt::Failed(SendError::Rejected(_))));
        assert!(matches!(classify(&s, 301, None, b"", None), Attempt::Unknown(_)));
    }

    #[test]
    fn methods_and_content_types() {
        assert!(matches!(body_kind("post", None), Ok((_, BodyKind::Body { encoding: Encoding::Json, .. }))));
        assert!(matches!(
            body_kind("POST", Some("application/x-www-form-urlencoded; charset=utf-8")),
            Ok((_, BodyKind::Body { encoding: Encoding::Form, .. }))
        ));
        assert!(matches!(
            body_kind("PUT", Some("application/vnd.gw+json")),
            Ok((_, BodyKind::Body { encoding: Encoding::Json, .. }))
        ));
        assert!(matches!(body_kind("GET", None), Ok((_, BodyKind::Query))));
        assert_eq!(body_kind("GET", Some("application/json")).map_err(|e| e.0), Err("content_type"));
        assert_eq!(body_kind("POST", Some("text/plain")).map_err(|e| e.0), Err("content_type"));
        assert_eq!(body_kind("DELETE", None).map_err(|e| e.0), Err("method"));
    }

    #[test]
    fn headers_are_checked() {
        assert!(header("X-Api-Key", "{token}").is_ok());
        assert!(header("Idempotency-Key", "{id}").is_ok());
        assert!(header("Bad Header", "x").is_err());
        assert!(header("content-type", "text/plain").is_err());
        assert!(header("Authorization", "Bearer {to}").is_err());
    }
}
