//! What a run prints on stdout: the JSON document, a compact human summary, or a
//! Nagios plugin line with perfdata. The document is assembled by `cli` from the
//! operations' results; rendering here never touches the store.

use crate::problem::{Problem, one_line, status_word};
use chrono::{DateTime, Utc};
use serde::Serialize;
use std::fmt::Write as _;

#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct VerificationSummary {
    pub checked: u64,
    pub passed: u64,
    pub failed: u64,
    pub bytes: u64,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct RestoreResult {
    pub location: String,
    pub path: String,
    pub format: String,
    /// `passed | failed | skipped`
    pub result: String,
    pub files: u64,
    pub bytes: u64,
    pub detail: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct RestoreSummary {
    pub tested: u64,
    pub passed: u64,
    pub failed: u64,
    pub skipped: u64,
    pub results: Vec<RestoreResult>,
}

#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct AlertSummary {
    pub sent: u64,
    pub repeated: u64,
    pub resolved: u64,
    pub suppressed: u64,
    pub delivery_failures: u64,
}

/// An alert whose problem is still open (`--status`, field `open_alerts`).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct OpenAlert {
    pub kind: String,
    pub severity: String,
    pub location: Option<String>,
    pub path: Option<String>,
    pub slot: Option<String>,
    pub message: String,
    pub opened_at: String,
    pub last_sent_at: Option<String>,
    /// Successful deliveries, all channels together.
    pub deliveries: u32,
    /// Channels whose last attempt failed (retried next run).
    pub failing_channels: Vec<String>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct LatestBackup {
    pub path: String,
    pub timestamp: String,
    pub size: u64,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct LocationSummary {
    pub id: i64,
    pub name: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub status: String,
    pub health_score: Option<f64>,
    pub backups_present: u64,
    pub new_backups: u64,
    pub latest_backup: Option<LatestBackup>,
    /// Seconds since the newest backup's timestamp.
    pub latest_backup_age_seconds: Option<i64>,
    pub missing_slots: Vec<String>,
}

/// The one JSON document of `--format json`.
#[derive(Debug, Clone, Serialize)]
pub struct RunDocument {
    pub version: String,
    pub started_at: String,
    pub finished_at: String,
    pub status: String,
    pub exit_code: i32,
    pub operations: Vec<String>,
    pub overall_health: Option<f64>,
    pub locations: Vec<LocationSummary>,
    pub problems: Vec<Problem>,
    pub verification: VerificationSummary,
    pub restore_tests: RestoreSummary,
    pub alerts: AlertSummary,
    /// Only `--status`: alerts whose problem is still open.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub open_alerts: Option<Vec<OpenAlert>>,
    pub reports: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Thresholds, for the Nagios perfdata (not part of the JSON contract).
    #[serde(skip)]
    pub thresholds: (f64, f64),
}

impl RunDocument {
    pub fn new(started_at: DateTime<Utc>, operations: Vec<String>) -> RunDocument {
        let t = started_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        RunDocument {
            version: env!("CARGO_PKG_VERSION").to_string(),
            started_at: t.clone(),
            finished_at: t,
            status: "ok".into(),
            exit_code: 0,
            operations,
            overall_health: None,
            locations: Vec::new(),
            problems: Vec::new(),
            verification: VerificationSummary::default(),
            restore_tests: RestoreSummary::default(),
            alerts: AlertSummary::default(),
            open_alerts: None,
            reports: Vec::new(),
            error: None,
            thresholds: (0.8, 0.5),
        }
    }

    /// A document for a run that could not judge (exit 3).
    pub fn unknown(started_at: DateTime<Utc>, operations: Vec<String>, error: &str) -> RunDocument {
        let mut doc = RunDocument::new(started_at, operations);
        doc.set_exit(3);
        doc.error = Some(error.to_string());
        doc
    }

    pub fn set_exit(&mut self, code: i32) {
        self.exit_code = code;
        self.status = status_word(code).to_string();
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_else(|e| {
            format!(
                "{{\"status\":\"unknown\",\"exit_code\":3,\"error\":{:?}}}",
                e.to_string()
            )
        })
    }
}

fn human_bytes(n: u64) -> String {
    bytesize::ByteSize(n).display().iec().to_string()
}

pub fn human_age(secs: i64) -> String {
    if secs < 0 {
        return "in the future".into();
    }
    let (d, h, m) = (secs / 86400, (secs % 86400) / 3600, (secs % 3600) / 60);
    if d > 0 {
        format!("{d}d {h}h")
    } else if h > 0 {
        format!("{h}h {m}m")
    } else {
        format!("{m}m")
    }
}

/// The human summary: a table per location, then problems and per-operation counts.
pub fn render_text(doc: &RunDocument) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "backup-monitor {} · {} · {}",
        doc.version,
        doc.operations.join(", "),
        doc.status.to_uppercase()
    );
    if let Some(e) = &doc.error {
        let _ = writeln!(s, "error: {e}");
        return s;
    }
    if !doc.locations.is_empty() {
        let rows: Vec<[String; 8]> = doc
            .locations
            .iter()
            .map(|l| {
                [
                    l.name.clone(),
                    l.status.to_uppercase(),
                    l.health_score
                        .map(|h| format!("{h:.2}"))
                        .unwrap_or_else(|| "-".into()),
                    l.backups_present.to_string(),
                    l.new_backups.to_string(),
                    l.latest_backup
                        .as_ref()
                        .map(|b| one_line(&b.path).into_owned())
                        .unwrap_or_else(|| "-".into()),
                    l.latest_backup_age_seconds
                        .map(human_age)
                        .unwrap_or_else(|| "-".into()),
                    l.missing_slots.len().to_string(),
                ]
            })
            .collect();
        let header = [
            "LOCATION",
            "STATUS",
            "HEALTH",
            "PRESENT",
            "NEW",
            "LAST BACKUP",
            "AGE",
            "MISSING",
        ];
        let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
        for r in &rows {
            for (w, c) in widths.iter_mut().zip(r) {
                *w = (*w).max(c.chars().count());
            }
        }
        let line = |cells: Vec<&str>| {
            cells
                .iter()
                .zip(&widths)
                .map(|(c, w)| format!("{c:<w$}"))
                .collect::<Vec<_>>()
                .join("  ")
                .trim_end()
                .to_string()
        };
        let _ = writeln!(s, "\n{}", line(header.to_vec()));
        for r in &rows {
            let _ = writeln!(s, "{}", line(r.iter().map(String::as_str).collect()));
        }
    }
    if let Some(h) = doc.overall_health {
        let _ = writeln!(s, "\nOverall health: {h:.2}");
    }
    if doc.problems.is_empty() {
        let _ = writeln!(s, "\nNo problems.");
    } else {
        let _ = writeln!(s, "\nProblems ({}):", doc.problems.len());
        for p in &doc.problems {
            let _ = writeln!(
                s,
                "  {:<8} {} {}: {}",
                p.severity.as_str().to_uppercase(),
                p.location.as_deref().unwrap_or("-"),
                p.kind,
                p.message
            );
        }
    }
    let ops = &doc.operations;
    if ops.iter().any(|o| o == "verify") {
        let v = &doc.verification;
        let _ = writeln!(
            s,
            "\nVerification: {} checked, {} passed, {} failed, {} hashed",
            v.checked,
            v.passed,
            v.failed,
            human_bytes(v.bytes)
        );
    }
    if ops.iter().any(|o| o == "test-restore") {
        let r = &doc.restore_tests;
        let _ = writeln!(
            s,
            "\nRestore tests: {} tested, {} passed, {} failed, {} skipped",
            r.tested, r.passed, r.failed, r.skipped
        );
        for res in &r.results {
            let _ = writeln!(
                s,
                "  {:<7} {}/{} [{}] {} files, {}{}",
                res.result.to_uppercase(),
                res.location,
                one_line(&res.path),
                res.format,
                res.files,
                human_bytes(res.bytes),
                res.detail
                    .as_deref()
                    .map(|d| format!(" — {}", one_line(d)))
                    .unwrap_or_default()
            );
        }
    }
    if ops.iter().any(|o| o == "check-alerts") {
        let a = &doc.alerts;
        let _ = writeln!(
            s,
            "\nAlerts: {} sent, {} repeated, {} resolved, {} suppressed, {} delivery failures",
            a.sent, a.repeated, a.resolved, a.suppressed, a.delivery_failures
        );
    }
    if let Some(open) = doc.open_alerts.as_ref().filter(|a| !a.is_empty()) {
        let _ = writeln!(s, "\nOpen alerts ({}):", open.len());
        for a in open {
            let _ = writeln!(
                s,
                "  {:<8} {} {}: {} (since {}, last sent {}{})",
                a.severity.to_uppercase(),
                a.location.as_deref().unwrap_or("-"),
                a.kind,
                a.message,
                a.opened_at,
                a.last_sent_at.as_deref().unwrap_or("never"),
                if a.failing_channels.is_empty() {
                    String::new()
                } else {
                    format!("; failing: {}", a.failing_channels.join(", "))
                }
            );
        }
    }
    if !doc.reports.is_empty() {
        let _ = writeln!(s, "\nReports:");
        for r in &doc.reports {
            let _ = writeln!(s, "  {r}");
        }
    }
    s
}

/// The Nagios/Icinga plugin output. `|` never appears in the text part.
pub fn render_nagios(doc: &RunDocument) -> String {
    let clean = |t: &str| one_line(t).replace('|', "/");
    let word = doc.status.to_uppercase();
    if let Some(e) = &doc.error {
        return format!("BACKUP UNKNOWN - {}\n", clean(e));
    }
    let crit = doc
        .problems
        .iter()
        .filter(|p| p.severity == crate::problem::Severity::Critical)
        .count();
    let warn = doc.problems.len() - crit;
    let summary = if doc.problems.is_empty() {
        format!("{} locations OK", doc.locations.len())
    } else {
        let first = &doc.problems[0];
        format!(
            "{crit} critical, {warn} warning problems in {} locations; {} {}: {}",
            doc.locations.len(),
            first.location.as_deref().unwrap_or("-"),
            first.kind,
            clean(&first.message)
        )
    };
    let (warning, critical) = doc.thresholds;
    let mut perf = Vec::new();
    for l in &doc.locations {
        let label = l.name.replace('\'', "''");
        match l.latest_backup_age_seconds {
            Some(age) => perf.push(format!("'{label}_age'={}s;;;0", age.max(0))),
            None => perf.push(format!("'{label}_age'=U;;;0")),
        }
        match l.health_score {
            Some(h) => perf.push(format!(
                "'{label}_health'={h:.3};{warning}:;{critical}:;0;1"
            )),
            None => perf.push(format!("'{label}_health'=U;{warning}:;{critical}:;0;1")),
        }
        perf.push(format!("'{label}_missing'={};;;0", l.missing_slots.len()));
    }
    let mut out = format!("BACKUP {word} - {summary} | {}\n", perf.join(" "));
    for p in &doc.problems {
        let _ = writeln!(
            out,
            "{} {} {}: {}",
            p.severity.as_str().to_uppercase(),
            p.location.as_deref().unwrap_or("-"),
            p.kind,
            clean(&p.message)
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::problem::{Kind, Severity};

    #[test]
    fn nagios_line_has_perfdata_per_location() {
        let mut doc = RunDocument::new(Utc::now(), vec!["monitor".into()]);
        doc.locations.push(LocationSummary {
            id: 1,
            name: "db".into(),
            kind: "database".into(),
            status: "critical".into(),
            health_score: Some(0.5),
            backups_present: 3,
            new_backups: 0,
            latest_backup: None,
            latest_backup_age_seconds: Some(3600),
            missing_slots: vec!["x".into()],
        });
        doc.problems.push(Problem::new(
            Kind::MissingBackup,
            Severity::Critical,
            "db",
            "gone | away",
        ));
        doc.set_exit(2);
        let out = render_nagios(&doc);
        let first = out.lines().next().unwrap();
        assert!(
            first.starts_with("BACKUP CRITICAL - 1 critical, 0 warning"),
            "{first}"
        );
        let (text, perf) = first.split_once(" | ").unwrap();
        assert!(!text.contains('|'));
        assert!(perf.contains("'db_age'=3600s;;;0"), "{perf}");
        assert!(perf.contains("'db_health'=0.500;0.8:;0.5:;0;1"), "{perf}");
        assert!(perf.contains("'db_missing'=1;;;0"), "{perf}");
        assert!(out.lines().nth(1).unwrap().contains("missing_backup"));
    }

    #[test]
    fn human_age_units() {
        assert_eq!(human_age(59), "0m");
        assert_eq!(human_age(3700), "1h 1m");
        assert_eq!(human_age(90000), "1d 1h");
    }
}
