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
use std::collections::VecDeque;
use std::ffi::CString;
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
    conn.execute_batch("PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF;")
        .map_err(|e| RestoreError::Skipped(format!("cannot set up the scratch database: {e}")))?;
    let mut statement: Vec<u8> = Vec::new();
    let mut statements = 0u64;
    let scan = scan(sandbox, stream, |piece, _| {
        statement.extend_from_slice(piece);
        if statement.len() > MAX_STATEMENT {
            return Err(RestoreError::Failed(format!(
                "a statement is longer than {} MiB",
                MAX_STATEMENT >> 20
            )));
        }
        if piece.trim_ascii_end().ends_with(b";") && is_complete(&statement)? {
            let sql = String::from_utf8_lossy(&statement);
            conn.execute_batch(&sql).map_err(|e| {
                RestoreError::Failed(format!(
                    "replaying statement {} failed: {e}",
                    statements + 1
                ))
            })?;
            statements += 1;
            statement.clear();
        }
        Ok(())
    })?;
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
