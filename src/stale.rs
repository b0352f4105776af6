//! Who watches the watcher: `monitor_stale` (critical, one per location) for a location
//! whose last `--monitor` judgement is older than `monitoring.max_run_age`, or that no
//! `--monitor` ever judged. A nightly job that stopped running then turns the plugin
//! check (`--status --format nagios`) CRITICAL instead of repeating the last verdict.
//!
//! Judged by `--status` (live, never stored: it writes nothing), and by `--report` and
//! `--check-alerts` (stored, so it is alerted and resolves like any problem). A
//! `--monitor` run resolves it for the locations it judged.
//!
//! In a shared store, the fleet view ([`of_fleet_location`]) judges every host's
//! locations from the store alone, naming the host that stopped: `--status --fleet` live,
//! `--check-alerts --fleet` stored as that host's problem ([`sync_fleet`]), so the host's
//! own next `--monitor` resolves it. A host whose lock is held by a run that has been
//! going for longer than `monitoring.max_run_age` is judged all the same, that run named.

use crate::monitor::duration_text;
use crate::problem::{Kind, Operation, Problem, Severity};
use crate::run::{RunContext, SelectedLocation};
use crate::store::{Changes, FleetLocation, LockHolder, by_location, changes};
use anyhow::Result;
use chrono::{DateTime, Utc};
use std::collections::HashMap;

/// The problem of each selected location whose last judgement is too old, by location
/// id (the last judgements read in one statement).
pub fn problems(ctx: &RunContext) -> Result<HashMap<i64, Problem>> {
    let ids: Vec<i64> = ctx.locations.iter().map(|s| s.id).collect();
    let scans = ctx.store.location_scan_states(&ids)?;
    Ok(ctx
        .locations
        .iter()
        .filter_map(|sel| {
            let last = scans.get(&sel.id).and_then(|s| s.last_scan_at);
            problem(ctx, sel, last).map(|p| (sel.id, p))
        })
        .collect())
}

/// The problem for one location last judged at `last`, if that is too long ago.
fn problem(
    ctx: &RunContext,
    sel: &SelectedLocation,
    last: Option<DateTime<Utc>>,
) -> Option<Problem> {
    let max_age = ctx.config.monitoring.max_run_age.0;
    let age = last.map(|t| (ctx.now - t).to_std().unwrap_or_default());
    if age.is_some_and(|a| a <= max_age) {
        return None;
    }
    let message = match (last, age) {
        (Some(t), Some(age)) => format!(
            "not checked by --monitor since {} ({} ago, more than monitoring.max_run_age {}): is its cron job or timer still running?",
            ctx.local_short(t),
            duration_text(age),
            duration_text(max_age)
        ),
        _ => never_message(),
    };
    Some(stale(&sel.config.name, message))
}

/// A configured location that no `--monitor` has judged yet.
pub fn never_checked(location: &str) -> Problem {
    stale(location, never_message())
}

fn never_message() -> String {
    "never checked by --monitor: install its nightly job (cron or the systemd timer) or run backup-monitor --monitor".into()
}

fn stale(location: &str, message: String) -> Problem {
    Problem::new(Kind::MonitorStale, Severity::Critical, location, message)
}

/// Judge and store `monitor_stale` for every selected location; when this run's
/// `--monitor` judged them (`monitored`), none is stale and open ones resolve.
pub fn sync(ctx: &RunContext, monitored: bool) -> Result<()> {
    // A monitoring run only closes: one read finds the (rare) locations with one open.
    let open: Option<std::collections::HashSet<i64>> = match monitored {
        false => None,
        true => {
            let ids: Vec<i64> = ctx.locations.iter().map(|s| s.id).collect();
            Some(
                ctx.store
                    .open_problems(Some(&[Operation::Report]), Some(&ids))?
                    .iter()
                    .filter(|p| p.problem.kind == Kind::MonitorStale)
                    .filter_map(|p| p.location_id)
                    .collect(),
            )
        }
    };
    let mut stale = if monitored {
        HashMap::new()
    } else {
        problems(ctx)?
    };
    for sel in &ctx.locations {
        if open.as_ref().is_some_and(|open| !open.contains(&sel.id)) {
            continue;
        }
        let found: Vec<Problem> = stale.remove(&sel.id).into_iter().collect();
        ctx.store.sync_problems(
            Operation::Report,
            Some(sel.id),
            &found,
            &|p| p.kind == Kind::MonitorStale,
            ctx.now,
        )?;
    }
    Ok(())
}

/// The fleet's `monitor_stale`, judged from the store alone as of `ctx.now`.
pub struct FleetStale {
    /// The problem of each stale location, by location id.
    pub problems: HashMap<i64, Problem>,
    /// The hosts with a stale location whose lock is held by a run that has been going
    /// for longer than `monitoring.max_run_age`, with that run: a run that hung (on a
    /// dead mount, say) would otherwise keep its host's staleness from ever being
    /// stored and alerted. Their staleness is judged and stored without their lock.
    pub hung: HashMap<String, LockHolder>,
}

/// Judge every location of `rows` by the fleet view's rule ([`of_fleet_location`]);
/// the hosts with a stale location are asked who holds their lock (one statement, on a
/// shared store only), and a run holding it for too long is named in their message.
pub fn of_fleet(ctx: &RunContext, rows: &[FleetLocation]) -> Result<FleetStale> {
    let mut hosts: Vec<&str> = rows
        .iter()
        .filter(|l| of_fleet_location(ctx, l, None).is_some())
        .map(|l| l.host.as_str())
        .collect();
    hosts.dedup();
    let max_age = ctx.config.monitoring.max_run_age.0;
    let hung: HashMap<String, LockHolder> = ctx
        .store
        .lock_holders(&hosts)?
        .into_iter()
        .filter(|(_, run)| (ctx.now - run.started_at).to_std().unwrap_or_default() > max_age)
        .collect();
    let problems = rows
        .iter()
        .filter_map(|l| of_fleet_location(ctx, l, hung.get(&l.host)).map(|p| (l.id, p)))
        .collect();
    Ok(FleetStale { problems, hung })
}

/// The fleet view's rule for one location of some host, from the store alone: stale when
/// its host has not checked it within this machine's `monitoring.max_run_age`. `hung`:
/// the run holding that host's lock for longer than that, named in the message.
pub fn of_fleet_location(
    ctx: &RunContext,
    l: &FleetLocation,
    hung: Option<&LockHolder>,
) -> Option<Problem> {
    let max_age = ctx.config.monitoring.max_run_age.0;
    let age = l
        .last_scan_at
        .map(|t| (ctx.now - t).to_std().unwrap_or_default());
    if age.is_some_and(|a| a <= max_age) {
        return None;
    }
    let host = &l.host;
    let question = match hung {
        Some(run) => format!(", and {}: is that run stuck?", hung_text(ctx, host, run)),
        None => format!(": is backup-monitor still running on {host}?"),
    };
    let message = match (l.last_scan_at, age) {
        (Some(t), Some(age)) => format!(
            "host {host} has not checked it since {} ({} ago, more than monitoring.max_run_age {}){question}",
            ctx.local_short(t),
            duration_text(age),
            duration_text(max_age),
        ),
        _ => format!("host {host} registered it but never checked it with --monitor{question}"),
    };
    Some(stale(&l.name, message))
}

/// "a run of web11 (pid 4242 on vm) has been going since …, holding its lock".
fn hung_text(ctx: &RunContext, host: &str, run: &LockHolder) -> String {
    let on = run
        .machine
        .as_ref()
        .map(|m| format!(" on {m}"))
        .unwrap_or_default();
    let since = ctx.local_short(run.started_at);
    match run.host == host {
        true => format!(
            "a run of {host} (pid {}{on}) has been going since {since}, holding its lock",
            run.pid
        ),
        false => format!(
            "a run of {} (pid {}{on}) holding the lock of {host} has been going since {since}",
            run.host, run.pid
        ),
    }
}

/// Judge and store `monitor_stale` for the fleet's locations `rows` (judged: `stale`),
/// each as its own host's problem, so it is alerted, repeated and resolved like any
/// other. Only hosts with a stale location are written (a host that checks its locations
/// resolves its own staleness with its `--monitor`). A host whose problems open or close
/// is written under its run lock, taken for a moment; one whose lock is held elsewhere is
/// running now (or another fleet run is writing it) and is left alone: those hosts are
/// returned — unless the run holding it has been going for longer than
/// `monitoring.max_run_age` (`stale.hung`): then it is written without the lock (see
/// [`crate::store::Store::sync_locations_unlocked`]). A host whose stale locations are only found
/// again is refreshed without its lock (a refresh leaves a problem its own run resolved
/// meanwhile as it closed).
pub fn sync_fleet(
    ctx: &RunContext,
    rows: &[FleetLocation],
    stale: &FleetStale,
) -> Result<Vec<String>> {
    let rejudged = |p: &Problem| p.kind == Kind::MonitorStale;
    /// What the fleet view found at each location of one host.
    struct Judged<'a> {
        host: &'a str,
        found: Vec<(i64, Option<Problem>)>,
    }
    let judged: Vec<Judged> = rows
        .chunk_by(|a, b| a.host == b.host)
        .map(|host_rows| Judged {
            host: host_rows[0].host.as_str(),
            found: host_rows
                .iter()
                .map(|l| (l.id, stale.problems.get(&l.id).cloned()))
                .collect(),
        })
        .filter(|j| j.found.iter().any(|(_, p)| p.is_some()))
        .collect();
    // One read of every such host's open problems decides which hosts have problems to
    // open or close; the others' stale locations are only found again, refreshed with
    // everything else in a few statements, whatever the size of the fleet.
    let hosts: Vec<&str> = judged.iter().map(|j| j.host).collect();
    let mut open = ctx
        .store
        .open_problems_of_hosts(&hosts, Operation::Report)?;
    let mut skipped = Vec::new();
    for Judged { host, found } in &judged {
        let mut of_location = by_location(open.remove(*host).unwrap_or_default());
        let found: Vec<(Option<i64>, &[Problem])> = found
            .iter()
            .map(|(id, p)| (Some(*id), p.as_slice()))
            .collect();
        let changes: Vec<Changes> = found
            .iter()
            .map(|(id, f)| changes(of_location.remove(id).unwrap_or_default(), f, &rejudged))
            .collect();
        if changes.iter().all(Changes::settles_nothing) {
            let again = changes.iter().flat_map(|c| c.refreshed.iter().copied());
            ctx.store
                .refresh_later(again, crate::store::to_unix(ctx.now));
            continue;
        }
        // What opens or closes is judged again under the host's lock, from its problems
        // as they are then, and written at once.
        let written = ctx.store.with_host_lock(host, || {
            ctx.store
                .sync_locations_of(host, Operation::Report, &found, &rejudged, ctx.now)
        })?;
        if written.is_some() {
            continue;
        }
        match stale.hung.get(*host) {
            Some(run) => {
                tracing::info!(
                    "{host}: {}, for longer than monitoring.max_run_age: its staleness is stored without its lock",
                    hung_text(ctx, host, run)
                );
                ctx.store.sync_locations_unlocked(
                    host,
                    Operation::Report,
                    &found,
                    &rejudged,
                    ctx.now,
                )?;
            }
            None => skipped.push(host.to_string()),
        }
    }
    Ok(skipped)
}
