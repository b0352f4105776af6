//! Support for tests/reliability.rs: a realistic backup tree that grows by one day at a
//! time, a loopback webhook that records every POST with its arrival time, a
//! deterministic pseudo-random sequence, and checks of what a run leaves on disk.
#![allow(dead_code)]

use chrono::{DateTime, Duration, Utc};
use serde_json::Value;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// Day 0 of the generated history.
pub const DAY0: &str = "2026-09-01T00:00:00Z";

pub fn day(d: u32) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(DAY0)
        .expect("rfc3339")
        .with_timezone(&Utc)
        + Duration::days(d as i64)
}

/// splitmix64: a small deterministic sequence, so a failure replays exactly.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// A permutation of 0..n.
    pub fn permutation(&mut self, n: usize) -> Vec<usize> {
        let mut v: Vec<usize> = (0..n).collect();
        for i in (1..n).rev() {
            let j = (self.next_u64() % (i as u64 + 1)) as usize;
            v.swap(i, j);
        }
        v
    }
}

fn write_with_mtime(path: &Path, bytes: &[u8], mtime: DateTime<Utc>) {
    std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
    std::fs::write(path, bytes).expect("write");
    let ft = filetime::FileTime::from_unix_time(mtime.timestamp(), 0);
    filetime::set_file_mtime(path, ft).expect("mtime");
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(bytes).expect("gzip");
    enc.finish().expect("gzip")
}

fn tar_gz(entries: &[(&str, Vec<u8>)]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for (name, data) in entries {
        let mut header = tar::Header::new_gnu();
        header.set_size(data.len() as u64);
        header.set_mode(0o644);
        header.set_mtime(1_700_000_000);
        header.set_cksum();
        builder
            .append_data(&mut header, name, data.as_slice())
            .expect("tar entry");
    }
    gzip(&builder.into_inner().expect("tar"))
}

fn zip_of(entries: &[(&str, Vec<u8>)]) -> Vec<u8> {
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    for (name, data) in entries {
        w.start_file(*name, options).expect("zip entry");
        w.write_all(data).expect("zip data");
    }
    w.finish().expect("zip").into_inner()
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Filler that compresses a little, different per day and file.
fn text(seed: u32, lines: usize) -> String {
    (0..lines)
        .map(|i| {
            format!(
                "row {seed} {i} {}\n",
                (seed as u64 * 7919 + i as u64 * 104_729) % 1_000_003
            )
        })
        .collect()
}

/// The four locations of the crash test (a `scratch/` directory holds the sandboxes).
pub const LOCATIONS_YAML: &str = "\
backups:
  locations:
    - name: db
      path: tree/db
      type: database
      patterns: [\"*.sql.gz\"]
      schedule: daily
      at: \"02:00\"
      grace: 4h
      restore: { latest: 1, scratch_dir: scratch }
    - name: site
      path: tree/site
      type: website
      patterns: [\"*.tar.gz\"]
      restore: { latest: 1, expect: [\"index.html\"], scratch_dir: scratch }
    - name: docs
      path: tree/docs
      type: files
      patterns: [\"*.zip\"]
      recursive: true
      restore: { latest: 1, expect: [\"*.txt\"], scratch_dir: scratch }
    - name: hosts
      path: tree/hosts
      patterns: [\"*.bak\"]
      recursive: true
      min_count: 7
      test_restore: false
";

/// Files per generated day: 1 dump, 1 archive + sidecar, 1 zip, 6 host files.
pub const HOSTS: u32 = 6;

/// Write the backups of day `d` under `root/tree`. Some days are deliberately bad, so
/// problems open and close as the days go by:
/// - db: no dump on days ≡ 4 (mod 9) (`missing_backup`); a dump without its completion
///   footer on days ≡ 7 (mod 13) (`dump_incomplete` when it is the newest);
/// - site: a wrong `.sha256` sidecar on days ≡ 5 (mod 11) (`sidecar_mismatch`);
/// - hosts: an empty file on day 3 (`empty_backup`).
pub fn write_day(root: &Path, d: u32) {
    let t = day(d);
    let stamp = t.format("%Y%m%d").to_string();
    let tree = root.join("tree");
    if d % 9 != 4 {
        let footer = if d % 13 == 7 {
            ""
        } else {
            "--\n-- PostgreSQL database dump complete\n--\n"
        };
        let sql = format!(
            "--\n-- PostgreSQL database dump\n--\nCREATE TABLE t (id int, v text);\nCOPY t (id, v) FROM stdin;\n{}\\.\n{footer}",
            text(d, 300)
        );
        write_with_mtime(
            &tree.join(format!("db/db_{stamp}_020000.sql.gz")),
            &gzip(sql.as_bytes()),
            t + Duration::hours(2) + Duration::minutes(3),
        );
    }
    let archive = tar_gz(&[
        (
            "index.html",
            format!("<html>{}</html>\n", text(d, 40)).into_bytes(),
        ),
        ("css/site.css", b"body { margin: 0 }\n".to_vec()),
        ("data/blob.txt", text(d + 1000, 200).into_bytes()),
    ]);
    let name = format!("site_{stamp}.tar.gz");
    let digest = if d % 11 == 5 {
        sha256_hex(b"not this archive")
    } else {
        sha256_hex(&archive)
    };
    let site = tree.join("site");
    write_with_mtime(&site.join(&name), &archive, t + Duration::hours(3));
    write_with_mtime(
        &site.join(format!("{name}.sha256")),
        format!("{digest}  {name}\n").as_bytes(),
        t + Duration::hours(3),
    );
    let zip = zip_of(&[
        ("report.txt", text(d + 2000, 100).into_bytes()),
        ("notes/readme.txt", b"docs\n".to_vec()),
    ]);
    write_with_mtime(
        &tree.join(format!("docs/{}/docs_{stamp}.zip", t.format("%Y/%m"))),
        &zip,
        t + Duration::hours(4),
    );
    for h in 0..HOSTS {
        let content = if d == 3 && h == 0 {
            Vec::new()
        } else {
            text(d * 10 + h, 20).into_bytes()
        };
        write_with_mtime(
            &tree.join(format!("hosts/host{h}/app_{stamp}.bak")),
            &content,
            t + Duration::hours(1),
        );
    }
}

/// A loopback HTTP server that answers 200 to everything and records every POST body
/// with the instant it was read completely (the answer may wait: [`HookSink::answering_after`]).
pub struct HookSink {
    server: Arc<tiny_http::Server>,
    pub port: u16,
    received: Arc<Mutex<Vec<(Instant, Value)>>>,
}

impl HookSink {
    pub fn start() -> HookSink {
        HookSink::answering_after(std::time::Duration::ZERO)
    }

    /// A receiver that records each body at once and answers only after `delay`: a run
    /// sending to it is mid-delivery for that long.
    pub fn answering_after(delay: std::time::Duration) -> HookSink {
        let server = Arc::new(tiny_http::Server::http("127.0.0.1:0").expect("bind loopback"));
        let port = server.server_addr().to_ip().expect("ip").port();
        let received = Arc::new(Mutex::new(Vec::new()));
        let (s, r) = (server.clone(), received.clone());
        std::thread::spawn(move || {
            for mut request in s.incoming_requests() {
                let mut body = String::new();
                if request.as_reader().read_to_string(&mut body).is_err() {
                    continue; // the client died mid-request: nothing was delivered
                }
                if let Ok(json) = serde_json::from_str::<Value>(&body) {
                    r.lock().unwrap().push((Instant::now(), json));
                }
                if delay.is_zero() {
                    let _ = request.respond(tiny_http::Response::from_string("ok"));
                    continue;
                }
                std::thread::spawn(move || {
                    std::thread::sleep(delay);
                    let _ = request.respond(tiny_http::Response::from_string("ok"));
                });
            }
        });
        HookSink {
            server,
            port,
            received,
        }
    }

    /// Every body received so far, and forget them.
    pub fn take(&self) -> Vec<(Instant, Value)> {
        std::mem::take(&mut *self.received.lock().unwrap())
    }
}

impl Drop for HookSink {
    fn drop(&mut self) {
        self.server.unblock();
    }
}

/// `event kind|location|path|slot` of every alert line of a webhook payload.
pub fn alert_keys(payload: &Value) -> Vec<String> {
    let mut out = Vec::new();
    for group in payload["groups"].as_array().into_iter().flatten() {
        for a in group["alerts"].as_array().into_iter().flatten() {
            let s = |k: &str| a[k].as_str().unwrap_or("").to_string();
            out.push(format!(
                "{} {}|{}|{}|{}",
                s("event"),
                s("kind"),
                s("location"),
                s("path"),
                s("slot")
            ));
        }
    }
    out
}

/// Problems of a run document as sorted `kind|location|path|slot` keys.
pub fn problem_keys(doc: &Value) -> Vec<String> {
    let mut keys: Vec<String> = doc["problems"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| {
            let s = |k: &str| p[k].as_str().unwrap_or("").to_string();
            format!(
                "{}|{}|{}|{}",
                s("kind"),
                s("location"),
                s("path"),
                s("slot")
            )
        })
        .collect();
    keys.sort();
    keys
}

/// `PRAGMA integrity_check` of the store, if it exists.
pub fn integrity(store: &Path) -> Option<String> {
    if !store.exists() {
        return None;
    }
    let conn = rusqlite::Connection::open(store).expect("open store");
    Some(
        conn.query_row("PRAGMA integrity_check", [], |r| r.get(0))
            .expect("integrity_check"),
    )
}

/// Every `latest.*` report and the Prometheus file that exists is a complete file, and
/// no staged temp file is lying around when `no_temp` is set.
pub fn check_reports(reports: &Path, prom: &Path, no_temp: bool) -> Result<(), String> {
    let read = |p: &Path| std::fs::read_to_string(p).map_err(|e| format!("{}: {e}", p.display()));
    let html = reports.join("latest.html");
    if html.exists() {
        let s = read(&html)?;
        if !s.trim_end().ends_with("</html>") {
            return Err(format!("latest.html is cut short ({} bytes)", s.len()));
        }
    }
    let json = reports.join("latest.json");
    if json.exists() {
        serde_json::from_str::<Value>(&read(&json)?)
            .map_err(|e| format!("latest.json does not parse: {e}"))?;
    }
    let csv = reports.join("latest.csv");
    if csv.exists() {
        let mut r = csv::Reader::from_path(&csv).map_err(|e| e.to_string())?;
        r.headers().map_err(|e| format!("latest.csv header: {e}"))?;
        for rec in r.records() {
            rec.map_err(|e| format!("latest.csv does not parse: {e}"))?;
        }
    }
    if prom.exists() {
        let s = read(prom)?;
        if !s.ends_with('\n') || !s.contains("backup_monitor_last_run_timestamp_seconds") {
            return Err("the Prometheus textfile is cut short".into());
        }
    }
    if no_temp {
        for dir in [reports, prom.parent().expect("prom dir")] {
            let temps = temp_files(dir);
            if !temps.is_empty() {
                return Err(format!("staged temp files left behind: {temps:?}"));
            }
        }
    }
    Ok(())
}

/// Staged report files (`.<name>.<random>.tmp`) in `dir`.
pub fn temp_files(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with('.') && n.ends_with(".tmp"))
                .collect()
        })
        .unwrap_or_default()
}

/// Restore sandboxes (`backup-monitor-restore-*`) under `dir`.
pub fn sandboxes(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .filter(|e| {
                    e.file_name()
                        .to_string_lossy()
                        .starts_with("backup-monitor-restore-")
                })
                .map(|e| e.path())
                .collect()
        })
        .unwrap_or_default()
}

/// Copy a directory tree (files, directories, mtimes).
pub fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for e in std::fs::read_dir(from).expect("read_dir").flatten() {
        let (src, dst) = (e.path(), to.join(e.file_name()));
        let meta = e.metadata().expect("meta");
        if meta.is_dir() {
            copy_tree(&src, &dst);
        } else {
            std::fs::copy(&src, &dst).expect("copy");
            let mtime = filetime::FileTime::from_last_modification_time(&meta);
            filetime::set_file_mtime(&dst, mtime).expect("mtime");
        }
    }
}
