//! Hashing many files at once: one worker per core, each hashing one file at a time from a
//! shared queue, largest first, so at most one buffer per core is in flight and a large
//! file starts early instead of finishing last. A progress bar (bytes, rate, ETA) is drawn
//! only when asked.

use super::hash::{Algos, Hashed, hash_file, hash_object};
use crate::source::Source;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::path::PathBuf;
use std::sync::Arc;
#[cfg(test)]
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

/// What to read: a file (through the hash loop tuned for files), or an object streamed
/// from its source.
#[derive(Clone)]
pub enum Target {
    File(PathBuf),
    Object {
        source: Arc<dyn Source>,
        rel: String,
    },
}

/// One file to hash.
#[derive(Clone)]
pub struct Work {
    pub target: Target,
    pub algos: Algos,
    /// Expected size, for scheduling and the progress bar.
    pub size: u64,
}

/// Results a worker hands over at once: handing each file's result to another thread on
/// its own would cost a wake-up (and, with more threads than cores, a context switch) per
/// file, which on many small files is more than the hashing.
const HAND_OVER: usize = 256;

/// Hash every file, handing the results to `done` (each with its index in `work`) in
/// groups from the hashing threads as they are ready, in no particular order. `done`
/// returns false to stop: files not yet started are then skipped.
pub fn hash_each(
    work: &[Work],
    progress: bool,
    done: impl Fn(Vec<(usize, Hashed)>) -> bool + Sync,
) {
    let mut order: Vec<usize> = (0..work.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(work[i].size));
    // Sizes come from listings (a server may claim 2^64 - 1 bytes): the total saturates.
    let total = work.iter().map(|w| w.size).fold(0, u64::saturating_add);
    let bar = progress_bar(total, progress);
    let next = AtomicUsize::new(0);
    let stop = AtomicBool::new(false);
    let workers = rayon::current_num_threads().clamp(1, work.len().max(1));
    let hidden = bar.is_hidden();
    let tick = |n: u64| {
        if !hidden {
            bar.inc(n)
        }
    };
    rayon::scope(|s| {
        for _ in 0..workers {
            s.spawn(|_| {
                let mut ready = Vec::new();
                while let Some(&i) = order.get(next.fetch_add(1, Ordering::Relaxed)) {
                    if stop.load(Ordering::Relaxed) {
                        return;
                    }
                    let w = &work[i];
                    let hashed = match &w.target {
                        Target::File(path) => hash_file(path, w.algos, &tick),
                        Target::Object { source, rel } => {
                            hash_object(&**source, rel, w.algos, &tick)
                        }
                    };
                    ready.push((i, hashed));
                    // Large files go first, so a group of them is handed over one by one.
                    if (ready.len() >= HAND_OVER || w.size >= 1 << 20)
                        && !done(std::mem::take(&mut ready))
                    {
                        stop.store(true, Ordering::Relaxed);
                    }
                }
                if !ready.is_empty() {
                    done(ready);
                }
            });
        }
    });
    bar.finish_and_clear();
}

/// Hash every file; the results are in the order of `work`.
#[cfg(test)]
pub fn hash_all(work: &[Work], progress: bool) -> Vec<Hashed> {
    let results: Vec<OnceLock<Hashed>> = work.iter().map(|_| OnceLock::new()).collect();
    hash_each(work, progress, |ready| {
        for (i, h) in ready {
            let _ = results[i].set(h);
        }
        true
    });
    results
        .into_iter()
        .map(|cell| cell.into_inner().expect("every file is hashed"))
        .collect()
}

fn progress_bar(total: u64, visible: bool) -> ProgressBar {
    if !visible {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
    if let Ok(style) = ProgressStyle::with_template(
        "verifying {wide_bar} {binary_bytes}/{binary_total_bytes} {binary_bytes_per_sec} ETA {eta}",
    ) {
        bar.set_style(style);
    }
    bar
}

#[cfg(test)]
mod tests {
    use super::super::hash::Outcome;
    use super::*;
    use crate::config::ChecksumAlgo;

    #[test]
    fn results_follow_the_input_order_whatever_the_schedule() {
        let dir = tempfile::tempdir().unwrap();
        let mut work = Vec::new();
        for (i, size) in [10usize, 5000, 1, 70000].into_iter().enumerate() {
            let p = dir.path().join(format!("f{i}"));
            std::fs::write(&p, vec![i as u8; size]).unwrap();
            work.push(Work {
                target: Target::File(p.clone()),
                algos: Algos {
                    sha256: true,
                    ..Algos::default()
                },
                size: size as u64,
            });
        }
        let out = hash_all(&work, false);
        for (i, (h, w)) in out.iter().zip(&work).enumerate() {
            let Outcome::Hashed { digests, stamp } = &h.outcome else {
                panic!("{i}: {:?}", h.outcome);
            };
            assert_eq!(stamp.size, w.size);
            let Target::File(path) = &w.target else {
                unreachable!()
            };
            let data = std::fs::read(path).unwrap();
            use sha2::Digest;
            let expected = super::super::hash::hex(&sha2::Sha256::digest(&data));
            assert_eq!(digests.get(ChecksumAlgo::Sha256), Some(&*expected));
        }
    }
}
