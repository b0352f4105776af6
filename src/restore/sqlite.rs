//! SQLite database files: copied into the sandbox (never opened in place — a backup is
//! evidence and must not be touched), with the `-wal` file beside the backup if there
//! is one (its committed transactions are part of the database), then
//! `PRAGMA integrity_check` and the table list.
//! A file SQLite does not accept as a database, or one shorter than its header declares
//! (truncated), is `archive_corrupt`; a database whose integrity check fails is
//! `restore_failed`. The tables are the restored
//! "entries": `expect` globs match table names and `min_files` counts tables.
//!
//! Every connection opened on backup content is [`Bounded`]: it stops at the test's
//! deadline however expensive one statement is (a CHECK constraint or index expression
//! that `integrity_check` evaluates can be made to run for hours), and SQLite's heap and
//! the length of one value are capped, so a hostile schema or dump cannot take the
//! host's memory.

use super::sandbox::Sandbox;
use super::{Notes, RestoreError};
use rusqlite::{Connection, ErrorCode, OpenFlags, ffi};
use std::cell::Cell;
use std::ffi::{c_int, c_void};
use std::io::Read;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::thread::JoinHandle;
use std::time::Instant;

/// The first rows of `integrity_check` shown in a failure's detail.
const SHOWN_ERRORS: usize = 3;

/// VM instructions between two calls of a bounded connection's progress handler (which
/// reads the clock and, for a replay, counts the work done).
pub const PROGRESS_OPS: c_int = 1_000;
/// SQLite's heap while backup content is open: `max_bytes`, but at least this…
const HEAP_MIN: u64 = 64 << 20;
/// …and at most this (a database or dump never needs more to be checked; a hostile one
/// asks for gigabytes).
const HEAP_MAX: u64 = 512 << 20;
/// The longest string or blob SQLite builds for a database file (its own default).
const FILE_VALUE_MAX: u64 = 1_000_000_000;
/// The shortest value limit (below it, ordinary rows would fail).
const VALUE_MIN: u64 = 1 << 20;

/// Test a SQLite database read from `stream`. `beside` is the backup's own path when it
/// is a file on disk: its `-wal` file, if there is one, is copied beside the copy.
pub fn check(
    sandbox: &Sandbox,
    stream: &mut dyn Read,
    beside: Option<&Path>,
) -> Result<Notes, RestoreError> {
    let copy = sandbox.scratch_path("database.sqlite");
    sandbox.write_scratch(&copy, stream)?;
    let wal = match beside {
        Some(backup) => copy_wal(sandbox, backup, &copy)?,
        None => false,
    };
    let mut notes = check_copy(sandbox, &copy)?;
    if wal {
        notes.push("with the committed transactions of its -wal file".into());
    }
    Ok(notes)
}

/// Copy `<backup>-wal` (if it exists) to `<copy>-wal`, so that SQLite reads the
/// transactions committed to it; a `-shm` file is not needed (SQLite rebuilds it). True
/// when there was one.
fn copy_wal(sandbox: &Sandbox, backup: &Path, copy: &Path) -> Result<bool, RestoreError> {
    let mut name = backup.as_os_str().to_owned();
    name.push("-wal");
    let wal = std::path::PathBuf::from(name);
    match std::fs::symlink_metadata(&wal) {
        Ok(m) if m.is_file() => {}
        _ => return Ok(false),
    }
    let mut file = super::open_backup(&wal, None)?;
    let mut target = copy.as_os_str().to_owned();
    target.push("-wal");
    sandbox.write_scratch(Path::new(&target), &mut file)?;
    Ok(true)
}

/// Check a database file that is already inside the sandbox, and list its tables.
pub fn check_copy(sandbox: &Sandbox, path: &Path) -> Result<Notes, RestoreError> {
    check_length(path)?;
    let conn = Bounded::open(
        sandbox,
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        sandbox.limit().clamp(VALUE_MIN, FILE_VALUE_MAX),
    )
    .map_err(open_error)?;
    let failed = |e| conn.error(sandbox, e).unwrap_or_else(open_error);
    let problems = integrity_problems(&conn).map_err(failed)?;
    if !problems.is_empty() {
        return Err(RestoreError::Failed(format!(
            "PRAGMA integrity_check: {}",
            problems.join("; ")
        )));
    }
    let tables = table_names(&conn).map_err(failed)?;
    for t in &tables {
        sandbox.tally.note(t, true);
    }
    sandbox
        .tally
        .add_rows(row_count(&conn, &tables).map_err(failed)?);
    let mut notes = Notes::default();
    notes.push(format!("integrity_check ok, {} tables", tables.len()));
    Ok(notes)
}

/// A connection on backup content that cannot run past the test's deadline nor take
/// more memory than its share: a progress handler reads the clock every
/// [`PROGRESS_OPS`] VM instructions, a watchdog thread interrupts a statement that is
/// still running at the deadline (between two VM instructions, a single function call
/// can take long), SQLite's hard heap limit holds while it is open, and no string or
/// blob may be longer than `max_value` bytes.
pub struct Bounded {
    conn: Connection,
    work: Box<Work>,
    watchdog: Option<(mpsc::Sender<()>, JoinHandle<()>)>,
    _heap: HeapLimit,
    heap: u64,
    max_value: u64,
}

/// What the progress handler reads and counts.
struct Work {
    deadline: Instant,
    timed_out: Arc<AtomicBool>,
    /// VM instructions run (in steps of [`PROGRESS_OPS`]) and allowed (None: no count).
    ops: Cell<u64>,
    allowed: Cell<Option<u64>>,
}

impl Work {
    fn out_of_time(&self) -> bool {
        if self.timed_out.load(Ordering::Relaxed) {
            return true;
        }
        if Instant::now() >= self.deadline {
            self.timed_out.store(true, Ordering::Relaxed);
            return true;
        }
        false
    }

    fn spent(&self) -> bool {
        self.allowed.get().is_some_and(|a| self.ops.get() > a)
    }
}

impl Bounded {
    pub fn open(
        sandbox: &Sandbox,
        path: &Path,
        flags: OpenFlags,
        max_value: u64,
    ) -> rusqlite::Result<Bounded> {
        let heap = sandbox.limit().clamp(HEAP_MIN, HEAP_MAX);
        let held = HeapLimit::acquire(heap);
        let conn = Connection::open_with_flags(path, flags)?;
        let timed_out = Arc::new(AtomicBool::new(false));
        let work = Box::new(Work {
            deadline: sandbox.deadline(),
            timed_out: timed_out.clone(),
            ops: Cell::new(0),
            allowed: Cell::new(None),
        });
        let value = c_int::try_from(max_value).unwrap_or(c_int::MAX);
        // SAFETY: the handle is open; `work` is boxed (its address is stable) and lives
        // as long as the connection: Drop unregisters the handler before it is freed.
        unsafe {
            let db = conn.handle();
            ffi::sqlite3_limit(db, ffi::SQLITE_LIMIT_LENGTH, value);
            let arg = &*work as *const Work as *mut c_void;
            ffi::sqlite3_progress_handler(db, PROGRESS_OPS, Some(progress), arg);
        }
        let watchdog = watchdog(&conn, sandbox.deadline(), timed_out);
        Ok(Bounded {
            conn,
            work,
            watchdog,
            _heap: held,
            heap,
            max_value,
        })
    }

    /// Count VM instructions from now on and allow `more` of them (added to what was
    /// allowed before); past the allowance, statements are interrupted.
    pub fn allow_ops(&self, more: u64) {
        let now = self.work.allowed.get().unwrap_or(0);
        self.work.allowed.set(Some(now.saturating_add(more)));
    }

    /// Stop counting VM instructions (the clock still bounds the connection).
    pub fn stop_counting(&self) {
        self.work.allowed.set(None);
    }

    /// VM instructions run so far.
    pub fn ops(&self) -> u64 {
        self.work.ops.get()
    }

    /// Whether the instruction allowance is spent.
    pub fn ops_spent(&self) -> bool {
        self.work.spent()
    }

    /// The test's own error for what SQLite reported, when a bound caused it: the time
    /// limit, the heap limit or a value longer than allowed (`restore_limit_exceeded`);
    /// the scratch file reaching `max_bytes`. Any other error is given back.
    pub fn error(
        &self,
        sandbox: &Sandbox,
        e: rusqlite::Error,
    ) -> Result<RestoreError, rusqlite::Error> {
        match e.sqlite_error_code() {
            Some(ErrorCode::OperationInterrupted) if self.work.out_of_time() => {
                Ok(sandbox.time_limit())
            }
            Some(ErrorCode::OutOfMemory) => Ok(RestoreError::OverLimit(format!(
                "restoring stopped: SQLite needed more than {} of memory, the most a restore test gives it (restore.max_bytes, at most {})",
                bytesize::ByteSize(self.heap),
                bytesize::ByteSize(HEAP_MAX)
            ))),
            Some(ErrorCode::TooBig) => Ok(RestoreError::OverLimit(format!(
                "restoring stopped: a string or blob longer than {}, the most one value may take in a restore test (bounded by restore.max_bytes)",
                bytesize::ByteSize(self.max_value)
            ))),
            Some(ErrorCode::DiskFull) => Ok(RestoreError::Limit {
                limit: sandbox.limit(),
            }),
            _ => Err(e),
        }
    }
}

impl std::ops::Deref for Bounded {
    type Target = Connection;
    fn deref(&self) -> &Connection {
        &self.conn
    }
}

impl Drop for Bounded {
    fn drop(&mut self) {
        if let Some((stop, thread)) = self.watchdog.take() {
            drop(stop);
            let _ = thread.join();
        }
        // SAFETY: the handle is still open; after this no callback sees `work`.
        unsafe {
            ffi::sqlite3_progress_handler(self.conn.handle(), 0, None, std::ptr::null_mut());
        }
    }
}

/// A thread that interrupts whatever `conn` runs at `deadline`, unless stopped first
/// (its sender dropped).
fn watchdog(
    conn: &Connection,
    deadline: Instant,
    timed_out: Arc<AtomicBool>,
) -> Option<(mpsc::Sender<()>, JoinHandle<()>)> {
    let handle = conn.get_interrupt_handle();
    let (stop, stopped) = mpsc::channel::<()>();
    let thread = std::thread::Builder::new()
        .name("sqlite-deadline".into())
        .spawn(move || {
            let wait = deadline.saturating_duration_since(Instant::now());
            if let Err(mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(wait) {
                timed_out.store(true, Ordering::Relaxed);
                handle.interrupt();
            }
        })
        .ok()?;
    Some((stop, thread))
}

unsafe extern "C" fn progress(arg: *mut c_void) -> c_int {
    // SAFETY: `arg` is the boxed `Work` of a `Bounded`, alive while it is registered.
    let work = unsafe { &*(arg as *const Work) };
    work.ops
        .set(work.ops.get().saturating_add(PROGRESS_OPS as u64));
    c_int::from(work.spent() || work.out_of_time())
}

/// SQLite's hard heap limit (process-wide) while backup content is open: what SQLite
/// already uses (the store) plus `budget`. Set by the first holder, restored by the
/// last; an allocation past it fails with SQLITE_NOMEM.
struct HeapLimit;

static HEAP: Mutex<(usize, i64)> = Mutex::new((0, 0));

impl HeapLimit {
    fn acquire(budget: u64) -> HeapLimit {
        let mut held = HEAP.lock().unwrap_or_else(|e| e.into_inner());
        if held.0 == 0 {
            // SAFETY: plain calls into SQLite's allocator bookkeeping.
            held.1 = unsafe {
                let used = ffi::sqlite3_memory_used();
                ffi::sqlite3_hard_heap_limit64(used.saturating_add(budget as i64))
            };
        }
        held.0 += 1;
        HeapLimit
    }
}

impl Drop for HeapLimit {
    fn drop(&mut self) {
        let mut held = HEAP.lock().unwrap_or_else(|e| e.into_inner());
        held.0 -= 1;
        if held.0 == 0 {
            // SAFETY: restores the limit there was before the first holder.
            unsafe { ffi::sqlite3_hard_heap_limit64(held.1) };
        }
    }
}

/// Rows of `integrity_check` other than "ok" (the first few).
pub fn integrity_problems(conn: &Connection) -> rusqlite::Result<Vec<String>> {
    let mut stmt = conn.prepare("PRAGMA integrity_check")?;
    let rows = stmt.query_map([], |r| r.get::<_, String>(0))?;
    let mut problems = Vec::new();
    for row in rows {
        let row = row?;
        if row != "ok" && problems.len() < SHOWN_ERRORS {
            problems.push(row);
        }
    }
    Ok(problems)
}

/// User tables of a database (SQLite's own `sqlite_*` tables left out).
pub fn table_names(conn: &Connection) -> rusqlite::Result<Vec<String>> {
    let mut stmt = conn.prepare(
        "SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY name",
    )?;
    let rows = stmt.query_map([], |r| r.get::<_, String>(0))?;
    rows.collect()
}

/// The rows of all `tables` together: what a restore produced, compared with what
/// restores usually produce.
pub fn row_count(conn: &Connection, tables: &[String]) -> rusqlite::Result<u64> {
    let mut total = 0u64;
    for t in tables {
        let quoted = t.replace('"', "\"\"");
        let n: i64 = conn.query_row(&format!("SELECT count(*) FROM \"{quoted}\""), [], |r| {
            r.get(0)
        })?;
        total = total.saturating_add(n.max(0) as u64);
    }
    Ok(total)
}

/// A database file is whole pages, as many as its header declares (when that count is
/// valid: "version-valid-for" equals the change counter). A shorter file was cut short —
/// `archive_corrupt`, not a database that fails its integrity check (SQLite reads the
/// missing pages as zeros and reports them "malformed").
fn check_length(path: &Path) -> Result<(), RestoreError> {
    let read = |e| RestoreError::read("the SQLite database", e);
    let mut file = std::fs::File::open(path).map_err(read)?;
    let len = file.metadata().map_err(read)?.len();
    let mut header = [0u8; 100];
    if file.read_exact(&mut header).is_err() {
        return Err(RestoreError::Corrupt(format!(
            "the SQLite database is truncated: {len} bytes, less than its 100-byte header"
        )));
    }
    let be32 = |at: usize| {
        u32::from_be_bytes([header[at], header[at + 1], header[at + 2], header[at + 3]])
    };
    let page_size = match u16::from_be_bytes([header[16], header[17]]) {
        1 => 65_536,
        n => u64::from(n),
    };
    if !page_size.is_power_of_two() || !(512..=65_536).contains(&page_size) {
        return Ok(()); // SQLite itself rejects the header ("not a database")
    }
    let pages = u64::from(be32(28));
    let declared = pages * page_size;
    if pages > 0 && be32(92) == be32(24) && len < declared {
        return Err(RestoreError::Corrupt(format!(
            "the SQLite database is truncated: its header declares {pages} pages of {page_size} bytes ({declared} bytes), the file holds {len}"
        )));
    }
    if len % page_size != 0 {
        return Err(RestoreError::Corrupt(format!(
            "the SQLite database is truncated: {len} bytes is not a whole number of its {page_size}-byte pages"
        )));
    }
    Ok(())
}

fn open_error(e: rusqlite::Error) -> RestoreError {
    match e.sqlite_error_code() {
        Some(ErrorCode::NotADatabase) => {
            RestoreError::Corrupt(format!("not a SQLite database: {e}"))
        }
        _ => RestoreError::Failed(format!("the database cannot be read: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn sandbox(dir: &Path, timeout: Duration) -> Sandbox {
        let tally = crate::restore::Tally::new(&[]).unwrap();
        Sandbox::create(dir, 1 << 20, tally)
            .unwrap()
            .with_timeout(timeout)
    }

    fn heap_limit() -> i64 {
        // SAFETY: a negative argument only reads the limit.
        unsafe { ffi::sqlite3_hard_heap_limit64(-1) }
    }

    #[test]
    fn heap_and_value_bounds_hold_while_open_and_are_lifted_after() {
        let dir = tempfile::tempdir().unwrap();
        let sb = sandbox(dir.path(), Duration::from_secs(60));
        {
            let conn = Bounded::open(
                &sb,
                &dir.path().join("x.sqlite"),
                OpenFlags::default(),
                1 << 20,
            )
            .unwrap();
            let limit = heap_limit();
            assert!(limit > 0, "a heap limit is set");
            // SAFETY: reads SQLite's allocator bookkeeping.
            let used = unsafe { ffi::sqlite3_memory_used() };
            assert!(limit <= used + HEAP_MAX as i64, "{limit}");
            let e = conn
                .query_row("SELECT length(zeroblob(2000000))", [], |r| {
                    r.get::<_, i64>(0)
                })
                .unwrap_err();
            match conn.error(&sb, e) {
                Ok(RestoreError::OverLimit(why)) => assert!(why.contains("1.0 MiB"), "{why}"),
                other => panic!("{other:?}"),
            }
        }
        let held = HEAP.lock().unwrap();
        if held.0 == 0 {
            assert_eq!(
                heap_limit(),
                0,
                "the limit is lifted with the last connection"
            );
        }
    }

    #[test]
    fn one_expensive_statement_stops_at_the_deadline() {
        let dir = tempfile::tempdir().unwrap();
        let sb = sandbox(dir.path(), Duration::from_secs(1));
        let conn = Bounded::open(
            &sb,
            &dir.path().join("x.sqlite"),
            OpenFlags::default(),
            1 << 30,
        )
        .unwrap();
        let started = Instant::now();
        let e = conn
            .query_row(
                "SELECT max(length(hex(zeroblob(10000000 + (x % 2))))) FROM \
                 (WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c LIMIT 100000) SELECT x FROM c)",
                [],
                |r| r.get::<_, i64>(0),
            )
            .unwrap_err();
        assert!(matches!(
            conn.error(&sb, e),
            Ok(RestoreError::TimeLimit { .. })
        ));
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{:?}",
            started.elapsed()
        );
    }
}
