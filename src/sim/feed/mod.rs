//! Feed simulator: alerts.in.ua, ukrainealarm v3 and a CAP 1.2 feed, all
//! serving one timeline of alerts.
//!
//! Role: stands in for `api.alerts.in.ua`, `api.ukrainealarm.com` and an
//! official CAP publisher so the real feed adapters can poll them on
//! loopback, and so tests and drills can switch alerts on and off
//! ([`FeedSim::set_alerts`]) and make each feed misbehave on its own.
//! Every change to the list is one step of the timeline: alerts.in.ua moves
//! its `Last-Modified`, ukrainealarm its `lastActionIndex` and its webhook
//! pushes, the CAP feed publishes an `Alert`, `Update` or `Cancel` message.
//!
//! Rules each feed enforces (details in its module):
//! - [`alerts_in_ua`]: `GET /v1/alerts/active.json`, `Authorization: Bearer
//!   <token>` or `?token=` (else 401), `requests_per_min` in any sliding
//!   60 s window (else 429), `If-Modified-Since` → 304;
//! - [`ukrainealarm`]: `GET /api/v3/alerts`, `/api/v3/alerts/{regionId}`,
//!   `/api/v3/alerts/status`, `/api/v3/regions`, with the bare key in
//!   `Authorization` (a `Bearer ` prefix is refused); wrong key and
//!   throttling both get 401, as on the real service; webhook pushes of
//!   oblast records ([`FeedSim::push_webhook`], [`FeedSim::set_webhook`]);
//! - [`cap`]: `GET /cap/index.atom` (the last `cap_keep` messages, newest
//!   first) and `GET /cap/messages/{id}.xml`; public, no limit.
//!
//! A revoked token ([`FeedSim::revoke`]) gets 401 on every request to that
//! feed, in the feed's own error style, until [`FeedSim::restore`].
//!
//! Injected faults (`FeedSim::inject_for`) are queued per feed and replace
//! that feed's next answers, before authentication and rate limiting, and do
//! not count towards the rate limit: they model the path to the API failing,
//! not the API refusing. Two are different: [`Fault::EmptyList`] (and
//! [`Fault::ListMissing`]) waits for a request that lists alerts (a status or
//! regions request leaves it queued),
//! and [`Fault::Stall`] goes through the normal path but serves the timeline
//! as it stood when the stall began, for as many requests as it was injected
//! — a feed whose data has stopped moving while it still answers 200.
//!
//! Each change is a numbered version of the list ([`FeedSim::set_alerts`]
//! returns it), and the simulator notes when a whole list of each version
//! first went out on alerts.in.ua or ukrainealarm's `/api/v3/alerts`
//! ([`FeedSim::first_served`]): `sirena bench latency` measures from there.

pub mod alerts_in_ua;
pub mod cap;
pub mod ukrainealarm;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, TimeDelta, Utc};
use serde_json::json;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Clients poll on a timer, and loopback jitter can put two polls spaced a
/// full window apart slightly inside it; this slack keeps such a client legal.
const WINDOW_TOLERANCE: Duration = Duration::from_millis(15);

const RATE_WINDOW: Duration = Duration::from_secs(60);

/// Alert ids start where the real API's were in 2024, so code that confuses
/// alert ids with location uids shows up.
const FIRST_ALERT_ID: u64 = 40_001;

/// What the simulated feeds accept and how they format what they serve.
#[derive(Clone, Debug)]
pub struct FeedSimConfig {
    /// The only alerts.in.ua token accepted.
    pub token: String,
    /// alerts.in.ua requests allowed in any sliding 60 s window.
    pub requests_per_min: u32,
    /// The live API sends `location_uid` as a string; some fixtures use ints.
    pub uid_as_string: bool,
    /// The only ukrainealarm key accepted (sent bare, without `Bearer`).
    pub ukrainealarm_key: String,
    /// ukrainealarm requests allowed in any sliding 60 s window; the provider
    /// publishes no figure, so this is a guess to be tuned.
    pub ukrainealarm_requests_per_min: u32,
    /// How many CAP messages the Atom index lists and the feed keeps.
    pub cap_keep: usize,
    /// The CAP `sender` of every message.
    pub cap_sender: String,
}

impl Default for FeedSimConfig {
    fn default() -> Self {
        Self {
            token: "sim-alerts-token".to_owned(),
            requests_per_min: 8,
            uid_as_string: true,
            ukrainealarm_key: "sim-ukrainealarm-key".to_owned(),
            ukrainealarm_requests_per_min: 60,
            cap_keep: 50,
            cap_sender: "sim-cap@sirena.invalid".to_owned(),
        }
    }
}

/// One active alert, as the feeds will list it. `Default` gives an empty
/// alert dated 1970, to be filled in with struct update syntax.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SimAlert {
    /// alerts.in.ua `location_uid`, the same number as ukrainealarm `regionId`.
    pub location_uid: u32,
    pub location_title: String,
    /// `oblast`, `raion`, `hromada` or `city`.
    pub location_type: String,
    pub location_oblast: String,
    pub location_oblast_uid: u32,
    /// `air_raid`, `artillery_shelling`, `urban_fights`, `chemical`,
    /// `nuclear`, or anything else the adapter must tolerate.
    pub alert_type: String,
    pub started_at: DateTime<Utc>,
    /// alerts.in.ua `location_title_en`; `null` when `None`. ukrainealarm's
    /// `regionEngName` of an oblast record (else `""`, as the provider sends).
    pub location_title_en: Option<String>,
    /// alerts.in.ua `alert_level` (`red`, `yellow`, …), left out when `None`
    /// as in bodies from before levels; ukrainealarm renders it as an
    /// `activeAlertLevels` entry when the alert has no threats.
    pub alert_level: Option<String>,
    /// alerts.in.ua `threats`, listed as objects (`threat_type`, `level`,
    /// `started_at`, `source_message`) when any; ukrainealarm says them in
    /// one `activeAlertLevels` entry per level, its Ukrainian `reason`
    /// naming them.
    pub threats: Vec<SimThreat>,
    /// alerts.in.ua `threats` served exactly as given instead of rendering
    /// `threats`: plain names as older bodies had, or garbage the adapter
    /// must survive. The other feeds ignore it.
    pub threats_as_sent: Option<serde_json::Value>,
    /// The region's KATOTTG code, for the CAP geocode (omitted when `None`).
    pub katottg: Option<String>,
    /// The sender's instruction per language tag (`uk-UA`, `en-US`), e.g. where to
    /// gather for an evacuation. Only the CAP feed carries it (`<instruction>`); the
    /// JSON feeds have no such field.
    pub instructions: Vec<(String, String)>,
}

/// One threat of an alert, as the live alerts.in.ua API lists it (its
/// official Python client 0.4.0, DESIGN §11).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SimThreat {
    /// `threat_type`: `tactic_aircraft_activity`, `strategic_aircraft_activity`,
    /// `mig31k_departure`, `ballistic_missiles`, `cruise_missiles`,
    /// `unspecified_missiles`, `drones`, `guided_aerial_bombs`, `air_defense`,
    /// `unknown`, or anything else the adapter must tolerate.
    pub threat_type: String,
    /// `red` or `yellow`: the threat's own level, which may differ from its
    /// alert's (a yellow alert can carry a red threat).
    pub level: String,
    /// `started_at`; the alert's start when `None`.
    pub started_at: Option<DateTime<Utc>>,
    /// `source_message`, the words the threat was read from; `null` when `None`.
    pub source_message: Option<String>,
}

impl SimThreat {
    /// A threat of `threat_type` at `level`, from its alert's start, without words.
    pub fn new(threat_type: &str, level: &str) -> SimThreat {
        SimThreat { threat_type: threat_type.to_owned(), level: level.to_owned(), ..SimThreat::default() }
    }
}

impl SimAlert {
    /// What identifies one occurrence across changes of the list.
    fn key(&self) -> AlertId {
        (self.location_uid, self.alert_type.clone(), self.started_at.timestamp_millis())
    }
}

/// (location uid, alert type, start in ms).
type AlertId = (u32, String, i64);

/// A misbehaviour to serve instead of the normal answer.
#[derive(Clone, Debug, PartialEq)]
pub enum Fault {
    /// This status with the feed's error body.
    Status(u16),
    /// Sleep, then answer normally; with a short client timeout this is a
    /// timeout. Cut short by shutdown.
    Delay(Duration),
    /// 200 with an HTML error page, as a broken proxy sends.
    Garbage,
    /// 200 with the real body cut in half.
    Truncated,
    /// 200 with a valid body listing no alerts.
    EmptyList,
    /// 200 with a body whose list of alerts is missing, not empty: alerts.in.ua
    /// without `alerts`, ukrainealarm records without `activeAlerts` (a
    /// serialiser bug or a rewriting proxy). Waits for a listing request, like
    /// [`Fault::EmptyList`]; the CAP feed answers normally.
    ListMissing,
    /// The normal answer, from the timeline as it stood when the stall began.
    Stall,
    /// 401 with the feed's body, as ukrainealarm answers throttling.
    Unauthorized,
}

/// Which feed a fault, a request count or a stall belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum FeedKind {
    AlertsInUa,
    UkraineAlarm,
    Cap,
}

impl FeedKind {
    fn index(self) -> usize {
        match self {
            FeedKind::AlertsInUa => 0,
            FeedKind::UkraineAlarm => 1,
            FeedKind::Cap => 2,
        }
    }

    /// The feed's name as people write it.
    pub fn label(self) -> &'static str {
        match self {
            FeedKind::AlertsInUa => "alerts.in.ua",
            FeedKind::UkraineAlarm => "ukrainealarm",
            FeedKind::Cap => "CAP",
        }
    }
}

/// Where webhook pushes go: a URL on loopback, with a secret in a header.
#[derive(Clone, Debug)]
pub struct WebhookTarget {
    pub url: String,
    pub secret_header: String,
    pub secret: String,
}

#[derive(Debug, thiserror::Error)]
pub enum PushError {
    #[error("webhook URL {0} is not on 127.0.0.1")]
    NotLoopback(String),
    #[error("no oblast with region id {0} has been in the timeline")]
    UnknownRegion(u32),
    #[error("bad secret header: {0}")]
    BadHeader(String),
    #[error("push failed: {0}")]
    Http(#[from] reqwest::Error),
}

/// A running simulator. Cloning is cheap; all clones share one server.
#[derive(Clone)]
pub struct FeedSim {
    inner: Arc<Inner>,
}

struct Inner {
    cfg: FeedSimConfig,
    addr: SocketAddr,
    shutdown: CancellationToken,
    state: Mutex<FeedState>,
    pushes: AtomicU64,
    http: OnceLock<reqwest::Client>,
    /// To the webhook worker, which posts in order.
    push_queue: mpsc::UnboundedSender<(WebhookTarget, Vec<u8>)>,
    /// When a whole list of each version first went out, per feed.
    served: Arc<Mutex<HashMap<(FeedKind, u64), Instant>>>,
}

/// The timeline as it stands at one step; a stall keeps an old one.
#[derive(Clone, Debug)]
struct View {
    /// One more per [`FeedSim::set_alerts`]; 0 before the first.
    version: u64,
    /// With the alerts.in.ua id each was given when it first appeared.
    alerts: Vec<(u64, SimAlert)>,
    /// Whole seconds, since HTTP dates carry no more.
    last_modified: DateTime<Utc>,
    /// ukrainealarm's `lastActionIndex`: one more per alert started, ended
    /// or changed.
    action_index: u64,
    /// Newest first, at most `cap_keep`.
    cap: VecDeque<Arc<cap::Message>>,
}

/// One feed's faults, stall, rate window and counts.
#[derive(Default)]
struct Lane {
    faults: VecDeque<Fault>,
    stalled: Option<Arc<View>>,
    hits: VecDeque<Instant>,
    requests: u64,
    /// Requests refused for the budget (429 on alerts.in.ua, 401 on ukrainealarm).
    refused: u64,
    /// The feed's token was revoked ([`FeedSim::revoke`]): every request gets 401.
    revoked: bool,
}

/// A region that has been in the timeline, for ukrainealarm's region views.
#[derive(Clone, Debug)]
struct KnownRegion {
    name: String,
    location_type: String,
    oblast_uid: u32,
}

struct FeedState {
    view: Arc<View>,
    /// Ids stay stable while the same alert stays active, as on alerts.in.ua.
    ids: HashMap<AlertId, u64>,
    next_id: u64,
    lanes: [Lane; 3],
    /// (feed, User-Agent) → requests.
    clients: BTreeMap<(FeedKind, String), u64>,
    /// Requests per feed and connection (the client's address and port): several
    /// processes with one `User-Agent` show up as several peers.
    peers: BTreeMap<(FeedKind, SocketAddr), PeerSpan>,
    /// Every region any alert has named, by uid; oblasts carry their own uid.
    regions: BTreeMap<u32, KnownRegion>,
    cap: cap::Book,
    webhook: Option<WebhookTarget>,
}

impl FeedState {
    fn lane(&mut self, feed: FeedKind) -> &mut Lane {
        &mut self.lanes[feed.index()]
    }
}

impl FeedSim {
    /// Binds `127.0.0.1:0` and serves until `shutdown` is cancelled.
    pub async fn start(
        cfg: FeedSimConfig,
        shutdown: CancellationToken,
        tracker: &TaskTracker,
    ) -> std::io::Result<FeedSim> {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let (push_queue, pushes_rx) = mpsc::unbounded_channel();
        let now = whole_seconds(Utc::now());
        let inner = Arc::new(Inner {
            cfg,
            addr,
            shutdown: shutdown.clone(),
            state: Mutex::new(FeedState {
                view: Arc::new(View {
                    version: 0,
                    alerts: Vec::new(),
                    last_modified: now,
                    action_index: 0,
                    cap: VecDeque::new(),
                }),
                ids: HashMap::new(),
                next_id: FIRST_ALERT_ID,
                lanes: Default::default(),
                clients: BTreeMap::new(),
                peers: BTreeMap::new(),
                regions: BTreeMap::new(),
                cap: cap::Book::new(now),
                webhook: None,
            }),
            pushes: AtomicU64::new(0),
            http: OnceLock::new(),
            push_queue,
            served: Arc::default(),
        });
        let app = Router::new()
            .merge(alerts_in_ua::routes())
            .merge(ukrainealarm::routes())
            .merge(cap::routes())
            .fallback(not_found)
            .layer(axum::middleware::from_fn_with_state(inner.clone(), count_peer))
            .with_state(inner.clone());
        tracker.spawn(async move {
            let app = app.into_make_service_with_connect_info::<SocketAddr>();
            let served = axum::serve(listener, app).with_graceful_shutdown(shutdown.cancelled_owned()).await;
            if let Err(e) = served {
                tracing::warn!(error = %e, "feed sim server stopped with an error");
            }
        });
        tracker.spawn(ukrainealarm::push_worker(inner.clone(), pushes_rx));
        tracing::debug!(%addr, "feed sim listening");
        Ok(FeedSim { inner })
    }

    /// `http://127.0.0.1:PORT`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.inner.addr)
    }

    /// Replaces the active list: one step of the timeline. alerts.in.ua's
    /// `Last-Modified` always moves forward; ukrainealarm's
    /// `lastActionIndex`, the CAP messages and webhook pushes follow only
    /// what actually started, ended or changed. Returns the new version of
    /// the list (1 for the first call), for [`FeedSim::first_served`].
    pub fn set_alerts(&self, alerts: Vec<SimAlert>) -> u64 {
        let mut guard = self.inner.lock();
        let st = &mut *guard;
        let old = st.view.clone();
        let mut ids = HashMap::new();
        let mut listed = Vec::with_capacity(alerts.len());
        for alert in alerts {
            let key = alert.key();
            let id = match st.ids.get(&key) {
                Some(&id) => id,
                None => {
                    st.next_id += 1;
                    st.next_id - 1
                }
            };
            ids.insert(key, id);
            remember_regions(&mut st.regions, &alert);
            listed.push((id, alert));
        }
        st.ids = ids;

        let changes = diff(&old.alerts, &listed);
        let now = Utc::now();
        let mut view = View {
            version: old.version + 1,
            alerts: listed,
            // HTTP dates have one-second resolution; two changes within a
            // second would share a Last-Modified and a client holding it would
            // miss the second. Moving forward by at least a second keeps every
            // change visible, at the cost of a stamp slightly ahead of the clock.
            last_modified: whole_seconds(now).max(old.last_modified + TimeDelta::seconds(1)),
            action_index: old.action_index + changes.len() as u64,
            cap: old.cap.clone(),
        };
        st.cap.publish(&self.inner.cfg, &changes, now, &mut view.cap);
        if let Some(target) = st.webhook.clone() {
            let mut oblasts: Vec<u32> = changes.iter().map(|c| c.alert().location_oblast_uid).collect();
            oblasts.sort_unstable();
            oblasts.dedup();
            for oblast in oblasts {
                let body = ukrainealarm::state_record(&view, &st.regions, oblast).to_string().into_bytes();
                // The worker ends only on shutdown, when a lost push is moot.
                let _ = self.inner.push_queue.send((target.clone(), body));
            }
        }
        let version = view.version;
        st.view = Arc::new(view);
        version
    }

    /// When `feed` first handed a whole list of `version` to a client's
    /// connection: alerts.in.ua's `active.json` or ukrainealarm's
    /// `/api/v3/alerts`, answered 200 and neither truncated nor emptied by a
    /// fault. The instant is taken as hyper takes the body's bytes to write
    /// them, so on loopback it is within microseconds of the client having
    /// them. `None` until then.
    pub fn first_served(&self, feed: FeedKind, version: u64) -> Option<Instant> {
        self.inner.served.lock().expect("sim served lock").get(&(feed, version)).copied()
    }

    /// The next `times` alerts.in.ua requests get `fault`; the same as
    /// `inject_for(FeedKind::AlertsInUa, ..)`.
    pub fn inject(&self, fault: Fault, times: u32) {
        self.inject_for(FeedKind::AlertsInUa, fault, times);
    }

    /// The next `times` requests to `feed` get `fault` instead of a normal
    /// answer. Faults injected earlier for that feed are served first.
    pub fn inject_for(&self, feed: FeedKind, fault: Fault, times: u32) {
        let mut st = self.inner.lock();
        let lane = st.lane(feed);
        for _ in 0..times {
            lane.faults.push_back(fault.clone());
        }
    }

    /// From now on every request to `feed` gets 401 with the feed's own body
    /// (alerts.in.ua `{"message":"Unauthorized"}`, ukrainealarm an empty one, CAP
    /// plain text), as a revoked token or key does; queued faults still go first.
    pub fn revoke(&self, feed: FeedKind) {
        self.inner.lock().lane(feed).revoked = true;
    }

    /// Undoes [`FeedSim::revoke`]: the token is accepted again.
    pub fn restore(&self, feed: FeedKind) {
        self.inner.lock().lane(feed).revoked = false;
    }

    /// alerts.in.ua requests received so far, of any kind (the budget the
    /// alerts.in.ua adapter must keep).
    pub fn requests(&self) -> u64 {
        self.requests_for(FeedKind::AlertsInUa)
    }

    /// Requests received so far by one feed, faulted ones included.
    pub fn requests_for(&self, feed: FeedKind) -> u64 {
        self.inner.lock().lanes[feed.index()].requests
    }

    /// Requests one feed refused because its budget was spent.
    pub fn refused_for(&self, feed: FeedKind) -> u64 {
        self.inner.lock().lanes[feed.index()].refused
    }

    /// Requests per feed and `User-Agent` (`-` when absent), so two pollers
    /// of one feed show up.
    pub fn requests_by_client(&self) -> BTreeMap<(FeedKind, String), u64> {
        self.inner.lock().clients.clone()
    }

    /// Requests per feed and client connection (address and port), faulted ones
    /// included: two pollers of one feed show up as two peers even with one
    /// `User-Agent`, and one poller that reconnects as a few, one after another.
    pub fn requests_by_peer(&self) -> BTreeMap<(FeedKind, SocketAddr), u64> {
        self.inner.lock().peers.iter().map(|(k, span)| (*k, span.requests)).collect()
    }

    /// Pairs of connections to `feed` whose requests interleaved in time (each
    /// one's first request came before the other's last): two pollers at once. One
    /// poller that reconnects, or a new one after another stopped, overlaps nothing.
    pub fn overlapping_peers(&self, feed: FeedKind) -> usize {
        let st = self.inner.lock();
        let spans: Vec<&PeerSpan> = st.peers.iter().filter(|((f, _), _)| *f == feed).map(|(_, s)| s).collect();
        let mut pairs = 0;
        for (i, a) in spans.iter().enumerate() {
            for b in &spans[i + 1..] {
                if a.first < b.last && b.first < a.last {
                    pairs += 1;
                }
            }
        }
        pairs
    }

    /// With a target, every later change pushes the record of each oblast it
    /// touched, in order, by one worker; `None` stops pushing.
    pub fn set_webhook(&self, target: Option<WebhookTarget>) {
        self.inner.lock().webhook = target;
    }

    /// Pushes the current ukrainealarm record of the oblast of
    /// `region_feed_id` (an oblast's uid, or any region of it that has been in
    /// the timeline) to `url`, with `secret` in the header
    /// `secret_header_name`. Returns the receiver's HTTP status.
    pub async fn push_webhook(
        &self,
        url: &str,
        secret_header_name: &str,
        secret: &str,
        region_feed_id: u32,
    ) -> Result<u16, PushError> {
        let body = {
            let st = self.inner.lock();
            let oblast = st
                .regions
                .get(&region_feed_id)
                .map(|r| r.oblast_uid)
                .ok_or(PushError::UnknownRegion(region_feed_id))?;
            ukrainealarm::state_record(&st.view, &st.regions, oblast).to_string().into_bytes()
        };
        let target = WebhookTarget {
            url: url.to_owned(),
            secret_header: secret_header_name.to_owned(),
            secret: secret.to_owned(),
        };
        ukrainealarm::post(&self.inner, &target, body).await
    }

    /// Webhook pushes that got an HTTP answer (any status), by either path.
    pub fn webhook_pushes(&self) -> u64 {
        self.inner.pushes.load(Ordering::Relaxed)
    }
}

/// One client connection's requests to one feed.
#[derive(Clone, Copy, Debug)]
struct PeerSpan {
    requests: u64,
    first: Instant,
    last: Instant,
}

/// Counts a request under its feed (by path) and its client's connection.
async fn count_peer(
    axum::extract::State(sim): axum::extract::State<Arc<Inner>>,
    axum::extract::ConnectInfo(peer): axum::extract::ConnectInfo<SocketAddr>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let path = request.uri().path();
    let feed = if path.starts_with("/v1/") {
        Some(FeedKind::AlertsInUa)
    } else if path.starts_with("/api/") {
        Some(FeedKind::UkraineAlarm)
    } else if path.starts_with("/cap/") {
        Some(FeedKind::Cap)
    } else {
        None
    };
    if let Some(feed) = feed {
        let now = Instant::now();
        let mut st = sim.lock();
        let span = st.peers.entry((feed, peer)).or_insert(PeerSpan { requests: 0, first: now, last: now });
        span.requests += 1;
        span.last = now;
    }
    next.run(request).await
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, FeedState> {
        self.state.lock().expect("sim state lock")
    }

    /// Counts a request and draws its fault. Returns the fault to serve (never
    /// `Stall`) and the view to answer from: the stalled one while a stall
    /// lasts, else the current one.
    fn begin(&self, feed: FeedKind, headers: &HeaderMap, lists: bool) -> (Option<Fault>, Arc<View>) {
        let mut st = self.lock();
        let client = headers.get(header::USER_AGENT).and_then(|v| v.to_str().ok()).unwrap_or("-").to_owned();
        *st.clients.entry((feed, client)).or_default() += 1;
        let current = st.view.clone();
        let lane = st.lane(feed);
        lane.requests += 1;
        let fault = match lane.faults.front() {
            Some(Fault::EmptyList | Fault::ListMissing) if !lists => None,
            Some(_) => lane.faults.pop_front(),
            None if lane.revoked => Some(Fault::Unauthorized),
            None => None,
        };
        match fault {
            Some(Fault::Stall) => {
                let old = lane.stalled.get_or_insert(current).clone();
                tracing::debug!(?feed, "feed sim: stalled");
                (None, old)
            }
            other => {
                lane.stalled = None;
                (other, current)
            }
        }
    }

    /// Admits a request into `feed`'s sliding window of `limit` a minute.
    /// Refused requests are not counted, so a client that backs off recovers.
    fn admit(&self, feed: FeedKind, limit: u32) -> bool {
        let mut st = self.lock();
        let hits = &mut st.lane(feed).hits;
        let now = Instant::now();
        let span = RATE_WINDOW.saturating_sub(WINDOW_TOLERANCE);
        while hits.front().is_some_and(|&at| now.saturating_duration_since(at) >= span) {
            hits.pop_front();
        }
        if hits.len() >= usize::try_from(limit).unwrap_or(usize::MAX) {
            tracing::debug!(?feed, "feed sim: rate limited");
            st.lane(feed).refused += 1;
            return false;
        }
        hits.push_back(now);
        true
    }

    fn http(&self) -> &reqwest::Client {
        self.http.get_or_init(reqwest::Client::new)
    }
}

/// What happened to one alert in a step of the timeline.
#[derive(Clone, Debug)]
enum Change {
    Started(SimAlert),
    /// Same occurrence, different level, threats, title or code.
    Updated(SimAlert),
    Ended(SimAlert),
}

impl Change {
    fn alert(&self) -> &SimAlert {
        match self {
            Change::Started(a) | Change::Updated(a) | Change::Ended(a) => a,
        }
    }
}

/// Ends first, then starts and updates in list order; duplicates in a list
/// count once.
fn diff(old: &[(u64, SimAlert)], new: &[(u64, SimAlert)]) -> Vec<Change> {
    let old_by: HashMap<AlertId, &SimAlert> = old.iter().map(|(_, a)| (a.key(), a)).collect();
    let new_by: HashMap<AlertId, &SimAlert> = new.iter().map(|(_, a)| (a.key(), a)).collect();
    let mut changes = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for (_, a) in old {
        if !new_by.contains_key(&a.key()) && seen.insert(a.key()) {
            changes.push(Change::Ended(a.clone()));
        }
    }
    for (_, a) in new {
        if !seen.insert(a.key()) {
            continue;
        }
        match old_by.get(&a.key()) {
            None => changes.push(Change::Started(a.clone())),
            Some(before) if *before != a => changes.push(Change::Updated(a.clone())),
            Some(_) => {}
        }
    }
    changes
}

fn remember_regions(regions: &mut BTreeMap<u32, KnownRegion>, a: &SimAlert) {
    regions.entry(a.location_oblast_uid).or_insert_with(|| KnownRegion {
        name: a.location_oblast.clone(),
        location_type: "oblast".to_owned(),
        oblast_uid: a.location_oblast_uid,
    });
    if a.location_uid != a.location_oblast_uid {
        regions.insert(
            a.location_uid,
            KnownRegion {
                name: a.location_title.clone(),
                location_type: a.location_type.clone(),
                oblast_uid: a.location_oblast_uid,
            },
        );
    }
}

/// The answer to an injected fault that needs no feed-specific body, or
/// `None` when the request should go on (after a delay).
async fn common_fault(sim: &Inner, feed: FeedKind, fault: &Fault) -> Option<Response> {
    match fault {
        Fault::Status(code) => {
            tracing::debug!(?feed, code, "feed sim: injected status");
            let status = StatusCode::from_u16(*code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            Some(error_answer(feed, status))
        }
        Fault::Delay(d) => {
            tracing::debug!(?feed, ?d, "feed sim: injected delay");
            // Shutdown must not wait out a long injected delay.
            tokio::select! {
                _ = tokio::time::sleep(*d) => None,
                _ = sim.shutdown.cancelled() => Some(error_answer(feed, StatusCode::SERVICE_UNAVAILABLE)),
            }
        }
        Fault::Garbage => {
            tracing::debug!(?feed, "feed sim: injected garbage");
            Some(
                (StatusCode::OK, [(header::CONTENT_TYPE, "text/html")], "<html>502 Bad Gateway</html>").into_response(),
            )
        }
        Fault::Unauthorized => {
            tracing::debug!(?feed, "feed sim: injected 401");
            Some(error_answer(feed, StatusCode::UNAUTHORIZED))
        }
        Fault::Truncated | Fault::EmptyList | Fault::ListMissing | Fault::Stall => None,
    }
}

/// An error status in the feed's own style: alerts.in.ua's `{"message"}`,
/// ukrainealarm's empty body, plain text for CAP.
fn error_answer(feed: FeedKind, status: StatusCode) -> Response {
    match feed {
        FeedKind::AlertsInUa => {
            let text = match status {
                StatusCode::UNAUTHORIZED => "Unauthorized",
                StatusCode::TOO_MANY_REQUESTS => "Too many requests",
                StatusCode::NOT_FOUND => "Not found",
                _ => "Internal server error",
            };
            (status, axum::Json(json!({ "message": text }))).into_response()
        }
        FeedKind::UkraineAlarm => status.into_response(),
        FeedKind::Cap => (status, status.canonical_reason().unwrap_or("error")).into_response(),
    }
}

fn whole_seconds(t: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp(t.timestamp(), 0).unwrap_or(t)
}

/// 200 with the whole list of `version` as `feed` renders it: notes when it
/// first went out ([`FeedSim::first_served`]).
fn served_body(sim: &Inner, feed: FeedKind, version: u64, content_type: &'static str, body: String) -> Response {
    let noted = Noted { bytes: Some(Bytes::from(body)), served: sim.served.clone(), key: (feed, version) };
    (StatusCode::OK, [(header::CONTENT_TYPE, content_type)], Body::new(noted)).into_response()
}

/// A whole body that notes the instant hyper takes its bytes, once per key.
struct Noted {
    bytes: Option<Bytes>,
    served: Arc<Mutex<HashMap<(FeedKind, u64), Instant>>>,
    key: (FeedKind, u64),
}

impl hyper::body::Body for Noted {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<hyper::body::Frame<Bytes>, Infallible>>> {
        let this = self.get_mut();
        let Some(bytes) = this.bytes.take() else { return Poll::Ready(None) };
        if let Ok(mut served) = this.served.lock() {
            served.entry(this.key).or_insert_with(Instant::now);
        }
        Poll::Ready(Some(Ok(hyper::body::Frame::data(bytes))))
    }

    fn is_end_stream(&self) -> bool {
        self.bytes.is_none()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        hyper::body::SizeHint::with_exact(self.bytes.as_ref().map_or(0, |b| b.len() as u64))
    }
}

/// 200 with `content_type`, the body cut in half when `truncate`.
fn ok_body(content_type: &'static str, body: String, truncate: bool) -> Response {
    let mut bytes = body.into_bytes();
    if truncate {
        tracing::debug!("feed sim: injected truncation");
        bytes.truncate(bytes.len() / 2);
    }
    (StatusCode::OK, [(header::CONTENT_TYPE, content_type)], bytes).into_response()
}

async fn not_found() -> Response {
    error_answer(FeedKind::AlertsInUa, StatusCode::NOT_FOUND)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alert(uid: u32, level: Option<&str>) -> SimAlert {
        SimAlert {
            location_uid: uid,
            location_oblast_uid: 22,
            alert_type: "air_raid".into(),
            alert_level: level.map(str::to_owned),
            ..SimAlert::default()
        }
    }

    #[test]
    fn diff_names_starts_ends_and_updates_once() {
        let old = vec![(1, alert(22, None)), (2, alert(123, None))];
        let new = vec![(2, alert(123, Some("red"))), (3, alert(1309, None)), (3, alert(1309, None))];
        let changes = diff(&old, &new);
        let names: Vec<(&str, u32)> = changes
            .iter()
            .map(|c| match c {
                Change::Started(a) => ("started", a.location_uid),
                Change::Updated(a) => ("updated", a.location_uid),
                Change::Ended(a) => ("ended", a.location_uid),
            })
            .collect();
        assert_eq!(names, vec![("ended", 22), ("updated", 123), ("started", 1309)]);
        assert!(diff(&new, &new).is_empty());
    }
}
