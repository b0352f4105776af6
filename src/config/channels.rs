//! Validation of the alert channels (`alerts.email`, `.slack`, `.webhook`): everything
//! that would otherwise only fail when an alert is sent — at night, when it matters — is
//! caught by `--check-config`. A disabled channel is not checked at all (it may hold
//! `${VAR}`s that are not set). Not for: sending (see `alert`).
//!
//! Webhook URLs and the SMTP password are secrets: messages name the key and the reason,
//! never the value. Email addresses are not secret and are quoted.

use super::resolve::ConfigError;
use super::values::shown;
use super::{EmailChannel, SlackChannel, SmtpSecurity, WebhookChannel};
use lettre::message::Mailbox;

/// Checks of the enabled channels of one config; `failed(key)` tells a key whose value
/// was already reported unusable (an unset `${VAR}`), so it is not reported twice.
struct Checks<'a> {
    failed: &'a dyn Fn(&str) -> bool,
    errors: &'a mut Vec<ConfigError>,
}

/// Push every problem of the enabled channels onto `errors`.
pub fn validate(
    email: &EmailChannel,
    slack: &SlackChannel,
    webhook: &WebhookChannel,
    failed: &dyn Fn(&str) -> bool,
    errors: &mut Vec<ConfigError>,
) {
    let mut c = Checks { failed, errors };
    if email.enabled {
        c.email(email);
    }
    if slack.enabled {
        c.url("alerts.slack.webhook_url", &slack.webhook_url);
    }
    if webhook.enabled {
        c.url("alerts.webhook.url", &webhook.url);
    }
}

impl Checks<'_> {
    fn error(&mut self, key: &str, message: String) {
        self.errors.push(ConfigError::new(key, message));
    }

    fn email(&mut self, e: &EmailChannel) {
        self.require("alerts.email.smtp_host", &e.smtp_host);
        if e.smtp_port == 0 && !(self.failed)("alerts.email.smtp_port") {
            self.error(
                "alerts.email.smtp_port",
                "0 is not a port; use 587 (starttls), 465 (tls) or 25".into(),
            );
        }
        self.mailbox("alerts.email.from", &e.from);
        if e.to.is_empty() {
            self.error("alerts.email.to", "list at least one recipient".into());
        }
        for (i, to) in e.to.iter().enumerate() {
            self.mailbox(&format!("alerts.email.to[{i}]"), to);
        }
    }

    /// The value of a key an enabled channel needs, or `None` when it is unusable
    /// (reported before, or empty).
    fn require<'v>(&mut self, key: &str, value: &'v str) -> Option<&'v str> {
        if (self.failed)(key) {
            None
        } else if value.trim().is_empty() {
            self.error(key, "must be set when the channel is enabled".into());
            None
        } else {
            Some(value)
        }
    }

    /// An address the mailer will accept: `ops@example.com` or `Ops <ops@example.com>`.
    /// Parsed exactly as `alert::email` parses it when sending.
    fn mailbox(&mut self, key: &str, value: &str) {
        let Some(address) = self.require(key, value) else {
            return;
        };
        if let Err(e) = address.parse::<Mailbox>() {
            self.error(
                key,
                format!(
                    "`{}` is not an email address ({e}); write e.g. backups@example.com or \"Backups <backups@example.com>\"",
                    shown(address)
                ),
            );
        }
    }

    /// An absolute `http://` or `https://` URL with a host. The value is a secret (a Slack
    /// webhook URL is its own credential), so it is never part of the message.
    fn url(&mut self, key: &str, value: &str) {
        let Some(url) = self.require(key, value) else {
            return;
        };
        if let Err(reason) = url_problem(url.trim()) {
            self.error(
                key,
                format!("{reason} (the value is not shown: it is a secret)"),
            );
        }
    }
}

/// Why `url` is not an absolute `http://` or `https://` URL with a host. The reason
/// never quotes the URL (it may be a secret).
pub fn url_problem(url: &str) -> Result<(), String> {
    let parsed = match reqwest::Url::parse(url) {
        Ok(parsed) => parsed,
        Err(_) if !url.contains("://") => {
            return Err("not an absolute URL; write it in full, starting with https://".into());
        }
        // url's messages are fixed phrases ("invalid port number"); they quote nothing.
        Err(e) => return Err(format!("not a valid URL: {e}")),
    };
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err("the URL must start with https:// or http://".into());
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err("the URL has no host".into());
    }
    Ok(())
}

/// `alerts.email.ca_file`: readable, holding at least one PEM certificate, and only where
/// TLS is used.
pub fn validate_ca_file(e: &EmailChannel) -> Option<String> {
    let path = e.ca_path.as_ref()?;
    if e.security == SmtpSecurity::None {
        return Some("only used with security starttls or tls; remove it or turn TLS on".into());
    }
    match pem_file_holds_a_certificate(path) {
        Err(err) => Some(format!("cannot read {}: {err}", path.display())),
        Ok(false) => Some(format!(
            "{} holds no PEM certificate (-----BEGIN CERTIFICATE-----)",
            path.display()
        )),
        Ok(true) => None,
    }
}

/// Whether the file holds a `-----BEGIN CERTIFICATE-----` line, read line by line.
fn pem_file_holds_a_certificate(path: &std::path::Path) -> std::io::Result<bool> {
    use std::io::BufRead;
    let mut reader = std::io::BufReader::new(std::fs::File::open(path)?);
    let mut line = Vec::new();
    loop {
        line.clear();
        if reader.read_until(b'\n', &mut line)? == 0 {
            return Ok(false);
        }
        if line.starts_with(b"-----BEGIN CERTIFICATE-----") {
            return Ok(true);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn webhook_urls_must_be_absolute_http_with_a_host() {
        assert!(url_problem("https://hooks.slack.com/services/T/B/X").is_ok());
        assert!(url_problem("http://127.0.0.1:8080/hook").is_ok());
        for bad in [
            "notaurl",
            "hooks.slack.com/services/T/B/X",
            "ftp://example.com/x",
            "http://127.0.0.1:99999/hook",
            "https://",
            "mailto:ops@example.com",
        ] {
            let reason = url_problem(bad).expect_err(bad);
            assert!(!reason.contains(bad), "{reason} echoes {bad}");
        }
    }
}
