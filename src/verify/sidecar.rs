//! Sidecar checksum files: `<file>.sha256`, `<file>.md5`, `<file>.b3` beside a
//! backup, and `SHA256SUMS`, `MD5SUMS`, `B3SUMS` in its directory. Lines follow coreutils:
//! `<hex>  <name>` (text), `<hex> *<name>` (binary), a leading `\` when the name is escaped,
//! and the BSD `--tag` form `SHA256 (<name>) = <hex>`. A per-file sidecar may also hold
//! just the digest. Not for: hashing or judging; this only says what digests are expected.

use crate::config::ChecksumAlgo;
use crate::source::Source;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

/// Sidecar files bigger than this are not read (a SUMS file of a million backups is ~100 MB).
const MAX_SIDECAR_BYTES: u64 = 256 << 20;

/// A digest a sidecar says a backup must have.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expected {
    pub algo: ChecksumAlgo,
    /// Lower-case hex.
    pub digest: String,
    /// The sidecar's path relative to the location, and the 1-based line.
    pub file: String,
    pub line: usize,
}

/// A sidecar file with lines that do not parse (they are ignored; the rest is used).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid {
    /// Relative to the location.
    pub file: String,
    /// The first bad line (1-based) and why it is bad.
    pub line: usize,
    pub reason: String,
    pub bad_lines: usize,
}

impl Invalid {
    pub fn message(&self) -> String {
        let more = match self.bad_lines {
            0 | 1 => String::new(),
            n => format!(" ({} more malformed lines)", n - 1),
        };
        // Line 0: the file as a whole (it could not be read), not one of its lines.
        if self.line == 0 {
            return format!(
                "sidecar {}: {}; it proves nothing until it can be read",
                self.file, self.reason
            );
        }
        format!(
            "sidecar {}:{}: {}{more}; such lines are ignored, so they prove nothing",
            self.file, self.line, self.reason
        )
    }
}

/// One parsed checksum line.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Entry {
    /// From a BSD tag; otherwise the sidecar's own algorithm applies.
    algo: Option<ChecksumAlgo>,
    digest: String,
    /// None for a line holding only a digest.
    name: Option<String>,
    line: usize,
}

/// What algorithm a SUMS file or per-file sidecar extension stands for.
fn sums_algo(base_name: &str) -> Option<ChecksumAlgo> {
    match base_name {
        "SHA256SUMS" => Some(ChecksumAlgo::Sha256),
        "MD5SUMS" => Some(ChecksumAlgo::Md5),
        "B3SUMS" => Some(ChecksumAlgo::Blake3),
        _ => None,
    }
}

const PER_FILE: [(&str, ChecksumAlgo); 3] = [
    ("sha256", ChecksumAlgo::Sha256),
    ("md5", ChecksumAlgo::Md5),
    ("b3", ChecksumAlgo::Blake3),
];

fn digest_len(algo: ChecksumAlgo) -> usize {
    match algo {
        ChecksumAlgo::Md5 => 32,
        ChecksumAlgo::Sha256 | ChecksumAlgo::Blake3 => 64,
    }
}

/// Parse one line; `Ok(None)` for blank lines and `#` comments.
fn parse_line(raw: &str, line: usize) -> Result<Option<Entry>, String> {
    let text = raw.strip_suffix('\r').unwrap_or(raw);
    if text.trim().is_empty() || text.starts_with('#') {
        return Ok(None);
    }
    let (escaped, text) = match text.strip_prefix('\\') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (algo, digest, name) = match parse_tag(text)? {
        Some((algo, name, digest)) => (Some(algo), digest, Some(name)),
        None => {
            let (digest, name) = split_gnu(text)?;
            (None, digest, name)
        }
    };
    if digest.is_empty() || !digest.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(format!(
            "`{}` is not a hexadecimal digest",
            shorten(digest, 80)
        ));
    }
    let name = match name {
        Some(n) if escaped => Some(unescape(n)?),
        Some(n) => Some(n.to_string()),
        None => None,
    };
    Ok(Some(Entry {
        algo,
        digest: digest.to_ascii_lowercase(),
        name,
        line,
    }))
}

/// The BSD form `ALGO (name) = hex`; `Ok(None)` when the line is not in that form.
fn parse_tag(text: &str) -> Result<Option<(ChecksumAlgo, &str, &str)>, String> {
    let Some((tag, rest)) = text.split_once(" (") else {
        return Ok(None);
    };
    let Some((name, digest)) = rest.rsplit_once(") = ") else {
        return Ok(None);
    };
    if tag.is_empty() || !tag.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
        return Ok(None);
    }
    let algo = match tag {
        "SHA256" => ChecksumAlgo::Sha256,
        "MD5" => ChecksumAlgo::Md5,
        "BLAKE3" => ChecksumAlgo::Blake3,
        other => return Err(format!("unsupported algorithm `{other}`")),
    };
    Ok(Some((algo, name, digest)))
}

/// The coreutils form `hex<space><space|*>name`, or a bare digest.
fn split_gnu(text: &str) -> Result<(&str, Option<&str>), String> {
    let Some((digest, rest)) = text.split_once(' ') else {
        return Ok((text.trim_end(), None));
    };
    let name = rest
        .strip_prefix(' ')
        .or_else(|| rest.strip_prefix('*'))
        .unwrap_or(rest);
    if name.is_empty() {
        return Err("a digest followed by no file name".into());
    }
    Ok((digest, Some(name)))
}

/// Undo coreutils' escaping of `\`, newline and carriage return in names.
fn unescape(name: &str) -> Result<String, String> {
    let mut out = String::with_capacity(name.len());
    let mut chars = name.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('\\') => out.push('\\'),
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some(other) => return Err(format!("unknown escape `\\{other}` in the file name")),
            None => return Err("the file name ends in a lone `\\`".into()),
        }
    }
    Ok(out)
}

fn shorten(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}

/// Every entry of a sidecar's text, and its malformed lines.
fn parse(text: &str, algo: ChecksumAlgo) -> (Vec<Entry>, Vec<(usize, String)>) {
    let mut entries = Vec::new();
    let mut bad = Vec::new();
    for (i, raw) in text.split('\n').enumerate() {
        let line = i + 1;
        match parse_line(raw, line) {
            Ok(Some(e)) => {
                let want = digest_len(e.algo.unwrap_or(algo));
                if e.digest.len() == want {
                    entries.push(e);
                } else {
                    let algo = e.algo.unwrap_or(algo).as_str();
                    bad.push((
                        line,
                        format!(
                            "a {algo} digest has {want} hex digits, this one has {}",
                            e.digest.len()
                        ),
                    ));
                }
            }
            Ok(None) => {}
            Err(reason) => bad.push((line, reason)),
        }
    }
    (entries, bad)
}

/// SUMS entries of one directory, by the names they list.
#[derive(Debug, Default)]
struct DirSums {
    /// Name as listed (without a leading `./`) → expectations.
    exact: HashMap<String, Vec<Expected>>,
    /// Last path component → expectations, for lists written with other path prefixes.
    by_base: HashMap<String, Vec<Expected>>,
    /// Per-file sidecar names present in the directory.
    per_file: HashSet<String>,
}

/// The sidecar evidence under one location, read lazily per directory and cached.
pub struct Sidecars {
    source: Arc<dyn Source>,
    dirs: HashMap<String, DirSums>,
    /// Malformed sidecars met so far.
    pub invalid: Vec<Invalid>,
    /// Every sidecar file read this run (relative paths).
    pub read: HashSet<String>,
}

impl Sidecars {
    /// The sidecars of a directory location.
    #[cfg(test)]
    pub fn new(root: &std::path::Path) -> Sidecars {
        Sidecars::of(Arc::new(crate::source::dir::DirSource::new(
            root.to_path_buf(),
        )))
    }

    /// The sidecars beside the backups of `source`.
    pub fn of(source: Arc<dyn Source>) -> Sidecars {
        Sidecars {
            source,
            dirs: HashMap::new(),
            invalid: Vec::new(),
            read: HashSet::new(),
        }
    }

    /// What the sidecars say about the backup at `rel` (relative, `/`-separated).
    pub fn expected_for(&mut self, rel: &str) -> Vec<Expected> {
        let (dir, base) = match rel.rsplit_once('/') {
            Some((d, b)) => (d.to_string(), b),
            None => (String::new(), rel),
        };
        if !self.dirs.contains_key(&dir) {
            let loaded = self.load_dir(&dir);
            self.dirs.insert(dir.clone(), loaded);
        }
        let mut out = Vec::new();
        let has_per_file = self.dirs.get(&dir).is_some_and(|d| !d.per_file.is_empty());
        for (ext, algo) in PER_FILE.iter().filter(|_| has_per_file) {
            let name = format!("{base}.{ext}");
            if self
                .dirs
                .get(&dir)
                .is_some_and(|d| d.per_file.contains(&name))
            {
                out.extend(self.read_per_file(&join(&dir, &name), base, *algo));
            }
        }
        if let Some(d) = self.dirs.get(&dir) {
            match d.exact.get(base) {
                Some(found) => out.extend(found.iter().cloned()),
                None => out.extend(d.by_base.get(base).into_iter().flatten().cloned()),
            }
        }
        out
    }

    /// List a directory's sidecars and parse its SUMS files.
    fn load_dir(&mut self, dir: &str) -> DirSums {
        let mut sums = DirSums::default();
        let Some(listing) = self.source.sidecar_names(dir) else {
            return sums;
        };
        for name in listing {
            if let Some(algo) = sums_algo(&name) {
                self.read_sums(&join(dir, &name), algo, &mut sums);
            } else if name
                .rsplit_once('.')
                .is_some_and(|(_, ext)| PER_FILE.iter().any(|(e, _)| *e == ext))
            {
                sums.per_file.insert(name);
            }
        }
        sums
    }

    fn read_sums(&mut self, rel: &str, algo: ChecksumAlgo, sums: &mut DirSums) {
        let Some(entries) = self.read_sidecar(rel, algo) else {
            return;
        };
        for e in entries {
            let Some(name) = e.name.clone() else {
                self.note_invalid(
                    rel,
                    e.line,
                    "a digest with no file name in a SUMS file".into(),
                );
                continue;
            };
            let expected = Expected {
                algo: e.algo.unwrap_or(algo),
                digest: e.digest,
                file: rel.to_string(),
                line: e.line,
            };
            let name = name.strip_prefix("./").unwrap_or(&name).to_string();
            let base = name.rsplit('/').next().unwrap_or(&name).to_string();
            sums.by_base.entry(base).or_default().push(expected.clone());
            sums.exact.entry(name).or_default().push(expected);
        }
    }

    /// `<backup>.<ext>`: one digest, or entries of which the one naming the backup counts.
    fn read_per_file(&mut self, rel: &str, base: &str, algo: ChecksumAlgo) -> Vec<Expected> {
        let Some(entries) = self.read_sidecar(rel, algo) else {
            return Vec::new();
        };
        let chosen: Vec<&Entry> = if entries.len() == 1 {
            entries.iter().collect()
        } else {
            entries
                .iter()
                .filter(|e| {
                    e.name
                        .as_deref()
                        .is_some_and(|n| n.rsplit('/').next() == Some(base))
                })
                .collect()
        };
        if chosen.is_empty() && !self.invalid.iter().any(|i| i.file == rel) {
            let reason = if entries.is_empty() {
                "holds no checksum".to_string()
            } else {
                format!("lists {} files but not {base}", entries.len())
            };
            self.note_invalid(rel, 1, reason);
        }
        chosen
            .into_iter()
            .map(|e| Expected {
                algo: e.algo.unwrap_or(algo),
                digest: e.digest.clone(),
                file: rel.to_string(),
                line: e.line,
            })
            .collect()
    }

    /// Read and parse one sidecar, noting malformed lines; None if it cannot be read.
    fn read_sidecar(&mut self, rel: &str, algo: ChecksumAlgo) -> Option<Vec<Entry>> {
        self.read.insert(rel.to_string());
        let text = match self.source.read_sidecar(rel, MAX_SIDECAR_BYTES) {
            Ok(Some(bytes)) => String::from_utf8_lossy(&bytes).into_owned(),
            Ok(None) => return None,
            Err(reason) => {
                self.note_invalid(rel, 0, reason);
                return None;
            }
        };
        let (entries, bad) = parse(&text, algo);
        if let Some((line, reason)) = bad.first() {
            self.invalid.push(Invalid {
                file: rel.to_string(),
                line: *line,
                reason: reason.clone(),
                bad_lines: bad.len(),
            });
        }
        Some(entries)
    }

    fn note_invalid(&mut self, rel: &str, line: usize, reason: String) {
        match self.invalid.iter_mut().find(|i| i.file == rel) {
            Some(known) => known.bad_lines += 1,
            None => self.invalid.push(Invalid {
                file: rel.to_string(),
                line,
                reason,
                bad_lines: 1,
            }),
        }
    }
}

fn join(dir: &str, name: &str) -> String {
    if dir.is_empty() {
        name.to_string()
    } else {
        format!("{dir}/{name}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHA: &str = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
    const MD5: &str = "900150983cd24fb0d6963f7d28e17f72";

    fn entry(raw: &str) -> Entry {
        parse_line(raw, 1).unwrap().unwrap()
    }

    #[test]
    fn text_and_binary_markers() {
        let text = entry(&format!("{SHA}  db.sql.gz"));
        assert_eq!(text.name.as_deref(), Some("db.sql.gz"));
        assert_eq!(text.digest, SHA);
        let binary = entry(&format!("{SHA} *db.sql.gz"));
        assert_eq!(binary.name.as_deref(), Some("db.sql.gz"));
        let single_space = entry(&format!("{SHA} db.sql.gz"));
        assert_eq!(single_space.name.as_deref(), Some("db.sql.gz"));
    }

    #[test]
    fn names_with_spaces_and_leading_star_survive() {
        let e = entry(&format!("{SHA}  my backup  .tar"));
        assert_eq!(e.name.as_deref(), Some("my backup  .tar"));
        let e = entry(&format!("{SHA} **star.tar"));
        assert_eq!(
            e.name.as_deref(),
            Some("*star.tar"),
            "binary marker then `*`"
        );
    }

    #[test]
    fn escaped_names_are_unescaped() {
        let e = entry(&format!("\\{SHA}  a\\\\b\\nc.tar"));
        assert_eq!(e.name.as_deref(), Some("a\\b\nc.tar"));
        assert!(parse_line(&format!("\\{SHA}  bad\\x"), 1).is_err());
    }

    #[test]
    fn bsd_tag_form_carries_its_algorithm() {
        let e = entry(&format!("MD5 (db (1).sql) = {MD5}"));
        assert_eq!(e.algo, Some(ChecksumAlgo::Md5));
        assert_eq!(e.name.as_deref(), Some("db (1).sql"));
        let err = parse_line(&format!("SHA1 (x) = {MD5}"), 1).unwrap_err();
        assert!(err.contains("SHA1"), "{err}");
    }

    #[test]
    fn bare_digest_upper_case_and_crlf() {
        let e = entry(&format!("{}\r", SHA.to_uppercase()));
        assert_eq!(e.digest, SHA);
        assert_eq!(e.name, None);
    }

    #[test]
    fn blanks_and_comments_are_skipped_garbage_is_not() {
        assert_eq!(parse_line("", 1).unwrap(), None);
        assert_eq!(parse_line("# written by cron", 1).unwrap(), None);
        assert!(parse_line("not a checksum line", 1).is_err());
        assert!(parse_line(&format!("{SHA} "), 1).is_err(), "no name");
    }

    #[test]
    fn parse_checks_digest_length_and_numbers_lines() {
        let text = format!("{SHA}  a\n\n{MD5}  b\nzz  c\n");
        let (entries, bad) = parse(&text, ChecksumAlgo::Sha256);
        assert_eq!(entries.len(), 1);
        assert_eq!(entries[0].line, 1);
        assert_eq!(bad.len(), 2);
        assert_eq!(bad[0].0, 3);
        assert!(bad[0].1.contains("64 hex digits"), "{}", bad[0].1);
        assert_eq!(bad[1].0, 4);
    }

    #[test]
    fn directory_lookup_uses_per_file_and_sums() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir(root.join("sub")).unwrap();
        std::fs::write(root.join("sub/a.tar.md5"), format!("{MD5}\n")).unwrap();
        std::fs::write(
            root.join("sub/SHA256SUMS"),
            format!("{SHA}  ./a.tar\n{SHA} */elsewhere/b.tar\nbroken\n"),
        )
        .unwrap();
        let mut s = Sidecars::new(root);
        let a = s.expected_for("sub/a.tar");
        assert_eq!(a.len(), 2, "{a:?}");
        assert!(
            a.iter()
                .any(|e| e.algo == ChecksumAlgo::Md5 && e.file == "sub/a.tar.md5")
        );
        assert!(
            a.iter()
                .any(|e| e.algo == ChecksumAlgo::Sha256 && e.line == 1)
        );
        let b = s.expected_for("sub/b.tar");
        assert_eq!(b.len(), 1, "matched by last path component");
        assert!(s.expected_for("sub/c.tar").is_empty());
        assert_eq!(s.invalid.len(), 1);
        assert_eq!(s.invalid[0].file, "sub/SHA256SUMS");
        assert_eq!(s.invalid[0].line, 3);
        assert!(s.invalid[0].message().contains("sub/SHA256SUMS:3"));
        assert!(s.read.contains("sub/a.tar.md5") && s.read.contains("sub/SHA256SUMS"));
    }

    #[test]
    fn per_file_sidecar_listing_other_files_is_invalid() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("a.tar.sha256"),
            format!("{SHA}  x.tar\n{SHA}  y.tar\n"),
        )
        .unwrap();
        std::fs::write(dir.path().join("e.tar.sha256"), "\n").unwrap();
        let mut s = Sidecars::new(dir.path());
        assert!(s.expected_for("a.tar").is_empty());
        assert!(s.expected_for("e.tar").is_empty());
        let reasons: Vec<&str> = s.invalid.iter().map(|i| i.reason.as_str()).collect();
        assert!(
            reasons.iter().any(|r| r.contains("not a.tar")),
            "{reasons:?}"
        );
        assert!(
            reasons.iter().any(|r| r.contains("no checksum")),
            "{reasons:?}"
        );
    }
}
