//! Health inputs and history: verification and restore pass counts over a window, and
//! the per-location daily score kept so trends are real history.

use super::sql::{Row, SqlResult, ToValue, params};
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

/// A `health_daily` row selected as `day, score, backup_rate, verify_rate, restore_rate`.
fn daily_from_row(r: &Row) -> SqlResult<DailyHealth> {
    Ok(DailyHealth {
        day: r.get(0)?,
        score: r.get(1)?,
        backup_rate: r.get(2)?,
        verify_rate: r.get(3)?,
        restore_rate: r.get(4)?,
    })
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

    /// The verification and restore counts of several locations since `since`, in two
    /// statements for all of them (one each per location made a nightly run on a shared
    /// PostgreSQL store wait on forty round trips and as many scans). Locations with
    /// nothing judged are absent.
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
        for (table, restore) in [("verifications", false), ("restore_tests", true)] {
            let sql = format!(
                "SELECT b.location_id, COUNT(*) FILTER (WHERE t.result = 'passed'), COUNT(*)
                 FROM {table} t JOIN backups b ON b.id = t.backup_id
                 WHERE t.at >= ?1 AND t.result IN ('passed', 'failed') AND b.location_id IN ({list})
                 GROUP BY b.location_id"
            );
            self.db.query_each(&sql, &args, |r| {
                let counts = (r.get::<u64>(1)?, r.get::<u64>(2)?);
                let entry = out.entry(r.get(0)?).or_default();
                if restore {
                    entry.restore_tests = counts;
                } else {
                    entry.verifications = counts;
                }
                Ok(())
            })?;
        }
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

    /// The most recent day's stored figures of a location.
    pub fn latest_daily_health(&self, location_id: i64) -> Result<Option<DailyHealth>> {
        Ok(self
            .db
            .query_opt(
                "SELECT day, score, backup_rate, verify_rate, restore_rate FROM health_daily
                 WHERE location_id = ?1 ORDER BY day COLLATE \"C\" DESC LIMIT 1",
                params![location_id],
            )?
            .map(|r| daily_from_row(&r))
            .transpose()?)
    }

    /// Stored daily scores of a location from `from_day` on (inclusive), oldest first.
    pub fn daily_health(&self, location_id: i64, from_day: &str) -> Result<Vec<DailyHealth>> {
        Ok(self.db.query_map(
            "SELECT day, score, backup_rate, verify_rate, restore_rate FROM health_daily
             WHERE location_id = ?1 AND day >= ?2 ORDER BY day COLLATE \"C\"",
            params![location_id, from_day],
            daily_from_row,
        )?)
    }
}
