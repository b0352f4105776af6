//! `--monitor`: scan each location, record what is there, and judge schedule, retention,
//! sizes and disk space. Not for: reading file contents (verify, restore).

use crate::config::{Location, SizeOrPercent};
use crate::problem::{Kind, Operation, Problem, Severity, SlotStart};
use crate::run::{RunContext, SelectedLocation};
use crate::scan;
use crate::schedule;
use crate::source::{self, SourceError};
use crate::store::{BackupRow, ScanOf, ScanSync};
use anyhow::{Context, Result};
use chrono::{DateTime, Duration, Utc};

/// What monitoring one location found, for the run summary.
#[derive(Debug, Clone, Default)]
pub struct MonitorOutcome {
    pub location: String,
    pub new_backups: usize,
    pub problems: Vec<Problem>,
}

pub fn run(ctx: &RunContext) -> Result<Vec<MonitorOutcome>> {
    let ids: Vec<i64> = ctx.locations.iter().map(|s| s.id).collect();
    ctx.store.read_backups(&ids)?;
    let outcomes = monitor_all(ctx);
    // What each scan learned of its filesystem and the problems found again, written
    // together.
    ctx.store.write_pending()?;
    outcomes
}

/// Scan every location, record what all of them hold at once, then judge each.
fn monitor_all(ctx: &RunContext) -> Result<Vec<MonitorOutcome>> {
    let listings = ctx
        .locations
        .iter()
        .map(|sel| match sel.config.job_log {
            Some(_) => Ok(None),
            None => list(ctx, sel).map(Some),
        })
        .collect::<Result<Vec<_>>>()?;
    let mut syncs = record_scans(
        ctx,
        ctx.locations
            .iter()
            .zip(&listings)
            .filter_map(|(sel, listing)| match listing {
                Some(Listing {
                    found: Ok(found), ..
                }) => Some((sel.id, found)),
                _ => None,
            }),
    )?
    .into_iter();
    let mut logs = crate::source::job_log::Logs::default();
    let mut outcomes = Vec::with_capacity(ctx.locations.len());
    for (sel, listing) in ctx.locations.iter().zip(listings) {
        let outcome = match (&sel.config.job_log, listing) {
            (Some(job), _) => logs.monitor(ctx, sel, job)?,
            (None, Some(listing)) => {
                let sync = match listing.found {
                    Ok(_) => syncs.next().unwrap_or_default(),
                    Err(_) => ScanSync::default(),
                };
                judge_location(ctx, sel, listing, sync)?
            }
            (None, None) => continue,
        };
        outcomes.push(outcome);
    }
    Ok(outcomes)
}

/// What scanning one location found (before it is recorded).
struct Listing {
    found: std::result::Result<scan::ScanResult, Problem>,
    space: Option<(u64, u64)>,
}

/// List one location (a repository through its tool) and note its filesystem's state.
fn list(ctx: &RunContext, sel: &SelectedLocation) -> Result<Listing> {
    let loc = sel.config;
    if loc.repository.is_none() {
        scan::rederive(ctx.store, sel.id, loc, &ctx.tz())
            .with_context(|| format!("deriving the backup timestamps of location {}", loc.name))?;
    }
    let found = found_files(ctx, sel)?;
    let source = source::of(loc);
    // Only where the backups sit on a filesystem of this machine.
    let space = match (&found, &loc.repository) {
        (Ok(_), None) => source
            .capabilities()
            .free_space
            .then(|| source.disk_space())
            .flatten(),
        _ => None,
    };
    ctx.store
        .record_location_scan(sel.id, found.is_ok(), space, ctx.now)?;
    Ok(Listing { found, space })
}

/// Judge one location from its listing and what recording it changed.
fn judge_location(
    ctx: &RunContext,
    sel: &SelectedLocation,
    listing: Listing,
    sync: ScanSync,
) -> Result<MonitorOutcome> {
    let loc = sel.config;
    let mut outcome = MonitorOutcome {
        location: loc.name.clone(),
        ..Default::default()
    };
    let mut gaps = Vec::new();
    let mut gaps_from = ctx.window_start();
    // An unreadable location settles nothing but its unavailability: what was found
    // before (overdue, anomalies, early deletions) stays as it was, with its
    // acknowledgements, until the location is read again.
    let readable = listing.found.is_ok();
    match listing.found {
        Err(problem) => {
            tracing::warn!(location = %loc.name, "location unavailable: {}", problem.message);
            outcome.problems.push(problem);
        }
        Ok(found) => {
            outcome.new_backups = sync.new_backups;
            tracing::info!(
                location = %loc.name,
                "scanned {} files: {} new, {} gone",
                found.files.len(),
                sync.new_backups,
                sync.deleted.len()
            );
            let backups = ctx.store.backups_of(sel.id)?;
            let unsettled = found.files.iter().filter(|f| !f.settled).count();
            (outcome.problems, gaps) = judge(ctx, loc, &backups, unsettled, listing.space);
            gaps_from = gaps_recorded_from(ctx, &backups);
            // Accepted deletions matter only to a deletion judged early: read them then.
            if outcome
                .problems
                .iter()
                .any(|p| p.kind == Kind::DeletedBeforeRetention)
            {
                let accepted = ctx.store.accepted_deletions(sel.id)?;
                crate::lifecycle::drop_accepted_deletions(
                    &mut outcome.problems,
                    &backups,
                    &accepted,
                );
            }
            outcome
                .problems
                .extend(unreadable_problem(loc, &found.unreadable));
        }
    }
    record_judgement(ctx, sel.id, &outcome.problems, &gaps, gaps_from, &|p| {
        readable || p.kind == Kind::LocationUnavailable
    })?;
    Ok(outcome)
}

/// Bring the store's view of every selected location up to date without judging
/// anything: used when `--verify` or `--test-restore` run without `--monitor`, so they
/// see new files and never touch vanished ones. Monitor problems are left as they are.
pub fn refresh(ctx: &RunContext) -> Result<()> {
    let ids: Vec<i64> = ctx.locations.iter().map(|s| s.id).collect();
    ctx.store.read_backups(&ids)?;
    let mut listed: Vec<(i64, scan::ScanResult)> = Vec::new();
    for sel in ctx.locations.iter().filter(|s| s.config.job_log.is_none()) {
        match found_files(ctx, sel)? {
            Ok(found) => listed.push((sel.id, found)),
            Err(problem) => {
                tracing::warn!(location = %sel.config.name, "cannot scan: {}", problem.message);
            }
        }
    }
    record_scans(ctx, listed.iter().map(|(id, found)| (*id, found)))?;
    Ok(())
}

/// What one location holds, or why it cannot be listed: a repository's snapshots or
/// archives are listed by its tool, timestamped by it.
fn found_files(
    ctx: &RunContext,
    sel: &SelectedLocation,
) -> Result<std::result::Result<scan::ScanResult, Problem>> {
    let found = found_files_as_said(ctx, sel)?;
    // A size is what a server, a tool or a job log claims (2^64 - 1 bytes, say): kept
    // below what sums of a whole location's or fleet's sizes can hold.
    Ok(found.map(|mut r| {
        for f in &mut r.files {
            f.size = f.size.min(MAX_SIZE);
        }
        r
    }))
}

/// The largest size recorded for a backup (1 PiB): above it, a listing's claim.
pub const MAX_SIZE: u64 = 1 << 50;

fn found_files_as_said(
    ctx: &RunContext,
    sel: &SelectedLocation,
) -> Result<std::result::Result<scan::ScanResult, Problem>> {
    let loc = sel.config;
    Ok(match &loc.repository {
        Some(repo) => crate::source::repository::scan(ctx, sel, repo)?
            .map(|files| scan::ScanResult {
                files,
                ..Default::default()
            })
            .map_err(|e| crate::source::repository::unavailable(loc, &e)),
        None => source::of(loc)
            .list(loc, &ctx.tz(), ctx.now)
            .map_err(|e| unavailable_problem(loc, &e)),
    })
}

/// Record what the scans of several locations found, all at once (see
/// `Store::sync_scans`); the results in the same order.
fn record_scans<'a>(
    ctx: &RunContext,
    listed: impl Iterator<Item = (i64, &'a scan::ScanResult)>,
) -> Result<Vec<ScanSync>> {
    let scans: Vec<ScanOf> = listed
        .map(|(location_id, found)| ScanOf {
            location_id,
            found: &found.files,
            unreadable: &found.unreadable,
        })
        .collect();
    ctx.store
        .sync_scans(&scans, ctx.now)
        .with_context(|| format!("recording the scans of {} locations", scans.len()))
}

fn unavailable_problem(loc: &Location, e: &SourceError) -> Problem {
    let hint = e.hint();
    Problem::new(
        Kind::LocationUnavailable,
        Severity::Critical,
        &loc.name,
        format!("{e}; {hint}"),
    )
}

/// Paths the scan could not read: their backups cannot be checked, but they are not
/// gone (a warning: the backups may be fine, the monitor is blind to them).
fn unreadable_problem(loc: &Location, paths: &[String]) -> Option<Problem> {
    let first = paths.first()?;
    let more = match paths.len() {
        1 => String::new(),
        n => format!(" and {} more", n - 1),
    };
    Some(Problem::new(
        Kind::UnreadablePath,
        Severity::Warning,
        &loc.name,
        format!(
            "cannot read {first}{more} under {}: its backups are not checked; check the permissions of the user running backup-monitor",
            loc.root.display()
        ),
    ))
}

/// Every monitor problem of one location, from what the store knows after the scan, and
/// the gaps of its window (for the record). `unsettled` counts the matching files the
/// scan found still within `settle`.
pub fn judge(
    ctx: &RunContext,
    loc: &Location,
    backups: &[BackupRow],
    unsettled: usize,
    space: Option<(u64, u64)>,
) -> (Vec<Problem>, Vec<Problem>) {
    let name = loc.name.as_str();
    let now = ctx.now;
    let present: Vec<&BackupRow> = backups.iter().filter(|b| b.is_present()).collect();
    let mut problems = Vec::new();
    if present.is_empty() {
        problems.push(no_backups_problem(loc, backups, unsettled));
    }
    let (overdue, gaps) = missed(ctx, loc, backups);
    problems.extend(overdue);
    for b in &present {
        problems.extend(file_problems(loc, b, now));
    }
    problems.extend(size_anomalies(ctx, loc, backups));
    if !present.is_empty() && (present.len() as u64) < u64::from(loc.min_count) {
        problems.push(Problem::new(
            Kind::TooFewBackups,
            Severity::Warning,
            name,
            format!(
                "{} present, fewer than min_count {}",
                plural(present.len(), "backup"),
                loc.min_count
            ),
        ));
    }
    problems.extend(retention_problems(ctx, loc, backups));
    if let Some(p) = disk_problem(loc, space) {
        problems.push(p);
    }
    (problems, gaps)
}

/// `no_backups` with a message that says what is true: nothing matches, or
/// something matches but has not settled yet (a file still being written is not a
/// backup yet, so the kind and severity stay), or everything recorded was deleted.
fn no_backups_problem(loc: &Location, backups: &[BackupRow], unsettled: usize) -> Problem {
    if let Some(repo) = &loc.repository {
        let what = repo.tool.backup_word();
        let message = if backups.is_empty() {
            format!(
                "the {} repository {} has no {what}s",
                repo.tool.name(),
                repo.shown
            )
        } else {
            format!(
                "every recorded {what} of the repository {} has been removed",
                repo.shown
            )
        };
        return Problem::new(Kind::NoBackups, Severity::Critical, &loc.name, message);
    }
    let place = format!("{} in {}", loc.patterns_shown(), loc.root.display());
    let settle = duration_text(loc.settle.0);
    let waiting = match unsettled {
        0 => None,
        1 => Some(format!(
            "1 file matches {place} but was modified within the last {settle} (settle) and is not counted yet"
        )),
        n => Some(format!(
            "{n} files match {place} but were modified within the last {settle} (settle) and are not counted yet"
        )),
    };
    let message = match (backups.is_empty(), waiting) {
        (true, None) => format!("no backup file matches {place}"),
        (true, Some(waiting)) => waiting,
        (false, None) => format!("every recorded backup of {place} has been deleted"),
        (false, Some(waiting)) => {
            format!("every recorded backup has been deleted; {waiting}")
        }
    };
    Problem::new(Kind::NoBackups, Severity::Critical, &loc.name, message)
}

/// A duration in the config's own units: `10m`, `1h30m`, `45s`.
pub fn duration_text(d: std::time::Duration) -> String {
    let secs = d.as_secs();
    let parts = [
        (secs / 86_400, "d"),
        (secs % 86_400 / 3600, "h"),
        (secs % 3600 / 60, "m"),
        (secs % 60, "s"),
    ];
    let text: String = parts
        .iter()
        .filter(|(n, _)| *n > 0)
        .map(|(n, unit)| format!("{n}{unit}"))
        .collect();
    if text.is_empty() { "0s".into() } else { text }
}

/// The location's missed slots, split: at most one `missing_backup` while it is overdue
/// (its slot the first of the unbroken run of unsatisfied due slots that ends with the
/// latest due slot, stable while the run lasts), and the gaps of the window (runs a
/// later backup ended), described for the record.
pub(crate) fn missed(
    ctx: &RunContext,
    loc: &Location,
    backups: &[BackupRow],
) -> (Option<Problem>, Vec<Problem>) {
    let timestamps: Vec<DateTime<Utc>> = backups.iter().map(|b| b.ts).collect();
    let oldest = timestamps.iter().min().copied();
    let latest = timestamps.iter().filter(|t| **t <= ctx.now).max().copied();
    // Judge from the last backup on when it is older than the window: an outage longer
    // than the window keeps its first slot, so its problem stays one problem.
    // One slot more before the window, so that a gap starting at the window's first slot
    // can be told from a run that began before the window (not recorded again in part).
    let window = ctx.window_start();
    let before_window = window - loc.schedule.period(window).unwrap_or_default();
    // Where an outage that ended since the last run began: after the backup before the
    // newest, or after the newest backup an earlier run knew of (several backups ended
    // it: a catch-up and the night's, or a night the monitor did not run). It is judged
    // whole from there, so that its closed problem is told as the gap it was ("N slots
    // missed from … to …", not as still overdue), and one no run saw is recorded, also
    // when it began before the window. On a first run no backup was known before.
    let before_latest = latest.and_then(|l| timestamps.iter().filter(|t| **t < l).max().copied());
    let before_latest = [before_latest, known_before(ctx, backups)]
        .into_iter()
        .flatten()
        .min();
    let from = [latest, before_latest]
        .into_iter()
        .flatten()
        .fold(before_window, DateTime::min);
    let judged = loc.schedule.judge(from, ctx.now, oldest, &timestamps);
    let tz = ctx.tz();
    let frequency = loc.schedule.frequency.describe();
    let mut overdue = None;
    let mut gaps = Vec::new();
    for run in schedule::missed_runs(&judged) {
        let slot = SlotStart::new(run.first.start, &tz);
        let slots = plural(run.count, &format!("{frequency} slot"));
        let problem = |message: String| {
            Problem::new(Kind::MissingBackup, Severity::Critical, &loc.name, message)
                .with_slot(slot)
        };
        // A backup after the run (in a slot not yet due) ends it as surely as one in a
        // due slot: the location is not late then.
        if run.overdue && latest.is_none_or(|t| t < run.first.start) {
            overdue = Some(problem(overdue_message(
                ctx, loc, run.count, &run.first, latest,
            )));
        } else if (run.first.start >= window || before_latest.is_some_and(|t| t < run.first.start))
            && judged.first().is_some_and(|j| j.slot != run.first)
        {
            // A run that starts at the first judged slot may have begun earlier: it is
            // not recorded, so a gap seen whole before is never recorded again in part.
            gaps.push(problem(format!(
                "{slots} missed from {} to {} ({}); backups resumed after it",
                ctx.local_short(run.first.start),
                ctx.local_short(run.last.end),
                duration_text(
                    (run.last.end - run.first.start)
                        .to_std()
                        .unwrap_or_default()
                )
            )));
        }
    }
    (overdue, gaps)
}

/// The newest backup an earlier run knew of (none on a location's first run).
fn known_before(ctx: &RunContext, backups: &[BackupRow]) -> Option<DateTime<Utc>> {
    backups
        .iter()
        .filter(|b| b.first_seen < ctx.now && b.ts <= ctx.now)
        .map(|b| b.ts)
        .max()
}

/// From when a gap no run saw is recorded as history: the window's start, or earlier
/// back to the newest backup an earlier run knew of (an outage while the monitor was
/// down too). Not before the window on a first run: old, sparse backups met for the
/// first time are not announced as outages.
pub(crate) fn gaps_recorded_from(ctx: &RunContext, backups: &[BackupRow]) -> DateTime<Utc> {
    let window = ctx.window_start();
    known_before(ctx, backups).map_or(window, |known| known.min(window))
}

/// What an overdue location's `missing_backup` says: how many slots are missed since
/// the first, and when the last backup was made.
fn overdue_message(
    ctx: &RunContext,
    loc: &Location,
    count: usize,
    first: &schedule::Slot,
    latest: Option<DateTime<Utc>>,
) -> String {
    let slots = plural(
        count,
        &format!("{} slot", loc.schedule.frequency.describe()),
    );
    let last = match latest {
        Some(t) => format!(
            "the last backup is from {} ({} ago)",
            ctx.local_short(t),
            duration_text((ctx.now - t).to_std().unwrap_or_default())
        ),
        None => "there is no backup yet".into(),
    };
    format!(
        "overdue: {slots} missed since {} (first due {}); {last}",
        ctx.local_short(first.start),
        ctx.local_short(first.due_at),
    )
}

/// Overdue `missing_backup` problems said as of now. How many slots are missed and how
/// old the last backup is move on between the runs that judge them; the views and alert
/// repeats in between (a `--check-alerts` or `--status` of their own) say them as of
/// their own time, from the backups the last judgement recorded. A problem of a
/// location this run does not hold (another host's), or one that a backup recorded
/// since would end, is left as stored: the next `--monitor` judges it.
pub fn overdue_as_of_now<'a>(
    ctx: &RunContext,
    problems: impl IntoIterator<Item = (Option<i64>, &'a mut Problem)>,
) -> anyhow::Result<()> {
    let overdue: Vec<(&SelectedLocation, &mut Problem)> = problems
        .into_iter()
        .filter(|(_, p)| p.kind == Kind::MissingBackup && p.slot.is_some())
        .filter_map(|(id, p)| {
            let sel = ctx.locations.iter().find(|l| Some(l.id) == id)?;
            Some((sel, p))
        })
        .collect();
    if overdue.is_empty() {
        return Ok(());
    }
    let ids: Vec<i64> = overdue.iter().map(|(sel, _)| sel.id).collect();
    ctx.store.read_backup_timestamps(&ids)?;
    for (sel, problem) in overdue {
        let Some(first) = problem.slot.map(|s| s.utc()) else {
            continue;
        };
        let timestamps = ctx.store.backup_timestamps(sel.id)?;
        let latest = timestamps.iter().filter(|t| **t <= ctx.now).max().copied();
        if latest.is_some_and(|t| t >= first) {
            continue;
        }
        let oldest = timestamps.iter().min().copied();
        let judged = sel
            .config
            .schedule
            .judge(first, ctx.now, oldest, &timestamps);
        match judged.first() {
            Some(j) if j.slot.start == first && judged.iter().all(|j| !j.satisfied) => {
                problem.message = overdue_message(ctx, sel.config, judged.len(), &j.slot, latest);
            }
            _ => {}
        }
    }
    Ok(())
}

/// `3 daily slots`, `1 daily slot`.
fn plural(n: usize, what: &str) -> String {
    if n == 1 {
        format!("1 {what}")
    } else {
        format!("{n} {what}s")
    }
}

fn file_problems(loc: &Location, b: &BackupRow, now: DateTime<Utc>) -> Vec<Problem> {
    let mut out = Vec::new();
    let name = loc.name.as_str();
    if b.seen_size == 0 {
        out.push(
            Problem::new(
                Kind::EmptyBackup,
                Severity::Critical,
                name,
                format!("{} is empty (0 bytes)", b.path),
            )
            .with_path(&b.path),
        );
    } else if b.seen_size < loc.min_size.0 {
        out.push(
            Problem::new(
                Kind::UndersizedBackup,
                Severity::Warning,
                name,
                format!(
                    "{} is {} bytes, smaller than min_size {} bytes",
                    b.path, b.seen_size, loc.min_size.0
                ),
            )
            .with_path(&b.path),
        );
    }
    if b.ts > now + scan::CLOCK_TOLERANCE {
        out.push(
            Problem::new(
                Kind::FutureTimestamp,
                Severity::Warning,
                name,
                format!("{} has a timestamp in the future ({}, from its {}); check the clock of the machine that wrote it", b.path, b.ts.to_rfc3339(), b.ts_source),
            )
            .with_path(&b.path),
        );
    }
    out
}

/// `size_anomaly` for present backups in the window: smaller than (1 − max_size_drop) ×
/// the median of the 10 backups before it (deleted ones included: they are history).
pub(crate) fn size_anomalies(
    ctx: &RunContext,
    loc: &Location,
    backups: &[BackupRow],
) -> Vec<Problem> {
    let mut ordered: Vec<&BackupRow> = backups.iter().collect();
    ordered.sort_by_key(|b| (b.ts, b.id));
    let window_start = ctx.window_start();
    let factor = 1.0 - loc.max_size_drop.0;
    let mut out = Vec::new();
    for (i, b) in ordered.iter().enumerate() {
        if !b.is_present() || b.ts < window_start || i == 0 || b.seen_size == 0 {
            continue;
        }
        let mut previous: Vec<u64> = ordered[i.saturating_sub(10)..i]
            .iter()
            .map(|p| p.size)
            .collect();
        previous.sort_unstable();
        let median = median(&previous);
        if (b.seen_size as f64) < factor * median {
            out.push(
                Problem::new(
                    Kind::SizeAnomaly,
                    Severity::Warning,
                    &loc.name,
                    format!(
                        "{} is {} bytes, {:.0}% below the median {:.0} bytes of the previous {} backups",
                        b.path,
                        b.seen_size,
                        (1.0 - b.seen_size as f64 / median) * 100.0,
                        median,
                        previous.len()
                    ),
                )
                .with_path(&b.path),
            );
        }
    }
    out
}

fn median(sorted: &[u64]) -> f64 {
    match sorted.len() {
        0 => 0.0,
        n if n % 2 == 1 => sorted[n / 2] as f64,
        n => (sorted[n / 2 - 1] as f64 + sorted[n / 2] as f64) / 2.0,
    }
}

/// Backups older than this have outlived `retention_days`; None when the retention reaches
/// past the calendar's range (`retention_days: 4294967295`): none has.
fn retention_cutoff(now: DateTime<Utc>, days: u32) -> Option<DateTime<Utc>> {
    now.checked_sub_signed(Duration::days(i64::from(days)))
}

fn retention_problems(ctx: &RunContext, loc: &Location, backups: &[BackupRow]) -> Vec<Problem> {
    let retention = Duration::days(i64::from(loc.retention_days.0));
    let cutoff = retention_cutoff(ctx.now, loc.retention_days.0);
    let mut out = Vec::new();
    let expired: Vec<&BackupRow> = backups
        .iter()
        .filter(|b| b.is_present() && cutoff.is_some_and(|c| b.ts < c))
        .collect();
    if let Some(oldest) = expired.iter().min_by_key(|b| b.ts) {
        out.push(Problem::new(
            Kind::RetentionExceeded,
            Severity::Warning,
            &loc.name,
            format!(
                "{} older than retention_days {} (oldest {}); backup-monitor never deletes backups — prune them with your backup tool",
                match expired.len() {
                    1 => "1 backup is".to_string(),
                    n => format!("{n} backups are"),
                },
                loc.retention_days.0,
                oldest.path
            ),
        ));
    }
    let window_start = ctx.window_start();
    for b in backups {
        let Some(deleted_at) = b.deleted_at else {
            continue;
        };
        if deleted_at >= window_start && deleted_at - b.ts < retention {
            out.push(
                Problem::new(
                    Kind::DeletedBeforeRetention,
                    Severity::Critical,
                    &loc.name,
                    format!(
                        "{} vanished at {} when only {} days old (retention_days {})",
                        b.path,
                        ctx.local_rfc3339(deleted_at),
                        (deleted_at - b.ts).num_days(),
                        loc.retention_days.0
                    ),
                )
                .with_path(&b.path),
            );
        }
    }
    out
}

fn disk_problem(loc: &Location, space: Option<(u64, u64)>) -> Option<Problem> {
    let (free, total) = space?;
    let (low, wanted) = match loc.min_free_space {
        SizeOrPercent::Percent(p) => (
            total > 0 && (free as f64) < p * total as f64,
            format!("{:.0}%", p * 100.0),
        ),
        SizeOrPercent::Size(s) => (free < s, format!("{s} bytes")),
    };
    low.then(|| {
        Problem::new(
            Kind::LowDiskSpace,
            Severity::Warning,
            &loc.name,
            format!(
                "{} bytes free of {} ({:.1}%) on the filesystem of {}, under min_free_space {wanted}",
                free,
                total,
                if total > 0 { free as f64 * 100.0 / total as f64 } else { 0.0 },
                loc.root.display()
            ),
        )
    })
}

/// Record one location's monitor judgement: its complete set of problems (new ones open,
/// known ones refreshed, the rest resolved) and its gaps. A gap is history: the overdue
/// problem it was (if a run saw it) closed just now and says how long it lasted; one no
/// run saw is recorded closed, to be told once. `rejudged`: the open problems this
/// judgement settles when it no longer finds them (a folder's scan: all of them).
pub(crate) fn record_judgement(
    ctx: &RunContext,
    location_id: i64,
    problems: &[Problem],
    gaps: &[Problem],
    gaps_from: DateTime<Utc>,
    rejudged: &dyn Fn(&Problem) -> bool,
) -> Result<()> {
    ctx.store.sync_problems(
        Operation::Monitor,
        Some(location_id),
        problems,
        rejudged,
        ctx.now,
    )?;
    ctx.store
        .record_gaps(Operation::Monitor, location_id, gaps, gaps_from, ctx.now)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::{duration_text, median, retention_cutoff};
    use chrono::{DateTime, Utc};

    #[test]
    fn durations_read_like_the_config() {
        let s = std::time::Duration::from_secs;
        assert_eq!(duration_text(s(600)), "10m");
        assert_eq!(duration_text(s(5400)), "1h30m");
        assert_eq!(duration_text(s(45)), "45s");
        assert_eq!(duration_text(s(0)), "0s");
        assert_eq!(duration_text(s(2 * 86_400)), "2d");
    }

    // Found with the config fuzz harness: `now - retention_days` overflowed chrono's range.
    #[test]
    fn retention_past_the_calendar_expires_nothing() {
        let now = DateTime::<Utc>::from_timestamp(1_800_000_000, 0).unwrap();
        assert_eq!(retention_cutoff(now, u32::MAX), None);
        let month = retention_cutoff(now, 30).unwrap();
        assert_eq!((now - month).num_days(), 30);
    }

    #[test]
    fn median_of_odd_and_even() {
        assert_eq!(median(&[1, 2, 9]), 2.0);
        assert_eq!(median(&[1, 3]), 2.0);
        assert_eq!(median(&[]), 0.0);
    }
}
