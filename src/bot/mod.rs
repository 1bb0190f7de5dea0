//! Bot: residents subscribe and manage their places by chatting.
//!
//! Split in two. [`Conversation`] decides the replies to one input using the store and
//! the region tree, with no Telegram in sight, so it is tested directly. [`run`] is the
//! Telegram side: a getUpdates long-poll loop that hands each update to a tracked task,
//! one chat at a time in order, and sends replies under the same rate limiter as the
//! fan-out.
//!
//! Every input gets an answer: unknown commands and stray text get help, not silence.

pub mod commands;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use teloxide::prelude::*;
use teloxide::types::{CallbackQueryId, UpdateKind};
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::alerts::orders::OrderStatus;
use crate::alerts::status::{PlaceStatus, StatusView};
use crate::channels::telegram::{self, TelegramChannel};
use crate::channels::{Address, Channel, ChannelKind, LimitScope, Outgoing, SendError};
use crate::config::secret::mask;
use crate::dispatch::limits::{Recipient, SharedLimiter};
use crate::matcher::IndexDelta;
use crate::messages::{Composer, Lang, escape, kyiv};
use crate::regions::{RegionId, RegionTree};
use crate::store::{Store, StoreError, Subscriber};
use commands::{Command, MAX_QUERY_CHARS};

/// The channel residents talk to the bot on.
pub const CHANNEL: ChannelKind = ChannelKind::TelegramChat;
/// Callback data prefix of "subscribe to this place" buttons; the id fits the 64-byte
/// callback_data limit (4 + 19 bytes).
const SUBSCRIBE_PREFIX: &str = "sub:";
/// Updates of one chat waiting for an answer before further ones are dropped.
const MAX_QUEUED_PER_CHAT: usize = 10;
/// Most choices shown at once for an ambiguous name.
const MAX_CHOICES: usize = 8;

/// What a resident did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Input {
    Text(String),
    /// Pressed an inline button.
    Button(String),
    /// Sent something that is not text (a sticker, a photo).
    NotText,
}

/// One reply: HTML text and optional inline buttons (label, callback data).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reply {
    pub text: String,
    pub buttons: Vec<(String, String)>,
}

impl Reply {
    fn text(text: String) -> Self {
        Reply { text, buttons: Vec::new() }
    }
}

/// The bot's decisions, free of Telegram.
pub struct Conversation {
    pub store: Arc<dyn Store>,
    pub tree: watch::Receiver<Arc<RegionTree>>,
    pub composer: watch::Receiver<Arc<Composer>>,
    /// Tells the pipeline of changed places, so the match index follows.
    pub deltas: mpsc::UnboundedSender<IndexDelta>,
    /// What is active now and how the feeds stand, for `/status`.
    pub status: watch::Receiver<Arc<StatusView>>,
}

impl Conversation {
    /// Answers one input from one chat. `app_lang` is the language the resident's
    /// Telegram app reports, used for a first contact.
    pub async fn handle(&self, chat: i64, app_lang: Option<&str>, input: Input) -> Result<Vec<Reply>, StoreError> {
        let composer = self.composer.borrow().clone();
        let tree = self.tree.borrow().clone();
        let address = chat.to_string();
        let (sub, created) = match self.store.subscriber(CHANNEL, &address).await? {
            Some(s) if s.active => (s, false),
            _ => {
                let up = self.store.upsert_subscriber(CHANNEL, &address, Lang::from_telegram(app_lang)).await?;
                if up.reactivated {
                    self.delta(IndexDelta::Reactivated(up.subscriber.id));
                }
                (up.subscriber, up.created)
            }
        };
        let lang = sub.lang;
        let t = |id: &str, args: &[(&str, &str)]| escape(&composer.text(lang, id, args, id));
        let command = match input {
            Input::NotText => return Ok(vec![Reply::text(t("bot-not-text", &[]))]),
            Input::Button(data) => {
                return match data.strip_prefix(SUBSCRIBE_PREFIX).and_then(|c| RegionId::parse(c).ok()) {
                    Some(id) if tree.contains(&id) => self.subscribe(&sub, &id, &tree, &composer).await,
                    _ => Ok(vec![Reply::text(t("bot-help", &[]))]),
                };
            }
            Input::Text(text) => commands::parse(&text),
        };
        let replies = match command {
            Command::Start => {
                let mut r = vec![Reply::text(t("bot-welcome", &[]))];
                if !created && !self.store.places(sub.id).await?.is_empty() {
                    r.extend(self.list(&sub, &tree, &composer).await?);
                }
                r
            }
            Command::Help => vec![Reply::text(t("bot-help", &[]))],
            Command::Subscribe(None) => vec![Reply::text(t("bot-subscribe-usage", &[]))],
            Command::Subscribe(Some(q)) => self.find_and_offer(&sub, &q, &tree, &composer, true).await?,
            Command::List => self.list(&sub, &tree, &composer).await?,
            Command::Status => self.status(&sub, &tree, &composer).await?,
            Command::Unsubscribe(None) => {
                let removed = self.store.remove_places(sub.id, None).await?;
                self.delta(IndexDelta::Removed { subscriber: sub.id, places: removed });
                vec![Reply::text(t("bot-unsubscribed-all", &[]))]
            }
            Command::Unsubscribe(Some(q)) => {
                let places = self.store.places(sub.id).await?;
                let found: Vec<RegionId> =
                    tree.find(&q).into_iter().map(|r| r.id.clone()).filter(|id| places.contains(id)).collect();
                if found.is_empty() {
                    vec![Reply::text(t("bot-not-subscribed", &[("query", &clip(&q))]))]
                } else {
                    let mut r = Vec::new();
                    for id in found {
                        let removed = self.store.remove_places(sub.id, Some(&id)).await?;
                        self.delta(IndexDelta::Removed { subscriber: sub.id, places: removed });
                        r.push(Reply::text(t("bot-unsubscribed", &[("place", &tree.qualified_name(&id, lang))])));
                    }
                    r
                }
            }
            Command::Lang(arg) => match arg.as_deref().and_then(Lang::parse) {
                Some(new) => {
                    self.store.set_lang(sub.id, new).await?;
                    vec![Reply::text(escape(&composer.text(new, "bot-lang-set", &[], "OK")))]
                }
                None => vec![Reply::text(t("bot-lang-usage", &[]))],
            },
            Command::Unknown(cmd) => vec![Reply::text(format!(
                "{}\n\n{}",
                t("bot-unknown-command", &[("command", &cmd)]),
                t("bot-help", &[])
            ))],
            Command::TooLong => vec![Reply::text(t("bot-too-long", &[]))],
            Command::Text(text) if text.is_empty() => vec![Reply::text(t("bot-help", &[]))],
            Command::Text(text) => {
                // Stray text may be a place name: offer it, never subscribe silently.
                if tree.find(&text).is_empty() {
                    vec![Reply::text(format!(
                        "{}\n\n{}",
                        t("bot-not-found", &[("query", &clip(&text))]),
                        t("bot-help", &[])
                    ))]
                } else {
                    self.find_and_offer(&sub, &text, &tree, &composer, false).await?
                }
            }
        };
        Ok(replies)
    }

    fn delta(&self, delta: IndexDelta) {
        // A delta sent while the daemon stops has nobody to apply it; the next start
        // builds the index from the store anyway.
        let _ = self.deltas.send(delta);
    }

    async fn find_and_offer(
        &self,
        sub: &Subscriber,
        query: &str,
        tree: &RegionTree,
        composer: &Composer,
        subscribe_if_unique: bool,
    ) -> Result<Vec<Reply>, StoreError> {
        let lang = sub.lang;
        let t = |id: &str, args: &[(&str, &str)]| escape(&composer.text(lang, id, args, id));
        let search = tree.search(query);
        // A near name is offered, never subscribed to: "did you mean".
        let exact = search.is_exact();
        match search.regions.as_slice() {
            [] => Ok(vec![Reply::text(t("bot-not-found", &[("query", &clip(query))]))]),
            [one] if subscribe_if_unique && exact => self.subscribe(sub, &one.id, tree, composer).await,
            many => {
                // The whole country has many places of one name: the oblast tells them apart.
                let labels: Vec<String> = many.iter().map(|r| tree.full_name(&r.id, lang)).collect();
                let buttons = many
                    .iter()
                    .zip(&labels)
                    .take(MAX_CHOICES)
                    .map(|(r, label)| {
                        // Two villages of one name in one hromada share every larger unit;
                        // only the code tells them apart.
                        let twins = labels.iter().filter(|l| *l == label).count() > 1;
                        let label = if twins { format!("{label} · {}", r.id) } else { label.clone() };
                        (label, format!("{SUBSCRIBE_PREFIX}{}", r.id))
                    })
                    .collect();
                let text = if !exact {
                    t("bot-did-you-mean", &[("query", &clip(query))])
                } else if many.len() == 1 {
                    t("bot-offer", &[])
                } else {
                    t("bot-choose", &[("query", &clip(query))])
                };
                Ok(vec![Reply { text, buttons }])
            }
        }
    }

    async fn subscribe(
        &self,
        sub: &Subscriber,
        id: &RegionId,
        tree: &RegionTree,
        composer: &Composer,
    ) -> Result<Vec<Reply>, StoreError> {
        let place = tree.qualified_name(id, sub.lang);
        let added = self.store.add_place(sub.id, id).await?;
        if added {
            self.delta(IndexDelta::Added { subscriber: sub.id, places: vec![id.clone()] });
        }
        let key = if added { "bot-subscribed" } else { "bot-already" };
        Ok(vec![Reply::text(escape(&composer.text(sub.lang, key, &[("place", &place)], &place)))])
    }

    async fn list(&self, sub: &Subscriber, tree: &RegionTree, composer: &Composer) -> Result<Vec<Reply>, StoreError> {
        let places = self.store.places(sub.id).await?;
        let lang = sub.lang;
        if places.is_empty() {
            return Ok(vec![Reply::text(escape(&composer.text(lang, "bot-list-empty", &[], "")))]);
        }
        let mut text = escape(&composer.text(lang, "bot-list-header", &[], ""));
        for p in places {
            text.push_str(&format!("\n• {}", escape(&tree.qualified_name(&p, lang))));
        }
        Ok(vec![Reply::text(text)])
    }
}

impl Conversation {
    /// `/status`: for each of the resident's places, what is active there now, or that
    /// nobody can say because every feed is stale — never "no alerts" on stale data.
    async fn status(&self, sub: &Subscriber, tree: &RegionTree, composer: &Composer) -> Result<Vec<Reply>, StoreError> {
        let places = self.store.places(sub.id).await?;
        let lang = sub.lang;
        let t = |id: &str, args: &[(&str, &str)]| composer.text(lang, id, args, id);
        if places.is_empty() {
            return Ok(vec![Reply::text(escape(&t("bot-list-empty", &[])))]);
        }
        let view = self.status.borrow().clone();
        let now = chrono::Utc::now();
        let mut text = String::new();
        for place in places {
            if !text.is_empty() {
                text.push_str("\n\n");
            }
            text.push_str(&format!("<b>{}</b>", escape(&tree.qualified_name(&place, lang))));
            let line = |s: String| format!("\n{}", escape(&s));
            match view.of_place(tree, &place, now) {
                PlaceStatus::Unknown { since } => {
                    let since = since.map(|t| kyiv(t).format("%H:%M").to_string());
                    text.push_str(&line(match since {
                        Some(since) => t("bot-status-unknown", &[("since", &since)]),
                        None => t("bot-status-unknown-never", &[]),
                    }));
                }
                PlaceStatus::Known { alerts, orders } => {
                    for a in &alerts {
                        let kind = composer.text(lang, &format!("alert-kind-{}", a.kind), &[], a.kind.as_str());
                        let since = kyiv(a.started_at).format("%H:%M").to_string();
                        let area = tree.name(&a.region, lang);
                        text.push_str(&line(format!(
                            "🔴 {}",
                            t("bot-status-alert", &[("kind", &kind), ("place", &area), ("since", &since)])
                        )));
                    }
                    for o in &orders {
                        let id = if o.status == OrderStatus::Mandatory {
                            "evac-started-mandatory"
                        } else {
                            "evac-started-recommended"
                        };
                        text.push_str(&line(format!("🚨 {}", t(id, &[]))));
                    }
                    if alerts.is_empty() && orders.is_empty() {
                        text.push_str(&line(format!("🟢 {}", t("bot-status-clear", &[]))));
                    }
                }
            }
        }
        Ok(vec![Reply::text(text)])
    }
}

/// A query echoed back, cut to a sane length.
fn clip(s: &str) -> String {
    s.chars().take(MAX_QUERY_CHARS.min(64)).collect()
}

/// How the bot's replies leave: through the same Telegram adapter, classification and
/// limiter as the fan-out, ahead of the fan-out's next send.
#[derive(Clone)]
pub struct Replies {
    pub channel: TelegramChannel,
    pub limiter: SharedLimiter,
}

/// A reply is tried this many times over a 429 or a network failure before giving up.
const REPLY_ATTEMPTS: u32 = 3;

impl Replies {
    /// Sends one plain message (operators' notices) the way replies go.
    pub async fn notify(&self, chat: i64, text: String) {
        self.send(chat, Reply::text(text)).await;
    }

    /// Sends one reply. A 429 holds the shared limiter, as for the fan-out, and the
    /// reply waits it out; a transient failure is tried again a second later.
    async fn send(&self, chat: i64, reply: Reply) {
        let to = Address::TelegramChat(chat);
        let recipient = Recipient::of(&to);
        for attempt in 1..=REPLY_ATTEMPTS {
            self.limiter.acquire_reply(&recipient).await;
            let message =
                Outgoing { to: &to, text: &reply.text, silent: false, paid: false, buttons: &reply.buttons, key: "" };
            let wait = match self.channel.send(message).await {
                Ok(_) => return,
                Err(SendError::RateLimited { scope, retry_after }) => {
                    let who = (scope == LimitScope::Recipient).then_some(&recipient);
                    self.limiter.penalize(who, tokio::time::Instant::now() + retry_after);
                    retry_after
                }
                Err(SendError::Transient(why)) => {
                    tracing::info!(%why, chat = %mask(&chat.to_string()), attempt, "bot reply failed; trying again");
                    Duration::from_secs(1)
                }
                Err(e) => {
                    tracing::warn!(error = %e, chat = %mask(&chat.to_string()), "bot reply refused");
                    return;
                }
            };
            tokio::time::sleep(wait).await;
        }
        tracing::warn!(chat = %mask(&chat.to_string()), "bot reply not delivered after {REPLY_ATTEMPTS} attempts");
    }
}

/// Polls Telegram for updates until cancelled. Each update is handled in a task on
/// `tracker`; updates of one chat are handled in arrival order.
pub async fn run(
    bot: Bot,
    conversation: Arc<Conversation>,
    replies: Replies,
    long_poll: Duration,
    cancel: CancellationToken,
    tracker: TaskTracker,
) {
    let mut offset: i32 = 0;
    let mut backoff = Duration::from_secs(1);
    let mut chat_locks: HashMap<i64, Arc<tokio::sync::Mutex<()>>> = HashMap::new();
    loop {
        let request = bot.get_updates().offset(offset).timeout(long_poll.as_secs().min(u64::from(u32::MAX)) as u32);
        let updates = tokio::select! {
            () = cancel.cancelled() => return,
            r = request.send() => r,
        };
        let updates = match updates {
            Ok(u) => {
                backoff = Duration::from_secs(1);
                u
            }
            Err(e) => {
                tracing::warn!(error = %telegram::describe(&e), ?backoff, "getUpdates failed; retrying");
                tokio::select! {
                    () = cancel.cancelled() => return,
                    () = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(Duration::from_secs(30));
                continue;
            }
        };
        chat_locks.retain(|_, l| Arc::strong_count(l) > 1);
        for update in updates {
            offset = offset.max(i32::try_from(update.id.0).unwrap_or(i32::MAX).saturating_add(1));
            let Some((chat, app_lang, input, callback_id)) = read_update(update) else { continue };
            let lock = chat_locks.entry(chat).or_default().clone();
            // Each waiting update holds a clone of its chat's lock (besides the map and
            // this one). A chat with a long queue is flooding: answering it would take
            // minutes at one reply per second, so the excess is dropped, not queued.
            if Arc::strong_count(&lock) > MAX_QUEUED_PER_CHAT + 2 {
                tracing::warn!(chat = %mask(&chat.to_string()), "flood: update dropped");
                continue;
            }
            let (bot, conversation, replies) = (bot.clone(), conversation.clone(), replies.clone());
            tracker.spawn(async move {
                let _turn = lock.lock().await;
                if let Some(id) = callback_id {
                    // Stops the button's spinner; failure only leaves it spinning.
                    if let Err(e) = bot.answer_callback_query(id).await {
                        tracing::debug!(error = %telegram::describe(&e), "answerCallbackQuery failed");
                    }
                }
                let answers = match conversation.handle(chat, app_lang.as_deref(), input).await {
                    Ok(r) => r,
                    Err(e) => {
                        tracing::error!(error = %e, chat = %mask(&chat.to_string()), "bot could not use the store");
                        let composer = conversation.composer.borrow().clone();
                        vec![Reply::text(escape(&composer.text(Lang::Uk, "bot-error", &[], "Error")))]
                    }
                };
                for reply in answers {
                    replies.send(chat, reply).await;
                }
            });
        }
    }
}

/// The chat, the app's language, the input and (for buttons) the callback id.
fn read_update(update: Update) -> Option<(i64, Option<String>, Input, Option<CallbackQueryId>)> {
    match update.kind {
        UpdateKind::Message(msg) => {
            let chat = msg.chat.id.0;
            let lang = msg.from.as_ref().and_then(|u| u.language_code.clone());
            let input = match msg.text() {
                Some(t) => Input::Text(t.to_owned()),
                None => Input::NotText,
            };
            Some((chat, lang, input, None))
        }
        UpdateKind::CallbackQuery(q) => {
            let chat = i64::try_from(q.from.id.0).ok()?;
            let data = q.data.clone().unwrap_or_default();
            Some((chat, q.from.language_code.clone(), Input::Button(data), Some(q.id.clone())))
        }
        _ => None,
    }
}
