//! The config file as written: serde types that mirror `config.yaml` key for key, with
//! every default in one `Default` impl per section. Values holding `${VAR}` stay
//! uninterpolated here (see [`Raw`]); `resolve` turns these into the [`super::Config`] the
//! program runs with. Not for: cross-field rules, paths, or anything the environment
//! decides.

use super::values::{
    DurationValue, Fraction, Percent, Positive, Ratio, Raw, RetentionDays, Size, SizeOrPercent,
    Timezone,
};
use super::{
    AtField, ChecksumAlgo, LocationType, LogLevel, NotifyLevel, ReportFormat, ScheduleField,
    SmtpSecurity, SourceKind, TimestampMode,
};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::time::Duration;

const fn secs(s: u64) -> Raw<DurationValue> {
    Raw::Value(DurationValue(Duration::from_secs(s)))
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RawConfig {
    /// `None`: the machine's host name.
    pub host: Option<Raw<String>>,
    pub database_url: Raw<String>,
    pub timezone: Raw<Timezone>,
    pub backups: RawBackups,
    pub monitoring: RawMonitoring,
    pub alerts: RawAlerts,
    pub reporting: RawReporting,
    pub logging: RawLogging,
}

impl Default for RawConfig {
    fn default() -> Self {
        RawConfig {
            host: None,
            database_url: Raw::Value("sqlite://backup_monitor.db".into()),
            timezone: Raw::Value(Timezone::default()),
            backups: RawBackups::default(),
            monitoring: RawMonitoring::default(),
            alerts: RawAlerts::default(),
            reporting: RawReporting::default(),
            logging: RawLogging::default(),
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RawBackups {
    pub locations: Vec<RawLocation>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RawLocation {
    /// Required: `None` is reported by `resolve`.
    pub name: Option<Raw<String>>,
    /// Required for `kind: files`: `None` is reported by `resolve`.
    pub path: Option<Raw<String>>,
    #[serde(rename = "type")]
    pub kind: LocationType,
    /// Where the backups come from: files under `path` (the default), a backup tool's
    /// repository, or a job log.
    #[serde(rename = "kind")]
    pub source: SourceKind,
    /// `kind: restic` / `kind: borg`: the repository, as the tool names it.
    pub repository: Option<Raw<String>>,
    /// `kind: restic`: a file holding the repository password.
    pub password_file: Option<Raw<String>>,
    /// `kind: restic`: a command that prints the repository password.
    pub password_command: Option<Raw<String>>,
    /// `kind: restic`: the restic binary (default `restic` on `PATH`).
    pub restic_bin: Option<Raw<String>>,
    /// `kind: borg`: a file holding the repository passphrase.
    pub passphrase_file: Option<Raw<String>>,
    /// `kind: borg`: the borg binary (default `borg` on `PATH`).
    pub borg_bin: Option<Raw<String>>,
    /// `kind: restic` / `kind: borg`: environment for the tool (its backends' settings).
    pub env: BTreeMap<String, Raw<String>>,
    /// `kind: restic`: which snapshots of the repository are this location's.
    pub snapshots: Option<RawSnapshotFilter>,
    pub patterns: Vec<String>,
    pub exclude: Vec<String>,
    pub recursive: Raw<bool>,
    pub schedule: Raw<ScheduleField>,
    pub at: Option<Raw<AtField>>,
    pub grace: Option<Raw<DurationValue>>,
    pub timestamp: TimestampMode,
    pub filename_format: Option<Raw<String>>,
    pub retention_days: Raw<RetentionDays>,
    pub min_count: Raw<u32>,
    pub min_size: Raw<Size>,
    pub max_size_drop: Raw<Percent>,
    pub settle: Raw<DurationValue>,
    pub verify_integrity: Raw<bool>,
    pub checksum: ChecksumAlgo,
    pub verify_sample: Raw<Fraction>,
    pub test_restore: Raw<bool>,
    pub restore: RawRestore,
    pub min_free_space: Raw<SizeOrPercent>,
    /// Where an `s3://` path's bucket is and how to sign in.
    pub s3: Option<RawS3>,
    /// `kind: job_log`: the database the backup system logs its runs into (a secret).
    pub database_url: Option<Raw<String>>,
    /// `kind: job_log`: the read-only query returning one row per job run.
    pub query: Option<Raw<String>>,
    /// `kind: job_log`: how long the query may run (`None`: 30 seconds).
    pub query_timeout: Option<Raw<DurationValue>>,
    /// `kind: job_log`: the jobs watched, each with its own schedule.
    pub jobs: Vec<RawJob>,
    /// `kind: job_log`: which status values mean success, failure and running.
    pub status_map: RawStatusMap,
}

/// One job of a job log: its name as the log writes it and its own schedule. A job
/// without `schedule` takes the location's `schedule`, `at` and `grace`; `min_size`
/// falls back to the location's.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RawJob {
    pub name: Option<Raw<String>>,
    pub schedule: Option<Raw<ScheduleField>>,
    pub at: Option<Raw<AtField>>,
    pub grace: Option<Raw<DurationValue>>,
    pub min_size: Option<Raw<Size>>,
}

/// Status values of a job log, compared without regard to case or surrounding blanks.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RawStatusMap {
    pub success: Vec<String>,
    pub failure: Vec<String>,
    pub running: Vec<String>,
}

impl Default for RawStatusMap {
    fn default() -> Self {
        let list = |v: &[&str]| v.iter().map(ToString::to_string).collect();
        RawStatusMap {
            success: list(&["success", "ok", "completed"]),
            failure: list(&["failed", "failure", "error"]),
            running: list(&["running", "started"]),
        }
    }
}

/// `s3:` of a location whose `path` is `s3://BUCKET/PREFIX`. Credentials default to
/// `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY` and `AWS_SESSION_TOKEN`; the region to
/// `AWS_REGION` (then `us-east-1`); the endpoint to AWS's for the region; `path_style`
/// to true when an endpoint is given (S3-compatible servers), false for AWS.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RawS3 {
    pub endpoint: Option<Raw<String>>,
    pub region: Option<Raw<String>>,
    pub path_style: Option<Raw<bool>>,
    pub access_key_id: Option<Raw<String>>,
    pub secret_access_key: Option<Raw<String>>,
    pub session_token: Option<Raw<String>>,
}

impl Default for RawLocation {
    fn default() -> Self {
        RawLocation {
            name: None,
            path: None,
            kind: LocationType::Generic,
            source: SourceKind::Files,
            repository: None,
            password_file: None,
            password_command: None,
            restic_bin: None,
            passphrase_file: None,
            borg_bin: None,
            env: BTreeMap::new(),
            snapshots: None,
            patterns: vec!["*".into()],
            exclude: Vec::new(),
            recursive: Raw::Value(false),
            schedule: Raw::Value(ScheduleField::default()),
            at: None,
            grace: None,
            timestamp: TimestampMode::Auto,
            filename_format: None,
            retention_days: Raw::Value(RetentionDays(30)),
            min_count: Raw::Value(1),
            min_size: Raw::Value(Size(1)),
            max_size_drop: Raw::Value(Percent(0.5)),
            settle: secs(300),
            verify_integrity: Raw::Value(true),
            checksum: ChecksumAlgo::Sha256,
            verify_sample: Raw::Value(Fraction(1.0)),
            test_restore: Raw::Value(true),
            restore: RawRestore::default(),
            min_free_space: Raw::Value(SizeOrPercent::Percent(0.05)),
            database_url: None,
            query: None,
            query_timeout: None,
            jobs: Vec::new(),
            status_map: RawStatusMap::default(),
            s3: None,
        }
    }
}

/// The snapshots of a shared restic repository that belong to one location: those of
/// `host`, carrying every tag of `tags`, of every path of `paths`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RawSnapshotFilter {
    pub host: Option<Raw<String>>,
    pub tags: Vec<String>,
    pub paths: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RawRestore {
    pub latest: Raw<Positive>,
    /// Paths of a snapshot or archive to restore (tool repositories); empty: all of it.
    pub include: Vec<String>,
    pub expect: Vec<String>,
    pub min_files: Raw<u32>,
    /// `None`: the larger of 1 GiB and 50 × the backup's size.
    pub max_bytes: Option<Raw<Size>>,
    pub scratch_dir: Option<Raw<String>>,
    pub postgres_url: Option<Raw<String>>,
    pub mysql_url: Option<Raw<String>>,
    pub decrypt: RawDecrypt,
    pub timeout: Raw<DurationValue>,
    pub max_entries: Raw<u32>,
    pub decoder_memory: Raw<Size>,
}

/// Keys for encrypted backups: an age identity file, a GPG secret key and the passphrase
/// of that key (or of symmetrically encrypted backups).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RawDecrypt {
    pub age_identity_file: Option<Raw<String>>,
    pub gpg_key_file: Option<Raw<String>>,
    pub gpg_passphrase_file: Option<Raw<String>>,
}

impl Default for RawRestore {
    fn default() -> Self {
        RawRestore {
            latest: Raw::Value(Positive(1)),
            include: Vec::new(),
            expect: Vec::new(),
            min_files: Raw::Value(1),
            max_bytes: None,
            scratch_dir: None,
            postgres_url: None,
            mysql_url: None,
            decrypt: RawDecrypt::default(),
            timeout: secs(300),
            max_entries: Raw::Value(1_000_000),
            decoder_memory: Raw::Value(Size(2 << 30)),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RawMonitoring {
    pub alert_on_failure: Raw<bool>,
    pub alert_on_verification_failure: Raw<bool>,
    pub alert_on_restore_failure: Raw<bool>,
    pub health_warning: Raw<Ratio>,
    pub health_critical: Raw<Ratio>,
    pub window_days: Raw<u32>,
    pub max_run_age: Raw<DurationValue>,
    pub heartbeat_url: Option<Raw<String>>,
}

impl Default for RawMonitoring {
    fn default() -> Self {
        RawMonitoring {
            alert_on_failure: Raw::Value(true),
            alert_on_verification_failure: Raw::Value(true),
            alert_on_restore_failure: Raw::Value(true),
            health_warning: Raw::Value(Ratio(0.8)),
            health_critical: Raw::Value(Ratio(0.5)),
            window_days: Raw::Value(7),
            max_run_age: secs(26 * 3600),
            heartbeat_url: None,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RawAlerts {
    pub cooldown: Raw<DurationValue>,
    pub send_resolved: Raw<bool>,
    pub min_consecutive: Raw<Positive>,
    pub notify: NotifyLevel,
    pub timeout: Raw<DurationValue>,
    pub include_log: Raw<bool>,
    pub log: RawLogChannel,
    pub email: RawEmailChannel,
    pub slack: RawSlackChannel,
    pub webhook: RawWebhookChannel,
}

impl Default for RawAlerts {
    fn default() -> Self {
        RawAlerts {
            cooldown: secs(24 * 3600),
            send_resolved: Raw::Value(true),
            min_consecutive: Raw::Value(Positive(1)),
            notify: NotifyLevel::All,
            timeout: secs(10),
            include_log: Raw::Value(false),
            log: RawLogChannel::default(),
            email: RawEmailChannel::default(),
            slack: RawSlackChannel::default(),
            webhook: RawWebhookChannel::default(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RawLogChannel {
    pub enabled: Raw<bool>,
}

impl Default for RawLogChannel {
    fn default() -> Self {
        RawLogChannel {
            enabled: Raw::Value(true),
        }
    }
}

/// A disabled channel is not interpolated: its `${VAR}`s may be unset.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RawEmailChannel {
    pub enabled: Raw<bool>,
    pub smtp_host: Raw<String>,
    pub smtp_port: Raw<u16>,
    pub security: SmtpSecurity,
    pub username: Raw<String>,
    pub password: Raw<String>,
    pub from: Raw<String>,
    pub to: Vec<Raw<String>>,
    /// A PEM file of CA certificates to trust besides the public roots, for a relay whose
    /// certificate a private CA signed (relative to the config file).
    pub ca_file: Option<String>,
}

impl Default for RawEmailChannel {
    fn default() -> Self {
        RawEmailChannel {
            enabled: Raw::Value(false),
            smtp_host: Raw::Value(String::new()),
            smtp_port: Raw::Value(587),
            security: SmtpSecurity::Starttls,
            username: Raw::Value(String::new()),
            password: Raw::Value(String::new()),
            from: Raw::Value(String::new()),
            to: Vec::new(),
            ca_file: None,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RawSlackChannel {
    pub enabled: Raw<bool>,
    pub webhook_url: Raw<String>,
}

impl Default for RawSlackChannel {
    fn default() -> Self {
        RawSlackChannel {
            enabled: Raw::Value(false),
            webhook_url: Raw::Value(String::new()),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RawWebhookChannel {
    pub enabled: Raw<bool>,
    pub url: Raw<String>,
}

impl Default for RawWebhookChannel {
    fn default() -> Self {
        RawWebhookChannel {
            enabled: Raw::Value(false),
            url: Raw::Value(String::new()),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RawReporting {
    pub output_dir: Raw<String>,
    pub formats: Vec<ReportFormat>,
    pub prometheus_textfile: Option<Raw<String>>,
    /// Directory of templates overriding the embedded ones (optional).
    pub templates_dir: Option<Raw<String>>,
    pub base_url: Option<Raw<String>>,
}

impl Default for RawReporting {
    fn default() -> Self {
        RawReporting {
            output_dir: Raw::Value("reports".into()),
            formats: vec![ReportFormat::Html, ReportFormat::Csv, ReportFormat::Json],
            prometheus_textfile: None,
            templates_dir: None,
            base_url: None,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RawLogging {
    /// `None` (written `file: null` or empty): no log file.
    pub file: Option<Raw<String>>,
    pub level: LogLevel,
}

impl Default for RawLogging {
    fn default() -> Self {
        RawLogging {
            file: Some(Raw::Value("logs/backup-monitor.log".into())),
            level: LogLevel::Info,
        }
    }
}
