//! MySQL/MariaDB dumps (`mysqldump`, `mariadb-dump`) replayed into a scratch database on
//! `restore.mysql_url`, created and dropped by the test, as plain PostgreSQL dumps are
//! replayed on `restore.postgres_url`.
//!
//! Scratch databases are named `bm_restore_<host hash>_<pid>_<n>`; those of this host
//! whose run is gone (killed) are dropped by the next run. The dump is fed to the
//! `mariadb` (or `mysql`) client with `--binary-mode` (no client commands: no `\!`,
//! `system`, `source`), read on the way as the client and the server read it
//! ([`Filter`]): statements that reach beyond the scratch database — other databases
//! (`USE`, `CREATE DATABASE`), files (`LOAD DATA`, `INTO OUTFILE`), the server's
//! configuration and accounts (`SET GLOBAL`, `GRANT`, `CREATE USER`, …) — are refused
//! before they are sent, and `DEFINER=…` clauses are left out. An account that may only
//! create and drop `bm_restore_%` databases is the guard that holds whatever the dump
//! hides; a run whose account may do more says so once.
//!
//! At the time limit the client is killed and the sessions still running in the scratch
//! database are ended before it is dropped. Errors are shown without the statement the
//! client echoes and without the values they quote. The password reaches the client
//! only through `MYSQL_PWD` in its environment.

use super::postgres::{Deadline, Watched, run, scratch_prefix};
use super::sandbox::Sandbox;
use super::{Notes, RestoreError};
use std::borrow::Cow;
use std::io::{self, Read, Write};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

/// Where and as whom to connect; the password is kept apart from everything shown.
#[derive(Clone)]
struct Server {
    host: String,
    port: u16,
    user: String,
    password: Option<String>,
}

impl Server {
    fn parse(url: &str) -> Result<Server, RestoreError> {
        let unusable = |why: &str| {
            RestoreError::Skipped(format!(
                "restore.mysql_url cannot be used: {why} (the value is not shown: it may hold a password)"
            ))
        };
        let parsed = url::Url::parse(url).map_err(|_| unusable("not a URL"))?;
        if !matches!(parsed.scheme(), "mysql" | "mariadb") {
            return Err(unusable("write mysql://user@host:port"));
        }
        let decode = |s: &str| {
            percent_encoding::percent_decode_str(s)
                .decode_utf8()
                .map(|c| c.into_owned())
                .map_err(|_| unusable("a user or password that is not UTF-8"))
        };
        Ok(Server {
            host: parsed.host_str().unwrap_or("127.0.0.1").to_string(),
            port: parsed.port().unwrap_or(3306),
            user: decode(parsed.username())?,
            password: parsed.password().map(decode).transpose()?,
        })
    }

    /// The client, connected by TCP, reading no option files, with the password only in
    /// its environment.
    fn client(&self) -> Result<Command, RestoreError> {
        let program = ["mariadb", "mysql"]
            .into_iter()
            .find(|p| super::postgres::find_tool(p).is_some())
            .ok_or_else(|| {
                RestoreError::Skipped(
                    "restore.mysql_url is set, but no mariadb or mysql client is installed (Debian package mariadb-client)".into(),
                )
            })?;
        let mut cmd = Command::new(program);
        cmd.arg("--no-defaults")
            .args(["--protocol=tcp", "--batch", "--skip-column-names"])
            .args(["--binary-mode", "--local-infile=0", "--connect-timeout=10"])
            .arg(format!("--host={}", self.host))
            .arg(format!("--port={}", self.port))
            .arg(format!("--user={}", self.user))
            .env_remove("MYSQL_PWD");
        if let Some(p) = &self.password {
            cmd.env("MYSQL_PWD", p);
        }
        Ok(cmd)
    }

    /// Where the server is and as whom, for messages: `user@host:port`, no password.
    fn shown(&self) -> String {
        format!("{}@{}:{}", self.user, self.host, self.port)
    }

    /// Run one SQL text (ours, never the dump's) and return its output lines.
    fn query(&self, sql: &str, deadline: Deadline) -> Result<Vec<String>, RestoreError> {
        let out = run(self.client()?.arg("-e").arg(sql), deadline)?;
        if !out.status.success() {
            let message = client_error(&String::from_utf8_lossy(&out.stderr));
            let shown = super::postgres::shorten(&message);
            let why = match error_code(&message) {
                // The client's own errors (CR_…): no connection.
                Some(2000..=2999) => format!(
                    "cannot reach the server of restore.mysql_url at {}:{}: {shown}",
                    self.host, self.port
                ),
                Some(1045) => format!(
                    "the server of restore.mysql_url ({}) refused the login (user or password wrong): {shown}",
                    self.shown()
                ),
                _ => format!(
                    "the server of restore.mysql_url ({}) refused a scratch-database command: {shown}",
                    self.shown()
                ),
            };
            return Err(RestoreError::Skipped(why));
        }
        Ok(String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| l.trim().to_string())
            .filter(|l| !l.is_empty())
            .collect())
    }
}

/// The mariadb client's error output without the statement it echoes before its error
/// (`--------------`, the statement, `--------------`: `print-query-on-error`, on by
/// default in batch mode since MariaDB 10.11), which for a dump is backup content.
fn client_error(stderr: &str) -> String {
    let mut rest = stderr;
    if let Some(at) = stderr.rfind("\n--------------\n") {
        rest = &stderr[at + "\n--------------\n".len()..];
    } else if let Some(after) = stderr.strip_prefix("--------------\n") {
        rest = after;
    }
    rest.trim().to_string()
}

/// `nnnn` of an `ERROR nnnn (…)` message.
fn error_code(message: &str) -> Option<u32> {
    let rest = message.trim_start().strip_prefix("ERROR ")?;
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

/// A replay's error (`ERROR 1062 (23000) at line 12: Duplicate entry '…' for key
/// 'PRIMARY'`) with what it quotes of the dump left out: the duplicate value of a key,
/// the text near a syntax error, a value that does not fit its column. A quoted value
/// may itself hold quotes, so everything from the first quote to the last is left out
/// (a duplicate key's name is kept).
fn replay_error(stderr: &str) -> String {
    let message = client_error(stderr);
    const DUPLICATE: &str = "Duplicate entry '";
    const KEY: &str = "' for key ";
    if let Some(from) = message.find(DUPLICATE)
        && let Some(to) = message.rfind(KEY)
        && to >= from + DUPLICATE.len()
    {
        return format!("{}…{}", &message[..from + DUPLICATE.len()], &message[to..]);
    }
    let quote = |c: char| c == '\'' || c == '"';
    match (message.find(quote), message.rfind(quote)) {
        (Some(first), Some(last)) if last > first => {
            format!("{}…{}", &message[..=first], &message[last..])
        }
        (Some(first), _) => format!("{}…", &message[..=first]),
        _ => message,
    }
}

/// Keep the last 64 KiB of a child's stderr (the error comes last, after the statement
/// the client echoes, which may be longer than that), on a thread.
fn collect_stderr_tail(
    stderr: Option<std::process::ChildStderr>,
) -> std::thread::JoinHandle<String> {
    const KEEP: usize = 64 << 10;
    std::thread::spawn(move || {
        let mut kept: Vec<u8> = Vec::new();
        if let Some(mut s) = stderr {
            let mut buf = [0u8; 8192];
            loop {
                match s.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => {
                        kept.extend_from_slice(&buf[..n]);
                        if kept.len() > 2 * KEEP {
                            kept.drain(..kept.len() - KEEP);
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(_) => break,
                }
            }
        }
        if kept.len() > KEEP {
            kept.drain(..kept.len() - KEEP);
        }
        String::from_utf8_lossy(&kept).into_owned()
    })
}

/// A scratch database, dropped when this goes out of scope.
struct ScratchDb {
    server: Server,
    name: String,
    /// The replay ended and was counted: no session of it can still be running.
    finished: bool,
}

impl ScratchDb {
    fn create(server: &Server, deadline: Deadline) -> Result<ScratchDb, RestoreError> {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        static ONCE: std::sync::Once = std::sync::Once::new();
        let name = format!(
            "{}{}_{}",
            scratch_prefix(),
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        server.query(
            &format!("DROP DATABASE IF EXISTS `{name}`; CREATE DATABASE `{name}`"),
            deadline,
        )?;
        let db = ScratchDb {
            server: server.clone(),
            name,
            finished: false,
        };
        // Once the server is known to answer.
        ONCE.call_once(|| {
            drop_leftovers(server);
            warn_if_privileged(server);
        });
        Ok(db)
    }

    /// Tables of the scratch database, and their rows counted exactly (up to 1000
    /// tables; more are counted as tables only).
    fn contents(&self, deadline: Deadline) -> Result<(Vec<String>, Option<u64>), RestoreError> {
        let tables = self.server.query(
            &format!(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = '{}' AND table_type = 'BASE TABLE' ORDER BY 1",
                self.name
            ),
            deadline,
        )?;
        if tables.is_empty() || tables.len() > 1000 {
            let rows = tables.is_empty().then_some(0);
            return Ok((tables, rows));
        }
        let sum = tables
            .iter()
            .map(|t| {
                format!(
                    "(SELECT COUNT(*) FROM `{}`.`{}`)",
                    self.name,
                    t.replace('`', "``")
                )
            })
            .collect::<Vec<_>>()
            .join(" + ");
        let rows = self
            .server
            .query(&format!("SELECT {sum}"), deadline)?
            .first()
            .and_then(|r| r.parse::<u64>().ok());
        Ok((tables, rows))
    }

    /// End the sessions still working in the scratch database — the client killed at the
    /// time limit leaves its statement running on the server, and `DROP DATABASE` would
    /// wait for it: those whose default database it is, and our own queries that name it.
    fn stop_sessions(&self, deadline: Deadline) -> Result<(), RestoreError> {
        let ids = self.server.query(
            &format!(
                "SELECT ID FROM information_schema.PROCESSLIST WHERE ID <> CONNECTION_ID() \
                 AND (DB = '{0}' OR LOCATE('`{0}`', INFO) > 0)",
                self.name
            ),
            deadline,
        )?;
        for id in ids.iter().filter_map(|id| id.parse::<u64>().ok()) {
            // One that ended meanwhile is an unknown thread: nothing to do.
            let _ = self
                .server
                .query(&format!("KILL CONNECTION {id}"), deadline);
        }
        Ok(())
    }
}

impl Drop for ScratchDb {
    fn drop(&mut self) {
        // One time limit for all of it, and one warning: a failure to stop the sessions
        // shows in the drop's.
        let deadline = Deadline::admin();
        if !self.finished {
            let _ = self.stop_sessions(deadline);
        }
        let sql = format!("DROP DATABASE IF EXISTS `{}`", self.name);
        if let Err(e) = self.server.query(&sql, deadline) {
            tracing::warn!(
                "cannot drop the scratch database {}: {}; the next run drops it",
                self.name,
                housekeeping(e)
            );
        }
    }
}

/// Why housekeeping on the scratch server failed: its own time limit is not the test's.
fn housekeeping(e: RestoreError) -> String {
    match e {
        RestoreError::TimeLimit { seconds } => format!(
            "the server did not answer within {seconds} s, the time cleaning up after a test may take"
        ),
        e => e.to_string(),
    }
}

/// Drop this host's scratch databases whose run is gone.
fn drop_leftovers(server: &Server) {
    let prefix = scratch_prefix();
    let like = prefix.replace('_', "\\_");
    let names = match server.query(&format!("SHOW DATABASES LIKE '{like}%'"), Deadline::admin()) {
        Ok(names) => names,
        Err(e) => {
            tracing::warn!(
                "cannot look for leftover scratch databases: {}",
                housekeeping(e)
            );
            return;
        }
    };
    for name in names {
        let pid = name
            .strip_prefix(&prefix)
            .and_then(|rest| rest.split('_').next())
            .and_then(|pid| pid.parse::<u32>().ok());
        let Some(pid) = pid.filter(|&p| !super::sandbox::process_alive(p)) else {
            continue;
        };
        match server.query(
            &format!("DROP DATABASE IF EXISTS `{name}`"),
            Deadline::admin(),
        ) {
            Ok(_) => tracing::info!(
                "dropped the scratch database {name}, left behind by run {pid}, which is no longer running"
            ),
            Err(e) => tracing::warn!(
                "cannot drop the leftover scratch database {name}: {}",
                housekeeping(e)
            ),
        }
    }
}

/// Said once per run: a dump's SQL runs with the rights of `mysql_url`'s account. The
/// statements that reach beyond the scratch database are refused line by line, but what
/// a hostile dump hides from that check (a table of another database named in an
/// `INSERT`, a routine that runs later) is only stopped by an account that may not do
/// it: one with rights on `bm\_restore\_%` databases and nothing more.
fn warn_if_privileged(server: &Server) {
    let Ok(grants) = server.query("SHOW GRANTS", Deadline::admin()) else {
        return;
    };
    let (global, databases) = beyond_scratch(&grants);
    let mut what = Vec::new();
    if !global.is_empty() {
        what.push(format!("global privileges ({})", global.join(", ")));
    }
    if !databases.is_empty() {
        what.push(format!(
            "rights on other databases ({})",
            databases.join(", ")
        ));
    }
    if !what.is_empty() {
        tracing::warn!(
            "restore.mysql_url ({}) connects as an account with {}: a hostile dump replayed there could change other databases or the server; use an account with rights only on `bm\\_restore\\_%` databases (see docs/restore.md)",
            server.shown(),
            what.join(" and ")
        );
    }
}

/// From `SHOW GRANTS` (as the client prints it in batch mode), the global privileges
/// other than USAGE and the databases other than scratch ones that the account has
/// rights on. Nothing else of a line is kept (it may hold a password hash).
fn beyond_scratch(grants: &[String]) -> (Vec<String>, Vec<String>) {
    let mut global = Vec::new();
    let mut databases = Vec::new();
    for line in grants {
        let Some(rest) = line.strip_prefix("GRANT ") else {
            continue;
        };
        let (Some(on), Some(to)) = (rest.find(" ON "), rest.find(" TO ")) else {
            continue;
        };
        if to < on {
            continue;
        }
        let privileges = &rest[..on];
        let target = rest[on + 4..to].trim();
        if privileges == "USAGE" || privileges.starts_with("PROXY") {
            continue;
        }
        let target = target
            .trim_start_matches("FUNCTION ")
            .trim_start_matches("PROCEDURE ")
            .trim_start_matches("PACKAGE BODY ")
            .trim_start_matches("PACKAGE ");
        if target == "*.*" || target == "*" {
            global.push(privileges.to_string());
            continue;
        }
        let database = target
            .split_once("`.")
            .map_or(target, |(db, _)| db)
            .trim_matches('`')
            .replace('\\', "");
        if !database.starts_with("bm_restore_") && !databases.contains(&database) {
            databases.push(database);
        }
    }
    (global, databases)
}

/// Statement starts that reach beyond the scratch database (compared upper-case, with
/// comments and version-comment markers `/*!NNNNN` taken out and whitespace runs as one
/// space; a start that ends with a letter must end a word there).
const REFUSED_STARTS: &[&str] = &[
    "USE",
    "CREATE DATABASE",
    "CREATE SCHEMA",
    "DROP DATABASE",
    "DROP SCHEMA",
    "ALTER DATABASE",
    "ALTER SCHEMA",
    "LOAD DATA",
    "LOAD XML",
    "SET GLOBAL",
    "SET @@GLOBAL",
    "SET PERSIST",
    "SET PERSIST_ONLY",
    "SET @@PERSIST",
    "SET @@PERSIST_ONLY",
    "SET PASSWORD",
    "GRANT",
    "REVOKE",
    "CREATE USER",
    "DROP USER",
    "ALTER USER",
    "RENAME USER",
    "CREATE ROLE",
    "DROP ROLE",
    "SET ROLE",
    "SET DEFAULT ROLE",
    "INSTALL",
    "UNINSTALL",
    "SHUTDOWN",
    "KILL",
    "FLUSH",
    "CREATE SERVER",
    "ALTER SERVER",
    "CHANGE MASTER",
    "CHANGE REPLICATION",
    "START SLAVE",
    "START REPLICA",
    "RESET MASTER",
    "PURGE",
    "SYSTEM",
    "SOURCE",
    "CONNECT",
];
/// Words that set a server-wide variable anywhere in a `SET` statement
/// (`SET a = 1, GLOBAL b = 2`).
const GLOBAL_SCOPES: &[&str] = &[
    "GLOBAL",
    "@@GLOBAL",
    "PERSIST",
    "@@PERSIST",
    "PERSIST_ONLY",
    "@@PERSIST_ONLY",
];
/// Objects that `CREATE`/`ALTER` name after their `DEFINER=…` clause.
const DEFINED_OBJECTS: &[&str] = &[
    "VIEW",
    "TRIGGER",
    "PROCEDURE",
    "FUNCTION",
    "EVENT",
    "PACKAGE",
];
/// How much of a statement's start is kept to judge it.
const HEAD: usize = 80;

/// Why a dump is not replayed: it reaches beyond the scratch database.
#[derive(Debug, Clone, PartialEq)]
enum Refusal {
    /// A statement that starts with these words (`USE`, `GRANT`, …).
    Statement(&'static str),
    /// `INTO OUTFILE` or `INTO DUMPFILE` outside quotes: a file written on the server.
    WritesFile(&'static str),
    /// `SONAME` outside quotes: a library loaded into the server.
    Library,
    /// A backslash that starts a statement: a command of the mariadb client (`\!`).
    ClientCommand(char),
}

impl Refusal {
    fn message(&self) -> String {
        let what = match self {
            Refusal::Statement(s) => format!(
                "{} {s} statement, which reaches beyond the database it restores (other databases, files or the server's settings)",
                article(s)
            ),
            Refusal::WritesFile(s) => {
                format!("an {s} clause, which writes a file on the database server")
            }
            Refusal::Library => {
                "a SONAME clause, which loads a library into the database server".into()
            }
            Refusal::ClientCommand(c) => format!(
                "the mariadb client command \\{c}{}, which a dump has no use for",
                match c {
                    '!' => " (system: runs a shell command)",
                    '.' => " (source: reads a file)",
                    'u' => " (use: switches to another database)",
                    'r' => " (connect)",
                    'T' => " (tee: writes a file)",
                    'C' => " (charset)",
                    'd' => " (delimiter)",
                    _ => "",
                }
            ),
        };
        format!("the dump has {what}: not replayed")
    }
}

/// "a" or "an" before a keyword read as a word (`an ALTER`, `a USE`, `an UNINSTALL`).
fn article(word: &str) -> &'static str {
    let vowel = word.starts_with(['A', 'E', 'I', 'O'])
        || (word.starts_with('U') && !word.starts_with("USE"));
    if vowel { "an" } else { "a" }
}

/// Where the lexer is.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Lex {
    Code,
    /// Inside `'…'`, `"…"` or `` `…` `` (the byte is the quote).
    Quoted(u8),
    /// Just after a backslash inside `'…'` or `"…"`.
    Escaped(u8),
    /// `-- ` or `#` to the end of the line.
    LineComment,
    /// `/* … */` (not an executable `/*! … */`).
    BlockComment,
}

/// What is known of the statement being read.
#[derive(Debug, Default)]
struct Statement {
    /// Its first [`HEAD`] bytes of code, upper-case, comments and version-comment markers
    /// left out, whitespace runs as one space.
    head: String,
    words: usize,
    first: String,
    /// `CREATE`/`ALTER` of a view, trigger, routine or event, whose object keyword has
    /// not come yet: a `DEFINER=` here is left out.
    definer_allowed: bool,
    /// The last word was `INTO`.
    after_into: bool,
}

/// A MySQL/MariaDB dump as the client and the server read it, piece by piece: quotes
/// (`'…'`, `"…"` with backslash escapes, `` `…` `` without), comments (`-- `, `#`,
/// `/* */`), version comments (`/*!NNNNN … */`, whose content is run) and the client's
/// `DELIMITER` — all of which may span lines. It refuses what reaches beyond the
/// scratch database, and leaves out `DEFINER=…` clauses: the production accounts they
/// name need not exist on the scratch server, and only an account with SUPER (or SET
/// USER) may name another (as owners and grants are left out of PostgreSQL dumps).
/// Nothing inside quotes is looked at or changed.
struct Filter {
    lex: Lex,
    /// Inside `/*! … */` or `/*M! … */`, whose `*/` ends it.
    version_comment: bool,
    /// The client's statement delimiter (`DELIMITER ;;`); `;` ends a statement too.
    delimiter: Vec<u8>,
    stmt: Statement,
    /// The word being read (upper-case, its first bytes), where it started in this
    /// piece (None: in an earlier one) and the head's length before it.
    word: String,
    word_start: Option<usize>,
    head_before_word: usize,
    in_word: bool,
}

impl Default for Filter {
    fn default() -> Filter {
        Filter {
            lex: Lex::Code,
            version_comment: false,
            delimiter: b";".to_vec(),
            stmt: Statement::default(),
            word: String::new(),
            word_start: None,
            head_before_word: 0,
            in_word: false,
        }
    }
}

fn is_word_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'_' | b'$' | b'@') || b >= 0x80
}

impl Filter {
    /// The piece as it is to be sent (`DEFINER=…` clauses left out), or why the dump is
    /// refused.
    fn piece<'a>(&mut self, piece: &'a [u8]) -> Result<Cow<'a, [u8]>, Refusal> {
        let mut kept: Option<Vec<u8>> = None;
        let mut copied = 0;
        let mut i = 0;
        // A word that goes on from the last piece started there.
        self.word_start = None;
        while i < piece.len() {
            let b = piece[i];
            match self.lex {
                Lex::Quoted(q) => {
                    if b == q {
                        self.lex = Lex::Code;
                    } else if b == b'\\' && q != b'`' {
                        self.lex = Lex::Escaped(q);
                    }
                    i += 1;
                    continue;
                }
                Lex::Escaped(q) => {
                    self.lex = Lex::Quoted(q);
                    i += 1;
                    continue;
                }
                Lex::LineComment => {
                    if b == b'\n' {
                        self.lex = Lex::Code;
                        self.space();
                    }
                    i += 1;
                    continue;
                }
                Lex::BlockComment => {
                    if piece[i..].starts_with(b"*/") {
                        self.lex = Lex::Code;
                        self.space();
                        i += 2;
                    } else {
                        i += 1;
                    }
                    continue;
                }
                Lex::Code => {}
            }
            let delimiter = self.at_delimiter(&piece[i..]);
            if is_word_byte(b) && !delimiter {
                if !self.in_word {
                    if self.stmt.head.is_empty()
                        && let Some((delimiter, len)) = delimiter_command(&piece[i..])
                    {
                        // `DELIMITER x`, the client's command, to the end of the line.
                        self.delimiter = delimiter;
                        i += len;
                        continue;
                    }
                    self.in_word = true;
                    self.word.clear();
                    self.word_start = Some(i);
                    self.head_before_word = self.stmt.head.len();
                }
                if self.word.len() < 32 {
                    self.word.push(b.to_ascii_uppercase() as char);
                }
                self.push_head(b);
                i += 1;
                continue;
            }
            if self.in_word
                && let Some(end) = self.end_word(piece, i)?
            {
                // A DEFINER clause, left out.
                let from = self.word_start.unwrap_or(i);
                let out = kept.get_or_insert_with(|| Vec::with_capacity(piece.len()));
                out.extend_from_slice(&piece[copied..from]);
                copied = end;
                i = end;
                continue;
            }
            if delimiter || b == b';' {
                self.judge()?;
                self.stmt = Statement::default();
                i += if delimiter { self.delimiter.len() } else { 1 };
                continue;
            }
            match b {
                b'\'' | b'"' | b'`' => {
                    self.lex = Lex::Quoted(b);
                    self.punctuation(b);
                }
                b'#' => self.lex = Lex::LineComment,
                b'-' if piece[i..].starts_with(b"--")
                    && piece
                        .get(i + 2)
                        .is_none_or(|c| c.is_ascii_whitespace() || c.is_ascii_control()) =>
                {
                    self.lex = Lex::LineComment;
                }
                b'/' if piece[i..].starts_with(b"/*") => {
                    let rest = &piece[i + 2..];
                    let marker = if rest.starts_with(b"!") {
                        1
                    } else if rest.starts_with(b"M!") {
                        2
                    } else {
                        0
                    };
                    if marker == 0 {
                        self.lex = Lex::BlockComment;
                        i += 2;
                    } else {
                        // An executable comment: what it holds is run, so read on.
                        let digits = rest[marker..]
                            .iter()
                            .take_while(|c| c.is_ascii_digit())
                            .count();
                        self.version_comment = true;
                        self.space();
                        i += 2 + marker + digits;
                    }
                    continue;
                }
                b'*' if self.version_comment && piece[i..].starts_with(b"*/") => {
                    self.version_comment = false;
                    self.space();
                    i += 2;
                    continue;
                }
                b'\\' if self.stmt.head.is_empty() && piece.get(i + 1) == Some(&b'-') => {
                    // `\-`, sandbox mode, which mariadb-dump (10.11.8 and later) writes
                    // first as `/*M!999999\- enable the sandbox mode */`: the client then
                    // refuses its other commands. Its words run to the comment's end.
                    let end = if self.version_comment {
                        b"*/".as_slice()
                    } else {
                        b"\n"
                    };
                    i += piece[i..]
                        .windows(end.len())
                        .position(|w| w == end)
                        .unwrap_or(piece.len() - i);
                    continue;
                }
                b'\\' if self.stmt.head.is_empty() => {
                    let c = piece.get(i + 1).map_or(' ', |&c| c as char);
                    return Err(Refusal::ClientCommand(if c.is_ascii_graphic() {
                        c
                    } else {
                        ' '
                    }));
                }
                _ if b.is_ascii_whitespace() => self.space(),
                _ => self.punctuation(b),
            }
            i += 1;
        }
        // What a piece holds of a statement is judged before it is sent: the client runs
        // a statement left without its delimiter when its input ends.
        self.judge()?;
        Ok(match kept {
            Some(mut out) => {
                out.extend_from_slice(&piece[copied..]);
                Cow::Owned(out)
            }
            None => Cow::Borrowed(piece),
        })
    }

    /// The end of the dump: its last word is judged too.
    fn finish(&mut self) -> Result<(), Refusal> {
        if self.in_word {
            self.in_word = false;
            self.word_done()?;
        }
        self.judge()
    }

    /// Whether `rest` starts with the client's delimiter when it is not `;` (which always
    /// ends a statement here).
    fn at_delimiter(&self, rest: &[u8]) -> bool {
        self.delimiter != b";" && !self.delimiter.is_empty() && rest.starts_with(&self.delimiter)
    }

    fn push_head(&mut self, b: u8) {
        if self.stmt.head.len() < HEAD {
            self.stmt.head.push(b.to_ascii_uppercase() as char);
        }
    }

    /// Whitespace, a comment or a version-comment marker: one space in the head.
    fn space(&mut self) {
        let head = &mut self.stmt.head;
        if !head.is_empty() && !head.ends_with(' ') && head.len() < HEAD {
            head.push(' ');
        }
    }

    /// A byte of code that is neither a word, a space nor a delimiter.
    fn punctuation(&mut self, b: u8) {
        self.push_head(b);
        self.stmt.after_into = false;
    }

    /// A word ended at `piece[at]`: judge it, and if it starts a `DEFINER=…` clause to
    /// leave out, return where the clause ends.
    fn end_word(&mut self, piece: &[u8], at: usize) -> Result<Option<usize>, Refusal> {
        self.in_word = false;
        if self.word == "DEFINER"
            && self.stmt.definer_allowed
            && self.word_start.is_some()
            && let Some(end) = definer_clause_end(piece, at)
        {
            // The clause is gone from what is sent, so from the head too.
            self.stmt.head.truncate(self.head_before_word);
            return Ok(Some(end));
        }
        self.word_done()?;
        Ok(None)
    }

    fn word_done(&mut self) -> Result<(), Refusal> {
        let word = std::mem::take(&mut self.word);
        let stmt = &mut self.stmt;
        stmt.words += 1;
        if stmt.words == 1 {
            stmt.definer_allowed = word == "CREATE" || word == "ALTER";
            stmt.first.clone_from(&word);
        } else if stmt.definer_allowed && DEFINED_OBJECTS.contains(&word.as_str()) {
            stmt.definer_allowed = false;
        }
        let clause = match word.as_str() {
            "OUTFILE" if stmt.after_into => Some(Refusal::WritesFile("INTO OUTFILE")),
            "DUMPFILE" if stmt.after_into => Some(Refusal::WritesFile("INTO DUMPFILE")),
            "SONAME" => Some(Refusal::Library),
            w if stmt.first == "SET" && GLOBAL_SCOPES.contains(&w) => {
                Some(Refusal::Statement("SET GLOBAL"))
            }
            _ => None,
        };
        stmt.after_into = word == "INTO";
        match clause {
            // What the statement starts with says best what it is (`INSTALL SONAME`).
            Some(clause) => self.judge().and(Err(clause)),
            None => Ok(()),
        }
    }

    /// Refuse the statement being read if its start reaches beyond the scratch database.
    /// A piece's end counts as a word's: `USE` split from `R…` between two pieces of a
    /// line longer than a MiB is refused.
    fn judge(&self) -> Result<(), Refusal> {
        let head = self.stmt.head.trim_start();
        let hit = REFUSED_STARTS.iter().find(|s| {
            head.starts_with(*s)
                && !(s.ends_with(|c: char| c.is_ascii_alphanumeric())
                    && head[s.len()..].starts_with(|c: char| is_word_byte(c as u8) && c.is_ascii()))
        });
        match hit {
            Some(s) => Err(Refusal::Statement(s)),
            None => Ok(()),
        }
    }
}

/// `DELIMITER x` at `rest`: the new delimiter and the length of the command (to the
/// end of the line).
fn delimiter_command(rest: &[u8]) -> Option<(Vec<u8>, usize)> {
    const WORD: &[u8] = b"DELIMITER";
    let word = rest.get(..WORD.len())?;
    if !word.eq_ignore_ascii_case(WORD) || !matches!(rest.get(WORD.len()), Some(b' ' | b'\t')) {
        return None;
    }
    let len = rest.iter().position(|&c| c == b'\n').unwrap_or(rest.len());
    let delimiter: Vec<u8> = rest[WORD.len()..len]
        .trim_ascii()
        .iter()
        .take_while(|c| !c.is_ascii_whitespace())
        .copied()
        .collect();
    (!delimiter.is_empty()).then_some((delimiter, len))
}

/// Where a `DEFINER = user` clause that starts at `piece[at]` (just after the word
/// `DEFINER`) ends: `= 'name'@'host'`, `` = `name`@`host` ``, `= name@host`, a role
/// without host, `= CURRENT_USER[()]` or `= CURRENT_ROLE[()]`. None when it is no such
/// clause, or does not end in this piece.
fn definer_clause_end(piece: &[u8], at: usize) -> Option<usize> {
    let skip = |mut j: usize| {
        while piece.get(j).is_some_and(|c| c.is_ascii_whitespace()) {
            j += 1;
        }
        j
    };
    let mut j = skip(at);
    if piece.get(j) != Some(&b'=') {
        return None;
    }
    j = skip(j + 1);
    for current in [&b"CURRENT_USER"[..], b"CURRENT_ROLE"] {
        if piece
            .get(j..j + current.len())
            .is_some_and(|w| w.eq_ignore_ascii_case(current))
            && !piece
                .get(j + current.len())
                .is_some_and(|&c| is_word_byte(c))
        {
            j += current.len();
            let k = skip(j);
            if piece.get(k) == Some(&b'(') {
                let k = skip(k + 1);
                if piece.get(k) == Some(&b')') {
                    return Some(k + 1);
                }
            }
            return Some(j);
        }
    }
    j = account_part_end(piece, j)?;
    let k = skip(j);
    if piece.get(k) == Some(&b'@') {
        j = account_part_end(piece, skip(k + 1))?;
    }
    Some(j)
}

/// Where a user or host name at `piece[at]` ends: quoted (`'…'`, `"…"` with backslash
/// escapes and doubled quotes, `` `…` `` with doubled backquotes) or bare.
fn account_part_end(piece: &[u8], at: usize) -> Option<usize> {
    let first = *piece.get(at)?;
    if matches!(first, b'\'' | b'"' | b'`') {
        let mut j = at + 1;
        loop {
            let c = *piece.get(j)?;
            if c == b'\\' && first != b'`' {
                j += 2;
            } else if c == first {
                if piece.get(j + 1) == Some(&first) {
                    j += 2;
                } else {
                    return Some(j + 1);
                }
            } else {
                j += 1;
            }
        }
    }
    let len = piece[at..]
        .iter()
        .take_while(|&&c| {
            c.is_ascii_alphanumeric() || matches!(c, b'_' | b'$' | b'.' | b'-' | b'%')
        })
        .count();
    (len > 0).then_some(at + len)
}

/// Replay a MySQL/MariaDB dump into a fresh scratch database on `url`.
pub fn replay(sandbox: &Sandbox, stream: &mut dyn Read, url: &str) -> Result<Notes, RestoreError> {
    let server = Server::parse(url)?;
    let deadline = Deadline::of(sandbox);
    let mut db = ScratchDb::create(&server, deadline)?;
    let client = Watched::spawn(
        server
            .client()?
            .arg(format!("--database={}", db.name))
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped()),
        deadline,
    )?;
    let stderr = collect_stderr_tail(client.take_stderr());
    let mut stdin = client.take_stdin();
    let mut filter = Filter::default();
    let mut refusal = None;
    let mut broken_pipe = false;
    let scanned = super::sql::scan(
        sandbox,
        stream,
        super::detect::Dialect::Mysql,
        |piece, _| {
            if refusal.is_some() || broken_pipe {
                return Ok(());
            }
            let piece = match filter.piece(piece) {
                Ok(piece) => piece,
                Err(why) => {
                    refusal = Some(why);
                    // Nothing more reaches the server once one statement was refused.
                    stdin = None;
                    return Ok(());
                }
            };
            if let Some(input) = stdin.as_mut()
                && let Err(e) = input.write_all(&piece)
            {
                if e.kind() != io::ErrorKind::BrokenPipe {
                    return Err(RestoreError::Skipped(format!(
                        "cannot feed the mariadb client: {e}"
                    )));
                }
                broken_pipe = true;
            }
            Ok(())
        },
    );
    if refusal.is_none()
        && scanned.is_ok()
        && let Err(why) = filter.finish()
    {
        refusal = Some(why);
    }
    drop(stdin);
    let status = client.wait()?;
    let errors = stderr.join().unwrap_or_default();
    if let Some(why) = refusal {
        return Err(RestoreError::Failed(why.message()));
    }
    let scan = scanned?;
    if !scan.ends_with_footer {
        return Err(scan.footer_error(super::detect::Dialect::Mysql));
    }
    if !status.success() {
        return Err(RestoreError::Failed(format!(
            "replaying the dump into a scratch database failed: {}",
            super::postgres::shorten(&replay_error(&errors))
        )));
    }
    let (tables, rows) = db.contents(deadline)?;
    db.finished = true;
    for t in &tables {
        sandbox.tally.note(t, true);
    }
    if let Some(rows) = rows {
        sandbox.tally.add_rows(rows);
    }
    let mut notes = Notes::default();
    notes.push(format!(
        "completion footer present; replayed into scratch database {} ({} tables)",
        db.name,
        tables.len()
    ));
    Ok(notes)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feed `dump` line by line: what is sent, or why it is refused.
    fn filtered(dump: &str) -> Result<String, Refusal> {
        let mut f = Filter::default();
        let mut sent = Vec::new();
        for line in dump.split_inclusive('\n') {
            sent.extend_from_slice(&f.piece(line.as_bytes())?);
        }
        f.finish()?;
        Ok(String::from_utf8(sent).unwrap())
    }

    fn refused(dump: &str) -> Option<Refusal> {
        filtered(dump).err()
    }

    #[test]
    fn statements_that_reach_beyond_the_scratch_database_are_refused() {
        for dump in [
            "USE `mysql`;",
            "USE\nmysql;",
            "use\tmysql;",
            "CREATE DATABASE /*!32312 IF NOT EXISTS*/ `shop`;",
            "/*!40000 GRANT ALL ON *.* TO x */;",
            "/*M!100000 GRANT ALL ON *.* TO x */;",
            "LOAD DATA INFILE '/etc/passwd' INTO TABLE t;",
            "SELECT 1 INTO OUTFILE '/tmp/x';",
            "SELECT 1 INTO /* a comment */ DUMPFILE '/tmp/x';",
            "set global general_log = 1;",
            "SET @@global.general_log = 1;",
            "SET @a = 1, GLOBAL general_log = 1;",
            "\\! rm -rf /",
            "CREATE FUNCTION f RETURNS STRING SONAME 'evil.so';",
            "INSERT INTO t VALUES (1); USE mysql;",
            "INSERT INTO t VALUES ('a;b'); /*!50000 GRANT ALL ON *.* TO x */;",
            // A statement that begins after a `;` on a continuation line.
            "INSERT INTO t VALUES (1,'x'),\n  (2,'x'); DROP DATABASE shop;",
            // An escaped backslash ends the string; a backslash in backquotes escapes nothing.
            "INSERT INTO t VALUES ('x\\\\'); GRANT ALL ON *.* TO y;",
            "CREATE TABLE `a\\` (x int); GRANT ALL ON *.* TO y;",
            // The client's own delimiter ends statements too.
            "DELIMITER //\nCREATE PROCEDURE p() BEGIN SELECT 1; END //\nGRANT ALL ON *.* TO x //\n",
            // A DEFINER clause left out does not hide what follows it.
            "CREATE DEFINER=`a`@`b` DATABASE evil;",
            // Sandbox mode's words are no statement's start.
            "/*M!999999\\- enable the sandbox mode */\nUSE mysql;",
            // A statement the client would run at the end of its input.
            "INSERT INTO t VALUES (1);\nGRANT ALL ON *.* TO x",
        ] {
            assert!(refused(dump).is_some(), "{dump}");
        }
        for dump in [
            "/*M!999999\\- enable the sandbox mode */ \n-- MariaDB dump 10.19\n/*!40101 SET NAMES utf8mb4 */;",
            "/*!40101 SET NAMES utf8mb4 */;",
            "/*!40101 SET @OLD_SQL_MODE=@@SQL_MODE, SQL_MODE='NO_AUTO_VALUE_ON_ZERO' */;",
            "SET @global = 1;",
            "INSERT INTO `t` VALUES (1,'grant me');",
            "CREATE TABLE `users` (\n  `id` int NOT NULL\n);",
            "CREATE TABLE `user_grants` (`use` int, `kill` int);",
            "DROP TABLE IF EXISTS `t`;",
            "LOCK TABLES `t` WRITE;",
            "-- MariaDB dump 10.19\n-- USE mysql;\n# GRANT ALL\n/* USE mysql; */ SELECT 1;",
            "INSERT INTO `t` VALUES (1,'x; USE mysql'),(2,'y\\'; GRANT');",
            // Table data that mentions what is refused, as mariadb-dump writes it.
            "INSERT INTO `posts` VALUES\n(1,'To export, run SELECT * FROM t INTO OUTFILE \\'/tmp/x.csv\\''),\n(2,'INTO DUMPFILE \"x\" SONAME'),(3,'It''s; USE mysql');",
            // A string over lines: what looks like statements in it is data.
            "INSERT INTO t VALUES ('a\nUSE mysql;\nGRANT ALL ON *.* TO x;\n');",
        ] {
            assert_eq!(refused(dump), None, "{dump}");
        }
    }

    #[test]
    fn refusals_say_what_they_refuse() {
        let message = |dump: &str| refused(dump).unwrap().message();
        assert!(message("USE mysql;").contains("has a USE statement"));
        assert!(
            message("ALTER DATABASE x CHARSET utf8;").contains("has an ALTER DATABASE statement")
        );
        assert!(message("UNINSTALL PLUGIN x;").contains("has an UNINSTALL statement"));
        assert!(message("SELECT 1 INTO OUTFILE '/tmp/x';").contains("has an INTO OUTFILE clause"));
        assert!(message("INSTALL SONAME 'x';").contains("an INSTALL statement"));
        let shell = message("\\! rm -rf /\n");
        assert!(
            shell.contains("client command \\! (system: runs a shell command)"),
            "{shell}"
        );
    }

    #[test]
    fn definer_clauses_are_left_out_and_nothing_else() {
        let dump = "/*!50001 CREATE ALGORITHM=UNDEFINED */\n\
            /*!50013 DEFINER=`root`@`localhost` SQL SECURITY DEFINER */\n\
            /*!50001 VIEW `v` AS select `t`.`definer` AS `definer` from `t` */;\n\
            DELIMITER ;;\n\
            /*!50003 CREATE*/ /*!50017 DEFINER=`root`@`localhost`*/ /*!50003 TRIGGER tr BEFORE INSERT ON t FOR EACH ROW SET NEW.definer = 'x' */;;\n\
            /*!50106 CREATE*/ /*!50117 DEFINER=`app`@`%`*/ /*!50106 EVENT `e` ON SCHEDULE EVERY 1 DAY DO DELETE FROM t */ ;;\n\
            CREATE DEFINER=`root`@`localhost` PROCEDURE `p`()\nSELECT definer = 1 FROM t\n;;\n\
            CREATE DEFINER = 'o''brien'@'10.0.0.%' FUNCTION f() RETURNS int RETURN 1;;\n\
            CREATE OR REPLACE DEFINER=CURRENT_USER() VIEW w AS SELECT 1;;\n\
            DELIMITER ;\n\
            INSERT INTO `t` VALUES ('CREATE DEFINER=`root`@`localhost` VIEW'),('DEFINER=x@y');\n";
        let sent = filtered(dump).unwrap();
        let (definitions, _) = sent.split_once("INSERT INTO").unwrap();
        for gone in ["root`@", "`app`", "brien", "CURRENT_USER", "DEFINER="] {
            assert!(!definitions.contains(gone), "{gone} in {sent}");
        }
        for kept in [
            "/*!50013  SQL SECURITY DEFINER */",
            "/*!50017 */ /*!50003 TRIGGER tr",
            "SET NEW.definer = 'x'",
            "CREATE  PROCEDURE `p`()\nSELECT definer = 1 FROM t\n;;",
            "CREATE  FUNCTION f()",
            "CREATE OR REPLACE  VIEW w",
            "`t`.`definer` AS `definer`",
            "INSERT INTO `t` VALUES ('CREATE DEFINER=`root`@`localhost` VIEW'),('DEFINER=x@y');",
        ] {
            assert!(sent.contains(kept), "{kept:?} not in {sent}");
        }
        // Line for line: the client's line numbers stay those of the dump.
        assert_eq!(sent.lines().count(), dump.lines().count());
    }

    #[test]
    fn replay_errors_leave_out_the_statement_and_its_values() {
        let stderr = "--------------\nINSERT INTO cards VALUES (1,4111111111111111,'O''Brien')\n\
                      --------------\n\nERROR 1062 (23000) at line 33: Duplicate entry '4111111111111111-O'Brien' for key 'PRIMARY'\n";
        assert_eq!(
            replay_error(stderr),
            "ERROR 1062 (23000) at line 33: Duplicate entry '…' for key 'PRIMARY'"
        );
        let syntax = "--------------\nCREATE TABEL t (a int, b text default 'it''s secret')\n--------------\n\n\
                      ERROR 1064 (42000) at line 2: You have an error in your SQL syntax; check the manual that \
                      corresponds to your MariaDB server version for the right syntax to use near 'TABEL t (a int, b text default 'it''s secret')' at line 1\n";
        let shown = replay_error(syntax);
        assert!(
            !shown.contains("secret") && !shown.contains("TABEL"),
            "{shown}"
        );
        assert!(
            shown.starts_with("ERROR 1064 (42000) at line 2: You have an error"),
            "{shown}"
        );
        assert_eq!(
            replay_error(
                "ERROR 1366 (22007) at line 9: Incorrect integer value: 'abc' for column `d`.`t`.`n` at row 1"
            ),
            "ERROR 1366 (22007) at line 9: Incorrect integer value: '…' for column `d`.`t`.`n` at row 1"
        );
        assert_eq!(error_code("ERROR 2002 (HY000): Can't connect"), Some(2002));
    }

    #[test]
    fn housekeeping_names_its_own_time_limit() {
        let said = housekeeping(RestoreError::TimeLimit { seconds: 60 });
        assert_eq!(
            said,
            "the server did not answer within 60 s, the time cleaning up after a test may take"
        );
        assert!(!said.contains("restore.timeout"));
    }

    #[test]
    fn grants_beyond_scratch_databases_are_found() {
        let grants = |lines: &[&str]| {
            beyond_scratch(&lines.iter().map(|l| l.to_string()).collect::<Vec<_>>())
        };
        let restricted = grants(&[
            "GRANT USAGE ON *.* TO `bm_restore`@`127.0.0.1` IDENTIFIED BY PASSWORD '*E81C'",
            "GRANT ALL PRIVILEGES ON `bm\\\\_restore\\\\_%`.* TO `bm_restore`@`127.0.0.1`",
        ]);
        assert_eq!(restricted, (vec![], vec![]));
        let root = grants(&[
            "GRANT ALL PRIVILEGES ON *.* TO `root`@`localhost` WITH GRANT OPTION",
            "GRANT PROXY ON ''@'%' TO 'root'@'localhost' WITH GRANT OPTION",
        ]);
        assert_eq!(root, (vec!["ALL PRIVILEGES".to_string()], vec![]));
        let other = grants(&[
            "GRANT USAGE ON *.* TO `app`@`%`",
            "GRANT SELECT, INSERT ON `shop`.* TO `app`@`%`",
            "GRANT EXECUTE ON PROCEDURE `crm`.`p` TO `app`@`%`",
        ]);
        assert_eq!(other, (vec![], vec!["shop".to_string(), "crm".to_string()]));
    }

    #[test]
    fn the_password_stays_out_of_the_arguments() {
        let server = Server::parse("mysql://bm:s%40cret@127.0.0.1:3307").unwrap();
        assert_eq!(server.password.as_deref(), Some("s@cret"));
        assert_eq!((server.host.as_str(), server.port), ("127.0.0.1", 3307));
        if let Ok(cmd) = server.client() {
            let args: Vec<_> = cmd
                .get_args()
                .map(|a| a.to_string_lossy().into_owned())
                .collect();
            assert!(!args.iter().any(|a| a.contains("s@cret")), "{args:?}");
        }
    }
}
