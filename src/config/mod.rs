//! `config.yaml`: strict parsing, defaults, `${VAR}` interpolation, `.env` loading and
//! validation, in three steps as cargo reads a manifest: [`schema`] mirrors the file,
//! [`env`] is the environment it is read in, and [`resolve`] turns the two into the
//! [`Config`] the program runs with. Every error names the key path and, where it is
//! known, the line. Not for: deciding what the values mean at run time.

mod channels;
pub mod env;
pub mod interpolate;
mod messages;
pub mod resolve;
pub mod schema;
pub mod values;

use crate::schedule::{At, Frequency, Schedule};
use serde::Deserialize;
use std::io::Read;
use std::path::{Path, PathBuf};
pub use env::Env;
pub use resolve::{ConfigError, resolve};
pub use values::{DurationValue, Fraction, Percent, Positive, Ratio, Size, SizeOrPercent, Timezone};
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
    /// The store file, resolved from `database_url` / `DATABASE_URL`.
    pub store_path: PathBuf,
}

#[derive(Debug, Clone, Default)]
pub struct Backups {
    pub locations: Vec<Location>,
}

#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Default,
    Deserialize,
    strum::EnumString,
    strum::IntoStaticStr,
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
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Default,
    Deserialize,
    strum::EnumString,
    strum::IntoStaticStr,
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
        Frequency::parse(&value.to_string()).map(ScheduleField)
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
        At::parse(&value.to_string()).map(AtField)
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
    pub patterns: Vec<String>,
    pub exclude: Vec<String>,
    pub recursive: bool,
    /// The complete schedule: frequency, `at`, grace and time zone.
    pub schedule: Schedule,
    pub timestamp: TimestampMode,
    pub filename_format: Option<String>,
    pub retention_days: Positive,
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
}

#[derive(Debug, Clone)]
pub struct RestoreConfig {
    pub latest: Positive,
    pub expect: Vec<String>,
    pub min_files: u32,
    /// None: the larger of 1 GiB and 50 × the backup's size.
    pub max_bytes: Option<Size>,
    pub scratch_dir: Option<String>,
    pub postgres_url: Option<String>,
    /// Wall-clock bound of one backup's restore test; past it the test fails as
    /// `restore_limit_exceeded`.
    pub timeout: DurationValue,
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
/// configured; `localhost` when the system has none that is valid UTF-8.
pub fn host_name() -> String {
    hostname::get()
        .ok()
        .and_then(|h| h.into_string().ok())
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
    String::from_utf8(bytes).map_err(|e| format!("{}: {}", path.display(), not_utf8(e.as_bytes(), e.utf8_error())))
}

/// "byte 12 (line 2, column 5) is not UTF-8 …" for the first invalid byte.
fn not_utf8(bytes: &[u8], e: std::str::Utf8Error) -> String {
    let offset = e.valid_up_to();
    let before = String::from_utf8_lossy(&bytes[..offset]);
    let line = before.matches('\n').count() + 1;
    let column = before
        .rsplit('\n')
        .next()
        .map_or(0, |l| l.chars().count())
        + 1;
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
            l.schedule.grace,
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
