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

use serde::Deserialize;

use super::{Attempt, digits, transport};
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
    pub fn new(settings: &GatewaySettings, token: Secret) -> Result<Twilio, SendError> {
        let GatewaySettings::Twilio { name, base_url, account_sid, from, timeout, .. } = settings else {
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
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub async fn send(&self, to: &str, text: &str) -> Attempt {
        // A Messaging Service SID starts with MG; anything else is a sending number.
        let from_field = if self.from.starts_with("MG") { "MessagingServiceSid" } else { "From" };
        let to = format!("+{}", digits(to));
        let form = [("To", to.as_str()), (from_field, self.from.as_str()), ("Body", text)];
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

#[cfg(test)]
mod tests {
    use super::*;

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
