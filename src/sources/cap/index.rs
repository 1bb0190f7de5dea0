//! Index feeds that list CAP messages: Atom (`feed/entry`) and RSS 2.0
//! (`rss/channel/item`).
//!
//! An entry names its message by a link (fetched by the poller) and may carry the
//! message itself inside (`<content>`), either as an `<alert>` element or as escaped
//! XML text. NWS-style `cap:*` summary elements in an entry are not a CAP message (no
//! identifier, no sender) and are ignored: the poller fetches the link.
//!
//! An entry that does not read — no link and no message inside, or a message inside
//! that does not decode — is left out and listed in [`CapIndex::skipped`]; the rest of
//! the index is applied. That is safe for CAP because nothing ends by being absent: an
//! alert ends only by a Cancel or its `expires`, so a skipped entry can delay a start
//! or an end, never make an all-clear. An `updated` that is not a date is dropped.
//!
//! Two more shapes seen from real senders: SMHI's `<alerts>` wrapper around whole CAP
//! messages is read as an index of embedded messages. An OASIS EDXL-DE envelope
//! (`<EDXLDistribution>`) is refused: its own status, sender and addressing would have
//! to be reconciled with each message's, which no Ukrainian sender needs; point the
//! source at the sender's CAP feed instead.

use chrono::{DateTime, FixedOffset};

use super::CapMessage;
use super::read::message;
use super::xml::{self, Element};
use crate::sources::{Dropped, SourceError};

#[derive(Clone, Debug, PartialEq)]
pub struct IndexEntry {
    /// Atom `id` or RSS `guid`, falling back to the link.
    pub id: String,
    /// Where the CAP message is; `None` only when it is embedded.
    pub url: Option<String>,
    /// Atom `updated` (else `published`), RSS `pubDate`.
    pub updated: Option<DateTime<FixedOffset>>,
    /// The CAP message, when the entry carries it.
    pub embedded: Option<CapMessage>,
}

/// A decoded index: the entries that read, and what was left out.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CapIndex {
    pub entries: Vec<IndexEntry>,
    /// Entries (field `entry`) and dates (field `updated`) that did not read, each
    /// with where it was (`entry 2 (urn:x)`), for the poller and `sirena feed decode`.
    pub skipped: Vec<(String, Dropped)>,
}

/// Decodes an Atom or RSS 2.0 index (or SMHI's `<alerts>` wrapper). A body that is no
/// index at all is an error; an entry that does not read is skipped (module docs).
pub fn decode_index(xml: &[u8]) -> Result<CapIndex, SourceError> {
    let root = xml::parse(xml).map_err(SourceError::Decode)?;
    index(&root)
}

/// Reads a parsed index document.
pub(super) fn index(root: &Element) -> Result<CapIndex, SourceError> {
    let mut index = CapIndex::default();
    if root.name == "feed" {
        // A message outside any entry is foreign markup to Atom (RFC 4287 §6).
        for _ in root.children_named("alert") {
            index
                .skipped
                .push(("the feed".to_owned(), Dropped::new("alert", "one outside any <entry>, which is not read")));
        }
    }
    let items: Vec<(String, Result<IndexEntry, String>)> = match root.name.as_str() {
        "feed" => root.children_named("entry").enumerate().map(|(i, e)| atom_entry(i, e, &mut index)).collect(),
        "rss" => {
            let channel = root
                .child("channel")
                .ok_or_else(|| SourceError::Decode("an RSS document without its <channel>".into()))?;
            channel.children_named("item").enumerate().map(|(i, e)| rss_item(i, e, &mut index)).collect()
        }
        "alerts" => root.children_named("alert").enumerate().map(|(i, a)| bundled(i, a)).collect(),
        "EDXLDistribution" => {
            let n = root.find_all("alert");
            return Err(SourceError::Decode(format!(
                "an EDXL-DE distribution envelope holding {n} CAP message{}: sirena reads CAP messages and \
                 Atom or RSS indexes of them, not EDXL-DE, whose own status and addressing would have to be \
                 reconciled with each message's; point the source at the sender's CAP feed",
                if n == 1 { "" } else { "s" }
            )));
        }
        other => {
            return Err(SourceError::Decode(format!(
                "root element <{other}> is neither an Atom <feed> nor an RSS <rss>"
            )));
        }
    };
    for (place, item) in items {
        match item {
            Ok(entry) => index.entries.push(entry),
            Err(shape) => index.skipped.push((place, Dropped::new("entry", shape))),
        }
    }
    Ok(index)
}

/// `entry 2` or `entry 2 (urn:x)`: where an entry is, for people (counted from 1).
fn place(kind: &str, i: usize, id: Option<&str>) -> String {
    match id {
        Some(id) => format!("{kind} {} ({id})", i + 1),
        None => format!("{kind} {}", i + 1),
    }
}

fn atom_entry(i: usize, entry: &Element, index: &mut CapIndex) -> (String, Result<IndexEntry, String>) {
    let at = place("entry", i, entry.child_text("id"));
    let url = atom_link(entry);
    let updated = match entry.child_text("updated").or_else(|| entry.child_text("published")) {
        Some(v) => match DateTime::parse_from_rfc3339(v) {
            Ok(d) => Some(d),
            Err(_) => {
                index
                    .skipped
                    .push((at.clone(), Dropped::new("updated", format!("`{v}`, which is not an RFC 3339 date"))));
                None
            }
        },
        None => None,
    };
    let entry =
        embedded(entry.child("content")).and_then(|embedded| finish(entry.child_text("id"), url, updated, embedded));
    (at, entry)
}

/// One message of SMHI's `<alerts>` wrapper.
fn bundled(i: usize, alert: &Element) -> (String, Result<IndexEntry, String>) {
    let at = place("alert", i, alert.child_text("identifier"));
    let entry = message(alert).map_err(|e| format!("one that does not read ({e})")).map(|m| IndexEntry {
        id: m.triple(),
        url: None,
        updated: Some(m.sent),
        embedded: Some(m),
    });
    (at, entry)
}

/// The link to the CAP message: one typed as CAP XML first, then the entry's
/// `alternate` link (a link without `rel` is one), then any link.
fn atom_link(entry: &Element) -> Option<String> {
    let links: Vec<&Element> = entry.children_named("link").filter(|l| l.attr("href").is_some()).collect();
    let is_cap = |l: &&&Element| l.attr("type").is_some_and(|t| t.contains("cap"));
    let is_alternate = |l: &&&Element| l.attr("rel").is_none_or(|r| r == "alternate");
    links
        .iter()
        .find(is_cap)
        .or_else(|| links.iter().find(is_alternate))
        .or(links.first())
        .and_then(|l| l.attr("href"))
        .map(|h| h.trim().to_owned())
}

fn rss_item(i: usize, item: &Element, index: &mut CapIndex) -> (String, Result<IndexEntry, String>) {
    let at = place("item", i, item.child_text("guid"));
    let updated = match item.child_text("pubDate") {
        Some(v) => match DateTime::parse_from_rfc2822(v) {
            Ok(d) => Some(d),
            Err(_) => {
                index
                    .skipped
                    .push((at.clone(), Dropped::new("updated", format!("`{v}`, which is not an RFC 2822 date"))));
                None
            }
        },
        None => None,
    };
    let url = item.child_text("link").map(str::to_owned);
    let entry = embedded(item.child("encoded").or_else(|| item.child("description")))
        .and_then(|embedded| finish(item.child_text("guid"), url, updated, embedded));
    (at, entry)
}

/// A CAP message inside `content`: an `<alert>` element, or escaped XML text that is
/// one. Other content (a summary, HTML) is not a message.
fn embedded(content: Option<&Element>) -> Result<Option<CapMessage>, String> {
    let Some(content) = content else { return Ok(None) };
    let broken = |e: String| format!("one whose CAP message inside does not read ({e})");
    if let Some(alert) = content.find("alert") {
        return message(alert).map(Some).map_err(broken);
    }
    let text = content.text();
    if text.starts_with('<')
        && let Ok(root) = xml::parse_str(text)
        && root.name == "alert"
    {
        return message(&root).map(Some).map_err(broken);
    }
    Ok(None)
}

fn finish(
    id: Option<&str>,
    url: Option<String>,
    updated: Option<DateTime<FixedOffset>>,
    embedded: Option<CapMessage>,
) -> Result<IndexEntry, String> {
    if url.is_none() && embedded.is_none() {
        return Err("one with no link to a CAP message and none inside".to_owned());
    }
    let id = id.map(str::to_owned).or_else(|| url.clone()).or_else(|| embedded.as_ref().map(CapMessage::triple));
    let Some(id) = id else { return Err("no id".to_owned()) };
    Ok(IndexEntry { id, url, updated, embedded })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rss_items_and_embedded_alerts() {
        let rss = r#"<rss version="2.0"><channel><title>t</title>
            <item><title>a</title><link>https://example.org/a.xml</link><guid>urn:a</guid><pubDate>Mon, 06 Nov 2023 08:00:00 +0200</pubDate></item>
            <item><guid>urn:b</guid><description>&lt;alert&gt;&lt;identifier&gt;B&lt;/identifier&gt;&lt;sender&gt;s&lt;/sender&gt;&lt;sent&gt;2023-11-06T08:00:00+02:00&lt;/sent&gt;&lt;status&gt;Actual&lt;/status&gt;&lt;msgType&gt;Alert&lt;/msgType&gt;&lt;/alert&gt;</description></item>
        </channel></rss>"#;
        let index = decode_index(rss.as_bytes()).expect("decodes");
        assert_eq!(index.skipped, vec![]);
        let entries = index.entries;
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[0].id, "urn:a");
        assert_eq!(entries[0].url.as_deref(), Some("https://example.org/a.xml"));
        assert_eq!(entries[0].updated.map(|d| d.to_rfc3339()), Some("2023-11-06T08:00:00+02:00".into()));
        assert_eq!(entries[1].url, None);
        assert_eq!(entries[1].embedded.as_ref().map(|m| m.identifier.as_str()), Some("B"));
    }

    #[test]
    fn atom_prefers_the_cap_link_and_reads_an_embedded_alert() {
        let atom = r#"<feed xmlns="http://www.w3.org/2005/Atom"><entry><id>e1</id><updated>2023-11-06T08:00:00Z</updated>
            <link rel="alternate" type="text/html" href="https://example.org/e1.html"/>
            <link rel="related" type="application/cap+xml" href="https://example.org/e1.cap"/>
            <content type="application/cap+xml"><alert xmlns="urn:oasis:names:tc:emergency:cap:1.2"><identifier>E1</identifier><sender>s</sender><sent>2023-11-06T08:00:00Z</sent><status>Test</status><msgType>Alert</msgType></alert></content>
        </entry></feed>"#;
        let entries = decode_index(atom.as_bytes()).expect("decodes").entries;
        assert_eq!(entries[0].url.as_deref(), Some("https://example.org/e1.cap"));
        assert_eq!(entries[0].embedded.as_ref().map(|m| m.identifier.as_str()), Some("E1"));
    }

    #[test]
    fn an_entry_that_does_not_read_is_skipped_and_the_rest_kept() {
        let atom = r#"<feed xmlns="http://www.w3.org/2005/Atom">
            <entry><id>urn:no-link</id></entry>
            <entry><id>urn:broken</id><content><alert><identifier>B</identifier><sender>s</sender><status>Actual</status><msgType>Alert</msgType></alert></content></entry>
            <entry><id>urn:good</id><updated>today</updated><link href="https://example.org/good.xml"/></entry>
        </feed>"#;
        let index = decode_index(atom.as_bytes()).expect("decodes");
        assert_eq!(index.entries.len(), 1);
        assert_eq!(index.entries[0].id, "urn:good");
        assert_eq!(index.entries[0].updated, None);
        assert_eq!(
            index.skipped,
            vec![
                ("entry 3 (urn:good)".to_string(), Dropped::new("updated", "`today`, which is not an RFC 3339 date")),
                (
                    "entry 1 (urn:no-link)".to_string(),
                    Dropped::new("entry", "one with no link to a CAP message and none inside")
                ),
                (
                    "entry 2 (urn:broken)".to_string(),
                    Dropped::new("entry", "one whose CAP message inside does not read (missing <sent>)")
                ),
            ]
        );
        let rss = "<rss><channel><item><link>u</link><pubDate>now</pubDate></item></channel></rss>";
        let index = decode_index(rss.as_bytes()).expect("decodes");
        assert_eq!(index.entries.len(), 1);
        assert_eq!(index.skipped[0].1, Dropped::new("updated", "`now`, which is not an RFC 2822 date"));
    }

    #[test]
    fn bad_indexes_are_errors() {
        for (bad, want) in [
            ("<html><body>502</body></html>", "neither an Atom"),
            ("<rss version='2.0'></rss>", "an RSS document without its <channel>"),
            ("<feed><entry><id>x</id>", "never closed"),
            (
                "<EDXLDistribution><contentObject><xmlContent><embeddedXMLContent><alert/></embeddedXMLContent></xmlContent></contentObject></EDXLDistribution>",
                "an EDXL-DE distribution envelope holding 1 CAP message: sirena reads CAP messages",
            ),
        ] {
            let err = decode_index(bad.as_bytes()).expect_err(bad).to_string();
            assert!(err.contains(want), "{bad}: {err}");
        }
    }
}
