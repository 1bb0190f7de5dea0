//! Rendering: what one reader is told, in one message, in their channel's format.
//!
//! The dispatcher hands over the parts of one message — the events a reader has not
//! been told yet, already merged by subject and sorted by priority — and gets one
//! text back. Each part is first laid out as a [`Block`] (an icon, a title, one fact
//! per line), then written out per [`Format`]: Telegram HTML (bold title, escaped
//! text, ≤ 4096), a channel post (the same, with hashtags of the places), or compact
//! SMS text (no markup, no icons, the facts a feature-phone reader acts on).

use chrono::{DateTime, Datelike, Duration, TimeZone, Utc, Weekday};

use super::{Composer, Lang, Rendered};
use crate::alerts::orders::{Change, Order, OrderStatus};
use crate::alerts::{AlertKind, AlertLevel, Event, EventDetail, Threat, ThreatKind, Transition};
use crate::regions::RegionTree;

/// Telegram counts message length in UTF-16 code units after entity parsing; we
/// bound the raw HTML, which is never shorter, so the bound is safe.
pub const TELEGRAM_MAX_UTF16: usize = 4096;

/// How a message is written for its channel.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Format {
    /// A private Telegram chat: HTML parse mode.
    TelegramHtml,
    /// A region's Telegram channel: HTML, with the places as hashtags so readers can
    /// find every post about their raion.
    ChannelPost,
    /// Plain compact text for a phone.
    Sms,
}

/// One thing a message says.
#[derive(Clone, Copy, Debug)]
pub enum Part<'a> {
    /// An event as it stands. `as_new` renders an update as a start, for a reader who
    /// was never told the start (the start and its updates were merged).
    Event { event: &'a Event, as_new: bool },
    /// A start that ended before it reached the reader, told in one line:
    /// "Air raid alert in Kupiansk Raion, 10:02–10:05, ended".
    Closed { start: &'a Event, end: &'a Event },
}

impl Part<'_> {
    fn silent(&self) -> bool {
        match self {
            Part::Closed { .. } => true,
            Part::Event { event, as_new } => match (&event.detail, event.transition) {
                // A drill rings no phone; a correction must be heard as the error was.
                (EventDetail::Drill { .. }, _) => true,
                (EventDetail::Correction { .. }, _) => false,
                (_, Transition::Started) => false,
                (EventDetail::Order { .. }, Transition::Updated) => false,
                (_, Transition::Updated) => !as_new,
                (EventDetail::Order { .. }, Transition::Cancelled) => false,
                (_, Transition::Ended | Transition::Cancelled) => true,
            },
        }
    }
}

/// One fact on its own line.
enum Line {
    Text(String),
    /// Said in passing (italic in HTML): what changed in an update.
    Note(String),
    /// An assembly point: its name stands out; `map` is a point to link to.
    Point {
        name: String,
        rest: String,
        map: Option<[f64; 2]>,
    },
    /// Free text from the administration, set apart by a blank line.
    Free(String),
}

/// One part laid out.
struct Block {
    icon: &'static str,
    title: String,
    /// A title that stands out (bold); a one-line note of something over does not.
    loud: bool,
    /// The places the part concerns, as names.
    places: Vec<String>,
    lines: Vec<Line>,
}

impl Composer {
    /// Renders the parts of one message, highest priority first, in `format`.
    pub fn render(&self, parts: &[Part<'_>], lang: Lang, format: Format, tree: &RegionTree) -> Rendered {
        let blocks: Vec<Block> = parts.iter().map(|p| self.block(p, lang, tree)).collect();
        let silent = !parts.is_empty() && parts.iter().all(Part::silent);
        let text = match format {
            Format::TelegramHtml => html(&blocks, false),
            Format::ChannelPost => html(&blocks, true),
            Format::Sms => self.sms(parts, lang, tree),
        };
        Rendered { text, silent }
    }

    fn block(&self, part: &Part<'_>, lang: Lang, tree: &RegionTree) -> Block {
        match *part {
            Part::Closed { start, end } => self.closed_block(start, end, lang, tree),
            Part::Event { event, as_new } => {
                let places = event.targets.iter().map(|t| tree.name(t, lang)).collect();
                match &event.detail {
                    EventDetail::Alert { .. } => self.alert_block(event, places, lang, tree),
                    EventDetail::Order { order, changes } => {
                        let transition = if as_new { Transition::Started } else { event.transition };
                        self.order_block(transition, order, changes, places, lang, tree)
                    }
                    EventDetail::Broadcast { text, .. } => Block {
                        icon: "📢",
                        title: self.text(lang, "broadcast-title", &[], "Official message"),
                        loud: true,
                        places,
                        lines: vec![Line::Free(text.clone())],
                    },
                    EventDetail::Drill { text, .. } => {
                        let mut lines = vec![Line::Text(self.text(lang, "drill-body", &[], "This is a test."))];
                        if let Some(words) = text {
                            lines.push(Line::Free(words.clone()));
                        }
                        lines.push(Line::Note(self.text(lang, "drill-opt-out", &[], "/drills off")));
                        // No alert's icon, no bold title: a drill never reads like an alert.
                        let title = self.text(lang, "drill-title", &[], "Drill");
                        Block { icon: "🧪", title, loud: false, places, lines }
                    }
                    EventDetail::Correction { original, .. } => {
                        let what = self.correction_of(original, lang, tree);
                        let title = self.text(lang, "correction-title", &[("what", &what)], &what);
                        let body = self.text(lang, "correction-body", &[], "Disregard it.");
                        Block { icon: "⚠️", title, loud: true, places, lines: vec![Line::Text(body)] }
                    }
                }
            }
        }
    }

    /// An SMS: a few short sentences per part, within `sms_max_parts`. When the text is
    /// too long, facts are dropped in a fixed order — the least needed first — and
    /// never the title, the place or the hotline, and no word is ever cut.
    fn sms(&self, parts: &[Part<'_>], lang: Lang, tree: &RegionTree) -> String {
        let mut facts: Vec<Fact> = Vec::new();
        for (i, part) in parts.iter().enumerate() {
            if i > 0 {
                facts.push(Fact::keep("\n"));
            }
            facts.extend(self.sms_facts(part, lang, tree));
        }
        let max = self.sms_max_parts;
        let text = |facts: &[Fact]| facts.iter().map(|f| f.text.as_str()).collect::<String>();
        while !super::sms::fits(&text(&facts), max) {
            // The most droppable fact goes first; among equals, the last.
            let Some((at, _)) =
                facts.iter().enumerate().filter(|(_, f)| f.drop_rank > 0).max_by_key(|(i, f)| (f.drop_rank, *i))
            else {
                break;
            };
            facts.remove(at);
        }
        text(&facts).trim().to_owned()
    }

    /// The sentences of one part, each ending in `. ` or its own punctuation, marked
    /// with how readily it is dropped (0: never).
    fn sms_facts(&self, part: &Part<'_>, lang: Lang, tree: &RegionTree) -> Vec<Fact> {
        let t = |id: &str, args: &[(&str, &str)], fallback: &str| self.text(lang, id, args, fallback);
        let (event, as_new) = match *part {
            Part::Closed { start, end } => {
                let b = self.closed_block(start, end, lang, tree);
                return vec![Fact::sentence(&b.title, 0)];
            }
            Part::Event { event, as_new } => (event, as_new),
        };
        let places = event.targets.iter().map(|r| tree.name(r, lang)).collect::<Vec<_>>().join(", ");
        match &event.detail {
            EventDetail::Alert { level, threats, texts, .. } => {
                let kind = self.kind_name(lang, event.kind);
                let title = match event.transition {
                    Transition::Started => format!("{kind}: {places}"),
                    Transition::Updated => t("sms-alert-updated", &[("kind", &kind), ("place", &places)], &kind),
                    Transition::Ended | Transition::Cancelled => {
                        t("sms-alert-ended", &[("kind", &kind), ("place", &places)], &kind)
                    }
                };
                let mut facts = vec![Fact::sentence(&title, 0)];
                if event.is_closing() {
                    if !event.reach.except_areas.is_empty() {
                        let on: Vec<String> = event.reach.except_areas.iter().map(|r| tree.name(r, lang)).collect();
                        facts.push(Fact::sentence(&t("alert-goes-on", &[("places", &on.join(", "))], ""), 1));
                    }
                    return facts;
                }
                if !threats.is_empty() {
                    let names = self.threat_names(lang, threats, None);
                    facts.push(Fact::sentence(&t("alert-threats", &[("threats", &names)], ""), 2));
                }
                if let Some(AlertLevel::Yellow) = level {
                    let red = red_threats(threats);
                    if red.is_empty() {
                        facts.push(Fact::sentence(&t("sms-level-yellow", &[], ""), 3));
                    } else {
                        let names = self.threat_names(lang, &red, None);
                        // Kept longer than the list of threats: it names the red one.
                        facts.push(Fact::sentence(&t("sms-level-yellow-red-threat", &[("threats", &names)], ""), 1));
                    }
                }
                if event.transition == Transition::Started {
                    let advice = t(&format!("sms-advice-{}", event.kind), &[], "");
                    facts.push(Fact::sentence(&advice, 1));
                }
                // The sender's instruction (CAP): for an evacuation it is the message.
                if let Some(words) = crate::alerts::cap::pick_info(texts, lang.code())
                    && let Some(instruction) = &words.instruction
                {
                    let rank = if event.kind == AlertKind::Evacuation { 1 } else { 3 };
                    facts.push(Fact::sentence(instruction, rank));
                }
                facts
            }
            EventDetail::Order { order, changes } => {
                let transition = if as_new { Transition::Started } else { event.transition };
                let b = self.order_block(transition, order, changes, Vec::new(), lang, tree);
                let mut facts = vec![Fact::sentence(&format!("{}: {places}", b.title), 0)];
                if matches!(transition, Transition::Started | Transition::Updated) {
                    if let Some(dest) = &order.destination {
                        facts.push(Fact::sentence(&t("evac-destination", &[("place", dest.get(lang))], ""), 3));
                    }
                    if transition == Transition::Updated
                        && !as_new
                        && !changes.is_empty()
                        && let Some(Line::Note(changed)) = b.lines.iter().find(|l| matches!(l, Line::Note(_)))
                    {
                        facts.push(Fact::sentence(changed, 3));
                    }
                    if let Some(p) = order.assembly_points.first() {
                        let point = match p.times.is_empty() {
                            true => p.name.get(lang).to_owned(),
                            false => format!("{}, {}", p.name.get(lang), p.times.join(", ")),
                        };
                        facts.push(Fact::sentence(&t("sms-assembly", &[("point", &point)], &point), 2));
                    }
                    if let Some(tr) = &order.transport {
                        facts.push(Fact::sentence(tr.get(lang), 4));
                    }
                }
                if transition == Transition::Cancelled {
                    let advice = "Left already? Return only when safe.";
                    facts.push(Fact::sentence(&t("sms-evac-cancelled-advice", &[], advice), 1));
                }
                if let Some(h) = &order.hotline {
                    facts.push(Fact::sentence(&t("sms-hotline", &[("phone", h)], h), 0));
                }
                facts
            }
            EventDetail::Broadcast { text, .. } => {
                let title = t("broadcast-title", &[], "Official message");
                vec![Fact::sentence(&format!("{title}: {places}"), 0), Fact::sentence(text, 0)]
            }
            EventDetail::Drill { text, .. } => {
                let mut facts = vec![
                    Fact::sentence(&t("drill-title", &[], "Drill"), 0),
                    Fact::sentence(&t("drill-body", &[], "This is a test."), 0),
                ];
                if let Some(words) = text {
                    facts.push(Fact::sentence(words, 1));
                }
                facts
            }
            EventDetail::Correction { original, .. } => {
                let what = self.correction_of(original, lang, tree);
                vec![
                    Fact::sentence(&t("correction-title", &[("what", &what)], &what), 0),
                    Fact::sentence(&format!("{places}."), 1),
                    Fact::sentence(&t("correction-body", &[], "Disregard it."), 0),
                ]
            }
        }
    }

    /// What a correction corrects, as the original's title said it.
    fn correction_of(&self, original: &Event, lang: Lang, tree: &RegionTree) -> String {
        self.block(&Part::Event { event: original, as_new: false }, lang, tree).title
    }

    /// The threats' names, joined. With `alert_level`, a threat whose own level differs
    /// from its alert's says its level ("ballistic missiles (red level)").
    fn threat_names(&self, lang: Lang, threats: &[Threat], alert_level: Option<Option<&AlertLevel>>) -> String {
        threats
            .iter()
            .map(|t| {
                let name = match &t.kind {
                    ThreatKind::Unknown(raw) => raw.clone(),
                    known => self.text(lang, &format!("threat-{}", known.as_str()), &[], known.as_str()),
                };
                match (&t.level, alert_level) {
                    (Some(own @ (AlertLevel::Red | AlertLevel::Yellow)), Some(alert)) if alert != Some(own) => {
                        self.text(lang, &format!("threat-level-{}", level_id(own)), &[("threat", &name)], &name)
                    }
                    _ => name,
                }
            })
            .collect::<Vec<_>>()
            .join(", ")
    }

    fn kind_name(&self, lang: Lang, kind: AlertKind) -> String {
        self.text(lang, &format!("alert-kind-{kind}"), &[], kind.as_str())
    }

    fn alert_block(&self, event: &Event, places: Vec<String>, lang: Lang, tree: &RegionTree) -> Block {
        let kind = self.kind_name(lang, event.kind);
        let (icon, id) = match event.transition {
            Transition::Started => ("🔴", "alert-started"),
            Transition::Updated => ("🔴", "alert-updated"),
            Transition::Ended | Transition::Cancelled => ("🟢", "alert-ended"),
        };
        let title = self.text(lang, id, &[("kind", &kind)], &kind);
        let mut lines = Vec::new();
        let EventDetail::Alert { level, threats, texts, .. } = &event.detail else {
            return Block { icon, title, loud: true, places, lines };
        };
        // The sender's own words (CAP), in the reader's language or else its first.
        if let Some(words) = crate::alerts::cap::pick_info(texts, lang.code()) {
            for part in [&words.headline, &words.description, &words.instruction].into_iter().flatten() {
                if !part.trim().is_empty() {
                    lines.push(Line::Text(part.trim().to_owned()));
                }
            }
        }
        if !event.is_closing() {
            let red = red_threats(threats);
            if let (Some(AlertLevel::Yellow), false) = (level, red.is_empty()) {
                // A yellow alert can carry a red threat: the reader is told so first.
                let names = self.threat_names(lang, &red, None);
                lines.push(Line::Text(self.text(
                    lang,
                    "alert-level-yellow-red-threat",
                    &[("threats", &names)],
                    &names,
                )));
            } else if let Some(level) = level {
                let fallback = level.as_str().to_owned();
                lines.push(Line::Text(self.text(lang, &format!("alert-level-{}", level_id(level)), &[], &fallback)));
            }
            if !threats.is_empty() {
                let names = self.threat_names(lang, threats, Some(level.as_ref()));
                lines.push(Line::Text(self.text(lang, "alert-threats", &[("threats", &names)], &names)));
            }
        }
        if event.transition == Transition::Started {
            let advice = match event.kind {
                AlertKind::Info | AlertKind::Evacuation => None,
                k @ (AlertKind::AirRaid
                | AlertKind::Artillery
                | AlertKind::Chemical
                | AlertKind::Nuclear
                | AlertKind::UrbanFights) => Some(k.as_str()),
                AlertKind::Unknown => Some("unknown"),
            };
            if let Some(k) = advice {
                lines.push(Line::Text(self.text(lang, &format!("alert-advice-{k}"), &[], "")));
            }
        }
        // Areas inside the event's region that another alert decides: on an all-clear
        // the alert goes on there; on a start they were under alert already.
        if !event.reach.except_areas.is_empty() {
            let names: Vec<String> = event.reach.except_areas.iter().map(|r| tree.name(r, lang)).collect();
            let names = names.join(", ");
            let id = if event.is_closing() { "alert-goes-on" } else { "alert-already" };
            lines.push(Line::Note(self.text(lang, id, &[("places", &names)], &names)));
        }
        Block { icon, title, loud: true, places, lines }
    }

    fn closed_block(&self, start: &Event, end: &Event, lang: Lang, tree: &RegionTree) -> Block {
        let place = end.targets.iter().map(|t| tree.name(t, lang)).collect::<Vec<_>>().join(", ");
        let (from, icon, line) = match &start.detail {
            EventDetail::Alert { started_at, .. } => (*started_at, "🟢", "alert-closed"),
            EventDetail::Order { order, .. } => (order.issued_at.to_utc(), "✅", "evac-closed"),
            // Operators' messages and drills have no end; a correction is never paired.
            EventDetail::Broadcast { .. } | EventDetail::Drill { .. } | EventDetail::Correction { .. } => {
                (start.at, "ℹ️", "alert-closed")
            }
        };
        let span = time_span(from, end.at);
        let kind = self.kind_name(lang, start.kind);
        let fallback = format!("{kind}: {place}, {span}");
        let title = self.text(lang, line, &[("kind", &kind), ("place", &place), ("span", &span)], &fallback);
        Block { icon, title, loud: false, places: Vec::new(), lines: Vec::new() }
    }

    fn order_block(
        &self,
        transition: Transition,
        order: &Order,
        changes: &[Change],
        places: Vec<String>,
        lang: Lang,
        tree: &RegionTree,
    ) -> Block {
        let status_title = |s: OrderStatus| {
            let id = if s == OrderStatus::Mandatory { "evac-started-mandatory" } else { "evac-started-recommended" };
            self.text(lang, id, &[], "Evacuation")
        };
        let (icon, title) = match transition {
            Transition::Started => ("🚨", status_title(order.status)),
            Transition::Updated => {
                ("🔄", self.text(lang, "evac-updated", &[("status", &status_title(order.status))], "Evacuation update"))
            }
            Transition::Ended => ("✅", self.text(lang, "evac-ended", &[], "Evacuation order lifted")),
            Transition::Cancelled => ("❌", self.text(lang, "evac-cancelled", &[], "Evacuation order cancelled")),
        };
        let mut lines = Vec::new();
        let fact = |id: &str, key: &str, value: &str| Line::Text(self.text(lang, id, &[(key, value)], value));
        if matches!(transition, Transition::Ended | Transition::Cancelled) {
            if transition == Transition::Cancelled {
                // Some may have left already: tell them when to come back.
                let advice = "If you have already left, return only when it is safe, and follow the local authorities.";
                lines.push(Line::Text(self.text(lang, "evac-cancelled-advice", &[], advice)));
            }
            if let Some(h) = &order.hotline {
                lines.push(fact("evac-hotline", "phone", h));
            }
            return Block { icon, title, loud: true, places, lines };
        }
        if transition == Transition::Updated && !changes.is_empty() {
            let what: Vec<String> = changes
                .iter()
                .map(|c| self.text(lang, &format!("evac-change-{}", c.as_str()), &[], c.as_str()))
                .collect();
            lines.push(Line::Note(self.text(lang, "evac-changed", &[("what", &what.join(", "))], "")));
        }
        if let Some(who) = &order.who {
            lines.push(fact("evac-who", "who", who.get(lang)));
        }
        if let Some(dest) = &order.destination {
            lines.push(fact("evac-destination", "place", dest.get(lang)));
        }
        if !order.assembly_points.is_empty() {
            lines.push(Line::Text(self.text(lang, "evac-assembly-points", &[], "Assembly points:")));
            for p in &order.assembly_points {
                let mut rest = String::new();
                if let Some(a) = &p.address {
                    rest.push_str(&format!(", {}", a.get(lang)));
                } else if let Some(place) = &p.place {
                    rest.push_str(&format!(", {}", tree.name(place, lang)));
                }
                if !p.times.is_empty() {
                    let times = p.times.join(", ");
                    rest.push_str(&format!(
                        " — {}",
                        self.text(lang, "evac-assembly-times", &[("times", &times)], &times)
                    ));
                }
                lines.push(Line::Point { name: p.name.get(lang).to_owned(), rest, map: p.at });
            }
        }
        if let Some(t) = &order.transport {
            lines.push(fact("evac-transport", "transport", t.get(lang)));
        }
        if let Some(h) = &order.hotline {
            lines.push(fact("evac-hotline", "phone", h));
        }
        if let Some(e) = &order.expires_at {
            let when = e.format("%d.%m.%Y %H:%M").to_string();
            lines.push(fact("evac-expires", "when", &when));
        }
        if let Some(t) = &order.text {
            lines.push(Line::Free(t.get(lang).to_owned()));
        }
        Block { icon, title, loud: true, places, lines }
    }
}

fn html(blocks: &[Block], hashtags: bool) -> String {
    let mut parts = Vec::new();
    for b in blocks {
        let title = if b.loud { format!("<b>{}</b>", escape(&b.title)) } else { escape(&b.title) };
        let mut out = vec![format!("{} {title}", b.icon)];
        if !b.places.is_empty() {
            out.push(escape(&b.places.join(", ")));
        }
        for line in &b.lines {
            out.push(match line {
                Line::Text(t) => escape(t),
                Line::Note(t) => format!("<i>{}</i>", escape(t)),
                Line::Free(t) => format!("\n{}", escape(t)),
                Line::Point { name, rest, map } => {
                    let mut l = format!("• <b>{}</b>{}", escape(name), escape(rest));
                    if let Some([lat, lon]) = map {
                        l.push_str(&format!(
                            " (<a href=\"https://maps.google.com/?q={lat:.5},{lon:.5}\">{lat:.4}, {lon:.4}</a>)"
                        ));
                    }
                    l
                }
            });
        }
        if hashtags && !b.places.is_empty() {
            out.push(b.places.iter().map(|p| hashtag(p)).collect::<Vec<_>>().join(" "));
        }
        parts.push(out.into_iter().filter(|l| !l.is_empty()).collect::<Vec<_>>().join("\n"));
    }
    let mut text = parts.join("\n\n");
    truncate_lines(&mut text, TELEGRAM_MAX_UTF16, |s| s.encode_utf16().count());
    text
}

/// One sentence of an SMS and how readily it is dropped when the text is too long.
struct Fact {
    text: String,
    /// 0: never; higher goes first.
    drop_rank: u8,
}

impl Fact {
    fn keep(text: &str) -> Fact {
        Fact { text: text.to_owned(), drop_rank: 0 }
    }

    /// `text` as a sentence: trimmed, ending in a full stop unless it has its own.
    fn sentence(text: &str, drop_rank: u8) -> Fact {
        let t = text.trim();
        if t.is_empty() {
            return Fact { text: String::new(), drop_rank };
        }
        let end = if t.ends_with(['.', '!', '?']) { " " } else { ". " };
        Fact { text: format!("{t}{end}"), drop_rank }
    }
}

/// `#Куп_янський_район`: letters and digits kept, everything else an underscore.
fn hashtag(place: &str) -> String {
    let mut tag = String::from("#");
    for c in place.chars() {
        if c.is_alphanumeric() {
            tag.push(c);
        } else if !tag.ends_with('_') && tag.len() > 1 {
            tag.push('_');
        }
    }
    tag.trim_end_matches('_').to_owned()
}

/// Escapes text for Telegram's HTML parse mode: `<`, `>`, `&` and `"`.
/// Telegram HTML as a person reads it: tags dropped, [`escape`]'s entities undone.
pub fn plain(html: &str) -> String {
    let mut out = String::with_capacity(html.len());
    let mut in_tag = false;
    for c in html.chars() {
        match c {
            '<' => in_tag = true,
            '>' => in_tag = false,
            c if !in_tag => out.push(c),
            _ => {}
        }
    }
    out.replace("&lt;", "<").replace("&gt;", ">").replace("&quot;", "\"").replace("&amp;", "&")
}

pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            c => out.push(c),
        }
    }
    out
}

/// Cuts a message to fit at a line boundary, so no tag or entity is split, and marks
/// the cut. Parts are in priority order, so what is cut is the least urgent.
fn truncate_lines(text: &mut String, max: usize, len: impl Fn(&str) -> usize) {
    if len(text) <= max {
        return;
    }
    let mut kept = String::new();
    for line in text.lines() {
        if len(&kept) + len(line) + 2 > max {
            break;
        }
        kept.push_str(line);
        kept.push('\n');
    }
    kept.push('…');
    *text = kept;
}

/// "10:02–10:05" in Kyiv time, with dates when the span crosses midnight.
fn time_span(from: DateTime<Utc>, to: DateTime<Utc>) -> String {
    let (f, t) = (kyiv(from), kyiv(to));
    if f.date_naive() == t.date_naive() {
        format!("{}–{}", f.format("%H:%M"), t.format("%H:%M"))
    } else {
        format!("{} – {}", f.format("%d.%m %H:%M"), t.format("%d.%m %H:%M"))
    }
}

/// Kyiv local time: UTC+2, and UTC+3 from 01:00 UTC on the last Sunday of March to
/// 01:00 UTC on the last Sunday of October (the European rule Ukraine follows).
pub fn kyiv(at: DateTime<Utc>) -> DateTime<chrono::FixedOffset> {
    let last_sunday_1am = |month: u32| {
        let first_of_next = if month == 12 {
            Utc.with_ymd_and_hms(at.year() + 1, 1, 1, 1, 0, 0)
        } else {
            Utc.with_ymd_and_hms(at.year(), month + 1, 1, 1, 0, 0)
        };
        let mut day = first_of_next.single().unwrap_or(at) - Duration::days(1);
        while day.weekday() != Weekday::Sun {
            day -= Duration::days(1);
        }
        day
    };
    let summer = at >= last_sunday_1am(3) && at < last_sunday_1am(10);
    let hours = if summer { 3 } else { 2 };
    let offset = chrono::FixedOffset::east_opt(hours * 3600).expect("a whole-hour offset is valid");
    at.with_timezone(&offset)
}

/// The catalogue id of a level: `alert-level-red`, `alert-level-yellow`,
/// `alert-level-unknown` for one sirena does not know.
/// The threats at red level.
fn red_threats(threats: &[Threat]) -> Vec<Threat> {
    threats.iter().filter(|t| t.level == Some(AlertLevel::Red)).cloned().collect()
}

fn level_id(level: &AlertLevel) -> &'static str {
    match level {
        AlertLevel::Red => "red",
        AlertLevel::Yellow => "yellow",
        AlertLevel::Unknown(_) => "unknown",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_covers_html_specials() {
        assert_eq!(escape("a < b & \"c\" > d"), "a &lt; b &amp; &quot;c&quot; &gt; d");
    }

    #[test]
    fn truncation_keeps_whole_lines() {
        let mut s = "<b>x</b>\n".repeat(1000);
        truncate_lines(&mut s, 100, |s| s.encode_utf16().count());
        assert!(s.encode_utf16().count() <= 100);
        assert!(s.ends_with('…'));
        assert!(!s.contains("<b>x\n"));
    }

    #[test]
    fn kyiv_time_follows_summer_time() {
        let utc = |s: &str| DateTime::parse_from_rfc3339(s).expect("date").to_utc();
        // 2023: summer time from 26 March to 29 October, 01:00 UTC.
        assert_eq!(kyiv(utc("2023-11-06T08:02:00Z")).format("%H:%M").to_string(), "10:02");
        assert_eq!(kyiv(utc("2023-07-01T08:02:00Z")).format("%H:%M").to_string(), "11:02");
        assert_eq!(kyiv(utc("2023-03-26T00:59:00Z")).format("%H:%M").to_string(), "02:59");
        assert_eq!(kyiv(utc("2023-03-26T01:00:00Z")).format("%H:%M").to_string(), "04:00");
        assert_eq!(kyiv(utc("2023-10-29T00:59:00Z")).format("%H:%M").to_string(), "03:59");
        assert_eq!(kyiv(utc("2023-10-29T01:00:00Z")).format("%H:%M").to_string(), "03:00");
        assert_eq!(time_span(utc("2023-11-06T08:02:00Z"), utc("2023-11-06T08:05:00Z")), "10:02–10:05");
        assert_eq!(time_span(utc("2023-11-06T21:50:00Z"), utc("2023-11-06T22:10:00Z")), "06.11 23:50 – 07.11 00:10");
    }

    #[test]
    fn hashtags_are_single_words() {
        assert_eq!(hashtag("Куп’янський район"), "#Куп_янський_район");
        assert_eq!(hashtag("Kharkiv Oblast"), "#Kharkiv_Oblast");
    }
}
