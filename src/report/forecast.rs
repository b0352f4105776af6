//! How many more backups fit on a location's filesystem at the recent size trend.
//! Pure arithmetic; the inputs come from the store via `data`.

use serde::Serialize;

/// How many recent backups the trend is fitted on.
pub const RECENT: usize = 10;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Forecast {
    /// Bytes available for further backups: free space above the `min_free_space` reserve.
    pub usable_bytes: u64,
    /// Projected size of the next backup.
    pub next_size: u64,
    /// Bytes per backup by which sizes grow (negative: shrink) over the recent backups.
    pub growth_per_backup: i64,
    /// Backups that fit into `usable_bytes` at that trend.
    pub backups_fit: u64,
    /// `backups_fit` × the median interval between recent backups, in days.
    pub days_until_full: Option<f64>,
    /// `days_until_full` in words a person can plan with: days, months, years, and
    /// "more than 10 years" beyond that (further is not a forecast anyone can use).
    pub until_full: Option<String>,
}

/// How far ahead a forecast is worth stating, in days.
pub const HORIZON_DAYS: f64 = 3652.5;

/// A number of days in the unit a reader grasps: days, months or years, capped at the
/// horizon.
pub fn span_words(days: f64) -> String {
    if days < 1.0 {
        "less than a day".to_string()
    } else if days < 1.5 {
        "1 day".to_string()
    } else if days < 90.0 {
        format!("{days:.0} days")
    } else if days < 730.0 {
        format!("{:.0} months", days / 30.4)
    } else if days <= HORIZON_DAYS {
        format!("{:.0} years", days / 365.25)
    } else {
        "more than 10 years".to_string()
    }
}

/// `sizes` oldest first (at most the last [`RECENT`] are used), `interval_secs` the
/// typical time between backups. None without sizes.
///
/// A growing trend is extrapolated linearly (the k-th next backup is `next + k × growth`);
/// a flat or shrinking one counts every further backup as big as the projected next one,
/// never smaller than the smallest recent backup, so the forecast errs on the safe side.
pub fn forecast(usable_bytes: u64, sizes: &[u64], interval_secs: Option<i64>) -> Option<Forecast> {
    let recent = &sizes[sizes.len().saturating_sub(RECENT)..];
    let floor = (*recent.iter().min()?).max(1) as f64;
    let n = recent.len() as f64;
    let mean_x = (n - 1.0) / 2.0;
    let mean_y = recent.iter().map(|&s| s as f64).sum::<f64>() / n;
    let (mut cov, mut var) = (0.0, 0.0);
    for (i, &s) in recent.iter().enumerate() {
        let dx = i as f64 - mean_x;
        cov += dx * (s as f64 - mean_y);
        var += dx * dx;
    }
    let slope = if var > 0.0 { cov / var } else { 0.0 };
    let next = (mean_y + slope * (n - mean_x)).max(floor);
    let free = usable_bytes as f64;
    let fit = if slope > 0.0 {
        // k·next + slope·k(k−1)/2 ≤ free, solved for the largest integer k.
        let a = next - slope / 2.0;
        ((-a + (a * a + 2.0 * slope * free).sqrt()) / slope).floor()
    } else {
        (free / next).floor()
    };
    let backups_fit = fit.max(0.0) as u64;
    let days_until_full = interval_secs
        .filter(|&s| s > 0)
        .map(|s| (backups_fit as f64 * s as f64 / 86400.0 * 10.0).round() / 10.0);
    Some(Forecast {
        usable_bytes,
        next_size: next.round() as u64,
        growth_per_backup: slope.round() as i64,
        backups_fit,
        days_until_full,
        until_full: days_until_full.map(span_words),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flat_sizes_divide_the_free_space() {
        let f = forecast(1000, &[100, 100, 100], Some(86400)).unwrap();
        assert_eq!(
            (f.next_size, f.backups_fit, f.growth_per_backup),
            (100, 10, 0)
        );
        assert_eq!(f.days_until_full, Some(10.0));
    }

    #[test]
    fn growth_fits_fewer() {
        // Next sizes 40, 50, 60, 70 … : 40+50+60+70 = 220 ≤ 250 < 300.
        let f = forecast(250, &[10, 20, 30], None).unwrap();
        assert_eq!((f.next_size, f.growth_per_backup), (40, 10));
        assert_eq!(f.backups_fit, 4);
        assert_eq!(f.days_until_full, None);
    }

    #[test]
    fn shrinking_never_projects_below_the_smallest() {
        let f = forecast(100, &[50, 30, 10], None).unwrap();
        assert_eq!(f.next_size, 10);
        assert_eq!(f.backups_fit, 10);
    }

    #[test]
    fn far_futures_are_capped_in_words() {
        assert_eq!(span_words(0.4), "less than a day");
        assert_eq!(span_words(12.4), "12 days");
        assert_eq!(span_words(200.0), "7 months");
        assert_eq!(span_words(1000.0), "3 years");
        assert_eq!(span_words(3652.0), "10 years");
        assert_eq!(span_words(16_626_000.0), "more than 10 years");
        let f = forecast(u64::MAX / 4, &[10, 10], Some(86400)).unwrap();
        assert_eq!(f.until_full.as_deref(), Some("more than 10 years"));
    }

    #[test]
    fn nothing_to_go_on() {
        assert_eq!(forecast(100, &[], None), None);
        assert_eq!(forecast(0, &[5], None).unwrap().backups_fit, 0);
        assert_eq!(forecast(10, &[0, 0], None).unwrap().backups_fit, 10);
    }
}
