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

pub mod generic;
pub mod turbosms;
pub mod twilio;

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

use super::{Address, Channel, Outgoing, SendError, Sent};
use crate::config::secret::Secret;
use crate::config::sms::GatewaySettings;

/// Failures in a row after which the next gateway takes over.
pub const FAILOVER_AFTER: u32 = 3;
/// While set aside, the first gateway is tried again this often.
pub const RETRY_PRIMARY: Duration = Duration::from_secs(30);

/// What one gateway's attempt came to.
#[derive(Debug)]
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
    pub fn build(settings: &GatewaySettings, token: Secret) -> Result<Gateway, SendError> {
        Ok(match settings {
            GatewaySettings::Turbosms { .. } => Gateway::TurboSms(turbosms::TurboSms::new(settings, token)?),
            GatewaySettings::Twilio { .. } => Gateway::Twilio(twilio::Twilio::new(settings, token)?),
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

    async fn send(&self, to: &str, text: &str, key: &str) -> Attempt {
        match self {
            Gateway::TurboSms(g) => g.send(to, text, key).await,
            Gateway::Twilio(g) => g.send(to, text).await,
            Gateway::Http(g) => g.send(to, text, key).await,
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

    fn record(&self, gateway: usize, key: &str, attempt: &Attempt) {
        let mut h = self.lock();
        // A pin holds until the message is known sent or refused: an error answer to a
        // retry says nothing about the attempt whose outcome was lost.
        match attempt {
            Attempt::Unknown(_) => {
                h.pinned.insert(key.to_owned(), gateway);
            }
            Attempt::Sent(_) | Attempt::Failed(SendError::RecipientGone(_) | SendError::Rejected(_)) => {
                h.pinned.remove(key);
            }
            Attempt::Failed(_) => {}
        }
        if let Attempt::Sent(_) = attempt {
            if gateway == 0 && h.current != 0 {
                tracing::info!(gateway = self.gateways[0].name(), "SMS gateway recovered; traffic handed back");
                h.current = 0;
            }
            if gateway == h.current {
                h.failures_in_row = 0;
            }
            return;
        }
        // A refused message (a bad number) says nothing about the gateway; a probe of
        // the set-aside first gateway that fails changes nothing.
        let refused = matches!(attempt, Attempt::Failed(SendError::RecipientGone(_) | SendError::Rejected(_)));
        if refused || gateway != h.current {
            return;
        }
        h.failures_in_row += 1;
        if h.failures_in_row >= FAILOVER_AFTER && h.current + 1 < self.gateways.len() {
            let from = self.gateways[h.current].name().to_owned();
            h.current += 1;
            h.failures_in_row = 0;
            h.primary_tried = Some(Instant::now());
            tracing::warn!(from, to = self.gateways[h.current].name(), last = ?attempt, "SMS gateway failing; the next takes over");
        }
    }
}

#[async_trait::async_trait]
impl Channel for SmsChannel {
    async fn send(&self, message: Outgoing<'_>) -> Result<Sent, SendError> {
        let Address::Phone(to) = message.to else {
            return Err(SendError::Rejected(format!("{} is not a phone number", message.to.masked())));
        };
        if self.gateways.is_empty() {
            return Err(SendError::Rejected("no SMS gateway configured".to_owned()));
        }
        let i = self.pick(message.key);
        let attempt = self.gateways[i].send(to, message.text, message.key).await;
        self.record(i, message.key, &attempt);
        match attempt {
            Attempt::Sent(sent) => Ok(sent),
            Attempt::Failed(e) => Err(e),
            Attempt::Unknown(why) => Err(SendError::Transient(why)),
        }
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
