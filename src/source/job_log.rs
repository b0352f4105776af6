//! `kind: job_log`: a backup system that logs each job's outcome into a database
//! (PostgreSQL or SQLite). The configured query runs once per log and run, read-only and
//! time-bound; each successful row is a backup of its job (whose location is
//! `LOCATION.JOB`), judged by the same schedule, gap and size rules as files; each failed
//! row after the job's last success is a `backup_job_failed`. Every row is hostile
//! input: fields are cut to a bound in the database, rows are counted, and bad rows are
//! skipped and reported. Not for: the config keys (`config::job_log`), scanning files.

use crate::config::{Config, JobLog, JobLogSource, JobStatus, Location};
use crate::monitor::{self, MonitorOutcome};
use crate::problem::{Kind, Operation, Problem, Severity, one_line};
use crate::run::{RunContext, SelectedLocation};
use crate::scan::{CLOCK_TOLERANCE, FoundFile};
use crate::store::BackupRow;
use crate::timestamp::TimestampSource;
use anyhow::{Context, Result};
use chrono::{DateTime, NaiveDateTime, SecondsFormat, TimeZone, Utc};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The columns the query must return, in any order, and no others.
pub const COLUMNS: [&str; 4] = ["name", "finished_at", "status", "size_bytes"];

/// More rows than this and the log is not read: narrow the query (e.g. to 90 days).
pub const MAX_ROWS: u64 = 1_000_000;

/// Text fields are cut to these many characters in the database, one more than any
/// value that can match (a job name is at most 128; longer names match no job).
const MAX_NAME_CHARS: usize = 257;
const MAX_STAMP_CHARS: usize = 65;
const MAX_STATUS_CHARS: usize = 65;

/// At most this many distinct unknown job names or status values are listed.
const LISTED: usize = 5;

/// How long connecting to PostgreSQL may take, and how long SQLite waits for a writer's
/// lock, at most (never more than the query timeout).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Why a job log could not be read; each is one line for the person who fixes it, with
/// no secret in it.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    #[error("cannot connect to the job log at {url}: {reason}")]
    Connect { url: String, reason: String },
    #[error("the job log query at {url} failed: {reason}")]
    Query { url: String, reason: String },
    #[error("the job log query at {url} {reason}")]
    Columns { url: String, reason: String },
    #[error("the job log query at {url} could write to the database; it must only read (a SELECT)")]
    Writes { url: String },
    #[error(
        "the job log query at {url} returned more than {MAX_ROWS} rows; narrow it, e.g. to the last 90 days"
    )]
    TooManyRows { url: String },
}

/// One row of a job log, as read.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub name: String,
    pub finished_at: DateTime<Utc>,
    pub status: String,
    pub size: Option<u64>,
}

/// One run of a configured job, as kept (small: a log may hold a million).
#[derive(Debug, Clone, PartialEq)]
pub struct Run {
    pub finished_at: DateTime<Utc>,
    /// What its status means; None for a value `status_map` does not list.
    pub outcome: Option<JobStatus>,
    /// The status as written, kept for failures only: their message quotes it.
    pub status: Box<str>,
    pub size: Option<u64>,
}

/// The rows of the configured jobs, and what the rest of the log held.
#[derive(Debug, Default)]
pub struct JobRows {
    /// By job name, in no particular order.
    pub rows: HashMap<String, Vec<Run>>,
    /// Rows of jobs not listed in `jobs`, by name (at most [`LISTED`] names kept).
    pub unknown_jobs: BTreeMap<String, u64>,
    pub unknown_job_names: u64,
    /// Rows whose status `status_map` does not list, by value (at most [`LISTED`]).
    pub unknown_status: BTreeMap<String, u64>,
    /// Rows that could not be used (no name, no status, a finished_at that does not
    /// parse, a negative size): how many and the first one's reason.
    pub bad_rows: u64,
    pub first_bad: Option<String>,
    pub total: u64,
}

impl JobRows {
    fn add(&mut self, source: &JobLogSource, tz: chrono_tz::Tz, raw: RawRow) {
        self.total += 1;
        let row = match raw.parse(tz) {
            Ok(row) => row,
            Err(reason) => {
                self.bad_rows += 1;
                self.first_bad.get_or_insert(reason);
                return;
            }
        };
        if !source.jobs.contains(&row.name) {
            count_bounded(
                &mut self.unknown_jobs,
                &row.name,
                &mut self.unknown_job_names,
            );
            return;
        }
        let outcome = source.status_map.meaning(&row.status);
        if outcome.is_none() {
            let mut distinct = 0;
            count_bounded(&mut self.unknown_status, &row.status, &mut distinct);
        }
        let run = Run {
            finished_at: row.finished_at,
            outcome,
            status: match outcome {
                Some(JobStatus::Failure) => row.status.into_boxed_str(),
                _ => Box::default(),
            },
            size: row.size,
        };
        match self.rows.get_mut(&row.name) {
            Some(runs) => runs.push(run),
            None => {
                self.rows.insert(row.name, vec![run]);
            }
        }
    }

    /// Tell once, in the log, what the query returned that no job uses.
    fn report(&self, source: &JobLogSource) {
        let group = &source.group;
        if !self.unknown_jobs.is_empty() {
            let names: Vec<String> = self
                .unknown_jobs
                .keys()
                .map(|n| format!("\"{}\"", one_line(n)))
                .collect();
            let more = self.unknown_job_names.saturating_sub(names.len() as u64);
            let more = if more > 0 {
                format!(" and {more} more")
            } else {
                String::new()
            };
            tracing::info!(
                location = %group,
                "job log: rows of jobs not listed in `jobs` are ignored: {}{more}",
                names.join(", ")
            );
        }
        for (value, count) in &self.unknown_status {
            tracing::warn!(
                location = %group,
                "job log: {count} rows have the status \"{}\", which status_map does not list; they count as neither success nor failure — add the value to status_map.success, failure or running",
                one_line(value)
            );
        }
        if let Some(first) = &self.first_bad {
            tracing::warn!(
                location = %group,
                "job log: {} rows were skipped; the first: {first}",
                self.bad_rows
            );
        }
    }
}

fn count_bounded(map: &mut BTreeMap<String, u64>, key: &str, distinct: &mut u64) {
    if let Some(n) = map.get_mut(key) {
        *n += 1;
    } else {
        *distinct += 1;
        if map.len() < LISTED {
            map.insert(key.to_string(), 1);
        }
    }
}

/// A row as the database gave it, fields already cut to their bounds.
struct RawRow {
    name: Option<String>,
    finished_at: Option<String>,
    status: Option<String>,
    size: Option<i64>,
}

impl RawRow {
    fn parse(self, tz: chrono_tz::Tz) -> Result<Row, String> {
        let name = self
            .name
            .filter(|n| !n.trim().is_empty())
            .ok_or("a row without a name")?;
        let stamp = self
            .finished_at
            .ok_or_else(|| format!("a row of job \"{}\" without finished_at", one_line(&name)))?;
        let finished_at = parse_finished_at(&stamp, tz).ok_or_else(|| {
            format!(
                "finished_at \"{}\" of job \"{}\" is not a time (write RFC 3339, a timestamp column or unix seconds)",
                one_line(&stamp),
                one_line(&name)
            )
        })?;
        let status = self
            .status
            .ok_or_else(|| format!("a row of job \"{}\" without a status", one_line(&name)))?;
        let size = match self.size {
            None => None,
            // Kept below what the sums of sizes can hold, as listed sizes are.
            Some(s) => Some(
                u64::try_from(s)
                    .map_err(|_| {
                        format!("size_bytes {s} of job \"{}\" is negative", one_line(&name))
                    })?
                    .min(crate::monitor::MAX_SIZE),
            ),
        };
        Ok(Row {
            name: name.trim().to_string(),
            finished_at,
            status,
            size,
        })
    }
}

/// `finished_at` as the log may write it: unix seconds (whole or with a fraction),
/// RFC 3339 (`T` or a blank between date and time, `Z` or an offset, as PostgreSQL prints
/// a `timestamptz`), or a date and time without zone, read in `tz`.
pub fn parse_finished_at(text: &str, tz: chrono_tz::Tz) -> Option<DateTime<Utc>> {
    let t = text.trim();
    if t.is_empty() {
        return None;
    }
    if t.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        let (whole, frac) = t.split_once('.').unwrap_or((t, ""));
        let secs: i64 = whole.parse().ok()?;
        let nanos = if frac.is_empty() {
            0
        } else {
            let digits: String = frac.chars().chain("000000000".chars()).take(9).collect();
            digits.parse().ok()?
        };
        return DateTime::from_timestamp(secs, nanos);
    }
    let normal = match t.as_bytes().get(10) {
        Some(b' ') => format!("{}T{}", &t[..10], &t[11..]),
        _ => t.to_string(),
    };
    if let Ok(d) = DateTime::parse_from_rfc3339(&normal) {
        return Some(d.with_timezone(&Utc));
    }
    // PostgreSQL prints offsets as `+00` or `+05:30`.
    if let Ok(d) = DateTime::parse_from_str(&normal, "%Y-%m-%dT%H:%M:%S%.f%#z") {
        return Some(d.with_timezone(&Utc));
    }
    let local = NaiveDateTime::parse_from_str(&normal, "%Y-%m-%dT%H:%M:%S%.f").ok()?;
    tz.from_local_datetime(&local)
        .earliest()
        .map(|d| d.with_timezone(&Utc))
}

/// Which required columns `names` lacks and which it has besides them.
pub fn check_columns(names: &[String]) -> Result<(), String> {
    let missing: Vec<&str> = COLUMNS
        .iter()
        .copied()
        .filter(|c| !names.iter().any(|n| n == c))
        .collect();
    let mut extra: Vec<String> = Vec::new();
    let mut seen = HashSet::new();
    for n in names {
        if !COLUMNS.contains(&n.as_str()) {
            extra.push(format!("`{}`", one_line(&crate::config::values::shown(n))));
        } else if !seen.insert(n.as_str()) {
            extra.push(format!("a second `{n}`"));
        }
    }
    let mut parts = Vec::new();
    if !missing.is_empty() {
        let list: Vec<String> = missing.iter().map(|c| format!("`{c}`")).collect();
        let s = if list.len() == 1 { "" } else { "s" };
        parts.push(format!("lacks the column{s} {}", list.join(", ")));
    }
    if !extra.is_empty() {
        let s = if extra.len() == 1 { "" } else { "s" };
        extra.truncate(LISTED);
        parts.push(format!("returns the extra column{s} {}", extra.join(", ")));
    }
    if parts.is_empty() {
        return Ok(());
    }
    Err(format!(
        "{}; it must return exactly name, finished_at, status, size_bytes (rename with AS)",
        parts.join(" and ")
    ))
}

/// The query run for the rows: the configured one wrapped so that the database cuts
/// every text field to its bound and hands back one form per column.
fn wrapped(query: &str, sqlite: bool) -> String {
    if sqlite {
        format!(
            "SELECT substr(CAST(q.name AS TEXT), 1, {MAX_NAME_CHARS}), substr(CAST(q.finished_at AS TEXT), 1, {MAX_STAMP_CHARS}), substr(CAST(q.status AS TEXT), 1, {MAX_STATUS_CHARS}), q.size_bytes FROM ({query}\n) AS q"
        )
    } else {
        format!(
            "SELECT left(q.name::text, {MAX_NAME_CHARS}), left(q.finished_at::text, {MAX_STAMP_CHARS}), left(q.status::text, {MAX_STATUS_CHARS}), q.size_bytes::int8 FROM ({query}\n) AS q"
        )
    }
}

/// Read the rows of the configured jobs.
pub fn read(source: &JobLogSource, tz: chrono_tz::Tz) -> Result<JobRows, LogError> {
    let mut rows = JobRows::default();
    let mut add = |raw: RawRow| rows.add(source, tz, raw);
    if let Some(path) = source.database_url.strip_prefix("sqlite://") {
        sqlite::read(source, path, true, &mut add)?;
    } else {
        postgres::read(source, true, &mut add)?;
    }
    Ok(rows)
}

/// Check the query without running it: it compiles, returns exactly the required
/// columns, and (SQLite) only reads.
pub fn check(source: &JobLogSource) -> Result<(), LogError> {
    let mut ignore = |_: RawRow| {};
    if let Some(path) = source.database_url.strip_prefix("sqlite://") {
        sqlite::read(source, path, false, &mut ignore)
    } else {
        postgres::read(source, false, &mut ignore)
    }
}

/// `--check-config`: every job log's query, checked against its database (once per
/// log). Each error names the location.
pub fn check_config(config: &Config) -> Vec<String> {
    let mut done = HashSet::new();
    let mut errors = Vec::new();
    for loc in &config.backups.locations {
        let Some(job) = &loc.job_log else { continue };
        if !done.insert(job.source.group.clone()) {
            continue;
        }
        if let Err(e) = check(&job.source) {
            errors.push(format!("location {}: {e}", job.source.group));
        }
    }
    errors
}

/// Text of an error that may quote the connection string: the password never appears.
fn redacted(text: &str, source: &JobLogSource, secret: Option<&str>) -> String {
    let mut text = one_line(text).into_owned();
    // The password as the URL writes it (percent-encoded) and as the server gets it.
    let written = url::Url::parse(&source.database_url)
        .ok()
        .and_then(|u| u.password().map(str::to_string));
    let decoded = written.as_deref().map(|p| {
        percent_encoding::percent_decode_str(p)
            .decode_utf8_lossy()
            .into_owned()
    });
    for s in [
        Some(source.database_url.as_str()),
        secret,
        written.as_deref(),
        decoded.as_deref(),
    ]
    .into_iter()
    .flatten()
    .filter(|s| s.len() >= 3)
    {
        text = text.replace(s, "***");
    }
    crate::config::resolve::bounded(&text)
}

mod sqlite {
    use super::*;
    use rusqlite::types::ValueRef;
    use rusqlite::{Connection, OpenFlags};

    pub(super) fn read(
        source: &JobLogSource,
        path: &str,
        run: bool,
        add: &mut dyn FnMut(RawRow),
    ) -> Result<(), LogError> {
        let url = source.shown_url.clone();
        let connect = |e: rusqlite::Error| LogError::Connect {
            url: url.clone(),
            reason: redacted(&e.to_string(), source, None),
        };
        let query_error = |e: rusqlite::Error| LogError::Query {
            url: url.clone(),
            reason: redacted(&e.to_string(), source, None),
        };
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(connect)?;
        let timeout = source.query_timeout.0;
        conn.busy_timeout(timeout.min(CONNECT_TIMEOUT))
            .map_err(connect)?;
        conn.pragma_update(None, "query_only", true)
            .map_err(connect)?;
        // The query's wall-clock bound: a watchdog interrupts the statement when the
        // reading below has not ended (dropped `_done`) in time.
        let (_done, ended) = std::sync::mpsc::channel::<()>();
        let interrupt = conn.get_interrupt_handle();
        std::thread::spawn(move || {
            if let Err(std::sync::mpsc::RecvTimeoutError::Timeout) = ended.recv_timeout(timeout) {
                interrupt.interrupt();
            }
        });
        // Reading the schema is the first access: a file that is not a database fails here.
        let stmt = conn.prepare(&source.query).map_err(query_error)?;
        let names: Vec<String> = stmt.column_names().map(ToString::to_string).collect();
        super::check_columns(&names).map_err(|reason| LogError::Columns {
            url: url.clone(),
            reason,
        })?;
        if !stmt.readonly() {
            return Err(LogError::Writes { url });
        }
        drop(stmt);
        if !run {
            return Ok(());
        }
        let mut stmt = conn
            .prepare(&super::wrapped(&source.query, true))
            .map_err(query_error)?;
        let mut rows = stmt.query([]).map_err(query_error)?;
        let mut n = 0u64;
        while let Some(row) = rows
            .next()
            .map_err(|e| timed_out(e, &url, timeout, source))?
        {
            n += 1;
            if n > MAX_ROWS {
                return Err(LogError::TooManyRows { url });
            }
            add(RawRow {
                name: text(row.get_ref(0)),
                finished_at: text(row.get_ref(1)),
                status: text(row.get_ref(2)),
                size: integer(row.get_ref(3)),
            });
        }
        Ok(())
    }

    fn timed_out(
        e: rusqlite::Error,
        url: &str,
        timeout: Duration,
        source: &JobLogSource,
    ) -> LogError {
        let reason = if e.sqlite_error_code() == Some(rusqlite::ErrorCode::OperationInterrupted) {
            format!(
                "it ran longer than query_timeout {}",
                monitor::duration_text(timeout)
            )
        } else {
            redacted(&e.to_string(), source, None)
        };
        LogError::Query {
            url: url.to_string(),
            reason,
        }
    }

    fn text(v: rusqlite::Result<ValueRef<'_>>) -> Option<String> {
        match v.ok()? {
            ValueRef::Text(t) => Some(String::from_utf8_lossy(t).into_owned()),
            ValueRef::Integer(i) => Some(i.to_string()),
            ValueRef::Real(r) => Some(r.to_string()),
            ValueRef::Null | ValueRef::Blob(_) => None,
        }
    }

    /// A size: an integer, a whole real, or digits as text; anything else counts as
    /// unknown (NULL), and a negative number is passed on to be refused.
    fn integer(v: rusqlite::Result<ValueRef<'_>>) -> Option<i64> {
        match v.ok()? {
            ValueRef::Integer(i) => Some(i),
            ValueRef::Real(r) if r.fract() == 0.0 && r.abs() < 9.0e15 => Some(r as i64),
            ValueRef::Text(t) => std::str::from_utf8(t).ok()?.trim().parse().ok(),
            _ => None,
        }
    }
}

mod postgres {
    use super::*;
    use ::postgres::fallible_iterator::FallibleIterator;
    use ::postgres::{Client, Config as PgConfig};
    use std::str::FromStr;

    pub(super) fn read(
        source: &JobLogSource,
        run: bool,
        add: &mut dyn FnMut(RawRow),
    ) -> Result<(), LogError> {
        let url = source.shown_url.clone();
        let mut config =
            PgConfig::from_str(&source.database_url).map_err(|e| LogError::Connect {
                url: url.clone(),
                reason: format!(
                    "the URL does not parse ({}); write postgresql://user@host:port/database",
                    redacted(&e.to_string(), source, None)
                ),
            })?;
        let password = config
            .get_password()
            .map(|p| String::from_utf8_lossy(p).into_owned());
        let secret = password.as_deref();
        let why = |e: &::postgres::Error| redacted(&error_text(e), source, secret);
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECT_TIMEOUT);
        }
        config.application_name("backup-monitor");
        let tls = tls().map_err(|reason| LogError::Connect {
            url: url.clone(),
            reason,
        })?;
        let mut client: Client = config.connect(tls).map_err(|e| LogError::Connect {
            url: url.clone(),
            reason: why(&e),
        })?;
        let query_error = |e: ::postgres::Error| LogError::Query {
            url: url.clone(),
            reason: why(&e),
        };
        let mut tx = client
            .build_transaction()
            .read_only(true)
            .start()
            .map_err(query_error)?;
        let ms = source
            .query_timeout
            .0
            .as_millis()
            .clamp(1, i32::MAX as u128);
        tx.batch_execute(&format!(
            "SET LOCAL statement_timeout = {ms}; SET LOCAL idle_in_transaction_session_timeout = {ms}; SET LOCAL TimeZone = 'UTC'; SET LOCAL DateStyle = 'ISO, YMD'"
        ))
        .map_err(query_error)?;
        let stmt = tx.prepare(&source.query).map_err(query_error)?;
        let names: Vec<String> = stmt
            .columns()
            .iter()
            .map(|c| c.name().to_string())
            .collect();
        check_columns(&names)
            .and_then(|()| check_types(stmt.columns()))
            .map_err(|reason| LogError::Columns {
                url: url.clone(),
                reason,
            })?;
        if !run {
            return Ok(());
        }
        let wrapped = wrapped(&source.query, false);
        let mut rows = tx
            .query_raw(wrapped.as_str(), std::iter::empty::<i32>())
            .map_err(query_error)?;
        let mut n = 0u64;
        while let Some(row) = rows.next().map_err(query_error)? {
            n += 1;
            if n > MAX_ROWS {
                return Err(LogError::TooManyRows { url });
            }
            add(RawRow {
                name: row.try_get(0).ok().flatten(),
                finished_at: row.try_get(1).ok().flatten(),
                status: row.try_get(2).ok().flatten(),
                size: row.try_get(3).ok().flatten(),
            });
        }
        drop(rows);
        // Nothing was written; end the transaction without keeping anything.
        tx.rollback().map_err(query_error)?;
        Ok(())
    }

    /// The column types the rows can be read from: `finished_at` a time with or without
    /// zone, text, or a number (unix seconds); `size_bytes` a number or text of digits.
    fn check_types(columns: &[::postgres::Column]) -> Result<(), String> {
        use ::postgres::types::Type;
        for c in columns {
            let t = c.type_();
            let fits = match c.name() {
                "finished_at" => [
                    Type::TIMESTAMPTZ,
                    Type::TIMESTAMP,
                    Type::TEXT,
                    Type::VARCHAR,
                    Type::BPCHAR,
                    Type::INT2,
                    Type::INT4,
                    Type::INT8,
                    Type::NUMERIC,
                    Type::FLOAT4,
                    Type::FLOAT8,
                ]
                .contains(t),
                "size_bytes" => [
                    Type::INT2,
                    Type::INT4,
                    Type::INT8,
                    Type::NUMERIC,
                    Type::TEXT,
                    Type::VARCHAR,
                ]
                .contains(t),
                _ => true,
            };
            if !fits {
                let want = match c.name() {
                    "finished_at" => "a timestamptz, a timestamp, RFC 3339 text or unix seconds",
                    _ => "an integer (bigint) or NULL",
                };
                return Err(format!(
                    "returns `{}` as {}; it must be {want} (cast it in the query)",
                    c.name(),
                    t.name()
                ));
            }
        }
        Ok(())
    }

    /// TLS over rustls with ring and the system's trust store (used when the server
    /// offers it, required with `sslmode=require`).
    fn tls() -> Result<tokio_postgres_rustls::MakeRustlsConnect, String> {
        use rustls_platform_verifier::BuilderVerifierExt;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .and_then(|b| b.with_platform_verifier())
            .map_err(|e| format!("cannot set up TLS: {e}"))?
            .with_no_client_auth();
        Ok(tokio_postgres_rustls::MakeRustlsConnect::new(config))
    }

    /// The server's own words where it gave some (the client's `db error` says nothing).
    fn error_text(e: &::postgres::Error) -> String {
        if let Some(db) = e.as_db_error() {
            let mut text = db.message().to_string();
            if db.code() == &::postgres::error::SqlState::QUERY_CANCELED {
                text.push_str(" (longer than query_timeout)");
            }
            if let Some(hint) = db.hint() {
                text.push_str(&format!("; {hint}"));
            }
            return text;
        }
        let mut text = e.to_string();
        let mut source = std::error::Error::source(e);
        while let Some(s) = source {
            text.push_str(&format!(": {s}"));
            source = s.source();
        }
        text
    }
}

/// The job logs read this run, by group, so that the jobs of one log share one query.
#[derive(Default)]
pub struct Logs {
    read: HashMap<String, Arc<Result<JobRows, LogError>>>,
}

impl Logs {
    /// `--monitor` for one job's location.
    pub fn monitor(
        &mut self,
        ctx: &RunContext,
        sel: &SelectedLocation,
        job: &JobLog,
    ) -> Result<MonitorOutcome> {
        let loc = sel.config;
        let source = &job.source;
        let read = Arc::clone(self.read.entry(source.group.clone()).or_insert_with(|| {
            let started = Instant::now();
            let read = read(source, ctx.tz());
            match &read {
                Ok(rows) => {
                    tracing::info!(location = %source.group, "job log: {} rows read in {} ms", rows.total, started.elapsed().as_millis());
                    rows.report(source);
                }
                Err(e) => tracing::warn!(location = %source.group, "{e}"),
            }
            Arc::new(read)
        }));
        let mut outcome = MonitorOutcome {
            location: loc.name.clone(),
            ..Default::default()
        };
        let mut history = Vec::new();
        let mut gaps_from = ctx.window_start();
        // The failures already open: one stays open until a later run of the job
        // succeeds, also when the log no longer lists it (a pruned log table, a query that
        // looks back 60 days) or lists more failures than are opened at once.
        let open_failures: HashSet<String> = ctx
            .store
            .open_problems(Some(&[Operation::Monitor]), Some(&[sel.id]))?
            .into_iter()
            .filter(|p| p.problem.kind == Kind::BackupJobFailed)
            .filter_map(|p| p.problem.path)
            .collect();
        // Every success ever recorded stays a backup of the job, whatever the log says now.
        let mut last_success = None;
        match read.as_ref() {
            Err(e) => {
                if !open_failures.is_empty() {
                    last_success = ctx.store.backups_of(sel.id)?.iter().map(|b| b.ts).max();
                }
                ctx.store
                    .record_location_scan(sel.id, false, None, ctx.now)?;
                outcome.problems.push(Problem::new(
                    Kind::LocationUnavailable,
                    Severity::Critical,
                    &loc.name,
                    format!("{e}; until it is fixed, job {} is not checked", job.job),
                ));
            }
            Ok(rows) => {
                ctx.store
                    .record_location_scan(sel.id, true, None, ctx.now)?;
                let none = Vec::new();
                let rows = rows.rows.get(&job.job).unwrap_or(&none);
                outcome.new_backups = record(ctx, sel, rows)?;
                let backups = ctx.store.backups_of(sel.id)?;
                last_success = backups.iter().map(|b| b.ts).max();
                gaps_from = crate::monitor::gaps_recorded_from(ctx, &backups);
                let (problems, resolved) = judge(ctx, loc, job, rows, &backups, &open_failures);
                outcome.problems = problems;
                history = resolved;
            }
        }
        // An unreadable log settles nothing but its unavailability.
        let readable = read.is_ok();
        let settled = |p: &Problem| match (p.kind, p.path.as_deref()) {
            _ if !readable => p.kind == Kind::LocationUnavailable,
            (Kind::BackupJobFailed, Some(run)) => match DateTime::parse_from_rfc3339(run) {
                Ok(failed_at) => last_success.is_some_and(|s| s > failed_at),
                Err(_) => true,
            },
            _ => true,
        };
        crate::monitor::record_judgement(
            ctx,
            sel.id,
            &outcome.problems,
            &history,
            gaps_from,
            &settled,
        )?;
        Ok(outcome)
    }
}

/// A job run's identity in the store: its finished_at in UTC, RFC 3339.
pub fn run_id(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// Record the job's successful runs as its backups. A run once recorded stays recorded
/// when the log forgets it (a query that looks back 30 days, a pruned log table): the
/// log's own housekeeping is not a deleted backup.
fn record(ctx: &RunContext, sel: &SelectedLocation, runs: &[Run]) -> Result<usize> {
    let mut found: HashMap<String, FoundFile> = HashMap::new();
    for r in runs {
        if r.outcome != Some(JobStatus::Success) {
            continue;
        }
        let path = run_id(r.finished_at);
        found.insert(
            path.clone(),
            FoundFile {
                path,
                size: r.size.unwrap_or(0),
                mtime_ns: r.finished_at.timestamp_nanos_opt().unwrap_or(0),
                ts: r.finished_at,
                ts_source: TimestampSource::Mtime,
                settled: true,
            },
        );
    }
    for b in ctx.store.present_backups(sel.id)? {
        found.entry(b.path.clone()).or_insert(FoundFile {
            path: b.path,
            size: b.seen_size,
            mtime_ns: b.seen_mtime_ns,
            ts: b.ts,
            ts_source: TimestampSource::Mtime,
            settled: true,
        });
    }
    let found: Vec<FoundFile> = found.into_values().collect();
    let sync = ctx
        .store
        .sync_scan(sel.id, &found, ctx.now)
        .with_context(|| format!("recording the job log of location {}", sel.config.name))?;
    Ok(sync.new_backups)
}

/// The job's problems (open now), and failures a later success already ended (history:
/// told once as resolved when no run saw them open).
fn judge(
    ctx: &RunContext,
    loc: &Location,
    job: &JobLog,
    runs: &[Run],
    backups: &[BackupRow],
    open_failures: &HashSet<String>,
) -> (Vec<Problem>, Vec<Problem>) {
    let name = loc.name.as_str();
    let mut problems = Vec::new();
    let present: Vec<&BackupRow> = backups.iter().filter(|b| b.is_present()).collect();
    if present.is_empty() {
        problems.push(Problem::new(
            Kind::NoBackups,
            Severity::Critical,
            name,
            format!(
                "the job log at {} has no successful run of job {}; is the job scheduled, and does the query return its rows?",
                job.source.shown_url, job.job
            ),
        ));
    }
    let (overdue, gaps) = monitor::missed(ctx, loc, backups);
    problems.extend(overdue);
    // A run in the future (a wrong clock, a bad row) neither closes a failure nor opens
    // one that no later success could close: said once as `future_timestamp`.
    let latest = ctx.now + crate::scan::CLOCK_TOLERANCE;
    let last_success = backups.iter().map(|b| b.ts).filter(|t| *t <= latest).max();
    let mut history = gaps;
    let mut successes: Vec<DateTime<Utc>> = runs
        .iter()
        .filter(|r| r.outcome == Some(JobStatus::Success) && r.finished_at <= latest)
        .map(|r| r.finished_at)
        .chain(last_success)
        .collect();
    successes.sort_unstable();
    // Failures after the last success are open; earlier ones in the window are history
    // (the newest MAX_FAILED of each).
    let mut open: Vec<&Run> = Vec::new();
    let mut ended: Vec<(&Run, DateTime<Utc>)> = Vec::new();
    let future_failures: Vec<&Run> = runs
        .iter()
        .filter(|r| r.outcome == Some(JobStatus::Failure) && r.finished_at > latest)
        .collect();
    if let Some(r) = future_failures.iter().max_by_key(|r| r.finished_at) {
        problems.push(Problem::new(
            Kind::FutureTimestamp,
            Severity::Warning,
            name,
            format!(
                "the job log at {} has {} failed run(s) of job {} in the future (the latest at {}); they are not judged: check the clock of the machine that writes the log",
                job.source.shown_url,
                future_failures.len(),
                job.job,
                r.finished_at.to_rfc3339()
            ),
        ));
    }
    for r in runs {
        match r.outcome {
            Some(JobStatus::Failure) if r.finished_at > latest => {}
            Some(JobStatus::Failure) => {
                match successes.get(successes.partition_point(|t| *t <= r.finished_at)) {
                    None => open.push(r),
                    Some(t) if r.finished_at >= ctx.window_start() => ended.push((r, *t)),
                    Some(_) => {}
                }
            }
            Some(JobStatus::Success) => {
                problems.extend(size_problems(loc, job, r, ctx.now));
            }
            Some(JobStatus::Running) | None => {}
        }
    }
    ended.sort_by_key(|(r, _)| std::cmp::Reverse(r.finished_at));
    for (r, success) in ended.into_iter().take(MAX_FAILED) {
        history.push(failed(
            name,
            r,
            format!(
                "backup job {} failed at {} (status \"{}\"); its run at {} succeeded",
                job.job,
                ctx.local_short(r.finished_at),
                one_line(&r.status),
                ctx.local_short(success)
            ),
        ));
    }
    open.sort_by_key(|r| std::cmp::Reverse(r.finished_at));
    open.dedup_by_key(|r| r.finished_at);
    // The newest MAX_FAILED, and those opened by earlier runs (found again); the rest are
    // counted on the newest.
    let mut listed: Vec<&Run> = Vec::new();
    let mut unlisted = 0;
    for (i, r) in open.iter().enumerate() {
        if i < MAX_FAILED || open_failures.contains(&run_id(r.finished_at)) {
            listed.push(r);
        } else {
            unlisted += 1;
        }
    }
    for (i, r) in listed.iter().enumerate() {
        let more = match unlisted {
            n if n > 0 && i == 0 => {
                format!(" ({n} earlier failed runs since the last success are not listed)")
            }
            _ => String::new(),
        };
        problems.push(failed(name, r, format!(
            "backup job {} failed at {} (status \"{}\") and has not succeeded since{more}; read the backup system's log for that run, fix it and re-run the job",
            job.job,
            ctx.local_short(r.finished_at),
            one_line(&r.status)
        )));
    }
    let sized: Vec<BackupRow> = backups.iter().filter(|b| b.size > 0).cloned().collect();
    problems.extend(monitor::size_anomalies(ctx, loc, &sized));
    (problems, history)
}

/// At most this many failed runs of one job are opened from one reading of its log (the
/// newest): a log holding a month of a job failing every minute is one thing to fix, not
/// 43,200 alerts. A failure once opened stays open until a later run succeeds.
const MAX_FAILED: usize = 100;

/// The `backup_job_failed` of failed run `run`.
fn failed(location: &str, run: &Run, message: String) -> Problem {
    Problem::new(Kind::BackupJobFailed, Severity::Critical, location, message)
        .with_path(run_id(run.finished_at))
}

/// `empty_backup`, `undersized_backup` (when the log gives a size) and
/// `future_timestamp` of one successful run.
fn size_problems(loc: &Location, job: &JobLog, r: &Run, now: DateTime<Utc>) -> Vec<Problem> {
    let path = run_id(r.finished_at);
    let mut out = Vec::new();
    let problem = |kind, severity, message: String| {
        Problem::new(kind, severity, &loc.name, message).with_path(path.clone())
    };
    match r.size {
        Some(0) => out.push(problem(
            Kind::EmptyBackup,
            Severity::Critical,
            format!(
                "backup job {} reported success at {path} but 0 bytes; look at the job's own log: it may have backed up nothing",
                job.job
            ),
        )),
        Some(s) if s < loc.min_size.0 => out.push(problem(
            Kind::UndersizedBackup,
            Severity::Warning,
            format!(
                "backup job {} at {path} reported {s} bytes, smaller than min_size {} bytes",
                job.job, loc.min_size.0
            ),
        )),
        _ => {}
    }
    if r.finished_at > now + CLOCK_TOLERANCE {
        out.push(problem(
            Kind::FutureTimestamp,
            Severity::Warning,
            format!(
                "backup job {} reports a run finishing in the future ({path}); check the clock of the machine that writes the job log",
                job.job
            ),
        ));
    }
    out
}

/// For `--verify` and `--test-restore`: a job log has nothing to hash or restore.
pub fn note_skipped(ctx: &RunContext, operation: &str) {
    for sel in &ctx.locations {
        if sel.config.job_log.is_some() {
            tracing::info!(
                location = %sel.config.name,
                "a job log: only --monitor applies, {operation} skips it"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn finished_at_forms() {
        let tz = chrono_tz::Europe::Berlin;
        let t = utc("2026-11-20T02:00:00Z");
        for text in [
            "2026-11-20T02:00:00Z",
            "2026-11-20 02:00:00+00",
            "2026-11-20 03:00:00+01",
            "2026-11-20 07:30:00+05:30",
            "2026-11-20T03:00:00+01:00",
            "2026-11-20 03:00:00",
            "1795140000",
            " 1795140000.0 ",
        ] {
            assert_eq!(parse_finished_at(text, tz), Some(t), "{text}");
        }
        assert_eq!(
            parse_finished_at("2026-11-20 02:00:00.250+00", tz),
            Some(t + chrono::Duration::milliseconds(250))
        );
        for bad in [
            "",
            "yesterday",
            "2026-13-01 00:00:00",
            "99999999999999999999",
            "1.2.3",
            "-5",
        ] {
            assert_eq!(parse_finished_at(bad, tz), None, "{bad}");
        }
    }

    #[test]
    fn columns_are_named() {
        let names = |v: &[&str]| v.iter().map(ToString::to_string).collect::<Vec<_>>();
        assert!(check_columns(&names(&["status", "name", "size_bytes", "finished_at"])).is_ok());
        let e = check_columns(&names(&["name", "finished_at", "status"])).unwrap_err();
        assert!(e.contains("lacks the column `size_bytes`"), "{e}");
        let e = check_columns(&names(&[
            "name",
            "finished_at",
            "status",
            "size_bytes",
            "id",
        ]))
        .unwrap_err();
        assert!(e.contains("extra column `id`"), "{e}");
        let e = check_columns(&names(&[
            "name",
            "name",
            "finished_at",
            "status",
            "size_bytes",
        ]))
        .unwrap_err();
        assert!(e.contains("a second `name`"), "{e}");
    }

    #[test]
    fn unknown_values_are_counted_within_a_bound() {
        let mut map = BTreeMap::new();
        let mut distinct = 0;
        for i in 0..1000 {
            count_bounded(&mut map, &format!("job{i}"), &mut distinct);
        }
        count_bounded(&mut map, "job0", &mut distinct);
        assert_eq!(map.len(), LISTED);
        assert_eq!(distinct, 1000);
        assert_eq!(map["job0"], 2);
    }
}
