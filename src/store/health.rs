//! Health inputs and history: verification and restore pass counts over a window, and
//! the per-location daily score kept so trends are real history.

use super::sql::{Row, SqlResult, params};
use super::{Store, to_unix};
use anyhow::Result;
use chrono::{DateTime, Utc};

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
        let r = self.db.query_row(
            "SELECT COUNT(*) FILTER (WHERE v.result = 'passed'), COUNT(*) FROM verifications v JOIN backups b ON b.id = v.backup_id
             WHERE b.location_id = ?1 AND v.at >= ?2 AND v.result IN ('passed', 'failed')",
            params![location_id, to_unix(since)],
        )?;
        Ok((r.get(0)?, r.get(1)?))
    }

    /// (passed, judged) restore tests of a location since `since`; skipped ones do not count.
    pub fn restore_counts(&self, location_id: i64, since: DateTime<Utc>) -> Result<(u64, u64)> {
        let r = self.db.query_row(
            "SELECT COUNT(*) FILTER (WHERE t.result = 'passed'), COUNT(*) FROM restore_tests t JOIN backups b ON b.id = t.backup_id
             WHERE b.location_id = ?1 AND t.at >= ?2 AND t.result IN ('passed', 'failed')",
            params![location_id, to_unix(since)],
        )?;
        Ok((r.get(0)?, r.get(1)?))
    }

    /// Store (replace) a location's score for `day` (YYYY-MM-DD in the configured zone).
    pub fn record_daily_health(
        &self,
        location_id: i64,
        day: &str,
        h: &DailyHealth,
        now: DateTime<Utc>,
    ) -> Result<()> {
        self.db.execute(
            "INSERT INTO health_daily (location_id, day, score, backup_rate, verify_rate, restore_rate, computed_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
             ON CONFLICT(location_id, day) DO UPDATE SET score = excluded.score, backup_rate = excluded.backup_rate,
               verify_rate = excluded.verify_rate, restore_rate = excluded.restore_rate, computed_at = excluded.computed_at",
            params![location_id, day, h.score, h.backup_rate, h.verify_rate, h.restore_rate, to_unix(now)],
        )?;
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
