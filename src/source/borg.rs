//! borg repositories: each archive is a backup. What borg is asked (`list`, `info`,
//! `check`, `extract`), how it is told the repository and its passphrase (the
//! environment only: `BORG_PASSCOMMAND` reads the passphrase file), the answers it may
//! never ask for (it has no standard input), and what its answers mean.
//!
//! borg 1.x prints times in the local time of its process without a zone. It runs with
//! `TZ=UTC`, so those times are UTC; a time that carries an offset is read with it.
//!
//! Not for: judging archives (`monitor`) or running a process (`tool`).

use super::repository::{Failure, ListedBackup, RepoError, ToolContext};
use super::tool::Invocation;
use crate::config::{RepoSecret, ToolRepository};
use chrono::{DateTime, NaiveDateTime, Utc};
use serde::Deserialize;
use std::collections::HashMap;
use std::ffi::OsString;

#[derive(Debug, Deserialize)]
struct ArchiveList {
    archives: Vec<ListedArchive>,
}

/// One archive of `borg list --json`.
#[derive(Debug, Clone, Deserialize)]
pub struct ListedArchive {
    pub name: String,
    pub id: String,
    /// borg 1.2 writes `time` and `start`; either is the archive's start.
    #[serde(default)]
    pub time: Option<String>,
    #[serde(default)]
    pub start: Option<String>,
}

#[derive(Debug, Deserialize)]
struct InfoList {
    archives: Vec<ArchiveInfo>,
}

#[derive(Debug, Deserialize)]
struct ArchiveInfo {
    name: String,
    stats: ArchiveStats,
}

#[derive(Debug, Deserialize)]
struct ArchiveStats {
    original_size: u64,
}

/// A borg time: `2026-12-01T02:00:00.000000` (UTC, as borg runs with `TZ=UTC`), or
/// with an offset.
pub fn parse_time(text: &str) -> Result<DateTime<Utc>, String> {
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Ok(t.with_timezone(&Utc));
    }
    NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f")
        .map(|t| t.and_utc())
        .map_err(|_| {
            format!(
                "borg gave an archive time that is not a time: \"{}\"",
                crate::problem::one_line(&crate::config::values::shown(text))
            )
        })
}

/// The archives of `borg list --json`, with their times.
pub fn parse_list(json: &[u8]) -> Result<Vec<(ListedArchive, DateTime<Utc>)>, String> {
    let list: ArchiveList =
        super::repository::parse_json(json, "borg's archive list is not what borg writes")?;
    // A name borg cannot give an archive (empty, or with a `/`) is left out, not the
    // whole list: the others are still the location's. Control characters borg allows;
    // they are escaped wherever the name is shown.
    let (archives, impossible): (Vec<_>, Vec<_>) = list
        .archives
        .into_iter()
        .partition(|a| !a.name.is_empty() && !a.name.contains('/'));
    if let Some(first) = impossible.first() {
        tracing::warn!(
            "borg's archive list holds {} name(s) no archive can have (the first: \"{}\"): left out",
            impossible.len(),
            crate::problem::one_line(&crate::config::values::shown(&first.name))
        );
    }
    archives
        .into_iter()
        .map(|a| {
            let time = a.time.as_deref().or(a.start.as_deref()).ok_or_else(|| {
                format!(
                    "borg gave archive \"{}\" without a time",
                    crate::problem::one_line(&crate::config::values::shown(&a.name))
                )
            })?;
            let t = parse_time(time)?;
            Ok((a, t))
        })
        .collect()
}

/// Original sizes by archive name, from `borg info --json`.
pub fn parse_info(json: &[u8]) -> Result<HashMap<String, u64>, String> {
    let info: InfoList =
        super::repository::parse_json(json, "borg's archive information is not what borg writes")?;
    Ok(info
        .archives
        .into_iter()
        .map(|a| (a.name, a.stats.original_size))
        .collect())
}

/// Why borg failed, from its words (borg 1.2 exits 2 for every error).
pub fn classify(_code: Option<i32>, stderr: &str) -> Failure {
    let lower = stderr.to_ascii_lowercase();
    if lower.contains("passphrase supplied") && lower.contains("incorrect") {
        Failure::WrongPassword
    } else if lower.contains("can not acquire a passphrase")
        || lower.contains("borg_passphrase is not set")
    {
        Failure::NoPassword
    } else if let Some(error) = crash(stderr) {
        Failure::Crashed(error)
    } else if lower.contains("failed to create/acquire the lock") || lower.contains("lock timeout")
    {
        Failure::Locked
    } else if lower.contains("does not exist") || lower.contains("is not a valid repository") {
        Failure::NoRepository
    } else {
        Failure::Other
    }
}

/// The error a Python traceback in borg's words ends with (`UnicodeDecodeError: …`):
/// what to show of a crash instead of the traceback and borg's platform report.
fn crash(stderr: &str) -> Option<String> {
    if !stderr.contains("Traceback (most recent call last)") {
        return None;
    }
    stderr
        .lines()
        .rev()
        .filter(|l| !l.starts_with(char::is_whitespace))
        .filter_map(|l| {
            let (name, _) = l.split_once(": ")?;
            let is_error = (name.ends_with("Error") || name.ends_with("Exception"))
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '_');
            is_error.then(|| l.trim().to_string())
        })
        .next()
}

/// Whether borg's words report damage (rather than a repository it could not open).
pub fn says_damaged(stderr: &str) -> bool {
    let lower = stderr.to_ascii_lowercase();
    [
        "integrity",
        "checksum mismatch",
        "corrupt",
        "errors found",
        "missing",
    ]
    .iter()
    .any(|w| lower.contains(w))
}

/// `cat -- 'FILE'` for `BORG_PASSCOMMAND`, which borg splits like a shell.
fn passcommand(file: &std::path::Path) -> String {
    let quoted = file.display().to_string().replace('\'', r"'\''");
    format!("cat -- '{quoted}'")
}

/// borg with the repository and its passphrase in the environment, a private base
/// directory, times in UTC, and every question answered in advance.
pub fn command(cx: &ToolContext, repo: &ToolRepository, args: &[&str]) -> Invocation {
    let mut inv = Invocation::new(&repo.bin, cx.timeout, cx.secrets.clone())
        .env("BORG_REPO", &repo.repository)
        .env("BORG_BASE_DIR", cx.state_dir.join("borg"))
        .env("TZ", "UTC")
        .env("BORG_RELOCATED_REPO_ACCESS_IS_OK", "yes")
        .env("BORG_CHECK_I_KNOW_WHAT_I_AM_DOING", "NO")
        .env("BORG_DELETE_I_KNOW_WHAT_I_AM_DOING", "NO")
        .env("BORG_DISPLAY_PASSPHRASE", "no");
    inv = match &repo.secret {
        RepoSecret::File(f) => inv
            .env("BORG_PASSCOMMAND", passcommand(f))
            // A repository with a passphrase configured that turns out unencrypted is
            // refused: someone may have swapped it.
            .env("BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK", "no"),
        // No passphrase configured: the user says the repository is unencrypted.
        RepoSecret::None | RepoSecret::Command(_) => {
            inv.env("BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK", "yes")
        }
    };
    for (k, v) in &repo.env {
        inv = inv.env(k, v);
    }
    for a in args {
        inv = inv.arg(*a);
    }
    inv
}

/// Every archive, with its original size: recorded already, or from one `borg info`
/// over the archives not seen before.
pub fn list(
    cx: &ToolContext,
    repo: &ToolRepository,
    ours: &dyn Fn(&str) -> bool,
    known_size: &dyn Fn(&str) -> Option<u64>,
) -> Result<Vec<ListedBackup>, RepoError> {
    let out = cx.run(repo, command(cx, repo, &["list", "--json"]))?;
    let mut archives = parse_list(&out.stdout).map_err(|e| cx.garbled(repo, e))?;
    archives.sort_by_key(|(_, t)| *t);
    // `--last N` below counts every archive from the first new one of ours.
    let all: Vec<String> = archives.iter().map(|(a, _)| a.name.clone()).collect();
    archives.retain(|(a, _)| ours(&a.name));
    let first_new = archives
        .iter()
        .find(|(a, _)| known_size(&a.name).is_none())
        .and_then(|(a, _)| all.iter().position(|n| *n == a.name));
    let sizes = match first_new {
        None => HashMap::new(),
        Some(i) => {
            // borg sorts `--last` by time too: the newest archives from the first new one.
            let last = (all.len() - i).to_string();
            let out = cx.run(
                repo,
                command(cx, repo, &["info", "--json", "--last", &last]),
            )?;
            parse_info(&out.stdout).map_err(|e| cx.garbled(repo, e))?
        }
    };
    Ok(archives
        .into_iter()
        .map(|(a, time)| ListedBackup {
            size: known_size(&a.name).or_else(|| sizes.get(&a.name).copied()),
            name: a.name,
            time,
        })
        .collect())
}

/// Which of a location's archives `borg check` reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Archives {
    /// The newest N (at least one).
    Last(usize),
    /// Every one.
    All,
}

/// `borg check` of the repository and `archives` (of the one glob in `patterns`, when
/// there is one: `--glob-archives`).
pub fn check_command(
    cx: &ToolContext,
    repo: &ToolRepository,
    patterns: &[String],
    archives: Archives,
) -> Invocation {
    let mut inv = match archives {
        Archives::Last(n) => command(cx, repo, &["check", "--last", &n.max(1).to_string()]),
        Archives::All => command(cx, repo, &["check"]),
    };
    if let [glob] = patterns
        && glob != "*"
    {
        inv = inv.arg("--glob-archives").arg(glob.as_str());
    }
    inv
}

/// `borg extract ::ARCHIVE [PATH…]`, run in the sandbox directory.
pub fn extract_command(
    cx: &ToolContext,
    repo: &ToolRepository,
    archive: &str,
    target: &std::path::Path,
    include: &[String],
) -> Invocation {
    let mut inv = command(cx, repo, &["extract"]).arg(format!("::{archive}"));
    for p in include {
        inv = inv.arg(OsString::from(p.trim_start_matches('/')));
    }
    inv.cwd = Some(target.to_path_buf());
    inv
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_without_a_zone_are_utc_and_offsets_are_kept() {
        assert_eq!(
            parse_time("2026-12-01T02:00:00.000000")
                .unwrap()
                .to_rfc3339(),
            "2026-12-01T02:00:00+00:00"
        );
        assert_eq!(
            parse_time("2026-12-01T02:00:00+01:00")
                .unwrap()
                .to_rfc3339(),
            "2026-12-01T01:00:00+00:00"
        );
        assert!(parse_time("yesterday").is_err());
    }

    #[test]
    fn a_list_of_borg_1_2_is_read() {
        let json = br#"{"archives":[{"archive":"a1","barchive":"a1","id":"c684","name":"a1","start":"2026-12-01T02:00:00.000000","time":"2026-12-01T02:00:00.000000"}],"encryption":{"mode":"repokey"},"repository":{"id":"38","last_modified":"2026-12-05T00:18:20.000000","location":"/r"}}"#;
        let list = parse_list(json).unwrap();
        assert_eq!(list[0].0.name, "a1");
        assert_eq!(list[0].1.to_rfc3339(), "2026-12-01T02:00:00+00:00");
    }

    #[test]
    fn hostile_lists_are_errors() {
        for bad in [
            &br#"{"archives":[{"name":"a","id":"1"}]}"#[..],
            br#"{"archives":[{"name":"a","id":"1","time":"soon"}]}"#,
            br#"{"archives":{}}"#,
            b"[",
        ] {
            assert!(parse_list(bad).is_err(), "{}", String::from_utf8_lossy(bad));
        }
        let info = br#"{"archives":[{"name":"a1","stats":{"compressed_size":98,"deduplicated_size":496,"nfiles":2,"original_size":12}}]}"#;
        assert_eq!(parse_info(info).unwrap()["a1"], 12);
    }

    #[test]
    fn an_impossible_name_is_left_out_and_the_rest_kept() {
        // A name with a `/` (borg refuses it) and one with an escape sequence (borg
        // allows it): one archive of three was the whole location's unavailability.
        let json = br#"{"archives":[{"name":"web-1","id":"1","time":"2026-12-01T02:00:00"},{"name":"../x","id":"2","time":"2026-12-01T02:00:00"},{"name":"web-\u001b[31mred","id":"3","time":"2026-12-02T02:00:00"}]}"#;
        let list = parse_list(json).unwrap();
        let names: Vec<&str> = list.iter().map(|(a, _)| a.name.as_str()).collect();
        assert_eq!(names, ["web-1", "web-\u{1b}[31mred"]);
    }

    #[test]
    fn a_missing_passphrase_and_a_crash_are_told_apart() {
        assert_eq!(
            classify(
                Some(2),
                "Enter passphrase for key /r: \ncan not acquire a passphrase: BORG_PASSPHRASE is not set."
            ),
            Failure::NoPassword
        );
        let crash = "Exception ignored in: <function Repository.__del__>\nTraceback (most recent call last):\n  File \"x.py\", line 1, in f\nAssertionError: cleanup\nLocal Exception\nTraceback (most recent call last):\n  File \"y.py\", line 2, in g\nUnicodeDecodeError: 'utf-8' codec can't decode byte 0x8d\n\nPlatform: Linux vm\n";
        assert_eq!(
            classify(Some(2), crash),
            Failure::Crashed("UnicodeDecodeError: 'utf-8' codec can't decode byte 0x8d".into())
        );
    }

    #[test]
    fn failures_by_words() {
        assert_eq!(
            classify(
                Some(2),
                "passphrase supplied in BORG_PASSPHRASE, by BORG_PASSCOMMAND or via BORG_PASSPHRASE_FD is incorrect."
            ),
            Failure::WrongPassword
        );
        assert_eq!(
            classify(Some(2), "Repository /nonexist does not exist."),
            Failure::NoRepository
        );
        assert_eq!(
            classify(
                Some(2),
                "Failed to create/acquire the lock /r/lock.exclusive (timeout)."
            ),
            Failure::Locked
        );
        assert_eq!(
            classify(Some(2), "Cache initialization aborted"),
            Failure::Other
        );
    }

    #[test]
    fn the_passcommand_quotes_the_file() {
        assert_eq!(
            passcommand(std::path::Path::new("/k/it's key")),
            r"cat -- '/k/it'\''s key'"
        );
    }
}
