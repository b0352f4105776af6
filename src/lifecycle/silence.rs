//! `--silence SELECTOR --for DURATION`: a maintenance window. Open problems the selector
//! matches are still found and listed, marked silenced, but neither alerted nor counted
//! for the exit code until the silence expires or `--unsilence` ends it.

use super::{Action, Actor, Refused, Report, SilenceView};
use crate::config::values::DurationValue;
use crate::problem::{Kind, Problem};
use crate::store::StoredSilence;

/// What a silence covers: a location's problems, one kind of them, or one kind anywhere.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selector {
    /// None: every location (`*`).
    pub location: Option<String>,
    /// None: every kind.
    pub kind: Option<Kind>,
}

impl Selector {
    /// `LOCATION`, `LOCATION/KIND` or `*/KIND`. A location name may itself hold a `/`:
    /// only a known kind after the last one makes it a kind.
    pub fn parse(text: &str) -> Result<Selector, String> {
        let text = text.trim();
        let (location, kind) = match text.rsplit_once('/') {
            Some((l, k)) => match Kind::parse(k) {
                Some(kind) => (l, Some(kind)),
                None if l == "*" => {
                    return Err(format!(
                        "unknown problem kind `{k}` in `{text}`; kinds: {}",
                        kinds()
                    ));
                }
                None => (text, None),
            },
            None => (text, None),
        };
        match (location, kind) {
            ("", _) => Err("a silence needs LOCATION, LOCATION/KIND or */KIND".into()),
            ("*", None) => {
                Err("`*` alone would silence everything; use */KIND or a location".into())
            }
            ("*", kind) => Ok(Selector {
                location: None,
                kind,
            }),
            (l, kind) => Ok(Selector {
                location: Some(l.to_string()),
                kind,
            }),
        }
    }

    pub fn matches(&self, p: &Problem) -> bool {
        let location = match &self.location {
            None => true,
            Some(l) => p.location.as_deref() == Some(l.as_str()),
        };
        location && self.kind.is_none_or(|k| k == p.kind)
    }
}

fn kinds() -> String {
    Kind::ALL
        .iter()
        .map(|k| k.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

pub(super) fn silence(
    a: &Actor,
    action: &Action,
    selector: &str,
    duration: &str,
    reason: &str,
) -> anyhow::Result<Report> {
    let sel = Selector::parse(selector).map_err(Refused)?;
    let names = a.config.location_names();
    if let Some(l) = &sel.location
        && !names.contains(&l.as_str())
    {
        // `db/missing_backups`: a known location and a mistyped kind, not a location.
        if let Some((known, kind)) = l.rsplit_once('/')
            && names.contains(&known)
        {
            return Err(Refused(format!(
                "unknown problem kind `{kind}` in `{selector}` (location {known} is known); kinds: {}",
                kinds()
            ))
            .into());
        }
        return Err(Refused(format!(
            "unknown location {l} in `{selector}`; known locations: {} (or */KIND for a kind anywhere)",
            names.join(", ")
        ))
        .into());
    }
    let d = DurationValue::parse(duration)
        .map_err(|e| Refused(format!("--for {e}")))?
        .as_chrono();
    if d <= chrono::Duration::zero() {
        return Err(Refused("--for must be longer than 0s".into()).into());
    }
    let until = a.now + d;
    let stored = StoredSilence {
        id: 0,
        selector: selector.trim().to_string(),
        created_at: a.now,
        until,
        ended_at: None,
        user: a.user.clone(),
        host: a.config.host.clone(),
        reason: reason.to_string(),
    };
    let id = a.store.add_silence(&stored)?;
    let matching = a
        .store
        .open_problems(None, None)?
        .iter()
        .filter(|p| sel.matches(&p.problem))
        .count();
    a.audit(
        action,
        &format!("silence #{id} {}", stored.selector),
        reason,
    )?;
    let mut report = Report::ok(
        action,
        format!(
            "silence #{id}: {} until {} ({matching} open problem{} match now)",
            stored.selector,
            a.local(until),
            if matching == 1 { "" } else { "s" }
        ),
    );
    report.silence_id = Some(id);
    Ok(report)
}

pub(super) fn list(a: &Actor, action: &Action) -> anyhow::Result<Report> {
    let active = active(a)?;
    let views: Vec<SilenceView> = active
        .iter()
        .map(|s| SilenceView {
            id: s.id,
            selector: s.selector.clone(),
            until: a.local(s.until),
            reason: s.reason.clone(),
            created_at: a.local(s.created_at),
            created_by: s.user.clone(),
            host: s.host.clone(),
        })
        .collect();
    let message = match views.len() {
        0 => "no silences in force".to_string(),
        1 => "1 silence in force:".to_string(),
        n => format!("{n} silences in force:"),
    };
    let mut report = Report::ok(action, message);
    report.silences = Some(views);
    Ok(report)
}

pub(super) fn unsilence(
    a: &Actor,
    action: &Action,
    id: i64,
    reason: &str,
) -> anyhow::Result<Report> {
    let active = active(a)?;
    let Some(s) = active.iter().find(|s| s.id == id) else {
        let known = if active.is_empty() {
            "there are none in force".to_string()
        } else {
            let list: Vec<String> = active
                .iter()
                .map(|s| format!("#{} {}", s.id, s.selector))
                .collect();
            format!("silences in force: {}", list.join(", "))
        };
        return Err(Refused(format!("no silence #{id} in force; {known}")).into());
    };
    a.store.end_silence(id, a.now)?;
    a.audit(action, &format!("silence #{id} {}", s.selector), reason)?;
    Ok(Report::ok(
        action,
        format!("ended silence #{id} ({}) now", s.selector),
    ))
}

fn active(a: &Actor) -> anyhow::Result<Vec<StoredSilence>> {
    Ok(a.store
        .silences()?
        .into_iter()
        .filter(|s| s.active_at(a.now))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::problem::Severity;

    #[test]
    fn selectors() {
        let db = Selector::parse("db").unwrap();
        assert_eq!(
            db,
            Selector {
                location: Some("db".into()),
                kind: None
            }
        );
        let kind = Selector::parse("db/missing_backup").unwrap();
        assert_eq!(kind.kind, Some(Kind::MissingBackup));
        let any = Selector::parse("*/health_degraded").unwrap();
        assert_eq!(
            any,
            Selector {
                location: None,
                kind: Some(Kind::HealthDegraded)
            }
        );
        let slashed = Selector::parse("srv/www").unwrap();
        assert_eq!(slashed.location.as_deref(), Some("srv/www"));
        assert!(Selector::parse("*/nope").is_err());
        assert!(Selector::parse("*").is_err());
        assert!(Selector::parse("").is_err());

        let p = Problem::new(Kind::MissingBackup, Severity::Critical, "db", "m");
        let other = Problem::new(Kind::MissingBackup, Severity::Critical, "www", "m");
        assert!(db.matches(&p) && kind.matches(&p) && !db.matches(&other));
        assert!(!any.matches(&p));
        assert!(Selector::parse("*/missing_backup").unwrap().matches(&other));
    }
}
