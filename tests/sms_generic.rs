//! The generic HTTP gateway (`kind = "http"`) against the generic SMS API simulator
//! over loopback: JSON, form and GET templates carry awkward texts intact, the
//! platform id is read at `id_path`, a lost answer is retried under the same `{id}`
//! and sends nothing twice, and each kind of refusal means what the status lists say.

use std::time::Duration;

use sirena::channels::sms::{Gateway, SmsChannel};
use sirena::channels::{Address, Channel, Keyboard, LimitScope, Outgoing, SendError, Sent};
use sirena::config::secret::Secret;
use sirena::config::sms::GatewaySettings;
use sirena::sim::sms::{Gateway as SimGateway, GenericSmsSim, GenericSmsSimConfig, SmsFault};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

const KEY: &str = "sim-generic-key";
/// Quotes, a newline, `&` and `=`, `+`, `%`, a backslash, Cyrillic and an emoji.
const TRICKY: &str = "Тривога! \"Укриття\" №3 & вихід=2 +1 50%\nвул. Сумська 1\\2 🚨";
const TO: &str = "+380501234567";

struct Env {
    token: CancellationToken,
    tracker: TaskTracker,
}

impl Env {
    fn new() -> Self {
        Self { token: CancellationToken::new(), tracker: TaskTracker::new() }
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        self.token.cancel();
    }
}

async fn sim(env: &Env, cfg: GenericSmsSimConfig) -> GenericSmsSim {
    GenericSmsSim::start(cfg, env.token.clone(), &env.tracker).await.expect("simulator")
}

/// A channel with one generic gateway described by `toml` (name, kind and url added).
fn channel(url: &str, toml: &str, token: &str) -> SmsChannel {
    let text = format!("name = \"gw\"\nkind = \"http\"\nurl = \"{url}\"\ntimeout = \"500ms\"\n{toml}");
    let settings: GatewaySettings = toml::from_str(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    let errors = match &settings {
        GatewaySettings::Http(g) => sirena::config::sms_http::check(g),
        _ => unreachable!("kind = http"),
    };
    assert!(errors.is_empty(), "{errors:?}");
    SmsChannel::new(vec![Gateway::build(&settings, Secret::new(token), None).expect("gateway")])
}

const JSON: &str = r#"token_env = "GW_KEY"
headers = { "X-API-Key" = "{token}" }
body = '{"to": "{to}", "text": "{text}", "id": "{id}", "from": "{sender}"}'
id_path = "/message_id"
sender = "SIRENA"
"#;

const FORM: &str = r#"token_env = "GW_KEY"
headers = { "X-API-Key" = "{token}" }
content_type = "application/x-www-form-urlencoded"
body = "to={to_digits}&text={text}&id={id}&from={sender}"
sender = "SIRENA"
"#;

async fn send(ch: &SmsChannel, to: &str, text: &str, key: &str) -> Result<Sent, SendError> {
    let to = Address::Phone(to.to_owned());
    ch.send(Outgoing { to: &to, text, silent: false, paid: false, keyboard: &Keyboard::None, key }).await
}

#[tokio::test]
async fn a_json_template_carries_an_awkward_text_intact_and_reads_the_id() {
    let env = Env::new();
    let sim = sim(&env, GenericSmsSimConfig::default()).await;
    let ch = channel(&sim.url(), JSON, KEY);
    let sent = send(&ch, TO, TRICKY, "s1-aa").await.expect("sent");
    let got = sim.sent();
    assert_eq!(got.len(), 1);
    assert_eq!((got[0].to.as_str(), got[0].text.as_str(), got[0].sender.as_str()), (TO, TRICKY, "SIRENA"));
    assert_eq!(got[0].gateway, SimGateway::Generic);
    assert_eq!(
        sent.platform_id,
        format!("gw:{}", got[0].id),
        "the id comes from /message_id, after the gateway's name"
    );
    let req = &sim.requests()[0];
    assert_eq!((req.method.as_str(), req.http_status), ("POST", 200));
    let body: serde_json::Value = serde_json::from_str(&req.body).expect("the body on the wire is JSON");
    assert_eq!(body["id"], "s1-aa");
}

#[tokio::test]
async fn a_form_template_carries_an_awkward_text_intact() {
    let env = Env::new();
    let sim = sim(&env, GenericSmsSimConfig::default()).await;
    let ch = channel(&sim.url(), FORM, KEY);
    let sent = send(&ch, TO, TRICKY, "s1-bb").await.expect("sent");
    assert_eq!(sent.platform_id, "gw:", "no id_path: the status alone decides");
    let got = sim.sent();
    assert_eq!(got.len(), 1);
    assert_eq!((got[0].to.as_str(), got[0].text.as_str()), (TO, TRICKY));
    assert!(sim.requests()[0].body.starts_with("to=380501234567&text=%D0%A2"), "{}", sim.requests()[0].body);
}

#[tokio::test]
async fn a_get_template_goes_in_the_query() {
    let env = Env::new();
    let sim = sim(&env, GenericSmsSimConfig::default()).await;
    let toml = r#"method = "GET"
token_env = "GW_KEY"
headers = { "X-API-Key" = "{token}" }
body = "to={to}&text={text}&id={id}&from={sender}"
sender = "SIRENA"
"#;
    let ch = channel(&format!("{}?v=2", sim.url()), toml, KEY);
    send(&ch, TO, TRICKY, "s1-cc").await.expect("sent");
    let got = sim.sent();
    assert_eq!((got[0].to.as_str(), got[0].text.as_str()), (TO, TRICKY));
    let req = &sim.requests()[0];
    assert_eq!(req.method, "GET");
    assert!(req.body.starts_with("v=2&to=%2B380501234567&text="), "{}", req.body);
}

#[tokio::test]
async fn a_lost_answer_is_retried_under_the_same_id_and_sends_once() {
    let env = Env::new();
    let sim = sim(&env, GenericSmsSimConfig::default()).await;
    let ch = channel(&sim.url(), JSON, KEY);
    sim.inject(SmsFault::AcceptThenDrop(Duration::ZERO), 1);
    let first = send(&ch, TO, "Тривога", "s1-dd").await;
    assert!(matches!(first, Err(SendError::Transient(_))), "{first:?}");
    assert_eq!(sim.sent().len(), 1, "the gateway had accepted it");
    let retry = send(&ch, TO, "Тривога", "s1-dd").await.expect("the retry is answered");
    assert_eq!(sim.sent().len(), 1, "nothing sent twice");
    assert_eq!(sim.stats().replayed, 1);
    assert_eq!(retry.platform_id, format!("gw:{}", sim.sent()[0].id), "the first answer comes back");
    // Another message with the same text is a new one.
    send(&ch, TO, "Тривога", "s1-ee").await.expect("sent");
    assert_eq!(sim.sent().len(), 2);
}

#[tokio::test]
async fn a_429_holds_the_channel_for_its_retry_after() {
    let env = Env::new();
    let sim = sim(&env, GenericSmsSimConfig { requests_per_sec: 1, ..GenericSmsSimConfig::default() }).await;
    let ch = channel(&sim.url(), JSON, KEY);
    send(&ch, TO, "one", "s1-01").await.expect("first");
    match send(&ch, "+380671234567", "two", "s1-02").await {
        Err(SendError::RateLimited { scope: LimitScope::Channel, retry_after }) => {
            assert_eq!(retry_after, Duration::from_secs(1), "Retry-After in whole seconds");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(sim.stats().rate_limited, 1);
    sim.advance(Duration::from_secs(1));
    send(&ch, "+380671234567", "two", "s1-02").await.expect("after the window");
}

#[tokio::test]
async fn refusals_mean_what_the_status_lists_say() {
    let env = Env::new();
    let sim = sim(&env, GenericSmsSimConfig::default()).await;
    let ch = channel(&sim.url(), JSON, KEY);
    // The gateway's 400 for a number it cannot send to: the message is refused.
    let bad = send(&ch, "+0501234567", "x", "s1-10").await;
    assert!(matches!(&bad, Err(SendError::Rejected(why)) if why.contains("invalid_number")), "{bad:?}");
    // A wrong key is the gateway's trouble (default retry list), not the message's.
    let wrong = channel(&sim.url(), JSON, "not-the-key");
    let denied = send(&wrong, TO, "x", "s1-11").await;
    assert!(matches!(&denied, Err(SendError::Transient(why)) if why.contains("401")), "{denied:?}");
    assert_eq!(sim.stats().auth_failures, 1);
    // A 2xx that is not the gateway's answer (no id at id_path) is not taken as sent.
    sim.inject(SmsFault::Garbage, 1);
    let unknown = send(&ch, TO, "x", "s1-12").await;
    assert!(matches!(&unknown, Err(SendError::Transient(why)) if why.contains("/message_id")), "{unknown:?}");
    // A 5xx is retried; operators can move a code between lists.
    sim.inject(SmsFault::Status(503), 1);
    assert!(matches!(send(&ch, TO, "x", "s1-13").await, Err(SendError::Transient(_))));
    let strict = channel(&sim.url(), &format!("{JSON}permanent = [\"4xx\", 503]\nretry = [429, \"5xx\"]\n"), KEY);
    sim.inject(SmsFault::Status(503), 1);
    assert!(matches!(send(&strict, TO, "x", "s1-14").await, Err(SendError::Rejected(_))));
    assert!(sim.sent().is_empty(), "{:?}", sim.sent());
}

/// The simulator refuses what a real gateway would, so a template that only a lenient
/// stub would accept fails the tests above.
#[tokio::test]
async fn the_simulator_checks_what_a_gateway_checks() {
    let env = Env::new();
    let sim = sim(&env, GenericSmsSimConfig { requests_per_sec: 100, ..GenericSmsSimConfig::default() }).await;
    let http = reqwest::Client::new();
    let post = |content_type: &'static str, body: Vec<u8>| {
        http.post(sim.url()).header("X-API-Key", KEY).header("Content-Type", content_type).body(body).send()
    };
    let status = |r: reqwest::Result<reqwest::Response>| r.expect("answer").status().as_u16();
    let json = "application/json";
    let ok = br#"{"to":"+380501234567","text":"x","id":"k1","from":"SIRENA"}"#.to_vec();
    // No key, a wrong key.
    let r = http.post(sim.url()).header("Content-Type", json).body(ok.clone()).send().await;
    assert_eq!(status(r), 401);
    let r = http.post(sim.url()).header("X-API-Key", "nope").header("Content-Type", json).body(ok.clone()).send().await;
    assert_eq!(status(r), 401);
    // A JSON body announced as text, a form as JSON, JSON that does not parse (an
    // unescaped quote), a number where a string belongs, bytes that are not UTF-8.
    assert_eq!(status(post("text/plain", ok.clone()).await), 415);
    assert_eq!(status(post(json, b"to=%2B380501234567&text=x".to_vec()).await), 400);
    assert_eq!(status(post(json, br#"{"to":"+380501234567","text":"say "hi""}"#.to_vec()).await), 400);
    assert_eq!(status(post(json, br#"{"to":380501234567,"text":"x"}"#.to_vec()).await), 400);
    let form = "application/x-www-form-urlencoded";
    assert_eq!(status(post(form, b"to=%2B380501234567&text=%D0".to_vec()).await), 400, "not UTF-8 once decoded");
    // An unescaped `&` splits the text, as on any form parser.
    assert_eq!(status(post(form, b"to=380501234567&text=A&B&from=SIRENA".to_vec()).await), 200);
    assert_eq!(sim.sent()[0].text, "A", "the rest went to a field named B");
    // Missing or bad fields.
    assert_eq!(status(post(json, br#"{"text":"x","from":"SIRENA"}"#.to_vec()).await), 400);
    assert_eq!(status(post(json, br#"{"to":"12345","text":"x","from":"SIRENA"}"#.to_vec()).await), 400);
    assert_eq!(status(post(json, br#"{"to":"+380501234567","text":"","from":"SIRENA"}"#.to_vec()).await), 400);
    assert_eq!(status(post(json, br#"{"to":"+380501234567","text":"x","from":"OTHER"}"#.to_vec()).await), 400);
    let long = format!(r#"{{"to":"+380501234567","text":"{}","from":"SIRENA"}}"#, "я".repeat(67 * 6 + 1));
    assert_eq!(status(post(json, long.into_bytes()).await), 400, "over max_parts");
    // The idempotency key: the same message is a replay, another message a conflict.
    assert_eq!(status(post(json, ok.clone()).await), 200);
    let replay = post(json, ok.clone()).await.expect("answer");
    assert_eq!(replay.status().as_u16(), 200);
    let body: serde_json::Value = replay.json().await.expect("json");
    assert_eq!(body["duplicate"], true);
    let other = br#"{"to":"+380501234567","text":"y","id":"k1","from":"SIRENA"}"#.to_vec();
    assert_eq!(status(post(json, other).await), 409);
    assert_eq!(sim.sent().len(), 2, "{:?}", sim.sent());
    let stats = sim.stats();
    assert_eq!((stats.auth_failures, stats.replayed, stats.accepted), (2, 1, 2), "{stats:?}");
}
