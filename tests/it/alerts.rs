//! `--check-alerts` through the binary, against real servers on 127.0.0.1: an SMTP server
//! (Python's aiosmtpd, started by the test) and an HTTP server (tiny_http) standing in for
//! Slack and a generic webhook. Time moves with `BACKUP_MONITOR_NOW`.

use crate::common;

use backup_monitor::problem::{Kind, Operation, Problem, Severity};
use chrono::{DateTime, Duration, Utc};
use common::{Workspace, ts};
use serde_json::Value;
use std::collections::HashMap;
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};

const T0: &str = "2026-11-21T12:00:00Z";
const SLACK_TOKEN: &str = "slackSECRETtoken0123456789";
const HOOK_TOKEN: &str = "hookSECRETtoken9876543210";
const REPORT_PASSWORD: &str = "reportSECRETpassword4242";

// ---------------------------------------------------------------------------------------
// A loopback HTTP server that records every POST and answers as told per path prefix.

#[derive(Clone, Copy, PartialEq, Debug)]
enum Answer {
    Ok,
    Error500,
    /// HTTP 500 with this body.
    Error500With(&'static str),
    /// Accept the request, then say nothing for longer than `alerts.timeout`.
    Hang,
}

pub(crate) struct HttpSink {
    server: Arc<tiny_http::Server>,
    port: u16,
    received: Arc<Mutex<Vec<(String, Value)>>>,
    answers: Arc<Mutex<HashMap<String, Answer>>>,
}

impl HttpSink {
    pub(crate) fn start() -> HttpSink {
        let server = Arc::new(tiny_http::Server::http("127.0.0.1:0").expect("bind loopback"));
        let port = server.server_addr().to_ip().expect("ip").port();
        let received = Arc::new(Mutex::new(Vec::new()));
        let answers: Arc<Mutex<HashMap<String, Answer>>> = Arc::default();
        let (s, r, a) = (server.clone(), received.clone(), answers.clone());
        std::thread::spawn(move || {
            for mut request in s.incoming_requests() {
                let mut body = String::new();
                let _ = request.as_reader().read_to_string(&mut body);
                let url = request.url().to_string();
                let json = serde_json::from_str(&body).unwrap_or(Value::String(body));
                r.lock().unwrap().push((url.clone(), json));
                let answer = a
                    .lock()
                    .unwrap()
                    .iter()
                    .find(|(prefix, _)| url.starts_with(prefix.as_str()))
                    .map(|(_, answer)| *answer)
                    .unwrap_or(Answer::Ok);
                std::thread::spawn(move || match answer {
                    Answer::Ok => {
                        let _ = request.respond(tiny_http::Response::from_string("ok"));
                    }
                    Answer::Error500 => {
                        let _ = request.respond(
                            tiny_http::Response::from_string("boom").with_status_code(500),
                        );
                    }
                    Answer::Error500With(body) => {
                        let _ = request
                            .respond(tiny_http::Response::from_string(body).with_status_code(500));
                    }
                    Answer::Hang => {
                        std::thread::sleep(std::time::Duration::from_secs(5));
                        drop(request);
                    }
                });
            }
        });
        HttpSink {
            server,
            port,
            received,
            answers,
        }
    }

    fn answer(&self, prefix: &str, answer: Answer) {
        self.answers
            .lock()
            .unwrap()
            .insert(prefix.to_string(), answer);
    }

    pub(crate) fn slack_url(&self) -> String {
        format!(
            "http://127.0.0.1:{}/slack/T000/B000/{SLACK_TOKEN}",
            self.port
        )
    }

    pub(crate) fn hook_url(&self) -> String {
        format!("http://127.0.0.1:{}/hook?token={HOOK_TOKEN}", self.port)
    }

    /// JSON bodies received on paths starting with `prefix`, and forget them.
    pub(crate) fn take(&self, prefix: &str) -> Vec<Value> {
        let mut all = self.received.lock().unwrap();
        let (mine, rest): (Vec<_>, Vec<_>) =
            all.drain(..).partition(|(url, _)| url.starts_with(prefix));
        *all = rest;
        mine.into_iter().map(|(_, body)| body).collect()
    }
}

impl Drop for HttpSink {
    fn drop(&mut self) {
        self.server.unblock();
    }
}

// ---------------------------------------------------------------------------------------
// A loopback SMTP server (aiosmtpd), one JSON file per received message.

pub(crate) struct SmtpSink {
    child: Child,
    pub(crate) port: u16,
    dir: tempfile::TempDir,
}

impl SmtpSink {
    /// None (after saying why) when aiosmtpd is not installed — except on CI, where the
    /// test must not pass without it.
    pub(crate) fn start() -> Option<SmtpSink> {
        SmtpSink::start_with(&[])
    }

    /// `auth`: [user, password] the server then requires.
    fn start_with(auth: &[&str]) -> Option<SmtpSink> {
        SmtpSink::start_tls(auth, None)
    }

    /// `tls`: ("starttls" | "tls", certificate PEM file, key PEM file).
    fn start_tls(auth: &[&str], tls: Option<(&str, &Path, &Path)>) -> Option<SmtpSink> {
        let importable = Command::new("python3")
            .args(["-c", "import aiosmtpd"])
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !importable {
            if std::env::var("CI").as_deref() == Ok("true") {
                panic!("CI=true but python3 cannot import aiosmtpd: run `pip install aiosmtpd`");
            }
            eprintln!(
                "skipping the SMTP test: python3 cannot import aiosmtpd (pip install aiosmtpd)"
            );
            return None;
        }
        let port = free_port();
        let dir = tempfile::tempdir().unwrap();
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it/smtp_sink.py");
        let mut cmd = Command::new("python3");
        cmd.arg(script)
            .arg(port.to_string())
            .arg(dir.path())
            .args(auth)
            .stdout(Stdio::null());
        if let Some((mode, cert, key)) = tls {
            cmd.env("SMTP_SINK_TLS", mode)
                .env("SMTP_SINK_CERT", cert)
                .env("SMTP_SINK_KEY", key);
        }
        let child = cmd.spawn().expect("start python3 smtp_sink.py");
        let sink = SmtpSink { child, port, dir };
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "the SMTP sink did not start on port {port}"
            );
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        Some(sink)
    }

    pub(crate) fn messages(&self) -> Vec<Value> {
        let mut files: Vec<_> = std::fs::read_dir(self.dir.path())
            .unwrap()
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == "json"))
            .collect();
        files.sort();
        files
            .iter()
            .map(|p| serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap())
            .collect()
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

// ---------------------------------------------------------------------------------------
// Workspaces

/// A workspace with location `db_main` at `db` (absent until a test creates it), the
/// given alert settings, and the log file at logs/bm.log. Free space is not judged, so a
/// nearly full test machine adds no `low_disk_space` alert.
fn workspace(extra: &str) -> Workspace {
    let mut ws = Workspace::new();
    ws.now = Some(ts(T0));
    ws.write_config(&format!(
        "backups:\n  locations:\n    - name: db_main\n      path: db\n      type: database\n      min_free_space: 0\n\
         logging:\n  file: logs/bm.log\n  level: debug\n{extra}"
    ));
    ws
}

fn at(ws: &mut Workspace, hours: i64) {
    ws.now = Some(ts(T0) + Duration::hours(hours));
}

/// A good backup in `db`, so the location's problems resolve.
fn fix_location(ws: &Workspace, now: DateTime<Utc>) {
    let t = now - Duration::hours(1);
    ws.write_file(
        &format!("db/db_{}.sql", t.format("%Y%m%d_%H%M%S")),
        b"-- dump\n",
        t,
    );
}

fn alerts_of(doc: &Value) -> (u64, u64, u64, u64, u64) {
    let a = &doc["alerts"];
    let n = |k: &str| a[k].as_u64().unwrap_or(99);
    (
        n("sent"),
        n("repeated"),
        n("resolved"),
        n("suppressed"),
        n("delivery_failures"),
    )
}

/// (event, kind) of every alert in a webhook payload.
fn events(payload: &Value) -> Vec<(String, String)> {
    payload["groups"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|g| g["alerts"].as_array().unwrap().clone())
        .map(|a| {
            (
                a["event"].as_str().unwrap().to_string(),
                a["kind"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn webhook_config(sink: &HttpSink) -> String {
    format!(
        "alerts:\n  timeout: 1s\n  log: {{ enabled: false }}\n  webhook:\n    enabled: true\n    url: {}\n",
        sink.hook_url()
    )
}

// ---------------------------------------------------------------------------------------

#[test]
fn email_reaches_a_real_smtp_server_with_all_recipients() {
    let Some(smtp) = SmtpSink::start() else {
        return;
    };
    let ws = workspace(&format!(
        "alerts:\n  timeout: 5s\n  email:\n    enabled: true\n    smtp_host: 127.0.0.1\n    smtp_port: {}\n    \
         security: none\n    from: backup-monitor@test.local\n    to: [ops@test.local, dba@test.local]\n",
        smtp.port
    ));
    let (run, doc) = ws.run_json(&["--monitor", "--check-alerts"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert_eq!(alerts_of(&doc), (1, 0, 0, 0, 0), "{doc:#}");
    let messages = smtp.messages();
    assert_eq!(messages.len(), 1, "one digest message: {messages:#?}");
    let m = &messages[0];
    assert_eq!(m["mail_from"], "backup-monitor@test.local");
    assert_eq!(
        m["rcpt_tos"],
        serde_json::json!(["ops@test.local", "dba@test.local"])
    );
    assert_eq!(
        m["subject"],
        "[backup-monitor] CRITICAL db_main: location_unavailable"
    );
    assert_eq!(m["auto_submitted"], "auto-generated", "{m:#}");
    let id = m["message_id"].as_str().unwrap_or_default();
    assert!(
        id.starts_with("<bm.") && id.ends_with("@test.local>"),
        "{m:#}"
    );
    assert!(m["date"].as_str().is_some_and(|d| !d.is_empty()), "{m:#}");
    for part in ["text", "html"] {
        let body = m[part]
            .as_str()
            .unwrap_or_else(|| panic!("no {part} part: {m:#}"));
        assert!(body.contains("db_main"), "{part}: {body}");
        assert!(body.contains("location_unavailable"), "{part}: {body}");
        assert!(
            body.contains("Check:") || body.contains("is the backup volume mounted"),
            "{part}: {body}"
        );
        assert!(
            !body.contains("Recent log"),
            "{part}: no log excerpt unless asked: {body}"
        );
    }
}

/// A private CA and a server certificate it signed for 127.0.0.1, as PEM files in `dir`:
/// (ca.pem, server.pem, server.key).
fn private_ca(dir: &Path) -> (std::path::PathBuf, std::path::PathBuf, std::path::PathBuf) {
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "backup-monitor test CA");
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
    let key = KeyPair::generate().unwrap();
    let server = CertificateParams::new(vec!["127.0.0.1".to_string()])
        .unwrap()
        .signed_by(&key, &ca)
        .unwrap();
    let paths = (
        dir.join("ca.pem"),
        dir.join("server.pem"),
        dir.join("server.key"),
    );
    std::fs::write(&paths.0, ca.pem()).unwrap();
    std::fs::write(&paths.1, server.pem()).unwrap();
    std::fs::write(&paths.2, key.serialize_pem()).unwrap();
    paths
}

#[test]
fn email_over_starttls_and_implicit_tls_verifies_the_server_and_logs_in_over_tls() {
    const PASSWORD: &str = "tlsPASSWORD-2718";
    let certs = tempfile::tempdir().unwrap();
    let (ca, cert, key) = private_ca(certs.path());
    for mode in ["starttls", "tls"] {
        // The server refuses MAIL and AUTH before TLS (starttls) or speaks only TLS (tls),
        // and requires the login: a message arriving proves both.
        let Some(smtp) = SmtpSink::start_tls(&["monitor", PASSWORD], Some((mode, &cert, &key)))
        else {
            return;
        };
        let channel = |ca_line: &str| {
            format!(
                "alerts:\n  timeout: 5s\n  email:\n    enabled: true\n    smtp_host: 127.0.0.1\n    \
                 smtp_port: {}\n    security: {mode}\n    username: monitor\n    password: ${{TEST_SMTP_PASSWORD}}\n    \
                 from: backup-monitor@test.local\n    to: [ops@test.local]\n{ca_line}",
                smtp.port
            )
        };
        // Without the private CA the server is a stranger: nothing is sent, no password
        // leaves, and the failure says why.
        let ws = workspace(&channel("")).env("TEST_SMTP_PASSWORD", PASSWORD);
        let (run, doc) = ws.run_json(&["--monitor", "--check-alerts"]);
        // The log channel got the problem and, at once, email's failure.
        assert_eq!(alerts_of(&doc), (2, 0, 0, 0, 1), "{mode}: {doc:#}");
        assert!(smtp.messages().is_empty(), "{mode}");
        let failure = doc["problems"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["kind"] == "alert_delivery_failed")
            .unwrap_or_else(|| panic!("{mode}: no alert_delivery_failed: {doc:#}"))["message"]
            .as_str()
            .unwrap()
            .to_string();
        assert!(
            failure.contains("invalid peer certificate")
                && failure.contains("alerts.email.ca_file"),
            "{mode}: {failure}"
        );
        assert!(!format!("{}{}", run.stdout, run.stderr).contains(PASSWORD));

        // With `ca_file` naming it, the message goes through.
        let ws = workspace(&channel(&format!("    ca_file: {}\n", ca.display())))
            .env("TEST_SMTP_PASSWORD", PASSWORD);
        let (run, doc) = ws.run_json(&["--monitor", "--check-alerts"]);
        assert_eq!(
            alerts_of(&doc),
            (1, 0, 0, 0, 0),
            "{mode}: {doc:#}\n{}",
            run.stderr
        );
        let messages = smtp.messages();
        assert_eq!(messages.len(), 1, "{mode}: {messages:#?}");
        assert_eq!(
            messages[0]["rcpt_tos"],
            serde_json::json!(["ops@test.local"])
        );
        assert!(
            messages[0]["text"]
                .as_str()
                .is_some_and(|t| t.contains("location_unavailable")),
            "{mode}: {:#}",
            messages[0]
        );
    }
}

#[test]
fn a_ca_file_that_is_missing_or_not_pem_is_a_config_error() {
    let dir = tempfile::tempdir().unwrap();
    let not_pem = dir.path().join("not.pem");
    std::fs::write(&not_pem, "hello").unwrap();
    for (ca, security, says) in [
        (dir.path().join("absent.pem"), "starttls", "cannot read"),
        (not_pem.clone(), "tls", "holds no PEM certificate"),
        (not_pem, "none", "only used with security starttls or tls"),
    ] {
        let ws = workspace(&format!(
            "alerts:\n  email:\n    enabled: true\n    smtp_host: 127.0.0.1\n    security: {security}\n    \
             from: a@test.local\n    to: [b@test.local]\n    ca_file: {}\n",
            ca.display()
        ));
        let run = ws.run(&["--check-config"]);
        assert_eq!(run.code, 3, "{security}: {}", run.stderr);
        assert!(
            run.stderr.contains("alerts.email.ca_file") && run.stderr.contains(says),
            "{security}: {}",
            run.stderr
        );
    }
}

#[test]
fn email_authenticates_and_never_shows_the_smtp_password() {
    const PASSWORD: &str = "smtpPASSWORD-4711";
    let Some(smtp) = SmtpSink::start_with(&["monitor", PASSWORD]) else {
        return;
    };
    let config = |password_var: &str| {
        format!(
            "alerts:\n  timeout: 2s\n  email:\n    enabled: true\n    smtp_host: 127.0.0.1\n    \
             smtp_port: {}\n    security: none\n    username: monitor\n    password: ${{{password_var}}}\n    \
             from: backup-monitor@test.local\n    to: [ops@test.local]\n",
            smtp.port
        )
    };
    let mut ws = workspace(&config("TEST_SMTP_BAD"))
        .env("TEST_SMTP_BAD", "wrong-secret-0815")
        .env("TEST_SMTP_GOOD", PASSWORD);
    let (run, doc) = ws.run_json(&["--monitor", "--check-alerts", "-vv"]);
    // The problem failed on email; the log channel got it, and email's failure at once.
    assert_eq!(alerts_of(&doc), (2, 0, 0, 0, 1), "rejected login: {doc:#}");
    assert!(smtp.messages().is_empty());
    let failure = doc["problems"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["kind"] == "alert_delivery_failed")
        .expect("alert_delivery_failed")["message"]
        .as_str()
        .unwrap()
        .to_string();
    // aiosmtpd stalls after a failed login: the timeout ends the wait.
    assert!(
        failure.contains("email") && failure.contains("no answer within 2s"),
        "{failure}"
    );
    let everything = format!(
        "{}{}{}{}",
        run.stdout,
        run.stderr,
        std::fs::read_to_string(ws.path("logs/bm.log")).unwrap(),
        ws.store_text()
    );
    assert!(!everything.contains("wrong-secret-0815"), "{everything}");

    ws.write_config(&format!(
        "backups:\n  locations:\n    - name: db_main\n      path: db\n\
         logging:\n  file: logs/bm.log\n{}",
        config("TEST_SMTP_GOOD")
    ));
    at(&mut ws, 1);
    let (run, doc) = ws.run_json(&["--check-alerts"]);
    // The email is retried and delivered; the log channel hears that email recovered.
    assert_eq!(alerts_of(&doc), (1, 0, 1, 0, 0), "{doc:#}\n{}", run.stderr);
    let messages = smtp.messages();
    assert_eq!(
        messages.len(),
        1,
        "the failed alert was retried and delivered"
    );
    assert!(
        messages[0]["text"]
            .as_str()
            .unwrap()
            .contains("location_unavailable")
    );
    assert!(!run.stderr.contains(PASSWORD) && !run.stdout.contains(PASSWORD));
}

#[test]
fn slack_and_webhook_payloads_failures_retries_and_status() {
    let http = HttpSink::start();
    let mut ws = workspace(
        "alerts:\n  timeout: 1s\n  slack:\n    enabled: true\n    webhook_url: ${TEST_SLACK_URL}\n  \
         webhook:\n    enabled: true\n    url: ${TEST_HOOK_URL}\n",
    )
    .env("TEST_SLACK_URL", &http.slack_url())
    .env("TEST_HOOK_URL", &http.hook_url());
    ws.now = Some(ts(T0));
    http.answer("/slack", Answer::Error500);
    http.answer("/hook", Answer::Hang);

    // Run 1: Slack answers 500, the webhook hangs. The log channel gets the problem and,
    // in the same run, the two channel failures; the failing channels are not tried a
    // second time.
    let started = std::time::Instant::now();
    let (run, doc) = ws.run_json(&["--monitor", "--check-alerts"]);
    assert!(
        started.elapsed().as_secs() < 30,
        "a hanging server must not hang the run"
    );
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert_eq!(
        alerts_of(&doc),
        (3, 0, 0, 0, 1),
        "three alerts delivered on log, one failed elsewhere: {doc:#}"
    );
    let mut kinds = run.kinds();
    kinds.sort();
    assert_eq!(
        kinds,
        [
            "alert_delivery_failed",
            "alert_delivery_failed",
            "location_unavailable"
        ]
    );
    for line in [
        "[NEW CRITICAL] location_unavailable",
        "[NEW WARNING] alert_delivery_failed",
    ] {
        assert!(run.stderr.contains(line), "log: {line}: {}", run.stderr);
    }
    assert_eq!(http.take("/slack").len(), 1, "slack was tried once");
    assert_eq!(http.take("/hook").len(), 1, "the webhook was tried once");
    let failures: Vec<(String, String)> = ws.store_rows(
        "SELECT channel, error FROM alert_deliveries WHERE success = 0 ORDER BY channel",
    );
    assert_eq!(failures.len(), 2, "{failures:?}");
    assert_eq!(failures[0].0, "slack");
    assert!(failures[0].1.contains("500"), "{failures:?}");
    assert_eq!(failures[1].0, "webhook");
    assert!(
        failures[1].1.contains("no answer within 1s"),
        "{failures:?}"
    );
    let status = ws.run_json(&["--status"]).1;
    let open = status["open_alerts"].as_array().unwrap().clone();
    assert_eq!(open.len(), 3, "{status:#}");
    let location = open
        .iter()
        .find(|a| a["kind"] == "location_unavailable")
        .unwrap();
    assert_eq!(
        location["failing_channels"],
        serde_json::json!(["slack", "webhook"])
    );
    assert!(status["alerts"].is_object(), "existing fields unchanged");

    // Run 2, an hour later (inside the cooldown): Slack works, the webhook still hangs.
    // Slack gets the problem, then — in the same run — the webhook's failure; the log
    // channel hears that Slack recovered.
    http.answer("/slack", Answer::Ok);
    at(&mut ws, 1);
    // -v: the log channel writes resolutions at info level.
    let (run, doc) = ws.run_json(&["--check-alerts", "-v"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert_eq!(alerts_of(&doc), (2, 0, 1, 0, 1), "{doc:#}");
    assert_eq!(
        run.kinds()
            .iter()
            .filter(|k| *k == "alert_delivery_failed")
            .count(),
        1,
        "only the webhook still fails"
    );
    assert!(
        !run.stderr.contains("[NEW CRITICAL] location_unavailable"),
        "log was told already"
    );
    assert!(
        run.stderr
            .contains("[RESOLVED] alert_delivery_failed: the slack alert channel"),
        "{}",
        run.stderr
    );
    let slack = http.take("/slack");
    assert_eq!(
        slack.len(),
        2,
        "the backups' digest, then the channels' one"
    );
    let s = &slack[0];
    assert_eq!(
        s["text"], "[backup-monitor] CRITICAL db_main: location_unavailable",
        "{s:#}"
    );
    let blocks = s["blocks"].as_array().unwrap();
    assert_eq!(blocks.len(), 2, "the subject, then one location: {s:#}");
    let location = blocks[1]["text"]["text"].as_str().unwrap();
    assert!(
        location.starts_with(":red_circle: *db_main* (CRITICAL)"),
        "{location}"
    );
    assert!(location.contains("location_unavailable"), "{location}");
    let s = &slack[1];
    assert!(
        s["text"]
            .as_str()
            .unwrap()
            .starts_with("[backup-monitor] WARNING backup-monitor itself: alert_delivery_failed"),
        "{s:#}"
    );
    let text = s["blocks"][1]["text"]["text"].as_str().unwrap();
    assert!(text.starts_with(":large_orange_circle:"), "{text}");
    assert!(
        text.contains("the webhook alert channel could not deliver"),
        "{text}"
    );
    assert!(
        !text.contains("the slack alert channel"),
        "slack is not told about itself"
    );
    assert_eq!(http.take("/hook").len(), 1, "the webhook was retried once");

    // Run 3: the webhook works again. It gets the problem; Slack hears the webhook
    // recovered; nothing about the channels stays open.
    http.answer("/hook", Answer::Ok);
    at(&mut ws, 2);
    let (run, doc) = ws.run_json(&["--check-alerts"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert_eq!(alerts_of(&doc), (1, 0, 1, 0, 0), "{doc:#}");
    assert_eq!(run.kinds(), ["location_unavailable"]);
    let hook = http.take("/hook");
    assert_eq!(hook.len(), 1, "nothing about its own failure");
    let h = &hook[0];
    assert_eq!(h["source"], "backup-monitor");
    assert_eq!(h["status"], "critical");
    assert_eq!(h["counts"]["new"], 1);
    assert_eq!(
        events(h),
        [("open".to_string(), "location_unavailable".to_string())]
    );
    let alert = &h["groups"][0]["alerts"][0];
    assert_eq!(h["groups"][0]["location"], "db_main");
    assert_eq!(alert["severity"], "critical");
    assert_eq!(alert["since"], "2026-11-21T12:00:00+00:00");
    assert!(alert["hint"].as_str().unwrap().contains("mounted"));
    assert!(alert["message"].as_str().unwrap().contains("db"));
    let slack = http.take("/slack");
    assert_eq!(slack.len(), 1);
    assert!(
        slack[0]["text"].as_str().unwrap().contains("RESOLVED"),
        "{:#}",
        slack[0]
    );

    let status = ws.run_json(&["--status"]).1;
    let open = status["open_alerts"].as_array().unwrap();
    assert_eq!(open.len(), 1, "{status:#}");
    assert_eq!(open[0]["kind"], "location_unavailable");
    assert_eq!(open[0]["failing_channels"], serde_json::json!([]));
}

#[test]
fn a_channel_failure_is_told_at_once_and_its_recovery_in_the_run_it_recovers() {
    let http = HttpSink::start();
    let mut ws = workspace(
        "alerts:\n  timeout: 1s\n  log: { enabled: false }\n  slack:\n    enabled: true\n    \
         webhook_url: ${TEST_SLACK_URL}\n  webhook:\n    enabled: true\n    url: ${TEST_HOOK_URL}\n",
    )
    .env("TEST_SLACK_URL", &http.slack_url())
    .env("TEST_HOOK_URL", &http.hook_url());
    http.answer("/slack", Answer::Error500);

    // Run 1: Slack fails; the webhook hears the problem and then Slack's failure.
    let (_, doc) = ws.run_json(&["--monitor", "--check-alerts"]);
    assert_eq!(alerts_of(&doc), (2, 0, 0, 0, 1), "{doc:#}");
    let hook = http.take("/hook");
    assert_eq!(hook.len(), 2, "{hook:#?}");
    assert_eq!(
        events(&hook[0]),
        [("open".to_string(), "location_unavailable".to_string())]
    );
    assert_eq!(
        events(&hook[1]),
        [("open".to_string(), "alert_delivery_failed".to_string())]
    );
    assert_eq!(hook[1]["status"], "warning");
    assert_eq!(hook[1]["groups"][0]["location"], Value::Null);
    assert_eq!(hook[1]["groups"][0]["alerts"][0]["path"], "slack");
    assert_eq!(http.take("/slack").len(), 1, "slack was tried once");

    // Run 2: Slack delivers again. The webhook hears that Slack recovered — not, as
    // before, a "new" Slack failure in the very run Slack worked.
    http.answer("/slack", Answer::Ok);
    at(&mut ws, 1);
    let (run, doc) = ws.run_json(&["--check-alerts"]);
    assert_eq!(alerts_of(&doc), (1, 0, 1, 0, 0), "{doc:#}");
    assert_eq!(run.kinds(), ["location_unavailable"]);
    let hook = http.take("/hook");
    assert_eq!(hook.len(), 1, "{hook:#?}");
    assert_eq!(
        events(&hook[0]),
        [("resolve".to_string(), "alert_delivery_failed".to_string())]
    );
    let slack = http.take("/slack");
    assert_eq!(slack.len(), 1, "slack got the problem: {slack:#?}");
    let status = ws.run_json(&["--status"]).1;
    let open = status["open_alerts"].as_array().unwrap();
    assert_eq!(open.len(), 1, "{status:#}");
    assert_eq!(open[0]["kind"], "location_unavailable");

    // Run 3: nothing left to say inside the cooldown.
    at(&mut ws, 2);
    let (_, doc) = ws.run_json(&["--check-alerts"]);
    assert_eq!(alerts_of(&doc), (0, 0, 0, 1, 0), "{doc:#}");
    assert!(http.take("/hook").is_empty());
    assert!(http.take("/slack").is_empty());
}

#[test]
fn alert_lifecycle_over_time() {
    let http = HttpSink::start();
    let mut ws = workspace(&webhook_config(&http));

    // The location is missing: an alert opens.
    let (run, doc) = ws.run_json(&["--monitor", "--check-alerts"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert_eq!(alerts_of(&doc), (1, 0, 0, 0, 0));
    let sent = http.take("/hook");
    assert_eq!(sent.len(), 1);
    assert_eq!(
        events(&sent[0]),
        [("open".to_string(), "location_unavailable".to_string())]
    );
    assert_eq!(
        sent[0]["subject"],
        "[backup-monitor] CRITICAL db_main: location_unavailable"
    );
    let key = sent[0]["groups"][0]["alerts"][0]["dedup_key"].clone();
    assert!(key.as_str().is_some_and(|k| k.len() == 32), "{key}");

    // Same problem an hour later: nothing (cooldown 24h by default).
    at(&mut ws, 1);
    let (_, doc) = ws.run_json(&["--monitor", "--check-alerts"]);
    assert_eq!(alerts_of(&doc), (0, 0, 0, 1, 0));
    assert!(http.take("/hook").is_empty(), "nothing within the cooldown");

    // After the cooldown: a repeat.
    at(&mut ws, 25);
    let (_, doc) = ws.run_json(&["--monitor", "--check-alerts"]);
    assert_eq!(alerts_of(&doc), (0, 1, 0, 0, 0));
    let sent = http.take("/hook");
    assert_eq!(
        events(&sent[0]),
        [("repeat".to_string(), "location_unavailable".to_string())]
    );
    assert_eq!(sent[0]["summary"], "1 still open");
    assert_eq!(
        sent[0]["groups"][0]["alerts"][0]["dedup_key"], key,
        "every message about one problem carries the same key"
    );

    // Fixed: a resolved notice saying how long it lasted.
    at(&mut ws, 30);
    fix_location(&ws, ws.now.unwrap());
    let (run, doc) = ws.run_json(&["--monitor", "--check-alerts"]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert_eq!(alerts_of(&doc), (0, 0, 1, 0, 0));
    let sent = http.take("/hook");
    assert_eq!(
        events(&sent[0]),
        [("resolve".to_string(), "location_unavailable".to_string())]
    );
    let line = &sent[0]["groups"][0]["alerts"][0];
    assert_eq!(line["dedup_key"], key);
    assert_eq!(line["duration_seconds"], 30 * 3600);
    assert!(
        line["text"].as_str().unwrap().contains("lasted 1d 6h"),
        "{line:#}"
    );
    assert_eq!(sent[0]["status"], "resolved");

    // And nothing more after that.
    at(&mut ws, 31);
    let (_, doc) = ws.run_json(&["--monitor", "--check-alerts"]);
    assert_eq!(alerts_of(&doc), (0, 0, 0, 0, 0));
    assert!(http.take("/hook").is_empty());
    let status = ws.run_json(&["--status"]).1;
    assert_eq!(status["open_alerts"], serde_json::json!([]));
}

/// Judge a problem straight into the store, as another operation would have.
fn seed(ws: &Workspace, op: Operation, problems: &[Problem], hours: i64) {
    let store = ws.open_store();
    let loc = store
        .upsert_location(
            "db_main",
            &ws.path("db").display().to_string(),
            "database",
            ts(T0),
        )
        .unwrap();
    let at = ts(T0) + Duration::hours(hours);
    // As if a --monitor had just judged it: not stale.
    store.record_location_scan(loc, true, None, at).unwrap();
    store
        .sync_problems(op, Some(loc), problems, &|_| true, at)
        .unwrap();
}

#[test]
fn a_rise_escalates_at_once_and_a_drop_deescalates_after_the_cooldown() {
    let http = HttpSink::start();
    let mut ws = workspace(&webhook_config(&http));
    let health = |sev| {
        Problem::new(
            Kind::HealthDegraded,
            sev,
            "db_main",
            "health 0.62 is under 0.8",
        )
    };
    seed(&ws, Operation::Report, &[health(Severity::Warning)], 0);
    let (run, doc) = ws.run_json(&["--check-alerts"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert_eq!(alerts_of(&doc), (1, 0, 0, 0, 0));
    assert_eq!(http.take("/hook")[0]["status"], "warning");

    seed(&ws, Operation::Report, &[health(Severity::Critical)], 2);
    at(&mut ws, 2);
    let (run, doc) = ws.run_json(&["--check-alerts"]);
    assert_eq!(run.code, 2);
    assert_eq!(alerts_of(&doc), (0, 1, 0, 0, 0));
    let sent = http.take("/hook");
    assert_eq!(
        events(&sent[0]),
        [("escalate".to_string(), "health_degraded".to_string())]
    );
    let line = &sent[0]["groups"][0]["alerts"][0];
    assert_eq!(line["previous_severity"], "warning");
    assert_eq!(line["severity"], "critical");
    assert_eq!(sent[0]["summary"], "1 escalated");
    assert!(
        line["text"]
            .as_str()
            .unwrap()
            .starts_with("[WARNING → CRITICAL] health_degraded"),
        "{line:#}"
    );

    at(&mut ws, 3);
    let (_, doc) = ws.run_json(&["--check-alerts"]);
    assert_eq!(alerts_of(&doc), (0, 0, 0, 1, 0), "no second escalation");
    assert!(http.take("/hook").is_empty());

    // Back to a warning: no message at once (a drop is not urgent) …
    seed(&ws, Operation::Report, &[health(Severity::Warning)], 4);
    at(&mut ws, 4);
    let (run, doc) = ws.run_json(&["--check-alerts"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert_eq!(
        alerts_of(&doc),
        (0, 0, 0, 1, 0),
        "a drop waits for the cooldown"
    );
    assert!(http.take("/hook").is_empty());
    // … and once the cooldown allows a repeat, it is worded as a de-escalation.
    at(&mut ws, 27);
    let (_, doc) = ws.run_json(&["--check-alerts"]);
    assert_eq!(alerts_of(&doc), (0, 1, 0, 0, 0));
    let sent = http.take("/hook");
    assert_eq!(
        events(&sent[0]),
        [("deescalate".to_string(), "health_degraded".to_string())]
    );
    let line = &sent[0]["groups"][0]["alerts"][0];
    assert_eq!(line["previous_severity"], "critical");
    assert!(
        line["text"]
            .as_str()
            .unwrap()
            .starts_with("[CRITICAL → WARNING] health_degraded"),
        "{line:#}"
    );
}

#[test]
fn disabled_switch_sends_nothing_but_the_exit_code_still_shows_it() {
    let http = HttpSink::start();
    let ws = workspace(&format!(
        "monitoring:\n  alert_on_failure: false\n{}",
        webhook_config(&http)
    ));
    let (run, doc) = ws.run_json(&["--monitor", "--check-alerts"]);
    assert_eq!(run.code, 2);
    assert_eq!(alerts_of(&doc), (0, 0, 0, 1, 0));
    assert!(http.take("/hook").is_empty());
    let alerts: i64 = ws.store_value("SELECT COUNT(*) FROM alerts");
    assert_eq!(alerts, 0);
}

#[test]
fn notify_critical_sends_only_critical() {
    let http = HttpSink::start();
    let ws = workspace(&format!("{}  notify: critical\n", webhook_config(&http)));
    seed(
        &ws,
        Operation::Verify,
        &[
            Problem::new(
                Kind::ChecksumMismatch,
                Severity::Critical,
                "db_main",
                "content changed",
            )
            .with_path("db_1.sql"),
            Problem::new(
                Kind::SidecarInvalid,
                Severity::Warning,
                "db_main",
                "unreadable sidecar",
            )
            .with_path("db_2.sql"),
        ],
        0,
    );
    let (_, doc) = ws.run_json(&["--check-alerts"]);
    assert_eq!(alerts_of(&doc), (1, 0, 0, 1, 0));
    let sent = http.take("/hook");
    assert_eq!(
        events(&sent[0]),
        [("open".to_string(), "checksum_mismatch".to_string())]
    );
    assert_eq!(sent[0]["groups"][0]["alerts"][0]["path"], "db_1.sql");
}

#[test]
fn min_consecutive_waits_for_the_second_run() {
    let http = HttpSink::start();
    let mut ws = workspace(&format!("{}  min_consecutive: 2\n", webhook_config(&http)));
    let (_, doc) = ws.run_json(&["--monitor", "--check-alerts"]);
    assert_eq!(alerts_of(&doc), (0, 0, 0, 1, 0));
    assert!(http.take("/hook").is_empty(), "seen by one run only");
    at(&mut ws, 1);
    let (_, doc) = ws.run_json(&["--check-alerts"]);
    assert_eq!(
        alerts_of(&doc),
        (0, 0, 0, 1, 0),
        "--check-alerts alone does not judge again"
    );
    assert!(http.take("/hook").is_empty());
    at(&mut ws, 2);
    let (_, doc) = ws.run_json(&["--monitor", "--check-alerts"]);
    assert_eq!(alerts_of(&doc), (1, 0, 0, 0, 0));
    assert_eq!(
        events(&http.take("/hook")[0]),
        [("open".to_string(), "location_unavailable".to_string())]
    );
}

#[test]
fn secrets_never_leak_when_a_webhook_fails() {
    // The webhook answers 500; Slack's URL (with a token and user-info) points at a port
    // where nothing listens, so reqwest's own error (which quotes the URL) is exercised.
    let http = HttpSink::start();
    http.answer("/hook", Answer::Error500);
    let slack = format!(
        "http://bot:{SLACK_TOKEN}x@127.0.0.1:{}/services/T000/B000/{SLACK_TOKEN}",
        free_port()
    );
    let ws = workspace(
        "alerts:\n  timeout: 1s\n  slack:\n    enabled: true\n    webhook_url: ${TEST_SLACK_URL}\n  \
         webhook:\n    enabled: true\n    url: ${TEST_HOOK_URL}\n\
         reporting:\n  base_url: https://reader:${TEST_REPORT_PASSWORD}@reports.example.com/bm/\n",
    )
    .env("TEST_SLACK_URL", &slack)
    .env("TEST_HOOK_URL", &http.hook_url())
    .env("TEST_REPORT_PASSWORD", REPORT_PASSWORD);
    let mut outputs = Vec::new();
    for format in ["json", "text", "nagios"] {
        let run = ws.run(&["--monitor", "--check-alerts", "-vvv", "--format", format]);
        assert_eq!(run.code, 2, "{}", run.stderr);
        outputs.push(run.stdout);
        outputs.push(run.stderr);
    }
    let status = ws.run(&["--status", "--format", "json"]);
    outputs.push(status.stdout);
    outputs.push(std::fs::read_to_string(ws.path("logs/bm.log")).unwrap());
    outputs.push(ws.store_text());
    // What went out: the report's link without the user name and password in base_url.
    let sent = http.take("/hook");
    assert_eq!(sent.len(), 3, "the webhook was tried every run");
    for payload in &sent {
        assert_eq!(
            payload["report_url"], "https://reports.example.com/bm/latest.html",
            "{payload:#}"
        );
        outputs.push(payload.to_string());
    }
    let everything = outputs.join("\n");
    assert!(
        everything.contains("the slack alert channel could not deliver"),
        "the failure is reported:\n{everything}"
    );
    assert!(everything.contains("HTTP 500"), "with its cause");
    assert!(
        everything.contains("error sending request"),
        "reqwest's error is kept, without its URL"
    );
    for secret in [SLACK_TOKEN, HOOK_TOKEN, "bot:", REPORT_PASSWORD, "reader:"] {
        assert!(
            !everything.contains(secret),
            "`{secret}` leaked:\n{everything}"
        );
    }
}

/// Every Slack section text of the payloads, with the number of blocks of each payload.
fn slack_sections(payloads: &[Value]) -> (Vec<String>, Vec<usize>) {
    let mut texts = Vec::new();
    let mut blocks = Vec::new();
    for p in payloads {
        let all = p["blocks"].as_array().expect("blocks");
        blocks.push(all.len());
        texts.extend(
            all.iter()
                .filter_map(|b| b["text"]["text"].as_str().map(str::to_string)),
        );
    }
    (texts, blocks)
}

#[test]
fn long_location_names_keep_every_slack_section_within_3000_characters() {
    let http = HttpSink::start();
    let mut config = String::from("backups:\n  locations:\n");
    for (i, n) in [300, 3_500, 50].into_iter().enumerate() {
        config.push_str(&format!(
            "    - name: L{i}_{}\n      path: l{i}\n      type: database\n      patterns: [\"*.sql.gz\"]\n      \
             min_free_space: 0\n      restore:\n        scratch_dir: scratch\n",
            "x".repeat(n)
        ));
    }
    config.push_str(&format!(
        "logging:\n  file: null\nalerts:\n  timeout: 5s\n  log: {{ enabled: false }}\n  slack:\n    \
         enabled: true\n    webhook_url: {}\n",
        http.slack_url()
    ));
    let mut ws = Workspace::new();
    ws.now = Some(ts(T0));
    ws.write_config(&config);
    std::fs::create_dir_all(ws.path("scratch")).unwrap();
    for i in 0..3 {
        for h in [2, 26] {
            let t = ts(T0) - Duration::hours(h);
            ws.write_file(
                &format!("l{i}/db_{}.sql.gz", t.format("%Y%m%d_%H%M%S")),
                b"",
                t,
            );
        }
    }
    let (run, doc) = ws.run_json(&["--monitor", "--test-restore", "--report", "--check-alerts"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert_eq!(alerts_of(&doc).4, 0, "Slack took the message: {doc:#}");
    let payloads = http.take("/slack");
    assert!(!payloads.is_empty());
    let (sections, blocks) = slack_sections(&payloads);
    for n in &blocks {
        assert!(*n <= 50, "{n} blocks");
    }
    for t in &sections {
        let n = t.chars().count();
        assert!(
            n <= 3_000,
            "a section of {n} characters: {}…",
            t.chars().take(80).collect::<String>()
        );
    }
    let titles: Vec<&String> = sections
        .iter()
        .filter(|t| t.starts_with(":red_circle: *L"))
        .collect();
    assert!(
        titles.iter().any(|t| t.starts_with(":red_circle: *L2_xxx")),
        "{sections:#?}"
    );
    assert!(
        titles
            .iter()
            .any(|t| t.starts_with(":red_circle: *L1_xxx") && t.contains("x…*")),
        "the long name is shortened in its title: {sections:#?}"
    );
    for p in &payloads {
        let whole = serde_json::to_string(p).unwrap();
        assert!(whole.chars().count() < 40_000, "{}", whole.len());
    }
}

#[test]
fn control_characters_a_webhook_server_answers_reach_no_terminal_message_or_store() {
    const BODY: &str = "line1\r\nSubject: injected\r\n\x1b[2Jcleared\x07 <!channel> *x*";
    let http = HttpSink::start();
    http.answer("/hook", Answer::Error500With(BODY));
    let ws = workspace(&format!(
        "alerts:\n  timeout: 5s\n  log: {{ enabled: false }}\n  slack:\n    enabled: true\n    \
         webhook_url: {}\n  webhook:\n    enabled: true\n    url: {}\n",
        http.slack_url(),
        http.hook_url()
    ));
    let run = ws.run(&["--monitor", "--check-alerts"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    let status = ws.run(&["--status"]);
    let (_, doc) = ws.run_json(&["--status"]);
    let stored: Vec<String> =
        ws.store_column("SELECT message FROM problems WHERE kind = 'alert_delivery_failed'");
    assert_eq!(stored.len(), 1, "{stored:?}");
    let errors: Vec<String> =
        ws.store_column("SELECT error FROM alert_deliveries WHERE success = 0");
    let slack = http.take("/slack");
    let slack_text = slack
        .iter()
        .map(|p| p.to_string())
        .collect::<Vec<_>>()
        .join("\n");
    assert!(
        slack_text.contains("alert_delivery_failed"),
        "Slack hears of the webhook's failure: {slack_text}"
    );
    let message = doc["problems"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["kind"] == "alert_delivery_failed")
        .expect("alert_delivery_failed")["message"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        message.contains(r"\u{1b}[2Jcleared\u{7}"),
        "said escaped: {message}"
    );
    let slack_bullets: String = slack
        .iter()
        .flat_map(|p| p["blocks"].as_array().cloned().unwrap_or_default())
        .filter_map(|b| b["text"]["text"].as_str().map(str::to_string))
        .collect();
    for (what, text) in [
        ("the run's summary", run.stdout.as_str()),
        ("--status", status.stdout.as_str()),
        ("the stored problem", stored[0].as_str()),
        ("the stored delivery", errors.concat().as_str()),
        ("the JSON message", message.as_str()),
        ("Slack", slack_bullets.as_str()),
    ] {
        assert!(
            !text.chars().any(|c| c.is_control() && c != '\n'),
            "{what} holds a control character: {text:?}"
        );
    }
    assert!(
        !status.stdout.contains("\nSubject: injected"),
        "{}",
        status.stdout
    );
}

#[test]
fn a_failing_channel_is_said_as_a_problem_of_backup_monitor_itself_not_of_a_location() {
    let http = HttpSink::start();
    http.answer("/hook", Answer::Error500);
    let mut ws = workspace(&webhook_config(&http));
    // The location is missing: its alert fails on the webhook.
    let (run, doc) = ws.run_json(&["--monitor", "--check-alerts"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert_eq!(alerts_of(&doc).4, 1, "{doc:#}");
    // The location is fixed; the channel's failure stays open until it is tried again.
    at(&mut ws, 1);
    fix_location(&ws, ws.now.unwrap());
    let run = ws.run(&["--monitor"]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let nagios = ws.run(&["--status", "--format", "nagios"]);
    assert_eq!(nagios.code, 1, "{}", nagios.stderr);
    let mut lines = nagios.stdout.lines();
    let first = lines.next().unwrap_or_default();
    assert!(
        first.starts_with(
            "BACKUP WARNING - 0 critical, 1 warning problem of backup-monitor itself, 1 location OK; \
             alert_delivery_failed: the webhook alert channel could not deliver"
        ),
        "{first}"
    );
    assert_eq!(
        lines
            .next()
            .map(|l| l.starts_with("WARNING alert_delivery_failed: the webhook")),
        Some(true),
        "{}",
        nagios.stdout
    );
    let text = ws.run(&["--status"]).stdout;
    let line = text
        .lines()
        .find(|l| l.contains("alert_delivery_failed: the webhook"))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(!line.contains(" - alert_delivery_failed"), "{line}");
    assert!(
        line.trim_start().starts_with("WARNING  #") && line.contains(" alert_delivery_failed: "),
        "{line}"
    );
}
