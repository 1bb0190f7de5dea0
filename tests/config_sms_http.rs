//! A generic HTTP SMS gateway (`kind = "http"`) in `sirena.toml`: each mistake is
//! reported at the line of the key it is about, with a message that says what to do.

mod common;

use std::path::PathBuf;

use sirena::config::load;
use sirena::config::sms::GatewaySettings;
use tempfile::TempDir;

/// The shipped config with `[sms]` and `gateway` appended to `sirena.toml`; the text
/// and where the gateway starts.
fn with_gateway(gateway: &str) -> (TempDir, PathBuf, String, usize) {
    let tmp = TempDir::new().expect("tempdir");
    let dir = tmp.path().join("config");
    sirena::demo::write_embedded_config(&dir).expect("the shipped config");
    let path = dir.join("sirena.toml");
    let mut text = std::fs::read_to_string(&path).expect("read");
    text.push_str("\n[sms]\nmax_parts = 2\n\n");
    let from = text.len();
    text.push_str(gateway);
    std::fs::write(&path, &text).expect("write");
    (tmp, dir, text, from)
}

/// 1-based line of the first line from `from` on that contains `needle`.
fn line_of(text: &str, from: usize, needle: &str) -> usize {
    let at = from + text[from..].find(needle).unwrap_or_else(|| panic!("`{needle}` not in the gateway"));
    text[..at].matches('\n').count() + 1
}

const GOOD: &str = r#"[[sms.gateway]]
name = "gw"
kind = "http"
url = "https://sms.example.org/api/v1/messages"
token_env = "GW_KEY"
headers = { "X-API-Key" = "{token}", "Idempotency-Key" = "{id}" }
body = '{"to": "{to}", "text": "{text}", "id": "{id}"}'
id_path = "/message_id"
per_sec = 5
"#;

#[test]
fn a_well_formed_generic_gateway_loads() {
    let (_tmp, dir, _, _) = with_gateway(GOOD);
    let config = load(&dir).unwrap_or_else(|e| panic!("{e}"));
    let sms = config.settings.sms.expect("[sms]");
    let GatewaySettings::Http(g) = &sms.gateways[0] else { panic!("{:?}", sms.gateways) };
    assert_eq!((g.name.as_str(), g.method.as_str(), g.per_sec), ("gw", "POST", 5));
    assert_eq!(sms.gateways[0].token_env(), Some("GW_KEY"));
}

/// (what, replace this in GOOD, with this, the line holding this, the message says).
const CASES: &[(&str, &str, &str, &str, &[&str])] = &[
    (
        "an unknown placeholder",
        r#""id": "{id}"}'"#,
        r#""id": "{uid}"}'"#,
        "body = ",
        &["`{uid}` is not a placeholder here", "`{to}`, `{to_digits}`, `{text}`"],
    ),
    ("a body without the text", r#", "text": "{text}""#, "", "body = ", &["the body template has no `{text}`"]),
    ("a body without the number", r#""to": "{to}", "#, "", "body = ", &["the body template has no `{to}`"]),
    (
        "a placeholder outside a JSON string",
        r#""to": "{to}""#,
        r#""to": {to}"#,
        "body = ",
        &["`{to}` must be inside a JSON string"],
    ),
    ("a body that is not JSON", r#""id": "{id}"}'"#, r#""id": "{id}"'"#, "body = ", &["the body is not JSON"]),
    (
        "overlapping status lists",
        "per_sec = 5\n",
        "per_sec = 5\nsent = [\"2xx\"]\npermanent = [\"4xx\", 429]\n",
        "permanent = ",
        &["429 is in both retry (by default: set retry too to move it) and permanent"],
    ),
    (
        "a bad status",
        "per_sec = 5\n",
        "per_sec = 5\nretry = [\"5x\"]\n",
        "retry = ",
        &["`\"5x\"` in retry is not an HTTP status"],
    ),
    (
        "a URL that is not one",
        "https://sms.example.org/api/v1/messages",
        "sms.example.org/api/v1/messages",
        "url = ",
        &["is not a URL"],
    ),
    (
        "a bad header name",
        r#""Idempotency-Key""#,
        r#""Idempotency Key""#,
        "headers = ",
        &["`Idempotency Key` is not a header name"],
    ),
    (
        "a Content-Type header",
        r#""Idempotency-Key" = "{id}""#,
        r#""Content-Type" = "text/plain""#,
        "headers = ",
        &["set content_type instead"],
    ),
    (
        "a token nobody uses",
        r#""X-API-Key" = "{token}", "#,
        "",
        "token_env = ",
        &["no url, header or body uses `{token}`"],
    ),
    ("a token from nowhere", "token_env = \"GW_KEY\"\n", "", "name = \"gw\"", &["no token_env names the variable"]),
    (
        "a content type sirena cannot escape for",
        "per_sec = 5\n",
        "per_sec = 5\ncontent_type = \"text/plain\"\n",
        "content_type = ",
        &["content_type `text/plain` is not one sirena can escape for"],
    ),
    (
        "a GET with a content type",
        "per_sec = 5\n",
        "per_sec = 5\nmethod = \"GET\"\ncontent_type = \"application/json\"\n",
        "content_type = ",
        &["a GET sends its template as the query string"],
    ),
    (
        "an unknown method",
        "per_sec = 5\n",
        "per_sec = 5\nmethod = \"PATCH\"\n",
        "method = ",
        &["method `PATCH` must be POST, PUT or GET"],
    ),
    (
        "an id_path that is not a pointer",
        "\"/message_id\"",
        "\"message_id\"",
        "id_path = ",
        &["must be a JSON pointer"],
    ),
    ("no messages per second", "per_sec = 5", "per_sec = 0", "per_sec = ", &["per_sec must be at least 1"]),
];

#[test]
fn each_mistake_is_reported_at_its_key() {
    let mut failures = Vec::new();
    for (what, old, new, at, says) in CASES {
        assert!(GOOD.contains(old), "{what}: `{old}` is not in the good gateway");
        let (_tmp, dir, text, from) = with_gateway(&GOOD.replacen(old, new, 1));
        let want = line_of(&text, from, at);
        let errors = match load(&dir) {
            Ok(_) => {
                failures.push(format!("{what}: loaded without an error"));
                continue;
            }
            Err(e) => e.0,
        };
        let hit = errors
            .iter()
            .find(|e| e.file.ends_with("sirena.toml") && e.line == want && says.iter().all(|s| e.message.contains(s)));
        if hit.is_none() {
            let got: Vec<String> = errors.iter().map(|e| format!("line {}: {}", e.line, e.message)).collect();
            failures.push(format!("{what}: want line {want} saying {says:?}, got {got:?}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn a_mistyped_key_is_refused() {
    let (_tmp, dir, _, _) = with_gateway(&GOOD.replacen("id_path", "idpath", 1));
    let errors = load(&dir).expect_err("an unknown field").0;
    assert!(errors.iter().any(|e| e.message.contains("unknown field `idpath`")), "{errors:?}");
}
