//! The environment a config is read in: the process environment, then `.env` beside the
//! config, then `.env` in the working directory (earlier wins; a `.env` file never
//! overrides the process environment). One explicit value, handed to interpolation and to
//! the choice of the store, so nothing reads it behind the caller's back. Not for:
//! changing the process environment (`.env` files are read, never exported).

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

/// One variable read from a `.env` file, and the file it came from (a relative path in
/// it, e.g. `DATABASE_URL`, is relative to that file's directory).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DotenvValue {
    pub value: String,
    pub file: PathBuf,
}

impl DotenvValue {
    /// The directory of the `.env` file.
    pub fn dir(&self) -> &Path {
        self.file.parent().unwrap_or(Path::new("."))
    }
}

/// Where `${VAR}` and `DATABASE_URL` are looked up.
#[derive(Debug, Clone, Default)]
pub struct Env {
    process: HashMap<String, String>,
    /// Process variables whose value is not UTF-8 (set, but not usable as text).
    not_utf8: HashSet<String>,
    dotenv: HashMap<String, DotenvValue>,
    /// The working directory: a relative `DATABASE_URL` from the shell is relative to it.
    cwd: Option<PathBuf>,
    /// The config file's directory: relative paths in the config are relative to it.
    config_dir: PathBuf,
    /// What reading it found wrong without making the config unusable (a `.env` in the
    /// working directory that cannot be read), said once logging is set up.
    warnings: Vec<String>,
}

impl Env {
    /// The process environment (variables whose name or value is not UTF-8 are left
    /// out) plus the `.env` files for a config in `config_dir`.
    pub fn load(config_dir: &Path) -> Result<Env, String> {
        let cwd = std::env::current_dir().ok();
        let (process, not_utf8) = process_vars();
        let (dotenv, warnings) = read_dotenv_files(config_dir, cwd.as_deref())?;
        Ok(Env {
            process,
            not_utf8,
            dotenv,
            cwd,
            config_dir: config_dir.to_path_buf(),
            warnings,
        })
    }

    /// An environment holding exactly these variables (tests, embedding).
    pub fn from_vars<K: Into<String>, V: Into<String>>(
        vars: impl IntoIterator<Item = (K, V)>,
    ) -> Env {
        Env {
            process: vars
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
            ..Env::default()
        }
    }

    /// The process environment alone (no `.env` file), for a config in `config_dir`.
    pub fn process_only(config_dir: &Path) -> Env {
        let (process, not_utf8) = process_vars();
        Env {
            process,
            not_utf8,
            cwd: std::env::current_dir().ok(),
            ..Env::default()
        }
        .in_dir(config_dir)
    }

    /// The same environment for a config in `config_dir`.
    pub fn in_dir(mut self, config_dir: &Path) -> Env {
        self.config_dir = config_dir.to_path_buf();
        self
    }

    /// Add `.env` values (they never override a process variable).
    pub fn with_dotenv(mut self, values: HashMap<String, DotenvValue>) -> Env {
        self.dotenv = values;
        self
    }

    /// `name` from the process environment, else from a `.env` file.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.process
            .get(name)
            .map(String::as_str)
            .or_else(|| self.dotenv.get(name).map(|v| v.value.as_str()))
    }

    /// Is `name` set in the process environment to bytes that are not UTF-8 (and so
    /// neither read nor taken as unset)?
    pub fn is_not_utf8(&self, name: &str) -> bool {
        self.not_utf8.contains(name)
    }

    /// `name` from the process environment only.
    pub fn process_value(&self, name: &str) -> Option<&str> {
        self.process.get(name).map(String::as_str)
    }

    /// `name` as the `.env` files define it (ignoring the process environment).
    pub fn dotenv_value(&self, name: &str) -> Option<&DotenvValue> {
        self.dotenv.get(name)
    }

    pub fn cwd(&self) -> Option<&Path> {
        self.cwd.as_deref()
    }

    pub fn config_dir(&self) -> &Path {
        &self.config_dir
    }

    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }
}

/// The process environment; a variable whose name or value is not UTF-8 cannot be
/// interpolated into YAML text and is left out (the names of those with a UTF-8 name,
/// second, so that using one says why rather than "not set").
fn process_vars() -> (HashMap<String, String>, HashSet<String>) {
    let mut vars = HashMap::new();
    let mut not_utf8 = HashSet::new();
    for (k, v) in std::env::vars_os() {
        let Ok(k) = k.into_string() else { continue };
        match v.into_string() {
            Ok(v) => {
                vars.insert(k, v);
            }
            Err(_) => {
                not_utf8.insert(k);
            }
        }
    }
    (vars, not_utf8)
}

/// Read `.env` files (beside the config, then the working directory) without touching
/// the process environment; earlier files win. The one beside the config belongs to it:
/// a line that cannot be read is an error. One in the working directory may be another
/// program's (cron starts in the home directory): it is skipped with a warning. Neither
/// message repeats the line, which may hold a secret.
fn read_dotenv_files(
    config_dir: &Path,
    cwd: Option<&Path>,
) -> Result<(HashMap<String, DotenvValue>, Vec<String>), String> {
    let mut values = HashMap::new();
    let mut warnings = Vec::new();
    let beside = config_dir.join(".env");
    let mut candidates = vec![(beside.clone(), true)];
    if let Some(cwd) = cwd
        && cwd.join(".env") != beside
        && std::fs::canonicalize(cwd.join(".env")).ok() != std::fs::canonicalize(&beside).ok()
    {
        candidates.push((cwd.join(".env"), false));
    }
    for (file, own) in candidates {
        if !file.is_file() {
            continue;
        }
        match read_dotenv(&file) {
            Ok(pairs) => {
                for (k, v) in pairs {
                    values.entry(k).or_insert(DotenvValue {
                        value: v,
                        file: file.clone(),
                    });
                }
            }
            Err(e) if own => return Err(e),
            Err(e) => warnings.push(format!("{e}; its variables are not used")),
        }
    }
    Ok((values, warnings))
}

/// The largest `.env` file read.
const MAX_DOTENV_BYTES: u64 = 1 << 20;

/// The `NAME=value` pairs of one `.env` file (a byte-order mark at its start is skipped).
fn read_dotenv(file: &Path) -> Result<Vec<(String, String)>, String> {
    use std::io::Read;
    let shown = file.display();
    let mut text = String::new();
    std::fs::File::open(file)
        .and_then(|f| f.take(MAX_DOTENV_BYTES + 1).read_to_string(&mut text))
        .map_err(|e| format!("{shown}: cannot be read ({e}); fix its permissions or remove it"))?;
    if text.len() as u64 > MAX_DOTENV_BYTES {
        return Err(format!(
            "{shown}: is larger than {} MiB, too large for a .env file; remove it",
            MAX_DOTENV_BYTES >> 20
        ));
    }
    let body = text.strip_prefix('\u{feff}').unwrap_or(&text);
    dotenvy::from_read_iter(body.as_bytes())
        .map(|item| {
            item.map_err(|e| match e {
                dotenvy::Error::LineParse(line, _) => format!(
                    "{shown}{}: not a NAME=value line (not shown here: it may hold a secret); quote the value, or remove the line",
                    line_number(body, &line).map_or_else(String::new, |n| format!(", line {n}"))
                ),
                other => format!("{shown}: cannot be read ({other})"),
            })
        })
        .collect()
}

/// The line of `text` on which `fragment` (a line as the `.env` parser quotes it) starts.
fn line_number(text: &str, fragment: &str) -> Option<usize> {
    let first = fragment.lines().next().filter(|l| !l.trim().is_empty())?;
    text.lines()
        .position(|l| l.trim_end() == first.trim_end() || l.contains(first.trim()))
        .map(|i| i + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn process_wins_over_dotenv_and_dotenv_fills_gaps() {
        let dotenv = HashMap::from([
            (
                "A".to_string(),
                DotenvValue {
                    value: "from-file".into(),
                    file: PathBuf::from("/etc/bm/.env"),
                },
            ),
            (
                "B".to_string(),
                DotenvValue {
                    value: "only-file".into(),
                    file: PathBuf::from("/etc/bm/.env"),
                },
            ),
        ]);
        let env = Env::from_vars([("A", "from-shell")]).with_dotenv(dotenv);
        assert_eq!(env.get("A"), Some("from-shell"));
        assert_eq!(env.get("B"), Some("only-file"));
        assert_eq!(env.get("C"), None);
        assert_eq!(env.process_value("B"), None);
        assert_eq!(
            env.dotenv_value("B").map(|v| v.dir()),
            Some(Path::new("/etc/bm"))
        );
    }

    #[test]
    fn the_file_beside_the_config_wins_over_the_working_directory() {
        let cfg = tempfile::tempdir().unwrap();
        let cwd = tempfile::tempdir().unwrap();
        std::fs::write(cfg.path().join(".env"), "X=beside\n").unwrap();
        std::fs::write(cwd.path().join(".env"), "X=cwd\nY=cwd\n").unwrap();
        let (values, warnings) = read_dotenv_files(cfg.path(), Some(cwd.path())).unwrap();
        assert_eq!(values["X"].value, "beside");
        assert_eq!(values["Y"].value, "cwd");
        assert_eq!(values["Y"].file, cwd.path().join(".env"));
        assert!(warnings.is_empty());
    }

    #[test]
    fn a_bad_line_is_named_by_its_number_and_never_shown() {
        let cfg = tempfile::tempdir().unwrap();
        std::fs::write(
            cfg.path().join(".env"),
            "\u{feff}A=1\n# comment\nSMTP_PASSWORD hunter2-secret\n",
        )
        .unwrap();
        let err = read_dotenv_files(cfg.path(), None).unwrap_err();
        assert!(err.contains(", line 3: not a NAME=value line"), "{err}");
        assert!(
            !err.contains("hunter2") && !err.contains("SMTP_PASSWORD"),
            "{err}"
        );
        // A byte-order mark before the first name is not part of it.
        std::fs::write(cfg.path().join(".env"), "\u{feff}A=1\n").unwrap();
        let (values, _) = read_dotenv_files(cfg.path(), None).unwrap();
        assert_eq!(values["A"].value, "1");
    }

    #[test]
    fn a_bad_env_file_in_the_working_directory_is_skipped_with_a_warning() {
        let cfg = tempfile::tempdir().unwrap();
        let cwd = tempfile::tempdir().unwrap();
        std::fs::write(cfg.path().join(".env"), "X=beside\n").unwrap();
        std::fs::write(
            cwd.path().join(".env"),
            "Y=1\nPASSWORD='unterminated hunter3\n",
        )
        .unwrap();
        let (values, warnings) = read_dotenv_files(cfg.path(), Some(cwd.path())).unwrap();
        assert_eq!(values["X"].value, "beside");
        assert!(!values.contains_key("Y"));
        assert_eq!(warnings.len(), 1);
        assert!(
            warnings[0].contains("its variables are not used"),
            "{warnings:?}"
        );
        assert!(!warnings[0].contains("hunter3"), "{warnings:?}");
    }
}
