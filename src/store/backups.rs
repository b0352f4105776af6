//! Backup rows: what each scan found, and what later operations read about backups.

use super::sql::{Backend, Row, SqlResult, ToValue, array_literal, params};

/// Rows per multi-row `INSERT` on SQLite (7 parameters each, far below its limit).
const INSERT_ROWS: usize = 200;
/// Rows per `INSERT` from arrays on PostgreSQL (one parameter per column).
const ARRAY_ROWS: usize = 5000;
/// Backups marked deleted per statement.
const DELETE_ROWS: usize = 500;
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

/// The ids of `location_ids` not in `memo`.
fn unread<T>(memo: &HashMap<i64, T>, location_ids: &[i64]) -> Vec<i64> {
    location_ids
        .iter()
        .copied()
        .filter(|id| !memo.contains_key(id))
        .collect()
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
        "INSERT INTO backups (location_id, path, size, mtime_ns, ts, ts_source, seen_size, seen_mtime_ns, first_seen, last_seen) VALUES {} RETURNING {BACKUP_COLUMNS}",
        values.join(", ")
    )
}

/// What one scan changed in the store.
#[derive(Debug, Default)]
/// One location's scan for [`Store::sync_scans`]: the settled and unsettled files found,
/// and the directories that could not be listed (relative paths).
pub struct ScanOf<'a> {
    pub location_id: i64,
    pub found: &'a [FoundFile],
    pub unreadable: &'a [String],
}

/// What a scan changes in the store (see [`Store::sync_scans`]).
struct SyncPlan<'f> {
    new_files: Vec<&'f FoundFile>,
    /// (id, file) of present backups whose size or mtime changed.
    changed: Vec<(i64, &'f FoundFile)>,
    /// Present backups the scan did not find.
    gone: Vec<i64>,
    /// The location's rows as read for the run.
    known: Rc<Vec<BackupRow>>,
}

impl SyncPlan<'_> {
    fn is_empty(&self) -> bool {
        self.new_files.is_empty() && self.changed.is_empty() && self.gone.is_empty()
    }
}

#[derive(Default)]
pub struct ScanSync {
    pub new_backups: usize,
    /// Backups that were present and are gone now.
    pub deleted: Vec<BackupRow>,
}

/// A location at a glance (see [`Store::location_glances`]).
#[derive(Debug, Clone, Default, PartialEq)]
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
        let scan = ScanOf {
            location_id,
            found,
            unreadable,
        };
        Ok(self
            .sync_scans(std::slice::from_ref(&scan), now)?
            .pop()
            .unwrap_or_default())
    }

    /// [`Store::sync_partial_scan`] of several locations' scans in one transaction, the
    /// new backups of all of them in one statement per 200 (a nightly run's new backups
    /// are one per location: on a shared store a round trip each otherwise). The
    /// results are in the order of `scans`.
    pub fn sync_scans(&self, scans: &[ScanOf<'_>], now: DateTime<Utc>) -> Result<Vec<ScanSync>> {
        let now_s = to_unix(now);
        let mut plans = Vec::with_capacity(scans.len());
        for scan in scans {
            plans.push(self.plan_sync(scan)?);
        }
        let new_files: Vec<(i64, &FoundFile)> = scans
            .iter()
            .zip(&plans)
            .flat_map(|(scan, plan)| plan.new_files.iter().map(|f| (scan.location_id, *f)))
            .collect();
        let gone: Vec<i64> = plans.iter().flat_map(|p| p.gone.iter().copied()).collect();
        let per_insert = match self.backend() {
            Backend::Sqlite => INSERT_ROWS,
            Backend::Postgres => ARRAY_ROWS,
        };
        let writes = plans.iter().map(|p| p.changed.len()).sum::<usize>()
            + gone.len().div_ceil(DELETE_ROWS)
            + new_files.len().div_ceil(per_insert);
        let mut syncs: Vec<ScanSync> = scans.iter().map(|_| ScanSync::default()).collect();
        if writes == 0 {
            return Ok(syncs);
        }
        for (scan, plan) in scans.iter().zip(&plans) {
            if !plan.is_empty() {
                self.backups_changed_at(scan.location_id);
            }
        }
        // One statement is atomic alone (one location's new backup): on PostgreSQL a
        // transaction around it would cost two more round trips.
        let tx = match writes {
            1 => None,
            _ => Some(self.db.transaction()?),
        };
        // Every row written comes back, so the rows read for the run stay current.
        let mut written: HashMap<i64, Vec<BackupRow>> = HashMap::new();
        let update = format!(
            "UPDATE backups SET seen_size = ?2, seen_mtime_ns = ?3, last_seen = ?4 WHERE id = ?1 RETURNING {BACKUP_COLUMNS}"
        );
        // Backups gone since the last scan, of every location at once (a night's
        // retention removes one per location: a round trip each on PostgreSQL).
        let mut gone_rows: HashMap<i64, BackupRow> = HashMap::new();
        for chunk in gone.chunks(DELETE_ROWS) {
            let mut args: Vec<&dyn ToValue> = vec![&now_s];
            args.extend(chunk.iter().map(|id| id as &dyn ToValue));
            let sql = format!(
                "UPDATE backups SET deleted_at = ?1 WHERE id IN ({}) RETURNING {BACKUP_COLUMNS}",
                super::report::placeholders(chunk.len(), 2)
            );
            self.db.query_each(&sql, &args, |r| {
                let row = backup_from_row(r)?;
                gone_rows.insert(row.id, row);
                Ok(())
            })?;
        }
        for ((scan, plan), sync) in scans.iter().zip(&plans).zip(syncs.iter_mut()) {
            let rows = written.entry(scan.location_id).or_default();
            for (id, f) in &plan.changed {
                rows.extend(self.db.query_map(
                    &update,
                    params![id, f.size as i64, f.mtime_ns, now_s],
                    backup_from_row,
                )?);
            }
            for id in &plan.gone {
                let row = gone_rows
                    .get(id)
                    .cloned()
                    .ok_or(super::sql::SqlError::NoRows)?;
                rows.push(row.clone());
                sync.deleted.push(row);
            }
        }
        for row in self.insert_backups(&new_files, now_s)? {
            written.entry(row.location_id).or_default().push(row);
        }
        if let Some(tx) = tx {
            tx.commit()?;
        }
        for ((scan, plan), sync) in scans.iter().zip(&plans).zip(syncs.iter_mut()) {
            sync.new_backups = plan.new_files.len();
            if let Some(rows) = written.remove(&scan.location_id) {
                self.keep_backups(scan.location_id, &plan.known, rows);
            }
        }
        Ok(syncs)
    }

    /// Insert new backups (of any locations), returning their rows. Many rows go in one
    /// statement: on PostgreSQL each statement is a round trip to the server.
    fn insert_backups(&self, files: &[(i64, &FoundFile)], now_s: i64) -> Result<Vec<BackupRow>> {
        let mut rows = Vec::with_capacity(files.len());
        if self.backend() == Backend::Postgres {
            for chunk in files.chunks(ARRAY_ROWS) {
                rows.extend(self.insert_backups_from_arrays(chunk, now_s)?);
            }
            return Ok(rows);
        }
        let mut full_chunk_sql = None;
        for chunk in files.chunks(INSERT_ROWS) {
            // Parameters are borrowed from the scan; only the timestamps are computed.
            let ts: Vec<i64> = chunk.iter().map(|(_, f)| to_unix(f.ts)).collect();
            let sources: Vec<&str> = chunk.iter().map(|(_, f)| f.ts_source.stored()).collect();
            let mut args: Vec<&dyn ToValue> = Vec::with_capacity(chunk.len() * 7);
            for (((location_id, f), ts), source) in chunk.iter().zip(&ts).zip(&sources) {
                args.extend([
                    location_id as &dyn ToValue,
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
            rows.extend(self.db.query_map(sql, &args, backup_from_row)?);
        }
        Ok(rows)
    }

    /// Insert new backups on PostgreSQL as one statement whose values are one array per
    /// column: a `VALUES` list of 7 parameters a row costs the server more to parse and
    /// plan than to insert (600 rows: 9.6 ms in three statements of 200).
    fn insert_backups_from_arrays(
        &self,
        files: &[(i64, &FoundFile)],
        now_s: i64,
    ) -> Result<Vec<BackupRow>> {
        let column = |f: &dyn Fn(i64, &FoundFile) -> String| {
            array_literal(files.iter().map(|(loc, file)| Some(f(*loc, file))))
        };
        let locations = column(&|loc, _| loc.to_string());
        let paths = column(&|_, f| f.path.clone());
        let sizes = column(&|_, f| f.size.to_string());
        let mtimes = column(&|_, f| f.mtime_ns.to_string());
        let stamps = column(&|_, f| to_unix(f.ts).to_string());
        let sources = column(&|_, f| f.ts_source.stored().to_string());
        Ok(self.db.query_map(
            &format!(
                "INSERT INTO backups (location_id, path, size, mtime_ns, ts, ts_source, seen_size, seen_mtime_ns, first_seen, last_seen)
                 SELECT v.location_id, v.path, v.size, v.mtime_ns, v.ts, v.ts_source, v.size, v.mtime_ns, ?1, ?1
                 FROM unnest(CAST(?2 AS BIGINT[]), CAST(?3 AS TEXT[]), CAST(?4 AS BIGINT[]), CAST(?5 AS BIGINT[]),
                             CAST(?6 AS BIGINT[]), CAST(?7 AS TEXT[])) AS v(location_id, path, size, mtime_ns, ts, ts_source)
                 RETURNING {BACKUP_COLUMNS}"
            ),
            params![now_s, locations, paths, sizes, mtimes, stamps, sources],
            backup_from_row,
        )?)
    }

    /// What recording `scan` changes, from the location's rows read for the run.
    fn plan_sync<'f>(&self, scan: &ScanOf<'f>) -> Result<SyncPlan<'f>> {
        let known = self.backups_read(scan.location_id)?;
        // (id, seen_size, seen_mtime_ns) of every present backup, by path.
        let mut present: HashMap<&str, (i64, u64, i64)> = known
            .iter()
            .filter(|b| b.is_present())
            .map(|b| (b.path.as_str(), (b.id, b.seen_size, b.seen_mtime_ns)))
            .collect();
        // `last_seen` changes only with what was seen: for a present backup, "seen at
        // the location's last scan" is implied, and rewriting every row on every scan
        // would cost a full table rewrite for 100,000 unchanged files.
        let mut new_files = Vec::new();
        let mut changed = Vec::new();
        for f in scan.found {
            match present.remove(f.path.as_str()) {
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
            scan.unreadable.iter().any(|dir| {
                path.strip_prefix(dir.as_str())
                    .is_some_and(|rest| rest.starts_with('/'))
            })
        };
        let gone = present
            .into_iter()
            .filter(|(path, _)| !unseen(path))
            .map(|(_, (id, _, _))| id)
            .collect();
        Ok(SyncPlan {
            new_files,
            changed,
            gone,
            known: known.clone(),
        })
    }

    /// Keep `known` (the location's rows read this run) with `written` (rows this run
    /// wrote since, as the store returned them) in place of the rows they replace, in
    /// the order [`Store::backups_of`] reads them.
    fn keep_backups(&self, location_id: i64, known: &[BackupRow], written: Vec<BackupRow>) {
        let ids: std::collections::HashSet<i64> = written.iter().map(|b| b.id).collect();
        let mut rows: Vec<BackupRow> = known
            .iter()
            .filter(|b| !ids.contains(&b.id))
            .cloned()
            .chain(written)
            .collect();
        rows.sort_by_key(|b| (b.ts, b.id));
        self.memo
            .timestamps
            .borrow_mut()
            .insert(location_id, rows.iter().map(|b| b.ts).collect());
        self.memo
            .backups
            .borrow_mut()
            .insert(location_id, Rc::new(rows));
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
        let changes: Vec<(i64, i64, &'static str)> = self
            .backups_read(location_id)?
            .iter()
            .filter_map(|b| {
                let (ts, source) = derive(&b.path, b.mtime_ns);
                let ts = to_unix(ts);
                (ts != to_unix(b.ts) || source != b.ts_source).then_some((b.id, ts, source))
            })
            .collect();
        let settings_sql = "UPDATE locations SET timestamp_settings = ?2 WHERE id = ?1";
        if changes.is_empty() {
            // The settings alone (a new location has no backups yet): written with the
            // other locations' (a round trip each on a shared store otherwise).
            self.pending
                .settings
                .borrow_mut()
                .insert(location_id, settings.to_string());
        } else {
            self.backups_changed_at(location_id);
            self.pending.settings.borrow_mut().remove(&location_id);
            let tx = self.db.transaction()?;
            for (id, ts, source) in &changes {
                self.db.execute(
                    "UPDATE backups SET ts = ?2, ts_source = ?3 WHERE id = ?1",
                    params![id, ts, source],
                )?;
            }
            self.db
                .execute(settings_sql, params![location_id, settings])?;
            tx.commit()?;
        }
        self.memo
            .timestamp_settings
            .borrow_mut()
            .insert(location_id, Some(settings.to_string()));
        Ok(changes.len())
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
        let unread = unread(&self.memo.timestamps.borrow(), location_ids);
        let mut read: HashMap<i64, Vec<DateTime<Utc>>> =
            unread.iter().map(|id| (*id, Vec::new())).collect();
        self.each_backup_of(&unread, "location_id, ts", |r| {
            read.entry(r.get(0)?)
                .or_default()
                .push(from_unix(r.get(1)?));
            Ok(())
        })?;
        let mut memo = self.memo.timestamps.borrow_mut();
        for (id, ts) in read {
            memo.insert(id, ts.into());
        }
        Ok(())
    }

    /// Read every backup row of several locations in one statement per 500 (kept for
    /// [`Store::backups_of`] and [`Store::backup_timestamps`] until they change); those
    /// read already are not read again. The monitor reads its locations so before
    /// scanning them: one round trip instead of one per location on a shared store.
    pub fn read_backups(&self, location_ids: &[i64]) -> Result<()> {
        let unread = unread(&self.memo.backups.borrow(), location_ids);
        let mut read: HashMap<i64, Vec<BackupRow>> =
            unread.iter().map(|id| (*id, Vec::new())).collect();
        self.each_backup_of(&unread, BACKUP_COLUMNS, |r| {
            let b = backup_from_row(r)?;
            read.entry(b.location_id).or_default().push(b);
            Ok(())
        })?;
        let mut memo = self.memo.backups.borrow_mut();
        let mut timestamps = self.memo.timestamps.borrow_mut();
        for (id, rows) in read {
            timestamps.insert(id, rows.iter().map(|b| b.ts).collect());
            memo.insert(id, Rc::new(rows));
        }
        Ok(())
    }

    /// `f` on `columns` of every backup of `location_ids` (deleted ones included), by
    /// location, oldest first: one statement per 500 locations.
    fn each_backup_of(
        &self,
        location_ids: &[i64],
        columns: &str,
        mut f: impl FnMut(&Row<'_>) -> SqlResult<()>,
    ) -> Result<()> {
        self.query_each_in(
            &format!(
                "SELECT {columns} FROM backups WHERE location_id IN ({{ids}}) ORDER BY location_id, ts, id"
            ),
            &[],
            location_ids,
            &mut f,
        )
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

    /// What the summaries of several locations show: for each, how many backups are
    /// present, the newest present one, and when it was last scanned. One statement per
    /// 500 locations (one per location made a nightly run on a shared store wait on a
    /// round trip each). Locations the store does not know are absent.
    pub fn location_glances(&self, location_ids: &[i64]) -> Result<HashMap<i64, LocationGlance>> {
        self.write_pending()?;
        let mut out = HashMap::new();
        // Locations this run scanned, whose backups it keeps: from what it keeps.
        let mut unknown = Vec::new();
        {
            let kept = self.memo.backups.borrow();
            let scanned = self.memo.scanned.borrow();
            for id in location_ids {
                let (Some(rows), Some(at)) = (kept.get(id), scanned.get(id)) else {
                    unknown.push(*id);
                    continue;
                };
                // Kept oldest first, as `ORDER BY ts, id`: the newest present is the last.
                let present = rows.iter().filter(|b| b.is_present());
                out.insert(
                    *id,
                    LocationGlance {
                        latest: present.clone().next_back().cloned(),
                        present: present.count() as u64,
                        last_scan_at: Some(*at),
                    },
                );
            }
        }
        let location_ids = unknown.as_slice();
        let columns: Vec<String> = BACKUP_COLUMNS
            .split(',')
            .map(|c| format!("b.{}", c.trim()))
            .collect();
        let n = columns.len();
        for chunk in location_ids.chunks(500) {
            let args: Vec<&dyn ToValue> = chunk.iter().map(|id| id as &dyn ToValue).collect();
            let sql = format!(
                "SELECT {}, (SELECT COUNT(*) FROM backups c WHERE c.location_id = l.id AND c.deleted_at IS NULL),
                        l.last_scan_at, l.id
                 FROM locations l LEFT JOIN backups b ON b.id = (
                   SELECT n.id FROM backups n WHERE n.location_id = l.id AND n.deleted_at IS NULL
                   ORDER BY n.ts DESC, n.id DESC LIMIT 1)
                 WHERE l.id IN ({})",
                columns.join(", "),
                super::report::placeholders(chunk.len(), 1)
            );
            self.db.query_each(&sql, &args, |r| {
                let glance = LocationGlance {
                    latest: match r.get::<Option<i64>>(0)? {
                        Some(_) => Some(backup_from_row(r)?),
                        None => None,
                    },
                    present: r.get::<i64>(n)? as u64,
                    last_scan_at: r.get::<Option<i64>>(n + 1)?.map(from_unix),
                };
                out.insert(r.get::<i64>(n + 2)?, glance);
                Ok(())
            })?;
        }
        Ok(out)
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
    use crate::config::ChecksumAlgo;
    use crate::store::VerifyMethod;

    #[test]
    fn glances_of_several_locations_match_each_one_read_alone() {
        let (_db, store, a, b) = crate::store::store_with_two_locations("generic");
        let empty = store
            .upsert_location("c", "/c", "generic", from_unix(0))
            .unwrap();
        store
            .sync_scan(
                a,
                &[file("/a/1", 1, true), file("/a/2", 2, true)],
                from_unix(10),
            )
            .unwrap();
        store
            .sync_scan(b, &[file("/b/1", 5, true)], from_unix(10))
            .unwrap();
        store
            .record_location_scan(b, true, None, from_unix(40))
            .unwrap();
        let all = store.location_glances(&[a, b, empty, 999]).unwrap();
        assert_eq!(all.len(), 3, "an unknown location is absent");
        // Each as the store's other reads of one location give it.
        let scans = store.location_scan_states(&[a, b, empty, 999]).unwrap();
        assert_eq!(scans.len(), 3, "an unknown location is absent");
        for id in [a, b, empty] {
            assert_eq!(all[&id].present, store.present_count(id).unwrap());
            assert_eq!(all[&id].latest, store.latest_backup(id).unwrap());
            assert_eq!(all[&id].last_scan_at, scans[&id].last_scan_at);
        }
        assert_eq!(all[&a].present, 2);
        assert_eq!(
            all[&b].last_scan_at,
            Some(from_unix(40)),
            "the kept scan is written first"
        );
        assert_eq!(all[&empty], LocationGlance::default());
    }

    #[test]
    fn the_rows_read_for_a_run_stay_those_of_the_store_after_a_scan_writes() {
        let (db, store, loc) = crate::store::store_with_location("a", "generic");
        store
            .sync_scan(
                loc,
                &[file("/a/1", 1, true), file("/a/2", 2, true)],
                from_unix(10),
            )
            .unwrap();
        store.read_backups(&[loc]).unwrap();
        // One new, one changed, one gone: the rows kept must equal a fresh read.
        let mut changed = file("/a/1", 7, true);
        changed.mtime_ns += 1;
        // Older than the others: the order kept must be the store's (by time, then id).
        let mut early = file("/a/3", 3, true);
        early.ts = from_unix(500);
        store
            .sync_scan(loc, &[changed, early], from_unix(20))
            .unwrap();
        let kept = store.backups_of(loc).unwrap();
        let fresh = db.reopen().backups_of(loc).unwrap();
        assert_eq!(kept, fresh);
        assert_eq!(kept.len(), 3);
        assert_eq!(kept[0].path, "/a/3");
        assert!(
            kept.iter()
                .any(|b| b.path == "/a/2" && b.deleted_at.is_some())
        );
        assert_eq!(
            store.backup_timestamps(loc).unwrap().to_vec(),
            fresh.iter().map(|b| b.ts).collect::<Vec<_>>()
        );
    }

    #[test]
    fn several_locations_record_new_and_gone_backups_with_any_name_at_once() {
        // On PostgreSQL too with BM_TEST_STORE=postgres (new backups go as arrays).
        let (db, store) = crate::store::test_store();
        let names = [
            "plain.sql",
            "it's \"odd\" \\ {1,2}, NULL.sql",
            "NULL",
            " spaced ",
            "\u{e9}t\u{e9}/dump.sql",
        ];
        let locs: Vec<i64> = ["a", "b", "c"]
            .iter()
            .map(|n| {
                store
                    .upsert_location(n, &format!("/{n}"), "generic", from_unix(0))
                    .unwrap()
            })
            .collect();
        let files: Vec<FoundFile> = names.iter().map(|n| file(n, 3, true)).collect();
        let scans: Vec<ScanOf<'_>> = locs
            .iter()
            .map(|loc| ScanOf {
                location_id: *loc,
                found: &files,
                unreadable: &[],
            })
            .collect();
        let synced = store.sync_scans(&scans, from_unix(10)).unwrap();
        assert!(synced.iter().all(|s| s.new_backups == names.len()));
        for loc in &locs {
            let mut stored: Vec<String> = db
                .reopen()
                .present_backups(*loc)
                .unwrap()
                .into_iter()
                .map(|b| b.path)
                .collect();
            stored.sort();
            let mut expected: Vec<String> = names.iter().map(|n| n.to_string()).collect();
            expected.sort();
            assert_eq!(stored, expected);
        }
        // The next scan finds only the first two names: the rest are gone, in every
        // location, and each location is told its own.
        let kept = &files[..2];
        let scans: Vec<ScanOf<'_>> = locs
            .iter()
            .map(|loc| ScanOf {
                location_id: *loc,
                found: kept,
                unreadable: &[],
            })
            .collect();
        let synced = store.sync_scans(&scans, from_unix(20)).unwrap();
        for (loc, sync) in locs.iter().zip(&synced) {
            let mut gone: Vec<&str> = sync.deleted.iter().map(|b| b.path.as_str()).collect();
            gone.sort();
            let mut expected: Vec<&str> = names[2..].to_vec();
            expected.sort();
            assert_eq!(gone, expected);
            assert!(sync.deleted.iter().all(|b| b.location_id == *loc));
            assert!(
                sync.deleted
                    .iter()
                    .all(|b| b.deleted_at == Some(from_unix(20)))
            );
            assert_eq!(
                store.backups_of(*loc).unwrap(),
                db.reopen().backups_of(*loc).unwrap()
            );
            assert_eq!(store.present_count(*loc).unwrap(), 2);
        }
    }

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
        let empty = store.location_glances(&[loc]).unwrap()[&loc].clone();
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
        let glance = store.location_glances(&[loc]).unwrap()[&loc].clone();
        assert_eq!(glance.present, 1);
        assert_eq!(glance.latest, store.latest_backup(loc).unwrap());
        assert_eq!(glance.latest.map(|b| b.path), Some("y".to_string()));
        assert_eq!(glance.last_scan_at, Some(from_unix(40)));
    }

    #[test]
    fn the_rows_kept_after_verification_and_the_glance_from_them_are_the_stored_ones() {
        // On PostgreSQL too with BM_TEST_STORE=postgres.
        use crate::store::verify::{Verification, VerifyResult};
        let (_guard, store) = crate::store::test_store();
        let loc = store
            .upsert_location("db", "/b", "database", from_unix(1))
            .unwrap();
        store
            .sync_scan(
                loc,
                &[file("x", 1, true), file("y", 2, true), file("z", 3, true)],
                from_unix(30),
            )
            .unwrap();
        store
            .record_location_scan(loc, true, None, from_unix(31))
            .unwrap();
        let rows = store.backups_of(loc).unwrap();
        let verification = |b: &BackupRow, hex: Option<&str>, hashed: bool| Verification {
            backup_id: b.id,
            location_id: loc,
            method: VerifyMethod::Checksum,
            algo: Some(ChecksumAlgo::Sha256),
            result: VerifyResult::Recorded,
            bytes: 1,
            duration_ms: 1,
            detail: None,
            first_checksum: hex.map(|h| (ChecksumAlgo::Sha256, h.to_string())),
            hashed,
        };
        // x hashed twice (its first checksum stays), y hashed without a checksum, z not
        // hashed at all (not stamped).
        store
            .record_verifications(
                1,
                [
                    verification(&rows[0], Some("aa"), true),
                    verification(&rows[1], None, true),
                    verification(&rows[0], Some("bb"), true),
                    verification(&rows[2], Some("cc"), false),
                ],
                from_unix(45),
            )
            .unwrap();
        // The scan's state, kept to be written with others, goes first.
        store.write_pending().unwrap();
        let statements = |s: &Store| s.db.spent().statements;
        let before = statements(&store);
        let kept = store.backups_of(loc).unwrap();
        let glance = store.location_glances(&[loc]).unwrap()[&loc].clone();
        assert_eq!(statements(&store), before, "served from the rows kept");
        assert_eq!(kept[0].checksum.as_deref(), Some("aa"));
        assert_eq!(kept[0].last_verified_at, Some(from_unix(45)));
        assert_eq!(kept[2].last_verified_at, None);
        // Exactly what the store holds, read afresh.
        store.backups_changed();
        *store.memo.scanned.borrow_mut() = Default::default();
        assert_eq!(kept, store.backups_of(loc).unwrap());
        let read = store.location_glances(&[loc]).unwrap()[&loc].clone();
        assert!(statements(&store) > before, "read from the store");
        assert_eq!(glance, read);
        assert_eq!(read.present, 3);
        assert_eq!(read.last_scan_at, Some(from_unix(31)));
    }
}
