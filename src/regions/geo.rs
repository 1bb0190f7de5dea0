//! Where a shared location is: the nearest settlement with a surveyed point, else the
//! region whose boundary holds it, else nowhere sirena knows (abroad, the sea).
//!
//! Settlement points come from the region files (`point`, never an `approx` one, as for
//! CAP polygons in [`crate::alerts::area`]). They sit in an R-tree (`rstar`) on the unit
//! sphere: the chord between two points there grows with their great-circle distance, so
//! the tree's nearest neighbour is the nearest on the ground, then checked against the
//! radius with [`haversine_km`].
//!
//! Boundaries are an operator's file: `sirena regions import-geo FILE.geojson` reads a
//! GeoJSON FeatureCollection of Polygons and MultiPolygons keyed by a KATOTTG code
//! (`katotth`, `katottg` or `id` in the properties) and writes
//! `regions/boundaries.generated.tsv`, one ring a line:
//!
//! ```text
//! id→polygon→ring→lat,lon lat,lon …
//! UA63000000000041885→0→0→49.98,35.40 50.10,35.60 …
//! ```
//! (→ is a tab; ring 0 of a polygon is its outline, further rings its holes.) Pure: text
//! in, text out; the loader reads the file beside the codifier.

use std::collections::BTreeMap;

use rstar::RTree;
use rstar::primitives::GeomWithData;

use super::{RegionId, RegionTree};
use crate::alerts::area::{haversine_km, in_polygon};

/// The generated boundary file's name under `config/regions/`.
pub const FILE_NAME: &str = "boundaries.generated.tsv";

/// How far the nearest surveyed settlement may be from a shared point, unless
/// `[telegram] location_radius_km` says otherwise.
pub const DEFAULT_RADIUS_KM: f64 = 15.0;

/// One polygon: its outline and its holes, points `(lat, lon)`.
#[derive(Clone, Debug, PartialEq)]
pub struct Polygon {
    pub outer: Vec<(f64, f64)>,
    pub holes: Vec<Vec<(f64, f64)>>,
}

impl Polygon {
    /// True when the point is inside the outline and in none of the holes.
    pub fn contains(&self, point: (f64, f64)) -> bool {
        in_polygon(point, &self.outer) && !self.holes.iter().any(|h| in_polygon(point, h))
    }
}

/// The regions' boundaries, by region.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Boundaries {
    pub regions: BTreeMap<RegionId, Vec<Polygon>>,
}

impl Boundaries {
    /// The region whose boundary holds the point (the first by id if two overlap).
    pub fn locate(&self, point: (f64, f64)) -> Option<&RegionId> {
        self.regions.iter().find(|(_, polys)| polys.iter().any(|p| p.contains(point))).map(|(id, _)| id)
    }

    pub fn is_empty(&self) -> bool {
        self.regions.is_empty()
    }
}

/// What a shared point is.
#[derive(Clone, Debug, PartialEq)]
pub enum Located {
    /// A surveyed settlement within the radius, this far away.
    Settlement { id: RegionId, km: f64 },
    /// No settlement near, but inside this region's boundary (an oblast).
    Region(RegionId),
    /// Inside no boundary sirena has, and no settlement near: abroad or at sea.
    Outside,
}

type Entry = GeomWithData<[f64; 3], RegionId>;

/// The settlements' R-tree, the boundaries and the radius. Part of a [`RegionTree`].
#[derive(Clone, Debug)]
pub struct Locator {
    points: RTree<Entry>,
    boundaries: Boundaries,
    radius_km: f64,
}

impl Default for Locator {
    fn default() -> Self {
        Locator { points: RTree::new(), boundaries: Boundaries::default(), radius_km: DEFAULT_RADIUS_KM }
    }
}

/// A `(lat, lon)` point on the unit sphere.
fn on_sphere((lat, lon): (f64, f64)) -> [f64; 3] {
    let (lat, lon) = (lat.to_radians(), lon.to_radians());
    [lat.cos() * lon.cos(), lat.cos() * lon.sin(), lat.sin()]
}

impl Locator {
    /// Indexes every settlement of `tree` with a surveyed point.
    pub fn new(tree: &RegionTree, boundaries: Boundaries, radius_km: f64) -> Locator {
        let entries: Vec<Entry> = tree
            .iter()
            .filter(|r| r.level.is_settlement() && !r.approx)
            .filter_map(|r| r.point.map(|p| GeomWithData::new(on_sphere((p.lat, p.lon)), r.id.clone())))
            .collect();
        Locator { points: RTree::bulk_load(entries), boundaries, radius_km }
    }

    /// Settlements with a surveyed point.
    pub fn settlements(&self) -> usize {
        self.points.size()
    }

    pub fn boundaries(&self) -> &Boundaries {
        &self.boundaries
    }

    /// Where `(lat, lon)` is. A point that is not a coordinate (NaN, out of range) is
    /// outside.
    pub fn locate(&self, tree: &RegionTree, lat: f64, lon: f64) -> Located {
        if !(lat.is_finite() && lon.is_finite() && (-90.0..=90.0).contains(&lat) && (-180.0..=180.0).contains(&lon)) {
            return Located::Outside;
        }
        if let Some(near) = self.points.nearest_neighbor(on_sphere((lat, lon))) {
            let region = tree.get(&near.data).and_then(|r| r.point);
            if let Some(p) = region {
                let km = haversine_km((lat, lon), (p.lat, p.lon));
                if km <= self.radius_km {
                    return Located::Settlement { id: near.data.clone(), km };
                }
            }
        }
        match self.boundaries.locate((lat, lon)) {
            Some(id) => Located::Region(id.clone()),
            None => Located::Outside,
        }
    }
}

/// A problem in a boundary file.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum GeoError {
    #[error("not GeoJSON: {0}")]
    Json(String),
    #[error("not a FeatureCollection (no \"features\" list)")]
    NotCollection,
    #[error("feature {index}: no KATOTTG code (properties katotth, katottg or id)")]
    NoCode { index: usize },
    #[error("feature {index}: `{code}` is not a KATOTTG code")]
    BadCode { index: usize, code: String },
    #[error("feature {index} ({code}): {message}")]
    Geometry { index: usize, code: String, message: String },
    #[error("line {line}: {message}")]
    Line { line: usize, message: String },
}

/// Reads a GeoJSON FeatureCollection of Polygons and MultiPolygons keyed by KATOTTG.
/// Features of other geometries are an error: a boundary file holds areas.
pub fn parse_geojson(text: &str) -> Result<Boundaries, GeoError> {
    let doc: serde_json::Value = serde_json::from_str(text).map_err(|e| GeoError::Json(e.to_string()))?;
    let features = doc.get("features").and_then(|f| f.as_array()).ok_or(GeoError::NotCollection)?;
    let mut out = Boundaries::default();
    for (index, f) in features.iter().enumerate() {
        let props = f.get("properties");
        let code = ["katotth", "katottg", "id"]
            .iter()
            .find_map(|k| props.and_then(|p| p.get(*k)).and_then(|v| v.as_str()))
            .ok_or(GeoError::NoCode { index })?;
        let id = RegionId::parse(code).map_err(|_| GeoError::BadCode { index, code: code.to_owned() })?;
        let bad = |message: &str| GeoError::Geometry { index, code: code.to_owned(), message: message.to_owned() };
        let geometry = f.get("geometry").ok_or_else(|| bad("no geometry"))?;
        let coords = geometry.get("coordinates").ok_or_else(|| bad("no coordinates"))?;
        let polygons = match geometry.get("type").and_then(|t| t.as_str()) {
            Some("Polygon") => vec![polygon(coords).ok_or_else(|| bad("a ring is not a list of [lon, lat]"))?],
            Some("MultiPolygon") => coords
                .as_array()
                .ok_or_else(|| bad("coordinates are not a list"))?
                .iter()
                .map(|p| polygon(p).ok_or_else(|| bad("a ring is not a list of [lon, lat]")))
                .collect::<Result<_, _>>()?,
            other => return Err(bad(&format!("geometry {} is not a Polygon or MultiPolygon", other.unwrap_or("?")))),
        };
        out.regions.entry(id).or_default().extend(polygons);
    }
    Ok(out)
}

/// GeoJSON rings (`[[lon, lat], …]`, outline first) to a polygon of `(lat, lon)`.
fn polygon(rings: &serde_json::Value) -> Option<Polygon> {
    let mut rings = rings.as_array()?.iter().map(|ring| {
        ring.as_array()?
            .iter()
            .map(|p| match p.as_array()?.as_slice() {
                [lon, lat, ..] => Some((lat.as_f64()?, lon.as_f64()?)),
                _ => None,
            })
            .collect::<Option<Vec<_>>>()
            .filter(|r| r.len() >= 3)
    });
    let outer = rings.next()??;
    let holes = rings.collect::<Option<Vec<_>>>()?;
    Some(Polygon { outer, holes })
}

/// Writes the generated file: sorted by id, byte-stable, coordinates to 7 decimals
/// (about a centimetre, what GeoJSON files carry).
pub fn write(source: &str, boundaries: &Boundaries) -> String {
    let mut out = String::new();
    out.push_str("# Generated by `sirena regions import-geo` — do not edit: the next import overwrites it.\n");
    out.push_str(&format!("# From {source}: {} regions.\n", boundaries.regions.len()));
    out.push_str("id\tpolygon\tring\tpoints (lat,lon)\n");
    for (id, polys) in &boundaries.regions {
        for (p, poly) in polys.iter().enumerate() {
            for (r, ring) in std::iter::once(&poly.outer).chain(&poly.holes).enumerate() {
                let points: Vec<String> = ring.iter().map(|(lat, lon)| format!("{lat:.7},{lon:.7}")).collect();
                out.push_str(&format!("{id}\t{p}\t{r}\t{}\n", points.join(" ")));
            }
        }
    }
    out
}

/// Reads the generated file.
pub fn read(text: &str) -> Result<Boundaries, GeoError> {
    let mut out = Boundaries::default();
    for (n, line) in text.lines().enumerate() {
        let line_no = n + 1;
        if line.starts_with('#') || line.starts_with("id\t") || line.trim().is_empty() {
            continue;
        }
        let err = |message: String| GeoError::Line { line: line_no, message };
        let mut cols = line.split('\t');
        let (Some(id), Some(p), Some(r), Some(points), None) =
            (cols.next(), cols.next(), cols.next(), cols.next(), cols.next())
        else {
            return Err(err("expected 4 tab-separated columns".into()));
        };
        let id = RegionId::parse(id).map_err(|_| err(format!("`{id}` is not a KATOTTG code")))?;
        let p: usize = p.parse().map_err(|_| err(format!("polygon `{p}` is not a number")))?;
        let r: usize = r.parse().map_err(|_| err(format!("ring `{r}` is not a number")))?;
        let ring = points
            .split(' ')
            .map(|pt| {
                let (lat, lon) = pt.split_once(',')?;
                Some((lat.parse().ok()?, lon.parse().ok()?))
            })
            .collect::<Option<Vec<(f64, f64)>>>()
            .ok_or_else(|| err("points are not `lat,lon` pairs".into()))?;
        let polys = out.regions.entry(id).or_default();
        match (polys.len(), r) {
            (len, 0) if p == len => polys.push(Polygon { outer: ring, holes: Vec::new() }),
            (len, _) if p + 1 == len && r == polys[p].holes.len() + 1 => polys[p].holes.push(ring),
            _ => return Err(err(format!("polygon {p} ring {r} is out of order"))),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::regions::tests_support::{self, KHARKIV, KUPIANSK, LVIV_OBLAST, OBLAST};
    use crate::regions::{Point, Region};

    fn rid(s: &str) -> RegionId {
        RegionId::parse(s).expect("id")
    }

    /// A square oblast around Kharkiv oblast's rough extent, with a square hole.
    fn boundaries() -> Boundaries {
        let square =
            |lat0: f64, lon0: f64, lat1: f64, lon1: f64| vec![(lat0, lon0), (lat0, lon1), (lat1, lon1), (lat1, lon0)];
        let mut b = Boundaries::default();
        b.regions.insert(
            rid(OBLAST),
            vec![Polygon { outer: square(48.5, 35.0, 50.5, 38.5), holes: vec![square(49.0, 35.1, 49.1, 35.2)] }],
        );
        b.regions.insert(rid(LVIV_OBLAST), vec![Polygon { outer: square(49.0, 22.5, 50.5, 25.0), holes: vec![] }]);
        b
    }

    fn tree() -> RegionTree {
        let mut regions: Vec<Region> = tests_support::tree().iter().cloned().collect();
        for r in &mut regions {
            if r.id.as_str() == KUPIANSK {
                r.point = Some(Point { lat: 49.717, lon: 37.583 });
            }
            if r.id.as_str() == KHARKIV {
                r.point = Some(Point { lat: 49.9935, lon: 36.2304 });
            }
        }
        RegionTree::build(regions).expect("tree")
    }

    #[test]
    fn the_nearest_surveyed_settlement_within_the_radius() {
        let tree = tree();
        let l = Locator::new(&tree, boundaries(), 15.0);
        assert_eq!(l.settlements(), 2);
        // 5 km east of Kupiansk: Kupiansk, not Kharkiv (100 km west).
        match l.locate(&tree, 49.717, 37.65) {
            Located::Settlement { id, km } => {
                assert_eq!(id.as_str(), KUPIANSK);
                assert!((4.0..6.0).contains(&km), "{km}");
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(l.locate(&tree, 50.0, 36.2), Located::Settlement { id, .. } if id.as_str() == KHARKIV));
    }

    #[test]
    fn an_approx_point_is_never_used() {
        let mut regions: Vec<Region> = tree().iter().cloned().collect();
        for r in &mut regions {
            r.approx = r.id.as_str() == KUPIANSK;
        }
        let tree = RegionTree::build(regions).expect("tree");
        let l = Locator::new(&tree, boundaries(), 15.0);
        assert_eq!(l.locate(&tree, 49.717, 37.583), Located::Region(rid(OBLAST)));
    }

    #[test]
    fn beyond_the_radius_the_boundary_decides_and_outside_is_outside() {
        let tree = tree();
        let l = Locator::new(&tree, boundaries(), 15.0);
        // Between Kharkiv and Kupiansk, 60 km and more from either: the oblast.
        assert_eq!(l.locate(&tree, 49.4, 36.9), Located::Region(rid(OBLAST)));
        // In the hole: not the oblast.
        assert_eq!(l.locate(&tree, 49.05, 35.15), Located::Outside);
        // Warsaw, the Black Sea, garbage.
        assert_eq!(l.locate(&tree, 52.23, 21.01), Located::Outside);
        assert_eq!(l.locate(&tree, 43.5, 34.0), Located::Outside);
        assert_eq!(l.locate(&tree, f64::NAN, 30.0), Located::Outside);
        assert_eq!(l.locate(&tree, 95.0, 30.0), Located::Outside);
        // A wider radius reaches Kupiansk from there.
        let wide = Locator::new(&tree, boundaries(), 80.0);
        assert!(matches!(wide.locate(&tree, 49.4, 36.9), Located::Settlement { .. }));
    }

    #[test]
    fn point_in_polygon_with_holes() {
        let b = boundaries();
        assert_eq!(b.locate((49.5, 36.0)), Some(&rid(OBLAST)));
        assert_eq!(b.locate((49.05, 35.15)), None);
        assert_eq!(b.locate((49.8, 24.0)), Some(&rid(LVIV_OBLAST)));
        assert_eq!(b.locate((47.0, 30.0)), None);
    }

    #[test]
    fn geojson_reads_polygons_and_multipolygons_and_round_trips() {
        let text = format!(
            r#"{{"type":"FeatureCollection","features":[
              {{"type":"Feature","properties":{{"katotth":"{OBLAST}"}},"geometry":{{"type":"Polygon",
                "coordinates":[[[35,48.5],[38.5,48.5],[38.5,50.5],[35,50.5],[35,48.5]],[[35.1,49],[35.2,49],[35.2,49.1],[35.1,49]]]}}}},
              {{"type":"Feature","properties":{{"id":"{LVIV_OBLAST}"}},"geometry":{{"type":"MultiPolygon",
                "coordinates":[[[[22.5,49],[25,49],[25,50.5],[22.5,49]]],[[[26,49],[27,49],[27,50],[26,49]]]]}}}}
            ]}}"#
        );
        let b = parse_geojson(&text).expect("parse");
        assert_eq!(b.regions[&rid(OBLAST)].len(), 1);
        assert_eq!(b.regions[&rid(OBLAST)][0].holes.len(), 1);
        assert_eq!(b.regions[&rid(OBLAST)][0].outer[1], (48.5, 38.5));
        assert_eq!(b.regions[&rid(LVIV_OBLAST)].len(), 2);
        let written = write("test.geojson", &b);
        assert_eq!(read(&written).expect("read"), b);
        assert_eq!(write("test.geojson", &read(&written).expect("read")), written, "byte-stable");
    }

    #[test]
    fn bad_files_are_named_errors() {
        assert!(matches!(parse_geojson("nope"), Err(GeoError::Json(_))));
        assert_eq!(parse_geojson("{}"), Err(GeoError::NotCollection));
        let no_code = r#"{"features":[{"properties":{},"geometry":{"type":"Polygon","coordinates":[]}}]}"#;
        assert_eq!(parse_geojson(no_code), Err(GeoError::NoCode { index: 0 }));
        let point = format!(
            r#"{{"features":[{{"properties":{{"katotth":"{OBLAST}"}},"geometry":{{"type":"Point","coordinates":[1,2]}}}}]}}"#
        );
        assert!(matches!(parse_geojson(&point), Err(GeoError::Geometry { index: 0, .. })));
        assert!(matches!(read(&format!("{OBLAST}\t0\t1\t1,2 3,4 5,6\n")), Err(GeoError::Line { line: 1, .. })));
        assert!(matches!(read(&format!("{OBLAST}\t0\t0\t1;2\n")), Err(GeoError::Line { line: 1, .. })));
    }

    /// The shipped OpenStreetMap-derived oblast file, when present (../shared/data/geo).
    #[test]
    fn the_shared_oblast_file_places_kharkiv_lviv_and_not_the_sea_or_poland() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../shared/data/geo/ralertsinua_oblasts_simplified.geojson");
        let Ok(text) = std::fs::read_to_string(&path) else {
            assert!(!std::env::var("SIRENA_REQUIRE_SHARED").is_ok_and(|v| v == "1"), "{} missing", path.display());
            println!("SKIP: {} not found", path.display());
            return;
        };
        let b = parse_geojson(&text).expect("parse");
        assert_eq!(b.regions.len(), 27);
        assert_eq!(b.locate((49.99, 36.23)), Some(&rid(OBLAST)), "Kharkiv");
        assert_eq!(b.locate((49.84, 24.03)), Some(&rid(LVIV_OBLAST)), "Lviv");
        assert_eq!(b.locate((43.5, 34.0)), None, "the Black Sea");
        assert_eq!(b.locate((52.23, 21.01)), None, "Warsaw");
        // Kyiv city is a hole in Kyiv oblast, and a feature of its own.
        assert_eq!(b.locate((50.45, 30.52)).map(|r| r.as_str()), Some("UA80000000000093317"));
    }
}
