//! What both SMS simulators are built on: the running server's plumbing and
//! the records every request and callback leaves.
//!
//! Role: a gateway module keeps only its wire format and rules; [`Core`]
//! holds its config and state and answers the record accessors that both
//! simulators expose under the same names ([`sim_accessors!`]). The records
//! live inside the gateway's state, under its one lock, so an accepted
//! message and its counters are always seen together.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use axum::Router;
use axum::response::Response;
use tokio::sync::{oneshot, watch};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::http::{hang_up, pause, spawn};
use super::{CallbackRecord, FaultQueue, SimClock, SmsFault, SmsRequest, SmsStats, wait_for};

/// What every request and callback leaves behind, and the faults to come.
#[derive(Default)]
pub(super) struct Records {
    pub(super) faults: FaultQueue,
    pub(super) requests: Vec<SmsRequest>,
    pub(super) stats: SmsStats,
    pub(super) callbacks: Vec<CallbackRecord>,
}

impl Records {
    /// A request handled normally; `dropped` when its answer was replaced by
    /// a hang-up (an injected [`SmsFault::AcceptThenDrop`]).
    pub(super) fn answered(
        &mut self,
        path: String,
        body: &[u8],
        http_status: u16,
        code: Option<i64>,
        at: Instant,
        dropped: bool,
    ) {
        self.stats.requests += 1;
        if dropped {
            self.stats.faulted += 1;
            self.stats.dropped += 1;
        }
        let http_status = if dropped { 0 } else { http_status };
        self.push_request(path, body, http_status, code, at);
    }

    /// A request answered by a fault instead of the gateway; `http_status`
    /// 0 is a connection closed without an answer.
    pub(super) fn faulted(&mut self, path: String, body: &[u8], http_status: u16, code: Option<i64>, at: Instant) {
        self.stats.requests += 1;
        self.stats.faulted += 1;
        if http_status == 0 {
            self.stats.dropped += 1;
        }
        self.push_request(path, body, http_status, code, at);
    }

    fn push_request(&mut self, path: String, body: &[u8], http_status: u16, code: Option<i64>, at: Instant) {
        let body = String::from_utf8_lossy(body).into_owned();
        self.requests.push(SmsRequest { method: "POST".into(), path, body, http_status, code, at });
    }
}

/// A gateway's state, which carries the shared records.
pub(super) trait GatewayState: Send + 'static {
    fn records(&mut self) -> &mut Records;
    /// Messages accepted so far.
    fn sent_count(&self) -> usize;
}

/// A running simulator's shared half: config, server plumbing, clock and
/// the state behind one lock.
pub(super) struct Core<C, S> {
    pub(super) cfg: C,
    pub(super) addr: SocketAddr,
    pub(super) shutdown: CancellationToken,
    pub(super) tracker: TaskTracker,
    pub(super) clock: SimClock,
    /// Mixed into message ids, so two simulators' ids differ.
    pub(super) id_seed: u64,
    /// For logs.
    name: &'static str,
    http: OnceLock<reqwest::Client>,
    /// Bumped on every accepted message and every callback.
    changed: watch::Sender<u64>,
    state: Mutex<S>,
}

impl<C, S> Core<C, S>
where
    C: Send + Sync + 'static,
    S: GatewayState,
{
    /// Binds `127.0.0.1:0`, serves the router `routes` builds until
    /// `shutdown`, every task on `tracker`. `seed` is mixed with the port
    /// into the id seed.
    pub(super) async fn start(
        cfg: C,
        state: S,
        seed: u64,
        shutdown: CancellationToken,
        tracker: &TaskTracker,
        name: &'static str,
        routes: impl FnOnce(Arc<Self>) -> Router,
    ) -> std::io::Result<Arc<Self>> {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let core = Arc::new(Core {
            cfg,
            addr,
            shutdown: shutdown.clone(),
            tracker: tracker.clone(),
            clock: SimClock::default(),
            id_seed: seed ^ u64::from(addr.port()),
            name,
            http: OnceLock::new(),
            changed: watch::Sender::new(0),
            state: Mutex::new(state),
        });
        spawn(listener, routes(core.clone()), shutdown, tracker, name);
        tracing::debug!(%addr, sim = name, "sms sim listening");
        Ok(core)
    }

    pub(super) fn lock(&self) -> MutexGuard<'_, S> {
        // A panic while holding the lock is a simulator bug; carrying on
        // with half-updated state would hide it.
        self.state.lock().expect("sms sim state lock")
    }

    /// Wakes whoever waits for messages or callbacks.
    pub(super) fn bump(&self) {
        self.changed.send_modify(|n| *n += 1);
    }

    /// The client callbacks are posted with, made on first use.
    pub(super) fn http(&self) -> &reqwest::Client {
        self.http.get_or_init(reqwest::Client::new)
    }

    pub(super) fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Draws the next injected fault for a request that just arrived and
    /// serves it: `answer(drop_after)` handles the request normally (with
    /// `Some(hold)`, hanging up that long after instead of answering),
    /// `faulted(fault)` answers a fault that replaces all processing.
    pub(super) async fn on_arrival<A>(
        &self,
        answer: impl FnOnce(Option<Duration>) -> A,
        faulted: impl FnOnce(SmsFault) -> Response,
    ) -> Response
    where
        A: Future<Output = Response> + Send + 'static,
    {
        let fault = self.lock().records().faults.draw();
        match fault {
            None => answer(None).await,
            Some(SmsFault::AcceptThenDrop(hold)) => answer(Some(hold)).await,
            Some(SmsFault::Delay(d)) => {
                tracing::debug!(?d, sim = self.name, "sms sim: injected delay");
                self.delayed(d, answer(None)).await
            }
            Some(other) => {
                tracing::debug!(fault = ?other, sim = self.name, "sms sim: injected fault");
                faulted(other)
            }
        }
    }

    /// The end of an answer that an injected [`SmsFault::AcceptThenDrop`]
    /// replaces: hold the connection, then close it without a byte.
    pub(super) async fn hang_up_after(&self, hold: Duration) -> Response {
        tracing::debug!(?hold, sim = self.name, "sms sim: accepted, now hanging up");
        pause(&self.shutdown, hold).await;
        hang_up()
    }

    pub(super) fn inject(&self, fault: SmsFault, times: u32) {
        self.lock().records().faults.push(fault, times);
    }

    pub(super) fn clear_faults(&self) {
        self.lock().records().faults.clear();
    }

    pub(super) fn advance(&self, by: Duration) {
        self.clock.advance(by);
    }

    pub(super) fn requests(&self) -> Vec<SmsRequest> {
        self.lock().records().requests.clone()
    }

    pub(super) fn stats(&self) -> SmsStats {
        self.lock().records().stats.clone()
    }

    pub(super) fn callbacks(&self) -> Vec<CallbackRecord> {
        self.lock().records().callbacks.clone()
    }

    /// Records a callback posted (or tried) and wakes the waiters.
    pub(super) fn record_callback(&self, record: CallbackRecord) {
        self.lock().records().callbacks.push(record);
        self.bump();
    }

    /// Waits until at least `n` messages were accepted, `timeout` or
    /// shutdown.
    pub(super) async fn wait_for_sent_count(&self, n: usize, timeout: Duration) {
        wait_for(&self.changed, &self.shutdown, timeout, || self.lock().sent_count() >= n).await;
    }

    /// Waits until at least `n` callbacks were recorded and returns them all.
    pub(super) async fn wait_for_callbacks(&self, n: usize, timeout: Duration) -> Vec<CallbackRecord> {
        wait_for(&self.changed, &self.shutdown, timeout, || self.lock().records().callbacks.len() >= n).await;
        self.callbacks()
    }

    /// An injected [`SmsFault::Delay`]: counts the fault, then answers with
    /// `answer` after `delay` — which runs on the tracker, so the gateway
    /// handles the request even when the client has given up meanwhile, as
    /// the real one already has the whole request.
    async fn delayed(&self, delay: Duration, answer: impl Future<Output = Response> + Send + 'static) -> Response {
        self.lock().records().stats.faulted += 1;
        let (tx, rx) = oneshot::channel();
        let shutdown = self.shutdown.clone();
        self.tracker.spawn(async move {
            pause(&shutdown, delay).await;
            let _ = tx.send(answer.await);
        });
        rx.await.unwrap_or_else(|_| hang_up())
    }
}

/// The record accessors and `base_url`, the same on both simulators; each
/// simulator holds its [`Core`] as `inner` and implements `sent()`.
macro_rules! sim_accessors {
    () => {
        /// `http://127.0.0.1:PORT`, in place of the gateway's API host.
        pub fn base_url(&self) -> String {
            self.inner.base_url()
        }

        /// The next `times` requests draw `fault`, after those queued earlier.
        pub fn inject(&self, fault: $crate::sim::sms::SmsFault, times: u32) {
            self.inner.inject(fault, times);
        }

        pub fn clear_faults(&self) {
            self.inner.clear_faults();
        }

        /// Moves the simulator's clock forward: its rate windows (and
        /// TurboSMS's duplicate rule, Twilio's pair rule) see the time as
        /// `by` later.
        pub fn advance(&self, by: std::time::Duration) {
            self.inner.advance(by);
        }

        /// Every request answered or hung up on, in the order answers were
        /// decided (Twilio: create requests only; reads are not recorded).
        pub fn requests(&self) -> Vec<$crate::sim::sms::SmsRequest> {
            self.inner.requests()
        }

        pub fn stats(&self) -> $crate::sim::sms::SmsStats {
            self.inner.stats()
        }

        /// Delivery reports (status callbacks) posted so far, in order.
        pub fn callbacks(&self) -> Vec<$crate::sim::sms::CallbackRecord> {
            self.inner.callbacks()
        }

        /// Waits until at least `n` messages were accepted (or `timeout`,
        /// or shutdown) and returns them all.
        pub async fn wait_for_sent(&self, n: usize, timeout: std::time::Duration) -> Vec<$crate::sim::sms::SentSms> {
            self.inner.wait_for_sent_count(n, timeout).await;
            self.sent()
        }

        /// Waits until at least `n` delivery reports were posted.
        pub async fn wait_for_callbacks(
            &self,
            n: usize,
            timeout: std::time::Duration,
        ) -> Vec<$crate::sim::sms::CallbackRecord> {
            self.inner.wait_for_callbacks(n, timeout).await
        }
    };
}

pub(super) use sim_accessors;
