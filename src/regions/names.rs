//! Name search that survives the ways people type place names.
//!
//! "КУП'ЯНСЬК", "м. Куп’янськ", "kupiansk" and "Купʼянськ" all mean the same city.
//! The index never guesses between two places of the same name: an exact match returns
//! all of them and the caller asks the person to choose. What is not an exact match —
//! a Russian spelling ("Купянск", "Харьков"), a typo, the first letters of a name — is
//! returned as [`MatchKind::Fuzzy`], ranked, at most [`FUZZY_LIMIT`] of them, for the
//! caller to offer as "did you mean", never to act on alone.
//!
//! Tiers, the first that finds anything wins:
//! 1. the normalised name (official names in each language, aliases) → exact; for
//!    Latin input, together with the regions whose transliteration it is;
//! 2. Latin input equal to the official transliteration of a Ukrainian name → exact;
//!    Cyrillic input whose transliteration equals one (a missing apostrophe, "я" for
//!    "'я") → fuzzy;
//! 3. the loose key of [`skeleton`] equal (Киев, Kiev), names starting with the query
//!    (three characters at least), and names one edit
//!    away (substitution, insertion, deletion or two letters swapped) in the loose key
//!    or in the plain transliteration, for keys of five letters or more, found through
//!    an index of one-letter deletions; ranked together (equal loose keys first) → fuzzy;
//! 4. two edits in either key, for keys of nine letters or more, by a scan of keys of
//!    about that length → fuzzy.
//!
//! Within a tier cities come first, then settlements, villages, hromadas, raions and
//! oblasts.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};

use super::translit::{has_cyrillic, skeleton, transliterate};
use super::{Level, Region, RegionId};

/// Most fuzzy candidates returned.
pub const FUZZY_LIMIT: usize = 10;

/// Normalises a name for comparison: lower case, one apostrophe, no settlement-type
/// prefix, single spaces.
pub fn normalize(name: &str) -> String {
    let lowered: String = name
        .trim()
        .chars()
        .map(|c| match c {
            '\u{2019}' | '\u{02BC}' | '\u{2018}' | '`' | '\u{00B4}' | '\u{02B9}' => '\'',
            '\u{2010}'..='\u{2014}' => '-',
            c => c,
        })
        .flat_map(char::to_lowercase)
        .collect();
    let mut words: Vec<String> = lowered.split_whitespace().map(str::to_owned).collect();
    // Settlement-type prefixes, written with or without the dot and space ("м.Київ").
    const PREFIXES: [&str; 11] =
        ["м.", "с.", "смт.", "смт", "сел.", "селище", "село", "місто", "city", "village", "г."];
    if words.len() > 1 && PREFIXES.contains(&words[0].as_str()) {
        words.remove(0);
    } else if let Some(first) = words.first_mut()
        && let Some(rest) = ["смт.", "м.", "с.", "г."].iter().find_map(|p| first.strip_prefix(p))
        && !rest.is_empty()
    {
        *first = rest.to_owned();
    }
    words.join(" ")
}

/// How a result relates to the query.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MatchKind {
    /// The query is the region's name (in some spelling the region carries): every
    /// region of that name is returned.
    Exact,
    /// The query is near the region's name; the caller must ask before acting.
    Fuzzy,
}

/// What a search found: empty `ids` when nothing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Found {
    pub kind: MatchKind,
    pub ids: Vec<RegionId>,
}

impl Found {
    fn none() -> Self {
        Found { kind: MatchKind::Fuzzy, ids: Vec::new() }
    }
}

/// One distinct key and the regions whose names have it.
#[derive(Clone, Debug)]
struct Key {
    key: Box<[u8]>,
    letters: u64,
    regions: Vec<RegionId>,
}

/// Keys of one kind (loose or plain) with what finds them one or two edits away.
#[derive(Clone, Debug, Default)]
struct KeySpace {
    keys: Vec<Key>,
    by_key: HashMap<Box<[u8]>, u32>,
    /// (hash of a key with one letter deleted, or of the key itself; key index),
    /// sorted: two keys one edit apart share an entry.
    deletions: Vec<(u64, u32)>,
    /// Key indexes by key length, for the two-edit scan.
    by_len: Vec<Vec<u32>>,
}

impl KeySpace {
    fn add(&mut self, key: Vec<u8>, id: &RegionId) {
        if key.is_empty() {
            return;
        }
        let key: Box<[u8]> = key.into();
        let next = self.keys.len() as u32;
        let at = *self.by_key.entry(key.clone()).or_insert(next);
        if at == next {
            self.keys.push(Key { letters: letters(&key), key, regions: Vec::new() });
        }
        push_unique(&mut self.keys[at as usize].regions, id);
    }

    fn finish(&mut self) {
        for (i, k) in self.keys.iter().enumerate() {
            self.deletions.extend(deletion_hashes(&k.key).map(|h| (h, i as u32)));
            let len = k.key.len();
            if self.by_len.len() <= len {
                self.by_len.resize(len + 1, Vec::new());
            }
            self.by_len[len].push(i as u32);
        }
        self.deletions.sort_unstable();
        self.deletions.dedup();
    }

    fn get(&self, key: &[u8]) -> Option<&Key> {
        self.by_key.get(key).map(|&at| &self.keys[at as usize])
    }

    /// Regions of keys one edit from `key`, with the distance.
    fn near1(&self, key: &[u8], rows: &mut [Vec<usize>; 3], out: &mut Vec<(usize, RegionId)>) {
        for h in deletion_hashes(key) {
            let from = self.deletions.partition_point(|(x, _)| *x < h);
            for &(_, at) in self.deletions[from..].iter().take_while(|(x, _)| *x == h) {
                let k = &self.keys[at as usize];
                if let Some(d) = distance(key, &k.key, 1, rows) {
                    out.extend(k.regions.iter().map(|id| (d, id.clone())));
                }
            }
        }
    }

    /// Regions of keys two edits from `key` at most, by a scan of keys of about its
    /// length whose letters could be.
    fn near2(&self, key: &[u8], rows: &mut [Vec<usize>; 3], out: &mut Vec<(usize, RegionId)>) {
        let mask = letters(key);
        let top = (key.len() + 2).min(self.by_len.len().saturating_sub(1));
        for l in key.len().saturating_sub(2)..=top {
            for &at in &self.by_len[l] {
                let k = &self.keys[at as usize];
                if (k.letters ^ mask).count_ones() <= 4
                    && let Some(d) = distance(key, &k.key, 2, rows)
                {
                    out.extend(k.regions.iter().map(|id| (d, id.clone())));
                }
            }
        }
    }
}

/// The search index over one tree's names.
#[derive(Clone, Debug, Default)]
pub struct NameIndex {
    /// Normalised name → every region that carries it.
    exact: HashMap<String, Vec<RegionId>>,
    /// Every normalised name, sorted, for the prefix tier.
    sorted: Vec<String>,
    /// The official transliteration of each Ukrainian name and alias, lower case.
    latin: HashMap<String, Vec<RegionId>>,
    /// [`skeleton`]s: where Russian spellings land.
    loose: KeySpace,
    /// [`plain`] keys: where typos land (a typo next to a vowel can be two edits away
    /// in the loose key, whose vowels run together).
    plain: KeySpace,
    levels: HashMap<RegionId, Level>,
}

/// The transliteration in lower case, letters and digits only.
fn plain(normalized: &str) -> Vec<u8> {
    transliterate(normalized).to_lowercase().bytes().filter(u8::is_ascii_alphanumeric).collect()
}

fn push_unique(ids: &mut Vec<RegionId>, id: &RegionId) {
    if !ids.contains(id) {
        ids.push(id.clone());
    }
}

fn hash(bytes: &[u8]) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    bytes.hash(&mut h);
    h.finish()
}

/// The key itself and each of its one-letter deletions, hashed.
fn deletion_hashes(key: &[u8]) -> impl Iterator<Item = u64> + '_ {
    let mut buf = Vec::with_capacity(key.len());
    std::iter::once(hash(key)).chain((0..key.len()).map(move |i| {
        buf.clear();
        buf.extend_from_slice(&key[..i]);
        buf.extend_from_slice(&key[i + 1..]);
        hash(&buf)
    }))
}

/// Edit distance with adjacent transpositions (optimal string alignment), or `None`
/// when it exceeds `max`. `rows` is scratch space, kept between calls of one search.
pub(crate) fn distance(a: &[u8], b: &[u8], max: usize, rows: &mut [Vec<usize>; 3]) -> Option<usize> {
    if a.len().abs_diff(b.len()) > max {
        return None;
    }
    let n = b.len();
    for row in rows.iter_mut() {
        row.clear();
        row.resize(n + 1, 0);
    }
    let [prev2, prev, cur] = rows;
    for (j, x) in prev.iter_mut().enumerate() {
        *x = j;
    }
    for i in 1..=a.len() {
        cur[0] = i;
        let mut row_min = cur[0];
        for j in 1..=n {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut d = (prev[j] + 1).min(cur[j - 1] + 1).min(prev[j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                d = d.min(prev2[j - 2] + 1);
            }
            cur[j] = d;
            row_min = row_min.min(d);
        }
        if row_min > max {
            return None;
        }
        std::mem::swap(prev2, prev);
        std::mem::swap(prev, cur);
    }
    Some(prev[n]).filter(|d| *d <= max)
}

/// Which letters and digits a key holds, one bit each: an edit changes at most two
/// bits, so keys whose masks differ in more than `2 × max` bits are not near.
fn letters(key: &[u8]) -> u64 {
    key.iter().fold(0u64, |m, &c| m | 1u64 << (c % 64))
}

/// Which kinds of place come first among near matches: where people live.
fn rank(level: Level) -> u8 {
    match level {
        Level::City | Level::SpecialCity => 0,
        Level::Settlement => 1,
        Level::Village => 2,
        Level::Hromada => 3,
        Level::Raion => 4,
        Level::Oblast => 5,
        Level::CityDistrict => 6,
    }
}

impl NameIndex {
    pub fn build<'a>(regions: impl Iterator<Item = &'a Region>) -> Self {
        let mut ix = NameIndex::default();
        for r in regions {
            ix.levels.insert(r.id.clone(), r.level);
            let ukrainian = std::iter::once(r.name.uk.as_str()).chain(r.aliases.iter().map(String::as_str));
            for n in ukrainian.clone().chain(r.name.en.as_deref()) {
                let norm = normalize(n);
                push_unique(ix.exact.entry(norm.clone()).or_default(), &r.id);
                ix.loose.add(skeleton(&norm).into_bytes(), &r.id);
                ix.plain.add(plain(&norm), &r.id);
            }
            for n in ukrainian.filter(|n| has_cyrillic(n)) {
                push_unique(ix.latin.entry(transliterate(&normalize(n))).or_default(), &r.id);
            }
        }
        ix.sorted = ix.exact.keys().cloned().collect();
        ix.sorted.sort();
        ix.loose.finish();
        ix.plain.finish();
        ix
    }

    /// Regions whose name equals the query; when none does, the nearest names, marked
    /// fuzzy. See the module's tiers.
    pub fn search(&self, query: &str) -> Found {
        let q = normalize(query);
        if q.is_empty() {
            return Found::none();
        }
        let cyrillic = has_cyrillic(&q);
        let latin = self.latin.get(&transliterate(&q));
        if let Some(ids) = self.exact.get(&q) {
            // Latin input is exact for a hand-written English name and for the official
            // transliteration alike: a region whose English name is spelt otherwise
            // ("Petropavlivka Hromada") is still found by its transliteration
            // ("Petropavlivska hromada") beside the namesakes whose English name it is.
            let mut ids = ids.clone();
            if !cyrillic {
                latin.into_iter().flatten().for_each(|id| push_unique(&mut ids, id));
            }
            return Found { kind: MatchKind::Exact, ids: self.in_rank_order(&ids) };
        }
        if let Some(ids) = latin {
            let kind = if cyrillic { MatchKind::Fuzzy } else { MatchKind::Exact };
            return Found { kind, ids: self.in_rank_order(ids) };
        }
        let key = skeleton(&q).into_bytes();
        let typed = plain(&q);
        let mut rows: [Vec<usize>; 3] = Default::default();
        // The loose key equal, names that start with the query and names one edit away,
        // ranked together: a city one letter off comes before villages whose names
        // merely begin so.
        let mut near: Vec<(usize, RegionId)> = if q.chars().count() >= 3 { self.prefixed(&q) } else { Vec::new() };
        if let Some(k) = self.loose.get(&key) {
            near.extend(k.regions.iter().map(|id| (0, id.clone())));
        }
        if key.len() >= 5 {
            self.loose.near1(&key, &mut rows, &mut near);
        }
        if typed.len() >= 5 {
            self.plain.near1(&typed, &mut rows, &mut near);
        }
        if !near.is_empty() {
            return self.ranked(near);
        }
        if key.len() >= 9 {
            self.loose.near2(&key, &mut rows, &mut near);
        }
        if typed.len() >= 9 {
            self.plain.near2(&typed, &mut rows, &mut near);
        }
        if !near.is_empty() {
            return self.ranked(near);
        }
        Found::none()
    }

    /// The regions of names starting with `q`.
    fn prefixed(&self, q: &str) -> Vec<(usize, RegionId)> {
        let from = self.sorted.partition_point(|n| n.as_str() < q);
        let mut out = Vec::new();
        for name in self.sorted[from..].iter().take_while(|n| n.starts_with(q)) {
            for id in self.exact.get(name).into_iter().flatten() {
                out.push((1, id.clone()));
            }
            // Enough to rank from; a prefix of two letters matches thousands.
            if out.len() > 50 * FUZZY_LIMIT {
                break;
            }
        }
        out
    }

    /// Every one of `ids`, cities first (a person more likely means the city).
    fn in_rank_order(&self, ids: &[RegionId]) -> Vec<RegionId> {
        let mut out = ids.to_vec();
        out.sort_by_cached_key(|id| (self.levels.get(id).map_or(u8::MAX, |l| rank(*l)), id.clone()));
        out
    }

    fn ranked(&self, mut ids: Vec<(usize, RegionId)>) -> Found {
        let level = |id: &RegionId| self.levels.get(id).map_or(u8::MAX, |l| rank(*l));
        ids.sort_by(|(da, a), (db, b)| da.cmp(db).then(level(a).cmp(&level(b))).then(a.cmp(b)));
        let mut out: Vec<RegionId> = Vec::new();
        for (_, id) in ids {
            push_unique(&mut out, &id);
            if out.len() == FUZZY_LIMIT {
                break;
            }
        }
        Found { kind: MatchKind::Fuzzy, ids: out }
    }

    /// The ids of [`NameIndex::search`], exact or not.
    pub fn find(&self, query: &str) -> Vec<RegionId> {
        self.search(query).ids
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalisation_survives_case_apostrophes_and_prefixes() {
        let want = "куп'янськ";
        for input in ["Куп’янськ", "КУП'ЯНСЬК", "м. Купʼянськ", "м.Куп`янськ", "  місто   Куп‘янськ "]
        {
            assert_eq!(normalize(input), want, "input {input:?}");
        }
        assert_eq!(normalize("с. Кіндрашівка"), "кіндрашівка");
        assert_eq!(normalize("смт Ківшарівка"), "ківшарівка");
        assert_eq!(normalize("Kupiansk"), "kupiansk");
        // A prefix alone is a name, not a prefix.
        assert_eq!(normalize("село"), "село");
    }

    #[test]
    fn the_transliteration_is_exact_beside_a_namesakes_hand_written_english_name() {
        let id = |s: &str| RegionId::parse(s).expect("id");
        let named = |i: &str, uk: &str, en: Option<&str>| Region {
            name: crate::regions::Localized { uk: uk.into(), en: en.map(Into::into) },
            ..Region::bare(id(i), None, Level::Hromada)
        };
        // Kupiansk raion's hromada, English name written by hand; a namesake elsewhere
        // whose English name is the transliteration.
        let kupiansk = named("UA63080130000077600", "Петропавлівська громада", Some("Petropavlivka Hromada"));
        let other = named("UA12140230000057328", "Петропавлівська громада", Some("Petropavlivska Hromada"));
        let ix = NameIndex::build([&kupiansk, &other].into_iter());
        for q in ["Petropavlivska hromada", "PETROPAVLIVSKA HROMADA", "Петропавлівська громада"] {
            let found = ix.search(q);
            assert_eq!(found.kind, MatchKind::Exact, "{q}");
            assert_eq!(found.ids.len(), 2, "{q}: {:?}", found.ids);
            assert!(found.ids.contains(&kupiansk.id) && found.ids.contains(&other.id), "{q}");
        }
        // The hand-written name finds its own region.
        assert_eq!(ix.search("Petropavlivka Hromada").ids, vec![kupiansk.id.clone()]);
    }

    #[test]
    fn distance_counts_edits_and_swaps_up_to_a_bound() {
        let mut rows = Default::default();
        let mut d = |a: &str, b: &str, max| distance(a.as_bytes(), b.as_bytes(), max, &mut rows);
        assert_eq!(d("kharkiv", "kharkiv", 1), Some(0));
        assert_eq!(d("kharkov", "kharkiv", 1), Some(1));
        assert_eq!(d("kharkvi", "kharkiv", 1), Some(1));
        assert_eq!(d("kharki", "kharkiv", 1), Some(1));
        assert_eq!(d("kharkivv", "kharkiv", 1), Some(1));
        assert_eq!(d("khrakov", "kharkiv", 1), None);
        assert_eq!(d("khrakov", "kharkiv", 2), Some(2));
        assert_eq!(d("lviv", "kharkiv", 2), None);
    }
}
