//! SQL dumps, plain or decompressed on the fly, read line by line in constant memory.
//!
//! - `pg_dump` scripts pass on their completion footer (`-- PostgreSQL database dump
//!   complete`); with `restore.postgres_url` they are also replayed into a scratch
//!   database with `psql` (stopping at the first error; ownership and privilege
//!   statements are left out, like `pg_restore --no-owner --no-privileges`).
//! - `mysqldump` scripts pass on `-- Dump completed`.
//! - SQLite `.dump` scripts are replayed statement by statement into a scratch SQLite
//!   database in the sandbox, which must end with `COMMIT;` and pass `integrity_check`.
//!
//! Tables (`CREATE TABLE` statements, or those of the replayed database) are the
//! restored entries that `expect` and `min_files` judge.

use super::detect::Dialect;
use super::postgres::{self, ScratchDb};
use super::sandbox::Sandbox;
use super::{Notes, RestoreError, sqlite};
use std::cell::Cell;
use std::collections::VecDeque;
use std::ffi::{CStr, CString, c_char, c_int, c_void};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::process::Child;

/// Lines longer than this are handled in pieces (memory stays bounded).
const MAX_LINE: u64 = 1 << 20;
/// A single SQLite statement may not exceed this.
const MAX_STATEMENT: usize = 64 << 20;
/// How many trailing non-blank lines are kept to look for the footer.
const TAIL_LINES: usize = 8;
/// How much of each line is kept for the footer and `CREATE TABLE` checks.
const PREFIX: usize = 256;

/// VM instructions between two checks of a SQLite replay's work budget.
const PROGRESS_OPS: c_int = 10_000;
/// Work a SQLite replay may do: this many VM instructions, plus `OPS_PER_BYTE` per byte
/// of script read. Real dumps need a few per byte (inserts, index builds); a hostile
/// script that never ends (`WITH RECURSIVE` without a limit) is stopped instead of
/// hanging the run.
const BASE_OPS: u64 = 100_000_000;
const OPS_PER_BYTE: u64 = 1_000;
/// Pragmas a `sqlite3 .dump` script writes; any other is ignored during a replay.
const DUMP_PRAGMAS: [&str; 2] = ["foreign_keys", "writable_schema"];

const PG_FOOTER: &str = "-- PostgreSQL database dump complete";
const MYSQL_FOOTER: &str = "-- Dump completed";

pub fn check(
    sandbox: &Sandbox,
    stream: &mut dyn Read,
    dialect: Dialect,
    postgres_url: Option<&str>,
) -> Result<Notes, RestoreError> {
    match dialect {
        Dialect::Unknown => Err(RestoreError::Skipped(
            "an SQL script from an unknown dump tool: there is no completion footer to check it against".into(),
        )),
        Dialect::Sqlite => replay_sqlite(sandbox, stream),
        Dialect::Mysql => footer_only(sandbox, stream, Dialect::Mysql),
        Dialect::Postgres => match postgres_url {
            None => footer_only(sandbox, stream, Dialect::Postgres),
            Some(url) => replay_postgres(sandbox, stream, url),
        },
    }
}

/// What a pass over the script learned.
#[derive(Default)]
struct Scan {
    tail: VecDeque<String>,
    tables: Vec<String>,
    bytes: u64,
}

impl Scan {
    fn has_footer(&self, dialect: Dialect) -> bool {
        self.tail.iter().any(|l| match dialect {
            Dialect::Postgres => l == PG_FOOTER,
            Dialect::Mysql => l.starts_with(MYSQL_FOOTER),
            Dialect::Sqlite => l == "COMMIT;",
            Dialect::Unknown => false,
        })
    }

    fn footer_error(&self, dialect: Dialect) -> RestoreError {
        let (tool, footer) = match dialect {
            Dialect::Postgres => ("pg_dump", PG_FOOTER),
            Dialect::Mysql => ("mysqldump", MYSQL_FOOTER),
            _ => ("sqlite3 .dump", "COMMIT;"),
        };
        RestoreError::Incomplete(format!(
            "the {tool} script does not end with its completion footer `{footer}`: the dump was cut short"
        ))
    }
}

/// Stream every line of `stream` to `each` (a line longer than `MAX_LINE` arrives in
/// pieces; `start` is true for the first piece), keeping the tail and the tables.
fn scan(
    sandbox: &Sandbox,
    stream: &mut dyn Read,
    mut each: impl FnMut(&[u8], bool) -> Result<(), RestoreError>,
) -> Result<Scan, RestoreError> {
    let mut reader = BufReader::with_capacity(1 << 20, stream);
    let mut line = Vec::new();
    let mut result = Scan::default();
    let mut start = true;
    loop {
        line.clear();
        let n = (&mut reader)
            .take(MAX_LINE)
            .read_until(b'\n', &mut line)
            .map_err(|e| RestoreError::read("the SQL script", e))?;
        if n == 0 {
            return Ok(result);
        }
        sandbox.charge(n as u64)?;
        result.bytes += n as u64;
        if start {
            let prefix = String::from_utf8_lossy(&line[..line.len().min(PREFIX)]);
            let text = prefix.trim();
            if let Some(table) = created_table(text) {
                result.tables.push(table);
            }
            if !text.is_empty() {
                if result.tail.len() == TAIL_LINES {
                    result.tail.pop_front();
                }
                result.tail.push_back(text.to_string());
            }
        }
        each(&line, start)?;
        start = line.ends_with(b"\n");
    }
}

/// The table a `CREATE TABLE` line creates, without schema or quotes.
fn created_table(line: &str) -> Option<String> {
    let upper = line.get(..13)?.to_ascii_uppercase();
    if upper != "CREATE TABLE " {
        return None;
    }
    let mut rest = line[13..].trim_start();
    if rest.to_ascii_uppercase().starts_with("IF NOT EXISTS ") {
        rest = rest[14..].trim_start();
    }
    let name: String = rest
        .chars()
        .take_while(|c| !c.is_whitespace() && *c != '(')
        .collect();
    let name = name.rsplit('.').next().unwrap_or(&name);
    let name = name.trim_matches(|c| matches!(c, '"' | '`' | '[' | ']' | '\''));
    (!name.is_empty()).then(|| name.to_string())
}

fn footer_only(
    sandbox: &Sandbox,
    stream: &mut dyn Read,
    dialect: Dialect,
) -> Result<Notes, RestoreError> {
    let scan = scan(sandbox, stream, |_, _| Ok(()))?;
    if !scan.has_footer(dialect) {
        return Err(scan.footer_error(dialect));
    }
    for t in &scan.tables {
        sandbox.tally.note(t, true);
    }
    let mut notes = Notes::default();
    notes.push(format!(
        "completion footer present, {} tables created; not replayed{}",
        scan.tables.len(),
        if dialect == Dialect::Postgres {
            " (no restore.postgres_url)"
        } else {
            ""
        }
    ));
    Ok(notes)
}

fn replay_sqlite(sandbox: &Sandbox, stream: &mut dyn Read) -> Result<Notes, RestoreError> {
    let path = sandbox.scratch_path("replay.sqlite");
    let conn = rusqlite::Connection::open(&path).map_err(|e| {
        RestoreError::Skipped(format!("cannot create the scratch SQLite database: {e}"))
    })?;
    let pages = (sandbox.limit() / 4096).max(16);
    conn.execute_batch(&format!(
        "PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF; PRAGMA temp_store=MEMORY; \
         PRAGMA page_size=4096; PRAGMA max_page_count={pages};"
    ))
    .map_err(|e| RestoreError::Skipped(format!("cannot set up the scratch database: {e}")))?;
    let budget = Budget::default();
    confine(&conn, Some(&budget));
    let mut statement: Vec<u8> = Vec::new();
    let mut statements = 0u64;
    let scan = scan(sandbox, stream, |piece, _| {
        budget.allow(piece.len() as u64 * OPS_PER_BYTE);
        statement.extend_from_slice(piece);
        if statement.len() > MAX_STATEMENT {
            return Err(RestoreError::Failed(format!(
                "a statement is longer than {} MiB",
                MAX_STATEMENT >> 20
            )));
        }
        if piece.trim_ascii_end().ends_with(b";") && is_complete(&statement)? {
            let sql = String::from_utf8_lossy(&statement);
            conn.execute_batch(&sql)
                .map_err(|e| replay_error(sandbox, &budget, statements + 1, e))?;
            statements += 1;
            statement.clear();
        }
        Ok(())
    });
    confine(&conn, None);
    let scan = scan?;
    if !scan.has_footer(Dialect::Sqlite) || !statement.trim_ascii().is_empty() {
        return Err(scan.footer_error(Dialect::Sqlite));
    }
    let problems = sqlite::integrity_problems(&conn)
        .map_err(|e| RestoreError::Failed(format!("the replayed database cannot be read: {e}")))?;
    if !problems.is_empty() {
        return Err(RestoreError::Failed(format!(
            "the replayed database fails integrity_check: {}",
            problems.join("; ")
        )));
    }
    let tables = sqlite::table_names(&conn)
        .map_err(|e| RestoreError::Failed(format!("the replayed database cannot be read: {e}")))?;
    for t in &tables {
        sandbox.tally.note(t, true);
    }
    let mut notes = Notes::default();
    notes.push(format!(
        "replayed {statements} statements into a scratch SQLite database: integrity_check ok, {} tables",
        tables.len()
    ));
    Ok(notes)
}

fn replay_error(sandbox: &Sandbox, budget: &Budget, n: u64, e: rusqlite::Error) -> RestoreError {
    match e.sqlite_error_code() {
        Some(rusqlite::ErrorCode::DiskFull) => RestoreError::Limit {
            limit: sandbox.limit(),
        },
        Some(rusqlite::ErrorCode::OperationInterrupted) if budget.spent() => {
            RestoreError::Failed(format!(
                "replaying statement {n} stopped: it did more work than a dump of this size needs ({} VM steps; a dump does not loop)",
                budget.ops.get()
            ))
        }
        _ => RestoreError::Failed(format!("replaying statement {n} failed: {e}")),
    }
}

/// The work a SQLite replay may still do, counted by its progress handler.
#[derive(Default)]
struct Budget {
    ops: Cell<u64>,
    allowed: Cell<u64>,
}

impl Budget {
    fn allow(&self, more: u64) {
        let base = if self.allowed.get() == 0 { BASE_OPS } else { 0 };
        self.allowed
            .set(self.allowed.get().saturating_add(base).saturating_add(more));
    }

    fn spent(&self) -> bool {
        self.ops.get() > self.allowed.get()
    }
}

/// Confine a replay (`Some`) or lift the confinement for our own checks (`None`): no
/// ATTACH, DETACH or VACUUM (INTO) — they write files outside the sandbox — pragmas other
/// than [`DUMP_PRAGMAS`] are ignored (a dump may not lift `max_page_count`), and the
/// work done is bounded by `budget`.
fn confine(conn: &rusqlite::Connection, budget: Option<&Budget>) {
    use rusqlite::ffi;
    // SAFETY: the handle is open for the whole call. The budget outlives the confinement:
    // `replay_sqlite` lifts it (None) before the budget goes out of scope, and the
    // callbacks only run while statements of the replay execute.
    unsafe {
        let db = conn.handle();
        match budget {
            Some(b) => {
                ffi::sqlite3_limit(db, ffi::SQLITE_LIMIT_ATTACHED, 0);
                let arg = b as *const Budget as *mut c_void;
                ffi::sqlite3_progress_handler(db, PROGRESS_OPS, Some(over_budget), arg);
                ffi::sqlite3_set_authorizer(db, Some(authorize), std::ptr::null_mut());
            }
            None => {
                ffi::sqlite3_progress_handler(db, 0, None, std::ptr::null_mut());
                ffi::sqlite3_set_authorizer(db, None, std::ptr::null_mut());
            }
        }
    }
}

unsafe extern "C" fn over_budget(arg: *mut c_void) -> c_int {
    // SAFETY: `arg` is the `Budget` registered by `confine`, alive while it is registered.
    let budget = unsafe { &*(arg as *const Budget) };
    budget
        .ops
        .set(budget.ops.get().saturating_add(PROGRESS_OPS as u64));
    c_int::from(budget.spent())
}

unsafe extern "C" fn authorize(
    _: *mut c_void,
    action: c_int,
    arg1: *const c_char,
    _: *const c_char,
    _: *const c_char,
    _: *const c_char,
) -> c_int {
    use rusqlite::ffi;
    match action {
        ffi::SQLITE_ATTACH | ffi::SQLITE_DETACH => ffi::SQLITE_DENY,
        ffi::SQLITE_PRAGMA => {
            // SAFETY: for SQLITE_PRAGMA, SQLite passes the pragma's name as a C string.
            let name = (!arg1.is_null()).then(|| unsafe { CStr::from_ptr(arg1) });
            let allowed = name
                .and_then(|n| n.to_str().ok())
                .is_some_and(|n| DUMP_PRAGMAS.iter().any(|p| p.eq_ignore_ascii_case(n)));
            if allowed {
                ffi::SQLITE_OK
            } else {
                ffi::SQLITE_IGNORE
            }
        }
        _ => ffi::SQLITE_OK,
    }
}

/// SQLite's own judgement of whether `sql` ends with a complete statement (a `;` inside
/// a string literal or trigger body does not end one).
fn is_complete(sql: &[u8]) -> Result<bool, RestoreError> {
    let c = CString::new(sql)
        .map_err(|_| RestoreError::Failed("the SQL script contains a NUL byte".into()))?;
    // SAFETY: `c` is a valid NUL-terminated string that outlives the call;
    // sqlite3_complete only reads it.
    Ok(unsafe { rusqlite::ffi::sqlite3_complete(c.as_ptr()) } != 0)
}

fn replay_postgres(
    sandbox: &Sandbox,
    stream: &mut dyn Read,
    url: &str,
) -> Result<Notes, RestoreError> {
    let db = ScratchDb::create(url)?;
    let mut psql = db.psql_script()?;
    let stderr = collect_stderr(&mut psql);
    let mut stdin = psql.stdin.take();
    let mut filter = OwnershipFilter::default();
    let mut broken_pipe = false;
    let scanned = scan(sandbox, stream, |piece, start| {
        if broken_pipe || !filter.keep(piece, start) {
            return Ok(());
        }
        if let Some(input) = stdin.as_mut()
            && let Err(e) = input.write_all(piece)
        {
            // psql stopped at an error; its exit status and stderr say which.
            if e.kind() != io::ErrorKind::BrokenPipe {
                return Err(RestoreError::Skipped(format!("cannot feed psql: {e}")));
            }
            broken_pipe = true;
        }
        Ok(())
    });
    drop(stdin);
    let status = psql
        .wait()
        .map_err(|e| RestoreError::Skipped(format!("psql did not finish: {e}")))?;
    let errors = stderr.join().unwrap_or_default();
    let scan = scanned?;
    if !scan.has_footer(Dialect::Postgres) {
        return Err(scan.footer_error(Dialect::Postgres));
    }
    if !status.success() {
        return Err(RestoreError::Failed(format!(
            "replaying the dump into a scratch database failed: {}",
            postgres::shorten(&errors)
        )));
    }
    let tables = db.tables()?;
    for t in &tables {
        sandbox.tally.note(t, true);
    }
    let mut notes = Notes::default();
    notes.push(format!(
        "completion footer present; replayed into scratch database {} ({} tables)",
        db.name,
        tables.len()
    ));
    Ok(notes)
}

/// Read a child's stderr on a thread (so a chatty child never blocks on a full pipe),
/// keeping its first 64 KiB.
fn collect_stderr(child: &mut Child) -> std::thread::JoinHandle<String> {
    let stderr = child.stderr.take();
    std::thread::spawn(move || {
        let mut kept = Vec::new();
        if let Some(mut s) = stderr {
            let _ = (&mut s).take(64 << 10).read_to_end(&mut kept);
            let _ = io::copy(&mut s, &mut io::sink());
        }
        String::from_utf8_lossy(&kept).into_owned()
    })
}

/// Leaves out `ALTER … OWNER TO`, `GRANT` and `REVOKE` statements outside `COPY` data:
/// the roles of the production server need not exist on the scratch server.
#[derive(Default)]
struct OwnershipFilter {
    in_copy: bool,
}

impl OwnershipFilter {
    fn keep(&mut self, piece: &[u8], start: bool) -> bool {
        if !start {
            return true;
        }
        if self.in_copy {
            if piece.trim_ascii_end() == b"\\." {
                self.in_copy = false;
            }
            return true;
        }
        let line = piece.trim_ascii_end();
        if line.starts_with(b"COPY ") && line.ends_with(b"FROM stdin;") {
            self.in_copy = true;
            return true;
        }
        let one_line = line.ends_with(b";");
        let owner = line.starts_with(b"ALTER ") && contains(line, b" OWNER TO ");
        let privilege = line.starts_with(b"GRANT ") || line.starts_with(b"REVOKE ");
        !(one_line && (owner || privilege))
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_names_from_create_statements() {
        assert_eq!(
            created_table("CREATE TABLE public.users ("),
            Some("users".into())
        );
        assert_eq!(
            created_table("CREATE TABLE `orders` ("),
            Some("orders".into())
        );
        assert_eq!(
            created_table("CREATE TABLE IF NOT EXISTS \"t\"(a)"),
            Some("t".into())
        );
        assert_eq!(created_table("CREATE INDEX x ON t(a);"), None);
        assert_eq!(
            created_table("create table lower(a);"),
            Some("lower".into())
        );
    }

    #[test]
    fn sqlite_statement_completeness() {
        assert!(is_complete(b"INSERT INTO t VALUES('a');").unwrap());
        assert!(!is_complete(b"INSERT INTO t VALUES('a;\n").unwrap());
        assert!(!is_complete(b"CREATE TRIGGER x AFTER INSERT ON t BEGIN SELECT 1;").unwrap());
    }

    /// Replay `body` as a sqlite3 `.dump` script in a sandbox of `limit` bytes under `dir`.
    fn replay(dir: &std::path::Path, limit: u64, body: &str) -> Result<Notes, RestoreError> {
        let tally = crate::restore::Tally::new(&[]).unwrap();
        let sandbox = Sandbox::create(dir, limit, tally).unwrap();
        let script = format!("PRAGMA foreign_keys=OFF;\nBEGIN TRANSACTION;\n{body}\nCOMMIT;\n");
        replay_sqlite(&sandbox, &mut script.as_bytes())
    }

    // Found with the restore_raw fuzz harness: a dump's ATTACH or VACUUM INTO wrote a database
    // outside the sandbox (relative names landed in the working directory).
    #[test]
    fn replay_cannot_write_outside_the_sandbox() {
        let dir = tempfile::tempdir().unwrap();
        let outside = dir.path().join("escaped.db");
        for sql in [
            format!(
                "ATTACH DATABASE '{}' AS e;\nCREATE TABLE e.t(a);",
                outside.display()
            ),
            format!("CREATE TABLE t(a);\nVACUUM INTO '{}';", outside.display()),
        ] {
            let err = replay(dir.path(), 1 << 20, &sql).unwrap_err();
            assert!(matches!(err, RestoreError::Failed(_)), "{err:?}");
            assert!(!outside.exists(), "{sql}");
        }
    }

    // Found with the restore_raw fuzz harness: the replayed database was not held to max_bytes,
    // also when the dump raises max_page_count itself.
    #[test]
    fn replayed_database_is_held_to_the_limit() {
        let dir = tempfile::tempdir().unwrap();
        let grow = "PRAGMA max_page_count=4294967294;\nCREATE TABLE t AS WITH RECURSIVE c(x) AS \
                    (SELECT 1 UNION ALL SELECT x+1 FROM c LIMIT 20000) SELECT randomblob(1000) AS b FROM c;";
        let err = replay(dir.path(), 1 << 20, grow).unwrap_err();
        assert!(matches!(err, RestoreError::Limit { .. }), "{err:?}");
    }

    // Found with the restore_raw fuzz harness: a statement that never ends hung the restore test.
    #[test]
    fn endless_statement_is_stopped() {
        let dir = tempfile::tempdir().unwrap();
        let spin = "CREATE TABLE t AS WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c) \
                    SELECT count(*) AS n FROM c;";
        let err = replay(dir.path(), 1 << 20, spin).unwrap_err();
        assert!(err.to_string().contains("more work"), "{err}");
        let ok = replay(
            dir.path(),
            1 << 20,
            "CREATE TABLE t(a);\nINSERT INTO t VALUES(1);",
        );
        assert!(ok.is_ok(), "a normal dump still replays: {ok:?}");
    }

    #[test]
    fn ownership_filter_spares_copy_data() {
        let mut f = OwnershipFilter::default();
        assert!(!f.keep(b"ALTER TABLE public.t OWNER TO alice;\n", true));
        assert!(!f.keep(b"GRANT ALL ON TABLE public.t TO bob;\n", true));
        assert!(f.keep(b"CREATE TABLE public.t (a text);\n", true));
        assert!(f.keep(b"COPY public.t (a) FROM stdin;\n", true));
        assert!(f.keep(b"GRANT this is data;\n", true), "inside COPY data");
        assert!(f.keep(b"\\.\n", true));
        assert!(!f.keep(b"REVOKE ALL ON SCHEMA public FROM PUBLIC;\n", true));
    }
}
