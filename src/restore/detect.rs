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
/// with any compression suffix removed (a hint for `.tar` and `.sql`).
pub fn content(head: &[u8], name: &str) -> Content {
    let lower = name.to_ascii_lowercase();
    if head.starts_with(b"SQLite format 3\0") {
        Content::Sqlite
    } else if head.starts_with(b"PGDMP") {
        Content::PgCustom
    } else if head.starts_with(b"PK\x03\x04") || head.starts_with(b"PK\x05\x06") {
        Content::Zip
    } else if is_tar_header(head) {
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
    let lower = name.to_ascii_lowercase();
    let stem = strip_compression_suffix(&lower);
    stem.ends_with(".tar")
        || [".tgz", ".tbz", ".tbz2", ".txz", ".tzst"]
            .iter()
            .any(|s| lower.ends_with(s))
}

/// `db.sql.gz` → `db.sql`; `x.tgz` → `x.tar`; names without a compression suffix unchanged.
pub fn strip_compression_suffix(name: &str) -> String {
    let lower = name.to_ascii_lowercase();
    for (suffix, replacement) in [
        (".tgz", ".tar"),
        (".tbz2", ".tar"),
        (".tbz", ".tar"),
        (".txz", ".tar"),
        (".tzst", ".tar"),
        (".gz", ""),
        (".zst", ""),
        (".zstd", ""),
        (".bz2", ""),
        (".xz", ""),
    ] {
        if lower.ends_with(suffix) {
            return format!("{}{replacement}", &name[..name.len() - suffix.len()]);
        }
    }
    name.to_string()
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
        assert_eq!(content(&[0u8; 512], "x.tar"), Content::Other);
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
