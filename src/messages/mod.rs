//! Composer: turns the events a reader has not been told yet into the one message they
//! read, in their language, in their channel's format ([`Composer::render`]).
//!
//! Texts live in Fluent catalogues (`config/locales/<lang>/*.ftl`) so operators can
//! reword them without a rebuild. The composer adds the structure (bold title, one
//! fact per line) and escapes every piece for Telegram's HTML parse mode, or writes
//! compact plain text for SMS; the catalogues hold plain text only.
//!
//! **Architecture invariant:** composing does no IO and cannot fail. A message id
//! missing from a catalogue falls back to English, then to a generic sentence that is
//! still correct, because a resident must get *something* true rather than nothing.

use std::collections::HashMap;
use std::fmt;

use fluent_bundle::concurrent::FluentBundle;
use fluent_bundle::{FluentArgs, FluentResource, FluentValue};

mod lang;
pub mod plural;
mod render;
pub mod sms;

pub use lang::Lang;
pub use render::{Format, Part, TELEGRAM_MAX_UTF16, escape, kyiv, plain};

/// Message ids every catalogue must define. `check-config` reports the missing ones.
pub const REQUIRED_IDS: &[&str] = &[
    "alert-started",
    "alert-ended",
    "alert-closed",
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
    "evac-cancelled-advice",
    "evac-closed",
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
    /// In the channel's format (see [`Format`]).
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
    /// A `{ $name }` that sirena never passes: it would render the English text, or a
    /// generic sentence, instead of this one.
    #[error("{file}:{line}: message `{id}` uses `${variable}`, which sirena never passes")]
    UnknownVariable { file: String, line: usize, id: String, variable: String },
}

/// Every variable the code passes to any message. A catalogue that uses another is
/// refused at load: `{ $plcae }` is a typo that would silently change the text.
pub const VARIABLES: &[&str] = &[
    "added",
    "by",
    "changes",
    "choices",
    "command",
    "count",
    "drill",
    "error",
    "errors",
    "event",
    "failures",
    "generation",
    "held",
    "hotline",
    "hours",
    "id",
    "kind",
    "km",
    "label",
    "length",
    "max",
    "minutes",
    "mobility",
    "orders",
    "page",
    "pages",
    "people",
    "phone",
    "place",
    "places",
    "platform",
    "point",
    "query",
    "removed",
    "run",
    "since",
    "source",
    "sources",
    "span",
    "state",
    "status",
    "summary",
    "text",
    "threat",
    "threats",
    "time",
    "times",
    "transport",
    "var",
    "what",
    "when",
    "who",
];

/// The variables a message's value and attributes use, each once, in order.
fn variables<'s>(message: &fluent_syntax::ast::Message<&'s str>) -> Vec<&'s str> {
    use fluent_syntax::ast::{Expression, InlineExpression, Pattern, PatternElement};
    fn inline<'s>(e: &InlineExpression<&'s str>, out: &mut Vec<&'s str>) {
        match e {
            InlineExpression::VariableReference { id } => out.push(id.name),
            InlineExpression::Placeable { expression } => expression_vars(expression, out),
            InlineExpression::FunctionReference { arguments, .. } => {
                arguments.positional.iter().for_each(|a| inline(a, out));
                arguments.named.iter().for_each(|a| inline(&a.value, out));
            }
            _ => {}
        }
    }
    fn expression_vars<'s>(e: &Expression<&'s str>, out: &mut Vec<&'s str>) {
        match e {
            Expression::Inline(i) => inline(i, out),
            Expression::Select { selector, variants } => {
                inline(selector, out);
                variants.iter().for_each(|v| pattern(&v.value, out));
            }
        }
    }
    fn pattern<'s>(p: &Pattern<&'s str>, out: &mut Vec<&'s str>) {
        for el in &p.elements {
            if let PatternElement::Placeable { expression } = el {
                expression_vars(expression, out);
            }
        }
    }
    let mut out = Vec::new();
    if let Some(v) = &message.value {
        pattern(v, &mut out);
    }
    message.attributes.iter().for_each(|a| pattern(&a.value, &mut out));
    let mut seen = std::collections::HashSet::new();
    out.retain(|v| seen.insert(*v));
    out
}

/// One catalogue file as read from disk.
pub struct CatalogueSource {
    pub lang: Lang,
    pub file: String,
    pub text: String,
}

/// Parts an SMS may take unless `[sms] max_parts` says otherwise.
pub const DEFAULT_SMS_PARTS: usize = 2;

pub struct Composer {
    bundles: HashMap<Lang, FluentBundle<FluentResource>>,
    /// The most parts one SMS may take (`[sms] max_parts`).
    sms_max_parts: usize,
}

impl fmt::Debug for Composer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Composer").field("langs", &self.bundles.keys().collect::<Vec<_>>()).finish()
    }
}

impl Composer {
    /// The most parts one SMS may take; longer texts are shortened (`render::sms`).
    pub fn with_sms_max_parts(mut self, parts: usize) -> Composer {
        self.sms_max_parts = parts.max(1);
        self
    }

    pub fn sms_max_parts(&self) -> usize {
        self.sms_max_parts
    }

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
            for entry in resource.entries() {
                let fluent_syntax::ast::Entry::Message(m) = entry else { continue };
                for variable in variables(m).into_iter().filter(|v| !VARIABLES.contains(v)) {
                    let at = src.text.find(&format!("\n{} ", m.id.name)).map_or(0, |i| i + 1);
                    errors.push(CatalogueError::UnknownVariable {
                        file: src.file.clone(),
                        line: src.text[..at].matches('\n').count() + 1,
                        id: m.id.name.to_owned(),
                        variable: variable.to_owned(),
                    });
                }
            }
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
        if errors.is_empty() { Ok(Composer { bundles, sms_max_parts: DEFAULT_SMS_PARTS }) } else { Err(errors) }
    }

    /// Formats one message as plain text; falls back to English, then to the id's
    /// `fallback` so a missing translation never silences a message.
    pub fn text(&self, lang: Lang, id: &str, args: &[(&str, &str)], fallback: &str) -> String {
        self.counted(lang, id, args, &[], fallback)
    }

    /// [`Composer::text`] with counts: each is passed to Fluent as a number, so a
    /// selector `{ $count -> [one] … [few] … *[many] … }` picks the language's plural
    /// form (Ukrainian one/few/many: 1 тривога, 2 тривоги, 5 тривог; English one/other).
    pub fn counted(
        &self,
        lang: Lang,
        id: &str,
        args: &[(&str, &str)],
        counts: &[(&str, u64)],
        fallback: &str,
    ) -> String {
        for l in [lang, Lang::En] {
            let Some(bundle) = self.bundles.get(&l) else { continue };
            let Some(pattern) = bundle.get_message(id).and_then(|m| m.value()) else { continue };
            let mut fargs = FluentArgs::new();
            for (k, v) in args {
                fargs.set(*k, FluentValue::from(*v));
            }
            for (k, n) in counts {
                fargs.set(*k, FluentValue::from(*n));
            }
            let mut errs = Vec::new();
            let s = bundle.format_pattern(pattern, Some(&fargs), &mut errs);
            if errs.is_empty() {
                return s.into_owned();
            }
        }
        fallback.to_owned()
    }
}
