//! Backup timestamps through the binary: names to the minute, and timestamps recorded
//! under old settings derived again when `timestamp`, `filename_format` or the zone change.

use crate::common;

use chrono::{DateTime, Duration, Utc};
use common::{Workspace, ts};

const NOW: &str = "2026-12-02T12:00:00Z";

fn workspace() -> Workspace {
    let mut w = Workspace::new();
    w.now = Some(ts(NOW));
    w
}

/// One hourly location `www` with `extra` YAML lines, in `zone`.
fn config(w: &Workspace, zone: &str, extra: &str) {
    w.write_config(&format!(
        "timezone: {zone}\nlogging: {{ file: null }}\nbackups:\n  locations:\n    - name: www\n      path: www\n      schedule: hourly\n      patterns: [\"*.tar.gz\"]\n{extra}"
    ));
}

/// Hourly website tarballs named to the minute (`www-20261202-0315.tar.gz`, no seconds)
/// for the last 24 hours, each written two minutes after its time.
fn hourly_tarballs(w: &Workspace) -> Vec<DateTime<Utc>> {
    (1..=24)
        .map(|h| {
            let t = ts("2026-12-02T11:15:00Z") - Duration::hours(h - 1);
            let name = format!("www/www-{}.tar.gz", t.format("%Y%m%d-%H%M"));
            w.write_file(&name, b"site", t + Duration::minutes(2));
            t
        })
        .collect()
}

fn missing(doc: &serde_json::Value) -> usize {
    doc["problems"]
        .as_array()
        .expect("problems")
        .iter()
        .filter(|p| p["kind"] == "missing_backup")
        .count()
}

/// (ts, ts_source) the store holds for `path`.
fn stored(w: &Workspace, path: &str) -> (DateTime<Utc>, String) {
    let rows: Vec<(i64, String)> = w.store_rows(&format!(
        "SELECT ts, ts_source FROM backups WHERE path = {}",
        common::quote(path)
    ));
    let [(t, source)] = &rows[..] else {
        panic!("one backup row for {path}: {rows:?}");
    };
    (DateTime::from_timestamp(*t, 0).expect("ts"), source.clone())
}

#[test]
fn names_to_the_minute_satisfy_their_hourly_slots() {
    let w = workspace();
    config(&w, "UTC", "");
    hourly_tarballs(&w);
    let (run, doc) = w.run_json(&["--monitor"]);
    assert_eq!(run.code, 0, "{}", run.stdout);
    assert_eq!(missing(&doc), 0, "{doc:#}");
    assert_eq!(
        stored(&w, "www-20261202-0315.tar.gz"),
        (ts("2026-12-02T03:15:00Z"), "filename".to_string())
    );
}

#[test]
fn fixing_filename_format_clears_the_false_missing_slots_on_the_next_run() {
    let mut w = workspace();
    // A date-only format reads every tarball of a day as its midnight.
    config(&w, "UTC", "      filename_format: \"%Y%m%d\"\n");
    hourly_tarballs(&w);
    let (run, doc) = w.run_json(&["--monitor"]);
    assert_eq!(run.code, 2, "{}", run.stdout);
    assert!(missing(&doc) > 0, "{doc:#}");
    assert!(
        !doc["locations"][0]["missing_slots"]
            .as_array()
            .expect("missing_slots")
            .is_empty()
    );
    assert_eq!(
        stored(&w, "www-20261202-0315.tar.gz").0,
        ts("2026-12-02T00:00:00Z")
    );

    // The config is fixed; the store is not touched.
    config(&w, "UTC", "");
    w.now = Some(ts(NOW) + Duration::minutes(5));
    let (run, doc) = w.run_json(&["--monitor"]);
    assert_eq!(run.code, 0, "{}", run.stdout);
    assert_eq!(missing(&doc), 0, "{doc:#}");
    assert_eq!(
        doc["locations"][0]["missing_slots"],
        serde_json::json!([]),
        "{doc:#}"
    );
    assert_eq!(
        stored(&w, "www-20261202-0315.tar.gz").0,
        ts("2026-12-02T03:15:00Z")
    );
    let (_, status) = w.run_json(&["--status"]);
    let open = status["problems"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["kind"] == "missing_backup")
        .count();
    assert_eq!(open, 0, "the old verdicts were judged again and resolved");
}

#[test]
fn a_new_zone_or_timestamp_mode_derives_recorded_timestamps_again() {
    let mut w = workspace();
    config(&w, "UTC", "");
    hourly_tarballs(&w);
    // A backup that is gone by now still keeps its place in the history.
    w.write_file(
        "www/www-20261130-0915.tar.gz",
        b"old",
        ts("2026-11-30T09:17:00Z"),
    );
    let (run, _) = w.run_json(&["--monitor"]);
    assert_ne!(run.code, 3, "{}", run.stderr);
    std::fs::remove_file(w.path("www/www-20261130-0915.tar.gz")).expect("remove");
    w.now = Some(ts(NOW) + Duration::minutes(5));
    w.run_json(&["--monitor"]);

    // Berlin is UTC+1 in December: the wall-clock times in the names move an hour back.
    config(&w, "Europe/Berlin", "");
    w.now = Some(ts(NOW) + Duration::minutes(10));
    w.run_json(&["--monitor"]);
    assert_eq!(
        stored(&w, "www-20261202-0315.tar.gz").0,
        ts("2026-12-02T02:15:00Z")
    );
    assert_eq!(
        stored(&w, "www-20261130-0915.tar.gz").0,
        ts("2026-11-30T08:15:00Z"),
        "deleted backups are history and are derived again too"
    );

    // `timestamp: mtime` takes the recorded mtime.
    config(&w, "Europe/Berlin", "      timestamp: mtime\n");
    w.now = Some(ts(NOW) + Duration::minutes(15));
    w.run_json(&["--monitor"]);
    assert_eq!(
        stored(&w, "www-20261202-0315.tar.gz"),
        (ts("2026-12-02T03:17:00Z"), "mtime".to_string())
    );
}
