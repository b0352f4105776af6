//! `--test-restore`: restore the newest backups of each location
//! into a sandbox and prove that what comes out is usable.
//!
//! One file per format family — `tar.rs`, `zip.rs`, `compressed.rs` (single compressed
//! files and the decoders), `sqlite.rs`, `sql.rs` (dumps), `postgres.rs` — chosen by
//! `detect.rs` from the content's magic bytes. `sandbox.rs` is the only code that creates
//! files. This module picks the backups, runs one test each, validates the result
//! (`expect`, `min_files`), records it and syncs the restore problems.
//!
//! A backup already tested with the same size, mtime and restore settings is not tested
//! again: its previous verdict is carried into this run's results (the detail
//! says since when) and its problems stay open.
//!
//! Not for: checksums (verify) or deciding whether a backup is missing (monitor).

mod anomaly;
mod compressed;
pub mod decrypt;
pub mod detect;
mod mysql;
mod postgres;
pub mod sandbox;
mod sql;
mod sqlite;
mod tar;
mod zip;

use crate::config::{DecryptConfig, Location, RestoreConfig};
use crate::problem::{Kind, Operation, Problem, Severity};
use crate::run::{RunContext, SelectedLocation};
use crate::scan::PathMatcher;
pub use crate::store::Verdict;
use crate::store::{BackupRow, NewRestoreTest, Restored};
use anyhow::{Context, Result};
use compressed::Stream;
use detect::{Compression, Content};
use sandbox::Sandbox;
use std::collections::HashSet;
use std::fs::File;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

/// Why a restore test did not pass. Each variant but `Skipped` is one problem kind.
#[derive(Debug, thiserror::Error)]
pub enum RestoreError {
    /// The container cannot be read to its end (decompression error, bad CRC, truncation).
    #[error("{0}")]
    Corrupt(String),
    /// An entry would escape the sandbox.
    #[error("{0}")]
    Unsafe(String),
    #[error("restoring stopped at the limit of {limit} bytes (restore.max_bytes)")]
    Limit { limit: u64 },
    #[error("restoring stopped after {seconds} s, the time limit (restore.timeout)")]
    TimeLimit { seconds: u64 },
    /// Another bound of the test (memory, the size of one value); the reason says which.
    #[error("{0}")]
    OverLimit(String),
    #[error(
        "restoring stopped at the limit of {limit} files, directories and links (restore.max_entries)"
    )]
    Entries { limit: u64 },
    /// A bound other than bytes and time, with its reason: the scratch filesystem filled,
    /// a decoder needing more memory than the limit allows.
    #[error("{0}")]
    Exceeded(String),
    /// Content was read but fails validation.
    #[error("{0}")]
    Failed(String),
    /// A SQL dump without its tool's completion footer.
    #[error("{0}")]
    Incomplete(String),
    /// Cannot be tested here; the reason says why.
    #[error("{0}")]
    Skipped(String),
    /// Cannot be tested until the location's restore settings are completed (a key that
    /// needs a passphrase nobody gave): skipped, and the location's `restore_untested`
    /// says what to set. The backup's open problems stay as they were.
    #[error("{0}")]
    Setup(String),
}

impl RestoreError {
    /// A read error of the backup's content: corruption (the stream cannot be read).
    /// Parsers put entry names into their errors; those stay on one line.
    pub fn read(what: &str, e: io::Error) -> RestoreError {
        // A transfer that broke off (a bucket's connection) says nothing of the backup:
        // skipped, tried again on the next run.
        if e.kind() == io::ErrorKind::ConnectionAborted {
            return RestoreError::Skipped(format!(
                "cannot read {what}: {}; the next run tries again",
                crate::problem::one_line(&e.to_string())
            ));
        }
        let e = e.to_string();
        RestoreError::Corrupt(format!(
            "cannot read {what}: {}",
            crate::problem::one_line(&e)
        ))
    }

    fn kind(&self) -> Option<Kind> {
        match self {
            RestoreError::Corrupt(_) => Some(Kind::ArchiveCorrupt),
            RestoreError::Unsafe(_) => Some(Kind::UnsafeArchiveEntry),
            RestoreError::Limit { .. }
            | RestoreError::TimeLimit { .. }
            | RestoreError::OverLimit(_)
            | RestoreError::Entries { .. }
            | RestoreError::Exceeded(_) => Some(Kind::RestoreLimitExceeded),
            RestoreError::Failed(_) => Some(Kind::RestoreFailed),
            RestoreError::Incomplete(_) => Some(Kind::DumpIncomplete),
            RestoreError::Skipped(_) | RestoreError::Setup(_) => None,
        }
    }
}

/// Facts a format handler adds to a passing result's detail.
#[derive(Debug, Default)]
pub struct Notes(Vec<String>);

impl Notes {
    pub fn push(&mut self, note: String) {
        self.0.push(note);
    }

    /// Add a note if there is one.
    pub fn extend(&mut self, note: Option<String>) {
        self.0.extend(note);
    }
}

/// What was restored: how many distinct files (or tables) and which `expect` globs
/// matched. Names are not kept, so memory does not grow with the archive: the sandbox
/// tells whether a file's name is new (a repeated name replaces the earlier file).
pub struct Tally {
    files: AtomicU64,
    /// Rows of the restored tables, when the content was a database that was opened.
    rows: Mutex<Option<u64>>,
    expect: Vec<(String, PathMatcher)>,
    matched: Mutex<Vec<bool>>,
}

impl Tally {
    pub fn new(expect: &[String]) -> Result<Tally, globset::Error> {
        let expect = expect
            .iter()
            .map(|g| Ok((g.clone(), PathMatcher::new(std::slice::from_ref(g))?)))
            .collect::<Result<Vec<_>, globset::Error>>()?;
        Ok(Tally {
            files: AtomicU64::new(0),
            rows: Mutex::new(None),
            matched: Mutex::new(vec![false; expect.len()]),
            expect,
        })
    }

    /// One restored entry, `/`-separated and relative to the archive root (or a table).
    /// `new_file`: a file (or table) under a name not restored before; counted.
    pub fn note(&self, rel: &str, new_file: bool) {
        if new_file {
            self.files.fetch_add(1, Ordering::Relaxed);
        }
        if self.expect.is_empty() {
            return;
        }
        let mut matched = self.matched.lock().unwrap_or_else(|e| e.into_inner());
        for (i, (_, m)) in self.expect.iter().enumerate() {
            if !matched[i] && m.is_match(rel) {
                matched[i] = true;
            }
        }
    }

    pub fn files(&self) -> u64 {
        self.files.load(Ordering::Relaxed)
    }

    /// `n` rows restored into the tables counted as files.
    pub fn add_rows(&self, n: u64) {
        let mut rows = self.rows.lock().unwrap_or_else(|e| e.into_inner());
        *rows = Some(rows.unwrap_or(0).saturating_add(n));
    }

    /// Tables and rows, when the content was a database whose rows were counted.
    pub fn database(&self) -> Option<(u64, u64)> {
        let rows = *self.rows.lock().unwrap_or_else(|e| e.into_inner());
        rows.map(|r| (self.files(), r))
    }

    /// `expect` globs nothing matched.
    fn unmatched(&self) -> Vec<String> {
        let matched = self.matched.lock().unwrap_or_else(|e| e.into_inner());
        self.expect
            .iter()
            .zip(matched.iter())
            .filter(|(_, hit)| !**hit)
            .map(|((g, _), _)| g.clone())
            .collect()
    }
}

/// One backup's restore test as reported.
#[derive(Debug, Clone, serde::Serialize, PartialEq)]
pub struct TestResult {
    pub location: String,
    pub path: String,
    pub format: String,
    pub result: Verdict,
    pub files: u64,
    pub bytes: u64,
    pub detail: Option<String>,
}

/// What `--test-restore` did this run: every backup considered, with its verdict.
#[derive(Debug, Clone, Default, serde::Serialize, PartialEq)]
pub struct Summary {
    pub tested: u64,
    pub passed: u64,
    pub failed: u64,
    pub skipped: u64,
    pub results: Vec<TestResult>,
}

/// One test's outcome, as recorded and reported.
#[derive(Debug, Clone)]
struct Outcome {
    format: String,
    result: Verdict,
    files: u64,
    bytes: u64,
    /// Tables and rows, when the content was a database whose rows were counted.
    database: Option<(u64, u64)>,
    duration_ms: u64,
    detail: Option<String>,
    problem: Option<Kind>,
    /// The test could not run for a missing setting (`detail` says which).
    setup: bool,
}

pub fn run(ctx: &RunContext) -> Result<Summary> {
    let mut summary = Summary::default();
    let mut cleaned = HashSet::new();
    let mut failure = None;
    crate::source::job_log::note_skipped(ctx, "--test-restore");
    for sel in ctx.locations.iter().filter(|s| s.config.test_restore) {
        let parent = scratch_parent(ctx, sel.config);
        if cleaned.insert(parent.clone()) {
            sandbox::clean_leftovers(&parent);
        }
        // One location's failure (its store reads or writes) does not keep the others
        // from being tested; the run still fails afterwards.
        if let Err(e) = test_location(ctx, sel, &mut summary)
            .with_context(|| format!("restore tests of location {}", sel.config.name))
        {
            // The first is the run's error, said when it ends; the others are logged.
            match failure {
                None => failure = Some(e),
                Some(_) => tracing::error!("{}", crate::output::chained(&e)),
            }
        }
    }
    if let Some(e) = failure {
        return Err(e);
    }
    for r in &summary.results {
        match r.result {
            Verdict::Passed => summary.passed += 1,
            Verdict::Failed => summary.failed += 1,
            Verdict::Skipped => summary.skipped += 1,
        }
    }
    summary.tested = summary.results.len() as u64;
    Ok(summary)
}

/// Why a location's restore tests cannot run at all: something of this machine or of
/// the config, not of a backup. It is the location's `restore_untested`, never a
/// verdict on a backup, and never stops the tests of other locations.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    /// A key file that others may read (never used) or that cannot be read.
    #[error(transparent)]
    KeyFile(#[from] decrypt::KeyFileError),
    /// No sandbox can be made where restores go.
    #[error("cannot make a restore sandbox in {} ({}): {}; {}", .parent.display(), .setting.name(), sandbox::io_reason(.source), .setting.advice(.source))]
    Sandbox {
        parent: PathBuf,
        setting: Scratch,
        source: io::Error,
    },
    /// A setting a backup's test found missing (a key's passphrase), with what to set.
    #[error("{0}")]
    Incomplete(String),
    /// An `expect` glob that does not compile (the config check refuses it first).
    #[error("restore.expect holds an invalid glob ({0}); run --check-config to see which")]
    Expect(#[from] globset::Error),
}

/// Where sandboxes are made: the configured `restore.scratch_dir`, or the system temp dir.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scratch {
    Configured,
    TempDir,
}

impl Scratch {
    fn name(self) -> &'static str {
        match self {
            Scratch::Configured => "restore.scratch_dir",
            Scratch::TempDir => "the system temp dir, $TMPDIR",
        }
    }

    fn advice(self, e: &io::Error) -> &'static str {
        use io::ErrorKind::{NotFound, QuotaExceeded, StorageFull};
        if matches!(e.kind(), StorageFull | QuotaExceeded) {
            return "free space there or set restore.scratch_dir to a filesystem with room";
        }
        match (self, e.kind()) {
            (Scratch::Configured, NotFound) => {
                "create it or set restore.scratch_dir to a directory this user can write"
            }
            (Scratch::Configured, _) => {
                "let this user write there or set restore.scratch_dir to another directory"
            }
            (Scratch::TempDir, _) => "set restore.scratch_dir to a directory this user can write",
        }
    }
}

/// The location's key files, resolved against the config's directory.
fn keys(ctx: &RunContext, r: &RestoreConfig) -> decrypt::Keys {
    let path = |p: &Option<String>| p.as_deref().map(|p| ctx.config.resolve_path(p));
    decrypt::Keys {
        age_identity_file: path(&r.decrypt.age_identity_file),
        gpg_key_file: path(&r.decrypt.gpg_key_file),
        gpg_passphrase_file: path(&r.decrypt.gpg_passphrase_file),
    }
}

/// Refuse the location's tests when one of its key files can be read by others (it is
/// never used then) or cannot be read.
fn check_key_files(ctx: &RunContext, loc: &Location) -> Result<(), SetupError> {
    for (key, path) in keys(ctx, &loc.restore).files() {
        decrypt::check_private(key, path)?;
    }
    Ok(())
}

fn scratch_parent(ctx: &RunContext, loc: &Location) -> PathBuf {
    loc.restore
        .scratch_dir
        .as_deref()
        .map(|d| ctx.config.resolve_path(d))
        .unwrap_or_else(std::env::temp_dir)
}

/// A fresh sandbox for a backup of `size` bytes, with the location's bounds.
fn make_sandbox(ctx: &RunContext, loc: &Location, size: u64) -> Result<Sandbox, SetupError> {
    let parent = scratch_parent(ctx, loc);
    let tally = Tally::new(&loc.restore.expect)?;
    let setting = match loc.restore.scratch_dir {
        Some(_) => Scratch::Configured,
        None => Scratch::TempDir,
    };
    match Sandbox::create(&parent, loc.restore.max_bytes_for(size), tally) {
        Ok(sandbox) => Ok(sandbox
            .with_timeout(loc.restore.timeout.0)
            .with_max_entries(u64::from(loc.restore.max_entries))),
        Err(source) => Err(SetupError::Sandbox {
            parent,
            setting,
            source,
        }),
    }
}

/// The backups a run tests: the newest `latest`, and every other present backup with
/// an open restore problem, so that one rewritten with a good copy is judged again
/// (second: true for those; an unchanged one of them is left as it was, not recorded
/// again, so a broken old backup counts once in the health score, as before).
fn chosen<'a>(
    present: &'a [BackupRow],
    open: &[crate::store::StoredProblem],
    latest: usize,
) -> Vec<(&'a BackupRow, bool)> {
    let failing: HashSet<&str> = open
        .iter()
        .filter_map(|p| p.problem.path.as_deref())
        .collect();
    present
        .iter()
        .enumerate()
        .filter(|(i, b)| *i < latest || failing.contains(b.path.as_str()))
        .map(|(i, b)| (b, i >= latest))
        .collect()
}

/// One backup's judgement this run.
struct Judged {
    outcome: Outcome,
    /// The test whose verdict an unchanged backup keeps.
    carried_from: Option<i64>,
    /// The backup's restore problems as found now.
    problems: Vec<Problem>,
    /// Whether its open problems are settled by `problems` (false: left as they were,
    /// nothing was learnt about the backup).
    rejudged: bool,
    /// Why no restore could be set up for it.
    setup: Option<SetupError>,
}

impl Judged {
    /// Not tested: its restore could not be set up, or the backup could not be looked
    /// at. Its problems stay as they were.
    fn not_set_up(reason: String) -> Judged {
        Judged {
            outcome: skipped_outcome(reason),
            carried_from: None,
            problems: Vec::new(),
            rejudged: false,
            setup: None,
        }
    }
}

fn test_location(ctx: &RunContext, sel: &SelectedLocation, summary: &mut Summary) -> Result<()> {
    let loc = sel.config;
    let present = ctx.store.present_backups(sel.id)?;
    let open = ctx
        .store
        .open_problems(Some(&[Operation::TestRestore]), Some(&[sel.id]))?;
    let chosen = chosen(&present, &open, loc.restore.latest.0 as usize);
    let settings = settings_fingerprint(loc, &keys(ctx, &loc.restore));
    let refused = check_key_files(ctx, loc).err();
    let mut setup = None;
    let mut found = Vec::new();
    let mut considered = HashSet::new();
    let mut verdicts = Vec::new();
    let source = crate::source::of(loc);
    for (backup, only_if_changed) in chosen {
        let at = match source.local_path(&backup.path) {
            Some(path) => At::File(path),
            None => At::Object(&*source, &backup.path),
        };
        let judged = match &refused {
            Some(why) => Judged::not_set_up(why.to_string()),
            None => judge(ctx, sel, backup, &at, &settings, &open)?,
        };
        let Judged {
            outcome,
            carried_from,
            problems,
            rejudged,
            setup: failed_setup,
        } = judged;
        // An older backup with an open restore problem, unchanged since it was tested:
        // nothing new was learnt, its problem stays as it is.
        if only_if_changed && carried_from.is_some() {
            continue;
        }
        if let Some(why) = failed_setup {
            setup.get_or_insert(why);
        }
        if rejudged {
            considered.insert(backup.path.clone());
        }
        found.extend(problems);
        tracing::info!(
            location = %loc.name,
            "restore test of {}: {}{}",
            backup.path,
            outcome.result,
            outcome
                .detail
                .as_deref()
                .map(|d| format!(" ({d})"))
                .unwrap_or_default()
        );
        // A snapshot or archive is what its tool listed (its name may also be a file's
        // in the repository's directory).
        let (size, mtime_ns) = match (&loc.repository, &at) {
            (None, At::File(path)) => std::fs::symlink_metadata(path)
                .map(|m| (m.len(), mtime_ns(&m)))
                .unwrap_or((backup.seen_size, backup.seen_mtime_ns)),
            _ => (backup.seen_size, backup.seen_mtime_ns),
        };
        verdicts.push((outcome.result, outcome.detail.clone()));
        ctx.store.record_restore_test(&NewRestoreTest {
            backup_id: backup.id,
            run_id: ctx.run_id,
            at: ctx.now,
            format: &outcome.format,
            result: outcome.result,
            files: outcome.files,
            bytes: outcome.bytes,
            database: outcome.database,
            duration_ms: outcome.duration_ms,
            detail: outcome.detail.as_deref(),
            size,
            mtime_ns,
            settings: &settings,
            carried_from,
        })?;
        summary.results.push(TestResult {
            location: loc.name.clone(),
            path: backup.path.clone(),
            format: outcome.format,
            result: outcome.result,
            files: outcome.files,
            bytes: outcome.bytes,
            detail: outcome.detail,
        });
    }
    let setup = refused.or(setup);
    if let Some(why) = &setup {
        tracing::warn!(location = %loc.name, "restore tests cannot run: {why}");
    }
    found.extend(untested(loc, &verdicts, setup.as_ref()));
    // Problems of backups judged now, or of backups that no longer exist, are settled;
    // those of older backups that were not tested this run stay as they were.
    let present_paths: HashSet<&str> = present.iter().map(|b| b.path.as_str()).collect();
    let rejudged = |p: &Problem| match p.path.as_deref() {
        Some(path) => considered.contains(path) || !present_paths.contains(path),
        None => true,
    };
    ctx.store.sync_problems(
        Operation::TestRestore,
        Some(sel.id),
        &found,
        &rejudged,
        ctx.now,
    )?;
    Ok(())
}

/// Test one backup, or carry its earlier verdict when it is unchanged.
fn judge(
    ctx: &RunContext,
    sel: &SelectedLocation,
    backup: &BackupRow,
    at: &At,
    settings: &str,
    open: &[crate::store::StoredProblem],
) -> Result<Judged> {
    let loc = sel.config;
    // A snapshot or archive never changes: its verdict stands while the settings do.
    let seen = match &loc.repository {
        Some(_) => Seen {
            size: backup.seen_size,
            mtime_ns: backup.seen_mtime_ns,
            dev_ino: None,
        },
        None => match look(at, backup) {
            Ok(seen) => seen,
            // Unreadable now (its location down, the object's server refusing) or
            // changed since the scan: nothing was learnt of it, its problems stay.
            Err(reason) => return Ok(Judged::not_set_up(reason)),
        },
    };
    if let Some(prev) =
        ctx.store
            .previous_restore_verdict(backup.id, seen.size, seen.mtime_ns, settings)?
    {
        let (outcome, carried_from) = carried(ctx, prev);
        return Ok(Judged {
            outcome,
            carried_from,
            problems: open_problems_of(open, &backup.path).collect(),
            rejudged: true,
            setup: None,
        });
    }
    let outcome = match &loc.repository {
        Some(repo) => make_sandbox(ctx, loc, backup.size)
            .map(|sandbox| test_repository_backup(ctx, loc, repo, backup, sandbox)),
        None => make_sandbox(ctx, loc, seen.size)
            .map(|sandbox| test_backup(ctx, loc, at, &seen, sandbox)),
    };
    let outcome = match outcome {
        Ok(outcome) if outcome.setup => {
            // Nothing was learnt about the backup: its problems stay as they were, and
            // the location says what to set.
            let reason = outcome.detail.clone().unwrap_or_default();
            return Ok(Judged {
                outcome,
                carried_from: None,
                problems: Vec::new(),
                rejudged: false,
                setup: Some(SetupError::Incomplete(reason)),
            });
        }
        Ok(outcome) => outcome,
        Err(why) => {
            let reason = why.to_string();
            return Ok(Judged {
                setup: Some(why),
                ..Judged::not_set_up(reason)
            });
        }
    };
    let mut problems = Vec::new();
    if let Some(kind) = outcome.problem {
        problems.push(problem(loc, &backup.path, kind, &outcome));
    }
    problems.extend(hollow(ctx, sel, backup, &outcome)?);
    Ok(Judged {
        outcome,
        carried_from: None,
        problems,
        rejudged: true,
        setup: None,
    })
}

/// The open restore problems of one backup (kept open with a carried verdict).
fn open_problems_of<'a>(
    open: &'a [crate::store::StoredProblem],
    path: &'a str,
) -> impl Iterator<Item = Problem> + 'a {
    open.iter()
        .filter(move |p| p.problem.path.as_deref() == Some(path))
        .map(|p| p.problem.clone())
}

/// An earlier verdict on an unchanged backup, carried into this run.
fn carried(ctx: &RunContext, prev: crate::store::PreviousVerdict) -> (Outcome, Option<i64>) {
    let detail = format!(
        "unchanged since the test at {}{}",
        ctx.local_rfc3339(prev.at),
        prev.detail.map(|d| format!(": {d}")).unwrap_or_default()
    );
    let outcome = Outcome {
        format: prev.format,
        result: prev.verdict,
        files: prev.files,
        bytes: prev.bytes,
        database: prev.database,
        duration_ms: 0,
        detail: Some(detail),
        problem: None,
        setup: false,
    };
    (outcome, Some(prev.original_id))
}

/// Have a repository's tool restore one snapshot or archive into a fresh `sandbox`, then
/// validate what it wrote (`expect`, `min_files`) as for an extracted archive.
fn test_repository_backup(
    ctx: &RunContext,
    loc: &Location,
    repo: &crate::config::ToolRepository,
    backup: &BackupRow,
    sandbox: Sandbox,
) -> Outcome {
    let started = Instant::now();
    let result = crate::source::repository::restore_into(ctx, loc, repo, &backup.path, &sandbox)
        .and_then(|()| validate(&sandbox, &loc.restore));
    let setup = matches!(result, Err(RestoreError::Setup(_)));
    let (result, detail, problem) = match result {
        Ok(()) => (Verdict::Passed, None, None),
        Err(RestoreError::Skipped(reason) | RestoreError::Setup(reason)) => {
            (Verdict::Skipped, Some(reason), None)
        }
        Err(e) => (Verdict::Failed, Some(e.to_string()), e.kind()),
    };
    Outcome {
        format: format!("{} {}", repo.tool.name(), repo.tool.backup_word()),
        result,
        files: sandbox.tally.files(),
        bytes: sandbox.restored().min(sandbox.limit()),
        database: None,
        duration_ms: started.elapsed().as_millis() as u64,
        detail,
        problem,
        setup,
    }
}

/// Where the backup under test is read from: a file (opened, sought and handed to tools
/// directly), or an object of a source without local paths (streamed; spooled into the
/// sandbox when its format needs to seek).
enum At<'a> {
    File(PathBuf),
    Object(&'a dyn crate::source::Source, &'a str),
}

impl At<'_> {
    /// The backup's name as messages and the progress bar show it.
    fn shown(&self) -> &Path {
        match self {
            At::File(path) => path,
            At::Object(_, rel) => Path::new(rel),
        }
    }
}

/// What the backup looks like now, when it is still the one the scan saw; else why it
/// is not tested.
fn look(at: &At, backup: &BackupRow) -> Result<Seen, String> {
    let seen_now = |size, mtime_ns| size == backup.seen_size && mtime_ns == backup.seen_mtime_ns;
    match at {
        // The name itself, never followed: a link swapped in is not what the scan saw.
        At::File(path) => match std::fs::symlink_metadata(path) {
            Err(e) => Err(format!("cannot read the backup file: {e}")),
            Ok(meta) if !meta.is_file() => Err(format!(
                "{:?} is no longer a regular file (a symbolic link or special file took its place): not followed",
                backup.path
            )),
            Ok(meta) if !seen_now(meta.len(), mtime_ns(&meta)) => {
                Err(changed(Path::new(&backup.path)).to_string())
            }
            Ok(meta) => Ok(Seen {
                size: meta.len(),
                mtime_ns: mtime_ns(&meta),
                dev_ino: Some((meta.dev(), meta.ino())),
            }),
        },
        At::Object(source, rel) => match source.stat(rel) {
            Err(e) => Err(format!("cannot read the backup object: {e}")),
            Ok(None) => Err(format!(
                "{rel:?} is gone since this run's scan: the next scan records the deletion"
            )),
            Ok(Some(f)) if !seen_now(f.size(), f.mtime_ns()) => {
                Err(changed(Path::new(&backup.path)).to_string())
            }
            Ok(Some(f)) => Ok(Seen {
                size: f.size(),
                mtime_ns: f.mtime_ns(),
                dev_ino: None,
            }),
        },
    }
}

/// `restore_untested`: every backup considered this run was skipped, so nothing proves
/// the location's backups can be restored. The first reason is shown; when the tests
/// could not be set up (`setup`), that is the reason, and it is told even when there was
/// nothing to test (a key file others can read is a leak to fix now).
fn untested(
    loc: &Location,
    verdicts: &[(Verdict, Option<String>)],
    setup: Option<&SetupError>,
) -> Option<Problem> {
    if verdicts.iter().any(|(v, _)| *v != Verdict::Skipped) {
        return None;
    }
    let message = match setup {
        Some(why) => format!("restore tests of {} cannot run: {why}", loc.name),
        None if verdicts.is_empty() => return None,
        None => {
            let reason = verdicts
                .iter()
                .find_map(|(_, d)| d.as_deref())
                .unwrap_or("no reason given");
            format!(
                "no backup could be restore-tested this run: {} ({reason})",
                match verdicts.len() {
                    1 => "the only one was skipped".to_string(),
                    n => format!("all {n} were skipped"),
                }
            )
        }
    };
    Some(Problem::new(
        Kind::RestoreUntested,
        Severity::Warning,
        &loc.name,
        message,
    ))
}

/// `restore_anomaly`: a restore that passed but produced far less than the location's
/// passed restores of earlier runs did (backups tested together in one run — `latest`
/// above 1 — are not each other's measure).
fn hollow(
    ctx: &RunContext,
    sel: &SelectedLocation,
    backup: &BackupRow,
    outcome: &Outcome,
) -> Result<Option<Problem>> {
    if outcome.result != Verdict::Passed {
        return Ok(None);
    }
    let history =
        ctx.store
            .recent_passed_restores(sel.id, backup.id, ctx.run_id, anomaly::HISTORY)?;
    let now = Restored {
        files: outcome.files,
        bytes: outcome.bytes,
        database: outcome.database,
    };
    let loc = sel.config;
    Ok(anomaly::judge(&now, &history, loc.max_size_drop.0).map(|why| {
        let message = format!(
            "restore test of {} ({}) passed but produced far less than usual: {why} (the median of the last {} passed restores); did the backup job save everything?",
            backup.path,
            outcome.format,
            history.len()
        );
        Problem::new(Kind::RestoreAnomaly, Severity::Warning, &loc.name, message)
            .with_path(&backup.path)
    }))
}

use crate::scan::mtime_ns;

/// The restore settings a verdict depends on, by name: when one changes (a new `expect`
/// list, a new `timeout` — a backup that ran out of time gets the time given now), an
/// unchanged backup is tested again instead of keeping its earlier verdict.
#[derive(serde::Serialize)]
struct Fingerprint<'a> {
    expect: &'a [String],
    min_files: u32,
    max_bytes: Option<u64>,
    timeout_ms: u128,
    postgres: bool,
    /// Left out while unset, so that stores from before it existed keep their verdicts.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    mysql: bool,
    max_entries: u32,
    decoder_memory: u64,
    /// Left out while empty, so that stores from before it existed keep their verdicts.
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    include: &'a [String],
    /// Left out while no key is configured, so that stores from before keys existed
    /// keep their verdicts.
    #[serde(skip_serializing_if = "Option::is_none")]
    decrypt: Option<[Option<&'a str>; 3]>,
    /// What the key files hold and which servers (with which user and password) the
    /// URLs name, as one stretched digest: a key copied over the old one, or another
    /// scratch server, is a new setting. Left out while there are none.
    #[serde(skip_serializing_if = "Option::is_none")]
    secrets: Option<String>,
}

/// Rounds of SHA-256 over the secrets' digest: what the store keeps of a weak passphrase
/// is then slow to guess back.
const SECRET_ROUNDS: u32 = 100_000;

/// One digest of the key files' contents and the server URLs, salted with the
/// location's name; None when the location has none. A file that cannot be read counts
/// as such (the tests refuse it anyway).
fn secrets_digest(loc: &Location, keys: &decrypt::Keys) -> Option<String> {
    let r = &loc.restore;
    use sha2::{Digest, Sha256};
    let urls = [
        ("postgres_url", r.postgres_url.as_deref()),
        ("mysql_url", r.mysql_url.as_deref()),
    ];
    if keys.files().next().is_none() && urls.iter().all(|(_, u)| u.is_none()) {
        return None;
    }
    let mut h = Sha256::new();
    h.update(b"backup-monitor restore secrets v1\0");
    h.update((loc.name.len() as u64).to_le_bytes());
    h.update(loc.name.as_bytes());
    let mut part = |label: &str, bytes: &[u8]| {
        h.update((label.len() as u64).to_le_bytes());
        h.update(label.as_bytes());
        h.update((bytes.len() as u64).to_le_bytes());
        h.update(bytes);
    };
    for (key, path) in keys.files() {
        match decrypt::read_key_file(path) {
            Ok(content) => part(key, &content),
            Err(_) => part(key, b"(unreadable)"),
        }
    }
    for (key, url) in urls {
        if let Some(url) = url {
            part(key, url.as_bytes());
        }
    }
    let mut digest = h.finalize();
    for _ in 0..SECRET_ROUNDS {
        digest = Sha256::digest(digest);
    }
    Some(digest.iter().map(|b| format!("{b:02x}")).collect())
}

fn settings_fingerprint(loc: &Location, keys: &decrypt::Keys) -> String {
    let r = &loc.restore;
    let fingerprint = Fingerprint {
        expect: &r.expect,
        min_files: r.min_files,
        max_bytes: r.max_bytes.map(|s| s.0),
        timeout_ms: r.timeout.0.as_millis(),
        postgres: r.postgres_url.is_some(),
        mysql: r.mysql_url.is_some(),
        max_entries: r.max_entries,
        decoder_memory: r.decoder_memory.0,
        include: &r.include,
        decrypt: (r.decrypt != DecryptConfig::default()).then_some([
            r.decrypt.age_identity_file.as_deref(),
            r.decrypt.gpg_key_file.as_deref(),
            r.decrypt.gpg_passphrase_file.as_deref(),
        ]),
        secrets: secrets_digest(loc, keys),
    };
    serde_json::to_string(&fingerprint).unwrap_or_default()
}

fn problem(loc: &Location, rel: &str, kind: Kind, outcome: &Outcome) -> Problem {
    let message = format!(
        "restore test of {rel} ({}) failed: {}",
        outcome.format,
        outcome.detail.as_deref().unwrap_or(kind.as_str())
    );
    Problem::new(kind, Severity::Critical, &loc.name, message).with_path(rel)
}

fn skipped_outcome(reason: String) -> Outcome {
    Outcome {
        format: "unknown".into(),
        result: Verdict::Skipped,
        files: 0,
        bytes: 0,
        database: None,
        duration_ms: 0,
        detail: Some(reason),
        problem: None,
        setup: false,
    }
}

/// Restore one backup into a fresh `sandbox` and validate it.
fn test_backup(
    ctx: &RunContext,
    loc: &Location,
    at: &At,
    seen: &Seen,
    sandbox: Sandbox,
) -> Outcome {
    let size = seen.size;
    let started = Instant::now();
    let progress = Progress::new(ctx.progress, size, at.shown());
    let mut format = "unknown".to_string();
    let keys = keys(ctx, &loc.restore);
    let services = Services {
        pg_url: loc.restore.postgres_url.as_deref(),
        mysql_url: loc.restore.mysql_url.as_deref(),
        keys: &keys,
    };
    let memory = compressed::DecoderMemory {
        config: loc.restore.decoder_memory.0,
        max_bytes: sandbox.limit(),
    };
    let result = match at {
        At::File(path) => restore(
            &sandbox,
            &services,
            path,
            &progress,
            &mut format,
            memory,
            Some(seen),
        ),
        At::Object(source, rel) => restore_object(
            &sandbox,
            &services,
            (*source, rel),
            &progress,
            &mut format,
            memory,
            seen,
        ),
    }
    .and_then(|notes| validate(&sandbox, &loc.restore).map(|()| notes));
    progress.finish();
    let files = sandbox.tally.files();
    let database = sandbox.tally.database();
    let bytes = sandbox.restored().min(sandbox.limit());
    let setup = matches!(result, Err(RestoreError::Setup(_)));
    let (result, detail, problem) = match result {
        Ok(notes) => (
            Verdict::Passed,
            (!notes.0.is_empty()).then(|| notes.0.join("; ")),
            None,
        ),
        Err(RestoreError::Skipped(reason) | RestoreError::Setup(reason)) => {
            (Verdict::Skipped, Some(reason), None)
        }
        Err(e) => (Verdict::Failed, Some(e.to_string()), e.kind()),
    };
    Outcome {
        format,
        result,
        files,
        bytes,
        database: database.filter(|_| result == Verdict::Passed),
        duration_ms: started.elapsed().as_millis() as u64,
        detail,
        problem,
        setup,
    }
}

fn validate(sandbox: &Sandbox, cfg: &RestoreConfig) -> Result<(), RestoreError> {
    let unmatched = sandbox.tally.unmatched();
    if !unmatched.is_empty() {
        return Err(RestoreError::Failed(format!(
            "nothing restored matches expect {}",
            unmatched
                .iter()
                .map(|g| format!("{g:?}"))
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    let files = sandbox.tally.files();
    if files < u64::from(cfg.min_files) {
        return Err(RestoreError::Failed(format!(
            "restored {files} files (or tables), fewer than min_files {}",
            cfg.min_files
        )));
    }
    Ok(())
}

/// Detect what the file at `path` is and restore-test it in a fresh sandbox under
/// `parent` that stops at `max_bytes`, without a store, a config or `expect` globs: the
/// library entry point for fuzzing and tools. Returns the format name and the verdict;
/// errs only when no sandbox can be made.
pub fn test_file(
    parent: &Path,
    path: &Path,
    max_bytes: u64,
) -> io::Result<(String, Result<Notes, RestoreError>)> {
    test_file_within(parent, path, max_bytes, sandbox::DEFAULT_TIMEOUT)
}

/// [`test_file`] with a time limit of its own (`restore.timeout`).
pub fn test_file_within(
    parent: &Path,
    path: &Path,
    max_bytes: u64,
    timeout: std::time::Duration,
) -> io::Result<(String, Result<Notes, RestoreError>)> {
    let tally = Tally::new(&[]).map_err(io::Error::other)?;
    let sandbox = Sandbox::create(parent, max_bytes, tally)?.with_timeout(timeout);
    let mut format = "unknown".to_string();
    let memory = compressed::DecoderMemory::for_max_bytes(max_bytes);
    let keys = decrypt::Keys::default();
    let services = Services {
        pg_url: None,
        mysql_url: None,
        keys: &keys,
    };
    let result = restore(
        &sandbox,
        &services,
        path,
        &Progress { bar: None },
        &mut format,
        memory,
        None,
    );
    Ok((format, result))
}

/// What this run's scan saw of a backup, which the file opened must still be: a name
/// swapped for a link or another file between the scan and the restore is not tested.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Seen {
    pub size: u64,
    pub mtime_ns: i64,
    /// The inode, once the restore looked at the name itself.
    pub dev_ino: Option<(u64, u64)>,
}

/// Open a backup for reading: never through a symbolic link (`O_NOFOLLOW`), without
/// blocking (a FIFO put where the backup was would never end), and only a regular file —
/// the one `seen` describes, when given.
pub(crate) fn open_backup(path: &Path, seen: Option<&Seen>) -> Result<File, RestoreError> {
    use std::os::unix::fs::OpenOptionsExt;
    let opened = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOFOLLOW)
        .open(path)
        .and_then(|f| f.metadata().map(|m| (f, m)));
    let (file, meta) = match opened {
        Ok(found) => found,
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => {
            return Err(RestoreError::Skipped(format!(
                "{:?} is now a symbolic link, not the file the scan found: not followed",
                path
            )));
        }
        Err(e) => {
            return Err(RestoreError::Skipped(format!(
                "cannot open the backup: {e}"
            )));
        }
    };
    if !meta.is_file() {
        return Err(RestoreError::Skipped(format!(
            "{path:?} is no longer a regular file"
        )));
    }
    if let Some(seen) = seen {
        let now = Seen {
            size: meta.len(),
            mtime_ns: mtime_ns(&meta),
            dev_ino: seen.dev_ino.map(|_| (meta.dev(), meta.ino())),
        };
        if now != *seen {
            return Err(changed(path));
        }
    }
    Ok(file)
}

fn changed(path: &Path) -> RestoreError {
    RestoreError::Skipped(format!(
        "{path:?} changed or was replaced since this run's scan: it is tested on a later run"
    ))
}

/// Detect what the backup is and hand it to its format's handler. Content decides; the
/// name only promises: bytes that break its promise are corrupt, and a file whose
/// name promises nothing known and whose bytes are not recognised is skipped.
fn restore(
    sandbox: &Sandbox,
    services: &Services,
    path: &Path,
    progress: &Progress,
    format: &mut String,
    memory: compressed::DecoderMemory,
    seen: Option<&Seen>,
) -> Result<Notes, RestoreError> {
    let file = open_backup(path, seen)?;
    // The zip reader and pg_restore read this same open file, never the name again.
    let same = file
        .try_clone()
        .map_err(|e| RestoreError::Skipped(format!("cannot open the backup: {e}")))?;
    let mut same = Some(same);
    let mut same_file = || {
        same.take()
            .ok_or_else(|| RestoreError::Skipped("cannot open the backup twice".into()))
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let backup = Opened {
        stream: progress.wrap(file),
        name: &name,
        path,
        beside: Some(path),
    };
    restore_stream(
        sandbox,
        services,
        backup,
        &mut same_file,
        progress,
        format,
        memory,
    )
}

/// An object of a source without local paths, streamed into the same pipeline as a
/// file. A format that needs to seek (zip, custom-format dumps, a broken promise's
/// second look) reads a copy spooled into the sandbox, which counts against `max_bytes`.
fn restore_object(
    sandbox: &Sandbox,
    services: &Services,
    (source, rel): (&dyn crate::source::Source, &str),
    progress: &Progress,
    format: &mut String,
    memory: compressed::DecoderMemory,
    seen: &Seen,
) -> Result<Notes, RestoreError> {
    let open = || -> Result<crate::source::Opened, RestoreError> {
        let opened = source
            .open(rel)
            .map_err(|e| RestoreError::Skipped(format!("cannot open the backup: {e}")))?;
        let f = &opened.fingerprint;
        if (f.size(), f.mtime_ns()) != (seen.size, seen.mtime_ns) {
            return Err(changed(Path::new(rel)));
        }
        Ok(opened)
    };
    let first = open()?;
    let first_print = first.fingerprint.clone();
    let mut spooled = false;
    let mut same_file = || -> Result<File, RestoreError> {
        if std::mem::replace(&mut spooled, true) {
            return Err(RestoreError::Skipped("cannot open the backup twice".into()));
        }
        let again = open()?;
        if again.fingerprint != first_print {
            return Err(changed(Path::new(rel)));
        }
        let copy = sandbox.scratch_path("spooled-object");
        sandbox.write_scratch(&copy, &mut progress.wrap(again.reader))?;
        open_backup(&copy, None)
    };
    let name = rel.rsplit('/').next().unwrap_or(rel).to_string();
    let backup = Opened {
        stream: progress.wrap(first.reader),
        name: &name,
        path: Path::new(rel),
        beside: None,
    };
    restore_stream(
        sandbox,
        services,
        backup,
        &mut same_file,
        progress,
        format,
        memory,
    )
}

/// A backup opened for a restore test: its stream from the first byte, its name (what it
/// promises), the path messages show, and its path on disk when it is a file (a SQLite
/// database's `-wal` file is looked for beside it).
struct Opened<'a> {
    stream: Stream,
    name: &'a str,
    path: &'a Path,
    beside: Option<&'a Path>,
}

/// Detect what the opened backup is and hand it to its format's handler; `same_file`
/// gives the same content as a seekable file, once.
fn restore_stream(
    sandbox: &Sandbox,
    services: &Services,
    backup: Opened,
    same_file: &mut dyn FnMut() -> Result<File, RestoreError>,
    progress: &Progress,
    format: &mut String,
    memory: compressed::DecoderMemory,
) -> Result<Notes, RestoreError> {
    let Opened {
        stream: file,
        name,
        path,
        beside,
    } = backup;
    let name = name.to_string();
    let promise = detect::promise(&name);
    if let Some(p) = &promise {
        // What the name says, until the bytes say more (or cannot be read).
        *format = p.format_name();
    }
    let (head, stream) = compressed::peek(file, detect::HEAD_LEN)
        .map_err(|e| RestoreError::read("the backup", e))?;
    if let Some(cipher) = decrypt::cipher(&head) {
        return encrypted(sandbox, services, cipher, stream, &name, format, memory);
    }
    if let Some((cipher, len)) = decrypt::named(&name) {
        *format = cipher.suffix().into();
        return Err(decrypt::broken_promise(
            cipher,
            &name[name.len() - len..],
            &head,
        ));
    }
    let pg_url = services.pg_url;
    let compression = detect::compression(&head);
    if compression == Compression::None {
        let content = detect::content(&head, &name);
        if content == Content::Other
            && let Some(p) = &promise
        {
            return broken_promise(sandbox, same_file()?, progress, p, &head, format);
        }
        *format = detect::format_name(compression, content);
        return match content {
            Content::Tar => tar::extract(sandbox, &mut compressed::read_ahead(stream)),
            Content::Zip => zip::extract(sandbox, same_file()?, &|n| progress.inc(n)),
            Content::Sqlite => sqlite::check(sandbox, &mut { stream }, beside),
            Content::PgCustom => postgres::check_custom(sandbox, path, same_file()?, pg_url),
            Content::Sql(dialect) => sql::check(sandbox, &mut { stream }, dialect, services),
            Content::Other => Err(RestoreError::Skipped(
                "unrecognised format: not an archive, compressed stream, database or SQL dump that restore tests know".into(),
            )),
        };
    }
    let input = Input {
        head: &head,
        compression,
        name: &name,
        promise,
    };
    decompressed(sandbox, services, stream, input, format, memory)
}

/// A stream whose start was read: what it begins with, its compression, the name it is
/// tested under and what that name promises.
struct Input<'a> {
    head: &'a [u8],
    compression: Compression,
    name: &'a str,
    promise: Option<detect::Promise>,
}

/// A compressed stream, decoded within the decoder's memory and handed to its content's
/// handler.
fn decompressed(
    sandbox: &Sandbox,
    services: &Services,
    stream: Stream,
    input: Input,
    format: &mut String,
    memory: compressed::DecoderMemory,
) -> Result<Notes, RestoreError> {
    let compression = input.compression;
    let promised =
        detect::promise(&detect::strip_compression_suffix(input.name)).and_then(|p| p.content);
    *format = detect::format_name(compression, promised.unwrap_or(Content::Other));
    if let Some((what, need)) = compressed::declared_memory(compression, input.head)
        && let Some(verdict) = memory.judge(compression, what, need)
    {
        return Err(verdict);
    }
    let (decoded, refusal) = compressed::decoder(compression, stream, memory)
        .map_err(|e| RestoreError::read("the compressed stream", e))?;
    // A decoder that stopped at its memory limit did not find damage.
    decoded_content(
        sandbox,
        services,
        decoded,
        compression,
        input.name,
        input.promise,
        format,
    )
    .map_err(|e| match e {
        RestoreError::Corrupt(_) => refusal.take().unwrap_or(e),
        other => other,
    })
}

/// Where restored content may be replayed beyond the sandbox, and the keys that open
/// encrypted backups.
pub(crate) struct Services<'a> {
    pub pg_url: Option<&'a str>,
    pub mysql_url: Option<&'a str>,
    pub keys: &'a decrypt::Keys,
}

/// An encrypted backup: decrypted, and its plaintext tested as what it is. The format
/// name carries the encryption last (`tar.gz.age`).
fn encrypted(
    sandbox: &Sandbox,
    services: &Services,
    cipher: decrypt::Cipher,
    stream: Stream,
    name: &str,
    format: &mut String,
    memory: compressed::DecoderMemory,
) -> Result<Notes, RestoreError> {
    let inner = decrypt::inner_name(name);
    // Until the plaintext says what it is, the name does (`x.tar.gz.age` is a tar.gz),
    // or nothing: then the format is the encryption alone (`age`).
    *format = detect::promise(&inner)
        .map(|p| p.format_name())
        .unwrap_or_else(|| "unknown".into());
    let result = match cipher {
        decrypt::Cipher::Age => {
            match decrypt::age(stream, services.keys.age_identity_file.as_deref()) {
                Err(e) => Err(e),
                Ok((plain, rest)) => {
                    let tested = plaintext(sandbox, services, plain, &inner, format, memory);
                    // Damage after the end of the content is still damage; it outranks a
                    // verdict on content read from a stream that could not be
                    // authenticated to its end.
                    match (tested, rest.finish(sandbox)) {
                        (Ok(notes), Ok(())) => Ok(notes),
                        (_, Err(e @ RestoreError::Corrupt(_))) | (Ok(_), Err(e)) => Err(e),
                        (Err(e), _) => Err(e),
                    }
                }
            }
        }
        decrypt::Cipher::OpenPgp => {
            decrypt::gpg(sandbox, stream, services.keys).and_then(|spooled| {
                let file = open_backup(&spooled, None)?;
                plaintext(sandbox, services, Box::new(file), &inner, format, memory)
            })
        }
    };
    *format = if format.as_str() == "unknown" {
        cipher.suffix().into()
    } else {
        format!("{format}.{}", cipher.suffix())
    };
    let mut notes = result?;
    notes.push(format!("decrypted ({})", cipher.suffix()));
    Ok(notes)
}

/// Decrypted content, tested as what it is: compressed or not, by its bytes and `name`.
fn plaintext(
    sandbox: &Sandbox,
    services: &Services,
    stream: Stream,
    name: &str,
    format: &mut String,
    memory: compressed::DecoderMemory,
) -> Result<Notes, RestoreError> {
    let (head, stream) = compressed::peek(stream, detect::HEAD_LEN)
        .map_err(|e| RestoreError::read("the decrypted stream", e))?;
    let compression = detect::compression(&head);
    let promise = detect::promise(name);
    if compression == Compression::None {
        return decoded_content(
            sandbox,
            services,
            stream,
            compression,
            name,
            promise,
            format,
        );
    }
    let input = Input {
        head: &head,
        compression,
        name,
        promise,
    };
    decompressed(sandbox, services, stream, input, format, memory)
}

/// The content of a decoded stream, handed to its format's handler.
fn decoded_content(
    sandbox: &Sandbox,
    services: &Services,
    decoded: Stream,
    compression: Compression,
    name: &str,
    promise: Option<detect::Promise>,
    format: &mut String,
) -> Result<Notes, RestoreError> {
    let inner_name = detect::strip_compression_suffix(name);
    let promised = detect::promise(&inner_name).and_then(|p| p.content);
    let (inner_head, decoded) = compressed::peek(compressed::read_ahead(decoded), detect::HEAD_LEN)
        .map_err(|e| RestoreError::read("the compressed stream", e))?;
    let content = detect::content(&inner_head, &inner_name);
    if let Some(promised) = promised {
        // A `.tar.*` must hold a tar; other promises only fail on content nobody knows.
        let broken = match promised {
            Content::Tar => content != Content::Tar,
            _ => content == Content::Other,
        };
        if broken {
            let suffix = promise.map(|p| p.suffix).unwrap_or_default();
            let codec = match compression {
                Compression::None => "decrypted",
                other => other.suffix(),
            };
            return Err(RestoreError::Corrupt(if inner_head.is_empty() {
                format!("named {suffix}, but the {codec} stream is empty")
            } else {
                format!(
                    "named {suffix}, but the {codec} stream does not hold {} ({})",
                    promised.describe(),
                    detect::describe_start(&inner_head)
                )
            }));
        }
    }
    *format = detect::format_name(compression, content);
    let mut stream = decoded;
    match content {
        Content::Tar => tar::extract(sandbox, &mut stream),
        Content::Zip => {
            let spilled = sandbox.scratch_path("archive.zip");
            sandbox.write_scratch(&spilled, &mut stream)?;
            zip::extract(sandbox, open_backup(&spilled, None)?, &|_| {})
        }
        Content::Sqlite => sqlite::check(sandbox, &mut stream, None),
        Content::PgCustom => {
            let spilled = postgres::spill(sandbox, &mut stream)?;
            postgres::check_custom(
                sandbox,
                &spilled,
                open_backup(&spilled, None)?,
                services.pg_url,
            )
        }
        Content::Sql(dialect) => sql::check(sandbox, &mut stream, dialect, services),
        Content::Other => compressed::single_file(sandbox, stream, &inner_name, compression),
    }
}

/// An uncompressed file whose bytes are not what its name promises (`x.tar.gz` that is
/// not gzip, `x.sqlite` without the SQLite header, an empty `x.zip`): corrupt — what
/// ransomware, a zero-filled block or a failed copy leaves. A zip may start with other
/// data (a self-extractor), so a `.zip` is first tried by its central directory.
fn broken_promise(
    sandbox: &Sandbox,
    file: File,
    progress: &Progress,
    promise: &detect::Promise,
    head: &[u8],
    format: &mut String,
) -> Result<Notes, RestoreError> {
    let suffix = &promise.suffix;
    if head.is_empty() {
        return Err(RestoreError::Corrupt(format!(
            "named {suffix} but is empty (0 bytes)"
        )));
    }
    let expected = match (promise.compression, promise.content) {
        (Compression::None, Some(content)) => content.describe(),
        (compression, _) => compression.describe(),
    };
    let why = format!(
        "named {suffix} but is not {expected} ({})",
        detect::describe_start(head)
    );
    if promise.compression == Compression::None && promise.content == Some(Content::Zip) {
        *format = "zip".into();
        return zip::extract(sandbox, file, &|n| progress.inc(n)).map_err(|e| match e {
            RestoreError::Corrupt(reason) => RestoreError::Corrupt(format!("{why}: {reason}")),
            other => other,
        });
    }
    Err(RestoreError::Corrupt(why))
}

/// A progress bar over the backup's bytes, drawn only when the run may draw (a terminal,
/// no `--no-progress`).
struct Progress {
    bar: Option<indicatif::ProgressBar>,
}

impl Progress {
    fn new(enabled: bool, size: u64, path: &Path) -> Progress {
        let bar = enabled.then(|| {
            let bar = indicatif::ProgressBar::new(size);
            if let Ok(style) = indicatif::ProgressStyle::with_template(
                "{msg} {wide_bar} {binary_bytes}/{binary_total_bytes} {binary_bytes_per_sec}",
            ) {
                bar.set_style(style);
            }
            bar.set_message(format!(
                "restoring {}",
                path.file_name().unwrap_or_default().to_string_lossy()
            ));
            bar
        });
        Progress { bar }
    }

    fn inc(&self, n: u64) {
        if let Some(bar) = &self.bar {
            bar.inc(n);
        }
    }

    /// `file`, counting what is read of it on the bar.
    fn wrap(&self, file: impl io::Read + Send + 'static) -> Stream {
        match &self.bar {
            None => Box::new(file),
            Some(bar) => Box::new(bar.wrap_read(file)),
        }
    }

    fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fifo_in_place_of_a_backup_is_skipped_not_waited_on() {
        let dir = tempfile::tempdir().unwrap();
        for name in ["db.tar.gz", "files.zip", "dump.sql"] {
            let p = dir.path().join(name);
            let c = std::ffi::CString::new(p.as_os_str().as_encoded_bytes()).unwrap();
            // SAFETY: mkfifo reads a valid NUL-terminated path.
            assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
            let parent = dir.path().to_path_buf();
            let (tx, rx) = std::sync::mpsc::channel();
            std::thread::spawn(move || {
                let _ = tx.send(test_file(&parent, &p, 1 << 20).map(|(_, r)| r));
            });
            let verdict = rx
                .recv_timeout(std::time::Duration::from_secs(20))
                .expect("a FIFO must not block the restore test on a writer that never comes")
                .unwrap();
            match verdict {
                Err(RestoreError::Skipped(why)) => {
                    assert!(why.contains("no longer a regular file"), "{name}: {why}")
                }
                other => panic!("{name}: {other:?}"),
            }
        }
    }
}
