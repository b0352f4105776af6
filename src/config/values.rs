//! Typed config values that parse themselves while the YAML is read, so a bad value is
//! reported with its key path and line by the YAML crate: sizes, durations, percentages,
//! fractions, time zones. Text holding `${VAR}` waits in a [`Raw`] until the environment
//! is known, and is then parsed the same way.

use super::env::Env;
use super::interpolate::{self, Interpolated};
use chrono_tz::Tz;
use serde::Deserialize;
use serde::de::{self, Deserializer, Visitor};
use std::fmt;
use std::time::Duration;

/// A scalar as the YAML typed it (text after `${VAR}` interpolation, when it had any).
#[derive(Debug, Clone, PartialEq)]
pub enum Scalar {
    Bool(bool),
    Int(i128),
    Float(f64),
    Text(String),
}

impl fmt::Display for Scalar {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            Scalar::Bool(b) => write!(f, "{b}"),
            Scalar::Int(v) => write!(f, "{v}"),
            Scalar::Float(v) => write!(f, "{v}"),
            Scalar::Text(t) => f.write_str(&shown(t)),
        }
    }
}

/// The longest piece of a configured value an error message quotes: a 2 MB value is
/// shown by its start and its length, never in full.
const SHOWN_CHARS: usize = 80;

/// `value` as an error message may quote it: at most [`SHOWN_CHARS`] characters, with
/// the total length when it was cut.
pub fn shown(value: &str) -> std::borrow::Cow<'_, str> {
    match value.char_indices().nth(SHOWN_CHARS) {
        None => std::borrow::Cow::Borrowed(value),
        Some((cut, _)) => std::borrow::Cow::Owned(format!(
            "{}… ({} characters in all)",
            &value[..cut],
            value.chars().count()
        )),
    }
}

/// A config value that reads itself from one YAML scalar. Text reaches it after `${VAR}`
/// interpolation, so `min_count: "${MIN}"` and `min_count: 3` mean the same.
pub trait FromScalar: Sized {
    /// Completes serde's "invalid type: …, expected …" when a list or mapping stands
    /// where this value belongs.
    fn expecting() -> String {
        "a single value".into()
    }
    fn from_scalar(value: Scalar) -> Result<Self, String>;
}

/// A value as written in the file: parsed already, text holding `${VAR}` that is parsed
/// once the environment is known (see `resolve`), or a value that does not parse, kept
/// so that every bad value is reported at once, not only the first. Both remember where
/// they stood.
#[derive(Debug, Clone, PartialEq)]
pub enum Raw<T> {
    Value(T),
    Deferred {
        text: String,
        line: u32,
        column: u32,
    },
    Invalid {
        message: String,
        line: u32,
        column: u32,
    },
}

impl<T> Raw<T> {
    /// The value without consulting any environment: deferred text gives `None`.
    pub fn literal(&self) -> Option<&T> {
        match self {
            Raw::Value(v) => Some(v),
            Raw::Deferred { .. } | Raw::Invalid { .. } => None,
        }
    }
}

impl<T> From<T> for Raw<T> {
    fn from(value: T) -> Self {
        Raw::Value(value)
    }
}

impl<T: FromScalar> Raw<T> {
    /// The value, interpolating deferred text with `env`. The error is the user's
    /// message and, for deferred text, its line and column.
    pub fn resolve(self, env: &Env) -> Result<T, (String, Option<(u32, u32)>)> {
        self.resolve_with(env, interpolate::expand)
    }

    /// As [`Raw::resolve`], for a URL (see [`interpolate::expand_url`]).
    pub fn resolve_url(self, env: &Env) -> Result<T, (String, Option<(u32, u32)>)> {
        self.resolve_with(env, interpolate::expand_url)
    }

    fn resolve_with(
        self,
        env: &Env,
        expand: fn(&str, &Env) -> Interpolated,
    ) -> Result<T, (String, Option<(u32, u32)>)> {
        match self {
            Raw::Value(v) => Ok(v),
            Raw::Deferred { text, line, column } => {
                let at = (line > 0).then_some((line, column));
                match expand(&text, env) {
                    Interpolated::Ok(s) => T::from_scalar(Scalar::Text(s)).map_err(|e| (e, at)),
                    Interpolated::Undefined(var) => Err((interpolate::undefined_message(&var), at)),
                    Interpolated::NotUtf8(var) => Err((interpolate::not_utf8_message(&var), at)),
                }
            }
            Raw::Invalid {
                message,
                line,
                column,
            } => Err((message, (line > 0).then_some((line, column)))),
        }
    }
}

/// One scalar of any YAML type, uninterpolated; a list or mapping where the scalar
/// belongs is the user's message saying so.
struct AnyScalar<T>(Result<Scalar, String>, std::marker::PhantomData<T>);

impl<'de, T: FromScalar> Deserialize<'de> for AnyScalar<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V(String);
        impl<'de> Visitor<'de> for V {
            type Value = Result<Scalar, String>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str(&self.0)
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
                Ok(Ok(Scalar::Bool(v)))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
                Ok(Ok(Scalar::Int(v.into())))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
                Ok(Ok(Scalar::Int(v.into())))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
                Ok(Ok(Scalar::Float(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Ok(Scalar::Text(v.to_string())))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(Err(format!("expected {}, got an empty value", self.0)))
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                while seq.next_element::<de::IgnoredAny>()?.is_some() {}
                Ok(Err(format!("expected {}, not a list", self.0)))
            }
            fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                while map
                    .next_entry::<de::IgnoredAny, de::IgnoredAny>()?
                    .is_some()
                {}
                Ok(Err(format!("expected {}, not a mapping", self.0)))
            }
        }
        d.deserialize_any(V(T::expecting()))
            .map(|s| AnyScalar(s, std::marker::PhantomData))
    }
}

impl<'de, T: FromScalar> Deserialize<'de> for Raw<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let spanned = serde_saphyr::Spanned::<AnyScalar<T>>::deserialize(d)?;
        let line = spanned.referenced.line() as u32;
        let column = spanned.referenced.column() as u32;
        Ok(match spanned.value.0 {
            Ok(Scalar::Text(text)) if text.contains('$') => Raw::Deferred { text, line, column },
            Err(message) => Raw::Invalid {
                message,
                line,
                column,
            },
            Ok(value) => match T::from_scalar(value) {
                Ok(v) => Raw::Value(v),
                Err(message) => Raw::Invalid {
                    message,
                    line,
                    column,
                },
            },
        })
    }
}

/// A scalar (string, integer or float) as text, whole.
pub fn scalar_text(value: Scalar) -> Result<String, String> {
    match value {
        Scalar::Bool(b) => Err(format!("expected a string or a number, got `{b}`")),
        Scalar::Text(t) => Ok(t),
        other => Ok(other.to_string()),
    }
}

impl FromScalar for String {
    fn expecting() -> String {
        "a string".into()
    }
    fn from_scalar(value: Scalar) -> Result<Self, String> {
        Ok(match value {
            Scalar::Text(t) => t,
            other => other.to_string(),
        })
    }
}

fn whole_number_expected(min: i128, max: i128) -> String {
    format!("a whole number from {min} to {max}")
}

/// A whole number in `min..=max`: a YAML integer, or text that is one.
fn whole_number_of(value: &Scalar, min: i128, max: i128) -> Result<i128, String> {
    let number = match value {
        Scalar::Int(v) => Some(*v),
        Scalar::Text(t) => t.trim().parse::<i128>().ok(),
        Scalar::Bool(_) | Scalar::Float(_) => None,
    };
    match number {
        Some(v) if (min..=max).contains(&v) => Ok(v),
        _ => Err(format!(
            "expected {}, got `{value}`",
            whole_number_expected(min, max)
        )),
    }
}

/// A finite number in `min..=max`, from a YAML number or text.
fn real_number_of(value: &Scalar, min: f64, max: f64, example: &str) -> Result<f64, String> {
    let number = match value {
        Scalar::Int(v) => Some(*v as f64),
        Scalar::Float(v) => Some(*v),
        Scalar::Text(t) => t.trim().parse::<f64>().ok(),
        Scalar::Bool(_) => None,
    };
    match number {
        Some(v) if v.is_finite() && (min..=max).contains(&v) => Ok(v),
        _ => Err(format!(
            "expected a number from {min} to {max}, e.g. {example}, got `{value}`"
        )),
    }
}

/// A switch: a YAML boolean, or text that reads as one (the same spellings a plain YAML
/// scalar accepts: true/false, yes/no, on/off).
impl FromScalar for bool {
    fn expecting() -> String {
        "true or false".into()
    }
    fn from_scalar(value: Scalar) -> Result<Self, String> {
        let switch = match &value {
            Scalar::Bool(b) => Some(*b),
            Scalar::Text(t) => match t.trim().to_ascii_lowercase().as_str() {
                "true" | "yes" | "y" | "on" => Some(true),
                "false" | "no" | "n" | "off" => Some(false),
                _ => None,
            },
            Scalar::Int(_) | Scalar::Float(_) => None,
        };
        switch.ok_or_else(|| format!("expected true or false, got `{value}`"))
    }
}

/// A `u32` count (0 allowed).
impl FromScalar for u32 {
    fn expecting() -> String {
        whole_number_expected(0, u32::MAX.into())
    }
    fn from_scalar(value: Scalar) -> Result<Self, String> {
        whole_number_of(&value, 0, u32::MAX.into()).map(|v| v as u32)
    }
}

/// A TCP port (`alerts.email.smtp_port`); 0 is refused by validation with its own advice.
impl FromScalar for u16 {
    fn expecting() -> String {
        whole_number_expected(0, u16::MAX.into())
    }
    fn from_scalar(value: Scalar) -> Result<Self, String> {
        whole_number_of(&value, 0, u16::MAX.into()).map(|v| v as u16)
    }
}

/// A byte count: `512`, `10KiB`, `5MB`, `2GiB` (KB/MB/GB/TB are powers of 1000).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Size(pub u64);

impl Size {
    pub fn parse(s: &str) -> Result<Size, String> {
        let t = s.trim();
        if t.is_empty() {
            return Err("empty size; write e.g. 512, 10KiB, 5MB or 2GiB".into());
        }
        if t.starts_with('-') {
            return Err(format!("size `{}` is negative", shown(t)));
        }
        t.parse::<bytesize::ByteSize>()
            .map(|b| Size(b.as_u64()))
            .map_err(|_| {
                format!(
                    "`{}` is not a size; write e.g. 512, 10KiB, 5MB or 2GiB",
                    shown(t)
                )
            })
    }
}

impl FromScalar for Size {
    fn from_scalar(value: Scalar) -> Result<Self, String> {
        Size::parse(&scalar_text(value)?)
    }
}

/// The longest duration a config may hold: beyond it a value is a typo, not a policy
/// (and would overflow calendar arithmetic).
const MAX_DURATION: Duration = Duration::from_secs(100 * 366 * 86400);

/// A duration: `90s`, `15m`, `4h`, `2d`, `1w`, combinable as `1h30m`. A bare number is seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct DurationValue(pub Duration);

impl DurationValue {
    pub fn parse(s: &str) -> Result<DurationValue, String> {
        let d = Self::parse_any(s)?;
        if d.0 > MAX_DURATION {
            return Err(format!(
                "`{}` is longer than 100 years; no schedule, grace or cooldown needs that",
                shown(s.trim())
            ));
        }
        Ok(d)
    }

    fn parse_any(s: &str) -> Result<DurationValue, String> {
        let t = s.trim();
        if t.starts_with('-') {
            return Err(format!("duration `{}` is negative", shown(t)));
        }
        if let Ok(secs) = t.parse::<u64>() {
            return Ok(DurationValue(Duration::from_secs(secs)));
        }
        // humantime reads `M` as months and `m` as minutes; the contract's units are s m h d w.
        if t.chars().any(|c| c.is_ascii_uppercase()) {
            return Err(format!(
                "`{}` is not a duration; units are s, m, h, d, w (e.g. 90s, 15m, 4h, 1h30m)",
                shown(t)
            ));
        }
        humantime::parse_duration(t)
            .map(DurationValue)
            .map_err(|_| {
                format!(
                    "`{}` is not a duration; units are s, m, h, d, w (e.g. 90s, 15m, 4h, 1h30m)",
                    shown(t)
                )
            })
    }

    pub fn as_chrono(self) -> chrono::Duration {
        chrono::Duration::from_std(self.0).unwrap_or(chrono::Duration::MAX)
    }
}

impl FromScalar for DurationValue {
    fn from_scalar(value: Scalar) -> Result<Self, String> {
        DurationValue::parse(&scalar_text(value)?)
    }
}

/// A percentage `50%` (stored as a fraction 0.5), accepted only where the key allows one.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Percent(pub f64);

fn parse_percent(t: &str) -> Option<Result<f64, String>> {
    let num = t.strip_suffix('%')?;
    Some(match num.trim().parse::<f64>() {
        Ok(v) if (0.0..=100.0).contains(&v) => Ok(v / 100.0),
        Ok(_) => Err(format!("`{}` is outside 0%..100%", shown(t))),
        Err(_) => Err(format!(
            "`{}` is not a percentage; write e.g. 50%",
            shown(t)
        )),
    })
}

impl FromScalar for Percent {
    fn from_scalar(value: Scalar) -> Result<Self, String> {
        let text = scalar_text(value)?;
        let t = text.trim();
        match parse_percent(t) {
            Some(r) => r.map(Percent),
            None => match t.parse::<f64>() {
                Ok(v) if (0.0..=1.0).contains(&v) => Ok(Percent(v)),
                _ => Err(format!(
                    "`{}` is not a percentage; write e.g. 50% (or a fraction 0..1)",
                    shown(t)
                )),
            },
        }
    }
}

/// `min_free_space`: a percentage of the filesystem or an absolute size.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum SizeOrPercent {
    Percent(f64),
    Size(u64),
}

impl FromScalar for SizeOrPercent {
    fn from_scalar(value: Scalar) -> Result<Self, String> {
        let text = scalar_text(value)?;
        let t = text.trim();
        match parse_percent(t) {
            Some(r) => r.map(SizeOrPercent::Percent),
            None => Size::parse(t).map(|s| SizeOrPercent::Size(s.0)),
        }
    }
}

/// `timezone`: `local` or an IANA name. `local` resolves to the system zone (TZ, then
/// /etc/localtime), falling back to UTC when the system does not name one.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Timezone(pub Tz);

impl Timezone {
    pub fn parse(s: &str) -> Result<Timezone, String> {
        let t = s.trim();
        if t.eq_ignore_ascii_case("local") {
            return Ok(Timezone(system_timezone()));
        }
        if t.eq_ignore_ascii_case("utc") {
            return Ok(Timezone(Tz::UTC));
        }
        t.parse::<Tz>().map(Timezone).map_err(|_| {
            format!(
                "unknown time zone `{}`; use `local`, `UTC` or an IANA name like Europe/Berlin",
                shown(t)
            )
        })
    }
}

fn system_timezone() -> Tz {
    if let Some(parsed) = std::env::var("TZ")
        .ok()
        .and_then(|tz| tz.trim_start_matches(':').parse::<Tz>().ok())
    {
        return parsed;
    }
    iana_time_zone::get_timezone()
        .ok()
        .and_then(|name| name.parse::<Tz>().ok())
        .unwrap_or(Tz::UTC)
}

impl Default for Timezone {
    fn default() -> Self {
        Timezone(system_timezone())
    }
}

impl FromScalar for Timezone {
    fn from_scalar(value: Scalar) -> Result<Self, String> {
        Timezone::parse(&scalar_text(value)?)
    }
}

/// A fraction in (0, 1], e.g. `verify_sample: 0.15` (also accepts `15%`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Fraction(pub f64);

impl FromScalar for Fraction {
    fn from_scalar(value: Scalar) -> Result<Self, String> {
        let text = scalar_text(value)?;
        let t = text.trim();
        let v = match parse_percent(t) {
            Some(r) => r?,
            None => t
                .parse::<f64>()
                .map_err(|_| format!("`{}` is not a number in (0, 1]", shown(t)))?,
        };
        if v > 0.0 && v <= 1.0 {
            Ok(Fraction(v))
        } else {
            Err(format!(
                "`{}` must be in (0, 1], e.g. 0.15 to re-hash 15% per run",
                shown(t)
            ))
        }
    }
}

/// A health threshold in [0, 1].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Ratio(pub f64);

impl FromScalar for Ratio {
    fn expecting() -> String {
        "a number from 0 to 1, e.g. 0.8 for 80%".into()
    }
    fn from_scalar(value: Scalar) -> Result<Self, String> {
        real_number_of(&value, 0.0, 1.0, "0.8 for 80%").map(Ratio)
    }
}

/// A count that must be at least 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Positive(pub u32);

impl FromScalar for Positive {
    fn expecting() -> String {
        whole_number_expected(1, u32::MAX.into())
    }
    fn from_scalar(value: Scalar) -> Result<Self, String> {
        whole_number_of(&value, 1, u32::MAX.into()).map(|v| Positive(v as u32))
    }
}

/// How many days backups are kept: at least one, at most 100 years (a longer retention
/// is a typo, and past the calendar's reach).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetentionDays(pub u32);

impl RetentionDays {
    pub const MAX: u32 = 36_500;
}

impl FromScalar for RetentionDays {
    fn expecting() -> String {
        format!("a whole number of days from 1 to {} (100 years)", Self::MAX)
    }
    fn from_scalar(value: Scalar) -> Result<Self, String> {
        whole_number_of(&value, 1, Self::MAX.into())
            .map(|v| RetentionDays(v as u32))
            .map_err(|_| format!("expected {}, got `{value}`", Self::expecting()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_use_si_and_binary_units() {
        assert_eq!(Size::parse("512").unwrap().0, 512);
        assert_eq!(Size::parse("10KiB").unwrap().0, 10 * 1024);
        assert_eq!(Size::parse("5MB").unwrap().0, 5_000_000);
        assert_eq!(Size::parse("2GiB").unwrap().0, 2 * 1024 * 1024 * 1024);
        assert_eq!(Size::parse("1TB").unwrap().0, 1_000_000_000_000);
        assert_eq!(Size::parse("1KB").unwrap().0, 1000);
        assert!(Size::parse("ten").is_err());
        assert!(Size::parse("-5MB").is_err());
        assert!(Size::parse("").is_err());
    }

    #[test]
    fn durations_use_contract_units() {
        let secs = |s: &str| DurationValue::parse(s).unwrap().0.as_secs();
        assert_eq!(secs("90s"), 90);
        assert_eq!(secs("15m"), 900);
        assert_eq!(secs("4h"), 4 * 3600);
        assert_eq!(secs("2d"), 2 * 86400);
        assert_eq!(secs("1w"), 7 * 86400);
        assert_eq!(secs("1h30m"), 5400);
        assert_eq!(secs("30"), 30);
        assert!(DurationValue::parse("4 parsecs").is_err());
        assert!(DurationValue::parse("1M").is_err());
        assert!(DurationValue::parse("-1h").is_err());
        assert!(
            DurationValue::parse("99999999w")
                .unwrap_err()
                .contains("100 years")
        );
        assert_eq!(secs("5200w"), 5200 * 7 * 86400);
    }

    #[test]
    fn timezones() {
        assert_eq!(Timezone::parse("UTC").unwrap().0, Tz::UTC);
        assert_eq!(
            Timezone::parse("Europe/Berlin").unwrap().0,
            Tz::Europe__Berlin
        );
        assert!(Timezone::parse("Mars/Olympus").is_err());
    }
}
