//! Many hosts, one PostgreSQL store, through the binary: each "machine" is a workspace of
//! its own (its own config with a `host:`, its own temporary directory for the local lock
//! file), all pointing at one fresh database on the test server (`BM_TEST_PG_URL`).
//! Skipped when no test server is configured, except under CI. The machine helpers here
//! serve the other fleet test modules too.

use crate::common::{TestDatabase, Workspace, test_pg_url, ts};
use serde_json::Value;
use std::io::Read;
use std::net::TcpListener;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

pub(crate) const NOW: &str = "2026-11-21T12:00:00Z";

/// One machine: host `host`, location `db` (empty unless a test writes backups) in its
/// workspace, the store at `url`, `extra` appended to the config.
pub(crate) fn machine(host: &str, url: &str, extra: &str) -> Workspace {
    let mut ws = Workspace::new();
    ws.pg = None; // the shared database below, not a workspace's own
    ws.now = Some(ts(NOW));
    std::fs::create_dir_all(ws.path("tmp")).unwrap();
    std::fs::create_dir_all(ws.path("db")).unwrap();
    ws.write_config(&format!(
        "host: {host}\ndatabase_url: {url}\n\
         backups:\n  locations:\n    - name: db\n      path: db\n      type: database\n      min_free_space: 0\n\
         logging:\n  file: logs/bm.log\n  level: debug\n{extra}"
    ));
    let tmp = ws.path("tmp");
    ws.env("TMPDIR", tmp.to_str().unwrap())
}

/// A good backup in a machine's `db`, an hour old.
pub(crate) fn backup(ws: &Workspace, name: &str) {
    ws.write_file(
        &format!("db/{name}"),
        b"-- dump\n",
        ts(NOW) - chrono::Duration::hours(1),
    );
}

pub(crate) fn spawn(ws: &Workspace, args: &[&str]) -> Child {
    let mut cmd = std::process::Command::new(assert_cmd::cargo::cargo_bin("backup-monitor"));
    cmd.current_dir(ws.dir.path())
        .env_remove("DATABASE_URL")
        .env_remove("BACKUP_MONITOR_CONFIG")
        .env("TZ", "UTC")
        .env("BACKUP_MONITOR_NOW", NOW)
        .arg("--config")
        .arg(ws.config_path())
        .arg("--no-progress")
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in &ws.envs {
        cmd.env(k, v);
    }
    cmd.spawn().expect("spawn binary")
}

/// `(host, name, status)` of each location of a fleet document.
pub(crate) fn host_name_status(doc: &serde_json::Value) -> Vec<(&str, &str, &str)> {
    doc["locations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            (
                l["host"].as_str().unwrap(),
                l["name"].as_str().unwrap(),
                l["status"].as_str().unwrap(),
            )
        })
        .collect()
}

pub(crate) fn finish(child: Child) -> (i32, String, String) {
    let out = child.wait_with_output().expect("wait");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A webhook endpoint that accepts connections and never answers: a run sending an
/// alert there stays inside its run (holding its locks) until `alerts.timeout`. Returns
/// the config lines and a receiver told of each connection.
pub(crate) fn silent_webhook() -> (String, std::sync::mpsc::Receiver<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for conn in listener.incoming().flatten() {
            held.push(conn);
            let _ = tx.send(());
        }
    });
    let config = format!(
        "alerts:\n  timeout: 6s\n  log: {{ enabled: false }}\n  webhook:\n    enabled: true\n    url: http://127.0.0.1:{port}/hook\n"
    );
    (config, rx)
}

#[test]
fn hosts_run_at_once_and_a_location_name_on_two_hosts_stays_two_locations() {
    let Some(_) = test_pg_url() else { return };
    let db = TestDatabase::create();
    let alpha = machine("alpha", &db.url, "");
    let beta = machine("beta", &db.url, "");
    backup(&alpha, "db_20261121_110000.sql");
    // Both start on a fresh database: the schema is made once, by whichever is first.
    let a = spawn(&alpha, &["--monitor", "--format", "json"]);
    let b = spawn(&beta, &["--monitor", "--format", "json"]);
    let (code_a, out_a, err_a) = finish(a);
    let (code_b, _, err_b) = finish(b);
    assert_eq!(code_a, 0, "{err_a}\n{out_a}");
    assert_eq!(code_b, 2, "beta's db has no backups: {err_b}");
    let mut c = db.client();
    let rows: Vec<(String, String)> = c
        .query("SELECT host, name FROM locations ORDER BY host", &[])
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert_eq!(
        rows,
        [("alpha".into(), "db".into()), ("beta".into(), "db".into())]
    );
    // Each host's status is its own: alpha's db has its backup, beta's has none.
    let (run, doc) = alpha.run_json(&["--status"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(doc["locations"][0]["backups_present"], 1);
    let (run, doc) = beta.run_json(&["--status"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert_eq!(doc["locations"][0]["backups_present"], 0);
    assert!(
        run.kinds().contains(&"no_backups".to_string()),
        "{}",
        run.stdout
    );
    // And alpha never sees beta's problem.
    assert!(alpha.run_json(&["--status"]).0.kinds().is_empty());
}

#[test]
fn migrations_racing_from_several_hosts_run_once() {
    let Some(_) = test_pg_url() else { return };
    let db = TestDatabase::create();
    let machines: Vec<Workspace> = (0..4)
        .map(|i| machine(&format!("host{i}"), &db.url, ""))
        .collect();
    let children: Vec<Child> = machines.iter().map(|m| spawn(m, &["--monitor"])).collect();
    for child in children {
        let (code, _, err) = finish(child);
        assert_eq!(code, 2, "every host has an empty db (no_backups): {err}");
    }
    let mut c = db.client();
    let versions: Vec<i64> = c
        .query("SELECT version FROM bm_schema", &[])
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(versions.len(), 1, "{versions:?}");
    let n: i64 = c
        .query_one("SELECT COUNT(*) FROM runs", &[])
        .unwrap()
        .get(0);
    assert_eq!(n, 4);
}

/// A database that already holds another program's tables is not made a store: the run
/// exits 3 naming them and the way out, and the database is left as it was.
#[test]
fn a_database_holding_another_programs_tables_is_refused_and_left_untouched() {
    let Some(_) = test_pg_url() else { return };
    let db = TestDatabase::create();
    let mut c = db.client();
    c.batch_execute("CREATE TABLE orders (id BIGINT); CREATE TABLE customers (id BIGINT)")
        .unwrap();
    let alpha = machine("alpha", &db.url, "");
    backup(&alpha, "db_20261121_110000.sql");
    let (code, out, err) = finish(spawn(&alpha, &["--monitor", "--format", "json"]));
    assert_eq!(code, 3, "{err}\n{out}");
    let doc: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        doc["host"], "alpha",
        "a run that could not judge still names its host"
    );
    let error = doc["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("already holds tables another program made (customers, orders)")
            && error.contains("give backup-monitor a database of its own"),
        "{error}"
    );
    let tables: Vec<String> = c
        .query(
            "SELECT table_name::text FROM information_schema.tables
             WHERE table_schema = current_schema() ORDER BY 1",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(tables, ["customers", "orders"]);
}

#[test]
fn a_second_run_of_one_host_exits_3_naming_the_holder_while_other_hosts_run() {
    let Some(_) = test_pg_url() else { return };
    let db = TestDatabase::create();
    let (hook, connected) = silent_webhook();
    // Two machines that both call themselves alpha (their local lock files differ: only
    // the store's lock can keep them apart), and beta.
    let first = machine("alpha", &db.url, &hook);
    let second = machine("alpha", &db.url, "");
    let beta = machine("beta", &db.url, "");
    let holder = spawn(&first, &["--monitor", "--check-alerts"]);
    let holder_pid = holder.id();
    connected
        .recv_timeout(Duration::from_secs(60))
        .expect("the first run reaches its alert");
    let run = second.run(&["--monitor"]);
    assert_eq!(run.code, 3, "{}", run.stderr);
    assert!(
        run.stderr.contains("host alpha") && run.stderr.contains(&format!("pid {holder_pid}")),
        "{}",
        run.stderr
    );
    // Another host is not held up.
    let started = Instant::now();
    let run = beta.run(&["--monitor"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(started.elapsed() < Duration::from_secs(5));
    let (code, _, err) = finish(holder);
    assert_eq!(code, 2, "the holder finishes normally: {err}");
    // Its lock went with it.
    let run = second.run(&["--monitor"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
}

/// A fleet run holds a host's lock for a moment while it writes what it judged of that
/// host: the host's own run waits for it rather than losing its night, and a hold that
/// lasts is said naming the fleet run that holds it, not the host's last (dead) run.
#[test]
fn a_hosts_run_waits_for_a_fleet_runs_moment_on_its_lock_and_names_a_long_one() {
    let Some(_) = test_pg_url() else { return };
    let db = TestDatabase::create();
    let alpha = machine("alpha", &db.url, "");
    backup(&alpha, "db_20261121_110000.sql");
    assert_eq!(alpha.run(&["--monitor"]).code, 0);
    const HOSTS_LOCKS: i64 = 0x626d_6f6e;
    const RUNS_LOCKS: i64 = 0x626d_636c;
    let alpha_key = i64::from(backup_monitor::store::fnv1a(b"alpha"));
    // A session as a fleet run of host fleetbox has: its run recorded and locked, and
    // alpha's lock taken for a moment.
    let fleet_run = |c: &mut postgres::Client| -> i64 {
        let id: i64 = c
            .query_one(
                "INSERT INTO runs (started_at, operations, host, version, pid)
                 VALUES (1795000000, 'check-alerts', 'fleetbox', 'x', 4242) RETURNING id",
                &[],
            )
            .unwrap()
            .get(0);
        c.execute(
            "SELECT pg_advisory_lock($1::bigint::integer, ($2::bigint % 2147483648)::integer)",
            &[&RUNS_LOCKS, &id],
        )
        .unwrap();
        c.execute(
            "SELECT pg_advisory_lock($1::bigint::integer, $2::bigint::integer)",
            &[&HOSTS_LOCKS, &alpha_key],
        )
        .unwrap();
        id
    };
    let mut fleet = db.client();
    fleet_run(&mut fleet);
    let releaser = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(1500));
        fleet
            .execute("SELECT pg_advisory_unlock_all()", &[])
            .unwrap();
        fleet
    });
    let started = Instant::now();
    let run = alpha.run(&["--monitor"]);
    assert_eq!(run.code, 0, "waited for the moment: {}", run.stderr);
    assert!(started.elapsed() >= Duration::from_millis(1400));
    let mut fleet = releaser.join().unwrap();

    // A hold that lasts: exit 3 naming the fleet run, after a few seconds.
    fleet_run(&mut fleet);
    let run = alpha.run(&["--monitor"]);
    assert_eq!(run.code, 3, "{}", run.stderr);
    let last = run.stderr.lines().last().unwrap_or_default();
    assert!(
        last.contains("a fleet run of host fleetbox (pid 4242")
            && last.contains("holds this host's lock"),
        "{}",
        run.stderr
    );
    drop(fleet);
    assert_eq!(alpha.run(&["--monitor"]).code, 0);
}

#[test]
fn a_killed_runs_lock_goes_with_its_session() {
    let Some(_) = test_pg_url() else { return };
    let db = TestDatabase::create();
    let (hook, connected) = silent_webhook();
    let first = machine("alpha", &db.url, &hook);
    let second = machine("alpha", &db.url, "");
    let holder = spawn(&first, &["--monitor", "--check-alerts"]);
    connected
        .recv_timeout(Duration::from_secs(60))
        .expect("the first run reaches its alert");
    kill_then_the_lock_is_free(holder, &second);
}

/// A run killed while its statement waits for a lock another session holds: the server
/// notices the closed connection within a second or so and the host's lock goes, instead
/// of staying held (the next run refused, naming a dead pid) until that wait ends.
#[test]
fn a_run_killed_while_it_waits_on_the_server_lets_the_hosts_lock_go() {
    let Some(_) = test_pg_url() else { return };
    let db = TestDatabase::create();
    let alpha = machine("alpha", &db.url, "");
    backup(&alpha, "db_20261121_110000.sql");
    assert_eq!(alpha.run(&["--monitor"]).code, 0);
    let held_advisory = |c: &mut postgres::Client| -> i64 {
        c.query_one(
            "SELECT COUNT(*) FROM pg_locks WHERE locktype = 'advisory' AND granted
             AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
            &[],
        )
        .unwrap()
        .get(0)
    };
    // Another session holds the locations table; the run takes the host's lock, then
    // waits on the table.
    let mut blocker = db.client();
    let mut tx = blocker.transaction().unwrap();
    tx.batch_execute("LOCK TABLE locations IN ACCESS EXCLUSIVE MODE")
        .unwrap();
    let mut run = spawn(&alpha, &["--monitor"]);
    let mut watcher = db.client();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let waiting: i64 = watcher
            .query_one(
                "SELECT COUNT(*) FROM pg_stat_activity
                 WHERE application_name = $1 AND wait_event_type = 'Lock'",
                &[&format!("backup-monitor {}", run.id())],
            )
            .unwrap()
            .get(0);
        if waiting == 1 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the run never waited on the table"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(
        held_advisory(&mut watcher),
        2,
        "the run holds the host's lock, and its own"
    );
    run.kill().expect("SIGKILL");
    let _ = run.wait();
    let deadline = Instant::now() + Duration::from_secs(10);
    while held_advisory(&mut watcher) != 0 {
        assert!(
            Instant::now() < deadline,
            "the killed run's session still holds the host's lock while the table stays locked"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    tx.rollback().unwrap();
    let again = alpha.run(&["--monitor"]);
    assert_eq!(again.code, 0, "{}", again.stderr);
}

/// SIGKILL `holder`, then wait (up to 10 s) until `second`, the same host on another
/// machine, gets the host's lock (its run then judges its empty location: exit 2).
fn kill_then_the_lock_is_free(mut holder: Child, second: &Workspace) {
    holder.kill().expect("SIGKILL");
    let _ = holder.wait();
    // The server notices the closed connection at once on loopback; allow a moment.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let run = second.run(&["--monitor"]);
        if run.code != 3 {
            assert_eq!(run.code, 2, "{}", run.stderr);
            break;
        }
        assert!(Instant::now() < deadline, "still locked: {}", run.stderr);
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// A PgBouncer in front of the test server, on a port of its own, for as long as this
/// lives. None when pgbouncer is not installed (a failure under CI, which installs it).
struct Bouncer {
    child: Child,
    port: u16,
    user: String,
    _dir: tempfile::TempDir,
}

impl Bouncer {
    /// In session mode in front of the trusting test server (None, the test skipped, for
    /// another); `extra`: more lines for its `[pgbouncer]` section.
    fn start(extra: &str) -> Option<Bouncer> {
        Bouncer::start_in("session", extra)
    }

    /// [`Bouncer::start`] with `pool_mode = mode`.
    fn start_in(mode: &str, extra: &str) -> Option<Bouncer> {
        let pg = trusting_test_server()?;
        let installed = std::process::Command::new("pgbouncer")
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success());
        if !installed {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "CI=true but pgbouncer is not installed: the PgBouncer test cannot run"
            );
            return None;
        }
        let server = url::Url::parse(&pg).unwrap();
        let user = match server.username() {
            "" => "postgres".to_string(),
            u => u.to_string(),
        };
        let free = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = free.local_addr().unwrap().port();
        drop(free);
        // PgBouncer will not run as root: then as nobody, who must reach and read its
        // files (in /tmp, whatever TMPDIR says).
        let root = std::process::Command::new("id")
            .arg("-u")
            .output()
            .is_ok_and(|o| o.stdout.trim_ascii() == b"0");
        let dir = match root {
            true => tempfile::tempdir_in("/tmp").unwrap(),
            false => tempfile::tempdir().unwrap(),
        };
        let path = |name: &str| dir.path().join(name).to_str().unwrap().to_string();
        std::fs::write(path("users"), format!("\"{user}\" \"\"\n")).unwrap();
        std::fs::write(
            path("pgbouncer.ini"),
            format!(
                "[databases]\n* = host={} port={}\n[pgbouncer]\nlisten_addr = 127.0.0.1\n\
                 listen_port = {port}\nunix_socket_dir =\nauth_type = trust\nauth_file = {}\n\
                 pool_mode = {mode}\nlogfile = {}\n{extra}",
                server.host_str().unwrap_or("127.0.0.1"),
                server.port().unwrap_or(5432),
                path("users"),
                path("log"),
            ),
        )
        .unwrap();
        let mut cmd = if root {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
            for f in ["users", "pgbouncer.ini"] {
                std::fs::set_permissions(path(f), std::fs::Permissions::from_mode(0o644)).unwrap();
            }
            let mut c = std::process::Command::new("runuser");
            c.args(["-u", "nobody", "--", "pgbouncer"]);
            c
        } else {
            std::process::Command::new("pgbouncer")
        };
        let child = cmd
            .arg(path("pgbouncer.ini"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start pgbouncer");
        let mut bouncer = Bouncer {
            child,
            port,
            user,
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(15);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            let exited = bouncer.child.try_wait().ok().flatten();
            if exited.is_some() || Instant::now() >= deadline {
                let log = std::fs::read_to_string(bouncer._dir.path().join("log"));
                panic!("pgbouncer did not start ({exited:?}): {log:?}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Some(bouncer)
    }

    fn url(&self, db: &str) -> String {
        format!(
            "postgresql://{}@127.0.0.1:{}/{db}?sslmode=disable",
            self.user, self.port
        )
    }
}

impl Drop for Bouncer {
    fn drop(&mut self) {
        // runuser passes the signal on to pgbouncer.
        let _ = std::process::Command::new("kill")
            .arg(self.child.id().to_string())
            .status();
        let _ = self.child.wait();
    }
}

#[test]
fn through_pgbouncer_in_session_mode_a_hosts_lock_holds_and_goes_with_a_killed_run() {
    let Some(bouncer) = Bouncer::start("") else {
        return;
    };
    let db = TestDatabase::create();
    let url = bouncer.url(db.name());
    let (hook, connected) = silent_webhook();
    let first = machine("alpha", &url, &hook);
    let second = machine("alpha", &url, "");
    let other = machine("beta", &url, "");
    backup(&other, "db_20261121_110000.sql");
    let holder = spawn(&first, &["--monitor", "--check-alerts"]);
    connected
        .recv_timeout(Duration::from_secs(60))
        .expect("the first run reaches its alert");
    // Held: the same host elsewhere is refused, naming the holder; another host runs.
    let refused = second.run(&["--monitor"]);
    assert_eq!(refused.code, 3, "{}", refused.stderr);
    assert!(
        refused.stderr.contains("holds this host's lock"),
        "{}",
        refused.stderr
    );
    let beta = other.run(&["--monitor"]);
    assert_eq!(beta.code, 0, "{}", beta.stderr);
    // Killed: PgBouncer ends or resets its server session, and the lock goes with it.
    kill_then_the_lock_is_free(holder, &second);
}

/// Through a PgBouncer in transaction mode a run's server session is handed to other
/// clients between its transactions: a host's lock taken on it would stay behind when
/// the run ends and protect nothing. A run that finds its session holding a lock it never
/// took (or changing under it) refuses at once, saying why and what to set, and takes
/// nothing: no lock stays behind, no run is recorded.
#[test]
fn through_pgbouncer_in_transaction_mode_runs_are_refused_and_leave_no_lock() {
    let Some(bouncer) = Bouncer::start_in("transaction", "") else {
        return;
    };
    let db = TestDatabase::create();
    let url = bouncer.url(db.name());
    let alpha = machine("alpha", &url, "");
    let beta = machine("beta", &url, "");
    backup(&alpha, "db_20261121_110000.sql");
    backup(&beta, "db_20261121_110000.sql");
    // The first run on a fresh pool may not tell (its session looks its own until it
    // ends, and stays behind holding its locks); every run after it does.
    let first = alpha.run(&["--monitor"]);
    assert!(matches!(first.code, 0 | 3), "{}", first.stderr);
    let said = "the store's connection to 127.0.0.1:";
    let why = "goes through a pooler in transaction mode, or one that does not reset sessions (advisory locks would leak); use session pooling: pool_mode = session, with PgBouncer's default server_reset_query = DISCARD ALL";
    let mut c = db.client();
    let runs_of = |c: &mut postgres::Client, host: &str| -> i64 {
        c.query_one("SELECT COUNT(*) FROM runs WHERE host = $1", &[&host])
            .unwrap()
            .get(0)
    };
    let alpha_runs = runs_of(&mut c, "alpha");
    for (ws, host) in [(&beta, "beta"), (&alpha, "alpha"), (&beta, "beta")] {
        let run = ws.run(&["--monitor"]);
        assert_eq!(run.code, 3, "{host}: {}", run.stderr);
        let last = run.stderr.lines().last().unwrap_or_default();
        assert!(
            last.contains(said) && last.contains(why),
            "{host}: {}",
            run.stderr
        );
        assert!(
            !run.stderr.contains("holds this host's lock"),
            "{}",
            run.stderr
        );
    }
    // Refused before anything was taken: beta's lock is held by no session, and neither
    // host has a run recorded since.
    let hosts_locks: i64 = 0x626d_6f6e; // "bmon", keyed by the host name's hash
    let beta_key = i64::from(backup_monitor::store::fnv1a(b"beta"));
    let held: i64 = c
        .query_one(
            "SELECT COUNT(*) FROM pg_locks WHERE locktype = 'advisory' AND objsubid = 2
             AND classid::bigint = $1 AND objid::bigint = $2",
            &[&hosts_locks, &beta_key],
        )
        .unwrap()
        .get(0);
    assert_eq!(held, 0, "a refused run leaves no lock behind");
    assert_eq!(runs_of(&mut c, "beta"), 0, "no run of beta is recorded");
    assert_eq!(runs_of(&mut c, "alpha"), alpha_runs, "nor another of alpha");
}

/// PgBouncer says "no such database" with the code of a passing trouble: it is said at
/// once as the mistake it is, not retried for a minute and blamed on the pooler.
#[test]
fn a_database_pgbouncer_does_not_know_is_said_at_once_not_retried() {
    let Some(bouncer) = Bouncer::start("") else {
        return;
    };
    let url = bouncer.url("bm_no_such_database_here");
    let ws = machine("alpha", &url, "").env("BACKUP_MONITOR_PG_RETRY_SECS", "20");
    let last = crate::fleet_connect::said_at_once(&ws);
    assert!(
        last.contains("refused the connection")
            && last.contains("bm_no_such_database_here")
            && last.contains("Check the user, password and database in database_url"),
        "{last}"
    );
}

#[test]
fn a_pgbouncer_out_of_client_slots_is_waited_for_like_a_full_server() {
    let Some(bouncer) = Bouncer::start("max_client_conn = 1\n") else {
        return;
    };
    let db = TestDatabase::create();
    let url = bouncer.url(db.name());
    let held = connect_when_free(|| postgres::Client::connect(&url, postgres::NoTls));
    let ws = machine("alpha", &url, "").env("BACKUP_MONITOR_PG_RETRY_SECS", "30");
    backup(&ws, "db_20261121_110000.sql");
    let child = spawn(&ws, &["--monitor"]);
    wait_for_log(&ws, "drops the connection");
    drop(held);
    let (code, _, err) = finish(child);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("no more connections allowed"), "{err}");
}

/// A server without TLS under `sslmode=require` answered: said at once, with what to
/// change, not retried for a minute as a server that cannot be reached.
#[test]
fn a_server_without_tls_under_sslmode_require_is_said_at_once_not_retried() {
    let Some(_) = test_pg_url() else { return };
    let db = TestDatabase::create();
    let mut url = url::Url::parse(&db.url).unwrap();
    url.set_query(Some("sslmode=require"));
    let ws = machine("alpha", url.as_str(), "").env("BACKUP_MONITOR_PG_RETRY_SECS", "20");
    let run = ws.run(&["--monitor"]);
    assert_eq!(run.code, 3, "{}", run.stderr);
    assert!(!run.stderr.contains("trying again"), "{}", run.stderr);
    let last = run.stderr.lines().last().unwrap_or_default();
    assert!(
        last.contains("no TLS connection could be made with the PostgreSQL store")
            && last.contains("server does not support TLS")
            && last.contains("sslmode=disable or prefer"),
        "{}",
        run.stderr
    );
}

#[test]
fn an_unreachable_server_is_retried_then_exit_3_naming_it_never_the_password() {
    let Some(_) = test_pg_url() else { return };
    let closed = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    const PASSWORD: &str = "Sup3rS3cretPw";
    let url = format!("postgresql://bm:{PASSWORD}@127.0.0.1:{port}/fleet?sslmode=disable");
    let ws = machine("alpha", &url, "").env("BACKUP_MONITOR_PG_RETRY_SECS", "3");
    let started = Instant::now();
    let child = spawn(&ws, &["--monitor"]);
    let pid = child.id();
    std::thread::sleep(Duration::from_millis(500));
    let mut cmdline = Vec::new();
    if let Ok(mut f) = std::fs::File::open(format!("/proc/{pid}/cmdline")) {
        let _ = f.read_to_end(&mut cmdline);
    }
    assert!(!cmdline.is_empty(), "the run was still retrying");
    assert!(!String::from_utf8_lossy(&cmdline).contains(PASSWORD));
    let (code, out, err) = finish(child);
    let took = started.elapsed();
    assert_eq!(code, 3, "{err}");
    assert!(
        took >= Duration::from_secs(2) && took < Duration::from_secs(30),
        "{took:?}"
    );
    assert!(
        err.contains(&format!("127.0.0.1:{port}/fleet")),
        "names the server: {err}"
    );
    let log = std::fs::read_to_string(ws.path("logs/bm.log")).unwrap_or_default();
    for text in [&out, &err, &log] {
        assert!(!text.contains(PASSWORD), "{text}");
    }
}

/// A test server on TCP that trusts loopback (what `scripts/test-postgres` starts), as
/// the tests that log in as roles or through PgBouncer without a password need; None
/// (the test is skipped) for another kind of server.
fn trusting_test_server() -> Option<String> {
    let pg = test_pg_url()?;
    let url = url::Url::parse(&pg).ok()?;
    (url.password().is_none() && url.host_str().is_some_and(|h| !h.is_empty())).then_some(pg)
}

/// Until `deadline`, try `connect`; a server that is full for a moment (a session that
/// just ended takes a moment to leave its slot) is tried again.
fn connect_when_free(
    connect: impl Fn() -> Result<postgres::Client, postgres::Error>,
) -> postgres::Client {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match connect() {
            Ok(c) => return c,
            Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(50)),
            Err(e) => panic!("cannot connect: {e}"),
        }
    }
}

/// Until the machine's log says `text` (the run is waiting), or 30 s.
fn wait_for_log(ws: &Workspace, text: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !std::fs::read_to_string(ws.path("logs/bm.log")).is_ok_and(|l| l.contains(text)) {
        assert!(Instant::now() < deadline, "the run never said {text:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A role on the test server, dropped when this goes (after its database).
struct Role {
    name: String,
    admin: String,
}

impl Drop for Role {
    fn drop(&mut self) {
        if let Ok(mut c) = postgres::Client::connect(&self.admin, postgres::NoTls) {
            let _ = c.batch_execute(&format!("DROP ROLE IF EXISTS {}", self.name));
        }
    }
}

#[test]
fn a_server_with_no_free_connection_is_retried_until_one_frees_up_then_exit_3_naming_it() {
    let Some(pg) = trusting_test_server() else {
        return;
    };
    // A role allowed one connection, owning the database: the run's connection is the
    // second while the test holds the first (a superuser would not be limited).
    let role = Role {
        name: format!("bm_one_conn_{}", std::process::id()),
        admin: pg,
    };
    let db = TestDatabase::create();
    db.admin_client()
        .batch_execute(&format!(
            "DROP ROLE IF EXISTS {0}; CREATE ROLE {0} LOGIN CONNECTION LIMIT 1;
             ALTER DATABASE {1} OWNER TO {0}",
            role.name,
            db.name()
        ))
        .unwrap();
    let mut url = url::Url::parse(&db.url).unwrap();
    url.set_username(&role.name).unwrap();
    let url = url.to_string();
    let hold = || connect_when_free(|| postgres::Client::connect(&url, postgres::NoTls));

    // Freed once the run has been turned away: it waits for the slot and succeeds.
    let held = hold();
    let ws = machine("alpha", &url, "").env("BACKUP_MONITOR_PG_RETRY_SECS", "30");
    backup(&ws, "db_20261121_110000.sql");
    let child = spawn(&ws, &["--monitor"]);
    wait_for_log(&ws, "turns connections away");
    drop(held);
    let (code, _, err) = finish(child);
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains("turns connections away") && err.contains("too many connections"),
        "says why it waits: {err}"
    );

    // Never freed: exit 3 once the retries are spent, naming the server and what to do.
    let held = hold();
    let ws = ws.env("BACKUP_MONITOR_PG_RETRY_SECS", "2");
    let started = Instant::now();
    let (code, _, err) = finish(spawn(&ws, &["--monitor"]));
    assert_eq!(code, 3, "{err}");
    assert!(started.elapsed() >= Duration::from_millis(1500), "retried");
    assert!(
        err.contains(&format!("/{}", db.name())),
        "names the server: {err}"
    );
    assert!(err.contains("max_connections"), "says what to do: {err}");
    drop(held);
}

#[test]
fn the_password_of_a_reachable_store_is_in_no_output_log_or_report() {
    let Some(pg) = test_pg_url() else { return };
    let db = TestDatabase::create();
    // The test server trusts loopback, so any password is accepted and must still be kept.
    const PASSWORD: &str = "An0therS3cretPw";
    let mut url = url::Url::parse(&db.url).unwrap();
    if url.username().is_empty() {
        let user = url::Url::parse(&pg).unwrap().username().to_string();
        url.set_username(if user.is_empty() { "postgres" } else { &user })
            .unwrap();
    }
    url.set_password(Some(PASSWORD)).unwrap();
    let ws = machine(
        "alpha",
        url.as_str(),
        "reporting:\n  output_dir: reports\n  formats: [html, csv, json]\n",
    );
    backup(&ws, "db_20261121_110000.sql");
    let run = ws.run(&["--monitor", "--report", "--format", "json", "-v"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let mut texts = vec![run.stdout.clone(), run.stderr.clone()];
    for entry in walkdir(ws.dir.path()) {
        if let Ok(text) = std::fs::read(&entry) {
            texts.push(String::from_utf8_lossy(&text).into_owned());
        }
    }
    let config = ws.config_path();
    for (i, text) in texts.iter().enumerate() {
        if i >= 2 && text.contains("database_url:") {
            continue; // the config file itself
        }
        assert!(!text.contains(PASSWORD), "{config:?}: {text}");
    }
    let mut c = db.client();
    for table in ["runs", "problems", "lifecycle_actions"] {
        let n: i64 = c
            .query_one(
                &format!("SELECT COUNT(*) FROM {table} t WHERE t::text LIKE '%{PASSWORD}%'"),
                &[],
            )
            .unwrap()
            .get(0);
        assert_eq!(n, 0, "{table}");
    }
}

/// A password kept in the environment is read as it is, whatever URL characters it holds:
/// inserted as it is, `@` and `/` ended it early, the rest was taken for the server's name
/// — looked up, and shown in the error.
#[test]
fn a_password_from_the_environment_with_url_characters_is_read_as_written() {
    let Some(pg) = test_pg_url() else { return };
    let db = TestDatabase::create();
    const PASSWORD: &str = "P@ss/w0rd#?%:zq";
    let url = url::Url::parse(&db.url).unwrap();
    let user = match url.username() {
        "" => url::Url::parse(&pg).unwrap().username().to_string(),
        u => u.to_string(),
    };
    let user = if user.is_empty() {
        "postgres".to_string()
    } else {
        user
    };
    let template = format!(
        "postgresql://{user}:${{DB_PASSWORD}}@{}:{}{}",
        url.host_str().unwrap(),
        url.port().unwrap_or(5432),
        url.path()
    );
    let ws = machine("alpha", &template, "").env("DB_PASSWORD", PASSWORD);
    backup(&ws, "db_20261121_110000.sql");
    let run = ws.run(&["--monitor", "--format", "json", "-v"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let runs: i64 = db
        .client()
        .query_one("SELECT COUNT(*) FROM runs WHERE host = 'alpha'", &[])
        .unwrap()
        .get(0);
    assert_eq!(runs, 1, "the run was recorded in the configured database");
    // The store was made by this run: the server's notices about it are not in the log.
    assert!(!run.stderr.contains("NOTICE"), "{}", run.stderr);
    let log = std::fs::read_to_string(ws.path("logs/bm.log")).unwrap_or_default();
    for text in [&run.stdout, &run.stderr, &log] {
        for piece in ["w0rd", "P@ss", "%:zq"] {
            assert!(!text.contains(piece), "{piece} shown: {text}");
        }
    }
}

/// Every file under `dir`.
fn walkdir(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                todo.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out
}

#[test]
fn fleet_status_covers_every_host_names_a_stopped_one_and_host_narrows() {
    let Some(_) = test_pg_url() else { return };
    let db = TestDatabase::create();
    let alpha = machine("alpha", &db.url, "");
    let mut beta = machine("beta", &db.url, "");
    backup(&alpha, "db_20261121_110000.sql");
    assert_eq!(alpha.run(&["--monitor"]).code, 0);
    // beta last ran ten days ago, and stopped.
    beta.now = Some(ts(NOW) - chrono::Duration::days(10));
    beta.write_file(
        "db/db_20261111_110000.sql",
        b"-- dump\n",
        ts(NOW) - chrono::Duration::days(10) - chrono::Duration::hours(1),
    );
    assert_eq!(beta.run(&["--monitor"]).code, 0);

    // Per host, as before: alpha sees only alpha, and alpha is fine.
    let (run, doc) = alpha.run_json(&["--status"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(doc["host"], "alpha");
    assert_eq!(doc["locations"].as_array().unwrap().len(), 1);
    assert_eq!(doc["locations"][0]["host"], "alpha");

    // The fleet: both hosts' db, and beta's is stale, naming the host.
    let (run, doc) = alpha.run_json(&["--status", "--fleet"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert_eq!(
        host_name_status(&doc),
        [("alpha", "db", "ok"), ("beta", "db", "critical")],
        "{doc:#}"
    );
    let stale: Vec<&serde_json::Value> = doc["problems"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["kind"] == "monitor_stale")
        .collect();
    assert_eq!(stale.len(), 1, "{doc:#}");
    assert_eq!(stale[0]["host"], "beta");
    assert!(stale[0]["message"].as_str().unwrap().contains("host beta"));
    assert_eq!(doc["locations"][1]["backups_present"], 1);

    // The text names every location and problem by host/name, this host's too.
    let text = alpha.run(&["--status", "--fleet"]).stdout;
    assert!(
        text.contains("beta/db") && text.contains("monitor_stale"),
        "{text}"
    );
    assert!(
        text.lines().any(|l| l.starts_with("alpha/db ")),
        "this host's row is named too: {text}"
    );
    // So does the plugin output, whose perfdata are one series per host's location.
    let nagios = alpha
        .run(&["--status", "--fleet", "--format", "nagios"])
        .stdout;
    let (status, _) = nagios.split_once('\n').unwrap();
    for label in [
        "'alpha/db_age'",
        "'beta/db_age'",
        "'alpha/db_health'",
        "'beta/db_missing'",
    ] {
        assert!(status.contains(label), "{label}: {nagios}");
    }
    assert!(
        nagios
            .lines()
            .any(|l| l.starts_with("CRITICAL beta/db monitor_stale:")),
        "{nagios}"
    );
    // A host's own view is as before: bare names.
    let own = alpha.run(&["--status", "--format", "nagios"]).stdout;
    assert!(own.contains("'db_age'") && !own.contains("alpha/"), "{own}");

    // --host narrows to one host, from any machine.
    let (run, doc) = alpha.run_json(&["--status", "--host", "beta"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert_eq!(doc["locations"].as_array().unwrap().len(), 1);
    assert_eq!(doc["locations"][0]["host"], "beta");
    let run = alpha.run(&["--status", "--host", "gamma"]);
    assert_eq!(run.code, 3);
    assert!(
        run.stderr.contains("gamma") && run.stderr.contains("alpha, beta"),
        "{}",
        run.stderr
    );
    // A location no host has is said as on one host, in every fleet view: never an
    // empty view read as OK (a Nagios check with a typo would stay green).
    for args in [
        &["--status", "--fleet", "--location-name", "nope"][..],
        &[
            "--status",
            "--host",
            "beta",
            "--location-name",
            "nope",
            "--format",
            "nagios",
        ],
        &[
            "--check-alerts",
            "--fleet",
            "--location-id",
            "99999",
            "--format",
            "json",
        ],
    ] {
        let run = alpha.run(args);
        assert_eq!(run.code, 3, "{args:?}: {}{}", run.stdout, run.stderr);
        let said = run.stdout.clone() + &run.stderr;
        assert!(
            said.contains("unknown location") && said.contains("locations there: db"),
            "{args:?}: {said}"
        );
    }
    let (run, doc) = alpha.run_json(&["--status", "--fleet", "--location-name", "db"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert_eq!(doc["locations"].as_array().unwrap().len(), 2);
    // --fleet widens --status, --report and --check-alerts (alone), never a judging run.
    let run = alpha.run(&["--monitor", "--fleet"]);
    assert_eq!(run.code, 3);
    assert!(
        run.stderr.contains("--status, with --report"),
        "{}",
        run.stderr
    );
    let run = alpha.run(&["--check-alerts", "--host", "beta"]);
    assert_eq!(run.code, 2, "beta's location is stale: {}", run.stderr);
    let run = alpha.run(&["--report", "--host", "beta"]);
    assert_ne!(run.code, 3, "--report goes with --host: {}", run.stderr);
    let run = alpha.run(&["--check-alerts", "--monitor", "--fleet"]);
    assert_eq!(
        run.code, 3,
        "--check-alerts --fleet goes alone: {}",
        run.stderr
    );
}

/// A location taken out of a host's config leaves the fleet's views as it leaves the
/// host's own: no row, no `monitor_stale`, no alert, while the host goes on checking
/// the rest; put back, it is there again.
#[test]
fn a_location_removed_from_a_hosts_config_leaves_the_fleet_views() {
    let Some(_) = test_pg_url() else { return };
    let db = TestDatabase::create();
    let extra = "    - name: extra\n      path: db\n      min_free_space: 0\n";
    let with_extra = |ws: &Workspace, on: bool| {
        let config = std::fs::read_to_string(ws.path("config.yaml")).unwrap();
        let config = match on {
            true => config.replace("logging:", &format!("{extra}logging:")),
            false => config.replace(extra, ""),
        };
        ws.write_config(&config);
    };
    let mut alpha = machine("alpha", &db.url, "alerts:\n  log: { enabled: true }\n");
    let mut beta = machine("beta", &db.url, "");
    with_extra(&beta, true);
    backup(&alpha, "db_20261121_110000.sql");
    backup(&beta, "db_20261121_110000.sql");
    assert_eq!(alpha.run(&["--monitor"]).code, 0);
    assert_eq!(beta.run(&["--monitor"]).code, 0);
    let names = |doc: &Value| -> Vec<String> {
        doc["locations"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| {
                format!(
                    "{}/{}",
                    l["host"].as_str().unwrap(),
                    l["name"].as_str().unwrap()
                )
            })
            .collect()
    };
    let (_, doc) = alpha.run_json(&["--status", "--fleet"]);
    assert_eq!(names(&doc), ["alpha/db", "beta/db", "beta/extra"]);

    // Two days on, beta runs without `extra`.
    with_extra(&beta, false);
    for ws in [&mut alpha, &mut beta] {
        ws.now = Some(ts(NOW) + chrono::Duration::days(2));
        backup(ws, "db_20261123_110000.sql");
        assert_eq!(ws.run(&["--monitor"]).code, 0);
    }
    let (run, doc) = alpha.run_json(&["--status", "--fleet"]);
    assert_eq!(names(&doc), ["alpha/db", "beta/db"]);
    assert_eq!(run.code, 0, "{}", run.stdout);
    let run = alpha.run(&["--check-alerts", "--fleet"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(!run.stderr.contains("monitor_stale"), "{}", run.stderr);

    // Back in the config, back in the views.
    with_extra(&beta, true);
    assert_eq!(beta.run(&["--monitor"]).code, 0);
    let (_, doc) = alpha.run_json(&["--status", "--fleet"]);
    assert_eq!(names(&doc), ["alpha/db", "beta/db", "beta/extra"]);

    // A host retired (or renamed) reads as stopped until one run under its name with
    // no locations takes them all out.
    let mut gamma = machine("gamma", &db.url, "");
    backup(&gamma, "db_20261121_110000.sql");
    assert_eq!(gamma.run(&["--monitor"]).code, 0);
    alpha.now = Some(ts(NOW) + chrono::Duration::days(4));
    let (run, doc) = alpha.run_json(&["--status", "--host", "gamma"]);
    assert_eq!(run.code, 2, "{}", run.stdout);
    assert_eq!(doc["problems"][0]["kind"], "monitor_stale", "{doc}");
    gamma.write_config(&format!(
        "host: gamma\ndatabase_url: {}\nlogging: {{ file: null }}\nbackups:\n  locations: []\n",
        db.url
    ));
    gamma.now = alpha.now;
    assert_eq!(gamma.run(&["--monitor"]).code, 0);
    let (run, doc) = alpha.run_json(&["--status", "--fleet"]);
    assert!(
        !names(&doc).iter().any(|n| n.starts_with("gamma/")),
        "{doc}"
    );
    assert!(
        !doc["problems"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["host"] == "gamma"),
        "{doc}"
    );
    assert_ne!(run.code, 3, "{}", run.stderr);
}

#[test]
fn a_hosts_silence_covers_its_own_location_not_another_hosts_of_the_same_name() {
    let Some(_) = test_pg_url() else { return };
    let db = TestDatabase::create();
    let alpha = machine("alpha", &db.url, "");
    let beta = machine("beta", &db.url, "");
    // Both hosts' `db` are empty: no_backups on each.
    assert_eq!(alpha.run(&["--monitor"]).code, 2);
    assert_eq!(beta.run(&["--monitor"]).code, 2);
    let run = alpha.run(&["--silence", "db", "--for", "2h", "--reason", "maintenance"]);
    assert_eq!(run.code, 0, "{}", run.stderr);

    // alpha's own run: its problem is silenced and does not count.
    let (run, doc) = alpha.run_json(&["--status"]);
    assert_eq!(run.code, 0, "{doc:#}");
    // beta's own run: beta's `db` is another location, not silenced.
    let (run, doc) = beta.run_json(&["--status"]);
    assert_eq!(run.code, 2, "{doc:#}");
    assert!(
        doc["problems"]
            .as_array()
            .unwrap()
            .iter()
            .all(|p| p["silenced"] == false),
        "{doc:#}"
    );
    // The fleet view marks alpha's only.
    let (_, doc) = alpha.run_json(&["--status", "--fleet"]);
    let silenced: Vec<(&str, bool)> = doc["problems"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["kind"] == "no_backups")
        .map(|p| {
            (
                p["host"].as_str().unwrap(),
                p["silenced"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(silenced, [("alpha", true), ("beta", false)], "{doc:#}");
}
