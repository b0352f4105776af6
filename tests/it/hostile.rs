//! Hostile input through the real binary (issue 7, items 4 and 5).
//!
//! Archives built to escape or exhaust the restore sandbox — link chains, devices, setuid
//! bits, 100,000 entries, paths beyond PATH_MAX, names that are not UTF-8, zip headers
//! that contradict each other, gzip members, absurd declared sizes — each must get a
//! clear verdict and write nothing outside the sandbox, which is checked by listing the
//! whole temp workspace before and after. Then backup names made to break the outputs —
//! `<script>`, quotes, newlines, `=cmd|` formulas, bytes that are not UTF-8 — must come
//! out escaped in the HTML, CSV, JSON, Prometheus, Slack, webhook, email, text and Nagios
//! renderings. Results are described in docs/reliability.md.

use crate::common;

use chrono::{Duration, Utc};
use common::{Run, Workspace, set_mtime};
use serde_json::Value;
use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::io::{Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration as StdDuration, Instant};

// ---------------------------------------------------------------------------------------
// Workspace, runs and the filesystem around the sandbox

/// One location `evil` over `backups/` whose sandboxes go to `scratch/`, with a canary
/// directory `outside/` beside it holding `target.txt`.
fn restore_workspace(restore_extra: &str) -> Workspace {
    let ws = Workspace::new();
    ws.write_config(&format!(
        "backups:\n  locations:\n    - name: evil\n      path: backups\n      restore:\n        \
         latest: 100\n        scratch_dir: scratch\n{restore_extra}logging:\n  file: null\n"
    ));
    for dir in ["backups", "scratch", "outside"] {
        std::fs::create_dir_all(ws.path(dir)).unwrap();
    }
    std::fs::write(ws.path("outside/target.txt"), "original").unwrap();
    ws
}

/// Every entry under `dir` (not following links): path → (type and mode, size, mtime);
/// size and mtime only for non-directories (creating a sandbox changes its parent's).
type Listing = BTreeMap<PathBuf, (u32, u64, i64)>;

fn listing(dir: &Path) -> Listing {
    let mut out = Listing::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(d) = pending.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            let m = std::fs::symlink_metadata(&p).unwrap();
            if m.is_dir() {
                pending.push(p.clone());
            }
            let (len, mtime) = if m.is_dir() {
                (0, 0)
            } else {
                (m.len(), m.mtime())
            };
            out.insert(p, (m.mode(), len, mtime));
        }
    }
    out
}

/// The files a run may create or change: the store, its lock and WAL.
fn store_file(ws: &Workspace, p: &Path) -> bool {
    p.strip_prefix(ws.dir.path())
        .ok()
        .and_then(|r| r.to_str())
        .is_some_and(|r| r.starts_with("backup_monitor.db"))
}

/// Nothing appeared, vanished or changed in the workspace but the store; the canary is
/// intact and every sandbox is gone.
fn assert_nothing_escaped(ws: &Workspace, before: &Listing) {
    let after = listing(ws.dir.path());
    for (p, meta) in &after {
        if store_file(ws, p) {
            continue;
        }
        assert_eq!(
            before.get(p),
            Some(meta),
            "{} appeared or changed",
            p.display()
        );
    }
    for p in before.keys() {
        assert!(after.contains_key(p), "{} vanished", p.display());
    }
    assert_eq!(
        std::fs::read_to_string(ws.path("outside/target.txt")).unwrap(),
        "original"
    );
    let left: Vec<_> = std::fs::read_dir(ws.path("scratch")).unwrap().collect();
    assert!(left.is_empty(), "sandboxes left behind: {left:?}");
}

/// Give every backup an mtime a day ago, so it has settled.
fn settle(ws: &Workspace) {
    let old = Utc::now() - Duration::days(1);
    for e in std::fs::read_dir(ws.path("backups")).unwrap().flatten() {
        set_mtime(&e.path(), old);
    }
}

/// The binary as `Workspace::command` sets it up, as a plain `std::process::Command`.
fn command(ws: &Workspace, args: &[&str]) -> Command {
    let mut cmd = ws.process();
    cmd.args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

/// Collect a child's stdout and stderr on threads (so it never blocks on a full pipe).
fn collect(child: &mut std::process::Child) -> impl FnOnce() -> (String, String) + use<> {
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let o = std::thread::spawn(move || {
        let mut s = Vec::new();
        let _ = out.read_to_end(&mut s);
        s
    });
    let e = std::thread::spawn(move || {
        let mut s = Vec::new();
        let _ = err.read_to_end(&mut s);
        s
    });
    move || {
        let text = |v: Vec<u8>| String::from_utf8_lossy(&v).into_owned();
        (text(o.join().unwrap()), text(e.join().unwrap()))
    }
}

/// Reap `pid` with wait4: its exit code and its own peak RSS in KiB.
fn reap(pid: u32) -> (i32, u64) {
    let mut status = 0;
    // SAFETY: rusage is plain data; wait4 fills it for the child we spawned.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let rc = unsafe { libc::wait4(pid as libc::pid_t, &mut status, 0, &mut usage) };
    assert_eq!(rc, pid as libc::pid_t, "wait4");
    let code = if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else {
        -1
    };
    (code, usage.ru_maxrss as u64)
}

/// Run the binary; also its peak RSS (KiB) and the CPU time it used.
fn run_measured(ws: &Workspace, args: &[&str]) -> (Run, u64, StdDuration) {
    let mut measured = common::spawn_measured(&command(ws, args));
    let outputs = collect(&mut measured.child);
    let (code, rss, cpu) = measured.wait_cpu();
    let (stdout, stderr) = outputs();
    (
        Run {
            code,
            stdout,
            stderr,
        },
        rss,
        cpu,
    )
}

fn test_restore(ws: &Workspace) -> (i32, Value) {
    let (run, doc) = ws.run_json(&["--test-restore"]);
    (run.code, doc)
}

use common::{problem_kinds_of as kinds_of, restore_result as result};

/// `path` failed with exactly one problem of `kind`; returns its detail.
fn assert_failed(doc: &Value, path: &str, kind: &str) -> String {
    let r = result(doc, path);
    assert_eq!(r["result"], "failed", "{path}: {r:#}");
    assert_eq!(kinds_of(doc, path), vec![kind.to_string()], "{path}: {r:#}");
    r["detail"].as_str().unwrap_or("").to_string()
}

fn assert_passed(doc: &Value, path: &str, files: u64) -> String {
    let r = result(doc, path);
    assert_eq!(r["result"], "passed", "{path}: {r:#}");
    assert_eq!(r["files"], files, "{path}: {r:#}");
    r["detail"].as_str().unwrap_or("").to_string()
}

// ---------------------------------------------------------------------------------------
// Archive builders

/// A tar header with raw name and link bytes (the tar crate's setters refuse bad names).
fn header(kind: tar::EntryType, name: &[u8], link: &[u8], size: u64) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    {
        let old = h.as_old_mut();
        old.name[..name.len()].copy_from_slice(name);
        old.linkname[..link.len()].copy_from_slice(link);
    }
    h.set_entry_type(kind);
    h.set_size(size);
    h.set_mode(0o644);
    h.set_mtime(1_700_000_000);
    h.set_cksum();
    h
}

/// A raw tar entry: (kind, name, link target, data).
type RawEntry<'a> = (tar::EntryType, &'a [u8], &'a [u8], &'a [u8]);

/// A tar stream of raw entries.
fn tar_bytes(entries: &[RawEntry]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (kind, name, link, data) in entries {
        let h = header(*kind, name, link, data.len() as u64);
        b.append(&h, *data).unwrap();
    }
    b.into_inner().unwrap()
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(data).unwrap();
    gz.finish().unwrap()
}

/// `head`, then `zeros` zero bytes, then `tail`, compressed with zstd (zeros compress to
/// almost nothing, so a few KiB declare and hold hundreds of MiB).
fn zstd_with_zeros(head: &[u8], zeros: u64, tail: &[u8]) -> Vec<u8> {
    let mut enc = zstd::stream::write::Encoder::new(Vec::new(), 1).unwrap();
    enc.write_all(head).unwrap();
    let chunk = vec![0u8; 1 << 20];
    let mut left = zeros;
    while left > 0 {
        let n = left.min(chunk.len() as u64) as usize;
        enc.write_all(&chunk[..n]).unwrap();
        left -= n as u64;
    }
    enc.write_all(tail).unwrap();
    enc.finish().unwrap()
}

fn write_backup(ws: &Workspace, name: &str, bytes: &[u8]) {
    std::fs::write(ws.path(&format!("backups/{name}")), bytes).unwrap();
}

use tar::EntryType::{Block, Char, Directory, Fifo, Link, Regular, Symlink};

// ---------------------------------------------------------------------------------------
// Item 4: hostile archives

#[test]
fn link_chains_out_of_the_sandbox_are_refused() {
    let ws = restore_workspace("");
    let file: RawEntry = (Regular, b"f.txt", b"", b"data");
    let cases: &[(&str, Vec<RawEntry>)] = &[
        // link -> link -> outside: the last hop climbs out.
        (
            "symlink-chain.tar",
            vec![
                file,
                (Symlink, b"a", b"b", b""),
                (Symlink, b"b", b"sub/c", b""),
                (Symlink, b"sub/c", b"../../../outside", b""),
                (Regular, b"a/pwned.txt", b"", b"pwned"),
            ],
        ),
        // Each link looks inside when it arrives; only together do they climb out.
        (
            "late-chain.tar",
            vec![
                file,
                (Symlink, b"d/l1", b"../l2/..", b""),
                (Regular, b"d/l1/pwned.txt", b"", b"pwned"),
                (Symlink, b"l2", b".", b""),
            ],
        ),
        // A symlink to a directory, then a file written "through" it.
        (
            "dir-symlink-write.tar",
            vec![
                file,
                (Symlink, b"up", b"sub/../..", b""),
                (Regular, b"up/outside/target.txt", b"", b"pwned"),
            ],
        ),
        // A hard link to a symlink that points out.
        (
            "hardlink-to-symlink.tar",
            vec![
                file,
                (Symlink, b"s", b"../../outside/target.txt", b""),
                (Link, b"h", b"s", b""),
                (Regular, b"h", b"", b"pwned"),
            ],
        ),
        // A hard link through a symlink chain that climbs out.
        (
            "hardlink-through-chain.tar",
            vec![
                file,
                (Symlink, b"x", b"y", b""),
                (Symlink, b"y", b".", b""),
                (Link, b"h", b"x/../outside/target.txt", b""),
            ],
        ),
        // Hard link -> hard link -> absolute target.
        (
            "hardlink-chain.tar",
            vec![
                file,
                (Link, b"h1", b"f.txt", b""),
                (Link, b"h2", b"h1", b""),
                (Link, b"h3", b"/etc/passwd", b""),
            ],
        ),
    ];
    for (name, entries) in cases {
        write_backup(&ws, name, &tar_bytes(entries));
    }
    // Chains that stay inside pass: nothing is refused for being a link.
    write_backup(
        &ws,
        "inside-chains.tar",
        &tar_bytes(&[
            file,
            (Symlink, b"a", b"b", b""),
            (Symlink, b"b", b"sub/../f.txt", b""),
            (Link, b"h1", b"f.txt", b""),
            (Link, b"h2", b"h1", b""),
            (Link, b"h3", b"a", b""),
            // Replacing a hard link never writes through it into f.txt.
            (Regular, b"h2", b"", b"new"),
        ]),
    );
    settle(&ws);
    let before = listing(ws.dir.path());
    let (code, doc) = test_restore(&ws);
    assert_eq!(code, 2, "{doc:#}");
    for (name, _) in cases {
        let detail = assert_failed(&doc, name, "unsafe_archive_entry");
        assert!(detail.contains("outside the sandbox"), "{name}: {detail}");
    }
    // f.txt, h1, h2, h3: the file replacing h2 is not another one.
    let detail = assert_passed(&doc, "inside-chains.tar", 4);
    assert!(detail.contains("restored"), "{detail}");
    assert_nothing_escaped(&ws, &before);
}

#[test]
fn link_loops_that_never_leave_the_sandbox_are_harmless() {
    let ws = restore_workspace("");
    // Real trees with link loops (`ln -s b a; ln -s a b`, a self-link, a loop through a
    // directory, a chain that grows), archived by the real tar; one also escapes.
    for (tree, escape) in [("loops", false), ("loops-and-escape", true)] {
        let site = ws.path(&format!("src/{tree}/site"));
        std::fs::create_dir_all(site.join("d")).unwrap();
        std::fs::write(site.join("f.txt"), "data").unwrap();
        let mut links = vec![
            ("a", "b"),
            ("b", "a"),
            ("self", "self"),
            ("d/up", "../d/up"),
            ("grow", "grow/x"),
        ];
        if escape {
            links.push(("out", "../../outside"));
        }
        for (link, target) in links {
            std::os::unix::fs::symlink(target, site.join(link)).unwrap();
        }
        let status = Command::new("tar")
            .arg("-cf")
            .arg(ws.path(&format!("backups/{tree}.tar")))
            .arg("-C")
            .arg(ws.path(&format!("src/{tree}")))
            .arg("site")
            .status()
            .unwrap();
        assert!(status.success());
    }
    settle(&ws);
    let before = listing(ws.dir.path());
    let (code, doc) = test_restore(&ws);
    assert_eq!(code, 2, "{doc:#}");
    let detail = assert_passed(&doc, "loops.tar", 1);
    assert!(
        detail.contains(
            "5 symbolic links loop without leaving the sandbox (\"site/a\", \"site/b\", \"site/d/up\", …)"
        ),
        "{detail}"
    );
    // Loops beside a real escape do not hide it.
    let detail = assert_failed(&doc, "loops-and-escape.tar", "unsafe_archive_entry");
    assert!(detail.contains("\"site/out\""), "{detail}");
    assert_nothing_escaped(&ws, &before);
}

/// Run `--test-restore`, stop the process (SIGSTOP) in small steps until `marker` exists
/// in its sandbox, and list the sandbox then (path relative to it → metadata).
fn observe_sandbox(
    ws: &Workspace,
    marker: &str,
) -> (Run, Option<BTreeMap<PathBuf, std::fs::Metadata>>) {
    let mut child = command(ws, &["--test-restore", "--format", "json"])
        .spawn()
        .unwrap();
    let pid = child.id() as libc::pid_t;
    let outputs = collect(&mut child);
    let stopped = || {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let state = stat.rsplit_once(") ").map(|(_, s)| s.chars().next());
        matches!(state, Some(Some('T' | 't' | 'Z')) | None)
    };
    let mut seen = None;
    let deadline = Instant::now() + StdDuration::from_secs(60);
    while seen.is_none() && Instant::now() < deadline {
        // SAFETY: signalling our own child.
        if unsafe { libc::kill(pid, libc::SIGSTOP) } != 0 {
            break;
        }
        while !stopped() {
            std::thread::yield_now();
        }
        let sandboxes: Vec<PathBuf> = std::fs::read_dir(ws.path("scratch"))
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .collect();
        for sb in sandboxes {
            if sb.join(marker).exists() {
                let all = listing(&sb)
                    .into_keys()
                    .map(|p| {
                        let m = std::fs::symlink_metadata(&p).unwrap();
                        (p.strip_prefix(&sb).unwrap().to_path_buf(), m)
                    })
                    .collect();
                seen = Some(all);
            }
        }
        unsafe { libc::kill(pid, libc::SIGCONT) };
        std::thread::sleep(StdDuration::from_micros(300));
    }
    let (code, _) = reap(child.id());
    let (stdout, stderr) = outputs();
    (
        Run {
            code,
            stdout,
            stderr,
        },
        seen,
    )
}

#[test]
fn devices_fifos_setuid_bits_and_owners_are_not_restored() {
    let ws = restore_workspace("        min_files: 3\n");
    // The archive's owner: not us (we run as root in CI, so chown would be possible).
    let foreign = 4242;
    // Streamed into zstd: the 64 MiB of zeros after the marker compress to almost
    // nothing and keep the sandbox alive long enough to look at it.
    let encoder = zstd::stream::write::Encoder::new(Vec::new(), 1).unwrap();
    let mut b = tar::Builder::new(encoder);
    let mut add =
        |kind, name: &str, mode: u32, data: &mut dyn Read, size: u64, dev: Option<(u32, u32)>| {
            let mut h = header(kind, name.as_bytes(), b"", size);
            h.set_mode(mode);
            h.set_uid(foreign);
            h.set_gid(foreign);
            if let Some((major, minor)) = dev {
                h.set_device_major(major).unwrap();
                h.set_device_minor(minor).unwrap();
            }
            h.set_cksum();
            b.append(&h, data).unwrap();
        };
    let bytes = |data: &'static [u8]| (data, data.len() as u64);
    for (kind, name, mode, (data, size), dev) in [
        (Directory, "shared", 0o2777, bytes(b""), None),
        (Regular, "shared/sgid", 0o2755, bytes(b"#!/bin/sh\n"), None),
        (Regular, "bin/su", 0o4755, bytes(b"\x7fELF"), None),
        (Regular, "bin/both", 0o6777, bytes(b"x"), None),
        (Char, "dev/null", 0o666, bytes(b""), Some((1, 3))),
        (Block, "dev/sda", 0o660, bytes(b""), Some((8, 0))),
        (Fifo, "pipe", 0o644, bytes(b""), None),
        // Data for a device entry: skipped, not restored as a file.
        (
            Char,
            "dev/zero",
            0o666,
            bytes(b"not a device"),
            Some((1, 5)),
        ),
        (Regular, "zz-marker", 0o644, bytes(b"m"), None),
    ] {
        add(kind, name, mode, &mut &data[..], size, dev);
    }
    add(
        Regular,
        "zz-filler",
        0o644,
        &mut std::io::repeat(0).take(64 << 20),
        64 << 20,
        None,
    );
    let compressed = b.into_inner().unwrap().finish().unwrap();
    write_backup(&ws, "special.tar.zst", &compressed);
    settle(&ws);
    let before = listing(ws.dir.path());

    let mut observed = None;
    let mut last = None;
    for attempt in 0..3 {
        if attempt > 0 {
            // Unchanged backups keep their verdict: a new mtime makes the next run test again.
            set_mtime(
                &ws.path("backups/special.tar.zst"),
                Utc::now() - Duration::hours(30 + attempt),
            );
        }
        let (run, seen) = observe_sandbox(&ws, "zz-marker");
        last = Some(run);
        if seen.is_some() {
            observed = seen;
            break;
        }
    }
    let run = last.unwrap();
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let doc = run.json();
    let detail = assert_passed(&doc, "special.tar.zst", 5);
    assert!(detail.contains("4 device/FIFO entries skipped"), "{detail}");
    let sandbox = observed.expect("the sandbox was observed while the restore ran");
    let me = unsafe { libc::geteuid() };
    for (rel, m) in &sandbox {
        let shown = rel.display();
        assert!(
            m.is_dir() || m.is_file(),
            "{shown}: only files and directories are created ({:?})",
            m.file_type()
        );
        assert!(
            !m.file_type().is_char_device()
                && !m.file_type().is_block_device()
                && !m.file_type().is_fifo()
        );
        assert_eq!(m.mode() & 0o7000, 0, "{shown}: setuid/setgid/sticky bit");
        let expected = if m.is_dir() { 0o700 } else { 0o600 };
        assert_eq!(m.mode() & 0o777, expected, "{shown}: mode {:o}", m.mode());
        assert_eq!(m.uid(), me, "{shown}: owned by the archive's uid");
        assert_ne!(u64::from(m.gid()), foreign, "{shown}: group of the archive");
    }
    for gone in ["dev/null", "dev/sda", "dev/zero", "pipe"] {
        assert!(!sandbox.contains_key(Path::new(gone)), "{gone} was created");
    }
    for present in ["shared/sgid", "bin/su", "bin/both", "shared"] {
        assert!(
            sandbox.contains_key(Path::new(present)),
            "{present}: {sandbox:?}"
        );
    }
    assert_nothing_escaped(&ws, &before);
}

#[test]
fn zip_with_100000_entries_is_restored_in_bounded_time_and_memory() {
    let ws = restore_workspace("");
    let file = std::fs::File::create(ws.path("backups/many.zip")).unwrap();
    let mut zip = zip::ZipWriter::new(std::io::BufWriter::new(file));
    let options =
        zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    for i in 0..100_000u32 {
        zip.start_file(format!("d{:03}/f{i:06}.txt", i / 1000), options)
            .unwrap();
        zip.write_all(b"x").unwrap();
    }
    zip.finish().unwrap().flush().unwrap();
    settle(&ws);
    let before = listing(ws.dir.path());
    let (run, rss_kib, cpu) = run_measured(&ws, &["--test-restore", "--format", "json"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let doc = run.json();
    let detail = assert_passed(&doc, "many.zip", 100_000);
    assert!(detail.contains("100000 entries"), "{detail}");
    assert_eq!(result(&doc, "many.zip")["bytes"], 100_000);
    eprintln!(
        "100,000-entry zip: {:.1} s of user CPU, peak RSS {} MiB",
        cpu.as_secs_f64(),
        rss_kib / 1024
    );
    // Bounded work, in user CPU time: the wall clock depends on what else the machine does.
    assert!(cpu < StdDuration::from_secs(60), "used {cpu:?} of user CPU");
    assert!(rss_kib < 200 * 1024, "peak RSS {rss_kib} KiB");
    assert_nothing_escaped(&ws, &before);
}

#[test]
fn paths_deeper_than_path_max_and_overlong_names_fail_clearly() {
    let ws = restore_workspace("");
    // 2,000 directory levels: 22,000 bytes of path, beyond PATH_MAX (4096).
    let mut b = tar::Builder::new(Vec::new());
    let mut path = String::new();
    for level in 0..2000 {
        path.push_str(&format!("d{level:09}/"));
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(Directory);
        h.set_mode(0o755);
        h.set_size(0);
        b.append_data(&mut h, &path, &b""[..]).unwrap();
    }
    let mut h = tar::Header::new_gnu();
    h.set_size(5);
    h.set_mode(0o644);
    b.append_data(&mut h, format!("{path}deep.txt"), &b"deep\n"[..])
        .unwrap();
    write_backup(&ws, "deep.tar", &b.into_inner().unwrap());
    // The same depth in a zip (names up to 65,535 bytes).
    let file = std::fs::File::create(ws.path("backups/deep.zip")).unwrap();
    let mut zip = zip::ZipWriter::new(file);
    zip.start_file(
        format!("{path}deep.txt"),
        zip::write::SimpleFileOptions::default(),
    )
    .unwrap();
    zip.write_all(b"deep\n").unwrap();
    zip.finish().unwrap();
    // One name longer than NAME_MAX (255).
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_size(4);
    h.set_mode(0o644);
    b.append_data(&mut h, "n".repeat(300), &b"long"[..])
        .unwrap();
    write_backup(&ws, "longname.tar", &b.into_inner().unwrap());
    settle(&ws);
    let before = listing(ws.dir.path());
    let started = Instant::now();
    let (code, doc) = test_restore(&ws);
    assert_eq!(code, 2, "{doc:#}");
    for name in ["deep.tar", "deep.zip", "longname.tar"] {
        let detail = assert_failed(&doc, name, "restore_failed");
        eprintln!("{name}: {detail}");
        assert!(detail.contains("too long"), "{name}: {detail}");
        assert!(detail.len() < 300, "a short detail: {detail}");
    }
    assert!(started.elapsed() < StdDuration::from_secs(60));
    assert_nothing_escaped(&ws, &before);
}

/// Replace every occurrence of `from` in a file with `to` (same length).
fn patch_all(path: &Path, from: &[u8], to: &[u8]) {
    assert_eq!(from.len(), to.len());
    let mut bytes = std::fs::read(path).unwrap();
    let mut hits = 0;
    let mut i = 0;
    while i + from.len() <= bytes.len() {
        if &bytes[i..i + from.len()] == from {
            bytes[i..i + from.len()].copy_from_slice(to);
            hits += 1;
            i += from.len();
        } else {
            i += 1;
        }
    }
    assert!(hits > 0, "{from:?} not in {}", path.display());
    std::fs::write(path, bytes).unwrap();
}

fn small_zip(path: &Path, entries: &[(&str, &[u8])]) {
    let mut zip = zip::ZipWriter::new(std::fs::File::create(path).unwrap());
    for (name, data) in entries {
        zip.start_file(
            *name,
            zip::write::SimpleFileOptions::default()
                .compression_method(zip::CompressionMethod::Stored),
        )
        .unwrap();
        zip.write_all(data).unwrap();
    }
    zip.finish().unwrap();
}

#[test]
fn names_that_are_not_utf8_are_restored_lossily_and_collisions_are_clear() {
    let ws = restore_workspace("        expect: [\"caf*.txt\"]\n");
    write_backup(
        &ws,
        "latin1.tar",
        &tar_bytes(&[(Regular, b"caf\xe9.txt", b"", b"latin-1 name")]),
    );
    // Two names that differ only in bytes that are not UTF-8.
    write_backup(
        &ws,
        "collide.tar",
        &tar_bytes(&[
            (Regular, b"caf\xe9.txt", b"", b"one"),
            (Regular, b"caf\xe8.txt", b"", b"two"),
        ]),
    );
    small_zip(&ws.path("backups/latin1.zip"), &[("cafX.txt", b"latin-1")]);
    patch_all(&ws.path("backups/latin1.zip"), b"cafX.txt", b"caf\xe9.txt");
    small_zip(
        &ws.path("backups/collide.zip"),
        &[("cafX.txt", b"one"), ("cafY.txt", b"two")],
    );
    patch_all(&ws.path("backups/collide.zip"), b"cafX.txt", b"caf\xe9.txt");
    patch_all(&ws.path("backups/collide.zip"), b"cafY.txt", b"caf\xe8.txt");
    settle(&ws);
    let before = listing(ws.dir.path());
    let (code, doc) = test_restore(&ws);
    assert_eq!(code, 0, "{doc:#}");
    // Restored under the name with U+FFFD for each such byte; `expect` matches it.
    assert_passed(&doc, "latin1.tar", 1);
    assert_passed(&doc, "latin1.zip", 1);
    // Two such names restore to one file, the later replacing the earlier as with any
    // repeated name; both entries were read and checked, and one file is counted.
    assert_passed(&doc, "collide.tar", 1);
    assert_passed(&doc, "collide.zip", 1);
    assert_nothing_escaped(&ws, &before);
}

#[test]
fn zip_local_headers_that_disagree_with_the_central_directory() {
    let ws = restore_workspace("");
    let data: &[u8] = b"hello, world\n";
    // Local header name differs (same length): a streaming unzip would write `../zz`.
    small_zip(&ws.path("backups/local-name.zip"), &[("a.txt", data)]);
    let p = ws.path("backups/local-name.zip");
    let mut bytes = std::fs::read(&p).unwrap();
    assert_eq!(&bytes[..4], b"PK\x03\x04");
    bytes[30..35].copy_from_slice(b"../zz");
    std::fs::write(&p, &bytes).unwrap();
    // Local header declares another uncompressed size (offset 22).
    small_zip(&ws.path("backups/local-size.zip"), &[("a.txt", data)]);
    let p = ws.path("backups/local-size.zip");
    let mut bytes = std::fs::read(&p).unwrap();
    bytes[22..26].copy_from_slice(&1_000_000u32.to_le_bytes());
    bytes[18..22].copy_from_slice(&1_000_000u32.to_le_bytes());
    std::fs::write(&p, &bytes).unwrap();
    // Central directory declares a larger, then a smaller, uncompressed size.
    for (name, size) in [("cd-bigger.zip", 1_000_000u32), ("cd-smaller.zip", 3)] {
        small_zip(&ws.path(&format!("backups/{name}")), &[("a.txt", data)]);
        let p = ws.path(&format!("backups/{name}"));
        let mut bytes = std::fs::read(&p).unwrap();
        let cd = bytes
            .windows(4)
            .position(|w| w == b"PK\x01\x02")
            .expect("central directory");
        bytes[cd + 24..cd + 28].copy_from_slice(&size.to_le_bytes());
        std::fs::write(&p, &bytes).unwrap();
    }
    settle(&ws);
    let before = listing(ws.dir.path());
    let (code, doc) = test_restore(&ws);
    assert_eq!(code, 2, "{doc:#}");
    for name in [
        "local-name.zip",
        "local-size.zip",
        "cd-bigger.zip",
        "cd-smaller.zip",
    ] {
        let detail = assert_failed(&doc, name, "archive_corrupt");
        eprintln!("{name}: {detail}");
    }
    assert!(!ws.path("zz").exists() && !ws.path("scratch/zz").exists());
    assert_nothing_escaped(&ws, &before);
}

#[test]
fn zip_entries_that_share_a_name_are_corrupt() {
    let ws = restore_workspace("");
    // Two entries named `a.txt` (as Python's zipfile writes after "Duplicate name"); the
    // zip crate keeps one entry per name, so a bad CRC in the first copy went unseen.
    for (name, first) in [
        ("dup-bad-first.zip", &b"First copy"[..]),
        ("dup-intact.zip", b"first copy"),
    ] {
        let path = ws.path(&format!("backups/{name}"));
        small_zip(&path, &[("a.txt", b"first copy"), ("b.txt", b"other copy")]);
        patch_all(&path, b"b.txt", b"a.txt");
        patch_all(&path, b"first copy", first);
    }
    settle(&ws);
    let before = listing(ws.dir.path());
    let (code, doc) = test_restore(&ws);
    assert_eq!(code, 2, "{doc:#}");
    for name in ["dup-bad-first.zip", "dup-intact.zip"] {
        let detail = assert_failed(&doc, name, "archive_corrupt");
        assert!(
            detail.contains("entries with the same name (2 entries under 1 names, e.g. \"a.txt\")"),
            "{detail}"
        );
    }
    assert_nothing_escaped(&ws, &before);
}

#[test]
fn concatenated_gzip_members_pass_and_trailing_garbage_is_corrupt() {
    let ws = restore_workspace("");
    let content = tar_bytes(&[
        (Regular, b"one.txt", b"", b"first file\n"),
        (Regular, b"two.txt", b"", &[b'2'; 5000]),
        (Regular, b"three.txt", b"", b"third\n"),
    ]);
    // One tar stream cut in three, each piece its own gzip member.
    let (a, rest) = content.split_at(700);
    let (b, c) = rest.split_at(3000);
    let multi = [gzip(a), gzip(b), gzip(c)].concat();
    write_backup(&ws, "members.tar.gz", &multi);
    write_backup(
        &ws,
        "garbage.tar.gz",
        &[multi.clone(), b"this is not gzip".to_vec()].concat(),
    );
    // A valid gzip header with nothing after it: a truncated member.
    write_backup(
        &ws,
        "half-member.tar.gz",
        &[multi.clone(), gzip(b"x")[..10].to_vec()].concat(),
    );
    // Zero padding after the last member (as tape blocking leaves): gzip -t warns only.
    write_backup(
        &ws,
        "zero-padded.tar.gz",
        &[multi.clone(), vec![0u8; 1024]].concat(),
    );
    write_backup(
        &ws,
        "garbage.log.gz",
        &[gzip(b"log line\n"), b"\x00\x01garbage".to_vec()].concat(),
    );
    settle(&ws);
    let before = listing(ws.dir.path());
    let (code, doc) = test_restore(&ws);
    assert_eq!(code, 2, "{doc:#}");
    assert_passed(&doc, "members.tar.gz", 3);
    assert_eq!(result(&doc, "members.tar.gz")["bytes"], 11 + 5000 + 6);
    for name in [
        "garbage.tar.gz",
        "half-member.tar.gz",
        "garbage.log.gz",
        "zero-padded.tar.gz",
    ] {
        let detail = assert_failed(&doc, name, "archive_corrupt");
        eprintln!("{name}: {detail}");
    }
    assert_nothing_escaped(&ws, &before);
}

#[test]
fn huge_declared_sizes_never_allocate_or_write_much() {
    let ws = restore_workspace("        max_bytes: 8MiB\n");
    // A regular file whose header declares 1 TiB, holding 10 bytes: truncated.
    let mut huge = header(Regular, b"huge.bin", b"", 1 << 40)
        .as_bytes()
        .to_vec();
    huge.extend_from_slice(&[b'x'; 10]);
    huge.resize(huge.len() + 502 + 1024, 0);
    write_backup(&ws, "huge.tar", &huge);
    write_backup(&ws, "huge.tar.gz", &gzip(&huge));
    // A GNU long name and a PAX header that declare 1 TiB and hold 512 MiB of zeros:
    // the tar parser reads such metadata into memory.
    for (name, kind) in [
        ("longname.tar.zst", tar::EntryType::GNULongName),
        ("pax.tar.zst", tar::EntryType::XHeader),
    ] {
        let h = header(kind, b"././@LongLink", b"", 1 << 40);
        write_backup(&ws, name, &zstd_with_zeros(h.as_bytes(), 512 << 20, &[]));
    }
    // A directory entry declaring 512 MiB of data, which the parser skips by reading.
    let mut skipped = header(Directory, b"dir/", b"", 512 << 20)
        .as_bytes()
        .to_vec();
    let mut tail = header(Regular, b"after.txt", b"", 2).as_bytes().to_vec();
    tail.extend_from_slice(b"ok");
    tail.resize(tail.len() + 510 + 1024, 0);
    skipped.truncate(512);
    write_backup(
        &ws,
        "skip.tar.zst",
        &zstd_with_zeros(&skipped, 512 << 20, &tail),
    );
    settle(&ws);
    let before = listing(ws.dir.path());
    let (run, rss_kib, took) = run_measured(&ws, &["--test-restore", "--format", "json"]);
    let doc = run.json();
    assert_eq!(run.code, 2, "{doc:#}");
    eprintln!(
        "huge declared sizes: {:.1} s of user CPU, peak RSS {} MiB\n{doc:#}",
        took.as_secs_f64(),
        rss_kib / 1024
    );
    for name in ["huge.tar", "huge.tar.gz"] {
        let detail = assert_failed(&doc, name, "archive_corrupt");
        assert!(detail.contains("huge.bin"), "{name}: {detail}");
    }
    for name in ["longname.tar.zst", "pax.tar.zst", "skip.tar.zst"] {
        assert_failed(&doc, name, "restore_limit_exceeded");
    }
    assert!(rss_kib < 150 * 1024, "peak RSS {rss_kib} KiB");
    assert_nothing_escaped(&ws, &before);
}

#[test]
fn oversized_tar_metadata_is_refused_also_under_the_default_limit() {
    // The default max_bytes is at least 1 GiB: metadata still may not take that much.
    let ws = restore_workspace("");
    let h = header(tar::EntryType::GNULongName, b"././@LongLink", b"", 1 << 40);
    write_backup(
        &ws,
        "longname.tar.zst",
        &zstd_with_zeros(h.as_bytes(), 256 << 20, &[]),
    );
    settle(&ws);
    let (run, rss_kib, _) = run_measured(&ws, &["--test-restore", "--format", "json"]);
    let doc = run.json();
    let detail = assert_failed(&doc, "longname.tar.zst", "archive_corrupt");
    assert!(detail.contains("metadata"), "{detail}");
    assert!(rss_kib < 150 * 1024, "peak RSS {rss_kib} KiB");
}

#[test]
fn a_64_mib_line_after_a_dump_footer_is_incomplete_in_bounded_memory() {
    let ws = restore_workspace("");
    // A mysqldump whose footer is followed by an INSERT of 64 MiB without a line end.
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(
        b"-- MySQL dump 10.13\nCREATE TABLE t (a int);\n-- Dump completed on 2026-11-21\nINSERT INTO t VALUES (",
    )
    .unwrap();
    let chunk = b"1,".repeat(1 << 19);
    for _ in 0..64 {
        gz.write_all(&chunk).unwrap();
    }
    write_backup(&ws, "long.sql.gz", &gz.finish().unwrap());
    settle(&ws);
    let before = listing(ws.dir.path());
    let (run, rss_kib, _) = run_measured(&ws, &["--test-restore", "--format", "json"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    let detail = assert_failed(&run.json(), "long.sql.gz", "dump_incomplete");
    assert!(
        detail.contains("followed by a line that starts an SQL statement (`INSERT`)")
            && !detail.contains("1,1,"),
        "{detail}"
    );
    assert!(rss_kib < 100 * 1024, "peak RSS {rss_kib} KiB");
    assert_nothing_escaped(&ws, &before);
}

// ---------------------------------------------------------------------------------------
// Item 5: hostile names in every output

const SCRIPT: &str = "<script>alert(1)</script>.sql";
const QUOTES: &str = "quote\"d'name.sql";
const NEWLINE: &str = "new\nline|pipe.sql";
const CR: &str = "cr\rname.sql";
const FORMULA: &str = "=cmd|' /C calc'!A0.tar";
const PLUS: &str = "+1-2.sql";
const AT: &str = "@SUM(A1).sql";

const HOSTILE: [&str; 7] = [SCRIPT, QUOTES, NEWLINE, CR, FORMULA, PLUS, AT];

/// Received HTTP bodies (Slack and webhook), by path.
struct HttpSink {
    server: Arc<tiny_http::Server>,
    port: u16,
    received: Arc<Mutex<Vec<(String, String)>>>,
}

impl HttpSink {
    fn start() -> HttpSink {
        let server = Arc::new(tiny_http::Server::http("127.0.0.1:0").unwrap());
        let port = server.server_addr().to_ip().unwrap().port();
        let received = Arc::new(Mutex::new(Vec::new()));
        let (s, r) = (server.clone(), received.clone());
        std::thread::spawn(move || {
            for mut request in s.incoming_requests() {
                let mut body = String::new();
                let _ = request.as_reader().read_to_string(&mut body);
                r.lock().unwrap().push((request.url().to_string(), body));
                let _ = request.respond(tiny_http::Response::from_string("ok"));
            }
        });
        HttpSink {
            server,
            port,
            received,
        }
    }

    fn bodies(&self, prefix: &str) -> Vec<String> {
        self.received
            .lock()
            .unwrap()
            .iter()
            .filter(|(url, _)| url.starts_with(prefix))
            .map(|(_, b)| b.clone())
            .collect()
    }
}

impl Drop for HttpSink {
    fn drop(&mut self) {
        self.server.unblock();
    }
}

/// Location `hostile.names-1` with 0-byte files under hostile names (each an
/// `empty_backup` naming its path), a truncated tar whose own name and inner entry name
/// are hostile, and a file whose name is not UTF-8.
fn names_workspace(alerts: &str) -> Workspace {
    let ws = Workspace::new();
    ws.write_config(&format!(
        "backups:\n  locations:\n    - name: hostile.names-1\n      path: files\n      \
         recursive: true\n      restore:\n        latest: 20\n        scratch_dir: scratch\n\
         reporting:\n  formats: [html, csv, json]\n  prometheus_textfile: metrics/bm.prom\n\
         logging:\n  file: logs/bm.log\n{alerts}"
    ));
    std::fs::create_dir_all(ws.path("scratch")).unwrap();
    let old = Utc::now() - Duration::days(1);
    for name in HOSTILE {
        if name != FORMULA {
            ws.write_file(&format!("files/{name}"), b"", old);
        }
    }
    let inner: &[u8] = b"<script>x</script>\n|=cmd|' /C calc'!A0";
    let mut tar = tar_bytes(&[(Regular, inner, b"", &[b'z'; 3000])]);
    tar.truncate(1500);
    ws.write_file(&format!("files/{FORMULA}"), &tar, old);
    let raw = ws.path("files").join(OsStr::from_bytes(b"caf\xe9.sql"));
    std::fs::write(&raw, b"latin-1").unwrap();
    set_mtime(&raw, old);
    ws
}

fn problems_by_path(doc: &Value) -> BTreeMap<String, Vec<Value>> {
    let mut out: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for p in doc["problems"].as_array().unwrap() {
        if let Some(path) = p["path"].as_str() {
            out.entry(path.to_string()).or_default().push(p.clone());
        }
    }
    out
}

/// A one-line human rendering of hostile text: no raw line breaks.
fn assert_one_line(what: &str, text: &str) {
    assert!(
        !text.contains('\n') && !text.contains('\r'),
        "{what} breaks the line: {text:?}"
    );
}

#[test]
fn hostile_names_are_escaped_in_json_reports_and_prometheus() {
    let ws = names_workspace("");
    let (run, doc) = ws.run_json(&["--monitor", "--test-restore", "--report"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    // The name that is not UTF-8 is skipped with a warning; everything else goes on.
    assert!(run.stderr.contains("not valid UTF-8"), "{}", run.stderr);
    let loc = &doc["locations"][0];
    assert_eq!(loc["backups_present"], HOSTILE.len(), "{doc:#}");
    // JSON: the exact names round-trip; messages stay one line.
    let by_path = problems_by_path(&doc);
    for name in HOSTILE {
        let problems = by_path
            .get(name)
            .unwrap_or_else(|| panic!("no problem for {name:?}: {doc:#}"));
        for p in problems {
            assert_one_line("a problem message", p["message"].as_str().unwrap());
        }
    }
    assert_eq!(by_path[FORMULA][0]["kind"], "archive_corrupt");
    let detail = result(&doc, FORMULA)["detail"]
        .as_str()
        .unwrap()
        .to_string();
    assert_one_line("a restore detail", &detail);
    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(ws.path("reports/latest.json")).unwrap())
            .expect("latest.json is valid JSON");
    let paths: Vec<&str> = report["backups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["path"].as_str().unwrap())
        .collect();
    for name in HOSTILE {
        assert!(paths.contains(&name), "{name:?} in {paths:?}");
    }
    // HTML: no markup from names, quotes escaped.
    let html = std::fs::read_to_string(ws.path("reports/latest.html")).unwrap();
    assert!(!html.contains("<script"), "a name leaked as markup");
    assert!(html.contains("&lt;script&gt;alert(1)&lt;"));
    assert!(!html.contains(QUOTES) && !html.contains("calc'!A0"));
    // CSV: parses back to the exact names, formulas defused.
    let csv_text = std::fs::read_to_string(ws.path("reports/latest.csv")).unwrap();
    let mut reader = csv::Reader::from_reader(csv_text.as_bytes());
    let header = reader.headers().unwrap().clone();
    let path_col = header.iter().position(|h| h == "path").unwrap();
    let mut csv_paths = Vec::new();
    for record in reader.records() {
        let record = record.expect("every CSV record parses");
        assert_eq!(record.len(), header.len());
        for cell in record.iter() {
            assert!(
                !cell.starts_with(['=', '+', '-', '@', '\t', '\r']),
                "formula cell {cell:?}"
            );
        }
        csv_paths.push(record[path_col].to_string());
    }
    for name in HOSTILE {
        let expected = if name.starts_with(['=', '+', '@']) {
            format!("'{name}")
        } else {
            name.to_string()
        };
        assert!(
            csv_paths.contains(&expected),
            "{expected:?} in {csv_paths:?}"
        );
    }
    // Prometheus: every sample line is valid exposition format.
    let prom = std::fs::read_to_string(ws.path("metrics/bm.prom")).unwrap();
    let mut samples = 0;
    for line in prom.lines() {
        if line.starts_with('#') {
            assert!(line.starts_with("# HELP ") || line.starts_with("# TYPE "));
            continue;
        }
        let (name, rest) = line.split_at(line.find(['{', ' ']).unwrap());
        assert!(
            name.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':'),
            "{line}"
        );
        let value = if let Some(labels) = rest.strip_prefix('{') {
            let end = labels.find("} ").expect("closed label set");
            let location = labels[..end].split(",severity=").next().unwrap_or_default();
            assert_eq!(location, "location=\"hostile.names-1\"", "{line}");
            &labels[end + 2..]
        } else {
            rest.trim_start()
        };
        value.parse::<f64>().unwrap_or_else(|_| panic!("{line}"));
        samples += 1;
    }
    assert!(samples >= 8, "{prom}");
}

#[test]
fn location_names_outside_the_allowed_set_are_refused() {
    for bad in ["<script>", "a\"b", "x|y", "=cmd", "new line"] {
        let ws = Workspace::new();
        let yaml = serde_json::to_string(bad).unwrap();
        ws.write_config(&format!(
            "backups:\n  locations:\n    - name: {yaml}\n      path: files\n"
        ));
        let run = ws.run(&["--check-config"]);
        assert_eq!(run.code, 3, "{bad:?}: {}", run.stdout);
        assert!(
            run.stderr.contains("name") || run.stdout.contains("name"),
            "{bad:?}: {}",
            run.stderr
        );
    }
}

#[test]
fn hostile_names_stay_on_their_line_in_text_and_nagios_output() {
    let ws = names_workspace("");
    let run = ws.run(&["--monitor", "--test-restore"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    for line in run.stdout.lines() {
        assert!(
            !line.starts_with("line|pipe") && !line.starts_with("name.sql"),
            "a name broke the text output:\n{}",
            run.stdout
        );
    }
    assert!(run.stdout.contains("new\\nline|pipe.sql"), "{}", run.stdout);
    assert!(!run.stdout.contains('\r'), "{:?}", run.stdout);
    let run = ws.run(&["--monitor", "--format", "nagios"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(!run.stdout.contains('\r'), "{:?}", run.stdout);
    let mut lines = run.stdout.lines();
    let first = lines.next().unwrap();
    let (text, perf) = first.split_once(" | ").expect("perfdata separator");
    assert!(text.starts_with("BACKUP CRITICAL - "), "{first}");
    assert!(!text.contains('|'), "{first}");
    assert!(perf.starts_with("'hostile.names-1_age'="), "{perf}");
    let problems = ws.run_json(&["--monitor"]).1["problems"]
        .as_array()
        .unwrap()
        .len();
    let long: Vec<&str> = lines.collect();
    assert_eq!(
        long.len(),
        problems,
        "one line per problem:\n{}",
        run.stdout
    );
    for l in long {
        assert!(
            l.starts_with("CRITICAL ") || l.starts_with("WARNING "),
            "{l}"
        );
        assert!(!l.contains('|'), "{l}");
    }
}

#[test]
fn hostile_names_are_escaped_in_slack_and_webhook_payloads() {
    let sink = HttpSink::start();
    let ws = names_workspace(&format!(
        "alerts:\n  timeout: 5s\n  log: {{ enabled: false }}\n  slack:\n    enabled: true\n    \
         webhook_url: http://127.0.0.1:{0}/slack/T0/B0/x\n  webhook:\n    enabled: true\n    \
         url: http://127.0.0.1:{0}/hook\n",
        sink.port
    ));
    let (run, doc) = ws.run_json(&["--monitor", "--test-restore", "--check-alerts"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert_eq!(doc["alerts"]["delivery_failures"], 0, "{doc:#}");
    let slack = sink.bodies("/slack");
    assert_eq!(slack.len(), 1, "{slack:?}");
    let payload: Value = serde_json::from_str(&slack[0]).expect("Slack payload is JSON");
    let text: String = payload["blocks"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|b| b["text"]["text"].as_str())
        .collect::<Vec<_>>()
        .join("\n");
    assert!(!text.contains("<script"), "{text}");
    assert!(text.contains("&lt;script&gt;alert(1)&lt;"), "{text}");
    for line in text.lines() {
        assert!(
            !line.starts_with("line|pipe"),
            "a name broke a line:\n{text}"
        );
    }
    let hook = sink.bodies("/hook");
    assert_eq!(hook.len(), 1);
    let payload: Value = serde_json::from_str(&hook[0]).expect("webhook payload is JSON");
    let lines: Vec<&Value> = payload["groups"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|g| g["alerts"].as_array().unwrap())
        .collect();
    for name in HOSTILE {
        let line = lines
            .iter()
            .find(|l| l["path"] == name)
            .unwrap_or_else(|| panic!("{name:?} in {payload:#}"));
        assert_one_line("an alert text", line["text"].as_str().unwrap());
        assert_one_line("an alert message", line["message"].as_str().unwrap());
    }
}

#[test]
fn hostile_names_are_escaped_in_email() {
    let importable = Command::new("python3")
        .args(["-c", "import aiosmtpd"])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !importable {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI=true but python3 cannot import aiosmtpd"
        );
        eprintln!("skipping: python3 cannot import aiosmtpd (pip install aiosmtpd)");
        return;
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let outdir = tempfile::tempdir().unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it/smtp_sink.py");
    let mut smtp = Command::new("python3")
        .arg(script)
        .arg(port.to_string())
        .arg(outdir.path())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + StdDuration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "the SMTP sink did not start");
        std::thread::sleep(StdDuration::from_millis(100));
    }
    let ws = names_workspace(&format!(
        "alerts:\n  timeout: 5s\n  log: {{ enabled: false }}\n  email:\n    enabled: true\n    \
         smtp_host: 127.0.0.1\n    smtp_port: {port}\n    security: none\n    \
         from: bm@test.local\n    to: [ops@test.local]\n"
    ));
    let (run, doc) = ws.run_json(&["--monitor", "--test-restore", "--check-alerts"]);
    let _ = smtp.kill();
    let _ = smtp.wait();
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert_eq!(doc["alerts"]["delivery_failures"], 0, "{doc:#}");
    let messages: Vec<Value> = std::fs::read_dir(outdir.path())
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .map(|p| serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap())
        .collect();
    assert_eq!(messages.len(), 1);
    let m = &messages[0];
    let html = m["html"].as_str().unwrap();
    assert!(!html.contains("<script"), "{html}");
    assert!(html.contains("&lt;script&gt;alert(1)&lt;"), "{html}");
    let text = m["text"].as_str().unwrap();
    assert!(text.contains(SCRIPT), "plain text shows the name as it is");
    for line in text.lines() {
        assert!(
            !line.starts_with("line|pipe") && !line.starts_with("name.sql"),
            "a name broke a line:\n{text}"
        );
    }
}
