//! Zip archives (stored, deflated, deflate64, bzip2, zstd, lzma; zip64): every entry is
//! decompressed into the sandbox and its CRC-32 checked when its data ends; the sum of
//! what was restored must equal what the central directory declares. Entries are
//! independent, so they are restored in parallel, each thread reading the file through
//! its own cursor (`pread`), never loading the archive into memory. Encrypted entries
//! are left out (no password is configured) and the rest checked; entries that share a
//! name make the zip corrupt (only one of them could be checked).

use super::sandbox::{EntryPath, Sandbox};
use super::{Notes, RestoreError};
use rayon::prelude::*;
use std::collections::HashSet;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::os::unix::fs::FileExt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use zip::ZipArchive;
use zip::read::ZipFileEntry;
use zip::result::ZipError;

/// The longest symbolic link target we read from an entry.
const MAX_LINK_TARGET: u64 = 4096;

pub fn extract(
    sandbox: &Sandbox,
    file: File,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<Notes, RestoreError> {
    let shared = SharedFile::new(file)?;
    let archive = ZipArchive::new(shared.clone()).map_err(zip_error)?;
    if archive.has_duplicate_names() {
        return Err(duplicate_names(&shared, archive.central_directory_start()));
    }
    let mut declared = 0u64;
    let mut encrypted = Vec::new();
    let mut plain = Vec::new();
    let mut plain_files = 0usize;
    for i in 0..archive.len() {
        let entry = archive.by_index_data(i).map_err(zip_error)?;
        check_local_header(&shared, &entry)?;
        if entry.encrypted() {
            encrypted.push(String::from_utf8_lossy(entry.name_raw()).into_owned());
            continue;
        }
        plain.push(i);
        if !entry.is_dir() && !entry.is_symlink() {
            declared = declared.saturating_add(entry.size());
            plain_files += 1;
        }
    }
    if !encrypted.is_empty() && plain_files == 0 {
        return Err(RestoreError::Skipped(format!(
            "every file of the zip is encrypted ({} entries, e.g. {:?}) and no password is configured",
            encrypted.len(),
            encrypted[0]
        )));
    }
    let restored = AtomicU64::new(0);
    plain.par_iter().try_for_each_init(
        || archive.clone(),
        |archive, &i| {
            let got = restore_entry(sandbox, archive, i, progress)?;
            restored.fetch_add(got, Ordering::Relaxed);
            Ok::<(), RestoreError>(())
        },
    )?;
    let restored = restored.into_inner();
    if restored != declared {
        return Err(RestoreError::Corrupt(format!(
            "restored {restored} bytes but the central directory declares {declared}"
        )));
    }
    let loops = sandbox.check_links()?;
    let mut notes = Notes::default();
    notes.push(format!(
        "{} entries, every CRC-32 checked; restored {restored} of {declared} declared bytes",
        plain.len()
    ));
    if !encrypted.is_empty() {
        notes.push(format!(
            "{} encrypted entries not checked (no password is configured), e.g. {:?}",
            encrypted.len(),
            encrypted[0]
        ));
    }
    notes.extend(loops);
    Ok(notes)
}

/// The zip crate keeps one entry per name, so of two entries named alike only one could
/// be checked; and which copy a restore yields differs from tool to tool (`unzip -o` and
/// Python's the last, others the first or they ask). No ordinary zip writer makes such an
/// archive (Info-ZIP refuses, Python warns), so it is corrupt. The central directory is
/// walked to name the first repeated name.
fn duplicate_names(file: &SharedFile, directory: u64) -> RestoreError {
    let mut names = HashSet::new();
    let mut at = directory;
    let mut entries = 0u64;
    let mut repeated = None;
    let mut head = [0u8; 46];
    while file.file.read_exact_at(&mut head, at).is_ok() && head[..4] == *b"PK\x01\x02" {
        let u16_at = |i: usize| u64::from(u16::from_le_bytes([head[i], head[i + 1]]));
        let mut name = vec![0u8; u16_at(28) as usize];
        if file.file.read_exact_at(&mut name, at + 46).is_err() {
            break;
        }
        entries += 1;
        if !names.insert(name.clone()) && repeated.is_none() {
            repeated = Some(String::from_utf8_lossy(&name).into_owned());
        }
        at += 46 + u16_at(28) + u16_at(30) + u16_at(32);
    }
    let which = match repeated {
        Some(name) => format!(
            " ({entries} entries under {} names, e.g. {name:?})",
            names.len()
        ),
        None => String::new(),
    };
    RestoreError::Corrupt(format!(
        "the zip holds entries with the same name{which}: only one copy of each name can be checked, and which copy a restore yields differs from tool to tool"
    ))
}

fn restore_entry(
    sandbox: &Sandbox,
    archive: &mut ZipArchive<SharedFile>,
    index: usize,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<u64, RestoreError> {
    sandbox.check_deadline()?;
    let mut entry = archive.by_index(index).map_err(zip_error)?;
    progress(entry.compressed_size());
    let Some(path) = EntryPath::parse(entry.name_raw())? else {
        return Ok(0);
    };
    if entry.is_dir() {
        sandbox.make_dir(&path)?;
        sandbox.tally.note(&path.rel(), false);
        return Ok(0);
    }
    if entry.is_symlink() {
        let mut target = Vec::new();
        (&mut entry)
            .take(MAX_LINK_TARGET)
            .read_to_end(&mut target)
            .map_err(|e| RestoreError::read(&path.rel(), e))?;
        sandbox.note_symlink(&path, &target)?;
        sandbox.tally.note(&path.rel(), false);
        return Ok(0);
    }
    let size = entry.size();
    let written = sandbox.write_declared(&path, &mut entry, size, "the central directory")?;
    sandbox.tally.note(&path.rel(), written.new);
    Ok(written.bytes)
}

/// The local header in front of an entry's data must agree with the central directory on
/// the name, CRC-32 and sizes (the zip crate reads only the central directory): a zip made
/// to show one thing to a central-directory reader and another to an extractor that
/// streams local headers is not the backup we tested.
fn check_local_header(file: &SharedFile, entry: &ZipFileEntry<'_>) -> Result<(), RestoreError> {
    let name = entry.name_raw();
    let shown = String::from_utf8_lossy(name);
    let mut head = vec![0u8; 30 + name.len()];
    file.file
        .read_exact_at(&mut head, entry.header_start())
        .map_err(|e| RestoreError::read(&format!("the local header of {shown:?}"), e))?;
    let u16_at = |at: usize| u16::from_le_bytes([head[at], head[at + 1]]);
    let u32_at =
        |at: usize| u32::from_le_bytes([head[at], head[at + 1], head[at + 2], head[at + 3]]);
    let disagree = |what: String| {
        RestoreError::Corrupt(format!(
            "zip entry {shown:?}: its local header {what}, unlike the central directory"
        ))
    };
    if head[..4] != *b"PK\x03\x04" {
        return Err(disagree("is missing".into()));
    }
    if usize::from(u16_at(26)) != name.len() || head[30..] != *name {
        let local = String::from_utf8_lossy(&head[30..]);
        return Err(disagree(format!("names it {local:?}")));
    }
    // With a data descriptor (flag bit 3) the local fields are zero; 0xFFFFFFFF means the
    // sizes are in the zip64 extra field.
    let (crc, compressed, size) = (u32_at(14), u32_at(18), u32_at(22));
    let described = u16_at(6) & 0x8 != 0;
    if !described
        && compressed != u32::MAX
        && size != u32::MAX
        && (crc != entry.crc32()
            || u64::from(compressed) != entry.compressed_size()
            || u64::from(size) != entry.size())
    {
        return Err(disagree(format!(
            "declares {size} bytes ({compressed} compressed, CRC-32 {crc:08x})"
        )));
    }
    Ok(())
}

fn zip_error(e: ZipError) -> RestoreError {
    match e {
        ZipError::UnsupportedArchive(what) => {
            RestoreError::Skipped(format!("unsupported zip feature: {what}"))
        }
        ZipError::CompressionMethodNotSupported(m) => {
            RestoreError::Skipped(format!("unsupported zip compression method {m}"))
        }
        ZipError::Io(e) => RestoreError::read("the zip archive", e),
        other => RestoreError::Corrupt(format!("not a readable zip archive: {other}")),
    }
}

/// One open file shared by the threads, each with its own position (positional reads
/// need no shared cursor and no lock).
#[derive(Clone)]
struct SharedFile {
    file: Arc<File>,
    len: u64,
    pos: u64,
}

impl SharedFile {
    fn new(file: File) -> Result<SharedFile, RestoreError> {
        let len = file
            .metadata()
            .map_err(|e| RestoreError::read("the zip archive", e))?
            .len();
        Ok(SharedFile {
            file: Arc::new(file),
            len,
            pos: 0,
        })
    }
}

impl Read for SharedFile {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.file.read_at(buf, self.pos)?;
        self.pos += n as u64;
        Ok(n)
    }
}

impl Seek for SharedFile {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        let next = match to {
            SeekFrom::Start(p) => Some(p),
            SeekFrom::End(d) => self.len.checked_add_signed(d),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d),
        };
        self.pos = next.ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                "seek before the start of the file",
            )
        })?;
        Ok(self.pos)
    }
}
