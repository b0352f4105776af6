//! The Prometheus textfile (node_exporter textfile collector format): gauges per
//! location with HELP and TYPE lines, and the unlabelled time of the run. Failure gauges
//! count over the report window.

use super::data::{LocationReport, ReportData};
use super::{Edition, Exporter};
use anyhow::Result;
use std::fmt::Write as _;

pub struct PrometheusExporter;

type Value = fn(&LocationReport) -> Option<f64>;

/// (name, help, value per location); a location without a value gets no sample.
const METRICS: &[(&str, &str, Value)] = &[
    (
        "backup_monitor_last_backup_timestamp_seconds",
        "Unix time of the newest present backup.",
        |l| l.latest_backup_unix.map(|t| t as f64),
    ),
    (
        "backup_monitor_last_backup_size_bytes",
        "Size in bytes of the newest present backup.",
        |l| l.latest_backup.as_ref().map(|b| b.size as f64),
    ),
    (
        "backup_monitor_backups_present",
        "Backups of the location present on disk, whatever their age.",
        |l| Some(l.backups_present as f64),
    ),
    (
        "backup_monitor_missing_slots",
        "Due schedule slots without a backup (open missing_backup problems).",
        |l| Some(l.missing_slots.len() as f64),
    ),
    (
        "backup_monitor_health_score",
        "Health score in [0, 1] over the report window; absent when nothing was measured.",
        |l| l.health_score,
    ),
    (
        "backup_monitor_verification_failures",
        "Verifications that failed or errored in the report window.",
        |l| Some(l.verification_failures as f64),
    ),
    (
        "backup_monitor_restore_test_failures",
        "Restore tests that failed in the report window.",
        |l| Some(l.restore_test_failures as f64),
    ),
    (
        "backup_monitor_open_problems",
        "Open problems of the location.",
        |l| Some(l.open_problems as f64),
    ),
    (
        "backup_monitor_disk_free_bytes",
        "Free bytes on the location's filesystem at the last --monitor.",
        |l| l.disk.as_ref().map(|d| d.free_bytes as f64),
    ),
    (
        "backup_monitor_backups_until_full",
        "Further backups that fit above min_free_space at the recent size trend.",
        |l| l.forecast.as_ref().map(|f| f.backups_fit as f64),
    ),
];

/// A label value escaped as the exposition format requires.
pub fn escape_label(v: &str) -> String {
    v.replace('\\', r"\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

impl Exporter for PrometheusExporter {
    fn extension(&self) -> &'static str {
        "prom"
    }

    fn render(&self, report: &ReportData, _: Edition) -> Result<Vec<u8>> {
        let mut out = String::new();
        for (name, help, value) in METRICS {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge");
            for l in &report.locations {
                if let Some(v) = value(l) {
                    let _ = writeln!(out, "{name}{{location=\"{}\"}} {v}", escape_label(&l.name));
                }
            }
        }
        let name = "backup_monitor_last_run_timestamp_seconds";
        let _ = writeln!(
            out,
            "# HELP {name} Unix time of the run that wrote this file.\n# TYPE {name} gauge\n{name} {}",
            report.generated_unix
        );
        Ok(out.into_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_escaped() {
        assert_eq!(escape_label("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
