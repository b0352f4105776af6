//! The command line: parse flags, load the config, take the lock, run the
//! requested operations in order, print the summary and return the exit code. Usage errors
//! exit 3 (UNKNOWN), like every other "could not judge".

use crate::config::{self, Config};
use crate::health;
use crate::output::{self, LatestBackup, LocationSummary, RunDocument};
use crate::problem::{Kind, Operation, Problem, exit_code_for, status_word};
use crate::run::{RunContext, SelectedLocation};
use crate::store::Store;
use crate::{alert, lock, logging, monitor, report, restore, verify};
use anyhow::{Context, Result};
use chrono::{DateTime, Utc};
use clap::{ArgAction, Parser, ValueEnum};
use std::io::IsTerminal;
use std::path::PathBuf;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// A human summary
    Text,
    /// One JSON document
    Json,
    /// A Nagios/Icinga plugin line with perfdata
    Nagios,
}

/// Prove that backups exist, are intact and can actually be restored.
///
/// Operations run in the order monitor → verify → test-restore → report → check-alerts,
/// sharing one run. Exit codes follow the Nagios convention: 0 OK, 1 WARNING,
/// 2 CRITICAL, 3 UNKNOWN (bad usage, invalid config, unreadable store, locked).
#[derive(Debug, Parser)]
#[command(name = "backup-monitor", version, about, long_about = None, max_term_width = 100)]
pub struct Cli {
    /// Scan the locations, record backup files, judge schedule, retention, sizes and disk space
    #[arg(long, help_heading = "Operations")]
    pub monitor: bool,
    /// Check integrity: checksums (recorded on first sight), sidecar checksum files, size and mtime
    #[arg(long, help_heading = "Operations")]
    pub verify: bool,
    /// Restore the newest backups into a sandbox and validate what comes out
    #[arg(long = "test-restore", help_heading = "Operations")]
    pub test_restore: bool,
    /// Write the health report (HTML, CSV, JSON) and the Prometheus textfile
    #[arg(long, help_heading = "Operations")]
    pub report: bool,
    /// Turn open problems into alerts, send them, and send recovery notices
    #[arg(long = "check-alerts", help_heading = "Operations")]
    pub check_alerts: bool,
    /// Print the stored state of every location without scanning (takes no lock)
    #[arg(long, help_heading = "Operations")]
    pub status: bool,
    /// Validate the config and exit: 0 valid, 3 invalid
    #[arg(long = "check-config", help_heading = "Operations")]
    pub check_config: bool,
    /// Show each file's timestamp, its source, mtime, slot and settling, then the missing slots (reads only)
    #[arg(long, help_heading = "Operations")]
    pub explain: bool,

    /// Config file [default: config.yaml, or $BACKUP_MONITOR_CONFIG]
    #[arg(long, value_name = "PATH")]
    pub config: Option<PathBuf>,
    /// Restrict every operation to the location with this store id
    #[arg(
        long = "location-id",
        value_name = "ID",
        conflicts_with = "location_name"
    )]
    pub location_id: Option<i64>,
    /// Restrict every operation to the location with this name
    #[arg(long = "location-name", value_name = "NAME")]
    pub location_name: Option<String>,
    /// Analysis window in days for schedule, health and reports
    #[arg(long, value_name = "N", default_value_t = 7, value_parser = clap::value_parser!(u32).range(1..=3660))]
    pub days: u32,
    /// What goes to stdout
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    /// Quieter logs on stderr (errors only)
    #[arg(short, long, conflicts_with = "verbose")]
    pub quiet: bool,
    /// More verbose logs on stderr (-v info, -vv debug, -vvv trace)
    #[arg(short, long, action = ArgAction::Count)]
    pub verbose: u8,
    /// Never draw progress bars (they are drawn only when stderr is a terminal)
    #[arg(long = "no-progress")]
    pub no_progress: bool,
}

impl Cli {
    fn operations(&self) -> Vec<Operation> {
        [
            (self.monitor, Operation::Monitor),
            (self.verify, Operation::Verify),
            (self.test_restore, Operation::TestRestore),
            (self.report, Operation::Report),
            (self.check_alerts, Operation::CheckAlerts),
        ]
        .into_iter()
        .filter_map(|(on, op)| on.then_some(op))
        .collect()
    }
}

/// A failure that makes the run UNKNOWN (exit 3).
struct Unknown(String);

impl<E: Into<anyhow::Error>> From<E> for Unknown {
    fn from(e: E) -> Self {
        let e: anyhow::Error = e.into();
        Unknown(format!("{e:#}"))
    }
}

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

/// Guess `--format` from raw arguments, for errors raised before clap has parsed them.
fn format_hint(args: &[std::ffi::OsString]) -> Format {
    let args: Vec<String> = args
        .iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    for (i, a) in args.iter().enumerate() {
        let value = match a.strip_prefix("--format=") {
            Some(v) => Some(v.to_string()),
            None if a == "--format" => args.get(i + 1).cloned(),
            None => None,
        };
        match value.as_deref() {
            Some("json") => return Format::Json,
            Some("nagios") => return Format::Nagios,
            _ => {}
        }
    }
    Format::Text
}

/// Write to stdout without `println!`'s panic: a reader that went away (`| head`) is not
/// an error, the run's exit code stands; any other write failure (a full disk under a
/// redirect) is said on stderr and makes the exit code 3, since the output was lost.
fn emit(text: &str, code: i32) -> i32 {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Ok(()) => code,
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => code,
        Err(e) => {
            warn(&format!("error: could not write the output to stdout: {e}"));
            3
        }
    }
}

/// A line on stderr, ignoring failure (there is nowhere left to say it).
fn warn(text: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr().lock(), "{text}");
}

fn print_unknown(format: Format, operations: Vec<String>, message: &str) -> i32 {
    let started = now().unwrap_or_else(|_| Utc::now());
    match format {
        Format::Json => emit(
            &format!(
                "{}\n",
                RunDocument::unknown(started, operations, message).to_json()
            ),
            3,
        ),
        Format::Nagios => emit(&nagios_unknown(message), 3),
        Format::Text => {
            warn(&format!("error: {message}"));
            3
        }
    }
}

/// `BACKUP UNKNOWN - <cause>`: the status line must carry the cause, so a message that
/// introduces its causes ("invalid config x.yaml:") takes the first one onto that line;
/// further lines follow as the plugin's long output. `|` would start perfdata.
fn nagios_unknown(message: &str) -> String {
    let mut lines = message.lines().map(|l| l.trim().replace('|', "/"));
    let mut status = lines.next().unwrap_or_default();
    if status.ends_with(':')
        && let Some(cause) = lines.next()
    {
        status = format!("{status} {cause}");
    }
    let mut out = format!("BACKUP UNKNOWN - {status}\n");
    for line in lines.filter(|l| !l.is_empty()) {
        out.push_str(&line);
        out.push('\n');
    }
    out
}

/// The slots of open `missing_backup` problems, in time order (not text order: on a DST
/// fall-back day 02:15+01:00 comes after 02:15+02:00).
fn missing_slots(open: &[crate::store::StoredProblem]) -> Vec<String> {
    let mut slots: Vec<String> = open
        .iter()
        .filter(|p| p.problem.kind == Kind::MissingBackup)
        .filter_map(|p| p.problem.slot.clone())
        .collect();
    monitor::sort_slots(&mut slots);
    slots
}

/// Health scores are shown to three decimals in every output.
fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

fn mean(values: &[f64]) -> Option<f64> {
    (!values.is_empty()).then(|| values.iter().sum::<f64>() / values.len() as f64)
}

/// The whole program; returns the process exit code.
pub fn main() -> i32 {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let hint = format_hint(&args);
    let cli = match Cli::try_parse_from(&args) {
        Ok(cli) => cli,
        Err(e) => {
            use clap::error::ErrorKind;
            if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) {
                let _ = e.print();
                return 0;
            }
            if hint == Format::Text {
                let _ = e.print();
                return 3;
            }
            return print_unknown(
                hint,
                Vec::new(),
                e.to_string().lines().next().unwrap_or("invalid usage"),
            );
        }
    };
    if cli.explain {
        return crate::explain::main(&cli);
    }
    if cli.check_config {
        return check_config(&cli);
    }
    let mut ops = cli.operations();
    if cli.status {
        ops = vec![Operation::Status];
    }
    let op_names: Vec<String> = ops.iter().map(|o| o.as_str().to_string()).collect();
    if ops.is_empty() {
        use clap::CommandFactory;
        let help = Cli::command().render_help();
        warn(&format!(
            "{help}\nerror: no operation given; pass at least one of --monitor, --verify, --test-restore, --report, --check-alerts, --status, --check-config, --explain"
        ));
        if cli.format != Format::Text {
            return print_unknown(cli.format, op_names, "no operation given");
        }
        return 3;
    }
    let config_path = config::choose_path(cli.config.as_deref());
    let config = match config::load(&config_path) {
        Ok(c) => c,
        Err(e) => {
            let msg = format!(
                "invalid config {}:\n  {}",
                config_path.display(),
                e.errors.join("\n  ")
            );
            return print_unknown(cli.format, op_names, &msg);
        }
    };
    logging::init(
        logging::stderr_level(cli.quiet, cli.verbose),
        config.log_file().as_deref(),
        config.logging.level,
    );
    let started = match now() {
        Ok(t) => t,
        Err(e) => return print_unknown(cli.format, op_names, &e),
    };
    let result = if ops == [Operation::Status] {
        status(&cli, &config, started)
    } else {
        execute(&cli, &config, &ops, started)
    };
    match result {
        Ok(doc) => {
            let text = match cli.format {
                Format::Json => format!("{}\n", doc.to_json()),
                Format::Nagios => output::render_nagios(&doc),
                Format::Text => output::render_text(&doc),
            };
            emit(&text, doc.exit_code)
        }
        Err(Unknown(msg)) => {
            tracing::error!("{msg}");
            print_unknown(cli.format, op_names, &msg)
        }
    }
}

fn check_config(cli: &Cli) -> i32 {
    let path = config::choose_path(cli.config.as_deref());
    let (valid, errors) = match config::load(&path) {
        Ok(_) => (true, Vec::new()),
        Err(e) => (false, e.errors),
    };
    let code = if valid { 0 } else { 3 };
    match cli.format {
        Format::Json => {
            let doc = serde_json::json!({
                "valid": valid,
                "errors": errors,
                "status": if valid { "ok" } else { "unknown" },
                "exit_code": code,
                "config": path.display().to_string(),
            });
            emit(
                &format!(
                    "{}\n",
                    serde_json::to_string_pretty(&doc).unwrap_or_default()
                ),
                code,
            )
        }
        Format::Nagios if valid => emit(
            &format!("BACKUP OK - config {} is valid\n", path.display()),
            code,
        ),
        Format::Nagios => emit(
            &format!(
                "BACKUP UNKNOWN - invalid config: {}\n",
                errors.first().map(String::as_str).unwrap_or("")
            ),
            code,
        ),
        Format::Text if valid => emit(&format!("config {} is valid\n", path.display()), code),
        Format::Text => {
            warn(&format!("invalid config {}:", path.display()));
            for e in &errors {
                warn(&format!("  {e}"));
            }
            code
        }
    }
}

/// Which configured locations this run covers (`--location-id` / `--location-name`).
fn select<'a>(
    cli: &Cli,
    config: &'a Config,
    ids: &[(i64, &'a config::Location)],
) -> Result<Vec<SelectedLocation<'a>>, Unknown> {
    let known = || {
        ids.iter()
            .map(|(id, l)| format!("{} (id {id})", l.name))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let chosen: Vec<SelectedLocation> = ids
        .iter()
        .filter(|(id, l)| {
            cli.location_id.is_none_or(|want| want == *id)
                && cli
                    .location_name
                    .as_deref()
                    .is_none_or(|want| want == l.name)
        })
        .map(|(id, l)| SelectedLocation { id: *id, config: l })
        .collect();
    if chosen.is_empty() && (cli.location_id.is_some() || cli.location_name.is_some()) {
        let asked = cli
            .location_name
            .clone()
            .or(cli.location_id.map(|i| format!("id {i}")))
            .unwrap_or_default();
        let known = if config.backups.locations.is_empty() {
            "none configured".to_string()
        } else {
            known()
        };
        return Err(Unknown(format!(
            "unknown location {asked}; known locations: {known}"
        )));
    }
    Ok(chosen)
}

fn execute(
    cli: &Cli,
    config: &Config,
    ops: &[Operation],
    started: DateTime<Utc>,
) -> Result<RunDocument, Unknown> {
    let _lock = lock::acquire(&config.store_path)?;
    let store = Store::open(&config.store_path)?;
    let host = hostname::get()
        .map(|h| h.to_string_lossy().into_owned())
        .unwrap_or_default();
    let op_names: Vec<&str> = ops.iter().map(|o| o.as_str()).collect();
    let run_id = store.start_run(&op_names, &host, started)?;
    // "Now" may be BACKUP_MONITOR_NOW: the end is that plus the real time the run took.
    let clock = std::time::Instant::now();
    let finished = || started + chrono::TimeDelta::from_std(clock.elapsed()).unwrap_or_default();
    match run_operations(cli, config, ops, &store, run_id, started) {
        Ok(mut doc) => {
            doc.finished_at = finished().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
            store.finish_run(run_id, doc.exit_code, finished())?;
            Ok(doc)
        }
        Err(e) => {
            // Every run that started is closed in the audit log, failed ones with exit 3.
            if let Err(close) = store.finish_run(run_id, 3, finished()) {
                tracing::warn!("cannot record the end of run {run_id}: {close:#}");
            }
            Err(e)
        }
    }
}

/// The operations of one recorded run, in the contract's order.
fn run_operations(
    cli: &Cli,
    config: &Config,
    ops: &[Operation],
    store: &Store,
    run_id: i64,
    started: DateTime<Utc>,
) -> Result<RunDocument, Unknown> {
    let op_names: Vec<&str> = ops.iter().map(|o| o.as_str()).collect();
    let mut ids = Vec::new();
    for l in &config.backups.locations {
        let id = store.upsert_location(
            &l.name,
            &l.root.display().to_string(),
            l.kind.as_str(),
            started,
        )?;
        ids.push((id, l));
    }
    let ctx = RunContext {
        config,
        store,
        now: started,
        run_id,
        locations: select(cli, config, &ids)?,
        days: cli.days,
        progress: !cli.no_progress && std::io::stderr().is_terminal() && cli.format == Format::Text,
    };
    let mut doc = RunDocument::new(started, op_names.iter().map(|s| s.to_string()).collect());
    doc.thresholds = (
        config.monitoring.health_warning.0,
        config.monitoring.health_critical.0,
    );
    let mut new_backups = std::collections::HashMap::new();
    if ops.contains(&Operation::Monitor) {
        for o in monitor::run(&ctx)? {
            new_backups.insert(o.location, o.new_backups as u64);
        }
    } else if ops.contains(&Operation::Verify) || ops.contains(&Operation::TestRestore) {
        monitor::refresh(&ctx)?;
    }
    if ops.contains(&Operation::Verify) {
        doc.verification = verify::run(&ctx)?;
    }
    if ops.contains(&Operation::TestRestore) {
        doc.restore_tests = restore::run(&ctx)?;
    }
    let judge_health = ops.contains(&Operation::Report);
    summarise(&ctx, &mut doc, &new_backups, judge_health, ops)?;
    let mut report_failure = None;
    if ops.contains(&Operation::Report) {
        // A report that cannot be written (disk full, permissions) must not keep the
        // alerts from going out: the run still fails (exit 3), after them.
        match report::run(&ctx, &doc) {
            Ok(written) => doc.reports = written.iter().map(|p| p.display().to_string()).collect(),
            Err(e) => report_failure = Some(e),
        }
    }
    if ops.contains(&Operation::CheckAlerts) {
        doc.alerts = alert::run(&ctx)?;
        // Delivery failures are problems of this run: refresh the problem list.
        fill_problems(&ctx, &mut doc, ops)?;
    }
    match report_failure {
        Some(e) => Err(e.into()),
        None => Ok(doc),
    }
}

/// Problems in the run's scope: those of its judging operations, or every open
/// problem when it reports, checks alerts or shows status. Sets the exit code.
fn fill_problems(ctx: &RunContext, doc: &mut RunDocument, ops: &[Operation]) -> Result<()> {
    let ids: Vec<i64> = ctx.locations.iter().map(|l| l.id).collect();
    let everything = ops.iter().any(|o| !o.judges());
    let op_filter: Option<&[Operation]> = if everything { None } else { Some(ops) };
    let open = ctx.store.open_problems(op_filter, Some(&ids))?;
    doc.problems = open.into_iter().map(|p| p.problem).collect();
    doc.problems.sort_by(|a, b| {
        b.severity
            .cmp(&a.severity)
            .then(a.location.cmp(&b.location))
            .then(a.kind.cmp(&b.kind))
            .then_with(|| match (&a.slot, &b.slot) {
                (Some(x), Some(y)) => monitor::slot_order(x, y),
                _ => std::cmp::Ordering::Equal,
            })
    });
    doc.set_exit(exit_code_for(&doc.problems));
    for l in &mut doc.locations {
        let own = doc
            .problems
            .iter()
            .filter(|p| p.location.as_deref() == Some(l.name.as_str()));
        l.status = status_word(exit_code_for(own)).to_string();
    }
    Ok(())
}

/// Per-location summaries and health (recorded per day; judged when `judge_health`).
fn summarise(
    ctx: &RunContext,
    doc: &mut RunDocument,
    new_backups: &std::collections::HashMap<String, u64>,
    judge_health: bool,
    ops: &[Operation],
) -> Result<()> {
    let m = &ctx.config.monitoring;
    let today = ctx
        .now
        .with_timezone(&ctx.tz())
        .format("%Y-%m-%d")
        .to_string();
    let mut scores = Vec::new();
    for sel in &ctx.locations {
        let loc = sel.config;
        let backups = ctx.store.backups_of(sel.id)?;
        let open_monitor = ctx
            .store
            .open_problems(Some(&[Operation::Monitor]), Some(&[sel.id]))?;
        let zeroed = open_monitor
            .iter()
            .any(|p| matches!(p.problem.kind, Kind::LocationUnavailable | Kind::NoBackups));
        let assessment = health::assess(
            ctx.store,
            loc,
            sel.id,
            &backups,
            ctx.window_start(),
            ctx.now,
            zeroed,
        )
        .with_context(|| format!("scoring location {}", loc.name))?;
        ctx.store
            .record_daily_health(sel.id, &today, &assessment.daily(&today), ctx.now)?;
        if judge_health {
            let found: Vec<Problem> = assessment
                .problem(&loc.name, m.health_warning.0, m.health_critical.0)
                .into_iter()
                .collect();
            ctx.store
                .sync_problems(Operation::Report, Some(sel.id), &found, &|_| true, ctx.now)?;
        }
        if let Some(s) = assessment.score {
            scores.push(s);
        }
        let latest = backups
            .iter()
            .filter(|b| b.is_present())
            .max_by_key(|b| (b.ts, b.id));
        doc.locations.push(LocationSummary {
            id: sel.id,
            name: loc.name.clone(),
            kind: loc.kind.as_str().to_string(),
            status: "ok".into(),
            health_score: assessment.score.map(round3),
            backups_present: backups.iter().filter(|b| b.is_present()).count() as u64,
            new_backups: new_backups.get(&loc.name).copied().unwrap_or(0),
            latest_backup: latest.map(|b| LatestBackup {
                path: b.path.clone(),
                timestamp: ctx.local_rfc3339(b.ts),
                size: b.seen_size,
            }),
            latest_backup_age_seconds: latest.map(|b| (ctx.now - b.ts).num_seconds()),
            missing_slots: missing_slots(&open_monitor),
        });
    }
    doc.overall_health = mean(&scores).map(round3);
    fill_problems(ctx, doc, ops)
}

/// `--status`: the stored state, read-only, no lock, no scanning.
fn status(cli: &Cli, config: &Config, now: DateTime<Utc>) -> Result<RunDocument, Unknown> {
    let mut doc = RunDocument::new(now, vec!["status".into()]);
    doc.thresholds = (
        config.monitoring.health_warning.0,
        config.monitoring.health_critical.0,
    );
    let Some(store) = Store::open_read_only(&config.store_path)? else {
        return Err(Unknown(format!(
            "no store at {} yet; run backup-monitor --monitor first",
            config.store_path.display()
        )));
    };
    let mut ids = Vec::new();
    let mut unchecked = Vec::new();
    for l in &config.backups.locations {
        match store.location_id(&l.name)? {
            Some(id) => ids.push((id, l)),
            None => unchecked.push(l.name.as_str()),
        }
    }
    // Configured but never checked: the store knows nothing about them yet.
    if let Some(name) = cli
        .location_name
        .as_deref()
        .filter(|n| unchecked.contains(n))
    {
        return Err(Unknown(format!(
            "location {name} has not been checked yet; run backup-monitor --monitor first"
        )));
    }
    if cli.location_name.is_none() && cli.location_id.is_none() {
        for name in &unchecked {
            tracing::warn!(
                "location {name} has not been checked yet (run --monitor): not in this status"
            );
        }
    }
    let ctx = RunContext {
        config,
        store: &store,
        now,
        run_id: 0,
        locations: select(cli, config, &ids)?,
        days: cli.days,
        progress: false,
    };
    let today = now.with_timezone(&ctx.tz()).format("%Y-%m-%d").to_string();
    let mut scores = Vec::new();
    for sel in &ctx.locations {
        let backups = store.present_backups(sel.id)?;
        let open = store.open_problems(None, Some(&[sel.id]))?;
        let score = store
            .daily_health(sel.id, &today)?
            .first()
            .and_then(|h| h.score)
            .or_else(|| {
                store
                    .daily_health(sel.id, "0000-00-00")
                    .ok()
                    .and_then(|v| v.last().and_then(|h| h.score))
            });
        scores.extend(score);
        let latest = backups.first();
        doc.locations.push(LocationSummary {
            id: sel.id,
            name: sel.config.name.clone(),
            kind: sel.config.kind.as_str().to_string(),
            status: "ok".into(),
            health_score: score.map(round3),
            backups_present: backups.len() as u64,
            new_backups: 0,
            latest_backup: latest.map(|b| LatestBackup {
                path: b.path.clone(),
                timestamp: ctx.local_rfc3339(b.ts),
                size: b.seen_size,
            }),
            latest_backup_age_seconds: latest.map(|b| (now - b.ts).num_seconds()),
            missing_slots: missing_slots(&open),
        });
    }
    doc.overall_health = mean(&scores).map(round3);
    fill_problems(&ctx, &mut doc, &[Operation::Status])?;
    doc.open_alerts = Some(alert::status_view(&ctx)?);
    Ok(doc)
}
