//! `--ack ID`: an open problem people know about. It is not alerted again (no cooldown
//! repeats) until it resolves or its severity rises; it still counts for the exit code.

use super::{Action, Actor, Refused, Report};
use crate::store::StoredProblem;

/// How many open problems an error lists.
const SHOWN: usize = 10;

pub(super) fn ack(a: &Actor, action: &Action, id: i64, reason: &str) -> anyhow::Result<Report> {
    let open = a.store.open_problems(None, None)?;
    let Some(p) = open.iter().find(|p| p.id == id) else {
        return Err(Refused(format!("no open problem #{id}; {}", open_list(&open))).into());
    };
    a.store.acknowledge(p.id, p.problem.severity, a.now)?;
    let what = describe(p);
    a.audit(action, &what, reason)?;
    Ok(Report::ok(
        action,
        format!(
            "acknowledged {what}: no more alerts about it until it resolves or gets worse than {}",
            p.problem.severity
        ),
    ))
}

/// `#12 missing_backup at db (x.zip)`.
pub(super) fn describe(p: &StoredProblem) -> String {
    let mut s = format!("#{} {}", p.id, p.problem.kind);
    if let Some(l) = &p.problem.location {
        s.push_str(&format!(" at {l}"));
    }
    if let Some(path) = &p.problem.path {
        s.push_str(&format!(" ({path})"));
    }
    s
}

fn open_list(open: &[StoredProblem]) -> String {
    if open.is_empty() {
        return "there are no open problems".into();
    }
    let shown: Vec<String> = open.iter().take(SHOWN).map(describe).collect();
    let more = match open.len().saturating_sub(SHOWN) {
        0 => String::new(),
        n => format!(" and {n} more (see --status)"),
    };
    format!("open problems: {}{more}", shown.join(", "))
}
