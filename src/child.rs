//! Child processes that never outlive the run: every program a restore test or a
//! repository source starts (`pg_restore`, `psql`, the `mariadb` client, `gpg`,
//! `restic`, `borg`) is killed by the kernel when the run ends, however it ends — a
//! `SIGTERM` from systemd or cron's timeout, a `SIGKILL` — instead of going on, reparented
//! to PID 1, with no deadline left to stop it (a dump's `SELECT pg_sleep(3600)` would run
//! for an hour against the scratch server).

use std::io;
use std::os::unix::process::CommandExt;
use std::process::Command;

/// Have `cmd`'s process killed (`SIGKILL`) when this process ends.
///
/// Linux delivers the signal when the *thread* that spawned the child ends: spawn from a
/// thread that waits for the child (every caller here does), not from a short-lived one.
pub fn dies_with_us(cmd: &mut Command) -> &mut Command {
    let parent = std::process::id();
    // SAFETY: the closure runs in the child between fork and exec, where only
    // async-signal-safe calls are allowed: it makes two system calls (prctl, getppid),
    // builds an io::Error from a raw errno (no allocation), and touches no lock and no
    // memory of the parent's other threads.
    unsafe {
        cmd.pre_exec(move || {
            let signal = libc::SIGKILL as libc::c_ulong;
            if libc::prctl(libc::PR_SET_PDEATHSIG, signal, 0, 0, 0) != 0 {
                return Err(io::Error::last_os_error());
            }
            // The parent may have died between fork and prctl: then no signal comes, and
            // the child would be PID 1's. It is not started at all.
            if libc::getppid() as u32 != parent {
                return Err(io::Error::from_raw_os_error(libc::ESRCH));
            }
            Ok(())
        });
    }
    cmd
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_child_still_runs_and_exits_as_usual() {
        let out = dies_with_us(Command::new("sh").args(["-c", "echo ok"]))
            .output()
            .unwrap();
        assert!(out.status.success());
        assert_eq!(out.stdout, b"ok\n");
    }
}
