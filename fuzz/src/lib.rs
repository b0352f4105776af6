//! Shared pieces of the fuzz targets: a private work directory per fuzzing process, and
//! the restore harness that writes one input as a backup file, restore-tests it with a
//! small `max_bytes`, and checks that nothing was left or written outside the sandbox.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// Extraction limit of every restore iteration: a bomb stops here, memory and disk stay small.
pub const MAX_BYTES: u64 = 1 << 20;

/// Backup file names: the name is a hint for detection (`.tar`, `.sql`) and picks the
/// compression suffix stripping, so every family is reachable from raw bytes.
pub const NAMES: &[&str] = &[
    "backup.tar",
    "backup.tar.gz",
    "backup.tgz",
    "backup.tar.zst",
    "backup.tar.bz2",
    "backup.tar.xz",
    "backup.zip",
    "notes.txt.gz",
    "notes.txt.zst",
    "notes.txt.bz2",
    "notes.txt.xz",
    "db.sqlite",
    "db.sql",
    "db.sql.gz",
    "db.dump",
    "backup.bin",
];

/// The process's work directory: `input/` holds the backup under test, `scratch/` is the
/// sandbox parent, `cwd/` is the current directory (SQL replayed from a dump must not
/// write there either). Removed when the process exits normally.
pub struct Work {
    _dir: tempfile::TempDir,
    pub input: PathBuf,
    pub scratch: PathBuf,
    pub cwd: PathBuf,
}

pub fn work() -> &'static Work {
    static WORK: OnceLock<Work> = OnceLock::new();
    WORK.get_or_init(|| {
        let dir = tempfile::Builder::new()
            .prefix("backup-monitor-fuzz-")
            .tempdir()
            .expect("a temp dir for fuzzing");
        let make = |name: &str| {
            let p = dir.path().join(name);
            fs::create_dir(&p).expect("work subdirectory");
            p
        };
        let (input, scratch, cwd) = (make("input"), make("scratch"), make("cwd"));
        std::env::set_current_dir(&cwd).expect("enter the work dir");
        Work {
            _dir: dir,
            input,
            scratch,
            cwd,
        }
    })
}

fn listing(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// Write `bytes` as the backup `name` and restore-test it; panics (a finding) when the
/// sandbox is left behind or anything appeared outside it. Returns whether it passed.
pub fn restore_bytes(name: &str, bytes: &[u8]) -> bool {
    let w = work();
    for old in listing(&w.input) {
        let _ = fs::remove_file(w.input.join(old));
    }
    let path = w.input.join(name);
    let mut f = fs::File::create(&path).expect("write the input");
    f.write_all(bytes).expect("write the input");
    drop(f);
    let (format, verdict) = backup_monitor::restore::test_file(&w.scratch, &path, MAX_BYTES)
        .expect("a sandbox can be made");
    assert!(!format.is_empty());
    if let Err(e) = &verdict {
        // Every verdict renders to a message (the detail shown to users).
        assert!(!e.to_string().is_empty(), "empty detail for {e:?}");
    }
    let left = listing(&w.scratch);
    assert!(left.is_empty(), "sandbox left behind: {left:?}");
    let cwd = listing(&w.cwd);
    assert!(
        cwd.is_empty(),
        "restore wrote into the working directory: {cwd:?}"
    );
    let input = listing(&w.input);
    assert_eq!(
        input,
        vec![name.to_string()],
        "restore wrote beside the backup"
    );
    verdict.is_ok()
}

/// A path of up to four components from a small alphabet (links, `..`, `.`, empty), so
/// the fuzzer meets the same names again and chains them: `bits` picks them, three bits
/// each, its top two bits the count.
pub fn token_path(bits: u16) -> String {
    const TOKENS: [&str; 8] = ["a", "b", "d", "s", "t", "..", ".", "x"];
    let count = 1 + usize::from(bits >> 14);
    (0..count)
        .map(|i| TOKENS[usize::from((bits >> (3 * i)) & 7)])
        .collect::<Vec<_>>()
        .join("/")
}

/// Compress `payload` with the codec `which` (0 none, 1 gzip, 2 zstd, 3 bzip2, 4 xz);
/// returns the bytes and the file-name suffix.
pub fn compress(which: u8, payload: &[u8]) -> (Vec<u8>, &'static str) {
    match which % 5 {
        0 => (payload.to_vec(), ""),
        1 => {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            e.write_all(payload).unwrap();
            (e.finish().unwrap(), ".gz")
        }
        2 => (zstd::encode_all(payload, 1).unwrap(), ".zst"),
        3 => {
            let mut e = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::fast());
            e.write_all(payload).unwrap();
            (e.finish().unwrap(), ".bz2")
        }
        _ => {
            let mut e = liblzma::write::XzEncoder::new(Vec::new(), 0);
            e.write_all(payload).unwrap();
            (e.finish().unwrap(), ".xz")
        }
    }
}

/// Split `data` at the first `sep` byte: (before, after). No separator: (all, empty).
pub fn split(data: &[u8], sep: u8) -> (&[u8], &[u8]) {
    match data.iter().position(|&b| b == sep) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[]),
    }
}
