//! Restore tests: one row per backup per run that considered it, and the lookup that
//! lets an unchanged backup keep its earlier verdict.

use super::sql::{Row, SqlResult, params};
use super::{Store, from_unix, to_unix};
use anyhow::Result;
use chrono::{DateTime, Utc};

/// What one restore test concluded.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    serde::Serialize,
    strum::IntoStaticStr,
    strum::EnumString,
    strum::Display,
)]
#[serde(rename_all = "lowercase")]
#[strum(serialize_all = "lowercase")]
pub enum Verdict {
    Passed,
    Failed,
    /// Could not be tested here; the detail says why.
    Skipped,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

/// A restore test to record. `carried_from` is the test whose verdict an unchanged
/// backup kept instead of being restored again.
#[derive(Debug, Clone)]
pub struct NewRestoreTest<'a> {
    pub backup_id: i64,
    pub run_id: i64,
    pub at: DateTime<Utc>,
    pub format: &'a str,
    pub result: Verdict,
    pub files: u64,
    pub bytes: u64,
    /// Tables and rows, when the content was a database whose rows were counted.
    pub database: Option<(u64, u64)>,
    pub duration_ms: u64,
    pub detail: Option<&'a str>,
    /// The backup file's size and mtime when it was tested.
    pub size: u64,
    pub mtime_ns: i64,
    /// The restore settings the verdict depends on.
    pub settings: &'a str,
    pub carried_from: Option<i64>,
}

/// The verdict of the test that last actually restored a backup.
#[derive(Debug, Clone, PartialEq)]
pub struct PreviousVerdict {
    /// The test that restored it (not a later carried copy).
    pub original_id: i64,
    pub at: DateTime<Utc>,
    pub format: String,
    pub verdict: Verdict,
    pub files: u64,
    pub bytes: u64,
    pub database: Option<(u64, u64)>,
    pub detail: Option<String>,
}

/// What one passed restore produced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Restored {
    pub files: u64,
    pub bytes: u64,
    /// Tables and rows, for databases whose rows were counted.
    pub database: Option<(u64, u64)>,
}

fn database(tables: Option<i64>, rows: Option<i64>) -> Option<(u64, u64)> {
    Some((tables? as u64, rows? as u64))
}

impl Store {
    pub fn record_restore_test(&self, t: &NewRestoreTest) -> Result<i64> {
        Ok(self.db.query_row(
            "INSERT INTO restore_tests (backup_id, run_id, at, format, result, files, bytes, duration_ms, detail, size, mtime_ns, settings, carried_from, tables, rows_restored, location_id)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15,
                     (SELECT location_id FROM backups WHERE id = ?1)) RETURNING id",
            params![
                t.backup_id,
                t.run_id,
                to_unix(t.at),
                t.format,
                t.result,
                t.files as i64,
                t.bytes as i64,
                t.duration_ms as i64,
                t.detail,
                t.size as i64,
                t.mtime_ns,
                t.settings,
                t.carried_from,
                t.database.map(|(tables, _)| tables as i64),
                t.database.map(|(_, rows)| rows as i64)
            ],
        )?
        .get(0)?)
    }

    /// The last passed/failed verdict on this backup when it had this size and mtime and
    /// was tested with these settings. Skipped tests never count: they are tried again.
    pub fn previous_restore_verdict(
        &self,
        backup_id: i64,
        size: u64,
        mtime_ns: i64,
        settings: &str,
    ) -> Result<Option<PreviousVerdict>> {
        let verdict = |r: &Row| -> SqlResult<PreviousVerdict> {
            Ok(PreviousVerdict {
                original_id: r.get(0)?,
                at: from_unix(r.get(1)?),
                format: r.get(2)?,
                verdict: r.get(3)?,
                files: r.get::<i64>(4)? as u64,
                bytes: r.get::<i64>(5)? as u64,
                detail: r.get(6)?,
                database: database(r.get(7)?, r.get(8)?),
            })
        };
        Ok(self
            .db
            .query_opt(
                "SELECT o.id, o.at, o.format, o.result, o.files, o.bytes, o.detail, o.tables, o.rows_restored
                 FROM restore_tests t JOIN restore_tests o ON o.id = COALESCE(t.carried_from, t.id)
                 WHERE t.backup_id = ?1 AND t.size = ?2 AND t.mtime_ns = ?3 AND t.settings = ?4
                   AND t.result IN ('passed', 'failed')
                 ORDER BY t.at DESC, t.id DESC LIMIT 1",
                params![backup_id, size as i64, mtime_ns, settings],
            )?
            .map(|r| verdict(&r))
            .transpose()?)
    }

    /// What the location's last `limit` passed restores of other backups in earlier runs
    /// produced, newest first. Only tests that restored (not verdicts an unchanged backup
    /// kept).
    pub fn recent_passed_restores(
        &self,
        location_id: i64,
        except_backup: i64,
        before_run: i64,
        limit: u32,
    ) -> Result<Vec<Restored>> {
        let restored = |r: &Row| -> SqlResult<Restored> {
            Ok(Restored {
                files: r.get::<i64>(0)? as u64,
                bytes: r.get::<i64>(1)? as u64,
                database: database(r.get(2)?, r.get(3)?),
            })
        };
        Ok(self.db.query_map(
            "SELECT t.files, t.bytes, t.tables, t.rows_restored
             FROM restore_tests t JOIN backups b ON b.id = t.backup_id
             WHERE b.location_id = ?1 AND t.backup_id <> ?2 AND COALESCE(t.run_id, 0) <> ?3
               AND t.result = 'passed' AND t.carried_from IS NULL
             ORDER BY t.at DESC, t.id DESC LIMIT ?4",
            params![location_id, except_backup, before_run, limit],
            restored,
        )?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verdicts_carry_only_for_same_file_and_settings() {
        let (_dir, store, loc, backup) = crate::store::store_with_one_backup("x.tar", 10, 5);
        let mut test = NewRestoreTest {
            backup_id: backup,
            run_id: 1,
            at: from_unix(100),
            format: "tar",
            result: Verdict::Skipped,
            files: 0,
            bytes: 0,
            database: None,
            duration_ms: 1,
            detail: Some("why"),
            size: 10,
            mtime_ns: 5,
            settings: "s",
            carried_from: None,
        };
        store.record_restore_test(&test).unwrap();
        assert_eq!(
            store.previous_restore_verdict(backup, 10, 5, "s").unwrap(),
            None
        );
        test.result = Verdict::Failed;
        test.at = from_unix(200);
        let first = store.record_restore_test(&test).unwrap();
        test.carried_from = Some(first);
        test.at = from_unix(300);
        store.record_restore_test(&test).unwrap();
        let prev = store
            .previous_restore_verdict(backup, 10, 5, "s")
            .unwrap()
            .unwrap();
        assert_eq!(
            (prev.original_id, prev.at, prev.verdict),
            (first, from_unix(200), Verdict::Failed)
        );
        assert_eq!(
            store.previous_restore_verdict(backup, 11, 5, "s").unwrap(),
            None
        );
        assert_eq!(
            store.previous_restore_verdict(backup, 10, 6, "s").unwrap(),
            None
        );
        assert_eq!(
            store.previous_restore_verdict(backup, 10, 5, "t").unwrap(),
            None
        );
        assert_eq!(store.restore_counts(loc, from_unix(0)).unwrap(), (0, 2));
    }
}
