//! SMS: the configured gateways behind one [`Channel`], tried in order.
//!
//! The first gateway carries the traffic while it works. After [`FAILOVER_AFTER`]
//! failures in a row it is set aside and the next takes over; every
//! [`RETRY_PRIMARY`] one message tries the first again, and its first success hands
//! the traffic back. A message is never sent through two gateways: an attempt whose
//! outcome is unknown (a timeout, a dropped connection after the request went out)
//! pins that message ([`Outgoing::key`]) to the gateway that may have sent it, whose
//! own deduplication (TurboSMS `sequence_id`) then answers the retry, until the message
//! is known sent or refused. A message with no such doubt goes wherever traffic goes.
//!
//! A gateway that takes many recipients per request (TurboSMS) is given one text for
//! up to its `batch` recipients at a time ([`Channel::send_batch`]); each recipient's
//! own answer decides that recipient's delivery. The platform id of a sent message is
//! `<gateway name>:<gateway's id>`, so a delivery report from one gateway can only
//! ever touch what that gateway sent ([`ReportReader`]).

pub mod generic;
pub mod turbosms;
pub mod twilio;

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

use super::{Channel, Outgoing, SendError, Sent};
use crate::config::secret::Secret;
use crate::config::sms::GatewaySettings;

/// Failures in a row after which the next gateway takes over.
pub const FAILOVER_AFTER: u32 = 3;
/// While set aside, the first gateway is tried again this often.
pub const RETRY_PRIMARY: Duration = Duration::from_secs(30);

/// What one gateway's attempt came to.
#[derive(Clone, Debug)]
pub enum Attempt {
    Sent(Sent),
    /// The gateway says it did not send: the message may go elsewhere.
    Failed(SendError),
    /// Nobody knows whether it went out: retry through this gateway only.
    Unknown(String),
}

/// One gateway adapter: one message, one request.
pub enum Gateway {
    TurboSms(turbosms::TurboSms),
    Twilio(twilio::Twilio),
    Http(generic::Generic),
}

impl Gateway {
    /// `report_secret` is the secret of this gateway's delivery reports, where the
    /// request itself says where to post them (Twilio's `StatusCallback`).
    pub fn build(
        settings: &GatewaySettings,
        token: Secret,
        report_secret: Option<&Secret>,
    ) -> Result<Gateway, SendError> {
        Ok(match settings {
            GatewaySettings::Turbosms { .. } => Gateway::TurboSms(turbosms::TurboSms::new(settings, token)?),
            GatewaySettings::Twilio { .. } => Gateway::Twilio(twilio::Twilio::new(settings, token, report_secret)?),
            GatewaySettings::Http(_) => Gateway::Http(generic::Generic::new(settings, token)?),
        })
    }

    pub fn name(&self) -> &str {
        match self {
            Gateway::TurboSms(g) => g.name(),
            Gateway::Twilio(g) => g.name(),
            Gateway::Http(g) => g.name(),
        }
    }

    /// Recipients of one text per request.
    fn batch(&self) -> usize {
        match self {
            Gateway::TurboSms(g) => g.batch(),
            Gateway::Twilio(_) | Gateway::Http(_) => 1,
        }
    }

    /// One text to each of `to` (at most [`Gateway::batch`] of them): one attempt per
    /// recipient, in order. `key` identifies this request's recipients and text.
    async fn send(&self, to: &[&str], text: &str, key: &str) -> Vec<Attempt> {
        match self {
            Gateway::TurboSms(g) => g.send(to, text, key).await,
            // One recipient per request: `send_through` hands these one at a time,
            // so `key` is that message's own.
            Gateway::Twilio(g) => {
                let mut out = Vec::with_capacity(to.len());
                for number in to {
                    out.push(g.send(number, text).await);
                }
                out
            }
            Gateway::Http(g) => {
                let mut out = Vec::with_capacity(to.len());
                for number in to {
                    out.push(g.send(number, text, key).await);
                }
                out
            }
        }
    }
}

#[derive(Debug, Default)]
struct Health {
    /// The gateway in use.
    current: usize,
    failures_in_row: u32,
    /// When the first gateway was last tried while set aside.
    primary_tried: Option<Instant>,
    /// Messages whose last attempt's outcome is unknown, and the gateway it was on.
    pinned: HashMap<String, usize>,
}

pub struct SmsChannel {
    gateways: Vec<Gateway>,
    health: Mutex<Health>,
}

impl SmsChannel {
    pub fn new(gateways: Vec<Gateway>) -> SmsChannel {
        SmsChannel { gateways, health: Mutex::new(Health::default()) }
    }

    /// The gateway in use now, by name (for logs and tests).
    pub fn current(&self) -> &str {
        let i = self.lock().current;
        self.gateways.get(i).map_or("", Gateway::name)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Health> {
        // A panic while holding it leaves plain counters behind: still usable.
        self.health.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Which gateway this message goes through.
    fn pick(&self, key: &str) -> usize {
        let mut h = self.lock();
        if let Some(&pinned) = h.pinned.get(key) {
            return pinned;
        }
        if h.current != 0 && h.primary_tried.is_none_or(|t| t.elapsed() >= RETRY_PRIMARY) {
            h.primary_tried = Some(Instant::now());
            return 0;
        }
        h.current
    }

    /// Records one request's attempts (a key and its outcome per recipient).
    fn record(&self, gateway: usize, attempts: &[(&str, &Attempt)]) {
        let mut h = self.lock();
        // A pin holds until the message is known sent or refused: an error answer to a
        // retry says nothing about the attempt whose outcome was lost.
        for (key, attempt) in attempts {
            match attempt {
                Attempt::Unknown(_) => {
                    h.pinned.insert((*key).to_owned(), gateway);
                }
                Attempt::Sent(_) | Attempt::Failed(SendError::RecipientGone(_) | SendError::Rejected(_)) => {
                    h.pinned.remove(*key);
                }
                Attempt::Failed(_) => {}
            }
        }
        let refused = |a: &Attempt| matches!(a, Attempt::Failed(SendError::RecipientGone(_) | SendError::Rejected(_)));
        if attempts.iter().any(|(_, a)| matches!(a, Attempt::Sent(_))) {
            if gateway == 0 && h.current != 0 {
                tracing::info!(gateway = self.gateways[0].name(), "SMS gateway recovered; traffic handed back");
                h.current = 0;
            }
            if gateway == h.current {
                h.failures_in_row = 0;
            }
            return;
        }
        // Refused messages (bad numbers) say nothing about the gateway; a probe of the
        // set-aside first gateway that fails changes nothing.
        let Some((_, last)) = attempts.iter().find(|(_, a)| !refused(a)) else { return };
        if gateway != h.current {
            return;
        }
        h.failures_in_row += 1;
        if h.failures_in_row >= FAILOVER_AFTER && h.current + 1 < self.gateways.len() {
            let from = self.gateways[h.current].name().to_owned();
            h.current += 1;
            h.failures_in_row = 0;
            h.primary_tried = Some(Instant::now());
            tracing::warn!(from, to = self.gateways[h.current].name(), last = ?last, "SMS gateway failing; the next takes over");
        }
    }

    /// Sends one text to `group` (indexes into `messages`) through gateway `i`, as few
    /// requests as its batch allows; one result per member of `group`, in order.
    async fn send_through(&self, i: usize, messages: &[Outgoing<'_>], group: &[usize]) -> Vec<Result<Sent, SendError>> {
        let gateway = &self.gateways[i];
        let mut out = Vec::with_capacity(group.len());
        for chunk in group.chunks(gateway.batch().max(1)) {
            let to: Vec<&str> = chunk.iter().filter_map(|&m| messages[m].to.phone()).collect();
            let keys: Vec<&str> = chunk.iter().map(|&m| messages[m].key).collect();
            let mut attempts = gateway.send(&to, messages[chunk[0]].text, &request_key(&keys)).await;
            // A recipient the answer does not mention may or may not have been sent to.
            attempts
                .resize_with(chunk.len(), || Attempt::Unknown("the gateway's answer left this recipient out".into()));
            let recorded: Vec<(&str, &Attempt)> = keys.iter().copied().zip(&attempts).collect();
            self.record(i, &recorded);
            out.extend(attempts.into_iter().map(|attempt| match attempt {
                Attempt::Sent(sent) => Ok(Sent { platform_id: platform_id(gateway.name(), &sent.platform_id) }),
                Attempt::Failed(e) => Err(e),
                Attempt::Unknown(why) => Err(SendError::Transient(why)),
            }));
        }
        out
    }
}

/// What a delivery report says of one message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReportStatus {
    Delivered,
    /// It will not reach the phone; why, as the gateway put it.
    Undelivered(String),
    /// The gateway dropped it without sending, for a rate reason: send again later.
    RateLimited {
        error: String,
        retry_after: Duration,
    },
    /// Still on its way (queued, sent): nothing to record yet.
    InProgress,
}

#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("unreadable report: {0}")]
    Malformed(String),
    #[error("the report's signature does not match")]
    Signature,
}

/// How one gateway's delivery reports are recognised and read.
pub struct ReportReader {
    pub gateway: String,
    /// Given in the path (`/reports/<gateway>/<secret>`) or a header.
    pub secret: Secret,
    format: ReportFormat,
}

enum ReportFormat {
    TurboSms,
    /// Twilio also signs each callback with the account's auth token over the URL it
    /// was told to post to.
    Twilio {
        auth_token: Secret,
        url: Option<String>,
    },
}

impl ReportReader {
    /// `None` for a gateway whose reports sirena cannot read (a generic HTTP API).
    pub fn new(settings: &GatewaySettings, token: Secret, secret: Secret) -> Option<ReportReader> {
        let format = match settings {
            GatewaySettings::Turbosms { .. } => ReportFormat::TurboSms,
            GatewaySettings::Twilio { report_url, .. } => ReportFormat::Twilio {
                url: report_url.as_deref().map(|u| twilio::callback_url(u, &secret)),
                auth_token: token,
            },
            GatewaySettings::Http(_) => return None,
        };
        Some(ReportReader { gateway: settings.name().to_owned(), secret, format })
    }

    /// The header a gateway signs its reports with, if it does.
    pub fn signature_header(&self) -> Option<&'static str> {
        match self.format {
            ReportFormat::TurboSms => None,
            ReportFormat::Twilio { .. } => Some("x-twilio-signature"),
        }
    }

    /// The delivery's platform id ([`platform_id`]) and what the report says.
    pub fn read(&self, body: &[u8], signature: Option<&str>) -> Result<(String, ReportStatus), ReportError> {
        let (id, status) = match &self.format {
            ReportFormat::TurboSms => turbosms::read_report(body)?,
            ReportFormat::Twilio { auth_token, url } => {
                twilio::read_report(body, signature, auth_token, url.as_deref())?
            }
        };
        Ok((platform_id(&self.gateway, &id), status))
    }
}

/// The id a delivery keeps: which gateway sent it, and that gateway's own id.
pub fn platform_id(gateway: &str, id: &str) -> String {
    format!("{gateway}:{id}")
}

/// One request's identity: a single message's own key, or one made of all of them.
fn request_key(keys: &[&str]) -> String {
    match keys {
        [one] => (*one).to_owned(),
        many => {
            let mut sorted = many.to_vec();
            sorted.sort_unstable();
            format!("b-{:016x}", crate::dispatch::stable_hash(&sorted))
        }
    }
}

#[async_trait::async_trait]
impl Channel for SmsChannel {
    async fn send(&self, message: Outgoing<'_>) -> Result<Sent, SendError> {
        let mut results = self.send_batch(&[message]).await;
        results.pop().unwrap_or_else(|| Err(SendError::Transient("no answer".to_owned())))
    }

    fn max_batch(&self) -> usize {
        let current = self.lock().current;
        self.gateways.get(current).map_or(1, Gateway::batch)
    }

    /// Each message goes through its pinned gateway, the rest through the gateway in
    /// use; messages of one text to one gateway go out in as few requests as it allows.
    async fn send_batch(&self, messages: &[Outgoing<'_>]) -> Vec<Result<Sent, SendError>> {
        let mut results: Vec<Option<Result<Sent, SendError>>> = vec![None; messages.len()];
        let mut groups: BTreeMap<(usize, &str), Vec<usize>> = BTreeMap::new();
        for (n, m) in messages.iter().enumerate() {
            if m.to.phone().is_none() {
                results[n] = Some(Err(SendError::Rejected(format!("{} is not a phone number", m.to.masked()))));
            } else if self.gateways.is_empty() {
                results[n] = Some(Err(SendError::Rejected("no SMS gateway configured".to_owned())));
            } else {
                groups.entry((self.pick(m.key), m.text)).or_default().push(n);
            }
        }
        for ((i, _), group) in groups {
            let sent = self.send_through(i, messages, &group).await;
            for (n, r) in group.into_iter().zip(sent) {
                results[n] = Some(r);
            }
        }
        results.into_iter().map(|r| r.unwrap_or_else(|| Err(SendError::Transient("no answer".to_owned())))).collect()
    }
}

/// `+380501234567` → `380501234567`, as gateways that take bare digits want it.
fn digits(e164: &str) -> &str {
    e164.strip_prefix('+').unwrap_or(e164)
}

/// A reqwest failure is "unknown" once the request may have reached the gateway.
fn transport(e: reqwest::Error) -> Attempt {
    let connect = e.is_connect();
    let why = e.without_url().to_string();
    if connect {
        // Never connected: nothing was sent.
        Attempt::Failed(SendError::Transient(why))
    } else {
        Attempt::Unknown(why)
    }
}
