//! Acknowledge, accept, silence through the binary: `--ack` stops repeats until the
//! severity rises, `--accept` closes a re-run or deleted backup's problem for good, a
//! `--silence` hides a maintenance night from the exit code and the alerts until it
//! expires, unknown ids, paths and selectors exit 3 naming what exists, and every action
//! is in the audit log (`--silences`, the HTML report). Alerts go to a webhook recorder
//! on 127.0.0.1; time moves with `BACKUP_MONITOR_NOW`.

use crate::common;

use backup_monitor::problem::{Kind, Operation, Problem, Severity};
use chrono::{DateTime, Duration, Utc};
use common::{Workspace, set_mtime, ts};
use serde_json::Value;
use sha2::Digest;
use std::sync::{Arc, Mutex};

const NOW: &str = "2026-11-21T12:00:00Z";

/// A loopback HTTP server that records the JSON body of every request.
pub(crate) struct Recorder {
    server: Arc<tiny_http::Server>,
    pub(crate) port: u16,
    received: Arc<Mutex<Vec<Value>>>,
}

impl Recorder {
    pub(crate) fn start() -> Recorder {
        let server = Arc::new(tiny_http::Server::http("127.0.0.1:0").expect("bind loopback"));
        let port = server.server_addr().to_ip().expect("ip").port();
        let received = Arc::new(Mutex::new(Vec::new()));
        let (s, r) = (server.clone(), received.clone());
        std::thread::spawn(move || {
            for mut request in s.incoming_requests() {
                let mut body = String::new();
                let _ = request.as_reader().read_to_string(&mut body);
                r.lock()
                    .unwrap()
                    .push(serde_json::from_str(&body).unwrap_or(Value::String(body)));
                let _ = request.respond(tiny_http::Response::from_string("ok"));
            }
        });
        Recorder {
            server,
            port,
            received,
        }
    }

    /// Every alert received since the last call (of this or [`Recorder::take`]).
    pub(crate) fn drain(&self) -> Vec<Value> {
        let mut all = self.received.lock().unwrap();
        let alerts = all
            .iter()
            .flat_map(|p| p["groups"].as_array().cloned().unwrap_or_default())
            .flat_map(|g| g["alerts"].as_array().cloned().unwrap_or_default())
            .collect();
        all.clear();
        alerts
    }

    /// (event, kind) of every alert received since the last call.
    pub(crate) fn take(&self) -> Vec<(String, String)> {
        let text = |a: &Value, field: &str| a[field].as_str().unwrap_or("").to_string();
        self.drain()
            .iter()
            .map(|a| (text(a, "event"), text(a, "kind")))
            .collect()
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        self.server.unblock();
    }
}

/// Location `docs` (daily at 02:00, path `docs`), alerts to the recorder only.
fn workspace(hook: &Recorder) -> Workspace {
    let mut w = Workspace::new();
    w.now = Some(ts(NOW));
    w.write_config(&format!(
        "timezone: UTC\nlogging: {{ file: null }}\nbackups:\n  locations:\n    - name: docs\n      path: docs\n      schedule: daily\n      at: \"02:00\"\n      min_free_space: 0\n\
         alerts:\n  cooldown: 24h\n  timeout: 2s\n  log: {{ enabled: false }}\n  webhook:\n    enabled: true\n    url: http://127.0.0.1:{}/hook\n",
        hook.port
    ));
    w
}

fn at(w: &mut Workspace, t: DateTime<Utc>) {
    w.now = Some(t);
}

fn day(days_ago: i64) -> DateTime<Utc> {
    ts("2026-11-21T02:00:00Z") - Duration::days(days_ago)
}

/// Daily zips for the given days before NOW; returns their names.
fn daily(w: &Workspace, days_ago: &[i64]) -> Vec<String> {
    days_ago
        .iter()
        .map(|&d| {
            let name = format!("docs_{}.zip", day(d).format("%Y%m%d_%H%M%S"));
            w.write_file(
                &format!("docs/{name}"),
                format!("zip of day {d}").as_bytes(),
                day(d) + Duration::minutes(5),
            );
            name
        })
        .collect()
}

fn problems<'a>(doc: &'a Value, kind: &str) -> Vec<&'a Value> {
    doc["problems"]
        .as_array()
        .expect("problems")
        .iter()
        .filter(|p| p["kind"] == kind)
        .collect()
}

fn suppressed(doc: &Value) -> u64 {
    doc["alerts"]["suppressed"].as_u64().unwrap_or(99)
}

/// Judge `health_degraded` at `docs` straight into the store, as `--report` would.
fn seed_health(w: &Workspace, severity: Severity, at: DateTime<Utc>) {
    let store = w.open_store();
    let loc = store
        .upsert_location("docs", &w.path("docs").display().to_string(), "generic", at)
        .unwrap();
    // As if a --monitor had just judged it: not stale.
    store.record_location_scan(loc, true, None, at).unwrap();
    let p = Problem::new(
        Kind::HealthDegraded,
        severity,
        "docs",
        "health 0.6 is under 0.8",
    );
    store
        .sync_problems(Operation::Report, Some(loc), &[p], &|_| true, at)
        .unwrap();
}

#[test]
fn ack_stops_repeats_until_the_severity_rises() {
    let hook = Recorder::start();
    let mut w = workspace(&hook);
    seed_health(&w, Severity::Warning, ts(NOW));
    let (run, doc) = w.run_json(&["--check-alerts"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert_eq!(hook.take(), [("open".into(), "health_degraded".into())]);
    let p = &problems(&doc, "health_degraded")[0];
    let id = p["id"].as_i64().expect("an integer id");
    assert_eq!(p["acknowledged"], false);
    assert_eq!(p["silenced"], false);
    assert_eq!(p["opened_at"], "2026-11-21T12:00:00+00:00");

    let id_text = id.to_string();
    let ack = w.run(&["--ack", &id_text, "--reason", "disk swap scheduled"]);
    assert_eq!(ack.code, 0, "{}", ack.stderr);
    assert!(
        ack.stdout
            .contains(&format!("acknowledged #{id} health_degraded at docs"))
    );

    // Past the cooldown: no repeat, but it still counts for the exit code.
    at(&mut w, ts(NOW) + Duration::hours(25));
    seed_health(&w, Severity::Warning, ts(NOW) + Duration::hours(25));
    let (run, doc) = w.run_json(&["--check-alerts"]);
    assert_eq!(run.code, 1, "acknowledged problems still count");
    assert!(
        hook.take().is_empty(),
        "an acknowledged problem is not repeated"
    );
    assert_eq!(suppressed(&doc), 1);
    assert_eq!(problems(&doc, "health_degraded")[0]["acknowledged"], true);
    let text = w.run(&["--status"]);
    assert!(
        text.stdout
            .contains(&format!("#{id} docs health_degraded (acknowledged)")),
        "{}",
        text.stdout
    );

    // Worse than when it was acknowledged: told at once.
    at(&mut w, ts(NOW) + Duration::hours(26));
    seed_health(&w, Severity::Critical, ts(NOW) + Duration::hours(26));
    let (run, doc) = w.run_json(&["--check-alerts"]);
    assert_eq!(run.code, 2);
    assert_eq!(hook.take(), [("escalate".into(), "health_degraded".into())]);
    let p = &problems(&doc, "health_degraded")[0];
    assert_eq!(
        (p["id"].as_i64(), &p["acknowledged"]),
        (Some(id), &Value::Bool(false))
    );

    let who: String =
        w.store_value("SELECT action || ' ' || target || ': ' || reason FROM lifecycle_actions");
    assert_eq!(
        who,
        format!("ack #{id} health_degraded at docs: disk swap scheduled")
    );
}

#[test]
fn accepting_a_rerun_zip_closes_modified_after_backup_for_good() {
    let hook = Recorder::start();
    let mut w = workspace(&hook);
    let names = daily(&w, &[0, 1, 2]);
    assert_eq!(w.run(&["--monitor", "--verify"]).code, 0);

    // The job is re-run the same day: a good copy over the truncated one.
    let path = w.path(&format!("docs/{}", names[0]));
    let good = b"the complete zip, written again".to_vec();
    std::fs::write(&path, &good).unwrap();
    set_mtime(&path, ts("2026-11-21T10:00:00Z"));
    at(&mut w, ts(NOW) + Duration::hours(1));
    let (run, doc) = w.run_json(&["--monitor", "--verify"]);
    assert_eq!(run.code, 2, "{}", run.stdout);
    let modified = problems(&doc, "modified_after_backup");
    assert_eq!(modified.len(), 1, "{doc:#}");
    let id = modified[0]["id"].as_i64().unwrap();

    let abs = path.display().to_string();
    let accept = w.run(&["--accept", &abs, "--reason", "re-ran the zip job"]);
    assert_eq!(accept.code, 0, "{}", accept.stderr);
    assert!(
        accept
            .stdout
            .contains(&format!("closed #{id} modified_after_backup")),
        "{}",
        accept.stdout
    );
    let hex: String = w.store_value(&format!(
        "SELECT checksum FROM backups WHERE path = '{}' AND deleted_at IS NULL",
        names[0]
    ));
    let want: String = sha2::Sha256::digest(&good)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(
        hex, want,
        "the accepted bytes are the new first-sight checksum"
    );

    for hours in [2, 26] {
        at(&mut w, ts(NOW) + Duration::hours(hours));
        if hours >= 24 {
            daily(&w, &[-1]);
        }
        let (run, doc) = w.run_json(&["--monitor", "--verify", "--check-alerts"]);
        assert_eq!(run.code, 0, "after {hours} h: {doc:#}");
        assert!(problems(&doc, "modified_after_backup").is_empty());
        assert!(problems(&doc, "checksum_mismatch").is_empty());
    }
}

#[test]
fn accepting_a_deleted_backup_closes_deleted_before_retention_for_good() {
    let hook = Recorder::start();
    let mut w = workspace(&hook);
    let names = daily(&w, &[0, 1, 2]);
    assert_eq!(w.run(&["--monitor"]).code, 0);
    std::fs::remove_file(w.path(&format!("docs/{}", names[1]))).unwrap();
    let (run, doc) = w.run_json(&["--monitor"]);
    assert_eq!(run.code, 2);
    assert_eq!(problems(&doc, "deleted_before_retention").len(), 1);

    let accept = w.run(&[
        "--accept",
        &names[1],
        "--location-name",
        "docs",
        "--reason",
        "it was the truncated one",
    ]);
    assert_eq!(accept.code, 0, "{}", accept.stderr);
    assert!(
        accept.stdout.contains("accepted the deletion of"),
        "{}",
        accept.stdout
    );
    assert!(
        accept.stdout.contains("deleted_before_retention"),
        "{}",
        accept.stdout
    );

    for hours in [1, 24] {
        at(&mut w, ts(NOW) + Duration::hours(hours));
        if hours >= 24 {
            daily(&w, &[-1]);
        }
        let (run, doc) = w.run_json(&["--monitor"]);
        assert!(
            problems(&doc, "deleted_before_retention").is_empty(),
            "after {hours} h: {doc:#}"
        );
        assert_eq!(run.code, 0, "{doc:#}");
    }
}

#[test]
fn a_silence_hides_a_maintenance_night_from_exit_code_and_alerts_until_it_expires() {
    let hook = Recorder::start();
    let mut w = workspace(&hook);
    daily(&w, &[1, 2, 3]);
    assert_eq!(w.run(&["--monitor"]).code, 2, "today's backup is missing");
    let set = w.run(&[
        "--silence",
        "docs/missing_backup",
        "--for",
        "12h",
        "--reason",
        "storage migration",
    ]);
    assert_eq!(set.code, 0, "{}", set.stderr);
    assert!(
        set.stdout
            .starts_with("silence #1: docs/missing_backup until 2026-11-22T00:00:00+00:00"),
        "{}",
        set.stdout
    );

    at(&mut w, ts(NOW) + Duration::hours(1));
    let (run, doc) = w.run_json(&["--monitor", "--check-alerts"]);
    assert_eq!(run.code, 0, "silenced problems do not count: {doc:#}");
    let missing = problems(&doc, "missing_backup");
    assert_eq!(missing.len(), 1, "still found and listed");
    assert_eq!(missing[0]["silenced"], true);
    assert_eq!(doc["locations"][0]["status"], "ok");
    assert!(hook.take().is_empty(), "nothing is alerted while silenced");
    assert!(suppressed(&doc) >= 1);
    let nagios = w.run(&["--status", "--format", "nagios"]);
    assert!(
        nagios.stdout.starts_with("BACKUP OK - 1 location OK"),
        "{}",
        nagios.stdout
    );

    let (run, list) = w.run_json(&["--silences"]);
    assert_eq!(run.code, 0);
    let s = &list["silences"][0];
    assert_eq!(s["id"], 1);
    assert_eq!(s["selector"], "docs/missing_backup");
    assert_eq!(s["reason"], "storage migration");
    assert_eq!(s["until"], "2026-11-22T00:00:00+00:00");
    assert!(s["created_by"].as_str().is_some_and(|u| !u.is_empty()));
    assert!(s["host"].as_str().is_some_and(|h| !h.is_empty()));

    let (run, _) = w.run_json(&["--report"]);
    assert_ne!(run.code, 3, "{}", run.stderr);
    let html = std::fs::read_to_string(w.path("reports/latest.html")).unwrap();
    assert!(html.contains("Acknowledgements, accepted changes and silences"));
    assert!(html.contains("storage migration"));

    // The silence expires: the still-missing backup counts and is alerted.
    at(&mut w, ts(NOW) + Duration::hours(13));
    let (run, doc) = w.run_json(&["--monitor", "--check-alerts"]);
    assert_eq!(run.code, 2);
    assert_eq!(problems(&doc, "missing_backup")[0]["silenced"], false);
    assert_eq!(hook.take(), [("open".into(), "missing_backup".into())]);
    let (_, list) = w.run_json(&["--silences"]);
    assert_eq!(list["silences"], serde_json::json!([]));
}

#[test]
fn unsilence_ends_a_silence_now_and_a_resolution_while_silenced_is_quiet() {
    let hook = Recorder::start();
    let mut w = workspace(&hook);
    daily(&w, &[1, 2, 3]);
    assert_eq!(w.run(&["--monitor", "--check-alerts"]).code, 2);
    assert_eq!(hook.take(), [("open".into(), "missing_backup".into())]);
    assert_eq!(
        w.run(&["--silence", "docs", "--for", "2d", "--reason", "move"])
            .code,
        0
    );
    at(&mut w, ts(NOW) + Duration::hours(1));
    daily(&w, &[0]);
    let (run, doc) = w.run_json(&["--monitor", "--check-alerts"]);
    assert_eq!(run.code, 0);
    assert!(problems(&doc, "missing_backup").is_empty());
    assert!(
        hook.take().is_empty(),
        "resolved while silenced: not announced"
    );
    let unfinished: i64 = w.store_value("SELECT COUNT(*) FROM alerts WHERE finished_at IS NULL");
    assert_eq!(unfinished, 0, "nothing is left to tell of it");

    let end = w.run(&["--unsilence", "1"]);
    assert_eq!(end.code, 0, "{}", end.stderr);
    assert!(end.stdout.contains("ended silence #1 (docs)"));
    assert_eq!(w.run(&["--check-alerts"]).code, 0);
    assert!(hook.take().is_empty(), "nor told once the silence ended");
    let (_, list) = w.run_json(&["--silences"]);
    assert_eq!(list["silences"], serde_json::json!([]));
    let actions: i64 = w.store_value(
        "SELECT COUNT(*) FROM lifecycle_actions WHERE action IN ('silence', 'unsilence')",
    );
    assert_eq!(actions, 2);
}

#[test]
fn unknown_ids_paths_and_selectors_exit_3_naming_what_exists() {
    let hook = Recorder::start();
    let w = workspace(&hook);
    let names = daily(&w, &[1, 2]);
    let (_, doc) = w.run_json(&["--monitor"]);
    let id = problems(&doc, "missing_backup")[0]["id"].as_i64().unwrap();

    let run = w.run(&["--ack", "999", "--reason", "x"]);
    assert_eq!(run.code, 3);
    assert!(
        run.stderr.contains("no open problem #999"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains(&format!("#{id} missing_backup at docs")),
        "{}",
        run.stderr
    );

    let (run, doc) = w.run_json(&["--ack", "999", "--reason", "x"]);
    assert_eq!(
        (run.code, &doc["exit_code"], &doc["status"]),
        (3, &Value::from(3), &Value::from("unknown"))
    );
    assert!(
        doc["message"]
            .as_str()
            .unwrap()
            .contains("no open problem #999")
    );
    let run = w.run(&["--ack", "999", "--reason", "x", "--format", "nagios"]);
    assert_eq!(run.code, 3);
    assert!(
        run.stdout
            .starts_with("BACKUP UNKNOWN - no open problem #999"),
        "{}",
        run.stdout
    );

    let run = w.run(&["--accept", "nope.zip", "--reason", "x"]);
    assert_eq!(run.code, 3);
    assert!(
        run.stderr.contains("no recorded backup nope.zip"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains(&names[0]),
        "names the backups there are: {}",
        run.stderr
    );

    let run = w.run(&["--silence", "nowhere", "--for", "1h", "--reason", "x"]);
    assert_eq!(run.code, 3);
    assert!(
        run.stderr.contains("unknown location nowhere")
            && run.stderr.contains("known locations: docs"),
        "{}",
        run.stderr
    );
    let run = w.run(&["--silence", "*/nope", "--for", "1h", "--reason", "x"]);
    assert_eq!(run.code, 3);
    assert!(
        run.stderr.contains("missing_backup"),
        "names the kinds: {}",
        run.stderr
    );
    let run = w.run(&["--unsilence", "42"]);
    assert_eq!(run.code, 3);
    assert!(
        run.stderr
            .contains("no silence #42 in force; there are none in force"),
        "{}",
        run.stderr
    );

    // --reason is required, and nothing was written by the refused actions.
    assert_eq!(w.run(&["--ack", &id.to_string()]).code, 3);
    assert_eq!(w.run(&["--ack", &id.to_string(), "--reason", " "]).code, 3);
    let written: i64 = w.store_value("SELECT COUNT(*) FROM lifecycle_actions");
    assert_eq!(written, 0);
}

#[test]
fn health_degraded_gives_way_while_the_real_problem_is_alerted() {
    let hook = Recorder::start();
    let mut w = workspace(&hook);
    daily(&w, &[1, 2, 3]);
    assert_eq!(w.run(&["--monitor"]).code, 2);
    seed_health(&w, Severity::Warning, ts(NOW));
    let (_, doc) = w.run_json(&["--check-alerts"]);
    assert_eq!(hook.take(), [("open".into(), "missing_backup".into())]);
    assert_eq!(problems(&doc, "health_degraded").len(), 1, "still listed");
    assert_eq!(suppressed(&doc), 1);

    // The backup is back: the missing backup is told resolved; the health score, scored
    // during the outage, waits for the next --report to score it again.
    at(&mut w, ts(NOW) + Duration::hours(1));
    daily(&w, &[0]);
    let (_, doc) = w.run_json(&["--monitor", "--check-alerts"]);
    assert_eq!(hook.take(), [("resolve".into(), "missing_backup".into())]);
    assert!(problems(&doc, "missing_backup").is_empty());
    assert_eq!(problems(&doc, "health_degraded").len(), 1, "still listed");
    // Scored again and still low: health_degraded is now what there is to read.
    at(&mut w, ts(NOW) + Duration::hours(2));
    seed_health(&w, Severity::Warning, ts(NOW) + Duration::hours(2));
    w.run_json(&["--check-alerts"]);
    assert_eq!(hook.take(), [("open".into(), "health_degraded".into())]);
}

#[test]
fn actions_run_on_their_own() {
    let hook = Recorder::start();
    let w = workspace(&hook);
    let run = w.run(&["--monitor", "--silences"]);
    assert_eq!(run.code, 3);
    assert!(run.stderr.contains("run on their own"), "{}", run.stderr);
    let run = w.run(&["--reason", "why"]);
    assert_eq!(run.code, 3);
    assert!(
        run.stderr.contains("--reason and --for go with"),
        "{}",
        run.stderr
    );
}

#[test]
fn quiet_prints_nothing_when_all_is_well_and_the_summary_otherwise() {
    let hook = Recorder::start();
    let mut w = workspace(&hook);
    daily(&w, &[1, 2]);
    let run = w.run(&["--monitor", "-q"]);
    assert_eq!(run.code, 2);
    assert!(run.stdout.contains("missing_backup"), "{}", run.stdout);
    daily(&w, &[0]);
    at(&mut w, ts(NOW) + Duration::hours(1));
    let run = w.run(&["--monitor", "-q"]);
    assert_eq!(run.code, 0, "{}", run.stdout);
    assert_eq!(run.stdout, "", "cron mails only when something is wrong");
    let (run, doc) = w.run_json(&["--monitor", "-q"]);
    assert_eq!(
        (run.code, &doc["status"]),
        (0, &Value::from("ok")),
        "JSON is always printed"
    );
}

#[test]
fn accepting_does_not_close_a_sidecar_mismatch_and_says_so() {
    let hook = Recorder::start();
    let w = workspace(&hook);
    let names = daily(&w, &[0, 1]);
    let wrong = "0".repeat(64);
    std::fs::write(
        w.path(&format!("docs/{}.sha256", names[0])),
        format!("{wrong}  {}\n", names[0]),
    )
    .unwrap();
    let (run, doc) = w.run_json(&["--monitor", "--verify"]);
    assert_eq!(run.code, 2);
    assert_eq!(problems(&doc, "sidecar_mismatch").len(), 1, "{doc:#}");
    let accept = w.run(&["--accept", &names[0], "--reason", "looks fine to me"]);
    assert_eq!(accept.code, 0, "{}", accept.stderr);
    assert!(
        accept.stdout.contains("its sidecar_mismatch stays open"),
        "{}",
        accept.stdout
    );
    let (_, doc) = w.run_json(&["--status"]);
    assert_eq!(
        problems(&doc, "sidecar_mismatch").len(),
        1,
        "the sidecar is the evidence"
    );
}

#[test]
fn a_health_score_of_an_outage_that_is_over_waits_for_the_next_report() {
    // Last night's --report scored the outage (health_degraded, held back while the
    // missing backup was alerted); at 02:15 the backups are back and the hourly
    // --check-alerts closes missing_backup. The score is the outage's: it is not paged
    // as NEW CRITICAL then, but once the next --report has scored it again.
    let hook = Recorder::start();
    let mut w = workspace(&hook);
    let night = ts(NOW) - Duration::hours(7);
    seed_health(&w, Severity::Critical, night);
    let store = w.open_store();
    let loc = store
        .upsert_location(
            "docs",
            &w.path("docs").display().to_string(),
            "generic",
            night,
        )
        .unwrap();
    let missing = Problem::new(
        Kind::MissingBackup,
        Severity::Critical,
        "docs",
        "overdue: 3 daily slots missed",
    );
    store
        .sync_problems(Operation::Monitor, Some(loc), &[missing], &|_| true, night)
        .unwrap();
    let recovered = ts(NOW) - Duration::hours(1);
    store
        .sync_problems(Operation::Monitor, Some(loc), &[], &|_| true, recovered)
        .unwrap();
    drop(store);
    let (run, doc) = w.run_json(&["--check-alerts"]);
    assert!(run.code <= 2, "{}", run.stderr);
    let told = hook.take();
    assert!(
        !told.iter().any(|(_, kind)| kind == "health_degraded"),
        "the outage's score was paged: {told:?}"
    );
    assert!(suppressed(&doc) >= 1, "{doc:#}");
    // The next --report scores it again: told then.
    at(&mut w, ts(NOW) + Duration::hours(1));
    seed_health(&w, Severity::Warning, ts(NOW) + Duration::hours(1));
    let (run, _) = w.run_json(&["--check-alerts"]);
    assert!(run.code <= 2, "{}", run.stderr);
    assert_eq!(hook.take(), [("open".into(), "health_degraded".into())]);
}

#[test]
fn repeats_due_within_hours_of_each_other_go_out_in_one_message() {
    // One dead job, two problems opened an hour apart: their daily repeats paged twice a
    // night, an hour apart. The later one now goes with the earlier one's message.
    let hook = Recorder::start();
    let mut w = workspace(&hook);
    let store_problem = |w: &Workspace, kind: Kind, at: DateTime<Utc>| {
        let store = w.open_store();
        let loc = store
            .upsert_location("docs", &w.path("docs").display().to_string(), "generic", at)
            .unwrap();
        store.record_location_scan(loc, true, None, at).unwrap();
        let mut open = store
            .open_problems(None, Some(&[loc]))
            .unwrap()
            .into_iter()
            .map(|p| p.problem)
            .collect::<Vec<_>>();
        open.push(Problem::new(
            kind,
            Severity::Critical,
            "docs",
            kind.as_str(),
        ));
        store
            .sync_problems(Operation::Monitor, Some(loc), &open, &|_| true, at)
            .unwrap();
    };
    let t0 = ts(NOW);
    store_problem(&w, Kind::MissingBackup, t0);
    at(&mut w, t0);
    w.run_json(&["--check-alerts"]);
    assert_eq!(hook.take(), [("open".into(), "missing_backup".into())]);
    store_problem(&w, Kind::NoBackups, t0 + Duration::hours(1));
    at(&mut w, t0 + Duration::hours(1));
    w.run_json(&["--check-alerts"]);
    assert_eq!(hook.take(), [("open".into(), "no_backups".into())]);
    // A day on: the first is due, the second an hour later — one message with both.
    let before = hook.received.lock().unwrap().len();
    at(&mut w, t0 + Duration::hours(24));
    let (_, doc) = w.run_json(&["--check-alerts"]);
    assert_eq!(
        hook.received.lock().unwrap().len(),
        before + 1,
        "one message"
    );
    let mut told = hook.take();
    told.sort();
    assert_eq!(
        told,
        [
            ("repeat".into(), "missing_backup".into()),
            ("repeat".into(), "no_backups".into())
        ]
    );
    assert_eq!(doc["alerts"]["repeated"], 2, "{doc:#}");
    // And an hour later nothing more.
    at(&mut w, t0 + Duration::hours(25));
    w.run_json(&["--check-alerts"]);
    assert!(hook.take().is_empty());
}

/// Between two `--monitor` runs, an overdue location's count of missed slots and the age
/// of its last backup are said as of the view or the repeat, not as of the last judgement.
#[test]
fn an_overdue_message_is_said_as_of_now_between_monitor_runs() {
    let hook = Recorder::start();
    let mut w = workspace(&hook);
    daily(&w, &[1, 2, 3]);
    let (_, doc) = w.run_json(&["--monitor", "--check-alerts"]);
    let first = problems(&doc, "missing_backup")[0]["message"].clone();
    assert_eq!(
        first,
        "overdue: 1 daily slot missed since 2026-11-21 02:00 (first due 2026-11-21 03:00); the last backup is from 2026-11-20 02:00 (1d10h ago)"
    );
    assert_eq!(hook.take(), [("open".into(), "missing_backup".into())]);

    // A day later, before the next --monitor: the repeat and the status count two slots.
    at(&mut w, ts(NOW) + Duration::hours(25));
    let expected = "overdue: 2 daily slots missed since 2026-11-21 02:00 (first due 2026-11-21 03:00); the last backup is from 2026-11-20 02:00 (2d11h ago)";
    let (_, status) = w.run_json(&["--status"]);
    assert_eq!(problems(&status, "missing_backup")[0]["message"], expected);
    let (_, doc) = w.run_json(&["--check-alerts"]);
    assert_eq!(problems(&doc, "missing_backup")[0]["message"], expected);
    let sent = hook.received.lock().unwrap().clone();
    let alerts: Vec<&Value> = sent
        .iter()
        .flat_map(|p| p["groups"].as_array().unwrap().iter())
        .flat_map(|g| g["alerts"].as_array().unwrap().iter())
        .collect();
    assert_eq!(alerts.len(), 1, "{sent:#?}");
    assert_eq!(alerts[0]["event"], "repeat");
    assert_eq!(alerts[0]["message"], expected, "{sent:#?}");
    // The next --monitor judges the same.
    let (_, doc) = w.run_json(&["--monitor"]);
    assert_eq!(problems(&doc, "missing_backup")[0]["message"], expected);
}

/// The text of every alert of `event` received since the last `take`, by kind.
fn messages(hook: &Recorder, event: &str) -> Vec<(String, String)> {
    let text = |a: &Value, field: &str| a[field].as_str().unwrap_or("").to_string();
    hook.drain()
        .iter()
        .filter(|a| a["event"] == event)
        .map(|a| (text(a, "kind"), text(a, "message")))
        .collect()
}

/// Backups of Nov 1 to 4, checked on Nov 4: the start of an outage.
fn checked_until_nov_4(hook: &Recorder) -> Workspace {
    let mut w = workspace(hook);
    daily(&w, &[20, 19, 18, 17]);
    at(&mut w, day(17) + Duration::hours(4));
    assert_eq!(w.run(&["--monitor", "--check-alerts"]).code, 0);
    w
}

/// How the outage from Nov 5 to the backup of Nov 20 is told once it is over.
const OUTAGE_NOV_5_TO_20: &str = "15 daily slots missed from 2026-11-05 02:00 to 2026-11-20 02:00 (15d); backups resumed after it";

/// An outage that two backups ended before the next run (a catch-up and the night's) is
/// closed as the gap it was, counted from its first missed slot, not left saying
/// "overdue" in its resolved notice and in the store.
#[test]
fn a_long_outage_ended_by_two_backups_is_told_as_the_gap_it_was() {
    let hook = Recorder::start();
    let mut w = checked_until_nov_4(&hook);
    at(&mut w, day(10) + Duration::hours(4));
    let run = w.run(&["--monitor", "--check-alerts"]);
    assert_eq!(run.code, 2, "{}", run.stdout);
    assert_eq!(hook.take(), [("open".into(), "missing_backup".into())]);
    // A catch-up at 20:00 the day before, and the night's backup.
    w.write_file(
        "docs/docs_20261120_200000.zip",
        b"catch-up",
        ts("2026-11-20T20:05:00Z"),
    );
    daily(&w, &[0]);
    at(&mut w, ts(NOW));
    assert_eq!(w.run(&["--monitor", "--check-alerts"]).code, 0);
    let gap = OUTAGE_NOV_5_TO_20;
    assert_eq!(
        messages(&hook, "resolve"),
        [("missing_backup".to_string(), gap.to_string())]
    );
    assert_eq!(
        w.store_column::<String>("SELECT message FROM problems WHERE kind = 'missing_backup'"),
        [gap]
    );
}

/// While the monitor itself was down, a location missed backups for longer than the
/// window: when both are back, the outage is recorded closed and told once, as a gap no
/// run saw. A first run over old, sparse backups announces nothing of the kind.
#[test]
fn an_outage_no_run_saw_that_began_before_the_window_is_told_once() {
    let hook = Recorder::start();
    let mut w = checked_until_nov_4(&hook);
    // Nothing runs for two weeks; then backups and the monitor resume.
    daily(&w, &[1, 0]);
    at(&mut w, ts(NOW));
    assert_eq!(w.run(&["--monitor", "--check-alerts"]).code, 0);
    let gap = OUTAGE_NOV_5_TO_20;
    assert_eq!(
        messages(&hook, "resolve"),
        [("missing_backup".to_string(), gap.to_string())]
    );
    // Told once: the next runs find it known.
    for hours in [1, 25] {
        if hours == 25 {
            daily(&w, &[-1]);
        }
        at(&mut w, ts(NOW) + Duration::hours(hours));
        assert_eq!(w.run(&["--monitor", "--check-alerts"]).code, 0);
        assert_eq!(messages(&hook, "resolve"), []);
    }
    assert_eq!(
        w.store_column::<i64>("SELECT COUNT(*) FROM problems WHERE kind = 'missing_backup'"),
        [1]
    );

    // The same backups met by a first run: nothing is announced.
    let hook2 = Recorder::start();
    let mut fresh = workspace(&hook2);
    daily(&fresh, &[20, 19, 18, 17, 1, 0]);
    at(&mut fresh, ts(NOW));
    assert_eq!(fresh.run(&["--monitor", "--check-alerts"]).code, 0);
    assert_eq!(messages(&hook2, "resolve"), []);
}

/// A location unreadable for one run (an NFS mount away, a wrong key for a bucket)
/// settles nothing but its unavailability: its overdue backup and a corrupt archive's
/// problem stay open under the same ids, acknowledged as they were, with no resolved
/// notice, and are still open when it is read again.
#[test]
fn a_location_unreadable_for_a_run_keeps_its_problems_open() {
    let hook = Recorder::start();
    let mut w = workspace(&hook);
    // Zips that are not zips: each tested one is archive_corrupt. Nothing for last night.
    daily(&w, &[3, 2]);
    let run = w.run(&["--monitor", "--test-restore", "--check-alerts"]);
    assert_eq!(run.code, 2, "{}", run.stdout);
    let open = |w: &Workspace| -> Vec<(i64, String)> {
        w.store_rows("SELECT id, kind FROM problems WHERE resolved_at IS NULL ORDER BY id")
    };
    let before = open(&w);
    let kinds: Vec<&str> = before.iter().map(|(_, k)| k.as_str()).collect();
    assert!(
        kinds.contains(&"missing_backup") && kinds.contains(&"archive_corrupt"),
        "{before:?}"
    );
    let ack = before[0].0.to_string();
    let acked = w.run(&["--ack", &ack, "--reason", "mount being moved"]);
    assert_eq!(acked.code, 0, "{}", acked.stderr);
    hook.take();

    std::fs::rename(w.path("docs"), w.path("docs.away")).unwrap();
    at(&mut w, ts(NOW) + Duration::hours(1));
    let run = w.run(&["--monitor", "--test-restore", "--check-alerts"]);
    assert_eq!(run.code, 2, "{}", run.stdout);
    let during = open(&w);
    assert!(
        during.iter().any(|(_, k)| k == "location_unavailable"),
        "{during:?}"
    );
    for p in &before {
        assert!(
            during.contains(p),
            "{p:?} closed while unreadable: {during:?}"
        );
    }
    assert!(
        !hook.take().iter().any(|(event, _)| event == "resolve"),
        "nothing was resolved"
    );

    std::fs::rename(w.path("docs.away"), w.path("docs")).unwrap();
    at(&mut w, ts(NOW) + Duration::hours(2));
    let run = w.run(&["--monitor", "--test-restore", "--check-alerts"]);
    assert_eq!(run.code, 2, "{}", run.stdout);
    assert_eq!(open(&w), before, "the same problems, the same ids");
    let acked: i64 = w.store_value(&format!(
        "SELECT COUNT(*) FROM acks WHERE problem_id = {ack}"
    ));
    assert_eq!(acked, 1);
    // Only what the outage itself opened is resolved.
    assert_eq!(
        hook.take(),
        [
            ("resolve".to_string(), "location_unavailable".to_string()),
            ("resolve".to_string(), "restore_untested".to_string())
        ]
    );
}
