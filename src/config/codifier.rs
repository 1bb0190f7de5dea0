//! The generated codifier beside the hand-written region files.
//!
//! `sirena regions import FILE.csv` reads the official KATOTTG codifier
//! ([`crate::regions::codifier`]) and writes `regions/katottg.generated.tsv`
//! ([`crate::regions::generated`]); the loader reads that file first and lays the
//! hand-written `[[region]]` tables over it: a hand-written region with a generated id
//! overrides what it gives (names, aliases, point, channel, feed id) and may leave out
//! its level and name; a feed id it gives is taken from whichever generated region the
//! crosswalk had given it (an operator's fix for a renaming). Re-importing rewrites
//! only the generated file, so hand-written entries survive, and writes nothing when
//! the bytes would not change (a running daemon does not even reload).

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use super::{ConfigError, Origins, file_error};
use crate::regions::crosswalk::{self, Crosswalk, FeedPlace, ListError};
use crate::regions::{Level, Localized, Point, Region, RegionChannel, RegionId, codifier, generated, geo};

/// A hand-written `[[region]]`, validated field by field; complete, or an override of
/// a generated region.
#[derive(Clone, Debug)]
pub struct Written {
    pub id: RegionId,
    pub parent: Option<RegionId>,
    pub level: Option<Level>,
    pub name: Option<Localized>,
    pub aliases: Vec<String>,
    pub point: Option<Point>,
    pub approx: bool,
    pub feed_id: Option<u32>,
    pub channel: Option<RegionChannel>,
    /// Where the entry's id is written.
    pub at: (PathBuf, usize, usize),
}

/// The generated file of a `regions/` directory.
pub fn generated_path(regions_dir: &Path) -> PathBuf {
    regions_dir.join(generated::FILE_NAME)
}

/// The generated regions (if the file exists) overlaid with the hand-written ones;
/// every region's origin recorded for later errors.
pub(super) fn merge(
    dir: &Path,
    written: Vec<Written>,
    origins: &mut Origins,
    errors: &mut Vec<ConfigError>,
) -> Vec<Region> {
    let path = generated_path(dir);
    let mut base: Vec<Region> = Vec::new();
    let mut index: HashMap<RegionId, usize> = HashMap::new();
    let has_generated = path.is_file();
    if has_generated {
        match std::fs::read_to_string(&path) {
            Ok(text) => match generated::read(&text) {
                Ok(rows) => {
                    base.reserve(rows.len() + written.len());
                    for (r, line) in rows {
                        if index.contains_key(&r.id) {
                            errors.push(at(&path, line, 1, format!("region {} is listed twice", r.id)));
                            continue;
                        }
                        // A hand-written entry's own place is already there and wins.
                        origins.entry(r.id.to_string()).or_insert_with(|| (path.clone(), line, 1));
                        index.insert(r.id.clone(), base.len());
                        base.push(r);
                    }
                }
                Err(es) => errors.extend(es.into_iter().map(|e| at(&path, e.line, e.col, e.message))),
            },
            Err(e) => errors.push(file_error(&path, format!("cannot read: {e}"))),
        }
    }
    // A feed id an operator wrote belongs to their region, whichever generated one the
    // crosswalk gave it to.
    let claimed: HashSet<u32> = written.iter().filter_map(|w| w.feed_id).collect();
    for r in &mut base {
        if r.feed_id.is_some_and(|f| claimed.contains(&f)) {
            r.feed_id = None;
        }
    }
    for w in written {
        let (file, line, col) = w.at.clone();
        let region = match index.get(&w.id) {
            Some(&i) => {
                let g = &base[i];
                let name = match w.name {
                    Some(mut n) => {
                        if n.en.is_none() {
                            n.en.clone_from(&g.name.en);
                        }
                        n
                    }
                    None => g.name.clone(),
                };
                Region {
                    id: w.id,
                    parent: w.parent.or_else(|| g.parent.clone()),
                    level: w.level.unwrap_or(g.level),
                    name,
                    aliases: w.aliases,
                    point: w.point,
                    approx: w.approx,
                    feed_id: w.feed_id.or(g.feed_id),
                    channel: w.channel,
                }
            }
            None => {
                let (Some(level), Some(name)) = (w.level, w.name) else {
                    let why = if has_generated {
                        format!("region {} is not in {}, so it needs a level and a name", w.id, generated::FILE_NAME)
                    } else {
                        format!(
                            "region {} needs a level and a name (there is no {}: `sirena regions import` writes it)",
                            w.id,
                            generated::FILE_NAME
                        )
                    };
                    errors.push(at(&file, line, col, why));
                    continue;
                };
                Region {
                    id: w.id,
                    parent: w.parent,
                    level,
                    name,
                    aliases: w.aliases,
                    point: w.point,
                    approx: w.approx,
                    feed_id: w.feed_id,
                    channel: w.channel,
                }
            }
        };
        if region.parent.is_some() && region.level.is_top() {
            errors.push(at(&file, line, col, format!("a {:?} region has no parent", region.level)));
        }
        match index.get(&region.id) {
            Some(&i) => base[i] = region,
            None => {
                index.insert(region.id.clone(), base.len());
                base.push(region);
            }
        }
    }
    base
}

fn at(file: &Path, line: usize, col: usize, message: impl Into<String>) -> ConfigError {
    ConfigError { file: file.to_owned(), line, col, message: message.into() }
}

/// Why an import failed.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("{}: cannot read: {source}", path.display())]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{}", errors.iter().map(|e| format!("{}:{}: {}", path.display(), e.line, e.message)).collect::<Vec<_>>().join("\n"))]
    Codifier { path: PathBuf, errors: Vec<codifier::CodifierError> },
    #[error("{}: {error}", path.display())]
    FeedList { path: PathBuf, error: ListError },
    #[error("{}: no regions/ directory (is this a config directory?)", dir.display())]
    NoRegionsDir { dir: PathBuf },
    #[error("{}: cannot write: {source}", path.display())]
    Write { path: PathBuf, source: std::io::Error },
    #[error("{}: {error}", path.display())]
    Geo { path: PathBuf, error: geo::GeoError },
}

/// What an import did.
#[derive(Clone, Debug, PartialEq)]
pub struct ImportReport {
    pub path: PathBuf,
    /// Regions per level, in level order.
    pub levels: Vec<(Level, usize)>,
    pub regions: usize,
    /// False when the file already held exactly these bytes.
    pub changed: bool,
    /// Regions given a feed id by the crosswalk.
    pub feed_ids: usize,
    /// The feeds' uids no region was found for, with why; empty without lists.
    pub unmatched: Vec<crosswalk::Unmatched>,
}

/// A feed's region list, for the crosswalk.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FeedList {
    /// alerts.in.ua's `locations.json` (uid → name, type, oblast_id, district_id).
    AlertsInUa(PathBuf),
    /// ukrainealarm's `/api/v3/regions` answer, saved.
    UkraineAlarm(PathBuf),
}

impl FeedList {
    fn read(&self) -> Result<Vec<FeedPlace>, ImportError> {
        let path = match self {
            FeedList::AlertsInUa(p) | FeedList::UkraineAlarm(p) => p,
        };
        let text = std::fs::read_to_string(path).map_err(|source| ImportError::Read { path: path.clone(), source })?;
        let parsed = match self {
            FeedList::AlertsInUa(_) => crosswalk::alerts_in_ua_places(&text),
            FeedList::UkraineAlarm(_) => crosswalk::ukrainealarm_places(&text),
        };
        parsed.map_err(|error| ImportError::FeedList { path: path.clone(), error })
    }
}

/// `sirena regions import`: reads `csv`, attaches the feed ids the `lists` (in order of
/// trust) give, writes `config/regions/katottg.generated.tsv`.
pub fn import(csv: &Path, config: &Path, lists: &[FeedList]) -> Result<ImportReport, ImportError> {
    let text = std::fs::read_to_string(csv).map_err(|source| ImportError::Read { path: csv.to_owned(), source })?;
    let mut regions =
        codifier::parse(&text).map_err(|errors| ImportError::Codifier { path: csv.to_owned(), errors })?;
    let places = lists.iter().map(FeedList::read).collect::<Result<Vec<_>, _>>()?;
    let Crosswalk { assigned, unmatched } =
        if places.is_empty() { Crosswalk::default() } else { crosswalk::crosswalk(&regions, &places) };
    let by_region: HashMap<&RegionId, u32> = assigned.iter().map(|(uid, id)| (id, *uid)).collect();
    for r in &mut regions {
        r.feed_id = by_region.get(&r.id).copied();
    }
    let dir = config.join("regions");
    if !dir.is_dir() {
        return Err(ImportError::NoRegionsDir { dir: config.to_owned() });
    }
    let source = csv.file_name().map_or_else(|| csv.display().to_string(), |n| n.to_string_lossy().into_owned());
    let out = generated::write(&source, &regions);
    let path = generated_path(&dir);
    let changed = std::fs::read(&path).map_or(true, |old| old != out.as_bytes());
    if changed {
        // Written beside and renamed, so a watching daemon never reads half a file.
        let tmp = dir.join(format!(".{}.tmp", generated::FILE_NAME));
        std::fs::write(&tmp, &out).map_err(|source| ImportError::Write { path: tmp.clone(), source })?;
        std::fs::rename(&tmp, &path).map_err(|source| ImportError::Write { path: path.clone(), source })?;
    }
    let mut levels: Vec<(Level, usize)> = Vec::new();
    let mut sorted: Vec<Level> = regions.iter().map(|r| r.level).collect();
    sorted.sort();
    for l in sorted {
        match levels.last_mut() {
            Some((last, n)) if *last == l => *n += 1,
            _ => levels.push((l, 1)),
        }
    }
    Ok(ImportReport { path, levels, regions: regions.len(), changed, feed_ids: assigned.len(), unmatched })
}

/// What `sirena regions import-geo` did.
#[derive(Clone, Debug, PartialEq)]
pub struct GeoReport {
    pub path: PathBuf,
    pub regions: usize,
    pub polygons: usize,
    pub changed: bool,
}

/// `sirena regions import-geo`: reads a GeoJSON file of boundaries keyed by KATOTTG and
/// writes `config/regions/boundaries.generated.tsv`, only when its bytes change.
pub fn import_geo(file: &Path, config: &Path) -> Result<GeoReport, ImportError> {
    let text = std::fs::read_to_string(file).map_err(|source| ImportError::Read { path: file.to_owned(), source })?;
    let boundaries = geo::parse_geojson(&text).map_err(|error| ImportError::Geo { path: file.to_owned(), error })?;
    let dir = config.join("regions");
    if !dir.is_dir() {
        return Err(ImportError::NoRegionsDir { dir: config.to_owned() });
    }
    let source = file.file_name().map_or_else(|| file.display().to_string(), |n| n.to_string_lossy().into_owned());
    let out = geo::write(&source, &boundaries);
    let path = dir.join(geo::FILE_NAME);
    let changed = std::fs::read(&path).map_or(true, |old| old != out.as_bytes());
    if changed {
        let tmp = dir.join(format!(".{}.tmp", geo::FILE_NAME));
        std::fs::write(&tmp, &out).map_err(|source| ImportError::Write { path: tmp.clone(), source })?;
        std::fs::rename(&tmp, &path).map_err(|source| ImportError::Write { path: path.clone(), source })?;
    }
    let polygons = boundaries.regions.values().map(Vec::len).sum();
    Ok(GeoReport { path, regions: boundaries.regions.len(), polygons, changed })
}
