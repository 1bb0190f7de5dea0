//! The languages sirena speaks, and how a person's choice is read.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Languages sirena speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Lang {
    Uk,
    En,
}

impl Lang {
    pub const ALL: [Lang; 2] = [Lang::Uk, Lang::En];

    pub fn code(self) -> &'static str {
        match self {
            Lang::Uk => "uk",
            Lang::En => "en",
        }
    }

    /// The small integer a delivery row stores.
    pub fn index(self) -> i64 {
        match self {
            Lang::Uk => 0,
            Lang::En => 1,
        }
    }

    pub fn from_index(i: i64) -> Lang {
        if i == 1 { Lang::En } else { Lang::Uk }
    }

    /// Accepts "uk", "UA", "ua", "en", "EN", "en-GB"…; anything else is `None`.
    pub fn parse(s: &str) -> Option<Lang> {
        let s = s.trim().to_ascii_lowercase();
        let base = s.split(['-', '_']).next().unwrap_or("");
        match base {
            "uk" | "ua" | "укр" => Some(Lang::Uk),
            "en" | "eng" => Some(Lang::En),
            _ => None,
        }
    }

    /// The language for a new Telegram user: Ukrainian unless their app speaks English
    /// (or another language we do not have, where English is the likelier to be read).
    pub fn from_telegram(code: Option<&str>) -> Lang {
        match code.and_then(Lang::parse) {
            Some(l) => l,
            None if code.is_none() => Lang::Uk,
            None if code.is_some_and(|c| c.starts_with("ru") || c.starts_with("be")) => Lang::Uk,
            None => Lang::En,
        }
    }
}

impl fmt::Display for Lang {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_accepts_common_spellings() {
        assert_eq!(Lang::parse("UK"), Some(Lang::Uk));
        assert_eq!(Lang::parse("ua"), Some(Lang::Uk));
        assert_eq!(Lang::parse("en-GB"), Some(Lang::En));
        assert_eq!(Lang::parse("de"), None);
        assert_eq!(Lang::from_telegram(Some("de")), Lang::En);
        assert_eq!(Lang::from_telegram(None), Lang::Uk);
        for l in Lang::ALL {
            assert_eq!(Lang::from_index(l.index()), l);
        }
    }
}
