//! `sirena feed decode` over every payload in `../shared/data`: each file decodes, or is
//! rejected with an error that says what is wrong, and the real samples come out as
//! the alerts they hold.
//!
//! Without the data these tests print `SKIP` and pass, unless `SIRENA_REQUIRE_SHARED=1`.

mod common;

use common::shared_data;
use std::path::{Path, PathBuf};
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_sirena");

struct Decoded {
    ok: bool,
    lines: Vec<serde_json::Value>,
    stderr: String,
}

fn decode(source: &str, file: &Path) -> Decoded {
    let (_tmp, config) = common::shipped_copy();
    let out = Command::new(BIN)
        .args(["feed", "decode", "--source", source, "--config"])
        .arg(&config)
        .arg(file)
        .output()
        .expect("binary runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let lines = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{}: not a JSON line ({e}): {l}", file.display())))
        .collect();
    Decoded { ok: out.status.success(), lines, stderr: String::from_utf8_lossy(&out.stderr).into_owned() }
}

fn payloads(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("readable")
        .map(|e| e.expect("entry").path())
        .filter(|p| !p.to_string_lossy().ends_with(".source.txt"))
        .collect();
    files.sort();
    files
}

#[test]
fn every_shared_payload_decodes_or_says_why_not() {
    let Some(data) = shared_data() else { return };
    for (folder, source) in [("alerts_in_ua", "alerts-in-ua"), ("ukrainealarm", "ukrainealarm"), ("cap", "cap")] {
        for file in payloads(&data.join(folder)) {
            let d = decode(source, &file);
            let name = file.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_owned();
            if d.ok {
                for line in &d.lines {
                    for key in ["source", "kind", "region", "level", "threats", "started_at"] {
                        assert!(line.get(key).is_some(), "{name}: line without `{key}`: {line}");
                    }
                }
            } else {
                // The error names the file and what in it is wrong.
                let reason = d.stderr.trim();
                assert!(reason.starts_with(&file.display().to_string()), "{name}: {reason}");
                assert!(
                    reason.len() > file.display().to_string().len() + 10,
                    "{name}: an error that says nothing: {reason}"
                );
            }
        }
    }
}

#[test]
fn real_samples_come_out_as_their_alerts() {
    let Some(data) = shared_data() else { return };
    let luhansk = decode("alerts-in-ua", &data.join("alerts_in_ua/ralertsinua_active_alerts_sample.json"));
    assert!(luhansk.ok, "{}", luhansk.stderr);
    assert_eq!(luhansk.lines.len(), 1);
    assert_eq!(luhansk.lines[0]["region"], "UA44000000000018893", "the uid comes as a string");
    assert_eq!(luhansk.lines[0]["kind"], "air_raid");
    assert_eq!(luhansk.lines[0]["started_at"], "2022-04-04T16:45:39+00:00");

    let php = decode("alerts-in-ua", &data.join("alerts_in_ua/php_fixture_active_alerts.json"));
    assert!(php.ok, "{}", php.stderr);
    assert!(php.lines.iter().any(|l| l["region"] == "UA63000000000041885"), "Kharkiv oblast, uid as an int");

    let history = decode("alerts-in-ua", &data.join("alerts_in_ua/php_fixture_alerts_history.json"));
    assert!(
        history.lines.iter().all(|l| l["started_at"] != "2023-04-14T10:00:00+00:00"),
        "finished alerts are not active"
    );

    let wrong = decode("alerts-in-ua", &data.join("alerts_in_ua/locations_hierarchy.json"));
    assert!(!wrong.ok && wrong.stderr.contains("alerts"), "names the missing field: {}", wrong.stderr);

    let regions = decode("ukrainealarm", &data.join("ukrainealarm/regions_v3_2022-07.json"));
    assert!(regions.ok && regions.lines.is_empty() && regions.stderr.contains("regions tree"), "{}", regions.stderr);

    // A US CAP Cancel for an alert sirena never saw: logged and ignored.
    let cancel = decode("cap", &data.join("cap/ipaws-cap12-cancel-signed.xml"));
    assert!(cancel.ok && cancel.lines.is_empty(), "{}", cancel.stderr);
    assert!(
        cancel.stderr.contains(
            "message AS-NV-58d33e3a-1f9a-4909-9d59-34e90b33b3e8 from bbrundage@dps.state.nv.us: ignored: it refers to no \
             alert sirena has seen (bbrundage@dps.state.nv.us,AS-NV-e18921c7-1b35-4a81-9705-42d25c265ddd,2019-04-18T12:02:32-06:00)"
        ),
        "{}",
        cancel.stderr
    );
    // Notes name no Rust type: no `CamelCase(` debug output.
    assert!(!cancel.stderr.contains("Ignored("), "{}", cancel.stderr);

    // Real payloads from elsewhere: said in words why nothing is here.
    let Some(real) = data.join("real/cap").is_dir().then(|| data.join("real/cap")) else { return };
    let nws = decode("cap", &real.join("google__weather.cap"));
    assert!(nws.ok && nws.lines.is_empty(), "{}", nws.stderr);
    assert!(
        nws.stderr.contains("ignored: no area in Ukraine: 2 geocodes of scheme FIPS6, UGC and no polygon"),
        "{}",
        nws.stderr
    );
    let broken = decode("cap", &real.join("google__no_link.atom"));
    assert!(broken.ok, "{}", broken.stderr);
    assert!(broken.stderr.contains("skipped, one with no link to a CAP message and none inside"), "{}", broken.stderr);
    let xxe = decode("cap", &real.join("google__xee.cap"));
    assert!(!xxe.ok && xxe.stderr.contains("never expands entities"), "{}", xxe.stderr);

    // The windows-1251 fixture: an evacuation of Kupiansk raion, decoded.
    let fixture =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/cap/evacuation-kupiansk-raion.windows-1251.xml");
    let evac = decode("cap", &fixture);
    assert!(evac.ok, "{}", evac.stderr);
    assert_eq!(evac.lines.len(), 1, "{}", evac.stderr);
    assert_eq!(evac.lines[0]["kind"], "evacuation");
    assert_eq!(evac.lines[0]["region"], "UA63080000000032022");
}
