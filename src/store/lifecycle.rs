//! What people decided about problems: acknowledgements, accepted deletions, silences,
//! and the audit log of every such action (who, where, when, what, why).

use super::backups::{BACKUP_COLUMNS, backup_from_row};
use super::sql::{Row, SqlResult, params};
use super::{BackupRow, Store, from_unix, to_unix};
use crate::problem::{Kind, Severity};
use anyhow::Result;
use chrono::{DateTime, Utc};
use std::collections::{HashMap, HashSet};

/// One entry of the audit log of people's actions.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ActionEntry {
    pub at: DateTime<Utc>,
    pub user: String,
    pub host: String,
    /// `ack`, `accept`, `silence` or `unsilence`.
    pub action: String,
    /// What it was about: `#12 missing_backup at db`, `db/x.zip`, `db/missing_backup`, …
    pub target: String,
    pub reason: String,
}

/// A silence as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredSilence {
    pub id: i64,
    pub selector: String,
    pub created_at: DateTime<Utc>,
    pub until: DateTime<Utc>,
    pub ended_at: Option<DateTime<Utc>>,
    pub user: String,
    pub host: String,
    pub reason: String,
}

impl StoredSilence {
    /// In force at `t`: created, not expired, not ended.
    pub fn active_at(&self, t: DateTime<Utc>) -> bool {
        self.created_at <= t && t < self.until && self.ended_at.is_none_or(|e| t < e)
    }
}

/// The migration that made the tables of this file.
const LIFECYCLE_SCHEMA: i64 = 3;

fn silence_from_row(r: &Row) -> SqlResult<StoredSilence> {
    Ok(StoredSilence {
        id: r.get(0)?,
        selector: r.get(1)?,
        created_at: from_unix(r.get(2)?),
        until: from_unix(r.get(3)?),
        ended_at: r.get::<Option<i64>>(4)?.map(from_unix),
        user: r.get(5)?,
        host: r.get(6)?,
        reason: r.get(7)?,
    })
}

impl Store {
    /// A store last written by an older build, opened read-only by `--status`, has not
    /// been migrated yet: it has no decisions to read.
    fn has_lifecycle(&self) -> Result<bool> {
        Ok(self.backend() == super::sql::Backend::Postgres
            || self.schema_version()? >= LIFECYCLE_SCHEMA)
    }

    /// Write one action to the audit log.
    pub fn record_action(&self, entry: &ActionEntry) -> Result<()> {
        self.db.execute(
            "INSERT INTO lifecycle_actions (at, user_name, host, action, target, reason) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![
                to_unix(entry.at),
                entry.user,
                entry.host,
                entry.action,
                entry.target,
                entry.reason
            ],
        )?;
        Ok(())
    }

    /// The audit log from `since` on, newest first.
    pub fn actions_since(&self, since: DateTime<Utc>) -> Result<Vec<ActionEntry>> {
        let entry = |r: &Row| -> SqlResult<ActionEntry> {
            Ok(ActionEntry {
                at: from_unix(r.get(0)?),
                user: r.get(1)?,
                host: r.get(2)?,
                action: r.get(3)?,
                target: r.get(4)?,
                reason: r.get(5)?,
            })
        };
        Ok(self.db.query_map(
            "SELECT at, user_name, host, action, target, reason FROM lifecycle_actions WHERE at >= ?1 ORDER BY at DESC, id DESC",
            params![to_unix(since)],
            entry,
        )?)
    }

    /// Acknowledge an open problem at its current severity.
    pub fn acknowledge(
        &self,
        problem_id: i64,
        severity: Severity,
        at: DateTime<Utc>,
    ) -> Result<()> {
        self.db.execute(
            "INSERT INTO acks (problem_id, severity, at) VALUES (?1, ?2, ?3)",
            params![problem_id, severity, to_unix(at)],
        )?;
        Ok(())
    }

    /// The highest severity each open problem was acknowledged at.
    pub fn acknowledged(&self) -> Result<HashMap<i64, Severity>> {
        Ok(self.silences_and_acks()?.1)
    }

    pub fn add_silence(&self, s: &StoredSilence) -> Result<i64> {
        Ok(self
            .db
            .query_row(
                "INSERT INTO silences (selector, created_at, until, user_name, host, reason) VALUES (?1, ?2, ?3, ?4, ?5, ?6) RETURNING id",
                params![
                    s.selector,
                    to_unix(s.created_at),
                    to_unix(s.until),
                    s.user,
                    s.host,
                    s.reason
                ],
            )?
            .get(0)?)
    }

    /// The silences ([`Store::silences`]) and the acknowledgements ([`Store::acknowledged`])
    /// together, in one statement: every run that judges reads both. Acknowledgements
    /// are of the open problems in view (this host's, or the fleet's), as
    /// [`Store::open_problems`] lists them: a host's run does not read the fleet's.
    pub fn silences_and_acks(&self) -> Result<(Vec<StoredSilence>, HashMap<i64, Severity>)> {
        self.write_pending()?;
        if !self.has_lifecycle()? {
            return Ok(Default::default());
        }
        let mut silences = Vec::new();
        let mut acked: HashMap<i64, Severity> = HashMap::new();
        self.db.query_each(
            "SELECT id, selector, created_at, until, ended_at, user_name, host, reason, 0 FROM silences
             UNION ALL
             SELECT a.problem_id, a.severity, NULL, NULL, NULL, NULL, NULL, NULL, 1
             FROM acks a JOIN problems p ON p.id = a.problem_id
             WHERE p.resolved_at IS NULL AND (CAST(?1 AS TEXT) IS NULL OR p.host = ?1)
             ORDER BY 9, 1",
            params![self.view_host()],
            |r| {
                if r.get::<i64>(8)? == 0 {
                    silences.push(silence_from_row(r)?);
                } else {
                    let (id, severity): (i64, Severity) = (r.get(0)?, r.get(1)?);
                    let e = acked.entry(id).or_insert(severity);
                    *e = (*e).max(severity);
                }
                Ok(())
            },
        )?;
        Ok((silences, acked))
    }

    /// Every silence ever set, oldest first (a short table: people set them by hand).
    pub fn silences(&self) -> Result<Vec<StoredSilence>> {
        Ok(self.silences_and_acks()?.0)
    }

    pub fn end_silence(&self, id: i64, at: DateTime<Utc>) -> Result<()> {
        self.db.execute(
            "UPDATE silences SET ended_at = ?2 WHERE id = ?1",
            params![id, to_unix(at)],
        )?;
        Ok(())
    }

    /// The newest record of `path` in a location: the present backup, else the latest
    /// deleted one.
    pub fn backup_by_path(&self, location_id: i64, path: &str) -> Result<Option<BackupRow>> {
        Ok(self
            .db
            .query_opt(
                &format!(
                    "SELECT {BACKUP_COLUMNS} FROM backups WHERE location_id = ?1 AND path = ?2 ORDER BY deleted_at IS NOT NULL, id DESC LIMIT 1"
                ),
                params![location_id, path],
            )?
            .map(|r| backup_from_row(&r))
            .transpose()?)
    }

    /// Make what is on disk now a present backup's recorded truth: size, mtime and a
    /// first-sight checksum taken now.
    pub fn accept_contents(
        &self,
        backup_id: i64,
        size: u64,
        mtime_ns: i64,
        checksum: (&str, &str),
        at: DateTime<Utc>,
    ) -> Result<()> {
        self.backups_changed();
        self.db.execute(
            "UPDATE backups SET size = ?2, mtime_ns = ?3, seen_size = ?2, seen_mtime_ns = ?3,
                 checksum = ?4, checksum_algo = ?5, checksum_at = ?6 WHERE id = ?1",
            params![
                backup_id,
                size as i64,
                mtime_ns,
                checksum.1,
                checksum.0,
                to_unix(at)
            ],
        )?;
        Ok(())
    }

    pub fn accept_deletion(&self, backup_id: i64, at: DateTime<Utc>) -> Result<()> {
        self.memo.accepted.borrow_mut().take();
        self.db.execute(
            "INSERT INTO accepted_deletions (backup_id, at) VALUES (?1, ?2) ON CONFLICT DO NOTHING",
            params![backup_id, to_unix(at)],
        )?;
        Ok(())
    }

    /// The backups of a location whose deletion was accepted.
    pub fn accepted_deletions(&self, location_id: i64) -> Result<HashSet<i64>> {
        if self.memo.accepted.borrow().is_none() {
            // Every location of the host at once: one statement a run, not one a location.
            let mut all: HashMap<i64, HashSet<i64>> = HashMap::new();
            self.db.query_each(
                "SELECT b.location_id, d.backup_id FROM accepted_deletions d
                 JOIN backups b ON b.id = d.backup_id JOIN locations l ON l.id = b.location_id
                 WHERE l.host = ?1",
                params![self.host],
                |r| {
                    all.entry(r.get(0)?).or_default().insert(r.get(1)?);
                    Ok(())
                },
            )?;
            *self.memo.accepted.borrow_mut() = Some(all);
        }
        Ok(self
            .memo
            .accepted
            .borrow()
            .as_ref()
            .and_then(|all| all.get(&location_id).cloned())
            .unwrap_or_default())
    }

    /// Resolve the open problems of `kinds` about `path` in a location; returns their ids.
    pub fn resolve_path_problems(
        &self,
        location_id: i64,
        path: &str,
        kinds: &[Kind],
        at: DateTime<Utc>,
    ) -> Result<Vec<(i64, Kind)>> {
        self.write_pending()?;
        let mut out = Vec::new();
        self.memo.open_problems_read.borrow_mut().clear();
        self.problems_changed();
        for kind in kinds {
            let rows = self.db.query(
                "UPDATE problems SET resolved_at = ?4 WHERE resolved_at IS NULL AND location_id = ?1 AND path = ?2 AND kind = ?3 RETURNING id",
                params![location_id, path, kind, to_unix(at)],
            )?;
            for r in rows {
                out.push((r.get(0)?, *kind));
            }
        }
        Ok(out)
    }

    /// Paths of a location's present backups and of its deleted ones with an open
    /// problem, for naming what exists (at most `limit`).
    pub fn acceptable_paths(&self, location_id: i64, limit: usize) -> Result<Vec<String>> {
        self.write_pending()?;
        Ok(self.db.query_map(
            "SELECT path FROM (
               SELECT path FROM backups WHERE location_id = ?1 AND deleted_at IS NULL
               UNION SELECT path FROM problems WHERE location_id = ?1 AND resolved_at IS NULL AND path IS NOT NULL
             ) u ORDER BY path COLLATE \"C\" LIMIT ?2",
            params![location_id, limit as i64],
            |r| r.get(0),
        )?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_store_from_before_the_decisions_reads_as_having_none() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("old.db");
        let conn = rusqlite::Connection::open(&path).unwrap();
        for sql in &crate::store::schema::MIGRATIONS[..2] {
            conn.execute_batch(sql).unwrap();
        }
        conn.pragma_update(None, "user_version", 2).unwrap();
        drop(conn);
        let store = Store::open_read_only(&path).unwrap().unwrap();
        assert!(store.acknowledged().unwrap().is_empty());
        assert!(store.silences().unwrap().is_empty());
    }

    #[test]
    fn silence_activity_and_acks_take_the_highest_severity() {
        let t = from_unix;
        let s = StoredSilence {
            id: 1,
            selector: "db".into(),
            created_at: t(100),
            until: t(200),
            ended_at: Some(t(150)),
            user: "u".into(),
            host: "h".into(),
            reason: "r".into(),
        };
        assert!(!s.active_at(t(99)));
        assert!(s.active_at(t(100)));
        assert!(!s.active_at(t(150)), "ended early");
        let (db, store) = crate::store::test_store();
        let id = store.add_silence(&s).unwrap();
        assert_eq!(store.silences().unwrap()[0].id, id);
        assert_eq!(store.silences().unwrap()[0].ended_at, None);
        let loc = store.upsert_location("db", "/db", "generic", t(0)).unwrap();
        let p = crate::problem::Problem::new(Kind::NoBackups, Severity::Warning, "db", "m");
        store
            .sync_problems(
                crate::problem::Operation::Monitor,
                Some(loc),
                &[p],
                &|_| true,
                t(1),
            )
            .unwrap();
        let pid = store.open_problems(None, None).unwrap()[0].id;
        store.acknowledge(pid, Severity::Warning, t(2)).unwrap();
        store.acknowledge(pid, Severity::Critical, t(3)).unwrap();
        assert_eq!(
            store.acknowledged().unwrap().get(&pid),
            Some(&Severity::Critical)
        );
        // Both in one statement, each whole.
        let before = store.db.spent().statements;
        let (silences, acked) = store.silences_and_acks().unwrap();
        assert_eq!(store.db.spent().statements, before + 1);
        assert_eq!(silences.len(), 1);
        let read = &silences[0];
        assert_eq!(
            (read.id, &read.selector, read.created_at, read.until),
            (id, &s.selector, s.created_at, s.until)
        );
        assert_eq!(
            (&read.user, &read.host, &read.reason, read.ended_at),
            (&s.user, &s.host, &s.reason, None)
        );
        assert_eq!(acked.len(), 1);
        assert_eq!(acked.get(&pid), Some(&Severity::Critical));
        // Another host's view has none of this host's acknowledgements; the fleet's has.
        let mut other = db.reopen_as("web9");
        assert!(other.silences_and_acks().unwrap().1.is_empty());
        other.set_view(crate::store::View::Fleet);
        assert_eq!(
            other.silences_and_acks().unwrap().1.get(&pid),
            Some(&Severity::Critical)
        );
        // A resolved problem's acknowledgements no longer mark anything.
        store
            .sync_problems(
                crate::problem::Operation::Monitor,
                Some(loc),
                &[],
                &|_| true,
                t(4),
            )
            .unwrap();
        assert!(store.silences_and_acks().unwrap().1.is_empty());
        assert_eq!(store.silences().unwrap().len(), 1);
    }
}
