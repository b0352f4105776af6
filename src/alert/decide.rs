//! Pure decisions of `--check-alerts`: which problems become
//! alerts, and what each channel must be told next. No I/O and no clock: the caller passes
//! "now" and the channel's delivery history.

use crate::config::{Alerts, Monitoring, NotifyLevel};
use crate::problem::{AlertSwitch, Severity};
use crate::store::{AlertDelivery, StoredProblem};
use chrono::{DateTime, Duration, Utc};

pub use crate::store::Event;

/// Why an open problem is not alerted (counted as `suppressed`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Suppression {
    /// A `monitoring.alert_on_*` switch is off for its kind.
    Switch,
    /// `alerts.notify: critical` and the problem is a warning.
    Notify,
    /// Seen by fewer than `alerts.min_consecutive` consecutive runs.
    MinConsecutive,
    /// Acknowledged (`--ack`) and not worse since: no repeats.
    Acknowledged,
    /// A `--silence` in force covers it.
    Silenced,
    /// `health_degraded` while another problem of its location is being alerted: the
    /// real problem is what people need to read.
    Outranked,
}

/// What people decided about an open problem, for [`marked`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Marked {
    pub acknowledged: bool,
    pub silenced: bool,
}

/// Whether people's decisions keep an open problem quiet; None: they do not.
pub fn marked(m: Marked) -> Option<Suppression> {
    if m.silenced {
        Some(Suppression::Silenced)
    } else if m.acknowledged {
        Some(Suppression::Acknowledged)
    } else {
        None
    }
}

/// Which `health_degraded` alerts give way: those of a location where another problem
/// passes every filter. `others` are the locations of such problems.
pub fn outranked(
    kind: crate::problem::Kind,
    location: Option<&str>,
    others: &std::collections::HashSet<String>,
) -> bool {
    kind == crate::problem::Kind::HealthDegraded && location.is_some_and(|l| others.contains(l))
}

/// Whether an open problem may be alerted now; None: yes.
pub fn suppression(
    problem: &StoredProblem,
    monitoring: &Monitoring,
    alerts: &Alerts,
) -> Option<Suppression> {
    let switched_on = match problem.problem.kind.alert_switch() {
        None => true,
        Some(AlertSwitch::Failure) => monitoring.alert_on_failure,
        Some(AlertSwitch::Verification) => monitoring.alert_on_verification_failure,
        Some(AlertSwitch::Restore) => monitoring.alert_on_restore_failure,
    };
    if !switched_on {
        Some(Suppression::Switch)
    } else if alerts.notify == NotifyLevel::Critical
        && problem.problem.severity != Severity::Critical
    {
        Some(Suppression::Notify)
    } else if problem.runs_seen < alerts.min_consecutive.0 {
        Some(Suppression::MinConsecutive)
    } else {
        None
    }
}

/// What one channel was successfully told about one alert.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ChannelHistory {
    /// Time and severity of the last delivered notice about the open problem.
    pub last_notice: Option<(DateTime<Utc>, Severity)>,
    pub resolved_delivered: bool,
}

impl ChannelHistory {
    /// The history of `channel` from an alert's deliveries (failed attempts tell nothing).
    pub fn of(channel: &str, deliveries: &[AlertDelivery]) -> ChannelHistory {
        let mut history = ChannelHistory::default();
        for d in deliveries
            .iter()
            .filter(|d| d.success && d.channel == channel)
        {
            match d.event {
                Event::Resolved => history.resolved_delivered = true,
                _ => {
                    if history.last_notice.is_none_or(|(at, _)| at <= d.at) {
                        history.last_notice = Some((d.at, d.severity));
                    }
                }
            }
        }
        history
    }
}

/// The next notice a channel needs about an open alert, if any. Failed deliveries left
/// the history unchanged, so they are retried here without waiting for the cooldown.
pub fn next_for_open(
    history: &ChannelHistory,
    severity: Severity,
    now: DateTime<Utc>,
    cooldown: Duration,
) -> Option<Event> {
    match history.last_notice {
        None => Some(Event::Open),
        Some((_, told)) if severity > told => Some(Event::Escalation),
        Some((at, told)) if now - at >= cooldown && severity < told => Some(Event::Deescalation),
        Some((at, _)) if now - at >= cooldown => Some(Event::Repeat),
        Some(_) => None,
    }
}

/// The notice a channel needs about a closed alert: a resolution, only where the problem
/// was announced and not yet resolved.
pub fn next_for_closed(history: &ChannelHistory, send_resolved: bool) -> Option<Event> {
    (send_resolved && history.last_notice.is_some() && !history.resolved_delivered)
        .then_some(Event::Resolved)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Positive;
    use crate::problem::{Kind, Problem};
    use crate::store::from_unix;

    fn stored(kind: Kind, severity: Severity, runs_seen: u32) -> StoredProblem {
        StoredProblem {
            host: "h".into(),
            id: 1,
            problem: Problem::new(kind, severity, "db", "m"),
            operation: kind.operation(),
            location_id: Some(1),
            first_seen: from_unix(0),
            last_seen: from_unix(0),
            runs_seen,
            resolved_at: None,
        }
    }

    fn delivery(
        channel: &str,
        event: Event,
        severity: Severity,
        at: i64,
        ok: bool,
    ) -> AlertDelivery {
        AlertDelivery {
            alert_id: 1,
            channel: channel.into(),
            event,
            severity,
            at: from_unix(at),
            success: ok,
            error: None,
        }
    }

    #[test]
    fn switches_cover_their_kinds_only() {
        let alerts = Alerts::default();
        let off = Monitoring {
            alert_on_failure: false,
            alert_on_verification_failure: false,
            alert_on_restore_failure: false,
            ..Monitoring::default()
        };
        for kind in [
            Kind::MissingBackup,
            Kind::ChecksumMismatch,
            Kind::ArchiveCorrupt,
        ] {
            let p = stored(kind, Severity::Critical, 1);
            assert_eq!(
                suppression(&p, &off, &alerts),
                Some(Suppression::Switch),
                "{kind}"
            );
            assert_eq!(
                suppression(&p, &Monitoring::default(), &alerts),
                None,
                "{kind}"
            );
        }
        for kind in [Kind::HealthDegraded, Kind::AlertDeliveryFailed] {
            let p = stored(kind, Severity::Warning, 1);
            assert_eq!(suppression(&p, &off, &alerts), None, "{kind} always alerts");
        }
        let only_restore = Monitoring {
            alert_on_restore_failure: false,
            ..Monitoring::default()
        };
        let p = stored(Kind::RestoreFailed, Severity::Critical, 1);
        assert_eq!(
            suppression(&p, &only_restore, &alerts),
            Some(Suppression::Switch)
        );
        let p = stored(Kind::NoBackups, Severity::Critical, 1);
        assert_eq!(suppression(&p, &only_restore, &alerts), None);
    }

    #[test]
    fn notify_critical_and_min_consecutive() {
        let m = Monitoring::default();
        let critical_only = Alerts {
            notify: NotifyLevel::Critical,
            ..Alerts::default()
        };
        let warn = stored(Kind::SizeAnomaly, Severity::Warning, 5);
        let crit = stored(Kind::MissingBackup, Severity::Critical, 5);
        assert_eq!(
            suppression(&warn, &m, &critical_only),
            Some(Suppression::Notify)
        );
        assert_eq!(suppression(&crit, &m, &critical_only), None);
        let twice = Alerts {
            min_consecutive: Positive(2),
            ..Alerts::default()
        };
        assert_eq!(
            suppression(&stored(Kind::NoBackups, Severity::Critical, 1), &m, &twice),
            Some(Suppression::MinConsecutive)
        );
        assert_eq!(
            suppression(&stored(Kind::NoBackups, Severity::Critical, 2), &m, &twice),
            None
        );
    }

    #[test]
    fn silence_and_ack_quiet_a_problem_and_health_gives_way() {
        assert_eq!(marked(Marked::default()), None);
        let acked = Marked {
            acknowledged: true,
            silenced: false,
        };
        assert_eq!(marked(acked), Some(Suppression::Acknowledged));
        let both = Marked {
            acknowledged: true,
            silenced: true,
        };
        assert_eq!(marked(both), Some(Suppression::Silenced));
        let others: std::collections::HashSet<String> = ["db".to_string()].into();
        assert!(outranked(Kind::HealthDegraded, Some("db"), &others));
        assert!(!outranked(Kind::HealthDegraded, Some("www"), &others));
        assert!(!outranked(Kind::MissingBackup, Some("db"), &others));
    }

    #[test]
    fn open_alert_sequence_per_channel() {
        let day = Duration::hours(24);
        let none = ChannelHistory::default();
        assert_eq!(
            next_for_open(&none, Severity::Warning, from_unix(0), day),
            Some(Event::Open)
        );
        let told = ChannelHistory::of(
            "email",
            &[
                delivery("email", Event::Open, Severity::Warning, 100, true),
                delivery("slack", Event::Open, Severity::Warning, 100, false),
            ],
        );
        assert_eq!(told.last_notice, Some((from_unix(100), Severity::Warning)));
        let hour = 3600;
        assert_eq!(
            next_for_open(&told, Severity::Warning, from_unix(100 + hour), day),
            None,
            "cooldown"
        );
        assert_eq!(
            next_for_open(&told, Severity::Warning, from_unix(100 + 24 * hour), day),
            Some(Event::Repeat)
        );
        assert_eq!(
            next_for_open(&told, Severity::Critical, from_unix(100 + hour), day),
            Some(Event::Escalation),
            "a severity rise does not wait for the cooldown"
        );
        let critical = ChannelHistory::of(
            "email",
            &[delivery(
                "email",
                Event::Open,
                Severity::Critical,
                100,
                true,
            )],
        );
        assert_eq!(
            next_for_open(&critical, Severity::Warning, from_unix(100 + hour), day),
            None,
            "a severity drop waits for the cooldown"
        );
        assert_eq!(
            next_for_open(
                &critical,
                Severity::Warning,
                from_unix(100 + 24 * hour),
                day
            ),
            Some(Event::Deescalation)
        );
        let slack = ChannelHistory::of(
            "slack",
            &[delivery(
                "slack",
                Event::Open,
                Severity::Warning,
                100,
                false,
            )],
        );
        assert_eq!(
            next_for_open(&slack, Severity::Warning, from_unix(100 + hour), day),
            Some(Event::Open),
            "a failed delivery is retried regardless of the cooldown"
        );
    }

    #[test]
    fn resolution_only_where_announced_and_once() {
        let announced = ChannelHistory::of(
            "webhook",
            &[delivery(
                "webhook",
                Event::Open,
                Severity::Critical,
                10,
                true,
            )],
        );
        assert_eq!(next_for_closed(&announced, true), Some(Event::Resolved));
        assert_eq!(
            next_for_closed(&announced, false),
            None,
            "send_resolved: false"
        );
        assert_eq!(
            next_for_closed(&ChannelHistory::default(), true),
            None,
            "never announced"
        );
        let done = ChannelHistory::of(
            "webhook",
            &[
                delivery("webhook", Event::Open, Severity::Critical, 10, true),
                delivery("webhook", Event::Resolved, Severity::Critical, 20, false),
            ],
        );
        assert_eq!(
            next_for_closed(&done, true),
            Some(Event::Resolved),
            "failed: retried"
        );
        let done = ChannelHistory::of(
            "webhook",
            &[
                delivery("webhook", Event::Open, Severity::Critical, 10, true),
                delivery("webhook", Event::Resolved, Severity::Critical, 20, true),
            ],
        );
        assert_eq!(next_for_closed(&done, true), None);
    }
}
