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
    let mut spans = Vec::with_capacity(archive.len());
    for i in 0..archive.len() {
        sandbox.check_deadline()?;
        let entry = archive.by_index_data(i).map_err(zip_error)?;
        spans.push(check_local_header(&shared, &entry)?);
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
    check_overlaps(spans)?;
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
        // Data a directory entry should not have is read all the same, against the
        // limit, so its CRC-32 is checked like every other entry's.
        let mut buf = [0u8; 8192];
        loop {
            match entry.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => sandbox.charge_overhead(n as u64)?,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(RestoreError::read(&format!("{:?}", path.rel()), e)),
            }
        }
        return Ok(0);
    }
    if entry.is_symlink() {
        let mut target = Vec::new();
        (&mut entry)
            .take(MAX_LINK_TARGET)
            .read_to_end(&mut target)
            .map_err(|e| RestoreError::read(&format!("{:?}", path.rel()), e))?;
        sandbox.note_symlink(&path, &target)?;
        sandbox.tally.note(&path.rel(), false);
        return Ok(0);
    }
    let size = entry.size();
    let zstd = entry.compression() == zip::CompressionMethod::Zstd;
    let written = sandbox
        .write_declared(&path, &mut entry, size, "the central directory")
        .map_err(|e| match e {
            // The zip reader's zstd decoder takes windows up to 128 MiB: a larger one
            // (`zstd --long`) is not damage.
            RestoreError::Corrupt(why) if zstd && why.contains("requires too much memory") => {
                RestoreError::Skipped(format!(
                    "zip entry {:?} is zstd-compressed with a window larger than the 128 MiB the zip reader decodes: not decoded",
                    path.rel()
                ))
            }
            other => other,
        })?;
    sandbox.tally.note(&path.rel(), written.new);
    Ok(written.bytes)
}

/// The bytes an entry occupies: from its local header to the end of its data.
struct Span {
    start: u64,
    end: u64,
    name: String,
}

/// The local header in front of an entry's data must agree with the central directory on
/// the name, CRC-32 and sizes (the zip crate reads only the central directory): a zip made
/// to show one thing to a central-directory reader and another to an extractor that
/// streams local headers is not the backup we tested. The name compared is the one both
/// headers hold, not the Unicode Path extra field the crate prefers. Returns the bytes
/// the entry occupies.
fn check_local_header(file: &SharedFile, entry: &ZipFileEntry<'_>) -> Result<Span, RestoreError> {
    let name = central_name(file, entry.central_header_start())
        .unwrap_or_else(|| entry.name_raw().to_vec());
    let shown = String::from_utf8_lossy(entry.name_raw()).into_owned();
    let at = entry.header_start();
    let mut head = [0u8; 30];
    file.file
        .read_exact_at(&mut head, at)
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
    let (name_len, extra_len) = (usize::from(u16_at(26)), usize::from(u16_at(28)));
    let mut rest = vec![0u8; name_len + extra_len];
    file.file
        .read_exact_at(&mut rest, at + 30)
        .map_err(|e| RestoreError::read(&format!("the local header of {shown:?}"), e))?;
    let (local_name, extra) = rest.split_at(name_len);
    if local_name != name.as_slice() {
        let local = String::from_utf8_lossy(local_name);
        return Err(disagree(format!("names it {local:?}")));
    }
    // With a data descriptor (flag bit 3) the local fields are zero. 0xFFFFFFFF means the
    // sizes are in a zip64 extra field if there is one; without one it is the size.
    let (crc, compressed, size) = (u32_at(14), u32_at(18), u32_at(22));
    let described = u16_at(6) & 0x8 != 0;
    let zip64 = zip64_sizes(extra);
    let local_size = match (size, zip64) {
        (u32::MAX, Some((s, _))) => s,
        _ => u64::from(size),
    };
    let local_compressed = match (compressed, zip64) {
        (u32::MAX, Some((_, c))) => c,
        _ => u64::from(compressed),
    };
    if !described
        && (crc != entry.crc32()
            || local_compressed != entry.compressed_size()
            || local_size != entry.size())
    {
        return Err(disagree(format!(
            "declares {local_size} bytes ({local_compressed} compressed, CRC-32 {crc:08x})"
        )));
    }
    let data = at + 30 + rest.len() as u64;
    Ok(Span {
        start: at,
        end: data.saturating_add(entry.compressed_size()),
        name: shown,
    })
}

/// The raw name of the central directory record at `at`.
fn central_name(file: &SharedFile, at: u64) -> Option<Vec<u8>> {
    let mut head = [0u8; 46];
    file.file.read_exact_at(&mut head, at).ok()?;
    if head[..4] != *b"PK\x01\x02" {
        return None;
    }
    let mut name = vec![0u8; usize::from(u16::from_le_bytes([head[28], head[29]]))];
    file.file.read_exact_at(&mut name, at + 46).ok()?;
    Some(name)
}

/// (uncompressed, compressed) from a local header's zip64 extra field, if it has one
/// with both.
fn zip64_sizes(mut extra: &[u8]) -> Option<(u64, u64)> {
    while extra.len() >= 4 {
        let id = u16::from_le_bytes([extra[0], extra[1]]);
        let len = usize::from(u16::from_le_bytes([extra[2], extra[3]]));
        let body = extra.get(4..4 + len)?;
        if id == 0x0001 && len >= 16 {
            let u64_at = |i: usize| {
                let mut b = [0u8; 8];
                b.copy_from_slice(&body[i..i + 8]);
                u64::from_le_bytes(b)
            };
            return Some((u64_at(0), u64_at(8)));
        }
        extra = &extra[4 + len..];
    }
    None
}

/// Entries whose bytes overlap: one stream stored once and listed many times expands a
/// small zip a thousandfold (a 26 KB zip to 1 GiB), and no zip writer makes one —
/// `unzip -t` refuses them too.
fn check_overlaps(mut spans: Vec<Span>) -> Result<(), RestoreError> {
    spans.sort_by_key(|s| (s.start, s.end));
    for pair in spans.windows(2) {
        if pair[1].start < pair[0].end {
            return Err(RestoreError::Corrupt(format!(
                "zip entries {:?} and {:?} overlap: their bytes are shared, which no zip writer does (a way to make a small zip expand to gigabytes)",
                pair[0].name, pair[1].name
            )));
        }
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
        ZipError::InvalidArchive(why) => {
            RestoreError::Corrupt(format!("not a readable zip archive: {}", invalid(&why)))
        }
        other => RestoreError::Corrupt(format!("not a readable zip archive: {other}")),
    }
}

/// The zip crate's reason a zip is invalid, in words: a record it found cut short is
/// named by its Rust type (`Unexpected end of zip::format::blocks::Zip32CDEBlock`).
fn invalid(why: &str) -> String {
    let Some(block) = why.strip_prefix("Unexpected end of ") else {
        return crate::problem::one_line(why).into_owned();
    };
    let record = match block.rsplit("::").next().unwrap_or(block) {
        "Zip32CDEBlock" => {
            "its central directory is cut short or damaged: the file ends inside the end of central directory record"
        }
        "Zip64CDEBlock" | "Zip64CDELocatorBlock" => {
            "its central directory is cut short or damaged: the file ends inside the zip64 end of central directory record"
        }
        "ZipCentralEntryBlock" => {
            "its central directory is cut short or damaged: the file ends inside an entry of the central directory"
        }
        "ZipLocalEntryBlock" => {
            "it is cut short or damaged: the file ends inside an entry's local header"
        }
        "ZipDataDescriptorBlock" | "Zip64DataDescriptorBlock" => {
            "it is cut short or damaged: the file ends inside an entry's data descriptor"
        }
        _ => "it is cut short or damaged: the file ends inside one of its records",
    };
    record.to_string()
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
