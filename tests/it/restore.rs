//! `--test-restore` through the real binary: every format passing and corrupt, archives
//! made with the real tools, crafted malicious archives, the bomb limit, validation,
//! skipped-with-reason, content detection, sandbox cleanup, carried verdicts and real
//! PostgreSQL restores (with `BM_TEST_PG_URL`, see scripts/test-postgres).

use crate::common;

use chrono::{Duration, Utc};
use common::{Workspace, set_mtime};
use serde_json::Value;
use std::io::Write;
use std::path::Path;
use std::process::Command;

/// A location `name` over `dir`, with extra YAML under `restore:` (indented 8).
fn location(name: &str, dir: &str, restore: &str) -> String {
    format!(
        "    - name: {name}\n      path: {dir}\n      restore:\n        latest: 50\n        scratch_dir: scratch\n{restore}"
    )
}

fn workspace(locations: &[String]) -> Workspace {
    let ws = Workspace::new();
    ws.write_config(&format!(
        "backups:\n  locations:\n{}\n",
        locations.join("\n")
    ));
    std::fs::create_dir_all(ws.path("scratch")).unwrap();
    ws
}

use crate::common::sh;

/// Give every file under `dir` an mtime a day ago, so it has settled.
fn settle(ws: &Workspace, dir: &str) {
    let old = Utc::now() - Duration::days(1);
    for entry in walk(&ws.path(dir)) {
        set_mtime(&entry, old);
    }
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

/// Sample content: a small website with text and random data.
fn make_site(ws: &Workspace) {
    let site = ws.path("src/site");
    std::fs::create_dir_all(site.join("css")).unwrap();
    std::fs::write(site.join("index.html"), "<html>hello</html>\n".repeat(200)).unwrap();
    std::fs::write(site.join("css/style.css"), "body { color: red }\n").unwrap();
    let random: Vec<u8> = (0..200_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    std::fs::write(site.join("data.bin"), random).unwrap();
}

fn test_restore(ws: &Workspace) -> (i32, Value) {
    let (run, doc) = ws.run_json(&["--test-restore"]);
    (run.code, doc)
}

use common::{problem_kinds_of as kinds_of, restore_result as result};

fn assert_result(doc: &Value, path: &str, verdict: &str, format: &str) {
    let r = result(doc, path);
    assert_eq!(r["result"], verdict, "{path}: {r:#}");
    assert_eq!(r["format"], format, "{path}: {r:#}");
}

fn assert_failed(doc: &Value, path: &str, kind: &str) {
    let r = result(doc, path);
    assert_eq!(r["result"], "failed", "{path}: {r:#}");
    assert_eq!(kinds_of(doc, path), vec![kind.to_string()], "{path}: {r:#}");
}

/// Every sandbox is gone after a run.
fn assert_scratch_empty(ws: &Workspace) {
    let left: Vec<_> = std::fs::read_dir(ws.path("scratch")).unwrap().collect();
    assert!(left.is_empty(), "sandboxes left behind: {left:?}");
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(data).unwrap();
    gz.finish().unwrap()
}

fn truncate(ws: &Workspace, rel: &str, keep_fraction: f64) {
    let p = ws.path(rel);
    let bytes = std::fs::read(&p).unwrap();
    let keep = (bytes.len() as f64 * keep_fraction) as usize;
    std::fs::write(&p, &bytes[..keep]).unwrap();
}

/// Flip one byte of the first occurrence of `needle` in the file.
fn flip(ws: &Workspace, rel: &str, needle: &[u8]) {
    let p = ws.path(rel);
    let mut bytes = std::fs::read(&p).unwrap();
    let at = bytes
        .windows(needle.len())
        .position(|w| w == needle)
        .unwrap_or_else(|| panic!("{needle:?} not in {rel}"));
    bytes[at] ^= 0x20;
    std::fs::write(&p, bytes).unwrap();
}

const PG_DUMP: &str = "--\n-- PostgreSQL database dump\n--\n\nCREATE TABLE public.users (id integer);\n\nCOPY public.users (id) FROM stdin;\n1\n\\.\n\n--\n-- PostgreSQL database dump complete\n--\n\n";
const MYSQL_DUMP: &str = "-- MySQL dump 10.13  Distrib 8.0.36\n--\nCREATE TABLE `users` (\n  `id` int\n);\nINSERT INTO `users` VALUES (1);\n-- Dump completed on 2026-11-21  2:00:01\n";
const SQLITE_DUMP: &str = "PRAGMA foreign_keys=OFF;\nBEGIN TRANSACTION;\nCREATE TABLE users(id INTEGER PRIMARY KEY, name TEXT);\nINSERT INTO users VALUES(1,'a;\nb');\nCREATE TABLE orders(id INTEGER, user_id INTEGER);\nINSERT INTO orders VALUES(1,1);\nCOMMIT;\n";

fn make_sqlite(path: &Path) {
    let conn = rusqlite::Connection::open(path).unwrap();
    conn.execute_batch(
        "CREATE TABLE users(id INTEGER PRIMARY KEY, name TEXT);
         CREATE TABLE orders(id INTEGER PRIMARY KEY, user_id INTEGER, note TEXT);
         WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 3000)
         INSERT INTO orders SELECT i, i % 7, printf('%0200d', i) FROM n;
         INSERT INTO users VALUES (1, 'alice');",
    )
    .unwrap();
}

#[test]
fn archives_made_by_real_tools_pass() {
    let expect = "        expect: [\"index.html\", \"site/css/*.css\"]\n        min_files: 3\n";
    let ws = workspace(&[location("site", "backups", expect)]);
    make_site(&ws);
    std::fs::create_dir_all(ws.path("backups")).unwrap();
    sh(
        &ws,
        "tar -cf backups/site.tar -C src site \
         && tar -czf backups/site.tar.gz -C src site \
         && tar -cf - -C src site | zstd -q -o backups/site.tar.zst \
         && tar -cjf backups/site.tar.bz2 -C src site \
         && tar -cJf backups/site.tar.xz -C src site \
         && tar -czf backups/site.tgz -C src site \
         && (cd src && zip -qr ../backups/site.zip site && zip -0 -qr ../backups/stored.zip site) \
         && tar -czf backups/misnamed.zip -C src site",
    );
    settle(&ws, "backups");
    let (code, doc) = test_restore(&ws);
    assert_eq!(code, 0, "{doc:#}");
    for (path, format) in [
        ("site.tar", "tar"),
        ("site.tar.gz", "tar.gz"),
        ("site.tgz", "tar.gz"),
        ("site.tar.zst", "tar.zst"),
        ("site.tar.bz2", "tar.bz2"),
        ("site.tar.xz", "tar.xz"),
        ("site.zip", "zip"),
        ("stored.zip", "zip"),
        // Content wins over a misleading extension.
        ("misnamed.zip", "tar.gz"),
    ] {
        assert_result(&doc, path, "passed", format);
        let r = result(&doc, path);
        assert_eq!(r["files"], 3, "{path}: {r:#}");
        let expected_bytes = 19 * 200 + 20 + 200_000;
        assert_eq!(r["bytes"], expected_bytes, "{path}: {r:#}");
    }
    let rt = &doc["restore_tests"];
    assert_eq!(
        (rt["tested"].as_u64(), rt["passed"].as_u64()),
        (Some(9), Some(9))
    );
    assert_scratch_empty(&ws);
    // Every test is recorded in the store.
    let rows: i64 =
        ws.store_value("SELECT COUNT(*) FROM restore_tests WHERE result = 'passed' AND files = 3");
    assert_eq!(rows, 9);
}

#[test]
fn single_files_databases_and_dumps_pass() {
    let ws = workspace(&[
        location("files", "files", ""),
        location("db", "db", "        expect: [\"users\"]\n"),
    ]);
    make_site(&ws);
    std::fs::create_dir_all(ws.path("files")).unwrap();
    std::fs::create_dir_all(ws.path("db")).unwrap();
    sh(
        &ws,
        "gzip -c src/site/index.html > files/page.html.gz \
         && zstd -q -c src/site/index.html > files/page.html.zst \
         && bzip2 -c src/site/index.html > files/page.html.bz2 \
         && xz -c src/site/index.html > files/page.html.xz \
         && (gzip -c src/site/index.html; gzip -c src/site/css/style.css) > files/two-members.gz \
         && cat src/site/data.bin | zip -q files/zip64.zip -",
    );
    make_sqlite(&ws.path("db/app.sqlite"));
    std::fs::write(ws.path("db/pg.sql"), PG_DUMP).unwrap();
    std::fs::write(ws.path("db/pg.sql.gz"), gzip(PG_DUMP.as_bytes())).unwrap();
    std::fs::write(ws.path("db/my.sql"), MYSQL_DUMP).unwrap();
    std::fs::write(ws.path("db/lite.sql.gz"), gzip(SQLITE_DUMP.as_bytes())).unwrap();
    // A database named like an archive is tested as the database it is.
    make_sqlite(&ws.path("db/app.tar"));
    settle(&ws, "files");
    settle(&ws, "db");
    let (code, doc) = test_restore(&ws);
    assert_eq!(code, 0, "{doc:#}");
    for (path, format) in [
        ("page.html.gz", "gz"),
        ("page.html.zst", "zst"),
        ("page.html.bz2", "bz2"),
        ("page.html.xz", "xz"),
        ("zip64.zip", "zip"),
    ] {
        assert_result(&doc, path, "passed", format);
        assert_eq!(result(&doc, path)["files"], 1);
    }
    assert_eq!(result(&doc, "page.html.gz")["bytes"], 3800);
    assert_eq!(
        result(&doc, "two-members.gz")["bytes"],
        3800 + 20,
        "every gzip member is read"
    );
    assert_eq!(result(&doc, "zip64.zip")["bytes"], 200_000);
    for (path, format, tables) in [
        ("app.sqlite", "sqlite", 2),
        ("app.tar", "sqlite", 2),
        ("pg.sql", "sql", 1),
        ("pg.sql.gz", "sql.gz", 1),
        ("my.sql", "sql", 1),
        ("lite.sql.gz", "sql.gz", 2),
    ] {
        assert_result(&doc, path, "passed", format);
        assert_eq!(result(&doc, path)["files"], tables, "{path}");
    }
    let detail = result(&doc, "lite.sql.gz")["detail"].as_str().unwrap();
    assert!(detail.contains("replayed"), "{detail}");
    assert_scratch_empty(&ws);
}

#[test]
fn corrupt_backups_fail_with_the_right_kind() {
    let ws = workspace(&[location("bad", "backups", "")]);
    make_site(&ws);
    std::fs::create_dir_all(ws.path("backups")).unwrap();
    sh(
        &ws,
        "tar -czf backups/cut.tar.gz -C src site \
         && tar -czf backups/flipped.tar.gz -C src site \
         && tar -cf backups/cut.tar -C src site \
         && tar -cf - -C src site | zstd -q -o backups/cut.tar.zst \
         && tar -cjf backups/cut.tar.bz2 -C src site \
         && tar -cJf backups/cut.tar.xz -C src site \
         && (cd src && zip -0 -qr ../backups/badcrc.zip site && zip -qr ../backups/cut.zip site) \
         && gzip -c src/site/data.bin > backups/cut.bin.gz \
         && gzip -c src/site/index.html > backups/notatar.tar.gz",
    );
    truncate(&ws, "backups/cut.tar.gz", 0.5);
    let gz = std::fs::read(ws.path("backups/flipped.tar.gz")).unwrap();
    let mid = gz.len() / 2;
    let mut flipped = gz.clone();
    flipped[mid] ^= 0xff;
    flipped[mid + 1] ^= 0xff;
    std::fs::write(ws.path("backups/flipped.tar.gz"), flipped).unwrap();
    truncate(&ws, "backups/cut.tar", 0.5);
    truncate(&ws, "backups/cut.tar.zst", 0.5);
    truncate(&ws, "backups/cut.tar.bz2", 0.5);
    truncate(&ws, "backups/cut.tar.xz", 0.5);
    truncate(&ws, "backups/cut.zip", 0.5);
    truncate(&ws, "backups/cut.bin.gz", 0.5);
    flip(&ws, "backups/badcrc.zip", b"body { color");
    // Dumps without their footer, a replay error, damaged SQLite files.
    let cut_pg = &PG_DUMP[..PG_DUMP
        .find("-- PostgreSQL database dump complete")
        .unwrap()];
    std::fs::write(ws.path("backups/cut-pg.sql.gz"), gzip(cut_pg.as_bytes())).unwrap();
    let cut_my = &MYSQL_DUMP[..MYSQL_DUMP.find("-- Dump completed").unwrap()];
    std::fs::write(ws.path("backups/cut-my.sql"), cut_my).unwrap();
    let cut_lite = SQLITE_DUMP.replace("COMMIT;\n", "");
    std::fs::write(ws.path("backups/cut-lite.sql"), cut_lite).unwrap();
    let bad_lite = SQLITE_DUMP.replace("INSERT INTO orders", "INSERT INTO nowhere");
    std::fs::write(ws.path("backups/bad-lite.sql"), bad_lite).unwrap();
    make_sqlite(&ws.path("backups/garbled.sqlite"));
    let mut db = std::fs::read(ws.path("backups/garbled.sqlite")).unwrap();
    for b in &mut db[4096 * 2..4096 * 4] {
        *b = 0x5a;
    }
    std::fs::write(ws.path("backups/garbled.sqlite"), db).unwrap();
    let mut not_db = b"SQLite format 3\0".to_vec();
    not_db.extend(std::iter::repeat_n(0xffu8, 4096));
    std::fs::write(ws.path("backups/notadb.sqlite"), not_db).unwrap();
    settle(&ws, "backups");

    let (code, doc) = test_restore(&ws);
    assert_eq!(code, 2, "{doc:#}");
    for path in [
        "cut.tar.gz",
        "flipped.tar.gz",
        "cut.tar",
        "cut.tar.zst",
        "cut.tar.bz2",
        "cut.tar.xz",
        "badcrc.zip",
        "cut.zip",
        "cut.bin.gz",
        "notatar.tar.gz",
        "notadb.sqlite",
    ] {
        assert_failed(&doc, path, "archive_corrupt");
    }
    assert!(
        result(&doc, "badcrc.zip")["detail"]
            .as_str()
            .unwrap()
            .contains("checksum"),
        "{doc:#}"
    );
    for path in ["cut-pg.sql.gz", "cut-my.sql", "cut-lite.sql"] {
        assert_failed(&doc, path, "dump_incomplete");
    }
    for path in ["bad-lite.sql", "garbled.sqlite"] {
        assert_failed(&doc, path, "restore_failed");
    }
    assert_eq!(doc["restore_tests"]["failed"], 16);
    assert_scratch_empty(&ws);
}

/// A tar entry with raw name/link bytes (the tar crate's own setters refuse bad names).
fn raw_entry(kind: tar::EntryType, name: &str, link: &str, data: &[u8]) -> (tar::Header, Vec<u8>) {
    let mut h = tar::Header::new_gnu();
    {
        let old = h.as_old_mut();
        old.name[..name.len()].copy_from_slice(name.as_bytes());
        old.linkname[..link.len()].copy_from_slice(link.as_bytes());
    }
    h.set_entry_type(kind);
    h.set_size(data.len() as u64);
    h.set_mode(0o4755);
    h.set_cksum();
    (h, data.to_vec())
}

fn craft_tar(path: &Path, entries: &[(tar::Header, Vec<u8>)]) {
    let mut b = tar::Builder::new(std::fs::File::create(path).unwrap());
    for (h, data) in entries {
        b.append(h, &data[..]).unwrap();
    }
    b.finish().unwrap();
}

#[test]
fn unsafe_entries_are_refused_and_nothing_escapes() {
    let ws = workspace(&[location("evil", "backups", "")]);
    std::fs::create_dir_all(ws.path("backups")).unwrap();
    std::fs::create_dir_all(ws.path("outside")).unwrap();
    std::fs::write(ws.path("outside/target.txt"), "original").unwrap();
    let outside = ws.path("outside");
    let target = ws.path("outside/target.txt");
    let outside_s = outside.to_str().unwrap();
    let target_s = target.to_str().unwrap();
    use tar::EntryType::{Link, Regular, Symlink};
    let ok = raw_entry(Regular, "fine.txt", "", b"fine");
    let abs_name = format!("{outside_s}/abs.txt");
    craft_tar(
        &ws.path("backups/absolute.tar"),
        &[ok.clone(), raw_entry(Regular, &abs_name, "", b"pwned")],
    );
    craft_tar(
        &ws.path("backups/dotdot.tar"),
        &[
            ok.clone(),
            raw_entry(Regular, "a/../../../escaped.txt", "", b"pwned"),
        ],
    );
    craft_tar(
        &ws.path("backups/symlink.tar"),
        &[
            ok.clone(),
            raw_entry(Symlink, "evil", outside_s, b""),
            raw_entry(Regular, "evil/pwned.txt", "", b"pwned"),
        ],
    );
    craft_tar(
        &ws.path("backups/relsymlink.tar"),
        &[
            ok.clone(),
            raw_entry(Symlink, "up", "../../outside", b""),
            raw_entry(Regular, "up/pwned.txt", "", b"pwned"),
        ],
    );
    craft_tar(
        &ws.path("backups/hardlink.tar"),
        &[
            ok.clone(),
            raw_entry(Link, "h", target_s, b""),
            raw_entry(Regular, "h", "", b"pwned"),
        ],
    );
    // The same escape inside a zip.
    let zip_path = ws.path("backups/dotdot.zip");
    sh(&ws, "mkdir -p z/a && echo pwned > z/escaped.txt");
    sh(
        &ws,
        "cd z/a && zip -q ../../backups/dotdot.zip ../escaped.txt",
    );
    assert!(zip_path.exists());
    settle(&ws, "backups");

    let (code, doc) = test_restore(&ws);
    assert_eq!(code, 2, "{doc:#}");
    for path in [
        "absolute.tar",
        "dotdot.tar",
        "symlink.tar",
        "relsymlink.tar",
        "hardlink.tar",
        "dotdot.zip",
    ] {
        assert_failed(&doc, path, "unsafe_archive_entry");
    }
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "original");
    let mut outside_files: Vec<_> = walk(&outside);
    outside_files.sort();
    assert_eq!(outside_files, vec![target.clone()], "nothing new outside");
    for escaped in ["escaped.txt", "scratch/escaped.txt", "outside/pwned.txt"] {
        assert!(!ws.path(escaped).exists(), "{escaped} was written");
    }
    assert_scratch_empty(&ws);
}

#[test]
fn links_inside_and_setuid_bits_are_harmless() {
    let ws = workspace(&[location("ok", "backups", "        min_files: 2\n")]);
    std::fs::create_dir_all(ws.path("backups")).unwrap();
    use tar::EntryType::{Char, Link, Regular, Symlink};
    craft_tar(
        &ws.path("backups/links.tar"),
        &[
            raw_entry(Regular, "dir/file.txt", "", b"data"),
            raw_entry(Symlink, "dir/alias", "file.txt", b""),
            raw_entry(Link, "hard.txt", "dir/file.txt", b""),
            raw_entry(Char, "dev/null", "", b""),
        ],
    );
    settle(&ws, "backups");
    let (code, doc) = test_restore(&ws);
    assert_eq!(code, 0, "{doc:#}");
    let r = result(&doc, "links.tar");
    assert_eq!(r["result"], "passed");
    assert_eq!(
        r["files"], 2,
        "a file and its hard link; the device is skipped"
    );
    assert!(r["detail"].as_str().unwrap().contains("device"), "{r:#}");
}

#[test]
fn decompression_bombs_stop_at_the_limit() {
    let ws = workspace(&[location("bomb", "backups", "        max_bytes: 4MiB\n")]);
    std::fs::create_dir_all(ws.path("backups")).unwrap();
    sh(
        &ws,
        "head -c 300000000 /dev/zero | gzip -1 > backups/zeros.gz \
         && mkdir -p big && head -c 300000000 /dev/zero > big/zeros && tar -cf - big | zstd -q -1 -o backups/zeros.tar.zst \
         && rm -r big",
    );
    settle(&ws, "backups");
    let started = std::time::Instant::now();
    let (code, doc) = test_restore(&ws);
    assert_eq!(code, 2, "{doc:#}");
    for path in ["zeros.gz", "zeros.tar.zst"] {
        assert_failed(&doc, path, "restore_limit_exceeded");
        let bytes = result(&doc, path)["bytes"].as_u64().unwrap();
        assert!(bytes <= 4 << 20, "{path}: {bytes} bytes restored");
    }
    assert!(
        started.elapsed() < std::time::Duration::from_secs(60),
        "the limit stops the stream early"
    );
    assert_scratch_empty(&ws);
}

#[test]
fn expect_and_min_files_are_validated() {
    let ws = workspace(&[
        location(
            "expect",
            "a",
            "        expect: [\"index.html\", \"missing.conf\"]\n",
        ),
        location("count", "b", "        min_files: 10\n"),
    ]);
    make_site(&ws);
    std::fs::create_dir_all(ws.path("a")).unwrap();
    std::fs::create_dir_all(ws.path("b")).unwrap();
    sh(
        &ws,
        "tar -czf a/site.tar.gz -C src site && tar -czf b/site.tar.gz -C src site",
    );
    settle(&ws, "a");
    settle(&ws, "b");
    let (code, doc) = test_restore(&ws);
    assert_eq!(code, 2, "{doc:#}");
    let problems = doc["problems"].as_array().unwrap();
    assert_eq!(problems.len(), 2, "{doc:#}");
    for p in problems {
        assert_eq!(p["kind"], "restore_failed");
        assert_eq!(p["path"], "site.tar.gz");
    }
    let details: Vec<&str> = doc["restore_tests"]["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["detail"].as_str().unwrap())
        .collect();
    assert!(
        details
            .iter()
            .any(|d| d.contains("missing.conf") && !d.contains("index.html")),
        "{details:?}"
    );
    assert!(
        details.iter().any(|d| d.contains("min_files 10")),
        "{details:?}"
    );
}

#[test]
fn what_cannot_be_tested_is_skipped_with_the_reason() {
    let ws = workspace(&[location("misc", "backups", "")]).env("PATH", "/nonexistent");
    std::fs::create_dir_all(ws.path("backups")).unwrap();
    let mut pgdmp = b"PGDMP\x01\x0e\x00\x04\x08\x01\x01".to_vec();
    pgdmp.extend([0u8; 200]);
    std::fs::write(ws.path("backups/db.dump"), pgdmp).unwrap();
    std::fs::write(
        ws.path("backups/blob.bin"),
        [0x00u8, 0x01, 0x02, 0xff].repeat(300),
    )
    .unwrap();
    std::fs::write(ws.path("backups/adhoc.sql"), "select 1;\n").unwrap();
    settle(&ws, "backups");
    let (code, doc) = test_restore(&ws);
    // A skip is no problem of its backup; a location whose every test was skipped is
    // untested (a warning).
    assert_eq!(code, 1, "{doc:#}");
    let kinds: Vec<&str> = doc["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["restore_untested"], "{doc:#}");
    assert_eq!(doc["restore_tests"]["skipped"], 3);
    assert_eq!(doc["restore_tests"]["tested"], 3);
    let reason = |p: &str| result(&doc, p)["detail"].as_str().unwrap().to_string();
    assert_result(&doc, "db.dump", "skipped", "pg_dump");
    assert!(reason("db.dump").contains("pg_restore is not installed"));
    assert_result(&doc, "blob.bin", "skipped", "unknown");
    assert!(reason("blob.bin").contains("unrecognised"));
    assert!(reason("adhoc.sql").contains("unknown dump tool"));
    // Skipped tests are not counted in the health score's restore rate.
    let judged: i64 =
        ws.store_value("SELECT COUNT(*) FROM restore_tests WHERE result != 'skipped'");
    assert_eq!(judged, 0);
}

#[test]
fn leftover_sandbox_of_a_killed_run_is_removed() {
    let ws = workspace(&[location("site", "backups", "")]);
    make_site(&ws);
    std::fs::create_dir_all(ws.path("backups")).unwrap();
    sh(&ws, "tar -czf backups/site.tar.gz -C src site");
    settle(&ws, "backups");
    let mut child = Command::new("true").spawn().unwrap();
    let dead = child.id();
    child.wait().unwrap();
    let leftover = ws.path(&format!("scratch/backup-monitor-restore-{dead}-x1y2"));
    std::fs::create_dir_all(leftover.join("site/deep")).unwrap();
    std::fs::write(leftover.join("site/deep/file"), "left").unwrap();
    let unrelated = ws.path("scratch/keep-me");
    std::fs::write(&unrelated, "mine").unwrap();
    let (code, doc) = test_restore(&ws);
    assert_eq!(code, 0, "{doc:#}");
    assert!(!leftover.exists(), "the killed run's sandbox is cleaned");
    assert!(
        unrelated.exists(),
        "other files in scratch_dir are untouched"
    );
}

#[test]
fn unchanged_backups_keep_their_verdict_and_problems() {
    let ws = workspace(&[location("site", "backups", "")]);
    make_site(&ws);
    std::fs::create_dir_all(ws.path("backups")).unwrap();
    sh(
        &ws,
        "tar -czf backups/good.tar.gz -C src site && tar -czf backups/bad.tar.gz -C src site",
    );
    truncate(&ws, "backups/bad.tar.gz", 0.5);
    settle(&ws, "backups");
    let (code, first) = test_restore(&ws);
    assert_eq!(code, 2);
    assert!(
        result(&first, "good.tar.gz")["detail"]
            .as_str()
            .unwrap()
            .contains("restored")
    );

    let (code, second) = test_restore(&ws);
    assert_eq!(code, 2, "the problem stays open: {second:#}");
    assert_eq!(kinds_of(&second, "bad.tar.gz"), vec!["archive_corrupt"]);
    for path in ["good.tar.gz", "bad.tar.gz"] {
        let detail = result(&second, path)["detail"].as_str().unwrap();
        assert!(detail.contains("unchanged since the test at"), "{detail}");
    }
    assert_eq!(result(&second, "good.tar.gz")["result"], "passed");
    assert_eq!(result(&second, "good.tar.gz")["files"], 3);
    assert_eq!(second["restore_tests"]["failed"], 1);
    let carried: i64 =
        ws.store_value("SELECT COUNT(*) FROM restore_tests WHERE carried_from IS NOT NULL");
    assert_eq!(carried, 2);

    // A repaired backup (new content, new mtime) is tested again and its problem closes.
    sh(&ws, "tar -czf backups/bad.tar.gz -C src site");
    settle(&ws, "backups");
    set_mtime(
        &ws.path("backups/bad.tar.gz"),
        Utc::now() - Duration::hours(2),
    );
    let (code, third) = test_restore(&ws);
    assert_eq!(code, 0, "{third:#}");
    let detail = result(&third, "bad.tar.gz")["detail"].as_str().unwrap();
    assert!(!detail.contains("unchanged"), "{detail}");
}

#[test]
fn disabled_locations_are_not_tested() {
    let ws = workspace(&[format!(
        "{}      test_restore: false\n",
        location("off", "backups", "")
    )]);
    std::fs::create_dir_all(ws.path("backups")).unwrap();
    std::fs::write(ws.path("backups/cut.tar.gz"), b"\x1f\x8b\x08\x00garbage").unwrap();
    settle(&ws, "backups");
    let (code, doc) = test_restore(&ws);
    assert_eq!(code, 0, "{doc:#}");
    assert_eq!(doc["restore_tests"]["tested"], 0);
}

/// The throwaway PostgreSQL of scripts/test-postgres, or None (skip) outside CI. The
/// guard runs the PostgreSQL tests one at a time: they look at the server's databases.
pub(crate) fn postgres() -> Option<(String, String, std::sync::MutexGuard<'static, ()>)> {
    static SERVER: std::sync::Mutex<()> = std::sync::Mutex::new(());
    match std::env::var("BM_TEST_PG_URL") {
        Ok(url) if !url.is_empty() => {
            let bin = std::env::var("BM_TEST_PG_BIN")
                .unwrap_or_else(|_| "/usr/lib/postgresql/15/bin".into());
            let guard = SERVER.lock().unwrap_or_else(|e| e.into_inner());
            Some((url, bin, guard))
        }
        _ => {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "BM_TEST_PG_URL is not set in CI: run `eval \"$(scripts/test-postgres start)\"` first"
            );
            eprintln!(
                "skipping: BM_TEST_PG_URL is not set (eval \"$(scripts/test-postgres start)\" to run the PostgreSQL restore tests)"
            );
            None
        }
    }
}

/// `url` with its database replaced by `db`.
pub(crate) fn db_url(url: &str, db: &str) -> String {
    url.rsplit_once('/')
        .map(|(base, _)| format!("{base}/{db}"))
        .unwrap()
}

pub(crate) fn psql(bin: &str, url: &str, sql: &str) -> String {
    let out = Command::new(format!("{bin}/psql"))
        .args([
            "-X",
            "-q",
            "-A",
            "-t",
            "-v",
            "ON_ERROR_STOP=1",
            "-d",
            url,
            "-c",
            sql,
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "psql: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// A source database with two tables, dumped custom and plain into `dir`.
fn pg_dumps(ws: &Workspace, url: &str, bin: &str, dir: &str) {
    static SOURCES: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = SOURCES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let src = format!("bm_src_{}_{n}", std::process::id());
    psql(bin, url, &format!("DROP DATABASE IF EXISTS {src}"));
    psql(bin, url, &format!("CREATE DATABASE {src}"));
    let src_url = db_url(url, &src);
    psql(
        bin,
        &src_url,
        "CREATE TABLE users (id int PRIMARY KEY, name text);
         CREATE TABLE orders (id int PRIMARY KEY, user_id int REFERENCES users(id), note text);
         INSERT INTO users SELECT i, 'user ' || i FROM generate_series(1, 500) i;
         INSERT INTO orders SELECT i, 1 + i % 500, repeat('x', 100) FROM generate_series(1, 5000) i;",
    );
    std::fs::create_dir_all(ws.path(dir)).unwrap();
    sh(
        ws,
        &format!(
            "{bin}/pg_dump -Fc -d '{src_url}' -f {dir}/app.dump \
             && {bin}/pg_dump -d '{src_url}' -f {dir}/app.sql \
             && gzip -c {dir}/app.sql > {dir}/app.sql.gz"
        ),
    );
    psql(bin, url, &format!("DROP DATABASE {src}"));
}

fn with_pg_path(ws: Workspace, bin: &str) -> Workspace {
    let path = format!("{bin}:{}", std::env::var("PATH").unwrap_or_default());
    ws.env("PATH", &path)
}

#[test]
fn postgres_dumps_restore_for_real() {
    let Some((url, bin, _one_at_a_time)) = postgres() else {
        return;
    };
    let restore = format!("        expect: [\"users\", \"orders\"]\n        postgres_url: {url}\n");
    let ws = with_pg_path(workspace(&[location("pg", "pg", &restore)]), &bin);
    pg_dumps(&ws, &url, &bin, "pg");
    // A broken plain dump: replay stops at the error.
    let plain = std::fs::read_to_string(ws.path("pg/app.sql")).unwrap();
    let broken = plain.replacen(
        "CREATE TABLE public.orders",
        "CREATE TABLE public.orders (oops",
        1,
    );
    std::fs::write(ws.path("pg/broken.sql"), broken).unwrap();
    // A truncated custom dump: its TOC is intact, its data is not.
    let custom = std::fs::read(ws.path("pg/app.dump")).unwrap();
    std::fs::write(ws.path("pg/cut.dump"), &custom[..custom.len() * 2 / 3]).unwrap();
    settle(&ws, "pg");

    let (code, doc) = test_restore(&ws);
    assert_eq!(code, 2, "{doc:#}");
    for (path, format) in [
        ("app.dump", "pg_dump"),
        ("app.sql", "sql"),
        ("app.sql.gz", "sql.gz"),
    ] {
        assert_result(&doc, path, "passed", format);
        assert_eq!(result(&doc, path)["files"], 2, "{path}");
        let detail = result(&doc, path)["detail"].as_str().unwrap();
        assert!(detail.contains("scratch database"), "{detail}");
    }
    assert_failed(&doc, "broken.sql", "restore_failed");
    assert_failed(&doc, "cut.dump", "archive_corrupt");
    let left = psql(
        &bin,
        &url,
        "SELECT count(*) FROM pg_database WHERE datname LIKE 'bm_restore_%'",
    );
    assert_eq!(left, "0", "scratch databases are dropped");
    assert_scratch_empty(&ws);
}

#[test]
fn plain_dumps_cannot_replace_real_databases_or_run_commands_on_this_host() {
    let Some((url, bin, _one_at_a_time)) = postgres() else {
        return;
    };
    let restore = format!("        postgres_url: {url}\n");
    let ws = with_pg_path(workspace(&[location("pg", "pg", &restore)]), &bin);
    // A real database dumped with --create --clean: replayed as is, its DROP DATABASE,
    // CREATE DATABASE and \connect would replace the real database of that name.
    let prod = format!("bm_prod_{}", std::process::id());
    psql(&bin, &url, &format!("DROP DATABASE IF EXISTS {prod}"));
    psql(&bin, &url, &format!("CREATE DATABASE {prod}"));
    let prod_url = db_url(&url, &prod);
    psql(
        &bin,
        &prod_url,
        "CREATE TABLE accounts (id int PRIMARY KEY)",
    );
    std::fs::create_dir_all(ws.path("pg")).unwrap();
    sh(
        &ws,
        &format!("{bin}/pg_dump --create --clean -d '{prod_url}' -f pg/create.sql"),
    );
    psql(&bin, &prod_url, "CREATE TABLE canary (x text)");
    let oid = |bin: &str| {
        psql(
            bin,
            &url,
            &format!("SELECT oid FROM pg_database WHERE datname = '{prod}'"),
        )
    };
    let before = oid(&bin);
    // A hostile dump: psql meta-commands that would run a shell command and write a file
    // on the monitoring host.
    let pwned = ws.path("PWNED");
    let written = ws.path("WRITTEN");
    std::fs::write(
        ws.path("pg/shell.sql"),
        format!(
            "--\n-- PostgreSQL database dump\n--\nSET statement_timeout = 0;\n\\! touch {}\n\\o {}\nCREATE TABLE public.t (a integer);\nSELECT 1;\n--\n-- PostgreSQL database dump complete\n--\n",
            pwned.display(),
            written.display()
        ),
    )
    .unwrap();
    settle(&ws, "pg");
    let (_, doc) = test_restore(&ws);
    assert_result(&doc, "create.sql", "passed", "sql");
    assert_eq!(result(&doc, "create.sql")["files"], 1, "{doc:#}");
    assert_eq!(
        oid(&bin),
        before,
        "the real database was not dropped and recreated"
    );
    assert_eq!(
        psql(&bin, &prod_url, "SELECT count(*) FROM canary"),
        "0",
        "its tables are untouched"
    );
    assert_failed(&doc, "shell.sql", "restore_failed");
    let detail = result(&doc, "shell.sql")["detail"].as_str().unwrap();
    assert!(detail.contains("restricted"), "{detail}");
    assert!(!pwned.exists(), "\\! ran a shell command on this host");
    assert!(!written.exists(), "\\o wrote a file on this host");
    let left = psql(
        &bin,
        &url,
        "SELECT count(*) FROM pg_database WHERE datname LIKE 'bm_restore_%'",
    );
    assert_eq!(left, "0", "scratch databases are dropped");
    psql(&bin, &url, &format!("DROP DATABASE {prod}"));
}

#[test]
fn a_directory_format_dump_is_skipped_not_called_corrupt() {
    let Some((url, bin, _one_at_a_time)) = postgres() else {
        return;
    };
    let recursive = "    - name: pg\n      path: pg\n      recursive: true\n      restore:\n        latest: 50\n        scratch_dir: scratch\n".to_string();
    let ws = with_pg_path(workspace(&[recursive]), &bin);
    std::fs::create_dir_all(ws.path("pg")).unwrap();
    psql(&bin, &url, "CREATE TABLE IF NOT EXISTS bm_fd_probe (a int)");
    sh(&ws, &format!("{bin}/pg_dump -Fd -d '{url}' -f pg/dirdump"));
    psql(&bin, &url, "DROP TABLE bm_fd_probe");
    settle(&ws, "pg");
    let (_, doc) = test_restore(&ws);
    let toc = result(&doc, "dirdump/toc.dat");
    assert_eq!(toc["result"], "skipped", "{doc:#}");
    assert!(
        toc["detail"].as_str().unwrap().contains("directory dump"),
        "{toc:#}"
    );
    assert!(kinds_of(&doc, "dirdump/toc.dat").is_empty(), "{doc:#}");
}

#[test]
fn scratch_databases_of_killed_runs_on_this_host_are_dropped_by_the_next_run() {
    let Some((url, bin, _one_at_a_time)) = postgres() else {
        return;
    };
    let host = hostname::get().unwrap().to_string_lossy().into_owned();
    let hash = host.bytes().fold(0x811c_9dc5_u32, |h, b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    });
    // A pid that is surely gone: a child that has exited.
    let mut child = Command::new("true").spawn().unwrap();
    let dead = child.id();
    child.wait().unwrap();
    let ours = format!("bm_restore_{hash:08x}_{dead}_0");
    let other_host = format!("bm_restore_{:08x}_{dead}_0", hash ^ 1);
    for db in [&ours, &other_host] {
        psql(&bin, &url, &format!("DROP DATABASE IF EXISTS {db}"));
        psql(&bin, &url, &format!("CREATE DATABASE {db}"));
    }
    let restore = format!("        postgres_url: {url}\n");
    let ws = with_pg_path(workspace(&[location("pg", "pg", &restore)]), &bin);
    pg_dumps(&ws, &url, &bin, "pg");
    settle(&ws, "pg");
    let (_, doc) = test_restore(&ws);
    assert_result(&doc, "app.sql", "passed", "sql");
    let exists = |db: &str| {
        psql(
            &bin,
            &url,
            &format!("SELECT count(*) FROM pg_database WHERE datname = '{db}'"),
        )
    };
    assert_eq!(exists(&ours), "0", "this host's leftover is dropped");
    assert_eq!(
        exists(&other_host),
        "1",
        "another host's scratch database is not ours"
    );
    psql(&bin, &url, &format!("DROP DATABASE {other_host}"));
}

#[test]
fn postgres_custom_dump_without_server_reads_toc_and_data() {
    let Some((url, bin, _one_at_a_time)) = postgres() else {
        return;
    };
    let ws = with_pg_path(
        workspace(&[location("pg", "pg", "        expect: [\"orders\"]\n")]),
        &bin,
    );
    pg_dumps(&ws, &url, &bin, "pg");
    let custom = std::fs::read(ws.path("pg/app.dump")).unwrap();
    std::fs::write(ws.path("pg/cut.dump"), &custom[..custom.len() * 2 / 3]).unwrap();
    settle(&ws, "pg");
    let (code, doc) = test_restore(&ws);
    assert_eq!(code, 2, "{doc:#}");
    assert_result(&doc, "app.dump", "passed", "pg_dump");
    assert_eq!(result(&doc, "app.dump")["files"], 2);
    let detail = result(&doc, "app.dump")["detail"].as_str().unwrap();
    assert!(detail.contains("pg_restore --list"), "{detail}");
    assert_result(&doc, "app.sql", "passed", "sql");
    assert_failed(&doc, "cut.dump", "archive_corrupt");
}

/// Bytes that look random (what encryption leaves), the same on every run.
fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// The detail of `path`'s result, which must contain every one of `parts`.
fn assert_detail(doc: &Value, path: &str, parts: &[&str]) -> String {
    let r = result(doc, path);
    let detail = r["detail"].as_str().unwrap_or_default();
    for part in parts {
        assert!(detail.contains(part), "{path}: {part:?} not in {r:#}");
    }
    detail.to_string()
}

#[test]
fn garbage_named_like_a_known_format_is_corrupt_not_skipped() {
    let ws = workspace(&[location("enc", "backups", "")]);
    make_site(&ws);
    std::fs::create_dir_all(ws.path("backups")).unwrap();
    sh(
        &ws,
        "tar -czf backups/zeroed.tar.gz -C src site \
         && dd if=/dev/zero of=backups/zeroed.tar.gz bs=10 count=1 conv=notrunc 2>/dev/null \
         && tar -czf - -C src site | openssl enc -aes-256-cbc -pbkdf2 -pass pass:ransom -out backups/locked.tar.gz \
         && : > backups/empty.tar.gz \
         && gzip -c src/site/index.html > backups/page.sqlite.gz \
         && (cd src && zip -qr ../site.zip site) && (printf 'self-extractor stub\\n'; cat site.zip) > backups/sfx.zip",
    );
    for (i, name) in [
        "noise.tar.gz",
        "noise.zip",
        "noise.tar",
        "noise.sql.gz",
        "noise.tgz",
    ]
    .iter()
    .enumerate()
    {
        std::fs::write(ws.path(&format!("backups/{name}")), noise(3000, i as u64)).unwrap();
    }
    make_sqlite(&ws.path("backups/zeroed.sqlite"));
    let mut db = std::fs::read(ws.path("backups/zeroed.sqlite")).unwrap();
    db[..100].fill(0);
    std::fs::write(ws.path("backups/zeroed.sqlite"), db).unwrap();
    // Names that promise nothing restore tests know stay skipped, `.db` and `.dump`
    // included: other tools use them for their own formats.
    for name in ["noise.bin", "snapshot.db", "archive.dump"] {
        std::fs::write(ws.path(&format!("backups/{name}")), noise(3000, 99)).unwrap();
    }
    settle(&ws, "backups");

    let (code, doc) = test_restore(&ws);
    assert_eq!(code, 2, "{doc:#}");
    for (path, format, parts) in [
        (
            "zeroed.tar.gz",
            "tar.gz",
            &["named .tar.gz but is not a gzip stream (its first 10 bytes are zero"][..],
        ),
        (
            "locked.tar.gz",
            "tar.gz",
            &["is not a gzip stream (it looks encrypted (openssl enc)"],
        ),
        (
            "empty.tar.gz",
            "tar.gz",
            &["named .tar.gz but is empty (0 bytes)"],
        ),
        (
            "noise.tar.gz",
            "tar.gz",
            &["named .tar.gz but is not a gzip stream"],
        ),
        (
            "noise.tgz",
            "tar.gz",
            &["named .tgz but is not a gzip stream"],
        ),
        (
            "noise.sql.gz",
            "sql.gz",
            &["named .sql.gz but is not a gzip stream"],
        ),
        (
            "noise.tar",
            "tar",
            &["named .tar but is not a tar archive ("],
        ),
        (
            "noise.zip",
            "zip",
            &[
                "named .zip but is not a zip archive",
                "not a readable zip archive",
            ],
        ),
        (
            "zeroed.sqlite",
            "sqlite",
            &["named .sqlite but is not a SQLite database (its first 100 bytes are zero)"],
        ),
        (
            "page.sqlite.gz",
            "sqlite.gz",
            &[
                "named .sqlite.gz, but the gz stream does not hold a SQLite database (it looks like a web page (HTML)",
            ],
        ),
    ] {
        assert_failed(&doc, path, "archive_corrupt");
        assert_result(&doc, path, "failed", format);
        assert_detail(&doc, path, parts);
    }
    // A zip behind other data is found by its central directory, like unzip finds it.
    assert_result(&doc, "sfx.zip", "passed", "zip");
    assert_eq!(result(&doc, "sfx.zip")["files"], 3);
    for path in ["noise.bin", "snapshot.db", "archive.dump"] {
        assert_result(&doc, path, "skipped", "unknown");
        assert_detail(&doc, path, &["unrecognised format"]);
    }
    assert_scratch_empty(&ws);
}

#[test]
fn empty_tar_archives_are_judged_by_min_files() {
    let ws = workspace(&[
        location("strict", "strict", ""),
        location("lax", "lax", "        min_files: 0\n"),
    ]);
    for dir in ["strict", "lax"] {
        std::fs::create_dir_all(ws.path(dir)).unwrap();
        sh(
            &ws,
            &format!(
                "tar -cf {dir}/empty.tar -T /dev/null && tar -czf {dir}/empty.tar.gz -T /dev/null \
                 && tar -cf - -T /dev/null | zstd -q -o {dir}/empty.tar.zst"
            ),
        );
    }
    // A real tar whose first header, or a later one, was overwritten with zeros: tar stops
    // at the zeros (GNU tar only warns "A lone zero block") and loses what follows.
    make_site(&ws);
    sh(&ws, "tar -cf whole.tar -C src site");
    let whole = std::fs::read(ws.path("whole.tar")).unwrap();
    let mut first = whole.clone();
    first[..512].fill(0);
    std::fs::write(ws.path("lax/first-zeroed.tar"), first).unwrap();
    let mut later = whole.clone();
    let last_header = tar::Archive::new(&whole[..])
        .entries()
        .unwrap()
        .map(|e| e.unwrap().raw_header_position() as usize)
        .last()
        .unwrap();
    later[last_header..last_header + 512].fill(0);
    std::fs::write(ws.path("lax/later-zeroed.tar"), later).unwrap();
    settle(&ws, "strict");
    settle(&ws, "lax");

    let (code, doc) = test_restore(&ws);
    assert_eq!(code, 2, "{doc:#}");
    let find = |loc: &str, path: &str| {
        doc["restore_tests"]["results"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["location"] == loc && r["path"] == path)
            .unwrap_or_else(|| panic!("no result for {loc}/{path}: {doc:#}"))
            .clone()
    };
    for (path, format) in [
        ("empty.tar", "tar"),
        ("empty.tar.gz", "tar.gz"),
        ("empty.tar.zst", "tar.zst"),
    ] {
        let strict = find("strict", path);
        assert_eq!(strict["result"], "failed", "{strict:#}");
        assert_eq!(strict["format"], format, "{strict:#}");
        let detail = strict["detail"].as_str().unwrap();
        assert!(detail.contains("fewer than min_files 1"), "{detail}");
        let lax = find("lax", path);
        assert_eq!(lax["result"], "passed", "{lax:#}");
        assert_eq!(lax["format"], format, "{lax:#}");
        assert_eq!(lax["files"], 0, "{lax:#}");
        let detail = lax["detail"].as_str().unwrap();
        assert!(detail.contains("an empty archive"), "{detail}");
    }
    let problems = doc["problems"].as_array().unwrap();
    let of = |loc: &str, path: &str| -> Vec<&str> {
        problems
            .iter()
            .filter(|p| p["location"] == loc && p["path"] == path)
            .map(|p| p["kind"].as_str().unwrap())
            .collect()
    };
    assert_eq!(of("strict", "empty.tar.gz"), ["restore_failed"]);
    assert!(of("lax", "empty.tar.gz").is_empty());
    for path in ["first-zeroed.tar", "later-zeroed.tar"] {
        assert_eq!(of("lax", path), ["archive_corrupt"], "{doc:#}");
        let detail = find("lax", path)["detail"].as_str().unwrap().to_string();
        assert!(
            detail.contains("data follows the end-of-archive marker"),
            "{detail}"
        );
    }
    assert_scratch_empty(&ws);
}

#[test]
fn truncated_streams_report_the_format_their_name_promises() {
    let ws = workspace(&[location("cut", "backups", "")]);
    make_site(&ws);
    std::fs::create_dir_all(ws.path("backups")).unwrap();
    sh(
        &ws,
        "tar -czf backups/cut.tar.gz -C src site \
         && tar -cf - -C src site | zstd -q -o backups/cut.tar.zst \
         && tar -cjf backups/cut.tar.bz2 -C src site \
         && tar -cJf backups/cut.tar.xz -C src site \
         && gzip -c src/site/data.bin > backups/cut.bin.gz \
         && zstd -q -c src/site/data.bin > backups/cut.bin.zst",
    );
    // Cut inside the first kilobytes: the decoder fails before the content can be seen.
    for name in [
        "cut.tar.gz",
        "cut.tar.zst",
        "cut.tar.bz2",
        "cut.tar.xz",
        "cut.bin.gz",
        "cut.bin.zst",
    ] {
        let p = ws.path(&format!("backups/{name}"));
        let bytes = std::fs::read(&p).unwrap();
        std::fs::write(&p, &bytes[..40]).unwrap();
    }
    settle(&ws, "backups");
    let (code, doc) = test_restore(&ws);
    assert_eq!(code, 2, "{doc:#}");
    for (path, format) in [
        ("cut.tar.gz", "tar.gz"),
        ("cut.tar.zst", "tar.zst"),
        ("cut.tar.bz2", "tar.bz2"),
        ("cut.tar.xz", "tar.xz"),
        ("cut.bin.gz", "gz"),
        ("cut.bin.zst", "zst"),
    ] {
        assert_failed(&doc, path, "archive_corrupt");
        assert_result(&doc, path, "failed", format);
    }
}

#[test]
fn failed_dumps_behind_gzip_are_failures_not_skips() {
    let ws = workspace(&[location("db", "backups", "")]);
    std::fs::create_dir_all(ws.path("backups")).unwrap();
    // What `pg_dump db | gzip > …` leaves when pg_dump fails: a valid gzip of nothing, or
    // of its error message when stderr went into the pipe too.
    sh(
        &ws,
        "gzip -c </dev/null > backups/db_20261121.sql.gz \
         && echo | gzip > backups/blank.sql.gz \
         && : > backups/zero.sql \
         && printf 'pg_dump: error: connection to server on socket \"/run/postgresql/.s.PGSQL.5432\" failed: No such file or directory\\n\\tIs the server running locally?\\n' | gzip > backups/error.sql.gz",
    );
    std::fs::write(ws.path("backups/noise.sql.gz"), gzip(&noise(3000, 7))).unwrap();
    let text_noise: Vec<u8> = noise(3000, 8).into_iter().map(|b| b | 1).collect();
    std::fs::write(ws.path("backups/nonul.sql.gz"), gzip(&text_noise)).unwrap();
    // An SQL script from no tool we know is still skipped, but now read to its end: a
    // truncated one is corrupt.
    std::fs::write(ws.path("backups/adhoc.sql.gz"), gzip(b"select 1;\n")).unwrap();
    let script = "INSERT INTO t VALUES (1);\n".repeat(20_000);
    let mut cut = gzip(script.as_bytes());
    cut.truncate(cut.len() / 2);
    std::fs::write(ws.path("backups/cut-adhoc.sql.gz"), cut).unwrap();
    settle(&ws, "backups");

    let (code, doc) = test_restore(&ws);
    assert_eq!(code, 2, "{doc:#}");
    for (path, kind, detail) in [
        (
            "db_20261121.sql.gz",
            "dump_incomplete",
            "the dump is empty: the dump tool produced nothing",
        ),
        ("blank.sql.gz", "dump_incomplete", "the dump is empty"),
        ("zero.sql", "dump_incomplete", "the dump is empty"),
        (
            "error.sql.gz",
            "restore_failed",
            "holds no SQL statements (its first line, of 112 bytes, starts none; it starts with text in no format restore tests know)",
        ),
        ("noise.sql.gz", "archive_corrupt", "binary data, not text"),
        ("nonul.sql.gz", "archive_corrupt", "binary data, not text"),
        ("cut-adhoc.sql.gz", "archive_corrupt", "cannot read"),
    ] {
        assert_failed(&doc, path, kind);
        assert_detail(&doc, path, &[detail]);
    }
    let said = result(&doc, "error.sql.gz")["detail"].to_string();
    assert!(!said.contains("socket"), "content is not quoted: {said}");
    assert_result(&doc, "adhoc.sql.gz", "skipped", "sql.gz");
    assert_detail(&doc, "adhoc.sql.gz", &["unknown dump tool"]);
    assert_scratch_empty(&ws);
}

#[test]
fn a_dump_passes_only_when_it_ends_with_its_footer() {
    let ws = workspace(&[location("db", "backups", "")]);
    std::fs::create_dir_all(ws.path("backups")).unwrap();
    let write =
        |name: &str, text: &str| std::fs::write(ws.path(&format!("backups/{name}")), text).unwrap();
    // A footer followed by a 1 MB unterminated INSERT (mysqldump), by a few short lines
    // (pg_dump), or that is the script's first line.
    let mut long = MYSQL_DUMP.to_string();
    long.push_str("INSERT INTO `users` VALUES (");
    long.push_str(&"1,".repeat(500_000));
    write("footer-then-insert.sql", &long);
    let pg_more = format!("{PG_DUMP}COPY public.users (id) FROM stdin;\n2\n3\n\\.\n");
    write("footer-then-copy.sql", &pg_more);
    let first = format!(
        "-- Dump completed on 2026-11-21  2:00:01\n{}",
        MYSQL_DUMP.replace("-- Dump completed on 2026-11-21  2:00:01\n", "")
    );
    write("footer-first.sql", &first);
    let lite_more = format!("{SQLITE_DUMP}INSERT INTO users VALUES(2,'x');\n");
    write("commit-then-insert.sql", &lite_more);
    // What may follow: blank lines, `--` comments, pg_dump 17.6+'s `\unrestrict <key>`.
    let pg17 = PG_DUMP.replacen("--\n\nCREATE", "--\n\n\\restrict k3Y\n\nCREATE", 1)
        + "\\unrestrict k3Y\n\n";
    write("pg17.sql", &pg17);
    write(
        "my-trailing.sql",
        &format!("{MYSQL_DUMP}\n-- trailing comment\n\n"),
    );
    settle(&ws, "backups");

    let (code, doc) = test_restore(&ws);
    assert_eq!(code, 2, "{doc:#}");
    for (path, shown) in [
        (
            "footer-then-insert.sql",
            "followed by a line that starts an SQL statement (`INSERT`)",
        ),
        (
            "footer-then-copy.sql",
            "followed by a line that starts an SQL statement (`COPY`)",
        ),
        (
            "footer-first.sql",
            "followed by a line that starts an SQL statement (`CREATE`)",
        ),
        (
            "commit-then-insert.sql",
            "followed by a line that starts an SQL statement (`INSERT`)",
        ),
    ] {
        assert_failed(&doc, path, "dump_incomplete");
        let detail = assert_detail(
            &doc,
            path,
            &["does not end with its completion footer", shown],
        );
        // Backup content is never quoted beyond the keyword that identifies the format.
        assert!(!detail.contains("users"), "{detail}");
    }
    for path in ["pg17.sql", "my-trailing.sql"] {
        assert_result(&doc, path, "passed", "sql");
        assert_eq!(result(&doc, path)["files"], 1, "{path}");
    }
}

#[test]
fn encrypted_zip_entries_are_skipped_alone() {
    let ws = workspace(&[location("zips", "backups", "")]);
    std::fs::create_dir_all(ws.path("backups")).unwrap();
    sh(
        &ws,
        "mkdir -p z/dir && echo secret > z/dir/secret.txt && echo 'plain text body' > z/plain.txt \
         && cd z && zip -q -0 -P pw ../backups/mixed.zip dir/secret.txt \
         && zip -q -0 ../backups/mixed.zip plain.txt \
         && cp ../backups/mixed.zip ../backups/badcrc.zip \
         && zip -q -r -P pw ../backups/all.zip dir",
    );
    flip(&ws, "backups/badcrc.zip", b"plain text body");
    settle(&ws, "backups");
    let (code, doc) = test_restore(&ws);
    assert_eq!(code, 2, "{doc:#}");
    assert_result(&doc, "mixed.zip", "passed", "zip");
    assert_eq!(result(&doc, "mixed.zip")["files"], 1);
    assert_detail(
        &doc,
        "mixed.zip",
        &[
            "1 entries, every CRC-32 checked",
            "1 encrypted entries not checked",
            "\"dir/secret.txt\"",
        ],
    );
    // The bad CRC of the entry that is not encrypted is no longer hidden by a skip.
    assert_failed(&doc, "badcrc.zip", "archive_corrupt");
    assert_detail(&doc, "badcrc.zip", &["checksum"]);
    assert_result(&doc, "all.zip", "skipped", "zip");
    assert_detail(&doc, "all.zip", &["every file of the zip is encrypted"]);
    assert_scratch_empty(&ws);
}

#[test]
fn truncated_sqlite_databases_are_corrupt() {
    let ws = workspace(&[location("db", "backups", "")]);
    std::fs::create_dir_all(ws.path("backups")).unwrap();
    make_sqlite(&ws.path("whole.sqlite"));
    let db = std::fs::read(ws.path("whole.sqlite")).unwrap();
    // Cut at a page boundary (what `head -c 118784` of a 232 KB database does), and
    // within a page; the same inside a gzip stream.
    let half = db.len() / 2 / 4096 * 4096;
    std::fs::write(ws.path("backups/pages.sqlite"), &db[..half]).unwrap();
    std::fs::write(ws.path("backups/mid-page.sqlite"), &db[..half + 1000]).unwrap();
    std::fs::write(ws.path("backups/cut.sqlite.gz"), gzip(&db[..half])).unwrap();
    std::fs::write(ws.path("backups/whole.sqlite"), &db).unwrap();
    settle(&ws, "backups");
    let (code, doc) = test_restore(&ws);
    assert_eq!(code, 2, "{doc:#}");
    for (path, format) in [
        ("pages.sqlite", "sqlite"),
        ("mid-page.sqlite", "sqlite"),
        ("cut.sqlite.gz", "sqlite.gz"),
    ] {
        assert_failed(&doc, path, "archive_corrupt");
        assert_result(&doc, path, "failed", format);
        assert_detail(&doc, path, &["the SQLite database is truncated"]);
    }
    assert_detail(
        &doc,
        "pages.sqlite",
        &[&format!(
            "pages of 4096 bytes ({} bytes), the file holds {half}",
            db.len()
        )],
    );
    assert_result(&doc, "whole.sqlite", "passed", "sqlite");
}

#[test]
fn min_files_counts_distinct_restored_files() {
    let ws = workspace(&[location("same", "backups", "        min_files: 2\n")]);
    std::fs::create_dir_all(ws.path("backups")).unwrap();
    // One name 3,000 times (a tar appended to with `tar -r` every run), and two files.
    let mut b = tar::Builder::new(Vec::new());
    for i in 0..3000 {
        let data = format!("version {i}\n");
        let mut h = tar::Header::new_gnu();
        h.set_path("same.txt").unwrap();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        b.append(&h, data.as_bytes()).unwrap();
    }
    std::fs::write(ws.path("backups/same.tar"), b.into_inner().unwrap()).unwrap();
    make_site(&ws);
    sh(
        &ws,
        "tar -cf backups/site.tar -C src site && tar -rf backups/site.tar -C src site",
    );
    settle(&ws, "backups");
    let (code, doc) = test_restore(&ws);
    assert_eq!(code, 2, "{doc:#}");
    assert_failed(&doc, "same.tar", "restore_failed");
    assert_eq!(result(&doc, "same.tar")["files"], 1);
    assert_detail(
        &doc,
        "same.tar",
        &["restored 1 files (or tables), fewer than min_files 2"],
    );
    // Every file of the site twice: three files, not six.
    assert_result(&doc, "site.tar", "passed", "tar");
    assert_eq!(result(&doc, "site.tar")["files"], 3);
}
