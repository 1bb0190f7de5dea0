//! Quiet hours: a resident's night, in Kyiv time, when messages arrive without a
//! sound. Nothing is ever withheld: a quiet message is sent at once, only with
//! `disable_notification`. A new threat or evacuation order over the resident's own
//! (first) place always rings.
//!
//! **Architecture invariant:** no IO; the lane hands in the time, the parts and the tree.

use std::fmt;

use chrono::{DateTime, Timelike, Utc};

use crate::alerts::{EventDetail, Transition};
use crate::messages::{Part, kyiv};
use crate::regions::{RegionId, RegionTree};

/// From `from` to `to`, minutes after midnight in Kyiv; `from > to` crosses midnight.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QuietHours {
    pub from: u16,
    pub to: u16,
}

impl QuietHours {
    /// Parses `23:00-07:00` (also `23:00–7:00`, spaces allowed). Hours 0–23, minutes
    /// 0–59, both ends with minutes, and not an empty span.
    pub fn parse(s: &str) -> Option<QuietHours> {
        let s = s.trim();
        let (a, b) = s.split_once(['-', '–', '—'])?;
        let (from, to) = (minutes(a.trim())?, minutes(b.trim())?);
        (from != to).then_some(QuietHours { from, to })
    }

    /// Minutes of a day as they are stored (and range-checked when read back).
    pub fn from_stored(from: i64, to: i64) -> Option<QuietHours> {
        let ok = |m: i64| u16::try_from(m).ok().filter(|m| *m < 24 * 60);
        let (from, to) = (ok(from)?, ok(to)?);
        (from != to).then_some(QuietHours { from, to })
    }

    /// Whether `at` falls in the quiet hours, in Kyiv's time of that day (summer or winter).
    pub fn contains(&self, at: DateTime<Utc>) -> bool {
        let local = kyiv(at);
        let m = (local.hour() * 60 + local.minute()) as u16;
        if self.from < self.to { self.from <= m && m < self.to } else { m >= self.from || m < self.to }
    }
}

impl fmt::Display for QuietHours {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:02}:{:02}–{:02}:{:02}", self.from / 60, self.from % 60, self.to / 60, self.to % 60)
    }
}

fn minutes(s: &str) -> Option<u16> {
    let (h, m) = s.split_once(':')?;
    if h.is_empty() || h.len() > 2 || m.len() != 2 {
        return None;
    }
    let (h, m): (u16, u16) = (h.parse().ok()?, m.parse().ok()?);
    (h < 24 && m < 60).then_some(h * 60 + m)
}

/// Whether a message goes out without a sound: when the renderer made it quiet
/// (`rendered_silent`: all-clears, small updates), or inside the reader's quiet hours —
/// unless it tells of a new threat or order over their `home`, which always rings.
pub fn silent(
    rendered_silent: bool,
    quiet: Option<(QuietHours, Option<&RegionId>)>,
    parts: &[Part<'_>],
    tree: &RegionTree,
    now: DateTime<Utc>,
) -> bool {
    if rendered_silent {
        return true;
    }
    let Some((hours, home)) = quiet else { return false };
    if !hours.contains(now) {
        return false;
    }
    let rings_at_home = |p: &Part<'_>| match *p {
        Part::Closed { .. } => false,
        Part::Event { event, as_new } => {
            let new = match (&event.detail, event.transition) {
                (_, Transition::Started) => true,
                (EventDetail::Order { .. }, Transition::Updated) => true,
                (_, Transition::Updated) => as_new,
                _ => false,
            };
            new && home.is_some_and(|h| event.targets.iter().any(|t| tree.is_within(h, t)))
        }
    };
    !parts.iter().any(rings_at_home)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alerts::{AlertKind, Event, EventId, Priority};
    use crate::regions::tests_support::*;
    use chrono::TimeZone;

    fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, mo, d, h, mi, 0).single().expect("time")
    }

    #[test]
    fn parses_spans_and_refuses_nonsense() {
        assert_eq!(QuietHours::parse("23:00-07:00"), Some(QuietHours { from: 23 * 60, to: 7 * 60 }));
        assert_eq!(QuietHours::parse(" 7:30 – 9:05 "), Some(QuietHours { from: 450, to: 545 }));
        for bad in ["25:00-7", "23:00-7", "23:60-07:00", "", "-", "23:00", "07:00-07:00", "a:bc-07:00", "123:00-1:00"] {
            assert_eq!(QuietHours::parse(bad), None, "{bad:?}");
        }
        assert_eq!(QuietHours { from: 23 * 60, to: 7 * 60 }.to_string(), "23:00–07:00");
        assert_eq!(QuietHours::from_stored(1380, 420), Some(QuietHours { from: 1380, to: 420 }));
        assert_eq!(QuietHours::from_stored(1440, 420), None);
    }

    fn event(kind: AlertKind, transition: Transition, target: &str) -> Event {
        let at = utc(2026, 1, 10, 22, 0);
        Event {
            id: EventId(format!("{kind}:{target}:t:{}", transition.as_str())),
            kind,
            transition,
            revision: 1,
            targets: vec![RegionId::parse(target).expect("id")],
            reach: Default::default(),
            at,
            priority: Priority::OtherStart,
            detail: EventDetail::Alert {
                started_at: at,
                raw_kind: None,
                subject: None,
                level: None,
                threats: vec![],
                texts: vec![],
            },
        }
    }

    #[test]
    fn quiet_hours_hush_all_but_a_new_threat_at_home() {
        let tree = tree();
        let night = QuietHours { from: 23 * 60, to: 7 * 60 };
        let home = RegionId::parse(KINDRASHIVKA).expect("id");
        let quiet = Some((night, Some(&home)));
        let (in_night, by_day) = (utc(2026, 1, 10, 23, 0), utc(2026, 1, 10, 10, 0));
        let raid_here = event(AlertKind::AirRaid, Transition::Started, RAION);
        let raid_elsewhere = event(AlertKind::AirRaid, Transition::Started, KHARKIV_RAION);
        let update_here = event(AlertKind::AirRaid, Transition::Updated, RAION);
        let end_here = event(AlertKind::AirRaid, Transition::Ended, RAION);
        let part = |e| Part::Event { event: e, as_new: false };
        // A new threat over home rings at night; an alert for another place, an
        // update and an all-clear are hushed; by day the renderer decides.
        assert!(!silent(false, quiet, &[part(&raid_here)], &tree, in_night));
        assert!(silent(false, quiet, &[part(&raid_elsewhere)], &tree, in_night));
        assert!(!silent(false, quiet, &[part(&raid_elsewhere)], &tree, by_day));
        assert!(silent(false, quiet, &[part(&update_here)], &tree, in_night));
        assert!(!silent(false, quiet, &[Part::Event { event: &update_here, as_new: true }], &tree, in_night));
        assert!(silent(true, quiet, &[part(&end_here)], &tree, in_night));
        assert!(!silent(false, quiet, &[part(&raid_elsewhere), part(&raid_here)], &tree, in_night), "one loud part");
        assert!(silent(false, Some((night, None)), &[part(&raid_here)], &tree, in_night), "no home: all quiet");
        assert!(!silent(false, None, &[part(&raid_elsewhere)], &tree, in_night), "no quiet hours");
        assert!(silent(true, None, &[part(&end_here)], &tree, by_day));
    }

    #[test]
    fn crosses_midnight_in_kyiv_time_winter_and_summer() {
        let night = QuietHours { from: 23 * 60, to: 7 * 60 };
        // Winter: Kyiv is UTC+2. 21:30 UTC is 23:30 there; 04:59 UTC is 06:59.
        assert!(night.contains(utc(2026, 1, 10, 21, 30)));
        assert!(night.contains(utc(2026, 1, 10, 4, 59)));
        assert!(!night.contains(utc(2026, 1, 10, 5, 0)), "07:00 Kyiv is over");
        assert!(!night.contains(utc(2026, 1, 10, 20, 59)), "22:59 Kyiv not yet");
        // Summer: UTC+3. 20:30 UTC is 23:30 there; 21:30 UTC in winter would be too.
        assert!(night.contains(utc(2026, 7, 10, 20, 30)));
        assert!(!night.contains(utc(2026, 7, 10, 4, 0)), "07:00 Kyiv in summer");
        assert!(night.contains(utc(2026, 7, 10, 3, 59)));
        // The night DST begins (29 March 2026, 03:00 → 04:00 at 01:00 UTC).
        assert!(night.contains(utc(2026, 3, 29, 0, 30)), "02:30 EET");
        assert!(night.contains(utc(2026, 3, 29, 3, 59)), "06:59 EEST");
        assert!(!night.contains(utc(2026, 3, 29, 4, 0)), "07:00 EEST");
        let day = QuietHours { from: 13 * 60, to: 15 * 60 };
        assert!(day.contains(utc(2026, 1, 10, 11, 0)));
        assert!(!day.contains(utc(2026, 1, 10, 13, 0)));
    }
}
