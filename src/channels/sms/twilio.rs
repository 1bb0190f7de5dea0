//! Twilio Programmable Messaging: `POST /2010-04-01/Accounts/{Sid}/Messages.json`, a
//! form body (`To`, `From` or `MessagingServiceSid`, `Body`), HTTP Basic auth with the
//! account SID and auth token. Errors come as `{"code", "message", "status"}`.
//!
//! Classification: 429 or code 20429 (too many requests) and 63017 (account rate) hold
//! the gateway; 14107 (over 30 messages between the same two numbers in 30 s) holds
//! only that number — it is rate limiting, not a bad number; 21211 (invalid `To`),
//! 21614 (not a mobile number) and 21610 (the number opted out) mean the recipient is
//! gone; 20003 (authentication) and 5xx are the gateway's trouble, which failover
//! answers; other 4xx reject the message.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde::Deserialize;

use super::{Attempt, ReportError, ReportStatus, digits, transport};
use crate::channels::{LimitScope, SendError, Sent};
use crate::config::secret::Secret;
use crate::config::sms::GatewaySettings;

pub struct Twilio {
    name: String,
    http: reqwest::Client,
    url: String,
    account_sid: String,
    token: Secret,
    from: String,
    /// Where Twilio posts each message's status (`StatusCallback`), secret included.
    status_callback: Option<String>,
}

#[derive(Deserialize)]
struct Created {
    sid: String,
}

#[derive(Deserialize)]
struct ApiError {
    code: Option<u32>,
    #[serde(default)]
    message: String,
}

impl Twilio {
    pub fn new(settings: &GatewaySettings, token: Secret, report_secret: Option<&Secret>) -> Result<Twilio, SendError> {
        let GatewaySettings::Twilio { name, base_url, account_sid, from, timeout, report_url, .. } = settings else {
            return Err(SendError::Rejected("not a Twilio gateway".to_owned()));
        };
        let http = reqwest::Client::builder()
            .timeout(*timeout)
            .user_agent(concat!("sirena/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| SendError::Transient(e.to_string()))?;
        Ok(Twilio {
            name: name.clone(),
            http,
            url: format!("{}/2010-04-01/Accounts/{account_sid}/Messages.json", base_url.trim_end_matches('/')),
            account_sid: account_sid.clone(),
            token,
            from: from.clone(),
            status_callback: report_url.as_deref().zip(report_secret).map(|(url, s)| callback_url(url, s)),
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub async fn send(&self, to: &str, text: &str) -> Attempt {
        // A Messaging Service SID starts with MG; anything else is a sending number.
        let from_field = if self.from.starts_with("MG") { "MessagingServiceSid" } else { "From" };
        let to = format!("+{}", digits(to));
        let mut form = vec![("To", to.as_str()), (from_field, self.from.as_str()), ("Body", text)];
        if let Some(url) = &self.status_callback {
            form.push(("StatusCallback", url));
        }
        let resp = match self
            .http
            .post(&self.url)
            .basic_auth(&self.account_sid, Some(self.token.expose()))
            .form(&form)
            .send()
            .await
        {
            Ok(r) => r,
            Err(e) => return transport(e),
        };
        let status = resp.status();
        let body = match resp.bytes().await {
            Ok(b) => b,
            Err(e) => return transport(e),
        };
        if status.is_success() {
            return match serde_json::from_slice::<Created>(&body) {
                Ok(c) => Attempt::Sent(Sent { platform_id: c.sid }),
                // Accepted, but the answer is unreadable: do not send it again elsewhere.
                Err(e) => Attempt::Unknown(format!("HTTP {status} with an unreadable body: {e}")),
            };
        }
        let error: ApiError = serde_json::from_slice(&body).unwrap_or(ApiError { code: None, message: String::new() });
        Attempt::Failed(classify(status.as_u16(), error.code, &error.message))
    }
}

/// The `StatusCallback` URL: the configured public address of `/reports/<name>` with
/// the secret as its last segment.
pub fn callback_url(report_url: &str, secret: &Secret) -> String {
    format!("{}/{}", report_url.trim_end_matches('/'), secret.expose())
}

/// Reads a status callback: a form with `MessageSid`, `MessageStatus` and, for a
/// failure, `ErrorCode`, signed with `X-Twilio-Signature` over `url` and the form when
/// Twilio knows the auth token (always). A signature that is present must match.
pub fn read_report(
    body: &[u8],
    signature_header: Option<&str>,
    auth_token: &Secret,
    url: Option<&str>,
) -> Result<(String, ReportStatus), ReportError> {
    let text = std::str::from_utf8(body).map_err(|_| ReportError::Malformed("not UTF-8".into()))?;
    let form = crate::web::parse_form(text);
    if let (Some(given), Some(url)) = (signature_header, url) {
        let params: Vec<(&str, String)> = form.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
        if !crate::web::same(signature(auth_token.expose(), url, &params).as_bytes(), given.trim().as_bytes()) {
            return Err(ReportError::Signature);
        }
    }
    let field = |name: &str| form.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
    let sid = field("MessageSid").or_else(|| field("SmsSid")).filter(|s| !s.is_empty());
    let sid = sid.ok_or_else(|| ReportError::Malformed("no MessageSid".into()))?;
    let status = field("MessageStatus").or_else(|| field("SmsStatus"));
    let status = status.ok_or_else(|| ReportError::Malformed("no MessageStatus".into()))?;
    let code = field("ErrorCode").and_then(|c| c.trim().parse::<u32>().ok());
    let what = format!("Twilio {status}{}", code.map_or(String::new(), |c| format!(" {c}")));
    let status = match (status, code) {
        ("delivered" | "read", _) => ReportStatus::Delivered,
        // Over 30 messages between the same two numbers, or the account's rate: Twilio
        // dropped it without sending; it may go again once the window has passed.
        ("failed" | "undelivered", Some(14107 | 63017)) => {
            ReportStatus::RateLimited { error: what, retry_after: Duration::from_secs(30) }
        }
        ("failed" | "undelivered", _) => ReportStatus::Undelivered(what),
        ("accepted" | "queued" | "sending" | "sent" | "scheduled" | "receiving" | "received", _) => {
            ReportStatus::InProgress
        }
        (other, _) => return Err(ReportError::Malformed(format!("unknown MessageStatus `{other}`"))),
    };
    Ok((sid.to_owned(), status))
}

/// What a Twilio error means for this message.
fn classify(status: u16, code: Option<u32>, message: &str) -> SendError {
    let what = format!("Twilio HTTP {status} code {}: {message}", code.map_or("-".to_owned(), |c| c.to_string()));
    match (status, code) {
        (_, Some(14107)) => {
            SendError::RateLimited { scope: LimitScope::Recipient, retry_after: Duration::from_secs(30) }
        }
        (429, _) | (_, Some(20429 | 63017)) => {
            SendError::RateLimited { scope: LimitScope::Channel, retry_after: Duration::from_secs(1) }
        }
        (_, Some(21211 | 21614 | 21610)) => SendError::RecipientGone(what),
        (401 | 403, _) | (_, Some(20003)) | (500..=599, _) => SendError::Transient(what),
        _ => SendError::Rejected(what),
    }
}

/// `X-Twilio-Signature`: base64(HMAC-SHA1(token, url + sorted name+value)).
pub fn signature(auth_token: &str, url: &str, params: &[(&str, String)]) -> String {
    let mut sorted: Vec<&(&str, String)> = params.iter().collect();
    sorted.sort_by(|a, b| a.0.cmp(b.0).then_with(|| a.1.cmp(&b.1)));
    let mut data = url.to_owned();
    for (k, v) in sorted {
        data.push_str(k);
        data.push_str(v);
    }
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, auth_token.as_bytes());
    BASE64.encode(ring::hmac::sign(&key, data.as_bytes()).as_ref())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_matches_twilios_documented_example() {
        // The example from Twilio's request-validation guide, as quoted by a
        // public implementation (gist ryanwinchester/ab49855e…).
        let params: Vec<(&str, String)> = vec![
            ("CallSid", "CA1234567890ABCDE".into()),
            ("Caller", "+12349013030".into()),
            ("Digits", "1234".into()),
            ("From", "+12349013030".into()),
            ("To", "+18005551212".into()),
        ];
        let got = signature("12345", "https://mycompany.com/myapp.php?foo=1&bar=2", &params);
        assert_eq!(got, "0/KCTR6DLpKmkAf8muzZqo1nDgQ=");
    }

    #[test]
    fn status_callbacks_are_read_and_checked() {
        let token = Secret::new("tok");
        let url = "https://sirena.example.org/reports/twilio/s3cret";
        let body = "MessageSid=SM1&MessageStatus=undelivered&ErrorCode=30003&To=%2B380501234567";
        let form = crate::web::parse_form(body);
        let params: Vec<(&str, String)> = form.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
        let good = signature("tok", url, &params);
        let (sid, status) = read_report(body.as_bytes(), Some(&good), &token, Some(url)).expect("reads");
        assert_eq!(sid, "SM1");
        assert!(matches!(status, ReportStatus::Undelivered(ref e) if e.contains("30003")), "{status:?}");
        assert!(matches!(read_report(body.as_bytes(), Some("AAAA"), &token, Some(url)), Err(ReportError::Signature)));
        let rate = read_report(b"MessageSid=SM2&MessageStatus=failed&ErrorCode=14107", None, &token, None);
        assert!(matches!(rate, Ok((_, ReportStatus::RateLimited { .. }))), "{rate:?}");
        let sent = read_report(b"MessageSid=SM2&MessageStatus=sent", None, &token, None);
        assert!(matches!(sent, Ok((_, ReportStatus::InProgress))));
        assert!(matches!(read_report(b"MessageStatus=sent", None, &token, None), Err(ReportError::Malformed(_))));
        assert!(matches!(
            read_report(b"MessageSid=SM2&MessageStatus=weird", None, &token, None),
            Err(ReportError::Malformed(_))
        ));
    }

    #[test]
    fn twilio_errors_mean_what_the_docs_say() {
        assert!(matches!(classify(400, Some(14107), ""), SendError::RateLimited { scope: LimitScope::Recipient, .. }));
        assert!(matches!(classify(429, Some(20429), ""), SendError::RateLimited { scope: LimitScope::Channel, .. }));
        assert!(matches!(classify(400, Some(21211), "Invalid 'To'"), SendError::RecipientGone(_)));
        assert!(matches!(classify(401, Some(20003), "Authenticate"), SendError::Transient(_)));
        assert!(matches!(classify(503, None, ""), SendError::Transient(_)));
        assert!(matches!(classify(400, Some(21602), "Body required"), SendError::Rejected(_)));
    }
}
