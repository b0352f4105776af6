//! The `email` channel: one SMTP message per digest (lettre), with a plain-text and an
//! HTML part rendered from templates/alert_email.{txt,html} (embedded in the binary).
//! `security`: starttls (upgrade, required), tls (implicit TLS) or none (plain, for a
//! local relay); the server's certificate is verified against the public roots plus the
//! CAs of `ca_file`; credentials are used when `username` is set.

use super::Channel;
use super::digest::Digest;
use super::redact::error_chain;
use crate::config::{EmailChannel, SmtpSecurity};
use anyhow::{Context, Result, anyhow};
use lettre::message::header::{HeaderName, HeaderValue};
use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{Message, SmtpTransport, Transport};
use std::time::Duration;

const TEXT_TEMPLATE: &str = include_str!("../../templates/alert_email.txt");
const HTML_TEMPLATE: &str = include_str!("../../templates/alert_email.html");

pub struct Email {
    pub config: EmailChannel,
    pub timeout: Duration,
}

impl Channel for Email {
    fn name(&self) -> &'static str {
        "email"
    }

    fn deliver(&self, digest: &Digest) -> Result<()> {
        let (text, html) = render(digest)?;
        let message = self.message(digest, text, html)?;
        let c = &self.config;
        self.transport()?.send(&message).map_err(|e| {
            let waited = if timed_out(&e) {
                format!(
                    "no answer within {} (alerts.timeout): ",
                    humantime::format_duration(self.timeout)
                )
            } else {
                String::new()
            };
            let chain = error_chain(&e);
            let hint = if chain.contains("peer certificate") {
                format!(
                    "; the server's certificate must be signed by a public CA or one in alerts.email.ca_file, and name `{}`",
                    c.smtp_host.as_str()
                )
            } else {
                String::new()
            };
            anyhow!(
                "SMTP {}:{}: {waited}{chain}{hint}",
                c.smtp_host.as_str(),
                c.smtp_port,
            )
        })?;
        Ok(())
    }
}

impl Email {
    fn message(&self, digest: &Digest, text: String, html: String) -> Result<Message> {
        let from = mailbox("alerts.email.from", &self.config.from)?;
        let id = message_id(from.email.domain(), &digest.subject);
        let mut builder = Message::builder()
            .from(from)
            .subject(digest.subject.clone())
            .message_id(Some(id))
            .date_now()
            // RFC 3834: no vacation replies or bounces loops to an automatic sender.
            .raw_header(HeaderValue::new(
                HeaderName::new_from_ascii_str("Auto-Submitted"),
                "auto-generated".into(),
            ));
        for (i, to) in self.config.to.iter().enumerate() {
            builder = builder.to(mailbox(&format!("alerts.email.to[{i}]"), to)?);
        }
        builder
            .multipart(MultiPart::alternative_plain_html(text, html))
            .context("building the alert email")
    }

    fn transport(&self) -> Result<SmtpTransport> {
        let c = &self.config;
        let host = c.smtp_host.as_str();
        let tls = match c.security {
            SmtpSecurity::None => Tls::None,
            // Upgrade required: a server that does not offer STARTTLS gets no message
            // (and no password).
            SmtpSecurity::Starttls => Tls::Required(self.tls_parameters(host)?),
            SmtpSecurity::Tls => Tls::Wrapper(self.tls_parameters(host)?),
        };
        let mut builder = SmtpTransport::builder_dangerous(host)
            .tls(tls)
            .port(c.smtp_port)
            .timeout(Some(self.timeout));
        if !c.username.is_empty() {
            builder = builder.credentials(Credentials::new(
                c.username.to_string(),
                c.password.to_string(),
            ));
        }
        Ok(builder.build())
    }
}

impl Email {
    /// Verify the server as `host` against the public roots and, when set, the CAs of
    /// `alerts.email.ca_file`.
    fn tls_parameters(&self, host: &str) -> Result<TlsParameters> {
        let mut builder = TlsParameters::builder(host.to_string());
        if let Some(path) = &self.config.ca_path {
            let pem = std::fs::read(path)
                .with_context(|| format!("alerts.email.ca_file: reading {}", path.display()))?;
            let cert = Certificate::from_pem(&pem).map_err(|e| {
                anyhow!(
                    "alerts.email.ca_file: {} is not a PEM certificate bundle: {}",
                    path.display(),
                    error_chain(&e)
                )
            })?;
            builder = builder.add_root_certificate(cert);
        }
        builder
            .build_rustls()
            .map_err(|e| anyhow!("alerts.email.smtp_host `{host}`: {}", error_chain(&e)))
    }
}

/// A socket timeout: `TimedOut`, or `WouldBlock` as Linux reports a read timeout.
fn timed_out(e: &lettre::transport::smtp::Error) -> bool {
    let mut source = std::error::Error::source(e);
    while let Some(err) = source {
        if let Some(io) = err.downcast_ref::<std::io::Error>() {
            return matches!(
                io.kind(),
                std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock
            );
        }
        source = err.source();
    }
    false
}

/// `<bm.<time>.<hash>@<domain of the sender>>`: unique per message (the time in
/// nanoseconds, the process and the subject), in the sender's own domain.
fn message_id(domain: &str, subject: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    let seed = format!("{nanos}\n{}\n{subject}", std::process::id());
    let hash = blake3::hash(seed.as_bytes()).to_hex();
    format!("<bm.{nanos}.{}@{domain}>", &hash.as_str()[..16])
}

fn mailbox(key: &str, address: &str) -> Result<Mailbox> {
    address
        .parse()
        .map_err(|e| anyhow!("{key}: `{address}` is not an email address: {e}"))
}

/// The plain-text and HTML bodies of a digest.
pub fn render(digest: &Digest) -> Result<(String, String)> {
    let mut env = minijinja::Environment::new();
    env.set_syntax(
        minijinja::syntax::SyntaxConfig::builder()
            .trim_blocks(true)
            .lstrip_blocks(true)
            .build()?,
    );
    env.add_template("alert_email.txt", TEXT_TEMPLATE)?;
    env.add_template("alert_email.html", HTML_TEMPLATE)?;
    let context = minijinja::Value::from(minijinja::value::Serde(digest));
    let text = env
        .get_template("alert_email.txt")?
        .render(&context)
        .context("rendering templates/alert_email.txt")?;
    let html = env
        .get_template("alert_email.html")?
        .render(&context)
        .context("rendering templates/alert_email.html")?;
    Ok((text, html))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::Event;
    use crate::alert::digest::fixtures;
    use crate::problem::{Kind, Severity};

    #[test]
    fn both_parts_name_location_problem_and_log_and_html_is_escaped() {
        let mut alert =
            fixtures::alert(Kind::ChecksumMismatch, Severity::Critical, Some("db_main"));
        alert.problem.path = Some("db_<1>.sql.gz".into());
        alert.problem.message = "content changed".into();
        let notice = fixtures::notice(Event::Open, alert);
        let clock = fixtures::clock_at(3600);
        let d = Digest::build(&[notice], "h", &clock, &|_| {
            vec!["WARN hash differs".into()]
        });
        let (text, html) = render(&d).unwrap();
        for body in [&text, &html] {
            assert!(body.contains("db_main"), "{body}");
            assert!(body.contains("checksum_mismatch"), "{body}");
            assert!(body.contains("hash differs"), "{body}");
        }
        assert!(
            text.starts_with("[backup-monitor] CRITICAL db_main: checksum_mismatch\n"),
            "{text}"
        );
        assert!(html.contains("db_&lt;1&gt;.sql.gz"), "{html}");
        assert!(!html.contains("db_<1>"), "{html}");
    }

    #[test]
    fn both_parts_say_the_same_words_worst_location_first() {
        let warn = fixtures::alert(Kind::LowDiskSpace, Severity::Warning, Some("aaa"));
        let crit = fixtures::alert(Kind::MissingBackup, Severity::Critical, Some("zzz"));
        let notices = [
            fixtures::notice(Event::Repeat, warn),
            fixtures::notice(Event::Open, crit),
        ];
        let clock = fixtures::clock_at(7200);
        let d = Digest::build(&notices, "h", &clock, &|_| Vec::new())
            .linking(Some("https://reports.example.com/bm"));
        let (text, html) = render(&d).unwrap();
        for line in d.lines() {
            for words in [&line.label, &line.detail] {
                assert!(text.contains(words.as_str()), "{words}: {text}");
                let escaped = words
                    .replace('&', "&amp;")
                    .replace('<', "&lt;")
                    .replace('>', "&gt;")
                    .replace('\'', "&#x27;")
                    .replace('/', "&#x2f;");
                assert!(html.contains(&escaped), "{words}: {html}");
            }
        }
        for body in [&text, &html] {
            assert!(!body.contains("OPEN</"), "{body}");
            assert!(!body.contains("REPEAT"), "{body}");
            assert!(
                body.contains("https://reports.example.com/bm/latest.html")
                    || body
                        .contains("https:&#x2f;&#x2f;reports.example.com&#x2f;bm&#x2f;latest.html"),
                "{body}"
            );
            assert!(!body.contains("Recent log"), "{body}");
            let (zzz, aaa) = (
                body.find("zzz").unwrap(),
                body.find("== aaa").or(body.find(">aaa")).unwrap(),
            );
            assert!(zzz < aaa, "critical location first: {body}");
        }
    }

    #[test]
    fn digest_email_both_parts() {
        let mut missing = fixtures::alert(Kind::MissingBackup, Severity::Critical, Some("db"));
        missing.problem.slot = Some("2026-11-19T02:00:00+01:00".parse().unwrap());
        missing.problem.message = "no backup for the daily slot starting 2026-11-19 02:00".into();
        let mut small = fixtures::alert(Kind::UndersizedBackup, Severity::Warning, Some("www"));
        small.problem.path = Some("www-20261121-0300.tar.gz".into());
        small.problem.message = "www-20261121-0300.tar.gz is 12 bytes, under min_size 1 KiB".into();
        let fixed = fixtures::alert(Kind::ChecksumMismatch, Severity::Critical, Some("docs"));
        let mut health = fixtures::alert(Kind::HealthDegraded, Severity::Warning, Some("app"));
        health.problem.message = "health 0.72 over 7 days, under health_warning 0.8".into();
        let mut down = fixtures::notice(Event::Deescalation, health);
        down.previous_severity = Some(Severity::Critical);
        let notices = [
            fixtures::notice(Event::Open, missing),
            fixtures::notice(Event::Repeat, small),
            fixtures::notice(Event::Resolved, fixed),
            down,
        ];
        let clock = fixtures::clock_at(7200);
        let d = Digest::build(&notices, "backup-host", &clock, &|_| Vec::new())
            .linking(Some("https://reports.example.com/backups/"));
        let (text, html) = render(&d).unwrap();
        insta::assert_snapshot!("digest_email_text", text);
        insta::assert_snapshot!("digest_email_html", html);
    }
}
