//! The JSON documents the binary prints, checked against the schemas published in
//! `docs/reference/`: a run that is fine, one with problems, restore results, `--status`
//! with open alerts, the exit-3 documents and `--check-config`. The schemas forbid fields
//! they do not describe, so a field added to the output without documenting it fails here.

use crate::common::{Workspace, ts};
use jsonschema::Validator;
use serde_json::{Value, json};
use std::io::Write as _;
use std::path::Path;

const NOW: &str = "2026-11-21T12:00:00Z";

fn schema(file: &str) -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("docs/reference")
        .join(file);
    let text =
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()))
}

fn validator(file: &str) -> Validator {
    let schema = schema(file);
    if let Err(e) = jsonschema::draft202012::meta::validate(&schema) {
        panic!("{file} is not a valid draft 2020-12 schema: {e}");
    }
    jsonschema::draft202012::options()
        .should_validate_formats(true)
        .build(&schema)
        .unwrap_or_else(|e| panic!("{file}: {e}"))
}

pub fn run_schema() -> Validator {
    validator("run.schema.json")
}

fn check_config_schema() -> Validator {
    validator("check-config.schema.json")
}

fn errors(v: &Validator, doc: &Value) -> Vec<String> {
    v.iter_errors(doc)
        .map(|e| format!("at `{}`: {e}", e.instance_path()))
        .collect()
}

pub fn assert_valid(v: &Validator, doc: &Value) {
    let errors = errors(v, doc);
    assert!(
        errors.is_empty(),
        "the document does not match the published schema:\n{}\n\ndocument:\n{doc:#}",
        errors.join("\n")
    );
}

fn workspace(location_yaml: &str) -> Workspace {
    let mut w = Workspace::new();
    w.now = Some(ts(NOW));
    w.write_config(&format!(
        "timezone: UTC\nlogging: {{ file: null }}\nbackups:\n  locations:\n{location_yaml}"
    ));
    w
}

/// A location `db` of daily backups in `b/`, judged as soon as they are written.
const DAILY: &str = "    - name: db\n      path: b\n      type: database\n      settle: 0s\n      min_free_space: 1\n";

/// `b/db_2026MMDD.bin` for each day, written at 01:00 UTC that day.
fn daily_backups(w: &Workspace, days: &[&str]) {
    for d in days {
        w.write_file(
            &format!("b/db_{d}.bin"),
            format!("backup of {d}\n").as_bytes(),
            ts(&format!("{}-{}-{}T01:00:00Z", &d[..4], &d[4..6], &d[6..])),
        );
    }
}

fn gzip(content: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(content).expect("gzip");
    enc.finish().expect("gzip")
}

#[test]
fn the_schemas_are_valid_and_know_every_problem_kind() {
    let schema = schema("run.schema.json");
    let kinds: Vec<&str> = schema["$defs"]["kind"]["enum"]
        .as_array()
        .expect("kind enum")
        .iter()
        .map(|k| k.as_str().expect("kind name"))
        .collect();
    let known: Vec<&str> = backup_monitor::problem::Kind::ALL
        .iter()
        .map(|k| k.as_str())
        .collect();
    assert_eq!(kinds, known, "the schema's kinds differ from the binary's");
    check_config_schema();
}

#[test]
fn an_ok_run_matches() {
    let w = workspace(DAILY);
    daily_backups(
        &w,
        &[
            "20261113", "20261114", "20261115", "20261116", "20261117", "20261118", "20261119",
            "20261120", "20261121",
        ],
    );
    let (run, doc) = w.run_json(&["--monitor", "--verify"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(doc["status"], "ok");
    assert_eq!(doc["locations"][0]["backups_present"], 9);
    assert_eq!(doc["verification"]["checked"], 9);
    assert_valid(&run_schema(), &doc);
}

#[test]
fn a_critical_run_with_problems_matches() {
    let w = workspace(DAILY);
    // An empty backup on the 15th, then nothing: overdue since the 16th.
    daily_backups(&w, &["20261113", "20261114"]);
    w.write_file("b/db_20261115.bin", b"", ts("2026-11-15T01:00:00Z"));
    let (run, doc) = w.run_json(&["--monitor"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    let kinds = run.kinds();
    assert!(kinds.contains(&"missing_backup".to_string()), "{kinds:?}");
    assert!(kinds.contains(&"empty_backup".to_string()), "{kinds:?}");
    let missing = doc["locations"][0]["missing_slots"]
        .as_array()
        .expect("missing_slots");
    assert!(!missing.is_empty(), "{doc:#}");
    assert_valid(&run_schema(), &doc);
}

#[test]
fn restore_results_match() {
    let w = workspace(
        "    - name: site\n      path: b\n      type: website\n      settle: 0s\n      min_free_space: 1\n      restore: { latest: 3 }\n",
    );
    let good = gzip(b"hello\n");
    w.write_file("b/site_20261121.txt.gz", &good, ts("2026-11-21T01:00:00Z"));
    w.write_file(
        "b/site_20261120.txt.gz",
        &good[..good.len() / 2],
        ts("2026-11-20T01:00:00Z"),
    );
    w.write_file(
        "b/site_20261119.bin",
        b"plain bytes of no known format\n",
        ts("2026-11-19T01:00:00Z"),
    );
    let (run, doc) = w.run_json(&["--monitor", "--test-restore"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    let results: Vec<&str> = doc["restore_tests"]["results"]
        .as_array()
        .expect("results")
        .iter()
        .map(|r| r["result"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(results, ["passed", "failed", "skipped"], "{doc:#}");
    assert_valid(&run_schema(), &doc);
}

#[test]
fn status_with_open_alerts_matches() {
    // A webhook nobody listens on: the delivery fails, which is a problem of the run itself.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let w = workspace(DAILY);
    let mut config = std::fs::read_to_string(w.config_path()).expect("config");
    config.push_str(&format!(
        "alerts:\n  timeout: 1s\n  log: {{ enabled: false }}\n  webhook:\n    enabled: true\n    url: http://127.0.0.1:{port}/hook\n"
    ));
    w.write_config(&config);
    daily_backups(&w, &["20261114", "20261121"]);
    let (run, doc) = w.run_json(&["--monitor", "--report", "--check-alerts"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.kinds().contains(&"alert_delivery_failed".to_string()),
        "{doc:#}"
    );
    assert!(!doc["reports"].as_array().expect("reports").is_empty());
    assert_valid(&run_schema(), &doc);

    let (run, doc) = w.run_json(&["--status"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert_eq!(doc["operations"], json!(["status"]));
    let open = doc["open_alerts"].as_array().expect("open_alerts");
    assert!(
        open.iter()
            .any(|a| a["failing_channels"] == json!(["webhook"])),
        "{doc:#}"
    );
    assert_valid(&run_schema(), &doc);
}

#[test]
fn exit_3_documents_match() {
    let w = workspace(DAILY);
    daily_backups(&w, &["20261121"]);
    // `--status` first: before any run there is no store to read.
    for args in [
        &["--status"][..],
        &["--monitor", "--location-name", "nowhere"],
        &["--monitor", "--no-such-flag"],
        &[],
    ] {
        let (run, doc) = w.run_json(args);
        assert_eq!(run.code, 3, "{args:?}: {}", run.stderr);
        assert_eq!(doc["status"], "unknown", "{args:?}");
        assert!(doc["error"].is_string(), "{args:?}: {doc:#}");
        assert_valid(&run_schema(), &doc);
    }
    w.write_config("backups:\n  locations:\n    - name: db\n      pth: b\n");
    let (run, doc) = w.run_json(&["--monitor"]);
    assert_eq!(run.code, 3, "{}", run.stderr);
    assert_valid(&run_schema(), &doc);
}

#[test]
fn check_config_documents_match() {
    let w = workspace(DAILY);
    let (run, doc) = w.run_json(&["--check-config"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(doc["valid"], true);
    assert_valid(&check_config_schema(), &doc);

    w.write_config(
        "backups:\n  locations:\n    - name: db\n      path: b\n      retention_days: lots\n",
    );
    let (run, doc) = w.run_json(&["--check-config"]);
    assert_eq!(run.code, 3, "{}", run.stderr);
    assert_eq!(doc["valid"], false);
    assert_valid(&check_config_schema(), &doc);
}

/// A change to a real document that the schema must reject.
type Mutation = fn(&mut Value);

/// The schemas are strict: what they do not describe is an error, so these tests catch a
/// field added to the output without a word in the reference.
#[test]
fn the_schemas_reject_what_they_do_not_describe() {
    let w = workspace(DAILY);
    // Nothing since the 14th: overdue, so there is a problem to mutate.
    daily_backups(&w, &["20261113", "20261114"]);
    let (_, doc) = w.run_json(&["--monitor", "--test-restore"]);
    let schema = run_schema();
    assert_valid(&schema, &doc);

    let mutations: [(&str, Mutation); 6] = [
        ("a new top-level field", |d| d["surprise"] = json!(1)),
        ("a new location field", |d| {
            d["locations"][0]["surprise"] = json!(1)
        }),
        ("a new problem field", |d| {
            d["problems"][0]["surprise"] = json!(1)
        }),
        ("a new restore result field", |d| {
            d["restore_tests"]["results"][0]["surprise"] = json!(1)
        }),
        ("an unknown problem kind", |d| {
            d["problems"][0]["kind"] = json!("mystery")
        }),
        ("a status that does not match the exit code", |d| {
            d["status"] = json!("ok")
        }),
    ];
    for (what, mutate) in mutations {
        let mut changed = doc.clone();
        mutate(&mut changed);
        assert!(
            !errors(&schema, &changed).is_empty(),
            "the schema accepted {what}:\n{changed:#}"
        );
    }

    let mut config_doc =
        json!({"valid": true, "errors": [], "status": "ok", "exit_code": 0, "config": "c.yaml"});
    assert_valid(&check_config_schema(), &config_doc);
    config_doc["surprise"] = json!(1);
    assert!(!errors(&check_config_schema(), &config_doc).is_empty());
}
