//! Content and compression detection and the file-name rules (pure, no I/O): input is
//! `name \0 head`.
#![no_main]

use backup_monitor::restore::detect;
use backup_monitor_fuzz::split;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (name, head) = split(data, 0);
    let name = String::from_utf8_lossy(name);
    let compression = detect::compression(head);
    let stripped = detect::strip_compression_suffix(&name);
    assert!(stripped.len() <= name.len() + 4);
    let content = detect::content(head, &stripped);
    let _ = detect::named_tar(&name);
    let format = detect::format_name(compression, content);
    assert!(!format.is_empty());
});
