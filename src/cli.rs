//! The command line: the flags (each documented once, for the user; the actions' in
//! `lifecycle`), the [`Request`] they make, and printing: `main` parses, hands the request to
//! [`workflow::run`], prints the outcome and returns the exit code. Usage errors exit 3.
//!
//! Not for: running or judging anything (`workflow` and the operations do).

use crate::config;
use crate::outcome::Outcome;
use crate::output;
use crate::problem::Operation;
use crate::workflow::{self, Hosts, Request, Selection};
use chrono::Utc;
use clap::{ArgAction, Parser, ValueEnum};
use std::io::{IsTerminal, Write};
use std::path::PathBuf;

/// The operations of a run, which `--status` and `--check-config` cannot join.
#[rustfmt::skip]
const RUN_OPERATIONS: [&str; 5] = ["monitor", "verify", "test_restore", "report", "check_alerts"];
/// What `--check-config` would otherwise drop: every operation and action.
#[rustfmt::skip]
const CHECK_CONFIG_DROPS: [&str; 12] = ["status", "explain", "monitor", "verify", "test_restore",
    "report", "check_alerts", "ack", "accept", "silence", "silences", "unsilence"];

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// A human summary
    Text,
    /// One JSON document
    Json,
    /// A Nagios/Icinga plugin line with perfdata
    Nagios,
    /// JUnit XML for CI systems: a test suite per location, a test case per check
    Junit,
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
    #[arg(long, help_heading = "Operations", conflicts_with_all = RUN_OPERATIONS)]
    pub status: bool,
    /// Validate the config and exit: 0 valid, 3 invalid
    #[arg(long = "check-config", help_heading = "Operations", conflicts_with_all = CHECK_CONFIG_DROPS)]
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
    /// With --status, --report or --check-alerts: every host in the shared store
    #[arg(long, conflicts_with = "host")]
    pub fleet: bool,
    /// With --status, --report or --check-alerts: the host NAME in the shared store
    #[arg(long = "host", value_name = "NAME", value_parser = clap::builder::NonEmptyStringValueParser::new())]
    pub host: Option<String>,
    /// Analysis window in days for schedule, health and reports [default: monitoring.window_days, 7]
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=3660))]
    pub days: Option<u32>,
    /// What goes to stdout
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    /// Quiet: only errors on stderr, and with --format text no summary when all is OK
    #[arg(short, long, conflicts_with = "verbose")]
    pub quiet: bool,
    /// More verbose logs on stderr (-v info, -vv debug, -vvv trace)
    #[arg(short, long, action = ArgAction::Count)]
    pub verbose: u8,
    /// Never draw progress bars (they are drawn only when stderr is a terminal)
    #[arg(long = "no-progress")]
    pub no_progress: bool,
    #[command(flatten)]
    pub actions: crate::lifecycle::Flags,
}

impl Cli {
    pub(crate) fn operations(&self) -> Vec<Operation> {
        if self.status {
            return vec![Operation::Status];
        }
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

    fn request(&self, recent_log: crate::recent_log::RecentLog) -> Request {
        Request {
            operations: self.operations(),
            selection: Selection::of(self.location_name.as_deref(), self.location_id),
            hosts: Hosts::of(self.host.as_deref(), self.fleet),
            days: self.days,
            progress: !self.no_progress
                && std::io::stderr().is_terminal()
                && self.format == Format::Text,
            recent_log,
        }
    }
}

/// Guess `--format` from raw arguments, for errors raised before clap has parsed them.
fn format_hint(args: &[std::ffi::OsString]) -> Format {
    let args: Vec<String> = args.iter().map(|a| a.to_string_lossy().into()).collect();
    let value = args
        .iter()
        .enumerate()
        .find_map(|(i, a)| match a.strip_prefix("--format=") {
            Some(v) => Some(v),
            None => (a == "--format").then(|| args.get(i + 1).map(String::as_str))?,
        });
    value
        .and_then(|v| Format::from_str(v, true).ok())
        .unwrap_or(Format::Text)
}

/// Write to stdout without `println!`'s panic: a reader that went away (`| head`) is not an
/// error; any other write failure (a full disk under a redirect) is said and exits 3.
pub(crate) fn emit(text: &str, code: i32) -> i32 {
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
    let _ = writeln!(std::io::stderr().lock(), "{text}");
}

/// A run of `host` (the config's, once it is read; else this machine) that could not
/// judge, in `format`.
fn print_unknown(format: Format, operations: Vec<Operation>, message: &str, host: &str) -> i32 {
    let started = workflow::now().unwrap_or_else(|_| Utc::now());
    let outcome = || Outcome::unknown(started, operations, message, host);
    match format {
        Format::Json => emit(&format!("{}\n", output::json(&outcome())), 3),
        Format::Nagios => emit(&output::nagios::unknown(message), 3),
        Format::Junit => emit(&output::junit::render(&outcome()), 3),
        Format::Text => {
            warn(&format!("error: {message}"));
            3
        }
    }
}

fn print(format: Format, outcome: &Outcome) -> i32 {
    let text = match format {
        Format::Json => format!("{}\n", output::json(outcome)),
        Format::Nagios => output::nagios::render(outcome),
        Format::Junit => output::junit::render(outcome),
        Format::Text => output::text::render(outcome),
    };
    emit(&text, outcome.exit_code)
}

/// The whole program; returns the process exit code.
pub fn main() -> i32 {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let hint = format_hint(&args);
    let cli = match Cli::try_parse_from(&args) {
        Ok(cli) => cli,
        Err(e) => return usage_error(hint, &e),
    };
    let ops = cli.operations();
    if (cli.fleet || cli.host.is_some()) && !Hosts::widen(&ops) {
        use clap::CommandFactory;
        let e = Cli::command().error(
            clap::error::ErrorKind::ArgumentConflict,
            "--fleet and --host go with --status, with --report, or with --check-alerts alone (a run judges its own host's locations)",
        );
        return usage_error(hint, &e);
    }
    // Before --explain and --check-config, which would run and drop an action given
    // with them: an action runs on its own, and says so.
    if cli.actions.given() {
        return crate::lifecycle::main(&cli);
    }
    if cli.explain {
        return crate::explain::main(&cli);
    }
    if cli.check_config {
        return check_config(&cli);
    }
    if ops.is_empty() {
        use clap::CommandFactory;
        let help = Cli::command().render_help();
        warn(&format!(
            "{help}\nerror: no operation given; pass at least one of --monitor, --verify, --test-restore, --report, --check-alerts, --status, --check-config, --explain"
        ));
        if cli.format != Format::Text {
            return print_unknown(cli.format, ops, "no operation given", &config::host_name());
        }
        return 3;
    }
    let level = crate::logging::stderr_level(cli.quiet, cli.verbose);
    let printed = cli.format == Format::Text;
    let config_path = config::choose_path(cli.config.as_deref());
    match workflow::start(&config_path, level, printed, |log| cli.request(log)) {
        Ok(o) if cli.quiet && printed && o.exit_code == 0 => 0,
        Ok(outcome) => print(cli.format, &outcome),
        Err(e) => print_unknown(cli.format, ops, &e.message, &e.host),
    }
}

/// clap's own help and version exit 0; every usage error exits 3, in the asked format.
fn usage_error(hint: Format, e: &clap::Error) -> i32 {
    use clap::error::ErrorKind;
    if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) {
        let _ = e.print();
        return 0;
    }
    if hint == Format::Text {
        let _ = e.print();
        return 3;
    }
    print_unknown(
        hint,
        Vec::new(),
        &usage_line(&e.to_string()),
        &config::host_name(),
    )
}

/// clap's message as one line: the error with what it lists (the missing arguments, say),
/// without the usage and help lines after it.
fn usage_line(text: &str) -> String {
    let said: Vec<&str> = text
        .lines()
        .map(str::trim)
        .take_while(|l| !l.is_empty() && !l.starts_with("Usage:"))
        .collect();
    match said.join(" ") {
        line if line.is_empty() => "invalid usage".to_string(),
        line => line,
    }
}

fn check_config(cli: &Cli) -> i32 {
    let path = config::choose_path(cli.config.as_deref());
    let errors = workflow::check_config(&path);
    let (stdout, stderr) = output::check_config(cli.format, &path, &errors);
    if !stderr.is_empty() {
        warn(stderr.trim_end());
    }
    emit(&stdout, if errors.is_empty() { 0 } else { 3 })
}
