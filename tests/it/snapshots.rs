//! The whole outputs people and tools read, pinned on a fixed clock and a fixed scenario:
//! the text summary, the Nagios/Icinga plugin output and the JSON document. A change to
//! any of them shows up as a snapshot diff to review (`cargo insta review`).

use crate::common::{Workspace, ts};
use chrono::Duration;

const NOW: &str = "2026-11-21T12:00:00Z";

/// Two locations: `db` (daily at 02:00, one night missed, one empty dump) and `www`
/// (hourly, all present in the last day).
fn scenario() -> Workspace {
    let mut w = Workspace::new();
    w.now = Some(ts(NOW));
    w.write_config(
        "timezone: Europe/Berlin\nlogging: { file: null }\nmonitoring:\n  health_warning: 0.9\nbackups:\n  locations:\n    - name: db\n      path: db\n      type: database\n      schedule: daily\n      at: \"02:00\"\n      min_count: 3\n      min_free_space: 0%\n    - name: www\n      path: www\n      type: website\n      schedule: hourly\n      min_size: 10\n      min_free_space: 0%\n",
    );
    for d in [0, 1, 3, 4, 5, 6, 7] {
        let t = ts("2026-11-21T01:00:00Z") - Duration::days(d);
        let name = format!("db/db_{}.sql.gz", t.format("%Y%m%d_%H%M%S"));
        let size = if d == 4 { 0 } else { 4096 };
        w.write_file(&name, &vec![b'x'; size], t + Duration::minutes(5));
    }
    for h in 0..30 {
        let t = ts("2026-11-21T11:00:00Z") - Duration::hours(h);
        let name = format!("www/www-{}.tar.gz", t.format("%Y%m%d-%H%M%S"));
        w.write_file(&name, &[b'w'; 64], t + Duration::minutes(1));
    }
    w
}

#[test]
fn text_summary() {
    let w = scenario();
    let run = w.run(&["--monitor"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    insta::assert_snapshot!(run.stdout);
}

#[test]
fn nagios_output() {
    let w = scenario();
    let run = w.run(&["--monitor", "--format", "nagios"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    insta::assert_snapshot!(run.stdout);
}

#[test]
fn json_document() {
    let w = scenario();
    let (run, doc) = w.run_json(&["--monitor"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    // The end of the run is the fixed clock plus the real time the run took.
    // The host is this machine's name (the scenario sets no `host:`).
    insta::assert_json_snapshot!(doc, {
        ".finished_at" => "[finished]",
        ".host" => "[host]",
        ".locations[].host" => "[host]",
        ".problems[].host" => "[host]",
    });
}
