//! `--monitor` through the binary: every monitor problem kind, filters, exit codes and
//! the `--format json` document, on real files in temp dirs with a fixed "now".

use crate::common;

use chrono::Duration;
use common::{Workspace, ts};

const NOW: &str = "2026-11-21T12:00:00Z";

fn workspace() -> Workspace {
    let mut w = Workspace::new();
    w.now = Some(ts(NOW));
    w
}

fn location(name: &str, extra: &str) -> String {
    format!(
        "timezone: UTC\nlogging: {{ file: null }}\nbackups:\n  locations:\n    - name: {name}\n      path: {name}\n{extra}"
    )
}

/// Daily dumps at 02:00 for the given days before NOW (0 = today), each `size` bytes.
fn daily_dumps(w: &Workspace, dir: &str, days_ago: &[i64], size: usize) {
    for d in days_ago {
        let t = ts("2026-11-21T02:00:00Z") - Duration::days(*d);
        let name = format!("{dir}/db_{}.sql.gz", t.format("%Y%m%d_%H%M%S"));
        w.write_file(&name, &vec![b'x'; size], t + Duration::minutes(5));
    }
}

fn problems_of<'a>(doc: &'a serde_json::Value, kind: &str) -> Vec<&'a serde_json::Value> {
    doc["problems"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["kind"] == kind)
        .collect()
}

#[test]
fn healthy_location_exits_zero_with_full_json_document() {
    let w = workspace();
    w.write_config(&location(
        "db",
        "      type: database\n      schedule: daily\n      at: \"02:00\"\n      min_count: 3\n",
    ));
    daily_dumps(&w, "db", &[0, 1, 2, 3, 4, 5, 6, 7], 2048);
    let (run, doc) = w.run_json(&["--monitor"]);
    assert_eq!(run.code, 0, "{}", run.stdout);
    assert_eq!(doc["status"], "ok");
    assert_eq!(doc["exit_code"], 0);
    assert_eq!(doc["operations"], serde_json::json!(["monitor"]));
    for key in [
        "version",
        "started_at",
        "finished_at",
        "overall_health",
        "verification",
        "restore_tests",
        "alerts",
        "reports",
    ] {
        assert!(doc.get(key).is_some(), "missing {key}");
    }
    let loc = &doc["locations"][0];
    assert_eq!(loc["name"], "db");
    assert_eq!(loc["status"], "ok");
    assert_eq!(loc["backups_present"], 8);
    assert_eq!(loc["new_backups"], 8);
    assert_eq!(loc["latest_backup"]["path"], "db_20261121_020000.sql.gz");
    assert_eq!(loc["latest_backup"]["size"], 2048);
    assert_eq!(loc["health_score"], 1.0);
    assert!(loc["missing_slots"].as_array().unwrap().is_empty());

    // A second run finds nothing new.
    let (_, doc) = w.run_json(&["--monitor"]);
    assert_eq!(doc["locations"][0]["new_backups"], 0);
    assert_eq!(doc["locations"][0]["backups_present"], 8);
}

#[test]
fn a_gap_is_history_not_an_open_problem() {
    let w = workspace();
    w.write_config(&location(
        "db",
        "      schedule: daily\n      at: \"02:00\"\n",
    ));
    // One nightly dump missed three days ago, backups every night since.
    daily_dumps(&w, "db", &[0, 1, 3, 4], 100);
    let (run, doc) = w.run_json(&["--monitor"]);
    assert_eq!(run.code, 0, "{doc:#}");
    assert!(problems_of(&doc, "missing_backup").is_empty(), "{doc:#}");
    assert_eq!(
        doc["locations"][0]["missing_slots"],
        serde_json::json!(["2026-11-19T02:00:00+00:00"])
    );
    // Slots before the oldest backup are never judged: only one slot is missing.
    let score = doc["locations"][0]["health_score"].as_f64().unwrap();
    assert!(
        (score - 0.8).abs() < 0.01,
        "4 of 5 due slots satisfied: {score}"
    );
    // No run saw it while it was late: it is recorded as opened and resolved at once.
    let recorded: i64 = w.store_value(
        "SELECT COUNT(*) FROM problems WHERE kind='missing_backup' AND resolved_at = first_seen AND message LIKE '1 daily slot missed from 2026-11-19 02:00%'",
    );
    assert_eq!(recorded, 1);
}

#[test]
fn an_overdue_location_has_one_missing_backup_from_its_first_missed_slot() {
    let w = workspace();
    w.write_config(&location(
        "db",
        "      schedule: daily\n      at: \"02:00\"\n",
    ));
    daily_dumps(&w, "db", &[2, 3, 4], 100);
    let (run, doc) = w.run_json(&["--monitor"]);
    assert_eq!(run.code, 2);
    let missing = problems_of(&doc, "missing_backup");
    assert_eq!(missing.len(), 1, "{doc:#}");
    assert_eq!(missing[0]["severity"], "critical");
    assert_eq!(missing[0]["location"], "db");
    assert_eq!(missing[0]["slot"], "2026-11-20T02:00:00+00:00");
    let message = missing[0]["message"].as_str().unwrap();
    assert!(
        message.contains("2 daily slots missed since 2026-11-20 02:00"),
        "{message}"
    );
    assert!(
        message.contains("the last backup is from 2026-11-19 02:00"),
        "{message}"
    );
    assert_eq!(
        doc["locations"][0]["missing_slots"],
        serde_json::json!(["2026-11-20T02:00:00+00:00", "2026-11-21T02:00:00+00:00"])
    );
}

#[test]
fn slot_not_yet_due_is_not_missing() {
    let w = workspace();
    // Today's 02:00 slot has a 1h grace; at 02:30 it is not due yet.
    let mut w2 = w;
    w2.now = Some(ts("2026-11-21T02:30:00Z"));
    w2.write_config(&location(
        "db",
        "      schedule: daily\n      at: \"02:00\"\n",
    ));
    daily_dumps(&w2, "db", &[1, 2], 100);
    let (run, doc) = w2.run_json(&["--monitor"]);
    assert_eq!(run.code, 0, "{doc:#}");
    w2.now = Some(ts("2026-11-21T03:30:00Z"));
    let (run, doc) = w2.run_json(&["--monitor"]);
    assert_eq!(run.code, 2);
    assert_eq!(
        problems_of(&doc, "missing_backup")[0]["slot"],
        "2026-11-21T02:00:00+00:00"
    );
}

#[test]
fn fixed_slot_resolves_when_the_backup_arrives() {
    let w = workspace();
    w.write_config(&location(
        "db",
        "      schedule: daily\n      at: \"02:00\"\n",
    ));
    daily_dumps(&w, "db", &[2], 100);
    assert_eq!(w.run(&["--monitor"]).code, 2, "days 1 and 0 are overdue");
    // Tonight's backup comes back; yesterday's stays missing: the run is over.
    daily_dumps(&w, "db", &[0], 100);
    let (run, doc) = w.run_json(&["--monitor"]);
    assert_eq!(run.code, 0, "{doc:#}");
    assert_eq!(
        doc["locations"][0]["missing_slots"],
        serde_json::json!(["2026-11-20T02:00:00+00:00"])
    );
    let resolved: String = w.store_value(
        "SELECT message FROM problems WHERE kind='missing_backup' AND resolved_at IS NOT NULL",
    );
    assert!(
        resolved.starts_with("1 daily slot missed from 2026-11-20 02:00 to 2026-11-21 02:00"),
        "the closed problem says how long it lasted: {resolved}"
    );
}

#[test]
fn an_outage_longer_than_the_window_is_told_as_the_gap_it_was_when_it_ends() {
    // Fifteen nights missed (the window is seven days), then the backups resume: the
    // closed problem said "overdue … since" and "the last backup is from … ago" for ever.
    let w = workspace();
    w.write_config(&location(
        "db",
        "      schedule: daily\n      at: \"02:00\"\n",
    ));
    daily_dumps(&w, "db", &[16, 17, 18], 100);
    let (run, doc) = w.run_json(&["--monitor"]);
    assert_eq!(run.code, 2, "{doc:#}");
    daily_dumps(&w, "db", &[0], 100);
    let (run, doc) = w.run_json(&["--monitor"]);
    assert_eq!(run.code, 0, "{doc:#}");
    let resolved: Vec<String> = w.store_column(
        "SELECT message FROM problems WHERE kind='missing_backup' AND resolved_at IS NOT NULL",
    );
    assert_eq!(resolved.len(), 1, "{resolved:?}");
    assert!(
        resolved[0].starts_with("15 daily slots missed from 2026-11-06 02:00 to 2026-11-21 02:00")
            && resolved[0].ends_with("backups resumed after it"),
        "the closed problem says how long it lasted: {}",
        resolved[0]
    );
    // The next run finds the same gap: nothing is recorded again.
    let (run, _) = w.run_json(&["--monitor"]);
    assert_eq!(run.code, 0);
    let all: i64 = w.store_value("SELECT COUNT(*) FROM problems WHERE kind='missing_backup'");
    assert_eq!(all, 1);
}

#[test]
fn a_first_run_on_old_sparse_backups_records_no_gap_before_the_window() {
    // A backup of 25 days ago and one of last night, first seen now: the gap between
    // them began before the window; no run saw it, and it is not told as history.
    let w = workspace();
    w.write_config(&location(
        "db",
        "      schedule: daily\n      at: \"02:00\"\n",
    ));
    daily_dumps(&w, "db", &[0, 25], 100);
    let (run, doc) = w.run_json(&["--monitor"]);
    assert_eq!(run.code, 0, "{doc:#}");
    let gaps: i64 = w.store_value("SELECT COUNT(*) FROM problems WHERE kind='missing_backup'");
    assert_eq!(gaps, 0);
}

#[test]
fn no_backups_and_unavailable_locations_score_zero() {
    let w = workspace();
    std::fs::create_dir_all(w.path("empty")).unwrap();
    std::fs::write(w.path("afile"), b"x").unwrap();
    w.write_config(
        "timezone: UTC\nlogging: { file: null }\nbackups:\n  locations:\n    - name: empty\n      path: empty\n    - name: gone\n      path: does/not/exist\n    - name: notdir\n      path: afile\n",
    );
    let (run, doc) = w.run_json(&["--monitor"]);
    assert_eq!(run.code, 2);
    assert_eq!(problems_of(&doc, "no_backups").len(), 1);
    let unavailable = problems_of(&doc, "location_unavailable");
    assert_eq!(unavailable.len(), 2);
    assert!(
        unavailable
            .iter()
            .any(|p| p["message"].as_str().unwrap().contains("does not exist"))
    );
    assert!(
        unavailable
            .iter()
            .any(|p| p["message"].as_str().unwrap().contains("not a directory"))
    );
    for loc in doc["locations"].as_array().unwrap() {
        assert_eq!(loc["health_score"], 0.0, "{loc}");
        assert_eq!(loc["status"], "critical");
    }
    assert!(
        !w.path("does/not/exist").exists(),
        "location paths are never created"
    );
}

#[test]
fn file_problems_empty_undersized_future() {
    let w = workspace();
    w.write_config(&location(
        "f",
        "      schedule: daily\n      min_size: 1KiB\n",
    ));
    let t = ts("2026-11-20T10:00:00Z");
    w.write_file("f/a_20261120.bak", b"", t);
    w.write_file("f/b_20261120.bak", &[1u8; 10], t);
    w.write_file("f/c_20261130.bak", &[1u8; 5000], t);
    w.write_file("f/d_20261121.bak", &[1u8; 5000], t);
    let (run, doc) = w.run_json(&["--monitor"]);
    assert_eq!(run.code, 2);
    let empty = problems_of(&doc, "empty_backup");
    assert_eq!(empty.len(), 1);
    assert_eq!(empty[0]["path"], "a_20261120.bak");
    assert_eq!(empty[0]["severity"], "critical");
    let under = problems_of(&doc, "undersized_backup");
    assert_eq!(under.len(), 1);
    assert_eq!(under[0]["path"], "b_20261120.bak");
    assert_eq!(under[0]["severity"], "warning");
    let future = problems_of(&doc, "future_timestamp");
    assert_eq!(future.len(), 1);
    assert_eq!(future[0]["path"], "c_20261130.bak");
}

#[test]
fn size_anomaly_against_median_of_previous_backups() {
    let w = workspace();
    w.write_config(&location(
        "db",
        "      schedule: daily\n      at: \"02:00\"\n      max_size_drop: 50%\n",
    ));
    daily_dumps(&w, "db", &[1, 2, 3, 4, 5, 6], 10_000);
    daily_dumps(&w, "db", &[0], 4_000);
    let (run, doc) = w.run_json(&["--monitor"]);
    assert_eq!(run.code, 1, "only a warning: {doc:#}");
    let anomalies = problems_of(&doc, "size_anomaly");
    assert_eq!(anomalies.len(), 1);
    assert_eq!(anomalies[0]["path"], "db_20261121_020000.sql.gz");
    assert_eq!(doc["status"], "warning");
}

#[test]
fn too_few_and_retention_exceeded_are_warnings() {
    let w = workspace();
    w.write_config(&location(
        "db",
        "      schedule: weekly\n      min_count: 5\n      retention_days: 3\n",
    ));
    daily_dumps(&w, "db", &[0, 5, 9], 100);
    let (run, doc) = w.run_json(&["--monitor", "--days", "2"]);
    assert_eq!(run.code, 1, "{doc:#}");
    assert_eq!(problems_of(&doc, "too_few_backups").len(), 1);
    let retention = problems_of(&doc, "retention_exceeded");
    assert_eq!(retention.len(), 1);
    assert!(
        retention[0]["message"]
            .as_str()
            .unwrap()
            .starts_with("2 backups")
    );
    assert!(retention[0]["path"].is_null(), "one per location");
    // One of each is said in the singular.
    std::fs::remove_dir_all(w.path("db")).unwrap();
    daily_dumps(&w, "db", &[9], 100);
    let (_, doc) = w.run_json(&["--monitor", "--days", "2"]);
    assert_eq!(
        problems_of(&doc, "too_few_backups")[0]["message"],
        "1 backup present, fewer than min_count 5"
    );
    let retention = problems_of(&doc, "retention_exceeded")[0]["message"]
        .as_str()
        .unwrap();
    assert!(
        retention.starts_with("1 backup is older than"),
        "{retention}"
    );
}

#[test]
fn deleted_before_retention_is_critical() {
    let w = workspace();
    w.write_config(&location(
        "db",
        "      schedule: daily\n      at: \"02:00\"\n",
    ));
    daily_dumps(&w, "db", &[0, 1, 2], 100);
    assert_eq!(w.run(&["--monitor"]).code, 0);
    std::fs::remove_file(w.path("db/db_20261120_020000.sql.gz")).unwrap();
    let (run, doc) = w.run_json(&["--monitor"]);
    assert_eq!(run.code, 2);
    let deleted = problems_of(&doc, "deleted_before_retention");
    assert_eq!(deleted.len(), 1);
    assert_eq!(deleted[0]["path"], "db_20261120_020000.sql.gz");
    assert_eq!(doc["locations"][0]["backups_present"], 2);
    // The deleted backup still satisfied its slot: no missing_backup.
    assert!(problems_of(&doc, "missing_backup").is_empty());
}

#[test]
fn all_recorded_backups_deleted_is_no_backups() {
    let w = workspace();
    w.write_config(&location(
        "db",
        "      schedule: daily\n      retention_days: 1\n",
    ));
    daily_dumps(&w, "db", &[5], 100);
    w.run(&["--monitor"]);
    std::fs::remove_file(w.path("db/db_20261116_020000.sql.gz")).unwrap();
    let (_, doc) = w.run_json(&["--monitor"]);
    let nb = problems_of(&doc, "no_backups");
    assert_eq!(nb.len(), 1);
    assert!(nb[0]["message"].as_str().unwrap().contains("deleted"));
}

#[test]
fn low_disk_space_by_size() {
    let w = workspace();
    w.write_config(&location(
        "db",
        "      schedule: daily\n      min_free_space: 1000TB\n",
    ));
    daily_dumps(&w, "db", &[0, 1], 100);
    let (run, doc) = w.run_json(&["--monitor"]);
    assert_eq!(run.code, 1);
    assert_eq!(problems_of(&doc, "low_disk_space").len(), 1);
    w.write_config(&location(
        "db",
        "      schedule: daily\n      min_free_space: 0%\n",
    ));
    let (run, _) = w.run_json(&["--monitor"]);
    assert_eq!(
        run.code, 0,
        "the problem resolves once the threshold is met"
    );
}

#[test]
fn unsettled_files_are_skipped_until_they_settle() {
    let w = workspace();
    w.write_config(&location(
        "db",
        "      schedule: daily\n      settle: 10m\n",
    ));
    daily_dumps(&w, "db", &[1], 100);
    w.write_file(
        "db/db_20261121_115800.sql.gz",
        b"still writing",
        ts("2026-11-21T11:58:00Z"),
    );
    let (_, doc) = w.run_json(&["--monitor"]);
    assert_eq!(doc["locations"][0]["backups_present"], 1);
    let mut later = w;
    later.now = Some(ts("2026-11-21T12:30:00Z"));
    let (_, doc) = later.run_json(&["--monitor"]);
    assert_eq!(doc["locations"][0]["backups_present"], 2);
    assert_eq!(doc["locations"][0]["new_backups"], 1);
}

#[test]
fn future_mtime_is_a_skewed_clock_not_a_file_being_written() {
    let w = workspace();
    w.write_config(&location("b", "      schedule: daily\n"));
    // The backup host's clock is two days ahead; the name carries no timestamp.
    w.write_file("b/backup.tar", b"data", ts(NOW) + Duration::days(2));
    // Three minutes ahead is within the tolerance: treated as just written.
    w.write_file("b/near.tar", b"data", ts(NOW) + Duration::minutes(3));
    let (run, doc) = w.run_json(&["--monitor"]);
    assert_eq!(run.code, 1, "only the future_timestamp warning: {doc:#}");
    assert_eq!(doc["locations"][0]["backups_present"], 1, "{doc:#}");
    assert!(problems_of(&doc, "no_backups").is_empty(), "{doc:#}");
    let future = problems_of(&doc, "future_timestamp");
    assert_eq!(future.len(), 1, "{doc:#}");
    assert_eq!(future[0]["path"], "backup.tar");
    assert_eq!(future[0]["severity"], "warning");
    assert!(
        future[0]["message"].as_str().unwrap().contains("mtime"),
        "{}",
        future[0]["message"]
    );
    // near.tar settles `settle` (5m) after its mtime, like any fresh file.
    let mut later = w;
    later.now = Some(ts(NOW) + Duration::minutes(9));
    let (_, doc) = later.run_json(&["--monitor"]);
    assert_eq!(doc["locations"][0]["backups_present"], 2, "{doc:#}");
    assert_eq!(problems_of(&doc, "future_timestamp").len(), 1);
}

#[test]
fn no_backups_says_when_matching_files_have_not_settled() {
    let w = workspace();
    w.write_config(&location(
        "db",
        "      schedule: daily\n      settle: 10m\n",
    ));
    w.write_file(
        "db/db_20261121_115800.sql.gz",
        b"still writing",
        ts("2026-11-21T11:58:00Z"),
    );
    let (run, doc) = w.run_json(&["--monitor"]);
    assert_eq!(run.code, 2, "{doc:#}");
    let nb = problems_of(&doc, "no_backups");
    assert_eq!(nb.len(), 1, "{doc:#}");
    assert_eq!(nb[0]["severity"], "critical");
    let message = nb[0]["message"].as_str().unwrap();
    assert!(
        message.starts_with("1 file matches [\"*\"] in ")
            && message
                .ends_with("but was modified within the last 10m (settle) and is not counted yet"),
        "{message}"
    );
    w.write_file(
        "db/db_20261121_115900.sql.gz",
        b"still writing",
        ts("2026-11-21T11:59:00Z"),
    );
    let (_, doc) = w.run_json(&["--monitor"]);
    let message = problems_of(&doc, "no_backups")[0]["message"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        message.starts_with("2 files match") && message.contains("are not counted yet"),
        "{message}"
    );
    // Once settled they are backups, and the problem resolves.
    let mut later = w;
    later.now = Some(ts("2026-11-21T12:30:00Z"));
    let (_, doc) = later.run_json(&["--monitor"]);
    assert!(problems_of(&doc, "no_backups").is_empty(), "{doc:#}");
    assert_eq!(doc["locations"][0]["backups_present"], 2);
}

#[test]
fn no_backups_message_when_nothing_matches() {
    let w = workspace();
    w.write_config(&location("db", "      patterns: [\"*.sql.gz\"]\n"));
    w.write_file("db/readme.txt", b"x", ts("2026-11-20T00:00:00Z"));
    let (_, doc) = w.run_json(&["--monitor"]);
    let message = problems_of(&doc, "no_backups")[0]["message"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        message.starts_with("no backup file matches [\"*.sql.gz\"] in "),
        "{message}"
    );
}

#[test]
fn a_zone_in_the_file_name_is_honoured() {
    let w = workspace();
    w.write_config(&location("a", "      schedule: weekly\n"));
    w.write_file(
        "a/a_2026-11-14T10:15:00+05:00.x",
        b"x",
        ts("2026-11-20T00:00:00Z"),
    );
    w.write_file("a/b_20261115_101500Z.x", b"x", ts("2026-11-20T00:00:00Z"));
    let (_, doc) = w.run_json(&["--monitor"]);
    let ts_of = |path: &str| -> String {
        let rows: Vec<(i64, String)> = w.store_rows(&format!(
            "SELECT ts, ts_source FROM backups WHERE path = {}",
            common::quote(path)
        ));
        let [(t, source)] = &rows[..] else {
            panic!("one backup {path}: {rows:?}");
        };
        let t = chrono::DateTime::from_timestamp(*t, 0)
            .unwrap()
            .to_rfc3339();
        format!("{t} {source}")
    };
    assert_eq!(
        ts_of("a_2026-11-14T10:15:00+05:00.x"),
        "2026-11-14T05:15:00+00:00 filename"
    );
    assert_eq!(
        ts_of("b_20261115_101500Z.x"),
        "2026-11-15T10:15:00+00:00 filename"
    );
    assert_eq!(
        doc["locations"][0]["latest_backup"]["timestamp"],
        "2026-11-15T10:15:00+00:00"
    );
}

#[test]
fn missing_slots_are_ordered_by_instant_on_a_fall_back_day() {
    let mut w = workspace();
    // Berlin falls back on 2026-10-25 at 03:00 CEST (01:00Z): 02:15 happens twice.
    w.now = Some(ts("2026-10-25T02:30:00Z"));
    w.write_config(
        "timezone: Europe/Berlin\nlogging: { file: null }\nbackups:\n  locations:\n    - name: h\n      path: h\n      schedule: hourly\n      at: \":15\"\n      timestamp: mtime\n",
    );
    w.write_file("h/first.bak", b"x", ts("2026-10-24T22:20:00Z"));
    w.write_file("h/last.bak", b"x", ts("2026-10-25T02:20:00Z"));
    let (run, doc) = w.run_json(&["--monitor"]);
    // The backup at 03:20 CET ends the run of missed slots: a gap, not overdue.
    assert_eq!(run.code, 0, "{doc:#}");
    let in_order = serde_json::json!([
        "2026-10-25T01:15:00+02:00",
        "2026-10-25T02:15:00+02:00",
        "2026-10-25T02:15:00+01:00"
    ]);
    assert_eq!(doc["locations"][0]["missing_slots"], in_order, "{doc:#}");
    let (_, status) = w.run_json(&["--status"]);
    assert_eq!(
        status["locations"][0]["missing_slots"], in_order,
        "{status:#}"
    );
}

#[test]
fn patterns_exclude_recursive_and_sidecars() {
    let w = workspace();
    w.write_config(&location(
        "b",
        "      patterns: [\"*.tar.gz\", \"keep/*.dump\"]\n      exclude: [\"*.partial.tar.gz\"]\n      recursive: true\n      schedule: weekly\n",
    ));
    let t = ts("2026-11-20T00:00:00Z");
    for f in [
        "b/a.tar.gz",
        "b/deep/er/b.tar.gz",
        "b/c.partial.tar.gz",
        "b/keep/x.dump",
        "b/other/x.dump",
        "b/a.tar.gz.sha256",
        "b/SHA256SUMS",
        "b/readme.txt",
    ] {
        w.write_file(f, b"data", t);
    }
    let (_, doc) = w.run_json(&["--monitor"]);
    assert_eq!(doc["locations"][0]["backups_present"], 3, "{doc:#}");
    let mut paths: Vec<String> = w.store_column("SELECT path FROM backups");
    paths.sort();
    assert_eq!(paths, vec!["a.tar.gz", "deep/er/b.tar.gz", "keep/x.dump"]);
}

#[test]
fn non_recursive_ignores_subdirectories() {
    let w = workspace();
    w.write_config(&location("b", "      schedule: weekly\n"));
    let t = ts("2026-11-20T00:00:00Z");
    w.write_file("b/top.bak", b"data", t);
    w.write_file("b/sub/nested.bak", b"data", t);
    let (_, doc) = w.run_json(&["--monitor"]);
    assert_eq!(doc["locations"][0]["backups_present"], 1);
}

#[test]
fn timestamps_from_mtime_and_filename_format() {
    let w = workspace();
    w.write_config(&format!(
        "{}    - name: custom\n      path: custom\n      filename_format: \"%d.%m.%Y\"\n      schedule: daily\n",
        location("m", "      timestamp: mtime\n      schedule: daily\n")
    ));
    w.write_file("m/db_20200101.sql", b"x", ts("2026-11-21T01:00:00Z"));
    w.write_file(
        "custom/backup-20.11.2026.tgz",
        b"x",
        ts("2026-11-01T00:00:00Z"),
    );
    let (_, doc) = w.run_json(&["--monitor"]);
    let locs = doc["locations"].as_array().unwrap();
    let m = locs.iter().find(|l| l["name"] == "m").unwrap();
    assert_eq!(
        m["latest_backup"]["timestamp"], "2026-11-21T01:00:00+00:00",
        "mtime mode ignores the name"
    );
    let c = locs.iter().find(|l| l["name"] == "custom").unwrap();
    assert_eq!(c["latest_backup"]["timestamp"], "2026-11-20T00:00:00+00:00");
}

#[test]
fn hourly_and_cron_schedules_in_a_time_zone() {
    let w = workspace();
    w.write_config(
        "timezone: Europe/Berlin\nlogging: { file: null }\nbackups:\n  locations:\n    - name: h\n      path: h\n      schedule: hourly\n      at: \":30\"\n    - name: c\n      path: c\n      schedule: \"0 3 * * *\"\n",
    );
    // Hourly: backups at :35 local for the last 5 hours, except 09:30 local (08:30 UTC).
    for hours_ago in 1..=5 {
        let t = ts("2026-11-21T11:35:00Z") - Duration::hours(hours_ago);
        if t.format("%H").to_string() == "08" {
            continue;
        }
        let local = t.with_timezone(&chrono_tz::Europe::Berlin);
        w.write_file(
            &format!("h/h_{}.bak", local.format("%Y%m%d_%H%M%S")),
            b"x",
            t,
        );
    }
    // Cron 03:00 Berlin = 02:00 UTC; the backup for the 21st is there, the 20th's missing.
    w.write_file(
        "c/c_2026-11-19T03-10-00.bak",
        b"x",
        ts("2026-11-19T02:10:00Z"),
    );
    w.write_file(
        "c/c_2026-11-21T03-10-00.bak",
        b"x",
        ts("2026-11-21T02:10:00Z"),
    );
    let (run, doc) = w.run_json(&["--monitor"]);
    // Both locations have backups after their missed slot: gaps, not overdue.
    assert_eq!(run.code, 0, "{doc:#}");
    let slots: Vec<(String, String)> = doc["locations"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|l| {
            l["missing_slots"].as_array().unwrap().iter().map(|s| {
                (
                    l["name"].as_str().unwrap().to_string(),
                    s.as_str().unwrap().to_string(),
                )
            })
        })
        .collect();
    assert!(
        slots.contains(&("h".into(), "2026-11-21T09:30:00+01:00".into())),
        "{slots:?}"
    );
    assert!(
        slots.contains(&("c".into(), "2026-11-20T03:00:00+01:00".into())),
        "{slots:?}"
    );
    assert_eq!(slots.len(), 2, "{slots:?}");
}

#[test]
fn window_limits_judged_slots() {
    let w = workspace();
    w.write_config(&location(
        "db",
        "      schedule: daily\n      at: \"02:00\"\n      retention_days: 60\n",
    ));
    daily_dumps(&w, "db", &[0, 1, 2, 10], 100);
    let (_, doc7) = w.run_json(&["--monitor", "--days", "7"]);
    let (_, doc30) = w.run_json(&["--monitor", "--days", "30"]);
    let missing = |doc: &serde_json::Value| {
        doc["locations"][0]["missing_slots"]
            .as_array()
            .unwrap()
            .len()
    };
    assert_eq!(
        missing(&doc7),
        4,
        "days 3..=6 before now, judged in a 7-day window"
    );
    assert_eq!(missing(&doc30), 7, "days 3..=9 in a 30-day window");
    assert!(
        problems_of(&doc30, "missing_backup").is_empty(),
        "a gap is history"
    );
}

#[test]
fn location_filters_and_unknown_location() {
    let w = workspace();
    w.write_config(&format!(
        "{}    - name: other\n      path: other\n",
        location("db", "")
    ));
    daily_dumps(&w, "db", &[0, 1], 100);
    let (run, doc) = w.run_json(&["--monitor", "--location-name", "db"]);
    assert_eq!(run.code, 0);
    assert_eq!(doc["locations"].as_array().unwrap().len(), 1);
    let id = doc["locations"][0]["id"].as_i64().unwrap();
    let (_, doc) = w.run_json(&["--monitor", "--location-id", &id.to_string()]);
    assert_eq!(doc["locations"][0]["name"], "db");
    let (run, doc) = w.run_json(&["--monitor", "--location-name", "nope"]);
    assert_eq!(run.code, 3);
    assert_eq!(doc["status"], "unknown");
    let err = doc["error"].as_str().unwrap();
    assert!(
        err.contains("nope") && err.contains("db") && err.contains("other"),
        "{err}"
    );
    let run = w.run(&["--monitor", "--location-name", "nope"]);
    assert_eq!(run.code, 3);
    assert!(run.stderr.contains("known locations"), "{}", run.stderr);
}

#[test]
fn status_reads_the_store_without_scanning() {
    let w = workspace();
    w.write_config(&location(
        "db",
        "      schedule: daily\n      at: \"02:00\"\n",
    ));
    let run = w.run(&["--status"]);
    assert_eq!(run.code, 3, "no store yet");
    assert!(run.stderr.contains("--monitor"), "{}", run.stderr);
    daily_dumps(&w, "db", &[1, 2], 100);
    assert_eq!(w.run(&["--monitor"]).code, 2, "tonight's dump is overdue");
    daily_dumps(&w, "db", &[0], 100);
    let (run, doc) = w.run_json(&["--status"]);
    assert_eq!(
        run.code, 2,
        "status keeps the stored verdict: it does not scan"
    );
    assert_eq!(doc["operations"], serde_json::json!(["status"]));
    assert_eq!(doc["locations"][0]["backups_present"], 2);
    let text = w.run(&["--status"]);
    assert!(text.stdout.contains("missing_backup"), "{}", text.stdout);
}

#[test]
fn nagios_format_line_and_perfdata() {
    let w = workspace();
    w.write_config(&location(
        "db",
        "      schedule: daily\n      at: \"02:00\"\n",
    ));
    daily_dumps(&w, "db", &[1, 2], 100);
    let run = w.run(&["--monitor", "--format", "nagios"]);
    assert_eq!(run.code, 2);
    let first = run.stdout.lines().next().unwrap();
    assert!(first.starts_with("BACKUP CRITICAL - "), "{first}");
    let perf = first.split_once(" | ").unwrap().1;
    // Daily at 02:00 with an hour's grace: warning after 25h, critical after 49h.
    assert!(perf.contains("'db_age'=122400s;90000;176400;0"), "{perf}");
    assert!(perf.contains("'db_missing'=1;;;0"), "{perf}");
    assert!(perf.contains("'db_health'="), "{perf}");
    assert!(
        run.stdout
            .lines()
            .nth(1)
            .unwrap()
            .contains("missing_backup")
    );
}

#[test]
fn text_output_is_a_table_per_location() {
    let w = workspace();
    w.write_config(&location(
        "db",
        "      schedule: daily\n      at: \"02:00\"\n",
    ));
    daily_dumps(&w, "db", &[1, 2], 100);
    let run = w.run(&["--monitor"]);
    assert_eq!(run.code, 2);
    assert!(run.stdout.contains("LOCATION"), "{}", run.stdout);
    assert!(run.stdout.contains("db_20261120_020000.sql.gz"));
    assert!(
        run.stdout.contains("1d 10h"),
        "age of the last backup: {}",
        run.stdout
    );
    assert!(run.stdout.contains("CRITICAL #1 db missing_backup"));
}

#[test]
fn verbose_runs_say_what_the_store_took_and_each_statement() {
    let w = workspace();
    w.write_config(&location(
        "db",
        "      type: database\n      schedule: daily\n",
    ));
    daily_dumps(&w, "db", &[0, 1, 2], 64);
    let run = w.run(&["--monitor", "--verify", "-vv"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    // The last word on the store: its name, its time, how many statements.
    let line = run
        .stderr
        .lines()
        .find(|l| l.contains("the store (") && l.contains(" took "))
        .unwrap_or_else(|| panic!("no line on the store's time:\n{}", run.stderr));
    let statements: u64 = line
        .split(" ms over ")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no count of statements in {line:?}"));
    assert!(statements >= 5, "{line}");
    assert!(line.ends_with("statements, opening it included"), "{line}");
    // -vvv lists each statement with its time; the libraries' own trace (the database
    // client's reads and writes, thousands a run) stays out.
    let run = w.run(&["--monitor", "--verify", "-vvv"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let each: Vec<&str> = run
        .stderr
        .lines()
        .filter(|l| l.contains("store: ") && l.contains(" ms: "))
        .collect();
    assert!(
        each.iter().any(|l| l.contains("SELECT")) && each.iter().any(|l| l.contains("INSERT")),
        "{}",
        run.stderr
    );
    assert!(
        !run.stderr.contains("poll_write") && !run.stderr.contains("poll_read"),
        "library trace lines:\n{}",
        &run.stderr[..run.stderr.len().min(2000)]
    );
}

/// The statements a run sent, from its `-vv` line on the store.
pub(crate) fn statements_sent(run: &crate::common::Run) -> u64 {
    run.stderr
        .lines()
        .find(|l| l.contains("the store (") && l.contains(" took "))
        .and_then(|l| l.split(" ms over ").nth(1))
        .and_then(|s| s.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no count of statements:\n{}", run.stderr))
}

/// A host of `n` daily database locations, with a JSON report and a textfile configured,
/// monitored and verified once.
fn checked_host(n: usize) -> Workspace {
    let w = workspace();
    let mut config = String::from(
        "timezone: UTC\nlogging: { file: null }\nreporting:\n  output_dir: reports\n  formats: [json]\n  prometheus_textfile: metrics/bm.prom\nbackups:\n  locations:\n",
    );
    for i in 0..n {
        config.push_str(&format!(
            "    - name: db{i}\n      path: db{i}\n      type: database\n      schedule: daily\n      min_free_space: 0\n"
        ));
        daily_dumps(&w, &format!("db{i}"), &[0, 1, 2], 64);
    }
    w.write_config(&config);
    let run = w.run(&["--monitor", "--verify"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    w
}

/// `--status` and `--check-alerts` ask the store for each figure of every location at
/// once: on a shared store each statement is a round trip, so a host with eight
/// locations sends what a host with two does.
#[test]
fn status_and_alert_runs_send_as_many_statements_for_eight_locations_as_for_two() {
    let counts: Vec<Vec<u64>> = [2, 8]
        .iter()
        .map(|&n| {
            let w = checked_host(n);
            ["--status", "--check-alerts"]
                .iter()
                .map(|op| {
                    let run = w.run(&[op, "-vv"]);
                    assert!(run.code < 3, "{op}: {}", run.stderr);
                    statements_sent(&run)
                })
                .collect()
        })
        .collect();
    assert_eq!(
        counts[0], counts[1],
        "--status and --check-alerts with 2 and with 8 locations"
    );
}

/// `--check-alerts` opens, tells, closes and finishes its alerts many at a time: with a
/// problem on every location, a host with eight locations sends the store as many
/// statements as a host with two, when the alerts open and when they resolve (on a
/// shared store each statement is a round trip, and a fleet's alerts are thousands).
#[test]
fn alert_runs_send_as_many_statements_for_eight_problems_as_for_two() {
    let counts: Vec<[u64; 2]> = [2, 8]
        .iter()
        .map(|&n| {
            let w = workspace();
            let mut config = String::from(
                "timezone: UTC\nlogging: { file: null }\nalerts:\n  log: { enabled: true }\nbackups:\n  locations:\n",
            );
            for i in 0..n {
                config.push_str(&format!(
                    "    - name: db{i}\n      path: db{i}\n      type: database\n      schedule: daily\n      min_free_space: 0\n"
                ));
                daily_dumps(&w, &format!("db{i}"), &[3, 4, 5], 64);
            }
            w.write_config(&config);
            let alerts = |w: &Workspace, counter: &str| {
                let run = w.run(&["--check-alerts", "-vv", "--format", "json"]);
                assert!(run.code < 3, "{}", run.stderr);
                let doc: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
                assert_eq!(doc["alerts"][counter], n, "{:#}", doc["alerts"]);
                statements_sent(&run)
            };
            let run = w.run(&["--monitor"]);
            assert_eq!(run.code, 2, "{}", run.stderr);
            let opened = alerts(&w, "sent");
            for i in 0..n {
                daily_dumps(&w, &format!("db{i}"), &[0, 1, 2], 64);
            }
            let run = w.run(&["--monitor"]);
            assert_eq!(run.code, 0, "{}", run.stderr);
            let resolved = alerts(&w, "resolved");
            let open: i64 = w.store_value("SELECT COUNT(*) FROM alerts WHERE finished_at IS NULL");
            assert_eq!(open, 0, "every resolved alert is finished");
            [opened, resolved]
        })
        .collect();
    assert_eq!(
        counts[0], counts[1],
        "--check-alerts (alerts opening, then resolving) with 2 and with 8 problems"
    );
}

/// `--report` reads each figure of every location at once, and judges health and
/// staleness with one read of the open problems each: a host with eight locations asks
/// the store as often as a host with two (on SQLite its single-row writes grow with the
/// locations; its reads do not).
#[test]
fn a_report_run_reads_as_often_for_eight_locations_as_for_two() {
    let reads: Vec<usize> = [2, 8]
        .iter()
        .map(|&n| {
            let w = checked_host(n);
            let run = w.run(&["--report", "-vvv"]);
            assert!(run.code < 3, "{}", run.stderr);
            assert!(w.path("metrics/bm.prom").exists());
            run.stderr
                .lines()
                .filter(|l| l.contains("TRACE store: ") && l.contains(" ms: SELECT "))
                .count()
        })
        .collect();
    assert_eq!(
        reads[0], reads[1],
        "--report's reads with 2 and with 8 locations"
    );
}
