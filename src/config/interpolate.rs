//! `${VAR}` and `${VAR:-default}` interpolation against an [`Env`] (the process
//! environment plus the `.env` files loaded for this config).

use super::env::Env;

pub enum Interpolated {
    Ok(String),
    Undefined(String),
    /// Set in the environment, to bytes that are not UTF-8.
    NotUtf8(String),
}

pub fn undefined_message(var: &str) -> String {
    format!(
        "environment variable `{var}` is not set; set it (or put it in .env beside the config), or write ${{{var}:-default}}",
        var = super::values::shown(var)
    )
}

pub fn not_utf8_message(var: &str) -> String {
    format!(
        "environment variable `{}` is set to bytes that are not UTF-8 text; set it to UTF-8 text",
        super::values::shown(var)
    )
}

/// Replace every `${VAR}` / `${VAR:-default}` in `raw`. `$$` is a literal `$`.
pub fn expand(raw: &str, env: &Env) -> Interpolated {
    expand_with(raw, env, |_| false)
}

/// As [`expand`], for a URL: a value inserted into its user or password part (between
/// `://` and the `@` before the host, as written in `raw`) is percent-encoded, so that a
/// password kept in the environment is read as it is, whatever it holds (`@`, `/`, `:`,
/// `#`, `?`, `%`): inserted as it is, it would end the password early and the rest would
/// be taken for the server's name — and shown.
pub fn expand_url(raw: &str, env: &Env) -> Interpolated {
    let user_part = user_part_of(raw);
    expand_with(raw, env, |at| {
        user_part.as_ref().is_some_and(|r| r.contains(&at))
    })
}

/// The byte range of `url`'s user and password, as written (placeholders included):
/// after `://`, up to the last `@` before the first `/`, `?` or `#` outside a
/// placeholder. None when it names no user.
fn user_part_of(url: &str) -> Option<std::ops::Range<usize>> {
    let start = url.find("://")? + 3;
    let bytes = url.as_bytes();
    let mut i = start;
    let mut last_at = None;
    while i < bytes.len() {
        match bytes[i] {
            b'$' if bytes.get(i + 1) == Some(&b'{') => match url[i..].find('}') {
                Some(end) => i += end,
                None => break,
            },
            b'$' if bytes.get(i + 1) == Some(&b'$') => i += 1,
            b'@' => last_at = Some(i),
            b'/' | b'?' | b'#' => break,
            _ => {}
        }
        i += 1;
    }
    last_at.map(|at| start..at)
}

/// The characters left as they are in a URL's user or password part.
const USERINFO: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// [`expand`], percent-encoding the value of each placeholder that starts at a byte
/// offset of `raw` for which `encode` says so.
fn expand_with(raw: &str, env: &Env, encode: impl Fn(usize) -> bool) -> Interpolated {
    let mut out = String::with_capacity(raw.len());
    let mut rest = raw;
    while let Some(pos) = rest.find('$') {
        let offset = raw.len() - rest.len() + pos;
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
            env.get(name).filter(|v| !v.is_empty() || default.is_none()),
            default,
        ) {
            (Some(v), _) if encode(offset) => {
                out.extend(percent_encoding::utf8_percent_encode(v, USERINFO));
            }
            (Some(v), _) => out.push_str(v),
            (None, _) if env.is_not_utf8(name) => return Interpolated::NotUtf8(name.to_string()),
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

    fn env() -> Env {
        Env::from_vars([("BM_TEST_SET", "fromenv"), ("BM_TEST_EMPTY", "")])
    }

    fn ok(s: &str) -> String {
        match expand(s, &env()) {
            Interpolated::Ok(v) => v,
            Interpolated::Undefined(v) | Interpolated::NotUtf8(v) => panic!("undefined {v}"),
        }
    }

    #[test]
    fn a_value_in_a_urls_user_part_is_percent_encoded_and_read_back_as_written() {
        let env = Env::from_vars([
            ("PW", "P@ss/w0rd#?%:x y"),
            ("DBHOST", "db.example:6543"),
            ("U", "bm"),
        ]);
        let expanded = |s: &str| match expand_url(s, &env) {
            Interpolated::Ok(v) => v,
            Interpolated::Undefined(v) | Interpolated::NotUtf8(v) => panic!("undefined {v}"),
        };
        let url = expanded("postgresql://${U}:${PW}@${DBHOST}/fleet?sslmode=disable");
        assert_eq!(
            url,
            "postgresql://bm:P%40ss%2Fw0rd%23%3F%25%3Ax%20y@db.example:6543/fleet?sslmode=disable"
        );
        let target = crate::store::PgTarget::parse(&url).unwrap();
        assert_eq!(target.to_string(), "db.example:6543/fleet");
        assert_eq!(target.user, "bm");
        assert_eq!(target.password.as_deref(), Some("P@ss/w0rd#?%:x y"));
        // Outside the user part, and in a URL without one, values go in as they are.
        assert_eq!(
            expanded("postgresql://${DBHOST}/fleet"),
            "postgresql://db.example:6543/fleet"
        );
        assert_eq!(expanded("sqlite://${U}@x.db"), "sqlite://bm@x.db");
        // `expand` itself never encodes.
        match expand("postgresql://u:${PW}@h/d", &env) {
            Interpolated::Ok(v) => assert_eq!(v, "postgresql://u:P@ss/w0rd#?%:x y@h/d"),
            Interpolated::Undefined(v) | Interpolated::NotUtf8(v) => panic!("undefined {v}"),
        }
    }

    #[test]
    fn expands_variables_and_defaults() {
        assert_eq!(ok("a ${BM_TEST_SET} b"), "a fromenv b");
        assert_eq!(ok("${BM_TEST_EMPTY:-fallback}"), "fallback");
        assert_eq!(ok("[${BM_TEST_EMPTY}]"), "[]");
        assert_eq!(ok("${BM_TEST_SURELY_UNSET:-fallback}"), "fallback");
        assert_eq!(ok("cost $$5 and $HOME"), "cost $5 and $HOME");
        assert!(
            matches!(expand("${BM_TEST_SURELY_UNSET}", &env()), Interpolated::Undefined(v) if v == "BM_TEST_SURELY_UNSET")
        );
    }
}
