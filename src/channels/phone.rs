//! Phone numbers: what people and spreadsheets write, turned into E.164 (`+` and the
//! digits), and masked for logs.
//!
//! Accepted: `+380501234567`, `+380 (50) 123-45-67`, `+38 050 123 45 67`, `380501234567`
//! (a Ukrainian number without its `+`), `0501234567` (Ukrainian national form),
//! `00380501234567` (the international call prefix), and any other country's number
//! with its `+`: 8 to 15 digits, not starting with 0. A Ukrainian number (`380…`) has
//! exactly 12 digits. Spaces, `-`, `.` and parentheses are separators; anything else is
//! refused, so a typo is reported rather than sent to a stranger.

/// Why a text is not a phone number.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PhoneError {
    #[error("no digits")]
    Empty,
    #[error("`{0}` is a letter; a phone number is digits")]
    Letter(char),
    #[error("`{0}` has no place in a phone number")]
    Symbol(char),
    #[error("more than one +")]
    DoublePlus,
    #[error("the + must come first")]
    MisplacedPlus,
    #[error("no country code starts with 0 (the + is followed by the country code)")]
    LeadingZero,
    #[error("{found} digits after the +; a number has 8 to 15")]
    Length { found: usize },
    #[error("{found} digits; a Ukrainian number has 12: 380 and 9 more")]
    Ukrainian { found: usize },
    #[error("{found} digits; a Ukrainian number written from its 0 has 10")]
    National { found: usize },
    #[error("no country code: write + and the code, or a Ukrainian number from its 0")]
    NoCountryCode,
}

/// `input` as E.164: `+` and 8–15 digits.
pub fn normalize(input: &str) -> Result<String, PhoneError> {
    let t = input.trim();
    let mut digits = String::with_capacity(t.len());
    for c in t.chars() {
        match c {
            '0'..='9' => digits.push(c),
            '+' | '-' | '.' | '(' | ')' => {}
            c if c.is_whitespace() => {}
            c if c.is_alphabetic() => return Err(PhoneError::Letter(c)),
            c => return Err(PhoneError::Symbol(c)),
        }
    }
    let plus = t.starts_with('+');
    match t.matches('+').count() {
        0 => {}
        1 if plus => {}
        1 => return Err(PhoneError::MisplacedPlus),
        _ => return Err(PhoneError::DoublePlus),
    }
    if digits.is_empty() {
        return Err(PhoneError::Empty);
    }
    if plus {
        return international(&digits);
    }
    if let Some(rest) = digits.strip_prefix("00") {
        // No Ukrainian area or operator code starts with 0, so `00` is always the
        // international prefix.
        return international(rest);
    }
    if digits.starts_with("380") {
        return international(&digits);
    }
    if digits.starts_with('0') {
        return match digits.len() {
            10 => Ok(format!("+38{digits}")),
            found => Err(PhoneError::National { found }),
        };
    }
    Err(PhoneError::NoCountryCode)
}

fn international(digits: &str) -> Result<String, PhoneError> {
    let found = digits.len();
    if digits.starts_with('0') {
        Err(PhoneError::LeadingZero)
    } else if digits.starts_with("380") && found != 12 {
        Err(PhoneError::Ukrainian { found })
    } else if !(8..=15).contains(&found) {
        Err(PhoneError::Length { found })
    } else {
        Ok(format!("+{digits}"))
    }
}

/// An E.164 number for logs: `+380501234567` → `+38050***4567`.
///
/// At most 9 digits show (the first 5 and the last 4) and at least 3 are hidden, so a
/// short number shows fewer: 8 digits keep the first 2 and the last 3. Text that is
/// not `+` and digits keeps only its last 3 characters.
pub fn mask(e164: &str) -> String {
    let Some(digits) = e164.strip_prefix('+').filter(|d| d.bytes().all(|b| b.is_ascii_digit())) else {
        return crate::config::secret::mask(e164);
    };
    let n = digits.len();
    let hidden = (n.saturating_sub(9)).max(3).min(n);
    let shown = n - hidden;
    let tail = 4.min(shown.div_ceil(2));
    let head = shown - tail;
    format!("+{}{}{}", &digits[..head], "*".repeat(hidden), &digits[n - tail..])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepted_forms_become_e164() {
        let cases = [
            ("+380501234567", "+380501234567"),
            ("380501234567", "+380501234567"),
            ("0501234567", "+380501234567"),
            ("  050 123 45 67 ", "+380501234567"),
            ("+380 (50) 123-45-67", "+380501234567"),
            ("+38 050 123 45 67", "+380501234567"),
            ("(050) 123.45.67", "+380501234567"),
            ("00380501234567", "+380501234567"),
            ("+380\u{a0}50\u{a0}1234567", "+380501234567"),
            ("+48 512 345 678", "+48512345678"),
            ("+1 (212) 555-0123", "+12125550123"),
            ("+4930123456", "+4930123456"),
            ("+12345678", "+12345678"),
            ("+123456789012345", "+123456789012345"),
            ("0048512345678", "+48512345678"),
        ];
        for (input, want) in cases {
            assert_eq!(normalize(input).as_deref(), Ok(want), "{input:?}");
        }
    }

    #[test]
    fn rejected_forms_say_why() {
        use PhoneError::*;
        let cases = [
            ("", Empty),
            ("  ", Empty),
            ("+", Empty),
            ("()", Empty),
            ("+38050abc4567", Letter('a')),
            ("+38050123456і", Letter('і')),
            ("tel:+380501234567", Letter('t')),
            ("+380501234567#", Symbol('#')),
            ("+380/501234567", Symbol('/')),
            ("++380501234567", DoublePlus),
            ("+380501234567+", DoublePlus),
            ("380+501234567", MisplacedPlus),
            ("+0501234567", LeadingZero),
            ("+38050123456", Ukrainian { found: 11 }),
            ("+3805012345678", Ukrainian { found: 13 }),
            ("38050123456", Ukrainian { found: 11 }),
            ("050123456", National { found: 9 }),
            ("05012345678", National { found: 11 }),
            ("+1234567", Length { found: 7 }),
            ("+1234567890123456", Length { found: 16 }),
            ("501234567", NoCountryCode),
            ("80501234567", NoCountryCode),
            ("48512345678", NoCountryCode),
        ];
        for (input, want) in cases {
            assert_eq!(normalize(input), Err(want), "{input:?}");
        }
        assert_eq!(
            normalize("+38050123456").map_err(|e| e.to_string()),
            Err("11 digits; a Ukrainian number has 12: 380 and 9 more".to_owned())
        );
    }

    #[test]
    fn masks_keep_at_most_nine_digits_and_hide_at_least_three() {
        let cases = [
            ("+380501234567", "+38050***4567"),
            ("+123456789012345", "+12345******2345"),
            ("+12345678901", "+1234***8901"),
            ("+1234567890", "+123***7890"),
            ("+123456789", "+123***789"),
            ("+12345678", "+12***678"),
            ("+123", "+***"),
            ("+", "+"),
            // Not E.164: the generic mask.
            ("12345", "**345"),
        ];
        for (input, want) in cases {
            let got = mask(input);
            assert_eq!(got, want, "{input}");
            let digits = got.bytes().filter(u8::is_ascii_digit).count();
            let total = input.bytes().filter(u8::is_ascii_digit).count();
            if input.starts_with('+') {
                assert!(digits <= 9 && (total < 3 || total - digits >= 3), "{input} → {got}");
            }
        }
    }
}
