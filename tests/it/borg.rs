//! `kind: borg`: real borg repositories made in the test, archives with chosen times
//! (`borg create --timestamp`, UTC), judged through the binary like files. Skipped
//! (saying so) when borg is not installed, except under CI.

use crate::common::{Workspace, sh, ts};
use crate::restic::have;

const PASSPHRASE: &str = "borg-passphrase-0c55e2";

/// A workspace with an encrypted borg repository `repo` (passphrase in `pw`, 0600) and
/// data to back up in `data/`. borg's own state stays in the workspace.
fn repository() -> Workspace {
    let ws = Workspace::new();
    std::fs::write(ws.path("pw"), format!("{PASSPHRASE}\n")).unwrap();
    sh(
        &ws,
        "chmod 600 pw && mkdir -p data && echo hello > data/index.html && \
         head -c 4096 /dev/urandom > data/dump.sql && \
         BORG_BASE_DIR=$PWD/borg-home BORG_PASSCOMMAND='cat pw' borg init -e repokey repo 2>/dev/null",
    );
    ws
}

/// Archive `data/` as `name`, taken at `time` (UTC, `YYYY-MM-DDTHH:MM:SS`).
fn archive(ws: &Workspace, name: &str, time: &str) {
    sh(
        ws,
        &format!(
            "BORG_BASE_DIR=$PWD/borg-home BORG_PASSCOMMAND='cat pw' borg create --timestamp {time} repo::{name} data"
        ),
    );
}

fn config(ws: &Workspace, extra: &str) {
    ws.write_config(&format!(
        "timezone: Europe/Berlin
backups:
  locations:
    - name: vault
      kind: borg
      repository: repo
      passphrase_file: pw
      schedule: daily
      at: \"03:00\"
{extra}"
    ));
}

#[test]
fn archives_are_backups_and_a_missing_night_is_missing_backup() {
    if !have("borg") {
        return;
    }
    let mut ws = repository();
    // 02:00 UTC is 03:00 in Berlin: each archive lands at the start of its slot.
    archive(&ws, "db-2026-12-01", "2026-12-01T02:00:30");
    archive(&ws, "db-2026-12-02", "2026-12-02T02:00:30");
    // An archive of another job in the same repository is not this location's.
    archive(&ws, "web-2026-12-03", "2026-12-03T02:00:30");
    config(&ws, "      patterns: [\"db-*\"]\n");
    ws.now = Some(ts("2026-12-03T12:00:00Z"));
    let (run, doc) = ws.run_json(&["--monitor"]);
    assert_eq!(run.code, 2, "{doc:#}");
    assert_eq!(run.kinds(), ["missing_backup"], "{doc:#}");
    let rows = ws
        .store_column::<String>("SELECT path || '@' || ts || '@' || size FROM backups ORDER BY ts")
        .join(",");
    let first = format!("db-2026-12-01@{}@", ts("2026-12-01T02:00:30Z").timestamp());
    assert!(rows.starts_with(&first), "borg's time read as UTC: {rows}");
    assert!(
        rows.split(',')
            .all(|r| r.rsplit('@').next().unwrap().parse::<u64>().unwrap() > 4096),
        "sizes from borg info: {rows}"
    );

    archive(&ws, "db-2026-12-03", "2026-12-03T02:10:00");
    let (run, doc) = ws.run_json(&["--monitor", "--verify"]);
    assert_eq!(run.code, 0, "{doc:#}");
    // The check covers the repository and the location's archives of the window.
    let detail: String = ws.store_value("SELECT detail FROM verifications");
    assert_eq!(
        detail,
        "borg check of the repository and the newest 3 archives: no errors"
    );
}

#[test]
fn a_damaged_segment_fails_verify() {
    if !have("borg") {
        return;
    }
    let mut ws = repository();
    archive(&ws, "db-2026-12-01", "2026-12-01T02:00:00");
    config(&ws, "");
    ws.now = Some(ts("2026-12-01T12:00:00Z"));
    let (run, doc) = ws.run_json(&["--monitor", "--verify"]);
    assert_eq!(run.code, 0, "{doc:#}");
    assert_eq!(doc["verification"]["passed"], 1, "{doc:#}");
    sh(
        &ws,
        "for f in repo/data/0/*; do \
         python3 -c 'import sys; p=sys.argv[1]; b=bytearray(open(p,\"rb\").read()); b[len(b)//2]^=0xff; open(p,\"wb\").write(b)' \"$f\"; done",
    );
    let (run, doc) = ws.run_json(&["--verify"]);
    assert_eq!(run.code, 2, "{doc:#}");
    assert_eq!(run.kinds(), ["checksum_mismatch"], "{doc:#}");
    let message = doc["problems"][0]["message"].as_str().unwrap();
    assert!(message.contains("borg check"), "{message}");
    assert!(message.contains("found damage"), "{message}");
}

#[test]
fn a_wrong_passphrase_is_location_unavailable() {
    if !have("borg") {
        return;
    }
    let mut ws = repository();
    archive(&ws, "db-2026-12-01", "2026-12-01T02:00:00");
    std::fs::write(ws.path("pw"), "not-the-passphrase-77\n").unwrap();
    config(&ws, "");
    ws.now = Some(ts("2026-12-01T12:00:00Z"));
    let (run, doc) = ws.run_json(&["--monitor", "--test-restore"]);
    assert_eq!(run.code, 2, "{doc:#}");
    assert!(
        run.kinds().contains(&"location_unavailable".to_string()),
        "{doc:#}"
    );
    let all = format!("{}{}", run.stdout, run.stderr);
    assert!(all.contains("wrong password"), "{all}");
    assert!(all.contains("passphrase_file"), "{all}");
    for secret in ["not-the-passphrase-77", PASSPHRASE] {
        assert!(!all.contains(secret), "{secret} shown: {all}");
    }
}

/// An encrypted repository with no `passphrase_file`, and `kind: borg` pointed at a
/// restic repository: each said with what to set or check, without borg's prompts or
/// its Python traceback.
#[test]
fn a_missing_passphrase_and_a_repository_of_another_tool_say_what_to_set() {
    if !have("borg") || !have("restic") {
        return;
    }
    let mut ws = repository();
    archive(&ws, "db-2026-12-01", "2026-12-01T02:00:00");
    sh(
        &ws,
        "RESTIC_PASSWORD=x restic init -r restic-repo >/dev/null 2>&1",
    );
    ws.write_config(
        "backups:
  locations:
    - name: vault
      kind: borg
      repository: repo
      schedule: daily
    - name: other
      kind: borg
      repository: restic-repo
      schedule: daily
",
    );
    ws.now = Some(ts("2026-12-01T12:00:00Z"));
    let (run, doc) = ws.run_json(&["--monitor"]);
    assert_eq!(run.code, 2, "{doc:#}");
    let message = |name: &str| -> String {
        doc["problems"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["location"] == name && p["kind"] == "location_unavailable")
            .and_then(|p| p["message"].as_str())
            .unwrap_or_else(|| panic!("no location_unavailable for {name}: {doc:#}"))
            .to_string()
    };
    let vault = message("vault");
    assert!(
        vault.contains("it is encrypted and no password was given; set passphrase_file"),
        "{vault}"
    );
    let other = message("other");
    assert!(
        other.contains("is `repository` a borg repository") && other.contains("Error: "),
        "{other}"
    );
    for said in [&vault, &other] {
        for noise in [
            "Traceback",
            "GetPassWarning",
            "Enter passphrase",
            "BORG_PASSPHRASE",
        ] {
            assert!(!said.contains(noise), "{noise}: {said}");
        }
    }
}

#[test]
fn the_newest_archive_is_extracted_and_validated() {
    if !have("borg") {
        return;
    }
    let mut ws = repository();
    archive(&ws, "db-2026-11-30", "2026-11-30T02:00:00");
    sh(&ws, "echo new > data/customers.csv");
    archive(&ws, "db-2026-12-01", "2026-12-01T02:00:00");
    config(
        &ws,
        "      restore: { expect: [\"customers.csv\", \"dump.sql\"], min_files: 3 }
    - name: wanting
      kind: borg
      repository: repo
      passphrase_file: pw
      restore: { expect: [\"orders.csv\"] }
    - name: partial
      kind: borg
      repository: repo
      passphrase_file: pw
      restore: { include: [\"data/customers.csv\"], expect: [\"customers.csv\"] }
",
    );
    ws.now = Some(ts("2026-12-01T12:00:00Z"));
    let (run, doc) = ws.run_json(&["--monitor", "--test-restore"]);
    assert_eq!(run.code, 2, "{doc:#}");
    let results = doc["restore_tests"]["results"].as_array().unwrap();
    let of = |loc: &str| results.iter().find(|r| r["location"] == loc).unwrap();
    assert_eq!(of("vault")["result"], "passed", "{doc:#}");
    assert_eq!(of("vault")["path"], "db-2026-12-01", "the newest archive");
    assert_eq!(of("vault")["format"], "borg archive");
    assert_eq!(of("vault")["files"], 3);
    assert_eq!(of("wanting")["result"], "failed");
    assert_eq!(of("partial")["result"], "passed", "{doc:#}");
    assert_eq!(of("partial")["files"], 1, "only the included path");
    assert_eq!(run.kinds(), ["restore_failed"], "{doc:#}");

    // An unchanged archive keeps its verdict: it is not extracted again.
    let (_, doc) = ws.run_json(&["--test-restore", "--location-name", "vault"]);
    let detail = doc["restore_tests"]["results"][0]["detail"]
        .as_str()
        .unwrap();
    assert!(
        detail.starts_with("unchanged since the test at"),
        "{detail}"
    );
}

#[test]
fn damage_in_an_archive_that_left_the_window_keeps_its_problem_open() {
    if !have("borg") {
        return;
    }
    let mut ws = repository();
    // The oldest archive alone holds old.bin; the later ones share what they hold.
    sh(
        &ws,
        "mkdir -p old && head -c 5000 /dev/urandom > old/old.bin",
    );
    sh(
        &ws,
        "BORG_BASE_DIR=$PWD/borg-home BORG_PASSCOMMAND='cat pw' borg create --timestamp 2026-12-01T02:00:00 repo::db-2026-12-01 data old",
    );
    archive(&ws, "db-2026-12-02", "2026-12-02T02:00:00");
    // Lose the old archive's only chunk of old.bin: every segment stays sound, so only a
    // check that reads that archive finds it.
    sh(
        &ws,
        "export BORG_BASE_DIR=$PWD/borg-home BORG_PASSCOMMAND='cat pw' && \
         borg debug delete-obj repo $(borg debug id-hash repo old/old.bin) >/dev/null",
    );
    config(&ws, "monitoring:\n  window_days: 2\n");
    // The damage's message (the old archive is larger than the rest: a size anomaly too).
    let damage = |doc: &serde_json::Value| -> String {
        let found = doc["problems"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["kind"] == "checksum_mismatch");
        found.unwrap_or_else(|| panic!("no damage found: {doc:#}"))["message"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let open_damage = |ws: &Workspace| -> i64 {
        ws.store_value(
            "SELECT COUNT(*) FROM problems WHERE kind = 'checksum_mismatch' AND resolved_at IS NULL",
        )
    };

    ws.now = Some(ts("2026-12-02T12:00:00Z"));
    let (_, doc) = ws.run_json(&["--monitor", "--verify"]);
    let message = damage(&doc);
    assert!(message.contains("newest 2 archives"), "{message}");
    assert!(message.contains("db-2026-12-01"), "{message}");

    // Two nights on, the damaged archive has left the window but is still there to
    // restore: the check reads every archive and the damage stays open.
    archive(&ws, "db-2026-12-03", "2026-12-03T02:00:00");
    archive(&ws, "db-2026-12-04", "2026-12-04T02:00:00");
    ws.now = Some(ts("2026-12-04T12:00:00Z"));
    let (_, doc) = ws.run_json(&["--monitor", "--verify"]);
    let message = damage(&doc);
    assert!(message.contains("every archive"), "{message}");
    assert!(message.contains("db-2026-12-01"), "{message}");
    assert_eq!(open_damage(&ws), 1);
    let resolved: i64 = ws.store_value("SELECT COUNT(*) FROM problems WHERE resolved_at IS NOT NULL AND kind = 'checksum_mismatch'");
    assert_eq!(resolved, 0, "the damage was never told resolved");

    // Repaired as the message says, the whole check passes and closes it; the next check
    // is the window's again.
    sh(
        &ws,
        "BORG_BASE_DIR=$PWD/borg-home BORG_PASSCOMMAND='cat pw' BORG_CHECK_I_KNOW_WHAT_I_AM_DOING=YES \
         borg check --repair repo 2>/dev/null",
    );
    ws.now = Some(ts("2026-12-04T13:00:00Z"));
    let (run, doc) = ws.run_json(&["--monitor", "--verify"]);
    assert!(
        !run.kinds().contains(&"checksum_mismatch".to_string()),
        "{doc:#}"
    );
    assert_eq!(open_damage(&ws), 0);
    let details = ws.store_column::<String>("SELECT detail FROM verifications ORDER BY id");
    assert_eq!(
        details.last().map(String::as_str),
        Some("borg check of the repository and every archive (damage was found before): no errors"),
        "{details:?}"
    );
    ws.now = Some(ts("2026-12-04T14:00:00Z"));
    ws.run_json(&["--verify"]);
    let details = ws.store_column::<String>("SELECT detail FROM verifications ORDER BY id");
    assert_eq!(
        details.last().map(String::as_str),
        Some("borg check of the repository and the newest 2 archives: no errors"),
    );
}
