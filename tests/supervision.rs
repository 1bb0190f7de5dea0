//! A daemon whose store cannot be written stops instead of staying up deaf: at start
//! it refuses to run, and a store that turns read-only while it runs stops every task
//! and reports which one failed, so `sirena run` exits non-zero for systemd.
//!
//! Regression: after a restart on a store that opened read-only, the dispatcher task
//! stopped ("attempt to write a readonly database") while the process stayed up; with
//! permissions restored, 0 of 50 alerts went out and nothing exited.
//!
//! The tests run as root in CI, where file permissions do not stop writes, so the store
//! is wrapped: every write answers SQLite's own read-only error once the switch is set.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use common::*;
use sirena::alerts::{Event, EventId};
use sirena::bot::BotStats;
use sirena::channels::ChannelKind;
use sirena::demo::{Harness, Options, StoreWrapper, kharkiv_air_raid};
use sirena::messages::Lang;
use sirena::regions::{Point, RegionId};
use sirena::store::*;

struct ReadOnlySwitch {
    inner: Arc<dyn Store>,
    read_only: Arc<AtomicBool>,
    /// While set, looking up or adding a subscriber hangs (a store stuck on a lock).
    stalled: Arc<AtomicBool>,
}

impl ReadOnlySwitch {
    fn check(&self) -> Result<(), StoreError> {
        if self.read_only.load(Ordering::SeqCst) {
            let e = rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_READONLY);
            return Err(rusqlite::Error::SqliteFailure(e, Some("attempt to write a readonly database".into())).into());
        }
        Ok(())
    }

    async fn stall(&self) {
        while self.stalled.load(Ordering::SeqCst) {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

#[async_trait]
impl Store for ReadOnlySwitch {
    async fn upsert_subscriber(&self, kind: ChannelKind, address: &str, lang: Lang) -> Result<Upserted, StoreError> {
        self.check()?;
        self.stall().await;
        self.inner.upsert_subscriber(kind, address, lang).await
    }
    async fn subscriber(&self, kind: ChannelKind, address: &str) -> Result<Option<Subscriber>, StoreError> {
        self.stall().await;
        self.inner.subscriber(kind, address).await
    }
    async fn set_lang(&self, id: SubscriberId, lang: Lang) -> Result<(), StoreError> {
        self.check()?;
        self.inner.set_lang(id, lang).await
    }
    async fn deactivate(&self, id: SubscriberId, reason: &str) -> Result<u64, StoreError> {
        self.check()?;
        self.inner.deactivate(id, reason).await
    }
    async fn rewrite_address(&self, kind: ChannelKind, old: &str, new: &str) -> Result<(), StoreError> {
        self.check()?;
        self.inner.rewrite_address(kind, old, new).await
    }
    async fn add_place(&self, id: SubscriberId, region: &RegionId) -> Result<bool, StoreError> {
        self.check()?;
        self.inner.add_place(id, region).await
    }
    async fn remove_places(&self, id: SubscriberId, region: Option<&RegionId>) -> Result<Vec<RegionId>, StoreError> {
        self.check()?;
        self.inner.remove_places(id, region).await
    }
    async fn places(&self, id: SubscriberId) -> Result<Vec<RegionId>, StoreError> {
        self.inner.places(id).await
    }
    async fn active_places(&self) -> Result<Vec<(SubscriberId, RegionId)>, StoreError> {
        self.inner.active_places().await
    }
    async fn place_settings(&self, id: SubscriberId) -> Result<Vec<sirena::store::PlaceSettings>, StoreError> {
        self.inner.place_settings(id).await
    }
    async fn set_place_label(&self, id: SubscriberId, r: &RegionId, label: Option<&str>) -> Result<bool, StoreError> {
        self.check()?;
        self.inner.set_place_label(id, r, label).await
    }
    async fn set_place_kinds(
        &self,
        id: SubscriberId,
        r: &RegionId,
        kinds: Option<&[sirena::alerts::AlertKind]>,
    ) -> Result<bool, StoreError> {
        self.check()?;
        self.inner.set_place_kinds(id, r, kinds).await
    }
    async fn filtered_places(
        &self,
        id: Option<SubscriberId>,
    ) -> Result<Vec<(SubscriberId, RegionId, Vec<sirena::alerts::AlertKind>)>, StoreError> {
        self.inner.filtered_places(id).await
    }
    async fn chat_settings(&self, id: SubscriberId) -> Result<sirena::store::ChatSettings, StoreError> {
        self.inner.chat_settings(id).await
    }
    async fn set_chat_settings(&self, id: SubscriberId, s: &sirena::store::ChatSettings) -> Result<(), StoreError> {
        self.check()?;
        self.inner.set_chat_settings(id, s).await
    }
    async fn quiet_hours(&self, ids: Vec<SubscriberId>) -> Result<Vec<sirena::store::Quiet>, StoreError> {
        self.inner.quiet_hours(ids).await
    }
    async fn forget(&self, id: SubscriberId) -> Result<Vec<RegionId>, StoreError> {
        self.check()?;
        self.inner.forget(id).await
    }
    async fn import(&self, rows: Vec<Import>) -> Result<usize, StoreError> {
        self.check()?;
        self.inner.import(rows).await
    }
    async fn export(&self) -> Result<Vec<Import>, StoreError> {
        self.inner.export().await
    }
    async fn sync_region_channels(&self, channels: Vec<RegionChannel>) -> Result<PlaceChanges, StoreError> {
        self.check()?;
        self.inner.sync_region_channels(channels).await
    }
    async fn event_complete(&self, id: &EventId) -> Result<bool, StoreError> {
        self.inner.event_complete(id).await
    }
    async fn enqueue(
        &self,
        event: &Event,
        audience: Audience,
        deadline_ms: Option<i64>,
    ) -> Result<Enqueued, StoreError> {
        self.check()?;
        self.inner.enqueue(event, audience, deadline_ms).await
    }
    async fn latest_event(&self, subject: &str) -> Result<Option<Event>, StoreError> {
        self.inner.latest_event(subject).await
    }
    async fn events(&self, refs: Vec<EventRef>) -> Result<Vec<(EventRef, Event)>, StoreError> {
        self.inner.events(refs).await
    }
    async fn claim(&self, claim: Claim) -> Result<Vec<Claimed>, StoreError> {
        self.check()?;
        self.inner.claim(claim).await
    }
    async fn finish(&self, node: NodeId, done: Vec<Finished>) -> Result<(), StoreError> {
        self.check()?;
        self.inner.finish(node, done).await
    }
    async fn report(&self, kind: ChannelKind, platform_id: &str, report: Report) -> Result<u64, StoreError> {
        self.check()?;
        self.inner.report(kind, platform_id, report).await
    }
    async fn renew_leases(&self, node: NodeId, until_ms: i64) -> Result<u64, StoreError> {
        self.check()?;
        self.inner.renew_leases(node, until_ms).await
    }
    async fn release(&self, node: NodeId) -> Result<u64, StoreError> {
        self.check()?;
        self.inner.release(node).await
    }
    async fn requeue_expired_leases(&self, now_ms: i64) -> Result<u64, StoreError> {
        self.check()?;
        self.inner.requeue_expired_leases(now_ms).await
    }
    async fn next_due(&self, kind: ChannelKind) -> Result<Option<i64>, StoreError> {
        self.inner.next_due(kind).await
    }
    async fn drained(&self) -> Result<bool, StoreError> {
        self.inner.drained().await
    }
    async fn counts_by_channel(&self) -> Result<std::collections::BTreeMap<ChannelKind, Counts>, StoreError> {
        self.inner.counts_by_channel().await
    }
    async fn event(&self, id: &EventId) -> Result<Option<Event>, StoreError> {
        self.inner.event(id).await
    }
    async fn audit_append(&self, entry: AuditEntry) -> Result<(), StoreError> {
        self.check()?;
        self.inner.audit_append(entry).await
    }
    async fn audit(&self, since_ms: Option<i64>) -> Result<Vec<AuditEntry>, StoreError> {
        self.inner.audit(since_ms).await
    }
    async fn set_drills(&self, id: SubscriberId, on: bool) -> Result<(), StoreError> {
        self.check()?;
        self.inner.set_drills(id, on).await
    }
    async fn drill_subscribers(&self) -> Result<Vec<SubscriberId>, StoreError> {
        self.inner.drill_subscribers().await
    }
    async fn received(&self, event: &EventId) -> Result<Vec<SubscriberId>, StoreError> {
        self.inner.received(event).await
    }
    async fn progress(&self, events: usize) -> Result<Vec<Progress>, StoreError> {
        self.inner.progress(events).await
    }
    async fn receipts(&self, event: &EventId) -> Result<Option<(i64, Vec<Receipt>)>, StoreError> {
        self.inner.receipts(event).await
    }
    async fn purge_finished(&self, before_ms: i64) -> Result<u64, StoreError> {
        self.check()?;
        self.inner.purge_finished(before_ms).await
    }
    async fn kv_get(&self, key: &str) -> Result<Option<String>, StoreError> {
        self.inner.kv_get(key).await
    }
    async fn kv_put(&self, key: &str, value: &str) -> Result<(), StoreError> {
        self.check()?;
        self.inner.kv_put(key, value).await
    }
    async fn set_place_point(&self, id: SubscriberId, region: &RegionId, point: Point) -> Result<(), StoreError> {
        self.check()?;
        self.inner.set_place_point(id, region, point).await
    }
    async fn place_points(&self, id: SubscriberId) -> Result<Vec<(RegionId, Point)>, StoreError> {
        self.inner.place_points(id).await
    }
    async fn link_sms(&self, chat: SubscriberId, sms: SubscriberId) -> Result<(), StoreError> {
        self.check()?;
        self.inner.link_sms(chat, sms).await
    }
    async fn linked_sms(&self, chat: SubscriberId) -> Result<Option<SubscriberId>, StoreError> {
        self.inner.linked_sms(chat).await
    }
    async fn unlink_sms(&self, chat: SubscriberId) -> Result<Option<SubscriberId>, StoreError> {
        self.check()?;
        self.inner.unlink_sms(chat).await
    }
    async fn save_help_request(&self, request: &HelpRequest) -> Result<bool, StoreError> {
        self.check()?;
        self.inner.save_help_request(request).await
    }
    async fn help_request(&self, id: SubscriberId, order: Option<&str>) -> Result<Option<HelpRequest>, StoreError> {
        self.inner.help_request(id, order).await
    }
    async fn help_requests(&self, order: Option<&str>) -> Result<Vec<HelpRequest>, StoreError> {
        self.inner.help_requests(order).await
    }
    async fn purge_help_requests(&self, before_ms: i64) -> Result<u64, StoreError> {
        self.check()?;
        self.inner.purge_help_requests(before_ms).await
    }
}

fn switched(read_only: &Arc<AtomicBool>) -> StoreWrapper {
    switches(read_only, &Arc::new(AtomicBool::new(false)))
}

fn switches(read_only: &Arc<AtomicBool>, stalled: &Arc<AtomicBool>) -> StoreWrapper {
    let (read_only, stalled) = (read_only.clone(), stalled.clone());
    StoreWrapper(Arc::new(move |inner| {
        Arc::new(ReadOnlySwitch { inner, read_only: read_only.clone(), stalled: stalled.clone() }) as Arc<dyn Store>
    }))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_that_cannot_be_written_refuses_the_start() {
    let read_only = Arc::new(AtomicBool::new(true));
    let started = Harness::start(Options { wrap_store: Some(switched(&read_only)), ..Options::default() }).await;
    let error = format!("{:#}", started.err().expect("the daemon must not start"));
    assert!(error.contains("cannot be written") && error.contains("readonly"), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_that_turns_read_only_stops_the_daemon_and_says_which_task() {
    let read_only = Arc::new(AtomicBool::new(false));
    let seed = sirena::bench::residents(5000, 3, KHARKIV_CITY);
    let mut h = Harness::start(Options { seed, wrap_store: Some(switched(&read_only)), ..Options::default() })
        .await
        .expect("harness");
    h.feed.set_alerts(vec![kharkiv_air_raid()]);
    h.next_fanout(WAIT, started(sirena::alerts::AlertKind::AirRaid)).await.expect("air raid");
    h.wait_drained(WAIT).await.expect("delivered while the store was fine");
    read_only.store(true, Ordering::SeqCst);
    let failure = tokio::time::timeout(Duration::from_secs(60), h.daemon.failed()).await.expect("the daemon gave up");
    assert!(failure.task.starts_with("dispatcher") || failure.task == "pipeline", "{failure:?}");
    assert!(failure.reason.contains("readonly"), "{failure:?}");
    // Every task stops; shutdown returns instead of hanging on a deaf task.
    tokio::time::timeout(Duration::from_secs(20), h.shutdown()).await.expect("everything stopped");
}

/// A bot update stuck on a hung store is cut off at `handle_timeout`: the resident is
/// told something went wrong instead of hearing nothing, the timeout is counted, and
/// the chat is answered normally once the store is back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_update_stuck_on_the_store_is_answered_at_the_handle_timeout() {
    const CHAT: i64 = 4242;
    let stalled = Arc::new(AtomicBool::new(true));
    let wrap = switches(&Arc::new(AtomicBool::new(false)), &stalled);
    let opts = Options { wrap_store: Some(wrap), handle_timeout: Some(Duration::from_secs(1)), ..Options::default() };
    let h = Harness::start(opts).await.expect("harness");
    let bot = h.daemon.bot.clone().expect("the demo runs the bot");
    h.telegram.add_user(CHAT, "Resident", Some("uk"));
    h.telegram.user_sends(CHAT, "/start");
    wait_until("the error reply", || !h.telegram.sent_to(CHAT).is_empty()).await;
    // The update is counted once its answers are out.
    wait_until("the update settled", || bot.settled()).await;
    let said = texts(&h.telegram.sent_to(CHAT)).join("\n");
    assert!(said.contains("Сталася помилка"), "{said}");
    assert_eq!(BotStats::get(&bot.timed_out), 1);
    assert_eq!(BotStats::get(&bot.handled), 1, "a timed-out update is still handled");

    stalled.store(false, Ordering::SeqCst);
    h.telegram.user_sends(CHAT, "/start");
    wait_until("the real answer", || h.telegram.sent_to(CHAT).len() >= 2).await;
    wait_until("the second update settled", || bot.settled()).await;
    let again = texts(&h.telegram.sent_to(CHAT)[1..]).join("\n");
    assert!(!again.contains("Сталася помилка"), "{again}");
    assert_eq!(BotStats::get(&bot.timed_out), 1);
    h.shutdown().await;
}
