//! The restore sandbox: the only code that creates files while a backup is restored.
//!
//! A sandbox is a fresh 0700 directory `backup-monitor-restore-<pid>-<random>` under the
//! system temp dir or `restore.scratch_dir`, removed when the [`Sandbox`] is dropped —
//! on success, on failure and on panic. Directories left by a run that was killed are
//! removed by the next run ([`clean_leftovers`]).
//!
//! Rules (SPEC 3.6): entry names that are absolute or contain `..` are refused; symbolic
//! links are never created (their targets are checked, and one that resolves outside the
//! sandbox — directly or through other links of the archive — is refused); hard links are
//! created only to files already inside; devices and FIFOs are skipped; archive
//! ownership and permission bits (setuid/setgid included) are ignored — files are 0600,
//! directories 0700; nothing is ever opened through a link; and every byte written is
//! counted against `max_bytes`, so a decompression bomb stops at the limit. Writes use a
//! large buffer and no fsync: the sandbox is thrown away.

use super::{RestoreError, Tally};
use std::cell::RefCell;
use std::collections::HashMap;
use std::fs::{self, DirBuilder, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

/// Every sandbox directory's name starts with this, followed by `<pid>-`.
pub const PREFIX: &str = "backup-monitor-restore-";

/// Size of the copy buffer (one per thread).
const BUFFER: usize = 1 << 20;

/// Link chains longer than this are refused, like the kernel's ELOOP.
const MAX_LINK_HOPS: usize = 40;

thread_local! {
    static COPY_BUFFER: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// A validated entry name: components that are neither empty, `.`, nor `..`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryPath(Vec<String>);

impl EntryPath {
    /// Check an archive entry's raw name. `Ok(None)` is the archive root itself (`./`).
    pub fn parse(raw: &[u8]) -> Result<Option<EntryPath>, RestoreError> {
        let name = String::from_utf8_lossy(raw);
        if name.contains('\0') {
            return Err(RestoreError::Corrupt(format!(
                "entry name {name:?} contains a NUL byte"
            )));
        }
        if name.starts_with('/') {
            return Err(RestoreError::Unsafe(format!(
                "entry {name:?} has an absolute path"
            )));
        }
        let mut parts = Vec::new();
        for part in name.split('/') {
            match part {
                "" | "." => {}
                ".." => {
                    return Err(RestoreError::Unsafe(format!(
                        "entry {name:?} climbs out with `..`"
                    )));
                }
                p => parts.push(p.to_string()),
            }
        }
        Ok((!parts.is_empty()).then_some(EntryPath(parts)))
    }

    /// `/`-separated, relative to the archive root (what `expect` globs match).
    pub fn rel(&self) -> String {
        self.0.join("/")
    }

    fn parent(&self) -> &[String] {
        &self.0[..self.0.len() - 1]
    }
}

pub struct Sandbox {
    root: PathBuf,
    limit: u64,
    /// Bytes counted against the limit (restored content and stream overhead).
    charged: AtomicU64,
    /// Bytes of restored content (files, SQL text).
    restored: AtomicU64,
    /// Symbolic links of the archive (path → target), checked as a whole by
    /// [`Sandbox::check_links`] because a link may point through one that comes later.
    links: Mutex<HashMap<String, String>>,
    pub tally: Tally,
}

impl Sandbox {
    /// Make a fresh private directory under `parent`.
    pub fn create(parent: &Path, limit: u64, tally: Tally) -> io::Result<Sandbox> {
        let dir = tempfile::Builder::new()
            .prefix(&format!("{PREFIX}{}-", std::process::id()))
            .permissions(fs::Permissions::from_mode(0o700))
            .tempdir_in(parent)?;
        // The directory is removed by our Drop, not tempfile's.
        let root = dir.keep();
        Ok(Sandbox {
            root,
            limit,
            charged: AtomicU64::new(0),
            restored: AtomicU64::new(0),
            links: Mutex::new(HashMap::new()),
            tally,
        })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn limit(&self) -> u64 {
        self.limit
    }

    /// Bytes of content restored so far.
    pub fn restored(&self) -> u64 {
        self.restored.load(Ordering::Relaxed)
    }

    /// Count `n` restored bytes against `max_bytes`.
    pub fn charge(&self, n: u64) -> Result<(), RestoreError> {
        self.restored.fetch_add(n, Ordering::Relaxed);
        self.charge_overhead(n)
    }

    /// Count `n` bytes that are read but not restored (archive padding) against
    /// `max_bytes`: a bomb can hide there too.
    pub fn charge_overhead(&self, n: u64) -> Result<(), RestoreError> {
        let total = self.charged.fetch_add(n, Ordering::Relaxed) + n;
        if total > self.limit {
            return Err(RestoreError::Limit { limit: self.limit });
        }
        Ok(())
    }

    /// A path for scratch work of the checks themselves (a replayed database, a spilled
    /// nested archive). Nothing exists there yet.
    pub fn scratch_path(&self, name: &str) -> PathBuf {
        self.root.join(format!(".scratch-{name}"))
    }

    /// Create `entry` as a regular file with everything `src` yields; returns its size.
    pub fn write_file(&self, entry: &EntryPath, src: &mut dyn Read) -> Result<u64, RestoreError> {
        let path = self.prepare(entry)?;
        self.write_at(&path, &entry.rel(), src)
    }

    /// Like [`Sandbox::write_file`], for a scratch path from [`Sandbox::scratch_path`].
    pub fn write_scratch(&self, path: &Path, src: &mut dyn Read) -> Result<u64, RestoreError> {
        self.write_at(path, "the decompressed stream", src)
    }

    fn write_at(&self, path: &Path, shown: &str, src: &mut dyn Read) -> Result<u64, RestoreError> {
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
            .open(path)
            .map_err(|e| scratch_error(path, e))?;
        COPY_BUFFER.with(|cell| {
            let mut buf = cell.borrow_mut();
            if buf.len() < BUFFER {
                buf.resize(BUFFER, 0);
            }
            let mut total = 0u64;
            loop {
                let n = match src.read(&mut buf[..]) {
                    Ok(0) => return Ok(total),
                    Ok(n) => n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(RestoreError::read(shown, e)),
                };
                self.charge(n as u64)?;
                file.write_all(&buf[..n])
                    .map_err(|e| scratch_error(path, e))?;
                total += n as u64;
            }
        })
    }

    /// Create `entry` as a directory (and its parents).
    pub fn make_dir(&self, entry: &EntryPath) -> Result<(), RestoreError> {
        let parent = self.ensure_dirs(entry.parent())?;
        let path = parent.join(&entry.0[entry.0.len() - 1]);
        self.ensure_dir(&path, &entry.rel())
    }

    /// Record a symbolic link without creating it. An absolute target is refused at once;
    /// relative ones are resolved when the archive is complete ([`Sandbox::check_links`]).
    pub fn note_symlink(&self, entry: &EntryPath, target: &[u8]) -> Result<(), RestoreError> {
        let target = String::from_utf8_lossy(target).into_owned();
        if target.starts_with('/') {
            return Err(RestoreError::Unsafe(format!(
                "symbolic link {:?} points outside the sandbox to {target:?}",
                entry.rel()
            )));
        }
        let links = &mut *self.links.lock().unwrap_or_else(|e| e.into_inner());
        if resolve(links, entry.parent(), &target).is_none() {
            return Err(RestoreError::Unsafe(format!(
                "symbolic link {:?} points outside the sandbox to {target:?}",
                entry.rel()
            )));
        }
        links.insert(entry.rel(), target);
        Ok(())
    }

    /// Every link of the archive must resolve inside, also through the others.
    pub fn check_links(&self) -> Result<(), RestoreError> {
        let links = self.links.lock().unwrap_or_else(|e| e.into_inner());
        for (path, target) in links.iter() {
            let entry = EntryPath(path.split('/').map(str::to_string).collect());
            if resolve(&links, entry.parent(), target).is_none() {
                return Err(RestoreError::Unsafe(format!(
                    "symbolic link {path:?} points outside the sandbox to {target:?} through another link"
                )));
            }
        }
        Ok(())
    }

    /// Create `entry` as a hard link to `target`, an archive-root-relative name of a file
    /// restored earlier. A target outside the sandbox is refused.
    pub fn hard_link(&self, entry: &EntryPath, target: &[u8]) -> Result<(), RestoreError> {
        let shown = String::from_utf8_lossy(target).into_owned();
        let unsafe_link = || {
            RestoreError::Unsafe(format!(
                "hard link {:?} points outside the sandbox to {shown:?}",
                entry.rel()
            ))
        };
        let target = match EntryPath::parse(target) {
            Ok(Some(t)) => t,
            Ok(None) | Err(RestoreError::Unsafe(_)) => return Err(unsafe_link()),
            Err(e) => return Err(e),
        };
        let resolved = {
            let links = self.links.lock().unwrap_or_else(|e| e.into_inner());
            resolve(&links, &[], &target.rel()).ok_or_else(unsafe_link)?
        };
        let source = resolved
            .iter()
            .fold(self.root.clone(), |p, part| p.join(part));
        match fs::symlink_metadata(&source) {
            Ok(m) if m.is_file() => {}
            _ => {
                return Err(RestoreError::Corrupt(format!(
                    "hard link {:?} refers to {shown:?}, which the archive did not contain before it",
                    entry.rel()
                )));
            }
        }
        let path = self.prepare(entry)?;
        fs::hard_link(&source, &path).map_err(|e| scratch_error(&path, e))
    }

    /// Make the parents of `entry` and clear its own name; returns where to create it.
    fn prepare(&self, entry: &EntryPath) -> Result<PathBuf, RestoreError> {
        let parent = self.ensure_dirs(entry.parent())?;
        let path = parent.join(&entry.0[entry.0.len() - 1]);
        match fs::symlink_metadata(&path) {
            Ok(m) if m.is_dir() => Err(RestoreError::Corrupt(format!(
                "entry {:?} is a file where the archive made a directory",
                entry.rel()
            ))),
            // A later entry of the same name replaces the earlier one, as tar does. The
            // old name is unlinked, never written through.
            Ok(_) => fs::remove_file(&path)
                .map(|()| path.clone())
                .map_err(|e| scratch_error(&path, e)),
            Err(_) => Ok(path),
        }
    }

    fn ensure_dirs(&self, parts: &[String]) -> Result<PathBuf, RestoreError> {
        let mut path = self.root.clone();
        for (i, part) in parts.iter().enumerate() {
            path.push(part);
            self.ensure_dir(&path, &parts[..=i].join("/"))?;
        }
        Ok(path)
    }

    fn ensure_dir(&self, path: &Path, shown: &str) -> Result<(), RestoreError> {
        // symlink_metadata never follows: only a real directory counts.
        match fs::symlink_metadata(path) {
            Ok(m) if m.is_dir() => return Ok(()),
            Ok(_) => {
                return Err(RestoreError::Corrupt(format!(
                    "{shown:?} is a file where the archive needs a directory"
                )));
            }
            Err(_) => {}
        }
        match DirBuilder::new().mode(0o700).create(path) {
            Ok(()) => Ok(()),
            // Another thread of a parallel restore made it first.
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                match fs::symlink_metadata(path) {
                    Ok(m) if m.is_dir() => Ok(()),
                    _ => Err(scratch_error(path, e)),
                }
            }
            Err(e) => Err(scratch_error(path, e)),
        }
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        // remove_dir_all never follows symbolic links (and we create none).
        if let Err(e) = fs::remove_dir_all(&self.root) {
            tracing::warn!(
                "could not remove the restore sandbox {}: {e}",
                self.root.display()
            );
        }
    }
}

fn scratch_error(path: &Path, e: io::Error) -> RestoreError {
    if e.raw_os_error() == Some(libc::ENAMETOOLONG) {
        // The archive's fault, not this machine's (a name over NAME_MAX, a path over
        // PATH_MAX): it cannot be restored into a directory, so it fails — never a skip.
        let last = path.file_name().unwrap_or_default().to_string_lossy();
        let last: String = last.chars().take(40).collect();
        return RestoreError::Failed(format!(
            "an entry cannot be restored: its path is too long for the filesystem ({} bytes in the sandbox, at {last:?}…): {e}",
            path.as_os_str().len()
        ));
    }
    RestoreError::Skipped(format!(
        "cannot write into the restore sandbox ({}): {e}",
        path.display()
    ))
}

/// Where a link with `target`, sitting in directory `dir`, ends up: the components below
/// the sandbox root, or None when it climbs out (or loops). Links named in `links` are
/// followed lexically, so a chain through another link of the archive is judged too.
fn resolve(links: &HashMap<String, String>, dir: &[String], target: &str) -> Option<Vec<String>> {
    let mut at: Vec<String> = dir.to_vec();
    let mut pending: std::collections::VecDeque<String> =
        target.split('/').map(str::to_string).collect();
    let mut hops = 0;
    while let Some(part) = pending.pop_front() {
        match part.as_str() {
            "" | "." => {}
            ".." => {
                at.pop()?;
            }
            _ => {
                at.push(part);
                if let Some(next) = links.get(&at.join("/")) {
                    hops += 1;
                    if hops > MAX_LINK_HOPS || next.starts_with('/') {
                        return None;
                    }
                    at.pop();
                    for p in next.split('/').rev() {
                        pending.push_front(p.to_string());
                    }
                }
            }
        }
    }
    Some(at)
}

/// Remove sandboxes that runs which no longer exist left under `parent` (a run that was
/// killed never ran its Drop). Only our own user's directories are touched; those of live
/// processes (a concurrent run with another store) are left alone. Returns how many.
pub fn clean_leftovers(parent: &Path) -> usize {
    let Ok(entries) = fs::read_dir(parent) else {
        return 0;
    };
    let me = std::process::id();
    // SAFETY: geteuid has no preconditions and cannot fail.
    let uid = unsafe { libc::geteuid() };
    let mut removed = 0;
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_prefix(PREFIX))
            .and_then(|rest| rest.split('-').next())
            .and_then(|pid| pid.parse::<u32>().ok())
        else {
            continue;
        };
        if pid == me || process_alive(pid) {
            continue;
        }
        let path = entry.path();
        match fs::symlink_metadata(&path) {
            Ok(m) if m.is_dir() && m.uid() == uid => {}
            _ => continue,
        }
        match fs::remove_dir_all(&path) {
            Ok(()) => {
                tracing::info!(
                    "removed the restore sandbox {} left by a run that was killed (pid {pid})",
                    path.display()
                );
                removed += 1;
            }
            Err(e) => tracing::warn!("cannot remove the leftover sandbox {}: {e}", path.display()),
        }
    }
    removed
}

fn process_alive(pid: u32) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return false;
    };
    // SAFETY: signal 0 only checks whether the process exists; nothing is sent.
    let rc = unsafe { libc::kill(pid, 0) };
    rc == 0 || io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sandbox(parent: &Path, limit: u64) -> Sandbox {
        Sandbox::create(parent, limit, Tally::new(&[]).unwrap()).unwrap()
    }

    fn entry(name: &str) -> EntryPath {
        EntryPath::parse(name.as_bytes()).unwrap().unwrap()
    }

    #[test]
    fn entry_names_are_checked() {
        assert_eq!(entry("./a//b/./c").rel(), "a/b/c");
        assert!(EntryPath::parse(b"./").unwrap().is_none());
        assert!(matches!(
            EntryPath::parse(b"/etc/passwd"),
            Err(RestoreError::Unsafe(_))
        ));
        assert!(matches!(
            EntryPath::parse(b"a/../../x"),
            Err(RestoreError::Unsafe(_))
        ));
        assert!(matches!(
            EntryPath::parse(b"a/.."),
            Err(RestoreError::Unsafe(_))
        ));
        assert!(matches!(
            EntryPath::parse(b"a\0b"),
            Err(RestoreError::Corrupt(_))
        ));
    }

    #[test]
    fn private_directory_removed_on_drop() {
        let parent = tempfile::tempdir().unwrap();
        let sb = sandbox(parent.path(), 100);
        let root = sb.root().to_path_buf();
        let name = root.file_name().unwrap().to_str().unwrap().to_string();
        assert!(name.starts_with(&format!("{PREFIX}{}-", std::process::id())));
        let mode = fs::metadata(&root).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700);
        sb.write_file(&entry("d/e/f.txt"), &mut &b"hello"[..])
            .unwrap();
        let f = root.join("d/e/f.txt");
        assert_eq!(fs::read(&f).unwrap(), b"hello");
        assert_eq!(
            fs::metadata(&f).unwrap().permissions().mode() & 0o7777,
            0o600
        );
        drop(sb);
        assert!(!root.exists());
    }

    #[test]
    fn limit_stops_a_stream_at_the_limit() {
        let parent = tempfile::tempdir().unwrap();
        let sb = sandbox(parent.path(), 10 << 20);
        let mut endless = io::repeat(0);
        let err = sb.write_file(&entry("bomb"), &mut endless).unwrap_err();
        assert!(matches!(err, RestoreError::Limit { .. }), "{err:?}");
        let on_disk = fs::metadata(sb.root().join("bomb")).unwrap().len();
        assert!(on_disk <= 10 << 20, "wrote {on_disk}");
    }

    #[test]
    fn links_resolving_outside_are_refused_also_through_chains() {
        let parent = tempfile::tempdir().unwrap();
        let sb = sandbox(parent.path(), 100);
        sb.note_symlink(&entry("a/inside"), b"../b").unwrap();
        assert!(matches!(
            sb.note_symlink(&entry("a/out"), b"../../x"),
            Err(RestoreError::Unsafe(_))
        ));
        assert!(matches!(
            sb.note_symlink(&entry("abs"), b"/etc"),
            Err(RestoreError::Unsafe(_))
        ));
        // `t -> s/..` looks inside until `s -> .` arrives: judged once all are known.
        sb.note_symlink(&entry("t"), b"s/..").unwrap();
        sb.note_symlink(&entry("s"), b".").unwrap();
        assert!(matches!(sb.check_links(), Err(RestoreError::Unsafe(_))));
        assert!(
            fs::symlink_metadata(sb.root().join("a/inside")).is_err(),
            "links are never created"
        );
    }

    #[test]
    fn hard_links_only_to_files_inside() {
        let parent = tempfile::tempdir().unwrap();
        let outside = parent.path().join("outside.txt");
        fs::write(&outside, "keep").unwrap();
        let sb = sandbox(parent.path(), 100);
        sb.write_file(&entry("f"), &mut &b"data"[..]).unwrap();
        sb.hard_link(&entry("g"), b"f").unwrap();
        assert_eq!(fs::read(sb.root().join("g")).unwrap(), b"data");
        let abs = outside.to_str().unwrap().as_bytes().to_vec();
        assert!(matches!(
            sb.hard_link(&entry("h"), &abs),
            Err(RestoreError::Unsafe(_))
        ));
        assert!(matches!(
            sb.hard_link(&entry("h"), b"../outside.txt"),
            Err(RestoreError::Unsafe(_))
        ));
        assert!(matches!(
            sb.hard_link(&entry("h"), b"missing"),
            Err(RestoreError::Corrupt(_))
        ));
        // A file replacing the hard link does not write through it.
        sb.write_file(&entry("g"), &mut &b"new"[..]).unwrap();
        assert_eq!(fs::read(sb.root().join("f")).unwrap(), b"data");
        assert_eq!(fs::read(&outside).unwrap(), b"keep");
    }

    #[test]
    fn leftovers_of_dead_runs_are_removed_live_ones_kept() {
        let parent = tempfile::tempdir().unwrap();
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let dead = child.id();
        child.wait().unwrap();
        let stale = parent.path().join(format!("{PREFIX}{dead}-abc"));
        fs::create_dir_all(stale.join("deep")).unwrap();
        let live = parent.path().join(format!("{PREFIX}1-abc"));
        fs::create_dir(&live).unwrap();
        let other = parent.path().join("unrelated");
        fs::create_dir(&other).unwrap();
        let mine = sandbox(parent.path(), 1);
        assert_eq!(clean_leftovers(parent.path()), 1);
        assert!(!stale.exists());
        assert!(live.exists(), "pid 1 is alive");
        assert!(other.exists() && mine.root().exists());
    }
}
