//! Config loading: YAML text through `config::parse_str` (strict deserialization,
//! interpolation, validation). A config that is accepted must be usable: its durations,
//! retention and schedules work with any "now" of 1970..2200, as the operations use them.
#![no_main]

use backup_monitor::config;
use chrono::{DateTime, Duration, Utc};
use libfuzzer_sys::fuzz_target;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(cfg) = config::parse_str(text, Path::new("/nonexistent-fuzz-base")) else {
        return;
    };
    let instants = [
        DateTime::<Utc>::from_timestamp(0, 0).unwrap(),
        DateTime::<Utc>::from_timestamp(1_800_000_000, 0).unwrap(),
        DateTime::<Utc>::from_timestamp(7_258_118_399, 0).unwrap(),
    ];
    for loc in &cfg.backups.locations {
        let schedule = &loc.schedule;
        let _ = loc.restore.max_bytes_for(u64::MAX);
        // monitor.rs builds `Duration::days(retention_days)` (its cutoff `now - retention`
        // was the first finding; it is checked there now, see monitor::retention_cutoff).
        let _ = Duration::days(i64::from(loc.retention_days.0));
        for now in instants {
            // Grace is added to every slot start (the second finding).
            let window_start = now - Duration::days(7);
            let judged = schedule.judge(window_start, now, Some(window_start), &[now]);
            assert!(judged.len() <= 100_001);
        }
    }
});
