//! Logs through `tracing`: stderr at the level `-q`/`-v` choose, and `logging.file` (if
//! set) at the configured level. Log lines never carry secrets: callers log redacted text.
//! Every field of every line goes through [`crate::problem::one_line`], so a file name
//! holding a line break, a carriage return or a bidi control can neither forge a log
//! line nor disguise one, whichever message quotes it.

use crate::config::LogLevel;
use crate::recent_log::RecentLog;
use std::path::Path;
use tracing_subscriber::field::MakeExt;
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::fmt::FormatFields;
use tracing_subscriber::fmt::writer::MakeWriterExt;
use tracing_subscriber::prelude::*;

fn level(l: LogLevel) -> LevelFilter {
    match l {
        LogLevel::Error => LevelFilter::ERROR,
        LogLevel::Warn => LevelFilter::WARN,
        LogLevel::Info => LevelFilter::INFO,
        LogLevel::Debug => LevelFilter::DEBUG,
        LogLevel::Trace => LevelFilter::TRACE,
    }
}

/// Stderr level from the flags: `-q` errors only, default warnings, `-v` info, `-vv` debug.
pub fn stderr_level(quiet: bool, verbose: u8) -> LevelFilter {
    match (quiet, verbose) {
        (true, _) => LevelFilter::ERROR,
        (false, 0) => LevelFilter::WARN,
        (false, 1) => LevelFilter::INFO,
        (false, 2) => LevelFilter::DEBUG,
        _ => LevelFilter::TRACE,
    }
}

/// The fields of an event (its message first) with their control and bidi characters
/// escaped, separated by spaces.
fn escaped_fields() -> impl for<'w> FormatFields<'w> + 'static {
    tracing_subscriber::fmt::format::debug_fn(|w, field, value| {
        let text = format!("{value:?}");
        let text = crate::problem::one_line(&text);
        if field.name() == "message" {
            write!(w, "{text}")
        } else {
            write!(w, "{field}={text}")
        }
    })
    .delimited(" ")
}

/// `level` for this program's own events; the libraries under it (the database client,
/// TLS, the runtime) say at most what they say at info: their debug and trace lines are
/// thousands per run and about their own internals.
fn ours_only_past_info(level: LevelFilter) -> tracing_subscriber::filter::Targets {
    tracing_subscriber::filter::Targets::new()
        .with_target(env!("CARGO_CRATE_NAME"), level)
        .with_default(level.min(LevelFilter::INFO))
}

/// The target of events for the log file only: what the program prints on the terminal
/// anyway (a failed run's error), so that stderr does not say it twice.
const FILE_ONLY: &str = concat!(env!("CARGO_CRATE_NAME"), "::file_only");

/// Log the error that ended a run. The text output prints it on stderr itself, so there
/// it goes to the log file only; with JSON, Nagios or JUnit on stdout, stderr says it too.
pub fn failed_run(e: &dyn std::fmt::Display, printed_on_stderr: bool) {
    if printed_on_stderr {
        tracing::error!(target: FILE_ONLY, "{e}");
    } else {
        tracing::error!("{e}");
    }
}

/// [`init`] for a command that loaded `config` (its log file, when the command keeps
/// one, and its level), then what reading the config found wrong without stopping it
/// (an unreadable `.env` in the working directory): said by every command alike.
pub fn init_for(
    config: &crate::config::Config,
    stderr: LevelFilter,
    file: Option<&Path>,
) -> RecentLog {
    let recent = init(stderr, file, config.logging.level);
    for warning in &config.warnings {
        tracing::warn!("{warning}");
    }
    recent
}

/// Install the subscriber. A log file that cannot be opened is reported and skipped: logs
/// must never stop a backup check. Returns the buffer of recent lines per location.
pub fn init(stderr: LevelFilter, file: Option<&Path>, file_level: LogLevel) -> RecentLog {
    let recent = RecentLog::default();
    let stderr_layer = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr.with_max_level(tracing::Level::TRACE))
        .fmt_fields(escaped_fields())
        .with_target(false)
        .without_time()
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_filter(ours_only_past_info(stderr).with_target(FILE_ONLY, LevelFilter::OFF));
    let file_layer = file.and_then(|path| match open_log(path) {
        Ok(f) => Some(
            tracing_subscriber::fmt::layer()
                .with_writer(std::sync::Mutex::new(f))
                .fmt_fields(escaped_fields())
                .with_ansi(false)
                .with_target(false)
                .with_filter(ours_only_past_info(level(file_level))),
        ),
        Err(e) => {
            eprintln!(
                "warning: cannot open log file {}: {e}; logging to stderr only",
                path.display()
            );
            None
        }
    });
    let _ = tracing_subscriber::registry()
        .with(stderr_layer)
        .with(file_layer)
        .with(recent.layer())
        .try_init();
    recent
}

fn open_log(path: &Path) -> std::io::Result<std::fs::File> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let existed = path.exists();
    let f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    if !existed {
        crate::store::restrict_permissions(path);
    }
    Ok(f)
}
