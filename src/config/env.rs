//! The environment a config is read in: the process environment, then `.env` beside the
//! config, then `.env` in the working directory (earlier wins; a `.env` file never
//! overrides the process environment). One explicit value, handed to interpolation and to
//! the choice of the store, so nothing reads it behind the caller's back. Not for:
//! changing the process environment (`.env` files are read, never exported).

use std::collections::HashMap;
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
    dotenv: HashMap<String, DotenvValue>,
    /// The working directory: a relative `DATABASE_URL` from the shell is relative to it.
    cwd: Option<PathBuf>,
    /// The config file's directory: relative paths in the config are relative to it.
    config_dir: PathBuf,
}

impl Env {
    /// The process environment (variables whose name or value is not UTF-8 are left
    /// out) plus the `.env` files for a config in `config_dir`.
    pub fn load(config_dir: &Path) -> Result<Env, String> {
        let cwd = std::env::current_dir().ok();
        let process = process_vars();
        let dotenv = read_dotenv_files(config_dir, cwd.as_deref())?;
        Ok(Env {
            process,
            dotenv,
            cwd,
            config_dir: config_dir.to_path_buf(),
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
        Env {
            process: process_vars(),
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
}

/// The process environment; a variable whose name or value is not UTF-8 cannot be
/// interpolated into YAML text and is left out.
fn process_vars() -> HashMap<String, String> {
    std::env::vars_os()
        .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
        .collect()
}

/// Read `.env` files (beside the config, then the working directory) without touching
/// the process environment; earlier files win.
fn read_dotenv_files(
    config_dir: &Path,
    cwd: Option<&Path>,
) -> Result<HashMap<String, DotenvValue>, String> {
    let mut values = HashMap::new();
    let mut candidates = vec![config_dir.join(".env")];
    if let Some(cwd) = cwd
        && cwd.join(".env") != candidates[0]
        && std::fs::canonicalize(cwd.join(".env")).ok()
            != std::fs::canonicalize(&candidates[0]).ok()
    {
        candidates.push(cwd.join(".env"));
    }
    for file in candidates {
        if !file.is_file() {
            continue;
        }
        let iter = dotenvy::from_path_iter(&file)
            .map_err(|e| format!("{}: cannot read: {e}", file.display()))?;
        for item in iter {
            let (k, v) = item.map_err(|e| format!("{}: {e}", file.display()))?;
            values.entry(k).or_insert(DotenvValue {
                value: v,
                file: file.clone(),
            });
        }
    }
    Ok(values)
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
        let values = read_dotenv_files(cfg.path(), Some(cwd.path())).unwrap();
        assert_eq!(values["X"].value, "beside");
        assert_eq!(values["Y"].value, "cwd");
        assert_eq!(values["Y"].file, cwd.path().join(".env"));
    }
}
