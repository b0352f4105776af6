//! The README's first command on a copy of the shipped example: the sample generator
//! (`scripts/make-sample-backups`) and `config.example.yaml`, run end to end with the
//! whole workflow. The samples are dated relative to "now", so the run is repeated at a
//! time of day before the nightly jobs (00:30) and after them.

use crate::common;

use common::{Workspace, ts};
use std::path::Path;
use std::process::Command;

#[test]
fn the_readme_example_shows_its_problems_at_any_time_of_day() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let example = std::fs::read_to_string(root.join("config.example.yaml")).unwrap();
    for now in ["2026-11-22T00:30:00Z", "2026-11-22T13:45:00Z"] {
        let mut w = Workspace::new();
        w.now = Some(ts(now));
        w.write_config(&example);
        let made = Command::new(root.join("scripts/make-sample-backups"))
            .env("SAMPLE_OUT", w.path("examples/sample-backups"))
            .env(
                "SAMPLE_NOW",
                ts(now).format("%Y-%m-%d %H:%M:%S UTC").to_string(),
            )
            .output()
            .unwrap();
        assert!(
            made.status.success(),
            "{}",
            String::from_utf8_lossy(&made.stderr)
        );
        let (run, doc) = w.run_json(&[
            "--monitor",
            "--verify",
            "--test-restore",
            "--report",
            "--check-alerts",
        ]);
        // As the README says: CRITICAL on purpose, for one missing nightly dump and one
        // truncated archive (half the others' size), which pull the health down.
        assert_eq!(run.code, 2, "{now}: {}", run.stderr);
        let kinds = run.kinds();
        for kind in [
            "missing_backup",
            "archive_corrupt",
            "size_anomaly",
            "health_degraded",
        ] {
            assert!(kinds.iter().any(|k| k == kind), "{now}: {kinds:?}");
        }
        assert!(
            !kinds
                .iter()
                .any(|k| k == "checksum_mismatch" || k == "sidecar_mismatch"),
            "{now}: {kinds:?}"
        );
        assert_eq!(doc["locations"].as_array().unwrap().len(), 3, "{now}");
        let html = std::fs::read_to_string(w.path("reports/latest.html")).unwrap();
        for name in ["database_backup", "website_backup", "documents_backup"] {
            assert!(html.contains(name), "{now}: {name} not in the report");
        }
        assert!(w.path("reports/backup_monitor.prom").exists());
        if w.on_postgres() {
            let runs: i64 = w.store_value("SELECT COUNT(*) FROM runs");
            assert_eq!(runs, 1, "{now}: the run is recorded in the database");
        } else {
            assert!(w.path("var/backup_monitor.db").exists(), "{now}");
        }
    }
}
