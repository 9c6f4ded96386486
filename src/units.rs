//! One home for units and checks: the configuration error, durations, byte sizes, fractions,
//! label values, and how numbers and sizes are printed.
//!
//! This module is a leaf: it imports nothing from the rest of the crate, and every room that
//! validates its own settings (client, plan, workload, monitor, verdict, mock, telemetry) uses
//! it, so a unit is parsed, checked and printed the same way everywhere.
//!
//! - Durations are humantime strings (`"500ms"`, `"30s"`, `"1h 30m"`). In raw config structs
//!   they are `Duration` fields with `#[serde(with = "units::serde_duration")]`, so a bad value
//!   is rejected while the file is read, with the key named by the `config` crate.
//! - Sizes are bytes as an integer or a string with a unit (`"512KB"`, `"32MiB"`, `"1.5GiB"`):
//!   [`parse_size`], and [`serde_size`] for raw structs and flags.
//! - Keyword fields (`log.format`, `load.arrivals`, …) are read with [`one_of`], whose error
//!   lists the accepted words: `must be "text" or "json"`.
//! - [`fmt_bytes`] prints sizes in binary units, [`fmt_secs`] latencies in µs, ms or s,
//!   [`trim_num`] a number without trailing zeros.

use std::time::Duration;

/// Bytes in a mebibyte.
pub const MIB: f64 = 1024.0 * 1024.0;

/// A configuration problem, naming the field, the offending value and the reason.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A field holds a value that cannot be used.
    #[error("invalid config: {field} = {value:?}: {reason}")]
    Invalid {
        field: String,
        value: String,
        reason: String,
    },
    /// The sources could not be read or parsed (unknown keys, syntax, unreadable file).
    #[error("invalid config: {0}")]
    Load(String),
}

impl ConfigError {
    /// Shorthand for [`ConfigError::Invalid`].
    pub fn invalid(
        field: impl Into<String>,
        value: impl std::fmt::Display,
        reason: impl Into<String>,
    ) -> Self {
        ConfigError::Invalid {
            field: field.into(),
            value: value.to_string(),
            reason: reason.into(),
        }
    }
}

/// How durations are written, for error messages.
pub const DURATION_FORMS: &str = "a duration like \"500ms\", \"30s\" or \"6h\"";

/// Parses a duration string such as "30s", "1h 30m" or "250ms".
pub fn duration(field: &str, value: &str) -> Result<Duration, ConfigError> {
    humantime::parse_duration(value.trim()).map_err(|e| {
        ConfigError::invalid(
            field,
            value,
            format!("not a duration ({e}); use {DURATION_FORMS}"),
        )
    })
}

/// A duration greater than zero.
pub fn positive_duration(field: &str, value: &str) -> Result<Duration, ConfigError> {
    nonzero_duration(field, duration(field, value)?)
}

/// Checks that an already parsed duration is greater than zero.
pub fn nonzero_duration(field: &str, d: Duration) -> Result<Duration, ConfigError> {
    if d.is_zero() {
        return Err(ConfigError::invalid(
            field,
            fmt_duration(d),
            "must be greater than 0",
        ));
    }
    Ok(d)
}

/// A duration the way it is written in the config ("1h 30m", "250ms").
pub fn fmt_duration(d: Duration) -> String {
    humantime::format_duration(d).to_string()
}

/// A finite number greater than 0.
pub fn positive(field: &str, v: f64) -> Result<f64, ConfigError> {
    if !v.is_finite() || v <= 0.0 {
        return Err(ConfigError::invalid(
            field,
            v,
            "must be a number greater than 0",
        ));
    }
    Ok(v)
}

/// A finite number of 0 or more.
pub fn non_negative(field: &str, v: f64) -> Result<f64, ConfigError> {
    if !v.is_finite() || v < 0.0 {
        return Err(ConfigError::invalid(field, v, "must be 0 or more"));
    }
    Ok(v)
}

/// A fraction in `0..=1` (0.01 = 1 %).
pub fn fraction(field: &str, v: f64) -> Result<f64, ConfigError> {
    if !v.is_finite() || !(0.0..=1.0).contains(&v) {
        return Err(ConfigError::invalid(
            field,
            v,
            "must be a fraction between 0 and 1 (0.01 = 1%)",
        ));
    }
    Ok(v)
}

/// An integer of at least 1.
pub fn at_least_one<T: PartialOrd + From<u8> + std::fmt::Display>(
    field: &str,
    v: T,
) -> Result<T, ConfigError> {
    if v < T::from(1) {
        return Err(ConfigError::invalid(field, v, "must be at least 1"));
    }
    Ok(v)
}

/// Label values taken from the config (`scenario`, `process`) are short, safe identifiers:
/// 1–64 characters of letters, digits, `_` and `-`.
pub fn label_value(field: &str, v: &str) -> Result<(), ConfigError> {
    let ok = !v.is_empty()
        && v.len() <= 64
        && v.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if ok {
        Ok(())
    } else {
        Err(ConfigError::invalid(
            field,
            v,
            "must be 1-64 characters of letters, digits, '_' or '-'",
        ))
    }
}

/// A keyword field: the value paired with `v` in `choices`, or an error naming `field` that
/// lists the choices in their order (`must be "a" or "b"`, `must be "a", "b" or "c"`).
pub fn one_of<T: Copy>(
    field: impl Into<String>,
    v: &str,
    choices: &[(&str, T)],
) -> Result<T, ConfigError> {
    if let Some(&(_, value)) = choices.iter().find(|(name, _)| *name == v) {
        return Ok(value);
    }
    let names: Vec<String> = choices
        .iter()
        .map(|(name, _)| format!("{name:?}"))
        .collect();
    let listed = match names.split_last() {
        Some((last, [])) => last.clone(),
        Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
        None => String::new(),
    };
    Err(ConfigError::invalid(field, v, format!("must be {listed}")))
}

/// An `http://` or `https://` URL with a host.
pub fn http_url(field: &str, v: &str) -> Result<url::Url, ConfigError> {
    let u = url::Url::parse(v)
        .map_err(|e| ConfigError::invalid(field, v, format!("not a URL ({e})")))?;
    if !matches!(u.scheme(), "http" | "https") || u.host().is_none() {
        return Err(ConfigError::invalid(
            field,
            v,
            "must be an http:// or https:// URL with a host",
        ));
    }
    Ok(u)
}

/// Parses a byte size: plain bytes (`"1048576"`), decimal units (`"512KB"`, `"10MB"`, `"1GB"`,
/// `"1TB"`, powers of 1000) or binary units (`"50MiB"`, `"1GiB"`, `"4KiB"`, `"1TiB"`, powers of
/// 1024). Units are case-insensitive, a `B` suffix is allowed for bytes, fractions are allowed
/// (`"1.5GiB"`), whitespace between number and unit is allowed. The result is rounded to whole
/// bytes.
pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    if num.is_empty() {
        return Err("expected a size such as \"50MiB\", \"512KB\" or a number of bytes".into());
    }
    let n: f64 = num
        .parse()
        .map_err(|_| format!("{num:?} is not a number"))?;
    let mult: f64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "kb" | "k" => 1e3,
        "mb" | "m" => 1e6,
        "gb" | "g" => 1e9,
        "tb" | "t" => 1e12,
        "kib" | "ki" => 1024.0,
        "mib" | "mi" => MIB,
        "gib" | "gi" => MIB * 1024.0,
        "tib" | "ti" => MIB * MIB,
        other => {
            return Err(format!(
                "unknown size unit {other:?} (use B, KB, MB, GB, TB, KiB, MiB, GiB or TiB)"
            ))
        }
    };
    let bytes = (n * mult).round();
    if !bytes.is_finite() || bytes > u64::MAX as f64 {
        return Err("size is too large".into());
    }
    Ok(bytes as u64)
}

/// Formats with at most `decimals` decimals, trailing zeros removed.
pub fn trim_num(v: f64, decimals: usize) -> String {
    let s = format!("{v:.decimals$}");
    let s = if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_owned()
    } else {
        s
    };
    if s == "-0" {
        "0".to_owned()
    } else {
        s
    }
}

/// Formats a byte amount with the largest binary unit that keeps it at least 1, with up to
/// two decimals: `"512B"`, `"1.5KiB"`, `"412MiB"`, `"-2.25GiB"`.
pub fn fmt_bytes(v: f64) -> String {
    const UNITS: [(&str, f64); 4] = [
        ("TiB", MIB * MIB),
        ("GiB", MIB * 1024.0),
        ("MiB", MIB),
        ("KiB", 1024.0),
    ];
    for (name, size) in UNITS {
        if v.abs() >= size {
            return format!("{}{name}", trim_num(v / size, 2));
        }
    }
    format!("{}B", trim_num(v, 0))
}

/// "1h02m03s"-style elapsed time (whole seconds, rounded down).
pub fn fmt_elapsed(secs: f64) -> String {
    let s = secs.max(0.0) as u64;
    let (h, m, s) = (s / 3600, s / 60 % 60, s % 60);
    if h > 0 {
        format!("{h}h{m:02}m{s:02}s")
    } else {
        format!("{m}m{s:02}s")
    }
}

/// Formats a latency in seconds in the unit that reads best: `"-"` for none, `"250µs"`,
/// `"42.1ms"`, `"2.50s"`.
pub fn fmt_secs(s: f64) -> String {
    if s == 0.0 {
        "-".into()
    } else if s < 0.001 {
        format!("{:.0}µs", s * 1e6)
    } else if s < 1.0 {
        format!("{:.1}ms", s * 1e3)
    } else {
        format!("{s:.2}s")
    }
}

/// Serde for a `Duration` written as a humantime string (`"250ms"`).
pub mod serde_duration {
    use serde::{Deserializer, Serializer};
    use std::time::Duration;

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&humantime::format_duration(*d))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        d.deserialize_str(Visitor)
    }

    pub(super) struct Visitor;

    impl serde::de::Visitor<'_> for Visitor {
        type Value = Duration;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str(super::DURATION_FORMS)
        }
        fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Duration, E> {
            humantime::parse_duration(v.trim())
                .map_err(|_| E::invalid_value(serde::de::Unexpected::Str(v), &self))
        }
    }
}

/// Serde for an `Option<Duration>` written as an optional humantime string.
pub mod serde_opt_duration {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.collect_str(&humantime::format_duration(*d)),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        #[derive(Deserialize)]
        struct Wrap(#[serde(with = "super::serde_duration")] Duration);
        Ok(Option::<Wrap>::deserialize(d)?.map(|w| w.0))
    }
}

/// Serde for a byte count written as an integer or a size string (`"32MiB"`); serialised as
/// an integer.
pub mod serde_size {
    use serde::{Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &u64, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(*v)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
        d.deserialize_any(Visitor)
    }

    pub(super) struct Visitor;

    impl serde::de::Visitor<'_> for Visitor {
        type Value = u64;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a size such as 1048576, \"512KB\" or \"32MiB\"")
        }
        fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<u64, E> {
            Ok(v)
        }
        fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<u64, E> {
            u64::try_from(v).map_err(|_| E::invalid_value(serde::de::Unexpected::Signed(v), &self))
        }
        fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<u64, E> {
            super::parse_size(v).map_err(|_| E::invalid_value(serde::de::Unexpected::Str(v), &self))
        }
    }
}

/// Serde for an `Option<u64>` byte count (see [`serde_size`]).
pub mod serde_opt_size {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &Option<u64>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(v) => s.serialize_u64(*v),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
        #[derive(Deserialize)]
        struct Wrap(#[serde(with = "super::serde_size")] u64);
        Ok(Option::<Wrap>::deserialize(d)?.map(|w| w.0))
    }
}

/// A clap value parser for size flags (`--sawtooth-bytes 32MiB`).
pub fn size_arg(s: &str) -> Result<u64, String> {
    parse_size(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_in_every_unit() {
        for (text, want) in [
            ("0", 0),
            ("1048576", 1 << 20),
            ("1048576B", 1 << 20),
            ("512KB", 512_000),
            ("10 MB", 10_000_000),
            ("1GB", 1_000_000_000),
            ("4KiB", 4096),
            ("50MiB", 50 << 20),
            ("1.5GiB", 3 << 29),
            ("1TiB", 1 << 40),
            ("2ki", 2048),
            ("3mib", 3 << 20),
        ] {
            assert_eq!(parse_size(text), Ok(want), "{text}");
        }
        for bad in ["", "MiB", "-5MiB", "5 parsecs", "1.2.3MB", "1e400"] {
            assert!(parse_size(bad).is_err(), "{bad} should be rejected");
        }
    }

    #[test]
    fn one_of_picks_the_named_choice_or_lists_them_all() {
        let two = [("text", 1), ("json", 2)];
        assert_eq!(one_of("log.format", "json", &two).unwrap(), 2);
        let three = [("ms", 1), ("s", 2), ("us", 3)];
        assert_eq!(one_of("u", "s", &three).unwrap(), 2);
        for (choices, want) in [
            (&two[..], "must be \"text\" or \"json\""),
            (&three[..], "must be \"ms\", \"s\" or \"us\""),
            (&[("only", 1)][..], "must be \"only\""),
        ] {
            match one_of("log.format", "XML", choices) {
                Err(ConfigError::Invalid {
                    field,
                    value,
                    reason,
                }) => assert_eq!(
                    (field.as_str(), value.as_str(), reason.as_str()),
                    ("log.format", "XML", want)
                ),
                other => panic!("{want}: {other:?}"),
            }
        }
    }

    #[test]
    fn bytes_and_latencies_print_in_their_units() {
        assert_eq!(fmt_bytes(512.0), "512B");
        assert_eq!(fmt_bytes(1536.0), "1.5KiB");
        assert_eq!(fmt_bytes(412.0 * MIB), "412MiB");
        assert_eq!(fmt_bytes(-2.25 * 1024.0 * MIB), "-2.25GiB");
        assert_eq!(fmt_bytes(0.0), "0B");
        assert_eq!(fmt_secs(0.0), "-");
        assert_eq!(fmt_secs(0.000_25), "250µs");
        assert_eq!(fmt_secs(0.0421), "42.1ms");
        assert_eq!(fmt_secs(2.5), "2.50s");
        assert_eq!(trim_num(2.500, 3), "2.5");
        assert_eq!(trim_num(-0.0001, 2), "0");
        assert_eq!(trim_num(3.0, 0), "3");
    }

    #[test]
    fn checks_name_the_field_value_and_reason() {
        let e = duration("run.grace", "ten").unwrap_err().to_string();
        assert!(
            e.contains("run.grace") && e.contains("ten") && e.contains("30s"),
            "{e}"
        );
        let e = positive_duration("x.d", "0s").unwrap_err().to_string();
        assert!(e.contains("greater than 0"), "{e}");
        assert_eq!(
            positive_duration("x", "1m 30s").unwrap(),
            Duration::from_secs(90)
        );
        assert!(positive("r", 0.0).is_err() && positive("r", f64::NAN).is_err());
        assert_eq!(positive("r", 2.5).unwrap(), 2.5);
        assert!(non_negative("r", -1.0).is_err() && non_negative("r", 0.0).is_ok());
        assert!(fraction("f", 1.01).is_err() && fraction("f", 1.0).is_ok());
        assert!(at_least_one("n", 0u32).is_err() && at_least_one("n", 1u64).is_ok());
        for ok in ["chat", "4o-mini", "a_b"] {
            assert!(label_value("l", ok).is_ok(), "{ok}");
        }
        for bad in ["", "a b", "x/y", &"a".repeat(65)] {
            assert!(label_value("l", bad).is_err(), "{bad}");
        }
    }

    #[derive(Debug, PartialEq, serde::Deserialize, serde::Serialize)]
    struct Raw {
        #[serde(with = "serde_duration")]
        d: Duration,
        #[serde(with = "serde_opt_duration", default)]
        o: Option<Duration>,
        #[serde(with = "serde_size")]
        s: u64,
        #[serde(with = "serde_opt_size", default)]
        os: Option<u64>,
    }

    #[test]
    fn serde_adapters_round_trip_and_explain_bad_values() {
        let r: Raw = toml::from_str("d = \"1m 5s\"\no = \"250ms\"\ns = \"32MiB\"\nos = 7").unwrap();
        assert_eq!(
            r,
            Raw {
                d: Duration::from_secs(65),
                o: Some(Duration::from_millis(250)),
                s: 32 << 20,
                os: Some(7),
            }
        );
        let back: Raw = toml::from_str(&toml::to_string(&r).unwrap()).unwrap();
        assert_eq!(back, r);
        let e = toml::from_str::<Raw>("d = \"soon\"\ns = 1")
            .unwrap_err()
            .to_string();
        assert!(e.contains("soon") && e.contains("30s"), "{e}");
        let e = toml::from_str::<Raw>("d = \"1s\"\ns = \"lots\"")
            .unwrap_err()
            .to_string();
        assert!(e.contains("lots") && e.contains("32MiB"), "{e}");
    }
}
