//! Operators through the real daemon and the Telegram simulator: the two-person rule
//! for broadcasts (nothing leaves before a second operator approves, and nobody
//! approves their own draft), corrections, the audit log, `/sources`, `/deliveries`,
//! and a scheduled drill's receipt report.

mod common;

use common::*;
use sirena::alerts::EventId;
use sirena::demo::{Harness, Options};
use sirena::sim::telegram::SentMessage;

const OP1: i64 = 7101;
const OP2: i64 = 7102;
const STRANGER: i64 = 7103;
const RES_UK: i64 = 7104;
const RES_EN: i64 = 7105;

async fn say(h: &Harness, chat: i64, text: &str) -> SentMessage {
    let before = h.telegram.sent_to(chat).len();
    h.telegram.user_sends(chat, text);
    let got = h.telegram.wait_for_sent(chat, before + 1, WAIT).await;
    assert!(got.len() > before, "no reply to {text:?}");
    got[before].clone()
}

fn operators() -> Options {
    Options { operators: vec![OP1, OP2], ..Options::default() }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broadcast_leaves_only_when_a_second_operator_approves() {
    let h = Harness::start(operators()).await.expect("harness");
    for (chat, lang) in [(OP1, "uk"), (OP2, "uk"), (STRANGER, "uk"), (RES_UK, "uk"), (RES_EN, "en")] {
        h.telegram.add_user(chat, "Someone", Some(lang));
    }
    for chat in [RES_UK, RES_EN] {
        say(&h, chat, "/subscribe Кіндрашівка").await;
    }

    // Someone not on the allowlist: not allowed, and counted.
    let reply = say(&h, STRANGER, "/broadcast Кіндрашівка Фальшива тривога").await;
    assert!(reply.text.contains("Недоступно"), "{}", reply.text);
    let reply = say(&h, STRANGER, "/approve 1").await;
    assert!(reply.text.contains("Недоступно"), "{}", reply.text);
    let refused = h.daemon.pipeline_stats.operator_refused.load(std::sync::atomic::Ordering::Relaxed);
    assert_eq!(refused, 2);

    let reply = say(&h, OP1, "/broadcast Кіндрашівка Вода буде о 18:00 <b>").await;
    assert!(reply.text.contains("Чернетка 1"), "{}", reply.text);
    assert!(reply.text.contains("&lt;b&gt;"), "operator text is escaped: {}", reply.text);
    // The other operator is asked to review it.
    let asked = h.telegram.wait_for_sent(OP2, 1, WAIT).await;
    assert!(asked.first().is_some_and(|m| m.text.contains("/approve 1")), "{:?}", texts(&asked));

    // The author's own approval is refused. Its reply is the observable point: the
    // store holds the draft and no broadcast event, and no resident got anything.
    let reply = say(&h, OP1, "/approve 1").await;
    assert!(reply.text.contains("написали ви"), "{}", reply.text);
    let event = EventId("broadcast:1:started".into());
    assert_eq!(h.store().event(&event).await.expect("store"), None, "nothing enqueued before approval");
    let drafts = h.store().kv_get(sirena::operators::DRAFTS_KEY).await.expect("kv").expect("draft stored");
    assert!(drafts.contains("Вода буде о 18:00"), "{drafts}");
    for chat in [RES_UK, RES_EN] {
        assert_eq!(
            h.telegram.sent_to(chat).len(),
            1,
            "only the subscribe reply: {:?}",
            texts(&h.telegram.sent_to(chat))
        );
    }

    // A second operator approves: it goes out, in each resident's language.
    let reply = say(&h, OP2, "/approve 1").await;
    assert!(reply.text.contains("схвалено"), "{}", reply.text);
    let uk = h.telegram.wait_for_sent(RES_UK, 2, WAIT).await;
    let en = h.telegram.wait_for_sent(RES_EN, 2, WAIT).await;
    assert!(uk.get(1).is_some_and(|m| m.text.starts_with("📢 <b>Офіційне повідомлення")), "{:?}", texts(&uk));
    assert!(en.get(1).is_some_and(|m| m.text.starts_with("📢 <b>Official message")), "{:?}", texts(&en));
    for m in [&uk[1], &en[1]] {
        assert!(m.text.contains("Вода буде о 18:00 &lt;b&gt;"), "the operator's text as given, escaped: {}", m.text);
    }
    let told = h.telegram.wait_for_sent(OP1, 3, WAIT).await;
    assert!(told.iter().any(|m| m.text.contains("схвалив")), "{:?}", texts(&told));
    // Approved once only.
    let reply = say(&h, OP1, "/approve 1").await;
    assert!(reply.text.contains("немає"), "{}", reply.text);

    // The progress of the fan-out, and the feeds.
    h.wait_drained(WAIT).await.expect("drained");
    let reply = say(&h, OP1, "/deliveries").await;
    assert!(reply.text.contains("broadcast:1:started: 0 / 0 / 2 / 0 / 0 / 0"), "{}", reply.text);
    let reply = say(&h, OP2, "/sources").await;
    assert!(reply.text.contains("Джерела тривог"), "{}", reply.text);

    // A correction reaches whoever got it, in their language.
    let reply = say(&h, OP1, "/cancel broadcast:1:started").await;
    assert!(reply.text.contains("2 отримувачам"), "{}", reply.text);
    let uk = h.telegram.wait_for_sent(RES_UK, 3, WAIT).await;
    let en = h.telegram.wait_for_sent(RES_EN, 3, WAIT).await;
    assert!(uk.get(2).is_some_and(|m| m.text.starts_with("⚠️ <b>Виправлення")), "{:?}", texts(&uk));
    assert!(en.get(2).is_some_and(|m| m.text.starts_with("⚠️ <b>Correction")), "{:?}", texts(&en));
    let reply = say(&h, OP2, "/cancel broadcast:1:started").await;
    assert!(reply.text.contains("уже виправлено"), "{}", reply.text);

    // Every step is in the audit log, with who did it.
    let audit = h.store().audit(None).await.expect("audit");
    let steps: Vec<(String, String)> =
        audit.iter().filter(|e| e.who != "config").map(|e| (e.who.clone(), e.action.clone())).collect();
    let want =
        [(OP1, "broadcast_drafted"), (OP1, "approval_refused"), (OP2, "broadcast_approved"), (OP1, "event_cancelled")];
    let want: Vec<(String, String)> = want.iter().map(|(w, a)| (w.to_string(), a.to_string())).collect();
    assert_eq!(steps, want, "{audit:?}");
    // `sirena audit` prints them, from a time on.
    let printed = sirena::operators::cli::audit(&h.config_dir, None).await.expect("audit");
    assert!(printed.lines().any(|l| l.contains(&OP2.to_string()) && l.contains("broadcast_approved")), "{printed}");
    let future = chrono::Utc::now() + chrono::Duration::hours(1);
    let printed = sirena::operators::cli::audit(&h.config_dir, Some(future)).await.expect("audit");
    assert_eq!(printed, "no audit entries\n");
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rejected_draft_is_never_sent() {
    let h = Harness::start(operators()).await.expect("harness");
    for chat in [OP1, OP2, RES_UK] {
        h.telegram.add_user(chat, "Someone", Some("uk"));
    }
    say(&h, RES_UK, "/subscribe Кіндрашівка").await;
    let reply = say(&h, OP1, "/broadcast Кіндрашівка Помилковий текст").await;
    assert!(reply.text.contains("Чернетка 1"), "{}", reply.text);
    let reply = say(&h, OP2, "/reject 1").await;
    assert!(reply.text.contains("відхилено"), "{}", reply.text);
    let reply = say(&h, OP2, "/approve 1").await;
    assert!(reply.text.contains("немає"), "a rejected draft cannot be approved: {}", reply.text);
    assert_eq!(h.store().event(&EventId("broadcast:1:started".into())).await.expect("store"), None);
    assert_eq!(h.telegram.sent_to(RES_UK).len(), 1, "{:?}", texts(&h.telegram.sent_to(RES_UK)));
    h.shutdown().await;
}

/// `/help_requests` lists residents who asked for help to leave, phones and chats
/// masked as on any screen; a stranger is not allowed to see them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operators_list_help_requests_masked_and_strangers_may_not() {
    let h = Harness::start(operators()).await.expect("harness");
    for chat in [OP1, STRANGER, RES_UK] {
        h.telegram.add_user(chat, "Someone", Some("uk"));
    }
    say(&h, RES_UK, "/subscribe Кіндрашівка").await;
    let sub = h
        .store()
        .subscriber(sirena::channels::ChannelKind::TelegramChat, &RES_UK.to_string())
        .await
        .expect("store")
        .expect("the resident");
    let request = sirena::store::HelpRequest {
        subscriber: sub.id,
        address: String::new(),
        order: "kindrashivka-2023-11".into(),
        region: sirena::regions::RegionId::parse("UA63080070010082928").expect("id"),
        people: Some(3),
        mobility: Some("wheelchair".into()),
        phone: Some("+380671234567".into()),
        step: sirena::store::HelpStep::Done,
        created_ms: sirena::store::now_ms(),
        updated_ms: sirena::store::now_ms(),
    };
    assert!(h.store().save_help_request(&request).await.expect("store"));

    let reply = say(&h, OP1, "/help_requests").await;
    assert!(reply.text.contains("kindrashivka-2023-11") && reply.text.contains("Кіндрашівка"), "{}", reply.text);
    assert!(
        reply.text.contains("wheelchair") && reply.text.contains("1 request") && !reply.text.contains("1 requests"),
        "{}",
        reply.text
    );
    assert!(!reply.text.contains("1234567") && !reply.text.contains(&RES_UK.to_string()), "masked: {}", reply.text);
    let reply = say(&h, OP1, "/help_requests another-order").await;
    assert!(reply.text.contains("0 requests"), "{}", reply.text);
    let reply = say(&h, STRANGER, "/help_requests").await;
    assert!(reply.text.contains("Недоступно") && !reply.text.contains("kindrashivka"), "{}", reply.text);
    h.shutdown().await;
}

/// A drill every two seconds on the Kharkiv oblast: once both residents who opted in
/// are in, a run's report says both got it, with latencies; the resident who did not
/// opt in gets none, and the message is marked as a drill, silent, never an alert.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scheduled_drill_reports_its_share_and_latencies() {
    const OPTED_UK: i64 = 7201;
    const OPTED_EN: i64 = 7202;
    const NOT_OPTED: i64 = 7203;
    const OP: i64 = 7204;
    let settings_extra = format!(
        "\n[[drill]]\nid = \"often\"\nschedule = \"*/2 * * * * *\"\nplaces = [\"{KHARKIV_OBLAST}\"]\ntext = \"Перевірка зв’язку\"\ndeadline = \"20s\"\n"
    );
    let h =
        Harness::start(Options { operators: vec![OP], settings_extra, ..Options::default() }).await.expect("harness");
    let mut notices = h.daemon.notices.subscribe();
    for (chat, lang) in [(OPTED_UK, "uk"), (OPTED_EN, "en"), (NOT_OPTED, "uk"), (OP, "uk")] {
        h.telegram.add_user(chat, "Someone", Some(lang));
    }
    for chat in [OPTED_UK, OPTED_EN, NOT_OPTED] {
        say(&h, chat, "/subscribe м. Харків").await;
    }
    let reply = say(&h, OPTED_UK, "/drills on").await;
    assert!(reply.text.contains("навчальні"), "{}", reply.text);
    let reply = say(&h, OPTED_EN, "/drills on").await;
    assert!(reply.text.contains("drill messages"), "{}", reply.text);

    // The first run whose report counts both residents.
    let (drill, run) = tokio::time::timeout(WAIT, async {
        loop {
            if let Ok(sirena::pipeline::Notice::DrillReport { drill, run, summary }) = notices.recv().await
                && summary.contains("telegram: 2/2 delivered (100.0%)")
            {
                return (drill, run);
            }
        }
    })
    .await
    .expect("a drill report with both residents");
    assert_eq!(drill, "often");
    let event = EventId(format!("drill:often:{run}:started"));
    let report =
        sirena::operators::drills::read_report(&**h.store(), &event).await.expect("store").expect("the run is stored");
    let tg = &report.by_channel[&sirena::channels::ChannelKind::TelegramChat];
    assert_eq!((tg.recipients, tg.delivered, tg.open), (2, 2, 0));
    assert_eq!(tg.share(), 1.0);
    let (p50, p99) = (tg.p50_s.expect("p50"), tg.p99_s.expect("p99"));
    assert!(p50 <= p99 && p99 < 10.0, "p50 {p50} p99 {p99}");
    assert_eq!(tg.maybe_duplicates, 0);
    // `sirena drills report` prints the run with the line the operators' chat got.
    let printed = sirena::operators::cli::drills_report(&h.config_dir, Some("often")).await.expect("drills report");
    let line = tg.line(sirena::channels::ChannelKind::TelegramChat);
    assert!(line.starts_with("telegram: 2/2 delivered (100.0%), p50 "), "{line}");
    assert!(printed.contains(&format!("drill often run {run} ")), "{printed}");
    assert!(printed.lines().any(|l| l == format!("  {line}")), "{printed}");

    // The report was made once every delivery was done: by then the resident who did
    // not opt in would have had theirs.
    assert_eq!(h.telegram.sent_to(NOT_OPTED).len(), 1, "{:?}", texts(&h.telegram.sent_to(NOT_OPTED)));
    for (chat, marker) in [(OPTED_UK, "ТЕСТ — це навчання"), (OPTED_EN, "TEST — this is a drill")] {
        let got = h.telegram.sent_to(chat);
        let drills: Vec<&SentMessage> = got.iter().filter(|m| m.text.contains(marker)).collect();
        assert!(!drills.is_empty(), "{:?}", texts(&got));
        for m in drills {
            assert!(m.text.starts_with("🧪 "), "no alert's icon: {}", m.text);
            assert!(!m.text.contains("🔴") && !m.text.contains("<b>"), "never said like an alert: {}", m.text);
            assert!(m.disable_notification, "a drill rings no phone");
        }
    }
    // The operators' chat gets the report too.
    let op = h.telegram.wait_for_sent(OP, 1, WAIT).await;
    assert!(op.iter().any(|m| m.text.contains("Навчання often")), "{:?}", texts(&op));
    assert!(
        h.store().audit(None).await.expect("audit").iter().any(|e| e.who == "system" && e.action == "drill_started")
    );
    h.shutdown().await;
}

/// `[telegram] operators` follows a config reload: an operator removed in the file is
/// "not allowed" at once — even to approve the draft they were asked to review — and
/// hears no more notices; one added may approve it and hears them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_adds_and_removes_operators() {
    const OP3: i64 = 7106;
    let h = Harness::start(operators()).await.expect("harness");
    for chat in [OP1, OP2, OP3, RES_UK] {
        h.telegram.add_user(chat, "Someone", Some("uk"));
    }
    say(&h, RES_UK, "/subscribe Кіндрашівка").await;
    let reply = say(&h, OP3, "/sources").await;
    assert!(reply.text.contains("Недоступно"), "not an operator yet: {}", reply.text);
    let reply = say(&h, OP1, "/broadcast Кіндрашівка Вода буде о 18:00").await;
    assert!(reply.text.contains("Чернетка 1"), "{}", reply.text);
    let asked = h.telegram.wait_for_sent(OP2, 1, WAIT).await;
    assert!(asked.first().is_some_and(|m| m.text.contains("/approve 1")), "{:?}", texts(&asked));

    // The watcher's first look at the files is a reload of its own; after it, only
    // the edit below makes one.
    let mut reloads = h.daemon.reloads.clone();
    tokio::time::timeout(WAIT, reloads.wait_for(|g| *g >= 1)).await.expect("first reload").expect("daemon alive");
    let before = *reloads.borrow_and_update();
    let settings = std::fs::read_to_string(h.config_dir.join("sirena.toml")).expect("sirena.toml");
    let edited = settings.replacen(&format!("operators = [{OP1}, {OP2}]"), &format!("operators = [{OP3}, {OP1}]"), 1);
    assert_ne!(edited, settings, "the test must really change the list");
    h.write_config_file("sirena.toml", &edited).expect("write");
    tokio::time::timeout(WAIT, reloads.wait_for(|g| *g > before)).await.expect("reloaded").expect("daemon alive");

    // Removed: not allowed, the pending draft included; nothing goes out.
    let reply = say(&h, OP2, "/approve 1").await;
    assert!(reply.text.contains("Недоступно"), "{}", reply.text);
    let reply = say(&h, OP2, "/sources").await;
    assert!(reply.text.contains("Недоступно"), "{}", reply.text);
    let event = EventId("broadcast:1:started".into());
    assert_eq!(h.store().event(&event).await.expect("store"), None, "the removed operator approved nothing");
    let op2_had = h.telegram.sent_to(OP2).len();

    // Added: may approve, and the other operators (OP1, not OP2) are told before the
    // reply comes.
    let reply = say(&h, OP3, "/approve 1").await;
    assert!(reply.text.contains("схвалено"), "{}", reply.text);
    let got = h.telegram.wait_for_sent(RES_UK, 2, WAIT).await;
    assert!(got.get(1).is_some_and(|m| m.text.contains("Вода буде о 18:00")), "{:?}", texts(&got));
    assert!(
        h.telegram.sent_to(OP1).iter().any(|m| m.text.contains("схвалив")),
        "{:?}",
        texts(&h.telegram.sent_to(OP1))
    );

    // The daemon's notices go to the list in force. Each notice is sent to every
    // operator before the next is taken up, so once the second reached both, the
    // first has gone wherever it was going to go.
    let had = [OP1, OP3].map(|op| h.telegram.sent_to(op).len());
    for run in ["r1", "r2"] {
        let notice = sirena::pipeline::Notice::DrillReport { drill: "d".into(), run: run.into(), summary: "s".into() };
        h.daemon.notices.send(notice).expect("the operators' notices are listened to");
    }
    for (op, had) in [OP1, OP3].into_iter().zip(had) {
        let got = h.telegram.wait_for_sent(op, had + 2, WAIT).await;
        let told: Vec<&str> = got[had..].iter().map(|m| m.text.as_str()).collect();
        assert_eq!(told, ["Навчання d (r1): s", "Навчання d (r2): s"], "operator {op}");
    }
    assert_eq!(h.telegram.sent_to(OP2).len(), op2_had, "removed: {:?}", texts(&h.telegram.sent_to(OP2)));

    let audit = h.store().audit(None).await.expect("audit");
    let changed: Vec<&str> =
        audit.iter().filter(|e| e.action == "operators_changed").map(|e| e.what.as_str()).collect();
    assert_eq!(changed, vec![format!("added {OP3}; removed {OP2}")], "{audit:?}");
    h.shutdown().await;
}
