//! Content detection and restore-testing of arbitrary bytes, as they are on disk: the
//! first byte picks the backup's file name (and so the name hints), the rest is the file.
#![no_main]

use backup_monitor_fuzz::{NAMES, restore_bytes};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&pick, bytes)) = data.split_first() else {
        return;
    };
    let _ = restore_bytes(NAMES[usize::from(pick) % NAMES.len()], bytes);
});
