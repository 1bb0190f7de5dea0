//! One channel kind's admit loop: claim, plan, render, pace, send, record.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::limits::{Recipient, SharedLimiter, Wait};
use super::plan::{self, PartRef, Row, Verdict};
use super::quiet;
use super::{DeliveryPolicy, DispatchStats, Outcome, decide};
use crate::alerts::{Event, Priority};
use crate::channels::{Address, Channel, ChannelKind, Keyboard, LimitScope, Outgoing, SendError, Sent};
use crate::internal_events::InternalEvent;
use crate::internal_events::dispatch as ev;
use crate::matcher::IndexDelta;
use crate::messages::{Composer, Lang, Part, Rendered};
use crate::regions::RegionTree;
use crate::store::{
    Claim, Claimed, DeliveryKey, EventRef, Finish, Finished, NodeId, Quiet, Store, StoreError, SubscriberId, now_ms,
};

/// How long the store may fail in a row before the lane gives up and the daemon exits
/// for its supervisor to restart it.
const STORE_PATIENCE: Duration = Duration::from_secs(30);
/// With nothing due, look at the queue this often anyway (another node may have
/// enqueued, or a retry fell due).
const IDLE: Duration = Duration::from_secs(2);
/// Cached rendered texts, cleared when full or when texts or regions change.
const CACHE_MAX: usize = 4096;
const EVENTS_MAX: usize = 8192;

/// One channel kind's sender.
pub struct Lane {
    pub kind: ChannelKind,
    /// `None` when no adapter is configured for this kind: its deliveries fail,
    /// counted, and are never sent through another channel.
    pub channel: Option<Arc<dyn Channel>>,
    /// The platform account's limiter, shared with its other lanes and the bot.
    pub limiter: Option<SharedLimiter>,
    pub store: Arc<dyn Store>,
    pub policy: Arc<DeliveryPolicy>,
    pub composer: watch::Receiver<Arc<Composer>>,
    pub tree: watch::Receiver<Arc<RegionTree>>,
    pub node: NodeId,
    pub stats: Arc<DispatchStats>,
    /// Bumped by the pipeline when it enqueued something.
    pub wake: watch::Receiver<u64>,
    /// Tells the pipeline to drop a deactivated subscriber from the match index.
    pub deltas: Option<mpsc::UnboundedSender<IndexDelta>>,
    /// One request's budget; the adapter's own timeout should be a little shorter.
    pub send_timeout: Duration,
}

/// A chat's message, rendered and waiting for (or on) the wire.
struct Ready {
    subscriber: SubscriberId,
    to: Address,
    recipient: Recipient,
    carried: Vec<DeliveryKey>,
    /// When each carried delivery's event happened, for the send-latency histogram.
    events_at: Vec<chrono::DateTime<chrono::Utc>>,
    parts: usize,
    text: Arc<Rendered>,
    /// Sent without a sound: the text is quiet, or the reader's quiet hours say so.
    silent: bool,
    paid: bool,
    attempts: u32,
    /// The latest deadline of the carried deliveries; `None` if any has none.
    deadline_ms: Option<i64>,
    /// The message's identity across retries ([`Outgoing::key`]).
    key: String,
    /// Buttons under it: "I need help to evacuate" on an evacuation message to a
    /// Telegram chat, none otherwise.
    keyboard: Keyboard,
}

/// Messages of one text going out as one request. Boxed like the held ones, so moving
/// a message between the two never copies it.
#[allow(clippy::vec_box)]
type Batch = Vec<Box<Ready>>;

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum PartKey {
    Event { event: EventRef, as_new: bool },
    Closed { start: EventRef, end: EventRef },
}

type RenderKey = (Vec<PartKey>, Lang);

/// What a lane keeps between rounds.
struct State {
    /// Requests on the wire: one message each, or one text to several chats where the
    /// channel batches ([`Channel::send_batch`]).
    in_flight: JoinSet<Vec<Result<Sent, SendError>>>,
    sending: HashMap<tokio::task::Id, Batch>,
    /// Chats with a message in flight or held.
    busy: HashSet<SubscriberId>,
    /// Rendered messages waiting for the limiter, with when to try again.
    held: Vec<(Instant, Box<Ready>)>,
    /// Outcomes not yet written to the store.
    to_finish: Vec<Finished>,
    events: HashMap<EventRef, Arc<Event>>,
    cache: HashMap<RenderKey, Arc<Rendered>>,
    /// The texts and regions the cache was rendered with; a reload replaces them.
    cached_with: Option<(Arc<Composer>, Arc<RegionTree>)>,
    /// When the last claim found fewer due rows than it asked for, the queue is (nearly)
    /// empty and the lane waits for news rather than for the limiter.
    queue_short: bool,
    next_renew: Instant,
    next_requeue: Instant,
    failing_since: Option<Instant>,
    seed: u64,
}

impl Lane {
    /// Runs until `cancel`, then drains for at most `grace`. Returns an error only when
    /// the store has failed for good.
    pub async fn run(mut self, cancel: CancellationToken, grace: Duration) -> Result<(), StoreError> {
        let now = Instant::now();
        let mut st = State {
            in_flight: JoinSet::new(),
            sending: HashMap::new(),
            busy: HashSet::new(),
            held: Vec::new(),
            to_finish: Vec::new(),
            events: HashMap::new(),
            cache: HashMap::new(),
            cached_with: None,
            queue_short: false,
            next_renew: now,
            next_requeue: now,
            failing_since: None,
            seed: now_ms() as u64 | 1,
        };
        loop {
            if cancel.is_cancelled() {
                break;
            }
            let busy_again = match self.round(&mut st).await {
                Ok(more) => {
                    st.failing_since = None;
                    more
                }
                Err(e) => {
                    let since = *st.failing_since.get_or_insert_with(Instant::now);
                    if e.is_permanent() || since.elapsed() > STORE_PATIENCE {
                        tracing::error!(kind = %self.kind, error = %e, "the store keeps failing; the dispatcher stops");
                        return Err(e);
                    }
                    tracing::error!(kind = %self.kind, error = %e, "store call failed; retrying in a second");
                    false
                }
            };
            if busy_again {
                continue;
            }
            let wake_at = self.next_wake(&st);
            tokio::select! {
                biased;
                () = cancel.cancelled() => break,
                Some(joined) = st.in_flight.join_next_with_id(), if !st.in_flight.is_empty() => {
                    if let Err(e) = self.on_joined(&mut st, joined).await {
                        tracing::error!(kind = %self.kind, error = %e, "could not record a send; will retry");
                    }
                }
                r = self.wake.changed() => {
                    if r.is_err() {
                        // The pipeline is gone; keep draining what is queued.
                        self.wake = watch::channel(0).1;
                    }
                }
                () = tokio::time::sleep_until(wake_at) => {}
            }
        }
        self.shutdown(st, grace).await
    }

    fn next_wake(&self, st: &State) -> Instant {
        let now = Instant::now();
        let mut at = now + IDLE;
        at = at.min(st.next_renew).min(st.next_requeue);
        if let Some(held) = st.held.iter().map(|(t, _)| *t).min() {
            at = at.min(held);
        }
        if !st.queue_short
            && let Some(l) = &self.limiter
        {
            at = at.min(l.next_free(self.policy.lowest_paid().is_some()));
        }
        if st.failing_since.is_some() {
            at = at.min(now + Duration::from_secs(1)).max(now + Duration::from_millis(200));
        }
        at
    }

    /// One round of work. Returns true when there is more to do at once.
    async fn round(&self, st: &mut State) -> Result<bool, StoreError> {
        while let Some(joined) = st.in_flight.try_join_next_with_id() {
            self.on_joined(st, joined).await?;
        }
        self.flush(st).await?;
        self.housekeeping(st).await?;
        if !self.start_held(st) {
            return Ok(false);
        }
        let claimed = self.claim(st).await?;
        if claimed == 0 {
            return Ok(false);
        }
        self.flush(st).await?;
        // More may be waiting; go again while there is room and the limiter allows.
        let room = self.room(st) > 0 && self.capacity(false) > 0;
        Ok(room && !st.queue_short)
    }

    async fn flush(&self, st: &mut State) -> Result<(), StoreError> {
        if st.to_finish.is_empty() {
            return Ok(());
        }
        let batch = std::mem::take(&mut st.to_finish);
        if let Err(e) = self.store.finish(self.node, batch.clone()).await {
            st.to_finish = batch;
            return Err(e);
        }
        Ok(())
    }

    async fn housekeeping(&self, st: &mut State) -> Result<(), StoreError> {
        let now = Instant::now();
        let lease = self.policy.settings.lease;
        if now >= st.next_renew {
            self.store.renew_leases(self.node, now_ms() + lease.as_millis() as i64).await?;
            st.next_renew = now + lease / 3;
        }
        if now >= st.next_requeue {
            let n = self.store.requeue_expired_leases(now_ms()).await?;
            if n > 0 {
                tracing::warn!(kind = %self.kind, requeued = n, "deliveries whose lease ran out are queued again (a node stopped mid-send)");
            }
            st.next_requeue = now + (lease / 2).clamp(Duration::from_millis(500), Duration::from_secs(5));
        }
        Ok(())
    }

    /// How many more chats may be claimed: `max_in_flight` requests, each of up to a
    /// batch of chats where the channel batches.
    fn room(&self, st: &State) -> usize {
        let batch = self.batch_size();
        if batch == 1 {
            return self.policy.settings.max_in_flight.saturating_sub(st.in_flight.len() + st.held.len());
        }
        let busy = st.sending.values().map(Vec::len).sum::<usize>() + st.held.len();
        (self.policy.settings.max_in_flight * batch).saturating_sub(busy)
    }

    fn capacity(&self, paid: bool) -> usize {
        match &self.limiter {
            Some(l) => l.available(paid),
            None => usize::MAX,
        }
    }

    /// Starts held messages whose time has come. Returns false when the limiter holds
    /// everyone, so nothing new should be claimed.
    fn start_held(&self, st: &mut State) -> bool {
        let now = Instant::now();
        if self.batch_size() > 1 {
            let (due, later): (Vec<_>, Vec<_>) =
                std::mem::take(&mut st.held).into_iter().partition(|(at, _)| *at <= now);
            st.held = later;
            return self.start_batches(st, due.into_iter().map(|(_, r)| r).collect());
        }
        let mut still = Vec::new();
        let mut open = true;
        for (at, ready) in std::mem::take(&mut st.held) {
            if !open || at > now {
                still.push((at, ready));
                continue;
            }
            if let Err((wait, ready)) = self.try_start(st, ready) {
                if matches!(wait, Wait::Global(_)) {
                    open = false;
                }
                still.push((wait.until(), ready));
            }
        }
        st.held = still;
        open
    }

    /// Claims as many chats as the limiter lets through now; returns the rows claimed.
    async fn claim(&self, st: &mut State) -> Result<usize, StoreError> {
        let room = self.room(st);
        if room == 0 {
            return Ok(0);
        }
        let mut rows: Vec<Claimed> = Vec::new();
        // The inner query of a claim picks `n` due rows; fewer back means the queue is
        // (nearly) empty, more means chats with several rows, not a short queue.
        let mut short = false;
        // Paid-broadcast classes first, at the paid rate; then everything at the free one.
        let passes = [
            self.policy.lowest_paid().map(|lowest| (lowest, room.min(self.capacity(true)))),
            Some((Priority::Info, room.min(self.capacity(false)))),
        ];
        for (lowest, limit) in passes.into_iter().flatten() {
            let chats = distinct_chats(&rows);
            let n = limit.saturating_sub(chats);
            if n == 0 {
                continue;
            }
            let mut busy: Vec<SubscriberId> = st.busy.iter().copied().collect();
            busy.extend(rows.iter().map(|r| r.key.subscriber));
            let now = now_ms();
            let got = self
                .store
                .claim(Claim {
                    kind: self.kind,
                    priorities: Priority::MandatoryEvacuation..=lowest,
                    chats: n,
                    busy,
                    node: self.node,
                    now_ms: now,
                    lease_until_ms: now + self.policy.settings.lease.as_millis() as i64,
                })
                .await?;
            short = got.len() < n;
            rows.extend(got);
        }
        st.queue_short = short;
        let claimed = rows.len();
        if claimed > 0 {
            self.start_jobs(st, rows).await?;
        }
        Ok(claimed)
    }

    /// Plans, renders and starts the claimed rows, one message per chat.
    async fn start_jobs(&self, st: &mut State, rows: Vec<Claimed>) -> Result<(), StoreError> {
        let missing: Vec<EventRef> = {
            let mut m: Vec<EventRef> =
                rows.iter().map(|r| r.key.event).filter(|e| !st.events.contains_key(e)).collect();
            m.sort_unstable();
            m.dedup();
            m
        };
        if !missing.is_empty() {
            if st.events.len() > EVENTS_MAX {
                st.events.clear();
            }
            for (r, e) in self.store.events(missing).await? {
                st.events.insert(r, Arc::new(e));
            }
        }
        let mut jobs: Vec<(SubscriberId, Vec<Claimed>)> = Vec::new();
        let mut at: HashMap<SubscriberId, usize> = HashMap::new();
        for row in rows {
            let i = *at.entry(row.key.subscriber).or_insert_with(|| {
                jobs.push((row.key.subscriber, Vec::new()));
                jobs.len() - 1
            });
            jobs[i].1.push(row);
        }
        // The most urgent chat first.
        jobs.sort_by_key(|(_, rows)| rows.iter().map(|r| (r.priority, r.key.event)).min());
        // Residents' quiet hours (only chats have them).
        let quiet: HashMap<SubscriberId, Quiet> = if self.kind == ChannelKind::TelegramChat {
            let ids = jobs.iter().map(|(s, _)| *s).collect();
            self.store.quiet_hours(ids).await?.into_iter().map(|q| (q.subscriber, q)).collect()
        } else {
            HashMap::new()
        };
        let current = (self.composer.borrow().clone(), self.tree.borrow().clone());
        let same =
            st.cached_with.as_ref().is_some_and(|(c, t)| Arc::ptr_eq(c, &current.0) && Arc::ptr_eq(t, &current.1));
        if !same {
            st.cache.clear();
            st.cached_with = Some(current);
        }
        if self.batch_size() > 1 {
            let ready: Vec<Box<Ready>> =
                jobs.into_iter().filter_map(|(s, rows)| self.prepare(st, s, rows, quiet.get(&s))).collect();
            self.start_batches(st, ready);
            return Ok(());
        }
        let mut open = true;
        for (subscriber, rows) in jobs {
            let Some(ready) = self.prepare(st, subscriber, rows, quiet.get(&subscriber)) else { continue };
            if !open {
                st.busy.insert(ready.subscriber);
                st.held.push((Instant::now(), ready));
                continue;
            }
            if let Err((wait, ready)) = self.try_start(st, ready) {
                open = !matches!(wait, Wait::Global(_));
                st.busy.insert(ready.subscriber);
                st.held.push((wait.until(), ready));
            }
        }
        Ok(())
    }

    /// Plans one chat's rows; records the superseded and expired ones; renders the rest.
    fn prepare(
        &self,
        st: &mut State,
        subscriber: SubscriberId,
        rows: Vec<Claimed>,
        quiet: Option<&Quiet>,
    ) -> Option<Box<Ready>> {
        let now = now_ms();
        // Rows whose event is unknown cannot be rendered; they fail rather than loop.
        let (rows, orphans): (Vec<Claimed>, Vec<Claimed>) =
            rows.into_iter().partition(|r| st.events.contains_key(&r.key.event));
        for r in orphans {
            tracing::error!(delivery = %r.key, "delivery of an event the store does not have");
            st.to_finish.push(Finished { key: r.key, finish: Finish::Failed { error: "event missing".into() } });
        }
        let first = rows.first()?.clone();
        let events: Vec<Arc<Event>> = rows.iter().filter_map(|r| st.events.get(&r.key.event).cloned()).collect();
        let plan_rows: Vec<Row<'_>> = rows.iter().zip(&events).map(|(c, e)| Row { claimed: c, event: e }).collect();
        let planned = plan::plan(&plan_rows, now, self.policy.settings.superseded);
        let mut carried = Vec::new();
        for (i, v) in planned.verdicts.iter().enumerate() {
            let key = rows[i].key;
            match v {
                Verdict::Carried => carried.push(i),
                Verdict::Superseded => {
                    ev::Superseded.emit(&self.stats);
                    st.to_finish.push(Finished { key, finish: Finish::Superseded });
                }
                Verdict::Expired => {
                    ev::ExpiredUnsent.emit(&self.stats);
                    st.to_finish.push(Finished {
                        key,
                        finish: Finish::Expired { reason: "deadline passed before sending".into() },
                    });
                }
            }
        }
        if carried.is_empty() {
            return None;
        }
        let keys: Vec<DeliveryKey> = carried.iter().map(|&i| rows[i].key).collect();
        let fail_all = |st: &mut State, error: String| {
            for &k in &keys {
                st.to_finish.push(Finished { key: k, finish: Finish::Failed { error: error.clone() } });
            }
        };
        if self.channel.is_none() {
            ev::NoChannel { kind: self.kind, deliveries: keys.len() }.emit(&self.stats);
            fail_all(st, format!("no {} channel is configured", self.kind));
            return None;
        }
        let to = match Address::parse(self.kind, &first.address) {
            Ok(a) => a,
            Err(e) => {
                ev::Undeliverable { subscriber, error: &e, deliveries: keys.len() }.emit(&self.stats);
                fail_all(st, e.to_string());
                return None;
            }
        };
        let key: RenderKey = (
            planned
                .parts
                .iter()
                .map(|p| match *p {
                    PartRef::Event { row, as_new } => PartKey::Event { event: rows[row].key.event, as_new },
                    PartRef::Closed { start, end } => {
                        PartKey::Closed { start: rows[start].key.event, end: rows[end].key.event }
                    }
                })
                .collect(),
            first.lang,
        );
        if st.cache.len() > CACHE_MAX {
            st.cache.clear();
        }
        let text = st
            .cache
            .entry(key)
            .or_insert_with(|| {
                let parts: Vec<Part<'_>> = planned
                    .parts
                    .iter()
                    .map(|p| match *p {
                        PartRef::Event { row, as_new } => Part::Event { event: &events[row], as_new },
                        PartRef::Closed { start, end } => Part::Closed { start: &events[start], end: &events[end] },
                    })
                    .collect();
                // Rendered with what the cache was keyed on (set when this claim began).
                let (composer, tree) = match &st.cached_with {
                    Some((c, t)) => (c.clone(), t.clone()),
                    None => (self.composer.borrow().clone(), self.tree.borrow().clone()),
                };
                Arc::new(composer.render(&parts, first.lang, self.kind.format(), &tree))
            })
            .clone();
        let silent = match quiet {
            None => text.silent,
            Some(q) => {
                let parts: Vec<Part<'_>> = planned
                    .parts
                    .iter()
                    .map(|p| match *p {
                        PartRef::Event { row, as_new } => Part::Event { event: &events[row], as_new },
                        PartRef::Closed { start, end } => Part::Closed { start: &events[start], end: &events[end] },
                    })
                    .collect();
                let tree = match &st.cached_with {
                    Some((_, t)) => t.clone(),
                    None => self.tree.borrow().clone(),
                };
                quiet::silent(text.silent, Some((q.hours, q.home.as_ref())), &parts, &tree, chrono::Utc::now())
            }
        };
        let deadline_ms =
            carried.iter().map(|&i| rows[i].deadline_ms).collect::<Option<Vec<_>>>().and_then(|d| d.into_iter().max());
        let key = message_key(subscriber, &keys);
        let keyboard = match to {
            Address::TelegramChat(_) => {
                let carried_events = planned.parts.iter().filter_map(|p| match *p {
                    PartRef::Event { row, .. } => Some(&*events[row]),
                    PartRef::Closed { .. } => None,
                });
                crate::bot::help::keyboard_for(carried_events, &self.composer.borrow(), first.lang)
            }
            _ => Keyboard::None,
        };
        Some(Box::new(Ready {
            keyboard,
            key,
            subscriber,
            recipient: Recipient::of(&to),
            to,
            parts: planned.parts.len(),
            paid: carried.iter().any(|&i| self.policy.is_paid(rows[i].priority)),
            attempts: carried.iter().map(|&i| rows[i].attempts).max().unwrap_or(1),
            carried: keys,
            events_at: carried.iter().map(|&i| events[i].at).collect(),
            text,
            silent,
            deadline_ms,
        }))
    }

    /// Sends now if the limiter allows; otherwise hands the message back with the wait.
    fn try_start(&self, st: &mut State, ready: Box<Ready>) -> Result<(), (Wait, Box<Ready>)> {
        if let Some(l) = &self.limiter
            && let Err(w) = l.try_acquire(&ready.recipient, ready.paid)
        {
            return Err((w, ready));
        }
        let Some(channel) = self.channel.clone() else {
            return Ok(());
        };
        let (to, text, paid, key) = (ready.to.clone(), ready.text.clone(), ready.paid, ready.key.clone());
        let silent = ready.silent;
        let keyboard = ready.keyboard.clone();
        let limit = self.send_timeout;
        let handle = st.in_flight.spawn(async move {
            let message = Outgoing { to: &to, text: &text.text, silent, paid, keyboard: &keyboard, key: &key };
            match tokio::time::timeout(limit, channel.send(message)).await {
                Ok(r) => vec![r],
                Err(_) => vec![Err(SendError::Transient(format!("no answer within {limit:?}")))],
            }
        });
        st.busy.insert(ready.subscriber);
        st.sending.insert(handle.id(), vec![ready]);
        Ok(())
    }

    /// How many messages of one text the channel takes per request.
    fn batch_size(&self) -> usize {
        self.channel.as_ref().map_or(1, |c| c.max_batch()).max(1)
    }

    /// Starts `ready` messages as requests of one text each, as large as the channel
    /// takes and the limiter lets through; what cannot go now is held until it can.
    /// Returns false when the limiter holds everyone.
    fn start_batches(&self, st: &mut State, ready: Batch) -> bool {
        // Most urgent first was the claim's order; keep it within each text.
        let mut by_text: Vec<(Arc<Rendered>, Vec<Box<Ready>>)> = Vec::new();
        for r in ready {
            // One request carries one text, sounding or not.
            let same = |t: &Arc<Rendered>, g: &[Box<Ready>]| {
                (Arc::ptr_eq(t, &r.text) || **t == *r.text) && g.first().is_some_and(|f| f.silent == r.silent)
            };
            match by_text.iter_mut().find(|(t, g)| same(t, g)) {
                Some((_, group)) => group.push(r),
                None => by_text.push((r.text.clone(), vec![r])),
            }
        }
        let mut open = true;
        for (_, mut group) in by_text {
            while !group.is_empty() {
                if !open {
                    let now = Instant::now();
                    for r in group.drain(..) {
                        st.busy.insert(r.subscriber);
                        st.held.push((now, r));
                    }
                    break;
                }
                let take = group.len().min(self.batch_size());
                let batch: Vec<Box<Ready>> = group.drain(..take).collect();
                match self.try_start_batch(st, batch) {
                    // What the limiter left out goes first in the next request.
                    Ok(mut rest) => {
                        rest.append(&mut group);
                        group = rest;
                    }
                    Err((wait, rest)) => {
                        open = !matches!(wait, Wait::Global(_));
                        for r in rest {
                            st.busy.insert(r.subscriber);
                            st.held.push((wait.until(), r));
                        }
                    }
                }
            }
        }
        open
    }

    /// Sends as many of `batch` (one text) as the limiter lets through in one request;
    /// hands back the rest, or all of them with the wait.
    fn try_start_batch(&self, st: &mut State, mut batch: Batch) -> Result<Batch, (Wait, Batch)> {
        let n = match &self.limiter {
            Some(l) => {
                let to: Vec<Recipient> = batch.iter().map(|r| r.recipient.clone()).collect();
                match l.try_acquire_many(&to) {
                    Ok(n) => n,
                    Err(w) => return Err((w, batch)),
                }
            }
            None => batch.len(),
        };
        let rest = batch.split_off(n.min(batch.len()));
        let Some(channel) = self.channel.clone() else {
            return Ok(rest);
        };
        let (text, silent) = (batch[0].text.clone(), batch[0].silent);
        let messages: Vec<(Address, bool, String)> =
            batch.iter().map(|r| (r.to.clone(), r.paid, r.key.clone())).collect();
        let limit = self.send_timeout;
        let handle = st.in_flight.spawn(async move {
            let outgoing: Vec<Outgoing<'_>> = messages
                .iter()
                .map(|(to, paid, key)| Outgoing {
                    to,
                    text: &text.text,
                    silent,
                    paid: *paid,
                    keyboard: &Keyboard::None,
                    key,
                })
                .collect();
            match tokio::time::timeout(limit, channel.send_batch(&outgoing)).await {
                Ok(r) => r,
                Err(_) => {
                    let why = format!("no answer within {limit:?}");
                    outgoing.iter().map(|_| Err(SendError::Transient(why.clone()))).collect()
                }
            }
        });
        for r in &batch {
            st.busy.insert(r.subscriber);
        }
        st.sending.insert(handle.id(), batch);
        Ok(rest)
    }

    fn finish_all(&self, st: &mut State, ready: &Ready, finish: Finish) {
        for &key in &ready.carried {
            st.to_finish.push(Finished { key, finish: finish.clone() });
        }
    }

    async fn on_joined(
        &self,
        st: &mut State,
        joined: Result<(tokio::task::Id, Vec<Result<Sent, SendError>>), tokio::task::JoinError>,
    ) -> Result<(), StoreError> {
        let (id, results) = match joined {
            Ok((id, r)) => (id, Ok(r)),
            Err(e) => (e.id(), Err(e)),
        };
        let Some(batch) = st.sending.remove(&id) else { return Ok(()) };
        for ready in &batch {
            st.busy.remove(&ready.subscriber);
        }
        let results = match results {
            Ok(r) => r,
            // Aborted at shutdown: the rows stay claimed and are handed back by release.
            Err(e) if e.is_cancelled() => return Ok(()),
            Err(_) => {
                // The send task panicked: nothing is known of the request, so its
                // deliveries go back to the queue.
                ev::SendPanicked { kind: self.kind, messages: batch.len() }.emit(&self.stats);
                for ready in &batch {
                    let retry = Finish::Retry { not_before_ms: now_ms() + 1_000, error: "send task panicked".into() };
                    self.finish_all(st, ready, retry);
                }
                return Ok(());
            }
        };
        let mut results = results.into_iter();
        for ready in batch {
            let result =
                results.next().unwrap_or_else(|| Err(SendError::Transient("the channel gave no answer for it".into())));
            self.on_result(st, ready, result).await?;
        }
        Ok(())
    }

    /// Records what became of one message.
    async fn on_result(
        &self,
        st: &mut State,
        ready: Box<Ready>,
        result: Result<Sent, SendError>,
    ) -> Result<(), StoreError> {
        let to = ready.to.masked();
        if let Err(SendError::RateLimited { scope, retry_after }) = &result {
            // A 429 holds the limiter even when its rows expire instead of waiting:
            // sending to anyone inside the platform's wait only extends it.
            ev::RateLimited { kind: self.kind, to: &to, retry_after: *retry_after, scope: *scope }.emit(&self.stats);
            if let Some(l) = &self.limiter {
                let who = (*scope == LimitScope::Recipient).then_some(&ready.recipient);
                l.penalize(who, Instant::now() + *retry_after);
            }
        }
        let until_deadline = ready.deadline_ms.map(|d| Duration::from_millis((d - now_ms()).max(0) as u64));
        st.seed = xorshift(st.seed);
        let jitter = (st.seed % 10_000) as f64 / 10_000.0;
        let outcome = decide(result, self.kind, ready.attempts, until_deadline, &self.policy.settings, jitter);
        let n = ready.carried.len();
        match outcome {
            Outcome::Sent(platform_id) => {
                let now = chrono::Utc::now();
                let latencies: Vec<Duration> =
                    ready.events_at.iter().map(|at| (now - *at).to_std().unwrap_or_default()).collect();
                ev::Sent { kind: self.kind, to: &to, parts: ready.parts, latencies: &latencies }.emit(&self.stats);
                self.finish_all(st, &ready, Finish::Sent { platform_id });
            }
            Outcome::Retry { after, reason } => {
                ev::Retrying { kind: self.kind, to: &to, after, reason: &reason }.emit(&self.stats);
                let not_before_ms = now_ms() + after.as_millis() as i64;
                self.finish_all(st, &ready, Finish::Retry { not_before_ms, error: reason });
            }
            Outcome::Deactivate(why) => {
                let subscriber = ready.subscriber;
                ev::Deactivated { kind: self.kind, subscriber, to: &to, why: &why, deliveries: n }.emit(&self.stats);
                self.finish_all(st, &ready, Finish::Failed { error: why.clone() });
                self.store.deactivate(ready.subscriber, &why).await?;
                if let Some(d) = &self.deltas {
                    let _ = d.send(IndexDelta::Deactivated(ready.subscriber));
                }
            }
            Outcome::OperatorError(why) => {
                ev::ChannelRefused { kind: self.kind, channel: &ready.to, why: &why, deliveries: n }.emit(&self.stats);
                self.finish_all(st, &ready, Finish::Failed { error: why });
            }
            Outcome::Migrate(new) => {
                let masked = crate::config::secret::mask(&new);
                ev::Migrated { kind: self.kind, to: &to, new: &masked }.emit(&self.stats);
                self.store.rewrite_address(self.kind, &ready.to.to_string(), &new).await?;
                self.finish_all(st, &ready, Finish::Retry { not_before_ms: now_ms(), error: "chat migrated".into() });
            }
            Outcome::Fail(why) => {
                ev::Rejected { kind: self.kind, to: &to, why: &why, deliveries: n }.emit(&self.stats);
                self.finish_all(st, &ready, Finish::Failed { error: why });
            }
            Outcome::Expire(why) => {
                ev::Expired { kind: self.kind, to: &to, why: &why, deliveries: n }.emit(&self.stats);
                self.finish_all(st, &ready, Finish::Expired { reason: why });
            }
        }
        Ok(())
    }

    /// Lets requests on the wire finish for `grace`, records what was learnt, and hands
    /// every other claimed delivery back to the queue.
    async fn shutdown(&self, mut st: State, grace: Duration) -> Result<(), StoreError> {
        st.held.clear();
        let deadline = Instant::now() + grace;
        while !st.in_flight.is_empty() {
            match tokio::time::timeout_at(deadline, st.in_flight.join_next_with_id()).await {
                Ok(Some(joined)) => {
                    if let Err(e) = self.on_joined(&mut st, joined).await {
                        tracing::warn!(error = %e, "could not record a send at shutdown");
                    }
                }
                Ok(None) => break,
                Err(_) => {
                    tracing::warn!(
                        kind = %self.kind,
                        left = st.in_flight.len(),
                        "shutdown grace over; unanswered sends are queued again and may repeat"
                    );
                    st.in_flight.abort_all();
                    break;
                }
            }
        }
        self.flush(&mut st).await?;
        let released = self.store.release(self.node).await?;
        if released > 0 {
            tracing::info!(kind = %self.kind, released, "claimed deliveries handed back to the queue");
        }
        Ok(())
    }
}

fn distinct_chats(rows: &[Claimed]) -> usize {
    let set: HashSet<SubscriberId> = rows.iter().map(|r| r.key.subscriber).collect();
    set.len()
}

fn xorshift(mut x: u64) -> u64 {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    x
}

/// A message's identity: its subscriber and the deliveries it carries. A retry of the
/// same message has the same key; a message carrying one more event does not.
fn message_key(subscriber: SubscriberId, carried: &[DeliveryKey]) -> String {
    let mut events: Vec<_> = carried.iter().map(|k| k.event).collect();
    events.sort_unstable();
    format!("{subscriber}-{:016x}", super::stable_hash(&events))
}
