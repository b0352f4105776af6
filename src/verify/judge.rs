//! Verdicts: what the hashes and stat of one backup say compared with the evidence held
//! about it (its recorded size, mtime and checksum, and its sidecars). Pure: the hashing
//! happened before, and storing happens after.

use super::hash::{Digests, Hashed, Outcome};
use super::sidecar::Expected;
use crate::config::ChecksumAlgo;
use crate::problem::{Kind, Problem, Severity};
use crate::store::{BackupRow, Verification, VerifyMethod, VerifyResult};
use chrono::{SecondsFormat, TimeZone};
use chrono_tz::Tz;

/// Where an object's server-side checksum is said to come from, in verdicts.
pub const SERVER_CHECKSUM: &str = "the server's x-amz-checksum-sha256 of the object";

/// One backup to hash and the evidence it is compared with.
#[derive(Debug, Clone)]
pub struct Job {
    pub backup: BackupRow,
    pub expected: Vec<Expected>,
}

impl Job {
    /// The algorithm the checksum is (or will be) recorded with.
    pub fn recorded_algo(&self, configured: ChecksumAlgo) -> ChecksumAlgo {
        self.backup
            .checksum_algo
            .as_deref()
            .and_then(|s| s.parse::<ChecksumAlgo>().ok())
            .unwrap_or(configured)
    }
}

/// A verdict on one backup, ready to store.
#[derive(Debug)]
pub struct Judged {
    pub verification: Verification,
    pub problems: Vec<Problem>,
    /// A verdict was reached (problems about this backup may be closed); false when the
    /// file vanished or kept changing.
    pub verdict: bool,
}

/// Who the verdicts are about: the location's name, its configured algorithm, its zone.
pub struct Judge<'a> {
    pub location: &'a str,
    pub configured: ChecksumAlgo,
    pub tz: Tz,
}

impl Judge<'_> {
    /// A backup whose size or mtime differs from what was recorded (whatever
    /// `settle` says). `now` is what the file looks like now: (size, mtime_ns).
    pub fn modified(&self, b: &BackupRow, now: (u64, i64), bytes: u64) -> Judged {
        let message = format!(
            "{} was modified after it was recorded: size {} → {} bytes, mtime {} → {}; its recorded checksum no longer proves anything about it",
            b.path,
            b.size,
            now.0,
            self.mtime_text(b.mtime_ns),
            self.mtime_text(now.1)
        );
        let problem = Problem::new(
            Kind::ModifiedAfterBackup,
            Severity::Critical,
            self.location,
            &message,
        )
        .with_path(&b.path);
        Judged {
            verification: self.row(
                b,
                VerifyMethod::Metadata,
                VerifyResult::Failed,
                bytes,
                Some(message),
            ),
            problems: vec![problem],
            verdict: true,
        }
    }

    /// Judge one hashed (or failed) job.
    pub fn hashed(&self, job: &Job, mut h: Hashed) -> Judged {
        // The server's own checksum of an object is evidence like a sidecar's.
        let with_server;
        let job = match h.server_sha256.take() {
            Some(digest) => {
                let mut expected = job.expected.clone();
                expected.push(Expected {
                    algo: ChecksumAlgo::Sha256,
                    digest,
                    file: SERVER_CHECKSUM.into(),
                    line: 0,
                });
                with_server = Job {
                    backup: job.backup.clone(),
                    expected,
                };
                &with_server
            }
            None => job,
        };
        let b = &job.backup;
        let ms = h.duration.as_millis() as u64;
        let mut judged = match h.outcome {
            Outcome::Hashed { digests, stamp }
                if (stamp.size, stamp.mtime_ns) != (b.size, b.mtime_ns) =>
            {
                // Changed between the scan and the read: the content is not the backup's.
                let _ = digests;
                self.modified(b, (stamp.size, stamp.mtime_ns), h.bytes)
            }
            Outcome::Hashed { digests, .. } => self.compare(job, &digests, h.bytes),
            Outcome::Changing { last: Some(s) } if (s.size, s.mtime_ns) != (b.size, b.mtime_ns) => {
                self.modified(b, (s.size, s.mtime_ns), h.bytes)
            }
            Outcome::Changing { .. } => self.no_verdict(
                b,
                h.bytes,
                "kept changing while it was read (twice); no verdict this run",
            ),
            Outcome::Vanished => self.no_verdict(
                b,
                h.bytes,
                "vanished while it was being verified; the next scan records the deletion",
            ),
            Outcome::Unreadable(e) => self.unreadable(job, &e, h.bytes),
        };
        judged.verification.duration_ms = ms;
        judged
    }

    fn compare(&self, job: &Job, digests: &Digests, bytes: u64) -> Judged {
        let b = &job.backup;
        let recorded_algo = job.recorded_algo(self.configured);
        let mut problems = Vec::new();
        let mut details = Vec::new();
        if let (Some(old), Some(new)) = (b.checksum.as_deref(), digests.get(recorded_algo))
            && old != new
        {
            let when = b
                .checksum_at
                .map(|t| {
                    t.with_timezone(&self.tz)
                        .to_rfc3339_opts(SecondsFormat::Secs, false)
                })
                .unwrap_or_else(|| "earlier".into());
            let message = format!(
                "{}: {} is now {new} but {old} was recorded at {when}; size ({} bytes) and mtime ({}) are unchanged, so the content changed silently (bit rot, a failing disk or tampering)",
                b.path,
                recorded_algo.as_str(),
                b.size,
                self.mtime_text(b.mtime_ns)
            );
            details.push(message.clone());
            problems.push(
                Problem::new(
                    Kind::ChecksumMismatch,
                    Severity::Critical,
                    self.location,
                    message,
                )
                .with_path(&b.path),
            );
        }
        let wrong: Vec<(&Expected, &str)> = job
            .expected
            .iter()
            .filter_map(|e| {
                digests
                    .get(e.algo)
                    .filter(|actual| *actual != e.digest)
                    .map(|actual| (e, actual))
            })
            .collect();
        if let Some((e, actual)) = wrong.first() {
            let more = match wrong.len() {
                1 => String::new(),
                n => format!(" (and {} more sidecar entries disagree)", n - 1),
            };
            let evidence = match e.line {
                0 => e.file.clone(),
                line => format!("sidecar {}:{line}", e.file),
            };
            let message = format!(
                "{}: {} is {actual} but {evidence} says {}{more}",
                b.path,
                e.algo.as_str(),
                e.digest
            );
            details.push(message.clone());
            problems.push(
                Problem::new(
                    Kind::SidecarMismatch,
                    Severity::Critical,
                    self.location,
                    message,
                )
                .with_path(&b.path),
            );
        }
        let method = match (b.checksum.is_some(), !job.expected.is_empty()) {
            (true, true) => VerifyMethod::ChecksumAndSidecar,
            (true, false) => VerifyMethod::Checksum,
            (false, true) => VerifyMethod::Sidecar,
            (false, false) => VerifyMethod::FirstSight,
        };
        let result = if !problems.is_empty() {
            VerifyResult::Failed
        } else if method == VerifyMethod::FirstSight {
            VerifyResult::Recorded
        } else {
            VerifyResult::Passed
        };
        let detail = (!details.is_empty()).then(|| details.join("; "));
        let mut row = self.row(b, method, result, bytes, detail);
        row.hashed = true;
        if b.checksum.is_none() {
            row.first_checksum = digests
                .get(recorded_algo)
                .map(|d| (recorded_algo, d.to_string()));
        }
        Judged {
            verification: row,
            problems,
            verdict: true,
        }
    }

    /// Unreadable content cannot match its evidence; without evidence there is no verdict.
    fn unreadable(&self, job: &Job, e: &std::io::Error, bytes: u64) -> Judged {
        let b = &job.backup;
        if matches!(
            e.kind(),
            std::io::ErrorKind::PermissionDenied | std::io::ErrorKind::ConnectionAborted
        ) {
            // The monitor's own access (or a transfer that broke off), not the content:
            // `--monitor` reports it as `unreadable_path` or `location_unavailable`.
            return self.no_verdict(b, bytes, &format!("cannot be read: {e}"));
        }
        let kind = if b.checksum.is_some() {
            Kind::ChecksumMismatch
        } else if !job.expected.is_empty() {
            Kind::SidecarMismatch
        } else {
            return self.no_verdict(b, bytes, &format!("cannot be read: {e}"));
        };
        let message = format!(
            "{} cannot be read to its end ({e}), so it can no longer be shown to match its {}",
            b.path,
            if kind == Kind::ChecksumMismatch {
                "recorded checksum"
            } else {
                "sidecar"
            }
        );
        Judged {
            verification: self.row(
                b,
                VerifyMethod::Read,
                VerifyResult::Failed,
                bytes,
                Some(message.clone()),
            ),
            problems: vec![
                Problem::new(kind, Severity::Critical, self.location, message).with_path(&b.path),
            ],
            verdict: true,
        }
    }

    fn no_verdict(&self, b: &BackupRow, bytes: u64, why: &str) -> Judged {
        tracing::warn!(location = %self.location, "{}: {why}", b.path);
        Judged {
            verification: self.row(
                b,
                VerifyMethod::Read,
                VerifyResult::Error,
                bytes,
                Some(why.to_string()),
            ),
            problems: Vec::new(),
            verdict: false,
        }
    }

    fn row(
        &self,
        b: &BackupRow,
        method: VerifyMethod,
        result: VerifyResult,
        bytes: u64,
        detail: Option<String>,
    ) -> Verification {
        Verification {
            backup_id: b.id,
            location_id: b.location_id,
            method,
            algo: Some(
                b.checksum_algo
                    .as_deref()
                    .and_then(|s| s.parse::<ChecksumAlgo>().ok())
                    .unwrap_or(self.configured),
            ),
            result,
            bytes,
            duration_ms: 0,
            detail,
            first_checksum: None,
            hashed: false,
        }
    }

    /// An mtime in the configured zone, to the nanosecond when it has one.
    fn mtime_text(&self, ns: i64) -> String {
        let t = self.tz.timestamp_nanos(ns);
        t.to_rfc3339_opts(SecondsFormat::AutoSi, false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verify::hash::Algos;
    use chrono::Utc;

    fn judge() -> Judge<'static> {
        Judge {
            location: "db",
            configured: ChecksumAlgo::Sha256,
            tz: chrono_tz::Tz::UTC,
        }
    }

    fn backup(dir: &std::path::Path, content: &[u8], checksum: Option<&str>) -> BackupRow {
        let p = dir.join("b.tar");
        std::fs::write(&p, content).unwrap();
        let meta = std::fs::metadata(&p).unwrap();
        use std::os::unix::fs::MetadataExt;
        let mtime_ns = meta.mtime() * 1_000_000_000 + meta.mtime_nsec();
        BackupRow {
            id: 1,
            location_id: 1,
            path: "b.tar".into(),
            size: meta.len(),
            mtime_ns,
            ts: Utc::now(),
            ts_source: "mtime".into(),
            seen_size: meta.len(),
            seen_mtime_ns: mtime_ns,
            first_seen: Utc::now(),
            last_seen: Utc::now(),
            deleted_at: None,
            checksum: checksum.map(str::to_string),
            checksum_algo: checksum.map(|_| "sha256".to_string()),
            checksum_at: None,
            last_verified_at: None,
        }
    }

    fn run(dir: &std::path::Path, job: &Job) -> Judged {
        let algos = Algos {
            sha256: true,
            md5: true,
            blake3: true,
        };
        let h = super::super::hash::hash_file(&dir.join(&job.backup.path), algos, &|_| {});
        judge().hashed(job, h)
    }

    const ABC_SHA: &str = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";

    #[test]
    fn first_sight_records_and_is_not_a_pass() {
        let dir = tempfile::tempdir().unwrap();
        let job = Job {
            backup: backup(dir.path(), b"abc", None),
            expected: vec![],
        };
        let j = run(dir.path(), &job);
        assert_eq!(j.verification.result, VerifyResult::Recorded);
        assert_eq!(
            j.verification.first_checksum,
            Some((ChecksumAlgo::Sha256, ABC_SHA.to_string()))
        );
        assert!(j.problems.is_empty());
    }

    #[test]
    fn changed_content_with_same_stat_is_a_checksum_mismatch() {
        let dir = tempfile::tempdir().unwrap();
        let job = Job {
            backup: backup(dir.path(), b"abd", Some(ABC_SHA)),
            expected: vec![],
        };
        let j = run(dir.path(), &job);
        assert_eq!(j.verification.result, VerifyResult::Failed);
        assert_eq!(j.problems[0].kind, Kind::ChecksumMismatch);
        assert!(j.problems[0].message.contains(ABC_SHA), "old value named");
        assert_eq!(j.verification.first_checksum, None, "never overwritten");
    }

    #[test]
    fn sidecar_mismatch_names_the_file_and_line() {
        let dir = tempfile::tempdir().unwrap();
        let job = Job {
            backup: backup(dir.path(), b"abc", Some(ABC_SHA)),
            expected: vec![Expected {
                algo: ChecksumAlgo::Md5,
                digest: "00000000000000000000000000000000".into(),
                file: "MD5SUMS".into(),
                line: 4,
            }],
        };
        let j = run(dir.path(), &job);
        assert_eq!(j.problems.len(), 1);
        assert_eq!(j.problems[0].kind, Kind::SidecarMismatch);
        assert!(j.problems[0].message.contains("MD5SUMS:4"));
        assert_eq!(j.verification.method, VerifyMethod::ChecksumAndSidecar);
    }

    #[test]
    fn a_file_different_from_its_record_is_modified_not_mismatched() {
        let dir = tempfile::tempdir().unwrap();
        let mut b = backup(dir.path(), b"abc", Some(ABC_SHA));
        b.size = 2;
        let j = run(
            dir.path(),
            &Job {
                backup: b,
                expected: vec![],
            },
        );
        assert_eq!(j.problems[0].kind, Kind::ModifiedAfterBackup);
        assert!(j.problems[0].message.contains("size 2 → 3 bytes"));
        assert!(!j.verification.hashed, "not evidence for the rotation");
    }

    #[test]
    fn a_vanished_file_gives_no_verdict() {
        let dir = tempfile::tempdir().unwrap();
        let b = backup(dir.path(), b"abc", Some(ABC_SHA));
        std::fs::remove_file(dir.path().join("b.tar")).unwrap();
        let j = run(
            dir.path(),
            &Job {
                backup: b,
                expected: vec![],
            },
        );
        assert!(!j.verdict);
        assert_eq!(j.verification.result, VerifyResult::Error);
        assert!(j.problems.is_empty());
    }
}
