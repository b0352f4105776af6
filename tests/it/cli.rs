//! The command-line contract through the binary: usage and config errors exit 3 with a
//! clear cause in every output format, env interpolation and precedence, the run lock,
//! and a store that survives SIGKILL mid-scan.

use crate::common;

use common::{Workspace, ts};
use std::time::Duration;

const MINIMAL: &str = "timezone: UTC\nlogging: { file: null }\nbackups:\n  locations:\n    - name: db\n      path: db\n";

#[test]
fn no_operation_prints_help_and_exits_3() {
    let w = Workspace::new();
    w.write_config(MINIMAL);
    let run = w.run(&[]);
    assert_eq!(run.code, 3);
    assert!(
        run.stderr.contains("Usage:") && run.stderr.contains("--monitor"),
        "{}",
        run.stderr
    );
    assert!(run.stdout.is_empty());
}

#[test]
fn usage_errors_exit_3_in_every_format() {
    let w = Workspace::new();
    w.write_config(MINIMAL);
    let run = w.run(&["--monitor", "--frobnicate"]);
    assert_eq!(run.code, 3, "clap's default 2 would read as CRITICAL");
    assert!(run.stderr.contains("--frobnicate"));
    let run = w.run(&["--monitor", "--days", "zero", "--format", "json"]);
    assert_eq!(run.code, 3);
    let doc = run.json();
    assert_eq!(doc["status"], "unknown");
    assert_eq!(doc["exit_code"], 3);
    assert!(doc["error"].as_str().unwrap().contains("zero"));
    let run = w.run(&["--monitor", "--bogus", "--format", "nagios"]);
    assert_eq!(run.code, 3);
    assert!(
        run.stdout.starts_with("BACKUP UNKNOWN - "),
        "{}",
        run.stdout
    );
    // A missing argument is named in the one line, not left on a line after it.
    let run = w.run(&["--silence", "db", "--format", "json"]);
    assert_eq!(run.code, 3);
    let error = run.json()["error"].as_str().unwrap().to_string();
    assert!(
        error.contains("not provided: --reason <TEXT> --for <DURATION>") && !error.contains('\n'),
        "{error}"
    );
}

#[test]
fn help_and_version_exit_0() {
    let w = Workspace::new();
    let run = w.run(&["--help"]);
    assert_eq!(run.code, 0);
    assert!(run.stdout.contains("--test-restore"));
    let run = w.run(&["--version"]);
    assert_eq!(run.code, 0);
    assert!(run.stdout.contains(env!("CARGO_PKG_VERSION")));
}

#[test]
fn invalid_config_names_key_and_line_and_exits_3() {
    let w = Workspace::new();
    w.write_config(
        "backups:\n  locations:\n    - name: db\n      path: db\n      retension_days: 3\n",
    );
    let run = w.run(&["--monitor"]);
    assert_eq!(run.code, 3);
    assert!(run.stderr.contains("retension_days"), "{}", run.stderr);
    assert!(
        run.stderr.contains("backups.locations[0]"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("line 5"), "{}", run.stderr);
    assert!(!run.stderr.contains("panicked") && !run.stderr.contains("backtrace"));

    let (run, doc) = w.run_json(&["--monitor"]);
    assert_eq!(run.code, 3);
    assert_eq!(doc["status"], "unknown");
    assert!(doc["error"].as_str().unwrap().contains("retension_days"));

    // The status line carries the cause itself (the operator sees only that line).
    let run = w.run(&["--monitor", "--format", "nagios"]);
    let status = run.stdout.lines().next().unwrap_or_default();
    assert!(
        status.starts_with("BACKUP UNKNOWN - invalid config") && status.contains("retension_days"),
        "{}",
        run.stdout
    );
    // No config file at all: the status line says why.
    let missing = Workspace::new();
    let run = missing.run(&["--monitor", "--format", "nagios"]);
    let status = run.stdout.lines().next().unwrap_or_default();
    assert!(
        status.starts_with("BACKUP UNKNOWN - invalid config")
            && status.contains("No such file or directory"),
        "{}",
        run.stdout
    );
}

#[test]
fn check_config_reports_validity() {
    let w = Workspace::new();
    w.write_config(MINIMAL);
    let (run, doc) = w.run_json(&["--check-config"]);
    assert_eq!(run.code, 0);
    assert_eq!(doc["valid"], true);
    assert_eq!(doc["status"], "ok");
    w.write_config("monitoring:\n  health_warning: 0.3\n  health_critical: 0.6\nbackups:\n  locations:\n    - name: a\n      path: a\n      schedule: \"70 * * * *\"\n");
    let (run, doc) = w.run_json(&["--check-config"]);
    assert_eq!(run.code, 3);
    assert_eq!(doc["valid"], false);
    assert_eq!(doc["exit_code"], 3);
    let errors = doc["errors"].as_array().unwrap();
    assert!(
        errors
            .iter()
            .any(|e| e.as_str().unwrap().contains("schedule")),
        "{errors:?}"
    );
    let run = w.run(&["--check-config"]);
    assert!(run.stderr.contains("invalid config"));
}

#[test]
fn missing_config_file_is_explained() {
    let w = Workspace::new();
    let run = w.run(&["--monitor"]);
    assert_eq!(run.code, 3);
    assert!(
        run.stderr.contains("cannot read config file"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("--config"),
        "says what to do: {}",
        run.stderr
    );
}

#[test]
fn env_interpolation_dotenv_and_precedence() {
    let w = Workspace::new();
    std::fs::create_dir_all(w.path("from-env")).unwrap();
    std::fs::create_dir_all(w.path("from-dotenv")).unwrap();
    w.write_file("from-env/a_20261120.bak", b"x", ts("2026-11-20T00:00:00Z"));
    w.write_config("timezone: UTC\nlogging: { file: null }\nbackups:\n  locations:\n    - name: db\n      path: ${BM_TEST_DIR}\n");
    std::fs::write(w.path(".env"), "BM_TEST_DIR=from-dotenv\n").unwrap();
    let (_, doc) = w.run_json(&["--monitor"]);
    assert_eq!(doc["locations"][0]["backups_present"], 0, ".env is read");
    let w = w.env("BM_TEST_DIR", "from-env");
    let (_, doc) = w.run_json(&["--monitor"]);
    assert_eq!(
        doc["locations"][0]["backups_present"], 1,
        "process environment wins over .env"
    );

    std::fs::remove_file(w.path(".env")).unwrap();
    let w2 = Workspace::new();
    w2.write_config(
        "backups:\n  locations:\n    - name: db\n      path: ${BM_TEST_SURELY_UNDEFINED}\n",
    );
    let run = w2.run(&["--monitor"]);
    assert_eq!(run.code, 3);
    assert!(
        run.stderr.contains("BM_TEST_SURELY_UNDEFINED") && run.stderr.contains("path"),
        "{}",
        run.stderr
    );
}

#[test]
fn database_url_env_overrides_config() {
    // Which SQLite file wins: the harness gives no store URL of its own.
    let w = Workspace::sqlite();
    w.write_config(&format!("database_url: sqlite://config.db\n{MINIMAL}"));
    std::fs::create_dir_all(w.path("db")).unwrap();
    w.run(&["--monitor"]);
    assert!(w.path("config.db").exists());
    let w = w.env("DATABASE_URL", "sqlite://nested/env.db");
    w.run(&["--monitor"]);
    assert!(
        w.path("nested/env.db").exists(),
        "DATABASE_URL wins and its directory is created"
    );
}

#[test]
fn relative_paths_are_relative_to_the_config_file() {
    let w = Workspace::new();
    std::fs::create_dir_all(w.path("etc/db")).unwrap();
    w.write_file("etc/db/a_20261120.bak", b"x", ts("2026-11-20T00:00:00Z"));
    std::fs::write(w.path("etc/bm.yaml"), MINIMAL).unwrap();
    let run: common::Run = common::binary()
        .current_dir(w.dir.path())
        .args(["--config", "etc/bm.yaml", "--monitor", "--format", "json"])
        .output()
        .unwrap()
        .into();
    assert_eq!(run.json()["locations"][0]["backups_present"], 1);
    assert!(w.path("etc/backup_monitor.db").exists());
}

#[test]
fn config_from_environment_variable() {
    let w = Workspace::new();
    std::fs::create_dir_all(w.path("db")).unwrap();
    std::fs::write(w.path("other.yaml"), MINIMAL).unwrap();
    let out = common::binary()
        .current_dir(w.dir.path())
        .args(["--check-config"])
        .env("BACKUP_MONITOR_CONFIG", w.path("other.yaml"))
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn second_run_exits_3_naming_the_lock_holder() {
    let w = Workspace::new();
    w.write_config(MINIMAL);
    std::fs::create_dir_all(w.path("db")).unwrap();
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(w.lock_path())
        .unwrap();
    lock.try_lock().unwrap();
    std::fs::write(w.lock_path(), "424242").unwrap();
    let run = w.run(&["--monitor"]);
    assert_eq!(run.code, 3);
    assert!(run.stderr.contains("424242"), "{}", run.stderr);
    // --status and --check-config do not take the lock.
    assert_eq!(w.run(&["--check-config"]).code, 0);
    drop(lock);
    assert_eq!(
        w.run(&["--monitor"]).code,
        2,
        "lock released: the run goes ahead (no backups yet)"
    );
    assert_ne!(w.run(&["--status"]).code, 3);
}

#[test]
fn store_and_log_are_private_and_logs_are_written() {
    use std::os::unix::fs::PermissionsExt;
    // The modes of the SQLite store file and its lock beside it.
    let w = Workspace::sqlite();
    w.write_config("timezone: UTC\nlogging: { file: logs/bm.log, level: debug }\nbackups:\n  locations:\n    - name: db\n      path: db\n");
    std::fs::create_dir_all(w.path("db")).unwrap();
    w.run(&["--monitor", "-q"]);
    for f in ["backup_monitor.db", "logs/bm.log", "backup_monitor.db.lock"] {
        let mode = std::fs::metadata(w.path(f)).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{f}");
    }
    let log = std::fs::read_to_string(w.path("logs/bm.log")).unwrap();
    assert!(log.contains("scanned 0 files"), "{log}");
}

#[test]
fn runs_are_audited() {
    let w = Workspace::new();
    w.write_config(MINIMAL);
    std::fs::create_dir_all(w.path("db")).unwrap();
    w.run(&["--monitor"]);
    let runs: Vec<(String, i32, String)> =
        w.store_rows("SELECT operations, exit_code, version FROM runs");
    let [(ops, code, version)] = &runs[..] else {
        panic!("one run audited: {runs:?}");
    };
    assert_eq!(ops, "monitor");
    assert_eq!(*code, 2);
    assert_eq!(version, env!("CARGO_PKG_VERSION"));
}

#[test]
fn a_replayed_clock_and_a_failed_run_are_audited_consistently() {
    let mut w = Workspace::new();
    w.write_config(MINIMAL);
    std::fs::create_dir_all(w.path("db")).unwrap();
    // Far from the real clock: the end must still follow the start.
    w.now = Some(ts("2031-03-04T05:06:07Z"));
    let (_, doc) = w.run_json(&["--monitor"]);
    assert_eq!(doc["started_at"], "2031-03-04T05:06:07Z");
    let finished = doc["finished_at"].as_str().unwrap();
    assert!(finished.starts_with("2031-03-04T05:06:"), "{finished}");
    // A run that fails after it started (unknown location) is closed with exit 3, and
    // its error document keeps the replayed clock too.
    let (run, doc) = w.run_json(&["--monitor", "--location-name", "nope"]);
    assert_eq!(run.code, 3);
    assert_eq!(doc["started_at"], "2031-03-04T05:06:07Z");
    let rows: Vec<(i64, Option<i64>, Option<i32>)> =
        w.store_rows("SELECT started_at, finished_at, exit_code FROM runs ORDER BY id");
    assert_eq!(rows.len(), 2, "{rows:?}");
    for (started, finished, _) in &rows {
        let finished = finished.expect("every run is closed");
        assert!((0..60).contains(&(finished - started)), "{rows:?}");
    }
    assert_eq!(rows[0].2, Some(2));
    assert_eq!(rows[1].2, Some(3));
}

#[test]
fn unreadable_store_exits_3() {
    // A damaged SQLite store file.
    let w = Workspace::sqlite();
    w.write_config(MINIMAL);
    std::fs::create_dir_all(w.path("db")).unwrap();
    std::fs::write(
        w.path("backup_monitor.db"),
        b"this is not a database, just text that is long enough to look like a header....",
    )
    .unwrap();
    let run = w.run(&["--monitor"]);
    assert_eq!(run.code, 3);
    assert!(run.stderr.contains("backup_monitor.db"), "{}", run.stderr);
    assert!(!run.stderr.contains("panicked"));
}

#[test]
fn sigkill_mid_scan_leaves_a_store_the_next_run_completes() {
    // SQLite's file after a kill (integrity_check); PostgreSQL's killed run: fleet.rs.
    let w = Workspace::sqlite();
    w.write_config("timezone: UTC\nlogging: { file: null }\nbackups:\n  locations:\n    - name: db\n      path: db\n      schedule: weekly\n");
    std::fs::create_dir_all(w.path("db")).unwrap();
    let t = ts("2026-11-01T00:00:00Z");
    let n = 20_000;
    for i in 0..n {
        let p = w.path(&format!("db/b{i:05}.bak"));
        std::fs::write(&p, b"x").unwrap();
        common::set_mtime(&p, t);
    }
    for delay_ms in [5u64, 20, 40, 80, 120, 200] {
        let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("backup-monitor"))
            .current_dir(w.dir.path())
            .args(["--config", "config.yaml", "--monitor", "-q"])
            .env_remove("DATABASE_URL")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(delay_ms));
        let _ = child.kill(); // SIGKILL
        let _ = child.wait();
        if w.path("backup_monitor.db").exists() {
            let ok: String = w.store_value("PRAGMA integrity_check");
            assert_eq!(ok, "ok", "after a kill at {delay_ms} ms");
        }
    }
    let (run, doc) = w.run_json(&["--monitor"]);
    assert_ne!(run.code, 3, "{}", run.stderr);
    assert_eq!(doc["locations"][0]["backups_present"], n);
    let rows: i64 = w.store_value("SELECT COUNT(*) FROM backups");
    assert_eq!(rows, n, "no duplicate or lost rows");
}

/// The binary with the workspace's config and `args`, stdout going to `stdout`.
fn spawn_with_stdout(
    w: &Workspace,
    args: &[&str],
    stdout: std::process::Stdio,
) -> std::process::Child {
    w.process()
        .args(args)
        .stdout(stdout)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap()
}

#[test]
fn a_reader_that_goes_away_is_no_crash_and_a_lost_output_is_exit_3() {
    let w = Workspace::new();
    w.write_config(MINIMAL);
    // The location's directory is missing: a CRITICAL run, exit 2.
    let expected = w.run(&["--monitor"]).code;
    assert_eq!(expected, 2);
    for format in ["text", "json", "nagios"] {
        // `backup-monitor ... | head -c0`: the pipe's reader is gone before the output.
        let mut child = spawn_with_stdout(
            &w,
            &["--monitor", "--format", format],
            std::process::Stdio::piped(),
        );
        drop(child.stdout.take());
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(expected), "{format}: {stderr}");
        assert!(!stderr.contains("panicked"), "{format}: {stderr}");
    }
    // stdout on a full disk: the output is lost, so the run cannot claim its verdict.
    let full = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .unwrap();
    let out = spawn_with_stdout(&w, &["--monitor", "--format", "json"], full.into())
        .wait_with_output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("could not write the output"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn status_rounds_health_like_every_run_and_missing_slots_are_in_time_order() {
    let mut w = Workspace::new();
    w.now = Some(ts("2026-11-21T12:00:00Z"));
    w.write_config(
        "timezone: UTC\nlogging: { file: null }\nbackups:\n  locations:\n    - { name: db, path: db, test_restore: false }\n",
    );
    for d in [18, 21] {
        w.write_file(
            &format!("db/x_202611{d}.gz"),
            b"x",
            ts(&format!("2026-11-{d}T01:00:00Z")),
        );
    }
    let (_, run) = w.run_json(&["--monitor"]);
    let (_, status) = w.run_json(&["--status"]);
    let score = run["locations"][0]["health_score"].as_f64().unwrap();
    assert!(
        score > 0.0 && score < 1.0,
        "a score that needs rounding: {run:#}"
    );
    assert_eq!(score, (score * 1000.0).round() / 1000.0);
    assert_eq!(
        status["locations"][0]["health_score"],
        run["locations"][0]["health_score"]
    );
    assert_eq!(status["overall_health"], run["overall_health"]);

    // Hourly at :15 in Berlin over the night the clocks go back: 02:15 happens twice.
    let mut w = Workspace::new();
    w.now = Some(ts("2026-10-25T03:00:00Z"));
    w.write_config(
        "timezone: Europe/Berlin\nlogging: { file: null }\nbackups:\n  locations:\n    - { name: db, path: db, schedule: hourly, at: \":15\", timestamp: mtime, test_restore: false }\n",
    );
    w.write_file("db/first", b"x", ts("2026-10-24T22:20:00Z"));
    let (_, doc) = w.run_json(&["--monitor", "--days", "1"]);
    let slots: Vec<chrono::DateTime<chrono::FixedOffset>> = doc["locations"][0]["missing_slots"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| chrono::DateTime::parse_from_rfc3339(s.as_str().unwrap()).unwrap())
        .collect();
    assert!(slots.len() >= 3, "{doc:#}");
    assert!(
        slots.windows(2).all(|p| p[0] < p[1]),
        "in time order: {slots:?}"
    );
}

#[test]
fn status_names_a_configured_location_that_was_never_checked() {
    let w = Workspace::new();
    w.write_config(MINIMAL);
    std::fs::create_dir_all(w.path("db")).unwrap();
    assert_ne!(w.run(&["--monitor"]).code, 3);
    w.write_config(&format!("{MINIMAL}    - name: fresh\n      path: fresh\n"));
    let run = w.run(&["--status", "--location-name", "fresh"]);
    assert_eq!(run.code, 3);
    assert!(
        run.stderr
            .contains("location fresh has not been checked yet")
            && run.stderr.contains("--monitor"),
        "{}",
        run.stderr
    );
    // A configured location no --monitor ever judged is stale: CRITICAL, not OK.
    let run = w.run(&["--status"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stdout
            .contains("fresh monitor_stale: never checked by --monitor"),
        "{}",
        run.stdout
    );
}
