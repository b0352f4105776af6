//! An S3 bucket (AWS or an S3-compatible server) as a location: objects under a prefix
//! are the files. Requests are signed with `rusty-s3` (SigV4, presigned) and sent with
//! the blocking HTTP client over rustls; every answer is bounded before it is read, and
//! errors name the S3 error code and the endpoint, never a key.
//!
//! Listing is ListObjectsV2 with pagination (`recursive: false` lists with the delimiter
//! `/`); an object's LastModified is its mtime, to the second (what every S3 call gives
//! back); an object's ETag is its fingerprint, never an MD5 (a multipart upload's ETag,
//! `"…-N"`, is not one). A GET asks for checksum mode, and a full-object
//! `x-amz-checksum-sha256` answered with it is checked like a sidecar.
//!
//! Connecting is bounded (10 s), and so is every wait for bytes (60 s); a server error,
//! throttling (503 SlowDown, 429) or a refused connection is retried with jittered
//! exponential backoff, at most 5 attempts within 30 s: a dead endpoint never hangs a run.

use super::{Capabilities, Fingerprint, Opened, Source, SourceError};
use crate::config::{Location, S3Location};
use crate::scan::{self, FoundFile, PathMatcher, ScanResult};
use base64::Engine as _;
use chrono::{DateTime, TimeZone, Utc};
use chrono_tz::Tz;
use rusty_s3::actions::{GetObject, HeadObject, ListObjectsV2, S3Action};
use rusty_s3::{Bucket, Credentials, UrlStyle};
use std::io::Read;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// How long a presigned request stays valid (it is sent at once; retries sign anew).
const EXPIRY: Duration = Duration::from_secs(15 * 60);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// The longest wait for the answer's head or for the next bytes of a body.
const READ_TIMEOUT: Duration = Duration::from_secs(60);
const MAX_ATTEMPTS: u32 = 5;
/// Retries stop once this much time went to one request.
const RETRY_BUDGET: Duration = Duration::from_secs(30);
/// A listing page holds at most 1,000 keys of at most 1,024 bytes each, plus markup.
const MAX_LIST_BODY: u64 = 8 << 20;
/// An error answer is a small XML document; more is not read.
const MAX_ERROR_BODY: u64 = 64 << 10;
/// 10 million objects at 1,000 a page: a server that never ends a listing is stopped.
const MAX_PAGES: u64 = 10_000;
/// Objects one listing may hold (their keys are kept: a bound on memory, about 1 GiB
/// with S3's longest keys).
const MAX_OBJECTS: u64 = 1_000_000;
/// How long one listing page may take to arrive, however slowly its bytes come (the
/// read timeout is per read: a byte a second would never end).
const PAGE_DEADLINE: Duration = READ_TIMEOUT;

/// Why a request to the bucket failed. Never holds a URL (signed URLs carry the access
/// key id and a session token) nor a secret.
#[derive(Debug, thiserror::Error)]
pub enum S3Error {
    /// The server answered with an S3 error code.
    #[error("{endpoint} answered {code} (HTTP {status}) for bucket {bucket}{}", detail_text(.message))]
    Server {
        endpoint: String,
        bucket: String,
        code: String,
        status: u16,
        message: Option<String>,
    },
    #[error("cannot reach {endpoint}: {reason}")]
    Unreachable { endpoint: String, reason: String },
    #[error("TLS with {endpoint} failed: {reason}")]
    Tls { endpoint: String, reason: String },
    #[error("{endpoint} did not answer within {}s", .seconds)]
    Timeout { endpoint: String, seconds: u64 },
    /// An answer that is not what S3 sends (too large, not XML, a listing without end).
    #[error("{endpoint} sent an answer that cannot be used: {reason}")]
    Invalid { endpoint: String, reason: String },
    #[error("the S3 location cannot be used: {0}")]
    Setup(String),
}

fn detail_text(message: &Option<String>) -> String {
    message
        .as_deref()
        .map(|m| format!(": {m}"))
        .unwrap_or_default()
}

impl S3Error {
    pub fn hint(&self) -> &'static str {
        match self {
            S3Error::Server { code, .. } => match code.as_str() {
                "NoSuchBucket" => "check the bucket name in `path` and the endpoint",
                "AccessDenied" | "AllAccessDisabled" => {
                    "grant these credentials s3:ListBucket and s3:GetObject on the bucket"
                }
                "SignatureDoesNotMatch"
                | "InvalidAccessKeyId"
                | "InvalidToken"
                | "ExpiredToken"
                | "InvalidSecurity" => {
                    "check s3.access_key_id and s3.secret_access_key (or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY)"
                }
                "PermanentRedirect"
                | "AuthorizationHeaderMalformed"
                | "IllegalLocationConstraintException" => {
                    "the bucket is in another region: set s3.region (or s3.endpoint)"
                }
                "SlowDown" | "ServiceUnavailable" | "InternalError" | "TooManyRequests" => {
                    "the server is overloaded or failing; it is tried again next run"
                }
                _ => "see the S3 error code in the server's documentation",
            },
            S3Error::Unreachable { .. } | S3Error::Timeout { .. } => {
                "is the S3 endpoint up and reachable from this host (s3.endpoint)?"
            }
            S3Error::Tls { .. } => {
                "check the endpoint's certificate and that s3.endpoint uses the right scheme"
            }
            S3Error::Invalid { .. } => "is s3.endpoint an S3 server?",
            S3Error::Setup(_) => "check the `s3:` block of the location",
        }
    }

    pub fn is_not_found(&self) -> bool {
        matches!(self, S3Error::Server { code, .. } if code == "NoSuchKey" || code == "NotFound")
    }
}

pub struct S3Source {
    cfg: S3Location,
    bucket: Result<Bucket, String>,
    credentials: Option<Credentials>,
    http: Result<reqwest::blocking::Client, String>,
    /// Set once the endpoint could not be reached after every retry: the rest of the
    /// run's requests fail at once instead of each waiting out its own retries.
    down: std::sync::Mutex<Option<String>>,
}

impl S3Source {
    pub fn new(cfg: &S3Location) -> S3Source {
        let style = if cfg.path_style {
            UrlStyle::Path
        } else {
            UrlStyle::VirtualHost
        };
        let bucket = url::Url::parse(&format!("{}/", cfg.endpoint))
            .map_err(|e| format!("s3.endpoint is not a URL: {e}"))
            .and_then(|u| {
                Bucket::new(u, style, cfg.bucket.clone(), cfg.region.clone()).map_err(|e| {
                    format!(
                        "bucket {} at {}: {e} (try s3.path_style: true)",
                        cfg.bucket, cfg.endpoint
                    )
                })
            });
        let credentials = match (&cfg.access_key_id, &cfg.secret_access_key) {
            (Some(id), Some(secret)) => Some(match &cfg.session_token {
                Some(token) => Credentials::new_with_token(id, secret, token),
                None => Credentials::new(id, secret),
            }),
            _ => None,
        };
        let http = reqwest::blocking::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(READ_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("backup-monitor/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| format!("cannot set up the HTTP client: {}", e.without_url()));
        S3Source {
            cfg: cfg.clone(),
            bucket,
            credentials,
            http,
            down: std::sync::Mutex::new(None),
        }
    }

    fn bucket(&self) -> Result<&Bucket, S3Error> {
        self.bucket.as_ref().map_err(|e| S3Error::Setup(e.clone()))
    }

    /// `text` with the secret key and the session token (as they are, and as a URL
    /// carries them) and the signature, credential and token values of a signed URL
    /// replaced by `[redacted]`.
    fn masked(&self, text: &str) -> String {
        let mut out = text.to_string();
        let secrets = [&self.cfg.secret_access_key, &self.cfg.session_token];
        for secret in secrets.into_iter().flatten().filter(|s| s.len() >= 4) {
            let encoded =
                percent_encoding::utf8_percent_encode(secret, percent_encoding::NON_ALPHANUMERIC)
                    .to_string();
            for form in [secret.as_str(), encoded.as_str()] {
                out = out.replace(form, "[redacted]");
            }
        }
        for name in [
            "X-Amz-Security-Token=",
            "X-Amz-Signature=",
            "X-Amz-Credential=",
        ] {
            let mut from = 0;
            while let Some(at) = out[from..]
                .to_ascii_lowercase()
                .find(&name.to_ascii_lowercase())
            {
                let start = from + at + name.len();
                let end = out[start..]
                    .find(|c: char| c == '&' || c == '"' || c == '<' || c.is_whitespace())
                    .map_or(out.len(), |n| start + n);
                out.replace_range(start..end, "[redacted]");
                from = start + "[redacted]".len();
            }
        }
        out
    }

    fn server_error(&self, status: u16, code: &str, message: Option<String>) -> S3Error {
        S3Error::Server {
            endpoint: self.cfg.endpoint.clone(),
            bucket: self.cfg.bucket.clone(),
            code: code.to_string(),
            status,
            message,
        }
    }

    /// Send one request (signed anew for each attempt by `url`), retrying what may pass
    /// on a second try. Only a successful answer is returned.
    fn send(
        &self,
        method: reqwest::Method,
        url: &dyn Fn() -> Result<url::Url, S3Error>,
        headers: &[(&str, &str)],
    ) -> Result<reqwest::blocking::Response, S3Error> {
        let http = self.http.as_ref().map_err(|e| S3Error::Setup(e.clone()))?;
        if let Some(reason) = self.down.lock().ok().and_then(|d| d.clone()) {
            return Err(S3Error::Unreachable {
                endpoint: self.cfg.endpoint.clone(),
                reason: format!("{reason} (earlier in this run)"),
            });
        }
        let started = Instant::now();
        let mut attempt = 0;
        loop {
            attempt += 1;
            let mut request = http.request(method.clone(), url()?);
            for (name, value) in headers {
                request = request.header(*name, *value);
            }
            let failure = match request.send() {
                Ok(response) if response.status().is_success() => return Ok(response),
                Ok(response) => {
                    let status = response.status().as_u16();
                    let error = self.error_of(response, method == reqwest::Method::HEAD);
                    if !retryable_status(status) {
                        return Err(error);
                    }
                    error
                }
                Err(e) => {
                    let error = self.transport_error(e);
                    if matches!(error, S3Error::Tls { .. }) {
                        return Err(error);
                    }
                    error
                }
            };
            let pause = backoff(attempt);
            if attempt >= MAX_ATTEMPTS || started.elapsed() + pause > RETRY_BUDGET {
                if let S3Error::Unreachable { reason, .. } = &failure
                    && let Ok(mut down) = self.down.lock()
                {
                    *down = Some(reason.clone());
                }
                if let S3Error::Timeout { .. } = &failure
                    && let Ok(mut down) = self.down.lock()
                {
                    *down = Some("no answer".into());
                }
                return Err(failure);
            }
            tracing::debug!("S3 request failed ({failure}); trying again in {pause:?}");
            std::thread::sleep(pause);
        }
    }

    fn transport_error(&self, e: reqwest::Error) -> S3Error {
        let endpoint = self.cfg.endpoint.clone();
        let timed_out = e.is_timeout();
        let tls = is_tls_error(&e);
        let reason = crate::alert::redact::error_chain(&e.without_url());
        let lower = reason.to_ascii_lowercase();
        if timed_out {
            S3Error::Timeout {
                endpoint,
                seconds: READ_TIMEOUT.as_secs(),
            }
        } else if tls
            || [
                "certificate",
                "tls",
                "handshake",
                // rustls's own words, when its error is wrapped out of reach of the type.
                "corrupt message",
                "fatal alert",
                "peer is incompatible",
                "peer misbehaved",
            ]
            .iter()
            .any(|w| lower.contains(w))
        {
            S3Error::Tls { endpoint, reason }
        } else {
            S3Error::Unreachable { endpoint, reason }
        }
    }

    /// The S3 error in an unsuccessful answer: its `<Code>` and `<Message>`, read within a
    /// bound (a HEAD answer has no body: the status says what it can).
    fn error_of(&self, response: reqwest::blocking::Response, head: bool) -> S3Error {
        let status = response.status().as_u16();
        let by_status = match status {
            404 if head => "NotFound",
            404 => "NoSuchKey",
            403 => "AccessDenied",
            301 => "PermanentRedirect",
            429 => "TooManyRequests",
            503 => "ServiceUnavailable",
            _ => "",
        };
        let body = if head {
            String::new()
        } else {
            let mut bytes = Vec::new();
            let _ = response.take(MAX_ERROR_BODY).read_to_end(&mut bytes);
            String::from_utf8_lossy(&bytes).into_owned()
        };
        let said = xml_element(&body, "Code")
            .filter(|c| c.len() <= 64 && c.chars().all(|c| c.is_ascii_alphanumeric() || c == '.'));
        // A body that is no S3 error (a web server's or a proxy's page): not given an S3
        // code it never sent, unless the status alone says what S3 would (overloaded).
        if said.is_none() && !body.trim().is_empty() && !matches!(status, 429 | 503) {
            let start: String = crate::problem::one_line(&self.masked(&body))
                .chars()
                .take(80)
                .collect();
            return self.invalid(format!(
                "HTTP {status} with a body that is no S3 error (\"{start}…\")"
            ));
        }
        let code = said.unwrap_or_else(|| match by_status {
            "" => format!("HTTP{status}"),
            code => code.to_string(),
        });
        // The server's words may echo the request (a proxy's error page, a server that
        // quotes the URL): the credentials it carried are masked before anything is cut.
        let message = xml_element(&body, "Message").map(|m| {
            let line = crate::problem::one_line(&self.masked(&m)).into_owned();
            line.chars().take(200).collect()
        });
        self.server_error(status, &code, message)
    }

    /// One page of a listing.
    fn list_page(
        &self,
        prefix: &str,
        delimiter: bool,
        token: Option<&str>,
        max_keys: usize,
    ) -> Result<rusty_s3::actions::ListObjectsV2Response, S3Error> {
        let bucket = self.bucket()?;
        let url = || {
            let mut action = bucket.list_objects_v2(self.credentials.as_ref());
            if !prefix.is_empty() {
                action.with_prefix(prefix);
            }
            if delimiter {
                action.with_delimiter("/");
            }
            if let Some(t) = token {
                action.with_continuation_token(t);
            }
            action.with_max_keys(max_keys);
            Ok(action.sign(EXPIRY))
        };
        let started = Instant::now();
        let mut response = self.send(reqwest::Method::GET, &url, &[])?;
        let mut bytes = Vec::new();
        let mut chunk = [0u8; 64 << 10];
        loop {
            let n = response
                .read(&mut chunk)
                .map_err(|e| self.invalid(format!("the listing broke off: {e}")))?;
            if n == 0 {
                break;
            }
            bytes.extend_from_slice(&chunk[..n]);
            if bytes.len() as u64 > MAX_LIST_BODY {
                break;
            }
            if started.elapsed() > PAGE_DEADLINE {
                return Err(self.invalid(format!(
                    "a listing page still arriving after {} s",
                    PAGE_DEADLINE.as_secs()
                )));
            }
        }
        if bytes.len() as u64 > MAX_LIST_BODY {
            return Err(self.invalid(format!("a listing page of more than {MAX_LIST_BODY} bytes")));
        }
        let text = std::str::from_utf8(&bytes)
            .map_err(|_| self.invalid("a listing that is not UTF-8".into()))?;
        let page = ListObjectsV2::parse_response(text).map_err(|e| {
            // The parser names its own types (`ListObjectsContent::size`) or the root
            // element whatever the field: the field at fault is found here instead.
            let detail = match bad_listing_field(text) {
                Some(field) => field,
                None => {
                    let detail = e.to_string();
                    match detail.contains("::") || detail.contains("root element") {
                        true => "a field holds a value S3 never writes".to_string(),
                        false => crate::problem::one_line(&crate::config::values::shown(&detail))
                            .into_owned(),
                    }
                }
            };
            self.invalid(format!("a listing that does not parse ({detail})"))
        })?;
        // S3 gives every object its size and time. Without them an object would read
        // as an empty backup from 1970.
        let incomplete = page.contents.iter().find(|o| {
            o.size.is_none()
                || o.last_modified
                    .as_deref()
                    .is_none_or(|t| DateTime::parse_from_rfc3339(t).is_err())
        });
        if let Some(object) = incomplete {
            let detail = bad_listing_field(text).unwrap_or_else(|| {
                format!(
                    "{} has no size or no time of last change",
                    crate::problem::one_line(&crate::config::values::shown(&object.key))
                )
            });
            return Err(self.invalid(format!("a listing that does not parse ({detail})")));
        }
        Ok(page)
    }

    fn invalid(&self, reason: String) -> S3Error {
        S3Error::Invalid {
            endpoint: self.cfg.endpoint.clone(),
            reason,
        }
    }

    /// Every object under `prefix` (direct children only with `delimiter`), page by page.
    fn each_object(
        &self,
        prefix: &str,
        delimiter: bool,
        mut each: impl FnMut(rusty_s3::actions::list_objects_v2::ListObjectsContent),
    ) -> Result<u64, S3Error> {
        let mut token: Option<String> = None;
        let mut requests = 0;
        let mut objects = 0u64;
        loop {
            let page = self.list_page(prefix, delimiter, token.as_deref(), 1000)?;
            requests += 1;
            objects += page.contents.len() as u64;
            if objects > MAX_OBJECTS {
                return Err(self.invalid(format!(
                    "a listing of more than {MAX_OBJECTS} objects (narrow the location's prefix)"
                )));
            }
            page.contents.into_iter().for_each(&mut each);
            match page.next_continuation_token {
                Some(next) if Some(&next) == token.as_ref() => {
                    return Err(
                        self.invalid("a listing that repeats its continuation token".into())
                    );
                }
                Some(next) => token = Some(next),
                None => return Ok(requests),
            }
            if requests >= MAX_PAGES {
                return Err(self.invalid(format!("a listing longer than {MAX_PAGES} pages")));
            }
        }
    }

    fn key(&self, rel: &str) -> String {
        format!("{}{rel}", self.cfg.prefix)
    }

    /// The fingerprint of an answer to HEAD or GET, from its headers.
    fn fingerprint_of(&self, response: &reqwest::blocking::Response) -> Fingerprint {
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        let mtime_ns = header("last-modified")
            .and_then(|t| DateTime::parse_from_rfc2822(&t).ok())
            .map(|t| seconds_ns(t.timestamp()))
            .unwrap_or(0);
        Fingerprint::Object {
            // The header itself: a HEAD answer's body is empty whatever the object's size.
            size: header("content-length")
                .and_then(|n| n.trim().parse().ok())
                .unwrap_or(0),
            mtime_ns,
            etag: header("etag").map(|e| e.trim_matches('"').to_string()),
            version_id: header("x-amz-version-id"),
        }
    }
}

/// An answer worth another try: server errors and throttling.
fn retryable_status(status: u16) -> bool {
    matches!(status, 500 | 502 | 503 | 504 | 429)
}

/// Exponential backoff from 200 ms, capped at 5 s, with full jitter.
fn backoff(attempt: u32) -> Duration {
    use std::hash::BuildHasher;
    let ceiling = (200u64 << attempt.min(5)).min(5_000);
    let random = std::collections::hash_map::RandomState::new().hash_one(Instant::now());
    Duration::from_millis(ceiling / 2 + random % (ceiling / 2 + 1))
}

/// The text of the first `<name>…</name>` of a small XML document (entities decoded).
fn xml_element(body: &str, name: &str) -> Option<String> {
    let open = format!("<{name}>");
    let start = body.find(&open)? + open.len();
    let end = body[start..].find(&format!("</{name}>"))? + start;
    let raw = &body[start..end];
    let text = quick_xml::escape::unescape(raw)
        .map(|t| t.into_owned())
        .unwrap_or_else(|_| raw.to_string());
    (!text.is_empty()).then_some(text)
}

/// The texts of every `<name>…</name>` of an XML document, as written (not decoded).
fn xml_elements<'a>(body: &'a str, name: &str) -> impl Iterator<Item = &'a str> {
    let open = format!("<{name}>");
    let close = format!("</{name}>");
    let mut rest = body;
    std::iter::from_fn(move || {
        let start = rest.find(&open)? + open.len();
        let end = rest[start..].find(&close)? + start;
        let text = &rest[start..end];
        rest = &rest[end + close.len()..];
        Some(text)
    })
}

/// The first field of a listing that holds a value S3 never writes there, said with the
/// field's name and value: a number of bytes or keys, a yes or no, a time.
fn bad_listing_field(body: &str) -> Option<String> {
    enum Holds {
        Number,
        Switch,
        Time,
    }
    let fields = [
        ("Size", Holds::Number, "a number of bytes"),
        ("LastModified", Holds::Time, "a time"),
        ("KeyCount", Holds::Number, "a number of keys"),
        ("MaxKeys", Holds::Number, "a number of keys"),
        ("IsTruncated", Holds::Switch, "true or false"),
    ];
    fields.iter().find_map(|(name, holds, what)| {
        let valid = |t: &str| match holds {
            Holds::Number => t.trim().parse::<u64>().is_ok(),
            Holds::Switch => matches!(t.trim(), "true" | "false"),
            Holds::Time => chrono::DateTime::parse_from_rfc3339(t.trim()).is_ok(),
        };
        let bad = xml_elements(body, name).find(|t| !valid(t))?;
        let shown = crate::problem::one_line(&crate::config::values::shown(bad)).into_owned();
        Some(format!("`{name}` holds {shown}, not {what}"))
    })
}

fn seconds_ns(secs: i64) -> i64 {
    secs.saturating_mul(1_000_000_000)
}

/// A full-object SHA-256 from `x-amz-checksum-sha256` (base64) as hex; None for a
/// composite checksum of a multipart upload (`…-N`, or `x-amz-checksum-type: COMPOSITE`),
/// which is not the digest of the object's bytes.
fn full_object_sha256(value: Option<&str>, kind: Option<&str>) -> Option<String> {
    let value = value?.trim();
    if value.contains('-') || kind.is_some_and(|k| k.eq_ignore_ascii_case("COMPOSITE")) {
        return None;
    }
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(value)
        .ok()?;
    (bytes.len() == 32).then(|| crate::verify::hash::hex(&bytes))
}

impl Source for S3Source {
    fn describe(&self) -> String {
        format!(
            "s3://{}/{} at {}",
            self.cfg.bucket, self.cfg.prefix, self.cfg.endpoint
        )
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            local_path: false,
            free_space: false,
            server_checksum: true,
        }
    }

    fn list(&self, loc: &Location, tz: &Tz, now: DateTime<Utc>) -> Result<ScanResult, SourceError> {
        let include = PathMatcher::new(&loc.patterns).ok();
        let exclude = PathMatcher::new(&loc.exclude).ok();
        let settle = loc.settle.as_chrono();
        let started = Instant::now();
        let mut result = ScanResult::default();
        let mut listed = 0u64;
        let prefix = self.cfg.prefix.clone();
        // A key listed twice (a server whose pages overlap or whose tokens cycle) is one
        // object; a key with a `.` or `..` segment cannot be fetched as named (a URL's
        // path drops them: `db/../x` would read `x`, outside the prefix): not monitored.
        let mut seen = std::collections::HashSet::new();
        let mut dotted: Vec<String> = Vec::new();
        let requests = self.each_object(&prefix, !loc.recursive, |object| {
            listed += 1;
            let Some(rel) = object.key.strip_prefix(&prefix) else {
                return;
            };
            // Folder markers (`dir/`) are not files.
            if rel.is_empty() || rel.ends_with('/') {
                return;
            }
            if object.key.split('/').any(|s| s == "." || s == "..") {
                dotted.push(rel.to_string());
                return;
            }
            if !seen.insert(rel.to_string()) {
                return;
            }
            let base_name = rel.rsplit('/').next().unwrap_or(rel);
            if scan::is_sidecar(base_name)
                || !include.as_ref().is_some_and(|m| m.is_match(rel))
                || exclude.as_ref().is_some_and(|m| m.is_match(rel))
            {
                return;
            }
            let mtime = object
                .last_modified
                .as_deref()
                .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
                .and_then(|t| Utc.timestamp_opt(t.timestamp(), 0).single())
                .unwrap_or_default();
            let (ts, source) = scan::timestamp_of(loc, base_name, mtime, tz);
            result.files.push(FoundFile {
                settled: scan::is_settled(mtime, now, settle),
                path: rel.to_string(),
                size: object.size.unwrap_or(0),
                mtime_ns: seconds_ns(mtime.timestamp()),
                ts,
                ts_source: source,
            });
            result.sources.push(source);
        })?;
        if let Some(first) = dotted.first() {
            tracing::warn!(
                location = %loc.name,
                "{} object(s) of {} have a `.` or `..` in their names ({}{}) and cannot be read as named: not monitored; rename them",
                dotted.len(),
                self.describe(),
                crate::problem::one_line(first),
                if dotted.len() > 1 { " and more" } else { "" }
            );
        }
        tracing::debug!(
            location = %loc.name,
            "listed {listed} objects of {} in {requests} requests, {:.3} s",
            self.describe(),
            started.elapsed().as_secs_f64()
        );
        Ok(result)
    }

    fn available(&self) -> bool {
        match self.list_page(&self.cfg.prefix, true, None, 1) {
            Ok(_) => true,
            Err(e) => {
                tracing::warn!("{e}");
                false
            }
        }
    }

    fn local_path(&self, _rel: &str) -> Option<PathBuf> {
        None
    }

    fn stat(&self, rel: &str) -> Result<Option<Fingerprint>, SourceError> {
        let bucket = self.bucket()?;
        let key = self.key(rel);
        let url = || Ok(HeadObject::new(bucket, self.credentials.as_ref(), &key).sign(EXPIRY));
        match self.send(reqwest::Method::HEAD, &url, &[]) {
            Ok(response) => Ok(Some(self.fingerprint_of(&response))),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    fn open(&self, rel: &str) -> Result<Opened, SourceError> {
        let bucket = self.bucket()?;
        let key = self.key(rel);
        let url = || {
            let mut action = GetObject::new(bucket, self.credentials.as_ref(), &key);
            action
                .headers_mut()
                .insert("x-amz-checksum-mode", "ENABLED");
            Ok(action.sign(EXPIRY))
        };
        let response = self.send(
            reqwest::Method::GET,
            &url,
            &[("x-amz-checksum-mode", "ENABLED")],
        )?;
        let fingerprint = self.fingerprint_of(&response);
        let header = |name: &str| response.headers().get(name).and_then(|v| v.to_str().ok());
        let server_sha256 = full_object_sha256(
            header("x-amz-checksum-sha256"),
            header("x-amz-checksum-type"),
        );
        Ok(Opened {
            reader: Box::new(Transfer {
                body: response,
                endpoint: self.cfg.endpoint.clone(),
                waited: Duration::ZERO,
                in_window: 0,
                patience: READ_TIMEOUT,
            }),
            fingerprint,
            server_sha256,
        })
    }

    fn disk_space(&self) -> Option<(u64, u64)> {
        None
    }

    fn sidecar_names(&self, dir: &str) -> Option<Vec<String>> {
        let prefix = match dir {
            "" => self.cfg.prefix.clone(),
            d => format!("{}{d}/", self.cfg.prefix),
        };
        let mut names = Vec::new();
        let listed = self.each_object(&prefix, true, |object| {
            if let Some(name) = object.key.strip_prefix(&prefix)
                && scan::is_sidecar(name)
            {
                names.push(name.to_string());
            }
        });
        match listed {
            Ok(_) => Some(names),
            Err(e) => {
                tracing::warn!("cannot list the sidecars under {prefix}: {e}");
                None
            }
        }
    }

    fn read_sidecar(&self, rel: &str, max: u64) -> Result<Option<Vec<u8>>, String> {
        let mut opened = match self.open(rel) {
            Ok(o) => o,
            Err(e) if e.is_not_found() => return Ok(None),
            Err(e) => return Err(format!("cannot be read: {e}")),
        };
        if opened.fingerprint.size() > max {
            return Err(format!(
                "is {} bytes, too large to read",
                opened.fingerprint.size()
            ));
        }
        super::read_bounded(&mut opened.reader, max).map(Some)
    }
}

/// Whether a request failed in TLS (a handshake the server answered with something else,
/// a certificate refused): rustls's error somewhere in the chain, possibly inside an
/// I/O error.
fn is_tls_error(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut next = Some(e);
    while let Some(err) = next {
        if err.is::<rustls::Error>() {
            return true;
        }
        if let Some(io) = err.downcast_ref::<std::io::Error>()
            && io
                .get_ref()
                .is_some_and(|inner| inner.is::<rustls::Error>())
        {
            return true;
        }
        next = err.source();
    }
    false
}

/// An object's body as it arrives: a failure of the transfer (the connection closed or
/// stalled mid-body) is said as one (`ConnectionAborted`, the cause named), so that
/// neither a verification nor a restore test takes it for damage in the backup.
/// A body that trickles (below [`MIN_RATE`] bytes over [`READ_TIMEOUT`] of waiting on
/// the server) is given up as a broken transfer too: the read timeout is per read, and a byte every few seconds
/// would hold the night's run for days.
struct Transfer<R> {
    body: R,
    endpoint: String,
    /// Time spent in reads since the window began, and the bytes they brought.
    waited: Duration,
    in_window: u64,
    /// The window: [`READ_TIMEOUT`].
    patience: Duration,
}

/// The least a transfer must bring in each [`READ_TIMEOUT`].
const MIN_RATE: u64 = 64 << 10;

impl<R: std::io::Read> std::io::Read for Transfer<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.waited > self.patience {
            if self.in_window < MIN_RATE {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::ConnectionAborted,
                    format!(
                        "the transfer from {} slowed to {} bytes in {} s",
                        self.endpoint,
                        self.in_window,
                        self.patience.as_secs()
                    ),
                ));
            }
            self.waited = Duration::ZERO;
            self.in_window = 0;
        }
        // Only the time spent waiting on the server counts: a restore that consumes
        // slowly (a database building its indexes) pauses between reads.
        let started = Instant::now();
        let n = self.read_body(buf)?;
        self.waited += started.elapsed();
        self.in_window += n as u64;
        Ok(n)
    }
}

impl<R: std::io::Read> Transfer<R> {
    fn read_body(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.body.read(buf).map_err(|e| {
            if e.kind() == std::io::ErrorKind::ConnectionAborted {
                return e;
            }
            // reqwest says "request or response body error"; the cause is below it.
            let mut cause = e.to_string();
            let mut source = std::error::Error::source(&e);
            while let Some(s) = source {
                cause = s.to_string();
                source = s.source();
            }
            std::io::Error::new(
                std::io::ErrorKind::ConnectionAborted,
                format!(
                    "the transfer from {} broke off ({})",
                    self.endpoint,
                    crate::problem::one_line(&cause)
                ),
            )
        })
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_trickling_body_is_a_broken_transfer_and_a_slow_reader_is_not() {
        use std::io::Read;
        /// One byte a read, each after `delay`.
        struct Drip(Duration);
        impl Read for Drip {
            fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
                std::thread::sleep(self.0);
                buf[0] = b'x';
                Ok(1)
            }
        }
        let transfer = |delay| Transfer {
            body: Drip(delay),
            endpoint: "http://s3.test".into(),
            waited: Duration::ZERO,
            in_window: 0,
            patience: Duration::from_millis(100),
        };
        let mut slow_server = transfer(Duration::from_millis(20));
        let mut buf = [0u8; 16];
        let err = (0..100)
            .find_map(|_| slow_server.read(&mut buf).err())
            .expect("the trickle is given up");
        assert_eq!(err.kind(), std::io::ErrorKind::ConnectionAborted);
        assert!(err.to_string().contains("slowed to"), "{err}");
        // The reader pausing between reads (a restore busy elsewhere) is not the server.
        let mut fast_server = transfer(Duration::ZERO);
        for _ in 0..3 {
            std::thread::sleep(Duration::from_millis(60));
            assert!(fast_server.read(&mut buf).is_ok());
        }
    }

    use super::*;

    #[test]
    fn error_codes_are_read_from_hostile_xml() {
        let body = "<?xml version=\"1.0\"?><Error><Code>NoSuchBucket</Code><Message>The specified bucket does not exist &amp; never did</Message></Error>";
        assert_eq!(xml_element(body, "Code").as_deref(), Some("NoSuchBucket"));
        assert_eq!(
            xml_element(body, "Message").as_deref(),
            Some("The specified bucket does not exist & never did")
        );
        assert_eq!(xml_element("<Code>unterminated", "Code"), None);
        assert_eq!(xml_element("", "Code"), None);
    }

    #[test]
    fn multipart_checksums_are_not_object_digests() {
        // sha256("abc") in base64.
        let abc = "ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa0=";
        assert_eq!(
            full_object_sha256(Some(abc), None).as_deref(),
            Some("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        );
        assert!(full_object_sha256(Some(abc), Some("FULL_OBJECT")).is_some());
        assert_eq!(full_object_sha256(Some(abc), Some("COMPOSITE")), None);
        assert_eq!(full_object_sha256(Some(&format!("{abc}-3")), None), None);
        assert_eq!(full_object_sha256(Some("not base64!"), None), None);
        assert_eq!(full_object_sha256(None, None), None);
    }

    #[test]
    fn backoff_grows_and_is_bounded() {
        for attempt in 1..10 {
            let d = backoff(attempt);
            assert!(d <= Duration::from_secs(5), "{attempt}: {d:?}");
            assert!(d >= Duration::from_millis(200), "{attempt}: {d:?}");
        }
    }

    #[test]
    fn codes_give_hints_and_not_found() {
        let e = |code: &str| S3Error::Server {
            endpoint: "http://127.0.0.1:1".into(),
            bucket: "b".into(),
            code: code.into(),
            status: 403,
            message: None,
        };
        assert!(
            e("SignatureDoesNotMatch")
                .hint()
                .contains("secret_access_key")
        );
        assert!(e("NoSuchBucket").hint().contains("bucket name"));
        assert!(e("NoSuchKey").is_not_found());
        assert!(!e("AccessDenied").is_not_found());
        assert_eq!(
            e("AccessDenied").to_string(),
            "http://127.0.0.1:1 answered AccessDenied (HTTP 403) for bucket b"
        );
    }
}
