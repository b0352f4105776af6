//! What a backup is, decided by its first bytes (magic numbers) with the file name as a
//! hint only where content cannot decide (old tar without magic, SQL of an unknown tool).
//! Pure: no I/O beyond the bytes handed in.

/// The outer compression of a stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Zstd,
    Bzip2,
    Xz,
}

impl Compression {
    /// The usual file-name suffix, as used in format names (`tar.gz`, `sql.zst`).
    pub fn suffix(self) -> &'static str {
        match self {
            Compression::None => "",
            Compression::Gzip => "gz",
            Compression::Zstd => "zst",
            Compression::Bzip2 => "bz2",
            Compression::Xz => "xz",
        }
    }

    /// What a stream of this compression is, for details: "a gzip stream".
    pub fn describe(self) -> &'static str {
        match self {
            Compression::None => "an uncompressed file",
            Compression::Gzip => "a gzip stream",
            Compression::Zstd => "a zstd stream",
            Compression::Bzip2 => "a bzip2 stream",
            Compression::Xz => "an xz stream",
        }
    }
}

/// The SQL dump tool a script came from; decides which completion footer it must end with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// Plain `pg_dump`: ends with `-- PostgreSQL database dump complete`.
    Postgres,
    /// `mysqldump` / `mariadb-dump`: ends with `-- Dump completed`.
    Mysql,
    /// `sqlite3 .dump`: replayed into a scratch SQLite database.
    Sqlite,
    /// Named `.sql` but from no tool we know: nothing to check it against.
    Unknown,
}

/// What the (decompressed) content is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Content {
    Tar,
    Zip,
    Sqlite,
    /// PostgreSQL custom-format dump (`pg_dump -Fc`).
    PgCustom,
    Sql(Dialect),
    /// Anything else: a single compressed file is still tested by decompressing it.
    Other,
}

impl Content {
    fn name(self) -> &'static str {
        match self {
            Content::Tar => "tar",
            Content::Zip => "zip",
            Content::Sqlite => "sqlite",
            Content::PgCustom => "pg_dump",
            Content::Sql(_) => "sql",
            Content::Other => "",
        }
    }

    /// What the content is, for details: "a tar archive".
    pub fn describe(self) -> &'static str {
        match self {
            Content::Tar => "a tar archive",
            Content::Zip => "a zip archive",
            Content::Sqlite => "a SQLite database",
            Content::PgCustom => "a PostgreSQL custom-format dump",
            Content::Sql(_) => "an SQL script",
            Content::Other => "a file restore tests know",
        }
    }
}

/// The format name shown in results: `tar.gz`, `zip`, `sql.zst`, `gz` (a single
/// compressed file), `sqlite`, `pg_dump`, or `unknown`.
pub fn format_name(compression: Compression, content: Content) -> String {
    match (content.name(), compression.suffix()) {
        ("", "") => "unknown".into(),
        (c, "") => c.into(),
        ("", s) => s.into(),
        (c, s) => format!("{c}.{s}"),
    }
}

/// How many leading bytes detection wants (a tar header is 512 bytes; SQL markers may sit
/// a little further in).
pub const HEAD_LEN: usize = 4096;

/// The compression of a stream starting with `head`.
pub fn compression(head: &[u8]) -> Compression {
    if head.starts_with(&[0x1f, 0x8b]) {
        Compression::Gzip
    } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Compression::Zstd
    } else if head.starts_with(b"BZh") && head.get(3).is_some_and(|b| (b'1'..=b'9').contains(b)) {
        Compression::Bzip2
    } else if head.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0x00]) {
        Compression::Xz
    } else {
        Compression::None
    }
}

/// What an uncompressed stream starting with `head` is. `name` is the backup's base name
/// with any compression suffix removed (a hint for `.tar` — an empty one is all zero
/// blocks — and `.sql`).
pub fn content(head: &[u8], name: &str) -> Content {
    let lower = name.to_ascii_lowercase();
    if head.starts_with(b"SQLite format 3\0") {
        Content::Sqlite
    } else if head.starts_with(b"PGDMP") {
        Content::PgCustom
    } else if head.starts_with(b"PK\x03\x04") || head.starts_with(b"PK\x05\x06") {
        Content::Zip
    } else if is_tar_header(head) || is_empty_tar(head, &lower) {
        Content::Tar
    } else if let Some(dialect) = sql_dialect(head, lower.ends_with(".sql")) {
        Content::Sql(dialect)
    } else {
        Content::Other
    }
}

/// The name says this is a tar (`x.tar`, `x.tar.gz`, `x.tgz`, …): used to call a stream
/// that decompresses to something else corrupt rather than "a single compressed file".
pub fn named_tar(name: &str) -> bool {
    promise(name).is_some_and(|p| p.content == Some(Content::Tar))
}

/// Compression suffixes of file names: the compression each names and what replaces it
/// (`x.tgz` is `x.tar` compressed). Longer suffixes first.
const COMPRESSION_SUFFIXES: [(&str, Compression, &str); 10] = [
    (".tgz", Compression::Gzip, ".tar"),
    (".tbz2", Compression::Bzip2, ".tar"),
    (".tbz", Compression::Bzip2, ".tar"),
    (".txz", Compression::Xz, ".tar"),
    (".tzst", Compression::Zstd, ".tar"),
    (".gz", Compression::Gzip, ""),
    (".zst", Compression::Zstd, ""),
    (".zstd", Compression::Zstd, ""),
    (".bz2", Compression::Bzip2, ""),
    (".xz", Compression::Xz, ""),
];

/// Suffixes that name one content format restore tests know, unambiguously. `.db` and
/// `.dump` are left out on purpose: other tools use them for their own formats (etcd and
/// bbolt snapshots, `Thumbs.db`, Berkeley DB; `dump(8)`, `mongodump --archive`,
/// `svnadmin dump`), and a name that may mean another format promises nothing.
const CONTENT_SUFFIXES: [(&str, Content); 6] = [
    (".tar", Content::Tar),
    (".zip", Content::Zip),
    (".sqlite", Content::Sqlite),
    (".sqlite3", Content::Sqlite),
    (".pgdump", Content::PgCustom),
    (".sql", Content::Sql(Dialect::Unknown)),
];

/// `db.sql.gz` → `db.sql`; `x.tgz` → `x.tar`; names without a compression suffix unchanged.
pub fn strip_compression_suffix(name: &str) -> String {
    match compression_suffix(name) {
        Some((len, _, replacement)) => format!("{}{replacement}", &name[..name.len() - len]),
        None => name.to_string(),
    }
}

/// The compression suffix `name` ends with: its length, compression and replacement.
fn compression_suffix(name: &str) -> Option<(usize, Compression, &'static str)> {
    let lower = name.to_ascii_lowercase();
    COMPRESSION_SUFFIXES
        .iter()
        .find(|(suffix, _, _)| lower.ends_with(suffix))
        .map(|&(suffix, c, replacement)| (suffix.len(), c, replacement))
}

/// What a backup's file name promises it holds, in the formats restore tests know.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Promise {
    /// The compression its last suffix names (`None`: no compression suffix).
    pub compression: Compression,
    /// What the (decompressed) content must be, when the name says.
    pub content: Option<Content>,
    /// The promising suffix as the name writes it: `.tar.gz`, `.tgz`, `.sql.zst`, `.zip`.
    pub suffix: String,
}

impl Promise {
    /// The format a test of this file reports while its bytes cannot say more.
    pub fn format_name(&self) -> String {
        format_name(self.compression, self.content.unwrap_or(Content::Other))
    }
}

/// The promise of `name`, or None when its suffixes name nothing restore tests know (such
/// a file whose bytes are not recognised is skipped, not failed).
pub fn promise(name: &str) -> Option<Promise> {
    let (outer_len, compression, replacement) =
        compression_suffix(name).unwrap_or((0, Compression::None, ""));
    let stem = format!("{}{replacement}", &name[..name.len() - outer_len]).to_ascii_lowercase();
    let content = CONTENT_SUFFIXES
        .iter()
        .find(|(suffix, _)| stem.ends_with(suffix))
        .map(|&(suffix, content)| (suffix.len(), content));
    if compression == Compression::None && content.is_none() {
        return None;
    }
    // `x.tgz` promises a tar through its compression suffix alone.
    let inner_len = match content {
        Some((len, _)) if replacement.is_empty() => len,
        _ => 0,
    };
    Some(Promise {
        compression,
        content: content.map(|(_, c)| c),
        suffix: name[name.len() - outer_len - inner_len..].to_string(),
    })
}

/// Describe the first bytes of a stream for a detail: empty, zeroed, or the kind of file
/// it looks like when its start says (encrypted, a web page). Never the bytes themselves:
/// whatever took the backup's place may be a secret, and details reach logs, reports and
/// alerts.
pub fn describe_start(head: &[u8]) -> String {
    let zeros = head.iter().take_while(|&&b| b == 0).count();
    if head.is_empty() {
        return "it is empty".into();
    }
    if zeros == head.len() {
        return format!("its first {zeros} bytes are all zero");
    }
    if zeros > 0 {
        return format!("its first {zeros} bytes are zero");
    }
    const LOOKS_LIKE: &[(&[u8], &str)] = &[
        (b"Salted__", "it looks encrypted (openssl enc)"),
        (b"age-encryption.org/", "it looks encrypted (age)"),
        (
            b"-----BEGIN PGP",
            "it looks encrypted (OpenPGP, ASCII-armored)",
        ),
        (b"<!DOCTYPE", "it looks like a web page (HTML)"),
        (b"<!doctype", "it looks like a web page (HTML)"),
        (b"<html", "it looks like a web page (HTML)"),
        (b"<HTML", "it looks like a web page (HTML)"),
        (b"<?xml", "it looks like an XML document"),
    ];
    if let Some((_, what)) = LOOKS_LIKE.iter().find(|(magic, _)| head.starts_with(magic)) {
        return (*what).into();
    }
    if head
        .iter()
        .take(64)
        .all(|b| b.is_ascii_graphic() || b.is_ascii_whitespace())
    {
        "it starts with text in no format restore tests know".into()
    } else {
        "its first bytes match no format restore tests know".into()
    }
}

/// A stream that starts with zero blocks: a tar archive with no entries, whose first
/// block is the end-of-archive marker (what `tar -cf x.tar -T /dev/null` writes). Only
/// believed for names that say tar; what follows the marker is checked by the tar reader.
fn is_empty_tar(head: &[u8], lower_name: &str) -> bool {
    lower_name.ends_with(".tar") && head.len() >= 512 && head[..512].iter().all(|&b| b == 0)
}

/// A ustar/GNU header, or an old v7 header whose checksum is right.
fn is_tar_header(head: &[u8]) -> bool {
    if head.len() < 512 {
        return false;
    }
    let header = &head[..512];
    if &header[257..262] == b"ustar" {
        return true;
    }
    if header.iter().all(|&b| b == 0) {
        return false;
    }
    let recorded = header[148..156]
        .iter()
        .filter(|b| b.is_ascii_digit())
        .try_fold(0u32, |acc, b| {
            acc.checked_mul(8)?.checked_add(u32::from(b - b'0'))
        });
    let actual: u32 = header
        .iter()
        .enumerate()
        .map(|(i, &b)| {
            if (148..156).contains(&i) {
                32
            } else {
                u32::from(b)
            }
        })
        .sum();
    recorded == Some(actual) && header[148..156].iter().any(u8::is_ascii_digit)
}

fn sql_dialect(head: &[u8], named_sql: bool) -> Option<Dialect> {
    let text = String::from_utf8_lossy(head);
    if text.contains("-- PostgreSQL database dump") {
        return Some(Dialect::Postgres);
    }
    if text.contains("-- MySQL dump") || text.contains("-- MariaDB dump") {
        return Some(Dialect::Mysql);
    }
    let first = text.lines().map(str::trim).find(|l| !l.is_empty());
    if matches!(
        first,
        Some("PRAGMA foreign_keys=OFF;" | "BEGIN TRANSACTION;")
    ) {
        return Some(Dialect::Sqlite);
    }
    named_sql.then_some(Dialect::Unknown)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tar_head(magic: bool) -> Vec<u8> {
        let mut h = tar::Header::new_old();
        h.set_path("a.txt").unwrap();
        h.set_size(3);
        h.set_cksum();
        let mut bytes = h.as_bytes().to_vec();
        if magic {
            let mut g = tar::Header::new_gnu();
            g.set_path("a.txt").unwrap();
            g.set_size(3);
            g.set_cksum();
            bytes = g.as_bytes().to_vec();
        }
        bytes
    }

    #[test]
    fn compression_by_magic() {
        assert_eq!(compression(&[0x1f, 0x8b, 8, 0]), Compression::Gzip);
        assert_eq!(compression(&[0x28, 0xb5, 0x2f, 0xfd, 0]), Compression::Zstd);
        assert_eq!(compression(b"BZh91AY&SY"), Compression::Bzip2);
        assert_eq!(compression(b"BZhx"), Compression::None);
        assert_eq!(compression(b"\xfd7zXZ\0\0"), Compression::Xz);
        assert_eq!(compression(b"PK\x03\x04"), Compression::None);
    }

    #[test]
    fn content_by_magic_not_name() {
        assert_eq!(content(b"SQLite format 3\0....", "x.tar"), Content::Sqlite);
        assert_eq!(content(b"PGDMP\x01\x0e", "x.sql"), Content::PgCustom);
        assert_eq!(content(b"PK\x03\x04rest", "x.tar"), Content::Zip);
        assert_eq!(content(&tar_head(true), "backup.zip"), Content::Tar);
        assert_eq!(
            content(&tar_head(false), "old"),
            Content::Tar,
            "v7 tar by checksum"
        );
        let mut broken = tar_head(false);
        broken[0] ^= 1;
        assert_eq!(content(&broken, "x.tar"), Content::Other);
        assert_eq!(content(&[0u8; 512], "x.bin"), Content::Other);
        // An empty tar is nothing but its end-of-archive blocks: believed for tar names.
        assert_eq!(content(&[0u8; 1024], "x.tar"), Content::Tar);
        assert_eq!(content(&[0u8; 1024], "x.tar.gz"), Content::Other);
        assert_eq!(content(&[0u8; 100], "x.tar"), Content::Other);
    }

    #[test]
    fn sql_dialects() {
        let pg = b"--\n-- PostgreSQL database dump\n--\n\nSET x = 1;\n";
        assert_eq!(content(pg, "db"), Content::Sql(Dialect::Postgres));
        let my = b"-- MySQL dump 10.13  Distrib 8.0\n";
        assert_eq!(content(my, "db"), Content::Sql(Dialect::Mysql));
        let lite = b"\nPRAGMA foreign_keys=OFF;\nBEGIN TRANSACTION;\n";
        assert_eq!(content(lite, "db"), Content::Sql(Dialect::Sqlite));
        assert_eq!(
            content(b"select 1;", "x.SQL"),
            Content::Sql(Dialect::Unknown)
        );
        assert_eq!(content(b"select 1;", "x.txt"), Content::Other);
    }

    #[test]
    fn what_names_promise() {
        let p = |name: &str| promise(name).map(|p| (p.compression, p.content, p.suffix));
        use Compression::{Bzip2, Gzip, Zstd};
        assert_eq!(
            p("site.tar.gz"),
            Some((Gzip, Some(Content::Tar), ".tar.gz".into()))
        );
        assert_eq!(
            p("site.TGZ"),
            Some((Gzip, Some(Content::Tar), ".TGZ".into()))
        );
        assert_eq!(
            p("s.tbz2"),
            Some((Bzip2, Some(Content::Tar), ".tbz2".into()))
        );
        assert_eq!(
            p("db.sql.zst"),
            Some((
                Zstd,
                Some(Content::Sql(Dialect::Unknown)),
                ".sql.zst".into()
            ))
        );
        assert_eq!(p("app.log.gz"), Some((Gzip, None, ".gz".into())));
        assert_eq!(
            p("x.zip"),
            Some((Compression::None, Some(Content::Zip), ".zip".into()))
        );
        assert_eq!(
            p("a.sqlite3"),
            Some((Compression::None, Some(Content::Sqlite), ".sqlite3".into()))
        );
        assert_eq!(
            p("a.pgdump"),
            Some((Compression::None, Some(Content::PgCustom), ".pgdump".into()))
        );
        for nothing in [
            "a.db",
            "a.dump",
            "a.bin",
            "a.tar.lz4",
            "a.tar.gz.gpg",
            "tar",
            "",
        ] {
            assert_eq!(p(nothing), None, "{nothing}");
        }
        assert_eq!(promise("x.tar.xz").unwrap().format_name(), "tar.xz");
        assert_eq!(promise("x.log.bz2").unwrap().format_name(), "bz2");
    }

    #[test]
    fn starts_described() {
        assert_eq!(describe_start(b""), "it is empty");
        assert_eq!(describe_start(&[0; 40]), "its first 40 bytes are all zero");
        let mut zeroed = vec![0u8; 100];
        zeroed.push(7);
        assert_eq!(describe_start(&zeroed), "its first 100 bytes are zero");
        assert_eq!(
            describe_start(b"Salted__xyz"),
            "it looks encrypted (openssl enc)"
        );
        // Content is never quoted: a secret put in the backup's place stays out.
        let secret = describe_start(b"smtp_password=hunter2\n");
        assert!(
            !secret.contains("hunter") && !secret.contains("68 75"),
            "{secret}"
        );
        assert_eq!(
            describe_start(b"\x13\x37secret"),
            "its first bytes match no format restore tests know"
        );
    }

    #[test]
    fn names_and_suffixes() {
        assert_eq!(strip_compression_suffix("db.sql.gz"), "db.sql");
        assert_eq!(strip_compression_suffix("site.tgz"), "site.tar");
        assert_eq!(strip_compression_suffix("plain.tar"), "plain.tar");
        assert!(named_tar("a.tar.zst") && named_tar("a.TGZ") && named_tar("a.tar"));
        assert!(!named_tar("a.sql.gz") && !named_tar("tarball.gz"));
        assert_eq!(format_name(Compression::Gzip, Content::Tar), "tar.gz");
        assert_eq!(format_name(Compression::Zstd, Content::Other), "zst");
        assert_eq!(format_name(Compression::None, Content::Other), "unknown");
        assert_eq!(
            format_name(Compression::Bzip2, Content::Sql(Dialect::Mysql)),
            "sql.bz2"
        );
    }
}
