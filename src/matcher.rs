//! Matcher: which subscribers an event reaches.
//!
//! An event on region R reaches every subscriber with a place equal to R or inside it
//! (DESIGN §5). A subscriber with several matching places still gets one message: the
//! result is a set of subscribers, not of places.
//!
//! The index maps every region to the subscribers whose places lie in it, with each
//! place's ancestry resolved when the index is built, so an oblast-wide event is a
//! union of a few posting lists rather than a scan.
//!
//! **Architecture invariant:** no IO. The caller loads places from the store and hands
//! them in with the region tree.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use crate::regions::{RegionId, RegionTree};
use crate::store::{Subscriber, SubscriberId};

#[derive(Debug, Default)]
pub struct MatchIndex {
    by_region: HashMap<RegionId, BTreeSet<SubscriberId>>,
    subscribers: BTreeMap<SubscriberId, Subscriber>,
}

impl MatchIndex {
    /// Builds the index from every (subscriber, place) pair. A place unknown to the tree
    /// (a region removed from the files) still matches events on that exact region.
    pub fn build(tree: &RegionTree, places: impl IntoIterator<Item = (Subscriber, RegionId)>) -> Self {
        let mut index = MatchIndex::default();
        for (sub, place) in places {
            for area in tree.ancestors(&place) {
                index.by_region.entry(area.clone()).or_default().insert(sub.id);
            }
            index.subscribers.entry(sub.id).or_insert(sub);
        }
        index
    }

    /// Subscribers reached by an event on `targets`, each once, in id order.
    pub fn recipients(&self, targets: &[RegionId]) -> Vec<&Subscriber> {
        let ids: BTreeSet<SubscriberId> =
            targets.iter().filter_map(|t| self.by_region.get(t)).flatten().copied().collect();
        ids.iter().filter_map(|id| self.subscribers.get(id)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::messages::Lang;
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

    fn sub(id: i64) -> Subscriber {
        Subscriber { id, channel: "telegram".into(), address: id.to_string(), lang: Lang::Uk, active: true }
    }

    /// Subscribers 1..: each with the listed places; returns recipient ids per target set.
    fn check(places: &[(i64, &str)], targets: &[&str]) -> Vec<i64> {
        let index = MatchIndex::build(&tree(), places.iter().map(|(s, p)| (sub(*s), RegionId::parse(p).expect("id"))));
        let targets: Vec<RegionId> = targets.iter().map(|t| RegionId::parse(t).expect("id")).collect();
        index.recipients(&targets).iter().map(|s| s.id).collect()
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
}
