//! What people read from alerts and the plugin, pinned on a fixed clock and a fixed
//! scenario through the binary: the digest email (both parts), the Slack payload, the
//! webhook payload and the Nagios output. A change to any of them shows up as a snapshot
//! diff to review (`cargo insta review`); docs/alerts.md shows the same renderings.

use crate::alerts::{HttpSink, SmtpSink};
use crate::common::{Workspace, ts};
use chrono::Duration;
use serde_json::Value;

const NOW: &str = "2026-11-21T12:00:00Z";

/// Three locations on host `backup-host`: `database_backup` (daily at 02:00, two nights
/// missed, one empty dump), `www` (hourly, the last hour missing) and `docs` (weekly, fine).
/// Free space is not judged, so the machine's disk cannot change the outputs.
fn scenario(alerts: &str) -> Workspace {
    let mut w = Workspace::new();
    w.now = Some(ts(NOW));
    w.write_config(&format!(
        "host: backup-host\ntimezone: Europe/Berlin\nlogging: {{ file: null }}\n\
         reporting:\n  base_url: https://backups.example.com/reports/\n\
         backups:\n  locations:\n\
         \x20   - name: database_backup\n      path: db\n      type: database\n      schedule: daily\n      at: \"02:00\"\n      min_free_space: 0\n\
         \x20   - name: www\n      path: www\n      type: website\n      schedule: hourly\n      min_free_space: 0\n\
         \x20   - name: docs\n      path: docs\n      schedule: weekly\n      min_free_space: 0\n\
         {alerts}"
    ));
    for d in [0, 1, 3, 4, 6, 7] {
        let t = ts("2026-11-21T01:00:00Z") - Duration::days(d);
        let name = format!("db/db_{}.sql.gz", t.format("%Y%m%d_%H%M%S"));
        let size = if d == 4 { 0 } else { 4096 };
        w.write_file(&name, &vec![b'x'; size], t + Duration::minutes(5));
    }
    for h in 1..30 {
        let t = ts("2026-11-21T11:00:00Z") - Duration::hours(h);
        let name = format!("www/www-{}.tar.gz", t.format("%Y%m%d-%H%M%S"));
        w.write_file(&name, &[b'w'; 64], t + Duration::minutes(1));
    }
    for d in [0, 7] {
        let t = ts("2026-11-16T00:30:00Z") - Duration::days(d);
        let name = format!("docs/docs-{}.tar.gz", t.format("%Y%m%d-%H%M%S"));
        w.write_file(&name, &[b'd'; 64], t + Duration::minutes(1));
    }
    w
}

fn http_alerts(sink: &HttpSink) -> String {
    format!(
        "alerts:\n  log: {{ enabled: false }}\n  slack:\n    enabled: true\n    webhook_url: {}\n  \
         webhook:\n    enabled: true\n    url: {}\n",
        sink.slack_url(),
        sink.hook_url()
    )
}

#[test]
fn slack_and_webhook_payloads() {
    let http = HttpSink::start();
    let w = scenario(&http_alerts(&http));
    let run = w.run(&["--monitor", "--check-alerts"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    let slack = http.take("/slack");
    assert_eq!(slack.len(), 1, "{slack:#?}");
    insta::assert_json_snapshot!("slack_payload", slack[0]);
    let hook = http.take("/hook");
    assert_eq!(hook.len(), 1, "{hook:#?}");
    insta::assert_json_snapshot!("webhook_payload", hook[0], { ".version" => "[version]" });
}

#[test]
fn digest_email_both_parts() {
    let Some(smtp) = SmtpSink::start() else {
        return;
    };
    let w = scenario(&format!(
        "alerts:\n  log: {{ enabled: false }}\n  email:\n    enabled: true\n    smtp_host: 127.0.0.1\n    \
         smtp_port: {}\n    security: none\n    from: backup-monitor@example.com\n    to: [ops@example.com]\n",
        smtp.port
    ));
    let run = w.run(&["--monitor", "--check-alerts"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    let messages = smtp.messages();
    assert_eq!(messages.len(), 1, "{messages:#?}");
    let m = &messages[0];
    assert_eq!(m["auto_submitted"], "auto-generated");
    let part = |name: &str| m[name].as_str().unwrap_or_default().to_string();
    insta::assert_snapshot!(
        "digest_email_text",
        format!(
            "Subject: {}\n\n{}",
            m["subject"].as_str().unwrap_or_default(),
            part("text")
        )
    );
    insta::assert_snapshot!("digest_email_html", part("html"));
}

#[test]
fn nagios_output() {
    let w = scenario("");
    let run = w.run(&["--monitor", "--format", "nagios"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    insta::assert_snapshot!(run.stdout);
}

/// The log excerpt appears only with `alerts.include_log: true`.
#[test]
fn the_run_log_is_attached_only_when_asked() {
    let http = HttpSink::start();
    let w = scenario(&http_alerts(&http));
    w.run(&["--monitor", "--check-alerts"]);
    let text = serde_json::to_string(&http.take("/slack")).unwrap_or_default();
    assert!(!text.contains("Recent log"), "{text}");

    let http = HttpSink::start();
    let w = scenario(&format!("{}  include_log: true\n", http_alerts(&http)));
    let run = w.run(&["--monitor", "--check-alerts"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    let slack = http.take("/slack");
    let text = serde_json::to_string(&slack).unwrap_or_default();
    assert!(text.contains("Recent log of this run"), "{text}");
    let hook: Vec<Value> = http.take("/hook");
    assert!(
        hook[0]["groups"][0]["log"]
            .as_array()
            .is_some_and(|l| !l.is_empty()),
        "{:#}",
        hook[0]
    );
}
