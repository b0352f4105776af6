//! The run: take the lock, record the run in the audit log, run the requested operations
//! in their fixed order (monitor → verify → test-restore → report → check-alerts), decide
//! which problems are in scope for the exit code, and close the run. Also `--status`,
//! which reads the store without the lock.
//!
//! Not for: parsing flags or printing (`cli`, `output`), nor judging (each operation
//! judges its own problems; `health` judges `health_degraded`).

use crate::config::{Config, Location};
use crate::heartbeat::Heartbeat;
use crate::lifecycle::Marks;
use crate::outcome::{OpenProblem, Outcome, mean, round3};
use crate::problem::{Kind, Operation, Problem, Status};
use crate::recent_log::RecentLog;
use crate::run::{RunContext, SelectedLocation};
use crate::store::{Fault, Store};
use crate::{alert, health, lock, monitor, report, restore, stale, summary, verify};
use chrono::{DateTime, Utc};
use std::collections::HashMap;

/// Which configured locations a run covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selection {
    All,
    Id(i64),
    Name(String),
}

impl Selection {
    /// From `--location-name` and `--location-id` (the name wins).
    pub fn of(name: Option<&str>, id: Option<i64>) -> Selection {
        match (name, id) {
            (Some(name), _) => Selection::Name(name.to_string()),
            (None, Some(id)) => Selection::Id(id),
            (None, None) => Selection::All,
        }
    }
}

/// Which hosts of a shared store `--status` and `--check-alerts` cover.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Hosts {
    /// This host (`host:`), from its config: what every run does.
    #[default]
    This,
    /// `--fleet`: every host in the store.
    Fleet,
    /// `--host NAME`: that host.
    One(String),
}

impl Hosts {
    /// From `--host` and `--fleet` (clap refuses both at once).
    pub fn of(host: Option<&str>, fleet: bool) -> Hosts {
        match (host, fleet) {
            (Some(name), _) => Hosts::One(name.to_string()),
            (None, true) => Hosts::Fleet,
            (None, false) => Hosts::This,
        }
    }

    /// Whether `--fleet` / `--host` may widen `ops`: a run judges its own host's
    /// locations, so they go with `--status`, with `--report` (this host's run, the report
    /// widened), or with `--check-alerts` alone (the fleet's alerts).
    pub fn widen(ops: &[Operation]) -> bool {
        let alerts_alone =
            !ops.contains(&Operation::CheckAlerts) || ops == [Operation::CheckAlerts];
        ops.iter().any(|o| !o.judges()) && alerts_alone
    }
}

/// What the command line asked for, in the run's own terms.
#[derive(Debug, Clone)]
pub struct Request {
    /// In the order they run; `[Status]` alone for `--status`.
    pub operations: Vec<Operation>,
    pub selection: Selection,
    /// `--fleet` / `--host NAME` (with `--status`, `--report` and `--check-alerts`).
    pub hosts: Hosts,
    /// The analysis window in days (`--days`); None: `monitoring.window_days`.
    pub days: Option<u32>,
    /// Draw progress bars.
    pub progress: bool,
    /// What this process logged per location (filled by the logging layer).
    pub recent_log: RecentLog,
}

/// A failure that leaves the run unable to judge (exit 3), with the cause for people.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct CannotJudge(pub String, Option<Fault>);

impl CannotJudge {
    fn from_error(e: impl Into<anyhow::Error>) -> CannotJudge {
        let e = e.into();
        CannotJudge(crate::output::chained(&e), Fault::of(&e))
    }

    fn new(message: String) -> CannotJudge {
        CannotJudge(message, None)
    }

    /// A failure the store's own SQLite reported (a full disk, an I/O error, damaged
    /// pages) is said as what it is, naming the store and what to do, not as the bare
    /// SQLite message ("database disk image is malformed").
    fn about_store(self, path: &std::path::Path) -> CannotJudge {
        match self.1 {
            Some(fault) => CannotJudge::new(
                crate::store::StoreError::from_fault(path, fault, self.0).to_string(),
            ),
            None => self,
        }
    }
}

type Judged<T> = Result<T, CannotJudge>;

/// "Now" for the run: the clock, or `BACKUP_MONITOR_NOW` (RFC 3339) to judge as of
/// another time — used by the tests and for replaying what a run would have said.
pub fn now() -> Result<DateTime<Utc>, String> {
    match std::env::var("BACKUP_MONITOR_NOW") {
        Ok(v) if !v.is_empty() => DateTime::parse_from_rfc3339(&v)
            .map(|t| t.with_timezone(&Utc))
            .map_err(|e| format!("BACKUP_MONITOR_NOW=`{v}` is not an RFC 3339 time: {e}")),
        _ => Ok(Utc::now()),
    }
}

/// `--check-config`: every error of the config file at `path` (empty: valid). A job
/// log's query is also checked against its database, without running it.
pub fn check_config(path: &std::path::Path) -> Vec<String> {
    match crate::config::load(path) {
        Err(e) => e.errors,
        Ok(config) => {
            let mut errors = crate::source::job_log::check_config(&config);
            // A run falls back to the built-in templates (with a warning); a check says it.
            if let Some(dir) = &config.reporting.templates_dir
                && !config.resolve_path(dir).is_dir()
            {
                errors.push(format!(
                    "reporting.templates_dir: {} is not a directory; create it with the templates to override, or remove the key",
                    config.resolve_path(dir).display()
                ));
            }
            errors
        }
    }
}

/// Run `request` against `config` as of `started`.
/// Why a run could not give its outcome, said as `host`.
pub struct NotRun {
    pub message: String,
    pub host: String,
}

/// A run from its parsed arguments on: the config at `config_path` loaded, logging
/// started (to stderr at `level`, and the config's log file), the clock read, and the
/// request `request` makes with the log's recent lines run. A run that fails is logged
/// (to the file only when its message is `printed` on stderr anyway).
pub fn start(
    config_path: &std::path::Path,
    level: tracing::level_filters::LevelFilter,
    printed: bool,
    request: impl FnOnce(crate::recent_log::RecentLog) -> Request,
) -> Result<Outcome, NotRun> {
    let config = crate::config::load(config_path).map_err(|e| NotRun {
        message: format!(
            "invalid config {}:\n  {}",
            config_path.display(),
            e.errors.join("\n  ")
        ),
        host: crate::config::host_name(),
    })?;
    let recent_log = crate::logging::init_for(&config, level, config.log_file().as_deref());
    let failed = |message: String| NotRun {
        message,
        host: config.host.clone(),
    };
    let started = now().map_err(failed)?;
    run(&config, &request(recent_log), started).map_err(|e| {
        crate::logging::failed_run(&e, printed);
        failed(e.0)
    })
}

pub fn run(config: &Config, request: &Request, started: DateTime<Utc>) -> Judged<Outcome> {
    run_on_store(config, request, started).map_err(|e| e.about_store(&config.store_path))
}

fn run_on_store(config: &Config, request: &Request, started: DateTime<Utc>) -> Judged<Outcome> {
    if request.operations == [Operation::Status] {
        if request.hosts != Hosts::This {
            return fleet_status(config, request, started);
        }
        return status(config, request, started);
    }
    let _lock = lock::acquire(&config.store_path, &config.host).map_err(CannotJudge::from_error)?;
    let heartbeat = Heartbeat::new(config.monitoring.heartbeat_url.as_deref());
    if let Some(h) = &heartbeat {
        h.start();
    }
    let result = recorded_run(config, request, started);
    if let Some(h) = &heartbeat {
        match &result {
            Ok(outcome) => h.end(outcome.exit_code, &crate::output::text::render(outcome)),
            Err(e) => h.end(Status::Unknown.exit_code(), &format!("error: {e}\n")),
        }
    }
    result
}

/// The run in the store's audit log: opened, its operations, closed with its exit code.
fn recorded_run(config: &Config, request: &Request, started: DateTime<Utc>) -> Judged<Outcome> {
    let mut store = Store::connect(config).map_err(CannotJudge::from_error)?;
    // Beside the local lock file: the host's lock in a shared store, on this run's own
    // session, so that a second run for this host on another machine waits too.
    let run_id = store
        .lock_and_start_run(&request.operations, started)
        .map_err(CannotJudge::from_error)?;
    // "Now" may be BACKUP_MONITOR_NOW: the end is that plus the real time the run took.
    let clock = std::time::Instant::now();
    let finished = || started + chrono::TimeDelta::from_std(clock.elapsed()).unwrap_or_default();
    // `--check-alerts --fleet` (alone) sends the fleet's alerts; `--report --fleet` is
    // this host's run with the report widened.
    let fleet_alerting =
        request.hosts != Hosts::This && request.operations.contains(&Operation::CheckAlerts);
    let result = match fleet_alerting {
        false => operations(config, request, &store, run_id, started),
        true => fleet_alerts(config, request, &mut store, run_id, started),
    };
    let code = match &result {
        Ok(outcome) => outcome.exit_code,
        Err(_) => Status::Unknown.exit_code(),
    };
    // Every run that started is closed in the audit log, failed ones with exit 3.
    let closed = store.finish_run(run_id, code, finished());
    match (result, closed) {
        (Ok(mut outcome), Ok(())) => {
            outcome.finished_at = finished();
            Ok(outcome)
        }
        (Ok(_), Err(e)) => Err(CannotJudge::from_error(e)),
        (Err(e), Err(close)) => {
            // Said once: a store that went away fails the run and its closing alike.
            let (error, close) = (format!("{e:#}"), format!("{close:#}"));
            if close != error {
                tracing::warn!("this run's end could not be stored either: {close}");
            }
            Err(e)
        }
        (Err(e), Ok(())) => Err(e),
    }
}

/// Which configured locations this run covers; an unknown name or id names the known ones.
fn select<'a>(
    selection: &Selection,
    ids: &[(i64, &'a Location)],
) -> Judged<Vec<SelectedLocation<'a>>> {
    let chosen: Vec<SelectedLocation> = ids
        .iter()
        .filter(|(id, l)| match selection {
            Selection::All => true,
            Selection::Id(want) => want == id,
            // A job log's group name selects every job it watches.
            Selection::Name(want) => {
                *want == l.name || l.job_log.as_ref().is_some_and(|j| j.source.group == *want)
            }
        })
        .map(|(id, l)| SelectedLocation { id: *id, config: l })
        .collect();
    if !chosen.is_empty() || *selection == Selection::All {
        return Ok(chosen);
    }
    let asked = match selection {
        Selection::Name(name) => name.clone(),
        Selection::Id(id) => format!("id {id}"),
        Selection::All => String::new(),
    };
    let known = if ids.is_empty() {
        "none configured".to_string()
    } else {
        ids.iter()
            .map(|(id, l)| format!("{} (id {id})", l.name))
            .collect::<Vec<_>>()
            .join(", ")
    };
    Err(CannotJudge::new(format!(
        "unknown location {asked}; known locations: {known}"
    )))
}

/// The operations of one recorded run, in their order.
fn operations(
    config: &Config,
    request: &Request,
    store: &Store,
    run_id: i64,
    started: DateTime<Utc>,
) -> Judged<Outcome> {
    let ops = &request.operations;
    let named: Vec<(&str, String, &str)> = config
        .backups
        .locations
        .iter()
        .map(|l| {
            (
                l.name.as_str(),
                l.root.display().to_string(),
                l.kind.as_str(),
            )
        })
        .collect();
    let named: Vec<(&str, &str, &str)> =
        named.iter().map(|(n, p, k)| (*n, p.as_str(), *k)).collect();
    let ids: Vec<(i64, &Location)> = store
        .upsert_locations(&named, started)
        .map_err(CannotJudge::from_error)?
        .into_iter()
        .zip(&config.backups.locations)
        .collect();
    let ctx = RunContext {
        config,
        store,
        now: started,
        run_id,
        host: config.host.clone(),
        recent_log: request.recent_log.clone(),
        locations: select(&request.selection, &ids)?,
        days: request.days.unwrap_or(config.monitoring.window_days),
        progress: request.progress,
    };
    let mut outcome = Outcome::new(started, ops.clone());
    outcome.host = config.host.clone();
    outcome.thresholds = health::thresholds(config);
    let e = CannotJudge::from_error;
    let mut new_backups = HashMap::new();
    if ops.contains(&Operation::Monitor) {
        for o in monitor::run(&ctx).map_err(e)? {
            new_backups.insert(o.location, o.new_backups as u64);
        }
    } else if ops.contains(&Operation::Verify) || ops.contains(&Operation::TestRestore) {
        monitor::refresh(&ctx).map_err(e)?;
    }
    if ops.contains(&Operation::Verify) {
        outcome.verification = verify::run(&ctx).map_err(e)?;
    }
    // Restore tests that broke off (the store failed for a location) must not keep the
    // reports and alerts about everything else from going out: the run still fails
    // (exit 3), after them.
    let mut restore_failure = None;
    if ops.contains(&Operation::TestRestore) {
        match restore::run(&ctx) {
            Ok(tests) => outcome.restore_tests = tests,
            Err(err) => restore_failure = Some(err),
        }
    }
    let scores = health::step(&ctx, ops.contains(&Operation::Report)).map_err(e)?;
    let monitored = ops.contains(&Operation::Monitor);
    if monitored || ops.contains(&Operation::Report) || ops.contains(&Operation::CheckAlerts) {
        stale::sync(&ctx, monitored).map_err(e)?;
    }
    let glances = summary::glances(&ctx, &ctx.locations).map_err(e)?;
    for sel in &ctx.locations {
        let new = new_backups.get(&sel.config.name).copied().unwrap_or(0);
        let score = scores.get(&sel.id).copied().flatten();
        let glance = glances.get(&sel.id);
        outcome
            .locations
            .push(summary::location(&ctx, sel, glance, score, new).map_err(e)?);
    }
    outcome.overall_health = overall(&scores);
    scope(&ctx, &mut outcome).map_err(e)?;
    report::fleet::record_states(&ctx, &outcome).map_err(e)?;
    let mut report_failure = None;
    let mut report_read = None;
    if ops.contains(&Operation::Report) {
        // A report that cannot be written (disk full, permissions) must not keep the
        // alerts from going out: the run still fails (exit 3), after them.
        let written = match &request.hosts {
            Hosts::This => report::run(&ctx, &outcome, &mut report_read),
            hosts => fleet_report(&ctx, request, hosts),
        };
        match written {
            Ok(written) => outcome.reports = written,
            Err(err) => report_failure = Some(err),
        }
    }
    if ops.contains(&Operation::CheckAlerts) {
        outcome.alerts = alert::run(&ctx).map_err(e)?;
        // Delivery failures are problems of this run: the scope is decided again.
        scope(&ctx, &mut outcome).map_err(e)?;
    }
    outcome.reports.extend(
        report::prometheus::write_textfile(&ctx, &outcome, report_read.as_ref()).map_err(e)?,
    );
    match restore_failure.or(report_failure) {
        Some(err) => Err(e(err)),
        None => Ok(outcome),
    }
}

fn overall(scores: &HashMap<i64, Option<f64>>) -> Option<f64> {
    let known: Vec<f64> = scores.values().filter_map(|s| *s).collect();
    mean(&known).map(round3)
}

/// The problems in the run's scope: those of its judging operations, or every open
/// problem when it reports, checks alerts or shows status. Sets the run's and each
/// location's status from them.
fn scope(ctx: &RunContext, outcome: &mut Outcome) -> anyhow::Result<()> {
    let ids: Vec<i64> = ctx.locations.iter().map(|l| l.id).collect();
    let everything = outcome.operations.iter().any(|o| !o.judges());
    let op_filter = (!everything).then_some(outcome.operations.as_slice());
    let mut open = ctx.store.open_problems(op_filter, Some(&ids))?;
    crate::monitor::overdue_as_of_now(
        ctx,
        open.iter_mut().map(|p| (p.location_id, &mut p.problem)),
    )?;
    let marks = Marks::load(ctx.store)?;
    outcome.problems = open
        .into_iter()
        .map(|p| OpenProblem {
            host: p.host.clone(),
            id: p.id,
            acknowledged: marks.acknowledged(&p),
            silenced: marks.silenced_at(&p.host, &p.problem, ctx.now),
            opened_at: ctx.local_rfc3339(p.first_seen),
            problem: p.problem,
        })
        .collect();
    outcome.stamp_host(&ctx.host);
    settle_status(outcome);
    Ok(())
}

/// Order the problems as people read them and set the run's and each location's
/// status from them (a location's problems are those of its host and name).
fn settle_status(outcome: &mut Outcome) {
    outcome
        .problems
        .sort_by(|a, b| Problem::reading_order(&a.problem, &b.problem));
    // Silenced problems are listed but do not count; acknowledged ones still do. A
    // location's are those of its host and name (every problem has its host by now).
    let counted: Vec<&OpenProblem> = outcome.problems.iter().filter(|p| !p.silenced).collect();
    let status = Status::of(counted.iter().map(|p| &p.problem));
    let mut by_key: HashMap<(&str, &str), Vec<&Problem>> = HashMap::new();
    for p in &counted {
        if let Some(l) = p.location.as_deref() {
            by_key.entry((&p.host, l)).or_default().push(&p.problem);
        }
    }
    let by_location: Vec<Status> = outcome
        .locations
        .iter()
        .map(|l| {
            Status::of(
                by_key
                    .remove(&(l.host.as_str(), l.name.as_str()))
                    .unwrap_or_default(),
            )
        })
        .collect();
    outcome.set_status(status);
    for (l, status) in outcome.locations.iter_mut().zip(by_location) {
        l.status = status;
    }
}

/// `--status`: the stored state, read-only, no lock, no scanning.
fn status(config: &Config, request: &Request, now: DateTime<Utc>) -> Judged<Outcome> {
    let e = CannotJudge::from_error;
    let mut outcome = Outcome::new(now, vec![Operation::Status]);
    outcome.thresholds = health::thresholds(config);
    let Some(store) = Store::connect_read_only(config).map_err(e)? else {
        let name = match &config.postgres {
            Some(pg) => pg.to_string(),
            None => config.store_path.display().to_string(),
        };
        return Err(CannotJudge::new(format!(
            "no store at {name} yet; run backup-monitor --monitor first"
        )));
    };
    let names: Vec<&str> = config
        .backups
        .locations
        .iter()
        .map(|l| l.name.as_str())
        .collect();
    let known = store.location_ids(&names).map_err(e)?;
    let mut ids = Vec::new();
    let mut unchecked = Vec::new();
    for l in &config.backups.locations {
        match known.get(&l.name) {
            Some(&id) => ids.push((id, l)),
            None => unchecked.push(l.name.as_str()),
        }
    }
    // Configured but never checked: the store knows nothing about them yet.
    match &request.selection {
        Selection::Name(name) if unchecked.contains(&name.as_str()) => {
            return Err(CannotJudge::new(format!(
                "location {name} has not been checked yet; run backup-monitor --monitor first"
            )));
        }
        _ => {}
    }
    let ctx = RunContext {
        config,
        store: &store,
        now,
        run_id: 0,
        host: config.host.clone(),
        recent_log: request.recent_log.clone(),
        locations: select(&request.selection, &ids)?,
        days: request.days.unwrap_or(config.monitoring.window_days),
        progress: false,
    };
    let today = ctx.today();
    let mut scores = HashMap::new();
    let glances = summary::glances(&ctx, &ctx.locations).map_err(e)?;
    let ids: Vec<i64> = ctx.locations.iter().map(|s| s.id).collect();
    let stored = store.stored_scores(&ids, &today).map_err(e)?;
    // The missing slots need every location's backup times: read at once.
    store.read_backup_timestamps(&ids).map_err(e)?;
    for sel in &ctx.locations {
        let score = stored.get(&sel.id).copied().flatten();
        scores.insert(sel.id, score);
        let glance = glances.get(&sel.id);
        outcome
            .locations
            .push(summary::location(&ctx, sel, glance, score, 0).map_err(e)?);
    }
    outcome.overall_health = overall(&scores);
    scope(&ctx, &mut outcome).map_err(e)?;
    // Staleness is judged now, as of this status: the stored verdict may be days old. A
    // location still stale keeps its stored problem (its id, when it opened, whether it
    // is acknowledged or silenced) with what is true now.
    let mut stored_stale: HashMap<Option<String>, OpenProblem> = HashMap::new();
    outcome.problems.retain(|p| {
        if p.kind != Kind::MonitorStale {
            return true;
        }
        stored_stale.insert(p.location.clone(), p.clone());
        false
    });
    let mut found = stale::problems(&ctx).map_err(e)?;
    // In the order of the config.
    let mut stale: Vec<_> = ctx
        .locations
        .iter()
        .filter_map(|sel| found.remove(&sel.id))
        .collect();
    if request.selection == Selection::All {
        stale.extend(unchecked.iter().map(|name| stale::never_checked(name)));
    }
    outcome.problems.extend(
        stale
            .into_iter()
            .map(|p| match stored_stale.remove(&p.location) {
                Some(stored) if stored.severity == p.severity => OpenProblem {
                    problem: p,
                    ..stored
                },
                _ => OpenProblem::unstored(p, now),
            }),
    );
    outcome.stamp_host(&config.host);
    settle_status(&mut outcome);
    outcome.last_run = store.last_finished_run().map_err(e)?;
    outcome.open_alerts = Some(alert::status_view(&ctx).map_err(e)?);
    Ok(outcome)
}

/// `--status --fleet` / `--status --host NAME`: the stored state of every location of
/// those hosts, read-only, from the store alone (the other hosts' configs are not here):
/// status, health, last checked, newest backup, open problems and alerts, and
/// `monitor_stale` for each location its host stopped checking.
fn fleet_status(config: &Config, request: &Request, now: DateTime<Utc>) -> Judged<Outcome> {
    let e = CannotJudge::from_error;
    let Some(mut store) = Store::connect_read_only(config).map_err(e)? else {
        return Err(CannotJudge::new(
            "no store yet; run backup-monitor --monitor first".into(),
        ));
    };
    let rows = fleet_rows(&mut store, request)?;
    let ctx = fleet_context(config, request, &store, 0, now);
    let stale = stale::of_fleet(&ctx, &rows).map_err(e)?;
    fleet_outcome(&ctx, &rows, &stale, Operation::Status)
}

/// `--check-alerts --fleet` / `--host NAME`, a recorded run of this host: store
/// `monitor_stale` for the locations whose host stopped checking them (as that host's
/// problem), then send the alerts of every location in view on this machine's channels.
/// Its outcome is the fleet status as of the end of the run.
fn fleet_alerts(
    config: &Config,
    request: &Request,
    store: &mut Store,
    run_id: i64,
    started: DateTime<Utc>,
) -> Judged<Outcome> {
    let e = CannotJudge::from_error;
    let rows = fleet_rows(store, request)?;
    let ctx = fleet_context(config, request, store, run_id, started);
    let stale = stale::of_fleet(&ctx, &rows).map_err(e)?;
    let busy = stale::sync_fleet(&ctx, &rows, &stale).map_err(e)?;
    if !busy.is_empty() {
        tracing::info!(
            "not judged for monitor_stale this time, a run of theirs is going on: {}",
            busy.join(", ")
        );
    }
    let alerts = alert::run_fleet(&ctx, &rows).map_err(e)?;
    let mut outcome = fleet_outcome(&ctx, &rows, &stale, Operation::CheckAlerts)?;
    outcome.alerts = alerts;
    Ok(outcome)
}

/// `--report --fleet` / `--report --host NAME` in a recorded run: the fleet's state on a
/// connection of its own (the run's reads stay this host's), then its report.
fn fleet_report(
    ctx: &RunContext,
    request: &Request,
    hosts: &Hosts,
) -> anyhow::Result<Vec<std::path::PathBuf>> {
    let mut store = Store::connect_read_only(ctx.config)?
        .ok_or_else(|| anyhow::anyhow!("the store cannot be read for the fleet report"))?;
    let rows = fleet_rows(&mut store, request)?;
    let fleet_ctx = fleet_context(ctx.config, request, &store, 0, ctx.now);
    let stale = stale::of_fleet(&fleet_ctx, &rows)?;
    let fleet = fleet_outcome(&fleet_ctx, &rows, &stale, Operation::Report)?;
    report::fleet::run(ctx, &store, &fleet, hosts)
}

/// The store narrowed to the hosts asked for, and their locations selected by
/// `--location-name` / `--location-id`; an unknown host names the known ones.
fn fleet_rows(store: &mut Store, request: &Request) -> Judged<Vec<crate::store::FleetLocation>> {
    use crate::store::View;
    let e = CannotJudge::from_error;
    store.set_view(match &request.hosts {
        Hosts::One(name) => View::Host(name.clone()),
        _ => View::Fleet,
    });
    let rows = store.fleet_locations().map_err(e)?;
    if let Hosts::One(name) = &request.hosts
        && rows.is_empty()
    {
        let known = store.hosts().map_err(e)?;
        return Err(CannotJudge::new(format!(
            "unknown host {name}; hosts in the store: {}",
            if known.is_empty() {
                "none yet".to_string()
            } else {
                known.join(", ")
            }
        )));
    }
    let (chosen, others): (Vec<_>, Vec<_>) =
        rows.into_iter().partition(|l| match &request.selection {
            Selection::All => true,
            Selection::Id(id) => l.id == *id,
            Selection::Name(name) => l.name == *name,
        });
    if !chosen.is_empty() || request.selection == Selection::All {
        return Ok(chosen);
    }
    // A name or id no location has: said as on one host, not an empty view read as OK.
    let asked = match &request.selection {
        Selection::Name(name) => name.clone(),
        Selection::Id(id) => format!("id {id}"),
        Selection::All => String::new(),
    };
    let mut names: Vec<&str> = others.iter().map(|l| l.name.as_str()).collect();
    names.sort_unstable();
    names.dedup();
    const SHOWN: usize = 20;
    let known = match names.len() {
        0 => "none yet".to_string(),
        n if n > SHOWN => format!("{} and {} more", names[..SHOWN].join(", "), n - SHOWN),
        _ => names.join(", "),
    };
    let place = match &request.hosts {
        Hosts::One(name) => format!("host {name}"),
        _ => "the fleet".to_string(),
    };
    Err(CannotJudge::new(format!(
        "unknown location {asked} in {place}; locations there: {known}"
    )))
}

fn fleet_context<'a>(
    config: &'a Config,
    request: &Request,
    store: &'a Store,
    run_id: i64,
    now: DateTime<Utc>,
) -> RunContext<'a> {
    RunContext {
        config,
        store,
        now,
        run_id,
        host: config.host.clone(),
        recent_log: request.recent_log.clone(),
        locations: Vec::new(),
        days: request.days.unwrap_or(config.monitoring.window_days),
        progress: false,
    }
}

/// The fleet view of `rows` as of `ctx.now`: each location's state, the open problems
/// and alerts, and `monitor_stale` judged now for each location its host stopped checking.
fn fleet_outcome(
    ctx: &RunContext,
    rows: &[crate::store::FleetLocation],
    stale: &stale::FleetStale,
    op: Operation,
) -> Judged<Outcome> {
    let e = CannotJudge::from_error;
    let (config, store, now) = (ctx.config, ctx.store, ctx.now);
    let mut outcome = Outcome::new(now, vec![op]);
    outcome.thresholds = health::thresholds(config);
    let states = store.location_states().map_err(e)?;
    let mut scores = HashMap::new();
    for l in rows {
        scores.insert(l.id, l.score);
        let state = states.get(&l.id).and_then(|s| s.state.as_ref());
        outcome.locations.push(crate::outcome::LocationSummary {
            host: l.host.clone(),
            id: l.id,
            name: l.name.clone(),
            kind: l.kind.parse().unwrap_or_default(),
            status: Status::Ok,
            health_score: l.score.map(round3),
            backups_present: l.backups_present,
            new_backups: 0,
            latest_backup: l
                .latest
                .as_ref()
                .map(|(path, ts, size)| crate::outcome::LatestBackup {
                    path: path.clone(),
                    timestamp: ctx.local_rfc3339(*ts),
                    size: *size,
                }),
            latest_backup_age_seconds: l
                .latest
                .as_ref()
                .map(|(_, ts, _)| (now - *ts).num_seconds()),
            // Stored by the location's own host, which knows its schedule.
            missing_slots: state.map_or_else(Vec::new, |s| {
                let tz = ctx.tz();
                let slot =
                    |t: &i64| crate::problem::SlotStart::new(crate::store::from_unix(*t), &tz);
                s.missing_slots.iter().map(slot).collect()
            }),
            age_thresholds: state.and_then(|s| s.age_thresholds),
            last_checked: l.last_scan_at.map(|t| ctx.local_rfc3339(t)),
        });
    }
    outcome.overall_health = overall(&scores);
    let ids: Vec<i64> = rows.iter().map(|l| l.id).collect();
    let marks = Marks::load(store).map_err(e)?;
    let shown = |p: crate::store::StoredProblem, problem: Problem| OpenProblem {
        host: p.host.clone(),
        id: p.id,
        acknowledged: marks.acknowledged(&p),
        silenced: marks.silenced_at(&p.host, &problem, now),
        opened_at: ctx.local_rfc3339(p.first_seen),
        problem,
    };
    // Staleness is judged now, as of this view; one a fleet run stored keeps its id (to
    // acknowledge it by), its opening time and what people decided about it.
    let mut stored_stale = HashMap::new();
    outcome.problems = Vec::new();
    for p in store.open_problems(None, Some(&ids)).map_err(e)? {
        match (p.problem.kind, p.location_id) {
            (Kind::MonitorStale, Some(location)) => {
                stored_stale.insert(location, p);
            }
            (Kind::MonitorStale, None) => {}
            _ => {
                let problem = p.problem.clone();
                outcome.problems.push(shown(p, problem));
            }
        }
    }
    for l in rows {
        if let Some(problem) = stale.problems.get(&l.id).cloned() {
            let p = match stored_stale.remove(&l.id) {
                Some(stored) => shown(stored, problem),
                None => {
                    let silenced = marks.silenced_at(&l.host, &problem, now);
                    let mut p = OpenProblem::unstored(problem, now);
                    p.host = l.host.clone();
                    p.silenced = silenced;
                    p
                }
            };
            outcome.problems.push(p);
        }
    }
    settle_status(&mut outcome);
    outcome.host = config.host.clone();
    outcome.last_run = store.last_finished_run().map_err(e)?;
    if op == Operation::Status {
        outcome.open_alerts = Some(alert::fleet_status_view(ctx, rows).map_err(e)?);
    }
    Ok(outcome)
}
