//! Buffer sizes of the hot loops, each with an environment variable to override it, so
//! that `scripts/bench/verify.sh` and `scripts/bench/restore.sh` can sweep them on the
//! machine at hand without a rebuild, and an operator on an unusual CPU can apply what the
//! sweep found. The defaults are what the sweep chose on the machine documented in
//! docs/performance.md. Not configuration: a bad value is ignored with a warning, never
//! an error that stops monitoring.

use std::sync::OnceLock;

/// The smallest and largest sizes accepted from the environment.
const MIN: usize = 4 << 10;
const MAX: usize = 16 << 20;

/// How much of a backup the hashing loop reads at once (`BACKUP_MONITOR_HASH_READ_SIZE`).
/// Small enough that the block is still in the core's L2 cache when the hasher reads it
/// (the read copies it there from the page cache); large enough that the system call per
/// block costs nothing.
pub fn hash_read_size() -> usize {
    static SIZE: OnceLock<usize> = OnceLock::new();
    *SIZE.get_or_init(|| from_env("BACKUP_MONITOR_HASH_READ_SIZE", 128 << 10))
}

/// The size of the chunks a restore decodes ahead of the archive reader, and of the copy
/// buffer that writes restored files (`BACKUP_MONITOR_RESTORE_CHUNK`).
pub fn restore_chunk() -> usize {
    static SIZE: OnceLock<usize> = OnceLock::new();
    *SIZE.get_or_init(|| from_env("BACKUP_MONITOR_RESTORE_CHUNK", 1 << 20))
}

fn from_env(name: &str, default: usize) -> usize {
    match std::env::var(name) {
        Err(_) => default,
        Ok(value) => match parse(&value) {
            Some(size) => size,
            None => {
                tracing::warn!(
                    "{name}={value:?} is not a size between 4KiB and 16MiB (e.g. 128KiB): using {}",
                    bytesize::ByteSize(default as u64).display().iec()
                );
                default
            }
        },
    }
}

fn parse(value: &str) -> Option<usize> {
    let bytes = value.trim().parse::<bytesize::ByteSize>().ok()?.as_u64();
    let bytes = usize::try_from(bytes).ok()?;
    (MIN..=MAX).contains(&bytes).then_some(bytes)
}

#[cfg(test)]
mod tests {
    use super::parse;

    #[test]
    fn sizes_within_bounds_are_taken_others_refused() {
        assert_eq!(parse("128KiB"), Some(128 << 10));
        assert_eq!(parse("65536"), Some(65536));
        assert_eq!(parse(" 1MiB "), Some(1 << 20));
        assert_eq!(parse("1KiB"), None);
        assert_eq!(parse("1GiB"), None);
        assert_eq!(parse("lots"), None);
    }
}
