//! Health inputs and history: verification and restore pass counts over a window, and
//! the per-location daily score kept so trends are real history.

use super::sql::ToValue;
use super::{Store, to_unix};
use anyhow::Result;
use chrono::{DateTime, Utc};
use std::collections::HashMap;

/// (passed, judged) counts of a location's verifications and restore tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct JudgedCounts {
    pub verifications: (u64, u64),
    pub restore_tests: (u64, u64),
}

/// One day's stored score of a location.
#[derive(Debug, Clone, PartialEq)]
pub struct DailyHealth {
    pub day: String,
    pub score: Option<f64>,
    pub backup_rate: Option<f64>,
    pub verify_rate: Option<f64>,
    pub restore_rate: Option<f64>,
}

impl Store {
    /// (passed, judged) verifications of a location since `since`. Only comparisons with
    /// earlier evidence count: `recorded` (first sight) does not.
    pub fn verification_counts(
        &self,
        location_id: i64,
        since: DateTime<Utc>,
    ) -> Result<(u64, u64)> {
        Ok(self
            .judged_counts(&[location_id], since)?
            .remove(&location_id)
            .unwrap_or_default()
            .verifications)
    }

    /// (passed, judged) restore tests of a location since `since`; skipped ones do not count.
    pub fn restore_counts(&self, location_id: i64, since: DateTime<Utc>) -> Result<(u64, u64)> {
        Ok(self
            .judged_counts(&[location_id], since)?
            .remove(&location_id)
            .unwrap_or_default()
            .restore_tests)
    }

    /// The verification and restore counts of several locations since `since`, in one
    /// statement for all of them. Verifications are read from each run's tally per
    /// location (a few rows per location and night, where counting the verifications
    /// themselves read one row per backup and night, and on a shared store scanned every
    /// host's); restore tests, a few a night, by their location.
    /// Locations with nothing judged are absent.
    pub fn judged_counts(
        &self,
        location_ids: &[i64],
        since: DateTime<Utc>,
    ) -> Result<HashMap<i64, JudgedCounts>> {
        let mut out: HashMap<i64, JudgedCounts> = HashMap::new();
        if location_ids.is_empty() {
            return Ok(out);
        }
        let since = to_unix(since);
        let mut args: Vec<&dyn ToValue> = vec![&since];
        args.extend(location_ids.iter().map(|id| id as &dyn ToValue));
        let list = super::report::placeholders(location_ids.len(), 2);
        // Both in one statement: the first column says which.
        let sql = format!(
            "SELECT 0, location_id, CAST(SUM(passed) AS BIGINT), CAST(SUM(judged) AS BIGINT)
             FROM verification_tallies
             WHERE location_id IN ({list}) AND at >= ?1
             GROUP BY location_id
             UNION ALL
             SELECT 1, location_id, COUNT(*) FILTER (WHERE result = 'passed'), COUNT(*)
             FROM restore_tests
             WHERE location_id IN ({list}) AND at >= ?1 AND result IN ('passed', 'failed')
             GROUP BY location_id"
        );
        self.db.query_each(&sql, &args, |r| {
            let counts = (r.get(2)?, r.get(3)?);
            let of = out.entry(r.get(1)?).or_default();
            match r.get::<i64>(0)? {
                0 => of.verifications = counts,
                _ => of.restore_tests = counts,
            }
            Ok(())
        })?;
        Ok(out)
    }

    /// Store (replace) a location's score for `day` (YYYY-MM-DD in the configured zone).
    pub fn record_daily_health(
        &self,
        location_id: i64,
        day: &str,
        h: &DailyHealth,
        now: DateTime<Utc>,
    ) -> Result<()> {
        self.record_daily_healths(day, &[(location_id, h.clone())], now)
    }

    /// [`Store::record_daily_health`] of several locations for one day, in one statement
    /// per hundred.
    pub fn record_daily_healths(
        &self,
        day: &str,
        figures: &[(i64, DailyHealth)],
        now: DateTime<Utc>,
    ) -> Result<()> {
        let now = to_unix(now);
        for chunk in figures.chunks(100) {
            let mut args: Vec<&dyn ToValue> = vec![&day, &now];
            let mut rows = Vec::with_capacity(chunk.len());
            for (i, (id, h)) in chunk.iter().enumerate() {
                args.extend([
                    id as &dyn ToValue,
                    &h.score,
                    &h.backup_rate,
                    &h.verify_rate,
                    &h.restore_rate,
                ]);
                let n = i * 5 + 3;
                rows.push(format!(
                    "(?{}, ?1, CAST(?{} AS DOUBLE PRECISION), CAST(?{} AS DOUBLE PRECISION), CAST(?{} AS DOUBLE PRECISION), CAST(?{} AS DOUBLE PRECISION), ?2)",
                    n,
                    n + 1,
                    n + 2,
                    n + 3,
                    n + 4
                ));
            }
            self.db.execute(
                &format!(
                    "INSERT INTO health_daily (location_id, day, score, backup_rate, verify_rate, restore_rate, computed_at)
                     VALUES {}
                     ON CONFLICT(location_id, day) DO UPDATE SET score = excluded.score, backup_rate = excluded.backup_rate,
                       verify_rate = excluded.verify_rate, restore_rate = excluded.restore_rate, computed_at = excluded.computed_at",
                    rows.join(", ")
                ),
                &args,
            )?;
        }
        Ok(())
    }

    /// The score recorded for each of `location_ids`: `today`'s (or the first day
    /// after it), else the most recent day's; in one statement. Locations with no
    /// recorded day are absent.
    pub fn stored_scores(
        &self,
        location_ids: &[i64],
        today: &str,
    ) -> Result<HashMap<i64, Option<f64>>> {
        let mut out = HashMap::new();
        let sql = "SELECT l.id,
               (SELECT COUNT(*) FROM health_daily h WHERE h.location_id = l.id AND h.day >= ?1),
               (SELECT h.score FROM health_daily h WHERE h.location_id = l.id AND h.day >= ?1
                ORDER BY h.day COLLATE \"C\" LIMIT 1),
               (SELECT COUNT(*) FROM health_daily h WHERE h.location_id = l.id),
               (SELECT h.score FROM health_daily h WHERE h.location_id = l.id
                ORDER BY h.day COLLATE \"C\" DESC LIMIT 1)
             FROM locations l WHERE l.id IN ({ids})";
        self.query_each_in(sql, &[&today], location_ids, |r| {
            let score = if r.get::<i64>(1)? > 0 {
                r.get::<Option<f64>>(2)?
            } else if r.get::<i64>(3)? > 0 {
                r.get::<Option<f64>>(4)?
            } else {
                return Ok(());
            };
            out.insert(r.get::<i64>(0)?, score);
            Ok(())
        })?;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ChecksumAlgo;
    use crate::store::VerifyMethod;
    use crate::store::from_unix;
    use crate::store::restore::{NewRestoreTest, Verdict};
    use crate::store::sql::params;
    use crate::store::verify::{Verification, VerifyResult};

    /// The counts as they were read before tallies: the verifications (or restore tests)
    /// themselves, by their backup's location.
    fn counted(store: &Store, table: &str, location: i64, since: i64) -> (u64, u64) {
        let r = store
            .db
            .query_row(
                &format!(
                    "SELECT COUNT(*) FILTER (WHERE t.result = 'passed'), COUNT(*)
                     FROM {table} t JOIN backups b ON b.id = t.backup_id
                     WHERE t.at >= ?1 AND t.result IN ('passed', 'failed') AND b.location_id = ?2"
                ),
                params![since, location],
            )
            .unwrap();
        (r.get(0).unwrap(), r.get(1).unwrap())
    }

    fn backups_of(store: &Store, loc: i64, n: i64) -> Vec<i64> {
        let files: Vec<crate::scan::FoundFile> = (0..n)
            .map(|i| crate::scan::FoundFile {
                path: format!("b{i}.sql"),
                size: 3,
                mtime_ns: i,
                ts: from_unix(5 + i),
                ts_source: crate::timestamp::TimestampSource::Mtime,
                settled: true,
            })
            .collect();
        store.sync_scan(loc, &files, from_unix(10)).unwrap();
        store
            .present_backups(loc)
            .unwrap()
            .iter()
            .map(|b| b.id)
            .collect()
    }

    #[test]
    fn tallied_counts_equal_the_verifications_counted() {
        // On PostgreSQL too with BM_TEST_STORE=postgres.
        let (_guard, store, a, b) = crate::store::store_with_two_locations("generic");
        let backups = [(a, backups_of(&store, a, 4)), (b, backups_of(&store, b, 3))];
        let results = [
            VerifyResult::Passed,
            VerifyResult::Failed,
            VerifyResult::Recorded,
            VerifyResult::Error,
        ];
        for (run, at) in [(1, 100), (2, 200), (3, 300)] {
            let rows: Vec<Verification> = backups
                .iter()
                .flat_map(|(loc, ids)| ids.iter().map(move |id| (*loc, *id)))
                .enumerate()
                .map(|(i, (loc, id))| Verification {
                    backup_id: id,
                    location_id: loc,
                    method: VerifyMethod::Checksum,
                    algo: Some(ChecksumAlgo::Sha256),
                    result: results[(i + run as usize) % results.len()],
                    bytes: 3,
                    duration_ms: 1,
                    detail: None,
                    first_checksum: None,
                    hashed: true,
                })
                .collect();
            store
                .record_verifications(run, &rows, from_unix(at))
                .unwrap();
        }
        // Restore tests, found by the location each names.
        let verdicts = [Verdict::Passed, Verdict::Failed, Verdict::Skipped];
        for (i, (loc, id)) in backups
            .iter()
            .flat_map(|(loc, ids)| ids.iter().map(move |id| (*loc, *id)))
            .enumerate()
        {
            store
                .record_restore_test(&NewRestoreTest {
                    backup_id: id,
                    run_id: 1,
                    at: from_unix(100 * (1 + i as i64 % 3)),
                    format: "sql",
                    result: verdicts[(i + loc as usize) % verdicts.len()],
                    files: 1,
                    bytes: 1,
                    database: None,
                    duration_ms: 1,
                    detail: None,
                    size: 3,
                    mtime_ns: 0,
                    settings: "s",
                    carried_from: None,
                })
                .unwrap();
        }
        for since in [0, 150, 200, 250, 350] {
            let counts = store.judged_counts(&[a, b], from_unix(since)).unwrap();
            for loc in [a, b] {
                let got = counts.get(&loc).copied().unwrap_or_default();
                let why = format!("location {loc} since {since}");
                assert_eq!(
                    got.verifications,
                    counted(&store, "verifications", loc, since),
                    "{why}"
                );
                assert_eq!(
                    got.restore_tests,
                    counted(&store, "restore_tests", loc, since),
                    "{why}"
                );
            }
        }
        assert!(
            store.judged_counts(&[a], from_unix(0)).unwrap()[&a]
                .verifications
                .1
                > 0
        );
    }

    #[test]
    fn a_store_from_before_tallies_has_its_verifications_tallied() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("old.db");
        let conn = rusqlite::Connection::open(&path).unwrap();
        for sql in &crate::store::schema::MIGRATIONS[..7] {
            conn.execute_batch(sql).unwrap();
        }
        conn.execute_batch(
            "INSERT INTO locations (id, host, name, path, kind, created_at) VALUES (7, 'web1', 'db', '/db', 'database', 1);
             INSERT INTO backups (id, location_id, path, size, mtime_ns, ts, ts_source, seen_size, seen_mtime_ns, first_seen, last_seen)
               VALUES (1, 7, 'x.sql', 1, 1, 1, 'mtime', 1, 1, 1, 1), (2, 7, 'y.sql', 1, 1, 2, 'mtime', 1, 1, 1, 1);
             INSERT INTO verifications (backup_id, run_id, at, method, result) VALUES
               (1, 1, 100, 'checksum', 'passed'), (2, 1, 100, 'checksum', 'failed'),
               (1, 2, 200, 'checksum', 'passed'), (2, 2, 200, 'checksum', 'error'),
               (1, NULL, 300, 'checksum', 'recorded'), (2, NULL, 300, 'checksum', 'passed');
             INSERT INTO restore_tests (backup_id, at, format, result, size, mtime_ns) VALUES
               (1, 100, 'sql', 'passed', 1, 1), (2, 200, 'sql', 'failed', 1, 1), (2, 300, 'sql', 'skipped', 1, 1);
             PRAGMA user_version = 7;",
        )
        .unwrap();
        drop(conn);
        let store = Store::open_as(&path, "web1").unwrap();
        for since in [0, 150, 250, 400] {
            let tallied = store
                .judged_counts(&[7], from_unix(since))
                .unwrap()
                .get(&7)
                .copied()
                .unwrap_or_default()
                .verifications;
            assert_eq!(
                tallied,
                counted(&store, "verifications", 7, since),
                "since {since}"
            );
        }
        assert_eq!(store.verification_counts(7, from_unix(0)).unwrap(), (3, 4));
        // Restore tests from before name their backup's location.
        assert_eq!(store.restore_counts(7, from_unix(0)).unwrap(), (1, 2));
        assert_eq!(store.restore_counts(7, from_unix(150)).unwrap(), (0, 1));
    }

    #[test]
    fn the_stored_score_is_todays_else_the_latest_days() {
        let (_db, store, a) = crate::store::store_with_location("a", "database");
        let b = store
            .upsert_location("b", "/b", "files", from_unix(0))
            .unwrap();
        let c = store
            .upsert_location("c", "/c", "files", from_unix(0))
            .unwrap();
        let never = store
            .upsert_location("never", "/n", "files", from_unix(0))
            .unwrap();
        let day = |day: &str, score: Option<f64>| DailyHealth {
            day: day.into(),
            score,
            backup_rate: None,
            verify_rate: None,
            restore_rate: None,
        };
        let write = |loc, d: DailyHealth| {
            store
                .record_daily_health(loc, &d.day.clone(), &d, from_unix(0))
                .unwrap()
        };
        // a: older days, and today with no score (nothing to measure): today's, none.
        write(a, day("2026-11-01", Some(0.5)));
        write(a, day("2026-11-20", None));
        // b: only older days: the latest of them.
        write(b, day("2026-10-31", Some(0.9)));
        write(b, day("2026-11-02", Some(0.4)));
        write(b, day("2026-10-01", Some(0.1)));
        // c: a day after today (a clock set back) and an older one: the first from today.
        write(c, day("2026-11-25", Some(0.7)));
        write(c, day("2026-11-19", Some(0.2)));
        let scores = store
            .stored_scores(&[a, b, c, never, 999], "2026-11-20")
            .unwrap();
        assert_eq!(scores.get(&a), Some(&None));
        assert_eq!(scores.get(&b), Some(&Some(0.4)));
        assert_eq!(scores.get(&c), Some(&Some(0.7)));
        assert_eq!(scores.get(&never), None, "nothing recorded");
        assert_eq!(scores.len(), 3);
        assert!(store.stored_scores(&[], "2026-11-20").unwrap().is_empty());
    }
}
