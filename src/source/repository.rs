//! A backup tool's repository as a location (`kind: restic`, `kind: borg`): its
//! snapshots or archives become the backups `--monitor` records and judges like files,
//! `--verify` runs the tool's own check and records its verdict, and `--test-restore`
//! has the tool restore the newest one into the sandbox, which is then walked and
//! validated like an extracted archive.
//!
//! Not for: what one tool's commands and answers look like (`restic.rs`, `borg.rs`) or
//! running a process (`tool.rs`).

use super::tool::{Finished, Invocation, RunError};
use super::{borg, restic};
use crate::alert::redact::Secrets;
use crate::config::{Location, RepoSecret, Tool, ToolRepository};
use crate::problem::{Kind, Operation, Problem, Severity};
use crate::restore::RestoreError;
use crate::restore::sandbox::{ENTRY_COST, Sandbox};
use crate::run::{RunContext, SelectedLocation};
use crate::scan::{FoundFile, PathMatcher};
use crate::store::{Verification, VerifyMethod, VerifyResult};
use crate::timestamp::TimestampSource;
use anyhow::Result;
use chrono::{DateTime, Utc};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Why a tool could not open a repository.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    NoRepository,
    Locked,
    WrongPassword,
    /// No password was given where the repository needs one.
    NoPassword,
    /// The tool crashed (a Python traceback from borg): its last words, the error.
    Crashed(String),
    Other,
}

/// A repository that could not be read, in words for the person on call (secrets
/// masked).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct RepoError(pub String);

/// One snapshot or archive as the tool listed it.
#[derive(Debug, Clone, PartialEq)]
pub struct ListedBackup {
    /// The short snapshot id or the archive name: the backup's path in the store.
    pub name: String,
    pub time: DateTime<Utc>,
    /// None: not known yet (asked for on a later run); the backup is not recorded until
    /// it is.
    pub size: Option<u64>,
}

/// What every run of a tool for one location shares.
pub struct ToolContext {
    pub timeout: Duration,
    /// A private directory for the tools' caches and state (see
    /// [`crate::config::Config::tools_state_dir`]).
    pub state_dir: PathBuf,
    pub secrets: Secrets,
}

impl ToolContext {
    pub fn new(ctx: &RunContext, loc: &Location, repo: &ToolRepository) -> ToolContext {
        Self::of(ctx.config, loc, repo)
    }

    /// For the runs of `config` (the tools' state in its
    /// [`crate::config::Config::tools_state_dir`]).
    pub fn of(
        config: &crate::config::Config,
        loc: &Location,
        repo: &ToolRepository,
    ) -> ToolContext {
        let state_dir = config.tools_state_dir();
        if let Err(e) = super::tool::private_dir(&state_dir) {
            tracing::warn!(
                "cannot create {} for the backup tools' state: {e}",
                state_dir.display()
            );
        }
        ToolContext {
            timeout: loc.restore.timeout.0,
            state_dir,
            secrets: secrets_of(repo),
        }
    }

    /// Run `inv`; anything but success is the repository's unavailability.
    pub fn run(&self, repo: &ToolRepository, inv: Invocation) -> Result<Finished, RepoError> {
        let out = self.run_any(repo, &inv)?;
        if out.success() {
            return Ok(out);
        }
        Err(self.failed(repo, &inv, &out))
    }

    /// Run `inv` to its end, whatever its exit code.
    pub fn run_any(&self, repo: &ToolRepository, inv: &Invocation) -> Result<Finished, RepoError> {
        inv.run(&bin_key(repo.tool), &mut || None)
            .map_err(|e| self.unrunnable(repo, &e))
    }

    /// The message for a run that ended with an error.
    pub fn failed(&self, repo: &ToolRepository, inv: &Invocation, out: &Finished) -> RepoError {
        let failure = classify(repo.tool, out.code, &out.stderr);
        let words = inv.shown(&out.stderr);
        let words = if words.is_empty() {
            "it gave no reason".to_string()
        } else {
            format!("{} says: {words}", repo.tool.name())
        };
        let name = repo.tool.name();
        let what = match failure {
            Failure::NoRepository => format!(
                "there is no {name} repository at {} ({words}); is the volume mounted and `repository` right?",
                repo.shown
            ),
            Failure::Locked => format!(
                "the {name} repository {} is locked ({words}); a backup, prune or check may be running, or a stale lock needs `{}`",
                repo.shown,
                match repo.tool {
                    Tool::Restic => "restic unlock",
                    Tool::Borg => "borg break-lock",
                }
            ),
            Failure::WrongPassword => format!(
                "{name} cannot open the repository {}: wrong password ({words}); check {}",
                repo.shown,
                secret_keys(repo)
            ),
            Failure::NoPassword => format!(
                "{name} cannot open the repository {}: it is encrypted and no password was given; set {} for this location",
                repo.shown,
                secret_keys(repo)
            ),
            Failure::Crashed(error) => format!(
                "{name} failed on the repository {} ({name} says: {}); is `repository` a {name} repository, and readable?",
                repo.shown,
                inv.shown(&error)
            ),
            Failure::Other => format!(
                "{name} cannot read the repository {}: it exited with {} ({words})",
                repo.shown,
                out.code
                    .map_or("a signal".to_string(), |c| format!("code {c}"))
            ),
        };
        RepoError(self.secrets.redact(&what))
    }

    fn unrunnable(&self, repo: &ToolRepository, e: &RunError) -> RepoError {
        RepoError(self.secrets.redact(&format!(
            "cannot read the {} repository {}: {e}",
            repo.tool.name(),
            repo.shown
        )))
    }

    /// An answer that does not parse.
    pub fn garbled(&self, repo: &ToolRepository, why: String) -> RepoError {
        RepoError(self.secrets.redact(&format!(
            "cannot read the {} repository {}: {}",
            repo.tool.name(),
            repo.shown,
            crate::problem::one_line(&why)
        )))
    }
}

fn bin_key(tool: Tool) -> String {
    format!("{}_bin", tool.name())
}

fn secret_keys(repo: &ToolRepository) -> &'static str {
    match (repo.tool, &repo.secret) {
        (Tool::Restic, RepoSecret::Command(_)) => "password_command",
        (Tool::Restic, _) => "password_file",
        (Tool::Borg, _) => "passphrase_file",
    }
}

fn classify(tool: Tool, code: Option<i32>, stderr: &str) -> Failure {
    match tool {
        Tool::Restic => restic::classify(code, stderr),
        Tool::Borg => borg::classify(code, stderr),
    }
}

/// What must never be shown of a repository: the values of its `env` (backend keys),
/// the password itself, and any URL's user-info (masked by [`Secrets::redact`] anyway).
fn secrets_of(repo: &ToolRepository) -> Secrets {
    let mut secrets = Secrets::default();
    for (_, v) in &repo.env {
        secrets.add(v);
    }
    // A backend URL's user-info (`rest:https://user:password@host/`), in whatever form
    // the tool quotes it.
    if let Some((_, rest)) = repo.repository.split_once("://") {
        let authority = rest.split(['/', '?', '#']).next().unwrap_or(rest);
        if let Some((userinfo, _)) = authority.rsplit_once('@') {
            secrets.add(userinfo);
            if let Some((_, password)) = userinfo.split_once(':') {
                secrets.add(password);
            }
        }
    }
    if let RepoSecret::File(f) = &repo.secret
        && let Ok(text) = std::fs::read(f)
        && text.len() <= 4096
    {
        let text = String::from_utf8_lossy(&text);
        secrets.add(text.trim_end_matches(['\n', '\r']));
    }
    secrets
}

/// A tool's JSON answer read as `T`; what does not fit is said with where it is
/// (`[0].time: …`), since the parser's own words name no field.
pub fn parse_json<T: serde::de::DeserializeOwned>(json: &[u8], what: &str) -> Result<T, String> {
    let de = &mut serde_json::Deserializer::from_slice(json);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let cause = crate::problem::one_line(&crate::config::values::shown(&e.inner().to_string()))
            .into_owned();
        match path.as_str() {
            "." | "" => format!("{what}: {cause}"),
            _ => format!("{what}: at `{path}`, {cause}"),
        }
    })
}

/// The snapshots or archives of a repository location as the files a scan finds:
/// settled once their size is known (a tool lists only finished ones), timestamped by
/// the tool. `Ok(Err)` is a
/// repository that cannot be read.
pub fn scan(
    ctx: &RunContext,
    sel: &SelectedLocation,
    repo: &ToolRepository,
) -> Result<Result<Vec<FoundFile>, RepoError>> {
    let known: HashMap<String, u64> = ctx
        .store
        .backups_of(sel.id)?
        .into_iter()
        .map(|b| (b.path, b.size))
        .collect();
    let known_size = |name: &str| known.get(name).copied();
    let cx = ToolContext::new(ctx, sel.config, repo);
    Ok(list(&cx, sel.config, repo, &known_size))
}

/// The location's snapshots or archives as found files; sizes the tool is not asked for
/// again come from `known_size`. A borg archive is the location's when its name matches
/// `patterns` and no `exclude` (restic snapshots are chosen by `snapshots:`).
pub fn list(
    cx: &ToolContext,
    loc: &Location,
    repo: &ToolRepository,
    known_size: &dyn Fn(&str) -> Option<u64>,
) -> Result<Vec<FoundFile>, RepoError> {
    let listed = match repo.tool {
        Tool::Restic => restic::list(cx, repo, known_size)?,
        Tool::Borg => {
            // Globs were validated with the config.
            let include = PathMatcher::new(&loc.patterns).ok();
            let exclude = PathMatcher::new(&loc.exclude).ok();
            let ours = |name: &str| {
                include.as_ref().is_some_and(|m| m.is_match(name))
                    && !exclude.as_ref().is_some_and(|m| m.is_match(name))
            };
            borg::list(cx, repo, &ours, known_size)?
        }
    };
    Ok(listed.into_iter().map(found).collect())
}

fn found(b: ListedBackup) -> FoundFile {
    let ns = b.time.timestamp_nanos_opt().unwrap_or(0);
    FoundFile {
        path: b.name,
        size: b.size.unwrap_or(0),
        mtime_ns: ns,
        ts: b.time,
        ts_source: TimestampSource::Repository,
        settled: b.size.is_some(),
    }
}

/// The `location_unavailable` problem of a repository that cannot be read.
pub fn unavailable(loc: &Location, e: &RepoError) -> Problem {
    Problem::new(
        Kind::LocationUnavailable,
        Severity::Critical,
        &loc.name,
        e.0.clone(),
    )
}

/// `restic check --read-data-subset=n/t`: `t` runs read all data once (t = ⌈1 /
/// verify_sample⌉), and `n` is the next subset after the ones that passed so far, so a
/// subset that failed is read again until it passes.
pub fn subset(verify_sample: f64, passed_checks: u64) -> (u32, u32) {
    let t = (1.0 / verify_sample.clamp(0.01, 1.0)).ceil() as u32;
    let t = t.clamp(1, 100);
    let n = (passed_checks % u64::from(t)) as u32 + 1;
    (n, t)
}

/// The counts of one location's `--verify` of a repository.
#[derive(Debug, Default, Clone, Copy)]
pub struct Checked {
    pub checked: u64,
    pub passed: u64,
    pub failed: u64,
}

/// `--verify` of a repository location: the tool's check, its verdict recorded on the
/// newest backup, and the verify problems of the location synced.
pub fn verify(ctx: &RunContext, sel: &SelectedLocation, repo: &ToolRepository) -> Result<Checked> {
    let loc = sel.config;
    let all = |_: &Problem| true;
    if !loc.verify_integrity {
        ctx.store
            .sync_problems(Operation::Verify, Some(sel.id), &[], &all, ctx.now)?;
        tracing::info!(location = %loc.name, "verify_integrity is off: not verified");
        return Ok(Checked::default());
    }
    let present = ctx.store.present_backups(sel.id)?;
    let Some(newest) = present.first() else {
        tracing::info!(location = %loc.name, "no {} recorded: nothing to check", repo.tool.backup_word());
        return Ok(Checked::default());
    };
    let cx = ToolContext::new(ctx, loc, repo);
    let (inv, scope) = match repo.tool {
        Tool::Restic => {
            let epoch = DateTime::<Utc>::UNIX_EPOCH;
            let (passed, _) = ctx.store.verification_counts(sel.id, epoch)?;
            let (n, t) = subset(loc.verify_sample.0, passed);
            (
                restic::check_command(&cx, repo, n, t),
                format!("data subset {n}/{t}"),
            )
        }
        Tool::Borg => {
            // Damage found before is looked for in every archive until a check passes: a
            // damaged archive that has since left the window is still there to restore.
            let damaged = ctx
                .store
                .open_problems(Some(&[Operation::Verify]), Some(&[sel.id]))?
                .iter()
                .any(|p| p.problem.kind == Kind::ChecksumMismatch);
            if damaged {
                (
                    borg::check_command(&cx, repo, &loc.patterns, borg::Archives::All),
                    "the repository and every archive (damage was found before)".to_string(),
                )
            } else {
                let window = ctx.window_start();
                let recent = present.iter().filter(|b| b.ts >= window).count().max(1);
                (
                    borg::check_command(&cx, repo, &loc.patterns, borg::Archives::Last(recent)),
                    format!("the repository and the newest {recent} archives"),
                )
            }
        }
    };
    let started = Instant::now();
    let verdict = check_verdict(&cx, repo, &inv);
    let duration_ms = started.elapsed().as_millis() as u64;
    let name = repo.tool.name();
    let (result, detail, found) = match verdict {
        CheckVerdict::Passed => (
            VerifyResult::Passed,
            format!("{name} check of {scope}: no errors"),
            Vec::new(),
        ),
        CheckVerdict::Damaged(findings) => {
            let message = format!(
                "{name} check of {scope} found damage in the repository {}: {findings}; run `{name} check` by hand, repair the repository and make a new backup",
                repo.shown
            );
            let message = cx.secrets.redact(&message);
            let problem = Problem::new(
                Kind::ChecksumMismatch,
                Severity::Critical,
                &loc.name,
                message.clone(),
            );
            (VerifyResult::Failed, message, vec![problem])
        }
        CheckVerdict::Unjudged(e) => {
            tracing::warn!(location = %loc.name, "not verified: {e}");
            (VerifyResult::Error, e.0, Vec::new())
        }
    };
    let judged = result != VerifyResult::Error;
    ctx.store.record_verifications(
        ctx.run_id,
        [Verification {
            backup_id: newest.id,
            location_id: newest.location_id,
            method: VerifyMethod::RepositoryCheck(repo.tool),
            algo: None,
            result,
            bytes: 0,
            duration_ms,
            detail: Some(detail),
            first_checksum: None,
            hashed: judged,
        }],
        ctx.now,
    )?;
    // A check that gave no verdict (the repository could not be opened) leaves what an
    // earlier check found open: `--monitor` says why the repository cannot be read.
    ctx.store.sync_problems(
        Operation::Verify,
        Some(sel.id),
        &found,
        &|_: &Problem| judged,
        ctx.now,
    )?;
    tracing::info!(location = %loc.name, "{name} check of {scope}: {}", result.as_str());
    // Checked whatever came of it: one that gave no verdict (the repository locked by a
    // running backup, say) is counted as one that could not be read, as an unreadable
    // file is, so the summary says so rather than "0 checked".
    Ok(Checked {
        checked: 1,
        passed: u64::from(result == VerifyResult::Passed),
        failed: u64::from(result == VerifyResult::Failed),
    })
}

enum CheckVerdict {
    Passed,
    /// What the tool found, in its words.
    Damaged(String),
    Unjudged(RepoError),
}

fn check_verdict(cx: &ToolContext, repo: &ToolRepository, inv: &Invocation) -> CheckVerdict {
    let out = match cx.run_any(repo, inv) {
        Ok(out) => out,
        Err(e) => return CheckVerdict::Unjudged(e),
    };
    if out.success() {
        return CheckVerdict::Passed;
    }
    let failure = classify(repo.tool, out.code, &out.stderr);
    match repo.tool {
        Tool::Restic => {
            let report = restic::parse_check(&out.stdout, &out.stderr);
            let contains_errors = out.stderr.contains("repository contains errors");
            if report.errors == 0 && !contains_errors
                || failure != Failure::Other && report.findings.is_empty()
            {
                return CheckVerdict::Unjudged(cx.failed(repo, inv, &out));
            }
            let mut words = report.findings.join(" / ");
            if words.is_empty() {
                words = "the repository contains errors".into();
            }
            if !report.broken_packs.is_empty() {
                words.push_str(&format!(
                    " (damaged packs: {})",
                    report.broken_packs.join(", ")
                ));
            }
            CheckVerdict::Damaged(inv.shown(&words))
        }
        Tool::Borg => {
            // borg check exits 1 when it found problems; 2 is an error, which is damage
            // only when borg says so (an integrity error while reading an archive), not
            // when it could not open the repository or refused to.
            if out.code == Some(1) || failure == Failure::Other && borg::says_damaged(&out.stderr) {
                CheckVerdict::Damaged(inv.shown(&out.stderr))
            } else {
                CheckVerdict::Unjudged(cx.failed(repo, inv, &out))
            }
        }
    }
}

/// Have the tool restore backup `name` into the sandbox and account for what it wrote:
/// every entry against `restore.max_entries`, every byte against `restore.max_bytes`
/// (the tool is stopped as soon as either is passed), each file noted for `expect`.
/// Setuid/setgid bits are cleared and directories made removable afterwards.
pub fn restore_into(
    ctx: &RunContext,
    loc: &Location,
    repo: &ToolRepository,
    name: &str,
    sandbox: &Sandbox,
) -> Result<(), RestoreError> {
    let mut cx = ToolContext::new(ctx, loc, repo);
    cx.timeout = sandbox
        .deadline()
        .saturating_duration_since(Instant::now())
        .max(Duration::from_millis(1));
    let target = sandbox.root();
    let include = &loc.restore.include;
    let inv = match repo.tool {
        Tool::Restic => restic::restore_command(&cx, repo, name, target, include),
        Tool::Borg => borg::extract_command(&cx, repo, name, target, include),
    };
    let limit = sandbox.limit();
    let max_entries = loc.restore.max_entries;
    let mut over = None;
    // Walking takes longer as the restore grows: walk again only after ten times the
    // last walk's duration, so measuring costs at most a tenth of the time.
    let mut next_walk = Instant::now();
    let mut watch = || {
        if Instant::now() < next_walk {
            return None;
        }
        let started = Instant::now();
        let (bytes, entries) = measure(target);
        next_walk = Instant::now() + started.elapsed() * 10;
        if bytes > limit {
            over = Some(RestoreError::Limit { limit });
        } else if entries > u64::from(max_entries) {
            over = Some(RestoreError::Entries {
                limit: u64::from(max_entries),
            });
        }
        over.as_ref().map(|e| e.to_string())
    };
    let ran = inv.run(&bin_key(repo.tool), &mut watch);
    let result = match ran {
        Err(RunError::Stopped { .. }) => Err(over.take().unwrap_or(RestoreError::Limit { limit })),
        Err(RunError::TimedOut { .. }) => Err(sandbox.time_limit()),
        Err(e) => Err(RestoreError::Skipped(cx.secrets.redact(&e.to_string()))),
        Ok(out) if out.success() => Ok(()),
        Ok(out) => {
            let e = cx.failed(repo, &inv, &out);
            // restic ends a restore that met unreadable data with "There were N errors";
            // borg names the integrity error. Anything else is a repository it could not
            // use, which the test cannot judge.
            let damaged = match repo.tool {
                Tool::Restic => true,
                Tool::Borg => borg::says_damaged(&out.stderr),
            };
            match classify(repo.tool, out.code, &out.stderr) {
                Failure::Other if damaged => Err(RestoreError::Corrupt(format!(
                    "{} could not restore {} {name} completely: {}",
                    repo.tool.name(),
                    repo.tool.backup_word(),
                    inv.shown(&out.stderr)
                ))),
                _ => Err(RestoreError::Skipped(e.0)),
            }
        }
    };
    let walked = account(sandbox, target);
    result.and(walked)
}

/// Bytes (content plus [`ENTRY_COST`] per entry) and entries under `root`, for the
/// watcher while the tool writes.
fn measure(root: &Path) -> (u64, u64) {
    let mut bytes = 0u64;
    let mut entries = 0u64;
    for e in walkdir::WalkDir::new(root)
        .min_depth(1)
        .follow_links(false)
        .into_iter()
        .flatten()
    {
        entries += 1;
        let len = e
            .metadata()
            .map(|m| if m.is_file() { m.len() } else { 0 })
            .unwrap_or(0);
        bytes = bytes.saturating_add(len).saturating_add(ENTRY_COST);
    }
    (bytes, entries)
}

/// Walk what the tool restored (never following links): make it removable and without
/// setuid/setgid bits, count it against the sandbox's limits, and note each file for
/// `expect` by its path below the sandbox.
fn account(sandbox: &Sandbox, root: &Path) -> Result<(), RestoreError> {
    use std::os::unix::fs::PermissionsExt;
    let mut first_error = None;
    for entry in walkdir::WalkDir::new(root)
        .min_depth(1)
        .follow_links(false)
        .contents_first(false)
    {
        let Ok(entry) = entry else { continue };
        let Ok(meta) = entry.path().symlink_metadata() else {
            continue;
        };
        let ft = meta.file_type();
        if ft.is_dir() {
            // Restored directory modes (0500) must not keep the sandbox from being removed.
            let _ = std::fs::set_permissions(entry.path(), std::fs::Permissions::from_mode(0o700));
        } else if ft.is_file() && meta.permissions().mode() & 0o6000 != 0 {
            let mode = meta.permissions().mode() & 0o777;
            let _ = std::fs::set_permissions(entry.path(), std::fs::Permissions::from_mode(mode));
        }
        if first_error.is_some() {
            continue;
        }
        let counted = sandbox.count_entry().and_then(|()| {
            if ft.is_file() {
                sandbox.charge(meta.len())?;
                if let Ok(rel) = entry.path().strip_prefix(root) {
                    let rel = rel.to_string_lossy().into_owned();
                    sandbox.tally.note(&rel, true);
                }
            }
            Ok(())
        });
        if let Err(e) = counted {
            first_error = Some(e);
        }
    }
    first_error.map_or(Ok(()), Err)
}

#[cfg(test)]
mod tests {
    use super::subset;

    #[test]
    fn the_rotation_covers_the_repository_in_t_runs() {
        assert_eq!(subset(1.0, 0), (1, 1));
        assert_eq!(subset(1.0, 7), (1, 1));
        // 15% a run: 7 runs read everything once.
        let seen: Vec<u32> = (0..7).map(|p| subset(0.15, p).0).collect();
        assert_eq!(seen, [1, 2, 3, 4, 5, 6, 7]);
        assert_eq!(subset(0.15, 7), (1, 7), "then it starts over");
        assert_eq!(subset(0.5, 3), (2, 2));
        assert_eq!(subset(0.001, 0).1, 100, "at most 100 subsets");
    }
}
