//! Feed ids for the imported codifier: alerts.in.ua `location_uid` (the same id space as
//! ukrainealarm `regionId`) attached to oblasts, raions, hromadas and the few cities the
//! feeds name, by oblast and normalised name.
//!
//! The feeds write "м. Кременчук та Кременчуцька територіальна громада" where the
//! codifier has "Кременчуцька"; both are reduced to `кременчуцька`. A hromada's name is
//! looked for inside its oblast; two of one name are told apart by the raion and then by
//! the city the feed's name starts with; one left over once its namesakes are taken is
//! assigned. When the exact name is not found the loose key of
//! [`super::translit::skeleton`] is tried (a feed's "Юрїївська" for the codifier's
//! "Юр’ївська"). Several lists may be given (alerts.in.ua's and ukrainealarm's): a uid
//! one list cannot place is tried with the name another gives it, which catches a
//! renaming one list knows and the other does not.
//!
//! Pure: regions and the feeds' lists in, an assignment and what was left out.

use std::collections::{BTreeMap, HashMap};

use serde_json::Value;

use super::names::normalize;
use super::translit::skeleton;
use super::{Level, Region, RegionId};

/// What a feed's list says a uid is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FeedLevel {
    /// An oblast, Crimea, or a city with special status.
    Oblast,
    Raion,
    Hromada,
    City,
}

/// One entry of a feed's region list.
#[derive(Clone, Debug, PartialEq)]
pub struct FeedPlace {
    pub uid: u32,
    pub level: FeedLevel,
    pub name: String,
    /// The uid of its oblast (itself for an oblast).
    pub oblast: u32,
    /// The uid of its raion, for hromadas and cities.
    pub raion: Option<u32>,
}

/// Why a list could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ListError {
    #[error("not JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("{0}")]
    Shape(String),
}

/// alerts.in.ua's location list (`locations.json`: uid → name, type, oblast_id,
/// district_id).
pub fn alerts_in_ua_places(text: &str) -> Result<Vec<FeedPlace>, ListError> {
    let root: Value = serde_json::from_str(text)?;
    let map = root.as_object().ok_or_else(|| ListError::Shape("expected an object of uid → location".into()))?;
    let mut out = Vec::new();
    for (key, v) in map {
        let bad = |what: &str| ListError::Shape(format!("location {key}: {what}"));
        let uid = key.parse::<u32>().map_err(|_| bad("the key is not a number"))?;
        let level = match v["type"].as_str() {
            Some("oblast" | "standalone") => FeedLevel::Oblast,
            Some("district" | "raion") => FeedLevel::Raion,
            Some("hromada") => FeedLevel::Hromada,
            Some("city") => FeedLevel::City,
            other => return Err(bad(&format!("unknown type {other:?}"))),
        };
        let name = v["name"].as_str().ok_or_else(|| bad("no name"))?.to_owned();
        let oblast = v["oblast_id"].as_u64().and_then(|o| u32::try_from(o).ok()).ok_or_else(|| bad("no oblast_id"))?;
        let raion = v["district_id"].as_u64().and_then(|d| u32::try_from(d).ok());
        out.push(FeedPlace { uid, level, name, oblast, raion });
    }
    out.sort_by_key(|p| p.uid);
    Ok(out)
}

/// ukrainealarm's `/api/v3/regions` answer: states → districts → communities.
pub fn ukrainealarm_places(text: &str) -> Result<Vec<FeedPlace>, ListError> {
    let root: Value = serde_json::from_str(text)?;
    let states = root["states"].as_array().ok_or_else(|| ListError::Shape("expected {\"states\": [...]}".into()))?;
    let mut out = Vec::new();
    fn walk(v: &Value, oblast: Option<u32>, raion: Option<u32>, out: &mut Vec<FeedPlace>) -> Result<(), ListError> {
        let id = v["regionId"]
            .as_str()
            .and_then(|s| s.parse::<u32>().ok())
            .or(v["regionId"].as_u64().and_then(|n| u32::try_from(n).ok()));
        let uid =
            id.ok_or_else(|| ListError::Shape(format!("a region without a numeric regionId: {}", v["regionName"])))?;
        let name = v["regionName"].as_str().unwrap_or_default().to_owned();
        let level = match v["regionType"].as_str() {
            Some("State") => FeedLevel::Oblast,
            Some("District") => FeedLevel::Raion,
            Some("Community") => FeedLevel::Hromada,
            Some("City") => FeedLevel::City,
            other => return Err(ListError::Shape(format!("region {uid}: unknown regionType {other:?}"))),
        };
        let oblast_uid = oblast.unwrap_or(uid);
        let raion_uid = if level == FeedLevel::Raion { Some(uid) } else { raion };
        out.push(FeedPlace {
            uid,
            level,
            name,
            oblast: oblast_uid,
            raion: if level == FeedLevel::Raion { None } else { raion },
        });
        for child in v["regionChildIds"].as_array().into_iter().flatten() {
            walk(child, Some(oblast_uid), raion_uid, out)?;
        }
        Ok(())
    }
    for s in states {
        walk(s, None, None, &mut out)?;
    }
    out.sort_by_key(|p| p.uid);
    Ok(out)
}

/// A feed name or a codifier name reduced to the adjective both share.
pub fn name_key(name: &str) -> String {
    // "м. Кременчук та Кременчуцька територіальна громада": the centre city is a
    // prefix (`normalize` has dropped the "м.").
    let mut n = normalize(name);
    if let Some((_, after)) = n.split_once(" та ") {
        n = after.to_owned();
    }
    for suffix in [
        " територіальна громада",
        " міська громада",
        " сільська громада",
        " селищна громада",
        " громада",
        " район",
        " область",
    ] {
        if let Some(stripped) = n.strip_suffix(suffix) {
            n = stripped.to_owned();
            break;
        }
    }
    n.trim().to_owned()
}

/// The city a feed's hromada name starts with ("м. Покров та …" → `покров`).
fn centre_city(name: &str) -> Option<String> {
    normalize(name).split_once(" та ").map(|(city, _)| city.trim().to_owned())
}

/// The result: uid → region, and each uid no list could place with why.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Crosswalk {
    pub assigned: BTreeMap<u32, RegionId>,
    pub unmatched: Vec<Unmatched>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Unmatched {
    pub place: FeedPlace,
    pub reason: Reason,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Reason {
    /// No region of that name (in that oblast, or raion for a city).
    NoSuchName,
    /// Several regions carry the name and nothing tells them apart.
    Ambiguous(Vec<RegionId>),
    /// Its oblast (or raion) uid is not placed itself.
    ParentUnplaced,
    /// The region it names already has another uid.
    Taken { region: RegionId, by: u32 },
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Reason::NoSuchName => f.write_str("no region of that name there"),
            Reason::Ambiguous(ids) => {
                let ids: Vec<&str> = ids.iter().map(RegionId::as_str).collect();
                write!(f, "several regions of that name: {}", ids.join(", "))
            }
            Reason::ParentUnplaced => f.write_str("its oblast or raion is not placed"),
            Reason::Taken { region, by } => write!(f, "{region} already has uid {by}"),
        }
    }
}

struct Codifier<'a> {
    regions: HashMap<&'a RegionId, &'a Region>,
    children: HashMap<&'a RegionId, Vec<&'a Region>>,
    tops: Vec<&'a Region>,
}

impl<'a> Codifier<'a> {
    fn new(regions: &'a [Region]) -> Self {
        let mut children: HashMap<&RegionId, Vec<&Region>> = HashMap::new();
        for r in regions {
            if let Some(p) = &r.parent {
                children.entry(p).or_default().push(r);
            }
        }
        Codifier {
            regions: regions.iter().map(|r| (&r.id, r)).collect(),
            children,
            tops: regions.iter().filter(|r| r.level.is_top()).collect(),
        }
    }

    fn children(&self, id: &RegionId) -> &[&'a Region] {
        self.children.get(id).map_or(&[], Vec::as_slice)
    }

    /// Every region below `id` of one of `levels`.
    fn below(&self, id: &RegionId, levels: &[Level]) -> Vec<&'a Region> {
        let mut out = Vec::new();
        let mut stack = vec![id];
        while let Some(cur) = stack.pop() {
            for c in self.children(cur) {
                if levels.contains(&c.level) {
                    out.push(*c);
                }
                if !c.level.is_settlement() {
                    stack.push(&c.id);
                }
            }
        }
        out
    }

    fn raion_of<'b>(&'b self, r: &'b Region) -> Option<&'b RegionId> {
        let mut cur = r;
        loop {
            if cur.level == Level::Raion {
                return Some(&cur.id);
            }
            cur = self.regions.get(cur.parent.as_ref()?)?;
        }
    }
}

/// Matches `name` among `candidates` exactly, else by the loose key.
fn by_name<'a>(candidates: &[&'a Region], name: &str) -> Vec<&'a Region> {
    let key = name_key(name);
    let exact: Vec<&Region> = candidates.iter().copied().filter(|r| name_key(&r.name.uk) == key).collect();
    if !exact.is_empty() {
        return exact;
    }
    let loose = skeleton(&key);
    candidates.iter().copied().filter(|r| skeleton(&name_key(&r.name.uk)) == loose).collect()
}

/// Attaches the uids of `lists` (in order of trust) to `regions`.
pub fn crosswalk(regions: &[Region], lists: &[Vec<FeedPlace>]) -> Crosswalk {
    let cod = Codifier::new(regions);
    // Each uid with every list's word on it, oblasts first, then raions, so their
    // children can be looked for inside them.
    let mut places: BTreeMap<u32, Vec<&FeedPlace>> = BTreeMap::new();
    for list in lists {
        for p in list {
            places.entry(p.uid).or_default().push(p);
        }
    }
    let rank = |l: FeedLevel| match l {
        FeedLevel::Oblast => 0,
        FeedLevel::Raion => 1,
        FeedLevel::Hromada => 2,
        FeedLevel::City => 3,
    };
    let mut order: Vec<(u32, &Vec<&FeedPlace>)> = places.iter().map(|(u, p)| (*u, p)).collect();
    order.sort_by_key(|(uid, p)| (rank(p[0].level), *uid));

    let mut out = Crosswalk::default();
    let mut owner: HashMap<RegionId, u32> = HashMap::new();
    // Uids whose namesakes must be placed first: (uid, the candidates, its places).
    let mut later: Vec<(u32, Vec<RegionId>, &Vec<&FeedPlace>)> = Vec::new();
    for (uid, words) in order {
        let mut last = Reason::NoSuchName;
        let mut ambiguous: Vec<RegionId> = Vec::new();
        let mut found = None;
        for p in words {
            match place(&cod, p, &out.assigned) {
                Ok(id) => {
                    found = Some(id);
                    break;
                }
                Err(Reason::Ambiguous(c)) => {
                    ambiguous = c.clone();
                    last = Reason::Ambiguous(c);
                }
                Err(r) => {
                    if !matches!(last, Reason::Ambiguous(_)) {
                        last = r;
                    }
                }
            }
        }
        match found {
            Some(id) => assign(&mut out, &mut owner, uid, id, words[0]),
            None if !ambiguous.is_empty() => later.push((uid, ambiguous, words)),
            None => out.unmatched.push(Unmatched { place: words[0].clone(), reason: last }),
        }
    }
    // A namesake left alone once the others are placed is the one.
    for (uid, candidates, words) in later {
        let free: Vec<RegionId> = candidates.iter().filter(|c| !owner.contains_key(*c)).cloned().collect();
        match free.as_slice() {
            [one] => assign(&mut out, &mut owner, uid, one.clone(), words[0]),
            _ => out.unmatched.push(Unmatched { place: words[0].clone(), reason: Reason::Ambiguous(candidates) }),
        }
    }
    out.unmatched.sort_by_key(|u| u.place.uid);
    out
}

fn assign(out: &mut Crosswalk, owner: &mut HashMap<RegionId, u32>, uid: u32, id: RegionId, p: &FeedPlace) {
    if let Some(by) = owner.get(&id) {
        out.unmatched.push(Unmatched { place: p.clone(), reason: Reason::Taken { region: id, by: *by } });
        return;
    }
    owner.insert(id.clone(), uid);
    out.assigned.insert(uid, id);
}

fn place(cod: &Codifier<'_>, p: &FeedPlace, assigned: &BTreeMap<u32, RegionId>) -> Result<RegionId, Reason> {
    let one = |found: Vec<&Region>| match found.as_slice() {
        [] => Err(Reason::NoSuchName),
        [r] => Ok(r.id.clone()),
        many => Err(Reason::Ambiguous(many.iter().map(|r| r.id.clone()).collect())),
    };
    match p.level {
        FeedLevel::Oblast => one(by_name(&cod.tops, &p.name)),
        FeedLevel::Raion => {
            let oblast = assigned.get(&p.oblast).ok_or(Reason::ParentUnplaced)?;
            let raions: Vec<&Region> =
                cod.children(oblast).iter().copied().filter(|r| r.level == Level::Raion).collect();
            one(by_name(&raions, &p.name))
        }
        FeedLevel::Hromada => {
            let oblast = assigned.get(&p.oblast).ok_or(Reason::ParentUnplaced)?;
            let hromadas = cod.below(oblast, &[Level::Hromada]);
            let mut found = by_name(&hromadas, &p.name);
            if found.len() > 1
                && let Some(raion) = p.raion.and_then(|r| assigned.get(&r))
            {
                found.retain(|h| cod.raion_of(h) == Some(raion));
            }
            if found.len() > 1 {
                let city = centre_city(&p.name);
                found.retain(|h| {
                    let has_city = cod
                        .children(&h.id)
                        .iter()
                        .any(|c| c.level == Level::City && Some(normalize(&c.name.uk)) == city);
                    // "м. Покров та Покровська" has the city; a bare "Покровська" is the
                    // namesake without one.
                    has_city == city.is_some()
                });
            }
            one(found)
        }
        FeedLevel::City => {
            let raion = p.raion.and_then(|r| assigned.get(&r)).ok_or(Reason::ParentUnplaced)?;
            let cities = cod.below(raion, &[Level::City, Level::SpecialCity]);
            let name = normalize(&p.name);
            one(cities.into_iter().filter(|c| normalize(&c.name.uk) == name).collect())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CSV: &str =
        "Перший рівень;Другий рівень;Третій рівень;Четвертий рівень;Додатковий рівень;Категорія об’єкта;Назва об’єкта
UA12000000000090473;;;;;O;Дніпропетровська
UA12000000000090473;UA12080000000023578;;;;P;Нікопольський
UA12000000000090473;UA12080000000023578;UA12080090000039979;;;H;Покровська
UA12000000000090473;UA12080000000023578;UA12080090000039979;UA12080090010010311;;M;Покров
UA12000000000090473;UA12080000000023578;UA12080110000055958;;;H;Покровська
UA12000000000090473;UA12080000000023578;UA12080110010011111;;;H;Іларіонівська
UA12000000000090473;UA12080000000023578;UA12080050000022222;;;H;Нікопольська
UA12000000000090473;UA12080000000023578;UA12080050000022222;UA12080050010010114;;M;Нікополь
";

    fn place(uid: u32, level: FeedLevel, name: &str, raion: Option<u32>) -> FeedPlace {
        FeedPlace { uid, level, name: name.into(), oblast: 9, raion }
    }

    #[test]
    fn namesakes_are_told_apart_and_a_renaming_is_placed_by_the_other_list() {
        let regions = crate::regions::codifier::parse(CSV).expect("codifier");
        let alerts_in_ua = vec![
            place(9, FeedLevel::Oblast, "Дніпропетровська область", None),
            place(47, FeedLevel::Raion, "Нікопольський район", None),
            place(353, FeedLevel::Hromada, "Покровська територіальна громада", Some(47)),
            place(354, FeedLevel::Hromada, "м. Покров та Покровська територіальна громада", Some(47)),
            // Renamed after the codifier's edition; the older list has the old name.
            place(310, FeedLevel::Hromada, "Яворницька територіальна громада", Some(47)),
            place(5351, FeedLevel::City, "м. Нікополь", Some(47)),
            place(999, FeedLevel::Hromada, "Атлантидська територіальна громада", Some(47)),
        ];
        let ukrainealarm = vec![place(310, FeedLevel::Hromada, "Іларіонівська територіальна громада", Some(47))];
        let walk = crosswalk(&regions, &[alerts_in_ua, ukrainealarm]);
        let got: Vec<(u32, &str)> = walk.assigned.iter().map(|(u, id)| (*u, id.as_str())).collect();
        assert_eq!(
            got,
            vec![
                (9, "UA12000000000090473"),
                (47, "UA12080000000023578"),
                (310, "UA12080110010011111"),
                (353, "UA12080110000055958"),
                (354, "UA12080090000039979"),
                (5351, "UA12080050010010114"),
            ]
        );
        assert_eq!(walk.unmatched.len(), 1);
        assert_eq!((walk.unmatched[0].place.uid, &walk.unmatched[0].reason), (999, &Reason::NoSuchName));
    }

    #[test]
    fn feed_names_reduce_to_the_codifiers_adjective() {
        assert_eq!(name_key("м. Кременчук та Кременчуцька територіальна громада"), "кременчуцька");
        assert_eq!(name_key("Кременчуцька громада"), "кременчуцька");
        assert_eq!(name_key("Куп'янський район"), "куп'янський");
        assert_eq!(name_key("Куп’янський район"), "куп'янський");
        assert_eq!(name_key("Харківська область"), "харківська");
        assert_eq!(name_key("м. Київ"), "київ");
        assert_eq!(name_key("Глобинська міська громада"), "глобинська");
        assert_eq!(centre_city("м. Покров та Покровська територіальна громада").as_deref(), Some("покров"));
        assert_eq!(centre_city("Покровська територіальна громада"), None);
    }
}
