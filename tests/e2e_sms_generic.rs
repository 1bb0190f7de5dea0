//! SMS through the real daemon and a generic HTTP gateway (`kind = "http"`): residents
//! get their one-part Ukrainian texts through a JSON template and through a form
//! template; a generic gateway that fails mid-fan-out hands over to TurboSMS, and the
//! text whose answer was lost is retried through it under the same `{id}`, so nobody
//! gets a text twice.

use std::collections::BTreeMap;
use std::time::Duration;

use sirena::alerts::{AlertKind, Transition};
use sirena::channels::ChannelKind;
use sirena::demo::{Harness, Options, SmsKind, kharkiv_air_raid, luhansk};
use sirena::messages::Lang;
use sirena::regions::RegionId;
use sirena::sim::sms::SmsFault;
use sirena::store::Import;

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

/// The air raid and its all-clear reach one SMS resident through `kind`.
async fn one_resident_through(kind: SmsKind) {
    let opts = Options { sms: vec![kind], seed: sms_residents(1, KINDRASHIVKA), ..Options::default() };
    let mut h = Harness::start(opts).await.expect("harness");
    let generic = h.generic.clone().expect("generic simulator");
    h.feed.set_alerts(vec![luhansk(), kharkiv_air_raid()]);
    h.next_fanout(WAIT, |f| f.event.kind == AlertKind::AirRaid && f.recipients == 1).await.expect("air raid");
    let sent = generic.wait_for_sent(1, WAIT).await;
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].to, "+380501000000");
    assert_eq!(sent[0].sender, "SIRENA");
    assert_eq!(sent[0].parts, 1, "one part: {}", sent[0].text);
    assert!(sent[0].text.starts_with("Повітряна тривога: Харківська область"), "{}", sent[0].text);
    h.feed.set_alerts(vec![luhansk()]);
    h.next_fanout(WAIT, |f| f.event.transition == Transition::Ended).await.expect("all clear");
    let sent = generic.wait_for_sent(2, WAIT).await;
    assert_eq!(sent.len(), 2);
    assert!(sent[1].text.starts_with("Відбій: Повітряна тривога"), "{}", sent[1].text);
    assert_eq!(sent[1].parts, 1);
    h.wait_drained(WAIT).await.expect("drained");
    let stats = generic.stats();
    assert_eq!((stats.requests, stats.accepted, stats.rejected, stats.auth_failures), (2, 2, 0, 0), "{stats:?}");
    let on_the_wire = &generic.requests()[0].body;
    match kind {
        SmsKind::GenericJson => {
            let body: serde_json::Value = serde_json::from_str(on_the_wire).expect("a JSON body");
            assert_eq!(body["to"], "+380501000000");
            assert!(body["id"].as_str().is_some_and(|id| !id.is_empty()), "{body}");
        }
        _ => assert!(on_the_wire.starts_with("to=380501000000&text=%D0%9F"), "a form body: {on_the_wire}"),
    }
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_sms_resident_gets_texts_through_a_json_template() {
    one_resident_through(SmsKind::GenericJson).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_sms_resident_gets_texts_through_a_form_template() {
    one_resident_through(SmsKind::GenericForm).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_generic_gateway_failing_mid_fan_out_hands_over_to_turbosms_and_nobody_gets_two_texts() {
    const RESIDENTS: usize = 60;
    let opts = Options {
        sms: vec![SmsKind::GenericJson, SmsKind::TurboSms],
        seed: sms_residents(RESIDENTS, KHARKIV_CITY),
        retry_base: Duration::from_millis(200),
        sms_per_sec: Some(9),
        ..Options::default()
    };
    let mut h = Harness::start(opts).await.expect("harness");
    let generic = h.generic.clone().expect("generic");
    let turbosms = h.turbosms.clone().expect("TurboSMS");
    h.feed.set_alerts(vec![luhansk(), kharkiv_air_raid()]);
    h.next_fanout(WAIT, |f| f.event.kind == AlertKind::AirRaid && f.recipients == RESIDENTS).await.expect("air raid");
    // Some texts are out through the generic gateway; then it fails — an answer lost
    // after it accepted, then nothing but 502s.
    generic.wait_for_sent(5, WAIT).await;
    generic.inject(SmsFault::AcceptThenDrop(Duration::ZERO), 1);
    generic.inject(SmsFault::Status(502), 100_000);
    // Everything but the text whose answer was lost goes out through TurboSMS; that
    // one waits for the generic gateway, which may have sent it.
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let counts = h.store().counts().await.expect("counts");
        if counts.sent >= RESIDENTS as u64 - 1 {
            assert_eq!(counts.pending + counts.sending, 1, "{counts:?}");
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "the fan-out stalled: {counts:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The generic gateway recovers: the retry carries the same id and sends nothing new.
    generic.clear_faults();
    h.wait_drained(WAIT).await.expect("every text delivered");
    assert_eq!(generic.stats().rate_limited, 0, "{:?}", generic.stats());
    assert!(generic.stats().replayed >= 1, "the lost answer was recovered by its id: {:?}", generic.stats());
    let mut per_number: BTreeMap<String, usize> = BTreeMap::new();
    for s in generic.sent() {
        *per_number.entry(s.to.clone()).or_default() += 1;
    }
    let through_turbosms = turbosms.sent();
    for s in &through_turbosms {
        *per_number.entry(format!("+{}", s.to)).or_default() += 1;
    }
    assert_eq!(per_number.len(), RESIDENTS, "everyone got a text");
    let twice: Vec<_> = per_number.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "texts sent twice: {twice:?}");
    assert!(!through_turbosms.is_empty(), "TurboSMS took over");
    h.shutdown().await;
}
