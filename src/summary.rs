//! One location's summary as every output shows it: status, health, what is present,
//! the newest backup and the missing slots. One function builds it, for a run and for
//! `--status` alike.
//!
//! Not for: judging (it reads what the operations recorded).

use crate::outcome::{LatestBackup, LocationSummary, round3};
use crate::problem::{SlotStart, Status};
use crate::run::{RunContext, SelectedLocation};
use anyhow::Result;

/// The summary of `sel` from the store. `status` starts ok: the run's scope decides it
/// once every operation has judged (see `workflow`).
pub fn location(
    ctx: &RunContext,
    sel: &SelectedLocation,
    health_score: Option<f64>,
    new_backups: u64,
) -> Result<LocationSummary> {
    let present = ctx.store.present_backups(sel.id)?;
    let missing_slots = missing_slots(ctx, sel)?;
    // present_backups is newest first.
    let latest = present.first();
    Ok(LocationSummary {
        id: sel.id,
        name: sel.config.name.clone(),
        kind: sel.config.kind,
        status: Status::Ok,
        health_score: health_score.map(round3),
        backups_present: present.len() as u64,
        new_backups,
        latest_backup: latest.map(|b| LatestBackup {
            path: b.path.clone(),
            timestamp: ctx.local_rfc3339(b.ts),
            size: b.seen_size,
        }),
        latest_backup_age_seconds: latest.map(|b| (ctx.now - b.ts).num_seconds()),
        missing_slots,
    })
}

/// Every unsatisfied due slot of the window, gaps and overdue alike, in time order.
pub fn missing_slots(ctx: &RunContext, sel: &SelectedLocation) -> Result<Vec<SlotStart>> {
    let timestamps: Vec<_> = ctx.store.backups_of(sel.id)?.iter().map(|b| b.ts).collect();
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
