//! Planning one chat's message: which of its claimed deliveries go out, merged into one
//! message, and which are superseded or expired instead.
//!
//! The rules (DESIGN §7), per subject (one alert occurrence or one order):
//! - a delivery past its class deadline is `expired`;
//! - when the subject's latest event closes it (an end or a cancellation) and the
//!   reader was never told its start, the start is `superseded`: the reader gets one
//!   line ("air raid in Kupiansk Raion, 10:02–10:05, ended") or nothing, by config; a
//!   cancellation of an order they never got is not news at all;
//! - otherwise only the latest event of the subject is said; a start merged with its
//!   updates is said as a start with the latest content.
//!
//! Everything left is one message, its parts in priority order, then by time.
//!
//! **Architecture invariant:** pure: rows and events in, a plan out.

use std::collections::BTreeMap;

use crate::alerts::{Event, Transition};
use crate::store::Claimed;

/// What the config says about a start that ended before it reached its reader.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SupersededMode {
    /// One line saying when it was and that it is over.
    Line,
    /// Nothing at all.
    Nothing,
}

/// A claimed delivery with its event.
#[derive(Clone, Debug)]
pub struct Row<'a> {
    pub claimed: &'a Claimed,
    pub event: &'a Event,
}

/// One part of the message, by index into the rows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PartRef {
    Event { row: usize, as_new: bool },
    Closed { start: usize, end: usize },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Goes out in this message; its fate is the send's.
    Carried,
    Superseded,
    Expired,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Plan {
    pub parts: Vec<PartRef>,
    /// One per row, in row order.
    pub verdicts: Vec<Verdict>,
}

impl Plan {
    pub fn carried(&self) -> impl Iterator<Item = usize> + '_ {
        self.indexes(Verdict::Carried)
    }

    pub fn indexes(&self, v: Verdict) -> impl Iterator<Item = usize> + '_ {
        self.verdicts.iter().enumerate().filter(move |(_, x)| **x == v).map(|(i, _)| i)
    }
}

fn is_opener(e: &Event) -> bool {
    matches!(e.transition, Transition::Started | Transition::Updated)
}

/// Plans the message for one chat's claimed rows at `now_ms`.
pub fn plan(rows: &[Row<'_>], now_ms: i64, mode: SupersededMode) -> Plan {
    let mut verdicts = vec![Verdict::Superseded; rows.len()];
    let expired = |i: usize| rows[i].claimed.deadline_ms.is_some_and(|d| d <= now_ms);
    let mut by_subject: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for (i, r) in rows.iter().enumerate() {
        by_subject.entry(r.event.subject()).or_default().push(i);
    }
    // (priority, time, part) so parts sort into message order.
    let mut parts = Vec::new();
    for (_, mut group) in by_subject {
        // Within a subject, later events were stored later.
        group.sort_by_key(|&i| rows[i].claimed.key.event);
        for &i in &group {
            if expired(i) {
                verdicts[i] = Verdict::Expired;
            }
        }
        let Some(&last) = group.last() else { continue };
        let openers: Vec<usize> = group.iter().copied().filter(|&i| is_opener(rows[i].event)).collect();
        let latest = rows[last].event;
        let part = if latest.is_closing() {
            if expired(last) {
                None
            } else if openers.is_empty() {
                Some(PartRef::Event { row: last, as_new: false })
            } else if latest.transition == Transition::Cancelled || mode == SupersededMode::Nothing {
                None
            } else {
                Some(PartRef::Closed { start: openers[0], end: last })
            }
        } else {
            // The latest opener still in time; a start among the merged rows makes the
            // update read as a start.
            let live = openers.iter().copied().rfind(|&i| !expired(i));
            live.map(|row| {
                let had_start = group.iter().any(|&i| rows[i].event.transition == Transition::Started);
                let as_new = had_start && rows[row].event.transition == Transition::Updated;
                PartRef::Event { row, as_new }
            })
        };
        if let Some(p) = part {
            let carried = match p {
                PartRef::Event { row, .. } => row,
                PartRef::Closed { end, .. } => end,
            };
            verdicts[carried] = Verdict::Carried;
            let r = &rows[carried];
            parts.push((r.claimed.priority, r.event.at, p));
        }
    }
    parts.sort();
    Plan { parts: parts.into_iter().map(|(_, _, p)| p).collect(), verdicts }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alerts::orders::{Order, OrderStatus};
    use crate::alerts::{AlertKind, EventDetail, EventId, Priority};
    use crate::channels::ChannelKind;
    use crate::messages::Lang;
    use crate::regions::RegionId;
    use crate::store::DeliveryKey;
    use chrono::DateTime;

    fn at(secs: i64) -> chrono::DateTime<chrono::Utc> {
        DateTime::from_timestamp(1_700_000_000 + secs, 0).expect("time")
    }

    fn alert(tag: &str, transition: Transition, priority: Priority, secs: i64) -> Event {
        Event {
            id: EventId(format!("air_raid:UA63000000000041885:{tag}:{}", transition.as_str())),
            kind: AlertKind::AirRaid,
            transition,
            revision: 1,
            targets: vec![RegionId::parse("UA63000000000041885").expect("id")],
            reach: Default::default(),
            at: at(secs),
            priority,
            detail: EventDetail::Alert {
                started_at: at(0),
                raw_kind: None,
                subject: None,
                level: None,
                threats: vec![],
                texts: vec![],
            },
        }
    }

    fn order(transition: Transition, revision: u32, priority: Priority) -> Event {
        let order = Order {
            id: "kindrashivka".into(),
            status: OrderStatus::Mandatory,
            targets: vec![],
            issued_at: at(0).fixed_offset(),
            expires_at: None,
            destination: None,
            transport: None,
            hotline: None,
            who: None,
            text: None,
            assembly_points: vec![],
        };
        Event {
            id: EventId(format!("evacuation:kindrashivka:r{revision}:{}", transition.as_str())),
            kind: AlertKind::Evacuation,
            transition,
            revision,
            targets: vec![],
            reach: Default::default(),
            at: at(i64::from(revision)),
            priority,
            detail: EventDetail::Order { order: Box::new(order), changes: vec![] },
        }
    }

    fn claimed(event: i64, priority: Priority, deadline_ms: Option<i64>) -> Claimed {
        Claimed {
            key: DeliveryKey { event, subscriber: 1 },
            kind: ChannelKind::TelegramChat,
            address: "1".into(),
            lang: Lang::Uk,
            priority,
            attempts: 1,
            deadline_ms,
        }
    }

    /// Plans events given as (event, deadline); rows get refs 1, 2, … in order.
    fn check(events: &[(Event, Option<i64>)], now_ms: i64, mode: SupersededMode) -> Plan {
        let claims: Vec<Claimed> =
            events.iter().enumerate().map(|(i, (e, d))| claimed(i as i64 + 1, e.priority, *d)).collect();
        let rows: Vec<Row<'_>> = claims.iter().zip(events).map(|(c, (e, _))| Row { claimed: c, event: e }).collect();
        plan(&rows, now_ms, mode)
    }

    use Verdict::*;

    #[test]
    fn several_subjects_become_one_message_in_priority_order() {
        let p = check(
            &[
                (alert("a", Transition::Started, Priority::OtherStart, 5), None),
                (order(Transition::Started, 1, Priority::MandatoryEvacuation), None),
                (alert("b", Transition::Started, Priority::LocalThreat, 1), None),
            ],
            0,
            SupersededMode::Line,
        );
        assert_eq!(p.verdicts, vec![Carried, Carried, Carried]);
        assert_eq!(
            p.parts,
            vec![
                PartRef::Event { row: 1, as_new: false },
                PartRef::Event { row: 2, as_new: false },
                PartRef::Event { row: 0, as_new: false }
            ]
        );
    }

    #[test]
    fn a_start_that_ended_before_it_was_told_is_one_line_or_nothing() {
        let events = [
            (alert("a", Transition::Started, Priority::OtherStart, 0), None),
            (alert("a", Transition::Ended, Priority::End, 180), None),
        ];
        let line = check(&events, 0, SupersededMode::Line);
        assert_eq!(line.verdicts, vec![Superseded, Carried]);
        assert_eq!(line.parts, vec![PartRef::Closed { start: 0, end: 1 }]);
        let nothing = check(&events, 0, SupersededMode::Nothing);
        assert_eq!(nothing.verdicts, vec![Superseded, Superseded]);
        assert!(nothing.parts.is_empty());
    }

    #[test]
    fn an_end_alone_is_said_and_deadlines_expire() {
        let end = check(&[(alert("a", Transition::Ended, Priority::End, 0), None)], 0, SupersededMode::Line);
        assert_eq!(end.parts, vec![PartRef::Event { row: 0, as_new: false }]);
        let late = check(
            &[
                (alert("a", Transition::Started, Priority::OtherStart, 0), Some(1_000)),
                (order(Transition::Started, 1, Priority::MandatoryEvacuation), None),
            ],
            2_000,
            SupersededMode::Line,
        );
        assert_eq!(late.verdicts, vec![Expired, Carried], "an evacuation order has no deadline");
        // An expired start that has since ended is still told in one line.
        let closed = check(
            &[
                (alert("a", Transition::Started, Priority::OtherStart, 0), Some(1_000)),
                (alert("a", Transition::Ended, Priority::End, 9), Some(9_000)),
            ],
            2_000,
            SupersededMode::Line,
        );
        assert_eq!(closed.verdicts, vec![Expired, Carried]);
        assert_eq!(closed.parts, vec![PartRef::Closed { start: 0, end: 1 }]);
    }

    #[test]
    fn orders_merge_to_their_latest_revision() {
        let merged = check(
            &[
                (order(Transition::Started, 1, Priority::MandatoryEvacuation), None),
                (order(Transition::Updated, 2, Priority::MandatoryEvacuation), None),
                (order(Transition::Updated, 3, Priority::MandatoryEvacuation), None),
            ],
            0,
            SupersededMode::Line,
        );
        assert_eq!(merged.verdicts, vec![Superseded, Superseded, Carried]);
        assert_eq!(merged.parts, vec![PartRef::Event { row: 2, as_new: true }]);
        let updates = check(
            &[
                (order(Transition::Updated, 2, Priority::Update), None),
                (order(Transition::Updated, 3, Priority::Update), None),
            ],
            0,
            SupersededMode::Line,
        );
        assert_eq!(updates.parts, vec![PartRef::Event { row: 1, as_new: false }], "told the start: an update");
        let cancelled = check(
            &[
                (order(Transition::Started, 1, Priority::MandatoryEvacuation), None),
                (order(Transition::Cancelled, 2, Priority::OtherStart), None),
            ],
            0,
            SupersededMode::Line,
        );
        assert_eq!(cancelled.verdicts, vec![Superseded, Superseded], "never told, so a cancellation is not news");
        assert!(cancelled.parts.is_empty());
    }
}
