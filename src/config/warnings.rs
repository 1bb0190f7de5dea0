//! What a valid config may still get wrong: warnings `sirena check-config` prints and
//! `sirena run` logs at start. Unlike errors they stop nothing — but each one names
//! residents who would hear less than they expect, and what fixes it.

use std::collections::BTreeMap;
use std::path::Path;

use super::{Config, SourceSettings};
use crate::messages::{Lang, plural};
use crate::regions::{Level, RegionId};

/// Every warning about `config`, in words, each with its fix.
pub fn warnings(config: &Config) -> Vec<String> {
    let mut out = feed_coverage(config);
    out.extend(no_operators(config));
    out
}

/// Nobody to tell: the operators' notices (DESIGN §11) go to `[telegram] operators`, and
/// the shipped default is none.
fn no_operators(config: &Config) -> Option<String> {
    let none = config.settings.telegram.as_ref().is_none_or(|t| t.operators.is_empty());
    none.then(|| {
        "warning: no operators configured: every operator notice — stale feeds, refused tokens, refused reloads — \
         goes nowhere; add Telegram user ids to [telegram] operators"
            .to_owned()
    })
}

/// SMS residents in the store while no `[sms]` gateway is configured: they hear
/// nothing. Needs the store, so `check-config` and `subscribers import` ask it after
/// reading it; `sms_residents` is how many the store holds.
pub fn sms_without_gateway(config: &Config, sms_residents: u64) -> Option<String> {
    (config.settings.sms.is_none() && sms_residents > 0).then(|| {
        format!(
            "warning: SMS residents waiting for a gateway: {sms_residents}. No [sms] gateway is configured, so \
             they hear nothing until one is (README, \"SMS\"); their rows are kept"
        )
    })
}

/// Raions and hromadas without a feed id, counted.
#[derive(Clone, Copy, Debug, Default)]
struct Missing {
    raions: usize,
    hromadas: usize,
}

/// For each feed whose alerts name regions by feed id (alerts.in.ua, ukrainealarm):
/// how many raions and hromadas have none, by oblast. Such a feed's alert on one of
/// them is "unmapped" and reaches nobody; only an oblast-wide alert still covers its
/// residents. (After a full import the feeds' lists leave Crimea's raions and
/// hromadas, and a few the lists name otherwise, without one: the breakdown shows it.)
fn feed_coverage(config: &Config) -> Vec<String> {
    let tree = &config.tree;
    let (mut total, mut missing) = (Missing::default(), Missing::default());
    let mut by_oblast: BTreeMap<&RegionId, Missing> = BTreeMap::new();
    for r in tree.iter() {
        let count = |m: &mut Missing| match r.level {
            Level::Raion => m.raions += 1,
            _ => m.hromadas += 1,
        };
        if !matches!(r.level, Level::Raion | Level::Hromada) {
            continue;
        }
        count(&mut total);
        if r.feed_id.is_none() {
            count(&mut missing);
            count(by_oblast.entry(tree.ancestors(&r.id).last().unwrap_or(&r.id)).or_default());
        }
    }
    if missing.raions + missing.hromadas == 0 {
        return Vec::new();
    }
    let mut oblasts: Vec<(&RegionId, Missing)> = by_oblast.into_iter().collect();
    oblasts.sort_by_key(|(_, m)| std::cmp::Reverse(m.raions + m.hromadas));
    let mut breakdown: Vec<String> = oblasts
        .iter()
        .take(4)
        .map(|(id, m)| {
            let raions = plural::count(m.raions, "raion", "raions");
            format!("{} {raions}, {}", tree.name(id, Lang::Uk), plural::count(m.hromadas, "hromada", "hromadas"))
        })
        .collect();
    if oblasts.len() > 4 {
        breakdown.push(format!("{} more", plural::count(oblasts.len() - 4, "oblast", "oblasts")));
    }
    config
        .settings
        .sources
        .iter()
        .filter(|s| !matches!(s, SourceSettings::Cap(_)))
        .map(|s| {
            format!(
                "warning: source `{}`: {} of {} raions and {} of {} hromadas have no feed id ({}), so the feed's \
                 alerts on them reach nobody (an oblast-wide alert still does). {}",
                s.common().name,
                missing.raions,
                total.raions,
                missing.hromadas,
                total.hromadas,
                breakdown.join("; "),
                fix(&config.dir),
            )
        })
        .collect()
}

/// What attaches the feeds' ids, for the config in `dir`.
fn fix(dir: &Path) -> String {
    format!(
        "The full import attaches them: sirena regions import kodifikator.csv --config {} --alerts-in-ua \
         locations_hierarchy.json --ukrainealarm regions_v3.json (README, \"Config\"); a place the lists do not \
         name takes a hand-written feed_id",
        dir.display()
    )
}
