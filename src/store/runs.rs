//! The audit log of runs: start, end, operations, exit code, host, version, pid.

use super::sql::params;
use super::{Store, to_unix};
use anyhow::Result;
use chrono::{DateTime, Utc};

/// A run's operations as `runs.operations` records them: `monitor,verify`.
pub(crate) fn operations_text(operations: &[crate::problem::Operation]) -> String {
    let names: Vec<&str> = operations.iter().map(|o| o.as_str()).collect();
    names.join(",")
}

impl Store {
    pub fn start_run(
        &self,
        operations: &[crate::problem::Operation],
        host: &str,
        now: DateTime<Utc>,
    ) -> Result<i64> {
        Ok(self
            .db
            .query_row(
                "INSERT INTO runs (started_at, operations, host, version, pid) VALUES (?1, ?2, ?3, ?4, ?5) RETURNING id",
                params![
                    to_unix(now),
                    operations_text(operations),
                    host,
                    env!("CARGO_PKG_VERSION"),
                    std::process::id()
                ],
            )?
            .get(0)?)
    }

    pub fn finish_run(&self, run_id: i64, exit_code: i32, now: DateTime<Utc>) -> Result<()> {
        self.write_pending()?;
        self.db.execute(
            "UPDATE runs SET finished_at = ?2, exit_code = ?3 WHERE id = ?1",
            params![run_id, to_unix(now), exit_code],
        )?;
        Ok(())
    }

    /// The last run of the hosts in view that finished: when it started and ended, and
    /// its exit code.
    pub fn last_finished_run(&self) -> Result<Option<crate::outcome::LastRun>> {
        let Some(r) = self.db.query_opt(
            "SELECT started_at, finished_at, exit_code FROM runs
             WHERE finished_at IS NOT NULL AND (CAST(?1 AS TEXT) IS NULL OR host = ?1) ORDER BY id DESC LIMIT 1",
            params![self.view_host()],
        )?
        else {
            return Ok(None);
        };
        Ok(Some(crate::outcome::LastRun {
            started_at: super::from_unix(r.get(0)?),
            finished_at: super::from_unix(r.get(1)?),
            exit_code: r.get(2)?,
        }))
    }
}
