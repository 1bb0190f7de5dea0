//! What a reload changed, for the operators' notice (pure): orders added, changed
//! (which fields, and for assembly points which departure times came and went) and
//! dropped from the files, and how many regions came and went.

use std::collections::{BTreeMap, BTreeSet};

use crate::alerts::orders::{Change, Order, OrderStatus};
use crate::regions::RegionTree;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConfigChange {
    OrderAdded {
        id: String,
        status: OrderStatus,
    },
    OrderChanged {
        id: String,
        fields: Vec<Change>,
        times_added: Vec<String>,
        times_removed: Vec<String>,
    },
    /// No longer in any file (allowed only once it is lifted or cancelled).
    OrderRemoved {
        id: String,
    },
    Regions {
        added: usize,
        removed: usize,
    },
}

/// Every change from `old` to `new`, orders by id, then regions.
pub fn changes(old_orders: &[Order], new_orders: &[Order], old: &RegionTree, new: &RegionTree) -> Vec<ConfigChange> {
    let before: BTreeMap<&str, &Order> = old_orders.iter().map(|o| (o.id.as_str(), o)).collect();
    let after: BTreeMap<&str, &Order> = new_orders.iter().map(|o| (o.id.as_str(), o)).collect();
    let mut out = Vec::new();
    for (id, order) in &after {
        match before.get(id) {
            None => out.push(ConfigChange::OrderAdded { id: id.to_string(), status: order.status }),
            Some(was) => {
                let fields = order.changes_since(was);
                if fields.is_empty() {
                    continue;
                }
                let times = |o: &Order| -> BTreeSet<String> {
                    o.assembly_points.iter().flat_map(|p| p.times.iter().cloned()).collect()
                };
                let (then, now) = (times(was), times(order));
                out.push(ConfigChange::OrderChanged {
                    id: id.to_string(),
                    fields,
                    times_added: now.difference(&then).cloned().collect(),
                    times_removed: then.difference(&now).cloned().collect(),
                });
            }
        }
    }
    for id in before.keys().filter(|id| !after.contains_key(*id)) {
        out.push(ConfigChange::OrderRemoved { id: id.to_string() });
    }
    let added = new.iter().filter(|r| !old.contains(&r.id)).count();
    let removed = old.iter().filter(|r| !new.contains(&r.id)).count();
    if added + removed > 0 {
        out.push(ConfigChange::Regions { added, removed });
    }
    out
}

/// A reload's changes as the log's sentence: `config reloaded: 1 order added, 2 orders
/// changed (kupiansk, izium), 3 regions added`.
pub fn summary(changes: &[ConfigChange]) -> String {
    let (mut added, mut changed, mut removed) = (Vec::new(), Vec::new(), Vec::new());
    let mut parts = Vec::new();
    for c in changes {
        match c {
            ConfigChange::OrderAdded { id, .. } => added.push(id.as_str()),
            ConfigChange::OrderChanged { id, .. } => changed.push(id.as_str()),
            ConfigChange::OrderRemoved { id } => removed.push(id.as_str()),
            ConfigChange::Regions { .. } => {}
        }
    }
    for (ids, what) in [(&added, "added"), (&changed, "changed"), (&removed, "removed")] {
        if !ids.is_empty() {
            parts.push(format!("{} {what} ({})", count(ids.len(), "order", "orders"), ids.join(", ")));
        }
    }
    for c in changes {
        if let ConfigChange::Regions { added, removed } = c {
            for (n, what) in [(*added, "added"), (*removed, "removed")] {
                if n > 0 {
                    parts.push(format!("{} {what}", count(n, "region", "regions")));
                }
            }
        }
    }
    if parts.is_empty() {
        return "config reloaded: no order or region changed".to_owned();
    }
    format!("config reloaded: {}", parts.join(", "))
}

/// `1 order`, `2 orders`: the log is English.
fn count(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alerts::orders::AssemblyPoint;
    use crate::regions::Localized;

    fn order(id: &str, times: &[&str]) -> Order {
        Order {
            id: id.into(),
            status: OrderStatus::Mandatory,
            targets: Vec::new(),
            issued_at: chrono::DateTime::parse_from_rfc3339("2023-11-06T08:00:00+02:00").expect("time"),
            expires_at: None,
            destination: None,
            transport: None,
            hotline: None,
            who: None,
            text: None,
            assembly_points: vec![AssemblyPoint {
                name: Localized { uk: "Вокзал".into(), en: None },
                address: None,
                place: None,
                at: None,
                at_from_place: false,
                times: times.iter().map(|t| t.to_string()).collect(),
            }],
        }
    }

    #[test]
    fn names_orders_fields_and_times() {
        let tree = crate::regions::tests_support::kharkiv_oblast();
        let old = vec![order("kupiansk", &["09:00"]), order("gone", &[])];
        let mut hotline = order("kupiansk", &["09:00", "15:00"]);
        hotline.hotline = Some("0 800".into());
        let new = vec![hotline, order("new-one", &[])];
        assert_eq!(
            changes(&old, &new, &tree, &tree),
            vec![
                ConfigChange::OrderChanged {
                    id: "kupiansk".into(),
                    fields: vec![Change::AssemblyPoints, Change::Hotline],
                    times_added: vec!["15:00".into()],
                    times_removed: vec![],
                },
                ConfigChange::OrderAdded { id: "new-one".into(), status: OrderStatus::Mandatory },
                ConfigChange::OrderRemoved { id: "gone".into() },
            ]
        );
        assert_eq!(changes(&new, &new, &tree, &tree), vec![], "the same files change nothing");
        assert_eq!(
            summary(&changes(&old, &new, &tree, &tree)),
            "config reloaded: 1 order added (new-one), 1 order changed (kupiansk), 1 order removed (gone)"
        );
        assert_eq!(summary(&[]), "config reloaded: no order or region changed");
        let regions = [ConfigChange::Regions { added: 3, removed: 1 }];
        assert_eq!(summary(&regions), "config reloaded: 3 regions added, 1 region removed");
    }
}
