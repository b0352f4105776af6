//! Restore tests that prove more, through the real binary: encrypted backups made by the
//! real `age` and `gpg` programs (decrypted, tampered, truncated, the wrong key, no key,
//! key files others can read), a location whose tests were all skipped
//! (`restore_untested`), and restores that produced far less than usual
//! (`restore_anomaly`: a schema-only SQLite copy, a dump of 3 tables where the usual has
//! 40).

use crate::common;

use chrono::{Duration, Utc};
use common::{Workspace, problem_kinds_of as kinds_of, restore_result as result, set_mtime};
use serde_json::Value;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

fn workspace(config: &str) -> Workspace {
    let ws = Workspace::new();
    ws.write_config(config);
    std::fs::create_dir_all(ws.path("scratch")).unwrap();
    std::fs::create_dir_all(ws.path("b")).unwrap();
    ws
}

/// A location over `b/` testing the newest `latest` backups, with extra YAML under
/// `restore:` (indented 8).
pub(crate) fn config(latest: u32, restore: &str) -> String {
    format!(
        "backups:\n  locations:\n    - name: enc\n      path: b\n      restore:\n        latest: {latest}\n        scratch_dir: scratch\n{restore}\n"
    )
}

use crate::common::sh;

/// Whether `program` runs; CI installs it, so there its absence fails the test.
pub(crate) fn have(program: &str) -> bool {
    let found = Command::new(program)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        found || std::env::var_os("CI").is_none(),
        "{program} is not installed, and CI must run this test"
    );
    found
}

/// Every backup under `b/` settled: modified `days` days ago.
fn age_backup(ws: &Workspace, rel: &str, days: i64) {
    set_mtime(&ws.path(rel), Utc::now() - Duration::days(days));
}

fn private(p: &Path) {
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o600)).unwrap();
}

/// Flip one byte in the middle of a file.
fn tamper(p: &Path) {
    let mut bytes = std::fs::read(p).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x55;
    std::fs::write(p, bytes).unwrap();
}

fn truncate(p: &Path, keep: f64) {
    let bytes = std::fs::read(p).unwrap();
    std::fs::write(p, &bytes[..(bytes.len() as f64 * keep) as usize]).unwrap();
}

/// A small site with text and incompressible data (several age chunks).
fn make_site(ws: &Workspace) {
    let site = ws.path("src/site");
    std::fs::create_dir_all(site.join("css")).unwrap();
    std::fs::write(site.join("index.html"), "<html>hello</html>\n".repeat(200)).unwrap();
    std::fs::write(site.join("css/style.css"), "body { color: red }\n").unwrap();
    let random: Vec<u8> = (0..300_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    std::fs::write(site.join("data.bin"), random).unwrap();
    sh(ws, "tar -C src -czf src/site.tar.gz site");
}

fn test_restore(ws: &Workspace) -> (i32, Value, String) {
    let (run, doc) = ws.run_json(&["--test-restore"]);
    (run.code, doc, run.stderr)
}

fn assert_failed(doc: &Value, path: &str, kind: &str, detail: &str) {
    let r = result(doc, path);
    assert_eq!(r["result"], "failed", "{path}: {r:#}");
    assert_eq!(kinds_of(doc, path), vec![kind.to_string()], "{path}: {r:#}");
    let d = r["detail"].as_str().unwrap_or("");
    assert!(d.contains(detail), "{path}: {d}");
}

fn kinds_without_path(doc: &Value) -> Vec<String> {
    doc["problems"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["path"].is_null())
        .map(|p| p["kind"].as_str().unwrap_or("").to_string())
        .collect()
}

#[test]
fn age_backups_are_decrypted_in_the_stream_and_tested_as_what_they_hold() {
    if !have("age") {
        eprintln!("skipped: the age program is not installed (Debian package age)");
        return;
    }
    let ws = workspace(&config(
        50,
        "        decrypt:\n          age_identity_file: keys/age.txt",
    ));
    make_site(&ws);
    std::fs::create_dir_all(ws.path("keys")).unwrap();
    sh(
        &ws,
        "age-keygen -o keys/age.txt 2>/dev/null; age-keygen -o other.txt 2>/dev/null",
    );
    private(&ws.path("keys/age.txt"));
    let encrypt = |to: &str, out: &str| {
        sh(
            &ws,
            &format!("age -r \"$(age-keygen -y {to})\" -o b/{out} src/site.tar.gz"),
        );
    };
    for name in ["good", "tampered", "truncated", "tail"] {
        encrypt("keys/age.txt", &format!("{name}.tar.gz.age"));
    }
    encrypt("other.txt", "wrongkey.tar.gz.age");
    // A plain tar whose archive ends before its ciphertext does: the stream is still read
    // (and authenticated) to its end.
    sh(
        &ws,
        "tar -C src -cf src/site.tar site && age -r \"$(age-keygen -y keys/age.txt)\" -o b/plain.tar.age src/site.tar",
    );
    // The content says age even without the suffix.
    std::fs::copy(ws.path("b/good.tar.gz.age"), ws.path("b/renamed.bin")).unwrap();
    tamper(&ws.path("b/tampered.tar.gz.age"));
    truncate(&ws.path("b/truncated.tar.gz.age"), 0.6);
    // Cut inside the last chunk: everything the tar reader needs may be there.
    let tail = ws.path("b/tail.tar.gz.age");
    let len = std::fs::metadata(&tail).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&tail)
        .unwrap()
        .set_len(len - 10)
        .unwrap();
    std::fs::write(ws.path("b/fake.tar.gz.age"), b"not encrypted at all\n").unwrap();
    for f in std::fs::read_dir(ws.path("b")).unwrap().flatten() {
        set_mtime(&f.path(), Utc::now() - Duration::days(1));
    }
    let (code, doc, stderr) = test_restore(&ws);
    assert_eq!(code, 2, "{doc:#}\n{stderr}");

    let good = result(&doc, "good.tar.gz.age");
    assert_eq!(good["result"], "passed", "{good:#}");
    assert_eq!(good["format"], "tar.gz.age", "{good:#}");
    assert_eq!(good["files"], 3, "{good:#}");
    assert!(
        good["detail"].as_str().unwrap().contains("decrypted"),
        "{good:#}"
    );
    let renamed = result(&doc, "renamed.bin");
    assert_eq!(renamed["result"], "passed", "{renamed:#}");
    assert_eq!(renamed["format"], "tar.gz.age", "{renamed:#}");
    assert_eq!(result(&doc, "plain.tar.age")["format"], "tar.age");

    assert_failed(
        &doc,
        "tampered.tar.gz.age",
        "archive_corrupt",
        "the age-encrypted stream is damaged or cut short",
    );
    assert_failed(
        &doc,
        "truncated.tar.gz.age",
        "archive_corrupt",
        "the age-encrypted stream is damaged or cut short",
    );
    assert_failed(&doc, "tail.tar.gz.age", "archive_corrupt", "");
    assert_failed(
        &doc,
        "wrongkey.tar.gz.age",
        "restore_failed",
        "encrypted to another key",
    );
    assert_failed(
        &doc,
        "fake.tar.gz.age",
        "archive_corrupt",
        "not age-encrypted",
    );
    // Some of the location's tests passed: it is not untested.
    assert!(kinds_without_path(&doc).is_empty(), "{doc:#}");
    let left: Vec<_> = std::fs::read_dir(ws.path("scratch")).unwrap().collect();
    assert!(left.is_empty(), "sandboxes left behind: {left:?}");
}

/// A GnuPG home for making fixtures, with one key (passphrase-protected when `pass`).
fn gpg_key(ws: &Workspace, home: &str, uid: &str, pass: &str) {
    std::fs::create_dir_all(ws.path(home)).unwrap();
    std::fs::set_permissions(ws.path(home), std::fs::Permissions::from_mode(0o700)).unwrap();
    sh(
        ws,
        &format!(
            "gpg --homedir {home} --batch --pinentry-mode loopback --passphrase '{pass}' --quick-gen-key '{uid}' future-default default never 2>/dev/null"
        ),
    );
}

#[test]
fn gpg_backups_are_trusted_only_when_gpg_says_the_whole_message_is_intact() {
    if !have("gpg") {
        eprintln!("skipped: the gpg program is not installed (Debian package gnupg)");
        return;
    }
    const PASS: &str = "correct horse battery staple";
    let ws = workspace(&config(
        50,
        "        decrypt:\n          gpg_key_file: keys/backup.asc\n          gpg_passphrase_file: keys/pass.txt",
    ));
    std::fs::create_dir_all(ws.path("keys")).unwrap();
    std::fs::create_dir_all(ws.path("src")).unwrap();
    gpg_key(&ws, "gpg-mine", "Backup <backup@example.org>", PASS);
    gpg_key(&ws, "gpg-other", "Other <other@example.org>", "");
    sh(
        &ws,
        &format!(
            "gpg --homedir gpg-mine --batch --pinentry-mode loopback --passphrase '{PASS}' --armor --export-secret-keys backup@example.org > keys/backup.asc 2>/dev/null"
        ),
    );
    std::fs::write(ws.path("keys/pass.txt"), format!("{PASS}\n")).unwrap();
    private(&ws.path("keys/backup.asc"));
    private(&ws.path("keys/pass.txt"));
    // A SQLite .dump script, gzipped: replayed once decrypted.
    let mut dump = String::from("PRAGMA foreign_keys=OFF;\nBEGIN TRANSACTION;\n");
    dump.push_str("CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT);\n");
    for i in 0..3000 {
        dump.push_str(&format!(
            "INSERT INTO t VALUES({i},'row {i} {}');\n",
            i * 7919
        ));
    }
    dump.push_str("COMMIT;\n");
    std::fs::write(ws.path("src/db.sql"), dump).unwrap();
    sh(&ws, "gzip -k src/db.sql");
    let encrypt = |home: &str, to: &str, out: &str| {
        sh(
            &ws,
            &format!(
                "gpg --homedir {home} --batch --trust-model always -r {to} -o b/{out} -e src/db.sql.gz 2>/dev/null"
            ),
        );
    };
    for name in ["good", "tampered", "truncated"] {
        encrypt(
            "gpg-mine",
            "backup@example.org",
            &format!("{name}.sql.gz.gpg"),
        );
    }
    encrypt("gpg-other", "other@example.org", "wrongkey.sql.gz.gpg");
    // Encrypted to a passphrase alone (gpg -c), with the same passphrase file.
    sh(
        &ws,
        "gpg --homedir gpg-other --batch --pinentry-mode loopback --passphrase-file keys/pass.txt -c -o b/symmetric.sql.gz.pgp src/db.sql.gz 2>/dev/null",
    );
    tamper(&ws.path("b/tampered.sql.gz.gpg"));
    truncate(&ws.path("b/truncated.sql.gz.gpg"), 0.5);
    for f in std::fs::read_dir(ws.path("b")).unwrap().flatten() {
        set_mtime(&f.path(), Utc::now() - Duration::days(1));
    }
    let (run, doc) = ws.run_json(&["--test-restore"]);

    for path in ["good.sql.gz.gpg", "symmetric.sql.gz.pgp"] {
        let r = result(&doc, path);
        assert_eq!(r["result"], "passed", "{path}: {r:#}");
        // `.pgp` and `.gpg` are the same OpenPGP message.
        assert_eq!(r["format"], "sql.gz.gpg", "{r:#}");
        assert!(r["detail"].as_str().unwrap().contains("replayed"), "{r:#}");
    }
    assert_failed(&doc, "tampered.sql.gz.gpg", "archive_corrupt", "");
    assert_failed(&doc, "truncated.sql.gz.gpg", "archive_corrupt", "");
    assert_failed(
        &doc,
        "wrongkey.sql.gz.gpg",
        "restore_failed",
        "encrypted to another key",
    );
    // The passphrase appears nowhere: not in the output, not in the store.
    assert!(!run.stdout.contains(PASS) && !run.stderr.contains(PASS));
    let store = ws.store_text().into_bytes();
    assert!(!store.windows(PASS.len()).any(|w| w == PASS.as_bytes()));
    let left: Vec<_> = std::fs::read_dir(ws.path("scratch")).unwrap().collect();
    assert!(left.is_empty(), "sandboxes left behind: {left:?}");
}

#[test]
fn encrypted_backups_without_a_key_are_skipped_and_the_location_is_untested() {
    let ws = workspace(&config(5, ""));
    // Content decides: an age header and an OpenPGP session key packet.
    ws.write_file(
        "b/site.tar.gz.age",
        b"age-encryption.org/v1\n-> X25519 abc\nxyz\n--- abc\n",
        Utc::now() - Duration::days(2),
    );
    ws.write_file(
        "b/db.sql.gz.gpg",
        &[0x85, 0x01, 0x0c, 0x03, 0, 0, 0, 0],
        Utc::now() - Duration::days(1),
    );
    let (code, doc, stderr) = test_restore(&ws);
    assert_eq!(code, 1, "a warning: {doc:#}\n{stderr}");
    for (path, why) in [
        ("site.tar.gz.age", "age_identity_file"),
        ("db.sql.gz.gpg", "gpg_key_file"),
    ] {
        let r = result(&doc, path);
        assert_eq!(r["result"], "skipped", "{r:#}");
        assert!(r["detail"].as_str().unwrap().contains(why), "{r:#}");
    }
    assert_eq!(
        kinds_without_path(&doc),
        vec!["restore_untested"],
        "{doc:#}"
    );
    let p = doc["problems"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["kind"] == "restore_untested")
        .unwrap();
    assert_eq!(p["severity"], "warning");
    assert!(p["message"].as_str().unwrap().contains("all 2"), "{p:#}");

    // A backup that passes closes it.
    ws.write_file(
        "b/plain.sql",
        b"PRAGMA foreign_keys=OFF;\nBEGIN TRANSACTION;\nCREATE TABLE t(x);\nCOMMIT;\n",
        Utc::now() - Duration::hours(1),
    );
    let (_, doc, _) = test_restore(&ws);
    assert!(kinds_without_path(&doc).is_empty(), "{doc:#}");
}

#[test]
fn key_files_others_can_read_are_refused_and_named() {
    let ws = workspace(&config(
        1,
        "        decrypt:\n          age_identity_file: age-key.txt",
    ));
    std::fs::write(ws.path("age-key.txt"), "AGE-SECRET-KEY-1XYZ\n").unwrap();
    std::fs::set_permissions(
        ws.path("age-key.txt"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    ws.write_file(
        "b/x.tar.age",
        b"age-encryption.org/v1\n",
        Utc::now() - Duration::days(1),
    );
    let (run, doc) = ws.run_json(&["--test-restore"]);
    assert_eq!(run.code, 1, "the location's warning, not an error: {doc:#}");
    let untested = doc["problems"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["kind"] == "restore_untested")
        .unwrap_or_else(|| panic!("{doc:#}"));
    let message = untested["message"].as_str().unwrap();
    assert!(
        message.contains("age-key.txt") && message.contains("chmod 600"),
        "{message}"
    );
    // Never used: the backup is skipped with the reason, not judged with that key.
    let x = result(&doc, "x.tar.age");
    assert_eq!(x["result"], "skipped", "{x:#}");
    assert!(x["detail"].as_str().unwrap().contains("not used"), "{x:#}");
    assert!(!run.stdout.contains("AGE-SECRET-KEY"), "{}", run.stdout);
    assert!(!run.stderr.contains("AGE-SECRET-KEY"), "{}", run.stderr);
}

/// A SQLite database with `tables` tables of `rows` rows each.
fn sqlite_db(path: &Path, tables: usize, rows: usize) {
    let conn = rusqlite::Connection::open(path).unwrap();
    for t in 0..tables {
        conn.execute_batch(&format!(
            "CREATE TABLE t{t}(id INTEGER PRIMARY KEY, v TEXT);"
        ))
        .unwrap();
        let tx = conn.unchecked_transaction().unwrap();
        for i in 0..rows {
            tx.execute(
                &format!("INSERT INTO t{t}(v) VALUES (?1)"),
                [format!("value {i} of a table that matters {}", i * 31)],
            )
            .unwrap();
        }
        tx.commit().unwrap();
    }
}

/// The restore problems of `path` after a run.
fn restore_kinds(ws: &Workspace, path: &str) -> Vec<String> {
    let (_, doc, _) = test_restore(ws);
    kinds_of(&doc, path)
}

#[test]
fn a_schema_only_sqlite_copy_is_flagged_against_the_usual_restore() {
    let ws = workspace(&config(1, ""));
    std::fs::create_dir_all(ws.path("src")).unwrap();
    for (day, name) in [(5, "mon"), (4, "tue")] {
        let rel = format!("b/{name}.sqlite");
        sqlite_db(&ws.path(&rel), 4, 2000);
        age_backup(&ws, &rel, day);
        assert!(restore_kinds(&ws, &format!("{name}.sqlite")).is_empty());
    }
    // Schema only: the same tables, no rows, a few KiB.
    sqlite_db(&ws.path("b/wed.sqlite"), 4, 0);
    age_backup(&ws, "b/wed.sqlite", 3);
    let (code, doc, _) = test_restore(&ws);
    assert_eq!(code, 1, "{doc:#}");
    let r = result(&doc, "wed.sqlite");
    assert_eq!(r["result"], "passed", "the restore itself works: {r:#}");
    assert_eq!(kinds_of(&doc, "wed.sqlite"), vec!["restore_anomaly"]);
    let p = doc["problems"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["kind"] == "restore_anomaly")
        .unwrap();
    let message = p["message"].as_str().unwrap();
    assert!(message.contains("0 rows against a usual 8000"), "{message}");
    assert!(message.contains("bytes"), "{message}");
    assert_eq!(p["severity"], "warning");
    // What was restored is recorded for every passed test.
    let rows: i64 = ws.store_value("SELECT rows_restored FROM restore_tests ORDER BY id LIMIT 1");
    assert_eq!(rows, 8000);
    // The next full backup is not compared with the hollow one alone.
    sqlite_db(&ws.path("b/thu.sqlite"), 4, 2000);
    age_backup(&ws, "b/thu.sqlite", 2);
    assert!(restore_kinds(&ws, "thu.sqlite").is_empty());
}

/// A SQLite `.dump` script of `tables` tables with a few rows each.
fn dump(tables: usize) -> String {
    let mut s = String::from("PRAGMA foreign_keys=OFF;\nBEGIN TRANSACTION;\n");
    for t in 0..tables {
        s.push_str(&format!(
            "CREATE TABLE t{t}(id INTEGER PRIMARY KEY, v TEXT);\n"
        ));
        for i in 0..20 {
            s.push_str(&format!("INSERT INTO t{t} VALUES({i},'v{i}');\n"));
        }
    }
    s.push_str("COMMIT;\n");
    s
}

#[test]
fn a_dump_of_3_tables_where_the_usual_has_40_is_flagged() {
    let ws = workspace(&config(1, ""));
    ws.write_file(
        "b/mon.sql",
        dump(40).as_bytes(),
        Utc::now() - Duration::days(3),
    );
    assert!(restore_kinds(&ws, "mon.sql").is_empty());
    ws.write_file(
        "b/tue.sql",
        dump(3).as_bytes(),
        Utc::now() - Duration::days(2),
    );
    let (_, doc, _) = test_restore(&ws);
    assert_eq!(result(&doc, "tue.sql")["files"], 3);
    assert_eq!(
        kinds_of(&doc, "tue.sql"),
        vec!["restore_anomaly"],
        "{doc:#}"
    );
    let p = doc["problems"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["kind"] == "restore_anomaly")
        .unwrap();
    assert!(
        p["message"]
            .as_str()
            .unwrap()
            .contains("3 tables against a usual 40"),
        "{p:#}"
    );
    // An unchanged backup keeps its problem on the next run.
    let (_, doc, _) = test_restore(&ws);
    assert_eq!(
        kinds_of(&doc, "tue.sql"),
        vec!["restore_anomaly"],
        "{doc:#}"
    );
}

#[test]
fn a_gpg_that_hangs_is_stopped_at_the_time_limit() {
    let ws = workspace(&config(
        1,
        "        timeout: 2s\n        decrypt:\n          gpg_passphrase_file: pass.txt",
    ));
    std::fs::write(ws.path("pass.txt"), "secret\n").unwrap();
    private(&ws.path("pass.txt"));
    // A gpg that never answers.
    std::fs::create_dir_all(ws.path("fake-bin")).unwrap();
    std::fs::write(ws.path("fake-bin/gpg"), "#!/bin/sh\nexec sleep 60\n").unwrap();
    std::fs::set_permissions(
        ws.path("fake-bin/gpg"),
        std::fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    ws.write_file(
        "b/db.sql.gpg",
        &[0x8c, 0x0d, 0x04, 0x07, 0, 0, 0, 0],
        Utc::now() - Duration::days(1),
    );
    let path = format!(
        "{}:{}",
        ws.path("fake-bin").display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let ws = ws.env("PATH", &path);
    let started = std::time::Instant::now();
    let (_, doc, _) = test_restore(&ws);
    assert!(started.elapsed().as_secs() < 30, "{:?}", started.elapsed());
    assert_eq!(
        kinds_of(&doc, "db.sql.gpg"),
        vec!["restore_limit_exceeded"],
        "{doc:#}"
    );
}

/// The scratch MariaDB server of `scripts/test-mariadb`, when one runs (CI starts it).
/// The test MariaDB's URL, and a guard held while the test runs: the tests that count
/// this host's scratch databases, or leave one of a killed run for a moment, take turns.
pub(crate) fn mysql_url() -> Option<(String, std::sync::MutexGuard<'static, ()>)> {
    static SERVER: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let url = std::env::var("BM_TEST_MYSQL_URL").ok();
    assert!(
        url.is_some() || std::env::var_os("CI").is_none(),
        "CI must run the MySQL restore tests: start scripts/test-mariadb"
    );
    let guard = SERVER.lock().unwrap_or_else(|e| e.into_inner());
    url.map(|url| (url, guard))
}

/// The `mariadb` client as the test's admin (the URL's user), password in the
/// environment.
pub(crate) fn mariadb(url: &str, sql: &str) -> String {
    let out = mariadb_output(url, sql);
    assert!(
        out.status.success(),
        "{sql}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// [`mariadb`]'s output as it is, failed or not.
pub(crate) fn mariadb_output(url: &str, sql: &str) -> std::process::Output {
    let u = url::Url::parse(url).unwrap();
    Command::new("mariadb")
        .args([
            "--no-defaults",
            "--protocol=tcp",
            "--batch",
            "--skip-column-names",
        ])
        .arg(format!("--host={}", u.host_str().unwrap()))
        .arg(format!("--port={}", u.port().unwrap_or(3306)))
        .arg(format!("--user={}", u.username()))
        .env("MYSQL_PWD", u.password().unwrap_or(""))
        .arg("-e")
        .arg(sql)
        .output()
        .unwrap()
}

/// This host's scratch-database prefix, as the binary computes it.
pub(crate) fn scratch_prefix() -> String {
    let host = hostname();
    let hash = host.bytes().fold(0x811c_9dc5_u32, |h, b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    });
    format!("bm_restore_{hash:08x}_")
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .unwrap()
        .trim()
        .to_string()
}

#[test]
fn mysql_dumps_are_replayed_into_a_scratch_database_that_is_dropped() {
    let Some((url, _one_at_a_time)) = mysql_url() else {
        eprintln!("skipped: no BM_TEST_MYSQL_URL (scripts/test-mariadb start)");
        return;
    };
    let src = format!("{}src{}", scratch_prefix(), std::process::id());
    mariadb(
        &url,
        &format!("DROP DATABASE IF EXISTS `{src}`; CREATE DATABASE `{src}`"),
    );
    let mut setup = String::new();
    for t in 0..5 {
        setup.push_str(&format!(
            "CREATE TABLE `{src}`.t{t} (id INT PRIMARY KEY, v VARCHAR(40)); INSERT INTO `{src}`.t{t} VALUES (1,'a'),(2,'b'),(3,'c');"
        ));
    }
    mariadb(&url, &setup);
    let ws = workspace(&config(50, &format!("        mysql_url: {url}")));
    let u = url::Url::parse(&url).unwrap();
    let dump = Command::new("mariadb-dump")
        .args(["--no-defaults", "--protocol=tcp", "--skip-dump-date"])
        .arg(format!("--host={}", u.host_str().unwrap()))
        .arg(format!("--port={}", u.port().unwrap_or(3306)))
        .arg(format!("--user={}", u.username()))
        .env("MYSQL_PWD", u.password().unwrap_or(""))
        .arg(&src)
        .output()
        .unwrap();
    assert!(
        dump.status.success(),
        "{}",
        String::from_utf8_lossy(&dump.stderr)
    );
    mariadb(&url, &format!("DROP DATABASE `{src}`"));
    let text = String::from_utf8(dump.stdout).unwrap();
    std::fs::write(ws.path("b/shop.sql"), &text).unwrap();
    sh(&ws, "gzip -c b/shop.sql > b/shop.sql.gz");
    // What reaches other databases is refused, footer or not.
    std::fs::write(
        ws.path("b/evil.sql"),
        text.replacen("/*!40101 SET", "USE `mysql`;\n/*!40101 SET", 1),
    )
    .unwrap();
    std::fs::write(
        ws.path("b/grant.sql"),
        text.replacen(
            "/*!40101 SET",
            "/*!50000 GRANT ALL ON *.* TO 'x'@'%' */;\n/*!40101 SET",
            1,
        ),
    )
    .unwrap();
    // A statement the server rejects.
    std::fs::write(
        ws.path("b/broken.sql"),
        text.replacen("CREATE TABLE", "CREATE TABEL", 1),
    )
    .unwrap();
    // A scratch database a killed run left behind.
    let mut child = Command::new("true").spawn().unwrap();
    let dead = child.id();
    child.wait().unwrap();
    let leftover = format!("{}{dead}_0", scratch_prefix());
    mariadb(&url, &format!("CREATE DATABASE IF NOT EXISTS `{leftover}`"));
    for f in std::fs::read_dir(ws.path("b")).unwrap().flatten() {
        set_mtime(&f.path(), Utc::now() - Duration::days(1));
    }
    let (run, doc) = ws.run_json(&["--test-restore"]);
    for path in ["shop.sql", "shop.sql.gz"] {
        let r = result(&doc, path);
        assert_eq!(r["result"], "passed", "{r:#}");
        assert_eq!(r["files"], 5, "{r:#}");
        assert!(
            r["detail"]
                .as_str()
                .unwrap()
                .contains("replayed into scratch database"),
            "{r:#}"
        );
    }
    assert_failed(&doc, "evil.sql", "restore_failed", "USE statement");
    assert_failed(&doc, "grant.sql", "restore_failed", "GRANT statement");
    assert_failed(&doc, "broken.sql", "restore_failed", "replaying the dump");
    let rows: i64 = ws.store_value(
        "SELECT rows_restored FROM restore_tests t JOIN backups b ON b.id = t.backup_id WHERE b.path = 'shop.sql'",
    );
    assert_eq!(rows, 15);
    // Every scratch database is gone, the leftover too; the password was never shown.
    let left = mariadb(
        &url,
        &format!(
            "SHOW DATABASES LIKE '{}%'",
            scratch_prefix().replace('_', "\\_")
        ),
    );
    assert_eq!(left.trim(), "", "scratch databases left: {left}");
    let password = u.password().unwrap();
    assert!(!run.stdout.contains(password) && !run.stderr.contains(password));
}
