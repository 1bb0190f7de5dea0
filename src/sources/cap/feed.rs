//! The CAP adapter: an Atom/RSS index (or one CAP message) at `url`, each new message
//! fetched once and applied to a [`CapBook`]; the book's active alerts are the snapshot.
//!
//! A CAP feed is a stream of messages, not a list of what is on: an alert ends by a
//! `Cancel` or its `expires`, so the snapshot may empty legitimately and the alert
//! state is told so ([`Feed::ends_explicitly`]). The book lives as long as the
//! process; after a restart the index is read afresh, and its recent messages rebuild
//! it. That first snapshot may lack alerts whose messages have left the index, so it
//! is judged like a list feed's: if it empties or loses long-standing alerts with most
//! others, the alert state holds it as a suspected fault.

use std::collections::HashSet;

use async_trait::async_trait;
use chrono::Utc;

use super::{CapMessage, decode_index, decode_message};
use crate::alerts::cap::{CapApplied, CapBook, CapIgnored};
use crate::regions::RegionTree;
use crate::sources::{Decoded, Feed, Fetched, HttpGet, Polled, SourceError};

/// Messages remembered as applied, so an index that keeps listing them costs nothing.
const REMEMBERED: usize = 10_000;

pub struct CapFeed {
    name: String,
    url: String,
    book: CapBook,
    /// Entry ids (or message URLs) already applied.
    applied: HashSet<String>,
    ignored: u64,
    /// Snapshots returned so far.
    snapshots: u64,
}

impl CapFeed {
    pub fn new(name: &str, url: &str) -> CapFeed {
        CapFeed {
            name: name.to_owned(),
            url: url.to_owned(),
            book: CapBook::default(),
            applied: HashSet::new(),
            ignored: 0,
            snapshots: 0,
        }
    }

    fn apply(&mut self, msg: &CapMessage, tree: &RegionTree) {
        match self.book.apply(msg, Utc::now(), tree) {
            CapApplied::Ignored(why) => {
                self.ignored += 1;
                let level_is_info = matches!(why, CapIgnored::Duplicate | CapIgnored::Ended(_));
                if level_is_info {
                    tracing::debug!(source = %self.name, identifier = %msg.identifier, ?why, "CAP message ignored");
                } else {
                    // Exercises and tests are never delivered as real; an unknown
                    // reference or a message with no area here is worth a look.
                    tracing::info!(source = %self.name, identifier = %msg.identifier, ?why, ignored = self.ignored, "CAP message ignored");
                }
            }
            applied => {
                tracing::debug!(source = %self.name, identifier = %msg.identifier, ?applied, "CAP message applied")
            }
        }
    }

    fn snapshot(&mut self) -> Polled {
        self.snapshots += 1;
        let now = Utc::now();
        self.book.prune(now);
        Polled::Snapshot(Decoded { alerts: self.book.observed(now), ..Decoded::default() })
    }
}

#[async_trait]
impl Feed for CapFeed {
    fn name(&self) -> &str {
        &self.name
    }

    async fn poll(&mut self, http: &mut HttpGet, tree: &RegionTree) -> Result<Polled, SourceError> {
        let body = match http.get(&self.url).await? {
            // Nothing new; expiry may still have ended something.
            Fetched::NotModified => return Ok(self.snapshot()),
            Fetched::Body(body) => body,
        };
        // An index of messages, or a single message.
        let entries = match decode_index(&body) {
            Ok(entries) => entries,
            Err(index_error) => match decode_message(&body) {
                Ok(msg) => {
                    self.apply(&msg, tree);
                    http.keep(&self.url);
                    return Ok(self.snapshot());
                }
                Err(message_error) => {
                    return Err(SourceError::Decode(format!(
                        "neither a CAP index ({index_error}) nor a CAP message ({message_error})"
                    )));
                }
            },
        };
        // Oldest first, so an Update follows the Alert it updates.
        let mut entries = entries;
        entries.sort_by_key(|e| e.updated);
        for entry in entries {
            let key = entry.url.clone().unwrap_or_else(|| entry.id.clone());
            if self.applied.contains(&key) {
                continue;
            }
            let msg = match (entry.embedded, &entry.url) {
                (Some(msg), _) => msg,
                (None, Some(url)) => match http.get(url).await? {
                    Fetched::Body(body) => decode_message(&body)
                        .map_err(|e| SourceError::Decode(format!("message {url} listed in the index: {e}")))?,
                    Fetched::NotModified => continue,
                },
                (None, None) => continue,
            };
            self.apply(&msg, tree);
            if self.applied.len() >= REMEMBERED {
                self.applied.clear();
            }
            self.applied.insert(key);
        }
        http.keep(&self.url);
        Ok(self.snapshot())
    }

    fn ends_explicitly(&self) -> bool {
        // The first snapshot after a start comes from a book rebuilt from the index.
        self.snapshots > 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_first_snapshot_after_a_start_is_judged_like_a_lists() {
        let mut feed = CapFeed::new("cap", "http://127.0.0.1:9/cap.atom");
        let _ = feed.snapshot();
        assert!(!feed.ends_explicitly(), "the book was rebuilt from the index: hold a sudden loss");
        let _ = feed.snapshot();
        assert!(feed.ends_explicitly(), "from then on, alerts end by Cancel or expiry");
    }
}
