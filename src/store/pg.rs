//! A PostgreSQL store: where it is (`postgresql://` URLs), how to reach it (TLS through
//! rustls with ring, the password from the URL, `PGPASSWORD` or `~/.pgpass`), and
//! retrying an unreachable server with jittered exponential backoff.
//!
//! The password is kept out of everything this module shows: [`PgTarget`]'s `Display`
//! and `Debug` name the server as `host:port/database`, and errors name it the same way.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How the connection is encrypted (`sslmode=`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SslMode {
    /// No TLS.
    Disable,
    /// TLS when the server offers it, without verifying its certificate (the default,
    /// as with libpq).
    Prefer,
    /// TLS, without verifying the certificate unless `sslrootcert` names the CA.
    Require,
    /// TLS, the certificate verified against the CA (`sslrootcert`, else the public
    /// web roots) and the host name.
    VerifyFull,
}

/// A parsed `postgresql://` URL.
#[derive(Clone)]
pub struct PgTarget {
    pub host: String,
    pub port: u16,
    pub dbname: String,
    pub user: String,
    pub(crate) password: Option<String>,
    pub sslmode: SslMode,
    pub sslrootcert: Option<PathBuf>,
}

impl std::fmt::Display for PgTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}/{}", self.host, self.port, self.dbname)
    }
}

impl std::fmt::Debug for PgTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PgTarget({self}, user {})", self.user)
    }
}

/// Is `url` a PostgreSQL URL?
pub fn is_postgres_url(url: &str) -> bool {
    let url = url.trim();
    url.starts_with("postgresql://") || url.starts_with("postgres://")
}

/// Whether every `%` in `s` starts an escape (`%` and two hex digits) and the escapes
/// decode to UTF-8 text, as libpq requires: a password written with a bare `%` is refused,
/// not taken with the `%` in it.
fn percent_encoded(s: &str) -> bool {
    let bytes = s.as_bytes();
    let escapes_whole = bytes.iter().enumerate().all(|(i, b)| {
        *b != b'%'
            || (bytes.get(i + 1).is_some_and(u8::is_ascii_hexdigit)
                && bytes.get(i + 2).is_some_and(u8::is_ascii_hexdigit))
    });
    escapes_whole
        && percent_encoding::percent_decode_str(s)
            .decode_utf8()
            .is_ok()
}

fn decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s)
        .decode_utf8_lossy()
        .into_owned()
}

impl PgTarget {
    /// Parse `postgresql://[user[:password]@]host[:port]/database[?sslmode=…&sslrootcert=…]`.
    /// Errors never repeat the URL (it may hold the password).
    pub fn parse(text: &str) -> Result<PgTarget, String> {
        const ENCODE: &str = "a user name or password with @ / # ? % in it must be written percent-encoded (@ as %40, / as %2F, # as %23, ? as %3F, % as %25), or kept in the environment: postgresql://user:${DB_PASSWORD}@host/database";
        let url = url::Url::parse(text.trim())
            .map_err(|e| format!("is not a valid PostgreSQL URL ({e}); {ENCODE}"))?;
        // An `@` after the host, or a `#`: a password's own `@`, `/`, `?` or `#` ended it
        // early, and a piece of it was read as the server's name (which must not be
        // looked up, nor shown). A PostgreSQL URL has no `#` part of its own.
        if url.fragment().is_some()
            || url.path().contains('@')
            || url.query().is_some_and(|q| q.contains('@'))
        {
            return Err(format!(
                "is not a valid PostgreSQL URL (it has a # or an @ after the server's name); {ENCODE}"
            ));
        }
        if [
            url.username(),
            url.password().unwrap_or_default(),
            url.path(),
        ]
        .iter()
        .any(|part| !percent_encoded(part))
        {
            return Err(format!(
                "is not a valid PostgreSQL URL (a % in its user name, password or database does not start an escape such as %40); {ENCODE}"
            ));
        }
        let mut host = url
            .host_str()
            .map(|h| h.trim_start_matches('[').trim_end_matches(']').to_string())
            .unwrap_or_default();
        let mut sslmode = SslMode::Prefer;
        let mut sslrootcert = None;
        let mut user = decode(url.username());
        let mut port = url.port().unwrap_or(5432);
        for (k, v) in url.query_pairs() {
            match k.as_ref() {
                "sslmode" => {
                    sslmode = match v.as_ref() {
                        "disable" => SslMode::Disable,
                        "prefer" | "allow" => SslMode::Prefer,
                        "require" => SslMode::Require,
                        "verify-full" => SslMode::VerifyFull,
                        other => {
                            return Err(format!(
                                "sslmode `{other}` is not supported; use disable, prefer, require or verify-full"
                            ));
                        }
                    }
                }
                "sslrootcert" => sslrootcert = Some(PathBuf::from(v.as_ref())),
                "host" => host = v.into_owned(),
                "port" => {
                    port = v
                        .parse()
                        .map_err(|_| format!("port `{v}` is not a port number"))?
                }
                "user" => user = v.into_owned(),
                "application_name" | "connect_timeout" => {}
                other => {
                    return Err(format!(
                        "the URL parameter `{other}` is not supported (supported: sslmode, sslrootcert, host, port, user)"
                    ));
                }
            }
        }
        if host.is_empty() {
            host = "localhost".into();
        }
        let dbname = decode(url.path().trim_start_matches('/'));
        if user.is_empty() {
            user = std::env::var("PGUSER")
                .ok()
                .filter(|u| !u.is_empty())
                .unwrap_or_else(|| std::env::var("USER").unwrap_or_else(|_| "postgres".into()));
        }
        let dbname = if dbname.is_empty() {
            user.clone()
        } else {
            dbname
        };
        Ok(PgTarget {
            host,
            port,
            dbname,
            user,
            password: url.password().map(decode),
            sslmode,
            sslrootcert,
        })
    }

    /// The password: from the URL, else `PGPASSWORD`, else the first matching line of
    /// `PGPASSFILE` / `~/.pgpass` — with where it was looked for, to say when none is
    /// found. A password file group or others have access to is ignored, as libpq does,
    /// with a warning (once a run).
    fn password(&self) -> Password {
        if let Some(p) = &self.password {
            return Password::Found(p.clone());
        }
        if let Some(p) = std::env::var("PGPASSWORD").ok().filter(|p| !p.is_empty()) {
            return Password::Found(p);
        }
        let file = std::env::var_os("PGPASSFILE")
            .filter(|f| !f.is_empty())
            .map(PathBuf::from)
            .or_else(|| {
                std::env::var_os("HOME")
                    .filter(|h| !h.is_empty())
                    .map(|h| PathBuf::from(h).join(".pgpass"))
            });
        let Some(file) = file else {
            return Password::Missing("~/.pgpass (HOME is not set)".into());
        };
        let shown = file.display();
        let meta = match std::fs::metadata(&file) {
            Ok(meta) => meta,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Password::Missing(format!("{shown} (no such file)"));
            }
            Err(e) => return Password::Missing(format!("{shown} (cannot be read: {e})")),
        };
        if !meta.is_file() {
            warn_once(&format!(
                "the password file {shown} is ignored: it is not a plain file"
            ));
            return Password::Missing(format!("{shown} (ignored: not a plain file)"));
        }
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = meta.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                warn_once(&format!(
                    "the password file {shown} is ignored: group or others have access to it (mode {mode:04o}); chmod 600 {shown}"
                ));
                return Password::Missing(format!(
                    "{shown} (ignored: group or others have access to it; chmod 600 {shown})"
                ));
            }
        }
        let text = match std::fs::read_to_string(&file) {
            Ok(text) => text,
            Err(e) => return Password::Missing(format!("{shown} (cannot be read: {e})")),
        };
        match pgpass_lookup(&text, &self.host, self.port, &self.dbname, &self.user) {
            Some(p) => Password::Found(p),
            None => Password::Missing(format!(
                "{shown} (no line for {}:{}:{}:{})",
                self.host, self.port, self.dbname, self.user
            )),
        }
    }

    fn config(&self, password: Option<&str>) -> postgres::Config {
        let mut c = postgres::Config::new();
        if self.host.starts_with('/') {
            c.host_path(&self.host);
        } else {
            c.host(&self.host);
        }
        c.port(self.port)
            .dbname(&self.dbname)
            .user(&self.user)
            .application_name(&format!("backup-monitor {}", std::process::id()))
            .connect_timeout(Duration::from_secs(10))
            .keepalives(true)
            .ssl_mode(match self.sslmode {
                SslMode::Disable => postgres::config::SslMode::Disable,
                SslMode::Prefer => postgres::config::SslMode::Prefer,
                SslMode::Require | SslMode::VerifyFull => postgres::config::SslMode::Require,
            });
        if let Some(p) = password {
            c.password(p);
        }
        c
    }

    fn tls(&self) -> Result<tokio_postgres_rustls::MakeRustlsConnect, String> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("TLS setup failed: {e}"))?;
        let verify = self.sslmode == SslMode::VerifyFull || self.sslrootcert.is_some();
        let config = if verify {
            let mut roots = rustls::RootCertStore::empty();
            match &self.sslrootcert {
                Some(path) => {
                    use rustls::pki_types::pem::PemObject;
                    let shown = path.display();
                    let pem = read_limited(path).map_err(|e| {
                        format!(
                            "cannot read sslrootcert {shown}: {e}; make sslrootcert in database_url name the PEM file of the CA that signed the server's certificate, readable by this user"
                        )
                    })?;
                    for cert in rustls::pki_types::CertificateDer::pem_slice_iter(&pem) {
                        let cert = cert.map_err(|e| {
                            format!(
                                "sslrootcert {shown} is not PEM certificates ({e}); name the PEM file of the CA's certificate"
                            )
                        })?;
                        roots.add(cert).map_err(|e| {
                            format!(
                                "sslrootcert {shown} holds a certificate that cannot be used ({e}); name the PEM file of the CA's certificate"
                            )
                        })?;
                    }
                    if roots.is_empty() {
                        return Err(format!(
                            "sslrootcert {shown} holds no certificate (no BEGIN CERTIFICATE block); name the PEM file of the CA's certificate, not a key or another file"
                        ));
                    }
                }
                None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
            }
            builder.with_root_certificates(roots).with_no_client_auth()
        } else {
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(Unverified(provider)))
                .with_no_client_auth()
        };
        Ok(tokio_postgres_rustls::MakeRustlsConnect::new(config))
    }

    /// Connect, retrying with jittered exponential backoff for up to [`retry_budget`] a
    /// server that cannot be reached, or that turns the connection away for now (too
    /// many connections, starting up or shutting down, a pooler's refusal: a fleet on
    /// one cron minute can fill a server's slots for a moment; see [`Busy`]). A server
    /// that refuses for good (wrong password, no such database), and a problem on this
    /// machine (no password to give, an unreadable `sslrootcert`), are not retried.
    pub fn connect(&self) -> Result<postgres::Client, ConnectError> {
        let tls = self.tls().map_err(|detail| ConnectError {
            server: self.to_string(),
            detail,
            failure: ConnectFailure::Local,
        })?;
        let password = self.password();
        let config = self.config(match &password {
            Password::Found(p) => Some(p),
            Password::Missing(_) => None,
        });
        let budget = retry_budget();
        let start = Instant::now();
        let mut delay = INITIAL_WAIT;
        let mut attempt: u32 = 0;
        loop {
            attempt += 1;
            let err = match config.connect(tls.clone()) {
                Ok(client) => return Ok(client),
                Err(e) => e,
            };
            let mut detail = connect_detail(&err);
            let elapsed = start.elapsed();
            let failure = match err.as_db_error() {
                Some(db) => match Busy::of(db.code(), db.message()) {
                    Some(why) => ConnectFailure::Busy {
                        waited: elapsed,
                        why,
                    },
                    None => ConnectFailure::Refused,
                },
                None => match ErrorKind::of(&err) {
                    ErrorKind::Network => ConnectFailure::Unreachable { waited: elapsed },
                    // The server answered, and TLS cannot be agreed with it (it has none,
                    // or its certificate is not trusted): trying again changes nothing.
                    ErrorKind::Tls => ConnectFailure::Tls,
                    ErrorKind::NoPassword => {
                        if let Password::Missing(looked) = &password {
                            detail = format!(
                                "no password for user {} found in database_url, PGPASSWORD or {looked}",
                                self.user
                            );
                        }
                        ConnectFailure::NoPassword
                    }
                    ErrorKind::Local => ConnectFailure::Local,
                    ErrorKind::Authentication => ConnectFailure::Refused,
                    ErrorKind::NotPostgres => ConnectFailure::NotPostgres,
                },
            };
            let retried = matches!(
                failure,
                ConnectFailure::Unreachable { .. } | ConnectFailure::Busy { .. }
            );
            if !retried || elapsed >= budget {
                return Err(ConnectError {
                    server: self.to_string(),
                    detail,
                    failure,
                });
            }
            let sleep = next_wait(delay, attempt).min(budget.saturating_sub(elapsed));
            let what = match failure {
                ConnectFailure::Busy { why, .. } => why.now(),
                _ => "cannot be reached",
            };
            tracing::warn!(
                "the PostgreSQL store at {self} {what} ({detail}); trying again in {:.1} s",
                sleep.as_secs_f64()
            );
            std::thread::sleep(sleep);
            delay = (delay * 2).min(MAX_WAIT);
        }
    }
}

/// The first wait before connecting again.
const INITIAL_WAIT: Duration = Duration::from_millis(250);

/// The longest wait between two connection attempts, jitter included.
const MAX_WAIT: Duration = Duration::from_secs(10);

/// The wait before the next attempt: `delay` jittered, at most [`MAX_WAIT`].
fn next_wait(delay: Duration, attempt: u32) -> Duration {
    jitter(delay, attempt).min(MAX_WAIT)
}

/// The password to give the server, or where it was looked for in vain.
enum Password {
    Found(String),
    /// Not in the URL nor `PGPASSWORD`; the password file looked at, and why it gave none.
    Missing(String),
}

/// Warn about a password file once a run (a run may connect more than once).
fn warn_once(message: &str) {
    static WARNED: std::sync::Once = std::sync::Once::new();
    WARNED.call_once(|| tracing::warn!("{message}"));
}

/// At most 1 MiB of `path`: a CA bundle is a few hundred kilobytes.
fn read_limited(path: &std::path::Path) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let mut bytes = Vec::new();
    std::fs::File::open(path)?
        .take(1 << 20)
        .read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// A connection error that is not the server's own answer, by what it says of the
/// cause (the postgres crate names its kinds only in its messages).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ErrorKind {
    /// The network: no connection, a connection lost or timed out. Worth trying again.
    Network,
    /// The TLS handshake failed.
    Tls,
    /// The server asks for a password and there is none to give.
    NoPassword,
    /// The connection's settings on this machine cannot work.
    Local,
    /// Authentication failed on this side (an unsupported method, a server's SCRAM
    /// proof that does not check out).
    Authentication,
    /// The server answered something that is not the PostgreSQL protocol.
    NotPostgres,
}

impl ErrorKind {
    fn of(e: &postgres::Error) -> ErrorKind {
        match e.to_string().as_str() {
            "error performing TLS handshake" => ErrorKind::Tls,
            "invalid configuration"
                if std::error::Error::source(e)
                    .is_some_and(|s| s.to_string() == "password missing") =>
            {
                ErrorKind::NoPassword
            }
            "invalid configuration" | "invalid connection string" => ErrorKind::Local,
            "authentication error" => ErrorKind::Authentication,
            "unexpected message from server" | "error parsing response from server" => {
                ErrorKind::NotPostgres
            }
            _ => ErrorKind::Network,
        }
    }
}

/// A connection that could not be made.
#[derive(Debug, thiserror::Error)]
pub struct ConnectError {
    server: String,
    detail: String,
    failure: ConnectFailure,
}

/// Why a connection could not be made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ConnectFailure {
    /// No answer (down, unreachable, refused at the TCP level), retried this long.
    Unreachable { waited: Duration },
    /// The server (or a pooler in front of it) answered that it takes no connection
    /// now, retried this long.
    Busy { waited: Duration, why: Busy },
    /// The server refused for good: wrong password, no such database.
    Refused,
    /// The server answered, but no TLS connection could be made with it (it offers no
    /// TLS while `sslmode` requires it, or its certificate is not trusted).
    Tls,
    /// The server asks for a password and none was found (`detail` says where it was
    /// looked for).
    NoPassword,
    /// A problem on this machine, before the server had a say (`detail` is the whole
    /// message): an `sslrootcert` that cannot be read or holds no certificate.
    Local,
    /// What answered does not speak PostgreSQL's protocol.
    NotPostgres,
}

/// Why a server that answered takes no connection now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Busy {
    /// Its connection slots, or the role's or database's limit, are full.
    Full,
    /// Starting up, shutting down, or a standby that takes no connections.
    NotNow,
    /// A connection-level refusal, as a pooler gives when its own limits are reached
    /// or it cannot log in to the server behind it (PgBouncer: "no more connections
    /// allowed", "server login has been failing").
    Pooler,
}

impl Busy {
    fn of(code: &postgres::error::SqlState, message: &str) -> Option<Busy> {
        use postgres::error::SqlState;
        // PgBouncer says what it will never allow with the same code as a passing
        // trouble: a database or user it (or the server behind it) does not know, a
        // login it refuses.
        let message = message.to_ascii_lowercase();
        let permanent = [
            "no such database",
            "no such user",
            "does not exist",
            "authentication failed",
        ]
        .iter()
        .any(|w| message.contains(w));
        if permanent {
            None
        } else if *code == SqlState::TOO_MANY_CONNECTIONS {
            Some(Busy::Full)
        } else if *code == SqlState::CANNOT_CONNECT_NOW {
            Some(Busy::NotNow)
        } else if code.code().starts_with("08") {
            Some(Busy::Pooler)
        } else {
            None
        }
    }

    /// What it does, for the line said at each try.
    fn now(self) -> &'static str {
        match self {
            Busy::Full => "turns connections away",
            Busy::NotNow => "takes no connections now",
            Busy::Pooler => "drops the connection",
        }
    }

    /// What to do when it never let the run in.
    fn advice(self) -> &'static str {
        match self {
            Busy::Full => {
                "raise the server's max_connections or the role's connection limit, or put PgBouncer (session pooling) in front of it"
            }
            Busy::NotNow => {
                "check the server's state (starting, stopping, or a standby that takes no connections)"
            }
            Busy::Pooler => {
                "check the connection pooler in front of the server (PgBouncer: max_client_conn, its login to the server) and the server behind it"
            }
        }
    }
}

impl std::fmt::Display for ConnectError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.failure {
            ConnectFailure::Unreachable { waited } => write!(
                f,
                "cannot reach the PostgreSQL store at {} ({}), tried for {} s; check that the server is up and reachable from this host, then run again",
                self.server,
                self.detail,
                waited.as_secs()
            ),
            ConnectFailure::Busy { waited, why } => write!(
                f,
                "the PostgreSQL store at {} turned this host's connection away for {} s ({}); {}, then run again",
                self.server,
                waited.as_secs(),
                self.detail,
                why.advice()
            ),
            ConnectFailure::Refused => write!(
                f,
                "the PostgreSQL store at {} refused the connection: {}. Check the user, password and database in database_url",
                self.server, self.detail
            ),
            ConnectFailure::NoPassword => write!(
                f,
                "the PostgreSQL store at {} asks for a password: {}. Set PGPASSWORD in the environment of the run, or add a line host:port:database:user:password to the password file (mode 600), then run again",
                self.server, self.detail
            ),
            ConnectFailure::Local => f.write_str(&self.detail),
            ConnectFailure::NotPostgres => write!(
                f,
                "what answers at {} is not a PostgreSQL server ({}); check the host and port in database_url",
                self.server, self.detail
            ),
            ConnectFailure::Tls => write!(
                f,
                "no TLS connection could be made with the PostgreSQL store at {} ({}); make database_url's sslmode match the server (a server without TLS needs sslmode=disable or prefer, or ssl turned on in its postgresql.conf), and for a certificate that is not trusted name its CA with sslrootcert",
                self.server, self.detail
            ),
        }
    }
}

/// The cause of a failed connection as one line, with the server's own message.
fn connect_detail(e: &postgres::Error) -> String {
    if let Some(db) = e.as_db_error() {
        return db.message().to_string();
    }
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        let part = s.to_string();
        if !text.contains(&part) {
            text = format!("{text}: {part}");
        }
        source = s.source();
    }
    crate::problem::one_line(&text).into_owned()
}

/// How long an unreachable server is retried: 60 s, or `BACKUP_MONITOR_PG_RETRY_SECS`
/// (a test knob; also useful to fail fast from an interactive shell).
pub fn retry_budget() -> Duration {
    std::env::var("BACKUP_MONITOR_PG_RETRY_SECS")
        .ok()
        .and_then(|v| v.trim().parse::<f64>().ok())
        .filter(|s| s.is_finite() && *s >= 0.0)
        .map_or(Duration::from_secs(60), Duration::from_secs_f64)
}

/// `delay` scaled by a factor in [0.5, 1.5) that differs between processes, so hosts
/// started by the same cron minute do not retry in step.
fn jitter(delay: Duration, attempt: u32) -> Duration {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let seed = fnv1a(format!("{}:{nanos}:{attempt}", std::process::id()).as_bytes());
    let factor = 0.5 + f64::from(seed % 1000) / 1000.0;
    delay.mul_f64(factor)
}

/// 32-bit FNV-1a: a hash that stays the same across builds (lock keys, jitter).
pub fn fnv1a(bytes: &[u8]) -> u32 {
    let mut h: u32 = 0x811c_9dc5;
    for b in bytes {
        h ^= u32::from(*b);
        h = h.wrapping_mul(0x0100_0193);
    }
    h
}

/// The password of the first `.pgpass` line matching (`*` matches anything; `\:` and
/// `\\` are escapes).
fn pgpass_lookup(text: &str, host: &str, port: u16, db: &str, user: &str) -> Option<String> {
    let port = port.to_string();
    for line in text.lines() {
        if line.trim_start().starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let mut fields = Vec::new();
        let mut cur = String::new();
        let mut chars = line.chars();
        while let Some(c) = chars.next() {
            match c {
                '\\' => cur.extend(chars.next()),
                ':' if fields.len() < 4 => fields.push(std::mem::take(&mut cur)),
                c => cur.push(c),
            }
        }
        fields.push(cur);
        if fields.len() != 5 {
            continue;
        }
        let matches = |f: &str, v: &str| f == "*" || f == v;
        if matches(&fields[0], host)
            && matches(&fields[1], &port)
            && matches(&fields[2], db)
            && matches(&fields[3], user)
        {
            return fields.pop();
        }
    }
    None
}

/// `sslmode=prefer|require` without a CA: the connection is encrypted, the server's
/// certificate is not checked (as libpq does). Signatures are still verified, so the
/// handshake is sound against a passive listener.
#[derive(Debug)]
struct Unverified(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for Unverified {
    fn verify_server_cert(
        &self,
        _end_entity: &rustls::pki_types::CertificateDer<'_>,
        _intermediates: &[rustls::pki_types::CertificateDer<'_>],
        _server_name: &rustls::pki_types::ServerName<'_>,
        _ocsp_response: &[u8],
        _now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_parts_and_no_password_shown() {
        let t = PgTarget::parse(
            "postgresql://bm:s%40cret@db.example:6543/fleet?sslmode=verify-full&sslrootcert=/etc/ca.pem",
        )
        .unwrap();
        assert_eq!(t.to_string(), "db.example:6543/fleet");
        assert_eq!(t.user, "bm");
        assert_eq!(t.password.as_deref(), Some("s@cret"));
        assert_eq!(t.sslmode, SslMode::VerifyFull);
        assert_eq!(t.sslrootcert, Some(PathBuf::from("/etc/ca.pem")));
        assert!(!format!("{t:?}").contains("cret"));
        let e = PgTarget::parse("postgres://u:pw@h/d?sslmode=bogus").unwrap_err();
        assert!(e.contains("bogus") && !e.contains("pw"), "{e}");
        assert_eq!(PgTarget::parse("postgres://u@h/d").unwrap().port, 5432);
        // A password written with `@`, `/` or `#` as they are: refused, saying how to
        // write it, showing none of it (nor taking a piece of it for the server).
        for url in [
            "postgresql://u:P@ss/w0rd@db.example/fleet",
            "postgresql://u:ab#cd@db.example/fleet",
            "postgresql://u:Kx9@Zq7mW#2@db.example:6543/fleet",
            "postgresql://u:p@ss/w#rd?x@db.example/fleet",
            "postgresql://u:p@ss?w0rd@db.example/fleet",
            "postgresql://u@db.example/fleet#w0rd",
            "postgresql://u:pass%zzw0rd@db.example/fleet",
            "postgresql://u:pass%w0rd@db.example/fleet",
            "postgresql://u:w0rd%ff@db.example/fleet",
        ] {
            let e = PgTarget::parse(url).unwrap_err();
            assert!(
                e.contains("percent-encoded") && e.contains("${DB_PASSWORD}"),
                "{e}"
            );
            for piece in ["w0rd", "cd@", "Zq7mW", "Kx9", "w#rd"] {
                assert!(!e.contains(piece), "{piece}: {e}");
            }
        }
        let t = PgTarget::parse("postgresql://u:a%40b%23c%2Fd%3Fe%25f@db.example/fleet").unwrap();
        assert_eq!(t.password.as_deref(), Some("a@b#c/d?e%f"));
        assert_eq!(t.host, "db.example");
    }

    #[test]
    fn waits_stay_at_most_10_s_apart_jitter_included() {
        for attempt in 0..200 {
            let wait = next_wait(MAX_WAIT, attempt);
            assert!(wait <= MAX_WAIT && wait >= MAX_WAIT / 2, "{wait:?}");
        }
    }

    #[test]
    fn pgpass_matches_wildcards_and_escapes() {
        let text = "# comment\nother:5432:*:u:no\nh:*:d:u:pa\\:ss\\\\\n*:*:*:*:fallback\n";
        assert_eq!(
            pgpass_lookup(text, "h", 5432, "d", "u").as_deref(),
            Some("pa:ss\\")
        );
        assert_eq!(
            pgpass_lookup(text, "x", 1, "y", "z").as_deref(),
            Some("fallback")
        );
    }

    #[test]
    fn a_server_that_is_full_starting_or_behind_a_refusing_pooler_is_waited_for() {
        use postgres::error::SqlState;
        let of = |code: &str| Busy::of(&SqlState::from_code(code), "");
        assert_eq!(of("53300"), Some(Busy::Full), "too many connections");
        assert_eq!(of("57P03"), Some(Busy::NotNow), "starting up");
        assert_eq!(of("08P01"), Some(Busy::Pooler), "PgBouncer's refusals");
        assert_eq!(of("08006"), Some(Busy::Pooler), "connection failure");
        // Refusals for good: waiting changes nothing.
        for code in ["28P01", "28000", "3D000", "42501"] {
            assert_eq!(of(code), None, "{code}");
        }
        // PgBouncer's refusals for good share its code with the passing ones.
        let pooler = SqlState::from_code("08P01");
        for message in [
            "no such database: app",
            "no such user: bm",
            "database \"app\" does not exist",
            "password authentication failed",
        ] {
            assert_eq!(Busy::of(&pooler, message), None, "{message}");
        }
        assert_eq!(
            Busy::of(&pooler, "no more connections allowed (max_client_conn)"),
            Some(Busy::Pooler)
        );
    }

    #[test]
    fn jitter_stays_within_half_to_one_and_a_half() {
        for attempt in 0..50 {
            let d = jitter(Duration::from_secs(2), attempt);
            assert!(
                d >= Duration::from_secs(1) && d < Duration::from_secs(3),
                "{d:?}"
            );
        }
    }
}
