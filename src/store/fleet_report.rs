//! What the fleet views read beyond [`Store::fleet_locations`], and what each host
//! stores for them: per location, the state only its own config can work out (missing
//! slots, the schedule's figures), written at the end of each recorded run; and the
//! fleet report's figures of every location in view, each gathered by one aggregating
//! statement over the hosts in view (never a query per location, never every backup).

use super::sql::{Row, SqlResult, params};
use super::{Store, from_unix, schema, to_unix};
use anyhow::Result;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// What a host last stored about one of its locations for the fleet views: what only
/// its own config knows. Stored as JSON, so a newer build may add fields; a field an
/// older build did not write reads as its default.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct LocationState {
    /// The schedule in words (`daily`, `cron `…``).
    pub schedule: String,
    /// Calendar mark of the location's type (`d`, `w`, `g`).
    pub mark: String,
    /// Several slots a day.
    pub several_a_day: bool,
    /// The window the figures below cover, in days.
    pub window_days: u32,
    /// Unsatisfied due slots of the window (Unix seconds), in time order.
    pub missing_slots: Vec<i64>,
    /// Due slots of the window and how many of them have a backup.
    pub due_slots: u64,
    pub satisfied_slots: u64,
    /// Warning and critical ages of the newest backup, in seconds.
    pub age_thresholds: Option<(u64, u64)>,
    /// The schedule's typical gap between fire times, in seconds.
    pub expected_interval: Option<i64>,
}

/// A stored state with when its host wrote it, and the location's disk as last measured.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StoredState {
    pub written_at: Option<DateTime<Utc>>,
    /// None: the host stored nothing yet (or something this build cannot read).
    pub state: Option<LocationState>,
    pub free_bytes: Option<u64>,
    pub total_bytes: Option<u64>,
}

/// One location's checks and backups over the report window, and its last good checks.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct WindowFigures {
    pub backups_in_window: u64,
    pub bytes_in_window: u64,
    /// Backups that failed verification or could not be verified in the window.
    pub verification_failures: u64,
    /// Backups that failed a restore test in the window.
    pub restore_failures: u64,
    pub last_passed_verification: Option<DateTime<Utc>>,
    pub last_passed_restore: Option<DateTime<Utc>>,
}

/// A verification or restore test of the window, as a host's section lists it.
#[derive(Debug, Clone, PartialEq)]
pub struct FleetCheck {
    pub host: String,
    pub location: String,
    pub path: String,
    pub at: DateTime<Utc>,
    pub method: String,
    pub result: String,
    pub bytes: u64,
    pub files: u64,
    pub duration_ms: u64,
    pub detail: Option<String>,
}

/// Which checks [`Store::fleet_checks`] reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckKind {
    Verification,
    RestoreTest,
}

/// How many checks of one host and result there were in the window.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckCount {
    pub host: String,
    pub result: String,
    pub count: u64,
}

/// The host filter of every statement here: `?1` is the host in view, NULL for all.
const IN_VIEW: &str = "(CAST(?1 AS TEXT) IS NULL OR l.host = ?1)";

fn count(r: &Row, i: usize) -> SqlResult<u64> {
    Ok(r.get::<Option<i64>>(i)?.unwrap_or(0).max(0) as u64)
}

impl Store {
    /// Whether this store has the `location_states` table yet (a store opened read-only
    /// by a newer build is not migrated).
    fn has_states(&self) -> Result<bool> {
        let (sqlite, pg) = schema::STATES_SCHEMA;
        let needed = match self.backend() {
            super::sql::Backend::Sqlite => sqlite,
            super::sql::Backend::Postgres => pg,
        };
        Ok(self.schema_version()? >= needed as i64)
    }

    /// Store `state` as what this host last knew about `location_id`.
    pub fn record_location_state(
        &self,
        location_id: i64,
        state: &LocationState,
        now: DateTime<Utc>,
    ) -> Result<()> {
        self.record_location_states(&[(location_id, state.clone())], now)
    }

    /// Store each `(location id, state)` as what this host last knew about it, in one
    /// statement per hundred locations (a round trip each on a shared store).
    pub fn record_location_states(
        &self,
        states: &[(i64, LocationState)],
        now: DateTime<Utc>,
    ) -> Result<()> {
        let now = to_unix(now);
        for chunk in states.chunks(100) {
            let mut values: Vec<super::sql::Value> = Vec::with_capacity(chunk.len() * 2);
            for (id, state) in chunk {
                values.push(super::sql::Value::Int(*id));
                values.push(super::sql::Value::Text(serde_json::to_string(state)?));
            }
            let rows: Vec<String> = (0..chunk.len())
                .map(|i| format!("(?{}, ?1, ?{})", i * 2 + 2, i * 2 + 3))
                .collect();
            let sql = format!(
                "INSERT INTO location_states (location_id, written_at, state) VALUES {}
                 ON CONFLICT (location_id) DO UPDATE SET written_at = excluded.written_at, state = excluded.state",
                rows.join(", ")
            );
            let mut args: Vec<&dyn super::sql::ToValue> = vec![&now];
            args.extend(values.iter().map(|v| v as &dyn super::sql::ToValue));
            self.db.execute(&sql, &args)?;
        }
        Ok(())
    }

    /// The stored state and disk of every location of the hosts in view, by location id.
    /// A state that does not parse (written by a damaged or foreign build) reads as none.
    pub fn location_states(&self) -> Result<HashMap<i64, StoredState>> {
        self.write_pending()?;
        let with_states = self.has_states()?;
        let sql = if with_states {
            format!(
                "SELECT l.id, l.free_bytes, l.total_bytes, s.written_at, s.state
                 FROM locations l LEFT JOIN location_states s ON s.location_id = l.id
                 WHERE {IN_VIEW}"
            )
        } else {
            format!(
                "SELECT l.id, l.free_bytes, l.total_bytes, NULL, NULL FROM locations l WHERE {IN_VIEW}"
            )
        };
        let mut out = HashMap::new();
        self.db.query_each(&sql, params![self.view_host()], |r| {
            let state = r.get::<Option<String>>(4)?.and_then(|json| {
                serde_json::from_str::<LocationState>(&json)
                    .map_err(|e| {
                        tracing::warn!("ignoring an unreadable stored location state: {e}")
                    })
                    .ok()
            });
            out.insert(
                r.get::<i64>(0)?,
                StoredState {
                    free_bytes: r.get::<Option<i64>>(1)?.map(|v| v.max(0) as u64),
                    total_bytes: r.get::<Option<i64>>(2)?.map(|v| v.max(0) as u64),
                    written_at: r.get::<Option<i64>>(3)?.map(from_unix),
                    state,
                },
            );
            Ok(())
        })?;
        Ok(out)
    }

    /// Backups, failures and last good checks of every location in view over
    /// [since, until], by location id (locations with none of them are absent).
    pub fn fleet_window_figures(
        &self,
        since: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<HashMap<i64, WindowFigures>> {
        let mut out: HashMap<i64, WindowFigures> = HashMap::new();
        let host = self.view_host();
        let (since, until) = (to_unix(since), to_unix(until));
        self.db.query_each(
            &format!(
                "SELECT b.location_id, COUNT(*), CAST(SUM(b.seen_size) AS BIGINT)
                 FROM backups b JOIN locations l ON l.id = b.location_id
                 WHERE {IN_VIEW} AND b.ts >= ?2 AND b.ts <= ?3
                 GROUP BY b.location_id"
            ),
            params![host, since, until],
            |r| {
                let f = out.entry(r.get(0)?).or_default();
                f.backups_in_window = count(r, 1)?;
                f.bytes_in_window = count(r, 2)?;
                Ok(())
            },
        )?;
        for (table, failed, kind) in [
            (
                "verifications",
                "('failed', 'error')",
                CheckKind::Verification,
            ),
            ("restore_tests", "('failed')", CheckKind::RestoreTest),
        ] {
            // `result <> 'passed'` as the partial index of verifications that did not
            // pass says it: a fleet's window holds millions that did.
            self.db.query_each(
                &format!(
                    "SELECT b.location_id, COUNT(DISTINCT c.backup_id)
                     FROM {table} c JOIN backups b ON b.id = c.backup_id JOIN locations l ON l.id = b.location_id
                     WHERE {IN_VIEW} AND c.at >= ?2 AND c.result <> 'passed' AND c.result IN {failed}
                     GROUP BY b.location_id"
                ),
                params![host, since],
                |r| {
                    let f = out.entry(r.get(0)?).or_default();
                    match kind {
                        CheckKind::Verification => f.verification_failures = count(r, 1)?,
                        CheckKind::RestoreTest => f.restore_failures = count(r, 1)?,
                    }
                    Ok(())
                },
            )?;
        }
        // The last good check of each location, looked up by location: a verification
        // that passed from the run's tally (every run's verifications of a location that
        // passed are counted there), a restore test from the tests themselves. Never
        // every check ever stored: a fleet re-hashes millions of backups a month.
        self.db.query_each(
            &format!(
                "SELECT l.id,
                   (SELECT MAX(t.at) FROM verification_tallies t WHERE t.location_id = l.id AND t.passed > 0),
                   (SELECT MAX(t.at) FROM restore_tests t WHERE t.location_id = l.id AND t.result = 'passed')
                 FROM locations l WHERE {IN_VIEW}"
            ),
            params![host],
            |r| {
                let verified = r.get::<Option<i64>>(1)?.map(from_unix);
                let restored = r.get::<Option<i64>>(2)?.map(from_unix);
                if verified.is_some() || restored.is_some() {
                    let f = out.entry(r.get(0)?).or_default();
                    f.last_passed_verification = verified;
                    f.last_passed_restore = restored;
                }
                Ok(())
            },
        )?;
        Ok(out)
    }

    /// The checks of the window each host's section lists: per host, at most
    /// `per_host`, those that did not pass or record first, then the newest.
    pub fn fleet_checks(
        &self,
        kind: CheckKind,
        since: DateTime<Utc>,
        per_host: usize,
    ) -> Result<Vec<FleetCheck>> {
        // The checks of the window, listed in each host's order: those that failed or
        // could not be done first, then the newest; checks of one time by location, then
        // the last done first.
        let listed = match kind {
            // Every restore test of the window: a few a night.
            CheckKind::RestoreTest => format!(
                "SELECT l.host, l.name, b.path, c.id, c.at, c.format AS method, c.result, c.bytes,
                        c.files, c.duration_ms, c.detail
                 FROM restore_tests c JOIN backups b ON b.id = c.backup_id JOIN locations l ON l.id = b.location_id
                 WHERE {IN_VIEW} AND c.at >= ?2"
            ),
            // A fleet's window holds millions of verifications that passed (every present
            // backup re-hashed every night): every one that did not pass (the partial
            // index's), and of those that passed only the ones that can be among a
            // host's first ?3. Each run's passes of a location are a tally; a host's
            // tallies in its listing order, each taken while those before it hold fewer
            // than ?3 passes: the passes of any later tally have ?3 before them. Their
            // verifications are found through the location's backups at the tally's time.
            // "Taken" is written as an equality, which PostgreSQL's planner expects to hold
            // for few rows: for `before < ?3` it guesses a third of the tallies, and reads
            // every verification ever stored instead of looking these few up by backup.
            CheckKind::Verification => format!(
                "WITH tallies AS (
                   SELECT l.host, l.name, t.location_id, t.at, SUM(t.passed) AS passed
                   FROM verification_tallies t JOIN locations l ON l.id = t.location_id
                   WHERE {IN_VIEW} AND t.at >= ?2 AND t.passed > 0
                   GROUP BY l.host, l.name, t.location_id, t.at),
                 needed AS (
                   SELECT location_id, at FROM (
                     SELECT location_id, at, SUM(passed) OVER (PARTITION BY host
                              ORDER BY at DESC, name COLLATE \"C\" ROWS UNBOUNDED PRECEDING) - passed AS before
                     FROM tallies) r
                   WHERE (CASE WHEN before < ?3 THEN 1 ELSE 0 END) = 1)
                 SELECT l.host, l.name, b.path, c.id, c.at, c.method, c.result, c.bytes, 0 AS files,
                        c.duration_ms, c.detail
                 FROM verifications c JOIN backups b ON b.id = c.backup_id JOIN locations l ON l.id = b.location_id
                 WHERE {IN_VIEW} AND c.at >= ?2 AND c.result <> 'passed'
                 UNION ALL
                 SELECT l.host, l.name, b.path, c.id, c.at, c.method, c.result, c.bytes, 0,
                        c.duration_ms, c.detail
                 FROM needed n JOIN locations l ON l.id = n.location_id JOIN backups b ON b.location_id = n.location_id
                   JOIN verifications c ON c.backup_id = b.id AND c.at = n.at
                 WHERE c.result = 'passed'"
            ),
        };
        Ok(self.db.query_map(
            &format!(
                "SELECT host, name, path, at, method, result, bytes, files, duration_ms, detail FROM (
                   SELECT x.*, ROW_NUMBER() OVER (PARTITION BY host ORDER BY
                            CASE WHEN result IN ('failed', 'error') THEN 0 ELSE 1 END, at DESC,
                            name COLLATE \"C\", id DESC) AS n
                   FROM ({listed}) x) y
                 WHERE n <= ?3
                 ORDER BY host COLLATE \"C\", n"
            ),
            params![self.view_host(), to_unix(since), per_host as i64],
            |r| {
                Ok(FleetCheck {
                    host: r.get(0)?,
                    location: r.get(1)?,
                    path: r.get(2)?,
                    at: from_unix(r.get(3)?),
                    method: r.get(4)?,
                    result: r.get(5)?,
                    bytes: count(r, 6)?,
                    files: count(r, 7)?,
                    duration_ms: count(r, 8)?,
                    detail: r.get(9)?,
                })
            },
        )?)
    }

    /// How many checks of `kind` each host in view had in the window, by result.
    pub fn fleet_check_counts(
        &self,
        kind: CheckKind,
        since: DateTime<Utc>,
    ) -> Result<Vec<CheckCount>> {
        let counted = match kind {
            CheckKind::RestoreTest => format!(
                "SELECT l.host, c.result, COUNT(*) AS n
                 FROM restore_tests c JOIN backups b ON b.id = c.backup_id JOIN locations l ON l.id = b.location_id
                 WHERE {IN_VIEW} AND c.at >= ?2
                 GROUP BY l.host, c.result"
            ),
            // Passes from the runs' tallies (a fleet re-hashes millions of backups a
            // month), the rest from the partial index of those that did not pass.
            CheckKind::Verification => format!(
                "SELECT l.host, c.result, COUNT(*) AS n
                 FROM verifications c JOIN backups b ON b.id = c.backup_id JOIN locations l ON l.id = b.location_id
                 WHERE {IN_VIEW} AND c.at >= ?2 AND c.result <> 'passed'
                 GROUP BY l.host, c.result
                 UNION ALL
                 SELECT l.host, 'passed', CAST(SUM(t.passed) AS BIGINT)
                 FROM verification_tallies t JOIN locations l ON l.id = t.location_id
                 WHERE {IN_VIEW} AND t.at >= ?2
                 GROUP BY l.host
                 HAVING SUM(t.passed) > 0"
            ),
        };
        Ok(self.db.query_map(
            &format!(
                "SELECT host, result, n FROM ({counted}) x
                 ORDER BY host COLLATE \"C\", result COLLATE \"C\""
            ),
            params![self.view_host(), to_unix(since)],
            |r| {
                Ok(CheckCount {
                    host: r.get(0)?,
                    result: r.get(1)?,
                    count: count(r, 2)?,
                })
            },
        )?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ChecksumAlgo;
    use crate::store::VerifyMethod;
    use crate::store::View;

    #[test]
    fn a_stored_state_is_read_back_per_location_and_replaced_by_the_next() {
        let (_db, mut store, a) = crate::store::store_with_location("db", "database");
        let mut state = LocationState {
            schedule: "daily".into(),
            missing_slots: vec![100, 200],
            age_thresholds: Some((1, 2)),
            ..LocationState::default()
        };
        store
            .record_location_state(a, &state, from_unix(300))
            .unwrap();
        state.missing_slots = vec![200];
        store
            .record_location_state(a, &state, from_unix(400))
            .unwrap();
        // Another host's location without a state.
        store.host = "zz-other".into();
        let b = store
            .upsert_location("db", "/db", "files", from_unix(0))
            .unwrap();
        store.set_view(View::Fleet);
        let states = store.location_states().unwrap();
        assert_eq!(states[&a].state.as_ref().unwrap().missing_slots, [200]);
        assert_eq!(states[&a].written_at, Some(from_unix(400)));
        assert_eq!(states[&b].state, None);
        store.set_view(View::Host("zz-other".into()));
        assert_eq!(store.location_states().unwrap().len(), 1);
    }

    #[test]
    fn a_store_not_yet_migrated_to_states_reads_as_having_none() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("old.db");
        let conn = rusqlite::Connection::open(&path).unwrap();
        for sql in &schema::MIGRATIONS[..schema::STATES_SCHEMA.0 - 1] {
            conn.execute_batch(sql).unwrap();
        }
        conn.execute_batch(
            "INSERT INTO locations (host, name, path, kind, created_at) VALUES ('web1', 'db', '/db', 'database', 1);
             PRAGMA user_version = 5;",
        )
        .unwrap();
        drop(conn);
        // --status reads an older store as it is, without migrating it.
        let mut store = Store::open_read_only_as(&path, "web1").unwrap().unwrap();
        store.set_view(View::Fleet);
        let states = store.location_states().unwrap();
        assert_eq!(states.len(), 1);
        assert!(states.values().all(|s| s.state.is_none()));
    }

    #[test]
    fn window_figures_count_backups_and_failures_per_location() {
        let (_db, mut store, a) = crate::store::store_with_location("db", "database");
        let file = |path: &str, ts: i64| crate::scan::FoundFile {
            path: path.into(),
            size: 10,
            mtime_ns: ts * 1_000_000_000,
            ts: from_unix(ts),
            ts_source: crate::timestamp::TimestampSource::Mtime,
            settled: true,
        };
        store
            .sync_scan(
                a,
                &[file("old.sql", 50), file("new.sql", 500)],
                from_unix(600),
            )
            .unwrap();
        store.set_view(View::Fleet);
        let f = store
            .fleet_window_figures(from_unix(100), from_unix(1000))
            .unwrap();
        assert_eq!(
            f[&a].backups_in_window, 1,
            "the old one is before the window"
        );
        assert_eq!(f[&a].bytes_in_window, 10);
        assert_eq!(f[&a].verification_failures, 0);
        assert!(
            store
                .fleet_checks(CheckKind::Verification, from_unix(0), 10)
                .unwrap()
                .is_empty()
        );
    }

    /// The listed checks, their counts and each location's last pass, as reading every
    /// verification of the window would give them.
    #[test]
    fn fleet_checks_and_counts_are_those_of_every_verification_of_the_window() {
        use crate::store::{Verification, VerifyResult};
        let (_db, mut store, a) = crate::store::store_with_location("db", "database");
        let file = |path: &str| crate::scan::FoundFile {
            path: path.into(),
            size: 10,
            mtime_ns: 1_000_000_000,
            ts: from_unix(1),
            ts_source: crate::timestamp::TimestampSource::Mtime,
            settled: true,
        };
        let backups = |store: &Store, loc: i64, names: &[&str]| -> Vec<i64> {
            let files: Vec<_> = names.iter().map(|n| file(n)).collect();
            store.sync_scan(loc, &files, from_unix(5)).unwrap();
            store
                .backups_of(loc)
                .unwrap()
                .iter()
                .map(|b| b.id)
                .collect()
        };
        let check = |id: i64, loc: i64, result: VerifyResult| Verification {
            backup_id: id,
            location_id: loc,
            method: VerifyMethod::Checksum,
            algo: Some(ChecksumAlgo::Sha256),
            result,
            bytes: 10,
            duration_ms: 1,
            detail: None,
            first_checksum: None,
            hashed: true,
        };
        use VerifyResult::{Error, Failed, Passed, Recorded};
        let ids = backups(&store, a, &["a1", "a2", "a3", "a4"]);
        // A location of the same host that never passes.
        let bad = store
            .upsert_location("bad", "/bad", "files", from_unix(0))
            .unwrap();
        let bad_ids = backups(&store, bad, &["x1"]);
        // One verified at the same times, listed before `db` at each.
        let aa = store
            .upsert_location("aa", "/aa", "files", from_unix(0))
            .unwrap();
        let aa_ids = backups(&store, aa, &["y1", "y2"]);
        // Before the window: passes and a failure that must not count.
        let before: Vec<_> = ids.iter().map(|&id| check(id, a, Passed)).collect();
        store
            .record_verifications(1, &before, from_unix(10))
            .unwrap();
        store
            .record_verifications(1, &[check(bad_ids[0], bad, Failed)], from_unix(10))
            .unwrap();
        // In the window: twelve nights re-hashing every backup, one failure and one error
        // early on, a first sight in between.
        for night in 0..12 {
            let at = 100 + night * 100;
            let mut rows: Vec<_> = ids.iter().map(|&id| check(id, a, Passed)).collect();
            rows.extend(aa_ids.iter().map(|&id| check(id, aa, Passed)));
            if night == 1 {
                rows[2].result = Failed;
            }
            if night == 4 {
                rows[0].result = Recorded;
            }
            store
                .record_verifications(10 + night, &rows, from_unix(at))
                .unwrap();
        }
        store
            .record_verifications(50, &[check(bad_ids[0], bad, Error)], from_unix(150))
            .unwrap();
        // Another host with fewer nights than a section lists.
        store.host = "web2".into();
        let b = store
            .upsert_location("db", "/db", "database", from_unix(0))
            .unwrap();
        let b_ids = backups(&store, b, &["b1", "b2"]);
        store
            .record_verifications(
                60,
                &[check(b_ids[0], b, Passed), check(b_ids[1], b, Recorded)],
                from_unix(700),
            )
            .unwrap();
        store.set_view(View::Fleet);

        let since = from_unix(50);
        for per_host in [1, 3, 5, 10] {
            // Every verification of the window, ranked as a section lists them.
            let expected: Vec<(String, String, String, i64)> = store
                .db
                .query_map(
                    "SELECT host, path, result, at FROM (
                       SELECT l.host, b.path, c.result, c.at, ROW_NUMBER() OVER (PARTITION BY l.host ORDER BY
                         CASE WHEN c.result IN ('failed', 'error') THEN 0 ELSE 1 END, c.at DESC,
                         l.name COLLATE \"C\", c.id DESC) AS n
                       FROM verifications c JOIN backups b ON b.id = c.backup_id JOIN locations l ON l.id = b.location_id
                       WHERE c.at >= ?1) x
                     WHERE n <= ?2 ORDER BY host COLLATE \"C\", n",
                    params![50, per_host as i64],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
                )
                .unwrap();
            let listed: Vec<(String, String, String, i64)> = store
                .fleet_checks(CheckKind::Verification, since, per_host)
                .unwrap()
                .into_iter()
                .map(|c| (c.host, c.path, c.result, to_unix(c.at)))
                .collect();
            assert_eq!(listed, expected, "{per_host} a host");
        }
        let listed = store
            .fleet_checks(CheckKind::Verification, since, 5)
            .unwrap();
        let summary: Vec<_> = listed
            .iter()
            .map(|c| {
                (
                    c.host.as_str(),
                    c.location.as_str(),
                    c.result.as_str(),
                    to_unix(c.at),
                )
            })
            .collect();
        assert_eq!(
            summary,
            [
                ("vm", "db", "failed", 200),
                ("vm", "bad", "error", 150),
                ("vm", "aa", "passed", 1200),
                ("vm", "aa", "passed", 1200),
                ("vm", "db", "passed", 1200),
                ("web2", "db", "recorded", 700),
                ("web2", "db", "passed", 700),
            ]
        );

        let counts: Vec<_> = store
            .fleet_check_counts(CheckKind::Verification, since)
            .unwrap()
            .into_iter()
            .map(|c| (c.host, c.result, c.count))
            .collect();
        let expected: Vec<(String, String, u64)> = store
            .db
            .query_map(
                "SELECT l.host, c.result, COUNT(*)
                 FROM verifications c JOIN backups b ON b.id = c.backup_id JOIN locations l ON l.id = b.location_id
                 WHERE c.at >= ?1 GROUP BY l.host, c.result
                 ORDER BY l.host COLLATE \"C\", c.result COLLATE \"C\"",
                params![50],
                |r| Ok((r.get(0)?, r.get(1)?, r.get::<i64>(2)? as u64)),
            )
            .unwrap();
        assert_eq!(counts, expected);
        assert!(counts.contains(&("vm".into(), "passed".into(), 12 * 6 - 2)));

        let f = store.fleet_window_figures(since, from_unix(2000)).unwrap();
        assert_eq!(f[&a].last_passed_verification, Some(from_unix(1200)));
        assert_eq!(f[&a].verification_failures, 1);
        assert_eq!(f[&b].last_passed_verification, Some(from_unix(700)));
        assert_eq!(
            f[&bad].verification_failures, 1,
            "the error; the failure is before the window"
        );
        assert_eq!(f.get(&bad).and_then(|f| f.last_passed_verification), None);
    }
}
