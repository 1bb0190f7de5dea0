//! Operators: civil-protection staff working sirena from Telegram, the audit log, and
//! drills.
//!
//! Split like the bot: [`commands`] parses, [`drafts`] decides the two-person rule,
//! [`audit`] says what is logged and [`drills`] schedules tests and reports their
//! receipts — all pure. [`Operators`] does the IO: it reads the store, the feeds'
//! health and the tree, hands approved broadcasts and corrections to the pipeline as
//! events, and tells the other operators of drafts and decisions.
//!
//! Who is an operator: the Telegram **user ids** in `[telegram] operators` (the same
//! list whose private chats get the operators' notices: a private chat's id is its
//! user's id), as of the last config applied: a reload adds and removes operators. An
//! operator command from anyone else is answered "not allowed" and counted
//! (`sirena_operator_refused_total`).

pub mod audit;
pub mod cli;
pub mod commands;
pub mod drafts;
pub mod drills;

use std::collections::BTreeMap;
use std::fmt::Write;
use std::path::PathBuf;
use std::sync::Arc;

use chrono::Utc;
use tokio::sync::{Mutex, mpsc, watch};

use crate::alerts::{AlertKind, Event, EventDetail, EventId, Priority, Transition};
use crate::bot::{Input, Replies, Reply, Sender};
use crate::channels::Keyboard;
use crate::internal_events::InternalEvent;
use crate::internal_events::pipeline::OperatorRefused;
use crate::messages::{Composer, Lang, escape, kyiv};
use crate::regions::names::MatchKind;
use crate::regions::{RegionId, RegionTree};
use crate::sources::SourceHealth;
use crate::store::{Store, StoreError};
use commands::OpCommand;
use drafts::{Drafts, Refusal};

/// Where the draft book is kept in the store's small state.
pub const DRAFTS_KEY: &str = "operators.drafts";
/// Events `/deliveries` lists.
const RECENT_EVENTS: usize = 10;
/// A reply longer than this is cut (Telegram's limit is 4096).
const MAX_REPLY_CHARS: usize = 3800;

/// The operators' side of the bot.
pub struct Operators {
    /// Telegram user ids allowed to use operator commands, as of the last applied
    /// config (`Outputs::operators`): read at each command, never kept.
    pub allowlist: watch::Receiver<Arc<Vec<i64>>>,
    pub store: Arc<dyn Store>,
    pub tree: watch::Receiver<Arc<RegionTree>>,
    pub composer: watch::Receiver<Arc<Composer>>,
    /// Each feed's health, by source name.
    pub sources: BTreeMap<String, watch::Receiver<SourceHealth>>,
    /// Into the pipeline: approved broadcasts and corrections.
    pub events: mpsc::Sender<Event>,
    /// For `/preview`: the config directory the daemon runs on.
    pub config_dir: PathBuf,
    /// Tells the other operators of drafts and decisions; none in tests that only read
    /// the replies.
    pub replies: Option<Replies>,
    /// `operator_refused` counts commands from users not on the allowlist.
    pub stats: Arc<crate::metrics::PipelineStats>,
    /// One decision on the draft book at a time.
    pub book: Mutex<()>,
}

fn reply(text: String) -> Reply {
    let mut text = text;
    if text.chars().count() > MAX_REPLY_CHARS {
        text = text.chars().take(MAX_REPLY_CHARS).collect::<String>() + "…";
    }
    Reply { text, keyboard: Keyboard::None }
}

impl Operators {
    /// Answers an operator command, or `/drills on|off` from anyone; `None` for input
    /// that is neither, which goes to the residents' conversation.
    pub async fn handle(&self, from: &Sender, input: &Input) -> Option<Vec<Reply>> {
        let Input::Text(text) = input else { return None };
        let lang = Lang::from_telegram(from.app_lang.as_deref());
        if let Some(on) = commands::parse_drills(text) {
            return Some(vec![self.answer(lang, self.drills(from, lang, on).await)]);
        }
        let command = commands::parse(text)?;
        let allowed = from.user.is_some_and(|u| self.allowlist.borrow().contains(&u));
        let c = self.composer.borrow().clone();
        if !allowed {
            let user = from.user.map(|u| crate::config::secret::mask(&u.to_string()));
            OperatorRefused { user: user.as_deref() }.emit(&self.stats);
            return Some(vec![reply(escape(&c.text(lang, "op-not-allowed", &[], "Not allowed")))]);
        }
        let by = from.user.unwrap_or_default();
        let answer = match command {
            OpCommand::Sources => Ok(self.sources(&c, lang)),
            OpCommand::Deliveries => self.deliveries(&c, lang).await,
            OpCommand::Broadcast(None) => Ok(c.text(lang, "op-broadcast-usage", &[], "/broadcast place text")),
            OpCommand::Broadcast(Some((place, words))) => self.broadcast(&c, lang, by, &place, words).await,
            OpCommand::Approve(Some(id)) => self.decide(&c, lang, by, id, true).await,
            OpCommand::Reject(Some(id)) => self.decide(&c, lang, by, id, false).await,
            OpCommand::Approve(None) | OpCommand::Reject(None) | OpCommand::Usage => {
                Ok(c.text(lang, "op-usage", &[], "operator commands"))
            }
            OpCommand::Cancel(event) => self.cancel(&c, lang, by, EventId(event)).await,
            OpCommand::Preview(None) => Ok(c.text(lang, "op-preview-usage", &[], "/preview order-id")),
            OpCommand::Preview(Some(order)) => Ok(self.preview(&order).await),
            OpCommand::HelpRequests(order) => self.help_requests(order.as_deref()).await,
        };
        Some(vec![self.answer(lang, answer)])
    }

    fn answer(&self, lang: Lang, answer: Result<String, StoreError>) -> Reply {
        match answer {
            Ok(text) => reply(escape(&text)),
            Err(e) => {
                tracing::error!(error = %e, "operator command could not use the store");
                let c = self.composer.borrow().clone();
                let err = e.to_string();
                reply(escape(&c.text(lang, "op-error", &[("error", &err)], &err)))
            }
        }
    }

    /// Tells every other operator, in their chats.
    async fn tell_others(&self, except: i64, text: String) {
        let Some(replies) = &self.replies else { return };
        // A copy: the list may change (a reload) while the notices are sent.
        let operators = self.allowlist.borrow().clone();
        for op in operators.iter().filter(|op| **op != except) {
            replies.notify(*op, escape(&text)).await;
        }
    }

    async fn audit(&self, who: i64, action: &str, what: String) -> Result<(), StoreError> {
        self.store.audit_append(audit::entry(who.to_string(), action, what)).await
    }

    async fn drills(&self, from: &Sender, lang: Lang, on: Option<bool>) -> Result<String, StoreError> {
        let c = self.composer.borrow().clone();
        let Some(on) = on else { return Ok(c.text(lang, "bot-drills-usage", &[], "/drills on | off")) };
        let address = from.chat.to_string();
        let Some(sub) = self.store.subscriber(crate::bot::CHANNEL, &address).await?.filter(|s| s.active) else {
            return Ok(c.text(lang, "bot-drills-no-place", &[], "/subscribe first"));
        };
        self.store.set_drills(sub.id, on).await?;
        let id = if on { "bot-drills-on" } else { "bot-drills-off" };
        Ok(c.text(sub.lang, id, &[], id))
    }

    fn sources(&self, c: &Composer, lang: Lang) -> String {
        if self.sources.is_empty() {
            return c.text(lang, "op-sources-none", &[], "no sources");
        }
        let mut out = c.text(lang, "op-sources-header", &[], "Sources:");
        for (name, health) in &self.sources {
            let h = health.borrow().clone();
            let state = match (h.consecutive_failures, h.last_success) {
                (0, Some(_)) => "ok",
                (0, None) => "waiting",
                _ => "failing",
            };
            let since = h.last_success.map_or("—".to_owned(), |t| kyiv(t).format("%d.%m %H:%M:%S").to_string());
            let failures = h.consecutive_failures.to_string();
            let args = [("source", name.as_str()), ("state", state), ("since", &since), ("failures", &failures)];
            out.push('\n');
            out.push_str(&c.text(lang, "op-source-line", &args, name));
            if let Some(e) = h.last_error.as_deref().filter(|_| h.consecutive_failures > 0) {
                let _ = write!(out, " ({e})");
            }
        }
        out
    }

    async fn deliveries(&self, c: &Composer, lang: Lang) -> Result<String, StoreError> {
        let recent = self.store.progress(RECENT_EVENTS).await?;
        if recent.is_empty() {
            return Ok(c.text(lang, "op-deliveries-none", &[], "nothing yet"));
        }
        let mut out = c.text(lang, "op-deliveries-header", &[], "Recent events:");
        for p in recent {
            let n = p.counts;
            let other = n.superseded + n.expired + n.undelivered;
            let at =
                kyiv(chrono::DateTime::from_timestamp_millis(p.created_ms).unwrap_or_default()).format("%d.%m %H:%M");
            let _ = write!(
                out,
                "\n{at} {}: {} / {} / {} / {} / {} / {}",
                p.event.id, n.pending, n.sending, n.sent, n.delivered, n.failed, other
            );
        }
        Ok(out)
    }

    /// Resolves a place as residents type it, or a KATOTTG code; one region or a
    /// message saying why not.
    fn place(&self, c: &Composer, lang: Lang, query: &str) -> Result<RegionId, String> {
        let tree = self.tree.borrow().clone();
        let found = tree.search(query);
        match (found.kind, found.regions.as_slice()) {
            (MatchKind::Exact, [one]) => Ok(one.id.clone()),
            (MatchKind::Exact, many) if many.len() > 1 => {
                let choices: Vec<String> =
                    many.iter().take(5).map(|r| format!("{} ({})", tree.full_name(&r.id, lang), r.id)).collect();
                let choices = choices.join("; ");
                Err(c.text(lang, "op-broadcast-ambiguous", &[("query", query), ("choices", &choices)], query))
            }
            _ => Err(c.text(lang, "op-broadcast-place", &[("query", query)], query)),
        }
    }

    async fn broadcast(
        &self,
        c: &Composer,
        lang: Lang,
        by: i64,
        place: &str,
        words: String,
    ) -> Result<String, StoreError> {
        let length = words.chars().count();
        if length > commands::MAX_BROADCAST_CHARS {
            let (l, max) = (length.to_string(), commands::MAX_BROADCAST_CHARS.to_string());
            return Ok(c.text(lang, "op-broadcast-too-long", &[("length", &l), ("max", &max)], "too long"));
        }
        let region = match self.place(c, lang, place) {
            Ok(r) => r,
            Err(why) => return Ok(why),
        };
        let _turn = self.book.lock().await;
        let mut book = self.drafts().await?;
        let id = book.create(by, region.clone(), words.clone(), Utc::now());
        self.save(&book).await?;
        self.audit(by, "broadcast_drafted", format!("draft {id} for {region}: {words}")).await?;
        drop(_turn);
        let name = self.tree.borrow().full_name(&region, lang);
        let id_s = id.to_string();
        let by_s = by.to_string();
        let args = [("id", id_s.as_str()), ("place", name.as_str()), ("text", words.as_str()), ("by", &by_s)];
        self.tell_others(by, c.text(Lang::Uk, "op-draft-for-review", &args, &words)).await;
        Ok(c.text(lang, "op-drafted", &args, &words))
    }

    async fn drafts(&self) -> Result<Drafts, StoreError> {
        Ok(match self.store.kv_get(DRAFTS_KEY).await? {
            Some(json) => serde_json::from_str(&json)?,
            None => Drafts::default(),
        })
    }

    async fn save(&self, book: &Drafts) -> Result<(), StoreError> {
        self.store.kv_put(DRAFTS_KEY, &serde_json::to_string(book)?).await
    }

    async fn decide(&self, c: &Composer, lang: Lang, by: i64, id: u64, approve: bool) -> Result<String, StoreError> {
        let id_s = id.to_string();
        let by_s = by.to_string();
        let turn = self.book.lock().await;
        let mut book = self.drafts().await?;
        let decided = if approve { book.approve(id, by) } else { book.reject(id) };
        let draft = match decided {
            Ok(d) => d,
            Err(Refusal::NoSuchDraft) => return Ok(c.text(lang, "op-no-draft", &[("id", &id_s)], &id_s)),
            Err(Refusal::OwnDraft) => {
                self.audit(by, "approval_refused", format!("draft {id}: own draft")).await?;
                return Ok(c.text(lang, "op-own-draft", &[("id", &id_s)], &id_s));
            }
        };
        // The decision is saved before anything is sent: a draft is sent once at most.
        self.save(&book).await?;
        drop(turn);
        let name = self.tree.borrow().full_name(&draft.place, lang);
        let args = [("id", id_s.as_str()), ("place", name.as_str()), ("by", by_s.as_str())];
        if !approve {
            self.audit(by, "broadcast_rejected", format!("draft {id} by {}", draft.by)).await?;
            self.tell_others(by, c.text(Lang::Uk, "op-rejected-notice", &args, &id_s)).await;
            return Ok(c.text(lang, "op-rejected", &args, &id_s));
        }
        self.audit(by, "broadcast_approved", format!("draft {id} by {} for {}: {}", draft.by, draft.place, draft.text))
            .await?;
        let event = Event {
            id: EventId(format!("broadcast:{id}:started")),
            kind: AlertKind::Info,
            transition: Transition::Started,
            revision: 1,
            targets: vec![draft.place.clone()],
            reach: Default::default(),
            at: Utc::now(),
            priority: Priority::OtherStart,
            detail: EventDetail::Broadcast { id: id_s.clone(), text: draft.text, by: draft.by, approved_by: by },
        };
        if self.events.send(event).await.is_err() {
            return Err(StoreError::Worker("the pipeline has stopped".into()));
        }
        self.tell_others(by, c.text(Lang::Uk, "op-approved-notice", &args, &id_s)).await;
        Ok(c.text(lang, "op-approved", &args, &id_s))
    }

    async fn cancel(&self, c: &Composer, lang: Lang, by: i64, id: EventId) -> Result<String, StoreError> {
        let shown = id.0.clone();
        let Some(original) = self.store.event(&id).await? else {
            return Ok(c.text(lang, "op-cancel-unknown", &[("event", &shown)], &shown));
        };
        let correction = EventId(format!("correction:{}", original.id));
        if matches!(original.detail, EventDetail::Correction { .. }) || self.store.event(&correction).await?.is_some() {
            return Ok(c.text(lang, "op-cancel-again", &[("event", &shown)], &shown));
        }
        let count = self.store.received(&original.id).await?.len();
        if count == 0 {
            return Ok(c.text(lang, "op-cancel-nobody", &[("event", &shown)], &shown));
        }
        let recipients = crate::messages::plural::count(count, "recipient", "recipients");
        self.audit(by, "event_cancelled", format!("{} ({recipients})", original.id)).await?;
        let event = Event {
            id: correction,
            kind: original.kind,
            transition: Transition::Cancelled,
            revision: original.revision,
            targets: original.targets.clone(),
            reach: Default::default(),
            at: Utc::now(),
            // As fast as the message it corrects went.
            priority: original.priority,
            detail: EventDetail::Correction { original: Box::new(original), by },
        };
        if self.events.send(event).await.is_err() {
            return Err(StoreError::Worker("the pipeline has stopped".into()));
        }
        Ok(c.counted(lang, "op-cancelled", &[("event", &shown)], &[("count", count as u64)], &shown))
    }

    /// The residents who asked for help to leave, as `sirena help-requests` shows them
    /// on a screen: phones and chat ids masked (the CSV is the call list).
    async fn help_requests(&self, order: Option<&str>) -> Result<String, StoreError> {
        let requests = self.store.help_requests(order).await?;
        let tree = self.tree.borrow().clone();
        Ok(crate::help_requests::table(&requests, &tree))
    }

    async fn preview(&self, order: &str) -> String {
        let config = match crate::config::load(&self.config_dir) {
            Ok(c) => c,
            Err(e) => return e.to_string(),
        };
        let subscribers = match self.store.export().await {
            Ok(s) => s,
            Err(e) => return e.to_string(),
        };
        match crate::preview::plan(&config, order, &subscribers) {
            Ok(p) => crate::preview::report(&p),
            Err(e) => e.to_string(),
        }
    }
}
