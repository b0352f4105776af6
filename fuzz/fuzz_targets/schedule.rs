//! Schedules: `schedule`, `at` and `grace` text in any time zone, judged over a window
//! like `--monitor` does (`--days` 1..=3660, "now" anywhere in 1970..2200).
//! Input: 8 bytes of numbers, then `schedule \0 at \0 grace` (empty `at`/`grace`: none).
#![no_main]

use backup_monitor::config::values::DurationValue;
use backup_monitor::schedule::{At, Frequency, Schedule};
use chrono::{DateTime, Duration, Utc};
use chrono_tz::TZ_VARIANTS;
use libfuzzer_sys::fuzz_target;

/// 1970-01-01 .. 2200-01-01 in seconds.
const SPAN: u64 = 7_258_118_400;

fuzz_target!(|data: &[u8]| {
    if data.len() < 8 {
        return;
    }
    let (nums, rest) = data.split_at(8);
    let Ok(text) = std::str::from_utf8(rest) else {
        return;
    };
    let mut parts = text.splitn(3, '\0');
    let (freq, at, grace) = (
        parts.next().unwrap_or(""),
        parts.next().unwrap_or(""),
        parts.next().unwrap_or(""),
    );
    let Ok(frequency) = Frequency::parse(freq) else {
        return;
    };
    let at = match at {
        "" => None,
        a => match At::parse(a) {
            Ok(a) => Some(a),
            Err(_) => return,
        },
    };
    let grace = match grace {
        "" => None,
        g => match DurationValue::parse(g) {
            Ok(d) if !d.0.is_zero() => Some(d.as_chrono()),
            _ => return,
        },
    };
    let tz = TZ_VARIANTS[usize::from(u16::from_le_bytes([nums[0], nums[1]])) % TZ_VARIANTS.len()];
    let Ok(schedule) = Schedule::new(frequency, at, grace, tz) else {
        return;
    };
    let secs = u64::from(u32::from_le_bytes([nums[2], nums[3], nums[4], nums[5]]));
    let secs = secs * (SPAN / u64::from(u32::MAX));
    let now = DateTime::<Utc>::from_timestamp(secs as i64, 0).unwrap();
    let days = match nums[6] {
        255 => 3660,
        d => i64::from(d) + 1,
    };
    let window_start = now - Duration::days(days);
    let oldest = now - Duration::hours(i64::from(nums[7]) * 24);
    let stamps = [oldest, now - Duration::hours(1), window_start];
    let judged = schedule.judge(window_start, now, Some(oldest), &stamps);
    for j in &judged {
        assert!(j.slot.start < j.slot.end, "empty slot {j:?}");
        assert!(j.slot.due_at <= now);
    }
    let _ = schedule.next_after(now);
});
