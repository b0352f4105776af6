//! The human summary on stdout: a table of locations, the problems worst first, and what
//! each operation did. Written for someone woken at 3 a.m.: short times relative to the
//! run ("13:00, 2h ago"), counts with the right noun, and colour only on a terminal that
//! wants it (never in a pipe, a file or a test; `NO_COLOR` turns it off).

use super::{human_age, human_bytes};
use crate::outcome::Outcome;
use crate::problem::{Operation, Severity, Status, one_line};
use crate::store::Verdict;
use chrono::{DateTime, FixedOffset, Offset as _};
use std::fmt::Write as _;
use std::io::IsTerminal as _;

/// How the summary is styled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Style {
    /// ANSI colours for status words.
    pub color: bool,
}

impl Style {
    /// Colour when stdout is a terminal, `NO_COLOR` is unset or empty and the terminal is
    /// not `dumb`.
    pub fn for_stdout() -> Style {
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        let dumb = std::env::var_os("TERM").is_some_and(|t| t == "dumb");
        Style {
            color: !no_color && !dumb && std::io::stdout().is_terminal(),
        }
    }

    fn paint(self, code: &str, text: &str) -> String {
        if self.color && !text.is_empty() {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_string()
        }
    }

    fn status(self, status: Status, text: &str) -> String {
        match status {
            Status::Ok => self.paint("32", text),
            Status::Warning => self.paint("33", text),
            Status::Critical => self.paint("1;31", text),
            Status::Unknown => self.paint("35", text),
        }
    }

    fn severity(self, severity: Severity, text: &str) -> String {
        match severity {
            Severity::Warning => self.status(Status::Warning, text),
            Severity::Critical => self.status(Status::Critical, text),
        }
    }

    fn verdict(self, verdict: Verdict, text: &str) -> String {
        match verdict {
            Verdict::Passed => self.status(Status::Ok, text),
            Verdict::Failed => self.status(Status::Critical, text),
            Verdict::Skipped => self.paint("2", text),
        }
    }
}

/// `1 location`, `2 locations`.
fn count(n: u64, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

/// A stored time, short and relative to the run: `13:00, 2h ago` the same day,
/// `2026-11-20 13:00, 1d 2h ago` before, the text itself when it is not a time.
fn when(t: &str, now: DateTime<FixedOffset>) -> String {
    let Ok(t) = DateTime::parse_from_rfc3339(t) else {
        return t.to_string();
    };
    let t = t.with_timezone(&now.timezone());
    let secs = (now - t).num_seconds();
    let clock = if t.date_naive() == now.date_naive() {
        t.format("%H:%M").to_string()
    } else {
        t.format("%Y-%m-%d %H:%M").to_string()
    };
    if secs < 0 {
        format!("{clock}, in {}", human_age(-secs))
    } else if secs < 60 {
        format!("{clock}, just now")
    } else {
        format!("{clock}, {} ago", human_age(secs))
    }
}

/// The human summary, coloured when stdout is a terminal that wants it.
pub fn render(doc: &Outcome) -> String {
    render_with(doc, Style::for_stdout())
}

/// The human summary: a table per location, then problems and per-operation counts.
pub fn render_with(doc: &Outcome, style: Style) -> String {
    let fleet = doc.is_fleet_view();
    // "Now" for relative times: the run's start, in the zone the document's times are in.
    let zone = doc
        .problems
        .first()
        .and_then(|p| DateTime::parse_from_rfc3339(&p.opened_at).ok())
        .map(|t| t.timezone())
        .or_else(|| {
            doc.locations
                .iter()
                .find_map(|l| l.latest_backup.as_ref())
                .and_then(|b| DateTime::parse_from_rfc3339(&b.timestamp).ok())
                .map(|t| t.timezone())
        })
        .unwrap_or_else(|| chrono::Utc.fix());
    let now = doc.started_at.with_timezone(&zone);
    let mut s = String::new();
    let mut head = vec![
        format!("backup-monitor {}", doc.version),
        doc.operations
            .iter()
            .map(|o| o.as_str())
            .collect::<Vec<_>>()
            .join(", "),
    ];
    if !doc.locations.is_empty() {
        head.push(count(doc.locations.len() as u64, "location"));
    }
    head.push(style.status(doc.status, doc.status.plugin_word()));
    let _ = writeln!(s, "{}", head.join(" · "));
    if let Some(e) = &doc.error {
        let _ = writeln!(s, "error: {e}");
        return s;
    }
    if !doc.locations.is_empty() {
        let rows: Vec<(Status, [String; 8])> = doc
            .locations
            .iter()
            .map(|l| {
                (
                    l.status,
                    [
                        // A fleet view names each location's host: host/name.
                        crate::outcome::location_label(fleet, &l.host, &l.name),
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
                            .map(|a| {
                                if a < 0 {
                                    "in the future".to_string()
                                } else {
                                    human_age(a)
                                }
                            })
                            .unwrap_or_else(|| "-".into()),
                        l.missing_slots.len().to_string(),
                    ],
                )
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
        for (_, r) in &rows {
            for (w, c) in widths.iter_mut().zip(r) {
                *w = (*w).max(c.chars().count());
            }
        }
        // Pad first, colour after, so escape codes never upset the columns.
        let line = |cells: Vec<&str>, status: Option<Status>| {
            cells
                .iter()
                .zip(&widths)
                .enumerate()
                .map(|(i, (c, w))| {
                    let padded = format!("{c:<w$}");
                    match status {
                        Some(st) if i == 1 => {
                            let trimmed = padded.trim_end();
                            let pad = &padded[trimmed.len()..];
                            format!("{}{pad}", style.status(st, trimmed))
                        }
                        _ => padded,
                    }
                })
                .collect::<Vec<_>>()
                .join("  ")
                .trim_end()
                .to_string()
        };
        let _ = writeln!(s, "\n{}", line(header.to_vec(), None));
        for (status, r) in &rows {
            let _ = writeln!(
                s,
                "{}",
                line(r.iter().map(String::as_str).collect(), Some(*status))
            );
        }
    }
    if let Some(h) = doc.overall_health {
        let _ = writeln!(s, "\nOverall health: {h:.2}");
    }
    if doc.problems.is_empty() {
        let _ = writeln!(s, "\nNo problems.");
    } else {
        let _ = writeln!(
            s,
            "\n{}, worst first:",
            count(doc.problems.len() as u64, "problem")
        );
        for p in &doc.problems {
            let mark = match (p.silenced, p.acknowledged) {
                (true, _) => " (silenced)",
                (false, true) => " (acknowledged)",
                (false, false) => "",
            };
            let word = format!("{:<8}", p.severity.as_str().to_uppercase());
            let trimmed = word.trim_end();
            let _ = writeln!(
                s,
                "  {}{} #{} {}{}{mark}: {}",
                style.severity(p.severity, trimmed),
                &word[trimmed.len()..],
                p.id,
                crate::outcome::location_prefix(fleet, &p.host, p.location.as_deref()),
                p.kind,
                one_line(&p.message)
            );
        }
    }
    if doc.ran(Operation::Verify) {
        let v = &doc.verification;
        let mut counts = format!(
            "{} checked, {} passed, {} failed, {} recorded at first sight",
            v.checked, v.passed, v.failed, v.recorded
        );
        let unjudged = v.checked.saturating_sub(v.passed + v.failed + v.recorded);
        if unjudged > 0 {
            counts.push_str(&format!(", {unjudged} could not be read"));
        }
        let _ = writeln!(
            s,
            "\nVerification: {counts}; {} hashed",
            human_bytes(v.bytes)
        );
        if v.recorded > 0 && v.passed + v.failed == 0 {
            let _ = writeln!(
                s,
                "  Their checksums are now recorded: the next --verify compares against them."
            );
        }
    }
    if doc.ran(Operation::TestRestore) {
        let r = &doc.restore_tests;
        let _ = writeln!(
            s,
            "\nRestore tests: {} tested: {} passed, {} failed, {} skipped",
            count(r.tested, "backup"),
            r.passed,
            r.failed,
            r.skipped
        );
        for res in &r.results {
            let word = format!("{:<7}", res.result.as_str().to_uppercase());
            let trimmed = word.trim_end();
            let _ = writeln!(
                s,
                "  {}{} {}/{} [{}] {}, {}{}",
                style.verdict(res.result, trimmed),
                &word[trimmed.len()..],
                res.location,
                one_line(&res.path),
                res.format,
                count(res.files, "file"),
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
            "\nAlerts: {} sent, {} repeated, {} resolved, {} suppressed, {}",
            a.sent,
            a.repeated,
            a.resolved,
            a.suppressed,
            count(a.delivery_failures, "delivery failure")
        );
    }
    if let Some(open) = doc.open_alerts.as_ref().filter(|a| !a.is_empty()) {
        let _ = writeln!(s, "\nOpen alerts ({}):", open.len());
        for a in open {
            let word = format!("{:<8}", a.severity.as_str().to_uppercase());
            let trimmed = word.trim_end();
            let _ = writeln!(
                s,
                "  {}{} {}{}: {} (open since {}; last sent {}{})",
                style.severity(a.severity, trimmed),
                &word[trimmed.len()..],
                crate::outcome::location_prefix(
                    fleet,
                    a.host.as_deref().unwrap_or_default(),
                    a.location.as_deref()
                ),
                a.kind,
                one_line(&a.message),
                when(&a.opened_at, now),
                a.last_sent_at
                    .as_deref()
                    .map_or_else(|| "never".to_string(), |t| when(t, now)),
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

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> DateTime<FixedOffset> {
        DateTime::parse_from_rfc3339("2026-11-21T13:00:00+01:00").unwrap()
    }

    #[test]
    fn times_are_short_and_relative() {
        assert_eq!(when("2026-11-21T08:00:00+01:00", now()), "08:00, 5h 0m ago");
        assert_eq!(
            when("2026-11-20T03:00:00Z", now()),
            "2026-11-20 04:00, 1d 9h ago"
        );
        assert_eq!(when("2026-11-21T13:00:20+01:00", now()), "13:00, in 0m");
        assert_eq!(when("2026-11-21T12:59:30+01:00", now()), "12:59, just now");
        assert_eq!(when("not a time", now()), "not a time");
    }

    #[test]
    fn nouns_agree_with_their_counts() {
        assert_eq!(count(1, "location"), "1 location");
        assert_eq!(count(0, "location"), "0 locations");
        assert_eq!(count(2, "delivery failure"), "2 delivery failures");
    }

    #[test]
    fn colour_only_when_asked() {
        let plain = Style { color: false };
        let tty = Style { color: true };
        assert_eq!(plain.status(Status::Critical, "CRITICAL"), "CRITICAL");
        assert_eq!(
            tty.status(Status::Critical, "CRITICAL"),
            "\x1b[1;31mCRITICAL\x1b[0m"
        );
        let mut doc = Outcome::new(now().to_utc(), vec![Operation::Monitor]);
        doc.status = Status::Critical;
        assert!(!render_with(&doc, plain).contains('\x1b'));
        assert!(render_with(&doc, tty).contains("\x1b[1;31mCRITICAL"));
    }
}
