//! The health score: 0.5 × backup success + 0.3 × verification pass + 0.2 ×
//! restore pass, components with nothing to measure dropping out and the rest rescaled.
//! Pure scoring here; `assess` gathers the inputs from the store, and [`step`] is the
//! health step of a run: score, record the day's figures, judge `health_degraded`.
//!
//! Not for: the other problem kinds (each operation judges its own).

use crate::config::{Config, Location};
use crate::outcome::Thresholds;
use crate::problem::{Kind, Operation, Problem, Severity};
use crate::run::RunContext;
use crate::store::{DailyHealth, JudgedCounts};
use anyhow::Result;
use chrono::{DateTime, Utc};
use std::collections::HashMap;

/// The configured thresholds: under `warning` a location warns, under `critical` it is
/// critical.
pub fn thresholds(config: &Config) -> Thresholds {
    Thresholds {
        warning: config.monitoring.health_warning.0,
        critical: config.monitoring.health_critical.0,
    }
}

/// The health step of a run: score each selected location over the window and record
/// today's figures; when `judge` (the run reports), open or close its
/// `health_degraded`. Returns each location's score by store id.
pub fn step(ctx: &RunContext, judge: bool) -> Result<HashMap<i64, Option<f64>>> {
    let t = thresholds(ctx.config);
    let today = ctx.today();
    let mut scores = HashMap::new();
    let ids: Vec<i64> = ctx.locations.iter().map(|s| s.id).collect();
    let counts = ctx.store.judged_counts(&ids, ctx.window_start())?;
    ctx.store.read_backup_timestamps(&ids)?;
    let mut figures = Vec::with_capacity(ids.len());
    // A location that cannot be read or holds no backups scores 0.
    let zeroed: std::collections::HashSet<i64> = ctx
        .store
        .open_problems(Some(&[Operation::Monitor]), Some(&ids))?
        .iter()
        .filter(|p| matches!(p.problem.kind, Kind::LocationUnavailable | Kind::NoBackups))
        .filter_map(|p| p.location_id)
        .collect();
    for sel in &ctx.locations {
        let loc = sel.config;
        // Schedule judging needs only when each backup was made.
        let timestamps = ctx.store.backup_timestamps(sel.id)?;
        let zeroed = zeroed.contains(&sel.id);
        let assessment = assess(
            loc,
            counts.get(&sel.id).copied().unwrap_or_default(),
            &timestamps,
            ctx.window_start(),
            ctx.now,
            zeroed,
        );
        figures.push((sel.id, assessment.daily(&today)));
        if judge {
            let found: Vec<Problem> = assessment
                .problem(&loc.name, t.warning, t.critical)
                .into_iter()
                .collect();
            ctx.store.sync_problems(
                Operation::Report,
                Some(sel.id),
                &found,
                // Only what this judged: the location's `monitor_stale` (a problem
                // of the report too) is the staleness judgement's to resolve.
                &|p| p.kind == Kind::HealthDegraded,
                ctx.now,
            )?;
        }
        scores.insert(sel.id, assessment.score);
    }
    ctx.store.record_daily_healths(&today, &figures, ctx.now)?;
    Ok(scores)
}

/// Rates in [0, 1]; None when there was nothing to measure.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Components {
    pub backup_rate: Option<f64>,
    pub verify_rate: Option<f64>,
    pub restore_rate: Option<f64>,
}

/// Weighted score; None when every component dropped out.
pub fn score(c: Components) -> Option<f64> {
    let parts = [
        (0.5, c.backup_rate),
        (0.3, c.verify_rate),
        (0.2, c.restore_rate),
    ];
    let weight: f64 = parts
        .iter()
        .filter(|(_, r)| r.is_some())
        .map(|(w, _)| w)
        .sum();
    if weight == 0.0 {
        return None;
    }
    let total: f64 = parts.iter().filter_map(|(w, r)| r.map(|r| w * r)).sum();
    Some((total / weight).clamp(0.0, 1.0))
}

fn rate(passed: u64, total: u64) -> Option<f64> {
    (total > 0).then(|| passed as f64 / total as f64)
}

/// Status word for a score against the thresholds.
pub fn status_of(score: Option<f64>, warning: f64, critical: f64) -> &'static str {
    match score {
        None => "unknown",
        Some(s) if s < critical => "critical",
        Some(s) if s < warning => "warning",
        Some(_) => "ok",
    }
}

/// One location's assessment over the window.
#[derive(Debug, Clone, PartialEq)]
pub struct Assessment {
    pub components: Components,
    pub score: Option<f64>,
    /// The score is 0 because the location cannot be read or holds no backup, whatever
    /// its rates.
    pub unreadable_or_empty: bool,
}

/// Score a location from its judged verification and restore counts in the window and
/// the times its backups were made (every backup
/// ever recorded, deleted ones included). `unavailable_or_empty` forces 0.
pub fn assess(
    loc: &Location,
    counts: JudgedCounts,
    timestamps: &[DateTime<Utc>],
    window_start: DateTime<Utc>,
    now: DateTime<Utc>,
    unavailable_or_empty: bool,
) -> Assessment {
    let oldest = timestamps.iter().min().copied();
    let judged = loc
        .schedule
        .judge_standing(window_start, now, oldest, timestamps);
    let satisfied = judged.iter().filter(|j| j.satisfied).count() as u64;
    let (vp, vt) = counts.verifications;
    let (rp, rt) = counts.restore_tests;
    let components = Components {
        backup_rate: rate(satisfied, judged.len() as u64),
        verify_rate: rate(vp, vt),
        restore_rate: rate(rp, rt),
    };
    let score = if unavailable_or_empty {
        Some(0.0)
    } else {
        score(components)
    };
    Assessment {
        components,
        score,
        unreadable_or_empty: unavailable_or_empty,
    }
}

impl Assessment {
    pub fn daily(&self, day: &str) -> DailyHealth {
        DailyHealth {
            day: day.to_string(),
            score: self.score,
            backup_rate: self.components.backup_rate,
            verify_rate: self.components.verify_rate,
            restore_rate: self.components.restore_rate,
        }
    }

    /// `health_degraded` when the score is under a threshold.
    pub fn problem(&self, location: &str, warning: f64, critical: f64) -> Option<Problem> {
        let s = self.score?;
        let severity = if s < critical {
            Severity::Critical
        } else if s < warning {
            Severity::Warning
        } else {
            return None;
        };
        let threshold = if severity == Severity::Critical {
            critical
        } else {
            warning
        };
        Some(Problem::new(
            Kind::HealthDegraded,
            severity,
            location,
            format!(
                "health score {s:.2} is below {threshold:.2}{}",
                match self.unreadable_or_empty {
                    // Its rates (100% of the few checks left) would read as a contradiction.
                    true => " (the location cannot be read or holds no backup)".to_string(),
                    false => self.describe_components(),
                }
            ),
        ))
    }

    fn describe_components(&self) -> String {
        let c = self.components;
        let parts: Vec<String> = [
            ("backups", c.backup_rate),
            ("verification", c.verify_rate),
            ("restore", c.restore_rate),
        ]
        .iter()
        .filter_map(|(n, r)| r.map(|r| format!("{n} {:.0}%", r * 100.0)))
        .collect();
        if parts.is_empty() {
            String::new()
        } else {
            format!(" ({})", parts.join(", "))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weights_and_drop_out() {
        let all = Components {
            backup_rate: Some(1.0),
            verify_rate: Some(0.5),
            restore_rate: Some(0.0),
        };
        assert!((score(all).unwrap() - 0.65).abs() < 1e-9);
        let no_restore = Components {
            backup_rate: Some(1.0),
            verify_rate: Some(0.5),
            restore_rate: None,
        };
        assert!((score(no_restore).unwrap() - (0.5 + 0.15) / 0.8).abs() < 1e-9);
        let only_backups = Components {
            backup_rate: Some(0.6),
            ..Default::default()
        };
        assert!((score(only_backups).unwrap() - 0.6).abs() < 1e-9);
        assert_eq!(score(Components::default()), None);
    }

    #[test]
    fn thresholds() {
        assert_eq!(status_of(Some(0.9), 0.8, 0.5), "ok");
        assert_eq!(status_of(Some(0.8), 0.8, 0.5), "ok");
        assert_eq!(status_of(Some(0.7), 0.8, 0.5), "warning");
        assert_eq!(status_of(Some(0.4), 0.8, 0.5), "critical");
        assert_eq!(status_of(None, 0.8, 0.5), "unknown");
        let a = Assessment {
            components: Components::default(),
            score: Some(0.4),
            unreadable_or_empty: false,
        };
        assert_eq!(
            a.problem("x", 0.8, 0.5).unwrap().severity,
            Severity::Critical
        );
        let a = Assessment {
            components: Components::default(),
            score: None,
            unreadable_or_empty: false,
        };
        assert!(a.problem("x", 0.8, 0.5).is_none());
    }
}
