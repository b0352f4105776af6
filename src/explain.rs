//! `--explain`: why the monitor sees what it sees. For each location, every matching file
//! with its timestamp, where that came from (a name form, `filename_format` or the mtime),
//! its mtime, the schedule slot it satisfies and whether it has settled; then the due slots
//! in the window that no settled file satisfies.
//!
//! Reads the config and the disk only: no store writes, no lock (the store is opened
//! read-only, and only to resolve `--location-id`). Not for: judging problems (`monitor`).

use crate::cli::{Cli, Format};
use crate::config::{self, Config, Location};
use crate::logging;
use crate::problem::one_line;
use crate::scan;
use crate::schedule::Slot;
use crate::store::Store;
use crate::timestamp::TimestampSource;
use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use serde_json::json;

/// Which locations to explain: all, or one by name or by store id.
#[derive(Debug, Clone, Copy, Default)]
pub struct Selection<'a> {
    pub name: Option<&'a str>,
    pub id: Option<i64>,
}

/// Why nothing could be explained.
#[derive(Debug, thiserror::Error)]
pub enum ExplainError {
    #[error("unknown location {asked}; known locations: {known}")]
    UnknownLocation { asked: String, known: String },
    #[error(
        "location id {id} is not known: no store at {store} yet; select the location with --location-name"
    )]
    NoStore { id: i64, store: String },
    #[error("cannot read the store {store} to find location id {id}: {reason}")]
    Store {
        id: i64,
        store: String,
        reason: String,
    },
}

/// The explanation of every selected location.
#[derive(Debug, Clone)]
pub struct Explanation {
    pub now: DateTime<Utc>,
    pub window_start: DateTime<Utc>,
    pub days: u32,
    pub tz: Tz,
    pub locations: Vec<LocationExplanation>,
}

#[derive(Debug, Clone)]
pub struct LocationExplanation {
    pub name: String,
    pub path: String,
    /// The schedule in words: `daily`, `cron \`0 2 * * *\``.
    pub schedule: String,
    /// Matching files, oldest timestamp first.
    pub files: Vec<FileExplanation>,
    /// Due slots in the window that no settled file satisfies, by their start.
    pub missing_slots: Vec<DateTime<Utc>>,
    /// Why the location could not be scanned, if it could not.
    pub error: Option<String>,
    /// Paths under the location that could not be read (their files are not listed).
    pub unreadable: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct FileExplanation {
    /// Relative to the location, `/`-separated.
    pub path: String,
    pub timestamp: DateTime<Utc>,
    pub timestamp_source: TimestampSource,
    pub mtime: DateTime<Utc>,
    /// The slot of the window its timestamp falls in; None outside the window.
    pub slot: Option<Slot>,
    /// Modified longer ago than `settle`: counts for its slot.
    pub settled: bool,
}

impl Explanation {
    /// 0 when every selected location could be read; 3 (UNKNOWN) when one could not.
    pub fn exit_code(&self) -> i32 {
        if self.locations.iter().any(|l| l.error.is_some()) {
            3
        } else {
            0
        }
    }

    pub fn status(&self) -> &'static str {
        match self.exit_code() {
            0 => "ok",
            _ => "unknown",
        }
    }

    fn local(&self, t: DateTime<Utc>) -> String {
        t.with_timezone(&self.tz)
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, false)
    }
}

/// Explain the selected locations as of `now`, with the window of the last `days` days.
pub fn run(
    config: &Config,
    now: DateTime<Utc>,
    selection: Selection,
    days: u32,
) -> Result<Explanation, ExplainError> {
    let tz = config.timezone.0;
    let window_start = now - chrono::Duration::days(i64::from(days));
    let locations = select(config, selection)?
        .into_iter()
        .map(|loc| explain_location(config, loc, &tz, window_start, now))
        .collect();
    Ok(Explanation {
        now,
        window_start,
        days,
        tz,
        locations,
    })
}

fn select<'a>(config: &'a Config, selection: Selection) -> Result<Vec<&'a Location>, ExplainError> {
    let all = &config.backups.locations;
    let known = || {
        if all.is_empty() {
            "none configured".to_string()
        } else {
            all.iter()
                .map(|l| l.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        }
    };
    if let Some(name) = selection.name {
        return match all.iter().find(|l| l.name == name) {
            Some(l) => Ok(vec![l]),
            None => Err(ExplainError::UnknownLocation {
                asked: name.to_string(),
                known: known(),
            }),
        };
    }
    let Some(id) = selection.id else {
        return Ok(all.iter().collect());
    };
    // Store ids live in the store: read it (read-only, no lock) to map the id to a name.
    let store_text = config.store_path.display().to_string();
    let store_error = |e: anyhow::Error| ExplainError::Store {
        id,
        store: store_text.clone(),
        reason: crate::output::chained(&e),
    };
    let store = Store::connect_read_only(config)
        .map_err(store_error)?
        .ok_or_else(|| ExplainError::NoStore {
            id,
            store: store_text.clone(),
        })?;
    let names: Vec<&str> = all.iter().map(|l| l.name.as_str()).collect();
    let ids = store.location_ids(&names).map_err(store_error)?;
    if let Some(l) = all.iter().find(|l| ids.get(&l.name) == Some(&id)) {
        return Ok(vec![l]);
    }
    Err(ExplainError::UnknownLocation {
        asked: format!("id {id}"),
        known: known(),
    })
}

fn explain_location(
    config: &Config,
    loc: &Location,
    tz: &Tz,
    window_start: DateTime<Utc>,
    now: DateTime<Utc>,
) -> LocationExplanation {
    let schedule = &loc.schedule;
    let mut out = LocationExplanation {
        name: loc.name.clone(),
        path: loc
            .repository
            .as_ref()
            .map_or_else(|| loc.root.display().to_string(), |r| r.shown.clone()),
        schedule: schedule.frequency.describe(),
        files: Vec::new(),
        missing_slots: Vec::new(),
        error: None,
        unreadable: Vec::new(),
    };
    if loc.job_log.is_some() {
        out.error = Some("it is a job log, not files; --monitor judges its rows".into());
        return out;
    }
    let scanned = match &loc.repository {
        // The tool's listing (read-only; sizes are not asked for: they are not shown).
        Some(repo) => {
            let cx = crate::source::repository::ToolContext::of(config, loc, repo);
            crate::source::repository::list(&cx, loc, repo, &|_| Some(0))
                .map(|files| scan::ScanResult {
                    sources: files.iter().map(|f| f.ts_source).collect(),
                    files,
                    unreadable: Vec::new(),
                })
                .map_err(|e| e.to_string())
        }
        None => crate::source::of(loc)
            .list(loc, tz, now)
            .map_err(|e| e.to_string()),
    };
    let found = match scanned {
        Ok(found) => found,
        Err(e) => {
            out.error = Some(e);
            return out;
        }
    };
    let slots = schedule.slots_between(window_start, now);
    out.files = found
        .files
        .iter()
        .zip(&found.sources)
        .map(|(f, &source)| FileExplanation {
            path: f.path.clone(),
            timestamp: f.ts,
            timestamp_source: source,
            mtime: scan::mtime_from_ns(f.mtime_ns),
            slot: slots.iter().find(|s| s.contains(f.ts)).copied(),
            settled: f.settled,
        })
        .collect();
    out.files
        .sort_by(|a, b| (a.timestamp, &a.path).cmp(&(b.timestamp, &b.path)));
    // What the monitor would count: settled files only (it also counts the history of
    // backups it recorded and that are gone since; the disk does not know those).
    let settled: Vec<DateTime<Utc>> = out
        .files
        .iter()
        .filter(|f| f.settled)
        .map(|f| f.timestamp)
        .collect();
    out.missing_slots = schedule
        .judge(window_start, now, settled.iter().min().copied(), &settled)
        .into_iter()
        .filter(|j| !j.satisfied)
        .map(|j| j.slot.start)
        .collect();
    out.unreadable = found.unreadable;
    out
}

/// The JSON document of `--explain --format json`.
pub fn to_json(e: &Explanation) -> serde_json::Value {
    let locations: Vec<serde_json::Value> = e
        .locations
        .iter()
        .map(|l| {
            let files: Vec<serde_json::Value> = l
                .files
                .iter()
                .map(|f| {
                    json!({
                        "path": f.path,
                        "timestamp": e.local(f.timestamp),
                        "timestamp_source": f.timestamp_source.code(),
                        "mtime": e.local(f.mtime),
                        "slot": f.slot.map(|s| e.local(s.start)),
                        "settled": f.settled,
                    })
                })
                .collect();
            json!({
                "name": l.name,
                "path": l.path,
                "schedule": l.schedule,
                "files": files,
                "missing_slots": l.missing_slots.iter().map(|t| e.local(*t)).collect::<Vec<_>>(),
                "unreadable": l.unreadable,
                "error": l.error,
            })
        })
        .collect();
    json!({
        "now": e.local(e.now),
        "window_start": e.local(e.window_start),
        "locations": locations,
        "status": e.status(),
        "exit_code": e.exit_code(),
    })
}

/// The text for people: one block per location, two lines per file.
pub fn render_text(e: &Explanation) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let days = match e.days {
        1 => "day".to_string(),
        n => format!("{n} days"),
    };
    let _ = writeln!(
        out,
        "As of {}; slots judged from {} (the last {days}).",
        e.local(e.now),
        e.local(e.window_start),
    );
    for l in &e.locations {
        let _ = writeln!(
            out,
            "\n{} ({}, {})",
            one_line(&l.name),
            one_line(&l.path),
            l.schedule
        );
        if let Some(error) = &l.error {
            let _ = writeln!(out, "  cannot scan: {}", one_line(error));
            continue;
        }
        if l.files.is_empty() {
            let _ = writeln!(out, "  no file matches the patterns");
        }
        for f in &l.files {
            let slot = match f.slot {
                Some(s) => format!("slot {}", e.local(s.start)),
                None if f.timestamp > e.now => "no slot: in the future".to_string(),
                None => "no slot: before the window".to_string(),
            };
            let settled = if f.settled {
                "settled"
            } else {
                "not settled yet (not counted)"
            };
            let _ = writeln!(out, "  {}", one_line(&f.path));
            let _ = writeln!(
                out,
                "    {} from {}; mtime {}; {slot}; {settled}",
                e.local(f.timestamp),
                f.timestamp_source.describe(),
                e.local(f.mtime)
            );
        }
        for path in &l.unreadable {
            let _ = writeln!(
                out,
                "  cannot read {}: its files are not listed",
                one_line(path)
            );
        }
        match l.missing_slots.len() {
            0 => {
                let _ = writeln!(out, "  missing slots: none");
            }
            n => {
                let _ = writeln!(out, "  missing slots ({n}):");
                for s in &l.missing_slots {
                    let _ = writeln!(out, "    {}", e.local(*s));
                }
            }
        }
    }
    out
}

/// `--explain` from the command line; returns the exit code. Refuses (exit 3) to run
/// together with any other operation: it reads and explains, it does not judge.
pub fn main(cli: &Cli) -> i32 {
    let others = [
        (cli.monitor, "--monitor"),
        (cli.verify, "--verify"),
        (cli.test_restore, "--test-restore"),
        (cli.report, "--report"),
        (cli.check_alerts, "--check-alerts"),
        (cli.status, "--status"),
        (cli.check_config, "--check-config"),
    ];
    let combined: Vec<&str> = others
        .iter()
        .filter(|(on, _)| *on)
        .map(|(_, f)| *f)
        .collect();
    if !combined.is_empty() {
        return fail(
            cli.format,
            &format!(
                "--explain cannot be combined with {}: it only reads the config and the disk; run it on its own",
                combined.join(", ")
            ),
        );
    }
    if matches!(cli.format, Format::Nagios | Format::Junit) {
        return fail(
            cli.format,
            "--explain prints text or JSON: use --format text or --format json",
        );
    }
    let path = config::choose_path(cli.config.as_deref());
    let config = match config::load(&path) {
        Ok(c) => c,
        Err(e) => {
            let msg = format!("invalid config {}: {}", path.display(), e.errors.join("; "));
            return fail(cli.format, &msg);
        }
    };
    logging::init_for(&config, logging::stderr_level(cli.quiet, cli.verbose), None);
    let now = match crate::workflow::now() {
        Ok(t) => t,
        Err(e) => return fail(cli.format, &e),
    };
    let selection = Selection {
        name: cli.location_name.as_deref(),
        id: cli.location_id,
    };
    let explanation = match run(
        &config,
        now,
        selection,
        cli.days.unwrap_or(config.monitoring.window_days),
    ) {
        Ok(e) => e,
        Err(e) => return fail(cli.format, &e.to_string()),
    };
    let text = match cli.format {
        Format::Json => format!(
            "{}\n",
            serde_json::to_string_pretty(&to_json(&explanation)).unwrap_or_default()
        ),
        _ => render_text(&explanation),
    };
    emit(&text, explanation.exit_code())
}

/// Exit 3 with `message`: on stderr, and as a JSON document with `--format json`.
fn fail(format: Format, message: &str) -> i32 {
    if format == Format::Json {
        let doc = json!({"locations": [], "error": message, "status": "unknown", "exit_code": 3});
        let text = serde_json::to_string_pretty(&doc).unwrap_or_default();
        emit(&format!("{text}\n"), 3);
    }
    use std::io::Write;
    let _ = writeln!(std::io::stderr().lock(), "error: {message}");
    3
}

/// Write to stdout; a reader that went away is not an error, another write failure is
/// said on stderr and makes the exit code 3.
fn emit(text: &str, code: i32) -> i32 {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Ok(()) => code,
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => code,
        Err(e) => {
            let _ = writeln!(
                std::io::stderr().lock(),
                "error: could not write the output to stdout: {e}"
            );
            3
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn explanation(error: Option<&str>) -> Explanation {
        let now = DateTime::parse_from_rfc3339("2026-12-02T12:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let ts = now - chrono::Duration::hours(9);
        Explanation {
            now,
            window_start: now - chrono::Duration::days(7),
            days: 7,
            tz: Tz::Europe__Berlin,
            locations: vec![LocationExplanation {
                name: "www".into(),
                path: "/srv/www".into(),
                schedule: "hourly".into(),
                files: vec![FileExplanation {
                    path: "www-20261202-0315.tar.gz".into(),
                    timestamp: ts,
                    timestamp_source: TimestampSource::NameForm("YYYYMMDD-hhmm"),
                    mtime: ts + chrono::Duration::minutes(2),
                    slot: Some(Slot {
                        start: ts,
                        end: ts + chrono::Duration::hours(1),
                        due_at: ts + chrono::Duration::hours(2),
                    }),
                    settled: false,
                }],
                missing_slots: vec![now - chrono::Duration::hours(3)],
                error: error.map(String::from),
                unreadable: Vec::new(),
            }],
        }
    }

    #[test]
    fn json_names_every_field_in_local_time() {
        let doc = to_json(&explanation(None));
        let file = &doc["locations"][0]["files"][0];
        assert_eq!(file["timestamp"], "2026-12-02T04:00:00+01:00");
        assert_eq!(file["timestamp_source"], "name:YYYYMMDD-HHMM");
        assert_eq!(file["mtime"], "2026-12-02T04:02:00+01:00");
        assert_eq!(file["slot"], "2026-12-02T04:00:00+01:00");
        assert_eq!(file["settled"], false);
        assert_eq!(
            doc["locations"][0]["missing_slots"][0],
            "2026-12-02T10:00:00+01:00"
        );
        assert_eq!(
            (doc["status"].as_str(), doc["exit_code"].as_i64()),
            (Some("ok"), Some(0))
        );
    }

    #[test]
    fn text_says_where_each_timestamp_came_from() {
        let text = render_text(&explanation(None));
        assert!(
            text.contains("2026-12-02T04:00:00+01:00 from the name (YYYYMMDD-HHMM); mtime 2026-12-02T04:02:00+01:00; slot 2026-12-02T04:00:00+01:00; not settled yet (not counted)"),
            "{text}"
        );
        assert!(
            text.contains("missing slots (1):\n    2026-12-02T10:00:00+01:00"),
            "{text}"
        );
    }

    #[test]
    fn an_unreadable_location_makes_it_unknown() {
        let e = explanation(Some("/srv/www does not exist"));
        assert_eq!((e.exit_code(), e.status()), (3, "unknown"));
        assert!(render_text(&e).contains("cannot scan: /srv/www does not exist"));
    }
}
