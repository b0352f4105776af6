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
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

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

/// An open custom-format dump, handed to each tool as its standard input from the start:
/// the tools never open the dump by name, which a symbolic link could have replaced
/// since it was opened.
struct Dump(std::fs::File);

impl Dump {
    /// The dump, read from its start.
    fn fresh(&self) -> Result<std::fs::File, RestoreError> {
        use std::io::{Seek, SeekFrom};
        let mut f = self
            .0
            .try_clone()
            .map_err(|e| RestoreError::read("the dump", e))?;
        f.seek(SeekFrom::Start(0))
            .map_err(|e| RestoreError::read("the dump", e))?;
        Ok(f)
    }
}

/// Test a custom-format dump open as `file`, named `dump` (the backup itself, or a
/// decompressed copy inside the sandbox). Table names become the restored entries.
pub fn check_custom(
    sandbox: &Sandbox,
    dump: &Path,
    file: std::fs::File,
    postgres_url: Option<&str>,
) -> Result<Notes, RestoreError> {
    let file = Dump(file);
    if let Some(header) = Header::read(&mut file.fresh()?) {
        header.judge(dump)?;
    }
    let pg_restore = tool("pg_restore")?;
    let deadline = Deadline::of(sandbox);
    let list = run_fed(
        Command::new(&pg_restore).arg("--list"),
        deadline,
        Some(Stdio::from(file.fresh()?)),
    )?;
    if !list.status.success() && stderr_of(&list).contains("unsupported version") {
        // Header::judge let only plausible versions through: a newer pg_dump's.
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
            let script = read_script(&pg_restore, &file, deadline, Some(sandbox))?;
            for t in &toc_tables {
                sandbox.tally.note(t, true);
            }
            sandbox.tally.add_rows(script.rows);
            notes.push(format!(
                "TOC read with pg_restore --list ({} tables) and every data block read ({} rows, {} of SQL); not restored into a database (no restore.postgres_url)",
                toc_tables.len(),
                script.rows,
                bytesize::ByteSize(script.bytes)
            ));
        }
        Some(url) => {
            let db = ScratchDb::create(url, deadline)?;
            // max_bytes holds the database: its growth is looked at every second while
            // pg_restore runs, and pg_restore is stopped once it passes what is left.
            let start = db.size().unwrap_or(0);
            let room = sandbox.room();
            let mut watch = || match db.size() {
                Ok(size) if size.saturating_sub(start) > room => Err(RestoreError::Limit {
                    limit: sandbox.limit(),
                }),
                // A size that cannot be read now stops nothing: pg_restore's own
                // verdict, and the measure afterwards, still come.
                _ => Ok(()),
            };
            let restored = run_watched(
                with_connection(
                    Command::new(&pg_restore).args([
                        "--no-owner",
                        "--no-privileges",
                        "--exit-on-error",
                    ]),
                    &db.url,
                )?,
                deadline,
                Some(Stdio::from(file.fresh()?)),
                &mut watch,
            )?;
            if !restored.status.success() {
                read_script(&pg_restore, &file, deadline, None)?;
                return Err(RestoreError::Failed(format!(
                    "pg_restore into a scratch database failed: {}",
                    shorten(&super::sql::psql_errors(&String::from_utf8_lossy(
                        &restored.stderr
                    )))
                )));
            }
            let tables = db.tables()?;
            let measured = db.measure()?;
            sandbox.charge(measured.bytes)?;
            for t in &tables {
                sandbox.tally.note(t, true);
            }
            sandbox.tally.add_rows(measured.rows);
            notes.push(format!(
                "restored into scratch database {} ({} tables, {} rows, {} of tables and indexes)",
                db.name,
                tables.len(),
                measured.rows,
                bytesize::ByteSize(measured.bytes)
            ));
        }
    }
    Ok(notes)
}

/// The fixed start of a pg_dump archive: `PGDMP`, the archive version (major, minor,
/// revision), the sizes of an integer and of an offset, and the format.
struct Header {
    version: (u8, u8, u8),
    int_size: u8,
    off_size: u8,
    format: u8,
}

/// Archive formats: custom (`pg_dump -Fc`), and the TOC of a directory dump (`-Fd`).
const CUSTOM_FORMAT: u8 = 1;
const DIRECTORY_FORMAT: u8 = 3;
/// Archive versions pg_dump has written are 1.x with x below this (1.16 in PostgreSQL 17;
/// room is left for newer releases, which are skipped as too new, not called corrupt).
const VERSION_MINOR_MAX: u8 = 40;

impl Header {
    fn read(file: &mut std::fs::File) -> Option<Header> {
        let mut head = [0u8; 11];
        let n = read_up_to(file, &mut head);
        if n < 5 || !head.starts_with(b"PGDMP") {
            return None;
        }
        Some(Header {
            version: (head[5], head[6], head[7]),
            int_size: head[8],
            off_size: head[9],
            format: if n == head.len() { head[10] } else { 0 },
        })
    }

    /// A header pg_dump could have written, in a format restore tests read (custom);
    /// a directory dump's own `toc.dat` is skipped with the reason; anything else after
    /// `PGDMP` is a damaged dump.
    fn judge(&self, dump: &Path) -> Result<(), RestoreError> {
        let (major, minor, _) = self.version;
        let plausible = major == 1
            && minor < VERSION_MINOR_MAX
            && (1..=16).contains(&self.int_size)
            && (1..=16).contains(&self.off_size);
        let damaged = |what: &str| {
            RestoreError::Corrupt(format!(
                "the file starts like a pg_dump archive (PGDMP) but {what}: the dump is damaged"
            ))
        };
        if !plausible {
            return Err(damaged("its header is not one pg_dump writes"));
        }
        match self.format {
            CUSTOM_FORMAT => Ok(()),
            DIRECTORY_FORMAT if is_directory_dump_toc(dump) => Err(RestoreError::Skipped(
                "the table of contents (toc.dat) of a directory dump (pg_dump -Fd): its data lives in the files beside it; restore tests read custom-format dumps (pg_dump -Fc) and plain SQL".into(),
            )),
            DIRECTORY_FORMAT => Err(damaged(
                "it is a directory dump's table of contents that is not a toc.dat among the data files of its dump",
            )),
            _ => Err(damaged("its archive format is not one pg_dump writes")),
        }
    }
}

/// Fill `buf` as far as the file goes.
fn read_up_to(file: &mut std::fs::File, buf: &mut [u8]) -> usize {
    let mut n = 0;
    while n < buf.len() {
        match file.read(&mut buf[n..]) {
            Ok(0) | Err(_) => break,
            Ok(k) => n += k,
        }
    }
    n
}

/// `toc.dat` in a directory whose other files are all what `pg_dump -Fd` writes beside
/// it: `<id>.dat` data files (compressed `.gz`, `.lz4` or `.zst`), `blob_<oid>.dat` and
/// `blobs*.toc` large objects.
fn is_directory_dump_toc(toc: &Path) -> bool {
    if toc.file_name().and_then(|n| n.to_str()) != Some("toc.dat") {
        return false;
    }
    let Some(dir) = toc.parent() else {
        return false;
    };
    let Ok(entries) = std::fs::read_dir(dir) else {
        return false;
    };
    entries.flatten().all(|e| {
        let name = e.file_name();
        let Some(name) = name.to_str() else {
            return false;
        };
        name == "toc.dat" || is_dump_data_file(name)
    })
}

fn is_dump_data_file(name: &str) -> bool {
    let base = ["", ".gz", ".lz4", ".zst"]
        .iter()
        .find_map(|ext| name.strip_suffix(ext).and_then(|n| n.strip_suffix(".dat")));
    if let Some(base) = base {
        let id = base.strip_prefix("blob_").unwrap_or(base);
        return !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit());
    }
    name.starts_with("blobs") && name.ends_with(".toc")
}

/// What the SQL script `pg_restore` makes of a dump holds: its size, and the rows of
/// its `COPY` blocks.
#[derive(Debug, Default, PartialEq)]
struct Script {
    bytes: u64,
    rows: u64,
}

/// Have `pg_restore` write the dump as the SQL script it stands for, read to its end
/// (into no database): a truncated or damaged dump fails here — that is
/// `archive_corrupt`, not a failed restore. The script's bytes are counted against
/// `max_bytes` of `sandbox` (as a plain dump's are), when one is given.
fn read_script(
    pg_restore: &Path,
    dump: &Dump,
    deadline: Deadline,
    sandbox: Option<&Sandbox>,
) -> Result<Script, RestoreError> {
    let child = Watched::spawn(
        Command::new(pg_restore)
            .args(["-f", "-"])
            .stdin(Stdio::from(dump.fresh()?))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped()),
        deadline,
    )?;
    let stderr = drain(
        child
            .take_stderr()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
        MAX_TOOL_ERRORS,
    );
    let mut script = Script::default();
    if let Some(stdout) = child.take_stdout() {
        let mut reader = std::io::BufReader::with_capacity(1 << 20, stdout);
        let mut rows = CopyRows::default();
        let mut line = Vec::new();
        loop {
            line.clear();
            // A line longer than this arrives in pieces; only a line's start is looked at.
            let n =
                std::io::BufRead::read_until(&mut (&mut reader).take(1 << 20), b'\n', &mut line)
                    .map_err(|e| RestoreError::read("pg_restore's output", e))?;
            if n == 0 {
                break;
            }
            script.bytes += n as u64;
            if let Some(sandbox) = sandbox {
                // Dropping the child on the way out stops pg_restore.
                sandbox.charge(n as u64)?;
            }
            rows.line(&line);
        }
        script.rows = rows.rows;
    }
    let status = child.wait()?;
    if !status.success() {
        let errors = stderr.join().unwrap_or_default().0;
        return Err(RestoreError::Corrupt(format!(
            "pg_restore cannot read the dump to its end: {}",
            shorten(&String::from_utf8_lossy(&errors))
        )));
    }
    Ok(script)
}

/// Counts the rows of the `COPY … FROM stdin;` blocks of a pg_dump script, fed line by
/// line (a long line in pieces, each but the last without its line end).
#[derive(Default)]
struct CopyRows {
    in_copy: bool,
    /// The next piece starts a line.
    mid_line: bool,
    rows: u64,
}

impl CopyRows {
    fn line(&mut self, piece: &[u8]) {
        let starts = !self.mid_line;
        self.mid_line = !piece.ends_with(b"\n");
        if !starts {
            return;
        }
        let text = piece.strip_suffix(b"\n").unwrap_or(piece);
        if self.in_copy {
            if text == b"\\." {
                self.in_copy = false;
            } else {
                self.rows += 1;
            }
        } else if text.starts_with(b"COPY ") && text.ends_with(b" FROM stdin;") {
            self.in_copy = true;
        }
    }
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
    deadline: Deadline,
    admin_url: String,
    pub name: String,
    /// The scratch database's own URL (holds the password if the admin URL does).
    pub url: String,
}

impl ScratchDb {
    pub fn create(admin_url: &str, deadline: Deadline) -> Result<ScratchDb, RestoreError> {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let psql = tool("psql")?;
        static CLEANED: std::sync::Once = std::sync::Once::new();
        CLEANED.call_once(|| {
            if let Err(e) = drop_leftovers(&psql, admin_url) {
                tracing::warn!("cannot look for leftover scratch databases: {e}");
            }
        });
        let name = format!(
            "{}{}_{}",
            scratch_prefix(),
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        let url = with_database(admin_url, &name);
        let out = run(
            psql_command(&psql, admin_url)?
                .arg("-c")
                .arg(format!("DROP DATABASE IF EXISTS \"{name}\""))
                .arg("-c")
                .arg(format!("CREATE DATABASE \"{name}\"")),
            deadline,
        )?;
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
            deadline,
            admin_url: admin_url.to_string(),
            name,
            url,
        })
    }

    /// A `psql` that runs a script from its stdin into the scratch database and stops at
    /// the first error.
    pub fn psql_script(&self) -> Result<Watched, RestoreError> {
        Watched::spawn(
            psql_command(&self.psql, &self.url)?
                .arg("-f")
                .arg("-")
                .stdin(Stdio::piped())
                .stdout(Stdio::null())
                .stderr(Stdio::piped()),
            self.deadline,
        )
    }

    /// User tables of the scratch database.
    pub fn tables(&self) -> Result<Vec<String>, RestoreError> {
        let out = run(
            psql_command(&self.psql, &self.url)?.arg("-c").arg(
                "SELECT table_name FROM information_schema.tables WHERE table_type = 'BASE TABLE' \
             AND table_schema NOT IN ('pg_catalog', 'information_schema') ORDER BY 1",
            ),
            self.deadline,
        )?;
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

/// What a restored scratch database holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Measured {
    /// Rows of its tables, counted exactly.
    pub rows: u64,
    /// The size of its tables, with their indexes and TOAST data.
    pub bytes: u64,
}

impl ScratchDb {
    /// The scratch database's size on the server (`pg_database_size`), asked through the
    /// admin connection: nothing the dump put into the database runs for it.
    fn size(&self) -> Result<u64, RestoreError> {
        let out = run(
            psql_command(&self.psql, &self.admin_url)?
                .arg("-c")
                .arg(format!(
                    "SELECT pg_catalog.pg_database_size('{}')",
                    self.name
                )),
            self.deadline,
        )?;
        String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse()
            .map_err(|_| {
                RestoreError::Failed(format!(
                    "cannot read the size of the scratch database: {}",
                    stderr_of(&out)
                ))
            })
    }

    /// Rows (each table counted exactly) and bytes (`pg_total_relation_size`) of the
    /// restored tables: what `restore_anomaly` compares with the usual restore.
    pub fn measure(&self) -> Result<Measured, RestoreError> {
        // Table names are quoted by the server (`%I`) and the count statements run with
        // `\gexec`, one per table, so no name is ever parsed here; the script goes in by
        // stdin (one argument would be too long for thousands of tables).
        let user_tables = "FROM pg_catalog.pg_class c \
             JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
             WHERE c.relkind IN ('r', 'm') AND n.nspname <> 'information_schema' \
             AND n.nspname !~ '^pg_'";
        let script = format!(
            "SET search_path = pg_catalog, pg_temp;\n\
             SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0) {user_tables};\n\
             SELECT format('SELECT count(*) FROM %I.%I', n.nspname, c.relname) {user_tables} \
             AND c.relkind = 'r' ORDER BY c.oid\n\\gexec\n"
        );
        let out = self.script(script)?;
        let unreadable = || {
            RestoreError::Failed(format!(
                "cannot measure the restored tables: {}",
                stderr_of(&out)
            ))
        };
        if !out.status.success() {
            return Err(unreadable());
        }
        let text = String::from_utf8_lossy(&out.stdout);
        let mut numbers = text.lines().map(str::trim).filter(|l| !l.is_empty());
        let bytes = numbers
            .next()
            .and_then(|n| n.parse::<u64>().ok())
            .ok_or_else(unreadable)?;
        let mut rows = 0u64;
        for n in numbers {
            rows = rows.saturating_add(n.parse::<u64>().map_err(|_| unreadable())?);
        }
        Ok(Measured { rows, bytes })
    }

    /// Run `script` (ours, never the dump's) in the scratch database, fed by stdin.
    fn script(&self, script: String) -> Result<Output, RestoreError> {
        let (reader, mut writer) =
            std::io::pipe().map_err(|e| RestoreError::Skipped(format!("cannot run psql: {e}")))?;
        // psql that stopped reading ends the write with a broken pipe, once the read end
        // held for spawning is closed too (after run_fed, before the join).
        let feeder = std::thread::spawn(move || {
            use std::io::Write;
            let _ = writer.write_all(script.as_bytes());
        });
        let out = run_fed(
            psql_command(&self.psql, &self.url)?.args(["-f", "-"]),
            self.deadline,
            Some(Stdio::from(reader)),
        );
        let _ = feeder.join();
        out
    }
}

impl Drop for ScratchDb {
    fn drop(&mut self) {
        let sql = format!("DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)", self.name);
        let out = psql_command(&self.psql, &self.admin_url)
            .and_then(|mut cmd| run(cmd.arg("-c").arg(sql), Deadline::admin()));
        match out {
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
pub(super) fn scratch_prefix() -> String {
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
fn drop_leftovers(psql: &Path, admin_url: &str) -> Result<(), RestoreError> {
    let prefix = scratch_prefix();
    let query = format!("SELECT datname FROM pg_database WHERE starts_with(datname, '{prefix}')");
    let out = run(
        psql_command(psql, admin_url)?.arg("-c").arg(query),
        Deadline::admin(),
    )?;
    for name in String::from_utf8_lossy(&out.stdout).lines().map(str::trim) {
        let pid = name
            .strip_prefix(&prefix)
            .and_then(|rest| rest.split('_').next())
            .and_then(|pid| pid.parse::<u32>().ok());
        let Some(pid) = pid.filter(|&p| !super::sandbox::process_alive(p)) else {
            continue;
        };
        let sql = format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)");
        match run(
            psql_command(psql, admin_url)?.arg("-c").arg(sql),
            Deadline::admin(),
        ) {
            Ok(out) if out.status.success() => tracing::info!(
                "dropped the scratch database {name}, left by run {pid} that was killed"
            ),
            _ => tracing::warn!("cannot drop the leftover scratch database {name}"),
        }
    }
    Ok(())
}

/// Said once per run: a plain dump's SQL runs with the rights of `postgres_url`'s role.
/// Its backslash commands and database- and role-level statements are refused, but SQL
/// written to do harm (`COPY … TO PROGRAM`, a `DROP DATABASE` spread over lines) is only
/// stopped by a role that may not do it: one with CREATEDB and nothing more.
fn warn_if_superuser(psql: &Path, admin_url: &str) {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let query = "SELECT rolsuper FROM pg_roles WHERE rolname = current_user";
        let out = psql_command(psql, admin_url)
            .and_then(|mut cmd| run(cmd.arg("-c").arg(query), Deadline::admin()));
        if let Ok(out) = out
            && String::from_utf8_lossy(&out.stdout).trim() == "t"
        {
            tracing::warn!(
                "restore.postgres_url ({}) connects as a superuser: a hostile plain dump replayed there could run commands on the database server; use a role with only CREATEDB (see docs/restore.md)",
                redact(admin_url)
            );
        }
    });
}

fn psql_command(psql: &Path, url: &str) -> Result<Command, RestoreError> {
    let mut cmd = Command::new(psql);
    cmd.args(["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1"])
        .env("PGCONNECT_TIMEOUT", CONNECT_TIMEOUT)
        // NOTICEs ("does not exist, skipping") are not what a verdict should quote.
        .env("PGOPTIONS", "-c client_min_messages=warning");
    with_connection(&mut cmd, url)?;
    Ok(cmd)
}

/// `-d <connection string>` without its password, which goes in the child's
/// `PGPASSWORD` instead: a command line is readable by every local user (`ps`,
/// /proc/<pid>/cmdline), the environment is not.
fn with_connection<'c>(cmd: &'c mut Command, url: &str) -> Result<&'c mut Command, RestoreError> {
    let conn = ConnInfo::parse(url).map_err(|why| unreadable_url(&why))?;
    let (shown, password) = conn
        .without_password()
        .map_err(|why| unreadable_url(&why))?;
    cmd.arg("-d").arg(shown);
    // Without one in the string, libpq's own sources (an inherited PGPASSWORD, the
    // passfile) still apply.
    if let Some(password) = password {
        cmd.env("PGPASSWORD", password);
    }
    Ok(cmd)
}

fn unreadable_url(why: &str) -> RestoreError {
    RestoreError::Skipped(format!(
        "restore.postgres_url cannot be used: {why} (the value is not shown: it may hold a password)"
    ))
}

/// Connection settings that are secrets: never on a command line nor in a message.
const SECRET_KEYS: [&str; 2] = ["password", "sslpassword"];

/// A PostgreSQL connection string, read as libpq reads it: a `postgresql://` URL, or
/// `key=value` settings separated by spaces, where a value may be quoted with `'…'` and
/// a backslash takes the next character literally (`password='a b\'c'`).
#[derive(Debug, Clone, PartialEq)]
enum ConnInfo {
    Url(url::Url),
    Settings(Vec<(String, String)>),
}

impl ConnInfo {
    fn parse(text: &str) -> Result<ConnInfo, String> {
        if text.starts_with("postgresql://") || text.starts_with("postgres://") {
            return url::Url::parse(text)
                .map(ConnInfo::Url)
                .map_err(|e| format!("it is not a valid URL ({e})"));
        }
        parse_settings(text).map(ConnInfo::Settings)
    }

    /// The same settings pointing at database `db`.
    fn with_database(&self, db: &str) -> ConnInfo {
        match self {
            ConnInfo::Url(u) => {
                let mut u = u.clone();
                u.set_path(&format!("/{db}"));
                let kept: Vec<(String, String)> = u
                    .query_pairs()
                    .filter(|(k, _)| k != "dbname")
                    .map(|(k, v)| (k.into_owned(), v.into_owned()))
                    .collect();
                set_query(&mut u, &kept);
                ConnInfo::Url(u)
            }
            ConnInfo::Settings(kv) => {
                let mut kv: Vec<(String, String)> =
                    kv.iter().filter(|(k, _)| k != "dbname").cloned().collect();
                kv.push(("dbname".into(), db.into()));
                ConnInfo::Settings(kv)
            }
        }
    }

    /// The string for a command line (no secret in it) and the password. A secret that
    /// has no place in the environment (`sslpassword`) cannot be passed at all.
    fn without_password(&self) -> Result<(String, Option<String>), String> {
        let mut password = None;
        let mut take = |k: &str, v: &str| -> Result<bool, String> {
            match k {
                "password" => {
                    password = Some(v.to_string());
                    Ok(false)
                }
                "sslpassword" => Err(
                    "its sslpassword cannot be handed to the PostgreSQL tools without showing it to every local user; use a client key without a passphrase, readable only by this user".into(),
                ),
                _ => Ok(true),
            }
        };
        match self {
            ConnInfo::Url(u) => {
                let mut u = u.clone();
                if let Some(p) = u.password() {
                    take("password", &decode(p))?;
                    let _ = u.set_password(None);
                }
                let mut kept = Vec::new();
                for (k, v) in u.query_pairs() {
                    if take(&k, &v)? {
                        kept.push((k.into_owned(), v.into_owned()));
                    }
                }
                set_query(&mut u, &kept);
                Ok((u.to_string(), password))
            }
            ConnInfo::Settings(kv) => {
                let mut kept = Vec::new();
                for (k, v) in kv {
                    if take(k, v)? {
                        kept.push((k.clone(), v.clone()));
                    }
                }
                Ok((settings_string(&kept), password))
            }
        }
    }

    /// For messages: every secret replaced by `***`.
    fn redacted(&self) -> String {
        match self {
            ConnInfo::Url(u) => {
                let mut u = u.clone();
                if u.password().is_some() {
                    let _ = u.set_password(Some("***"));
                }
                let masked: Vec<(String, String)> = u
                    .query_pairs()
                    .map(|(k, v)| {
                        let v = if SECRET_KEYS.contains(&k.as_ref()) {
                            "***".into()
                        } else {
                            v.into_owned()
                        };
                        (k.into_owned(), v)
                    })
                    .collect();
                set_query(&mut u, &masked);
                // `***` is written as is, not percent-encoded, so a reader sees the mask.
                u.to_string().replace("%2A%2A%2A", "***")
            }
            ConnInfo::Settings(kv) => kv
                .iter()
                .map(|(k, v)| {
                    if SECRET_KEYS.contains(&k.as_str()) {
                        format!("{k}=***")
                    } else {
                        format!("{k}={}", quote_value(v))
                    }
                })
                .collect::<Vec<_>>()
                .join(" "),
        }
    }
}

/// Replace a URL's query with `pairs` (none: no `?` at all).
fn set_query(u: &mut url::Url, pairs: &[(String, String)]) {
    if pairs.is_empty() {
        u.set_query(None);
    } else {
        u.query_pairs_mut().clear().extend_pairs(pairs);
    }
}

fn decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s)
        .decode_utf8_lossy()
        .into_owned()
}

/// `key=value` settings as libpq's `conninfo_parse` reads them.
fn parse_settings(text: &str) -> Result<Vec<(String, String)>, String> {
    let mut out = Vec::new();
    let mut chars = text.chars().peekable();
    loop {
        while chars.next_if(|c| c.is_ascii_whitespace()).is_some() {}
        if chars.peek().is_none() {
            return Ok(out);
        }
        let mut key = String::new();
        while let Some(c) = chars.next_if(|&c| c != '=' && !c.is_ascii_whitespace()) {
            key.push(c);
        }
        while chars.next_if(|c| c.is_ascii_whitespace()).is_some() {}
        if chars.next() != Some('=') {
            // The word is not shown: with an unquoted password of several words, it is
            // part of the password.
            return Err(
                "a word of its key=value settings has no `=` after it (quote values that hold spaces: password='a b')".into(),
            );
        }
        while chars.next_if(|c| c.is_ascii_whitespace()).is_some() {}
        let mut value = String::new();
        if chars.next_if_eq(&'\'').is_some() {
            loop {
                match chars.next() {
                    None => {
                        return Err("a quoted value has no closing quote".into());
                    }
                    Some('\\') => value.extend(chars.next()),
                    Some('\'') => break,
                    Some(c) => value.push(c),
                }
            }
        } else {
            while let Some(c) = chars.next_if(|c| !c.is_ascii_whitespace()) {
                if c == '\\' {
                    value.extend(chars.next());
                } else {
                    value.push(c);
                }
            }
        }
        out.push((key, value));
    }
}

/// Settings written back for libpq, every value quoted.
fn settings_string(kv: &[(String, String)]) -> String {
    kv.iter()
        .map(|(k, v)| format!("{k}={}", quote_value(v)))
        .collect::<Vec<_>>()
        .join(" ")
}

fn quote_value(v: &str) -> String {
    format!("'{}'", v.replace('\\', "\\\\").replace('\'', "\\'"))
}

/// When a tool run for a test must have finished: the test's deadline (a dump's SQL
/// can run for ever — `pg_dump` output even sets `statement_timeout = 0`), or
/// [`ADMIN_TIMEOUT`] for cleaning up.
#[derive(Debug, Clone, Copy)]
pub struct Deadline {
    at: Instant,
    seconds: u64,
}

/// How long dropping a scratch database and the other housekeeping may take.
const ADMIN_TIMEOUT: Duration = Duration::from_secs(60);

impl Deadline {
    pub fn of(sandbox: &Sandbox) -> Deadline {
        let seconds = match sandbox.time_limit() {
            RestoreError::TimeLimit { seconds } => seconds,
            _ => 0,
        };
        Deadline {
            at: sandbox.deadline(),
            seconds,
        }
    }

    pub(super) fn admin() -> Deadline {
        Deadline {
            at: Instant::now() + ADMIN_TIMEOUT,
            seconds: ADMIN_TIMEOUT.as_secs(),
        }
    }

    fn error(&self) -> RestoreError {
        RestoreError::TimeLimit {
            seconds: self.seconds,
        }
    }
}

/// A child process that is killed when its deadline passes (a watchdog thread does it,
/// so a parent blocked writing to its stdin is freed too), or when this is dropped.
pub struct Watched {
    child: Arc<Mutex<Child>>,
    killed: Arc<AtomicBool>,
    stop: Option<mpsc::Sender<()>>,
    watchdog: Option<std::thread::JoinHandle<()>>,
    deadline: Deadline,
}

impl Watched {
    pub fn spawn(cmd: &mut Command, deadline: Deadline) -> Result<Watched, RestoreError> {
        let child = crate::child::dies_with_us(cmd)
            .env("PGCONNECT_TIMEOUT", CONNECT_TIMEOUT)
            .spawn()
            .map_err(|e| {
                RestoreError::Skipped(format!(
                    "cannot run {}: {e}",
                    cmd.get_program().to_string_lossy()
                ))
            })?;
        let child = Arc::new(Mutex::new(child));
        let killed = Arc::new(AtomicBool::new(false));
        let (stop, stopped) = mpsc::channel::<()>();
        let (c, k) = (child.clone(), killed.clone());
        let watchdog = std::thread::spawn(move || {
            let wait = deadline.at.saturating_duration_since(Instant::now());
            if let Err(mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(wait) {
                let mut child = c.lock().unwrap_or_else(|e| e.into_inner());
                // kill() does nothing to a child already reaped: its pid is never reused here.
                if matches!(child.try_wait(), Ok(None)) {
                    k.store(true, Ordering::Relaxed);
                    let _ = child.kill();
                }
            }
        });
        Ok(Watched {
            child,
            killed,
            stop: Some(stop),
            watchdog: Some(watchdog),
            deadline,
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Child> {
        self.child.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn take_stdin(&self) -> Option<std::process::ChildStdin> {
        self.lock().stdin.take()
    }

    pub fn take_stdout(&self) -> Option<std::process::ChildStdout> {
        self.lock().stdout.take()
    }

    pub fn take_stderr(&self) -> Option<std::process::ChildStderr> {
        self.lock().stderr.take()
    }

    /// Wait for the child to exit; killed at the deadline, it is the time limit.
    pub fn wait(self) -> Result<std::process::ExitStatus, RestoreError> {
        self.wait_watching(&mut || Ok(()))
    }

    /// [`Watched::wait`], asking `watch` every [`WATCH_EVERY`]: its error kills the
    /// child (when this is dropped) and is the result.
    fn wait_watching(
        mut self,
        watch: &mut dyn FnMut() -> Result<(), RestoreError>,
    ) -> Result<std::process::ExitStatus, RestoreError> {
        let mut watched = Instant::now();
        let status = loop {
            let polled = self.lock().try_wait();
            match polled {
                Ok(Some(status)) => break status,
                Ok(None) if watched.elapsed() >= WATCH_EVERY => {
                    watch()?;
                    watched = Instant::now();
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(10)),
                Err(e) => {
                    return Err(RestoreError::Skipped(format!(
                        "cannot wait for a PostgreSQL tool: {e}"
                    )));
                }
            }
        };
        self.stop_watchdog();
        if self.killed.load(Ordering::Relaxed) {
            return Err(self.deadline.error());
        }
        Ok(status)
    }

    fn stop_watchdog(&mut self) {
        drop(self.stop.take());
        if let Some(t) = self.watchdog.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Watched {
    fn drop(&mut self) {
        self.stop_watchdog();
        let mut child = self.lock();
        if matches!(child.try_wait(), Ok(None)) {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The most of a tool's standard output kept (a table of contents, a table list): more
/// is refused rather than held in memory.
const MAX_TOOL_OUTPUT: u64 = 64 << 20;
/// The most of a tool's error output kept (only its start is ever shown).
const MAX_TOOL_ERRORS: u64 = 1 << 20;

/// Run a tool to its end (or its deadline: then it is killed), with its output; one
/// that writes more than [`MAX_TOOL_OUTPUT`] is `restore_limit_exceeded`.
pub(super) fn run(cmd: &mut Command, deadline: Deadline) -> Result<Output, RestoreError> {
    run_fed(cmd, deadline, None)
}

/// [`run`] with `input` (or nothing) as the tool's standard input.
fn run_fed(
    cmd: &mut Command,
    deadline: Deadline,
    input: Option<Stdio>,
) -> Result<Output, RestoreError> {
    run_watched(cmd, deadline, input, &mut || Ok(()))
}

/// Read a pipe on a thread, keeping its first `cap` bytes and reading (and dropping) the
/// rest so the tool never blocks; whether there was more.
fn drain(pipe: Option<Box<dyn Read + Send>>, cap: u64) -> std::thread::JoinHandle<(Vec<u8>, bool)> {
    std::thread::spawn(move || {
        let mut kept = Vec::new();
        let mut more = 0;
        if let Some(mut p) = pipe {
            let _ = (&mut p).take(cap).read_to_end(&mut kept);
            more = std::io::copy(&mut p, &mut std::io::sink()).unwrap_or(0);
        }
        (kept, more > 0)
    })
}

/// How often [`run_watched`] asks its `watch` while the tool runs.
const WATCH_EVERY: Duration = Duration::from_secs(1);

/// [`run_fed`], asking `watch` every [`WATCH_EVERY`] while the tool runs: its error
/// stops the tool and is the result.
fn run_watched(
    cmd: &mut Command,
    deadline: Deadline,
    input: Option<Stdio>,
    watch: &mut dyn FnMut() -> Result<(), RestoreError>,
) -> Result<Output, RestoreError> {
    let program = cmd.get_program().to_string_lossy().into_owned();
    let child = Watched::spawn(
        cmd.stdin(input.unwrap_or_else(Stdio::null))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped()),
        deadline,
    )?;
    let stdout = drain(
        child
            .take_stdout()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
        MAX_TOOL_OUTPUT,
    );
    let stderr = drain(
        child
            .take_stderr()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
        MAX_TOOL_ERRORS,
    );
    let status = child.wait_watching(watch)?;
    let (stdout, overflow) = stdout.join().unwrap_or_default();
    if overflow {
        return Err(RestoreError::OverLimit(format!(
            "restoring stopped: {program} wrote more than {} of output, the most a restore test reads from it",
            bytesize::ByteSize(MAX_TOOL_OUTPUT)
        )));
    }
    Ok(Output {
        status,
        stdout,
        stderr: stderr.join().unwrap_or_default().0,
    })
}

/// A tool's error output, shortened, for a detail.
pub fn stderr_of(out: &Output) -> String {
    shorten(&String::from_utf8_lossy(&out.stderr))
}

/// `text` on one line of at most [`SHOWN_STDERR`] characters: line ends, tabs (libpq
/// indents its hints with one) and other control characters become single spaces.
pub fn shorten(text: &str) -> String {
    let text = text
        .split(|c: char| c.is_whitespace() || c.is_control())
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    match text.char_indices().nth(SHOWN_STDERR) {
        Some((i, _)) => format!("{}…", &text[..i]),
        None if text.is_empty() => "no error output".into(),
        None => text,
    }
}

/// `url` pointing at database `db`: a URL's path is replaced; `key=value` settings get
/// their `dbname` replaced. A string that cannot be read is returned as is (using it
/// fails with the reason).
pub fn with_database(url: &str, db: &str) -> String {
    match ConnInfo::parse(url) {
        Ok(ConnInfo::Url(u)) => ConnInfo::Url(u).with_database(db).as_string(),
        Ok(settings) => settings.with_database(db).as_string(),
        Err(_) => url.to_string(),
    }
}

impl ConnInfo {
    /// The whole string, secrets included (it is only parsed again, never shown).
    fn as_string(&self) -> String {
        match self {
            ConnInfo::Url(u) => u.to_string(),
            ConnInfo::Settings(kv) => settings_string(kv),
        }
    }
}

/// `url` without its secrets, for messages: `user:***@` in a URL's authority and
/// `password=***` in its query string or in `key=value` settings.
pub fn redact(url: &str) -> String {
    match ConnInfo::parse(url) {
        Ok(conn) => conn.redacted(),
        Err(_) => "(a connection string that cannot be read, not shown)".into(),
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
            with_database("host=h dbname=y user=u", "x"),
            "host='h' user='u' dbname='x'"
        );
        assert_eq!(
            redact("postgresql://u:secret@h/db"),
            "postgresql://u:***@h/db"
        );
        assert_eq!(redact("postgresql://h/db"), "postgresql://h/db");
        assert_eq!(redact("postgresql://u@h/db"), "postgresql://u@h/db");
        assert_eq!(redact("host=h password=secret"), "host='h' password=***");
        assert_eq!(
            redact("host=h password='Pg Secret Part2 Part3' user=u"),
            "host='h' password=*** user='u'"
        );
        assert_eq!(
            redact("postgresql://h:1/db?user=u&password=S3cret&sslmode=require"),
            "postgresql://h:1/db?user=u&password=***&sslmode=require"
        );
    }

    /// `url` without its password, and the password.
    fn split_password(url: &str) -> (String, Option<String>) {
        ConnInfo::parse(url).unwrap().without_password().unwrap()
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
            (
                "host='h' dbname='x'".to_string(),
                Some("secret".to_string())
            )
        );
        assert_eq!(
            split_password("postgresql://u@h/db"),
            ("postgresql://u@h/db".to_string(), None)
        );
    }

    #[test]
    fn key_value_settings_are_read_as_libpq_reads_them() {
        let kv = |s: &str| parse_settings(s).unwrap();
        let pair = |k: &str, v: &str| (k.to_string(), v.to_string());
        assert_eq!(
            kv("host=h password='Pg Secret Part2 Part3' user=u"),
            vec![
                pair("host", "h"),
                pair("password", "Pg Secret Part2 Part3"),
                pair("user", "u")
            ]
        );
        assert_eq!(
            kv(r"password='it\'s \\ x'  port = 5432 a=b\ c"),
            vec![
                pair("password", r"it's \ x"),
                pair("port", "5432"),
                pair("a", "b c")
            ]
        );
        assert_eq!(kv("  "), vec![]);
        assert!(parse_settings("password='open").is_err());
        assert!(parse_settings("host").is_err());
        // Written back quoted, the value survives another parse.
        let (shown, password) =
            split_password(r"host=h password='a b\'c' application_name='x y\\'");
        assert_eq!(password.as_deref(), Some("a b'c"));
        assert_eq!(
            parse_settings(&shown).unwrap(),
            vec![pair("host", "h"), pair("application_name", r"x y\")]
        );
        assert!(!shown.contains("a b"));
    }

    #[test]
    fn tools_stop_at_their_deadline_and_their_output_is_bounded() {
        let soon = Deadline {
            at: Instant::now() + Duration::from_secs(1),
            seconds: 1,
        };
        let started = Instant::now();
        let slept = run(Command::new("sleep").arg("30"), soon);
        assert!(
            matches!(slept, Err(RestoreError::TimeLimit { seconds: 1 })),
            "{slept:?}"
        );
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{:?}",
            started.elapsed()
        );

        let later = Deadline {
            at: Instant::now() + Duration::from_secs(60),
            seconds: 60,
        };
        let flood = run(
            Command::new("sh").args(["-c", "head -c 70000000 /dev/zero"]),
            later,
        );
        match flood {
            Err(RestoreError::OverLimit(why)) => assert!(why.contains("64.0 MiB"), "{why}"),
            other => panic!("{other:?}"),
        }
        let ok = run(
            Command::new("sh").args(["-c", "echo hi; echo oops >&2"]),
            later,
        )
        .unwrap();
        assert_eq!(ok.stdout, b"hi\n");
        assert_eq!(ok.stderr, b"oops\n");
    }

    #[test]
    fn unreadable_settings_are_refused_without_showing_them() {
        for bad in [
            "host=h password=Pg Secret Part2",
            "host=h password='Pg Secret",
        ] {
            let err = ConnInfo::parse(bad).unwrap_err();
            for part in ["Pg", "Secret", "Part2"] {
                assert!(!err.contains(part), "{err}");
            }
            assert!(!redact(bad).contains("Secret"), "{}", redact(bad));
        }
    }

    #[test]
    fn sslpassword_is_refused_and_never_shown() {
        for url in [
            "host=h sslpassword='k e y'",
            "postgresql://h/db?sslpassword=key",
        ] {
            let err = ConnInfo::parse(url)
                .unwrap()
                .without_password()
                .unwrap_err();
            assert!(err.contains("sslpassword"), "{err}");
            assert!(!err.contains("key") || !err.contains("k e y"), "{err}");
            assert!(!redact(url).contains("key"), "{}", redact(url));
        }
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
