//! `[sms]` and its `[[sms.gateway]]` tables: how sirena reaches phones.

use std::time::Duration;

use serde::Deserialize;

/// The most recipients one request may carry (TurboSMS's documented ceiling).
pub const MAX_BATCH: usize = 5000;

/// `[sms]`: the gateways, in the order they are tried, and what every text must fit.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmsSettings {
    /// The most parts one text may take; a longer one is shortened (orders) or cut.
    #[serde(default = "default_max_parts")]
    pub max_parts: usize,
    /// Tried in this order: the first is used while it works.
    #[serde(rename = "gateway", default)]
    pub gateways: Vec<GatewaySettings>,
}

fn default_max_parts() -> usize {
    crate::messages::DEFAULT_SMS_PARTS
}

/// One gateway, by kind.
#[derive(Clone, Debug, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum GatewaySettings {
    /// TurboSMS (api.turbosms.ua): Bearer token, JSON, many recipients per request.
    Turbosms {
        name: String,
        #[serde(default = "default_turbosms_url")]
        base_url: String,
        token_env: String,
        /// The registered alpha name (at most 11 characters).
        sender: String,
        /// Messages per second this account may send.
        #[serde(default = "default_per_sec")]
        per_sec: u32,
        /// Requests per second, whatever the number of recipients in each.
        #[serde(default = "default_per_sec")]
        requests_per_sec: u32,
        /// Recipients of one text per request (TurboSMS takes many).
        #[serde(default = "default_batch")]
        batch: usize,
        #[serde(with = "crate::config::duration", default = "default_sms_timeout")]
        timeout: Duration,
        /// Send through Viber with SMS as the fallback (TurboSMS's hybrid mode).
        #[serde(default)]
        viber: bool,
        /// The environment variable holding the secret of delivery reports: TurboSMS
        /// posts them to `/reports/<name>/<secret>` on `[http]` (set that URL as the
        /// callback in the TurboSMS account).
        report_secret_env: Option<String>,
    },
    /// Twilio Programmable Messaging: Basic auth with the account SID and auth token.
    Twilio {
        name: String,
        #[serde(default = "default_twilio_url")]
        base_url: String,
        account_sid: String,
        token_env: String,
        /// A sending number (`From`) or a Messaging Service (`MessagingServiceSid`).
        from: String,
        #[serde(default = "default_per_sec")]
        per_sec: u32,
        #[serde(with = "crate::config::duration", default = "default_sms_timeout")]
        timeout: Duration,
        /// The environment variable holding the secret of delivery reports.
        report_secret_env: Option<String>,
        /// This endpoint as Twilio reaches it, e.g. `https://sirena.example.org/reports/twilio`:
        /// each message asks Twilio to post its status there (`StatusCallback`), with
        /// the secret as the last path segment.
        report_url: Option<String>,
    },
    /// Any HTTP API, described by a request template (`super::sms_http`).
    Http(super::sms_http::HttpGateway),
}

impl GatewaySettings {
    pub fn name(&self) -> &str {
        match self {
            GatewaySettings::Turbosms { name, .. } | GatewaySettings::Twilio { name, .. } => name,
            GatewaySettings::Http(g) => &g.name,
        }
    }

    /// The variable holding the gateway's secret; a generic gateway may need none.
    pub fn token_env(&self) -> Option<&str> {
        match self {
            GatewaySettings::Turbosms { token_env, .. } | GatewaySettings::Twilio { token_env, .. } => Some(token_env),
            GatewaySettings::Http(g) => g.token_env.as_deref(),
        }
    }

    pub fn per_sec(&self) -> u32 {
        match self {
            GatewaySettings::Turbosms { per_sec, .. } | GatewaySettings::Twilio { per_sec, .. } => *per_sec,
            GatewaySettings::Http(g) => g.per_sec,
        }
    }

    /// Requests per second: one message is one request unless the gateway batches.
    pub fn requests_per_sec(&self) -> u32 {
        match self {
            GatewaySettings::Turbosms { requests_per_sec, .. } => *requests_per_sec,
            GatewaySettings::Twilio { per_sec, .. } => *per_sec,
            GatewaySettings::Http(g) => g.per_sec,
        }
    }

    /// Recipients of one text per request.
    pub fn batch(&self) -> usize {
        match self {
            GatewaySettings::Turbosms { batch, .. } => *batch,
            GatewaySettings::Twilio { .. } | GatewaySettings::Http(_) => 1,
        }
    }

    pub fn report_secret_env(&self) -> Option<&str> {
        match self {
            GatewaySettings::Turbosms { report_secret_env, .. } | GatewaySettings::Twilio { report_secret_env, .. } => {
                report_secret_env.as_deref()
            }
            // Generic APIs' delivery reports have no one shape to read.
            GatewaySettings::Http(_) => None,
        }
    }

    pub fn timeout(&self) -> Duration {
        match self {
            GatewaySettings::Turbosms { timeout, .. } | GatewaySettings::Twilio { timeout, .. } => *timeout,
            GatewaySettings::Http(g) => g.timeout,
        }
    }

    pub fn base_url(&self) -> &str {
        match self {
            GatewaySettings::Turbosms { base_url, .. } | GatewaySettings::Twilio { base_url, .. } => base_url,
            GatewaySettings::Http(g) => &g.url,
        }
    }
}

fn default_turbosms_url() -> String {
    "https://api.turbosms.ua".to_owned()
}
fn default_twilio_url() -> String {
    "https://api.twilio.com".to_owned()
}
fn default_per_sec() -> u32 {
    10
}
fn default_batch() -> usize {
    100
}
fn default_sms_timeout() -> Duration {
    Duration::from_secs(10)
}
