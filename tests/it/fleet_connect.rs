//! How a host reaches its PostgreSQL store, through the binary: what `database_url`
//! may hold (and what it may not, said without showing it), where the password comes
//! from, what is tried again and what is said at once, and the local lock file's name.
//! The password tests start a server of their own that asks for passwords (the shared
//! test server trusts loopback); skipped when `BM_TEST_PG_BIN` has no `initdb`, except
//! under CI.

use crate::common::Workspace;
use std::net::TcpListener;
use std::path::Path;
use std::time::{Duration, Instant};

/// A port on 127.0.0.1 nothing listens on.
fn closed_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// A workspace whose config has `database_url: <url>` (YAML-quoted) and one empty
/// location, the store never the test run's own database.
fn with_database_url(url: &str) -> Workspace {
    let ws = Workspace::sqlite();
    std::fs::create_dir_all(ws.path("db")).unwrap();
    ws.write_config(&format!(
        "timezone: UTC\ndatabase_url: {}\nlogging: {{ file: logs/bm.log, level: debug }}\nbackups:\n  locations:\n    - name: db\n      path: db\n",
        serde_json::to_string(url).unwrap()
    ));
    ws.env("BACKUP_MONITOR_PG_RETRY_SECS", "20")
}

/// Every file under `dir`, by name.
fn file_names(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            out.push(p.to_string_lossy().into_owned());
            if p.is_dir() {
                todo.push(p);
            }
        }
    }
    out
}

/// A password written into the URL with `@` and `#`, `/` or `?` as they are, or with a
/// `%` that starts no escape, and a libpq `key=value` string: `--check-config` refuses
/// each, saying how to write it and showing none of it; a run exits 3 at once without
/// looking up a piece of the password as a server or making a SQLite file named with it.
#[test]
fn a_password_written_unencoded_or_a_key_value_string_is_refused_without_being_shown() {
    let port = closed_port();
    let cases: [(&str, &[&str], &[&str]); 5] = [
        (
            "postgresql://bm:Kx9@Zq7mW#2@127.0.0.1:{port}/r1_fleet",
            &["Kx9", "Zq7mW"],
            &["%40", "%23"],
        ),
        (
            "postgresql://bm:p@ssw0/w#rd?x@127.0.0.1:{port}/r1_fleet",
            &["ssw0", "w#rd"],
            &["%2F", "%3F"],
        ),
        (
            "postgresql://bm:p@ssw0?x@127.0.0.1:{port}/r1_fleet",
            &["ssw0"],
            &["%3F"],
        ),
        (
            "postgresql://bm:pass%zzword@127.0.0.1:{port}/r1_fleet",
            &["zzword"],
            &["%25"],
        ),
        (
            "host=127.0.0.1 port={port} user=bmuser password=Hunter2Secret dbname=r1_fleet",
            &["Hunter2Secret", "bmuser", "r1_fleet"],
            &["postgresql://user@host", "PGPASSWORD", "~/.pgpass"],
        ),
    ];
    for (template, secret, advice) in cases {
        let url = template.replace("{port}", &port.to_string());
        for via_environment in [false, true] {
            let ws = if via_environment {
                with_database_url("sqlite://store.db").env("DATABASE_URL", &url)
            } else {
                with_database_url(&url)
            };
            let key = if via_environment {
                "DATABASE_URL"
            } else {
                "database_url"
            };
            let check = ws.run(&["--check-config"]);
            assert_eq!(check.code, 3, "{url}: {}{}", check.stdout, check.stderr);
            let said = format!("{}{}", check.stdout, check.stderr);
            assert!(said.contains(key), "{url}: {said}");
            for a in advice {
                assert!(said.contains(a), "{url}: says {a}: {said}");
            }
            let started = Instant::now();
            let run = ws.run(&["--monitor", "-vv"]);
            assert_eq!(run.code, 3, "{url}: {}", run.stderr);
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "{url}: not retried"
            );
            let status = ws.run(&["--status"]);
            assert_eq!(status.code, 3, "{url}: {}", status.stderr);
            let log = std::fs::read_to_string(ws.path("logs/bm.log")).unwrap_or_default();
            let files = file_names(ws.dir.path()).join("\n");
            for text in [
                &check.stdout,
                &check.stderr,
                &run.stdout,
                &run.stderr,
                &status.stdout,
                &status.stderr,
                &log,
                &files,
            ] {
                for s in secret {
                    assert!(!text.contains(s), "{url}: {s} shown: {text}");
                }
            }
        }
    }
}
