//! `config.yaml`: strict parsing, defaults, `${VAR}` interpolation, `.env` loading and
//! validation. Every error names the key path and, where the YAML parser knows
//! it, the line. Not for: deciding what the values mean at run time.

mod channels;
pub mod interpolate;
mod messages;
pub mod values;

use crate::schedule::{At, Frequency, Schedule};
use serde::Deserialize;
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
pub use values::{
    DurationValue, EnvString, Fraction, Percent, Positive, Ratio, Size, SizeOrPercent, Timezone,
};
use values::{PortValue, env_bool, env_u32, optional_env_string, required_env_string};

/// Why a config could not be used. Each string is one complete, user-facing cause.
#[derive(Debug, thiserror::Error)]
#[error("{}", .errors.join("\n"))]
pub struct ConfigError {
    pub path: PathBuf,
    pub errors: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(
        default = "default_database_url",
        deserialize_with = "required_env_string"
    )]
    pub database_url: String,
    #[serde(default)]
    pub timezone: Timezone,
    #[serde(default)]
    pub backups: Backups,
    #[serde(default)]
    pub monitoring: Monitoring,
    #[serde(default)]
    pub alerts: Alerts,
    #[serde(default)]
    pub reporting: Reporting,
    #[serde(default)]
    pub logging: Logging,
    /// Directory of the config file; relative paths were resolved against it.
    #[serde(skip)]
    pub base_dir: PathBuf,
    /// The store file, resolved from `database_url` / `DATABASE_URL`.
    #[serde(skip)]
    pub store_path: PathBuf,
}

fn default_database_url() -> String {
    "sqlite://backup_monitor.db".into()
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Backups {
    #[serde(default)]
    pub locations: Vec<Location>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LocationType {
    Database,
    Files,
    Website,
    #[default]
    Generic,
}

impl LocationType {
    pub fn as_str(self) -> &'static str {
        match self {
            LocationType::Database => "database",
            LocationType::Files => "files",
            LocationType::Website => "website",
            LocationType::Generic => "generic",
        }
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

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TimestampMode {
    #[default]
    Auto,
    Filename,
    Mtime,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChecksumAlgo {
    #[default]
    Sha256,
    Md5,
    Blake3,
}

impl ChecksumAlgo {
    pub fn as_str(self) -> &'static str {
        match self {
            ChecksumAlgo::Sha256 => "sha256",
            ChecksumAlgo::Md5 => "md5",
            ChecksumAlgo::Blake3 => "blake3",
        }
    }

    pub fn parse(s: &str) -> Option<ChecksumAlgo> {
        match s {
            "sha256" => Some(ChecksumAlgo::Sha256),
            "md5" => Some(ChecksumAlgo::Md5),
            "blake3" => Some(ChecksumAlgo::Blake3),
            _ => None,
        }
    }
}

/// `schedule`: parsed while reading so a bad cron expression is reported with its line.
#[derive(Debug, Clone, PartialEq)]
pub struct ScheduleField(pub Frequency);

impl<'de> Deserialize<'de> for ScheduleField {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = required_env_string(d)?;
        Frequency::parse(&s)
            .map(ScheduleField)
            .map_err(serde::de::Error::custom)
    }
}

impl Default for ScheduleField {
    fn default() -> Self {
        ScheduleField(Frequency::Daily)
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AtField(pub At);

impl<'de> Deserialize<'de> for AtField {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = required_env_string(d)?;
        At::parse(&s).map(AtField).map_err(serde::de::Error::custom)
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Location {
    #[serde(deserialize_with = "required_env_string")]
    pub name: String,
    #[serde(deserialize_with = "required_env_string")]
    pub path: String,
    #[serde(default, rename = "type")]
    pub kind: LocationType,
    #[serde(default = "default_patterns")]
    pub patterns: Vec<String>,
    #[serde(default)]
    pub exclude: Vec<String>,
    #[serde(default, deserialize_with = "env_bool")]
    pub recursive: bool,
    #[serde(default)]
    pub schedule: ScheduleField,
    #[serde(default)]
    pub at: Option<AtField>,
    #[serde(default)]
    pub grace: Option<DurationValue>,
    #[serde(default)]
    pub timestamp: TimestampMode,
    #[serde(default, deserialize_with = "optional_env_string")]
    pub filename_format: Option<String>,
    #[serde(default = "default_retention")]
    pub retention_days: Positive,
    #[serde(default = "default_min_count", deserialize_with = "env_u32")]
    pub min_count: u32,
    #[serde(default = "default_min_size")]
    pub min_size: Size,
    #[serde(default = "default_max_size_drop")]
    pub max_size_drop: Percent,
    #[serde(default = "default_settle")]
    pub settle: DurationValue,
    #[serde(default = "yes", deserialize_with = "env_bool")]
    pub verify_integrity: bool,
    #[serde(default)]
    pub checksum: ChecksumAlgo,
    #[serde(default = "default_sample")]
    pub verify_sample: Fraction,
    #[serde(default = "yes", deserialize_with = "env_bool")]
    pub test_restore: bool,
    #[serde(default)]
    pub restore: RestoreConfig,
    #[serde(default = "default_min_free")]
    pub min_free_space: SizeOrPercent,
    /// Resolved absolute path (relative paths are relative to the config file).
    #[serde(skip)]
    pub root: PathBuf,
    /// The complete schedule, built by validation.
    #[serde(skip)]
    pub resolved_schedule: Option<Schedule>,
}

impl Location {
    /// The validated schedule. Always present after [`load`].
    pub fn schedule(&self) -> Schedule {
        self.resolved_schedule.clone().unwrap_or(Schedule {
            frequency: Frequency::Daily,
            at: None,
            grace: None,
            tz: chrono_tz::Tz::UTC,
        })
    }
}

fn default_patterns() -> Vec<String> {
    vec!["*".into()]
}
fn default_retention() -> Positive {
    Positive(30)
}
fn default_min_count() -> u32 {
    1
}
fn default_min_size() -> Size {
    Size(1)
}
fn default_max_size_drop() -> Percent {
    Percent(0.5)
}
fn default_settle() -> DurationValue {
    DurationValue(std::time::Duration::from_secs(300))
}
fn yes() -> bool {
    true
}
fn default_sample() -> Fraction {
    Fraction(1.0)
}
fn default_min_free() -> SizeOrPercent {
    SizeOrPercent::Percent(0.05)
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RestoreConfig {
    #[serde(default = "default_latest")]
    pub latest: Positive,
    #[serde(default)]
    pub expect: Vec<String>,
    #[serde(default = "default_min_files", deserialize_with = "env_u32")]
    pub min_files: u32,
    /// None: the larger of 1 GiB and 50 × the backup's size.
    #[serde(default)]
    pub max_bytes: Option<Size>,
    #[serde(default, deserialize_with = "optional_env_string")]
    pub scratch_dir: Option<String>,
    #[serde(default, deserialize_with = "optional_env_string")]
    pub postgres_url: Option<String>,
    /// Wall-clock bound of one backup's restore test; past it the test fails as
    /// `restore_limit_exceeded`.
    #[serde(default = "default_restore_timeout")]
    pub timeout: DurationValue,
    /// Files, directories and links one restore may create; past it the test fails as
    /// `restore_limit_exceeded`.
    #[serde(default = "default_max_entries", deserialize_with = "env_u32")]
    pub max_entries: u32,
    /// Memory a decompressor may need (an xz dictionary, a zstd window); a stream that
    /// declares more is skipped with the reason, never decoded.
    #[serde(default = "default_decoder_memory")]
    pub decoder_memory: Size,
}

fn default_max_entries() -> u32 {
    1_000_000
}

fn default_decoder_memory() -> Size {
    Size(2 << 30)
}

fn default_restore_timeout() -> DurationValue {
    DurationValue(std::time::Duration::from_secs(300))
}

impl Default for RestoreConfig {
    fn default() -> Self {
        RestoreConfig {
            latest: default_latest(),
            expect: Vec::new(),
            min_files: default_min_files(),
            max_bytes: None,
            scratch_dir: None,
            postgres_url: None,
            timeout: default_restore_timeout(),
            max_entries: default_max_entries(),
            decoder_memory: default_decoder_memory(),
        }
    }
}

impl RestoreConfig {
    /// The extraction limit for a backup of `backup_size` bytes.
    pub fn max_bytes_for(&self, backup_size: u64) -> u64 {
        self.max_bytes
            .map(|s| s.0)
            .unwrap_or_else(|| (1u64 << 30).max(backup_size.saturating_mul(50)))
    }
}

fn default_latest() -> Positive {
    Positive(1)
}
fn default_min_files() -> u32 {
    1
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Monitoring {
    #[serde(default = "yes", deserialize_with = "env_bool")]
    pub alert_on_failure: bool,
    #[serde(default = "yes", deserialize_with = "env_bool")]
    pub alert_on_verification_failure: bool,
    #[serde(default = "yes", deserialize_with = "env_bool")]
    pub alert_on_restore_failure: bool,
    #[serde(default = "default_health_warning")]
    pub health_warning: Ratio,
    #[serde(default = "default_health_critical")]
    pub health_critical: Ratio,
}

fn default_health_warning() -> Ratio {
    Ratio(0.8)
}
fn default_health_critical() -> Ratio {
    Ratio(0.5)
}

impl Default for Monitoring {
    fn default() -> Self {
        Monitoring {
            alert_on_failure: true,
            alert_on_verification_failure: true,
            alert_on_restore_failure: true,
            health_warning: default_health_warning(),
            health_critical: default_health_critical(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NotifyLevel {
    #[default]
    All,
    Critical,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Alerts {
    #[serde(default = "default_cooldown")]
    pub cooldown: DurationValue,
    #[serde(default = "yes", deserialize_with = "env_bool")]
    pub send_resolved: bool,
    #[serde(default = "default_min_consecutive")]
    pub min_consecutive: Positive,
    #[serde(default)]
    pub notify: NotifyLevel,
    /// Timeout of every network call of a channel.
    #[serde(default = "default_timeout")]
    pub timeout: DurationValue,
    #[serde(default)]
    pub log: LogChannel,
    #[serde(default)]
    pub email: EmailChannel,
    #[serde(default)]
    pub slack: SlackChannel,
    #[serde(default)]
    pub webhook: WebhookChannel,
}

fn default_cooldown() -> DurationValue {
    DurationValue(std::time::Duration::from_secs(24 * 3600))
}
fn default_min_consecutive() -> Positive {
    Positive(1)
}
fn default_timeout() -> DurationValue {
    DurationValue(std::time::Duration::from_secs(10))
}

impl Default for Alerts {
    fn default() -> Self {
        Alerts {
            cooldown: default_cooldown(),
            send_resolved: true,
            min_consecutive: default_min_consecutive(),
            notify: NotifyLevel::All,
            timeout: default_timeout(),
            log: LogChannel::default(),
            email: EmailChannel::default(),
            slack: SlackChannel::default(),
            webhook: WebhookChannel::default(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogChannel {
    #[serde(default = "yes", deserialize_with = "env_bool")]
    pub enabled: bool,
}

impl Default for LogChannel {
    fn default() -> Self {
        LogChannel { enabled: true }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SmtpSecurity {
    #[default]
    Starttls,
    Tls,
    None,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmailChannel {
    #[serde(default, deserialize_with = "env_bool")]
    pub enabled: bool,
    #[serde(default)]
    pub smtp_host: EnvString,
    /// `smtp_port` as written (it may name an unset `${VAR}` while the channel is off).
    #[serde(rename = "smtp_port", default = "default_smtp_port_value")]
    pub smtp_port_value: PortValue,
    /// The port to connect to, resolved from `smtp_port_value` by validation.
    #[serde(skip, default = "default_smtp_port")]
    pub smtp_port: u16,
    #[serde(default)]
    pub security: SmtpSecurity,
    #[serde(default)]
    pub username: EnvString,
    #[serde(default)]
    pub password: EnvString,
    #[serde(default)]
    pub from: EnvString,
    #[serde(default)]
    pub to: Vec<EnvString>,
    /// Extension: a PEM file of CA certificates to trust besides the public roots, for a
    /// relay whose certificate a private CA signed (relative to the config file).
    #[serde(default)]
    pub ca_file: Option<String>,
    /// `ca_file` resolved against the config file's directory.
    #[serde(skip)]
    pub ca_path: Option<PathBuf>,
}

fn default_smtp_port() -> u16 {
    587
}
fn default_smtp_port_value() -> PortValue {
    PortValue::new(default_smtp_port())
}

impl Default for EmailChannel {
    fn default() -> Self {
        EmailChannel {
            enabled: false,
            smtp_host: EnvString::default(),
            smtp_port_value: default_smtp_port_value(),
            smtp_port: default_smtp_port(),
            security: SmtpSecurity::Starttls,
            username: EnvString::default(),
            password: EnvString::default(),
            from: EnvString::default(),
            to: Vec::new(),
            ca_file: None,
            ca_path: None,
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlackChannel {
    #[serde(default, deserialize_with = "env_bool")]
    pub enabled: bool,
    #[serde(default)]
    pub webhook_url: EnvString,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookChannel {
    #[serde(default, deserialize_with = "env_bool")]
    pub enabled: bool,
    #[serde(default)]
    pub url: EnvString,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ReportFormat {
    Html,
    Csv,
    Json,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Reporting {
    #[serde(
        default = "default_output_dir",
        deserialize_with = "required_env_string"
    )]
    pub output_dir: String,
    #[serde(default = "default_formats")]
    pub formats: Vec<ReportFormat>,
    #[serde(default, deserialize_with = "optional_env_string")]
    pub prometheus_textfile: Option<String>,
    /// Directory of templates overriding the embedded ones (optional).
    #[serde(default, deserialize_with = "optional_env_string")]
    pub templates_dir: Option<String>,
}

fn default_output_dir() -> String {
    "reports".into()
}
fn default_formats() -> Vec<ReportFormat> {
    vec![ReportFormat::Html, ReportFormat::Csv, ReportFormat::Json]
}

impl Default for Reporting {
    fn default() -> Self {
        Reporting {
            output_dir: default_output_dir(),
            formats: default_formats(),
            prometheus_textfile: None,
            templates_dir: None,
        }
    }
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

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Logging {
    #[serde(default = "default_log_file", deserialize_with = "optional_env_string")]
    pub file: Option<String>,
    #[serde(default)]
    pub level: LogLevel,
}

fn default_log_file() -> Option<String> {
    Some("logs/backup-monitor.log".into())
}

impl Default for Logging {
    fn default() -> Self {
        Logging {
            file: default_log_file(),
            level: LogLevel::Info,
        }
    }
}

impl Config {
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

    pub fn location(&self, name: &str) -> Option<&Location> {
        self.backups.locations.iter().find(|l| l.name == name)
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

/// Which config file to read: `--config`, then `BACKUP_MONITOR_CONFIG`, then `./config.yaml`.
pub fn choose_path(cli: Option<&Path>) -> PathBuf {
    cli.map(Path::to_path_buf)
        .or_else(|| std::env::var_os("BACKUP_MONITOR_CONFIG").map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from("config.yaml"))
}

/// Read `.env` files (beside the config, then the working directory) without touching
/// the process environment; earlier files win, and the process environment wins over both.
fn load_dotenv(config_dir: &Path) -> Result<HashMap<String, interpolate::DotenvValue>, String> {
    let mut values = HashMap::new();
    let mut candidates = vec![config_dir.join(".env")];
    if let Ok(cwd) = std::env::current_dir()
        && cwd.join(".env") != candidates[0]
        && std::fs::canonicalize(cwd.join(".env")).ok()
            != std::fs::canonicalize(&candidates[0]).ok()
    {
        candidates.push(cwd.join(".env"));
    }
    for file in candidates {
        if !file.is_file() {
            continue;
        }
        let iter = dotenvy::from_path_iter(&file)
            .map_err(|e| format!("{}: cannot read: {e}", file.display()))?;
        for item in iter {
            let (k, v) = item.map_err(|e| format!("{}: {e}", file.display()))?;
            values.entry(k).or_insert(interpolate::DotenvValue {
                value: v,
                file: file.clone(),
            });
        }
    }
    Ok(values)
}

/// Load, interpolate and validate the config at `path`.
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    let fail = |errors: Vec<String>| ConfigError {
        path: path.to_path_buf(),
        errors,
    };
    let text = std::fs::read_to_string(path).map_err(|e| {
        fail(vec![format!(
            "cannot read config file {}: {e}. Pass --config PATH or set BACKUP_MONITOR_CONFIG (see config.example.yaml)",
            path.display()
        )])
    })?;
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
    interpolate::set_dotenv(load_dotenv(&base_dir).map_err(|e| fail(vec![e]))?);
    parse_str(&text, &base_dir).map_err(|errors| {
        fail(
            errors
                .into_iter()
                .map(|e| format!("{}: {e}", path.display()))
                .collect(),
        )
    })
}

/// Parse and validate config text whose relative paths are relative to `base_dir`.
pub fn parse_str(text: &str, base_dir: &Path) -> Result<Config, Vec<String>> {
    if text.trim().is_empty() {
        return Err(vec![
            "the config is empty; start from config.example.yaml".into(),
        ]);
    }
    let mut config: Config = parse_yaml(text)?;
    config.base_dir = base_dir.to_path_buf();
    let errors = validate(&mut config);
    if errors.is_empty() {
        Ok(config)
    } else {
        Err(errors)
    }
}

/// Deserialize strictly, reporting the full key path and the line of the offending value.
fn parse_yaml(text: &str) -> Result<Config, Vec<String>> {
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
        vec![format!("{key}{msg}{hint}")]
    })
}

fn validate(config: &mut Config) -> Vec<String> {
    let mut errors = Vec::new();
    let tz = config.timezone.0;
    let mut names = HashSet::new();
    for (i, loc) in config.backups.locations.iter_mut().enumerate() {
        let key = format!("backups.locations[{i}]");
        if loc.name.is_empty()
            || !loc
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
        {
            errors.push(format!(
                "{key}.name: `{}` must be non-empty and use only A-Z a-z 0-9 _ . -",
                loc.name
            ));
        }
        if !names.insert(loc.name.clone()) {
            errors.push(format!(
                "{key}.name: duplicate location name `{}`; names must be unique",
                loc.name
            ));
        }
        if loc.path.trim().is_empty() {
            errors.push(format!("{key}.path: must not be empty"));
        }
        loc.root = resolve_against(&config.base_dir, &loc.path);
        for (field, globs) in [
            ("patterns", &loc.patterns),
            ("exclude", &loc.exclude),
            ("restore.expect", &loc.restore.expect),
        ] {
            for g in globs {
                if let Err(e) = globset::Glob::new(g) {
                    errors.push(format!("{key}.{field}: invalid glob `{g}`: {e}"));
                }
            }
        }
        if loc.patterns.is_empty() {
            errors.push(format!(
                "{key}.patterns: must list at least one glob (default [\"*\"])"
            ));
        }
        if loc.retention_days.0 > 36_500 {
            errors.push(format!(
                "{key}.retention_days: {} days is more than 100 years; write the retention you keep",
                loc.retention_days.0
            ));
        }
        if loc.grace.is_some_and(|g| g.0.is_zero()) {
            errors.push(format!("{key}.grace: must be positive"));
        }
        if let Some(f) = &loc.filename_format
            && chrono::format::StrftimeItems::new(f)
                .any(|i| matches!(i, chrono::format::Item::Error))
        {
            errors.push(format!(
                "{key}.filename_format: `{f}` is not a valid chrono format"
            ));
        }
        if loc.restore.max_bytes.is_some_and(|s| s.0 == 0) {
            errors.push(format!("{key}.restore.max_bytes: must be positive"));
        }
        if loc.restore.max_entries == 0 {
            errors.push(format!("{key}.restore.max_entries: must be positive"));
        }
        if loc.restore.decoder_memory.0 < 1 << 20 {
            errors.push(format!(
                "{key}.restore.decoder_memory: must be at least 1MiB"
            ));
        }
        if let Some(url) = loc.restore.postgres_url.as_deref()
            && !(url.starts_with("postgresql://")
                || url.starts_with("postgres://")
                || (!url.contains("://") && url.contains('=')))
        {
            // The value may hold a password: it is not echoed.
            errors.push(format!(
                "{key}.restore.postgres_url: not a PostgreSQL connection string; write postgresql://user@host:port/database or host=… dbname=… (the value is not shown: it may hold a password)"
            ));
        }
        match Schedule::new(
            loc.schedule.0.clone(),
            loc.at.map(|a| a.0),
            loc.grace.map(|g| g.as_chrono()),
            tz,
        ) {
            Ok(s) => loc.resolved_schedule = Some(s),
            Err(e) => errors.push(format!("{key}.at: {e}")),
        }
    }
    let m = &config.monitoring;
    if m.health_critical.0 > m.health_warning.0 {
        errors.push(format!(
            "monitoring.health_critical ({}) must not be above monitoring.health_warning ({})",
            m.health_critical.0, m.health_warning.0
        ));
    }
    if config.alerts.cooldown.0.is_zero() {
        errors.push("alerts.cooldown: must be positive".into());
    }
    if config.alerts.timeout.0.is_zero() {
        errors.push("alerts.timeout: must be positive".into());
    }
    channels::validate(&config.alerts, &mut errors);
    let email = &mut config.alerts.email;
    email.smtp_port = email
        .smtp_port_value
        .get()
        .unwrap_or_else(default_smtp_port);
    email.ca_path = email
        .ca_file
        .as_deref()
        .map(|f| resolve_against(&config.base_dir, f));
    if email.enabled {
        errors.extend(channels::validate_ca_file(email));
    }
    let source = database_url_source(config);
    match store_path_from_url(&source.url) {
        Ok(p) => config.store_path = resolve_against(&source.base, &p),
        Err(e) => errors.push(format!("{}: {e}", source.key)),
    }
    errors
}

/// Where the store's URL came from: the key to name in errors, the URL, and the
/// directory a relative path in it is relative to.
struct DatabaseUrlSource {
    key: String,
    url: String,
    base: PathBuf,
}

/// `DATABASE_URL` from the process environment, else from `.env` beside the
/// config, else from `.env` in the working directory, else `database_url`. An empty
/// `DATABASE_URL` counts as unset. A relative path is relative to where the value was
/// written: the working directory for the shell's variable, the `.env` file's directory,
/// the config file's directory.
fn database_url_source(config: &Config) -> DatabaseUrlSource {
    if let Some(url) = std::env::var("DATABASE_URL").ok().filter(|u| !u.is_empty()) {
        return DatabaseUrlSource {
            key: "DATABASE_URL".into(),
            url,
            base: std::env::current_dir().unwrap_or_else(|_| config.base_dir.clone()),
        };
    }
    if let Some(dotenv) = interpolate::dotenv_value("DATABASE_URL").filter(|v| !v.value.is_empty())
    {
        return DatabaseUrlSource {
            key: format!("DATABASE_URL (in {})", dotenv.file.display()),
            base: dotenv.dir().to_path_buf(),
            url: dotenv.value,
        };
    }
    DatabaseUrlSource {
        key: "database_url".into(),
        url: config.database_url.clone(),
        base: config.base_dir.clone(),
    }
}

/// `sqlite://relative.db`, `sqlite:///absolute.db`, or a plain path.
fn store_path_from_url(url: &str) -> Result<String, String> {
    let url = url.trim();
    if let Some(rest) = url.strip_prefix("sqlite://") {
        if rest.is_empty() {
            return Err("`sqlite://` needs a file path, e.g. sqlite://backup_monitor.db".into());
        }
        return Ok(rest.to_string());
    }
    if url.contains("://") {
        return Err(format!(
            "only SQLite is supported (sqlite://PATH); got a URL with scheme `{}`",
            url.split("://").next().unwrap_or("")
        ));
    }
    if url.is_empty() {
        return Err("must not be empty".into());
    }
    Ok(url.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, Vec<String>> {
        parse_str(text, Path::new("/etc/bm"))
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
            l.schedule().grace,
            None,
            "daily without at: one period of grace"
        );
        assert_eq!(c.alerts.cooldown.0.as_secs(), 86400);
        assert_eq!(c.reporting.formats.len(), 3);
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
        assert!(
            parse("database_url: postgres://x/y\n")
                .unwrap_err()
                .join("")
                .contains("SQLite")
        );
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
}
