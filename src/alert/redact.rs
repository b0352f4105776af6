//! Keeping secrets out of everything the program says: the SMTP
//! password, both webhook URLs (their path and query carry the token) and any URL's
//! user-info. Every delivery error passes through [`Secrets::redact`] before it is logged,
//! stored or printed.

use crate::config::Alerts;

const MASK: &str = "[redacted]";

/// The secret strings of the alert configuration.
#[derive(Debug, Default, Clone)]
pub struct Secrets {
    values: Vec<String>,
}

impl Secrets {
    pub fn from_config(alerts: &Alerts) -> Secrets {
        let mut secrets = Secrets::default();
        secrets.add(&alerts.email.password);
        for url in [&alerts.slack.webhook_url, &alerts.webhook.url] {
            secrets.add_url(url);
        }
        secrets
    }

    /// A secret value; very short values are ignored (they would mask ordinary words).
    pub fn add(&mut self, value: &str) {
        let value = value.trim();
        if value.len() >= 3 && !self.values.iter().any(|v| v == value) {
            self.values.push(value.to_string());
            // Longest first, so a URL is masked whole before its parts.
            self.values.sort_by_key(|v| std::cmp::Reverse(v.len()));
        }
    }

    /// A URL whose every part after the host may be a token: the whole URL, its path and
    /// query, and its user-info.
    pub fn add_url(&mut self, url: &str) {
        self.add(url);
        let Some((_, rest)) = url.split_once("://") else {
            return;
        };
        let (authority, tail) = match rest.find(['/', '?', '#']) {
            Some(i) => rest.split_at(i),
            None => (rest, ""),
        };
        if let Some((userinfo, _)) = authority.rsplit_once('@') {
            self.add(userinfo);
            if let Some((_, password)) = userinfo.split_once(':') {
                self.add(password);
            }
        }
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
