//! Config scalar values: sizes, durations, percentages, fractions, time zones, and the
//! `schedule` and `at` keys, each parsed from the same text, directly and through serde.
#![no_main]

use backup_monitor::config::values::{DurationValue, Percent, Size, SizeOrPercent, Timezone};
use backup_monitor::schedule::{At, Frequency};
use libfuzzer_sys::fuzz_target;

fn via_serde<T: serde::de::DeserializeOwned>(text: &str) {
    let _ = serde_json::from_value::<T>(serde_json::Value::String(text.to_string()));
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = Size::parse(text);
    if let Ok(d) = DurationValue::parse(text) {
        let _ = d.as_chrono();
    }
    let _ = Timezone::parse(text);
    let _ = Frequency::parse(text).map(|f| f.describe());
    let _ = At::parse(text);
    via_serde::<Size>(text);
    via_serde::<DurationValue>(text);
    via_serde::<Percent>(text);
    via_serde::<SizeOrPercent>(text);
});
