//! What a config change may not do on its own, however valid the new files are: end
//! an evacuation order by losing it, or drop regions that residents chose as their
//! place. A region file emptied, deleted or saved half-written is a valid file with
//! less in it; applied, it would tell residents "order lifted" or leave them hearing
//! nothing. The running daemon refuses such a change and keeps its last good config
//! ([`refusals`]); an order ends only by `status = "lifted"` or `"cancelled"`, and a
//! region goes only when `[reload] allow_removing` in `sirena.toml` names it.
//!
//! Pure: it takes both configs, the orders in force and who holds each place.

use std::collections::BTreeSet;

use super::{Config, ConfigError};
use crate::messages::Lang;
use crate::regions::RegionId;

/// Regions listed one by one in a refusal; the rest are counted.
const LISTED: usize = 5;

/// Why `new` may not replace `old` while `in_force` orders are announced and `held`
/// says how many residents have each place. Empty when it may.
pub fn refusals(
    old: &Config,
    new: &Config,
    in_force: &BTreeSet<String>,
    held: &dyn Fn(&RegionId) -> usize,
) -> Vec<ConfigError> {
    let mut out = Vec::new();
    let kept: BTreeSet<&str> = new.orders.iter().map(|o| o.id.as_str()).collect();
    for id in in_force.iter().filter(|id| !kept.contains(id.as_str())) {
        let (file, line) = old.origins.orders.get(id).cloned().unwrap_or_else(|| (old.dir.join("regions"), 0));
        out.push(ConfigError {
            file,
            line,
            col: 1,
            message: format!(
                "evacuation order `{id}` is in force and is gone from the region files (a deleted table, or a file \
                 saved half-written?); residents are not told it ended. To end it, put it back with \
                 status = \"lifted\" (or \"cancelled\"); remove it once that has gone out"
            ),
        });
    }
    let allowed: BTreeSet<&RegionId> = new.settings.reload.allow_removing.iter().collect();
    let mut dropped: Vec<(&RegionId, usize)> = old
        .tree
        .iter()
        .map(|r| &r.id)
        .filter(|id| !new.tree.contains(id) && !allowed.contains(id))
        .map(|id| (id, held(id)))
        .filter(|(_, n)| *n > 0)
        .collect();
    if dropped.is_empty() {
        return out;
    }
    dropped.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(b.0)));
    let residents: usize = dropped.iter().map(|(_, n)| n).sum();
    let names: Vec<String> =
        dropped.iter().take(LISTED).map(|(id, n)| format!("{} `{id}` ({n})", old.tree.name(id, Lang::En))).collect();
    let more = dropped.len().saturating_sub(LISTED);
    let (file, line) = dropped
        .first()
        .and_then(|(id, _)| old.origins.regions.get(id.as_str()).cloned())
        .unwrap_or_else(|| (old.dir.join("regions"), 0));
    out.push(ConfigError {
        file,
        line,
        col: 1,
        message: format!(
            "{} region{} that {residents} resident{} chose as their place {} gone from the region files: {}{}. \
             They would hear nothing more. If a file was emptied or saved half-written, restore it; to remove them \
             on purpose, list them in sirena.toml under [reload] allow_removing",
            dropped.len(),
            if dropped.len() == 1 { "" } else { "s" },
            if residents == 1 { "" } else { "s" },
            if dropped.len() == 1 { "is" } else { "are" },
            names.join(", "),
            if more > 0 { format!(" and {more} more") } else { String::new() },
        ),
    });
    out
}
