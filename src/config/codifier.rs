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
    /// The new file would hold fewer feed ids than the one it replaces: every alert on
    /// a region that lost its id would reach nobody.
    #[error(
        "{}: this import would drop {lost} of the {held} feed ids the file holds ({}); nothing was written. \
         Give the feed lists as before (--alerts-in-ua FILE --ukrainealarm FILE), or --drop-feed-ids to drop them",
        path.display(),
        examples.join(", ")
    )]
    WouldLoseFeedIds { path: PathBuf, lost: usize, held: usize, examples: Vec<String> },
    /// The file being replaced does not read, so the feed ids it holds cannot be kept.
    #[error(
        "{}: the feed ids it holds cannot be kept, the file does not read ({message}); nothing was written. \
         Give the feed lists (--alerts-in-ua FILE --ukrainealarm FILE), or --drop-feed-ids to replace it anyway",
        path.display()
    )]
    UnreadableFeedIds { path: PathBuf, message: String },
}

/// What to do with the feed ids the generated file already holds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum KeepFeedIds {
    /// Without feed lists, carry each region's feed id over; with them, take the
    /// lists' ids. Either way refuse when any feed id the file holds would be gone.
    #[default]
    Refuse,
    /// The operator said `--drop-feed-ids`: write what this import gives.
    Drop,
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
    /// Regions that kept the feed id the previous file gave them (an import without
    /// feed lists).
    pub kept_feed_ids: usize,
    /// Feed ids the previous file held that the new one does not (only with
    /// `--drop-feed-ids`; otherwise the import is refused).
    pub dropped_feed_ids: usize,
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
/// trust) give — or, without lists, the ids the file being replaced gave each region —
/// and writes `config/regions/katottg.generated.tsv`. Refuses, writing nothing, when a
/// feed id the old file holds would be gone, unless `keep` is [`KeepFeedIds::Drop`].
pub fn import(csv: &Path, config: &Path, lists: &[FeedList], keep: KeepFeedIds) -> Result<ImportReport, ImportError> {
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
    let path = generated_path(&dir);
    let old = match keep {
        KeepFeedIds::Refuse => held_feed_ids(&path)?,
        KeepFeedIds::Drop => Vec::new(),
    };
    let mut kept_feed_ids = 0;
    if places.is_empty() {
        let old_by_region: HashMap<&RegionId, u32> = old.iter().map(|(id, _, uid)| (id, *uid)).collect();
        for r in &mut regions {
            r.feed_id = old_by_region.get(&r.id).copied();
            kept_feed_ids += usize::from(r.feed_id.is_some());
        }
    }
    let new_uids: HashSet<u32> = regions.iter().filter_map(|r| r.feed_id).collect();
    let lost: Vec<&(RegionId, String, u32)> = old.iter().filter(|(_, _, uid)| !new_uids.contains(uid)).collect();
    if !lost.is_empty() {
        let mut examples: Vec<String> = lost.iter().take(3).map(|(_, name, uid)| format!("{uid} {name}")).collect();
        if lost.len() > examples.len() {
            examples.push("…".to_owned());
        }
        return Err(ImportError::WouldLoseFeedIds { path, lost: lost.len(), held: old.len(), examples });
    }
    let dropped_feed_ids = match keep {
        KeepFeedIds::Refuse => 0,
        KeepFeedIds::Drop => {
            let before = held_feed_ids(&path).unwrap_or_default();
            before.iter().filter(|(_, _, uid)| !new_uids.contains(uid)).count()
        }
    };
    let source = csv.file_name().map_or_else(|| csv.display().to_string(), |n| n.to_string_lossy().into_owned());
    let out = generated::write(&source, &regions);
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
    Ok(ImportReport {
        path,
        levels,
        regions: regions.len(),
        changed,
        feed_ids: assigned.len(),
        kept_feed_ids,
        dropped_feed_ids,
        unmatched,
    })
}

/// The feed ids a generated file holds: (region, its name, feed id); none when there
/// is no file yet.
fn held_feed_ids(path: &Path) -> Result<Vec<(RegionId, String, u32)>, ImportError> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(ImportError::UnreadableFeedIds { path: path.to_owned(), message: e.to_string() }),
    };
    let rows = generated::read(&text).map_err(|errors| ImportError::UnreadableFeedIds {
        path: path.to_owned(),
        message: errors.first().map_or_else(String::new, ToString::to_string),
    })?;
    Ok(rows.into_iter().filter_map(|(r, _)| r.feed_id.map(|uid| (r.id, r.name.uk, uid))).collect())
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
