//! SQLite database files: copied into the sandbox (never opened in place — a backup is
//! evidence and must not be touched), then `PRAGMA integrity_check` and the table list.
//! A file SQLite does not accept as a database, or one shorter than its header declares
//! (truncated), is `archive_corrupt`; a database whose integrity check fails is
//! `restore_failed`. The tables are the restored
//! "entries": `expect` globs match table names and `min_files` counts tables.

use super::sandbox::Sandbox;
use super::{Notes, RestoreError};
use rusqlite::{Connection, ErrorCode, OpenFlags};
use std::io::Read;
use std::path::Path;

/// The first rows of `integrity_check` shown in a failure's detail.
const SHOWN_ERRORS: usize = 3;

pub fn check(sandbox: &Sandbox, stream: &mut dyn Read) -> Result<Notes, RestoreError> {
    let copy = sandbox.scratch_path("database.sqlite");
    sandbox.write_scratch(&copy, stream)?;
    check_copy(sandbox, &copy)
}

/// Check a database file that is already inside the sandbox, and list its tables.
pub fn check_copy(sandbox: &Sandbox, path: &Path) -> Result<Notes, RestoreError> {
    check_length(path)?;
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(open_error)?;
    let problems = integrity_problems(&conn).map_err(open_error)?;
    if !problems.is_empty() {
        return Err(RestoreError::Failed(format!(
            "PRAGMA integrity_check: {}",
            problems.join("; ")
        )));
    }
    let tables = table_names(&conn).map_err(open_error)?;
    for t in &tables {
        sandbox.tally.note(t, true);
    }
    let mut notes = Notes::default();
    notes.push(format!("integrity_check ok, {} tables", tables.len()));
    Ok(notes)
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
