//! A directory on this machine: today's scan, `open_found` and free-space check behind
//! the [`Source`] seam. Readers that want speed take [`Source::local_path`] and read the
//! file themselves (the verify hash loop maps and reads files as it was tuned to).

use super::{Capabilities, Fingerprint, Opened, Source, SourceError};
use crate::config::Location;
use crate::scan::{self, ScanResult};
use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;

pub struct DirSource {
    root: PathBuf,
}

impl DirSource {
    pub fn new(root: PathBuf) -> DirSource {
        DirSource { root }
    }
}

/// A file's fingerprint from its metadata.
pub fn fingerprint(meta: &std::fs::Metadata) -> Fingerprint {
    Fingerprint::File {
        size: meta.len(),
        mtime_ns: crate::scan::mtime_ns(meta),
        dev: meta.dev(),
        ino: meta.ino(),
    }
}

impl Source for DirSource {
    fn describe(&self) -> String {
        self.root.display().to_string()
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            local_path: true,
            free_space: true,
            server_checksum: false,
        }
    }

    fn list(&self, loc: &Location, tz: &Tz, now: DateTime<Utc>) -> Result<ScanResult, SourceError> {
        Ok(scan::scan(loc, tz, now)?)
    }

    fn available(&self) -> bool {
        self.root.is_dir()
    }

    fn local_path(&self, rel: &str) -> Option<PathBuf> {
        Some(self.root.join(rel))
    }

    fn stat(&self, rel: &str) -> Result<Option<Fingerprint>, SourceError> {
        // The name itself, never followed: a link swapped in is not what the scan saw.
        match std::fs::symlink_metadata(self.root.join(rel)) {
            Ok(meta) => Ok(Some(fingerprint(&meta))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(SourceError::Dir(scan::ScanError::Unreadable {
                path: self.root.join(rel).display().to_string(),
                source: e,
            })),
        }
    }

    fn open(&self, rel: &str) -> Result<Opened, SourceError> {
        let path = self.root.join(rel);
        let (file, meta) = scan::open_found(&path).map_err(|e| {
            SourceError::Dir(match e.kind() {
                std::io::ErrorKind::NotFound => scan::ScanError::Missing {
                    path: path.display().to_string(),
                },
                _ => scan::ScanError::Unreadable {
                    path: path.display().to_string(),
                    source: e,
                },
            })
        })?;
        Ok(Opened {
            reader: Box::new(file),
            fingerprint: fingerprint(&meta),
            server_sha256: None,
        })
    }

    fn disk_space(&self) -> Option<(u64, u64)> {
        scan::disk_space(&self.root)
    }

    fn sidecar_names(&self, dir: &str) -> Option<Vec<String>> {
        let listing = std::fs::read_dir(self.root.join(dir)).ok()?;
        Some(
            listing
                .flatten()
                .filter_map(|e| e.file_name().into_string().ok())
                .filter(|n| scan::is_sidecar(n))
                .collect(),
        )
    }

    fn read_sidecar(&self, rel: &str, max: u64) -> Result<Option<Vec<u8>>, String> {
        // Opened non-blocking and never through a link; read through a bound, whatever
        // the file claims (a FIFO would block, a link to a device would never end).
        let (file, meta) = match scan::open_found(&self.root.join(rel)) {
            Ok(opened) => opened,
            // Removed since the directory was listed: it proves nothing either way.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(format!("cannot be read: {e}")),
        };
        if meta.is_dir() {
            return Err("is a directory, not a checksum file: not read".into());
        }
        if !meta.is_file() {
            return Err("is not a regular file (a FIFO, device or socket): not read".into());
        }
        if meta.len() > max {
            return Err(format!("is {} bytes, too large to read", meta.len()));
        }
        let mut file = file;
        super::read_bounded(&mut file, max).map(Some).map_err(|e| {
            match e.starts_with("is more than") {
                true => format!("grew past {max} bytes while being read"),
                false => e,
            }
        })
    }
}
