//! What a run prints on stdout, rendered from its typed [`Outcome`]: the JSON document,
//! the human summary (`text`), the monitoring-plugin line (`nagios`) or JUnit XML for CI
//! systems (`junit`). Rendering never
//! touches the store or the disk.

pub mod junit;
pub mod nagios;
pub mod text;

use crate::cli::Format;
use crate::outcome::Outcome;

/// The `--format json` document.
pub fn json(outcome: &Outcome) -> String {
    serde_json::to_string_pretty(outcome).unwrap_or_else(|e| {
        format!(
            "{{\"status\":\"unknown\",\"exit_code\":3,\"error\":{:?}}}",
            e.to_string()
        )
    })
}

/// The `--check-config --format json` document.
pub fn check_config_json(config: &std::path::Path, errors: &[String]) -> String {
    let valid = errors.is_empty();
    let doc = serde_json::json!({
        "valid": valid,
        "errors": errors,
        "status": if valid { "ok" } else { "unknown" },
        "exit_code": if valid { 0 } else { 3 },
        "config": config.display().to_string(),
    });
    serde_json::to_string_pretty(&doc).unwrap_or_default()
}

/// What `--check-config` prints in `format`: (stdout, stderr).
pub fn check_config(
    format: Format,
    config: &std::path::Path,
    errors: &[String],
) -> (String, String) {
    let shown = config.display();
    match (format, errors.first()) {
        (Format::Json, _) => (
            format!("{}\n", check_config_json(config, errors)),
            String::new(),
        ),
        (Format::Nagios, None) => (
            format!("BACKUP OK - config {shown} is valid\n"),
            String::new(),
        ),
        (Format::Nagios, Some(first)) => (
            format!("BACKUP UNKNOWN - invalid config: {first}\n"),
            String::new(),
        ),
        (Format::Text | Format::Junit, None) => {
            (format!("config {shown} is valid\n"), String::new())
        }
        (Format::Text | Format::Junit, Some(_)) => {
            let mut err = format!("invalid config {shown}:\n");
            for e in errors {
                err += &format!("  {e}\n");
            }
            (String::new(), err)
        }
    }
}

/// Bytes for people: `1.5 MiB`.
pub fn human_bytes(n: u64) -> String {
    bytesize::ByteSize(n).display().iec().to_string()
}

/// An error and its causes on one line, as `{e:#}` would say them, less each cause
/// that the text so far already says (an error that quotes its source, a tool's error
/// wrapping the same I/O error): "Permission denied (os error 13)" once, not twice.
pub fn chained(e: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if text.is_empty() || out.contains(&text) {
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&text);
    }
    out
}

/// An age for people: `2d 3h`, `4h 10m`, `7m`.
pub fn human_age(secs: i64) -> String {
    if secs < 0 {
        return "in the future".into();
    }
    let (d, h, m) = (secs / 86400, (secs % 86400) / 3600, (secs % 3600) / 60);
    if d > 0 {
        format!("{d}d {h}h")
    } else if h > 0 {
        format!("{h}h {m}m")
    } else {
        format!("{m}m")
    }
}

#[cfg(test)]
mod tests {
    use super::{chained, human_age};

    #[test]
    fn a_cause_the_message_already_says_is_not_repeated() {
        let io = std::io::Error::from_raw_os_error(13);
        let e = anyhow::Error::new(io).context(format!(
            "cannot create the lock file /x.lock: {}",
            std::io::Error::from_raw_os_error(13)
        ));
        assert_eq!(
            chained(&e),
            "cannot create the lock file /x.lock: Permission denied (os error 13)"
        );
        let e = anyhow::anyhow!("disk full").context("writing the report");
        assert_eq!(chained(&e), "writing the report: disk full");
    }

    #[test]
    fn human_age_units() {
        assert_eq!(human_age(59), "0m");
        assert_eq!(human_age(3700), "1h 1m");
        assert_eq!(human_age(90000), "1d 1h");
    }
}
