//! From the file as written ([`schema`]) and the environment it is read in ([`Env`]) to
//! the [`Config`] the program runs with: `${VAR}` interpolated, paths made absolute,
//! schedules built, and every rule between keys checked. Every error found is reported,
//! not only the first, so one `--check-config` shows all there is to fix. Not for:
//! reading files or the process environment (the caller hands in an [`Env`]).

use super::channels;
use super::env::Env;
use super::schema::{
    RawAlerts, RawConfig, RawEmailChannel, RawLocation, RawLogging, RawMonitoring, RawReporting,
    RawRestore, RawS3,
};
use super::values::{FromScalar, Raw, shown};
use super::{
    Alerts, Backups, Config, DecryptConfig, EmailChannel, Location, LogChannel, Logging,
    Monitoring, RepoSecret, Reporting, RestoreConfig, S3Location, SlackChannel, SnapshotFilter,
    SourceKind, Tool, ToolRepository, WebhookChannel, host_name, resolve_against,
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
    let locations: Vec<Option<Vec<Location>>> = raw
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
    let host = host?.unwrap_or_else(host_name);
    let (store_path, postgres) = store_path(r, raw.database_url, &base_dir, &host)?;
    Some(Config {
        host,
        timezone: timezone?,
        backups: Backups {
            locations: locations
                .into_iter()
                .collect::<Option<Vec<_>>>()?
                .into_iter()
                .flatten()
                .collect(),
        },
        monitoring: monitoring?,
        alerts: alerts?,
        reporting: reporting?,
        logging: logging?,
        base_dir,
        store_path,
        postgres,
        warnings: r.env.warnings().to_vec(),
    })
}

/// Collects the errors while each value is interpolated and parsed.
pub(super) struct Resolver<'e> {
    env: &'e Env,
    errors: Vec<ConfigError>,
}

impl Resolver<'_> {
    pub(super) fn error(&mut self, key: impl Into<String>, message: impl Into<String>) {
        self.errors.push(ConfigError::new(key, message));
    }

    fn failed(&self, key: &str) -> bool {
        self.errors.iter().any(|e| e.key == key)
    }

    /// The config file's directory: relative paths are relative to it.
    pub(super) fn base_dir(&self) -> PathBuf {
        self.env.config_dir().to_path_buf()
    }

    /// The value of `key`, or `None` after recording why it is unusable.
    pub(super) fn value<T: FromScalar>(&mut self, key: &str, raw: Raw<T>) -> Option<T> {
        let resolved = raw.resolve(self.env);
        self.kept(key, resolved)
    }

    /// A URL's value: a `${VAR}` in its user or password part is inserted
    /// percent-encoded (see [`crate::config::interpolate::expand_url`]).
    pub(super) fn url_value<T: FromScalar>(&mut self, key: &str, raw: Raw<T>) -> Option<T> {
        let resolved = raw.resolve_url(self.env);
        self.kept(key, resolved)
    }

    fn kept<T>(
        &mut self,
        key: &str,
        resolved: Result<T, (String, Option<(u32, u32)>)>,
    ) -> Option<T> {
        match resolved {
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
    pub(super) fn optional<T: FromScalar>(
        &mut self,
        key: &str,
        raw: Option<Raw<T>>,
    ) -> Option<Option<T>> {
        match raw {
            None => Some(None),
            Some(raw) => self.value(key, raw).map(Some),
        }
    }

    /// Optional text: absent or empty (after interpolation) is `None`.
    pub(super) fn optional_text(
        &mut self,
        key: &str,
        raw: Option<Raw<String>>,
    ) -> Option<Option<String>> {
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
    mut l: RawLocation,
    tz: chrono_tz::Tz,
    base_dir: &Path,
    names: &mut HashSet<String>,
) -> Option<Vec<Location>> {
    let key = format!("backups.locations[{i}]");
    let k = |field: &str| format!("{key}.{field}");
    let raw_log = super::job_log::RawLog::take(&mut l);
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
    let tool = match l.source {
        SourceKind::Restic => Some(Tool::Restic),
        SourceKind::Borg => Some(Tool::Borg),
        SourceKind::Files | SourceKind::JobLog => None,
    };
    let repository = tool_repository(r, &key, tool, &mut l, base_dir);
    let name = required(r, "name", l.name);
    let job_log = l.source == SourceKind::JobLog;
    let path = match (tool, l.path.take()) {
        // A repository's location is its `repository`: shown where a path would be.
        (Some(_), None) => Some(
            repository
                .as_ref()
                .map_or_else(String::new, |t| t.shown.clone()),
        ),
        (Some(tool), Some(_)) => {
            r.error(
                k("path"),
                format!(
                    "does not apply to kind: {}; name the repository with `repository:`",
                    tool.name()
                ),
            );
            None
        }
        (None, None) if job_log => Some(String::new()),
        (None, Some(_)) if job_log => {
            r.error(
                k("path"),
                "does not apply to kind: job_log (its backups are the rows of `query`); remove it",
            );
            Some(String::new())
        }
        (None, raw) => required(r, "path", raw),
    };
    if !job_log {
        super::job_log::refuse_keys(r, &key, &raw_log);
    }
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
    if tool.is_none() && !job_log && path.as_deref().is_some_and(|p| p.trim().is_empty()) {
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
    let s3 = match &path {
        Some(p) => s3_location(r, &key, p, l.s3),
        None => Some(None),
    };
    let path = path?;
    if tool.is_some() {
        repository.as_ref()?;
    }
    let s3 = s3?;
    let location = Location {
        name: name?,
        // A bucket has no directory: its URL stands where messages show the path.
        root: match s3 {
            Some(_) => PathBuf::from(&path),
            None => resolve_against(base_dir, &path),
        },
        s3,
        path,
        kind: l.kind,
        source: l.source,
        repository,
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
        job_log: None,
    };
    if job_log {
        super::job_log::expand(r, &key, location, raw_log, tz, names)
    } else {
        Some(vec![location])
    }
}

/// The repository of a `kind: restic` / `kind: borg` location (None after recording
/// why it is unusable, or for the other kinds), taking its keys out of `l`. A key of
/// another tool, or of a tool where the location has none, is an error.
fn tool_repository(
    r: &mut Resolver,
    key: &str,
    tool: Option<Tool>,
    l: &mut RawLocation,
    base_dir: &Path,
) -> Option<ToolRepository> {
    let k = |field: &str| format!("{key}.{field}");
    let keys: [(&str, Option<Tool>, bool); 7] = [
        ("repository", None, l.repository.is_some()),
        ("snapshots", Some(Tool::Restic), l.snapshots.is_some()),
        (
            "password_file",
            Some(Tool::Restic),
            l.password_file.is_some(),
        ),
        (
            "password_command",
            Some(Tool::Restic),
            l.password_command.is_some(),
        ),
        ("restic_bin", Some(Tool::Restic), l.restic_bin.is_some()),
        (
            "passphrase_file",
            Some(Tool::Borg),
            l.passphrase_file.is_some(),
        ),
        ("borg_bin", Some(Tool::Borg), l.borg_bin.is_some()),
    ];
    let mut misplaced = false;
    for (field, owner, present) in keys {
        let fits = match (tool, owner) {
            (None, _) => false,
            (Some(_), None) => true,
            (Some(t), Some(o)) => t == o,
        };
        if present && !fits {
            misplaced = true;
            let wanted = owner.map_or("kind: restic or kind: borg".to_string(), |o| {
                format!("kind: {}", o.name())
            });
            r.error(k(field), format!("applies only to locations with {wanted}"));
        }
    }
    if !l.env.is_empty() && tool.is_none() {
        misplaced = true;
        r.error(
            k("env"),
            "applies only to locations with kind: restic or kind: borg",
        );
    }
    let tool = tool?;
    let repository = match l.repository.take() {
        None => {
            r.error(
                key.to_string(),
                format!("`repository` is missing (kind: {} needs it)", tool.name()),
            );
            None
        }
        Some(raw) => r.value(&k("repository"), raw),
    };
    if repository.as_deref().is_some_and(|p| p.trim().is_empty()) {
        r.error(k("repository"), "must not be empty");
    }
    let file = |r: &mut Resolver, field: &str, raw: Option<Raw<String>>| {
        r.optional_text(&k(field), raw)
            .map(|v| v.map(|f| resolve_against(base_dir, &f)))
    };
    let secret = match tool {
        Tool::Restic => {
            let password_file = file(r, "password_file", l.password_file.take());
            let password_command =
                r.optional_text(&k("password_command"), l.password_command.take());
            match (password_file, password_command) {
                (Some(Some(_)), Some(Some(_))) => {
                    r.error(
                        key.to_string(),
                        "give either `password_file` or `password_command`, not both",
                    );
                    None
                }
                (Some(Some(f)), Some(None)) => Some(RepoSecret::File(f)),
                (Some(None), Some(Some(c))) => Some(RepoSecret::Command(c)),
                (Some(None), Some(None)) => {
                    r.error(
                        key.to_string(),
                        "kind: restic needs `password_file` or `password_command` (restic repositories are always encrypted)",
                    );
                    None
                }
                _ => None,
            }
        }
        Tool::Borg => file(r, "passphrase_file", l.passphrase_file.take())
            .map(|f| f.map_or(RepoSecret::None, RepoSecret::File)),
    };
    let bin_raw = match tool {
        Tool::Restic => l.restic_bin.take(),
        Tool::Borg => l.borg_bin.take(),
    };
    let bin_key = format!("{}_bin", tool.name());
    let bin = r.optional_text(&k(&bin_key), bin_raw).map(|b| match b {
        // A path with a slash is relative to the config file; a bare name is
        // looked up on PATH.
        Some(b) if b.contains('/') => resolve_against(base_dir, &b).display().to_string(),
        Some(b) => b,
        None => tool.name().to_string(),
    });
    let mut env = Vec::new();
    for (name, raw) in std::mem::take(&mut l.env) {
        let field = format!("env.{name}");
        if name.is_empty()
            || name.starts_with(|c: char| c.is_ascii_digit())
            || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        {
            r.error(
                k(&field),
                "an environment variable name uses only A-Z a-z 0-9 _ and does not start with a digit",
            );
            continue;
        }
        if reserved_env(tool, &name) {
            r.error(
                k(&field),
                format!(
                    "is set by backup-monitor from the location's other keys; use {}",
                    match tool {
                        Tool::Restic => "`repository`, `password_file` or `password_command`",
                        Tool::Borg => "`repository` or `passphrase_file`",
                    }
                ),
            );
            continue;
        }
        // The value is not echoed in errors: it may be a secret.
        if let Some(value) = r.value(&k(&field), raw) {
            env.push((name, value));
        }
    }
    let snapshots = snapshot_filter(r, key, l.snapshots.take().unwrap_or_default());
    if misplaced {
        return None;
    }
    let repository = repository.map(|repo| local_repository(tool, &repo, base_dir))?;
    Some(ToolRepository {
        tool,
        shown: without_userinfo(&repository),
        repository,
        secret: secret?,
        bin: bin?,
        env,
        snapshots: snapshots?,
    })
}

/// `snapshots:`: a tag holds no comma (restic reads `a,b` as two tags), a path is absolute.
fn snapshot_filter(
    r: &mut Resolver,
    key: &str,
    raw: super::schema::RawSnapshotFilter,
) -> Option<SnapshotFilter> {
    let k = |field: &str| format!("{key}.snapshots.{field}");
    let host = r.optional_text(&k("host"), raw.host);
    let mut ok = true;
    for (i, tag) in raw.tags.iter().enumerate() {
        if tag.is_empty() || tag.contains(',') || tag.chars().any(char::is_control) {
            ok = false;
            r.error(
                k(&format!("tags[{i}]")),
                "a tag is one non-empty word without commas",
            );
        }
    }
    for (i, path) in raw.paths.iter().enumerate() {
        if !path.starts_with('/') || path.chars().any(char::is_control) {
            ok = false;
            r.error(
                k(&format!("paths[{i}]")),
                "must be an absolute path, as `restic snapshots` lists it",
            );
        }
    }
    ok.then_some(())?;
    Some(SnapshotFilter {
        host: host?,
        tags: raw.tags,
        paths: raw.paths,
    })
}

/// `text` with the user-info of every `scheme://user:password@host` replaced by `[redacted]`.
fn without_userinfo(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find("://") {
        let (head, tail) = rest.split_at(i + 3);
        out.push_str(head);
        let end = tail.find(['/', '?', '#']).unwrap_or(tail.len());
        let authority = &tail[..end];
        match authority.rfind('@') {
            Some(at) => {
                out.push_str("[redacted]");
                out.push_str(&authority[at..]);
            }
            None => out.push_str(authority),
        }
        rest = &tail[end..];
    }
    out.push_str(rest);
    out
}

/// Variables backup-monitor sets itself from the location's keys.
fn reserved_env(tool: Tool, name: &str) -> bool {
    match tool {
        Tool::Restic => matches!(
            name,
            "RESTIC_REPOSITORY"
                | "RESTIC_REPOSITORY_FILE"
                | "RESTIC_PASSWORD"
                | "RESTIC_PASSWORD_FILE"
                | "RESTIC_PASSWORD_COMMAND"
        ),
        Tool::Borg => matches!(
            name,
            "BORG_REPO"
                | "BORG_PASSPHRASE"
                | "BORG_PASSCOMMAND"
                | "BORG_PASSPHRASE_FD"
                | "BORG_BASE_DIR"
                | "BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK"
                | "BORG_RELOCATED_REPO_ACCESS_IS_OK"
        ),
    }
}

/// A repository that is a local path is made absolute against the config file's
/// directory; one on a backend (`sftp:`, `s3:`, `rest:`, `ssh://`, `user@host:path`) is
/// kept as written.
fn local_repository(tool: Tool, repo: &str, base_dir: &Path) -> String {
    if let Some(path) = repo.strip_prefix("local:").filter(|_| tool == Tool::Restic) {
        return resolve_against(base_dir, path).display().to_string();
    }
    let remote = match tool {
        Tool::Restic => repo
            .split_once(':')
            .is_some_and(|(scheme, _)| !scheme.is_empty() && !scheme.contains('/')),
        Tool::Borg => {
            repo.contains("://")
                || repo
                    .split_once(':')
                    .is_some_and(|(host, _)| !host.is_empty() && !host.contains('/'))
        }
    };
    if remote && !repo.starts_with('/') {
        repo.to_string()
    } else {
        resolve_against(base_dir, repo).display().to_string()
    }
}

/// `s3:` with `path: s3://BUCKET/PREFIX`: `Some(None)` for a directory location.
fn s3_location(
    r: &mut Resolver,
    key: &str,
    path: &str,
    raw: Option<RawS3>,
) -> Option<Option<S3Location>> {
    let k = |field: &str| format!("{key}.s3.{field}");
    let Some(rest) = path.strip_prefix("s3://") else {
        if raw.is_some() {
            r.error(
                format!("{key}.s3"),
                "applies only to a bucket location: write `path: s3://BUCKET/PREFIX`, or remove `s3:`",
            );
            return None;
        }
        return Some(None);
    };
    let raw = raw.unwrap_or_default();
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    let bucket_ok = (3..=63).contains(&bucket.len())
        && bucket
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || ".-_".contains(c));
    if !bucket_ok {
        r.error(
            format!("{key}.path"),
            format!(
                "`{}` does not name a bucket: write s3://BUCKET/PREFIX (3 to 63 lower-case letters, digits, `.`, `-`)",
                shown(path)
            ),
        );
    }
    let prefix = prefix.trim_start_matches('/');
    // The prefix is a folder: `db` lists `db/…`, never `db-old/…`.
    let prefix = match prefix {
        "" => String::new(),
        p if p.ends_with('/') => p.to_string(),
        p => format!("{p}/"),
    };
    let env_or = |r: &mut Resolver, field: &str, raw: Option<Raw<String>>, var: &str| match r
        .optional_text(&k(field), raw)
    {
        Some(None) => Some(r.env.get(var).filter(|v| !v.is_empty()).map(str::to_string)),
        other => other,
    };
    let endpoint = r.optional_text(&k("endpoint"), raw.endpoint);
    let region = env_or(r, "region", raw.region, "AWS_REGION")
        .map(|v| v.unwrap_or_else(|| "us-east-1".to_string()));
    let path_style = r.optional(&k("path_style"), raw.path_style);
    let access_key_id = env_or(r, "access_key_id", raw.access_key_id, "AWS_ACCESS_KEY_ID");
    let secret_access_key = env_or(
        r,
        "secret_access_key",
        raw.secret_access_key,
        "AWS_SECRET_ACCESS_KEY",
    );
    let session_token = env_or(r, "session_token", raw.session_token, "AWS_SESSION_TOKEN");
    if let Some(Some(e)) = &endpoint {
        let valid = url::Url::parse(e)
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https") && u.host_str().is_some());
        match valid {
            None => r.error(
                k("endpoint"),
                format!(
                    "`{}` is not an http:// or https:// URL of an S3 server",
                    shown(e)
                ),
            ),
            Some(u) if !u.username().is_empty() || u.password().is_some() => r.error(
                k("endpoint"),
                "must not hold credentials: use access_key_id and secret_access_key (the value is not shown)",
            ),
            Some(_) => {}
        }
    }
    if let Some(region) = &region
        && (region.is_empty()
            || !region
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-'))
    {
        r.error(
            k("region"),
            format!("`{}` is not a region name like eu-west-1", shown(region)),
        );
    }
    if let (Some(id), Some(secret)) = (&access_key_id, &secret_access_key)
        && id.is_some() != secret.is_some()
    {
        let missing = if id.is_none() {
            "access_key_id (or AWS_ACCESS_KEY_ID)"
        } else {
            "secret_access_key (or AWS_SECRET_ACCESS_KEY)"
        };
        r.error(
            format!("{key}.s3"),
            format!("{missing} is missing: give both keys, or neither for a public bucket"),
        );
    }
    let endpoint = endpoint?;
    let region = region?;
    let path_style = path_style?.unwrap_or(endpoint.is_some());
    let endpoint = endpoint
        .map(|e| e.trim_end_matches('/').to_string())
        .unwrap_or_else(|| format!("https://s3.{region}.amazonaws.com"));
    if !bucket_ok {
        return None;
    }
    Some(Some(S3Location {
        bucket: bucket.to_string(),
        prefix,
        endpoint,
        region,
        path_style,
        access_key_id: access_key_id?,
        secret_access_key: secret_access_key?,
        session_token: session_token?,
    }))
}

fn restore(r: &mut Resolver, key: &str, raw: RawRestore) -> Option<RestoreConfig> {
    let k = |field: &str| format!("{key}.restore.{field}");
    let latest = r.value(&k("latest"), raw.latest);
    for (i, p) in raw.include.iter().enumerate() {
        if p.trim().is_empty() || p.chars().any(char::is_control) {
            r.error(
                format!("{key}.restore.include[{i}]"),
                "must be a path inside the snapshot or archive, on one line",
            );
        }
    }
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
        include: raw.include,
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
/// `.env` file's directory, the config file's directory. When `DATABASE_URL` wins, the
/// config's `database_url` is neither interpolated nor checked: its variables need not
/// be set.
///
/// A `postgresql://` URL is a PostgreSQL store; this host's local lock file is then
/// `backup-monitor-<host>-<store>.lock` in the temporary directory (`TMPDIR`), `<store>`
/// a hash of the server and database.
fn store_path(
    r: &mut Resolver,
    database_url: Raw<String>,
    base_dir: &Path,
    host: &str,
) -> Option<(PathBuf, Option<crate::store::PgTarget>)> {
    let env = r.env;
    if env.is_not_utf8("DATABASE_URL") {
        r.error(
            "DATABASE_URL".to_string(),
            "is set to bytes that are not UTF-8 text; set it to UTF-8 text (or unset it to use database_url)".to_string(),
        );
        return None;
    }
    let (key, url, base) =
        if let Some(url) = env.process_value("DATABASE_URL").filter(|u| !u.is_empty()) {
            (
                "DATABASE_URL (in the environment, in place of database_url)".to_string(),
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
                r.url_value("database_url", database_url)?,
                base_dir.to_path_buf(),
            )
        };
    if crate::store::is_postgres_url(&url) {
        return match crate::store::PgTarget::parse(&url) {
            Ok(pg) => Some((pg_lock_anchor(host, &pg), Some(pg))),
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
    // A libpq connection string (`host=… user=… password=…`) is not a file name: taken
    // as one, it would make a SQLite store named with the password.
    if is_conninfo(url) {
        return Err("is a key=value connection string (host=, dbname=, user=, password=…), which is not supported; write the PostgreSQL store as a URL, postgresql://user@host:port/database, with the password in PGPASSWORD or ~/.pgpass".into());
    }
    // `postgresql:/host/db` (one slash) would otherwise be a SQLite file of that name.
    let scheme = url.split(':').next().unwrap_or("").to_ascii_lowercase();
    if ["postgresql", "postgres", "sqlite"].contains(&scheme.as_str()) && !url.contains("://") {
        return Err(format!(
            "`{scheme}:` must be followed by `//`: postgresql://USER@HOST/DATABASE or sqlite://PATH"
        ));
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

/// Whether `text` reads as a libpq connection string: a word that is one of its
/// keywords followed by `=` (`host=db`, or `host = db`).
fn is_conninfo(text: &str) -> bool {
    const KEYWORDS: &[&str] = &[
        "host",
        "hostaddr",
        "port",
        "dbname",
        "user",
        "password",
        "passfile",
        "sslmode",
        "sslrootcert",
        "sslcert",
        "sslkey",
        "connect_timeout",
        "application_name",
        "options",
        "service",
        "target_session_attrs",
        "channel_binding",
        "gssencmode",
        "require_auth",
    ];
    let words: Vec<&str> = text.split_whitespace().collect();
    words.iter().enumerate().any(|(i, word)| {
        let (key, rest) = word.split_once('=').unwrap_or((word, ""));
        let followed = !rest.is_empty()
            || word.ends_with('=')
            || words.get(i + 1).is_some_and(|next| next.starts_with('='));
        KEYWORDS.contains(&key.to_ascii_lowercase().as_str()) && followed
    })
}

/// Where the local lock file of `host`'s runs on the PostgreSQL store `pg` is anchored:
/// one file per host and store in the temporary directory, so two stores on one machine
/// never share it.
pub fn pg_lock_anchor(host: &str, pg: &crate::store::PgTarget) -> PathBuf {
    std::env::temp_dir().join(format!("backup-monitor-{}", pg_store_name(host, pg)))
}

/// `host` on the PostgreSQL store `pg` as a file name, `<host>-<hash of the store>`: what
/// this machine keeps for that host's runs on that store is named by it (the lock file,
/// the backup tools' state).
///
/// A host name with characters a file name cannot hold has them replaced by `_` and is
/// hashed with the store, so that `web+1` and `web_1` on one machine never share a lock
/// file; a name kept as it is hashes the store alone, as it always did (its tools' state
/// keeps its place).
pub fn pg_store_name(host: &str, pg: &crate::store::PgTarget) -> String {
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
    let store = if safe == host {
        crate::store::fnv1a(pg.to_string().as_bytes())
    } else {
        crate::store::fnv1a(format!("{pg}\n{host}").as_bytes())
    };
    format!("{safe}-{store:08x}")
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

#[cfg(test)]
mod repository_tests {
    use super::{Tool, local_repository};
    use std::path::Path;

    #[test]
    fn local_repositories_are_made_absolute_and_backends_kept() {
        let base = Path::new("/etc/bm");
        let restic = |r| local_repository(Tool::Restic, r, base);
        assert_eq!(restic("repo"), "/etc/bm/repo");
        assert_eq!(restic("/srv/restic"), "/srv/restic");
        assert_eq!(restic("local:repo"), "/etc/bm/repo");
        assert_eq!(restic("sftp:host:/srv/r"), "sftp:host:/srv/r");
        assert_eq!(
            restic("s3:s3.amazonaws.com/bucket"),
            "s3:s3.amazonaws.com/bucket"
        );
        assert_eq!(restic("rest:https://u:p@h/"), "rest:https://u:p@h/");
        let borg = |r| local_repository(Tool::Borg, r, base);
        assert_eq!(borg("repo"), "/etc/bm/repo");
        assert_eq!(borg("./a:b/repo"), "/etc/bm/./a:b/repo");
        assert_eq!(borg("ssh://borg@vault/./web"), "ssh://borg@vault/./web");
        assert_eq!(borg("borg@vault:web"), "borg@vault:web");
    }

    #[test]
    fn credentials_in_a_repository_are_never_shown() {
        use super::without_userinfo;
        assert_eq!(
            without_userinfo("rest:https://user:s3cret@host:8000/repo"),
            "rest:https://[redacted]@host:8000/repo"
        );
        assert_eq!(
            without_userinfo("ssh://borg@vault/./web"),
            "ssh://[redacted]@vault/./web"
        );
        assert_eq!(without_userinfo("/srv/restic"), "/srv/restic");
    }
}

#[cfg(test)]
mod store_tests {
    use super::{is_conninfo, pg_store_name, store_path_from_url};

    #[test]
    fn a_key_value_connection_string_is_refused_without_being_shown() {
        for text in [
            "host=127.0.0.1 port=5432 user=bm password=Hunter2Secret dbname=fleet",
            "dbname=fleet",
            "  user = bm password=Hunter2Secret",
            "PASSWORD=Hunter2Secret host=db",
        ] {
            assert!(is_conninfo(text), "{text}");
            let e = store_path_from_url(text).unwrap_err();
            assert!(!e.contains("Hunter2Secret") && !e.contains("fleet"), "{e}");
            assert!(e.contains("postgresql://user@host"), "{e}");
        }
        for path in [
            "backup_monitor.db",
            "/srv/bm/store.db",
            "a=b.db",
            "my host.db",
        ] {
            assert!(!is_conninfo(path), "{path}");
            assert_eq!(store_path_from_url(path).unwrap(), path);
        }
    }

    #[test]
    fn host_names_that_differ_in_replaced_characters_name_different_files() {
        let pg = crate::store::PgTarget::parse("postgresql://bm@db.example/fleet").unwrap();
        let plain = pg_store_name("web_11", &pg);
        let replaced = pg_store_name("web+11", &pg);
        assert!(plain.starts_with("web_11-") && replaced.starts_with("web_11-"));
        assert_ne!(plain, replaced);
        assert_ne!(replaced, pg_store_name("web@11", &pg));
        // A name kept as it is keeps the name it always had.
        let store = crate::store::fnv1a(pg.to_string().as_bytes());
        assert_eq!(plain, format!("web_11-{store:08x}"));
    }
}
