//! The typed result of one run: the state of each location, the problems in the run's
//! scope and what each operation did. `workflow` builds it; `output` renders it for
//! stdout and `report` into files. Its serde form is the `--format json` document
//! (docs/reference/json.md).
//!
//! Not for: judging. Nothing here reads the store or the disk.

use crate::alert;
use crate::config::LocationType;
use crate::problem::{Operation, Problem, SlotStart, Status};
use crate::restore;
use crate::verify;
use chrono::{DateTime, Utc};
use serde::{Serialize, Serializer};
use std::path::PathBuf;

/// The newest present backup of a location.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct LatestBackup {
    pub path: String,
    /// RFC 3339 in the configured zone.
    pub timestamp: String,
    pub size: u64,
}

/// One location as a run leaves it.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct LocationSummary {
    /// The host the location belongs to (`host:`).
    pub host: String,
    pub id: i64,
    pub name: String,
    #[serde(rename = "type", serialize_with = "location_type")]
    pub kind: LocationType,
    pub status: Status,
    pub health_score: Option<f64>,
    pub backups_present: u64,
    pub new_backups: u64,
    pub latest_backup: Option<LatestBackup>,
    /// Seconds since the newest backup's timestamp.
    pub latest_backup_age_seconds: Option<i64>,
    pub missing_slots: Vec<SlotStart>,
    /// When a `--monitor` run last judged this location (RFC 3339, configured zone).
    pub last_checked: Option<String>,
    /// Warning and critical ages in seconds for the plugin's perfdata: one and two
    /// periods plus grace, when the schedule has a regular period.
    #[serde(skip)]
    pub age_thresholds: Option<(u64, u64)>,
}

/// An open problem as a run shows it: the finding, its store id (`#12`), when it
/// opened, and what people decided about it. Derefs to the [`Problem`].
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct OpenProblem {
    /// The host the problem was found on.
    pub host: String,
    /// The store's id, stable while the problem is open (0: not stored).
    pub id: i64,
    #[serde(flatten)]
    pub problem: Problem,
    /// Acknowledged with `--ack` and not worse since: not alerted again.
    pub acknowledged: bool,
    /// A `--silence` in force covers it: not alerted, not counted for the exit code.
    pub silenced: bool,
    /// When it was first found, RFC 3339 in the configured zone.
    pub opened_at: String,
}

impl OpenProblem {
    /// A finding not (yet) in the store.
    pub fn unstored(problem: Problem, opened_at: DateTime<Utc>) -> OpenProblem {
        OpenProblem {
            host: String::new(),
            id: 0,
            problem,
            acknowledged: false,
            silenced: false,
            opened_at: opened_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        }
    }
}

impl std::ops::Deref for OpenProblem {
    type Target = Problem;
    fn deref(&self) -> &Problem {
        &self.problem
    }
}

/// How a location is named in a document's text: `host/name` in a view of other hosts
/// (`fleet`: [`Outcome::is_fleet_view`]; every row, the run's own host's too), the bare
/// name in a host's own run.
pub fn location_label(fleet: bool, host: &str, name: &str) -> String {
    if fleet && !host.is_empty() {
        format!("{host}/{name}")
    } else {
        name.to_string()
    }
}

/// What a problem's line says before its kind: its location's label and a space. A
/// problem of the run itself (`alert_delivery_failed`) has no location: nothing, or its
/// host in a view of other hosts (`web1 alert_delivery_failed: …`).
pub fn location_prefix(fleet: bool, host: &str, name: Option<&str>) -> String {
    match name {
        Some(name) => format!("{} ", location_label(fleet, host, name)),
        None if fleet && !host.is_empty() => format!("{host} "),
        None => String::new(),
    }
}

/// The last run the store recorded as finished (`--status`).
#[derive(Debug, Clone, Copy, Serialize, PartialEq)]
pub struct LastRun {
    #[serde(serialize_with = "utc_seconds")]
    pub started_at: DateTime<Utc>,
    #[serde(serialize_with = "utc_seconds")]
    pub finished_at: DateTime<Utc>,
    pub exit_code: i32,
}

/// The health thresholds the run judged with (for the plugin's perfdata).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Thresholds {
    pub warning: f64,
    pub critical: f64,
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds {
            warning: 0.8,
            critical: 0.5,
        }
    }
}

/// Everything one run found and did.
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    pub version: &'static str,
    /// The host that ran (`host:`; this machine's name before a config is read).
    pub host: String,
    #[serde(serialize_with = "utc_seconds")]
    pub started_at: DateTime<Utc>,
    #[serde(serialize_with = "utc_seconds")]
    pub finished_at: DateTime<Utc>,
    pub status: Status,
    pub exit_code: i32,
    pub operations: Vec<Operation>,
    pub overall_health: Option<f64>,
    pub locations: Vec<LocationSummary>,
    pub problems: Vec<OpenProblem>,
    pub verification: verify::Summary,
    pub restore_tests: restore::Summary,
    pub alerts: alert::Summary,
    /// Only `--status`: the last run that finished.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_run: Option<LastRun>,
    /// Only `--status`: alerts whose problem is still open.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub open_alerts: Option<Vec<alert::OpenAlert>>,
    pub reports: Vec<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(skip)]
    pub thresholds: Thresholds,
}

impl Outcome {
    pub fn new(started_at: DateTime<Utc>, operations: Vec<Operation>) -> Outcome {
        Outcome {
            version: env!("CARGO_PKG_VERSION"),
            host: crate::config::host_name(),
            started_at,
            finished_at: started_at,
            status: Status::Ok,
            exit_code: 0,
            operations,
            overall_health: None,
            locations: Vec::new(),
            problems: Vec::new(),
            verification: verify::Summary::default(),
            restore_tests: restore::Summary::default(),
            alerts: alert::Summary::default(),
            last_run: None,
            open_alerts: None,
            reports: Vec::new(),
            error: None,
            thresholds: Thresholds::default(),
        }
    }

    /// A run of `host` that could not judge (exit 3), with the cause.
    pub fn unknown(
        started_at: DateTime<Utc>,
        operations: Vec<Operation>,
        error: &str,
        host: &str,
    ) -> Outcome {
        let mut outcome = Outcome::new(started_at, operations);
        outcome.host = host.to_string();
        outcome.set_status(Status::Unknown);
        outcome.error = Some(error.to_string());
        outcome
    }

    /// Whether this is a view of other hosts (`--fleet`, `--host`): some location or
    /// problem belongs to a host other than the run's.
    pub fn is_fleet_view(&self) -> bool {
        let other = |h: &str| !h.is_empty() && h != self.host;
        self.locations.iter().any(|l| other(&l.host))
            || self.problems.iter().any(|p| other(&p.host))
    }

    /// The run's host, and the host of every location and problem that has none yet
    /// (a per-host run's are all its own).
    pub fn stamp_host(&mut self, host: &str) {
        self.host = host.to_string();
        for l in self.locations.iter_mut().filter(|l| l.host.is_empty()) {
            l.host = host.to_string();
        }
        for p in self.problems.iter_mut().filter(|p| p.host.is_empty()) {
            p.host = host.to_string();
        }
    }

    pub fn set_status(&mut self, status: Status) {
        self.status = status;
        self.exit_code = status.exit_code();
    }

    pub fn ran(&self, op: Operation) -> bool {
        self.operations.contains(&op)
    }
}

fn utc_seconds<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
}

fn location_type<S: Serializer>(t: &LocationType, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(t.as_str())
}

/// Health scores are shown to three decimals in every output.
pub fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// The mean of the scores there are (None when there are none).
pub fn mean(values: &[f64]) -> Option<f64> {
    (!values.is_empty()).then(|| values.iter().sum::<f64>() / values.len() as f64)
}
