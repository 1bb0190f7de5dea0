//! Index feeds that list CAP messages: Atom (`feed/entry`) and RSS 2.0
//! (`rss/channel/item`).
//!
//! An entry names its message by a link (fetched by the poller) and may carry the
//! message itself inside (`<content>`), either as an `<alert>` element or as escaped
//! XML text. NWS-style `cap:*` summary elements in an entry are not a CAP message (no
//! identifier, no sender) and are ignored: the poller fetches the link.

use chrono::{DateTime, FixedOffset};

use super::xml::{self, Element};
use super::{CapMessage, message};
use crate::sources::SourceError;

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

/// Decodes an Atom or RSS 2.0 index. One malformed entry rejects the whole index, as
/// a body that does not decode does for every source.
pub fn decode_index(xml: &[u8]) -> Result<Vec<IndexEntry>, SourceError> {
    let root = xml::parse(xml).map_err(SourceError::Decode)?;
    let entries = match root.name.as_str() {
        "feed" => root.children_named("entry").enumerate().map(|(i, e)| atom_entry(i, e)).collect(),
        "rss" => {
            let channel = root.child("channel").ok_or_else(|| SourceError::Decode("RSS without <channel>".into()))?;
            channel.children_named("item").enumerate().map(|(i, e)| rss_item(i, e)).collect()
        }
        other => Err(format!("root element <{other}> is neither an Atom <feed> nor an RSS <rss>")),
    };
    entries.map_err(SourceError::Decode)
}

fn atom_entry(i: usize, entry: &Element) -> Result<IndexEntry, String> {
    let path = format!("entry[{i}]");
    let url = atom_link(entry);
    let updated = match entry.child_text("updated").or_else(|| entry.child_text("published")) {
        Some(v) => Some(
            DateTime::parse_from_rfc3339(v)
                .map_err(|e| format!("{path}.updated `{v}` is not an RFC 3339 date: {e}"))?,
        ),
        None => None,
    };
    let embedded = embedded(&path, entry.child("content"))?;
    finish(&path, entry.child_text("id"), url, updated, embedded)
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

fn rss_item(i: usize, item: &Element) -> Result<IndexEntry, String> {
    let path = format!("item[{i}]");
    let updated = match item.child_text("pubDate") {
        Some(v) => Some(
            DateTime::parse_from_rfc2822(v)
                .map_err(|e| format!("{path}.pubDate `{v}` is not an RFC 2822 date: {e}"))?,
        ),
        None => None,
    };
    let embedded = embedded(&path, item.child("encoded").or_else(|| item.child("description")))?;
    let url = item.child_text("link").map(str::to_owned);
    finish(&path, item.child_text("guid"), url, updated, embedded)
}

/// A CAP message inside `content`: an `<alert>` element, or escaped XML text that is
/// one. Other content (a summary, HTML) is not a message.
fn embedded(path: &str, content: Option<&Element>) -> Result<Option<CapMessage>, String> {
    let Some(content) = content else { return Ok(None) };
    let in_path = |e: String| format!("{path}: embedded alert: {e}");
    if let Some(alert) = content.find("alert") {
        return message(alert).map(Some).map_err(in_path);
    }
    let text = content.text();
    if text.starts_with('<')
        && let Ok(root) = xml::parse(text.as_bytes())
        && root.name == "alert"
    {
        return message(&root).map(Some).map_err(in_path);
    }
    Ok(None)
}

fn finish(
    path: &str,
    id: Option<&str>,
    url: Option<String>,
    updated: Option<DateTime<FixedOffset>>,
    embedded: Option<CapMessage>,
) -> Result<IndexEntry, String> {
    if url.is_none() && embedded.is_none() {
        return Err(format!("{path} has no link to a CAP message and carries none"));
    }
    let id = id.map(str::to_owned).or_else(|| url.clone()).or_else(|| embedded.as_ref().map(CapMessage::triple));
    let Some(id) = id else { return Err(format!("{path} has no id")) };
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
        let entries = decode_index(rss.as_bytes()).expect("decodes");
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
        let entries = decode_index(atom.as_bytes()).expect("decodes");
        assert_eq!(entries[0].url.as_deref(), Some("https://example.org/e1.cap"));
        assert_eq!(entries[0].embedded.as_ref().map(|m| m.identifier.as_str()), Some("E1"));
    }

    #[test]
    fn bad_indexes_are_errors() {
        for (bad, want) in [
            ("<html><body>502</body></html>", "neither an Atom"),
            ("<feed><entry><id>x</id></entry></feed>", "entry[0] has no link"),
            (
                "<feed><entry><id>x</id><updated>today</updated><link href='u'/></entry></feed>",
                "entry[0].updated `today`",
            ),
            (
                "<rss><channel><item><link>u</link><pubDate>now</pubDate></item></channel></rss>",
                "item[0].pubDate `now`",
            ),
            ("<feed><entry><id>x</id>", "never closed"),
        ] {
            let err = decode_index(bad.as_bytes()).expect_err(bad).to_string();
            assert!(err.contains(want), "{bad}: {err}");
        }
    }
}
