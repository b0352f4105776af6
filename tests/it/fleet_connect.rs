//! How a host reaches its PostgreSQL store, through the binary: what `database_url`
//! may hold (and what it may not, said without showing it), where the password comes
//! from, what is tried again and what is said at once, and the local lock file's name.
//! The password tests start a server of their own that asks for passwords (the shared
//! test server trusts loopback); skipped when `BM_TEST_PG_BIN` has no `initdb`, except
//! under CI.

use crate::common::{TestDatabase, Workspace, test_pg_url};
use crate::fleet::{finish, machine, silent_webhook, spawn};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// A port on 127.0.0.1 nothing listens on.
fn closed_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// A workspace whose config has `database_url: <url>` (YAML-quoted) and one empty
/// location, the store never the test run's own database.
fn with_database_url(url: &str) -> Workspace {
    let ws = Workspace::sqlite();
    std::fs::create_dir_all(ws.path("db")).unwrap();
    ws.write_config(&format!(
        "timezone: UTC\ndatabase_url: {}\nlogging: {{ file: logs/bm.log, level: debug }}\nbackups:\n  locations:\n    - name: db\n      path: db\n",
        serde_json::to_string(url).unwrap()
    ));
    ws.env("BACKUP_MONITOR_PG_RETRY_SECS", "20")
}

/// Every file under `dir`, by name.
/// The last line of a `--monitor` that fails at once: exit 3 within 10 s, never "trying
/// again" (a mistake waiting will not mend).
pub(crate) fn said_at_once(ws: &Workspace) -> String {
    let started = Instant::now();
    let run = ws.run(&["--monitor"]);
    assert_eq!(run.code, 3, "{}", run.stderr);
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "not retried: {}",
        run.stderr
    );
    assert!(!run.stderr.contains("trying again"), "{}", run.stderr);
    run.stderr.lines().last().unwrap_or_default().to_string()
}

fn file_names(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            out.push(p.to_string_lossy().into_owned());
            if p.is_dir() {
                todo.push(p);
            }
        }
    }
    out
}

/// A password written into the URL with `@` and `#`, `/` or `?` as they are, or with a
/// `%` that starts no escape, and a libpq `key=value` string: `--check-config` refuses
/// each, saying how to write it and showing none of it; a run exits 3 at once without
/// looking up a piece of the password as a server or making a SQLite file named with it.
#[test]
fn a_password_written_unencoded_or_a_key_value_string_is_refused_without_being_shown() {
    let port = closed_port();
    let cases: [(&str, &[&str], &[&str]); 5] = [
        (
            "postgresql://bm:Kx9@Zq7mW#2@127.0.0.1:{port}/r1_fleet",
            &["Kx9", "Zq7mW"],
            &["%40", "%23"],
        ),
        (
            "postgresql://bm:p@ssw0/w#rd?x@127.0.0.1:{port}/r1_fleet",
            &["ssw0", "w#rd"],
            &["%2F", "%3F"],
        ),
        (
            "postgresql://bm:p@ssw0?x@127.0.0.1:{port}/r1_fleet",
            &["ssw0"],
            &["%3F"],
        ),
        (
            "postgresql://bm:pass%zzword@127.0.0.1:{port}/r1_fleet",
            &["zzword"],
            &["%25"],
        ),
        (
            "host=127.0.0.1 port={port} user=bmuser password=Hunter2Secret dbname=r1_fleet",
            &["Hunter2Secret", "bmuser", "r1_fleet"],
            &["postgresql://user@host", "PGPASSWORD", "~/.pgpass"],
        ),
    ];
    for (template, secret, advice) in cases {
        let url = template.replace("{port}", &port.to_string());
        for via_environment in [false, true] {
            let ws = if via_environment {
                with_database_url("sqlite://store.db").env("DATABASE_URL", &url)
            } else {
                with_database_url(&url)
            };
            let key = if via_environment {
                "DATABASE_URL (in the environment, in place of database_url)"
            } else {
                "database_url"
            };
            let check = ws.run(&["--check-config"]);
            assert_eq!(check.code, 3, "{url}: {}{}", check.stdout, check.stderr);
            let said = format!("{}{}", check.stdout, check.stderr);
            assert!(said.contains(key), "{url}: {said}");
            for a in advice {
                assert!(said.contains(a), "{url}: says {a}: {said}");
            }
            let started = Instant::now();
            let run = ws.run(&["--monitor", "-vv"]);
            assert_eq!(run.code, 3, "{url}: {}", run.stderr);
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "{url}: not retried"
            );
            let status = ws.run(&["--status"]);
            assert_eq!(status.code, 3, "{url}: {}", status.stderr);
            let log = std::fs::read_to_string(ws.path("logs/bm.log")).unwrap_or_default();
            let files = file_names(ws.dir.path()).join("\n");
            for text in [
                &check.stdout,
                &check.stderr,
                &run.stdout,
                &run.stderr,
                &status.stdout,
                &status.stderr,
                &log,
                &files,
            ] {
                for s in secret {
                    assert!(!text.contains(s), "{url}: {s} shown: {text}");
                }
            }
        }
    }
}

/// `DATABASE_URL` wins over `database_url`, from the environment or a `.env` file: the
/// config's value is then not interpolated, so its variables need not be set.
#[test]
fn database_url_from_the_environment_does_not_need_the_configs_variables() {
    let ws = with_database_url("postgresql://bmspecial:${DB_PASSWORD}@127.0.0.1/fleet");
    // Without DATABASE_URL the config's value applies, and its variable is needed.
    let run = ws.run(&["--check-config"]);
    assert_eq!(run.code, 3, "{}", run.stderr);
    assert!(
        format!("{}{}", run.stdout, run.stderr).contains("DB_PASSWORD"),
        "{}",
        run.stderr
    );
    let from_env = ws.env("DATABASE_URL", "sqlite://store.db");
    for args in [&["--check-config"][..], &["--monitor"], &["--status"]] {
        let run = from_env.run(args);
        assert_ne!(run.code, 3, "{args:?}: {}{}", run.stdout, run.stderr);
        assert!(!run.stderr.contains("DB_PASSWORD"), "{}", run.stderr);
    }
    assert!(from_env.path("store.db").exists());

    let ws = with_database_url("postgresql://bmspecial:${DB_PASSWORD}@127.0.0.1/fleet");
    std::fs::write(ws.path(".env"), "DATABASE_URL=sqlite://dotenv.db\n").unwrap();
    for args in [&["--check-config"][..], &["--monitor"]] {
        let run = ws.run(args);
        assert_ne!(run.code, 3, "{args:?}: {}{}", run.stdout, run.stderr);
    }
    assert!(ws.path("dotenv.db").exists());
}

/// A missing `sslrootcert` is a problem on this machine, said at once as such; one that
/// holds no certificate (a key) is said to hold none, before any connection.
#[test]
fn an_sslrootcert_that_cannot_be_read_or_holds_no_certificate_is_said_at_once() {
    let port = closed_port();
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing-ca.pem");
    let key = dir.path().join("server.key");
    std::fs::write(
        &key,
        "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIJ+DYvh6SEqVTm50DFtMDoQikTmiCqirVv9mWG9qfSnF\n-----END PRIVATE KEY-----\n",
    )
    .unwrap();
    for (path, said) in [
        (
            &missing,
            format!("cannot read sslrootcert {}", missing.display()),
        ),
        (
            &key,
            format!("sslrootcert {} holds no certificate", key.display()),
        ),
    ] {
        let url = format!(
            "postgresql://bm@127.0.0.1:{port}/fleet?sslmode=verify-full&sslrootcert={}",
            path.display()
        );
        let ws = with_database_url(&url);
        let last = said_at_once(&ws);
        assert!(last.contains(&said), "{last}");
        for wrong in ["refused", "password", "Check the user"] {
            assert!(!last.contains(wrong), "{wrong}: {last}");
        }
    }
}

/// The waits between tries stay at most 10 s apart, jitter included: four runs at once
/// against a closed port for 40 s, each logging every wait.
#[test]
fn retries_of_an_unreachable_server_are_at_most_10_s_apart() {
    let port = closed_port();
    let url = format!("postgresql://bm@127.0.0.1:{port}/fleet?sslmode=disable");
    let machines: Vec<Workspace> = (0..4)
        .map(|_| with_database_url(&url).env("BACKUP_MONITOR_PG_RETRY_SECS", "40"))
        .collect();
    let runs: Vec<_> = machines
        .iter()
        .map(|ws| {
            ws.process()
                .arg("--monitor")
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let mut waits = Vec::new();
    for run in runs {
        let (code, _, err) = finish(run);
        assert_eq!(code, 3, "{err}");
        for line in err.lines() {
            if let Some((_, rest)) = line.split_once("trying again in ") {
                let secs: f64 = rest.split_whitespace().next().unwrap().parse().unwrap();
                waits.push(secs);
            }
        }
    }
    let longest = waits.iter().copied().fold(0.0, f64::max);
    assert!(longest <= 10.0, "{waits:?}");
    assert!(longest >= 5.0, "the waits reached their cap: {waits:?}");
}

/// Two hosts whose names differ only in characters a file name cannot hold (`web+11`,
/// `web_11`) run at once on one machine: each has a lock file of its own.
#[test]
fn hosts_whose_names_differ_in_replaced_characters_have_lock_files_of_their_own() {
    let Some(_) = test_pg_url() else { return };
    let db = TestDatabase::create();
    let (hook, connected) = silent_webhook();
    let first = machine("\"web+11\"", &db.url, &hook);
    let tmp = first.path("tmp");
    let second = machine("web_11", &db.url, "").env("TMPDIR", tmp.to_str().unwrap());
    let holder = spawn(&first, &["--monitor", "--check-alerts"]);
    connected
        .recv_timeout(Duration::from_secs(60))
        .expect("the first run reaches its alert");
    let run = second.run(&["--monitor"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    let (code, _, err) = finish(holder);
    assert_eq!(code, 2, "{err}");
    let mut locks: Vec<_> = std::fs::read_dir(&tmp)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".lock"))
        .collect();
    locks.sort();
    assert_eq!(locks.len(), 2, "{locks:?}");
    assert!(
        locks
            .iter()
            .all(|l| l.starts_with("backup-monitor-web_11-"))
    );
}

/// A PostgreSQL server of this test's own in a temporary directory, asking every client
/// for a password (SCRAM), stopped when this goes.
struct PasswordServer {
    dir: tempfile::TempDir,
    bin: PathBuf,
    port: u16,
}

const SERVER_PASSWORD: &str = "Sc3ret-for-the-store";

impl PasswordServer {
    /// None (the test is skipped) without PostgreSQL's programs, except under CI. As
    /// root (initdb and pg_ctl refuse it), the server runs as the `postgres` user, as
    /// scripts/test-postgres does.
    fn start() -> Option<PasswordServer> {
        let bin = PathBuf::from(
            std::env::var("BM_TEST_PG_BIN").unwrap_or_else(|_| "/usr/lib/postgresql/15/bin".into()),
        );
        if !bin.join("initdb").exists() {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "no initdb in BM_TEST_PG_BIN under CI"
            );
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let pwfile = dir.path().join("pw");
        std::fs::write(&pwfile, SERVER_PASSWORD).unwrap();
        let data = dir.path().join("data");
        if as_root() {
            let out = Command::new("chown")
                .args(["-R", "postgres:"])
                .arg(dir.path())
                .output()
                .unwrap();
            assert!(out.status.success(), "chown: {out:?}");
        }
        let out = owner_command(&bin.join("initdb"))
            .arg("-D")
            .arg(&data)
            .args(["-U", "postgres", "--auth=scram-sha-256", "--no-sync"])
            .arg(format!("--pwfile={}", pwfile.display()))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "initdb: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let port = closed_port();
        let out = owner_command(&bin.join("pg_ctl"))
            .arg("-D")
            .arg(&data)
            .arg("-l")
            .arg(dir.path().join("log"))
            .arg("-o")
            .arg(format!(
                "-p {port} -c listen_addresses=127.0.0.1 -k {} -c fsync=off",
                dir.path().display()
            ))
            .args(["-w", "start"])
            .output()
            .unwrap();
        let server = PasswordServer { dir, bin, port };
        assert!(
            out.status.success(),
            "pg_ctl start: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let mut c = postgres::Client::connect(
            &format!("postgresql://postgres:{SERVER_PASSWORD}@127.0.0.1:{port}/postgres"),
            postgres::NoTls,
        )
        .unwrap();
        c.batch_execute("CREATE DATABASE fleet").unwrap();
        Some(server)
    }
}

/// Whether the tests run as root.
fn as_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

/// `program`, run as the `postgres` user when the tests run as root.
fn owner_command(program: &Path) -> Command {
    if as_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(program);
        c
    } else {
        Command::new(program)
    }
}

impl Drop for PasswordServer {
    fn drop(&mut self) {
        let _ = owner_command(&self.bin.join("pg_ctl"))
            .arg("-D")
            .arg(self.dir.path().join("data"))
            .args(["-m", "immediate", "-w", "stop"])
            .output();
    }
}

/// A server asking for a password none of database_url, PGPASSWORD or ~/.pgpass gives:
/// exit 3 at once naming the user and the file looked at, not a minute of retries. A
/// `~/.pgpass` others may read is ignored, as libpq does, with one warning saying to
/// `chmod 600` it; once it is, its password is used.
#[test]
fn no_password_to_give_is_said_at_once_and_a_pgpass_others_may_read_is_ignored() {
    let Some(server) = PasswordServer::start() else {
        return;
    };
    let url = format!(
        "postgresql://postgres@127.0.0.1:{}/fleet?sslmode=disable",
        server.port
    );
    let ws = with_database_url(&url);
    let home = ws.path("home");
    std::fs::create_dir_all(&home).unwrap();
    let pgpass = home.join(".pgpass");
    let ws = ws
        .env("HOME", home.to_str().unwrap())
        .env("PGPASSWORD", "")
        .env("PGPASSFILE", "")
        .env("BACKUP_MONITOR_PG_RETRY_SECS", "30");

    let last = said_at_once(&ws);
    assert!(
        last.contains(&format!(
            "no password for user postgres found in database_url, PGPASSWORD or {} (no such file)",
            pgpass.display()
        )),
        "{last}"
    );
    assert!(!last.contains("server is up"), "{last}");

    use std::os::unix::fs::PermissionsExt;
    std::fs::write(
        &pgpass,
        format!("127.0.0.1:*:fleet:postgres:{SERVER_PASSWORD}\n"),
    )
    .unwrap();
    std::fs::set_permissions(&pgpass, std::fs::Permissions::from_mode(0o644)).unwrap();
    let run = ws.run(&["--monitor"]);
    assert_eq!(run.code, 3, "{}", run.stderr);
    let warnings: Vec<_> = run
        .stderr
        .lines()
        .filter(|l| {
            l.contains(&format!(
                "the password file {} is ignored",
                pgpass.display()
            ))
        })
        .collect();
    assert_eq!(warnings.len(), 1, "{}", run.stderr);
    assert!(warnings[0].contains(&format!("chmod 600 {}", pgpass.display())));
    let last = run.stderr.lines().last().unwrap_or_default();
    assert!(
        last.contains("no password for user postgres") && last.contains("ignored"),
        "{last}"
    );

    std::fs::set_permissions(&pgpass, std::fs::Permissions::from_mode(0o600)).unwrap();
    let run = ws.run(&["--monitor"]);
    assert_eq!(run.code, 2, "the empty location is judged: {}", run.stderr);
    assert!(!run.stderr.contains("ignored"), "{}", run.stderr);
    let log = std::fs::read_to_string(ws.path("logs/bm.log")).unwrap_or_default();
    for text in [&run.stdout, &run.stderr, &log] {
        assert!(!text.contains(SERVER_PASSWORD), "{text}");
    }
}
