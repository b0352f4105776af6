//! Running a backup tool (restic, borg) as hostile input: no standard input (it never
//! prompts), its own process group (killed whole past the time limit), stdout read up
//! to a bound (a larger answer is an error, never a partial parse), stderr kept up to a
//! bound (the rest drained), and the tool's words made safe to show: one line, control
//! characters escaped, secrets masked. Secrets reach the tool through files or the
//! environment only, never its arguments.
//!
//! Not for: knowing what a tool's answer means (`restic.rs`, `borg.rs`).

use crate::alert::redact::Secrets;
use std::ffi::OsString;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// The largest JSON answer read from a tool.
pub const MAX_STDOUT: u64 = 64 << 20;

/// The most of a tool's stderr kept (the rest is read and dropped).
pub const MAX_STDERR: u64 = 64 << 10;

/// The most of a tool's words shown in one message.
const SHOWN_CHARS: usize = 400;

/// Variables of this process a tool still sees: where to find binaries and a home for
/// its cache; everything else (a stray `RESTIC_PASSWORD`, `BORG_REPO`) is left out so
/// that only the location's keys decide what the tool opens.
const PASSED_ENV: &[&str] = &["PATH", "HOME", "TMPDIR", "XDG_CACHE_HOME", "LANG", "LC_ALL"];

/// One run of a tool.
pub struct Invocation {
    pub bin: String,
    pub args: Vec<OsString>,
    pub env: Vec<(String, OsString)>,
    pub cwd: Option<PathBuf>,
    pub timeout: Duration,
    /// Values to mask in whatever the tool says.
    pub secrets: Secrets,
}

/// What a finished run said.
#[derive(Debug)]
pub struct Finished {
    /// The exit code; None when a signal ended it.
    pub code: Option<i32>,
    pub stdout: Vec<u8>,
    /// The first [`MAX_STDERR`] bytes, as text.
    pub stderr: String,
}

impl Finished {
    pub fn success(&self) -> bool {
        self.code == Some(0)
    }
}

/// Why a run gave no answer.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("{bin} was not found: install it or set {key} to its path")]
    Missing { bin: String, key: String },
    #[error("cannot run {bin}: {reason}")]
    Spawn { bin: String, reason: String },
    #[error("{bin} ran longer than {seconds} s (restore.timeout) and was stopped")]
    TimedOut { bin: String, seconds: u64 },
    #[error("{bin} printed more than {limit} bytes and was stopped")]
    TooMuchOutput { bin: String, limit: u64 },
    /// The watcher asked to stop (a restore passed its byte or entry limit).
    #[error("{bin} was stopped: {reason}")]
    Stopped { bin: String, reason: String },
}

impl Invocation {
    pub fn new(bin: &str, timeout: Duration, secrets: Secrets) -> Invocation {
        Invocation {
            bin: bin.to_string(),
            args: Vec::new(),
            env: Vec::new(),
            cwd: None,
            timeout,
            secrets,
        }
    }

    pub fn arg(mut self, a: impl Into<OsString>) -> Invocation {
        self.args.push(a.into());
        self
    }

    pub fn env(mut self, k: &str, v: impl Into<OsString>) -> Invocation {
        self.env.push((k.to_string(), v.into()));
        self
    }

    /// Run it to the end. `watch` is asked every few hundred milliseconds while it runs;
    /// `Some(reason)` stops it. `bin_key` names the config key that sets the binary.
    pub fn run(
        &self,
        bin_key: &str,
        watch: &mut dyn FnMut() -> Option<String>,
    ) -> Result<Finished, RunError> {
        let mut cmd = Command::new(&self.bin);
        crate::child::dies_with_us(&mut cmd);
        cmd.args(&self.args)
            .env_clear()
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for name in PASSED_ENV {
            if let Some(v) = std::env::var_os(name) {
                cmd.env(name, v);
            }
        }
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        if let Some(dir) = &self.cwd {
            cmd.current_dir(dir);
        }
        {
            use std::os::unix::process::CommandExt;
            cmd.process_group(0);
        }
        let mut child = cmd.spawn().map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => RunError::Missing {
                bin: self.bin.clone(),
                key: bin_key.to_string(),
            },
            _ => RunError::Spawn {
                bin: self.bin.clone(),
                reason: e.to_string(),
            },
        })?;
        let overflow = Arc::new(AtomicBool::new(false));
        let stdout = child.stdout.take().map(|s| {
            let overflow = Arc::clone(&overflow);
            std::thread::spawn(move || {
                let read = read_bounded(s, MAX_STDOUT, false);
                overflow.store(read.1, Ordering::Relaxed);
                read
            })
        });
        let stderr = child
            .stderr
            .take()
            .map(|s| std::thread::spawn(move || read_bounded(s, MAX_STDERR, true)));
        let ended = self.wait(&mut child, watch, &overflow);
        // Whatever the tool left running in its group (a backend helper, something that
        // still holds its stdout open) ends with it, so reading its output ends too.
        signal_group(&child);
        let out = stdout
            .map(|h| h.join().unwrap_or_default())
            .unwrap_or_default();
        let err = stderr
            .map(|h| h.join().unwrap_or_default())
            .unwrap_or_default();
        let code = ended?;
        if out.1 || overflow.load(Ordering::Relaxed) {
            return Err(RunError::TooMuchOutput {
                bin: self.bin.clone(),
                limit: MAX_STDOUT,
            });
        }
        Ok(Finished {
            code,
            stdout: out.0,
            stderr: String::from_utf8_lossy(&err.0).into_owned(),
        })
    }

    /// Wait for the child, killing its process group past the deadline, when `watch`
    /// says so, or when its stdout passed the bound.
    fn wait(
        &self,
        child: &mut Child,
        watch: &mut dyn FnMut() -> Option<String>,
        overflow: &AtomicBool,
    ) -> Result<Option<i32>, RunError> {
        let deadline = Instant::now() + self.timeout;
        let mut pause = Duration::from_millis(10);
        let mut last_watch = Instant::now();
        loop {
            match child.try_wait() {
                Ok(Some(status)) => return Ok(status.code()),
                Ok(None) => {}
                Err(e) => {
                    kill_group(child);
                    return Err(RunError::Spawn {
                        bin: self.bin.clone(),
                        reason: e.to_string(),
                    });
                }
            }
            if Instant::now() >= deadline {
                kill_group(child);
                return Err(RunError::TimedOut {
                    bin: self.bin.clone(),
                    seconds: self.timeout.as_secs(),
                });
            }
            if overflow.load(Ordering::Relaxed) {
                // Its answer is past the bound: nothing more of it will be read.
                kill_group(child);
                return Err(RunError::TooMuchOutput {
                    bin: self.bin.clone(),
                    limit: MAX_STDOUT,
                });
            }
            if last_watch.elapsed() >= Duration::from_millis(200) {
                last_watch = Instant::now();
                if let Some(reason) = watch() {
                    kill_group(child);
                    return Err(RunError::Stopped {
                        bin: self.bin.clone(),
                        reason,
                    });
                }
            }
            std::thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_millis(100));
        }
    }

    /// The tool's words as a message may show them: masked, on one line, bounded.
    pub fn shown(&self, text: &str) -> String {
        shown(&self.secrets, text)
    }
}

/// `text` masked, on one line (blank lines dropped, lines joined with " / "), control
/// characters escaped, and cut to a readable length.
pub fn shown(secrets: &Secrets, text: &str) -> String {
    let joined = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" / ");
    let masked = secrets.redact(&joined);
    let line = crate::problem::one_line(&masked).into_owned();
    match line.char_indices().nth(SHOWN_CHARS) {
        None => line,
        Some((cut, _)) => format!("{} …", &line[..cut]),
    }
}

/// Kill the whole process group of `child` (the tool and anything it started, such as
/// an ssh or rclone backend) and reap it.
fn kill_group(child: &mut Child) {
    signal_group(child);
    let _ = child.kill();
    let _ = child.wait();
}

/// SIGKILL to the process group the child leads. Linux never hands out a pid that is
/// still some group's id, so after the child exited this reaches only what it left.
fn signal_group(child: &Child) {
    let pid = child.id() as i32;
    // SAFETY: kill has no memory preconditions; a negative pid names the group the child
    // leads (it was started with process_group(0)).
    unsafe {
        libc::kill(-pid, libc::SIGKILL);
    }
}

/// Read `src` to its end, keeping at most `limit` bytes. Returns what was kept and
/// whether there was more. With `drain`, the rest is read and dropped (so the tool never
/// blocks on a full pipe); without, reading stops at the bound (the caller kills the
/// tool for it).
fn read_bounded(src: impl Read, limit: u64, drain: bool) -> (Vec<u8>, bool) {
    let mut kept = Vec::new();
    let mut src = src;
    let mut limited = (&mut src).take(limit + 1);
    if limited.read_to_end(&mut kept).is_err() {
        return (kept, false);
    }
    let over = kept.len() as u64 > limit;
    kept.truncate(limit as usize);
    if over && drain {
        let _ = std::io::copy(&mut src, &mut std::io::sink());
    }
    (kept, over)
}

/// A private directory (0700) for a tool's state, made if missing.
pub fn private_dir(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_past_the_bound_is_cut_and_flagged() {
        let (kept, over) = read_bounded(&b"abcdef"[..], 4, true);
        assert_eq!((kept.as_slice(), over), (&b"abcd"[..], true));
        let (kept, over) = read_bounded(&b"abc"[..], 4, false);
        assert_eq!((kept.as_slice(), over), (&b"abc"[..], false));
    }

    #[test]
    fn words_are_one_masked_line() {
        let mut secrets = Secrets::default();
        secrets.add("hunter2-secret");
        let text = "Fatal: key hunter2-secret\n\n\x1b[31mred\x1b[0m\n";
        let line = shown(&secrets, text);
        assert!(!line.contains("hunter2"), "{line}");
        assert!(!line.contains('\n') && !line.contains('\x1b'), "{line}");
        assert!(line.contains(" / "), "{line}");
        let long = "x".repeat(5000);
        assert!(shown(&secrets, &long).chars().count() < 500);
    }

    #[test]
    fn a_missing_binary_names_it() {
        let inv = Invocation::new(
            "/nonexistent/restic-xyz",
            Duration::from_secs(5),
            Secrets::default(),
        );
        let e = inv.run("restic_bin", &mut || None).unwrap_err();
        assert!(matches!(e, RunError::Missing { .. }), "{e}");
        assert!(e.to_string().contains("/nonexistent/restic-xyz"));
        assert!(e.to_string().contains("restic_bin"));
    }

    #[test]
    fn a_tool_past_its_time_is_killed_with_its_children() {
        let inv = Invocation::new("sh", Duration::from_millis(300), Secrets::default())
            .arg("-c")
            .arg("sleep 30 & sleep 30");
        let started = Instant::now();
        let e = inv.run("x", &mut || None).unwrap_err();
        assert!(matches!(e, RunError::TimedOut { .. }), "{e}");
        assert!(started.elapsed() < Duration::from_secs(5));
    }

    #[test]
    fn too_much_output_is_an_error_not_a_partial_answer() {
        let inv = Invocation::new("sh", Duration::from_secs(30), Secrets::default())
            .arg("-c")
            .arg("head -c 70000000 /dev/zero");
        let e = inv.run("x", &mut || None).unwrap_err();
        assert!(matches!(e, RunError::TooMuchOutput { .. }), "{e}");
    }

    #[test]
    fn what_a_tool_leaves_running_does_not_hold_the_run() {
        let inv = Invocation::new("sh", Duration::from_secs(30), Secrets::default())
            .arg("-c")
            .arg("sleep 60 & echo '[]'");
        let started = Instant::now();
        let out = inv.run("x", &mut || None).unwrap();
        assert_eq!(out.stdout, b"[]\n");
        assert!(started.elapsed() < Duration::from_secs(10));
    }

    #[test]
    fn the_watcher_stops_a_run() {
        let inv = Invocation::new("sleep", Duration::from_secs(30), Secrets::default()).arg("30");
        let e = inv
            .run("x", &mut || Some("over the limit".into()))
            .unwrap_err();
        assert!(e.to_string().contains("over the limit"), "{e}");
    }
}
