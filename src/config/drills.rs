//! `[[drill]]` tables (scheduled test messages) and `[retention]` in `sirena.toml`.
//!
//! A drill's `schedule` is a cron expression in Kyiv time: five fields (minute hour
//! day-of-month month day-of-week, as crontab), or six or seven with seconds first and
//! a year last, as the `cron` crate reads them. Its places are KATOTTG codes; whoever
//! opted in (`/drills on`) with a place inside one of them gets the drill.

use std::str::FromStr;
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use super::{ConfigError, SourceText};
use crate::regions::{RegionId, RegionTree};

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DrillSettings {
    pub id: Spanned<String>,
    pub schedule: Spanned<String>,
    pub places: Spanned<Vec<Spanned<String>>>,
    /// Words of the operators' own added to the drill's fixed frame, as written.
    pub text: Option<String>,
    /// The report is made when every delivery is done, or at the latest this long
    /// after the drill was due.
    #[serde(with = "crate::config::duration", default = "default_deadline")]
    pub deadline: Duration,
}

fn default_deadline() -> Duration {
    Duration::from_secs(3600)
}

/// `[retention]`: how long finished deliveries and help requests are kept. A key
/// absent: for ever.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetentionSettings {
    /// Finished delivery rows (sent, delivered, failed, expired, …) older than this
    /// many days are deleted once a day (`Store::purge_finished`).
    pub delivered_days: Option<u32>,
    /// Residents' help requests (their phones, their mobility) are deleted once a day
    /// this many days after their order ended (`Store::purge_help_requests`).
    pub help_requests_days: Option<u32>,
}

impl DrillSettings {
    /// The schedule as the `cron` crate takes it; validated at load.
    pub fn cron(&self) -> Result<cron::Schedule, cron::error::Error> {
        parse_schedule(self.schedule.get_ref())
    }

    /// The places; validated at load, so none is dropped.
    pub fn regions(&self) -> Vec<RegionId> {
        self.places.get_ref().iter().filter_map(|p| RegionId::parse(p.get_ref().trim()).ok()).collect()
    }
}

/// A crontab line of five fields gets a zero seconds field in front.
pub fn parse_schedule(s: &str) -> Result<cron::Schedule, cron::error::Error> {
    let s = s.trim();
    if s.split_whitespace().count() == 5 {
        cron::Schedule::from_str(&format!("0 {s}"))
    } else {
        cron::Schedule::from_str(s)
    }
}

/// Checks that need no region tree: ids, schedules, places' form, the deadline.
pub(super) fn check(src: &SourceText<'_>, drills: &[DrillSettings], errors: &mut Vec<ConfigError>) {
    let mut seen = std::collections::HashMap::new();
    for d in drills {
        let id = d.id.get_ref().trim();
        if id.is_empty() || !id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
            errors.push(src.error(Some(d.id.span()), "drill id must be letters, digits, `-` or `_`"));
        } else if let Some(first) = seen.insert(id.to_owned(), d.id.span()) {
            let (line, _) = super::line_col(src.text, first.start);
            errors.push(src.error(Some(d.id.span()), format!("drill id `{id}` is already used on line {line}")));
        }
        if let Err(e) = d.cron() {
            errors.push(src.error(
                Some(d.schedule.span()),
                format!(
                    "schedule `{}` is not a cron expression ({e}); e.g. \"0 10 * * 1\" is Mondays at 10:00 Kyiv time",
                    d.schedule.get_ref()
                ),
            ));
        }
        if d.places.get_ref().is_empty() {
            errors.push(src.error(Some(d.places.span()), "a drill needs at least one place"));
        }
        for p in d.places.get_ref() {
            if let Err(e) = RegionId::parse(p.get_ref().trim()) {
                errors.push(src.error(Some(p.span()), format!("place: {e}")));
            }
        }
        if d.deadline.is_zero() {
            errors.push(src.error(Some(d.id.span()), "a drill's deadline must be more than zero"));
        }
    }
}

/// Every place must be a region of the tree.
pub(super) fn check_places(
    src: &SourceText<'_>,
    drills: &[DrillSettings],
    tree: &RegionTree,
    errors: &mut Vec<ConfigError>,
) {
    for p in drills.iter().flat_map(|d| d.places.get_ref()) {
        if let Ok(id) = RegionId::parse(p.get_ref().trim())
            && tree.get(&id).is_none()
        {
            errors.push(src.error(Some(p.span()), format!("drill place {id} is not a region of the region files")));
        }
    }
}
