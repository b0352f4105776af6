//! One JSON POST with a timeout, shared by the Slack and webhook channels. Errors never
//! carry the URL (it holds the token): reqwest's URL is stripped here, and the caller
//! redacts the rest.

use super::redact::error_chain;
use crate::problem::one_line;
use anyhow::{Result, anyhow, bail};
use std::time::Duration;

/// POST `body` to `url`; any non-2xx answer is an error. `timeout` bounds connecting
/// and the whole exchange.
pub fn post_json(url: &str, body: &serde_json::Value, timeout: Duration) -> Result<()> {
    let client = reqwest::blocking::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("backup-monitor/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| describe(e, timeout))?;
    let response = client
        .post(url)
        .json(body)
        .send()
        .map_err(|e| describe(e, timeout))?;
    let status = response.status();
    if !status.is_success() {
        // The server's words, on one line: what it sends may hold terminal escapes or
        // forged lines, and it reaches the terminal, the store and the other channels.
        let text = response.text().unwrap_or_default();
        let text: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
        let text: String = text.chars().take(200).collect();
        let text = one_line(&text);
        if text.is_empty() {
            bail!("the server answered HTTP {status}");
        }
        bail!("the server answered HTTP {status}: {text}");
    }
    Ok(())
}

fn describe(e: reqwest::Error, timeout: Duration) -> anyhow::Error {
    let timed_out = e.is_timeout();
    let e = e.without_url();
    if timed_out {
        anyhow!(
            "no answer within {} (alerts.timeout): {}",
            humantime::format_duration(timeout),
            error_chain(&e)
        )
    } else {
        anyhow!("{}", error_chain(&e))
    }
}
