//! MySQL/MariaDB dumps (`mysqldump`, `mariadb-dump`) replayed into a scratch database on
//! `restore.mysql_url`, created and dropped by the test, as plain PostgreSQL dumps are
//! replayed on `restore.postgres_url`.
//!
//! Scratch databases are named `bm_restore_<host hash>_<pid>_<n>`; those of this host
//! whose run is gone (killed) are dropped by the next run. The dump is fed to the
//! `mariadb` (or `mysql`) client with `--binary-mode` (no client commands: no `\!`,
//! `system`, `source`) and statements that reach beyond the scratch database — other
//! databases (`USE`, `CREATE DATABASE`), files (`LOAD DATA`, `INTO OUTFILE`), the
//! server's configuration and accounts (`SET GLOBAL`, `GRANT`, `CREATE USER`, …) — are
//! refused before they are sent. A role that may only create and drop `bm_restore_%`
//! databases is the guard that holds whatever the dump hides.
//!
//! The password reaches the client only through `MYSQL_PWD` in its environment.

use super::postgres::{Deadline, Watched, run, scratch_prefix};
use super::sandbox::Sandbox;
use super::{Notes, RestoreError};
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

    /// Run one SQL text (ours, never the dump's) and return its output lines.
    fn query(&self, sql: &str, deadline: Deadline) -> Result<Vec<String>, RestoreError> {
        let out = run(self.client()?.arg("-e").arg(sql), deadline)?;
        if !out.status.success() {
            return Err(RestoreError::Skipped(format!(
                "the server of restore.mysql_url refused a scratch-database command: {}",
                super::postgres::stderr_of(&out)
            )));
        }
        Ok(String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| l.trim().to_string())
            .filter(|l| !l.is_empty())
            .collect())
    }
}

/// A scratch database, dropped when this goes out of scope.
struct ScratchDb {
    server: Server,
    name: String,
}

impl ScratchDb {
    fn create(server: &Server, deadline: Deadline) -> Result<ScratchDb, RestoreError> {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        static CLEANED: std::sync::Once = std::sync::Once::new();
        CLEANED.call_once(|| drop_leftovers(server));
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
        Ok(ScratchDb {
            server: server.clone(),
            name,
        })
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
}

impl Drop for ScratchDb {
    fn drop(&mut self) {
        let sql = format!("DROP DATABASE IF EXISTS `{}`", self.name);
        if let Err(e) = self.server.query(&sql, Deadline::admin()) {
            tracing::warn!("cannot drop the scratch database {}: {e}", self.name);
        }
    }
}

/// Drop this host's scratch databases whose run is gone.
fn drop_leftovers(server: &Server) {
    let prefix = scratch_prefix();
    let like = prefix.replace('_', "\\_");
    let names = match server.query(&format!("SHOW DATABASES LIKE '{like}%'"), Deadline::admin()) {
        Ok(names) => names,
        Err(e) => {
            tracing::warn!("cannot look for leftover scratch databases: {e}");
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
                "dropped the scratch database {name}, left by run {pid} that was killed"
            ),
            Err(e) => tracing::warn!("cannot drop the leftover scratch database {name}: {e}"),
        }
    }
}

/// Statement starts that reach beyond the scratch database (compared upper-case, after a
/// version comment's `/*!NNNNN` is taken off).
const REFUSED_STARTS: &[&str] = &[
    "USE ",
    "USE`",
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
    "\\",
];
/// Found anywhere in a line: statements that write files on the server.
const REFUSED_ANYWHERE: &[&str] = &["INTO OUTFILE", "INTO DUMPFILE", "SONAME"];

/// Why a piece of the dump is refused, if it is. `start`: the piece begins a statement.
/// Every statement that begins in the piece is checked — after each `;` outside quotes
/// too, so a second statement on one line cannot slip past — and what a version comment
/// (`/*!40101 … */`) holds, which MySQL runs.
fn refused(line: &[u8], start: bool) -> Option<String> {
    let text = String::from_utf8_lossy(&line[..line.len().min(4096)]).to_ascii_uppercase();
    let anywhere_hit = REFUSED_ANYWHERE.iter().find(|s| text.contains(*s));
    let mut starts: Vec<&str> = Vec::new();
    if start {
        starts.push(&text);
    }
    starts.extend(statement_starts(&text).map(|i| &text[i..]));
    let start_hit = starts.into_iter().find_map(|stmt| {
        let mut stmt = stmt.trim_start();
        while let Some(rest) = stmt.strip_prefix("/*!") {
            stmt = rest
                .trim_start_matches(|c: char| c.is_ascii_digit())
                .trim_start();
        }
        REFUSED_STARTS.iter().find(|s| stmt.starts_with(*s))
    });
    start_hit
        .or(anywhere_hit)
        .map(|s| s.trim_end_matches([' ', '`']).to_string())
}

/// Byte offsets just after each `;` that is outside quotes (`'`, `"`, `` ` ``, with
/// backslash escapes), and at each version comment `/*!`.
fn statement_starts(text: &str) -> impl Iterator<Item = usize> + '_ {
    let bytes = text.as_bytes();
    let mut quote: Option<u8> = None;
    let mut escaped = false;
    let mut out = Vec::new();
    for (i, &b) in bytes.iter().enumerate() {
        match quote {
            Some(_) if escaped => escaped = false,
            Some(_) if b == b'\\' => escaped = true,
            Some(q) if b == q => quote = None,
            Some(_) => {}
            None if matches!(b, b'\'' | b'"' | b'`') => quote = Some(b),
            None if b == b';' => out.push(i + 1),
            None if bytes[i..].starts_with(b"/*!") => out.push(i),
            None => {}
        }
    }
    out.into_iter()
}

/// Replay a MySQL/MariaDB dump into a fresh scratch database on `url`.
pub fn replay(sandbox: &Sandbox, stream: &mut dyn Read, url: &str) -> Result<Notes, RestoreError> {
    let server = Server::parse(url)?;
    let deadline = Deadline::of(sandbox);
    let db = ScratchDb::create(&server, deadline)?;
    let client = Watched::spawn(
        server
            .client()?
            .arg(format!("--database={}", db.name))
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped()),
        deadline,
    )?;
    let stderr = super::sql::collect_stderr(client.take_stderr());
    let mut stdin = client.take_stdin();
    let mut refusal = None;
    let mut broken_pipe = false;
    let scanned = super::sql::scan(
        sandbox,
        stream,
        super::detect::Dialect::Mysql,
        |piece, start| {
            if refusal.is_some() || broken_pipe {
                return Ok(());
            }
            if let Some(what) = refused(piece, start) {
                refusal = Some(what);
                // Nothing more reaches the server once one statement was refused.
                stdin = None;
                return Ok(());
            }
            if let Some(input) = stdin.as_mut()
                && let Err(e) = input.write_all(piece)
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
    drop(stdin);
    let status = client.wait()?;
    let errors = stderr.join().unwrap_or_default();
    if let Some(what) = refusal {
        return Err(RestoreError::Failed(format!(
            "the dump has a {what} statement, which reaches beyond the database it restores (other databases, files or the server's settings): not replayed"
        )));
    }
    let scan = scanned?;
    if !scan.ends_with_footer {
        return Err(scan.footer_error(super::detect::Dialect::Mysql));
    }
    if !status.success() {
        return Err(RestoreError::Failed(format!(
            "replaying the dump into a scratch database failed: {}",
            super::postgres::shorten(&super::sql::without_content(errors.trim()))
        )));
    }
    let (tables, rows) = db.contents(deadline)?;
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

    #[test]
    fn statements_that_reach_beyond_the_scratch_database_are_refused() {
        for line in [
            "USE `mysql`;",
            "CREATE DATABASE /*!32312 IF NOT EXISTS*/ `shop`;",
            "/*!40000 GRANT ALL ON *.* TO x */;",
            "LOAD DATA INFILE '/etc/passwd' INTO TABLE t;",
            "SELECT 1 INTO OUTFILE '/tmp/x';",
            "set global general_log = 1;",
            "\\! rm -rf /",
            "CREATE FUNCTION f RETURNS STRING SONAME 'evil.so';",
            "INSERT INTO t VALUES (1); USE mysql;",
            "INSERT INTO t VALUES ('a;b'); /*!50000 GRANT ALL ON *.* TO x */;",
        ] {
            assert!(refused(line.as_bytes(), true).is_some(), "{line}");
        }
        // A statement that begins after a `;` in a continuation line is checked too.
        assert!(refused(b"  (2,'x'); DROP DATABASE shop;", false).is_some());
        assert_eq!(
            refused(b"USE mysql; -- inside a long statement", false),
            None
        );
        for line in [
            "/*!40101 SET NAMES utf8mb4 */;",
            "INSERT INTO `t` VALUES (1,'grant me');",
            "CREATE TABLE `users` (",
            "DROP TABLE IF EXISTS `t`;",
            "LOCK TABLES `t` WRITE;",
            "-- MariaDB dump 10.19",
            "INSERT INTO `t` VALUES (1,'x; USE mysql'),(2,'y\\'; GRANT');",
        ] {
            assert_eq!(refused(line.as_bytes(), true), None, "{line}");
        }
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
