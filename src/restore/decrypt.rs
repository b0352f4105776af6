//! Encrypted backups: age files decrypted in the stream with the `age` crate, OpenPGP
//! messages decrypted by the `gpg` binary in a private, temporary `GNUPGHOME`.
//!
//! The plaintext is then tested as what it is (`x.tar.gz.age` is a tar.gz). Damaged
//! ciphertext (tampered, truncated) is `archive_corrupt`; a key that does not open it is
//! `restore_failed`; no key configured for its kind of encryption is a skip with that
//! reason.
//!
//! age authenticates every 64 KiB chunk before it hands out its plaintext, and the last
//! chunk says it is the last: the stream is read to its end ([`AgeStream::finish`]) even
//! when the archive inside ended earlier, so a cut-off file cannot pass. gpg streams all
//! of a tampered file before it reports the damage, so its output is spooled into the
//! sandbox (counted against `max_bytes`) and trusted only when gpg exits 0 and reports
//! both `DECRYPTION_OKAY` and `GOODMDC`.
//!
//! Key files must be readable by their owner only; a passphrase goes to gpg through a
//! pipe (`--passphrase-fd`), never through its arguments, and is never shown.
//!
//! Not for: choosing what the plaintext is (`detect.rs` and the format handlers do).

use super::RestoreError;
use super::compressed::Stream;
use super::sandbox::Sandbox;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

/// How a backup is encrypted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cipher {
    Age,
    /// An OpenPGP message (binary or ASCII-armored).
    OpenPgp,
}

impl Cipher {
    /// The suffix format names carry: `tar.gz.age`, `sql.gpg`.
    pub fn suffix(self) -> &'static str {
        match self {
            Cipher::Age => "age",
            Cipher::OpenPgp => "gpg",
        }
    }

    fn describe(self) -> &'static str {
        match self {
            Cipher::Age => "age-encrypted",
            Cipher::OpenPgp => "an OpenPGP (gpg) message",
        }
    }
}

/// The key files of a location, resolved to paths.
#[derive(Debug, Clone, Default)]
pub struct Keys {
    pub age_identity_file: Option<PathBuf>,
    pub gpg_key_file: Option<PathBuf>,
    pub gpg_passphrase_file: Option<PathBuf>,
}

impl Keys {
    /// Every configured key file, with its config key, for the privacy check.
    pub fn files(&self) -> impl Iterator<Item = (&'static str, &Path)> {
        [
            ("age_identity_file", self.age_identity_file.as_deref()),
            ("gpg_key_file", self.gpg_key_file.as_deref()),
            ("gpg_passphrase_file", self.gpg_passphrase_file.as_deref()),
        ]
        .into_iter()
        .filter_map(|(k, p)| p.map(|p| (k, p)))
    }
}

/// Key files larger than this are not key files.
const KEY_FILE_MAX: u64 = 1 << 20;

/// A key file that others may read, or that cannot be read: the location's restore
/// tests refuse it.
#[derive(Debug, thiserror::Error)]
pub enum KeyFileError {
    #[error(
        "restore.decrypt.{key} {} can be read by other users (mode {mode:04o}), so it is not used: make it private with chmod 600", .path.display()
    )]
    NotPrivate {
        key: &'static str,
        path: PathBuf,
        mode: u32,
    },
    #[error(
        "restore.decrypt.{key} {} cannot be read: {reason}; fix the path in restore.decrypt.{key} or let this user read the file", .path.display()
    )]
    Unreadable {
        key: &'static str,
        path: PathBuf,
        reason: String,
    },
}

/// Refuse a key file that is not a regular file readable by its owner only.
pub fn check_private(key: &'static str, path: &Path) -> Result<(), KeyFileError> {
    let unreadable = |reason: String| KeyFileError::Unreadable {
        key,
        path: path.to_path_buf(),
        reason,
    };
    let meta = std::fs::metadata(path).map_err(|e| unreadable(super::sandbox::io_reason(&e)))?;
    if !meta.is_file() {
        return Err(unreadable("not a regular file".into()));
    }
    if meta.len() > KEY_FILE_MAX {
        return Err(unreadable(format!(
            "{} bytes is too large for a key file",
            meta.len()
        )));
    }
    let mode = meta.permissions().mode() & 0o7777;
    if mode & 0o077 != 0 {
        return Err(KeyFileError::NotPrivate {
            key,
            path: path.to_path_buf(),
            mode,
        });
    }
    Ok(())
}

/// A key file's content (at most [`KEY_FILE_MAX`] bytes), for the digest that tells a
/// changed key from the one an earlier verdict was reached with; never shown or stored.
pub fn read_key_file(path: &Path) -> io::Result<Vec<u8>> {
    let mut content = Vec::new();
    std::fs::File::open(path)?
        .take(KEY_FILE_MAX)
        .read_to_end(&mut content)?;
    Ok(content)
}

const AGE_MAGIC: &[u8] = b"age-encryption.org/";
const AGE_ARMOR: &[u8] = b"-----BEGIN AGE ENCRYPTED FILE-----";
const PGP_ARMOR: &[u8] = b"-----BEGIN PGP MESSAGE-----";

/// The encryption of a stream starting with `head`, by its content.
pub fn cipher(head: &[u8]) -> Option<Cipher> {
    if head.starts_with(AGE_MAGIC) || head.starts_with(AGE_ARMOR) {
        Some(Cipher::Age)
    } else if head.starts_with(PGP_ARMOR) || starts_pgp_message(head) {
        Some(Cipher::OpenPgp)
    } else {
        None
    }
}

/// An OpenPGP message begins with a session key packet: public-key (tag 1) or symmetric
/// (tag 3), in the old or the new packet format, of a version gpg writes (3 to 6).
fn starts_pgp_message(head: &[u8]) -> bool {
    let Some(&first) = head.first() else {
        return false;
    };
    if first & 0x80 == 0 {
        return false;
    }
    let (tag, header_len) = if first & 0x40 == 0 {
        let len = match first & 0x03 {
            0 => 2,
            1 => 3,
            2 => 5,
            _ => return false,
        };
        ((first >> 2) & 0x0f, len)
    } else {
        let len = match head.get(1) {
            Some(&l) if l < 192 => 2,
            Some(&l) if l < 224 => 3,
            Some(255) => 6,
            _ => return false,
        };
        (first & 0x3f, len)
    };
    matches!(tag, 1 | 3) && head.get(header_len).is_some_and(|v| (3..=6).contains(v))
}

/// What the name says about encryption: its last suffix (`.age`, `.gpg`, `.pgp`).
pub fn named(name: &str) -> Option<(Cipher, usize)> {
    let lower = name.to_ascii_lowercase();
    [
        (".age", Cipher::Age),
        (".gpg", Cipher::OpenPgp),
        (".pgp", Cipher::OpenPgp),
    ]
    .into_iter()
    .find(|(s, _)| lower.ends_with(s) && lower.len() > s.len())
    .map(|(s, c)| (c, s.len()))
}

/// The name of the plaintext: `db.sql.gz.gpg` → `db.sql.gz`.
pub fn inner_name(name: &str) -> String {
    match named(name) {
        Some((_, len)) => name[..name.len() - len].to_string(),
        None => name.to_string(),
    }
}

/// A named encrypted backup whose bytes are not encrypted: corrupt.
pub fn broken_promise(cipher: Cipher, suffix: &str, head: &[u8]) -> RestoreError {
    RestoreError::Corrupt(format!(
        "named {suffix} but is not {} ({})",
        cipher.describe(),
        super::detect::describe_start(head)
    ))
}

fn no_key(cipher: Cipher) -> RestoreError {
    RestoreError::Skipped(match cipher {
        Cipher::Age => "encrypted with age, and no restore.decrypt.age_identity_file is configured to open it".into(),
        Cipher::OpenPgp => "encrypted with gpg, and neither restore.decrypt.gpg_key_file nor gpg_passphrase_file is configured to open it".into(),
    })
}

/// The plaintext of an age file, shared with [`AgeStream`] so that it can be read to its
/// end after the content's handler is done with it.
type Shared = Arc<Mutex<AgePlain>>;

/// age's plaintext reader, and the first error it gave: once a chunk failed, age's
/// reader answers every later read with "last chunk has been processed", which is not
/// the cause. Every later read gets the first error again.
struct AgePlain {
    reader: Box<dyn Read + Send>,
    failed: Option<(io::ErrorKind, String)>,
}

impl Read for AgePlain {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if let Some((kind, why)) = &self.failed {
            return Err(io::Error::new(*kind, why.clone()));
        }
        match self.reader.read(buf) {
            Err(e) if e.kind() != io::ErrorKind::Interrupted => {
                self.failed = Some((e.kind(), e.to_string()));
                Err(e)
            }
            other => other,
        }
    }
}

struct SharedReader(Shared);

impl Read for SharedReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let mut inner = self.0.lock().unwrap_or_else(|e| e.into_inner());
        inner.read(buf).map_err(|e| age_read_error(&e).unwrap_or(e))
    }
}

/// What is left of an age stream once its content was tested.
pub struct AgeStream(Shared);

impl AgeStream {
    /// Read the plaintext to its end, so that every chunk's tag and the final-chunk flag
    /// are checked: content that ended early (a tar's end marker) proves nothing of the
    /// ciphertext after it.
    pub fn finish(self, sandbox: &Sandbox) -> Result<(), RestoreError> {
        let mut buf = vec![0u8; 256 << 10];
        let mut inner = self.0.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            sandbox.check_deadline()?;
            match inner.read(&mut buf) {
                Ok(0) => return Ok(()),
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(age_stream_error(e)),
            }
        }
    }
}

/// What age's stream reader says when its ciphertext is damaged or cut short, in words
/// a reader can act on; None for an error of the file or connection underneath.
fn damage(e: &io::Error) -> Option<&'static str> {
    let text = e.to_string();
    let cause = match e.kind() {
        io::ErrorKind::UnexpectedEof if text.contains("truncated") => {
            "the file ends before its last chunk"
        }
        io::ErrorKind::InvalidData if text == "decryption error" => {
            "a 64 KiB chunk fails its authentication: its bytes were changed, or the file was cut inside it"
        }
        io::ErrorKind::InvalidData if text.contains("last chunk has been processed") => {
            "data follows the chunk marked last"
        }
        io::ErrorKind::InvalidData if text.to_ascii_lowercase().contains("last chunk") => {
            "its last chunk is not valid"
        }
        io::ErrorKind::InvalidData => "its chunks cannot be decrypted",
        _ => return None,
    };
    Some(cause)
}

/// The age stream's damage as the error a reader of its plaintext (the tar, the gzip
/// decoder) passes on: its message says what happened, whichever layer reports it.
fn age_read_error(e: &io::Error) -> Option<io::Error> {
    damage(e).map(|cause| {
        io::Error::new(
            e.kind(),
            format!("the age-encrypted stream is damaged or cut short ({cause})"),
        )
    })
}

/// A read error of the age stream as the test's verdict.
fn age_stream_error(e: io::Error) -> RestoreError {
    match damage(&e) {
        Some(cause) => RestoreError::Corrupt(format!(
            "the age-encrypted stream is damaged or cut short ({cause})"
        )),
        None => RestoreError::read("the age-encrypted stream", e),
    }
}

/// Open an age file with the identities in `identity_file`: the plaintext stream, and
/// the handle that reads it to its end afterwards.
pub fn age(
    stream: Stream,
    identity_file: Option<&Path>,
) -> Result<(Stream, AgeStream), RestoreError> {
    let identity_file = identity_file.ok_or_else(|| no_key(Cipher::Age))?;
    let mut head = [0u8; AGE_ARMOR.len()];
    let mut stream = BufReader::with_capacity(256 << 10, stream);
    let peeked = stream
        .fill_buf()
        .map_err(|e| RestoreError::read("the age-encrypted stream", e))?;
    let n = peeked.len().min(head.len());
    head[..n].copy_from_slice(&peeked[..n]);
    if head.starts_with(AGE_ARMOR) {
        return Err(RestoreError::Skipped(
            "an ASCII-armored age file: restore tests read binary age files only".into(),
        ));
    }
    let identities = read_identities(identity_file)?;
    let decryptor = age::Decryptor::new_buffered(stream).map_err(age_error)?;
    if decryptor.is_scrypt() {
        return Err(RestoreError::Skipped(
            "encrypted to a passphrase with age: restore tests open age files with an identity file only".into(),
        ));
    }
    let plain = decryptor
        .decrypt(identities.iter().map(|i| i.as_ref() as &dyn age::Identity))
        .map_err(age_error)?;
    let shared: Shared = Arc::new(Mutex::new(AgePlain {
        reader: Box::new(plain),
        failed: None,
    }));
    Ok((Box::new(SharedReader(shared.clone())), AgeStream(shared)))
}

fn read_identities(path: &Path) -> Result<Vec<Box<dyn age::Identity>>, RestoreError> {
    let unreadable = |why: String| {
        RestoreError::Failed(format!("cannot read the age identity file {path:?}: {why}"))
    };
    let file = std::fs::File::open(path).map_err(|e| unreadable(e.to_string()))?;
    let identities = age::IdentityFile::from_buffer(BufReader::new(file.take(KEY_FILE_MAX)))
        .map_err(|e| unreadable(format!("not an age identity file ({e})")))?
        .into_identities()
        .map_err(|e| unreadable(e.to_string()))?;
    if identities.is_empty() {
        return Err(unreadable("it holds no identity".into()));
    }
    Ok(identities)
}

fn age_error(e: age::DecryptError) -> RestoreError {
    use age::DecryptError as E;
    match e {
        E::NoMatchingKeys | E::KeyDecryptionFailed => RestoreError::Failed(
            "no identity in restore.decrypt.age_identity_file opens this age file: it was encrypted to another key".into(),
        ),
        E::ExcessiveWork { .. } => RestoreError::Skipped(
            "the age file asks for more work to open than restore tests allow".into(),
        ),
        E::Io(e) => age_stream_error(e),
        other => RestoreError::Corrupt(format!(
            "the age header is damaged: {}",
            crate::problem::one_line(&other.to_string())
        )),
    }
}

/// Decrypt an OpenPGP message with `gpg` into a scratch file of the sandbox, and return
/// that file once gpg said the whole message decrypted and its integrity check held.
pub fn gpg(sandbox: &Sandbox, stream: Stream, keys: &Keys) -> Result<PathBuf, RestoreError> {
    if keys.gpg_key_file.is_none() && keys.gpg_passphrase_file.is_none() {
        return Err(no_key(Cipher::OpenPgp));
    }
    let home = tempfile::Builder::new()
        .prefix("bm-gnupg-")
        .tempdir()
        .map_err(|e| RestoreError::Skipped(format!("cannot create a GnuPG home: {e}")))?;
    // gpg warns about (and may refuse) a home others can enter.
    std::fs::set_permissions(home.path(), std::fs::Permissions::from_mode(0o700))
        .map_err(|e| RestoreError::Skipped(format!("cannot create a GnuPG home: {e}")))?;
    let _agent = Agent(home.path().to_path_buf());
    let passphrase = match &keys.gpg_passphrase_file {
        Some(p) => Some(read_passphrase(p)?),
        None => None,
    };
    let mut secret_keys = Vec::new();
    if let Some(key) = &keys.gpg_key_file {
        import_key(home.path(), key)?;
        secret_keys = secret_key_ids(home.path());
    }
    let spool = sandbox.scratch_path("decrypted");
    let status = run_gpg(sandbox, home.path(), stream, passphrase.as_deref(), &spool)?;
    status.verdict(&secret_keys, passphrase.is_some())?;
    Ok(spool)
}

/// gpg-agent started for the temporary home; stopped when the test is done.
struct Agent(PathBuf);

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = crate::child::dies_with_us(&mut Command::new("gpgconf"))
            .arg("--homedir")
            .arg(&self.0)
            .args(["--kill", "all"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

fn read_passphrase(path: &Path) -> Result<Vec<u8>, RestoreError> {
    let mut text = Vec::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(KEY_FILE_MAX).read_to_end(&mut text))
        .map_err(|e| {
            RestoreError::Failed(format!(
                "cannot read restore.decrypt.gpg_passphrase_file {path:?}: {e}"
            ))
        })?;
    // The first line, as `--passphrase-file` reads it.
    let end = text.iter().position(|&b| b == b'\n').unwrap_or(text.len());
    text.truncate(end);
    if text.last() == Some(&b'\r') {
        text.pop();
    }
    Ok(text)
}

fn gpg_command(home: &Path) -> Command {
    let mut cmd = Command::new("gpg");
    crate::child::dies_with_us(&mut cmd);
    cmd.arg("--homedir")
        .arg(home)
        .args(["--batch", "--no-tty", "--quiet", "--no-auto-key-retrieve"])
        .env_remove("GPG_AGENT_INFO")
        .env("LC_ALL", "C")
        .env("LANGUAGE", "C")
        .env("GNUPGHOME", home);
    cmd
}

fn missing_gpg(e: io::Error) -> RestoreError {
    if e.kind() == io::ErrorKind::NotFound {
        RestoreError::Skipped(
            "encrypted with gpg, and the gpg program is not installed (Debian package gnupg)"
                .into(),
        )
    } else {
        RestoreError::Skipped(format!("cannot run gpg: {e}"))
    }
}

fn import_key(home: &Path, key: &Path) -> Result<(), RestoreError> {
    let out = gpg_command(home)
        .arg("--import")
        .arg(key)
        .stdin(Stdio::null())
        .output()
        .map_err(missing_gpg)?;
    if !out.status.success() {
        return Err(RestoreError::Failed(format!(
            "gpg cannot import restore.decrypt.gpg_key_file {key:?}: {}",
            gpg_messages(&String::from_utf8_lossy(&out.stderr))
        )));
    }
    Ok(())
}

/// The key ids (16 hex digits) of the secret keys and subkeys in the GnuPG home: what
/// the imported key file holds (none when gpg cannot list them).
fn secret_key_ids(home: &Path) -> Vec<String> {
    let Ok(out) = gpg_command(home)
        .args(["--with-colons", "--list-secret-keys"])
        .stdin(Stdio::null())
        .output()
    else {
        return Vec::new();
    };
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.starts_with("sec:") || l.starts_with("ssb:"))
        .filter_map(|l| l.split(':').nth(4))
        .map(str::to_ascii_uppercase)
        .collect()
}

/// What gpg reported on its status channel, and how it exited.
#[derive(Debug, Default)]
struct Status {
    exited_ok: bool,
    decryption_okay: bool,
    good_mdc: bool,
    no_seckey: bool,
    bad_passphrase: bool,
    /// The key ids the message is encrypted to (`ENC_TO`).
    enc_to: Vec<String>,
    messages: Vec<String>,
}

impl Status {
    fn line(&mut self, line: &str) {
        match line.strip_prefix("[GNUPG:] ") {
            Some(status) => {
                let mut words = status.split_whitespace();
                let word = words.next().unwrap_or("");
                match word {
                    "ENC_TO" => self
                        .enc_to
                        .extend(words.next().map(str::to_ascii_uppercase)),
                    "DECRYPTION_OKAY" => self.decryption_okay = true,
                    "GOODMDC" => self.good_mdc = true,
                    "NO_SECKEY" => self.no_seckey = true,
                    "BAD_PASSPHRASE" | "MISSING_PASSPHRASE" => self.bad_passphrase = true,
                    _ => {}
                }
            }
            None => {
                // gpg 2.2 reports a message for another key as only this line (and
                // DECRYPTION_FAILED); its messages are in English (LC_ALL=C).
                if line.contains("No secret key") {
                    self.no_seckey = true;
                }
                if line.contains("Bad passphrase") || line.contains("Bad session key") {
                    self.bad_passphrase = true;
                }
                if self.messages.len() < 3
                    && !line.trim().is_empty()
                    && !line.contains("WARNING: unsafe")
                {
                    self.messages.push(gpg_messages(line));
                }
            }
        }
    }

    /// The verdict, knowing the key ids of the imported secret keys and whether a
    /// passphrase was given.
    fn verdict(&self, secret_keys: &[String], passphrase: bool) -> Result<(), RestoreError> {
        if self.exited_ok && self.decryption_okay && self.good_mdc {
            return Ok(());
        }
        let said = if self.messages.is_empty() {
            String::new()
        } else {
            format!(" (gpg: {})", self.messages.join("; "))
        };
        if self.bad_passphrase {
            return Err(RestoreError::Failed(format!(
                "the passphrase in restore.decrypt.gpg_passphrase_file does not open this gpg message{said}"
            )));
        }
        let ours = self.enc_to.iter().any(|id| secret_keys.contains(id));
        if self.no_seckey && !self.decryption_okay && ours && !passphrase {
            // The message is encrypted to the imported key, which gpg cannot use without
            // its passphrase: the config, not the backup, is what is wrong.
            return Err(RestoreError::Setup(
                "the key in restore.decrypt.gpg_key_file needs its passphrase: set restore.decrypt.gpg_passphrase_file to a file holding it".into(),
            ));
        }
        if self.no_seckey && !self.decryption_okay {
            return Err(RestoreError::Failed(format!(
                "no key in restore.decrypt.gpg_key_file opens this gpg message: it was encrypted to another key{said}"
            )));
        }
        if self.decryption_okay && !self.good_mdc {
            return Err(RestoreError::Corrupt(format!(
                "the gpg message has no valid integrity check: it was altered, or made without one{said}"
            )));
        }
        Err(RestoreError::Corrupt(format!(
            "gpg cannot decrypt the message to its end: it is damaged or cut short{said}"
        )))
    }
}

/// gpg's own messages, one line, without its program-name prefix.
fn gpg_messages(text: &str) -> String {
    let lines: Vec<&str> = text
        .lines()
        .map(|l| l.trim().trim_start_matches("gpg: "))
        .filter(|l| !l.is_empty())
        .take(3)
        .collect();
    crate::problem::one_line(&lines.join("; ")).into_owned()
}

/// The descriptor gpg reads the passphrase from.
const PASSPHRASE_FD: i32 = 3;

fn run_gpg(
    sandbox: &Sandbox,
    home: &Path,
    mut ciphertext: Stream,
    passphrase: Option<&[u8]>,
    spool: &Path,
) -> Result<Status, RestoreError> {
    let mut cmd = gpg_command(home);
    cmd.args(["--status-fd", "2", "--decrypt", "--output", "-"]);
    let mut pass_reader = None;
    let mut pass_writer = None;
    if passphrase.is_some() {
        let (r, w) =
            io::pipe().map_err(|e| RestoreError::Skipped(format!("cannot run gpg: {e}")))?;
        cmd.args(["--pinentry-mode", "loopback", "--passphrase-fd"])
            .arg(PASSPHRASE_FD.to_string());
        pass_reader = Some(r);
        pass_writer = Some(w);
    } else {
        // No passphrase to give: gpg must not ask for one (a pinentry on the terminal
        // the run was started from), it fails instead.
        cmd.args(["--pinentry-mode", "error"]);
    }
    if let Some(r) = &pass_reader {
        use std::os::fd::AsRawFd;
        use std::os::unix::process::CommandExt;
        let fd = r.as_raw_fd();
        // SAFETY: dup2 is async-signal-safe; it only duplicates a descriptor this
        // process owns onto the one gpg is told to read (and clears close-on-exec there).
        unsafe {
            cmd.pre_exec(move || {
                let done = if fd == PASSPHRASE_FD {
                    libc::fcntl(fd, libc::F_SETFD, 0)
                } else {
                    libc::dup2(fd, PASSPHRASE_FD)
                };
                if done < 0 {
                    return Err(io::Error::last_os_error());
                }
                Ok(())
            });
        }
    }
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(missing_gpg)?;
    drop(pass_reader);
    if let (Some(mut w), Some(p)) = (pass_writer, passphrase) {
        // Short enough for the pipe's buffer; gpg reads it before anything else.
        let _ = w.write_all(p).and_then(|()| w.write_all(b"\n"));
    }
    let stdin = child.stdin.take();
    let feeder = std::thread::spawn(move || {
        if let Some(mut stdin) = stdin {
            // gpg stops reading when it fails: a broken pipe is its verdict, not ours.
            let _ = io::copy(&mut ciphertext, &mut stdin);
        }
    });
    let stderr = child.stderr.take();
    let statuses = std::thread::spawn(move || {
        let mut status = Status::default();
        if let Some(stderr) = stderr {
            for line in BufReader::new(stderr.take(16 << 20)).lines() {
                match line {
                    Ok(l) => status.line(&l),
                    Err(_) => break,
                }
            }
        }
        status
    });
    let stdout = child.stdout.take();
    let child = Arc::new(Mutex::new(child));
    let watchdog = watchdog(child.clone(), sandbox.deadline());
    let written = match stdout {
        Some(mut out) => sandbox.write_scratch(spool, &mut out).map(|_| ()),
        None => Ok(()),
    };
    if written.is_err() {
        let _ = lock(&child).kill();
    }
    let exit = reap(&child);
    let _ = watchdog.0.send(());
    let killed = watchdog.1.join().unwrap_or(false);
    let _ = feeder.join();
    let mut status = statuses.join().unwrap_or_default();
    written?;
    if killed {
        return Err(sandbox.time_limit());
    }
    status.exited_ok = exit.is_some_and(|s| s.success());
    Ok(status)
}

fn lock(child: &Mutex<Child>) -> std::sync::MutexGuard<'_, Child> {
    child.lock().unwrap_or_else(|e| e.into_inner())
}

/// Wait for gpg to exit, polling under the lock the watchdog also takes, so that it
/// never signals a process id that was already reaped (and may be reused).
fn reap(child: &Mutex<Child>) -> Option<ExitStatus> {
    loop {
        match lock(child).try_wait() {
            Ok(Some(status)) => return Some(status),
            Ok(None) => {}
            Err(_) => return None,
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Kill gpg at the test's deadline unless told first that it is done: a gpg that hangs
/// (waiting for a pinentry it cannot have, a stalled agent) must not hang the run.
fn watchdog(
    child: Arc<Mutex<Child>>,
    deadline: Instant,
) -> (mpsc::Sender<()>, std::thread::JoinHandle<bool>) {
    let (done, wait) = mpsc::channel::<()>();
    let handle = std::thread::spawn(move || {
        let left = deadline.saturating_duration_since(Instant::now());
        if let Err(mpsc::RecvTimeoutError::Timeout) = wait.recv_timeout(left) {
            let mut child = lock(&child);
            if matches!(child.try_wait(), Ok(None)) {
                return child.kill().is_ok();
            }
        }
        false
    });
    (done, handle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encryption_is_recognised_by_content() {
        assert_eq!(
            cipher(b"age-encryption.org/v1\n-> X25519 abc"),
            Some(Cipher::Age)
        );
        assert_eq!(
            cipher(b"-----BEGIN PGP MESSAGE-----\n"),
            Some(Cipher::OpenPgp)
        );
        // Old-format public-key session key packet (two-byte length), version 3.
        assert_eq!(
            cipher(&[0x85, 0x01, 0x0c, 0x03, 0x00]),
            Some(Cipher::OpenPgp)
        );
        // Old-format symmetric session key packet, version 4.
        assert_eq!(cipher(&[0x8c, 0x0d, 0x04, 0x07]), Some(Cipher::OpenPgp));
        // New-format PKESK, version 3.
        assert_eq!(cipher(&[0xc1, 0x5e, 0x03, 0x00]), Some(Cipher::OpenPgp));
        // A public key (tag 6) is not a message; gzip is not either.
        assert_eq!(cipher(&[0x99, 0x01, 0x0d, 0x04]), None);
        assert_eq!(cipher(&[0x1f, 0x8b, 0x08]), None);
        assert_eq!(cipher(b""), None);
    }

    #[test]
    fn the_plaintext_is_named_without_the_encryption_suffix() {
        assert_eq!(inner_name("db.sql.gz.gpg"), "db.sql.gz");
        assert_eq!(inner_name("x.tar.gz.AGE"), "x.tar.gz");
        assert_eq!(inner_name("x.tar.gz"), "x.tar.gz");
        assert_eq!(inner_name(".age"), ".age");
    }

    #[test]
    fn key_files_others_can_read_are_refused_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("key.txt");
        std::fs::write(&key, "x").unwrap();
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = check_private("age_identity_file", &key)
            .unwrap_err()
            .to_string();
        assert!(e.contains("key.txt") && e.contains("chmod 600"), "{e}");
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
        check_private("age_identity_file", &key).unwrap();
    }

    #[test]
    fn gpg_is_trusted_only_with_both_status_words_and_exit_zero() {
        let mut s = Status {
            exited_ok: true,
            ..Status::default()
        };
        s.line("[GNUPG:] DECRYPTION_OKAY");
        assert!(matches!(
            s.verdict(&[], false),
            Err(RestoreError::Corrupt(_))
        ));
        s.line("[GNUPG:] GOODMDC");
        assert!(s.verdict(&[], false).is_ok());
        s.exited_ok = false;
        assert!(matches!(
            s.verdict(&[], false),
            Err(RestoreError::Corrupt(_))
        ));
        let mut wrong = Status::default();
        wrong.line("[GNUPG:] ENC_TO 0123456789ABCDEF 18 0");
        wrong.line("[GNUPG:] NO_SECKEY 0123456789ABCDEF");
        assert!(matches!(
            wrong.verdict(&[], false),
            Err(RestoreError::Failed(_))
        ));
        // Encrypted to the imported key, which has a passphrase nobody gave.
        let ours = ["0123456789ABCDEF".to_string()];
        assert!(matches!(
            wrong.verdict(&ours, false),
            Err(RestoreError::Setup(_))
        ));
        assert!(matches!(
            wrong.verdict(&ours, true),
            Err(RestoreError::Failed(_))
        ));
    }
}
