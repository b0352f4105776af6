//! `--report`: the health report as HTML, CSV and JSON; and the Prometheus textfile,
//! which every run rewrites (`prometheus`). Reads the run document and the store only —
//! never the disk being monitored — so it is fast and can be regenerated for any window.
//!
//! Shaped like hyperfine's exporters: one [`Exporter`] trait, one file per format, and
//! this module owning the list and the atomic writes. Every file is rendered and written
//! to a temp file beside its destination first; only when all of them are complete are
//! they renamed into place — all or none: a failed rename puts back what was replaced —
//! so a failed run leaves no half-written report.

mod calendar;
mod charts;
mod csv;
pub mod data;
pub mod fleet;
mod forecast;
mod html;
mod json;
pub mod prometheus;

use crate::config::ReportFormat;
use crate::outcome::Outcome;
use crate::run::RunContext;
use anyhow::{Context, Result};
use data::ReportData;
use std::path::{Path, PathBuf};

/// Which copy of a report is being rendered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Edition {
    /// `backup_health_<stamp>.*`: a record of this run.
    Snapshot,
    /// `latest.*`: replaced by every run (the HTML one reloads itself, for wall screens).
    Latest,
}

/// One output format.
pub trait Exporter {
    /// The file extension, which is also the format's name.
    fn extension(&self) -> &'static str;
    fn render(&self, report: &ReportData, edition: Edition) -> Result<Vec<u8>>;
}

fn exporter(format: ReportFormat, ctx: &RunContext) -> Box<dyn Exporter> {
    match format {
        ReportFormat::Html => Box::new(html::HtmlExporter::new(
            ctx.config
                .reporting
                .templates_dir
                .as_deref()
                .map(|d| ctx.config.resolve_path(d)),
        )),
        ReportFormat::Csv => Box::new(csv::CsvExporter),
        ReportFormat::Json => Box::new(json::JsonExporter),
    }
}

/// Write the configured reports; returns the files written, and leaves in `read` what
/// the locations' part read from the store, for the run's textfile. (The Prometheus
/// textfile is written by every run: [`prometheus::write_textfile`].)
pub fn run(
    ctx: &RunContext,
    doc: &Outcome,
    read: &mut Option<data::LocationsRead>,
) -> Result<Vec<PathBuf>> {
    let (report, locations_read) =
        data::collect(ctx, doc).context("gathering the report from the store")?;
    *read = Some(locations_read);
    let dir = ctx.config.report_dir();
    let stamp = ctx.now.with_timezone(&ctx.tz()).format("%Y%m%d_%H%M%S");
    let mut formats = ctx.config.reporting.formats.clone();
    formats.dedup();
    remove_leftovers(&dir, |staged| {
        staged.starts_with("latest.") || staged.starts_with("backup_health_")
    });
    let mut staged = Vec::new();
    for format in formats {
        let exporter = exporter(format, ctx);
        let ext = exporter.extension();
        for (edition, name) in [
            (Edition::Snapshot, format!("backup_health_{stamp}.{ext}")),
            (Edition::Latest, format!("latest.{ext}")),
        ] {
            let bytes = exporter
                .render(&report, edition)
                .with_context(|| format!("rendering the {ext} report"))?;
            staged.push(Staged::write(&dir.join(name), &bytes)?);
        }
    }
    commit_all(staged)
}

/// Rename every staged file into place, or none: if one rename fails, the files already
/// replaced get their previous content back and new ones are removed, so a failed run
/// leaves the previous reports as they were (and says it wrote nothing).
fn commit_all(staged: Vec<Staged>) -> Result<Vec<PathBuf>> {
    let mut done: Vec<(PathBuf, Option<tempfile::TempPath>)> = Vec::new();
    for file in staged {
        let dest = file.dest.clone();
        let previous = match keep_previous(&dest) {
            Ok(previous) => previous,
            Err(e) => {
                roll_back(done);
                return Err(e);
            }
        };
        if let Err(e) = file.commit() {
            roll_back(done);
            return Err(e);
        }
        done.push((dest, previous));
    }
    // The previous contents (hard links) are deleted as they drop.
    Ok(done.into_iter().map(|(dest, _)| dest).collect())
}

/// A hard link to the file at `dest`, under a staged name beside it (so a killed run's
/// leftover is cleaned up like any other), to restore it if the commit fails.
fn keep_previous(dest: &Path) -> Result<Option<tempfile::TempPath>> {
    if !std::fs::symlink_metadata(dest).is_ok_and(|m| m.is_file()) {
        return Ok(None);
    }
    let dir = dest
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = dest.file_name().unwrap_or_default().to_string_lossy();
    let link = tempfile::Builder::new()
        .prefix(&format!(".{name}."))
        .suffix(".tmp")
        .make_in(dir, |path| std::fs::hard_link(dest, path))
        .with_context(|| format!("cannot keep the previous {}", dest.display()))?;
    Ok(Some(link.into_temp_path()))
}

fn roll_back(done: Vec<(PathBuf, Option<tempfile::TempPath>)>) {
    for (dest, previous) in done.into_iter().rev() {
        let restored = match previous {
            Some(previous) => previous.persist(&dest).map_err(|e| e.error),
            None => std::fs::remove_file(&dest),
        };
        if let Err(e) = restored {
            tracing::warn!(
                "cannot restore {} after a failed report: {e}",
                dest.display()
            );
        }
    }
}

/// Remove the staged files (`.<name>.<random>.tmp`) that a run killed before its renames
/// left in `dir`; `ours` says which `<name>.<random>` are ours. Only one run at a time
/// holds the lock, so any found now are leftovers.
fn remove_leftovers(dir: &Path, ours: impl Fn(&str) -> bool) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(staged) = name
            .to_str()
            .and_then(|n| n.strip_prefix('.'))
            .and_then(|n| n.strip_suffix(".tmp"))
        else {
            continue;
        };
        if ours(staged) && entry.file_type().is_ok_and(|t| t.is_file()) {
            match std::fs::remove_file(entry.path()) {
                Ok(()) => tracing::info!(
                    "removed {}, left by a run that was killed while writing reports",
                    entry.path().display()
                ),
                Err(e) => tracing::warn!("cannot remove {}: {e}", entry.path().display()),
            }
        }
    }
}

/// A complete file waiting beside its destination for the final rename.
struct Staged {
    temp: tempfile::NamedTempFile,
    dest: PathBuf,
}

impl Staged {
    fn write(dest: &Path, bytes: &[u8]) -> Result<Staged> {
        Staged::write_with(dest, |w| Ok(w.write_all(bytes)?))
    }

    /// Stage `dest` with what `fill` writes (buffered): a large report goes to disk as it
    /// is produced instead of whole in memory. An error leaves nothing behind.
    fn write_with(
        dest: &Path,
        fill: impl FnOnce(&mut dyn std::io::Write) -> Result<()>,
    ) -> Result<Staged> {
        use std::io::Write as _;
        let dir = dest
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        if dir.exists() && !dir.is_dir() {
            anyhow::bail!(
                "the report directory {} is a file, not a directory; move it aside or point reporting.output_dir elsewhere",
                dir.display()
            );
        }
        std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot create the report directory {}", dir.display()))?;
        let name = dest.file_name().unwrap_or_default().to_string_lossy();
        let mut temp = tempfile::Builder::new()
            .prefix(&format!(".{name}."))
            .suffix(".tmp")
            .tempfile_in(dir)
            .with_context(|| format!("cannot create a temp file in {}", dir.display()))?;
        let written = {
            let mut w = std::io::BufWriter::with_capacity(1 << 18, temp.as_file_mut());
            fill(&mut w).and_then(|()| Ok(w.flush()?))
        };
        written
            .and_then(|()| Ok(temp.as_file().sync_all()?))
            .with_context(|| format!("cannot write {}", temp.path().display()))?;
        // Readable by whoever serves or scrapes the reports (node_exporter runs as its own
        // user); they hold no secrets.
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let _ = temp
                .as_file()
                .set_permissions(std::fs::Permissions::from_mode(0o644));
        }
        Ok(Staged {
            temp,
            dest: dest.to_path_buf(),
        })
    }

    /// Stage `dest` as a copy of what `self` holds.
    fn copy_to(&self, dest: &Path) -> Result<Staged> {
        let source = self.temp.path();
        Staged::write_with(dest, |w| {
            let mut from = std::fs::File::open(source)?;
            std::io::copy(&mut from, w)?;
            Ok(())
        })
    }

    fn commit(self) -> Result<PathBuf> {
        self.temp
            .persist(&self.dest)
            .with_context(|| format!("cannot replace {}", self.dest.display()))?;
        Ok(self.dest)
    }
}
