//! The rest of the second attack round, through the real binary: a full disk under the
//! store is not a damaged store, a damaged store names itself and the way out, secrets are
//! masked in every form a server may echo, operations that cannot be combined are
//! refused, messages never quote backup content, backups swapped for symbolic links after
//! the scan are not followed, and file names cannot forge log lines.
//! Results are described in docs/reliability.md.

use crate::common;

use chrono::{Duration, Utc};
use common::{Workspace, set_mtime};
use std::path::{Path, PathBuf};
use std::process::Command;

/// A mount that is undone when dropped. Mounting needs root: elsewhere the test is
/// skipped, saying so, except under CI, where a skipped test would prove nothing.
struct Mount(PathBuf);

impl Mount {
    fn tmpfs(options: &str, at: &Path) -> Option<Mount> {
        // SAFETY: geteuid has no preconditions.
        let root = unsafe { libc::geteuid() } == 0;
        let ci = std::env::var("CI").is_ok_and(|v| v == "true");
        if !root && !ci {
            println!("skipping: mounting a tmpfs needs root");
            return None;
        }
        std::fs::create_dir_all(at).expect("mount point");
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", options, "tmpfs"])
            .arg(at)
            .output()
            .expect("run mount");
        assert!(
            out.status.success(),
            "mount -t tmpfs failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Some(Mount(at.to_path_buf()))
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// One location `a` over `backups/` (free space not judged: the test machine's disk may
/// be nearly full), the store at `store/s.db`, no log file.
fn store_workspace() -> Workspace {
    // The SQLite file itself (a full disk under it, damaged pages), in both runs.
    let ws = Workspace::sqlite();
    ws.write_config(
        "database_url: store/s.db\nbackups:\n  locations:\n    - name: a\n      path: backups\n      \
         min_free_space: 0\nlogging:\n  file: null\n",
    );
    let old = Utc::now() - Duration::hours(2);
    for i in 0..20 {
        ws.write_file(&format!("backups/b{i:02}.tar"), &[b'x'; 512], old);
    }
    ws
}

/// Fill the filesystem holding `dir` until a write fails.
fn fill(dir: &Path) {
    use std::io::Write as _;
    let mut f = std::fs::File::create(dir.join("filler")).expect("filler");
    while f.write_all(&[0u8; 4096]).is_ok() {}
    let _ = f.sync_all();
}

#[test]
fn a_full_disk_under_the_store_is_said_as_such_and_the_history_survives() {
    let ws = store_workspace();
    let Some(_m) = Mount::tmpfs("size=1m", &ws.path("store")) else {
        return;
    };
    let first = ws.run(&["--monitor"]);
    assert_eq!(first.code, 0, "{}", first.stderr);
    fill(&ws.path("store"));
    for format in ["text", "json"] {
        let run = ws.run(&["--monitor", "--format", format]);
        assert_eq!(run.code, 3, "{}", run.stderr);
        let said = if format == "json" {
            run.json()["error"].as_str().unwrap_or_default().to_string()
        } else {
            run.stderr.clone()
        };
        let store = ws.path("store/s.db");
        assert!(
            said.contains("is full") && said.contains(&store.display().to_string()),
            "{said}"
        );
        assert!(
            !said.contains("damaged") && !said.contains("aside"),
            "a full disk must not be called damage: {said}"
        );
    }
    // After freeing space the same store carries on, its history intact.
    std::fs::remove_file(ws.path("store/filler")).unwrap();
    let again = ws.run(&["--monitor"]);
    assert_eq!(again.code, 0, "{}", again.stderr);
    let conn = rusqlite::Connection::open(ws.path("store/s.db")).unwrap();
    let backups: i64 = conn
        .query_row("SELECT COUNT(*) FROM backups", [], |r| r.get(0))
        .unwrap();
    assert_eq!(backups, 20);
}

/// Overwrite page `page` (1-based) of the SQLite file at `path` with garbage.
fn damage_page(path: &Path, page: i64) {
    use std::io::{Seek, SeekFrom, Write};
    let mut f = std::fs::OpenOptions::new().write(true).open(path).unwrap();
    f.seek(SeekFrom::Start((page as u64 - 1) * 4096)).unwrap();
    f.write_all(&[0xA5; 4096]).unwrap();
}

#[test]
fn a_store_with_damaged_pages_names_itself_and_the_way_out() {
    let ws = store_workspace();
    let first = ws.run(&["--monitor"]);
    assert_eq!(first.code, 0, "{}", first.stderr);
    let path = ws.path("store/s.db");
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)")
        .unwrap();
    let page_size: i64 = conn
        .query_row("PRAGMA page_size", [], |r| r.get(0))
        .unwrap();
    assert_eq!(page_size, 4096);
    // The table of backups: read by every run, but not while the store is opened.
    let root: i64 = conn
        .query_row(
            "SELECT rootpage FROM sqlite_master WHERE name = 'backups'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    drop(conn);
    damage_page(&path, root);
    let run = ws.run(&["--monitor"]);
    assert_eq!(run.code, 3, "{}", run.stderr);
    let line = run.stderr.lines().last().unwrap_or_default().to_string();
    assert!(
        line.contains(&format!("the store {} is damaged", path.display()))
            && line.contains("integrity check")
            && line.contains("Restore the store from your backup of it")
            && line.contains("loses the run history"),
        "{}",
        run.stderr
    );
    // Damage in the schema itself is said the same way when the store is opened.
    damage_page(&path, 1);
    let run = ws.run(&["--monitor"]);
    assert_eq!(run.code, 3, "{}", run.stderr);
    assert!(
        run.stderr.contains(&path.display().to_string())
            && !run.stderr.contains("pre-release")
            && (run.stderr.contains("damaged")
                || run.stderr.contains("not a backup-monitor database")),
        "{}",
        run.stderr
    );
}

/// `database_url` pointing at another program's SQLite database (a typo, a copied line):
/// refused, naming its tables, and the file is left exactly as it was — no
/// backup-monitor table is made among the other program's.
#[test]
fn another_programs_sqlite_database_is_refused_and_left_untouched() {
    let ws = store_workspace();
    std::fs::create_dir_all(ws.path("store")).unwrap();
    let path = ws.path("store/s.db");
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute_batch(
        "CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT);
         INSERT INTO customers (name) VALUES ('Ada');
         CREATE VIEW names AS SELECT name FROM customers;",
    )
    .unwrap();
    drop(conn);
    for args in [&["--monitor"][..], &["--ack", "1", "--reason", "x"][..]] {
        let run = ws.run(args);
        assert_eq!(run.code, 3, "{args:?}: {}", run.stderr);
        let line = run.stderr.lines().last().unwrap_or_default().to_string();
        assert!(
            line.contains(&format!(
                "the store {} is not a backup-monitor database",
                path.display()
            )) && line.contains("tables another program made: customers, names")
                && line.contains("Point database_url at the store"),
            "{}",
            run.stderr
        );
    }
    let conn = rusqlite::Connection::open(&path).unwrap();
    let tables: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_master ORDER BY name")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(tables, ["customers", "names"]);
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(version, 0);
}

/// A one-connection-at-a-time server on 127.0.0.1 answering each accepted stream with
/// `serve`; returns its port. The thread ends with the test process.
fn serve(serve: fn(std::net::TcpStream)) -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("port").port();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            serve(stream);
        }
    });
    port
}

/// A webhook server that answers 500 quoting the request line percent-decoded, as many
/// frameworks' "no route" pages do.
fn echo_decoded_path(stream: std::net::TcpStream) {
    use std::io::{BufRead, BufReader, Read, Write};
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    let _ = reader.read_line(&mut line);
    let mut length = 0usize;
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).unwrap_or(0) == 0 || h == "\r\n" {
            break;
        }
        if let Some(v) = h.to_ascii_lowercase().strip_prefix("content-length:") {
            length = v.trim().parse().unwrap_or(0);
        }
    }
    let _ = reader
        .by_ref()
        .take(length as u64)
        .read_to_end(&mut Vec::new());
    let path = line.split(' ').nth(1).unwrap_or("");
    let decoded = percent_encoding::percent_decode_str(path).decode_utf8_lossy();
    let body = format!("no route for {decoded}");
    let mut stream = reader.into_inner();
    let _ = write!(
        stream,
        "HTTP/1.1 500 Internal Server Error\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
}

/// An SMTP server that offers AUTH PLAIN and LOGIN and rejects a login quoting the AUTH
/// line it received (base64 of the user name and password).
fn echo_auth(stream: std::net::TcpStream) {
    use std::io::{BufRead, BufReader, Write};
    let mut out = stream.try_clone().expect("clone");
    let mut reader = BufReader::new(stream);
    let _ = out.write_all(b"220 echo ESMTP\r\n");
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let line = line.trim_end();
        let upper = line.to_ascii_uppercase();
        let answer = if upper.starts_with("EHLO") {
            "250-echo\r\n250 AUTH PLAIN LOGIN\r\n".to_string()
        } else if upper.starts_with("AUTH") {
            format!("535 5.7.8 rejected: {line}\r\n")
        } else if upper.starts_with("QUIT") {
            let _ = out.write_all(b"221 bye\r\n");
            return;
        } else {
            "250 ok\r\n".to_string()
        };
        let _ = out.write_all(answer.as_bytes());
    }
}

const HOOK_SECRET: &str = "tok%2Bsecret%21value42";
const HOOK_SECRET_DECODED: &str = "tok+secret!value42";
const SMTP_PASSWORD: &str = "smtp-Pass-7731";

#[test]
fn secrets_are_masked_when_servers_echo_them_decoded_or_in_base64() {
    use base64::Engine as _;
    let hook = serve(echo_decoded_path);
    let smtp = serve(echo_auth);
    let ws = Workspace::new();
    ws.write_config(&format!(
        "backups:\n  locations:\n    - name: a\n      path: backups\n      min_free_space: 0\n\
         logging:\n  file: bm.log\n  level: debug\n\
         alerts:\n  timeout: 2s\n  webhook:\n    enabled: true\n    \
         url: http://127.0.0.1:{hook}/hook/{HOOK_SECRET}\n  \
         email:\n    enabled: true\n    smtp_host: 127.0.0.1\n    smtp_port: {smtp}\n    \
         security: none\n    username: monitor\n    password: ${{TEST_SMTP_PASSWORD}}\n    \
         from: bm@test.local\n    to: [ops@test.local]\n"
    ));
    let ws = ws.env("TEST_SMTP_PASSWORD", SMTP_PASSWORD);
    let mut everything = String::new();
    for format in ["json", "text"] {
        let run = ws.run(&["--monitor", "--check-alerts", "-vv", "--format", format]);
        assert_eq!(run.code, 2, "{}", run.stderr);
        everything += &run.stdout;
        everything += &run.stderr;
    }
    everything += &std::fs::read_to_string(ws.path("bm.log")).unwrap_or_default();
    for e in ws.store_column::<String>("SELECT error FROM alert_deliveries WHERE error IS NOT NULL")
    {
        everything += &e;
    }
    // The servers did echo them, and each was masked.
    assert!(
        everything.contains("no route for [redacted]"),
        "{everything}"
    );
    assert!(
        everything.contains("rejected: AUTH PLAIN [redacted]"),
        "{everything}"
    );
    let plain =
        base64::engine::general_purpose::STANDARD.encode(format!("\0monitor\0{SMTP_PASSWORD}"));
    let alone = base64::engine::general_purpose::STANDARD.encode(SMTP_PASSWORD);
    for secret in [
        HOOK_SECRET,
        HOOK_SECRET_DECODED,
        SMTP_PASSWORD,
        &plain,
        &alone,
    ] {
        assert!(
            !everything.contains(secret),
            "`{secret}` leaked:\n{everything}"
        );
    }
}

#[test]
fn status_and_check_config_refuse_the_operations_they_would_drop() {
    let ws = store_workspace();
    for args in [
        &["--status", "--monitor"][..],
        &["--check-config", "--monitor"],
        &["--status", "--verify"],
        &["--check-config", "--report"],
        &["--check-config", "--status"],
        &["--check-config", "--ack", "1"],
        &["--check-config", "--silences"],
    ] {
        let run = ws.run(args);
        assert_eq!(run.code, 3, "{args:?}: {}", run.stderr);
        assert!(
            run.stderr.contains("cannot be used with"),
            "{args:?}: {}",
            run.stderr
        );
        let (run, doc) = ws.run_json(args);
        assert_eq!(run.code, 3, "{args:?}");
        assert!(
            doc["error"]
                .as_str()
                .unwrap_or_default()
                .contains("cannot be used with"),
            "{doc}"
        );
    }
    assert!(!ws.path("store/s.db").exists(), "no monitoring ran");
    // Alone, each still works.
    assert_eq!(ws.run(&["--check-config"]).code, 0);
    assert_eq!(ws.run(&["--monitor", "--verify"]).code, 0);
    assert_eq!(ws.run(&["--status"]).code, 0);
}

/// Bytes read so far by process `pid` (`rchar` of /proc/PID/io).
fn read_by(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/io"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("rchar:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

#[test]
fn verify_never_follows_a_backup_swapped_for_a_link_after_the_scan() {
    // One hashing thread, largest file first: while the 1 GiB backup of `slow` is hashed,
    // the scanned backup of `victim` is replaced by a link to a secret.
    let ws = Workspace::new();
    ws.write_config(
        "backups:\n  locations:\n    - name: slow\n      path: slow\n      min_free_space: 0\n    \
         - name: victim\n      path: victim\n      min_free_space: 0\nlogging:\n  file: log.txt\n",
    );
    for dir in ["slow", "victim", "secret"] {
        std::fs::create_dir_all(ws.path(dir)).unwrap();
    }
    let big = std::fs::File::create(ws.path("slow/big.img")).unwrap();
    big.set_len(1 << 30).unwrap();
    drop(big);
    let old = Utc::now() - Duration::days(1);
    set_mtime(&ws.path("slow/big.img"), old);
    ws.write_file("victim/db.sql", b"-- a small dump\n", old);
    std::fs::write(ws.path("secret/smtp.conf"), "smtp_password=Hunter2Secret\n").unwrap();

    let child = ws
        .process()
        .env("RAYON_NUM_THREADS", "1")
        .args(["--monitor", "--verify", "--format", "json"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while read_by(child.id()) < 32 << 20 {
        assert!(
            std::time::Instant::now() < deadline,
            "hashing never started"
        );
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    std::fs::remove_file(ws.path("victim/db.sql")).unwrap();
    std::os::unix::fs::symlink(ws.path("secret/smtp.conf"), ws.path("victim/db.sql")).unwrap();
    let out = child.wait_with_output().unwrap();
    let run: common::Run = out.into();
    let doc = run.json();
    let everything = format!("{}{}", run.stdout, run.stderr);
    assert!(everything.contains("not followed"), "{everything}");
    // Nothing was recorded as the backup's checksum: the next run still sees it unverified.
    let recorded: i64 = ws
        .store_value("SELECT COUNT(*) FROM backups WHERE path = 'db.sql' AND checksum IS NOT NULL");
    assert_eq!(recorded, 0, "{doc:#}");
}

#[test]
fn pg_restore_reads_the_open_backup_never_its_name() {
    // A stand-in pg_restore that notes its arguments and the first bytes of its input.
    let ws = Workspace::new();
    ws.write_config(
        "backups:\n  locations:\n    - name: pg\n      path: backups\n      min_free_space: 0\n      \
         restore:\n        scratch_dir: scratch\nlogging:\n  file: null\n",
    );
    for dir in ["backups", "scratch", "bin"] {
        std::fs::create_dir_all(ws.path(dir)).unwrap();
    }
    let notes = ws.path("pg_restore.calls");
    let fake = ws.path("bin/pg_restore");
    std::fs::write(
        &fake,
        format!(
            "#!/bin/sh\necho \"args: $*\" >> '{}'\nprintf 'input: ' >> '{0}'\nhead -c 5 >> '{0}'\necho >> '{0}'\n",
            notes.display()
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
    // A custom-format header (archive 1.14, 4-byte ints, 8-byte offsets, format 1).
    let mut dump = b"PGDMP\x01\x0e\x00\x04\x08\x01".to_vec();
    dump.extend_from_slice(&[0u8; 64]);
    ws.write_file("backups/db.dump", &dump, Utc::now() - Duration::days(1));
    let path = format!(
        "{}:{}",
        ws.path("bin").display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let ws = ws.env("PATH", &path);
    let run = ws.run(&["--test-restore", "--format", "json"]);
    let calls = std::fs::read_to_string(&notes).unwrap_or_default();
    assert!(calls.contains("args: --list"), "{calls}\n{}", run.stdout);
    assert!(
        !calls.contains("db.dump"),
        "the name reached pg_restore: {calls}"
    );
    for line in calls.lines().filter(|l| l.starts_with("input:")) {
        assert_eq!(line, "input: PGDMP", "{calls}");
    }
}

#[test]
fn names_with_line_breaks_and_bidi_controls_cannot_forge_log_lines() {
    let ws = Workspace::new();
    ws.write_config(
        "backups:\n  locations:\n    - name: a\n      path: backups\n      min_free_space: 0\n      \
         restore:\n        scratch_dir: scratch\nlogging:\n  file: bm.log\n  level: debug\n",
    );
    std::fs::create_dir_all(ws.path("scratch")).unwrap();
    let forged = "x\n2026-12-04T03:00:00Z ERROR forged\rline\u{202e}lqs.sql";
    ws.write_file(
        &format!("backups/{forged}"),
        b"not a dump at all\n",
        Utc::now() - Duration::days(1),
    );
    let run = ws.run(&["--monitor", "--verify", "--test-restore", "-vv"]);
    let log = std::fs::read_to_string(ws.path("bm.log")).unwrap();
    for (what, text) in [("stderr", &run.stderr), ("log file", &log)] {
        assert!(text.contains("restore test of"), "{what}: {text}");
        assert!(
            text.lines()
                .all(|l| !l.starts_with("2026-12-04T03:00:00Z ERROR forged")
                    && !l.contains('\r')
                    && !l.contains('\u{202e}')),
            "{what} has a forged line:\n{text}"
        );
        assert!(
            text.contains(r"x\n2026-12-04T03:00:00Z ERROR forged\rline\u{202e}lqs.sql"),
            "{what}: {text}"
        );
    }
}

#[test]
fn a_link_in_place_of_the_archive_root_is_unsafe() {
    // Found by the `tar_links` fuzz target: `.` as a symbolic link to `/x/x/x/..`.
    let ws = Workspace::new();
    ws.write_config(
        "backups:\n  locations:\n    - name: a\n      path: backups\n      min_free_space: 0\n      \
         restore:\n        latest: 10\n        scratch_dir: scratch\nlogging:\n  file: null\n",
    );
    std::fs::create_dir_all(ws.path("scratch")).unwrap();
    for (name, kind) in [(".", tar::EntryType::Symlink), ("./", tar::EntryType::Link)] {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(kind);
        h.set_size(0);
        h.set_mode(0o777);
        let old = h.as_old_mut();
        old.name[..name.len()].copy_from_slice(name.as_bytes());
        old.linkname[..9].copy_from_slice(b"/x/x/x/..");
        h.set_cksum();
        let mut one = tar::Builder::new(Vec::new());
        one.append(&h, &b""[..]).unwrap();
        let bytes = one.into_inner().unwrap();
        let file = if kind == tar::EntryType::Symlink {
            "dot-symlink.tar"
        } else {
            "dot-hardlink.tar"
        };
        ws.write_file(
            &format!("backups/{file}"),
            &bytes,
            Utc::now() - Duration::days(1),
        );
    }
    let (run, doc) = ws.run_json(&["--test-restore"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    for file in ["dot-symlink.tar", "dot-hardlink.tar"] {
        let r = common::restore_result(&doc, file);
        let kinds = common::problem_kinds_of(&doc, file);
        assert!(
            kinds.iter().any(|k| k == "unsafe_archive_entry"),
            "{kinds:?} {r:#}"
        );
        assert!(
            r["detail"]
                .as_str()
                .unwrap_or_default()
                .contains("in place of the archive's root"),
            "{r:#}"
        );
    }
}

/// Read a request's header lines up to the blank line that ends them.
fn skip_headers(reader: &mut impl std::io::BufRead) {
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).unwrap_or(0) == 0 || h == "\r\n" {
            break;
        }
    }
}

/// An S3 endpoint that refuses every request, quoting its session token (decoded) and
/// the whole signed request line, as a proxy's error page may.
fn echo_s3_request(stream: std::net::TcpStream) {
    use std::io::{BufRead, BufReader, Write};
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    let _ = reader.read_line(&mut line);
    skip_headers(&mut reader);
    let target = line.split(' ').nth(1).unwrap_or("");
    let token = target
        .split(['?', '&'])
        .find_map(|p| p.strip_prefix("X-Amz-Security-Token="))
        .map(|t| {
            percent_encoding::percent_decode_str(t)
                .decode_utf8_lossy()
                .into_owned()
        })
        .unwrap_or_default();
    let body = format!(
        "<Error><Code>AccessDenied</Code><Message>token {token} for {target}</Message></Error>"
    );
    let mut stream = reader.into_inner();
    let _ = write!(
        stream,
        "HTTP/1.1 403 Forbidden\r\nContent-Type: application/xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
}

const S3_SECRET: &str = "s3Secret+Key/42zz";
const S3_TOKEN: &str = "SessTok/SECRET+xyz==";

#[test]
fn s3_credentials_are_masked_when_the_server_echoes_the_request() {
    let port = serve(echo_s3_request);
    let ws = Workspace::new();
    ws.write_config(&format!(
        "backups:\n  locations:\n    - name: bucket\n      path: s3://bkt/db\n      \
         s3: {{ endpoint: \"http://127.0.0.1:{port}\", access_key_id: AKIAEXAMPLE, \
         secret_access_key: \"${{TEST_S3_SECRET}}\", session_token: \"${{TEST_S3_TOKEN}}\" }}\n\
         logging:\n  file: bm.log\n  level: debug\n\
         reporting:\n  output_dir: reports\n  formats: [html, json]\n"
    ));
    let ws = ws
        .env("TEST_S3_SECRET", S3_SECRET)
        .env("TEST_S3_TOKEN", S3_TOKEN);
    let run = ws.run(&["--monitor", "--report", "-vv", "--format", "json"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    let mut everything = run.stdout.clone() + &run.stderr;
    everything += &std::fs::read_to_string(ws.path("bm.log")).unwrap_or_default();
    everything += &std::fs::read_to_string(ws.path("reports/latest.json")).unwrap_or_default();
    everything += &std::fs::read_to_string(ws.path("reports/latest.html")).unwrap_or_default();
    for m in ws.store_column::<String>("SELECT message FROM problems") {
        everything += &m;
    }
    // The server did answer with its words, each credential in them masked.
    assert!(
        everything.contains("AccessDenied") && everything.contains("token [redacted] for /"),
        "{everything}"
    );
    let encoded = |s: &str| {
        percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
    };
    for secret in [S3_SECRET, S3_TOKEN, &encoded(S3_TOKEN), "SessTok"] {
        assert!(
            !everything.contains(secret),
            "`{secret}` leaked:\n{everything}"
        );
    }
    // The signed URL's credentials, wherever the echoed request line shows them.
    for name in [
        "X-Amz-Security-Token=",
        "X-Amz-Signature=",
        "X-Amz-Credential=",
    ] {
        for (at, _) in everything.match_indices(name) {
            assert!(
                everything[at + name.len()..].starts_with("[redacted]"),
                "{name} leaked:\n{everything}"
            );
        }
    }
}

/// A web server's 404 page, not an S3 server's.
fn html_404(stream: std::net::TcpStream) {
    use std::io::{BufReader, Write};
    let mut reader = BufReader::new(stream);
    skip_headers(&mut reader);
    let body = "<html><head><title>404 Not Found</title></head><body>nginx</body></html>";
    let mut stream = reader.into_inner();
    let _ = write!(
        stream,
        "HTTP/1.1 404 Not Found\r\nContent-Type: text/html\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
}

/// An endpoint that answers with a web page is said as not an S3 server, never given
/// an S3 error code it did not send.
#[test]
fn an_endpoint_answering_web_pages_is_not_given_s3_codes() {
    let port = serve(html_404);
    let ws = Workspace::new();
    ws.write_config(&format!(
        "backups:\n  locations:\n    - name: bucket\n      path: s3://bkt/db\n      \
         s3: {{ endpoint: \"http://127.0.0.1:{port}\", access_key_id: AKIAEXAMPLE, \
         secret_access_key: \"${{TEST_S3_SECRET}}\" }}\n"
    ));
    let ws = ws.env("TEST_S3_SECRET", S3_SECRET);
    let (run, doc) = ws.run_json(&["--monitor"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    let message = doc["problems"][0]["message"].as_str().unwrap_or_default();
    assert_eq!(
        doc["problems"][0]["kind"], "location_unavailable",
        "{doc:#}"
    );
    assert!(
        message.contains(
            "HTTP 404 with a body that is no S3 error (\"<html><head><title>404 Not Found"
        ) && message.contains("is s3.endpoint an S3 server?"),
        "{message}"
    );
    assert!(!message.contains("NoSuchKey"), "{message}");
}
