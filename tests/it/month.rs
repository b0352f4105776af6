//! A month of nightly runs, as an on-call person lives it: one alert when something
//! breaks, one when it is fixed, nothing in between unless it gets worse, and an answer
//! for every "but I fixed it". The clock walks night by night (`BACKUP_MONITOR_NOW`);
//! alerts go to a webhook recorder on 127.0.0.1. docs/lifecycle.md tells the same story.
//!
//! Locations (Europe/Berlin): `db`, a nightly `pg_dump | gzip` at 02:00; `www`, hourly
//! site tarballs named to the minute (`www-20261102-0315.tar.gz`); `docs`, a nightly zip.

use crate::common::{Workspace, ts};
use crate::lifecycle::Recorder;
use chrono::{DateTime, Duration, Utc};
use serde_json::Value;

/// Midnight UTC of day 1 of the month.
const DAY1: &str = "2026-11-01T00:00:00Z";

fn day(n: i64) -> DateTime<Utc> {
    ts(DAY1) + Duration::days(n - 1)
}

struct Month {
    w: Workspace,
    hook: Recorder,
}

impl Month {
    fn new() -> Month {
        let hook = Recorder::start();
        let w = Workspace::new();
        w.write_config(&format!(
            "timezone: Europe/Berlin\nlogging: {{ file: null }}\nmonitoring:\n  max_run_age: 26h\nbackups:\n  locations:\n\
             \x20   - name: db\n      path: db\n      type: database\n      schedule: daily\n      at: \"02:00\"\n      verify_sample: 0.25\n      min_free_space: 0%\n\
             \x20   - name: www\n      path: www\n      type: website\n      schedule: hourly\n      at: \":15\"\n      min_free_space: 0%\n      verify_integrity: false\n\
             \x20   - name: docs\n      path: docs\n      schedule: daily\n      at: \"03:00\"\n      min_size: 1KiB\n      min_free_space: 0%\n\
             alerts:\n  cooldown: 24h\n  timeout: 2s\n  log: {{ enabled: false }}\n  webhook:\n    enabled: true\n    url: http://127.0.0.1:{}/hook\n",
            hook.port
        ));
        Month { w, hook }
    }

    /// The nightly dump of day `n` (01:00 UTC = 02:00 Berlin).
    fn dump(&self, n: i64) {
        let t = day(n) + Duration::hours(1);
        let body = format!(
            "--\n-- PostgreSQL database dump\n--\nCOPY t FROM stdin;\n{}\\.\n-- PostgreSQL database dump complete\n",
            "row\n".repeat(200 + n as usize)
        );
        self.w.write_file(
            &format!("db/db_{}_020000.sql.gz", t.format("%Y%m%d")),
            body.as_bytes(),
            t + Duration::minutes(5),
        );
    }

    /// The site tarballs of day `n` for the given UTC hours (:15 local, to the minute).
    fn site(&self, n: i64, hours: impl IntoIterator<Item = i64>) {
        for h in hours {
            let t = day(n) + Duration::hours(h) + Duration::minutes(15);
            let local = t.with_timezone(&chrono_tz::Europe::Berlin);
            self.w.write_file(
                &format!("www/www-{}.tar.gz", local.format("%Y%m%d-%H%M")),
                b"site",
                t + Duration::minutes(1),
            );
        }
    }

    /// The nightly zip of day `n` (02:00 UTC = 03:00 Berlin); `size` bytes.
    fn zip(&self, n: i64, size: usize) -> String {
        let t = day(n) + Duration::hours(2);
        let name = format!("docs_{}_0300.zip", t.format("%Y%m%d"));
        self.w.write_file(
            &format!("docs/{name}"),
            &vec![b'z'; size],
            t + Duration::minutes(5),
        );
        name
    }

    /// A normal day: the dump, 24 site tarballs, the zip.
    fn normal_day(&self, n: i64) {
        self.dump(n);
        self.site(n, 0..24);
        self.zip(n, 4096);
    }

    /// The run at 23:30 UTC of day `n`, after that day's jobs.
    fn night(&mut self, n: i64) -> (i32, Value) {
        self.w.now = Some(day(n) + Duration::minutes(23 * 60 + 30));
        let (run, doc) = self
            .w
            .run_json(&["--monitor", "--verify", "--check-alerts"]);
        assert_ne!(run.code, 3, "night {n}: {}", run.stderr);
        (run.code, doc)
    }

    /// What the person on call does after the run of day `n`.
    fn act(&mut self, n: i64, args: &[&str]) {
        self.w.now = Some(day(n) + Duration::minutes(23 * 60 + 45));
        let run = self.w.run(args);
        assert_eq!(
            run.code, 0,
            "day {n} {args:?}: {}{}",
            run.stdout, run.stderr
        );
    }

    fn alerts(&self) -> Vec<(String, String)> {
        self.hook.take()
    }
}

fn open_kinds(doc: &Value) -> Vec<(String, String)> {
    doc["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["location"].as_str().unwrap_or("-").to_string(),
                p["kind"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn ev(event: &str, kind: &str) -> (String, String) {
    (event.to_string(), kind.to_string())
}

#[test]
fn a_month_of_nights_reads_the_way_on_call_wants() {
    let mut m = Month::new();
    // Nights 1–2: all well; first sight of everything.
    for n in 1..=2 {
        m.normal_day(n);
        let (code, doc) = m.night(n);
        assert_eq!(code, 0, "night {n}: {doc:#}");
    }
    assert!(m.alerts().is_empty());

    // Day 3: the zip job is killed half way (truncated); night 3 records it.
    m.dump(3);
    m.site(3, 0..24);
    let zip3 = m.zip(3, 2048);
    assert_eq!(m.night(3).0, 0);
    // Day 4 morning: the job is re-run and writes a good copy over the bad one.
    m.w.write_file(
        &format!("docs/{zip3}"),
        &[b'Z'; 4096],
        day(4) + Duration::hours(8),
    );
    m.normal_day(4);
    let (code, doc) = m.night(4);
    assert_eq!(code, 2, "{doc:#}");
    assert!(open_kinds(&doc).contains(&("docs".into(), "modified_after_backup".into())));
    assert_eq!(m.alerts(), [ev("open", "modified_after_backup")]);
    // "But I fixed it": accept what is there now.
    let accepted = m.w.path(&format!("docs/{zip3}")).display().to_string();
    m.act(
        4,
        &["--accept", &accepted, "--reason", "re-ran the zip job"],
    );

    // Day 5: the nightly dump is missed. One alert, the night it happens.
    m.site(5, 0..24);
    m.zip(5, 4096);
    let (code, doc) = m.night(5);
    assert_eq!(code, 2, "{doc:#}");
    let alerts = m.alerts();
    assert!(alerts.contains(&ev("open", "missing_backup")), "{alerts:?}");
    assert!(
        alerts.contains(&ev("resolve", "modified_after_backup")),
        "the accepted zip is told once as resolved: {alerts:?}"
    );
    // Day 6: backups are back. Exit 0 at once, one resolved notice, the gap stays history.
    m.normal_day(6);
    let (code, doc) = m.night(6);
    assert_eq!(code, 0, "{doc:#}");
    assert_eq!(m.alerts(), [ev("resolve", "missing_backup")]);
    let db = &doc["locations"][0];
    assert_eq!(
        db["missing_slots"],
        serde_json::json!(["2026-11-05T02:00:00+01:00"])
    );
    assert!(db["health_score"].as_f64().unwrap() < 1.0);
    for n in 7..=8 {
        m.normal_day(n);
        assert_eq!(m.night(n).0, 0, "night {n}");
    }
    assert!(m.alerts().is_empty(), "nothing in between");

    // Day 9: a five-hour website outage between runs: found after the fact, told once
    // as resolved, never an exit code. Also a bad docs copy is deleted by hand.
    m.dump(9);
    m.site(9, (0..24).filter(|h| !(9..14).contains(h)));
    m.zip(9, 4096);
    let zip2 = format!("docs_{}_0300.zip", day(2).format("%Y%m%d"));
    std::fs::remove_file(m.w.path(&format!("docs/{zip2}"))).unwrap();
    let (code, doc) = m.night(9);
    assert_eq!(code, 2, "deleted_before_retention is critical: {doc:#}");
    let alerts = m.alerts();
    assert!(
        alerts.contains(&ev("resolve", "missing_backup")),
        "the outage: {alerts:?}"
    );
    assert!(
        alerts.contains(&ev("open", "deleted_before_retention")),
        "{alerts:?}"
    );
    assert!(!open_kinds(&doc).contains(&("www".into(), "missing_backup".into())));
    m.act(
        9,
        &[
            "--accept",
            &zip2,
            "--location-name",
            "docs",
            "--reason",
            "it was the truncated one",
        ],
    );

    // Day 10: a bit flips in the day-2 dump; nightly rotation finds it within a few nights.
    m.normal_day(10);
    let dump2 = m.w.path("db/db_20261102_020000.sql.gz");
    let original = std::fs::read(&dump2).unwrap();
    let mut flipped = original.clone();
    flipped[10] ^= 1;
    let mtime = std::fs::metadata(&dump2).unwrap().modified().unwrap();
    std::fs::write(&dump2, &flipped).unwrap();
    filetime::set_file_mtime(&dump2, filetime::FileTime::from_system_time(mtime)).unwrap();
    let mut found = None;
    for n in 10..=14 {
        if n > 10 {
            m.normal_day(n);
        }
        let (_, doc) = m.night(n);
        if open_kinds(&doc).contains(&("db".into(), "checksum_mismatch".into())) {
            found = Some(n);
            break;
        }
    }
    let found = found.expect("the rotation reaches the flipped dump within 4 nights");
    let alerts = m.alerts();
    assert!(
        alerts.contains(&ev("open", "checksum_mismatch")),
        "{alerts:?}"
    );
    assert!(
        alerts.contains(&ev("resolve", "deleted_before_retention")),
        "{alerts:?}"
    );
    // Repaired from the off-site copy: the next routine run closes it.
    std::fs::write(&dump2, &original).unwrap();
    filetime::set_file_mtime(&dump2, filetime::FileTime::from_system_time(mtime)).unwrap();
    let next = found + 1;
    m.normal_day(next);
    let (code, doc) = m.night(next);
    assert_eq!(code, 0, "night {next}: {doc:#}");
    assert_eq!(m.alerts(), [ev("resolve", "checksum_mismatch")]);
    for n in next + 1..=15 {
        m.normal_day(n);
        assert_eq!(m.night(n).0, 0, "night {n}");
    }

    // Night 16: a maintenance window; the dump is skipped on purpose.
    m.act(
        15,
        &[
            "--silence",
            "db",
            "--for",
            "30h",
            "--reason",
            "storage migration",
        ],
    );
    m.site(16, 0..24);
    m.zip(16, 4096);
    let (code, doc) = m.night(16);
    assert_eq!(code, 0, "silenced problems do not count: {doc:#}");
    assert!(m.alerts().is_empty(), "nothing is alerted while silenced");
    // Night 17: the silence expired and the dump is still missing: now it counts.
    m.site(17, 0..24);
    m.zip(17, 4096);
    let (code, _) = m.night(17);
    assert_eq!(code, 2);
    assert_eq!(m.alerts(), [ev("open", "missing_backup")]);
    m.normal_day(18);
    assert_eq!(m.night(18).0, 0);
    assert_eq!(m.alerts(), [ev("resolve", "missing_backup")]);

    // Day 19: the zip job starts writing tiny files; acknowledged, not repeated.
    m.dump(19);
    m.site(19, 0..24);
    m.zip(19, 100);
    let (code, doc) = m.night(19);
    assert_eq!(code, 1, "{doc:#}");
    // Both a size under min_size and a drop against the usual size: one digest, two alerts.
    assert_eq!(
        m.alerts(),
        [ev("open", "undersized_backup"), ev("open", "size_anomaly")]
    );
    let ids: Vec<String> = doc["problems"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["location"] == "docs")
        .map(|p| p["id"].as_i64().unwrap().to_string())
        .collect();
    assert_eq!(ids.len(), 2, "{doc:#}");
    for id in &ids {
        m.act(19, &["--ack", id, "--reason", "vendor fix due next week"]);
    }
    for n in 20..=24 {
        m.normal_day(n);
        let (code, _) = m.night(n);
        assert_eq!(code, 1, "acknowledged problems still count: night {n}");
    }
    let alerts = m.alerts();
    assert!(
        alerts.is_empty(),
        "no daily repeats once acknowledged: {alerts:?}"
    );

    // After night 24 the nightly job stops. The plugin check says so on day 26.
    m.w.now = Some(day(26) + Duration::hours(8));
    let nagios = m.w.run(&["--status", "--format", "nagios"]);
    assert_eq!(nagios.code, 2, "{}", nagios.stdout);
    assert!(nagios.stdout.contains("monitor_stale"), "{}", nagios.stdout);
}
