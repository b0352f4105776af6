//! The tar link resolver: archives of symbolic links, hard links, directories and files
//! whose names and targets come from a small alphabet (`a`, `b`, `d`, `s`, `t`, `..`,
//! `.`, `x`), so that links sit under links, chain and loop. Every input is restored; the
//! harness checks that nothing appears outside the sandbox, and a link with an absolute
//! target must never pass.
#![no_main]

use backup_monitor_fuzz::{restore_bytes, token_path};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut b = tar::Builder::new(Vec::new());
    let mut absolute = false;
    for chunk in data.chunks_exact(5).take(64) {
        let name = token_path(u16::from_le_bytes([chunk[1], chunk[2]]));
        let mut target = token_path(u16::from_le_bytes([chunk[3], chunk[4]]));
        let mut h = tar::Header::new_gnu();
        h.set_mode(0o644);
        h.set_mtime(1_700_000_000);
        let kind = match chunk[0] % 8 {
            0..=2 => tar::EntryType::Symlink,
            3 => tar::EntryType::Link,
            4 => tar::EntryType::Directory,
            _ => tar::EntryType::Regular,
        };
        if chunk[0] & 0x80 != 0 && kind == tar::EntryType::Symlink {
            target = format!("/{target}");
            absolute = true;
        }
        h.set_entry_type(kind);
        let data: &[u8] = if kind == tar::EntryType::Regular { b"x" } else { b"" };
        h.set_size(data.len() as u64);
        // Raw bytes: the builder's setters refuse `..`.
        {
            let old = h.as_old_mut();
            let n = name.len().min(old.name.len());
            old.name[..n].copy_from_slice(&name.as_bytes()[..n]);
            let t = target.len().min(old.linkname.len());
            if matches!(kind, tar::EntryType::Symlink | tar::EntryType::Link) {
                old.linkname[..t].copy_from_slice(&target.as_bytes()[..t]);
            }
        }
        h.set_cksum();
        if b.append(&h, data).is_err() {
            return;
        }
    }
    let Ok(bytes) = b.into_inner() else {
        return;
    };
    let passed = restore_bytes("backup.tar", &bytes);
    assert!(!(absolute && passed), "a link to an absolute target passed");
});
