//! The fleet report through the binary: several hosts on one PostgreSQL store, one of
//! them writing `--report --fleet` (HTML overview and host sections, CSV, JSON, and the
//! fleet Prometheus textfile with a `host` label); `--host` narrowing it; the missing
//! slots each host stores appearing in the fleet views. Skipped without a test server.

use crate::common::{TestDatabase, Workspace, test_pg_url, ts};
use crate::fleet::{NOW, backup, machine};
use serde_json::Value;

const REPORTING: &str = "reporting:\n  output_dir: reports\n  formats: [html, csv, json]\n  prometheus_textfile: metrics/bm.prom\n";

/// alpha (fine, writes the reports), beta (its newest backup three days old: missed
/// slots) and gamma (stopped ten days ago), all with a location `db`.
fn fleet(db: &TestDatabase) -> (Workspace, Workspace, Workspace) {
    let alpha = machine("alpha", &db.url, REPORTING);
    let beta = machine("beta", &db.url, "");
    let mut gamma = machine("gamma", &db.url, "");
    backup(&alpha, "db_20261121_110000.sql");
    beta.write_file(
        "db/db_20261118_110000.sql",
        b"-- dump\n",
        ts(NOW) - chrono::Duration::days(3),
    );
    let run = beta.run(&["--monitor"]);
    assert_eq!(run.code, 2, "beta misses its slots: {}", run.stderr);
    gamma.now = Some(ts(NOW) - chrono::Duration::days(10));
    gamma.write_file(
        "db/db_20261111_110000.sql",
        b"-- dump\n",
        ts(NOW) - chrono::Duration::days(10) - chrono::Duration::hours(1),
    );
    assert_eq!(gamma.run(&["--monitor"]).code, 0);
    (alpha, beta, gamma)
}

fn json_file(ws: &Workspace, rel: &str) -> Value {
    let text = std::fs::read_to_string(ws.path(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"));
    serde_json::from_str(&text).unwrap()
}

fn rows<'a>(doc: &'a Value, key: &str) -> &'a Vec<Value> {
    doc[key].as_array().unwrap()
}

#[test]
fn the_fleet_report_covers_every_host_with_an_overview_sections_and_a_labelled_textfile() {
    let Some(_) = test_pg_url() else { return };
    let db = TestDatabase::create();
    let (alpha, beta, _gamma) = fleet(&db);
    // beta's people acknowledge its missed slots.
    let (_, own) = beta.run_json(&["--status"]);
    let acked = own["problems"][0]["id"].as_i64().unwrap().to_string();
    let run = beta.run(&["--ack", &acked, "--reason", "backup server moved"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    // A normal recorded run of alpha (its own monitor, its own exit code); the report widens.
    let (run, doc) = alpha.run_json(&["--monitor", "--report", "--fleet"]);
    assert_eq!(run.code, 0, "alpha itself is fine: {}", run.stderr);
    assert_eq!(doc["locations"].as_array().unwrap().len(), 1, "{doc:#}");
    let written: Vec<&str> = rows(&doc, "reports")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(
        written
            .iter()
            .any(|p| p.ends_with("reports/fleet_latest.html"))
            && written.iter().any(|p| p.ends_with("metrics/bm-fleet.prom")),
        "{written:?}"
    );
    // Names that do not collide with the host's own report: that one is not written.
    assert!(!alpha.path("reports/latest.json").exists());
    let snapshots: Vec<String> = std::fs::read_dir(alpha.path("reports"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("fleet_health_"))
        .collect();
    assert_eq!(snapshots.len(), 3, "html, csv and json: {snapshots:?}");

    // JSON: every host, the same location name on three hosts as three locations.
    let report = json_file(&alpha, "reports/fleet_latest.json");
    assert_eq!(report["host"], "alpha");
    assert_eq!(report["fleet"], true);
    let hosts: Vec<&str> = rows(&report, "hosts")
        .iter()
        .map(|h| h["host"].as_str().unwrap())
        .collect();
    assert_eq!(hosts, ["alpha", "beta", "gamma"]);
    assert_eq!(
        crate::fleet::host_name_status(&report),
        [
            ("alpha", "db", "ok"),
            ("beta", "db", "critical"),
            ("gamma", "db", "critical")
        ],
        "{report:#}"
    );
    let beta_db = &rows(&report, "locations")[1];
    assert!(
        !beta_db["missing_slots"].as_array().unwrap().is_empty(),
        "beta stored its missing slots: {beta_db:#}"
    );
    assert_eq!(beta_db["schedule"], "daily");
    assert!(
        rows(&report, "problems")
            .iter()
            .all(|p| p["host"].is_string())
    );
    let stale: Vec<&Value> = rows(&report, "problems")
        .iter()
        .filter(|p| p["kind"] == "monitor_stale")
        .collect();
    assert_eq!(stale.len(), 1, "{report:#}");
    assert_eq!(stale[0]["host"], "gamma");
    assert_eq!(rows(&report, "hosts")[2]["stale"], true);
    let marked: Vec<&Value> = rows(&report, "problems")
        .iter()
        .filter(|p| p["acknowledged"] == true)
        .collect();
    assert_eq!(marked.len(), 1, "{report:#}");
    assert_eq!(marked[0]["host"], "beta");
    assert_eq!(marked[0]["id"].as_i64().unwrap().to_string(), acked);
    assert_eq!(rows(&report, "hosts")[0]["stale"], false);

    // HTML: the overview links each host's section.
    let html = std::fs::read_to_string(alpha.path("reports/fleet_latest.html")).unwrap();
    let overview = html.find("Hosts and locations").expect("overview");
    for (i, host) in ["alpha", "beta", "gamma"].iter().enumerate() {
        let section = html
            .find(&format!("<section id=\"host-{}\"", i + 1))
            .unwrap_or_else(|| panic!("no section for {host}"));
        assert!(section > overview, "the overview comes first");
        assert!(html.contains(&format!("<h2>Host {host} ")), "{host}");
        assert!(html.contains(&format!("href=\"#host-{}\"", i + 1)));
    }
    assert!(
        html.contains("monitor_stale") && html.contains("is backup-monitor still running on gamma")
    );
    assert!(
        html.contains(&format!("#{acked} <em>(acknowledged)</em>")),
        "beta's acknowledged problem is marked"
    );

    // CSV: one row per location, with its host.
    let csv = std::fs::read_to_string(alpha.path("reports/fleet_latest.csv")).unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert!(lines[0].starts_with("host,location,"), "{csv}");
    assert_eq!(lines.len(), 4, "{csv}");
    assert!(lines[2].starts_with("beta,db,"), "{csv}");

    // Prometheus: the host's own textfile is as on a single host; the fleet one labels
    // every series with its host and passes promtool.
    let own = std::fs::read_to_string(alpha.path("metrics/bm.prom")).unwrap();
    assert!(!own.contains("host=\""), "{own}");
    assert!(own.contains("backup_monitor_location_status{location=\"db\"} 0"));
    let fleet = std::fs::read_to_string(alpha.path("metrics/bm-fleet.prom")).unwrap();
    for line in fleet.lines().filter(|l| !l.starts_with('#')) {
        assert!(line.contains("{host=\""), "{line}");
    }
    for host in ["alpha", "beta"] {
        assert!(
            fleet.contains(&format!(
                "backup_monitor_location_status{{host=\"{host}\",location=\"db\"}}"
            )),
            "{fleet}"
        );
    }
    assert!(
        fleet.contains("backup_monitor_location_status{host=\"gamma\",location=\"db\"} 2"),
        "a stopped host's locations are critical: {fleet}"
    );
    assert!(
        fleet.contains(
            "backup_monitor_expected_interval_seconds{host=\"beta\",location=\"db\"} 86400"
        ),
        "from beta's stored state: {fleet}"
    );
    if std::path::Path::new("/usr/bin/promtool").exists() {
        let out = std::process::Command::new("/usr/bin/promtool")
            .args(["check", "metrics"])
            .stdin(std::fs::File::open(alpha.path("metrics/bm-fleet.prom")).unwrap())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn host_narrows_the_fleet_report_and_stored_missing_slots_reach_the_fleet_status() {
    let Some(_) = test_pg_url() else { return };
    let db = TestDatabase::create();
    let (alpha, beta, gamma) = fleet(&db);

    let run = alpha.run(&["--monitor", "--report", "--host", "beta"]);
    assert_eq!(run.code, 0, "alpha's own exit code: {}", run.stderr);
    let report = json_file(&alpha, "reports/fleet_beta_latest.json");
    assert_eq!(report["fleet"], false);
    let hosts: Vec<&str> = rows(&report, "locations")
        .iter()
        .map(|l| l["host"].as_str().unwrap())
        .collect();
    assert_eq!(hosts, ["beta"], "{report:#}");
    assert!(
        rows(&report, "problems")
            .iter()
            .all(|p| p["host"] == "beta")
    );
    assert!(alpha.path("reports/fleet_beta_latest.html").exists());
    assert!(alpha.path("metrics/bm-fleet_beta.prom").exists());
    assert!(!alpha.path("reports/fleet_latest.json").exists());

    let run = alpha.run(&["--monitor", "--report", "--host", "zeta"]);
    assert_eq!(run.code, 3);
    assert!(
        run.stderr.contains("zeta") && run.stderr.contains("alpha, beta, gamma"),
        "{}",
        run.stderr
    );

    // The missing slots beta stored, seen from alpha: the same as beta's own status.
    let (_, own) = beta.run_json(&["--status"]);
    let (run, doc) = alpha.run_json(&["--status", "--fleet"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    let beta_db = rows(&doc, "locations")
        .iter()
        .find(|l| l["host"] == "beta")
        .unwrap();
    assert!(
        !beta_db["missing_slots"].as_array().unwrap().is_empty(),
        "{doc:#}"
    );
    assert_eq!(
        beta_db["missing_slots"],
        own["locations"][0]["missing_slots"]
    );
    // gamma's as it stored them ten days ago (its own status then says the same).
    let (_, own) = gamma.run_json(&["--status"]);
    let gamma_db = rows(&doc, "locations")
        .iter()
        .find(|l| l["host"] == "gamma")
        .unwrap();
    assert_eq!(
        gamma_db["missing_slots"],
        own["locations"][0]["missing_slots"]
    );
}

#[test]
fn on_a_single_hosts_store_the_fleet_report_is_that_host_and_its_own_textfile_stays() {
    // A host name is text from a config: escaped in the HTML, kept in the JSON.
    const HOST: &str = "solo<b>";
    // Whatever the engine (SQLite unless the suite runs on PostgreSQL).
    let mut ws = Workspace::new();
    ws.now = Some(ts(NOW));
    ws.write_config(&format!(
        "host: \"{HOST}\"\ntimezone: UTC\nlogging: {{ file: null }}\n\
         backups:\n  locations:\n    - {{ name: db, path: db, type: database, min_free_space: 0 }}\n{REPORTING}"
    ));
    ws.write_file(
        "db/db_20261121_110000.sql",
        b"-- dump\n",
        ts(NOW) - chrono::Duration::hours(1),
    );
    assert_eq!(ws.run(&["--monitor", "--report"]).code, 0);
    let own = std::fs::read_to_string(ws.path("metrics/bm.prom")).unwrap();
    let run = ws.run(&["--monitor", "--report", "--fleet"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    // Both reports side by side; the host's own textfile as its last run wrote it.
    assert!(ws.path("reports/latest.html").exists());
    assert!(ws.path("reports/fleet_latest.html").exists());
    // (The disk figures are the test machine's, which other work changes meanwhile.)
    let steady = |text: &str| -> Vec<String> {
        text.lines()
            .filter(|l| {
                !l.starts_with("backup_monitor_disk_free")
                    && !l.starts_with("backup_monitor_backups_until_full")
            })
            .map(String::from)
            .collect()
    };
    let after = std::fs::read_to_string(ws.path("metrics/bm.prom")).unwrap();
    assert_eq!(
        steady(&own),
        steady(&after),
        "the host's own textfile is unchanged by --fleet"
    );
    let report = json_file(&ws, "reports/fleet_latest.json");
    assert_eq!(report["locations"][0]["host"], HOST);
    let html = std::fs::read_to_string(ws.path("reports/fleet_latest.html")).unwrap();
    assert!(
        html.contains("solo&lt;b&gt;") && !html.contains(HOST),
        "{html}"
    );
    assert_eq!(report["locations"][0]["backups_present"], 1);
    assert_eq!(report["locations"][0]["schedule"], "daily");
    let fleet = std::fs::read_to_string(ws.path("metrics/bm-fleet.prom")).unwrap();
    assert!(
        fleet.contains("backup_monitor_backups_present{host=\"solo<b>\",location=\"db\"} 1"),
        "{fleet}"
    );
    assert!(fleet.contains("backup_monitor_last_run_timestamp_seconds{host=\"solo<b>\"} "));
}

/// `beta`'s `--monitor --verify` on each of the three nights before the clock
/// (`before_night` first, given the night's number), then alpha's fleet report, as JSON.
fn three_nights_then_the_fleet_report(
    alpha: &Workspace,
    beta: &mut Workspace,
    before_night: impl Fn(&Workspace, i32),
) -> Value {
    for night in 0..3 {
        before_night(beta, night);
        beta.now = Some(ts(NOW) - chrono::Duration::days(1) * (2 - night));
        let run = beta.run(&["--monitor", "--verify"]);
        assert!(run.code < 3, "night {night}: {}", run.stderr);
    }
    let run = alpha.run(&["--monitor", "--report", "--fleet"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    json_file(alpha, "reports/fleet_latest.json")
}

/// Two hosts on a fresh database (kept while it is held): `alpha`, which reports, with
/// one backup, and `beta`. None without a test PostgreSQL.
fn alpha_reporting_and_beta() -> Option<(TestDatabase, Workspace, Workspace)> {
    test_pg_url()?;
    let db = TestDatabase::create();
    let alpha = machine("alpha", &db.url, REPORTING);
    backup(&alpha, "db_20261121_110000.sql");
    let beta = machine("beta", &db.url, "");
    Some((db, alpha, beta))
}

/// A host that re-hashes its backups every night: the fleet report counts every check,
/// lists the failure first and then the newest, and takes each location's last good
/// verification from the newest night that passed one.
#[test]
fn nightly_re_hashes_are_counted_and_the_failure_listed_first_in_the_fleet_report() {
    let Some((_db, alpha, mut beta)) = alpha_reporting_and_beta() else {
        return;
    };
    let day = chrono::Duration::days(1);
    let names = [
        "db_20261116_020000.sql",
        "db_20261117_020000.sql",
        "db_20261118_020000.sql",
    ];
    for (k, name) in names.iter().enumerate() {
        beta.write_file(
            &format!("db/{name}"),
            b"-- dump\n",
            ts(NOW) - day * (5 - k as i32),
        );
    }
    // Three nights: first sights, then every backup passes, then the oldest is damaged
    // (same size and mtime, other bytes).
    let report = three_nights_then_the_fleet_report(&alpha, &mut beta, |beta, night| {
        if night == 2 {
            beta.write_file(&format!("db/{}", names[0]), b"-- dumq\n", ts(NOW) - day * 5);
        }
    });

    let beta_summary = &rows(&report, "hosts")[1];
    assert_eq!(beta_summary["host"], "beta");
    let counts: Vec<(&str, u64)> = rows(&beta_summary["verification_summary"], "results")
        .iter()
        .map(|r| (r["result"].as_str().unwrap(), r["count"].as_u64().unwrap()))
        .collect();
    let mut sorted = counts.clone();
    sorted.sort();
    assert_eq!(
        sorted,
        [("failed", 1), ("passed", 5), ("recorded", 3)],
        "{beta_summary:#}"
    );
    assert_eq!(beta_summary["verification_summary"]["total"], 9);

    let listed: Vec<(&str, &str, chrono::DateTime<chrono::Utc>)> = rows(&report, "verifications")
        .iter()
        .filter(|c| c["host"] == "beta")
        .map(|c| {
            (
                c["path"].as_str().unwrap(),
                c["result"].as_str().unwrap(),
                c["at"].as_str().unwrap().parse().unwrap(),
            )
        })
        .collect();
    let results: Vec<&str> = listed.iter().map(|c| c.1).collect();
    assert_eq!(
        results,
        [
            "failed", "passed", "passed", "passed", "passed", "passed", "recorded", "recorded",
            "recorded"
        ],
        "{listed:?}"
    );
    assert_eq!(listed[0].0, names[0], "the damaged backup");
    assert_eq!(listed[0].2, ts(NOW));
    assert!(listed[1..3].iter().all(|c| c.2 == ts(NOW)), "{listed:?}");
    assert!(
        listed[3..6].iter().all(|c| c.2 == ts(NOW) - day),
        "{listed:?}"
    );

    let beta_db = rows(&report, "locations")
        .iter()
        .find(|l| l["host"] == "beta")
        .unwrap();
    assert_eq!(beta_db["verification_failures"], 1, "{beta_db:#}");
    let last: chrono::DateTime<chrono::Utc> = beta_db["last_passed_verification"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(last, ts(NOW), "the last night passed two of three");
}

/// Past its ten listed checks a host's summary says which results were left out, by
/// result, as a host's own report does.
#[test]
fn the_checks_a_host_section_leaves_out_are_counted_by_result() {
    let Some((_db, alpha, mut beta)) = alpha_reporting_and_beta() else {
        return;
    };
    let day = chrono::Duration::days(1);
    for k in 0..4 {
        beta.write_file(
            &format!("db/db_2026111{k}_020000.sql"),
            b"-- dump\n",
            ts(NOW) - day * (8 - k),
        );
    }
    // Three nights over four backups: 4 first sights, then 8 passes.
    let report = three_nights_then_the_fleet_report(&alpha, &mut beta, |_, _| {});
    let beta_summary = &rows(&report, "hosts")[1];
    assert_eq!(
        beta_summary["verification_summary"]["total"], 12,
        "{beta_summary:#}"
    );
    let listed = rows(&report, "verifications")
        .iter()
        .filter(|c| c["host"] == "beta")
        .count();
    assert_eq!(listed, 10);
    let left: Vec<(&str, u64)> = rows(&beta_summary["verification_summary"], "not_listed")
        .iter()
        .map(|r| (r["result"].as_str().unwrap(), r["count"].as_u64().unwrap()))
        .collect();
    // Listed: no failure, so the newest ten (8 passes, 2 of the first sights).
    assert_eq!(left, [("recorded", 2)], "{beta_summary:#}");
}
