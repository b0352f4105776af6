//! Hollow backups: a restore that passed but produced far less than the location's
//! restores usually produce (a schema-only database copy, a dump of 3 tables where the
//! usual one has 40). Pure: the history is handed in.
//!
//! Each measure — files, bytes, and for databases tables and rows — is compared with the
//! median of the same measure over the location's previous passed restores (at most
//! [`HISTORY`]); one below `(1 − max_size_drop) ×` that median is an anomaly.

use crate::store::Restored;

/// How many previous passed restores the usual is the median of.
pub const HISTORY: u32 = 5;

/// The measures of `now` that fell below `(1 − max_drop) ×` their median over `history`,
/// as one line for a problem's message; None when nothing did (or there is no history).
pub fn judge(now: &Restored, history: &[Restored], max_drop: f64) -> Option<String> {
    let keep = (1.0 - max_drop).clamp(0.0, 1.0);
    let mut fallen = Vec::new();
    let mut compare = |what: &str, value: u64, past: Vec<u64>| {
        if let Some(usual) = median(past)
            && (value as f64) < keep * usual as f64
        {
            fallen.push(format!("{value} {what} against a usual {usual}"));
        }
    };
    compare(
        "files",
        now.files,
        history.iter().map(|r| r.files).collect(),
    );
    compare(
        "bytes",
        now.bytes,
        history.iter().map(|r| r.bytes).collect(),
    );
    if let Some((tables, rows)) = now.database {
        let past: Vec<(u64, u64)> = history.iter().filter_map(|r| r.database).collect();
        compare("tables", tables, past.iter().map(|d| d.0).collect());
        compare("rows", rows, past.iter().map(|d| d.1).collect());
    }
    (!fallen.is_empty()).then(|| fallen.join(", "))
}

/// The median (the lower middle value of an even count); None for no values.
fn median(mut values: Vec<u64>) -> Option<u64> {
    if values.is_empty() {
        return None;
    }
    values.sort_unstable();
    Some(values[(values.len() - 1) / 2])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(files: u64, bytes: u64, database: Option<(u64, u64)>) -> Restored {
        Restored {
            files,
            bytes,
            database,
        }
    }

    #[test]
    fn a_restore_below_half_the_median_is_an_anomaly() {
        let history = [
            r(40, 400_000, Some((40, 9000))),
            r(40, 410_000, Some((40, 9100))),
            r(3, 1000, Some((3, 10))),
        ];
        let found = judge(&r(3, 12_000, Some((3, 0))), &history, 0.5).unwrap();
        assert!(found.contains("3 tables against a usual 40"), "{found}");
        assert!(found.contains("0 rows against a usual 9000"), "{found}");
        assert!(found.contains("12000 bytes"), "{found}");
        // Within the allowed drop: nothing.
        assert_eq!(
            judge(&r(39, 300_000, Some((39, 8000))), &history, 0.5),
            None
        );
    }

    #[test]
    fn no_history_no_judgement_and_databases_compare_only_with_databases() {
        assert_eq!(judge(&r(0, 0, None), &[], 0.5), None);
        let history = [r(10, 100, None)];
        assert_eq!(judge(&r(10, 100, Some((10, 0))), &history, 0.5), None);
    }

    #[test]
    fn median_takes_the_lower_middle() {
        assert_eq!(median(vec![5, 1, 3]), Some(3));
        assert_eq!(median(vec![4, 1, 3, 100]), Some(3));
        assert_eq!(median(vec![]), None);
    }
}
