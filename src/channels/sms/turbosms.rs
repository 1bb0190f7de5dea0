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

use super::{Attempt, ReportError, ReportStatus, digits, transport};
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
    batch: usize,
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
    #[serde(default)]
    phone: Option<String>,
    response_code: u32,
    #[serde(default)]
    response_status: String,
    #[serde(default)]
    message_id: Option<String>,
}

impl TurboSms {
    pub fn new(settings: &GatewaySettings, token: Secret) -> Result<TurboSms, SendError> {
        let GatewaySettings::Turbosms { name, base_url, sender, timeout, viber, batch, .. } = settings else {
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
            batch: (*batch).max(1),
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn batch(&self) -> usize {
        self.batch
    }

    /// One text to every number in `to`: one attempt per number, in order.
    pub async fn send(&self, to: &[&str], text: &str, key: &str) -> Vec<Attempt> {
        let recipients: Vec<&str> = to.iter().map(|n| digits(n)).collect();
        let all = |attempt: Attempt| -> Vec<Attempt> { to.iter().map(|_| attempt.clone()).collect() };
        let mut body = json!({
            "recipients": recipients,
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
            Err(e) => return all(transport(e)),
        };
        let status = resp.status();
        // The throttling page carries no JSON; its wait, if any, is in the header.
        let retry_after = resp
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map_or(std::time::Duration::from_secs(1), std::time::Duration::from_secs);
        let bytes = match resp.bytes().await {
            Ok(b) => b,
            Err(e) => return all(transport(e)),
        };
        if status.as_u16() == 429 {
            return all(Attempt::Failed(SendError::RateLimited { scope: LimitScope::Channel, retry_after }));
        }
        if !status.is_success() {
            return all(Attempt::Failed(SendError::Transient(format!("TurboSMS HTTP {status}"))));
        }
        match serde_json::from_slice::<Answer>(&bytes) {
            Ok(answer) => classify(&answer, &recipients),
            // HTTP 200 with something else: it may have been sent.
            Err(e) => all(Attempt::Unknown(format!("TurboSMS answered HTTP 200 with an unreadable body: {e}"))),
        }
    }
}

/// One attempt per recipient of the request, in the order asked. Each recipient's own
/// entry decides (matched by number, else by position); a recipient without one gets
/// the request's code.
fn classify(answer: &Answer, asked: &[&str]) -> Vec<Attempt> {
    let entries = answer.response_result.as_deref().unwrap_or_default();
    asked
        .iter()
        .enumerate()
        .map(|(i, number)| {
            let entry = entries
                .iter()
                .find(|r| r.phone.as_deref().map(|p| p.trim_start_matches('+')) == Some(*number))
                .or_else(|| entries.get(i).filter(|r| r.phone.is_none()));
            classify_one(answer, entry)
        })
        .collect()
}

fn classify_one(answer: &Answer, entry: Option<&Recipient>) -> Attempt {
    let (code, status, id) = match entry {
        Some(r) => (r.response_code, r.response_status.as_str(), r.message_id.clone()),
        None if codes::SUCCESS.contains(&answer.response_code) || answer.response_code == codes::REPLAYED => {
            return Attempt::Unknown(format!(
                "TurboSMS {} left this recipient out of its answer",
                answer.response_code
            ));
        }
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

/// A delivery report as the TurboSMS callback posts it: JSON with `message_id` and
/// `status` (`Delivered`; `Undelivered`, `Expired`, `Rejected`; anything else is still
/// on its way). The callback's documented shape could not be read; this is the shape
/// public TurboSMS clients expect, and the simulator's.
pub fn read_report(body: &[u8]) -> Result<(String, ReportStatus), ReportError> {
    #[derive(Deserialize)]
    struct Report {
        message_id: String,
        status: String,
    }
    let r: Report = serde_json::from_slice(body).map_err(|e| ReportError::Malformed(e.to_string()))?;
    if r.message_id.trim().is_empty() {
        return Err(ReportError::Malformed("empty message_id".into()));
    }
    let status = match r.status.to_ascii_lowercase().as_str() {
        "delivered" | "read" => ReportStatus::Delivered,
        "undelivered" | "expired" | "rejected" | "failed" => {
            ReportStatus::Undelivered(format!("TurboSMS {}", r.status))
        }
        _ => ReportStatus::InProgress,
    };
    Ok((r.message_id, status))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(top: u32, recipient: Option<u32>) -> Answer {
        Answer {
            response_code: top,
            response_status: String::new(),
            response_result: recipient.map(|c| {
                vec![Recipient {
                    phone: None,
                    response_code: c,
                    response_status: String::new(),
                    message_id: Some("m1".into()),
                }]
            }),
        }
    }

    fn one(answer: &Answer) -> Attempt {
        classify(answer, &["380501234567"]).remove(0)
    }

    #[test]
    fn turbosms_codes_mean_what_the_docs_say() {
        assert!(matches!(one(&answer(800, Some(0))), Attempt::Sent(_)));
        assert!(matches!(one(&answer(codes::REPLAYED, Some(0))), Attempt::Sent(_)), "a replayed request was sent once");
        assert!(matches!(one(&answer(427, Some(427))), Attempt::Sent(_)), "a duplicate within 90 s went out before");
        assert!(matches!(one(&answer(305, Some(305))), Attempt::Failed(SendError::RecipientGone(_))));
        assert!(matches!(one(&answer(105, None)), Attempt::Failed(SendError::Transient(_))), "wrong token");
        assert!(matches!(one(&answer(401, None)), Attempt::Failed(SendError::Transient(_))), "sender unpaid");
        assert!(matches!(one(&answer(413, None)), Attempt::Failed(SendError::Rejected(_))));
        assert!(matches!(one(&answer(800, None)), Attempt::Unknown(_)), "accepted, but not said for whom");
    }

    #[test]
    fn reports_read_their_status() {
        let read = |b: &str| read_report(b.as_bytes());
        assert_eq!(
            read(r#"{"message_id":"m1","phone":"380501234567","status":"Delivered"}"#).ok(),
            Some(("m1".into(), ReportStatus::Delivered))
        );
        assert!(matches!(read(r#"{"message_id":"m1","status":"Expired"}"#), Ok((_, ReportStatus::Undelivered(_)))));
        assert!(matches!(read(r#"{"message_id":"m1","status":"Enroute"}"#), Ok((_, ReportStatus::InProgress))));
        assert!(matches!(read(r#"{"status":"Delivered"}"#), Err(ReportError::Malformed(_))));
        assert!(matches!(read("<html>"), Err(ReportError::Malformed(_))));
    }

    #[test]
    fn each_recipient_of_a_batch_gets_its_own_entry() {
        let entry = |phone: &str, code: u32, id: Option<&str>| Recipient {
            phone: Some(phone.to_owned()),
            response_code: code,
            response_status: String::new(),
            message_id: id.map(str::to_owned),
        };
        let answer = Answer {
            response_code: 802,
            response_status: "SUCCESS_MESSAGE_PARTIAL_ACCEPTED".into(),
            // In another order than asked: nothing promises the order.
            response_result: Some(vec![entry("380501234562", 305, None), entry("380501234561", 0, Some("id-1"))]),
        };
        let got = classify(&answer, &["380501234561", "380501234562", "380501234563"]);
        assert!(matches!(&got[0], Attempt::Sent(s) if s.platform_id == "id-1"), "{got:?}");
        assert!(matches!(got[1], Attempt::Failed(SendError::RecipientGone(_))), "{got:?}");
        assert!(matches!(got[2], Attempt::Unknown(_)), "left out of the answer: {got:?}");
    }
}
