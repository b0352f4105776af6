//! The rest of the second attack round, through the real binary: a full disk under the
//! store is not a damaged store, a damaged store names itself and the way out, secrets are
//! masked in every form a server may echo, operations that cannot be combined are
//! refused, messages never quote backup content, backups swapped for symbolic links after
//! the scan are not followed, and file names cannot forge log lines.
//! Results are described in docs/reliability.md.

use crate::common;

use chrono::{Duration, Utc};
use common::Workspace;
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

/// One location `a` over `backups/`, the store at `store/s.db`, no log file.
fn store_workspace() -> Workspace {
    let ws = Workspace::new();
    ws.write_config(
        "database_url: store/s.db\nbackups:\n  locations:\n    - name: a\n      path: backups\n\
         logging:\n  file: null\n",
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
    conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)").unwrap();
    let page_size: i64 = conn.query_row("PRAGMA page_size", [], |r| r.get(0)).unwrap();
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
            && (run.stderr.contains("damaged") || run.stderr.contains("not a backup-monitor database")),
        "{}",
        run.stderr
    );
}
