//! The Nagios/Icinga plugin output: one status line with perfdata, then one line per
//! problem, worst first. The whole output stays within 4 KiB (what Nagios Core keeps of
//! a plugin's output): the status line and perfdata first, then as many problem lines
//! as fit, then `… and N more`. Exit-3 documents carry their cause on the status line.

use crate::outcome::{OpenProblem, Outcome, Thresholds};
use crate::problem::{Severity, one_line};

/// The most a plugin's output may take, in bytes.
pub const MAX_OUTPUT: usize = 4096;
/// Room kept for the `… and N more` line.
const MORE_LINE: usize = 32;
/// The longest status text before the perfdata (a long first message is shortened).
const MAX_STATUS: usize = 1024;

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// `1 critical, 0 warning problem`, `0 critical, 2 warning problems`.
fn tally(problems: &[&OpenProblem]) -> String {
    let crit = problems
        .iter()
        .filter(|p| p.severity == Severity::Critical)
        .count();
    let noun = if problems.len() == 1 {
        "problem"
    } else {
        "problems"
    };
    format!("{crit} critical, {} warning {noun}", problems.len() - crit)
}

/// At most `max` bytes of `text`, cut at a word boundary and marked with `…`.
fn shorten(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    let mut end = max.saturating_sub('…'.len_utf8());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let cut = &text[..end];
    let cut = cut.rfind(' ').map_or(cut, |i| &cut[..i]);
    format!("{}…", cut.trim_end())
}

/// The Nagios/Icinga plugin output. `|` never appears in the text part.
pub fn render(doc: &Outcome) -> String {
    let fleet = doc.is_fleet_view();
    let clean = |t: &str| one_line(t).replace('|', "/");
    let word = doc.status.plugin_word();
    if let Some(e) = &doc.error {
        let line = format!("BACKUP UNKNOWN - {}", clean(e));
        return format!("{}\n", shorten(&line, MAX_OUTPUT - 1));
    }
    // Silenced problems are listed but do not count.
    let counted: Vec<_> = doc.problems.iter().filter(|p| !p.silenced).collect();
    let locations = plural(doc.locations.len(), "location", "locations");
    // Problems of the run itself (`alert_delivery_failed`) are in no location: they are
    // counted apart, never as a location's.
    let (located, of_run): (Vec<&OpenProblem>, Vec<&OpenProblem>) =
        counted.iter().copied().partition(|p| p.location.is_some());
    let summary = match counted.first() {
        None => format!("{locations} OK"),
        Some(first) => {
            let counts = match (located.is_empty(), of_run.is_empty()) {
                (false, true) => format!("{} in {locations}", tally(&located)),
                (false, false) => format!(
                    "{} in {locations} and {} of backup-monitor itself",
                    tally(&located),
                    tally(&of_run)
                ),
                (true, _) => format!(
                    "{} of backup-monitor itself, {locations} OK",
                    tally(&of_run)
                ),
            };
            format!(
                "{counts}; {}{}: {}",
                crate::outcome::location_prefix(fleet, &first.host, first.location.as_deref()),
                first.kind,
                clean(&first.message)
            )
        }
    };
    let status = shorten(&format!("BACKUP {word} - {summary}"), MAX_STATUS);
    let Thresholds { warning, critical } = doc.thresholds;
    let mut perf = Vec::new();
    for l in &doc.locations {
        // A fleet view's series are per host: one host's must not overwrite another's.
        let label = crate::outcome::location_label(fleet, &l.host, &l.name).replace('\'', "''");
        let (w, c) = l
            .age_thresholds
            .map(|(w, c)| (w.to_string(), c.to_string()))
            .unwrap_or_default();
        match l.latest_backup_age_seconds {
            Some(age) => perf.push(format!("'{label}_age'={}s;{w};{c};0", age.max(0))),
            None => perf.push(format!("'{label}_age'=U;{w};{c};0")),
        }
        match l.health_score {
            Some(h) => perf.push(format!(
                "'{label}_health'={h:.3};{warning}:;{critical}:;0;1"
            )),
            None => perf.push(format!("'{label}_health'=U;{warning}:;{critical}:;0;1")),
        }
        perf.push(format!("'{label}_missing'={};;;0", l.missing_slots.len()));
    }
    // The status line first; perfdata as long as it fits (whole values only).
    let mut out = format!("{status} |");
    for p in &perf {
        if out.len() + 1 + p.len() + 1 + MORE_LINE > MAX_OUTPUT {
            break;
        }
        out.push(' ');
        out.push_str(p);
    }
    if out.ends_with(" |") {
        out.truncate(out.len() - 2);
    }
    out.push('\n');
    let lines: Vec<String> = doc
        .problems
        .iter()
        .map(|p| {
            format!(
                "{}{} {}{}: {}\n",
                p.severity.as_str().to_uppercase(),
                if p.silenced { " (silenced)" } else { "" },
                crate::outcome::location_prefix(fleet, &p.host, p.location.as_deref()),
                p.kind,
                clean(&p.message)
            )
        })
        .collect();
    let mut shown = 0;
    for (i, line) in lines.iter().enumerate() {
        let last = i + 1 == lines.len();
        let reserve = if last { 0 } else { MORE_LINE };
        if out.len() + line.len() + reserve > MAX_OUTPUT {
            break;
        }
        out.push_str(line);
        shown += 1;
    }
    if shown < lines.len() {
        out.push_str(&format!("… and {} more\n", lines.len() - shown));
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
            host: String::new(),
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
            age_thresholds: Some((97_200, 183_600)),
            last_checked: None,
        });
        doc.problems.push(crate::outcome::OpenProblem::unstored(
            Problem::new(Kind::MissingBackup, Severity::Critical, "db", "gone | away"),
            chrono::Utc::now(),
        ));
        doc.set_status(Status::Critical);
        let out = render(&doc);
        let first = out.lines().next().unwrap();
        assert!(
            first.starts_with("BACKUP CRITICAL - 1 critical, 0 warning problem in 1 location; "),
            "{first}"
        );
        let (text, perf) = first.split_once(" | ").unwrap();
        assert!(!text.contains('|'));
        assert!(perf.contains("'db_age'=3600s;97200;183600;0"), "{perf}");
        assert!(perf.contains("'db_health'=0.500;0.8:;0.5:;0;1"), "{perf}");
        assert!(perf.contains("'db_missing'=1;;;0"), "{perf}");
        assert!(out.lines().nth(1).unwrap().contains("missing_backup"));
    }

    fn location(name: &str) -> LocationSummary {
        LocationSummary {
            host: String::new(),
            id: 1,
            name: name.into(),
            kind: crate::config::LocationType::Database,
            status: Status::Critical,
            health_score: Some(0.5),
            backups_present: 3,
            new_backups: 0,
            latest_backup: None,
            latest_backup_age_seconds: Some(3600),
            missing_slots: Vec::new(),
            age_thresholds: None,
            last_checked: None,
        }
    }

    #[test]
    fn output_stays_within_4_kib_with_whole_lines_and_says_how_many_more() {
        let mut doc = Outcome::new(chrono::Utc::now(), vec![Operation::Monitor]);
        for i in 0..5 {
            doc.locations.push(location(&format!("loc{i}")));
        }
        for i in 0..300 {
            doc.problems.push(crate::outcome::OpenProblem::unstored(
                Problem::new(
                    Kind::MissingBackup,
                    Severity::Critical,
                    "loc1",
                    format!("no backup for the daily slot number {i} starting 2026-11-19 02:00"),
                ),
                chrono::Utc::now(),
            ));
        }
        doc.set_status(Status::Critical);
        let out = render(&doc);
        assert!(out.len() <= MAX_OUTPUT, "{} bytes", out.len());
        let lines: Vec<&str> = out.lines().collect();
        assert!(
            lines[0].contains("'loc4_missing'=0;;;0"),
            "all perfdata kept"
        );
        let shown = lines
            .iter()
            .filter(|l| l.starts_with("CRITICAL loc1"))
            .count();
        assert!(shown > 20, "as many lines as fit: {shown}");
        assert_eq!(
            lines.last().unwrap(),
            &format!("… and {} more", 300 - shown)
        );
        assert!(
            lines[1..lines.len() - 1]
                .iter()
                .all(|l| l.ends_with("02:00"))
        );

        // Many locations: the perfdata itself is cut at whole values.
        let mut doc = Outcome::new(chrono::Utc::now(), vec![Operation::Monitor]);
        for i in 0..200 {
            doc.locations
                .push(location(&format!("a_rather_long_location_name_{i}")));
        }
        let out = render(&doc);
        assert!(out.len() <= MAX_OUTPUT, "{} bytes", out.len());
        assert!(out.starts_with("BACKUP OK - 200 locations OK | "), "{out}");
        assert!(
            out.trim_end().ends_with(";;;0") || out.trim_end().ends_with(";0;1"),
            "{out}"
        );
    }

    #[test]
    fn a_problem_of_the_run_is_in_no_location() {
        let run_problem = || {
            let mut p = Problem::new(Kind::AlertDeliveryFailed, Severity::Warning, "x", "down");
            p.location = None;
            crate::outcome::OpenProblem::unstored(p, chrono::Utc::now())
        };
        let mut doc = Outcome::new(chrono::Utc::now(), vec![Operation::Status]);
        doc.locations.push(location("db"));
        doc.problems.push(run_problem());
        doc.set_status(Status::Warning);
        let out = render(&doc);
        assert!(
            out.starts_with(
                "BACKUP WARNING - 0 critical, 1 warning problem of backup-monitor itself, 1 location OK; alert_delivery_failed: down | "
            ),
            "{out}"
        );
        assert_eq!(
            out.lines().nth(1),
            Some("WARNING alert_delivery_failed: down")
        );

        doc.problems.insert(
            0,
            crate::outcome::OpenProblem::unstored(
                Problem::new(Kind::NoBackups, Severity::Critical, "db", "none"),
                chrono::Utc::now(),
            ),
        );
        doc.set_status(Status::Critical);
        let first = render(&doc).lines().next().unwrap_or_default().to_string();
        assert!(
            first.starts_with(
                "BACKUP CRITICAL - 1 critical, 0 warning problem in 1 location and 0 critical, 1 warning problem of backup-monitor itself; db no_backups: none | "
            ),
            "{first}"
        );
    }

    #[test]
    fn one_location_and_one_problem_are_singular() {
        let mut doc = Outcome::new(chrono::Utc::now(), vec![Operation::Monitor]);
        doc.locations.push(location("db"));
        assert!(render(&doc).starts_with("BACKUP OK - 1 location OK | "));
        assert_eq!(
            shorten("alpha beta gamma", 12),
            "alpha…",
            "cut at a word, the mark counted in bytes"
        );
    }
}
