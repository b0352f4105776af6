//! `--explain` through the binary: each file's timestamp, its source, mtime, slot and
//! settling, the missing slots, and that it reads only (no store, no lock).

use crate::common;

use chrono::Duration;
use common::{Workspace, ts};

const NOW: &str = "2026-12-02T12:00:00Z";

fn workspace() -> Workspace {
    let mut w = Workspace::new();
    w.now = Some(ts(NOW));
    w
}

/// `db`: daily at 03:00 (UTC). `docs`: a `filename_format` location.
fn setup(w: &Workspace) {
    w.write_config(
        "timezone: UTC\nlogging: { file: null }\nbackups:\n  locations:\n    - name: db\n      path: db\n      schedule: daily\n      at: \"03:00\"\n    - name: docs\n      path: docs\n      schedule: weekly\n      filename_format: \"%d.%m.%Y\"\n",
    );
    // Before the 3-day window: no slot.
    w.write_file(
        "db/db-20261129-0315.sql.gz",
        b"x",
        ts("2026-11-29T03:16:00Z"),
    );
    w.write_file(
        "db/db-20261202-0315.sql.gz",
        b"x",
        ts("2026-12-02T03:16:00Z"),
    );
    // No timestamp in the name: the mtime.
    w.write_file("db/db-latest.sql.gz", b"x", ts("2026-12-02T03:20:00Z"));
    // Still being written.
    w.write_file(
        "db/db-20261202-1159.sql.gz",
        b"x",
        ts(NOW) - Duration::minutes(1),
    );
    w.write_file("docs/docs-01.12.2026.zip", b"x", ts("2026-12-01T22:00:00Z"));
}

fn file<'a>(doc: &'a serde_json::Value, location: usize, path: &str) -> &'a serde_json::Value {
    doc["locations"][location]["files"]
        .as_array()
        .expect("files")
        .iter()
        .find(|f| f["path"] == path)
        .unwrap_or_else(|| panic!("no {path} in {doc:#}"))
}

#[test]
fn json_explains_every_file_and_the_missing_slots() {
    let w = workspace();
    setup(&w);
    let (run, doc) = w.run_json(&["--explain", "--days", "3"]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert_eq!(
        (doc["status"].as_str(), doc["exit_code"].as_i64()),
        (Some("ok"), Some(0))
    );
    assert_eq!(doc["locations"][0]["name"], "db");
    assert_eq!(
        file(&doc, 0, "db-20261202-0315.sql.gz"),
        &serde_json::json!({
            "path": "db-20261202-0315.sql.gz",
            "timestamp": "2026-12-02T03:15:00+00:00",
            "timestamp_source": "name:YYYYMMDD-HHMM",
            "mtime": "2026-12-02T03:16:00+00:00",
            "slot": "2026-12-02T03:00:00+00:00",
            "settled": true,
        })
    );
    let old = file(&doc, 0, "db-20261129-0315.sql.gz");
    assert_eq!(old["slot"], serde_json::Value::Null, "before the window");
    let latest = file(&doc, 0, "db-latest.sql.gz");
    assert_eq!(latest["timestamp_source"], "mtime");
    assert_eq!(latest["timestamp"], "2026-12-02T03:20:00+00:00");
    let writing = file(&doc, 0, "db-20261202-1159.sql.gz");
    assert_eq!(writing["settled"], false);
    assert_eq!(writing["slot"], "2026-12-02T03:00:00+00:00");
    assert_eq!(
        doc["locations"][0]["missing_slots"],
        serde_json::json!(["2026-11-30T03:00:00+00:00", "2026-12-01T03:00:00+00:00"])
    );
    let docs = file(&doc, 1, "docs-01.12.2026.zip");
    assert_eq!(docs["timestamp_source"], "filename_format");
    assert_eq!(docs["timestamp"], "2026-12-01T00:00:00+00:00");
}

#[test]
fn text_reads_for_people_and_nothing_is_written() {
    let w = workspace();
    setup(&w);
    let run = w.run(&["--explain", "--days", "3", "--location-name", "db"]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert!(
        run.stdout.contains(
            "  db-20261202-0315.sql.gz\n    2026-12-02T03:15:00+00:00 from the name (YYYYMMDD-HHMM); mtime 2026-12-02T03:16:00+00:00; slot 2026-12-02T03:00:00+00:00; settled\n"
        ),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("from the mtime"), "{}", run.stdout);
    assert!(
        run.stdout.contains("not settled yet (not counted)"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("no slot: before the window"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains(
            "missing slots (2):\n    2026-11-30T03:00:00+00:00\n    2026-12-01T03:00:00+00:00\n"
        ),
        "{}",
        run.stdout
    );
    assert!(!run.stdout.contains("docs"), "only the selected location");
    // Reads only: no store, no lock file.
    let left: Vec<String> = std::fs::read_dir(w.dir.path())
        .expect("list")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("backup_monitor"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn explain_works_while_a_run_holds_the_lock_and_leaves_the_store_alone() {
    let w = workspace();
    setup(&w);
    let (run, _) = w.run_json(&["--monitor"]);
    assert!(run.code != 3, "{}", run.stderr);
    let before = w.store_text();
    // Hold the run lock the way a run does.
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(w.lock_path())
        .expect("open lock");
    lock.try_lock().expect("lock");
    let run = w.run(&["--explain", "--location-id", "1"]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert!(run.stdout.contains("db-latest.sql.gz"), "{}", run.stdout);
    assert_eq!(w.store_text(), before, "the store is unchanged");
}

#[test]
fn explain_refuses_other_operations_and_unknown_locations() {
    let w = workspace();
    setup(&w);
    let run = w.run(&["--explain", "--monitor"]);
    assert_eq!(run.code, 3);
    assert!(
        run.stderr
            .contains("--explain cannot be combined with --monitor"),
        "{}",
        run.stderr
    );
    // Nothing ran: no store was made (SQLite) or written (PostgreSQL), whichever engine.
    assert!(!w.path("backup_monitor.db").exists(), "nothing ran");
    assert_eq!(w.store_text(), "", "nothing ran");
    let (run, doc) = w.run_json(&["--explain", "--location-name", "nope"]);
    assert_eq!(run.code, 3);
    assert_eq!(doc["status"], "unknown");
    assert!(
        doc["error"]
            .as_str()
            .is_some_and(|e| e.contains("unknown location nope; known locations: db, docs")),
        "{doc:#}"
    );
}

#[test]
fn a_missing_directory_is_explained_not_a_crash() {
    let w = workspace();
    setup(&w);
    std::fs::remove_dir_all(w.path("docs")).expect("rm");
    let run = w.run(&["--explain"]);
    assert_eq!(run.code, 3, "{}", run.stdout);
    assert!(run.stdout.contains("cannot scan: "), "{}", run.stdout);
    assert!(run.stdout.contains("does not exist"), "{}", run.stdout);
    assert!(
        run.stdout.contains("db-latest.sql.gz"),
        "the rest is still explained"
    );
}
