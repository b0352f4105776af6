//! One run's alerts for one channel as one digest: a subject that names the worst
//! severity, the first location and kind and how many more
//! (`[backup-monitor] CRITICAL db: missing_backup (+3 more)`), then the alerts grouped
//! by location, worst location first, each line saying what is wrong, since when and
//! what to check. Each line carries its words once (`label`, `what`, `detail`), so every
//! channel and both email parts say the same thing. The run's recent log lines are
//! attached only when asked (`alerts.include_log`), and every digest links to the latest
//! report when `reporting.base_url` is set. Channels render this; they never decide what
//! goes in it.

use super::Event;
use crate::output::human_age;
use crate::problem::{Kind, Severity, one_line};
use crate::store::AlertRow;
use chrono::{DateTime, Utc};
use serde::{Serialize, Serializer};
use std::collections::BTreeMap;

/// Log lines shown per location (with `alerts.include_log`).
pub const LOG_LINES: usize = 10;

/// What one message says about one alert.
#[derive(Debug, Clone)]
pub struct Notice {
    pub event: Event,
    pub alert: AlertRow,
    /// When the problem was first seen.
    pub since: DateTime<Utc>,
    pub resolved_at: Option<DateTime<Utc>>,
    /// The severity this channel was last told, for an escalation or de-escalation.
    pub previous_severity: Option<Severity>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Line {
    /// The stored alert this line is about (not part of any payload).
    #[serde(skip)]
    pub alert_id: i64,
    /// The same for every message about one problem on one host (for pager tools).
    pub dedup_key: String,
    /// `open | repeat | escalate | deescalate | resolve`.
    #[serde(serialize_with = "event_word_ser")]
    pub event: Event,
    pub kind: Kind,
    pub severity: Severity,
    pub previous_severity: Option<Severity>,
    /// The host of the problem (in a fleet digest only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    pub location: Option<String>,
    pub path: Option<String>,
    pub slot: Option<crate::problem::SlotStart>,
    pub message: String,
    /// RFC 3339, in the configured zone.
    pub since: String,
    pub resolved_at: Option<String>,
    /// Open for (until now, or until resolved), in seconds.
    pub duration_seconds: i64,
    /// What to check.
    pub hint: String,
    /// What happened, for a human: `NEW CRITICAL`, `STILL OPEN WARNING`,
    /// `WARNING → CRITICAL`, `CRITICAL → WARNING`, `RESOLVED`.
    pub label: String,
    /// The kind and the message (with the path when the message does not name it).
    pub what: String,
    /// Since when, for how long, and what to check (or how long it lasted).
    pub detail: String,
    /// The whole line for a human: `[label] what — detail`.
    pub text: String,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Group {
    /// The host of the group's problems (in a fleet digest only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// None: problems of the run itself (e.g. `alert_delivery_failed`).
    pub location: Option<String>,
    pub title: String,
    /// `critical | warning | resolved`: the worst still-open alert of the group.
    pub status: String,
    pub alerts: Vec<Line>,
    /// The last lines this run logged for the location (only with `alerts.include_log`).
    pub log: Vec<String>,
}

#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Counts {
    pub new: usize,
    pub escalated: usize,
    pub deescalated: usize,
    pub repeated: usize,
    pub resolved: usize,
}

impl Counts {
    /// `2 new · 1 still open`: the non-zero counts, in a fixed order.
    pub fn describe(&self) -> String {
        let parts: Vec<String> = [
            (self.new, "new"),
            (self.escalated, "escalated"),
            (self.deescalated, "de-escalated"),
            (self.repeated, "still open"),
            (self.resolved, "resolved"),
        ]
        .into_iter()
        .filter(|(n, _)| *n > 0)
        .map(|(n, what)| format!("{n} {what}"))
        .collect();
        parts.join(" · ")
    }
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Digest {
    pub subject: String,
    pub host: String,
    /// `critical | warning | resolved`
    pub status: String,
    pub generated_at: String,
    pub counts: Counts,
    /// The counts in words (`2 new · 1 resolved`), as every rendering shows them.
    pub summary: String,
    /// The latest report (`<reporting.base_url>/latest.html`), when published.
    pub report_url: Option<String>,
    /// Worst first: critical locations, then warning, then resolved; the run's own
    /// problems after the locations of the same status.
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

/// `<base_url>/latest.html`, whether or not the base ends in `/`. A user name and
/// password in the base are left out: the link goes to every recipient of every channel.
pub fn report_url(base_url: Option<&str>) -> Option<String> {
    let base = base_url?.trim().trim_end_matches('/');
    let base = match url::Url::parse(base) {
        Ok(mut url) if !url.username().is_empty() || url.password().is_some() => {
            // Clearing them cannot fail for an http(s) URL, which is all base_url may be.
            let _ = url.set_username("");
            let _ = url.set_password(None);
            url.to_string().trim_end_matches('/').to_string()
        }
        _ => base.to_string(),
    };
    (!base.is_empty()).then(|| format!("{base}/latest.html"))
}

/// The same key for every message about one problem on one host: a hash of both, so
/// it names no path and stays short.
pub fn dedup_key(host: &str, alert: &AlertRow) -> String {
    let text = format!("{host}\n{}", alert.problem.key());
    let hash = blake3::hash(text.as_bytes()).to_hex();
    hash.as_str()[..32].to_string()
}

/// The event as the webhook payload names it.
pub fn event_word(event: Event) -> &'static str {
    match event {
        Event::Open => "open",
        Event::Repeat => "repeat",
        Event::Escalation => "escalate",
        Event::Deescalation => "deescalate",
        Event::Resolved => "resolve",
    }
}

fn event_word_ser<S: Serializer>(event: &Event, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(event_word(*event))
}

/// Worst first: an open critical, an open warning, then resolved.
fn status_rank(status: &str) -> u8 {
    match status {
        "critical" => 0,
        "warning" => 1,
        _ => 2,
    }
}

impl Digest {
    /// Group `notices` by location, worst first, and word the subject. `log_of` gives a
    /// location's recent log lines (return nothing unless the user asked for them).
    pub fn build(
        notices: &[Notice],
        host: &str,
        clock: &Clock,
        log_of: &dyn Fn(&str) -> Vec<String>,
    ) -> Digest {
        Digest::build_for(notices, host, false, clock, log_of)
    }

    /// [`Digest::build`], and with `fleet` for the fleet view: alerts of several hosts,
    /// grouped by host and location, each group titled `host/location` and each line
    /// naming its host (its `dedup_key` is the one its own host's runs use). Log lines
    /// are this run's, so only this host's groups carry them.
    pub fn build_for(
        notices: &[Notice],
        host: &str,
        fleet: bool,
        clock: &Clock,
        log_of: &dyn Fn(&str) -> Vec<String>,
    ) -> Digest {
        let host_of = |n: &Notice| fleet.then(|| n.alert.host.clone());
        let mut counts = Counts::default();
        for n in notices {
            match n.event {
                Event::Open => counts.new += 1,
                Event::Escalation => counts.escalated += 1,
                Event::Deescalation => counts.deescalated += 1,
                Event::Repeat => counts.repeated += 1,
                Event::Resolved => counts.resolved += 1,
            }
        }
        // The notices of each (host, location), gathered in one pass: a fleet's first
        // run tells tens of thousands at once.
        let mut by_location: BTreeMap<(Option<String>, Option<String>), Vec<&Notice>> =
            BTreeMap::new();
        for n in notices {
            by_location
                .entry((host_of(n), n.alert.problem.location.clone()))
                .or_default()
                .push(n);
        }
        let mut groups: Vec<Group> = by_location
            .into_iter()
            .map(|((group_host, location), mut members)| {
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
                let alerts: Vec<Line> = members
                    .iter()
                    .map(|n| line(n, group_host.as_deref().unwrap_or(host), fleet, clock))
                    .collect();
                let title = match (&group_host, &location) {
                    (None, Some(l)) => l.clone(),
                    (None, None) => "backup-monitor itself".into(),
                    (Some(h), Some(l)) => format!("{h}/{l}"),
                    (Some(h), None) => format!("backup-monitor itself on {h}"),
                };
                let own = group_host.as_deref().is_none_or(|h| h == host);
                Group {
                    title,
                    status: status_of(&alerts).to_string(),
                    log: match own {
                        true => location.as_deref().map(log_of).unwrap_or_default(),
                        false => Vec::new(),
                    },
                    host: group_host,
                    location,
                    alerts,
                }
            })
            .collect();
        // Worst first; among equals, named locations by host and name, then the runs' own.
        groups.sort_by(|a, b| {
            (
                status_rank(&a.status),
                a.location.is_none(),
                &a.host,
                &a.location,
            )
                .cmp(&(
                    status_rank(&b.status),
                    b.location.is_none(),
                    &b.host,
                    &b.location,
                ))
        });
        let all: Vec<Line> = groups.iter().flat_map(|g| g.alerts.clone()).collect();
        let status = status_of(&all);
        Digest {
            subject: subject(status, &groups, all.len()),
            host: host.to_string(),
            status: status.to_string(),
            generated_at: clock.rfc3339(clock.now),
            summary: counts.describe(),
            counts,
            report_url: None,
            groups,
        }
    }

    /// The same digest, linking to the latest report under `base_url` when set.
    pub fn linking(mut self, base_url: Option<&str>) -> Digest {
        self.report_url = report_url(base_url);
        self
    }

    /// Every line of every group, in order.
    pub fn lines(&self) -> impl Iterator<Item = &Line> {
        self.groups.iter().flat_map(|g| g.alerts.iter())
    }

    /// The digest as plain text (log and fallback renderings).
    pub fn plain_text(&self) -> String {
        let mut out = format!("{}\n{}\n", self.subject, self.summary);
        if let Some(url) = &self.report_url {
            out.push_str(&format!("Latest report: {url}\n"));
        }
        for g in &self.groups {
            out.push_str(&format!("\n{} ({}):\n", g.title, g.status.to_uppercase()));
            for l in &g.alerts {
                out.push_str(&format!("  {}\n", l.text));
            }
            if !g.log.is_empty() {
                out.push_str("  Recent log of this run:\n");
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

/// `[backup-monitor] CRITICAL db: missing_backup (+3 more)`: the worst status, the
/// first line of the first (worst) group, and how many lines follow.
fn subject(status: &str, groups: &[Group], total: usize) -> String {
    let first = groups
        .first()
        .and_then(|g| g.alerts.first().map(|l| (g.title.as_str(), l.kind)));
    let mut s = format!("[backup-monitor] {}", status.to_uppercase());
    if let Some((title, kind)) = first {
        s.push_str(&format!(" {title}: {kind}"));
    }
    if total > 1 {
        s.push_str(&format!(" (+{} more)", total - 1));
    }
    s
}

/// One alert's line; `host` is its problem's host (the one its dedup key names), shown
/// on the line when `fleet`.
fn line(n: &Notice, host: &str, fleet: bool, clock: &Clock) -> Line {
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
    let upper = |s: Severity| s.as_str().to_uppercase();
    let severity = upper(a.problem.severity);
    let label = match (n.event, n.previous_severity) {
        (Event::Resolved, _) => "RESOLVED".to_string(),
        (Event::Escalation | Event::Deescalation, Some(before)) => {
            format!("{} → {severity}", upper(before))
        }
        (Event::Repeat, _) => format!("STILL OPEN {severity}"),
        (Event::Escalation, None) => format!("NOW {severity}"),
        (Event::Deescalation, None) => format!("DOWN TO {severity}"),
        (Event::Open, _) => format!("NEW {severity}"),
    };
    let detail = match n.event {
        Event::Resolved => {
            if duration > 0 {
                format!("lasted {} (since {since})", human_age(duration))
            } else {
                // A gap no run saw while it was open: its message says how long it was.
                "found once it was over: no run saw it while it was open".to_string()
            }
        }
        _ => format!(
            "since {since} ({}). Check: {}",
            human_age(duration),
            hint(a.problem.kind)
        ),
    };
    Line {
        alert_id: a.id,
        dedup_key: dedup_key(host, a),
        event: n.event,
        kind: a.problem.kind,
        severity: a.problem.severity,
        previous_severity: n.previous_severity,
        host: fleet.then(|| host.to_string()),
        location: a.problem.location.clone(),
        path: a.problem.path.clone(),
        slot: a.problem.slot,
        message: a.problem.message.clone(),
        since: clock.rfc3339(n.since),
        resolved_at: n.resolved_at.map(|t| clock.rfc3339(t)),
        duration_seconds: duration,
        hint: hint(a.problem.kind).to_string(),
        text: format!("[{label}] {what} — {detail}"),
        label,
        what,
        detail,
    }
}

/// What to check first, per kind.
pub fn hint(kind: Kind) -> &'static str {
    match kind {
        Kind::LocationUnavailable => {
            "can this user reach and read the backups (a volume mounted, a bucket or repository reachable with its credentials, a job log's database up)?"
        }
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
        Kind::BackupJobFailed => {
            "read the backup system's log for that run, fix the cause and re-run the job"
        }
        Kind::MonitorStale => {
            "is the nightly backup-monitor job (cron or systemd timer) still running on the location's host?"
        }
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
        Kind::RestoreUntested => {
            "no backup of this location could be tested: configure restore.decrypt or see why each was skipped"
        }
        Kind::RestoreAnomaly => {
            "the restore produced far less than usual: check that the backup job dumped everything"
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
            host: "h".into(),
        }
    }

    pub fn notice(event: Event, a: AlertRow) -> Notice {
        Notice {
            event,
            alert: a,
            since: from_unix(0),
            resolved_at: None,
            previous_severity: None,
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
    fn groups_worst_first_with_run_level_last_among_equals_and_words_the_subject() {
        let mut resolved = notice(
            Event::Resolved,
            alert(Kind::MissingBackup, Severity::Critical, Some("db")),
        );
        resolved.resolved_at = Some(from_unix(86400));
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
            "[backup-monitor] CRITICAL db: no_backups (+3 more)"
        );
        assert_eq!(d.summary, "3 new · 1 resolved");
        let titles: Vec<&str> = d.groups.iter().map(|g| g.title.as_str()).collect();
        assert_eq!(titles, ["db", "web", "backup-monitor itself"]);
        let db = &d.groups[0];
        assert_eq!(db.status, "critical");
        assert_eq!(db.log, ["INFO scanned db"]);
        assert!(d.groups[2].log.is_empty());
        assert_eq!(db.alerts[0].kind, Kind::NoBackups, "open before resolved");
        let open = &db.alerts[0].text;
        assert!(
            open.starts_with("[NEW CRITICAL] no_backups: no_backups happened"),
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
        assert_eq!(d.subject, "[backup-monitor] RESOLVED db: no_backups");
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
            "[backup-monitor] CRITICAL db: health_degraded (+1 more)"
        );
        assert!(
            d.groups[0].alerts[0]
                .text
                .starts_with("[WARNING → CRITICAL] health_degraded:")
        );
        assert!(
            d.groups[0].alerts[1]
                .text
                .starts_with("[STILL OPEN WARNING] low_disk_space:")
        );
        assert!(d.plain_text().contains("db (CRITICAL):"));
    }

    #[test]
    fn a_warning_location_named_first_comes_after_a_critical_one() {
        let d = Digest::build(
            &[
                notice(
                    Event::Open,
                    alert(Kind::LowDiskSpace, Severity::Warning, Some("aaa")),
                ),
                notice(
                    Event::Open,
                    alert(Kind::MissingBackup, Severity::Critical, Some("zzz")),
                ),
                notice(
                    Event::Open,
                    alert(Kind::AlertDeliveryFailed, Severity::Critical, None),
                ),
            ],
            "h",
            &clock(),
            &|_| Vec::new(),
        );
        let titles: Vec<&str> = d.groups.iter().map(|g| g.title.as_str()).collect();
        assert_eq!(titles, ["zzz", "backup-monitor itself", "aaa"]);
        assert_eq!(
            d.subject,
            "[backup-monitor] CRITICAL zzz: missing_backup (+2 more)"
        );
    }

    #[test]
    fn a_drop_in_severity_is_worded_as_such_and_the_webhook_words_are_stable() {
        let mut down = notice(
            Event::Deescalation,
            alert(Kind::HealthDegraded, Severity::Warning, Some("db")),
        );
        down.previous_severity = Some(Severity::Critical);
        let d = Digest::build(&[down], "h", &clock(), &|_| Vec::new());
        let l = &d.groups[0].alerts[0];
        assert!(
            l.text.starts_with("[CRITICAL → WARNING] health_degraded"),
            "{}",
            l.text
        );
        assert_eq!(d.summary, "1 de-escalated");
        let json = serde_json::to_value(l).unwrap();
        assert_eq!(json["event"], "deescalate");
        let words: Vec<&str> = [
            Event::Open,
            Event::Repeat,
            Event::Escalation,
            Event::Deescalation,
            Event::Resolved,
        ]
        .into_iter()
        .map(event_word)
        .collect();
        assert_eq!(
            words,
            ["open", "repeat", "escalate", "deescalate", "resolve"]
        );
    }

    #[test]
    fn the_dedup_key_follows_the_problem_and_the_host_only() {
        let a = alert(Kind::MissingBackup, Severity::Warning, Some("db"));
        let mut later = a.clone();
        later.id = 7;
        later.problem.severity = Severity::Critical;
        later.problem.message = "worded differently".into();
        assert_eq!(dedup_key("h", &a), dedup_key("h", &later));
        assert_eq!(dedup_key("h", &a).len(), 32);
        assert_ne!(dedup_key("h", &a), dedup_key("other", &a));
        let mut elsewhere = a.clone();
        elsewhere.problem.location = Some("www".into());
        assert_ne!(dedup_key("h", &a), dedup_key("h", &elsewhere));
    }

    #[test]
    fn the_report_link_is_built_from_the_base_url() {
        assert_eq!(
            report_url(Some("https://r.example.com/bm/")).as_deref(),
            Some("https://r.example.com/bm/latest.html")
        );
        assert_eq!(
            report_url(Some("https://r.example.com")).as_deref(),
            Some("https://r.example.com/latest.html")
        );
        assert_eq!(report_url(None), None);
        assert_eq!(
            report_url(Some("https://alice:pw@r.example.com/bm/")).as_deref(),
            Some("https://r.example.com/bm/latest.html")
        );
    }

    #[test]
    fn a_fleet_digest_names_each_host_and_keeps_each_hosts_dedup_key() {
        let mut a = alert(Kind::MonitorStale, Severity::Critical, Some("db"));
        a.host = "beta".into();
        let mut b = alert(Kind::MissingBackup, Severity::Critical, Some("db"));
        b.id = 2;
        b.host = "alpha".into();
        let mut own = alert(Kind::AlertDeliveryFailed, Severity::Warning, None);
        own.id = 3;
        own.host = "alpha".into();
        let notices = [
            notice(Event::Open, a.clone()),
            notice(Event::Open, b.clone()),
            notice(Event::Open, own),
        ];
        let log = |_: &str| vec!["a line".to_string()];
        let d = Digest::build_for(&notices, "alpha", true, &clock(), &log);
        let titles: Vec<&str> = d.groups.iter().map(|g| g.title.as_str()).collect();
        assert_eq!(
            titles,
            ["alpha/db", "beta/db", "backup-monitor itself on alpha"]
        );
        assert_eq!(
            d.subject,
            "[backup-monitor] CRITICAL alpha/db: missing_backup (+2 more)"
        );
        let beta = &d.groups[1];
        assert_eq!(beta.alerts[0].host.as_deref(), Some("beta"));
        assert_eq!(beta.alerts[0].dedup_key, dedup_key("beta", &a));
        assert!(beta.log.is_empty(), "this run's log is not about beta");
        assert_eq!(d.groups[0].log, ["a line"]);
        // Without `fleet`, the same notices read as one host's (no host anywhere).
        let plain = Digest::build(&notices[1..2], "alpha", &clock(), &log);
        assert_eq!(plain.groups[0].title, "db");
        let json = serde_json::to_value(&plain).unwrap();
        assert!(json["groups"][0].get("host").is_none(), "{json}");
        assert!(json["groups"][0]["alerts"][0].get("host").is_none());
    }
}
