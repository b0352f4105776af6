//! A backup's timestamp from its file name. Pure: the zone is passed in.
//!
//! Built-in forms are searched in the base name; the rightmost match wins, the longest
//! form at that position. A match must not touch other digits on either side, so
//! `20261121` inside `1202611219` is not a date. A zone written directly after a full
//! time (`Z`, `+05:00`, `+0500`, `-05:00`, `-0500`) is honoured; any other time is in the
//! configured zone. `filename_format` (chrono syntax) replaces the built-in forms; then
//! the leftmost substring that parses wins, and a `%z` in it is honoured likewise.

use crate::schedule::resolve_local;
use chrono::{DateTime, FixedOffset, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;

/// Built-in forms as byte templates: `Y M D h m s` are digits, anything else is literal.
const FORMS: &[&str] = &[
    "YYYY-MM-DDThh:mm:ss",
    "YYYY-MM-DDThh-mm-ss",
    "YYYY-MM-DD_hh-mm-ss",
    "YYYYMMDD_hhmmss",
    "YYYYMMDD-hhmmss",
    // ISO 8601 basic, as `date -u +%Y%m%dT%H%M%SZ` writes it.
    "YYYYMMDDThhmmss",
    "YYYY-MM-DD",
    "YYYYMMDD",
];

/// A timestamp as written in a file name: the wall-clock time, and the zone offset when
/// the name states one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NameStamp {
    pub local: NaiveDateTime,
    pub offset: Option<FixedOffset>,
}

impl NameStamp {
    /// The instant: by the stated offset, else as a wall-clock time in `tz`.
    pub fn instant(self, tz: &Tz) -> DateTime<Utc> {
        self.offset
            .and_then(|o| o.from_local_datetime(&self.local).single())
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or_else(|| resolve_local(tz, self.local))
    }
}

/// A zone designator starting at `name[at]`: `Z`, or `+`/`-` followed by `HH:MM` or
/// `HHMM`, with nothing alphanumeric (resp. no digit) running on after it so that `Zip`
/// or `-05001` are not zones. Offsets beyond ±14:00 or with minutes other than 00, 15,
/// 30, 45 (no zone uses them) are not zones either: `-0001` is more likely a counter.
fn zone_at(name: &[u8], at: usize) -> Option<FixedOffset> {
    let rest = name.get(at..)?;
    if rest.first() == Some(&b'Z') {
        let run_on = rest.get(1).is_some_and(|c| c.is_ascii_alphanumeric());
        return (!run_on).then(|| FixedOffset::east_opt(0)).flatten();
    }
    let sign = match rest.first()? {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    let (digits, len) = match rest.get(1..6)? {
        [h1, h2, b':', m1, m2] => ([*h1, *h2, *m1, *m2], 6),
        _ => (rest.get(1..5)?.try_into().ok()?, 5),
    };
    if !digits.iter().all(u8::is_ascii_digit) || rest.get(len).is_some_and(u8::is_ascii_digit) {
        return None;
    }
    let value = |pair: &[u8]| i32::from(pair[0] - b'0') * 10 + i32::from(pair[1] - b'0');
    let (hours, minutes) = (value(&digits[..2]), value(&digits[2..]));
    if minutes % 15 != 0 || hours * 60 + minutes > 14 * 60 {
        return None;
    }
    FixedOffset::east_opt(sign * (hours * 3600 + minutes * 60))
}

fn match_form(name: &[u8], at: usize, form: &str) -> Option<NameStamp> {
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
    // Only a full time with seconds may carry a zone: after a bare date, `-05` or `-0500`
    // is far more likely a counter or an hour than an offset.
    let offset = if form.contains(&b's') {
        zone_at(name, at + form.len())
    } else {
        None
    };
    Some(NameStamp {
        local: date.and_time(time),
        offset,
    })
}

/// The timestamp in a base name by the built-in forms, with its zone when it states one.
pub fn parse_builtin_stamp(base_name: &str) -> Option<NameStamp> {
    let bytes = base_name.as_bytes();
    (0..bytes.len())
        .rev()
        .find_map(|at| FORMS.iter().find_map(|form| match_form(bytes, at, form)))
}

/// The wall-clock time in a base name by the built-in forms (a stated zone is dropped).
pub fn parse_builtin(base_name: &str) -> Option<NaiveDateTime> {
    parse_builtin_stamp(base_name).map(|s| s.local)
}

/// The wall-clock time by a chrono format: the leftmost substring that parses (longest
/// there). A stated zone is dropped; see [`parse_with_format_stamp`].
pub fn parse_with_format(base_name: &str, format: &str) -> Option<NaiveDateTime> {
    parse_with_format_stamp(base_name, format).map(|s| s.local)
}

/// [`parse_with_format`] with the zone, when the format has an offset (`%z`, `%:z`, `%#z`).
pub fn parse_with_format_stamp(base_name: &str, format: &str) -> Option<NameStamp> {
    let has_time = ["%H", "%M", "%S", "%T", "%R", "%s", "%I"]
        .iter()
        .any(|f| format.contains(f));
    let has_offset = ["%z", "%:z", "%::z", "%#z"]
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
            let parsed = if has_time && has_offset {
                DateTime::parse_from_str(candidate, format)
                    .ok()
                    .map(|t| NameStamp {
                        local: t.naive_local(),
                        offset: Some(*t.offset()),
                    })
            } else if has_time {
                NaiveDateTime::parse_from_str(candidate, format)
                    .ok()
                    .map(|local| NameStamp {
                        local,
                        offset: None,
                    })
            } else {
                NaiveDate::parse_from_str(candidate, format)
                    .ok()
                    .map(|d| NameStamp {
                        local: d.and_time(NaiveTime::MIN),
                        offset: None,
                    })
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
    let stamp = match format {
        Some(f) => parse_with_format_stamp(base_name, f),
        None => parse_builtin_stamp(base_name),
    }?;
    Some(stamp.instant(tz))
}

#[cfg(test)]
mod tests {

    #[test]
    fn iso_8601_basic_with_and_without_a_zone() {
        let stamp = parse_builtin_stamp("db_20261117T020000Z.sql").unwrap();
        assert_eq!(
            stamp.local,
            NaiveDate::from_ymd_opt(2026, 11, 17)
                .unwrap()
                .and_hms_opt(2, 0, 0)
                .unwrap()
        );
        assert_eq!(stamp.offset, FixedOffset::east_opt(0));
        let stamp = parse_builtin_stamp("db_20261117T020000.sql").unwrap();
        assert_eq!(
            stamp.local.format("%F %T").to_string(),
            "2026-11-17 02:00:00"
        );
        assert_eq!(stamp.offset, None);
        // A date followed by a T that is no time keeps meaning the date.
        let stamp = parse_builtin_stamp("db_20261117Tue.sql").unwrap();
        assert_eq!(
            stamp.local.format("%F %T").to_string(),
            "2026-11-17 00:00:00"
        );
    }
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

    fn utc(name: &str, tz: Tz) -> Option<String> {
        from_file_name(name, None, &tz).map(|t| t.to_rfc3339())
    }

    #[test]
    fn a_zone_after_a_full_time_is_honoured() {
        let cases = [
            ("a_2026-11-14T10:15:00+05:00.x", "2026-11-14T05:15:00+00:00"),
            ("a_2026-11-14T10:15:00+0500.x", "2026-11-14T05:15:00+00:00"),
            ("a_2026-11-14T10:15:00-05:00.x", "2026-11-14T15:15:00+00:00"),
            ("a_2026-11-14T10:15:00Z.x", "2026-11-14T10:15:00+00:00"),
            ("a_2026-11-14T10:15:00Z", "2026-11-14T10:15:00+00:00"),
            ("db_20261114_101500+0530.sql", "2026-11-14T04:45:00+00:00"),
            ("db_20261114-101500-0800.sql", "2026-11-14T18:15:00+00:00"),
            (
                "x_2026-11-14T10-15-00+01:00.tar",
                "2026-11-14T09:15:00+00:00",
            ),
            (
                "x_2026-11-14_10-15-00Z_full.tar",
                "2026-11-14T10:15:00+00:00",
            ),
        ];
        for (name, want) in cases {
            // Berlin is +01:00 in November: a stated zone must win over it.
            assert_eq!(
                utc(name, Tz::Europe__Berlin).as_deref(),
                Some(want),
                "{name}"
            );
        }
    }

    #[test]
    fn what_only_looks_like_a_zone_keeps_its_meaning() {
        let berlin = Tz::Europe__Berlin;
        let cases = [
            // A date is not a full time: `-05` is an hour or a counter.
            ("backup-2026-11-21-05.tar", "2026-11-20T23:00:00+00:00"),
            ("backup-2026-11-21-0500.tar", "2026-11-20T23:00:00+00:00"),
            ("site_2026-11-21.tar.gz", "2026-11-20T23:00:00+00:00"),
            ("db_20261121Z.sql", "2026-11-20T23:00:00+00:00"),
            // After a full time, but not an offset.
            ("db_20261121_020000.sql.gz", "2026-11-21T01:00:00+00:00"),
            ("x_2026-11-21T02-00-00.tar", "2026-11-21T01:00:00+00:00"),
            ("db_20261121_020000-1.sql", "2026-11-21T01:00:00+00:00"),
            ("db_20261121_020000-05.sql", "2026-11-21T01:00:00+00:00"),
            ("db_20261121_020000-0001.sql", "2026-11-21T01:00:00+00:00"),
            ("db_20261121_020000-05001.sql", "2026-11-21T01:00:00+00:00"),
            ("db_20261121_020000+15:00.sql", "2026-11-21T01:00:00+00:00"),
            ("db_20261121_020000+05:0.sql", "2026-11-21T01:00:00+00:00"),
            ("db_20261121_020000Zip.sql", "2026-11-21T01:00:00+00:00"),
            ("db_20261121_020000z.sql", "2026-11-21T01:00:00+00:00"),
        ];
        for (name, want) in cases {
            assert_eq!(utc(name, berlin).as_deref(), Some(want), "{name}");
        }
    }

    #[test]
    fn a_zone_does_not_change_which_form_matches() {
        assert_eq!(
            p("a_2026-11-14T10:15:00+05:00.x").as_deref(),
            Some("2026-11-14 10:15:00")
        );
        assert_eq!(
            p("x_2026-11-21T02:00:00+01:00_2026-11-22.tar").as_deref(),
            Some("2026-11-22 00:00:00"),
            "the rightmost match still wins"
        );
    }

    #[test]
    fn custom_format_with_an_offset() {
        let t = from_file_name(
            "db-14.11.2026-1015+0500.tgz",
            Some("%d.%m.%Y-%H%M%z"),
            &Tz::Europe__Berlin,
        )
        .unwrap();
        assert_eq!(t.to_rfc3339(), "2026-11-14T05:15:00+00:00");
        let local =
            from_file_name("db-14.11.2026-1015.tgz", Some("%d.%m.%Y-%H%M"), &Tz::UTC).unwrap();
        assert_eq!(local.to_rfc3339(), "2026-11-14T10:15:00+00:00");
    }

    #[test]
    fn zone_applies_to_naive_time() {
        let berlin = from_file_name("db_20261121_020000.sql", None, &Tz::Europe__Berlin).unwrap();
        assert_eq!(berlin.to_rfc3339(), "2026-11-21T01:00:00+00:00");
    }
}
