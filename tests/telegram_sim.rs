//! Drives the Telegram simulator with the real teloxide client, so the
//! simulator's wire format is checked against what sirena's adapter parses.

mod common;

use std::time::{Duration, Instant};

use common::telegram::Harness;

use serde_json::json;
use sirena::sim::telegram::{FaultTarget, SendFault, TelegramSimConfig};
use teloxide::dispatching::UpdateFilterExt;
use teloxide::prelude::*;
use teloxide::types::{
    InlineKeyboardButton, InlineKeyboardMarkup, MaybeInaccessibleMessage, MessageEntityKind, ParseMode, Recipient,
    Seconds, UpdateKind,
};
use teloxide::{ApiError, RequestError};

type TestResult = Result<(), Box<dyn std::error::Error + Send + Sync>>;

impl Harness {
    /// `sendMessage` with a JSON body over plain reqwest. A connection the
    /// simulator hung up on is never pooled again, so sharing one client
    /// across faults is safe.
    async fn raw_send(&self, body: serde_json::Value) -> Result<reqwest::Response, reqwest::Error> {
        self.http.post(self.send_url()).json(&body).send().await
    }

    /// `sendMessage` with a form body, values as strings.
    async fn raw_form(&self, form: &'static str) -> Result<reqwest::Response, reqwest::Error> {
        self.http
            .post(self.send_url())
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form)
            .send()
            .await
    }

    fn send_url(&self) -> String {
        format!("{}/bot{}/sendMessage", self.sim.base_url(), TelegramSimConfig::default().token)
    }
}

/// Waits for something observable, failing the test after five seconds.
async fn wait_until(what: &str, done: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Sends one message to each chat at once and counts (accepted, 429).
async fn burst(bot: &Bot, chats: std::ops::RangeInclusive<i64>, paid: bool) -> Result<(u32, u32), RequestError> {
    let mut set = tokio::task::JoinSet::new();
    for chat in chats {
        let bot = bot.clone();
        set.spawn(async move { bot.send_message(ChatId(chat), "alert").allow_paid_broadcast(paid).await });
    }
    let (mut ok, mut limited) = (0, 0);
    while let Some(res) = set.join_next().await {
        match res.expect("send task") {
            Ok(_) => ok += 1,
            Err(RequestError::RetryAfter(_)) => limited += 1,
            Err(e) => return Err(e),
        }
    }
    Ok((ok, limited))
}

#[tokio::test]
async fn get_me_describes_the_bot() -> TestResult {
    let h = Harness::new().await?;
    let me = h.bot.get_me().await?;
    assert!(me.is_bot);
    assert_eq!(me.username(), "sirena_sim_bot");
    assert_eq!(me.id, UserId(123_456));
    h.stop().await;
    Ok(())
}

#[tokio::test]
async fn send_message_is_delivered_and_recorded() -> TestResult {
    let h = Harness::new().await?;
    h.sim.add_user(1, "Olena", Some("uk"));
    let msg = h
        .bot
        .send_message(ChatId(1), "<b>Повітряна тривога</b> &amp; укриття")
        .parse_mode(ParseMode::Html)
        .disable_notification(true)
        .await?;
    assert_eq!(msg.chat.id, ChatId(1));
    // Telegram returns the visible text, markup parsed out.
    assert_eq!(msg.text(), Some("Повітряна тривога & укриття"));
    assert_eq!(msg.from.as_ref().map(|u| u.is_bot), Some(true));

    let sent = h.sim.sent_to(1);
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].message_id, msg.id.0 as i64);
    assert_eq!(sent[0].text, "<b>Повітряна тривога</b> &amp; укриття");
    assert_eq!(sent[0].parse_mode.as_deref(), Some("HTML"));
    assert!(sent[0].disable_notification);
    let stats = h.sim.stats();
    assert_eq!((stats.requests, stats.sent), (1, 1));
    let reqs = h.sim.requests();
    assert_eq!(reqs[0].method, "SendMessage");
    assert_eq!(reqs[0].body["chat_id"], 1);
    h.stop().await;
    Ok(())
}

#[tokio::test]
async fn second_message_to_a_chat_within_a_second_is_rate_limited() -> TestResult {
    let h = Harness::new().await?;
    h.sim.add_user(7, "Taras", None);
    h.bot.send_message(ChatId(7), "one").await?;
    let err = h.bot.send_message(ChatId(7), "two").await.expect_err("per-chat limit");
    assert!(matches!(err, RequestError::RetryAfter(s) if s == Seconds::from_seconds(1)), "{err:?}");
    assert_eq!(h.sim.stats().rate_limited, 1);
    assert_eq!(h.sim.sent_to(7).len(), 1);
    // The rejected send is still on record.
    let reqs = h.sim.requests();
    assert_eq!(reqs.len(), 2);
    assert_eq!(reqs[1].status, 429);
    h.stop().await;
    Ok(())
}

#[tokio::test]
async fn global_limit_admits_thirty_per_second() -> TestResult {
    let h = Harness::new().await?;
    for chat in 1..=31 {
        h.sim.add_user(chat, "User", None);
    }
    let mut set = tokio::task::JoinSet::new();
    for chat in 1..=31 {
        let bot = h.bot.clone();
        set.spawn(async move { bot.send_message(ChatId(chat), "alert").await });
    }
    let (mut ok, mut limited) = (0, 0);
    while let Some(res) = set.join_next().await {
        match res? {
            Ok(_) => ok += 1,
            Err(RequestError::RetryAfter(_)) => limited += 1,
            Err(e) => return Err(e.into()),
        }
    }
    assert_eq!((ok, limited), (30, 1));
    assert_eq!(h.sim.sent().len(), 30);
    assert_eq!(h.sim.stats().rate_limited, 1);
    h.stop().await;
    Ok(())
}

#[tokio::test]
async fn group_limit_is_per_minute() -> TestResult {
    let h = Harness::with(TelegramSimConfig { group_per_min: 2, ..TelegramSimConfig::default() }).await?;
    h.sim.add_group(-100_500, "Будинок 5");
    // Groups have no per-second limit of their own, only the per-minute one.
    let msg = h.bot.send_message(ChatId(-100_500), "a").await?;
    assert_eq!(msg.chat.title(), Some("Будинок 5"));
    h.bot.send_message(ChatId(-100_500), "b").await?;
    let err = h.bot.send_message(ChatId(-100_500), "c").await.expect_err("group limit");
    match err {
        RequestError::RetryAfter(s) => assert!(s.seconds() > 50, "{s}"),
        e => return Err(e.into()),
    }
    h.stop().await;
    Ok(())
}

#[tokio::test]
async fn blocked_and_deactivated_users_are_forbidden() -> TestResult {
    let h = Harness::new().await?;
    h.sim.add_user(10, "A", None);
    h.sim.add_user(11, "B", None);
    h.sim.block(10);
    h.sim.deactivate(11);
    let err = h.bot.send_message(ChatId(10), "x").await.expect_err("blocked");
    assert!(matches!(err, RequestError::Api(ApiError::BotBlocked)), "{err:?}");
    let err = h.bot.send_message(ChatId(11), "x").await.expect_err("deactivated");
    assert!(matches!(err, RequestError::Api(ApiError::UserDeactivated)), "{err:?}");
    assert_eq!(h.sim.stats().forbidden, 2);
    assert!(h.sim.sent().is_empty());

    // Writing to the bot again means the user restarted it.
    h.sim.user_sends(10, "/start");
    h.bot.send_message(ChatId(10), "welcome back").await?;
    h.stop().await;
    Ok(())
}

#[tokio::test]
async fn unknown_chat_is_not_found() -> TestResult {
    let h = Harness::new().await?;
    let err = h.bot.send_message(ChatId(999), "x").await.expect_err("unknown");
    assert!(matches!(err, RequestError::Api(ApiError::ChatNotFound)), "{err:?}");
    h.stop().await;
    Ok(())
}

#[tokio::test]
async fn text_length_counts_utf16_units() -> TestResult {
    let h = Harness::new().await?;
    for chat in 1..=4 {
        h.sim.add_user(chat, "U", None);
    }
    let err = h.bot.send_message(ChatId(1), "a".repeat(4097)).await.expect_err("too long");
    assert!(matches!(err, RequestError::Api(ApiError::MessageIsTooLong)), "{err:?}");
    // Cyrillic is one unit per letter: 4096 letters fit.
    h.bot.send_message(ChatId(2), "я".repeat(4096)).await?;
    // An emoji is two units: 2049 of them are 4098.
    let err = h.bot.send_message(ChatId(3), "🚨".repeat(2049)).await.expect_err("too long");
    assert!(matches!(err, RequestError::Api(ApiError::MessageIsTooLong)), "{err:?}");
    let err = h.bot.send_message(ChatId(4), "").await.expect_err("empty");
    assert!(matches!(err, RequestError::Api(ApiError::MessageTextIsEmpty)), "{err:?}");
    assert_eq!(h.sim.stats().bad_requests, 3);
    h.stop().await;
    Ok(())
}

#[tokio::test]
async fn html_is_validated() -> TestResult {
    let h = Harness::new().await?;
    for chat in 1..=5 {
        h.sim.add_user(chat, "U", None);
    }
    for (chat, bad) in [(1, "<b>x"), (2, "1 < 2"), (3, "Tom & Jerry"), (4, "<h1>x</h1>")] {
        let err = h.bot.send_message(ChatId(chat), bad).parse_mode(ParseMode::Html).await.expect_err(bad);
        assert!(
            matches!(&err, RequestError::Api(ApiError::CantParseEntities(d)) if d.starts_with("Bad Request: can't parse entities: ")),
            "{bad}: {err:?}"
        );
    }
    let msg = h
        .bot
        .send_message(ChatId(5), "&lt;b&gt; is escaped, <a href=\"https://x.ua/?a=1&b=2\">link</a>")
        .parse_mode(ParseMode::Html)
        .await?;
    assert_eq!(msg.text(), Some("<b> is escaped, link"));
    // Without a parse mode the same characters are plain text.
    h.bot.send_message(ChatId(1), "1 < 2 & <b>x").await?;
    h.stop().await;
    Ok(())
}

#[tokio::test]
async fn wrong_token_is_unauthorized() -> TestResult {
    let h = Harness::new().await?;
    let bot = Bot::new("654321:WRONG").set_api_url(reqwest::Url::parse(&h.sim.base_url())?);
    let err = bot.get_me().await.expect_err("wrong token");
    assert!(matches!(err, RequestError::Api(ApiError::InvalidToken)), "{err:?}");
    assert_eq!(h.sim.stats().unauthorized, 1);
    h.stop().await;
    Ok(())
}

#[tokio::test]
async fn a_revoked_token_is_unauthorized_until_restored() -> TestResult {
    let h = Harness::new().await?;
    let url = format!("{}/bot{}/getMe", h.sim.base_url(), TelegramSimConfig::default().token);
    let client = reqwest::Client::new();
    assert_eq!(client.post(&url).send().await?.status(), 200);
    h.sim.revoke_token();
    let resp = client.post(&url).send().await?;
    assert_eq!(resp.status(), 401);
    let body: serde_json::Value = resp.json().await?;
    assert_eq!(body, serde_json::json!({"ok": false, "error_code": 401, "description": "Unauthorized"}));
    h.sim.restore_token();
    assert_eq!(client.post(&url).send().await?.status(), 200);
    assert_eq!(h.sim.stats().unauthorized, 1);
    h.stop().await;
    Ok(())
}

#[tokio::test]
async fn unknown_method_and_plain_http_forms() -> TestResult {
    let h = Harness::new().await?;
    h.sim.add_user(5, "U", None);
    let client = reqwest::Client::new();
    let base = format!("{}/bot123456:TEST-TOKEN", h.sim.base_url());

    let resp = client.post(format!("{base}/sendPigeon")).send().await?;
    assert_eq!(resp.status(), 404);
    let body: serde_json::Value = resp.json().await?;
    assert_eq!(body, serde_json::json!({"ok": false, "error_code": 404, "description": "Not Found"}));

    // GET with query parameters, as curl users do.
    let resp = client.get(format!("{base}/sendMessage?chat_id=5&text=hi%20there")).send().await?;
    assert_eq!(resp.status(), 200);
    let body: serde_json::Value = resp.json().await?;
    assert_eq!(body["result"]["text"], "hi there");

    // A form body; the next send is inside the per-chat window.
    let resp = client
        .post(format!("{base}/sendMessage"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("chat_id=5&text=again")
        .send()
        .await?;
    assert_eq!(resp.status(), 429);
    let body: serde_json::Value = resp.json().await?;
    assert_eq!(body["parameters"]["retry_after"], 1);
    assert_eq!(body["description"], "Too Many Requests: retry after 1");
    h.stop().await;
    Ok(())
}

#[tokio::test]
async fn user_message_arrives_as_a_command_update() -> TestResult {
    let h = Harness::new().await?;
    h.sim.add_user(42, "Оксана", Some("uk"));
    h.sim.user_sends(42, "/subscribe Київ");
    let updates = h.bot.get_updates().await?;
    assert_eq!(updates.len(), 1);
    let UpdateKind::Message(msg) = &updates[0].kind else {
        panic!("expected a message: {:?}", updates[0]);
    };
    assert_eq!(msg.text(), Some("/subscribe Київ"));
    assert_eq!(msg.chat.id, ChatId(42));
    let from = msg.from.as_ref().expect("from");
    assert_eq!(from.language_code.as_deref(), Some("uk"));
    assert_eq!(from.first_name, "Оксана");
    let entities = msg.parse_entities().expect("entities");
    assert_eq!(entities.len(), 1);
    assert_eq!(*entities[0].kind(), MessageEntityKind::BotCommand);
    assert_eq!(entities[0].text(), "/subscribe");

    // Confirming by offset drops it.
    let next = updates[0].id.as_offset();
    let again = h.bot.get_updates().offset(next).await?;
    assert!(again.is_empty());
    h.stop().await;
    Ok(())
}

#[tokio::test]
async fn long_poll_wakes_on_a_new_update() -> TestResult {
    let h = Harness::new().await?;
    h.sim.add_user(3, "U", None);
    let bot = h.bot.clone();
    let poll = tokio::spawn(async move { bot.get_updates().timeout(10).await });
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!poll.is_finished(), "poll waits while there is nothing");
    h.sim.user_sends(3, "hello");
    let updates = tokio::time::timeout(Duration::from_secs(3), poll).await???;
    assert_eq!(updates.len(), 1);

    // A long poll in flight does not hold up shutdown.
    let bot = h.bot.clone();
    let next = updates[0].id.as_offset();
    let poll = tokio::spawn(async move { bot.get_updates().offset(next).timeout(30).await });
    tokio::time::sleep(Duration::from_millis(100)).await;
    h.stop().await;
    let updates = tokio::time::timeout(Duration::from_secs(3), poll).await???;
    assert!(updates.is_empty());
    Ok(())
}

#[tokio::test]
async fn newer_poll_terminates_older_one() -> TestResult {
    let h = Harness::new().await?;
    let bot = h.bot.clone();
    let first = tokio::spawn(async move { bot.get_updates().timeout(10).await });
    wait_until("the first poll to wait", || h.sim.polls_live() == 1).await;
    let second = h.bot.get_updates().await?;
    assert!(second.is_empty());
    let err = tokio::time::timeout(Duration::from_secs(3), first).await??.expect_err("terminated");
    assert!(matches!(err, RequestError::Api(ApiError::TerminatedByOtherGetUpdates)), "{err:?}");
    let stats = h.sim.stats();
    assert_eq!((stats.overlapping_polls, stats.poll_conflicts), (1, 1), "{stats:?}");
    h.stop().await;
    Ok(())
}

/// A poller that went away (its process died, or it stepped down) is no second
/// consumer: the next poll is not an overlap and nobody gets a 409.
#[tokio::test]
async fn a_poll_whose_client_hung_up_does_not_overlap_the_next() -> TestResult {
    let h = Harness::new().await?;
    let bot = h.bot.clone();
    let first = tokio::spawn(async move { bot.get_updates().timeout(10).await });
    wait_until("the first poll to wait", || h.sim.polls_live() == 1).await;
    first.abort();
    wait_until("the hung-up poll to end", || h.sim.polls_live() == 0).await;
    assert!(h.bot.get_updates().await?.is_empty());
    let stats = h.sim.stats();
    assert_eq!((stats.overlapping_polls, stats.poll_conflicts), (0, 0), "{stats:?}");
    h.stop().await;
    Ok(())
}

#[tokio::test]
async fn button_press_arrives_as_a_callback_query() -> TestResult {
    let h = Harness::new().await?;
    h.sim.add_user(8, "U", Some("en"));
    let keyboard = InlineKeyboardMarkup::new([[InlineKeyboardButton::callback("I am safe", "safe:1")]]);
    let sent = h.bot.send_message(ChatId(8), "Are you safe?").reply_markup(keyboard.clone()).await?;
    assert_eq!(sent.reply_markup(), Some(&keyboard));
    h.sim.user_presses(8, sent.id.0 as i64, "safe:1");

    let updates = h.bot.get_updates().await?;
    let UpdateKind::CallbackQuery(q) = &updates[0].kind else {
        panic!("expected a callback query: {:?}", updates[0]);
    };
    assert_eq!(q.data.as_deref(), Some("safe:1"));
    assert_eq!(q.from.id, UserId(8));
    let Some(MaybeInaccessibleMessage::Regular(m)) = &q.message else {
        panic!("expected the bot's message: {:?}", q.message);
    };
    assert_eq!(m.id, sent.id);

    h.bot.answer_callback_query(q.id.clone()).text("Thanks").await?;
    let err = h.bot.answer_callback_query(q.id.clone()).await.expect_err("answered twice");
    assert!(matches!(err, RequestError::Api(ApiError::InvalidQueryId)), "{err:?}");

    // Editing the message: the keyboard goes, the text changes.
    let edited = h.bot.edit_message_text(ChatId(8), sent.id, "Marked safe").await?;
    assert_eq!(edited.text(), Some("Marked safe"));
    assert!(edited.reply_markup().is_none());
    let err = h.bot.edit_message_text(ChatId(8), sent.id, "Marked safe").await.expect_err("not modified");
    assert!(matches!(err, RequestError::Api(ApiError::MessageNotModified)), "{err:?}");

    // Callback data over 64 bytes is refused, as by Telegram.
    let too_big = InlineKeyboardMarkup::new([[InlineKeyboardButton::callback("x", "d".repeat(65))]]);
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let err = h.bot.send_message(ChatId(8), "x").reply_markup(too_big).await.expect_err("data too long");
    assert!(matches!(err, RequestError::Api(ApiError::ButtonDataInvalid)), "{err:?}");
    h.stop().await;
    Ok(())
}

#[tokio::test]
async fn commands_and_webhook_round_trip() -> TestResult {
    let h = Harness::new().await?;
    let cmds =
        vec![teloxide::types::BotCommand::new("start", "Почати"), teloxide::types::BotCommand::new("stop", "Зупинити")];
    h.bot.set_my_commands(cmds.clone()).await?;
    assert_eq!(h.bot.get_my_commands().await?, cmds);
    let err = h
        .bot
        .set_my_commands(vec![teloxide::types::BotCommand::new("Bad-Name", "x")])
        .await
        .expect_err("invalid command");
    assert!(matches!(err, RequestError::Api(_)), "{err:?}");

    // teloxide sends setWebhook as multipart/form-data.
    h.bot.set_webhook(reqwest::Url::parse("https://example.invalid/hook")?).await?;
    let reqs = h.sim.requests();
    let set = reqs.iter().find(|r| r.method == "SetWebhook").expect("recorded");
    assert_eq!(set.body["url"], "https://example.invalid/hook");
    let err = h.bot.get_updates().await.expect_err("webhook active");
    assert!(matches!(err, RequestError::Api(_)), "{err:?}");
    assert!(h.bot.get_webhook_info().await?.url.is_some());
    h.bot.delete_webhook().await?;
    assert!(h.bot.get_webhook_info().await?.url.is_none());
    h.bot.get_updates().await?;
    h.stop().await;
    Ok(())
}

#[tokio::test]
async fn wait_for_sent_returns_when_enough_or_on_timeout() -> TestResult {
    let h = Harness::new().await?;
    h.sim.add_user(4, "U", None);
    let bot = h.bot.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(100)).await;
        bot.send_message(ChatId(4), "late").await
    });
    let got = h.sim.wait_for_sent(4, 1, Duration::from_secs(3)).await;
    assert_eq!(got.len(), 1);
    let got = h.sim.wait_for_sent(4, 2, Duration::from_millis(100)).await;
    assert_eq!(got.len(), 1);
    h.stop().await;
    Ok(())
}

/// The whole teloxide start-up and polling loop against the simulator.
#[tokio::test]
async fn dispatcher_answers_a_command() -> TestResult {
    let h = Harness::new().await?;
    h.sim.add_user(77, "Ірина", Some("uk"));
    let handler = Update::filter_message().endpoint(|bot: Bot, msg: Message| async move {
        if msg.text() == Some("/start") {
            bot.send_message(msg.chat.id, "Вітаю").await?;
        }
        respond(())
    });
    let mut dispatcher = Dispatcher::builder(h.bot.clone(), handler).build();
    let shutdown = dispatcher.shutdown_token();
    let running = tokio::spawn(async move { dispatcher.dispatch().await });

    h.sim.user_sends(77, "/start");
    let got = h.sim.wait_for_sent(77, 1, Duration::from_secs(5)).await;
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].text, "Вітаю");

    // A press on a message is not delivered: the handler only takes
    // messages, so teloxide asked for `allowed_updates: ["message"]`.
    h.sim.user_presses(77, got[0].message_id, "x");
    tokio::time::sleep(Duration::from_millis(200)).await;

    let stopping = shutdown.shutdown().map_err(|e| format!("{e:?}"))?;
    tokio::time::timeout(Duration::from_secs(5), stopping).await?;
    tokio::time::timeout(Duration::from_secs(5), running).await??;

    let methods: Vec<String> = h.sim.requests().into_iter().map(|r| r.method).collect();
    assert_eq!(&methods[..3], ["GetWebhookInfo", "GetMe", "GetUpdates"]);
    let first_poll = h.sim.requests().into_iter().find(|r| r.method == "GetUpdates");
    let first_poll = first_poll.expect("a poll");
    assert_eq!(first_poll.body["timeout"], 10);
    assert_eq!(first_poll.body["allowed_updates"], serde_json::json!(["message"]));
    assert!(!methods.iter().any(|m| m == "AnswerCallbackQuery"));
    h.stop().await;
    Ok(())
}

#[tokio::test]
async fn unflagged_burst_over_the_global_limit_is_refused() -> TestResult {
    let h = Harness::new().await?;
    for chat in 1..=40 {
        h.sim.add_user(chat, "User", None);
    }
    let (ok, limited) = burst(&h.bot, 1..=40, false).await?;
    assert!(limited >= 10, "{limited} of 40 refused");
    assert!(ok <= 30, "{ok} accepted");
    assert_eq!(h.sim.stats().paid, 0);
    h.stop().await;
    Ok(())
}

#[tokio::test]
async fn paid_broadcast_lifts_the_global_limit() -> TestResult {
    let h = Harness::new().await?;
    for chat in 1..=40 {
        h.sim.add_user(chat, "User", None);
    }
    let (ok, limited) = burst(&h.bot, 1..=40, true).await?;
    assert_eq!((ok, limited), (40, 0));
    let stats = h.sim.stats();
    assert_eq!((stats.sent, stats.paid, stats.rate_limited), (40, 40, 0));
    let flagged = h.sim.send_requests().iter().filter(|r| r.body["allow_paid_broadcast"] == true).count();
    assert_eq!(flagged, 40);
    h.stop().await;
    Ok(())
}

#[tokio::test]
async fn paid_limit_counts_every_accepted_message() -> TestResult {
    let h =
        Harness::with(TelegramSimConfig { global_per_sec: 1, paid_per_sec: 3, ..TelegramSimConfig::default() }).await?;
    for chat in 1..=5 {
        h.sim.add_user(chat, "User", None);
    }
    // The free message fills the unflagged limit...
    assert_eq!(h.raw_form("chat_id=1&text=a").await?.status(), 200);
    assert_eq!(h.raw_form("chat_id=2&text=b").await?.status(), 429);
    // ...while flagged ones, in a form or JSON, fit up to the paid limit,
    // the free message included.
    assert_eq!(h.raw_form("chat_id=2&text=b&allow_paid_broadcast=1").await?.status(), 200);
    let resp = h.raw_send(json!({"chat_id": 3, "text": "c", "allow_paid_broadcast": true})).await?;
    assert_eq!(resp.status(), 200);
    let resp = h.raw_form("chat_id=4&text=d&allow_paid_broadcast=true").await?;
    assert_eq!(resp.status(), 429);
    let body: serde_json::Value = resp.json().await?;
    assert_eq!(body["parameters"]["retry_after"], 1);
    let stats = h.sim.stats();
    assert_eq!((stats.sent, stats.paid, stats.rate_limited), (3, 2, 2));
    h.stop().await;
    Ok(())
}

#[tokio::test]
async fn paid_requests_keep_the_per_chat_limit() -> TestResult {
    let h = Harness::new().await?;
    h.sim.add_user(7, "Taras", None);
    h.bot.send_message(ChatId(7), "one").allow_paid_broadcast(true).await?;
    let err = h.bot.send_message(ChatId(7), "two").allow_paid_broadcast(true).await.expect_err("per-chat limit");
    assert!(matches!(err, RequestError::RetryAfter(_)), "{err:?}");
    assert_eq!(h.sim.stats().paid, 1);
    h.stop().await;
    Ok(())
}

const CHANNEL: i64 = -1_001_234_567_890;

#[tokio::test]
async fn channel_posts_by_username_and_by_id() -> TestResult {
    let h = Harness::new().await?;
    h.sim.add_channel(CHANNEL, Some("kupiansk_alerts"), "Куп'янськ: тривоги", true);
    // Usernames are matched case-insensitively, as on Telegram.
    let msg = h.bot.send_message(Recipient::ChannelUsername("@Kupiansk_Alerts".into()), "<b>Тривога</b>").await?;
    assert_eq!(msg.chat.id, ChatId(CHANNEL));
    assert!(msg.chat.is_channel(), "{:?}", msg.chat);
    assert_eq!(msg.chat.title(), Some("Куп'янськ: тривоги"));
    assert_eq!(msg.chat.username(), Some("kupiansk_alerts"));
    // A channel post comes from the channel, not from the bot.
    assert!(msg.from.is_none());
    assert_eq!(msg.sender_chat.as_ref().map(|c| c.id), Some(ChatId(CHANNEL)));

    let by_id = h.bot.send_message(ChatId(CHANNEL), "Відбій").await?;
    assert!(by_id.chat.is_channel());
    let sent = h.sim.sent_to(CHANNEL);
    assert_eq!(sent.iter().map(|m| m.text.as_str()).collect::<Vec<_>>(), ["<b>Тривога</b>", "Відбій"]);
    assert_eq!(h.sim.sent().len(), 2);
    // The record keeps what was sent: the username as given.
    assert_eq!(h.sim.send_requests()[0].body["chat_id"], "@Kupiansk_Alerts");
    h.stop().await;
    Ok(())
}

#[tokio::test]
async fn channel_needs_the_bot_as_admin_and_a_known_username() -> TestResult {
    let h = Harness::new().await?;
    h.sim.add_channel(CHANNEL, Some("kupiansk_alerts"), "Куп'янськ", false);
    let err = h.bot.send_message(ChatId(CHANNEL), "x").await.expect_err("not an admin");
    assert!(
        matches!(&err, RequestError::Api(ApiError::Unknown(d)) if d == "Forbidden: bot is not a member of the channel chat"),
        "{err:?}"
    );
    let err = h.bot.send_message(Recipient::ChannelUsername("@kupiansk_alerts".into()), "x").await.expect_err("same");
    assert!(matches!(err, RequestError::Api(ApiError::Unknown(_))), "{err:?}");
    assert_eq!(h.sim.stats().forbidden, 2);

    let err = h.bot.send_message(Recipient::ChannelUsername("@nobody_here".into()), "x").await.expect_err("unknown");
    assert!(matches!(err, RequestError::Api(ApiError::ChatNotFound)), "{err:?}");

    h.sim.set_channel_admin(CHANNEL, true);
    h.bot.send_message(Recipient::ChannelUsername("@kupiansk_alerts".into()), "x").await?;
    h.sim.set_channel_admin(CHANNEL, false);
    let err = h.bot.send_message(ChatId(CHANNEL), "y").await.expect_err("admin rights taken away");
    assert!(matches!(err, RequestError::Api(ApiError::Unknown(_))), "{err:?}");
    assert_eq!(h.sim.sent_to(CHANNEL).len(), 1);
    h.stop().await;
    Ok(())
}

#[tokio::test]
async fn channel_posts_count_against_group_and_global_windows() -> TestResult {
    let h = Harness::with(TelegramSimConfig { group_per_min: 2, global_per_sec: 3, ..TelegramSimConfig::default() })
        .await?;
    h.sim.add_channel(CHANNEL, None, "Громада", true);
    h.sim.add_user(1, "A", None);
    h.sim.add_user(2, "B", None);
    h.bot.send_message(ChatId(CHANNEL), "a").await?;
    h.bot.send_message(ChatId(CHANNEL), "b").await?;
    let err = h.bot.send_message(ChatId(CHANNEL), "c").await.expect_err("group window");
    match err {
        RequestError::RetryAfter(s) => assert!(s.seconds() > 50, "{s}"),
        e => return Err(e.into()),
    }
    // Two channel posts and this message fill the global second.
    h.bot.send_message(ChatId(1), "d").await?;
    let err = h.bot.send_message(ChatId(2), "e").await.expect_err("global window");
    assert!(matches!(err, RequestError::RetryAfter(_)), "{err:?}");
    h.stop().await;
    Ok(())
}

#[tokio::test]
async fn latency_delays_the_answer_after_recording() -> TestResult {
    let latency = Duration::from_millis(500);
    let h = Harness::with(TelegramSimConfig { latency, ..TelegramSimConfig::default() }).await?;
    h.sim.add_user(1, "U", None);
    let bot = h.bot.clone();
    let started = Instant::now();
    let send = tokio::spawn(async move { bot.send_message(ChatId(1), "alert").await });
    wait_until("the message is recorded", || h.sim.sent_to(1).len() == 1).await;
    // Recorded, not yet answered.
    assert_eq!(h.sim.in_progress(), 1);
    assert!(!send.is_finished());
    let msg = send.await??;
    assert!(started.elapsed() >= latency, "{:?}", started.elapsed());
    assert_eq!(msg.text(), Some("alert"));
    assert_eq!(h.sim.in_progress(), 0);
    h.stop().await;
    Ok(())
}

#[tokio::test]
async fn killed_client_leaves_an_accepted_unanswered_message() -> TestResult {
    let h = Harness::with(TelegramSimConfig { latency: Duration::from_millis(500), ..TelegramSimConfig::default() })
        .await?;
    h.sim.add_user(1, "U", None);
    h.sim.add_user(2, "V", None);
    let mut set = tokio::task::JoinSet::new();
    for chat in [1, 2] {
        let bot = h.bot.clone();
        set.spawn(async move { bot.send_message(ChatId(chat), "alert").await });
    }
    wait_until("both messages recorded", || h.sim.sent().len() == 2).await;
    assert_eq!(h.sim.in_progress(), 2);
    // The client dies with both requests in flight.
    set.abort_all();
    while set.join_next().await.is_some() {}
    wait_until("no request in progress", || h.sim.in_progress() == 0).await;
    assert_eq!(h.sim.stats().sent, 2, "accepted stays accepted");
    assert!(h.sim.send_requests().iter().all(|r| r.status == 200));
    h.stop().await;
    Ok(())
}

#[tokio::test]
async fn status_faults_answer_with_the_envelope_and_use_no_limit() -> TestResult {
    let h = Harness::new().await?;
    h.sim.add_user(1, "U", None);
    h.sim.inject(FaultTarget::Chat(1), SendFault::Status { code: 500, description: "Internal Server Error".into() }, 1);
    h.sim.inject(FaultTarget::Chat(1), SendFault::Status { code: 502, description: "Bad Gateway".into() }, 1);
    let resp = h.raw_send(json!({"chat_id": 1, "text": "a"})).await?;
    assert_eq!(resp.status(), 500);
    let body: serde_json::Value = resp.json().await?;
    assert_eq!(body, json!({"ok": false, "error_code": 500, "description": "Internal Server Error"}));
    let resp = h.raw_send(json!({"chat_id": 1, "text": "a"})).await?;
    assert_eq!(resp.status(), 502);
    let body: serde_json::Value = resp.json().await?;
    assert_eq!(body["description"], "Bad Gateway");
    // The faulted requests did not enter the per-chat window.
    assert_eq!(h.raw_send(json!({"chat_id": 1, "text": "a"})).await?.status(), 200);
    let stats = h.sim.stats();
    assert_eq!((stats.server_errors, stats.sent, stats.rate_limited), (2, 1, 0));
    h.stop().await;
    Ok(())
}

#[tokio::test]
async fn injected_429_and_chat_not_found_reach_teloxide() -> TestResult {
    let h = Harness::new().await?;
    h.sim.add_user(2, "U", None);
    h.sim.inject(FaultTarget::Chat(2), SendFault::TooManyRequests { retry_after: 7 }, 1);
    h.sim.inject(FaultTarget::Chat(2), SendFault::ChatNotFound, 1);
    let err = h.bot.send_message(ChatId(2), "a").await.expect_err("429");
    assert!(matches!(err, RequestError::RetryAfter(s) if s == Seconds::from_seconds(7)), "{err:?}");
    let err = h.bot.send_message(ChatId(2), "a").await.expect_err("chat not found");
    assert!(matches!(err, RequestError::Api(ApiError::ChatNotFound)), "{err:?}");
    h.bot.send_message(ChatId(2), "a").await?;
    let retry: Vec<Option<u64>> = h.sim.send_requests().iter().map(|r| r.retry_after).collect();
    assert_eq!(retry, [Some(7), None, None]);
    h.stop().await;
    Ok(())
}

#[tokio::test]
async fn faults_come_after_authentication_before_other_checks() -> TestResult {
    let h = Harness::new().await?;
    h.sim.add_user(3, "U", None);
    h.sim.block(3);
    h.sim.inject(FaultTarget::Any, SendFault::Status { code: 503, description: "Service Unavailable".into() }, 2);
    let wrong = Bot::new("654321:WRONG").set_api_url(reqwest::Url::parse(&h.sim.base_url())?);
    let err = wrong.send_message(ChatId(3), "x").await.expect_err("wrong token");
    assert!(matches!(err, RequestError::Api(ApiError::InvalidToken)), "{err:?}");
    // The fault is still queued, and comes before "chat not found" and 403.
    assert_eq!(h.raw_send(json!({"chat_id": 999, "text": "x"})).await?.status(), 503);
    assert_eq!(h.raw_send(json!({"chat_id": 3, "text": ""})).await?.status(), 503);
    assert_eq!(h.raw_send(json!({"chat_id": 999, "text": "x"})).await?.status(), 400);
    assert_eq!(h.raw_send(json!({"chat_id": 3, "text": "x"})).await?.status(), 403);
    h.stop().await;
    Ok(())
}

#[tokio::test]
async fn reset_closes_the_connection_without_an_answer() -> TestResult {
    let h = Harness::new().await?;
    h.sim.add_user(1, "U", None);
    h.sim.add_user(2, "V", None);
    h.sim.inject(FaultTarget::Chat(1), SendFault::Reset, 2);
    // Another chat is not affected by chat 1's script.
    assert_eq!(h.raw_send(json!({"chat_id": 2, "text": "x"})).await?.status(), 200);
    let err = h.raw_send(json!({"chat_id": 1, "text": "x"})).await.expect_err("no answer");
    assert!(err.status().is_none(), "a transport error, not a status: {err:?}");
    let err = h.bot.send_message(ChatId(1), "x").await.expect_err("no answer");
    assert!(matches!(err, RequestError::Network(_)), "{err:?}");
    h.bot.send_message(ChatId(1), "x").await?;
    assert_eq!(h.sim.sent_to(1).len(), 1);
    let statuses: Vec<u16> = h.sim.send_requests().iter().map(|r| r.status).collect();
    assert_eq!(statuses, [200, 0, 0, 200]);
    assert_eq!(h.sim.stats().dropped, 2);
    assert_eq!(h.sim.in_progress(), 0);
    h.stop().await;
    Ok(())
}

#[tokio::test]
async fn stall_holds_the_request_then_closes_without_an_answer() -> TestResult {
    let stall = Duration::from_millis(300);
    let h = Harness::new().await?;
    h.sim.add_user(1, "U", None);
    h.sim.inject(FaultTarget::Chat(1), SendFault::Stall(stall), 1);
    let sim = h.sim.clone();
    let url = h.send_url();
    let started = Instant::now();
    let send =
        tokio::spawn(
            async move { reqwest::Client::new().post(url).json(&json!({"chat_id": 1, "text": "x"})).send().await },
        );
    wait_until("the stalled request is in progress", || sim.in_progress() == 1).await;
    let err = send.await?.expect_err("no answer");
    assert!(err.status().is_none(), "a transport error, not a status: {err:?}");
    assert!(started.elapsed() >= stall, "{:?}", started.elapsed());
    assert_eq!(h.sim.in_progress(), 0);
    assert!(h.sim.sent().is_empty());
    let stats = h.sim.stats();
    assert_eq!((stats.dropped, stats.sent), (1, 0));
    // Nothing entered the per-chat window either.
    h.bot.send_message(ChatId(1), "x").await?;
    h.stop().await;
    Ok(())
}

#[tokio::test]
async fn stall_ends_on_shutdown() -> TestResult {
    let h = Harness::new().await?;
    h.sim.add_user(1, "U", None);
    h.sim.inject(FaultTarget::Any, SendFault::Stall(Duration::from_secs(60)), 1);
    let bot = h.bot.clone();
    let send = tokio::spawn(async move { bot.send_message(ChatId(1), "x").await });
    let sim = h.sim.clone();
    wait_until("the stalled request is in progress", || sim.in_progress() == 1).await;
    h.stop().await;
    let res = tokio::time::timeout(Duration::from_secs(3), send).await??;
    assert!(matches!(res, Err(RequestError::Network(_))), "{res:?}");
    Ok(())
}

#[tokio::test]
async fn every_fault_kind_can_be_a_share() -> TestResult {
    let h = Harness::with(TelegramSimConfig { per_chat_per_sec: 100, ..TelegramSimConfig::default() }).await?;
    h.sim.add_user(1, "U", None);
    let kinds = [
        (SendFault::Status { code: 502, description: "Bad Gateway".into() }, Some(502)),
        (SendFault::TooManyRequests { retry_after: 2 }, Some(429)),
        (SendFault::ChatNotFound, Some(400)),
        (SendFault::Stall(Duration::from_millis(100)), None),
        (SendFault::Reset, None),
    ];
    for (seed, (fault, expected)) in (1..).zip(kinds) {
        h.sim.inject_share(fault.clone(), 1000, seed);
        for _ in 0..2 {
            let got = h.raw_send(json!({"chat_id": 1, "text": "x"})).await;
            match (expected, got) {
                (Some(status), Ok(resp)) => assert_eq!(resp.status(), status, "{fault:?}"),
                (None, Err(e)) => assert!(e.status().is_none(), "{fault:?}: {e:?}"),
                (_, got) => panic!("{fault:?}: {got:?}"),
            }
        }
        h.sim.clear_faults();
        assert_eq!(h.raw_send(json!({"chat_id": 1, "text": "x"})).await?.status(), 200, "{fault:?} cleared");
    }
    let stats = h.sim.stats();
    assert_eq!((stats.sent, stats.dropped, stats.server_errors), (5, 4, 2));
    h.stop().await;
    Ok(())
}

#[tokio::test]
async fn fault_share_is_deterministic_per_seed() -> TestResult {
    async fn pattern(seed: u64) -> Result<Vec<u16>, Box<dyn std::error::Error + Send + Sync>> {
        let h = Harness::with(TelegramSimConfig { global_per_sec: 1000, ..TelegramSimConfig::default() }).await?;
        for chat in 1..=40 {
            h.sim.add_user(chat, "U", None);
        }
        h.sim.inject_share(SendFault::Status { code: 500, description: "Internal Server Error".into() }, 300, seed);
        for chat in 1..=40 {
            h.raw_send(json!({"chat_id": chat, "text": "x"})).await?;
        }
        let statuses = h.sim.send_requests().iter().map(|r| r.status).collect();
        h.stop().await;
        Ok(statuses)
    }
    let first = pattern(42).await?;
    assert_eq!(first, pattern(42).await?, "same seed, same requests faulted");
    assert_ne!(first, pattern(43).await?, "another seed, another pattern");
    let faulted = first.iter().filter(|&&s| s == 500).count();
    assert!((4..=24).contains(&faulted), "{faulted} of 40 at 300 per mille");
    assert!(first.iter().all(|&s| s == 500 || s == 200), "{first:?}");
    Ok(())
}

#[tokio::test]
async fn records_carry_arrival_status_and_retry_after() -> TestResult {
    let h = Harness::new().await?;
    h.sim.add_user(1, "U", None);
    let before = Instant::now();
    h.bot.get_me().await?;
    h.bot.send_message(ChatId(1), "a").await?;
    h.bot.send_message(ChatId(1), "b").await.expect_err("per-chat limit");
    h.sim.inject(FaultTarget::Any, SendFault::Reset, 1);
    h.bot.send_message(ChatId(1), "c").await.expect_err("reset");

    let all = h.sim.requests();
    assert_eq!(all.len(), 4);
    assert_eq!(all[0].method, "GetMe");
    let sends = h.sim.send_requests();
    assert_eq!(sends.iter().map(|r| r.status).collect::<Vec<_>>(), [200, 429, 0]);
    assert_eq!(sends.iter().map(|r| r.retry_after).collect::<Vec<_>>(), [None, Some(1), None]);
    assert!(all.windows(2).all(|w| w[0].at <= w[1].at), "arrivals in order");
    assert!(all[0].at >= before && all[3].at <= Instant::now());
    let stats = h.sim.stats();
    assert_eq!((stats.requests, stats.rate_limited, stats.dropped), (4, 1, 1));
    h.stop().await;
    Ok(())
}

/// `setWebhook`'s rules, and delivery: each update POSTed with the secret until a 2xx,
/// the failure shown by `getWebhookInfo`, `getUpdates` refused meanwhile.
#[tokio::test]
async fn webhook_rules_and_delivery_until_answered() -> TestResult {
    use std::sync::{Arc, Mutex};
    let h = Harness::new().await?;
    let call = |method: &str, body: serde_json::Value| {
        let url = format!("{}/bot{}/{method}", h.sim.base_url(), TelegramSimConfig::default().token);
        let http = h.http.clone();
        async move { http.post(url).json(&body).send().await }
    };
    let bad_port = call("setWebhook", json!({"url": "https://bot.example.org:8080/telegram/x"})).await?;
    assert_eq!(bad_port.status(), 400);
    let plain = call("setWebhook", json!({"url": "http://bot.example.org/telegram/x"})).await?;
    assert_eq!(plain.status(), 400);
    let bad_secret =
        call("setWebhook", json!({"url": "https://bot.example.org/telegram/x", "secret_token": "a b"})).await?;
    assert_eq!(bad_secret.status(), 400);
    assert_eq!(h.sim.webhook_url(), None);

    // The bot's side: the first delivery is refused, the second accepted.
    let seen: Arc<Mutex<Vec<(String, i64)>>> = Arc::default();
    let app = {
        let seen = seen.clone();
        axum::Router::new().route(
            "/telegram/x",
            axum::routing::post(move |headers: axum::http::HeaderMap, body: axum::Json<serde_json::Value>| {
                let seen = seen.clone();
                async move {
                    let secret = headers.get("x-telegram-bot-api-secret-token").and_then(|v| v.to_str().ok());
                    let mut seen = seen.lock().expect("lock");
                    seen.push((secret.unwrap_or("").to_owned(), body["update_id"].as_i64().unwrap_or(0)));
                    if seen.len() == 1 {
                        axum::http::StatusCode::INTERNAL_SERVER_ERROR
                    } else {
                        axum::http::StatusCode::OK
                    }
                }
            }),
        )
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let local = format!("http://{}", listener.local_addr()?);
    let server = tokio::spawn(async move { axum::serve(listener, app).await });
    h.sim.set_webhook_proxy("https://bot.example.org", &local);
    let set = call(
        "setWebhook",
        json!({"url": "https://bot.example.org/telegram/x", "secret_token": "s3cret_-", "allowed_updates": ["message"]}),
    )
    .await?;
    assert_eq!(set.status(), 200);
    let polled = call("getUpdates", json!({})).await?;
    assert_eq!(polled.status(), 409, "getUpdates while a webhook is set");
    h.sim.user_sends(77, "/start");
    let sim = h.sim.clone();
    wait_until("delivered", move || sim.stats().webhook_delivered == 1).await;
    let seen = seen.lock().expect("lock").clone();
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert!(seen.iter().all(|(secret, id)| secret == "s3cret_-" && *id == seen[0].1), "{seen:?}");
    let statuses: Vec<u16> = h.sim.webhook_deliveries().iter().map(|d| d.status).collect();
    assert_eq!(statuses, vec![500, 200]);
    let info: serde_json::Value = call("getWebhookInfo", json!({})).await?.json().await?;
    assert_eq!(info["result"]["pending_update_count"], 0);
    assert!(info["result"]["last_error_message"].as_str().is_some_and(|m| m.contains("500")), "{info}");
    call("deleteWebhook", json!({})).await?;
    assert_eq!(call("getUpdates", json!({})).await?.status(), 200);
    server.abort();
    h.stop().await;
    Ok(())
}

#[tokio::test]
async fn get_chat_member_tells_admins_from_members() -> TestResult {
    let h = Harness::new().await?;
    h.sim.add_group(-300, "Село");
    h.sim.set_group_admin(-300, 31, true);
    let status = |user: u64| {
        let bot = h.bot.clone();
        async move { bot.get_chat_member(ChatId(-300), UserId(user)).await.map(|m| m.status()) }
    };
    assert_eq!(status(31).await?, teloxide::types::ChatMemberStatus::Administrator);
    assert_eq!(status(32).await?, teloxide::types::ChatMemberStatus::Member);
    h.sim.set_group_admin(-300, 31, false);
    assert_eq!(status(31).await?, teloxide::types::ChatMemberStatus::Member);
    let unknown = h.bot.get_chat_member(ChatId(-301), UserId(31)).await.expect_err("unknown group");
    assert!(matches!(unknown, RequestError::Api(ApiError::ChatNotFound)), "{unknown:?}");
    h.stop().await;
    Ok(())
}
