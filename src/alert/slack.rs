//! The `slack` channel: one incoming-webhook message per digest, one attachment per
//! location coloured by its worst open severity (green when all resolved).

use super::Channel;
use super::digest::{Digest, Group};
use super::http::post_json;
use anyhow::Result;
use serde_json::{Value, json};
use std::time::Duration;

pub struct Slack {
    pub webhook_url: String,
    pub timeout: Duration,
}

impl Channel for Slack {
    fn name(&self) -> &'static str {
        "slack"
    }

    fn deliver(&self, digest: &Digest) -> Result<()> {
        post_json(&self.webhook_url, &payload(digest), self.timeout)
    }
}

/// Slack's escaping of message text.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

pub fn color(status: &str) -> &'static str {
    match status {
        "critical" => "#d50200",
        "warning" => "#de9e31",
        _ => "#2eb886",
    }
}

fn attachment(group: &Group) -> Value {
    let mut text: Vec<String> = group.alerts.iter().map(|l| escape(&l.text)).collect();
    if !group.log.is_empty() {
        text.push(format!(
            "Recent log:\n```{}```",
            escape(&group.log.join("\n"))
        ));
    }
    json!({
        "color": color(&group.status),
        "title": escape(&group.title),
        "text": text.join("\n"),
        "fallback": format!("{}: {} alert(s)", group.title, group.alerts.len()),
        "mrkdwn_in": ["text"],
    })
}

pub fn payload(digest: &Digest) -> Value {
    json!({
        "text": escape(&digest.subject),
        "attachments": digest.groups.iter().map(attachment).collect::<Vec<_>>(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::Event;
    use crate::alert::digest::fixtures;
    use crate::problem::{Kind, Severity};

    #[test]
    fn one_coloured_attachment_per_location_with_escaped_text() {
        let mut alert = fixtures::alert(Kind::NoBackups, Severity::Critical, Some("db"));
        alert.problem.message = "no file matches <*.sql>".into();
        let notice = fixtures::notice(Event::Open, alert);
        let clock = fixtures::clock_at(60);
        let d = Digest::build(&[notice], "h", &clock, &|_| vec!["WARN a & b".into()]);
        let p = payload(&d);
        assert_eq!(p["text"], "[backup-monitor] CRITICAL: 1 new on h");
        let a = &p["attachments"][0];
        assert_eq!(a["color"], "#d50200");
        assert_eq!(a["title"], "db");
        let text = a["text"].as_str().unwrap();
        assert!(text.contains("no file matches &lt;*.sql&gt;"), "{text}");
        assert!(text.contains("```WARN a &amp; b```"), "{text}");
    }
}
