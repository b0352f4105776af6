//! What `--report` reads: backups of a period with their latest verification and restore
//! results, recent verifications and restore tests, failure counts and stored daily
//! health of several locations at once. Read-only; every query works on empty
//! `verifications` / `restore_tests` tables.

use super::sql::{Row, SqlResult, ToValue, Value};
use super::{Store, from_unix, to_unix};
use anyhow::Result;
use chrono::{DateTime, Utc};
use std::collections::HashMap;

/// A backup of the report period, with the newest evidence about it.
#[derive(Debug, Clone, PartialEq)]
pub struct ReportBackup {
    pub location_id: i64,
    pub path: String,
    pub ts: DateTime<Utc>,
    /// Size at the latest scan.
    pub size: u64,
    pub checksum: Option<String>,
    pub checksum_algo: Option<String>,
    pub deleted_at: Option<DateTime<Utc>>,
    /// `passed | failed | recorded | error`, newest first.
    pub last_verification: Option<String>,
    pub last_verified_at: Option<DateTime<Utc>>,
    /// `passed | failed | skipped`.
    pub last_restore: Option<String>,
    pub last_restored_at: Option<DateTime<Utc>>,
}

/// One verification or restore test, with the backup it was about.
#[derive(Debug, Clone, PartialEq)]
pub struct ReportCheck {
    pub location_id: i64,
    pub path: String,
    pub at: DateTime<Utc>,
    /// Verification method or restore format.
    pub method: String,
    pub result: String,
    pub bytes: u64,
    pub files: u64,
    pub duration_ms: u64,
    pub detail: Option<String>,
}

/// Failures of a location over a period (Prometheus gauges), in backups: a backup that
/// failed five verifications is one failure.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct FailureCounts {
    /// Backups with a verification that failed or could not be performed (`failed`, `error`).
    pub verification: u64,
    /// Backups with a restore test that failed.
    pub restore: u64,
}

/// When a backup of a location last passed each kind of check.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct LastPassed {
    pub verification: Option<DateTime<Utc>>,
    pub restore: Option<DateTime<Utc>>,
}

/// One stored daily score.
#[derive(Debug, Clone, PartialEq)]
pub struct DailyScore {
    pub location_id: i64,
    pub day: String,
    pub score: Option<f64>,
}

pub(super) fn placeholders(n: usize, first: usize) -> String {
    (first..first + n)
        .map(|i| format!("?{i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `rows` rows of a `VALUES` list whose columns are cast to `types` (an SQL type
/// each), numbered from `?first` on: `(CAST(?2 AS BIGINT), CAST(?3 AS TEXT)), (...)`.
/// Typed, so that both engines read the columns alike (`v.column1`, ...).
pub(super) fn typed_rows(rows: usize, types: &[&str], first: usize) -> String {
    (0..rows)
        .map(|i| {
            let cells: Vec<String> = types
                .iter()
                .enumerate()
                .map(|(k, ty)| format!("CAST(?{} AS {ty})", first + i * types.len() + k))
                .collect();
            format!("({})", cells.join(", "))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// A list of values as statement parameters.
fn refs<T: ToValue>(args: &[T]) -> Vec<&dyn ToValue> {
    args.iter().map(|a| a as &dyn ToValue).collect()
}

impl Store {
    /// Backups of `location_ids` whose timestamp is in [since, until], deleted ones
    /// included, oldest first, each with its newest verification and restore result.
    pub fn report_backups(
        &self,
        location_ids: &[i64],
        since: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<Vec<ReportBackup>> {
        if location_ids.is_empty() {
            return Ok(Vec::new());
        }
        let sql = format!(
            "SELECT b.location_id, b.path, b.ts, b.seen_size, b.checksum, b.checksum_algo, b.deleted_at,
                    v.result, v.at, t.result, t.at
             FROM backups b
             LEFT JOIN verifications v ON v.id = (
                 SELECT id FROM verifications WHERE backup_id = b.id ORDER BY at DESC, id DESC LIMIT 1)
             LEFT JOIN restore_tests t ON t.id = (
                 SELECT id FROM restore_tests WHERE backup_id = b.id ORDER BY at DESC, id DESC LIMIT 1)
             WHERE b.ts >= ?1 AND b.ts <= ?2 AND b.location_id IN ({})
             ORDER BY b.ts, b.id",
            placeholders(location_ids.len(), 3)
        );
        let mut args: Vec<i64> = vec![to_unix(since), to_unix(until)];
        args.extend_from_slice(location_ids);
        let backup = |r: &Row| -> SqlResult<ReportBackup> {
            Ok(ReportBackup {
                location_id: r.get(0)?,
                path: r.get(1)?,
                ts: from_unix(r.get(2)?),
                size: r.get::<i64>(3)? as u64,
                checksum: r.get(4)?,
                checksum_algo: r.get(5)?,
                deleted_at: r.get::<Option<i64>>(6)?.map(from_unix),
                last_verification: r.get(7)?,
                last_verified_at: r.get::<Option<i64>>(8)?.map(from_unix),
                last_restore: r.get(9)?,
                last_restored_at: r.get::<Option<i64>>(10)?.map(from_unix),
            })
        };
        Ok(self.db.query_map(&sql, &refs(&args), backup)?)
    }

    /// The newest `limit` verifications of `location_ids` since `since`, newest first.
    pub fn recent_verifications(
        &self,
        location_ids: &[i64],
        since: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<ReportCheck>> {
        self.recent_checks(
            "SELECT b.location_id, b.path, c.at, c.method, c.result, c.bytes, 0, c.duration_ms, c.detail
             FROM verifications c JOIN backups b ON b.id = c.backup_id",
            location_ids,
            since,
            limit,
        )
    }

    /// The newest `limit` restore tests of `location_ids` since `since`, newest first.
    pub fn recent_restore_tests(
        &self,
        location_ids: &[i64],
        since: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<ReportCheck>> {
        self.recent_checks(
            "SELECT b.location_id, b.path, c.at, c.format, c.result, c.bytes, c.files, c.duration_ms, c.detail
             FROM restore_tests c JOIN backups b ON b.id = c.backup_id",
            location_ids,
            since,
            limit,
        )
    }

    fn recent_checks(
        &self,
        select: &str,
        location_ids: &[i64],
        since: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<ReportCheck>> {
        if location_ids.is_empty() {
            return Ok(Vec::new());
        }
        let sql = format!(
            "{select} WHERE c.at >= ?1 AND b.location_id IN ({}) ORDER BY c.at DESC, c.id DESC LIMIT ?2",
            placeholders(location_ids.len(), 3)
        );
        let mut args: Vec<i64> = vec![to_unix(since), limit as i64];
        args.extend_from_slice(location_ids);
        let check = |r: &Row| -> SqlResult<ReportCheck> {
            Ok(ReportCheck {
                location_id: r.get(0)?,
                path: r.get(1)?,
                at: from_unix(r.get(2)?),
                method: r.get(3)?,
                result: r.get(4)?,
                bytes: r.get::<i64>(5)? as u64,
                files: r.get::<i64>(6)? as u64,
                duration_ms: r.get::<i64>(7)? as u64,
                detail: r.get(8)?,
            })
        };
        Ok(self.db.query_map(&sql, &refs(&args), check)?)
    }

    /// The failures since `since` (in backups) and the last passed checks of several
    /// locations, in one statement for all of them (a round trip each on a shared
    /// store); every location asked about is in the answer. A verification's last pass
    /// comes from the runs' tallies: a location re-hashed every night has hundreds of
    /// verifications a year per backup.
    pub fn location_checks(
        &self,
        location_ids: &[i64],
        since: DateTime<Utc>,
    ) -> Result<HashMap<i64, (FailureCounts, LastPassed)>> {
        let mut out = HashMap::new();
        let sql = "SELECT l.id,
               (SELECT COUNT(DISTINCT c.backup_id) FROM backups b JOIN verifications c ON c.backup_id = b.id
                WHERE b.location_id = l.id AND c.at >= ?1 AND c.result IN ('failed', 'error')),
               (SELECT COUNT(DISTINCT c.backup_id) FROM restore_tests c
                WHERE c.location_id = l.id AND c.at >= ?1 AND c.result = 'failed'),
               (SELECT MAX(t.at) FROM verification_tallies t WHERE t.location_id = l.id AND t.passed > 0),
               (SELECT MAX(c.at) FROM restore_tests c WHERE c.location_id = l.id AND c.result = 'passed')
             FROM locations l WHERE l.id IN ({ids})";
        self.query_each_in(sql, &[&to_unix(since)], location_ids, |r| {
            let count = |i| -> SqlResult<u64> { Ok(r.get::<i64>(i)?.max(0) as u64) };
            let at = |i| -> SqlResult<Option<DateTime<Utc>>> {
                Ok(r.get::<Option<i64>>(i)?.map(from_unix))
            };
            out.insert(
                r.get::<i64>(0)?,
                (
                    FailureCounts {
                        verification: count(1)?,
                        restore: count(2)?,
                    },
                    LastPassed {
                        verification: at(3)?,
                        restore: at(4)?,
                    },
                ),
            );
            Ok(())
        })?;
        Ok(out)
    }

    /// Stored daily scores of `location_ids` for days in [from_day, to_day] (YYYY-MM-DD).
    pub fn daily_scores(
        &self,
        location_ids: &[i64],
        from_day: &str,
        to_day: &str,
    ) -> Result<Vec<DailyScore>> {
        if location_ids.is_empty() {
            return Ok(Vec::new());
        }
        let sql = format!(
            "SELECT location_id, day, score FROM health_daily
             WHERE day >= ?1 AND day <= ?2 AND location_id IN ({}) ORDER BY location_id, day COLLATE \"C\"",
            placeholders(location_ids.len(), 3)
        );
        let mut args: Vec<Value> = vec![
            Value::Text(from_day.to_string()),
            Value::Text(to_day.to_string()),
        ];
        args.extend(location_ids.iter().map(|&id| Value::Int(id)));
        let score = |r: &Row| -> SqlResult<DailyScore> {
            Ok(DailyScore {
                location_id: r.get(0)?,
                day: r.get(1)?,
                score: r.get(2)?,
            })
        };
        Ok(self.db.query_map(&sql, &refs(&args), score)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ChecksumAlgo;
    use crate::scan::FoundFile;
    use crate::store::VerifyMethod;
    use crate::store::sql::params;

    fn file(path: &str, ts: i64) -> FoundFile {
        FoundFile {
            path: path.into(),
            size: 10,
            mtime_ns: ts * 1_000_000_000,
            ts: from_unix(ts),
            ts_source: crate::timestamp::TimestampSource::FilenameFormat,
            settled: true,
        }
    }

    #[test]
    fn queries_work_on_empty_check_tables() {
        let (_dir, store, a) = crate::store::store_with_location("a", "database");
        let b = store
            .upsert_location("b", "/b", "files", from_unix(0))
            .unwrap();
        store
            .sync_scan(a, &[file("a1", 100), file("a2", 200)], from_unix(300))
            .unwrap();
        store
            .sync_scan(b, &[file("b1", 50)], from_unix(300))
            .unwrap();
        let rows = store
            .report_backups(&[a, b], from_unix(60), from_unix(300))
            .unwrap();
        let paths: Vec<&str> = rows.iter().map(|r| r.path.as_str()).collect();
        assert_eq!(paths, ["a1", "a2"], "b1 is before the period");
        assert!(rows.iter().all(|r| r.last_verification.is_none()));
        assert!(
            store
                .recent_verifications(&[a, b], from_unix(0), 10)
                .unwrap()
                .is_empty()
        );
        assert!(
            store
                .recent_restore_tests(&[a], from_unix(0), 10)
                .unwrap()
                .is_empty()
        );
        assert_eq!(
            store.location_checks(&[a], from_unix(0)).unwrap()[&a],
            Default::default(),
            "a location with no checks is in the answer, with none"
        );
        assert!(store.location_checks(&[], from_unix(0)).unwrap().is_empty());
        assert!(store.daily_scores(&[a], "0000", "9999").unwrap().is_empty());
        assert!(
            store
                .report_backups(&[], from_unix(0), from_unix(300))
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn latest_evidence_per_backup() {
        let (_dir, store, a) = crate::store::store_with_location("a", "database");
        store
            .sync_scan(a, &[file("a1", 100)], from_unix(300))
            .unwrap();
        let id = store.present_backups(a).unwrap()[0].id;
        use crate::store::VerifyResult::{Failed, Passed, Recorded};
        for (run, (at, result)) in [(400, Recorded), (500, Failed), (450, Passed)]
            .into_iter()
            .enumerate()
        {
            let v = crate::store::Verification {
                backup_id: id,
                location_id: a,
                method: VerifyMethod::Checksum,
                algo: Some(ChecksumAlgo::Sha256),
                result,
                bytes: 100,
                duration_ms: 1,
                detail: None,
                first_checksum: None,
                hashed: true,
            };
            store
                .record_verifications(run as i64, [v], from_unix(at))
                .unwrap();
        }
        store
            .db
            .execute(
                "INSERT INTO restore_tests (backup_id, at, format, result, size, mtime_ns) VALUES (?1, 600, 'sql', 'skipped', 10, 0)",
                params![id],
            )
            .unwrap();
        let rows = store
            .report_backups(&[a], from_unix(0), from_unix(1000))
            .unwrap();
        assert_eq!(rows[0].last_verification.as_deref(), Some("failed"));
        assert_eq!(rows[0].last_restore.as_deref(), Some("skipped"));
        let recent = store.recent_verifications(&[a], from_unix(0), 2).unwrap();
        assert_eq!(
            recent.iter().map(|c| c.at).collect::<Vec<_>>(),
            [from_unix(500), from_unix(450)]
        );
        let checks = |since| store.location_checks(&[a], from_unix(since)).unwrap()[&a];
        assert_eq!(
            checks(0),
            (
                FailureCounts {
                    verification: 1,
                    restore: 0
                },
                LastPassed {
                    verification: Some(from_unix(450)),
                    restore: None
                }
            )
        );
        assert_eq!(checks(460).0.verification, 1);
        assert_eq!(checks(501).0.verification, 0, "the failure is before");
    }

    #[test]
    fn a_backup_failing_many_checks_is_one_failure() {
        let (_dir, store, a) = crate::store::store_with_location("a", "database");
        store
            .sync_scan(a, &[file("a1", 100), file("a2", 100)], from_unix(300))
            .unwrap();
        let ids: Vec<i64> = store
            .present_backups(a)
            .unwrap()
            .iter()
            .map(|b| b.id)
            .collect();
        for (id, at, result) in [
            (ids[0], 400, "failed"),
            (ids[0], 500, "failed"),
            (ids[0], 600, "error"),
            (ids[1], 600, "failed"),
        ] {
            store
                .db
                .execute(
                    "INSERT INTO verifications (backup_id, at, method, result) VALUES (?1, ?2, 'checksum', ?3)",
                    params![id, at, result],
                )
                .unwrap();
        }
        for at in [700, 800] {
            store
                .db
                .execute(
                    "INSERT INTO restore_tests (backup_id, location_id, at, format, result, size, mtime_ns) VALUES (?1, ?3, ?2, 'sql', 'failed', 10, 0)",
                    params![ids[0], at, a],
                )
                .unwrap();
        }
        assert_eq!(
            store.location_checks(&[a], from_unix(0)).unwrap()[&a],
            (
                FailureCounts {
                    verification: 2,
                    restore: 1
                },
                LastPassed::default()
            )
        );
    }
}
