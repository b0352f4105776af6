//! `--test-restore` as one step of a whole run and of many nights, through the real
//! binary: a location whose restore tests cannot be set up (no scratch directory, a key
//! file others can read or that is missing) is that location's `restore_untested` while
//! the other locations are tested, reported and alerted; a backup rewritten after its
//! test failed is tested again although newer backups exist.

use crate::common;

use chrono::{Duration, Utc};
use common::{Workspace, problem_kinds_of as kinds_of, restore_result as result};
use serde_json::Value;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;

/// A tar.gz holding one file of `len` bytes.
fn tar_gz(len: usize) -> Vec<u8> {
    let data: Vec<u8> = (0..len as u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let mut tar = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_gnu();
    header.set_size(data.len() as u64);
    header.set_mode(0o600);
    header.set_cksum();
    tar.append_data(&mut header, "site/data.bin", data.as_slice())
        .unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&tar.into_inner().unwrap()).unwrap();
    gz.finish().unwrap()
}

/// The first half of a tar.gz of `len` bytes: what a job killed half way leaves.
fn truncated_tar_gz(len: usize) -> Vec<u8> {
    let whole = tar_gz(len);
    whole[..whole.len() / 2].to_vec()
}

fn problems(doc: &Value) -> &Vec<Value> {
    doc["problems"].as_array().expect("problems")
}

/// The open problem of `kind` at `location`.
fn problem<'a>(doc: &'a Value, location: &str, kind: &str) -> &'a Value {
    problems(doc)
        .iter()
        .find(|p| p["location"] == location && p["kind"] == kind)
        .unwrap_or_else(|| panic!("no {kind} at {location}: {doc:#}"))
}

/// Locations `site` (restore tests set up by `site_restore`, YAML indented 8), `good`
/// (tested as usual) and `gone` (its path is missing), each but `gone` with one settled
/// backup; reports and the log alert channel on.
fn three_locations(site_restore: &str) -> Workspace {
    let ws = Workspace::new();
    ws.write_config(&format!(
        "reporting: {{ output_dir: reports, formats: [html, json] }}\nalerts:\n  log: {{ enabled: true }}\nbackups:\n  locations:\n    - name: site\n      path: site\n      restore:\n{site_restore}\n    - name: good\n      path: good\n      restore:\n        scratch_dir: scratch\n    - name: gone\n      path: gone\n"
    ));
    std::fs::create_dir_all(ws.path("scratch")).unwrap();
    let day_ago = Utc::now() - Duration::days(1);
    ws.write_file("site/site.tar.gz", &tar_gz(5_000), day_ago);
    ws.write_file("good/good.tar.gz", &tar_gz(7_000), day_ago);
    ws
}

/// The nightly run, in JSON.
fn nightly(ws: &Workspace) -> (common::Run, Value) {
    ws.run_json(&[
        "--monitor",
        "--verify",
        "--test-restore",
        "--report",
        "--check-alerts",
    ])
}

/// What every setup failure must leave: `site` untested with a message naming it, the
/// other locations tested, reported and alerted, and the exit code of their problems.
fn assert_the_run_went_on(ws: &Workspace, run: &common::Run, doc: &Value) -> String {
    assert_eq!(
        run.code, 2,
        "gone's location_unavailable (critical) decides, not an error: {}\n{}",
        run.stdout, run.stderr
    );
    let untested = problem(doc, "site", "restore_untested");
    assert_eq!(untested["severity"], "warning", "{untested:#}");
    let message = untested["message"].as_str().unwrap().to_string();
    assert!(message.contains("site"), "{message}");
    assert!(!message.contains('\n'), "{message}");
    assert!(!message.contains("os error"), "{message}");
    assert!(!message.contains('"'), "no debug quoting: {message}");
    assert_eq!(result(doc, "site.tar.gz")["result"], "skipped", "{doc:#}");
    assert_eq!(result(doc, "good.tar.gz")["result"], "passed", "{doc:#}");
    problem(doc, "gone", "location_unavailable");
    let reports: Vec<_> = std::fs::read_dir(ws.path("reports"))
        .expect("reports written")
        .flatten()
        .collect();
    assert!(!reports.is_empty(), "reports written");
    assert!(
        run.stderr.contains("[NEW CRITICAL] location_unavailable"),
        "gone is alerted: {}",
        run.stderr
    );
    assert!(doc["alerts"]["sent"].as_u64().unwrap() >= 1, "{doc:#}");
    message
}

#[test]
fn a_missing_scratch_dir_is_the_locations_problem_not_the_runs_end() {
    let ws = three_locations("        scratch_dir: nope/scratch");
    let (run, doc) = nightly(&ws);
    let message = assert_the_run_went_on(&ws, &run, &doc);
    let scratch = ws.path("nope/scratch");
    assert!(
        message.contains(&scratch.display().to_string())
            && message.contains("does not exist")
            && message.contains("restore.scratch_dir"),
        "names the path, what is wrong and what to do: {message}"
    );
    let detail = result(&doc, "site.tar.gz")["detail"].as_str().unwrap();
    assert!(detail.contains("nope/scratch"), "{detail}");

    // Once the directory exists the next run tests the backup and the warning closes.
    std::fs::create_dir_all(&scratch).unwrap();
    let (run, doc) = nightly(&ws);
    assert_eq!(run.code, 2, "{}", run.stdout);
    assert_eq!(result(&doc, "site.tar.gz")["result"], "passed", "{doc:#}");
    assert!(
        !problems(&doc)
            .iter()
            .any(|p| p["kind"] == "restore_untested"),
        "{doc:#}"
    );
}

#[test]
fn a_key_file_others_can_read_is_the_locations_problem_and_is_not_used() {
    let ws = three_locations(
        "        scratch_dir: scratch\n        decrypt:\n          age_identity_file: age-key.txt",
    );
    std::fs::write(ws.path("age-key.txt"), "AGE-SECRET-KEY-1XYZ\n").unwrap();
    std::fs::set_permissions(
        ws.path("age-key.txt"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    let (run, doc) = nightly(&ws);
    let message = assert_the_run_went_on(&ws, &run, &doc);
    assert!(
        message.contains("age-key.txt")
            && message.contains("other users")
            && message.contains("chmod 600"),
        "{message}"
    );
    assert!(!run.stdout.contains("AGE-SECRET-KEY"), "{}", run.stdout);
    assert!(!run.stderr.contains("AGE-SECRET-KEY"), "{}", run.stderr);
}

#[test]
fn a_missing_key_file_is_the_locations_problem() {
    let ws = three_locations(
        "        scratch_dir: scratch\n        decrypt:\n          age_identity_file: keys/age-key.txt",
    );
    let (run, doc) = nightly(&ws);
    let message = assert_the_run_went_on(&ws, &run, &doc);
    assert!(
        message.contains(&ws.path("keys/age-key.txt").display().to_string())
            && message.contains("does not exist")
            && message.contains("restore.decrypt.age_identity_file"),
        "{message}"
    );
}

/// A daily location `db` over `db/`, testing only its newest backup (the default).
fn daily() -> Workspace {
    let ws = Workspace::new();
    ws.write_config(
        "backups:\n  locations:\n    - name: db\n      path: db\n      restore:\n        scratch_dir: scratch\n",
    );
    std::fs::create_dir_all(ws.path("scratch")).unwrap();
    ws
}

fn night(ws: &Workspace) -> (common::Run, Value) {
    ws.run_json(&["--monitor", "--test-restore"])
}

/// A daily location whose only backup, `a.tar.gz` (three days old), is truncated: the
/// first night opens its `archive_corrupt`. Returns the workspace and the clock used.
fn a_night_with_a_truncated_backup() -> (Workspace, chrono::DateTime<Utc>) {
    let ws = daily();
    let now = Utc::now();
    ws.write_file(
        "db/a.tar.gz",
        &truncated_tar_gz(20_000),
        now - Duration::days(3),
    );
    let (_, doc) = night(&ws);
    assert_eq!(
        kinds_of(&doc, "a.tar.gz"),
        vec!["archive_corrupt"],
        "{doc:#}"
    );
    (ws, now)
}

#[test]
fn a_backup_rewritten_after_its_restore_failed_is_tested_again_and_resolves() {
    let (ws, now) = a_night_with_a_truncated_backup();

    // The job is re-run and writes a good copy over the bad one; the next night's
    // backup is newer, so `latest: 1` alone would never look at a.tar.gz again.
    ws.write_file("db/a.tar.gz", &tar_gz(30_000), now - Duration::days(2));
    ws.write_file("db/b.tar.gz", &tar_gz(20_000), now - Duration::days(1));
    let accept = ws.run(&["--accept", "a.tar.gz", "--reason", "re-ran the job"]);
    assert_eq!(accept.code, 0, "{}\n{}", accept.stdout, accept.stderr);
    assert!(
        accept
            .stdout
            .contains("archive_corrupt stays open until the next --test-restore"),
        "accepting tests nothing, and says what will: {}",
        accept.stdout
    );

    let (run, doc) = night(&ws);
    assert_eq!(result(&doc, "a.tar.gz")["result"], "passed", "{doc:#}");
    assert_eq!(result(&doc, "b.tar.gz")["result"], "passed", "{doc:#}");
    assert!(kinds_of(&doc, "a.tar.gz").is_empty(), "{doc:#}");
    let resolved: i64 = ws.store_value(
        "SELECT COUNT(*) FROM problems WHERE kind = 'archive_corrupt' AND path = 'a.tar.gz' AND resolved_at IS NOT NULL",
    );
    assert_eq!(resolved, 1);
    assert_eq!(run.code, 0, "{doc:#}");

    // Passed now: later nights leave it to the newest backups again.
    let (_, doc) = night(&ws);
    let tested: Vec<&str> = doc["restore_tests"]["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["path"].as_str().unwrap())
        .collect();
    assert_eq!(tested, vec!["b.tar.gz"], "{doc:#}");
}

#[test]
fn an_older_backup_that_still_fails_stays_open_with_a_current_message() {
    let (ws, now) = a_night_with_a_truncated_backup();
    let opened: i64 = ws.store_value("SELECT id FROM problems WHERE kind = 'archive_corrupt'");

    // Rewritten, but broken again (another size); a newer good backup arrives.
    ws.write_file(
        "db/a.tar.gz",
        b"not a gzip stream at all",
        now - Duration::days(2),
    );
    ws.write_file("db/b.tar.gz", &tar_gz(20_000), now - Duration::days(1));
    let (_, doc) = night(&ws);
    let a = result(&doc, "a.tar.gz");
    assert_eq!(a["result"], "failed", "tested again: {a:#}");
    assert!(
        !a["detail"].as_str().unwrap().contains("unchanged"),
        "{a:#}"
    );
    assert_eq!(
        kinds_of(&doc, "a.tar.gz"),
        vec!["archive_corrupt"],
        "{doc:#}"
    );
    let open = problem(&doc, "db", "archive_corrupt");
    assert_eq!(open["id"], opened, "the same problem stays open: {open:#}");
    let message = open["message"].as_str().unwrap();
    assert!(
        message.contains("is not a gzip stream"),
        "the message says what is wrong now: {message}"
    );

    // Unchanged and still broken: not tested nor recorded again (it counts once in the
    // health score), and the problem stays.
    let tests_before: i64 = ws.store_value("SELECT COUNT(*) FROM restore_tests");
    let (code_doc, doc) = night(&ws);
    assert_eq!(code_doc.code, 2, "{doc:#}");
    let tested: Vec<&str> = doc["restore_tests"]["results"]
        .as_array()
        .map(|r| r.iter().filter_map(|t| t["path"].as_str()).collect())
        .unwrap_or_default();
    assert!(!tested.contains(&"a.tar.gz"), "{doc:#}");
    let tests_after: i64 = ws.store_value("SELECT COUNT(*) FROM restore_tests");
    assert_eq!(tests_after, tests_before + 1, "only the newest is recorded");
    assert_eq!(
        kinds_of(&doc, "a.tar.gz"),
        vec!["archive_corrupt"],
        "{doc:#}"
    );
    let still = problem(&doc, "db", "archive_corrupt");
    assert_eq!(still["id"], opened, "{still:#}");
}
