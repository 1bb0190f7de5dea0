//! The bot's decisions, free of Telegram: one input from one chat in, replies and
//! stored changes out.

use std::collections::HashSet;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, watch};

use super::CHANNEL;
use super::commands::{self, Command, MAX_QUERY_CHARS};
use crate::alerts::AlertKind;
use crate::alerts::orders::OrderStatus;
use crate::alerts::status::{PlaceStatus, StatusView};
use crate::channels::{Button, Keyboard, ReplyButton};
use crate::dispatch::quiet::QuietHours;
use crate::matcher::IndexDelta;
use crate::messages::{Composer, Lang, escape, kyiv};
use crate::regions::{Region, RegionId, RegionTree};
use crate::store::{ChatSettings, PlaceSettings, Store, StoreError, Subscriber};

/// Callback data prefix of "subscribe to this place" buttons; the id fits the 64-byte
/// callback_data limit (4 + 19 bytes).
pub(super) const SUBSCRIBE_PREFIX: &str = "sub:";
/// Most choices shown at once for an ambiguous name.
const MAX_CHOICES: usize = 8;

/// What a resident did.
#[derive(Clone, Debug, PartialEq)]
pub enum Input {
    Text(String),
    /// Pressed an inline button.
    Button(String),
    /// Shared a location from the app.
    Location {
        lat: f64,
        lon: f64,
    },
    /// Shared a contact card; `own` when it is the sender's own number (Telegram sets
    /// the card's user id to the sender's).
    Contact {
        phone: String,
        own: bool,
    },
    /// Sent something that is not text (a sticker, a photo).
    NotText,
}

/// Who sent an input, as far as the bot needs to know.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sender {
    /// The chat the answer goes to: the person's own id in a private chat, the group's
    /// (negative) id in a group.
    pub chat: i64,
    /// The person who wrote or pressed; `None` for anonymous group admins and channels.
    pub user: Option<i64>,
    /// The language the person's Telegram app reports, used for a first contact.
    pub app_lang: Option<String>,
    /// The chat is a group or supergroup.
    pub group: bool,
    /// The person may change the chat's subscriptions: always in a private chat, a
    /// group's administrators in a group.
    pub admin: bool,
}

impl Sender {
    /// A person in their private chat with the bot.
    pub fn private(chat: i64, app_lang: Option<&str>) -> Sender {
        Sender { chat, user: Some(chat), app_lang: app_lang.map(str::to_owned), group: false, admin: true }
    }
}

/// One reply: HTML text and its buttons.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reply {
    pub text: String,
    pub keyboard: Keyboard,
}

impl Reply {
    pub(super) fn text(text: String) -> Self {
        Reply { text, keyboard: Keyboard::None }
    }
}

/// Callback data of the other buttons, all under 64 bytes with a 19-byte region id:
/// `lang:uk`, `d:<id>:<page>` (a drill-down page; `d::<page>` for the oblasts),
/// `rm:<id>`, `lbl:<id>`, `f:<id>` (the kind filter), `fk:<id>:<n>` (toggle kind n),
/// `fa:<id>` (every kind), `forget:yes` / `forget:no`.
const DRILL_PREFIX: &str = "d:";
/// Choices per drill-down page: eight rows fit a small phone's screen.
pub const PAGE: usize = 8;
/// Longest label a resident may give a place.
const MAX_LABEL_CHARS: usize = 32;

/// Where a multi-step conversation stands; stored per chat, so it survives restarts.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "step", rename_all = "snake_case")]
pub enum Dialog {
    /// Asked where they live: plain text is a place name.
    WhereLive,
    /// Asked what to call a place: plain text is its label.
    Naming { place: RegionId },
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

/// One input's surroundings: who, in which language, with which texts and regions.
struct Turn {
    sub: Subscriber,
    lang: Lang,
    tree: Arc<RegionTree>,
    composer: Arc<Composer>,
    chat: ChatSettings,
    dialog: Option<Dialog>,
    /// The sender may change the chat's subscriptions.
    admin: bool,
}

impl Turn {
    /// A resident text, escaped for HTML.
    fn t(&self, id: &str, args: &[(&str, &str)]) -> String {
        escape(&self.raw(id, args))
    }

    /// A resident text as plain text (button labels).
    fn raw(&self, id: &str, args: &[(&str, &str)]) -> String {
        self.composer.text(self.lang, id, args, id)
    }

    fn reply(&self, id: &str, args: &[(&str, &str)]) -> Vec<Reply> {
        vec![Reply::text(self.t(id, args))]
    }

    /// The answer to a button from an old keyboard, or one sirena does not know.
    fn stale(&self) -> Vec<Reply> {
        vec![Reply::text(format!("{}\n\n{}", self.t("bot-stale-button", &[]), self.t("bot-help", &[])))]
    }

    /// A place as the resident calls it: their label, else its name.
    fn place_name(&self, place: &PlaceSettings) -> String {
        place.label.clone().unwrap_or_else(|| self.tree.name(&place.region, self.lang))
    }
}

impl Conversation {
    /// Answers one input from one chat.
    pub async fn handle(&self, from: &Sender, input: Input) -> Result<Vec<Reply>, StoreError> {
        let address = from.chat.to_string();
        // A paused chat stays paused whatever it sends, until an admin sends /start.
        let resuming = from.admin && matches!(&input, Input::Text(t) if commands::parse(t) == Command::Start);
        let existing = self.store.subscriber(CHANNEL, &address).await?;
        let sub = match existing {
            Some(s) if s.active => s,
            Some(s) if !resuming && self.store.chat_settings(s.id).await?.paused => s,
            _ => {
                let lang = Lang::from_telegram(from.app_lang.as_deref());
                let up = self.store.upsert_subscriber(CHANNEL, &address, lang).await?;
                if up.reactivated {
                    self.delta(IndexDelta::Reactivated(up.subscriber.id));
                }
                up.subscriber
            }
        };
        let chat = self.store.chat_settings(sub.id).await?;
        let dialog = chat.dialog.as_deref().and_then(|d| serde_json::from_str(d).ok());
        let mut turn = Turn {
            lang: sub.lang,
            sub,
            tree: self.tree.borrow().clone(),
            composer: self.composer.borrow().clone(),
            chat,
            dialog,
            admin: from.admin,
        };
        let (sub, tree, composer) = (turn.sub.clone(), turn.tree.clone(), turn.composer.clone());
        match input {
            Input::Location { lat, lon } => super::location::on_location(self, &sub, lat, lon, &tree, &composer).await,
            Input::Contact { phone, own } => super::help::on_contact(self, &sub, &phone, own, &tree, &composer).await,
            Input::NotText => Ok(turn.reply("bot-not-text", &[])),
            Input::Button(data) if data.starts_with(super::help::PREFIX) => {
                super::help::on_button(self, &sub, &data, &tree, &composer).await
            }
            Input::Button(data) => self.button(&mut turn, &data).await,
            // `/sms`, and the answers to the help request's questions, come first.
            Input::Text(text) => match super::help::on_text(self, &sub, &text, &tree, &composer).await? {
                Some(replies) => Ok(replies),
                None => self.text(&mut turn, &text).await,
            },
        }
    }

    pub(super) fn delta(&self, delta: IndexDelta) {
        // A delta sent while the daemon stops has nobody to apply it; the next start
        // builds the index from the store anyway.
        let _ = self.deltas.send(delta);
    }

    /// Stores where the dialog stands, if that changed.
    async fn set_dialog(&self, turn: &mut Turn, dialog: Option<Dialog>) -> Result<(), StoreError> {
        if turn.dialog == dialog {
            return Ok(());
        }
        turn.chat.dialog = dialog.as_ref().map(serde_json::to_string).transpose()?;
        turn.dialog = dialog;
        self.store.set_chat_settings(turn.sub.id, &turn.chat).await
    }

    async fn text(&self, turn: &mut Turn, text: &str) -> Result<Vec<Reply>, StoreError> {
        let command = commands::parse(text);
        if let (Some(dialog), Command::Text(text)) = (turn.dialog.clone(), &command)
            && !text.is_empty()
            && turn.admin
        {
            match dialog {
                Dialog::Naming { place } => return self.name_place(turn, &place, text).await,
                Dialog::WhereLive => return self.find_and_offer(turn, text, true).await,
            }
        }
        if changes(&command) && !turn.admin {
            return Ok(turn.reply("bot-admins-only", &[]));
        }
        // A command leaves the dialog; stray text in the middle of one does not.
        if !matches!(command, Command::Text(_) | Command::TooLong) {
            self.set_dialog(turn, None).await?;
        }
        let sub = turn.sub.clone();
        let replies = match command {
            Command::Start => self.start(turn).await?,
            Command::Help => turn.reply("bot-help", &[]),
            Command::Subscribe(None) => {
                self.set_dialog(turn, Some(Dialog::WhereLive)).await?;
                turn.reply("bot-subscribe-usage", &[])
            }
            Command::Subscribe(Some(q)) => self.find_and_offer(turn, &q, true).await?,
            Command::List => self.list(turn).await?,
            Command::Status => self.status(turn).await?,
            Command::Unsubscribe(None) => {
                let removed = self.store.remove_places(sub.id, None).await?;
                self.delta(IndexDelta::Removed { subscriber: sub.id, places: removed });
                turn.reply("bot-unsubscribed-all", &[])
            }
            Command::Unsubscribe(Some(q)) => {
                let places = self.store.places(sub.id).await?;
                let found: Vec<RegionId> =
                    turn.tree.find(&q).into_iter().map(|r| r.id.clone()).filter(|id| places.contains(id)).collect();
                if found.is_empty() {
                    turn.reply("bot-not-subscribed", &[("query", &clip(&q))])
                } else {
                    let mut r = Vec::new();
                    for id in found {
                        let removed = self.store.remove_places(sub.id, Some(&id)).await?;
                        self.delta(IndexDelta::Removed { subscriber: sub.id, places: removed });
                        r.extend(
                            turn.reply("bot-unsubscribed", &[("place", &turn.tree.qualified_name(&id, turn.lang))]),
                        );
                    }
                    r
                }
            }
            Command::Lang(arg) => match arg.as_deref().and_then(Lang::parse) {
                Some(new) => {
                    self.store.set_lang(sub.id, new).await?;
                    turn.lang = new;
                    turn.reply("bot-lang-set", &[])
                }
                None => vec![Reply { text: turn.t("bot-lang-usage", &[]), keyboard: lang_keyboard() }],
            },
            Command::Quiet(arg) => self.quiet(turn, arg.as_deref()).await?,
            Command::Stop => {
                if !turn.chat.paused {
                    self.store.deactivate(sub.id, "paused").await?;
                    self.delta(IndexDelta::Deactivated(sub.id));
                    turn.chat.paused = true;
                    self.store.set_chat_settings(sub.id, &turn.chat).await?;
                }
                turn.reply("bot-paused", &[])
            }
            Command::Forget => vec![Reply {
                text: turn.t("bot-forget-ask", &[]),
                keyboard: Keyboard::Inline(vec![vec![
                    Button::new(turn.raw("bot-forget-yes", &[]), "forget:yes"),
                    Button::new(turn.raw("bot-forget-no", &[]), "forget:no"),
                ]]),
            }],
            Command::Unknown(cmd) => vec![Reply::text(format!(
                "{}\n\n{}",
                turn.t("bot-unknown-command", &[("command", &cmd)]),
                turn.t("bot-help", &[])
            ))],
            Command::TooLong => turn.reply("bot-too-long", &[]),
            Command::Text(text) if text.is_empty() => turn.reply("bot-help", &[]),
            Command::Text(text) => {
                // Stray text may be a place name: offer it, never subscribe silently.
                if turn.tree.find(&text).is_empty() {
                    vec![Reply::text(format!(
                        "{}\n\n{}",
                        turn.t("bot-not-found", &[("query", &clip(&text))]),
                        turn.t("bot-help", &[])
                    ))]
                } else {
                    self.find_and_offer(turn, &text, false).await?
                }
            }
        };
        Ok(replies)
    }

    /// `/start`: resumes a paused chat; welcomes a chat with no places and asks for a
    /// language; shows a returning resident their places.
    async fn start(&self, turn: &mut Turn) -> Result<Vec<Reply>, StoreError> {
        if turn.chat.paused {
            // `handle` reactivated the subscriber already.
            turn.chat.paused = false;
            self.store.set_chat_settings(turn.sub.id, &turn.chat).await?;
            let mut r = turn.reply("bot-resumed", &[]);
            r.extend(self.list(turn).await?);
            return Ok(r);
        }
        let places = self.store.places(turn.sub.id).await?;
        if !places.is_empty() {
            let mut r = turn.reply("bot-welcome-back", &[]);
            r.extend(self.list(turn).await?);
            return Ok(r);
        }
        let text = format!("{}\n\n{}", turn.t("bot-welcome", &[]), turn.t("bot-choose-lang", &[]));
        Ok(vec![Reply { text, keyboard: lang_keyboard() }])
    }

    async fn button(&self, turn: &mut Turn, data: &str) -> Result<Vec<Reply>, StoreError> {
        if !turn.admin {
            return Ok(turn.reply("bot-admins-only", &[]));
        }
        let (head, rest) = data.split_once(':').unwrap_or((data, ""));
        // A region named by a button: one the resident may still choose.
        let region = |s: &str| RegionId::parse(s).ok().filter(|id| turn.tree.contains(id));
        match head {
            "lang" => match Lang::parse(rest) {
                Some(lang) => {
                    self.store.set_lang(turn.sub.id, lang).await?;
                    turn.lang = lang;
                    self.set_dialog(turn, Some(Dialog::WhereLive)).await?;
                    let ask = Reply {
                        text: turn.t("bot-where", &[]),
                        keyboard: Keyboard::Reply(vec![vec![ReplyButton::Location(
                            turn.raw("bot-share-location", &[]),
                        )]]),
                    };
                    let mut r = vec![ask];
                    r.extend(drill(&turn.tree, &turn.composer, turn.lang, None, 0));
                    Ok(r)
                }
                None => Ok(turn.stale()),
            },
            "sub" => match region(rest) {
                Some(id) => self.subscribe(turn, &id).await,
                None => Ok(turn.stale()),
            },
            "d" => {
                let drilled = rest.rsplit_once(':').and_then(|(id, page)| {
                    let page: usize = page.parse().ok()?;
                    if id.is_empty() {
                        drill(&turn.tree, &turn.composer, turn.lang, None, page)
                    } else {
                        drill(&turn.tree, &turn.composer, turn.lang, Some(&region(id)?), page)
                    }
                });
                Ok(drilled.map_or_else(|| turn.stale(), |r| vec![r]))
            }
            "rm" => {
                let Some(id) = RegionId::parse(rest).ok() else { return Ok(turn.stale()) };
                let removed = self.store.remove_places(turn.sub.id, Some(&id)).await?;
                if removed.is_empty() {
                    return Ok(turn.stale());
                }
                self.delta(IndexDelta::Removed { subscriber: turn.sub.id, places: removed });
                Ok(turn.reply("bot-unsubscribed", &[("place", &turn.tree.qualified_name(&id, turn.lang))]))
            }
            "lbl" => {
                let Some(place) = self.own_place(turn, rest).await? else { return Ok(turn.stale()) };
                let name = turn.tree.qualified_name(&place.region, turn.lang);
                self.set_dialog(turn, Some(Dialog::Naming { place: place.region })).await?;
                Ok(turn.reply("bot-label-ask", &[("place", &name)]))
            }
            "f" => match self.own_place(turn, rest).await? {
                Some(place) => Ok(vec![filter_reply(turn, &place, "bot-filter")]),
                None => Ok(turn.stale()),
            },
            "fk" | "fa" => {
                let (id, kind) = match head {
                    "fk" => match rest.split_once(':') {
                        Some((id, n)) => match n.parse::<usize>().ok().and_then(|n| AlertKind::FILTERABLE.get(n)) {
                            Some(k) => (id, Some(*k)),
                            None => return Ok(turn.stale()),
                        },
                        None => return Ok(turn.stale()),
                    },
                    _ => (rest, None),
                };
                let Some(mut place) = self.own_place(turn, id).await? else { return Ok(turn.stale()) };
                let kinds = match kind {
                    None => None,
                    Some(k) => {
                        let mut chosen: Vec<AlertKind> = AlertKind::FILTERABLE
                            .into_iter()
                            .filter(|f| place.kinds.as_ref().is_none_or(|ks| ks.contains(f)))
                            .collect();
                        if chosen.contains(&k) {
                            chosen.retain(|c| *c != k);
                        } else {
                            chosen.push(k);
                        }
                        if chosen.is_empty() {
                            return Ok(vec![filter_reply(turn, &place, "bot-filter-empty")]);
                        }
                        if chosen.len() == AlertKind::FILTERABLE.len() {
                            None
                        } else {
                            chosen.push(AlertKind::Unknown);
                            chosen.sort();
                            Some(chosen)
                        }
                    }
                };
                if self.store.set_place_kinds(turn.sub.id, &place.region, kinds.as_deref()).await? {
                    self.delta(IndexDelta::Kinds {
                        subscriber: turn.sub.id,
                        place: place.region.clone(),
                        kinds: kinds.clone(),
                    });
                }
                place.kinds = kinds;
                Ok(vec![filter_reply(turn, &place, "bot-filter-saved")])
            }
            "forget" if rest == "yes" => {
                // The SMS fallback goes too: its number and places are the chat's.
                let (sub, composer) = (turn.sub.clone(), turn.composer.clone());
                super::sms::off(self, &sub, &composer).await?;
                let removed = self.store.forget(turn.sub.id).await?;
                self.delta(IndexDelta::Removed { subscriber: turn.sub.id, places: removed });
                self.delta(IndexDelta::Deactivated(turn.sub.id));
                Ok(vec![Reply { text: turn.t("bot-forgotten", &[]), keyboard: Keyboard::Remove }])
            }
            "forget" if rest == "no" => Ok(turn.reply("bot-forget-kept", &[])),
            _ => Ok(turn.stale()),
        }
    }

    /// The resident's place a button names, if they still have it.
    async fn own_place(&self, turn: &Turn, id: &str) -> Result<Option<PlaceSettings>, StoreError> {
        let Ok(id) = RegionId::parse(id) else { return Ok(None) };
        Ok(self.store.place_settings(turn.sub.id).await?.into_iter().find(|p| p.region == id))
    }

    async fn name_place(&self, turn: &mut Turn, place: &RegionId, text: &str) -> Result<Vec<Reply>, StoreError> {
        self.set_dialog(turn, None).await?;
        let label: String = text.chars().filter(|c| !c.is_control()).take(MAX_LABEL_CHARS).collect();
        let label = label.trim();
        if label.is_empty() {
            return Ok(turn.reply("bot-help", &[]));
        }
        if !self.store.set_place_label(turn.sub.id, place, Some(label)).await? {
            return Ok(turn.stale());
        }
        let name = turn.tree.qualified_name(place, turn.lang);
        Ok(turn.reply("bot-label-set", &[("label", label), ("place", &name)]))
    }

    async fn quiet(&self, turn: &mut Turn, arg: Option<&str>) -> Result<Vec<Reply>, StoreError> {
        let off = ["off", "вимк", "ні", "no", "0"];
        let hours = match arg {
            None => {
                return Ok(match turn.chat.quiet {
                    Some(q) => turn.reply("bot-quiet-now", &[("hours", &q.to_string())]),
                    None => turn.reply("bot-quiet-usage", &[]),
                });
            }
            Some(a) if off.contains(&a.to_lowercase().as_str()) => None,
            Some(a) => match QuietHours::parse(a) {
                Some(q) => Some(q),
                None => return Ok(turn.reply("bot-quiet-usage", &[])),
            },
        };
        turn.chat.quiet = hours;
        self.store.set_chat_settings(turn.sub.id, &turn.chat).await?;
        Ok(match hours {
            Some(q) => turn.reply("bot-quiet-set", &[("hours", &q.to_string())]),
            None => turn.reply("bot-quiet-off", &[]),
        })
    }

    async fn find_and_offer(
        &self,
        turn: &mut Turn,
        query: &str,
        subscribe_if_unique: bool,
    ) -> Result<Vec<Reply>, StoreError> {
        let search = turn.tree.search(query);
        // A near name is offered, never subscribed to: "did you mean".
        let exact = search.is_exact();
        let lang = turn.lang;
        let found: Vec<RegionId> = search.regions.iter().map(|r| r.id.clone()).collect();
        match found.as_slice() {
            [] => Ok(turn.reply("bot-not-found", &[("query", &clip(query))])),
            [one] if subscribe_if_unique && exact => self.subscribe(turn, one).await,
            many => {
                // The whole country has many places of one name: the oblast tells them apart.
                let labels: Vec<String> = many.iter().map(|r| turn.tree.full_name(r, lang)).collect();
                let buttons = many.iter().zip(&labels).take(MAX_CHOICES).map(|(r, label)| {
                    // Two villages of one name in one hromada share every larger unit;
                    // only the code tells them apart.
                    let twins = labels.iter().filter(|l| *l == label).count() > 1;
                    let label = if twins { format!("{label} · {r}") } else { label.clone() };
                    Button::new(label, format!("{SUBSCRIBE_PREFIX}{r}"))
                });
                let keyboard = Keyboard::column(buttons);
                let text = if !exact {
                    turn.t("bot-did-you-mean", &[("query", &clip(query))])
                } else if many.len() == 1 {
                    turn.t("bot-offer", &[])
                } else {
                    turn.t("bot-choose", &[("query", &clip(query))])
                };
                Ok(vec![Reply { text, keyboard }])
            }
        }
    }

    /// Adds a place and confirms it: the place with its hromada and raion, what the
    /// resident will get, and what is active there right now.
    async fn subscribe(&self, turn: &mut Turn, id: &RegionId) -> Result<Vec<Reply>, StoreError> {
        let place = turn.tree.qualified_name(id, turn.lang);
        let added = self.store.add_place(turn.sub.id, id).await?;
        if added {
            self.delta(IndexDelta::Added { subscriber: turn.sub.id, places: vec![id.clone()] });
        }
        let onboarding = turn.dialog == Some(Dialog::WhereLive);
        self.set_dialog(turn, None).await?;
        let key = if added { "bot-subscribed" } else { "bot-already" };
        let view = self.status.borrow().clone();
        let mut text = format!("✅ {}\n{}", turn.t(key, &[("place", &place)]), turn.t("bot-you-get", &[]));
        text.push_str(&format!("\n\n{}", turn.t("bot-now", &[])));
        text.push_str(&place_now(turn, &view, id, chrono::Utc::now()));
        if turn.chat.paused {
            text.push_str(&format!("\n\n{}", turn.t("bot-paused", &[])));
        }
        let keyboard = if onboarding {
            // The location request has done its work.
            Keyboard::Remove
        } else {
            Keyboard::Inline(vec![vec![
                Button::new(turn.raw("bot-button-label", &[]), format!("lbl:{id}")),
                Button::new(turn.raw("bot-button-filter", &[]), format!("f:{id}")),
            ]])
        };
        Ok(vec![Reply { text, keyboard }])
    }

    /// `/list`: every place with its label and kinds, a button row each to remove it,
    /// name it or choose its kinds; quiet hours and a pause below.
    async fn list(&self, turn: &Turn) -> Result<Vec<Reply>, StoreError> {
        let places = self.store.place_settings(turn.sub.id).await?;
        if places.is_empty() {
            return Ok(turn.reply("bot-list-empty", &[]));
        }
        let mut text = turn.t("bot-list-header", &[]);
        let mut rows = Vec::new();
        for p in &places {
            let full = escape(&turn.tree.qualified_name(&p.region, turn.lang));
            match &p.label {
                Some(l) => text.push_str(&format!("\n• <b>{}</b> — {full}", escape(l))),
                None => text.push_str(&format!("\n• {full}")),
            }
            if let Some(kinds) = &p.kinds {
                text.push_str(&format!(" ({})", escape(&kind_names(turn, kinds))));
            }
            let name = turn.place_name(p);
            rows.push(vec![
                Button::new(format!("✖ {name}"), format!("rm:{}", p.region)),
                Button::new("✏️", format!("lbl:{}", p.region)),
                Button::new("⚙️", format!("f:{}", p.region)),
            ]);
        }
        if let Some(q) = turn.chat.quiet {
            text.push_str(&format!("\n\n{}", turn.t("bot-quiet-now", &[("hours", &q.to_string())])));
        }
        if turn.chat.paused {
            text.push_str(&format!("\n\n{}", turn.t("bot-paused", &[])));
        }
        Ok(vec![Reply { text, keyboard: Keyboard::Inline(rows) }])
    }

    /// `/status`: for each of the resident's places, what is active there now, since
    /// when and from which source, or that nobody can say because every feed is stale —
    /// never "no alerts" on stale data.
    async fn status(&self, turn: &Turn) -> Result<Vec<Reply>, StoreError> {
        let places = self.store.place_settings(turn.sub.id).await?;
        if places.is_empty() {
            return Ok(turn.reply("bot-list-empty", &[]));
        }
        let view = self.status.borrow().clone();
        let now = chrono::Utc::now();
        let mut text = String::new();
        for place in &places {
            if !text.is_empty() {
                text.push_str("\n\n");
            }
            let full = turn.tree.qualified_name(&place.region, turn.lang);
            let head = match &place.label {
                Some(l) => format!("{l} — {full}"),
                None => full,
            };
            text.push_str(&format!("<b>{}</b>", escape(&head)));
            text.push_str(&place_now(turn, &view, &place.region, now));
        }
        if turn.chat.paused {
            text.push_str(&format!("\n\n{}", turn.t("bot-paused", &[])));
        }
        Ok(vec![Reply::text(text)])
    }
}

/// Commands that change what the chat receives: only a group's admins may give them.
fn changes(command: &Command) -> bool {
    matches!(
        command,
        Command::Start
            | Command::Subscribe(Some(_))
            | Command::Unsubscribe(_)
            | Command::Lang(Some(_))
            | Command::Quiet(Some(_))
            | Command::Stop
            | Command::Forget
    )
}

fn lang_keyboard() -> Keyboard {
    Keyboard::Inline(vec![vec![Button::new("Українська", "lang:uk"), Button::new("English", "lang:en")]])
}

/// What is active at `place` now, one escaped line each (each line starts with `\n`).
fn place_now(turn: &Turn, view: &StatusView, place: &RegionId, now: chrono::DateTime<chrono::Utc>) -> String {
    let line = |s: String| format!("\n{}", escape(&s));
    let mut text = String::new();
    match view.of_place(&turn.tree, place, now) {
        PlaceStatus::Unknown { since } => {
            let since = since.map(|t| kyiv(t).format("%H:%M").to_string());
            text.push_str(&line(match since {
                Some(since) => turn.raw("bot-status-unknown", &[("since", &since)]),
                None => turn.raw("bot-status-unknown-never", &[]),
            }));
        }
        PlaceStatus::Known { alerts, orders } => {
            for a in &alerts {
                let kind = turn.composer.text(turn.lang, &format!("alert-kind-{}", a.kind), &[], a.kind.as_str());
                // An alert older than a day gets its date: "з 19:45" alone would read as today.
                let format = if now - a.started_at > chrono::Duration::hours(24) { "%d.%m.%Y %H:%M" } else { "%H:%M" };
                let since = kyiv(a.started_at).format(format).to_string();
                let area = turn.tree.name(&a.region, turn.lang);
                let sources: Vec<String> =
                    a.sources.iter().map(|k| turn.composer.text(turn.lang, &format!("source-{k}"), &[], k)).collect();
                let sources = sources.join(", ");
                text.push_str(&line(format!(
                    "🔴 {}",
                    turn.raw(
                        "bot-status-alert",
                        &[("kind", &kind), ("place", &area), ("since", &since), ("sources", &sources)]
                    )
                )));
            }
            for o in &orders {
                let id = if o.status == OrderStatus::Mandatory {
                    "evac-started-mandatory"
                } else {
                    "evac-started-recommended"
                };
                text.push_str(&line(format!("🚨 {}", turn.raw(id, &[]))));
            }
            if alerts.is_empty() && orders.is_empty() {
                text.push_str(&line(format!("🟢 {}", turn.raw("bot-status-clear", &[]))));
            }
        }
    }
    text
}

fn kind_names(turn: &Turn, kinds: &[AlertKind]) -> String {
    kinds
        .iter()
        .filter(|k| **k != AlertKind::Unknown)
        .map(|k| turn.raw(&format!("bot-kind-{k}"), &[]))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The kind filter of one place: a button per kind, ticked when wanted, and "every kind".
fn filter_reply(turn: &Turn, place: &PlaceSettings, key: &str) -> Reply {
    let name = turn.place_name(place);
    let mut rows: Vec<Vec<Button>> = AlertKind::FILTERABLE
        .iter()
        .enumerate()
        .map(|(n, k)| {
            let on = place.kinds.as_ref().is_none_or(|ks| ks.contains(k));
            let mark = if on { "✅" } else { "▫️" };
            vec![Button::new(
                format!("{mark} {}", turn.raw(&format!("bot-kind-{k}"), &[])),
                format!("fk:{}:{n}", place.region),
            )]
        })
        .collect();
    rows.push(vec![Button::new(turn.raw("bot-filter-all", &[]), format!("fa:{}", place.region))]);
    Reply { text: turn.t(key, &[("place", &name)]), keyboard: Keyboard::Inline(rows) }
}

/// One page of the drill-down: the regions directly under `parent` (the oblasts and
/// cities of oblast status with `None`), by name; one with regions under it opens its
/// own page, one without subscribes. Pages below the top offer the whole parent and a
/// way up. `None` for a page that is not there (an old keyboard's).
pub fn drill(
    tree: &RegionTree,
    composer: &Composer,
    lang: Lang,
    parent: Option<&RegionId>,
    page: usize,
) -> Option<Reply> {
    let t = |id: &str, args: &[(&str, &str)]| composer.text(lang, id, args, id);
    let mut children: Vec<&Region> = tree.iter().filter(|r| r.parent.as_ref() == parent).collect();
    if children.is_empty() {
        return None;
    }
    children.sort_by_cached_key(|r| r.name.get(lang).to_lowercase());
    let pages = children.len().div_ceil(PAGE);
    if page >= pages {
        return None;
    }
    let has_children: HashSet<&RegionId> = tree.iter().filter_map(|r| r.parent.as_ref()).collect();
    let mut rows: Vec<Vec<Button>> = children[page * PAGE..((page + 1) * PAGE).min(children.len())]
        .iter()
        .map(|r| {
            let label = r.name.get(lang).to_owned();
            if has_children.contains(&r.id) {
                vec![Button::new(format!("{label} ›"), format!("{DRILL_PREFIX}{}:0", r.id))]
            } else {
                vec![Button::new(label, format!("{SUBSCRIBE_PREFIX}{}", r.id))]
            }
        })
        .collect();
    let at = parent.map(|p| p.to_string()).unwrap_or_default();
    let mut nav = Vec::new();
    if page > 0 {
        nav.push(Button::new("◀", format!("{DRILL_PREFIX}{at}:{}", page - 1)));
    }
    if page + 1 < pages {
        nav.push(Button::new("▶", format!("{DRILL_PREFIX}{at}:{}", page + 1)));
    }
    if !nav.is_empty() {
        rows.push(nav);
    }
    let text = match parent {
        None => t("bot-browse-top", &[("page", &(page + 1).to_string()), ("pages", &pages.to_string())]),
        Some(p) => {
            let name = tree.qualified_name(p, lang);
            let whole = t("bot-browse-whole", &[("place", &tree.name(p, lang))]);
            rows.push(vec![Button::new(whole, format!("{SUBSCRIBE_PREFIX}{p}"))]);
            let up = tree.get(p).and_then(|r| r.parent.as_ref()).map(|g| g.to_string()).unwrap_or_default();
            rows.push(vec![Button::new(t("bot-browse-up", &[]), format!("{DRILL_PREFIX}{up}:0"))]);
            t("bot-browse", &[("place", &name), ("page", &(page + 1).to_string()), ("pages", &pages.to_string())])
        }
    };
    Some(Reply { text: escape(&text), keyboard: Keyboard::Inline(rows) })
}

/// A query echoed back, cut to a sane length.
fn clip(s: &str) -> String {
    s.chars().take(MAX_QUERY_CHARS.min(64)).collect()
}
