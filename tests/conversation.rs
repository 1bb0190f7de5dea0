//! The bot's `Conversation` called directly, on a real SQLite store and the shipped
//! region tree: a table of (state, input) → (reply, stored change) over every command
//! and button, the drill-down's callback data over the whole tree, and bad input.

mod common;

use std::sync::Arc;

use chrono::Utc;
use common::*;
use sirena::alerts::AlertKind;
use sirena::alerts::status::{ActiveAlert, SourceSeen, StatusView};
use sirena::bot::{Conversation, Input, Reply, Sender, drill};
use sirena::channels::{ChannelKind, Keyboard, ReplyButton};
use sirena::matcher::IndexDelta;
use sirena::messages::Lang;
use sirena::regions::RegionId;
use sirena::store::{SqliteStore, Store};
use tokio::sync::{mpsc, watch};

const KUPIANSK: &str = "UA63080090010026457";

struct Bot {
    conv: Conversation,
    store: Arc<dyn Store>,
    deltas: mpsc::UnboundedReceiver<IndexDelta>,
    status: watch::Sender<Arc<StatusView>>,
}

fn bot() -> Bot {
    let config = shipped();
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open_in_memory().expect("store"));
    let (tx, deltas) = mpsc::unbounded_channel();
    let (status, status_rx) = watch::channel(Arc::new(fresh_view(vec![])));
    let conv = Conversation {
        store: store.clone(),
        tree: watch::channel(config.tree.clone()).1,
        composer: watch::channel(config.composer.clone()).1,
        deltas: tx,
        status: status_rx,
    };
    Bot { conv, store, deltas, status }
}

/// A status view with a source that answered just now.
fn fresh_view(alerts: Vec<ActiveAlert>) -> StatusView {
    StatusView {
        alerts,
        orders: vec![],
        sources: vec![SourceSeen { source: "alerts_in_ua".into(), last_ok: Some(Utc::now()), held_since: None }],
        stale_after: chrono::Duration::minutes(5),
    }
}

fn rid(s: &str) -> RegionId {
    RegionId::parse(s).expect("id")
}

const CHAT: i64 = 501;

impl Bot {
    async fn say(&self, input: Input) -> Vec<Reply> {
        self.conv.handle(&Sender::private(CHAT, Some("uk")), input).await.expect("handled")
    }
    async fn text(&self, t: &str) -> Vec<Reply> {
        self.say(Input::Text(t.into())).await
    }
    async fn press(&self, data: &str) -> Vec<Reply> {
        self.say(Input::Button(data.into())).await
    }
    async fn id(&self) -> i64 {
        self.store.subscriber(ChannelKind::TelegramChat, &CHAT.to_string()).await.expect("store").expect("sub").id
    }
    async fn places(&self) -> Vec<String> {
        let id = self.id().await;
        self.store.place_settings(id).await.expect("places").iter().map(|p| p.region.to_string()).collect()
    }
    fn deltas(&mut self) -> Vec<IndexDelta> {
        std::iter::from_fn(|| self.deltas.try_recv().ok()).collect()
    }
}

fn all_text(r: &[Reply]) -> String {
    r.iter().map(|r| r.text.as_str()).collect::<Vec<_>>().join("\n---\n")
}

fn buttons(r: &Reply) -> Vec<(String, String)> {
    match &r.keyboard {
        Keyboard::Inline(rows) => rows.iter().flatten().map(|b| (b.label.clone(), b.data.clone())).collect(),
        _ => vec![],
    }
}

fn data_of(r: &[Reply]) -> Vec<String> {
    r.iter().flat_map(buttons).map(|(_, d)| d).collect()
}

#[tokio::test]
async fn every_command_and_button_answers_and_stores_what_it_says() {
    let mut b = bot();
    // /start for a new chat: welcome and the language buttons; nothing but the chat stored.
    let r = b.text("/start").await;
    assert_eq!(data_of(&r), vec!["lang:uk", "lang:en"], "{}", all_text(&r));
    assert!(b.places().await.is_empty());
    // English: asks where, with a location request and the oblasts.
    let r = b.press("lang:en").await;
    assert_eq!(r.len(), 2, "{}", all_text(&r));
    assert!(r[0].text.contains("Where do you live"), "{}", r[0].text);
    assert!(matches!(&r[0].keyboard, Keyboard::Reply(rows) if matches!(rows[0][0], ReplyButton::Location(_))));
    assert!(data_of(&r[1..]).iter().any(|d| d.starts_with("d:UA")), "oblasts to drill into: {:?}", data_of(&r));
    let id = b.id().await;
    assert_eq!(b.store.subscriber(ChannelKind::TelegramChat, &CHAT.to_string()).await.unwrap().unwrap().lang, Lang::En);
    assert!(b.store.chat_settings(id).await.unwrap().dialog.is_some(), "the dialog waits for a place");
    // A typed name in that dialog subscribes when unique, and says what is on there now.
    let kupiansk = ActiveAlert {
        kind: AlertKind::AirRaid,
        region: rid(KHARKIV_OBLAST),
        started_at: Utc::now(),
        level: None,
        threats: vec![],
        sources: vec!["alerts_in_ua".into()],
    };
    b.status.send_replace(Arc::new(fresh_view(vec![kupiansk])));
    let r = b.text("Kupiansk").await;
    let text = all_text(&r);
    assert!(text.contains("Kupiansk") && text.contains("Raion"), "named with raion: {text}");
    assert!(text.contains("Air raid") && text.contains("source: alerts.in.ua"), "what is active now: {text}");
    assert_eq!(r[0].keyboard, Keyboard::Remove, "the location request goes away");
    assert_eq!(b.places().await, vec![KUPIANSK]);
    assert!(b.store.chat_settings(id).await.unwrap().dialog.is_none(), "the dialog is over");
    assert!(matches!(&b.deltas()[..], [IndexDelta::Added { places, .. }] if places == &[rid(KUPIANSK)]));

    // (input, words the reply must have, places after)
    let kind_no = |k: AlertKind| AlertKind::FILTERABLE.iter().position(|x| *x == k).unwrap();
    let steps: Vec<(Input, &str, Vec<&str>)> = vec![
        (Input::Text("/subscribe Кіндрашівка".into()), "Kindrashivka", vec![KUPIANSK, KINDRASHIVKA]),
        (Input::Text("/subscribe Кіндрашівка".into()), "already", vec![KUPIANSK, KINDRASHIVKA]),
        (Input::Text("/list".into()), "Kindrashivka", vec![KUPIANSK, KINDRASHIVKA]),
        (Input::Button(format!("lbl:{KINDRASHIVKA}")), "What shall I call", vec![KUPIANSK, KINDRASHIVKA]),
        (Input::Text("parents <b>&".into()), "parents &lt;b&gt;&amp;", vec![KUPIANSK, KINDRASHIVKA]),
        (Input::Button(format!("f:{KINDRASHIVKA}")), "Which alerts", vec![KUPIANSK, KINDRASHIVKA]),
        (
            Input::Button(format!("fk:{KINDRASHIVKA}:{}", kind_no(AlertKind::Artillery))),
            "Saved",
            vec![KUPIANSK, KINDRASHIVKA],
        ),
        (Input::Text("/quiet 23:00-07:00".into()), "23:00–07:00", vec![KUPIANSK, KINDRASHIVKA]),
        (Input::Text("/quiet 25:00-7".into()), "/quiet 23:00-07:00", vec![KUPIANSK, KINDRASHIVKA]),
        (Input::Text("/status".into()), "Air raid", vec![KUPIANSK, KINDRASHIVKA]),
        (Input::Text("/stop".into()), "/start", vec![KUPIANSK, KINDRASHIVKA]),
        (Input::Text("/help".into()), "/subscribe", vec![KUPIANSK, KINDRASHIVKA]),
        (Input::Text("/start".into()), "back on", vec![KUPIANSK, KINDRASHIVKA]),
        (Input::Button(format!("rm:{KUPIANSK}")), "No more alerts", vec![KINDRASHIVKA]),
        (Input::Button(format!("rm:{KUPIANSK}")), "out of date", vec![KINDRASHIVKA]),
        (Input::Text("/lang uk".into()), "українська", vec![KINDRASHIVKA]),
        (Input::Text("/weather".into()), "/weather", vec![KINDRASHIVKA]),
        (Input::Text("/forget".into()), "Видалити", vec![KINDRASHIVKA]),
        (Input::Button("forget:no".into()), "Нічого", vec![KINDRASHIVKA]),
        (Input::Text("/unsubscribe Кіндрашівка".into()), "Більше не", vec![]),
    ];
    for (input, says, places) in steps {
        let shown = format!("{input:?}");
        let r = b.say(input).await;
        let text = all_text(&r);
        assert!(text.contains(says), "{shown}: reply lacks {says:?}: {text}");
        assert_eq!(b.places().await, places, "{shown}");
    }
    // What the steps stored, besides the places.
    b.text("/subscribe Кіндрашівка").await;
    let settings = b.store.place_settings(id).await.unwrap();
    assert_eq!(settings[0].label, None, "the label went with the removed place");
    let chat = b.store.chat_settings(id).await.unwrap();
    assert_eq!(chat.quiet.map(|q| q.to_string()).as_deref(), Some("23:00–07:00"), "25:00-7 stored nothing");
    assert!(!chat.paused);
    assert!(b.store.subscriber(ChannelKind::TelegramChat, &CHAT.to_string()).await.unwrap().unwrap().active);
    // The label and filter, stored on a place still there.
    b.press(&format!("lbl:{KINDRASHIVKA}")).await;
    b.text("батьки").await;
    b.press(&format!("fk:{KINDRASHIVKA}:{}", kind_no(AlertKind::AirRaid))).await;
    let s = b.store.place_settings(id).await.unwrap();
    assert_eq!(s[0].label.as_deref(), Some("батьки"));
    let kinds = s[0].kinds.clone().expect("filtered");
    assert!(!kinds.contains(&AlertKind::AirRaid) && kinds.contains(&AlertKind::Evacuation), "{kinds:?}");
    b.deltas();
    b.press(&format!("fa:{KINDRASHIVKA}")).await;
    assert_eq!(b.store.place_settings(id).await.unwrap()[0].kinds, None);
    assert!(b.deltas().iter().any(|d| matches!(d, IndexDelta::Kinds { kinds: None, .. })));
    // /forget, confirmed: nothing left, and the index is told.
    b.press("forget:yes").await;
    assert!(b.store.place_settings(id).await.unwrap().is_empty());
    assert_eq!(b.store.chat_settings(id).await.unwrap(), Default::default());
    let d = b.deltas();
    assert!(
        d.iter().any(|d| matches!(d, IndexDelta::Removed { places, .. } if places == &[rid(KINDRASHIVKA)])),
        "{d:?}"
    );
    assert!(d.contains(&IndexDelta::Deactivated(id)));
}

#[tokio::test]
async fn a_paused_chat_stays_paused_until_start() {
    let mut b = bot();
    b.text("/subscribe Кіндрашівка").await;
    b.text("/stop").await;
    let id = b.id().await;
    assert!(b.deltas().contains(&IndexDelta::Deactivated(id)));
    for input in ["/status", "/list", "Харків", "/help"] {
        b.text(input).await;
        let sub = b.store.subscriber(ChannelKind::TelegramChat, &CHAT.to_string()).await.unwrap().unwrap();
        assert!(!sub.active, "{input} resumed a paused chat");
    }
    assert!(!b.deltas().iter().any(|d| matches!(d, IndexDelta::Reactivated(_))));
    b.text("/start").await;
    assert!(b.store.subscriber(ChannelKind::TelegramChat, &CHAT.to_string()).await.unwrap().unwrap().active);
    assert!(b.deltas().contains(&IndexDelta::Reactivated(id)));
    assert_eq!(b.places().await, vec![KINDRASHIVKA], "places kept through the pause");
}

#[tokio::test]
async fn in_a_group_only_admins_change_subscriptions() {
    let b = bot();
    let member = Sender { chat: -700, user: Some(9), app_lang: Some("uk".into()), group: true, admin: false };
    let admin = Sender { admin: true, user: Some(8), ..member.clone() };
    for input in ["/subscribe Кіндрашівка", "/stop", "/quiet 23:00-07:00", "/forget", "/unsubscribe"] {
        let r = b.conv.handle(&member, Input::Text(input.into())).await.unwrap();
        assert!(all_text(&r).contains("адміністратори"), "{input}: {}", all_text(&r));
    }
    let r = b.conv.handle(&member, Input::Button(format!("sub:{KINDRASHIVKA}"))).await.unwrap();
    assert!(all_text(&r).contains("адміністратори"));
    let id = b.store.subscriber(ChannelKind::TelegramChat, "-700").await.unwrap().unwrap().id;
    assert!(b.store.places(id).await.unwrap().is_empty(), "a member changed nothing");
    assert_eq!(b.store.chat_settings(id).await.unwrap(), Default::default());
    let r = b.conv.handle(&member, Input::Text("/status".into())).await.unwrap();
    assert!(!all_text(&r).contains("адміністратори"), "reading is for everyone");
    b.conv.handle(&admin, Input::Text("/subscribe Кіндрашівка".into())).await.unwrap();
    assert_eq!(b.store.places(id).await.unwrap(), vec![rid(KINDRASHIVKA)]);
}

#[tokio::test]
async fn bad_input_gets_help_and_stores_nothing() {
    let b = bot();
    let long = "ї".repeat(5_000);
    let cases: Vec<(Input, &str)> = vec![
        (Input::Text(String::new()), "/subscribe"),
        (Input::Text("   ".into()), "/subscribe"),
        (Input::Text(long), "задовге"),
        (Input::Text("💥🔥😀".into()), "💥🔥😀"),
        (Input::Text("<b>Харків</b> & <script>".into()), "&lt;b&gt;"),
        (Input::Text("مرحبا בעולם".into()), "مرحبا"),
        (Input::Text("/quiet 25:00-7".into()), "/quiet 23:00-07:00"),
        (Input::Button("d:UA99999999999999999:0".into()), "застаріла"),
        (Input::Button(format!("d:{KHARKIV_OBLAST}:999")), "застаріла"),
        (Input::Button("sub:not-a-region".into()), "застаріла"),
        (Input::Button(format!("fk:{KINDRASHIVKA}:1")), "застаріла"),
        (Input::Button(format!("fk:{KINDRASHIVKA}:99")), "застаріла"),
        (Input::Button("lbl:".into()), "застаріла"),
        (Input::Button("🙂".repeat(20)), "застаріла"),
        (Input::NotText, "текст"),
    ];
    for (input, says) in cases {
        let shown: String = format!("{input:?}").chars().take(60).collect();
        let r = b.say(input).await;
        assert_eq!(r.len(), 1, "{shown}");
        let text = &r[0].text;
        assert!(text.contains(says), "{shown}: {text}");
        assert!(!text.contains("<script>") && !text.contains("<b>Харків"), "{shown}: unescaped: {text}");
        sirena::sim::telegram::parse_html(text).unwrap_or_else(|e| panic!("{shown}: not valid Telegram HTML: {e}"));
    }
    let id = b.id().await;
    assert!(b.places().await.is_empty());
    assert_eq!(b.store.chat_settings(id).await.unwrap(), Default::default(), "nothing stored for bad input");
}

/// Pages through a drill-down from `r` until a button sends `want`, and presses it.
async fn seek(b: &Bot, mut r: Vec<Reply>, want: &str) -> Vec<Reply> {
    for _ in 0..20 {
        if data_of(&r).iter().any(|d| d == want) {
            return b.press(want).await;
        }
        let next = buttons(r.last().expect("reply")).into_iter().find(|(l, _)| l == "▶");
        let next = next.unwrap_or_else(|| panic!("no {want} on any page: {}", all_text(&r)));
        r = b.press(&next.1).await;
    }
    panic!("no {want} in 20 pages");
}

#[tokio::test]
async fn onboarding_by_drill_down_reaches_a_village() {
    let b = bot();
    b.text("/start").await;
    let r = b.press("lang:uk").await;
    let r = seek(&b, r, &format!("d:{KHARKIV_OBLAST}:0")).await;
    let r = seek(&b, r, "d:UA63080000000032022:0").await;
    let r = seek(&b, r, &format!("d:{KINDRASHIVKA_HROMADA}:0")).await;
    let r = seek(&b, r, &format!("sub:{KINDRASHIVKA}")).await;
    assert!(r[0].text.contains("Кіндрашівка") && r[0].text.contains("громада"), "{}", r[0].text);
    assert_eq!(r[0].keyboard, Keyboard::Remove);
    assert_eq!(b.places().await, vec![KINDRASHIVKA]);
}

#[test]
fn drill_down_callback_data_fits_64_bytes_over_the_whole_tree() {
    let config = shipped();
    let tree = &config.tree;
    let mut parents: Vec<Option<RegionId>> = vec![None];
    parents.extend(tree.iter().map(|r| Some(r.id.clone())));
    let mut pages_seen = 0;
    for parent in &parents {
        for lang in [Lang::Uk, Lang::En] {
            let mut page = 0;
            while let Some(reply) = drill(tree, &config.composer, lang, parent.as_ref(), page) {
                for (label, data) in buttons(&reply) {
                    assert!(data.len() <= 64, "{label}: {data} is {} bytes", data.len());
                    assert!(!label.is_empty());
                }
                assert!(buttons(&reply).len() <= sirena::bot::PAGE + 4);
                page += 1;
                pages_seen += 1;
            }
        }
    }
    assert!(pages_seen > 20, "drilled {pages_seen} pages");
}

/// /help names the fallbacks someone losing internet needs; an unknown command points
/// to /help; /status names the source as residents know it and dates an alert older
/// than a day, which "since 19:45" alone would place today.
#[tokio::test]
async fn help_names_the_fallbacks_and_status_dates_an_old_alert_by_its_known_source() {
    let b = bot();
    let help = all_text(&b.text("/help").await);
    assert!(help.contains("/sms — SMS-резерв") && help.contains("/drills on"), "{help}");
    let r = all_text(&b.text("/nonsense").await);
    assert!(r.contains("Не знаю команди /nonsense. Усі команди: /help"), "{r}");

    b.text("/subscribe Кіндрашівка").await;
    assert_eq!(b.places().await, vec![KINDRASHIVKA]);
    let alert = |started_at, source: &str| ActiveAlert {
        kind: AlertKind::AirRaid,
        region: rid(KHARKIV_OBLAST),
        started_at,
        level: None,
        threats: vec![],
        sources: vec![source.into()],
    };
    // 16:45 UTC on 24 February 2022 is 18:45 in Kyiv (UTC+2 in winter).
    let old = chrono::DateTime::parse_from_rfc3339("2022-02-24T16:45:00Z").expect("date").to_utc();
    b.status.send_replace(Arc::new(fresh_view(vec![alert(old, "ukrainealarm")])));
    let r = all_text(&b.text("/status").await);
    assert!(r.contains("з 24.02.2022 18:45 (джерело: «Повітряна тривога» (ukrainealarm))"), "{r}");

    let recent = Utc::now() - chrono::Duration::minutes(30);
    b.status.send_replace(Arc::new(fresh_view(vec![alert(recent, "alerts_in_ua")])));
    let r = all_text(&b.text("/status").await);
    let hhmm = sirena::messages::kyiv(recent).format("%H:%M").to_string();
    assert!(r.contains(&format!("з {hhmm} (джерело: alerts.in.ua)")), "today's alert gets its time only: {r}");
}
