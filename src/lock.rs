//! One run at a time: an exclusive OS lock on `<store>.lock`. The OS drops the lock when
//! the holder dies, so a killed run never leaves a stale lock behind; the pid written into
//! the file is only there to name the holder in the message.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error(
        "another backup-monitor run for host {host} (pid {pid} on {machine}) holds the lock {path}; wait for it to finish, or check that process"
    )]
    Held {
        host: String,
        pid: String,
        machine: String,
        path: PathBuf,
    },
    #[error(
        "cannot create the lock file {path} beside the store: {source}. Check that this user may create files in that directory, or point database_url / DATABASE_URL at one it may"
    )]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Held for the life of the run.
pub struct RunLock {
    _file: File,
}

pub fn lock_path(store: &Path) -> PathBuf {
    let mut name = store.as_os_str().to_owned();
    name.push(".lock");
    PathBuf::from(name)
}

pub fn acquire(store: &Path, host: &str) -> Result<RunLock, LockError> {
    let path = lock_path(store);
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|source| LockError::Io {
            path: path.clone(),
            source,
        })?;
    }
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(|source| LockError::Io {
            path: path.clone(),
            source,
        })?;
    crate::store::restrict_permissions(&path);
    match file.try_lock() {
        Ok(()) => {
            let _ = file.set_len(0);
            let _ = file.seek(SeekFrom::Start(0));
            let _ = write!(file, "{}", std::process::id());
            let _ = file.flush();
            Ok(RunLock { _file: file })
        }
        Err(std::fs::TryLockError::WouldBlock) => Err(LockError::Held {
            host: host.to_string(),
            pid: holder_pid(&mut file),
            machine: crate::config::host_name(),
            path,
        }),
        Err(std::fs::TryLockError::Error(source)) => Err(LockError::Io { path, source }),
    }
}

/// The pid the holder wrote. A holder that has only just taken the lock may not have
/// written it yet, and until it does the file is empty or still names an earlier holder
/// that died: re-read briefly until it names a live process.
fn holder_pid(file: &mut File) -> String {
    let mut text = String::new();
    for _ in 0..50 {
        text.clear();
        let _ = file.seek(SeekFrom::Start(0));
        let _ = file.read_to_string(&mut text);
        if text.trim().parse::<u32>().is_ok_and(process_alive) {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    match text.trim() {
        "" => "unknown".into(),
        pid => pid.to_string(),
    }
}

fn process_alive(pid: u32) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return false;
    };
    // SAFETY: signal 0 only checks whether the process exists; nothing is sent.
    let rc = unsafe { libc::kill(pid, 0) };
    rc == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_lock_is_refused_until_the_first_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let store = dir.path().join("s.db");
        let first = acquire(&store, "h1").unwrap();
        let err = acquire(&store, "h1").err().unwrap().to_string();
        assert!(err.contains(&std::process::id().to_string()), "{err}");
        drop(first);
        assert!(acquire(&store, "h1").is_ok());
    }

    #[test]
    fn a_holder_that_has_not_written_its_pid_yet_is_still_named() {
        let dir = tempfile::tempdir().unwrap();
        let store = dir.path().join("s.db");
        let path = lock_path(&store);
        // The state right after a new holder took the lock: the file still names a dead
        // earlier holder (pid_max is above every live pid).
        std::fs::write(&path, "4194304").unwrap();
        let holder = File::options().read(true).write(true).open(&path).unwrap();
        holder.try_lock().unwrap();
        let writer = std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(50));
            std::fs::write(&path, std::process::id().to_string()).unwrap();
            holder
        });
        let err = acquire(&store, "h1").err().unwrap().to_string();
        assert!(
            err.contains(&format!("for host h1 (pid {} on ", std::process::id())),
            "{err}"
        );
        drop(writer.join().unwrap());
    }
}
