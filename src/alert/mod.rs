//! `--check-alerts`: turn open problems into alerts, tell each
//! channel what it has not been told yet, and record every delivery.
//!
//! One alert per open problem, keyed like the problem (kind, location, path or slot). A
//! channel gets an alert when it opens, again after `alerts.cooldown`, at once when its
//! severity changes (escalation), and a resolution when the problem closes. What a
//! channel must be told next follows from its own delivery history, so a failed delivery
//! is simply retried next run and nothing counts as sent unless it was delivered. All of
//! a run's notices for a channel go out as one digest message.
//!
//! In a shared store every run (a host's own, or `--check-alerts --fleet` covering every
//! host) tells the same alert stream: each notice is claimed in the store before it is
//! sent, so two runs at once never both send it, and a channel's history is the same
//! whoever sends.
//!
//! Channels (one trait, one file each): [`log`], [`email`], [`slack`], [`webhook`].
//! Not for: judging problems (the other operations do) or reading the disk.

pub mod decide;
pub mod digest;
pub mod email;
mod http;
pub mod log;
pub mod redact;
pub mod slack;
pub mod webhook;

pub use decide::Event;

use crate::config::Config;
use crate::lifecycle::Marks;
use crate::problem::{Kind, Operation, Problem, Severity, one_line};
use crate::run::RunContext;
use crate::store::StoredProblem;
use crate::store::{AlertDelivery, AlertRow, FleetLocation};
use anyhow::Result;
use chrono::{DateTime, Duration, Utc};
use decide::{ChannelHistory, Suppression, next_for_closed, next_for_open, suppression};
use digest::{Clock, Digest, Notice};
use redact::Secrets;
use std::collections::{HashMap, HashSet};

/// What `--check-alerts` did this run. The counters count alerts, not messages.
#[derive(Debug, Clone, Default, serde::Serialize, PartialEq)]
pub struct Summary {
    pub sent: u64,
    pub repeated: u64,
    pub resolved: u64,
    pub suppressed: u64,
    pub delivery_failures: u64,
}

/// An alert whose problem is still open (`--status`, field `open_alerts`).
#[derive(Debug, Clone, serde::Serialize, PartialEq)]
pub struct OpenAlert {
    pub kind: Kind,
    pub severity: Severity,
    pub location: Option<String>,
    pub path: Option<String>,
    pub slot: Option<crate::problem::SlotStart>,
    pub message: String,
    pub opened_at: String,
    pub last_sent_at: Option<String>,
    /// Successful deliveries, all channels together.
    pub deliveries: u32,
    /// Channels whose last attempt failed (retried next run).
    pub failing_channels: Vec<String>,
    /// The host of its problem (in the fleet view only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
}

/// Whose alerts a run covers: the locations (by store id and by host and name) and
/// whether it is the fleet view (messages then name each location's host).
pub struct Scope {
    ids: Vec<i64>,
    locations: HashSet<(String, String)>,
    fleet: bool,
}

impl Scope {
    /// The run's own selected locations (this host).
    pub fn of_run(ctx: &RunContext) -> Scope {
        let host = ctx.store.host();
        Scope {
            ids: ctx.locations.iter().map(|l| l.id).collect(),
            locations: ctx
                .locations
                .iter()
                .map(|l| (host.to_string(), l.config.name.clone()))
                .collect(),
            fleet: false,
        }
    }

    /// Every location of the fleet view (`--fleet`, `--host NAME`), read from the store.
    pub fn fleet(rows: &[FleetLocation]) -> Scope {
        Scope {
            ids: rows.iter().map(|l| l.id).collect(),
            locations: rows
                .iter()
                .map(|l| (l.host.clone(), l.name.clone()))
                .collect(),
            fleet: true,
        }
    }

    /// Whether an alert of `host` about `location` (None: about a run itself) is in scope;
    /// the hosts themselves are narrowed by the store's view.
    fn covers(&self, host: &str, location: Option<&str>) -> bool {
        location.is_none_or(|l| self.locations.contains(&(host.to_string(), l.to_string())))
    }
}

/// Somewhere alerts go. `deliver` sends one digest as one message; its error must not
/// contain secrets verbatim where it can avoid it (the caller redacts it again).
pub trait Channel {
    /// The name used in the config, the store and `alert_delivery_failed`.
    fn name(&self) -> &'static str;
    fn deliver(&self, digest: &Digest) -> Result<()>;
}

/// The enabled channels of the config.
pub fn channels(config: &Config) -> Vec<Box<dyn Channel>> {
    let a = &config.alerts;
    let timeout = a.timeout.0;
    let mut out: Vec<Box<dyn Channel>> = Vec::new();
    if a.email.enabled {
        out.push(Box::new(email::Email {
            config: a.email.clone(),
            timeout,
        }));
    }
    if a.slack.enabled {
        out.push(Box::new(slack::Slack {
            webhook_url: a.slack.webhook_url.clone(),
            timeout,
        }));
    }
    if a.webhook.enabled {
        out.push(Box::new(webhook::Webhook {
            url: a.webhook.url.clone(),
            timeout,
        }));
    }
    if a.log.enabled {
        out.push(Box::new(log::Log));
    }
    out
}

pub fn run(ctx: &RunContext) -> Result<Summary> {
    let secrets = Secrets::from_config(ctx.config);
    run_with(ctx, &channels(ctx.config), &secrets, &ctx.host)
}

/// `--check-alerts --fleet` (or `--host NAME`): the alerts of every location in `rows`,
/// on this machine's channels, each notice told once across every run sharing the store.
pub fn run_fleet(ctx: &RunContext, rows: &[FleetLocation]) -> Result<Summary> {
    let secrets = Secrets::from_config(ctx.config);
    run_in(
        ctx,
        &Scope::fleet(rows),
        &channels(ctx.config),
        &secrets,
        &ctx.host,
    )
}

/// How long a run's claim on an alert's next notice holds at most: long enough for every
/// channel to use up its timeout, short enough that a run stuck for good does not silence
/// the alert for long (a run that died loses its claims at once, with its session).
fn claim_lifetime(config: &Config) -> chrono::TimeDelta {
    let timeout = config.alerts.timeout.0 * 12;
    chrono::TimeDelta::from_std(timeout.max(std::time::Duration::from_secs(60)))
        .unwrap_or(chrono::TimeDelta::minutes(2))
}

/// An alert this run may tell channels about.
struct Candidate {
    alert: AlertRow,
    since: DateTime<Utc>,
    resolved_at: Option<DateTime<Utc>>,
    deliveries: Vec<AlertDelivery>,
    /// Found only once it was over (a gap no run saw): its resolution is its only notice.
    after_the_fact: bool,
}

/// What happened to one alert across channels this run.
#[derive(Default)]
struct Outcome {
    /// The most significant event some channel received (Open < Escalation < Repeat < Resolved).
    delivered: Option<Event>,
    failed: bool,
    noticed: bool,
    /// Another run held the claim on its next notice: that run tells it.
    busy: bool,
}

/// `run` with the channels, secrets and host given (tests pass their own).
///
/// Two rounds: first every alert about the backups, then — once this run has shown which
/// channels work — the alerts about the channels themselves (`alert_delivery_failed`),
/// so a channel's failure is told on the others in the run it happens, and its recovery
/// in the run it recovers (never a stale "new failure" for a channel that just worked).
pub fn run_with(
    ctx: &RunContext,
    channels: &[Box<dyn Channel>],
    secrets: &Secrets,
    host: &str,
) -> Result<Summary> {
    run_in(ctx, &Scope::of_run(ctx), channels, secrets, host)
}

fn run_in(
    ctx: &RunContext,
    scope: &Scope,
    channels: &[Box<dyn Channel>],
    secrets: &Secrets,
    host: &str,
) -> Result<Summary> {
    let mut summary = Summary::default();
    let about_backups = |k: Kind| k != Kind::AlertDeliveryFailed;
    let about_channels = |k: Kind| k == Kind::AlertDeliveryFailed;
    let first = candidates(ctx, scope, &about_backups, &mut summary)?;
    if channels.is_empty() && !first.is_empty() {
        tracing::warn!(
            "no alert channel is enabled (alerts.log/email/slack/webhook); alerts are recorded but not sent"
        );
    }
    let all: Vec<&dyn Channel> = channels.iter().map(|c| c.as_ref()).collect();
    let mut round = deliver_round(ctx, scope, &all, secrets, host, &first, &mut summary)?;
    sync_channel_problems(ctx, channels, &round)?;
    let second = candidates(ctx, scope, &about_channels, &mut summary)?;
    // A channel that just failed is not tried again in the same run (a hanging server
    // would cost the timeout twice); it is retried next run.
    let failed: HashSet<&str> = round
        .failures
        .iter()
        .filter_map(|p| p.path.as_deref())
        .collect();
    let working: Vec<&dyn Channel> = channels
        .iter()
        .map(|c| c.as_ref())
        .filter(|c| !failed.contains(c.name()))
        .collect();
    let more = deliver_round(ctx, scope, &working, secrets, host, &second, &mut summary)?;
    if !more.failures.is_empty() {
        // A channel that failed only in the second round: its problem opens now and is
        // told on the others next run.
        round.failures.extend(more.failures);
        round.attempted.extend(more.attempted);
        sync_channel_problems(ctx, channels, &round)?;
    }
    Ok(summary)
}

/// What one round of deliveries found out about the channels.
#[derive(Default)]
struct Round {
    /// One `alert_delivery_failed` problem per channel that failed.
    failures: Vec<Problem>,
    /// Channels that had something to deliver (so their state is known).
    attempted: HashSet<String>,
}

/// Tell every channel what it still needs to hear about `candidates`, as one digest per
/// channel, and record every delivery.
///
/// Each notice is claimed in the store before it is sent, and what the channel was told
/// is read again once claimed: of two runs sharing the store (two fleet runs, or a fleet
/// run and a host's own), only the one holding the claim sends, and a run that claims
/// after the other recorded its delivery finds nothing left to say.
fn deliver_round(
    ctx: &RunContext,
    scope: &Scope,
    channels: &[&dyn Channel],
    secrets: &Secrets,
    host: &str,
    candidates: &[Candidate],
    summary: &mut Summary,
) -> Result<Round> {
    let mut round = Round::default();
    let clock = Clock {
        now: ctx.now,
        tz: ctx.tz(),
    };
    // Every digest is built before any is delivered, so the log channel's own lines
    // never show up as "recent log" in another channel's message.
    let include_log = ctx.config.alerts.include_log;
    let log_of = |location: &str| match include_log {
        true => ctx.recent_log.recent(location, digest::LOG_LINES),
        false => Vec::new(),
    };
    let mut outcomes: HashMap<i64, Outcome> = HashMap::new();
    let expires = ctx.now + claim_lifetime(ctx.config);
    let mut plans: Vec<(&dyn Channel, Digest)> = Vec::new();
    for channel in channels {
        let name = channel.name();
        let (mut due, not_yet): (Vec<&Candidate>, Vec<&Candidate>) = candidates
            .iter()
            .partition(|c| notice_for(name, c, &c.deliveries, ctx, Duration::zero()).is_some());
        if due.is_empty() {
            continue;
        }
        // A message goes out on this channel anyway: repeats due within the next quarter
        // of the cooldown go with it, so that alerts opened an hour apart (a missed
        // backup, then no backups left) page once a night, not twice.
        let early = ctx.config.alerts.cooldown.as_chrono() / 4;
        let mut early_ids = HashSet::new();
        for c in not_yet {
            if notice_for(name, c, &c.deliveries, ctx, early)
                .is_some_and(|n| n.event == Event::Repeat)
            {
                early_ids.insert(c.alert.id);
                due.push(c);
            }
        }
        let ids: Vec<i64> = due.iter().map(|c| c.alert.id).collect();
        let claimed = ctx
            .store
            .claim_notices(&ids, name, ctx.run_id, ctx.now, expires)?;
        // What the channel was told, read again once claimed (all at once).
        let mut told = ctx
            .store
            .deliveries_of(&claimed.iter().copied().collect::<Vec<_>>())?;
        let mut notices = Vec::new();
        for c in due {
            if !claimed.contains(&c.alert.id) {
                outcomes.entry(c.alert.id).or_default().busy = true;
                continue;
            }
            let told = told.remove(&c.alert.id).unwrap_or_default();
            let early = match early_ids.contains(&c.alert.id) {
                true => early,
                false => Duration::zero(),
            };
            notices.extend(notice_for(name, c, &told, ctx, early));
        }
        if notices.is_empty() {
            ctx.store.release_claims(ctx.run_id, name)?;
            continue;
        }
        let digest = Digest::build_for(&notices, host, scope.fleet, &clock, &log_of)
            .linking(ctx.config.reporting.base_url.as_deref());
        plans.push((*channel, digest));
    }
    for (channel, digest) in &plans {
        round.attempted.insert(channel.name().to_string());
        // On one line whatever a server answered: the error is stored, printed and told
        // on the other channels.
        let error = channel
            .deliver(digest)
            .err()
            .map(|e| one_line(&secrets.redact(&crate::output::chained(&e))).into_owned());
        let rows: Vec<AlertDelivery> = digest
            .lines()
            .map(|line| AlertDelivery {
                alert_id: line.alert_id,
                channel: channel.name().to_string(),
                event: line.event,
                severity: line.severity,
                at: ctx.now,
                success: error.is_none(),
                error: error.clone(),
            })
            .collect();
        ctx.store.record_deliveries(ctx.run_id, &rows)?;
        for row in &rows {
            let o = outcomes.entry(row.alert_id).or_default();
            o.noticed = true;
            if row.success {
                o.delivered = Some(o.delivered.map_or(row.event, |e| e.min(row.event)));
            } else {
                o.failed = true;
            }
        }
        if let Some(error) = error {
            tracing::warn!(channel = channel.name(), "alert delivery failed: {error}");
            round
                .failures
                .push(delivery_problem(channel.name(), rows.len(), &error));
        }
    }
    let mut finished = Vec::new();
    for c in candidates {
        let o = outcomes.remove(&c.alert.id).unwrap_or_default();
        count(summary, c, &o, !channels.is_empty());
        if c.resolved_at.is_some() && !o.failed && !o.busy {
            finished.push(c.alert.id);
        }
    }
    ctx.store.finish_alerts(&finished, ctx.now)?;
    Ok(round)
}

/// Open or close the `alert_delivery_failed` problems. A channel's failure closes only
/// once that channel was tried again (or is disabled).
fn sync_channel_problems(
    ctx: &RunContext,
    channels: &[Box<dyn Channel>],
    round: &Round,
) -> Result<()> {
    let enabled: HashSet<&str> = channels.iter().map(|c| c.name()).collect();
    let rejudged = |p: &Problem| {
        p.path
            .as_deref()
            .is_none_or(|c| round.attempted.contains(c) || !enabled.contains(c))
    };
    ctx.store.sync_problems(
        Operation::CheckAlerts,
        None,
        &round.failures,
        &rejudged,
        ctx.now,
    )
}

/// Open alerts for open problems of the kinds `wanted` that pass the filters, and close
/// the alerts whose problem was resolved. Filtered problems count as suppressed.
fn candidates(
    ctx: &RunContext,
    scope: &Scope,
    wanted: &dyn Fn(Kind) -> bool,
    summary: &mut Summary,
) -> Result<Vec<Candidate>> {
    let store = ctx.store;
    let ids = &scope.ids;
    // Gaps no run saw while they were open get an alert, to be told once as resolved
    // below (a delivery that fails is retried like any other).
    if ctx.config.monitoring.alert_on_failure && ctx.config.alerts.send_resolved {
        let gaps = store.unannounced_gaps(ids, ctx.window_start())?;
        let gaps: Vec<&StoredProblem> = gaps.iter().filter(|p| wanted(p.problem.kind)).collect();
        store.open_alerts_for(&gaps, ctx.now)?;
    }
    let mut alerts: HashMap<i64, AlertRow> = store
        .unfinished_alerts()?
        .into_iter()
        .filter(|a| wanted(a.problem.kind))
        .filter(|a| scope.covers(&a.host, a.problem.location.as_deref()))
        .map(|a| (a.problem_id, a))
        .collect();
    let marks = Marks::load(store)?;
    let mut open = store.open_problems(None, Some(ids))?;
    crate::monitor::overdue_as_of_now(
        ctx,
        open.iter_mut().map(|p| (p.location_id, &mut p.problem)),
    )?;
    let open: Vec<(StoredProblem, Option<Suppression>)> = open
        .into_iter()
        .filter(|p| wanted(p.problem.kind))
        .map(|p| {
            let marked = decide::marked(decide::Marked {
                acknowledged: marks.acknowledged(&p),
                silenced: marks.silenced_at(&p.host, &p.problem, ctx.now),
            });
            let s = suppression(&p, &ctx.config.monitoring, &ctx.config.alerts).or(marked);
            (p, s)
        })
        .collect();
    // A health_degraded scored before the location's last recovery (judged by last
    // night's --report, the trouble it scored resolved since) waits for the next
    // --report to score it again: told now, it would page with a score of the outage.
    let health_locations: Vec<i64> = open
        .iter()
        .filter(|(p, _)| p.problem.kind == Kind::HealthDegraded)
        .filter_map(|(p, _)| p.location_id)
        .collect();
    let recoveries = store.last_recoveries(&health_locations)?;
    let scored_before_recovery = |p: &StoredProblem| {
        p.problem.kind == Kind::HealthDegraded
            && p.location_id
                .and_then(|l| recoveries.get(&l))
                .is_some_and(|recovered| p.last_seen < *recovered)
    };
    // Locations with a problem other than health_degraded that may be alerted.
    let alerted: HashSet<String> = open
        .iter()
        .filter(|(p, s)| s.is_none() && p.problem.kind != Kind::HealthDegraded)
        .filter_map(|(p, _)| p.problem.location.clone())
        .collect();
    // Each open problem to tell: its alert, or None when it needs one opened. The
    // store's writes and reads for all of them go at once (a round trip each on a
    // shared store, however many alerts a fleet has).
    let mut told: Vec<(Option<AlertRow>, &StoredProblem)> = Vec::new();
    let mut refreshed: Vec<(i64, Severity, &str)> = Vec::new();
    for (p, suppressed) in &open {
        let suppressed = suppressed.or_else(|| {
            (decide::outranked(p.problem.kind, p.problem.location.as_deref(), &alerted)
                || scored_before_recovery(p))
            .then_some(Suppression::Outranked)
        });
        match (alerts.remove(&p.id), suppressed) {
            (Some(mut a), _) => {
                if a.problem.severity != p.problem.severity
                    || a.problem.message != p.problem.message
                {
                    refreshed.push((a.id, p.problem.severity, &p.problem.message));
                    a.problem.severity = p.problem.severity;
                    a.problem.message = p.problem.message.clone();
                }
                if suppressed.is_some() {
                    // An alert already announced stays open (for its resolution) but is
                    // quiet.
                    summary.suppressed += 1;
                } else {
                    told.push((Some(a), p));
                }
            }
            (None, None) => told.push((None, p)),
            (None, Some(_)) => summary.suppressed += 1,
        }
    }
    store.refresh_alerts(&refreshed)?;
    let new: Vec<&StoredProblem> = told
        .iter()
        .filter(|(a, _)| a.is_none())
        .map(|(_, p)| *p)
        .collect();
    let mut opened = store.open_alerts_for(&new, ctx.now)?;
    let mut out = Vec::new();
    for (alert, p) in told {
        let alert = match alert {
            Some(a) => a,
            None => opened
                .remove(&p.id)
                .ok_or_else(|| anyhow::anyhow!("the alert of problem {} was not stored", p.id))?,
        };
        out.push(Candidate {
            deliveries: Vec::new(),
            alert,
            since: p.first_seen,
            resolved_at: None,
            after_the_fact: false,
        });
    }
    // The alerts left have no open problem: those whose problem was resolved close.
    let mut left: Vec<AlertRow> = alerts.into_values().collect();
    left.sort_by_key(|a| a.id);
    let problem_ids: Vec<i64> = left.iter().map(|a| a.problem_id).collect();
    let mut problems = store.problems(&problem_ids)?;
    let mut closed = Vec::new();
    let mut quiet = Vec::new();
    for mut alert in left {
        let problem = problems.remove(&alert.problem_id).ok_or_else(|| {
            anyhow::anyhow!(
                "alert {} follows problem {}, which is not in the store",
                alert.id,
                alert.problem_id
            )
        })?;
        let Some(resolved_at) = problem.resolved_at else {
            continue;
        };
        closed.push((alert.id, resolved_at));
        if marks.silenced_at(&alert.host, &alert.problem, resolved_at) {
            // Resolved during a maintenance window: as quiet as the window itself.
            quiet.push(alert.id);
            continue;
        }
        // The resolved notice says what the problem finally was (a missed run says how
        // many slots it lasted).
        alert.problem.message = problem.problem.message;
        out.push(Candidate {
            deliveries: Vec::new(),
            alert,
            since: problem.first_seen,
            resolved_at: Some(resolved_at),
            after_the_fact: problem.first_seen == resolved_at,
        });
    }
    store.close_alerts(&closed)?;
    store.finish_alerts(&quiet, ctx.now)?;
    let ids: Vec<i64> = out.iter().map(|c| c.alert.id).collect();
    let mut deliveries = store.deliveries_of(&ids)?;
    for c in &mut out {
        c.deliveries = deliveries.remove(&c.alert.id).unwrap_or_default();
    }
    Ok(out)
}

/// The notice one channel needs this run about one alert, given what it was told.
fn notice_for(
    channel: &str,
    c: &Candidate,
    deliveries: &[AlertDelivery],
    ctx: &RunContext,
    early: Duration,
) -> Option<Notice> {
    let alerts = &ctx.config.alerts;
    // A channel's own failure is reported on the channels that work.
    if c.alert.problem.kind == Kind::AlertDeliveryFailed
        && c.alert.problem.path.as_deref() == Some(channel)
    {
        return None;
    }
    let history = ChannelHistory::of(channel, deliveries);
    let event = match c.resolved_at {
        None => next_for_open(
            &history,
            c.alert.problem.severity,
            ctx.now + early,
            alerts.cooldown.as_chrono(),
        ),
        Some(_) if c.after_the_fact => {
            (alerts.send_resolved && !history.resolved_delivered).then_some(Event::Resolved)
        }
        Some(_) => next_for_closed(&history, alerts.send_resolved),
    }?;
    Some(Notice {
        event,
        alert: c.alert.clone(),
        since: c.since,
        resolved_at: c.resolved_at,
        previous_severity: history
            .last_notice
            .map(|(_, s)| s)
            .filter(|_| matches!(event, Event::Escalation | Event::Deescalation)),
    })
}

fn delivery_problem(channel: &str, alerts: usize, error: &str) -> Problem {
    let s = if alerts == 1 { "" } else { "s" };
    Problem {
        kind: Kind::AlertDeliveryFailed,
        severity: Severity::Warning,
        location: None,
        path: Some(channel.to_string()),
        slot: None,
        message: format!(
            "the {channel} alert channel could not deliver {alerts} alert{s} (retried next run): {error}"
        ),
    }
}

/// The counters count alerts, not messages.
fn count(summary: &mut Summary, c: &Candidate, o: &Outcome, any_channel: bool) {
    if o.failed {
        summary.delivery_failures += 1;
    }
    match o.delivered {
        Some(Event::Open) => summary.sent += 1,
        Some(Event::Escalation | Event::Deescalation | Event::Repeat) => summary.repeated += 1,
        Some(Event::Resolved) => summary.resolved += 1,
        None if !o.noticed && !o.busy && c.resolved_at.is_none() && any_channel => {
            summary.suppressed += 1
        }
        None => {}
    }
}

/// Open alerts of the selected locations (and of the run itself), for `--status`.
pub fn status_view(ctx: &RunContext) -> Result<Vec<OpenAlert>> {
    status_view_in(ctx, &Scope::of_run(ctx))
}

/// Open alerts of the fleet view's locations `rows` (and of the hosts' runs themselves),
/// for `--status --fleet`, each naming its host.
pub fn fleet_status_view(ctx: &RunContext, rows: &[FleetLocation]) -> Result<Vec<OpenAlert>> {
    status_view_in(ctx, &Scope::fleet(rows))
}

fn status_view_in(ctx: &RunContext, scope: &Scope) -> Result<Vec<OpenAlert>> {
    let open: Vec<AlertRow> = ctx
        .store
        .open_alerts()?
        .into_iter()
        .filter(|a| scope.covers(&a.host, a.problem.location.as_deref()))
        .collect();
    let ids: Vec<i64> = open.iter().map(|a| a.id).collect();
    let mut deliveries = ctx.store.deliveries_of(&ids)?;
    let mut out = Vec::new();
    for a in open {
        let host = scope.fleet.then(|| a.host.clone());
        let told = deliveries.remove(&a.id).unwrap_or_default();
        let mut view = open_alert_view(ctx, a, &told);
        view.host = host;
        out.push(view);
    }
    Ok(out)
}

fn open_alert_view(ctx: &RunContext, a: AlertRow, deliveries: &[AlertDelivery]) -> OpenAlert {
    let mut last_by_channel: HashMap<&str, &AlertDelivery> = HashMap::new();
    for d in deliveries {
        last_by_channel.insert(d.channel.as_str(), d);
    }
    let mut failing: Vec<String> = last_by_channel
        .values()
        .filter(|d| !d.success)
        .map(|d| d.channel.clone())
        .collect();
    failing.sort();
    OpenAlert {
        kind: a.problem.kind,
        severity: a.problem.severity,
        location: a.problem.location,
        path: a.problem.path,
        slot: a.problem.slot,
        message: a.problem.message,
        opened_at: ctx.local_rfc3339(a.opened_at),
        last_sent_at: a.last_sent_at.map(|t| ctx.local_rfc3339(t)),
        deliveries: a.send_count,
        failing_channels: failing,
        host: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config;
    use crate::run::SelectedLocation;
    use crate::store::Store;
    use crate::store::from_unix;
    use std::cell::RefCell;
    use std::rc::Rc;

    /// A channel that remembers what it was sent and fails while `failing` is set.
    #[derive(Clone)]
    struct Fake {
        name: &'static str,
        sent: Rc<RefCell<Vec<Digest>>>,
        failing: Rc<RefCell<Option<String>>>,
    }

    impl Fake {
        fn new(name: &'static str) -> Fake {
            Fake {
                name,
                sent: Rc::default(),
                failing: Rc::default(),
            }
        }

        /// (event, kind) of every line of the messages since the last call, and forget
        /// them (a run sends one message per round: backups, then channels).
        fn take(&self) -> Vec<(Event, Kind)> {
            let mut sent = self.sent.borrow_mut();
            let events = sent
                .iter()
                .flat_map(|d| d.lines().map(|l| (l.event, l.kind)))
                .collect();
            sent.clear();
            events
        }
    }

    impl Channel for Fake {
        fn name(&self) -> &'static str {
            self.name
        }

        fn deliver(&self, digest: &Digest) -> Result<()> {
            self.sent.borrow_mut().push(digest.clone());
            match self.failing.borrow().as_ref() {
                Some(e) => anyhow::bail!("{e}"),
                None => Ok(()),
            }
        }
    }

    struct Setup {
        _dir: tempfile::TempDir,
        config: Config,
        store: Store,
        loc: i64,
    }

    fn setup(alerts_yaml: &str) -> Setup {
        let dir = tempfile::tempdir().unwrap();
        let yaml =
            format!("backups:\n  locations:\n    - name: db\n      path: /srv/db\n{alerts_yaml}");
        let config = config::parse_str(&yaml, dir.path()).unwrap();
        let store = Store::open(&dir.path().join("s.db")).unwrap();
        let loc = store
            .upsert_location("db", "/srv/db", "generic", from_unix(0))
            .unwrap();
        Setup {
            _dir: dir,
            config,
            store,
            loc,
        }
    }

    const HOUR: i64 = 3600;

    impl Setup {
        fn judge(&self, found: &[Problem], at: i64) {
            self.store
                .sync_problems(
                    Operation::Monitor,
                    Some(self.loc),
                    found,
                    &|_| true,
                    from_unix(at),
                )
                .unwrap();
        }

        /// A run at `at` with the run id `run`.
        fn ctx(&self, at: i64, run: i64) -> RunContext<'_> {
            RunContext {
                config: &self.config,
                store: &self.store,
                now: from_unix(at),
                run_id: run,
                host: "test-host".into(),
                recent_log: Default::default(),
                locations: vec![SelectedLocation {
                    id: self.loc,
                    config: &self.config.backups.locations[0],
                }],
                days: 7,
                progress: false,
            }
        }

        fn check(&self, channels: &[&Fake], at: i64) -> Summary {
            let ctx = self.ctx(at, at);
            let boxed: Vec<Box<dyn Channel>> = channels
                .iter()
                .map(|f| Box::new((*f).clone()) as Box<dyn Channel>)
                .collect();
            let mut secrets = Secrets::default();
            secrets.add_url("https://hooks.example.com/T0/supersecrettoken");
            run_with(&ctx, &boxed, &secrets, "testhost").unwrap()
        }
    }

    fn summary(sent: u64, repeated: u64, resolved: u64, suppressed: u64, failures: u64) -> Summary {
        Summary {
            sent,
            repeated,
            resolved,
            suppressed,
            delivery_failures: failures,
        }
    }

    /// A slot named by a letter: `a` is 01:00, `b` 02:00, …
    fn test_slot(name: &str) -> crate::problem::SlotStart {
        let hour = name
            .bytes()
            .next()
            .map_or(0, |b| b.saturating_sub(b'a') + 1);
        format!("2026-11-19T{hour:02}:00:00+00:00")
            .parse()
            .expect("slot")
    }

    fn missing(slot: &str) -> Problem {
        Problem::new(
            Kind::MissingBackup,
            Severity::Critical,
            "db",
            "no backup in its slot",
        )
        .with_slot(test_slot(slot))
    }

    #[test]
    fn open_cooldown_repeat_escalation_and_resolution() {
        let s = setup("alerts:\n  cooldown: 24h\n");
        let ch = Fake::new("email");
        let disk = |sev| Problem::new(Kind::LowDiskSpace, sev, "db", "3% free");
        s.judge(&[missing("a"), missing("b"), disk(Severity::Warning)], 0);
        assert_eq!(s.check(&[&ch], HOUR), summary(3, 0, 0, 0, 0));
        let first = ch.sent.borrow()[0].clone();
        assert_eq!(
            first.subject,
            "[backup-monitor] CRITICAL db: missing_backup (+2 more)"
        );
        assert_eq!(ch.take().len(), 3, "one digest with all three");

        assert_eq!(
            s.check(&[&ch], 2 * HOUR),
            summary(0, 0, 0, 3, 0),
            "cooldown"
        );
        assert!(ch.take().is_empty(), "nothing sent within the cooldown");

        s.judge(
            &[missing("a"), missing("b"), disk(Severity::Critical)],
            3 * HOUR,
        );
        assert_eq!(s.check(&[&ch], 3 * HOUR), summary(0, 1, 0, 2, 0));
        assert_eq!(ch.take(), [(Event::Escalation, Kind::LowDiskSpace)]);

        // The escalation at 3h restarted the disk alert's cooldown: due again at 27h,
        // within a quarter of the cooldown of the repeats going out now, so it goes with
        // them (one message, not another an hour later).
        assert_eq!(
            s.check(&[&ch], 26 * HOUR),
            summary(0, 3, 0, 0, 0),
            "cooldown passed"
        );
        assert_eq!(
            ch.take(),
            [
                (Event::Repeat, Kind::MissingBackup),
                (Event::Repeat, Kind::MissingBackup),
                (Event::Repeat, Kind::LowDiskSpace)
            ]
        );

        s.judge(&[disk(Severity::Critical)], 30 * HOUR);
        // The disk alert was told at 26h: not due again, even with a message going out.
        assert_eq!(s.check(&[&ch], 30 * HOUR), summary(0, 0, 2, 1, 0));
        let digest = ch.sent.borrow()[0].clone();
        assert_eq!(
            ch.take(),
            [
                (Event::Resolved, Kind::MissingBackup),
                (Event::Resolved, Kind::MissingBackup)
            ]
        );
        let line = digest.lines().nth(1).unwrap();
        assert_eq!(line.duration_seconds, 30 * HOUR);

        assert_eq!(s.check(&[&ch], 31 * HOUR), summary(0, 0, 0, 1, 0));
        assert!(ch.take().is_empty(), "a resolution is sent once");
        assert_eq!(
            s.store.unfinished_alerts().unwrap().len(),
            1,
            "resolved alerts are finished"
        );
    }

    #[test]
    fn a_failing_channel_is_recorded_redacted_and_retried_without_stopping_others() {
        let s = setup("");
        let (good, bad) = (Fake::new("email"), Fake::new("webhook"));
        *bad.failing.borrow_mut() =
            Some("POST https://hooks.example.com/T0/supersecrettoken: HTTP 500".into());
        s.judge(&[missing("a")], 0);
        // The email channel gets the problem and, in the same run, the webhook's failure.
        assert_eq!(s.check(&[&bad, &good], HOUR), summary(2, 0, 0, 0, 1));
        assert_eq!(
            good.take(),
            [
                (Event::Open, Kind::MissingBackup),
                (Event::Open, Kind::AlertDeliveryFailed)
            ]
        );
        assert_eq!(bad.take(), [(Event::Open, Kind::MissingBackup)]);
        let failed = s
            .store
            .open_problems(Some(&[Operation::CheckAlerts]), None)
            .unwrap();
        assert_eq!(failed.len(), 1);
        let p = &failed[0].problem;
        assert_eq!(
            (p.kind, p.path.as_deref(), p.location.as_deref()),
            (Kind::AlertDeliveryFailed, Some("webhook"), None)
        );
        assert!(
            p.message.contains("HTTP 500") && !p.message.contains("supersecrettoken"),
            "{}",
            p.message
        );
        let alert = &s.store.open_alerts().unwrap()[0];
        let history = s.store.alert_deliveries(alert.id).unwrap();
        let error = history
            .iter()
            .find(|d| !d.success)
            .unwrap()
            .error
            .clone()
            .unwrap();
        assert!(
            error.contains("[redacted]") && !error.contains("supersecrettoken"),
            "{error}"
        );

        // Next run, well within the cooldown: only the webhook is retried (once); the
        // email channel was told already.
        assert_eq!(s.check(&[&bad, &good], 2 * HOUR), summary(0, 0, 0, 1, 1));
        assert!(good.take().is_empty());
        assert_eq!(bad.take(), [(Event::Open, Kind::MissingBackup)]);

        // The webhook delivers again: its failure closes and the email channel hears of
        // the recovery in the same run.
        *bad.failing.borrow_mut() = None;
        assert_eq!(s.check(&[&bad, &good], 3 * HOUR), summary(1, 0, 1, 0, 0));
        assert_eq!(bad.take(), [(Event::Open, Kind::MissingBackup)]);
        assert_eq!(good.take(), [(Event::Resolved, Kind::AlertDeliveryFailed)]);
        assert!(
            s.store
                .open_problems(Some(&[Operation::CheckAlerts]), None)
                .unwrap()
                .is_empty(),
            "the webhook delivered again: its failure closed"
        );
        assert_eq!(s.check(&[&bad, &good], 4 * HOUR), summary(0, 0, 0, 1, 0));
        assert!(good.take().is_empty());
        assert!(
            bad.take().is_empty(),
            "never told the webhook about itself, so no resolution there"
        );
    }

    #[test]
    fn switches_notify_and_min_consecutive_suppress() {
        let s = setup("monitoring:\n  alert_on_failure: false\n");
        let ch = Fake::new("log");
        s.judge(&[missing("a")], 0);
        let health = Problem::new(Kind::HealthDegraded, Severity::Warning, "db", "0.4");
        s.store
            .sync_problems(
                Operation::Report,
                Some(s.loc),
                &[health],
                &|_| true,
                from_unix(0),
            )
            .unwrap();
        assert_eq!(s.check(&[&ch], HOUR), summary(1, 0, 0, 1, 0));
        assert_eq!(
            ch.take(),
            [(Event::Open, Kind::HealthDegraded)],
            "health_degraded always alerts"
        );

        let s = setup("alerts:\n  notify: critical\n");
        s.judge(
            &[
                missing("a"),
                Problem::new(Kind::LowDiskSpace, Severity::Warning, "db", "low"),
            ],
            0,
        );
        assert_eq!(s.check(&[&ch], HOUR), summary(1, 0, 0, 1, 0));
        assert_eq!(ch.take(), [(Event::Open, Kind::MissingBackup)]);

        let s = setup("alerts:\n  min_consecutive: 2\n");
        s.judge(&[missing("a")], 0);
        assert_eq!(s.check(&[&ch], HOUR), summary(0, 0, 0, 1, 0));
        assert!(ch.take().is_empty(), "seen once, not yet an alert");
        assert!(s.store.open_alerts().unwrap().is_empty());
        s.judge(&[missing("a")], 2 * HOUR);
        assert_eq!(s.check(&[&ch], 2 * HOUR), summary(1, 0, 0, 0, 0));
        assert_eq!(ch.take(), [(Event::Open, Kind::MissingBackup)]);
    }

    #[test]
    fn send_resolved_false_closes_quietly() {
        let s = setup("alerts:\n  send_resolved: false\n");
        let ch = Fake::new("log");
        s.judge(&[missing("a")], 0);
        s.check(&[&ch], HOUR);
        ch.take();
        s.judge(&[], 2 * HOUR);
        assert_eq!(s.check(&[&ch], 2 * HOUR), summary(0, 0, 0, 0, 0));
        assert!(ch.take().is_empty());
        assert!(s.store.unfinished_alerts().unwrap().is_empty());
    }

    #[test]
    fn a_notice_claimed_by_a_run_that_died_is_sent_by_the_next() {
        let s = setup("");
        let ch = Fake::new("webhook");
        s.judge(&[missing("a")], 0);
        let problem = &s.store.open_problems(None, None).unwrap()[0];
        let alert = s.store.open_alert(problem, from_unix(0)).unwrap();
        let claimed = s
            .store
            .claim_notices(
                &[alert.id],
                "webhook",
                999,
                from_unix(HOUR),
                from_unix(HOUR + 120),
            )
            .unwrap();
        assert_eq!(claimed.len(), 1);
        // Run 999 died before it sent (on SQLite no other run can be going on).
        assert_eq!(s.check(&[&ch], HOUR), summary(1, 0, 0, 0, 0));
        assert_eq!(ch.take(), [(Event::Open, Kind::MissingBackup)]);
    }

    #[test]
    fn a_run_that_claims_after_another_delivered_finds_nothing_left_to_say() {
        let s = setup("");
        let ch = Fake::new("webhook");
        s.judge(&[missing("a")], 0);
        // Run B reads what the channel was told (nothing yet)…
        let b = s.ctx(HOUR, 2);
        let scope = Scope::of_run(&b);
        let mut counted = Summary::default();
        let seen = candidates(&b, &scope, &|_| true, &mut counted).unwrap();
        assert_eq!(seen.len(), 1);
        // …run A tells it and records it…
        assert_eq!(s.check(&[&ch], HOUR), summary(1, 0, 0, 0, 0));
        assert_eq!(ch.take(), [(Event::Open, Kind::MissingBackup)]);
        // …then B gets the claim: it reads the history again and sends nothing.
        let channels: Vec<&dyn Channel> = vec![&ch];
        deliver_round(
            &b,
            &scope,
            &channels,
            &Secrets::default(),
            "h",
            &seen,
            &mut counted,
        )
        .unwrap();
        assert!(ch.take().is_empty(), "said once");
    }
}
