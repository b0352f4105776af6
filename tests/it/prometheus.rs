//! The Prometheus textfile as node_exporter reads it, written by the real binary: the
//! per-location status, open problems by severity, expected interval, last verified and
//! last good restore; failure gauges that count backups; the file rewritten by every run
//! (not only `--report`) and covering every location; the whole file pinned as a
//! snapshot; and the shipped alert rules and Grafana dashboard naming only metrics the
//! file exports.

use crate::common::{Workspace, set_mtime, ts};
use chrono::{DateTime, Duration, Utc};
use std::collections::{BTreeMap, BTreeSet};
use std::io::Write as _;

const NOW: &str = "2026-11-21T12:00:00Z";
const TEXTFILE: &str = "metrics/backup_monitor.prom";

/// `weekly` (Sundays 02:00; its newest backup is 6.4 days old, which is normal) and
/// `hourly` (the 11:00 backup never came; its two newest are restore-tested). Free space
/// is the test machine's: the reserve is tiny so that it never adds a problem.
const CONFIG: &str = r#"
timezone: UTC
logging: { file: null }
backups:
  locations:
    - name: weekly
      path: weekly
      type: files
      schedule: weekly
      at: "sun 02:00"
      min_free_space: 1KiB
    - name: hourly
      path: hourly
      type: files
      schedule: hourly
      min_free_space: 1KiB
      restore:
        latest: 2
        scratch_dir: scratch
reporting:
  prometheus_textfile: metrics/backup_monitor.prom
"#;

/// A small real .tar.gz holding one file.
fn tar_gz(content: &[u8]) -> Vec<u8> {
    let mut tar = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_gnu();
    header.set_size(content.len() as u64);
    header.set_mode(0o644);
    header.set_mtime(0);
    header.set_cksum();
    tar.append_data(&mut header, "data.txt", content).unwrap();
    let raw = tar.into_inner().unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&raw).unwrap();
    gz.finish().unwrap()
}

fn backup(w: &Workspace, dir: &str, at: DateTime<Utc>, content: &[u8]) -> String {
    let rel = format!("{dir}/{dir}_{}.tar.gz", at.format("%Y%m%d_%H%M%S"));
    w.write_file(&rel, &tar_gz(content), at + Duration::minutes(5));
    rel
}

/// The scenario's files, nothing run yet.
fn scenario() -> Workspace {
    let mut w = Workspace::new();
    w.now = Some(ts(NOW));
    w.write_config(CONFIG);
    std::fs::create_dir_all(w.path("scratch")).unwrap();
    for weeks in 0..4 {
        let at = ts("2026-11-15T02:00:00Z") - Duration::weeks(weeks);
        backup(&w, "weekly", at, format!("week {weeks}").as_bytes());
    }
    for hours in 0..30 {
        if hours == 0 {
            continue;
        }
        let at = ts("2026-11-21T11:00:00Z") - Duration::hours(hours);
        backup(&w, "hourly", at, format!("hour {hours}").as_bytes());
    }
    w
}

fn at(w: &mut Workspace, hours_after_now: i64) {
    w.now = Some(ts(NOW) + Duration::hours(hours_after_now));
}

fn textfile(w: &Workspace) -> String {
    std::fs::read_to_string(w.path(TEXTFILE)).unwrap_or_else(|e| panic!("{TEXTFILE}: {e}"))
}

/// Samples by `name{labels}`; every metric must have HELP and TYPE gauge lines first.
fn samples(text: &str) -> BTreeMap<String, f64> {
    let mut typed = BTreeSet::new();
    let mut out = BTreeMap::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap();
            assert_eq!(kind, "gauge", "{line}");
            typed.insert(name.to_string());
            continue;
        }
        if line.starts_with("# HELP ") {
            continue;
        }
        let (series, value) = line.rsplit_once(' ').unwrap_or_else(|| panic!("{line}"));
        let name = series.split('{').next().unwrap();
        assert!(typed.contains(name), "TYPE before {line}");
        let v: f64 = value.parse().unwrap_or_else(|_| panic!("{line}"));
        assert!(out.insert(series.to_string(), v).is_none(), "twice: {line}");
    }
    out
}

fn get(m: &BTreeMap<String, f64>, series: &str) -> f64 {
    *m.get(series)
        .unwrap_or_else(|| panic!("no {series} in {:#?}", m.keys()))
}

/// The metric names the file declares (its TYPE lines).
fn exported(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .map(|l| l.split(' ').next().unwrap().to_string())
        .collect()
}

#[test]
fn status_open_problems_and_expected_interval_per_location() {
    let w = scenario();
    let run = w.run(&["--monitor"]);
    assert_eq!(run.code, 2, "{}{}", run.stdout, run.stderr);
    let m = samples(&textfile(&w));
    assert_eq!(
        get(&m, r#"backup_monitor_location_status{location="weekly"}"#),
        0.0
    );
    assert_eq!(
        get(&m, r#"backup_monitor_location_status{location="hourly"}"#),
        2.0
    );
    assert_eq!(
        get(
            &m,
            r#"backup_monitor_open_problems{location="hourly",severity="critical"}"#
        ),
        1.0
    );
    assert_eq!(
        get(
            &m,
            r#"backup_monitor_open_problems{location="hourly",severity="warning"}"#
        ),
        0.0
    );
    assert_eq!(
        get(
            &m,
            r#"backup_monitor_open_problems{location="weekly",severity="critical"}"#
        ),
        0.0
    );
    assert_eq!(
        get(
            &m,
            r#"backup_monitor_expected_interval_seconds{location="weekly"}"#
        ),
        604_800.0
    );
    assert_eq!(
        get(
            &m,
            r#"backup_monitor_expected_interval_seconds{location="hourly"}"#
        ),
        3600.0
    );
    // The weekly backup's age is normal for its schedule: under 1.5 intervals.
    let age = ts(NOW).timestamp() as f64
        - get(
            &m,
            r#"backup_monitor_last_backup_timestamp_seconds{location="weekly"}"#,
        );
    assert!(age > 6.0 * 86_400.0 && age < 1.5 * 604_800.0, "{age}");
    // Nothing was verified or restore-tested yet: no sample rather than a zero time.
    assert!(
        !m.keys()
            .any(|k| k.starts_with("backup_monitor_last_verified_"))
    );
    assert!(
        !m.keys()
            .any(|k| k.starts_with("backup_monitor_last_restore_success_"))
    );
}

#[test]
fn last_verified_and_last_restore_success_are_the_times_of_passing_checks() {
    let mut w = scenario();
    assert_eq!(w.run(&["--verify"]).code, 0, "first sight records only");
    let m = samples(&textfile(&w));
    assert!(
        !m.keys()
            .any(|k| k.starts_with("backup_monitor_last_verified_")),
        "a first sight compares nothing: {m:#?}"
    );
    at(&mut w, 1);
    assert_eq!(w.run(&["--verify"]).code, 0);
    at(&mut w, 2);
    let run = w.run(&["--test-restore"]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    let m = samples(&textfile(&w));
    let verified = (ts(NOW) + Duration::hours(1)).timestamp() as f64;
    let restored = (ts(NOW) + Duration::hours(2)).timestamp() as f64;
    for loc in ["weekly", "hourly"] {
        assert_eq!(
            get(
                &m,
                &format!("backup_monitor_last_verified_timestamp_seconds{{location=\"{loc}\"}}")
            ),
            verified
        );
    }
    assert_eq!(
        get(
            &m,
            r#"backup_monitor_last_restore_success_timestamp_seconds{location="hourly"}"#
        ),
        restored
    );
    assert_eq!(
        get(
            &m,
            r#"backup_monitor_restore_test_failures{location="hourly"}"#
        ),
        0.0
    );
}

/// Overwrite one byte in place and put size and mtime back: silent corruption.
fn flip_byte(w: &Workspace, rel: &str) {
    let p = w.path(rel);
    let mtime = DateTime::<Utc>::from(std::fs::metadata(&p).unwrap().modified().unwrap());
    let mut data = std::fs::read(&p).unwrap();
    let at = data.len() / 2;
    data[at] ^= 0xff;
    std::fs::write(&p, &data).unwrap();
    set_mtime(&p, mtime);
}

#[test]
fn failure_gauges_count_backups_not_check_results() {
    let mut w = scenario();
    assert_eq!(w.run(&["--verify"]).code, 0);
    flip_byte(&w, "weekly/weekly_20261108_020000.tar.gz");
    // The newest-but-one hourly backup is cut short: every restore test of it fails.
    let cut = w.path("hourly/hourly_20261121_100000.tar.gz");
    let bytes = std::fs::read(&cut).unwrap();
    let mtime = DateTime::<Utc>::from(std::fs::metadata(&cut).unwrap().modified().unwrap());
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    set_mtime(&cut, mtime);
    for hours in 1..=3 {
        at(&mut w, hours);
        let run = w.run(&["--verify", "--test-restore"]);
        assert_eq!(run.code, 2, "{}{}", run.stdout, run.stderr);
    }
    let failed_checks: i64 =
        w.store_value("SELECT COUNT(*) FROM verifications WHERE result = 'failed'");
    let failed_restores: i64 =
        w.store_value("SELECT COUNT(*) FROM restore_tests WHERE result = 'failed'");
    assert!(
        failed_checks >= 3 && failed_restores >= 3,
        "{failed_checks} {failed_restores}"
    );
    let m = samples(&textfile(&w));
    assert_eq!(
        get(
            &m,
            r#"backup_monitor_verification_failures{location="weekly"}"#
        ),
        1.0
    );
    assert_eq!(
        get(
            &m,
            r#"backup_monitor_restore_test_failures{location="hourly"}"#
        ),
        1.0
    );
    assert_eq!(
        get(&m, r#"backup_monitor_location_status{location="weekly"}"#),
        2.0
    );
    // The other hourly backup still passes: the last good restore is this run's.
    assert_eq!(
        get(
            &m,
            r#"backup_monitor_last_restore_success_timestamp_seconds{location="hourly"}"#
        ),
        (ts(NOW) + Duration::hours(3)).timestamp() as f64
    );
}

#[test]
fn every_run_rewrites_the_textfile_for_every_location() {
    let mut w = scenario();
    let (run, doc) = w.run_json(&["--monitor"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(!w.path("reports").exists(), "no --report ran");
    let listed = doc["reports"].as_array().unwrap();
    assert!(
        listed
            .iter()
            .any(|r| r.as_str().unwrap().ends_with(TEXTFILE)),
        "{listed:?}"
    );
    let m = samples(&textfile(&w));
    assert_eq!(
        get(&m, "backup_monitor_last_run_timestamp_seconds"),
        ts(NOW).timestamp() as f64
    );

    // An hour later, a monitor run about one location: the file is rewritten and still
    // describes the other one, with the problems it has in the store.
    at(&mut w, 1);
    let run = w.run(&["--monitor", "--location-name", "weekly"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let m = samples(&textfile(&w));
    assert_eq!(
        get(&m, "backup_monitor_last_run_timestamp_seconds"),
        (ts(NOW) + Duration::hours(1)).timestamp() as f64
    );
    assert_eq!(
        get(&m, r#"backup_monitor_location_status{location="hourly"}"#),
        2.0
    );
    assert_eq!(
        get(&m, r#"backup_monitor_backups_present{location="hourly"}"#),
        29.0
    );

    // Problems found by --verify stay in the file through a later --monitor-only run.
    at(&mut w, 2);
    assert_eq!(w.run(&["--verify"]).code, 0, "first sight");
    at(&mut w, 3);
    flip_byte(&w, "weekly/weekly_20261115_020000.tar.gz");
    assert_eq!(w.run(&["--verify"]).code, 2);
    at(&mut w, 4);
    w.run(&["--monitor"]);
    let m = samples(&textfile(&w));
    assert_eq!(
        get(&m, r#"backup_monitor_location_status{location="weekly"}"#),
        2.0
    );
    assert_eq!(
        get(
            &m,
            r#"backup_monitor_open_problems{location="weekly",severity="critical"}"#
        ),
        1.0
    );
    let leftovers: Vec<_> = std::fs::read_dir(w.path("metrics"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(leftovers.len(), 1, "no temp files: {leftovers:?}");
}

/// A `--report` run writes the textfile from what its report read (the store's backups
/// are read once, not again for the textfile), and the file is the one a run without a
/// report writes at the same time.
#[test]
fn a_report_run_writes_the_textfile_a_run_without_one_does_reading_the_store_once() {
    let mut w = scenario();
    assert_eq!(w.run(&["--monitor", "--verify"]).code, 2);
    at(&mut w, 1);
    assert_eq!(w.run(&["--monitor", "--verify", "--test-restore"]).code, 2);
    let report = w.run(&["--report", "-vvv"]);
    assert!(report.code < 3, "{}", report.stderr);
    let backups_read = report
        .stderr
        .lines()
        .filter(|l| l.contains("TRACE store") && l.contains("SELECT b.location_id, b.path, b.ts"))
        .count();
    assert_eq!(backups_read, 1, "{}", report.stderr);
    let with_report = textfile(&w);
    std::fs::remove_file(w.path(TEXTFILE)).unwrap();
    let alerts = w.run(&["--check-alerts"]);
    assert!(alerts.code < 3, "{}", alerts.stderr);
    assert_eq!(textfile(&w), with_report);
    assert!(
        samples(&with_report).contains_key(r#"backup_monitor_backups_present{location="hourly"}"#),
        "{with_report}"
    );
}

#[test]
fn whole_textfile_snapshot() {
    let mut w = scenario();
    assert_eq!(w.run(&["--monitor", "--verify"]).code, 2);
    at(&mut w, 1);
    assert_eq!(w.run(&["--monitor", "--verify", "--test-restore"]).code, 2);
    // Free space is the real filesystem's: not part of the pinned text.
    let text: String = textfile(&w)
        .lines()
        .map(|l| match l.split_once("} ") {
            Some((series, _))
                if series.starts_with("backup_monitor_disk_free_bytes")
                    || series.starts_with("backup_monitor_backups_until_full") =>
            {
                format!("{series}}} [depends on the disk]\n")
            }
            _ => format!("{l}\n"),
        })
        .collect();
    insta::assert_snapshot!(text);
}

/// Every `backup_monitor_*` name in an expression.
fn metric_names_in(expr: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut rest = expr;
    while let Some(i) = rest.find("backup_monitor_") {
        let tail = &rest[i..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(tail.len());
        names.insert(tail[..end].to_string());
        rest = &tail[end..];
    }
    names
}

/// What the binary exports, from a real textfile.
fn exported_names() -> BTreeSet<String> {
    let w = scenario();
    w.run(&["--monitor"]);
    exported(&textfile(&w))
}

fn repo_file(rel: &str) -> String {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(rel);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn yaml(rel: &str) -> serde_json::Value {
    serde_saphyr::from_str(&repo_file(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

/// Every panel, rows' nested panels included.
fn panels(v: &serde_json::Value) -> Vec<&serde_json::Value> {
    let mut out = Vec::new();
    for p in v["panels"].as_array().into_iter().flatten() {
        out.push(p);
        out.extend(panels(p));
    }
    out
}

#[test]
fn dashboard_and_rules_name_only_exported_metrics() {
    let exported = exported_names();
    assert!(
        exported.contains("backup_monitor_location_status"),
        "{exported:?}"
    );

    let dashboard: serde_json::Value =
        serde_json::from_str(&repo_file("contrib/grafana/backup-monitor.json"))
            .expect("the dashboard is valid JSON");
    assert!(dashboard["title"].is_string() && dashboard["uid"].is_string());
    let mut used = BTreeSet::new();
    let all = panels(&dashboard);
    assert!(all.len() >= 6, "{} panels", all.len());
    let mut ids = BTreeSet::new();
    for p in &all {
        if p["type"] == "row" {
            continue;
        }
        assert!(
            ids.insert(p["id"].as_i64().expect("panel id")),
            "ids are unique"
        );
        let targets = p["targets"].as_array().unwrap_or_else(|| panic!("{p}"));
        assert!(!targets.is_empty(), "{}", p["title"]);
        for t in targets {
            let expr = t["expr"].as_str().unwrap_or_else(|| panic!("{t}"));
            let names = metric_names_in(expr);
            assert!(!names.is_empty(), "{expr}");
            used.extend(names);
        }
    }
    for var in dashboard["templating"]["list"]
        .as_array()
        .into_iter()
        .flatten()
    {
        if let Some(q) = var["query"]["query"].as_str().or(var["query"].as_str()) {
            used.extend(metric_names_in(q));
        }
    }
    let unknown: Vec<_> = used.difference(&exported).collect();
    assert!(unknown.is_empty(), "the dashboard queries {unknown:?}");

    let provisioning = yaml("contrib/grafana/provisioning/dashboards/backup-monitor.yaml");
    assert_eq!(provisioning["apiVersion"], 1);
    let provider = &provisioning["providers"][0];
    assert_eq!(provider["type"], "file");
    assert!(provider["options"]["path"].is_string(), "{provisioning}");

    let rules = yaml("contrib/prometheus/backup-monitor.rules.yml");
    let mut alerts = BTreeSet::new();
    for group in rules["groups"].as_array().unwrap() {
        for rule in group["rules"].as_array().unwrap() {
            let expr = rule["expr"].as_str().unwrap();
            let unknown: Vec<_> = metric_names_in(expr)
                .into_iter()
                .filter(|n| !exported.contains(n))
                .collect();
            assert!(unknown.is_empty(), "{expr} names {unknown:?}");
            alerts.extend(rule["alert"].as_str().map(String::from));
        }
    }
    for wanted in [
        "BackupOverdue",
        "BackupLocationCritical",
        "BackupMonitorNotRunning",
        "BackupMonitorMetricsAbsent",
        "BackupVerificationFailing",
        "BackupRestoreTestFailing",
    ] {
        assert!(alerts.contains(wanted), "{wanted} in {alerts:?}");
    }
}

#[test]
fn a_textfile_that_cannot_be_written_fails_the_run_naming_it() {
    let w = scenario();
    w.write_config(&CONFIG.replace(TEXTFILE, "blocker/backup_monitor.prom"));
    std::fs::write(w.path("blocker"), b"a file where the directory should be").unwrap();
    let run = w.run(&["--monitor"]);
    assert_eq!(run.code, 3, "{}{}", run.stdout, run.stderr);
    let said = format!("{}{}", run.stdout, run.stderr);
    assert!(
        said.contains("cannot write the Prometheus textfile") && said.contains("blocker"),
        "{said}"
    );
}
