//! `sirena bench search`: name search over the whole codifier, as residents type.
//!
//! Imports the codifier into a copy of the shipped config, loads it as the daemon
//! does (timed), then asks the tree N queries made from its own settlements, in six
//! ways people write them: the name; shouted, with a prefix and another apostrophe;
//! the transliteration; one typo; a Russian spelling; nonsense. Each query is timed
//! alone; the figures are the latency percentiles and how often the place meant was
//! found (exactly where it should be).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context;
use serde_json::json;

use crate::regions::names::MatchKind;
use crate::regions::translit::transliterate;
use crate::regions::{Level, Region, RegionId, generated};

/// Where the codifier is looked for when no path is given: beside the checkout.
pub const DEFAULT_CODIFIER: &str = "../shared/data/katottg/kodifikator-16-05-2025.csv";

/// How a query was made from a name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Way {
    Name,
    Styled,
    Latin,
    Typo,
    Russian,
    Nonsense,
}

const WAYS: [Way; 6] = [Way::Name, Way::Styled, Way::Latin, Way::Typo, Way::Russian, Way::Nonsense];

/// A small deterministic generator (xorshift64*): the same queries every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

fn codifier_path(given: Option<&Path>) -> anyhow::Result<PathBuf> {
    if let Some(p) = given {
        return Ok(p.to_owned());
    }
    let candidates = [PathBuf::from(DEFAULT_CODIFIER), Path::new(env!("CARGO_MANIFEST_DIR")).join(DEFAULT_CODIFIER)];
    candidates.into_iter().find(|p| p.is_file()).with_context(|| {
        format!("the codifier is not at {DEFAULT_CODIFIER}; pass --codifier PATH (kodifikator-16-05-2025.csv)")
    })
}

fn make(way: Way, r: &Region, rng: &mut Rng) -> String {
    let name = r.name.uk.as_str();
    match way {
        Way::Name => name.to_owned(),
        Way::Styled => {
            let prefix = ["м. ", "с. ", "смт ", "с.", ""][rng.below(5)];
            format!("{prefix}{}", name.to_uppercase().replace('’', "'"))
        }
        Way::Latin => transliterate(name).to_lowercase(),
        Way::Typo => {
            let mut chars: Vec<char> = name.chars().collect();
            // Not the first letter: people get that one right.
            let at = 1 + rng.below(chars.len().saturating_sub(2).max(1));
            match rng.below(3) {
                0 => {
                    chars.remove(at);
                }
                1 => chars[at] = ['а', 'о', 'и', 'е', 'н', 'т'][rng.below(6)],
                _ if at + 1 < chars.len() => chars.swap(at, at + 1),
                _ => {
                    chars.remove(at);
                }
            }
            chars.into_iter().collect()
        }
        Way::Russian => name
            .replace(['і', 'ї'], "и")
            .replace('є', "е")
            .replace(['ь', '’', '\''], "")
            .replace("ськ", "ск")
            .replace("ів", "ов"),
        Way::Nonsense => {
            let letters: Vec<char> = "бвгджзклмнпрстфхцчшщ".chars().collect();
            (0..9).map(|_| letters[rng.below(letters.len())]).collect()
        }
    }
}

pub fn search(queries: usize, codifier: Option<&Path>) -> anyhow::Result<String> {
    let csv = codifier_path(codifier)?;
    let tmp = tempfile::tempdir().context("temporary config")?;
    let dir = tmp.path().join("config");
    crate::demo::write_embedded_config(&dir)?;
    let t = Instant::now();
    let imported = crate::config::codifier::import(&csv, &dir, &[], crate::config::codifier::KeepFeedIds::Refuse)?;
    let import_ms = t.elapsed().as_secs_f64() * 1e3;
    let rss_before = super::rss_bytes();
    let t = Instant::now();
    let config = crate::config::load(&dir).map_err(|e| anyhow::anyhow!("{e}"))?;
    let load_ms = t.elapsed().as_secs_f64() * 1e3;
    let tree_mb = rss_before.zip(super::rss_bytes()).map(|(a, b)| b.saturating_sub(a) as f64 / 1e6);
    let tree = &config.tree;

    // The same regions as TOML tables, parsed only, to show why the generated file is
    // not TOML.
    let generated_text = std::fs::read_to_string(&imported.path)?;
    let toml_text: String = generated::read(&generated_text)
        .map_err(|e| anyhow::anyhow!("{e:?}"))?
        .iter()
        .map(|(r, _)| {
            format!(
                "[[region]]\nid = \"{}\"\n{}level = \"{:?}\"\nname = {{ uk = {} }}\n\n",
                r.id,
                r.parent.as_ref().map(|p| format!("parent = \"{p}\"\n")).unwrap_or_default(),
                r.level,
                toml::Value::String(r.name.uk.clone())
            )
        })
        .collect();
    let t = Instant::now();
    let parsed: toml::Table = toml::from_str(&toml_text).context("the TOML comparison")?;
    let toml_ms = t.elapsed().as_secs_f64() * 1e3;
    drop(parsed);

    let people: Vec<&Region> = tree
        .iter()
        .filter(|r| matches!(r.level, Level::City | Level::Settlement | Level::Village | Level::Hromada))
        .collect();
    anyhow::ensure!(!people.is_empty(), "no settlements in {}", csv.display());
    let mut rng = Rng(0x5eed_0000_0009);
    // SIRENA_BENCH_MISSES=1 lists every query that missed, on stderr.
    let show_misses = std::env::var("SIRENA_BENCH_MISSES").is_ok_and(|v| v == "1");
    let mut times: Vec<Duration> = Vec::with_capacity(queries);
    // Per way: queries, found as it should be, found at all.
    let mut tally = [(0usize, 0usize); WAYS.len()];
    for i in 0..queries {
        let way = WAYS[i % WAYS.len()];
        let mut r = people[rng.below(people.len())];
        // Typos only in long names, as the search promises.
        while way == Way::Typo && r.name.uk.chars().count() < 8 {
            r = people[rng.below(people.len())];
        }
        let q = make(way, r, &mut rng);
        let t = Instant::now();
        let found = tree.search(&q);
        times.push(t.elapsed());
        let has = |id: &RegionId| found.regions.iter().any(|x| x.id == *id);
        let ok = match way {
            Way::Name | Way::Styled | Way::Latin => found.kind == MatchKind::Exact && has(&r.id),
            // Of a name that many places share only the first offers are shown: the
            // name is what a near match must recover.
            Way::Typo | Way::Russian => found.regions.iter().any(|x| x.name.uk == r.name.uk),
            Way::Nonsense => found.regions.is_empty(),
        };
        if !ok && show_misses {
            let offers: Vec<&str> = found.regions.iter().map(|x| x.name.uk.as_str()).collect();
            eprintln!("miss ({way:?}): {q:?} for {} → {:?} {offers:?}", r.name.uk, found.kind);
        }
        let slot = &mut tally[i % WAYS.len()];
        slot.0 += 1;
        slot.1 += usize::from(ok);
    }
    times.sort();
    let pct = |p: f64| -> f64 {
        let i = ((times.len() as f64 * p).ceil() as usize).clamp(1, times.len().max(1)) - 1;
        times.get(i).map_or(0.0, |d| d.as_secs_f64() * 1e3)
    };
    let (p50, p99, max) = (pct(0.50), pct(0.99), times.last().map_or(0.0, |d| d.as_secs_f64() * 1e3));
    let mut out = format!(
        "codifier {}: {} regions; import {import_ms:.0} ms; config load with the generated file {load_ms:.0} ms \
         (the same regions as TOML tables: {toml_ms:.0} ms to parse alone)\n",
        csv.display(),
        tree.len()
    );
    if let Some(mb) = tree_mb {
        out.push_str(&format!("the loaded config (tree and name index) holds about {mb:.0} MB\n"));
    }
    out.push_str(&format!("{queries} queries: p50 {p50:.3} ms, p99 {p99:.3} ms, max {max:.3} ms\n"));
    for (way, (n, ok)) in WAYS.iter().zip(tally) {
        let want = match way {
            Way::Name | Way::Styled | Way::Latin => "exact match holding the place",
            Way::Typo | Way::Russian => "its name among the offers",
            Way::Nonsense => "nothing found",
        };
        out.push_str(&format!(
            "  {:<9} {ok:>5}/{n:<5} ({:.1} %) {want}\n",
            format!("{way:?}").to_lowercase(),
            100.0 * ok as f64 / n.max(1) as f64
        ));
    }
    let line = json!({ "queries": queries, "p50_ms": super::round(p50, 3), "p99_ms": super::round(p99, 3) });
    out.push_str(&line.to_string());
    Ok(out)
}
