//! Secrets (bot token, API keys) that must never reach a log line.

use std::fmt;

/// A secret string. `Debug` and `Display` print `[redacted]`; the value is reachable
/// only through [`Secret::expose`], so every use is greppable.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Secret(s.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Reads a secret from the environment variable the config names.
    pub fn from_env(var: &str) -> Result<Secret, SecretError> {
        match std::env::var(var) {
            Ok(v) if !v.trim().is_empty() => Ok(Secret(v.trim().to_owned())),
            Ok(_) => Err(SecretError::Empty(var.to_owned())),
            Err(_) => Err(SecretError::Unset(var.to_owned())),
        }
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("environment variable {0} is not set")]
    Unset(String),
    #[error("environment variable {0} is empty")]
    Empty(String),
}

/// Masks a phone number or chat id for logs: keeps the last three characters.
pub fn mask(address: &str) -> String {
    let chars: Vec<char> = address.chars().collect();
    let keep = chars.len().min(3);
    let hidden = chars.len() - keep;
    std::iter::repeat_n('*', hidden).chain(chars[hidden..].iter().copied()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_never_print() {
        let s = Secret::new("123456:ABC-real-token");
        assert_eq!(format!("{s:?} {s}"), "Secret([redacted]) [redacted]");
        assert_eq!(s.expose(), "123456:ABC-real-token");
    }

    #[test]
    fn mask_keeps_last_three() {
        assert_eq!(mask("+380501234567"), "**********567");
        assert_eq!(mask("12"), "12");
    }
}
