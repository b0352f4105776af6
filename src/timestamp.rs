//! A backup's timestamp from its file name (SPEC 3.1, 7). Pure: the zone is passed in.
//!
//! Built-in forms are searched in the base name; the rightmost match wins, the longest
//! form at that position. A match must not touch other digits on either side, so
//! `20261121` inside `1202611219` is not a date. `filename_format` (chrono syntax)
//! replaces the built-in forms; then the leftmost substring that parses wins.

use crate::schedule::resolve_local;
use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime, Utc};
use chrono_tz::Tz;

/// Built-in forms as byte templates: `Y M D h m s` are digits, anything else is literal.
const FORMS: &[&str] = &[
    "YYYY-MM-DDThh:mm:ss",
    "YYYY-MM-DDThh-mm-ss",
    "YYYY-MM-DD_hh-mm-ss",
    "YYYYMMDD_hhmmss",
    "YYYYMMDD-hhmmss",
    "YYYY-MM-DD",
    "YYYYMMDD",
];

fn match_form(name: &[u8], at: usize, form: &str) -> Option<NaiveDateTime> {
    let form = form.as_bytes();
    let slice = name.get(at..at + form.len())?;
    let mut fields = [0u32; 6]; // Y M D h m s
    for (&c, &f) in slice.iter().zip(form) {
        let idx = match f {
            b'Y' => 0,
            b'M' => 1,
            b'D' => 2,
            b'h' => 3,
            b'm' => 4,
            b's' => 5,
            literal => {
                if c != literal {
                    return None;
                }
                continue;
            }
        };
        if !c.is_ascii_digit() {
            return None;
        }
        fields[idx] = fields[idx] * 10 + u32::from(c - b'0');
    }
    let digit_before = at > 0 && name[at - 1].is_ascii_digit();
    let digit_after = name
        .get(at + form.len())
        .is_some_and(|c| c.is_ascii_digit());
    if digit_before || digit_after {
        return None;
    }
    let [y, mo, d, h, mi, s] = fields;
    if !(1970..=2200).contains(&y) {
        return None;
    }
    let date = NaiveDate::from_ymd_opt(y as i32, mo, d)?;
    let time = NaiveTime::from_hms_opt(h, mi, s)?;
    Some(date.and_time(time))
}

/// The naive (zone-less) timestamp in a base name by the built-in forms.
pub fn parse_builtin(base_name: &str) -> Option<NaiveDateTime> {
    let bytes = base_name.as_bytes();
    (0..bytes.len())
        .rev()
        .find_map(|at| FORMS.iter().find_map(|form| match_form(bytes, at, form)))
}

/// The naive timestamp by a chrono format: the leftmost substring that parses (longest there).
pub fn parse_with_format(base_name: &str, format: &str) -> Option<NaiveDateTime> {
    let has_time = ["%H", "%M", "%S", "%T", "%R", "%s", "%I"]
        .iter()
        .any(|f| format.contains(f));
    let bounds: Vec<usize> = base_name
        .char_indices()
        .map(|(i, _)| i)
        .chain([base_name.len()])
        .collect();
    for (si, &start) in bounds.iter().enumerate() {
        for &end in bounds[si + 1..].iter().rev() {
            let candidate = &base_name[start..end];
            let parsed = if has_time {
                NaiveDateTime::parse_from_str(candidate, format).ok()
            } else {
                NaiveDate::parse_from_str(candidate, format)
                    .ok()
                    .map(|d| d.and_time(NaiveTime::MIN))
            };
            if parsed.is_some() {
                return parsed;
            }
        }
    }
    None
}

/// The instant of a backup named `base_name`, or None when the name carries no timestamp.
pub fn from_file_name(base_name: &str, format: Option<&str>, tz: &Tz) -> Option<DateTime<Utc>> {
    let naive = match format {
        Some(f) => parse_with_format(base_name, f),
        None => parse_builtin(base_name),
    }?;
    Some(resolve_local(tz, naive))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(name: &str) -> Option<String> {
        parse_builtin(name).map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string())
    }

    #[test]
    fn every_contract_form_parses() {
        assert_eq!(
            p("db_20261121.sql.gz").as_deref(),
            Some("2026-11-21 00:00:00")
        );
        assert_eq!(
            p("db_2026-11-21.sql.gz").as_deref(),
            Some("2026-11-21 00:00:00")
        );
        assert_eq!(
            p("db_20261121_020304.sql.gz").as_deref(),
            Some("2026-11-21 02:03:04")
        );
        assert_eq!(
            p("db_20261121-020304.sql.gz").as_deref(),
            Some("2026-11-21 02:03:04")
        );
        assert_eq!(
            p("site-2026-11-21T02-03-04.tar.gz").as_deref(),
            Some("2026-11-21 02:03:04")
        );
        assert_eq!(
            p("site-2026-11-21_02-03-04.tar.gz").as_deref(),
            Some("2026-11-21 02:03:04")
        );
        assert_eq!(
            p("site-2026-11-21T02:03:04.tar.gz").as_deref(),
            Some("2026-11-21 02:03:04")
        );
    }

    #[test]
    fn rightmost_match_wins_and_longest_at_that_position() {
        assert_eq!(
            p("copy_20250101_of_20261121.tar").as_deref(),
            Some("2026-11-21 00:00:00")
        );
        assert_eq!(
            p("x_2026-11-21_2026-11-22T10-00-00.tar").as_deref(),
            Some("2026-11-22 10:00:00")
        );
    }

    #[test]
    fn names_that_must_not_parse() {
        assert_eq!(p("backup.tar.gz"), None);
        assert_eq!(p("db_20261399.sql"), None, "month 13");
        assert_eq!(p("db_20260230.sql"), None, "30 February");
        assert_eq!(p("id_1202611219.bin"), None, "digits run on both sides");
        assert_eq!(
            p("db_20261121_250000.sql").as_deref(),
            Some("2026-11-21 00:00:00"),
            "bad time falls back to the date"
        );
        assert_eq!(p("v12345678"), None, "not a plausible year");
        assert_eq!(p("2026-11-3"), None);
        assert_eq!(p(""), None);
    }

    #[test]
    fn leap_day() {
        assert_eq!(p("db_20280229.sql").as_deref(), Some("2028-02-29 00:00:00"));
        assert_eq!(p("db_20270229.sql"), None);
    }

    #[test]
    fn custom_format_leftmost_substring() {
        let t = parse_with_format("backup-21.11.2026-0200.tgz", "%d.%m.%Y-%H%M").unwrap();
        assert_eq!(t.format("%Y-%m-%d %H:%M").to_string(), "2026-11-21 02:00");
        let d = parse_with_format("nightly_21-11-2026.tgz", "%d-%m-%Y").unwrap();
        assert_eq!(d.format("%Y-%m-%d %H:%M").to_string(), "2026-11-21 00:00");
        assert!(parse_with_format("nothing.tgz", "%d-%m-%Y").is_none());
    }

    #[test]
    fn zone_applies_to_naive_time() {
        let berlin = from_file_name("db_20261121_020000.sql", None, &Tz::Europe__Berlin).unwrap();
        assert_eq!(berlin.to_rfc3339(), "2026-11-21T01:00:00+00:00");
    }
}
