//! The official KATOTTG codifier as published (a `;`-separated CSV), read into regions.
//!
//! ```text
//! Перший рівень;Другий рівень;Третій рівень;Четвертий рівень;Додатковий рівень;Категорія об’єкта;Назва об’єкта
//! UA63000000000041885;UA63080000000032022;UA63080070000080622;;;H;Кіндрашівська
//! ```
//! A row's own code is its last filled level column; its parent is the nearest column
//! before it holding another code (Kyiv's districts repeat the city's code in the
//! columns above them). The category decides the level and must stand in its column:
//! O and K in the first, P in the second, H in the third, M, X and C in the fourth, B
//! in the additional one. Raion, hromada and oblast names are bare adjectives
//! ("Куп’янський"); ` район`, ` громада` and ` область` are added, as the hand-written
//! files write them. English names are the official transliteration.
//!
//! Pure: text in, regions or every error with its line out.

use std::collections::HashSet;

use super::translit::transliterate;
use super::{Level, Localized, Region, RegionId};

/// One problem in the codifier, at a 1-based line of the file.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct CodifierError {
    pub line: usize,
    pub message: String,
}

/// The header the ministry's file starts with.
pub const HEADER: [&str; 7] = [
    "Перший рівень",
    "Другий рівень",
    "Третій рівень",
    "Четвертий рівень",
    "Додатковий рівень",
    "Категорія об’єкта",
    "Назва об’єкта",
];

/// Reads the codifier's rows into regions, in file order. Every error is reported;
/// nothing is returned unless there are none.
pub fn parse(text: &str) -> Result<Vec<Region>, Vec<CodifierError>> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut errors = Vec::new();
    let mut regions = Vec::new();
    let mut seen: HashSet<RegionId> = HashSet::new();
    let mut lines = text.lines().enumerate().map(|(i, l)| (i + 1, l.trim_end_matches('\r')));
    match lines.next() {
        Some((_, header)) if header.split(';').map(str::trim).eq(HEADER.iter().copied()) => {}
        Some((line, header)) => errors.push(CodifierError {
            line,
            message: format!("expected the codifier's header `{}`, found `{header}`", HEADER.join(";")),
        }),
        None => errors.push(CodifierError { line: 1, message: "the file is empty".into() }),
    }
    for (line, row) in lines {
        if row.trim().is_empty() {
            continue;
        }
        match parse_row(row, &seen) {
            Ok(r) => {
                seen.insert(r.id.clone());
                regions.push(r);
            }
            Err(message) => errors.push(CodifierError { line, message }),
        }
    }
    if errors.is_empty() && regions.is_empty() {
        errors.push(CodifierError { line: 1, message: "no rows after the header".into() });
    }
    if errors.is_empty() { Ok(regions) } else { Err(errors) }
}

fn parse_row(row: &str, seen: &HashSet<RegionId>) -> Result<Region, String> {
    let fields: Vec<&str> = row.split(';').collect();
    if fields.len() != 7 {
        return Err(format!("expected 7 fields separated by `;`, found {}", fields.len()));
    }
    let mut codes: Vec<(usize, RegionId)> = Vec::new();
    for (column, f) in fields[..5].iter().enumerate() {
        let f = f.trim();
        if f.is_empty() {
            continue;
        }
        let id = RegionId::parse(f).map_err(|e| format!("column {}: {e}", column + 1))?;
        codes.push((column, id));
    }
    let Some((column, id)) = codes.last().cloned() else {
        return Err("no KATOTTG code in the five level columns".into());
    };
    let category = fields[5].trim();
    let (level, want_column) = match category {
        "O" => (Level::Oblast, 0),
        "K" => (Level::SpecialCity, 0),
        "P" => (Level::Raion, 1),
        "H" => (Level::Hromada, 2),
        "M" => (Level::City, 3),
        "X" => (Level::Settlement, 3),
        "C" => (Level::Village, 3),
        "B" => (Level::CityDistrict, 4),
        other => return Err(format!("category `{other}` is not one of O K P H M X C B")),
    };
    if column != want_column {
        return Err(format!(
            "a category {category} code belongs in column {}, found in column {}",
            want_column + 1,
            column + 1
        ));
    }
    // The levels above must all be filled: a gap means a shifted row.
    if codes.len() != column + 1 {
        return Err(format!("category {category} needs every level column up to {} filled", column + 1));
    }
    let parent = codes.iter().rev().map(|(_, c)| c).find(|c| **c != id).cloned();
    if let Some(p) = &parent
        && !seen.contains(p)
    {
        return Err(format!("{id} comes before its parent {p} (rows must list a parent first)"));
    }
    if parent.is_none() && !level.is_top() {
        return Err(format!("{id} ({category}) has no parent"));
    }
    if seen.contains(&id) {
        return Err(format!("{id} is listed twice"));
    }
    let bare = fields[6].trim();
    if bare.is_empty() {
        return Err(format!("{id} has no name"));
    }
    if bare.contains(['\t', '\n']) {
        return Err(format!("{id}: the name holds a tab"));
    }
    let uk = full_name(level, bare);
    let en = english(level, bare);
    Ok(Region { name: Localized { uk, en: Some(en) }, ..Region::bare(id, parent, level) })
}

/// The name as people write it: the codifier's adjective with its noun.
fn full_name(level: Level, bare: &str) -> String {
    match level {
        // "Автономна Республіка Крим" is already whole.
        Level::Oblast if !bare.contains(' ') => format!("{bare} область"),
        Level::Raion | Level::CityDistrict => format!("{bare} район"),
        Level::Hromada => format!("{bare} громада"),
        _ => bare.to_owned(),
    }
}

fn english(level: Level, bare: &str) -> String {
    let latin = transliterate(bare);
    match level {
        Level::Oblast if !bare.contains(' ') => format!("{latin} Oblast"),
        Level::Raion | Level::CityDistrict => format!("{latin} Raion"),
        Level::Hromada => format!("{latin} Hromada"),
        _ => latin,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEAD: &str = "Перший рівень;Другий рівень;Третій рівень;Четвертий рівень;Додатковий рівень;Категорія об’єкта;Назва об’єкта\r\n";

    #[test]
    fn rows_become_regions_with_their_parents_and_full_names() {
        let text = format!(
            "{HEAD}UA63000000000041885;;;;;O;Харківська\r\n\
             UA63000000000041885;UA63080000000032022;;;;P;Куп’янський\r\n\
             UA63000000000041885;UA63080000000032022;UA63080070000080622;;;H;Кіндрашівська \r\n\
             UA63000000000041885;UA63080000000032022;UA63080070000080622;UA63080070010082928;;C;Кіндрашівка\r\n\
             UA80000000000093317;;;;;K;Київ\r\n\
             UA80000000000093317;UA80000000000093317;UA80000000000093317;UA80000000000093317;UA80000000000126643;B;Голосіївський\r\n"
        );
        let regions = parse(&text).expect("parses");
        let got: Vec<(&str, Option<&str>, Level, &str, &str)> = regions
            .iter()
            .map(|r| {
                (
                    r.id.as_str(),
                    r.parent.as_ref().map(RegionId::as_str),
                    r.level,
                    r.name.uk.as_str(),
                    r.name.get(crate::messages::Lang::En),
                )
            })
            .collect();
        assert_eq!(
            got,
            vec![
                ("UA63000000000041885", None, Level::Oblast, "Харківська область", "Kharkivska Oblast"),
                (
                    "UA63080000000032022",
                    Some("UA63000000000041885"),
                    Level::Raion,
                    "Куп’янський район",
                    "Kupianskyi Raion"
                ),
                (
                    "UA63080070000080622",
                    Some("UA63080000000032022"),
                    Level::Hromada,
                    "Кіндрашівська громада",
                    "Kindrashivska Hromada"
                ),
                ("UA63080070010082928", Some("UA63080070000080622"), Level::Village, "Кіндрашівка", "Kindrashivka"),
                ("UA80000000000093317", None, Level::SpecialCity, "Київ", "Kyiv"),
                (
                    "UA80000000000126643",
                    Some("UA80000000000093317"),
                    Level::CityDistrict,
                    "Голосіївський район",
                    "Holosiivskyi Raion"
                ),
            ]
        );
    }

    #[test]
    fn every_bad_row_is_reported_at_its_line() {
        let text = format!(
            "{HEAD}UA63000000000041885;;;;;O;Харківська\n\
             UA63000000000041885;UA6308;;;;P;Куп’янський\n\
             UA63000000000041885;;;;;Z;Щось\n\
             UA63000000000041885;UA63080000000032022;UA63080070000080622;;;H;Кіндрашівська\n\
             UA63000000000041885;UA63020000000066931;;;;H;Богодухівський\n\
             UA63000000000041885;;;;;O;Харківська\n\
             UA63000000000041885;UA63020000000066931\n\
             UA63000000000041885;UA63020000000066931;;;;P;\n"
        );
        let errors = parse(&text).expect_err("bad rows");
        let lines: Vec<usize> = errors.iter().map(|e| e.line).collect();
        assert_eq!(lines, vec![3, 4, 5, 6, 7, 8, 9], "{errors:#?}");
        assert!(errors[0].message.contains("UA6308"), "{}", errors[0].message);
        assert!(errors[2].message.contains("before its parent"), "{}", errors[2].message);
        assert!(errors[3].message.contains("column 3"), "{}", errors[3].message);
        assert!(errors[4].message.contains("twice"), "{}", errors[4].message);
        assert!(errors[6].message.contains("no name"), "{}", errors[6].message);
        let header = parse("a;b;c\nUA63000000000041885;;;;;O;Харківська\n").expect_err("bad header");
        assert_eq!(header[0].line, 1);
    }
}
