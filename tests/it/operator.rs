//! What an operator meets at 3 a.m. when something around the run is wrong, through the
//! binary: a bad `.env` line (named by its number, never shown), another program's
//! `.env` in the working directory (skipped, the run goes on), an action given with
//! `--explain` (refused, not silently dropped), a mistyped kind in a silence, a store
//! path that is empty, a pipe or a directory, file names that would split `--explain`'s
//! lines, a variable that is not UTF-8, `--ack 0`, the silences on the Nagios line, the
//! audit log's user, a missing templates directory and a cause said twice.

use crate::common::{Workspace, ts};
use std::os::unix::ffi::OsStrExt;

const NOW: &str = "2026-12-05T12:00:00Z";

/// One daily location `db` with last night's dump, the SQLite store `var/bm.db`.
fn workspace() -> Workspace {
    let mut w = Workspace::sqlite().with_sqlite_file("var/bm.db");
    w.now = Some(ts(NOW));
    w.write_config(
        "database_url: var/bm.db\nlogging: { file: null }\nbackups:\n  locations:\n    \
         - { name: db, path: b, type: database, schedule: daily, min_free_space: 0 }\n",
    );
    w.write_file(
        "b/db_20261205_020000.sql",
        b"-- dump\n",
        ts("2026-12-05T02:05:00Z"),
    );
    w
}

#[test]
fn a_bad_env_line_beside_the_config_is_named_by_its_number_and_never_shown() {
    let w = workspace();
    std::fs::write(
        w.path(".env"),
        "A=1\n# note\nSMTP_PASSWORD hunter2-secret\n",
    )
    .unwrap();
    let run = w.run(&["--monitor"]);
    assert_eq!(run.code, 3, "{}", run.stderr);
    assert!(
        run.stderr.contains(".env, line 3: not a NAME=value line"),
        "{}",
        run.stderr
    );
    let (json, _) = w.run_json(&["--monitor"]);
    for out in [&run.stdout, &run.stderr, &json.stdout, &json.stderr] {
        assert!(!out.contains("hunter2"), "the line was shown: {out}");
    }
}

#[test]
fn another_programs_broken_env_in_the_working_directory_does_not_stop_the_run() {
    let w = workspace();
    std::fs::create_dir_all(w.path("elsewhere")).unwrap();
    std::fs::write(w.path("elsewhere/.env"), "DB_PASSWORD hunter3\n").unwrap();
    let out = w
        .command()
        .current_dir(w.path("elsewhere"))
        .args(["--monitor"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("elsewhere/.env, line 1: not a NAME=value line")
            && stderr.contains("its variables are not used"),
        "{stderr}"
    );
    assert!(!stderr.contains("hunter3"), "{stderr}");
    let runs: i64 = w.store_value("SELECT COUNT(*) FROM runs");
    assert_eq!(runs, 1);
    // An action and --explain say it too.
    for args in [&["--silences"][..], &["--explain"]] {
        let out = w
            .command()
            .current_dir(w.path("elsewhere"))
            .args(args)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {stderr}");
        assert!(
            stderr.contains("its variables are not used"),
            "{args:?}: {stderr}"
        );
    }
}

#[test]
fn an_action_given_with_explain_is_refused_and_not_done() {
    let w = workspace();
    assert_eq!(w.run(&["--monitor"]).code, 0);
    let run = w.run(&[
        "--explain",
        "--silence",
        "db",
        "--for",
        "8h",
        "--reason",
        "maint",
    ]);
    assert_eq!(run.code, 3, "{}", run.stdout);
    assert!(
        run.stderr.contains("run on their own, without operations"),
        "{}",
        run.stderr
    );
    let silences: i64 = w.store_value("SELECT COUNT(*) FROM silences");
    assert_eq!(silences, 0, "the silence was made");
}

#[test]
fn a_mistyped_kind_in_a_silence_is_named_as_the_kind() {
    let w = workspace();
    let run = w.run(&[
        "--silence",
        "db/missing_backups",
        "--for",
        "8h",
        "--reason",
        "migration",
    ]);
    assert_eq!(run.code, 3);
    assert!(
        run.stderr.contains(
            "unknown problem kind `missing_backups` in `db/missing_backups` (location db is known)"
        ),
        "{}",
        run.stderr
    );
}

#[test]
fn status_on_an_empty_store_file_says_there_is_no_store_and_writes_nothing() {
    let w = workspace();
    std::fs::create_dir_all(w.path("var")).unwrap();
    std::fs::write(w.path("var/bm.db"), b"").unwrap();
    let run = w.run(&["--status"]);
    assert_eq!(run.code, 3, "{}", run.stdout);
    assert!(run.stderr.contains("no store at"), "{}", run.stderr);
    assert_eq!(std::fs::metadata(w.path("var/bm.db")).unwrap().len(), 0);
    // The first run makes it a store.
    assert_eq!(w.run(&["--monitor"]).code, 0);
    assert_eq!(w.run(&["--status"]).code, 0);
}

#[test]
fn a_store_path_that_is_a_pipe_or_a_directory_is_said_at_once() {
    let w = workspace();
    std::fs::create_dir_all(w.path("var")).unwrap();
    let fifo = w.path("var/bm.db");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(made.success());
    for op in ["--status", "--monitor"] {
        let out = w
            .command()
            .arg(op)
            .timeout(std::time::Duration::from_secs(60))
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(3), "{op}: {stderr}");
        assert!(
            stderr.contains("is a named pipe, not a file"),
            "{op}: {stderr}"
        );
    }
    std::fs::remove_file(&fifo).unwrap();
    std::fs::create_dir(&fifo).unwrap();
    let run = w.run(&["--monitor"]);
    assert_eq!(run.code, 3);
    assert!(
        run.stderr.contains("is a directory, not a file"),
        "{}",
        run.stderr
    );
}

#[test]
fn explain_keeps_a_name_with_a_newline_on_one_line() {
    let w = workspace();
    w.write_file(
        "b/db_20261204_020000\nforged line.sql",
        b"x",
        ts("2026-12-04T02:05:00Z"),
    );
    let run = w.run(&["--explain"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stdout
            .contains("  db_20261204_020000\\nforged line.sql\n"),
        "{}",
        run.stdout
    );
    assert!(!run.stdout.lines().any(|l| l.starts_with("forged line")));
}

#[test]
fn a_variable_that_is_not_utf8_is_said_to_be_so_not_unset() {
    let w = workspace();
    w.write_config(
        "database_url: var/bm.db\nlogging: { file: null }\nbackups:\n  locations:\n    \
         - { name: db, path: \"${BK_ROOT}\", type: database, schedule: daily, min_free_space: 0 }\n",
    );
    let out = w
        .command()
        .env("BK_ROOT", std::ffi::OsStr::from_bytes(b"b\xff"))
        .arg("--monitor")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3));
    assert!(
        stderr.contains("`BK_ROOT` is set to bytes that are not UTF-8 text"),
        "{stderr}"
    );
    // DATABASE_URL always wins: one it cannot read is not quietly replaced by the config's.
    let out = w
        .command()
        .env("DATABASE_URL", std::ffi::OsStr::from_bytes(b"x\xffy.db"))
        .env("BK_ROOT", "b")
        .arg("--status")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3));
    assert!(
        stderr.contains("DATABASE_URL: is set to bytes that are not UTF-8 text"),
        "{stderr}"
    );
}

#[test]
fn ack_of_zero_says_what_zero_is() {
    let w = workspace();
    let run = w.run(&["--ack", "0", "--reason", "seen"]);
    assert_eq!(run.code, 3);
    assert!(
        run.stderr
            .contains("#0 is a monitor_stale judged as it was shown, not stored yet: the next --check-alerts or --report stores it"),
        "{}",
        run.stderr
    );
}

#[test]
fn the_nagios_line_of_the_silences_lists_them() {
    let w = workspace();
    assert_eq!(w.run(&["--monitor"]).code, 0);
    let made = w.run(&["--silence", "db", "--for", "8h", "--reason", "disk swap"]);
    assert_eq!(made.code, 0, "{}", made.stderr);
    let run = w.run(&["--silences", "--format", "nagios"]);
    assert_eq!(run.code, 0);
    let mut lines = run.stdout.lines();
    assert_eq!(lines.next(), Some("BACKUP OK - 1 silence in force"));
    let listed = lines.next().unwrap_or_default();
    assert!(
        listed.starts_with("#1 db until ") && listed.contains("disk swap"),
        "{}",
        run.stdout
    );
}

#[test]
fn the_audit_log_names_the_user_from_the_system_not_from_user() {
    let w = workspace().env("USER", "mallory").env("LOGNAME", "mallory");
    assert_eq!(w.run(&["--monitor"]).code, 0);
    let made = w.run(&["--silence", "db", "--for", "1h", "--reason", "x"]);
    assert_eq!(made.code, 0, "{}", made.stderr);
    // SAFETY: getuid has no preconditions.
    let uid = unsafe { libc::getuid() };
    let expected = nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid))
        .ok()
        .flatten()
        .map_or_else(|| format!("uid {uid}"), |u| u.name);
    let who: String = w.store_value("SELECT user_name FROM lifecycle_actions");
    assert_eq!(who, expected);
}

#[test]
fn a_missing_templates_directory_is_an_error_to_the_check_and_a_warning_to_the_report() {
    let w = workspace();
    w.write_config(
        "database_url: var/bm.db\nlogging: { file: null }\nreporting:\n  output_dir: reports\n  \
         templates_dir: tpl\nbackups:\n  locations:\n    \
         - { name: db, path: b, type: database, schedule: daily, min_free_space: 0 }\n",
    );
    let check = w.run(&["--check-config"]);
    assert_eq!(check.code, 3, "{}", check.stdout);
    assert!(
        format!("{}{}", check.stdout, check.stderr).contains("reporting.templates_dir: ")
            && check.stderr.contains("tpl is not a directory"),
        "{}{}",
        check.stdout,
        check.stderr
    );
    let run = w.run(&["--monitor", "--report"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("is not a directory: the report uses the built-in templates"),
        "{}",
        run.stderr
    );
    assert!(w.path("reports/latest.html").is_file());
}

#[test]
fn a_cause_the_message_already_says_is_said_once() {
    let w = workspace();
    w.write_config(
        "database_url: var/bm.db\nlogging: { file: null }\nreporting:\n  output_dir: reports\n  \
         prometheus_textfile: prom\nbackups:\n  locations:\n    \
         - { name: db, path: b, type: database, schedule: daily, min_free_space: 0 }\n",
    );
    std::fs::create_dir_all(w.path("prom")).unwrap();
    let run = w.run(&["--monitor", "--report"]);
    let said = run.stderr.matches("Is a directory").count();
    assert!(said >= 1, "{}", run.stderr);
    for line in run.stderr.lines() {
        assert!(
            line.matches("Is a directory").count() <= 1,
            "a cause said twice: {line}"
        );
    }
}

#[test]
fn an_actions_store_error_is_said_once() {
    let w = workspace();
    std::fs::create_dir_all(w.path("var/bm.db")).unwrap();
    let run = w.run(&["--ack", "1", "--reason", "seen"]);
    assert_eq!(run.code, 3);
    assert_eq!(
        run.stderr.matches("is a directory, not a file").count(),
        1,
        "{}",
        run.stderr
    );
}
