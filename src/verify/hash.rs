//! Hashing one backup file: every digest it needs in one streaming pass, with the file's
//! identity checked before and after so a file that vanishes or changes while it is read
//! never yields a verdict. Not for: deciding what a digest means (see `judge`).

use crate::config::ChecksumAlgo;
use md5::Md5;
use sha2::{Digest, Sha256};
use std::fs::File;
use std::io::{self, Read};
use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// Reads of at least this size get a sequential read-ahead hint.
const ADVISE_FROM: u64 = 1 << 20;

thread_local! {
    /// One read buffer per hashing thread, reused across files: allocating (and faulting
    /// in) a fresh one per file would cost more than hashing a small file.
    static BUFFER: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// From this size a blake3-only hash is memory-mapped and spread over all cores, so one
/// large file is not the bottleneck of a run (below it, threads are better spent on files).
const BLAKE3_PARALLEL_FROM: u64 = 32 << 20;

/// How much of a large file is mapped at once (a multiple of blake3's parallel subtrees).
const MMAP_WINDOW: u64 = 16 << 20;

/// The algorithms one file must be hashed with (its recorded checksum and its sidecars).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Algos {
    pub sha256: bool,
    pub md5: bool,
    pub blake3: bool,
}

impl Algos {
    pub fn add(&mut self, algo: ChecksumAlgo) {
        match algo {
            ChecksumAlgo::Sha256 => self.sha256 = true,
            ChecksumAlgo::Md5 => self.md5 = true,
            ChecksumAlgo::Blake3 => self.blake3 = true,
        }
    }

    fn blake3_only(self) -> bool {
        self.blake3 && !self.sha256 && !self.md5
    }
}

/// Lower-case hex digests of one file, for the algorithms that were asked for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Digests {
    sha256: Option<String>,
    md5: Option<String>,
    blake3: Option<String>,
}

impl Digests {
    pub fn get(&self, algo: ChecksumAlgo) -> Option<&str> {
        match algo {
            ChecksumAlgo::Sha256 => self.sha256.as_deref(),
            ChecksumAlgo::Md5 => self.md5.as_deref(),
            ChecksumAlgo::Blake3 => self.blake3.as_deref(),
        }
    }
}

/// What identifies the content of a file without reading it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    pub size: u64,
    pub mtime_ns: i64,
    dev: u64,
    ino: u64,
}

impl Stamp {
    /// An object's: its size and LastModified (it has no inode).
    pub fn object(size: u64, mtime_ns: i64) -> Stamp {
        Stamp {
            size,
            mtime_ns,
            dev: 0,
            ino: 0,
        }
    }

    fn of(meta: &std::fs::Metadata) -> Stamp {
        Stamp {
            size: meta.len(),
            mtime_ns: crate::scan::mtime_ns(meta),
            dev: meta.dev(),
            ino: meta.ino(),
        }
    }
}

/// How hashing one file ended.
#[derive(Debug)]
pub enum Outcome {
    /// The file stayed the same from opening to after the last byte.
    Hashed { digests: Digests, stamp: Stamp },
    /// The file is gone.
    Vanished,
    /// It changed while being read, twice in a row; `last` is what it looked like then.
    Changing { last: Option<Stamp> },
    /// It could not be read (permissions, I/O error).
    Unreadable(io::Error),
}

/// The result of hashing one file, with every byte read (retries included).
#[derive(Debug)]
pub struct Hashed {
    pub outcome: Outcome,
    pub bytes: u64,
    pub duration: std::time::Duration,
    /// The SHA-256 the server holds for the object (hex), checked like a sidecar.
    pub server_sha256: Option<String>,
}

/// One attempt: what it read, or why it gave up.
enum Attempt {
    Stable(Digests, Stamp),
    Changed(Option<Stamp>),
    Failed(io::Error),
}

/// Hash `path` with `algos`, retrying once if the file changes while it is read.
/// `progress` receives the number of bytes of each read as it happens.
pub fn hash_file(path: &Path, algos: Algos, progress: &(dyn Fn(u64) + Sync)) -> Hashed {
    let started = std::time::Instant::now();
    let mut bytes = 0;
    let mut last = None;
    for _ in 0..2 {
        match attempt(path, algos, &mut bytes, progress) {
            Attempt::Stable(digests, stamp) => {
                return Hashed {
                    outcome: Outcome::Hashed { digests, stamp },
                    bytes,
                    duration: started.elapsed(),
                    server_sha256: None,
                };
            }
            Attempt::Failed(e) => {
                let outcome = if e.kind() == io::ErrorKind::NotFound {
                    Outcome::Vanished
                } else {
                    Outcome::Unreadable(e)
                };
                return Hashed {
                    outcome,
                    bytes,
                    duration: started.elapsed(),
                    server_sha256: None,
                };
            }
            Attempt::Changed(stamp) => last = stamp,
        }
    }
    let outcome = match last {
        // Gone after the second read: say so rather than "changing".
        None if !path.exists() => Outcome::Vanished,
        last => Outcome::Changing { last },
    };
    Hashed {
        outcome,
        bytes,
        duration: started.elapsed(),
        server_sha256: None,
    }
}

/// Hash backup `rel` of a source without local paths: one streamed read (an object read
/// is of one version from its first byte to its last, so there is nothing to compare
/// after it), with the identity the source gave when it was opened. When the server holds
/// a SHA-256 of the object, SHA-256 is computed too so that it can be checked.
pub fn hash_object(
    source: &dyn crate::source::Source,
    rel: &str,
    algos: Algos,
    progress: &(dyn Fn(u64) + Sync),
) -> Hashed {
    let started = std::time::Instant::now();
    let mut bytes = 0;
    let done = |outcome, bytes, server_sha256| Hashed {
        outcome,
        bytes,
        duration: started.elapsed(),
        server_sha256,
    };
    let mut opened = match source.open(rel) {
        Ok(o) => o,
        Err(e) if e.is_not_found() => return done(Outcome::Vanished, 0, None),
        Err(e) => return done(Outcome::Unreadable(transfer(e.to_string())), 0, None),
    };
    let mut algos = algos;
    if opened.server_sha256.is_some() {
        algos.sha256 = true;
    }
    let stamp = Stamp::object(opened.fingerprint.size(), opened.fingerprint.mtime_ns());
    let server = opened.server_sha256.take();
    match feed(&mut opened.reader, algos, stamp.size, &mut bytes, progress) {
        Ok(_) if bytes != stamp.size => done(
            Outcome::Unreadable(transfer(format!(
                "the server ended the object after {bytes} of its {} bytes",
                stamp.size
            ))),
            bytes,
            server,
        ),
        Ok(digests) => done(Outcome::Hashed { digests, stamp }, bytes, server),
        Err(e) => done(Outcome::Unreadable(transfer(e.to_string())), bytes, server),
    }
}

/// A transfer that failed: no verdict on the content (the next run reads it again).
fn transfer(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::ConnectionAborted, message)
}

fn attempt(path: &Path, algos: Algos, bytes: &mut u64, progress: &(dyn Fn(u64) + Sync)) -> Attempt {
    // What was opened is what is read; the path is compared with it after the last byte.
    let (file, before) = match crate::scan::open_found(path) {
        Ok((f, m)) if m.is_file() => (f, Stamp::of(&m)),
        // Not a regular file (a FIFO swapped in): no verdict from it.
        Ok((_, m)) => return Attempt::Changed(Some(Stamp::of(&m))),
        Err(e) => return Attempt::Failed(e),
    };
    let digests = if algos.blake3_only() && before.size >= BLAKE3_PARALLEL_FROM {
        blake3_parallel(&file, before, bytes, progress)
    } else {
        stream(file, algos, before, bytes, progress)
    };
    let digests = match digests {
        Ok(d) => d,
        Err(e) => return Attempt::Failed(e),
    };
    // Compare by path after the last byte: catches appends, truncations, rewrites and
    // replacements (a new inode renamed over the old one).
    match std::fs::symlink_metadata(path) {
        Ok(m) if Stamp::of(&m) == before => Attempt::Stable(digests, before),
        Ok(m) => Attempt::Changed(Some(Stamp::of(&m))),
        Err(_) => Attempt::Changed(None),
    }
}

/// Read the file once in large blocks and feed every requested hasher. Reading stops at
/// the size the file had when it was opened: a file that grew since is caught by the
/// caller's after-check, so the read that would only confirm the end is not needed.
fn stream(
    mut file: File,
    algos: Algos,
    before: Stamp,
    bytes: &mut u64,
    progress: &(dyn Fn(u64) + Sync),
) -> io::Result<Digests> {
    if before.size > ADVISE_FROM {
        advise_sequential(&file);
    }
    feed(&mut file, algos, before.size, bytes, progress)
}

/// Feed every requested hasher from `reader` in large blocks, up to `size` bytes (a size
/// of 0 is read to the end: pseudo-files report 0 and still hold bytes).
fn feed<R: Read + ?Sized>(
    file: &mut R,
    algos: Algos,
    size: u64,
    bytes: &mut u64,
    progress: &(dyn Fn(u64) + Sync),
) -> io::Result<Digests> {
    let before = Stamp::object(size, 0);
    let mut sha256 = algos.sha256.then(Sha256::new);
    let mut md5 = algos.md5.then(Md5::new);
    let mut blake3 = algos.blake3.then(blake3::Hasher::new);
    BUFFER.with_borrow_mut(|buf| -> io::Result<()> {
        // The read size is swept by scripts/bench/verify.sh (see crate::tuning); one
        // buffer per worker keeps memory constant whatever the file size.
        buf.resize(crate::tuning::hash_read_size(), 0);
        let mut left = before.size;
        // A size of 0 is read to the end (pseudo-files report 0 and still hold bytes).
        while left > 0 || before.size == 0 {
            let n = match file.read(buf) {
                Ok(0) => return Ok(()),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            let block = &buf[..n];
            if let Some(h) = sha256.as_mut() {
                h.update(block);
            }
            if let Some(h) = md5.as_mut() {
                h.update(block);
            }
            if let Some(h) = blake3.as_mut() {
                h.update(block);
            }
            *bytes += n as u64;
            left = left.saturating_sub(n as u64);
            progress(n as u64);
        }
        Ok(())
    })?;
    Ok(Digests {
        sha256: sha256.map(|h| hex(&h.finalize())),
        md5: md5.map(|h| hex(&h.finalize())),
        blake3: blake3.map(|h| h.finalize().to_hex().to_string()),
    })
}

/// One large file on all cores: blake3's tree hashing (`update_rayon`) over a memory map,
/// as `update_mmap_rayon` does, but mapped one window at a time so the mapped pages (which
/// count as resident memory) stay bounded whatever the file size.
fn blake3_parallel(
    file: &File,
    before: Stamp,
    bytes: &mut u64,
    progress: &(dyn Fn(u64) + Sync),
) -> io::Result<Digests> {
    let mut hasher = blake3::Hasher::new();
    let mut offset = 0u64;
    while offset < before.size {
        // Never map past the current end: a file truncated under a map faults (SIGBUS).
        let size = file.metadata()?.len();
        if size <= offset {
            break;
        }
        let len = (size.min(before.size) - offset).min(MMAP_WINDOW);
        // SAFETY: the map is read-only and dropped before the next window; the length was
        // checked against the file's current size just above. A concurrent truncation is
        // the only hazard left, the same as for `update_mmap_rayon` and b3sum.
        let map = unsafe {
            memmap2::MmapOptions::new()
                .offset(offset)
                .len(len as usize)
                .map(file)?
        };
        let _ = map.advise(memmap2::Advice::Sequential);
        hasher.update_rayon(&map);
        drop(map);
        offset += len;
        *bytes += len;
        progress(len);
    }
    Ok(Digests {
        blake3: Some(hasher.finalize().to_hex().to_string()),
        ..Digests::default()
    })
}

/// Tell the kernel to read ahead aggressively; purely a hint, so failure is ignored.
fn advise_sequential(file: &File) {
    use std::os::fd::AsRawFd;
    // SAFETY: posix_fadvise only reads its arguments; the descriptor is open.
    unsafe {
        libc::posix_fadvise(file.as_raw_fd(), 0, 0, libc::POSIX_FADV_SEQUENTIAL);
    }
}

pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[usize::from(b >> 4)] as char);
        s.push(DIGITS[usize::from(b & 0xf)] as char);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    /// The block size the hashing loop reads with.
    fn block() -> usize {
        crate::tuning::hash_read_size()
    }
    use std::io::Write;

    fn all() -> Algos {
        Algos {
            sha256: true,
            md5: true,
            blake3: true,
        }
    }

    fn digests(h: &Hashed) -> &Digests {
        match &h.outcome {
            Outcome::Hashed { digests, .. } => digests,
            other => panic!("not hashed: {other:?}"),
        }
    }

    #[test]
    fn known_digests_of_abc() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("abc");
        std::fs::write(&p, b"abc").unwrap();
        let h = hash_file(&p, all(), &|_| {});
        let d = digests(&h);
        assert_eq!(
            d.get(ChecksumAlgo::Sha256),
            Some("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        );
        assert_eq!(
            d.get(ChecksumAlgo::Md5),
            Some("900150983cd24fb0d6963f7d28e17f72")
        );
        assert_eq!(
            d.get(ChecksumAlgo::Blake3),
            Some("6437b3ac38465133ffb63b75273a8db548c558465d79db03fd359c6cd5bd9d85")
        );
        assert_eq!(h.bytes, 3);
    }

    #[test]
    fn only_requested_algorithms_are_computed() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        std::fs::write(&p, b"x").unwrap();
        let h = hash_file(
            &p,
            Algos {
                md5: true,
                ..Algos::default()
            },
            &|_| {},
        );
        assert!(digests(&h).get(ChecksumAlgo::Md5).is_some());
        assert!(digests(&h).get(ChecksumAlgo::Sha256).is_none());
    }

    #[test]
    fn large_blake3_file_takes_the_parallel_path_with_the_same_digest() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("big");
        let data: Vec<u8> = (0..BLAKE3_PARALLEL_FROM + 12345)
            .map(|i| (i % 251) as u8)
            .collect();
        std::fs::write(&p, &data).unwrap();
        let only = Algos {
            blake3: true,
            ..Algos::default()
        };
        let h = hash_file(&p, only, &|_| {});
        let expected = blake3::hash(&data).to_hex().to_string();
        assert_eq!(digests(&h).get(ChecksumAlgo::Blake3), Some(&*expected));
        assert_eq!(h.bytes, data.len() as u64);
    }

    #[test]
    fn a_missing_file_is_vanished() {
        let dir = tempfile::tempdir().unwrap();
        let h = hash_file(&dir.path().join("gone"), all(), &|_| {});
        assert!(matches!(h.outcome, Outcome::Vanished), "{:?}", h.outcome);
    }

    #[test]
    fn a_file_growing_while_read_is_retried_then_reported_changing() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("growing");
        std::fs::write(&p, vec![7u8; 3 * block()]).unwrap();
        // Every full block read appends: a writer that never stops.
        let append = |n: u64| {
            if n == block() as u64 {
                let mut f = std::fs::OpenOptions::new().append(true).open(&p).unwrap();
                f.write_all(b"more").unwrap();
            }
        };
        let h = hash_file(&p, all(), &append);
        match h.outcome {
            Outcome::Changing { last: Some(s) } => assert!(s.size > 3 * block() as u64),
            other => panic!("expected Changing, got {other:?}"),
        }
        assert!(
            h.bytes >= 6 * block() as u64,
            "read twice: {} bytes",
            h.bytes
        );
    }

    #[test]
    fn a_file_changed_once_is_hashed_again_and_the_second_read_counts() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("once");
        std::fs::write(&p, vec![1u8; 2 * block()]).unwrap();
        let done = std::sync::atomic::AtomicBool::new(false);
        let append_once = |_n: u64| {
            if !done.swap(true, std::sync::atomic::Ordering::SeqCst) {
                let mut f = std::fs::OpenOptions::new().append(true).open(&p).unwrap();
                f.write_all(b"tail").unwrap();
            }
        };
        let h = hash_file(&p, all(), &append_once);
        let mut expected = vec![1u8; 2 * block()];
        expected.extend_from_slice(b"tail");
        match &h.outcome {
            Outcome::Hashed { digests, stamp } => {
                assert_eq!(stamp.size, expected.len() as u64);
                assert_eq!(
                    digests.get(ChecksumAlgo::Blake3),
                    Some(&*blake3::hash(&expected).to_hex().to_string())
                );
            }
            other => panic!("expected a stable second read, got {other:?}"),
        }
    }

    #[test]
    fn a_file_removed_while_read_is_vanished() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("removed");
        std::fs::write(&p, vec![1u8; 2 * block()]).unwrap();
        let remove = |_n: u64| {
            let _ = std::fs::remove_file(&p);
        };
        let h = hash_file(&p, all(), &remove);
        assert!(matches!(h.outcome, Outcome::Vanished), "{:?}", h.outcome);
    }

    #[test]
    fn a_file_truncated_while_read_is_never_hashed_short() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("truncated");
        std::fs::write(&p, vec![3u8; 2 * block()]).unwrap();
        let done = std::sync::atomic::AtomicBool::new(false);
        let truncate_once = |_n: u64| {
            if !done.swap(true, std::sync::atomic::Ordering::SeqCst) {
                let f = std::fs::OpenOptions::new().write(true).open(&p).unwrap();
                f.set_len(1000).unwrap();
            }
        };
        let h = hash_file(&p, all(), &truncate_once);
        // The first read saw 1 MiB of a file that then lost most of it: no verdict from
        // it; the second read is of the file as it now is, whole.
        match &h.outcome {
            Outcome::Hashed { digests, stamp } => {
                assert_eq!(stamp.size, 1000);
                assert_eq!(
                    digests.get(ChecksumAlgo::Blake3),
                    Some(&*blake3::hash(&[3u8; 1000]).to_hex().to_string())
                );
            }
            other => panic!("expected the truncated file hashed whole, got {other:?}"),
        }
    }

    #[test]
    fn a_fifo_in_place_of_a_backup_does_not_hang() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("fifo.bak");
        let c = std::ffi::CString::new(p.as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: mkfifo reads a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(hash_file(&p, all(), &|_| {}));
        });
        let h = rx
            .recv_timeout(std::time::Duration::from_secs(20))
            .expect("hashing a FIFO must not block on a writer that never comes");
        assert!(
            matches!(h.outcome, Outcome::Changing { last: Some(_) }),
            "{:?}",
            h.outcome
        );
        assert_eq!(h.bytes, 0);
    }

    #[test]
    fn hex_is_lower_case() {
        assert_eq!(hex(&[0x00, 0xab, 0xff]), "00abff");
    }
}
