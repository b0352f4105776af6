//! Fleet alerts through the binary: `--check-alerts --fleet` / `--host NAME` on machines
//! sharing one PostgreSQL store (`BM_TEST_PG_URL`), every machine's webhook pointing at
//! one loopback receiver that records what it is sent. Each notice must reach it once,
//! whichever run (a fleet run, another fleet run at the same time, or a host's own
//! `--check-alerts`) sends it. Skipped when no test server is configured.

use crate::common::{TestDatabase, Workspace, test_pg_url, ts};
use crate::fleet::{NOW, backup, finish, machine, spawn};
use crate::support::HookSink;
use serde_json::Value;
use std::time::Duration;

fn line_key(a: &Value) -> String {
    format!(
        "{} {}/{} {}",
        a["event"].as_str().unwrap_or(""),
        a["host"].as_str().unwrap_or("-"),
        a["location"].as_str().unwrap_or("-"),
        a["kind"].as_str().unwrap_or("")
    )
}

/// The config lines of a webhook to `sink` (and no log channel).
fn hook(sink: &HookSink) -> String {
    hook_at(sink.port)
}

fn hook_at(port: u16) -> String {
    format!(
        "alerts:\n  log: {{ enabled: false }}\n  webhook:\n    enabled: true\n    url: http://127.0.0.1:{port}/hook\n"
    )
}

/// Every alert line the receiver got since the last call, as `event host/location kind`.
fn received(sink: &HookSink) -> Vec<String> {
    let mut out = Vec::new();
    for (_, payload) in sink.take() {
        out.extend(lines(&payload).iter().map(line_key));
    }
    out.sort();
    out
}

fn lines(payload: &Value) -> Vec<Value> {
    payload["groups"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|g| g["alerts"].as_array().cloned().unwrap_or_default())
        .collect()
}

/// The `alerts` counters of a run document: (sent, repeated, resolved).
fn counters(doc: &Value) -> (u64, u64, u64) {
    let n = |k: &str| doc["alerts"][k].as_u64().unwrap_or(0);
    (n("sent"), n("repeated"), n("resolved"))
}

#[test]
fn fleet_alerts_cover_every_host_once_host_narrows_and_a_stopped_host_resolves() {
    let Some(_) = test_pg_url() else { return };
    let db = TestDatabase::create();
    let sink = HookSink::start();
    let alpha = machine("alpha", &db.url, &hook(&sink));
    let mut beta = machine("beta", &db.url, &hook(&sink));
    let gamma = machine("gamma", &db.url, &hook(&sink));
    // alpha and gamma have no backups (no_backups, critical); beta checked its good
    // backup ten days ago and stopped.
    assert_eq!(alpha.run(&["--monitor"]).code, 2);
    assert_eq!(gamma.run(&["--monitor"]).code, 2);
    beta.now = Some(ts(NOW) - chrono::Duration::days(10));
    beta.write_file(
        "db/db_20261111_110000.sql",
        b"-- dump\n",
        ts(NOW) - chrono::Duration::days(10) - chrono::Duration::hours(1),
    );
    assert_eq!(beta.run(&["--monitor"]).code, 0);
    assert!(
        received(&sink).is_empty(),
        "nothing sent without --check-alerts"
    );

    // --host narrows to one host, from any machine: only beta's staleness, naming beta.
    let (run, doc) = alpha.run_json(&["--check-alerts", "--host", "beta"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert_eq!(received(&sink), ["open beta/db monitor_stale"]);
    assert_eq!(counters(&doc), (1, 0, 0));
    assert_eq!(doc["locations"].as_array().unwrap().len(), 1, "{doc:#}");
    // It is stored as beta's problem, so it has a history and beta can close it.
    let mut c = db.client();
    let stale_open = |c: &mut postgres::Client| -> i64 {
        c.query_one(
            "SELECT COUNT(*) FROM problems WHERE host = 'beta' AND kind = 'monitor_stale' AND resolved_at IS NULL",
            &[],
        )
        .unwrap()
        .get(0)
    };
    assert_eq!(stale_open(&mut c), 1);
    // The fleet status shows it with its stored id, by which it is acknowledged.
    let stored_id: i64 = c
        .query_one(
            "SELECT id FROM problems WHERE host = 'beta' AND kind = 'monitor_stale' AND resolved_at IS NULL",
            &[],
        )
        .unwrap()
        .get(0);
    let stale_in_status = |ws: &Workspace| -> serde_json::Value {
        let (_, doc) = ws.run_json(&["--status", "--fleet"]);
        doc["problems"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["kind"] == "monitor_stale")
            .cloned()
            .unwrap_or_else(|| panic!("no monitor_stale: {doc:#}"))
    };
    let shown = stale_in_status(&gamma);
    assert_eq!(shown["id"], stored_id, "{shown:#}");
    assert_eq!(shown["acknowledged"], false, "{shown:#}");
    let id = stored_id.to_string();
    // Acknowledged on beta's own machine (a host's actions are its own problems').
    let ack = beta.run(&["--ack", &id, "--reason", "beta is being rebuilt"]);
    assert_eq!(ack.code, 0, "{}", ack.stderr);
    assert_eq!(stale_in_status(&gamma)["acknowledged"], true);

    // The fleet: every host's problems, each told once (beta's was told already).
    let (run, doc) = alpha.run_json(&["--check-alerts", "--fleet"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    crate::schema::assert_valid(&crate::schema::run_schema(), &doc);
    assert_eq!(
        received(&sink),
        ["open alpha/db no_backups", "open gamma/db no_backups"]
    );
    assert_eq!(counters(&doc), (2, 0, 0));
    let hosts: Vec<&str> = doc["locations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["host"].as_str().unwrap())
        .collect();
    assert_eq!(hosts, ["alpha", "beta", "gamma"]);

    // Right after, from another machine: nothing new to say.
    let (run, doc) = gamma.run_json(&["--check-alerts", "--fleet"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(received(&sink).is_empty());
    assert_eq!(counters(&doc), (0, 0, 0));
    // Nor does a host's own run repeat what a fleet run told.
    let (run, doc) = gamma.run_json(&["--check-alerts"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(received(&sink).is_empty());
    assert_eq!(counters(&doc), (0, 0, 0));

    // The fleet status lists the open alerts of every host, each naming its host.
    let (_, doc) = alpha.run_json(&["--status", "--fleet"]);
    crate::schema::assert_valid(&crate::schema::run_schema(), &doc);
    let mut open: Vec<String> = doc["open_alerts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            format!(
                "{}/{} {}",
                a["host"].as_str().unwrap(),
                a["location"].as_str().unwrap(),
                a["kind"].as_str().unwrap()
            )
        })
        .collect();
    open.sort();
    assert_eq!(
        open,
        [
            "alpha/db no_backups",
            "beta/db monitor_stale",
            "gamma/db no_backups"
        ]
    );
    let text = alpha.run(&["--status", "--fleet"]).stdout;
    assert!(text.contains("beta/db monitor_stale"), "{text}");
    // A host's own status is as before: its own alerts, no host field.
    let (_, doc) = gamma.run_json(&["--status"]);
    let own = doc["open_alerts"].as_array().unwrap();
    assert_eq!(own.len(), 1);
    assert!(own[0].get("host").is_none(), "{doc:#}");

    // beta runs again: its own run closes the staleness and tells the resolution itself,
    // in the same alert stream (the dedup key the fleet run used).
    sink.take();
    beta.now = Some(ts(NOW));
    backup(&beta, "db_20261121_110000.sql");
    let (run, doc) = beta.run_json(&["--monitor", "--check-alerts"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(stale_open(&mut c), 0);
    assert_eq!(counters(&doc), (0, 0, 1));
    let payloads = sink.take();
    assert_eq!(payloads.len(), 1);
    let resolved = &lines(&payloads[0].1)[0];
    assert_eq!(resolved["event"], "resolve");
    assert_eq!(resolved["kind"], "monitor_stale");
    assert!(
        resolved.get("host").is_none(),
        "beta's own message, as on one host"
    );
    // The fleet run that follows has nothing left to say about beta.
    let (run, _) = alpha.run_json(&["--check-alerts", "--fleet"]);
    assert_eq!(
        run.code, 2,
        "alpha and gamma still have no backups: {}",
        run.stderr
    );
    assert!(received(&sink).is_empty());
}

/// The log channel's lines of a fleet run name each problem's host with its location.
#[test]
fn a_fleet_runs_log_lines_name_the_host() {
    let Some(_) = test_pg_url() else { return };
    let db = TestDatabase::create();
    let alpha = machine("alpha", &db.url, "");
    let beta = machine("beta", &db.url, "");
    assert_eq!(beta.run(&["--monitor"]).code, 2, "beta's db has no backups");
    let run = alpha.run(&["--check-alerts", "--host", "beta"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    let line = run
        .stderr
        .lines()
        .find(|l| l.contains("[NEW CRITICAL] no_backups"))
        .unwrap_or_else(|| panic!("no alert line: {}", run.stderr));
    assert!(line.contains("location=beta/db"), "{line}");
}

#[test]
fn a_fleet_message_names_each_host_and_keeps_its_hosts_dedup_key() {
    let Some(_) = test_pg_url() else { return };
    let db = TestDatabase::create();
    let sink = HookSink::start();
    let mut alpha = machine("alpha", &db.url, &hook(&sink));
    let beta = machine("beta", &db.url, &hook(&sink));
    assert_eq!(beta.run(&["--monitor"]).code, 2);
    backup(&alpha, "db_20261121_110000.sql");
    assert_eq!(alpha.run(&["--monitor"]).code, 0);
    // beta's own run tells its problem first; remember the key it used.
    assert_eq!(beta.run(&["--check-alerts"]).code, 2);
    let own = sink.take();
    assert_eq!(own.len(), 1);
    let own_line = &lines(&own[0].1)[0];
    assert!(
        own_line.get("host").is_none(),
        "a host's own message is as before"
    );
    assert_eq!(own[0].1["groups"][0]["title"], "db");
    let key = own_line["dedup_key"].clone();

    // A day later, past the cooldown: the fleet run repeats it, naming beta.
    alpha.now = Some(ts(NOW) + chrono::Duration::hours(25));
    let (run, doc) = alpha.run_json(&["--check-alerts", "--host", "beta"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert_eq!(counters(&doc), (0, 1, 0));
    let fleet = sink.take();
    assert_eq!(fleet.len(), 1);
    let payload = &fleet[0].1;
    assert!(
        payload["subject"]
            .as_str()
            .unwrap()
            .contains("beta/db: no_backups"),
        "{payload:#}"
    );
    let line = &lines(payload)[0];
    assert_eq!(line["event"], "repeat");
    assert_eq!(line["host"], "beta");
    assert_eq!(
        line["dedup_key"], key,
        "one stream: the same key as beta's own"
    );
}

#[test]
fn two_fleet_runs_and_a_hosts_own_run_at_once_send_each_notice_exactly_once() {
    let Some(_) = test_pg_url() else { return };
    let db = TestDatabase::create();
    // Every receiver answers after 1.5 s: a second run started at the same time is
    // sure to look at the same alerts while the first is sending them.
    let sink = HookSink::answering_after(Duration::from_millis(1500));
    // Six hosts, each with a location without backups; h0 sends its own alerts too.
    let hosts: Vec<Workspace> = (0..6)
        .map(|i| {
            machine(
                &format!("h{i}"),
                &db.url,
                &if i == 0 {
                    hook_at(sink.port)
                } else {
                    String::new()
                },
            )
        })
        .collect();
    for h in &hosts {
        assert_eq!(h.run(&["--monitor"]).code, 2);
    }
    // Two watching machines start their fleet runs at the same moment.
    let one = machine("watch1", &db.url, &hook_at(sink.port));
    let two = machine("watch2", &db.url, &hook_at(sink.port));
    let a = spawn(&one, &["--check-alerts", "--fleet", "--format", "json"]);
    let b = spawn(&two, &["--check-alerts", "--fleet", "--format", "json"]);
    let c = spawn(&hosts[0], &["--check-alerts", "--format", "json"]);
    let (code_a, out_a, err_a) = finish(a);
    let (code_b, out_b, err_b) = finish(b);
    let (code_c, out_c, err_c) = finish(c);
    assert_eq!(code_a, 2, "{err_a}");
    assert_eq!(code_b, 2, "{err_b}");
    assert_eq!(code_c, 2, "{err_c}");
    // Every alert line received, as `event host/location kind` and by `dedup_key`.
    let alerts: Vec<Value> = sink.take().iter().flat_map(|(_, p)| lines(p)).collect();
    let mut received_lines: Vec<String> = alerts.iter().map(line_key).collect();
    received_lines.sort();
    let mut keys: Vec<String> = alerts
        .iter()
        .map(|a| a["dedup_key"].as_str().unwrap_or("").to_string())
        .collect();
    keys.sort();
    // h0's notice comes from a fleet run (naming h0) or from h0's own (as on one host).
    let mut lines = received_lines.clone();
    lines.retain(|l| l != "open -/db no_backups");
    lines.push("open h0/db no_backups".into());
    lines.sort();
    lines.dedup();
    let expected: Vec<String> = (0..6).map(|i| format!("open h{i}/db no_backups")).collect();
    assert_eq!(lines, expected);
    assert_eq!(
        keys.len(),
        6,
        "each notice once, in total: {received_lines:?}"
    );
    keys.dedup();
    assert_eq!(keys.len(), 6, "one key per problem, whoever sent it");
    let doc_a: Value = serde_json::from_str(&out_a).unwrap();
    let doc_b: Value = serde_json::from_str(&out_b).unwrap();
    let doc_c: Value = serde_json::from_str(&out_c).unwrap();
    assert_eq!(
        counters(&doc_a).0 + counters(&doc_b).0 + counters(&doc_c).0,
        6,
        "the counters count what each run sent"
    );
    for doc in [&doc_a, &doc_b, &doc_c] {
        assert_eq!(
            doc["alerts"]["suppressed"], 0,
            "what the other run sent is not suppressed"
        );
    }
    let mut c = db.client();
    let deliveries: i64 = c
        .query_one(
            "SELECT COUNT(*) FROM alert_deliveries WHERE success = 1",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(deliveries, 6, "the run that sent recorded it, once");
    let claims: i64 = c
        .query_one("SELECT COUNT(*) FROM alert_claims", &[])
        .unwrap()
        .get(0);
    assert_eq!(
        claims, 0,
        "every claim given up once its notice was recorded"
    );

    // A second fleet run right after sends nothing new.
    let (run, doc) = one.run_json(&["--check-alerts", "--fleet"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(received(&sink).is_empty(), "still six notices in total");
    assert_eq!(counters(&doc), (0, 0, 0));
}

/// A fleet run on `machine_name` that claims the notices due now and hangs sending them
/// to a server that never answers (`alerts.timeout` 6 s), until killed.
fn hanging_fleet_run(machine_name: &str, url: &str) -> (Workspace, std::process::Child) {
    let (silent, connected) = crate::fleet::silent_webhook();
    let ws = machine(machine_name, url, &silent);
    let child = spawn(&ws, &["--check-alerts", "--fleet"]);
    connected
        .recv_timeout(Duration::from_secs(60))
        .expect("the run reaches its webhook");
    (ws, child)
}

#[test]
fn a_claim_stands_while_its_run_lives_and_goes_with_a_killed_or_expired_one() {
    let Some(_) = test_pg_url() else { return };
    let db = TestDatabase::create();
    let sink = HookSink::start();
    let h0 = machine("h0", &db.url, "");
    assert_eq!(h0.run(&["--monitor"]).code, 2);
    let mut other = machine("watch2", &db.url, &hook(&sink));

    // watch1 holds h0's notice while it hangs: another machine leaves it alone.
    let (_w1, mut dying) = hanging_fleet_run("watch1", &db.url);
    let (run, doc) = other.run_json(&["--check-alerts", "--fleet"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(received(&sink).is_empty());
    assert_eq!(counters(&doc), (0, 0, 0));
    assert_eq!(
        doc["alerts"]["suppressed"], 0,
        "another run's notice is not suppressed"
    );
    // Killed: its claim goes with its connection, and the notice goes out once.
    dying.kill().expect("SIGKILL");
    let _ = dying.wait();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let (run, doc) = other.run_json(&["--check-alerts", "--fleet"]);
        assert_eq!(run.code, 2, "{}", run.stderr);
        if counters(&doc).0 == 1 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "still claimed");
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(received(&sink), ["open h0/db no_backups"]);

    // A run that is alive but stuck past its claim's lifetime (12 × its 6 s timeout)
    // does not hold the notice any longer.
    let h1 = machine("h1", &db.url, "");
    assert_eq!(h1.run(&["--monitor"]).code, 2);
    let (_w3, mut stuck) = hanging_fleet_run("watch3", &db.url);
    let (run, doc) = other.run_json(&["--check-alerts", "--fleet"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert_eq!(
        counters(&doc),
        (0, 0, 0),
        "h1's notice is held, h0's was told"
    );
    other.now = Some(ts(NOW) + chrono::Duration::seconds(73));
    let (run, doc) = other.run_json(&["--check-alerts", "--fleet"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert_eq!(counters(&doc), (1, 0, 0));
    assert_eq!(received(&sink), ["open h1/db no_backups"]);
    stuck.kill().expect("SIGKILL");
    let _ = stuck.wait();
}

/// A fleet run stores `monitor_stale` for each location of every host that stopped
/// checking. What it only finds again is refreshed for all hosts at once: a fleet of six
/// stopped hosts costs the store as many statements as a fleet of two (on a shared store
/// each is a round trip, and a fleet has a thousand hosts).
#[test]
fn a_fleet_run_refreshes_six_stopped_hosts_in_as_many_statements_as_two() {
    let Some(_) = test_pg_url() else { return };
    let counts: Vec<u64> = [2, 6]
        .iter()
        .map(|&n| {
            let db = TestDatabase::create();
            for i in 0..n {
                let mut host = machine(&format!("h{i}"), &db.url, "");
                host.now = Some(ts(NOW) - chrono::Duration::days(3));
                let run = host.run(&["--monitor"]);
                assert!(run.code < 3, "{}", run.stderr);
            }
            let checker = machine("checker", &db.url, "");
            backup(&checker, "db_20261121_110000.sql");
            assert_eq!(checker.run(&["--monitor"]).code, 0);
            let fleet = || {
                let run = checker.run(&["--check-alerts", "--fleet", "-vv", "--format", "json"]);
                assert!(run.code < 3, "{}", run.stderr);
                let doc: Value = serde_json::from_str(&run.stdout).unwrap();
                let stale: Vec<&str> = doc["problems"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .filter(|p| p["kind"] == "monitor_stale")
                    .filter_map(|p| p["host"].as_str())
                    .collect();
                assert_eq!(stale.len(), n, "{stale:?}");
                run
            };
            fleet();
            let again = fleet();
            // Found again: each stored once, seen by both runs.
            let seen: Vec<i64> = db
                .client()
                .query(
                    "SELECT runs_seen FROM problems WHERE kind = 'monitor_stale' AND resolved_at IS NULL",
                    &[],
                )
                .unwrap()
                .iter()
                .map(|r| r.get(0))
                .collect();
            assert_eq!(seen, vec![2; n]);
            crate::monitor::statements_sent(&again)
        })
        .collect();
    assert_eq!(
        counts[0], counts[1],
        "the second fleet run's statements with 2 and with 6 stopped hosts"
    );
}

/// A run of `host` (location `db`, empty) on a machine of its own, started at `started`
/// after the host checked its location at `checked`, that hangs holding its host's lock:
/// stopped (SIGSTOP, as a run stuck on a dead NFS mount stands still) while it sends an
/// alert to a webhook that never answers. Killed when this goes.
struct HungRun {
    child: std::process::Child,
}

impl HungRun {
    fn start(
        host: &str,
        url: &str,
        checked: chrono::DateTime<chrono::Utc>,
        started: chrono::DateTime<chrono::Utc>,
    ) -> HungRun {
        let (silent, connected) = crate::fleet::silent_webhook();
        let mut ws = machine(host, url, &silent);
        ws.now = Some(checked);
        assert_eq!(ws.run(&["--monitor"]).code, 2, "{host}'s db has no backups");
        let child = ws
            .process()
            .env("BACKUP_MONITOR_NOW", started.to_rfc3339())
            .args(["--verify", "--check-alerts"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("spawn the run");
        let run = HungRun { child };
        connected
            .recv_timeout(Duration::from_secs(60))
            .expect("the run reaches its webhook");
        let stopped = std::process::Command::new("kill")
            .args(["-STOP", &run.child.id().to_string()])
            .status()
            .expect("kill -STOP");
        assert!(stopped.success());
        // The run's workspace (its config) may go: the stopped process reads nothing more.
        drop(ws);
        run
    }
}

impl Drop for HungRun {
    fn drop(&mut self) {
        // SIGKILL ends a stopped process too.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A host's run that hangs holding its lock keeps the host from checking its locations,
/// and must not also keep that from being alerted: once the run has been going for
/// longer than `monitoring.max_run_age`, a fleet run judges and stores the host's
/// `monitor_stale` without the lock, naming the run, and alerts it. A host whose run has
/// been going for less is left to judge itself, as before. When the hung run is gone,
/// the host's own `--monitor` resolves it.
#[test]
fn a_run_hung_for_longer_than_max_run_age_does_not_keep_its_hosts_staleness_from_alerts() {
    let Some(_) = test_pg_url() else { return };
    let db = TestDatabase::create();
    let sink = HookSink::start();
    let ops = machine("ops", &db.url, &hook(&sink));
    // web11 checked three days ago, and its next run (ten minutes later) hangs since
    // then. web12 checked 26.5 hours ago (stale now, not yet when its run started), and
    // its run hangs since an hour ago: for less than max_run_age (26 h).
    let checked = ts(NOW) - chrono::Duration::days(3);
    let web11 = HungRun::start(
        "web11",
        &db.url,
        checked,
        checked + chrono::Duration::minutes(10),
    );
    let _web12 = HungRun::start(
        "web12",
        &db.url,
        ts(NOW) - chrono::Duration::minutes(26 * 60 + 30),
        ts(NOW) - chrono::Duration::hours(1),
    );
    let stale_alerts = |sink: &HookSink| -> Vec<String> {
        received(sink)
            .into_iter()
            .filter(|l| l.ends_with("monitor_stale"))
            .collect()
    };
    let (run, doc) = ops.run_json(&["--check-alerts", "--fleet", "-v"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert_eq!(stale_alerts(&sink), ["open web11/db monitor_stale"]);
    let stale_of = |doc: &Value, host: &str| -> Value {
        doc["problems"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["kind"] == "monitor_stale" && p["host"] == host)
            .cloned()
            .unwrap_or_else(|| panic!("no monitor_stale of {host}: {doc:#}"))
    };
    // Stored (an id to acknowledge it by), naming the run that holds the lock.
    let shown = stale_of(&doc, "web11");
    assert_ne!(shown["id"], 0, "{shown:#}");
    let message = shown["message"].as_str().unwrap();
    assert!(
        message.starts_with("host web11 has not checked it since 2026-11-18 12:00")
            && message.contains("a run of web11 (pid ")
            && message.contains(
                "has been going since 2026-11-18 12:10, holding its lock: is that run stuck?"
            ),
        "{message}"
    );
    // web12's run is young: web12 is judged live (no id) and left alone, as said at -v.
    assert_eq!(stale_of(&doc, "web12")["id"], 0);
    assert!(
        run.stderr
            .contains("not judged for monitor_stale this time, a run of theirs is going on: web12"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("web11: a run of web11 (pid ")
            && run
                .stderr
                .contains("its staleness is stored without its lock"),
        "{}",
        run.stderr
    );
    let mut c = db.client();
    let stale_open = |c: &mut postgres::Client, host: &str| -> i64 {
        c.query_one(
            "SELECT COUNT(*) FROM problems WHERE host = $1 AND kind = 'monitor_stale' AND resolved_at IS NULL",
            &[&host],
        )
        .unwrap()
        .get(0)
    };
    assert_eq!(stale_open(&mut c, "web11"), 1);
    assert_eq!(stale_open(&mut c, "web12"), 0);
    // The next fleet run finds it again: no second notice, the same message.
    let (run, doc) = ops.run_json(&["--check-alerts", "--fleet"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(stale_alerts(&sink).is_empty());
    assert_eq!(stale_of(&doc, "web11")["message"], message);
    assert_eq!(stale_open(&mut c, "web11"), 1);
    // The hung run gone, web11's own --monitor resolves it, and a fleet run says so.
    drop(web11);
    let web11 = machine("web11", &db.url, "");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let run = web11.run(&["--monitor"]);
        if run.code != 3 {
            assert_eq!(run.code, 2, "{}", run.stderr);
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "still locked: {}",
            run.stderr
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(stale_open(&mut c, "web11"), 0);
    let (run, _) = ops.run_json(&["--check-alerts", "--fleet"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert_eq!(stale_alerts(&sink), ["resolve web11/db monitor_stale"]);
}
