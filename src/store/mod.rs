//! The metadata store, SQLite (embedded, the default) or PostgreSQL (one store for a
//! fleet of hosts): every SQL statement of the program lives under `store/`, written
//! once for both engines through the thin layer in `sql.rs`. Other modules call typed
//! functions; none of them writes SQL.
//!
//! Durability: WAL mode and a busy timeout on SQLite, one transaction per location per
//! operation, and versioned migrations per engine (`schema.rs`), applied by whichever
//! run comes first (on PostgreSQL under a database-wide lock). A run killed at any point
//! leaves the last committed transaction; the next run carries on from there.
//!
//! A store belongs to a host (`host:`): what a run writes is that host's; what it reads
//! covers its [`View`], this host or (`--fleet`) every host.

mod alerts;
mod backups;
mod fleet;
mod fleet_report;
mod health;
mod lifecycle;
mod pg;
mod problems;
mod report;
mod restore;
mod runs;
pub mod schema;
pub(crate) mod sql;
mod sql_types;
mod verify;

pub use alerts::{AlertDelivery, AlertRow, Event};
pub use backups::{BackupRow, LocationGlance, ScanOf, ScanSync};
pub use fleet::FleetLocation;
pub use fleet_report::{
    CheckCount, CheckKind, FleetCheck, LocationState, StoredState, WindowFigures,
};
pub use health::{DailyHealth, JudgedCounts};
pub use lifecycle::{ActionEntry, StoredSilence};
pub use pg::{PgTarget, fnv1a, is_postgres_url};
pub use problems::{Changes, StoredProblem, by_location, changes};
pub use report::{DailyScore, FailureCounts, LastPassed, ReportBackup, ReportCheck};
pub use restore::{NewRestoreTest, PreviousVerdict, Restored, Verdict};
pub use runs::LockHolder;
pub use verify::{Verification, VerifyMethod, VerifyResult};

use anyhow::{Context, Result};
use chrono::{DateTime, TimeZone, Utc};
use rusqlite::{Connection, OpenFlags};
use sql::{Db, SqlError, params};
use std::cell::RefCell;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::rc::Rc;

/// Errors the caller decides on (exit 3 with a clear message).
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(
        "the store {path} was written by a newer backup-monitor (schema {found}, this build knows {known}); upgrade backup-monitor"
    )]
    TooNew {
        path: PathBuf,
        found: i64,
        known: i64,
    },
    #[error(
        "cannot open the store {path}: {source}. Check the path in database_url / DATABASE_URL and its permissions"
    )]
    Open {
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error(
        "the store {path} is damaged ({detail}; SQLite's integrity check: {check}). Restore the store from your backup of it, or move it aside to start a new history (a new store loses the run history and the checksums recorded on first sight)"
    )]
    Damaged {
        path: PathBuf,
        detail: String,
        check: String,
    },
    #[error(
        "the store {path} is not a backup-monitor database ({detail}). Point database_url at the store, or move this file aside to start a new history"
    )]
    NotADatabase { path: PathBuf, detail: String },
    #[error(
        "the store {path} is {what}, not a file. Point database_url at a file (the first run creates it)"
    )]
    NotAFile { path: PathBuf, what: &'static str },
    #[error(
        "the filesystem holding the store {path} is full ({detail}), so this run could not be recorded. Free space in {dir} and run again; the store's history is kept"
    )]
    DiskFull {
        path: PathBuf,
        dir: PathBuf,
        detail: String,
    },
    #[error(
        "an I/O error on the filesystem holding the store {path} ({detail}). Check that filesystem (kernel log, mount state, free space in {dir}) and run again; {check}"
    )]
    Io {
        path: PathBuf,
        dir: PathBuf,
        detail: String,
        check: String,
    },
    #[error(
        "cannot use the store {path} ({detail}), though SQLite's integrity check finds the file sound: keep it, check that database_url names backup-monitor's store and that its filesystem is healthy, then run again"
    )]
    Unusable { path: PathBuf, detail: String },
    #[error(
        "the store {path} does not have the layout this build of backup-monitor expects ({detail}); it was made by a pre-release build with the same schema number. Move it aside to start a new history"
    )]
    Mismatch { path: PathBuf, detail: String },
    #[error(
        "the store's directory {dir} is not writable for this user: SQLite keeps the store's write-ahead log (-wal and -shm files) beside it. Make the directory writable for this user, or point database_url at one that is"
    )]
    DirectoryReadOnly { dir: PathBuf },
    #[error(
        "the store {path} is read-only for this user: backup-monitor records every run there. Check the permissions of the file and its directory, and that its filesystem is not mounted read-only"
    )]
    ReadOnly { path: PathBuf },
    #[error(transparent)]
    Connect(#[from] pg::ConnectError),
    #[error(
        "the PostgreSQL store at {server} was written by a newer backup-monitor (schema {found}, this build knows {known}); upgrade backup-monitor on this host"
    )]
    PgTooNew {
        server: String,
        found: i64,
        known: i64,
    },
    #[error("cannot set up the PostgreSQL store at {server}: {detail}")]
    PgMigrate { server: String, detail: String },
    #[error(
        "the PostgreSQL database {server} already holds tables another program made ({tables}) and is not a backup-monitor store; give backup-monitor a database of its own (CREATE DATABASE backupmon) and point database_url at it"
    )]
    PgNotOurs { server: String, tables: String },
    #[error(
        "{holder} holds this host's lock in the store {server}; wait for it to finish, or check that process"
    )]
    HostLocked { holder: String, server: String },
    #[error(
        "the store's connection to {server} goes through a pooler in transaction mode, or one that does not reset sessions (advisory locks would leak); use session pooling: pool_mode = session, with PgBouncer's default server_reset_query = DISCARD ALL"
    )]
    SharedSession { server: String },
}

/// Which hosts a store's reads cover.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum View {
    /// One host's locations, problems, alerts and runs.
    Host(String),
    /// Every host in the store (`--fleet`).
    Fleet,
}

pub struct Store {
    pub(crate) db: Db,
    /// The SQLite file; for PostgreSQL, the anchor of the local lock file.
    path: PathBuf,
    /// The host this run writes as.
    host: String,
    view: View,
    /// The server of a PostgreSQL store, for messages (never with the password).
    server: Option<String>,
    /// The server session (backend process id) the schema's version was last read on,
    /// when it was: the run lock's statement must find itself on the same one.
    session: std::cell::Cell<Option<i64>>,
    /// What this run read already and has not changed since (see [`RunMemo`]).
    memo: RunMemo,
    /// Writes kept to be sent together (one statement instead of one per location, on a
    /// shared store a round trip each), by [`Store::write_pending`]: before anything reads
    /// what they change, when the monitor or the run ends, and when the store closes.
    pending: Pending,
}

/// See [`Store::write_pending`].
#[derive(Default)]
struct Pending {
    /// Scan states recorded, by location.
    scans: RefCell<std::collections::BTreeMap<i64, LocationScanState>>,
    /// Open problems found again: (id, severity, message, when).
    refreshed: RefCell<Vec<(i64, crate::problem::Severity, String, i64)>>,
    /// Timestamp settings to record for locations whose recorded timestamps they do not
    /// change (a new location's first scan), by location.
    settings: RefCell<std::collections::BTreeMap<i64, String>>,
    /// Gaps found, to be recorded together (see [`Store::record_gaps`]).
    gaps: RefCell<Vec<problems::PendingGap>>,
}

/// Rows per statement of [`Store::update_by_id`].
pub(crate) const UPDATE_ROWS: usize = 200;

/// Ids per statement of [`Store::query_each_in`].
const IN_LIST: usize = 500;

/// `sql` for `ids`, `per` of them a statement: `{ids}` in it becomes the chunk's
/// placeholders, numbered after those of `fixed` (the parameters every statement takes
/// first), and `run` sends each statement with its parameters. Nothing is sent for no ids.
fn for_chunks_of<I: sql::ToValue>(
    sql: &str,
    fixed: &[&dyn sql::ToValue],
    ids: &[I],
    per: usize,
    mut run: impl FnMut(&str, &[&dyn sql::ToValue]) -> Result<()>,
) -> Result<()> {
    for chunk in ids.chunks(per) {
        let mut args: Vec<&dyn sql::ToValue> = fixed.to_vec();
        args.extend(chunk.iter().map(|id| id as &dyn sql::ToValue));
        let list = report::placeholders(chunk.len(), fixed.len() + 1);
        run(&sql.replace("{ids}", &list), &args)?;
    }
    Ok(())
}

/// The store's reads kept for the length of one run, each cleared by the statements that
/// change what it mirrors: on a shared store every read saved is a round trip.
#[derive(Default)]
pub(crate) struct RunMemo {
    /// [`Store::backup_timestamps`] by location, read once per run: the health step, the
    /// summary and the stored state all judge the schedule from them (three round trips
    /// per location on a shared store otherwise). Cleared whenever backups are added or
    /// their timestamps derived again.
    pub(crate) timestamps: RefCell<HashMap<i64, Rc<[DateTime<Utc>]>>>,
    /// [`Store::backups_of`] by location, read once per run: the monitor judges from it
    /// and the verify and restore plans take the present ones from it. Cleared whenever a
    /// backup row changes.
    pub(crate) backups: RefCell<HashMap<i64, Rc<Vec<BackupRow>>>>,
    /// `locations.timestamp_settings` as [`Store::upsert_location`] found them (the run's
    /// first statement about each location), so the scan does not ask again.
    pub(crate) timestamp_settings: RefCell<HashMap<i64, Option<String>>>,
    /// Open problems by (host, operation), read once per run for the syncs.
    pub(crate) open_problems_read:
        RefCell<HashMap<(String, crate::problem::Operation), problems::OpenRead>>,
    /// When this run scanned each location it scanned (`locations.last_scan_at` as it
    /// writes it): with the backups kept, what a summary glances at needs no read.
    pub(crate) scanned: RefCell<HashMap<i64, DateTime<Utc>>>,
    /// The accepted deletions of this host's locations, read once per run.
    pub(crate) accepted: RefCell<Option<HashMap<i64, std::collections::HashSet<i64>>>>,
    /// [`Store::open_problems`] of the run's own host as last read: each step of a run
    /// (verify, health, the summary, the alerts) asks for them again. Refreshed in place
    /// when problems found again are written, cleared by every other statement that
    /// writes problems ([`Store::problems_changed`]). Only this run writes its host's
    /// problems, under its lock; another host's view or the fleet's is read afresh.
    pub(crate) open_problems: RefCell<Option<Rc<Vec<problems::StoredProblem>>>>,
}

/// What opening a SQLite store did to its schema.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Migrated {
    /// It was current already.
    Already,
    /// It was empty: every migration ran now.
    Created,
    /// It was older: the missing migrations ran now.
    Upgraded,
}

/// What kind of trouble a failed store operation was, read from SQLite's result code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// `SQLITE_FULL`: the filesystem (or a quota) is full.
    Full,
    /// `SQLITE_IOERR`, `SQLITE_CANTOPEN`: the filesystem failed a read, write or mmap.
    Io,
    /// `SQLITE_CORRUPT`: pages are damaged.
    Corrupt,
    /// `SQLITE_NOTADB`: the file is something else.
    NotADatabase,
    /// Anything else that stopped the store from opening.
    Other,
}

impl Fault {
    /// The fault of a SQLite error, None for errors that are not SQLite's.
    pub fn of_sqlite(e: &rusqlite::Error) -> Option<Fault> {
        use rusqlite::ErrorCode as C;
        Some(match e.sqlite_error_code()? {
            C::DiskFull => Fault::Full,
            C::SystemIoFailure | C::CannotOpen => Fault::Io,
            C::DatabaseCorrupt => Fault::Corrupt,
            C::NotADatabase => Fault::NotADatabase,
            _ => Fault::Other,
        })
    }

    /// The fault of the first SQLite error in `e`'s chain that says the store itself is in
    /// trouble (full, I/O, damaged, not a database); None for every other failure.
    pub fn of(e: &anyhow::Error) -> Option<Fault> {
        if e.chain().any(|c| c.is::<StoreError>()) {
            return None; // already said what it is
        }
        e.chain()
            .filter_map(|c| {
                c.downcast_ref::<rusqlite::Error>()
                    .or_else(|| match c.downcast_ref::<SqlError>() {
                        Some(SqlError::Sqlite(e)) => Some(e),
                        _ => None,
                    })
            })
            .filter_map(Fault::of_sqlite)
            .find(|f| *f != Fault::Other)
    }
}

/// Free bytes for this user on the filesystem holding `dir`, if it can be asked.
fn free_bytes(dir: &Path) -> Option<u64> {
    let s = rustix::fs::statvfs(dir).ok()?;
    Some(s.f_bavail.saturating_mul(s.f_frsize))
}

/// The directory holding the store file.
fn store_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// What `PRAGMA integrity_check` says about the store at `path`, on a connection of its
/// own (read-only, so it works on a full disk): "ok", its first finding, or why it
/// could not run.
pub fn integrity_of(path: &Path) -> String {
    let check = || -> rusqlite::Result<String> {
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        conn.busy_timeout(std::time::Duration::from_secs(10))?;
        conn.query_row("PRAGMA integrity_check(1)", [], |r| r.get(0))
    };
    match check() {
        Ok(s) => crate::problem::one_line(&s).into_owned(),
        Err(e) => format!("it could not run: {e}"),
    }
}

impl StoreError {
    /// Say what is true about a store operation that failed with `fault`: a full or
    /// failing filesystem is not a damaged store, and only a store that SQLite's
    /// integrity check finds damaged is ever called damaged.
    pub fn from_fault(path: &Path, fault: Fault, detail: String) -> StoreError {
        let path = path.to_path_buf();
        let dir = store_dir(&path);
        let full = fault == Fault::Full || free_bytes(&dir) == Some(0);
        if fault == Fault::NotADatabase {
            return StoreError::NotADatabase { path, detail };
        }
        if full {
            return StoreError::DiskFull { path, dir, detail };
        }
        let check = integrity_of(&path);
        if check == "ok" {
            return match fault {
                Fault::Io => StoreError::Io {
                    path,
                    dir,
                    detail,
                    check: "SQLite's integrity check finds nothing wrong with the store".into(),
                },
                _ => StoreError::Unusable { path, detail },
            };
        }
        match fault {
            Fault::Io if check.starts_with("it could not run") => StoreError::Io {
                path,
                dir,
                detail,
                check: format!("SQLite's integrity check on the store: {check}"),
            },
            _ => StoreError::Damaged {
                path,
                detail,
                check,
            },
        }
    }
}

/// The error to give when the directory of the store is not writable for this process.
fn unwritable_directory(path: &Path) -> Option<StoreError> {
    use std::os::unix::ffi::OsStrExt;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let c = std::ffi::CString::new(dir.as_os_str().as_bytes()).ok()?;
    // SAFETY: access only reads the NUL-terminated path.
    let writable = unsafe { libc::access(c.as_ptr(), libc::W_OK | libc::X_OK) } == 0;
    (!writable && dir.is_dir()).then(|| StoreError::DirectoryReadOnly { dir: dir.into() })
}

/// Refuse a store path that exists and is not a regular file (following symlinks).
fn not_a_file(path: &Path) -> Result<(), StoreError> {
    use std::os::unix::fs::FileTypeExt;
    let Ok(meta) = std::fs::metadata(path) else {
        return Ok(());
    };
    let kind = meta.file_type();
    let what = if kind.is_file() {
        return Ok(());
    } else if kind.is_dir() {
        "a directory"
    } else if kind.is_fifo() {
        "a named pipe"
    } else if kind.is_socket() {
        "a socket"
    } else {
        "a device"
    };
    Err(StoreError::NotAFile {
        path: path.into(),
        what,
    })
}

/// The column names of `table` (empty when there is no such table).
fn columns(conn: &Connection, table: &str) -> rusqlite::Result<Vec<String>> {
    conn.prepare(&format!("PRAGMA table_info(\"{table}\")"))?
        .query_map([], |r| r.get(1))?
        .collect()
}

pub fn to_unix(t: DateTime<Utc>) -> i64 {
    t.timestamp()
}

pub fn from_unix(s: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(s, 0)
        .single()
        .unwrap_or(DateTime::<Utc>::MIN_UTC)
}

/// Lock keys: PostgreSQL's two-key advisory locks, the first key naming this program.
const LOCK_CLASS: i32 = 0x626d_6f6e; // "bmon"
const MIGRATE_CLASS: i32 = 0x626d_6d67; // "bmmg"
/// The session lock each run holds from its start (key: its run id modulo 2^31): while it
/// is held the run is alive, so its claims on alert notices stand, and the run holding a
/// host's lock can be told (the session holding both).
const RUN_CLASS: i32 = 0x626d_636c; // "bmcl"

/// PostgreSQL's statement marking this host's locations that are not among the names
/// in parameter `param` (an array literal, [`pg_names`]) as removed from its config now
/// (`?1` the host, `?2` the time).
fn pg_mark_removed(param: usize) -> String {
    format!(
        "UPDATE locations SET removed_at = ?2 WHERE host = ?1 AND removed_at IS NULL
           AND name <> ALL(CAST(?{param} AS TEXT[]))"
    )
}

/// `names` as the array literal [`pg_mark_removed`] takes.
fn pg_names(names: &[&str]) -> String {
    sql::array_literal(names.iter().map(|n| Some(n.to_string())))
}

/// How long a run waits for its host's lock held by another session before it says who
/// holds it: long enough for a fleet run's moment on the host, short next to a run.
const HOST_LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// The transaction lock a fleet run writes a host's staleness under when that host's own
/// lock is held by a run that has been going for longer than `monitoring.max_run_age`.
const STALE_CLASS: i32 = 0x626d_7374; // "bmst"

/// Up to five names, then how many more: for a message naming what was found.
fn some_names(names: &[String]) -> String {
    let shown = names.iter().take(5).cloned().collect::<Vec<_>>().join(", ");
    match names.len() {
        n if n > 5 => format!("{shown} and {} more", n - 5),
        _ => shown,
    }
}

/// Where a store is, from the configuration.
pub enum Target<'a> {
    Sqlite(&'a Path),
    Postgres(&'a PgTarget),
}

impl<'a> Target<'a> {
    pub fn of(config: &'a crate::config::Config) -> Target<'a> {
        match &config.postgres {
            Some(pg) => Target::Postgres(pg),
            None => Target::Sqlite(&config.store_path),
        }
    }
}

impl Drop for Store {
    /// Writes still kept are sent before the connection closes (a caller that recorded
    /// a scan and read nothing after).
    fn drop(&mut self) {
        if let Err(e) = self.write_pending() {
            tracing::warn!(
                "cannot record the last scan and problems of the locations: {}",
                crate::output::chained(&e)
            );
        }
        let spent = self.db.spent();
        tracing::debug!(
            "the store ({}) took {:.1} ms over {} statements, opening it included",
            self.name(),
            spent.time.as_secs_f64() * 1000.0,
            spent.statements
        );
    }
}

impl Store {
    /// Open (creating if needed) the configured store for reading and writing, as the
    /// configured host.
    pub fn connect(config: &crate::config::Config) -> Result<Store> {
        let start = std::time::Instant::now();
        let store = match Target::of(config) {
            Target::Sqlite(path) => Store::open_as(path, &config.host),
            Target::Postgres(pg) => Store::open_postgres(pg, &config.store_path, &config.host),
        }?;
        store.db.opened_in(start.elapsed());
        Ok(store)
    }

    /// Open the configured store for reading (`--status`); None when there is none yet.
    pub fn connect_read_only(config: &crate::config::Config) -> Result<Option<Store>> {
        let start = std::time::Instant::now();
        let store = Store::connect_read_only_untimed(config)?;
        if let Some(store) = &store {
            store.db.opened_in(start.elapsed());
        }
        Ok(store)
    }

    fn connect_read_only_untimed(config: &crate::config::Config) -> Result<Option<Store>> {
        match Target::of(config) {
            Target::Sqlite(path) => Store::open_read_only_as(path, &config.host),
            Target::Postgres(pg) => {
                let client = pg.connect()?;
                let store = Store::on_postgres(client, pg, &config.store_path, &config.host);
                if store.schema_version()? == 0 {
                    return Ok(None);
                }
                store.check_pg_version(pg)?;
                Ok(Some(store))
            }
        }
    }

    /// Open (creating if needed) the SQLite store at `path`, as this machine's host name.
    pub fn open(path: &Path) -> Result<Store> {
        Store::open_as(path, &crate::config::host_name())
    }

    /// Open (creating if needed) the SQLite store at `path` for reading and writing.
    pub fn open_as(path: &Path, host: &str) -> Result<Store> {
        not_a_file(path)?;
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).with_context(|| {
                format!("cannot create the store's directory {}", dir.display())
            })?;
        }
        if let Some(e) = unwritable_directory(path) {
            return Err(e.into());
        }
        let existed = path.exists();
        let conn = Connection::open(path).map_err(|source| StoreError::Open {
            path: path.into(),
            source,
        })?;
        if !existed {
            restrict_permissions(path);
        }
        // SQLite falls back to read-only when it may not write the file; say so here,
        // naming the file, rather than fail later on "attempt to write a readonly database".
        if conn.is_readonly(rusqlite::MAIN_DB).unwrap_or(false) {
            return Err(StoreError::ReadOnly { path: path.into() }.into());
        }
        let store = Store::on_sqlite(conn, path, host);
        store.configure()?;
        // A store this run created has the layout its migrations just made: the check
        // (which replays them all in memory) is for stores made by other builds.
        if store.migrate()? != Migrated::Created {
            store.check_layout()?;
        }
        Ok(store)
    }

    /// Open an existing SQLite store read-only (for `--status`); None when there is none yet.
    pub fn open_read_only(path: &Path) -> Result<Option<Store>> {
        Store::open_read_only_as(path, &crate::config::host_name())
    }

    fn open_read_only_as(path: &Path, host: &str) -> Result<Option<Store>> {
        if !path.exists() {
            return Ok(None);
        }
        // A named pipe would be waited on for ever; a directory said as one.
        not_a_file(path)?;
        // An empty file is no store yet (a run makes it one): nothing to read, nothing
        // to write here.
        if std::fs::metadata(path).is_ok_and(|m| m.len() == 0) {
            return Ok(None);
        }
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|source| StoreError::Open {
            path: path.into(),
            source,
        })?;
        conn.busy_timeout(std::time::Duration::from_secs(10))?;
        let store = Store::on_sqlite(conn, path, host);
        // Reading a store in WAL mode needs its -shm file, which SQLite creates beside it.
        let version = store
            .schema_version()
            .map_err(|e| unwritable_directory(path).map_or(e, anyhow::Error::from))?;
        if version > schema::MIGRATIONS.len() as i64 {
            return Err(StoreError::TooNew {
                path: path.into(),
                found: version,
                known: schema::MIGRATIONS.len() as i64,
            }
            .into());
        }
        if version < schema::HOST_SCHEMA as i64 {
            // Written by a build from before hosts: every query of this one names the
            // host. Bring it up to date once (as the next run would); a store this user
            // may not write is said as such.
            drop(store);
            return Store::open_as(path, host).map(Some);
        }
        if version == schema::MIGRATIONS.len() as i64 {
            store.check_layout()?;
        }
        Ok(Some(store))
    }

    fn on_sqlite(conn: Connection, path: &Path, host: &str) -> Store {
        Store {
            db: Db::sqlite_conn(conn),
            path: path.to_path_buf(),
            host: host.to_string(),
            view: View::Host(host.to_string()),
            memo: RunMemo::default(),
            pending: Pending::default(),
            server: None,
            session: std::cell::Cell::new(None),
        }
    }

    fn on_postgres(client: postgres::Client, pg: &PgTarget, anchor: &Path, host: &str) -> Store {
        Store {
            db: Db::postgres(sql::PgConn::new(client, pg.to_string())),
            path: anchor.to_path_buf(),
            host: host.to_string(),
            view: View::Host(host.to_string()),
            memo: RunMemo::default(),
            pending: Pending::default(),
            server: Some(pg.to_string()),
            session: std::cell::Cell::new(None),
        }
    }

    /// Open (creating the schema if needed) the PostgreSQL store `pg` as `host`.
    pub fn open_postgres(pg: &PgTarget, anchor: &Path, host: &str) -> Result<Store> {
        let client = pg.connect()?;
        let store = Store::on_postgres(client, pg, anchor, host);
        store.migrate_postgres(pg)?;
        Ok(store)
    }

    /// The engine of this store.
    pub fn backend(&self) -> sql::Backend {
        self.db.backend()
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The store as people should read it named: the SQLite file, or the PostgreSQL
    /// server as `host:port/database`.
    pub fn name(&self) -> String {
        match &self.server {
            Some(s) => s.clone(),
            None => self.path.display().to_string(),
        }
    }

    /// The host this store writes as.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// Which hosts reads cover from now on.
    pub fn set_view(&mut self, view: View) {
        self.view = view;
        self.problems_changed();
    }

    pub fn view(&self) -> &View {
        &self.view
    }

    /// The host reads are narrowed to, None for the whole fleet (a statement parameter:
    /// `(CAST(?N AS TEXT) IS NULL OR host = ?N)`).
    pub(crate) fn view_host(&self) -> Option<&str> {
        match &self.view {
            View::Host(h) => Some(h),
            View::Fleet => None,
        }
    }

    /// The hosts the store knows (those with a location or a run), sorted.
    pub fn hosts(&self) -> Result<Vec<String>> {
        Ok(self.db.query_map(
            "SELECT host FROM (SELECT host FROM locations UNION SELECT host FROM runs) h
             ORDER BY host COLLATE \"C\"",
            params![],
            |r| r.get(0),
        )?)
    }

    /// Take this host's run lock in the store, on this store's own connection, and record
    /// the run's start (see [`Store::start_run`]); returns the run's id. The lock is held
    /// until the store is dropped or its session ends (a killed run's lock goes with its
    /// session), and so is the run's own lock (keyed by its id: the run is alive, and
    /// holds the host's lock). SQLite stores are one host's and need only the local lock
    /// file.
    ///
    /// A connection whose server session is not its own — a pooler in transaction mode
    /// hands it to other clients between transactions — is refused before anything is
    /// taken: the lock would stay behind on a session other runs get, and protect
    /// nothing. It shows as the session changing between two statements, or as a session
    /// another run has already marked as its own.
    pub fn lock_and_start_run(
        &self,
        operations: &[crate::problem::Operation],
        now: DateTime<Utc>,
    ) -> Result<i64> {
        if self.server.is_none() {
            return self.start_run(operations, &self.host, now);
        }
        // The session an earlier statement ran on (the schema's version read when the
        // store opened; a statement of its own when the run made the schema), which
        // this one must run on too.
        let backend = match self.session.get() {
            Some(pid) => pid,
            None => self
                .db
                .query_row("SELECT pg_backend_pid()::bigint", params![])?
                .get(0)?,
        };
        // The lock, this run named as its holder and its start recorded when it got it:
        // one round trip. All of it only on that same session (`p.own`), one no run has
        // marked as its own yet (read before anything is taken: `p` is computed first;
        // the mark, a setting of the session, goes when the session ends or is reset, as
        // the locks do). In it, the run's commits stop waiting for the server's disk
        // (`synchronous_commit = off` for this session): a crash of the server may lose
        // the last moment's commits, never corrupt the store — what SQLite's
        // `synchronous=NORMAL` gives a host's own store. Each of a night's dozen commits
        // would otherwise wait for a flush of the server's log. And the server looks
        // every second whether this run's connection is still there while a statement
        // of it waits (PostgreSQL 14 and later): a run killed while it waits for a lock
        // another session holds lets the host's lock go then, not when that wait ends.
        // A fleet run holds a host's lock for a moment while it writes what it judged
        // of that host: waited for, a few seconds at most, before the run gives up.
        let deadline = std::time::Instant::now() + HOST_LOCK_WAIT;
        loop {
            let r = self.db.query_row(
                "WITH p AS MATERIALIZED (
                       SELECT pg_backend_pid() = ?9
                              AND COALESCE(current_setting('backup_monitor.run', true), '') = '' AS own),
                 c AS (SELECT CASE WHEN p.own THEN set_config('synchronous_commit', 'off', false) END,
                             CASE WHEN p.own AND current_setting('server_version_num')::integer >= 140000
                                  THEN set_config('client_connection_check_interval', '1s', false) END
                       FROM p),
                 l AS (SELECT p.own, CASE WHEN p.own THEN pg_try_advisory_lock(?1::integer, ?2::integer) ELSE false END AS got FROM p),
                 w AS (INSERT INTO run_locks (host, pid, machine, since)
                       SELECT CAST(?3 AS TEXT), CAST(?4 AS BIGINT), CAST(?5 AS TEXT), CAST(?6 AS BIGINT) FROM l WHERE l.got
                       ON CONFLICT (host) DO UPDATE SET pid = excluded.pid, machine = excluded.machine, since = excluded.since),
                 r AS (INSERT INTO runs (started_at, operations, host, version, pid)
                       SELECT CAST(?6 AS BIGINT), CAST(?7 AS TEXT), CAST(?3 AS TEXT), CAST(?8 AS TEXT), CAST(?4 AS BIGINT)
                       FROM l WHERE l.got RETURNING id)
                 SELECT (SELECT id FROM r), l.own,
                        (SELECT pg_try_advisory_lock(?10::integer, (id % 2147483648)::integer) FROM r),
                        (SELECT set_config('backup_monitor.run', id::text, false) FROM r)
                 FROM l CROSS JOIN c",
                params![
                    LOCK_CLASS,
                    pg::fnv1a(self.host.as_bytes()) as i32,
                    self.host,
                    std::process::id(),
                    crate::config::host_name(),
                    to_unix(now),
                    runs::operations_text(operations),
                    env!("CARGO_PKG_VERSION"),
                    backend,
                    RUN_CLASS
                ],
            )?;
            if !r.get::<bool>(1)? {
                return Err(StoreError::SharedSession {
                    server: self.name(),
                }
                .into());
            }
            if let Some(run_id) = r.get::<Option<i64>>(0)? {
                return Ok(run_id);
            }
            if std::time::Instant::now() >= deadline {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
        // The run whose session holds the lock (a fleet run's, for a moment, is another
        // host's); else the last run of this host that took it.
        let unknown = || "an unknown machine".to_string();
        let (fleet_host, pid, machine) =
            match self.lock_holders(&[self.host.as_str()])?.remove(&self.host) {
                Some(h) => (
                    Some(h.host).filter(|host| *host != self.host),
                    h.pid.to_string(),
                    h.machine.unwrap_or_else(unknown),
                ),
                None => match self.db.query_opt(
                    "SELECT pid, machine FROM run_locks WHERE host = ?1",
                    params![self.host],
                )? {
                    Some(r) => (None, r.get::<i64>(0)?.to_string(), r.get::<String>(1)?),
                    None => (None, "unknown".to_string(), unknown()),
                },
            };
        let holder = match fleet_host {
            Some(fleet) => format!("a fleet run of host {fleet} (pid {pid} on {machine})"),
            None => format!(
                "another backup-monitor run for host {} (pid {pid} on {machine})",
                self.host
            ),
        };
        Err(StoreError::HostLocked {
            holder,
            server: self.name(),
        }
        .into())
    }

    /// Run `f` holding `host`'s run lock for a moment (a fleet run writing what it judged
    /// about another host); Ok(None) without running it when that host's lock is held
    /// elsewhere (a run of that host is going on now and judges for itself). This run's
    /// own host's lock, already held by this session, is simply taken once more. SQLite
    /// stores are serialized by the local lock file and need nothing here.
    pub fn with_host_lock<T>(
        &self,
        host: &str,
        f: impl FnOnce() -> Result<T>,
    ) -> Result<Option<T>> {
        if self.server.is_none() {
            return f().map(Some);
        }
        if !self.try_advisory_lock(host)? {
            return Ok(None);
        }
        let result = f();
        self.db.query(
            "SELECT pg_advisory_unlock(?1::integer, ?2::integer)",
            params![LOCK_CLASS, pg::fnv1a(host.as_bytes()) as i32],
        )?;
        result.map(Some)
    }

    /// Take `host`'s run lock on this session if no other session holds it.
    fn try_advisory_lock(&self, host: &str) -> Result<bool> {
        let key = pg::fnv1a(host.as_bytes()) as i32;
        Ok(self
            .db
            .query_row(
                "SELECT pg_try_advisory_lock(?1::integer, ?2::integer)",
                params![LOCK_CLASS, key],
            )?
            .get(0)?)
    }

    fn configure(&self) -> Result<()> {
        let Some(conn) = self.db.sqlite() else {
            return Ok(());
        };
        conn.busy_timeout(std::time::Duration::from_secs(30))?;
        let damaged = |e: rusqlite::Error| self.fault(&e);
        let mode: String = conn
            .query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))
            .map_err(damaged)?;
        if !mode.eq_ignore_ascii_case("wal") {
            tracing::debug!("store journal mode is {mode}, not WAL");
        }
        conn
            // A 32 MiB page cache and memory-mapped reads keep a 100,000-backup location
            // from re-reading pages through pread on every scan.
            .execute_batch(
                "PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON; PRAGMA cache_size=-32768; PRAGMA mmap_size=268435456;",
            )
            .map_err(damaged)?;
        Ok(())
    }

    fn schema_version(&self) -> Result<i64> {
        match self.db.sqlite() {
            Some(conn) => conn
                .query_row("PRAGMA user_version", [], |r| r.get(0))
                .map_err(|e| self.fault(&e).into()),
            // One round trip: a store no host has migrated yet has no table to read
            // (only asked outside a transaction, or after the table is created). The
            // session it ran on comes with it, for the run lock's check.
            None => match self.db.query_opt(
                "SELECT version, pg_backend_pid()::bigint FROM bm_schema",
                params![],
            ) {
                Ok(Some(row)) => {
                    self.session.set(Some(row.get::<i64>(1)?));
                    Ok(row.get::<i64>(0)?)
                }
                Ok(None) => Ok(0),
                Err(e) if e.is_undefined_table() => Ok(0),
                Err(e) => Err(e.into()),
            },
        }
    }

    fn check_pg_version(&self, pg: &PgTarget) -> Result<()> {
        let found = self.schema_version()?;
        let known = schema::PG_MIGRATIONS.len() as i64;
        if found > known {
            return Err(StoreError::PgTooNew {
                server: pg.to_string(),
                found,
                known,
            }
            .into());
        }
        Ok(())
    }

    /// Bring a PostgreSQL store's schema up to date, once, whichever host comes first:
    /// the migrations run in one transaction under a database-wide advisory lock, so a
    /// second host waits and then finds nothing left to do.
    fn migrate_postgres(&self, pg: &PgTarget) -> Result<()> {
        let failed = |e: SqlError| StoreError::PgMigrate {
            server: pg.to_string(),
            detail: e.to_string(),
        };
        let known = schema::PG_MIGRATIONS.len() as i64;
        // Up to date: no lock, no transaction (the common case for every run).
        if self.schema_version()? == known {
            return Ok(());
        }
        let tx = self.db.transaction().map_err(failed)?;
        self.db
            .query(
                "SELECT pg_advisory_xact_lock(?1::integer, 0)",
                params![MIGRATE_CLASS],
            )
            .map_err(failed)?;
        // The migrations' `IF NOT EXISTS` notices ("already exists, skipping") are the
        // server talking to itself: not for the run's log.
        self.db
            .batch(
                "SET LOCAL client_min_messages = warning;
                 CREATE TABLE IF NOT EXISTS bm_schema (version BIGINT NOT NULL)",
            )
            .map_err(failed)?;
        let version = self.schema_version()?;
        self.check_pg_version(pg)?;
        if version == 0 {
            // A new store is made only in a database of its own: not among another
            // program's tables (the transaction, undone, leaves them as they were).
            let theirs: Vec<String> = self
                .db
                .query_map(
                    "SELECT table_name FROM information_schema.tables
                     WHERE table_schema = current_schema() AND table_name <> 'bm_schema'
                     ORDER BY table_name COLLATE \"C\"",
                    params![],
                    |r| r.get(0),
                )
                .map_err(failed)?;
            if !theirs.is_empty() {
                return Err(StoreError::PgNotOurs {
                    server: pg.to_string(),
                    tables: some_names(&theirs),
                }
                .into());
            }
        }
        for (i, sql) in schema::PG_MIGRATIONS
            .iter()
            .enumerate()
            .skip(version as usize)
        {
            self.db.batch(sql).map_err(|e| StoreError::PgMigrate {
                server: pg.to_string(),
                detail: format!("migration {} failed: {e}", i + 1),
            })?;
        }
        self.db
            .execute("DELETE FROM bm_schema", params![])
            .map_err(failed)?;
        self.db
            .execute(
                "INSERT INTO bm_schema (version) VALUES (?1)",
                params![known],
            )
            .map_err(failed)?;
        tx.commit().map_err(failed)?;
        Ok(())
    }

    /// The error for a SQLite failure while opening the store.
    fn fault(&self, e: &rusqlite::Error) -> StoreError {
        let fault = Fault::of_sqlite(e).unwrap_or(Fault::Other);
        StoreError::from_fault(&self.path, fault, e.to_string())
    }

    /// Every table and column the migrations create is there. The schema number alone
    /// cannot tell a store made by a build whose migration was later edited (as happens
    /// before a release) from a current one; without this, such a store fails mid-run
    /// with "no such column" and a SQL statement.
    fn check_layout(&self) -> Result<()> {
        let Some(conn) = self.db.sqlite() else {
            return Ok(());
        };
        let expected = Connection::open_in_memory()?;
        for sql in schema::MIGRATIONS {
            expected.execute_batch(sql)?;
        }
        let mismatch = |detail: String| StoreError::Mismatch {
            path: self.path.clone(),
            detail,
        };
        let tables: Vec<String> = expected
            .prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")?
            .query_map([], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        for table in tables {
            let wanted = columns(&expected, &table)?;
            let found = columns(conn, &table).map_err(|e| match Fault::of_sqlite(&e) {
                Some(Fault::Other) | None => mismatch(e.to_string()),
                Some(_) => self.fault(&e),
            })?;
            if found.is_empty() {
                return Err(mismatch(format!("table {table} is missing")).into());
            }
            if let Some(c) = wanted.iter().find(|c| !found.contains(c)) {
                return Err(mismatch(format!("table {table} has no column {c}")).into());
            }
        }
        Ok(())
    }

    fn migrate(&self) -> Result<Migrated> {
        let Some(conn) = self.db.sqlite() else {
            return Ok(Migrated::Already);
        };
        let version = self.schema_version()?;
        let known = schema::MIGRATIONS.len() as i64;
        if version > known {
            return Err(StoreError::TooNew {
                path: self.path.clone(),
                found: version,
                known,
            }
            .into());
        }
        if version == known {
            return Ok(Migrated::Already);
        }
        if version == 0 {
            // A new store is made only in an empty file: not among another program's
            // tables.
            let theirs: Vec<String> = conn
                .prepare(
                    "SELECT name FROM sqlite_master
                     WHERE type IN ('table', 'view') AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\'
                     ORDER BY name",
                )
                .and_then(|mut st| {
                    st.query_map([], |r| r.get(0))?
                        .collect::<rusqlite::Result<Vec<String>>>()
                })
                .map_err(|e| self.fault(&e))?;
            if !theirs.is_empty() {
                return Err(StoreError::NotADatabase {
                    path: self.path.clone(),
                    detail: format!(
                        "it holds tables another program made: {}",
                        some_names(&theirs)
                    ),
                }
                .into());
            }
        }
        // A migration that rebuilds a table others refer to runs with the references
        // unchecked (the setting cannot change inside a transaction); they are checked
        // before it commits.
        conn.execute_batch("PRAGMA foreign_keys=OFF")?;
        let result = self.apply_migrations(conn, version);
        conn.execute_batch("PRAGMA foreign_keys=ON")?;
        result?;
        Ok(match version {
            0 => Migrated::Created,
            _ => Migrated::Upgraded,
        })
    }

    fn apply_migrations(&self, conn: &Connection, version: i64) -> Result<()> {
        for (i, sql) in schema::MIGRATIONS.iter().enumerate().skip(version as usize) {
            let tx = conn.unchecked_transaction()?;
            let failed = |e: rusqlite::Error| {
                let fault = Fault::of_sqlite(&e).unwrap_or(Fault::Other);
                StoreError::from_fault(
                    &self.path,
                    fault,
                    format!("migration {} failed: {e}", i + 1),
                )
            };
            tx.execute_batch(sql).map_err(failed)?;
            if i + 1 == schema::HOST_SCHEMA {
                // Everything recorded before is this host's.
                for table in ["locations", "problems", "alerts"] {
                    tx.execute(
                        &format!("UPDATE {table} SET host = ?1 WHERE host = ''"),
                        [&self.host],
                    )
                    .map_err(failed)?;
                }
            }
            let broken: Option<String> = tx
                .query_row("PRAGMA foreign_key_check", [], |r| r.get(0))
                .map(Some)
                .or_else(|e| match e {
                    rusqlite::Error::QueryReturnedNoRows => Ok(None),
                    e => Err(e),
                })
                .map_err(failed)?;
            if let Some(table) = broken {
                return Err(StoreError::from_fault(
                    &self.path,
                    Fault::Other,
                    format!(
                        "migration {} left a broken reference in table {table}",
                        i + 1
                    ),
                )
                .into());
            }
            tx.pragma_update(None, "user_version", (i + 1) as i64)
                .map_err(failed)?;
            tx.commit().map_err(failed)?;
        }
        Ok(())
    }

    /// `PRAGMA integrity_check`: "ok" for a healthy store (PostgreSQL checks its own).
    pub fn integrity_check(&self) -> Result<String> {
        match self.db.sqlite() {
            Some(conn) => Ok(conn.query_row("PRAGMA integrity_check", [], |r| r.get(0))?),
            None => Ok("ok".into()),
        }
    }

    /// Register (or refresh) a configured location of this host; returns its id.
    pub fn upsert_location(
        &self,
        name: &str,
        path: &str,
        kind: &str,
        now: DateTime<Utc>,
    ) -> Result<i64> {
        let ids = self.upsert(&[(name, path, kind)], now, false)?;
        ids.first()
            .copied()
            .ok_or_else(|| anyhow::anyhow!("the store returned no id for location {name}"))
    }

    /// [`Store::upsert_location`] for each `(name, path, kind)` of the host's whole
    /// config, in one statement per hundred (a round trip each on a shared store); their
    /// ids in the same order. The host's other locations are marked removed from its
    /// config (see [`Store::mark_removed_locations`]): on PostgreSQL in the first of
    /// those statements.
    pub fn upsert_locations(
        &self,
        locations: &[(&str, &str, &str)],
        now: DateTime<Utc>,
    ) -> Result<Vec<i64>> {
        self.upsert(locations, now, true)
    }

    fn upsert(
        &self,
        locations: &[(&str, &str, &str)],
        now: DateTime<Utc>,
        whole_config: bool,
    ) -> Result<Vec<i64>> {
        let at = now;
        let now = to_unix(now);
        let names: Vec<&str> = locations.iter().map(|(n, _, _)| *n).collect();
        // On PostgreSQL the marking rides on the first statement (rows apart from the
        // upserted ones: a location is either configured or not); with no location
        // configured it goes alone.
        let marked_in_statement =
            whole_config && self.backend() == sql::Backend::Postgres && !locations.is_empty();
        if whole_config && !marked_in_statement {
            self.mark_removed_locations(&names, at)?;
        }
        let configured = match marked_in_statement {
            true => pg_names(&names),
            false => String::new(),
        };
        let mut by_name: HashMap<String, i64> = HashMap::new();
        for (n, chunk) in locations.chunks(100).enumerate() {
            let mut args: Vec<&dyn sql::ToValue> = vec![&self.host, &now];
            let mark = marked_in_statement && n == 0;
            let mut rows = Vec::with_capacity(chunk.len());
            for (i, (name, path, kind)) in chunk.iter().enumerate() {
                args.extend([name as &dyn sql::ToValue, path, kind]);
                rows.push(format!(
                    "(?1, ?{}, ?{}, ?{}, ?2)",
                    i * 3 + 3,
                    i * 3 + 4,
                    i * 3 + 5
                ));
            }
            let gone = if mark {
                args.push(&configured);
                format!("WITH gone AS ({})\n", pg_mark_removed(args.len()))
            } else {
                String::new()
            };
            self.db.query_each(
                &format!(
                    "{gone}INSERT INTO locations (host, name, path, kind, created_at) VALUES {}
                     ON CONFLICT (host, name) DO UPDATE SET path = excluded.path, kind = excluded.kind, removed_at = NULL
                     RETURNING id, name, timestamp_settings",
                    rows.join(", ")
                ),
                &args,
                |r| {
                    let id: i64 = r.get(0)?;
                    by_name.insert(r.get(1)?, id);
                    self.memo.timestamp_settings
                        .borrow_mut()
                        .insert(id, r.get::<Option<String>>(2)?);
                    Ok(())
                },
            )?;
        }
        locations
            .iter()
            .map(|(name, _, _)| {
                by_name
                    .get(*name)
                    .copied()
                    .ok_or_else(|| anyhow::anyhow!("the store returned no id for location {name}"))
            })
            .collect()
    }

    /// Mark this host's locations that are not among `configured` as removed from its
    /// config, now (those configured again are unmarked by [`Store::upsert_locations`]).
    /// One statement, and it changes rows only when a location has left the config.
    fn mark_removed_locations(&self, configured: &[&str], now: DateTime<Utc>) -> Result<()> {
        let (sql, names) = match self.backend() {
            sql::Backend::Sqlite => (
                "UPDATE locations SET removed_at = ?2 WHERE host = ?1 AND removed_at IS NULL
                   AND name NOT IN (SELECT value FROM json_each(?3))"
                    .to_string(),
                serde_json::to_string(configured)?,
            ),
            sql::Backend::Postgres => (pg_mark_removed(3), pg_names(configured)),
        };
        self.db
            .execute(&sql, params![self.host, to_unix(now), names])?;
        Ok(())
    }

    /// Run `sql` for `ids`, [`IN_LIST`] of them a statement: `{ids}` in it becomes the
    /// chunk's placeholders, numbered after those of `fixed` (the parameters every
    /// statement takes first); each row goes to `f`. Nothing is sent for no ids. How
    /// the figures of many locations (or alerts) are read: one round trip for all of
    /// them on a shared store, not one each.
    pub(crate) fn query_each_in<I: sql::ToValue>(
        &self,
        sql: &str,
        fixed: &[&dyn sql::ToValue],
        ids: &[I],
        mut f: impl FnMut(&sql::Row<'_>) -> sql::SqlResult<()>,
    ) -> Result<()> {
        for_chunks_of(sql, fixed, ids, IN_LIST, |sql, args| {
            Ok(self.db.query_each(sql, args, &mut f)?)
        })
    }

    /// The ids of this host's locations named `names` that the store knows, by name.
    pub fn location_ids(&self, names: &[&str]) -> Result<HashMap<String, i64>> {
        let mut out = HashMap::new();
        self.query_each_in(
            "SELECT name, id FROM locations WHERE host = ?1 AND name IN ({ids})",
            &[&self.host],
            names,
            |r| {
                out.insert(r.get::<String>(0)?, r.get::<i64>(1)?);
                Ok(())
            },
        )?;
        Ok(out)
    }

    /// The id of one of this host's locations by name, if the store knows it.
    pub fn location_id(&self, name: &str) -> Result<Option<i64>> {
        Ok(self.location_ids(&[name])?.remove(name))
    }

    /// Record what the last scan learned about the location's filesystem. Kept until
    /// [`Store::write_pending`].
    pub fn record_location_scan(
        &self,
        location_id: i64,
        available: bool,
        space: Option<(u64, u64)>,
        now: DateTime<Utc>,
    ) -> Result<()> {
        self.memo
            .scanned
            .borrow_mut()
            .insert(location_id, from_unix(to_unix(now)));
        self.pending.scans.borrow_mut().insert(
            location_id,
            LocationScanState {
                last_scan_at: Some(now),
                available: Some(available),
                free_bytes: space.map(|s| s.0),
                total_bytes: space.map(|s| s.1),
            },
        );
        Ok(())
    }

    /// Write what was kept to be written together: the scan states and the problems
    /// found again since the last call, in one statement each per 200. Every read of
    /// what they change calls it first.
    pub fn write_pending(&self) -> Result<()> {
        self.write_refreshed_problems()?;
        self.write_gaps()?;
        let unwritten = std::mem::take(&mut *self.pending.scans.borrow_mut());
        let rows: Vec<[Option<i64>; 5]> = unwritten
            .into_iter()
            .map(|(id, s)| {
                [
                    Some(id),
                    s.last_scan_at.map(to_unix),
                    s.available.map(i64::from),
                    s.free_bytes.map(|v| v as i64),
                    s.total_bytes.map(|v| v as i64),
                ]
            })
            .collect();
        let settings: Vec<(i64, String)> = std::mem::take(&mut *self.pending.settings.borrow_mut())
            .into_iter()
            .collect();
        let settings: Vec<[&dyn sql::ToValue; 2]> =
            settings.iter().map(|(id, s)| [id as _, s as _]).collect();
        self.update_by_id(
            "locations",
            "timestamp_settings = v.column2",
            ["BIGINT", "TEXT"],
            &settings,
        )?;
        let rows: Vec<[&dyn sql::ToValue; 5]> = rows
            .iter()
            .map(|r| r.each_ref().map(|v| v as &dyn sql::ToValue))
            .collect();
        self.update_by_id(
            "locations",
            "last_scan_at = v.column2, available = v.column3, free_bytes = v.column4, total_bytes = v.column5",
            ["BIGINT"; 5],
            &rows,
        )
    }

    /// `UPDATE table SET set FROM (VALUES …) AS v WHERE table.id = v.column1` for `rows`
    /// (each the row's id, then the values `set` reads as `v.column2`…, of `types`): one
    /// statement per [`UPDATE_ROWS`] rows, where one per row would be a round trip each on a shared
    /// store.
    pub(crate) fn update_by_id<const N: usize>(
        &self,
        table: &str,
        set: &str,
        types: [&str; N],
        rows: &[[&dyn sql::ToValue; N]],
    ) -> Result<()> {
        self.update_by_id_where(table, set, "TRUE", types, rows)
    }

    /// `UPDATE table SET column = value WHERE id IN (ids)`, [`UPDATE_ROWS`] ids a
    /// statement.
    pub(crate) fn set_for_ids(
        &self,
        table: &str,
        column: &str,
        value: i64,
        ids: &[i64],
    ) -> Result<()> {
        let sql = format!("UPDATE {table} SET {column} = ?1 WHERE id IN ({{ids}})");
        for_chunks_of(&sql, &[&value], ids, UPDATE_ROWS, |sql, args| {
            self.db.execute(sql, args)?;
            Ok(())
        })
    }

    /// [`Store::update_by_id`] of the rows that also meet `condition`.
    pub(crate) fn update_by_id_where<const N: usize>(
        &self,
        table: &str,
        set: &str,
        condition: &str,
        types: [&str; N],
        rows: &[[&dyn sql::ToValue; N]],
    ) -> Result<()> {
        for chunk in rows.chunks(UPDATE_ROWS) {
            let args: Vec<&dyn sql::ToValue> = chunk.iter().flatten().copied().collect();
            self.db.execute(
                &format!(
                    "UPDATE {table} SET {set} FROM (VALUES {}) AS v WHERE {table}.id = v.column1 AND {condition}",
                    report::typed_rows(chunk.len(), &types, 1)
                ),
                &args,
            )?;
        }
        Ok(())
    }

    /// The last scan of several locations (when, whether the path was there, its disk),
    /// in one statement; an unknown location is absent.
    pub fn location_scan_states(
        &self,
        location_ids: &[i64],
    ) -> Result<HashMap<i64, LocationScanState>> {
        self.write_pending()?;
        let mut out = HashMap::new();
        self.query_each_in(
            "SELECT id, last_scan_at, available, free_bytes, total_bytes FROM locations WHERE id IN ({ids})",
            &[],
            location_ids,
            |r| {
                out.insert(
                    r.get::<i64>(0)?,
                    LocationScanState {
                        last_scan_at: r.get::<Option<i64>>(1)?.map(from_unix),
                        available: r.get::<Option<bool>>(2)?,
                        free_bytes: r.get::<Option<i64>>(3)?.map(|v| v as u64),
                        total_bytes: r.get::<Option<i64>>(4)?.map(|v| v as u64),
                    },
                );
                Ok(())
            },
        )?;
        Ok(out)
    }
}

#[derive(Debug, Clone, Default)]
pub struct LocationScanState {
    pub last_scan_at: Option<DateTime<Utc>>,
    pub available: Option<bool>,
    pub free_bytes: Option<u64>,
    pub total_bytes: Option<u64>,
}

/// Files the program creates that may hold history or secrets are private to the owner.
pub fn restrict_permissions(path: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600));
    }
}

/// A fresh store for a unit test, and what keeps it alive: a SQLite file in a temp dir,
/// or with `BM_TEST_STORE=postgres` a new database `bm_test_<random>` on
/// `BM_TEST_PG_URL`, dropped again when the guard goes.
#[cfg(test)]
pub(crate) struct TestDb {
    _dir: tempfile::TempDir,
    pg: Option<(PgTarget, String)>,
    /// The test database itself, for [`TestDb::reopen`].
    target: Option<PgTarget>,
}

#[cfg(test)]
impl TestDb {
    /// A second connection to the same store (as the next run would open it).
    pub(crate) fn reopen(&self) -> Store {
        self.reopen_as(&crate::config::host_name())
    }

    /// [`TestDb::reopen`] as another host.
    pub(crate) fn reopen_as(&self, host: &str) -> Store {
        match &self.target {
            None => Store::open_as(&self._dir.path().join("s.db"), host).expect("store"),
            Some(target) => Store::open_postgres(target, &self._dir.path().join("anchor"), host)
                .expect("postgres store"),
        }
    }
}

#[cfg(test)]
impl Drop for TestDb {
    fn drop(&mut self) {
        if let Some((admin, name)) = &self.pg
            && let Ok(mut c) = admin.connect()
        {
            let _ = c.batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"));
        }
    }
}

/// The store the unit tests run on: SQLite, or PostgreSQL when `BM_TEST_STORE=postgres`.
#[cfg(test)]
pub(crate) fn test_store() -> (TestDb, Store) {
    let dir = tempfile::tempdir().expect("temp dir");
    if std::env::var("BM_TEST_STORE").as_deref() != Ok("postgres") {
        let store = Store::open(&dir.path().join("s.db")).expect("store");
        return (
            TestDb {
                _dir: dir,
                pg: None,
                target: None,
            },
            store,
        );
    }
    let admin_url =
        std::env::var("BM_TEST_PG_URL").expect("BM_TEST_STORE=postgres needs BM_TEST_PG_URL");
    let admin = PgTarget::parse(&admin_url).expect("BM_TEST_PG_URL");
    let name = format!(
        "bm_test_{:08x}",
        pg::fnv1a(
            format!(
                "{:?}{:?}",
                std::time::SystemTime::now(),
                std::thread::current().id()
            )
            .as_bytes()
        )
    );
    admin
        .connect()
        .expect("connect to BM_TEST_PG_URL")
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .expect("create test database");
    let mut url = url::Url::parse(&admin_url).expect("BM_TEST_PG_URL");
    url.set_path(&name);
    let target = PgTarget::parse(url.as_str()).expect("test database URL");
    let anchor = dir.path().join("anchor");
    let guard = TestDb {
        _dir: dir,
        pg: Some((admin, name)),
        target: Some(target.clone()),
    };
    let store = Store::open_postgres(&target, &anchor, &crate::config::host_name())
        .expect("postgres store");
    (guard, store)
}

/// A store with one location `name` of `kind`; returns the guard (keep it alive), the
/// store and the location's id.
#[cfg(test)]
pub(crate) fn store_with_location(name: &str, kind: &str) -> (TestDb, Store, i64) {
    let (guard, store) = test_store();
    let loc = store
        .upsert_location(name, &format!("/{name}"), kind, from_unix(0))
        .expect("location");
    (guard, store, loc)
}

/// A test store with two locations of `kind`, "a" and "b": (its guard, the store, a's
/// id, b's id).
#[cfg(test)]
pub(crate) fn store_with_two_locations(kind: &str) -> (TestDb, Store, i64, i64) {
    let (db, store, a) = store_with_location("a", kind);
    let b = store
        .upsert_location("b", "/b", kind, from_unix(0))
        .expect("a second location");
    (db, store, a, b)
}

/// A store with one location `a` holding one settled backup recorded at t = 10 s;
/// returns the guard (keep it alive), the store, the location and backup ids.
#[cfg(test)]
pub(crate) fn store_with_one_backup(
    path: &str,
    size: u64,
    mtime_ns: i64,
) -> (TestDb, Store, i64, i64) {
    let (dir, store, loc) = store_with_location("a", "generic");
    let file = crate::scan::FoundFile {
        path: path.into(),
        size,
        mtime_ns,
        ts: from_unix(5),
        ts_source: crate::timestamp::TimestampSource::Mtime,
        settled: true,
    };
    store.sync_scan(loc, &[file], from_unix(10)).expect("scan");
    let backup = store.present_backups(loc).expect("backups")[0].id;
    (dir, store, loc, backup)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The tables whose rows runs rewrite leave room on each page on PostgreSQL, so that
    /// a refresh is written in place (no new entry in each index); SQLite has no such
    /// setting and its schema is the same on every page.
    #[test]
    fn rewritten_tables_leave_room_on_their_pages() {
        let (_db, store) = test_store();
        let tables = ["alerts", "backups", "locations", "problems"];
        let roomy: Vec<String> = match store.backend() {
            sql::Backend::Postgres => store
                .db
                .query_map(
                    "SELECT relname FROM pg_class WHERE relkind = 'r'
                       AND 'fillfactor=70' = ANY(reloptions) ORDER BY relname",
                    &[],
                    |r| r.get(0),
                )
                .unwrap(),
            sql::Backend::Sqlite => {
                let count: i64 = store
                    .db
                    .query_row(
                        "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table'
                           AND name IN ('alerts', 'backups', 'locations', 'problems')",
                        &[],
                    )
                    .unwrap()
                    .get(0)
                    .unwrap();
                assert_eq!(count, 4, "the tables exist");
                tables.iter().map(|t| t.to_string()).collect()
            }
        };
        assert_eq!(roomy, tables);
    }

    #[test]
    fn a_run_that_starts_holds_its_hosts_lock_and_is_recorded() {
        // On PostgreSQL too with BM_TEST_STORE=postgres: there the lock is the session's,
        // and the session's commits no longer wait for the server's disk.
        let (db, store) = test_store();
        let t = from_unix(100);
        let run = store
            .lock_and_start_run(&[crate::problem::Operation::Monitor], t)
            .unwrap();
        let row = store
            .db
            .query_row(
                "SELECT host, operations, started_at, finished_at FROM runs WHERE id = ?1",
                sql::params![run],
            )
            .unwrap();
        assert_eq!(row.get::<String>(0).unwrap(), store.host());
        assert_eq!(row.get::<String>(1).unwrap(), "monitor");
        assert_eq!(row.get::<i64>(2).unwrap(), 100);
        assert_eq!(row.get::<Option<i64>>(3).unwrap(), None);
        if store.backend() == sql::Backend::Postgres {
            let setting = |s: &Store| -> String {
                s.db.query_row(
                    "SELECT current_setting('synchronous_commit')",
                    sql::params![],
                )
                .unwrap()
                .get(0)
                .unwrap()
            };
            assert_eq!(setting(&store), "off");
            // The same host from another session is refused, naming the holder, and no
            // run is recorded for it.
            let other = db.reopen_as(store.host());
            let err = other
                .lock_and_start_run(&[crate::problem::Operation::Monitor], t)
                .unwrap_err();
            assert!(err.to_string().contains("holds this host's lock"), "{err}");
            assert_eq!(
                other
                    .db
                    .query_row("SELECT COUNT(*) FROM runs", sql::params![])
                    .unwrap()
                    .get::<i64>(0)
                    .unwrap(),
                1
            );
        }
    }

    #[test]
    fn migrations_apply_once_and_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/store.db");
        let store = Store::open(&path).unwrap();
        assert_eq!(
            store.schema_version().unwrap(),
            schema::MIGRATIONS.len() as i64
        );
        let id = store
            .upsert_location("db", "/b", "database", Utc::now())
            .unwrap();
        drop(store);
        let store = Store::open(&path).unwrap();
        assert_eq!(store.location_id("db").unwrap(), Some(id));
        assert_eq!(store.integrity_check().unwrap(), "ok");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
        }
    }

    #[test]
    fn a_store_from_before_hosts_becomes_the_migrating_hosts() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("old.db");
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch("PRAGMA foreign_keys=ON").unwrap();
        for sql in &schema::MIGRATIONS[..4] {
            conn.execute_batch(sql).unwrap();
        }
        conn.execute_batch(
            "INSERT INTO locations (id, name, path, kind, created_at) VALUES (7, 'db', '/db', 'database', 1);
             INSERT INTO backups (location_id, path, size, mtime_ns, ts, ts_source, seen_size, seen_mtime_ns, first_seen, last_seen)
               VALUES (7, 'x.sql', 1, 1, 1, 'mtime', 1, 1, 1, 1);
             INSERT INTO problems (key, kind, severity, operation, location_id, location, message, first_seen, last_seen)
               VALUES ('k', 'no_backups', 'critical', 'monitor', 7, 'db', 'm', 1, 1);
             PRAGMA user_version = 4;",
        )
        .unwrap();
        drop(conn);
        let store = Store::open_as(&path, "web1").unwrap();
        assert_eq!(store.location_id("db").unwrap(), Some(7), "ids are kept");
        assert_eq!(
            store.present_count(7).unwrap(),
            1,
            "backups still refer to it"
        );
        assert_eq!(store.open_problems(None, None).unwrap()[0].host, "web1");
        assert_eq!(store.integrity_check().unwrap(), "ok");
        // Another host with a location of the same name gets a location of its own.
        drop(store);
        let other = Store::open_as(&path, "web2").unwrap();
        assert_eq!(other.location_id("db").unwrap(), None);
        let id = other
            .upsert_location("db", "/db", "database", Utc::now())
            .unwrap();
        assert_ne!(id, 7);
        assert!(other.open_problems(None, None).unwrap().is_empty());
    }

    #[test]
    fn a_store_that_lost_the_index_of_verifications_by_time_gets_both_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("dev.db");
        let conn = Connection::open(&path).unwrap();
        for sql in &schema::MIGRATIONS[..8] {
            conn.execute_batch(sql).unwrap();
        }
        // What a development build's migration 9 left.
        conn.execute_batch("DROP INDEX verifications_by_at; PRAGMA user_version = 9;")
            .unwrap();
        drop(conn);
        let store = Store::open_as(&path, "web1").unwrap();
        let indexes: Vec<String> = store
            .db
            .query_map(
                "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'verifications' ORDER BY name",
                params![],
                |r| r.get(0),
            )
            .unwrap();
        assert!(
            indexes.contains(&"verifications_by_at".to_string())
                && indexes.contains(&"verifications_unpassed".to_string()),
            "{indexes:?}"
        );
    }

    #[test]
    fn status_on_a_store_from_before_hosts_upgrades_it_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("old.db");
        let conn = Connection::open(&path).unwrap();
        for sql in &schema::MIGRATIONS[..4] {
            conn.execute_batch(sql).unwrap();
        }
        conn.execute_batch(
            "INSERT INTO locations (name, path, kind, created_at) VALUES ('db', '/db', 'database', 1);
             PRAGMA user_version = 4;",
        )
        .unwrap();
        drop(conn);
        let store = Store::open_read_only_as(&path, "web1").unwrap().unwrap();
        assert!(store.location_id("db").unwrap().is_some());
        assert_eq!(
            store.schema_version().unwrap(),
            schema::MIGRATIONS.len() as i64
        );
    }

    #[test]
    fn another_file_is_not_a_store_and_is_not_called_damaged() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store.db");
        std::fs::write(&path, vec![b'x'; 8192]).unwrap();
        let err = Store::open(&path).err().unwrap().to_string();
        assert!(
            err.contains("is not a backup-monitor database") && !err.contains("damaged"),
            "{err}"
        );
    }

    #[test]
    fn a_sound_store_failing_for_another_reason_is_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store.db");
        drop(Store::open(&path).unwrap());
        let e = StoreError::from_fault(&path, Fault::Io, "disk I/O error".into()).to_string();
        assert!(
            e.contains("I/O error on the filesystem holding the store")
                && e.contains("finds nothing wrong")
                && !e.contains("aside"),
            "{e}"
        );
    }

    #[test]
    fn newer_schema_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store.db");
        drop(Store::open(&path).unwrap());
        let conn = Connection::open(&path).unwrap();
        conn.pragma_update(None, "user_version", 999).unwrap();
        drop(conn);
        let err = Store::open(&path).err().unwrap().to_string();
        assert!(err.contains("newer"), "{err}");
    }

    #[test]
    fn a_store_whose_layout_differs_from_its_schema_number_is_named_not_used() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store.db");
        drop(Store::open(&path).unwrap());
        // A pre-release build's store: same schema number, a column short.
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch("ALTER TABLE restore_tests DROP COLUMN settings")
            .unwrap();
        drop(conn);
        for err in [
            Store::open(&path).err().unwrap().to_string(),
            Store::open_read_only(&path).err().unwrap().to_string(),
        ] {
            assert!(
                err.contains("table restore_tests has no column settings")
                    && err.contains("Move it aside"),
                "{err}"
            );
        }
        // Nothing was changed on the way: the column is still missing, the number kept.
        let conn = Connection::open(&path).unwrap();
        let version: i64 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(version, schema::MIGRATIONS.len() as i64);
    }
}
