//! JUnit XML for CI systems (`--format junit`): a run as test results, so a pipeline
//! (Jenkins, GitLab) shows each location as a test suite and each check as a test case.
//!
//! One `<testsuite>` per location, and in it one `<testcase>` per check the run document
//! holds:
//! - `schedule`: the location's scan (missing slots, no backups, sizes, retention, disk
//!   space); fails with every such problem;
//! - `verify <path>`: one per file whose verification found a problem; when none did,
//!   one passing `verification` case (the document counts passing files but does not name
//!   them);
//! - `restore <path>`: one per restore test, passed, failed (with the reason and the
//!   location's problems about that file) or skipped (with the reason);
//! - `health` and `alerts`: problems of the report and alert steps about the location.
//!
//! Problems about no location (alert delivery) and a run that could not judge at all go
//! into a suite named `backup-monitor`. Warnings fail a case as criticals do: JUnit has no
//! warning state, and the severity leads the failure text.
//!
//! Not for: judging anything. This renders what the document holds, nothing more.

use crate::outcome::Outcome as RunDocument;
use crate::problem::{Kind, Operation, Problem};
use crate::restore::{TestResult as RestoreResult, Verdict};
use quick_xml::Writer;
use quick_xml::events::{BytesDecl, BytesText, Event};
use std::borrow::Cow;
use std::io;

/// Name of the suite for what belongs to no location.
const RUN_SUITE: &str = "backup-monitor";

/// The JUnit document for a run: UTF-8 XML with a `<testsuites>` root.
pub fn render(doc: &RunDocument) -> String {
    let suites = suites(doc);
    let mut writer = Writer::new_with_indent(Vec::new(), b' ', 2);
    // Writing into memory cannot fail; a failure would only truncate the document.
    let _ = write_document(&mut writer, doc, &suites);
    let mut xml = String::from_utf8_lossy(&writer.into_inner()).into_owned();
    xml.push('\n');
    xml
}

#[derive(Debug, PartialEq)]
enum Outcome {
    Passed,
    Failed {
        kind: String,
        message: String,
        text: String,
    },
    Skipped {
        message: String,
    },
}

#[derive(Debug, PartialEq)]
struct Case {
    name: String,
    outcome: Outcome,
}

#[derive(Debug, PartialEq)]
struct Suite {
    name: String,
    cases: Vec<Case>,
}

impl Suite {
    fn count(&self, pick: fn(&Outcome) -> bool) -> usize {
        self.cases.iter().filter(|c| pick(&c.outcome)).count()
    }
    fn failures(&self) -> usize {
        self.count(|o| matches!(o, Outcome::Failed { .. }))
    }
    fn skipped(&self) -> usize {
        self.count(|o| matches!(o, Outcome::Skipped { .. }))
    }
}

fn suites(doc: &RunDocument) -> Vec<Suite> {
    let ran = |op: Operation| doc.ran(op);
    let mut suites: Vec<Suite> = doc
        .locations
        .iter()
        .map(|l| location_suite(doc, &l.name, ran))
        .collect();
    let known = |name: &str| doc.locations.iter().any(|l| l.name == name);
    let orphans: Vec<&Problem> = doc
        .problems
        .iter()
        .map(|p| &p.problem)
        .filter(|p| p.location.as_deref().is_none_or(|l| !known(l)))
        .collect();
    let mut run_cases = Vec::new();
    if let Some(error) = &doc.error {
        run_cases.push(Case {
            name: "run".into(),
            outcome: Outcome::Failed {
                kind: "unknown".into(),
                message: error.clone(),
                text: error.clone(),
            },
        });
    }
    if !orphans.is_empty() {
        run_cases.push(problems_case("alerts", &orphans));
    }
    if !run_cases.is_empty() {
        suites.push(Suite {
            name: RUN_SUITE.into(),
            cases: run_cases,
        });
    }
    suites
}

fn location_suite(doc: &RunDocument, location: &str, ran: impl Fn(Operation) -> bool) -> Suite {
    let mine: Vec<&Problem> = doc
        .problems
        .iter()
        .map(|p| &p.problem)
        .filter(|p| p.location.as_deref() == Some(location))
        .collect();
    let of = |op: Operation| -> Vec<&Problem> {
        mine.iter()
            .copied()
            .filter(|p| p.kind.operation() == op)
            .collect()
    };
    let mut cases = Vec::new();

    let scan = of(Operation::Monitor);
    if ran(Operation::Monitor) || !scan.is_empty() {
        cases.push(problems_case("schedule", &scan));
    }

    let verify = of(Operation::Verify);
    if verify.is_empty() {
        if ran(Operation::Verify) {
            cases.push(problems_case("verification", &[]));
        }
    } else {
        for (path, problems) in by_path(&verify) {
            cases.push(problems_case(&format!("verify {path}"), &problems));
        }
    }

    let restore = of(Operation::TestRestore);
    let results: Vec<&RestoreResult> = doc
        .restore_tests
        .results
        .iter()
        .filter(|r| r.location == location)
        .collect();
    for result in &results {
        let about: Vec<&Problem> = restore
            .iter()
            .copied()
            .filter(|p| p.path.as_deref() == Some(result.path.as_str()))
            .collect();
        cases.push(restore_case(result, &about));
    }
    let unmatched: Vec<&Problem> = restore
        .iter()
        .copied()
        .filter(|p| !results.iter().any(|r| p.path.as_deref() == Some(&r.path)))
        .collect();
    for (path, problems) in by_path(&unmatched) {
        cases.push(problems_case(&format!("restore {path}"), &problems));
    }

    for (name, op) in [
        ("health", Operation::Report),
        ("alerts", Operation::CheckAlerts),
    ] {
        let problems = of(op);
        if !problems.is_empty() {
            cases.push(problems_case(name, &problems));
        }
    }
    Suite {
        name: location.to_string(),
        cases,
    }
}

/// Problems grouped by file, in the order the document lists them; those without a path
/// are grouped under `(location)`.
fn by_path<'a>(problems: &[&'a Problem]) -> Vec<(String, Vec<&'a Problem>)> {
    let mut groups: Vec<(String, Vec<&Problem>)> = Vec::new();
    for p in problems {
        let path = p.path.clone().unwrap_or_else(|| "(location)".into());
        match groups.iter_mut().find(|(g, _)| *g == path) {
            Some((_, list)) => list.push(p),
            None => groups.push((path, vec![p])),
        }
    }
    groups
}

/// A case that passes when `problems` is empty and otherwise fails with all of them.
fn problems_case(name: &str, problems: &[&Problem]) -> Case {
    let outcome = match problems.first() {
        None => Outcome::Passed,
        Some(first) => Outcome::Failed {
            kind: first.kind.as_str().into(),
            message: first.message.clone(),
            text: problem_lines(problems),
        },
    };
    Case {
        name: name.into(),
        outcome,
    }
}

fn problem_lines(problems: &[&Problem]) -> String {
    problems
        .iter()
        .map(|p| format!("{} {}: {}", p.severity.as_str(), p.kind, p.message))
        .collect::<Vec<_>>()
        .join("\n")
}

fn restore_case(result: &RestoreResult, problems: &[&Problem]) -> Case {
    let detail = result.detail.clone().unwrap_or_default();
    let outcome = match result.result {
        Verdict::Passed if problems.is_empty() => Outcome::Passed,
        Verdict::Skipped => Outcome::Skipped { message: detail },
        _ => {
            // The restore's own reason first; else the first problem about the file.
            let message = Some(detail.clone())
                .filter(|d| !d.is_empty())
                .or_else(|| problems.first().map(|p| p.message.clone()))
                .unwrap_or_else(|| "the restore test failed".into());
            let mut text = detail.clone();
            if !problems.is_empty() {
                if !text.is_empty() {
                    text.push('\n');
                }
                text.push_str(&problem_lines(problems));
            }
            Outcome::Failed {
                kind: problems
                    .first()
                    .map_or(Kind::RestoreFailed, |p| p.kind)
                    .as_str()
                    .into(),
                message,
                text,
            }
        }
    };
    Case {
        name: format!("restore {}", result.path),
        outcome,
    }
}

fn write_document(w: &mut Writer<Vec<u8>>, doc: &RunDocument, suites: &[Suite]) -> io::Result<()> {
    w.write_event(Event::Decl(BytesDecl::new("1.0", Some("UTF-8"), None)))?;
    let tests: usize = suites.iter().map(|s| s.cases.len()).sum();
    let failures: usize = suites.iter().map(Suite::failures).sum();
    let mut root = w
        .create_element("testsuites")
        .with_attribute(("name", RUN_SUITE))
        .with_attribute(("tests", tests.to_string().as_str()))
        .with_attribute(("failures", failures.to_string().as_str()))
        .with_attribute(("errors", "0"));
    let time = duration_seconds(doc);
    if let Some(time) = &time {
        root = root.with_attribute(("time", time.as_str()));
    }
    root.write_inner_content(|w| {
        for suite in suites {
            write_suite(w, doc, suite)?;
        }
        Ok(())
    })?;
    Ok(())
}

fn write_suite(w: &mut Writer<Vec<u8>>, doc: &RunDocument, suite: &Suite) -> io::Result<()> {
    let name = xml_text(&suite.name);
    w.create_element("testsuite")
        .with_attribute(("name", name.as_ref()))
        .with_attribute(("tests", suite.cases.len().to_string().as_str()))
        .with_attribute(("failures", suite.failures().to_string().as_str()))
        .with_attribute(("errors", "0"))
        .with_attribute(("skipped", suite.skipped().to_string().as_str()))
        .with_attribute((
            "timestamp",
            doc.started_at
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
                .as_str(),
        ))
        .write_inner_content(|w| {
            for case in &suite.cases {
                write_case(w, &name, case)?;
            }
            Ok(())
        })?;
    Ok(())
}

fn write_case(w: &mut Writer<Vec<u8>>, classname: &str, case: &Case) -> io::Result<()> {
    let name = xml_text(&case.name);
    let element = w
        .create_element("testcase")
        .with_attribute(("name", name.as_ref()))
        .with_attribute(("classname", classname));
    match &case.outcome {
        Outcome::Passed => {
            element.write_empty()?;
        }
        Outcome::Failed {
            kind,
            message,
            text,
        } => {
            element.write_inner_content(|w| {
                w.create_element("failure")
                    .with_attribute(("type", xml_text(kind).as_ref()))
                    .with_attribute(("message", attribute(message).as_ref()))
                    .write_text_content(BytesText::new(&xml_text(text)))?;
                Ok(())
            })?;
        }
        Outcome::Skipped { message } => {
            element.write_inner_content(|w| {
                w.create_element("skipped")
                    .with_attribute(("message", attribute(message).as_ref()))
                    .write_empty()?;
                Ok(())
            })?;
        }
    }
    Ok(())
}

/// Seconds between the run's start and finish, as JUnit writes them (`12.000`).
fn duration_seconds(doc: &RunDocument) -> Option<String> {
    let millis = (doc.finished_at - doc.started_at).num_milliseconds().max(0);
    Some(format!("{}.{:03}", millis / 1000, millis % 1000))
}

/// Text that XML 1.0 can carry: file names and tool output may hold control characters
/// that no escape makes legal, so they become U+FFFD.
fn xml_text(text: &str) -> Cow<'_, str> {
    let legal = |c: char| {
        matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}')
            || c >= '\u{10000}'
    };
    if text.chars().all(legal) {
        return Cow::Borrowed(text);
    }
    Cow::Owned(
        text.chars()
            .map(|c| if legal(c) { c } else { '\u{FFFD}' })
            .collect(),
    )
}

/// An attribute value on one line: parsers turn a raw line break in an attribute into a
/// space, so the failure text (the element's content) keeps the full lines instead.
fn attribute(text: &str) -> Cow<'_, str> {
    xml_text(text.lines().next().unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outcome::LocationSummary;
    use crate::problem::Severity;
    use crate::problem::Status;
    use crate::restore::Summary as RestoreSummary;
    use chrono::TimeZone;

    fn location(name: &str) -> LocationSummary {
        LocationSummary {
            host: String::new(),
            id: 1,
            name: name.into(),
            kind: crate::config::LocationType::Database,
            status: Status::Ok,
            health_score: Some(1.0),
            backups_present: 3,
            new_backups: 1,
            latest_backup: None,
            latest_backup_age_seconds: None,
            missing_slots: Vec::new(),
            age_thresholds: None,
            last_checked: None,
        }
    }

    fn problem(kind: Kind, location: &str, path: Option<&str>, message: &str) -> Problem {
        let mut p = Problem::new(kind, Severity::Critical, location, message);
        p.path = path.map(str::to_string);
        p
    }

    fn restore(location: &str, path: &str, result: &str, detail: Option<&str>) -> RestoreResult {
        RestoreResult {
            location: location.into(),
            path: path.into(),
            format: "tar.gz".into(),
            result: result.parse().unwrap(),
            files: 3,
            bytes: 100,
            detail: detail.map(str::to_string),
        }
    }

    fn document(operations: &[&str]) -> RunDocument {
        let start = chrono::Utc.with_ymd_and_hms(2026, 11, 21, 2, 0, 0).unwrap();
        let mut doc = RunDocument::new(
            start,
            operations.iter().map(|s| s.parse().unwrap()).collect(),
        );
        doc.finished_at = start + chrono::Duration::seconds(190);
        doc
    }

    /// Two locations: one with a missing slot, a checksum mismatch and a failed restore,
    /// one clean with a skipped restore; plus an alert delivery problem of the run.
    fn sample() -> RunDocument {
        let mut doc = document(&["monitor", "verify", "test-restore", "check-alerts"]);
        doc.locations = vec![location("database_backup"), location("website_backup")];
        doc.problems = vec![
            problem(
                Kind::MissingBackup,
                "database_backup",
                None,
                "no backup for the slot 2026-11-19 02:00",
            ),
            problem(
                Kind::ChecksumMismatch,
                "database_backup",
                Some("db_20261120.sql.gz"),
                "checksum changed since first seen: <sha256> & \"quoted\"",
            ),
            problem(
                Kind::ArchiveCorrupt,
                "database_backup",
                Some("db_20261121.sql.gz"),
                "gzip stream ends early",
            ),
            Problem {
                location: None,
                ..problem(
                    Kind::AlertDeliveryFailed,
                    "x",
                    None,
                    "SMTP refused the login",
                )
            },
        ]
        .into_iter()
        .map(|p| crate::outcome::OpenProblem::unstored(p, chrono::Utc::now()))
        .collect::<Vec<_>>();
        doc.restore_tests = RestoreSummary {
            tested: 3,
            passed: 1,
            failed: 1,
            skipped: 1,
            results: vec![
                restore(
                    "database_backup",
                    "db_20261121.sql.gz",
                    "failed",
                    Some("gzip: unexpected end"),
                ),
                restore("website_backup", "site_20261121.tar.gz", "passed", None),
                restore(
                    "website_backup",
                    "site_20261120.tar.gz",
                    "skipped",
                    Some("over max_bytes"),
                ),
            ],
        };
        doc
    }

    fn names(suite: &Suite) -> Vec<&str> {
        suite.cases.iter().map(|c| c.name.as_str()).collect()
    }

    #[test]
    fn one_suite_per_location_and_one_case_per_check() {
        let suites = suites(&sample());
        let names_of: Vec<&str> = suites.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names_of, ["database_backup", "website_backup", RUN_SUITE]);
        assert_eq!(
            names(&suites[0]),
            [
                "schedule",
                "verify db_20261120.sql.gz",
                "restore db_20261121.sql.gz"
            ]
        );
        assert_eq!(
            names(&suites[1]),
            [
                "schedule",
                "verification",
                "restore site_20261121.tar.gz",
                "restore site_20261120.tar.gz"
            ]
        );
        assert_eq!(names(&suites[2]), ["alerts"]);
    }

    #[test]
    fn failures_carry_the_problem_and_passes_and_skips_are_counted() {
        let suites = suites(&sample());
        assert_eq!((suites[0].failures(), suites[0].skipped()), (3, 0));
        assert_eq!((suites[1].failures(), suites[1].skipped()), (0, 1));
        let Outcome::Failed {
            kind,
            message,
            text,
        } = &suites[0].cases[0].outcome
        else {
            panic!("schedule should fail: {:?}", suites[0].cases[0]);
        };
        assert_eq!(kind, "missing_backup");
        assert_eq!(message, "no backup for the slot 2026-11-19 02:00");
        assert!(text.starts_with("critical missing_backup: "), "{text}");
        let Outcome::Failed {
            kind,
            message,
            text,
        } = &suites[0].cases[2].outcome
        else {
            panic!("restore should fail");
        };
        assert_eq!(kind, "archive_corrupt");
        assert_eq!(message, "gzip: unexpected end");
        assert!(text.contains("gzip stream ends early"), "{text}");
        assert_eq!(
            suites[1].cases[3].outcome,
            Outcome::Skipped {
                message: "over max_bytes".into()
            }
        );
    }

    #[test]
    fn checks_that_did_not_run_are_not_cases() {
        let mut doc = document(&["test-restore"]);
        doc.locations = vec![location("files")];
        doc.restore_tests.results = vec![restore("files", "a.tar.gz", "passed", None)];
        let suites = suites(&doc);
        assert_eq!(suites.len(), 1);
        assert_eq!(names(&suites[0]), ["restore a.tar.gz"]);
    }

    #[test]
    fn a_run_that_could_not_judge_is_one_failed_case() {
        let start = chrono::Utc.with_ymd_and_hms(2026, 11, 21, 2, 0, 0).unwrap();
        let doc = RunDocument::unknown(
            start,
            vec![Operation::Monitor],
            "invalid config: bad key",
            "web1",
        );
        let xml = render(&doc);
        assert!(
            xml.contains(r#"<testsuite name="backup-monitor" tests="1" failures="1""#),
            "{xml}"
        );
        assert!(
            xml.contains(r#"message="invalid config: bad key""#),
            "{xml}"
        );
    }

    #[test]
    fn xml_is_escaped_and_stripped_of_illegal_characters() {
        let mut doc = sample();
        doc.locations[0].name = "db <main> & \"co\"".into();
        for p in &mut doc.problems {
            if p.location.as_deref() == Some("database_backup") {
                p.problem.location = Some(doc.locations[0].name.clone());
            }
        }
        doc.restore_tests.results[0].location = doc.locations[0].name.clone();
        doc.problems[0].problem.message = "bell\u{7} in a name".into();
        let xml = render(&doc);
        assert!(
            xml.contains(r#"name="db &lt;main&gt; &amp; &quot;co&quot;""#),
            "{xml}"
        );
        assert!(
            xml.contains("&lt;sha256&gt; &amp; &quot;quoted&quot;"),
            "{xml}"
        );
        assert!(xml.contains("bell\u{FFFD} in a name"), "{xml}");
        assert!(!xml.contains('\u{7}'));
    }

    #[test]
    fn totals_and_duration_are_on_the_root() {
        let xml = render(&sample());
        assert!(
            xml.starts_with(r#"<?xml version="1.0" encoding="UTF-8"?>"#),
            "{xml}"
        );
        assert!(
            xml.contains(r#"<testsuites name="backup-monitor" tests="8" failures="4" errors="0" time="190.000">"#),
            "{xml}"
        );
    }
}
