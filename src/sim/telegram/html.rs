//! Telegram's HTML subset, as `parse_mode: "HTML"` accepts it.
//!
//! Role: decides whether Telegram would parse a text's markup and what the
//! reader would see. `sendMessage` and the edits use it to refuse what
//! Telegram refuses (400 "can't parse entities"), and it is public so
//! composer tests hold every rendered message to the same rule.
//!
//! Rules: only the tags in `HTML_TAGS` (a `span` only as a spoiler), every
//! tag closed in order, `<` always starting a tag, and `&` always starting
//! one of the four named entities or a numeric one.

/// The tags Telegram's HTML parse mode knows; any other is refused.
const HTML_TAGS: &[&str] = &[
    "b",
    "strong",
    "i",
    "em",
    "u",
    "ins",
    "s",
    "strike",
    "del",
    "a",
    "code",
    "pre",
    "tg-spoiler",
    "span",
    "blockquote",
];

/// Validates Telegram's HTML subset; returns the visible text (tags removed,
/// entities decoded) or the reason Telegram would give. Public so composer tests can
/// hold every rendered message to the same rule the simulator enforces.
pub fn parse_html(text: &str) -> Result<String, String> {
    let mut visible = String::with_capacity(text.len());
    let mut open: Vec<String> = Vec::new();
    let mut i = 0;
    while let Some(c) = text[i..].chars().next() {
        match c {
            '<' => {
                let rest = &text[i..];
                let starts_tag = rest[1..].chars().next().is_some_and(|n| n.is_ascii_alphabetic() || n == '/');
                if !starts_tag {
                    return Err(format!("Unsupported start tag \"\" at byte offset {i}"));
                }
                let end = tag_end(rest).ok_or_else(|| format!("Can't find end of the tag at byte offset {i}"))?;
                let inner = &rest[1..end];
                if let Some(closing) = inner.strip_prefix('/') {
                    let name = closing.trim().to_ascii_lowercase();
                    match open.pop() {
                        Some(expected) if expected == name => {}
                        Some(expected) => {
                            return Err(format!(
                                "Unmatched end tag at byte offset {i}, expected \"</{expected}>\", found \"</{name}>\""
                            ));
                        }
                        None => {
                            return Err(format!("Unexpected end tag at byte offset {i}"));
                        }
                    }
                } else {
                    let name: String = inner
                        .chars()
                        .take_while(|ch| ch.is_ascii_alphanumeric() || *ch == '-')
                        .collect::<String>()
                        .to_ascii_lowercase();
                    if !HTML_TAGS.contains(&name.as_str()) {
                        return Err(format!("Unsupported start tag \"{name}\" at byte offset {i}"));
                    }
                    let attrs = &inner[name.len()..];
                    if name == "span" && !attrs.contains("tg-spoiler") {
                        return Err(format!("Tag \"span\" must have class \"tg-spoiler\" at byte offset {i}"));
                    }
                    open.push(name);
                }
                i += end + 1;
            }
            '&' => {
                let rest = &text[i..];
                let (decoded, len) =
                    html_entity(rest).ok_or_else(|| format!("Unsupported HTML entity at byte offset {i}"))?;
                visible.push(decoded);
                i += len;
            }
            _ => {
                visible.push(c);
                i += c.len_utf8();
            }
        }
    }
    match open.pop() {
        Some(tag) => Err(format!("Can't find end tag corresponding to start tag \"{tag}\"")),
        None => Ok(visible),
    }
}

/// Byte index of the `>` closing the tag that starts `s`, skipping quoted
/// attribute values.
fn tag_end(s: &str) -> Option<usize> {
    let mut quote: Option<char> = None;
    for (idx, c) in s.char_indices().skip(1) {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '"' | '\'') => quote = Some(c),
            (None, '>') => return Some(idx),
            (None, '<') => return None,
            _ => {}
        }
    }
    None
}

/// Decodes the entity at the start of `s` (which begins with `&`): the four
/// named ones Telegram supports, or a numeric one. Returns the character and
/// the entity's length in bytes.
fn html_entity(s: &str) -> Option<(char, usize)> {
    let semi = s.get(..12).unwrap_or(s).find(';')?;
    let name = &s[1..semi];
    let c = match name {
        "lt" => '<',
        "gt" => '>',
        "amp" => '&',
        "quot" => '"',
        _ => {
            let num = name.strip_prefix('#')?;
            let code = match num.strip_prefix(['x', 'X']) {
                Some(hex) => u32::from_str_radix(hex, 16).ok()?,
                None => num.parse().ok()?,
            };
            char::from_u32(code)?
        }
    };
    Some((c, semi + 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn html_subset() {
        assert_eq!(parse_html("<b>x</b> &lt;b&gt;").as_deref(), Ok("x <b>"));
        assert!(parse_html("<b>x").is_err());
        assert!(parse_html("<b><i>x</b></i>").is_err());
        assert!(parse_html("a < b").is_err());
        assert!(parse_html("fish & chips").is_err());
        assert!(parse_html("<div>x</div>").is_err());
        assert!(parse_html("<span>x</span>").is_err());
        assert_eq!(parse_html(r#"<a href="https://e.x/?a=1&b=2">l</a> &#1071;&#x44f;"#).as_deref(), Ok("l Яя"));
        assert_eq!(parse_html(r#"<span class="tg-spoiler">s</span> <tg-spoiler>t</tg-spoiler>"#).as_deref(), Ok("s t"));
        assert_eq!(parse_html("1 > 0").as_deref(), Ok("1 > 0"));
    }
}
