//! Restore verdicts that come from the config or the machine, and the words of
//! restore details, through the real binary with the real `age` and `gpg` programs:
//! a key fixed in place re-tests the backups its verdict came from, a gpg key that
//! needs a passphrase says so, damaged age and zip files say what is damaged, and the
//! formats and details of encrypted, skipped and single-file backups say what they are.

use crate::common::{self, Workspace, problem_kinds_of as kinds_of, restore_result as result};
use crate::restore_depth::{config, have};
use chrono::{Duration, Utc};
use serde_json::Value;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

/// One location `enc` over `b/`, testing the newest `latest` backups, with extra YAML
/// under `restore:`.
fn workspace(latest: u32, restore: &str) -> Workspace {
    let ws = Workspace::new();
    ws.write_config(&config(latest, restore));
    std::fs::create_dir_all(ws.path("scratch")).unwrap();
    std::fs::create_dir_all(ws.path("b")).unwrap();
    std::fs::create_dir_all(ws.path("keys")).unwrap();
    std::fs::create_dir_all(ws.path("src")).unwrap();
    ws
}

fn private(p: &Path) {
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o600)).unwrap();
}

/// Every file under `b/` settled: modified a day ago.
fn settle(ws: &Workspace) {
    for f in std::fs::read_dir(ws.path("b")).unwrap().flatten() {
        common::set_mtime(&f.path(), Utc::now() - Duration::days(1));
    }
}

fn test_restore(ws: &Workspace) -> (i32, Value, String) {
    let (run, doc) = ws.run_json(&["--test-restore"]);
    (run.code, doc, run.stderr)
}

fn detail(doc: &Value, path: &str) -> String {
    result(doc, path)["detail"]
        .as_str()
        .unwrap_or("")
        .to_string()
}

/// A detail fit for a log line: one line, no control characters, no Rust paths.
fn assert_clean(text: &str) {
    assert!(!text.chars().any(char::is_control), "{text:?}");
    assert!(!text.contains("::"), "{text:?}");
}

/// A tar.gz of a small site (text and incompressible data: several age chunks).
fn make_site(ws: &Workspace) {
    let site = ws.path("src/site");
    std::fs::create_dir_all(&site).unwrap();
    std::fs::write(site.join("index.html"), "<html>hello</html>\n".repeat(200)).unwrap();
    // Incompressible: the tar.gz spans several 64 KiB age chunks.
    let mut x = 0x9e37_79b9_7f4a_7c15_u64;
    let random: Vec<u8> = (0..300_000)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect();
    std::fs::write(site.join("data.bin"), random).unwrap();
    common::sh(ws, "tar -C src -czf src/site.tar.gz site");
}

#[test]
fn a_key_copied_over_the_wrong_one_re_tests_the_backup() {
    if !have("age") {
        eprintln!("skipped: the age program is not installed (Debian package age)");
        return;
    }
    let ws = workspace(
        1,
        "        decrypt:\n          age_identity_file: keys/live.txt",
    );
    make_site(&ws);
    common::sh(
        &ws,
        "age-keygen -o src/right.txt 2>/dev/null && age-keygen -o src/wrong.txt 2>/dev/null \
         && age -r \"$(age-keygen -y src/right.txt)\" -o b/site.tar.gz.age src/site.tar.gz \
         && cp src/wrong.txt keys/live.txt",
    );
    private(&ws.path("keys/live.txt"));
    settle(&ws);
    let (code, doc, stderr) = test_restore(&ws);
    assert_eq!(code, 2, "{doc:#}\n{stderr}");
    let r = result(&doc, "site.tar.gz.age");
    assert_eq!(r["result"], "failed", "{r:#}");
    assert!(
        detail(&doc, "site.tar.gz.age").contains("encrypted to another key"),
        "{r:#}"
    );
    // Named by what it holds, not `unknown`, though it could not be opened.
    assert_eq!(r["format"], "tar.gz.age", "{r:#}");
    // Unchanged, with the same key: the verdict is carried.
    let (_, doc, _) = test_restore(&ws);
    assert!(
        detail(&doc, "site.tar.gz.age").starts_with("unchanged since"),
        "{doc:#}"
    );

    // The right key copied over the wrong one, under the same name: tested again.
    std::fs::copy(ws.path("src/right.txt"), ws.path("keys/live.txt")).unwrap();
    private(&ws.path("keys/live.txt"));
    let (code, doc, stderr) = test_restore(&ws);
    assert_eq!(code, 0, "{doc:#}\n{stderr}");
    let r = result(&doc, "site.tar.gz.age");
    assert_eq!(r["result"], "passed", "{r:#}");
    assert!(
        !detail(&doc, "site.tar.gz.age").contains("unchanged"),
        "{r:#}"
    );
    assert!(kinds_of(&doc, "site.tar.gz.age").is_empty(), "{doc:#}");

    // The store keeps a digest, never the key.
    let secret = std::fs::read_to_string(ws.path("src/right.txt")).unwrap();
    let key = secret
        .lines()
        .find(|l| l.starts_with("AGE-SECRET-KEY-"))
        .unwrap();
    assert!(!ws.store_text().contains(key));
    assert!(!ws.store_text().contains(&key.to_ascii_lowercase()));
}

#[test]
fn another_scratch_server_re_tests_the_backup() {
    let Some((url, bin, _one_at_a_time)) = crate::restore::postgres() else {
        return;
    };
    let ws = workspace(1, &format!("        postgres_url: {url}"));
    let ws = ws.env(
        "PATH",
        &format!("{bin}:{}", std::env::var("PATH").unwrap_or_default()),
    );
    std::fs::write(
        ws.path("b/app.sql"),
        "--\n-- PostgreSQL database dump\n--\n\nCREATE TABLE public.t (a integer);\n\n--\n-- PostgreSQL database dump complete\n--\n",
    )
    .unwrap();
    settle(&ws);
    let (_, doc, _) = test_restore(&ws);
    assert_eq!(result(&doc, "app.sql")["result"], "passed", "{doc:#}");
    let (_, doc, _) = test_restore(&ws);
    assert!(
        detail(&doc, "app.sql").starts_with("unchanged since"),
        "{doc:#}"
    );
    // The same server as another user (or another server): the earlier verdict was
    // reached elsewhere.
    let mut other = url::Url::parse(&url).unwrap();
    other
        .query_pairs_mut()
        .append_pair("application_name", "f5-other");
    ws.write_config(&config(1, &format!("        postgres_url: {other}")));
    let (_, doc, _) = test_restore(&ws);
    let d = detail(&doc, "app.sql");
    assert!(!d.contains("unchanged"), "{d}");
    assert!(d.contains("scratch database"), "{d}");
    // The URL is in the store only as part of a digest.
    assert!(!ws.store_text().contains("f5-other"));
}

/// A GnuPG home with one key protected by `pass`, exported to `keys/backup.asc`, and
/// `src/db.sql.gz` encrypted to it as `b/db.sql.gz.gpg`.
fn gpg_fixture(ws: &Workspace, pass: &str) {
    std::fs::create_dir_all(ws.path("gpg-mine")).unwrap();
    std::fs::set_permissions(ws.path("gpg-mine"), std::fs::Permissions::from_mode(0o700)).unwrap();
    let mut dump = String::from("PRAGMA foreign_keys=OFF;\nBEGIN TRANSACTION;\n");
    dump.push_str("CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT);\n");
    for i in 0..200 {
        dump.push_str(&format!("INSERT INTO t VALUES({i},'row {i}');\n"));
    }
    dump.push_str("COMMIT;\n");
    std::fs::write(ws.path("src/db.sql"), dump).unwrap();
    common::sh(
        ws,
        &format!(
            "gzip -k src/db.sql \
             && gpg --homedir gpg-mine --batch --pinentry-mode loopback --passphrase '{pass}' --quick-gen-key 'Backup <backup@example.org>' future-default default never 2>/dev/null \
             && gpg --homedir gpg-mine --batch --pinentry-mode loopback --passphrase '{pass}' --armor --export-secret-keys backup@example.org > keys/backup.asc 2>/dev/null \
             && gpg --homedir gpg-mine --batch --trust-model always -r backup@example.org -o b/db.sql.gz.gpg -e src/db.sql.gz 2>/dev/null; \
             gpgconf --homedir gpg-mine --kill all"
        ),
    );
    private(&ws.path("keys/backup.asc"));
}

#[test]
fn a_gpg_key_that_needs_its_passphrase_says_so() {
    if !have("gpg") {
        eprintln!("skipped: the gpg program is not installed (Debian package gnupg)");
        return;
    }
    const PASS: &str = "correct horse battery staple";
    let ws = workspace(
        1,
        "        decrypt:\n          gpg_key_file: keys/backup.asc",
    );
    gpg_fixture(&ws, PASS);
    settle(&ws);
    let (code, doc, stderr) = test_restore(&ws);
    assert_eq!(code, 1, "the location's warning: {doc:#}\n{stderr}");
    let r = result(&doc, "db.sql.gz.gpg");
    assert_eq!(r["result"], "skipped", "{r:#}");
    assert_eq!(r["format"], "sql.gz.gpg", "{r:#}");
    let d = detail(&doc, "db.sql.gz.gpg");
    assert!(d.contains("needs its passphrase"), "{d}");
    assert!(d.contains("restore.decrypt.gpg_passphrase_file"), "{d}");
    assert!(!d.contains("another key"), "{d}");
    // Not a verdict on the backup: the location cannot be tested until the config says
    // the passphrase.
    assert!(kinds_of(&doc, "db.sql.gz.gpg").is_empty(), "{doc:#}");
    let untested = doc["problems"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["kind"] == "restore_untested")
        .unwrap_or_else(|| panic!("{doc:#}"));
    let message = untested["message"].as_str().unwrap();
    assert!(message.contains("gpg_passphrase_file"), "{message}");

    // With the passphrase, it opens.
    std::fs::write(ws.path("keys/pass.txt"), format!("{PASS}\n")).unwrap();
    private(&ws.path("keys/pass.txt"));
    ws.write_config(&config(
        1,
        "        decrypt:\n          gpg_key_file: keys/backup.asc\n          gpg_passphrase_file: keys/pass.txt",
    ));
    let (code, doc, stderr) = test_restore(&ws);
    assert_eq!(code, 0, "{doc:#}\n{stderr}");
    assert_eq!(result(&doc, "db.sql.gz.gpg")["result"], "passed", "{doc:#}");
}

#[test]
fn damaged_age_files_say_they_are_damaged_or_cut_short() {
    if !have("age") {
        eprintln!("skipped: the age program is not installed (Debian package age)");
        return;
    }
    let ws = workspace(
        50,
        "        decrypt:\n          age_identity_file: keys/age.txt",
    );
    make_site(&ws);
    common::sh(
        &ws,
        "age-keygen -o keys/age.txt 2>/dev/null \
         && age -r \"$(age-keygen -y keys/age.txt)\" -o src/site.tar.gz.age src/site.tar.gz \
         && head -c 100000 src/site.tar.gz.age > b/head.tar.gz.age \
         && cp src/site.tar.gz.age b/flipped.tar.gz.age",
    );
    private(&ws.path("keys/age.txt"));
    let whole = std::fs::metadata(ws.path("src/site.tar.gz.age"))
        .unwrap()
        .len();
    assert!(whole > 250_000, "the cut is inside the file: {whole}");
    let flipped = ws.path("b/flipped.tar.gz.age");
    let mut bytes = std::fs::read(&flipped).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x01;
    std::fs::write(&flipped, bytes).unwrap();
    settle(&ws);
    let (code, doc, stderr) = test_restore(&ws);
    assert_eq!(code, 2, "{doc:#}\n{stderr}");
    for path in ["head.tar.gz.age", "flipped.tar.gz.age"] {
        let r = result(&doc, path);
        assert_eq!(r["result"], "failed", "{r:#}");
        assert_eq!(kinds_of(&doc, path), vec!["archive_corrupt"], "{doc:#}");
        let d = detail(&doc, path);
        assert!(
            d.contains("the age-encrypted stream is damaged or cut short"),
            "{path}: {d}"
        );
        assert!(d.contains("authentication"), "{path}: the cause: {d}");
        assert!(!d.contains("last chunk has been processed"), "{path}: {d}");
        assert_clean(&d);
    }
}

#[test]
fn a_cut_zip_says_so_without_naming_code() {
    let ws = workspace(50, "");
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default();
    for i in 0..3 {
        zip.start_file(format!("file{i}.txt"), options).unwrap();
        std::io::Write::write_all(&mut zip, format!("content {i}\n").repeat(50).as_bytes())
            .unwrap();
    }
    let bytes = zip.finish().unwrap().into_inner();
    std::fs::write(ws.path("b/cut.zip"), &bytes[..bytes.len() - 1]).unwrap();
    settle(&ws);
    let (_, doc, _) = test_restore(&ws);
    assert_eq!(
        kinds_of(&doc, "cut.zip"),
        vec!["archive_corrupt"],
        "{doc:#}"
    );
    let d = detail(&doc, "cut.zip");
    assert!(d.contains("cut short or damaged"), "{d}");
    assert!(!d.contains("Block"), "{d}");
    assert_clean(&d);
}

#[test]
fn an_unreachable_scratch_server_is_said_on_one_line() {
    let ws = workspace(
        1,
        "        postgres_url: postgresql://postgres@127.0.0.1:1/postgres",
    );
    if !have("psql") {
        eprintln!("skipped: psql is not installed");
        return;
    }
    std::fs::write(
        ws.path("b/app.sql"),
        "--\n-- PostgreSQL database dump\n--\n\nCREATE TABLE public.t (a integer);\n\n--\n-- PostgreSQL database dump complete\n--\n",
    )
    .unwrap();
    settle(&ws);
    let (_, doc, _) = test_restore(&ws);
    let r = result(&doc, "app.sql");
    assert_eq!(r["result"], "skipped", "{r:#}");
    let d = detail(&doc, "app.sql");
    assert!(d.contains("Connection refused"), "{d}");
    assert!(
        d.contains("Is the server running"),
        "libpq's hint is kept: {d}"
    );
    assert_clean(&d);
}

#[test]
fn encrypted_backups_without_a_key_are_named_by_what_they_hold() {
    let ws = workspace(5, "");
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
    // Content says age; the name promises nothing: the encryption alone.
    ws.write_file(
        "b/blob.bin",
        b"age-encryption.org/v1\n-> X25519 abc\nxyz\n--- abc\n",
        Utc::now() - Duration::days(3),
    );
    let (_, doc, _) = test_restore(&ws);
    for (path, format) in [
        ("site.tar.gz.age", "tar.gz.age"),
        ("db.sql.gz.gpg", "sql.gz.gpg"),
        ("blob.bin", "age"),
    ] {
        let r = result(&doc, path);
        assert_eq!(r["result"], "skipped", "{r:#}");
        assert_eq!(r["format"], format, "{r:#}");
    }
}

#[test]
fn a_passed_single_compressed_file_says_what_was_checked() {
    let ws = workspace(5, "");
    std::fs::write(ws.path("src/app.log"), "a line of the log\n".repeat(5000)).unwrap();
    common::sh(
        &ws,
        "gzip -c src/app.log > b/app.log.gz && zstd -q -c src/app.log -o b/app.log.zst",
    );
    settle(&ws);
    let (_, doc, _) = test_restore(&ws);
    for (path, codec) in [("app.log.gz", "gz"), ("app.log.zst", "zst")] {
        let r = result(&doc, path);
        assert_eq!(r["result"], "passed", "{r:#}");
        let d = detail(&doc, path);
        assert!(d.contains("decompressed completely"), "{path}: {d}");
        assert!(d.contains(codec), "{path}: {d}");
        assert!(d.contains("one file of 87.9 KiB"), "{path}: {d}");
    }
}
