//! Drives the SMS gateway simulators over HTTP with reqwest, the way the SMS
//! adapters will: TurboSMS's JSON API and Twilio's form API, their refusals,
//! limits and faults, and their delivery callbacks to a receiver on loopback.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};
use sirena::channels::sms::twilio::signature;
use sirena::sim::sms::{
    DlrSecret, DlrStatus, DlrTarget, FinalStatus, Gateway, SmsFault, SmsMode, TurboSmsSim, TurboSmsSimConfig,
    TwilioSim, TwilioSimConfig,
};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

type TestResult = Result<(), Box<dyn std::error::Error + Send + Sync>>;
type BoxError = Box<dyn std::error::Error + Send + Sync>;

const TOKEN: &str = "sim-turbosms-token";
const A: &str = "380501234567";
const B: &str = "380671234567";

/// Shutdown and tracker for one test, cancelled on drop.
struct Env {
    token: CancellationToken,
    tracker: TaskTracker,
    http: reqwest::Client,
}

impl Env {
    fn new() -> Self {
        Self { token: CancellationToken::new(), tracker: TaskTracker::new(), http: reqwest::Client::new() }
    }

    /// Cancels and waits for every task, proving shutdown is prompt.
    async fn stop(self) {
        self.token.cancel();
        self.tracker.close();
        tokio::time::timeout(Duration::from_secs(3), self.tracker.wait()).await.expect("sims stop promptly");
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        self.token.cancel();
    }
}

/// What a receiver on loopback got: path, headers, body.
#[derive(Clone, Debug)]
struct Hit {
    path: String,
    headers: reqwest::header::HeaderMap,
    body: Vec<u8>,
}

type Hits = Arc<Mutex<Vec<Hit>>>;

/// A tiny callback receiver on loopback answering `status` to anything.
async fn receiver(env: &Env, status: u16) -> Result<(String, Hits), BoxError> {
    let hits: Hits = Arc::default();
    let sink = hits.clone();
    let status = axum::http::StatusCode::from_u16(status)?;
    let app = axum::Router::new().fallback(
        move |uri: axum::http::Uri, headers: axum::http::HeaderMap, body: axum::body::Bytes| {
            let sink = sink.clone();
            async move {
                sink.lock().expect("lock").push(Hit { path: uri.path().to_owned(), headers, body: body.to_vec() });
                status
            }
        },
    );
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
    let url = format!("http://{}/dlr", listener.local_addr()?);
    let stop = env.token.clone();
    env.tracker.spawn(async move {
        let _ = axum::serve(listener, app).with_graceful_shutdown(stop.cancelled_owned()).await;
    });
    Ok((url, hits))
}

async fn wait_for_hits(hits: &Hits, n: usize) -> Vec<Hit> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let got = hits.lock().expect("lock").clone();
        if got.len() >= n {
            return got;
        }
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting for {n} callbacks, got {}", got.len());
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

// ---------------------------------------------------------------- TurboSMS

/// Generous limits, so tests that are not about them never meet them.
fn ts_cfg() -> TurboSmsSimConfig {
    TurboSmsSimConfig { requests_per_sec: 1000, messages_per_sec: 10_000, ..TurboSmsSimConfig::default() }
}

async fn turbosms(env: &Env, cfg: TurboSmsSimConfig) -> Result<TurboSmsSim, BoxError> {
    Ok(TurboSmsSim::start(cfg, env.token.clone(), &env.tracker).await?)
}

fn send_url(sim: &TurboSmsSim) -> String {
    format!("{}/message/send.json", sim.base_url())
}

/// POSTs `body` with the right token through `http`.
async fn ts_post(http: &reqwest::Client, sim: &TurboSmsSim, body: &Value) -> reqwest::Result<reqwest::Response> {
    http.post(send_url(sim)).bearer_auth(TOKEN).json(body).send().await
}

/// POSTs `body` with the right token and returns (HTTP status, JSON).
async fn ts_send(env: &Env, sim: &TurboSmsSim, body: Value) -> Result<(StatusCode, Value), BoxError> {
    status_and_json(ts_post(&env.http, sim, &body).await?).await
}

async fn status_and_json(resp: reqwest::Response) -> Result<(StatusCode, Value), BoxError> {
    let status = resp.status();
    Ok((status, resp.json().await?))
}

/// A client that gives up after `ms` milliseconds.
fn impatient(ms: u64) -> Result<reqwest::Client, BoxError> {
    Ok(reqwest::Client::builder().timeout(Duration::from_millis(ms)).build()?)
}

/// Asserts that a request got no answer: timed out if `timeout`, else the
/// connection was closed.
fn no_answer(sent: reqwest::Result<reqwest::Response>, timeout: bool) -> TestResult {
    let err = sent.err().ok_or("answered")?;
    assert_eq!(err.is_timeout(), timeout, "{err}");
    Ok(())
}

fn sms(recipients: &[&str], text: &str) -> Value {
    json!({"recipients": recipients, "sms": {"sender": "SIRENA", "text": text}})
}

#[tokio::test]
async fn turbosms_refuses_bad_tokens_with_http_200_and_its_codes() -> TestResult {
    let env = Env::new();
    let sim = turbosms(&env, ts_cfg()).await?;
    let body = sms(&[A], "Тривога");

    let resp = env.http.post(send_url(&sim)).json(&body).send().await?;
    assert_eq!(resp.status(), StatusCode::OK, "TurboSMS answers 200 even on errors");
    let v: Value = resp.json().await?;
    assert_eq!(v, json!({"response_code": 103, "response_status": "REQUIRED_TOKEN", "response_result": null}));

    let v: Value = env.http.post(send_url(&sim)).bearer_auth("wrong").json(&body).send().await?.json().await?;
    assert_eq!((v["response_code"].as_i64(), v["response_status"].as_str()), (Some(105), Some("REQUIRED_AUTH")));

    assert!(sim.sent().is_empty());
    assert_eq!(sim.stats().auth_failures, 2);
    let codes: Vec<Option<i64>> = sim.requests().iter().map(|r| r.code).collect();
    assert_eq!(codes, vec![Some(103), Some(105)]);

    // The token as a query parameter is accepted too.
    let url = format!("{}?token={TOKEN}", send_url(&sim));
    let v: Value = env.http.post(url).json(&body).send().await?.json().await?;
    assert_eq!(v["response_code"], 800);
    env.stop().await;
    Ok(())
}

#[tokio::test]
async fn turbosms_accepts_and_answers_per_recipient() -> TestResult {
    let env = Env::new();
    let sim = turbosms(&env, ts_cfg()).await?;
    let (status, v) = ts_send(&env, &sim, sms(&[A, "+380671234567"], "Повітряна тривога")).await?;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(v["response_code"], 800);
    assert_eq!(v["response_status"], "SUCCESS_MESSAGE_ACCEPTED");
    let results = v["response_result"].as_array().ok_or("response_result is not a list")?;
    assert_eq!(results.len(), 2);
    for (entry, phone) in results.iter().zip([A, B]) {
        assert_eq!(entry["phone"], phone, "kept without the +");
        assert_eq!(entry["response_code"], 0);
        assert_eq!(entry["response_status"], "OK");
        let id = entry["message_id"].as_str().ok_or("no message_id")?;
        assert_eq!(id.len(), 36, "uuid-like: {id}");
    }

    let sent = sim.sent();
    assert_eq!(sent.len(), 2);
    assert_eq!(sent[0].gateway, Gateway::TurboSms);
    assert_eq!(sent[0].to, A);
    assert_eq!(sent[0].text, "Повітряна тривога");
    assert_eq!(sent[0].sender, "SIRENA");
    assert_eq!(sent[0].mode, SmsMode::Sms);
    assert_eq!(sent[0].parts, 1);
    assert_eq!(sent[0].id, results[0]["message_id"].as_str().unwrap_or_default());
    assert_eq!(sim.sent_to("+380671234567").len(), 1);
    assert_eq!(sim.stats().accepted, 2);
    assert_eq!(sim.requests()[0].code, Some(800));
    env.stop().await;
    Ok(())
}

#[tokio::test]
async fn turbosms_refuses_recipients_one_by_one() -> TestResult {
    let env = Env::new();
    let sim = turbosms(&env, ts_cfg()).await?;
    sim.add_to_stoplist(B);
    let recipients = [A, "12345", "48501234567", B, A, "38050123456x"];
    let (_, v) = ts_send(&env, &sim, sms(&recipients, "Test")).await?;
    assert_eq!(v["response_code"], 802);
    assert_eq!(v["response_status"], "SUCCESS_MESSAGE_PARTIAL_ACCEPTED");
    let got: Vec<(i64, &str, bool)> = v["response_result"]
        .as_array()
        .ok_or("no list")?
        .iter()
        .map(|e| {
            (
                e["response_code"].as_i64().unwrap_or(-1),
                e["response_status"].as_str().unwrap_or(""),
                e["message_id"].is_string(),
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            (0, "OK", true),
            (305, "INVALID_PHONE", false),
            (406, "NOT_ALLOWED_RECIPIENT_COUNTRY", false),
            (404, "NOT_ALLOWED_NUMBER_STOPLIST", false),
            (407, "NOT_ALLOWED_RECIPIENT_DUPLICATE", false),
            (305, "INVALID_PHONE", false),
        ]
    );
    assert_eq!(sim.sent().len(), 1, "only the good number is sent to");
    assert_eq!(sim.stats().rejected, 5);

    // No recipient accepted: the first one's code comes to the top.
    let (_, v) = ts_send(&env, &sim, sms(&[B, "12345"], "Test 2")).await?;
    assert_eq!(v["response_code"], 404);
    assert_eq!(v["response_result"][1]["response_code"], 305);
    assert_eq!(sim.sent().len(), 1);
    env.stop().await;
    Ok(())
}

#[tokio::test]
async fn turbosms_refuses_whole_requests_with_their_codes() -> TestResult {
    let env = Env::new();
    let sim = turbosms(&env, TurboSmsSimConfig { max_recipients: 2, ..ts_cfg() }).await?;
    let code = |v: &Value| v["response_code"].as_i64();

    let raw = |body: &'static str| env.http.post(send_url(&sim)).bearer_auth(TOKEN).body(body).send();
    assert_eq!(code(&raw("").await?.json().await?), Some(104));
    assert_eq!(code(&raw("{not json").await?.json().await?), Some(502));
    assert_eq!(code(&raw("[1,2]").await?.json().await?), Some(300));

    let cases = [
        (json!({"sms": {"sender": "SIRENA", "text": "x"}}), 202),
        (json!({"recipients": [], "sms": {"sender": "SIRENA", "text": "x"}}), 202),
        (json!({"recipients": [A, B, "380931234567"], "sms": {"sender": "SIRENA", "text": "x"}}), 405),
        (json!({"recipients": [A], "sms": {"text": "x"}}), 200),
        (json!({"recipients": [A], "sms": {"sender": 7, "text": "x"}}), 302),
        (json!({"recipients": [A], "sms": {"sender": "OTHER", "text": "x"}}), 400),
        (json!({"recipients": [A], "sms": {"sender": "SIRENA"}}), 201),
        (json!({"recipients": [A], "sms": {"sender": "SIRENA", "text": 5}}), 304),
        (json!({"recipients": [A], "sms": {"sender": "SIRENA", "text": "я".repeat(671)}}), 413),
        (json!({"recipients": [A]}), 300),
    ];
    for (body, want) in cases {
        let (status, v) = ts_send(&env, &sim, body.clone()).await?;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(code(&v), Some(want), "{body}");
    }
    // Ten parts is the most: 670 UCS-2 units.
    assert_eq!(code(&ts_send(&env, &sim, sms(&[A], &"я".repeat(670))).await?.1), Some(800));

    // An unpaid month: the sender exists but is inactive.
    sim.set_sender_active("SIRENA", false);
    let (_, v) = ts_send(&env, &sim, sms(&[B], "x")).await?;
    assert_eq!((code(&v), v["response_status"].as_str()), (Some(401), Some("NOT_ALLOWED_MESSAGE_SENDER_NOT_ACTIVE")));
    sim.set_sender_active("SIRENA", true);

    // The balance is in parts: three are left, two recipients of a two-part
    // text cost four.
    sim.set_balance(Some(3));
    let two_parts = "я".repeat(71);
    let (_, v) = ts_send(&env, &sim, sms(&[A, B], &two_parts)).await?;
    assert_eq!((code(&v), v["response_status"].as_str()), (Some(203), Some("REQUIRED_BALANCE")));
    assert_eq!(code(&ts_send(&env, &sim, sms(&[B], &two_parts)).await?.1), Some(800));
    assert_eq!(sim.balance(), Some(1));

    assert_eq!(sim.sent().len(), 2, "only the two good requests sent anything");
    env.stop().await;
    Ok(())
}

#[tokio::test]
async fn turbosms_refuses_the_same_text_to_the_same_number_within_90_s() -> TestResult {
    let env = Env::new();
    let sim = turbosms(&env, ts_cfg()).await?;
    assert_eq!(ts_send(&env, &sim, sms(&[A], "Тривога")).await?.1["response_code"], 800);

    let (_, v) = ts_send(&env, &sim, sms(&[A, B], "Тривога")).await?;
    assert_eq!(v["response_code"], 802);
    assert_eq!(v["response_result"][0]["response_code"], 427);
    assert_eq!(v["response_result"][0]["response_status"], "NOT_ALLOWED_MESSAGE_DUPLICATE");
    assert!(v["response_result"][0]["message_id"].is_null());
    assert_eq!(v["response_result"][1]["response_code"], 0, "another number is fine");
    // Another text to the same number is fine too.
    assert_eq!(ts_send(&env, &sim, sms(&[A], "Відбій")).await?.1["response_code"], 800);

    // On the simulator's clock: still inside at 89 s, free again past 90 s.
    sim.advance(Duration::from_secs(89));
    assert_eq!(ts_send(&env, &sim, sms(&[A], "Тривога")).await?.1["response_code"], 427);
    sim.advance(Duration::from_secs(2));
    assert_eq!(ts_send(&env, &sim, sms(&[A], "Тривога")).await?.1["response_code"], 800);
    assert_eq!(sim.sent_to(A).len(), 3);

    // The window is configurable.
    let short = turbosms(&env, TurboSmsSimConfig { duplicate_window: Duration::from_secs(5), ..ts_cfg() }).await?;
    assert_eq!(ts_send(&env, &short, sms(&[A], "x")).await?.1["response_code"], 800);
    short.advance(Duration::from_secs(5));
    assert_eq!(ts_send(&env, &short, sms(&[A], "x")).await?.1["response_code"], 800);
    env.stop().await;
    Ok(())
}

#[tokio::test]
async fn turbosms_sequence_id_makes_a_retry_after_a_lost_answer_send_nothing() -> TestResult {
    let env = Env::new();
    let sim = turbosms(&env, ts_cfg()).await?;
    let mut body = sms(&[A, B], "Евакуація");
    body["sequence_id"] = json!("delivery-42");

    // Accepted, then the answer never comes: the client times out.
    sim.inject(SmsFault::AcceptThenDrop(Duration::from_secs(30)), 1);
    no_answer(ts_post(&impatient(300)?, &sim, &body).await, true)?;
    let first = sim.sent();
    assert_eq!(first.len(), 2, "the gateway took the messages");

    // The retry carries the same sequence_id: the earlier result, nothing new.
    let (status, v) = ts_send(&env, &sim, body.clone()).await?;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(v["response_code"], 507);
    assert_eq!(v["response_status"], "FAILED_DUPLICATE_REQUEST");
    let ids: Vec<&str> =
        v["response_result"].as_array().ok_or("no list")?.iter().filter_map(|e| e["message_id"].as_str()).collect();
    let first_ids: Vec<&str> = first.iter().map(|m| m.id.as_str()).collect();
    assert_eq!(ids, first_ids, "the earlier message ids come back");
    assert_eq!(sim.sent().len(), 2, "nothing sent again");
    assert_eq!(sim.stats().replayed, 1);

    // Dropping at once is a transport error rather than a timeout; a retry
    // without sequence_id still meets the 90 s rule.
    sim.inject(SmsFault::AcceptThenDrop(Duration::ZERO), 1);
    let once = sms(&[A], "Укриття");
    no_answer(ts_post(&env.http, &sim, &once).await, false)?;
    assert_eq!(sim.sent().len(), 3);
    assert_eq!(ts_send(&env, &sim, once).await?.1["response_code"], 427);
    assert_eq!(sim.sent().len(), 3);
    let stats = sim.stats();
    assert_eq!((stats.faulted, stats.dropped), (2, 2));
    assert_eq!(sim.requests()[0].http_status, 0, "a hang-up is recorded as status 0");
    env.stop().await;
    Ok(())
}

#[tokio::test]
async fn turbosms_throttles_requests_and_messages_with_429() -> TestResult {
    let env = Env::new();
    let sim = turbosms(&env, TurboSmsSimConfig { requests_per_sec: 2, messages_per_sec: 3, ..ts_cfg() }).await?;
    assert_eq!(ts_send(&env, &sim, sms(&[A], "1")).await?.1["response_code"], 800);
    assert_eq!(ts_send(&env, &sim, sms(&[A], "2")).await?.1["response_code"], 800);
    let resp = ts_post(&env.http, &sim, &sms(&[A], "3")).await?;
    assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(resp.headers().get("retry-after").and_then(|v| v.to_str().ok()), Some("1"));
    assert!(resp.text().await?.contains("429 Too Many Requests"), "a proxy page, not JSON");
    assert_eq!(sim.sent().len(), 2);

    // A second later: two messages fit, two more would make four in the
    // window, over three, and the whole batch is refused.
    sim.advance(Duration::from_secs(1));
    assert_eq!(ts_send(&env, &sim, sms(&[A, B], "4")).await?.1["response_code"], 800);
    let resp = ts_post(&env.http, &sim, &sms(&[A, "380931234567"], "5")).await?;
    assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(sim.sent().len(), 4, "a throttled batch sends nothing");
    assert_eq!(sim.stats().rate_limited, 2);

    // An empty window takes a batch larger than the limit.
    sim.advance(Duration::from_secs(1));
    let (_, v) = ts_send(&env, &sim, sms(&[A, B, "380931234567", "380661234567"], "6")).await?;
    assert_eq!(v["response_code"], 800);
    env.stop().await;
    Ok(())
}

#[tokio::test]
async fn turbosms_faults_stand_for_the_path_failing() -> TestResult {
    let env = Env::new();
    let sim = turbosms(&env, TurboSmsSimConfig { requests_per_sec: 1, ..ts_cfg() }).await?;
    let body = sms(&[A], "x");
    let post = || ts_post(&env.http, &sim, &body);

    sim.inject(SmsFault::Status(502), 1);
    sim.inject(SmsFault::Garbage, 1);
    sim.inject(SmsFault::Reset, 1);
    sim.inject(SmsFault::ErrorCode(999), 1);
    let resp = post().await?;
    assert_eq!(resp.status(), StatusCode::BAD_GATEWAY);
    let resp = post().await?;
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(resp.json::<Value>().await.is_err(), "garbage does not decode");
    no_answer(post().await, false)?;
    let v: Value = post().await?.json().await?;
    assert_eq!((v["response_code"].as_i64(), v["response_status"].as_str()), (Some(999), Some("FATAL_ERROR")));
    assert!(sim.sent().is_empty());
    assert_eq!(sim.stats().faulted, 4);

    // Faulted requests used none of the one request a second.
    assert_eq!(post().await?.json::<Value>().await?["response_code"], 800);

    // A delay longer than the client's timeout: the client gives up, the
    // gateway still sends.
    sim.advance(Duration::from_secs(1));
    sim.inject(SmsFault::Delay(Duration::from_millis(400)), 1);
    no_answer(ts_post(&impatient(100)?, &sim, &sms(&[B], "y")).await, true)?;
    assert_eq!(sim.wait_for_sent(2, Duration::from_secs(5)).await.len(), 2);
    assert_eq!(sim.sent_to(B).len(), 1);

    // With a patient client the delayed answer arrives.
    sim.advance(Duration::from_secs(1));
    sim.inject(SmsFault::Delay(Duration::from_millis(100)), 1);
    let started = std::time::Instant::now();
    let v: Value = ts_post(&env.http, &sim, &sms(&[B], "z")).await?.json().await?;
    assert_eq!(v["response_code"], 800);
    assert!(started.elapsed() >= Duration::from_millis(100));
    env.stop().await;
    Ok(())
}

#[tokio::test]
async fn turbosms_records_viber_with_sms_fallback() -> TestResult {
    let env = Env::new();
    let sim = turbosms(&env, ts_cfg()).await?;
    let hybrid = json!({
        "recipients": [A],
        "viber": {"sender": "SIRENA", "text": "Тривога (Viber)"},
        "sms": {"sender": "SIRENA", "text": "Тривога"},
    });
    assert_eq!(ts_send(&env, &sim, hybrid).await?.1["response_code"], 800);
    let viber = json!({"recipients": [B], "viber": {"sender": "SIRENA", "text": "Лише Viber"}});
    assert_eq!(ts_send(&env, &sim, viber).await?.1["response_code"], 800);
    let sent = sim.sent();
    assert_eq!((sent[0].mode, sent[0].text.as_str()), (SmsMode::ViberWithSmsFallback, "Тривога"));
    assert_eq!((sent[1].mode, sent[1].text.as_str()), (SmsMode::Viber, "Лише Viber"));

    let unregistered = json!({"recipients": [A], "viber": {"sender": "NOBODY", "text": "x"}, "sms": {"sender": "SIRENA", "text": "x"}});
    assert_eq!(ts_send(&env, &sim, unregistered).await?.1["response_code"], 400);
    env.stop().await;
    Ok(())
}

#[tokio::test]
async fn turbosms_posts_delivery_reports_to_a_receiver() -> TestResult {
    let env = Env::new();
    let (url, hits) = receiver(&env, 200).await?;
    let dlr = DlrTarget {
        url: url.clone(),
        secret: DlrSecret::Header { name: "X-Dlr-Secret".into(), value: "s3cret".into() },
    };
    let sim = turbosms(&env, TurboSmsSimConfig { dlr: Some(dlr), ..ts_cfg() }).await?;
    sim.set_outcome(B, DlrStatus::Undelivered);
    let (_, v) = ts_send(&env, &sim, sms(&[A, B], "Тривога")).await?;
    let ids: Vec<String> = v["response_result"]
        .as_array()
        .ok_or("no list")?
        .iter()
        .filter_map(|e| e["message_id"].as_str().map(str::to_owned))
        .collect();

    let got = wait_for_hits(&hits, 2).await;
    let bodies: Vec<Value> = got.iter().map(|h| serde_json::from_slice(&h.body)).collect::<Result<_, _>>()?;
    assert_eq!(bodies[0], json!({"message_id": ids[0], "phone": A, "status": "Delivered"}));
    assert_eq!(bodies[1], json!({"message_id": ids[1], "phone": B, "status": "Undelivered"}));
    for hit in &got {
        assert_eq!(hit.path, "/dlr");
        assert_eq!(hit.headers.get("x-dlr-secret").and_then(|v| v.to_str().ok()), Some("s3cret"));
        assert_eq!(hit.headers.get("content-type").and_then(|v| v.to_str().ok()), Some("application/json"));
    }
    let records = sim.wait_for_callbacks(2, Duration::from_secs(5)).await;
    assert_eq!(records.iter().map(|r| r.http_status).collect::<Vec<_>>(), vec![Some(200), Some(200)]);
    assert_eq!(records[1].status, "Undelivered");
    env.stop().await;
    Ok(())
}

#[tokio::test]
async fn turbosms_delivery_reports_can_carry_the_secret_in_the_path_and_stay_on_loopback() -> TestResult {
    let env = Env::new();
    let (url, hits) = receiver(&env, 204).await?;
    let sim = turbosms(
        &env,
        TurboSmsSimConfig { dlr: Some(DlrTarget { url, secret: DlrSecret::Path("k3y".into()) }), ..ts_cfg() },
    )
    .await?;
    ts_send(&env, &sim, sms(&[A], "x")).await?;
    let got = wait_for_hits(&hits, 1).await;
    assert_eq!(got[0].path, "/dlr/k3y");
    assert_eq!(sim.wait_for_callbacks(1, Duration::from_secs(5)).await[0].http_status, Some(204));

    // Off loopback nothing is posted; the attempt is recorded without a status.
    let far = DlrTarget { url: "http://192.0.2.1/dlr".into(), secret: DlrSecret::None };
    let sim = turbosms(&env, TurboSmsSimConfig { dlr: Some(far), ..ts_cfg() }).await?;
    ts_send(&env, &sim, sms(&[A], "x")).await?;
    let records = sim.wait_for_callbacks(1, Duration::from_secs(5)).await;
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].http_status, None);
    env.stop().await;
    Ok(())
}

#[tokio::test]
async fn turbosms_answers_ping() -> TestResult {
    let env = Env::new();
    let sim = turbosms(&env, ts_cfg()).await?;
    let v: Value = env.http.get(format!("{}/message/ping.json", sim.base_url())).send().await?.json().await?;
    assert_eq!(v, json!({"response_code": 1, "response_status": "PONG", "response_result": null}));
    env.stop().await;
    Ok(())
}

// ------------------------------------------------------------------ Twilio

const SID: &str = "AC00000000000000000000000000000001";
const AUTH: &str = "sim-twilio-auth-token";
const FROM: &str = "+15005550006";
const SERVICE: &str = "MG00000000000000000000000000000001";
const TO: &str = "+380501234567";

fn tw_cfg() -> TwilioSimConfig {
    TwilioSimConfig { messages_per_sec: 1000, callback_delay: Duration::from_millis(20), ..TwilioSimConfig::default() }
}

async fn twilio(env: &Env, cfg: TwilioSimConfig) -> Result<TwilioSim, BoxError> {
    Ok(TwilioSim::start(cfg, env.token.clone(), &env.tracker).await?)
}

fn messages_url(sim: &TwilioSim, account: &str) -> String {
    format!("{}/2010-04-01/Accounts/{account}/Messages.json", sim.base_url())
}

/// Creates a message with the right credentials through `http`.
async fn tw_post(http: &reqwest::Client, sim: &TwilioSim, form: &[(&str, &str)]) -> reqwest::Result<reqwest::Response> {
    http.post(messages_url(sim, SID)).basic_auth(SID, Some(AUTH)).form(form).send().await
}

/// Creates a message with the right credentials; (status, JSON).
async fn tw_send(env: &Env, sim: &TwilioSim, form: &[(&str, &str)]) -> Result<(StatusCode, Value), BoxError> {
    status_and_json(tw_post(&env.http, sim, form).await?).await
}

#[tokio::test]
async fn twilio_refuses_bad_credentials_with_20003() -> TestResult {
    let env = Env::new();
    let sim = twilio(&env, tw_cfg()).await?;
    let form = [("To", TO), ("From", FROM), ("Body", "x")];
    let expected = json!({
        "code": 20003,
        "message": "Authenticate",
        "more_info": "https://www.twilio.com/docs/errors/20003",
        "status": 401,
    });

    let resp = env.http.post(messages_url(&sim, SID)).form(&form).send().await?;
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert!(resp.headers().get("www-authenticate").is_some());
    assert_eq!(resp.json::<Value>().await?, expected);
    let resp = env.http.post(messages_url(&sim, SID)).basic_auth(SID, Some("wrong")).form(&form).send().await?;
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    // Right credentials, another account in the path.
    let other = "AC00000000000000000000000000000002";
    let resp = env.http.post(messages_url(&sim, other)).basic_auth(SID, Some(AUTH)).form(&form).send().await?;
    assert_eq!(resp.json::<Value>().await?, expected);
    assert!(sim.sent().is_empty());
    assert_eq!(sim.stats().auth_failures, 3);
    env.stop().await;
    Ok(())
}

#[tokio::test]
async fn twilio_creates_a_message_resource() -> TestResult {
    let env = Env::new();
    let sim = twilio(&env, tw_cfg()).await?;
    let (status, v) = tw_send(&env, &sim, &[("To", TO), ("From", FROM), ("Body", "Air raid alert")]).await?;
    assert_eq!(status, StatusCode::CREATED);
    let sid = v["sid"].as_str().ok_or("no sid")?.to_owned();
    assert!(sid.starts_with("SM") && sid.len() == 34, "{sid}");
    assert_eq!(v["status"], "queued");
    assert_eq!(v["to"], TO);
    assert_eq!(v["from"], FROM);
    assert_eq!(v["body"], "Air raid alert");
    assert_eq!(v["num_segments"], "1", "a string, as Twilio sends it");
    assert_eq!(v["account_sid"], SID);
    assert_eq!(v["direction"], "outbound-api");
    assert_eq!(v["api_version"], "2010-04-01");
    assert!(v["error_code"].is_null());
    assert_eq!(v["uri"], format!("/2010-04-01/Accounts/{SID}/Messages/{sid}.json"));

    // A Cyrillic text of 71 letters takes two UCS-2 parts.
    let (_, v) = tw_send(&env, &sim, &[("To", TO), ("From", FROM), ("Body", &"я".repeat(71))]).await?;
    assert_eq!(v["num_segments"], "2");
    // Through a Messaging Service: accepted, no sender chosen yet, 0 segments.
    let (status, v) = tw_send(&env, &sim, &[("To", TO), ("MessagingServiceSid", SERVICE), ("Body", "x")]).await?;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(
        (v["status"].as_str(), v["from"].is_null(), v["num_segments"].as_str()),
        (Some("accepted"), true, Some("0"))
    );
    assert_eq!(v["messaging_service_sid"], SERVICE);

    let sent = sim.sent();
    assert_eq!(sent.len(), 3);
    assert_eq!((sent[0].gateway, sent[0].id.as_str(), sent[0].sender.as_str()), (Gateway::Twilio, sid.as_str(), FROM));
    assert_eq!(sent[2].sender, SERVICE);
    assert_eq!(sim.sent_to(TO).len(), 3);

    // The resource can be fetched back, and moves on to delivered.
    let fetch = format!("{}/2010-04-01/Accounts/{SID}/Messages/{sid}.json", sim.base_url());
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let v: Value = env.http.get(&fetch).basic_auth(SID, Some(AUTH)).send().await?.json().await?;
        assert_eq!(v["sid"], sid.as_str());
        if v["status"] == "delivered" {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "never delivered: {v}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let missing = format!("{}/2010-04-01/Accounts/{SID}/Messages/SM{}.json", sim.base_url(), "0".repeat(32));
    let resp = env.http.get(missing).basic_auth(SID, Some(AUTH)).send().await?;
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    assert_eq!(resp.json::<Value>().await?["code"], 20404);
    env.stop().await;
    Ok(())
}

#[tokio::test]
async fn twilio_refuses_bad_messages_with_their_codes() -> TestResult {
    let env = Env::new();
    let sim = twilio(&env, tw_cfg()).await?;
    sim.unsubscribe("+380671234567");
    let long = "a".repeat(1601);
    let cases: Vec<(Vec<(&str, &str)>, i64)> = vec![
        (vec![("From", FROM), ("Body", "x")], 21604),
        (vec![("To", TO), ("Body", "x")], 21603),
        (vec![("To", TO), ("From", FROM)], 21602),
        (vec![("To", TO), ("From", FROM), ("Body", "")], 21602),
        (vec![("To", TO), ("MessagingServiceSid", "MG123"), ("Body", "x")], 21705),
        (vec![("To", TO), ("MessagingServiceSid", "MG00000000000000000000000000000009"), ("Body", "x")], 21701),
        (vec![("To", TO), ("From", "+15005550001"), ("Body", "x")], 21606),
        (vec![("To", "0501234567"), ("From", FROM), ("Body", "x")], 21211),
        (vec![("To", "+38050"), ("From", FROM), ("Body", "x")], 21211),
        (vec![("To", TO), ("From", FROM), ("Body", &long)], 21617),
        (vec![("To", "+380671234567"), ("From", FROM), ("Body", "x")], 21610),
    ];
    for (form, want) in &cases {
        let (status, v) = tw_send(&env, &sim, form).await?;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{form:?}");
        assert_eq!(v["code"], *want, "{form:?}: {v}");
        assert_eq!(v["status"], 400);
        assert_eq!(v["more_info"], format!("https://www.twilio.com/docs/errors/{want}"));
    }
    let (_, v) = tw_send(&env, &sim, &[("To", "0501234567"), ("From", FROM), ("Body", "x")]).await?;
    assert_eq!(v["message"], "The 'To' number 0501234567 is not a valid phone number.");
    assert!(sim.sent().is_empty());
    assert_eq!(sim.stats().rejected, cases.len() as u64 + 1);

    // An alphanumeric sender the account owns is fine; START lifts an opt-out.
    sim.resubscribe("+380671234567");
    assert_eq!(
        tw_send(&env, &sim, &[("To", "+380671234567"), ("From", "SIRENA"), ("Body", "x")]).await?.0,
        StatusCode::CREATED
    );
    env.stop().await;
    Ok(())
}

#[tokio::test]
async fn twilio_throttles_the_account_with_20429() -> TestResult {
    let env = Env::new();
    let sim = twilio(&env, TwilioSimConfig { messages_per_sec: 2, ..tw_cfg() }).await?;
    let form = [("To", TO), ("From", FROM), ("Body", "x")];
    assert_eq!(tw_send(&env, &sim, &form).await?.0, StatusCode::CREATED);
    assert_eq!(tw_send(&env, &sim, &form).await?.0, StatusCode::CREATED);
    let (status, v) = tw_send(&env, &sim, &form).await?;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!((v["code"].as_i64(), v["status"].as_i64()), (Some(20429), Some(429)));
    assert_eq!(sim.sent().len(), 2, "a 429 is never processed");
    sim.advance(Duration::from_secs(1));
    assert_eq!(tw_send(&env, &sim, &form).await?.0, StatusCode::CREATED);
    assert_eq!(sim.stats().rate_limited, 1);
    env.stop().await;
    Ok(())
}

#[tokio::test]
async fn twilio_fails_the_31st_message_between_two_numbers_in_30_s_with_14107() -> TestResult {
    let env = Env::new();
    let (url, hits) = receiver(&env, 200).await?;
    let sim = twilio(&env, tw_cfg()).await?;
    let form = [("To", TO), ("From", FROM), ("Body", "x"), ("StatusCallback", &url)];
    for _ in 0..30 {
        assert_eq!(tw_send(&env, &sim, &form).await?.0, StatusCode::CREATED);
    }
    // The 31st is accepted like the others — 14107 is not an HTTP error…
    let (status, v) = tw_send(&env, &sim, &form).await?;
    assert_eq!((status, v["status"].as_str()), (StatusCode::CREATED, Some("queued")));
    let sid = v["sid"].as_str().ok_or("no sid")?.to_owned();
    // …another recipient from the same number is not affected…
    let other = [("To", "+380671234567"), ("From", FROM), ("Body", "x")];
    assert_eq!(tw_send(&env, &sim, &other).await?.0, StatusCode::CREATED);

    // …and the 31st fails afterwards, reported by its status callback.
    let got = wait_for_hits(&hits, 30 * 2 + 1).await;
    let failed: Vec<Vec<(String, String)>> = got
        .iter()
        .map(|h| form_pairs(&h.body))
        .filter(|p| p.iter().any(|(k, v)| k == "MessageStatus" && v == "failed"))
        .collect();
    assert_eq!(failed.len(), 1);
    assert!(failed[0].contains(&("MessageSid".to_owned(), sid.clone())));
    assert!(failed[0].contains(&("ErrorCode".to_owned(), "14107".to_owned())));
    let m = sim.messages().into_iter().find(|m| m.sms.id == sid).ok_or("no message")?;
    assert_eq!((m.status.as_str(), m.error_code), ("failed", Some(14107)));

    // Once the window has passed, the pair may talk again.
    sim.advance(Duration::from_secs(30));
    let (_, v) = tw_send(&env, &sim, &[("To", TO), ("From", FROM), ("Body", "later")]).await?;
    let later = v["sid"].as_str().ok_or("no sid")?.to_owned();
    wait_until_status(&sim, &later, "delivered").await;
    env.stop().await;
    Ok(())
}

#[tokio::test]
async fn twilio_fails_messages_over_the_account_rate_with_63017() -> TestResult {
    let env = Env::new();
    let sim = twilio(&env, TwilioSimConfig { account_mps: 2, ..tw_cfg() }).await?;
    let mut sids = Vec::new();
    for to in ["+380501111111", "+380502222222", "+380503333333"] {
        let (status, v) = tw_send(&env, &sim, &[("To", to), ("From", FROM), ("Body", "x")]).await?;
        assert_eq!(status, StatusCode::CREATED);
        sids.push(v["sid"].as_str().ok_or("no sid")?.to_owned());
    }
    wait_until_status(&sim, &sids[2], "failed").await;
    let m = sim.messages().into_iter().find(|m| m.sms.id == sids[2]).ok_or("no message")?;
    assert_eq!(m.error_code, Some(63017));
    wait_until_status(&sim, &sids[1], "delivered").await;
    env.stop().await;
    Ok(())
}

#[tokio::test]
async fn twilio_posts_signed_status_callbacks() -> TestResult {
    let env = Env::new();
    let (url, hits) = receiver(&env, 200).await?;
    let sim = twilio(&env, tw_cfg()).await?;
    sim.set_outcome("+380671234567", FinalStatus::Undelivered(30003));
    sim.set_outcome("+380931234567", FinalStatus::Failed(30007));
    let mut sids = Vec::new();
    for to in [TO, "+380671234567", "+380931234567"] {
        let (_, v) =
            tw_send(&env, &sim, &[("To", to), ("From", FROM), ("Body", "x"), ("StatusCallback", &url)]).await?;
        sids.push(v["sid"].as_str().ok_or("no sid")?.to_owned());
    }
    // sent + delivered, sent + undelivered, failed.
    let got = wait_for_hits(&hits, 5).await;
    let mut by_sid: Vec<(String, String, Option<String>)> = Vec::new();
    for hit in &got {
        assert_eq!(
            hit.headers.get("content-type").and_then(|v| v.to_str().ok()),
            Some("application/x-www-form-urlencoded")
        );
        let pairs = form_pairs(&hit.body);
        let get = |k: &str| pairs.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
        assert_eq!(get("AccountSid").as_deref(), Some(SID));
        assert_eq!(get("From").as_deref(), Some(FROM));
        assert_eq!(get("SmsSid"), get("MessageSid"));
        // The signature checks out the way Twilio's own validators check it.
        let params: Vec<(&str, String)> = pairs.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
        let sig = hit.headers.get("x-twilio-signature").and_then(|v| v.to_str().ok()).ok_or("unsigned")?;
        assert_eq!(sig, signature(AUTH, &url, &params));
        assert_ne!(sig, signature("another-token", &url, &params));
        by_sid.push((
            get("MessageSid").unwrap_or_default(),
            get("MessageStatus").unwrap_or_default(),
            get("ErrorCode"),
        ));
    }
    let of = |sid: &str| {
        by_sid.iter().filter(|(s, ..)| s == sid).map(|(_, st, e)| (st.clone(), e.clone())).collect::<Vec<_>>()
    };
    assert_eq!(of(&sids[0]), vec![("sent".to_owned(), None), ("delivered".to_owned(), None)]);
    assert_eq!(of(&sids[1]), vec![("sent".to_owned(), None), ("undelivered".to_owned(), Some("30003".to_owned()))]);
    assert_eq!(of(&sids[2]), vec![("failed".to_owned(), Some("30007".to_owned()))]);
    let records = sim.wait_for_callbacks(5, Duration::from_secs(5)).await;
    assert!(records.iter().all(|r| r.http_status == Some(200)));

    // Unsigned when configured so; never posted off loopback.
    let quiet = twilio(&env, TwilioSimConfig { sign_callbacks: false, ..tw_cfg() }).await?;
    tw_send(&env, &quiet, &[("To", TO), ("From", FROM), ("Body", "x"), ("StatusCallback", &url)]).await?;
    let got = wait_for_hits(&hits, 7).await;
    assert!(got[5..].iter().all(|h| h.headers.get("x-twilio-signature").is_none()));
    tw_send(&env, &quiet, &[("To", TO), ("From", FROM), ("Body", "x"), ("StatusCallback", "http://192.0.2.1/cb")])
        .await?;
    let records = quiet.wait_for_callbacks(4, Duration::from_secs(5)).await;
    let far: Vec<_> = records.iter().filter(|r| r.url == "http://192.0.2.1/cb").collect();
    assert_eq!(far.len(), 2, "sent and delivered were both attempted");
    assert!(far.iter().all(|r| r.http_status.is_none()));
    assert_eq!(hits.lock().expect("lock").len(), 7, "nothing reached the receiver from the far URL");
    env.stop().await;
    Ok(())
}

#[tokio::test]
async fn twilio_faults_and_a_lost_answer() -> TestResult {
    let env = Env::new();
    let sim = twilio(&env, tw_cfg()).await?;
    let form = [("To", TO), ("From", FROM), ("Body", "x")];

    sim.inject(SmsFault::Status(500), 1);
    sim.inject(SmsFault::Status(502), 1);
    sim.inject(SmsFault::Garbage, 1);
    sim.inject(SmsFault::Reset, 1);
    sim.inject(SmsFault::ErrorCode(20429), 1);
    let (status, v) = tw_send(&env, &sim, &form).await?;
    assert_eq!((status, v["code"].as_i64()), (StatusCode::INTERNAL_SERVER_ERROR, Some(20500)));
    let resp = tw_post(&env.http, &sim, &form).await?;
    assert_eq!(resp.status(), StatusCode::BAD_GATEWAY);
    assert!(resp.text().await?.contains("nginx"));
    let resp = tw_post(&env.http, &sim, &form).await?;
    assert!(resp.json::<Value>().await.is_err(), "garbage does not decode");
    assert!(tw_post(&env.http, &sim, &form).await.is_err());
    let (status, v) = tw_send(&env, &sim, &form).await?;
    assert_eq!((status, v["code"].as_i64()), (StatusCode::TOO_MANY_REQUESTS, Some(20429)));
    assert!(sim.sent().is_empty());
    assert_eq!(sim.stats().faulted, 5);

    // Accepted, answer lost. Twilio has no idempotency key, so a retry sends
    // the message a second time: the adapter has to live with that.
    sim.inject(SmsFault::AcceptThenDrop(Duration::from_secs(30)), 1);
    no_answer(tw_post(&impatient(300)?, &sim, &form).await, true)?;
    assert_eq!(sim.sent().len(), 1);
    assert_eq!(tw_send(&env, &sim, &form).await?.0, StatusCode::CREATED);
    assert_eq!(sim.sent().len(), 2);

    // A delay past the client's timeout: Twilio still creates the message.
    sim.inject(SmsFault::Delay(Duration::from_millis(300)), 1);
    no_answer(tw_post(&impatient(100)?, &sim, &form).await, true)?;
    assert_eq!(sim.wait_for_sent(3, Duration::from_secs(5)).await.len(), 3);
    env.stop().await;
    Ok(())
}

/// Decodes a form body the test way (independent of the simulator's parser).
fn form_pairs(body: &[u8]) -> Vec<(String, String)> {
    let url = reqwest::Url::parse(&format!("http://x/?{}", String::from_utf8_lossy(body))).expect("form as query");
    url.query_pairs().map(|(k, v)| (k.into_owned(), v.into_owned())).collect()
}

async fn wait_until_status(sim: &TwilioSim, sid: &str, status: &str) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let now = sim.messages().into_iter().find(|m| m.sms.id == sid).map(|m| m.status);
        if now.as_deref() == Some(status) {
            return;
        }
        assert!(tokio::time::Instant::now() < deadline, "{sid} never became {status}: {now:?}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}
