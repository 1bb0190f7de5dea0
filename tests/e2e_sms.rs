//! SMS through the real daemon and the gateway simulators: residents without Telegram
//! get one-part Ukrainian texts; a gateway that fails mid-fan-out hands over to the
//! next and nobody gets a text twice; an answer lost after the gateway accepted is
//! retried through the same gateway, whose `sequence_id` keeps it from sending twice.

use std::collections::BTreeMap;
use std::time::Duration;

use sirena::alerts::{AlertKind, Transition};
use sirena::channels::ChannelKind;
use sirena::demo::{Harness, Options, SmsKind, kharkiv_air_raid, luhansk};
use sirena::messages::Lang;
use sirena::regions::RegionId;
use sirena::sim::sms::{SmsFault, SmsMode};
use sirena::store::{Counts, Import};
use sirena::web::WebStats;

const WAIT: Duration = Duration::from_secs(30);
const KINDRASHIVKA: &str = "UA63080070010082928";
const KHARKIV_CITY: &str = "UA63120270010096107";

fn sms_residents(count: usize, place: &str) -> Vec<Import> {
    (0..count)
        .map(|i| Import {
            kind: ChannelKind::Sms,
            address: format!("+38050{:07}", 1_000_000 + i),
            lang: Lang::Uk,
            places: vec![RegionId::parse(place).expect("id")],
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_sms_resident_gets_one_part_ukrainian_texts() {
    let opts = Options { sms: vec![SmsKind::TurboSms], seed: sms_residents(1, KINDRASHIVKA), ..Options::default() };
    let mut h = Harness::start(opts).await.expect("harness");
    let turbosms = h.turbosms.clone().expect("TurboSMS simulator");
    h.feed.set_alerts(vec![luhansk(), kharkiv_air_raid()]);
    h.next_fanout(WAIT, |f| f.event.kind == AlertKind::AirRaid && f.recipients == 1).await.expect("air raid");
    let sent = turbosms.wait_for_sent(1, WAIT).await;
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].to, "380501000000", "TurboSMS takes the number without +");
    assert_eq!(sent[0].sender, "SIRENA");
    assert_eq!(sent[0].parts, 1, "one part: {}", sent[0].text);
    assert!(sent[0].text.starts_with("Повітряна тривога: Харківська область"), "{}", sent[0].text);
    h.feed.set_alerts(vec![luhansk()]);
    h.next_fanout(WAIT, |f| f.event.transition == Transition::Ended).await.expect("all clear");
    let sent = turbosms.wait_for_sent(2, WAIT).await;
    assert_eq!(sent.len(), 2);
    assert!(sent[1].text.starts_with("Відбій: Повітряна тривога"), "{}", sent[1].text);
    assert_eq!(sent[1].parts, 1);
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateway_failing_mid_fan_out_hands_over_and_nobody_gets_two_texts() {
    const RESIDENTS: usize = 60;
    let opts = Options {
        sms: vec![SmsKind::TurboSms, SmsKind::Twilio],
        seed: sms_residents(RESIDENTS, KHARKIV_CITY),
        retry_base: Duration::from_millis(200),
        // One text per request, so exactly one message's answer is lost.
        sms_batch: Some(1),
        ..Options::default()
    };
    let mut h = Harness::start(opts).await.expect("harness");
    let turbosms = h.turbosms.clone().expect("TurboSMS");
    let twilio = h.twilio.clone().expect("Twilio");
    h.feed.set_alerts(vec![luhansk(), kharkiv_air_raid()]);
    h.next_fanout(WAIT, |f| f.event.kind == AlertKind::AirRaid && f.recipients == RESIDENTS).await.expect("air raid");
    // Some texts are out through TurboSMS; then it fails — an answer lost after it
    // accepted, then nothing but errors.
    turbosms.wait_for_sent(5, WAIT).await;
    turbosms.inject(SmsFault::AcceptThenDrop(Duration::ZERO), 1);
    turbosms.inject(SmsFault::Status(502), 100_000);
    // Everything but the text whose answer was lost goes out through Twilio; that one
    // waits for TurboSMS, which may have sent it.
    let deadline = tokio::time::Instant::now() + WAIT;
    while h.store().counts().await.expect("counts").sent < RESIDENTS as u64 - 1 {
        assert!(tokio::time::Instant::now() < deadline, "the fan-out stalled: {:?}", h.store().counts().await);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        h.store().counts().await.expect("counts").pending + h.store().counts().await.expect("counts").sending,
        1
    );
    // TurboSMS recovers: the retry carries the same sequence_id and sends nothing new.
    turbosms.clear_faults();
    h.wait_drained(WAIT).await.expect("every text delivered");
    let requests: Vec<String> =
        turbosms.requests().iter().map(|r| format!("{} {:?} {}", r.http_status, r.code, r.body)).collect();
    // Within the simulator's request rate (sirena's limiter keeps under it), the
    // request whose answer was lost was accepted: its retry must have been a replay.
    assert_eq!(turbosms.stats().rate_limited, 0, "{:?}", turbosms.stats());
    assert!(
        turbosms.stats().replayed >= 1,
        "the lost answer was recovered by sequence_id: {:?}\n{}",
        turbosms.stats(),
        requests.join("\n")
    );
    let mut per_number: BTreeMap<String, usize> = BTreeMap::new();
    for s in turbosms.sent() {
        *per_number.entry(format!("+{}", s.to)).or_default() += 1;
    }
    let through_twilio = twilio.sent();
    for s in &through_twilio {
        *per_number.entry(s.to.clone()).or_default() += 1;
    }
    assert_eq!(per_number.len(), RESIDENTS, "everyone got a text");
    let twice: Vec<_> = per_number.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "texts sent twice: {twice:?}");
    assert!(!through_twilio.is_empty(), "Twilio took over");
    h.shutdown().await;
}

/// Polls the store until `done` holds for its counts, or fails with them.
async fn wait_counts(h: &Harness, what: &str, done: impl Fn(&Counts) -> bool) -> Counts {
    wait_counts_for(h, WAIT, what, done).await
}

async fn wait_counts_for(h: &Harness, wait: Duration, what: &str, done: impl Fn(&Counts) -> bool) -> Counts {
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        let c = h.store().counts().await.expect("counts");
        if done(&c) {
            return c;
        }
        assert!(tokio::time::Instant::now() < deadline, "{what}: {c:?}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn turbosms_gets_one_text_for_many_residents_per_request_within_both_rates() {
    const RESIDENTS: usize = 250;
    let opts = Options {
        sms: vec![SmsKind::TurboSms],
        seed: sms_residents(RESIDENTS, KHARKIV_CITY),
        sms_per_sec: Some(200),
        sms_batch: Some(100),
        sms_requests_per_sec: Some(4),
        ..Options::default()
    };
    let mut h = Harness::start(opts).await.expect("harness");
    let turbosms = h.turbosms.clone().expect("TurboSMS");
    h.feed.set_alerts(vec![luhansk(), kharkiv_air_raid()]);
    h.next_fanout(WAIT, |f| f.event.kind == AlertKind::AirRaid && f.recipients == RESIDENTS).await.expect("air raid");
    h.wait_drained(WAIT).await.expect("every text sent");
    let sent = turbosms.sent();
    let mut per_number: BTreeMap<&str, usize> = BTreeMap::new();
    for s in &sent {
        *per_number.entry(s.to.as_str()).or_default() += 1;
    }
    assert_eq!(per_number.len(), RESIDENTS, "everyone got the text");
    assert!(per_number.values().all(|&n| n == 1), "nobody twice");
    let requests: Vec<_> = turbosms.requests().into_iter().filter(|r| r.path.ends_with("/message/send.json")).collect();
    let sizes: Vec<usize> = requests
        .iter()
        .map(|r| {
            serde_json::from_str::<serde_json::Value>(&r.body).expect("json")["recipients"]
                .as_array()
                .map_or(0, Vec::len)
        })
        .collect();
    assert!(sizes.iter().all(|&n| (1..=100).contains(&n)), "at most `batch` recipients per request: {sizes:?}");
    assert!(requests.len() <= RESIDENTS / 20, "{} requests for {RESIDENTS} texts: {sizes:?}", requests.len());
    // Decided before each request: neither the gateway's request rate nor its message
    // rate was ever exceeded (the simulator answers 429 to either).
    assert_eq!(turbosms.stats().rate_limited, 0, "{:?}", turbosms.stats());
    let at: Vec<_> = requests.iter().map(|r| r.at).collect();
    let max_requests =
        (0..at.len()).map(|i| at[i..].iter().take_while(|&&t| t - at[i] < Duration::from_secs(1)).count()).max();
    assert!(max_requests.unwrap_or(0) <= 4, "{max_requests:?} requests in one second");
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn turbosms_delivery_reports_mark_each_delivery_and_refuse_strangers() {
    use sirena::sim::sms::DlrStatus;
    let opts = Options {
        sms: vec![SmsKind::TurboSms],
        seed: sms_residents(5, KHARKIV_CITY),
        sms_reports: true,
        ..Options::default()
    };
    let h = Harness::start(opts).await.expect("harness");
    let turbosms = h.turbosms.clone().expect("TurboSMS");
    turbosms.set_outcome("380501000003", DlrStatus::Undelivered);
    h.feed.set_alerts(vec![luhansk(), kharkiv_air_raid()]);
    let c = wait_counts(&h, "reports recorded", |c| c.delivered + c.undelivered == 5).await;
    assert_eq!((c.delivered, c.undelivered, c.sent), (4, 1, 0), "{c:?}");
    let callbacks = turbosms.wait_for_callbacks(5, WAIT).await;
    assert!(callbacks.iter().all(|c| c.http_status == Some(200)), "{callbacks:?}");
    assert_eq!(WebStats::get(&h.daemon.web.reports), 5);

    let addr = h.daemon.web_addr.expect("the daemon listens");
    let http = reqwest::Client::new();
    let report = |id: &str| serde_json::json!({"message_id": id, "phone": "380501000000", "status": "Delivered"});
    let post = |url: String, body: serde_json::Value| {
        let http = http.clone();
        async move { http.post(url).json(&body).send().await.expect("post").status().as_u16() }
    };
    // A wrong secret, in the path or the header: 401, counted, nothing changes.
    let wrong = post(format!("http://{addr}/reports/turbosms/guess"), report(&callbacks[0].message_id)).await;
    assert_eq!(wrong, 401);
    let in_header = http
        .post(format!("http://{addr}/reports/turbosms"))
        .header("X-Report-Secret", "guess")
        .json(&report(&callbacks[0].message_id))
        .send()
        .await
        .expect("post");
    assert_eq!(in_header.status().as_u16(), 401);
    assert_eq!(WebStats::get(&h.daemon.web.unauthorized), 2);
    // A replayed report and one for an id nobody sent: 200 (so the gateway stops), counted.
    let url = format!("http://{addr}/reports/turbosms/{}", sirena::demo::SMS_REPORT_SECRET);
    assert_eq!(post(url.clone(), report(&callbacks[0].message_id)).await, 200);
    assert_eq!(post(url.clone(), report("00000000-0000-0000-0000-000000000000")).await, 200);
    assert_eq!(WebStats::get(&h.daemon.web.reports_unmatched), 2);
    // Garbage: 400, counted. An unknown gateway: 404.
    let garbage = http.post(url.clone()).body("<html>").send().await.expect("post");
    assert_eq!(garbage.status().as_u16(), 400);
    assert_eq!(WebStats::get(&h.daemon.web.malformed), 1);
    assert_eq!(post(format!("http://{addr}/reports/nobody/x"), report("x")).await, 404);
    let after = h.store().counts().await.expect("counts");
    assert_eq!((after.delivered, after.undelivered), (4, 1), "nothing changed: {after:?}");
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twilio_status_callbacks_are_signed_and_a_14107_is_sent_again_not_dropped() {
    use sirena::sim::sms::FinalStatus;
    let opts = Options {
        sms: vec![SmsKind::Twilio],
        seed: sms_residents(3, KHARKIV_CITY),
        sms_reports: true,
        retry_base: Duration::from_millis(200),
        ..Options::default()
    };
    let h = Harness::start(opts).await.expect("harness");
    let twilio = h.twilio.clone().expect("Twilio");
    twilio.set_outcome("+380501000001", FinalStatus::Undelivered(30003));
    // Too many messages between the same two numbers: Twilio accepts, then fails it.
    twilio.set_outcome("+380501000002", FinalStatus::Failed(14107));
    h.feed.set_alerts(vec![luhansk(), kharkiv_air_raid()]);
    wait_counts(&h, "first reports", |c| c.delivered == 1 && c.undelivered == 1 && c.pending == 1).await;
    // The rate-limited one went back to the queue, due once the pair's 30 s window
    // has passed; then it goes again and arrives.
    let due = h.store().next_due(ChannelKind::Sms).await.expect("next due").expect("queued");
    let ahead = due - sirena::store::now_ms();
    assert!((25_000..=30_000).contains(&ahead), "due in {ahead} ms");
    twilio.set_outcome("+380501000002", FinalStatus::Delivered);
    let c = wait_counts_for(&h, WAIT + WAIT / 2, "the 14107 text sent again", |c| c.delivered == 2).await;
    assert_eq!((c.undelivered, c.pending, c.sending, c.sent), (1, 0, 0, 0), "{c:?}");
    assert_eq!(twilio.sent_to("+380501000002").len(), 2, "sent again after a 14107");
    assert_eq!(twilio.sent_to("+380501000001").len(), 1, "an undelivered text is not sent again");
    let callbacks = twilio.callbacks();
    assert!(callbacks.iter().all(|c| c.http_status == Some(200)), "signed callbacks accepted: {callbacks:?}");
    assert!(callbacks.iter().all(|c| c.url.ends_with(sirena::demo::SMS_REPORT_SECRET)), "{callbacks:?}");
    assert_eq!(WebStats::get(&h.daemon.web.unauthorized), 0);

    // A callback signed with another token is refused.
    let addr = h.daemon.web_addr.expect("the daemon listens");
    let url = format!("http://{addr}/reports/twilio/{}", sirena::demo::SMS_REPORT_SECRET);
    let forged = reqwest::Client::new()
        .post(&url)
        .header("X-Twilio-Signature", sirena::channels::sms::twilio::signature("not-the-token", &url, &[]))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("MessageSid={}&MessageStatus=delivered", callbacks[0].message_id))
        .send()
        .await
        .expect("post");
    assert_eq!(forged.status().as_u16(), 401);
    assert_eq!(WebStats::get(&h.daemon.web.unauthorized), 1);
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn turbosms_viber_mode_sends_viber_with_sms_fallback() {
    let opts = Options {
        sms: vec![SmsKind::TurboSms],
        seed: sms_residents(2, KINDRASHIVKA),
        viber: true,
        ..Options::default()
    };
    let h = Harness::start(opts).await.expect("harness");
    let turbosms = h.turbosms.clone().expect("TurboSMS");
    h.feed.set_alerts(vec![luhansk(), kharkiv_air_raid()]);
    let sent = turbosms.wait_for_sent(2, WAIT).await;
    assert_eq!(sent.len(), 2);
    assert!(sent.iter().all(|s| s.mode == SmsMode::ViberWithSmsFallback), "{sent:?}");
    assert!(sent[0].text.starts_with("Повітряна тривога"), "{}", sent[0].text);
    h.shutdown().await;
}

/// `sirena subscribers import` into the store of a running daemon: the imported hear
/// the next alert without a restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn residents_imported_while_the_daemon_runs_hear_the_next_alert() {
    let opts = Options { sms: vec![SmsKind::TurboSms], seed: sms_residents(1, KHARKIV_CITY), ..Options::default() };
    let mut h = Harness::start(opts).await.expect("harness");
    let turbosms = h.turbosms.clone().expect("TurboSMS");
    let csv = h.config_dir.with_file_name("municipality.csv");
    std::fs::write(&csv, format!("channel,address,place,lang\nsms,067 000 00 01,{KINDRASHIVKA},uk\n")).expect("csv");
    let mut seen = h.daemon.imports_seen.clone();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_sirena"))
        .args(["subscribers", "import"])
        .arg(&csv)
        .arg("--config")
        .arg(&h.config_dir)
        .output()
        .expect("sirena runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    tokio::time::timeout(WAIT, seen.wait_for(|n| *n >= 1)).await.expect("the daemon took the import").expect("running");
    h.feed.set_alerts(vec![luhansk(), kharkiv_air_raid()]);
    h.next_fanout(WAIT, |f| f.event.kind == AlertKind::AirRaid && f.recipients == 2).await.expect("both residents");
    let sent = turbosms.wait_for_sent(2, WAIT).await;
    assert!(sent.iter().any(|s| s.to == "380670000001"), "the imported resident got the text: {sent:?}");
    h.shutdown().await;
}
