//! `kind: job_log` through the binary: a backup system's job log in SQLite and in the
//! test PostgreSQL (`BM_TEST_PG_URL`; skipped without it unless `CI=true`). Successful
//! rows are backups of their job, judged by its schedule (overdue, gaps, sizes); a
//! failed row is `backup_job_failed` until a later run of the job succeeds; the query
//! runs read-only and `--check-config` checks its columns; the database password never
//! reaches output, logs, reports or the store.

use crate::common::{TestDatabase, Workspace, test_pg_url, ts};
use chrono::{DateTime, Duration, Utc};

const NOW: &str = "2026-11-25T12:00:00Z";

/// Rows of a SQLite job log: (job, finished_at, status, size).
type LogRow<'a> = (&'a str, &'a str, &'a str, Option<i64>);

fn write_sqlite_log(w: &Workspace, rows: &[LogRow]) {
    let db = rusqlite::Connection::open(w.path("jobs.db")).expect("open job log");
    db.execute_batch(
        "CREATE TABLE IF NOT EXISTS log (job TEXT, ts TEXT, state TEXT, bytes INTEGER)",
    )
    .expect("create log");
    for (job, at, state, bytes) in rows {
        db.execute(
            "INSERT INTO log VALUES (?1, ?2, ?3, ?4)",
            rusqlite::params![job, at, state, bytes],
        )
        .expect("insert row");
    }
}

const SQLITE_QUERY: &str =
    "SELECT job AS name, ts AS finished_at, state AS status, bytes AS size_bytes FROM log";

fn sqlite_workspace(query: &str, extra: &str) -> Workspace {
    let mut w = Workspace::new();
    w.now = Some(ts(NOW));
    w.write_config(&format!(
        "timezone: UTC\nlogging: {{ file: null }}\nbackups:\n  locations:\n    - name: nightly\n      kind: job_log\n      database_url: sqlite://jobs.db\n      query: \"{query}\"\n      schedule: daily\n      at: \"02:00\"\n      grace: 2h\n{extra}      jobs:\n        - name: db\n        - name: web\n          min_size: 1000\n"
    ));
    w
}

fn problems(doc: &serde_json::Value) -> Vec<(String, String, String)> {
    doc["problems"]
        .as_array()
        .expect("problems")
        .iter()
        .map(|p| {
            (
                p["location"].as_str().unwrap_or("").to_string(),
                p["kind"].as_str().unwrap_or("").to_string(),
                p["message"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

fn location<'a>(doc: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    doc["locations"]
        .as_array()
        .expect("locations")
        .iter()
        .find(|l| l["name"] == name)
        .unwrap_or_else(|| panic!("no location {name}: {doc:#}"))
}

#[test]
fn sqlite_successes_a_failure_and_a_gap() {
    let w = sqlite_workspace(SQLITE_QUERY, "");
    write_sqlite_log(
        &w,
        &[
            ("db", "2026-11-20T02:10:00Z", "ok", Some(5000)),
            ("db", "2026-11-21 02:10:00", "completed", Some(5000)),
            // 22 and 23 are missed: a gap, history.
            ("db", "1795486200", "success", Some(5000)), // 2026-11-24T02:10:00Z
            ("db", "2026-11-25T02:20:00+00:00", "FAILED", None),
            ("db", "2026-11-25T11:00:00Z", "running", None),
            ("web", "2026-11-24T02:30:00Z", "ok", Some(1000)),
            ("web", "2026-11-25T02:30:00Z", "ok", Some(800)),
            ("web", "2026-11-25T02:35:00Z", "partial", Some(10)),
            ("mail", "2026-11-25T02:00:00Z", "ok", Some(10)),
        ],
    );
    let (run, doc) = w.run_json(&["--monitor"]);
    assert_eq!(run.code, 2, "{}\n{}", run.stdout, run.stderr);
    let found = problems(&doc);
    let kinds: Vec<(&str, &str)> = found
        .iter()
        .map(|(l, k, _)| (l.as_str(), k.as_str()))
        .collect();
    assert!(
        kinds.contains(&("nightly.db", "missing_backup")),
        "{found:?}"
    );
    assert!(
        kinds.contains(&("nightly.db", "backup_job_failed")),
        "{found:?}"
    );
    assert!(
        kinds.contains(&("nightly.web", "undersized_backup")),
        "{found:?}"
    );
    assert_eq!(found.len(), 3, "nothing else: {found:?}");
    let failed = &found.iter().find(|p| p.1 == "backup_job_failed").unwrap().2;
    assert!(
        failed.contains("backup job db failed at 2026-11-25 02:20")
            && failed.contains("\"FAILED\"")
            && failed.contains("re-run the job"),
        "{failed}"
    );
    let db = location(&doc, "nightly.db");
    assert_eq!(db["backups_present"], 3, "{db:#}");
    let missing: Vec<&str> = db["missing_slots"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect();
    assert_eq!(
        missing,
        [
            "2026-11-22T02:00:00+00:00",
            "2026-11-23T02:00:00+00:00",
            "2026-11-25T02:00:00+00:00"
        ]
    );
    assert!(
        run.stderr.contains("status \"partial\"") && run.stderr.contains("status_map"),
        "an unknown status is named: {}",
        run.stderr
    );
    assert!(
        !doc.to_string().contains("nightly.mail"),
        "a job not listed is ignored"
    );

    // The next run finds the same failure: the same problem, not a new one.
    let (_, again) = w.run_json(&["--monitor"]);
    let id = |d: &serde_json::Value| {
        d["problems"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["kind"] == "backup_job_failed")
            .map(|p| p["id"].clone())
    };
    assert_eq!(id(&doc), id(&again));
    let count: i64 =
        w.store_value("SELECT COUNT(*) FROM problems WHERE kind = 'backup_job_failed'");
    assert_eq!(count, 1);

    // The job is re-run and succeeds: the failure and the overdue slot resolve.
    write_sqlite_log(&w, &[("db", "2026-11-25T13:00:00Z", "ok", Some(5000))]);
    let mut later = w;
    later.now = Some(ts("2026-11-25T14:00:00Z"));
    let (run, doc) = later.run_json(&["--monitor"]);
    let found = problems(&doc);
    assert!(
        found.iter().all(|p| p.0 != "nightly.db"),
        "{found:?}\n{}",
        run.stderr
    );
    let rows: Vec<(bool, String)> = later.store_rows(
        "SELECT resolved_at IS NOT NULL, message FROM problems WHERE kind = 'backup_job_failed'",
    );
    let [(resolved, message)] = &rows[..] else {
        panic!("one backup_job_failed problem: {rows:?}");
    };
    assert!(*resolved);
    assert!(
        message.contains("its run at 2026-11-25 13:00 succeeded"),
        "{message}"
    );
}

#[test]
fn a_failure_that_a_success_already_followed_is_told_once_as_resolved() {
    let w = sqlite_workspace(SQLITE_QUERY, "");
    write_sqlite_log(
        &w,
        &[
            ("db", "2026-11-24T02:10:00Z", "failed", None),
            // The same failed run listed twice (a retry logged again): one problem.
            ("db", "2026-11-24T02:10:00Z", "failed", None),
            ("db", "2026-11-24T05:00:00Z", "ok", Some(5000)),
            ("db", "2026-11-25T02:10:00Z", "ok", Some(5000)),
            ("web", "2026-11-25T02:10:00Z", "ok", Some(5000)),
        ],
    );
    let (run, doc) = w.run_json(&["--monitor"]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert!(problems(&doc).is_empty(), "{doc:#}");
    let rows: Vec<(bool, String)> = w.store_rows(
        "SELECT resolved_at = first_seen, path FROM problems WHERE kind = 'backup_job_failed'",
    );
    assert_eq!(rows, [(true, "2026-11-24T02:10:00Z".to_string())]);
}

#[test]
fn a_query_that_writes_is_refused_and_writes_nothing() {
    let w = sqlite_workspace(
        "DELETE FROM log RETURNING job AS name, ts AS finished_at, state AS status, bytes AS size_bytes",
        "",
    );
    write_sqlite_log(&w, &[("db", "2026-11-25T02:10:00Z", "ok", Some(5000))]);
    let (run, doc) = w.run_json(&["--monitor"]);
    assert_eq!(run.code, 2);
    let found = problems(&doc);
    assert!(
        found.iter().any(|(l, k, m)| l == "nightly.db"
            && k == "location_unavailable"
            && m.contains("it must only read")),
        "{found:?}"
    );
    let check = w.run(&["--check-config"]);
    assert_eq!(check.code, 3);
    assert!(check.stderr.contains("must only read"), "{}", check.stderr);
    let rows: i64 = rusqlite::Connection::open(w.path("jobs.db"))
        .unwrap()
        .query_row("SELECT COUNT(*) FROM log", [], |r| r.get(0))
        .unwrap();
    assert_eq!(rows, 1, "the log is untouched");
}

#[test]
fn check_config_names_a_missing_and_an_extra_column() {
    let w = sqlite_workspace(
        "SELECT job AS name, ts AS finished_at, state AS status, bytes FROM log",
        "",
    );
    write_sqlite_log(&w, &[]);
    let run = w.run(&["--check-config"]);
    assert_eq!(run.code, 3, "{}", run.stderr);
    assert!(
        run.stderr.contains("location nightly")
            && run.stderr.contains("lacks the column `size_bytes`")
            && run.stderr.contains("extra column `bytes`"),
        "{}",
        run.stderr
    );
    let (_, doc) = w.run_json(&["--check-config"]);
    assert_eq!(doc["valid"], false);
    assert!(
        doc["errors"][0]
            .as_str()
            .is_some_and(|e| e.contains("lacks the column `size_bytes`")),
        "{doc:#}"
    );
    let w = sqlite_workspace(SQLITE_QUERY, "");
    write_sqlite_log(&w, &[]);
    let run = w.run(&["--check-config"]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
}

#[test]
fn job_log_keys_are_checked() {
    let w = Workspace::new();
    w.write_config(
        "backups:\n  locations:\n    - name: logs\n      kind: job_log\n      path: /srv\n      database_url: mysql://u:pw-hidden-1@h/db\n      status_map:\n        failure: [ok]\n      jobs:\n        - name: 'has space'\n    - name: files\n      path: /srv\n      query: SELECT 1\n",
    );
    let run = w.run(&["--check-config"]);
    assert_eq!(run.code, 3);
    for needle in [
        "backups.locations[0].path: does not apply to kind: job_log",
        "backups.locations[0].database_url: not a job-log database URL",
        "`query` is missing",
        "backups.locations[0].status_map.failure: `ok` is listed under success too",
        "backups.locations[0].jobs[0].name: `has space` must be",
        "backups.locations[1].query: applies only to kind: job_log",
    ] {
        assert!(run.stderr.contains(needle), "{needle}: {}", run.stderr);
    }
    assert!(!run.stderr.contains("pw-hidden-1"), "{}", run.stderr);
}

#[test]
fn verify_and_restore_skip_a_job_log() {
    let w = sqlite_workspace(SQLITE_QUERY, "");
    write_sqlite_log(&w, &[("db", "2026-11-25T02:10:00Z", "ok", Some(5000))]);
    let (run, doc) = w.run_json(&["--verify", "--test-restore"]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert_eq!(doc["verification"]["checked"], 0);
    assert_eq!(doc["restore_tests"]["tested"], 0);
    let run = w.run(&["--verify", "--test-restore", "-v"]);
    assert!(
        run.stderr
            .contains("only --monitor applies, --verify skips it")
            && run
                .stderr
                .contains("only --monitor applies, --test-restore skips it"),
        "{}",
        run.stderr
    );
}

#[test]
fn hostile_rows_are_skipped_and_bounded() {
    let w = sqlite_workspace(SQLITE_QUERY, "");
    let long = "x".repeat(1_000_000);
    write_sqlite_log(
        &w,
        &[
            ("db", "2026-11-25T02:10:00Z", "ok", Some(5000)),
            ("db", "not a time\n\u{202e}", "ok", Some(5000)),
            ("db", "2026-11-24T02:10:00Z", "ok", Some(-1)),
            ("web", "2026-11-25T02:10:00Z", long.as_str(), Some(5000)),
            (long.as_str(), "2026-11-25T02:10:00Z", "ok", Some(5000)),
        ],
    );
    let (run, doc) = w.run_json(&["--monitor"]);
    assert!(
        run.stderr.len() < 10_000,
        "{} bytes of stderr",
        run.stderr.len()
    );
    assert!(
        run.stderr.contains("2 rows were skipped") && run.stderr.contains("not a time\\n\\u{202e}"),
        "{}",
        run.stderr
    );
    assert_eq!(location(&doc, "nightly.db")["backups_present"], 1);
    // web's only row has a status no one listed: it is no backup.
    assert!(
        problems(&doc)
            .iter()
            .any(|(l, k, _)| l == "nightly.web" && k == "no_backups"),
        "{doc:#}"
    );
}

/// Failed runs of job `db`, one a minute from 2026-11-24 00:00, for the `minutes` given.
fn failing_every_minute(w: &Workspace, minutes: std::ops::Range<i64>) {
    let stamps: Vec<String> = minutes
        .map(|i| (ts("2026-11-24T00:00:00Z") + Duration::minutes(i)).to_rfc3339())
        .collect();
    let rows: Vec<LogRow> = stamps
        .iter()
        .map(|t| ("db", t.as_str(), "error", None))
        .collect();
    write_sqlite_log(w, &rows);
}

#[test]
fn a_job_failing_every_run_opens_a_bounded_number_of_problems() {
    let w = sqlite_workspace(SQLITE_QUERY, "");
    failing_every_minute(&w, 0..150);
    write_sqlite_log(
        &w,
        &[
            ("db", "2026-11-23T02:10:00Z", "ok", Some(5000)),
            ("web", "2026-11-25T02:10:00Z", "ok", Some(5000)),
        ],
    );
    let (_, doc) = w.run_json(&["--monitor"]);
    let failed: Vec<String> = problems(&doc)
        .into_iter()
        .filter(|p| p.1 == "backup_job_failed")
        .map(|p| p.2)
        .collect();
    assert_eq!(failed.len(), 100);
    assert!(
        failed
            .iter()
            .any(|m| m.contains("failed at 2026-11-24 02:29")
                && m.contains("(50 earlier failed runs since the last success are not listed)")),
        "the newest says how many more: {failed:?}"
    );
}

/// A failed run stays a problem (one id) until a later run of its job succeeds: also when
/// the backup system prunes its log and the failed row is gone, and when more failures
/// come than are opened at once. No "resolved" notice goes out before the success.
#[test]
fn a_failure_stays_open_until_a_success_even_when_the_log_forgets_it() {
    let mut w = sqlite_workspace(SQLITE_QUERY, "");
    w.write_config(&format!(
        "{}alerts:\n  log:\n    enabled: true\n",
        std::fs::read_to_string(w.path("config.yaml")).unwrap()
    ));
    let failures = |doc: &serde_json::Value| -> Vec<(i64, String)> {
        let mut v: Vec<(i64, String)> = doc["problems"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|p| p["kind"] == "backup_job_failed" && p["location"] == "nightly.db")
            .map(|p| {
                (
                    p["id"].as_i64().unwrap(),
                    p["path"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        v.sort();
        v
    };
    let run_at = |w: &mut Workspace, now: &str| {
        w.now = Some(ts(now));
        let (run, doc) = w.run_json(&["--monitor", "--check-alerts"]);
        assert!(run.code < 3, "{}", run.stderr);
        doc
    };
    write_sqlite_log(
        &w,
        &[
            ("db", "2026-11-21T02:10:00Z", "ok", Some(5000)),
            ("db", "2026-11-22T02:10:00Z", "error", None),
            ("db", "2026-11-23T02:10:00Z", "error", None),
        ],
    );
    let doc = run_at(&mut w, "2026-11-23T12:00:00Z");
    let first = failures(&doc);
    assert_eq!(first.len(), 2, "{doc:#}");
    // The backup system keeps a day of log: the failure of the 22nd leaves it.
    let log = rusqlite::Connection::open(w.path("jobs.db")).unwrap();
    log.execute("DELETE FROM log WHERE ts < '2026-11-23'", [])
        .unwrap();
    write_sqlite_log(&w, &[("db", "2026-11-24T02:10:00Z", "error", None)]);
    let doc = run_at(&mut w, "2026-11-24T12:00:00Z");
    let now_open = failures(&doc);
    assert_eq!(now_open.len(), 3, "{doc:#}");
    assert!(first.iter().all(|f| now_open.contains(f)), "{now_open:?}");
    assert_eq!(doc["alerts"]["resolved"], 0, "{:#}", doc["alerts"]);
    // The job succeeds: every failure before it closes.
    write_sqlite_log(&w, &[("db", "2026-11-25T02:10:00Z", "ok", Some(5000))]);
    let doc = run_at(&mut w, "2026-11-25T12:00:00Z");
    assert_eq!(failures(&doc), [], "{doc:#}");
    // The three failures, and the overdue backup the success also ends.
    assert_eq!(doc["alerts"]["resolved"], 4, "{:#}", doc["alerts"]);
}

/// Past the failures opened at once, those already open stay open (found again, not
/// resolved) as newer ones come, until the job succeeds.
#[test]
fn failures_beyond_those_opened_at_once_are_not_resolved_by_newer_ones() {
    let mut w = sqlite_workspace(SQLITE_QUERY, "");
    failing_every_minute(&w, 0..105);
    write_sqlite_log(&w, &[("db", "2026-11-23T02:10:00Z", "ok", Some(5000))]);
    let open = |doc: &serde_json::Value| -> Vec<i64> {
        let mut ids: Vec<i64> = doc["problems"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|p| p["kind"] == "backup_job_failed")
            .map(|p| p["id"].as_i64().unwrap())
            .collect();
        ids.sort();
        ids
    };
    let (_, doc) = w.run_json(&["--monitor"]);
    let first = open(&doc);
    assert_eq!(first.len(), 100);
    failing_every_minute(&w, 105..108);
    w.now = Some(ts(NOW) + Duration::hours(1));
    let (_, doc) = w.run_json(&["--monitor"]);
    let then = open(&doc);
    assert_eq!(then.len(), 103, "three more, none resolved");
    assert!(first.iter().all(|id| then.contains(id)));
    let newest = doc["problems"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| p["message"].as_str())
        .find(|m| m.contains("failed at 2026-11-24 01:47"))
        .unwrap_or_else(|| panic!("{doc:#}"));
    assert!(
        newest.contains("(5 earlier failed runs since the last success are not listed)"),
        "{newest}"
    );
}

// PostgreSQL (with BM_TEST_PG_URL)

/// A private database on the test server, dropped at the end.
/// A fresh database on the test server for one job log (the store's own helper).
struct PgDb(TestDatabase);

impl PgDb {
    fn create() -> Option<PgDb> {
        test_pg_url()?;
        Some(PgDb(TestDatabase::create()))
    }

    /// The database's URL with `password` in it (the test server trusts loopback, so
    /// any password connects; it must still never be shown).
    fn url(&self, password: &str) -> String {
        let mut url = url::Url::parse(&self.0.url).expect("the test database's URL");
        url.set_password(Some(password)).expect("a URL with a host");
        url.to_string()
    }

    fn client(&self) -> postgres::Client {
        self.0.client()
    }
}

const PASSWORD: &str = "Pw-Secret-7731-xyz";

/// A workspace with the shipped DB4Sci example as its config, pointed at `db`.
fn db4sci_workspace(db: &PgDb, now: DateTime<Utc>) -> Workspace {
    let mut w = Workspace::new().env("DB4SCI_ADMIN_URL", &db.url(PASSWORD));
    w.now = Some(now);
    let example = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/examples/job-log-db4sci.yaml"
    ))
    .expect("read the example");
    w.write_config(&format!(
        "{example}\nlogging:\n  file: logs/backup-monitor.log\n  level: debug\n"
    ));
    let sql = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/examples/job-log-db4sci.sql"
    ))
    .expect("read the example SQL");
    db.client()
        .batch_execute(&sql)
        .expect("run the example SQL");
    w
}

/// One run of a DB4Sci job: a start row, then an end or failed row (None: still going).
fn db4sci_run(
    c: &mut postgres::Client,
    id: i64,
    job: &str,
    start: DateTime<Utc>,
    end: Option<(&str, DateTime<Utc>)>,
) {
    let at = |t: DateTime<Utc>| t.to_rfc3339();
    c.execute(
        "INSERT INTO backup_log (id, container, state, ts) VALUES ($1, $2, 'start', $3::text::timestamptz)",
        &[&id, &job, &at(start)],
    )
    .expect("insert start");
    if let Some((state, t)) = end {
        c.execute(
            "INSERT INTO backup_log (id, container, state, ts) VALUES ($1, $2, $3, $4::text::timestamptz)",
            &[&id, &job, &state, &at(t)],
        )
        .expect("insert end");
    }
}

/// Everything the program wrote, as text: the store, logs and reports.
fn written(w: &Workspace) -> String {
    let mut all = String::new();
    for entry in walkdir::WalkDir::new(w.dir.path()).into_iter().flatten() {
        if entry.file_type().is_file() {
            all.push_str(&String::from_utf8_lossy(
                &std::fs::read(entry.path()).unwrap_or_default(),
            ));
        }
    }
    all
}

#[test]
fn postgres_db4sci_log_with_a_failure_a_gap_and_a_recovery() {
    let Some(db) = PgDb::create() else { return };
    // Times near the real clock: the example's query looks back 60 days from now().
    let today = Utc::now()
        .date_naive()
        .and_hms_opt(0, 0, 0)
        .unwrap()
        .and_utc();
    let now = today + Duration::hours(12);
    let w = db4sci_workspace(&db, now);
    let mut c = db.client();
    let mut id = 0;
    let mut run = |c: &mut postgres::Client,
                   job: &str,
                   start: DateTime<Utc>,
                   end: Option<(&str, DateTime<Utc>)>| {
        id += 1;
        db4sci_run(c, id, job, start, end);
    };
    let h = Duration::hours;
    for d in 1..=10 {
        let day = today - Duration::days(d);
        // lims-prod: daily at 01:00; days -3 and -2 missed.
        if d != 2 && d != 3 {
            run(
                &mut c,
                "lims-prod",
                day + h(1),
                Some(("end", day + h(1) + Duration::minutes(20))),
            );
        }
        run(
            &mut c,
            "mydb-dev",
            day + h(3),
            Some(("end", day + h(3) + Duration::minutes(5))),
        );
        run(
            &mut c,
            "genomics",
            day + h(22),
            Some(("end", day + h(22) + Duration::minutes(30))),
        );
    }
    run(
        &mut c,
        "mydb-dev",
        today + h(3),
        Some(("end", today + h(3) + Duration::minutes(5))),
    );
    // Today's lims-prod run failed; a genomics run is still going.
    run(
        &mut c,
        "lims-prod",
        today + h(1),
        Some(("failed", today + h(1) + Duration::minutes(7))),
    );
    run(&mut c, "genomics", today + h(11), None);

    let (first, doc) = w.run_json(&["--monitor"]);
    assert_eq!(first.code, 2, "{}\n{}", first.stdout, first.stderr);
    let found = problems(&doc);
    let mut lims: Vec<&str> = found
        .iter()
        .filter(|p| p.0 == "db4sci.lims-prod")
        .map(|p| p.1.as_str())
        .collect();
    lims.sort_unstable();
    assert_eq!(lims, ["backup_job_failed", "missing_backup"], "{found:?}");
    assert!(
        found.iter().all(|p| p.0 == "db4sci.lims-prod"),
        "the other jobs are fine: {found:?}"
    );
    let failed = found.iter().find(|p| p.1 == "backup_job_failed").unwrap();
    assert!(
        failed.2.contains("backup job lims-prod failed at")
            && failed.2.contains(
                &(today + h(1) + Duration::minutes(7))
                    .format("%Y-%m-%d %H:%M")
                    .to_string()
            )
            && failed.2.contains("\"failed\""),
        "{}",
        failed.2
    );
    let missing = location(&doc, "db4sci.lims-prod")["missing_slots"]
        .as_array()
        .unwrap()
        .len();
    assert_eq!(missing, 3, "two gap days and today: {doc:#}");

    // The Nagios line and the report say the same, without the password.
    let nagios = w.run(&["--monitor", "--report", "--format", "nagios"]);
    assert!(
        nagios.stdout.contains("backup_job_failed"),
        "{}",
        nagios.stdout
    );

    // The job is re-run at 12:30 and succeeds.
    run(
        &mut c,
        "lims-prod",
        today + h(12) + Duration::minutes(30),
        Some(("end", today + h(13))),
    );
    let mut later = w;
    later.now = Some(today + h(14));
    let (after, doc) = later.run_json(&["--monitor"]);
    assert_eq!(after.code, 0, "{}\n{}", after.stdout, after.stderr);
    assert!(problems(&doc).is_empty(), "{doc:#}");
    let resolved: i64 = later.store_value(
        "SELECT COUNT(*) FROM problems WHERE kind = 'backup_job_failed' AND resolved_at IS NOT NULL",
    );
    assert_eq!(resolved, 1);

    let check = later.run(&["--check-config"]);
    assert_eq!(check.code, 0, "{}{}", check.stdout, check.stderr);

    for (what, text) in [
        ("first run", format!("{}{}", first.stdout, first.stderr)),
        ("nagios", format!("{}{}", nagios.stdout, nagios.stderr)),
        ("later run", format!("{}{}", after.stdout, after.stderr)),
        ("check-config", format!("{}{}", check.stdout, check.stderr)),
        ("files written", written(&later)),
    ] {
        assert!(!text.contains(PASSWORD), "the password is in the {what}");
    }
    assert!(
        written(&later).contains("db4sci.lims-prod"),
        "the walk read the store and logs"
    );
}

#[test]
fn postgres_read_only_transaction_timeout_and_columns() {
    let Some(db) = PgDb::create() else { return };
    let mut c = db.client();
    c.batch_execute(
        "CREATE TABLE log (job text, ended timestamptz, status text, size bigint);
         INSERT INTO log VALUES ('db', '2026-11-25 02:10+00', 'ok', 100);
         CREATE SEQUENCE s;",
    )
    .expect("create log");
    let config = |query: &str| {
        format!(
            "timezone: UTC\nlogging: {{ file: null }}\nbackups:\n  locations:\n    - name: pg\n      kind: job_log\n      database_url: ${{LOG_URL}}\n      query_timeout: 1s\n      query: \"{query}\"\n      jobs:\n        - name: db\n"
        )
    };
    let mut w = Workspace::new().env("LOG_URL", &db.url(PASSWORD));
    w.now = Some(ts(NOW));

    // A query that writes (nextval) is refused by the read-only transaction.
    w.write_config(&config(
        "SELECT job AS name, ended AS finished_at, status, size AS size_bytes FROM log WHERE nextval('s') > 0",
    ));
    let (run, doc) = w.run_json(&["--monitor"]);
    assert_eq!(run.code, 2);
    let found = problems(&doc);
    assert!(
        found
            .iter()
            .any(|(_, k, m)| k == "location_unavailable" && m.contains("read-only transaction")),
        "{found:?}"
    );
    let last: i64 = c
        .query_one("SELECT last_value FROM s WHERE is_called", &[])
        .map(|r| r.get(0))
        .unwrap_or(0);
    assert_eq!(last, 0, "the sequence never moved");

    // A query longer than query_timeout is cancelled by the server.
    w.write_config(&config(
        "SELECT job AS name, ended AS finished_at, status, size AS size_bytes FROM log WHERE pg_sleep(5) IS NOT NULL",
    ));
    let started = std::time::Instant::now();
    let (_, doc) = w.run_json(&["--monitor"]);
    assert!(started.elapsed() < std::time::Duration::from_secs(4));
    assert!(
        problems(&doc)
            .iter()
            .any(|(_, _, m)| m.contains("statement timeout")),
        "{doc:#}"
    );

    // --check-config prepares the statement and names the missing column.
    w.write_config(&config(
        "SELECT job AS name, ended AS finished_at, status FROM log",
    ));
    let run = w.run(&["--check-config"]);
    assert_eq!(run.code, 3);
    assert!(
        run.stderr.contains("lacks the column `size_bytes`"),
        "{}",
        run.stderr
    );

    // A column of a type the rows cannot be read from is named too.
    w.write_config(&config(
        "SELECT job AS name, ended::date AS finished_at, status, size AS size_bytes FROM log",
    ));
    let run = w.run(&["--check-config"]);
    assert_eq!(run.code, 3);
    assert!(
        run.stderr
            .contains("returns `finished_at` as date; it must be a timestamptz"),
        "{}",
        run.stderr
    );

    // A good query reads the row: a timestamptz, a bigint size.
    w.write_config(&config(
        "SELECT job AS name, ended AS finished_at, status, size AS size_bytes FROM log",
    ));
    let (run, doc) = w.run_json(&["--monitor"]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert_eq!(location(&doc, "pg.db")["backups_present"], 1);

    // A server that is not there: location_unavailable naming it, not the password.
    let mut gone = Workspace::new().env(
        "LOG_URL",
        &format!("postgresql://u:{PASSWORD}@127.0.0.1:1/x"),
    );
    gone.now = Some(ts(NOW));
    gone.write_config(&config("SELECT 1"));
    let (run, doc) = gone.run_json(&["--monitor"]);
    assert!(
        problems(&doc)
            .iter()
            .any(|(_, k, m)| k == "location_unavailable"
                && m.contains("cannot connect to the job log at postgresql://127.0.0.1:1/x")),
        "{doc:#}"
    );
    assert!(!run.stdout.contains(PASSWORD) && !run.stderr.contains(PASSWORD));
    let check = gone.run(&["--check-config"]);
    assert_eq!(check.code, 3);
    assert!(!check.stdout.contains(PASSWORD) && !check.stderr.contains(PASSWORD));
}

#[test]
fn the_group_name_selects_every_job_of_the_log() {
    let w = sqlite_workspace(SQLITE_QUERY, "");
    write_sqlite_log(
        &w,
        &[
            ("db", "2026-11-25T02:10:00Z", "ok", Some(5000)),
            ("web", "2026-11-25T02:30:00Z", "ok", Some(5000)),
        ],
    );
    let (run, doc) = w.run_json(&["--monitor", "--location-name", "nightly"]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let names: Vec<&str> = doc["locations"]
        .as_array()
        .expect("locations")
        .iter()
        .filter_map(|l| l["name"].as_str())
        .collect();
    assert_eq!(names, ["nightly.db", "nightly.web"], "{doc:#}");
    // One job alone, by its own name.
    let (run, doc) = w.run_json(&["--monitor", "--location-name", "nightly.web"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(
        doc["locations"].as_array().map(Vec::len),
        Some(1),
        "{doc:#}"
    );
}

#[test]
fn sizes_no_backup_can_have_are_recorded_without_overflowing_the_totals() {
    // Three runs of 2^63 - 1 bytes: their total overflowed (a panic, and no report).
    let w = sqlite_workspace(SQLITE_QUERY, "");
    w.write_config(&format!(
        "{}reporting:\n  output_dir: reports\n  formats: [json]\n  prometheus_textfile: metrics/bm.prom\n",
        std::fs::read_to_string(w.config_path()).unwrap()
    ));
    write_sqlite_log(
        &w,
        &[
            ("db", "2026-11-23T02:10:00Z", "ok", Some(i64::MAX)),
            ("db", "2026-11-24T02:10:00Z", "ok", Some(i64::MAX)),
            ("db", "2026-11-25T02:10:00Z", "ok", Some(i64::MAX)),
        ],
    );
    let run = w.run(&["--monitor", "--report"]);
    assert!(
        (0..=2).contains(&run.code),
        "exit {}: {}",
        run.code,
        run.stderr
    );
    assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(w.path("reports/latest.json")).unwrap())
            .unwrap();
    let bytes = location(&report, "nightly.db")["bytes_in_window"]
        .as_u64()
        .expect("bytes_in_window");
    assert_eq!(bytes, 3 << 50, "each size is recorded as at most 1 PiB");
}

#[test]
fn a_run_in_the_future_neither_closes_a_failure_nor_opens_one() {
    // NOW is 2026-11-25T12:00Z. A success dated 2099 closed yesterday's real failure; a
    // failure dated 9999 opened one that nothing could ever close.
    let w = sqlite_workspace(SQLITE_QUERY, "");
    write_sqlite_log(
        &w,
        &[
            ("db", "2026-11-23T02:10:00Z", "ok", Some(5000)),
            ("db", "2026-11-24T02:10:00Z", "ok", Some(5000)),
            ("db", "2026-11-25T02:10:00Z", "failed", None),
            ("db", "2099-01-01T00:00:00Z", "ok", Some(5000)),
            ("web", "2026-11-24T02:30:00Z", "ok", Some(1000)),
            ("web", "2026-11-25T02:30:00Z", "ok", Some(1000)),
            ("web", "9999-12-31T23:59:59Z", "failed", None),
        ],
    );
    let (run, doc) = w.run_json(&["--monitor"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    let found = problems(&doc);
    let of = |loc: &str, kind: &str| {
        found
            .iter()
            .filter(|(l, k, _)| l == loc && k == kind)
            .map(|(_, _, m)| m.clone())
            .collect::<Vec<_>>()
    };
    let failed = of("nightly.db", "backup_job_failed");
    assert_eq!(failed.len(), 1, "{found:#?}");
    assert!(failed[0].contains("failed at"), "{}", failed[0]);
    assert!(
        !of("nightly.db", "future_timestamp").is_empty(),
        "{found:#?}"
    );
    assert!(
        of("nightly.web", "backup_job_failed").is_empty(),
        "{found:#?}"
    );
    let future = of("nightly.web", "future_timestamp");
    assert_eq!(future.len(), 1, "{found:#?}");
    assert!(
        future[0].contains("1 failed run(s) of job web in the future"),
        "{}",
        future[0]
    );
}
