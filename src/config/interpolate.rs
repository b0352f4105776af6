//! `${VAR}` and `${VAR:-default}` interpolation against an [`Env`] (the process
//! environment plus the `.env` files loaded for this config).

use super::env::Env;

pub enum Interpolated {
    Ok(String),
    Undefined(String),
}

pub fn undefined_message(var: &str) -> String {
    format!(
        "environment variable `{var}` is not set; set it (or put it in .env beside the config), or write ${{{var}:-default}}",
        var = super::values::shown(var)
    )
}

/// Replace every `${VAR}` / `${VAR:-default}` in `raw`. `$$` is a literal `$`.
pub fn expand(raw: &str, env: &Env) -> Interpolated {
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
            env.get(name).filter(|v| !v.is_empty() || default.is_none()),
            default,
        ) {
            (Some(v), _) => out.push_str(v),
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
            Interpolated::Undefined(v) => panic!("undefined {v}"),
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
