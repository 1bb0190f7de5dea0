//! Coverage: which residents' places an alert's start or end changes (DESIGN §16).
//!
//! A place is **under alert** of a kind while an active alert of that kind overlaps
//! it: the alert's region contains the place (an oblast alert covers every village in
//! it), or lies inside it (a hromada alert is an alert in its raion and its oblast —
//! since November 2025 ukrainealarm raises no oblast-wide air alarms, so this is how a
//! resident who chose the oblast keeps hearing about it). A resident is told when a
//! place of theirs goes from not under alert to under alert (the start) and back (the
//! all-clear), whichever alert, source or level did it. Overlapping alerts therefore
//! ring once and clear once.
//!
//! [`delta`] answers, for one alert `r` and the other active alerts of its kind, which
//! places `r` alone decides: those it overlaps and no other alert does. For a start
//! they are newly under alert; for an end, newly clear. The answer is a [`Reach`]: the
//! subtree of `r` minus the subtrees of other alerts inside it and the places on the
//! way up to them, plus those of `r`'s ancestors that no other alert touches.
//!
//! **Architecture invariant:** pure; the tree and the active regions in, a `Reach` out.

use serde::{Deserialize, Serialize};

use crate::regions::{RegionId, RegionTree};

/// The places of an event besides "inside its targets": what to leave out of the
/// targets' subtrees and which enclosing places to add. Empty for events that reach
/// everything inside their targets (orders, and alerts that overlap nothing).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reach {
    /// Areas inside a target that another alert decides: no place in them is reached.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub except_areas: Vec<RegionId>,
    /// Single places inside a target, not inside any `except_areas`, that are not
    /// reached (they enclose another alert's region, so they stay under alert).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub except_places: Vec<RegionId>,
    /// Single places outside the targets that are reached: a target's enclosing
    /// regions (a raion, the oblast) that no other alert touches.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub enclosing: Vec<RegionId>,
    /// Reaches no one: other alerts already decide every place of the targets. The
    /// event is stored all the same, for residents who subscribe while it is on.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub quiet: bool,
}

impl Reach {
    pub fn is_empty(&self) -> bool {
        *self == Reach::default()
    }
}

/// True when the two regions overlap: one is inside (or is) the other.
pub fn overlaps(tree: &RegionTree, a: &RegionId, b: &RegionId) -> bool {
    tree.is_within(a, b) || tree.is_within(b, a)
}

/// The places only the alert on `r` overlaps, given the other active alerts of its
/// kind; `None` when it decides none (another alert covers the whole of `r`). The
/// targets of the answer are `[r]`.
pub fn delta<'a>(tree: &RegionTree, r: &RegionId, others: impl IntoIterator<Item = &'a RegionId>) -> Option<Reach> {
    let others: Vec<&RegionId> = others.into_iter().collect();
    if others.iter().any(|a| tree.is_within(r, a)) {
        return None;
    }
    // Other alerts inside r, keeping only the outermost: a nested one adds nothing.
    let inside: Vec<&RegionId> = others.iter().copied().filter(|a| tree.is_within(a, r)).collect();
    let mut except_areas: Vec<RegionId> = inside
        .iter()
        .filter(|a| !inside.iter().any(|b| b != *a && tree.is_within(a, b)))
        .map(|a| (*a).clone())
        .collect();
    except_areas.sort();
    except_areas.dedup();
    // The places between each of them and r, r included: they enclose an alert.
    let mut except_places: Vec<RegionId> = Vec::new();
    for a in &except_areas {
        for up in tree.ancestors(a).skip(1) {
            except_places.push(up.clone());
            if up == r {
                break;
            }
        }
    }
    except_places.sort();
    except_places.dedup();
    // r's enclosing regions, up to the first that holds another alert.
    let mut enclosing = Vec::new();
    for up in tree.ancestors(r).skip(1) {
        if others.iter().any(|a| tree.is_within(a, up)) {
            break;
        }
        enclosing.push(up.clone());
    }
    Some(Reach { except_areas, except_places, enclosing, quiet: false })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::regions::tests_support::{
        KHARKIV_CITY_H, KHARKIV_RAION, KINDRASHIVKA, KINDRASHIVKA_H, KUPIANSK_H, OBLAST, RAION, tree,
    };

    fn id(s: &str) -> RegionId {
        RegionId::parse(s).expect("id")
    }

    #[test]
    fn an_alert_alone_reaches_its_subtree_and_everything_above() {
        let t = tree();
        let reach = delta(&t, &id(KINDRASHIVKA_H), []).expect("decides");
        assert!(reach.except_areas.is_empty() && reach.except_places.is_empty());
        assert_eq!(reach.enclosing, vec![id(RAION), id(OBLAST)]);
    }

    #[test]
    fn an_alert_inside_another_decides_nothing() {
        let t = tree();
        assert_eq!(delta(&t, &id(RAION), [&id(OBLAST)]), None);
        assert_eq!(delta(&t, &id(RAION), [&id(RAION)]), None);
    }

    #[test]
    fn an_alert_around_another_leaves_out_its_area_and_the_way_up() {
        let t = tree();
        let reach = delta(&t, &id(OBLAST), [&id(KINDRASHIVKA_H), &id(KINDRASHIVKA)]).expect("decides");
        assert_eq!(reach.except_areas, vec![id(KINDRASHIVKA_H)], "the nested village adds nothing");
        assert_eq!(reach.except_places, {
            let mut v = vec![id(RAION), id(OBLAST)];
            v.sort();
            v
        });
        assert!(reach.enclosing.is_empty(), "an oblast has nothing above it");
    }

    #[test]
    fn a_sibling_alert_keeps_the_shared_enclosing_places() {
        let t = tree();
        let reach = delta(&t, &id(KUPIANSK_H), [&id(KINDRASHIVKA_H)]).expect("decides");
        assert!(reach.except_areas.is_empty());
        assert!(reach.enclosing.is_empty(), "the raion and the oblast already hold an alert");
        let reach = delta(&t, &id(KHARKIV_CITY_H), [&id(KINDRASHIVKA_H)]).expect("decides");
        assert_eq!(reach.enclosing, vec![id(KHARKIV_RAION)], "the oblast holds an alert, Kharkiv raion does not");
    }
}
