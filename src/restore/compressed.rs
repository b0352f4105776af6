//! Compressed streams: gzip (all members), zstd (all frames), bzip2 (all streams) and xz,
//! decoded in a thread of their own so decompression overlaps with parsing and writing,
//! plus the restore of a single compressed file. Memory stays constant: a few 1 MiB
//! chunks are in flight, whatever the stream's size.

use super::detect::Compression;
use super::sandbox::{EntryPath, Sandbox};
use super::{Notes, RestoreError};
use std::io::{self, BufReader, Read};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

/// Chunks decoded ahead of the consumer.
const AHEAD: usize = 4;

pub type Stream = Box<dyn Read + Send>;

/// Decoder memory always allowed, whatever `max_bytes` says: the windows of the standard
/// presets (xz -9: a 64 MiB dictionary; zstd --long: 128 MiB) and then some.
pub const DECODER_MEMORY_FLOOR: u64 = 256 << 20;

/// The memory a decoder may take: `config` (`restore.decoder_memory`) is the machine's
/// bound — past it a backup is skipped, since it cannot be tested here — and `max_bytes`
/// the test's (no less than [`DECODER_MEMORY_FLOOR`]) — past it the test fails, as for
/// any other output past the limit.
#[derive(Debug, Clone, Copy)]
pub struct DecoderMemory {
    pub config: u64,
    pub max_bytes: u64,
}

impl DecoderMemory {
    /// Unbounded but for `max_bytes` (fuzzing, tools).
    pub fn for_max_bytes(max_bytes: u64) -> DecoderMemory {
        DecoderMemory {
            config: 2 << 30,
            max_bytes,
        }
    }

    /// What `codec` may take: an xz dictionary is bounded by both; a zstd window only by
    /// the machine's bound (`--long` windows up to 2 GiB are a documented zstd mode, and
    /// the window fills only as far as the output, which `max_bytes` bounds).
    fn allowed(&self, codec: Compression) -> u64 {
        match codec {
            Compression::Xz => self.config.min(self.max_bytes.max(DECODER_MEMORY_FLOOR)),
            _ => self.config,
        }
    }

    /// The verdict on a stream that needs `need` bytes of decoder memory (`what`: the
    /// dictionary, the window), or None when it may be decoded.
    pub fn judge(&self, compression: Compression, what: &str, need: u64) -> Option<RestoreError> {
        let codec = compression.suffix();
        let shown = bytesize::ByteSize(need).display().iec().to_string();
        if need > self.config {
            return Some(RestoreError::Skipped(format!(
                "the {codec} stream needs {shown} of memory to decode ({what}), more than restore.decoder_memory ({}): not decoded",
                bytesize::ByteSize(self.config).display().iec()
            )));
        }
        if need > self.allowed(compression) {
            return Some(RestoreError::Exceeded(format!(
                "the {codec} stream needs {shown} of memory to decode ({what}), more than restore.max_bytes ({}) allows: not decoded",
                bytesize::ByteSize(self.max_bytes).display().iec()
            )));
        }
        None
    }

    /// The verdict when the decoder itself refused a frame or block past its limit.
    fn refused(&self, compression: Compression) -> RestoreError {
        let codec = compression.suffix();
        let allowed = self.allowed(compression);
        let limit = bytesize::ByteSize(allowed).display().iec();
        let reason = format!(
            "a part of the {codec} stream needs more than {limit} of memory to decode: not decoded"
        );
        if allowed >= self.config {
            RestoreError::Skipped(format!("{reason} (restore.decoder_memory)"))
        } else {
            RestoreError::Exceeded(format!("{reason} (restore.max_bytes)"))
        }
    }
}

/// Why a decoder stopped, when it stopped at its memory limit rather than at damage: the
/// stream's error passes through parsers that rephrase it, so the verdict is kept here.
#[derive(Clone, Default)]
pub struct Refusal(Arc<Mutex<Option<RestoreError>>>);

impl Refusal {
    /// The kept verdict, if the decoder refused.
    pub fn take(&self) -> Option<RestoreError> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).take()
    }

    fn set(&self, e: RestoreError) {
        let mut slot = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if slot.is_none() {
            *slot = Some(e);
        }
    }
}

/// What the start of a compressed stream declares it needs to decode: the first xz
/// block's dictionary, the first zstd frame's window. None when the header does not say
/// (or is not there yet); the decoder's own limit still holds.
pub fn declared_memory(compression: Compression, head: &[u8]) -> Option<(&'static str, u64)> {
    match compression {
        Compression::Xz => xz_dictionary(head).map(|d| ("its dictionary", d)),
        Compression::Zstd => zstd_window(head).map(|w| ("its window", w)),
        _ => None,
    }
}

/// The LZMA2 dictionary size of the first block of an xz stream.
fn xz_dictionary(head: &[u8]) -> Option<u64> {
    let block = head.get(12..)?;
    let size = (usize::from(*block.first()?) + 1) * 4;
    if block[0] == 0 || block.len() < size {
        return None;
    }
    let flags = block[1];
    let mut at = 2;
    let varint = |at: &mut usize| -> Option<u64> {
        let mut v = 0u64;
        for i in 0..9 {
            let b = *block.get(*at)?;
            *at += 1;
            v |= u64::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                return Some(v);
            }
        }
        None
    };
    if flags & 0x40 != 0 {
        varint(&mut at)?;
    }
    if flags & 0x80 != 0 {
        varint(&mut at)?;
    }
    for _ in 0..=(flags & 3) {
        let id = varint(&mut at)?;
        let props = varint(&mut at)? as usize;
        if id == 0x21 && props == 1 {
            let d = u32::from(*block.get(at)?);
            return Some(match d {
                0..=39 => u64::from(2 | (d & 1)) << (d / 2 + 11),
                _ => u64::from(u32::MAX),
            });
        }
        at = at.checked_add(props)?;
    }
    None
}

/// The window the first zstd frame declares (a single-segment frame: its content size).
fn zstd_window(head: &[u8]) -> Option<u64> {
    if head.get(..4)? != [0x28, 0xb5, 0x2f, 0xfd] {
        return None;
    }
    let fhd = *head.get(4)?;
    if fhd & 0x20 == 0 {
        let wd = *head.get(5)?;
        let base = 1u64 << (10 + u32::from(wd >> 3));
        return Some(base + (base / 8) * u64::from(wd & 7));
    }
    let did = [0, 1, 2, 4][usize::from(fhd & 3)];
    let fcs = [1, 2, 4, 8][usize::from(fhd >> 6)];
    let at = 5 + did;
    let bytes = head.get(at..at + fcs)?;
    let mut v = 0u64;
    for (i, b) in bytes.iter().enumerate() {
        v |= u64::from(*b) << (8 * i);
    }
    Some(if fcs == 2 { v + 256 } else { v })
}

/// A decoder for `compression` over `input` (None: `input` itself), bounded to `memory`;
/// a refusal at that bound is kept in the returned [`Refusal`].
pub fn decoder(
    compression: Compression,
    input: Stream,
    memory: DecoderMemory,
) -> io::Result<(Stream, Refusal)> {
    let refusal = Refusal::default();
    if compression == Compression::None {
        return Ok((input, refusal));
    }
    let buffered = || BufReader::with_capacity(crate::tuning::restore_chunk(), input);
    let allowed = memory.allowed(compression);
    let inner: Stream = match compression {
        Compression::None => unreachable!("handled above"),
        Compression::Gzip => Box::new(flate2::bufread::MultiGzDecoder::new(buffered())),
        Compression::Zstd => {
            let mut d = zstd::stream::read::Decoder::with_buffer(buffered())?;
            // The largest window a zstd decoder accepts is 2^31 (`--long=31`).
            let log = (63 - allowed.max(1 << 10).leading_zeros()).min(31);
            d.window_log_max(log)?;
            Box::new(d)
        }
        Compression::Bzip2 => Box::new(bzip2::bufread::MultiBzDecoder::new(buffered())),
        Compression::Xz => {
            // Besides the dictionary, the decoder needs a little of its own.
            let stream = liblzma::stream::Stream::new_auto_decoder(
                allowed.saturating_add(16 << 20),
                liblzma::stream::CONCATENATED,
            )
            .map_err(io::Error::from)?;
            Box::new(liblzma::bufread::XzDecoder::new_stream(buffered(), stream))
        }
    };
    let guarded = Guarded {
        inner,
        codec: compression,
        memory,
        refusal: refusal.clone(),
    };
    Ok((Box::new(guarded), refusal))
}

/// A decoder whose memory-limit errors are kept in a [`Refusal`] as they pass.
struct Guarded {
    inner: Stream,
    codec: Compression,
    memory: DecoderMemory,
    refusal: Refusal,
}

impl Read for Guarded {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.inner.read(buf).inspect_err(|e| {
            let xz_limit = e
                .get_ref()
                .and_then(|inner| inner.downcast_ref::<liblzma::stream::Error>())
                .is_some_and(|x| matches!(x, liblzma::stream::Error::MemLimit));
            // zstd reports ZSTD_error_frameParameter_windowTooLarge only as text.
            let zstd_limit = e.to_string().contains("requires too much memory");
            if xz_limit || zstd_limit {
                self.refusal.set(self.memory.refused(self.codec));
            }
        })
    }
}

/// Read `inner` on another thread, `tuning::restore_chunk()` bytes at a time, at most `AHEAD` chunks ahead.
pub fn read_ahead(inner: Stream) -> Stream {
    let (tx, rx) = sync_channel::<io::Result<Vec<u8>>>(AHEAD);
    let (recycle_tx, recycle_rx) = sync_channel::<Vec<u8>>(AHEAD + 2);
    let handle = std::thread::Builder::new()
        .name("restore-decode".into())
        .spawn(move || produce(inner, tx, recycle_rx))
        .ok();
    Box::new(ReadAhead {
        rx: Some(rx),
        recycle: recycle_tx,
        current: Vec::new(),
        pos: 0,
        done: handle.is_none(),
        handle,
    })
}

fn produce(mut inner: Stream, tx: SyncSender<io::Result<Vec<u8>>>, recycle: Receiver<Vec<u8>>) {
    loop {
        let mut buf = recycle.try_recv().unwrap_or_default();
        buf.resize(crate::tuning::restore_chunk(), 0);
        let mut filled = 0;
        // Fill the chunk (decoders often return little per call) or reach the end.
        let result = loop {
            match inner.read(&mut buf[filled..]) {
                Ok(0) => break Ok(()),
                Ok(n) => {
                    filled += n;
                    if filled == buf.len() {
                        break Ok(());
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => break Err(e),
            }
        };
        buf.truncate(filled);
        let end = filled == 0;
        if filled > 0 && tx.send(Ok(buf)).is_err() {
            return;
        }
        if let Err(e) = result {
            let _ = tx.send(Err(e));
            return;
        }
        if end {
            let _ = tx.send(Ok(Vec::new()));
            return;
        }
    }
}

pub struct ReadAhead {
    rx: Option<Receiver<io::Result<Vec<u8>>>>,
    recycle: SyncSender<Vec<u8>>,
    current: Vec<u8>,
    pos: usize,
    done: bool,
    handle: Option<JoinHandle<()>>,
}

impl Read for ReadAhead {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        while self.pos == self.current.len() {
            if self.done {
                return Ok(0);
            }
            let next = match self.rx.as_ref().map(Receiver::recv) {
                Some(Ok(next)) => next?,
                _ => {
                    return Err(io::Error::other("the decoding thread stopped unexpectedly"));
                }
            };
            if next.is_empty() {
                self.done = true;
                return Ok(0);
            }
            let used = std::mem::replace(&mut self.current, next);
            let _ = self.recycle.try_send(used);
            self.pos = 0;
        }
        let n = out.len().min(self.current.len() - self.pos);
        out[..n].copy_from_slice(&self.current[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

impl Drop for ReadAhead {
    fn drop(&mut self) {
        // Closing the channel makes the producer stop at its next chunk.
        self.rx.take();
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

/// The first `len` bytes of `stream` (fewer at its end), and a stream that still yields
/// everything from the start.
pub fn peek(mut stream: Stream, len: usize) -> io::Result<(Vec<u8>, Stream)> {
    let mut head = Vec::with_capacity(len);
    (&mut stream).take(len as u64).read_to_end(&mut head)?;
    let rest: Stream = Box::new(io::Cursor::new(head.clone()).chain(stream));
    Ok((head, rest))
}

/// A single compressed file (`x.log.gz`): decompress it completely into the sandbox; the
/// decoder checks the stream's own checksums (gzip CRC-32 and size, zstd/xz checks, bzip2
/// block CRCs) on the way.
pub fn single_file(
    sandbox: &Sandbox,
    mut stream: Stream,
    name: &str,
    compression: Compression,
) -> Result<Notes, RestoreError> {
    let entry = EntryPath::parse(name.as_bytes())?
        .ok_or_else(|| RestoreError::Corrupt("the backup has no file name".into()))?;
    let written = sandbox.write_file(&entry, &mut stream)?;
    sandbox.tally.note(&entry.rel(), written.new);
    let mut notes = Notes::default();
    let size = bytesize::ByteSize(written.bytes);
    notes.push(match compression {
        Compression::None => format!("restored as one file of {size}"),
        c => format!(
            "decompressed completely ({}), the decoder's checksums held: one file of {size}",
            c.suffix()
        ),
    });
    Ok(notes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn read_ahead_yields_everything_in_order() {
        let data: Vec<u8> = (0..(3 * crate::tuning::restore_chunk() + 123))
            .map(|i| (i % 251) as u8)
            .collect();
        let mut r = read_ahead(Box::new(io::Cursor::new(data.clone())));
        let mut out = Vec::new();
        r.read_to_end(&mut out).unwrap();
        assert_eq!(out, data);
    }

    #[test]
    fn read_ahead_passes_errors_after_the_data() {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&vec![7u8; 100_000]).unwrap();
        let mut bytes = gz.finish().unwrap();
        bytes.truncate(bytes.len() - 4);
        let (dec, _) = decoder(
            Compression::Gzip,
            Box::new(io::Cursor::new(bytes)),
            DecoderMemory::for_max_bytes(1 << 30),
        )
        .unwrap();
        let mut r = read_ahead(dec);
        let mut out = Vec::new();
        assert!(
            r.read_to_end(&mut out).is_err(),
            "a truncated gzip must not read as complete"
        );
    }

    #[test]
    fn declared_decoder_memory_is_read_from_the_headers() {
        let mut xz = liblzma::write::XzEncoder::new(Vec::new(), 6);
        xz.write_all(b"data").unwrap();
        let xz = xz.finish().unwrap();
        assert_eq!(
            declared_memory(Compression::Xz, &xz),
            Some(("its dictionary", 8 << 20))
        );
        let mut z = zstd::stream::write::Encoder::new(Vec::new(), 3).unwrap();
        z.window_log(30).unwrap();
        z.write_all(b"data").unwrap();
        let z = z.finish().unwrap();
        assert_eq!(
            declared_memory(Compression::Zstd, &z),
            Some(("its window", 1 << 30))
        );
        // Truncated or foreign headers declare nothing.
        assert_eq!(declared_memory(Compression::Xz, &xz[..14]), None);
        assert_eq!(declared_memory(Compression::Zstd, b"\x28\xb5"), None);
        assert_eq!(declared_memory(Compression::Gzip, &z), None);
        let limits = DecoderMemory {
            config: 2 << 30,
            max_bytes: 10 << 20,
        };
        assert!(matches!(
            limits.judge(Compression::Xz, "its dictionary", 3 << 30),
            Some(RestoreError::Skipped(_))
        ));
        assert!(matches!(
            limits.judge(Compression::Xz, "its dictionary", 1 << 30),
            Some(RestoreError::Exceeded(_))
        ));
        assert!(
            limits
                .judge(Compression::Xz, "its dictionary", 64 << 20)
                .is_none()
        );
        assert!(
            limits
                .judge(Compression::Zstd, "its window", 2 << 30)
                .is_none()
        );
    }

    #[test]
    fn peek_keeps_the_stream_whole() {
        let (head, mut rest) = peek(Box::new(&b"abcdef"[..]), 4).unwrap();
        assert_eq!(head, b"abcd");
        let mut all = String::new();
        rest.read_to_string(&mut all).unwrap();
        assert_eq!(all, "abcdef");
    }

    #[test]
    fn concatenated_gzip_members_are_all_read() {
        let member = |t: &[u8]| {
            let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            gz.write_all(t).unwrap();
            gz.finish().unwrap()
        };
        let mut bytes = member(b"one ");
        bytes.extend(member(b"two"));
        let (mut dec, _) = decoder(
            Compression::Gzip,
            Box::new(io::Cursor::new(bytes)),
            DecoderMemory::for_max_bytes(1 << 30),
        )
        .unwrap();
        let mut s = String::new();
        dec.read_to_string(&mut s).unwrap();
        assert_eq!(s, "one two");
    }
}
