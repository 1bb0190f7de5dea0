//! `sirena audit` and `sirena drills report`: read the store the daemon writes.

use std::fmt::Write;
use std::path::Path;

use anyhow::Context;
use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};

use super::drills;
use crate::alerts::EventDetail;
use crate::messages::kyiv;
use crate::store::Store;

/// How many recent events `sirena drills report` looks through for drill runs.
const LOOK_BACK: usize = 2000;

/// Reads `--since`: RFC 3339 with an offset, or Kyiv wall-clock time as
/// `2026-12-01T10:00`, `2026-12-01T10:00:30` or `2026-12-01`.
pub fn parse_since(s: &str) -> Result<DateTime<Utc>, String> {
    let s = s.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(t.with_timezone(&Utc));
    }
    let naive = ["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M"]
        .iter()
        .find_map(|f| NaiveDateTime::parse_from_str(s, f).ok())
        .or_else(|| NaiveDate::parse_from_str(s, "%Y-%m-%d").ok().and_then(|d| d.and_hms_opt(0, 0, 0)))
        .ok_or_else(|| format!("`{s}` is not a time: write 2026-12-01T10:00 (Kyiv time) or RFC 3339"))?;
    // The offset Kyiv has at about that moment.
    let offset = *kyiv(naive.and_utc()).offset();
    Ok((naive - chrono::Duration::seconds(i64::from(offset.local_minus_utc()))).and_utc())
}

async fn open(dir: &Path) -> anyhow::Result<Option<std::sync::Arc<dyn Store>>> {
    let config = crate::config::load(dir)
        .map_err(|e| anyhow::anyhow!("{e}"))
        .with_context(|| format!("config {} is not valid", dir.display()))?;
    crate::config::location::announce(&config);
    if config.store_path().is_some_and(|p| !p.exists()) {
        return Ok(None);
    }
    Ok(Some(crate::subscribers::open_store(&config).await.context("opening the store")?))
}

fn time(ms: i64) -> String {
    kyiv(DateTime::from_timestamp_millis(ms).unwrap_or_default()).format("%Y-%m-%d %H:%M:%S").to_string()
}

/// The audit log from `since` on, one line per entry, in Kyiv time.
pub async fn audit(dir: &Path, since: Option<DateTime<Utc>>) -> anyhow::Result<String> {
    let Some(store) = open(dir).await? else { return Ok("no store yet: nothing has happened\n".to_owned()) };
    let entries = store.audit(since.map(|t| t.timestamp_millis())).await.context("reading the audit log")?;
    let mut out = String::new();
    for e in &entries {
        let _ = writeln!(out, "{}  {:<10}  {:<20}  {}", time(e.at_ms), e.who, e.action, e.what);
    }
    if entries.is_empty() {
        out.push_str("no audit entries\n");
    }
    Ok(out)
}

/// The receipt report of each drill run stored (of one drill with `drill`), newest
/// first.
pub async fn drills_report(dir: &Path, drill: Option<&str>) -> anyhow::Result<String> {
    let Some(store) = open(dir).await? else { return Ok("no store yet: no drill has run\n".to_owned()) };
    let recent = store.progress(LOOK_BACK).await.context("reading events")?;
    let mut out = String::new();
    for p in recent {
        let EventDetail::Drill { drill: id, run, .. } = &p.event.detail else { continue };
        if drill.is_some_and(|d| d != id) {
            continue;
        }
        let Some(report) = drills::read_report(&*store, &p.event.id).await.context("reading receipts")? else {
            continue;
        };
        let _ = writeln!(out, "drill {id} run {run} (sent {}):", time(p.created_ms));
        // The operators' chat has the same lines, joined (`drills::describe`).
        for line in report.lines() {
            let _ = writeln!(out, "  {line}");
        }
    }
    if out.is_empty() {
        out.push_str(match drill {
            Some(_) => "no run of that drill is stored\n",
            None => "no drill has run\n",
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_is_kyiv_time_unless_an_offset_is_given() {
        let at = |s: &str| DateTime::parse_from_rfc3339(s).expect("time").with_timezone(&Utc);
        assert_eq!(parse_since("2026-12-01T10:00"), Ok(at("2026-12-01T08:00:00Z")));
        assert_eq!(parse_since("2026-07-01T10:00"), Ok(at("2026-07-01T07:00:00Z")));
        assert_eq!(parse_since("2026-12-01"), Ok(at("2026-11-30T22:00:00Z")));
        assert_eq!(parse_since("2026-12-01T10:00:00Z"), Ok(at("2026-12-01T10:00:00Z")));
        assert!(parse_since("yesterday").is_err());
    }
}
