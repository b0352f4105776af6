//! The one `Problem` type every operation reports, and the contract's problem kinds.
//!
//! Kinds and severities are stable interfaces: their `as_str` names appear in
//! JSON, reports, alerts and the store. Not for: deciding *when* a problem exists — each
//! operation judges that itself.

use serde::Serialize;
use std::fmt;

/// How bad a problem is. Ordered: `Warning < Critical`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Warning,
    Critical,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Warning => "warning",
            Severity::Critical => "critical",
        }
    }

    pub fn parse(s: &str) -> Option<Severity> {
        match s {
            "warning" => Some(Severity::Warning),
            "critical" => Some(Severity::Critical),
            _ => None,
        }
    }
}

macro_rules! kinds {
    ($($variant:ident => $name:literal, $op:ident;)*) => {
        /// A problem kind (see docs/reference.md).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Kind { $($variant),* }

        impl Kind {
            pub const ALL: &'static [Kind] = &[$(Kind::$variant),*];

            /// The contract name, e.g. `missing_backup`.
            pub fn as_str(self) -> &'static str {
                match self { $(Kind::$variant => $name),* }
            }

            pub fn parse(s: &str) -> Option<Kind> {
                match s { $($name => Some(Kind::$variant),)* _ => None }
            }

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
    ChecksumMismatch => "checksum_mismatch", Verify;
    SidecarMismatch => "sidecar_mismatch", Verify;
    SidecarInvalid => "sidecar_invalid", Verify;
    ModifiedAfterBackup => "modified_after_backup", Verify;
    ArchiveCorrupt => "archive_corrupt", TestRestore;
    UnsafeArchiveEntry => "unsafe_archive_entry", TestRestore;
    RestoreLimitExceeded => "restore_limit_exceeded", TestRestore;
    RestoreFailed => "restore_failed", TestRestore;
    DumpIncomplete => "dump_incomplete", TestRestore;
    HealthDegraded => "health_degraded", Report;
    AlertDeliveryFailed => "alert_delivery_failed", CheckAlerts;
}

impl Kind {
    /// Which `monitoring.alert_on_*` switch covers this kind (None: always alerts).
    pub fn alert_switch(self) -> Option<AlertSwitch> {
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

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Kind {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// The operations of one run, in the order they run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Operation {
    Monitor,
    Verify,
    TestRestore,
    Report,
    CheckAlerts,
    Status,
}

impl Operation {
    /// The flag name, as used in the JSON `operations` array.
    pub fn as_str(self) -> &'static str {
        match self {
            Operation::Monitor => "monitor",
            Operation::Verify => "verify",
            Operation::TestRestore => "test-restore",
            Operation::Report => "report",
            Operation::CheckAlerts => "check-alerts",
            Operation::Status => "status",
        }
    }

    pub fn parse(s: &str) -> Option<Operation> {
        [
            Operation::Monitor,
            Operation::Verify,
            Operation::TestRestore,
            Operation::Report,
            Operation::CheckAlerts,
            Operation::Status,
        ]
        .into_iter()
        .find(|op| op.as_str() == s)
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

impl Serialize for Operation {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// One finding. `location` is the location's name (None for a problem of the run itself);
/// `path` is relative to the location's path; `slot` is an RFC 3339 fire time.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Problem {
    pub kind: Kind,
    pub severity: Severity,
    pub location: Option<String>,
    pub path: Option<String>,
    pub slot: Option<String>,
    pub message: String,
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

    pub fn with_slot(mut self, slot: impl Into<String>) -> Self {
        self.slot = Some(slot.into());
        self
    }

    /// The identity of a problem across runs: kind, location, path or slot.
    pub fn key(&self) -> String {
        format!(
            "{}|{}|{}|{}",
            self.kind.as_str(),
            self.location.as_deref().unwrap_or(""),
            self.path.as_deref().unwrap_or(""),
            self.slot.as_deref().unwrap_or("")
        )
    }
}

/// `text` on one line: control characters (a file name may hold a newline) are shown as
/// Rust escapes (`\n`, `\r`, `\u{1b}`), so a name can neither split nor forge a line of
/// a message, the text summary, a Nagios line or an alert.
pub fn one_line(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.chars().any(char::is_control) {
        return std::borrow::Cow::Borrowed(text);
    }
    text.chars()
        .map(|c| {
            if c.is_control() {
                c.escape_default().to_string()
            } else {
                c.to_string()
            }
        })
        .collect::<String>()
        .into()
}

/// The exit code for a set of problems (0 ok, 1 warning, 2 critical).
pub fn exit_code_for<'a>(problems: impl IntoIterator<Item = &'a Problem>) -> i32 {
    match problems.into_iter().map(|p| p.severity).max() {
        None => 0,
        Some(Severity::Warning) => 1,
        Some(Severity::Critical) => 2,
    }
}

/// The status word for an exit code.
pub fn status_word(exit_code: i32) -> &'static str {
    match exit_code {
        0 => "ok",
        1 => "warning",
        2 => "critical",
        _ => "unknown",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_stay_on_one_line() {
        assert_eq!(one_line("plain.sql"), "plain.sql");
        assert_eq!(one_line("a\nb\rc\td\u{1b}"), "a\\nb\\rc\\td\\u{1b}");
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
    fn exit_code_is_worst_severity() {
        let w = Problem::new(Kind::SizeAnomaly, Severity::Warning, "a", "w");
        let c = Problem::new(Kind::MissingBackup, Severity::Critical, "a", "c");
        assert_eq!(exit_code_for([]), 0);
        assert_eq!(exit_code_for([&w]), 1);
        assert_eq!(exit_code_for([&w, &c]), 2);
    }
}
