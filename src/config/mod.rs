//! `config.yaml`: strict parsing, defaults, `${VAR}` interpolation, `.env` loading and
//! validation, in three steps as cargo reads a manifest: [`schema`] mirrors the file,
//! [`env`] is the environment it is read in, and [`resolve`] turns the two into the
//! [`Config`] the program runs with. Every error names the key path and, where it is
//! known, the line. Not for: deciding what the values mean at run time.

mod channels;
pub mod env;
pub mod interpolate;
mod job_log;
mod messages;
pub mod resolve;
pub mod schema;
pub mod values;

use crate::schedule::{At, Frequency, Schedule};
pub use env::Env;
pub use resolve::{ConfigError, pg_lock_anchor, pg_store_name, resolve};
use serde::Deserialize;
use std::io::Read;
use std::path::{Path, PathBuf};
pub use values::{
    DurationValue, Fraction, Percent, Positive, Ratio, RetentionDays, Size, SizeOrPercent, Timezone,
};
use values::{FromScalar, Scalar};

/// Why the config file could not be used. Each string is one complete, user-facing cause.
#[derive(Debug, thiserror::Error)]
#[error("{}", .errors.join("\n"))]
pub struct LoadError {
    pub path: PathBuf,
    pub errors: Vec<String>,
}

/// The configuration the program runs with: every value parsed, interpolated and
/// checked, every path absolute.
#[derive(Debug, Clone)]
pub struct Config {
    /// The name this machine reports under (alerts, reports, the store).
    pub host: String,
    pub timezone: Timezone,
    pub backups: Backups,
    pub monitoring: Monitoring,
    pub alerts: Alerts,
    pub reporting: Reporting,
    pub logging: Logging,
    /// Directory of the config file; relative paths were resolved against it.
    pub base_dir: PathBuf,
    /// The store file, resolved from `database_url` / `DATABASE_URL`. For a PostgreSQL
    /// store, the place of this host's local lock file (`<path>.lock`).
    pub store_path: PathBuf,
    /// The PostgreSQL store, when `database_url` is a `postgresql://` URL.
    pub postgres: Option<crate::store::PgTarget>,
    /// What reading the config found wrong without making it unusable, to be said once
    /// logging is set up.
    pub warnings: Vec<String>,
}

#[derive(Debug, Clone, Default)]
pub struct Backups {
    pub locations: Vec<Location>,
}

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, strum::EnumString, strum::IntoStaticStr,
)]
#[serde(rename_all = "lowercase")]
#[strum(serialize_all = "lowercase")]
pub enum LocationType {
    Database,
    Files,
    Website,
    #[default]
    Generic,
}

impl LocationType {
    pub fn as_str(self) -> &'static str {
        self.into()
    }

    /// The calendar mark: `d`, `w` (website or files) or `g`.
    pub fn calendar_mark(self) -> char {
        match self {
            LocationType::Database => 'd',
            LocationType::Files | LocationType::Website => 'w',
            LocationType::Generic => 'g',
        }
    }
}

/// `kind`: where a location's backups come from.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, strum::EnumString, strum::IntoStaticStr,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum SourceKind {
    /// Files under `path`.
    #[default]
    Files,
    /// Snapshots of a restic repository.
    Restic,
    /// Archives of a borg repository.
    Borg,
    /// Rows of a backup system's job log in a database.
    JobLog,
}

impl SourceKind {
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

/// A job-log location's connection, query and status values, shared by the locations
/// its jobs become (one location per job, named `LOCATION.JOB`).
pub struct JobLogSource {
    /// The location as written in the config: the name of the job group.
    pub group: String,
    /// A secret: never printed (`Debug` leaves it out), stored or logged.
    pub database_url: String,
    /// The URL as it may be shown: scheme, host, port and database, without user-info
    /// or parameters.
    pub shown_url: String,
    pub query: String,
    pub query_timeout: DurationValue,
    pub status_map: StatusMap,
    /// The configured jobs' names, as the log writes them.
    pub jobs: Vec<String>,
}

impl std::fmt::Debug for JobLogSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JobLogSource")
            .field("group", &self.group)
            .field("database_url", &self.shown_url)
            .field("query", &self.query)
            .field("query_timeout", &self.query_timeout)
            .field("status_map", &self.status_map)
            .field("jobs", &self.jobs)
            .finish()
    }
}

/// What a job-log status value means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobStatus {
    Success,
    Failure,
    Running,
}

/// `status_map`: status values (compared trimmed and without regard to case) to meanings.
#[derive(Debug, Clone, Default)]
pub struct StatusMap {
    values: Vec<(String, JobStatus)>,
}

impl StatusMap {
    pub fn new(success: &[String], failure: &[String], running: &[String]) -> StatusMap {
        let mut values = Vec::new();
        for (list, status) in [
            (success, JobStatus::Success),
            (failure, JobStatus::Failure),
            (running, JobStatus::Running),
        ] {
            values.extend(list.iter().map(|v| (v.trim().to_lowercase(), status)));
        }
        StatusMap { values }
    }

    /// What `value` means; None for a value the map does not list.
    pub fn meaning(&self, value: &str) -> Option<JobStatus> {
        let value = value.trim();
        self.values
            .iter()
            .find(|(v, _)| v.eq_ignore_ascii_case(value) || v.as_str() == value.to_lowercase())
            .map(|(_, s)| *s)
    }
}

/// The job of a job-log location: which job of which log it watches.
#[derive(Debug, Clone)]
pub struct JobLog {
    /// The job's name as the log writes it.
    pub job: String,
    pub source: std::sync::Arc<JobLogSource>,
}

/// A backup tool whose repository a location watches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tool {
    Restic,
    Borg,
}

impl Tool {
    /// The tool's name, which is also its default binary.
    pub fn name(self) -> &'static str {
        match self {
            Tool::Restic => "restic",
            Tool::Borg => "borg",
        }
    }

    /// What one backup is called in the tool's words.
    pub fn backup_word(self) -> &'static str {
        match self {
            Tool::Restic => "snapshot",
            Tool::Borg => "archive",
        }
    }
}

/// How the tool learns the repository's password: never through its arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RepoSecret {
    /// A file holding it (absolute).
    File(PathBuf),
    /// A command that prints it (restic only).
    Command(String),
    /// None: an unencrypted repository (borg only).
    None,
}

/// `kind: restic` / `kind: borg`: the repository and how to open it.
#[derive(Debug, Clone)]
pub struct ToolRepository {
    pub tool: Tool,
    /// The repository as the tool names it; a local relative path is made absolute.
    /// May hold credentials (`rest:https://user:password@host/`): shown as [`Self::shown`].
    pub repository: String,
    /// `repository` as messages, the store and reports show it: a URL's user-info masked.
    pub shown: String,
    pub secret: RepoSecret,
    /// The binary: `restic_bin` / `borg_bin`, default the tool's name on `PATH`.
    pub bin: String,
    /// Extra environment for the tool (its backends' settings), interpolated. Values may
    /// be secrets: they are never shown.
    pub env: Vec<(String, String)>,
    /// restic: which snapshots are the location's (all when empty).
    pub snapshots: SnapshotFilter,
}

/// `snapshots:` of a restic location: restic's `--host`, `--tag`, `--path` filters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SnapshotFilter {
    pub host: Option<String>,
    /// Every one must be on the snapshot.
    pub tags: Vec<String>,
    /// The snapshot must be of every one.
    pub paths: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TimestampMode {
    #[default]
    Auto,
    Filename,
    Mtime,
}

/// A checksum algorithm; its string form (`sha256`, `md5`, `blake3`) is the config's and
/// the store's.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, strum::EnumString, strum::IntoStaticStr,
)]
#[serde(rename_all = "lowercase")]
#[strum(serialize_all = "lowercase")]
pub enum ChecksumAlgo {
    #[default]
    Sha256,
    Md5,
    Blake3,
}

impl ChecksumAlgo {
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

/// `schedule`: parsed while reading so a bad cron expression is reported with its line.
#[derive(Debug, Clone, PartialEq)]
pub struct ScheduleField(pub Frequency);

impl FromScalar for ScheduleField {
    fn from_scalar(value: Scalar) -> Result<Self, String> {
        Frequency::parse(&values::scalar_text(value)?).map(ScheduleField)
    }
}

impl Default for ScheduleField {
    fn default() -> Self {
        ScheduleField(Frequency::Daily)
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AtField(pub At);

impl FromScalar for AtField {
    fn from_scalar(value: Scalar) -> Result<Self, String> {
        At::parse(&values::scalar_text(value)?).map(AtField)
    }
}

#[derive(Debug, Clone)]
pub struct Location {
    pub name: String,
    /// The path as written in the config.
    pub path: String,
    /// `path` made absolute (relative paths are relative to the config file).
    pub root: PathBuf,
    pub kind: LocationType,
    /// Where the backups come from (`kind`).
    pub source: SourceKind,
    /// The repository of `kind: restic` / `kind: borg`; None for the other kinds.
    pub repository: Option<ToolRepository>,
    pub patterns: Vec<String>,
    pub exclude: Vec<String>,
    pub recursive: bool,
    /// The complete schedule: frequency, `at`, grace and time zone.
    pub schedule: Schedule,
    pub timestamp: TimestampMode,
    pub filename_format: Option<String>,
    pub retention_days: RetentionDays,
    pub min_count: u32,
    pub min_size: Size,
    pub max_size_drop: Percent,
    pub settle: DurationValue,
    pub verify_integrity: bool,
    pub checksum: ChecksumAlgo,
    pub verify_sample: Fraction,
    pub test_restore: bool,
    pub restore: RestoreConfig,
    pub min_free_space: SizeOrPercent,
    /// `kind: job_log`: the job this location watches (None for every other kind).
    pub job_log: Option<JobLog>,
    /// Set when `path` is `s3://BUCKET/PREFIX`: where the bucket is and how to sign in.
    pub s3: Option<S3Location>,
}

/// A bucket location: `path: s3://BUCKET/PREFIX` with its `s3:` block resolved.
#[derive(Clone, PartialEq, Eq)]
pub struct S3Location {
    pub bucket: String,
    /// Empty, or ending in `/`: the objects under it are the location's files.
    pub prefix: String,
    /// `http(s)://host[:port]`; AWS's regional endpoint when not configured.
    pub endpoint: String,
    pub region: String,
    /// Bucket in the path (`endpoint/bucket/key`) rather than in the host name.
    pub path_style: bool,
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<String>,
    pub session_token: Option<String>,
}

impl std::fmt::Debug for S3Location {
    // Never the secret or the session token, whatever prints a config.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Location")
            .field("bucket", &self.bucket)
            .field("prefix", &self.prefix)
            .field("endpoint", &self.endpoint)
            .field("region", &self.region)
            .field("path_style", &self.path_style)
            .field("access_key_id", &self.access_key_id)
            .finish_non_exhaustive()
    }
}

impl Location {
    /// The patterns as a message may show them: the first few, each shortened, and how
    /// many more there are (a location may list thousands).
    pub fn patterns_shown(&self) -> String {
        const SHOWN: usize = 5;
        let mut shown: Vec<String> = self
            .patterns
            .iter()
            .take(SHOWN)
            .map(|p| format!("{:?}", values::shown(p)))
            .collect();
        if self.patterns.len() > SHOWN {
            shown.push(format!("… {} more", self.patterns.len() - SHOWN));
        }
        format!("[{}]", shown.join(", "))
    }
}

#[derive(Debug, Clone)]
pub struct RestoreConfig {
    pub latest: Positive,
    /// Paths of a snapshot or archive to restore (tool repositories); empty: all of it.
    pub include: Vec<String>,
    pub expect: Vec<String>,
    pub min_files: u32,
    /// None: the larger of 1 GiB and 50 × the backup's size.
    pub max_bytes: Option<Size>,
    pub scratch_dir: Option<String>,
    pub postgres_url: Option<String>,
    /// A scratch MySQL/MariaDB server that mysqldump dumps are replayed into.
    pub mysql_url: Option<String>,
    /// Keys to decrypt encrypted backups with (paths as written, resolved at use).
    pub decrypt: DecryptConfig,
    /// Wall-clock bound of one backup's restore test; past it the test fails as
    /// `restore_limit_exceeded`.
    pub timeout: DurationValue,
    /// Files, directories and links one restore may create; past it the test fails as
    /// `restore_limit_exceeded`.
    pub max_entries: u32,
    /// Memory a decompressor may need (an xz dictionary, a zstd window); a stream that
    /// needs more is skipped with the reason.
    pub decoder_memory: Size,
}

/// Key files for encrypted backups; each must be readable by its owner only.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DecryptConfig {
    pub age_identity_file: Option<String>,
    pub gpg_key_file: Option<String>,
    pub gpg_passphrase_file: Option<String>,
}

impl RestoreConfig {
    /// The extraction limit for a backup of `backup_size` bytes.
    pub fn max_bytes_for(&self, backup_size: u64) -> u64 {
        self.max_bytes
            .map(|s| s.0)
            .unwrap_or_else(|| (1u64 << 30).max(backup_size.saturating_mul(50)))
    }
}

#[derive(Debug, Clone)]
pub struct Monitoring {
    pub alert_on_failure: bool,
    pub alert_on_verification_failure: bool,
    pub alert_on_restore_failure: bool,
    pub health_warning: Ratio,
    pub health_critical: Ratio,
    /// Days of history the health score and reports look back over.
    pub window_days: u32,
    /// A run older than this means the scheduled runs stopped.
    pub max_run_age: DurationValue,
    /// Called after every run (a dead man's switch); a secret, never shown.
    pub heartbeat_url: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NotifyLevel {
    #[default]
    All,
    Critical,
}

#[derive(Debug, Clone)]
pub struct Alerts {
    pub cooldown: DurationValue,
    pub send_resolved: bool,
    pub min_consecutive: Positive,
    pub notify: NotifyLevel,
    /// Timeout of every network call of a channel.
    pub timeout: DurationValue,
    /// Attach the run's recent log lines to alerts.
    pub include_log: bool,
    pub log: LogChannel,
    pub email: EmailChannel,
    pub slack: SlackChannel,
    pub webhook: WebhookChannel,
}

#[derive(Debug, Clone)]
pub struct LogChannel {
    pub enabled: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SmtpSecurity {
    #[default]
    Starttls,
    Tls,
    None,
}

/// A disabled channel's values are empty wherever they named a `${VAR}`: it is not
/// interpolated.
#[derive(Debug, Clone)]
pub struct EmailChannel {
    pub enabled: bool,
    pub smtp_host: String,
    pub smtp_port: u16,
    pub security: SmtpSecurity,
    pub username: String,
    pub password: String,
    pub from: String,
    pub to: Vec<String>,
    /// `ca_file` resolved against the config file's directory.
    pub ca_path: Option<PathBuf>,
}

#[derive(Debug, Clone)]
pub struct SlackChannel {
    pub enabled: bool,
    pub webhook_url: String,
}

#[derive(Debug, Clone)]
pub struct WebhookChannel {
    pub enabled: bool,
    pub url: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ReportFormat {
    Html,
    Csv,
    Json,
}

#[derive(Debug, Clone)]
pub struct Reporting {
    pub output_dir: String,
    pub formats: Vec<ReportFormat>,
    pub prometheus_textfile: Option<String>,
    /// Directory of templates overriding the embedded ones (optional).
    pub templates_dir: Option<String>,
    /// Where the reports are published, for links in alerts (optional).
    pub base_url: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogLevel {
    Error,
    Warn,
    #[default]
    Info,
    Debug,
    Trace,
}

#[derive(Debug, Clone)]
pub struct Logging {
    pub file: Option<String>,
    pub level: LogLevel,
}

impl Config {
    /// Where the backup tools (restic, borg) keep their caches and state for this
    /// host's runs: beside a SQLite store (`<store file>.tools`); for a PostgreSQL store,
    /// which has no file on this machine, in the user's cache directory
    /// (`$XDG_CACHE_HOME`, else `~/.cache`: `backup-monitor/<host>-<store>.tools`), where
    /// neither a reboot nor a temporary-file cleaner throws away a repository's cache or
    /// borg's security records. Without a home directory, beside the lock file.
    pub fn tools_state_dir(&self) -> PathBuf {
        let beside = |anchor: &std::path::Path| {
            let mut state = anchor.to_path_buf().into_os_string();
            state.push(".tools");
            PathBuf::from(state)
        };
        let Some(pg) = &self.postgres else {
            return beside(&self.store_path);
        };
        let absolute =
            |v: Option<std::ffi::OsString>| v.map(PathBuf::from).filter(|p| p.is_absolute());
        let cache = absolute(std::env::var_os("XDG_CACHE_HOME"))
            .or_else(|| absolute(std::env::var_os("HOME")).map(|h| h.join(".cache")));
        match cache {
            Some(cache) => beside(
                &cache
                    .join("backup-monitor")
                    .join(resolve::pg_store_name(&self.host, pg)),
            ),
            None => beside(&self.store_path),
        }
    }

    /// The configured locations' names, in config order.
    pub fn location_names(&self) -> Vec<&str> {
        self.backups
            .locations
            .iter()
            .map(|l| l.name.as_str())
            .collect()
    }

    /// Resolve a configured path against the config file's directory.
    pub fn resolve_path(&self, p: &str) -> PathBuf {
        resolve_against(&self.base_dir, p)
    }

    pub fn report_dir(&self) -> PathBuf {
        self.resolve_path(&self.reporting.output_dir)
    }

    pub fn log_file(&self) -> Option<PathBuf> {
        self.logging.file.as_deref().map(|f| self.resolve_path(f))
    }

    pub fn prometheus_path(&self) -> Option<PathBuf> {
        self.reporting
            .prometheus_textfile
            .as_deref()
            .map(|f| self.resolve_path(f))
    }
}

fn resolve_against(base: &Path, p: &str) -> PathBuf {
    let path = Path::new(p);
    if path.is_absolute() {
        path.to_path_buf()
    } else {
        base.join(path)
    }
}

/// This machine's host name, as every part of the program names it when `host` is not
/// configured (bytes that are not UTF-8 become U+FFFD); `localhost` when the system
/// gives none.
pub fn host_name() -> String {
    hostname::get()
        .map(|h| h.to_string_lossy().into_owned())
        .ok()
        .filter(|h| !h.trim().is_empty())
        .unwrap_or_else(|| "localhost".into())
}

/// Which config file to read: `--config`, then `BACKUP_MONITOR_CONFIG`, then `./config.yaml`.
pub fn choose_path(cli: Option<&Path>) -> PathBuf {
    cli.map(Path::to_path_buf)
        .or_else(|| std::env::var_os("BACKUP_MONITOR_CONFIG").map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from("config.yaml"))
}

/// The largest config file read: far beyond any real one, small enough that a wrong
/// path (a disk image, a log) is refused at once instead of parsed.
const MAX_CONFIG_BYTES: u64 = 16 << 20;

/// Load, interpolate and validate the config at `path` in the process environment and
/// the `.env` files beside it and in the working directory.
pub fn load(path: &Path) -> Result<Config, LoadError> {
    let fail = |errors: Vec<String>| LoadError {
        path: path.to_path_buf(),
        errors,
    };
    let text = read_text(path).map_err(|e| fail(vec![e]))?;
    let base_dir = path
        .parent()
        .map(|p| {
            if p.as_os_str().is_empty() {
                Path::new(".")
            } else {
                p
            }
        })
        .unwrap_or(Path::new("."))
        .to_path_buf();
    let base_dir = std::fs::canonicalize(&base_dir).unwrap_or(base_dir);
    let env = Env::load(&base_dir).map_err(|e| fail(vec![e]))?;
    parse_with(&text, &env).map_err(|errors| {
        fail(
            errors
                .into_iter()
                .map(|e| format!("{}: {e}", path.display()))
                .collect(),
        )
    })
}

/// The config file's text; a byte that is not UTF-8 is reported with its position.
fn read_text(path: &Path) -> Result<String, String> {
    let unreadable = |e: std::io::Error| {
        format!(
            "cannot read config file {}: {e}. Pass --config PATH or set BACKUP_MONITOR_CONFIG (see config.example.yaml)",
            path.display()
        )
    };
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(MAX_CONFIG_BYTES + 1).read_to_end(&mut bytes))
        .map_err(unreadable)?;
    if bytes.len() as u64 > MAX_CONFIG_BYTES {
        return Err(format!(
            "{}: larger than {} MiB; this is not a config file (check --config / BACKUP_MONITOR_CONFIG)",
            path.display(),
            MAX_CONFIG_BYTES >> 20
        ));
    }
    String::from_utf8(bytes).map_err(|e| {
        format!(
            "{}: {}",
            path.display(),
            not_utf8(e.as_bytes(), e.utf8_error())
        )
    })
}

/// "byte 12 (line 2, column 5) is not UTF-8 …" for the first invalid byte.
fn not_utf8(bytes: &[u8], e: std::str::Utf8Error) -> String {
    let offset = e.valid_up_to();
    let before = String::from_utf8_lossy(&bytes[..offset]);
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    format!(
        "byte {offset} (line {line}, column {column}) is not valid UTF-8 (0x{:02X}); save the file as UTF-8",
        bytes.get(offset).copied().unwrap_or(0)
    )
}

/// Parse and validate config text whose relative paths are relative to `base_dir`, in
/// the process environment alone (no `.env` file).
pub fn parse_str(text: &str, base_dir: &Path) -> Result<Config, Vec<String>> {
    parse_with(text, &Env::process_only(base_dir))
}

/// Parse config text, then resolve it in `env` (relative paths against its config
/// directory).
pub fn parse_with(text: &str, env: &Env) -> Result<Config, Vec<String>> {
    if text.trim().is_empty() {
        return Err(vec![
            "the config is empty; start from config.example.yaml".into(),
        ]);
    }
    let raw = parse_yaml(text)?;
    resolve(raw, env).map_err(|errors| errors.iter().map(ToString::to_string).collect())
}

/// Deserialize strictly, reporting the full key path and the line of the offending value.
fn parse_yaml(text: &str) -> Result<schema::RawConfig, Vec<String>> {
    let mut options = serde_saphyr::options::Options::default();
    options.with_snippet = false;
    let path = std::cell::RefCell::new(String::new());
    serde_saphyr::with_deserializer_from_str_with_options(text, options, |de| {
        serde_path_to_error::deserialize(de).map_err(|e| {
            *path.borrow_mut() = e.path().to_string();
            e.into_inner()
        })
    })
    .map_err(|e| {
        let msg = e.render_with_formatter(&messages::ConfigMessages);
        let hint = if msg.contains("unknown field") {
            " (check the spelling against config.example.yaml)"
        } else if msg.contains("missing field") {
            " (this key is required)"
        } else {
            ""
        };
        let path = path.borrow();
        let key = match messages::key_path(&path) {
            "" => String::new(),
            key => format!("{key}: "),
        };
        vec![resolve::bounded(&format!("{key}{msg}{hint}"))]
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, Vec<String>> {
        parse_str(text, Path::new("/etc/bm"))
    }

    fn parse_in(text: &str, vars: &[(&str, &str)]) -> Result<Config, Vec<String>> {
        parse_with(
            text,
            &Env::from_vars(vars.iter().copied()).in_dir(Path::new("/etc/bm")),
        )
    }

    fn errors(text: &str) -> Vec<String> {
        parse_in(text, &[]).unwrap_err()
    }

    fn location(extra: &str) -> String {
        format!("{MINIMAL}{extra}")
    }

    const MINIMAL: &str = "backups:\n  locations:\n    - name: db\n      path: /backups/db\n";

    #[test]
    fn minimal_config_gets_every_default() {
        let c = parse(MINIMAL).unwrap();
        let l = &c.backups.locations[0];
        assert_eq!(l.root, PathBuf::from("/backups/db"));
        assert_eq!(l.kind, LocationType::Generic);
        assert_eq!(l.patterns, vec!["*"]);
        assert_eq!(l.retention_days.0, 30);
        assert_eq!(l.min_size.0, 1);
        assert_eq!(l.settle.0.as_secs(), 300);
        assert_eq!(l.checksum, ChecksumAlgo::Sha256);
        assert_eq!(l.min_free_space, SizeOrPercent::Percent(0.05));
        assert_eq!(l.restore.max_bytes_for(10), 1 << 30);
        assert_eq!(l.restore.max_bytes_for(1 << 30), 50 << 30);
        assert_eq!(
            l.schedule.grace, None,
            "daily without at: one period of grace"
        );
        assert_eq!(l.min_count, 1);
        assert_eq!(l.max_size_drop, Percent(0.5));
        assert!(!l.recursive && l.verify_integrity && l.test_restore);
        assert_eq!(l.verify_sample, Fraction(1.0));
        assert_eq!(l.timestamp, TimestampMode::Auto);
        assert_eq!(l.restore.latest, Positive(1));
        assert_eq!(l.restore.min_files, 1);
        assert_eq!(l.restore.timeout.0.as_secs(), 300);
        assert_eq!(l.schedule.frequency, Frequency::Daily);
        assert_eq!(c.host, host_name());
        let m = &c.monitoring;
        assert!(
            m.alert_on_failure && m.alert_on_verification_failure && m.alert_on_restore_failure
        );
        assert_eq!(
            (m.health_warning, m.health_critical),
            (Ratio(0.8), Ratio(0.5))
        );
        assert_eq!(m.window_days, 7);
        assert_eq!(m.max_run_age.0.as_secs(), 26 * 3600);
        assert_eq!(m.heartbeat_url, None);
        assert_eq!(c.alerts.cooldown.0.as_secs(), 86400);
        assert_eq!(c.alerts.timeout.0.as_secs(), 10);
        assert_eq!(c.alerts.min_consecutive, Positive(1));
        assert!(c.alerts.send_resolved && c.alerts.log.enabled);
        assert!(!c.alerts.include_log);
        assert_eq!(c.alerts.notify, NotifyLevel::All);
        let e = &c.alerts.email;
        assert!(!e.enabled && !c.alerts.slack.enabled && !c.alerts.webhook.enabled);
        assert_eq!((e.smtp_port, e.security), (587, SmtpSecurity::Starttls));
        assert_eq!(c.reporting.formats.len(), 3);
        assert_eq!(c.reporting.output_dir, "reports");
        assert_eq!(c.reporting.base_url, None);
        assert_eq!(c.logging.file.as_deref(), Some("logs/backup-monitor.log"));
        assert_eq!(c.logging.level, LogLevel::Info);
        if std::env::var("DATABASE_URL").is_err() {
            assert_eq!(c.store_path, PathBuf::from("/etc/bm/backup_monitor.db"));
        }
    }

    #[test]
    fn unknown_key_names_key_path_and_line() {
        let text = "backups:\n  locations:\n    - name: db\n      path: /x\n      retention: 3\n";
        let err = parse(text).unwrap_err().join("\n");
        assert!(err.contains("retention"), "{err}");
        assert!(err.contains("backups.locations[0]"), "{err}");
        assert!(err.contains("line 5"), "{err}");
    }

    #[test]
    fn wrong_type_and_bad_values_have_lines() {
        let err = parse(
            "backups:\n  locations:\n    - name: db\n      path: /x\n      recursive: maybe\n",
        )
        .unwrap_err()
        .join("");
        assert!(err.contains("recursive") && err.contains("line 5"), "{err}");
        let err =
            parse("backups:\n  locations:\n    - name: db\n      path: /x\n      min_size: lots\n")
                .unwrap_err()
                .join("");
        assert!(
            err.contains("min_size") && err.contains("not a size"),
            "{err}"
        );
        let err = parse("backups:\n  locations:\n    - name: db\n      path: /x\n      schedule: '99 * * * *'\n").unwrap_err().join("");
        assert!(err.contains("schedule") && err.contains("cron"), "{err}");
        let err = parse("timezone: Mars/Base\n").unwrap_err().join("");
        assert!(err.contains("time zone"), "{err}");
        let err = parse(
            "backups:\n  locations:\n    - name: db\n      path: /x\n      verify_sample: 1.5\n",
        )
        .unwrap_err()
        .join("");
        assert!(err.contains("verify_sample"), "{err}");
        let err = parse(
            "backups:\n  locations:\n    - name: db\n      path: /x\n      retention_days: 4294967295\n",
        )
        .unwrap_err()
        .join("");
        assert!(
            err.contains("retention_days") && err.contains("100 years"),
            "{err}"
        );
        let err = parse(
            "backups:\n  locations:\n    - name: db\n      path: /x\n      grace: 99999999w\n",
        )
        .unwrap_err()
        .join("");
        assert!(err.contains("grace") && err.contains("100 years"), "{err}");
        let err = parse(
            "backups:\n  locations:\n    - name: db\n      path: /x\n      retention_days: 0\n",
        )
        .unwrap_err()
        .join("");
        assert!(err.contains("retention_days"), "{err}");
        let err =
            parse("backups:\n  locations:\n    - name: db\n      path: /x\n      type: tape\n")
                .unwrap_err()
                .join("");
        assert!(err.contains("tape"), "{err}");
    }

    #[test]
    fn cross_field_rules() {
        let err = parse("monitoring:\n  health_warning: 0.4\n  health_critical: 0.6\n")
            .unwrap_err()
            .join("");
        assert!(err.contains("health_critical"), "{err}");
        let dup = format!("{MINIMAL}    - name: db\n      path: /y\n");
        assert!(parse(&dup).unwrap_err().join("").contains("duplicate"));
        let bad_at = format!("{MINIMAL}      schedule: weekly\n      at: \"02:00\"\n");
        assert!(parse(&bad_at).unwrap_err().join("").contains("weekly"));
        let bad_name = "backups:\n  locations:\n    - name: 'my db'\n      path: /x\n";
        assert!(parse(bad_name).unwrap_err().join("").contains("name"));
        let pg = parse("database_url: postgres://u:pw@x/y?sslmode=require\n").unwrap();
        assert_eq!(
            pg.postgres.map(|t| t.to_string()).as_deref(),
            Some("x:5432/y")
        );
        let err = parse("database_url: mysql://x/y\n").unwrap_err().join("");
        assert!(
            err.contains("SQLite") && err.contains("PostgreSQL"),
            "{err}"
        );
        // A slash short is a typo, not a SQLite file named after the URL; the password
        // is not repeated.
        let err = parse("database_url: postgresql:/u:pw@x/y\n")
            .unwrap_err()
            .join("");
        assert!(
            err.contains("`postgresql:` must be followed by `//`") && !err.contains("pw"),
            "{err}"
        );
        let err = parse("database_url: postgres://u:pw@x/y?sslmode=nope\n")
            .unwrap_err()
            .join("");
        assert!(err.contains("sslmode") && !err.contains("pw@"), "{err}");
    }

    #[test]
    fn interpolation_and_disabled_channels() {
        let text =
            "alerts:\n  slack:\n    enabled: false\n    webhook_url: ${BM_CFG_TEST_UNSET_1}\n";
        assert!(parse(text).is_ok(), "disabled channel is not interpolated");
        let text =
            "alerts:\n  slack:\n    enabled: true\n    webhook_url: ${BM_CFG_TEST_UNSET_1}\n";
        let err = parse(text).unwrap_err().join("");
        assert!(
            err.contains("BM_CFG_TEST_UNSET_1") && err.contains("alerts.slack.webhook_url"),
            "{err}"
        );
        let text = "backups:\n  locations:\n    - name: db\n      path: ${BM_CFG_TEST_UNSET_2}\n";
        let err = parse(text).unwrap_err().join("");
        assert!(
            err.contains("BM_CFG_TEST_UNSET_2") && err.contains("path"),
            "{err}"
        );
        let text =
            "backups:\n  locations:\n    - name: db\n      path: ${BM_CFG_TEST_UNSET_2:-/srv/b}\n";
        assert_eq!(
            parse(text).unwrap().backups.locations[0].root,
            PathBuf::from("/srv/b")
        );
    }

    #[test]
    fn every_error_is_reported_not_only_the_first() {
        let text = location(
            "      min_size: \"${BM_SIZE}\"\n      retention_days: \"${BM_DAYS}\"\n      grace: 0s\n      patterns: ['[a']\nmonitoring:\n  health_warning: 0.4\n  health_critical: 0.6\n  window_days: 0\nalerts:\n  cooldown: 0s\n",
        );
        let first = parse_in(&text, &[("BM_SIZE", "lots"), ("BM_DAYS", "-1")]).unwrap_err();
        let all = first.join("\n");
        for needle in [
            "backups.locations[0].min_size: `lots` is not a size",
            "backups.locations[0].retention_days: expected a whole number",
            "backups.locations[0].grace: must be positive",
            "backups.locations[0].patterns: invalid glob `[a`",
            "health_critical (0.6) must not be above",
            "monitoring.window_days",
            "alerts.cooldown: must be positive",
        ] {
            assert!(all.contains(needle), "missing {needle:?} in:\n{all}");
        }
        assert_eq!(first.len(), 7, "{all}");
        let found = errors(&location(
            "      retention_days: lots\n      min_count: [1]\n      settle: {a: 1}\n      min_size:\n",
        ));
        let all = found.join("\n");
        assert_eq!(found.len(), 4, "{all}");
        for needle in [
            "retention_days: expected a whole number of days from 1 to 36500 (100 years), got `lots` at line 5, column 23",
            "min_count: expected a whole number from 0 to 4294967295, not a list at line 6",
            "settle: expected a single value, not a mapping at line 7",
            "min_size: expected a single value, got an empty value",
        ] {
            assert!(all.contains(needle), "missing {needle:?} in:\n{all}");
        }
        assert!(first.join("\n").contains("min_size: `lots` is not a size; write e.g. 512, 10KiB, 5MB or 2GiB at line 5, column 17"), "deferred values keep their line: {first:?}");
    }

    #[test]
    fn the_environment_is_an_explicit_value() {
        let text = "backups:\n  locations:\n    - name: db\n      path: ${BM_DIR}\n";
        let env = Env::from_vars([("BM_DIR", "/from/shell")]).in_dir(Path::new("/etc/bm"));
        let c = parse_with(text, &env).unwrap();
        assert_eq!(c.backups.locations[0].root, PathBuf::from("/from/shell"));
        let dotenv = std::collections::HashMap::from([(
            "BM_DIR".to_string(),
            env::DotenvValue {
                value: "rel".into(),
                file: PathBuf::from("/etc/bm/.env"),
            },
        )]);
        let c = parse_with(
            text,
            &Env::default()
                .in_dir(Path::new("/etc/bm"))
                .with_dotenv(dotenv),
        )
        .unwrap();
        assert_eq!(
            c.backups.locations[0].root,
            PathBuf::from("/etc/bm/rel"),
            "a relative path is relative to the config"
        );
        let err = errors(text).join("");
        assert!(
            err.contains("BM_DIR") && err.contains("is not set"),
            "{err}"
        );
    }

    #[test]
    fn a_location_needs_a_name_and_a_path() {
        let err = errors("backups:\n  locations:\n    - path: /x\n").join("\n");
        assert!(
            err.contains("backups.locations[0]: `name` is missing"),
            "{err}"
        );
        let err = errors("backups:\n  locations:\n    - name: db\n").join("\n");
        assert!(err.contains("`path` is missing"), "{err}");
    }

    #[test]
    fn schedule_and_root_are_always_resolved() {
        let c = parse_in(
            &format!("timezone: Europe/Berlin\n{MINIMAL}      schedule: daily\n      at: \"02:30\"\n      grace: 3h\n"),
            &[],
        )
        .unwrap();
        let s = &c.backups.locations[0].schedule;
        assert_eq!(s.tz, chrono_tz::Tz::Europe__Berlin);
        assert_eq!(s.grace, Some(chrono::Duration::hours(3)));
        assert!(s.at.is_some());
        let c = parse_in(
            "backups:\n  locations:\n    - name: db\n      path: sub/db\n",
            &[],
        )
        .unwrap();
        assert_eq!(c.backups.locations[0].root, PathBuf::from("/etc/bm/sub/db"));
    }

    #[test]
    fn new_keys_take_values_and_refuse_bad_ones() {
        let c = parse_in(
            "host: web-1\nmonitoring:\n  window_days: 3660\n  max_run_age: 2d\n  heartbeat_url: https://hc.example.com/ping/abc\nalerts:\n  include_log: true\nreporting:\n  base_url: https://reports.example.com/bm/\n",
            &[],
        )
        .unwrap();
        assert_eq!(c.host, "web-1");
        assert_eq!(c.monitoring.window_days, 3660);
        assert_eq!(c.monitoring.max_run_age.0.as_secs(), 2 * 86400);
        assert_eq!(
            c.monitoring.heartbeat_url.as_deref(),
            Some("https://hc.example.com/ping/abc")
        );
        assert!(c.alerts.include_log);
        assert_eq!(
            c.reporting.base_url.as_deref(),
            Some("https://reports.example.com/bm/")
        );
        for (text, needle) in [
            (
                "monitoring:\n  window_days: 0\n",
                "monitoring.window_days: expected a whole number of days from 1 to 3660",
            ),
            (
                "monitoring:\n  window_days: 3661\n",
                "monitoring.window_days",
            ),
            (
                "monitoring:\n  max_run_age: 0s\n",
                "monitoring.max_run_age: must be positive",
            ),
            (
                "monitoring:\n  max_run_age: soon\n",
                "monitoring.max_run_age: `soon` is not a duration",
            ),
            (
                "alerts:\n  include_log: maybe\n",
                "alerts.include_log: expected true or false",
            ),
            (
                "reporting:\n  base_url: reports.example.com\n",
                "reporting.base_url: not an absolute URL",
            ),
            (
                "reporting:\n  base_url: ftp://example.com/\n",
                "reporting.base_url: the URL must start with https://",
            ),
            ("host: \"a\\nb\"\n", "host: must be one line"),
        ] {
            let err = errors(text).join("\n");
            assert!(err.contains(needle), "{text:?}: {err}");
        }
        let err =
            errors("monitoring:\n  heartbeat_url: ftp://secret-token@example.com/\n").join("");
        assert!(
            err.contains("monitoring.heartbeat_url: the URL must start"),
            "{err}"
        );
        assert!(
            !err.contains("secret-token"),
            "the heartbeat URL is a secret: {err}"
        );
    }

    #[test]
    fn an_unset_host_is_the_machine_name() {
        let c = parse_in("host: \"${BM_HOST:-}\"\n", &[]).unwrap();
        assert_eq!(c.host, host_name());
        assert!(!host_name().is_empty());
    }

    #[test]
    fn echoed_values_are_bounded() {
        let huge = "x".repeat(1_000_000);
        let err = errors(&location(&format!("      min_size: \"{huge}\"\n"))).join("\n");
        assert!(
            err.contains("min_size") && err.contains("not a size"),
            "{}",
            &err[..200.min(err.len())]
        );
        assert!(err.len() < 700, "{} bytes", err.len());
        let err = parse_in(
            &location("      min_size: \"${BM_HUGE}\"\n"),
            &[("BM_HUGE", &huge)],
        )
        .unwrap_err()
        .join("\n");
        assert!(
            err.len() < 700 && err.contains("line 5"),
            "{}",
            &err[..200.min(err.len())]
        );
        let globs: String = (0..100_000).map(|i| format!("'[{i}', ")).collect();
        let err = errors(&location(&format!("      patterns: [{globs}]\n")));
        assert!(err.len() <= 6, "{err:?}");
        assert!(
            err.iter().any(|e| e.contains("99995 more invalid globs")),
            "{err:?}"
        );
        let names: String = (0..500)
            .map(|i| format!("    - name: 'bad {i}'\n      path: /x\n"))
            .collect();
        let err = errors(&format!("backups:\n  locations:\n{names}"));
        assert_eq!(err.len(), 101, "at most 100 errors and a count");
        assert!(err[100].contains("400 more errors"), "{}", err[100]);
    }

    #[test]
    fn patterns_are_shown_bounded() {
        let mut c = parse_in(MINIMAL, &[]).unwrap();
        let l = &mut c.backups.locations[0];
        assert_eq!(l.patterns_shown(), "[\"*\"]");
        l.patterns = (0..100_000).map(|i| format!("*.{i}")).collect();
        let shown = l.patterns_shown();
        assert!(shown.len() < 100 && shown.contains("99995 more"), "{shown}");
    }

    #[test]
    fn a_byte_that_is_not_utf8_is_located() {
        let bytes = b"timezone: UTC\nbackups:\n  x: caf\xe9\n";
        let e = std::str::from_utf8(std::hint::black_box(bytes)).unwrap_err();
        assert_eq!(
            not_utf8(bytes, e),
            "byte 31 (line 3, column 9) is not valid UTF-8 (0xE9); save the file as UTF-8"
        );
    }

    #[test]
    fn enum_string_forms_keep_their_names() {
        for (s, algo) in [
            ("sha256", ChecksumAlgo::Sha256),
            ("md5", ChecksumAlgo::Md5),
            ("blake3", ChecksumAlgo::Blake3),
        ] {
            assert_eq!(s.parse::<ChecksumAlgo>().ok(), Some(algo));
            assert_eq!(algo.as_str(), s);
        }
        assert!("SHA-256".parse::<ChecksumAlgo>().is_err());
        for (s, kind) in [
            ("database", LocationType::Database),
            ("files", LocationType::Files),
            ("website", LocationType::Website),
            ("generic", LocationType::Generic),
        ] {
            assert_eq!(kind.as_str(), s);
            let c = parse_in(&location(&format!("      type: {s}\n")), &[]).unwrap();
            assert_eq!(c.backups.locations[0].kind, kind);
        }
    }

    #[test]
    fn a_disabled_channel_keeps_literal_values_and_drops_unset_ones() {
        let c = parse_in(
            "alerts:\n  email:\n    smtp_host: mail.example.com\n    password: ${BM_UNSET_PW}\n    smtp_port: ${BM_UNSET_PORT}\n",
            &[],
        )
        .unwrap();
        let e = &c.alerts.email;
        assert!(!e.enabled);
        assert_eq!(e.smtp_host, "mail.example.com");
        assert_eq!(e.password, "");
        assert_eq!(e.smtp_port, 587);
        let err = errors(
            "alerts:\n  email:\n    enabled: true\n    smtp_host: ${BM_UNSET_HOST}\n    from: ops@example.com\n    to: [ops@example.com]\n",
        )
        .join("\n");
        assert!(
            err.contains("alerts.email.smtp_host: environment variable `BM_UNSET_HOST`"),
            "{err}"
        );
        assert!(
            !err.contains("must be set"),
            "an unset variable is reported once: {err}"
        );
    }

    const BUCKET: &str =
        "backups:\n  locations:\n    - name: offsite\n      path: s3://my-backups/db\n";

    #[test]
    fn bucket_locations_default_from_the_aws_variables() {
        let c = parse_in(
            BUCKET,
            &[
                ("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE"),
                ("AWS_SECRET_ACCESS_KEY", "s3cr3t-value"),
                ("AWS_REGION", "eu-west-1"),
            ],
        )
        .unwrap();
        let l = &c.backups.locations[0];
        let s3 = l.s3.as_ref().unwrap();
        assert_eq!(
            (s3.bucket.as_str(), s3.prefix.as_str()),
            ("my-backups", "db/")
        );
        assert_eq!(s3.endpoint, "https://s3.eu-west-1.amazonaws.com");
        assert!(!s3.path_style, "AWS: virtual-hosted");
        assert_eq!(s3.access_key_id.as_deref(), Some("AKIDEXAMPLE"));
        assert_eq!(s3.secret_access_key.as_deref(), Some("s3cr3t-value"));
        assert_eq!(l.root, PathBuf::from("s3://my-backups/db"));
        assert!(!format!("{c:?}").contains("s3cr3t-value"), "never in Debug");
        // An endpoint of one's own: path style, keys from `${VAR}`.
        let c = parse_in(
            &format!(
                "{BUCKET}      s3:\n        endpoint: http://127.0.0.1:9000/\n        access_key_id: k\n        secret_access_key: ${{S}}\n"
            ),
            &[("S", "from-var")],
        )
        .unwrap();
        let s3 = c.backups.locations[0].s3.clone().unwrap();
        assert!(s3.path_style);
        assert_eq!(s3.endpoint, "http://127.0.0.1:9000");
        assert_eq!(s3.region, "us-east-1");
        assert_eq!(s3.secret_access_key.as_deref(), Some("from-var"));
    }

    #[test]
    fn bucket_location_errors_name_the_key() {
        let e = errors(&format!("{MINIMAL}      s3: {{ region: eu-west-1 }}\n")).join("\n");
        assert!(
            e.contains("backups.locations[0].s3") && e.contains("s3://"),
            "{e}"
        );
        let e = errors("backups:\n  locations:\n    - name: offsite\n      path: s3://B/x\n")
            .join("\n");
        assert!(
            e.contains("backups.locations[0].path") && e.contains("bucket"),
            "{e}"
        );
        let e = errors(&format!("{BUCKET}      s3: {{ endpoint: ftp://x }}\n")).join("\n");
        assert!(e.contains("backups.locations[0].s3.endpoint"), "{e}");
        let e = errors(&format!("{BUCKET}      s3: {{ access_key_id: k }}\n")).join("\n");
        assert!(e.contains("secret_access_key"), "{e}");
        let e = errors(&format!("{BUCKET}      s3: {{ secret: x }}\n")).join("\n");
        assert!(e.contains("secret"), "unknown keys are refused: {e}");
    }
}
