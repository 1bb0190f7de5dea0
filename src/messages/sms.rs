//! How many SMS parts a text takes, and in which encoding (GSM 03.38 / 3GPP TS 23.038).
//!
//! A text made only of the GSM 7-bit alphabet is sent as GSM-7: a basic character
//! takes one septet, a character of the extension table two (an escape and the
//! character). One message holds 160 septets; a concatenated message loses 7 septets
//! per part to its header and holds 153. Anything outside the alphabet (Cyrillic, the
//! typographic apostrophe `’`, emoji) switches the whole text to UCS-2, counted in
//! UTF-16 code units: 70 in one message, 67 per concatenated part.
//!
//! Parts are counted the way gateways split: a two-unit character (an escaped GSM
//! character, a UTF-16 surrogate pair) is never cut across two parts, so a part may
//! end one unit short.
//!
//! The empty text is 0 units in 1 part: sending it would still be one message.

/// How a text goes on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Encoding {
    Gsm7,
    Ucs2,
}

impl Encoding {
    /// Units one unsplit message holds.
    pub fn single(self) -> usize {
        match self {
            Encoding::Gsm7 => 160,
            Encoding::Ucs2 => 70,
        }
    }

    /// Units each part of a concatenated message holds.
    pub fn concatenated(self) -> usize {
        match self {
            Encoding::Gsm7 => 153,
            Encoding::Ucs2 => 67,
        }
    }
}

/// The size of a text as an SMS.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Segments {
    pub encoding: Encoding,
    /// Septets for GSM-7, UTF-16 code units for UCS-2.
    pub units: usize,
    /// Messages on the wire; at least 1.
    pub parts: usize,
}

/// The GSM 03.38 basic character set, in table order (0x00–0x7F), without the escape
/// at 0x1B.
const BASIC: &str = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?\
                     ¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà";

/// The extension table: each is sent as the escape and one more septet.
const EXTENSION: &str = "\u{c}^{}\\[~]|€";

/// Septets `c` takes in GSM-7, or `None` when it is not in the alphabet.
fn gsm_units(c: char) -> Option<usize> {
    if BASIC.contains(c) {
        Some(1)
    } else if EXTENSION.contains(c) {
        Some(2)
    } else {
        None
    }
}

pub fn segments(text: &str) -> Segments {
    let gsm: Option<Vec<usize>> = text.chars().map(gsm_units).collect();
    let (encoding, widths) = match gsm {
        Some(w) => (Encoding::Gsm7, w),
        None => (Encoding::Ucs2, text.chars().map(char::len_utf16).collect()),
    };
    let units = widths.iter().sum();
    let parts = if units <= encoding.single() { 1 } else { split(&widths, encoding.concatenated()) };
    Segments { encoding, units, parts }
}

/// Parts of `per_part` units needed for characters of these widths, none cut in two.
fn split(widths: &[usize], per_part: usize) -> usize {
    let mut parts = 1;
    let mut used = 0;
    for &w in widths {
        if used + w > per_part {
            parts += 1;
            used = 0;
        }
        used += w;
    }
    parts
}

/// True when `text` goes out in at most `max_parts` messages.
pub fn fits(text: &str, max_parts: usize) -> bool {
    segments(text).parts <= max_parts
}

#[cfg(test)]
mod tests {
    use super::*;
    use Encoding::{Gsm7, Ucs2};

    fn rep(s: &str, n: usize) -> String {
        s.repeat(n)
    }

    #[test]
    fn the_tables_are_complete() {
        // 128 positions less the escape; ten extension characters.
        assert_eq!(BASIC.chars().count(), 127);
        assert_eq!(EXTENSION.chars().count(), 10);
        assert!(BASIC.chars().all(|c| !EXTENSION.contains(c)));
    }

    #[test]
    fn sizes_at_every_boundary() {
        let emoji = "🚨";
        let cases: Vec<(&str, String, Encoding, usize, usize)> = vec![
            ("empty", String::new(), Gsm7, 0, 1),
            ("one letter", "a".into(), Gsm7, 1, 1),
            ("160 GSM", rep("a", 160), Gsm7, 160, 1),
            ("161 GSM", rep("a", 161), Gsm7, 161, 2),
            ("306 GSM", rep("a", 306), Gsm7, 306, 2),
            ("307 GSM", rep("a", 307), Gsm7, 307, 3),
            ("459 GSM", rep("a", 459), Gsm7, 459, 3),
            ("the whole basic set", BASIC.into(), Gsm7, 127, 1),
            ("the extension set", EXTENSION.into(), Gsm7, 20, 1),
            ("80 euro signs fill one", rep("€", 80), Gsm7, 160, 1),
            ("81 euro signs", rep("€", 81), Gsm7, 162, 2),
            // 152 basic then an escape pair: 154 > 153, so the pair opens part 2.
            ("extension at the part boundary", format!("{}€{}", rep("a", 152), rep("a", 10)), Gsm7, 164, 2),
            ("extension split would need a third", format!("{}{}", rep("a", 152), rep("€", 77)), Gsm7, 306, 3),
            ("306 units ending in a pair", format!("{}€", rep("a", 304)), Gsm7, 306, 2),
            ("70 UCS-2", rep("ж", 70), Ucs2, 70, 1),
            ("71 UCS-2", rep("ж", 71), Ucs2, 71, 2),
            ("134 UCS-2", rep("ж", 134), Ucs2, 134, 2),
            ("135 UCS-2", rep("ж", 135), Ucs2, 135, 3),
            ("one Cyrillic letter turns it all UCS-2", format!("{}ж", rep("a", 69)), Ucs2, 70, 1),
            ("an emoji is two units", emoji.into(), Ucs2, 2, 1),
            ("emoji fills the single part", format!("{}{emoji}", rep("a", 68)), Ucs2, 70, 1),
            ("emoji one past the single part", format!("{}{emoji}", rep("a", 69)), Ucs2, 71, 2),
            // 66 units then a pair: it does not fit in part 1's last unit.
            ("emoji at the part boundary", format!("{}{emoji}{}", rep("a", 66), rep("a", 10)), Ucs2, 78, 2),
            ("emoji straddle needs a third", format!("{}{emoji}{}", rep("a", 66), rep("a", 66)), Ucs2, 134, 3),
            ("the typographic apostrophe is not GSM", "Kup’yansk".into(), Ucs2, 9, 1),
            ("the ASCII apostrophe is", "Kup'yansk".into(), Gsm7, 9, 1),
            ("tab is not GSM", "a\tb".into(), Ucs2, 3, 1),
            ("CR LF are basic", "a\r\nb".into(), Gsm7, 4, 1),
            ("form feed is an extension", "\u{c}".into(), Gsm7, 2, 1),
            ("lowercase ç is not in the table", "ç".into(), Ucs2, 1, 1),
        ];
        for (name, text, encoding, units, parts) in cases {
            assert_eq!(segments(&text), Segments { encoding, units, parts }, "{name}");
        }
    }

    #[test]
    fn a_ukrainian_alert_is_ucs2() {
        let text = "Повітряна тривога: Куп’янський район. Негайно в укриття.";
        assert_eq!(segments(text), Segments { encoding: Ucs2, units: 56, parts: 1 });
        let twice = format!("{text} {text}");
        assert_eq!(segments(&twice), Segments { encoding: Ucs2, units: 113, parts: 2 });
        assert!(fits(&twice, 2) && !fits(&twice, 1));
    }

    #[test]
    fn fits_counts_parts() {
        assert!(fits("", 1));
        assert!(!fits("", 0));
        assert!(fits(&rep("a", 160), 1));
        assert!(!fits(&rep("a", 161), 1));
        assert!(fits(&rep("a", 459), 3));
        assert!(!fits(&rep("a", 460), 3));
    }
}
