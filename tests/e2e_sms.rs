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
