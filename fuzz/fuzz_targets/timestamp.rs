//! Timestamps from file names: the built-in forms, and a chrono `filename_format`.
//! Input is `name \0 format`; without a `\0` only the built-in forms are used.
#![no_main]

use backup_monitor::timestamp;
use backup_monitor_fuzz::split;
use chrono_tz::TZ_VARIANTS;
use libfuzzer_sys::fuzz_target;

/// File names are at most 255 bytes (NAME_MAX).
const NAME_MAX: usize = 255;

fuzz_target!(|data: &[u8]| {
    let (name, format) = split(data, 0);
    if name.len() > NAME_MAX {
        return;
    }
    let name = String::from_utf8_lossy(name);
    let tz = TZ_VARIANTS[name.len() % TZ_VARIANTS.len()];
    if let Some(t) = timestamp::parse_builtin(&name) {
        assert!((1970..=2200).contains(&chrono::Datelike::year(&t)));
    }
    let _ = timestamp::from_file_name(&name, None, &tz);
    if data.contains(&0) {
        let format = String::from_utf8_lossy(format);
        let _ = timestamp::parse_with_format(&name, &format);
        let _ = timestamp::from_file_name(&name, Some(&format), &tz);
    }
});
