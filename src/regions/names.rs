//! Name search that survives the ways people type place names.
//!
//! "КУП'ЯНСЬК", "м. Куп’янськ", "kupiansk" and "Купʼянськ" all mean the same city.
//! The index never guesses between two places of the same name: it returns all of
//! them and the caller asks the person to choose.

use std::collections::HashMap;

use super::{Region, RegionId};

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
    const PREFIXES: [&str; 9] = ["м.", "с.", "смт.", "смт", "селище", "село", "місто", "city", "village"];
    if words.len() > 1 && PREFIXES.contains(&words[0].as_str()) {
        words.remove(0);
    } else if let Some(first) = words.first_mut()
        && let Some(rest) = ["смт.", "м.", "с."].iter().find_map(|p| first.strip_prefix(p))
        && !rest.is_empty()
    {
        *first = rest.to_owned();
    }
    words.join(" ")
}

/// Normalised name → every region that carries it (official names in each language and
/// aliases).
#[derive(Clone, Debug, Default)]
pub struct NameIndex {
    exact: HashMap<String, Vec<RegionId>>,
}

impl NameIndex {
    pub fn build<'a>(regions: impl Iterator<Item = &'a Region>) -> Self {
        let mut exact: HashMap<String, Vec<RegionId>> = HashMap::new();
        for r in regions {
            let names = std::iter::once(r.name.uk.as_str())
                .chain(r.name.en.as_deref())
                .chain(r.aliases.iter().map(String::as_str));
            for n in names {
                let ids = exact.entry(normalize(n)).or_default();
                if !ids.contains(&r.id) {
                    ids.push(r.id.clone());
                }
            }
        }
        NameIndex { exact }
    }

    /// Regions whose name equals the query; when none does, regions whose name starts
    /// with it (three characters at least), at most `LIMIT` of them.
    pub fn find(&self, query: &str) -> Vec<RegionId> {
        const LIMIT: usize = 10;
        let q = normalize(query);
        if q.is_empty() {
            return Vec::new();
        }
        if let Some(ids) = self.exact.get(&q) {
            return ids.clone();
        }
        if q.chars().count() < 3 {
            return Vec::new();
        }
        let mut found: Vec<RegionId> = self
            .exact
            .iter()
            .filter(|(name, _)| name.starts_with(&q))
            .flat_map(|(_, ids)| ids.iter().cloned())
            .collect();
        found.sort();
        found.dedup();
        found.truncate(LIMIT);
        found
    }
}

#[cfg(test)]
mod tests {
    use super::normalize;

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
}
