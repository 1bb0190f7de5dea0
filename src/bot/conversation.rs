//! The bot's decisions, free of Telegram: one input from one chat in, replies and
//! stored changes out.

use std::sync::Arc;

use tokio::sync::{mpsc, watch};

use super::CHANNEL;
use super::commands::{self, Command, MAX_QUERY_CHARS};
use crate::alerts::orders::OrderStatus;
use crate::alerts::status::{PlaceStatus, StatusView};
use crate::channels::{Button, Keyboard};
use crate::matcher::IndexDelta;
use crate::messages::{Composer, Lang, escape, kyiv};
use crate::regions::{RegionId, RegionTree};
use crate::store::{Store, StoreError, Subscriber};

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
    /// Answers one input from one chat.
    pub async fn handle(&self, from: &Sender, input: Input) -> Result<Vec<Reply>, StoreError> {
        let (chat, app_lang) = (from.chat, from.app_lang.as_deref());
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
            Input::Location { lat, lon } => {
                return super::location::on_location(self, &sub, lat, lon, &tree, &composer).await;
            }
            Input::Contact { phone, own } => {
                return super::help::on_contact(self, &sub, &phone, own, &tree, &composer).await;
            }
            Input::Button(data) if data.starts_with(super::help::PREFIX) => {
                return super::help::on_button(self, &sub, &data, &tree, &composer).await;
            }
            Input::Button(data) => {
                return match data.strip_prefix(SUBSCRIBE_PREFIX).and_then(|c| RegionId::parse(c).ok()) {
                    Some(id) if tree.contains(&id) => self.subscribe(&sub, &id, &tree, &composer).await,
                    _ => Ok(vec![Reply::text(t("bot-help", &[]))]),
                };
            }
            Input::Text(text) => match super::help::on_text(self, &sub, &text, &tree, &composer).await? {
                Some(replies) => return Ok(replies),
                None => commands::parse(&text),
            },
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

    pub(super) fn delta(&self, delta: IndexDelta) {
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
                let buttons = many.iter().zip(&labels).take(MAX_CHOICES).map(|(r, label)| {
                    // Two villages of one name in one hromada share every larger unit;
                    // only the code tells them apart.
                    let twins = labels.iter().filter(|l| *l == label).count() > 1;
                    let label = if twins { format!("{label} · {}", r.id) } else { label.clone() };
                    Button::new(label, format!("{SUBSCRIBE_PREFIX}{}", r.id))
                });
                let keyboard = Keyboard::column(buttons);
                let text = if !exact {
                    t("bot-did-you-mean", &[("query", &clip(query))])
                } else if many.len() == 1 {
                    t("bot-offer", &[])
                } else {
                    t("bot-choose", &[("query", &clip(query))])
                };
                Ok(vec![Reply { text, keyboard }])
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
