//! Hostile databases and dumps through the real binary: statements and schemas made to
//! run for hours or take gigabytes, connection strings made to leak their password onto
//! command lines, damaged pg_dump headers, and a SQLite database whose latest
//! transactions live in its `-wal` file. Every restore test must end within its time
//! limit and memory bound with a clear verdict, and keep that verdict for the next run.
//! Results are described in docs/reliability.md.

use crate::common;

use chrono::{Duration, Utc};
use common::{Run, Workspace, problem_kinds_of as kinds_of, restore_result as result, set_mtime};
use serde_json::Value;
use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration as StdDuration, Instant};

/// One location `evil` over `backups/` (sandboxes in `scratch/`), with `restore:` extras
/// (indented 8).
fn workspace(restore_extra: &str) -> Workspace {
    let ws = Workspace::new();
    ws.write_config(&format!(
        "backups:\n  locations:\n    - name: evil\n      path: backups\n      restore:\n        \
         latest: 100\n        scratch_dir: scratch\n{restore_extra}logging:\n  file: null\n"
    ));
    for dir in ["backups", "scratch"] {
        std::fs::create_dir_all(ws.path(dir)).unwrap();
    }
    ws
}

/// Give every backup an mtime a day ago, so it has settled.
fn settle(ws: &Workspace) {
    let old = Utc::now() - Duration::days(1);
    for e in std::fs::read_dir(ws.path("backups")).unwrap().flatten() {
        set_mtime(&e.path(), old);
    }
}

/// `--test-restore --format json`: the run, its document, its peak RSS (KiB) and how
/// long it took.
fn test_restore(ws: &Workspace) -> (Run, Value, u64, StdDuration) {
    let started = Instant::now();
    let mut cmd = ws.process();
    cmd.args(["--test-restore", "--format", "json"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut measured = crate::common::spawn_measured(&cmd);
    let (o, e) = read_outputs(&mut measured.child);
    let (code, rss_kib) = measured.wait();
    let run = Run {
        code,
        stdout: o.join().unwrap(),
        stderr: e.join().unwrap(),
    };
    let doc = run.json();
    (run, doc, rss_kib, started.elapsed())
}

type Reader = std::thread::JoinHandle<String>;

/// Read a child's stdout and stderr on threads (so it never blocks on a full pipe).
fn read_outputs(child: &mut std::process::Child) -> (Reader, Reader) {
    let read = |mut pipe: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut s = String::new();
            let _ = pipe.read_to_string(&mut s);
            s
        })
    };
    (
        read(Box::new(child.stdout.take().unwrap())),
        read(Box::new(child.stderr.take().unwrap())),
    )
}

/// `path` failed with exactly one problem of `kind`; returns its detail.
fn assert_failed(doc: &Value, path: &str, kind: &str) -> String {
    let r = result(doc, path);
    assert_eq!(r["result"], "failed", "{path}: {r:#}");
    assert_eq!(kinds_of(doc, path), vec![kind.to_string()], "{path}: {r:#}");
    r["detail"].as_str().unwrap_or("").to_string()
}

/// A `sqlite3 .dump` script around `body`.
fn dump(body: &str) -> String {
    format!("PRAGMA foreign_keys=OFF;\nBEGIN TRANSACTION;\n{body}\nCOMMIT;\n")
}

/// The expression: one call that is one VM step and takes a long time.
const SLOW_CALL: &str = "length(hex(zeroblob(100000000 + (x % 2))))";

#[test]
fn dump_statements_stop_at_the_time_limit_and_the_verdict_is_kept() {
    let ws = workspace("        timeout: 3s\n");
    // The 250-byte dump of the attack round: 100,000 calls that each build 200 MB.
    let cte = dump(&format!(
        "SELECT max({SLOW_CALL}) FROM (WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c LIMIT 100000) SELECT x FROM c);"
    ));
    assert!(cte.len() <= 250, "{}", cte.len());
    std::fs::write(ws.path("backups/cte.sql"), &cte).unwrap();
    // The same with 10 MB values, which no value bound stops: only the clock can.
    let slow = cte.replace("100000000", "10000000");
    std::fs::write(ws.path("backups/slow.sql"), &slow).unwrap();
    // A string literal over 200,000 lines that each end with `;`: whether the statement
    // is complete is asked at each of them, over the whole statement so far.
    let lines = "x;\n".repeat(200_000);
    std::fs::write(
        ws.path("backups/lines.sql"),
        dump(&format!(
            "CREATE TABLE t(a);\nINSERT INTO t VALUES('{lines}');"
        )),
    )
    .unwrap();
    settle(&ws);

    let (run, doc, _, took) = test_restore(&ws);
    assert_eq!(run.code, 2, "{doc:#}");
    assert_failed(&doc, "cte.sql", "restore_limit_exceeded");
    for path in ["slow.sql", "lines.sql"] {
        let detail = assert_failed(&doc, path, "restore_limit_exceeded");
        assert!(detail.contains("time limit (restore.timeout)"), "{detail}");
    }
    assert!(took < StdDuration::from_secs(30), "took {took:?}");

    // The next run does not try again: the verdict and its problems are carried.
    let (run, doc, _, _) = test_restore(&ws);
    assert_eq!(run.code, 2, "{doc:#}");
    for path in ["cte.sql", "slow.sql", "lines.sql"] {
        let detail = assert_failed(&doc, path, "restore_limit_exceeded");
        assert!(detail.contains("unchanged since the test at"), "{detail}");
    }

    // A new timeout is a new setting: the backups are tested again with it.
    ws.write_config(
        &std::fs::read_to_string(ws.config_path())
            .unwrap()
            .replace("timeout: 3s", "timeout: 2s"),
    );
    let (_, doc, _, _) = test_restore(&ws);
    let detail = assert_failed(&doc, "slow.sql", "restore_limit_exceeded");
    assert!(detail.contains("after 2 s"), "{detail}");
}

/// A SQLite database of `rows` rows whose CHECK constraint or index expression was
/// rewritten (with `writable_schema`) to call `expr`, which `integrity_check` evaluates
/// for every row.
fn hostile_schema(path: &Path, on_index: bool, expr: &str, rows: u32) {
    let conn = rusqlite::Connection::open(path).unwrap();
    conn.execute_batch(if on_index {
        "CREATE TABLE t(x INTEGER); CREATE INDEX i ON t(length(x));"
    } else {
        "CREATE TABLE t(x INTEGER CHECK(x > 0));"
    })
    .unwrap();
    conn.execute(
        "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c LIMIT ?1) \
         INSERT INTO t SELECT x FROM c",
        [rows],
    )
    .unwrap();
    let (name, sql) = if on_index {
        ("i", format!("CREATE INDEX i ON t({expr})"))
    } else {
        ("t", format!("CREATE TABLE t(x INTEGER CHECK({expr} > 0))"))
    };
    conn.execute_batch("PRAGMA writable_schema=ON;").unwrap();
    conn.execute(
        "UPDATE sqlite_schema SET sql = ?1 WHERE name = ?2",
        [sql.as_str(), name],
    )
    .unwrap();
}

#[test]
fn integrity_check_of_a_hostile_schema_stops_at_the_time_limit() {
    let ws = workspace("        timeout: 3s\n");
    hostile_schema(&ws.path("backups/check.sqlite"), false, SLOW_CALL, 3000);
    hostile_schema(&ws.path("backups/index.sqlite"), true, SLOW_CALL, 3000);
    let size = std::fs::metadata(ws.path("backups/index.sqlite"))
        .unwrap()
        .len();
    assert!(size < 100_000, "{size}");
    // A dump whose own statements are cheap but whose schema makes the integrity check
    // after the replay slow.
    std::fs::write(
        ws.path("backups/after.sql"),
        dump(&format!(
            "CREATE TABLE t(x INTEGER CHECK({SLOW_CALL} > 0));\n\
             PRAGMA writable_schema=ON;\n\
             INSERT INTO t VALUES(1);"
        )),
    )
    .unwrap();
    settle(&ws);
    let (run, doc, _, took) = test_restore(&ws);
    assert_eq!(run.code, 2, "{doc:#}");
    for path in ["check.sqlite", "index.sqlite"] {
        let detail = assert_failed(&doc, path, "restore_limit_exceeded");
        assert!(detail.contains("time limit"), "{path}: {detail}");
    }
    assert!(
        ["passed", "failed"].contains(&result(&doc, "after.sql")["result"].as_str().unwrap()),
        "{doc:#}"
    );
    assert!(took < StdDuration::from_secs(30), "took {took:?}");
}

#[test]
fn statements_and_schemas_that_ask_for_gigabytes_stop_at_the_memory_bound() {
    let ws = workspace("        timeout: 60s\n");
    // 130 bytes in the attack round: 3.8 GB of memory before.
    std::fs::write(
        ws.path("backups/mem.sql"),
        dump("SELECT hex(zeroblob(400000000)), hex(zeroblob(400000000));"),
    )
    .unwrap();
    // Values just under the bound for one value, many at once.
    std::fs::write(
        ws.path("backups/many.sql"),
        dump(
            "SELECT length(group_concat(hex(zeroblob(30000000)))) FROM (WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c LIMIT 100) SELECT x FROM c);",
        ),
    )
    .unwrap();
    // A database file whose CHECK constraint builds an 800 MB string for its first row.
    hostile_schema(
        &ws.path("backups/mem.sqlite"),
        false,
        "length(hex(zeroblob(400000000)))",
        10,
    );
    settle(&ws);
    let (run, doc, rss_kib, _) = test_restore(&ws);
    assert_eq!(run.code, 2, "{doc:#}");
    for path in ["mem.sql", "many.sql", "mem.sqlite"] {
        let detail = assert_failed(&doc, path, "restore_limit_exceeded");
        assert!(
            !detail.contains("zeroblob"),
            "no backup content quoted: {detail}"
        );
    }
    let detail = assert_failed(&doc, "mem.sqlite", "restore_limit_exceeded");
    assert!(detail.contains("memory"), "{detail}");
    assert!(
        rss_kib < 700 * 1024,
        "peak RSS {} MiB: the heap bound did not hold",
        rss_kib / 1024
    );
}

#[test]
fn a_database_is_tested_with_the_wal_file_beside_it() {
    let ws = workspace("        expect: [\"late\"]\n");
    let live = ws.path("live.sqlite");
    let conn = rusqlite::Connection::open(&live).unwrap();
    conn.execute_batch(
        "PRAGMA journal_mode=WAL; PRAGMA wal_autocheckpoint=0;
         CREATE TABLE early(a); INSERT INTO early VALUES (1);",
    )
    .unwrap();
    conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);")
        .unwrap();
    // Committed, but only in the WAL: copied while the connection is open, as a backup
    // of a live database's files is.
    conn.execute_batch("CREATE TABLE late(b); INSERT INTO late VALUES (2);")
        .unwrap();
    for ext in ["", "-wal", "-shm"] {
        std::fs::copy(
            format!("{}{ext}", live.display()),
            ws.path(&format!("backups/app.sqlite{ext}")),
        )
        .unwrap();
    }
    std::fs::copy(&live, ws.path("backups/alone.sqlite")).unwrap();
    drop(conn);
    settle(&ws);
    let (_, doc, _, _) = test_restore(&ws);
    let app = result(&doc, "app.sqlite");
    assert_eq!(app["result"], "passed", "{doc:#}");
    assert_eq!(app["files"], 2, "{app:#}");
    // Without its WAL the same database lacks the table.
    let alone = assert_failed(&doc, "alone.sqlite", "restore_failed");
    assert!(alone.contains("late"), "{alone}");
    let wal = ws.path("backups/app.sqlite-wal");
    assert!(wal.exists(), "the backup's WAL is left as it was");
}

#[test]
fn a_pg_dump_header_followed_by_garbage_is_corrupt() {
    let ws = workspace("");
    let noise: Vec<u8> = (0..4096u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    let write = |name: &str, head: &[u8]| {
        let mut bytes = head.to_vec();
        bytes.extend_from_slice(&noise);
        let p = ws.path(&format!("backups/{name}"));
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, bytes).unwrap();
    };
    write("garbage.dump", b"PGDMP");
    // A plausible header declaring a directory dump's table of contents, in a file that
    // is not one.
    write("fake.dump", b"PGDMP\x01\x0e\x00\x04\x08\x03");
    write("other-format.dump", b"PGDMP\x01\x0e\x00\x04\x08\x07");
    settle(&ws);
    let (_, doc, _, _) = test_restore(&ws);
    for path in ["garbage.dump", "fake.dump", "other-format.dump"] {
        let detail = assert_failed(&doc, path, "archive_corrupt");
        assert!(detail.contains("PGDMP"), "{detail}");
    }
}

// ---------------------------------------------------------------------------------------
// PostgreSQL (with BM_TEST_PG_URL)

/// `dir/<tool>` wrappers that log their command line and whether `PGPASSWORD` was set
/// (to `log`), then run the real tool from `bin`.
fn logging_tools(dir: &Path, bin: &str, log: &Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(dir).unwrap();
    for tool in ["psql", "pg_restore"] {
        let p = dir.join(tool);
        std::fs::write(
            &p,
            format!(
                "#!/bin/sh\nprintf 'argv:' >> '{log}'\nfor a in \"$@\"; do printf ' [%s]' \"$a\" >> '{log}'; done\n\
                 printf '\\nenv: PGPASSWORD=%s\\n' \"$PGPASSWORD\" >> '{log}'\nexec '{bin}/{tool}' \"$@\"\n",
                log = log.display()
            ),
        )
        .unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
}

#[test]
fn a_quoted_password_never_reaches_a_command_line_or_the_outputs() {
    let Some((url, bin, _one_at_a_time)) = crate::restore::postgres() else {
        return;
    };
    // host=… port=… user=… from the test server's URL, as key=value settings.
    let parsed = url.trim_start_matches("postgresql://");
    let (user, rest) = parsed.split_once('@').unwrap();
    let (hostport, db) = rest.split_once('/').unwrap();
    let (host, port) = hostport.split_once(':').unwrap();
    let conninfo =
        format!("host={host} port={port} user={user} dbname={db} password='Pg Secret Part2 Part3'");
    let ws = workspace(&format!(
        "        postgres_url: \"{conninfo}\"\n        timeout: 60s\n"
    ));
    let log = ws.path("tools.log");
    logging_tools(&ws.path("tools"), &bin, &log);
    let path = format!(
        "{}:{}",
        ws.path("tools").display(),
        std::env::var("PATH").unwrap()
    );
    let ws = ws.env("PATH", &path);
    let source = format!("bm_pw_src_{}", std::process::id());
    let psql = |db: &str, sql: &str| {
        crate::restore::psql(&bin, &crate::restore::db_url(&url, db), sql);
    };
    psql(db, &format!("DROP DATABASE IF EXISTS {source}"));
    psql(db, &format!("CREATE DATABASE {source}"));
    psql(
        &source,
        "CREATE TABLE accounts (id int); INSERT INTO accounts VALUES (1);",
    );
    let src_url = crate::restore::db_url(&url, &source);
    for (flag, name) in [("-Fc", "app.dump"), ("-Fp", "app.sql")] {
        let out = Command::new(format!("{bin}/pg_dump"))
            .args([flag, "-d", &src_url, "-f"])
            .arg(ws.path(&format!("backups/{name}")))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    psql(db, &format!("DROP DATABASE {source}"));
    settle(&ws);

    let (run, doc, _, _) = test_restore(&ws);
    for path in ["app.dump", "app.sql"] {
        assert_eq!(result(&doc, path)["result"], "passed", "{doc:#}");
    }
    let log = std::fs::read_to_string(&log).unwrap();
    let lines: Vec<&str> = log.lines().collect();
    assert!(lines.len() >= 8, "psql and pg_restore ran: {log}");
    for pair in lines.chunks(2) {
        let (argv, env) = (pair[0], pair[1]);
        for part in ["Secret", "Part2", "Part3"] {
            assert!(
                !argv.contains(part),
                "the password is on a command line: {argv}"
            );
        }
        // Whole, in the environment of every tool that connects.
        if argv.contains("[-d]") {
            assert_eq!(env, "env: PGPASSWORD=Pg Secret Part2 Part3", "{log}");
        }
    }
    let store = ws.store_text().into_bytes();
    for part in ["Secret", "Part2", "Part3"] {
        assert!(
            !run.stdout.contains(part) && !run.stderr.contains(part),
            "{part} in the output"
        );
        assert!(
            !store.windows(part.len()).any(|w| w == part.as_bytes()),
            "{part} in the store"
        );
    }
}

#[test]
fn a_plain_dump_that_never_ends_is_stopped_at_the_time_limit() {
    let Some((url, bin, _one_at_a_time)) = crate::restore::postgres() else {
        return;
    };
    let ws = workspace(&format!(
        "        postgres_url: {url}\n        timeout: 3s\n"
    ));
    let ws = ws.env("PATH", &format!("{bin}:{}", std::env::var("PATH").unwrap()));
    std::fs::write(
        ws.path("backups/sleep.sql"),
        "--\n-- PostgreSQL database dump\n--\nSET statement_timeout = 0;\nCREATE TABLE public.t (a integer);\nSELECT pg_sleep(3600);\n--\n-- PostgreSQL database dump complete\n--\n",
    )
    .unwrap();
    // A failing statement: psql's error quotes the value and the whole line.
    std::fs::write(
        ws.path("backups/bad.sql"),
        "--\n-- PostgreSQL database dump\n--\nCREATE TABLE public.t (a integer);\nINSERT INTO public.t VALUES ('s3cret-row');\n--\n-- PostgreSQL database dump complete\n--\n",
    )
    .unwrap();
    settle(&ws);
    let (run, doc, _, took) = test_restore(&ws);
    let bad = assert_failed(&doc, "bad.sql", "restore_failed");
    assert!(bad.contains("invalid input syntax"), "{bad}");
    assert!(
        !run.stdout.contains("s3cret") && !run.stderr.contains("s3cret"),
        "a row of the dump is quoted: {bad}"
    );
    let detail = assert_failed(&doc, "sleep.sql", "restore_limit_exceeded");
    assert!(detail.contains("time limit"), "{detail}");
    assert!(took < StdDuration::from_secs(30), "took {took:?}");
    let out = Command::new(format!("{bin}/psql"))
        .args(["-X", "-A", "-t", "-d", &url, "-c"])
        .arg("SELECT count(*) FROM pg_database WHERE datname LIKE 'bm_restore_%'")
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "0",
        "the scratch database is dropped"
    );
}
