//! The fleet report (`--report --fleet`, `--report --host NAME`): every location of the
//! hosts in view, from the store alone (the other hosts' configs are not on this
//! machine), as HTML (a hosts × locations overview, then each host's section), CSV (one
//! row per location) and JSON (the host report's shape, with `host` everywhere), plus a
//! fleet Prometheus textfile with a `host` label on every series.
//!
//! What only a location's own config knows (its missing slots, its schedule's figures)
//! its host stores at the end of each of its runs ([`record_states`]); the fleet views
//! read that. Every figure is gathered by one aggregating statement over the hosts in
//! view, so the report's cost grows with the locations, not with their backups.
//!
//! Not for: a host's own report (`report::run`, unchanged by any of this).

use super::data::{
    Band, CheckEntry, CheckSummary, Compliance, DiskSpace, LocationReport, ResultCount, Thresholds,
    Window, status_rank,
};
use super::{Staged, commit_all, csv::defuse, html::HtmlExporter, prometheus};
use crate::config::ReportFormat;
use crate::outcome::{LocationSummary, OpenProblem, Outcome};
use crate::problem::Severity;
use crate::run::RunContext;
use crate::store::{CheckKind, LocationState, Store};
use crate::workflow::Hosts;
use anyhow::{Context, Result};
use chrono::{DateTime, Utc};
use serde::Serialize;
use std::collections::HashMap;
use std::path::PathBuf;

/// The checks a host's section lists: those that did not pass first, then the newest.
const CHECKS_PER_HOST: usize = 10;

/// Store what only this host's config knows about each location the run judged, for
/// the fleet views of any machine: the missing slots of the window and the schedule's
/// figures (see [`LocationState`]).
pub fn record_states(ctx: &RunContext, outcome: &Outcome) -> Result<()> {
    let mut states = Vec::with_capacity(ctx.locations.len());
    for sel in &ctx.locations {
        let Some(summary) = outcome.locations.iter().find(|l| l.id == sel.id) else {
            continue;
        };
        let schedule = &sel.config.schedule;
        let timestamps = ctx.store.backup_timestamps(sel.id)?;
        let judged = schedule.judge_standing(
            ctx.window_start(),
            ctx.now,
            timestamps.iter().min().copied(),
            &timestamps,
        );
        let state = LocationState {
            schedule: schedule.frequency.describe(),
            mark: sel.config.kind.calendar_mark().to_string(),
            several_a_day: super::data::several_a_day(schedule, ctx.now),
            window_days: ctx.days,
            missing_slots: summary
                .missing_slots
                .iter()
                .map(|s| s.utc().timestamp())
                .collect(),
            due_slots: judged.len() as u64,
            satisfied_slots: judged.iter().filter(|j| j.satisfied).count() as u64,
            age_thresholds: summary.age_thresholds,
            expected_interval: prometheus::typical_interval(schedule, ctx.now),
        };
        states.push((sel.id, state));
    }
    ctx.store
        .record_location_states(&states, ctx.now)
        .context("storing the state of each location for the fleet views")
}

/// The fleet report's model; the JSON report is this, serialised.
#[derive(Debug, Clone, Serialize)]
pub struct FleetReport {
    pub version: String,
    /// RFC 3339 in the configured zone.
    pub generated_at: String,
    pub timezone: String,
    pub window: Window,
    pub today: String,
    /// The host whose run wrote this report.
    pub host: String,
    /// Every host in the store (`--fleet`), or one (`--host NAME`).
    pub fleet: bool,
    /// Worst open problem of the hosts in view: `ok | warning | critical`.
    pub status: String,
    pub exit_code: i32,
    pub overall_health: Option<f64>,
    pub overall_health_status: Band,
    pub overall_score_status: Band,
    pub thresholds: Thresholds,
    /// Each host in view, by name.
    pub hosts: Vec<HostSummary>,
    /// Every location of those hosts, by host then name.
    pub locations: Vec<FleetLocation>,
    /// Per host, the verifications and restore tests of the window its section lists:
    /// those that did not pass first, then the newest, at most 10 a host.
    pub verifications: Vec<FleetCheckEntry>,
    pub restore_tests: Vec<FleetCheckEntry>,
    /// Over every host in view.
    pub verification_summary: CheckSummary,
    pub restore_test_summary: CheckSummary,
    /// Open problems of those hosts, worst first (each with its host).
    pub problems: Vec<OpenProblem>,
}

/// One host at a glance.
#[derive(Debug, Clone, Serialize)]
pub struct HostSummary {
    pub host: String,
    /// Worst status of its locations.
    pub status: String,
    pub locations: u64,
    /// Mean health score of its scored locations.
    pub health: Option<f64>,
    pub open_problems: u64,
    pub critical_problems: u64,
    /// The latest time it checked any of its locations (RFC 3339, configured zone).
    pub last_checked: Option<String>,
    /// It stopped checking (a `monitor_stale` is open for one of its locations).
    pub stale: bool,
    pub verification_summary: CheckSummary,
    pub restore_test_summary: CheckSummary,
}

/// One location of some host: the host report's location, with its host.
#[derive(Debug, Clone, Serialize)]
pub struct FleetLocation {
    pub host: String,
    /// When its host last checked it with `--monitor`.
    pub last_checked: Option<String>,
    /// When its host last stored its schedule figures and missing slots (None: never;
    /// the schedule is then `unknown` and the missing slots empty).
    pub state_written_at: Option<String>,
    #[serde(flatten)]
    pub report: LocationReport,
    #[serde(skip)]
    expected_interval: Option<i64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct FleetCheckEntry {
    pub host: String,
    #[serde(flatten)]
    pub check: CheckEntry,
}

/// Gather the fleet report: `fleet` is the fleet's state (see `workflow::fleet_outcome`),
/// `store` reads the hosts in view.
pub fn collect(ctx: &RunContext, store: &Store, fleet: &Outcome) -> Result<FleetReport> {
    let local = |t: DateTime<Utc>| ctx.local_rfc3339(t);
    let window_start = ctx.window_start();
    let (warning, critical) = (fleet.thresholds.warning, fleet.thresholds.critical);
    let states = store.location_states()?;
    let figures = store.fleet_window_figures(window_start, ctx.now)?;
    let mut problems_of: HashMap<(&str, &str), Vec<&OpenProblem>> = HashMap::new();
    for p in &fleet.problems {
        if let Some(l) = p.location.as_deref() {
            problems_of.entry((&p.host, l)).or_default().push(p);
        }
    }
    let mut locations = Vec::with_capacity(fleet.locations.len());
    for l in &fleet.locations {
        let stored = states.get(&l.id).cloned().unwrap_or_default();
        let state = stored.state.clone().unwrap_or_default();
        let f = figures.get(&l.id).copied().unwrap_or_default();
        let mine = problems_of
            .get(&(l.host.as_str(), l.name.as_str()))
            .map(Vec::as_slice)
            .unwrap_or_default();
        locations.push(FleetLocation {
            host: l.host.clone(),
            last_checked: l.last_checked.clone(),
            state_written_at: stored.written_at.map(local),
            expected_interval: state.expected_interval,
            report: location_report(ctx, l, &state, &stored, &f, mine, (warning, critical)),
        });
    }

    let counts = |kind| store.fleet_check_counts(kind, window_start);
    let (v_counts, r_counts) = (
        counts(CheckKind::Verification)?,
        counts(CheckKind::RestoreTest)?,
    );
    let checks = |kind| -> Result<Vec<FleetCheckEntry>> {
        Ok(store
            .fleet_checks(kind, window_start, CHECKS_PER_HOST)?
            .into_iter()
            .map(|c| FleetCheckEntry {
                host: c.host,
                check: CheckEntry {
                    location: c.location,
                    path: c.path,
                    at: local(c.at),
                    method: c.method,
                    result: c.result,
                    bytes: c.bytes,
                    files: c.files,
                    duration_ms: c.duration_ms,
                    detail: c.detail,
                },
            })
            .collect())
    };
    let verifications = checks(CheckKind::Verification)?;
    let restore_tests = checks(CheckKind::RestoreTest)?;

    // Each host's listed checks and counts by result, gathered once (not per host).
    fn by_host<'a, T>(
        items: &'a [T],
        host: impl Fn(&'a T) -> &'a str,
    ) -> HashMap<&'a str, Vec<&'a T>> {
        let mut of: HashMap<&str, Vec<&T>> = HashMap::new();
        for item in items {
            of.entry(host(item)).or_default().push(item);
        }
        of
    }
    let (v_listed, r_listed) = (
        by_host(&verifications, |c| c.host.as_str()),
        by_host(&restore_tests, |c| c.host.as_str()),
    );
    let (v_of, r_of) = (
        by_host(&v_counts, |c| c.host.as_str()),
        by_host(&r_counts, |c| c.host.as_str()),
    );
    let mut hosts: Vec<HostSummary> = Vec::new();
    // The health scores of each host's locations (they come host by host).
    let mut scores: Vec<Vec<f64>> = Vec::new();
    for l in &locations {
        if hosts.last().is_none_or(|h| h.host != l.host) {
            scores.push(Vec::new());
            hosts.push(HostSummary {
                host: l.host.clone(),
                status: "ok".into(),
                locations: 0,
                health: None,
                open_problems: 0,
                critical_problems: 0,
                last_checked: None,
                stale: false,
                verification_summary: summary(
                    v_of.get(l.host.as_str()).into_iter().flatten().copied(),
                    v_listed.get(l.host.as_str()).into_iter().flatten().copied(),
                ),
                restore_test_summary: summary(
                    r_of.get(l.host.as_str()).into_iter().flatten().copied(),
                    r_listed.get(l.host.as_str()).into_iter().flatten().copied(),
                ),
            });
        }
        let Some(h) = hosts.last_mut() else { continue };
        if let (Some(score), Some(of_host)) = (l.report.health_score, scores.last_mut()) {
            of_host.push(score);
        }
        h.locations += 1;
        if status_rank(&l.report.status) > status_rank(&h.status) {
            h.status = l.report.status.clone();
        }
        h.open_problems += l.report.open_problems;
        h.critical_problems += l.report.critical_problems;
        if l.last_checked > h.last_checked {
            h.last_checked = l.last_checked.clone();
        }
    }
    for (h, scores) in hosts.iter_mut().zip(&scores) {
        h.health = crate::outcome::mean(scores).map(crate::outcome::round3);
    }
    let stale: std::collections::HashSet<&str> = fleet
        .problems
        .iter()
        .filter(|p| p.kind == crate::problem::Kind::MonitorStale)
        .map(|p| p.host.as_str())
        .collect();
    for h in &mut hosts {
        h.stale = stale.contains(h.host.as_str());
    }
    let mut problems = fleet.problems.clone();
    problems.sort_by_key(|p| std::cmp::Reverse(p.severity));
    Ok(FleetReport {
        version: env!("CARGO_PKG_VERSION").to_string(),
        generated_at: local(ctx.now),
        timezone: ctx.tz().name().to_string(),
        window: Window {
            start: local(window_start),
            end: local(ctx.now),
            days: ctx.days,
        },
        today: ctx.today(),
        host: ctx.host.clone(),
        fleet: store.view() == &crate::store::View::Fleet,
        status: fleet.status.as_str().to_string(),
        exit_code: fleet.exit_code,
        overall_health: fleet.overall_health,
        overall_health_status: Band::shown(fleet.overall_health, fleet.status, warning, critical),
        overall_score_status: Band::of_score(fleet.overall_health, warning, critical),
        thresholds: Thresholds { warning, critical },
        verification_summary: summary(&v_counts, &verifications),
        restore_test_summary: summary(&r_counts, &restore_tests),
        hosts,
        locations,
        verifications,
        restore_tests,
        problems,
    })
}

/// A host report's location, from what the store holds and its host stored.
fn location_report(
    ctx: &RunContext,
    l: &LocationSummary,
    state: &LocationState,
    stored: &crate::store::StoredState,
    f: &crate::store::WindowFigures,
    problems: &[&OpenProblem],
    (warning, critical): (f64, f64),
) -> LocationReport {
    let age = |t: DateTime<Utc>| (ctx.now - t).num_seconds();
    LocationReport {
        id: l.id,
        name: l.name.clone(),
        kind: l.kind.as_str().to_string(),
        mark: if state.mark.is_empty() {
            l.kind.calendar_mark().to_string()
        } else {
            state.mark.clone()
        },
        schedule: if state.schedule.is_empty() {
            "unknown".into()
        } else {
            state.schedule.clone()
        },
        status: l.status.as_str().to_string(),
        health_score: l.health_score,
        health_status: Band::shown(l.health_score, l.status, warning, critical),
        score_status: Band::of_score(l.health_score, warning, critical),
        compliance: Compliance::new(state.satisfied_slots, state.due_slots),
        last_passed_restore: f.last_passed_restore.map(|t| ctx.local_rfc3339(t)),
        last_passed_restore_age_seconds: f.last_passed_restore.map(age),
        last_passed_verification: f.last_passed_verification.map(|t| ctx.local_rfc3339(t)),
        backups_present: l.backups_present,
        backups_in_window: f.backups_in_window,
        bytes_in_window: f.bytes_in_window,
        latest_backup: l.latest_backup.clone(),
        latest_backup_age_seconds: l.latest_backup_age_seconds,
        missing_slots: l.missing_slots.iter().map(ToString::to_string).collect(),
        open_problems: problems.len() as u64,
        critical_problems: problems
            .iter()
            .filter(|p| p.severity == Severity::Critical)
            .count() as u64,
        verification_failures: f.verification_failures,
        restore_test_failures: f.restore_failures,
        disk: match (stored.free_bytes, stored.total_bytes) {
            (Some(free_bytes), Some(total_bytes)) => Some(DiskSpace {
                free_bytes,
                total_bytes,
                free_ratio: (total_bytes > 0).then(|| free_bytes as f64 / total_bytes as f64),
                measured_at: l.last_checked.clone(),
            }),
            _ => None,
        },
        forecast: None,
        health_history: Vec::new(),
        several_a_day: state.several_a_day,
        latest_backup_unix: l
            .latest_backup
            .as_ref()
            .and_then(|b| DateTime::parse_from_rfc3339(&b.timestamp).ok())
            .map(|t| t.timestamp()),
    }
}

/// How to order results: failures first, passes last (as the host report does).
fn result_rank(result: &str) -> u8 {
    match result {
        "failed" | "error" => 0,
        "passed" => 3,
        "recorded" => 2,
        _ => 1,
    }
}

/// The counts of one host (or, None, of all) as a table summary; `listed`: the checks the
/// table lists (the rest, by result, are counted only).
fn summary<'a>(
    counts: impl IntoIterator<Item = &'a crate::store::CheckCount>,
    listed: impl IntoIterator<Item = &'a FleetCheckEntry>,
) -> CheckSummary {
    let mut results: Vec<ResultCount> = Vec::new();
    for c in counts {
        match results.iter_mut().find(|r| r.result == c.result) {
            Some(r) => r.count += c.count,
            None => results.push(ResultCount {
                result: c.result.clone(),
                count: c.count,
            }),
        }
    }
    results.sort_by_key(|r| result_rank(&r.result));
    let total: u64 = results.iter().map(|r| r.count).sum();
    let mut shown: HashMap<&str, u64> = HashMap::new();
    for c in listed {
        *shown.entry(c.check.result.as_str()).or_default() += 1;
    }
    let not_listed = results
        .iter()
        .filter_map(|r| {
            let left = r
                .count
                .saturating_sub(shown.get(r.result.as_str()).copied().unwrap_or(0));
            (left > 0).then(|| ResultCount {
                result: r.result.clone(),
                count: left,
            })
        })
        .collect();
    CheckSummary {
        total,
        results,
        not_listed,
    }
}

/// What the HTML template sees: the model, grouped by host.
#[derive(Serialize)]
struct View<'a> {
    report: &'a FleetReport,
    /// `fleet_latest.html` reloads itself every 5 minutes.
    live: bool,
    sections: Vec<Section<'a>>,
}

#[derive(Serialize)]
struct Section<'a> {
    /// The HTML id of the host's section (host names may hold anything).
    anchor: String,
    host: &'a HostSummary,
    locations: Vec<&'a FleetLocation>,
    problems: Vec<&'a OpenProblem>,
    verifications: Vec<&'a FleetCheckEntry>,
    restore_tests: Vec<&'a FleetCheckEntry>,
}

fn view(report: &FleetReport, live: bool) -> View<'_> {
    let mut index: HashMap<&str, usize> = HashMap::new();
    let mut sections: Vec<Section> = report
        .hosts
        .iter()
        .enumerate()
        .map(|(i, h)| {
            index.insert(&h.host, i);
            Section {
                anchor: format!("host-{}", i + 1),
                host: h,
                locations: Vec::new(),
                problems: Vec::new(),
                verifications: Vec::new(),
                restore_tests: Vec::new(),
            }
        })
        .collect();
    let at = |host: &str| index.get(host).copied();
    for l in &report.locations {
        if let Some(i) = at(&l.host) {
            sections[i].locations.push(l);
        }
    }
    for p in &report.problems {
        if let Some(i) = at(&p.host) {
            sections[i].problems.push(p);
        }
    }
    for c in &report.verifications {
        if let Some(i) = at(&c.host) {
            sections[i].verifications.push(c);
        }
    }
    for c in &report.restore_tests {
        if let Some(i) = at(&c.host) {
            sections[i].restore_tests.push(c);
        }
    }
    View {
        report,
        live,
        sections,
    }
}

pub const CSV_HEADER: [&str; 17] = [
    "host",
    "location",
    "type",
    "schedule",
    "status",
    "health_score",
    "last_checked",
    "latest_backup",
    "latest_backup_timestamp",
    "latest_backup_size",
    "backups_present",
    "missing_slots",
    "open_problems",
    "critical_problems",
    "last_passed_verification",
    "last_passed_restore",
    "state_written_at",
];

fn csv(report: &FleetReport) -> Result<Vec<u8>> {
    let mut w = ::csv::Writer::from_writer(Vec::new());
    w.write_record(CSV_HEADER)?;
    let text = |v: &Option<String>| defuse(v.as_deref().unwrap_or(""));
    for l in &report.locations {
        let r = &l.report;
        let latest = r.latest_backup.as_ref();
        w.write_record([
            defuse(&l.host),
            defuse(&r.name),
            defuse(&r.kind),
            defuse(&r.schedule),
            r.status.clone(),
            r.health_score.map(|s| s.to_string()).unwrap_or_default(),
            text(&l.last_checked),
            defuse(latest.map_or("", |b| b.path.as_str())),
            latest.map(|b| b.timestamp.clone()).unwrap_or_default(),
            latest.map(|b| b.size.to_string()).unwrap_or_default(),
            r.backups_present.to_string(),
            r.missing_slots.len().to_string(),
            r.open_problems.to_string(),
            r.critical_problems.to_string(),
            text(&r.last_passed_verification),
            text(&r.last_passed_restore),
            text(&l.state_written_at),
        ])?;
    }
    Ok(w.into_inner().map_err(|e| e.into_error())?)
}

/// A host name as a piece of a file name: letters, digits, `.`, `-` and `_`; anything
/// else (a `/`, a space) becomes `_`, and the name's hash is added so that `a b` and
/// `a_b` do not share files.
fn file_safe(name: &str) -> String {
    let safe: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') {
                c
            } else {
                '_'
            }
        })
        .collect();
    match safe == name {
        true => safe,
        false => format!("{safe}-{:08x}", crate::store::fnv1a(name.as_bytes())),
    }
}

/// The file names' common start: `fleet` for every host, `fleet_<host>` for one.
fn stem(hosts: &Hosts) -> String {
    match hosts {
        Hosts::One(name) => format!("fleet_{}", file_safe(name)),
        _ => "fleet".into(),
    }
}

/// The fleet textfile beside the host's own: `backup_monitor.prom` →
/// `backup_monitor-fleet.prom` (`backup_monitor-fleet_<host>.prom` for `--host`).
pub fn textfile_path(host_textfile: &std::path::Path, hosts: &Hosts) -> PathBuf {
    let file_stem = host_textfile
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "backup_monitor".into());
    let ext = host_textfile
        .extension()
        .map(|e| e.to_string_lossy().into_owned())
        .unwrap_or_else(|| "prom".into());
    host_textfile.with_file_name(format!("{file_stem}-{}.{ext}", stem(hosts)))
}

/// Write the fleet report of `fleet` (the hosts in `store`'s view) in the configured
/// formats as `fleet_health_<stamp>.*` and `fleet_latest.*` (`fleet_<host>_…` for one
/// host), and the fleet textfile when a textfile is configured; returns the files.
pub fn run(
    ctx: &RunContext,
    store: &Store,
    fleet: &Outcome,
    hosts: &Hosts,
) -> Result<Vec<PathBuf>> {
    let report = collect(ctx, store, fleet).context("gathering the fleet report from the store")?;
    let dir = ctx.config.report_dir();
    let stem = stem(hosts);
    let stamp = ctx.now.with_timezone(&ctx.tz()).format("%Y%m%d_%H%M%S");
    let mut formats = ctx.config.reporting.formats.clone();
    formats.dedup();
    let prefix = format!("{stem}_");
    super::remove_leftovers(&dir, |staged| staged.starts_with(&prefix));
    let html = HtmlExporter::new(
        ctx.config
            .reporting
            .templates_dir
            .as_deref()
            .map(|d| ctx.config.resolve_path(d)),
    );
    let mut staged = Vec::new();
    for format in formats {
        let ext = match format {
            ReportFormat::Html => "html",
            ReportFormat::Csv => "csv",
            ReportFormat::Json => "json",
        };
        // Only the HTML differs between the two copies (the latest one reloads itself);
        // each is written to disk as it is rendered (a fleet's report is tens of MB).
        let rendering = || format!("rendering the fleet {ext} report");
        let dated = dir.join(format!("{stem}_health_{stamp}.{ext}"));
        let latest = dir.join(format!("{stem}_latest.{ext}"));
        match format {
            ReportFormat::Html => {
                for (live, dest) in [(false, &dated), (true, &latest)] {
                    let page = view(&report, live);
                    staged.push(
                        Staged::write_with(dest, |w| {
                            html.render_template_to("fleet_report.html", &page, w)
                        })
                        .with_context(rendering)?,
                    );
                }
            }
            ReportFormat::Csv | ReportFormat::Json => {
                let first = Staged::write_with(&dated, |w| match format {
                    ReportFormat::Csv => Ok(w.write_all(&csv(&report)?)?),
                    _ => {
                        serde_json::to_writer_pretty(&mut *w, &report)?;
                        Ok(w.write_all(b"\n")?)
                    }
                })
                .with_context(rendering)?;
                let second = first.copy_to(&latest)?;
                staged.extend([first, second]);
            }
        }
    }
    let mut written = commit_all(staged)?;
    if let Some(own) = ctx.config.prometheus_path() {
        let path = textfile_path(&own, hosts);
        let text = prometheus::render_by(
            &metrics(&report, fleet),
            ctx.now.timestamp(),
            Some(&ctx.host),
        );
        if let (Some(dir), Some(name)) = (path.parent(), path.file_name()) {
            let prefix = format!("{}.", name.to_string_lossy());
            super::remove_leftovers(dir, |staged| staged.starts_with(&prefix));
        }
        Staged::write(&path, text.as_bytes())
            .and_then(Staged::commit)
            .with_context(|| {
                format!(
                    "cannot write the fleet Prometheus textfile {}",
                    path.display()
                )
            })?;
        written.push(path);
    }
    Ok(written)
}

/// Each location's metrics, labelled with its host. Status and open problems count every
/// open problem of the location (as in a host's own textfile), and a host that stopped
/// checking its locations makes them critical (`monitor_stale`).
fn metrics(report: &FleetReport, fleet: &Outcome) -> Vec<prometheus::LocationMetrics> {
    let mut open: HashMap<(&str, &str), Vec<Severity>> = HashMap::new();
    for p in &fleet.problems {
        if let Some(l) = p.location.as_deref() {
            open.entry((&p.host, l)).or_default().push(p.severity);
        }
    }
    report
        .locations
        .iter()
        .map(|l| {
            let severities = open
                .get(&(l.host.as_str(), l.report.name.as_str()))
                .cloned()
                .unwrap_or_default();
            let count = |s: Severity| severities.iter().filter(|&&x| x == s).count() as u64;
            prometheus::LocationMetrics {
                host: Some(l.host.clone()),
                status: match severities.iter().max() {
                    None => crate::problem::Status::Ok,
                    Some(Severity::Warning) => crate::problem::Status::Warning,
                    Some(Severity::Critical) => crate::problem::Status::Critical,
                },
                open_warning: count(Severity::Warning),
                open_critical: count(Severity::Critical),
                expected_interval: l.expected_interval,
                last_verified_unix: prometheus::unix_time(&l.report.last_passed_verification),
                last_restore_success_unix: prometheus::unix_time(&l.report.last_passed_restore),
                report: l.report.clone(),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_keep_to_safe_characters_and_sit_beside_the_hosts_own() {
        assert_eq!(file_safe("web-1.example"), "web-1.example");
        let odd = file_safe("a/b c");
        assert!(
            odd.starts_with("a_b_c-") && odd.len() == "a_b_c-".len() + 8,
            "{odd}"
        );
        assert_eq!(file_safe("a_b_c"), "a_b_c", "a name it keeps has no hash");
        assert_ne!(file_safe("a b_c"), odd, "two names, two files");
        let own = std::path::Path::new("/m/backup_monitor.prom");
        assert_eq!(
            textfile_path(own, &Hosts::Fleet),
            std::path::Path::new("/m/backup_monitor-fleet.prom")
        );
        let dotted = textfile_path(own, &Hosts::One("../x".into()));
        let name = dotted.file_name().unwrap().to_string_lossy().into_owned();
        assert_eq!(dotted.parent(), Some(std::path::Path::new("/m")));
        assert!(
            name.starts_with("backup_monitor-fleet_.._x-") && name.ends_with(".prom"),
            "{name}"
        );
    }

    #[test]
    fn a_summary_counts_what_it_is_given_and_what_is_not_listed() {
        let c = |host: &str, result: &str, count| crate::store::CheckCount {
            host: host.into(),
            result: result.into(),
            count,
        };
        let counts = [
            c("a", "passed", 5),
            c("a", "failed", 1),
            c("b", "passed", 2),
        ];
        let listed = |results: &[&str]| -> Vec<FleetCheckEntry> {
            results
                .iter()
                .map(|r| FleetCheckEntry {
                    host: "a".into(),
                    check: CheckEntry {
                        location: "db".into(),
                        path: "b.sql".into(),
                        at: String::new(),
                        method: "checksum".into(),
                        result: (*r).into(),
                        bytes: 0,
                        files: 0,
                        duration_ms: 0,
                        detail: None,
                    },
                })
                .collect()
        };
        let a = summary(
            counts.iter().filter(|c| c.host == "a"),
            &listed(&["failed", "passed", "passed", "passed", "passed", "passed"]),
        );
        assert_eq!(a.total, 6);
        assert_eq!(a.results[0].result, "failed", "failures first");
        assert!(a.not_listed.is_empty());
        // Listed: the failure and three passes; not listed: four passes, by result.
        let all = summary(&counts, &listed(&["failed", "passed", "passed", "passed"]));
        assert_eq!(all.total, 8);
        let left: Vec<(&str, u64)> = all
            .not_listed
            .iter()
            .map(|r| (r.result.as_str(), r.count))
            .collect();
        assert_eq!(left, [("passed", 4)]);
    }
}
