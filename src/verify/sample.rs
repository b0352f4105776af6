//! Which recorded backups a run re-hashes: ceil(`verify_sample` × present backups), at
//! least 1, over every present backup of the location whatever the analysis window (the
//! window narrows schedule, health and reports, never integrity). The newest backup is
//! always among them, and the other places go to a rotation ordered oldest-verified
//! first. When the sample is a single place and older backups exist, the rotation still
//! gets one place beside the newest, so no backup is starved. Over successive runs the
//! rotation covers every present backup in ceil((n − 1) / (k − 1)) runs for a sample of
//! k ≥ 2 places — ceil(1 / `verify_sample`) runs for many backups. Backups whose last
//! verification found them damaged are re-hashed every run on top of the sample, so a
//! repaired one is cleared by the next routine run. Pure: no I/O.

use chrono::{DateTime, Utc};
use std::collections::BTreeSet;

/// A backup that has a recorded checksum and can be re-verified.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Candidate {
    pub id: i64,
    pub ts: DateTime<Utc>,
    pub last_verified_at: Option<DateTime<Utc>>,
    /// An integrity problem of this backup is open: re-hashed every run until it closes.
    pub suspect: bool,
}

/// How many places a sample of `len` present backups gets.
pub fn rotation_size(fraction: f64, len: usize) -> usize {
    // The epsilon keeps 0.15 × 20 (= 3.0000000000000004 in floating point) at 3.
    let n = (fraction * len as f64 - 1e-9).ceil();
    (n.max(1.0) as usize).min(len.max(1))
}

/// The ids to re-hash this run. `newest` is the newest present backup (by timestamp),
/// re-hashed whenever it is a candidate; `present` counts the location's present backups
/// (the sample's size is a fraction of them).
pub fn choose(
    candidates: &[Candidate],
    newest: Option<i64>,
    present: usize,
    fraction: f64,
) -> BTreeSet<i64> {
    let mut order: Vec<&Candidate> = candidates.iter().collect();
    // Never verified first, then the longest ago, then the oldest backup.
    order.sort_by_key(|c| (c.last_verified_at, c.ts, c.id));
    let places = if order.is_empty() {
        0
    } else {
        rotation_size(fraction, present.max(order.len()))
    };
    let newest = newest.filter(|id| candidates.iter().any(|c| c.id == *id));
    // The newest takes one of the sample's places; the rotation keeps at least one.
    let rotation = if newest.is_some() {
        places.saturating_sub(1).max(1)
    } else {
        places
    };
    let mut chosen: BTreeSet<i64> = order
        .iter()
        .filter(|c| Some(c.id) != newest && !c.suspect)
        .take(rotation)
        .map(|c| c.id)
        .collect();
    chosen.extend(newest);
    chosen.extend(candidates.iter().filter(|c| c.suspect).map(|c| c.id));
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
                suspect: false,
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
    fn full_sample_takes_every_present_backup() {
        let c = backups(5, Some(10));
        let chosen = choose(&c, Some(5), c.len(), 1.0);
        assert_eq!(chosen.len(), 5);
    }

    #[test]
    fn rotation_prefers_never_then_longest_ago_verified() {
        let mut c = backups(4, Some(50));
        c[2].last_verified_at = None;
        c[0].last_verified_at = Some(t(60));
        let chosen = choose(&c, Some(4), c.len(), 0.5);
        // 2 places: the newest (4) and id 3 (never verified).
        assert_eq!(chosen.into_iter().collect::<Vec<_>>(), vec![3, 4]);
        // 3 places: the newest, id 3, then id 2 (verified at 50, an older backup than 4).
        let chosen = choose(&c, Some(4), c.len(), 0.75);
        assert_eq!(chosen.into_iter().collect::<Vec<_>>(), vec![2, 3, 4]);
    }

    #[test]
    fn sample_counts_the_newest_and_never_starves_the_rotation() {
        // 16 backups at 0.1: 2 places, newest + 1 (12.5% of the bytes, not 3 files).
        let c = backups(16, Some(10));
        assert_eq!(choose(&c, Some(16), c.len(), 0.1).len(), 2);
        // A single place still re-hashes one older backup beside the newest.
        let chosen = choose(&c, Some(16), c.len(), 0.01);
        assert_eq!(chosen.into_iter().collect::<Vec<_>>(), vec![1, 16]);
    }

    #[test]
    fn rotation_covers_every_present_backup() {
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
                let chosen = choose(&c, Some(n), c.len(), fraction);
                for b in c.iter_mut().filter(|b| chosen.contains(&b.id)) {
                    b.last_verified_at = Some(t(1000 + run));
                }
                covered.extend(chosen);
            }
            assert_eq!(covered.len() as i64, n, "{n} backups, sample {fraction}");
        }
    }

    #[test]
    fn the_sample_spans_every_present_backup() {
        // 30 backups, 10% of them: 3 places, newest + the 2 verified longest ago, however
        // old they are.
        let mut c = backups(30, Some(10));
        c[0].last_verified_at = Some(t(5));
        c[17].last_verified_at = Some(t(6));
        let chosen = choose(&c, Some(30), c.len(), 0.1);
        assert_eq!(chosen.into_iter().collect::<Vec<_>>(), vec![1, 18, 30]);
        // Backups that have no checksum yet count as present: the sample grows with them.
        assert_eq!(choose(&c[..10], Some(10), 30, 0.1).len(), 3);
    }

    #[test]
    fn suspects_are_rehashed_every_run_beside_the_sample() {
        let mut c = backups(10, Some(10));
        c[2].suspect = true;
        c[4].suspect = true;
        c[4].last_verified_at = Some(t(900));
        let chosen = choose(&c, Some(10), c.len(), 0.1);
        // 1 place: the newest, plus one rotation place (id 1), plus both suspects.
        assert_eq!(chosen.into_iter().collect::<Vec<_>>(), vec![1, 3, 5, 10]);
    }

    #[test]
    fn newest_that_is_not_a_candidate_is_not_added() {
        let c = backups(3, Some(10));
        let chosen = choose(&c, Some(99), c.len(), 0.1);
        assert_eq!(chosen.len(), 1, "{chosen:?}");
    }
}
