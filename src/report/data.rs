//! The report's model: everything the HTML shows, gathered once from the run document
//! and the store. The JSON report is this model serialised; HTML, CSV and Prometheus
//! render from it. Not for: layout (calendar grids and chart geometry live in
//! `calendar` and `charts`), and never the disk — only the store.

use super::forecast::{self, Forecast};
use crate::config::{Location, SizeOrPercent};
use crate::outcome::{LatestBackup, LocationSummary, OpenProblem, Outcome};
use crate::problem::{Severity, Status};
use crate::run::{RunContext, SelectedLocation};
use crate::schedule::Frequency;
use crate::store::{FailureCounts, LastPassed, ReportBackup, ReportCheck};
use anyhow::Result;
use chrono::{DateTime, Datelike, NaiveDate, TimeZone, Utc};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// A table of checks this long or shorter is listed whole; a longer one lists what did
/// not pass and counts the rest.
pub const SHORT_TABLE: usize = 10;

/// The most verifications or restore tests of one window read for the report.
const MAX_CHECKS: usize = 100_000;

/// A health band. Ordered from good to bad so the worse of two is their `max`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Band {
    Ok,
    Unknown,
    Warning,
    Critical,
}

impl Band {
    /// The score against the thresholds alone.
    pub fn of_score(score: Option<f64>, warning: f64, critical: f64) -> Band {
        match score {
            None => Band::Unknown,
            Some(s) if s < critical => Band::Critical,
            Some(s) if s < warning => Band::Warning,
            Some(_) => Band::Ok,
        }
    }

    fn of_status(status: Status) -> Band {
        match status {
            Status::Ok => Band::Ok,
            Status::Warning => Band::Warning,
            Status::Critical => Band::Critical,
            Status::Unknown => Band::Unknown,
        }
    }

    /// The band shown beside a status: the score's band, never better than the status
    /// (a good score over the window does not make an open critical problem "ok").
    pub fn shown(score: Option<f64>, status: Status, warning: f64, critical: f64) -> Band {
        Band::of_score(score, warning, critical).max(Band::of_status(status))
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct ReportData {
    pub version: String,
    /// RFC 3339 in the configured zone.
    pub generated_at: String,
    pub timezone: String,
    pub window: Window,
    /// YYYY-MM-DD in the configured zone.
    pub today: String,
    /// Worst open problem: `ok | warning | critical`.
    pub status: String,
    pub exit_code: i32,
    pub overall_health: Option<f64>,
    /// The overall health band: the score against the thresholds, never better than
    /// `status`.
    pub overall_health_status: Band,
    /// The overall score against the thresholds alone.
    pub overall_score_status: Band,
    pub thresholds: Thresholds,
    pub locations: Vec<LocationReport>,
    /// Mean stored score of the locations per day of the window.
    pub health_trend: Vec<DayScore>,
    /// Days from the first of the window's first month to today that have a backup or a
    /// missing slot.
    pub calendar: Vec<CalendarDay>,
    /// Every backup whose timestamp is in the window (the CSV's rows).
    pub backups: Vec<BackupEntry>,
    /// The verifications and restore tests of the window that the tables list: failures
    /// first, then newest first; a long table lists only what did not pass (see the
    /// summaries for the rest).
    pub verifications: Vec<CheckEntry>,
    pub restore_tests: Vec<CheckEntry>,
    pub verification_summary: CheckSummary,
    pub restore_test_summary: CheckSummary,
    /// Open problems of the reported locations (and of the run itself), worst first.
    pub problems: Vec<OpenProblem>,
    /// Acknowledgements, accepted changes and silences of the window, newest first.
    pub actions: Vec<ActionRow>,
    #[serde(skip)]
    pub generated_unix: i64,
}

/// One action people took (the audit log), as the report shows it.
#[derive(Debug, Clone, Serialize)]
pub struct ActionRow {
    /// RFC 3339 in the configured zone.
    pub at: String,
    pub user: String,
    pub host: String,
    /// `ack`, `accept`, `silence` or `unsilence`.
    pub action: String,
    pub target: String,
    pub reason: String,
}

/// How many checks of the window there were, by result, and which results the table
/// leaves out.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct CheckSummary {
    pub total: u64,
    /// Checks per result (`passed`, `failed`, …), most important first.
    pub results: Vec<ResultCount>,
    /// Checks counted here but not listed in the table.
    pub not_listed: Vec<ResultCount>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ResultCount {
    pub result: String,
    pub count: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Window {
    pub start: String,
    pub end: String,
    pub days: u32,
}

#[derive(Debug, Clone, Copy, Serialize)]
pub struct Thresholds {
    pub warning: f64,
    pub critical: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct LocationReport {
    pub id: i64,
    pub name: String,
    #[serde(rename = "type")]
    pub kind: String,
    /// Calendar mark: `d`, `w` or `g`.
    pub mark: String,
    /// The schedule in words: `hourly`, `daily`, `weekly`, `monthly` or `cron `…``.
    pub schedule: String,
    /// Worst open problem of the location: `ok | warning | critical`.
    pub status: String,
    pub health_score: Option<f64>,
    /// The health band shown: the score against the thresholds, never better than `status`.
    pub health_status: Band,
    /// The score against the thresholds alone.
    pub score_status: Band,
    /// Due slots of the window and how many of them have a backup.
    pub compliance: Compliance,
    /// When a backup of this location last passed a restore test (any time, not only in
    /// the window), RFC 3339 in the configured zone.
    pub last_passed_restore: Option<String>,
    pub last_passed_restore_age_seconds: Option<i64>,
    /// When a backup of this location last passed verification.
    pub last_passed_verification: Option<String>,
    pub backups_present: u64,
    pub backups_in_window: u64,
    pub bytes_in_window: u64,
    pub latest_backup: Option<LatestBackup>,
    pub latest_backup_age_seconds: Option<i64>,
    pub missing_slots: Vec<String>,
    pub open_problems: u64,
    pub critical_problems: u64,
    pub verification_failures: u64,
    pub restore_test_failures: u64,
    pub disk: Option<DiskSpace>,
    pub forecast: Option<Forecast>,
    /// Stored daily scores over the window, oldest first.
    pub health_history: Vec<DayScore>,
    /// Several slots a day (hourly, or a cron expression firing more than daily).
    pub several_a_day: bool,
    #[serde(skip)]
    pub latest_backup_unix: Option<i64>,
}

/// Schedule compliance over the window: satisfied due slots / due slots.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Compliance {
    pub satisfied: u64,
    pub due: u64,
    /// 0–100, one decimal; None when nothing was due yet.
    pub percent: Option<f64>,
}

impl Compliance {
    pub fn new(satisfied: u64, due: u64) -> Compliance {
        Compliance {
            satisfied,
            due,
            percent: (due > 0).then(|| (satisfied as f64 * 1000.0 / due as f64).round() / 10.0),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct DiskSpace {
    pub free_bytes: u64,
    pub total_bytes: u64,
    pub free_ratio: Option<f64>,
    /// When the last `--monitor` measured it.
    pub measured_at: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DayScore {
    pub day: String,
    pub score: Option<f64>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct CalendarDay {
    pub date: String,
    /// Backup types present that day, as marks `d`, `w`, `g` (in that order).
    pub marks: Vec<String>,
    pub backups: u64,
    /// Missing due slots that day (`location HH:MM`).
    pub missing: Vec<String>,
    /// Each location with a backup or a missing slot that day, in the order of
    /// `locations`: one location's gap is never hidden by another's backup.
    pub locations: Vec<LocationDay>,
}

/// One location's day in the calendar.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct LocationDay {
    pub location: String,
    pub backups: u64,
    /// Start times (`HH:MM`) of the due slots missed that day.
    pub missing: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct BackupEntry {
    pub location: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub path: String,
    pub timestamp: String,
    pub size: u64,
    pub checksum_algo: Option<String>,
    pub checksum: Option<String>,
    pub last_verification: Option<String>,
    pub last_verified_at: Option<String>,
    pub last_restore: Option<String>,
    pub last_restored_at: Option<String>,
    pub deleted_at: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct CheckEntry {
    pub location: String,
    pub path: String,
    pub at: String,
    /// Verification method, or the restored format.
    pub method: String,
    pub result: String,
    pub bytes: u64,
    pub files: u64,
    pub duration_ms: u64,
    pub detail: Option<String>,
}

/// Gather the report of the run's locations from `doc` and the store; with it, what the
/// locations' part read, for the same run's textfile ([`locations`]).
pub fn collect(ctx: &RunContext, doc: &Outcome) -> Result<(ReportData, LocationsRead)> {
    let tz = ctx.tz();
    let ids: Vec<i64> = ctx.locations.iter().map(|l| l.id).collect();
    let names: HashMap<i64, &SelectedLocation> = ctx.locations.iter().map(|l| (l.id, l)).collect();
    let local = |t: DateTime<Utc>| ctx.local_rfc3339(t);
    let window_start = ctx.window_start();
    let today = ctx.day_in_zone(ctx.now);
    let read = read_locations(ctx)?;
    let locations = location_reports(ctx, doc, &read)?;
    let LocationsRead {
        backups, scores, ..
    } = &read;
    let (warning, critical) = (
        ctx.config.monitoring.health_warning.0,
        ctx.config.monitoring.health_critical.0,
    );

    let in_window = |b: &&ReportBackup| b.ts >= window_start;
    let check = |c: ReportCheck| CheckEntry {
        location: names
            .get(&c.location_id)
            .map(|l| l.config.name.clone())
            .unwrap_or_default(),
        path: c.path,
        at: local(c.at),
        method: c.method,
        result: c.result,
        bytes: c.bytes,
        files: c.files,
        duration_ms: c.duration_ms,
        detail: c.detail,
    };
    let (verifications, verification_summary) = check_table(
        ctx.store
            .recent_verifications(&ids, window_start, MAX_CHECKS)?
            .into_iter()
            .map(check)
            .collect(),
    );
    let (restore_tests, restore_test_summary) = check_table(
        ctx.store
            .recent_restore_tests(&ids, window_start, MAX_CHECKS)?
            .into_iter()
            .map(check)
            .collect(),
    );
    let mut problems = doc.problems.clone();
    problems.sort_by_key(|p| std::cmp::Reverse(p.severity));
    let order: Vec<&str> = locations.iter().map(|l| l.name.as_str()).collect();
    let report = ReportData {
        version: env!("CARGO_PKG_VERSION").to_string(),
        generated_at: local(ctx.now),
        timezone: tz.name().to_string(),
        window: Window {
            start: local(window_start),
            end: local(ctx.now),
            days: ctx.days,
        },
        today: today.to_string(),
        status: doc.status.as_str().to_string(),
        exit_code: doc.exit_code,
        overall_health: doc.overall_health,
        overall_health_status: Band::shown(doc.overall_health, doc.status, warning, critical),
        overall_score_status: Band::of_score(doc.overall_health, warning, critical),
        thresholds: Thresholds { warning, critical },
        health_trend: mean_per_day(scores),
        calendar: calendar_days(ctx, backups, &doc.locations, &names, &order),
        backups: backups
            .iter()
            .filter(in_window)
            .map(|b| backup_entry(ctx, b, names[&b.location_id].config))
            .collect(),
        verifications,
        restore_tests,
        verification_summary,
        restore_test_summary,
        problems,
        actions: ctx
            .store
            .actions_since(window_start)?
            .into_iter()
            .map(|a| ActionRow {
                at: local(a.at),
                user: a.user,
                host: a.host,
                action: a.action,
                target: a.target,
                reason: a.reason,
            })
            .collect(),
        locations,
        generated_unix: ctx.now.timestamp(),
    };
    Ok((report, read))
}

/// What the locations' part of the report reads from the store. A run's report keeps it
/// for the textfile the same run writes after it: these figures change only with
/// `--monitor`, `--verify` and `--test-restore`, which are done by then.
pub struct LocationsRead {
    /// The locations read, in id order.
    ids: Vec<i64>,
    /// Backups from the first of the window's first month (the calendar's) to now.
    backups: Vec<ReportBackup>,
    /// Stored daily scores of the window.
    scores: Vec<crate::store::DailyScore>,
    /// Failures in the window and last passed checks, per location.
    checks: HashMap<i64, (FailureCounts, LastPassed)>,
    /// The last scan's disk figures, per location.
    scans: HashMap<i64, crate::store::LocationScanState>,
}

/// The ids of the run's locations, in id order.
fn sorted_ids(ctx: &RunContext) -> Vec<i64> {
    let mut ids: Vec<i64> = ctx.locations.iter().map(|l| l.id).collect();
    ids.sort_unstable();
    ids
}

fn read_locations(ctx: &RunContext) -> Result<LocationsRead> {
    let tz = ctx.tz();
    let ids = sorted_ids(ctx);
    let window_start = ctx.window_start();
    let first_day = ctx.day_in_zone(window_start);
    let calendar_since = tz
        .from_local_datetime(&month_start(first_day).and_time(chrono::NaiveTime::MIN))
        .earliest()
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or(window_start)
        .min(window_start);
    Ok(LocationsRead {
        backups: ctx.store.report_backups(&ids, calendar_since, ctx.now)?,
        scores: ctx.store.daily_scores(
            &ids,
            &first_day.to_string(),
            &ctx.day_in_zone(ctx.now).to_string(),
        )?,
        checks: ctx.store.location_checks(&ids, window_start)?,
        scans: ctx.store.location_scan_states(&ids)?,
        ids,
    })
}

/// Each selected location's part of the report, in the order of the config.
fn location_reports(
    ctx: &RunContext,
    doc: &Outcome,
    read: &LocationsRead,
) -> Result<Vec<LocationReport>> {
    let thresholds = (
        ctx.config.monitoring.health_warning.0,
        ctx.config.monitoring.health_critical.0,
    );
    let mut locations = Vec::new();
    for sel in &ctx.locations {
        let Some(summary) = doc.locations.iter().find(|l| l.id == sel.id) else {
            continue;
        };
        locations.push(location_report(
            ctx,
            sel,
            summary,
            read,
            &doc.problems,
            thresholds,
        )?);
    }
    Ok(locations)
}

/// The locations' part of the report alone (what the Prometheus textfile needs): no
/// check tables, calendar or actions are read. What the run's report read (`known`) is
/// used again when it covered the same locations.
pub fn locations(
    ctx: &RunContext,
    doc: &Outcome,
    known: Option<&LocationsRead>,
) -> Result<Vec<LocationReport>> {
    match known {
        Some(known) if known.ids == sorted_ids(ctx) => location_reports(ctx, doc, known),
        _ => location_reports(ctx, doc, &read_locations(ctx)?),
    }
}

/// How bad a location status is, for ordering worst first.
pub fn status_rank(status: &str) -> u8 {
    match status {
        "critical" => 3,
        "warning" => 2,
        "unknown" => 1,
        _ => 0,
    }
}

/// How much a check result matters to a reader: failures first, passes last.
fn result_rank(result: &str) -> u8 {
    match result {
        "failed" | "error" => 0,
        "passed" => 3,
        "recorded" => 2,
        _ => 1,
    }
}

/// Order checks (newest first) failures first, and summarise a long table: every check
/// that failed or could not be performed stays listed, the rest are only counted.
fn check_table(mut rows: Vec<CheckEntry>) -> (Vec<CheckEntry>, CheckSummary) {
    rows.sort_by_key(|c| result_rank(&c.result));
    let mut results: Vec<ResultCount> = Vec::new();
    for c in &rows {
        match results.iter_mut().find(|r| r.result == c.result) {
            Some(r) => r.count += 1,
            None => results.push(ResultCount {
                result: c.result.clone(),
                count: 1,
            }),
        }
    }
    let total = rows.len() as u64;
    let mut not_listed = Vec::new();
    if rows.len() > SHORT_TABLE {
        not_listed = results
            .iter()
            .filter(|r| result_rank(&r.result) > 0)
            .cloned()
            .collect();
        rows.retain(|c| result_rank(&c.result) == 0);
    }
    (
        rows,
        CheckSummary {
            total,
            results,
            not_listed,
        },
    )
}

fn month_start(d: NaiveDate) -> NaiveDate {
    d.with_day(1).unwrap_or(d)
}

fn location_report(
    ctx: &RunContext,
    sel: &SelectedLocation,
    summary: &LocationSummary,
    read: &LocationsRead,
    problems: &[OpenProblem],
    (warning, critical): (f64, f64),
) -> Result<LocationReport> {
    let own: Vec<&ReportBackup> = read
        .backups
        .iter()
        .filter(|b| b.location_id == sel.id)
        .collect();
    let own = own.as_slice();
    let health_history: Vec<DayScore> = read
        .scores
        .iter()
        .filter(|s| s.location_id == sel.id)
        .map(|s| DayScore {
            day: s.day.clone(),
            score: s.score,
        })
        .collect();
    let (failures, passed) = read.checks.get(&sel.id).copied().unwrap_or_default();
    let loc = sel.config;
    let window_start = ctx.window_start();
    let in_window: Vec<&&ReportBackup> = own.iter().filter(|b| b.ts >= window_start).collect();
    let mine: Vec<&OpenProblem> = problems
        .iter()
        .filter(|p| p.location.as_deref() == Some(loc.name.as_str()))
        .collect();
    let scan = read.scans.get(&sel.id).cloned().unwrap_or_default();
    let disk = match (scan.free_bytes, scan.total_bytes) {
        (Some(free_bytes), Some(total_bytes)) => Some(DiskSpace {
            free_bytes,
            total_bytes,
            free_ratio: (total_bytes > 0).then(|| free_bytes as f64 / total_bytes as f64),
            measured_at: scan.last_scan_at.map(|t| ctx.local_rfc3339(t)),
        }),
        _ => None,
    };
    let forecast = disk.as_ref().and_then(|d| {
        let sizes: Vec<u64> = own.iter().map(|b| b.size).collect();
        let usable = d.free_bytes.saturating_sub(reserve(loc, d.total_bytes));
        forecast::forecast(usable, &sizes, median_interval(own))
    });
    let timestamps = ctx.store.backup_timestamps(sel.id)?;
    let judged = loc.schedule.judge_standing(
        window_start,
        ctx.now,
        timestamps.iter().min().copied(),
        &timestamps,
    );
    let compliance = Compliance::new(
        judged.iter().filter(|j| j.satisfied).count() as u64,
        judged.len() as u64,
    );
    let latest_backup_unix = summary
        .latest_backup
        .as_ref()
        .and_then(|b| DateTime::parse_from_rfc3339(&b.timestamp).ok())
        .map(|t| t.timestamp());
    Ok(LocationReport {
        id: sel.id,
        name: loc.name.clone(),
        kind: loc.kind.as_str().to_string(),
        mark: loc.kind.calendar_mark().to_string(),
        schedule: loc.schedule.frequency.describe(),
        status: summary.status.as_str().to_string(),
        health_score: summary.health_score,
        health_status: Band::shown(summary.health_score, summary.status, warning, critical),
        score_status: Band::of_score(summary.health_score, warning, critical),
        compliance,
        last_passed_restore: passed.restore.map(|t| ctx.local_rfc3339(t)),
        last_passed_restore_age_seconds: passed.restore.map(|t| (ctx.now - t).num_seconds()),
        last_passed_verification: passed.verification.map(|t| ctx.local_rfc3339(t)),
        several_a_day: several_a_day(&loc.schedule, ctx.now),
        backups_present: summary.backups_present,
        backups_in_window: in_window.len() as u64,
        // A listed size may be anything a server or a tool claims: the total saturates.
        bytes_in_window: in_window
            .iter()
            .map(|b| b.size)
            .fold(0, u64::saturating_add),
        latest_backup: summary.latest_backup.clone(),
        latest_backup_age_seconds: summary.latest_backup_age_seconds,
        missing_slots: summary
            .missing_slots
            .iter()
            .map(ToString::to_string)
            .collect(),
        open_problems: mine.len() as u64,
        critical_problems: mine
            .iter()
            .filter(|p| p.severity == Severity::Critical)
            .count() as u64,
        verification_failures: failures.verification,
        restore_test_failures: failures.restore,
        disk,
        forecast,
        health_history,
        latest_backup_unix,
    })
}

/// Whether the schedule has several slots a day (hourly, or a cron expression firing
/// more often than daily).
pub fn several_a_day(schedule: &crate::schedule::Schedule, now: DateTime<Utc>) -> bool {
    match schedule.frequency {
        Frequency::Hourly => true,
        Frequency::Cron(..) => schedule
            .period(now)
            .is_some_and(|p| p < chrono::Duration::days(1)),
        _ => false,
    }
}

/// Bytes `min_free_space` keeps free: further backups may only use what is above it.
fn reserve(loc: &Location, total: u64) -> u64 {
    match loc.min_free_space {
        SizeOrPercent::Percent(p) => (p * total as f64).round() as u64,
        SizeOrPercent::Size(s) => s,
    }
}

/// Median seconds between the recent backups (None with fewer than two).
fn median_interval(own: &[&ReportBackup]) -> Option<i64> {
    let recent = &own[own.len().saturating_sub(forecast::RECENT + 1)..];
    let mut gaps: Vec<i64> = recent
        .windows(2)
        .map(|w| (w[1].ts - w[0].ts).num_seconds())
        .collect();
    gaps.sort_unstable();
    gaps.get(gaps.len() / 2).copied()
}

fn mean_per_day(scores: &[crate::store::DailyScore]) -> Vec<DayScore> {
    let mut by_day: BTreeMap<&str, Vec<f64>> = BTreeMap::new();
    for s in scores {
        let entry = by_day.entry(s.day.as_str()).or_default();
        entry.extend(s.score);
    }
    by_day
        .into_iter()
        .map(|(day, v)| DayScore {
            day: day.to_string(),
            score: (!v.is_empty()).then(|| {
                let mean = v.iter().sum::<f64>() / v.len() as f64;
                (mean * 1000.0).round() / 1000.0
            }),
        })
        .collect()
}

fn calendar_days(
    ctx: &RunContext,
    backups: &[ReportBackup],
    summaries: &[LocationSummary],
    names: &HashMap<i64, &SelectedLocation>,
    order: &[&str],
) -> Vec<CalendarDay> {
    #[derive(Default)]
    struct Acc {
        marks: BTreeSet<u8>,
        backups: u64,
        missing: Vec<String>,
        /// Per location, by its place in `order`.
        locations: BTreeMap<usize, LocationDay>,
    }
    let tz = ctx.tz();
    let place = |name: &str| order.iter().position(|n| *n == name).unwrap_or(order.len());
    let mut days: BTreeMap<NaiveDate, Acc> = BTreeMap::new();
    for b in backups {
        let Some(sel) = names.get(&b.location_id) else {
            continue;
        };
        let day = b.ts.with_timezone(&tz).date_naive();
        let entry = days.entry(day).or_default();
        entry
            .marks
            .insert(mark_order(sel.config.kind.calendar_mark()));
        entry.backups += 1;
        let name = &sel.config.name;
        let own = entry
            .locations
            .entry(place(name))
            .or_insert_with(|| LocationDay {
                location: name.clone(),
                ..LocationDay::default()
            });
        own.backups += 1;
    }
    for l in summaries {
        for slot in &l.missing_slots {
            let t = slot.0;
            let day = t.with_timezone(&tz).date_naive();
            let time = t.with_timezone(&tz).format("%H:%M").to_string();
            let entry = days.entry(day).or_default();
            entry.missing.push(format!("{} {time}", l.name));
            entry
                .locations
                .entry(place(&l.name))
                .or_insert_with(|| LocationDay {
                    location: l.name.clone(),
                    ..LocationDay::default()
                })
                .missing
                .push(time);
        }
    }
    days.into_iter()
        .map(|(date, acc)| CalendarDay {
            date: date.to_string(),
            marks: acc
                .marks
                .into_iter()
                .map(|m| MARKS[m as usize].to_string())
                .collect(),
            backups: acc.backups,
            missing: acc.missing,
            locations: acc.locations.into_values().collect(),
        })
        .collect()
}

const MARKS: [char; 3] = ['d', 'w', 'g'];

fn mark_order(mark: char) -> u8 {
    MARKS.iter().position(|&m| m == mark).unwrap_or(2) as u8
}

fn backup_entry(ctx: &RunContext, b: &ReportBackup, loc: &Location) -> BackupEntry {
    let local = |t: DateTime<Utc>| ctx.local_rfc3339(t);
    BackupEntry {
        location: loc.name.clone(),
        kind: loc.kind.as_str().to_string(),
        path: b.path.clone(),
        timestamp: local(b.ts),
        size: b.size,
        checksum_algo: b.checksum_algo.clone(),
        checksum: b.checksum.clone(),
        last_verification: b.last_verification.clone(),
        last_verified_at: b.last_verified_at.map(local),
        last_restore: b.last_restore.clone(),
        last_restored_at: b.last_restored_at.map(local),
        deleted_at: b.deleted_at.map(local),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::DailyScore;

    #[test]
    fn mean_per_day_skips_unscored_locations() {
        let s = |id, day: &str, score| DailyScore {
            location_id: id,
            day: day.into(),
            score,
        };
        let trend = mean_per_day(&[
            s(1, "2026-01-01", Some(1.0)),
            s(2, "2026-01-01", Some(0.5)),
            s(3, "2026-01-01", None),
            s(1, "2026-01-02", None),
        ]);
        assert_eq!(
            trend,
            [
                DayScore {
                    day: "2026-01-01".into(),
                    score: Some(0.75)
                },
                DayScore {
                    day: "2026-01-02".into(),
                    score: None
                }
            ]
        );
    }
}
