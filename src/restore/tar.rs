//! Tar archives (plain or inside any compression of `compressed.rs`), read as a stream:
//! ustar, GNU (long names, sparse) and PAX headers. Every entry goes through the sandbox;
//! each regular file's restored size must equal its header's declared size, and the
//! stream is read to its very end afterwards so a compressor's trailing checksum is
//! checked too. What the parser reads besides file content — headers, long names, PAX
//! records, data of entries that are not restored, padding — counts against `max_bytes`
//! ([`Metered`]), so a header declaring a terabyte neither fills memory nor runs for hours.

use super::sandbox::{EntryPath, Sandbox};
use super::{Notes, RestoreError};
use std::cell::Cell;
use std::io::{self, Read};
use tar::EntryType;

/// Metadata allowed before one entry. The tar crate reads a GNU long name or a PAX record
/// into memory whole, whatever size its header declares.
const MAX_METADATA: u64 = 16 << 20;

pub fn extract(sandbox: &Sandbox, stream: &mut dyn Read) -> Result<Notes, RestoreError> {
    let reading = Cell::new(Reading::Metadata(0));
    let mut metered = Metered {
        inner: &mut *stream,
        sandbox,
        reading: &reading,
    };
    let archive = &mut tar::Archive::new(&mut metered as &mut dyn Read);
    let counts = walk(sandbox, archive, &reading)?;
    let loops = sandbox.check_links()?;
    drain(sandbox, stream)?;
    let mut notes = Notes::default();
    notes.push(format!(
        "restored {} of {} declared bytes",
        counts.restored, counts.declared
    ));
    notes.extend(loops);
    if counts.entries == 0 {
        notes.push("an empty archive: it holds only its end-of-archive marker".into());
    }
    if counts.special > 0 {
        notes.push(format!("{} device/FIFO entries skipped", counts.special));
    }
    Ok(notes)
}

#[derive(Default)]
struct Counts {
    entries: u64,
    declared: u64,
    restored: u64,
    special: u64,
}

/// What the tar parser is reading from the stream.
#[derive(Clone, Copy)]
enum Reading {
    /// An entry's content: the sandbox charges it as it writes it.
    Content,
    /// The data of an entry that is not restored (a device's, a directory's).
    Skipped,
    /// Headers, long names, PAX records and padding: so many bytes since the last entry.
    Metadata(u64),
}

/// The stream under the tar parser: counts everything but content against `max_bytes`
/// and caps the metadata before one entry at [`MAX_METADATA`].
struct Metered<'a> {
    inner: &'a mut dyn Read,
    sandbox: &'a Sandbox,
    reading: &'a Cell<Reading>,
}

impl Read for Metered<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        match self.reading.get() {
            Reading::Content => return Ok(n),
            Reading::Skipped => {}
            Reading::Metadata(before) => {
                let total = before + n as u64;
                self.reading.set(Reading::Metadata(total));
                if total > MAX_METADATA {
                    return Err(io::Error::other(format!(
                        "more than {} MiB of tar metadata (headers, long names, PAX records) before one entry",
                        MAX_METADATA >> 20
                    )));
                }
            }
        }
        // The error is told apart by `read_error`, from the sandbox's count.
        self.sandbox
            .charge_overhead(n as u64)
            .map_err(|e| io::Error::other(e.to_string()))?;
        Ok(n)
    }
}

/// A read error of the tar stream: the limit when the meter stopped it there, else
/// corruption.
fn read_error(sandbox: &Sandbox, what: &str, e: io::Error) -> RestoreError {
    match sandbox.charge_overhead(0) {
        Err(limit) => limit,
        Ok(()) => RestoreError::read(what, e),
    }
}

fn walk(
    sandbox: &Sandbox,
    archive: &mut tar::Archive<&mut dyn Read>,
    reading: &Cell<Reading>,
) -> Result<Counts, RestoreError> {
    let mut declared = 0u64;
    let mut restored = 0u64;
    let mut skipped_special = 0u64;
    let mut count = 0u64;
    let entries = archive
        .entries()
        .map_err(|e| read_error(sandbox, "the tar archive", e))?;
    for entry in entries {
        sandbox.check_deadline()?;
        let mut entry = entry.map_err(|e| read_error(sandbox, "a tar header", e))?;
        count += 1;
        reading.set(Reading::Content);
        let kind = entry.header().entry_type();
        let raw_name = entry.path_bytes().into_owned();
        check_pax(&mut entry, &raw_name)?;
        let sparse = pax_sparse(&mut entry, &raw_name)?;
        // A PAX sparse file's real name is in its records; its header names a stand-in.
        let raw_name = match &sparse {
            Some(sp) => sp.name.clone(),
            None => raw_name,
        };
        let Some(path) = EntryPath::parse(&raw_name)? else {
            if matches!(kind, EntryType::Symlink | EntryType::Link) {
                // Found by fuzzing (`tar_links`): `.` as a link to `/…` passed unjudged.
                return Err(RestoreError::Unsafe(format!(
                    "entry {:?} is a link in place of the archive's root directory",
                    String::from_utf8_lossy(&raw_name)
                )));
            }
            skip_rest(sandbox, &mut entry, reading)?;
            continue; // the archive root, `./`
        };
        match kind {
            EntryType::Regular | EntryType::Continuous if sparse.is_some() => {
                let sp = sparse.unwrap_or_default();
                let stored = entry.size();
                let (map, header) = read_sparse_map(sandbox, &mut entry, &sp, &path)?;
                // The lengths are the archive's claims: summed without overflowing.
                let data: u64 = map.iter().map(|(_, len)| *len).fold(0, u64::saturating_add);
                if header.checked_add(data) != Some(stored) {
                    return Err(RestoreError::Corrupt(format!(
                        "the sparse map of {:?} declares {data} bytes of data, the archive holds {}",
                        path.rel(),
                        stored.saturating_sub(header)
                    )));
                }
                let written =
                    sandbox.write_sparse(&path, &mut entry, Some(&map), sp.real_size, data)?;
                declared += data;
                restored += data;
                sandbox.tally.note(&path.rel(), written.new);
            }
            EntryType::GNUSparse => {
                // The tar reader yields the file with its holes as zeros; only the data
                // the archive stores counts.
                let data = entry
                    .header()
                    .entry_size()
                    .map_err(|e| read_error(sandbox, "a tar header", e))?;
                let real_size = entry.size();
                let written = sandbox.write_sparse(&path, &mut entry, None, real_size, data)?;
                declared += data;
                restored += data;
                sandbox.tally.note(&path.rel(), written.new);
            }
            EntryType::Regular | EntryType::Continuous => {
                let size = entry.size();
                let written = sandbox.write_declared(&path, &mut entry, size, "its header")?;
                declared += size;
                restored += written.bytes;
                sandbox.tally.note(&path.rel(), written.new);
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
                let new = sandbox.hard_link(&path, &target)?;
                sandbox.tally.note(&path.rel(), new);
            }
            EntryType::Char | EntryType::Block | EntryType::Fifo => skipped_special += 1,
            // PAX/GNU metadata and volume labels carry no content of their own.
            _ => {}
        }
        skip_rest(sandbox, &mut entry, reading)?;
    }
    Ok(Counts {
        entries: count,
        declared,
        restored,
        special: skipped_special,
    })
}

/// The PAX records that applied to `entry` must be well-formed, and a `size` record a
/// size: the tar crate ignores one it cannot parse and falls back to the header's, so
/// another reader would see another archive.
fn check_pax(
    entry: &mut tar::Entry<'_, &mut dyn Read>,
    raw_name: &[u8],
) -> Result<(), RestoreError> {
    let shown = || String::from_utf8_lossy(raw_name).into_owned();
    let bad =
        |what: String| RestoreError::Corrupt(format!("the PAX header of {:?} {what}", shown()));
    let Ok(Some(records)) = entry.pax_extensions() else {
        return Ok(());
    };
    for record in records {
        let record = record.map_err(|_| bad("holds a malformed record".into()))?;
        if record.key_bytes() != b"size" {
            continue;
        }
        let value = record.value_bytes();
        let valid = !value.is_empty()
            && value.iter().all(u8::is_ascii_digit)
            && std::str::from_utf8(value).is_ok_and(|v| v.parse::<u64>().is_ok());
        if !valid {
            let value: String = String::from_utf8_lossy(value).chars().take(24).collect();
            return Err(bad(format!(
                "declares a size that is not one ({value:?}): readers disagree on where the entry ends"
            )));
        }
    }
    Ok(())
}

/// A file stored in one of GNU tar's PAX sparse formats (0.0, 0.1, 1.0).
#[derive(Default)]
struct PaxSparse {
    name: Vec<u8>,
    real_size: u64,
    /// 1.0: the map is at the start of the data. 0.x: here.
    map: Option<Vec<(u64, u64)>>,
}

/// Sparse map entries one file may declare.
const MAX_SPARSE_MAP: usize = 1 << 20;

/// The PAX sparse records of `entry`, if it is a sparse file.
fn pax_sparse(
    entry: &mut tar::Entry<'_, &mut dyn Read>,
    raw_name: &[u8],
) -> Result<Option<PaxSparse>, RestoreError> {
    let Ok(Some(records)) = entry.pax_extensions() else {
        return Ok(None);
    };
    let shown = String::from_utf8_lossy(raw_name).into_owned();
    let bad = |what: &str| {
        RestoreError::Corrupt(format!(
            "the PAX sparse records of {shown:?} are malformed ({what})"
        ))
    };
    let number = |v: &[u8], what: &str| {
        std::str::from_utf8(v)
            .ok()
            .filter(|t| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|t| t.parse::<u64>().ok())
            .ok_or_else(|| bad(what))
    };
    let (mut major, mut name, mut real_size) = (None, None, None);
    let mut map: Vec<(u64, u64)> = Vec::new();
    let mut offsets = Vec::new();
    let mut seen = false;
    for record in records.flatten() {
        let value = record.value_bytes();
        match record.key_bytes() {
            b"GNU.sparse.major" => major = Some(number(value, "major")?),
            b"GNU.sparse.name" => name = Some(value.to_vec()),
            b"GNU.sparse.realsize" | b"GNU.sparse.size" => real_size = Some(number(value, "size")?),
            b"GNU.sparse.map" => {
                seen = true;
                let parts: Vec<&[u8]> = value.split(|&b| b == b',').collect();
                if !parts.len().is_multiple_of(2) || parts.len() / 2 > MAX_SPARSE_MAP {
                    return Err(bad("map"));
                }
                for pair in parts.chunks(2) {
                    map.push((number(pair[0], "map")?, number(pair[1], "map")?));
                }
            }
            b"GNU.sparse.offset" => {
                seen = true;
                offsets.push(number(value, "offset")?);
            }
            b"GNU.sparse.numbytes" => {
                let offset = offsets.pop().ok_or_else(|| bad("numbytes before offset"))?;
                if map.len() >= MAX_SPARSE_MAP {
                    return Err(bad("map"));
                }
                map.push((offset, number(value, "numbytes")?));
            }
            _ => {}
        }
    }
    if major.is_none() && !seen {
        return Ok(None);
    }
    let real_size = real_size.ok_or_else(|| bad("no size"))?;
    Ok(Some(PaxSparse {
        name: name.unwrap_or_else(|| raw_name.to_vec()),
        real_size,
        map: (major != Some(1)).then_some(map),
    }))
}

/// The sparse map of `sp`: from its records (0.x), or read from the start of the entry's
/// data (1.0: decimal lines, a count then offset and length pairs, padded to 512 bytes).
/// Returns the map and how many bytes of the data it took.
fn read_sparse_map(
    sandbox: &Sandbox,
    entry: &mut dyn Read,
    sp: &PaxSparse,
    path: &EntryPath,
) -> Result<(Vec<(u64, u64)>, u64), RestoreError> {
    if let Some(map) = &sp.map {
        return Ok((map.clone(), 0));
    }
    let bad = || {
        RestoreError::Corrupt(format!(
            "the sparse map at the start of {:?} is malformed",
            path.rel()
        ))
    };
    let mut taken = 0u64;
    let mut line = |entry: &mut dyn Read| -> Result<u64, RestoreError> {
        let mut digits = Vec::new();
        let mut byte = [0u8; 1];
        loop {
            entry
                .read_exact(&mut byte)
                .map_err(|e| read_error(sandbox, "a sparse map", e))?;
            taken += 1;
            match byte[0] {
                b'\n' => break,
                b'0'..=b'9' if digits.len() < 20 => digits.push(byte[0]),
                _ => return Err(bad()),
            }
        }
        std::str::from_utf8(&digits)
            .ok()
            .and_then(|t| t.parse::<u64>().ok())
            .ok_or_else(bad)
    };
    let count = line(entry)?;
    if count > MAX_SPARSE_MAP as u64 {
        return Err(bad());
    }
    let mut map = Vec::with_capacity(count as usize);
    for _ in 0..count {
        sandbox.check_deadline()?;
        let offset = line(entry)?;
        let len = line(entry)?;
        map.push((offset, len));
    }
    let pad = (512 - taken % 512) % 512;
    io::copy(&mut entry.take(pad), &mut io::sink())
        .map_err(|e| read_error(sandbox, "a sparse map", e))?;
    sandbox.charge_overhead(taken + pad)?;
    Ok((map, taken + pad))
}

/// Read what `entry` still holds — the data of an entry that is not restored (a device, a
/// directory that declares a size) — counted against the limit; then metadata follows.
fn skip_rest(
    sandbox: &Sandbox,
    entry: &mut dyn Read,
    reading: &Cell<Reading>,
) -> Result<(), RestoreError> {
    reading.set(Reading::Skipped);
    io::copy(entry, &mut io::sink()).map_err(|e| read_error(sandbox, "a tar entry", e))?;
    reading.set(Reading::Metadata(0));
    Ok(())
}

/// Read what follows the end-of-archive marker to the end of the stream, so the
/// decompressor verifies its trailer; counted against the limit (a bomb can hide there
/// too). It must be zeros (the marker's second block, record padding): data there is
/// what tar stops before — a header overwritten with zeros, or archives concatenated
/// without `tar -A` — and GNU tar only warns "A lone zero block" while it loses them.
fn drain(sandbox: &Sandbox, stream: &mut dyn Read) -> Result<(), RestoreError> {
    let mut buf = vec![0u8; 64 << 10];
    let mut after = 0u64;
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => {
                sandbox.charge_overhead(n as u64)?;
                if let Some(at) = buf[..n].iter().position(|&b| b != 0) {
                    let gap = match after + at as u64 {
                        0 => String::new(),
                        zeros => format!(" after {zeros} more zero bytes"),
                    };
                    return Err(RestoreError::Corrupt(format!(
                        "data follows the end-of-archive marker{gap}: tar stops reading there, so what follows — entries after a header overwritten with zeros, or a second archive appended — is lost"
                    )));
                }
                after += n as u64;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(RestoreError::read("the end of the stream", e)),
        }
    }
}
