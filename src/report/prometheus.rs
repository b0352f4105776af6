//! The Prometheus textfile (node_exporter textfile collector format): gauges per
//! location with HELP and TYPE lines, and the unlabelled time of the run.
//!
//! Every run that holds the lock rewrites it ([`write_textfile`]), not only `--report`,
//! so the metrics are as fresh as the last judgement. The file always describes every
//! configured location, whatever `--location-name` chose: a run about one location must
//! not make the others' series vanish (alert rules would see them resolve). Status and
//! open problems are the store's, over all operations, so an hourly `--monitor` does not
//! hide what last night's `--verify` found.
//!
//! Not for: judging (it renders what the store knows) or the HTML report.

use super::data::{self, LocationReport};
use crate::outcome::Outcome;
use crate::problem::{Severity, Status};
use crate::run::{RunContext, SelectedLocation};
use crate::schedule::Schedule;
use crate::summary;
use anyhow::{Context, Result};
use chrono::{DateTime, Utc};
use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::PathBuf;

/// One location's values, gathered from the report model and the store.
#[derive(Debug, Clone)]
pub struct LocationMetrics {
    /// The location's host, as a `host` label: set in the fleet textfile only (a host's
    /// own textfile is as on a single host).
    pub host: Option<String>,
    pub report: LocationReport,
    /// Worst open problem of the location, over every operation.
    pub status: Status,
    pub open_warning: u64,
    pub open_critical: u64,
    /// The schedule's typical gap between fire times, in seconds.
    pub expected_interval: Option<i64>,
    pub last_verified_unix: Option<i64>,
    pub last_restore_success_unix: Option<i64>,
}

/// How a metric's samples come out of a location.
enum Samples {
    /// One sample, `{location}`; None: no sample.
    One(fn(&LocationMetrics) -> Option<f64>),
    /// One sample per severity, `{location, severity}`.
    BySeverity(fn(&LocationMetrics, Severity) -> f64),
}

const SEVERITIES: [Severity; 2] = [Severity::Warning, Severity::Critical];

/// (name, help, samples); the order of the file.
const METRICS: &[(&str, &str, Samples)] = &[
    (
        "backup_monitor_location_status",
        "Worst open problem of the location: 0 ok, 1 warning, 2 critical.",
        Samples::One(|m| Some(f64::from(m.status.exit_code()))),
    ),
    (
        "backup_monitor_open_problems",
        "Open problems of the location by severity (sum over severity for the total).",
        Samples::BySeverity(|m, s| match s {
            Severity::Warning => m.open_warning as f64,
            Severity::Critical => m.open_critical as f64,
        }),
    ),
    (
        "backup_monitor_expected_interval_seconds",
        "How often the schedule expects a backup, in seconds (for an irregular cron schedule, its typical gap).",
        Samples::One(|m| m.expected_interval.map(|s| s as f64)),
    ),
    (
        "backup_monitor_last_backup_timestamp_seconds",
        "Unix time of the newest backup present.",
        Samples::One(|m| m.report.latest_backup_unix.map(|t| t as f64)),
    ),
    (
        "backup_monitor_last_backup_size_bytes",
        "Size in bytes of the newest backup present.",
        Samples::One(|m| m.report.latest_backup.as_ref().map(|b| b.size as f64)),
    ),
    (
        "backup_monitor_backups_present",
        "Backups of the location present now, whatever their age.",
        Samples::One(|m| Some(m.report.backups_present as f64)),
    ),
    (
        "backup_monitor_missing_slots",
        "Scheduled backups that are due but were never made.",
        Samples::One(|m| Some(m.report.missing_slots.len() as f64)),
    ),
    (
        "backup_monitor_health_score",
        "Health score from 0 to 1 over the analysis window; no sample when nothing could be measured yet.",
        Samples::One(|m| m.report.health_score),
    ),
    (
        "backup_monitor_last_verified_timestamp_seconds",
        "Unix time a backup of the location last passed verification (its checksum or sidecar matched).",
        Samples::One(|m| m.last_verified_unix.map(|t| t as f64)),
    ),
    (
        "backup_monitor_verification_failures",
        "Backups that failed verification, or could not be verified, within the analysis window.",
        Samples::One(|m| Some(m.report.verification_failures as f64)),
    ),
    (
        "backup_monitor_last_restore_success_timestamp_seconds",
        "Unix time a backup of the location last passed a restore test.",
        Samples::One(|m| m.last_restore_success_unix.map(|t| t as f64)),
    ),
    (
        "backup_monitor_restore_test_failures",
        "Backups that failed a restore test within the analysis window.",
        Samples::One(|m| Some(m.report.restore_test_failures as f64)),
    ),
    (
        "backup_monitor_disk_free_bytes",
        "Free bytes on the filesystem holding the location, as last measured.",
        Samples::One(|m| m.report.disk.as_ref().map(|d| d.free_bytes as f64)),
    ),
    (
        "backup_monitor_backups_until_full",
        "How many more backups fit above the configured free-space reserve, at the recent size trend.",
        Samples::One(|m| m.report.forecast.as_ref().map(|f| f.backups_fit as f64)),
    ),
];

const LAST_RUN: &str = "backup_monitor_last_run_timestamp_seconds";

/// Rewrite the configured textfile atomically from the store (every configured location)
/// and `outcome`; returns its path, or None when no textfile is configured. `known`: what
/// the run's report read, used again when it covered every configured location.
pub fn write_textfile(
    ctx: &RunContext,
    outcome: &Outcome,
    known: Option<&data::LocationsRead>,
) -> Result<Option<PathBuf>> {
    let Some(path) = ctx.config.prometheus_path() else {
        return Ok(None);
    };
    let every = every_location(ctx)?;
    let doc = with_every_location(&every, outcome)?;
    let text = gather(&every, &doc, known)
        .map(|metrics| render(&metrics, ctx.now.timestamp()))
        .context("gathering the Prometheus metrics from the store")?;
    if let (Some(dir), Some(name)) = (path.parent(), path.file_name()) {
        let prefix = format!("{}.", name.to_string_lossy());
        super::remove_leftovers(dir, |staged| staged.starts_with(&prefix));
    }
    super::Staged::write(&path, text.as_bytes())
        .and_then(super::Staged::commit)
        .with_context(|| format!("cannot write the Prometheus textfile {}", path.display()))?;
    Ok(Some(path))
}

/// `ctx` widened to every configured location the store knows.
fn every_location<'a>(ctx: &RunContext<'a>) -> Result<RunContext<'a>> {
    // The run's own locations carry their ids; only the others are looked up.
    let own = |name: &str| ctx.locations.iter().find(|s| s.config.name == name);
    let others: Vec<&str> = ctx
        .config
        .backups
        .locations
        .iter()
        .map(|l| l.name.as_str())
        .filter(|name| own(name).is_none())
        .collect();
    let stored = ctx.store.location_ids(&others)?;
    let mut locations = Vec::new();
    for l in &ctx.config.backups.locations {
        let id = own(&l.name).map(|s| s.id).or(stored.get(&l.name).copied());
        if let Some(id) = id {
            locations.push(SelectedLocation { id, config: l });
        }
    }
    Ok(RunContext {
        locations,
        host: ctx.host.clone(),
        recent_log: ctx.recent_log.clone(),
        ..*ctx
    })
}

/// `outcome` with a summary (from the store) of each location the run did not cover.
fn with_every_location(every: &RunContext, outcome: &Outcome) -> Result<Outcome> {
    let mut doc = outcome.clone();
    let today = every.today();
    let missing: Vec<_> = every
        .locations
        .iter()
        .filter(|sel| !doc.locations.iter().any(|l| l.id == sel.id))
        .cloned()
        .collect();
    let glances = summary::glances(every, &missing)?;
    let ids: Vec<i64> = missing.iter().map(|s| s.id).collect();
    let stored = every.store.stored_scores(&ids, &today)?;
    for sel in &missing {
        let score = stored.get(&sel.id).copied().flatten();
        let glance = glances.get(&sel.id);
        doc.locations
            .push(summary::location(every, sel, glance, score, 0)?);
    }
    Ok(doc)
}

/// Each location's metrics.
pub fn gather(
    ctx: &RunContext,
    doc: &Outcome,
    known: Option<&data::LocationsRead>,
) -> Result<Vec<LocationMetrics>> {
    let reports = data::locations(ctx, doc, known)?;
    let ids: Vec<i64> = ctx.locations.iter().map(|l| l.id).collect();
    let mut open: HashMap<i64, Vec<Severity>> = HashMap::new();
    for p in ctx.store.open_problems(None, Some(&ids))? {
        if let Some(id) = p.location_id {
            open.entry(id).or_default().push(p.problem.severity);
        }
    }
    let mut out = Vec::new();
    for l in reports {
        let Some(sel) = ctx.locations.iter().find(|s| s.id == l.id) else {
            continue;
        };
        let severities = open.remove(&l.id).unwrap_or_default();
        let count = |s: Severity| severities.iter().filter(|&&x| x == s).count() as u64;
        out.push(LocationMetrics {
            host: None,
            status: match severities.iter().max() {
                None => Status::Ok,
                Some(Severity::Warning) => Status::Warning,
                Some(Severity::Critical) => Status::Critical,
            },
            open_warning: count(Severity::Warning),
            open_critical: count(Severity::Critical),
            expected_interval: typical_interval(&sel.config.schedule, ctx.now),
            last_verified_unix: unix_time(&l.last_passed_verification),
            last_restore_success_unix: unix_time(&l.last_passed_restore),
            report: l,
        });
    }
    Ok(out)
}

/// The Unix time of a time as the report shows it (RFC 3339, to the second).
pub fn unix_time(shown: &Option<String>) -> Option<i64> {
    shown
        .as_deref()
        .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.timestamp())
}

/// How many fire times [`typical_interval`] looks at: 24 gaps hold two of every month,
/// so a monthly schedule gets the same answer whenever it is asked.
const FIRES: usize = 25;

/// The median gap in seconds between the schedule's next fire times after `from`: the
/// period of a regular schedule (DST days aside), the usual gap of an irregular cron one.
pub fn typical_interval(schedule: &Schedule, from: DateTime<Utc>) -> Option<i64> {
    let mut fires = Vec::with_capacity(FIRES);
    let mut t = from;
    while fires.len() < FIRES {
        t = schedule.next_after(t)?;
        fires.push(t);
    }
    let mut gaps: Vec<i64> = fires
        .windows(2)
        .map(|w| (w[1] - w[0]).num_seconds())
        .collect();
    gaps.sort_unstable();
    gaps.get(gaps.len() / 2).copied()
}

/// The exposition text: every metric's HELP and TYPE lines, then its samples.
pub fn render(metrics: &[LocationMetrics], run_unix: i64) -> String {
    render_by(metrics, run_unix, None)
}

/// [`render`], the run's time labelled with the host that wrote the file (`writer`), as
/// the fleet textfile has it: every series there carries a `host` label.
pub fn render_by(metrics: &[LocationMetrics], run_unix: i64, writer: Option<&str>) -> String {
    let mut out = String::new();
    for (name, help, samples) in METRICS {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge");
        for m in metrics {
            let labels = match &m.host {
                Some(host) => format!(
                    "host=\"{}\",location=\"{}\"",
                    escape_label(host),
                    escape_label(&m.report.name)
                ),
                None => format!("location=\"{}\"", escape_label(&m.report.name)),
            };
            match samples {
                Samples::One(value) => {
                    if let Some(v) = value(m) {
                        let _ = writeln!(out, "{name}{{{labels}}} {v}");
                    }
                }
                Samples::BySeverity(value) => {
                    for s in SEVERITIES {
                        let _ = writeln!(
                            out,
                            "{name}{{{labels},severity=\"{}\"}} {}",
                            s.as_str(),
                            value(m, s)
                        );
                    }
                }
            }
        }
    }
    let label = writer.map_or_else(String::new, |h| format!("{{host=\"{}\"}}", escape_label(h)));
    let _ = writeln!(
        out,
        "# HELP {LAST_RUN} Unix time of the backup-monitor run that wrote this file.\n# TYPE {LAST_RUN} gauge\n{LAST_RUN}{label} {run_unix}"
    );
    out
}

/// Every metric name the file can hold (for the shipped rules and dashboard to check against).
pub fn metric_names() -> impl Iterator<Item = &'static str> {
    METRICS
        .iter()
        .map(|(name, _, _)| *name)
        .chain(std::iter::once(LAST_RUN))
}

/// A label value escaped as the exposition format requires.
pub fn escape_label(v: &str) -> String {
    v.replace('\\', r"\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schedule::Frequency;

    fn interval(frequency: &str, zone: &str) -> Option<i64> {
        let tz: chrono_tz::Tz = zone.parse().unwrap();
        let s = Schedule::new(Frequency::parse(frequency).unwrap(), None, None, tz).unwrap();
        let from = DateTime::parse_from_rfc3339("2026-03-20T12:00:00Z").unwrap();
        typical_interval(&s, from.with_timezone(&Utc))
    }

    #[test]
    fn labels_are_escaped() {
        assert_eq!(escape_label("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }

    #[test]
    fn the_interval_is_the_schedules_period() {
        assert_eq!(interval("hourly", "UTC"), Some(3600));
        // A DST change in the next fire times does not move the typical gap.
        assert_eq!(interval("daily", "Europe/Berlin"), Some(86_400));
        assert_eq!(interval("weekly", "Europe/Berlin"), Some(604_800));
        assert_eq!(interval("monthly", "UTC"), Some(31 * 86_400));
        assert_eq!(interval("*/15 * * * *", "UTC"), Some(900));
        // Weekdays only: the usual gap is a day, not the weekend's three.
        assert_eq!(interval("0 2 * * 1-5", "UTC"), Some(86_400));
    }

    #[test]
    fn every_metric_has_help_type_and_the_run_time() {
        let text = render(&[], 1_795_262_400);
        for name in metric_names() {
            assert!(text.contains(&format!("# HELP {name} ")), "{name}");
            assert!(text.contains(&format!("# TYPE {name} gauge\n")), "{name}");
        }
        assert!(text.ends_with(&format!("{LAST_RUN} 1795262400\n")));
        assert!(!text.contains('§'), "HELP texts cite no documents");
    }
}
