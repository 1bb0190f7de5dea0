//! Drills: scheduled test messages, and the receipt report a national test publishes.
//!
//! [`next_run`] and [`report`] are pure. [`DrillRunner`] does the IO: it sleeps until
//! the next drill is due, hands the drill's event to the pipeline (which sends it to
//! the residents of its places who opted in), and once every delivery of a run is done
//! — or its deadline passed — writes the report to the operators' chats.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::alerts::{AlertKind, Event, EventDetail, EventId, Priority, Transition};
use crate::channels::ChannelKind;
use crate::config::drills::{DrillSettings, RetentionSettings};
use crate::messages::kyiv;
use crate::messages::plural::count;
use crate::regions::RegionId;
use crate::store::{DeliveryState, Receipt, Store, StoreError};

/// When `schedule` (Kyiv wall-clock time) is next due after `after`.
pub fn next_run(schedule: &cron::Schedule, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let local = kyiv(after);
    let next = schedule.after(&local).next()?.with_timezone(&Utc);
    // Across a change of Kyiv's offset the wall-clock time moved: ask again in the
    // offset in force at the answer.
    let offset = *kyiv(next).offset();
    if offset == *local.offset() {
        return Some(next);
    }
    let again = schedule.after(&after.with_timezone(&offset)).next()?.with_timezone(&Utc);
    Some(again)
}

/// The event of one run of a drill.
pub fn drill_event(drill: &str, places: Vec<RegionId>, text: Option<String>, at: DateTime<Utc>) -> Event {
    let run = at.format("%Y%m%dT%H%M%SZ").to_string();
    Event {
        id: EventId(format!("drill:{drill}:{run}:started")),
        kind: AlertKind::Info,
        transition: Transition::Started,
        revision: 1,
        targets: places,
        reach: Default::default(),
        at,
        // The lowest class: a drill never overtakes anything real.
        priority: Priority::Info,
        detail: EventDetail::Drill { drill: drill.to_owned(), run, text },
    }
}

/// One channel's figures.
#[derive(Clone, Debug, PartialEq)]
pub struct ChannelFigures {
    pub recipients: usize,
    /// Sent (the platform took it) or delivered (the phone has it).
    pub delivered: usize,
    /// Still queued or being sent.
    pub open: usize,
    /// Seconds from the drill to each sent message's send, p50 and p99.
    pub p50_s: Option<f64>,
    pub p99_s: Option<f64>,
    /// Sent after more than one attempt: an attempt whose answer was lost may have
    /// reached the phone too, so this is an upper bound of duplicates.
    pub maybe_duplicates: usize,
}

impl ChannelFigures {
    pub fn share(&self) -> f64 {
        if self.recipients == 0 { 0.0 } else { self.delivered as f64 / self.recipients as f64 }
    }

    /// The channel's receipt line, the same in `sirena drills report` and the
    /// operators' chat: `telegram: 3/4 delivered (75.0%), p50 2.0 s, p99 3.0 s,
    /// possible duplicates 1`, and `, 1 still open` while any is.
    pub fn line(&self, kind: ChannelKind) -> String {
        let secs = |s: Option<f64>| s.map_or("—".to_owned(), |s| format!("{s:.1} s"));
        let mut line = format!(
            "{}: {}/{} delivered ({:.1}%), p50 {}, p99 {}, possible duplicates {}",
            kind.as_str(),
            self.delivered,
            self.recipients,
            self.share() * 100.0,
            secs(self.p50_s),
            secs(self.p99_s),
            self.maybe_duplicates,
        );
        if self.open > 0 {
            let _ = write!(line, ", {} still open", self.open);
        }
        line
    }
}

/// What a national test would publish about one run.
#[derive(Clone, Debug, PartialEq)]
pub struct Report {
    pub event: EventId,
    pub by_channel: BTreeMap<ChannelKind, ChannelFigures>,
}

impl Report {
    /// True when nothing is queued or being sent any more.
    pub fn done(&self) -> bool {
        self.by_channel.values().all(|c| c.open == 0)
    }

    /// One line per channel ([`ChannelFigures::line`]), or one saying nobody had
    /// opted in.
    pub fn lines(&self) -> Vec<String> {
        if self.by_channel.is_empty() {
            return vec!["nobody had opted in".to_owned()];
        }
        self.by_channel.iter().map(|(kind, c)| c.line(*kind)).collect()
    }
}

/// The report of a run whose event was stored at `from_ms`.
pub fn report(event: EventId, from_ms: i64, receipts: &[Receipt]) -> Report {
    let mut by_kind: BTreeMap<ChannelKind, Vec<&Receipt>> = BTreeMap::new();
    for r in receipts {
        by_kind.entry(r.kind).or_default().push(r);
    }
    let by_channel = by_kind
        .into_iter()
        .map(|(kind, rows)| {
            let sent = |r: &&&Receipt| matches!(r.state, DeliveryState::Sent | DeliveryState::Delivered);
            let mut waits: Vec<f64> = rows
                .iter()
                .filter(sent)
                .filter_map(|r| r.sent_at_ms)
                .map(|t| (t - from_ms).max(0) as f64 / 1000.0)
                .collect();
            waits.sort_by(f64::total_cmp);
            let figures = ChannelFigures {
                recipients: rows.len(),
                delivered: rows.iter().filter(sent).count(),
                open: rows
                    .iter()
                    .filter(|r| matches!(r.state, DeliveryState::Pending | DeliveryState::Sending))
                    .count(),
                p50_s: percentile(&waits, 0.50),
                p99_s: percentile(&waits, 0.99),
                maybe_duplicates: rows.iter().filter(sent).filter(|r| r.attempts > 1).count(),
            };
            (kind, figures)
        })
        .collect();
    Report { event, by_channel }
}

/// Nearest-rank percentile of sorted values.
fn percentile(sorted: &[f64], q: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    Some(sorted[rank - 1])
}

/// The report on one line, channels separated by `; ` (the operators' chat and the log).
pub fn describe(r: &Report) -> String {
    r.lines().join("; ")
}

/// Reads one run's report from the store.
pub async fn read_report(store: &dyn Store, event: &EventId) -> Result<Option<Report>, StoreError> {
    Ok(store.receipts(event).await?.map(|(from_ms, rows)| report(event.clone(), from_ms, &rows)))
}

/// Runs the `[[drill]]` schedules until cancelled.
pub struct DrillRunner {
    pub drills: Vec<DrillSettings>,
    pub store: Arc<dyn Store>,
    /// Into the pipeline.
    pub events: mpsc::Sender<Event>,
    /// Where reports go: `Notice::DrillReport`, which the operators' chats get.
    pub notices: tokio::sync::broadcast::Sender<crate::pipeline::Notice>,
    /// How often runs in flight are checked for completion.
    pub check_every: Duration,
}

struct InFlight {
    drill: String,
    run: String,
    event: EventId,
    deadline: DateTime<Utc>,
}

impl DrillRunner {
    pub async fn run(self, cancel: CancellationToken) {
        let schedules: Vec<(DrillSettings, cron::Schedule)> = self
            .drills
            .iter()
            .filter_map(|d| match d.cron() {
                Ok(s) => Some((d.clone(), s)),
                Err(e) => {
                    tracing::error!(drill = %d.id.get_ref(), error = %e, "drill schedule unreadable; skipped");
                    None
                }
            })
            .collect();
        let mut after = Utc::now();
        let mut flying: Vec<InFlight> = Vec::new();
        let mut check = tokio::time::interval(self.check_every);
        check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let next = schedules.iter().filter_map(|(d, s)| next_run(s, after).map(|t| (t, d))).min_by_key(|(t, _)| *t);
            let wait = next.map(|(t, _)| (t - Utc::now()).to_std().unwrap_or(Duration::ZERO));
            tokio::select! {
                () = cancel.cancelled() => return,
                () = sleep_or_never(wait) => {
                    let Some((at, d)) = next else { continue };
                    after = at;
                    let event = drill_event(d.id.get_ref(), d.regions(), d.text.clone(), at);
                    let EventDetail::Drill { run, .. } = &event.detail else { continue };
                    let run = run.clone();
                    let id = event.id.clone();
                    tracing::info!(drill = %d.id.get_ref(), %run, "drill due");
                    let entry = super::audit::entry(super::audit::SYSTEM, "drill_started", id.0.clone());
                    if let Err(e) = self.store.audit_append(entry).await {
                        tracing::warn!(error = %e, "audit log not written");
                    }
                    if self.events.send(event).await.is_err() {
                        return;
                    }
                    let deadline = at + chrono::Duration::from_std(d.deadline).unwrap_or(chrono::Duration::hours(1));
                    flying.push(InFlight { drill: d.id.get_ref().clone(), run, event: id, deadline });
                }
                _ = check.tick(), if !flying.is_empty() => {
                    let mut still = Vec::new();
                    for f in flying.drain(..) {
                        match read_report(&*self.store, &f.event).await {
                            // Not stored yet (the pipeline has it queued), or in progress.
                            Ok(None) if Utc::now() < f.deadline => still.push(f),
                            Ok(Some(r)) if !r.done() && Utc::now() < f.deadline => still.push(f),
                            Ok(r) => {
                                let r = r.unwrap_or(Report { event: f.event.clone(), by_channel: BTreeMap::new() });
                                tracing::info!(drill = %f.drill, run = %f.run, report = %describe(&r), "drill report");
                                let summary = describe(&r);
                                let notice = crate::pipeline::Notice::DrillReport { drill: f.drill, run: f.run, summary };
                                let _ = self.notices.send(notice);
                            }
                            Err(e) => {
                                tracing::warn!(error = %e, "drill report not read; trying again");
                                still.push(f);
                            }
                        }
                    }
                    flying = still;
                }
            }
        }
    }
}

/// Once a day (the first run at start), deletes what `[retention]` says is kept no
/// longer ([`retain_once`]).
pub async fn retention(store: Arc<dyn Store>, settings: RetentionSettings, cancel: CancellationToken) {
    let mut daily = tokio::time::interval(Duration::from_secs(24 * 3600));
    daily.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = cancel.cancelled() => return,
            _ = daily.tick() => {}
        }
        retain_once(&*store, &settings, crate::store::now_ms()).await;
    }
}

/// One retention run at `now_ms` (the store's clock): deletes finished deliveries
/// older than `delivered_days` ([`Store::purge_finished`]) and help requests of orders
/// that ended more than `help_requests_days` ago ([`Store::purge_help_requests`]),
/// logs and audits how many went. A store error is logged; the next run tries again.
pub async fn retain_once(store: &dyn Store, settings: &RetentionSettings, now_ms: i64) {
    let before = |days: u32| now_ms - i64::from(days) * 86_400_000;
    if let Some(days) = settings.delivered_days {
        match store.purge_finished(before(days)).await {
            Ok(n) => {
                tracing::info!(removed = n, days, "retention: finished deliveries deleted");
                let what = format!(
                    "{} older than {} deleted",
                    count(n as usize, "finished delivery", "finished deliveries"),
                    count(days as usize, "day", "days")
                );
                retention_audit(store, what).await;
            }
            Err(e) => tracing::warn!(error = %e, "retention: could not delete old deliveries; trying tomorrow"),
        }
    }
    if let Some(days) = settings.help_requests_days {
        match store.purge_help_requests(before(days)).await {
            Ok(n) => {
                tracing::info!(removed = n, days, "retention: help requests of ended orders deleted");
                let what = format!(
                    "{} of orders ended more than {} ago deleted",
                    count(n as usize, "help request", "help requests"),
                    count(days as usize, "day", "days")
                );
                retention_audit(store, what).await;
            }
            Err(e) => tracing::warn!(error = %e, "retention: could not delete old help requests; trying tomorrow"),
        }
    }
}

async fn retention_audit(store: &dyn Store, what: String) {
    let entry = super::audit::entry(super::audit::SYSTEM, "retention", what);
    if let Err(e) = store.audit_append(entry).await {
        tracing::warn!(error = %e, "audit log not written");
    }
}

async fn sleep_or_never(wait: Option<Duration>) {
    match wait {
        Some(w) => tokio::time::sleep(w).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).expect("time").with_timezone(&Utc)
    }

    #[test]
    fn schedules_are_kyiv_time_across_summer_time() {
        let mondays_10 = crate::config::drills::parse_schedule("0 10 * * Mon").expect("cron");
        // Winter: Kyiv is UTC+2.
        assert_eq!(next_run(&mondays_10, at("2026-12-01T00:00:00Z")), Some(at("2026-12-07T08:00:00Z")));
        // Summer: UTC+3.
        assert_eq!(next_run(&mondays_10, at("2026-07-01T00:00:00Z")), Some(at("2026-07-06T07:00:00Z")));
        // Asked on the Sunday the clocks go back (25 Oct 2026): Monday is in winter time.
        assert_eq!(next_run(&mondays_10, at("2026-10-24T23:00:00Z")), Some(at("2026-10-26T08:00:00Z")));
    }

    /// `help_requests_days` reaches the store: a request of an order lifted "two days
    /// ago" (the run's clock two days ahead) goes with one day, stays with three, and
    /// stays when the key is absent; each run that deletes says so in the audit log.
    #[tokio::test]
    async fn a_retention_run_deletes_help_requests_of_orders_ended_days_ago() {
        use crate::alerts::orders::{OrderBook, OrderStatus};
        use crate::store::conformance::evacuation;
        use crate::store::{Audience, HelpRequest, HelpStep, SqliteStore};
        let store = SqliteStore::open_in_memory().expect("store");
        let place = RegionId::parse("UA63120270010096107").expect("id");
        let chat = store.upsert_subscriber(ChannelKind::TelegramChat, "1", crate::messages::Lang::Uk).await;
        let chat = chat.expect("subscriber").subscriber.id;
        let mut book = OrderBook::default();
        for status in [OrderStatus::Mandatory, OrderStatus::Lifted] {
            for e in book.apply(&[evacuation("lifted", status)], at("2026-01-01T00:00:00Z")) {
                store.enqueue(&e, Audience::Subscribers(vec![chat]), None).await.expect("enqueue");
            }
        }
        let request = HelpRequest {
            subscriber: chat,
            address: String::new(),
            order: "lifted".into(),
            region: place.clone(),
            people: Some(2),
            mobility: None,
            phone: Some("+380501234567".into()),
            step: HelpStep::Done,
            created_ms: 0,
            updated_ms: 0,
        };
        store.save_help_request(&request).await.expect("save");
        let in_two_days = crate::store::now_ms() + 2 * 86_400_000;

        retain_once(&store, &RetentionSettings { delivered_days: Some(1), help_requests_days: None }, in_two_days)
            .await;
        assert_eq!(store.help_requests(None).await.expect("list").len(), 1, "no help_requests_days: kept for ever");
        let keep = |days| RetentionSettings { delivered_days: None, help_requests_days: Some(days) };
        retain_once(&store, &keep(3), in_two_days).await;
        assert_eq!(store.help_requests(None).await.expect("list").len(), 1, "ended two days ago, kept for three");
        retain_once(&store, &keep(1), in_two_days).await;
        assert_eq!(store.help_requests(None).await.expect("list").len(), 0, "ended two days ago, kept for one");
        let audit = store.audit(None).await.expect("audit");
        let said: Vec<&str> = audit.iter().filter(|e| e.action == "retention").map(|e| e.what.as_str()).collect();
        assert!(said.contains(&"1 help request of orders ended more than 1 day ago deleted"), "{said:?}");
    }

    #[test]
    fn a_report_has_share_latencies_and_possible_duplicates() {
        let r = |kind, state, attempts, sent: Option<i64>| Receipt { kind, state, attempts, sent_at_ms: sent };
        let rows = vec![
            r(ChannelKind::TelegramChat, DeliveryState::Sent, 1, Some(1_000)),
            r(ChannelKind::TelegramChat, DeliveryState::Sent, 2, Some(3_000)),
            r(ChannelKind::TelegramChat, DeliveryState::Delivered, 1, Some(2_000)),
            r(ChannelKind::TelegramChat, DeliveryState::Failed, 3, None),
            r(ChannelKind::Sms, DeliveryState::Pending, 0, None),
        ];
        let rep = report(EventId("drill:x:1:started".into()), 0, &rows);
        let tg = &rep.by_channel[&ChannelKind::TelegramChat];
        assert_eq!((tg.recipients, tg.delivered, tg.open, tg.maybe_duplicates), (4, 3, 0, 1));
        assert_eq!(tg.share(), 0.75);
        assert_eq!((tg.p50_s, tg.p99_s), (Some(2.0), Some(3.0)));
        let sms = &rep.by_channel[&ChannelKind::Sms];
        assert_eq!((sms.delivered, sms.open, sms.p50_s), (0, 1, None));
        assert!(!rep.done());
        let lines = [
            "telegram: 3/4 delivered (75.0%), p50 2.0 s, p99 3.0 s, possible duplicates 1",
            "sms: 0/1 delivered (0.0%), p50 —, p99 —, possible duplicates 0, 1 still open",
        ];
        // Channels in ChannelKind's order; the chat has them on one line.
        assert_eq!(rep.lines(), lines.map(str::to_owned).to_vec());
        assert_eq!(describe(&rep), lines.join("; "));
        let nobody = Report { event: rep.event.clone(), by_channel: BTreeMap::new() };
        assert_eq!(describe(&nobody), "nobody had opted in");
    }
}
