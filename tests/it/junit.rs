//! `--format junit` against the JUnit schema that CI systems read (tests/data/junit.xsd),
//! checked with `xmllint` (Debian: libxml2-utils), which .ci/run installs.
//!
//! Most documents are built here rather than by a run, so that every kind of case
//! (passed, failed, skipped, a run that could not judge) and hostile text are covered;
//! one comes from the binary itself.

use backup_monitor::outcome::{LocationSummary, Outcome as RunDocument};
use backup_monitor::output::junit;
use backup_monitor::problem::{Kind, Operation, Problem, Severity, Status};
use backup_monitor::restore::TestResult as RestoreResult;
use chrono::TimeZone;
use std::path::Path;
use std::process::Command;

fn schema() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/junit.xsd"))
}

/// `xmllint --schema`'s verdict and its messages.
fn validate(xml: &str) -> (bool, String) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("junit.xml");
    std::fs::write(&file, xml).unwrap();
    let out = Command::new("xmllint")
        .arg("--noout")
        .arg("--schema")
        .arg(schema())
        .arg(&file)
        .output()
        .unwrap_or_else(|e| panic!("xmllint is needed (apt-get install libxml2-utils): {e}"));
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn location(name: &str) -> LocationSummary {
    LocationSummary {
        host: "h".into(),
        id: 1,
        name: name.into(),
        kind: backup_monitor::config::LocationType::Files,
        status: Status::Critical,
        health_score: Some(0.5),
        backups_present: 2,
        new_backups: 0,
        latest_backup: None,
        latest_backup_age_seconds: None,
        missing_slots: Vec::new(),
        age_thresholds: None,
        last_checked: None,
    }
}

fn problem(kind: Kind, location: Option<&str>, path: Option<&str>, message: &str) -> Problem {
    let mut p = Problem::new(kind, Severity::Critical, location.unwrap_or(""), message);
    p.location = location.map(str::to_string);
    p.path = path.map(str::to_string);
    p
}

fn restore(location: &str, path: &str, result: &str, detail: Option<&str>) -> RestoreResult {
    RestoreResult {
        location: location.into(),
        path: path.into(),
        format: "tar.gz".into(),
        result: result.parse().unwrap(),
        files: 1,
        bytes: 1,
        detail: detail.map(str::to_string),
    }
}

/// Every case kind, with names and messages a hostile backup could produce.
fn full_run() -> RunDocument {
    let start = chrono::Utc.with_ymd_and_hms(2026, 11, 21, 2, 0, 0).unwrap();
    let ops = [
        "monitor",
        "verify",
        "test-restore",
        "report",
        "check-alerts",
    ];
    let mut doc = RunDocument::new(start, ops.iter().map(|s| s.parse().unwrap()).collect());
    doc.finished_at = start + chrono::Duration::seconds(1);
    let odd = "db <&> \"'\u{1b}[31m";
    doc.locations = vec![location(odd), location("site")];
    doc.problems = vec![
        problem(Kind::MissingBackup, Some(odd), None, "no backup for 02:00"),
        problem(
            Kind::ChecksumMismatch,
            Some(odd),
            Some("x]]>\u{0}.gz"),
            "checksum <changed> ]]> & \u{7}",
        ),
        problem(
            Kind::ArchiveCorrupt,
            Some("site"),
            Some("s.tar.gz"),
            "truncated",
        ),
        problem(
            Kind::HealthDegraded,
            Some("site"),
            None,
            "health 0.40 below 0.50",
        ),
        problem(Kind::AlertDeliveryFailed, None, None, "SMTP said no"),
    ]
    .into_iter()
    .map(|p| backup_monitor::outcome::OpenProblem::unstored(p, start))
    .collect();
    doc.restore_tests.results = vec![
        restore("site", "s.tar.gz", "failed", Some("line one\nline two")),
        restore("site", "t.tar.gz", "skipped", Some("too big")),
        restore("site", "u.tar.gz", "passed", None),
    ];
    doc
}

#[test]
fn a_full_run_is_valid_junit() {
    let xml = junit::render(&full_run());
    let (valid, messages) = validate(&xml);
    assert!(valid, "not valid JUnit: {messages}\n{xml}");
    assert!(xml.contains("<failure type=\"checksum_mismatch\""), "{xml}");
    assert!(xml.contains("<skipped message=\"too big\""), "{xml}");
    assert!(
        xml.contains("<testcase name=\"restore u.tar.gz\" classname=\"site\"/>"),
        "{xml}"
    );
}

#[test]
fn a_run_that_could_not_judge_is_valid_junit() {
    let start = chrono::Utc.with_ymd_and_hms(2026, 11, 21, 2, 0, 0).unwrap();
    let doc = RunDocument::unknown(
        start,
        vec![Operation::Monitor],
        "config.yaml: unknown key `x`",
        "web1",
    );
    let xml = junit::render(&doc);
    let (valid, messages) = validate(&xml);
    assert!(valid, "not valid JUnit: {messages}\n{xml}");
    assert!(xml.contains("failures=\"1\""), "{xml}");
}

#[test]
fn a_run_with_no_locations_is_valid_junit() {
    let start = chrono::Utc.with_ymd_and_hms(2026, 11, 21, 2, 0, 0).unwrap();
    let xml = junit::render(&RunDocument::new(start, vec![Operation::Monitor]));
    let (valid, messages) = validate(&xml);
    assert!(valid, "not valid JUnit: {messages}\n{xml}");
}

/// The schema is not a formality: a suite without its counts is refused.
#[test]
fn the_schema_refuses_what_ci_systems_refuse() {
    let xml = junit::render(&full_run()).replacen(" tests=\"2\"", "", 1);
    let (valid, _) = validate(&xml);
    assert!(!valid, "a testsuite without `tests` passed:\n{xml}");
}

/// The binary's own `--format junit`, for a run with a problem and a restore test.
#[test]
fn the_binary_prints_valid_junit() {
    let mut w = crate::common::Workspace::new();
    w.now = Some(crate::common::ts("2026-11-21T12:00:00Z"));
    w.write_config(
        "timezone: UTC\nlogging: { file: null }\nbackups:\n  locations:\n    - name: db\n      path: db\n      schedule: daily\n      min_free_space: 0%\n",
    );
    w.write_file(
        "db/db_20261119.sql",
        b"-- dump\n",
        crate::common::ts("2026-11-19T02:00:00Z"),
    );
    let run = w.run(&["--monitor", "--test-restore", "--format", "junit"]);
    assert_eq!(run.code, 2, "overdue since the 20th: {}", run.stderr);
    let (valid, messages) = validate(&run.stdout);
    assert!(valid, "not valid JUnit: {messages}\n{}", run.stdout);
    assert!(
        run.stdout.contains("<testsuite name=\"db\""),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("<failure type=\"missing_backup\""),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("restore db_20261119.sql"),
        "{}",
        run.stdout
    );
}
