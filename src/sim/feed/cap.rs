//! CAP 1.2: `GET /cap/index.atom` and `GET /cap/messages/{id}.xml`.
//!
//! Role: an official publisher's CAP feed, as national alerting systems run
//! them: an Atom index whose entries link to the messages.
//!
//! What it publishes, one message per change of the timeline:
//! - an alert appearing is an `Alert`; its level, threats, title or code
//!   changing is an `Update`; its end is a `Cancel`. `Update` and `Cancel`
//!   carry `references` to every earlier message about the same alert
//!   (`sender,identifier,sent`, space-separated, oldest first), as CAP 1.2
//!   §3.2.1 requires;
//! - every message has the 1.2 namespace, `status` Actual, `scope` Public,
//!   `sent` in UTC written `-00:00` (CAP 1.2 §3.3.2 forbids `Z` and asks for
//!   `-00:00`, as Environment Canada and NSW RFS send), and one `info` per
//!   language (`uk-UA`, `en-US`) with category `Safety`, the event's name, a
//!   `responseType` (`Shelter`; `Evacuate` for alert type `evacuation`, which
//!   only this feed knows; `AllClear` on a Cancel), urgency, severity,
//!   certainty, an `eventCode` `alert_type` holding the alerts.in.ua type, the
//!   sender's `instruction` in that language where the alert has one,
//!   `parameter`s `alert_level` and `threat` where set, and an `area` whose
//!   `areaDesc` is the location's title and whose `geocode` `KATOTTG` is the
//!   region's code when the alert has one;
//! - the index lists the last `cap_keep` messages, newest first, shaped like
//!   the US NWS index (the real payload `ibm__nws_atom_feed_example.xml`): per
//!   entry `id` (the message's URL), `updated`, `published`, `author`,
//!   `title`, a bare `<link href>` (no `rel`, no `type`), `summary`, and
//!   `cap:`-prefixed summary elements (`cap:event`, `cap:effective`,
//!   `cap:status`, `cap:msgType`, `cap:urgency`, `cap:severity`,
//!   `cap:certainty`, `cap:areaDesc`, `cap:geocode`) that are not a message;
//!   older messages are gone from the messages path too (404).
//!
//! The feed is public: no key, no limit, no conditional requests.

use std::collections::{HashMap, VecDeque};
use std::fmt::Write as _;
use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::get;
use chrono::{DateTime, Utc};

use super::{AlertId, Change, Fault, FeedKind, FeedSimConfig, Inner, SimAlert, common_fault, error_answer, ok_body};

const FEED: FeedKind = FeedKind::Cap;
const NAMESPACE: &str = "urn:oasis:names:tc:emergency:cap:1.2";

pub(super) fn routes() -> Router<Arc<Inner>> {
    Router::new().route("/cap/index.atom", get(index)).route("/cap/messages/{file}", get(message))
}

/// One published message, rendered once.
#[derive(Debug)]
pub(super) struct Message {
    identifier: String,
    sent: DateTime<Utc>,
    msg_type: &'static str,
    title: String,
    /// What the index entry summarises: the English event, the area and its code.
    event: &'static str,
    area: String,
    katottg: Option<String>,
    xml: String,
}

/// A message as another one references it.
#[derive(Clone, Debug)]
struct Ref {
    identifier: String,
    sent: DateTime<Utc>,
}

/// What the publisher remembers between changes.
pub(super) struct Book {
    seq: u64,
    /// Per active alert, the messages sent about it, oldest first.
    threads: HashMap<AlertId, Vec<Ref>>,
    /// The index's `updated` before any message.
    opened: DateTime<Utc>,
}

impl Book {
    pub(super) fn new(now: DateTime<Utc>) -> Book {
        Book { seq: 0, threads: HashMap::new(), opened: now }
    }

    /// Publishes one message per change into `out` (newest first, at most
    /// `cfg.cap_keep`).
    pub(super) fn publish(
        &mut self,
        cfg: &FeedSimConfig,
        changes: &[Change],
        now: DateTime<Utc>,
        out: &mut VecDeque<Arc<Message>>,
    ) {
        let sent = super::whole_seconds(now);
        for change in changes {
            let (msg_type, alert) = match change {
                Change::Started(a) => ("Alert", a),
                Change::Updated(a) => ("Update", a),
                Change::Ended(a) => ("Cancel", a),
            };
            self.seq += 1;
            let identifier = format!("sirena-sim-{:06}", self.seq);
            let key = alert.key();
            let references = match change {
                Change::Started(_) => Vec::new(),
                Change::Updated(_) => self.threads.get(&key).cloned().unwrap_or_default(),
                Change::Ended(_) => self.threads.remove(&key).unwrap_or_default(),
            };
            if !matches!(change, Change::Ended(_)) {
                self.threads.entry(key).or_default().push(Ref { identifier: identifier.clone(), sent });
            }
            let xml = render_message(cfg, &identifier, sent, msg_type, alert, &references);
            let title = headline(alert, msg_type, Lang::En);
            out.push_front(Arc::new(Message {
                identifier,
                sent,
                msg_type,
                title,
                event: event(&alert.alert_type, Lang::En),
                area: alert.location_title.clone(),
                katottg: alert.katottg.clone(),
                xml,
            }));
        }
        out.truncate(cfg.cap_keep);
    }
}

async fn index(State(sim): State<Arc<Inner>>, headers: HeaderMap) -> Response {
    let (fault, view) = sim.begin(FEED, &headers, true);
    let mut truncate = false;
    let mut empty = false;
    match fault {
        Some(Fault::Truncated) => truncate = true,
        Some(Fault::EmptyList) => empty = true,
        Some(f) => {
            if let Some(answer) = common_fault(&sim, FEED, &f).await {
                return answer;
            }
        }
        None => {}
    }
    let opened = sim.lock().cap.opened;
    let base = format!("http://{}", sim.addr);
    let messages: Vec<&Message> = if empty { Vec::new() } else { view.cap.iter().map(|m| m.as_ref()).collect() };
    ok_body("application/atom+xml; charset=utf-8", render_index(&sim.cfg, &base, &messages, opened), truncate)
}

async fn message(State(sim): State<Arc<Inner>>, Path(file): Path<String>, headers: HeaderMap) -> Response {
    let (fault, view) = sim.begin(FEED, &headers, false);
    let mut truncate = false;
    match fault {
        Some(Fault::Truncated) => truncate = true,
        Some(f) => {
            if let Some(answer) = common_fault(&sim, FEED, &f).await {
                return answer;
            }
        }
        None => {}
    }
    let Some(id) = file.strip_suffix(".xml") else {
        return error_answer(FEED, StatusCode::NOT_FOUND);
    };
    match view.cap.iter().find(|m| m.identifier == id) {
        Some(m) => ok_body("application/cap+xml; charset=utf-8", m.xml.clone(), truncate),
        None => error_answer(FEED, StatusCode::NOT_FOUND),
    }
}

#[derive(Clone, Copy)]
enum Lang {
    Uk,
    En,
}

/// The event's name; an unknown type is a generic alert.
fn event(alert_type: &str, lang: Lang) -> &'static str {
    match (alert_type, lang) {
        ("air_raid", Lang::Uk) => "Повітряна тривога",
        ("air_raid", Lang::En) => "Air raid alert",
        ("artillery_shelling", Lang::Uk) => "Загроза артобстрілу",
        ("artillery_shelling", Lang::En) => "Artillery shelling threat",
        ("urban_fights", Lang::Uk) => "Загроза вуличних боїв",
        ("urban_fights", Lang::En) => "Urban fighting threat",
        ("chemical", Lang::Uk) => "Хімічна загроза",
        ("chemical", Lang::En) => "Chemical threat",
        ("nuclear", Lang::Uk) => "Радіаційна загроза",
        ("nuclear", Lang::En) => "Nuclear threat",
        ("evacuation", Lang::Uk) => "Евакуація",
        ("evacuation", Lang::En) => "Evacuation",
        (_, Lang::Uk) => "Тривога",
        (_, Lang::En) => "Alert",
    }
}

fn headline(a: &SimAlert, msg_type: &str, lang: Lang) -> String {
    let event = event(&a.alert_type, lang);
    match (msg_type, lang) {
        ("Cancel", Lang::Uk) => format!("Відбій: {event} — {}", a.location_title),
        ("Cancel", Lang::En) => format!("Ended: {event} — {}", a.location_title),
        _ => format!("{event} — {}", a.location_title),
    }
}

/// CAP's dateTime: whole seconds, UTC written `-00:00` as CAP 1.2 asks.
fn cap_time(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S-00:00").to_string()
}

/// Atom's date (RFC 3339), with an explicit offset as NWS writes it.
fn atom_time(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S+00:00").to_string()
}

fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

fn render_message(
    cfg: &FeedSimConfig,
    identifier: &str,
    sent: DateTime<Utc>,
    msg_type: &str,
    a: &SimAlert,
    references: &[Ref],
) -> String {
    let sender = esc(&cfg.cap_sender);
    let mut x = String::new();
    x.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(x, "<alert xmlns=\"{NAMESPACE}\">");
    let _ = writeln!(x, "  <identifier>{}</identifier>", esc(identifier));
    let _ = writeln!(x, "  <sender>{sender}</sender>");
    let _ = writeln!(x, "  <sent>{}</sent>", cap_time(sent));
    x.push_str("  <status>Actual</status>\n");
    let _ = writeln!(x, "  <msgType>{msg_type}</msgType>");
    x.push_str("  <scope>Public</scope>\n");
    if !references.is_empty() {
        let refs: Vec<String> =
            references.iter().map(|r| format!("{sender},{},{}", esc(&r.identifier), cap_time(r.sent))).collect();
        let _ = writeln!(x, "  <references>{}</references>", refs.join(" "));
    }
    let cancel = msg_type == "Cancel";
    let severity = match (cancel, a.alert_type.as_str()) {
        (true, _) => "Minor",
        (false, "chemical" | "nuclear" | "evacuation") => "Extreme",
        (false, _) => "Severe",
    };
    let response = match (cancel, a.alert_type.as_str()) {
        (true, _) => "AllClear",
        (false, "evacuation") => "Evacuate",
        (false, _) => "Shelter",
    };
    for (lang, code, sender_name) in
        [(Lang::Uk, "uk-UA", "Симулятор стрічок Sirena"), (Lang::En, "en-US", "Sirena feed simulator")]
    {
        x.push_str("  <info>\n");
        let _ = writeln!(x, "    <language>{code}</language>");
        x.push_str("    <category>Safety</category>\n");
        let _ = writeln!(x, "    <event>{}</event>", esc(event(&a.alert_type, lang)));
        let _ = writeln!(x, "    <responseType>{response}</responseType>");
        let _ = writeln!(x, "    <urgency>{}</urgency>", if cancel { "Past" } else { "Immediate" });
        let _ = writeln!(x, "    <severity>{severity}</severity>");
        x.push_str("    <certainty>Observed</certainty>\n");
        let _ = writeln!(
            x,
            "    <eventCode>\n      <valueName>alert_type</valueName>\n      <value>{}</value>\n    </eventCode>",
            esc(&a.alert_type)
        );
        let _ = writeln!(x, "    <effective>{}</effective>", cap_time(if cancel { sent } else { a.started_at }));
        let _ = writeln!(x, "    <senderName>{sender_name}</senderName>");
        let _ = writeln!(x, "    <headline>{}</headline>", esc(&headline(a, msg_type, lang)));
        if let Some((_, words)) = a.instructions.iter().find(|(tag, _)| tag == code).filter(|_| !cancel) {
            let _ = writeln!(x, "    <instruction>{}</instruction>", esc(words));
        }
        let mut params: Vec<(&str, &str)> = Vec::new();
        if let Some(level) = &a.alert_level {
            params.push(("alert_level", level));
        }
        params.extend(a.threats.iter().map(|t| ("threat", t.threat_type.as_str())));
        for (name, value) in params {
            let _ = writeln!(
                x,
                "    <parameter>\n      <valueName>{name}</valueName>\n      <value>{}</value>\n    </parameter>",
                esc(value)
            );
        }
        x.push_str("    <area>\n");
        let _ = writeln!(x, "      <areaDesc>{}</areaDesc>", esc(&a.location_title));
        if let Some(code) = &a.katottg {
            let _ = writeln!(
                x,
                "      <geocode>\n        <valueName>KATOTTG</valueName>\n        <value>{}</value>\n      </geocode>",
                esc(code)
            );
        }
        x.push_str("    </area>\n  </info>\n");
    }
    x.push_str("</alert>\n");
    x
}

fn render_index(cfg: &FeedSimConfig, base: &str, messages: &[&Message], opened: DateTime<Utc>) -> String {
    let updated = messages.first().map_or(opened, |m| m.sent);
    let author = esc(&cfg.cap_sender);
    let mut x = String::new();
    x.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(x, "<feed xmlns=\"http://www.w3.org/2005/Atom\" xmlns:cap=\"{NAMESPACE}\">");
    let _ = writeln!(x, "  <id>{}/cap/index.atom</id>", esc(base));
    x.push_str("  <title>Sirena feed simulator: CAP alerts</title>\n");
    let _ = writeln!(x, "  <updated>{}</updated>", atom_time(updated));
    let _ = writeln!(x, "  <author>\n    <name>{author}</name>\n  </author>");
    let _ = writeln!(x, "  <link href=\"{}/cap/index.atom\"/>", esc(base));
    for m in messages {
        let href = esc(&format!("{base}/cap/messages/{}.xml", m.identifier));
        let (urgency, severity) = if m.msg_type == "Cancel" { ("Past", "Minor") } else { ("Immediate", "Severe") };
        x.push_str("  <entry>\n");
        let _ = writeln!(x, "    <id>{href}</id>");
        let _ = writeln!(x, "    <updated>{}</updated>", atom_time(m.sent));
        let _ = writeln!(x, "    <published>{}</published>", atom_time(m.sent));
        let _ = writeln!(x, "    <author>\n      <name>{author}</name>\n    </author>");
        let _ = writeln!(x, "    <title>{}</title>", esc(&m.title));
        let _ = writeln!(x, "    <link href=\"{href}\"/>");
        let _ = writeln!(x, "    <summary>{}: {}</summary>", m.msg_type, esc(&m.title));
        let _ = writeln!(x, "    <cap:event>{}</cap:event>", esc(m.event));
        let _ = writeln!(x, "    <cap:effective>{}</cap:effective>", cap_time(m.sent));
        x.push_str("    <cap:status>Actual</cap:status>\n");
        let _ = writeln!(x, "    <cap:msgType>{}</cap:msgType>", m.msg_type);
        x.push_str("    <cap:category>Safety</cap:category>\n");
        let _ = writeln!(x, "    <cap:urgency>{urgency}</cap:urgency>");
        let _ = writeln!(x, "    <cap:severity>{severity}</cap:severity>");
        x.push_str("    <cap:certainty>Observed</cap:certainty>\n");
        let _ = writeln!(x, "    <cap:areaDesc>{}</cap:areaDesc>", esc(&m.area));
        x.push_str("    <cap:polygon></cap:polygon>\n");
        if let Some(code) = &m.katottg {
            let _ = writeln!(
                x,
                "    <cap:geocode>\n      <valueName>KATOTTG</valueName>\n      <value>{}</value>\n    </cap:geocode>",
                esc(code)
            );
        }
        x.push_str("  </entry>\n");
    }
    x.push_str("</feed>\n");
    x
}
