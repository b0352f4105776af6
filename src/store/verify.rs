//! Verification facts: one row per backup examined by `--verify`, the checksum recorded at
//! first sight (trust on first use, never overwritten), and when each backup was last
//! hashed (the rotation's order).

use super::sql::{Backend, ToValue, Value, array_literal};
use super::{Store, from_unix, to_unix};
use crate::config::ChecksumAlgo;
use anyhow::Result;
use chrono::{DateTime, Utc};
use std::collections::HashMap;
use std::rc::Rc;

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

/// The evidence one examination compared (stored in `verifications.method`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VerifyMethod {
    /// The backup's recorded checksum.
    Checksum,
    /// A checksum file beside the backup.
    Sidecar,
    /// Both.
    ChecksumAndSidecar,
    /// Nothing to compare yet: the checksum was recorded.
    FirstSight,
    /// The size and modification time against those recorded (changed: not hashed).
    Metadata,
    /// The content could not be read to its end.
    Read,
    /// A repository's own check (`restic check`, `borg check`).
    RepositoryCheck(crate::config::Tool),
}

impl VerifyMethod {
    pub fn as_str(self) -> &'static str {
        use crate::config::Tool;
        match self {
            VerifyMethod::Checksum => "checksum",
            VerifyMethod::Sidecar => "sidecar",
            VerifyMethod::ChecksumAndSidecar => "checksum+sidecar",
            VerifyMethod::FirstSight => "first-sight",
            VerifyMethod::Metadata => "metadata",
            VerifyMethod::Read => "read",
            VerifyMethod::RepositoryCheck(Tool::Restic) => "restic-check",
            VerifyMethod::RepositoryCheck(Tool::Borg) => "borg-check",
        }
    }
}

/// What one examination of one backup established.
#[derive(Debug, Clone, PartialEq)]
pub struct Verification {
    pub backup_id: i64,
    /// The location of the backup (its verdicts are tallied per location).
    pub location_id: i64,
    /// The evidence compared.
    pub method: VerifyMethod,
    /// The algorithm of the recorded checksum (or of the first sidecar when none).
    pub algo: Option<ChecksumAlgo>,
    pub result: VerifyResult,
    pub bytes: u64,
    pub duration_ms: u64,
    pub detail: Option<String>,
    /// `(algo, hex)` to record as the backup's checksum if it has none yet (only for a
    /// backup `hashed` this run).
    pub first_checksum: Option<(ChecksumAlgo, String)>,
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
        use super::sql::SqlType::{BigInt, Text};
        let tx = self.db.transaction()?;
        let now_s = to_unix(now);
        // (backup id, first checksum, its algorithm) of the backups hashed this run,
        // stamped once every verification is in.
        let mut hashed: Vec<Stamp> = Vec::new();
        // Passed and judged (passed or failed) per location, tallied once all are in.
        let mut tallies: std::collections::BTreeMap<i64, (i64, i64)> = Default::default();
        let rows = verifications.into_iter().map(|v| {
            let v = v.borrow();
            if v.hashed {
                let (algo, hex) = match &v.first_checksum {
                    Some((algo, hex)) => (Some(*algo), Some(hex.clone())),
                    None => (None, None),
                };
                hashed.push(Stamp {
                    location_id: v.location_id,
                    backup_id: v.backup_id,
                    hex,
                    algo,
                });
            }
            if matches!(v.result, VerifyResult::Passed | VerifyResult::Failed) {
                let t = tallies.entry(v.location_id).or_default();
                t.0 += i64::from(v.result == VerifyResult::Passed);
                t.1 += 1;
            }
            vec![
                Value::Int(v.backup_id),
                Value::Int(run_id),
                Value::Int(now_s),
                Value::Text(v.method.as_str().to_string()),
                v.algo.map(ChecksumAlgo::as_str).to_value(),
                Value::Text(v.result.as_str().to_string()),
                Value::Int(v.bytes as i64),
                Value::Int(v.duration_ms as i64),
                v.detail.to_value(),
            ]
        });
        // Written as hashing produces them: the store's work overlaps the hashing.
        let count = self.db.insert_rows(
            "verifications",
            &[
                "backup_id",
                "run_id",
                "at",
                "method",
                "algo",
                "result",
                "bytes",
                "duration_ms",
                "detail",
            ],
            &[
                BigInt, BigInt, BigInt, Text, Text, Text, BigInt, BigInt, Text,
            ],
            rows,
        )?;
        self.db.insert_rows(
            "verification_tallies",
            &["location_id", "run_id", "at", "passed", "judged"],
            &[BigInt; 5],
            tallies.into_iter().map(|(location, (passed, judged))| {
                vec![
                    Value::Int(location),
                    Value::Int(run_id),
                    Value::Int(now_s),
                    Value::Int(passed),
                    Value::Int(judged),
                ]
            }),
        )?;
        match self.backend() {
            // In process, one prepared single-row statement after another is fastest.
            Backend::Sqlite => {
                for Stamp {
                    backup_id: id,
                    hex,
                    algo,
                    ..
                } in &hashed
                {
                    let algo = algo.map(ChecksumAlgo::as_str);
                    self.db.execute(
                        "UPDATE backups SET last_verified_at = ?1,
                           checksum = COALESCE(checksum, CAST(?3 AS TEXT)),
                           checksum_algo = CASE WHEN checksum IS NULL AND ?3 IS NOT NULL THEN CAST(?4 AS TEXT) ELSE checksum_algo END,
                           checksum_at = CASE WHEN checksum IS NULL AND ?3 IS NOT NULL THEN ?1 ELSE checksum_at END
                         WHERE id = CAST(?2 AS BIGINT)",
                        &[&now_s, id, hex, &algo],
                    )?;
                }
            }
            // One statement with the values as three arrays: a list of thousands of
            // parameters costs the server more to parse and plan than to update.
            Backend::Postgres => {
                let mut rest = hashed.as_slice();
                while !rest.is_empty() {
                    // A backup twice: its first checksum must be in place before the
                    // second is weighed (every expression sees the row as it was).
                    let mut seen = std::collections::HashSet::new();
                    let n = rest
                        .iter()
                        .position(|s| !seen.insert(s.backup_id))
                        .unwrap_or(rest.len());
                    let (group, tail) = rest.split_at(n);
                    rest = tail;
                    let ids = array_literal(group.iter().map(|s| Some(s.backup_id.to_string())));
                    let hexes = array_literal(group.iter().map(|s| s.hex.clone()));
                    let algos =
                        array_literal(group.iter().map(|s| s.algo.map(|a| a.as_str().to_string())));
                    self.db.execute(
                        "UPDATE backups SET last_verified_at = ?1,
                           checksum = COALESCE(checksum, v.hex),
                           checksum_algo = CASE WHEN checksum IS NULL AND v.hex IS NOT NULL THEN v.hex_algo ELSE checksum_algo END,
                           checksum_at = CASE WHEN checksum IS NULL AND v.hex IS NOT NULL THEN ?1 ELSE checksum_at END
                         FROM unnest(CAST(?2 AS BIGINT[]), CAST(?3 AS TEXT[]), CAST(?4 AS TEXT[])) AS v(backup_id, hex, hex_algo)
                         WHERE backups.id = v.backup_id",
                        &[&now_s, &ids, &hexes, &algos],
                    )?;
                }
            }
        }
        tx.commit()?;
        self.stamp_kept_backups(&hashed, now_s);
        Ok(count as usize)
    }

    /// Stamp the backups kept for the run as the statements above stamped their rows, so
    /// that the steps after verification (health, the summary, the stored states) do not
    /// read every backup again. (Had a statement failed, the transaction rolled back and
    /// the kept rows, untouched, are still the stored ones.)
    fn stamp_kept_backups(&self, hashed: &[Stamp], at: i64) {
        let at = from_unix(at);
        let mut memo = self.memo.backups.borrow_mut();
        let mut by_location: HashMap<i64, Vec<&Stamp>> = HashMap::new();
        for s in hashed {
            by_location.entry(s.location_id).or_default().push(s);
        }
        for (location, stamps) in by_location {
            let Some(rows) = memo.get_mut(&location) else {
                continue;
            };
            let rows = Rc::make_mut(rows);
            let index: HashMap<i64, usize> =
                rows.iter().enumerate().map(|(i, b)| (b.id, i)).collect();
            // In order: a backup hashed twice keeps its first checksum, as in the store.
            for s in stamps {
                let Some(&i) = index.get(&s.backup_id) else {
                    // Not among them: they are not the stored rows; read them again.
                    memo.remove(&location);
                    break;
                };
                let b = &mut rows[i];
                b.last_verified_at = Some(at);
                if b.checksum.is_none() && s.hex.is_some() {
                    b.checksum = s.hex.clone();
                    b.checksum_algo = s.algo.map(|a| a.as_str().to_string());
                    b.checksum_at = Some(at);
                }
            }
        }
    }
}

/// A backup hashed this run: stamped with the time, and given its first checksum if it
/// has none yet.
struct Stamp {
    location_id: i64,
    backup_id: i64,
    hex: Option<String>,
    algo: Option<ChecksumAlgo>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::from_unix;
    use crate::store::sql::params;

    fn verification(id: i64, loc: i64, checksum: &str) -> Verification {
        Verification {
            backup_id: id,
            location_id: loc,
            method: VerifyMethod::FirstSight,
            algo: Some(ChecksumAlgo::Sha256),
            result: VerifyResult::Recorded,
            bytes: 3,
            duration_ms: 1,
            detail: None,
            first_checksum: Some((ChecksumAlgo::Sha256, checksum.into())),
            hashed: true,
        }
    }

    #[test]
    fn first_checksum_is_never_overwritten() {
        let (_dir, store, loc, id) = crate::store::store_with_one_backup("x", 3, 1);
        store
            .record_verifications(1, &[verification(id, loc, "aaaa")], from_unix(20))
            .unwrap();
        store
            .record_verifications(2, &[verification(id, loc, "bbbb")], from_unix(30))
            .unwrap();
        // Twice in one run: still the first.
        let (_db2, other, loc2, id2) = crate::store::store_with_one_backup("y", 3, 1);
        other
            .record_verifications(
                1,
                &[
                    verification(id2, loc2, "cccc"),
                    verification(id2, loc2, "dddd"),
                ],
                from_unix(20),
            )
            .unwrap();
        assert_eq!(other.backup(id2).unwrap().checksum.as_deref(), Some("cccc"));
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

    #[test]
    fn many_verifications_are_stored_whole_with_any_text() {
        // More than a few rows: PostgreSQL copies them (fewer go in one INSERT).
        let (_dir, store, loc, id) = crate::store::store_with_one_backup("x", 3, 1);
        let odd = "it's \"odd\"\n\t\\ \u{e9} {1,2} NULL";
        let rows: Vec<Verification> = (0..40)
            .map(|i| Verification {
                method: VerifyMethod::Checksum,
                result: VerifyResult::Passed,
                detail: (i % 2 == 0).then(|| odd.to_string()),
                first_checksum: None,
                ..verification(id, loc, "")
            })
            .collect();
        assert_eq!(
            store.record_verifications(7, &rows, from_unix(50)).unwrap(),
            40
        );
        let counted =
            |sql: &str| -> i64 { store.db.query_row(sql, params![]).unwrap().get(0).unwrap() };
        assert_eq!(
            counted("SELECT COUNT(*) FROM verifications WHERE run_id = 7 AND at = 50"),
            40
        );
        assert_eq!(
            counted("SELECT COUNT(*) FROM verifications WHERE detail IS NULL"),
            20
        );
        let detail: String = store
            .db
            .query_row(
                "SELECT detail FROM verifications WHERE detail IS NOT NULL LIMIT 1",
                params![],
            )
            .unwrap()
            .get(0)
            .unwrap();
        assert_eq!(detail, odd);
        assert_eq!(
            store.backup(id).unwrap().last_verified_at,
            Some(from_unix(50))
        );
    }
}
