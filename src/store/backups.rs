//! Backup rows: what each scan found, and what later operations read about backups.

use super::sql::{Row, SqlResult, ToValue, params};

/// Rows per multi-row `INSERT` (7 parameters each, far below either engine's limit).
const INSERT_ROWS: usize = 200;
use super::{Store, from_unix, to_unix};
use crate::scan::FoundFile;
use anyhow::Result;
use chrono::{DateTime, Utc};
use std::collections::HashMap;
use std::rc::Rc;

/// One backup as the store knows it.
#[derive(Debug, Clone, PartialEq)]
pub struct BackupRow {
    pub id: i64,
    pub location_id: i64,
    pub path: String,
    /// Size and mtime recorded when the settled file was first seen.
    pub size: u64,
    pub mtime_ns: i64,
    pub ts: DateTime<Utc>,
    pub ts_source: String,
    /// Size and mtime at the latest scan.
    pub seen_size: u64,
    pub seen_mtime_ns: i64,
    pub first_seen: DateTime<Utc>,
    pub last_seen: DateTime<Utc>,
    pub deleted_at: Option<DateTime<Utc>>,
    pub checksum: Option<String>,
    pub checksum_algo: Option<String>,
    pub checksum_at: Option<DateTime<Utc>>,
    pub last_verified_at: Option<DateTime<Utc>>,
}

impl BackupRow {
    pub fn is_present(&self) -> bool {
        self.deleted_at.is_none()
    }
}

pub(crate) const BACKUP_COLUMNS: &str = "id, location_id, path, size, mtime_ns, ts, ts_source, seen_size, seen_mtime_ns, \
     first_seen, last_seen, deleted_at, checksum, checksum_algo, checksum_at, last_verified_at";

pub(crate) fn backup_from_row(r: &Row<'_>) -> SqlResult<BackupRow> {
    Ok(BackupRow {
        id: r.get(0)?,
        location_id: r.get(1)?,
        path: r.get(2)?,
        size: r.get::<i64>(3)? as u64,
        mtime_ns: r.get(4)?,
        ts: from_unix(r.get(5)?),
        ts_source: r.get(6)?,
        seen_size: r.get::<i64>(7)? as u64,
        seen_mtime_ns: r.get(8)?,
        first_seen: from_unix(r.get(9)?),
        last_seen: from_unix(r.get(10)?),
        deleted_at: r.get::<Option<i64>>(11)?.map(from_unix),
        checksum: r.get(12)?,
        checksum_algo: r.get(13)?,
        checksum_at: r.get::<Option<i64>>(14)?.map(from_unix),
        last_verified_at: r.get::<Option<i64>>(15)?.map(from_unix),
    })
}

/// The multi-row `INSERT` of `rows` new backups, seven parameters each.
fn insert_backups_sql(rows: usize) -> String {
    let values: Vec<String> = (0..rows)
        .map(|i| {
            let n = i * 7;
            format!(
                "(?{}, ?{}, ?{}, ?{}, ?{}, ?{}, ?{}, ?{}, ?{}, ?{})",
                n + 1,
                n + 2,
                n + 3,
                n + 4,
                n + 5,
                n + 6,
                n + 3,
                n + 4,
                n + 7,
                n + 7
            )
        })
        .collect();
    format!(
        "INSERT INTO backups (location_id, path, size, mtime_ns, ts, ts_source, seen_size, seen_mtime_ns, first_seen, last_seen) VALUES {}",
        values.join(", ")
    )
}

/// What one scan changed in the store.
#[derive(Debug, Default)]
pub struct ScanSync {
    pub new_backups: usize,
    /// Backups that were present and are gone now.
    pub deleted: Vec<BackupRow>,
}

/// A location at a glance (see [`Store::location_glance`]).
#[derive(Debug, Clone, PartialEq)]
pub struct LocationGlance {
    pub present: u64,
    pub latest: Option<BackupRow>,
    pub last_scan_at: Option<DateTime<Utc>>,
}

impl Store {
    /// Apply a scan of one location in one transaction: record settled new files, refresh
    /// what was seen of known ones, and mark vanished ones deleted.
    pub fn sync_scan(
        &self,
        location_id: i64,
        found: &[FoundFile],
        now: DateTime<Utc>,
    ) -> Result<ScanSync> {
        self.sync_partial_scan(location_id, found, &[], now)
    }

    /// [`Store::sync_scan`] of a scan that could not list the directories `unreadable`
    /// (relative paths): backups under them were not seen, but are not gone either.
    pub fn sync_partial_scan(
        &self,
        location_id: i64,
        found: &[FoundFile],
        unreadable: &[String],
        now: DateTime<Utc>,
    ) -> Result<ScanSync> {
        // (id, seen_size, seen_mtime_ns) of every present backup, by path, from the
        // location's rows (read here once for the run: a scan that changes nothing leaves
        // them for the monitor to judge from).
        let mut present: HashMap<String, (i64, u64, i64)> = self
            .backups_read(location_id)?
            .iter()
            .filter(|b| b.is_present())
            .map(|b| (b.path.clone(), (b.id, b.seen_size, b.seen_mtime_ns)))
            .collect();
        let mut sync = ScanSync::default();
        let now_s = to_unix(now);
        // `last_seen` changes only with what was seen: for a present backup, "seen at
        // the location's last scan" is implied, and rewriting every row on every scan
        // would cost a full table rewrite for 100,000 unchanged files.
        let mut new_files = Vec::new();
        let mut changed = Vec::new();
        for f in found {
            match present.remove(&f.path) {
                Some((id, seen_size, seen_mtime_ns))
                    if seen_size != f.size || seen_mtime_ns != f.mtime_ns =>
                {
                    changed.push((id, f));
                }
                Some(_) => {}
                None if f.settled => new_files.push(f),
                None => {}
            }
        }
        let unseen = |path: &str| {
            unreadable.iter().any(|dir| {
                path.strip_prefix(dir.as_str())
                    .is_some_and(|rest| rest.starts_with('/'))
            })
        };
        present.retain(|path, _| !unseen(path));
        if changed.is_empty() && new_files.is_empty() && present.is_empty() {
            return Ok(sync);
        }
        self.backups_changed_at(location_id);
        let tx = self.db.transaction()?;
        for (id, f) in changed {
            self.db.execute(
                "UPDATE backups SET seen_size = ?2, seen_mtime_ns = ?3, last_seen = ?4 WHERE id = ?1",
                params![id, f.size as i64, f.mtime_ns, now_s],
            )?;
        }
        // New backups go in many rows per statement: on PostgreSQL each statement is a
        // round trip to the server.
        let mut full_chunk_sql = None;
        for chunk in new_files.chunks(INSERT_ROWS) {
            // Parameters are borrowed from the scan; only the timestamps are computed.
            let ts: Vec<i64> = chunk.iter().map(|f| to_unix(f.ts)).collect();
            let sources: Vec<&str> = chunk.iter().map(|f| f.ts_source.stored()).collect();
            let mut args: Vec<&dyn ToValue> = Vec::with_capacity(chunk.len() * 7);
            for ((f, ts), source) in chunk.iter().zip(&ts).zip(&sources) {
                args.extend([
                    &location_id as &dyn ToValue,
                    &f.path,
                    &f.size,
                    &f.mtime_ns,
                    ts,
                    source,
                    &now_s,
                ]);
            }
            let sql = if chunk.len() == INSERT_ROWS {
                full_chunk_sql.get_or_insert_with(|| insert_backups_sql(INSERT_ROWS))
            } else {
                &insert_backups_sql(chunk.len())
            };
            self.db.execute(sql, &args)?;
            sync.new_backups += chunk.len();
        }
        let delete =
            format!("UPDATE backups SET deleted_at = ?2 WHERE id = ?1 RETURNING {BACKUP_COLUMNS}");
        for (id, _, _) in present.into_values() {
            let mut row = self
                .db
                .query_map(&delete, params![id, now_s], backup_from_row)?;
            sync.deleted
                .push(row.pop().ok_or(super::sql::SqlError::NoRows)?);
        }
        tx.commit()?;
        Ok(sync)
    }

    /// The settings the location's recorded timestamps were derived with (see
    /// `timestamp::settings_fingerprint`); None before any were recorded.
    pub fn timestamp_settings(&self, location_id: i64) -> Result<Option<String>> {
        if let Some(known) = self.memo.timestamp_settings.borrow().get(&location_id) {
            return Ok(known.clone());
        }
        Ok(self
            .db
            .query_opt(
                "SELECT timestamp_settings FROM locations WHERE id = ?1",
                params![location_id],
            )?
            .map(|r| r.get::<Option<String>>(0))
            .transpose()?
            .flatten())
    }

    /// Derive the timestamp of every backup ever recorded for a location again, deleted
    /// ones included (they are history the schedule is judged by), and record `settings`
    /// as what they were derived with — in one transaction. `derive` gets a backup's path
    /// and recorded mtime (ns) and returns its timestamp and source (`filename`/`mtime`).
    /// Returns how many timestamps changed.
    pub fn rederive_timestamps(
        &self,
        location_id: i64,
        settings: &str,
        derive: impl Fn(&str, i64) -> (DateTime<Utc>, &'static str),
    ) -> Result<usize> {
        self.backups_changed_at(location_id);
        let tx = self.db.transaction()?;
        let mut changed = 0;
        let rows = self.db.query_map(
            "SELECT id, path, mtime_ns, ts, ts_source FROM backups WHERE location_id = ?1",
            params![location_id],
            |r| -> SqlResult<(i64, String, i64, i64, String)> {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
            },
        )?;
        for (id, path, mtime_ns, ts, source) in rows {
            let (new_ts, new_source) = derive(&path, mtime_ns);
            if to_unix(new_ts) != ts || new_source != source {
                self.db.execute(
                    "UPDATE backups SET ts = ?2, ts_source = ?3 WHERE id = ?1",
                    params![id, to_unix(new_ts), new_source],
                )?;
                changed += 1;
            }
        }
        self.db.execute(
            "UPDATE locations SET timestamp_settings = ?2 WHERE id = ?1",
            params![location_id, settings],
        )?;
        tx.commit()?;
        self.memo
            .timestamp_settings
            .borrow_mut()
            .insert(location_id, Some(settings.to_string()));
        Ok(changed)
    }

    /// Rows of `sql` (selecting [`BACKUP_COLUMNS`]) as backups.
    fn backups_where(&self, sql: &str, location_id: i64) -> Result<Vec<BackupRow>> {
        Ok(self
            .db
            .query_map(sql, params![location_id], backup_from_row)?)
    }

    /// Every backup ever recorded for a location (deleted ones included), oldest first.
    pub fn backups_of(&self, location_id: i64) -> Result<Vec<BackupRow>> {
        Ok(self.backups_read(location_id)?.as_ref().clone())
    }

    /// [`Store::backups_of`], shared: read once per run until a backup row changes.
    fn backups_read(&self, location_id: i64) -> Result<Rc<Vec<BackupRow>>> {
        if let Some(known) = self.memo.backups.borrow().get(&location_id) {
            return Ok(known.clone());
        }
        let read = Rc::new(self.backups_where(
            &format!("SELECT {BACKUP_COLUMNS} FROM backups WHERE location_id = ?1 ORDER BY ts, id"),
            location_id,
        )?);
        self.memo
            .backups
            .borrow_mut()
            .insert(location_id, read.clone());
        Ok(read)
    }

    /// The timestamps of [`Store::backups_of`], in the same order, without reading the
    /// rest of each row (what schedule judging needs).
    pub fn backup_timestamps(&self, location_id: i64) -> Result<Rc<[DateTime<Utc>]>> {
        if let Some(known) = self.memo.timestamps.borrow().get(&location_id) {
            return Ok(known.clone());
        }
        let read: Rc<[DateTime<Utc>]> = self
            .db
            .query_map(
                "SELECT ts FROM backups WHERE location_id = ?1 ORDER BY ts, id",
                params![location_id],
                |r| Ok(from_unix(r.get(0)?)),
            )?
            .into();
        self.memo
            .timestamps
            .borrow_mut()
            .insert(location_id, read.clone());
        Ok(read)
    }

    /// Read the backup timestamps of several locations in one statement (kept for
    /// [`Store::backup_timestamps`] until backups are added); those read already are not
    /// read again.
    pub fn read_backup_timestamps(&self, location_ids: &[i64]) -> Result<()> {
        let unread: Vec<i64> = {
            let known = self.memo.timestamps.borrow();
            location_ids
                .iter()
                .copied()
                .filter(|id| !known.contains_key(id))
                .collect()
        };
        for chunk in unread.chunks(500) {
            let mut read: HashMap<i64, Vec<DateTime<Utc>>> =
                chunk.iter().map(|id| (*id, Vec::new())).collect();
            let args: Vec<&dyn ToValue> = chunk.iter().map(|id| id as &dyn ToValue).collect();
            self.db.query_each(
                &format!(
                    "SELECT location_id, ts FROM backups WHERE location_id IN ({}) ORDER BY location_id, ts, id",
                    super::report::placeholders(chunk.len(), 1)
                ),
                &args,
                |r| {
                    read.entry(r.get(0)?).or_default().push(from_unix(r.get(1)?));
                    Ok(())
                },
            )?;
            let mut memo = self.memo.timestamps.borrow_mut();
            for (id, ts) in read {
                memo.insert(id, ts.into());
            }
        }
        Ok(())
    }

    /// Forget the backups and timestamps read so far (backups were added, changed or
    /// derived again).
    pub(crate) fn backups_changed(&self) {
        self.memo.timestamps.borrow_mut().clear();
        self.memo.backups.borrow_mut().clear();
    }

    /// [`Store::backups_changed`] for one location's backups.
    fn backups_changed_at(&self, location_id: i64) {
        self.memo.timestamps.borrow_mut().remove(&location_id);
        self.memo.backups.borrow_mut().remove(&location_id);
    }

    /// Present backups of a location, newest first.
    pub fn present_backups(&self, location_id: i64) -> Result<Vec<BackupRow>> {
        // From the backups read this run, when they were (oldest first: reversed).
        if let Some(known) = self.memo.backups.borrow().get(&location_id) {
            return Ok(known
                .iter()
                .rev()
                .filter(|b| b.is_present())
                .cloned()
                .collect());
        }
        self.backups_where(
            &format!(
                "SELECT {BACKUP_COLUMNS} FROM backups WHERE location_id = ?1 AND deleted_at IS NULL ORDER BY ts DESC, id DESC"
            ),
            location_id,
        )
    }

    pub fn backup(&self, id: i64) -> Result<BackupRow> {
        let mut rows = self.db.query_map(
            &format!("SELECT {BACKUP_COLUMNS} FROM backups WHERE id = ?1"),
            params![id],
            backup_from_row,
        )?;
        Ok(rows.pop().ok_or(super::sql::SqlError::NoRows)?)
    }

    /// What a location's summary shows, in one statement: how many backups are present,
    /// the newest present one, and when the location was last scanned.
    pub fn location_glance(&self, location_id: i64) -> Result<LocationGlance> {
        let columns: Vec<String> = BACKUP_COLUMNS
            .split(',')
            .map(|c| format!("b.{}", c.trim()))
            .collect();
        let r = self.db.query_row(
            &format!(
                "SELECT {}, (SELECT COUNT(*) FROM backups WHERE location_id = ?1 AND deleted_at IS NULL), l.last_scan_at
                 FROM locations l LEFT JOIN backups b ON b.id = (
                   SELECT id FROM backups WHERE location_id = ?1 AND deleted_at IS NULL ORDER BY ts DESC, id DESC LIMIT 1)
                 WHERE l.id = ?1",
                columns.join(", ")
            ),
            params![location_id],
        )?;
        let n = columns.len();
        Ok(LocationGlance {
            latest: match r.get::<Option<i64>>(0)? {
                Some(_) => Some(backup_from_row(&r)?),
                None => None,
            },
            present: r.get::<i64>(n)? as u64,
            last_scan_at: r.get::<Option<i64>>(n + 1)?.map(from_unix),
        })
    }

    /// How many backups of a location are present.
    pub fn present_count(&self, location_id: i64) -> Result<u64> {
        Ok(self
            .db
            .query_row(
                "SELECT COUNT(*) FROM backups WHERE location_id = ?1 AND deleted_at IS NULL",
                params![location_id],
            )?
            .get::<i64>(0)? as u64)
    }

    /// The newest present backup of a location.
    pub fn latest_backup(&self, location_id: i64) -> Result<Option<BackupRow>> {
        Ok(self
            .backups_where(
                &format!(
                    "SELECT {BACKUP_COLUMNS} FROM backups WHERE location_id = ?1 AND deleted_at IS NULL ORDER BY ts DESC, id DESC LIMIT 1"
                ),
                location_id,
            )?
            .into_iter()
            .next())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(path: &str, size: u64, settled: bool) -> FoundFile {
        FoundFile {
            path: path.into(),
            size,
            mtime_ns: 1,
            ts: from_unix(1000),
            ts_source: crate::timestamp::TimestampSource::Mtime,
            settled,
        }
    }

    #[test]
    fn scan_sync_records_refreshes_and_deletes() {
        let (_db, store) = crate::store::test_store();
        let loc = store
            .upsert_location("a", "/a", "generic", from_unix(0))
            .unwrap();
        let s = store
            .sync_scan(
                loc,
                &[file("x", 1, true), file("y", 2, false)],
                from_unix(10),
            )
            .unwrap();
        assert_eq!(s.new_backups, 1, "unsettled files are not recorded");
        let s = store
            .sync_scan(
                loc,
                &[file("x", 5, true), file("y", 2, true)],
                from_unix(20),
            )
            .unwrap();
        assert_eq!(s.new_backups, 1);
        let x = store
            .present_backups(loc)
            .unwrap()
            .into_iter()
            .find(|b| b.path == "x")
            .unwrap();
        assert_eq!(
            (x.size, x.seen_size),
            (1, 5),
            "recorded size kept, seen size refreshed"
        );
        let s = store
            .sync_scan(loc, &[file("y", 2, true)], from_unix(30))
            .unwrap();
        assert_eq!(s.deleted.len(), 1);
        assert_eq!(s.deleted[0].path, "x");
        assert_eq!(store.present_count(loc).unwrap(), 1);
        assert_eq!(store.backups_of(loc).unwrap().len(), 2);
        // A re-appearing path is a new backup.
        let s = store
            .sync_scan(
                loc,
                &[file("x", 1, true), file("y", 2, true)],
                from_unix(40),
            )
            .unwrap();
        assert_eq!(s.new_backups, 1);
        assert_eq!(store.backups_of(loc).unwrap().len(), 3);
        let all: Vec<_> = store
            .backups_of(loc)
            .unwrap()
            .iter()
            .map(|b| b.ts)
            .collect();
        assert_eq!(*store.backup_timestamps(loc).unwrap(), *all);
        // Read once, then kept until backups are added.
        let before = store.backup_timestamps(loc).unwrap();
        assert!(Rc::ptr_eq(&before, &store.backup_timestamps(loc).unwrap()));
        store
            .sync_scan(
                loc,
                &[file("x", 1, true), file("y", 2, true), file("z", 3, true)],
                from_unix(50),
            )
            .unwrap();
        assert_eq!(store.backup_timestamps(loc).unwrap().len(), 4);
        // The present backups taken from the rows read this run are those the store holds.
        store.backups_of(loc).unwrap();
        let from_memo = store.present_backups(loc).unwrap();
        store.backups_changed();
        assert_eq!(from_memo, store.present_backups(loc).unwrap());
        assert_eq!(from_memo.len(), 3);
    }

    #[test]
    fn a_glance_is_the_count_the_newest_present_backup_and_the_last_scan() {
        // On PostgreSQL too with BM_TEST_STORE=postgres.
        let (_guard, store) = crate::store::test_store();
        let loc = store
            .upsert_location("db", "/b", "database", from_unix(1))
            .unwrap();
        let empty = store.location_glance(loc).unwrap();
        assert_eq!(
            (empty.present, empty.latest, empty.last_scan_at),
            (0, None, None)
        );
        store
            .sync_scan(
                loc,
                &[file("x", 1, true), file("y", 2, true)],
                from_unix(30),
            )
            .unwrap();
        store
            .sync_scan(loc, &[file("y", 2, true)], from_unix(40))
            .unwrap();
        store
            .record_location_scan(loc, true, None, from_unix(40))
            .unwrap();
        let glance = store.location_glance(loc).unwrap();
        assert_eq!(glance.present, 1);
        assert_eq!(glance.latest, store.latest_backup(loc).unwrap());
        assert_eq!(glance.latest.map(|b| b.path), Some("y".to_string()));
        assert_eq!(glance.last_scan_at, Some(from_unix(40)));
    }
}
