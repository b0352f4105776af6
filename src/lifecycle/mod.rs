//! What people decide about problems: acknowledge one (`--ack`), accept what is on disk
//! as intended (`--accept`), silence a location or kind for a while (`--silence`,
//! `--silences`, `--unsilence`). Each action takes the lock, judges nothing, is written
//! to the audit log, and answers with a short [`Report`] (exit 0, or 3 when what it names
//! does not exist, naming what does).
//!
//! Also the marks those decisions leave on open problems ([`Marks`]): acknowledged,
//! silenced. `workflow` reads them for the exit code, `alert` for what it sends.
//!
//! Not for: judging problems (the operations do) or sending anything.

mod accept;
mod ack;
mod command;
mod silence;

pub use accept::drop_accepted_deletions;
pub use command::main;
pub use silence::Selector;

use crate::config::Config;
use crate::problem::{Problem, Severity, Status};
use crate::store::{ActionEntry, Store, StoredProblem, StoredSilence};
use chrono::{DateTime, Utc};
use std::collections::HashMap;

/// The command-line flags of the actions (flattened into the command line).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct Flags {
    /// Acknowledge open problem ID (shown as #ID): no more alerts about it until it
    /// resolves or gets worse; it still counts for the exit code
    #[arg(long, value_name = "ID", requires = "reason", help_heading = "Actions")]
    pub ack: Option<i64>,
    /// Accept PATH (relative to its location, or absolute) as intended: its current
    /// content becomes its recorded truth, or its deletion was meant
    #[arg(
        long,
        value_name = "PATH",
        requires = "reason",
        help_heading = "Actions"
    )]
    pub accept: Option<String>,
    /// Silence LOCATION, LOCATION/KIND or */KIND for --for: its problems are listed but
    /// neither alerted nor counted for the exit code
    #[arg(
        long,
        value_name = "SELECTOR",
        requires_all = ["reason", "for_"],
        help_heading = "Actions"
    )]
    pub silence: Option<String>,
    /// How long a --silence lasts (90m, 8h, 2d)
    #[arg(
        long = "for",
        value_name = "DURATION",
        requires = "silence",
        help_heading = "Actions"
    )]
    pub for_: Option<String>,
    /// List the silences in force
    #[arg(long, help_heading = "Actions")]
    pub silences: bool,
    /// End silence ID now
    #[arg(long, value_name = "ID", help_heading = "Actions")]
    pub unsilence: Option<i64>,
    /// Why (required with --ack, --accept and --silence; kept in the audit log)
    #[arg(long, value_name = "TEXT", help_heading = "Actions")]
    pub reason: Option<String>,
}

impl Flags {
    /// Some action flag was given (`--reason` and `--for` alone count, to be refused).
    pub fn given(&self) -> bool {
        self.ack.is_some()
            || self.accept.is_some()
            || self.silence.is_some()
            || self.silences
            || self.unsilence.is_some()
            || self.reason.is_some()
            || self.for_.is_some()
    }
}

/// One action asked for on the command line.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    Ack {
        id: i64,
        reason: String,
    },
    Accept {
        path: String,
        location: Option<String>,
        reason: String,
    },
    Silence {
        selector: String,
        duration: String,
        reason: String,
    },
    Silences,
    Unsilence {
        id: i64,
        reason: String,
    },
}

impl Action {
    /// The action the flags ask for (None: none); `location` is `--location-name`.
    /// More than one action at once is a usage error.
    pub fn from_flags(f: &Flags, location: Option<&str>) -> Result<Option<Action>, String> {
        let reason = f.reason.clone().unwrap_or_default();
        let mut asked = Vec::new();
        if let Some(id) = f.ack {
            asked.push(Action::Ack {
                id,
                reason: reason.clone(),
            });
        }
        if let Some(path) = &f.accept {
            asked.push(Action::Accept {
                path: path.clone(),
                location: location.map(str::to_string),
                reason: reason.clone(),
            });
        }
        if let Some(selector) = &f.silence {
            asked.push(Action::Silence {
                selector: selector.clone(),
                duration: f.for_.clone().unwrap_or_default(),
                reason: reason.clone(),
            });
        }
        if f.silences {
            asked.push(Action::Silences);
        }
        if let Some(id) = f.unsilence {
            asked.push(Action::Unsilence {
                id,
                reason: reason.clone(),
            });
        }
        if asked.len() > 1 {
            return Err(
                "give one of --ack, --accept, --silence, --silences, --unsilence at a time".into(),
            );
        }
        let action = asked.pop();
        let needs_reason = matches!(
            action,
            Some(Action::Ack { .. } | Action::Accept { .. } | Action::Silence { .. })
        );
        if needs_reason && reason.trim().is_empty() {
            return Err("--reason must say why (it is kept in the audit log)".into());
        }
        Ok(action)
    }

    /// The name of the action, as the JSON document and the audit log call it.
    pub fn name(&self) -> &'static str {
        match self {
            Action::Ack { .. } => "ack",
            Action::Accept { .. } => "accept",
            Action::Silence { .. } => "silence",
            Action::Silences => "silences",
            Action::Unsilence { .. } => "unsilence",
        }
    }
}

/// A silence as `--silences` and `--silence` show it.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct SilenceView {
    pub id: i64,
    pub selector: String,
    /// RFC 3339 in the configured zone.
    pub until: String,
    pub reason: String,
    pub created_at: String,
    pub created_by: String,
    pub host: String,
}

/// What an action did: its `--format json` document.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Report {
    pub action: &'static str,
    pub status: Status,
    pub exit_code: i32,
    /// One line for people: what was done (or why nothing was).
    pub message: String,
    /// `--silence`: the new silence's id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub silence_id: Option<i64>,
    /// `--silences`: the silences in force.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub silences: Option<Vec<SilenceView>>,
}

impl Report {
    fn ok(action: &Action, message: String) -> Report {
        Report {
            action: action.name(),
            status: Status::Ok,
            exit_code: 0,
            // Paths and reasons come from people and disks: one line whatever they hold.
            message: crate::problem::one_line(&message).into_owned(),
            silence_id: None,
            silences: None,
        }
    }

    /// An action that could not be done (exit 3), with the cause.
    pub fn unknown(action: &'static str, message: &str) -> Report {
        Report {
            action,
            status: Status::Unknown,
            exit_code: 3,
            message: crate::problem::one_line(message).into_owned(),
            silence_id: None,
            silences: None,
        }
    }

    /// The text summary: the message, then any silences one per line.
    pub fn text(&self) -> String {
        let mut out = format!("{}\n", self.message);
        for s in self.silences.iter().flatten() {
            let line = format!(
                "#{} {} until {}: {} (set {} by {} on {})",
                s.id, s.selector, s.until, s.reason, s.created_at, s.created_by, s.host
            );
            out.push_str(&format!("  {}\n", crate::problem::one_line(&line)));
        }
        out
    }

    /// The `--format json` document.
    pub fn json(&self) -> String {
        let text = serde_json::to_string_pretty(self).unwrap_or_else(|e| {
            format!(
                "{{\"status\":\"unknown\",\"exit_code\":3,\"error\":{:?}}}",
                e.to_string()
            )
        });
        format!("{text}\n")
    }

    /// The monitoring-plugin line, then (as the plugin's long output) any silences one
    /// per line.
    pub fn nagios(&self) -> String {
        let mut out = format!(
            "BACKUP {} - {}\n",
            self.status.plugin_word(),
            self.message.trim_end_matches(':').replace('|', "/")
        );
        for line in self.text().lines().skip(1) {
            out.push_str(&line.trim_start().replace('|', "/"));
            out.push('\n');
        }
        out
    }
}

/// Who runs this process, for the audit log: the name the password database gives the
/// real user id (not `$USER`, which anyone may set), else the numeric id; root through
/// `sudo` names the user who ran it.
fn user_name() -> String {
    let uid = nix::unistd::getuid();
    let name = nix::unistd::User::from_uid(uid)
        .ok()
        .flatten()
        .map(|u| u.name)
        .filter(|n| !n.trim().is_empty())
        .unwrap_or_else(|| format!("uid {uid}"));
    let through_sudo = std::env::var("SUDO_USER")
        .ok()
        .filter(|s| uid.is_root() && !s.trim().is_empty() && *s != name);
    match through_sudo {
        Some(user) => format!("{user} (as {name} through sudo)"),
        None => name,
    }
}

/// What every action shares: the config, the store, "now" and who acts.
pub(crate) struct Actor<'a> {
    pub config: &'a Config,
    pub store: &'a Store,
    pub now: DateTime<Utc>,
    pub user: String,
}

impl Actor<'_> {
    fn audit(&self, action: &Action, target: &str, reason: &str) -> anyhow::Result<()> {
        self.store.record_action(&ActionEntry {
            at: self.now,
            user: self.user.clone(),
            host: self.config.host.clone(),
            action: action.name().to_string(),
            target: target.to_string(),
            reason: reason.to_string(),
        })
    }

    fn local(&self, t: DateTime<Utc>) -> String {
        t.with_timezone(&self.config.timezone.0)
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, false)
    }
}

/// An action that cannot be done as asked: exit 3 with this message.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Refused(pub String);

/// Run one action against the store of `config` as of `now`, under the lock.
pub fn run(config: &Config, action: &Action, now: DateTime<Utc>) -> Report {
    match run_locked(config, action, now) {
        Ok(report) => report,
        Err(e) => {
            // A refusal is the answer itself (printed once); anything else goes to the log
            // file too (the answer carries it in every format: said once on the terminal).
            let message = match e.downcast_ref::<Refused>() {
                Some(r) => r.0.clone(),
                None => {
                    let m = crate::output::chained(&e);
                    crate::logging::failed_run(&m, true);
                    m
                }
            };
            Report::unknown(action.name(), &message)
        }
    }
}

fn run_locked(config: &Config, action: &Action, now: DateTime<Utc>) -> anyhow::Result<Report> {
    let _lock = crate::lock::acquire(&config.store_path, &config.host)?;
    let store = Store::connect(config)?;
    let actor = Actor {
        config,
        store: &store,
        now,
        user: user_name(),
    };
    match action {
        Action::Ack { id, reason } => ack::ack(&actor, action, *id, reason),
        Action::Accept {
            path,
            location,
            reason,
        } => accept::accept(&actor, action, path, location.as_deref(), reason),
        Action::Silence {
            selector,
            duration,
            reason,
        } => silence::silence(&actor, action, selector, duration, reason),
        Action::Silences => silence::list(&actor, action),
        Action::Unsilence { id, reason } => silence::unsilence(&actor, action, *id, reason),
    }
}

/// The acknowledgements and silences that mark open problems.
#[derive(Debug, Default)]
pub struct Marks {
    acked: HashMap<i64, Severity>,
    silences: Vec<(Selector, StoredSilence)>,
}

impl Marks {
    pub fn load(store: &Store) -> anyhow::Result<Marks> {
        let (silences, acked) = store.silences_and_acks()?;
        let silences = silences
            .into_iter()
            .filter_map(|s| Selector::parse(&s.selector).ok().map(|sel| (sel, s)))
            .collect();
        Ok(Marks { acked, silences })
    }

    /// Acknowledged, and not worse than when it was.
    pub fn acknowledged(&self, p: &StoredProblem) -> bool {
        self.acked
            .get(&p.id)
            .is_some_and(|s| p.problem.severity <= *s)
    }

    /// A silence in force at `t` covers it: one made on the problem's host (a host's
    /// silence names its own locations; another host's `db` is another location).
    pub fn silenced_at(&self, host: &str, p: &Problem, t: DateTime<Utc>) -> bool {
        self.silences
            .iter()
            .any(|(sel, s)| s.host == host && s.active_at(t) && sel.matches(p))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_action_at_a_time_and_a_reason_for_those_that_need_one() {
        let flags = Flags {
            ack: Some(3),
            reason: Some("known".into()),
            ..Flags::default()
        };
        assert_eq!(
            Action::from_flags(&flags, None),
            Ok(Some(Action::Ack {
                id: 3,
                reason: "known".into()
            }))
        );
        let blank = Flags {
            reason: Some("  ".into()),
            ..flags.clone()
        };
        assert!(Action::from_flags(&blank, None).is_err());
        let two = Flags {
            silences: true,
            ..flags
        };
        assert!(Action::from_flags(&two, None).is_err());
        let unsilence = Flags {
            unsilence: Some(1),
            ..Flags::default()
        };
        assert!(matches!(
            Action::from_flags(&unsilence, None),
            Ok(Some(Action::Unsilence { id: 1, .. }))
        ));
        assert_eq!(Action::from_flags(&Flags::default(), None), Ok(None));
    }
}
