//! The human summary on stdout: a table of locations, the problems worst first, and what
//! each operation did.

use super::{human_age, human_bytes};
use crate::outcome::Outcome;
use crate::problem::{Operation, one_line};
use std::fmt::Write as _;

/// The human summary: a table per location, then problems and per-operation counts.
pub fn render(doc: &Outcome) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "backup-monitor {} · {} · {}",
        doc.version,
        doc.operations
            .iter()
            .map(|o| o.as_str())
            .collect::<Vec<_>>()
            .join(", "),
        doc.status.plugin_word()
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
                    l.status.plugin_word().to_string(),
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
            let mark = match (p.silenced, p.acknowledged) {
                (true, _) => " (silenced)",
                (false, true) => " (acknowledged)",
                (false, false) => "",
            };
            let _ = writeln!(
                s,
                "  {:<8} #{} {} {}{mark}: {}",
                p.severity.as_str().to_uppercase(),
                p.id,
                p.location.as_deref().unwrap_or("-"),
                p.kind,
                p.message
            );
        }
    }
    if doc.ran(Operation::Verify) {
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
    if doc.ran(Operation::TestRestore) {
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
                res.result.as_str().to_uppercase(),
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
    if doc.ran(Operation::CheckAlerts) {
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
                a.severity.as_str().to_uppercase(),
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
            let _ = writeln!(s, "  {}", r.display());
        }
    }
    s
}
