//! Reliability through the real binary (issue 7 items 2, 3, 6, 7): SIGKILL at many points
//! of a full run, two runs at once and stale locks, environment faults (permissions,
//! symlink loops, files changing under the scan, unwritable or full report directories, a
//! read-only store, a PostgreSQL store going away, servers that accept and hang), and the
//! permissions of what the program writes. docs/reliability.md explains each test and its
//! numbers.

use crate::common;
use crate::support;

use common::Workspace;
use serde_json::Value;
use std::collections::BTreeMap;
use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use support::{HookSink, Rng};

const ALL_OPS: [&str; 5] = [
    "--monitor",
    "--verify",
    "--test-restore",
    "--report",
    "--check-alerts",
];

fn binary() -> PathBuf {
    assert_cmd::cargo::cargo_bin("backup-monitor")
}

/// The binary on the workspace's config and store with "now" fixed, like
/// `Workspace::command`.
fn command(w: &Workspace, now: Option<chrono::DateTime<chrono::Utc>>, args: &[&str]) -> Command {
    let mut cmd = Command::new(binary());
    cmd.current_dir(w.dir.path())
        .arg("--config")
        .arg(w.config_path())
        .arg("--no-progress")
        .args(args)
        .env_remove("DATABASE_URL")
        .env_remove("BACKUP_MONITOR_CONFIG")
        .env("TZ", "UTC");
    if let Some(pg) = &w.pg {
        cmd.env("DATABASE_URL", &pg.url);
    }
    match now {
        Some(now) => cmd.env("BACKUP_MONITOR_NOW", now.to_rfc3339()),
        None => cmd.env_remove("BACKUP_MONITOR_NOW"),
    };
    cmd
}

fn spawn_quiet(mut cmd: Command) -> Child {
    cmd.stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn backup-monitor")
}

fn finish(cmd: &mut Command) -> common::Run {
    cmd.output().expect("run backup-monitor").into()
}

fn count_by<T: Ord + Clone>(items: &[T]) -> BTreeMap<T, usize> {
    let mut m = BTreeMap::new();
    for i in items {
        *m.entry(i.clone()).or_insert(0) += 1;
    }
    m
}

// ---------------------------------------------------------------------------------------
// Item 2: crash consistency.

const HISTORY_DAYS: u32 = 40;
const CRASH_CYCLES: usize = 60;
const MIN_KILLS: usize = 50;
const MAX_CYCLES: usize = 80;

fn crash_config(port: u16) -> String {
    format!(
        "timezone: UTC
database_url: sqlite://state/backup_monitor.db
logging: {{ file: logs/backup-monitor.log, level: info }}
reporting:
  output_dir: reports
  formats: [html, csv, json]
  prometheus_textfile: metrics/backup_monitor.prom
alerts:
  cooldown: 24h
  timeout: 5s
  log: {{ enabled: true }}
  webhook: {{ enabled: true, url: \"http://127.0.0.1:{port}/hook\" }}
{}",
        support::LOCATIONS_YAML
    )
}

fn crash_workspace(port: u16) -> Workspace {
    let w = Workspace::new().with_sqlite_file("state/backup_monitor.db");
    w.write_config(&crash_config(port));
    std::fs::create_dir_all(w.path("scratch")).unwrap();
    for d in 0..=HISTORY_DAYS {
        support::write_day(w.dir.path(), d);
    }
    w
}

/// The newest run recorded in the store (0 without a store or runs).
fn last_run_id(w: &Workspace) -> i64 {
    match w.try_store_rows_raw("SELECT COALESCE(MAX(id), 0) FROM runs") {
        Ok(rows) => rows[0][0].as_deref().unwrap().parse().unwrap(),
        Err(_) => 0, // killed before the first migration
    }
}

/// What the killed run had done when it died, from its own rows in the store and its
/// report snapshot (`snapshot`); `before` is the newest run before it started.
fn phase_of_killed_run(w: &Workspace, before: i64, snapshot: &Path) -> (&'static str, Option<i64>) {
    let run = last_run_id(w);
    if run <= before {
        return ("startup", None);
    }
    let finished: Option<i64> =
        w.store_value(&format!("SELECT finished_at FROM runs WHERE id = {run}"));
    if finished.is_some() {
        return ("finished", Some(run));
    }
    let n = |table: &str| -> i64 {
        w.store_value(&format!(
            "SELECT COUNT(*) FROM {table} WHERE run_id = {run}"
        ))
    };
    let phase = if n("alert_deliveries") > 0 || snapshot.exists() {
        "check-alerts"
    } else if n("restore_tests") > 0 {
        "test-restore/report"
    } else if n("verifications") > 0 {
        "verify"
    } else {
        "monitor"
    };
    (phase, Some(run))
}

fn successful_webhook_deliveries(w: &Workspace, run: i64) -> i64 {
    w.store_value(&format!(
        "SELECT COUNT(*) FROM alert_deliveries WHERE run_id = {run} AND channel = 'webhook' AND success = 1"
    ))
}

/// `PRAGMA integrity_check` of a SQLite store (None without one, or on PostgreSQL,
/// where a killed client cannot damage the server's files).
fn integrity(w: &Workspace) -> Option<String> {
    (!w.on_postgres())
        .then(|| support::integrity(&w.path(&w.sqlite_file)))
        .flatten()
}

/// Nightly runs over a growing tree, one simulated day per cycle. Each cycle runs the full
/// workflow uninterrupted on the reference copy, then on an identical copy starts the same
/// run, SIGKILLs it after a pseudo-random share of the reference's duration, checks what
/// the kill left, and runs again to completion, which must agree with the reference.
#[test]
fn sigkill_at_many_points_of_a_full_run_loses_and_repeats_nothing() {
    let (ref_hook, seq_hook) = (HookSink::start(), HookSink::start());
    let reference = crash_workspace(ref_hook.port);
    let killed = crash_workspace(seq_hook.port);
    let (reports, prom) = (
        killed.path("reports"),
        killed.path("metrics/backup_monitor.prom"),
    );
    let mut rng = Rng::new(0x5EED_0007);
    let order = rng.permutation(CRASH_CYCLES);
    let (mut kills, mut finished_first, mut window_hits) = (0usize, 0usize, 0usize);
    let mut phases: BTreeMap<&str, usize> = BTreeMap::new();
    let (mut ref_total, mut seq_total) = (Vec::new(), Vec::new());
    let mut durations = Vec::new();
    let mut delays = Vec::new();
    let started = Instant::now();
    for cycle in 0..MAX_CYCLES {
        // Runs that finish before their kill do not count: go on until enough kills landed.
        if cycle >= CRASH_CYCLES && kills >= MIN_KILLS {
            break;
        }
        let d = HISTORY_DAYS + cycle as u32;
        if cycle > 0 {
            support::write_day(reference.dir.path(), d);
            support::write_day(killed.dir.path(), d);
        }
        let at = support::day(d) + chrono::Duration::hours(12);
        let now = Some(at);
        let mut args = ALL_OPS.to_vec();
        args.extend(["--format", "json"]);

        let t = Instant::now();
        let want = finish(&mut command(&reference, now, &args));
        let duration = t.elapsed();
        durations.push(duration.as_millis() as u64);
        let want_doc = want.json();
        std::thread::sleep(Duration::from_millis(30));
        let want_alerts: Vec<String> = ref_hook
            .take()
            .iter()
            .flat_map(|(_, body)| support::alert_keys(body))
            .collect();
        ref_total.extend(want_alerts.clone());

        // Stratified over [0, 1) × the reference duration, in a shuffled order.
        let share = match order.get(cycle) {
            Some(&slot) => (slot as f64 + rng.unit()) / CRASH_CYCLES as f64,
            None => rng.unit() * 0.9,
        };
        let delay = duration.mul_f64(share);
        delays.push(delay.as_millis() as u64);
        let before = last_run_id(&killed);
        let mut child = spawn_quiet(command(&killed, now, &args));
        std::thread::sleep(delay);
        match child.try_wait().unwrap() {
            Some(_) => finished_first += 1,
            None => {
                child.kill().unwrap(); // SIGKILL
                kills += 1;
            }
        }
        child.wait().unwrap();
        std::thread::sleep(Duration::from_millis(30));
        let ctx = format!("cycle {cycle} (day {d}), killed after {delay:?} of {duration:?}");

        if let Some(ok) = integrity(&killed) {
            assert_eq!(ok, "ok", "{ctx}: integrity_check after the kill");
        }
        support::check_reports(&reports, &prom, false).unwrap_or_else(|e| panic!("{ctx}: {e}"));
        let snapshot = reports.join(format!("backup_health_{}.json", at.format("%Y%m%d_%H%M%S")));
        let (phase, killed_run) = phase_of_killed_run(&killed, before, &snapshot);
        *phases.entry(phase).or_insert(0) += 1;
        let killed_posts = seq_hook.take();
        let killed_alerts: Vec<String> = killed_posts
            .iter()
            .flat_map(|(_, body)| support::alert_keys(body))
            .collect();
        // At-least-once: a POST that arrived but whose delivery the run did not commit
        // before it died is sent again by the next run (docs/reliability.md).
        let unrecorded = !killed_posts.is_empty()
            && killed_run.is_some_and(|run| successful_webhook_deliveries(&killed, run) == 0);

        let got = finish(&mut command(&killed, now, &args));
        let got_doc = got.json();
        assert_eq!(got.code, want.code, "{ctx}: exit code\n{}", got.stderr);
        assert_eq!(
            support::problem_keys(&got_doc),
            support::problem_keys(&want_doc),
            "{ctx}: problems"
        );
        if !killed.on_postgres() {
            assert_eq!(integrity(&killed).as_deref(), Some("ok"), "{ctx}");
        }
        let left = support::sandboxes(&killed.path("scratch"));
        assert!(left.is_empty(), "{ctx}: sandboxes left behind: {left:?}");
        support::check_reports(&reports, &prom, true).unwrap_or_else(|e| panic!("{ctx}: {e}"));
        std::thread::sleep(Duration::from_millis(30));
        let mut got_alerts = killed_alerts.clone();
        got_alerts.extend(
            seq_hook
                .take()
                .iter()
                .flat_map(|(_, body)| support::alert_keys(body)),
        );
        let mut expected = want_alerts.clone();
        if unrecorded {
            window_hits += 1;
            expected.extend(killed_alerts.clone());
        }
        assert_eq!(
            count_by(&got_alerts),
            count_by(&expected),
            "{ctx}: alerts received (left) vs the reference (right); killed run sent {killed_alerts:?}"
        );
        seq_total.extend(got_alerts);
    }
    let events = count_by(
        &ref_total
            .iter()
            .map(|k| k.split(' ').next().unwrap().to_string())
            .collect::<Vec<_>>(),
    );
    durations.sort();
    println!(
        "crash consistency: {CRASH_CYCLES} cycles in {:?}: {kills} SIGKILLs, {finished_first} runs finished before their kill; \
         reference run {}..{} ms (median {} ms); delays {}..{} ms; killed during {phases:?}; \
         alerts: reference {} ({events:?}), with kills {}, at-least-once re-sends {window_hits}",
        started.elapsed(),
        durations[0],
        durations[durations.len() - 1],
        durations[durations.len() / 2],
        delays.iter().min().unwrap(),
        delays.iter().max().unwrap(),
        ref_total.len(),
        seq_total.len(),
    );
    assert!(kills >= MIN_KILLS, "only {kills} kills landed during a run");
    assert!(
        events.len() >= 3,
        "the sequence exercises opens, repeats and resolutions: {events:?}"
    );
}

// ---------------------------------------------------------------------------------------
// Item 3: overlap and contention.

/// A location whose verify takes a while: sparse files hashed in full.
fn slow_workspace(files: u32, mib: u64) -> Workspace {
    let mut w = Workspace::new();
    w.write_config(
        "timezone: UTC\nlogging: { file: null }\nbackups:\n  locations:\n    - name: big\n      path: big\n      schedule: weekly\n      test_restore: false\n",
    );
    std::fs::create_dir_all(w.path("big")).unwrap();
    let t = common::ts("2026-11-16T00:00:00Z");
    for i in 0..files {
        let p = w.path(&format!("big/big_{i}.bak"));
        let f = std::fs::File::create(&p).unwrap();
        f.set_len(mib << 20).unwrap();
        common::set_mtime(&p, t);
    }
    w.now = Some(common::ts("2026-11-21T12:00:00Z"));
    w
}

fn lock_is_held_by_another_process(lock: &Path) -> bool {
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(lock)
        .unwrap();
    match f.try_lock() {
        Ok(()) => false,
        Err(std::fs::TryLockError::WouldBlock) => true,
        Err(std::fs::TryLockError::Error(e)) => panic!("try_lock: {e}"),
    }
}

/// Watch /proc/locks until one of `pids` holds an flock on `lock`, or nothing is
/// `running` any more. Reading /proc/locks takes no lock, unlike a `try_lock` probe,
/// which could itself hold the lock for an instant and turn a starting run away.
fn saw_flock_held_by(lock: &Path, pids: &[u32], running: &dyn Fn() -> bool) -> bool {
    use std::os::unix::fs::MetadataExt;
    let ino = std::fs::metadata(lock).unwrap().ino().to_string();
    loop {
        let locks = std::fs::read_to_string("/proc/locks").unwrap_or_default();
        let held = locks.lines().any(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            f.len() >= 6
                && f[1] == "FLOCK"
                && f[5].rsplit(':').next() == Some(ino.as_str())
                && f[4].parse::<u32>().is_ok_and(|pid| pids.contains(&pid))
        });
        if held {
            return true;
        }
        if !running() {
            return false;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// A pid that surely belongs to no live process: one that just exited.
fn dead_pid() -> u32 {
    let mut c = Command::new("true").spawn().unwrap();
    let pid = c.id();
    c.wait().unwrap();
    pid
}

#[test]
fn two_runs_at_once_one_works_the_other_exits_3_naming_the_holder() {
    let w = slow_workspace(4, 96);
    let lock = w.lock_path();
    let lock_name = lock.file_name().unwrap().to_string_lossy().into_owned();
    for round in 0..4 {
        // A lock file left by a dead run must never be the pid a loser names.
        let stale = dead_pid();
        std::fs::write(&lock, stale.to_string()).unwrap();
        let args = ["--monitor", "--verify"];
        let spawn = || {
            command(&w, w.now, &args)
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        };
        let started = Instant::now();
        let (a, b) = (spawn(), spawn());
        let pids = [a.id(), b.id()];
        let waiters: Vec<_> = [a, b]
            .into_iter()
            .map(|c| {
                std::thread::spawn(move || {
                    let out = c.wait_with_output().unwrap();
                    (out, started.elapsed())
                })
            })
            .collect();
        let observed_lock =
            saw_flock_held_by(&lock, &pids, &|| waiters.iter().any(|t| !t.is_finished()));
        let outputs: Vec<(std::process::Output, Duration)> =
            waiters.into_iter().map(|t| t.join().unwrap()).collect();
        let codes: Vec<i32> = outputs
            .iter()
            .map(|(o, _)| o.status.code().unwrap())
            .collect();
        let losers: Vec<usize> = (0..2).filter(|&i| codes[i] == 3).collect();
        assert_eq!(
            losers.len(),
            1,
            "round {round}: exactly one run refused: {codes:?}"
        );
        let (loser, winner) = (losers[0], 1 - losers[0]);
        assert_ne!(codes[winner], 3, "round {round}");
        let message = String::from_utf8_lossy(&outputs[loser].0.stderr);
        assert!(
            message.contains(&format!("(pid {} on ", pids[winner])),
            "round {round}: the message names the holder's pid {} (stale {stale}): {message}",
            pids[winner]
        );
        assert!(message.contains(&lock_name), "{message}");
        let (loser_took, winner_took) = (outputs[loser].1, outputs[winner].1);
        assert!(
            loser_took < winner_took && loser_took < Duration::from_secs(2),
            "round {round}: the loser exits at once ({loser_took:?}, winner {winner_took:?})"
        );
        assert!(
            observed_lock,
            "round {round}: an OS lock is held during the run"
        );
        assert!(
            !lock_is_held_by_another_process(&lock),
            "round {round}: released at exit"
        );
        println!(
            "overlap round {round}: winner {} ({winner_took:?}), loser exit 3 after {loser_took:?}",
            pids[winner]
        );
    }
}

#[test]
fn a_lock_left_by_a_killed_run_is_taken_over() {
    let w = slow_workspace(4, 96);
    let lock = w.lock_path();
    let mut child = spawn_quiet(command(&w, w.now, &["--monitor", "--verify"]));
    let pid = child.id().to_string();
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::fs::read_to_string(&lock).unwrap_or_default() != pid {
        assert!(Instant::now() < deadline, "the run never wrote its pid");
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(lock_is_held_by_another_process(&lock));
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(
        std::fs::read_to_string(&lock).unwrap(),
        pid,
        "the killed run's lock file is still there, naming a dead pid"
    );
    assert!(
        !lock_is_held_by_another_process(&lock),
        "the OS dropped the lock with its holder"
    );
    let t = Instant::now();
    let run = w.run(&["--monitor", "--verify"]);
    assert_ne!(
        run.code, 3,
        "taken over without manual action: {}",
        run.stderr
    );
    println!("stale lock taken over; the next run took {:?}", t.elapsed());
    // A lock file with garbage or a dead pid in it is not a lock either.
    std::fs::write(&lock, "not a pid\n").unwrap();
    assert_ne!(w.run(&["--monitor"]).code, 3);
}

// ---------------------------------------------------------------------------------------
// Item 6: environment faults.

const NOBODY: &str = "65534";

/// The binary as the unprivileged user `nobody` (root reads through any permission).
fn as_nobody(w: &Workspace, args: &[&str]) -> common::Run {
    let mut cmd = Command::new("setpriv");
    cmd.args(["--reuid", NOBODY, "--regid", NOBODY, "--clear-groups", "--"])
        .arg(binary())
        .current_dir(w.dir.path())
        .arg("--config")
        .arg(w.config_path())
        .arg("--no-progress")
        .args(args)
        .env_remove("DATABASE_URL")
        .env_remove("BACKUP_MONITOR_CONFIG")
        .env("TZ", "UTC");
    if let Some(pg) = &w.pg {
        cmd.env("DATABASE_URL", &pg.url);
    }
    if let Some(now) = w.now {
        cmd.env("BACKUP_MONITOR_NOW", now.to_rfc3339());
    }
    finish(&mut cmd)
}

fn chown_nobody(path: &Path) {
    let status = Command::new("chown")
        .args(["-R", &format!("{NOBODY}:{NOBODY}")])
        .arg(path)
        .status()
        .unwrap();
    assert!(status.success());
}

fn chmod(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// Whether this process may drop to `nobody` (setpriv present, running as root).
fn can_drop_privileges() -> bool {
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    let setpriv = Command::new("setpriv")
        .args([
            "--reuid",
            NOBODY,
            "--regid",
            NOBODY,
            "--clear-groups",
            "true",
        ])
        .status()
        .is_ok_and(|s| s.success());
    if !(root && setpriv) {
        println!("skipping: needs root and setpriv to run the binary as nobody");
    }
    root && setpriv
}

const FAULTS_NOW: &str = "2026-11-21T12:00:00Z";

/// Let the unprivileged user the fault tests run as enter and own the workspace.
fn hand_to_nobody(dir: &Path) {
    chmod(dir, 0o755);
    chown_nobody(dir);
}

fn faults_workspace(extra_location_yaml: &str) -> Workspace {
    let mut w = Workspace::new();
    w.now = Some(common::ts(FAULTS_NOW));
    w.write_config(&format!(
        "timezone: UTC\nlogging: {{ file: logs/bm.log, level: info }}\nreporting: {{ output_dir: reports }}\nbackups:\n  locations:\n    - name: data\n      path: data\n      recursive: true\n      test_restore: false\n{extra_location_yaml}"
    ));
    for (i, sub) in ["a", "b", "locked"].iter().enumerate() {
        for d in 15..=20 {
            w.write_file(
                &format!("data/{sub}/f{i}_202611{d}.bak"),
                format!("backup {sub} {d}").as_bytes(),
                common::ts(&format!("2026-11-{d}T01:00:00Z")),
            );
        }
    }
    w
}

#[test]
fn unreadable_subdirectories_and_files_are_reported_and_the_rest_is_scanned() {
    if !can_drop_privileges() {
        return;
    }
    let w = faults_workspace("");
    hand_to_nobody(w.dir.path());
    let first = as_nobody(&w, &["--monitor", "--verify", "--format", "json"]);
    assert_eq!(first.code, 0, "{}", first.stderr);
    assert_eq!(first.json()["locations"][0]["backups_present"], 18);

    chmod(&w.path("data/locked"), 0o000);
    chmod(&w.path("data/a/f0_20261120.bak"), 0o000);
    let run = as_nobody(&w, &["--monitor", "--verify", "--format", "json"]);
    let doc = run.json();
    assert_eq!(
        run.kinds(),
        ["unreadable_path"],
        "one warning, no false deletion or checksum verdict:\n{}",
        run.stdout
    );
    assert_eq!(run.code, 1, "a warning");
    let message = doc["problems"][0]["message"].as_str().unwrap();
    assert!(
        message.contains("locked") && message.contains("and 1 more"),
        "{message}"
    );
    assert_eq!(
        doc["locations"][0]["backups_present"], 18,
        "nothing forgotten"
    );
    assert_eq!(
        doc["verification"]["passed"], 11,
        "the rest is still verified: {}",
        doc["verification"]
    );
    assert!(
        run.stderr.contains("data/locked: Permission denied"),
        "{}",
        run.stderr
    );

    chmod(&w.path("data/locked"), 0o755);
    chmod(&w.path("data/a/f0_20261120.bak"), 0o644);
    let run = as_nobody(&w, &["--monitor", "--verify", "--format", "json"]);
    assert_eq!(run.code, 0, "readable again: resolved\n{}", run.stdout);
    assert_eq!(run.json()["verification"]["passed"], 18);
}

#[test]
fn symlink_loops_in_recursive_scans_are_harmless() {
    let w = faults_workspace("");
    let link = |target: &str, at: &str| std::os::unix::fs::symlink(target, w.path(at)).unwrap();
    link("..", "data/a/up");
    link("../../data", "data/b/root");
    link("self", "data/self");
    link("loop2", "data/loop1");
    link("loop1", "data/loop2");
    let t = Instant::now();
    let (run, doc) = w.run_json(&["--monitor", "--verify"]);
    assert!(t.elapsed() < Duration::from_secs(20), "{:?}", t.elapsed());
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert_eq!(doc["locations"][0]["backups_present"], 18, "each file once");
}

#[test]
fn files_vanishing_and_growing_during_scan_and_hashing() {
    let w = Workspace::new();
    w.write_config(
        "timezone: UTC\nlogging: { file: null }\nbackups:\n  locations:\n    - name: churn\n      path: churn\n      schedule: \"0 * * * *\"\n      grace: 1w\n      test_restore: false\n",
    );
    let old = chrono::Utc::now() - chrono::Duration::days(1);
    for i in 0..1500 {
        w.write_file(&format!("churn/small_{i:04}.bak"), &[b'x'; 512], old);
    }
    for i in 0..3 {
        let p = w.path(&format!("churn/big_{i}.bak"));
        std::fs::write(&p, vec![7u8; 24 << 20]).unwrap();
        common::set_mtime(&p, old);
    }
    let first = w.run(&["--monitor", "--verify"]);
    assert_ne!(first.code, 3, "{}", first.stderr);

    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let churn = {
        let (dir, stop) = (w.path("churn"), stop.clone());
        std::thread::spawn(move || {
            use std::io::Write as _;
            let mut n = 0u32;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) && n < 1500 {
                let _ = std::fs::remove_file(dir.join(format!("small_{n:04}.bak")));
                let _ = std::fs::write(dir.join(format!("new_{n:04}.bak")), b"y");
                if let Ok(mut f) = std::fs::OpenOptions::new()
                    .append(true)
                    .open(dir.join(format!("big_{}.bak", n % 3)))
                {
                    let _ = f.write_all(&[1u8; 65536]);
                }
                n += 1;
                std::thread::sleep(Duration::from_micros(300));
            }
            n
        })
    };
    let (run, doc) = w.run_json(&["--monitor", "--verify"]);
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let changes = churn.join().unwrap();
    assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
    assert_ne!(run.code, 3, "{}", run.stderr);
    let allowed = ["deleted_before_retention", "modified_after_backup"];
    for k in run.kinds() {
        assert!(
            allowed.contains(&k.as_str()),
            "unexpected {k}: {}",
            run.stdout
        );
    }
    println!(
        "churn: {changes} deletions/creations/appends during the run; verification {}",
        doc["verification"]
    );
    let after = w.run(&["--monitor", "--verify", "--format", "json"]);
    assert_ne!(after.code, 3, "{}", after.stderr);
    if !w.on_postgres() {
        assert_eq!(
            support::integrity(&w.path("backup_monitor.db")).as_deref(),
            Some("ok")
        );
    }
    let on_disk = std::fs::read_dir(w.path("churn"))
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("small_"))
        .count() as u64
        + 3;
    assert_eq!(
        after.json()["locations"][0]["backups_present"],
        on_disk,
        "the store agrees with the disk once it is quiet (new files have not settled)"
    );
}

fn latest_reports(dir: &Path) -> Vec<(String, Vec<u8>)> {
    ["latest.html", "latest.csv", "latest.json"]
        .iter()
        .map(|n| (n.to_string(), std::fs::read(dir.join(n)).unwrap()))
        .collect()
}

#[test]
fn unwritable_report_directory_is_a_clear_error_and_keeps_latest_and_alerts() {
    if !can_drop_privileges() {
        return;
    }
    let w = faults_workspace("    - name: gone\n      path: gone\n");
    hand_to_nobody(w.dir.path());
    let first = as_nobody(&w, &["--monitor", "--report"]);
    assert_eq!(first.code, 2, "{}", first.stderr);
    let before = latest_reports(&w.path("reports"));
    let status = Command::new("chown")
        .arg("root:root")
        .arg(w.path("reports"))
        .status();
    assert!(status.unwrap().success());
    let run = as_nobody(&w, &["--monitor", "--report", "--check-alerts"]);
    assert_eq!(run.code, 3, "{}", run.stderr);
    assert!(
        run.stderr.contains("reports") && run.stderr.contains("Permission denied"),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains("panicked"));
    assert_eq!(
        latest_reports(&w.path("reports")),
        before,
        "previous latest.* intact"
    );
    let delivered: i64 = w.store_value("SELECT COUNT(*) FROM alert_deliveries WHERE success = 1");
    assert!(delivered > 0, "the alerts still went out");
    let (_, status) = w.run_json(&["--status"]);
    assert_eq!(
        status["last_run"]["exit_code"], 3,
        "the audit log records the failure: {status:#}"
    );
}

/// A mount that is undone when dropped (also when the test fails).
struct Mount(PathBuf);

impl Mount {
    fn new(args: &[&str], at: &Path) -> Option<Mount> {
        let out = Command::new("mount").args(args).arg(at).output().ok()?;
        if out.status.success() {
            Some(Mount(at.to_path_buf()))
        } else {
            println!(
                "skipping: `mount {}` failed here: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr).trim()
            );
            None
        }
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

#[test]
fn full_disk_for_reports_is_a_clear_error_and_keeps_latest() {
    let w = faults_workspace("");
    std::fs::create_dir_all(w.path("reports")).unwrap();
    let Some(_tmpfs) = Mount::new(
        &["-t", "tmpfs", "-o", "size=2m", "tmpfs"],
        &w.path("reports"),
    ) else {
        return;
    };
    let first = w.run(&["--monitor", "--report"]);
    assert_eq!(first.code, 0, "{}", first.stderr);
    let before = latest_reports(&w.path("reports"));
    {
        use std::io::Write as _;
        let mut filler = std::fs::File::create(w.path("reports/filler")).unwrap();
        while filler.write_all(&[0u8; 65536]).is_ok() {}
    }
    let run = w.run(&["--monitor", "--report"]);
    assert_eq!(run.code, 3, "{}", run.stderr);
    assert!(
        run.stderr.contains("No space left on device"),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains("panicked"));
    assert_eq!(
        latest_reports(&w.path("reports")),
        before,
        "previous latest.* intact"
    );
    assert_eq!(
        support::temp_files(&w.path("reports")),
        Vec::<String>::new()
    );
}

#[test]
fn store_on_a_read_only_filesystem_or_file_exits_3_clearly() {
    // The SQLite file and its directory made read-only.
    let mut w = faults_workspace("").on_sqlite();
    let config = std::fs::read_to_string(w.config_path()).unwrap();
    w.write_config(&format!("database_url: sqlite://state/bm.db\n{config}"));
    std::fs::create_dir_all(w.path("state")).unwrap();
    assert_eq!(w.run(&["--monitor"]).code, 0);
    let state = w.path("state");
    if let Some(_bind) = Mount::new(&["--bind", state.to_str().unwrap()], &state).filter(|_| {
        Command::new("mount")
            .args(["-o", "remount,bind,ro"])
            .arg(w.path("state"))
            .status()
            .is_ok_and(|s| s.success())
    }) {
        let run = w.run(&["--monitor", "--verify"]);
        println!("read-only filesystem: {}", run.stderr.trim());
        assert_eq!(run.code, 3);
        assert!(
            run.stderr.contains("state/bm.db") && run.stderr.contains("Read-only file system"),
            "{}",
            run.stderr
        );
        assert!(!run.stderr.contains("panicked"));
    }
    if !can_drop_privileges() {
        return;
    }
    hand_to_nobody(w.dir.path());
    w.now = Some(common::ts(FAULTS_NOW));
    assert_eq!(as_nobody(&w, &["--monitor"]).code, 0);
    let status = Command::new("chown")
        .arg("root:root")
        .arg(w.path("state/bm.db"))
        .status();
    assert!(status.unwrap().success());
    chmod(&w.path("state/bm.db"), 0o644);
    let run = as_nobody(&w, &["--monitor", "--verify"]);
    println!("read-only store file: {}", run.stderr.trim());
    assert_eq!(run.code, 3);
    assert!(
        run.stderr.contains("state/bm.db is read-only"),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains("panicked"));

    // The file is the user's again but its directory is not: SQLite cannot create the
    // -wal/-shm files. Not "damaged, move it aside" (that advice would throw away the
    // history), for a run and for --status alike.
    chown_nobody(&w.path("state/bm.db"));
    chmod(&w.path("state/bm.db"), 0o600);
    let status = Command::new("chown")
        .arg("root:root")
        .arg(w.path("state"))
        .status();
    assert!(status.unwrap().success());
    for args in [&["--monitor"][..], &["--status"][..]] {
        let run = as_nobody(&w, args);
        println!("read-only store directory, {args:?}: {}", run.stderr.trim());
        assert_eq!(run.code, 3, "{args:?}");
        assert!(
            run.stderr.contains("directory") && run.stderr.contains("state is not writable"),
            "{args:?}: {}",
            run.stderr
        );
        assert!(!run.stderr.contains("damaged"), "{args:?}: {}", run.stderr);
    }
}

/// The PostgreSQL store goes away in the middle of a run: the server ends the run's
/// session, as a server shutdown or restart does to every session.
#[test]
fn a_postgresql_store_going_away_mid_run_exits_3_naming_the_server_never_the_password() {
    if common::test_pg_url().is_none() {
        return;
    }
    const PASSWORD: &str = "store-pw-5c7e91";
    // Sparse files hashed in full: a verify that takes a while. The store is a database
    // of its own in either run, given to the binary with a password in its URL.
    let mut w = slow_workspace(6, 256);
    w.pg = Some(common::TestDatabase::create());
    let pg = w.pg.as_ref().unwrap();
    let (db_name, mut admin) = (pg.name().to_string(), pg.admin_client());
    let mut url = url::Url::parse(&pg.url).unwrap();
    url.set_password(Some(PASSWORD)).unwrap();
    let server = format!("{}:{}", url.host_str().unwrap(), url.port().unwrap());
    let w = w.env("DATABASE_URL", url.as_str());
    let child = w
        .process()
        .args(["--monitor", "--verify", "-v"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let sessions = "SELECT COUNT(*) FROM pg_stat_activity WHERE datname = $1";
    let deadline = Instant::now() + Duration::from_secs(30);
    while admin
        .query_one(sessions, &[&db_name])
        .unwrap()
        .get::<_, i64>(0)
        == 0
    {
        assert!(Instant::now() < deadline, "the run never connected");
        std::thread::sleep(Duration::from_millis(5));
    }
    // Into its work: the schema is set up and the scan recorded.
    std::thread::sleep(Duration::from_millis(300));
    let ended: i64 = admin
        .query_one(
            "SELECT COUNT(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE datname = $1 AND pid <> pg_backend_pid()) AS t",
            &[&db_name],
        )
        .unwrap()
        .get(0);
    let out = child.wait_with_output().unwrap();
    let run: common::Run = out.into();
    println!(
        "ended {ended} session(s); the run said: {}",
        run.stderr.trim()
    );
    assert!(ended >= 1, "the run's session was ended");
    assert_eq!(run.code, 3, "{}{}", run.stdout, run.stderr);
    assert!(run.stderr.contains(&server), "{}", run.stderr);
    assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
    for text in [&run.stdout, &run.stderr] {
        assert!(!text.contains(PASSWORD), "{text}");
    }
}

#[test]
fn servers_that_accept_and_hang_do_not_hang_the_run() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for conn in listener.incoming().flatten() {
            held.push(conn); // accept, then never say or read anything
        }
    });
    let w = Workspace::new();
    w.write_config(&format!(
        "timezone: UTC\nlogging: {{ file: null }}\nalerts:\n  timeout: 2s\n  email: {{ enabled: true, smtp_host: 127.0.0.1, smtp_port: {port}, security: none, from: bm@example.com, to: [ops@example.com] }}\n  slack: {{ enabled: true, webhook_url: \"http://127.0.0.1:{port}/slack\" }}\n  webhook: {{ enabled: true, url: \"http://127.0.0.1:{port}/hook\" }}\nbackups:\n  locations:\n    - name: gone\n      path: gone\n"
    ));
    let t = Instant::now();
    let (run, doc) = w.run_json(&["--monitor", "--check-alerts"]);
    let took = t.elapsed();
    println!("three hanging channels with alerts.timeout 2s: the run took {took:?}");
    assert!(took < Duration::from_secs(20), "{took:?}");
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert_eq!(doc["alerts"]["delivery_failures"], 1, "{}", doc["alerts"]);
    let failed: Vec<&Value> = doc["problems"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["kind"] == "alert_delivery_failed")
        .collect();
    assert_eq!(failed.len(), 3, "one per channel: {failed:?}");
    for p in failed {
        let m = p["message"].as_str().unwrap();
        assert!(
            m.contains("2s") || m.contains("timed out") || m.contains("timeout"),
            "{m}"
        );
    }
}

// ---------------------------------------------------------------------------------------
// Item 7: permissions and secrets.

fn mode(p: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::symlink_metadata(p).unwrap().permissions().mode() & 0o7777
}

#[test]
fn store_logs_and_sandboxes_are_private() {
    // The modes of the SQLite store file, its lock and WAL beside it.
    let w = Workspace::sqlite();
    w.write_config(
        "timezone: UTC\ndatabase_url: sqlite://state/bm.db\nlogging: { file: logs/bm.log, level: debug }\nbackups:\n  locations:\n    - name: site\n      path: site\n      restore: { scratch_dir: scratch }\n",
    );
    std::fs::create_dir_all(w.path("scratch")).unwrap();
    // 300 MiB of zeros: a small archive whose extraction takes a while.
    let mut builder = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_gnu();
    header.set_size(300 << 20);
    header.set_mode(0o4755);
    header.set_cksum();
    builder
        .append_data(&mut header, "big.bin", std::io::repeat(0).take(300 << 20))
        .unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut gz, &builder.into_inner().unwrap()).unwrap();
    w.write_file(
        "site/site_20261120.tar.gz",
        &gz.finish().unwrap(),
        chrono::Utc::now() - chrono::Duration::days(1),
    );
    let mut child = spawn_quiet(command(&w, None, &["--monitor", "--test-restore"]));
    let (mut sandbox_modes, mut file_modes) = (Vec::new(), Vec::new());
    while child.try_wait().unwrap().is_none() {
        for dir in support::sandboxes(&w.path("scratch")) {
            if let Ok(meta) = std::fs::symlink_metadata(&dir) {
                use std::os::unix::fs::PermissionsExt;
                sandbox_modes.push(meta.permissions().mode() & 0o7777);
            }
            if let Ok(meta) = std::fs::symlink_metadata(dir.join("big.bin")) {
                use std::os::unix::fs::PermissionsExt;
                file_modes.push(meta.permissions().mode() & 0o7777);
            }
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    assert!(
        !sandbox_modes.is_empty(),
        "a sandbox was observed during the restore"
    );
    assert!(
        sandbox_modes.iter().all(|&m| m == 0o700),
        "{sandbox_modes:?}"
    );
    assert!(
        file_modes.iter().all(|&m| m == 0o600),
        "no setuid bit: {file_modes:?}"
    );
    println!(
        "observed the sandbox {} times (mode {:o}), the restored file {} times",
        sandbox_modes.len(),
        sandbox_modes[0],
        file_modes.len()
    );
    assert!(support::sandboxes(&w.path("scratch")).is_empty(), "removed");
    for f in ["state/bm.db", "state/bm.db.lock", "logs/bm.log"] {
        assert_eq!(mode(&w.path(f)), 0o600, "{f}");
    }
    // While a connection is open SQLite keeps its WAL and shared-memory files: the same.
    let conn = rusqlite::Connection::open(w.path("state/bm.db")).unwrap();
    conn.execute_batch("PRAGMA journal_mode=WAL; CREATE TEMP TABLE t(x);")
        .unwrap();
    conn.query_row("SELECT COUNT(*) FROM runs", [], |r| r.get::<_, i64>(0))
        .unwrap();
    for f in ["state/bm.db-wal", "state/bm.db-shm"] {
        if w.path(f).exists() {
            assert_eq!(mode(&w.path(f)), 0o600, "{f}");
        }
    }
}

const SMTP_PASSWORD: &str = "smtpPASSWORDs3cr3t4242";
const WEBHOOK_TOKEN: &str = "webhookTOKENs3cr3t9191";

/// Every file under `dir` (recursively) that contains one of `needles`, except `skip`.
fn files_containing(dir: &Path, needles: &[&str], skip: &[&str]) -> Vec<String> {
    let mut hits = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        let name = e.file_name().to_string_lossy().into_owned();
        if skip.contains(&name.as_str()) {
            continue;
        }
        if e.file_type().unwrap().is_dir() {
            hits.extend(files_containing(&p, needles, skip));
        } else if let Ok(bytes) = std::fs::read(&p) {
            let text = String::from_utf8_lossy(&bytes);
            if needles.iter().any(|n| text.contains(n)) {
                hits.push(p.display().to_string());
            }
        }
    }
    hits
}

#[test]
fn secrets_reach_no_file_but_the_users_own() {
    // A webhook that fails and echoes the URL (with its token) in its error body.
    let server = tiny_http::Server::http("127.0.0.1:0").unwrap();
    let port = server.server_addr().to_ip().unwrap().port();
    std::thread::spawn(move || {
        for mut request in server.incoming_requests() {
            let mut body = String::new();
            let _ = request.as_reader().read_to_string(&mut body);
            let echo = format!("no such hook {}", request.url());
            let _ = request.respond(tiny_http::Response::from_string(echo).with_status_code(404));
        }
    });
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let w = Workspace::new();
    std::fs::write(
        w.path(".env"),
        format!("SMTP_PASSWORD={SMTP_PASSWORD}\nHOOK_URL=http://user:{WEBHOOK_TOKEN}@127.0.0.1:{port}/hook/{WEBHOOK_TOKEN}?token={WEBHOOK_TOKEN}\n"),
    )
    .unwrap();
    w.write_config(&format!(
        "timezone: UTC\nlogging: {{ file: logs/bm.log, level: debug }}\nreporting: {{ output_dir: reports, prometheus_textfile: metrics/bm.prom }}\nalerts:\n  timeout: 2s\n  email: {{ enabled: true, smtp_host: 127.0.0.1, smtp_port: {closed}, security: none, username: bm, password: \"${{SMTP_PASSWORD}}\", from: bm@example.com, to: [ops@example.com] }}\n  slack: {{ enabled: true, webhook_url: \"${{HOOK_URL}}\" }}\n  webhook: {{ enabled: true, url: \"${{HOOK_URL}}\" }}\nbackups:\n  locations:\n    - name: gone\n      path: gone\n"
    ));
    for args in [
        &ALL_OPS[..],
        &["--check-alerts", "-vv"][..],
        &["--status", "--format", "json"][..],
        &["--check-config", "--format", "json"][..],
    ] {
        let run = w.run(args);
        for out in [&run.stdout, &run.stderr] {
            assert!(
                !out.contains(SMTP_PASSWORD) && !out.contains(WEBHOOK_TOKEN),
                "{args:?} printed a secret:\n{out}"
            );
        }
    }
    let failures: i64 = w.store_value(
        "SELECT COUNT(*) FROM alert_deliveries WHERE success = 0 AND error IS NOT NULL",
    );
    assert!(
        failures >= 3,
        "the failing channels were tried and recorded"
    );
    let hits = files_containing(
        w.dir.path(),
        &[SMTP_PASSWORD, WEBHOOK_TOKEN],
        &["config.yaml", ".env"],
    );
    assert!(hits.is_empty(), "secrets on disk: {hits:?}");
    let stored = w.store_text();
    assert!(
        !stored.contains(SMTP_PASSWORD) && !stored.contains(WEBHOOK_TOKEN),
        "a secret in the store"
    );
}
