//! TurboSMS (api.turbosms.ua): `POST /message/send.json`, `Authorization: Bearer`,
//! `{"recipients": […], "sms": {"sender", "text"}}` (with `"viber"` beside it in the
//! Viber-with-SMS-fallback mode), and a `sequence_id` that makes a retried request
//! return the first one's result instead of sending again.
//!
//! TurboSMS answers HTTP 200 even for errors: the request's `response_code` and each
//! recipient's in `response_result` say what happened. 800–803 are successes. The same
//! text to the same number within 90 s is refused; for a retry that refusal means the
//! first attempt went out, so it counts as sent, never as a failure to retry.

use serde::Deserialize;
use serde_json::json;

use super::{Attempt, digits, transport};
use crate::channels::{LimitScope, SendError, Sent};
use crate::config::secret::Secret;
use crate::config::sms::GatewaySettings;

/// The codes sirena acts on, as TurboSMS publishes them (turbosms.ua/api: the list of
/// `response_code`s).
pub mod codes {
    /// A recipient's entry: accepted.
    pub const RECIPIENT_OK: u32 = 0;
    /// 800 accepted, 801 sent, 802/803 the same with some recipients left out.
    pub const SUCCESS: std::ops::RangeInclusive<u32> = 800..=803;
    /// A retried `sequence_id`: the first request's results come back, nothing is sent.
    pub const REPLAYED: u32 = 507;
    /// NOT_ALLOWED_MESSAGE_DUPLICATE: the same text to the same number within 90 s.
    pub const DUPLICATE: u32 = 427;
    /// INVALID_PHONE, NOT_ALLOWED_NUMBER_STOPLIST, NOT_ALLOWED_RECIPIENT_COUNTRY.
    pub const RECIPIENT_GONE: [u32; 3] = [305, 404, 406];
    /// The text itself: missing, not text, too long.
    pub const BAD_TEXT: [u32; 3] = [201, 304, 413];
}

pub struct TurboSms {
    name: String,
    http: reqwest::Client,
    url: String,
    token: Secret,
    sender: String,
    viber: bool,
}

#[derive(Debug, Deserialize)]
struct Answer {
    response_code: u32,
    #[serde(default)]
    response_status: String,
    #[serde(default)]
    response_result: Option<Vec<Recipient>>,
}

#[derive(Debug, Deserialize)]
struct Recipient {
    response_code: u32,
    #[serde(default)]
    response_status: String,
    #[serde(default)]
    message_id: Option<String>,
}

impl TurboSms {
    pub fn new(settings: &GatewaySettings, token: Secret) -> Result<TurboSms, SendError> {
        let GatewaySettings::Turbosms { name, base_url, sender, timeout, viber, .. } = settings else {
            return Err(SendError::Rejected("not a TurboSMS gateway".to_owned()));
        };
        let http = reqwest::Client::builder()
            .timeout(*timeout)
            .user_agent(concat!("sirena/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| SendError::Transient(e.to_string()))?;
        Ok(TurboSms {
            name: name.clone(),
            http,
            url: format!("{}/message/send.json", base_url.trim_end_matches('/')),
            token,
            sender: sender.clone(),
            viber: *viber,
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub async fn send(&self, to: &str, text: &str, key: &str) -> Attempt {
        let mut body = json!({
            "recipients": [digits(to)],
            "sms": { "sender": self.sender, "text": text },
        });
        if self.viber {
            body["viber"] = json!({ "sender": self.sender, "text": text });
        }
        if !key.is_empty() {
            body["sequence_id"] = json!(key);
        }
        let resp = match self.http.post(&self.url).bearer_auth(self.token.expose()).json(&body).send().await {
            Ok(r) => r,
            Err(e) => return transport(e),
        };
        let status = resp.status();
        let bytes = match resp.bytes().await {
            Ok(b) => b,
            Err(e) => return transport(e),
        };
        if status.as_u16() == 429 {
            return Attempt::Failed(SendError::RateLimited {
                scope: LimitScope::Channel,
                retry_after: std::time::Duration::from_secs(1),
            });
        }
        if !status.is_success() {
            return Attempt::Failed(SendError::Transient(format!("TurboSMS HTTP {status}")));
        }
        match serde_json::from_slice::<Answer>(&bytes) {
            Ok(answer) => classify(&answer),
            // HTTP 200 with something else: it may have been sent.
            Err(e) => Attempt::Unknown(format!("TurboSMS answered HTTP 200 with an unreadable body: {e}")),
        }
    }
}

fn classify(answer: &Answer) -> Attempt {
    // One recipient per request: its own entry decides; without one, the request's code.
    let (code, status, id) = match answer.response_result.as_deref().and_then(|r| r.first()) {
        Some(r) => (r.response_code, r.response_status.as_str(), r.message_id.clone()),
        None => (answer.response_code, answer.response_status.as_str(), None),
    };
    let what = format!("TurboSMS {code} {status} (request {} {})", answer.response_code, answer.response_status);
    match code {
        codes::RECIPIENT_OK => Attempt::Sent(Sent { platform_id: id.unwrap_or_default() }),
        c if codes::SUCCESS.contains(&c) => Attempt::Sent(Sent { platform_id: id.unwrap_or_default() }),
        // The earlier attempt went out; sending again is what TurboSMS just refused.
        codes::DUPLICATE => Attempt::Sent(Sent { platform_id: id.unwrap_or_else(|| "duplicate".to_owned()) }),
        c if codes::RECIPIENT_GONE.contains(&c) => Attempt::Failed(SendError::RecipientGone(what)),
        c if codes::BAD_TEXT.contains(&c) => Attempt::Failed(SendError::Rejected(what)),
        // Authentication, the sender (unregistered, or unpaid this month), the balance,
        // the gateway's own failures: the account's trouble, which the next gateway
        // may not have.
        _ => Attempt::Failed(SendError::Transient(what)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(top: u32, recipient: Option<u32>) -> Answer {
        Answer {
            response_code: top,
            response_status: String::new(),
            response_result: recipient.map(|c| {
                vec![Recipient { response_code: c, response_status: String::new(), message_id: Some("m1".into()) }]
            }),
        }
    }

    #[test]
    fn turbosms_codes_mean_what_the_docs_say() {
        assert!(matches!(classify(&answer(800, Some(0))), Attempt::Sent(_)));
        assert!(
            matches!(classify(&answer(codes::REPLAYED, Some(0))), Attempt::Sent(_)),
            "a replayed request was sent once"
        );
        assert!(
            matches!(classify(&answer(427, Some(427))), Attempt::Sent(_)),
            "a duplicate within 90 s went out before"
        );
        assert!(matches!(classify(&answer(305, Some(305))), Attempt::Failed(SendError::RecipientGone(_))));
        assert!(matches!(classify(&answer(105, None)), Attempt::Failed(SendError::Transient(_))), "wrong token");
        assert!(matches!(classify(&answer(401, None)), Attempt::Failed(SendError::Transient(_))), "sender unpaid");
        assert!(matches!(classify(&answer(413, None)), Attempt::Failed(SendError::Rejected(_))));
    }
}
