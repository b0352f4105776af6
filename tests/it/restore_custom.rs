//! Custom-format PostgreSQL dumps (`pg_dump -Fc`) measured like every other restore —
//! tables, rows and bytes, so a schema-only dump is a `restore_anomaly` and `max_bytes`
//! holds — and the tools a restore test starts ending with the run when it is killed.
//! Real `pg_dump` dumps of source databases `f5_*` made on the shared test server.

use crate::common::{self, Workspace, problem_kinds_of as kinds_of, restore_result as result};
use crate::restore::{postgres, psql};
use chrono::{Duration, Utc};
use serde_json::Value;
use std::process::Command;

/// `url` pointing at database `db`.
fn url_of(url: &str, db: &str) -> String {
    let mut u = url::Url::parse(url).unwrap();
    u.set_path(db);
    u.to_string()
}

/// A source database `f5_<what>_<pid>` made by `setup`, dropped when this goes.
struct Source {
    bin: String,
    admin: String,
    name: String,
}

impl Source {
    fn new(bin: &str, admin: &str, what: &str, setup: &str) -> Source {
        let name = format!("f5_{what}_{}", std::process::id());
        psql(bin, admin, &format!("DROP DATABASE IF EXISTS {name}"));
        psql(bin, admin, &format!("CREATE DATABASE {name}"));
        let source = Source {
            bin: bin.into(),
            admin: admin.into(),
            name,
        };
        psql(bin, &source.url(), setup);
        source
    }

    fn url(&self) -> String {
        url_of(&self.admin, &self.name)
    }

    /// `pg_dump <args>` of the source into `out` (relative to the workspace).
    fn dump(&self, ws: &Workspace, args: &str, out: &str) {
        common::sh(
            ws,
            &format!("{}/pg_dump {args} -d '{}' -f {out}", self.bin, self.url()),
        );
    }
}

impl Drop for Source {
    fn drop(&mut self) {
        let _ = Command::new(format!("{}/psql", self.bin))
            .args(["-X", "-q", "-d", &self.admin, "-c"])
            .arg(format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ))
            .output();
    }
}

/// Two tables, 500 and 5000 rows.
const SHOP: &str = "CREATE TABLE users (id int PRIMARY KEY, name text);
     CREATE TABLE orders (id int PRIMARY KEY, user_id int REFERENCES users(id), note text);
     INSERT INTO users SELECT i, 'user ' || i FROM generate_series(1, 500) i;
     INSERT INTO orders SELECT i, 1 + i % 500, repeat('x', 100) FROM generate_series(1, 5000) i;";

/// Locations `pg` (restored into a scratch database) and `toc` (read with pg_restore
/// alone) over `pg/` and `toc/`, testing the newest backup, with extra YAML under both
/// `restore:`.
fn workspace(url: &str, bin: &str, extra: &str) -> Workspace {
    let ws = Workspace::new();
    ws.write_config(&format!(
        "backups:\n  locations:\n\
         \x20   - name: pg\n      path: pg\n      restore:\n        latest: 1\n        scratch_dir: scratch\n        postgres_url: {url}\n{extra}\
         \x20   - name: toc\n      path: toc\n      restore:\n        latest: 1\n        scratch_dir: scratch\n{extra}"
    ));
    for dir in ["scratch", "pg", "toc"] {
        std::fs::create_dir_all(ws.path(dir)).unwrap();
    }
    let path = format!("{bin}:{}", std::env::var("PATH").unwrap_or_default());
    ws.env("PATH", &path)
}

/// Put the dump `made` (in the workspace) into both locations as `name`, `days` old.
fn place(ws: &Workspace, made: &str, name: &str, days: i64) {
    for dir in ["pg", "toc"] {
        let to = ws.path(&format!("{dir}/{name}"));
        std::fs::copy(ws.path(made), &to).unwrap();
        common::set_mtime(&to, Utc::now() - Duration::days(days));
    }
}

fn test_restore(ws: &Workspace) -> Value {
    let (run, doc) = ws.run_json(&["--test-restore"]);
    assert!(run.code <= 2, "{}", run.stderr);
    doc
}

fn problem<'a>(doc: &'a Value, kind: &str, location: &str) -> Option<&'a Value> {
    doc["problems"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["kind"] == kind && p["location"] == location)
}

#[test]
fn a_schema_only_custom_dump_is_flagged_against_the_usual_restore() {
    let Some((url, bin, _one_at_a_time)) = postgres() else {
        return;
    };
    let ws = workspace(&url, &bin, "");
    let source = Source::new(&bin, &url, "shop", SHOP);
    source.dump(&ws, "-Fc", "full.dump");
    source.dump(&ws, "-Fc --schema-only", "schema.dump");

    for (day, name) in [(5, "mon.dump"), (4, "tue.dump")] {
        place(&ws, "full.dump", name, day);
        let doc = test_restore(&ws);
        for location in ["pg", "toc"] {
            assert!(
                problem(&doc, "restore_anomaly", location).is_none(),
                "{doc:#}"
            );
        }
        let r = result(&doc, name);
        assert_eq!(r["result"], "passed", "{r:#}");
        assert_eq!(r["files"], 2, "{r:#}");
        assert!(r["bytes"].as_u64().unwrap() > 100_000, "measured: {r:#}");
    }
    let results = |doc: &Value, path: &str| -> Vec<Value> {
        doc["restore_tests"]["results"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["path"] == path)
            .cloned()
            .collect()
    };
    // Rows are counted exactly in both: in the restored database, and in the COPY data
    // pg_restore reads out of the dump.
    let rows: Vec<i64> = ws.store_column(
        "SELECT t.rows_restored FROM restore_tests t JOIN backups b ON b.id = t.backup_id \
         WHERE b.path = 'mon.dump' ORDER BY t.id",
    );
    assert_eq!(rows, vec![5500, 5500]);

    // The same tables, no rows.
    place(&ws, "schema.dump", "wed.dump", 3);
    let doc = test_restore(&ws);
    for r in results(&doc, "wed.dump") {
        assert_eq!(r["result"], "passed", "the restore itself works: {r:#}");
        assert_eq!(r["files"], 2, "{r:#}");
    }
    assert_eq!(
        kinds_of(&doc, "wed.dump"),
        vec!["restore_anomaly", "restore_anomaly"],
        "{doc:#}"
    );
    for location in ["pg", "toc"] {
        let p = problem(&doc, "restore_anomaly", location).unwrap();
        let message = p["message"].as_str().unwrap();
        assert!(message.contains("0 rows against a usual 5500"), "{message}");
        assert!(message.contains("bytes against a usual"), "{message}");
    }
    let pg = result(&doc, "wed.dump");
    let detail = pg["detail"].as_str().unwrap();
    assert!(detail.contains("0 rows"), "{detail}");
}

#[test]
fn max_bytes_holds_a_custom_dump_restored_or_read() {
    let Some((url, bin, _one_at_a_time)) = postgres() else {
        return;
    };
    let ws = workspace(&url, &bin, "        max_bytes: 4MiB\n");
    // About 30 MB of table data, a dump of a few MB: well under the backup's own size
    // times anything, well over max_bytes once restored.
    let source = Source::new(
        &bin,
        &url,
        "big",
        "CREATE TABLE events (id int PRIMARY KEY, payload text);
         INSERT INTO events SELECT i, md5(i::text) || repeat('y', 150) FROM generate_series(1, 150000) i;",
    );
    source.dump(&ws, "-Fc", "big.dump");
    let size = std::fs::metadata(ws.path("big.dump")).unwrap().len();
    assert!(size < 4 << 20, "the dump itself is under max_bytes: {size}");
    place(&ws, "big.dump", "big.dump", 1);
    let doc = test_restore(&ws);
    let results: Vec<&Value> = doc["restore_tests"]["results"]
        .as_array()
        .unwrap()
        .iter()
        .collect();
    assert_eq!(results.len(), 2, "{doc:#}");
    for r in results {
        assert_eq!(r["result"], "failed", "{r:#}");
        let detail = r["detail"].as_str().unwrap();
        assert!(detail.contains("restore.max_bytes"), "{detail}");
    }
    assert_eq!(
        kinds_of(&doc, "big.dump"),
        vec!["restore_limit_exceeded", "restore_limit_exceeded"],
        "{doc:#}"
    );
    let left: Vec<_> = std::fs::read_dir(ws.path("scratch")).unwrap().collect();
    assert!(left.is_empty(), "sandboxes left behind: {left:?}");
}

/// The pids of `pid`'s children.
fn children(pid: u32) -> Vec<u32> {
    let mut out = Vec::new();
    if let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) {
        for task in tasks.flatten() {
            let text = std::fs::read_to_string(task.path().join("children")).unwrap_or_default();
            out.extend(
                text.split_whitespace()
                    .filter_map(|p| p.parse::<u32>().ok()),
            );
        }
    }
    out
}

/// The program name of process `pid`, None once it is gone (or a zombie: it ended and
/// only waits to be reaped).
fn alive(pid: u32) -> Option<String> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (name, rest) = stat.split_once(") ")?;
    let state = rest.chars().next()?;
    (state != 'Z').then(|| name.rsplit_once('(').map_or(name, |(_, n)| n).to_string())
}

/// Start `--test-restore` of `ws`, wait until it runs `tool`, send it `signal`, and
/// return the pid the tool had: the caller checks it ends.
fn kill_while_running(ws: &Workspace, tool: &str, signal: &str) -> u32 {
    let mut run = ws
        .process()
        .args(["--test-restore", "--format", "json"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let pid = run.id();
    let started = std::time::Instant::now();
    // The run starts the tool for short chores too (creating the scratch database): the
    // one wanted is still there seconds later, at the statement that sleeps.
    let mut seen: Vec<(u32, std::time::Instant)> = Vec::new();
    let found = loop {
        for c in children(pid) {
            if alive(c).as_deref() == Some(tool) && !seen.iter().any(|(p, _)| *p == c) {
                seen.push((c, std::time::Instant::now()));
            }
        }
        seen.retain(|(p, _)| alive(*p).as_deref() == Some(tool));
        if let Some((c, _)) = seen.iter().find(|(_, at)| at.elapsed().as_secs() >= 2) {
            break *c;
        }
        assert!(
            started.elapsed().as_secs() < 60,
            "the run never ran {tool} for long"
        );
        assert!(run.try_wait().unwrap().is_none(), "the run ended early");
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    common::sh(ws, &format!("kill -{signal} {pid}"));
    run.wait().unwrap();
    found
}

fn assert_ends(pid: u32, what: &str) {
    let started = std::time::Instant::now();
    while let Some(name) = alive(pid) {
        assert!(
            started.elapsed().as_secs() < 10,
            "{what}: {name} ({pid}) still runs after the run was killed"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

#[test]
fn the_tools_of_a_killed_run_end_with_it() {
    let Some((url, bin, _one_at_a_time)) = postgres() else {
        return;
    };
    let ws = workspace(&url, &bin, "        timeout: 1h\n");
    // A plain dump that sleeps for an hour: psql runs it.
    std::fs::write(
        ws.path("pg/sleep.sql"),
        "--\n-- PostgreSQL database dump\n--\n\nSELECT pg_sleep(3600);\n\n--\n-- PostgreSQL database dump complete\n--\n",
    )
    .unwrap();
    common::set_mtime(&ws.path("pg/sleep.sql"), Utc::now() - Duration::days(1));
    let psql_pid = kill_while_running(&ws, "psql", "KILL");
    assert_ends(psql_pid, "SIGKILL");

    // A custom dump whose data fails a check that sleeps for an hour: pg_restore runs it.
    let source = Source::new(
        &bin,
        &url,
        "sleepy",
        "CREATE FUNCTION nap(int) RETURNS boolean LANGUAGE sql AS 'SELECT true';
         CREATE TABLE t (x int CHECK (nap(x)));
         INSERT INTO t VALUES (1);
         CREATE OR REPLACE FUNCTION nap(int) RETURNS boolean LANGUAGE sql AS 'SELECT pg_sleep(3600) IS NOT NULL';",
    );
    std::fs::remove_file(ws.path("pg/sleep.sql")).unwrap();
    source.dump(&ws, "-Fc", "pg/sleepy.dump");
    common::set_mtime(&ws.path("pg/sleepy.dump"), Utc::now() - Duration::days(1));
    let pg_restore_pid = kill_while_running(&ws, "pg_restore", "TERM");
    assert_ends(pg_restore_pid, "SIGTERM");
    drop(source);

    // The server-side sessions of the killed tools go with their scratch databases.
    psql(
        &bin,
        &url,
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity \
         WHERE query LIKE '%pg_sleep(3600)%' AND pid <> pg_backend_pid()",
    );
    let names = psql(
        &bin,
        &url,
        "SELECT string_agg(datname, ' ') FROM pg_database WHERE datname LIKE 'bm_restore_%'",
    );
    for db in names.split_whitespace() {
        let pid: u32 = db
            .split('_')
            .nth(3)
            .and_then(|p| p.parse().ok())
            .unwrap_or(0);
        if alive(pid).is_none() {
            let _ = Command::new(format!("{bin}/psql"))
                .args(["-X", "-q", "-d", &url, "-c"])
                .arg(format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)"))
                .output();
        }
    }
}

#[test]
fn the_mariadb_client_of_a_killed_run_ends_with_it() {
    let Some((url, _one_at_a_time)) = crate::restore_depth::mysql_url() else {
        eprintln!("skipped: no BM_TEST_MYSQL_URL (scripts/test-mariadb start)");
        return;
    };
    let ws = Workspace::new();
    ws.write_config(&format!(
        "backups:\n  locations:\n    - name: my\n      path: my\n      restore:\n        latest: 1\n        scratch_dir: scratch\n        timeout: 1h\n        mysql_url: {url}\n"
    ));
    std::fs::create_dir_all(ws.path("scratch")).unwrap();
    ws.write_file(
        "my/sleep.sql",
        b"-- MariaDB dump 10.19  Distrib 10.11.6-MariaDB\n\nSELECT SLEEP(3600);\n\n-- Dump completed on 2026-01-01  0:00:00\n",
        Utc::now() - Duration::days(1),
    );
    let client = kill_while_running(&ws, "mariadb", "KILL");
    assert_ends(client, "SIGKILL");

    // The server may still run the statement for the client it lost: ended here, and
    // the scratch database with it.
    let mariadb = |sql: &str| crate::restore_depth::mariadb_output(&url, sql);
    let sessions = mariadb(
        "SELECT id, db FROM information_schema.processlist WHERE info LIKE 'SELECT SLEEP(3600)%'",
    );
    for line in String::from_utf8_lossy(&sessions.stdout).lines() {
        let mut fields = line.split('\t');
        let (Some(id), Some(db)) = (fields.next(), fields.next()) else {
            continue;
        };
        mariadb(&format!("KILL {id}"));
        if db.starts_with("bm_restore_") {
            mariadb(&format!("DROP DATABASE IF EXISTS `{db}`"));
        }
    }
}
