//! Validation of the alert channels (`alerts.email`, `.slack`, `.webhook`): everything
//! that would otherwise only fail when an alert is sent — at night, when it matters — is
//! caught by `--check-config`. A disabled channel is not checked at all (it may hold
//! `${VAR}`s that are not set). Not for: sending (see `alert`).
//!
//! Webhook URLs and the SMTP password are secrets: messages name the key and the reason,
//! never the value. Email addresses are not secret and are quoted.

use super::interpolate;
use super::{Alerts, EmailChannel, EnvString, SmtpSecurity};
use lettre::message::Mailbox;

/// Push every problem of the enabled channels in `alerts` onto `errors`.
pub fn validate(alerts: &Alerts, errors: &mut Vec<String>) {
    let e = &alerts.email;
    if e.enabled {
        validate_email(e, errors);
    }
    if alerts.slack.enabled {
        check_url(
            errors,
            "alerts.slack.webhook_url",
            &alerts.slack.webhook_url,
        );
    }
    if alerts.webhook.enabled {
        check_url(errors, "alerts.webhook.url", &alerts.webhook.url);
    }
}

fn validate_email(e: &EmailChannel, errors: &mut Vec<String>) {
    require(errors, "alerts.email.smtp_host", &e.smtp_host);
    match (e.smtp_port_value.get(), e.smtp_port_value.undefined_var()) {
        (Some(0), _) => errors.push(
            "alerts.email.smtp_port: 0 is not a port; use 587 (starttls), 465 (tls) or 25".into(),
        ),
        (_, Some(var)) => errors.push(format!(
            "alerts.email.smtp_port: {}",
            interpolate::undefined_message(var)
        )),
        _ => {}
    }
    for (key, v) in [
        ("alerts.email.username", &e.username),
        ("alerts.email.password", &e.password),
    ] {
        if let Some(var) = v.undefined_var() {
            errors.push(format!("{key}: {}", interpolate::undefined_message(var)));
        }
    }
    check_mailbox(errors, "alerts.email.from", &e.from);
    if e.to.is_empty() {
        errors.push("alerts.email.to: list at least one recipient".into());
    }
    for (i, to) in e.to.iter().enumerate() {
        check_mailbox(errors, &format!("alerts.email.to[{i}]"), to);
    }
}

/// The value of a key an enabled channel needs, or `None` after reporting why it is
/// unusable (an undefined `${VAR}`, or empty).
fn require<'v>(errors: &mut Vec<String>, key: &str, value: &'v EnvString) -> Option<&'v str> {
    if let Some(var) = value.undefined_var() {
        errors.push(format!("{key}: {}", interpolate::undefined_message(var)));
        None
    } else if value.get().trim().is_empty() {
        errors.push(format!("{key}: must be set when the channel is enabled"));
        None
    } else {
        Some(value.get())
    }
}

/// An address the mailer will accept: `ops@example.com` or `Ops <ops@example.com>`.
/// Parsed exactly as `alert::email` parses it when sending.
fn check_mailbox(errors: &mut Vec<String>, key: &str, value: &EnvString) {
    let Some(address) = require(errors, key, value) else {
        return;
    };
    if let Err(e) = address.parse::<Mailbox>() {
        errors.push(format!(
            "{key}: `{address}` is not an email address ({e}); write e.g. backups@example.com or \"Backups <backups@example.com>\""
        ));
    }
}

/// An absolute `http://` or `https://` URL with a host. The value is a secret (a Slack
/// webhook URL is its own credential), so it is never part of the message.
fn check_url(errors: &mut Vec<String>, key: &str, value: &EnvString) {
    let Some(url) = require(errors, key, value) else {
        return;
    };
    if let Err(reason) = url_problem(url.trim()) {
        errors.push(format!(
            "{key}: {reason} (the value is not shown: it is a secret)"
        ));
    }
}

fn url_problem(url: &str) -> Result<(), String> {
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
        return Some(
            "alerts.email.ca_file: only used with security starttls or tls; remove it or turn TLS on".into(),
        );
    }
    match std::fs::read_to_string(path) {
        Err(err) => Some(format!(
            "alerts.email.ca_file: cannot read {}: {err}",
            path.display()
        )),
        Ok(text) if !text.contains("-----BEGIN CERTIFICATE-----") => Some(format!(
            "alerts.email.ca_file: {} holds no PEM certificate (-----BEGIN CERTIFICATE-----)",
            path.display()
        )),
        Ok(_) => None,
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
