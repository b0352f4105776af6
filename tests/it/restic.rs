//! `kind: restic`: real restic repositories made in the test, snapshots with chosen
//! times (`restic backup --time`), judged through the binary like files. Skipped (saying
//! so) when restic is not installed, except under CI.

use crate::common::{Workspace, sh, ts};

/// Whether `tool` can run here; under `CI=true` a missing tool fails the test.
pub fn have(tool: &str) -> bool {
    let found = std::process::Command::new(tool)
        .arg(if tool == "borg" {
            "--version"
        } else {
            "version"
        })
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI=true but {tool} is not installed: apt-get install {}",
            if tool == "borg" { "borgbackup" } else { tool }
        );
        eprintln!("skipped: {tool} is not installed");
    }
    found
}

const PASSWORD: &str = "correct-horse-battery-staple-7731";

/// A workspace with a restic repository `repo` (password in `pw`, mode 0600) and data to
/// back up in `data/`.
fn repository() -> Workspace {
    let ws = Workspace::new();
    std::fs::write(ws.path("pw"), format!("{PASSWORD}\n")).unwrap();
    sh(
        &ws,
        "chmod 600 pw && mkdir -p data/db && echo hello > data/index.html && \
         head -c 4096 /dev/urandom > data/db/dump.sql && \
         RESTIC_PASSWORD_FILE=pw restic -r repo init -q",
    );
    ws
}

/// Back up `data/` as a snapshot taken at `time` (UTC, `YYYY-MM-DD HH:MM:SS`).
fn snapshot(ws: &Workspace, time: &str) {
    sh(
        ws,
        &format!(
            "TZ=UTC RESTIC_PASSWORD_FILE=pw restic -r repo backup -q --host db1 --tag nightly --time '{time}' data"
        ),
    );
}

fn config(ws: &Workspace, extra: &str) {
    ws.write_config(&format!(
        "timezone: UTC
backups:
  locations:
    - name: vault
      kind: restic
      repository: repo
      password_file: pw
      schedule: daily
      at: \"02:00\"
{extra}"
    ));
}

/// A repository with one snapshot (2026-12-01 02:00 UTC), the location `vault` over it
/// with `extra` config lines, the clock at noon that day.
fn one_snapshot(extra: &str) -> Workspace {
    let mut ws = repository();
    snapshot(&ws, "2026-12-01 02:00:00");
    config(&ws, extra);
    ws.now = Some(ts("2026-12-01T12:00:00Z"));
    ws
}

#[test]
fn snapshots_are_backups_and_a_missing_night_is_missing_backup() {
    if !have("restic") {
        return;
    }
    let mut ws = repository();
    snapshot(&ws, "2026-12-01 02:00:10");
    snapshot(&ws, "2026-12-02 02:00:10");
    // Another machine's snapshot in the shared repository is not this location's.
    sh(
        &ws,
        "TZ=UTC RESTIC_PASSWORD_FILE=pw restic -r repo backup -q --host web1 --time '2026-12-03 02:00:00' data",
    );
    config(&ws, "      snapshots: { host: db1, tags: [nightly] }\n");
    ws.now = Some(ts("2026-12-03T12:00:00Z"));
    let (run, doc) = ws.run_json(&["--monitor"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert_eq!(run.kinds(), ["missing_backup"], "{doc:#}");
    let message = doc["problems"][0]["message"].as_str().unwrap();
    assert!(message.contains("1 daily slot missed"), "{message}");
    // Each snapshot is a backup keyed by its short id, sized by restic.
    let paths = ws
        .store_column::<String>("SELECT path || ':' || size || ':' || ts FROM backups ORDER BY ts")
        .join(",");
    let rows: Vec<&str> = paths.split(',').collect();
    assert_eq!(rows.len(), 2, "{paths}");
    for row in &rows {
        let parts: Vec<&str> = row.split(':').collect();
        assert_eq!(parts[0].len(), 8, "a short id: {row}");
        assert!(
            parts[1].parse::<u64>().unwrap() > 4096,
            "restic's size: {row}"
        );
    }
    assert!(rows[0].ends_with(&ts("2026-12-01T02:00:10Z").timestamp().to_string()));
    // --explain lists the snapshots, not the repository's files.
    let (run, doc) = ws.run_json(&["--explain"]);
    assert_eq!(run.code, 0, "{doc:#}");
    let files = doc["locations"][0]["files"].as_array().unwrap();
    assert_eq!(files.len(), 2, "{doc:#}");
    assert_eq!(files[0]["timestamp_source"], "repository");
    assert_eq!(files[0]["timestamp"], "2026-12-01T02:00:10+00:00");
    assert_eq!(
        doc["locations"][0]["missing_slots"]
            .as_array()
            .unwrap()
            .len(),
        1
    );

    // The night's snapshot arrives late: the location is no longer overdue.
    snapshot(&ws, "2026-12-03 02:30:00");
    let (run, doc) = ws.run_json(&["--monitor"]);
    assert_eq!(run.code, 0, "{doc:#}");
    assert_eq!(doc["locations"][0]["backups_present"], 3, "{doc:#}");
}

#[test]
fn a_damaged_pack_fails_verify() {
    if !have("restic") {
        return;
    }
    let ws = one_snapshot("");
    let (run, doc) = ws.run_json(&["--monitor", "--verify"]);
    assert_eq!(run.code, 0, "{doc:#}");
    assert_eq!(doc["verification"]["passed"], 1, "{doc:#}");
    let detail: String = ws.store_value("SELECT detail FROM verifications");
    assert_eq!(detail, "restic check of data subset 1/1: no errors");

    // Flip a byte in the middle of every data pack.
    sh(
        &ws,
        "for f in repo/data/*/*; do chmod u+w \"$f\"; \
         python3 -c 'import sys; p=sys.argv[1]; b=bytearray(open(p,\"rb\").read()); b[len(b)//2]^=0xff; open(p,\"wb\").write(b)' \"$f\"; done",
    );
    let (run, doc) = ws.run_json(&["--verify"]);
    assert_eq!(run.code, 2, "{doc:#}");
    assert_eq!(run.kinds(), ["checksum_mismatch"], "{doc:#}");
    crate::schema::assert_valid(&crate::schema::run_schema(), &doc);
    assert_eq!(doc["verification"]["failed"], 1, "{doc:#}");
    let message = doc["problems"][0]["message"].as_str().unwrap();
    assert!(
        message.contains("restic check of data subset 1/1 found damage"),
        "{message}"
    );
    assert!(!message.contains(PASSWORD));

    // Restoring the damaged snapshot cannot read its data.
    let (run, doc) = ws.run_json(&["--test-restore"]);
    assert_eq!(run.code, 2, "{doc:#}");
    assert_eq!(run.kinds(), ["archive_corrupt"], "{doc:#}");
    let detail = doc["restore_tests"]["results"][0]["detail"]
        .as_str()
        .unwrap();
    assert!(detail.contains("could not restore snapshot"), "{detail}");
}

#[test]
fn the_rotation_reads_one_subset_per_run() {
    if !have("restic") {
        return;
    }
    let ws = one_snapshot("      verify_sample: 0.34\n");
    for _ in 0..4 {
        let run = ws.run(&["--monitor", "--verify"]);
        assert_eq!(run.code, 0, "{}", run.stderr);
    }
    let details = ws
        .store_column::<String>("SELECT detail FROM verifications ORDER BY id")
        .join(";");
    assert_eq!(
        details,
        "restic check of data subset 1/3: no errors;restic check of data subset 2/3: no errors;\
         restic check of data subset 3/3: no errors;restic check of data subset 1/3: no errors"
    );
}

#[test]
fn a_wrong_password_is_location_unavailable_and_the_password_is_never_shown() {
    if !have("restic") {
        return;
    }
    let mut ws = repository();
    snapshot(&ws, "2026-12-01 02:00:00");
    // restic_bin is a wrapper that records the arguments and environment names it got.
    std::fs::write(
        ws.path("restic-wrapper"),
        "#!/bin/sh\necho \"$@\" >> argv.log\nenv | cut -d= -f1 >> env.log\nexec restic \"$@\"\n",
    )
    .unwrap();
    std::fs::write(ws.path("wrong"), "wrong-password-6be1\n").unwrap();
    sh(&ws, "chmod 700 restic-wrapper && chmod 600 wrong");
    ws.write_config(
        "timezone: UTC
backups:
  locations:
    - name: vault
      kind: restic
      repository: repo
      password_file: wrong
      restic_bin: ./restic-wrapper
      env:
        AWS_SECRET_ACCESS_KEY: ${BACKEND_KEY}
",
    );
    ws = ws.env("BACKEND_KEY", "backend-secret-91f3");
    ws.now = Some(ts("2026-12-01T12:00:00Z"));
    let (run, doc) = ws.run_json(&["--monitor", "--verify", "--test-restore"]);
    assert_eq!(run.code, 2, "{doc:#}");
    assert!(
        run.kinds().contains(&"location_unavailable".to_string()),
        "{doc:#}"
    );
    let problem = doc["problems"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["kind"] == "location_unavailable")
        .unwrap();
    let message = problem["message"].as_str().unwrap();
    assert!(message.contains("wrong password"), "{message}");
    assert!(message.contains("password_file"), "{message}");
    let text = ws.run(&["--status"]);
    let log = std::fs::read_to_string(ws.path("logs/backup-monitor.log")).unwrap_or_default();
    let store = ws.store_text().into_bytes();
    let argv = std::fs::read_to_string(ws.path("argv.log")).unwrap();
    let env = std::fs::read_to_string(ws.path("env.log")).unwrap();
    for secret in ["wrong-password-6be1", PASSWORD, "backend-secret-91f3"] {
        for (what, text) in [
            ("stdout", run.stdout.as_str()),
            ("stderr", run.stderr.as_str()),
            ("status", text.stdout.as_str()),
            ("log", log.as_str()),
            ("argv", argv.as_str()),
        ] {
            assert!(!text.contains(secret), "{secret} in {what}: {text}");
        }
        assert!(
            !store.windows(secret.len()).any(|w| w == secret.as_bytes()),
            "{secret} in the store"
        );
    }
    assert!(
        !argv.contains("wrong"),
        "the password file is not an argument: {argv}"
    );
    assert!(env.lines().any(|l| l == "RESTIC_PASSWORD_FILE"), "{env}");
    assert!(env.lines().any(|l| l == "AWS_SECRET_ACCESS_KEY"), "{env}");
    assert!(
        !env.lines().any(|l| l == "BACKEND_KEY"),
        "only the location's env: {env}"
    );
}

#[test]
fn no_repository_and_no_binary_are_location_unavailable() {
    let mut ws = Workspace::new();
    std::fs::write(ws.path("pw"), "x1234\n").unwrap();
    ws.write_config(
        "backups:
  locations:
    - name: gone
      kind: restic
      repository: nowhere
      password_file: pw
    - name: nobin
      kind: restic
      repository: nowhere
      password_file: pw
      restic_bin: /nonexistent/bin/restic
",
    );
    ws.now = Some(ts("2026-12-01T12:00:00Z"));
    let (run, doc) = ws.run_json(&["--monitor"]);
    assert_eq!(run.code, 2, "{doc:#}");
    let messages: Vec<(String, String)> = doc["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["location"].as_str().unwrap().to_string(),
                format!("{} {}", p["kind"], p["message"]),
            )
        })
        .collect();
    let of = |loc: &str| {
        messages
            .iter()
            .find(|(l, _)| l == loc)
            .map(|(_, m)| m.clone())
            .unwrap_or_else(|| panic!("no problem for {loc}: {doc:#}"))
    };
    assert!(
        of("nobin").contains("location_unavailable"),
        "{}",
        of("nobin")
    );
    assert!(
        of("nobin").contains("/nonexistent/bin/restic was not found"),
        "{}",
        of("nobin")
    );
    if have("restic") {
        let gone = of("gone");
        assert!(gone.contains("location_unavailable"), "{gone}");
        assert!(gone.contains("there is no restic repository at"), "{gone}");
    }
}

#[test]
fn the_newest_snapshot_is_restored_and_validated() {
    if !have("restic") {
        return;
    }
    let mut ws = repository();
    sh(&ws, "mkdir scratch && chmod 500 data/db");
    snapshot(&ws, "2026-12-01 02:00:00");
    ws.write_config(&format!(
        "timezone: UTC
backups:
  locations:
    - name: good
      kind: restic
      repository: repo
      password_command: cat {pw}
      restore: {{ scratch_dir: scratch, expect: [\"dump.sql\", \"index.html\"], min_files: 2 }}
    - name: wanting
      kind: restic
      repository: repo
      password_file: pw
      restore: {{ scratch_dir: scratch, expect: [\"customers.csv\"] }}
    - name: bounded
      kind: restic
      repository: repo
      password_file: pw
      restore: {{ scratch_dir: scratch, max_bytes: 2KiB }}
    - name: partial
      kind: restic
      repository: repo
      password_file: pw
      restore: {{ scratch_dir: scratch, include: [\"/data/index.html\"], expect: [\"index.html\"], min_files: 1 }}
",
        pw = ws.path("pw").display()
    ));
    ws.now = Some(ts("2026-12-01T12:00:00Z"));
    let (run, doc) = ws.run_json(&["--monitor", "--test-restore"]);
    assert_eq!(run.code, 2, "{doc:#}");
    crate::schema::assert_valid(&crate::schema::run_schema(), &doc);
    let results = doc["restore_tests"]["results"].as_array().unwrap();
    let of = |loc: &str| results.iter().find(|r| r["location"] == loc).unwrap();
    assert_eq!(of("good")["result"], "passed", "{doc:#}");
    assert_eq!(of("good")["format"], "restic snapshot");
    assert_eq!(of("good")["files"], 2);
    assert!(of("good")["bytes"].as_u64().unwrap() > 4096);
    assert_eq!(of("wanting")["result"], "failed");
    assert_eq!(of("bounded")["result"], "failed");
    assert_eq!(of("partial")["result"], "passed", "{doc:#}");
    assert_eq!(of("partial")["files"], 1, "only the included path");
    let kinds: Vec<(String, String)> = doc["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["location"].as_str().unwrap().into(),
                p["kind"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert!(
        kinds.contains(&("wanting".into(), "restore_failed".into())),
        "{kinds:?}"
    );
    assert!(
        kinds.contains(&("bounded".into(), "restore_limit_exceeded".into())),
        "{kinds:?}"
    );
    assert_eq!(kinds.len(), 2, "{kinds:?}");
    // Every sandbox is gone, also those of failed tests (restic restores directories
    // with their modes; they are made removable).
    let left: Vec<_> = std::fs::read_dir(ws.path("scratch"))
        .unwrap()
        .flatten()
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn config_keys_fit_their_kind() {
    let ws = Workspace::new();
    ws.write_config(
        "backups:
  locations:
    - name: a
      kind: restic
      repository: /r
    - name: b
      kind: restic
      path: /srv
      repository: /r
      password_file: pw
      password_command: pass show r
    - name: c
      path: /srv
      password_file: pw
    - name: d
      kind: borg
      repository: /r
      password_file: pw
      env: { BORG_PASSPHRASE: x, \"bad name\": y }
      snapshots: { host: h }
    - name: e
      kind: restic
      repository: /r
      password_file: pw
      snapshots: { tags: [\"a,b\"], paths: [srv/db] }
",
    );
    let (run, doc) = ws.run_json(&["--check-config"]);
    assert_eq!(run.code, 3, "{doc:#}");
    let errors = doc["errors"].to_string();
    for expected in [
        "backups.locations[0]: kind: restic needs `password_file` or `password_command`",
        "backups.locations[1].path: does not apply to kind: restic",
        "give either `password_file` or `password_command`, not both",
        "backups.locations[2].password_file: applies only to locations with kind: restic",
        "backups.locations[3].password_file: applies only to locations with kind: restic",
        "backups.locations[3].env.BORG_PASSPHRASE: is set by backup-monitor",
        "backups.locations[3].env.bad name: an environment variable name",
        "backups.locations[3].snapshots: applies only to locations with kind: restic",
        "backups.locations[4].snapshots.tags[0]: a tag is one non-empty word without commas",
        "backups.locations[4].snapshots.paths[0]: must be an absolute path",
    ] {
        assert!(errors.contains(expected), "{expected} not in {errors}");
    }
}

/// A stand-in for restic that answers `snapshots` with `answer` (a shell snippet) and
/// exits with `code`.
fn fake_restic(ws: &Workspace, answer: &str, code: i32) {
    std::fs::write(
        ws.path("fake-restic"),
        format!("#!/bin/sh\n{answer}\nexit {code}\n"),
    )
    .unwrap();
    sh(
        ws,
        "chmod 700 fake-restic && echo pw-1234 > pw && chmod 600 pw",
    );
    ws.write_config(
        "backups:
  locations:
    - name: vault
      kind: restic
      repository: /srv/restic
      password_file: pw
      restic_bin: ./fake-restic
      restore: { timeout: 3s }
",
    );
}

#[test]
fn hostile_tool_answers_are_clear_errors() {
    let cases: [(&str, i32, &str); 7] = [
        (
            "echo '[{\"time\": 7}]'",
            0,
            "not what restic writes: at `[0].time`,",
        ),
        (
            "echo '[{\"id\":\"ab\",\"time\":\"notatime\"}]'",
            0,
            "not what restic writes: at `[0].time`,",
        ),
        (
            "echo '[{\"time\":\"2026-12-01T02:00:00Z\",\"id\":\"../../etc\"}]'",
            0,
            "not hexadecimal",
        ),
        (
            "head -c 70000000 /dev/zero",
            0,
            "printed more than 67108864 bytes",
        ),
        ("sleep 30 & sleep 30", 0, "ran longer than 3 s"),
        (
            "printf 'Fatal: \\033[31mboom\\033[0m\\nsecond line\\n' >&2",
            12,
            "wrong password",
        ),
        (
            "echo 'Fatal: something new' >&2",
            3,
            "exited with code 3 (restic says: Fatal: something new)",
        ),
    ];
    for (answer, code, expected) in cases {
        let mut ws = Workspace::new();
        fake_restic(&ws, answer, code);
        ws.now = Some(ts("2026-12-01T12:00:00Z"));
        let started = std::time::Instant::now();
        let (run, doc) = ws.run_json(&["--monitor"]);
        assert!(started.elapsed().as_secs() < 20, "{answer}: took too long");
        assert_eq!(run.code, 2, "{answer}: {doc:#}");
        assert_eq!(run.kinds(), ["location_unavailable"], "{answer}: {doc:#}");
        let message = doc["problems"][0]["message"].as_str().unwrap();
        assert!(message.contains(expected), "{answer}: {message}");
        assert!(
            !message.contains('\u{1b}'),
            "control characters are escaped: {message}"
        );
        assert!(message.len() < 1200, "bounded: {message}");
    }
}

#[test]
fn a_restore_past_its_time_is_stopped() {
    if !have("restic") {
        return;
    }
    let mut ws = repository();
    snapshot(&ws, "2026-12-01 02:00:00");
    // restic itself, except that restoring hangs (with a child holding on, too).
    std::fs::write(
        ws.path("slow-restic"),
        "#!/bin/sh\nif [ \"$1\" = restore ]; then sleep 60 & sleep 60; fi\nexec restic \"$@\"\n",
    )
    .unwrap();
    sh(&ws, "chmod 700 slow-restic");
    config(
        &ws,
        "      restic_bin: ./slow-restic\n      restore: { timeout: 2s }\n",
    );
    ws.now = Some(ts("2026-12-01T12:00:00Z"));
    let started = std::time::Instant::now();
    let (run, doc) = ws.run_json(&["--monitor", "--test-restore"]);
    assert!(started.elapsed().as_secs() < 30, "the tool was not stopped");
    assert_eq!(run.code, 2, "{doc:#}");
    assert_eq!(run.kinds(), ["restore_limit_exceeded"], "{doc:#}");
    let detail = doc["restore_tests"]["results"][0]["detail"]
        .as_str()
        .unwrap();
    assert!(detail.contains("restore.timeout"), "{detail}");
}

#[test]
fn credentials_in_the_repository_url_are_never_shown_or_stored() {
    if !have("restic") {
        return;
    }
    let mut ws = Workspace::new();
    std::fs::write(ws.path("pw"), "x-password-1\n").unwrap();
    sh(&ws, "chmod 600 pw");
    // Nothing listens on port 9 of the loopback: restic cannot reach the server.
    ws.write_config(
        "backups:
  locations:
    - name: remote
      kind: restic
      repository: rest:http://backup:url-secret-4471@127.0.0.1:9/db1
      password_file: pw
      restore: { timeout: 5s }
",
    );
    ws.now = Some(ts("2026-12-01T12:00:00Z"));
    let (run, doc) = ws.run_json(&["--monitor"]);
    assert_eq!(run.code, 2, "{doc:#}");
    assert_eq!(run.kinds(), ["location_unavailable"], "{doc:#}");
    let message = doc["problems"][0]["message"].as_str().unwrap();
    assert!(
        message.contains("rest:http://[redacted]@127.0.0.1:9/db1"),
        "{message}"
    );
    let store = ws.store_text().into_bytes();
    let log = std::fs::read_to_string(ws.path("logs/backup-monitor.log")).unwrap_or_default();
    for text in [&run.stdout, &run.stderr, &log] {
        assert!(!text.contains("url-secret-4471"), "{text}");
    }
    assert!(!store.windows(15).any(|w| w == b"url-secret-4471"));
}

/// A store with no file on this machine (PostgreSQL) keeps the tools' state in the user's
/// cache directory, private; a SQLite store beside its file. Nothing goes to the
/// temporary directory, which a reboot or a cleaner empties (a repository's cache to
/// build again, borg's security records lost).
#[test]
fn the_tools_state_is_kept_where_a_reboot_leaves_it() {
    use std::os::unix::fs::PermissionsExt;
    if !have("restic") {
        return;
    }
    let private_and_used = |dir: &std::path::Path| {
        let mode = std::fs::metadata(dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o700, "{}", dir.display());
        assert!(
            std::fs::read_dir(dir).unwrap().next().is_some(),
            "restic's cache is in {}",
            dir.display()
        );
    };

    let mut ws = repository().on_sqlite();
    snapshot(&ws, "2026-12-01 02:00:10");
    config(&ws, "");
    ws.now = Some(ts("2026-12-01T12:00:00Z"));
    let (run, doc) = ws.run_json(&["--monitor", "--verify"]);
    assert_eq!(run.code, 0, "{doc:#}");
    private_and_used(&ws.path("backup_monitor.db.tools"));

    let Some(_) = crate::common::test_pg_url() else {
        return;
    };
    let mut ws = repository();
    ws.pg = Some(crate::common::TestDatabase::create());
    snapshot(&ws, "2026-12-01 02:00:10");
    config(&ws, "");
    ws.now = Some(ts("2026-12-01T12:00:00Z"));
    let (run, doc) = ws.run_json(&["--monitor", "--verify"]);
    assert_eq!(run.code, 0, "{doc:#}");
    let host = backup_monitor::config::host_name();
    let target = backup_monitor::store::PgTarget::parse(&ws.pg.as_ref().unwrap().url).unwrap();
    let name = backup_monitor::config::pg_store_name(&host, &target);
    private_and_used(&ws.path(&format!(".cache/backup-monitor/{name}.tools")));
    let anchor = backup_monitor::config::pg_lock_anchor(&host, &target);
    let mut in_tmp = anchor.into_os_string();
    in_tmp.push(".tools");
    assert!(
        !std::path::Path::new(&in_tmp).exists(),
        "nothing in the temporary directory: {in_tmp:?}"
    );
    assert!(!ws.path("backup_monitor.db.tools").exists());
}

#[test]
fn a_check_a_lock_keeps_from_running_is_said_in_the_summary() {
    if !have("restic") {
        return;
    }
    let ws = one_snapshot("");
    // A backup still running holds the repository's lock; `restic check` needs it. Its
    // input stays open until the holder is killed.
    let mut holder = std::process::Command::new("restic")
        .current_dir(ws.dir.path())
        .args([
            "-r",
            "repo",
            "backup",
            "-q",
            "--stdin",
            "--stdin-filename",
            "held",
        ])
        .env("RESTIC_PASSWORD_FILE", "pw")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let locked = (0..100).any(|_| {
        std::thread::sleep(std::time::Duration::from_millis(100));
        std::fs::read_dir(ws.path("repo/locks")).is_ok_and(|mut d| d.next().is_some())
    });
    let (run, doc) = ws.run_json(&["--verify"]);
    let text = ws.run(&["--verify"]);
    let _ = holder.kill();
    let _ = holder.wait();
    assert!(locked, "the holder never took the lock");
    assert_eq!(run.code, 0, "{doc:#}");
    // Counted as a check that could not be done, not as nothing to check.
    assert_eq!(doc["verification"]["checked"], 1, "{doc:#}");
    assert_eq!(doc["verification"]["passed"], 0, "{doc:#}");
    assert!(
        text.stdout.contains(
            "1 checked, 0 passed, 0 failed, 0 recorded at first sight, 1 could not be read"
        ),
        "{}",
        text.stdout
    );
}
