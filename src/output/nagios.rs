//! The Nagios/Icinga plugin output: one status line with perfdata, then one line per
//! problem. Exit-3 documents carry their cause on the status line.

use crate::outcome::{Outcome, Thresholds};
use crate::problem::one_line;
use std::fmt::Write as _;

/// The Nagios/Icinga plugin output. `|` never appears in the text part.
pub fn render(doc: &Outcome) -> String {
    let clean = |t: &str| one_line(t).replace('|', "/");
    let word = doc.status.plugin_word();
    if let Some(e) = &doc.error {
        return format!("BACKUP UNKNOWN - {}\n", clean(e));
    }
    // Silenced problems are listed but do not count.
    let counted: Vec<_> = doc.problems.iter().filter(|p| !p.silenced).collect();
    let crit = counted
        .iter()
        .filter(|p| p.severity == crate::problem::Severity::Critical)
        .count();
    let warn = counted.len() - crit;
    let summary = if counted.is_empty() {
        format!("{} locations OK", doc.locations.len())
    } else {
        let first = &counted[0];
        format!(
            "{crit} critical, {warn} warning problems in {} locations; {} {}: {}",
            doc.locations.len(),
            first.location.as_deref().unwrap_or("-"),
            first.kind,
            clean(&first.message)
        )
    };
    let Thresholds { warning, critical } = doc.thresholds;
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
            "{}{} {} {}: {}",
            p.severity.as_str().to_uppercase(),
            if p.silenced { " (silenced)" } else { "" },
            p.location.as_deref().unwrap_or("-"),
            p.kind,
            clean(&p.message)
        );
    }
    out
}

/// `BACKUP UNKNOWN - <cause>`: the status line must carry the cause, so a message that
/// introduces its causes ("invalid config x.yaml:") takes the first one onto that line;
/// further lines follow as the plugin's long output. `|` would start perfdata.
pub fn unknown(message: &str) -> String {
    let mut lines = message.lines().map(|l| l.trim().replace('|', "/"));
    let mut status = lines.next().unwrap_or_default();
    if status.ends_with(':')
        && let Some(cause) = lines.next()
    {
        status = format!("{status} {cause}");
    }
    let mut out = format!("BACKUP UNKNOWN - {status}\n");
    for line in lines.filter(|l| !l.is_empty()) {
        out.push_str(&line);
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outcome::LocationSummary;
    use crate::problem::{Kind, Operation, Problem, Severity, Status};

    #[test]
    fn nagios_line_has_perfdata_per_location() {
        let mut doc = Outcome::new(chrono::Utc::now(), vec![Operation::Monitor]);
        doc.locations.push(LocationSummary {
            id: 1,
            name: "db".into(),
            kind: crate::config::LocationType::Database,
            status: Status::Critical,
            health_score: Some(0.5),
            backups_present: 3,
            new_backups: 0,
            latest_backup: None,
            latest_backup_age_seconds: Some(3600),
            missing_slots: vec!["2026-11-20T02:00:00+01:00".parse().unwrap()],
        });
        doc.problems.push(crate::outcome::OpenProblem::unstored(
            Problem::new(Kind::MissingBackup, Severity::Critical, "db", "gone | away"),
            chrono::Utc::now(),
        ));
        doc.set_status(Status::Critical);
        let out = render(&doc);
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
}
