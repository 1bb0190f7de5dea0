//! Assembly points and region points that cannot mislead: an assembly point without
//! `at` takes its place's best known location and `check-config` says where from; a
//! point outside its oblast's imported boundary is an error at its line; the order
//! example of docs/operators.md loads as written. (Errors without boundaries are cases
//! of `tests/config.rs`.)

mod common;

use std::path::Path;
use std::process::{Command, Output};

use sirena::config::codifier::{KeepFeedIds, import, import_geo};
use sirena::config::load;

const CODIFIER: &str = "katottg/kodifikator-16-05-2025.csv";
const KHARKIV_OBLAST: &str = "UA63000000000041885";
/// Hyty, a village of Bohodukhiv hromada: in the codifier, in no hand-written file, no
/// surveyed point.
const HYTY: &str = "UA63020010020064103";
const BOHODUKHIVSKA: &str = "UA63020010000079018";

fn check_config(dir: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sirena"))
        .env_remove("RUST_LOG")
        .args(["check-config", dir.to_str().expect("utf-8")])
        .output()
        .expect("run sirena")
}

fn append(path: &Path, snippet: &str) -> String {
    let mut text = std::fs::read_to_string(path).expect("read");
    text.push('\n');
    text.push_str(snippet);
    std::fs::write(path, &text).expect("write");
    text
}

/// The first ```toml block of docs/operators.md §2, as written.
fn operators_order_example() -> String {
    let doc = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/operators.md")).expect("doc");
    let section = &doc[doc.find("## 2. Write the order").expect("§2 in docs/operators.md")..];
    let block = &section[section.find("```toml\n").expect("a toml block in §2") + "```toml\n".len()..];
    block[..block.find("```").expect("the block's end")].to_owned()
}

#[test]
fn the_order_example_of_the_operators_guide_passes_check_config_as_written() {
    let example = operators_order_example();
    assert!(example.contains("[[evacuation.assembly_points]]"), "{example}");
    let (_tmp, dir) = common::shipped_copy();
    append(&dir.join("regions/kharkiv.toml"), &example);
    let out = check_config(&dir);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(stdout.contains("(91 regions, 1 evacuation order)"), "{stdout}");
    // Its place's only point is an estimate: the operator is told there is no pin.
    assert!(
        stdout.contains(
            "order kindrashivka-2023-11, assembly point `Адмінбудівля громади`: no map pin: the only point of \
             Kindrashivka"
        ) && stdout.contains("is an estimate (approx = true)"),
        "{stdout}"
    );
    let config = load(&dir).expect("loads");
    let order = config.orders.iter().find(|o| o.id == "kindrashivka-2023-11").expect("the example order");
    assert_eq!(order.assembly_points[0].at, None, "an estimate is never a pin");
}

/// The whole codifier and the boundaries of every oblast and of Kharkiv oblast's
/// hromadas (from ../shared/data/geo) in a copy of the shipped config.
fn full_import(data: &Path, dir: &Path) {
    import(&data.join(CODIFIER), dir, &[], KeepFeedIds::Refuse).expect("import");
    let read = |f: &str| -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(data.join("geo").join(f)).expect("geojson")).expect("json")
    };
    let mut oblasts = read("ralertsinua_oblasts_simplified.geojson");
    let hromadas = read("osm_hromadas_simplified.geojson");
    let features = oblasts["features"].as_array_mut().expect("features");
    features.extend(
        hromadas["features"]
            .as_array()
            .expect("features")
            .iter()
            .filter(|f| f["properties"]["oblast_katottg"] == KHARKIV_OBLAST)
            .cloned(),
    );
    let file = dir.join("boundaries.geojson");
    std::fs::write(&file, serde_json::to_string(&oblasts).expect("json")).expect("write");
    import_geo(&file, dir).expect("import-geo");
}

/// An order for `place` with one assembly point written without `at`, appended to the
/// Kharkiv file; the line of that point.
fn order_without_at(dir: &Path, place: &str) -> usize {
    let text = append(
        &dir.join("regions/kharkiv.toml"),
        &format!(
            "[[evacuation]]\nid = \"hyty-1\"\nstatus = \"mandatory\"\ntargets = [\"{HYTY}\"]\n\
             issued_at = 2025-05-16T08:00:00+03:00\n[[evacuation.assembly_points]]\n\
             name = {{ uk = \"Клуб\" }}\nplace = \"{place}\"\n"
        ),
    );
    text.lines().position(|l| l == "[[evacuation.assembly_points]]").expect("the point") + 1
}

/// A village with no surveyed point gets no pin rather than its hromada's centre, which
/// may lie kilometres away: coordinates are looked up, not made. check-config says so.
#[test]
fn a_codifier_village_without_at_gets_no_pin_and_check_config_says_so() {
    let Some(data) = common::shared_data() else { return };
    let (_tmp, dir) = common::shipped_copy();
    full_import(&data, &dir);
    // Every shipped point lies inside its oblast's imported boundary.
    let before = load(&dir).unwrap_or_else(|e| panic!("{e}"));
    assert!(before.notes.is_empty(), "{:?}", before.notes);

    let line = order_without_at(&dir, HYTY);
    let config = load(&dir).unwrap_or_else(|e| panic!("{e}"));
    let order = config.orders.iter().find(|o| o.id == "hyty-1").expect("the order");
    assert_eq!(order.assembly_points[0].at, None, "no pin made up for the village");
    let out = check_config(&dir);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    let expected = format!(
        "note: {}:{line}: order hyty-1, assembly point `Клуб`: no map pin: Huty, Bohodukhivska Hromada, \
         Bohodukhiv Raion, Kharkiv Oblast has no surveyed point, so residents get the place's name; write at = \
         [latitude, longitude] for a pin\n",
        dir.join("regions/kharkiv.toml").display()
    );
    assert!(stdout.contains(&expected), "{expected}\nnot in\n{stdout}");
}

/// An assembly point placed at a hromada takes the centre of the hromada's own
/// imported boundary, and check-config says so.
#[test]
fn an_assembly_point_at_a_hromada_takes_its_boundarys_centre_and_check_config_says_so() {
    let Some(data) = common::shared_data() else { return };
    let (_tmp, dir) = common::shipped_copy();
    full_import(&data, &dir);
    let line = order_without_at(&dir, BOHODUKHIVSKA);
    let config = load(&dir).unwrap_or_else(|e| panic!("{e}"));
    let order = config.orders.iter().find(|o| o.id == "hyty-1").expect("the order");
    let [lat, lon] = order.assembly_points[0].at.expect("at taken from the hromada's boundary");
    // The centre of Bohodukhiv hromada (Bohodukhiv town is at 50.16, 35.52).
    assert!((50.0..50.35).contains(&lat) && (35.3..35.8).contains(&lon), "({lat}, {lon})");
    let hromada = sirena::regions::RegionId::parse(BOHODUKHIVSKA).expect("code");
    assert!(
        config.tree.locator().boundaries().regions[&hromada].iter().any(|p| p.contains((lat, lon))),
        "the centre is inside the hromada"
    );
    let out = check_config(&dir);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    let expected = format!(
        "note: {}:{line}: order hyty-1, assembly point `Клуб`: at taken from the boundary of Bohodukhivska \
         Hromada, Bohodukhiv Raion, Kharkiv Oblast (centre {lat}, {lon})\n",
        dir.join("regions/kharkiv.toml").display()
    );
    assert!(stdout.contains(&expected), "{expected}\nnot in\n{stdout}");
}

#[test]
fn with_boundaries_a_point_in_another_oblast_is_an_error_at_its_line() {
    let Some(data) = common::shared_data() else { return };
    let (_tmp, dir) = common::shipped_copy();
    full_import(&data, &dir);
    let path = dir.join("regions/kharkiv.toml");
    // Kyiv, for a village of Kharkiv oblast.
    let text = append(
        &path,
        &format!(
            "[[evacuation]]\nid = \"hyty-2\"\nstatus = \"mandatory\"\ntargets = [\"{HYTY}\"]\n\
             issued_at = 2025-05-16T08:00:00+03:00\n[[evacuation.assembly_points]]\n\
             name = {{ uk = \"Клуб\" }}\nplace = \"{HYTY}\"\nat = [50.4501, 30.5234]\n"
        ),
    );
    let line = text.lines().position(|l| l.starts_with("at = [50.4501")).expect("the at") + 1;
    let errors = load(&dir).expect_err("a point in Kyiv").0;
    assert!(
        errors.iter().any(|e| e.file == path
            && e.line == line
            && e.message == "assembly point `Клуб`: [50.4501, 30.5234] is outside Kharkiv Oblast"),
        "{errors:?}"
    );
    assert_eq!(errors.len(), 1, "{errors:?}");
}
