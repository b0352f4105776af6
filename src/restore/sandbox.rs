//! The restore sandbox: the only code that creates files while a backup is restored.
//!
//! A sandbox is a fresh 0700 directory `backup-monitor-restore-<pid>-<random>` under the
//! system temp dir or `restore.scratch_dir`, removed when the [`Sandbox`] is dropped —
//! on success, on failure and on panic. Directories left by a run that was killed are
//! removed by the next run ([`clean_leftovers`]).
//!
//! Rules: entry names that are absolute or contain `..` are refused; symbolic
//! links are never created (their targets are checked, and one that resolves outside the
//! sandbox — directly or through other links of the archive — is refused; a chain that
//! loops without leaving resolves nowhere, like ELOOP, and is harmless); hard links are
//! created only to files already inside; devices and FIFOs are skipped; archive
//! ownership and permission bits (setuid/setgid included) are ignored — files are 0600,
//! directories 0700; nothing is ever opened through a link; and every byte written is
//! counted against `max_bytes`, so a decompression bomb stops at the limit. Writes use a
//! large buffer and no fsync: the sandbox is thrown away.

use super::{RestoreError, Tally};
use rustix::fs::{AtFlags, FileType, Mode, OFlags, ResolveFlags};
use rustix::io::Errno;
use std::cell::RefCell;
use std::collections::HashMap;
use std::ffi::{CStr, CString};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Every sandbox directory's name starts with this, followed by `<pid>-`.
pub const PREFIX: &str = "backup-monitor-restore-";

/// Link chains longer than this are refused, like the kernel's ELOOP.
const MAX_LINK_HOPS: usize = 40;

/// What each entry and each directory the sandbox creates costs against `max_bytes`
/// besides its content: an inode and its directory record are not free, and an archive of
/// empty files or directories must not fill the scratch filesystem's inode table.
pub const ENTRY_COST: u64 = 512;

/// Entries (files, directories, links) one restore may create unless configured.
pub const DEFAULT_MAX_ENTRIES: u64 = 1_000_000;

/// Directory handles a sandbox keeps open (see [`OpenDirs`]).
const MAX_OPEN_DIRS: usize = 128;

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

    fn leaf(&self) -> &str {
        &self.0[self.0.len() - 1]
    }

    /// Bytes of `rel()`, without building it.
    fn rel_len(&self) -> usize {
        self.0.iter().map(|p| p.len() + 1).sum::<usize>() - 1
    }
}

/// What [`Sandbox::write_file`] wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Written {
    pub bytes: u64,
    /// The name is new: no earlier entry of the archive had it (a repeated name replaces
    /// the earlier file, and is not another restored file).
    pub new: bool,
}

/// The wall-clock bound of a test whose caller sets none (`restore.timeout`'s default).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(300);

pub struct Sandbox {
    root: PathBuf,
    /// The root directory, opened once: everything is created relative to open
    /// directories (`openat`, `mkdirat`), never through a path walked again.
    root_fd: Arc<OwnedFd>,
    /// Directories of the sandbox that are open, by `/`-joined path below the root.
    dirs: Mutex<OpenDirs>,
    limit: u64,
    /// Bytes counted against the limit (restored content and stream overhead).
    charged: AtomicU64,
    /// Bytes of restored content (files, SQL text).
    restored: AtomicU64,
    /// Symbolic links of the archive, checked as a whole by [`Sandbox::check_links`]
    /// because a link may point through one that comes later.
    links: Mutex<Links>,
    /// When this test must stop (`restore.timeout`): every loop over entries, statements
    /// or rows asks [`Sandbox::check_deadline`].
    deadline: Instant,
    timeout: Duration,
    /// Entries and directories created so far, and how many may be (`restore.max_entries`).
    entries: AtomicU64,
    max_entries: u64,
    pub tally: Tally,
}

/// Directories the sandbox made or opened, kept open so that an entry's parents are not
/// walked and checked again for every file. Safe to reuse: each was opened with
/// `O_NOFOLLOW | O_DIRECTORY` from its open parent, so it is a real directory inside the
/// sandbox, and the descriptor stays that directory whatever later happens to its name
/// (the archive cannot replace a directory anyway: a file, hard link or directory entry
/// of the same name is refused, and links are never created). At most
/// [`MAX_OPEN_DIRS`]; the least recently used is closed first.
#[derive(Default)]
struct OpenDirs {
    open: HashMap<String, (Arc<OwnedFd>, u64)>,
    tick: u64,
}

impl OpenDirs {
    fn get(&mut self, rel: &str) -> Option<Arc<OwnedFd>> {
        self.tick += 1;
        let tick = self.tick;
        self.open.get_mut(rel).map(|(fd, used)| {
            *used = tick;
            fd.clone()
        })
    }

    fn insert(&mut self, rel: String, fd: Arc<OwnedFd>) {
        if self.open.len() >= MAX_OPEN_DIRS {
            let oldest = self
                .open
                .iter()
                .min_by_key(|(_, (_, used))| *used)
                .map(|(k, _)| k.clone());
            if let Some(k) = oldest {
                self.open.remove(&k);
            }
        }
        self.tick += 1;
        self.open.insert(rel, (fd, self.tick));
    }
}

impl Sandbox {
    /// Make a fresh private directory under `parent`.
    pub fn create(parent: &Path, limit: u64, tally: Tally) -> io::Result<Sandbox> {
        let dir = tempfile::Builder::new()
            .prefix(&format!("{PREFIX}{}-", std::process::id()))
            .permissions(fs::Permissions::from_mode(0o700))
            .tempdir_in(parent)?;
        let root_fd = open_dir(
            rustix::fs::CWD,
            &CString::new(dir.path().as_os_str().as_bytes()).map_err(io::Error::other)?,
        )?;
        // The directory is removed by our Drop, not tempfile's.
        let root = dir.keep();
        Ok(Sandbox {
            root,
            root_fd: Arc::new(root_fd),
            dirs: Mutex::new(OpenDirs::default()),
            limit,
            charged: AtomicU64::new(0),
            restored: AtomicU64::new(0),
            links: Mutex::new(Links::default()),
            deadline: Instant::now() + DEFAULT_TIMEOUT,
            timeout: DEFAULT_TIMEOUT,
            entries: AtomicU64::new(0),
            max_entries: DEFAULT_MAX_ENTRIES,
            tally,
        })
    }

    /// Bound this test's wall-clock time to `timeout` from now.
    pub fn with_timeout(mut self, timeout: Duration) -> Sandbox {
        self.timeout = timeout;
        self.deadline = Instant::now() + timeout;
        self
    }

    /// Allow at most `max` entries and directories (`restore.max_entries`).
    pub fn with_max_entries(mut self, max: u64) -> Sandbox {
        self.max_entries = max;
        self
    }

    /// Count one entry or directory the restore creates: against the entry limit, and
    /// [`ENTRY_COST`] bytes against `max_bytes`.
    pub fn count_entry(&self) -> Result<(), RestoreError> {
        let n = self.entries.fetch_add(1, Ordering::Relaxed) + 1;
        if n > self.max_entries {
            return Err(RestoreError::Entries {
                limit: self.max_entries,
            });
        }
        self.charge_overhead(ENTRY_COST)
    }

    /// Entries and directories created so far.
    pub fn entries(&self) -> u64 {
        self.entries.load(Ordering::Relaxed)
    }

    /// The instant this test must stop by.
    pub fn deadline(&self) -> Instant {
        self.deadline
    }

    /// Fail with [`RestoreError::TimeLimit`] once the deadline has passed.
    pub fn check_deadline(&self) -> Result<(), RestoreError> {
        if Instant::now() >= self.deadline {
            return Err(self.time_limit());
        }
        Ok(())
    }

    /// The error for a test that ran out of time.
    pub fn time_limit(&self) -> RestoreError {
        RestoreError::TimeLimit {
            seconds: self.timeout.as_secs(),
        }
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

    /// What `max_bytes` still allows.
    pub fn room(&self) -> u64 {
        self.limit
            .saturating_sub(self.charged.load(Ordering::Relaxed))
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

    /// Create `entry` as a regular file with everything `src` yields.
    pub fn write_file(
        &self,
        entry: &EntryPath,
        src: &mut dyn Read,
    ) -> Result<Written, RestoreError> {
        let (file, new) = self.create_file(entry)?;
        let full = || self.root.join(entry.rel());
        let bytes = self.copy_into(file, &full, &format!("{:?}", entry.rel()), src)?;
        Ok(Written { bytes, new })
    }

    /// Create `entry` as a sparse file of `real_size` bytes: `data` bytes, all the
    /// archive stores of it, are counted against `max_bytes` and the holes are not. With
    /// a `map` (offset, length), `src` yields the data regions one after another; without
    /// one, `src` yields the whole file with its holes as zeros (the tar reader expands
    /// GNU sparse maps that way), and zero runs become holes again.
    pub fn write_sparse(
        &self,
        entry: &EntryPath,
        src: &mut dyn Read,
        map: Option<&[(u64, u64)]>,
        real_size: u64,
        data: u64,
    ) -> Result<Written, RestoreError> {
        use std::io::{Seek, SeekFrom};
        self.charge(data)?;
        let (mut file, new) = self.create_file(entry)?;
        let shown = format!("{:?}", entry.rel());
        let full = || self.root.join(entry.rel());
        let write_err = |e| scratch_error(&full(), e);
        let mut buf = vec![0u8; 64 << 10];
        let mut stored = 0u64;
        // Copies up to `limit` bytes (None: to the end); returns how many were read.
        let mut copy = |file: &mut File, limit: Option<u64>| -> Result<u64, RestoreError> {
            let mut read = 0u64;
            let mut left = limit.unwrap_or(u64::MAX);
            while left > 0 {
                self.check_deadline()?;
                let want = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
                let n = match src.read(&mut buf[..want]) {
                    Ok(0) => break,
                    Ok(n) => n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(RestoreError::read(&shown, e)),
                };
                left -= n as u64;
                read += n as u64;
                // Without a map, zero blocks are holes; with one, every byte is data.
                let block = if map.is_none() { 4096 } else { n };
                for chunk in buf[..n].chunks(block) {
                    if map.is_none() && chunk.iter().all(|&b| b == 0) {
                        file.seek(SeekFrom::Current(chunk.len() as i64))
                            .map_err(write_err)?;
                        continue;
                    }
                    stored += chunk.len() as u64;
                    if stored > data {
                        return Err(RestoreError::Corrupt(format!(
                            "sparse file {shown} holds more data than its header declares ({data} bytes)"
                        )));
                    }
                    file.write_all(chunk).map_err(write_err)?;
                }
            }
            Ok(read)
        };
        let written = match map {
            None => copy(&mut file, None)?,
            Some(map) => {
                for &(offset, len) in map {
                    if offset.checked_add(len).is_none_or(|end| end > real_size) {
                        return Err(RestoreError::Corrupt(format!(
                            "the sparse map of {shown} reaches past its size ({real_size} bytes)"
                        )));
                    }
                    file.seek(SeekFrom::Start(offset)).map_err(write_err)?;
                    if copy(&mut file, Some(len))? != len {
                        return Err(RestoreError::Corrupt(format!(
                            "sparse file {shown} is truncated: its map declares more data than the archive holds"
                        )));
                    }
                }
                real_size
            }
        };
        file.set_len(real_size).map_err(write_err)?;
        if map.is_none() && written != real_size {
            return Err(RestoreError::Corrupt(format!(
                "sparse file {shown} is truncated: its header declares {real_size} bytes, the archive holds {written}"
            )));
        }
        Ok(Written {
            bytes: real_size,
            new,
        })
    }

    /// Create `entry` as a new empty regular file (a file of that name is replaced);
    /// returns it and whether the name is new.
    fn create_file(&self, entry: &EntryPath) -> Result<(File, bool), RestoreError> {
        let full = || self.root.join(entry.rel());
        self.check_deadline()?;
        self.count_entry()?;
        self.check_len(entry.rel_len(), &full)?;
        let dir = self.dir_fd(entry.parent())?;
        let name = c_name(entry.leaf())?;
        let mut attempts = 0;
        let file = loop {
            // O_EXCL never opens an existing name, link or not; O_NOFOLLOW says so twice.
            let flags = OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW;
            match open_at(&dir, &name, flags, Mode::RUSR | Mode::WUSR) {
                Ok(fd) => break File::from(fd),
                Err(e) if e.raw_os_error() == Some(libc::EEXIST) && attempts < 2 => {
                    attempts += 1;
                    self.clear_name(&dir, &name, entry)?;
                }
                Err(e) => return Err(scratch_error(&full(), e)),
            }
        };
        Ok((file, attempts == 0))
    }

    /// [`Sandbox::write_file`] for an archive entry whose `declarer` (its header, the
    /// central directory) declares `declared` bytes: any other count is corruption, as
    /// is a file that does not end where it should. At most `declared` + 1 bytes are read,
    /// whatever the entry's stream would yield.
    pub fn write_declared(
        &self,
        entry: &EntryPath,
        src: &mut dyn Read,
        declared: u64,
        declarer: &str,
    ) -> Result<Written, RestoreError> {
        let written = self.write_file(entry, &mut src.take(declared.saturating_add(1)))?;
        let got = written.bytes;
        if got != declared {
            let held = if got > declared {
                "more".to_string()
            } else {
                got.to_string()
            };
            return Err(RestoreError::Corrupt(format!(
                "{:?} is truncated or overlong: {declarer} declares {declared} bytes, the archive holds {held}",
                entry.rel()
            )));
        }
        Ok(written)
    }

    /// Like [`Sandbox::write_file`], for a scratch path from [`Sandbox::scratch_path`].
    pub fn write_scratch(&self, path: &Path, src: &mut dyn Read) -> Result<u64, RestoreError> {
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
            .open(path)
            .map_err(|e| scratch_error(path, e))?;
        self.copy_into(file, &|| path.to_path_buf(), "the decompressed stream", src)
    }

    /// Copy `src` into `file` through this thread's buffer, one `write` per read, counting
    /// every byte against the limit before it is written.
    fn copy_into(
        &self,
        mut file: File,
        path: &dyn Fn() -> PathBuf,
        shown: &str,
        src: &mut dyn Read,
    ) -> Result<u64, RestoreError> {
        COPY_BUFFER.with(|cell| {
            let mut buf = cell.borrow_mut();
            let size = crate::tuning::restore_chunk();
            if buf.len() < size {
                buf.resize(size, 0);
            }
            let mut total = 0u64;
            loop {
                self.check_deadline()?;
                let n = match src.read(&mut buf[..]) {
                    Ok(0) => return Ok(total),
                    Ok(n) => n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(RestoreError::read(shown, e)),
                };
                self.charge(n as u64)?;
                file.write_all(&buf[..n])
                    .map_err(|e| scratch_error(&path(), e))?;
                total += n as u64;
            }
        })
    }

    /// Create `entry` as a directory (and its parents).
    pub fn make_dir(&self, entry: &EntryPath) -> Result<(), RestoreError> {
        self.check_deadline()?;
        self.count_entry()?;
        self.dir_fd(&entry.0).map(drop)
    }

    /// Record a symbolic link without creating it. An absolute target is refused at once,
    /// and so is a relative one that leaves with the links known so far; the rest are
    /// judged when the archive is complete ([`Sandbox::check_links`]). The link sits where
    /// an extractor would create it: its parent directories are resolved through the
    /// archive's earlier links (`d/s -> ..` puts `d/s/t` at `t`).
    pub fn note_symlink(&self, entry: &EntryPath, target: &[u8]) -> Result<(), RestoreError> {
        let target = String::from_utf8_lossy(target).into_owned();
        let outside = || {
            RestoreError::Unsafe(format!(
                "symbolic link {:?} points outside the sandbox to {target:?}",
                entry.rel()
            ))
        };
        if target.starts_with('/') {
            return Err(outside());
        }
        self.check_deadline()?;
        self.count_entry()?;
        let links = &mut *self.links.lock().unwrap_or_else(|e| e.into_inner());
        let lexical = entry.rel();
        let parent = entry.parent().to_vec();
        let leaf = entry.leaf().to_string();
        match links.place(&parent, &leaf) {
            Placed::At(key) => {
                let dir = &key[..key.len() - 1];
                if resolve(&links.by_place, dir, &target) == Resolved::Outside {
                    return Err(outside());
                }
                links.by_place.insert(key.join("/"), target.clone());
            }
            Placed::Outside => return Err(self.under_outside_link(&lexical, &target)),
            Placed::Nowhere => {}
        }
        links.order.push((parent, leaf, target));
        Ok(())
    }

    fn under_outside_link(&self, path: &str, target: &str) -> RestoreError {
        RestoreError::Unsafe(format!(
            "symbolic link {path:?} (to {target:?}) sits under links that lead outside the sandbox"
        ))
    }

    /// Every link of the archive must resolve inside, also through the others. Links
    /// whose chain loops without ever leaving the sandbox resolve nowhere (the kernel's
    /// ELOOP): harmless, and named in the returned note.
    pub fn check_links(&self) -> Result<Option<String>, RestoreError> {
        let links = &mut *self.links.lock().unwrap_or_else(|e| e.into_inner());
        // Where each link sits, in archive order, now that all are known.
        links.by_place.clear();
        let mut placed = Vec::with_capacity(links.order.len());
        for i in 0..links.order.len() {
            let (parent, leaf, target) = links.order[i].clone();
            let lexical = if parent.is_empty() {
                leaf.clone()
            } else {
                format!("{}/{leaf}", parent.join("/"))
            };
            match links.place(&parent, &leaf) {
                Placed::At(key) => {
                    links.by_place.insert(key.join("/"), target.clone());
                    placed.push((lexical, Some(key), target));
                }
                Placed::Outside => return Err(self.under_outside_link(&lexical, &target)),
                Placed::Nowhere => placed.push((lexical, None, target)),
            }
        }
        let mut looping = Vec::new();
        for (path, key, target) in placed {
            let Some(key) = key else {
                looping.push(path);
                continue;
            };
            match resolve(&links.by_place, &key[..key.len() - 1], &target) {
                Resolved::Inside(_) => {}
                Resolved::Loop => looping.push(path),
                Resolved::Outside => {
                    return Err(RestoreError::Unsafe(format!(
                        "symbolic link {path:?} points outside the sandbox to {target:?} through another link"
                    )));
                }
            }
        }
        if looping.is_empty() {
            return Ok(None);
        }
        looping.sort();
        looping.dedup();
        let shown: Vec<String> = looping.iter().take(3).map(|p| format!("{p:?}")).collect();
        Ok(Some(format!(
            "{} symbolic links loop without leaving the sandbox ({}{}): they resolve nowhere, like ELOOP, which is harmless",
            looping.len(),
            shown.join(", "),
            if looping.len() > 3 { ", …" } else { "" }
        )))
    }

    /// Create `entry` as a hard link to `target`, an archive-root-relative name of a file
    /// restored earlier. A target outside the sandbox is refused. Returns whether the
    /// name is new (no earlier entry of the archive had it).
    pub fn hard_link(&self, entry: &EntryPath, target: &[u8]) -> Result<bool, RestoreError> {
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
            match resolve(&links.by_place, &[], &target.rel()) {
                Resolved::Inside(parts) => parts,
                Resolved::Outside => return Err(unsafe_link()),
                Resolved::Loop => {
                    return Err(RestoreError::Corrupt(format!(
                        "hard link {:?} refers to {shown:?}, a chain of symbolic links that loops",
                        entry.rel()
                    )));
                }
            }
        };
        let source = resolved
            .iter()
            .fold(self.root.clone(), |p, part| p.join(part));
        // The sandbox creates no symbolic links, so the walk to `source` meets none; the
        // last component is not followed by lstat nor by linkat (no AT_SYMLINK_FOLLOW).
        match fs::symlink_metadata(&source) {
            Ok(m) if m.is_file() => {}
            _ => {
                return Err(RestoreError::Corrupt(format!(
                    "hard link {:?} refers to {shown:?}, which the archive did not contain before it",
                    entry.rel()
                )));
            }
        }
        let full = || self.root.join(entry.rel());
        self.check_deadline()?;
        self.count_entry()?;
        self.check_len(entry.rel_len(), &full)?;
        let dir = self.dir_fd(entry.parent())?;
        let name = c_name(entry.leaf())?;
        let replaced = self.clear_name(&dir, &name, entry)?;
        let source = CString::new(source.as_os_str().as_bytes())
            .map_err(|e| scratch_error(&full(), io::Error::other(e)))?;
        // Without AT_SYMLINK_FOLLOW, linkat never follows `source` if it were a link.
        rustix::fs::linkat(rustix::fs::CWD, &source, &*dir, &name, AtFlags::empty())
            .map_err(|e| scratch_error(&full(), e.into()))?;
        Ok(!replaced)
    }

    /// Free `name` in `dir` for a new file: a later entry of the same name replaces the
    /// earlier one, as tar does — the old name is unlinked, never written through. A
    /// directory is not replaced. Returns whether there was something to replace.
    fn clear_name(
        &self,
        dir: &OwnedFd,
        name: &CStr,
        entry: &EntryPath,
    ) -> Result<bool, RestoreError> {
        let st = match rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) => st,
            Err(Errno::NOENT) => return Ok(false),
            Err(e) => return Err(scratch_error(&self.root.join(entry.rel()), e.into())),
        };
        if FileType::from_raw_mode(st.st_mode) == FileType::Directory {
            return Err(RestoreError::Corrupt(format!(
                "entry {:?} is a file where the archive made a directory",
                entry.rel()
            )));
        }
        match rustix::fs::unlinkat(dir, name, AtFlags::empty()) {
            Ok(()) | Err(Errno::NOENT) => {}
            Err(e) => return Err(scratch_error(&self.root.join(entry.rel()), e.into())),
        }
        Ok(true)
    }

    /// The open directory `parts` below the root: kept open from an earlier entry, else
    /// opened in one call that refuses every link on the way ([`open_beneath`]), else
    /// made (0700) and opened one component at a time from the deepest one already open.
    /// Every component is opened with `O_NOFOLLOW | O_DIRECTORY` relative to its parent,
    /// so only a real directory is ever entered; a file in the way is corruption.
    fn dir_fd(&self, parts: &[String]) -> Result<Arc<OwnedFd>, RestoreError> {
        if parts.is_empty() {
            return Ok(self.root_fd.clone());
        }
        let joined = parts.join("/");
        // Where each prefix of `joined` ends.
        let ends: Vec<usize> = parts
            .iter()
            .scan(0usize, |len, p| {
                *len += p.len() + usize::from(*len > 0);
                Some(*len)
            })
            .collect();
        if let Some(fd) = self
            .dirs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&joined)
        {
            return Ok(fd);
        }
        let full = || self.root.join(&joined);
        self.check_len(joined.len(), &full)?;
        if let Some(fd) = open_beneath(&*self.root_fd, &joined) {
            let fd = Arc::new(fd);
            self.dirs
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(joined, fd.clone());
            return Ok(fd);
        }
        let (mut at, mut fd) = {
            let mut dirs = self.dirs.lock().unwrap_or_else(|e| e.into_inner());
            (1..parts.len())
                .rev()
                .find_map(|i| dirs.get(&joined[..ends[i - 1]]).map(|fd| (i, fd)))
                .unwrap_or((0, self.root_fd.clone()))
        };
        while at < parts.len() {
            let rel = joined[..ends[at]].to_string();
            let full = || self.root.join(&rel);
            self.check_len(rel.len(), &full)?;
            let name = c_name(&parts[at])?;
            let next = match open_dir(&*fd, &name) {
                Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {
                    match rustix::fs::mkdirat(&*fd, &name, Mode::RWXU) {
                        // A directory the archive never named is an inode all the same.
                        Ok(()) => self.count_entry()?,
                        // Another thread of a parallel restore made it first.
                        Err(Errno::EXIST) => {}
                        Err(e) => return Err(scratch_error(&full(), e.into())),
                    }
                    open_dir(&*fd, &name)
                }
                other => other,
            };
            let next = match next {
                Ok(next) => Arc::new(next),
                Err(e) if matches!(e.raw_os_error(), Some(libc::ENOTDIR | libc::ELOOP)) => {
                    return Err(RestoreError::Corrupt(format!(
                        "{rel:?} is a file where the archive needs a directory"
                    )));
                }
                Err(e) => return Err(scratch_error(&full(), e)),
            };
            self.dirs
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(rel, next.clone());
            fd = next;
            at += 1;
        }
        Ok(fd)
    }

    /// A path the kernel's path calls would refuse (PATH_MAX, its NUL included) is refused
    /// here too: relative creation could go deeper, but the verdict must not depend on how
    /// the sandbox creates files, and the sandbox stays removable by path.
    fn check_len(&self, rel_len: usize, full: &dyn Fn() -> PathBuf) -> Result<(), RestoreError> {
        if self.root.as_os_str().len() + 1 + rel_len >= libc::PATH_MAX as usize {
            return Err(scratch_error(
                &full(),
                io::Error::from_raw_os_error(libc::ENAMETOOLONG),
            ));
        }
        Ok(())
    }

    /// Close every open directory (tests: the next entry walks from the root again).
    #[cfg(test)]
    fn forget_dirs(&self) {
        self.dirs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .open
            .clear();
    }
}

/// A name component as the kernel wants it. [`EntryPath::parse`] refused NUL bytes.
fn c_name(part: &str) -> Result<CString, RestoreError> {
    CString::new(part)
        .map_err(|_| RestoreError::Corrupt(format!("entry name {part:?} contains a NUL byte")))
}

/// `openat(dir, name, flags | O_CLOEXEC, mode)`, retried on EINTR.
fn open_at(dir: impl AsFd, name: &CStr, flags: OFlags, mode: Mode) -> io::Result<OwnedFd> {
    loop {
        match rustix::fs::openat(&dir, name, flags | OFlags::CLOEXEC, mode) {
            Err(Errno::INTR) => {}
            other => return other.map_err(io::Error::from),
        }
    }
}

/// `name` in `dir` as a directory handle, only if it is a real directory (never through
/// a link: ELOOP or ENOTDIR otherwise).
fn open_dir(dir: impl AsFd, name: &CStr) -> io::Result<OwnedFd> {
    open_at(
        dir,
        name,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::NOFOLLOW,
        Mode::empty(),
    )
}

/// The directory `rel` below `root` in one call, with the kernel refusing every symbolic
/// link and anything outside `root` on the way (`openat2`, `RESOLVE_BENEATH |
/// RESOLVE_NO_SYMLINKS`). None when it does not exist yet, is not a plain walk of real
/// directories, or the kernel has no `openat2`: the caller walks it one component at a
/// time then.
fn open_beneath(root: impl AsFd, rel: &str) -> Option<OwnedFd> {
    let flags = OFlags::PATH | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let resolve = ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_MAGICLINKS;
    loop {
        match rustix::fs::openat2(&root, rel, flags, Mode::empty(), resolve) {
            Err(Errno::INTR | Errno::AGAIN) => {}
            other => return other.ok(),
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

/// What went wrong with a scratch path, in an operator's words (no error codes). By the
/// error's kind: tempfile wraps the OS error with its path, which hides the code.
pub fn io_reason(e: &io::Error) -> String {
    use io::ErrorKind::*;
    match e.kind() {
        NotFound => "it does not exist".into(),
        NotADirectory => "a part of it is not a directory".into(),
        PermissionDenied => "permission denied".into(),
        ReadOnlyFilesystem => "its filesystem is read-only".into(),
        StorageFull => "its filesystem is full (no space or no inodes left)".into(),
        QuotaExceeded => "this user's disk quota there is used up".into(),
        _ => {
            let text = e.to_string();
            // "No such device (os error 19)": the code says nothing to an operator.
            let text = match text.find(" (os error ") {
                Some(at) => text[..at].to_string(),
                None => text,
            };
            crate::problem::one_line(&text).into_owned()
        }
    }
}

fn scratch_error(path: &Path, e: io::Error) -> RestoreError {
    if matches!(e.raw_os_error(), Some(libc::ENOSPC | libc::EDQUOT)) {
        // The sandbox holds only what the archive made: it filled the scratch filesystem
        // (space or inodes) before `max_bytes` / `max_entries` stopped it.
        return RestoreError::Exceeded(format!(
            "restoring filled the scratch filesystem at {path:?}: {e}; give restore.scratch_dir more room or lower restore.max_bytes / restore.max_entries so they stop it first"
        ));
    }
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
        "cannot write into the restore sandbox ({path:?}): {e}"
    ))
}

/// The archive's symbolic links: in archive order as named, and by where each sits once
/// its parent directories are resolved through the links before it.
#[derive(Default)]
struct Links {
    /// (parent components as named, leaf, target).
    order: Vec<(Vec<String>, String, String)>,
    /// Resolved path → target.
    by_place: HashMap<String, String>,
}

/// Where a link named `parent/leaf` sits.
enum Placed {
    /// At these components below the root (the last is the leaf).
    At(Vec<String>),
    /// Its parent resolves outside the sandbox.
    Outside,
    /// Its parent loops: the link cannot be created anywhere.
    Nowhere,
}

impl Links {
    fn place(&self, parent: &[String], leaf: &str) -> Placed {
        match resolve(&self.by_place, &[], &parent.join("/")) {
            Resolved::Inside(mut at) => {
                at.push(leaf.to_string());
                Placed::At(at)
            }
            Resolved::Outside => Placed::Outside,
            Resolved::Loop => Placed::Nowhere,
        }
    }
}

/// Where a link resolves.
#[derive(Debug, PartialEq, Eq)]
enum Resolved {
    /// To these components below the sandbox root.
    Inside(Vec<String>),
    /// Out of the sandbox: it climbs above the root or reaches an absolute target.
    Outside,
    /// Nowhere: more than [`MAX_LINK_HOPS`] links without ever leaving (a loop; the
    /// kernel gives up there too, with ELOOP, so nothing is ever reached through it).
    Loop,
}

/// Where a link with `target`, sitting in directory `dir`, ends up. Links named in
/// `links` are followed lexically, so a chain through another link of the archive is
/// judged too.
fn resolve(links: &HashMap<String, String>, dir: &[String], target: &str) -> Resolved {
    let mut at: Vec<String> = dir.to_vec();
    let mut pending: std::collections::VecDeque<String> =
        target.split('/').map(str::to_string).collect();
    let mut hops = 0;
    while let Some(part) = pending.pop_front() {
        match part.as_str() {
            "" | "." => {}
            ".." => {
                if at.pop().is_none() {
                    return Resolved::Outside;
                }
            }
            _ => {
                at.push(part);
                if let Some(next) = links.get(&at.join("/")) {
                    if next.starts_with('/') {
                        return Resolved::Outside;
                    }
                    hops += 1;
                    if hops > MAX_LINK_HOPS {
                        return Resolved::Loop;
                    }
                    at.pop();
                    for p in next.split('/').rev() {
                        pending.push_front(p.to_string());
                    }
                }
            }
        }
    }
    Resolved::Inside(at)
}

/// Remove sandboxes that runs which no longer exist left under `parent` (a run that was
/// killed never ran its Drop). Only our own user's directories are touched; those of live
/// processes (a concurrent run with another store) are left alone. Returns how many.
pub fn clean_leftovers(parent: &Path) -> usize {
    let Ok(entries) = fs::read_dir(parent) else {
        return 0;
    };
    let me = std::process::id();
    let uid = rustix::process::geteuid().as_raw();
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

pub(crate) fn process_alive(pid: u32) -> bool {
    let Some(pid) = i32::try_from(pid)
        .ok()
        .and_then(rustix::process::Pid::from_raw)
    else {
        return false;
    };
    // Signal 0 only checks whether the process exists; nothing is sent.
    matches!(
        rustix::process::test_kill_process(pid),
        Ok(()) | Err(Errno::PERM)
    )
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
        let sb = sandbox(parent.path(), 1 << 20);
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
        let sb = sandbox(parent.path(), 1 << 20);
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
    fn links_sit_where_earlier_links_put_them() {
        let parent = tempfile::tempdir().unwrap();
        let sb = sandbox(parent.path(), 1 << 20);
        sb.make_dir(&entry("d")).unwrap();
        sb.note_symlink(&entry("d/s"), b"..").unwrap();
        // `d/s/t` is the root's `t`: `../outside` leaves from there.
        assert!(matches!(
            sb.note_symlink(&entry("d/s/t"), b"../outside"),
            Err(RestoreError::Unsafe(_))
        ));
        let sb = sandbox(parent.path(), 1 << 20);
        sb.note_symlink(&entry("a"), b".").unwrap();
        assert!(matches!(
            sb.note_symlink(&entry("a/a/a/b"), b"../../.."),
            Err(RestoreError::Unsafe(_))
        ));
        // Judged again at the end: `t` sits at the root through `a`, and `t -> s/..`
        // leaves once `s -> .` arrives.
        let sb = sandbox(parent.path(), 1 << 20);
        sb.note_symlink(&entry("a"), b".").unwrap();
        sb.note_symlink(&entry("a/t"), b"s/..").unwrap();
        sb.note_symlink(&entry("s"), b".").unwrap();
        assert!(matches!(sb.check_links(), Err(RestoreError::Unsafe(_))));
        // Links under a link that stay inside are fine.
        let sb = sandbox(parent.path(), 1 << 20);
        sb.note_symlink(&entry("a"), b".").unwrap();
        sb.note_symlink(&entry("a/a/b"), b"f").unwrap();
        sb.note_symlink(&entry("c"), b"a/b").unwrap();
        assert_eq!(sb.check_links().unwrap(), None);
    }

    #[test]
    fn sparse_files_are_written_with_holes_and_only_their_data_counts() {
        let parent = tempfile::tempdir().unwrap();
        let sb = sandbox(parent.path(), 1 << 20);
        let size = 64u64 << 20;
        // A map: the data regions one after another.
        let map = [(4096u64, 3u64), (size - 2, 2)];
        sb.write_sparse(&entry("m.img"), &mut &b"abcde"[..], Some(&map), size, 5)
            .unwrap();
        let got = fs::read(sb.root().join("m.img")).unwrap();
        assert_eq!(got.len() as u64, size);
        assert_eq!(&got[4096..4099], b"abc");
        assert_eq!(&got[got.len() - 2..], b"de");
        assert!(got[..4096].iter().all(|&b| b == 0));
        let meta = fs::metadata(sb.root().join("m.img")).unwrap();
        assert!(meta.blocks() * 512 < 1 << 20, "{} blocks", meta.blocks());
        // Expanded: zero runs become holes again.
        let mut expanded = vec![0u8; 8 << 20];
        expanded[5 << 20] = 1;
        sb.write_sparse(&entry("e.img"), &mut &expanded[..], None, 8 << 20, 4096)
            .unwrap();
        assert_eq!(fs::read(sb.root().join("e.img")).unwrap(), expanded);
        assert!(sb.restored() < 1 << 20);
        // A map past the size, or less data than it declares, is corrupt.
        assert!(matches!(
            sb.write_sparse(&entry("x"), &mut &b"ab"[..], Some(&[(10, 2)]), 11, 2),
            Err(RestoreError::Corrupt(_))
        ));
        assert!(matches!(
            sb.write_sparse(&entry("y"), &mut &b"a"[..], Some(&[(0, 2)]), 4, 2),
            Err(RestoreError::Corrupt(_))
        ));
    }

    #[test]
    fn entries_and_directories_are_counted() {
        let parent = tempfile::tempdir().unwrap();
        let sb = sandbox(parent.path(), 1 << 20).with_max_entries(5);
        // One file, two directories made on the way.
        sb.write_file(&entry("a/b/f"), &mut &b""[..]).unwrap();
        assert_eq!(sb.entries(), 3);
        sb.make_dir(&entry("a/b")).unwrap();
        sb.note_symlink(&entry("l"), b"a").unwrap();
        assert!(matches!(
            sb.write_file(&entry("g"), &mut &b""[..]),
            Err(RestoreError::Entries { limit: 5 })
        ));
        // Each costs ENTRY_COST bytes against the byte limit too.
        let sb = sandbox(parent.path(), 3 * ENTRY_COST);
        for i in 0..3 {
            sb.write_file(&entry(&format!("e{i}")), &mut &b""[..])
                .unwrap();
        }
        assert!(matches!(
            sb.make_dir(&entry("d")),
            Err(RestoreError::Limit { .. })
        ));
    }

    #[test]
    fn link_loops_resolve_nowhere_and_are_not_escapes() {
        let parent = tempfile::tempdir().unwrap();
        let sb = sandbox(parent.path(), 1 << 20);
        sb.note_symlink(&entry("a"), b"b").unwrap();
        sb.note_symlink(&entry("b"), b"a").unwrap();
        sb.note_symlink(&entry("d/grow"), b"grow/x").unwrap();
        let note = sb.check_links().unwrap().expect("the loops are noted");
        assert!(
            note.starts_with(
                "3 symbolic links loop without leaving the sandbox (\"a\", \"b\", \"d/grow\")"
            ),
            "{note}"
        );
        // Through a loop nothing is reached: a hard link to it is corrupt, not an escape.
        assert!(matches!(
            sb.hard_link(&entry("h"), b"a"),
            Err(RestoreError::Corrupt(_))
        ));
        // Loops do not hide an escape beside them (`t -> s/..` leaves once `s -> .`).
        sb.note_symlink(&entry("t"), b"s/..").unwrap();
        sb.note_symlink(&entry("s"), b".").unwrap();
        assert!(matches!(sb.check_links(), Err(RestoreError::Unsafe(_))));
    }

    #[test]
    fn hard_links_only_to_files_inside() {
        let parent = tempfile::tempdir().unwrap();
        let outside = parent.path().join("outside.txt");
        fs::write(&outside, "keep").unwrap();
        let sb = sandbox(parent.path(), 1 << 20);
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

    #[test]
    fn open_directories_never_lead_outside_when_a_parent_is_swapped_for_a_link() {
        let parent = tempfile::tempdir().unwrap();
        let outside = parent.path().join("outside");
        fs::create_dir(&outside).unwrap();
        let sb = sandbox(parent.path(), 1 << 20);
        sb.write_file(&entry("d/e/a.txt"), &mut &b"a"[..]).unwrap();
        // Something other than the archive swaps a directory the sandbox made (and keeps
        // open) for a symbolic link to the outside.
        fs::rename(sb.root().join("d"), sb.root().join("moved")).unwrap();
        std::os::unix::fs::symlink(&outside, sb.root().join("d")).unwrap();
        // Through the open handle the file lands in the real directory, inside.
        sb.write_file(&entry("d/e/b.txt"), &mut &b"b"[..]).unwrap();
        assert_eq!(fs::read(sb.root().join("moved/e/b.txt")).unwrap(), b"b");
        // Walked afresh from the root, the link is refused, never followed.
        sb.forget_dirs();
        for attempt in [
            sb.write_file(&entry("d/e/c.txt"), &mut &b"c"[..]),
            sb.make_dir(&entry("d/f")).map(|()| Written {
                bytes: 0,
                new: true,
            }),
            sb.hard_link(&entry("d/g"), b"moved/e/a.txt")
                .map(|_| Written {
                    bytes: 0,
                    new: true,
                }),
        ] {
            assert!(
                matches!(attempt, Err(RestoreError::Corrupt(_))),
                "{attempt:?}"
            );
        }
        assert_eq!(
            fs::read_dir(&outside).unwrap().count(),
            0,
            "nothing outside"
        );
    }

    #[test]
    fn an_archive_cannot_replace_a_directory_it_made() {
        let parent = tempfile::tempdir().unwrap();
        let sb = sandbox(parent.path(), 1 << 20);
        sb.make_dir(&entry("d")).unwrap();
        sb.write_file(&entry("f"), &mut &b"f"[..]).unwrap();
        // A file or a hard link of the same name is refused; a symbolic link is only noted.
        assert!(matches!(
            sb.write_file(&entry("d"), &mut &b"x"[..]),
            Err(RestoreError::Corrupt(_))
        ));
        assert!(matches!(
            sb.hard_link(&entry("d"), b"f"),
            Err(RestoreError::Corrupt(_))
        ));
        sb.note_symlink(&entry("d"), b"f").unwrap();
        sb.write_file(&entry("d/inside.txt"), &mut &b"in"[..])
            .unwrap();
        assert!(fs::symlink_metadata(sb.root().join("d")).unwrap().is_dir());
        assert_eq!(fs::read(sb.root().join("d/inside.txt")).unwrap(), b"in");
        // A file where a directory is needed, also once the directory handles are closed.
        for forget in [false, true] {
            if forget {
                sb.forget_dirs();
            }
            assert!(matches!(
                sb.write_file(&entry("f/x"), &mut &b"x"[..]),
                Err(RestoreError::Corrupt(_))
            ));
        }
        assert_eq!(fs::read(sb.root().join("f")).unwrap(), b"f");
    }

    #[test]
    fn more_directories_than_stay_open_and_paths_beyond_path_max() {
        let parent = tempfile::tempdir().unwrap();
        let sb = sandbox(parent.path(), 1 << 20);
        for i in 0..(MAX_OPEN_DIRS * 2 + 7) {
            let name = format!("a{}/b{i}/c/f.txt", i % 3);
            sb.write_file(&entry(&name), &mut &b"x"[..]).unwrap();
        }
        assert!(sb.dirs.lock().unwrap().open.len() <= MAX_OPEN_DIRS);
        assert_eq!(fs::read(sb.root().join("a1/b100/c/f.txt")).unwrap(), b"x");
        let deep = "d/".repeat(libc::PATH_MAX as usize / 2) + "f";
        let err = sb.write_file(&entry(&deep), &mut &b"x"[..]).unwrap_err();
        assert!(
            matches!(&err, RestoreError::Failed(m) if m.contains("too long")),
            "{err:?}"
        );
        let long = "n".repeat(300);
        let err = sb.write_file(&entry(&long), &mut &b"x"[..]).unwrap_err();
        assert!(matches!(&err, RestoreError::Failed(_)), "{err:?}");
    }
}
