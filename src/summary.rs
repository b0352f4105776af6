//! One location's summary as every output shows it: status, health, what is present,
//! the newest backup and the missing slots. One function builds it, for a run and for
//! `--status` alike.
//!
//! Not for: judging (it reads what the operations recorded).

use crate::outcome::{LatestBackup, LocationSummary, round3};
use crate::problem::{SlotStart, Status};
use crate::run::{RunContext, SelectedLocation};
use crate::schedule::{Frequency, Schedule};
use crate::store::LocationGlance;
use anyhow::Result;
use chrono::{DateTime, Duration, Utc};
use std::collections::HashMap;

/// The glances of `sels` for [`location`], read together: the count and the newest row of
/// each, not every row (a location may hold thousands).
pub fn glances(
    ctx: &RunContext,
    sels: &[SelectedLocation],
) -> Result<HashMap<i64, LocationGlance>> {
    let ids: Vec<i64> = sels.iter().map(|s| s.id).collect();
    ctx.store.location_glances(&ids)
}

/// The summary of `sel` from the store, `glance` being its entry in [`glances`] (none:
/// nothing recorded). `status` starts ok: the run's scope decides it once every
/// operation has judged (see `workflow`).
pub fn location(
    ctx: &RunContext,
    sel: &SelectedLocation,
    glance: Option<&LocationGlance>,
    health_score: Option<f64>,
    new_backups: u64,
) -> Result<LocationSummary> {
    let glance = glance.cloned().unwrap_or_default();
    let latest = glance.latest.as_ref();
    let missing_slots = missing_slots(ctx, sel)?;
    Ok(LocationSummary {
        host: ctx.host.clone(),
        id: sel.id,
        name: sel.config.name.clone(),
        kind: sel.config.kind,
        status: Status::Ok,
        health_score: health_score.map(round3),
        backups_present: glance.present,
        new_backups,
        latest_backup: latest.map(|b| LatestBackup {
            path: b.path.clone(),
            timestamp: ctx.local_rfc3339(b.ts),
            size: b.seen_size,
        }),
        latest_backup_age_seconds: latest.map(|b| (ctx.now - b.ts).num_seconds()),
        missing_slots,
        age_thresholds: age_thresholds(&sel.config.schedule, ctx.now),
        last_checked: glance.last_scan_at.map(|t| ctx.local_rfc3339(t)),
    })
}

/// Every unsatisfied due slot of the window, gaps and overdue alike, in time order.
pub fn missing_slots(ctx: &RunContext, sel: &SelectedLocation) -> Result<Vec<SlotStart>> {
    let timestamps = ctx.store.backup_timestamps(sel.id)?;
    let oldest = timestamps.iter().min().copied();
    let tz = ctx.tz();
    Ok(sel
        .config
        .schedule
        .judge(ctx.window_start(), ctx.now, oldest, &timestamps)
        .into_iter()
        .filter(|j| !j.satisfied)
        .map(|j| SlotStart::new(j.slot.start, &tz))
        .collect())
}

/// Warning and critical ages for the newest backup: one and two periods plus grace
/// (grace defaults to one period). Hourly, daily and weekly have their period; monthly
/// counts its longest month, so a short month never warns early; a cron expression has
/// one when its next fire times are evenly spaced (within an hour, for DST days).
/// Irregular schedules get none.
pub fn age_thresholds(schedule: &Schedule, now: DateTime<Utc>) -> Option<(u64, u64)> {
    let period = match schedule.frequency {
        Frequency::Hourly => Duration::hours(1),
        Frequency::Daily => Duration::days(1),
        Frequency::Weekly => Duration::days(7),
        Frequency::Monthly => Duration::days(31),
        Frequency::Cron(..) => regular_period(schedule, now)?,
    };
    let grace = schedule.grace.unwrap_or(period);
    let secs = |d: Duration| u64::try_from(d.num_seconds()).ok();
    Some((secs(period + grace)?, secs(period * 2 + grace)?))
}

/// The gap between the next fire times when they are evenly spaced; a DST change may
/// stretch a day by an hour, and the longest gap counts, so it never warns early.
fn regular_period(schedule: &Schedule, now: DateTime<Utc>) -> Option<Duration> {
    let mut fires = vec![schedule.next_after(now)?];
    for _ in 0..12 {
        let last = *fires.last()?;
        fires.push(schedule.next_after(last)?);
    }
    let gaps: Vec<Duration> = fires.windows(2).map(|w| w[1] - w[0]).collect();
    let (min, max) = (*gaps.iter().min()?, *gaps.iter().max()?);
    let dst_day = max - min == Duration::hours(1) && min >= Duration::hours(23);
    (max == min || dst_day).then_some(max)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schedule::At;

    fn schedule(frequency: &str, grace: Option<Duration>) -> Schedule {
        Schedule {
            frequency: Frequency::parse(frequency).unwrap(),
            at: None::<At>,
            grace,
            tz: chrono_tz::Europe::Berlin,
        }
    }

    #[test]
    fn age_thresholds_are_one_and_two_periods_plus_grace() {
        let now = crate::store::from_unix(1_774_000_000); // March 2026, near a DST change
        let h = 3600;
        assert_eq!(
            age_thresholds(&schedule("daily", Some(Duration::hours(3))), now),
            Some((27 * h, 51 * h))
        );
        assert_eq!(
            age_thresholds(&schedule("hourly", None), now),
            Some((2 * h, 3 * h)),
            "grace defaults to one period"
        );
        assert_eq!(
            age_thresholds(&schedule("weekly", Some(Duration::hours(1))), now),
            Some((169 * h, 337 * h))
        );
        assert_eq!(
            age_thresholds(&schedule("0 */6 * * *", Some(Duration::hours(1))), now),
            Some((7 * h, 13 * h))
        );
        assert_eq!(
            age_thresholds(&schedule("0 4 * * *", Some(Duration::hours(1))), now),
            Some((25 * h, 49 * h)),
            "a daily cron across a DST change counts its longest day"
        );
        assert_eq!(
            age_thresholds(&schedule("0 2 * * 1,4", None), now),
            None,
            "Mondays and Thursdays are not evenly spaced"
        );
    }
}
