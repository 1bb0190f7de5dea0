//! The secrets a config names, read from the environment at start: every one that is
//! missing is reported in one error, so an operator fixes them all in one go.

use std::collections::BTreeMap;

use crate::config::Config;
use crate::config::secret::Secret;

/// Secrets resolved by the caller: from the environment for `sirena run`, from the
/// simulators for the demo and tests.
#[derive(Clone, Debug, Default)]
pub struct Secrets {
    pub telegram: Option<Secret>,
    /// The Telegram webhook's secret token (`[telegram] webhook_secret_env`).
    pub telegram_webhook: Option<Secret>,
    /// Each source's token, by source name.
    pub sources: BTreeMap<String, Secret>,
    /// Each source's webhook secret, by source name.
    pub webhooks: BTreeMap<String, Secret>,
    /// Each SMS gateway's token, by gateway name.
    pub sms: BTreeMap<String, Secret>,
    /// The secret of each SMS gateway's delivery reports, by gateway name.
    pub sms_reports: BTreeMap<String, Secret>,
    /// The PostgreSQL password (`[store] password_env`).
    pub store_password: Option<Secret>,
}

impl Secrets {
    /// Reads every secret the config names from the environment. Every variable that
    /// is unset or empty is reported in one error, each with what it is for, so an
    /// operator fixes them all in one go.
    pub fn from_env(config: &Config) -> anyhow::Result<Secrets> {
        let mut reader = EnvSecrets::default();
        let s = &config.settings;
        let mut secrets = Secrets::default();
        if let Some(t) = &s.telegram {
            secrets.telegram = reader.read(&t.token_env, "the Telegram bot token ([telegram] token_env)");
            if let Some(var) = &t.webhook_secret_env {
                secrets.telegram_webhook =
                    reader.read(var, "the Telegram webhook's secret token ([telegram] webhook_secret_env)");
            }
        }
        for source in &s.sources {
            let c = source.common();
            if let Some(var) = c.token_env
                && let Some(token) = reader.read(var, &format!("the token of source {} (its token_env)", c.name))
            {
                secrets.sources.insert(c.name.to_owned(), token);
            }
            if let Some(var) = source.webhook_secret_env()
                && let Some(secret) =
                    reader.read(var, &format!("the webhook secret of source {} (its webhook_secret_env)", c.name))
            {
                secrets.webhooks.insert(c.name.to_owned(), secret);
            }
        }
        for g in s.sms.iter().flat_map(|sms| &sms.gateways) {
            // A generic gateway may have no secret.
            let token = match g.token_env() {
                Some(var) => reader.read(var, &format!("the token of SMS gateway {} (its token_env)", g.name())),
                None => Some(Secret::new(String::new())),
            };
            if let Some(token) = token {
                secrets.sms.insert(g.name().to_owned(), token);
            }
            if let Some(var) = g.report_secret_env()
                && let Some(secret) = reader.read(
                    var,
                    &format!("the delivery report secret of SMS gateway {} (its report_secret_env)", g.name()),
                )
            {
                secrets.sms_reports.insert(g.name().to_owned(), secret);
            }
        }
        if let Some(var) = &s.store.password_env {
            secrets.store_password = reader.read(var, "the PostgreSQL password ([store] password_env)");
        }
        reader.finish()?;
        Ok(secrets)
    }
}

/// Reads secrets from the environment, noting every one that is missing.
#[derive(Default)]
struct EnvSecrets {
    /// "TELEGRAM_BOT_TOKEN is not set: the Telegram bot token (...)", one per variable.
    missing: Vec<String>,
}

impl EnvSecrets {
    fn read(&mut self, var: &str, what: &str) -> Option<Secret> {
        match Secret::from_env(var) {
            Ok(secret) => Some(secret),
            Err(e) => {
                let why = match e {
                    crate::config::secret::SecretError::Unset(_) => "is not set",
                    crate::config::secret::SecretError::Empty(_) => "is empty",
                };
                let line = format!("{var} {why}: {what}");
                // One variable may serve two secrets; say it once.
                if !self.missing.iter().any(|m| m.starts_with(&format!("{var} "))) {
                    self.missing.push(line);
                }
                None
            }
        }
    }

    fn finish(self) -> anyhow::Result<()> {
        if self.missing.is_empty() {
            return Ok(());
        }
        let n = self.missing.len();
        let head = if n == 1 { "a secret is missing".to_owned() } else { format!("{n} secrets are missing") };
        anyhow::bail!("{head}; set each environment variable and start again:\n  {}", self.missing.join("\n  "))
    }
}
