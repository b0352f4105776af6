//! `--accept PATH`: "what is there now is intended". A present backup's current bytes,
//! size and mtime become its recorded truth (a first-sight checksum taken now, with the
//! location's algorithm), closing its `checksum_mismatch` and `modified_after_backup`. A
//! deleted backup's deletion was meant: its `deleted_before_retention` closes and never
//! opens again. A `sidecar_mismatch` stays: the sidecar is the evidence, not the store.
//! Restore problems stay too: accepting tests nothing, and the next `--test-restore`
//! tests a rewritten backup again.

use super::{Action, Actor, Refused, Report};
use crate::config::Location;
use crate::problem::{Kind, Operation, Problem};
use crate::store::BackupRow;
use crate::verify::hash::{Algos, Outcome, hash_file, hash_object};
use std::collections::HashSet;
use std::path::Path;

/// How many paths an error names.
const SHOWN: usize = 10;

pub(super) fn accept(
    a: &Actor,
    action: &Action,
    path: &str,
    location: Option<&str>,
    reason: &str,
) -> anyhow::Result<Report> {
    let (loc, loc_id, backup) = find(a, path, location)?;
    let target = format!("{}/{}", loc.name, backup.path);
    let message = if backup.is_present() {
        accept_present(a, loc, loc_id, &backup)?
    } else {
        a.store.accept_deletion(backup.id, a.now)?;
        let closed = a.store.resolve_path_problems(
            loc_id,
            &backup.path,
            &[Kind::DeletedBeforeRetention],
            a.now,
        )?;
        format!(
            "accepted the deletion of {} at {}{}",
            backup.path,
            loc.name,
            closed_text(&closed)
        )
    };
    a.audit(action, &target, reason)?;
    Ok(Report::ok(action, message))
}

fn accept_present(
    a: &Actor,
    loc: &Location,
    loc_id: i64,
    backup: &BackupRow,
) -> anyhow::Result<String> {
    let file = loc.root.join(&backup.path);
    let mut algos = Algos::default();
    algos.add(loc.checksum);
    let source = crate::source::of(loc);
    let hashed = match source.local_path(&backup.path) {
        Some(path) => hash_file(&path, algos, &|_| {}),
        // A bucket's object, streamed.
        None => hash_object(&*source, &backup.path, algos, &|_| {}),
    };
    let (digests, stamp) = match hashed.outcome {
        Outcome::Hashed { digests, stamp } => (digests, stamp),
        Outcome::Vanished => {
            return Err(Refused(format!(
                "{} is recorded as present but is not on disk now; run --monitor so its deletion is recorded, then accept it again",
                file.display()
            ))
            .into());
        }
        Outcome::Changing { .. } => {
            return Err(Refused(format!(
                "{} kept changing while it was read; accept it once the job writing it has finished",
                file.display()
            ))
            .into());
        }
        Outcome::Unreadable(e) => {
            return Err(Refused(format!(
                "cannot read {}: {e}; check the permissions of the user running backup-monitor",
                file.display()
            ))
            .into());
        }
    };
    let Some(hex) = digests.get(loc.checksum) else {
        anyhow::bail!("{} was read but not hashed", file.display());
    };
    a.store.accept_contents(
        backup.id,
        stamp.size,
        stamp.mtime_ns,
        (loc.checksum.as_str(), hex),
        a.now,
    )?;
    let closed = a.store.resolve_path_problems(
        loc_id,
        &backup.path,
        &[Kind::ChecksumMismatch, Kind::ModifiedAfterBackup],
        a.now,
    )?;
    let still_open: Vec<Kind> = a
        .store
        .open_problems(None, Some(&[loc_id]))?
        .into_iter()
        .filter(|p| p.problem.path.as_deref() == Some(backup.path.as_str()))
        .map(|p| p.problem.kind)
        .collect();
    let sidecar = if still_open.contains(&Kind::SidecarMismatch) {
        "; its sidecar_mismatch stays open: the sidecar file is the evidence, so fix or replace the sidecar"
    } else {
        ""
    };
    Ok(format!(
        "accepted {} at {} as it is now ({} bytes, {} {}){}{sidecar}{}",
        backup.path,
        loc.name,
        stamp.size,
        loc.checksum.as_str(),
        hex,
        closed_text(&closed),
        restore_text(&still_open)
    ))
}

/// A restore problem is a verdict on the content, which accepting does not test: it
/// stays open until the next `--test-restore` restores the backup as it is now.
fn restore_text(still_open: &[Kind]) -> String {
    let restore: Vec<&str> = still_open
        .iter()
        .filter(|k| k.operation() == Operation::TestRestore)
        .map(|k| k.as_str())
        .collect();
    if restore.is_empty() {
        return String::new();
    }
    format!(
        "; its {} stays open until the next --test-restore restores the backup as it is now",
        restore.join(", ")
    )
}

fn closed_text(closed: &[(i64, Kind)]) -> String {
    if closed.is_empty() {
        return "; it had no open problem to close".into();
    }
    let list: Vec<String> = closed.iter().map(|(id, k)| format!("#{id} {k}")).collect();
    format!("; closed {}", list.join(", "))
}

/// The location and recorded backup `path` names: relative to a location (the one
/// `--location-name` names, else whichever has it), or absolute under one's path.
fn find<'a>(
    a: &Actor<'a>,
    path: &str,
    location: Option<&str>,
) -> anyhow::Result<(&'a Location, i64, BackupRow)> {
    let locations: Vec<&Location> = a
        .config
        .backups
        .locations
        .iter()
        .filter(|l| location.is_none_or(|n| n == l.name))
        .collect();
    if let Some(name) = location
        && locations.is_empty()
    {
        return Err(Refused(format!(
            "unknown location {name}; known locations: {}",
            a.config.location_names().join(", ")
        ))
        .into());
    }
    let mut found = Vec::new();
    let mut known = Vec::new();
    for loc in &locations {
        let Some(id) = a.store.location_id(&loc.name)? else {
            continue;
        };
        let relative = relative_to(path, &loc.root);
        if let Some(rel) = &relative
            && let Some(b) = a.store.backup_by_path(id, rel)?
        {
            found.push((*loc, id, b));
            continue;
        }
        let paths = a.store.acceptable_paths(id, SHOWN + 1)?;
        if !paths.is_empty() {
            known.push(format!("at {}: {}", loc.name, shown(&paths)));
        }
    }
    match found.len() {
        1 => Ok(found.remove(0)),
        0 => {
            let hint = if known.is_empty() {
                "no backups are recorded yet (run --monitor first)".to_string()
            } else {
                format!("recorded backups {}", known.join("; "))
            };
            Err(Refused(format!("no recorded backup {path}; {hint}")).into())
        }
        _ => {
            let names: Vec<&str> = found.iter().map(|(l, _, _)| l.name.as_str()).collect();
            Err(Refused(format!(
                "{path} is a backup of several locations ({}); say which with --location-name",
                names.join(", ")
            ))
            .into())
        }
    }
}

/// `path` relative to `root`, `/`-separated, as the store records it.
fn relative_to(path: &str, root: &Path) -> Option<String> {
    let p = Path::new(path);
    let rel = if p.is_absolute() {
        p.strip_prefix(root).ok()?
    } else {
        p.strip_prefix(".").unwrap_or(p)
    };
    let parts: Vec<String> = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    (!parts.is_empty()).then(|| parts.join("/"))
}

fn shown(paths: &[String]) -> String {
    let mut out = paths
        .iter()
        .take(SHOWN)
        .cloned()
        .collect::<Vec<_>>()
        .join(", ");
    if paths.len() > SHOWN {
        out.push_str(", …");
    }
    out
}

/// Leave out the `deleted_before_retention` of paths whose every judged deletion was
/// accepted (a later deletion of a re-created file is judged again).
pub fn drop_accepted_deletions(
    problems: &mut Vec<Problem>,
    backups: &[BackupRow],
    accepted: &HashSet<i64>,
) {
    if accepted.is_empty() {
        return;
    }
    let unaccepted: HashSet<&str> = backups
        .iter()
        .filter(|b| !b.is_present() && !accepted.contains(&b.id))
        .map(|b| b.path.as_str())
        .collect();
    problems.retain(|p| {
        p.kind != Kind::DeletedBeforeRetention
            || p.path
                .as_deref()
                .is_some_and(|path| unaccepted.contains(path))
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_relative_to_the_location() {
        let root = Path::new("/srv/docs");
        assert_eq!(
            relative_to("/srv/docs/a/x.zip", root).as_deref(),
            Some("a/x.zip")
        );
        assert_eq!(relative_to("./x.zip", root).as_deref(), Some("x.zip"));
        assert_eq!(relative_to("x.zip", root).as_deref(), Some("x.zip"));
        assert_eq!(relative_to("/elsewhere/x.zip", root), None);
    }
}
