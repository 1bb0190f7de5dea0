//! Matcher: which subscribers an event reaches.
//!
//! An event on region R reaches every subscriber with a place equal to R or inside it
//! (DESIGN §5). A subscriber with several matching places still gets one message: the
//! result is a set of subscribers, not of places.
//!
//! The index maps every region to the subscribers whose places lie in it, with each
//! place's ancestry resolved when the place is added, so an oblast-wide event is one
//! posting list rather than a scan. It lives in memory, is built once at start, and
//! then follows subscribe and unsubscribe deltas; it is rebuilt only when the region
//! tree's ancestry changes.
//!
//! **Architecture invariant:** no IO. The caller hands in the tree and the places.

use std::collections::{BTreeSet, HashMap};

use crate::regions::{RegionId, RegionTree};
use crate::store::SubscriberId;

/// A change of who lives where, sent to the pipeline (which owns the index) by the
/// bot and the dispatcher after they changed the store. Applying one twice is harmless.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IndexDelta {
    /// The subscriber now has these places too. The pipeline also tells them at once of
    /// anything active there.
    Added { subscriber: SubscriberId, places: Vec<RegionId> },
    /// The subscriber no longer has these places.
    Removed { subscriber: SubscriberId, places: Vec<RegionId> },
    /// Blocked the bot or otherwise gone: out of every posting list.
    Deactivated(SubscriberId),
    /// Came back: their stored places count again.
    Reactivated(SubscriberId),
}

#[derive(Debug, Default)]
pub struct MatchIndex {
    /// Region → subscribers with a place equal to or inside it. Ordered sets: a delta
    /// is O(log n), and a posting list comes out sorted.
    by_area: HashMap<RegionId, BTreeSet<SubscriberId>>,
}

impl MatchIndex {
    /// Builds the index from every (subscriber, place) pair. A place unknown to the tree
    /// (a region removed from the files) still matches events on that exact region.
    pub fn build(tree: &RegionTree, places: impl IntoIterator<Item = (SubscriberId, RegionId)>) -> Self {
        let mut index = MatchIndex::default();
        for (sub, place) in places {
            index.add(tree, sub, &place);
        }
        index
    }

    /// A subscriber gained a place.
    pub fn add(&mut self, tree: &RegionTree, sub: SubscriberId, place: &RegionId) {
        for area in tree.ancestors(place) {
            self.by_area.entry(area.clone()).or_default().insert(sub);
        }
    }

    /// A subscriber lost a place; `remaining` are the places they keep, whose areas
    /// they stay in (a city and its hromada share the raion and the oblast).
    pub fn remove(&mut self, tree: &RegionTree, sub: SubscriberId, place: &RegionId, remaining: &[RegionId]) {
        for area in tree.ancestors(place) {
            if remaining.iter().any(|r| tree.is_within(r, area)) {
                continue;
            }
            if let Some(set) = self.by_area.get_mut(area) {
                set.remove(&sub);
                if set.is_empty() {
                    self.by_area.remove(area);
                }
            }
        }
    }

    /// Subscribers reached by an event on `targets`, each once, in id order.
    pub fn recipients(&self, targets: &[RegionId]) -> Vec<SubscriberId> {
        let mut lists = targets.iter().filter_map(|t| self.by_area.get(t));
        let Some(first) = lists.next() else { return Vec::new() };
        let mut out: Vec<SubscriberId> = first.iter().copied().collect();
        let mut merged = false;
        for list in lists {
            out.extend(list.iter().copied());
            merged = true;
        }
        if merged {
            out.sort_unstable();
            out.dedup();
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::regions::{Level, Localized, Region};

    fn region(id: &str, parent: Option<&str>, level: Level) -> Region {
        Region {
            id: RegionId::parse(id).expect("id"),
            parent: parent.map(|p| RegionId::parse(p).expect("id")),
            level,
            name: Localized { uk: id.into(), en: None },
            aliases: vec![],
            point: None,
            approx: false,
            feed_id: None,
            channel: None,
        }
    }

    const OBLAST: &str = "UA63000000000041885";
    const RAION: &str = "UA63080000000032022";
    const KINDRASHIVKA_H: &str = "UA63080070000080622";
    const KINDRASHIVKA: &str = "UA63080070010082928";
    const KUPIANSK_H: &str = "UA63080090000067457";
    const KUPIANSK: &str = "UA63080090010026457";
    const LVIV_OBLAST: &str = "UA46000000000026241";

    fn tree() -> RegionTree {
        RegionTree::build(vec![
            region(OBLAST, None, Level::Oblast),
            region(RAION, Some(OBLAST), Level::Raion),
            region(KINDRASHIVKA_H, Some(RAION), Level::Hromada),
            region(KINDRASHIVKA, Some(KINDRASHIVKA_H), Level::Village),
            region(KUPIANSK_H, Some(RAION), Level::Hromada),
            region(KUPIANSK, Some(KUPIANSK_H), Level::City),
            region(LVIV_OBLAST, None, Level::Oblast),
        ])
        .expect("tree")
    }

    /// Subscribers 1..: each with the listed places; returns recipient ids per target set.
    fn check(places: &[(i64, &str)], targets: &[&str]) -> Vec<i64> {
        let index = MatchIndex::build(&tree(), places.iter().map(|(s, p)| (*s, RegionId::parse(p).expect("id"))));
        let targets: Vec<RegionId> = targets.iter().map(|t| RegionId::parse(t).expect("id")).collect();
        index.recipients(&targets)
    }

    #[test]
    fn event_reaches_places_inside_and_only_once() {
        let places = [(1, KINDRASHIVKA), (2, KUPIANSK), (3, LVIV_OBLAST), (4, KUPIANSK), (4, KUPIANSK_H), (5, RAION)];
        assert_eq!(check(&places, &[OBLAST]), vec![1, 2, 4, 5]);
        assert_eq!(check(&places, &[KINDRASHIVKA_H]), vec![1]);
        assert_eq!(check(&places, &[KUPIANSK_H]), vec![2, 4]);
        assert_eq!(check(&places, &[KUPIANSK_H, KINDRASHIVKA_H]), vec![1, 2, 4]);
        // A raion-wide subscriber is not inside a hromada event.
        assert_eq!(check(&places, &[KUPIANSK]), vec![2, 4]);
        assert_eq!(check(&places, &[LVIV_OBLAST]), vec![3]);
    }

    #[test]
    fn deltas_keep_what_other_places_still_cover() {
        let tree = tree();
        let rid = |s: &str| RegionId::parse(s).expect("id");
        let mut index = MatchIndex::build(&tree, [(4, rid(KUPIANSK)), (4, rid(KUPIANSK_H)), (1, rid(KINDRASHIVKA))]);
        // Subscriber 4 drops the city but keeps its hromada: still in the raion.
        index.remove(&tree, 4, &rid(KUPIANSK), &[rid(KUPIANSK_H)]);
        assert_eq!(index.recipients(&[rid(KUPIANSK)]), Vec::<i64>::new());
        assert_eq!(index.recipients(&[rid(KUPIANSK_H)]), vec![4]);
        assert_eq!(index.recipients(&[rid(RAION)]), vec![1, 4]);
        index.remove(&tree, 4, &rid(KUPIANSK_H), &[]);
        assert_eq!(index.recipients(&[rid(OBLAST)]), vec![1]);
        index.add(&tree, 7, &rid(LVIV_OBLAST));
        assert_eq!(index.recipients(&[rid(LVIV_OBLAST), rid(OBLAST)]), vec![1, 7]);
        let oblast = index.recipients(&[rid(OBLAST)]);
        assert!(oblast.contains(&1) && !oblast.contains(&7));
    }
}
