//! SQL dumps replayed into scratch databases, through the real binary, as real dump
//! tools write them: MySQL/MariaDB dumps with views, triggers, routines and events
//! defined by a production account; table data that mentions what the replay refuses;
//! errors that would quote rows; a statement still running at the time limit; an
//! account with rights beyond its scratch databases; a server that cannot be reached;
//! and PostgreSQL rows whose lines read like the statements a replay leaves out.

use crate::common;
use crate::restore_depth::{mariadb, mysql_url, scratch_prefix};

use chrono::{Duration, Utc};
use common::{Workspace, problem_kinds_of as kinds_of, restore_result as result, set_mtime};
use serde_json::Value;
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration as StdDuration, Instant};

/// One location `db` over `b/` with `restore:` extras (indented 8).
fn workspace(restore: &str) -> Workspace {
    let ws = Workspace::new();
    ws.write_config(&format!(
        "backups:\n  locations:\n    - name: db\n      path: b\n      restore:\n        latest: 50\n        scratch_dir: scratch\n{restore}"
    ));
    std::fs::create_dir_all(ws.path("scratch")).unwrap();
    std::fs::create_dir_all(ws.path("b")).unwrap();
    ws
}

/// Every backup under `b/` settled: modified a day ago.
fn settle(ws: &Workspace) {
    for f in std::fs::read_dir(ws.path("b")).unwrap().flatten() {
        set_mtime(&f.path(), Utc::now() - Duration::days(1));
    }
}

fn assert_failed(doc: &Value, path: &str, kind: &str) -> String {
    let r = result(doc, path);
    assert_eq!(r["result"], "failed", "{path}: {r:#}");
    assert_eq!(kinds_of(doc, path), vec![kind.to_string()], "{path}: {r:#}");
    r["detail"].as_str().unwrap_or("").to_string()
}

fn assert_passed(doc: &Value, path: &str) -> String {
    let r = result(doc, path);
    assert_eq!(r["result"], "passed", "{path}: {r:#}");
    r["detail"].as_str().unwrap_or("").to_string()
}

/// Host, port, user and password of a `mysql://` URL, as client arguments and the
/// password for `MYSQL_PWD`.
fn client_args(url: &str) -> (Vec<String>, String) {
    let u = url::Url::parse(url).unwrap();
    (
        vec![
            "--no-defaults".into(),
            "--protocol=tcp".into(),
            format!("--host={}", u.host_str().unwrap()),
            format!("--port={}", u.port().unwrap_or(3306)),
            format!("--user={}", u.username()),
        ],
        u.password().unwrap_or("").to_string(),
    )
}

/// A source database on the test server set up with `script` (fed to the client, so it
/// may change the delimiter), dumped by `mariadb-dump` with its routines and events,
/// then dropped: the dump.
fn mariadb_dump(url: &str, script: &str) -> String {
    static SOURCES: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = SOURCES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    // Named like a scratch database (the test account may create no other), but with no
    // run's pid in it: no run drops it as a leftover.
    let src = format!("{}src{}x{n}", scratch_prefix(), std::process::id());
    mariadb(
        url,
        &format!("DROP DATABASE IF EXISTS `{src}`; CREATE DATABASE `{src}`"),
    );
    let (args, password) = client_args(url);
    let mut client = Command::new("mariadb")
        .args(&args)
        .arg(format!("--database={src}"))
        .env("MYSQL_PWD", &password)
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    client
        .stdin
        .take()
        .unwrap()
        .write_all(script.as_bytes())
        .unwrap();
    let out = client.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let dump = Command::new("mariadb-dump")
        .args(&args)
        .args(["--skip-dump-date", "--routines", "--events"])
        .arg(&src)
        .env("MYSQL_PWD", &password)
        .output()
        .unwrap();
    assert!(
        dump.status.success(),
        "{}",
        String::from_utf8_lossy(&dump.stderr)
    );
    mariadb(url, &format!("DROP DATABASE `{src}`"));
    String::from_utf8(dump.stdout).unwrap()
}

/// This host's scratch databases on the test server.
fn scratch_databases(url: &str) -> String {
    mariadb(
        url,
        &format!(
            "SHOW DATABASES LIKE '{}%'",
            scratch_prefix().replace('_', "\\_")
        ),
    )
    .lines()
    .filter(|db| !db.contains("src"))
    .collect::<Vec<_>>()
    .join("\n")
}

/// A hand-written dump as mariadb-dump frames one: its marker and its footer.
fn mysql_dump(body: &str) -> String {
    format!(
        "-- MariaDB dump 10.19  Distrib 10.11.6-MariaDB, for debian-linux-gnu (x86_64)\n\
         /*!40101 SET NAMES utf8mb4 */;\n{body}\n-- Dump completed\n"
    )
}

#[test]
fn mysql_views_triggers_routines_and_events_of_another_definer_replay_on_a_restricted_account() {
    let Some((url, _one_at_a_time)) = mysql_url() else {
        eprintln!("skipped: no BM_TEST_MYSQL_URL (scripts/test-mariadb start)");
        return;
    };
    let dump = mariadb_dump(
        &url,
        "CREATE TABLE users (id INT PRIMARY KEY, name VARCHAR(40), definer VARCHAR(40));
         INSERT INTO users VALUES (1, 'ann', 'DEFINER=`root`@`localhost`'), (2, 'bob', NULL);
         CREATE VIEW active AS SELECT id, name FROM users;
         CREATE TRIGGER users_upper BEFORE INSERT ON users FOR EACH ROW SET NEW.name = UPPER(NEW.name);
         DELIMITER //
         CREATE PROCEDURE user_count() BEGIN SELECT COUNT(*) FROM users; END //
         CREATE FUNCTION twice(x INT) RETURNS INT DETERMINISTIC RETURN 2 * x //
         DELIMITER ;
         CREATE EVENT purge_nothing ON SCHEDULE EVERY 1 DAY DO DELETE FROM users WHERE id < 0;",
    );
    // What a production server's dump names: accounts the scratch server does not have,
    // which only an account with SUPER (or SET USER) may name.
    let (_, password) = client_args(&url);
    let user = url::Url::parse(&url).unwrap().username().to_string();
    let production = dump.replace(&format!("`{user}`@`127.0.0.1`"), "`root`@`localhost`");
    for form in [
        "/*!50013 DEFINER=`root`@`localhost` SQL SECURITY DEFINER */",
        "/*!50017 DEFINER=`root`@`localhost`*/ /*!50003 TRIGGER",
        "CREATE DEFINER=`root`@`localhost` PROCEDURE",
        "CREATE DEFINER=`root`@`localhost` FUNCTION",
        "/*!50117 DEFINER=`root`@`localhost`*/ /*!50106 EVENT",
    ] {
        assert!(
            production.contains(form),
            "{form} not in the dump:\n{production}"
        );
    }
    let ws = workspace(&format!("        mysql_url: {url}\n"));
    std::fs::write(ws.path("b/app.sql"), &production).unwrap();
    settle(&ws);
    let (run, doc) = ws.run_json(&["--test-restore"]);
    let detail = assert_passed(&doc, "app.sql");
    assert!(
        detail.contains("replayed into scratch database"),
        "{detail}"
    );
    assert_eq!(result(&doc, "app.sql")["files"], 1, "{doc:#}");
    // The data that reads like a DEFINER clause was replayed as it is.
    let rows: i64 = ws.store_value(
        "SELECT rows_restored FROM restore_tests t JOIN backups b ON b.id = t.backup_id WHERE b.path = 'app.sql'",
    );
    assert_eq!(rows, 2);
    // The restricted account is no reason for a warning.
    assert!(!run.stderr.contains("connects as"), "{}", run.stderr);
    assert_eq!(scratch_databases(&url), "", "scratch databases left");
    assert!(!run.stdout.contains(&password) && !run.stderr.contains(&password));
}

#[test]
fn mysql_table_data_that_mentions_refused_statements_replays() {
    let Some((url, _one_at_a_time)) = mysql_url() else {
        eprintln!("skipped: no BM_TEST_MYSQL_URL (scripts/test-mariadb start)");
        return;
    };
    let dump = mariadb_dump(
        &url,
        "CREATE TABLE posts (id INT PRIMARY KEY, body TEXT);
         INSERT INTO posts VALUES
           (1, 'To export, run SELECT * FROM t INTO OUTFILE ''/tmp/x.csv'''),
           (2, 'SELECT x INTO DUMPFILE \"/tmp/y\"; INSTALL SONAME ''auth_pam'''),
           (3, 'It\\'s done; USE mysql;\nGRANT ALL ON *.* TO x;\n\\\\! rm -rf /');",
    );
    assert!(dump.contains("INTO OUTFILE \\'/tmp/x.csv\\'"), "{dump}");
    let ws = workspace(&format!("        mysql_url: {url}\n"));
    std::fs::write(ws.path("b/posts.sql"), &dump).unwrap();
    // The real statements are still refused, and said as what they are.
    let cut = dump.find("/*!40101 SET").unwrap();
    for (name, statement) in [
        ("outfile.sql", "SELECT 1 INTO OUTFILE '/tmp/bm-outfile';\n"),
        ("soname.sql", "INSTALL SONAME 'ha_example';\n"),
        ("shell.sql", "\\! touch /tmp/bm-shell\n"),
    ] {
        let mut hostile = dump.clone();
        hostile.insert_str(cut, statement);
        std::fs::write(ws.path(&format!("b/{name}")), hostile).unwrap();
    }
    settle(&ws);
    let (_, doc) = ws.run_json(&["--test-restore"]);
    assert_passed(&doc, "posts.sql");
    let rows: i64 = ws.store_value(
        "SELECT rows_restored FROM restore_tests t JOIN backups b ON b.id = t.backup_id WHERE b.path = 'posts.sql'",
    );
    assert_eq!(rows, 3);
    for (path, said) in [
        ("outfile.sql", "the dump has an INTO OUTFILE clause"),
        ("soname.sql", "the dump has an INSTALL statement"),
        (
            "shell.sql",
            "the mariadb client command \\! (system: runs a shell command)",
        ),
    ] {
        let detail = assert_failed(&doc, path, "restore_failed");
        assert!(detail.contains(said), "{path}: {detail}");
    }
    assert!(!std::path::Path::new("/tmp/bm-shell").exists());
    assert_eq!(scratch_databases(&url), "", "scratch databases left");
}

#[test]
fn mysql_replay_errors_quote_no_row_of_the_dump() {
    let Some((url, _one_at_a_time)) = mysql_url() else {
        eprintln!("skipped: no BM_TEST_MYSQL_URL (scripts/test-mariadb start)");
        return;
    };
    let ws = workspace(&format!("        mysql_url: {url}\n"));
    // The client echoes the failing statement; the server's message quotes the key.
    std::fs::write(
        ws.path("b/cards.sql"),
        mysql_dump(
            "CREATE TABLE cards (id INT PRIMARY KEY, pan BIGINT UNIQUE, holder TEXT);\n\
             INSERT INTO cards VALUES (1,4111111111111111,'Jane Roe');\n\
             INSERT INTO cards VALUES (2,4111111111111111,'Jane O''Roe');",
        ),
    )
    .unwrap();
    // A value that does not fit its column, and a syntax error near a row.
    std::fs::write(
        ws.path("b/typed.sql"),
        mysql_dump(
            "CREATE TABLE cards (id INT PRIMARY KEY, pan BIGINT);\n\
             SET sql_mode = 'STRICT_ALL_TABLES';\n\
             INSERT INTO cards VALUES (1,'Jane Roe 4111111111111111');",
        ),
    )
    .unwrap();
    std::fs::write(
        ws.path("b/syntax.sql"),
        mysql_dump(
            "CREATE TABLE cards (id INT PRIMARY KEY, pan BIGINT, holder TEXT);\n\
             INSERT INTO cards VALUES ,(1,4111111111111111,'Jane Roe');",
        ),
    )
    .unwrap();
    settle(&ws);
    let (run, doc) = ws.run_json(&["--test-restore"]);
    let duplicate = assert_failed(&doc, "cards.sql", "restore_failed");
    assert!(
        duplicate.contains("ERROR 1062 (23000) at line 5: Duplicate entry '…' for key"),
        "{duplicate}"
    );
    let typed = assert_failed(&doc, "typed.sql", "restore_failed");
    assert!(typed.contains("ERROR 1366"), "{typed}");
    let syntax = assert_failed(&doc, "syntax.sql", "restore_failed");
    assert!(syntax.contains("ERROR 1064"), "{syntax}");
    let log = std::fs::read_to_string(ws.path("logs/backup-monitor.log")).unwrap();
    assert!(log.contains("ERROR 1062"), "{log}");
    let store = ws.store_text();
    for secret in ["4111111111111111", "Jane", "Roe", "INSERT INTO cards"] {
        for (what, text) in [
            ("the output", &run.stdout),
            ("stderr", &run.stderr),
            ("the log", &log),
            ("the store", &store),
        ] {
            assert!(!text.contains(secret), "{secret} in {what}: {text}");
        }
    }
    assert_eq!(scratch_databases(&url), "", "scratch databases left");
}

#[test]
fn mysql_statement_running_at_the_time_limit_is_stopped_and_its_database_dropped() {
    let Some((url, _one_at_a_time)) = mysql_url() else {
        eprintln!("skipped: no BM_TEST_MYSQL_URL (scripts/test-mariadb start)");
        return;
    };
    let ws = workspace(&format!("        mysql_url: {url}\n        timeout: 4s\n"));
    // Hours of work for the server (MariaDB's sequence engine).
    std::fs::write(
        ws.path("b/slow.sql"),
        mysql_dump(
            "CREATE TABLE t (a BIGINT);\nINSERT INTO t SELECT seq FROM seq_1_to_2000000000;",
        ),
    )
    .unwrap();
    settle(&ws);
    let started = Instant::now();
    let (run, doc) = ws.run_json(&["--test-restore"]);
    let took = started.elapsed();
    let detail = assert_failed(&doc, "slow.sql", "restore_limit_exceeded");
    assert!(
        detail.contains("after 4 s, the time limit (restore.timeout)"),
        "{detail}"
    );
    assert!(took < StdDuration::from_secs(40), "took {took:?}");
    assert!(!run.stderr.contains("cannot drop"), "{}", run.stderr);
    // Nothing of the test still runs on the server, and its database is gone.
    let running = mariadb(
        &url,
        "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE INFO LIKE '%seq_1_to_2000000000%' AND ID <> CONNECTION_ID()",
    );
    assert_eq!(running.trim(), "0", "the statement still runs");
    assert_eq!(scratch_databases(&url), "", "scratch databases left");
    // The next run finds nothing left behind to drop.
    ws.write_config(
        &std::fs::read_to_string(ws.config_path())
            .unwrap()
            .replace("timeout: 4s", "timeout: 3s"),
    );
    ws.run_json(&["--test-restore"]);
    let log = std::fs::read_to_string(ws.path("logs/backup-monitor.log")).unwrap();
    assert!(!log.contains("left behind"), "{log}");
    assert!(!log.contains("cannot drop"), "{log}");
    assert_eq!(scratch_databases(&url), "", "scratch databases left");
}

/// A `mariadb` client on PATH that answers `SHOW GRANTS` as a server's root account
/// would, and passes everything else to the real client.
fn root_grants_client(ws: &Workspace) -> String {
    let real = Command::new("sh")
        .args(["-c", "command -v mariadb"])
        .output()
        .unwrap();
    let real = String::from_utf8(real.stdout).unwrap().trim().to_string();
    let dir = ws.path("tools");
    std::fs::create_dir_all(&dir).unwrap();
    let script = dir.join("mariadb");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\nfor a in \"$@\"; do\n  if [ \"$a\" = \"SHOW GRANTS\" ]; then\n    \
             echo 'GRANT ALL PRIVILEGES ON *.* TO `root`@`localhost` IDENTIFIED BY PASSWORD '\"'\"'*81F5E21E35407D884A6CD4A731AEBFB6AF209E1B'\"'\"' WITH GRANT OPTION'\n    \
             echo 'GRANT SELECT ON `shop`.* TO `root`@`localhost`'\n    exit 0\n  fi\ndone\nexec {real} \"$@\"\n"
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    format!("{}:{}", dir.display(), std::env::var("PATH").unwrap())
}

#[test]
fn a_mysql_account_with_rights_beyond_its_scratch_databases_is_warned_about_once() {
    let Some((url, _one_at_a_time)) = mysql_url() else {
        eprintln!("skipped: no BM_TEST_MYSQL_URL (scripts/test-mariadb start)");
        return;
    };
    let ws = workspace(&format!("        mysql_url: {url}\n"));
    let path = root_grants_client(&ws);
    let ws = ws.env("PATH", &path);
    for name in ["a.sql", "b.sql"] {
        std::fs::write(
            ws.path(&format!("b/{name}")),
            mysql_dump("CREATE TABLE t (a INT);\nINSERT INTO t VALUES (1);"),
        )
        .unwrap();
    }
    settle(&ws);
    let (run, doc) = ws.run_json(&["--test-restore"]);
    assert_passed(&doc, "a.sql");
    assert_passed(&doc, "b.sql");
    let u = url::Url::parse(&url).unwrap();
    let warning = format!(
        "restore.mysql_url ({}@{}:{}) connects as an account with global privileges (ALL PRIVILEGES) and rights on other databases (shop): a hostile dump replayed there could change other databases or the server",
        u.username(),
        u.host_str().unwrap(),
        u.port().unwrap()
    );
    assert_eq!(run.stderr.matches(&warning).count(), 1, "{}", run.stderr);
    assert!(
        !run.stderr.contains("81F5E21E"),
        "a password hash: {}",
        run.stderr
    );
    assert!(!run.stderr.contains(u.password().unwrap()));
}

#[test]
fn an_unreachable_mysql_server_is_said_as_such_without_the_password() {
    if Command::new("mariadb").arg("--version").output().is_err() {
        assert!(
            std::env::var_os("CI").is_none(),
            "the mariadb client is not installed, and CI must run this test"
        );
        return;
    }
    // A port nothing listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let ws = workspace(&format!(
        "        mysql_url: mysql://restorer:Hunter2Secret@127.0.0.1:{port}\n"
    ));
    std::fs::write(ws.path("b/app.sql"), mysql_dump("CREATE TABLE t (a INT);")).unwrap();
    settle(&ws);
    let (run, doc) = ws.run_json(&["--test-restore"]);
    let r = result(&doc, "app.sql");
    assert_eq!(r["result"], "skipped", "{r:#}");
    let detail = r["detail"].as_str().unwrap();
    assert!(
        detail.contains(&format!(
            "cannot reach the server of restore.mysql_url at 127.0.0.1:{port}"
        )),
        "{detail}"
    );
    assert!(
        !detail.contains("refused a scratch-database command"),
        "{detail}"
    );
    for text in [&run.stdout, &run.stderr, &ws.store_text()] {
        assert!(!text.contains("Hunter2Secret"), "{text}");
    }
}

#[test]
fn postgres_rows_whose_lines_read_like_left_out_statements_replay() {
    let Some((url, bin, _one_at_a_time)) = crate::restore::postgres() else {
        return;
    };
    let src = format!("bm_src_quoted_{}", std::process::id());
    let psql = |db_url: &str, sql: &str| crate::restore::psql(&bin, db_url, sql);
    psql(&url, &format!("DROP DATABASE IF EXISTS {src}"));
    psql(&url, &format!("CREATE DATABASE {src}"));
    let src_url = crate::restore::db_url(&url, &src);
    // Values over lines (pg_dump --inserts writes them as they are), and a function
    // body with a GRANT of its own.
    psql(
        &src_url,
        "CREATE TABLE notes (id int PRIMARY KEY, body text);\n\
         INSERT INTO notes VALUES\n\
         (1, E'Changelog:\\nGRANT access to the reports page'),\n\
         (2, E'it''s\\nREVOKE ALL ON notes FROM PUBLIC;\\nALTER TABLE notes OWNER TO x;'),\n\
         (3, E'back\\\\slash\\nCREATE DATABASE shop;\\n\\\\connect shop');\n\
         CREATE FUNCTION grant_reports() RETURNS void LANGUAGE plpgsql AS $$\nBEGIN\n\
         GRANT SELECT ON notes TO PUBLIC;\nEND\n$$;",
    );
    let ws = workspace(&format!("        postgres_url: {url}\n"));
    let ws = ws.env(
        "PATH",
        &format!("{bin}:{}", std::env::var("PATH").unwrap_or_default()),
    );
    for (flags, name) in [(&["--inserts"][..], "inserts.sql"), (&[][..], "copy.sql")] {
        let out = Command::new(format!("{bin}/pg_dump"))
            .args(flags)
            .args(["-d", &src_url, "-f"])
            .arg(ws.path(&format!("b/{name}")))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    psql(&url, &format!("DROP DATABASE {src}"));
    let inserts = std::fs::read_to_string(ws.path("b/inserts.sql")).unwrap();
    assert!(
        inserts.contains("\nGRANT access to the reports page');\n"),
        "{inserts}"
    );
    assert!(
        inserts.contains("\nGRANT SELECT ON notes TO PUBLIC;\n"),
        "{inserts}"
    );
    settle(&ws);
    let (_, doc) = ws.run_json(&["--test-restore"]);
    for path in ["inserts.sql", "copy.sql"] {
        let detail = assert_passed(&doc, path);
        assert!(
            detail.contains("replayed into scratch database"),
            "{detail}"
        );
    }
}
