//! One run's alerts for one channel as one digest: a subject like
//! `[backup-monitor] CRITICAL: 2 new, 1 resolved on host`, then the alerts grouped by
//! location, each line saying what is wrong, since when, and what to check, and each
//! location with the last lines this run logged about it. Channels render this; they
//! never decide what goes in it.

use super::Event;
use crate::output::human_age;
use crate::problem::{Kind, Severity, one_line};
use crate::store::AlertRow;
use chrono::{DateTime, Utc};
use serde::Serialize;

/// Log lines shown per location.
pub const LOG_LINES: usize = 10;

/// What one message says about one alert.
#[derive(Debug, Clone)]
pub struct Notice {
    pub event: Event,
    pub alert: AlertRow,
    /// When the problem was first seen.
    pub since: DateTime<Utc>,
    pub resolved_at: Option<DateTime<Utc>>,
    /// The severity this channel was last told, for an escalation.
    pub previous_severity: Option<Severity>,
    /// For a resolved `missing_backup`: slots missed at its location meanwhile.
    pub missed_slots: Option<u32>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Line {
    /// The stored alert this line is about (not part of any payload).
    #[serde(skip)]
    pub alert_id: i64,
    pub event: Event,
    pub kind: Kind,
    pub severity: Severity,
    pub previous_severity: Option<Severity>,
    pub location: Option<String>,
    pub path: Option<String>,
    pub slot: Option<crate::problem::SlotStart>,
    pub message: String,
    /// RFC 3339, in the configured zone.
    pub since: String,
    pub resolved_at: Option<String>,
    /// Open for (until now, or until resolved), in seconds.
    pub duration_seconds: i64,
    pub missed_slots: Option<u32>,
    /// What to check.
    pub hint: String,
    /// The whole line for a human.
    pub text: String,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Group {
    /// None: problems of the run itself (e.g. `alert_delivery_failed`).
    pub location: Option<String>,
    pub title: String,
    /// `critical | warning | resolved`: the worst still-open alert of the group.
    pub status: String,
    pub alerts: Vec<Line>,
    /// The last lines this run logged for the location.
    pub log: Vec<String>,
}

#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Counts {
    pub new: usize,
    pub escalated: usize,
    pub repeated: usize,
    pub resolved: usize,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Digest {
    pub subject: String,
    pub host: String,
    /// `critical | warning | resolved`
    pub status: String,
    pub generated_at: String,
    pub counts: Counts,
    pub groups: Vec<Group>,
}

/// How times are shown: the configured zone.
pub struct Clock {
    pub now: DateTime<Utc>,
    pub tz: chrono_tz::Tz,
}

impl Clock {
    fn rfc3339(&self, t: DateTime<Utc>) -> String {
        t.with_timezone(&self.tz)
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, false)
    }

    fn short(&self, t: DateTime<Utc>) -> String {
        t.with_timezone(&self.tz)
            .format("%Y-%m-%d %H:%M %:z")
            .to_string()
    }
}

impl Digest {
    /// Group `notices` by location (run-level last) and word the subject.
    pub fn build(
        notices: &[Notice],
        host: &str,
        clock: &Clock,
        log_of: &dyn Fn(&str) -> Vec<String>,
    ) -> Digest {
        let mut counts = Counts::default();
        for n in notices {
            match n.event {
                Event::Open => counts.new += 1,
                Event::Escalation => counts.escalated += 1,
                Event::Repeat => counts.repeated += 1,
                Event::Resolved => counts.resolved += 1,
            }
        }
        let mut locations: Vec<Option<String>> = notices
            .iter()
            .map(|n| n.alert.problem.location.clone())
            .collect();
        // Named locations alphabetically, then the run's own problems.
        locations.sort_by_key(|l| (l.is_none(), l.clone()));
        locations.dedup();
        let groups: Vec<Group> = locations
            .into_iter()
            .map(|location| {
                let mut members: Vec<&Notice> = notices
                    .iter()
                    .filter(|n| n.alert.problem.location == location)
                    .collect();
                members.sort_by(|a, b| {
                    let key = |n: &Notice| {
                        (
                            n.event == Event::Resolved,
                            std::cmp::Reverse(n.alert.problem.severity),
                            n.alert.problem.kind,
                            n.alert.problem.path.clone(),
                        )
                    };
                    // Slots by the instant they name (DST days), not as text.
                    key(a)
                        .cmp(&key(b))
                        .then_with(|| a.alert.problem.slot.cmp(&b.alert.problem.slot))
                });
                let alerts: Vec<Line> = members.iter().map(|n| line(n, clock)).collect();
                Group {
                    title: location
                        .clone()
                        .unwrap_or_else(|| "backup-monitor itself".into()),
                    status: status_of(&alerts).to_string(),
                    log: location.as_deref().map(log_of).unwrap_or_default(),
                    location,
                    alerts,
                }
            })
            .collect();
        let all: Vec<Line> = groups.iter().flat_map(|g| g.alerts.clone()).collect();
        let status = status_of(&all);
        Digest {
            subject: subject(status, &counts, host),
            host: host.to_string(),
            status: status.to_string(),
            generated_at: clock.rfc3339(clock.now),
            counts,
            groups,
        }
    }

    /// Every line of every group, in order.
    pub fn lines(&self) -> impl Iterator<Item = &Line> {
        self.groups.iter().flat_map(|g| g.alerts.iter())
    }

    /// The digest as plain text (log and fallback renderings).
    pub fn plain_text(&self) -> String {
        let mut out = format!("{}\n", self.subject);
        for g in &self.groups {
            out.push_str(&format!("\n{} ({}):\n", g.title, g.status.to_uppercase()));
            for l in &g.alerts {
                out.push_str(&format!("  {}\n", l.text));
            }
            if !g.log.is_empty() {
                out.push_str("  Recent log:\n");
                for l in &g.log {
                    out.push_str(&format!("    {l}\n"));
                }
            }
        }
        out
    }
}

fn status_of(lines: &[Line]) -> &'static str {
    match lines
        .iter()
        .filter(|l| l.event != Event::Resolved)
        .map(|l| l.severity)
        .max()
    {
        Some(Severity::Critical) => "critical",
        Some(Severity::Warning) => "warning",
        None => "resolved",
    }
}

fn subject(status: &str, counts: &Counts, host: &str) -> String {
    let parts: Vec<String> = [
        (counts.new, "new"),
        (counts.escalated, "escalated"),
        (counts.repeated, "still open"),
        (counts.resolved, "resolved"),
    ]
    .into_iter()
    .filter(|(n, _)| *n > 0)
    .map(|(n, what)| format!("{n} {what}"))
    .collect();
    format!(
        "[backup-monitor] {}: {} on {host}",
        status.to_uppercase(),
        parts.join(", ")
    )
}

fn line(n: &Notice, clock: &Clock) -> Line {
    let a = &n.alert;
    let end = n.resolved_at.unwrap_or(clock.now);
    let duration = (end - n.since).num_seconds().max(0);
    let mut what = format!("{}: {}", a.problem.kind, a.problem.message);
    // Messages show paths on one line (problem::one_line); so does the line.
    let path = a.problem.path.as_deref().map(one_line);
    if let Some(path) = path.filter(|p| !a.problem.message.contains(p.as_ref())) {
        what.push_str(&format!(" [{path}]"));
    }
    let since = clock.short(n.since);
    let text = match n.event {
        Event::Resolved => {
            let mut t = format!(
                "[RESOLVED] {what} — lasted {} (since {since})",
                human_age(duration)
            );
            if let (Some(missed), Some(location)) = (n.missed_slots, a.problem.location.as_deref())
            {
                let s = if missed == 1 { "" } else { "s" };
                t.push_str(&format!("; {missed} slot{s} missed at {location}"));
            }
            t
        }
        event => {
            let label = match (event, n.previous_severity) {
                (Event::Escalation, Some(before)) => format!(
                    "[{} → {}]",
                    before.as_str().to_uppercase(),
                    a.problem.severity.as_str().to_uppercase()
                ),
                (Event::Repeat, _) => {
                    format!(
                        "[STILL OPEN] {}",
                        a.problem.severity.as_str().to_uppercase()
                    )
                }
                _ => format!("[NEW] {}", a.problem.severity.as_str().to_uppercase()),
            };
            format!(
                "{label} {what} — since {since} ({}). Check: {}",
                human_age(duration),
                hint(a.problem.kind)
            )
        }
    };
    Line {
        alert_id: a.id,
        event: n.event,
        kind: a.problem.kind,
        severity: a.problem.severity,
        previous_severity: n.previous_severity,
        location: a.problem.location.clone(),
        path: a.problem.path.clone(),
        slot: a.problem.slot,
        message: a.problem.message.clone(),
        since: clock.rfc3339(n.since),
        resolved_at: n.resolved_at.map(|t| clock.rfc3339(t)),
        duration_seconds: duration,
        missed_slots: n.missed_slots,
        hint: hint(a.problem.kind).to_string(),
        text,
    }
}

/// What to check first, per kind.
pub fn hint(kind: Kind) -> &'static str {
    match kind {
        Kind::LocationUnavailable => "is the backup volume mounted and readable by this user?",
        Kind::NoBackups => {
            "is the backup job writing into this path, and do `patterns` match its file names?"
        }
        Kind::MissingBackup => {
            "did the backup job run for this slot? Look at its timer/cron entry and its log"
        }
        Kind::EmptyBackup => {
            "the job wrote nothing: look at its log and at free space where it writes"
        }
        Kind::UndersizedBackup => {
            "compare with earlier backups; look at the job's log for a partial dump"
        }
        Kind::SizeAnomaly => "much smaller than usual: did the job skip data or stop midway?",
        Kind::FutureTimestamp => {
            "check the clock of the machine that writes the backups and the file name"
        }
        Kind::TooFewBackups => {
            "is the job running, and does rotation delete more than `min_count` allows?"
        }
        Kind::RetentionExceeded => "old backups are not pruned: check the rotation job",
        Kind::DeletedBeforeRetention => {
            "something deleted a backup early: check rotation scripts and who can write here"
        }
        Kind::LowDiskSpace => "free space on the backup filesystem or prune old backups",
        Kind::UnreadablePath => {
            "give the user running backup-monitor read access, or exclude the path"
        }
        Kind::ChecksumMismatch => {
            "the content changed after it was recorded: storage corruption or tampering; restore-test it"
        }
        Kind::SidecarMismatch => {
            "the content does not match its checksum file: re-run the backup and check the storage"
        }
        Kind::SidecarInvalid => "the checksum file cannot be read: check the job that writes it",
        Kind::ModifiedAfterBackup => {
            "a finished backup changed: is a job still writing to it, or was it tampered with?"
        }
        Kind::ArchiveCorrupt => {
            "the archive cannot be read to its end: re-run the backup and check the storage"
        }
        Kind::UnsafeArchiveEntry => {
            "the archive has entries escaping the restore directory: inspect how it was made"
        }
        Kind::RestoreLimitExceeded => {
            "the restore outgrew restore.max_bytes: raise it if expected, else inspect the archive"
        }
        Kind::RestoreFailed => {
            "the restored content failed validation: check restore.expect, min_files and the dump"
        }
        Kind::DumpIncomplete => {
            "the dump lacks its completion footer: the dump tool was interrupted; see its log"
        }
        Kind::HealthDegraded => "see this location's other problems and the latest report",
        Kind::AlertDeliveryFailed => {
            "check the channel's settings and that its server is reachable from this host"
        }
    }
}

/// Alerts, notices and clocks for the channels' unit tests.
#[cfg(test)]
pub(crate) mod fixtures {
    use super::*;
    use crate::problem::Problem;
    use crate::store::from_unix;

    pub fn alert(kind: Kind, severity: Severity, location: Option<&str>) -> AlertRow {
        AlertRow {
            id: 1,
            key: String::new(),
            problem_id: 1,
            problem: Problem {
                kind,
                severity,
                location: location.map(str::to_string),
                path: None,
                slot: None,
                message: format!("{kind} happened"),
            },
            opened_at: from_unix(0),
            last_sent_at: None,
            send_count: 0,
            closed_at: None,
        }
    }

    pub fn notice(event: Event, a: AlertRow) -> Notice {
        Notice {
            event,
            alert: a,
            since: from_unix(0),
            resolved_at: None,
            previous_severity: None,
            missed_slots: None,
        }
    }

    pub fn clock_at(secs: i64) -> Clock {
        Clock {
            now: from_unix(secs),
            tz: chrono_tz::Tz::UTC,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::fixtures::{alert, clock_at, notice};
    use super::*;
    use crate::store::from_unix;

    fn clock() -> Clock {
        clock_at(2 * 86400 + 3 * 3600)
    }

    #[test]
    fn groups_by_location_with_run_level_last_and_words_the_subject() {
        let mut resolved = notice(
            Event::Resolved,
            alert(Kind::MissingBackup, Severity::Critical, Some("db")),
        );
        resolved.resolved_at = Some(from_unix(86400));
        resolved.missed_slots = Some(3);
        let notices = vec![
            notice(
                Event::Open,
                alert(Kind::AlertDeliveryFailed, Severity::Warning, None),
            ),
            resolved,
            notice(
                Event::Open,
                alert(Kind::SizeAnomaly, Severity::Warning, Some("web")),
            ),
            notice(
                Event::Open,
                alert(Kind::NoBackups, Severity::Critical, Some("db")),
            ),
        ];
        let log = |l: &str| vec![format!("INFO scanned {l}")];
        let d = Digest::build(&notices, "host1", &clock(), &log);
        assert_eq!(
            d.subject,
            "[backup-monitor] CRITICAL: 3 new, 1 resolved on host1"
        );
        let titles: Vec<&str> = d.groups.iter().map(|g| g.title.as_str()).collect();
        assert_eq!(titles, ["db", "web", "backup-monitor itself"]);
        let db = &d.groups[0];
        assert_eq!(db.status, "critical");
        assert_eq!(db.log, ["INFO scanned db"]);
        assert!(d.groups[2].log.is_empty());
        assert_eq!(db.alerts[0].kind, Kind::NoBackups, "open before resolved");
        let open = &db.alerts[0].text;
        assert!(
            open.starts_with("[NEW] CRITICAL no_backups: no_backups happened"),
            "{open}"
        );
        assert!(
            open.contains("since 1970-01-01 00:00 +00:00 (2d 3h)"),
            "{open}"
        );
        assert!(open.contains("Check: is the backup job writing"), "{open}");
        let res = &db.alerts[1].text;
        assert!(res.starts_with("[RESOLVED] missing_backup"), "{res}");
        assert!(res.contains("lasted 1d 0h"), "{res}");
        assert!(res.contains("3 slots missed at db"), "{res}");
        assert_eq!(d.groups[1].status, "warning");
    }

    #[test]
    fn resolutions_only_and_escalations() {
        let d = Digest::build(
            &[notice(
                Event::Resolved,
                alert(Kind::NoBackups, Severity::Critical, Some("db")),
            )],
            "h",
            &clock(),
            &|_| Vec::new(),
        );
        assert_eq!(d.subject, "[backup-monitor] RESOLVED: 1 resolved on h");
        assert_eq!(d.status, "resolved");
        let mut up = notice(
            Event::Escalation,
            alert(Kind::HealthDegraded, Severity::Critical, Some("db")),
        );
        up.previous_severity = Some(Severity::Warning);
        let repeat = notice(
            Event::Repeat,
            alert(Kind::LowDiskSpace, Severity::Warning, Some("db")),
        );
        let d = Digest::build(&[repeat, up], "h", &clock(), &|_| Vec::new());
        assert_eq!(
            d.subject,
            "[backup-monitor] CRITICAL: 1 escalated, 1 still open on h"
        );
        assert!(
            d.groups[0].alerts[0]
                .text
                .starts_with("[WARNING → CRITICAL] health_degraded")
        );
        assert!(
            d.groups[0].alerts[1]
                .text
                .starts_with("[STILL OPEN] WARNING low_disk_space")
        );
        assert!(d.plain_text().contains("db (CRITICAL):"));
    }
}
