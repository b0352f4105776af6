//! What one run shares between its operations: config, store, the clock, the window and
//! the selected locations. Operations receive a `RunContext` and return their results;
//! they never read the clock or the CLI themselves.

use crate::config::{Config, Location};
use crate::store::Store;
use chrono::{DateTime, Utc};

/// A configured location together with its id in the store.
#[derive(Debug, Clone, Copy)]
pub struct SelectedLocation<'a> {
    pub id: i64,
    pub config: &'a Location,
}

pub struct RunContext<'a> {
    pub config: &'a Config,
    pub store: &'a Store,
    /// "Now" for every judgement of this run (see `BACKUP_MONITOR_NOW`).
    pub now: DateTime<Utc>,
    pub run_id: i64,
    /// This host's name, as runs, alerts and scratch databases name it.
    pub host: String,
    /// Recent log lines by location, for alerts that include them.
    pub recent_log: crate::recent_log::RecentLog,
    pub locations: Vec<SelectedLocation<'a>>,
    /// `--days N`: the window is [now − N × 24 h, now].
    pub days: u32,
    /// Draw progress bars (stderr is a terminal and `--no-progress` is absent).
    pub progress: bool,
}

impl RunContext<'_> {
    pub fn window_start(&self) -> DateTime<Utc> {
        self.now - chrono::Duration::days(i64::from(self.days))
    }

    pub fn tz(&self) -> chrono_tz::Tz {
        self.config.timezone.0
    }

    /// Today's date (YYYY-MM-DD) in the configured zone: the key of daily figures.
    pub fn today(&self) -> String {
        self.now
            .with_timezone(&self.tz())
            .format("%Y-%m-%d")
            .to_string()
    }

    /// The date of `t` in the configured zone.
    pub fn day_in_zone(&self, t: DateTime<Utc>) -> chrono::NaiveDate {
        t.with_timezone(&self.tz()).date_naive()
    }

    /// A time for people in the configured zone: `2026-11-18 02:00`.
    pub fn local_short(&self, t: DateTime<Utc>) -> String {
        t.with_timezone(&self.tz())
            .format("%Y-%m-%d %H:%M")
            .to_string()
    }

    /// RFC 3339 in the configured zone, as slots and report times are shown.
    pub fn local_rfc3339(&self, t: DateTime<Utc>) -> String {
        t.with_timezone(&self.tz())
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, false)
    }
}
