//! Which regions a geographic alert area covers.
//!
//! Takes plain shapes, not any feed's types, so every source with polygons, circles or
//! codes can use it. Two ways in:
//! - a code: any value that is a KATOTTG code (`UA` + 17 digits) names that region, if
//!   the tree has it, whatever the code's name (`KATOTTG`, `UA`, …);
//! - a shape: every *settlement* whose point is known (not `approx`) and lies inside a
//!   polygon or circle. Larger units are not reached through their point: an oblast's
//!   point is its capital, and a polygon around Kharkiv city does not cover the oblast.
//!
//! Polygons are tested with ray casting on the (lon, lat) plane. That treats degrees
//! as a flat grid, which is fine at oblast scale (an edge of a few tens of km bends by
//! metres) and wrong only across the antimeridian or a pole, where Ukraine is not.
//! Circles use great-circle (haversine) distance.

use std::collections::BTreeSet;

use crate::regions::{RegionId, RegionTree};

/// Mean Earth radius (IUGG), km.
const EARTH_RADIUS_KM: f64 = 6371.0088;

/// An alert area as plain data: points are `(lat, lon)` in degrees (WGS 84).
#[derive(Clone, Copy, Debug, Default)]
pub struct Shape<'a> {
    /// Rings, closed or not.
    pub polygons: &'a [Vec<(f64, f64)>],
    /// `((lat, lon), radius_km)`.
    pub circles: &'a [((f64, f64), f64)],
    /// `(name, value)`; a value may hold several codes separated by spaces.
    pub geocodes: &'a [(String, String)],
}

/// Every region of the tree the area covers, sorted, without duplicates.
pub fn regions_in(shape: Shape<'_>, tree: &RegionTree) -> Vec<RegionId> {
    let mut out = BTreeSet::new();
    for (name, value) in shape.geocodes {
        for code in value.split_whitespace() {
            let code =
                if name.trim().eq_ignore_ascii_case("katottg") { code.to_ascii_uppercase() } else { code.into() };
            if let Ok(id) = RegionId::parse(&code)
                && tree.contains(&id)
            {
                out.insert(id);
            }
        }
    }
    if !shape.polygons.is_empty() || !shape.circles.is_empty() {
        for region in tree.iter() {
            let Some(point) = region.point.filter(|_| !region.approx && region.level.is_settlement()) else {
                continue;
            };
            let p = (point.lat, point.lon);
            if shape.polygons.iter().any(|ring| in_polygon(p, ring))
                || shape.circles.iter().any(|&(center, radius)| in_circle(p, center, radius))
            {
                out.insert(region.id.clone());
            }
        }
    }
    out.into_iter().collect()
}

/// True when `point` lies inside `ring` (ray casting; see the module docs). A point
/// exactly on an edge may fall either way. A ring of fewer than 3 points holds nothing.
pub fn in_polygon(point: (f64, f64), ring: &[(f64, f64)]) -> bool {
    if ring.len() < 3 {
        return false;
    }
    let (py, px) = point;
    let mut inside = false;
    let mut prev = ring[ring.len() - 1];
    for &cur in ring {
        let ((yi, xi), (yj, xj)) = (cur, prev);
        // The edge straddles the point's latitude, and crosses the ray east of it.
        if (yi > py) != (yj > py) && px < (xj - xi) * (py - yi) / (yj - yi) + xi {
            inside = !inside;
        }
        prev = cur;
    }
    inside
}

/// True when `point` is within `radius_km` of `center` (great-circle distance).
pub fn in_circle(point: (f64, f64), center: (f64, f64), radius_km: f64) -> bool {
    haversine_km(point, center) <= radius_km
}

/// Great-circle distance between two `(lat, lon)` points, in km.
pub fn haversine_km(a: (f64, f64), b: (f64, f64)) -> f64 {
    let (lat1, lat2) = (a.0.to_radians(), b.0.to_radians());
    let dlat = lat2 - lat1;
    let dlon = (b.1 - a.1).to_radians();
    let h = (dlat / 2.0).sin().powi(2) + lat1.cos() * lat2.cos() * (dlon / 2.0).sin().powi(2);
    2.0 * EARTH_RADIUS_KM * h.sqrt().min(1.0).asin()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::regions::tests_support::{
        KHARKIV, KHARKIV_CITY_H as KHARKIV_H, KINDRASHIVKA, KINDRASHIVKA_H, KUPIANSK, KUPIANSK_H, OBLAST, RAION,
    };
    use crate::regions::{Level, Point, Region};

    const KIVSHARIVKA: &str = "UA63080090020061282";

    const KUPIANSK_AT: (f64, f64) = (49.717, 37.583);
    const KHARKIV_AT: (f64, f64) = (49.9935, 36.2304);

    fn rid(s: &str) -> RegionId {
        RegionId::parse(s).expect("id")
    }

    fn region(id: &str, parent: Option<&str>, level: Level, point: Option<(f64, f64)>, approx: bool) -> Region {
        Region {
            point: point.map(|(lat, lon)| Point { lat, lon }),
            approx,
            ..Region::bare(rid(id), parent.map(rid), level)
        }
    }

    /// Points as in the shipped Kharkiv region file: the oblast's is Kharkiv city's,
    /// Kindrashivka's is an estimate.
    fn tree() -> RegionTree {
        RegionTree::build(vec![
            region(OBLAST, None, Level::Oblast, Some(KHARKIV_AT), false),
            region(RAION, Some(OBLAST), Level::Raion, None, false),
            region(KUPIANSK_H, Some(RAION), Level::Hromada, Some(KUPIANSK_AT), false),
            region(KUPIANSK, Some(KUPIANSK_H), Level::City, Some(KUPIANSK_AT), false),
            region(KIVSHARIVKA, Some(KUPIANSK_H), Level::Settlement, Some((49.63, 37.684)), false),
            region(KINDRASHIVKA_H, Some(RAION), Level::Hromada, None, false),
            region(KINDRASHIVKA, Some(KINDRASHIVKA_H), Level::Village, Some((49.79, 37.65)), true),
            region(KHARKIV_H, Some(OBLAST), Level::Hromada, None, false),
            region(KHARKIV, Some(KHARKIV_H), Level::City, Some(KHARKIV_AT), false),
        ])
        .expect("tree")
    }

    fn ids(list: &[&str]) -> Vec<RegionId> {
        list.iter().map(|s| rid(s)).collect()
    }

    #[test]
    fn distances_are_great_circle_km() {
        // Kupiansk to Kharkiv is about 100 km as the crow flies.
        let d = haversine_km(KUPIANSK_AT, KHARKIV_AT);
        assert!((95.0..110.0).contains(&d), "{d}");
        assert_eq!(haversine_km(KUPIANSK_AT, KUPIANSK_AT), 0.0);
        // One degree of latitude is about 111.2 km everywhere.
        assert!((haversine_km((49.0, 37.0), (50.0, 37.0)) - 111.19).abs() < 0.1);
        assert!(in_circle(KUPIANSK_AT, KUPIANSK_AT, 0.0), "a zero radius still holds its centre");
    }

    #[test]
    fn ray_casting_handles_concave_and_open_rings() {
        // A "C" open to the east around (49.7, 37.6): its mouth is outside.
        let c = [
            (49.5, 37.4),
            (49.9, 37.4),
            (49.9, 37.8),
            (49.8, 37.8),
            (49.8, 37.5),
            (49.6, 37.5),
            (49.6, 37.8),
            (49.5, 37.8),
        ];
        assert!(in_polygon((49.85, 37.6), &c), "upper arm");
        assert!(!in_polygon((49.7, 37.6), &c), "the mouth");
        assert!(in_polygon((49.7, 37.45), &c), "the back");
        assert!(!in_polygon((50.0, 37.6), &c), "north of it");
        let mut closed = c.to_vec();
        closed.push(c[0]);
        assert!(in_polygon((49.85, 37.6), &closed) && !in_polygon((49.7, 37.6), &closed), "closed ring the same");
        assert!(!in_polygon((49.7, 37.6), &c[..2]), "a segment holds nothing");
    }

    #[test]
    fn a_polygon_reaches_settlements_with_surveyed_points_only() {
        let square = vec![vec![(49.6, 37.5), (49.8, 37.5), (49.8, 37.7), (49.6, 37.7), (49.6, 37.5)]];
        let got = regions_in(Shape { polygons: &square, ..Shape::default() }, &tree());
        // Kindrashivka's estimated point is inside too, and the Kupiansk hromada has a
        // point, but neither counts.
        assert_eq!(got, ids(&[KUPIANSK, KIVSHARIVKA]));

        // Around Kharkiv city: the city, not the oblast whose point is the same.
        let around_kharkiv = vec![vec![(49.9, 36.1), (50.1, 36.1), (50.1, 36.4), (49.9, 36.4)]];
        assert_eq!(regions_in(Shape { polygons: &around_kharkiv, ..Shape::default() }, &tree()), ids(&[KHARKIV]));
    }

    #[test]
    fn a_circle_reaches_settlements_within_its_radius() {
        let small = [(KUPIANSK_AT, 5.0)];
        assert_eq!(regions_in(Shape { circles: &small, ..Shape::default() }, &tree()), ids(&[KUPIANSK]));
        // Kivsharivka is about 12 km from Kupiansk's centre.
        let wide = [(KUPIANSK_AT, 15.0)];
        assert_eq!(regions_in(Shape { circles: &wide, ..Shape::default() }, &tree()), ids(&[KUPIANSK, KIVSHARIVKA]));
    }

    #[test]
    fn katottg_codes_name_regions_the_tree_has() {
        let codes = vec![
            ("KATOTTG".to_string(), KUPIANSK_H.to_string()),
            ("katottg".to_string(), KINDRASHIVKA.to_lowercase()),
            ("UA".to_string(), format!("{OBLAST} {KHARKIV}")),
            ("KATOTTG".to_string(), "UA46060250010015970".to_string()), // Lviv: not in this tree
            ("FIPS6".to_string(), "006109".to_string()),
            ("KATOTTG".to_string(), "not a code".to_string()),
        ];
        let got = regions_in(Shape { geocodes: &codes, ..Shape::default() }, &tree());
        assert_eq!(got, ids(&[OBLAST, KINDRASHIVKA, KUPIANSK_H, KHARKIV]));
        assert!(regions_in(Shape::default(), &tree()).is_empty());
    }
}
