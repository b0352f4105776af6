//! Load a PostgreSQL store with a fleet's history through the store's own write path
//! (what `--monitor` and `--verify` record), for `scripts/bench/fleet.sh`. Not a test.
//!
//! `fleet_load URL HOSTS LOCATIONS DAYS THREADS`: HOSTS hosts (`bench0000`, …), each
//! with LOCATIONS locations and one backup a day for DAYS days, written as one run per
//! host and day: the scan, the verifications a nightly `--verify` records with the
//! default `verify_sample: 1` (the new backup's first sight, every older one
//! re-hashed), the day's health figures and the problems sync; then the state its last
//! run stores for the fleet views. Prints the time it took.

use backup_monitor::config::ChecksumAlgo;
use backup_monitor::problem::Operation;
use backup_monitor::scan::FoundFile;
use backup_monitor::store::{
    DailyHealth, LocationState, PgTarget, Store, Verification, VerifyMethod, VerifyResult,
};
use backup_monitor::timestamp::TimestampSource;
use chrono::{Duration, TimeZone, Utc};
use std::time::Instant;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let [_, url, hosts, locations, days, threads] = &args[..] else {
        anyhow::bail!("usage: fleet_load URL HOSTS LOCATIONS DAYS THREADS");
    };
    let (hosts, locations, days, threads): (usize, usize, i64, usize) = (
        hosts.parse()?,
        locations.parse()?,
        days.parse()?,
        threads.parse()?,
    );
    let target = PgTarget::parse(url).map_err(anyhow::Error::msg)?;
    let started = Instant::now();
    let anchor = std::env::temp_dir().join("fleet-load");
    std::thread::scope(|s| -> anyhow::Result<()> {
        let workers: Vec<_> = (0..threads)
            .map(|t| {
                let target = &target;
                let anchor = &anchor;
                s.spawn(move || -> anyhow::Result<()> {
                    for h in (t..hosts).step_by(threads) {
                        load_host(target, anchor, &format!("bench{h:04}"), locations, days)?;
                    }
                    Ok(())
                })
            })
            .collect();
        for w in workers {
            w.join()
                .map_err(|_| anyhow::anyhow!("a worker panicked"))??;
        }
        Ok(())
    })?;
    println!(
        "loaded {hosts} hosts x {locations} locations x {days} days in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

fn load_host(
    target: &PgTarget,
    anchor: &std::path::Path,
    host: &str,
    locations: usize,
    days: i64,
) -> anyhow::Result<()> {
    let store = Store::open_postgres(target, anchor, host)?;
    // The history ends the night before the clock `scripts/bench/fleet.sh` runs the
    // fleet views at (2026-11-21 12:00 UTC), so that their window holds its last week.
    let start = Utc
        .with_ymd_and_hms(2026, 11, 21, 2, 0, 0)
        .single()
        .unwrap_or_default()
        - Duration::days(days);
    let ids: Vec<i64> = (0..locations)
        .map(|l| {
            store.upsert_location(
                &format!("loc{l:02}"),
                &format!("/srv/backup/loc{l:02}"),
                "database",
                start,
            )
        })
        .collect::<anyhow::Result<_>>()?;
    for d in 0..days {
        let now = start + Duration::days(d) + Duration::hours(1);
        let run = store.start_run(&[Operation::Monitor, Operation::Verify], host, now)?;
        for &loc in &ids {
            let files: Vec<FoundFile> = (0..=d)
                .map(|k| {
                    let ts = start + Duration::days(k);
                    FoundFile {
                        path: format!("db_{}.sql.gz", ts.format("%Y%m%d_%H%M%S")),
                        size: 1_000_000 + k as u64,
                        mtime_ns: ts.timestamp() * 1_000_000_000,
                        ts,
                        ts_source: TimestampSource::FilenameFormat,
                        settled: true,
                    }
                })
                .collect();
            store.sync_scan(loc, &files, now)?;
            store.record_location_scan(loc, true, Some((50 << 30, 100 << 30)), now)?;
            // As a nightly `--verify` with the default `verify_sample: 1` records: the
            // new backup's first sight, and every older present backup re-hashed.
            let present = store.present_backups(loc)?;
            let newest = present.iter().map(|b| b.ts).max();
            store.record_verifications(
                run,
                present.iter().map(|b| {
                    let first = Some(b.ts) == newest;
                    Verification {
                        backup_id: b.id,
                        location_id: b.location_id,
                        method: if first {
                            VerifyMethod::FirstSight
                        } else {
                            VerifyMethod::Checksum
                        },
                        algo: Some(ChecksumAlgo::Sha256),
                        result: if first {
                            VerifyResult::Recorded
                        } else {
                            VerifyResult::Passed
                        },
                        bytes: b.size,
                        duration_ms: 3,
                        detail: None,
                        first_checksum: first
                            .then(|| (ChecksumAlgo::Sha256, format!("{:064x}", b.id))),
                        hashed: true,
                    }
                }),
                now,
            )?;
            store.sync_problems(Operation::Monitor, Some(loc), &[], &|_| true, now)?;
            let day = now.format("%Y-%m-%d").to_string();
            store.record_daily_health(
                loc,
                &day,
                &DailyHealth {
                    day: day.clone(),
                    score: Some(0.95),
                    backup_rate: Some(1.0),
                    verify_rate: Some(1.0),
                    restore_rate: None,
                },
                now,
            )?;
        }
        store.finish_run(run, 0, now + Duration::minutes(5))?;
    }
    // What each host's last run stores for the fleet views: a daily schedule kept.
    let last = start + Duration::days(days - 1) + Duration::hours(1);
    let state = LocationState {
        schedule: "daily".into(),
        mark: "d".into(),
        window_days: 7,
        due_slots: 7,
        satisfied_slots: 7,
        age_thresholds: Some((2 * 86_400, 3 * 86_400)),
        expected_interval: Some(86_400),
        ..LocationState::default()
    };
    for &loc in &ids {
        store.record_location_state(loc, &state, last)?;
    }
    Ok(())
}
