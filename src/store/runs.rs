//! The audit log of runs: start, end, operations, exit code, host, version, pid.

use super::sql::params;
use super::{LOCK_CLASS, RUN_CLASS, Store, from_unix, to_unix};
use anyhow::Result;
use chrono::{DateTime, Utc};
use std::collections::HashMap;

/// The run holding some host's lock in the store, as the audit log has it.
#[derive(Debug, Clone, PartialEq)]
pub struct LockHolder {
    pub run_id: i64,
    /// The host the run is of: the locked host's own, or (for a moment) a fleet run's.
    pub host: String,
    pub started_at: DateTime<Utc>,
    pub pid: i64,
    /// The machine it runs on, when the host's lock record still names this run.
    pub machine: Option<String>,
}

/// A run's operations as `runs.operations` records them: `monitor,verify`.
pub(crate) fn operations_text(operations: &[crate::problem::Operation]) -> String {
    let names: Vec<&str> = operations.iter().map(|o| o.as_str()).collect();
    names.join(",")
}

impl Store {
    /// The runs that hold the locks of `hosts` on another session than this one, by host
    /// (one statement): a run's session holds its own lock too (keyed by its id), which
    /// names it. A host whose lock is free, or held by a session no run is known by (a
    /// build from before runs held their own lock), is left out; so is every host of a
    /// SQLite store, which has no such locks.
    pub fn lock_holders(&self, hosts: &[&str]) -> Result<HashMap<String, LockHolder>> {
        let mut out = HashMap::new();
        if self.backend() != super::sql::Backend::Postgres || hosts.is_empty() {
            return Ok(out);
        }
        let mut of_key: HashMap<i64, Vec<&str>> = HashMap::new();
        for host in hosts {
            of_key
                .entry(i64::from(super::fnv1a(host.as_bytes())))
                .or_default()
                .push(host);
        }
        let keys: Vec<i64> = of_key.keys().copied().collect();
        self.query_each_in(
            "SELECT h.objid::bigint, r.id, r.host, r.started_at, r.pid, l.machine
             FROM pg_locks h
             JOIN pg_locks k ON k.pid = h.pid AND k.locktype = 'advisory' AND k.granted
                  AND k.objsubid = 2 AND k.database = h.database AND k.classid::bigint = ?2
             JOIN runs r ON r.id IN (k.objid::bigint, k.objid::bigint + 2147483648, k.objid::bigint + 4294967296)
                  AND r.finished_at IS NULL
             LEFT JOIN run_locks l ON l.host = r.host AND l.pid = r.pid AND l.since = r.started_at
             WHERE h.locktype = 'advisory' AND h.granted AND h.objsubid = 2
               AND h.database = (SELECT oid FROM pg_database WHERE datname = current_database())
               AND h.classid::bigint = ?1 AND h.pid <> pg_backend_pid()
               AND h.objid::bigint IN ({ids})
             ORDER BY r.id",
            &[&i64::from(LOCK_CLASS), &i64::from(RUN_CLASS)],
            &keys,
            |r| {
                let holder = LockHolder {
                    run_id: r.get(1)?,
                    host: r.get(2)?,
                    started_at: from_unix(r.get(3)?),
                    pid: r.get(4)?,
                    machine: r.get(5)?,
                };
                // The newest run of a key wins (ids 2^31 apart share a key; looked up by
                // id, not by a scan of every run ever recorded).
                for host in of_key.get(&r.get::<i64>(0)?).into_iter().flatten() {
                    out.insert(host.to_string(), holder.clone());
                }
                Ok(())
            },
        )?;
        Ok(out)
    }

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
