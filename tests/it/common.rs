//! Shared harness for the integration tests: a temp workspace with a config, helpers to
//! write backup files with chosen mtimes, and a runner for the real binary.
#![allow(dead_code)]

use chrono::{DateTime, Utc};
use std::path::{Path, PathBuf};
use std::process::Output;

pub struct Workspace {
    pub dir: tempfile::TempDir,
    /// Fixed "now" for the binary (`BACKUP_MONITOR_NOW`), if set.
    pub now: Option<DateTime<Utc>>,
    pub envs: Vec<(String, String)>,
    /// With `BM_TEST_STORE=postgres`: this workspace's own PostgreSQL database, given
    /// to the binary as `DATABASE_URL` (a test's own `.env(…)` still wins).
    pub pg: Option<TestDatabase>,
    /// The SQLite store file, relative to the workspace, when `pg` is None: the default
    /// config's `backup_monitor.db` unless the test's config names another.
    pub sqlite_file: String,
}

pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| {
            panic!(
                "stdout is not one JSON document ({e}):\n{}\nstderr:\n{}",
                self.stdout, self.stderr
            )
        })
    }

    /// Kinds of the problems in the JSON document.
    pub fn kinds(&self) -> Vec<String> {
        self.json()["problems"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|p| p["kind"].as_str().unwrap_or("").to_string())
                    .collect()
            })
            .unwrap_or_default()
    }
}

impl From<Output> for Run {
    fn from(o: Output) -> Run {
        Run {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }
}

impl Workspace {
    /// A workspace on the store engine of this run: SQLite, or with
    /// `BM_TEST_STORE=postgres` a PostgreSQL database of its own.
    pub fn new() -> Workspace {
        let pg = store_is_postgres().then(TestDatabase::create);
        Workspace::with_store(pg)
    }

    /// A workspace whose store is always the SQLite file, in either run: for tests of
    /// that file itself (damaged, read-only, locked, on a full disk).
    pub fn sqlite() -> Workspace {
        Workspace::with_store(None)
    }

    /// This workspace, moved onto the SQLite store (see [`Workspace::sqlite`]).
    pub fn on_sqlite(mut self) -> Workspace {
        self.pg = None;
        self
    }

    fn with_store(pg: Option<TestDatabase>) -> Workspace {
        Workspace {
            dir: tempfile::tempdir().expect("temp dir"),
            now: None,
            envs: Vec::new(),
            pg,
            sqlite_file: "backup_monitor.db".into(),
        }
    }

    /// This workspace with its SQLite store at `rel` (as its config's `database_url`
    /// says), for the store helpers below.
    pub fn with_sqlite_file(mut self, rel: &str) -> Workspace {
        self.sqlite_file = rel.into();
        self
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    pub fn config_path(&self) -> PathBuf {
        self.path("config.yaml")
    }

    /// Write `config.yaml`. Store, reports and logs default to paths inside the workspace.
    pub fn write_config(&self, yaml: &str) {
        std::fs::write(self.config_path(), yaml).expect("write config");
    }

    /// Write a file with `content` and set its mtime.
    pub fn write_file(&self, rel: &str, content: &[u8], mtime: DateTime<Utc>) -> PathBuf {
        let p = self.path(rel);
        if let Some(dir) = p.parent() {
            std::fs::create_dir_all(dir).expect("mkdir");
        }
        std::fs::write(&p, content).expect("write file");
        set_mtime(&p, mtime);
        p
    }

    pub fn env(mut self, k: &str, v: &str) -> Workspace {
        self.envs.push((k.into(), v.into()));
        self
    }

    /// A command for the real binary with `--config` set, the workspace as working
    /// directory, and a clean environment for the variables the program reads.
    pub fn command(&self) -> assert_cmd::Command {
        let mut cmd = binary();
        cmd.current_dir(self.dir.path())
            .arg("--config")
            .arg(self.config_path())
            .arg("--no-progress")
            // The user's cache directory (the tools' state of a PostgreSQL store's runs)
            // is the workspace's own.
            .env("XDG_CACHE_HOME", self.path(".cache"));
        if let Some(now) = self.now {
            cmd.env("BACKUP_MONITOR_NOW", now.to_rfc3339());
        }
        if let Some(pg) = &self.pg {
            cmd.env("DATABASE_URL", &pg.url);
        }
        for (k, v) in &self.envs {
            cmd.env(k, v);
        }
        cmd
    }

    /// The binary as [`Workspace::command`] sets it up (config, store, clock, environment),
    /// as a plain `std::process::Command` for tests that spawn, signal or measure it.
    pub fn process(&self) -> std::process::Command {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_backup-monitor"));
        cmd.current_dir(self.dir.path())
            .arg("--config")
            .arg(self.config_path())
            .arg("--no-progress")
            .env_remove("DATABASE_URL")
            .env_remove("BACKUP_MONITOR_CONFIG")
            .env_remove("BACKUP_MONITOR_NOW")
            .env("TZ", "UTC")
            .env("XDG_CACHE_HOME", self.path(".cache"));
        if let Some(now) = self.now {
            cmd.env("BACKUP_MONITOR_NOW", now.to_rfc3339());
        }
        if let Some(pg) = &self.pg {
            cmd.env("DATABASE_URL", &pg.url);
        }
        for (k, v) in &self.envs {
            cmd.env(k, v);
        }
        cmd
    }

    pub fn run(&self, args: &[&str]) -> Run {
        self.command()
            .args(args)
            .output()
            .expect("run binary")
            .into()
    }

    /// Run with `--format json` and return the parsed document too.
    pub fn run_json(&self, args: &[&str]) -> (Run, serde_json::Value) {
        let mut all = args.to_vec();
        all.extend(["--format", "json"]);
        let run = self.run(&all);
        let doc = run.json();
        (run, doc)
    }

    /// One value from the store, e.g. `let n: i64 = w.store_value("SELECT COUNT(*) FROM backups")`:
    /// the first column of the first row.
    pub fn store_value<T: StoreValue>(&self, sql: &str) -> T {
        let rows = self.store_rows_raw(sql);
        let Some(row) = rows.first() else {
            panic!("{sql}: no rows");
        };
        cell(sql, row, 0)
    }

    /// The first column of every row.
    pub fn store_column<T: StoreValue>(&self, sql: &str) -> Vec<T> {
        self.store_rows_raw(sql)
            .iter()
            .map(|row| cell(sql, row, 0))
            .collect()
    }

    /// Every row, each read as a tuple, e.g. `let rows: Vec<(String, i64)> = …`.
    pub fn store_rows<R: StoreRow>(&self, sql: &str) -> Vec<R> {
        self.store_rows_raw(sql)
            .iter()
            .map(|row| R::from_cells(sql, row))
            .collect()
    }

    /// Every row of a query on the workspace's store, whichever engine it is on: each
    /// value as the engine writes it as text, `None` for NULL. Write the SQL so both
    /// engines read it the same way (values inline, no placeholders; no PRAGMAs).
    pub fn store_rows_raw(&self, sql: &str) -> Vec<Vec<Option<String>>> {
        self.try_store_rows_raw(sql)
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
    }

    /// [`Workspace::store_rows_raw`], or why the query failed (no store yet, no such
    /// table yet), for tests that look at a store a killed run may not have set up.
    pub fn try_store_rows_raw(&self, sql: &str) -> Result<Vec<Vec<Option<String>>>, String> {
        match &self.pg {
            Some(pg) => try_pg_rows(&mut pg.client(), sql),
            None => {
                let conn = self.open_sqlite().map_err(|e| e.to_string())?;
                let mut stmt = conn.prepare(sql).map_err(|e| e.to_string())?;
                let columns = stmt.column_count();
                let mut rows = stmt.query([]).map_err(|e| e.to_string())?;
                let mut out = Vec::new();
                while let Some(row) = rows.next().map_err(|e| e.to_string())? {
                    out.push(
                        (0..columns)
                            .map(|i| row.get_ref(i).map(sqlite_text))
                            .collect::<Result<_, _>>()
                            .map_err(|e| e.to_string())?,
                    );
                }
                Ok(out)
            }
        }
    }

    /// Run statements (`;`-separated, no placeholders) on the workspace's store, to
    /// alter what a run stored.
    pub fn store_execute(&self, sql: &str) {
        match &self.pg {
            Some(pg) => pg
                .client()
                .batch_execute(sql)
                .unwrap_or_else(|e| panic!("{sql}: {}", pg_error(&e))),
            None => self
                .sqlite_store()
                .execute_batch(sql)
                .unwrap_or_else(|e| panic!("{sql}: {e}")),
        }
    }

    /// Everything the store holds, as text, for checks that a secret never reached it:
    /// on SQLite the bytes of the file and its write-ahead log (freed pages included);
    /// on PostgreSQL every row of every table.
    pub fn store_text(&self) -> String {
        match &self.pg {
            Some(pg) => {
                let mut client = pg.client();
                let tables = pg_rows(
                    &mut client,
                    "SELECT table_name FROM information_schema.tables \
                     WHERE table_schema = current_schema() ORDER BY table_name",
                );
                let mut out = String::new();
                for t in tables
                    .into_iter()
                    .filter_map(|r| r.into_iter().next().flatten())
                {
                    let sql = format!("SELECT CAST(t AS text) FROM \"{t}\" AS t");
                    for row in pg_rows(&mut client, &sql) {
                        out.extend(row.into_iter().flatten().map(|v| v + "\n"));
                    }
                }
                out
            }
            None => [
                self.sqlite_file.clone(),
                format!("{}-wal", self.sqlite_file),
            ]
            .iter()
            .filter_map(|f| std::fs::read(self.path(f)).ok())
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .collect(),
        }
    }

    /// The store the binary uses, opened through the library (to seed it as another run
    /// would have), as this machine's host.
    pub fn open_store(&self) -> backup_monitor::store::Store {
        let file = self.path(&self.sqlite_file);
        match &self.pg {
            Some(pg) => {
                let target = backup_monitor::store::PgTarget::parse(&pg.url)
                    .unwrap_or_else(|e| panic!("test database URL: {e}"));
                backup_monitor::store::Store::open_postgres(
                    &target,
                    &file,
                    &backup_monitor::config::host_name(),
                )
                .expect("open the PostgreSQL store")
            }
            None => backup_monitor::store::Store::open(&file).expect("open the SQLite store"),
        }
    }

    /// The SQLite store file (`backup_monitor.db` beside the config unless set with
    /// [`Workspace::with_sqlite_file`]), for what only SQLite has (PRAGMAs, pages); the
    /// workspace must be on SQLite and the store must exist.
    pub fn sqlite_store(&self) -> rusqlite::Connection {
        assert!(
            self.pg.is_none(),
            "this test reads the SQLite file: make its workspace with Workspace::sqlite()"
        );
        self.open_sqlite()
            .unwrap_or_else(|e| panic!("open the store {}: {e}", self.sqlite_file))
    }

    /// The SQLite store, never creating it (an empty file would be a store to the binary).
    fn open_sqlite(&self) -> rusqlite::Result<rusqlite::Connection> {
        use rusqlite::OpenFlags as F;
        rusqlite::Connection::open_with_flags(
            self.path(&self.sqlite_file),
            F::SQLITE_OPEN_READ_WRITE | F::SQLITE_OPEN_URI | F::SQLITE_OPEN_NO_MUTEX,
        )
    }

    /// The local lock file a run of this workspace holds: beside the SQLite store, or for
    /// a PostgreSQL store `backup-monitor-<host>-<store>.lock` in the temporary directory.
    pub fn lock_path(&self) -> PathBuf {
        let anchor = match &self.pg {
            None => self.path(&self.sqlite_file),
            Some(pg) => {
                let target = backup_monitor::store::PgTarget::parse(&pg.url)
                    .unwrap_or_else(|e| panic!("test database URL: {e}"));
                backup_monitor::config::pg_lock_anchor(
                    &backup_monitor::config::host_name(),
                    &target,
                )
            }
        };
        backup_monitor::lock::lock_path(&anchor)
    }

    /// Whether the binary's store is PostgreSQL in this workspace.
    pub fn on_postgres(&self) -> bool {
        self.pg.is_some()
    }
}

/// `s` as an SQL string literal, for a value inside a statement run on the store.
pub fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// Whether this run puts workspaces' stores on PostgreSQL (`BM_TEST_STORE=postgres`).
pub fn store_is_postgres() -> bool {
    std::env::var("BM_TEST_STORE").as_deref() == Ok("postgres")
}

/// A SQLite value as text, as PostgreSQL's text form would give it.
fn sqlite_text(v: rusqlite::types::ValueRef<'_>) -> Option<String> {
    use rusqlite::types::ValueRef as V;
    match v {
        V::Null => None,
        V::Integer(i) => Some(i.to_string()),
        V::Real(f) => Some(f.to_string()),
        V::Text(t) | V::Blob(t) => Some(String::from_utf8_lossy(t).into_owned()),
    }
}

/// Rows of a query in PostgreSQL's text form.
fn pg_rows(client: &mut postgres::Client, sql: &str) -> Vec<Vec<Option<String>>> {
    try_pg_rows(client, sql).unwrap_or_else(|e| panic!("{sql}: {e}"))
}

fn try_pg_rows(
    client: &mut postgres::Client,
    sql: &str,
) -> Result<Vec<Vec<Option<String>>>, String> {
    Ok(client
        .simple_query(sql)
        .map_err(|e| pg_error(&e))?
        .into_iter()
        .filter_map(|m| match m {
            postgres::SimpleQueryMessage::Row(r) => {
                Some((0..r.len()).map(|i| r.get(i).map(str::to_string)).collect())
            }
            _ => None,
        })
        .collect())
}

/// A PostgreSQL error with the server's own message (the error's text alone is "db error").
fn pg_error(e: &postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{} ({})", db.message(), db.code().code()),
        None => e.to_string(),
    }
}

fn cell<T: StoreValue>(sql: &str, row: &[Option<String>], i: usize) -> T {
    let text = row.get(i).unwrap_or_else(|| panic!("{sql}: no column {i}"));
    T::parse(text.as_deref()).unwrap_or_else(|e| panic!("{sql}: column {i}: {e}"))
}

/// A value read from the store's text form.
pub trait StoreValue: Sized {
    fn parse(text: Option<&str>) -> Result<Self, String>;
}

macro_rules! parsed_store_value {
    ($($t:ty),*) => {$(
        impl StoreValue for $t {
            fn parse(text: Option<&str>) -> Result<Self, String> {
                let text = text.ok_or("NULL")?;
                text.parse().map_err(|e| format!("{text:?}: {e}"))
            }
        }
    )*};
}
parsed_store_value!(i64, i32, u64, u32, usize, f64, String);

impl StoreValue for bool {
    /// SQLite's 0/1 or PostgreSQL's t/f.
    fn parse(text: Option<&str>) -> Result<Self, String> {
        match text.ok_or("NULL")? {
            "1" | "t" | "true" => Ok(true),
            "0" | "f" | "false" => Ok(false),
            other => Err(format!("{other:?} is not a boolean")),
        }
    }
}

impl<T: StoreValue> StoreValue for Option<T> {
    fn parse(text: Option<&str>) -> Result<Self, String> {
        text.map(|t| T::parse(Some(t))).transpose()
    }
}

/// A row read as a tuple of [`StoreValue`]s.
pub trait StoreRow: Sized {
    fn from_cells(sql: &str, row: &[Option<String>]) -> Self;
}

macro_rules! tuple_store_row {
    ($(($($t:ident $i:tt),+)),*) => {$(
        impl<$($t: StoreValue),+> StoreRow for ($($t,)+) {
            fn from_cells(sql: &str, row: &[Option<String>]) -> Self {
                ($(cell::<$t>(sql, row, $i),)+)
            }
        }
    )*};
}
tuple_store_row!((A 0), (A 0, B 1), (A 0, B 1, C 2), (A 0, B 1, C 2, D 3), (A 0, B 1, C 2, D 3, E 4));

impl Drop for Workspace {
    /// A PostgreSQL store's local lock file is outside the workspace: remove it too.
    fn drop(&mut self) {
        if self.pg.is_some() {
            let _ = std::fs::remove_file(self.lock_path());
        }
    }
}

/// The real binary with a clean environment for the variables it reads (`DATABASE_URL`,
/// `BACKUP_MONITOR_CONFIG`, `BACKUP_MONITOR_NOW`) and `TZ=UTC`, for tests that choose
/// the config and working directory themselves.
pub fn binary() -> assert_cmd::Command {
    let mut cmd = assert_cmd::Command::cargo_bin("backup-monitor").expect("binary");
    cmd.env_remove("DATABASE_URL")
        .env_remove("BACKUP_MONITOR_CONFIG")
        .env_remove("BACKUP_MONITOR_NOW")
        .env("TZ", "UTC");
    cmd
}

pub fn set_mtime(p: &Path, t: DateTime<Utc>) {
    let ft = filetime::FileTime::from_unix_time(t.timestamp(), t.timestamp_subsec_nanos());
    filetime::set_file_mtime(p, ft).expect("set mtime");
}

pub fn ts(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s)
        .expect("rfc3339")
        .with_timezone(&Utc)
}

/// The restore-test result for `path` in a run document.
pub fn restore_result<'a>(doc: &'a serde_json::Value, path: &str) -> &'a serde_json::Value {
    doc["restore_tests"]["results"]
        .as_array()
        .expect("results")
        .iter()
        .find(|r| r["path"] == path)
        .unwrap_or_else(|| panic!("no result for {path}: {doc:#}"))
}

/// Kinds of the problems about `path` in a run document.
pub fn problem_kinds_of(doc: &serde_json::Value, path: &str) -> Vec<String> {
    doc["problems"]
        .as_array()
        .expect("problems")
        .iter()
        .filter(|p| p["path"] == path)
        .map(|p| p["kind"].as_str().unwrap_or("").to_string())
        .collect()
}

/// A child whose own peak RSS is measured. A child forked from this test process
/// inherits its high-water mark (the kernel folds the parent's into the child's at fork
/// and exec), so with many tests running in one process `wait4`'s figure would be the
/// test process's. GNU time forks the binary from a small process and reports its own.
pub struct Measured {
    pub child: std::process::Child,
    rss_file: tempfile::NamedTempFile,
}

/// Spawn `cmd` under `/usr/bin/time` (Debian package `time`), keeping its program,
/// arguments, environment, directory and pipes.
pub fn spawn_measured(cmd: &std::process::Command) -> Measured {
    let rss_file = tempfile::NamedTempFile::new().expect("temp file");
    let mut timed = std::process::Command::new("/usr/bin/time");
    timed
        .arg("-q")
        .arg("-f")
        .arg("%M %U %S")
        .arg("-o")
        .arg(rss_file.path())
        .arg(cmd.get_program())
        .args(cmd.get_args())
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    if let Some(dir) = cmd.get_current_dir() {
        timed.current_dir(dir);
    }
    for (k, v) in cmd.get_envs() {
        match v {
            Some(v) => timed.env(k, v),
            None => timed.env_remove(k),
        };
    }
    let child = timed
        .spawn()
        .expect("spawn the binary under /usr/bin/time (apt-get install time)");
    Measured { child, rss_file }
}

impl Measured {
    /// Wait for the child: its exit code and its own peak RSS in KiB.
    pub fn wait(self) -> (i32, u64) {
        let (code, rss, _) = self.wait_cpu();
        (code, rss)
    }

    /// Wait for the child: its exit code, its own peak RSS in KiB and the user CPU time
    /// it used (the program's own work: neither the wall clock nor system time, both of
    /// which grow with whatever else the machine is doing).
    pub fn wait_cpu(mut self) -> (i32, u64, std::time::Duration) {
        let status = self.child.wait().expect("wait for the binary");
        let text = std::fs::read_to_string(self.rss_file.path()).unwrap_or_default();
        let figures: Vec<f64> = text
            .lines()
            .next_back()
            .unwrap_or_default()
            .split_whitespace()
            .filter_map(|f| f.parse().ok())
            .collect();
        let [rss, user, _system] = figures[..] else {
            panic!("no peak RSS and CPU time from /usr/bin/time: {text:?}");
        };
        let cpu = std::time::Duration::from_secs_f64(user);
        (status.code().unwrap_or(-1), rss as u64, cpu)
    }
}

/// Run a shell command in the workspace; it must succeed. Returns its stdout.
pub fn sh(ws: &Workspace, script: &str) -> String {
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg(script)
        .current_dir(ws.dir.path())
        .output()
        .expect("run sh");
    assert!(
        out.status.success(),
        "`{script}` failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The PostgreSQL server for tests (`BM_TEST_PG_URL`, e.g.
/// `postgresql://postgres@127.0.0.1:55432/postgres`). None when unset, so those tests
/// skip — except under CI (`CI=true`), where a missing server is a failure.
pub fn test_pg_url() -> Option<String> {
    match std::env::var("BM_TEST_PG_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "CI=true but BM_TEST_PG_URL is unset: the PostgreSQL tests cannot run"
            );
            None
        }
    }
}

/// A fresh database `bm_test_<random>` on the test server, dropped when this goes.
pub struct TestDatabase {
    /// Its URL, for `DATABASE_URL` / `database_url`.
    pub url: String,
    admin: String,
    name: String,
}

impl TestDatabase {
    pub fn create() -> TestDatabase {
        let admin = test_pg_url().expect("BM_TEST_STORE=postgres needs BM_TEST_PG_URL");
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let name = format!(
            "bm_test_{}_{}_{}",
            std::process::id(),
            NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.subsec_nanos())
        );
        let mut client =
            postgres::Client::connect(&admin, postgres::NoTls).expect("connect to BM_TEST_PG_URL");
        client
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .expect("create test database");
        let mut url = url::Url::parse(&admin).expect("BM_TEST_PG_URL is a URL");
        url.set_path(&name);
        TestDatabase {
            url: url.to_string(),
            admin,
            name,
        }
    }

    /// The database's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// A client on the server (not this database), e.g. to end sessions on this one.
    pub fn admin_client(&self) -> postgres::Client {
        postgres::Client::connect(&self.admin, postgres::NoTls).expect("connect to BM_TEST_PG_URL")
    }

    /// A client on this database, to look at what the binary stored.
    pub fn client(&self) -> postgres::Client {
        postgres::Client::connect(&self.url, postgres::NoTls).expect("connect to test database")
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        if let Ok(mut c) = postgres::Client::connect(&self.admin, postgres::NoTls) {
            let _ = c.batch_execute(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ));
        }
    }
}
