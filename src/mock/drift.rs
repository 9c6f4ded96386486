//! `latency_drift` (`--latency-drift`): latency that grows linearly with the mock's uptime, so
//! creep can be caused on purpose.
//!
//! Written `AMOUNT/PER`: a duration, a slash, and the time it takes to grow by it — a unit
//! (`s`, `min`, `h`, …) or a duration (`"20ms/min"`, `"1ms/10s"`, `"0.5s/1h"`). While the
//! mock has been up for `u`, every stream's time to first token and every non-stream answer's
//! delay is `AMOUNT × u / PER` longer (at most an hour longer). Chunk gaps do not change.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// The most a drift ever adds to one delay.
pub const MAX_EXTRA: Duration = Duration::from_secs(3600);

/// A delay that grows by `amount` every `per` of uptime.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LatencyDrift {
    pub amount: Duration,
    pub per: Duration,
}

impl LatencyDrift {
    /// The extra delay after `uptime`.
    pub fn extra(&self, uptime: Duration) -> Duration {
        let secs = self.amount.as_secs_f64() * uptime.as_secs_f64() / self.per.as_secs_f64();
        Duration::try_from_secs_f64(secs)
            .unwrap_or(MAX_EXTRA)
            .min(MAX_EXTRA)
    }
}

impl LatencyDrift {
    /// The flag's value parser.
    pub fn from_str_arg(s: &str) -> Result<Self, String> {
        s.parse()
    }
}

impl FromStr for LatencyDrift {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let form = "write it as AMOUNT/PER, e.g. \"20ms/min\" or \"1ms/10s\"";
        let (amount, per) = s
            .trim()
            .split_once('/')
            .ok_or_else(|| format!("no '/': {form}"))?;
        let amount = humantime::parse_duration(amount.trim())
            .map_err(|e| format!("amount {:?}: {e}; {form}", amount.trim()))?;
        let per = per.trim();
        // A bare unit ("min") is one of it.
        let per_text = if per.starts_with(|c: char| c.is_ascii_digit()) {
            per.to_string()
        } else {
            format!("1{per}")
        };
        let per = humantime::parse_duration(&per_text)
            .map_err(|e| format!("period {per:?}: {e}; {form}"))?;
        if per.is_zero() {
            return Err(format!("the period must be longer than 0; {form}"));
        }
        Ok(LatencyDrift { amount, per })
    }
}

impl fmt::Display for LatencyDrift {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}/{}",
            humantime::format_duration(self.amount),
            humantime::format_duration(self.per)
        )
    }
}

/// Serde for `Option<LatencyDrift>` as its string.
pub mod serde_opt {
    use serde::{Deserialize, Deserializer, Serializer};

    use super::LatencyDrift;

    pub fn serialize<S: Serializer>(d: &Option<LatencyDrift>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.collect_str(d),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<LatencyDrift>, D::Error> {
        Option::<String>::deserialize(d)?
            .map(|s| {
                s.parse()
                    .map_err(|e| serde::de::Error::custom(format!("latency_drift {s:?}: {e}")))
            })
            .transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> LatencyDrift {
        s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn parses_units_and_durations_and_grows_linearly() {
        let twenty = d("20ms/min");
        assert_eq!(
            twenty,
            LatencyDrift {
                amount: Duration::from_millis(20),
                per: Duration::from_secs(60)
            }
        );
        assert_eq!(d(" 20ms / 1m "), twenty);
        assert_eq!(
            d("1ms/10s").extra(Duration::from_secs(35)),
            Duration::from_micros(3500)
        );
        assert_eq!(twenty.extra(Duration::ZERO), Duration::ZERO);
        assert_eq!(
            twenty.extra(Duration::from_secs(90)),
            Duration::from_millis(30)
        );
        assert_eq!(
            twenty.extra(Duration::from_secs(150)),
            Duration::from_millis(50)
        );
        assert_eq!(
            d("1s/s").extra(Duration::from_secs(86_400)),
            MAX_EXTRA,
            "capped"
        );
        // Display round-trips.
        assert_eq!(twenty.to_string(), "20ms/1m");
        assert_eq!(d(&twenty.to_string()), twenty);
        assert_eq!(d("500us/h").to_string(), "500us/1h");
    }

    #[test]
    fn bad_drifts_say_what_is_wrong() {
        for (s, want) in [
            ("20ms", "no '/'"),
            ("fast/min", "amount \"fast\""),
            ("20ms/fortnight", "period \"fortnight\""),
            ("20ms/0s", "longer than 0"),
        ] {
            let e = s.parse::<LatencyDrift>().expect_err(s);
            assert!(e.contains(want) && e.contains("AMOUNT/PER"), "{s}: {e}");
        }
    }
}
