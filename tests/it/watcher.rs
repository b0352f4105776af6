//! Who watches the watcher, through the binary: `monitor_stale` when the nightly job
//! stops, `--status` showing when each location was last checked and the last run, and
//! the Healthchecks-style heartbeat received by a real HTTP server on 127.0.0.1.

use crate::common::{Workspace, ts};
use chrono::{DateTime, Duration, Utc};
use std::sync::{Arc, Mutex};

const NOW: &str = "2026-11-21T12:00:00Z";

/// Every request a loopback server received: (path, body).
struct Pings {
    port: u16,
    received: Arc<Mutex<Vec<(String, String)>>>,
    _server: Arc<tiny_http::Server>,
}

impl Pings {
    fn start() -> Pings {
        let server = Arc::new(tiny_http::Server::http("127.0.0.1:0").expect("bind loopback"));
        let port = server.server_addr().to_ip().expect("ip").port();
        let received = Arc::new(Mutex::new(Vec::new()));
        let (s, r) = (server.clone(), received.clone());
        std::thread::spawn(move || {
            for mut request in s.incoming_requests() {
                let mut body = String::new();
                let _ = request.as_reader().read_to_string(&mut body);
                r.lock().unwrap().push((request.url().to_string(), body));
                let _ = request.respond(tiny_http::Response::from_string("OK"));
            }
        });
        Pings {
            port,
            received,
            _server: server,
        }
    }

    fn take(&self) -> Vec<(String, String)> {
        std::mem::take(&mut *self.received.lock().unwrap())
    }
}

fn workspace(extra_monitoring: &str) -> Workspace {
    let mut w = Workspace::new();
    w.now = Some(ts(NOW));
    w.write_config(&format!(
        "timezone: UTC\nlogging: {{ file: null }}\nmonitoring:\n  max_run_age: 26h\n{extra_monitoring}backups:\n  locations:\n    - name: db\n      path: db\n      schedule: daily\n      at: \"02:00\"\n      min_free_space: 0%\n"
    ));
    for d in 0..3 {
        let t = ts("2026-11-21T02:00:00Z") - Duration::days(d);
        w.write_file(
            &format!("db/db_{}.sql", t.format("%Y%m%d_%H%M%S")),
            b"-- dump\n",
            t,
        );
    }
    w
}

fn at(w: &mut Workspace, t: DateTime<Utc>) {
    w.now = Some(t);
}

#[test]
fn a_nightly_job_that_stops_turns_status_critical() {
    let mut w = workspace("");
    assert_eq!(w.run(&["--monitor"]).code, 0);
    at(&mut w, ts(NOW) + Duration::hours(2));
    let (run, doc) = w.run_json(&["--status"]);
    assert_eq!(run.code, 0, "{doc:#}");
    assert_eq!(
        doc["locations"][0]["last_checked"],
        "2026-11-21T12:00:00+00:00"
    );
    assert_eq!(doc["last_run"]["exit_code"], 0);
    assert_eq!(doc["last_run"]["started_at"], "2026-11-21T12:00:00Z");

    // The job stops: 17 days later the plugin check must not say OK.
    at(&mut w, ts(NOW) + Duration::days(17));
    let nagios = w.run(&["--status", "--format", "nagios"]);
    assert_eq!(nagios.code, 2, "{}", nagios.stdout);
    assert!(
        nagios.stdout.starts_with("BACKUP CRITICAL"),
        "{}",
        nagios.stdout
    );
    assert!(nagios.stdout.contains("monitor_stale"), "{}", nagios.stdout);
    let (_, doc) = w.run_json(&["--status"]);
    let stale: Vec<_> = doc["problems"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["kind"] == "monitor_stale")
        .collect();
    assert_eq!(stale.len(), 1, "{doc:#}");
    let message = stale[0]["message"].as_str().unwrap();
    assert!(
        message.contains("not checked by --monitor since 2026-11-21 12:00 (17d ago"),
        "{message}"
    );

    // --check-alerts judges and stores it; the next --monitor resolves it.
    let (run, doc) = w.run_json(&["--check-alerts"]);
    assert_eq!(run.code, 2, "{doc:#}");
    assert!(run.kinds().contains(&"monitor_stale".to_string()));
    let run = w.run(&["--monitor", "--check-alerts"]);
    assert!(!run.stdout.contains("monitor_stale"), "{}", run.stdout);
    let (_, doc) = w.run_json(&["--status"]);
    assert!(
        doc["problems"]
            .as_array()
            .unwrap()
            .iter()
            .all(|p| p["kind"] != "monitor_stale"),
        "{doc:#}"
    );
}

/// A stopped job's `monitor_stale` is one problem through the reports that follow: the
/// same id, opened when first found, its acknowledgement kept (a report's health
/// judgement is not the staleness judgement's to resolve), and `--status` shows it so.
#[test]
fn a_stale_location_stays_one_problem_through_later_reports_and_status() {
    let mut w = workspace("");
    assert_eq!(w.run(&["--monitor"]).code, 0);
    let stale = |doc: &serde_json::Value| -> Vec<(i64, String, bool)> {
        doc["problems"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|p| p["kind"] == "monitor_stale")
            .map(|p| {
                (
                    p["id"].as_i64().unwrap(),
                    p["opened_at"].as_str().unwrap().to_string(),
                    p["acknowledged"].as_bool().unwrap(),
                )
            })
            .collect()
    };
    at(&mut w, ts(NOW) + Duration::days(17));
    let (run, doc) = w.run_json(&["--report"]);
    assert!(run.code < 3, "{}", run.stderr);
    let first = stale(&doc);
    assert_eq!(first.len(), 1, "{doc:#}");
    let (id, opened, _) = first[0].clone();
    assert_eq!(opened, "2026-12-08T12:00:00+00:00");
    let ack = w.run(&["--ack", &id.to_string(), "--reason", "host being rebuilt"]);
    assert_eq!(ack.code, 0, "{}", ack.stderr);
    for hours in [1, 2] {
        at(
            &mut w,
            ts(NOW) + Duration::days(17) + Duration::hours(hours),
        );
        let (run, doc) = w.run_json(&["--report"]);
        assert!(run.code < 3, "{}", run.stderr);
        assert_eq!(stale(&doc), [(id, opened.clone(), true)], "{doc:#}");
    }
    // `--status` judges staleness as of now, on the stored problem: its id, opening time
    // and acknowledgement, with today's message.
    at(&mut w, ts(NOW) + Duration::days(18));
    let (run, doc) = w.run_json(&["--status"]);
    assert!(run.code < 3, "{}", run.stderr);
    assert_eq!(stale(&doc), [(id, opened, true)], "{doc:#}");
    let message = doc["problems"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["kind"] == "monitor_stale")
        .and_then(|p| p["message"].as_str())
        .unwrap_or_default();
    assert!(message.contains("(18d ago"), "{message}");
}

#[test]
fn heartbeat_pings_start_and_end_with_the_exit_code_and_the_summary() {
    let pings = Pings::start();
    let url = format!("http://127.0.0.1:{}/ping/secret-uuid", pings.port);
    let w = workspace(&format!("  heartbeat_url: \"{url}\"\n"));
    let run = w.run(&["--monitor"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let got = pings.take();
    assert_eq!(got.len(), 2, "{got:?}");
    assert_eq!(got[0].0, "/ping/secret-uuid/start");
    assert_eq!(got[1].0, "/ping/secret-uuid/0");
    assert!(
        got[1].1.contains("LOCATION"),
        "the summary is the body: {:?}",
        got[1].1
    );
    assert!(!run.stdout.contains("secret-uuid") && !run.stderr.contains("secret-uuid"));

    // A critical run pings /2; --status takes no lock and pings nothing.
    std::fs::remove_file(w.path("db/db_20261121_020000.sql")).unwrap();
    assert_eq!(w.run(&["--monitor"]).code, 2);
    let got = pings.take();
    assert_eq!(got.last().unwrap().0, "/ping/secret-uuid/2", "{got:?}");
    w.run(&["--status"]);
    assert!(pings.take().is_empty());
}

#[test]
fn a_dead_heartbeat_endpoint_is_a_warning_not_a_failure() {
    // Nothing listens on this port: bind and drop to find a free one.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let w = workspace(&format!(
        "  heartbeat_url: \"http://127.0.0.1:{port}/ping/secret-uuid\"\n"
    ));
    let run = w.run(&["--monitor"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stderr.contains("heartbeat ping"), "{}", run.stderr);
    assert!(!run.stderr.contains("secret-uuid"), "{}", run.stderr);
}
