//! SQLite database files: copied into the sandbox (never opened in place — a backup is
//! evidence and must not be touched), then `PRAGMA integrity_check` and the table list.
//! A file SQLite does not accept as a database is `archive_corrupt`; a database whose
//! integrity check fails is `restore_failed` (SPEC 7). The tables are the restored
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

fn open_error(e: rusqlite::Error) -> RestoreError {
    match e.sqlite_error_code() {
        Some(ErrorCode::NotADatabase) => {
            RestoreError::Corrupt(format!("not a SQLite database: {e}"))
        }
        _ => RestoreError::Failed(format!("the database cannot be read: {e}")),
    }
}
