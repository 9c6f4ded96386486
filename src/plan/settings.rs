//! The `[load]` section: raw structs mirroring the file, validated into one [`Plan`], the
//! in-flight cap and the scenario mix's variation ([`MixVariation`]: `"off"` or a period
//! greater than 0; that it is at least twice `monitor.sample_interval` is checked where both
//! sections meet, in the config composer).

use std::num::NonZeroU32;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{
    ArrivalKind, Burst, BurstRate, ClosedPlan, OpenPlan, Plan, Preset, Stage, DEFAULT_BATCH_WINDOW,
};
use crate::units::{self, ConfigError};

/// `[load]`
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawLoad {
    /// "open" (requests at scheduled times, however slow the target) or "closed" (users).
    pub model: String,
    /// Open model: steady rate in requests per second, and the start rate of the first stage.
    pub rate: f64,
    /// Open model: "constant" or "poisson" inter-arrival gaps.
    pub arrivals: String,
    /// Open model: most requests in flight; a request over the cap is dropped and counted.
    pub max_in_flight: u32,
    /// Open model: periodic bursts.
    pub burst: Option<RawBurst>,
    /// Open model: stages with linear ramps.
    pub stages: Vec<RawStage>,
    /// Open model: repeat the stages when they end.
    pub loop_stages: bool,
    /// Open model: the pacer's shortest sleep. Arrivals due within it of each other are handed
    /// to the runtime in one wake-up: a longer window costs less CPU at high rates and sends a
    /// request up to that much after its intended time (latency is still timed from the
    /// intended time; `soakd_schedule_lag_seconds` shows the delay). Below 1/window requests
    /// per second it changes nothing. 50us to 10ms (default 500us).
    #[serde(
        with = "units::serde_opt_duration",
        skip_serializing_if = "Option::is_none"
    )]
    pub batch_window: Option<Duration>,
    /// Closed model: a tier ("light", "moderate", "heavy", "stress") giving users and ramp-up.
    pub preset: Option<String>,
    /// Closed model: number of users (overrides the preset's).
    pub users: Option<u32>,
    /// Closed model: pause between a user's requests.
    #[serde(
        with = "units::serde_opt_duration",
        skip_serializing_if = "Option::is_none"
    )]
    pub think_time: Option<Duration>,
    /// Closed model: time over which users start, linearly (overrides the preset's).
    #[serde(
        with = "units::serde_opt_duration",
        skip_serializing_if = "Option::is_none"
    )]
    pub ramp_up: Option<Duration>,
    /// Both models: how often the scenario mix changes — each period every scenario's weight
    /// is multiplied by a random factor between ½ and 2, so that RSS growth can be attributed
    /// to scenarios — or "off" to keep the configured weights (default "1m").
    pub mix_variation: String,
}

/// How the scenario mix varies over time (`load.mix_variation`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MixVariation {
    /// The configured weights, always.
    Off,
    /// New weights around the configured ones every period.
    Every(Duration),
}

impl MixVariation {
    /// The period, when the mix varies.
    pub fn period(self) -> Option<Duration> {
        match self {
            MixVariation::Off => None,
            MixVariation::Every(p) => Some(p),
        }
    }
}

impl Default for RawLoad {
    fn default() -> Self {
        RawLoad {
            model: "open".into(),
            rate: 10.0,
            arrivals: "constant".into(),
            max_in_flight: 1000,
            burst: None,
            stages: Vec::new(),
            loop_stages: false,
            batch_window: None,
            preset: None,
            users: None,
            think_time: None,
            ramp_up: None,
            mix_variation: "1m".into(),
        }
    }
}

/// `[load.burst]`
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawBurst {
    /// Time between burst starts.
    #[serde(with = "units::serde_duration")]
    pub every: Duration,
    /// Length of each burst.
    #[serde(with = "units::serde_duration")]
    pub length: Duration,
    /// Start of the first burst (default: `every`).
    #[serde(
        with = "units::serde_opt_duration",
        skip_serializing_if = "Option::is_none"
    )]
    pub offset: Option<Duration>,
    /// Absolute rate during a burst (exclusive with `multiplier`).
    pub rate: Option<f64>,
    /// Multiple of the base rate during a burst (exclusive with `rate`).
    pub multiplier: Option<f64>,
}

/// `[[load.stages]]`
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawStage {
    /// Length of the stage.
    #[serde(with = "units::serde_duration")]
    pub duration: Duration,
    /// Rate reached at the end of the stage (linear ramp from the previous one).
    pub rate: f64,
}

/// The shortest and longest `load.batch_window`.
const BATCH_WINDOW_MIN: Duration = Duration::from_micros(50);
const BATCH_WINDOW_MAX: Duration = Duration::from_millis(10);

fn positive_rate(field: &str, v: f64) -> Result<f64, ConfigError> {
    units::positive(field, v).map_err(|_| {
        ConfigError::invalid(
            field,
            v,
            "must be a rate greater than 0 requests per second",
        )
    })
}

impl RawLoad {
    /// Validates `[load]` into the plan (each rate divided by `shards`) and the in-flight cap.
    /// Errors name `load.<key>`.
    pub fn validate(&self, shards: NonZeroU32) -> Result<(Plan, NonZeroU32), ConfigError> {
        let max_in_flight = NonZeroU32::new(self.max_in_flight).ok_or_else(|| {
            ConfigError::invalid(
                "load.max_in_flight",
                self.max_in_flight,
                "must be at least 1",
            )
        })?;
        let closed = units::one_of(
            "load.model",
            &self.model,
            &[("open", false), ("closed", true)],
        )?;
        let plan = if closed {
            Plan::Closed(self.closed()?)
        } else {
            Plan::Open(self.open()?.sharded(shards.get()))
        };
        Ok((plan, max_in_flight))
    }

    /// Validates `load.mix_variation`: `"off"` or a duration greater than 0.
    pub fn mix_variation(&self) -> Result<MixVariation, ConfigError> {
        let v = self.mix_variation.trim();
        if v == "off" {
            return Ok(MixVariation::Off);
        }
        units::positive_duration("load.mix_variation", v)
            .map(MixVariation::Every)
            .map_err(|_| {
                ConfigError::invalid(
                    "load.mix_variation",
                    v,
                    "must be a duration greater than 0 (\"1m\", \"10s\") or \"off\"",
                )
            })
    }

    fn open(&self) -> Result<OpenPlan, ConfigError> {
        for (field, set) in [
            ("load.preset", self.preset.is_some()),
            ("load.users", self.users.is_some()),
            ("load.think_time", self.think_time.is_some()),
            ("load.ramp_up", self.ramp_up.is_some()),
        ] {
            if set {
                return Err(ConfigError::invalid(
                    field,
                    "(set)",
                    "only applies to the closed model (load.model = \"closed\")",
                ));
            }
        }
        let arrivals = units::one_of(
            "load.arrivals",
            &self.arrivals,
            &[
                ("constant", ArrivalKind::Constant),
                ("poisson", ArrivalKind::Poisson),
            ],
        )?;
        let rate = if self.stages.is_empty() {
            positive_rate("load.rate", self.rate)?
        } else {
            units::non_negative("load.rate", self.rate)?
        };
        let mut stages = Vec::with_capacity(self.stages.len());
        for (i, s) in self.stages.iter().enumerate() {
            stages.push(Stage {
                duration: units::nonzero_duration(
                    &format!("load.stages[{i}].duration"),
                    s.duration,
                )?,
                target: units::non_negative(&format!("load.stages[{i}].rate"), s.rate)?,
            });
        }
        if !stages.is_empty() && stages.iter().all(|s| s.target == 0.0) && rate == 0.0 {
            return Err(ConfigError::invalid(
                "load.stages",
                "(all 0)",
                "every stage has rate 0, so nothing would be sent",
            ));
        }
        let burst = self.burst.as_ref().map(RawBurst::validate).transpose()?;
        let batch_window = self.batch_window.unwrap_or(DEFAULT_BATCH_WINDOW);
        if !(BATCH_WINDOW_MIN..=BATCH_WINDOW_MAX).contains(&batch_window) {
            return Err(ConfigError::invalid(
                "load.batch_window",
                units::fmt_duration(batch_window),
                "must be from 50us to 10ms",
            ));
        }
        Ok(OpenPlan {
            rate,
            stages,
            loop_stages: self.loop_stages,
            burst,
            arrivals,
            batch_window,
        })
    }

    fn closed(&self) -> Result<ClosedPlan, ConfigError> {
        let base = match &self.preset {
            Some(p) => Preset::parse(p).ok_or_else(|| {
                ConfigError::invalid(
                    "load.preset",
                    p,
                    "must be \"light\", \"moderate\", \"heavy\" or \"stress\"",
                )
            })?,
            None => Preset::Light,
        }
        .plan();
        if self.batch_window.is_some() {
            return Err(ConfigError::invalid(
                "load.batch_window",
                "(set)",
                "only applies to the open model (load.model = \"open\")",
            ));
        }
        if self.preset.is_none() && self.users.is_none() {
            return Err(ConfigError::invalid(
                "load.users",
                "(unset)",
                "the closed model needs load.users or load.preset",
            ));
        }
        Ok(ClosedPlan {
            users: units::at_least_one("load.users", self.users.unwrap_or(base.users))?,
            think_time: self.think_time.unwrap_or(base.think_time),
            ramp_up: self.ramp_up.unwrap_or(base.ramp_up),
        })
    }
}

impl RawBurst {
    fn validate(&self) -> Result<Burst, ConfigError> {
        let every = units::nonzero_duration("load.burst.every", self.every)?;
        let length = units::nonzero_duration("load.burst.length", self.length)?;
        if length >= every {
            return Err(ConfigError::invalid(
                "load.burst.length",
                units::fmt_duration(length),
                format!(
                    "must be shorter than load.burst.every = {}",
                    units::fmt_duration(every)
                ),
            ));
        }
        let rate = match (self.rate, self.multiplier) {
            (Some(r), None) => BurstRate::Absolute(positive_rate("load.burst.rate", r)?),
            (None, Some(m)) => BurstRate::Multiplier(positive_rate("load.burst.multiplier", m)?),
            _ => {
                return Err(ConfigError::invalid(
                    "load.burst",
                    "(rate/multiplier)",
                    "set exactly one of rate or multiplier",
                ))
            }
        };
        Ok(Burst {
            every,
            length,
            offset: self.offset.unwrap_or(every),
            rate,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(toml_text: &str) -> Result<Plan, ConfigError> {
        let raw: RawLoad = toml::from_str(toml_text).expect("parses");
        raw.validate(NonZeroU32::MIN).map(|(plan, _)| plan)
    }

    #[test]
    fn batch_window_defaults_is_bounded_and_open_only() {
        let window = |t: &str| match load(t) {
            Ok(Plan::Open(p)) => p.batch_window,
            other => panic!("{t}: {other:?}"),
        };
        assert_eq!(window("rate = 5.0"), DEFAULT_BATCH_WINDOW);
        assert_eq!(window("batch_window = \"1ms\""), Duration::from_millis(1));
        assert_eq!(window("batch_window = \"50us\""), Duration::from_micros(50));
        for (text, reason) in [
            ("batch_window = \"49us\"", "must be from 50us to 10ms"),
            ("batch_window = \"11ms\"", "must be from 50us to 10ms"),
            (
                "model = \"closed\"\nusers = 2\nbatch_window = \"1ms\"",
                "only applies to the open model",
            ),
        ] {
            let e = load(text).expect_err(text).to_string();
            assert!(
                e.contains("load.batch_window") && e.contains(reason),
                "{text}: {e}"
            );
        }
    }
}
