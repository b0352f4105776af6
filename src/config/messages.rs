//! User wording for the YAML parser's errors. serde-saphyr's own messages are written for
//! the programmer calling it ("set DuplicateKeyPolicy in Options", "use
//! from_str_multiple", "invalid u32"); a sysadmin reading `--check-config` needs to hear
//! what is wrong in the file and what to write instead. Not for: errors our own value
//! types raise — those are already worded for users and pass through unchanged.

use serde_saphyr::{Error, MessageFormatter, UserMessageFormatter};
use std::borrow::Cow;

/// Renders a parse error as "<message> at line L, column C" in user words.
pub struct ConfigMessages;

impl MessageFormatter for ConfigMessages {
    fn format_message<'a>(&self, err: &'a Error) -> Cow<'a, str> {
        match err {
            Error::DuplicateMappingKey { key: Some(k), .. } => Cow::Owned(format!(
                "duplicate key `{k}`: each key may appear once in a mapping; keep one and delete the other"
            )),
            Error::DuplicateMappingKey { key: None, .. } => {
                Cow::Borrowed("duplicate key: each key may appear once in a mapping")
            }
            Error::MultipleDocuments { .. } => Cow::Borrowed(
                "the file holds more than one YAML document (`---`); put the whole configuration in one",
            ),
            Error::InvalidScalar { ty, .. } => Cow::Owned(expected_for_type(ty)),
            Error::InvalidBooleanStrict { .. } => Cow::Borrowed("expected true or false"),
            Error::Unexpected { expected, .. } => Cow::Owned(expected_for_node(expected)),
            Error::Eof { .. } => {
                Cow::Borrowed("the file ends in the middle of a value (unclosed quote or bracket?)")
            }
            _ => UserMessageFormatter.format_message(err),
        }
    }
}

/// "invalid u32" and friends: say which values the key takes.
fn expected_for_type(ty: &str) -> String {
    let range = |min: i128, max: i128| format!("expected a whole number from {min} to {max}");
    match ty {
        "u8" => range(0, u8::MAX.into()),
        "u16" => range(0, u16::MAX.into()),
        "u32" => range(0, u32::MAX.into()),
        "u64" => range(0, u64::MAX.into()),
        "i8" => range(i8::MIN.into(), i8::MAX.into()),
        "i16" => range(i16::MIN.into(), i16::MAX.into()),
        "i32" => range(i32::MIN.into(), i32::MAX.into()),
        "i64" => range(i64::MIN.into(), i64::MAX.into()),
        "f32" | "f64" | "floating point" => "expected a number, e.g. 0.5".into(),
        "bool" | "boolean" => "expected true or false".into(),
        other => format!("expected a value of type {other}"),
    }
}

/// "expected mapping start" and friends: say which shape of YAML belongs here.
fn expected_for_node(node: &str) -> String {
    match node {
        "mapping start" | "empty mapping start" => {
            "expected a mapping of `key: value` lines here".into()
        }
        "sequence start" => "expected a list here (`- item` lines or `[a, b]`)".into(),
        "scalar" | "string scalar" => "expected a single value here, not a list or mapping".into(),
        other => format!("expected {other}"),
    }
}

/// serde_path_to_error writes `?` for a key it never reached (the parser failed before);
/// the path up to there is what the user can act on.
pub fn key_path(raw: &str) -> &str {
    let mut path = raw;
    while let Some(parent) = path.strip_suffix(".?").or_else(|| path.strip_suffix("?")) {
        path = parent;
    }
    if path == "." { "" } else { path }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unreached_keys_are_dropped_from_the_path() {
        assert_eq!(key_path("backups.locations[0].?"), "backups.locations[0]");
        assert_eq!(key_path("?"), "");
        assert_eq!(key_path("."), "");
        assert_eq!(key_path("alerts.email.to"), "alerts.email.to");
    }

    #[test]
    fn type_names_become_ranges() {
        assert_eq!(
            expected_for_type("u32"),
            "expected a whole number from 0 to 4294967295"
        );
        assert_eq!(expected_for_type("boolean"), "expected true or false");
    }
}
