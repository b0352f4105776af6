//! Compressed streams: gzip (all members), zstd (all frames), bzip2 (all streams) and xz,
//! decoded in a thread of their own so decompression overlaps with parsing and writing,
//! plus the restore of a single compressed file. Memory stays constant: a few 1 MiB
//! chunks are in flight, whatever the stream's size.

use super::detect::Compression;
use super::sandbox::{EntryPath, Sandbox};
use super::{Notes, RestoreError};
use std::io::{self, BufReader, Read};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::thread::JoinHandle;

const CHUNK: usize = 1 << 20;
/// Chunks decoded ahead of the consumer.
const AHEAD: usize = 4;

pub type Stream = Box<dyn Read + Send>;

/// A decoder for `compression` over `input` (None: `input` itself).
pub fn decoder(compression: Compression, input: Stream) -> io::Result<Stream> {
    if compression == Compression::None {
        return Ok(input);
    }
    let buffered = || BufReader::with_capacity(CHUNK, input);
    Ok(match compression {
        Compression::None => unreachable!("handled above"),
        Compression::Gzip => Box::new(flate2::bufread::MultiGzDecoder::new(buffered())),
        Compression::Zstd => Box::new(zstd::stream::read::Decoder::with_buffer(buffered())?),
        Compression::Bzip2 => Box::new(bzip2::bufread::MultiBzDecoder::new(buffered())),
        Compression::Xz => Box::new(liblzma::bufread::XzDecoder::new_multi_decoder(buffered())),
    })
}

/// Read `inner` on another thread, `CHUNK` bytes at a time, at most `AHEAD` chunks ahead.
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
        buf.resize(CHUNK, 0);
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
) -> Result<Notes, RestoreError> {
    let entry = EntryPath::parse(name.as_bytes())?
        .ok_or_else(|| RestoreError::Corrupt("the backup has no file name".into()))?;
    let written = sandbox.write_file(&entry, &mut stream)?;
    sandbox.tally.note(&entry.rel(), written.new);
    Ok(Notes::default())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn read_ahead_yields_everything_in_order() {
        let data: Vec<u8> = (0..(3 * CHUNK + 123)).map(|i| (i % 251) as u8).collect();
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
        let dec = decoder(Compression::Gzip, Box::new(io::Cursor::new(bytes))).unwrap();
        let mut r = read_ahead(dec);
        let mut out = Vec::new();
        assert!(
            r.read_to_end(&mut out).is_err(),
            "a truncated gzip must not read as complete"
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
        let mut dec = decoder(Compression::Gzip, Box::new(io::Cursor::new(bytes))).unwrap();
        let mut s = String::new();
        dec.read_to_string(&mut s).unwrap();
        assert_eq!(s, "one two");
    }
}
