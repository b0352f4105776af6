//! Sidecar checksum files: the first byte picks which sidecar (SUMS file or per-file
//! `.sha256/.md5/.b3`, in the root or a subdirectory), the rest is its content; then the
//! expectations for a few backups are asked for, as `--verify` does.
#![no_main]

use backup_monitor::verify::sidecar::Sidecars;
use libfuzzer_sys::fuzz_target;
use std::fs;

const SIDECARS: &[&str] = &[
    "SHA256SUMS",
    "MD5SUMS",
    "B3SUMS",
    "backup.tar.sha256",
    "backup.tar.md5",
    "backup.tar.b3",
];

fuzz_target!(|data: &[u8]| {
    let Some((&pick, content)) = data.split_first() else {
        return;
    };
    let root = tempfile::tempdir().expect("temp dir");
    let dir = if pick & 0x80 != 0 { "sub" } else { "" };
    fs::create_dir_all(root.path().join(dir)).unwrap();
    let name = SIDECARS[usize::from(pick & 0x7f) % SIDECARS.len()];
    fs::write(root.path().join(dir).join(name), content).unwrap();
    let mut sidecars = Sidecars::new(root.path());
    for rel in ["backup.tar", "sub/backup.tar", "other.gz", "sub/x/y.tar"] {
        for e in sidecars.expected_for(rel) {
            assert!(e.line >= 1);
            assert!(
                e.digest
                    .bytes()
                    .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
            );
        }
    }
    for i in &sidecars.invalid {
        assert!(!i.message().is_empty());
    }
});
