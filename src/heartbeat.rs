//! The Healthchecks-style heartbeat (`monitoring.heartbeat_url`): a run that takes the
//! lock pings `<url>/start` when it starts and `<url>/<exit code>` when it ends, the end
//! ping carrying the text summary (at most 100 KB) as its body. An outside service then
//! notices a run that never ends or never starts, which nothing on this host can.
//!
//! A ping that fails is a warning in the log; it never changes the run's exit code. The
//! URL is a secret (it is its own credential): it is never logged or printed.
//!
//! Not for: alerts about backups (`alert`).

use crate::alert::redact::error_chain;
use std::time::Duration;

/// The largest body an end ping carries; longer summaries are cut at a line.
const MAX_BODY: usize = 100_000;
const TIMEOUT: Duration = Duration::from_secs(10);

/// A configured heartbeat.
pub struct Heartbeat {
    url: String,
    client: reqwest::blocking::Client,
}

impl Heartbeat {
    /// The heartbeat of `url`, or None when none is configured (or no client can be made,
    /// which is logged).
    pub fn new(url: Option<&str>) -> Option<Heartbeat> {
        let url = url?.trim_end_matches('/').to_string();
        let client = reqwest::blocking::Client::builder()
            .timeout(TIMEOUT)
            .connect_timeout(TIMEOUT)
            .redirect(reqwest::redirect::Policy::limited(3))
            .user_agent(concat!("backup-monitor/", env!("CARGO_PKG_VERSION")))
            .build();
        match client {
            Ok(client) => Some(Heartbeat { url, client }),
            Err(e) => {
                tracing::warn!("cannot send heartbeats: {}", error_chain(&e.without_url()));
                None
            }
        }
    }

    /// The run started.
    pub fn start(&self) {
        self.ping("start", String::new());
    }

    /// The run ended with `exit_code`; `summary` is what a person would read.
    pub fn end(&self, exit_code: i32, summary: &str) {
        self.ping(&exit_code.to_string(), body(summary));
    }

    fn ping(&self, what: &str, body: String) {
        let sent = self
            .client
            .post(format!("{}/{what}", self.url))
            .body(body)
            .send();
        let failure = match sent {
            Ok(r) if r.status().is_success() => return,
            Ok(r) => format!("the server answered HTTP {}", r.status()),
            Err(e) => error_chain(&e.without_url()),
        };
        tracing::warn!(
            "the heartbeat ping ({what}) was not delivered: {failure}; the run goes on (monitoring.heartbeat_url)"
        );
    }
}

/// At most [`MAX_BODY`] bytes, cut at the end of a line.
fn body(summary: &str) -> String {
    if summary.len() <= MAX_BODY {
        return summary.to_string();
    }
    let mut end = MAX_BODY - 40;
    while !summary.is_char_boundary(end) {
        end -= 1;
    }
    let cut = summary[..end].rfind('\n').unwrap_or(0);
    format!("{}\n… (summary cut at 100 KB)\n", &summary[..cut])
}

#[cfg(test)]
mod tests {
    use super::body;

    #[test]
    fn long_summaries_are_cut_at_a_line_under_100_kb() {
        let line = "x".repeat(99);
        let long: String = (0..2000).map(|_| format!("{line}\n")).collect();
        let cut = body(&long);
        assert!(cut.len() <= 100_000, "{}", cut.len());
        assert!(cut.ends_with("… (summary cut at 100 KB)\n"));
        assert_eq!(body("short\n"), "short\n");
    }
}
