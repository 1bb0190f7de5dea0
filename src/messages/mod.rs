//! Composer: turns an event into the text a resident reads, in their language, for
//! their channel.
//!
//! Texts live in Fluent catalogues (`config/locales/<lang>/*.ftl`) so operators can
//! reword them without a rebuild. The composer adds the structure (bold title, one
//! fact per line) and escapes every piece for Telegram's HTML parse mode; the
//! catalogues hold plain text only.
//!
//! **Architecture invariant:** composing does no IO and cannot fail. A message id
//! missing from a catalogue falls back to English, then to a generic sentence that is
//! still correct, because a resident must get *something* true rather than nothing.

use std::collections::HashMap;
use std::fmt;

use fluent_bundle::concurrent::FluentBundle;
use fluent_bundle::{FluentArgs, FluentResource, FluentValue};
use serde::{Deserialize, Serialize};

use crate::alerts::orders::{Change, Order, OrderStatus};
use crate::alerts::{AlertKind, Event, EventDetail, Transition};
use crate::regions::RegionTree;

/// Languages sirena speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Lang {
    Uk,
    En,
}

impl Lang {
    pub const ALL: [Lang; 2] = [Lang::Uk, Lang::En];

    pub fn code(self) -> &'static str {
        match self {
            Lang::Uk => "uk",
            Lang::En => "en",
        }
    }

    /// Accepts "uk", "UA", "ua", "en", "EN", "en-GB"…; anything else is `None`.
    pub fn parse(s: &str) -> Option<Lang> {
        let s = s.trim().to_ascii_lowercase();
        let base = s.split(['-', '_']).next().unwrap_or("");
        match base {
            "uk" | "ua" | "укр" => Some(Lang::Uk),
            "en" | "eng" => Some(Lang::En),
            _ => None,
        }
    }

    /// The language for a new Telegram user: Ukrainian unless their app speaks English
    /// (or another language we do not have, where English is the likelier to be read).
    pub fn from_telegram(code: Option<&str>) -> Lang {
        match code.and_then(Lang::parse) {
            Some(l) => l,
            None if code.is_none() => Lang::Uk,
            None if code.is_some_and(|c| c.starts_with("ru") || c.starts_with("be")) => Lang::Uk,
            None => Lang::En,
        }
    }
}

impl fmt::Display for Lang {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// Message ids every catalogue must define. `check-config` reports the missing ones.
pub const REQUIRED_IDS: &[&str] = &[
    "alert-started",
    "alert-ended",
    "alert-kind-air_raid",
    "alert-kind-artillery",
    "alert-kind-urban_fights",
    "alert-kind-chemical",
    "alert-kind-nuclear",
    "alert-kind-info",
    "alert-kind-unknown",
    "alert-advice-air_raid",
    "alert-advice-artillery",
    "alert-advice-chemical",
    "alert-advice-nuclear",
    "alert-advice-urban_fights",
    "alert-advice-unknown",
    "evac-started-mandatory",
    "evac-started-recommended",
    "evac-updated",
    "evac-ended",
    "evac-cancelled",
    "evac-destination",
    "evac-assembly-points",
    "evac-assembly-times",
    "evac-transport",
    "evac-who",
    "evac-hotline",
    "evac-changed",
    "evac-change-status",
    "evac-change-targets",
    "evac-change-destination",
    "evac-change-assembly_points",
    "evac-change-transport",
    "evac-change-hotline",
    "evac-change-who",
    "evac-change-text",
    "evac-change-expiry",
    "evac-expires",
    "bot-welcome",
    "bot-help",
    "bot-subscribe-usage",
    "bot-subscribed",
    "bot-already",
    "bot-not-found",
    "bot-choose",
    "bot-offer",
    "bot-list-header",
    "bot-list-empty",
    "bot-unsubscribed-all",
    "bot-unsubscribed",
    "bot-not-subscribed",
    "bot-lang-set",
    "bot-lang-usage",
    "bot-unknown-command",
    "bot-too-long",
    "bot-not-text",
    "bot-error",
];

/// A rendered message for one channel.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rendered {
    /// Telegram HTML.
    pub text: String,
    /// Sent without sound: all-clears and endings. A start always rings.
    pub silent: bool,
}

/// A catalogue that failed to parse, or lacks required messages.
#[derive(Debug, thiserror::Error)]
pub enum CatalogueError {
    #[error("{file}:{line}: Fluent syntax error: {message}")]
    Syntax { file: String, line: usize, message: String },
    #[error("{file}: message `{id}` is defined twice")]
    Duplicate { file: String, id: String },
    #[error("locales/{lang}: message `{id}` is missing")]
    Missing { lang: Lang, id: String },
}

/// One catalogue file as read from disk.
pub struct CatalogueSource {
    pub lang: Lang,
    pub file: String,
    pub text: String,
}

pub struct Composer {
    bundles: HashMap<Lang, FluentBundle<FluentResource>>,
}

impl fmt::Debug for Composer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Composer").field("langs", &self.bundles.keys().collect::<Vec<_>>()).finish()
    }
}

impl Composer {
    /// Builds the composer from catalogue files, reporting every error at once.
    pub fn new(sources: Vec<CatalogueSource>) -> Result<Composer, Vec<CatalogueError>> {
        let mut errors = Vec::new();
        let mut bundles: HashMap<Lang, FluentBundle<FluentResource>> = HashMap::new();
        for src in sources {
            let resource = match FluentResource::try_new(src.text.clone()) {
                Ok(r) => r,
                Err((r, errs)) => {
                    for e in errs {
                        // The slice spans the broken entry; its first non-blank line is
                        // where the operator should look (pos may point past it).
                        let start = e
                            .slice
                            .as_ref()
                            .and_then(|s| {
                                let slice = src.text.get(s.clone())?;
                                let skip = slice.len() - slice.trim_start().len();
                                Some(s.start + skip)
                            })
                            .unwrap_or(e.pos.start)
                            .min(src.text.len());
                        let line = src.text.get(..start).unwrap_or("").matches('\n').count() + 1;
                        errors.push(CatalogueError::Syntax {
                            file: src.file.clone(),
                            line,
                            message: e.kind.to_string(),
                        });
                    }
                    r
                }
            };
            let bundle = bundles.entry(src.lang).or_insert_with(|| {
                let id = src.lang.code().parse().unwrap_or_default();
                let mut b = FluentBundle::new_concurrent(vec![id]);
                // Unicode isolation marks would show up as garbage in SMS and in some
                // Telegram clients; our placeables are names and numbers, not mixed
                // direction text.
                b.set_use_isolating(false);
                b
            });
            if let Err(errs) = bundle.add_resource(resource) {
                for e in errs {
                    if let fluent_bundle::FluentError::Overriding { id, .. } = e {
                        errors.push(CatalogueError::Duplicate { file: src.file.clone(), id });
                    }
                }
            }
        }
        for lang in Lang::ALL {
            for id in REQUIRED_IDS {
                if !bundles.get(&lang).is_some_and(|b| b.has_message(id)) {
                    errors.push(CatalogueError::Missing { lang, id: (*id).to_owned() });
                }
            }
        }
        if errors.is_empty() { Ok(Composer { bundles }) } else { Err(errors) }
    }

    /// Formats one message as plain text; falls back to English, then to the id's
    /// `fallback` so a missing translation never silences a message.
    pub fn text(&self, lang: Lang, id: &str, args: &[(&str, &str)], fallback: &str) -> String {
        for l in [lang, Lang::En] {
            let Some(bundle) = self.bundles.get(&l) else { continue };
            let Some(pattern) = bundle.get_message(id).and_then(|m| m.value()) else { continue };
            let mut fargs = FluentArgs::new();
            for (k, v) in args {
                fargs.set(*k, FluentValue::from(*v));
            }
            let mut errs = Vec::new();
            let s = bundle.format_pattern(pattern, Some(&fargs), &mut errs);
            if errs.is_empty() {
                return s.into_owned();
            }
        }
        fallback.to_owned()
    }

    /// Renders an event for Telegram (HTML parse mode, ≤ 4096 characters).
    pub fn telegram(&self, event: &Event, tree: &RegionTree, lang: Lang) -> Rendered {
        let places: Vec<String> = event.targets.iter().map(|t| tree.name(t, lang)).collect();
        let places = places.join(", ");
        let mut lines: Vec<String> = Vec::new();
        let silent;
        match &event.detail {
            EventDetail::Alert { .. } => {
                let kind = self.text(lang, &format!("alert-kind-{}", event.kind), &[], event.kind.as_str());
                let (icon, id) = match event.transition {
                    Transition::Started | Transition::Updated => ("🔴", "alert-started"),
                    Transition::Ended | Transition::Cancelled => ("🟢", "alert-ended"),
                };
                silent = !matches!(event.transition, Transition::Started);
                let title = self.text(lang, id, &[("kind", &kind)], &kind);
                lines.push(format!("{icon} <b>{}</b>", escape(&title)));
                lines.push(escape(&places));
                if event.transition == Transition::Started {
                    let advice_kind = match event.kind {
                        AlertKind::Info | AlertKind::Evacuation => None,
                        k @ (AlertKind::AirRaid
                        | AlertKind::Artillery
                        | AlertKind::Chemical
                        | AlertKind::Nuclear
                        | AlertKind::UrbanFights) => Some(k.as_str()),
                        AlertKind::Unknown => Some("unknown"),
                    };
                    if let Some(k) = advice_kind {
                        lines.push(escape(&self.text(lang, &format!("alert-advice-{k}"), &[], "")));
                    }
                }
            }
            EventDetail::Order { order, changes } => {
                silent = matches!(event.transition, Transition::Ended);
                self.order_lines(&mut lines, event.transition, order, changes, &places, lang, tree);
            }
        }
        let mut text = lines.into_iter().filter(|l| !l.is_empty()).collect::<Vec<_>>().join("\n");
        truncate_html(&mut text, TELEGRAM_MAX_UTF16);
        Rendered { text, silent }
    }

    #[allow(clippy::too_many_arguments)] // One call site; a struct would only rename the list.
    fn order_lines(
        &self,
        lines: &mut Vec<String>,
        transition: Transition,
        order: &Order,
        changes: &[Change],
        places: &str,
        lang: Lang,
        tree: &RegionTree,
    ) {
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
        lines.push(format!("{icon} <b>{}</b>", escape(&title)));
        lines.push(escape(places));
        if matches!(transition, Transition::Ended | Transition::Cancelled) {
            if let Some(h) = &order.hotline {
                lines.push(escape(&self.text(lang, "evac-hotline", &[("phone", h)], h)));
            }
            return;
        }
        if transition == Transition::Updated && !changes.is_empty() {
            let what: Vec<String> = changes
                .iter()
                .map(|c| {
                    let key =
                        serde_json::to_value(c).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default();
                    self.text(lang, &format!("evac-change-{key}"), &[], &key)
                })
                .collect();
            lines.push(format!(
                "<i>{}</i>",
                escape(&self.text(lang, "evac-changed", &[("what", &what.join(", "))], ""))
            ));
        }
        if let Some(who) = &order.who {
            lines.push(escape(&self.text(lang, "evac-who", &[("who", who.get(lang))], who.get(lang))));
        }
        if let Some(dest) = &order.destination {
            lines.push(escape(&self.text(lang, "evac-destination", &[("place", dest.get(lang))], dest.get(lang))));
        }
        if !order.assembly_points.is_empty() {
            lines.push(escape(&self.text(lang, "evac-assembly-points", &[], "Assembly points:")));
            for p in &order.assembly_points {
                let mut line = format!("• <b>{}</b>", escape(p.name.get(lang)));
                if let Some(a) = &p.address {
                    line.push_str(&format!(", {}", escape(a.get(lang))));
                } else if let Some(place) = &p.place {
                    line.push_str(&format!(", {}", escape(&tree.name(place, lang))));
                }
                if !p.times.is_empty() {
                    let times = p.times.join(", ");
                    line.push_str(&format!(
                        " — {}",
                        escape(&self.text(lang, "evac-assembly-times", &[("times", &times)], &times))
                    ));
                }
                if let Some([lat, lon]) = p.at {
                    line.push_str(&format!(
                        " (<a href=\"https://maps.google.com/?q={lat:.5},{lon:.5}\">{lat:.4}, {lon:.4}</a>)"
                    ));
                }
                lines.push(line);
            }
        }
        if let Some(t) = &order.transport {
            lines.push(escape(&self.text(lang, "evac-transport", &[("transport", t.get(lang))], t.get(lang))));
        }
        if let Some(h) = &order.hotline {
            lines.push(escape(&self.text(lang, "evac-hotline", &[("phone", h)], h)));
        }
        if let Some(e) = &order.expires_at {
            let when = e.format("%d.%m.%Y %H:%M").to_string();
            lines.push(escape(&self.text(lang, "evac-expires", &[("when", &when)], &when)));
        }
        if let Some(t) = &order.text {
            lines.push(String::new());
            lines.push(escape(t.get(lang)));
        }
    }
}

/// Telegram counts message length in UTF-16 code units after entity parsing; we
/// bound the raw HTML, which is never shorter, so the bound is safe.
pub const TELEGRAM_MAX_UTF16: usize = 4096;

/// Escapes text for Telegram's HTML parse mode: `<`, `>`, `&` and `"`.
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

/// Cuts an HTML message to fit, at a line boundary so no tag or entity is split,
/// and marks the cut.
fn truncate_html(text: &mut String, max_utf16: usize) {
    if text.encode_utf16().count() <= max_utf16 {
        return;
    }
    let mut kept = String::new();
    for line in text.lines() {
        if kept.encode_utf16().count() + line.encode_utf16().count() + 2 > max_utf16 {
            break;
        }
        kept.push_str(line);
        kept.push('\n');
    }
    kept.push('…');
    *text = kept;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_covers_html_specials() {
        assert_eq!(escape("a < b & \"c\" > d"), "a &lt; b &amp; &quot;c&quot; &gt; d");
    }

    #[test]
    fn lang_parse_accepts_common_spellings() {
        assert_eq!(Lang::parse("UK"), Some(Lang::Uk));
        assert_eq!(Lang::parse("ua"), Some(Lang::Uk));
        assert_eq!(Lang::parse("en-GB"), Some(Lang::En));
        assert_eq!(Lang::parse("de"), None);
        assert_eq!(Lang::from_telegram(Some("de")), Lang::En);
        assert_eq!(Lang::from_telegram(None), Lang::Uk);
    }

    #[test]
    fn truncation_keeps_whole_lines() {
        let mut s = "<b>x</b>\n".repeat(1000);
        truncate_html(&mut s, 100);
        assert!(s.encode_utf16().count() <= 100);
        assert!(s.ends_with('…'));
        assert!(!s.contains("<b>x\n"));
    }
}
