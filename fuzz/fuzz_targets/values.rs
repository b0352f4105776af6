//! Config scalar values: sizes, durations, percentages, fractions, time zones, and the
//! `schedule` and `at` keys, each parsed from the same text, directly and as the config
//! reader hands them over (a scalar).
#![no_main]

use backup_monitor::config::values::{
    DurationValue, FromScalar, Percent, Scalar, Size, SizeOrPercent, Timezone,
};
use backup_monitor::schedule::{At, Frequency};
use libfuzzer_sys::fuzz_target;

fn via_scalar<T: FromScalar>(text: &str) {
    let _ = T::from_scalar(Scalar::Text(text.to_string()));
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
    via_scalar::<Size>(text);
    via_scalar::<DurationValue>(text);
    via_scalar::<Percent>(text);
    via_scalar::<SizeOrPercent>(text);
});
