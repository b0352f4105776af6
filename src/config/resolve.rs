//! From the file as written ([`schema`]) and the environment it is read in ([`Env`]) to
//! the [`Config`] the program runs with: `${VAR}` interpolated, paths made absolute,
//! schedules built, and every rule between keys checked. Every error found is reported,
//! not only the first, so one `--check-config` shows all there is to fix. Not for:
//! reading files or the process environment (the caller hands in an [`Env`]).

use super::channels;
use super::env::Env;
use super::schema::{
    RawAlerts, RawConfig, RawEmailChannel, RawLocation, RawLogging, RawMonitoring, RawReporting,
    RawRestore,
};
use super::values::{FromScalar, Raw, shown};
use super::{
    Alerts, Backups, Config, DecryptConfig, EmailChannel, Location, LogChannel, Logging,
    Monitoring, Reporting, RestoreConfig, SlackChannel, WebhookChannel, host_name, resolve_against,
};
use crate::schedule::Schedule;
use std::collections::HashSet;
use std::fmt;
use std::path::{Path, PathBuf};

/// One thing wrong with the config: the key it is about, the user's message, and where
/// the value stood in the file when that is known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// `backups.locations[0].min_size`, or empty for the file as a whole.
    pub key: String,
    pub message: String,
    /// Line and column, 1-based.
    pub at: Option<(u32, u32)>,
}

impl ConfigError {
    pub fn new(key: impl Into<String>, message: impl Into<String>) -> ConfigError {
        ConfigError {
            key: key.into(),
            message: message.into(),
            at: None,
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        let mut text = if self.key.is_empty() {
            self.message.clone()
        } else {
            format!("{}: {}", self.key, self.message)
        };
        if let Some((line, column)) = self.at {
            text.push_str(&format!(" at line {line}, column {column}"));
        }
        f.write_str(&bounded(&text))
    }
}

impl std::error::Error for ConfigError {}

/// The longest error line shown; whatever a value holds, a message stays one line a
/// person can read (its start and its end, where the position is, are kept).
const MAX_MESSAGE_CHARS: usize = 600;

/// `message` cut to [`MAX_MESSAGE_CHARS`], keeping its start and end.
pub fn bounded(message: &str) -> String {
    let count = message.chars().count();
    if count <= MAX_MESSAGE_CHARS {
        return message.to_string();
    }
    let head: String = message.chars().take(400).collect();
    let tail: String = message.chars().skip(count - 150).collect();
    format!("{head} … [{} characters left out] … {tail}", count - 550)
}

/// At most this many errors of one kind for one key (invalid globs in a list of
/// 100,000): the rest are counted, not listed.
const MAX_ERRORS_PER_KEY: usize = 5;

/// At most this many errors are listed in all.
const MAX_ERRORS: usize = 100;

/// The config in `env`, or every error found.
pub fn resolve(raw: RawConfig, env: &Env) -> Result<Config, Vec<ConfigError>> {
    let mut r = Resolver {
        env,
        errors: Vec::new(),
    };
    let config = build(&mut r, raw);
    if r.errors.len() > MAX_ERRORS {
        let more = r.errors.len() - MAX_ERRORS;
        r.errors.truncate(MAX_ERRORS);
        r.errors.push(ConfigError::new(
            "",
            format!("{more} more errors not listed; fix the ones above and check again"),
        ));
    }
    match config {
        Some(config) if r.errors.is_empty() => Ok(config),
        _ if r.errors.is_empty() => Err(vec![ConfigError::new(
            "",
            "the config could not be read; run --check-config",
        )]),
        _ => Err(r.errors),
    }
}

fn build(r: &mut Resolver, raw: RawConfig) -> Option<Config> {
    let base_dir = r.env.config_dir().to_path_buf();
    let host = r.optional_text("host", raw.host);
    if let Some(Some(h)) = &host {
        check_host(r, h);
    }
    let timezone = r.value("timezone", raw.timezone);
    let tz = timezone.map_or(chrono_tz::Tz::UTC, |t| t.0);
    let mut names = HashSet::new();
    let locations: Vec<Option<Location>> = raw
        .backups
        .locations
        .into_iter()
        .enumerate()
        .map(|(i, l)| location(r, i, l, tz, &base_dir, &mut names))
        .collect();
    let monitoring = monitoring(r, raw.monitoring);
    let alerts = alerts(r, raw.alerts, &base_dir);
    let reporting = reporting(r, raw.reporting);
    let logging = logging(r, raw.logging);
    let database_url = r.value("database_url", raw.database_url);
    let host = host?.unwrap_or_else(host_name);
    let store = database_url.and_then(|url| store_path(r, url, &base_dir, &host));
    let (store_path, postgres) = store?;
    Some(Config {
        host,
        timezone: timezone?,
        backups: Backups {
            locations: locations.into_iter().collect::<Option<Vec<_>>>()?,
        },
        monitoring: monitoring?,
        alerts: alerts?,
        reporting: reporting?,
        logging: logging?,
        base_dir,
        store_path,
        postgres,
    })
}

/// Collects the errors while each value is interpolated and parsed.
struct Resolver<'e> {
    env: &'e Env,
    errors: Vec<ConfigError>,
}

impl Resolver<'_> {
    fn error(&mut self, key: impl Into<String>, message: impl Into<String>) {
        self.errors.push(ConfigError::new(key, message));
    }

    fn failed(&self, key: &str) -> bool {
        self.errors.iter().any(|e| e.key == key)
    }

    /// The value of `key`, or `None` after recording why it is unusable.
    fn value<T: FromScalar>(&mut self, key: &str, raw: Raw<T>) -> Option<T> {
        match raw.resolve(self.env) {
            Ok(v) => Some(v),
            Err((message, at)) => {
                self.errors.push(ConfigError {
                    key: key.to_string(),
                    message,
                    at,
                });
                None
            }
        }
    }

    /// An optional value: `Some(None)` when absent.
    fn optional<T: FromScalar>(&mut self, key: &str, raw: Option<Raw<T>>) -> Option<Option<T>> {
        match raw {
            None => Some(None),
            Some(raw) => self.value(key, raw).map(Some),
        }
    }

    /// Optional text: absent or empty (after interpolation) is `None`.
    fn optional_text(&mut self, key: &str, raw: Option<Raw<String>>) -> Option<Option<String>> {
        self.optional(key, raw).map(|v| v.filter(|s| !s.is_empty()))
    }

    /// A value of a disabled channel: not interpolated; text naming a `${VAR}` is empty.
    fn uninterpolated<T: Clone + Default>(raw: &Raw<T>) -> T {
        raw.literal().cloned().unwrap_or_default()
    }
}

/// `host`: one line a person can read in an alert's subject.
fn check_host(r: &mut Resolver, host: &str) {
    if host.trim().is_empty() || host.chars().count() > 253 || host.chars().any(char::is_control) {
        r.error(
            "host",
            "must be one line of at most 253 characters, e.g. the machine's name (leave it out to use the host name)",
        );
    }
}

fn location(
    r: &mut Resolver,
    i: usize,
    l: RawLocation,
    tz: chrono_tz::Tz,
    base_dir: &Path,
    names: &mut HashSet<String>,
) -> Option<Location> {
    let key = format!("backups.locations[{i}]");
    let k = |field: &str| format!("{key}.{field}");
    let required = |r: &mut Resolver, field: &str, raw: Option<Raw<String>>| match raw {
        None => {
            r.error(
                key.clone(),
                format!("`{field}` is missing (this key is required)"),
            );
            None
        }
        Some(raw) => r.value(&k(field), raw),
    };
    let name = required(r, "name", l.name);
    let path = required(r, "path", l.path);
    if let Some(name) = &name
        && (name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c)))
    {
        r.error(
            k("name"),
            format!(
                "`{}` must be non-empty and use only A-Z a-z 0-9 _ . -",
                shown(name)
            ),
        );
    }
    if let Some(name) = &name
        && !names.insert(name.clone())
    {
        r.error(
            k("name"),
            format!(
                "duplicate location name `{}`; names must be unique",
                shown(name)
            ),
        );
    }
    if path.as_deref().is_some_and(|p| p.trim().is_empty()) {
        r.error(k("path"), "must not be empty");
    }
    for (field, globs) in [
        ("patterns", &l.patterns),
        ("exclude", &l.exclude),
        ("restore.expect", &l.restore.expect),
    ] {
        let bad: Vec<String> = globs
            .iter()
            .filter_map(|g| {
                globset::Glob::new(g)
                    .err()
                    .map(|e| format!("invalid glob `{}`: {}", shown(g), e.kind()))
            })
            .collect();
        for message in bad.iter().take(MAX_ERRORS_PER_KEY) {
            r.error(k(field), message.clone());
        }
        if bad.len() > MAX_ERRORS_PER_KEY {
            r.error(
                k(field),
                format!(
                    "{} more invalid globs not listed",
                    bad.len() - MAX_ERRORS_PER_KEY
                ),
            );
        }
    }
    if l.patterns.is_empty() {
        r.error(
            k("patterns"),
            "must list at least one glob (default [\"*\"])",
        );
    }
    let recursive = r.value(&k("recursive"), l.recursive);
    let frequency = r.value(&k("schedule"), l.schedule);
    let at = r.optional(&k("at"), l.at);
    let grace = r.optional(&k("grace"), l.grace);
    if grace.flatten().is_some_and(|g| g.0.is_zero()) {
        r.error(k("grace"), "must be positive");
    }
    let filename_format = r.optional_text(&k("filename_format"), l.filename_format);
    if let Some(Some(f)) = &filename_format
        && chrono::format::StrftimeItems::new(f).any(|i| matches!(i, chrono::format::Item::Error))
    {
        r.error(
            k("filename_format"),
            format!("`{}` is not a valid chrono format", shown(f)),
        );
    }
    let retention_days = r.value(&k("retention_days"), l.retention_days);
    if let Some(days) = retention_days
        && days.0 > 36_500
    {
        r.error(
            k("retention_days"),
            format!(
                "{} days is more than 100 years; write the retention you keep",
                days.0
            ),
        );
    }
    let min_count = r.value(&k("min_count"), l.min_count);
    let min_size = r.value(&k("min_size"), l.min_size);
    let max_size_drop = r.value(&k("max_size_drop"), l.max_size_drop);
    let settle = r.value(&k("settle"), l.settle);
    let verify_integrity = r.value(&k("verify_integrity"), l.verify_integrity);
    let verify_sample = r.value(&k("verify_sample"), l.verify_sample);
    let test_restore = r.value(&k("test_restore"), l.test_restore);
    let restore = restore(r, &key, l.restore);
    let min_free_space = r.value(&k("min_free_space"), l.min_free_space);
    let schedule = match (frequency, at, grace) {
        (Some(frequency), Some(at), Some(grace)) => match Schedule::new(
            frequency.0,
            at.map(|a| a.0),
            grace.map(|g| g.as_chrono()),
            tz,
        ) {
            Ok(s) => Some(s),
            Err(e) => {
                r.error(k("at"), e);
                None
            }
        },
        _ => None,
    };
    let path = path?;
    Some(Location {
        name: name?,
        root: resolve_against(base_dir, &path),
        path,
        kind: l.kind,
        patterns: l.patterns,
        exclude: l.exclude,
        recursive: recursive?,
        schedule: schedule?,
        timestamp: l.timestamp,
        filename_format: filename_format?,
        retention_days: retention_days?,
        min_count: min_count?,
        min_size: min_size?,
        max_size_drop: max_size_drop?,
        settle: settle?,
        verify_integrity: verify_integrity?,
        checksum: l.checksum,
        verify_sample: verify_sample?,
        test_restore: test_restore?,
        restore: restore?,
        min_free_space: min_free_space?,
    })
}

fn restore(r: &mut Resolver, key: &str, raw: RawRestore) -> Option<RestoreConfig> {
    let k = |field: &str| format!("{key}.restore.{field}");
    let latest = r.value(&k("latest"), raw.latest);
    let min_files = r.value(&k("min_files"), raw.min_files);
    let max_bytes = r.optional(&k("max_bytes"), raw.max_bytes);
    if max_bytes.flatten().is_some_and(|s| s.0 == 0) {
        r.error(k("max_bytes"), "must be positive");
    }
    let scratch_dir = r.optional_text(&k("scratch_dir"), raw.scratch_dir);
    let postgres_url = r.optional_text(&k("postgres_url"), raw.postgres_url);
    if let Some(Some(url)) = postgres_url.as_ref()
        && !(url.starts_with("postgresql://")
            || url.starts_with("postgres://")
            || (!url.contains("://") && url.contains('=')))
    {
        // The value may hold a password: it is not echoed.
        r.error(
            k("postgres_url"),
            "not a PostgreSQL connection string; write postgresql://user@host:port/database or host=… dbname=… (the value is not shown: it may hold a password)",
        );
    }
    let mysql_url = r.optional_text(&k("mysql_url"), raw.mysql_url);
    if let Some(Some(url)) = mysql_url.as_ref()
        && !(url.starts_with("mysql://") || url.starts_with("mariadb://"))
    {
        // The value may hold a password: it is not echoed.
        r.error(
            k("mysql_url"),
            "not a MySQL/MariaDB URL; write mysql://user@host:port (the value is not shown: it may hold a password)",
        );
    }
    let decrypt = DecryptConfig {
        age_identity_file: r
            .optional_text(
                &k("decrypt.age_identity_file"),
                raw.decrypt.age_identity_file,
            )
            .flatten(),
        gpg_key_file: r
            .optional_text(&k("decrypt.gpg_key_file"), raw.decrypt.gpg_key_file)
            .flatten(),
        gpg_passphrase_file: r
            .optional_text(
                &k("decrypt.gpg_passphrase_file"),
                raw.decrypt.gpg_passphrase_file,
            )
            .flatten(),
    };
    let timeout = r.value(&k("timeout"), raw.timeout);
    if timeout.is_some_and(|t| t.0.is_zero()) {
        r.error(k("timeout"), "must be positive");
    }
    let max_entries = r.value(&k("max_entries"), raw.max_entries);
    if max_entries == Some(0) {
        r.error(k("max_entries"), "must be positive");
    }
    let decoder_memory = r.value(&k("decoder_memory"), raw.decoder_memory);
    if decoder_memory.is_some_and(|m| m.0 < 1 << 20) {
        r.error(k("decoder_memory"), "must be at least 1MiB");
    }
    Some(RestoreConfig {
        latest: latest?,
        expect: raw.expect,
        min_files: min_files?,
        max_bytes: max_bytes?,
        scratch_dir: scratch_dir?,
        postgres_url: postgres_url?,
        mysql_url: mysql_url?,
        decrypt,
        timeout: timeout?,
        max_entries: max_entries?,
        decoder_memory: decoder_memory?,
    })
}

fn monitoring(r: &mut Resolver, raw: RawMonitoring) -> Option<Monitoring> {
    let alert_on_failure = r.value("monitoring.alert_on_failure", raw.alert_on_failure);
    let alert_on_verification_failure = r.value(
        "monitoring.alert_on_verification_failure",
        raw.alert_on_verification_failure,
    );
    let alert_on_restore_failure = r.value(
        "monitoring.alert_on_restore_failure",
        raw.alert_on_restore_failure,
    );
    let health_warning = r.value("monitoring.health_warning", raw.health_warning);
    let health_critical = r.value("monitoring.health_critical", raw.health_critical);
    if let (Some(w), Some(c)) = (health_warning, health_critical)
        && c.0 > w.0
    {
        r.error(
            "",
            format!(
                "monitoring.health_critical ({}) must not be above monitoring.health_warning ({})",
                c.0, w.0
            ),
        );
    }
    let window_days = r.value("monitoring.window_days", raw.window_days);
    if let Some(days) = window_days
        && !(1..=3660).contains(&days)
    {
        r.error(
            "monitoring.window_days",
            format!("expected a whole number of days from 1 to 3660 (ten years), got `{days}`"),
        );
    }
    let max_run_age = r.value("monitoring.max_run_age", raw.max_run_age);
    if max_run_age.is_some_and(|d| d.0.is_zero()) {
        r.error(
            "monitoring.max_run_age",
            "must be positive, e.g. 26h for runs every night",
        );
    }
    let heartbeat_url = r.optional_text("monitoring.heartbeat_url", raw.heartbeat_url);
    if let Some(Some(url)) = &heartbeat_url
        && let Err(reason) = channels::url_problem(url.trim())
    {
        r.error(
            "monitoring.heartbeat_url",
            format!("{reason} (the value is not shown: it is a secret)"),
        );
    }
    Some(Monitoring {
        alert_on_failure: alert_on_failure?,
        alert_on_verification_failure: alert_on_verification_failure?,
        alert_on_restore_failure: alert_on_restore_failure?,
        health_warning: health_warning?,
        health_critical: health_critical?,
        window_days: window_days?,
        max_run_age: max_run_age?,
        heartbeat_url: heartbeat_url?,
    })
}

fn alerts(r: &mut Resolver, raw: RawAlerts, base_dir: &Path) -> Option<Alerts> {
    let cooldown = r.value("alerts.cooldown", raw.cooldown);
    if cooldown.is_some_and(|d| d.0.is_zero()) {
        r.error("alerts.cooldown", "must be positive");
    }
    let send_resolved = r.value("alerts.send_resolved", raw.send_resolved);
    let min_consecutive = r.value("alerts.min_consecutive", raw.min_consecutive);
    let timeout = r.value("alerts.timeout", raw.timeout);
    if timeout.is_some_and(|d| d.0.is_zero()) {
        r.error("alerts.timeout", "must be positive");
    }
    let include_log = r.value("alerts.include_log", raw.include_log);
    let log_enabled = r.value("alerts.log.enabled", raw.log.enabled);
    let (email, email_ok) = email(r, raw.email, base_dir);
    let slack_enabled = r.value("alerts.slack.enabled", raw.slack.enabled);
    let slack = SlackChannel {
        enabled: slack_enabled == Some(true),
        webhook_url: channel_text(
            r,
            slack_enabled,
            "alerts.slack.webhook_url",
            raw.slack.webhook_url,
        ),
    };
    let webhook_enabled = r.value("alerts.webhook.enabled", raw.webhook.enabled);
    let webhook = WebhookChannel {
        enabled: webhook_enabled == Some(true),
        url: channel_text(r, webhook_enabled, "alerts.webhook.url", raw.webhook.url),
    };
    let mut errors = Vec::new();
    channels::validate(&email, &slack, &webhook, &|key| r.failed(key), &mut errors);
    r.errors.extend(errors);
    slack_enabled?;
    webhook_enabled?;
    email_ok.then_some(())?;
    Some(Alerts {
        cooldown: cooldown?,
        send_resolved: send_resolved?,
        min_consecutive: min_consecutive?,
        notify: raw.notify,
        timeout: timeout?,
        include_log: include_log?,
        log: LogChannel {
            enabled: log_enabled?,
        },
        email,
        slack,
        webhook,
    })
}

/// Text of a channel: interpolated when the channel is enabled; otherwise as written,
/// empty where it names a `${VAR}`. An unusable value is recorded and left empty, so the
/// channel's other keys are still checked.
fn channel_text(r: &mut Resolver, enabled: Option<bool>, key: &str, raw: Raw<String>) -> String {
    if enabled == Some(true) {
        r.value(key, raw).unwrap_or_default()
    } else {
        Resolver::uninterpolated(&raw)
    }
}

/// The email channel, and whether every value of it was usable.
fn email(r: &mut Resolver, raw: RawEmailChannel, base_dir: &Path) -> (EmailChannel, bool) {
    let enabled = r.value("alerts.email.enabled", raw.enabled);
    let on = enabled == Some(true);
    let smtp_port = if on {
        r.value("alerts.email.smtp_port", raw.smtp_port)
    } else {
        Some(raw.smtp_port.literal().copied().unwrap_or(587))
    };
    let to = raw
        .to
        .into_iter()
        .enumerate()
        .map(|(i, t)| channel_text(r, enabled, &format!("alerts.email.to[{i}]"), t))
        .collect();
    let email = EmailChannel {
        enabled: on,
        smtp_host: channel_text(r, enabled, "alerts.email.smtp_host", raw.smtp_host),
        smtp_port: smtp_port.unwrap_or(0),
        security: raw.security,
        username: channel_text(r, enabled, "alerts.email.username", raw.username),
        password: channel_text(r, enabled, "alerts.email.password", raw.password),
        from: channel_text(r, enabled, "alerts.email.from", raw.from),
        to,
        ca_path: raw.ca_file.as_deref().map(|f| resolve_against(base_dir, f)),
    };
    if on && let Some(error) = channels::validate_ca_file(&email) {
        r.error("alerts.email.ca_file", error);
    }
    // An unusable `enabled` or port is recorded already; the channel is still checked.
    (email, enabled.is_some() && smtp_port.is_some())
}

fn reporting(r: &mut Resolver, raw: RawReporting) -> Option<Reporting> {
    let output_dir = r.value("reporting.output_dir", raw.output_dir);
    let prometheus_textfile =
        r.optional_text("reporting.prometheus_textfile", raw.prometheus_textfile);
    let templates_dir = r.optional_text("reporting.templates_dir", raw.templates_dir);
    let base_url = r.optional_text("reporting.base_url", raw.base_url);
    if let Some(Some(url)) = &base_url
        && let Err(reason) = channels::url_problem(url.trim())
    {
        r.error("reporting.base_url", reason);
    }
    Some(Reporting {
        output_dir: output_dir?,
        formats: raw.formats,
        prometheus_textfile: prometheus_textfile?,
        templates_dir: templates_dir?,
        base_url: base_url?,
    })
}

fn logging(r: &mut Resolver, raw: RawLogging) -> Option<Logging> {
    Some(Logging {
        file: r.optional_text("logging.file", raw.file)?,
        level: raw.level,
    })
}

/// The store file from `DATABASE_URL` (process environment, then `.env` files) or
/// `database_url`. An empty `DATABASE_URL` counts as unset. A relative path is relative
/// to where the value was written: the working directory for the shell's variable, the
/// `.env` file's directory, the config file's directory.
///
/// A `postgresql://` URL is a PostgreSQL store; this host's local lock file is then
/// `backup-monitor-<host>-<store>.lock` in the temporary directory (`TMPDIR`), `<store>`
/// a hash of the server and database.
fn store_path(
    r: &mut Resolver,
    database_url: String,
    base_dir: &Path,
    host: &str,
) -> Option<(PathBuf, Option<crate::store::PgTarget>)> {
    let env = r.env;
    let (key, url, base) =
        if let Some(url) = env.process_value("DATABASE_URL").filter(|u| !u.is_empty()) {
            (
                "DATABASE_URL".to_string(),
                url.to_string(),
                env.cwd().unwrap_or(base_dir).to_path_buf(),
            )
        } else if let Some(dotenv) = env
            .dotenv_value("DATABASE_URL")
            .filter(|v| !v.value.is_empty())
        {
            (
                format!("DATABASE_URL (in {})", dotenv.file.display()),
                dotenv.value.clone(),
                dotenv.dir().to_path_buf(),
            )
        } else {
            (
                "database_url".to_string(),
                database_url,
                base_dir.to_path_buf(),
            )
        };
    if crate::store::is_postgres_url(&url) {
        return match crate::store::PgTarget::parse(&url) {
            Ok(pg) => {
                let safe: String = host
                    .chars()
                    .map(|c| {
                        if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                            c
                        } else {
                            '_'
                        }
                    })
                    .collect();
                // One file per host and store: two stores on one machine never share it.
                let store = crate::store::fnv1a(pg.to_string().as_bytes());
                let anchor =
                    std::env::temp_dir().join(format!("backup-monitor-{safe}-{store:08x}"));
                Some((anchor, Some(pg)))
            }
            Err(e) => {
                r.error(key, e);
                None
            }
        };
    }
    match store_path_from_url(&url) {
        Ok(p) => Some((resolve_against(&base, &p), None)),
        Err(e) => {
            r.error(key, e);
            None
        }
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
            "use SQLite (sqlite://PATH) or PostgreSQL (postgresql://…); got a URL with scheme `{}`",
            shown(url.split("://").next().unwrap_or(""))
        ));
    }
    if url.is_empty() {
        return Err("must not be empty".into());
    }
    Ok(url.to_string())
}

#[cfg(test)]
impl Default for Monitoring {
    fn default() -> Self {
        let mut r = Resolver {
            env: &Env::default(),
            errors: Vec::new(),
        };
        monitoring(&mut r, RawMonitoring::default()).expect("the defaults are valid")
    }
}

#[cfg(test)]
impl Default for Alerts {
    fn default() -> Self {
        let mut r = Resolver {
            env: &Env::default(),
            errors: Vec::new(),
        };
        alerts(&mut r, RawAlerts::default(), Path::new("/")).expect("the defaults are valid")
    }
}
