//! Keeping secrets out of everything the program says: the SMTP password, both webhook
//! URLs and the heartbeat URL (their path and query carry the token), and any URL's
//! user-info (the report base URL's too). A server may echo a secret in another form
//! than the configured one, so each is also masked percent-decoded, percent-encoded and
//! base64-encoded at any alignment (an SMTP `AUTH PLAIN` line, a `Basic` header). Every
//! delivery error passes through [`Secrets::redact`] before it is logged, stored or
//! printed.

use crate::config::Config;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use percent_encoding::{NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};

const MASK: &str = "[redacted]";

/// Base64 runs shorter than this are not masked: they would match ordinary words.
const MIN_BASE64_CORE: usize = 6;

/// The secret strings of the configuration.
#[derive(Debug, Default, Clone)]
pub struct Secrets {
    values: Vec<String>,
}

impl Secrets {
    pub fn from_config(config: &Config) -> Secrets {
        let alerts = &config.alerts;
        let mut secrets = Secrets::default();
        secrets.add(&alerts.email.password);
        if !alerts.email.password.is_empty() {
            // The SMTP AUTH PLAIN and LOGIN lines, whole.
            let user = &alerts.email.username;
            let password = &alerts.email.password;
            for form in [
                format!("\0{user}\0{password}"),
                format!("{user}\0{password}"),
            ] {
                secrets.add_exact(&BASE64.encode(form));
            }
        }
        for url in [&alerts.slack.webhook_url, &alerts.webhook.url] {
            secrets.add_url(url);
        }
        if let Some(url) = &config.monitoring.heartbeat_url {
            secrets.add_url(url);
        }
        for s3 in config
            .backups
            .locations
            .iter()
            .filter_map(|l| l.s3.as_ref())
        {
            // Bucket credentials: the secret signs requests and is never sent, but a
            // server or a proxy may still echo the session token.
            for secret in [&s3.secret_access_key, &s3.session_token]
                .into_iter()
                .flatten()
            {
                secrets.add(secret);
            }
        }
        if let Some(url) = &config.reporting.base_url {
            // The base URL is printed in reports on purpose; only its user-info is secret.
            secrets.add_userinfo(url);
        }
        secrets
    }

    /// A secret value, with its percent-decoded, percent-encoded and base64 forms; very
    /// short values are ignored (they would mask ordinary words).
    pub fn add(&mut self, value: &str) {
        let value = value.trim();
        if value.len() < 3 {
            return;
        }
        self.add_exact(value);
        if let Ok(decoded) = percent_decode_str(value).decode_utf8() {
            self.add_exact(&decoded);
            self.add_base64(decoded.as_bytes());
        }
        self.add_exact(&utf8_percent_encode(value, NON_ALPHANUMERIC).to_string());
        self.add_base64(value.as_bytes());
    }

    /// One literal string to mask.
    fn add_exact(&mut self, value: &str) {
        if value.len() >= 3 && !self.values.iter().any(|v| v == value) {
            self.values.push(value.to_string());
            // Longest first, so a URL is masked whole before its parts.
            self.values.sort_by_key(|v| std::cmp::Reverse(v.len()));
        }
    }

    /// The base64 characters that encode `secret` wherever it starts in an encoded
    /// stream: for each of the three alignments, the characters that depend on the
    /// secret's bytes alone (those shared with the bytes around it differ per use).
    fn add_base64(&mut self, secret: &[u8]) {
        for shift in 0..3usize {
            let mut bytes = vec![0u8; shift];
            bytes.extend_from_slice(secret);
            let encoded = BASE64.encode(&bytes);
            let first = (8 * shift).div_ceil(6);
            let end = 8 * bytes.len() / 6;
            if let Some(core) = encoded.get(first..end)
                && core.len() >= MIN_BASE64_CORE
            {
                self.add_exact(core);
            }
        }
    }

    /// The user-info of `url` (and its password alone), if it has one.
    fn add_userinfo(&mut self, url: &str) {
        let Some((_, rest)) = url.split_once("://") else {
            return;
        };
        let authority = rest.split(['/', '?', '#']).next().unwrap_or(rest);
        if let Some((userinfo, _)) = authority.rsplit_once('@') {
            self.add(userinfo);
            if let Some((_, password)) = userinfo.split_once(':') {
                self.add(password);
            }
        }
    }

    /// A URL whose every part after the host may be a token: the whole URL, its path and
    /// query, and its user-info.
    pub fn add_url(&mut self, url: &str) {
        self.add(url);
        self.add_userinfo(url);
        let Some((_, rest)) = url.split_once("://") else {
            return;
        };
        let tail = rest.find(['/', '?', '#']).map_or("", |i| &rest[i..]);
        if tail.len() > 1 {
            self.add(tail);
            // Each long path segment or query value alone, e.g. when an error quotes it.
            for part in tail.split(['/', '?', '&', '=', '#']) {
                if part.len() >= 8 {
                    self.add(part);
                }
            }
        }
    }

    /// `text` with every secret and every URL user-info replaced by `[redacted]`.
    pub fn redact(&self, text: &str) -> String {
        let mut out = text.to_string();
        for secret in &self.values {
            if out.contains(secret.as_str()) {
                out = out.replace(secret.as_str(), MASK);
            }
        }
        strip_userinfo(&out)
    }
}

/// Mask the user-info of every `scheme://user:pass@host` in `text`.
fn strip_userinfo(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find("://") {
        let (head, tail) = rest.split_at(i + 3);
        out.push_str(head);
        let end = tail
            .find(|c: char| c.is_whitespace() || "/?#\"'<>)".contains(c))
            .unwrap_or(tail.len());
        let authority = &tail[..end];
        match authority.rfind('@') {
            Some(at) if authority[..at] != *MASK => {
                out.push_str(MASK);
                out.push_str(&authority[at..]);
            }
            _ => out.push_str(authority),
        }
        rest = &tail[end..];
    }
    out.push_str(rest);
    out
}

/// An error and its causes on one line ("a: b: c"), for messages and the store.
pub fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut parts = vec![e.to_string()];
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !parts.last().is_some_and(|p| p.contains(&text)) {
            parts.push(text);
        }
        source = s.source();
    }
    parts.join(": ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secrets() -> Secrets {
        let mut s = Secrets::default();
        s.add("hunter2-smtp");
        s.add_url("https://hooks.slack.com/services/T000/B000/XyZsecretToken123");
        s.add_url("https://bot:p4ssw0rd@alerts.example.com/hook?token=abcdef123456");
        s
    }

    #[test]
    fn masks_passwords_urls_and_their_tokens() {
        let s = secrets();
        let text = "auth failed for hunter2-smtp; POST https://hooks.slack.com/services/T000/B000/XyZsecretToken123 failed; \
                    token XyZsecretToken123 rejected; https://bot:p4ssw0rd@alerts.example.com/hook?token=abcdef123456 down; \
                    query token=abcdef123456";
        let out = s.redact(text);
        for secret in [
            "hunter2-smtp",
            "XyZsecretToken123",
            "p4ssw0rd",
            "abcdef123456",
            "bot:",
        ] {
            assert!(!out.contains(secret), "{secret} leaked: {out}");
        }
        assert!(out.contains("[redacted]"), "{out}");
        assert!(
            out.contains("auth failed for"),
            "the rest stays readable: {out}"
        );
    }

    #[test]
    fn masks_userinfo_of_unknown_urls_too() {
        let out = Secrets::default().redact("cannot reach http://admin:s3cret@10.0.0.1:8080/x now");
        assert_eq!(out, "cannot reach http://[redacted]@10.0.0.1:8080/x now");
        let plain = "see https://example.com/docs and user@example.com";
        assert_eq!(Secrets::default().redact(plain), plain);
    }

    #[test]
    fn masks_percent_decoded_encoded_and_base64_forms() {
        let mut s = Secrets::default();
        s.add_url("https://hooks.example.com/hook/tok%2Bsecret%21value42");
        s.add("pass word!x");
        let out = s.redact("no route for /hook/tok+secret!value42, password pass%20word%21x");
        assert!(
            !out.contains("tok+secret") && !out.contains("pass%20word"),
            "{out}"
        );
        // The password base64-encoded after 0, 1 or 2 other bytes (AUTH PLAIN, Basic).
        for prefix in ["", "\0", "\0u", "\0us\0", "user:"] {
            let line = format!(
                "535 rejected AUTH PLAIN {}",
                BASE64.encode(format!("{prefix}pass word!x"))
            );
            let out = s.redact(&line);
            assert!(out.contains("[redacted]"), "{prefix:?}: {out}");
            assert!(out.starts_with("535 rejected AUTH PLAIN"), "{out}");
        }
    }

    #[test]
    fn the_heartbeat_url_and_report_user_info_are_secrets_the_report_address_is_not() {
        let config = crate::config::parse_str(
            "monitoring:\n  heartbeat_url: https://hc.example.com/ping/0f3e-heartbeat-uuid\n\
             reporting:\n  base_url: https://viewer:reportPass99@reports.example.com/bm/\n\
             alerts:\n  email:\n    username: monitor\n    password: smtpPass-4711\n",
            std::path::Path::new("/"),
        )
        .expect("config");
        let s = Secrets::from_config(&config);
        let plain = BASE64.encode("\0monitor\0smtpPass-4711");
        let text = format!(
            "ping /ping/0f3e-heartbeat-uuid failed; reportPass99; AUTH PLAIN {plain}; see https://reports.example.com/bm/x.html"
        );
        let out = s.redact(&text);
        for secret in ["0f3e-heartbeat-uuid", "reportPass99", plain.as_str()] {
            assert!(!out.contains(secret), "{secret} leaked: {out}");
        }
        assert!(
            out.contains("https://reports.example.com/bm/x.html"),
            "{out}"
        );
    }

    #[test]
    fn short_values_are_not_secrets() {
        let mut s = Secrets::default();
        s.add("ab");
        s.add_url("http://example.com/");
        assert_eq!(s.redact("ab / example"), "ab / example");
    }

    #[test]
    fn error_chain_joins_causes_once() {
        #[derive(Debug)]
        struct Outer(std::io::Error);
        impl std::fmt::Display for Outer {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("sending failed")
            }
        }
        impl std::error::Error for Outer {
            fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
                Some(&self.0)
            }
        }
        let e = Outer(std::io::Error::other("connection refused"));
        assert_eq!(error_chain(&e), "sending failed: connection refused");
    }
}
