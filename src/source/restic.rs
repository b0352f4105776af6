//! restic repositories: each snapshot is a backup. What restic is asked (`snapshots`,
//! `stats`, `check`, `restore`), how it is told the repository and its password (the
//! environment only), and what its answers mean: the JSON parsed strictly but tolerant
//! of fields newer versions add, its exit codes and words mapped to why a repository
//! cannot be opened.
//!
//! Not for: judging snapshots (`monitor`) or running a process (`tool`).

use super::repository::{Failure, ListedBackup, ToolContext};
use super::tool::Invocation;
use crate::config::{RepoSecret, ToolRepository};
use chrono::{DateTime, FixedOffset, Utc};
use serde::Deserialize;
use std::ffi::OsString;
use std::path::Path;

/// One snapshot of `restic snapshots --json`.
#[derive(Debug, Clone, Deserialize)]
pub struct Snapshot {
    pub time: DateTime<FixedOffset>,
    pub id: String,
    #[serde(default)]
    pub short_id: Option<String>,
    #[serde(default)]
    pub hostname: Option<String>,
    #[serde(default)]
    pub paths: Vec<String>,
    #[serde(default)]
    pub tags: Option<Vec<String>>,
    /// restic 0.17 and later.
    #[serde(default)]
    pub summary: Option<SnapshotSummary>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct SnapshotSummary {
    pub total_bytes_processed: u64,
}

impl Snapshot {
    /// The name it is recorded under: its short id (what restic prints and accepts).
    pub fn name(&self) -> String {
        match &self.short_id {
            Some(s) if !s.is_empty() => s.clone(),
            _ => self.id.chars().take(8).collect(),
        }
    }

    /// Host, paths and tags, for the log.
    pub fn describe(&self) -> String {
        let tags = self.tags.as_deref().unwrap_or_default().join(",");
        format!(
            "host {} paths {} tags [{tags}]",
            self.hostname.as_deref().unwrap_or("?"),
            self.paths.join(",")
        )
    }
}

/// The name each snapshot is recorded under: its short id, or its full id when another
/// snapshot shares the short one (the store keys backups by name).
fn names(snapshots: &[Snapshot]) -> Vec<String> {
    let mut count = std::collections::HashMap::new();
    for s in snapshots {
        *count.entry(s.name()).or_insert(0) += 1;
    }
    snapshots
        .iter()
        .map(|s| {
            let short = s.name();
            if count[&short] > 1 {
                s.id.clone()
            } else {
                short
            }
        })
        .collect()
}

/// `restic stats --json` (restore-size mode).
#[derive(Debug, Clone, Deserialize)]
pub struct Stats {
    pub total_size: u64,
}

/// The snapshots of `restic snapshots --json`; an id must be hex, as restic writes it.
pub fn parse_snapshots(json: &[u8]) -> Result<Vec<Snapshot>, String> {
    let snapshots: Vec<Snapshot> = super::repository::parse_json::<Option<Vec<Snapshot>>>(
        json,
        "restic's snapshot list is not what restic writes",
    )?
    .unwrap_or_default();
    for s in &snapshots {
        let hex =
            |t: &str| !t.is_empty() && t.len() <= 64 && t.bytes().all(|b| b.is_ascii_hexdigit());
        if !hex(&s.id) || s.short_id.as_deref().is_some_and(|t| !hex(t)) {
            return Err(format!(
                "restic's snapshot list holds an id that is not hexadecimal: {:?}",
                crate::config::values::shown(&s.id)
            ));
        }
    }
    Ok(snapshots)
}

pub fn parse_stats(json: &[u8]) -> Result<Stats, String> {
    super::repository::parse_json(json, "restic's statistics are not what restic writes")
}

/// One line of `restic check --json` (restic 0.18 and later).
#[derive(Debug, Deserialize)]
#[serde(tag = "message_type", rename_all = "snake_case")]
enum CheckMessage {
    Summary {
        num_errors: u64,
        #[serde(default)]
        broken_packs: Option<Vec<String>>,
    },
    Error {
        #[serde(default)]
        message: Option<String>,
    },
    #[serde(other)]
    Other,
}

/// What `restic check` said about the repository's data.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct CheckReport {
    /// Errors found (from the JSON summary when restic gives one).
    pub errors: u64,
    /// The first few things it found wrong, in its words.
    pub findings: Vec<String>,
    pub broken_packs: Vec<String>,
}

/// Read what `restic check --json` printed: JSON lines on restic 0.18 and later, text
/// before. Lines restic adds later are ignored.
pub fn parse_check(stdout: &[u8], stderr: &str) -> CheckReport {
    let mut report = CheckReport::default();
    let text = String::from_utf8_lossy(stdout);
    let mut summary = None;
    for line in text.lines().chain(stderr.lines()) {
        let line = line.trim();
        if line.starts_with('{') {
            match serde_json::from_str::<CheckMessage>(line) {
                Ok(CheckMessage::Summary {
                    num_errors,
                    broken_packs,
                }) => {
                    summary = Some(num_errors);
                    report.broken_packs = broken_packs.unwrap_or_default();
                }
                Ok(CheckMessage::Error { message }) => {
                    report.findings.extend(message);
                }
                _ => {}
            }
        } else if is_finding(line) {
            report.findings.push(line.to_string());
        }
    }
    // What was found before restic's closing "repository contains errors".
    report.findings.sort_by_key(|f| {
        f.to_ascii_lowercase()
            .contains("repository contains errors")
    });
    report.findings.truncate(5);
    report.errors = summary.unwrap_or(report.findings.len() as u64);
    report
}

/// A line of restic's text output that reports damage.
fn is_finding(line: &str) -> bool {
    let lower = line.to_ascii_lowercase();
    lower.starts_with("error")
        || lower.contains("does not match")
        || lower.contains("pack ")
            && (lower.contains("damaged")
                || lower.contains("not found")
                || lower.contains("does not exist"))
        || lower.contains("repository contains errors")
}

/// Why restic failed, from its exit code (restic 0.17 and later) or its words.
pub fn classify(code: Option<i32>, stderr: &str) -> Failure {
    let lower = stderr.to_ascii_lowercase();
    match code {
        Some(10) => return Failure::NoRepository,
        Some(11) => return Failure::Locked,
        Some(12) => return Failure::WrongPassword,
        _ => {}
    }
    if lower.contains("wrong password") || lower.contains("no key found") {
        Failure::WrongPassword
    } else if lower.contains("repository is already locked")
        || lower.contains("unable to create lock")
    {
        Failure::Locked
    } else if lower.contains("unable to open config file")
        || lower.contains("is there a repository at the following location")
        || lower.contains("repository does not exist")
    {
        Failure::NoRepository
    } else {
        Failure::Other
    }
}

/// restic with the repository and its password in the environment.
pub fn command(cx: &ToolContext, repo: &ToolRepository, args: &[&str]) -> Invocation {
    let mut inv = Invocation::new(&repo.bin, cx.timeout, cx.secrets.clone())
        .env("RESTIC_REPOSITORY", &repo.repository)
        .env("RESTIC_CACHE_DIR", cx.state_dir.join("restic-cache"))
        .env("RESTIC_PROGRESS_FPS", "0.016");
    inv = match &repo.secret {
        RepoSecret::File(f) => inv.env("RESTIC_PASSWORD_FILE", f),
        RepoSecret::Command(c) => inv.env("RESTIC_PASSWORD_COMMAND", c),
        RepoSecret::None => inv,
    };
    for (k, v) in &repo.env {
        inv = inv.env(k, v);
    }
    for a in args {
        inv = inv.arg(*a);
    }
    inv
}

/// Snapshots from before restic 0.17 whose size is asked for (`restic stats`) in one
/// run, newest first; the others wait for later runs (a first run over years of
/// snapshots would otherwise take hours).
pub const STATS_PER_RUN: usize = 20;

/// Every snapshot, with its size: the summary's `total_bytes_processed` (restic 0.17 and
/// later), the size already recorded, or `restic stats` (older snapshots, once, at most
/// [`STATS_PER_RUN`] a run; a snapshot still waiting has no size and is not recorded
/// yet).
pub fn list(
    cx: &ToolContext,
    repo: &ToolRepository,
    known_size: &dyn Fn(&str) -> Option<u64>,
) -> Result<Vec<ListedBackup>, super::repository::RepoError> {
    let out = cx.run(repo, snapshots_command(cx, repo))?;
    let mut snapshots = parse_snapshots(&out.stdout).map_err(|e| cx.garbled(repo, e))?;
    snapshots.sort_by_key(|s| std::cmp::Reverse(s.time));
    let names = names(&snapshots);
    let mut asked = 0;
    let mut listed = Vec::with_capacity(snapshots.len());
    for (s, name) in snapshots.into_iter().zip(names) {
        let size = match (&s.summary, known_size(&name)) {
            (Some(summary), _) => Some(summary.total_bytes_processed),
            (None, Some(size)) => Some(size),
            (None, None) if asked < STATS_PER_RUN => {
                asked += 1;
                let out = cx.run(
                    repo,
                    command(cx, repo, &["stats", "--json", "--no-lock", &s.id]),
                )?;
                let stats = parse_stats(&out.stdout).map_err(|e| cx.garbled(repo, e))?;
                Some(stats.total_size)
            }
            (None, None) => None,
        };
        tracing::debug!(
            "restic snapshot {name}: {}, {} bytes",
            s.describe(),
            size.map_or("? (asked on a later run)".to_string(), |n| n.to_string())
        );
        listed.push(ListedBackup {
            name,
            time: s.time.with_timezone(&Utc),
            size,
        });
    }
    Ok(listed)
}

/// `restic snapshots --json`, narrowed to the location's host, tags and paths.
fn snapshots_command(cx: &ToolContext, repo: &ToolRepository) -> Invocation {
    let mut inv = command(cx, repo, &["snapshots", "--json", "--no-lock"]);
    let filter = &repo.snapshots;
    if let Some(host) = &filter.host {
        inv = inv.arg("--host").arg(host.as_str());
    }
    if !filter.tags.is_empty() {
        inv = inv.arg("--tag").arg(filter.tags.join(","));
    }
    for p in &filter.paths {
        inv = inv.arg("--path").arg(p.as_str());
    }
    inv
}

/// `restic check --read-data-subset=n/t`.
pub fn check_command(cx: &ToolContext, repo: &ToolRepository, n: u32, t: u32) -> Invocation {
    let subset = format!("--read-data-subset={n}/{t}");
    command(cx, repo, &["check", "--json", &subset])
}

/// `restic restore <id> --target <dir>`, with `restore.include` paths.
pub fn restore_command(
    cx: &ToolContext,
    repo: &ToolRepository,
    id: &str,
    target: &Path,
    include: &[String],
) -> Invocation {
    let mut inv = command(cx, repo, &["restore", id]);
    inv = inv.arg("--target").arg(target.as_os_str());
    for p in include {
        inv = inv.arg("--include").arg(OsString::from(p));
    }
    inv
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> Vec<u8> {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/restic")
            .join(name);
        std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }

    #[test]
    fn snapshots_of_restic_0_17_carry_their_size() {
        let s = parse_snapshots(&fixture("snapshots-0.17.json")).unwrap();
        assert_eq!(s.len(), 2);
        assert_eq!(s[0].name(), "3f8a41c2");
        assert_eq!(
            s[0].summary.as_ref().unwrap().total_bytes_processed,
            734_003_200
        );
        assert_eq!(
            s[0].time.with_timezone(&Utc).to_rfc3339(),
            "2026-12-01T01:00:03.123456789+00:00"
        );
        assert_eq!(s[0].tags.as_deref().unwrap(), ["nightly"]);
        assert!(s[1].summary.is_none(), "an older snapshot has no summary");
    }

    #[test]
    fn a_shared_short_id_is_told_apart_by_the_full_id() {
        let json = br#"[{"time":"2026-12-01T02:00:00Z","id":"abcdef0011","short_id":"abcdef00"},
                        {"time":"2026-12-02T02:00:00Z","id":"abcdef0022","short_id":"abcdef00"},
                        {"time":"2026-12-03T02:00:00Z","id":"1234567800","short_id":"12345678"}]"#;
        let s = parse_snapshots(json).unwrap();
        assert_eq!(names(&s), ["abcdef0011", "abcdef0022", "12345678"]);
    }

    #[test]
    fn snapshots_of_restic_0_14_have_no_summary() {
        let json = br#"[{"time":"2026-12-01T02:00:00Z","tree":"fe8d","paths":["/d"],"hostname":"h1","username":"root","tags":["nightly"],"id":"524a7e614dacea049195aad570dc1e8093c3da0049274e73340d325b0346054c","short_id":"524a7e61"}]"#;
        let s = parse_snapshots(json).unwrap();
        assert_eq!(s[0].name(), "524a7e61");
        assert!(s[0].summary.is_none());
        assert_eq!(parse_snapshots(b"null").unwrap().len(), 0);
        assert_eq!(parse_snapshots(b"[]").unwrap().len(), 0);
    }

    #[test]
    fn hostile_snapshot_lists_are_errors() {
        for bad in [
            &b"{"[..],
            b"[{\"time\":\"yesterday\",\"id\":\"ab\"}]",
            b"[{\"time\":\"2026-12-01T02:00:00Z\",\"id\":\"../../etc\"}]",
            b"[{\"time\":\"2026-12-01T02:00:00Z\",\"id\":\"ab\",\"summary\":{\"total_bytes_processed\":-1}}]",
            b"\"text\"",
        ] {
            assert!(parse_snapshots(bad).is_err(), "{}", String::from_utf8_lossy(bad));
        }
        assert_eq!(
            parse_stats(br#"{"total_size":12,"total_file_count":3,"snapshots_count":1}"#)
                .unwrap()
                .total_size,
            12
        );
        assert!(parse_stats(b"{}").is_err());
    }

    #[test]
    fn check_json_of_restic_0_18_is_read() {
        let ok = parse_check(&fixture("check-ok.jsonl"), "");
        assert_eq!(ok.errors, 0);
        let damaged = parse_check(&fixture("check-damaged.jsonl"), "");
        assert_eq!(damaged.errors, 1);
        assert_eq!(damaged.broken_packs.len(), 1);
        assert!(
            damaged.findings[0].contains("does not match"),
            "{damaged:?}"
        );
    }

    #[test]
    fn check_text_of_older_restic_is_read() {
        let text = "check all packs\nPack ID does not match, want 1234, got 5678\nFatal: repository contains errors\n";
        let r = parse_check(b"", text);
        assert!(r.errors >= 1);
        assert!(r.findings[0].starts_with("Pack ID does not match"));
        assert_eq!(parse_check(b"no errors were found\n", "").errors, 0);
    }

    #[test]
    fn a_missing_pack_is_quoted_before_restics_closing_line() {
        // restic 0.16 after a pack file was deleted from data/.
        let stderr = "Fatal: repository contains errors\n";
        let stdout = b"load indexes\ncheck all packs\npack 09ecb222: does not exist\n";
        let r = parse_check(stdout, stderr);
        assert_eq!(r.findings[0], "pack 09ecb222: does not exist", "{r:?}");
        assert!(r.errors >= 1);
    }

    #[test]
    fn failures_by_code_and_by_words() {
        assert_eq!(classify(Some(10), ""), Failure::NoRepository);
        assert_eq!(classify(Some(11), ""), Failure::Locked);
        assert_eq!(classify(Some(12), ""), Failure::WrongPassword);
        assert_eq!(
            classify(Some(1), "Fatal: wrong password or no key found"),
            Failure::WrongPassword
        );
        assert_eq!(
            classify(
                Some(1),
                "Fatal: unable to open config file: stat /x/config: no such file or directory\nIs there a repository at the following location?"
            ),
            Failure::NoRepository
        );
        assert_eq!(
            classify(
                Some(1),
                "unable to create lock in backend: repository is already locked exclusively by PID 1"
            ),
            Failure::Locked
        );
        assert_eq!(classify(Some(3), "something new"), Failure::Other);
    }
}
