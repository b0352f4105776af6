//! Which recorded backups a run re-hashes: ceil(`verify_sample` × backups
//! in the window), at least 1, the newest backup always among them, and the other places
//! going to a rotation ordered oldest-verified first. When the sample is a single place
//! and older backups exist, the rotation still gets one place beside the newest, so no
//! backup is starved. Over successive runs the rotation covers every backup of the window
//! in ceil((n − 1) / (k − 1)) runs for a sample of k ≥ 2 places — ceil(1 / `verify_sample`)
//! runs for large windows. Pure: no I/O, "now" comes in as the window start.

use chrono::{DateTime, Utc};
use std::collections::BTreeSet;

/// A backup that has a recorded checksum and can be re-verified.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Candidate {
    pub id: i64,
    pub ts: DateTime<Utc>,
    pub last_verified_at: Option<DateTime<Utc>>,
}

/// How many rotation places a window of `len` backups gets.
pub fn rotation_size(fraction: f64, len: usize) -> usize {
    // The epsilon keeps 0.15 × 20 (= 3.0000000000000004 in floating point) at 3.
    let n = (fraction * len as f64 - 1e-9).ceil();
    (n.max(1.0) as usize).min(len.max(1))
}

/// The ids to re-hash this run. `newest` is the newest present backup (by timestamp),
/// re-hashed whenever it is a candidate, wherever it lies.
pub fn choose(
    candidates: &[Candidate],
    newest: Option<i64>,
    window_start: DateTime<Utc>,
    fraction: f64,
) -> BTreeSet<i64> {
    let mut window: Vec<&Candidate> = candidates.iter().filter(|c| c.ts >= window_start).collect();
    // Never verified first, then the longest ago, then the oldest backup.
    window.sort_by_key(|c| (c.last_verified_at, c.ts, c.id));
    let places = if window.is_empty() {
        0
    } else {
        rotation_size(fraction, window.len())
    };
    let newest = newest.filter(|id| candidates.iter().any(|c| c.id == *id));
    let newest_in_window = newest.is_some_and(|id| window.iter().any(|c| c.id == id));
    // The newest takes one of the sample's places; the rotation keeps at least one.
    let rotation = if newest_in_window {
        places.saturating_sub(1).max(1)
    } else {
        places
    };
    let mut chosen: BTreeSet<i64> = window
        .iter()
        .filter(|c| Some(c.id) != newest)
        .take(rotation)
        .map(|c| c.id)
        .collect();
    chosen.extend(newest);
    chosen
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn t(s: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(s, 0).unwrap()
    }

    fn backups(n: i64, verified_at: Option<i64>) -> Vec<Candidate> {
        (1..=n)
            .map(|i| Candidate {
                id: i,
                ts: t(i * 100),
                last_verified_at: verified_at.map(t),
            })
            .collect()
    }

    #[test]
    fn rotation_size_rounds_up_and_is_at_least_one() {
        assert_eq!(rotation_size(1.0, 7), 7);
        assert_eq!(rotation_size(0.1, 16), 2);
        assert_eq!(rotation_size(0.15, 20), 3);
        assert_eq!(rotation_size(0.01, 5), 1);
        assert_eq!(rotation_size(0.5, 0), 1);
    }

    #[test]
    fn full_sample_takes_every_backup_in_the_window() {
        let c = backups(5, Some(10));
        let chosen = choose(&c, Some(5), t(0), 1.0);
        assert_eq!(chosen.len(), 5);
    }

    #[test]
    fn rotation_prefers_never_then_longest_ago_verified() {
        let mut c = backups(4, Some(50));
        c[2].last_verified_at = None;
        c[0].last_verified_at = Some(t(60));
        let chosen = choose(&c, Some(4), t(0), 0.5);
        // 2 places: the newest (4) and id 3 (never verified).
        assert_eq!(chosen.into_iter().collect::<Vec<_>>(), vec![3, 4]);
        // 3 places: the newest, id 3, then id 2 (verified at 50, an older backup than 4).
        let chosen = choose(&c, Some(4), t(0), 0.75);
        assert_eq!(chosen.into_iter().collect::<Vec<_>>(), vec![2, 3, 4]);
    }

    #[test]
    fn sample_counts_the_newest_and_never_starves_the_rotation() {
        // 16 backups at 0.1: 2 places, newest + 1 (12.5% of the bytes, not 3 files).
        let c = backups(16, Some(10));
        assert_eq!(choose(&c, Some(16), t(0), 0.1).len(), 2);
        // A single place still re-hashes one older backup beside the newest.
        let chosen = choose(&c, Some(16), t(0), 0.01);
        assert_eq!(chosen.into_iter().collect::<Vec<_>>(), vec![1, 16]);
    }

    #[test]
    fn rotation_covers_every_backup_of_the_window() {
        for (n, fraction) in [
            (10, 0.2f64),
            (16, 0.1),
            (7, 0.15),
            (5, 0.4),
            (30, 0.34),
            (1000, 0.1),
        ] {
            let mut c = backups(n, Some(0));
            let mut covered = BTreeSet::new();
            let places = rotation_size(fraction, n as usize) as i64;
            let runs = (n - 1 + places.max(2) - 2) / (places - 1).max(1);
            for run in 1..=runs {
                let chosen = choose(&c, Some(n), t(0), fraction);
                for b in c.iter_mut().filter(|b| chosen.contains(&b.id)) {
                    b.last_verified_at = Some(t(1000 + run));
                }
                covered.extend(chosen);
            }
            assert_eq!(covered.len() as i64, n, "{n} backups, sample {fraction}");
        }
    }

    #[test]
    fn window_limits_the_rotation_but_not_the_newest() {
        let c = backups(6, Some(10));
        // Window starts after backup 4: only 5 and 6 are in it.
        let chosen = choose(&c, Some(6), t(450), 1.0);
        assert_eq!(chosen.into_iter().collect::<Vec<_>>(), vec![5, 6]);
        // An empty window still re-hashes the newest.
        let chosen = choose(&c, Some(6), t(10_000), 0.5);
        assert_eq!(chosen.into_iter().collect::<Vec<_>>(), vec![6]);
    }

    #[test]
    fn newest_that_is_not_a_candidate_is_not_added() {
        let c = backups(3, Some(10));
        let chosen = choose(&c, Some(99), t(0), 0.1);
        assert_eq!(chosen.len(), 1, "{chosen:?}");
    }
}
