//! Evacuation orders: operators write them into region files; this module turns one
//! set of orders into the next as events.
//!
//! Lifecycle (DESIGN §4): a new order → `started`; a change of content → `updated`
//! with revision + 1 and the list of what changed; `lifted` → `ended` (removal from
//! the files does not end an order);
//! `cancelled` → `cancelled`, sent to everyone the order reached. An order past its
//! `expires_at` ends as if lifted.

use std::collections::BTreeMap;

use chrono::{DateTime, FixedOffset, Utc};
use serde::{Deserialize, Serialize};

use super::{AlertKind, Event, EventDetail, EventId, Priority, Transition};
use crate::regions::{Localized, RegionId};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrderStatus {
    Mandatory,
    Recommended,
    Lifted,
    Cancelled,
}

impl OrderStatus {
    pub fn is_in_force(self) -> bool {
        matches!(self, OrderStatus::Mandatory | OrderStatus::Recommended)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            OrderStatus::Mandatory => "mandatory",
            OrderStatus::Recommended => "recommended",
            OrderStatus::Lifted => "lifted",
            OrderStatus::Cancelled => "cancelled",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AssemblyPoint {
    pub name: Localized,
    pub address: Option<Localized>,
    /// The settlement the point is in.
    pub place: Option<RegionId>,
    /// Latitude and longitude.
    pub at: Option<[f64; 2]>,
    /// True when `at` was not written but taken from the place (its surveyed point or
    /// the centre of its boundary): a new import moving it is no change of the order
    /// to tell residents of.
    #[serde(default)]
    pub at_from_place: bool,
    /// Departure times, "HH:MM".
    pub times: Vec<String>,
}

impl AssemblyPoint {
    /// Equal as the operator wrote them: an `at` taken from the place is left out.
    fn same_as_written(&self, other: &AssemblyPoint) -> bool {
        let written = |p: &AssemblyPoint| if p.at_from_place { None } else { p.at };
        self.name == other.name
            && self.address == other.address
            && self.place == other.place
            && written(self) == written(other)
            && self.times == other.times
    }
}

/// One evacuation order as validated from a region file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Order {
    pub id: String,
    pub status: OrderStatus,
    pub targets: Vec<RegionId>,
    pub issued_at: DateTime<FixedOffset>,
    pub expires_at: Option<DateTime<FixedOffset>>,
    pub destination: Option<Localized>,
    pub transport: Option<Localized>,
    pub hotline: Option<String>,
    /// Who the order is for, when not everyone ("families with children").
    pub who: Option<Localized>,
    /// Free text from the administration.
    pub text: Option<Localized>,
    pub assembly_points: Vec<AssemblyPoint>,
}

/// A part of an order that changed between two revisions.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Change {
    Status,
    Targets,
    Destination,
    AssemblyPoints,
    Transport,
    Hotline,
    Who,
    Text,
    Expiry,
}

impl Change {
    /// Its name in the store and in message ids (`evac-change-<name>`).
    pub fn as_str(self) -> &'static str {
        match self {
            Change::Status => "status",
            Change::Targets => "targets",
            Change::Destination => "destination",
            Change::AssemblyPoints => "assembly_points",
            Change::Transport => "transport",
            Change::Hotline => "hotline",
            Change::Who => "who",
            Change::Text => "text",
            Change::Expiry => "expiry",
        }
    }
}

impl Order {
    /// Every field that differs from `old`, in a stable order.
    pub fn changes_since(&self, old: &Order) -> Vec<Change> {
        let mut c = Vec::new();
        if self.status != old.status {
            c.push(Change::Status);
        }
        if self.targets != old.targets {
            c.push(Change::Targets);
        }
        if self.destination != old.destination {
            c.push(Change::Destination);
        }
        if self.assembly_points.len() != old.assembly_points.len()
            || self.assembly_points.iter().zip(&old.assembly_points).any(|(a, b)| !a.same_as_written(b))
        {
            c.push(Change::AssemblyPoints);
        }
        if self.transport != old.transport {
            c.push(Change::Transport);
        }
        if self.hotline != old.hotline {
            c.push(Change::Hotline);
        }
        if self.who != old.who {
            c.push(Change::Who);
        }
        if self.text != old.text {
            c.push(Change::Text);
        }
        if self.expires_at != old.expires_at || self.issued_at != old.issued_at {
            c.push(Change::Expiry);
        }
        c
    }

    fn is_expired(&self, now: DateTime<Utc>) -> bool {
        self.expires_at.is_some_and(|e| e <= now)
    }
}

/// What the book remembers of an order it has announced.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    pub revision: u32,
    pub order: Order,
    /// Every region the order ever targeted, so a cancellation reaches all who got it.
    pub reached: Vec<RegionId>,
    /// False once the order ended; kept so a cancellation after lifting still reaches
    /// everyone, and so a re-issued order gets a fresh revision.
    pub in_force: bool,
}

/// The orders announced so far. Persisted between runs so revisions, and with them
/// event ids, survive a restart.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct OrderBook {
    entries: BTreeMap<String, Entry>,
}

impl OrderBook {
    /// Every order in force: its subject and targets, to tell a new subscriber.
    pub fn in_force(&self) -> Vec<(String, Vec<RegionId>)> {
        self.entries
            .values()
            .filter(|e| e.in_force)
            .map(|e| (format!("evacuation:{}", e.order.id), e.order.targets.clone()))
            .collect()
    }

    /// Takes the full current set of orders (from every region file) and returns the
    /// events that bring residents up to date. Idempotent: applying the same set twice
    /// returns nothing the second time.
    pub fn apply(&mut self, orders: &[Order], now: DateTime<Utc>) -> Vec<Event> {
        let mut events = Vec::new();
        let mut seen = std::collections::BTreeSet::new();
        for order in orders {
            seen.insert(order.id.as_str());
            let in_force = order.status.is_in_force() && !order.is_expired(now);
            match (self.entries.get_mut(&order.id), order.status) {
                (Some(entry), OrderStatus::Cancelled) => {
                    if entry.order.status != OrderStatus::Cancelled {
                        entry.revision += 1;
                        entry.in_force = false;
                        merge_targets(&mut entry.reached, &order.targets);
                        let changes = order.changes_since(&entry.order);
                        entry.order = order.clone();
                        events.push(event(entry, Transition::Cancelled, changes, now));
                    }
                }
                (None, OrderStatus::Cancelled) => {
                    // Never announced, so nobody needs to hear it was withdrawn.
                }
                (Some(entry), _) if entry.in_force && !in_force => {
                    entry.in_force = false;
                    let changes = order.changes_since(&entry.order);
                    entry.order = order.clone();
                    events.push(event(entry, Transition::Ended, changes, now));
                }
                (Some(entry), _) if entry.in_force => {
                    let changes = order.changes_since(&entry.order);
                    if !changes.is_empty() {
                        entry.revision += 1;
                        merge_targets(&mut entry.reached, &order.targets);
                        entry.order = order.clone();
                        events.push(event(entry, Transition::Updated, changes, now));
                    }
                }
                (Some(entry), _) if in_force => {
                    // Re-issued after it ended: a new start with a fresh revision.
                    entry.revision += 1;
                    entry.in_force = true;
                    merge_targets(&mut entry.reached, &order.targets);
                    entry.order = order.clone();
                    events.push(event(entry, Transition::Started, Vec::new(), now));
                }
                (Some(entry), _) => {
                    // Still not in force; remember the latest text quietly.
                    entry.order = order.clone();
                }
                (None, _) if in_force => {
                    let entry =
                        Entry { revision: 1, order: order.clone(), reached: order.targets.clone(), in_force: true };
                    events.push(event(&entry, Transition::Started, Vec::new(), now));
                    self.entries.insert(order.id.clone(), entry);
                }
                (None, _) => {
                    // Lifted or expired before sirena ever announced it: nothing to say.
                }
            }
        }
        // An order gone from the files is not lifted: a file emptied or saved
        // half-written must not tell residents to stop evacuating. It stays in force
        // (the running daemon refuses such a change, `config::guard`) until its own
        // `expires_at`, or an operator's `status = "lifted"`.
        for (id, entry) in self.entries.iter_mut() {
            if entry.in_force && !seen.contains(id.as_str()) && entry.order.is_expired(now) {
                entry.in_force = false;
                events.push(event(entry, Transition::Ended, Vec::new(), now));
            }
        }
        events
    }

    /// Ids of the orders in force.
    pub fn in_force_ids(&self) -> std::collections::BTreeSet<String> {
        self.entries.iter().filter(|(_, e)| e.in_force).map(|(id, _)| id.clone()).collect()
    }

    /// Orders in force that `orders` (the files) no longer have.
    pub fn missing_from<'a>(&'a self, orders: &[Order]) -> Vec<&'a str> {
        let present: std::collections::BTreeSet<&str> = orders.iter().map(|o| o.id.as_str()).collect();
        self.entries
            .iter()
            .filter(|(id, e)| e.in_force && !present.contains(id.as_str()))
            .map(|(id, _)| id.as_str())
            .collect()
    }
}

fn merge_targets(reached: &mut Vec<RegionId>, targets: &[RegionId]) {
    for t in targets {
        if !reached.contains(t) {
            reached.push(t.clone());
        }
    }
}

fn event(entry: &Entry, transition: Transition, changes: Vec<Change>, now: DateTime<Utc>) -> Event {
    let order = &entry.order;
    let priority = match (transition, order.status) {
        (Transition::Started | Transition::Updated, OrderStatus::Mandatory) => Priority::MandatoryEvacuation,
        (Transition::Started, _) | (Transition::Cancelled, _) => Priority::OtherStart,
        (Transition::Updated, _) => Priority::Update,
        (Transition::Ended, _) => Priority::End,
    };
    let targets = match transition {
        Transition::Cancelled | Transition::Ended => entry.reached.clone(),
        _ => order.targets.clone(),
    };
    Event {
        id: EventId(format!("evacuation:{}:r{}:{}", order.id, entry.revision, transition.as_str())),
        kind: AlertKind::Evacuation,
        transition,
        revision: entry.revision,
        targets,
        reach: Default::default(),
        at: now,
        priority,
        detail: EventDetail::Order { order: Box::new(order.clone()), changes },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_change_is_named_as_it_is_stored() {
        for c in [
            Change::Status,
            Change::Targets,
            Change::Destination,
            Change::AssemblyPoints,
            Change::Transport,
            Change::Hotline,
            Change::Who,
            Change::Text,
            Change::Expiry,
        ] {
            assert_eq!(
                serde_json::to_value(c).ok().and_then(|v| v.as_str().map(str::to_owned)).as_deref(),
                Some(c.as_str())
            );
        }
    }

    fn rid(s: &str) -> RegionId {
        RegionId::parse(s).expect("valid test id")
    }

    fn order(status: OrderStatus) -> Order {
        Order {
            id: "kindrashivka".into(),
            status,
            targets: vec![rid("UA63080070000080622")],
            issued_at: DateTime::parse_from_rfc3339("2023-11-06T08:00:00+02:00").expect("valid date"),
            expires_at: None,
            destination: Some(Localized { uk: "Харків".into(), en: Some("Kharkiv".into()) }),
            transport: None,
            hotline: Some("0 800 000 000".into()),
            who: None,
            text: None,
            assembly_points: vec![],
        }
    }

    /// A pin taken from the place moves with an import (a surveyed point, a boundary):
    /// no change to tell residents of. A pin the operator wrote that moves is one.
    #[test]
    fn a_pin_taken_from_the_place_that_moves_is_no_change_of_the_order() {
        let point = |at: Option<[f64; 2]>, at_from_place: bool| AssemblyPoint {
            name: Localized { uk: "Клуб".into(), en: None },
            address: None,
            place: Some(rid("UA63080070010082928")),
            at,
            at_from_place,
            times: vec!["10:00".into()],
        };
        let with = |p: AssemblyPoint| Order { assembly_points: vec![p], ..order(OrderStatus::Mandatory) };
        let before = with(point(None, false));
        assert_eq!(with(point(Some([49.76, 37.58]), true)).changes_since(&before), vec![]);
        let written = with(point(Some([49.76, 37.58]), false));
        assert_eq!(written.changes_since(&before), vec![Change::AssemblyPoints]);
        assert_eq!(with(point(Some([49.77, 37.58]), false)).changes_since(&written), vec![Change::AssemblyPoints]);
    }

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2023-11-06T09:00:00Z").expect("valid date").to_utc()
    }

    /// Runs a sequence of order sets through one book and returns, per step, the
    /// event ids produced.
    fn check(steps: &[Vec<Order>]) -> Vec<Vec<String>> {
        let mut book = OrderBook::default();
        steps.iter().map(|orders| book.apply(orders, now()).into_iter().map(|e| e.id.0).collect()).collect()
    }

    #[test]
    fn lifecycle_started_updated_ended() {
        let mut changed = order(OrderStatus::Mandatory);
        changed.transport = Some(Localized { uk: "Автобуси".into(), en: None });
        let got = check(&[
            vec![order(OrderStatus::Mandatory)],
            vec![order(OrderStatus::Mandatory)],
            vec![changed.clone()],
            vec![order(OrderStatus::Lifted)],
            vec![order(OrderStatus::Lifted)],
        ]);
        assert_eq!(
            got,
            vec![
                vec!["evacuation:kindrashivka:r1:started".to_string()],
                vec![],
                vec!["evacuation:kindrashivka:r2:updated".to_string()],
                vec!["evacuation:kindrashivka:r2:ended".to_string()],
                vec![],
            ]
        );
    }

    #[test]
    fn removal_from_the_files_ends_nothing_and_cancel_reaches_everyone() {
        // A file emptied or cut short must not tell residents the order was lifted.
        let got = check(&[vec![order(OrderStatus::Recommended)], vec![], vec![order(OrderStatus::Lifted)]]);
        assert_eq!(got[1], Vec::<String>::new(), "gone from the files: still in force");
        assert_eq!(got[2], vec!["evacuation:kindrashivka:r1:ended".to_string()], "lifted by the operator");
        let mut book = OrderBook::default();
        book.apply(&[order(OrderStatus::Mandatory)], now());
        assert_eq!(book.missing_from(&[]), vec!["kindrashivka"]);
        assert_eq!(book.in_force_ids().len(), 1);
        let mut expiring = order(OrderStatus::Mandatory);
        expiring.id = "expiring".into();
        expiring.expires_at = Some(DateTime::parse_from_rfc3339("2023-11-06T10:00:00+00:00").expect("valid date"));
        book.apply(&[order(OrderStatus::Mandatory), expiring], now());
        let later = now() + chrono::Duration::hours(2);
        let ended = book.apply(&[order(OrderStatus::Mandatory)], later);
        assert_eq!(ended.len(), 1, "one gone from the files still ends at its own expiry");
        assert_eq!(ended[0].transition, Transition::Ended);

        let mut book = OrderBook::default();
        book.apply(&[order(OrderStatus::Mandatory)], now());
        let mut moved = order(OrderStatus::Mandatory);
        moved.targets = vec![rid("UA63080090000067457")];
        book.apply(std::slice::from_ref(&moved), now());
        moved.status = OrderStatus::Cancelled;
        let events = book.apply(&[moved], now());
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].transition, Transition::Cancelled);
        assert_eq!(
            events[0].targets,
            vec![rid("UA63080070000080622"), rid("UA63080090000067457")],
            "a cancellation reaches every region the order ever targeted"
        );
    }

    #[test]
    fn never_announced_lifted_or_cancelled_orders_are_silent() {
        assert_eq!(
            check(&[vec![order(OrderStatus::Lifted)], vec![order(OrderStatus::Cancelled)]]),
            vec![Vec::<String>::new(), vec![]]
        );
    }

    #[test]
    fn expiry_ends_an_order() {
        let mut o = order(OrderStatus::Mandatory);
        o.expires_at = Some(DateTime::parse_from_rfc3339("2023-11-06T10:00:00+00:00").expect("valid date"));
        let mut book = OrderBook::default();
        assert_eq!(book.apply(std::slice::from_ref(&o), now()).len(), 1);
        let later = now() + chrono::Duration::hours(2);
        let events = book.apply(&[o], later);
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].transition, Transition::Ended);
    }

    #[test]
    fn updates_list_what_changed() {
        let mut book = OrderBook::default();
        book.apply(&[order(OrderStatus::Recommended)], now());
        let mut o = order(OrderStatus::Mandatory);
        o.hotline = Some("0 800 111 111".into());
        let events = book.apply(&[o], now());
        match &events[0].detail {
            EventDetail::Order { changes, .. } => assert_eq!(changes, &vec![Change::Status, Change::Hotline]),
            other => panic!("unexpected detail {other:?}"),
        }
        assert_eq!(events[0].priority, Priority::MandatoryEvacuation);
    }
}
