//! A backup's timestamp from its file name. Pure: the zone is passed in.
//!
//! Built-in forms are searched in the base name; the rightmost match wins, the longest
//! form at that position. A match must not touch other digits on either side, so
//! `20261121` inside `1202611219` is not a date. A zone written directly after a full
//! time (`Z`, `+05:00`, `+0500`, `-05:00`, `-0500`) is honoured; any other time is in the
//! configured zone. `filename_format` (chrono syntax) replaces the built-in forms; then
//! the leftmost substring that parses wins, and a `%z` in it is honoured likewise.

use crate::config::TimestampMode;
use crate::schedule::resolve_local;
use chrono::{DateTime, FixedOffset, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;

/// Built-in forms as byte templates: `Y M D h m s` are digits, anything else is literal.
/// At one position the first form that matches wins, so longer forms come first.
const FORMS: &[&str] = &[
    "YYYY-MM-DDThh:mm:ss",
    "YYYY-MM-DDThh-mm-ss",
    "YYYY-MM-DD_hh-mm-ss",
    "YYYY-MM-DD_hh-mm",
    "YYYY-MM-DDThh-mm",
    "YYYY-MM-DDThh:mm",
    "YYYYMMDD_hhmmss",
    "YYYYMMDD-hhmmss",
    // ISO 8601 basic, as `date -u +%Y%m%dT%H%M%SZ` writes it.
    "YYYYMMDDThhmmss",
    "YYYY-MM-DD_hhmm",
    "YYYY-MM-DD-hhmm",
    "YYYYMMDD_hhmm",
    "YYYYMMDD-hhmm",
    "YYYY-MM-DD",
    "YYYYMMDD",
];

/// Where a backup's timestamp came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimestampSource {
    /// A built-in name form, as its template (`YYYYMMDD-hhmm`: lower case is the time).
    NameForm(&'static str),
    /// The location's `filename_format`.
    FilenameFormat,
    /// The file's modification time: the name carries no timestamp, or `timestamp: mtime`.
    Mtime,
    /// A snapshot's or archive's time, as its backup tool lists it.
    Repository,
}

impl TimestampSource {
    /// The name form as people write it: `YYYYMMDD-HHMM`.
    fn form_text(form: &str) -> String {
        form.replace("hh", "HH")
            .replace("mm", "MM")
            .replace("ss", "SS")
    }

    /// Machine-readable: `name:YYYYMMDD-HHMM`, `filename_format` or `mtime`.
    pub fn code(self) -> String {
        match self {
            TimestampSource::NameForm(form) => format!("name:{}", Self::form_text(form)),
            TimestampSource::FilenameFormat => "filename_format".into(),
            TimestampSource::Mtime => "mtime".into(),
            TimestampSource::Repository => "repository".into(),
        }
    }

    /// For people: `the name (YYYYMMDD-HHMM)`, `filename_format`, `the mtime`.
    pub fn describe(self) -> String {
        match self {
            TimestampSource::NameForm(form) => format!("the name ({})", Self::form_text(form)),
            TimestampSource::FilenameFormat => "the name (filename_format)".into(),
            TimestampSource::Mtime => "the mtime".into(),
            TimestampSource::Repository => "the repository's listing".into(),
        }
    }

    /// As the store records it: `filename`, `mtime` or `repository`.
    pub fn stored(self) -> &'static str {
        match self {
            TimestampSource::Mtime => "mtime",
            TimestampSource::Repository => "repository",
            _ => "filename",
        }
    }
}

/// A timestamp as written in a file name: the wall-clock time, and the zone offset when
/// the name states one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NameStamp {
    pub local: NaiveDateTime,
    pub offset: Option<FixedOffset>,
    /// Which form matched: a built-in template, or None for `filename_format`.
    pub form: Option<&'static str>,
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

fn match_form(name: &[u8], at: usize, form_text: &'static str) -> Option<NameStamp> {
    let form = form_text.as_bytes();
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
    // `10-15` of `10-15-99` is not a time to the minute: its seconds are wrong, so the
    // name is read by its date alone, as for any other impossible time.
    let minutes_only = form.contains(&b'm') && !form.contains(&b's');
    if minutes_only
        && let (Some(&sep), Some(&next), Some(after)) = (
            form.get(form.len() - 3),
            name.get(at + form.len()),
            name.get(at + form.len() + 1),
        )
        && !sep.is_ascii_alphanumeric()
        && sep != b'_'
        && next == sep
        && after.is_ascii_digit()
    {
        return None;
    }
    let [y, mo, d, h, mi, s] = fields;
    if !(1970..=2200).contains(&y) {
        return None;
    }
    let date = NaiveDate::from_ymd_opt(y as i32, mo, d)?;
    let time = NaiveTime::from_hms_opt(h, mi, s)?;
    // Only a full time with seconds, or an ISO 8601 `T` time to the minute, may carry a
    // zone: after a bare date or `YYYYMMDD-HHMM`, `-05` or `-0500` is far more likely a
    // counter or an hour than an offset.
    let offset = if form.contains(&b's') || form.contains(&b'T') && form.contains(&b'm') {
        zone_at(name, at + form.len())
    } else {
        None
    };
    Some(NameStamp {
        local: date.and_time(time),
        offset,
        form: Some(form_text),
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
                        form: None,
                    })
            } else if has_time {
                NaiveDateTime::parse_from_str(candidate, format)
                    .ok()
                    .map(|local| NameStamp {
                        local,
                        offset: None,
                        form: None,
                    })
            } else {
                NaiveDate::parse_from_str(candidate, format)
                    .ok()
                    .map(|d| NameStamp {
                        local: d.and_time(NaiveTime::MIN),
                        offset: None,
                        form: None,
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
    from_file_name_with_source(base_name, format, tz).map(|(t, _)| t)
}

/// [`from_file_name`] with which form (or `filename_format`) it was read by.
pub fn from_file_name_with_source(
    base_name: &str,
    format: Option<&str>,
    tz: &Tz,
) -> Option<(DateTime<Utc>, TimestampSource)> {
    let stamp = match format {
        Some(f) => parse_with_format_stamp(base_name, f),
        None => parse_builtin_stamp(base_name),
    }?;
    let source = match stamp.form {
        Some(form) => TimestampSource::NameForm(form),
        None => TimestampSource::FilenameFormat,
    };
    Some((stamp.instant(tz), source))
}

/// A backup's timestamp by the location's settings: the name (unless `timestamp: mtime`),
/// else the mtime.
pub fn derive(
    mode: TimestampMode,
    base_name: &str,
    format: Option<&str>,
    mtime: DateTime<Utc>,
    tz: &Tz,
) -> (DateTime<Utc>, TimestampSource) {
    if mode != TimestampMode::Mtime
        && let Some(found) = from_file_name_with_source(base_name, format, tz)
    {
        return found;
    }
    (mtime, TimestampSource::Mtime)
}

/// Bumped whenever the built-in forms read some name differently, so that timestamps
/// recorded by an older reading are derived again (see [`settings_fingerprint`]).
const FORMS_VERSION: u32 = 2;

/// The settings a location's timestamps were derived with. When it differs from the one
/// recorded with the backups, their timestamps are derived again.
pub fn settings_fingerprint(mode: TimestampMode, format: Option<&str>, tz: &Tz) -> String {
    format!(
        "forms={FORMS_VERSION};timestamp={mode:?};filename_format={format:?};timezone={}",
        tz.name()
    )
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
    fn forms_to_the_minute_read_seconds_as_zero() {
        let cases = [
            ("www-20261202_0315.tar.gz", "name:YYYYMMDD_HHMM"),
            ("www-20261202-0315.tar.gz", "name:YYYYMMDD-HHMM"),
            ("www-2026-12-02_03-15.tar.gz", "name:YYYY-MM-DD_HH-MM"),
            ("www-2026-12-02T03-15.tar.gz", "name:YYYY-MM-DDTHH-MM"),
            ("www-2026-12-02T03:15.tar.gz", "name:YYYY-MM-DDTHH:MM"),
            ("www-2026-12-02_0315.tar.gz", "name:YYYY-MM-DD_HHMM"),
            ("www-2026-12-02-0315.tar.gz", "name:YYYY-MM-DD-HHMM"),
        ];
        for (name, source) in cases {
            assert_eq!(p(name).as_deref(), Some("2026-12-02 03:15:00"), "{name}");
            let (_, got) = from_file_name_with_source(name, None, &Tz::UTC).unwrap();
            assert_eq!(got.code(), source, "{name}");
        }
        // The forms with seconds still win where they match.
        let (_, got) =
            from_file_name_with_source("db_20261202_031542.sql", None, &Tz::UTC).unwrap();
        assert_eq!(got.code(), "name:YYYYMMDD_HHMMSS");
        assert_eq!(
            p("db_20261202_031542.sql").as_deref(),
            Some("2026-12-02 03:15:42")
        );
        // The end of a day.
        assert_eq!(
            p("db_20261202-2359.sql").as_deref(),
            Some("2026-12-02 23:59:00")
        );
        assert_eq!(
            p("db_20261202-0000.sql").as_deref(),
            Some("2026-12-02 00:00:00")
        );
    }

    #[test]
    fn counters_that_are_no_time_leave_the_date() {
        let cases = [
            // Not a time of day: hour 24+ or minute 60+.
            "backup-20261202-9999.tar.gz",
            "backup-20261202_2460.tar.gz",
            "backup-20261202-2400.tar.gz",
            "backup-2026-12-02-7531.tar.gz",
            "backup-2026-12-02_1260.tar.gz",
            // Not four digits: a 5- or 6-digit build number, a short counter.
            "backup-20261202-00042.tar.gz",
            "backup-20261202-999999.tar.gz",
            "backup-2026-12-02-004711x.tar.gz",
            "backup-20261202-001.tar.gz",
            "backup-2026-12-02-1.tar.gz",
            // A time to the minute whose seconds are impossible is no time at all.
            "site-2026-12-02_03-15-99.tar",
            "site-2026-12-02T03:15:61.tar",
        ];
        for name in cases {
            assert_eq!(p(name).as_deref(), Some("2026-12-02 00:00:00"), "{name}");
            let (_, source) = from_file_name_with_source(name, None, &Tz::UTC).unwrap();
            assert!(
                matches!(source.code().as_str(), "name:YYYYMMDD" | "name:YYYY-MM-DD"),
                "{name}: {source:?}"
            );
        }
        // A four-digit counter that is a valid time is read as one, on the same day.
        assert_eq!(
            p("backup-20261202-0001.tar.gz").as_deref(),
            Some("2026-12-02 00:01:00")
        );
    }

    #[test]
    fn a_zone_after_an_iso_time_to_the_minute() {
        let t = from_file_name("a_2026-11-14T10:15Z.x", None, &Tz::Europe__Berlin).unwrap();
        assert_eq!(t.to_rfc3339(), "2026-11-14T10:15:00+00:00");
        let t = from_file_name("a_2026-11-14T10:15+05:00.x", None, &Tz::UTC).unwrap();
        assert_eq!(t.to_rfc3339(), "2026-11-14T05:15:00+00:00");
        // `-0001` after `YYYYMMDD-HHMM` is a counter, not a zone.
        let t = from_file_name("db_20261114-1015-0100.sql", None, &Tz::UTC).unwrap();
        assert_eq!(t.to_rfc3339(), "2026-11-14T10:15:00+00:00");
    }

    #[test]
    fn derive_by_mode_and_the_fingerprint() {
        let mtime = Utc.with_ymd_and_hms(2026, 12, 2, 4, 0, 0).unwrap();
        let (t, source) = derive(
            TimestampMode::Auto,
            "www-20261202-0315.tgz",
            None,
            mtime,
            &Tz::UTC,
        );
        assert_eq!(
            (t.to_rfc3339().as_str(), source.stored()),
            ("2026-12-02T03:15:00+00:00", "filename")
        );
        let (t, source) = derive(
            TimestampMode::Mtime,
            "www-20261202-0315.tgz",
            None,
            mtime,
            &Tz::UTC,
        );
        assert_eq!((t, source), (mtime, TimestampSource::Mtime));
        let (_, source) = derive(TimestampMode::Auto, "x.tgz", None, mtime, &Tz::UTC);
        assert_eq!(source, TimestampSource::Mtime);
        let (t, source) = derive(
            TimestampMode::Filename,
            "www-02.12.2026.tgz",
            Some("%d.%m.%Y"),
            mtime,
            &Tz::UTC,
        );
        assert_eq!(
            (t.to_rfc3339().as_str(), source),
            ("2026-12-02T00:00:00+00:00", TimestampSource::FilenameFormat)
        );
        let a = settings_fingerprint(TimestampMode::Auto, None, &Tz::UTC);
        assert_ne!(
            a,
            settings_fingerprint(TimestampMode::Mtime, None, &Tz::UTC)
        );
        assert_ne!(
            a,
            settings_fingerprint(TimestampMode::Auto, Some("%Y%m%d"), &Tz::UTC)
        );
        assert_ne!(
            a,
            settings_fingerprint(TimestampMode::Auto, None, &Tz::Europe__Berlin)
        );
        assert_eq!(a, settings_fingerprint(TimestampMode::Auto, None, &Tz::UTC));
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
            ("backup-2026-11-21-2500.tar", "2026-11-20T23:00:00+00:00"),
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
