//! Where a location's backups come from: the seam every reader goes through to list,
//! stat and open what a location holds. Two sources today, shaped by what they can do:
//! a directory ([`dir`]: a local path, seekable, on a filesystem with free space) and an
//! S3 bucket ([`s3`]: streamed over HTTP, with a server-side checksum and an ETag).
//! Backup-tool repositories ([`repository`]: restic snapshots, borg archives, listed,
//! checked and restored by their tool) and job logs ([`job_log`]: rows of a backup
//! system's database) sit beside the seam: they have no bytes to stream, so monitor,
//! verify and restore hand their locations to them before opening anything.
//!
//! What a caller may rely on is in [`Capabilities`]: a source with a local path is read
//! through it (the verify hash loop and the restore pipeline stay exactly as tuned for
//! files); a source without one is streamed through [`Source::open`], and what needs to
//! seek is spooled first. Not for: judging (monitor, verify, restore) or recording.

pub mod borg;
pub mod dir;
pub mod job_log;
pub mod repository;
pub mod restic;
pub mod s3;
pub mod tool;

use crate::config::Location;
use crate::scan::{ScanError, ScanResult};
use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use std::io::Read;
use std::path::PathBuf;
use std::sync::Arc;

/// What a source can do, so callers choose their path once per location.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Capabilities {
    /// Each backup is a file on this machine ([`Source::local_path`]): it can be opened,
    /// mapped and sought directly.
    pub local_path: bool,
    /// `min_free_space` means something: the backups sit on a filesystem of this machine.
    pub free_space: bool,
    /// The server may hold a checksum of an object ([`Opened::server_sha256`]).
    pub server_checksum: bool,
}

/// What identifies one backup's content without reading it: when it is the same as last
/// time, the content is taken to be unchanged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fingerprint {
    /// A file: size, mtime and inode.
    File {
        size: u64,
        mtime_ns: i64,
        dev: u64,
        ino: u64,
    },
    /// An object: size, LastModified and the ETag (or version id when versioned). An ETag
    /// with `-N` is of a multipart upload: it identifies the upload, it is not an MD5.
    Object {
        size: u64,
        mtime_ns: i64,
        etag: Option<String>,
        version_id: Option<String>,
    },
}

impl Fingerprint {
    pub fn size(&self) -> u64 {
        match self {
            Fingerprint::File { size, .. } | Fingerprint::Object { size, .. } => *size,
        }
    }

    pub fn mtime_ns(&self) -> i64 {
        match self {
            Fingerprint::File { mtime_ns, .. } | Fingerprint::Object { mtime_ns, .. } => *mtime_ns,
        }
    }
}

/// Why a source could not be listed or read. Each message names the place (never a
/// secret) and, for a server, its error code.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error(transparent)]
    Dir(#[from] ScanError),
    #[error(transparent)]
    S3(#[from] s3::S3Error),
}

impl SourceError {
    /// What a person can do about it, for the `location_unavailable` message.
    pub fn hint(&self) -> &'static str {
        match self {
            SourceError::Dir(ScanError::Missing { .. }) => "is the backup volume mounted?",
            SourceError::Dir(ScanError::NotADirectory { .. }) => {
                "point `path` at the directory that holds the backups"
            }
            // ELOOP: a link that leads back to itself, not a permission.
            SourceError::Dir(ScanError::Unreadable { source, .. })
                if source.raw_os_error() == Some(libc::ELOOP) =>
            {
                "a symbolic link on the way leads back to itself; point `path` at the real directory"
            }
            SourceError::Dir(ScanError::Unreadable { .. }) => {
                "check the permissions of the user running backup-monitor"
            }
            SourceError::S3(e) => e.hint(),
        }
    }

    /// The object is not there (any more).
    pub fn is_not_found(&self) -> bool {
        match self {
            SourceError::Dir(e) => matches!(e, ScanError::Missing { .. }),
            SourceError::S3(e) => e.is_not_found(),
        }
    }
}

/// One backup opened for streaming, with what the source said about it when it was
/// opened (the bytes read are those of this version).
pub struct Opened {
    pub reader: Box<dyn Read + Send>,
    pub fingerprint: Fingerprint,
    /// The server's SHA-256 of the whole object (lower-case hex), when it keeps one.
    pub server_sha256: Option<String>,
}

/// A location's backups, listed, stat'ed and opened.
pub trait Source: Send + Sync {
    /// Where the backups are, as messages show it (never a secret).
    fn describe(&self) -> String;

    fn capabilities(&self) -> Capabilities;

    /// Every backup under the location (globs, excludes, recursion, sidecars left out,
    /// timestamps, settling), as of `now`.
    fn list(&self, loc: &Location, tz: &Tz, now: DateTime<Utc>) -> Result<ScanResult, SourceError>;

    /// Whether the location can be reached at all (before planning work on it).
    fn available(&self) -> bool;

    /// The file of backup `rel`, when the source has local paths.
    fn local_path(&self, rel: &str) -> Option<PathBuf>;

    /// What backup `rel` looks like now; `Ok(None)` when it is gone.
    fn stat(&self, rel: &str) -> Result<Option<Fingerprint>, SourceError>;

    /// Open backup `rel` for streaming from its first byte.
    fn open(&self, rel: &str) -> Result<Opened, SourceError>;

    /// Free and total bytes where the backups are stored (`None`: unknown or meaningless).
    fn disk_space(&self) -> Option<(u64, u64)>;

    /// The names (not paths) of the sidecar files in directory `dir` (`""`: the top),
    /// `None` when it cannot be listed.
    fn sidecar_names(&self, dir: &str) -> Option<Vec<String>>;

    /// A sidecar's bytes, at most `max`: `Ok(None)` when it is gone, `Err(reason)` when
    /// it cannot be read or is larger.
    fn read_sidecar(&self, rel: &str, max: u64) -> Result<Option<Vec<u8>>, String>;
}

/// The source of a location, per its `path`.
pub fn of(loc: &Location) -> Arc<dyn Source> {
    match &loc.s3 {
        Some(s3) => Arc::new(s3::S3Source::new(s3)),
        None => Arc::new(dir::DirSource::new(loc.root.clone())),
    }
}

/// Bytes of a reader, at most `max`: Err(reason) past it.
pub(crate) fn read_bounded(reader: &mut dyn Read, max: u64) -> Result<Vec<u8>, String> {
    let mut bytes = Vec::new();
    reader
        .take(max + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("cannot be read: {e}"))?;
    if bytes.len() as u64 > max {
        return Err(format!("is more than {max} bytes, too large to read"));
    }
    Ok(bytes)
}
