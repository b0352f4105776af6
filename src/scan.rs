//! Discovering backup files under a location: globs, excludes, recursion,
//! sidecar exclusion, timestamps, and whether a file has settled — and [`open_found`],
//! how every later reader (verify, sidecars, restore) opens what was found. Reads the
//! filesystem only; recording is the store's job and judging is `monitor`'s. The one
//! exception, [`rederive`], asks the store to re-derive recorded timestamps when the
//! settings they were derived with have changed.

use crate::config::Location;
use crate::store::Store;
use crate::timestamp::{self, TimestampSource};
use chrono::{DateTime, TimeZone, Utc};
use chrono_tz::Tz;
use globset::{GlobBuilder, GlobSet, GlobSetBuilder};
use std::fs::{File, Metadata};
use std::path::Path;

/// A file a scan found under a location.
#[derive(Debug, Clone, PartialEq)]
pub struct FoundFile {
    /// Relative to the location's path, `/`-separated.
    pub path: String,
    pub size: u64,
    pub mtime_ns: i64,
    pub ts: DateTime<Utc>,
    /// Where the timestamp came from.
    pub ts_source: crate::timestamp::TimestampSource,
    /// Modified longer ago than `settle`: safe to record.
    pub settled: bool,
}

/// Open a file found under a location for reading, with the metadata of what was
/// opened. Non-blocking: a FIFO (or device) put where a backup or sidecar was would
/// otherwise block the run on a writer that never comes; reads of a regular file are
/// not affected by O_NONBLOCK. Never through a symbolic link (`O_NOFOLLOW`): the scan
/// records only regular files, so a link there now was put in their place, perhaps
/// pointing at a file this user may read and its owner may not. Callers check
/// `is_file()` on the metadata and compare it with what the scan recorded.
pub fn open_found(path: &Path) -> std::io::Result<(File, Metadata)> {
    use std::os::unix::fs::OpenOptionsExt;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOFOLLOW)
        .open(path)
        .map_err(|e| match e.raw_os_error() {
            Some(libc::ELOOP) => std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "it is a symbolic link, not a regular file: not followed",
            ),
            _ => e,
        })?;
    let meta = file.metadata()?;
    Ok((file, meta))
}

/// Sidecar checksum files are evidence about backups, never backups themselves.
pub fn is_sidecar(base_name: &str) -> bool {
    matches!(base_name, "SHA256SUMS" | "MD5SUMS" | "B3SUMS")
        || [".sha256", ".md5", ".b3"]
            .iter()
            .any(|ext| base_name.ends_with(ext))
}

/// Globs: a glob without `/` matches the base name at any depth; a glob with
/// `/` matches the whole relative path.
#[derive(Debug, Clone)]
pub struct PathMatcher {
    base: GlobSet,
    full: GlobSet,
}

impl PathMatcher {
    pub fn new(globs: &[String]) -> Result<PathMatcher, globset::Error> {
        let mut base = GlobSetBuilder::new();
        let mut full = GlobSetBuilder::new();
        for g in globs {
            let glob = GlobBuilder::new(g).literal_separator(true).build()?;
            if g.contains('/') {
                full.add(glob);
            } else {
                base.add(glob);
            }
        }
        Ok(PathMatcher {
            base: base.build()?,
            full: full.build()?,
        })
    }

    /// `rel` is `/`-separated and relative to the root.
    pub fn is_match(&self, rel: &str) -> bool {
        let base_name = rel.rsplit('/').next().unwrap_or(rel);
        self.base.is_match(base_name) || self.full.is_match(rel)
    }
}

/// Why a location could not be scanned.
#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    #[error("{path} does not exist")]
    Missing { path: String },
    #[error("{path} is not a directory")]
    NotADirectory { path: String },
    #[error("{path} cannot be read: {source}")]
    Unreadable {
        path: String,
        source: std::io::Error,
    },
}

/// The files of one location and what went wrong on the way.
#[derive(Debug, Default)]
pub struct ScanResult {
    pub files: Vec<FoundFile>,
    /// Subdirectories or files that could not be read (the rest was still scanned),
    /// relative to the location like `files[].path`.
    pub unreadable: Vec<String>,
    /// Where each file's timestamp came from, in the order of `files`.
    pub sources: Vec<TimestampSource>,
}

/// A file's timestamp by its location's settings, and where it came from.
pub fn timestamp_of(
    loc: &Location,
    base_name: &str,
    mtime: DateTime<Utc>,
    tz: &Tz,
) -> (DateTime<Utc>, TimestampSource) {
    timestamp::derive(
        loc.timestamp,
        base_name,
        loc.filename_format.as_deref(),
        mtime,
        tz,
    )
}

/// The mtime a store records (nanoseconds since the epoch) as a time.
pub fn mtime_from_ns(ns: i64) -> DateTime<Utc> {
    Utc.timestamp_nanos(ns)
}

/// When the location's timestamp settings (`timestamp`, `filename_format`, the time
/// zone, or how names are read) differ from those its recorded backups were derived with,
/// derive every recorded timestamp again, so that what is judged next stands on the
/// current settings. Returns how many timestamps changed.
pub fn rederive(store: &Store, location_id: i64, loc: &Location, tz: &Tz) -> anyhow::Result<usize> {
    let settings =
        timestamp::settings_fingerprint(loc.timestamp, loc.filename_format.as_deref(), tz);
    if store.timestamp_settings(location_id)?.as_deref() == Some(settings.as_str()) {
        return Ok(0);
    }
    let changed = store.rederive_timestamps(location_id, &settings, |path, mtime_ns| {
        let base_name = path.rsplit('/').next().unwrap_or(path);
        let (ts, source) = timestamp_of(loc, base_name, mtime_from_ns(mtime_ns), tz);
        (ts, source.stored())
    })?;
    if changed > 0 {
        tracing::info!(
            location = %loc.name,
            "the timestamp settings changed: derived {changed} recorded backup timestamps again"
        );
    }
    Ok(changed)
}

/// A file's modification time in nanoseconds since the epoch, as the store records it.
pub fn mtime_ns(meta: &std::fs::Metadata) -> i64 {
    use std::os::unix::fs::MetadataExt;
    meta.mtime()
        .saturating_mul(1_000_000_000)
        .saturating_add(meta.mtime_nsec())
}

fn mtime_of(meta: &std::fs::Metadata) -> (i64, DateTime<Utc>) {
    use std::os::unix::fs::MetadataExt;
    let ns = mtime_ns(meta);
    let t = Utc
        .timestamp_opt(meta.mtime(), meta.mtime_nsec() as u32)
        .single()
        .unwrap_or_default();
    (ns, t)
}

/// How far an mtime may lie in the future and still be "just written" (the same
/// tolerance as `future_timestamp`).
pub const CLOCK_TOLERANCE: chrono::Duration = chrono::Duration::minutes(5);

/// Whether a file modified at `mtime` is done being written. An mtime up to
/// [`CLOCK_TOLERANCE`] ahead of `now` counts as written just now (small clock drift
/// between hosts); one further ahead is a finished backup from a host with a skewed
/// clock — recorded, and judged `future_timestamp` — not a file still being written.
pub fn is_settled(mtime: DateTime<Utc>, now: DateTime<Utc>, settle: chrono::Duration) -> bool {
    if mtime > now + CLOCK_TOLERANCE {
        return true;
    }
    let age = (now - mtime).max(chrono::Duration::zero());
    age >= settle
}

/// Scan one location. `now` decides which files have settled.
pub fn scan(loc: &Location, tz: &Tz, now: DateTime<Utc>) -> Result<ScanResult, ScanError> {
    let root = &loc.root;
    let shown = root.display().to_string();
    let meta = std::fs::metadata(root).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => ScanError::Missing {
            path: shown.clone(),
        },
        _ => ScanError::Unreadable {
            path: shown.clone(),
            source: e,
        },
    })?;
    if !meta.is_dir() {
        return Err(ScanError::NotADirectory { path: shown });
    }
    std::fs::read_dir(root).map_err(|e| ScanError::Unreadable {
        path: shown.clone(),
        source: e,
    })?;

    // Globs were validated with the config; an error here means none match.
    let include = PathMatcher::new(&loc.patterns).ok();
    let exclude = PathMatcher::new(&loc.exclude).ok();
    let settle = loc.settle.as_chrono();
    let mut result = ScanResult::default();
    let walker = walkdir::WalkDir::new(root)
        .follow_links(false)
        .min_depth(1)
        .max_depth(if loc.recursive { usize::MAX } else { 1 });
    for entry in walker {
        let entry = match entry {
            Ok(e) => e,
            Err(e) => {
                let at = e
                    .path()
                    .map(|p| p.display().to_string())
                    .unwrap_or_else(|| shown.clone());
                tracing::warn!(location = %loc.name, "cannot read {at}: {}", e.io_error().map(|e| e.to_string()).unwrap_or_default());
                if let Some(rel) = e.path().and_then(|p| relative(root, p)) {
                    result.unreadable.push(rel);
                }
                continue;
            }
        };
        if !entry.file_type().is_file() {
            continue;
        }
        let Some(rel) = relative(root, entry.path()) else {
            continue;
        };
        let base_name = rel.rsplit('/').next().unwrap_or(&rel);
        if is_sidecar(base_name)
            || !include.as_ref().is_some_and(|m| m.is_match(&rel))
            || exclude.as_ref().is_some_and(|m| m.is_match(&rel))
        {
            continue;
        }
        let meta = match entry.metadata() {
            Ok(m) => m,
            Err(_) => continue, // vanished between listing and stat
        };
        if !readable(&meta) {
            tracing::warn!(location = %loc.name, "cannot read {}: permission denied", entry.path().display());
            result.unreadable.push(rel.clone());
        }
        let (mtime_ns, mtime) = mtime_of(&meta);
        let (ts, source) = timestamp_of(loc, base_name, mtime, tz);
        result.files.push(FoundFile {
            settled: is_settled(mtime, now, settle),
            path: rel,
            size: meta.len(),
            mtime_ns,
            ts,
            ts_source: source,
        });
        result.sources.push(source);
    }
    Ok(result)
}

/// Whether the permission bits let this process read a file (from the metadata already
/// fetched: no extra system call per file). Root reads everything.
fn readable(meta: &std::fs::Metadata) -> bool {
    use std::os::unix::fs::MetadataExt;
    // Asked once per process: each is a system call, and they do not change during a run.
    static IDS: std::sync::OnceLock<(u32, u32)> = std::sync::OnceLock::new();
    // SAFETY: geteuid and getegid have no preconditions and cannot fail.
    let &(uid, gid) = IDS.get_or_init(|| unsafe { (libc::geteuid(), libc::getegid()) });
    let mode = meta.mode();
    if uid == 0 {
        true
    } else if meta.uid() == uid {
        mode & 0o400 != 0
    } else if meta.gid() == gid || in_supplementary_group(meta.gid()) {
        mode & 0o040 != 0
    } else {
        mode & 0o004 != 0
    }
}

fn in_supplementary_group(gid: u32) -> bool {
    static GROUPS: std::sync::OnceLock<Vec<libc::gid_t>> = std::sync::OnceLock::new();
    GROUPS
        .get_or_init(|| {
            let mut groups = vec![0 as libc::gid_t; 256];
            // SAFETY: the buffer holds `groups.len()` entries, as passed.
            let n = unsafe { libc::getgroups(groups.len() as libc::c_int, groups.as_mut_ptr()) };
            groups.truncate(n.max(0) as usize);
            groups
        })
        .contains(&gid)
}

/// `/`-separated path of `p` relative to `root`; None for names that are not UTF-8
/// (they are reported by the caller's log rather than silently mangled).
fn relative(root: &Path, p: &Path) -> Option<String> {
    let rel = p.strip_prefix(root).ok()?;
    let parts: Option<Vec<&str>> = rel.components().map(|c| c.as_os_str().to_str()).collect();
    match parts {
        Some(parts) => Some(parts.join("/")),
        None => {
            tracing::warn!("skipping {}: the name is not valid UTF-8", p.display());
            None
        }
    }
}

/// Free and total bytes of the filesystem holding `path`.
pub fn disk_space(path: &Path) -> Option<(u64, u64)> {
    let free = fs4::available_space(path).ok()?;
    let total = fs4::total_space(path).ok()?;
    Some((free, total))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sidecars_are_recognised() {
        for s in [
            "a.tar.sha256",
            "a.md5",
            "a.b3",
            "SHA256SUMS",
            "MD5SUMS",
            "B3SUMS",
        ] {
            assert!(is_sidecar(s), "{s}");
        }
        assert!(!is_sidecar("a.tar.gz"));
        assert!(!is_sidecar("SHA256SUMS.txt"));
    }

    #[test]
    fn settling_and_clock_skew() {
        let now = Utc.with_ymd_and_hms(2026, 11, 21, 12, 0, 0).unwrap();
        let m = chrono::Duration::minutes;
        let settle = m(10);
        assert!(is_settled(now - m(10), now, settle));
        assert!(!is_settled(now - m(9), now, settle), "still being written");
        assert!(!is_settled(now, now, settle));
        assert!(
            !is_settled(now + m(5), now, settle),
            "within the clock tolerance"
        );
        assert!(
            is_settled(now + m(6), now, settle),
            "a skewed clock, not a write"
        );
        assert!(is_settled(now + chrono::Duration::days(2), now, settle));
        // `settle: 0s` disables settling, also for an mtime a little ahead of now.
        assert!(is_settled(now + m(1), now, chrono::Duration::zero()));
        assert!(is_settled(now, now, chrono::Duration::zero()));
    }

    #[test]
    fn globs_with_and_without_slash() {
        let m = PathMatcher::new(&["*.sql.gz".into(), "daily/*.tar".into()]).unwrap();
        assert!(m.is_match("db.sql.gz"));
        assert!(
            m.is_match("deep/er/db.sql.gz"),
            "base-name glob matches at any depth"
        );
        assert!(m.is_match("daily/x.tar"));
        assert!(!m.is_match("weekly/x.tar"));
        assert!(
            !m.is_match("daily/sub/x.tar"),
            "path glob matches the whole path"
        );
    }
}
