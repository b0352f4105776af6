//! Typed config values that parse themselves while the YAML is read, so a bad value is
//! reported with its key path and line by the YAML crate: sizes, durations, percentages,
//! fractions, time zones, and strings with `${VAR}` interpolation.

use super::interpolate::{self, Interpolated};
use chrono_tz::Tz;
use serde::Deserialize;
use serde::de::{self, Deserializer, Visitor};
use std::fmt;
use std::time::Duration;

/// A scalar as the YAML typed it; text has been through `${VAR}` interpolation.
enum Scalar {
    Bool(bool),
    Int(i128),
    Float(f64),
    Text(String),
    /// Text naming a `${VAR}` that is not set and has no default.
    Unset(String),
}

impl fmt::Display for Scalar {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            Scalar::Bool(b) => write!(f, "{b}"),
            Scalar::Int(v) => write!(f, "{v}"),
            Scalar::Float(v) => write!(f, "{v}"),
            Scalar::Text(t) | Scalar::Unset(t) => f.write_str(t),
        }
    }
}

/// Read one scalar of any YAML type. `expecting` completes serde's "invalid type: …,
/// expected …" when a list or mapping stands where a scalar belongs.
fn scalar<'de, D: Deserializer<'de>>(d: D, expecting: &str) -> Result<Scalar, D::Error> {
    struct AnyScalar<'a>(&'a str);
    impl Visitor<'_> for AnyScalar<'_> {
        type Value = Scalar;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str(self.0)
        }
        fn visit_bool<E: de::Error>(self, v: bool) -> Result<Scalar, E> {
            Ok(Scalar::Bool(v))
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<Scalar, E> {
            Ok(Scalar::Int(v.into()))
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<Scalar, E> {
            Ok(Scalar::Int(v.into()))
        }
        fn visit_f64<E: de::Error>(self, v: f64) -> Result<Scalar, E> {
            Ok(Scalar::Float(v))
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<Scalar, E> {
            Ok(match interpolate::expand(v) {
                Interpolated::Ok(s) => Scalar::Text(s),
                Interpolated::Undefined(var) => Scalar::Unset(var),
            })
        }
    }
    d.deserialize_any(AnyScalar(expecting))
}

/// [`scalar`], where an unset `${VAR}` is an error.
fn defined_scalar<'de, D: Deserializer<'de>>(d: D, expecting: &str) -> Result<Scalar, D::Error> {
    match scalar(d, expecting)? {
        Scalar::Unset(var) => Err(de::Error::custom(interpolate::undefined_message(&var))),
        value => Ok(value),
    }
}

/// Deserialize a scalar (string, integer or float) as text, interpolating `${VAR}`.
fn scalar_text<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    match defined_scalar(d, "a string or a number")? {
        Scalar::Bool(b) => Err(de::Error::custom(format!(
            "expected a string or a number, got `{b}`"
        ))),
        other => Ok(other.to_string()),
    }
}

/// A whole number in `min..=max`: a YAML integer, or text that is one after `${VAR}`
/// interpolation.
fn whole_number<'de, D: Deserializer<'de>>(d: D, min: i128, max: i128) -> Result<i128, D::Error> {
    let value = defined_scalar(d, &whole_number_expected(min, max))?;
    whole_number_of(&value, min, max).map_err(de::Error::custom)
}

fn whole_number_expected(min: i128, max: i128) -> String {
    format!("a whole number from {min} to {max}")
}

fn whole_number_of(value: &Scalar, min: i128, max: i128) -> Result<i128, String> {
    let number = match value {
        Scalar::Int(v) => Some(*v),
        Scalar::Text(t) => t.trim().parse::<i128>().ok(),
        Scalar::Bool(_) | Scalar::Float(_) | Scalar::Unset(_) => None,
    };
    match number {
        Some(v) if (min..=max).contains(&v) => Ok(v),
        _ => Err(format!(
            "expected {}, got `{value}`",
            whole_number_expected(min, max)
        )),
    }
}

/// A finite number in `min..=max`, from a YAML number or interpolated text.
fn real_number<'de, D: Deserializer<'de>>(
    d: D,
    min: f64,
    max: f64,
    example: &str,
) -> Result<f64, D::Error> {
    let expected = format!("a number from {min} to {max}, e.g. {example}");
    let value = defined_scalar(d, &expected)?;
    let number = match &value {
        Scalar::Int(v) => Some(*v as f64),
        Scalar::Float(v) => Some(*v),
        Scalar::Text(t) => t.trim().parse::<f64>().ok(),
        Scalar::Bool(_) | Scalar::Unset(_) => None,
    };
    match number {
        Some(v) if v.is_finite() && (min..=max).contains(&v) => Ok(v),
        _ => Err(de::Error::custom(format!(
            "expected {expected}, got `{value}`"
        ))),
    }
}

/// A switch: a YAML boolean, or text that reads as one after `${VAR}` interpolation
/// (the same spellings a plain YAML scalar accepts: true/false, yes/no, on/off).
pub fn env_bool<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    let value = defined_scalar(d, "true or false")?;
    let switch = match &value {
        Scalar::Bool(b) => Some(*b),
        Scalar::Text(t) => match t.trim().to_ascii_lowercase().as_str() {
            "true" | "yes" | "y" | "on" => Some(true),
            "false" | "no" | "n" | "off" => Some(false),
            _ => None,
        },
        Scalar::Int(_) | Scalar::Float(_) | Scalar::Unset(_) => None,
    };
    switch.ok_or_else(|| de::Error::custom(format!("expected true or false, got `{value}`")))
}

/// A `u32` count (0 allowed), from a YAML integer or interpolated text.
pub fn env_u32<'de, D: Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    whole_number(d, 0, u32::MAX.into()).map(|v| v as u32)
}

/// A TCP port (`alerts.email.smtp_port`) from a YAML integer or interpolated text. An
/// unset `${VAR}` is kept, like [`EnvString`], and reported by validation only when the
/// channel is enabled: a disabled channel is not interpolated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortValue(Result<u16, String>);

impl PortValue {
    pub fn new(port: u16) -> Self {
        PortValue(Ok(port))
    }

    /// The port, if its `${VAR}` was set.
    pub fn get(&self) -> Option<u16> {
        self.0.as_ref().ok().copied()
    }

    /// The undefined variable, if interpolation failed.
    pub fn undefined_var(&self) -> Option<&str> {
        self.0.as_ref().err().map(|s| s.as_str())
    }
}

impl<'de> Deserialize<'de> for PortValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let max = u16::MAX.into();
        match scalar(d, &whole_number_expected(0, max))? {
            Scalar::Unset(var) => Ok(PortValue(Err(var))),
            value => whole_number_of(&value, 0, max)
                .map(|p| PortValue(Ok(p as u16)))
                .map_err(de::Error::custom),
        }
    }
}

/// A string value after `${VAR}` interpolation. Interpolation of an undefined variable is
/// kept as an error and reported by validation, so that a disabled alert channel can hold
/// `${SLACK_WEBHOOK_URL}` without the variable being set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvString(Result<String, String>);

impl EnvString {
    pub fn new(s: impl Into<String>) -> Self {
        EnvString(Ok(s.into()))
    }

    /// The interpolated value; empty when interpolation failed (validation reports that).
    pub fn get(&self) -> &str {
        self.0.as_deref().unwrap_or("")
    }

    /// The undefined variable, if interpolation failed.
    pub fn undefined_var(&self) -> Option<&str> {
        self.0.as_ref().err().map(|s| s.as_str())
    }
}

impl Default for EnvString {
    fn default() -> Self {
        EnvString::new("")
    }
}

impl<'de> Deserialize<'de> for EnvString {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        Ok(match interpolate::expand(&raw) {
            Interpolated::Ok(s) => EnvString(Ok(s)),
            Interpolated::Undefined(var) => EnvString(Err(var)),
        })
    }
}

/// A string that must interpolate at load time (outside alert channels).
pub fn required_env_string<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let raw = String::deserialize(d)?;
    match interpolate::expand(&raw) {
        Interpolated::Ok(s) => Ok(s),
        Interpolated::Undefined(var) => {
            Err(de::Error::custom(interpolate::undefined_message(&var)))
        }
    }
}

/// Optional variant of [`required_env_string`]; `null` stays `None`.
pub fn optional_env_string<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    let raw: Option<String> = Option::deserialize(d)?;
    match raw {
        None => Ok(None),
        Some(raw) => match interpolate::expand(&raw) {
            Interpolated::Ok(s) if s.is_empty() => Ok(None),
            Interpolated::Ok(s) => Ok(Some(s)),
            Interpolated::Undefined(var) => {
                Err(de::Error::custom(interpolate::undefined_message(&var)))
            }
        },
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
            return Err(format!("size `{t}` is negative"));
        }
        t.parse::<bytesize::ByteSize>()
            .map(|b| Size(b.as_u64()))
            .map_err(|_| format!("`{t}` is not a size; write e.g. 512, 10KiB, 5MB or 2GiB"))
    }
}

impl<'de> Deserialize<'de> for Size {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = scalar_text(d)?;
        Size::parse(&text).map_err(de::Error::custom)
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
                s.trim()
            ));
        }
        Ok(d)
    }

    fn parse_any(s: &str) -> Result<DurationValue, String> {
        let t = s.trim();
        if t.starts_with('-') {
            return Err(format!("duration `{t}` is negative"));
        }
        if let Ok(secs) = t.parse::<u64>() {
            return Ok(DurationValue(Duration::from_secs(secs)));
        }
        // humantime reads `M` as months and `m` as minutes; the contract's units are s m h d w.
        if t.chars().any(|c| c.is_ascii_uppercase()) {
            return Err(format!(
                "`{t}` is not a duration; units are s, m, h, d, w (e.g. 90s, 15m, 4h, 1h30m)"
            ));
        }
        humantime::parse_duration(t)
            .map(DurationValue)
            .map_err(|_| {
                format!(
                    "`{t}` is not a duration; units are s, m, h, d, w (e.g. 90s, 15m, 4h, 1h30m)"
                )
            })
    }

    pub fn as_chrono(self) -> chrono::Duration {
        chrono::Duration::from_std(self.0).unwrap_or(chrono::Duration::MAX)
    }
}

impl<'de> Deserialize<'de> for DurationValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = scalar_text(d)?;
        DurationValue::parse(&text).map_err(de::Error::custom)
    }
}

/// A percentage `50%` (stored as a fraction 0.5), accepted only where the key allows one.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Percent(pub f64);

fn parse_percent(t: &str) -> Option<Result<f64, String>> {
    let num = t.strip_suffix('%')?;
    Some(match num.trim().parse::<f64>() {
        Ok(v) if (0.0..=100.0).contains(&v) => Ok(v / 100.0),
        Ok(_) => Err(format!("`{t}` is outside 0%..100%")),
        Err(_) => Err(format!("`{t}` is not a percentage; write e.g. 50%")),
    })
}

impl<'de> Deserialize<'de> for Percent {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = scalar_text(d)?;
        let t = text.trim();
        match parse_percent(t) {
            Some(r) => r.map(Percent).map_err(de::Error::custom),
            None => match t.parse::<f64>() {
                Ok(v) if (0.0..=1.0).contains(&v) => Ok(Percent(v)),
                _ => Err(de::Error::custom(format!(
                    "`{t}` is not a percentage; write e.g. 50% (or a fraction 0..1)"
                ))),
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

impl<'de> Deserialize<'de> for SizeOrPercent {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = scalar_text(d)?;
        let t = text.trim();
        match parse_percent(t) {
            Some(r) => r.map(SizeOrPercent::Percent).map_err(de::Error::custom),
            None => Size::parse(t)
                .map(|s| SizeOrPercent::Size(s.0))
                .map_err(de::Error::custom),
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
                "unknown time zone `{t}`; use `local`, `UTC` or an IANA name like Europe/Berlin"
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

impl<'de> Deserialize<'de> for Timezone {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = required_env_string(d)?;
        Timezone::parse(&text).map_err(de::Error::custom)
    }
}

/// A fraction in (0, 1], e.g. `verify_sample: 0.15` (also accepts `15%`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Fraction(pub f64);

impl<'de> Deserialize<'de> for Fraction {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = scalar_text(d)?;
        let t = text.trim();
        let v = match parse_percent(t) {
            Some(r) => r.map_err(de::Error::custom)?,
            None => t
                .parse::<f64>()
                .map_err(|_| de::Error::custom(format!("`{t}` is not a number in (0, 1]")))?,
        };
        if v > 0.0 && v <= 1.0 {
            Ok(Fraction(v))
        } else {
            Err(de::Error::custom(format!(
                "`{t}` must be in (0, 1], e.g. 0.15 to re-hash 15% per run"
            )))
        }
    }
}

/// A health threshold in [0, 1].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Ratio(pub f64);

impl<'de> Deserialize<'de> for Ratio {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        real_number(d, 0.0, 1.0, "0.8 for 80%").map(Ratio)
    }
}

/// A count that must be at least 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Positive(pub u32);

impl<'de> Deserialize<'de> for Positive {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        whole_number(d, 1, u32::MAX.into()).map(|v| Positive(v as u32))
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
