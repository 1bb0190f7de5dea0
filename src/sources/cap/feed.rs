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

use super::{CapBody, CapMessage, decode_body, decode_message};
use crate::alerts::cap::{CapApplied, CapBook, CapIgnored};
use crate::regions::RegionTree;
use crate::sources::{Decoded, Dropped, Feed, Fetched, HttpGet, Polled, SourceError};

/// Messages remembered as applied, so an index that keeps listing them costs nothing.
const REMEMBERED: usize = 10_000;

pub struct CapFeed {
    /// The `[[source]]` name, in logs and reports.
    name: String,
    /// The index (or single message) polled.
    url: String,
    /// The alerts the messages so far describe; its active ones are the snapshot.
    book: CapBook,
    /// Entry ids (or message URLs) done with: applied, or broken for good (a linked
    /// message that does not decode, a 404), so they are not fetched again.
    applied: HashSet<String>,
    /// Entries already told as skipped, with the shape: a broken entry is reported
    /// once, not on every poll that still lists it.
    told: HashSet<String>,
    /// Messages that changed nothing, for the log.
    ignored: u64,
    /// Snapshots returned so far.
    snapshots: u64,
}

/// What fetching a linked entry gave.
enum Fetch {
    Message(CapMessage),
    /// The message is as it was when last fetched.
    Unchanged,
    /// Not applied this time: why, and whether it is worth asking again at the next
    /// poll (a timeout, a 5xx) rather than broken for good.
    Skip {
        dropped: Dropped,
        retry: bool,
    },
}

impl CapFeed {
    pub fn new(name: &str, url: &str) -> CapFeed {
        CapFeed {
            name: name.to_owned(),
            url: url.to_owned(),
            book: CapBook::default(),
            applied: HashSet::new(),
            told: HashSet::new(),
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
                    tracing::debug!(source = %self.name, identifier = %msg.identifier, "CAP message ignored: {why}");
                } else {
                    // Exercises and tests are never delivered as real; an unknown
                    // reference or a message with no area here is worth a look.
                    tracing::info!(source = %self.name, identifier = %msg.identifier, ignored = self.ignored, "CAP message ignored: {why}");
                }
            }
            applied => {
                tracing::debug!(source = %self.name, identifier = %msg.identifier, "CAP message: {applied}")
            }
        }
    }

    /// Applies fetched messages oldest first, so an Update follows the Alert it
    /// updates and a Cancel its alert, whatever order the index lists them in; returns
    /// what they dropped.
    fn apply_all(&mut self, mut fresh: Vec<(String, CapMessage)>, tree: &RegionTree) -> Vec<Dropped> {
        fresh.sort_by_key(|(_, msg)| msg.sent);
        let mut dropped = Vec::new();
        for (key, msg) in fresh {
            self.apply(&msg, tree);
            dropped.extend(msg.dropped);
            self.remember(key);
        }
        dropped
    }

    /// A link as the index wrote it, resolved against the index's URL (Atom allows
    /// relative links); one that does not resolve is asked as it is.
    fn resolve(&self, href: &str) -> String {
        reqwest::Url::parse(&self.url).and_then(|base| base.join(href)).map_or_else(|_| href.to_owned(), String::from)
    }

    fn remember(&mut self, key: String) {
        if self.applied.len() >= REMEMBERED {
            self.applied.clear();
        }
        self.applied.insert(key);
    }

    /// `dropped` for the poller, once per entry and shape.
    fn tell(&mut self, entry: &str, dropped: Dropped, out: &mut Vec<Dropped>) {
        if self.told.len() >= REMEMBERED {
            self.told.clear();
        }
        if self.told.insert(format!("{entry}\n{}", dropped.shape)) {
            tracing::info!(source = %self.name, %entry, "CAP index entry skipped: {}", dropped.shape);
            out.push(dropped);
        }
    }

    fn snapshot(&mut self, dropped: Vec<Dropped>) -> Polled {
        self.snapshots += 1;
        let now = Utc::now();
        self.book.prune(now);
        Polled::Snapshot(Decoded { alerts: self.book.observed(now), dropped, ..Decoded::default() })
    }

    /// The message a linked entry names, or why not this time. Only a 429 fails the
    /// poll: the poller then holds every request until its Retry-After.
    async fn fetch(http: &mut HttpGet, url: &str) -> Result<Fetch, SourceError> {
        let skip = |shape: String, retry: bool| Ok(Fetch::Skip { dropped: Dropped::new("entry", shape), retry });
        match http.get(url).await {
            Ok(Fetched::Body(body)) => match decode_message(&body) {
                Ok(msg) => Ok(Fetch::Message(msg)),
                Err(e) => skip(format!("one whose linked CAP message does not read ({})", reason(&e)), false),
            },
            Ok(Fetched::NotModified) => Ok(Fetch::Unchanged),
            Err(e @ SourceError::RateLimited { .. }) => Err(e),
            Err(SourceError::Status { status, .. }) => {
                skip(format!("one whose link answered HTTP {status}"), !matches!(status, 404 | 410))
            }
            // The token is the index's: a link that refuses it is that entry's trouble.
            Err(SourceError::Unauthorized { status, .. }) => {
                skip(format!("one whose link refused the source's token (HTTP {status})"), true)
            }
            Err(SourceError::Timeout(_)) => skip("one whose link timed out".to_owned(), true),
            Err(SourceError::TooLarge { limit }) => skip(format!("one whose message is over {limit} bytes"), false),
            Err(SourceError::Transport(_)) => skip("one whose link could not be fetched".to_owned(), true),
            Err(SourceError::Decode(e)) => skip(format!("one whose link answered what does not read ({e})"), false),
        }
    }
}

/// A decode error's words without the "body refused" prefix.
fn reason(e: &SourceError) -> String {
    match e {
        SourceError::Decode(e) => e.clone(),
        other => other.to_string(),
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
            Fetched::NotModified => return Ok(self.snapshot(Vec::new())),
            Fetched::Body(body) => body,
        };
        let index = match decode_body(&body)? {
            CapBody::Message(msg) => {
                self.apply(&msg, tree);
                http.keep(&self.url);
                return Ok(self.snapshot(msg.dropped));
            }
            CapBody::Index(index) => index,
        };
        let mut dropped = Vec::new();
        for (entry, d) in index.skipped {
            self.tell(&entry, d, &mut dropped);
        }
        // A skipped entry changes nothing: CAP ends alerts only by Cancel or expiry.
        let mut retry = false;
        let mut fresh: Vec<(String, CapMessage)> = Vec::new();
        for entry in index.entries {
            let key = entry.url.clone().unwrap_or_else(|| entry.id.clone());
            if self.applied.contains(&key) {
                continue;
            }
            let msg = match (entry.embedded, &entry.url) {
                (Some(msg), _) => msg,
                (None, Some(url)) => match Self::fetch(http, &self.resolve(url)).await {
                    // A 429: keep what was fetched, and let the poller hold off.
                    Err(e) => {
                        self.apply_all(fresh, tree);
                        return Err(e);
                    }
                    Ok(Fetch::Message(msg)) => msg,
                    Ok(Fetch::Unchanged) => continue,
                    Ok(Fetch::Skip { dropped: d, retry: again }) => {
                        retry |= again;
                        if !again {
                            self.remember(key.clone());
                        }
                        self.tell(&key, d, &mut dropped);
                        continue;
                    }
                },
                (None, None) => continue,
            };
            fresh.push((key, msg));
        }
        dropped.extend(self.apply_all(fresh, tree));
        // An entry to ask again must not be hidden behind a 304 of the index.
        if !retry {
            http.keep(&self.url);
        }
        Ok(self.snapshot(dropped))
    }

    fn ends_explicitly(&self) -> bool {
        // The first snapshot after a start comes from a book rebuilt from the index.
        self.snapshots > 1
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use axum::Router;
    use axum::extract::{Path, State};
    use axum::http::StatusCode;
    use axum::routing::get;

    use super::*;
    use crate::alerts::AlertKind;
    use crate::regions::tests_support::{KUPIANSK_H, tree};
    use crate::sources::HttpOptions;

    #[test]
    fn only_the_first_snapshot_after_a_start_is_judged_like_a_lists() {
        let mut feed = CapFeed::new("cap", "http://127.0.0.1:9/cap.atom");
        let _ = feed.snapshot(Vec::new());
        assert!(!feed.ends_explicitly(), "the book was rebuilt from the index: hold a sudden loss");
        let _ = feed.snapshot(Vec::new());
        assert!(feed.ends_explicitly(), "from then on, alerts end by Cancel or expiry");
    }

    /// Requests per path, and what `flaky.xml` answers next.
    #[derive(Default)]
    struct Site {
        hits: HashMap<String, u32>,
        flaky_ok: bool,
        limited: bool,
    }
    type Shared = Arc<Mutex<Site>>;

    fn message(id: &str, msg_type: &str, refs: &str) -> String {
        format!(
            r#"<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2"><identifier>{id}</identifier><sender>s@example.org</sender><sent>2030-01-01T10:00:00+02:00</sent><status>Actual</status><msgType>{msg_type}</msgType>{refs}<info><event>Air raid</event><eventCode><valueName>alert_type</valueName><value>air_raid</value></eventCode><area><areaDesc>x</areaDesc><geocode><valueName>KATOTTG</valueName><value>{KUPIANSK_H}</value></geocode></area></info></alert>"#
        )
    }

    async fn page(State(site): State<Shared>, Path(file): Path<String>) -> (StatusCode, String) {
        let mut site = site.lock().expect("lock");
        *site.hits.entry(file.clone()).or_default() += 1;
        match file.as_str() {
            "index.atom" => {
                let entry = |name: &str| format!("<entry><id>urn:{name}</id><link href='/m/{name}'/></entry>");
                let base = "<feed xmlns='http://www.w3.org/2005/Atom'>";
                let entries: String =
                    ["good.xml", "gone.xml", "flaky.xml", "bad.xml"].iter().map(|n| entry(n)).collect();
                (StatusCode::OK, format!("{base}{entries}</feed>"))
            }
            "good.xml" => (StatusCode::OK, message("A1", "Alert", "")),
            "bad.xml" => (StatusCode::OK, "<html>oops</html>".into()),
            "flaky.xml" if site.flaky_ok => (
                StatusCode::OK,
                message("C1", "Cancel", "<references>s@example.org,A1,2030-01-01T10:00:00+02:00</references>"),
            ),
            "flaky.xml" if site.limited => (StatusCode::TOO_MANY_REQUESTS, String::new()),
            "flaky.xml" => (StatusCode::INTERNAL_SERVER_ERROR, "busy".into()),
            _ => (StatusCode::NOT_FOUND, "gone".into()),
        }
    }

    async fn setup() -> (Shared, CapFeed, HttpGet) {
        let site: Shared = Arc::default();
        let app = Router::new().route("/{file}", get(page)).route("/m/{file}", get(page)).with_state(site.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        tokio::spawn(async move { axum::serve(listener, app).await });
        let options = HttpOptions { timeout: Duration::from_secs(5), max_body: 64 * 1024, max_requests_per_min: 600 };
        let http = HttpGet::new(&options, None).expect("client");
        // The index's links are relative, as Atom allows: they resolve against it.
        (site, CapFeed::new("cap", &format!("{base}/index.atom")), http)
    }

    fn decoded(p: Polled) -> Decoded {
        match p {
            Polled::Snapshot(d) => d,
            Polled::Unchanged => panic!("a CAP feed always answers a snapshot"),
        }
    }

    #[tokio::test]
    async fn broken_links_are_skipped_told_once_and_the_rest_applied() {
        let (site, mut feed, mut http) = setup().await;
        let tree = tree();
        let first = decoded(feed.poll(&mut http, &tree).await.expect("the index applies"));
        assert_eq!(first.alerts.len(), 1, "the good entry applies");
        assert_eq!(first.alerts[0].key.kind, AlertKind::AirRaid);
        let shapes: Vec<&str> = first.dropped.iter().map(|d| d.shape.as_str()).collect();
        assert_eq!(
            shapes,
            [
                "one whose link answered HTTP 404",
                "one whose link answered HTTP 500",
                "one whose linked CAP message does not read (root element <html> is not a CAP <alert>)",
            ]
        );
        assert!(first.dropped.iter().all(|d| d.field == "entry"));

        // The 500 was worth asking again, the 404 and the garbage were not; the
        // index was not remembered for a 304 meanwhile.
        site.lock().expect("lock").flaky_ok = true;
        let second = decoded(feed.poll(&mut http, &tree).await.expect("poll"));
        assert_eq!(second.alerts, vec![], "the Cancel behind the flaky link ends the alert");
        assert_eq!(second.dropped, vec![], "nothing new to tell");
        let hits = site.lock().expect("lock").hits.clone();
        let count = |name: &str| hits.get(name).copied().unwrap_or_default();
        assert_eq!(
            (count("index.atom"), count("gone.xml"), count("bad.xml"), count("flaky.xml"), count("good.xml")),
            (2, 1, 1, 2, 1)
        );
    }

    #[tokio::test]
    async fn a_429_on_a_link_fails_the_poll_and_keeps_what_came_before() {
        let (site, mut feed, mut http) = setup().await;
        site.lock().expect("lock").limited = true;
        let got = feed.poll(&mut http, &tree()).await;
        assert!(matches!(got, Err(SourceError::RateLimited { .. })), "{got:?}");
        // What was fetched before the 429 is kept, not fetched again.
        site.lock().expect("lock").limited = false;
        let next = decoded(feed.poll(&mut http, &tree()).await.expect("poll"));
        assert_eq!(next.alerts.len(), 1);
        assert_eq!(site.lock().expect("lock").hits.get("good.xml"), Some(&1));
    }
}
