//! `--verify`: prove each backup is still the bytes it was. The first time a
//! settled backup is verified its checksum is recorded (trust on first use); later runs
//! re-hash a rotating sample and compare, check sidecar checksum files, and compare size and
//! mtime with what was recorded. Hashing runs on every core across all selected locations
//! at once; verdicts are written while hashing, in one transaction per batch.
//!
//! Not for: finding files (`scan`, run before this by `--monitor` or `monitor::refresh`)
//! or reading archives (`restore`).

pub(crate) mod hash;
mod judge;
mod pool;
mod sample;
pub mod sidecar;

use crate::problem::{Kind, Operation, Problem, Severity};
use crate::run::{RunContext, SelectedLocation};
use crate::source::Source;
use crate::store::{BackupRow, Verification, VerifyResult};
use anyhow::{Context, Result};
use hash::Algos;
use judge::{Job, Judge, Judged};
use sidecar::Sidecars;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

/// What one location will have verified this run, before any byte is read.
struct Plan<'a> {
    sel: SelectedLocation<'a>,
    present: Vec<BackupRow>,
    /// Verdicts that need no reading (size or mtime changed since recorded).
    judged: Vec<Judged>,
    jobs: Vec<Job>,
    sidecars: Sidecars,
    source: Arc<dyn Source>,
}

/// Backups (present rows) planned per batch. A batch is hashed on every core across its
/// locations; batching bounds memory on stores of hundreds of thousands of backups
/// (200,000 backups in 20 locations peak at well under 200 MiB) while a location is never
/// split across batches.
const BATCH_BACKUPS: usize = 20_000;

/// What `--verify` did this run: backups compared with earlier evidence, and bytes hashed.
#[derive(Debug, Clone, Default, serde::Serialize, PartialEq)]
pub struct Summary {
    pub checked: u64,
    pub passed: u64,
    pub failed: u64,
    /// Seen for the first time without a sidecar: a checksum was recorded, nothing was
    /// compared yet.
    pub recorded: u64,
    pub bytes: u64,
}

pub fn run(ctx: &RunContext) -> Result<Summary> {
    let started = std::time::Instant::now();
    let mut summary = Summary::default();
    let mut batch = Vec::new();
    let mut planned = 0;
    // Backups with an open integrity problem are re-hashed every run until it closes:
    // read for every location at once.
    let ids: Vec<i64> = ctx.locations.iter().map(|s| s.id).collect();
    let mut suspects: HashMap<i64, HashSet<String>> = HashMap::new();
    for p in ctx
        .store
        .open_problems(Some(&[Operation::Verify]), Some(&ids))?
    {
        if let (Some(id), Some(path)) = (p.location_id, p.problem.path)
            && p.problem.kind != Kind::SidecarInvalid
        {
            suspects.entry(id).or_default().insert(path);
        }
    }
    for sel in &ctx.locations {
        if let Some(repo) = &sel.config.repository {
            let checked = crate::source::repository::verify(ctx, sel, repo)
                .with_context(|| format!("verifying location {}", sel.config.name))?;
            summary.checked += checked.checked;
            summary.passed += checked.passed;
            summary.failed += checked.failed;
            continue;
        }
        let suspect = suspects.remove(&sel.id).unwrap_or_default();
        if let Some(p) = plan(ctx, sel, suspect)? {
            planned += p.present.len();
            batch.push(p);
        }
        if planned >= BATCH_BACKUPS {
            verify_batch(ctx, std::mem::take(&mut batch), &mut summary)?;
            planned = 0;
        }
    }
    verify_batch(ctx, batch, &mut summary)?;
    let secs = started.elapsed().as_secs_f64();
    tracing::info!(
        "verified {} backups ({} passed, {} failed), {} bytes hashed in {secs:.1} s ({:.0} MB/s)",
        summary.checked,
        summary.passed,
        summary.failed,
        summary.bytes,
        summary.bytes as f64 / secs.max(1e-6) / 1e6
    );
    Ok(summary)
}

/// Hash the jobs of some locations together; judge each file and write its verification
/// as soon as it is hashed (the store writes overlap the hashing, in one transaction for
/// the batch), then sync each location's problems.
fn verify_batch(ctx: &RunContext, plans: Vec<Plan>, summary: &mut Summary) -> Result<()> {
    // Which plan and job each piece of work is.
    let owner: Vec<(usize, usize)> = plans
        .iter()
        .enumerate()
        .flat_map(|(p, plan)| (0..plan.jobs.len()).map(move |j| (p, j)))
        .collect();
    let work: Vec<pool::Work> = owner
        .iter()
        .map(|&(p, j)| {
            let (plan, job) = (&plans[p], &plans[p].jobs[j]);
            let target = match plan.source.local_path(&job.backup.path) {
                // Files keep the hash loop tuned for them (mapped, read-ahead).
                Some(path) => pool::Target::File(path),
                None => pool::Target::Object {
                    source: plan.source.clone(),
                    rel: job.backup.path.clone(),
                },
            };
            pool::Work {
                target,
                algos: algos_for(job, plan.sel.config.checksum),
                size: job.backup.seen_size,
            }
        })
        .collect();
    let judges: Vec<Judge> = plans.iter().map(|p| judge_of(ctx, &p.sel)).collect();
    let mut hashed: Vec<Option<Judged>> = (0..work.len()).map(|_| None).collect();
    let hashing = std::time::Instant::now();
    std::thread::scope(|s| -> Result<()> {
        let (tx, rx) = std::sync::mpsc::channel();
        let (work, progress) = (&work, ctx.progress);
        s.spawn(move || pool::hash_each(work, progress, |ready| tx.send(ready).is_ok()));
        let unread = plans
            .iter()
            .flat_map(|p| &p.judged)
            .map(|j| &j.verification);
        let fresh = rx.iter().flatten().map(|(i, h)| {
            let (p, j) = owner[i];
            let judged = judges[p].hashed(&plans[p].jobs[j], h);
            let row = judged.verification.clone();
            hashed[i] = Some(judged);
            row
        });
        let stored = ctx
            .store
            .record_verifications(ctx.run_id, unread.cloned().chain(fresh), ctx.now)
            .context("recording the verifications")?;
        tracing::debug!(
            "hashed and recorded {stored} verifications in {:.3} s",
            hashing.elapsed().as_secs_f64()
        );
        Ok(())
    })?;
    drop(work);
    let mut hashed = hashed.into_iter();
    for plan in plans {
        let results: Vec<Judged> = hashed.by_ref().take(plan.jobs.len()).flatten().collect();
        let name = plan.sel.config.name.clone();
        finish(ctx, plan, results, summary)
            .with_context(|| format!("recording the verification of location {name}"))?;
    }
    Ok(())
}

fn algos_for(job: &Job, configured: crate::config::ChecksumAlgo) -> Algos {
    let mut algos = Algos::default();
    algos.add(job.recorded_algo(configured));
    for e in &job.expected {
        algos.add(e.algo);
    }
    algos
}

fn judge_of<'a>(ctx: &RunContext, sel: &SelectedLocation<'a>) -> Judge<'a> {
    Judge {
        location: &sel.config.name,
        configured: sel.config.checksum,
        tz: ctx.tz(),
    }
}

/// Decide what to read for one location; None when it is not verified this run.
fn plan<'a>(
    ctx: &RunContext,
    sel: &SelectedLocation<'a>,
    suspect: HashSet<String>,
) -> Result<Option<Plan<'a>>> {
    let loc = sel.config;
    if loc.job_log.is_some() {
        tracing::info!(location = %loc.name, "a job log: only --monitor applies, --verify skips it");
        return Ok(None);
    }
    if !loc.verify_integrity {
        // Not verified any more: its old verdicts no longer stand.
        ctx.store
            .sync_problems(Operation::Verify, Some(sel.id), &[], &|_| true, ctx.now)?;
        tracing::info!(location = %loc.name, "verify_integrity is off: not verified");
        return Ok(None);
    }
    let source = crate::source::of(loc);
    if !source.available() {
        // `--monitor` reports location_unavailable; nothing here can be judged.
        tracing::warn!(location = %loc.name, "{} cannot be read: not verified", source.describe());
        return Ok(None);
    }
    let present = ctx.store.present_backups(sel.id)?;
    let judge = judge_of(ctx, sel);
    let mut judged = Vec::new();
    let mut candidates = Vec::new();
    for b in &present {
        if (b.seen_size, b.seen_mtime_ns) != (b.size, b.mtime_ns) {
            judged.push(judge.modified(b, (b.seen_size, b.seen_mtime_ns), 0));
        } else if b.checksum.is_some() {
            candidates.push(sample::Candidate {
                id: b.id,
                ts: b.ts,
                last_verified_at: b.last_verified_at,
                suspect: suspect.contains(&b.path),
            });
        }
    }
    // Present backups come newest first.
    let newest = present.first().map(|b| b.id);
    let chosen = sample::choose(&candidates, newest, present.len(), loc.verify_sample.0);
    let mut sidecars = Sidecars::of(source.clone());
    let jobs: Vec<Job> = present
        .iter()
        .filter(|b| (b.seen_size, b.seen_mtime_ns) == (b.size, b.mtime_ns))
        .filter(|b| b.checksum.is_none() || chosen.contains(&b.id))
        .map(|b| Job {
            backup: b.clone(),
            expected: sidecars.expected_for(&b.path),
        })
        .collect();
    tracing::debug!(
        location = %loc.name,
        "{} present, {} to hash ({} re-verifications), {} changed since recorded",
        present.len(),
        jobs.len(),
        chosen.len(),
        judged.len()
    );
    Ok(Some(Plan {
        sel: *sel,
        present,
        judged,
        jobs,
        sidecars,
        source,
    }))
}

/// Sync one location's problems with its (already stored) verdicts and count them.
fn finish(ctx: &RunContext, plan: Plan, hashed: Vec<Judged>, summary: &mut Summary) -> Result<()> {
    let mut judged = plan.judged;
    let hashed_ids: HashSet<i64> = plan.jobs.iter().map(|j| j.backup.id).collect();
    judged.extend(hashed);
    let path_of: HashMap<i64, &str> = plan
        .present
        .iter()
        .map(|b| (b.id, b.path.as_str()))
        .collect();
    let present: HashSet<&str> = path_of.values().copied().collect();
    let mut no_verdict = HashSet::new();
    let mut read_to_verdict = HashSet::new();
    for j in &judged {
        let path = path_of
            .get(&j.verification.backup_id)
            .copied()
            .unwrap_or("");
        if !j.verdict {
            no_verdict.insert(path);
        } else if hashed_ids.contains(&j.verification.backup_id) {
            read_to_verdict.insert(path);
        }
    }
    let mut found: Vec<Problem> = judged.iter().flat_map(|j| j.problems.clone()).collect();
    let name = &plan.sel.config.name;
    found.extend(plan.sidecars.invalid.iter().map(|i| {
        Problem::new(Kind::SidecarInvalid, Severity::Warning, name, i.message()).with_path(&i.file)
    }));
    let source = &plan.source;
    let gone = |path: &str| match source.local_path(path) {
        Some(file) => !file.exists(),
        None => matches!(source.stat(path), Ok(None)),
    };
    let sidecars_read = &plan.sidecars.read;
    // Close only what this run actually looked at (a sampled run leaves the rest open).
    let rejudged = |p: &Problem| -> bool {
        let Some(path) = p.path.as_deref() else {
            return true;
        };
        match p.kind {
            Kind::SidecarInvalid => sidecars_read.contains(path) || gone(path),
            _ if !present.contains(path) => true,
            _ if no_verdict.contains(path) => false,
            // Size and mtime are compared for every present backup, every run.
            Kind::ModifiedAfterBackup => true,
            _ => read_to_verdict.contains(path),
        }
    };
    let rows: Vec<&Verification> = judged.iter().map(|j| &j.verification).collect();
    ctx.store.sync_problems(
        Operation::Verify,
        Some(plan.sel.id),
        &found,
        &rejudged,
        ctx.now,
    )?;
    let count = |r: VerifyResult| rows.iter().filter(|v| v.result == r).count() as u64;
    let bytes: u64 = rows.iter().map(|v| v.bytes).sum();
    tracing::info!(
        location = %name,
        "verified {} backups: {} passed, {} failed, {} recorded, {} without verdict; {} bytes hashed",
        rows.len(),
        count(VerifyResult::Passed),
        count(VerifyResult::Failed),
        count(VerifyResult::Recorded),
        count(VerifyResult::Error),
        bytes
    );
    summary.checked += rows.len() as u64;
    summary.passed += count(VerifyResult::Passed);
    summary.failed += count(VerifyResult::Failed);
    summary.recorded += count(VerifyResult::Recorded);
    summary.bytes += bytes;
    Ok(())
}
