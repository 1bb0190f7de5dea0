//! Regions: the KATOTTG tree every alert, order and subscriber place is expressed in.
//!
//! The tree is plain data, built from the operator's region files by [`crate::config`]
//! and replaced whole on a reload. It answers two questions for the core: "is this
//! place inside that region?" (through [`RegionTree::ancestors`]) and "which region does
//! this feed id or name mean?" (through [`RegionTree::by_feed_id`] and [`names`]).
//!
//! **Architecture invariant:** this module does no IO; it knows nothing of files,
//! feeds or subscribers.

pub mod codifier;
pub mod crosswalk;
pub mod generated;
pub mod geo;
pub mod names;
pub mod translit;

use std::collections::{BTreeMap, HashMap};
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::messages::Lang;

/// A KATOTTG code: `UA` followed by 17 digits, e.g. `UA63080070010082928`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct RegionId(String);

/// Why a string is not a KATOTTG code.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("`{0}` is not a KATOTTG code (expected `UA` followed by 17 digits)")]
pub struct BadRegionId(pub String);

impl RegionId {
    pub fn parse(s: &str) -> Result<Self, BadRegionId> {
        let s = s.trim();
        let digits = s.strip_prefix("UA").ok_or_else(|| BadRegionId(s.to_owned()))?;
        if digits.len() == 17 && digits.bytes().all(|b| b.is_ascii_digit()) {
            Ok(RegionId(s.to_owned()))
        } else {
            Err(BadRegionId(s.to_owned()))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for RegionId {
    type Error = BadRegionId;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        RegionId::parse(&s)
    }
}

impl From<RegionId> for String {
    fn from(id: RegionId) -> String {
        id.0
    }
}

impl fmt::Display for RegionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// KATOTTG levels. The codifier's categories are noted beside each.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    /// O: an oblast or the Autonomous Republic of Crimea.
    Oblast,
    /// K: Kyiv or Sevastopol, cities with oblast status.
    SpecialCity,
    /// P: a raion.
    Raion,
    /// H: a territorial hromada.
    Hromada,
    /// M: a city.
    City,
    /// X: a settlement (formerly urban-type settlement).
    Settlement,
    /// C: a village.
    Village,
    /// B: a district of a city.
    CityDistrict,
}

impl Level {
    /// Levels that stand at the top of the tree and have no parent.
    pub fn is_top(self) -> bool {
        matches!(self, Level::Oblast | Level::SpecialCity)
    }

    /// Levels that a person lives in (a settlement of any kind).
    pub fn is_settlement(self) -> bool {
        matches!(self, Level::City | Level::Settlement | Level::Village | Level::SpecialCity | Level::CityDistrict)
    }
}

/// A name in the languages sirena speaks. Ukrainian is the official name and required;
/// English falls back to it when absent.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Localized {
    pub uk: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub en: Option<String>,
}

impl Localized {
    pub fn get(&self, lang: Lang) -> &str {
        match lang {
            Lang::Uk => &self.uk,
            Lang::En => self.en.as_deref().unwrap_or(&self.uk),
        }
    }
}

/// A geographic point, latitude then longitude, in degrees (WGS 84).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Point {
    pub lat: f64,
    pub lon: f64,
}

/// One region of the tree.
#[derive(Clone, Debug, PartialEq)]
pub struct Region {
    pub id: RegionId,
    pub parent: Option<RegionId>,
    pub level: Level,
    pub name: Localized,
    pub aliases: Vec<String>,
    pub point: Option<Point>,
    /// True when `point` is an estimate; such a point is never used for polygon matching.
    pub approx: bool,
    /// alerts.in.ua `location_uid`, which is the same id space as ukrainealarm `regionId`.
    pub feed_id: Option<u32>,
    /// The region's Telegram channel, where every event reaching the region is posted.
    pub channel: Option<RegionChannel>,
}

impl Region {
    /// A region with only its place in the tree and a name (its id): for tools and
    /// tests that build a tree by hand.
    pub fn bare(id: RegionId, parent: Option<RegionId>, level: Level) -> Region {
        Region {
            name: Localized { uk: id.as_str().to_owned(), en: None },
            id,
            parent,
            level,
            aliases: Vec::new(),
            point: None,
            approx: false,
            feed_id: None,
            channel: None,
        }
    }
}

/// A region's Telegram channel as configured.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RegionChannel {
    /// `@username` or `-100…`, already checked.
    pub address: String,
    pub lang: Lang,
}

/// The whole region tree. Built once per config load; cheap to share behind an `Arc`.
#[derive(Clone, Debug, Default)]
pub struct RegionTree {
    regions: BTreeMap<RegionId, Region>,
    by_feed: HashMap<u32, RegionId>,
    index: names::NameIndex,
    /// Shared locations to places: surveyed points in an R-tree, and boundaries.
    geo: geo::Locator,
}

/// Structural problems found while building a tree. Config validation turns each into
/// an error that names the file and line of the offending region.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum TreeError {
    #[error("region {0} is defined twice")]
    Duplicate(RegionId),
    #[error("region {id} names parent {parent}, which is not defined")]
    MissingParent { id: RegionId, parent: RegionId },
    #[error("region {0} is a {1:?} and needs a parent")]
    NeedsParent(RegionId, Level),
    #[error("region {0} is its own ancestor (a cycle of parents)")]
    Cycle(RegionId),
    #[error("feed id {feed_id} is given to both {first} and {second}")]
    DuplicateFeedId { feed_id: u32, first: RegionId, second: RegionId },
}

impl RegionTree {
    /// Builds a tree, reporting every structural error at once.
    pub fn build(regions: Vec<Region>) -> Result<Self, Vec<TreeError>> {
        let mut errors = Vec::new();
        let mut map = BTreeMap::new();
        let mut by_feed: HashMap<u32, RegionId> = HashMap::new();
        for r in regions {
            if let Some(feed_id) = r.feed_id {
                if let Some(first) = by_feed.get(&feed_id) {
                    errors.push(TreeError::DuplicateFeedId { feed_id, first: first.clone(), second: r.id.clone() });
                } else {
                    by_feed.insert(feed_id, r.id.clone());
                }
            }
            if map.contains_key(&r.id) {
                errors.push(TreeError::Duplicate(r.id.clone()));
                continue;
            }
            map.insert(r.id.clone(), r);
        }
        for r in map.values() {
            match &r.parent {
                Some(p) if !map.contains_key(p) => {
                    errors.push(TreeError::MissingParent { id: r.id.clone(), parent: p.clone() })
                }
                None if !r.level.is_top() => errors.push(TreeError::NeedsParent(r.id.clone(), r.level)),
                _ => {}
            }
        }
        if errors.is_empty() {
            // Every chain must reach the top; a chain longer than the tree is a cycle.
            for r in map.values() {
                let mut cur = r;
                let mut steps = 0;
                while let Some(p) = cur.parent.as_ref().and_then(|p| map.get(p)) {
                    steps += 1;
                    if steps > map.len() {
                        errors.push(TreeError::Cycle(r.id.clone()));
                        break;
                    }
                    cur = p;
                }
            }
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        let index = names::NameIndex::build(map.values());
        let mut tree = RegionTree { regions: map, by_feed, index, geo: geo::Locator::default() };
        tree.set_geo(geo::Boundaries::default(), geo::DEFAULT_RADIUS_KM);
        Ok(tree)
    }

    /// Indexes the surveyed points again with these boundaries and this radius.
    pub fn set_geo(&mut self, boundaries: geo::Boundaries, radius_km: f64) {
        self.geo = geo::Locator::new(self, boundaries, radius_km);
    }

    /// Where a shared location is ([`geo::Locator::locate`]).
    pub fn locate(&self, lat: f64, lon: f64) -> geo::Located {
        self.geo.locate(self, lat, lon)
    }

    pub fn locator(&self) -> &geo::Locator {
        &self.geo
    }

    pub fn get(&self, id: &RegionId) -> Option<&Region> {
        self.regions.get(id)
    }

    pub fn contains(&self, id: &RegionId) -> bool {
        self.regions.contains_key(id)
    }

    pub fn len(&self) -> usize {
        self.regions.len()
    }

    pub fn is_empty(&self) -> bool {
        self.regions.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = &Region> {
        self.regions.values()
    }

    pub fn by_feed_id(&self, feed_id: u32) -> Option<&Region> {
        self.by_feed.get(&feed_id).and_then(|id| self.regions.get(id))
    }

    /// The region itself followed by its parent, grandparent, … up to the oblast.
    /// Stops at an unknown id, and guards against a cycle in hand-written files.
    pub fn ancestors<'a>(&'a self, id: &'a RegionId) -> impl Iterator<Item = &'a RegionId> + 'a {
        let mut next = Some(id);
        let mut steps = 0;
        std::iter::from_fn(move || {
            let cur = next?;
            steps += 1;
            if steps > 16 {
                return None;
            }
            next = self.regions.get(cur).and_then(|r| r.parent.as_ref());
            Some(cur)
        })
    }

    /// A hash of every (region, parent) pair: equal for two trees in which every place
    /// has the same ancestry, so the match index survives a reload that only changed
    /// names or orders.
    pub fn ancestry_fingerprint(&self) -> u64 {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        for r in self.regions.values() {
            r.id.hash(&mut h);
            r.parent.hash(&mut h);
        }
        h.finish()
    }

    /// True for the levels a resident lives in or next to (a hromada or a settlement):
    /// an alert there is a threat in their own place, not a raion- or oblast-wide one.
    pub fn is_local(&self, id: &RegionId) -> bool {
        self.regions.get(id).is_some_and(|r| {
            matches!(r.level, Level::Hromada) || (r.level.is_settlement() && r.level != Level::SpecialCity)
        })
    }

    /// True when `place` is `area` or lies inside it.
    pub fn is_within(&self, place: &RegionId, area: &RegionId) -> bool {
        self.ancestors(place).any(|a| a == area)
    }

    /// Name of a region in a language, with the id itself as a last resort.
    pub fn name(&self, id: &RegionId, lang: Lang) -> String {
        self.regions.get(id).map(|r| r.name.get(lang).to_owned()).unwrap_or_else(|| id.to_string())
    }

    /// "Кіндрашівка, Кіндрашівська громада, Куп’янський район": the name with enough
    /// of its ancestry to tell two villages of the same name apart.
    pub fn qualified_name(&self, id: &RegionId, lang: Lang) -> String {
        self.ancestors(id)
            .filter_map(|a| self.regions.get(a))
            .filter(|r| r.level != Level::Oblast || r.id == *id)
            .map(|r| r.name.get(lang).to_owned())
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// "Куп’янськ, Куп’янська громада, Куп’янський район, Харківська область": the
    /// name with its whole ancestry, for choosing among places of the whole country.
    pub fn full_name(&self, id: &RegionId, lang: Lang) -> String {
        self.ancestors(id)
            .filter_map(|a| self.regions.get(a))
            .map(|r| r.name.get(lang).to_owned())
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// Finds regions by a name typed by a person, or by KATOTTG code: every region of
    /// the name when it is one ([`names::MatchKind::Exact`]), else the nearest names,
    /// marked fuzzy for the caller to offer rather than act on.
    pub fn search(&self, query: &str) -> Search<'_> {
        if let Ok(id) = RegionId::parse(query) {
            return Search { kind: names::MatchKind::Exact, regions: self.regions.get(&id).into_iter().collect() };
        }
        let found = self.index.search(query);
        Search { kind: found.kind, regions: found.ids.iter().filter_map(|id| self.regions.get(id)).collect() }
    }

    /// The regions of [`RegionTree::search`], exact or not.
    pub fn find(&self, query: &str) -> Vec<&Region> {
        self.search(query).regions
    }
}

/// What [`RegionTree::search`] found.
#[derive(Clone, Debug, PartialEq)]
pub struct Search<'a> {
    pub kind: names::MatchKind,
    pub regions: Vec<&'a Region>,
}

impl Search<'_> {
    pub fn is_exact(&self) -> bool {
        self.kind == names::MatchKind::Exact && !self.regions.is_empty()
    }
}

/// A small tree of the seed scenario's places (DESIGN §13) for unit tests.
#[cfg(test)]
pub(crate) mod tests_support {
    use super::*;

    pub const OBLAST: &str = "UA63000000000041885";
    pub const RAION: &str = "UA63080000000032022";
    pub const KINDRASHIVKA_H: &str = "UA63080070000080622";
    pub const KINDRASHIVKA: &str = "UA63080070010082928";
    pub const KUPIANSK_H: &str = "UA63080090000067457";
    pub const KUPIANSK: &str = "UA63080090010026457";
    pub const KHARKIV_RAION: &str = "UA63120000000091135";
    pub const KHARKIV_CITY_H: &str = "UA63120270000028556";
    pub const KHARKIV: &str = "UA63120270010096107";
    pub const LVIV_OBLAST: &str = "UA46000000000026241";

    fn region(id: &str, parent: Option<&str>, level: Level) -> Region {
        let rid = |s: &str| RegionId::parse(s).expect("id");
        Region::bare(rid(id), parent.map(rid), level)
    }

    /// Kharkiv oblast alone, with its feed id 22: enough for a feed adapter's tests.
    pub fn kharkiv_oblast() -> RegionTree {
        let mut oblast = region(OBLAST, None, Level::Oblast);
        oblast.name = Localized { uk: "Харківська область".into(), en: None };
        oblast.feed_id = Some(22);
        RegionTree::build(vec![oblast]).expect("tree")
    }

    pub fn tree() -> RegionTree {
        RegionTree::build(vec![
            region(OBLAST, None, Level::Oblast),
            region(RAION, Some(OBLAST), Level::Raion),
            region(KINDRASHIVKA_H, Some(RAION), Level::Hromada),
            region(KINDRASHIVKA, Some(KINDRASHIVKA_H), Level::Village),
            region(KUPIANSK_H, Some(RAION), Level::Hromada),
            region(KUPIANSK, Some(KUPIANSK_H), Level::City),
            region(KHARKIV_RAION, Some(OBLAST), Level::Raion),
            region(KHARKIV_CITY_H, Some(KHARKIV_RAION), Level::Hromada),
            region(KHARKIV, Some(KHARKIV_CITY_H), Level::City),
            region(LVIV_OBLAST, None, Level::Oblast),
        ])
        .expect("tree")
    }
}
