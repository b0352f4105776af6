//! The budget of a SQLite `.dump` replay: the input is the body of a `sqlite3 .dump`
//! script (between `BEGIN TRANSACTION;` and `COMMIT;`), replayed with `max_bytes` 1 MiB
//! and a 2-second time limit. Besides "no panic, no ASan error, no allocation over the
//! fuzzer's malloc limit", every replay must end within its time limit plus a second,
//! whatever its statements ask for (recursive queries, `zeroblob`/`hex`/`printf` of
//! huge sizes, expensive CHECK constraints and index expressions via `writable_schema`).
#![no_main]

use backup_monitor_fuzz::{MAX_BYTES, work};
use libfuzzer_sys::fuzz_target;
use std::time::{Duration, Instant};

const LIMIT: Duration = Duration::from_secs(2);
const SLACK: Duration = Duration::from_secs(1);

fuzz_target!(|body: &[u8]| {
    let w = work();
    let path = w.input.join("db.sql");
    let mut script = b"PRAGMA foreign_keys=OFF;\nBEGIN TRANSACTION;\n".to_vec();
    script.extend_from_slice(body);
    script.extend_from_slice(b"\nCOMMIT;\n");
    std::fs::write(&path, &script).expect("write the input");
    let started = Instant::now();
    let (_, verdict) =
        backup_monitor::restore::test_file_within(&w.scratch, &path, MAX_BYTES, LIMIT)
            .expect("a sandbox can be made");
    let took = started.elapsed();
    assert!(
        took <= LIMIT + SLACK,
        "the replay ran {took:?}, past its limit of {LIMIT:?}: {verdict:?}"
    );
    if let Err(e) = &verdict {
        assert!(!e.to_string().is_empty(), "empty detail for {e:?}");
    }
    let left: Vec<_> = std::fs::read_dir(&w.scratch)
        .map(|rd| rd.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "sandbox left behind: {left:?}");
});
