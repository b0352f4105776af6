//! `--ack ID`: an open problem people know about. It is not alerted again (no cooldown
//! repeats) until it resolves or its severity rises; it still counts for the exit code.

use super::{Action, Actor, Refused, Report};
use crate::problem::Severity;
use crate::store::StoredProblem;

/// How many open problems an error lists.
const SHOWN: usize = 10;

pub(super) fn ack(a: &Actor, action: &Action, id: i64, reason: &str) -> anyhow::Result<Report> {
    let open = a.store.open_problems(None, None)?;
    let Some(p) = open.iter().find(|p| p.id == id) else {
        // `--status` shows a staleness judged as it reads, before any run stored it, as #0.
        if id == 0 {
            return Err(Refused(format!(
                "#0 is a monitor_stale judged as it was shown, not stored yet: the next --check-alerts or --report stores it under a number to acknowledge (a location never checked needs a --monitor), or silence it now with --silence LOCATION/monitor_stale --for 1d; {}",
                open_list(&open)
            ))
            .into());
        }
        return Err(Refused(format!("no open problem #{id}; {}", open_list(&open))).into());
    };
    a.store.acknowledge(p.id, p.problem.severity, a.now)?;
    let what = describe(p);
    a.audit(action, &what, reason)?;
    Ok(Report::ok(
        action,
        match p.problem.severity {
            Severity::Warning => format!(
                "acknowledged {what}: no more alerts about it until it resolves or turns critical"
            ),
            Severity::Critical => {
                format!("acknowledged {what}: no more alerts about it until it resolves")
            }
        },
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
