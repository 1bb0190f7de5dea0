//! The words of an operator notice: one [`Notice`] to the plain text operators read,
//! counts through the catalogue's plural forms. Pure; the daemon's notice task sends it.

use crate::config::diff::ConfigChange;
use crate::messages::{Composer, Lang};
use crate::pipeline::Notice;

/// The text of one notice in `lang` (before escaping for Telegram).
pub fn notice_text(c: &Composer, lang: Lang, notice: &Notice) -> String {
    let time = |t: Option<chrono::DateTime<chrono::Utc>>| {
        t.map_or("—".to_owned(), |t| crate::messages::kyiv(t).format("%d.%m %H:%M").to_string())
    };
    match notice {
        Notice::SourceStale { source, last_ok } => {
            c.text(lang, "notice-source-stale", &[("source", source), ("since", &time(*last_ok))], source)
        }
        Notice::SourceRecovered { source } => c.text(lang, "notice-source-recovered", &[("source", source)], source),
        Notice::AllStale { since } => c.text(lang, "notice-all-stale", &[("since", &time(*since))], "all stale"),
        Notice::SnapshotHeld { source, held } => {
            c.counted(lang, "notice-snapshot-held", &[("source", source)], &[("held", *held as u64)], source)
        }
        Notice::SnapshotBelieved { source, since } => {
            c.text(lang, "notice-snapshot-believed", &[("source", source), ("since", &time(Some(*since)))], source)
        }
        Notice::ConfigRefused { errors } => {
            let listed = errors.join("\n");
            c.text(lang, "notice-config-refused", &[("errors", &listed)], &listed)
        }
        Notice::ConfigApplied { generation, changes } => {
            let lines: Vec<String> = changes.iter().map(|ch| describe_change(c, lang, ch)).collect();
            let listed = lines.join("\n");
            c.text(
                lang,
                "notice-config-applied",
                &[("generation", &generation.to_string()), ("changes", &listed)],
                &listed,
            )
        }
        Notice::OrdersMissing { ids } => {
            let listed = ids.join(", ");
            c.text(lang, "notice-orders-missing", &[("orders", &listed)], &listed)
        }
        Notice::DrillReport { drill, run, summary } => {
            c.text(lang, "notice-drill-report", &[("drill", drill), ("run", run), ("summary", summary)], summary)
        }
        Notice::CredentialRefused { platform, var, status, exit_in } => {
            let minutes = exit_in.as_secs().div_ceil(60).to_string();
            let args =
                [("platform", platform.as_str()), ("var", var), ("status", &status.to_string()), ("minutes", &minutes)];
            c.text(lang, "notice-credential-refused", &args, var)
        }
        Notice::CredentialAccepted { platform, var } => {
            c.text(lang, "notice-credential-accepted", &[("platform", platform), ("var", var)], var)
        }
    }
}

/// One line of a reload notice: "order kupiansk-2023-11-06 updated: assembly points
/// (assembly time 15:00 added)".
fn describe_change(c: &Composer, lang: Lang, change: &ConfigChange) -> String {
    match change {
        ConfigChange::OrderAdded { id, status } => {
            c.text(lang, "notice-change-order-added", &[("id", id), ("status", status.as_str())], id)
        }
        ConfigChange::OrderChanged { id, fields, times_added, times_removed } => {
            let mut what: Vec<String> =
                fields.iter().map(|f| c.text(lang, &format!("evac-change-{}", f.as_str()), &[], f.as_str())).collect();
            what.extend(times_added.iter().map(|t| c.text(lang, "notice-change-time-added", &[("time", t)], t)));
            what.extend(times_removed.iter().map(|t| c.text(lang, "notice-change-time-removed", &[("time", t)], t)));
            c.text(lang, "notice-change-order-updated", &[("id", id), ("what", &what.join(", "))], id)
        }
        ConfigChange::OrderRemoved { id } => c.text(lang, "notice-change-order-removed", &[("id", id)], id),
        ConfigChange::Regions { added, removed } => c.counted(
            lang,
            "notice-change-regions",
            &[],
            &[("added", *added as u64), ("removed", *removed as u64)],
            "regions",
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn composer() -> std::sync::Arc<Composer> {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config");
        crate::config::load(&dir).expect("shipped config loads").composer
    }

    fn held(c: &Composer, lang: Lang, n: usize) -> String {
        notice_text(c, lang, &Notice::SnapshotHeld { source: "alerts_in_ua".into(), held: n })
    }

    #[test]
    fn a_held_snapshot_counts_its_alerts_in_each_languages_plural_forms() {
        let c = composer();
        let uk = [
            (1, "1 тривогу"),
            (2, "2 тривоги"),
            (5, "5 тривог"),
            (11, "11 тривог"),
            (21, "21 тривогу"),
            (22, "22 тривоги"),
        ];
        for (n, words) in uk {
            let text = held(&c, Lang::Uk, n);
            assert!(text.contains(&format!("прибрало {words} (")), "{n}: {text}");
        }
        assert!(held(&c, Lang::En, 1).contains("dropped 1 alert at once"), "{}", held(&c, Lang::En, 1));
        assert!(held(&c, Lang::En, 2).contains("dropped 2 alerts at once"), "{}", held(&c, Lang::En, 2));
    }

    #[test]
    fn a_reload_counts_regions_in_plural_forms() {
        let c = composer();
        let change = |added, removed| ConfigChange::Regions { added, removed };
        assert_eq!(describe_change(&c, Lang::Uk, &change(1, 5)), "• регіони: додано 1 регіон, прибрано 5 регіонів");
        assert_eq!(
            describe_change(&c, Lang::Uk, &change(22, 11)),
            "• регіони: додано 22 регіони, прибрано 11 регіонів"
        );
        assert_eq!(describe_change(&c, Lang::En, &change(1, 2)), "• regions: 1 region added, 2 regions removed");
    }
}
