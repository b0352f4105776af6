//! `--verify` through the binary: trust-on-first-use checksums, silent corruption,
//! modification after backup, every sidecar form, malformed sidecars, the sampling
//! rotation over every present backup whatever `--days`, location filters, exit codes
//! and the JSON counters.

use crate::common;

use chrono::{DateTime, Duration, Utc};
use common::{Workspace, set_mtime, ts};
use sha2::Digest;

const NOW: &str = "2026-11-21T12:00:00Z";

fn workspace() -> Workspace {
    let mut w = Workspace::new();
    w.now = Some(ts(NOW));
    w
}

/// One location `db` (path `db`) with `extra` YAML lines appended to it.
fn config(w: &Workspace, extra: &str) {
    w.write_config(&format!(
        "timezone: UTC\nlogging: {{ file: null }}\nbackups:\n  locations:\n    - name: db\n      path: db\n{extra}"
    ));
}

/// Time of the daily backup `days_ago` days before NOW.
fn backup_time(days_ago: i64) -> DateTime<Utc> {
    ts("2026-11-21T02:00:00Z") - Duration::days(days_ago)
}

fn backup_name(days_ago: i64) -> String {
    format!("db_{}.tar", backup_time(days_ago).format("%Y%m%d_%H%M%S"))
}

/// Distinct content per backup, so a mix-up could not pass by accident.
fn content(days_ago: i64, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (i as i64 * 31 + days_ago * 7) as u8)
        .collect()
}

/// Daily backups under `db/` for each day ago; returns their names.
fn daily(w: &Workspace, days_ago: &[i64], len: usize) -> Vec<String> {
    days_ago
        .iter()
        .map(|&d| {
            let name = backup_name(d);
            w.write_file(
                &format!("db/{name}"),
                &content(d, len),
                backup_time(d) + Duration::minutes(5),
            );
            name
        })
        .collect()
}

fn sha256(data: &[u8]) -> String {
    hex(&sha2::Sha256::digest(data))
}

fn md5(data: &[u8]) -> String {
    use md5::Digest as _;
    hex(&md5::Md5::digest(data))
}

fn b3(data: &[u8]) -> String {
    blake3::hash(data).to_hex().to_string()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// (checksum, algo) recorded for a present backup.
fn recorded(w: &Workspace, path: &str) -> (Option<String>, Option<String>) {
    let rows: Vec<(Option<String>, Option<String>)> = w.store_rows(&format!(
        "SELECT checksum, checksum_algo FROM backups WHERE path = {} AND deleted_at IS NULL",
        common::quote(path)
    ));
    let [row] = &rows[..] else {
        panic!("one present backup row for {path}: {rows:?}");
    };
    row.clone()
}

/// (path, result, method) of every stored verification, oldest first.
fn verifications(w: &Workspace) -> Vec<(String, String, String)> {
    w.store_rows(
        "SELECT b.path, v.result, v.method FROM verifications v JOIN backups b ON b.id = v.backup_id ORDER BY v.id",
    )
}

fn problems<'a>(doc: &'a serde_json::Value, kind: &str) -> Vec<&'a serde_json::Value> {
    doc["problems"]
        .as_array()
        .expect("problems array")
        .iter()
        .filter(|p| p["kind"] == kind)
        .collect()
}

fn counters(doc: &serde_json::Value) -> (u64, u64, u64, u64) {
    let v = &doc["verification"];
    let n = |k: &str| {
        v[k].as_u64()
            .unwrap_or_else(|| panic!("verification.{k}: {v}"))
    };
    (n("checked"), n("passed"), n("failed"), n("bytes"))
}

/// Overwrite one byte in place and put size and mtime back: silent corruption.
fn flip_byte(w: &Workspace, rel: &str, at: usize) {
    let p = w.path(rel);
    let meta = std::fs::metadata(&p).expect("stat");
    let mtime = DateTime::<Utc>::from(meta.modified().expect("mtime"));
    let mut data = std::fs::read(&p).expect("read");
    data[at] ^= 0xff;
    std::fs::write(&p, &data).expect("write");
    set_mtime(&p, mtime);
}

fn later(w: &mut Workspace, hours: i64) {
    w.now = Some(ts(NOW) + Duration::hours(hours));
}

#[test]
fn first_sight_records_then_later_runs_compare() {
    let mut w = workspace();
    config(&w, "");
    let names = daily(&w, &[0, 1, 2], 1000);

    // --monitor alone never records a checksum.
    let run = w.run(&["--monitor"]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert_eq!(recorded(&w, &names[0]), (None, None));

    let (run, doc) = w.run_json(&["--verify"]);
    assert_eq!(run.code, 0, "{}", run.stdout);
    assert_eq!(doc["operations"], serde_json::json!(["verify"]));
    assert_eq!(
        counters(&doc),
        (3, 0, 0, 3000),
        "first sight is recorded, not passed"
    );
    for (i, name) in names.iter().enumerate() {
        let expected = sha256(&content([0, 1, 2][i], 1000));
        assert_eq!(recorded(&w, name), (Some(expected), Some("sha256".into())));
    }
    assert!(verifications(&w).iter().all(|(_, r, _)| r == "recorded"));

    later(&mut w, 24);
    let (run, doc) = w.run_json(&["--verify"]);
    assert_eq!(run.code, 0, "{}", run.stdout);
    assert_eq!(counters(&doc), (3, 3, 0, 3000));
    let rows = verifications(&w);
    assert_eq!(rows.len(), 6);
    assert!(
        rows[3..]
            .iter()
            .all(|(_, r, m)| r == "passed" && m == "checksum"),
        "{rows:?}"
    );

    let run = w.run(&["--verify"]);
    assert!(
        run.stdout
            .contains("Verification: 3 checked, 3 passed, 0 failed"),
        "{}",
        run.stdout
    );
}

#[test]
fn flipped_byte_with_size_and_mtime_restored_is_checksum_mismatch() {
    let mut w = workspace();
    config(&w, "");
    let names = daily(&w, &[0, 1], 4096);
    assert_eq!(w.run(&["--verify"]).code, 0);
    let original = sha256(&content(1, 4096));

    flip_byte(&w, &format!("db/{}", names[1]), 100);
    later(&mut w, 1);
    let (run, doc) = w.run_json(&["--verify"]);
    assert_eq!(run.code, 2, "{}", run.stdout);
    assert_eq!(counters(&doc).2, 1, "one failed");
    let found = problems(&doc, "checksum_mismatch");
    assert_eq!(found.len(), 1, "{doc:#}");
    assert_eq!(found[0]["severity"], "critical");
    assert_eq!(found[0]["path"], names[1].as_str());
    let mut corrupted = content(1, 4096);
    corrupted[100] ^= 0xff;
    let message = found[0]["message"].as_str().unwrap_or_default();
    assert!(message.contains(&original), "old value: {message}");
    assert!(
        message.contains(&sha256(&corrupted)),
        "new value: {message}"
    );
    assert!(problems(&doc, "modified_after_backup").is_empty());
    assert_eq!(
        recorded(&w, &names[1]).0,
        Some(original),
        "never overwritten"
    );

    // Repaired (restored from elsewhere, same bytes): the problem closes.
    flip_byte(&w, &format!("db/{}", names[1]), 100);
    later(&mut w, 2);
    let (run, doc) = w.run_json(&["--verify"]);
    assert_eq!(run.code, 0, "{}", run.stdout);
    assert!(problems(&doc, "checksum_mismatch").is_empty());
}

#[test]
fn appended_bytes_are_modified_after_backup_not_a_mismatch() {
    let mut w = workspace();
    config(&w, "");
    let names = daily(&w, &[0, 1], 500);
    assert_eq!(w.run(&["--monitor", "--verify"]).code, 0);

    let p = w.path(&format!("db/{}", names[1]));
    let mut data = std::fs::read(&p).expect("read");
    data.extend_from_slice(b"extra");
    std::fs::write(&p, &data).expect("append");
    set_mtime(&p, ts("2026-11-21T10:00:00Z"));
    later(&mut w, 1);
    let (run, doc) = w.run_json(&["--verify"]);
    assert_eq!(run.code, 2, "{}", run.stdout);
    let found = problems(&doc, "modified_after_backup");
    assert_eq!(found.len(), 1, "{doc:#}");
    let message = found[0]["message"].as_str().unwrap_or_default();
    assert!(message.contains("size 500 → 505 bytes"), "{message}");
    assert!(
        message.contains("2026-11-21T10:00:00"),
        "new mtime: {message}"
    );
    assert!(
        message.contains("2026-11-20T02:05:00"),
        "old mtime: {message}"
    );
    assert!(problems(&doc, "checksum_mismatch").is_empty());
    assert_eq!(counters(&doc).2, 1);
}

/// A sidecar form: the files it writes for a backup named `name` with `data`, given
/// whether it should be right.
struct Form {
    what: &'static str,
    write: fn(&Workspace, &str, &[u8], bool),
}

fn digest_or_wrong(d: String, right: bool) -> String {
    if right {
        d
    } else {
        // Same length, one digit changed.
        let mut s = d.into_bytes();
        s[0] = if s[0] == b'0' { b'1' } else { b'0' };
        String::from_utf8(s).unwrap_or_default()
    }
}

fn sidecar_forms() -> Vec<Form> {
    vec![
        Form {
            what: "<file>.sha256, coreutils text line",
            write: |w, name, data, right| {
                let line = format!("{}  {name}\n", digest_or_wrong(sha256(data), right));
                std::fs::write(w.path(&format!("db/{name}.sha256")), line).expect("write");
            },
        },
        Form {
            what: "<file>.md5, bare digest",
            write: |w, name, data, right| {
                let line = format!("{}\n", digest_or_wrong(md5(data), right));
                std::fs::write(w.path(&format!("db/{name}.md5")), line).expect("write");
            },
        },
        Form {
            what: "<file>.b3, b3sum line",
            write: |w, name, data, right| {
                let line = format!("{}  {name}\n", digest_or_wrong(b3(data), right));
                std::fs::write(w.path(&format!("db/{name}.b3")), line).expect("write");
            },
        },
        Form {
            what: "SHA256SUMS, text marker, among other lines",
            write: |w, name, data, right| {
                let other = sha256(b"other");
                let text = format!(
                    "{other}  other.tar\n{}  {name}\n",
                    digest_or_wrong(sha256(data), right)
                );
                std::fs::write(w.path("db/SHA256SUMS"), text).expect("write");
            },
        },
        Form {
            what: "MD5SUMS, binary marker",
            write: |w, name, data, right| {
                let text = format!("{} *{name}\n", digest_or_wrong(md5(data), right));
                std::fs::write(w.path("db/MD5SUMS"), text).expect("write");
            },
        },
        Form {
            what: "B3SUMS, ./ prefix",
            write: |w, name, data, right| {
                let text = format!("{}  ./{name}\n", digest_or_wrong(b3(data), right));
                std::fs::write(w.path("db/B3SUMS"), text).expect("write");
            },
        },
        Form {
            what: "SHA256SUMS, BSD tag form",
            write: |w, name, data, right| {
                let text = format!(
                    "SHA256 ({name}) = {}\n",
                    digest_or_wrong(sha256(data), right)
                );
                std::fs::write(w.path("db/SHA256SUMS"), text).expect("write");
            },
        },
    ]
}

#[test]
fn every_sidecar_form_passes_when_right_and_fails_when_wrong() {
    for form in sidecar_forms() {
        for right in [true, false] {
            let w = workspace();
            config(&w, "");
            let names = daily(&w, &[0], 777);
            (form.write)(&w, &names[0], &content(0, 777), right);
            let (run, doc) = w.run_json(&["--verify"]);
            let what = format!("{} ({})", form.what, if right { "right" } else { "wrong" });
            // A sidecar is earlier evidence: even first sight is a comparison.
            if right {
                assert_eq!(run.code, 0, "{what}: {}", run.stdout);
                assert_eq!(counters(&doc), (1, 1, 0, 777), "{what}");
                assert_eq!(verifications(&w)[0].2, "sidecar", "{what}");
            } else {
                assert_eq!(run.code, 2, "{what}: {}", run.stdout);
                assert_eq!(counters(&doc).2, 1, "{what}");
                let found = problems(&doc, "sidecar_mismatch");
                assert_eq!(found.len(), 1, "{what}: {doc:#}");
                assert_eq!(found[0]["path"], names[0].as_str(), "{what}");
            }
            assert!(
                problems(&doc, "sidecar_invalid").is_empty(),
                "{what}: {doc:#}"
            );
        }
    }
}

#[test]
fn escaped_name_in_sums_file_matches_the_backup() {
    let w = workspace();
    config(&w, "");
    let name = "db\\nightly_20261121.tar";
    let data = b"backslash in the name".to_vec();
    w.write_file(&format!("db/{name}"), &data, backup_time(0));
    let text = format!("\\{}  db\\\\nightly_20261121.tar\n", sha256(&data));
    std::fs::write(w.path("db/SHA256SUMS"), text).expect("write");
    let (run, doc) = w.run_json(&["--verify"]);
    assert_eq!(run.code, 0, "{}", run.stdout);
    assert_eq!(
        counters(&doc).1,
        1,
        "matched through the escaped name: {doc:#}"
    );
}

#[test]
fn malformed_sidecar_is_a_warning_naming_file_and_line() {
    let w = workspace();
    config(&w, "");
    let names = daily(&w, &[0, 1], 300);
    let text = format!(
        "{}  {}\nthis is not a checksum line\n",
        sha256(&content(0, 300)),
        names[0]
    );
    std::fs::write(w.path("db/SHA256SUMS"), text).expect("write");
    let (run, doc) = w.run_json(&["--verify"]);
    assert_eq!(run.code, 1, "{}", run.stdout);
    let found = problems(&doc, "sidecar_invalid");
    assert_eq!(found.len(), 1, "{doc:#}");
    assert_eq!(found[0]["severity"], "warning");
    assert_eq!(found[0]["path"], "SHA256SUMS");
    let message = found[0]["message"].as_str().unwrap_or_default();
    assert!(message.contains("SHA256SUMS:2"), "{message}");
    // The good line still counts.
    assert_eq!(counters(&doc).1, 1, "{doc:#}");

    // Fixed: the warning closes.
    std::fs::write(
        w.path("db/SHA256SUMS"),
        format!("{}  {}\n", sha256(&content(0, 300)), names[0]),
    )
    .expect("write");
    let (run, doc) = w.run_json(&["--verify"]);
    assert_eq!(run.code, 0, "{}", run.stdout);
    assert!(problems(&doc, "sidecar_invalid").is_empty());
}

#[test]
fn a_sidecar_that_is_a_fifo_or_a_link_to_a_device_is_invalid_not_a_hang() {
    let w = workspace();
    config(&w, "");
    let names = daily(&w, &[0, 1], 300);
    let fifo = std::ffi::CString::new(
        w.path("db/SHA256SUMS")
            .into_os_string()
            .into_encoded_bytes(),
    )
    .unwrap();
    // SAFETY: mkfifo reads a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o644) }, 0);
    std::os::unix::fs::symlink("/dev/zero", w.path(&format!("db/{}.sha256", names[0]))).unwrap();
    let started = std::time::Instant::now();
    let run = w
        .command()
        .args(["--verify", "--format", "json"])
        .timeout(std::time::Duration::from_secs(60))
        .output()
        .unwrap();
    assert!(
        started.elapsed() < std::time::Duration::from_secs(60),
        "a FIFO sidecar blocked the run"
    );
    let run: common::Run = run.into();
    assert_eq!(run.code, 1, "{}", run.stderr);
    let doc = run.json();
    let found = problems(&doc, "sidecar_invalid");
    let mut paths: Vec<&str> = found.iter().map(|p| p["path"].as_str().unwrap()).collect();
    paths.sort();
    let link = format!("{}.sha256", names[0]);
    let mut expected = vec!["SHA256SUMS", link.as_str()];
    expected.sort();
    assert_eq!(paths, expected, "{doc:#}");
    for p in found {
        assert!(
            p["message"]
                .as_str()
                .unwrap()
                .contains("not a regular file"),
            "{p:#}"
        );
    }
    // The backups themselves were still verified (recorded at first sight).
    assert_eq!(counters(&doc).0, 2, "{doc:#}");
}

#[test]
fn rotation_covers_every_backup_over_successive_runs() {
    let mut w = workspace();
    config(&w, "      verify_sample: 0.4\n");
    let names = daily(&w, &[0, 1, 2, 3, 4], 1000);
    let (_, doc) = w.run_json(&["--verify"]);
    assert_eq!(counters(&doc).0, 5, "first sight hashes every backup");
    let first = verifications(&w).len();

    // ceil(0.4 × 5) = 2 places: the newest and one of the rotation, so the 4 others
    // take 4 runs.
    for run in 1..=4 {
        later(&mut w, run);
        let (code, doc) = w.run_json(&["--verify"]);
        assert_eq!(code.code, 0, "{}", code.stdout);
        let (checked, passed, _, bytes) = counters(&doc);
        assert_eq!(checked, 2, "run {run}: the sample is exactly ceil(0.4 x 5)");
        assert_eq!(passed, checked);
        assert_eq!(bytes, checked * 1000);
    }
    let rows = verifications(&w);
    let reverified: std::collections::BTreeSet<&str> = rows[first..]
        .iter()
        .filter(|(_, r, _)| r == "passed")
        .map(|(p, _, _)| p.as_str())
        .collect();
    let all: std::collections::BTreeSet<&str> = names.iter().map(String::as_str).collect();
    assert_eq!(reverified, all, "every backup re-verified");
    // The newest every run.
    let newest = rows[first..]
        .iter()
        .filter(|(p, _, _)| *p == names[0])
        .count();
    assert_eq!(newest, 4);
}

#[test]
fn nightly_runs_find_a_bit_flip_older_than_the_window() {
    let mut w = workspace();
    config(&w, "      retention_days: 60\n      verify_sample: 1\n");
    let days: Vec<i64> = (0..=20).collect();
    let names = daily(&w, &days, 2000);
    let (_, doc) = w.run_json(&["--verify"]);
    assert_eq!(counters(&doc).0, 21, "first sight records every backup");
    flip_byte(&w, &format!("db/{}", names[18]), 5);

    // The next nightly run, with the default 7-day window.
    later(&mut w, 24);
    let (run, doc) = w.run_json(&["--verify"]);
    assert_eq!(run.code, 2, "{}", run.stdout);
    assert_eq!(
        counters(&doc).0,
        21,
        "every present backup, whatever the window"
    );
    let found = problems(&doc, "checksum_mismatch");
    assert_eq!(found.len(), 1, "{doc:#}");
    assert_eq!(found[0]["path"], names[18].as_str());
}

#[test]
fn a_repaired_old_backup_closes_on_the_next_routine_run() {
    let mut w = workspace();
    config(&w, "      retention_days: 60\n");
    let days: Vec<i64> = (0..=20).collect();
    let names = daily(&w, &days, 2000);
    w.run_json(&["--verify"]);
    let damaged = format!("db/{}", names[10]);
    flip_byte(&w, &damaged, 7);
    later(&mut w, 24);
    let (run, doc) = w.run_json(&["--verify"]);
    assert_eq!(run.code, 2, "{}", run.stdout);
    assert_eq!(problems(&doc, "checksum_mismatch").len(), 1, "{doc:#}");

    // The original bytes are back (restored from a copy). Routine runs sample 10%: the
    // rotation alone would reach the 10-day-old backup only runs later.
    config(&w, "      retention_days: 60\n      verify_sample: 0.1\n");
    w.write_file(
        &damaged,
        &content(10, 2000),
        backup_time(10) + Duration::minutes(5),
    );
    later(&mut w, 48);
    let (run, doc) = w.run_json(&["--verify"]);
    assert_eq!(run.code, 0, "{}", run.stdout);
    assert!(problems(&doc, "checksum_mismatch").is_empty(), "{doc:#}");
    assert_eq!(
        counters(&doc).0,
        4,
        "3 sampled (ceil 10% of 21) and the repaired one"
    );
    let (_, status) = w.run_json(&["--status"]);
    let open = status["problems"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["kind"] == "checksum_mismatch")
        .count();
    assert_eq!(open, 0);
}

#[test]
fn location_filter_verifies_only_that_location() {
    let w = workspace();
    w.write_config(
        "timezone: UTC\nlogging: { file: null }\nbackups:\n  locations:\n    - name: db\n      path: db\n    - name: web\n      path: web\n      checksum: blake3\n",
    );
    let names = daily(&w, &[0], 100);
    w.write_file("web/site_20261121.tar", b"web site", backup_time(0));

    let (run, doc) = w.run_json(&["--verify", "--location-name", "web"]);
    assert_eq!(run.code, 0, "{}", run.stdout);
    assert_eq!(counters(&doc).0, 1);
    assert_eq!(
        recorded(&w, "site_20261121.tar"),
        (Some(b3(b"web site")), Some("blake3".into()))
    );
    // db was not even scanned by this run.
    let db_rows: i64 = w.store_value(&format!(
        "SELECT COUNT(*) FROM backups WHERE path = {}",
        common::quote(&names[0])
    ));
    assert_eq!(db_rows, 0);

    let run = w.run(&["--verify", "--location-name", "nope"]);
    assert_eq!(run.code, 3, "{}", run.stderr);
}

#[test]
fn md5_location_records_md5_and_vanished_backup_closes_its_problem() {
    let mut w = workspace();
    config(&w, "      checksum: md5\n");
    let names = daily(&w, &[0, 1], 640);
    assert_eq!(w.run(&["--verify"]).code, 0);
    assert_eq!(
        recorded(&w, &names[1]),
        (Some(md5(&content(1, 640))), Some("md5".into()))
    );
    flip_byte(&w, &format!("db/{}", names[1]), 0);
    later(&mut w, 1);
    assert_eq!(w.run(&["--verify"]).code, 2);

    // The corrupt backup is deleted: nothing is left to judge, no wrong verdict remains.
    std::fs::remove_file(w.path(&format!("db/{}", names[1]))).expect("rm");
    later(&mut w, 2);
    let (run, doc) = w.run_json(&["--verify"]);
    assert_eq!(run.code, 0, "{}", run.stdout);
    assert_eq!(counters(&doc), (1, 1, 0, 640));
}

#[test]
fn verify_integrity_off_hashes_nothing() {
    let w = workspace();
    config(&w, "      verify_integrity: false\n");
    let names = daily(&w, &[0], 100);
    let (run, doc) = w.run_json(&["--verify"]);
    assert_eq!(run.code, 0);
    assert_eq!(counters(&doc), (0, 0, 0, 0));
    assert_eq!(recorded(&w, &names[0]).0, None);
}

#[test]
fn unsettled_files_are_not_recorded_until_they_settle() {
    let mut w = workspace();
    config(&w, "      settle: 1h\n");
    w.write_file(
        "db/db_20261121_113000.tar",
        b"still writing",
        ts("2026-11-21T11:40:00Z"),
    );
    let (_, doc) = w.run_json(&["--verify"]);
    assert_eq!(counters(&doc).0, 0);
    later(&mut w, 2);
    let (_, doc) = w.run_json(&["--verify"]);
    assert_eq!(counters(&doc).0, 1);
    assert!(recorded(&w, "db_20261121_113000.tar").0.is_some());
}
