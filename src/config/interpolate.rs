//! `${VAR}` and `${VAR:-default}` interpolation against the process environment plus the
//! `.env` files loaded for this config (which never override the process environment).

use std::cell::RefCell;
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

thread_local! {
    static EXTRA_ENV: RefCell<HashMap<String, DotenvValue>> = RefCell::new(HashMap::new());
}

/// Values from `.env` files, consulted after the process environment.
pub fn set_dotenv(values: HashMap<String, DotenvValue>) {
    EXTRA_ENV.with(|e| *e.borrow_mut() = values);
}

/// `name` as the `.env` files define it (ignoring the process environment).
pub fn dotenv_value(name: &str) -> Option<DotenvValue> {
    EXTRA_ENV.with(|e| e.borrow().get(name).cloned())
}

pub fn lookup(name: &str) -> Option<String> {
    std::env::var(name)
        .ok()
        .or_else(|| dotenv_value(name).map(|v| v.value))
}

pub enum Interpolated {
    Ok(String),
    Undefined(String),
}

pub fn undefined_message(var: &str) -> String {
    format!(
        "environment variable `{var}` is not set; set it (or put it in .env beside the config), or write ${{{var}:-default}}"
    )
}

/// Replace every `${VAR}` / `${VAR:-default}` in `raw`. `$$` is a literal `$`.
pub fn expand(raw: &str) -> Interpolated {
    let mut out = String::with_capacity(raw.len());
    let mut rest = raw;
    while let Some(pos) = rest.find('$') {
        out.push_str(&rest[..pos]);
        let after = &rest[pos + 1..];
        if let Some(stripped) = after.strip_prefix('$') {
            out.push('$');
            rest = stripped;
            continue;
        }
        let Some(body) = after.strip_prefix('{') else {
            out.push('$');
            rest = after;
            continue;
        };
        let Some(end) = body.find('}') else {
            out.push('$');
            rest = after;
            continue;
        };
        let expr = &body[..end];
        let (name, default) = match expr.split_once(":-") {
            Some((n, d)) => (n, Some(d)),
            None => (expr, None),
        };
        match (
            lookup(name).filter(|v| !v.is_empty() || default.is_none()),
            default,
        ) {
            (Some(v), _) => out.push_str(&v),
            (None, Some(d)) => out.push_str(d),
            (None, None) => return Interpolated::Undefined(name.to_string()),
        }
        rest = &body[end + 1..];
    }
    out.push_str(rest);
    Interpolated::Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(s: &str) -> String {
        match expand(s) {
            Interpolated::Ok(v) => v,
            Interpolated::Undefined(v) => panic!("undefined {v}"),
        }
    }

    #[test]
    fn expands_variables_and_defaults() {
        set_dotenv(HashMap::from([(
            "BM_TEST_DOTENV".to_string(),
            DotenvValue {
                value: "fromdotenv".to_string(),
                file: PathBuf::from("/etc/bm/.env"),
            },
        )]));
        assert_eq!(ok("a ${BM_TEST_DOTENV} b"), "a fromdotenv b");
        assert_eq!(ok("${BM_TEST_SURELY_UNSET:-fallback}"), "fallback");
        assert_eq!(ok("cost $$5 and $HOME"), "cost $5 and $HOME");
        assert!(
            matches!(expand("${BM_TEST_SURELY_UNSET}"), Interpolated::Undefined(v) if v == "BM_TEST_SURELY_UNSET")
        );
    }
}
