//! What is going on where, right now: the view behind a resident's `/status` and the
//! operators' notices about the feeds' health.
//!
//! The pipeline publishes a [`StatusView`] after every change; readers judge it at
//! their own moment, because staleness grows with time alone. When no source has
//! given a believed answer within `stale_after`, the view cannot say "no alerts":
//! the status of every place is unknown since the last believed answer. (Every
//! source sirena reads covers the whole country, so "every source covering a place"
//! is every source.)
//!
//! **Architecture invariant:** pure data in, data out.

use chrono::{DateTime, Duration, Utc};

use super::coverage::overlaps;
use super::orders::OrderStatus;
use super::{AlertKind, AlertLevel, Threat};
use crate::regions::{RegionId, RegionTree};

/// One active alert, as `/status` tells it.
#[derive(Clone, Debug, PartialEq)]
pub struct ActiveAlert {
    pub kind: AlertKind,
    pub region: RegionId,
    pub started_at: DateTime<Utc>,
    pub level: Option<AlertLevel>,
    pub threats: Vec<Threat>,
    /// The sources that report it: by name from the alert state, by kind
    /// (`alerts_in_ua`, `ukrainealarm`, `cap`) once the pipeline publishes the view,
    /// for `/status` to name each as residents know it (`source-<kind>` in the catalogues).
    pub sources: Vec<String>,
}

impl ActiveAlert {
    /// Names its sources by kind (`kinds`: source name → kind, from the config), each
    /// kind once, sorted: residents know a feed by its service, not by the operator's
    /// name for it. A name not in `kinds` is kept.
    pub fn name_sources_by_kind(&mut self, kinds: &std::collections::BTreeMap<&str, &str>) {
        let mut by_kind: Vec<String> =
            self.sources.iter().map(|n| kinds.get(n.as_str()).map_or_else(|| n.clone(), |k| (*k).to_owned())).collect();
        by_kind.sort();
        by_kind.dedup();
        self.sources = by_kind;
    }
}

/// One evacuation order in force.
#[derive(Clone, Debug, PartialEq)]
pub struct OrderInForce {
    pub id: String,
    pub status: OrderStatus,
    pub targets: Vec<RegionId>,
    /// The order's hotline, for residents who ask for help to leave.
    pub hotline: Option<String>,
}

/// One source's last believed answer.
#[derive(Clone, Debug, PartialEq)]
pub struct SourceSeen {
    pub source: String,
    pub last_ok: Option<DateTime<Utc>>,
    /// Since when its answers are held as a suspected fault.
    pub held_since: Option<DateTime<Utc>>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct StatusView {
    pub alerts: Vec<ActiveAlert>,
    pub orders: Vec<OrderInForce>,
    /// Every configured source, heard from or not.
    pub sources: Vec<SourceSeen>,
    pub stale_after: Duration,
}

/// What a resident's place looks like at one moment.
#[derive(Clone, Debug, PartialEq)]
pub enum PlaceStatus {
    /// No source can be trusted now; `since` is the last believed answer, if any.
    Unknown { since: Option<DateTime<Utc>> },
    /// What overlaps the place (possibly nothing).
    Known { alerts: Vec<ActiveAlert>, orders: Vec<OrderInForce> },
}

impl StatusView {
    /// An empty view: nothing heard yet.
    pub fn empty(stale_after: Duration) -> StatusView {
        StatusView { alerts: Vec::new(), orders: Vec::new(), sources: Vec::new(), stale_after }
    }

    /// True when some source has given a believed answer within `stale_after`.
    pub fn is_trusted(&self, now: DateTime<Utc>) -> bool {
        self.sources.iter().any(|s| s.last_ok.is_some_and(|t| now - t <= self.stale_after))
    }

    /// The latest believed answer of any source.
    pub fn last_ok(&self) -> Option<DateTime<Utc>> {
        self.sources.iter().filter_map(|s| s.last_ok).max()
    }

    pub fn of_place(&self, tree: &RegionTree, place: &RegionId, now: DateTime<Utc>) -> PlaceStatus {
        // Orders come from the operators' files, not the feeds: always known.
        let orders: Vec<OrderInForce> =
            self.orders.iter().filter(|o| o.targets.iter().any(|t| tree.is_within(place, t))).cloned().collect();
        if !self.is_trusted(now) {
            return PlaceStatus::Unknown { since: self.last_ok() };
        }
        let mut alerts: Vec<ActiveAlert> =
            self.alerts.iter().filter(|a| overlaps(tree, place, &a.region)).cloned().collect();
        alerts.sort_by_key(|a| a.started_at);
        PlaceStatus::Known { alerts, orders }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::regions::tests_support::*;

    fn t(secs: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_700_000_000 + secs, 0).expect("time")
    }

    fn view(last_ok: i64) -> StatusView {
        StatusView {
            alerts: vec![ActiveAlert {
                kind: AlertKind::AirRaid,
                region: RegionId::parse(RAION).expect("id"),
                started_at: t(0),
                level: None,
                threats: vec![],
                sources: vec!["a".into()],
            }],
            orders: vec![],
            sources: vec![SourceSeen { source: "a".into(), last_ok: Some(t(last_ok)), held_since: None }],
            stale_after: Duration::minutes(5),
        }
    }

    #[test]
    fn sources_are_named_by_kind_once_each() {
        let mut a = view(0).alerts.remove(0);
        a.sources = vec!["kyiv-cap".into(), "ua-main".into(), "ua-backup".into(), "gone".into()];
        let kinds = [("kyiv-cap", "cap"), ("ua-main", "alerts_in_ua"), ("ua-backup", "alerts_in_ua")].into();
        a.name_sources_by_kind(&kinds);
        assert_eq!(a.sources, vec!["alerts_in_ua", "cap", "gone"]);
    }

    #[test]
    fn a_place_hears_what_overlaps_it_until_the_sources_go_stale() {
        let tree = tree();
        let id = |s: &str| RegionId::parse(s).expect("id");
        let v = view(0);
        let PlaceStatus::Known { alerts, .. } = v.of_place(&tree, &id(KUPIANSK), t(60)) else { panic!("known") };
        assert_eq!(alerts.len(), 1, "the raion's alert covers the city");
        let PlaceStatus::Known { alerts, .. } = v.of_place(&tree, &id(OBLAST), t(60)) else { panic!("known") };
        assert_eq!(alerts.len(), 1, "and is an alert in the oblast");
        let PlaceStatus::Known { alerts, .. } = v.of_place(&tree, &id(KHARKIV), t(60)) else { panic!("known") };
        assert!(alerts.is_empty());
        assert_eq!(v.of_place(&tree, &id(KHARKIV), t(301)), PlaceStatus::Unknown { since: Some(t(0)) });
        assert_eq!(
            StatusView::empty(Duration::minutes(5)).of_place(&tree, &id(KHARKIV), t(0)),
            PlaceStatus::Unknown { since: None }
        );
    }
}
