//! Restore-testing behind a valid compression layer: the first byte picks the codec
//! (none, gzip, zstd, bzip2, xz) and the inner file name; the rest is the payload, which
//! the harness compresses itself so the mutations reach the tar/zip/SQL/SQLite code under
//! the decoder instead of dying at its checksum.
#![no_main]

use backup_monitor_fuzz::{compress, restore_bytes};
use libfuzzer_sys::fuzz_target;

const INNER: &[&str] = &[
    "backup.tar",
    "backup.zip",
    "db.sql",
    "db.sqlite",
    "db.dump",
    "notes.txt",
];

fuzz_target!(|data: &[u8]| {
    let Some((&pick, payload)) = data.split_first() else {
        return;
    };
    let (bytes, suffix) = compress(pick % 5, payload);
    let inner = INNER[usize::from(pick / 5) % INNER.len()];
    let _ = restore_bytes(&format!("{inner}{suffix}"), &bytes);
});
