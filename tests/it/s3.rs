//! Bucket locations (`path: s3://…`) through the binary, against two real S3-compatible
//! servers on 127.0.0.1 (moto and SeaweedFS: `eval "$(scripts/test-s3 start)"`), and a
//! scripted server for what real ones will not do on request (a wrong server-side
//! checksum, throttling). Without the servers the tests skip, except in CI.

use crate::common;

use chrono::{DateTime, Duration, Timelike, Utc};
use common::{Workspace, problem_kinds_of, restore_result};
use rusty_s3::actions::S3Action;
use rusty_s3::{Bucket, Credentials, UrlStyle};
use std::io::Write;
use std::sync::atomic::{AtomicUsize, Ordering};

const EXPIRY: std::time::Duration = std::time::Duration::from_secs(600);

/// One test server.
struct Server {
    name: &'static str,
    endpoint: String,
    key_id: String,
    secret: String,
}

/// The servers from `scripts/test-s3 start`; none (with a note) when it was not run,
/// except in CI, where a missing server fails the test.
fn servers() -> Vec<Server> {
    let key_id = std::env::var("BM_TEST_S3_KEY_ID").unwrap_or_default();
    let secret = std::env::var("BM_TEST_S3_SECRET").unwrap_or_default();
    let mut out = Vec::new();
    for (name, var) in [
        ("moto", "BM_TEST_S3_MOTO"),
        ("seaweed", "BM_TEST_S3_SEAWEED"),
    ] {
        match std::env::var(var) {
            Ok(url) if !url.is_empty() => out.push(Server {
                name,
                endpoint: url,
                key_id: key_id.clone(),
                secret: secret.clone(),
            }),
            _ => {
                assert!(
                    std::env::var("CI").as_deref() != Ok("true"),
                    "{var} is not set in CI: run `eval \"$(scripts/test-s3 start)\"` first"
                );
                eprintln!(
                    "skipping {name}: {var} is not set (eval \"$(scripts/test-s3 start)\" to run the S3 tests)"
                );
            }
        }
    }
    out
}

/// A fresh bucket on a server, to put objects in.
struct TestBucket {
    bucket: Bucket,
    credentials: Credentials,
    http: reqwest::blocking::Client,
}

impl TestBucket {
    fn new(server: &Server, test: &str) -> TestBucket {
        let _ = rustls::crypto::ring::default_provider().install_default();
        static N: AtomicUsize = AtomicUsize::new(0);
        let name = format!(
            "bm-{test}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        );
        let bucket = Bucket::new(
            url::Url::parse(&server.endpoint).unwrap(),
            UrlStyle::Path,
            name,
            "us-east-1",
        )
        .unwrap();
        let credentials = Credentials::new(&server.key_id, &server.secret);
        let http = reqwest::blocking::Client::builder()
            .timeout(std::time::Duration::from_secs(60))
            .build()
            .unwrap();
        let b = TestBucket {
            bucket,
            credentials,
            http,
        };
        let url = b.bucket.create_bucket(&b.credentials).sign(EXPIRY);
        let r = b.http.put(url).body(Vec::<u8>::new()).send().unwrap();
        assert!(r.status().is_success(), "create bucket: {:?}", r.text());
        b
    }

    fn name(&self) -> &str {
        self.bucket.name()
    }

    fn put(&self, key: &str, body: &[u8]) {
        // A fresh SeaweedFS may answer 500 while it grows volumes for a new bucket.
        for attempt in 0.. {
            let url = self
                .bucket
                .put_object(Some(&self.credentials), key)
                .sign(EXPIRY);
            let r = self.http.put(url).body(body.to_vec()).send().unwrap();
            if r.status().is_server_error() && attempt < 10 {
                std::thread::sleep(std::time::Duration::from_millis(300));
                continue;
            }
            assert!(r.status().is_success(), "put {key}: {:?}", r.text());
            return;
        }
    }

    fn delete(&self, key: &str) {
        let url = self
            .bucket
            .delete_object(Some(&self.credentials), key)
            .sign(EXPIRY);
        let r = self.http.delete(url).send().unwrap();
        assert!(r.status().is_success(), "delete {key}: {:?}", r.text());
    }

    fn put_with_sha256(&self, key: &str, body: &[u8]) {
        use base64::Engine as _;
        use sha2::Digest;
        let digest = base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(body));
        let mut action = self.bucket.put_object(Some(&self.credentials), key);
        action
            .headers_mut()
            .insert("x-amz-checksum-sha256", digest.clone());
        let url = action.sign(EXPIRY);
        let r = self
            .http
            .put(url)
            .header("x-amz-checksum-sha256", digest)
            .body(body.to_vec())
            .send()
            .unwrap();
        assert!(r.status().is_success(), "put {key}: {:?}", r.text());
    }
}

/// A workspace whose config has one bucket location `off` over `s3://BUCKET/db` on
/// `server`, with `extra` YAML lines for the location (indented 6); credentials come
/// from the standard variables.
fn workspace(server: &Server, bucket: &str, extra: &str) -> Workspace {
    let w = Workspace::new()
        .env("AWS_ACCESS_KEY_ID", &server.key_id)
        .env("AWS_SECRET_ACCESS_KEY", &server.secret);
    w.write_config(&config(server, bucket, extra));
    w
}

fn config(server: &Server, bucket: &str, extra: &str) -> String {
    format!(
        "timezone: UTC\nlogging: {{ file: null }}\nbackups:\n  locations:\n    - name: offsite\n      path: s3://{bucket}/db\n      timestamp: filename\n      settle: 0s\n      schedule: daily\n      at: \"02:00\"\n      s3:\n        endpoint: {}\n{extra}",
        server.endpoint
    )
}

/// The daily slot time `days_ago` days before now.
/// [`workspace`] on a test's own server at `endpoint` (its keys made up: it checks none).
fn workspace_at(endpoint: String, name: &'static str) -> Workspace {
    let server = Server {
        name,
        endpoint,
        key_id: "AKIDEXAMPLE".into(),
        secret: format!("{name}-secret"),
    };
    workspace(&server, "bucket", "")
}

fn slot(days_ago: i64) -> DateTime<Utc> {
    let today = Utc::now()
        .with_hour(2)
        .and_then(|t| t.with_minute(0))
        .and_then(|t| t.with_second(0))
        .and_then(|t| t.with_nanosecond(0))
        .unwrap();
    today - Duration::days(days_ago)
}

fn backup_name(days_ago: i64, ext: &str) -> String {
    format!("db_{}.{ext}", slot(days_ago).format("%Y%m%d_%H%M%S"))
}

fn content(seed: u8, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31) ^ seed)
        .collect()
}

fn tar_gz(files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (name, data) in files {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        b.append_data(&mut h, name, *data).unwrap();
    }
    gzip(&b.into_inner().unwrap())
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(data).unwrap();
    gz.finish().unwrap()
}

fn zip_of(files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    for (name, data) in files {
        zip.start_file(*name, zip::write::SimpleFileOptions::default())
            .unwrap();
        zip.write_all(data).unwrap();
    }
    zip.finish().unwrap().into_inner()
}

fn kinds(doc: &serde_json::Value) -> Vec<String> {
    doc["problems"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|p| p["kind"].as_str().unwrap_or("").to_string())
                .collect()
        })
        .unwrap_or_default()
}

fn problem<'a>(doc: &'a serde_json::Value, kind: &str) -> &'a serde_json::Value {
    doc["problems"]
        .as_array()
        .and_then(|a| a.iter().find(|p| p["kind"] == kind))
        .unwrap_or_else(|| panic!("no {kind} problem: {doc:#}"))
}

#[test]
fn monitor_judges_a_bucket_like_a_directory() {
    for server in servers() {
        let b = TestBucket::new(&server, "monitor");
        // Days 3 to 6: yesterday's and the day before's are missing; the newest is small.
        for d in [4, 5, 6] {
            b.put(
                &format!("db/{}", backup_name(d, "tar")),
                &content(d as u8, 1000),
            );
        }
        b.put(&format!("db/{}", backup_name(3, "tar")), &content(3, 10));
        // Empty, past retention, and dated in the future.
        b.put(&format!("db/{}", backup_name(7, "tar")), b"");
        b.put(
            &format!("db/{}", backup_name(40, "tar")),
            &content(40, 1000),
        );
        b.put(
            &format!("db/{}", backup_name(-3, "tar")),
            &content(33, 1000),
        );
        // Not backups: a sidecar, a folder marker, an object in a folder (not recursive),
        // and a neighbour prefix that only starts like the location's.
        b.put(&format!("db/{}.sha256", backup_name(4, "tar")), b"00  x\n");
        b.put("db/old/", b"");
        b.put(&format!("db/old/{}", backup_name(9, "tar")), b"old");
        b.put(&format!("db-other/{}", backup_name(1, "tar")), b"other");
        let w = workspace(
            &server,
            b.name(),
            "      min_size: 100\n      min_count: 10\n    - name: empty\n      path: s3://BUCKET/nothing-here\n      s3: { endpoint: ENDPOINT }\n"
                .replace("BUCKET", b.name())
                .replace("ENDPOINT", &server.endpoint)
                .as_str(),
        );
        let (run, doc) = w.run_json(&["--monitor"]);
        assert_eq!(run.code, 2, "{}: {}", server.name, run.stderr);
        let found = kinds(&doc);
        for kind in [
            "missing_backup",
            "size_anomaly",
            "undersized_backup",
            "too_few_backups",
            "no_backups",
            "empty_backup",
            "retention_exceeded",
            "future_timestamp",
        ] {
            assert!(
                found.contains(&kind.to_string()),
                "{}: {kind} in {found:?}",
                server.name
            );
        }
        assert!(
            !found.contains(&"low_disk_space".to_string()),
            "min_free_space does not apply to a bucket: {found:?}"
        );
        let mut paths: Vec<String> = w.store_column("SELECT path FROM backups");
        paths.sort();
        assert_eq!(
            paths,
            [3, 6, 5, 4, 7, 40, -3]
                .iter()
                .map(|d| backup_name(*d, "tar"))
                .collect::<std::collections::BTreeSet<_>>()
                .into_iter()
                .collect::<Vec<_>>(),
            "{}",
            server.name
        );
        let mtime_ns: i64 = w.store_value("SELECT MAX(mtime_ns) FROM backups");
        let age = Utc::now().timestamp() - mtime_ns / 1_000_000_000;
        assert!(
            (0..600).contains(&age),
            "{}: LastModified is the mtime ({age} s ago)",
            server.name
        );

        // A backup deleted within its retention.
        b.delete(&format!("db/{}", backup_name(5, "tar")));
        let (_, doc) = w.run_json(&["--monitor"]);
        assert!(
            kinds(&doc).contains(&"deleted_before_retention".to_string()),
            "{}: {:?}",
            server.name,
            kinds(&doc)
        );

        // Recursive: the folder's object is a backup too.
        w.write_config(&config(&server, b.name(), "      recursive: true\n"));
        let (_, doc) = w.run_json(&["--monitor"]);
        assert!(!kinds(&doc).contains(&"no_backups".to_string()));
        let n: i64 = w.store_value("SELECT COUNT(*) FROM backups WHERE path LIKE 'old/%'");
        assert_eq!(n, 1, "{}", server.name);
    }
}

#[test]
fn listing_follows_pagination() {
    for server in servers() {
        let b = TestBucket::new(&server, "pages");
        let n = 1_050;
        for i in 0..n {
            b.put(&format!("db/part-{i:05}.bin"), b"x");
        }
        let w = workspace(&server, b.name(), "");
        w.write_config(
            &config(&server, b.name(), "").replace("timestamp: filename", "timestamp: mtime"),
        );
        let (run, _) = w.run_json(&["--monitor"]);
        assert!(
            run.code <= 2,
            "{}: {} {} {}",
            server.name,
            run.code,
            run.stdout,
            run.stderr
        );
        let count: i64 = w.store_value("SELECT COUNT(*) FROM backups");
        assert_eq!(count, n, "{}: every page is listed", server.name);
    }
}

#[test]
fn verify_first_sight_flipped_object_and_sidecars() {
    for server in servers() {
        let b = TestBucket::new(&server, "verify");
        let a = backup_name(1, "tar");
        let c = backup_name(2, "tar");
        b.put(&format!("db/{a}"), &content(1, 4096));
        b.put(&format!("db/{c}"), &content(2, 4096));
        // A sidecar object that disagrees with its backup.
        b.put(
            &format!("db/{c}.sha256"),
            format!("{}  {c}\n", "0".repeat(64)).as_bytes(),
        );
        let w = workspace(&server, b.name(), "");
        let (run, doc) = w.run_json(&["--monitor", "--verify"]);
        assert_eq!(run.code, 2, "{}: {}", server.name, run.stderr);
        assert_eq!(
            problem_kinds_of(&doc, &c),
            ["sidecar_mismatch"],
            "{}",
            server.name
        );
        assert!(
            problem_kinds_of(&doc, &a).is_empty(),
            "{}: {doc:#}",
            server.name
        );
        let recorded: i64 = w.store_value(&format!(
            "SELECT COUNT(*) FROM backups WHERE path = '{a}' AND checksum IS NOT NULL"
        ));
        assert_eq!(
            recorded, 1,
            "{}: first sight records a checksum",
            server.name
        );

        // The same size, other bytes: a flipped object is never taken for the backup.
        let mut flipped = content(1, 4096);
        flipped[100] ^= 0xff;
        b.put(&format!("db/{a}"), &flipped);
        let (run, doc) = w.run_json(&["--monitor", "--verify"]);
        assert_eq!(run.code, 2, "{}: {}", server.name, run.stderr);
        let k = problem_kinds_of(&doc, &a);
        assert!(
            k.contains(&"checksum_mismatch".to_string())
                || k.contains(&"modified_after_backup".to_string()),
            "{}: {k:?}",
            server.name
        );

        // `--accept` takes the object's current bytes as its truth.
        let accept = w.run(&["--accept", &a, "--reason", "re-uploaded on purpose"]);
        assert_eq!(
            accept.code, 0,
            "{}: {} {}",
            server.name, accept.stdout, accept.stderr
        );
        let (_, doc) = w.run_json(&["--monitor", "--verify"]);
        assert!(
            problem_kinds_of(&doc, &a).is_empty(),
            "{}: {doc:#}",
            server.name
        );
    }
}

#[test]
fn verify_checks_the_servers_own_sha256() {
    // Only SeaweedFS keeps a checksum given at upload and answers it in checksum mode.
    for server in servers().into_iter().filter(|s| s.name == "seaweed") {
        let b = TestBucket::new(&server, "cksum");
        let a = backup_name(1, "tar");
        b.put_with_sha256(&format!("db/{a}"), &content(7, 5000));
        let w = workspace(&server, b.name(), "");
        let (run, doc) = w.run_json(&["--monitor", "--verify"]);
        assert_ne!(run.code, 3, "{}: {doc:#}", run.stderr);
        // Yesterday's backup: after 03:00 UTC today's slot is missed, nothing else.
        assert!(run.kinds().iter().all(|k| k == "missing_backup"), "{doc:#}");
        assert_eq!(
            (
                &doc["verification"]["passed"],
                &doc["verification"]["failed"]
            ),
            (&serde_json::json!(1), &serde_json::json!(0)),
            "{doc:#}"
        );
        let method: String = w.store_value("SELECT method FROM verifications LIMIT 1");
        assert_eq!(
            method, "sidecar",
            "the server's checksum is evidence at first sight"
        );
    }
}

#[test]
fn restore_tests_stream_and_spool_objects() {
    for server in servers() {
        let b = TestBucket::new(&server, "restore");
        let good = backup_name(1, "tar.gz");
        let zipped = backup_name(2, "zip");
        let truncated = backup_name(3, "tar.gz");
        let bomb = backup_name(4, "gz");
        let payload = content(9, 200_000);
        b.put(
            &format!("db/{good}"),
            &tar_gz(&[("etc/app.conf", b"a=1\n"), ("data.bin", &payload)]),
        );
        b.put(
            &format!("db/{zipped}"),
            &zip_of(&[
                ("dump.sql", b"CREATE TABLE t (a int);\n"),
                ("x.bin", &payload),
            ]),
        );
        let whole = tar_gz(&[("big.bin", &content(3, 300_000))]);
        b.put(&format!("db/{truncated}"), &whole[..whole.len() / 2]);
        b.put(&format!("db/{bomb}"), &gzip(&vec![0u8; 8 << 20]));
        let w = workspace(
            &server,
            b.name(),
            "      restore:\n        latest: 4\n        max_bytes: 2MB\n",
        );
        let (run, doc) = w.run_json(&["--monitor", "--test-restore"]);
        assert_eq!(run.code, 2, "{}: {}", server.name, run.stderr);
        assert_eq!(
            restore_result(&doc, &good)["result"],
            "passed",
            "{}: {doc:#}",
            server.name
        );
        assert_eq!(
            restore_result(&doc, &zipped)["result"],
            "passed",
            "{}: {doc:#}",
            server.name
        );
        assert_eq!(restore_result(&doc, &zipped)["files"], 2, "{}", server.name);
        assert_eq!(
            restore_result(&doc, &truncated)["result"],
            "failed",
            "{}",
            server.name
        );
        // (Their sizes are anomalies for the monitor too.)
        assert!(
            problem_kinds_of(&doc, &truncated).contains(&"archive_corrupt".to_string()),
            "{}: {doc:#}",
            server.name
        );
        assert!(
            problem_kinds_of(&doc, &bomb).contains(&"restore_limit_exceeded".to_string()),
            "{}: {doc:#}",
            server.name
        );
    }
}

#[test]
fn a_zip_spooled_from_a_bucket_counts_against_max_bytes() {
    for server in servers() {
        let b = TestBucket::new(&server, "spool");
        let zipped = backup_name(1, "zip");
        // Stored, 1.5 MB: extracted alone it fits 2 MB; spooled first, it does not.
        let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        let stored = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Stored);
        zip.start_file("x.bin", stored).unwrap();
        zip.write_all(&content(5, 1_500_000)).unwrap();
        b.put(&format!("db/{zipped}"), &zip.finish().unwrap().into_inner());
        let w = workspace(
            &server,
            b.name(),
            "      restore:\n        max_bytes: 2MB\n",
        );
        let (_, doc) = w.run_json(&["--monitor", "--test-restore"]);
        assert_eq!(
            problem_kinds_of(&doc, &zipped),
            ["restore_limit_exceeded"],
            "{}: {doc:#}",
            server.name
        );
    }
}

#[test]
fn unavailable_buckets_name_the_code_and_the_endpoint() {
    for server in servers() {
        let b = TestBucket::new(&server, "errors");
        b.put(&format!("db/{}", backup_name(1, "tar")), b"data");
        // A bucket that does not exist.
        let w = workspace(&server, "no-such-bucket-here", "");
        let (run, doc) = w.run_json(&["--monitor", "--verify", "--test-restore"]);
        assert_eq!(run.code, 2, "{}: {}", server.name, run.stderr);
        let message = problem(&doc, "location_unavailable")["message"]
            .as_str()
            .unwrap()
            .to_string();
        assert!(
            message.contains("NoSuchBucket"),
            "{}: {message}",
            server.name
        );
        assert!(
            message.contains(&server.endpoint),
            "{}: {message}",
            server.name
        );

        // A wrong secret: moto does not check signatures, SeaweedFS does.
        if server.name == "seaweed" {
            let w = Workspace::new()
                .env("AWS_ACCESS_KEY_ID", &server.key_id)
                .env("AWS_SECRET_ACCESS_KEY", "wrong-secret-for-the-test");
            w.write_config(&config(&server, b.name(), ""));
            let (run, doc) = w.run_json(&["--monitor"]);
            assert_eq!(run.code, 2);
            let message = problem(&doc, "location_unavailable")["message"]
                .as_str()
                .unwrap();
            assert!(message.contains("SignatureDoesNotMatch"), "{message}");
            assert!(
                message.contains("secret_access_key"),
                "says what to check: {message}"
            );
            let everything = format!("{}{}", run.stdout, run.stderr);
            assert!(!everything.contains("wrong-secret-for-the-test"));
        }
    }
}

#[test]
fn a_stopped_server_does_not_hang_the_run() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let server = Server {
        name: "stopped",
        endpoint: format!("http://127.0.0.1:{port}"),
        key_id: "AKIDEXAMPLE".into(),
        secret: "stopped-server-secret".into(),
    };
    let w = workspace(&server, "bucket", "");
    let started = std::time::Instant::now();
    let (run, doc) = w.run_json(&["--monitor", "--verify", "--test-restore"]);
    let took = started.elapsed();
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(took < std::time::Duration::from_secs(60), "took {took:?}");
    let message = problem(&doc, "location_unavailable")["message"]
        .as_str()
        .unwrap();
    assert!(message.contains("cannot reach"), "{message}");
    assert!(message.contains(&server.endpoint), "{message}");
}

#[test]
fn secrets_never_leave_the_config() {
    for server in servers() {
        let b = TestBucket::new(&server, "secret");
        b.put(
            &format!("db/{}", backup_name(1, "tar.gz")),
            &tar_gz(&[("a", b"a")]),
        );
        let token = "session-token-that-must-not-leak";
        let mut w = Workspace::new()
            .env("BM_KEY_ID", &server.key_id)
            .env("BM_SECRET", &server.secret);
        if server.name == "moto" {
            // SeaweedFS refuses tokens it did not issue; moto takes any.
            w = w.env("AWS_SESSION_TOKEN", token);
        }
        let yaml = config(&server, b.name(), "").replace(
            "logging: { file: null }",
            "logging: { file: bm.log, level: debug }",
        ) + "        access_key_id: ${BM_KEY_ID}\n        secret_access_key: ${BM_SECRET}\n";
        w.write_config(&yaml);
        let mut all = String::new();
        for args in [
            vec!["--check-config"],
            vec![
                "--monitor",
                "--verify",
                "--test-restore",
                "--format",
                "json",
            ],
            vec!["--report", "--format", "json"],
            vec!["--status"],
        ] {
            let run = w.run(&args);
            all.push_str(&run.stdout);
            all.push_str(&run.stderr);
        }
        for entry in walk(w.dir.path()) {
            all.push_str(&String::from_utf8_lossy(&std::fs::read(&entry).unwrap()));
        }
        assert!(all.contains("offsite"), "something was written");
        for secret in [server.secret.as_str(), token] {
            assert!(!all.contains(secret), "{}: {secret} leaked", server.name);
        }
    }
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else if p.file_name().is_some_and(|n| n != "config.yaml") {
            out.push(p);
        }
    }
    out
}

/// A scripted S3 server: listings and objects from a table, a wrong server-side
/// checksum, and a first answer of 503 SlowDown to each listing.
fn scripted_server(
    objects: Vec<(String, Vec<u8>, Option<String>)>,
) -> (String, std::sync::Arc<AtomicUsize>) {
    let server = tiny_http::Server::http("127.0.0.1:0").unwrap();
    let endpoint = format!("http://{}", server.server_addr().to_ip().unwrap());
    let requests = std::sync::Arc::new(AtomicUsize::new(0));
    let counted = requests.clone();
    std::thread::spawn(move || {
        let mut slowed = false;
        for request in server.incoming_requests() {
            counted.fetch_add(1, Ordering::Relaxed);
            let url = request.url().to_string();
            let (path, query) = url.split_once('?').unwrap_or((&url, ""));
            let modified = "Sat, 05 Dec 2026 00:00:00 GMT";
            if query.contains("list-type=2") {
                if !slowed {
                    slowed = true;
                    let body = "<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>";
                    let _ = request
                        .respond(tiny_http::Response::from_string(body).with_status_code(503));
                    continue;
                }
                let items: String = objects
                    .iter()
                    .map(|(k, data, _)| {
                        format!(
                            "<Contents><Key>db/{k}</Key><LastModified>2026-12-05T00:00:00.000Z</LastModified><ETag>\"e\"</ETag><Size>{}</Size></Contents>",
                            data.len()
                        )
                    })
                    .collect();
                let body = format!(
                    "<?xml version=\"1.0\"?><ListBucketResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><IsTruncated>false</IsTruncated>{items}</ListBucketResult>"
                );
                let _ = request.respond(tiny_http::Response::from_string(body));
                continue;
            }
            let found = objects
                .iter()
                .find(|(k, _, _)| path.ends_with(&format!("/db/{k}")));
            match found {
                Some((_, data, sha)) => {
                    let mut r = tiny_http::Response::from_data(data.clone())
                        .with_header(
                            tiny_http::Header::from_bytes("Last-Modified", modified).unwrap(),
                        )
                        .with_header(tiny_http::Header::from_bytes("ETag", "\"e\"").unwrap());
                    if let Some(sha) = sha {
                        r = r.with_header(
                            tiny_http::Header::from_bytes("x-amz-checksum-sha256", sha.as_str())
                                .unwrap(),
                        );
                    }
                    let _ = request.respond(r);
                }
                None => {
                    let body = "<Error><Code>NoSuchKey</Code></Error>";
                    let _ = request
                        .respond(tiny_http::Response::from_string(body).with_status_code(404));
                }
            }
        }
    });
    (endpoint, requests)
}

#[test]
fn a_wrong_server_checksum_is_a_mismatch_and_throttling_is_retried() {
    use base64::Engine as _;
    use sha2::Digest;
    let good = backup_name(1, "tar");
    let bad = backup_name(2, "tar");
    let sha = |d: &[u8]| base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(d));
    let objects = vec![
        (good.clone(), content(1, 3000), Some(sha(&content(1, 3000)))),
        (bad.clone(), content(2, 3000), Some(sha(b"something else"))),
    ];
    let (endpoint, _) = scripted_server(objects);
    let w = workspace_at(endpoint, "scripted");
    let (run, doc) = w.run_json(&["--monitor", "--verify"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(problem_kinds_of(&doc, &good).is_empty(), "{doc:#}");
    assert_eq!(
        problem_kinds_of(&doc, &bad),
        ["sidecar_mismatch"],
        "{doc:#}"
    );
    let message = problem(&doc, "sidecar_mismatch")["message"]
        .as_str()
        .unwrap();
    assert!(message.contains("x-amz-checksum-sha256"), "{message}");
    assert!(
        !kinds(&doc).contains(&"location_unavailable".to_string()),
        "SlowDown was retried"
    );
}

#[test]
fn a_hostile_listing_is_refused_within_bounds() {
    let server = tiny_http::Server::http("127.0.0.1:0").unwrap();
    let endpoint = format!("http://{}", server.server_addr().to_ip().unwrap());
    std::thread::spawn(move || {
        for request in server.incoming_requests() {
            // A listing page far larger than any real one, and not XML.
            let junk = vec![b'<'; 9 << 20];
            let _ = request.respond(tiny_http::Response::from_data(junk));
        }
    });
    let w = workspace_at(endpoint, "hostile");
    let (run, doc) = w.run_json(&["--monitor"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    let message = problem(&doc, "location_unavailable")["message"]
        .as_str()
        .unwrap();
    assert!(message.contains("cannot be used"), "{message}");
    assert!(message.contains("bytes"), "says why: {message}");
}

#[test]
fn a_tls_failure_names_tls_and_the_endpoint() {
    // A server that answers a TLS handshake with plain HTTP, as an `https://` endpoint
    // pointed at a plain-HTTP port does.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let mut stream = stream;
            let _ = std::io::Write::write_all(
                &mut stream,
                b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n",
            );
        }
    });
    let server = Server {
        name: "plain-http",
        endpoint: format!("https://127.0.0.1:{port}"),
        key_id: "AKIDEXAMPLE".into(),
        secret: "tls-test-secret".into(),
    };
    let w = workspace(&server, "bucket", "");
    let (run, doc) = w.run_json(&["--monitor"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    let message = problem(&doc, "location_unavailable")["message"]
        .as_str()
        .unwrap();
    assert!(message.contains("TLS"), "{message}");
    assert!(message.contains(&server.endpoint), "{message}");
    assert!(!message.contains(&server.secret) && !run.stderr.contains(&server.secret));
}

#[test]
fn a_key_listed_twice_is_one_backup_and_a_dotted_key_is_not_read_outside_the_prefix() {
    let good = backup_name(1, "tar");
    let outside = format!("../{}", backup_name(2, "tar"));
    let objects = vec![
        (good.clone(), content(1, 3000), None),
        // The same key again: a server whose pages overlap aborted the whole run
        // (the store refused the second row).
        (good.clone(), content(1, 3000), None),
        // `db/../x` is fetched as `x`, outside the location's prefix.
        (outside.clone(), content(2, 3000), None),
    ];
    let (endpoint, _) = scripted_server(objects);
    let w = workspace_at(endpoint, "scripted");
    let (run, doc) = w.run_json(&["--monitor", "--verify"]);
    assert!(run.code < 3, "exit {}: {}", run.code, run.stderr);
    let paths: Vec<String> = w.store_column("SELECT path FROM backups ORDER BY path");
    assert_eq!(paths, std::slice::from_ref(&good), "{doc:#}");
    assert!(problem_kinds_of(&doc, &good).is_empty(), "{doc:#}");
    assert!(
        run.stderr
            .contains("cannot be read as named: not monitored"),
        "{}",
        run.stderr
    );
}

#[test]
fn a_transfer_that_breaks_off_in_a_restore_test_is_skipped_not_corrupt() {
    use std::io::{Read, Write};
    let name = backup_name(1, "tar.gz");
    let whole = tar_gz(&[("big.bin", &content(3, 300_000))]);
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    let (listed, body) = (name.clone(), whole.clone());
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut head = Vec::new();
            let mut byte = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") && stream.read(&mut byte).unwrap_or(0) == 1 {
                head.push(byte[0]);
            }
            let head = String::from_utf8_lossy(&head).to_string();
            if head.contains("list-type=2") {
                let xml = format!(
                    "<?xml version=\"1.0\"?><ListBucketResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><IsTruncated>false</IsTruncated><Contents><Key>db/{listed}</Key><LastModified>2026-12-05T00:00:00.000Z</LastModified><ETag>\"e\"</ETag><Size>{}</Size></Contents></ListBucketResult>",
                    body.len()
                );
                let _ = write!(
                    stream,
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{xml}",
                    xml.len()
                );
            } else {
                // The whole object's length announced, a sixth of it sent, the
                // connection closed.
                let _ = write!(
                    stream,
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nLast-Modified: Sat, 05 Dec 2026 00:00:00 GMT\r\nETag: \"e\"\r\nConnection: close\r\n\r\n",
                    body.len()
                );
                let _ = stream.write_all(&body[..body.len() / 6]);
            }
            let _ = stream.shutdown(std::net::Shutdown::Both);
        }
    });
    let w = workspace_at(endpoint, "breaking");
    let (run, doc) = w.run_json(&["--monitor", "--test-restore"]);
    assert!(run.code < 3, "exit {}: {}", run.code, run.stderr);
    let result = restore_result(&doc, &name);
    assert_eq!(result["result"], "skipped", "{doc:#}");
    assert!(
        result["detail"]
            .as_str()
            .is_some_and(|d| d.contains("broke off") && d.contains("the next run tries again")),
        "{result:#}"
    );
    assert!(
        !kinds(&doc).contains(&"archive_corrupt".to_string()),
        "a broken transfer is no damage: {doc:#}"
    );
}

#[test]
fn a_listing_with_an_impossible_field_names_the_field_and_its_value() {
    for (size, modified, said) in [
        (
            "-5",
            "2026-12-05T00:00:00.000Z",
            "`Size` holds -5, not a number of bytes",
        ),
        (
            "notanumber",
            "2026-12-05T00:00:00.000Z",
            "`Size` holds notanumber, not a number of bytes",
        ),
        (
            "5",
            "yesterday",
            "`LastModified` holds yesterday, not a time",
        ),
    ] {
        let server = tiny_http::Server::http("127.0.0.1:0").unwrap();
        let endpoint = format!("http://{}", server.server_addr().to_ip().unwrap());
        let body = format!(
            "<?xml version=\"1.0\"?><ListBucketResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><IsTruncated>false</IsTruncated><Contents><Key>db/x.tar</Key><LastModified>{modified}</LastModified><ETag>\"e\"</ETag><Size>{size}</Size></Contents></ListBucketResult>"
        );
        std::thread::spawn(move || {
            for request in server.incoming_requests() {
                let _ = request.respond(tiny_http::Response::from_string(body.clone()));
            }
        });
        let w = workspace_at(endpoint, "impossible");
        let (run, doc) = w.run_json(&["--monitor"]);
        assert_eq!(run.code, 2, "{}", run.stderr);
        let message = problem(&doc, "location_unavailable")["message"]
            .as_str()
            .unwrap();
        assert!(
            message.contains(&format!("a listing that does not parse ({said})")),
            "{message}"
        );
        assert!(
            !message.contains("::") && !message.contains("root element"),
            "{message}"
        );
    }
}
