//! The one `Problem` type every operation reports, and the contract's problem kinds.
//!
//! Kinds and severities are stable interfaces: their `as_str` names appear in
//! JSON, reports, alerts and the store. Not for: deciding *when* a problem exists — each
//! operation judges that itself.

use chrono::{DateTime, FixedOffset, Utc};
use serde::Serialize;
use std::fmt;

/// How bad a problem is. Ordered: `Warning < Critical`.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    strum::IntoStaticStr,
    strum::EnumString,
    strum::Display,
)]
#[serde(rename_all = "lowercase")]
#[strum(serialize_all = "lowercase")]
pub enum Severity {
    Warning,
    Critical,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        self.into()
    }

    pub fn parse(s: &str) -> Option<Severity> {
        s.parse().ok()
    }
}

/// The verdict of a run, a location or a set of problems, in the monitoring-plugin
/// convention: each status is one exit code.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Default,
    Serialize,
    strum::IntoStaticStr,
    strum::Display,
)]
#[serde(rename_all = "lowercase")]
#[strum(serialize_all = "lowercase")]
pub enum Status {
    #[default]
    Ok,
    Warning,
    Critical,
    Unknown,
}

impl Status {
    /// The worst severity among `problems` (ok when there are none).
    pub fn of<'a>(problems: impl IntoIterator<Item = &'a Problem>) -> Status {
        match problems.into_iter().map(|p| p.severity).max() {
            None => Status::Ok,
            Some(Severity::Warning) => Status::Warning,
            Some(Severity::Critical) => Status::Critical,
        }
    }

    /// The process exit code: 0 ok, 1 warning, 2 critical, 3 unknown.
    pub fn exit_code(self) -> i32 {
        match self {
            Status::Ok => 0,
            Status::Warning => 1,
            Status::Critical => 2,
            Status::Unknown => 3,
        }
    }

    pub fn as_str(self) -> &'static str {
        self.into()
    }

    /// Upper case, as monitoring plugins print it (`BACKUP CRITICAL - …`).
    pub fn plugin_word(self) -> &'static str {
        match self {
            Status::Ok => "OK",
            Status::Warning => "WARNING",
            Status::Critical => "CRITICAL",
            Status::Unknown => "UNKNOWN",
        }
    }
}

macro_rules! kinds {
    ($($variant:ident => $name:literal, $op:ident;)*) => {
        /// A problem kind (see docs/reference/problems.md). The names are stable: they
        /// appear in JSON, reports, alerts and the store.
        #[derive(
            Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord,
            strum::IntoStaticStr, strum::EnumString, strum::Display, strum::VariantArray,
        )]
        pub enum Kind { $(#[strum(serialize = $name)] $variant),* }

        impl Kind {
            /// The operation that judges (opens and closes) problems of this kind.
            pub fn operation(self) -> Operation {
                match self { $(Kind::$variant => Operation::$op),* }
            }
        }
    };
}

kinds! {
    LocationUnavailable => "location_unavailable", Monitor;
    NoBackups => "no_backups", Monitor;
    MissingBackup => "missing_backup", Monitor;
    EmptyBackup => "empty_backup", Monitor;
    UndersizedBackup => "undersized_backup", Monitor;
    SizeAnomaly => "size_anomaly", Monitor;
    FutureTimestamp => "future_timestamp", Monitor;
    TooFewBackups => "too_few_backups", Monitor;
    RetentionExceeded => "retention_exceeded", Monitor;
    DeletedBeforeRetention => "deleted_before_retention", Monitor;
    LowDiskSpace => "low_disk_space", Monitor;
    UnreadablePath => "unreadable_path", Monitor;
    BackupJobFailed => "backup_job_failed", Monitor;
    ChecksumMismatch => "checksum_mismatch", Verify;
    SidecarMismatch => "sidecar_mismatch", Verify;
    SidecarInvalid => "sidecar_invalid", Verify;
    ModifiedAfterBackup => "modified_after_backup", Verify;
    ArchiveCorrupt => "archive_corrupt", TestRestore;
    UnsafeArchiveEntry => "unsafe_archive_entry", TestRestore;
    RestoreLimitExceeded => "restore_limit_exceeded", TestRestore;
    RestoreFailed => "restore_failed", TestRestore;
    DumpIncomplete => "dump_incomplete", TestRestore;
    RestoreUntested => "restore_untested", TestRestore;
    RestoreAnomaly => "restore_anomaly", TestRestore;
    HealthDegraded => "health_degraded", Report;
    MonitorStale => "monitor_stale", Report;
    AlertDeliveryFailed => "alert_delivery_failed", CheckAlerts;
}

impl Kind {
    pub const ALL: &'static [Kind] = <Kind as strum::VariantArray>::VARIANTS;

    /// The stable name, e.g. `missing_backup`.
    pub fn as_str(self) -> &'static str {
        self.into()
    }

    pub fn parse(s: &str) -> Option<Kind> {
        s.parse().ok()
    }

    /// Which `monitoring.alert_on_*` switch covers this kind (None: always alerts).
    pub fn alert_switch(self) -> Option<AlertSwitch> {
        if self == Kind::MonitorStale {
            return Some(AlertSwitch::Failure);
        }
        match self.operation() {
            Operation::Monitor => Some(AlertSwitch::Failure),
            Operation::Verify => Some(AlertSwitch::Verification),
            Operation::TestRestore => Some(AlertSwitch::Restore),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlertSwitch {
    Failure,
    Verification,
    Restore,
}

impl Serialize for Kind {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// The operations of one run, in the order they run.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    strum::IntoStaticStr,
    strum::EnumString,
    strum::Display,
    strum::VariantArray,
)]
#[serde(rename_all = "kebab-case")]
#[strum(serialize_all = "kebab-case")]
pub enum Operation {
    Monitor,
    Verify,
    TestRestore,
    Report,
    CheckAlerts,
    Status,
}

impl Operation {
    pub const ALL: &'static [Operation] = <Operation as strum::VariantArray>::VARIANTS;

    /// The flag name, as used in the JSON `operations` array.
    pub fn as_str(self) -> &'static str {
        self.into()
    }

    pub fn parse(s: &str) -> Option<Operation> {
        s.parse().ok()
    }

    /// Operations that judge something new; the others take their exit code from every
    /// open problem in the store.
    pub fn judges(self) -> bool {
        matches!(
            self,
            Operation::Monitor | Operation::Verify | Operation::TestRestore
        )
    }
}

/// One finding. `location` is the location's name (None for a problem of the run itself);
/// `path` is relative to the location's path; `slot` is the start of a schedule slot.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Problem {
    pub kind: Kind,
    pub severity: Severity,
    pub location: Option<String>,
    pub path: Option<String>,
    pub slot: Option<SlotStart>,
    pub message: String,
}

/// The identity of a problem across runs: an alert follows it, and a later run that
/// finds the same key refreshes the problem instead of opening another.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ProblemKey {
    pub kind: Kind,
    pub location: Option<String>,
    pub path: Option<String>,
    pub slot: Option<SlotStart>,
}

impl std::fmt::Display for ProblemKey {
    /// The stored form: `kind|location|path|slot`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}|{}|{}|{}",
            self.kind,
            self.location.as_deref().unwrap_or(""),
            self.path.as_deref().unwrap_or(""),
            self.slot.map(|s| s.to_string()).unwrap_or_default()
        )
    }
}

impl Problem {
    /// The message is kept to one line whatever the file names in it contain.
    pub fn new(kind: Kind, severity: Severity, location: &str, message: impl Into<String>) -> Self {
        let message = message.into();
        Problem {
            kind,
            severity,
            location: Some(location.to_string()),
            path: None,
            slot: None,
            message: one_line(&message).into_owned(),
        }
    }

    pub fn with_path(mut self, path: impl Into<String>) -> Self {
        self.path = Some(path.into());
        self
    }

    pub fn with_slot(mut self, slot: SlotStart) -> Self {
        self.slot = Some(slot);
        self
    }

    pub fn key(&self) -> ProblemKey {
        ProblemKey {
            kind: self.kind,
            location: self.location.clone(),
            path: self.path.clone(),
            slot: self.slot,
        }
    }

    /// Worst first, then by location, kind, slot instant and path: the order of every
    /// problem list people read.
    pub fn reading_order(a: &Problem, b: &Problem) -> std::cmp::Ordering {
        b.severity
            .cmp(&a.severity)
            .then_with(|| a.location.cmp(&b.location))
            .then_with(|| a.kind.cmp(&b.kind))
            .then_with(|| a.slot.cmp(&b.slot))
            .then_with(|| a.path.cmp(&b.path))
    }
}

/// The start of a schedule slot as people see it: an instant shown in the location's
/// zone. Orders by instant, never by text (on a fall-back night `02:15+01:00` comes
/// after `02:15+02:00`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SlotStart(pub DateTime<FixedOffset>);

impl SlotStart {
    pub fn new(t: DateTime<Utc>, tz: &chrono_tz::Tz) -> SlotStart {
        SlotStart(t.with_timezone(tz).fixed_offset())
    }

    pub fn utc(self) -> DateTime<Utc> {
        self.0.with_timezone(&Utc)
    }
}

impl fmt::Display for SlotStart {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.to_rfc3339_opts(chrono::SecondsFormat::Secs, false))
    }
}

impl std::str::FromStr for SlotStart {
    type Err = chrono::ParseError;
    fn from_str(s: &str) -> Result<SlotStart, chrono::ParseError> {
        DateTime::parse_from_rfc3339(s).map(SlotStart)
    }
}

impl Serialize for SlotStart {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// `text` on one line: control characters (a file name may hold a newline) and the
/// invisible bidirectional controls (U+202E makes `gpj.exe` read `exe.jpg`) are shown as
/// Rust escapes (`\n`, `\r`, `\u{202e}`), so a name can neither split, forge nor
/// disguise a line of a message, the text summary, a Nagios line or an alert.
pub fn one_line(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.chars().any(needs_escape) {
        return std::borrow::Cow::Borrowed(text);
    }
    text.chars()
        .map(|c| {
            if needs_escape(c) {
                c.escape_default().to_string()
            } else {
                c.to_string()
            }
        })
        .collect::<String>()
        .into()
}

/// Characters that must not reach a line people read as they are: controls, and the
/// format characters that reorder or hide text (bidi embeddings, overrides, isolates and
/// marks, zero-width joiners are left alone: they occur in real names).
fn needs_escape(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{200e}' | '\u{200f}' | '\u{061c}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// The exit code for a set of problems (0 ok, 1 warning, 2 critical).
pub fn exit_code_for<'a>(problems: impl IntoIterator<Item = &'a Problem>) -> i32 {
    Status::of(problems).exit_code()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_stay_on_one_line() {
        assert_eq!(one_line("plain.sql"), "plain.sql");
        assert_eq!(one_line("a\nb\rc\td\u{1b}"), "a\\nb\\rc\\td\\u{1b}");
        assert_eq!(one_line("x\u{202e}gpj.exe"), "x\\u{202e}gpj.exe");
        let p = Problem::new(Kind::EmptyBackup, Severity::Critical, "l", "x\ny is empty");
        assert_eq!(p.message, "x\\ny is empty");
    }

    #[test]
    fn kind_names_round_trip() {
        for kind in Kind::ALL {
            assert_eq!(Kind::parse(kind.as_str()), Some(*kind));
        }
        assert_eq!(Kind::parse("nope"), None);
    }

    #[test]
    fn slots_sort_by_instant_across_fall_back() {
        let mut slots: Vec<SlotStart> = [
            "2026-10-25T03:15:00+01:00",
            "2026-10-25T02:15:00+01:00",
            "2026-10-25T02:15:00+02:00",
            "2026-10-25T01:15:00+02:00",
        ]
        .map(|s| s.parse().unwrap())
        .to_vec();
        slots.sort();
        let text: Vec<String> = slots.iter().map(ToString::to_string).collect();
        assert_eq!(
            text,
            [
                "2026-10-25T01:15:00+02:00",
                "2026-10-25T02:15:00+02:00",
                "2026-10-25T02:15:00+01:00",
                "2026-10-25T03:15:00+01:00",
            ]
        );
    }

    #[test]
    fn exit_code_is_worst_severity() {
        let w = Problem::new(Kind::SizeAnomaly, Severity::Warning, "a", "w");
        let c = Problem::new(Kind::MissingBackup, Severity::Critical, "a", "c");
        assert_eq!(exit_code_for([]), 0);
        assert_eq!(exit_code_for([&w]), 1);
        assert_eq!(exit_code_for([&w, &c]), 2);
    }
}
