//! SQL dumps replayed into scratch databases, through the real binary, as real dump
//! tools write them: PostgreSQL rows whose lines read like the statements a replay
//! leaves out.

use crate::common;

use chrono::{Duration, Utc};
use common::{Workspace, restore_result as result, set_mtime};
use serde_json::Value;
use std::process::Command;

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

fn assert_passed(doc: &Value, path: &str) -> String {
    let r = result(doc, path);
    assert_eq!(r["result"], "passed", "{path}: {r:#}");
    r["detail"].as_str().unwrap_or("").to_string()
}

#[test]
fn postgres_rows_whose_lines_read_like_left_out_statements_replay() {
    let Some((url, bin, _one_at_a_time)) = crate::restore::postgres() else {
        return;
    };
    let src = format!("bm_src_quoted_{}", std::process::id());
    let psql = |db_url: &str, sql: &str| {
        let out = Command::new(format!("{bin}/psql"))
            .args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", db_url, "-c", sql])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    psql(&url, &format!("DROP DATABASE IF EXISTS {src}"));
    psql(&url, &format!("CREATE DATABASE {src}"));
    let src_url = url
        .rsplit_once('/')
        .map(|(base, _)| format!("{base}/{src}"))
        .unwrap();
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
