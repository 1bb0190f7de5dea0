//! Matcher: which subscribers an event reaches.
//!
//! An event on region R reaches every subscriber with a place equal to R or inside it
//! (DESIGN §5), less the places its [`Reach`] leaves out, plus the enclosing places it
//! adds (coverage, `alerts::coverage`). A subscriber with several matching places
//! still gets one message: the result is a set of subscribers, not of places.
//!
//! The index maps every region to the subscribers whose places lie in it, with each
//! place's ancestry resolved when the place is added, so an oblast-wide event is one
//! posting list rather than a scan. It lives in memory, is built once at start, and
//! then follows subscribe and unsubscribe deltas; it is rebuilt only when the region
//! tree's ancestry changes.
//!
//! **Architecture invariant:** no IO. The caller hands in the tree and the places.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use crate::alerts::AlertKind;
use crate::alerts::coverage::Reach;
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
    /// The subscriber's place now takes only these kinds (`None`: every kind).
    Kinds { subscriber: SubscriberId, place: RegionId, kinds: Option<Vec<AlertKind>> },
}

/// The match index: the places that take every kind, and apart from them the places
/// whose resident chose only some kinds, once in the lists of each kind they take. An
/// event of kind K reaches the union of the first and K's lists.
#[derive(Debug, Default)]
pub struct MatchIndex {
    every: Postings,
    by_kind: BTreeMap<AlertKind, Postings>,
    /// The kinds of each filtered place, to find it again.
    filters: HashMap<(SubscriberId, RegionId), Vec<AlertKind>>,
}

impl MatchIndex {
    /// How many subscribers have exactly this place.
    pub fn holders(&self, place: &RegionId) -> usize {
        let filtered = self.filters.keys().filter(|(_, p)| p == place).count();
        self.every.holders(place) + filtered
    }

    /// Builds the index from every (subscriber, place) pair. A place unknown to the tree
    /// (a region removed from the files) still matches events on that exact region.
    pub fn build(tree: &RegionTree, places: impl IntoIterator<Item = (SubscriberId, RegionId)>) -> Self {
        let mut index = MatchIndex::default();
        for (sub, place) in places {
            index.add(tree, sub, &place);
        }
        index
    }

    /// A subscriber gained a place, for every kind. Adding a place they have is a no-op.
    pub fn add(&mut self, tree: &RegionTree, sub: SubscriberId, place: &RegionId) {
        if !self.filters.contains_key(&(sub, place.clone())) {
            self.every.add(tree, sub, place);
        }
    }

    /// A subscriber lost a place. Removing a place they do not have is a no-op.
    pub fn remove(&mut self, tree: &RegionTree, sub: SubscriberId, place: &RegionId) {
        match self.filters.remove(&(sub, place.clone())) {
            Some(kinds) => {
                for k in kinds {
                    if let Some(p) = self.by_kind.get_mut(&k) {
                        p.remove(tree, sub, place);
                    }
                }
            }
            None => self.every.remove(tree, sub, place),
        }
    }

    /// A subscriber's place now takes only `kinds` (`None`: every kind again). A place
    /// they do not have stays out: the change is for a place removed meanwhile.
    pub fn set_kinds(&mut self, tree: &RegionTree, sub: SubscriberId, place: &RegionId, kinds: Option<&[AlertKind]>) {
        let key = (sub, place.clone());
        let had = self.filters.contains_key(&key) || self.every.by_place.get(place).is_some_and(|s| s.contains(&sub));
        if !had {
            return;
        }
        self.remove(tree, sub, place);
        match kinds {
            None => self.every.add(tree, sub, place),
            Some(kinds) => {
                let mut kinds = kinds.to_vec();
                kinds.sort_unstable();
                kinds.dedup();
                for k in &kinds {
                    self.by_kind.entry(*k).or_default().add(tree, sub, place);
                }
                self.filters.insert(key, kinds);
            }
        }
    }

    /// Subscribers reached by an event of `kind` on `targets` with `reach`, each once,
    /// in id order: those with a place inside a target and outside what `reach` leaves
    /// out, or with one of `reach.enclosing` as a place — a place that takes `kind`.
    pub fn recipients_of(
        &self,
        tree: &RegionTree,
        kind: AlertKind,
        targets: &[RegionId],
        reach: &Reach,
    ) -> Vec<SubscriberId> {
        let mut out = self.every.recipients(tree, targets, reach);
        if let Some(filtered) = self.by_kind.get(&kind) {
            let more = filtered.recipients(tree, targets, reach);
            if !more.is_empty() {
                out.extend(more);
                out.sort_unstable();
                out.dedup();
            }
        }
        out
    }

    /// Subscribers reached by an event on `targets` with `reach` whatever its kind
    /// (kind filters not applied), each once, in id order.
    pub fn recipients(&self, tree: &RegionTree, targets: &[RegionId], reach: &Reach) -> Vec<SubscriberId> {
        let mut out = self.every.recipients(tree, targets, reach);
        if !self.by_kind.is_empty() {
            for p in self.by_kind.values() {
                out.extend(p.recipients(tree, targets, reach));
            }
            out.sort_unstable();
            out.dedup();
        }
        out
    }
}

/// Posting lists of places.
#[derive(Debug, Default)]
struct Postings {
    /// Region → subscriber → how many of the subscriber's places lie in it (itself
    /// included). Counting lets an event leave out the areas another alert decides and
    /// still reach a subscriber with a second place outside them. Ordered: a delta is
    /// O(log n), and a posting list comes out sorted.
    by_area: HashMap<RegionId, BTreeMap<SubscriberId, u32>>,
    /// Region → subscribers with exactly that place: an event that reaches a place
    /// itself but not its subtree (an oblast resident told of an alert in one raion).
    by_place: HashMap<RegionId, BTreeSet<SubscriberId>>,
}

impl Postings {
    fn holders(&self, place: &RegionId) -> usize {
        self.by_place.get(place).map_or(0, BTreeSet::len)
    }

    /// A subscriber gained a place. Adding a place they have is a no-op.
    fn add(&mut self, tree: &RegionTree, sub: SubscriberId, place: &RegionId) {
        if !self.by_place.entry(place.clone()).or_default().insert(sub) {
            return;
        }
        for area in tree.ancestors(place) {
            *self.by_area.entry(area.clone()).or_default().entry(sub).or_default() += 1;
        }
    }

    /// A subscriber lost a place. Removing a place they do not have is a no-op.
    fn remove(&mut self, tree: &RegionTree, sub: SubscriberId, place: &RegionId) {
        let Some(subs) = self.by_place.get_mut(place) else { return };
        if !subs.remove(&sub) {
            return;
        }
        if subs.is_empty() {
            self.by_place.remove(place);
        }
        for area in tree.ancestors(place) {
            let Some(counts) = self.by_area.get_mut(area) else { continue };
            if let Some(n) = counts.get_mut(&sub) {
                *n -= 1;
                if *n == 0 {
                    counts.remove(&sub);
                }
            }
            if counts.is_empty() {
                self.by_area.remove(area);
            }
        }
    }

    /// Subscribers reached by an event on `targets` with `reach`, each once, in id
    /// order: those with a place inside a target and outside what `reach` leaves out,
    /// and those with one of `reach.enclosing` as a place.
    fn recipients(&self, tree: &RegionTree, targets: &[RegionId], reach: &Reach) -> Vec<SubscriberId> {
        if reach.quiet {
            return Vec::new();
        }
        let mut out: Vec<SubscriberId> = Vec::new();
        let mut lists = 0;
        for target in targets {
            let Some(inside) = self.by_area.get(target) else { continue };
            lists += 1;
            let except_areas: Vec<&RegionId> =
                reach.except_areas.iter().filter(|e| tree.is_within(e, target)).collect();
            let except_places: Vec<&RegionId> =
                reach.except_places.iter().filter(|e| tree.is_within(e, target)).collect();
            if except_areas.is_empty() && except_places.is_empty() {
                out.extend(inside.keys().copied());
                continue;
            }
            // How many of each subscriber's places inside the target are left out; the
            // left-out areas and places are disjoint, so counts add up.
            let mut left_out: HashMap<SubscriberId, u32> = HashMap::new();
            for area in except_areas {
                for (sub, n) in self.by_area.get(area).into_iter().flatten() {
                    *left_out.entry(*sub).or_default() += n;
                }
            }
            for place in except_places {
                for sub in self.by_place.get(place).into_iter().flatten() {
                    *left_out.entry(*sub).or_default() += 1;
                }
            }
            out.extend(inside.iter().filter(|(sub, n)| **n > left_out.get(sub).copied().unwrap_or(0)).map(|(s, _)| *s));
        }
        for place in &reach.enclosing {
            if let Some(subs) = self.by_place.get(place) {
                lists += 1;
                out.extend(subs.iter().copied());
            }
        }
        if lists > 1 {
            out.sort_unstable();
            out.dedup();
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alerts::coverage::delta;
    use crate::regions::tests_support::*;

    fn rid(s: &str) -> RegionId {
        RegionId::parse(s).expect("id")
    }

    fn index(places: &[(i64, &str)]) -> MatchIndex {
        MatchIndex::build(&tree(), places.iter().map(|(s, p)| (*s, rid(p))))
    }

    /// Recipients of a plain event (no coverage reach) on `targets`.
    fn inside(index: &MatchIndex, targets: &[&str]) -> Vec<i64> {
        let targets: Vec<RegionId> = targets.iter().map(|t| rid(t)).collect();
        index.recipients(&tree(), &targets, &Reach::default())
    }

    #[test]
    fn event_reaches_places_inside_and_only_once() {
        let index =
            index(&[(1, KINDRASHIVKA), (2, KUPIANSK), (3, LVIV_OBLAST), (4, KUPIANSK), (4, KUPIANSK_H), (5, RAION)]);
        assert_eq!(inside(&index, &[OBLAST]), vec![1, 2, 4, 5]);
        assert_eq!(inside(&index, &[KINDRASHIVKA_H]), vec![1]);
        assert_eq!(inside(&index, &[KUPIANSK_H]), vec![2, 4]);
        assert_eq!(inside(&index, &[KUPIANSK_H, KINDRASHIVKA_H]), vec![1, 2, 4]);
        // A raion-wide subscriber is not inside a hromada event.
        assert_eq!(inside(&index, &[KUPIANSK]), vec![2, 4]);
        assert_eq!(inside(&index, &[LVIV_OBLAST]), vec![3]);
    }

    #[test]
    fn deltas_keep_what_other_places_still_cover_and_repeat_harmlessly() {
        let tree = tree();
        let mut index = index(&[(4, KUPIANSK), (4, KUPIANSK_H), (1, KINDRASHIVKA)]);
        // Subscriber 4 drops the city but keeps its hromada: still in the raion.
        index.remove(&tree, 4, &rid(KUPIANSK));
        index.remove(&tree, 4, &rid(KUPIANSK));
        assert_eq!(inside(&index, &[KUPIANSK]), Vec::<i64>::new());
        assert_eq!(inside(&index, &[KUPIANSK_H]), vec![4]);
        assert_eq!(inside(&index, &[RAION]), vec![1, 4]);
        index.remove(&tree, 4, &rid(KUPIANSK_H));
        assert_eq!(inside(&index, &[OBLAST]), vec![1]);
        index.add(&tree, 7, &rid(LVIV_OBLAST));
        index.add(&tree, 7, &rid(LVIV_OBLAST));
        assert_eq!(inside(&index, &[LVIV_OBLAST, OBLAST]), vec![1, 7]);
        index.remove(&tree, 7, &rid(LVIV_OBLAST));
        assert_eq!(inside(&index, &[LVIV_OBLAST]), Vec::<i64>::new(), "added twice, removed once: gone");
    }

    #[test]
    fn kind_filters_pick_places_and_survive_deltas() {
        use crate::alerts::AlertKind::{AirRaid, Artillery, Evacuation};
        let tree = tree();
        // 1 has Kindrashivka for evacuation only and Kupiansk for everything; 2 has
        // Kindrashivka for everything.
        let mut index = index(&[(1, KINDRASHIVKA), (1, KUPIANSK), (2, KINDRASHIVKA)]);
        index.set_kinds(&tree, 1, &rid(KINDRASHIVKA), Some(&[Evacuation]));
        let of = |index: &MatchIndex, kind, target: &str| {
            index.recipients_of(&tree, kind, &[rid(target)], &Reach::default())
        };
        assert_eq!(of(&index, AirRaid, KINDRASHIVKA_H), vec![2], "filtered out of an air raid there");
        assert_eq!(of(&index, Evacuation, KINDRASHIVKA_H), vec![1, 2]);
        assert_eq!(of(&index, AirRaid, RAION), vec![1, 2], "the unfiltered second place still hears it");
        assert_eq!(index.holders(&rid(KINDRASHIVKA)), 2);
        // Adding the filtered place again does not undo the filter; a second filter
        // replaces the first.
        index.add(&tree, 1, &rid(KINDRASHIVKA));
        assert_eq!(of(&index, AirRaid, KINDRASHIVKA_H), vec![2]);
        index.set_kinds(&tree, 1, &rid(KINDRASHIVKA), Some(&[AirRaid, Artillery]));
        assert_eq!(of(&index, AirRaid, KINDRASHIVKA_H), vec![1, 2]);
        assert_eq!(of(&index, Evacuation, KINDRASHIVKA_H), vec![2]);
        // Back to every kind, then removed: gone from every list.
        index.set_kinds(&tree, 1, &rid(KINDRASHIVKA), None);
        assert_eq!(of(&index, Evacuation, KINDRASHIVKA_H), vec![1, 2]);
        index.set_kinds(&tree, 1, &rid(KINDRASHIVKA), Some(&[Evacuation]));
        index.remove(&tree, 1, &rid(KINDRASHIVKA));
        assert_eq!(of(&index, Evacuation, KINDRASHIVKA_H), vec![2]);
        assert_eq!(index.recipients(&tree, &[rid(KINDRASHIVKA_H)], &Reach::default()), vec![2]);
        // A filter for a place the subscriber no longer has adds nothing.
        index.set_kinds(&tree, 1, &rid(KINDRASHIVKA), Some(&[Evacuation]));
        assert_eq!(of(&index, Evacuation, KINDRASHIVKA_H), vec![2]);
        assert_eq!(of(&index, AirRaid, OBLAST), vec![1, 2]);
    }

    #[test]
    fn coverage_reach_leaves_out_decided_places_but_not_a_second_place() {
        let tree = tree();
        // 1 in Kindrashivka, 2 in Kupiansk, 3 in Kharkiv, 4 with Kindrashivka and Kharkiv,
        // 5 chose the raion, 6 the oblast.
        let index = index(&[
            (1, KINDRASHIVKA),
            (2, KUPIANSK),
            (3, KHARKIV),
            (4, KINDRASHIVKA),
            (4, KHARKIV),
            (5, RAION),
            (6, OBLAST),
        ]);
        // An oblast alert while Kindrashivka hromada is under alert.
        let reach = delta(&tree, &rid(OBLAST), [&rid(KINDRASHIVKA_H)]).expect("decides");
        assert_eq!(index.recipients(&tree, &[rid(OBLAST)], &reach), vec![2, 3, 4]);
        // A hromada alert alone: its residents, and those who chose its raion or oblast.
        let reach = delta(&tree, &rid(KUPIANSK_H), []).expect("decides");
        assert_eq!(index.recipients(&tree, &[rid(KUPIANSK_H)], &reach), vec![2, 5, 6]);
        // The same while the next hromada is under alert: the raion and oblast already are.
        let reach = delta(&tree, &rid(KUPIANSK_H), [&rid(KINDRASHIVKA_H)]).expect("decides");
        assert_eq!(index.recipients(&tree, &[rid(KUPIANSK_H)], &reach), vec![2]);
    }
}
