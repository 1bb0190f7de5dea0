//! Durations in the operator's files: `"30s"`, `"5m"`, `"1h 30m"`, bounded so that no
//! setting can overflow a clock (`poll = "1000000000h"` would panic the first time a
//! deadline is computed from it).

use std::time::Duration;

use serde::{Deserialize, Deserializer};

/// The longest duration any setting takes. Deadlines, leases and intervals are seconds
/// to days; anything longer is a typo.
pub const MAX: Duration = Duration::from_secs(31 * 24 * 3600);

/// Reads a duration, or says what is wrong with it in the operator's words.
pub fn parse(s: &str) -> Result<Duration, String> {
    let d = humantime::parse_duration(s.trim())
        .map_err(|e| format!("`{s}` is not a duration like \"30s\", \"5m\" or \"2h\": {e}"))?;
    if d > MAX {
        return Err(format!("`{s}` is longer than 31 days, the longest duration sirena takes"));
    }
    Ok(d)
}

/// `#[serde(with = "crate::config::duration")]`.
pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let s = String::deserialize(d)?;
    parse(&s).map_err(serde::de::Error::custom)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_durations_and_refuses_absurd_ones() {
        assert_eq!(parse("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse(" 1h 30m "), Ok(Duration::from_secs(5400)));
        assert_eq!(parse("31days"), Ok(MAX));
        let long = parse("1000000000h").unwrap_err();
        assert!(long.contains("longer than 31 days"), "{long}");
        // Beyond u64 seconds humantime itself refuses; the message still names the value.
        let huge = parse("99999999999999999999999h").unwrap_err();
        assert!(huge.contains("99999999999999999999999h"), "{huge}");
        assert!(parse("soon").is_err());
    }
}
