//! The keys of `kind: job_log`: the database, the query, the status values and the jobs.
//! Each job becomes a location of its own, named `LOCATION.JOB`, with its own schedule,
//! backups and problems; the jobs of one log share one [`JobLogSource`], so the query
//! runs once per log and run. Not for: connecting or querying (`source::job_log`).

use super::resolve::Resolver;
use super::schema::{RawJob, RawLocation, RawStatusMap};
use super::values::{DurationValue, Raw, shown};
use super::{JobLog, JobLogSource, Location, StatusMap, resolve_against};
use crate::schedule::Schedule;
use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::Arc;

/// The longest query accepted: far beyond any real one.
const MAX_QUERY_BYTES: usize = 64 * 1024;

/// `query_timeout` when none is written.
const DEFAULT_QUERY_TIMEOUT: DurationValue = DurationValue(std::time::Duration::from_secs(30));

/// The longest job name: it becomes part of a location name.
const MAX_JOB_NAME: usize = 128;

/// The job-log keys of one location, taken out of it before the rest is resolved.
pub(super) struct RawLog {
    database_url: Option<Raw<String>>,
    query: Option<Raw<String>>,
    query_timeout: Option<Raw<DurationValue>>,
    jobs: Vec<RawJob>,
    status_map: RawStatusMap,
    status_map_default: bool,
}

impl RawLog {
    pub(super) fn take(l: &mut RawLocation) -> RawLog {
        let status_map = std::mem::take(&mut l.status_map);
        let defaults = RawStatusMap::default();
        RawLog {
            database_url: l.database_url.take(),
            query: l.query.take(),
            query_timeout: l.query_timeout.take(),
            jobs: std::mem::take(&mut l.jobs),
            status_map_default: status_map.success == defaults.success
                && status_map.failure == defaults.failure
                && status_map.running == defaults.running,
            status_map,
        }
    }
}

/// A location of another kind that sets job-log keys: say they do not apply.
pub(super) fn refuse_keys(r: &mut Resolver, key: &str, raw: &RawLog) {
    for (field, set) in [
        ("database_url", raw.database_url.is_some()),
        ("query", raw.query.is_some()),
        ("query_timeout", raw.query_timeout.is_some()),
        ("jobs", !raw.jobs.is_empty()),
        ("status_map", !raw.status_map_default),
    ] {
        if set {
            r.error(
                format!("{key}.{field}"),
                "applies only to kind: job_log; remove it or set `kind: job_log`",
            );
        }
    }
}

/// The locations of a job log: one per job, each a copy of `base` with the job's
/// name, schedule and `min_size`.
pub(super) fn expand(
    r: &mut Resolver,
    key: &str,
    base: Location,
    raw: RawLog,
    tz: chrono_tz::Tz,
    names: &mut HashSet<String>,
) -> Option<Vec<Location>> {
    let k = |field: &str| format!("{key}.{field}");
    let url = match raw.database_url {
        None => {
            r.error(
                key,
                "`database_url` is missing: kind: job_log needs the database the backup system logs into, e.g. database_url: ${BACKUP_LOG_URL}",
            );
            None
        }
        Some(raw) => r.value(&k("database_url"), raw),
    };
    let url = url.and_then(|u| match database_url(&u, &r.base_dir()) {
        Ok(u) => Some(u),
        Err(e) => {
            r.error(k("database_url"), e);
            None
        }
    });
    let query = match raw.query {
        None => {
            r.error(
                key,
                "`query` is missing: kind: job_log needs a query returning name, finished_at, status, size_bytes",
            );
            None
        }
        Some(raw) => r.value(&k("query"), raw),
    };
    let query = query.and_then(|q| match clean_query(&q) {
        Ok(q) => Some(q),
        Err(e) => {
            r.error(k("query"), e);
            None
        }
    });
    let query_timeout = r
        .optional(&k("query_timeout"), raw.query_timeout)
        .map(|t| t.unwrap_or(DEFAULT_QUERY_TIMEOUT));
    if query_timeout.is_some_and(|t| t.0.is_zero()) {
        r.error(k("query_timeout"), "must be positive");
    }
    let status_map = status_map(r, key, &raw.status_map);
    if raw.jobs.is_empty() {
        r.error(
            k("jobs"),
            "list the jobs to watch, e.g. jobs: [{name: nightly-db, schedule: daily, at: \"02:00\"}]",
        );
    }
    let mut job_names = HashSet::new();
    let jobs: Vec<Option<(String, Schedule, super::Size)>> = raw
        .jobs
        .into_iter()
        .enumerate()
        .map(|(i, job)| {
            self::job(
                r,
                &format!("{key}.jobs[{i}]"),
                job,
                &base,
                tz,
                &mut job_names,
            )
        })
        .collect();
    let jobs: Vec<(String, Schedule, super::Size)> = jobs.into_iter().collect::<Option<_>>()?;
    for (job, _, _) in &jobs {
        let name = format!("{}.{job}", base.name);
        if !names.insert(name.clone()) {
            r.error(
                k("jobs"),
                format!(
                    "job `{job}` makes the location name `{}`, which another location has; rename one",
                    shown(&name)
                ),
            );
        }
    }
    let (url, shown_url) = url?;
    let source = Arc::new(JobLogSource {
        group: base.name.clone(),
        database_url: url,
        shown_url: shown_url.clone(),
        query: query?,
        query_timeout: query_timeout?,
        status_map: status_map?,
        jobs: jobs.iter().map(|(j, _, _)| j.clone()).collect(),
    });
    Some(
        jobs.into_iter()
            .map(|(job, schedule, min_size)| Location {
                name: format!("{}.{job}", base.name),
                path: shown_url.clone(),
                root: PathBuf::from(&shown_url),
                schedule,
                min_size,
                // Only --monitor applies: there is nothing to hash or restore.
                verify_integrity: false,
                test_restore: false,
                job_log: Some(JobLog {
                    job,
                    source: Arc::clone(&source),
                }),
                ..base.clone()
            })
            .collect(),
    )
}

/// One job: its name, its schedule (its own, or the location's when it sets none) and
/// its `min_size`.
fn job(
    r: &mut Resolver,
    key: &str,
    raw: RawJob,
    base: &Location,
    tz: chrono_tz::Tz,
    seen: &mut HashSet<String>,
) -> Option<(String, Schedule, super::Size)> {
    let k = |field: &str| format!("{key}.{field}");
    let name = match raw.name {
        None => {
            r.error(
                key,
                "`name` is missing (the job's name as the log writes it)",
            );
            None
        }
        Some(raw) => r.value(&k("name"), raw),
    };
    if let Some(name) = &name {
        if name.is_empty()
            || name.len() > MAX_JOB_NAME
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
        {
            r.error(
                k("name"),
                format!(
                    "`{}` must be 1 to {MAX_JOB_NAME} characters of A-Z a-z 0-9 _ . - (rename other names in the query, e.g. SELECT replace(container, ' ', '_') AS name)",
                    shown(name)
                ),
            );
        } else if !seen.insert(name.clone()) {
            r.error(k("name"), format!("duplicate job `{name}`"));
        }
    }
    let frequency = r.optional(&k("schedule"), raw.schedule);
    let at = r.optional(&k("at"), raw.at);
    let grace = r.optional(&k("grace"), raw.grace);
    if grace.flatten().is_some_and(|g| g.0.is_zero()) {
        r.error(k("grace"), "must be positive");
    }
    let min_size = r.optional(&k("min_size"), raw.min_size);
    let schedule = match (frequency?, at?, grace?) {
        (None, None, None) => base.schedule.clone(),
        (frequency, at, grace) => {
            // A job that sets its schedule gets none of the location's `at` or `grace`;
            // one that sets only `at` or `grace` keeps the location's schedule and the
            // other of the two.
            let (at, grace) = (at.map(|a| a.0), grace.map(|g| g.as_chrono()));
            let (frequency, at, grace) = match frequency {
                Some(f) => (f.0, at, grace),
                None => (
                    base.schedule.frequency.clone(),
                    at.or(base.schedule.at),
                    grace.or(base.schedule.grace),
                ),
            };
            match Schedule::new(frequency, at, grace, tz) {
                Ok(s) => s,
                Err(e) => {
                    r.error(k("at"), e);
                    return None;
                }
            }
        }
    };
    Some((name?, schedule, min_size?.unwrap_or(base.min_size)))
}

fn status_map(r: &mut Resolver, key: &str, raw: &RawStatusMap) -> Option<StatusMap> {
    let k = format!("{key}.status_map");
    if raw.success.is_empty() {
        r.error(
            format!("{k}.success"),
            "must list at least one value (the status of a successful run)",
        );
        return None;
    }
    let mut seen: Vec<(String, &str)> = Vec::new();
    let mut ok = true;
    for (list, values) in [
        ("success", &raw.success),
        ("failure", &raw.failure),
        ("running", &raw.running),
    ] {
        for v in values {
            let norm = v.trim().to_lowercase();
            if norm.is_empty() {
                r.error(format!("{k}.{list}"), "an empty status value");
                ok = false;
            } else if let Some((_, other)) = seen.iter().find(|(s, _)| *s == norm) {
                r.error(
                    format!("{k}.{list}"),
                    format!(
                        "`{}` is listed under {other} too; a status value has one meaning",
                        shown(v)
                    ),
                );
                ok = false;
            } else {
                seen.push((norm, list));
            }
        }
    }
    ok.then(|| StatusMap::new(&raw.success, &raw.failure, &raw.running))
}

/// The query as it will run: without trailing blanks and semicolons.
fn clean_query(q: &str) -> Result<String, String> {
    let q = q
        .trim()
        .trim_end_matches(|c: char| c == ';' || c.is_whitespace());
    if q.is_empty() {
        return Err(
            "must not be empty: write a SELECT returning name, finished_at, status, size_bytes"
                .into(),
        );
    }
    if q.len() > MAX_QUERY_BYTES {
        return Err(format!(
            "is {} bytes, more than {} KiB; write a view in the database and select from it",
            q.len(),
            MAX_QUERY_BYTES / 1024
        ));
    }
    Ok(q.to_string())
}

/// The connection URL to use and the form of it that may be shown. The value may hold a
/// password: no error quotes it.
fn database_url(url: &str, base_dir: &std::path::Path) -> Result<(String, String), String> {
    let url = url.trim();
    if let Some(path) = url.strip_prefix("sqlite://") {
        if path.is_empty() {
            return Err(
                "`sqlite://` needs a file path, e.g. sqlite:///var/lib/backups/jobs.db".into(),
            );
        }
        let path = resolve_against(base_dir, path);
        let shown = format!("sqlite://{}", path.display());
        return Ok((shown.clone(), shown));
    }
    if url.starts_with("postgresql://") || url.starts_with("postgres://") {
        let parsed = url::Url::parse(url).map_err(|e| {
            format!("not a valid PostgreSQL URL ({e}); write postgresql://user@host:port/database (the value is not shown: it may hold a password)")
        })?;
        let host = parsed.host_str().unwrap_or("localhost");
        let port = parsed.port().map(|p| format!(":{p}")).unwrap_or_default();
        let shown = format!("postgresql://{host}{port}{}", parsed.path());
        return Ok((url.to_string(), shown));
    }
    Err("not a job-log database URL; write postgresql://user@host:port/database or sqlite://PATH (the value is not shown: it may hold a password)".into())
}

#[cfg(test)]
mod tests {
    use super::database_url;
    use std::path::Path;

    #[test]
    fn the_shown_url_has_no_secret() {
        let (url, shown) = database_url(
            "postgresql://backup:s3cret@db.example.com:5433/admin?sslmode=require&password=x",
            Path::new("/etc/bm"),
        )
        .unwrap();
        assert!(url.contains("s3cret"));
        assert_eq!(shown, "postgresql://db.example.com:5433/admin");
        let (url, shown) = database_url("sqlite://jobs.db", Path::new("/etc/bm")).unwrap();
        assert_eq!(url, "sqlite:///etc/bm/jobs.db");
        assert_eq!(shown, url);
        let err = database_url("mysql://u:s3cret@h/db", Path::new("/")).unwrap_err();
        assert!(!err.contains("s3cret"), "{err}");
        let err = database_url("postgresql://u:s3cret@[bad/db", Path::new("/")).unwrap_err();
        assert!(!err.contains("s3cret"), "{err}");
    }
}

#[cfg(test)]
mod expansion {
    use crate::schedule::Frequency;
    use std::path::Path;

    #[test]
    fn each_job_is_a_location_with_its_schedule() {
        let c = crate::config::parse_str(
            "timezone: UTC\nbackups:\n  locations:\n    - name: logs\n      kind: job_log\n      database_url: sqlite://jobs.db\n      query: SELECT 1;;\n      schedule: daily\n      at: \"01:00\"\n      grace: 3h\n      min_size: 10\n      jobs:\n        - name: a\n        - name: b\n          schedule: weekly\n          at: \"sun 03:00\"\n        - name: c\n          at: \"22:00\"\n          min_size: 99\n",
            Path::new("/etc/bm"),
        )
        .unwrap();
        let locs = &c.backups.locations;
        let names: Vec<&str> = locs.iter().map(|l| l.name.as_str()).collect();
        assert_eq!(names, ["logs.a", "logs.b", "logs.c"]);
        let (a, b, cc) = (&locs[0], &locs[1], &locs[2]);
        assert_eq!(a.schedule.grace, Some(chrono::Duration::hours(3)));
        assert_eq!(b.schedule.frequency, Frequency::Weekly);
        assert_eq!(
            b.schedule.grace,
            Some(chrono::Duration::hours(1)),
            "a job's own schedule takes the default grace, not the location's"
        );
        assert_eq!(cc.schedule.frequency, Frequency::Daily);
        assert_eq!(cc.schedule.grace, Some(chrono::Duration::hours(3)));
        assert_eq!((a.min_size.0, cc.min_size.0), (10, 99));
        assert!(locs.iter().all(|l| !l.verify_integrity && !l.test_restore));
        let source = &a.job_log.as_ref().unwrap().source;
        assert_eq!(source.query, "SELECT 1");
        assert_eq!(source.database_url, "sqlite:///etc/bm/jobs.db");
        assert!(std::sync::Arc::ptr_eq(
            source,
            &cc.job_log.as_ref().unwrap().source
        ));
        assert_eq!(a.path, "sqlite:///etc/bm/jobs.db");
    }

    #[test]
    fn a_job_name_may_not_collide_with_a_location() {
        let err = crate::config::parse_str(
            "backups:\n  locations:\n    - name: logs.a\n      path: /x\n    - name: logs\n      kind: job_log\n      database_url: sqlite://j.db\n      query: SELECT 1\n      jobs: [{name: a}, {name: a}]\n",
            Path::new("/"),
        )
        .unwrap_err()
        .join("\n");
        assert!(err.contains("duplicate job `a`"), "{err}");
        assert!(err.contains("makes the location name `logs.a`"), "{err}");
    }
}
