//! Configuration handling through the binary, as a sysadmin meets it: `--check-config`
//! catches what would otherwise fail at night (alert addresses and URLs, a cron schedule
//! that never fires), errors speak the user's words with key path and line, `${VAR}`
//! works in numbers and switches, and `DATABASE_URL` from a `.env` file counts.

use crate::common;

use chrono::Duration;
use common::{Run, Workspace, ts};
use std::path::Path;

const NOW: &str = "2026-11-21T12:00:00Z";

/// A config with one location `db` at `db/`, no log file, and `extra` appended.
fn config(extra: &str) -> String {
    format!(
        "timezone: UTC\nlogging: {{ file: null }}\nbackups:\n  locations:\n    - name: db\n      path: db\n{extra}"
    )
}

/// `--check-config --format json`: the run and its errors joined by newlines.
fn check_config(w: &Workspace) -> (Run, String) {
    let (run, doc) = w.run_json(&["--check-config"]);
    let errors = doc["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .map(|e| e.as_str().unwrap_or("").to_string())
        .collect::<Vec<_>>()
        .join("\n");
    (run, errors)
}

/// Assert the config is invalid and every `needles` appears in one error line.
fn assert_error(w: &Workspace, needles: &[&str]) -> String {
    let (run, errors) = check_config(w);
    assert_eq!(run.code, 3, "invalid config exits 3: {errors}");
    assert!(
        errors
            .lines()
            .any(|line| needles.iter().all(|n| line.contains(n))),
        "no error line holds all of {needles:?}:\n{errors}"
    );
    errors
}

fn assert_valid(w: &Workspace) {
    let (run, errors) = check_config(w);
    assert_eq!(run.code, 0, "config should be valid: {errors}");
}

// Alert settings that could otherwise only fail when an alert is sent.

#[test]
fn check_config_rejects_email_addresses_and_port_of_an_enabled_channel() {
    let w = Workspace::new();
    w.write_config(&config(
        "alerts:\n  email:\n    enabled: true\n    smtp_host: smtp.example.com\n    smtp_port: 0\n    from: notanemail\n    to: [ops@example.com, bad]\n",
    ));
    assert_error(
        &w,
        &["alerts.email.from", "`notanemail`", "not an email address"],
    );
    assert_error(&w, &["alerts.email.to[1]", "`bad`", "not an email address"]);
    assert_error(&w, &["alerts.email.smtp_port", "not a port"]);

    w.write_config(&config(
        "alerts:\n  email:\n    enabled: true\n    smtp_host: smtp.example.com\n    from: \"Backups <backups@example.com>\"\n    to: [ops@example.com]\n",
    ));
    assert_valid(&w);
}

#[test]
fn check_config_rejects_webhook_urls_without_echoing_them() {
    for (url, reason) in [
        ("notaurl-SECRET", "not an absolute URL"),
        (
            "hooks.slack.com/services/T0/B0/SECRET",
            "not an absolute URL",
        ),
        ("ftp://example.com/SECRET", "https://"),
        ("http://127.0.0.1:99999/SECRET", "invalid port number"),
    ] {
        let w = Workspace::new();
        w.write_config(&config(&format!(
            "alerts:\n  slack:\n    enabled: true\n    webhook_url: {url}\n  webhook:\n    enabled: true\n    url: ${{BM_TEST_HOOK}}\n"
        )));
        let w = w.env("BM_TEST_HOOK", url);
        let errors = assert_error(&w, &["alerts.slack.webhook_url", reason]);
        assert_error(&w, &["alerts.webhook.url", reason]);
        assert!(
            !errors.contains("SECRET"),
            "a webhook URL is a secret: {errors}"
        );
        let run = w.run(&["--check-config"]);
        assert!(
            !run.stderr.contains("SECRET") && !run.stdout.contains("SECRET"),
            "{}",
            run.stderr
        );
    }
}

#[test]
fn check_config_keeps_the_smtp_password_secret_and_skips_disabled_channels() {
    let w = Workspace::new().env("BM_TEST_SMTP_PASSWORD", "hunter2-SECRET");
    w.write_config(&config(
        "alerts:\n  email:\n    enabled: true\n    smtp_host: smtp.example.com\n    smtp_port: 0\n    password: ${BM_TEST_SMTP_PASSWORD}\n    from: nobody\n    to: [ops@example.com]\n  slack:\n    enabled: false\n    webhook_url: notaurl\n  webhook:\n    enabled: false\n    url: ftp://x\n",
    ));
    let errors = assert_error(&w, &["alerts.email.from"]);
    assert!(!errors.contains("hunter2"), "{errors}");
    assert!(
        !errors.contains("slack") && !errors.contains("webhook"),
        "disabled channels are not checked: {errors}"
    );
    let w = Workspace::new();
    w.write_config(&config(
        "alerts:\n  slack:\n    enabled: true\n    webhook_url: https://hooks.slack.com/services/T0/B0/X\n  webhook:\n    enabled: true\n    url: http://127.0.0.1:8080/hook\n",
    ));
    assert_valid(&w);
}

// A cron schedule that never fires would never report a missing backup.

#[test]
fn cron_schedule_that_never_fires_is_a_config_error() {
    let mut w = Workspace::new();
    w.now = Some(ts(NOW));
    std::fs::create_dir_all(w.path("db")).unwrap();
    w.write_config(&config("      schedule: \"0 0 30 2 *\"\n"));
    assert_error(
        &w,
        &[
            "backups.locations[0].schedule",
            "`0 0 30 2 *`",
            "never fires",
            "line 7",
        ],
    );
    let (run, doc) = w.run_json(&["--monitor"]);
    assert_eq!(run.code, 3);
    assert_eq!(doc["status"], "unknown");
    assert!(doc["error"].as_str().unwrap().contains("never fires"));

    w.write_config(&config("      schedule: \"0 0 29 2 *\"\n"));
    assert_valid(&w);
}

// DATABASE_URL in a .env file.

/// Run `--monitor` with the config at `etc/bm.yaml` and the workspace as working
/// directory, so `.env` beside the config and `.env` in the working directory differ.
fn monitor_with_config_in_etc(w: &Workspace, database_url: Option<&str>) -> Run {
    let mut cmd = common::binary();
    cmd.current_dir(w.dir.path())
        .args(["--config", "etc/bm.yaml", "--monitor", "--no-progress"])
        .env("BACKUP_MONITOR_NOW", NOW);
    if let Some(url) = database_url {
        cmd.env("DATABASE_URL", url);
    }
    cmd.output().unwrap().into()
}

fn stores_in(dir: &Path) -> Vec<String> {
    let mut found: Vec<String> = walk(dir)
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "db"))
        .map(|p| p.strip_prefix(dir).unwrap().display().to_string())
        .collect();
    found.sort();
    found
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let p = entry.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[test]
fn database_url_in_dotenv_beats_database_url_and_follows_the_precedence() {
    let w = Workspace::new();
    std::fs::create_dir_all(w.path("etc/db")).unwrap();
    std::fs::write(
        w.path("etc/bm.yaml"),
        config("").replace(
            "timezone",
            "database_url: sqlite://from-config.db\ntimezone",
        ),
    )
    .unwrap();
    std::fs::write(w.path("etc/.env"), "DATABASE_URL=sqlite://beside.db\n").unwrap();
    std::fs::write(w.path(".env"), "DATABASE_URL=sqlite://cwd.db\n").unwrap();

    let run = monitor_with_config_in_etc(&w, None);
    assert_ne!(run.code, 3, "{}", run.stderr);
    assert_eq!(
        stores_in(w.dir.path()),
        ["etc/beside.db"],
        ".env beside the config wins over the working directory's, and its relative path is relative to its own directory"
    );

    std::fs::remove_file(w.path("etc/.env")).unwrap();
    monitor_with_config_in_etc(&w, None);
    assert_eq!(
        stores_in(w.dir.path()),
        ["cwd.db", "etc/beside.db"],
        ".env in the working directory still beats database_url"
    );

    monitor_with_config_in_etc(&w, Some("sqlite://process.db"));
    assert!(
        w.path("process.db").exists(),
        "the process environment wins over every .env"
    );
    assert!(!w.path("etc/from-config.db").exists());
}

#[test]
fn bad_database_url_in_dotenv_names_the_file_not_the_password() {
    // The .env file's DATABASE_URL is read only without one in the process environment.
    let w = Workspace::sqlite();
    w.write_config(&config(""));
    std::fs::write(
        w.path(".env"),
        "DATABASE_URL=postgres://monitor:hunter2@db.example.com/backups?sslmode=bogus\n",
    )
    .unwrap();
    let errors = assert_error(&w, &["DATABASE_URL", ".env", "sslmode `bogus`"]);
    assert!(!errors.contains("hunter2"), "{errors}");
}

// The parser's own wording is replaced by the user's.

#[test]
fn parser_errors_are_worded_for_the_user_with_key_and_line() {
    let w = Workspace::new();
    w.write_config(&config("      min_count: 3\n      min_count: 4\n"));
    let errors = assert_error(
        &w,
        &[
            "backups.locations[0]",
            "duplicate key `min_count`",
            "each key may appear once",
            "line 8",
        ],
    );
    assert!(
        !errors.contains("DuplicateKeyPolicy") && !errors.contains(".?"),
        "{errors}"
    );

    w.write_config(&format!("{}---\n{}", config(""), config("")));
    let errors = assert_error(
        &w,
        &[
            "more than one YAML document",
            "put the whole configuration in one",
        ],
    );
    assert!(!errors.contains("from_str_multiple"), "{errors}");

    w.write_config("monitoring:\n  health_warning: 80%\n");
    let errors = assert_error(
        &w,
        &[
            "monitoring.health_warning",
            "expected a number from 0 to 1",
            "`80%`",
            "line 2",
        ],
    );
    assert!(!errors.contains("invalid floating point"), "{errors}");

    w.write_config(&config(
        "      retention_days: lots\n      min_count: [1]\n",
    ));
    let errors = assert_error(
        &w,
        &[
            "backups.locations[0].retention_days",
            "expected a whole number of days from 1 to 36500 (100 years)",
            "`lots`",
            "line 7",
        ],
    );
    assert!(!errors.contains("invalid i64"), "{errors}");

    w.write_config(&config("      min_count: many\n"));
    let errors = assert_error(
        &w,
        &[
            "min_count",
            "expected a whole number from 0 to 4294967295",
            "line 7",
        ],
    );
    assert!(!errors.contains("invalid u32"), "{errors}");

    w.write_config("backups: [db]\n");
    assert_error(&w, &["backups", "expected a mapping", "line 1"]);
}

// `${VAR}` in numbers and switches, and in location names.

#[test]
fn numbers_and_switches_take_interpolated_strings() {
    let mut w = Workspace::new()
        .env("BM_TEST_MIN_COUNT", "3")
        .env("BM_TEST_RECURSIVE", "true")
        .env("BM_TEST_LOCATION", "nightly");
    w.now = Some(ts(NOW));
    let t = ts("2026-11-21T02:00:00Z");
    w.write_file(
        "db/sub/db_20261121_020000.sql.gz",
        &[b'x'; 64],
        t + Duration::minutes(5),
    );
    w.write_config(
        "timezone: UTC\nlogging: { file: null }\nmonitoring:\n  health_warning: \"${BM_TEST_WARN:-0.9}\"\nalerts:\n  send_resolved: \"${BM_TEST_RESOLVED:-false}\"\n  email:\n    smtp_port: \"${BM_TEST_PORT:-465}\"\nbackups:\n  locations:\n    - name: \"${BM_TEST_LOCATION}\"\n      path: db\n      recursive: \"${BM_TEST_RECURSIVE}\"\n      retention_days: \"${BM_TEST_RETENTION:-30}\"\n      min_count: \"${BM_TEST_MIN_COUNT}\"\n      schedule: \"${BM_TEST_SCHEDULE:-daily}\"\n",
    );
    assert_valid(&w);
    let (run, doc) = w.run_json(&["--monitor"]);
    assert_eq!(doc["locations"][0]["name"], "nightly", "{}", run.stdout);
    assert_eq!(
        doc["locations"][0]["backups_present"], 1,
        "recursive: \"${{BM_TEST_RECURSIVE}}\" is true"
    );
    assert!(
        run.kinds().contains(&"too_few_backups".to_string()),
        "min_count: \"${{BM_TEST_MIN_COUNT}}\" is 3: {:?}",
        run.kinds()
    );
}

#[test]
fn interpolated_numbers_that_do_not_parse_name_key_and_line() {
    let w = Workspace::new().env("BM_TEST_RETENTION", "a month");
    w.write_config(&config("      retention_days: \"${BM_TEST_RETENTION}\"\n"));
    assert_error(
        &w,
        &[
            "backups.locations[0].retention_days",
            "expected a whole number",
            "`a month`",
            "line 7",
        ],
    );
    w.write_config(&config(
        "      verify_integrity: \"${BM_TEST_UNSET_SWITCH}\"\n",
    ));
    assert_error(
        &w,
        &[
            "backups.locations[0].verify_integrity",
            "BM_TEST_UNSET_SWITCH",
            "is not set",
            "line 7",
        ],
    );
    w.write_config(&config("      test_restore: \"${BM_TEST_RETENTION}\"\n"));
    assert_error(&w, &["test_restore", "expected true or false", "line 7"]);
}

#[test]
fn a_disabled_channel_may_leave_its_port_variable_unset() {
    let w = Workspace::new();
    let email = "alerts:\n  email:\n    enabled: ${BM_TEST_EMAIL_ON:-false}\n    smtp_host: smtp.example.com\n    smtp_port: ${BM_TEST_UNSET_PORT}\n    from: backups@example.com\n    to: [ops@example.com]\n";
    w.write_config(&config(email));
    assert_valid(&w);
    let w = w.env("BM_TEST_EMAIL_ON", "yes");
    w.write_config(&config(email));
    assert_error(
        &w,
        &["alerts.email.smtp_port", "BM_TEST_UNSET_PORT", "is not set"],
    );
}

#[test]
fn the_example_config_is_still_valid() {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("config.example.yaml");
    let out = common::binary()
        .args(["--check-config", "--config"])
        .arg(&example)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_postgres_url_that_is_not_postgresql_is_a_config_error_without_its_password() {
    let w = Workspace::new();
    w.write_config(
        "backups:\n  locations:\n    - name: db\n      path: db\n      restore:\n        postgres_url: \"mysql://root:hunter2@localhost/x\"\n",
    );
    let run = w.run(&["--check-config"]);
    assert_eq!(run.code, 3);
    assert!(
        run.stderr.contains("restore.postgres_url") && run.stderr.contains("not a PostgreSQL"),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains("hunter2"), "{}", run.stderr);
    for ok in ["postgresql://u@h/db", "host=h dbname=postgres"] {
        w.write_config(&format!(
            "backups:\n  locations:\n    - name: db\n      path: db\n      restore:\n        postgres_url: \"{ok}\"\n"
        ));
        assert_eq!(w.run(&["--check-config"]).code, 0, "{ok}");
    }
}

// Every error at once, hostile files, and the keys added for later features.

#[test]
fn check_config_lists_every_error_at_once() {
    let w = Workspace::new().env("BM_TEST_SIZE", "lots");
    w.write_config(&config(
        "      min_size: \"${BM_TEST_SIZE}\"\n      grace: 0s\n      patterns: ['[a']\n      schedule: weekly\n      at: \"02:00\"\n    - name: db\n      path: other\nmonitoring:\n  window_days: 0\nalerts:\n  cooldown: 0s\n  webhook:\n    enabled: true\n    url: notaurl\n",
    ));
    let (run, doc) = w.run_json(&["--check-config"]);
    assert_eq!(run.code, 3);
    let errors: Vec<&str> = doc["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .filter_map(|e| e.as_str())
        .collect();
    let all = errors.join("\n");
    for needle in [
        "backups.locations[0].min_size: `lots` is not a size",
        "backups.locations[0].grace: must be positive",
        "backups.locations[0].patterns: invalid glob `[a`",
        "backups.locations[0].at:",
        "backups.locations[1].name: duplicate location name `db`",
        "monitoring.window_days",
        "alerts.cooldown: must be positive",
        "alerts.webhook.url: not an absolute URL",
    ] {
        assert!(all.contains(needle), "missing {needle:?}:\n{all}");
    }
    assert_eq!(errors.len(), 8, "{all}");
    assert!(
        all.contains(
            "min_size: `lots` is not a size; write e.g. 512, 10KiB, 5MB or 2GiB at line 7"
        ),
        "an interpolated value keeps its line: {all}"
    );
}

#[test]
fn a_byte_that_is_not_utf8_is_reported_with_its_position() {
    let w = Workspace::new();
    std::fs::write(
        w.config_path(),
        b"timezone: UTC\nbackups:\n  locations:\n    - name: caf\xe9\n      path: db\n",
    )
    .unwrap();
    let errors = assert_error(
        &w,
        &[
            "byte 51",
            "line 4, column 16",
            "not valid UTF-8",
            "save the file as UTF-8",
        ],
    );
    assert!(
        !errors.contains("--config PATH"),
        "the file was found; no hint about choosing another: {errors}"
    );
}

#[test]
fn a_hundred_thousand_patterns_are_never_echoed_whole() {
    let mut w = Workspace::new();
    w.now = Some(ts(NOW));
    std::fs::create_dir_all(w.path("db")).unwrap();
    let bad: String = (0..100_000)
        .map(|i| format!("        - '[bad{i}'\n"))
        .collect();
    w.write_config(&config(&format!("      patterns:\n{bad}")));
    let (run, errors) = check_config(&w);
    assert_eq!(run.code, 3);
    assert_eq!(errors.lines().count(), 6, "{errors}");
    assert!(
        errors.contains("99995 more invalid globs not listed"),
        "{errors}"
    );
    assert!(run.stdout.len() < 4096, "{} bytes", run.stdout.len());

    let good: String = (0..100_000)
        .map(|i| format!("        - '*.part{i}'\n"))
        .collect();
    w.write_config(&config(&format!("      patterns:\n{good}")));
    let (run, doc) = w.run_json(&["--monitor"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    let message = doc["problems"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["kind"] == "no_backups")
        .expect("no_backups")["message"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        message.contains("\"*.part0\"") && message.contains("99995 more"),
        "{message}"
    );
    assert!(
        message.len() < 400,
        "{} bytes: {message:.300}",
        message.len()
    );
    assert!(
        run.stdout.len() < 64 * 1024,
        "{} bytes of output",
        run.stdout.len()
    );
}

#[test]
fn new_keys_are_validated() {
    let w = Workspace::new().env("BM_TEST_HEARTBEAT", "https://hc.example.com/ping/tok");
    w.write_config(&config(
        "host: backup-host-1\nmonitoring:\n  window_days: 30\n  max_run_age: 26h\n  heartbeat_url: ${BM_TEST_HEARTBEAT}\nalerts:\n  include_log: true\nreporting:\n  base_url: https://reports.example.com/\n",
    ));
    assert_valid(&w);
    w.write_config(&config(
        "monitoring:\n  window_days: 3661\n  max_run_age: 0s\n  heartbeat_url: ftp://SECRET-TOKEN@example.com/\nalerts:\n  include_log: sometimes\nreporting:\n  base_url: reports/\n",
    ));
    let (run, errors) = check_config(&w);
    assert_eq!(run.code, 3);
    for needle in [
        "monitoring.window_days: expected a whole number of days from 1 to 3660",
        "monitoring.max_run_age: must be positive",
        "monitoring.heartbeat_url: the URL must start with https:// or http://",
        "reporting.base_url: not an absolute URL",
    ] {
        assert!(errors.contains(needle), "missing {needle:?}:\n{errors}");
    }
    assert!(!errors.contains("SECRET-TOKEN"), "{errors}");
    w.write_config(&config("alerts:\n  include_log: sometimes\n"));
    assert_error(
        &w,
        &["alerts.include_log", "expected true or false", "line 8"],
    );
}

#[test]
fn a_cron_field_with_an_empty_item_is_named_not_searched() {
    // Found by fuzzing: the cron parser took `,` as a minute field matching nothing, and
    // the check that an expression ever fires searched to the parser's last year.
    let w = Workspace::new();
    w.write_config(&config("      schedule: \", * * 5 *\"\n"));
    let errors = assert_error(&w, &["schedule", "empty item", "minute"]);
    assert!(!errors.contains("never fires"), "{errors}");
}
