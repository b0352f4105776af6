//! Verification facts: one row per backup examined by `--verify`, the checksum recorded at
//! first sight (trust on first use, never overwritten), and when each backup was last
//! hashed (the rotation's order).

use super::sql::params;
use super::{Store, to_unix};
use anyhow::Result;
use chrono::{DateTime, Utc};

/// The outcome stored in `verifications.result`. Only `passed` and `failed` are
/// comparisons with earlier evidence and count for the health score.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VerifyResult {
    /// First sight without a sidecar: the checksum was recorded, nothing was compared.
    Recorded,
    Passed,
    Failed,
    /// No verdict: the file vanished, kept changing or could not be read.
    Error,
}

impl VerifyResult {
    pub fn as_str(self) -> &'static str {
        match self {
            VerifyResult::Recorded => "recorded",
            VerifyResult::Passed => "passed",
            VerifyResult::Failed => "failed",
            VerifyResult::Error => "error",
        }
    }
}

/// What one examination of one backup established.
#[derive(Debug, Clone, PartialEq)]
pub struct Verification {
    pub backup_id: i64,
    /// The evidence compared: `checksum`, `sidecar`, `checksum+sidecar`, `metadata`, or
    /// `first-sight`.
    pub method: String,
    /// The algorithm of the recorded checksum (or of the first sidecar when none).
    pub algo: Option<&'static str>,
    pub result: VerifyResult,
    pub bytes: u64,
    pub duration_ms: u64,
    pub detail: Option<String>,
    /// `(algo, hex)` to record as the backup's checksum if it has none yet (only for a
    /// backup `hashed` this run).
    pub first_checksum: Option<(&'static str, String)>,
    /// The content was read to its end this run (moves it to the back of the rotation).
    pub hashed: bool,
}

impl Store {
    /// Store verifications of a run in one transaction. They may come from an iterator
    /// that is still producing them (hashing runs while they are written); nothing is
    /// committed until it ends. Returns how many were stored.
    pub fn record_verifications<V: std::borrow::Borrow<Verification>>(
        &self,
        run_id: i64,
        verifications: impl IntoIterator<Item = V>,
        now: DateTime<Utc>,
    ) -> Result<usize> {
        let mut count = 0;
        let tx = self.db.transaction()?;
        let now_s = to_unix(now);
        for v in verifications {
            let v = v.borrow();
            count += 1;
            self.db.execute(
                "INSERT INTO verifications (backup_id, run_id, at, method, algo, result, bytes, duration_ms, detail)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                params![
                    v.backup_id,
                    run_id,
                    now_s,
                    v.method,
                    v.algo,
                    v.result.as_str(),
                    v.bytes as i64,
                    v.duration_ms as i64,
                    v.detail
                ],
            )?;
            if v.hashed {
                let (algo, hex) = match &v.first_checksum {
                    Some((algo, hex)) => (Some(*algo), Some(hex.as_str())),
                    None => (None, None),
                };
                // `checksum IS NULL` is what makes trust-on-first-use never overwrite
                // (every expression sees the row as it was before the update).
                self.db.execute(
                    "UPDATE backups SET last_verified_at = ?2,
                       checksum = COALESCE(checksum, ?3),
                       checksum_algo = CASE WHEN checksum IS NULL AND ?3 IS NOT NULL THEN ?4 ELSE checksum_algo END,
                       checksum_at = CASE WHEN checksum IS NULL AND ?3 IS NOT NULL THEN ?2 ELSE checksum_at END
                     WHERE id = ?1",
                    params![v.backup_id, now_s, hex, algo],
                )?;
            }
        }
        tx.commit()?;
        Ok(count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::from_unix;

    fn verification(id: i64, checksum: &str) -> Verification {
        Verification {
            backup_id: id,
            method: "first-sight".into(),
            algo: Some("sha256"),
            result: VerifyResult::Recorded,
            bytes: 3,
            duration_ms: 1,
            detail: None,
            first_checksum: Some(("sha256", checksum.into())),
            hashed: true,
        }
    }

    #[test]
    fn first_checksum_is_never_overwritten() {
        let (_dir, store, _loc, id) = crate::store::store_with_one_backup("x", 3, 1);
        store
            .record_verifications(1, &[verification(id, "aaaa")], from_unix(20))
            .unwrap();
        store
            .record_verifications(2, &[verification(id, "bbbb")], from_unix(30))
            .unwrap();
        let b = store.backup(id).unwrap();
        assert_eq!(b.checksum.as_deref(), Some("aaaa"));
        assert_eq!(b.checksum_at, Some(from_unix(20)));
        assert_eq!(b.last_verified_at, Some(from_unix(30)));
        let rows: i64 = store
            .db
            .query_row("SELECT COUNT(*) FROM verifications", params![])
            .unwrap()
            .get(0)
            .unwrap();
        assert_eq!(rows, 2);
    }
}
