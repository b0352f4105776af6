//! Tar archives (plain or inside any compression of `compressed.rs`), read as a stream:
//! ustar, GNU (long names, sparse) and PAX headers. Every entry goes through the sandbox;
//! each regular file's restored size must equal its header's declared size, and the
//! stream is read to its very end afterwards so a compressor's trailing checksum is
//! checked too.

use super::sandbox::{EntryPath, Sandbox};
use super::{Notes, RestoreError};
use std::io::{self, Read};
use tar::EntryType;

pub fn extract(sandbox: &Sandbox, stream: &mut dyn Read) -> Result<Notes, RestoreError> {
    let counts = walk(sandbox, &mut tar::Archive::new(&mut *stream))?;
    sandbox.check_links()?;
    drain(sandbox, stream)?;
    let mut notes = Notes::default();
    notes.push(format!(
        "restored {} of {} declared bytes",
        counts.restored, counts.declared
    ));
    if counts.special > 0 {
        notes.push(format!("{} device/FIFO entries skipped", counts.special));
    }
    Ok(notes)
}

#[derive(Default)]
struct Counts {
    declared: u64,
    restored: u64,
    special: u64,
}

fn walk(
    sandbox: &Sandbox,
    archive: &mut tar::Archive<&mut dyn Read>,
) -> Result<Counts, RestoreError> {
    let mut declared = 0u64;
    let mut restored = 0u64;
    let mut skipped_special = 0u64;
    let entries = archive
        .entries()
        .map_err(|e| RestoreError::read("the tar archive", e))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| RestoreError::read("a tar header", e))?;
        let kind = entry.header().entry_type();
        let raw_name = entry.path_bytes().into_owned();
        let Some(path) = EntryPath::parse(&raw_name)? else {
            continue; // the archive root, `./`
        };
        match kind {
            EntryType::Regular | EntryType::Continuous | EntryType::GNUSparse => {
                let size = entry.size();
                let got = sandbox.write_file(&path, &mut entry)?;
                if got != size {
                    return Err(RestoreError::Corrupt(format!(
                        "{:?} is truncated: its header declares {size} bytes, the archive holds {got}",
                        path.rel()
                    )));
                }
                declared += size;
                restored += got;
                sandbox.tally.note(&path.rel(), true);
            }
            EntryType::Directory => {
                sandbox.make_dir(&path)?;
                sandbox.tally.note(&path.rel(), false);
            }
            EntryType::Symlink => {
                let target = entry.link_name_bytes().unwrap_or_default().into_owned();
                sandbox.note_symlink(&path, &target)?;
                sandbox.tally.note(&path.rel(), false);
            }
            EntryType::Link => {
                let target = entry.link_name_bytes().unwrap_or_default().into_owned();
                sandbox.hard_link(&path, &target)?;
                sandbox.tally.note(&path.rel(), true);
            }
            EntryType::Char | EntryType::Block | EntryType::Fifo => skipped_special += 1,
            // PAX/GNU metadata and volume labels carry no content of their own.
            _ => {}
        }
    }
    Ok(Counts {
        declared,
        restored,
        special: skipped_special,
    })
}

/// Read what follows the end-of-archive blocks (record padding) to the end of the stream,
/// so the decompressor verifies its trailer. Counted against the limit: a bomb can hide
/// there too.
fn drain(sandbox: &Sandbox, stream: &mut dyn Read) -> Result<(), RestoreError> {
    let mut buf = vec![0u8; 64 << 10];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => sandbox.charge_overhead(n as u64)?,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(RestoreError::read("the end of the stream", e)),
        }
    }
}
