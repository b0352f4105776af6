//! `--report` as users run it: a store built by real `--monitor` runs over temp dirs,
//! then the HTML, CSV, JSON and Prometheus files checked for content, escaping and
//! atomic replacement.

use crate::common;

use common::{Workspace, ts};
use std::collections::HashMap;
use std::path::Path;

const CONFIG: &str = r#"
timezone: Europe/Berlin
backups:
  locations:
    - name: db
      path: db
      type: database
      patterns: ["*.sql"]
      recursive: true
      schedule: daily
      at: "02:00"
    - name: site
      path: site
      type: website
      schedule: daily
      at: "03:00"
reporting:
  formats: [csv, json, html]
  prometheus_textfile: metrics/backup_monitor.prom
logging: { file: null }
"#;

const HOSTILE_HTML: &str = "<script>alert(1)</script>.sql";
const HOSTILE_CSV: &str = "=cmd|' calc'!A0.sql";

/// Daily dumps 10–20 November except the 15th, site archives 18–20 November, and two
/// files with hostile names; `--monitor` as of 20 November 12:00 UTC.
fn workspace() -> Workspace {
    let mut ws = Workspace::new();
    ws.write_config(CONFIG);
    for day in 10..=20 {
        if day == 15 {
            continue;
        }
        let name = format!("db/db_202611{day}_020000.sql");
        let body = vec![b'x'; 1000 + day as usize * 10];
        ws.write_file(&name, &body, ts(&format!("2026-11-{day}T02:30:00Z")));
    }
    for day in 18..=20 {
        let name = format!("site/site_202611{day}_030000.tar.gz");
        ws.write_file(&name, b"site", ts(&format!("2026-11-{day}T03:30:00Z")));
    }
    // Names without a date: their mtimes (16th and 17th) are their timestamps.
    ws.write_file(
        &format!("db/{HOSTILE_HTML}"),
        b"x",
        ts("2026-11-16T10:00:00Z"),
    );
    ws.write_file(
        &format!("db/{HOSTILE_CSV}"),
        b"y",
        ts("2026-11-17T10:00:00Z"),
    );
    ws.now = Some(ts("2026-11-20T12:00:00Z"));
    let run = ws.run(&["--monitor", "--days", "14"]);
    // The 15th is a gap (backups came after it): history, in missing_slots and the
    // calendar, not an open problem.
    assert_eq!(
        run.code, 1,
        "only the two tiny hostile files warn\n{}\n{}",
        run.stdout, run.stderr
    );
    ws
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn report_files(ws: &Workspace) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(ws.path("reports"))
        .map(|d| {
            d.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

#[test]
fn report_writes_every_format_and_lists_them() {
    let ws = workspace();
    let (run, doc) = ws.run_json(&["--report", "--days", "14"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    // Stamps are in the configured zone: 12:00 UTC is 13:00 in Berlin.
    assert_eq!(
        report_files(&ws),
        [
            "backup_health_20261120_130000.csv",
            "backup_health_20261120_130000.html",
            "backup_health_20261120_130000.json",
            "latest.csv",
            "latest.html",
            "latest.json",
        ],
        "no temp files are left behind"
    );
    let listed: Vec<&str> = doc["reports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_str().unwrap())
        .collect();
    assert_eq!(listed.len(), 7, "{listed:?}");
    for f in &listed {
        assert!(Path::new(f).is_file(), "{f}");
    }
    assert!(
        listed
            .iter()
            .any(|f| f.ends_with("metrics/backup_monitor.prom"))
    );
}

#[test]
fn csv_has_one_row_per_backup_in_the_window() {
    let ws = workspace();
    assert_eq!(ws.run(&["--report", "--days", "14"]).code, 1);
    let text = read(&ws.path("reports/latest.csv"));
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let header: Vec<String> = reader.headers().unwrap().iter().map(String::from).collect();
    for col in [
        "location",
        "path",
        "timestamp",
        "size",
        "checksum",
        "last_verification",
        "last_restore",
    ] {
        assert!(header.iter().any(|h| h == col), "{col} in {header:?}");
    }
    let rows: Vec<HashMap<String, String>> = reader
        .records()
        .map(|r| {
            header
                .iter()
                .cloned()
                .zip(r.unwrap().iter().map(String::from))
                .collect()
        })
        .collect();
    assert_eq!(rows.len(), 10 + 2 + 3);
    let by_path = |p: &str| rows.iter().find(|r| r["path"] == p);
    let dump = by_path("db_20261112_020000.sql").expect("dump row");
    assert_eq!(dump["location"], "db");
    assert_eq!(dump["timestamp"], "2026-11-12T02:00:00+01:00");
    assert_eq!(dump["size"], "1120");
    assert_eq!(dump["last_verification"], "", "nothing verified yet");
    assert_eq!(rows.iter().filter(|r| r["location"] == "site").count(), 3);
    // A cell a spreadsheet would run as a formula is defused; plain text is kept as is.
    assert!(by_path(&format!("'{HOSTILE_CSV}")).is_some(), "{text}");
    assert!(by_path(HOSTILE_CSV).is_none());
    assert!(by_path(HOSTILE_HTML).is_some());
}

#[test]
fn json_carries_the_report_data() {
    let ws = workspace();
    let (_, doc) = ws.run_json(&["--report", "--days", "14"]);
    let latest: serde_json::Value =
        serde_json::from_str(&read(&ws.path("reports/latest.json"))).unwrap();
    let snapshot: serde_json::Value = serde_json::from_str(&read(
        &ws.path("reports/backup_health_20261120_130000.json"),
    ))
    .unwrap();
    assert_eq!(latest, snapshot);
    assert_eq!(latest["generated_at"], "2026-11-20T13:00:00+01:00");
    assert_eq!(latest["window"]["days"], 14);
    assert_eq!(latest["status"], doc["status"]);
    assert_eq!(latest["overall_health"], doc["overall_health"]);
    let locations = latest["locations"].as_array().unwrap();
    assert_eq!(locations.len(), 2);
    let db = &locations[0];
    assert_eq!(db["name"], "db");
    assert_eq!(db["mark"], "d");
    assert_eq!(db["backups_present"], 12);
    assert_eq!(
        db["missing_slots"],
        serde_json::json!(["2026-11-15T02:00:00+01:00"])
    );
    assert_eq!(db["health_score"], doc["locations"][0]["health_score"]);
    assert_eq!(
        db["latest_backup"]["path"], "db_20261120_020000.sql",
        "{db}"
    );
    assert!(db["disk"]["free_bytes"].as_u64().unwrap() > 0, "{db}");
    assert!(db["forecast"]["backups_fit"].as_u64().is_some(), "{db}");
    assert_eq!(db["health_history"][0]["day"], "2026-11-20");
    assert_eq!(locations[1]["mark"], "w");
    assert_eq!(latest["backups"].as_array().unwrap().len(), 15);
    assert_eq!(latest["verifications"], serde_json::json!([]));
    assert_eq!(latest["restore_tests"], serde_json::json!([]));
    let day = |d: &str| {
        latest["calendar"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["date"] == d)
            .cloned()
            .unwrap_or_else(|| panic!("no calendar day {d}"))
    };
    assert_eq!(day("2026-11-18")["marks"], serde_json::json!(["d", "w"]));
    assert_eq!(day("2026-11-12")["marks"], serde_json::json!(["d"]));
    assert_eq!(day("2026-11-15")["marks"], serde_json::json!([]));
    assert_eq!(
        day("2026-11-15")["missing"],
        serde_json::json!(["db 02:00"])
    );
    let kinds: Vec<&str> = latest["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["kind"].as_str().unwrap())
        .collect();
    assert!(
        !kinds.contains(&"missing_backup"),
        "a gap is not open: {kinds:?}"
    );
}

/// The `<td>` of one calendar day.
fn calendar_cell<'a>(html: &'a str, date: &str) -> &'a str {
    let start = html
        .find(&format!("data-date=\"{date}\""))
        .unwrap_or_else(|| panic!("no calendar cell for {date}"));
    let end = html[start..].find("</td>").unwrap() + start;
    &html[start..end]
}

/// The states of a calendar cell's location lines, top to bottom.
fn rows_of(cell: &str) -> Vec<&str> {
    cell.split("class=\"row r-")
        .skip(1)
        .map(|r| &r[..r.find('"').unwrap()])
        .collect()
}

/// The texts of a calendar cell's location lines, top to bottom.
fn row_texts(cell: &str) -> Vec<&str> {
    cell.split("class=\"row r-")
        .skip(1)
        .map(|r| {
            let start = r.find('>').unwrap() + 1;
            &r[start..start + r[start..].find("</span>").unwrap()]
        })
        .collect()
}

#[test]
fn html_is_self_contained_escaped_and_shows_the_calendar() {
    let ws = workspace();
    assert_eq!(ws.run(&["--report", "--days", "14"]).code, 1);
    let html = read(&ws.path("reports/latest.html"));
    for name in ["<h3>db</h3>", "<h3>site</h3>"] {
        assert!(html.contains(name), "card {name}");
    }
    assert!(
        !html.contains("http://") && !html.contains("https://"),
        "no network URLs"
    );
    assert!(
        !html.contains("<link") && !html.contains("src="),
        "no external resources"
    );
    assert!(html.contains("<svg") && html.contains("<style>"));
    // Escaped, never live markup.
    assert!(!html.contains("<script"), "hostile name leaked as markup");
    assert!(
        html.contains("&lt;script&gt;alert(1)&lt;"),
        "escaped name shown"
    );
    // Calendar: one line per location in every day, the missed slot a red mark, today
    // is marked.
    let both = calendar_cell(&html, "2026-11-18");
    assert_eq!(rows_of(both), ["ok", "ok"], "{both}");
    let missed = calendar_cell(&html, "2026-11-15");
    assert_eq!(rows_of(missed), ["missed", "empty"], "{missed}");
    assert!(
        missed.contains("missing: db 02:00"),
        "text, not only colour: {missed}"
    );
    assert!(calendar_cell(&html, "2026-11-20").contains("today"));
    // November 2026 begins on a Sunday: the first week shows dimmed October days.
    assert!(calendar_cell(&html, "2026-10-26").contains("other"));
    assert!(html.contains("id=\"month-2026-11\""));
    assert!(html.contains("@media print"));
    // Only latest.html reloads itself.
    assert!(html.contains(r#"<meta http-equiv="refresh" content="300">"#));
    let snapshot = read(&ws.path("reports/backup_health_20261120_130000.html"));
    assert!(!snapshot.contains("http-equiv=\"refresh\""));
}

#[test]
fn month_links_stay_within_the_page() {
    let ws = workspace();
    assert_eq!(ws.run(&["--report", "--days", "30"]).code, 1);
    let html = read(&ws.path("reports/latest.html"));
    assert!(html.contains("id=\"month-2026-10\""));
    assert!(html.contains("href=\"#month-2026-11\""));
    assert!(html.contains("href=\"#month-2026-10\""));
}

/// Parse a Prometheus text exposition: samples by `name{labels}`, checking that every
/// sample's metric has HELP and TYPE lines before it.
fn parse_prometheus(text: &str) -> HashMap<String, f64> {
    let mut described: HashMap<String, (bool, bool)> = HashMap::new();
    let mut samples = HashMap::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let name = rest.split(' ').next().unwrap();
            described.entry(name.into()).or_default().0 = true;
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let mut parts = rest.split(' ');
            let name = parts.next().unwrap();
            assert_eq!(parts.next(), Some("gauge"), "{line}");
            described.entry(name.into()).or_default().1 = true;
            continue;
        }
        assert!(
            !line.starts_with('#') && !line.is_empty(),
            "stray line `{line}`"
        );
        let (series, value) = line.rsplit_once(' ').expect("`series value`");
        let name = series.split('{').next().unwrap();
        assert!(
            name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
            "metric name `{name}`"
        );
        let labels = &series[name.len()..];
        assert!(
            labels.is_empty() || (labels.starts_with("{location=\"") && labels.ends_with("\"}")),
            "{line}"
        );
        assert_eq!(
            described.get(name),
            Some(&(true, true)),
            "HELP/TYPE before {line}"
        );
        let v: f64 = value
            .parse()
            .unwrap_or_else(|_| panic!("value of `{line}`"));
        assert!(
            samples.insert(series.to_string(), v).is_none(),
            "duplicate {series}"
        );
    }
    samples
}

#[test]
fn prometheus_textfile_has_the_metrics() {
    let ws = workspace();
    assert_eq!(ws.run(&["--report", "--days", "14"]).code, 1);
    let text = read(&ws.path("metrics/backup_monitor.prom"));
    let m = parse_prometheus(&text);
    let get = |k: &str| *m.get(k).unwrap_or_else(|| panic!("no {k} in\n{text}"));
    assert_eq!(
        get("backup_monitor_last_run_timestamp_seconds"),
        ts("2026-11-20T12:00:00Z").timestamp() as f64
    );
    assert_eq!(
        get(r#"backup_monitor_last_backup_timestamp_seconds{location="db"}"#),
        ts("2026-11-20T01:00:00Z").timestamp() as f64
    );
    assert_eq!(
        get(r#"backup_monitor_last_backup_size_bytes{location="db"}"#),
        1200.0
    );
    assert_eq!(
        get(r#"backup_monitor_backups_present{location="db"}"#),
        12.0
    );
    assert_eq!(
        get(r#"backup_monitor_backups_present{location="site"}"#),
        3.0
    );
    assert_eq!(get(r#"backup_monitor_missing_slots{location="db"}"#), 1.0);
    assert_eq!(get(r#"backup_monitor_missing_slots{location="site"}"#), 0.0);
    assert_eq!(
        get(r#"backup_monitor_verification_failures{location="db"}"#),
        0.0
    );
    assert_eq!(
        get(r#"backup_monitor_restore_test_failures{location="site"}"#),
        0.0
    );
    let db_health = get(r#"backup_monitor_health_score{location="db"}"#);
    assert!(db_health > 0.5 && db_health < 1.0, "{db_health}");
    assert_eq!(get(r#"backup_monitor_health_score{location="site"}"#), 1.0);
}

#[test]
fn latest_files_are_replaced_and_snapshots_kept() {
    let mut ws = workspace();
    assert_eq!(ws.run(&["--report", "--days", "14"]).code, 1);
    ws.now = Some(ts("2026-11-21T06:00:00Z"));
    assert_eq!(ws.run(&["--report", "--days", "14"]).code, 1);
    let files = report_files(&ws);
    assert_eq!(files.len(), 9, "{files:?}");
    assert!(files.contains(&"backup_health_20261121_070000.html".to_string()));
    assert!(files.contains(&"backup_health_20261120_130000.html".to_string()));
    let latest: serde_json::Value =
        serde_json::from_str(&read(&ws.path("reports/latest.json"))).unwrap();
    assert_eq!(latest["generated_at"], "2026-11-21T07:00:00+01:00");
    let html = read(&ws.path("reports/latest.html"));
    assert!(html.trim_end().ends_with("</html>"), "complete file");
    assert!(calendar_cell(&html, "2026-11-21").contains("today"));
    let prom = read(&ws.path("metrics/backup_monitor.prom"));
    assert!(prom.contains(&format!(
        "backup_monitor_last_run_timestamp_seconds {}",
        ts("2026-11-21T06:00:00Z").timestamp()
    )));
}

#[test]
fn a_failing_render_writes_nothing() {
    let ws = workspace();
    assert_eq!(ws.run(&["--report", "--days", "14"]).code, 1);
    let before = read(&ws.path("reports/latest.csv"));
    let files_before = report_files(&ws);
    // A broken override template: csv and json render first, then html fails.
    std::fs::create_dir_all(ws.path("tpl")).unwrap();
    std::fs::write(ws.path("tpl/report.html"), "{% for x in %}").unwrap();
    ws.write_config(&CONFIG.replace("reporting:\n", "reporting:\n  templates_dir: tpl\n"));
    let mut later = ws.command();
    later.env("BACKUP_MONITOR_NOW", "2026-11-21T06:00:00Z");
    let run: common::Run = later
        .args(["--report", "--days", "14"])
        .output()
        .unwrap()
        .into();
    assert_eq!(run.code, 3, "{}", run.stderr);
    assert!(run.stderr.contains("report.html"), "{}", run.stderr);
    assert_eq!(report_files(&ws), files_before, "no new or temp files");
    assert_eq!(read(&ws.path("reports/latest.csv")), before);
}

#[test]
fn a_run_that_fails_says_why_once_on_the_terminal_and_in_the_log() {
    let ws = workspace();
    ws.write_config(&CONFIG.replace("logging: { file: null }", "logging: { file: run.log }"));
    assert_eq!(ws.run(&["--report", "--days", "14"]).code, 1);
    std::fs::remove_file(ws.path("reports/latest.json")).unwrap();
    std::fs::create_dir(ws.path("reports/latest.json")).unwrap();
    let run = ws.run(&["--report", "--days", "14"]);
    assert_eq!(run.code, 3, "{}", run.stderr);
    let said: Vec<&str> = run
        .stderr
        .lines()
        .filter(|l| l.contains("latest.json"))
        .collect();
    assert_eq!(said.len(), 1, "told once: {}", run.stderr);
    assert!(said[0].starts_with("error: "), "{}", run.stderr);
    let log = read(&ws.path("run.log"));
    assert!(
        log.lines()
            .any(|l| l.contains(" ERROR ") && l.contains("latest.json")),
        "and in the log: {log}"
    );
}

#[test]
fn a_failing_rename_puts_back_what_it_replaced() {
    let ws = workspace();
    assert_eq!(ws.run(&["--report", "--days", "14"]).code, 1);
    let csv = read(&ws.path("reports/latest.csv"));
    let html = read(&ws.path("reports/latest.html"));
    // latest.json cannot be replaced (a directory stands there): csv's two files and
    // json's snapshot are already renamed into place when that rename fails.
    std::fs::remove_file(ws.path("reports/latest.json")).unwrap();
    std::fs::create_dir(ws.path("reports/latest.json")).unwrap();
    let files_before = report_files(&ws);
    let mut later = ws.command();
    later.env("BACKUP_MONITOR_NOW", "2026-11-21T06:00:00Z");
    let run: common::Run = later
        .args(["--report", "--days", "14", "--format", "json"])
        .output()
        .unwrap()
        .into();
    assert_eq!(run.code, 3, "{}", run.stderr);
    assert!(run.stderr.contains("latest.json"), "{}", run.stderr);
    assert_eq!(
        report_files(&ws),
        files_before,
        "no new, kept or temp files"
    );
    assert_eq!(read(&ws.path("reports/latest.csv")), csv, "put back");
    assert_eq!(read(&ws.path("reports/latest.html")), html);
}

#[test]
fn templates_dir_overrides_by_name_and_formats_select() {
    let ws = workspace();
    std::fs::create_dir_all(ws.path("tpl")).unwrap();
    std::fs::write(
        ws.path("tpl/report.html"),
        "<p>{{ report.locations|length }} locations, {{ report.problems|length }} open</p>",
    )
    .unwrap();
    ws.write_config(&CONFIG.replace(
        "  formats: [csv, json, html]\n",
        "  formats: [html]\n  templates_dir: tpl\n",
    ));
    assert_eq!(ws.run(&["--report", "--days", "14"]).code, 1);
    assert_eq!(
        report_files(&ws),
        ["backup_health_20261120_130000.html", "latest.html"]
    );
    assert_eq!(
        read(&ws.path("reports/latest.html")),
        "<p>2 locations, 2 open</p>"
    );
}

#[test]
fn report_without_any_history_still_renders() {
    let mut ws = Workspace::new();
    ws.write_config(
        "backups:\n  locations:\n    - name: empty\n      path: nowhere\nlogging: { file: null }\n",
    );
    ws.now = Some(ts("2026-11-20T12:00:00Z"));
    let run = ws.run(&["--report"]);
    // Nothing judged yet: the location was never checked by --monitor, which is critical.
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stdout.contains("monitor_stale"), "{}", run.stdout);
    let html = read(&ws.path("reports/latest.html"));
    assert!(html.contains("<h3>empty</h3>"));
    assert!(html.contains("no data yet"));
    let csv = read(&ws.path("reports/latest.csv"));
    assert_eq!(csv.lines().count(), 1, "header only: {csv}");
}

const MIXED: &str = r#"
timezone: UTC
backups:
  locations:
    - name: db
      path: db
      type: database
      schedule: daily
      at: "02:00"
    - name: files
      path: files
      type: files
      schedule: daily
      at: "04:00"
    - name: wal
      path: wal
      type: database
      schedule: hourly
    - name: site
      path: site
      type: website
      schedule: weekly
      at: "sun 03:00"
reporting:
  formats: [json, html]
logging: { file: null }
"#;

/// Daily dumps 10–20 November except the 15th; daily file archives every day, the 15th
/// included; hourly WAL segments on the 19th (03:00 and 04:00 missed) and the 20th until
/// 11:00 (so it is overdue); weekly site archives on Sundays 8 and 15 November.
/// Monitored on 20 November 14:30 UTC.
fn mixed() -> Workspace {
    let mut ws = Workspace::new();
    ws.write_config(MIXED);
    for day in 10..=20 {
        if day != 15 {
            let t = ts(&format!("2026-11-{day}T02:30:00Z"));
            ws.write_file(&format!("db/db_202611{day}_023000.sql"), b"dump", t);
        }
        let t = ts(&format!("2026-11-{day}T04:30:00Z"));
        ws.write_file(&format!("files/files_202611{day}_043000.tar"), b"tar", t);
    }
    for (day, hours) in [(19, 0..24), (20, 0..12)] {
        for h in hours {
            if day == 19 && (h == 3 || h == 4) {
                continue;
            }
            let t = ts(&format!("2026-11-{day}T{h:02}:10:00Z"));
            ws.write_file(&format!("wal/wal_202611{day}_{h:02}1000.gz"), b"w", t);
        }
    }
    for day in [8, 15] {
        let t = ts(&format!("2026-11-{day:02}T03:30:00Z"));
        ws.write_file(&format!("site/site_202611{day:02}_033000.tgz"), b"s", t);
    }
    ws.now = Some(ts("2026-11-20T14:30:00Z"));
    ws.run(&["--monitor", "--days", "14"]);
    ws
}

fn latest_json(ws: &Workspace) -> serde_json::Value {
    serde_json::from_str(&read(&ws.path("reports/latest.json"))).unwrap()
}

#[test]
fn calendar_gives_every_location_its_own_line() {
    let ws = mixed();
    ws.run(&["--report", "--days", "14"]);
    let json = latest_json(&ws);
    let day = |d: &str| {
        json["calendar"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["date"] == d)
            .cloned()
            .unwrap_or_else(|| panic!("no calendar day {d}"))
    };
    // The 15th: db missed its dump while files made its archive; both are there.
    let fifteenth = day("2026-11-15");
    let of = |name: &str| {
        fifteenth["locations"]
            .as_array()
            .unwrap()
            .iter()
            .find(|l| l["location"] == name)
            .cloned()
            .unwrap_or_else(|| panic!("{name} missing on the 15th: {fifteenth}"))
    };
    assert_eq!(of("db")["backups"], 0);
    assert_eq!(of("db")["missing"], serde_json::json!(["02:00"]));
    assert_eq!(of("files")["backups"], 1);
    let html = read(&ws.path("reports/latest.html"));
    // The lines follow the cards (worst first).
    let order: Vec<String> = html
        .split("<article class=\"card")
        .skip(1)
        .map(|c| {
            let start = c.find("<h3>").unwrap() + 4;
            c[start..start + c[start..].find("</h3>").unwrap()].to_string()
        })
        .collect();
    assert_eq!(order.len(), 4, "{order:?}");
    let line = |cell: &str, name: &str| -> (String, String) {
        let i = order.iter().position(|n| n == name).unwrap();
        (rows_of(cell)[i].to_string(), row_texts(cell)[i].to_string())
    };
    let cell = calendar_cell(&html, "2026-11-15");
    assert_eq!(rows_of(cell).len(), 4, "one line per location: {cell}");
    assert_eq!(line(cell, "db"), ("missed".into(), "✖".into()), "{cell}");
    assert_eq!(line(cell, "files"), ("ok".into(), "✔".into()), "{cell}");
    assert!(cell.contains("db: no backup, missed 02:00"), "{cell}");
    // Hourly shows how many backups a day had; weekly marks only its day.
    let cell = calendar_cell(&html, "2026-11-19");
    // (The slash is escaped like all text in the page.)
    assert_eq!(
        line(cell, "wal"),
        ("partial".into(), "22&#x2f;24".into()),
        "{cell}"
    );
    assert_eq!(
        line(cell, "site"),
        ("empty".into(), String::new()),
        "{cell}"
    );
    assert_eq!(line(cell, "db"), ("ok".into(), "✔".into()), "{cell}");
    let sunday = calendar_cell(&html, "2026-11-15");
    assert_eq!(line(sunday, "site"), ("ok".into(), "✔".into()), "{sunday}");
    // The legend names the lines in order.
    assert!(html.contains("one line per location"), "legend");
    let schedules: Vec<&str> = json["locations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["schedule"].as_str().unwrap())
        .collect();
    assert!(schedules.contains(&"hourly") && schedules.contains(&"weekly"));
}

/// Record verifications (with their tallies per location, as a run writes them) and
/// restore tests for `n` of the newest backups: backup ids divisible by `every` fail.
fn record_checks(ws: &Workspace, n: u32, every: u32) {
    ws.store_execute(&format!(
        "INSERT INTO verifications (backup_id, at, method, algo, result, bytes, detail)
           SELECT id, ts + 600, 'checksum', 'sha256',
                  CASE WHEN id % {every} = 0 THEN 'failed' ELSE 'passed' END, 4,
                  CASE WHEN id % {every} = 0 THEN 'sha256 differs from the recorded checksum' END
           FROM backups WHERE ts <= {now} ORDER BY ts DESC LIMIT {n};
         DELETE FROM verification_tallies;
         INSERT INTO verification_tallies (location_id, at, passed, judged)
           SELECT b.location_id, v.at, COUNT(*) FILTER (WHERE v.result = 'passed'), COUNT(*)
           FROM verifications v JOIN backups b ON b.id = v.backup_id
           WHERE v.result IN ('passed', 'failed') GROUP BY b.location_id, v.at;
         INSERT INTO restore_tests (backup_id, at, format, result, files, bytes, detail, size, mtime_ns, location_id)
           SELECT id, ts + 900, 'sql', CASE WHEN id % {every} = 0 THEN 'failed' ELSE 'passed' END,
                  1, 4, CASE WHEN id % {every} = 0 THEN 'psql stopped at line 3' END, 4, mtime_ns, location_id
           FROM backups WHERE ts <= {now} ORDER BY ts DESC LIMIT {n};",
        now = ts("2026-11-20T11:00:00Z").timestamp()
    ));
}

#[test]
fn failures_come_first_and_long_tables_are_summarised() {
    let ws = mixed();
    record_checks(&ws, 40, 7);
    ws.run(&["--report", "--days", "14"]);
    let json = latest_json(&ws);
    let failed =
        ws.store_value::<i64>("SELECT COUNT(*) FROM verifications WHERE result = 'failed'") as u64;
    assert!(failed >= 3, "the scenario has failures: {failed}");
    for (list, summary) in [
        ("verifications", "verification_summary"),
        ("restore_tests", "restore_test_summary"),
    ] {
        let rows = json[list].as_array().unwrap();
        assert_eq!(
            rows.len() as u64,
            failed,
            "{list}: only the failures listed"
        );
        assert!(rows.iter().all(|r| r["result"] == "failed"), "{list}");
        assert_eq!(json[summary]["total"], 40);
        assert_eq!(
            json[summary]["not_listed"],
            serde_json::json!([{ "result": "passed", "count": 40 - failed }])
        );
    }
    let html = read(&ws.path("reports/latest.html"));
    let passed = 40 - failed;
    assert!(
        html.contains(&format!("{passed} passed: not listed.")),
        "the passes are counted, not listed"
    );
    assert!(
        html.contains("sha256 differs from the recorded checksum"),
        "a failure is listed in full"
    );
    assert!(!html.contains("PASSED</span></td>"), "no passing rows");
    // A short table lists everything, failures first.
    let ws = mixed();
    record_checks(&ws, 8, 3);
    ws.run(&["--report", "--days", "14"]);
    let json = latest_json(&ws);
    let results: Vec<&str> = json["verifications"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["result"].as_str().unwrap())
        .collect();
    assert_eq!(results.len(), 8);
    let first_pass = results.iter().position(|r| *r == "passed").unwrap();
    assert!(first_pass > 0, "{results:?}");
    assert!(
        results[first_pass..].iter().all(|r| *r == "passed"),
        "failures before passes: {results:?}"
    );
    assert_eq!(
        json["verification_summary"]["not_listed"],
        serde_json::json!([])
    );
}

#[test]
fn cards_show_the_last_good_restore_and_schedule_compliance() {
    let ws = mixed();
    record_checks(&ws, 40, 1000);
    ws.run(&["--report", "--days", "14"]);
    let json = latest_json(&ws);
    let loc = |name: &str| {
        json["locations"]
            .as_array()
            .unwrap()
            .iter()
            .find(|l| l["name"] == name)
            .cloned()
            .unwrap()
    };
    // db: dumps 10–20 November but the 15th; its first slot is judged from the oldest
    // backup on, so 10 of 11 due slots have one.
    let db = loc("db");
    assert_eq!(db["compliance"]["due"], 11, "{db}");
    assert_eq!(db["compliance"]["satisfied"], 10, "{db}");
    assert_eq!(db["compliance"]["percent"], 90.9);
    let files = loc("files");
    assert_eq!(files["compliance"]["percent"], 100.0, "{files}");
    assert_eq!(
        db["last_passed_restore"], "2026-11-20T02:45:00+00:00",
        "{db}"
    );
    let site = loc("site");
    assert_eq!(
        site["last_passed_restore"],
        serde_json::Value::Null,
        "{site}"
    );
    let html = read(&ws.path("reports/latest.html"));
    let card = card_of(&html, "db");
    assert!(card.contains("90.9%"), "{card}");
    assert!(card.contains("(10 of 11 due slots)"), "{card}");
    assert!(card.contains("Last good restore"), "{card}");
    assert!(card.contains("2026-11-20 02:45"), "{card}");
    assert!(card_of(&html, "site").contains("never (run --test-restore)"));
}

/// The HTML of one location card.
fn card_of<'a>(html: &'a str, name: &str) -> &'a str {
    let start = html
        .find(&format!("<h3>{name}</h3>"))
        .unwrap_or_else(|| panic!("no card {name}"));
    let end = html[start..].find("</article>").unwrap() + start;
    &html[start..end]
}

#[test]
fn the_audit_log_is_shown() {
    let ws = mixed();
    let (_, doc) = ws.run_json(&["--status"]);
    let id = doc["problems"][0]["id"].as_i64().expect("an open problem");
    let run = ws.run(&[
        "--ack",
        &id.to_string(),
        "--reason",
        "dump job moved, fixing tonight",
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    ws.run(&["--report", "--days", "14"]);
    let json = latest_json(&ws);
    assert_eq!(json["actions"][0]["action"], "ack", "{}", json["actions"]);
    assert_eq!(
        json["actions"][0]["reason"],
        "dump job moved, fixing tonight"
    );
    let html = read(&ws.path("reports/latest.html"));
    let section = &html[html.find("id=\"actions\"").unwrap()..];
    let section = &section[..section.find("</section>").unwrap()];
    assert!(
        section.contains("dump job moved, fixing tonight"),
        "{section}"
    );
    assert!(section.contains(">ack<"), "{section}");
}

#[test]
fn health_band_never_reads_ok_beside_a_critical_status() {
    let ws = mixed();
    ws.run(&["--report", "--days", "14"]);
    let json = latest_json(&ws);
    let mut seen_critical = false;
    for l in json["locations"].as_array().unwrap() {
        if l["status"] == "critical" {
            seen_critical = true;
            assert_eq!(l["health_status"], "critical", "{l}");
        }
        if l["status"] == "warning" {
            assert_ne!(l["health_status"], "ok", "{l}");
        }
    }
    assert!(
        seen_critical,
        "the scenario has a critical location (wal is overdue)"
    );
    // wal scores well over the window but is overdue now: the card says both.
    let wal = json["locations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["name"] == "wal")
        .unwrap();
    assert_eq!(wal["status"], "critical");
    let html = read(&ws.path("reports/latest.html"));
    let card = card_of(&html, "wal");
    assert!(
        card.contains("class=\"band b-critical\">critical</span>"),
        "{card}"
    );
    assert!(!card.contains("b-ok"), "{card}");
    if json["overall_score_status"] == "ok" {
        assert_eq!(json["overall_health_status"], "critical");
    }
    // Cards are worst first.
    let first = &html[html.find("<article class=\"card").unwrap()..];
    assert!(
        first.starts_with("<article class=\"card status-critical\""),
        "{}",
        &first[..80]
    );
}

#[test]
fn forecasts_are_capped_and_names_wrap_at_separators() {
    let ws = mixed();
    ws.run(&["--report", "--days", "14"]);
    let json = latest_json(&ws);
    // Backups of a few bytes on a real disk: centuries of room, said as a person would.
    let db = &json["locations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["name"] == "db")
        .unwrap()["forecast"];
    assert_eq!(db["until_full"], "more than 10 years", "{db}");
    let html = read(&ws.path("reports/latest.html"));
    assert!(html.contains("room for more than 10 years of backups"));
    assert!(!html.contains(" years)") || !html.contains(",000 years"));
    assert!(
        html.contains("db_<wbr>20261120_<wbr>023000.<wbr>sql"),
        "a file name breaks only at its separators"
    );
    assert!(!html.contains("word-break: break-all"));
}

// The text summary on stdout (the human companion of the report).

#[test]
fn text_summary_counts_recorded_backups_in_plain_words() {
    let mut ws = Workspace::new();
    ws.write_config(
        r#"
timezone: UTC
backups:
  locations:
    - name: db
      path: db
      schedule: daily
logging: { file: null }
"#,
    );
    ws.write_file(
        "db/db_20261120_020000.sql",
        b"dump",
        ts("2026-11-20T02:10:00Z"),
    );
    ws.now = Some(ts("2026-11-20T12:00:00Z"));
    let run = ws.run(&["--monitor", "--verify"]);
    let out = &run.stdout;
    assert!(out.contains(" · 1 location · "), "{out}");
    assert!(
        out.contains("Verification: 1 checked, 0 passed, 0 failed, 1 recorded at first sight"),
        "{out}"
    );
    assert!(
        out.contains("the next --verify compares against them"),
        "{out}"
    );
    assert!(!out.contains('\x1b'), "no colour in a pipe: {out:?}");
    let (_, doc) = ws.run_json(&["--verify"]);
    assert_eq!(
        doc["verification"]["recorded"], 0,
        "{}",
        doc["verification"]
    );
    assert_eq!(doc["verification"]["passed"], 1, "{}", doc["verification"]);
}

#[test]
fn a_bad_cron_expression_is_explained_in_words() {
    let ws = Workspace::new();
    ws.write_config(
        r#"
backups:
  locations:
    - name: db
      path: db
      schedule: "0 25 * * *"
logging: { file: null }
"#,
    );
    let run = ws.run(&["--check-config"]);
    assert_eq!(run.code, 3);
    let all = format!("{}{}", run.stdout, run.stderr);
    assert!(
        all.contains("25 is not a valid hour; the hour field takes 0 to 23"),
        "{all}"
    );
    assert!(!all.contains("Component error"), "{all}");
    assert!(!all.contains("out of bounds"), "{all}");
}

/// A weekly location whose last slot was missed keeps its score and its
/// `health_degraded` through the hours after the next slot began and before it is due,
/// when the 7-day window holds no due slot: the missed slot before the window counts.
#[test]
fn a_weekly_miss_is_scored_the_same_before_and_after_the_next_slot_begins() {
    let mut ws = Workspace::new();
    ws.write_config(
        "timezone: UTC\nlogging: { file: null }\nbackups:\n  locations:\n    - name: weekly\n      path: weekly\n      schedule: weekly\n      at: \"sun 02:00\"\n      min_free_space: 1KiB\nreporting:\n  formats: [json]\n",
    );
    // Sundays 8, 15 and 22 November; the 29th never came.
    for day in [8, 15, 22] {
        ws.write_file(
            &format!("weekly/w_202611{day:02}_020000.tar"),
            b"weekly",
            ts(&format!("2026-11-{day:02}T02:10:00Z")),
        );
    }
    let mut seen = Vec::new();
    // Before the 6 December slot begins, between its start and its due time (03:00),
    // and after it is due.
    for now in [
        "2026-12-06T01:00:00Z",
        "2026-12-06T02:30:00Z",
        "2026-12-06T04:00:00Z",
    ] {
        ws.now = Some(ts(now));
        let (run, doc) = ws.run_json(&["--monitor", "--report"]);
        assert_eq!(run.code, 2, "{now}: {}", run.stderr);
        let loc = &latest_json(&ws)["locations"][0];
        let degraded = doc["problems"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|p| p["kind"] == "health_degraded")
            .count();
        seen.push((
            now,
            loc["health_score"].clone(),
            loc["compliance"]["due"].clone(),
            loc["compliance"]["satisfied"].clone(),
            degraded,
        ));
    }
    for (now, score, due, satisfied, degraded) in &seen {
        assert_eq!(score, &serde_json::json!(0.0), "{now}: {seen:?}");
        assert_eq!((due, satisfied), (&1.into(), &0.into()), "{now}: {seen:?}");
        assert_eq!(*degraded, 1, "{now}: {seen:?}");
    }
}

#[test]
fn file_names_with_a_newline_or_a_bidi_override_stay_escaped_in_the_html() {
    const RTL: &str = "rtl\u{202e}gpj.exe_20261128.sql.gz";
    const NL: &str = "nl\nforged_20261127.sql.gz";
    let mut ws = Workspace::new();
    ws.write_config(
        "backups:\n  locations:\n    - name: db\n      path: db\n      type: database\n      \
         patterns: [\"*.sql.gz\"]\n      min_free_space: 0\n\
         reporting:\n  formats: [html]\nlogging: { file: null }\n",
    );
    // Empty: each is an open empty_backup problem about its file, and a bar in the chart.
    ws.write_file(&format!("db/{RTL}"), b"", ts("2026-11-28T02:30:00Z"));
    ws.write_file(&format!("db/{NL}"), b"", ts("2026-11-27T02:30:00Z"));
    // A sidecar that disagrees: the verification's detail names the file.
    ws.write_file(
        &format!("db/{RTL}.sha256"),
        "0".repeat(64).as_bytes(),
        ts("2026-11-28T02:30:00Z"),
    );
    ws.now = Some(ts("2026-11-28T12:00:00Z"));
    let run = ws.run(&["--monitor", "--verify", "--report", "--days", "30"]);
    assert_eq!(run.code, 2, "{}\n{}", run.stdout, run.stderr);
    let html = read(&ws.path("reports/latest.html"));
    assert!(!html.contains('\u{202e}'), "a raw U+202E in the page");
    assert!(!html.contains("nl\nforged"), "a raw newline in a name");
    // The problems table's "Backup or slot" column (the name wraps at its separators).
    assert!(
        html.contains(r#"class="path">rtl\u{202e}gpj.<wbr>exe_<wbr>"#),
        "the table shows the name escaped"
    );
    assert!(
        html.contains(r#"class="path">nl\nforged_<wbr>"#),
        "the table shows the name escaped"
    );
    // The verification's detail.
    assert!(
        html.contains(r#"<td data-label="Detail">rtl\u{202e}gpj.exe_20261128.sql.gz: sha256 is "#),
        "the detail shows the name escaped"
    );
    // The size chart's tooltips.
    for name in [
        r"rtl\u{202e}gpj.exe_20261128.sql.gz",
        r"nl\nforged_20261127.sql.gz",
    ] {
        assert!(
            html.contains(&format!("<title>{name}: 0 B at ")),
            "the tooltip of {name}"
        );
    }
}
