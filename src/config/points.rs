//! Points an operator writes — an assembly point's `at`, a region's `point` — held to
//! where they can be: inside Ukraine (a bounding box), and inside the place's oblast
//! when boundaries are imported (`sirena regions import-geo`). And an assembly point
//! written without `at`: its place's best known location. Pure.

use crate::regions::geo::Polygon;
use crate::regions::{Level, RegionId, RegionTree};

/// Ukraine's extent without boundaries, [south, north] × [west, east]. The shared
/// oblast boundaries (`geo/ralertsinua_oblasts_simplified.geojson`, Crimea included)
/// span lat 44.19–52.38, lon 22.14–40.22; the box is those, rounded out.
const LAT: (f64, f64) = (44.0, 52.5);
const LON: (f64, f64) = (22.0, 40.3);

/// How far outside its oblast's simplified outline a point may lie and still count as
/// inside: the shared outlines are simplified to about 100 m, so a point on the border
/// may fall just over it.
const BORDER_SLACK_KM: f64 = 2.0;

/// Where an assembly point written without `at` took its location from.
#[derive(Clone, Debug, PartialEq)]
pub enum AtFrom {
    /// The place's surveyed point (a region's `point`, not `approx`).
    Surveyed(RegionId),
    /// The centre of the place's own imported boundary (a hromada's).
    Boundary(RegionId),
    /// Nothing better than the place's `approx` point, an estimate: no pin is given
    /// (a resident walks to a pin), the message names the place.
    Estimate(RegionId),
    /// A settlement with no point: no pin either. Its hromada's centre could be
    /// kilometres from the village, in a field: coordinates are looked up, not made.
    Unlocated(RegionId),
}

/// Why `[lat, lon]` cannot be where it is written, in words, or `None` when it fits.
/// `oblast` is the place's oblast and its imported boundary, when there is one.
pub fn misplaced(lat: f64, lon: f64, oblast: Option<(&str, &[Polygon])>) -> Option<String> {
    let inside = |lat: f64, lon: f64| match oblast {
        Some((_, polys)) => polys.iter().any(|p| p.contains((lat, lon)) || near_outline(p, lat, lon)),
        None => (LAT.0..=LAT.1).contains(&lat) && (LON.0..=LON.1).contains(&lon),
    };
    if inside(lat, lon) {
        return None;
    }
    let where_ = match oblast {
        Some((name, _)) => format!("outside {name}"),
        None => "outside Ukraine".to_owned(),
    };
    let hint = if inside(lon, lat) {
        format!(": latitude and longitude swapped? write [{lon}, {lat}] (latitude first)")
    } else {
        String::new()
    };
    Some(format!("[{lat}, {lon}] is {where_}{hint}"))
}

/// True when the point lies within [`BORDER_SLACK_KM`] of the polygon's outline.
fn near_outline(p: &Polygon, lat: f64, lon: f64) -> bool {
    let k = lat.to_radians().cos();
    // Kilometres on a local plane: fine at a few kilometres.
    let xy = |(a, o): (f64, f64)| ((o - lon) * k * 111.32, (a - lat) * 111.32);
    p.outer.windows(2).any(|w| {
        let ((x1, y1), (x2, y2)) = (xy(w[0]), xy(w[1]));
        let (dx, dy) = (x2 - x1, y2 - y1);
        let len2 = dx * dx + dy * dy;
        let t = if len2 > 0.0 { (-(x1 * dx + y1 * dy) / len2).clamp(0.0, 1.0) } else { 0.0 };
        let (cx, cy) = (x1 + t * dx, y1 + t * dy);
        (cx * cx + cy * cy).sqrt() <= BORDER_SLACK_KM
    })
}

/// The oblast a region lies in (itself, for an oblast), its English name and its
/// imported boundary, when boundaries are imported and hold it.
pub fn oblast_boundary<'t>(tree: &'t RegionTree, id: &RegionId) -> Option<(String, &'t [Polygon])> {
    let oblast = tree.ancestors(id).last()?;
    let polys = tree.locator().boundaries().regions.get(oblast)?;
    Some((tree.name(oblast, crate::messages::Lang::En), polys.as_slice()))
}

/// The best known location of `place` for an assembly point written without `at`: its
/// surveyed point, else the centre of its own boundary when it is a hromada. An
/// `approx` point is never taken as the pin, nor a hromada's centre for a settlement
/// in it: a resident walks to the pin; with nothing better the point goes without one
/// (`None`, [`AtFrom::Estimate`] or [`AtFrom::Unlocated`]) and messages name the place.
/// `Err` says, in words, why a place larger than a hromada will not do.
pub fn best_location(tree: &RegionTree, place: &RegionId) -> Result<(Option<[f64; 2]>, AtFrom), String> {
    let region = tree.get(place).ok_or_else(|| format!("{place} is not a region defined in regions/"))?;
    if let (Some(p), false) = (region.point, region.approx) {
        return Ok((Some([p.lat, p.lon]), AtFrom::Surveyed(place.clone())));
    }
    // A raion's or oblast's centre is no place to send anyone.
    if region.level == Level::Hromada
        && let Some(c) = tree.locator().boundaries().regions.get(place).and_then(|polys| centre(polys))
    {
        return Ok((Some(c), AtFrom::Boundary(place.clone())));
    }
    if region.point.is_some() {
        return Ok((None, AtFrom::Estimate(place.clone())));
    }
    if region.level.is_settlement() {
        return Ok((None, AtFrom::Unlocated(place.clone())));
    }
    Err(format!(
        "its place {} has no point and no imported boundary of its own (sirena regions import-geo): add at = \
         [latitude, longitude], latitude first, e.g. at = [49.7, 37.6]",
        tree.full_name(place, crate::messages::Lang::En)
    ))
}

/// What the operator is told of an assembly point's location taken from its place
/// (what [`best_location`] gave).
pub fn told(tree: &RegionTree, place: &RegionId, from: &AtFrom, pt: Option<[f64; 2]>) -> String {
    let name = |r: &RegionId| tree.full_name(r, crate::messages::Lang::En);
    match (from, pt) {
        (AtFrom::Surveyed(r), Some([lat, lon])) => {
            format!("at taken from the surveyed point of {} ({lat}, {lon})", name(r))
        }
        (AtFrom::Boundary(r), Some([lat, lon])) => {
            format!("at taken from the boundary of {} (centre {lat}, {lon})", name(r))
        }
        (AtFrom::Unlocated(r), _) => format!(
            "no map pin: {} has no surveyed point, so residents get the place's name; write at = [latitude, \
             longitude] for a pin",
            name(r)
        ),
        _ => format!(
            "no map pin: the only point of {} is an estimate (approx = true), so residents get the place's name; \
             write at = [latitude, longitude] for a pin",
            name(place)
        ),
    }
}

/// The area-weighted centre of the largest polygon's outline, rounded to 4 decimals
/// (about 10 m); `None` for a degenerate outline.
fn centre(polys: &[Polygon]) -> Option<[f64; 2]> {
    let (mut best, mut best_area) = (None, 0.0);
    for p in polys {
        let (mut a2, mut clat, mut clon) = (0.0, 0.0, 0.0);
        for w in p.outer.windows(2) {
            let ((y1, x1), (y2, x2)) = (w[0], w[1]);
            let cross = x1 * y2 - x2 * y1;
            a2 += cross;
            clon += (x1 + x2) * cross;
            clat += (y1 + y2) * cross;
        }
        if a2.abs() > best_area {
            best_area = a2.abs();
            best = Some([clat / (3.0 * a2), clon / (3.0 * a2)]);
        }
    }
    best.map(|[lat, lon]| [(lat * 1e4).round() / 1e4, (lon * 1e4).round() / 1e4])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn square(lat: f64, lon: f64, side: f64) -> Polygon {
        let ring = vec![(lat, lon), (lat, lon + side), (lat + side, lon + side), (lat + side, lon), (lat, lon)];
        Polygon { outer: ring, holes: Vec::new() }
    }

    #[test]
    fn a_swapped_pair_outside_ukraine_is_told_with_the_fix() {
        let why = misplaced(37.58, 49.74, None).expect("a point in Iran");
        assert_eq!(
            why,
            "[37.58, 49.74] is outside Ukraine: latitude and longitude swapped? write [49.74, 37.58] (latitude first)"
        );
        assert_eq!(misplaced(49.74, 37.58, None), None);
        assert_eq!(misplaced(52.23, 21.01, None).as_deref(), Some("[52.23, 21.01] is outside Ukraine"));
    }

    #[test]
    fn with_a_boundary_the_oblast_decides_with_slack_for_simplification() {
        let polys = [square(49.0, 36.0, 2.0)];
        let oblast = Some(("Kharkiv Oblast", &polys[..]));
        assert_eq!(misplaced(49.5, 36.5, oblast), None);
        // 0.01° of latitude (about 1.1 km) past the southern edge: on the border.
        assert_eq!(misplaced(48.99, 36.5, oblast), None);
        assert_eq!(
            misplaced(50.4501, 30.5234, oblast).as_deref(),
            Some("[50.4501, 30.5234] is outside Kharkiv Oblast")
        );
    }

    #[test]
    fn the_centre_of_a_square_is_its_middle() {
        assert_eq!(centre(&[square(49.0, 36.0, 2.0), square(50.0, 30.0, 0.1)]), Some([50.0, 37.0]));
        assert_eq!(centre(&[]), None);
    }
}
