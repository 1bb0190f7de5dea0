//! Request parameters, decoded the ways the Bot API accepts them.
//!
//! Role: turns a query string plus a JSON, `application/x-www-form-urlencoded`
//! or `multipart/form-data` body into one JSON object, and reads typed values
//! out of it. JSON bodies carry native types while forms and queries carry
//! strings, so every accessor takes both, as Telegram does.
//!
//! Rules: body values win over query values; Telegram reads a body as JSON
//! whatever its content type says, so anything that is not a form or
//! multipart must be a JSON object (400 otherwise).

use crate::sim::serve::parse_form;
use axum::http::{HeaderMap, header};
use serde_json::{Map, Value};

use super::methods::ApiFailure;

/// Merges query-string and body parameters into one object. Body values win.
pub(super) fn parse_params(
    query: Option<&str>,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Map<String, Value>, ApiFailure> {
    let mut params = Map::new();
    if let Some(q) = query {
        for (k, v) in parse_form(q) {
            params.insert(k, Value::String(v));
        }
    }
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(params);
    }
    let content_type =
        headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("").to_ascii_lowercase();
    if content_type.starts_with("multipart/form-data") {
        // teloxide sends setWebhook and the file-carrying methods this way.
        // Boundaries are case-sensitive, so read the header as sent.
        let boundary = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .split(';')
            .find_map(|part| {
                let part = part.trim();
                part.get(..9).filter(|key| key.eq_ignore_ascii_case("boundary=")).map(|_| part[9..].trim_matches('"'))
            })
            .ok_or_else(|| ApiFailure::bad_request("Bad Request: multipart boundary is missing"))?;
        params.extend(parse_multipart(body, boundary)?);
        return Ok(params);
    }
    if content_type.starts_with("application/x-www-form-urlencoded") {
        let text = std::str::from_utf8(body)
            .map_err(|_| ApiFailure::bad_request("Bad Request: invalid form body encoding"))?;
        for (k, v) in parse_form(text) {
            params.insert(k, Value::String(v));
        }
        return Ok(params);
    }
    // Telegram reads JSON whether or not the content type says so.
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(obj)) => {
            params.extend(obj);
            Ok(params)
        }
        _ => Err(ApiFailure::bad_request("Bad Request: can't parse JSON object")),
    }
}

/// Text fields of a `multipart/form-data` body. File parts are recorded as
/// a note of their name and size; the simulator stores no files.
fn parse_multipart(body: &[u8], boundary: &str) -> Result<Map<String, Value>, ApiFailure> {
    let malformed = || ApiFailure::bad_request("Bad Request: can't parse multipart body");
    let delimiter = format!("--{boundary}");
    let mut fields = Map::new();
    let mut rest = body;
    // Skip the preamble up to the first delimiter.
    let start = find_bytes(rest, delimiter.as_bytes()).ok_or_else(malformed)?;
    rest = &rest[start + delimiter.len()..];
    loop {
        if rest.starts_with(b"--") {
            return Ok(fields);
        }
        rest = rest.strip_prefix(b"\r\n").ok_or_else(malformed)?;
        let next = find_bytes(rest, format!("\r\n{delimiter}").as_bytes()).ok_or_else(malformed)?;
        let part = &rest[..next];
        rest = &rest[next + 2 + delimiter.len()..];
        let split = find_bytes(part, b"\r\n\r\n").ok_or_else(malformed)?;
        let head = String::from_utf8_lossy(&part[..split]);
        let content = &part[split + 4..];
        let disposition =
            head.lines().find(|l| l.to_ascii_lowercase().starts_with("content-disposition:")).ok_or_else(malformed)?;
        let attr = |key: &str| {
            disposition.split(';').find_map(|kv| {
                kv.trim().strip_prefix(key).and_then(|v| v.strip_prefix('=')).map(|v| v.trim_matches('"').to_owned())
            })
        };
        let name = attr("name").ok_or_else(malformed)?;
        let value = match attr("filename") {
            Some(file) => format!("<file {file:?}, {} bytes>", content.len()),
            None => String::from_utf8_lossy(content).into_owned(),
        };
        fields.insert(name, Value::String(value));
    }
}

fn find_bytes(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

// Parameter accessors: JSON bodies carry native types, forms carry strings.

pub(super) fn param_str<'a>(p: &'a Map<String, Value>, key: &str) -> Option<&'a str> {
    p.get(key).and_then(Value::as_str)
}

pub(super) fn param_i64(p: &Map<String, Value>, key: &str) -> Option<i64> {
    match p.get(key)? {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

pub(super) fn param_bool(p: &Map<String, Value>, key: &str) -> bool {
    match p.get(key) {
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) => s == "true" || s == "1",
        Some(Value::Number(n)) => n.as_i64() == Some(1),
        _ => false,
    }
}

/// A JSON-valued parameter: an object in a JSON body, a JSON string in a form.
pub(super) fn param_json(p: &Map<String, Value>, key: &str) -> Result<Option<Value>, ApiFailure> {
    match p.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => serde_json::from_str(s)
            .map(Some)
            .map_err(|_| ApiFailure::bad_request(format!("Bad Request: can't parse {key} JSON object"))),
        Some(v) => Ok(Some(v.clone())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_decoding() {
        assert_eq!(
            parse_form("chat_id=-5&text=a+b%26c%zz"),
            vec![("chat_id".to_owned(), "-5".to_owned()), ("text".to_owned(), "a b&c%zz".to_owned())]
        );
    }

    #[test]
    fn flags_come_as_json_bools_or_form_strings() {
        let p: Map<String, Value> = serde_json::from_str(
            r#"{"json": true, "off": false, "form": "true", "one": "1", "num": 1, "word": "yes", "zero": "0"}"#,
        )
        .unwrap();
        let on: Vec<bool> = ["json", "off", "form", "one", "num", "word", "zero", "absent"]
            .iter()
            .map(|key| param_bool(&p, key))
            .collect();
        assert_eq!(on, [true, false, true, true, true, false, false, false]);
    }
}
