//! What goes into the audit log, decided without IO: who, what kind of action, what.
//! `Operators` writes the operators' own entries; the pipeline writes those of order
//! changes and config reloads through [`of_order_event`], [`reload`] and
//! [`operators_changed`].

use crate::alerts::{Event, EventDetail};
use crate::messages::plural::count;
use crate::store::{AuditEntry, now_ms};

/// Who did it when no operator did: a region file's change.
pub const CONFIG: &str = "config";
/// Who did it when sirena itself did: a drill, a retention run.
pub const SYSTEM: &str = "system";

pub fn entry(who: impl Into<String>, action: &str, what: impl Into<String>) -> AuditEntry {
    AuditEntry { at_ms: now_ms(), who: who.into(), action: action.to_owned(), what: what.into() }
}

/// An order's start, update, end or cancellation, as its region file caused it.
pub fn of_order_event(event: &Event) -> Option<AuditEntry> {
    let EventDetail::Order { order, changes } = &event.detail else { return None };
    let mut what = format!("{} r{} ({})", order.id, event.revision, event.id);
    if !changes.is_empty() {
        let names: Vec<String> = changes.iter().map(|c| format!("{c:?}")).collect();
        what.push_str(&format!(": changed {}", names.join(", ")));
    }
    Some(entry(CONFIG, &format!("order_{}", event.transition.as_str()), what))
}

/// A reload: applied (with the counts it brought) or refused (with its errors).
pub fn reload(applied: Result<(usize, usize), &[String]>) -> AuditEntry {
    match applied {
        Ok((regions, orders)) => {
            let what = format!("{}, {}", count(regions, "region", "regions"), count(orders, "order", "orders"));
            entry(CONFIG, "config_applied", what)
        }
        Err(errors) => entry(CONFIG, "config_refused", errors.join("; ")),
    }
}

/// A reload that changed `[telegram] operators`: who was added, who removed. `None`
/// when the set is the same (order and repeats aside).
pub fn operators_changed(before: &[i64], after: &[i64]) -> Option<AuditEntry> {
    let listed = |ids: Vec<&i64>| ids.iter().map(|id| id.to_string()).collect::<Vec<_>>().join(", ");
    let mut added: Vec<&i64> = after.iter().filter(|id| !before.contains(id)).collect();
    let mut removed: Vec<&i64> = before.iter().filter(|id| !after.contains(id)).collect();
    for ids in [&mut added, &mut removed] {
        ids.sort();
        ids.dedup();
    }
    let what = match (added.is_empty(), removed.is_empty()) {
        (true, true) => return None,
        (false, true) => format!("added {}", listed(added)),
        (true, false) => format!("removed {}", listed(removed)),
        (false, false) => format!("added {}; removed {}", listed(added), listed(removed)),
    };
    Some(entry(CONFIG, "operators_changed", what))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_allowlist_change_names_who_came_and_who_went() {
        assert_eq!(operators_changed(&[1, 2], &[2, 1, 2]), None, "the same operators");
        let e = operators_changed(&[1, 2], &[2, 3, 4]).expect("changed");
        assert_eq!((e.who.as_str(), e.action.as_str()), (CONFIG, "operators_changed"));
        assert_eq!(e.what, "added 3, 4; removed 1");
        assert_eq!(operators_changed(&[], &[5]).map(|e| e.what), Some("added 5".to_owned()));
        assert_eq!(operators_changed(&[5], &[]).map(|e| e.what), Some("removed 5".to_owned()));
    }

    #[test]
    fn a_refused_reload_keeps_its_errors() {
        let e = reload(Err(&["kharkiv.toml:3:1: bad".to_owned()]));
        assert_eq!((e.who.as_str(), e.action.as_str()), (CONFIG, "config_refused"));
        assert!(e.what.contains("kharkiv.toml:3:1"));
        let e = reload(Ok((91, 2)));
        assert_eq!(e.action, "config_applied");
        assert_eq!(e.what, "91 regions, 2 orders");
    }
}
