//! SQL dumps, plain or decompressed on the fly, read line by line in constant memory.
//!
//! - `pg_dump` scripts pass when they end with their completion footer (`-- PostgreSQL
//!   database dump complete`, then nothing but blank lines, `--` comments and the
//!   `\unrestrict <key>` of recent releases); with `restore.postgres_url` they are also
//!   replayed into a scratch database with `psql` (stopping at the first error;
//!   ownership and privilege statements are left out, like `pg_restore --no-owner
//!   --no-privileges`).
//! - `mysqldump` scripts pass when they end with `-- Dump completed`.
//! - Scripts from an unknown tool have no footer to check and are skipped — unless they
//!   are no SQL script at all: empty, binary, or text without a statement.
//! - SQLite `.dump` scripts are replayed statement by statement into a scratch SQLite
//!   database in the sandbox, which must end with `COMMIT;` and pass `integrity_check`.
//!
//! Tables (`CREATE TABLE` statements, or those of the replayed database) are the
//! restored entries that `expect` and `min_files` judge.

use super::detect::Dialect;
use super::postgres::{self, ScratchDb};
use super::sandbox::Sandbox;
use super::{Notes, RestoreError, sqlite};
use rusqlite::OpenFlags;
use std::ffi::{CStr, CString, c_char, c_int, c_void};
use std::io::{self, BufRead, BufReader, Read, Write};

/// Lines longer than this are handled in pieces (memory stays bounded).
const MAX_LINE: u64 = 1 << 20;
/// A single SQLite statement may not exceed this.
const MAX_STATEMENT: usize = 64 << 20;
/// How much of each line is kept for the footer and `CREATE TABLE` checks.
const PREFIX: usize = 256;
/// How many leading bytes of a script from an unknown tool are judged text or binary.
const TEXT_PROBE: usize = 4096;
/// Words a line of SQL starts a statement with: a script from an unknown tool holding
/// none of them is no SQL script at all (an error message where the dump should be).
const STATEMENT_WORDS: [&str; 37] = [
    "ALTER",
    "ANALYZE",
    "BEGIN",
    "CALL",
    "COMMENT",
    "COMMIT",
    "COPY",
    "CREATE",
    "DECLARE",
    "DELETE",
    "DO",
    "DROP",
    "END",
    "EXECUTE",
    "GRANT",
    "INSERT",
    "LOCK",
    "MERGE",
    "PRAGMA",
    "REFRESH",
    "REINDEX",
    "RELEASE",
    "REPLACE",
    "RESET",
    "REVOKE",
    "ROLLBACK",
    "SAVEPOINT",
    "SELECT",
    "SET",
    "START",
    "TRUNCATE",
    "UNLOCK",
    "UPDATE",
    "USE",
    "VACUUM",
    "VALUES",
    "WITH",
];

/// The shortest string or blob a replay may build, whatever `max_bytes` (the longest is
/// [`MAX_STATEMENT`]: a dump holds no value longer than its statement).
const MIN_VALUE: u64 = 1 << 20;
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
    services: &super::Services,
) -> Result<Notes, RestoreError> {
    let postgres_url = services.pg_url;
    match dialect {
        Dialect::Unknown => unknown_tool(sandbox, stream),
        Dialect::Sqlite => replay_sqlite(sandbox, stream),
        Dialect::Mysql => match services.mysql_url {
            None => footer_only(sandbox, stream, Dialect::Mysql),
            Some(url) => super::mysql::replay(sandbox, stream, url),
        },
        Dialect::Postgres => match postgres_url {
            None => footer_only(sandbox, stream, Dialect::Postgres),
            Some(url) => replay_postgres(sandbox, stream, url),
        },
    }
}

/// What a pass over the script learned.
#[derive(Default)]
pub(super) struct Scan {
    tables: Vec<String>,
    bytes: u64,
    /// The completion footer was seen and nothing has followed it but blank lines, `--`
    /// comments and (pg_dump 17.6, 16.10 and later point releases) `\unrestrict <key>`.
    pub(super) ends_with_footer: bool,
    /// What the first line that followed a footer is (never its content).
    after_footer: Option<String>,
}

impl Scan {
    /// Judge one line (its first `PREFIX` bytes, trimmed) for the footer.
    fn footer_line(&mut self, text: &str, dialect: Dialect) {
        let footer = match dialect {
            Dialect::Postgres => text == PG_FOOTER,
            Dialect::Mysql => text.starts_with(MYSQL_FOOTER),
            Dialect::Sqlite => text == "COMMIT;",
            Dialect::Unknown => false,
        };
        let unrestrict = dialect == Dialect::Postgres
            && (text == "\\unrestrict" || text.starts_with("\\unrestrict "));
        if footer {
            self.ends_with_footer = true;
            self.after_footer = None;
        } else if !(text.is_empty() || text.starts_with("--") || unrestrict) {
            if self.ends_with_footer {
                self.after_footer = Some(describe_line(text.as_bytes()));
            }
            self.ends_with_footer = false;
        }
    }

    pub(super) fn footer_error(&self, dialect: Dialect) -> RestoreError {
        let (tool, footer) = match dialect {
            Dialect::Postgres => ("pg_dump", PG_FOOTER),
            Dialect::Mysql => ("mysqldump", MYSQL_FOOTER),
            _ => ("sqlite3 .dump", "COMMIT;"),
        };
        let why = match &self.after_footer {
            Some(line) => format!(
                "it is followed by {line}, where only blank lines and comments may follow: the dump goes on after its footer and was cut short there"
            ),
            None => "the dump was cut short".into(),
        };
        RestoreError::Incomplete(format!(
            "the {tool} script does not end with its completion footer `{footer}`: {why}"
        ))
    }
}

/// Stream every line of `stream` to `each` (a line longer than `MAX_LINE` arrives in
/// pieces; `start` is true for the first piece), keeping the tables and whether the
/// script ends with `dialect`'s footer. Memory stays bounded whatever the line lengths.
pub(super) fn scan(
    sandbox: &Sandbox,
    stream: &mut dyn Read,
    dialect: Dialect,
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
        // Reading is bounded by max_bytes, but what is done with each line is not
        // (a replay asks SQLite whether a growing statement is complete at every `;`).
        sandbox.check_deadline()?;
        sandbox.charge(n as u64)?;
        result.bytes += n as u64;
        if start {
            let prefix = String::from_utf8_lossy(&line[..line.len().min(PREFIX)]);
            let text = prefix.trim();
            if let Some(table) = created_table(text) {
                result.tables.push(table);
            }
            result.footer_line(text, dialect);
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
    let scan = scan(sandbox, stream, dialect, |_, _| Ok(()))?;
    if !scan.ends_with_footer {
        return Err(scan.footer_error(dialect));
    }
    for t in &scan.tables {
        sandbox.tally.note(t, true);
    }
    let mut notes = Notes::default();
    notes.push(format!(
        "completion footer present, {} tables created; not replayed{}",
        scan.tables.len(),
        match dialect {
            Dialect::Postgres => " (no restore.postgres_url)",
            Dialect::Mysql => " (no restore.mysql_url)",
            _ => "",
        }
    ));
    Ok(notes)
}

/// An `.sql` script from no dump tool we know has no footer to check, so it is skipped —
/// unless it is no SQL script at all. It is read to its end (a compressed one's stream is
/// verified on the way) and judged: empty → `dump_incomplete` (the dump tool produced
/// nothing, what `pg_dump db | gzip` leaves when pg_dump fails); binary (a NUL byte, or
/// control bytes all over its start) → `archive_corrupt`; text without one line that
/// starts an SQL statement → `restore_failed` (an error message where the dump should be).
fn unknown_tool(sandbox: &Sandbox, stream: &mut dyn Read) -> Result<Notes, RestoreError> {
    let mut probe = Probe::default();
    let scanned = scan(sandbox, stream, Dialect::Unknown, |piece, start| {
        probe.piece(piece, start)
    })?;
    let Some(first_line) = probe.first_line else {
        return Err(RestoreError::Incomplete(format!(
            "the dump is empty: the dump tool produced nothing{}",
            if scanned.bytes > 0 {
                " but blank lines"
            } else {
                ""
            }
        )));
    };
    let control = probe.head.iter().filter(|&&b| is_control(b)).count();
    if control * 32 > probe.head.len() {
        return Err(RestoreError::Corrupt(format!(
            "the SQL script is binary data, not text ({control} control bytes in its first {}; {})",
            probe.head.len(),
            super::detect::describe_start(&probe.head)
        )));
    }
    if !probe.statement {
        return Err(RestoreError::Failed(format!(
            "the SQL script holds no SQL statements (its first line, of {first_line} bytes, starts none; {}): the dump tool wrote no dump, perhaps only its error message",
            super::detect::describe_start(probe.head.trim_ascii_start())
        )));
    }
    Err(RestoreError::Skipped(
        "an SQL script from an unknown dump tool: there is no completion footer to check it against".into(),
    ))
}

/// What the pieces of a script from an unknown tool show.
#[derive(Default)]
struct Probe {
    /// Its first `TEXT_PROBE` bytes.
    head: Vec<u8>,
    offset: u64,
    /// The length of its first line that is not blank (its content is never shown).
    first_line: Option<usize>,
    /// A line starts an SQL statement.
    statement: bool,
}

impl Probe {
    fn piece(&mut self, piece: &[u8], start: bool) -> Result<(), RestoreError> {
        let room = TEXT_PROBE.saturating_sub(self.head.len());
        self.head.extend_from_slice(&piece[..piece.len().min(room)]);
        if let Some(at) = piece.iter().position(|&b| b == 0) {
            return Err(RestoreError::Corrupt(format!(
                "the SQL script is binary data, not text: a NUL byte at offset {} ({})",
                self.offset + at as u64,
                super::detect::describe_start(&self.head)
            )));
        }
        self.offset += piece.len() as u64;
        let text = piece.trim_ascii();
        if text.is_empty() {
            return Ok(());
        }
        if self.first_line.is_none() {
            self.first_line = Some(text.len());
        }
        self.statement |= start && starts_statement(text);
        Ok(())
    }
}

/// A byte that text does not hold: C0 controls but tab, line ends, form feed and escape,
/// and DEL.
fn is_control(b: u8) -> bool {
    matches!(b, 0x01..=0x08 | 0x0e..=0x1a | 0x1c..=0x1f | 0x7f)
}

/// What a line (trimmed) is, without quoting it: backup content never reaches a message
/// beyond what identifies a format (here the SQL keyword a statement starts with).
fn describe_line(line: &[u8]) -> String {
    if starts_statement(line) {
        let word = line
            .iter()
            .position(|b| !(b.is_ascii_alphanumeric() || *b == b'_'))
            .map_or(line, |end| &line[..end]);
        if word.is_empty() {
            return "a MySQL executable comment (`/*!`)".into();
        }
        return format!(
            "a line that starts an SQL statement (`{}`)",
            String::from_utf8_lossy(word).to_ascii_uppercase()
        );
    }
    format!("a line of {} bytes that is no SQL statement", line.len())
}

/// Whether a line (trimmed) starts an SQL statement: its first word is one of
/// [`STATEMENT_WORDS`], or it is a MySQL executable comment `/*!`.
fn starts_statement(line: &[u8]) -> bool {
    if line.starts_with(b"/*!") {
        return true;
    }
    let word = line
        .iter()
        .position(|b| !(b.is_ascii_alphanumeric() || *b == b'_'))
        .map_or(line, |end| &line[..end]);
    STATEMENT_WORDS
        .iter()
        .any(|w| w.as_bytes().eq_ignore_ascii_case(word))
}

fn replay_sqlite(sandbox: &Sandbox, stream: &mut dyn Read) -> Result<Notes, RestoreError> {
    let path = sandbox.scratch_path("replay.sqlite");
    let max_value = sandbox.limit().clamp(MIN_VALUE, MAX_STATEMENT as u64);
    let conn = sqlite::Bounded::open(
        sandbox,
        &path,
        OpenFlags::default() - OpenFlags::SQLITE_OPEN_URI,
        max_value,
    )
    .map_err(|e| {
        RestoreError::Skipped(format!("cannot create the scratch SQLite database: {e}"))
    })?;
    let pages = (sandbox.limit() / 4096).max(16);
    // Temporary tables and sorts go to a temporary file (bounded by the database, which
    // max_page_count bounds), not to the heap, which is capped.
    conn.execute_batch(&format!(
        "PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF; PRAGMA temp_store=FILE; \
         PRAGMA page_size=4096; PRAGMA max_page_count={pages};"
    ))
    .map_err(|e| RestoreError::Skipped(format!("cannot set up the scratch database: {e}")))?;
    conn.allow_ops(BASE_OPS);
    confine(&conn, true);
    let mut statement: Vec<u8> = Vec::new();
    let mut statements = 0u64;
    let scan = scan(sandbox, stream, Dialect::Sqlite, |piece, _| {
        conn.allow_ops(piece.len() as u64 * OPS_PER_BYTE);
        statement.extend_from_slice(piece);
        if statement.len() > MAX_STATEMENT {
            return Err(RestoreError::Failed(format!(
                "a statement is longer than {} MiB",
                MAX_STATEMENT >> 20
            )));
        }
        if piece.trim_ascii_end().ends_with(b";") && is_complete(&statement)? {
            sandbox.check_deadline()?;
            let sql = String::from_utf8_lossy(&statement);
            conn.execute_batch(&sql)
                .map_err(|e| replay_error(sandbox, &conn, statements + 1, e))?;
            statements += 1;
            statement.clear();
        }
        Ok(())
    });
    confine(&conn, false);
    let scan = scan?;
    if !scan.ends_with_footer || !statement.trim_ascii().is_empty() {
        return Err(scan.footer_error(Dialect::Sqlite));
    }
    // Our own checks are not counted against the replay's work, only against the clock.
    conn.stop_counting();
    let unreadable = |e| {
        conn.error(sandbox, e).unwrap_or_else(|e| {
            RestoreError::Failed(format!("the replayed database cannot be read: {e}"))
        })
    };
    let problems = sqlite::integrity_problems(&conn).map_err(unreadable)?;
    if !problems.is_empty() {
        return Err(RestoreError::Failed(format!(
            "the replayed database fails integrity_check: {}",
            problems.join("; ")
        )));
    }
    let tables = sqlite::table_names(&conn).map_err(unreadable)?;
    for t in &tables {
        sandbox.tally.note(t, true);
    }
    sandbox
        .tally
        .add_rows(sqlite::row_count(&conn, &tables).map_err(unreadable)?);
    let mut notes = Notes::default();
    notes.push(format!(
        "replayed {statements} statements into a scratch SQLite database: integrity_check ok, {} tables",
        tables.len()
    ));
    Ok(notes)
}

fn replay_error(
    sandbox: &Sandbox,
    conn: &sqlite::Bounded,
    n: u64,
    e: rusqlite::Error,
) -> RestoreError {
    let e = match conn.error(sandbox, e) {
        Ok(bound) => return bound,
        Err(e) => e,
    };
    match e.sqlite_error_code() {
        Some(rusqlite::ErrorCode::OperationInterrupted) if conn.ops_spent() => {
            RestoreError::Failed(format!(
                "replaying statement {n} stopped: it did more work than a dump of this size needs ({} VM steps; a dump does not loop)",
                conn.ops()
            ))
        }
        _ => RestoreError::Failed(format!(
            "replaying statement {n} failed: {}",
            without_content(&e.to_string())
        )),
    }
}

/// Confine a replay (`true`) or lift the confinement for our own checks (`false`): no
/// ATTACH, DETACH or VACUUM (INTO) — they write files outside the sandbox — and pragmas
/// other than [`DUMP_PRAGMAS`] are ignored (a dump may not lift `max_page_count`, nor
/// the limits of its connection).
fn confine(conn: &rusqlite::Connection, on: bool) {
    use rusqlite::ffi;
    // SAFETY: the handle is open for the whole call; the authorizer has no state.
    unsafe {
        let db = conn.handle();
        if on {
            ffi::sqlite3_limit(db, ffi::SQLITE_LIMIT_ATTACHED, 0);
            ffi::sqlite3_set_authorizer(db, Some(authorize), std::ptr::null_mut());
        } else {
            ffi::sqlite3_set_authorizer(db, None, std::ptr::null_mut());
        }
    }
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
    let db = ScratchDb::create(url, postgres::Deadline::of(sandbox))?;
    let psql = db.psql_script()?;
    let stderr = collect_stderr(psql.take_stderr());
    let mut stdin = psql.take_stdin();
    // A backup is data, not a script for this host: from the first line on, psql refuses
    // every backslash command (`\!` runs a shell command, `\o` writes a file, `\connect`
    // leaves the scratch database) — what pg_dump's own `\restrict` guards against.
    let key = restrict_key();
    if let Some(input) = stdin.as_mut()
        && let Err(e) = input.write_all(format!("\\restrict {key}\n").as_bytes())
    {
        return Err(RestoreError::Skipped(format!("cannot feed psql: {e}")));
    }
    let mut filter = OwnershipFilter::default();
    let mut broken_pipe = false;
    let mut cluster = false;
    let scanned = scan(sandbox, stream, Dialect::Postgres, |piece, start| {
        if start && piece.starts_with(b"-- PostgreSQL database cluster dump") {
            cluster = true;
        }
        if cluster || broken_pipe || !filter.keep(piece, start) {
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
    let status = psql.wait()?;
    let errors = stderr.join().unwrap_or_default();
    if cluster {
        return Err(RestoreError::Skipped(
            "a pg_dumpall cluster dump: replaying it would create roles and databases on the server; test per-database dumps (pg_dump) instead".into(),
        ));
    }
    if errors.contains("invalid command \\restrict") {
        return Err(RestoreError::Skipped(
            "this psql cannot block a dump's backslash commands (\\restrict needs psql 13.22, 14.19, 15.14, 16.10, 17.6 or later): plain dumps are not replayed; upgrade the PostgreSQL client".into(),
        ));
    }
    let scan = scanned?;
    if !scan.ends_with_footer {
        return Err(scan.footer_error(Dialect::Postgres));
    }
    if !status.success() {
        return Err(RestoreError::Failed(format!(
            "replaying the dump into a scratch database failed: {}",
            postgres::shorten(&psql_errors(&errors))
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

/// An error message of SQLite or psql with what it quotes of the dump left out: the
/// contents of `"…"` and `'…'` (a token near a syntax error, a value that does not fit
/// its type), so no row of a backup reaches a detail, a log or an alert.
pub(super) fn without_content(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let mut open: Option<char> = None;
    for c in message.chars() {
        match open {
            Some(q) if c == q => {
                out.push('…');
                out.push(c);
                open = None;
            }
            Some(_) => {}
            None => {
                out.push(c);
                if c == '"' || c == '\'' {
                    open = Some(c);
                }
            }
        }
    }
    if open.is_some() {
        out.push('…');
    }
    out
}

/// psql's error output without the lines that quote the dump (`LINE n:` with its caret,
/// `DETAIL:` with key values, `CONTEXT:` with a `COPY` row, `QUERY:`, pg_restore's
/// `Command was:`), and quoted
/// fragments of the rest left out.
pub(super) fn psql_errors(stderr: &str) -> String {
    let mut kept = Vec::new();
    let mut skip_caret = false;
    for line in stderr.lines() {
        let bare = line.trim_start();
        if skip_caret && bare.starts_with('^') {
            skip_caret = false;
            continue;
        }
        skip_caret = false;
        if bare.starts_with("LINE ") {
            skip_caret = true;
            continue;
        }
        if ["DETAIL:", "CONTEXT:", "QUERY:", "HINT:", "Command was:"]
            .iter()
            .any(|p| bare.starts_with(p))
            || line.starts_with(char::is_whitespace)
        {
            continue;
        }
        kept.push(without_content(line));
    }
    kept.join("\n")
}

/// Read a child's stderr on a thread (so a chatty child never blocks on a full pipe),
/// keeping its first 64 KiB.
pub(super) fn collect_stderr(
    stderr: Option<std::process::ChildStderr>,
) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut kept = Vec::new();
        if let Some(mut s) = stderr {
            let _ = (&mut s).take(64 << 10).read_to_end(&mut kept);
            let _ = io::copy(&mut s, &mut io::sink());
        }
        String::from_utf8_lossy(&kept).into_owned()
    })
}

/// A key for `\\restrict` that the dump cannot know (it is written before the dump is
/// read, and a dump's own `\\unrestrict` lines are left out).
fn restrict_key() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u32(std::process::id());
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default(),
    );
    format!("bm{:016x}", h.finish())
}

/// What a plain dump may not do to the scratch server, left out where a line begins a
/// statement (outside quotes, comments and `COPY` data):
/// - `ALTER … OWNER TO`, `GRANT`, `REVOKE`, `ALTER DEFAULT PRIVILEGES`: the roles of the
///   production server need not exist on the scratch server (as `--no-owner
///   --no-privileges`);
/// - database- and role-level statements (`pg_dump --create --clean`, `pg_dumpall`):
///   `CREATE`/`DROP`/`ALTER DATABASE`, `COMMENT ON DATABASE`, `CREATE`/`DROP`/`ALTER
///   ROLE|USER`, and the `\\connect`, `\\restrict` and `\\unrestrict` lines — replayed, they
///   would drop and replace the real database of that name (as `pg_restore` without
///   `--create` leaves them out).
///
/// Only a whole statement on one line is left out, as pg_dump writes them; a line of a
/// string literal (`'…'`, `E'…'` with backslash escapes), a quoted name, a dollar-quoted
/// function body (`$tag$…$tag$`), a comment or `COPY … FROM stdin` data that reads like
/// one is data, and kept.
struct OwnershipFilter {
    in_copy: bool,
    lex: PgLex,
    /// Code has come since the last `;`: the next line goes on with that statement.
    mid_statement: bool,
    /// `standard_conforming_strings` (pg_dump sets it on): off, `'…'` takes backslash
    /// escapes too.
    standard_strings: bool,
}

impl Default for OwnershipFilter {
    fn default() -> OwnershipFilter {
        OwnershipFilter {
            in_copy: false,
            lex: PgLex::Code,
            mid_statement: false,
            standard_strings: true,
        }
    }
}

/// Where a PostgreSQL lexer is, between lines.
#[derive(Debug, Clone, PartialEq)]
enum PgLex {
    Code,
    /// `'…'`; true: backslash escapes (`E'…'`, or standard_conforming_strings off).
    Single(bool),
    /// `"…"`.
    Double,
    /// `$tag$…$tag$` (the bytes are the whole `$tag$`).
    Dollar(Vec<u8>),
    /// `/* … */`, which nest.
    Block(u32),
    /// `--` to the end of the line.
    LineComment,
}

fn is_pg_ident(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'$' || b >= 0x80
}

impl OwnershipFilter {
    fn keep(&mut self, piece: &[u8], start: bool) -> bool {
        if self.in_copy {
            if start && piece.trim_ascii_end() == b"\\." {
                self.in_copy = false;
            }
            return true;
        }
        let line = piece.trim_ascii_end();
        // The whole line is in this piece and begins a statement.
        let begins = start
            && (piece.ends_with(b"\n") || (piece.len() as u64) < MAX_LINE)
            && self.lex == PgLex::Code
            && !self.mid_statement;
        if begins && line.starts_with(b"\\") {
            // A psql meta-command takes the whole line.
            return !(line.starts_with(b"\\connect ")
                || line.starts_with(b"\\c ")
                || line.starts_with(b"\\restrict")
                || line.starts_with(b"\\unrestrict"));
        }
        self.lex(piece);
        // …and the statement it begins ends with it.
        if !begins || self.lex != PgLex::Code || self.mid_statement {
            return true;
        }
        if line.starts_with(b"COPY ") && line.ends_with(b"FROM stdin;") {
            self.in_copy = true;
            return true;
        }
        if let Some(value) = line.strip_prefix(b"SET standard_conforming_strings = ") {
            self.standard_strings = value != b"off;";
        }
        let owner = line.starts_with(b"ALTER ") && contains(line, b" OWNER TO ");
        let privilege = line.starts_with(b"GRANT ")
            || line.starts_with(b"REVOKE ")
            || line.starts_with(b"ALTER DEFAULT PRIVILEGES ");
        let cluster_level = [
            &b"CREATE DATABASE "[..],
            b"DROP DATABASE ",
            b"ALTER DATABASE ",
            b"COMMENT ON DATABASE ",
            b"CREATE ROLE ",
            b"DROP ROLE ",
            b"ALTER ROLE ",
            b"CREATE USER ",
            b"DROP USER ",
            b"ALTER USER ",
        ]
        .iter()
        .any(|p| line.starts_with(p));
        !(owner || privilege || cluster_level)
    }

    /// Follow quotes, comments and statement ends through a piece of the script.
    fn lex(&mut self, piece: &[u8]) {
        let mut i = 0;
        while i < piece.len() {
            let b = piece[i];
            match &mut self.lex {
                PgLex::Single(backslash) => {
                    if *backslash && b == b'\\' {
                        i += 2;
                        continue;
                    }
                    if b == b'\'' {
                        if piece.get(i + 1) == Some(&b'\'') {
                            i += 2;
                            continue;
                        }
                        self.lex = PgLex::Code;
                    }
                }
                PgLex::Double => {
                    if b == b'"' {
                        self.lex = PgLex::Code;
                    }
                }
                PgLex::Dollar(tag) => {
                    if b == b'$' && piece[i..].starts_with(tag) {
                        i += tag.len();
                        self.lex = PgLex::Code;
                        continue;
                    }
                }
                PgLex::Block(depth) => {
                    if piece[i..].starts_with(b"/*") {
                        *depth += 1;
                        i += 2;
                        continue;
                    }
                    if piece[i..].starts_with(b"*/") {
                        *depth -= 1;
                        if *depth == 0 {
                            self.lex = PgLex::Code;
                        }
                        i += 2;
                        continue;
                    }
                }
                PgLex::LineComment => {
                    if b == b'\n' {
                        self.lex = PgLex::Code;
                    }
                }
                PgLex::Code => {
                    let after_ident = i > 0 && is_pg_ident(piece[i - 1]);
                    match b {
                        b'\'' => {
                            // E'…': the E is a word of its own.
                            let escape = i > 0
                                && matches!(piece[i - 1], b'E' | b'e')
                                && !(i > 1 && is_pg_ident(piece[i - 2]));
                            self.lex = PgLex::Single(escape || !self.standard_strings);
                            self.mid_statement = true;
                        }
                        b'"' => {
                            self.lex = PgLex::Double;
                            self.mid_statement = true;
                        }
                        b'$' if !after_ident => {
                            let tag_len = piece[i + 1..]
                                .iter()
                                .take_while(|&&c| is_pg_ident(c) && c != b'$')
                                .count();
                            let tag_ok = piece[i + 1..].first().is_none_or(|c| !c.is_ascii_digit());
                            if tag_ok && piece.get(i + 1 + tag_len) == Some(&b'$') {
                                let tag = piece[i..i + tag_len + 2].to_vec();
                                i += tag.len();
                                self.lex = PgLex::Dollar(tag);
                                self.mid_statement = true;
                                continue;
                            }
                            self.mid_statement = true;
                        }
                        b'-' if piece.get(i + 1) == Some(&b'-') => {
                            self.lex = PgLex::LineComment;
                            i += 2;
                            continue;
                        }
                        b'/' if piece.get(i + 1) == Some(&b'*') => {
                            self.lex = PgLex::Block(1);
                            i += 2;
                            continue;
                        }
                        b';' => self.mid_statement = false,
                        _ if b.is_ascii_whitespace() => {}
                        _ => self.mid_statement = true,
                    }
                }
            }
            i += 1;
        }
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
    fn the_footer_must_be_followed_by_nothing_but_blank_lines_and_comments() {
        let ends = |dialect: Dialect, lines: &[&str]| {
            let mut scan = Scan::default();
            for l in lines {
                scan.footer_line(l, dialect);
            }
            scan.ends_with_footer
        };
        assert!(ends(
            Dialect::Postgres,
            &[PG_FOOTER, "--", "", "\\unrestrict abc", ""]
        ));
        assert!(!ends(Dialect::Postgres, &[PG_FOOTER, "COPY t FROM stdin;"]));
        assert!(!ends(
            Dialect::Mysql,
            &["-- Dump completed on x", "INSERT INTO t"]
        ));
        assert!(ends(
            Dialect::Mysql,
            &["INSERT INTO t", "-- Dump completed on x"]
        ));
        assert!(
            !ends(Dialect::Mysql, &["-- Dump completed", "\\unrestrict k"]),
            "\\unrestrict is pg_dump's"
        );
        assert!(!ends(
            Dialect::Sqlite,
            &["COMMIT;", "INSERT INTO t VALUES(1);"]
        ));
        assert!(!ends(Dialect::Postgres, &[]));
    }

    #[test]
    fn lines_that_start_statements() {
        for yes in [
            "SELECT 1;",
            "insert into t values (1);",
            "CREATE TABLE t(a)",
            "set x = 1;",
        ] {
            assert!(starts_statement(yes.as_bytes()), "{yes}");
        }
        assert!(starts_statement(b"/*!40101 SET NAMES utf8 */;"));
        for no in [
            "pg_dump: error: connection failed",
            "mysqldump: Got error",
            "SETTINGS",
            "Is the server running?",
        ] {
            assert!(!starts_statement(no.as_bytes()), "{no}");
        }
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
    fn error_messages_do_not_quote_the_dump() {
        assert_eq!(
            without_content("near \"'s3cret'\": syntax error"),
            "near \"…\": syntax error"
        );
        assert_eq!(
            without_content("no such table: users"),
            "no such table: users"
        );
        assert_eq!(without_content("open 'quote"), "open '…");
        let psql = "psql:<stdin>:27: ERROR:  invalid input syntax for type integer: \"s3cret\"\n\
                    LINE 1: INSERT INTO t VALUES ('s3cret');\n\
                    \x20                             ^\n\
                    DETAIL:  Key (email)=(bob@example.com) already exists.\n\
                    CONTEXT:  COPY users, line 1: \"1\tbob@example.com\"\n";
        let shown = psql_errors(psql);
        assert_eq!(
            shown,
            "psql:<stdin>:27: ERROR:  invalid input syntax for type integer: \"…\""
        );
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

    #[test]
    fn ownership_filter_spares_quoted_text() {
        let kept = |script: &str| {
            let mut f = OwnershipFilter::default();
            script
                .split_inclusive('\n')
                .filter(|l| f.keep(l.as_bytes(), true))
                .collect::<String>()
        };
        // A value over lines, as pg_dump --inserts writes it.
        let insert = "INSERT INTO public.notes VALUES (1, 'Changelog:\nGRANT access to the reports page');\n";
        assert_eq!(kept(insert), insert);
        let escaped =
            "INSERT INTO public.notes VALUES (2, E'it\\'s\nREVOKE ALL ON x FROM y;\n');\n";
        assert_eq!(kept(escaped), escaped);
        let doubled =
            "INSERT INTO public.notes VALUES (3, 'it''s\nALTER TABLE t OWNER TO x;\n');\n";
        assert_eq!(kept(doubled), doubled);
        let body = "CREATE FUNCTION public.f() RETURNS void\n    LANGUAGE plpgsql\n    AS $_$\nBEGIN\n\
                    GRANT SELECT ON public.t TO reporting;\nEND\n$_$;\n";
        assert_eq!(kept(body), body);
        let name = "CREATE TABLE public.\"odd\nGRANT x;\" (a int);\n";
        assert_eq!(kept(name), name);
        let comment = "/* a comment\nGRANT ALL ON t TO x;\n*/\nSELECT 1;\n";
        assert_eq!(kept(comment), comment);
        // What pg_dump writes between them is still left out.
        let script = format!(
            "{insert}ALTER TABLE public.notes OWNER TO alice;\n{body}GRANT ALL ON TABLE public.notes TO bob;\n"
        );
        assert_eq!(kept(&script), format!("{insert}{body}"));
        // A statement over lines that starts like one is not left out halfway.
        let split = "GRANT SELECT\n  ON t TO x;\n";
        assert_eq!(kept(split), split);
    }
}
