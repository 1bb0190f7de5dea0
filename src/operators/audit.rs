//! What goes into the audit log, decided without IO: who, what kind of action, what.
//! `Operators` writes the operators' own entries; the pipeline writes those of order
//! changes and config reloads through [`of_order_event`] and [`reload`].

use crate::alerts::{Event, EventDetail};
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
        Ok((regions, orders)) => entry(CONFIG, "config_applied", format!("{regions} regions, {orders} orders")),
        Err(errors) => entry(CONFIG, "config_refused", errors.join("; ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
