//! The generic `webhook` channel: POSTs the digest as JSON (the payload is documented in
//! docs/alerts.md; it is a stable interface).

use super::Channel;
use super::digest::Digest;
use super::http::post_json;
use anyhow::Result;
use serde::Serialize;
use std::time::Duration;

pub struct Webhook {
    pub url: String,
    pub timeout: Duration,
}

/// The documented payload: the digest with where it comes from.
#[derive(Serialize)]
pub struct Payload<'a> {
    pub source: &'static str,
    pub version: &'static str,
    #[serde(flatten)]
    pub digest: &'a Digest,
}

pub fn payload(digest: &Digest) -> serde_json::Value {
    serde_json::to_value(Payload {
        source: "backup-monitor",
        version: env!("CARGO_PKG_VERSION"),
        digest,
    })
    .unwrap_or_default()
}

impl Channel for Webhook {
    fn name(&self) -> &'static str {
        "webhook"
    }

    fn deliver(&self, digest: &Digest) -> Result<()> {
        post_json(&self.url, &payload(digest), self.timeout)
    }
}
