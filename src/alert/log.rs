//! The `log` channel: each alert as one `tracing` event (stderr and `logging.file`).
//! Always available; it cannot fail, so an alert is never lost for want of a server.

use super::Channel;
use super::digest::Digest;
use crate::alert::Event;
use crate::problem::Severity;
use anyhow::Result;

pub struct Log;

impl Channel for Log {
    fn name(&self) -> &'static str {
        "log"
    }

    fn deliver(&self, digest: &Digest) -> Result<()> {
        tracing::info!(target: "backup_monitor::alert", "{}", digest.subject);
        for line in digest.lines() {
            // A fleet digest's lines are of several hosts: `host/location`, as the fleet
            // views write it.
            let location = match (&line.host, &line.location) {
                (Some(host), Some(location)) => format!("{host}/{location}"),
                (Some(host), None) => format!("{host}/-"),
                (None, location) => location.as_deref().unwrap_or("-").to_string(),
            };
            let event = line.event.as_str();
            match (line.event, line.severity) {
                (Event::Resolved, _) => {
                    tracing::info!(target: "backup_monitor::alert", location = %location, event = %event, "{}", line.text)
                }
                (_, Severity::Critical) => {
                    tracing::error!(target: "backup_monitor::alert", location = %location, event = %event, "{}", line.text)
                }
                (_, Severity::Warning) => {
                    tracing::warn!(target: "backup_monitor::alert", location = %location, event = %event, "{}", line.text)
                }
            }
        }
        Ok(())
    }
}
