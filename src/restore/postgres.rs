//! PostgreSQL: custom-format dumps (`pg_dump -Fc`, magic `PGDMP`) and the scratch
//! database plain dumps are replayed into.
//!
//! Without `restore.postgres_url` a custom dump is checked with the client tools alone:
//! `pg_restore --list` reads its table of contents, and `pg_restore -f /dev/null` reads
//! every data block to the end (a truncated dump fails there). With it, the dump is
//! restored for real into a scratch database that is created for the test and dropped
//! afterwards, also on failure. Without `pg_restore` on `PATH` the test is skipped with
//! that reason. The tools are run, not linked: no PostgreSQL client library is needed
//! to build backup-monitor. URLs are never shown with their password.

use super::sandbox::Sandbox;
use super::{Notes, RestoreError};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

/// Seconds libpq waits for a connection before giving up.
const CONNECT_TIMEOUT: &str = "10";

/// The first `n` bytes of a tool's error output shown in a detail.
const SHOWN_STDERR: usize = 600;

/// Find an executable on `PATH`.
pub fn find_tool(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| is_executable(p))
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

fn tool(name: &str) -> Result<PathBuf, RestoreError> {
    find_tool(name).ok_or_else(|| {
        RestoreError::Skipped(format!(
            "{name} is not installed (not found on PATH); install the PostgreSQL client tools to test this dump"
        ))
    })
}

/// Test a custom-format dump at `dump` (the backup itself, or a decompressed copy inside
/// the sandbox). Table names become the restored entries.
pub fn check_custom(
    sandbox: &Sandbox,
    dump: &Path,
    postgres_url: Option<&str>,
) -> Result<Notes, RestoreError> {
    if let Some(format) = archive_format(dump).filter(|&f| f != CUSTOM_FORMAT) {
        // The toc.dat of a directory-format dump (pg_dump -Fd): the data is in the other
        // files of its directory, so the TOC alone cannot be restored or read to its end.
        return Err(RestoreError::Skipped(format!(
            "the table of contents of a pg_dump archive in format {format} (3 is a directory dump's toc.dat): its data lives in the files beside it; restore tests read custom-format dumps (pg_dump -Fc) and plain SQL"
        )));
    }
    let pg_restore = tool("pg_restore")?;
    let list = run(Command::new(&pg_restore).arg("--list").arg(dump))?;
    if !list.status.success() && stderr_of(&list).contains("unsupported version") {
        // Made by a newer pg_dump than this host's pg_restore: the dump may be fine.
        return Err(RestoreError::Skipped(format!(
            "this pg_restore cannot read dumps of the pg_dump that made it ({}); install a PostgreSQL client at least as new as the servers the dumps come from",
            stderr_of(&list)
        )));
    }
    if !list.status.success() {
        return Err(RestoreError::Corrupt(format!(
            "pg_restore --list cannot read the dump: {}",
            stderr_of(&list)
        )));
    }
    let toc = String::from_utf8_lossy(&list.stdout);
    let toc_tables = toc_tables(&toc);
    let mut notes = Notes::default();
    match postgres_url {
        None => {
            read_to_end(&pg_restore, dump)?;
            for t in &toc_tables {
                sandbox.tally.note(t, true);
            }
            notes.push(format!(
                "TOC read with pg_restore --list ({} tables) and every data block read; not restored into a database (no restore.postgres_url)",
                toc_tables.len()
            ));
        }
        Some(url) => {
            let db = ScratchDb::create(url)?;
            let restored = run(with_connection(
                Command::new(&pg_restore).args([
                    "--no-owner",
                    "--no-privileges",
                    "--exit-on-error",
                ]),
                &db.url,
            )
            .arg(dump))?;
            if !restored.status.success() {
                read_to_end(&pg_restore, dump)?;
                return Err(RestoreError::Failed(format!(
                    "pg_restore into a scratch database failed: {}",
                    stderr_of(&restored)
                )));
            }
            let tables = db.tables()?;
            for t in &tables {
                sandbox.tally.note(t, true);
            }
            notes.push(format!(
                "restored into scratch database {} ({} tables)",
                db.name,
                tables.len()
            ));
        }
    }
    Ok(notes)
}

/// The archive format byte of a `PGDMP` header (1 custom, 3 a directory dump's TOC).
const CUSTOM_FORMAT: u8 = 1;

fn archive_format(dump: &Path) -> Option<u8> {
    use std::io::Read as _;
    let mut head = [0u8; 11];
    std::fs::File::open(dump).ok()?.read_exact(&mut head).ok()?;
    head.starts_with(b"PGDMP").then_some(head[10])
}

/// Read every data block of the dump (into no database): a truncated or damaged dump
/// fails here — that is `archive_corrupt`, not a failed restore.
fn read_to_end(pg_restore: &Path, dump: &Path) -> Result<(), RestoreError> {
    let all = run(Command::new(pg_restore)
        .arg("-f")
        .arg("/dev/null")
        .arg(dump))?;
    if !all.status.success() {
        return Err(RestoreError::Corrupt(format!(
            "pg_restore cannot read the dump to its end: {}",
            stderr_of(&all)
        )));
    }
    Ok(())
}

/// Table names in a `pg_restore --list` listing (`215; 1259 16386 TABLE public users owner`).
pub fn toc_tables(toc: &str) -> Vec<String> {
    toc.lines()
        .filter(|l| !l.starts_with(';'))
        .filter_map(|l| {
            let words: Vec<&str> = l.split_whitespace().collect();
            (words.get(3) == Some(&"TABLE") && words.get(4) != Some(&"DATA"))
                .then(|| words.get(5).map(|s| s.to_string()))
                .flatten()
        })
        .collect()
}

/// A database created on the scratch server for one test; dropped when this is dropped.
pub struct ScratchDb {
    psql: PathBuf,
    admin_url: String,
    pub name: String,
    /// The scratch database's own URL (holds the password if the admin URL does).
    pub url: String,
}

impl ScratchDb {
    pub fn create(admin_url: &str) -> Result<ScratchDb, RestoreError> {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let psql = tool("psql")?;
        static CLEANED: std::sync::Once = std::sync::Once::new();
        CLEANED.call_once(|| drop_leftovers(&psql, admin_url));
        let name = format!(
            "{}{}_{}",
            scratch_prefix(),
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        let url = with_database(admin_url, &name);
        let out = run(psql_command(&psql, admin_url)
            .arg("-c")
            .arg(format!("DROP DATABASE IF EXISTS \"{name}\""))
            .arg("-c")
            .arg(format!("CREATE DATABASE \"{name}\"")))?;
        if !out.status.success() {
            return Err(RestoreError::Skipped(format!(
                "cannot create a scratch database on restore.postgres_url ({}): {}",
                redact(admin_url),
                stderr_of(&out)
            )));
        }
        warn_if_superuser(&psql, admin_url);
        Ok(ScratchDb {
            psql,
            admin_url: admin_url.to_string(),
            name,
            url,
        })
    }

    /// A `psql` that runs a script from its stdin into the scratch database and stops at
    /// the first error.
    pub fn psql_script(&self) -> Result<Child, RestoreError> {
        psql_command(&self.psql, &self.url)
            .arg("-f")
            .arg("-")
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| RestoreError::Skipped(format!("cannot run psql: {e}")))
    }

    /// User tables of the scratch database.
    pub fn tables(&self) -> Result<Vec<String>, RestoreError> {
        let out = run(psql_command(&self.psql, &self.url).arg("-c").arg(
            "SELECT table_name FROM information_schema.tables WHERE table_type = 'BASE TABLE' \
             AND table_schema NOT IN ('pg_catalog', 'information_schema') ORDER BY 1",
        ))?;
        if !out.status.success() {
            return Err(RestoreError::Failed(format!(
                "cannot list the restored tables: {}",
                stderr_of(&out)
            )));
        }
        Ok(String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(str::to_string)
            .collect())
    }
}

impl Drop for ScratchDb {
    fn drop(&mut self) {
        let sql = format!("DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)", self.name);
        match run(psql_command(&self.psql, &self.admin_url).arg("-c").arg(sql)) {
            Ok(out) if out.status.success() => {}
            Ok(out) => tracing::warn!(
                "cannot drop the scratch database {}: {}",
                self.name,
                stderr_of(&out)
            ),
            Err(e) => tracing::warn!("cannot drop the scratch database {}: {e}", self.name),
        }
    }
}

/// `bm_restore_<host>_`: scratch databases of this host (8 hex digits of its name), so
/// several monitoring hosts can share one scratch server and each cleans up only its own.
fn scratch_prefix() -> String {
    let host = hostname::get()
        .map(|h| h.to_string_lossy().into_owned())
        .unwrap_or_default();
    // FNV-1a: stable across runs and builds (std's hasher is not).
    let hash = host.bytes().fold(0x811c_9dc5_u32, |h, b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    });
    format!("bm_restore_{hash:08x}_")
}

/// Drop this host's scratch databases whose run is gone (killed by SIGTERM or SIGKILL
/// before it could drop them), as the sandbox directories of dead runs are removed.
fn drop_leftovers(psql: &Path, admin_url: &str) {
    let prefix = scratch_prefix();
    let query = format!("SELECT datname FROM pg_database WHERE starts_with(datname, '{prefix}')");
    let Ok(out) = run(psql_command(psql, admin_url).arg("-c").arg(query)) else {
        return;
    };
    for name in String::from_utf8_lossy(&out.stdout).lines().map(str::trim) {
        let pid = name
            .strip_prefix(&prefix)
            .and_then(|rest| rest.split('_').next())
            .and_then(|pid| pid.parse::<u32>().ok());
        let Some(pid) = pid.filter(|&p| !super::sandbox::process_alive(p)) else {
            continue;
        };
        let sql = format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)");
        match run(psql_command(psql, admin_url).arg("-c").arg(sql)) {
            Ok(out) if out.status.success() => tracing::info!(
                "dropped the scratch database {name}, left by run {pid} that was killed"
            ),
            _ => tracing::warn!("cannot drop the leftover scratch database {name}"),
        }
    }
}

/// Said once per run: a plain dump's SQL runs with the rights of `postgres_url`'s role.
/// Its backslash commands and database- and role-level statements are refused, but SQL
/// written to do harm (`COPY … TO PROGRAM`, a `DROP DATABASE` spread over lines) is only
/// stopped by a role that may not do it: one with CREATEDB and nothing more.
fn warn_if_superuser(psql: &Path, admin_url: &str) {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let query = "SELECT rolsuper FROM pg_roles WHERE rolname = current_user";
        if let Ok(out) = run(psql_command(psql, admin_url).arg("-c").arg(query))
            && String::from_utf8_lossy(&out.stdout).trim() == "t"
        {
            tracing::warn!(
                "restore.postgres_url ({}) connects as a superuser: a hostile plain dump replayed there could run commands on the database server; use a role with only CREATEDB (see docs/restore.md)",
                redact(admin_url)
            );
        }
    });
}

fn psql_command(psql: &Path, url: &str) -> Command {
    let mut cmd = Command::new(psql);
    cmd.args(["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1"])
        .env("PGCONNECT_TIMEOUT", CONNECT_TIMEOUT)
        // NOTICEs ("does not exist, skipping") are not what a verdict should quote.
        .env("PGOPTIONS", "-c client_min_messages=warning");
    with_connection(&mut cmd, url);
    cmd
}

/// `-d <url>` without its password, which goes in `PGPASSWORD` instead: a command line
/// is readable by every local user (`ps`, /proc/<pid>/cmdline), the environment is not.
fn with_connection<'c>(cmd: &'c mut Command, url: &str) -> &'c mut Command {
    let (url, password) = split_password(url);
    cmd.arg("-d").arg(url);
    if let Some(password) = password {
        cmd.env("PGPASSWORD", password);
    }
    cmd
}

/// `url` without its password, and the password (percent-decoded, as libpq would):
/// `scheme://user:password@host/db`, `…?password=…` and `password=…` in key=value form.
pub fn split_password(url: &str) -> (String, Option<String>) {
    let Some((scheme, authority, tail)) = url_parts(url) else {
        let mut password = None;
        let kept: Vec<&str> = url
            .split_whitespace()
            .filter(|kv| match kv.strip_prefix("password=") {
                Some(p) => {
                    password = Some(p.trim_matches('\'').to_string());
                    false
                }
                None => true,
            })
            .collect();
        return (kept.join(" "), password);
    };
    let mut password = None;
    let authority = match authority.rfind('@') {
        Some(at) if authority[..at].contains(':') => {
            let (user, pass) = authority[..at]
                .split_once(':')
                .unwrap_or((&authority[..at], ""));
            password = Some(percent_decode(pass));
            format!("{user}{}", &authority[at..])
        }
        _ => authority.to_string(),
    };
    let tail = match tail.split_once('?') {
        Some((path, query)) => {
            let params: Vec<&str> = query
                .split('&')
                .filter(|kv| match kv.strip_prefix("password=") {
                    Some(p) => {
                        password = Some(percent_decode(p));
                        false
                    }
                    None => !kv.is_empty(),
                })
                .collect();
            if params.is_empty() {
                path.to_string()
            } else {
                format!("{path}?{}", params.join("&"))
            }
        }
        None => tail.to_string(),
    };
    (format!("{scheme}://{authority}{tail}"), password)
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match (bytes[i], bytes.get(i + 1), bytes.get(i + 2)) {
            (b'%', Some(&h), Some(&l)) if hex(h).is_some() && hex(l).is_some() => {
                out.push((hex(h).unwrap_or(0) * 16 + hex(l).unwrap_or(0)) as u8);
                i += 3;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn run(cmd: &mut Command) -> Result<Output, RestoreError> {
    cmd.stdin(Stdio::null())
        .env("PGCONNECT_TIMEOUT", CONNECT_TIMEOUT)
        .output()
        .map_err(|e| {
            RestoreError::Skipped(format!(
                "cannot run {}: {e}",
                cmd.get_program().to_string_lossy()
            ))
        })
}

/// A tool's error output, shortened, for a detail.
pub fn stderr_of(out: &Output) -> String {
    shorten(&String::from_utf8_lossy(&out.stderr))
}

pub fn shorten(text: &str) -> String {
    let text = text.trim().replace('\n', " ");
    match text.char_indices().nth(SHOWN_STDERR) {
        Some((i, _)) => format!("{}…", &text[..i]),
        None if text.is_empty() => "no error output".into(),
        None => text,
    }
}

/// `url` pointing at database `db`: a URL's path is replaced; a `key=value` connection
/// string gets `dbname=` appended (libpq lets the last one win).
pub fn with_database(url: &str, db: &str) -> String {
    let Some((scheme, authority, tail)) = url_parts(url) else {
        return format!("{url} dbname={db}");
    };
    let query = tail.find('?').map(|i| &tail[i..]).unwrap_or("");
    format!("{scheme}://{authority}/{db}{query}")
}

/// A `scheme://authority/path?query` URL as (scheme, authority, path and query); None
/// for a `key=value` connection string.
fn url_parts(url: &str) -> Option<(&str, &str, &str)> {
    let (scheme, rest) = url.split_once("://")?;
    let (authority, tail) = rest.split_at(rest.find(['/', '?']).unwrap_or(rest.len()));
    Some((scheme, authority, tail))
}

/// `url` without its password, for messages: `user:***@` in the authority and
/// `password=***` in the query string or key=value form.
pub fn redact(url: &str) -> String {
    let masked = redact_authority(url);
    if !masked.contains("://") {
        return masked;
    }
    let Some((base, query)) = masked.split_once('?') else {
        return masked;
    };
    let params: Vec<&str> = query.split('&').map(mask_password).collect();
    format!("{base}?{}", params.join("&"))
}

/// A `key=value` setting, with the value masked when it is the password.
fn mask_password(kv: &str) -> &str {
    if kv.starts_with("password=") {
        "password=***"
    } else {
        kv
    }
}

fn redact_authority(url: &str) -> String {
    let Some((scheme, authority, tail)) = url_parts(url) else {
        return url
            .split_whitespace()
            .map(mask_password)
            .collect::<Vec<_>>()
            .join(" ");
    };
    match authority.rfind('@') {
        Some(at) if authority[..at].contains(':') => {
            let user = authority[..at].split(':').next().unwrap_or("");
            format!("{scheme}://{user}:***{}{tail}", &authority[at..])
        }
        _ => url.to_string(),
    }
}

/// Copy `stream` into a file inside the sandbox, for tools that need a path.
pub fn spill(sandbox: &Sandbox, stream: &mut dyn Read) -> Result<PathBuf, RestoreError> {
    let path = sandbox.scratch_path("dump.pgdmp");
    sandbox.write_scratch(&path, stream)?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scratch_urls_and_redaction() {
        assert_eq!(
            with_database("postgresql://u:p@h:5432/postgres?sslmode=disable", "x"),
            "postgresql://u:p@h:5432/x?sslmode=disable"
        );
        assert_eq!(with_database("postgres://h", "x"), "postgres://h/x");
        assert_eq!(
            with_database("host=h user=u", "x"),
            "host=h user=u dbname=x"
        );
        assert_eq!(
            redact("postgresql://u:secret@h/db"),
            "postgresql://u:***@h/db"
        );
        assert_eq!(redact("postgresql://h/db"), "postgresql://h/db");
        assert_eq!(redact("postgresql://u@h/db"), "postgresql://u@h/db");
        assert_eq!(redact("host=h password=secret"), "host=h password=***");
        assert_eq!(
            redact("postgresql://h:1/db?user=u&password=S3cret&sslmode=require"),
            "postgresql://h:1/db?user=u&password=***&sslmode=require"
        );
    }

    #[test]
    fn passwords_leave_the_url_for_the_environment() {
        assert_eq!(
            split_password("postgresql://u:p%40ss@h:5432/db?sslmode=disable"),
            (
                "postgresql://u@h:5432/db?sslmode=disable".to_string(),
                Some("p@ss".to_string())
            )
        );
        assert_eq!(
            split_password("postgresql://h/db?user=u&password=S3cret"),
            (
                "postgresql://h/db?user=u".to_string(),
                Some("S3cret".to_string())
            )
        );
        assert_eq!(
            split_password("host=h password=secret dbname=x"),
            ("host=h dbname=x".to_string(), Some("secret".to_string()))
        );
        assert_eq!(
            split_password("postgresql://u@h/db"),
            ("postgresql://u@h/db".to_string(), None)
        );
    }

    #[test]
    fn toc_lists_tables_not_their_data() {
        let toc = ";\n; Archive created at 2026-11-21\n;\n\
                   215; 1259 16386 TABLE public users postgres\n\
                   216; 1259 16390 TABLE public orders postgres\n\
                   3350; 0 16386 TABLE DATA public users postgres\n\
                   3200; 2606 16394 CONSTRAINT public users users_pkey postgres\n";
        assert_eq!(toc_tables(toc), vec!["users", "orders"]);
    }
}
