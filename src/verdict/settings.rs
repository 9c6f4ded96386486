//! The `[thresholds]` section: raw struct mirroring the file, validated into [`Thresholds`].

use std::collections::BTreeMap;
use std::sync::OnceLock;
use std::time::Duration;

use super::creep::{CreepRules, DEFAULT_MAX_CREEP_RATIO, DEFAULT_MIN_CREEP};
use super::ProxyLimits;
use crate::units::{self, ConfigError};

/// Default for [`RawThresholds::min_requests`].
pub const DEFAULT_MIN_REQUESTS: u64 = 100;
/// Default for [`RawThresholds::rss_process`].
pub const DEFAULT_RSS_PROCESS: &str = "target";
/// `error_ratio` when the config does not set it (and `defaults` is not false): 5 %.
pub const DEFAULT_ERROR_RATIO: f64 = 0.05;
/// `max_dropped` when the config does not set it (and `defaults` is not false): none, because
/// a saturated generator makes the soak invalid.
pub const DEFAULT_MAX_DROPPED: u64 = 0;
/// `creep_window` when the config does not set it.
pub const DEFAULT_CREEP_WINDOW: Duration = Duration::from_secs(600);
/// Shortest `creep_window`: the last window moves in sixths of it, at least a second.
pub const MIN_CREEP_WINDOW: Duration = Duration::from_secs(6);

/// `(stage, threshold name)` for each stage of `soakd_proxy_added_seconds`
/// ([`crate::upstream::report::ADDED_STAGES`], the one stage list): `p99_proxy_added_<stage>`.
pub fn stage_thresholds() -> &'static [(&'static str, String)] {
    static NAMES: OnceLock<Vec<(&'static str, String)>> = OnceLock::new();
    NAMES.get_or_init(|| {
        crate::upstream::report::ADDED_STAGES
            .iter()
            .map(|s| (*s, format!("p99_proxy_added_{s}")))
            .collect()
    })
}

/// The `[thresholds]` section as written in the config file.
///
/// Unknown keys are refused at validation (not by serde: the `p99_proxy_added_<stage>` keys
/// are read from [`RawThresholds::other`], one per stage of `soakd_proxy_added_seconds`).
#[derive(Debug, Clone, Default, PartialEq, serde::Deserialize, serde::Serialize)]
#[serde(default)]
pub struct RawThresholds {
    /// Apply the default thresholds to every key left unset (default true): `error_ratio`
    /// 0.05, `max_dropped` 0, `leak_verdicts` true and creep judged (`max_creep_ratio` 1.5,
    /// `min_creep` 50ms). `false` turns every default off.
    pub defaults: Option<bool>,
    /// A monitored process's `leak` verdict (rss, fds or threads) at the end fails the run
    /// (default: on, unless `defaults = false`). soakd's own verdict never fails the run.
    pub leak_verdicts: Option<bool>,
    /// Stop the run as soon as a threshold fails during a live evaluation.
    pub abort_on_fail: bool,
    /// p99 time to first token must stay at or below this duration, e.g. `"2s"`.
    pub p99_ttft: Option<String>,
    /// p99 end-to-end request duration must stay at or below this duration, e.g. `"30s"`.
    pub p99_duration: Option<String>,
    /// Maximum fraction (0..=1) of finished requests whose outcome is neither ok, cancelled
    /// nor aborted (default 0.05).
    pub error_ratio: Option<f64>,
    /// Maximum fraction (0..=1) of finished streams that were truncated.
    pub truncated_ratio: Option<f64>,
    /// Scheduled-but-never-sent requests allowed (`0` = none, the default).
    pub max_dropped: Option<u64>,
    /// Requests still running at the end of the grace period (outcome `aborted`) allowed; no
    /// default (unset: not judged).
    pub max_aborted: Option<u64>,
    /// Maximum RSS growth per hour of `rss_process`, as a size such as `"50MiB"`; judged on the
    /// robust slope over the longest window that has data.
    pub rss_growth_per_hour: Option<String>,
    /// The monitored process whose RSS growth is judged (default `"target"`).
    pub rss_process: Option<String>,
    /// Ratios are judged live only after this many requests (default 100); the final
    /// evaluation judges them regardless.
    pub min_requests: Option<u64>,
    /// Least share (0..=1) of its memory growth above the idle level each judged process must
    /// give back by the end of the cooldown: `(peak − recovered) / (peak − idle)`. Needs
    /// `[run] idle` and `[run] cooldown`.
    pub min_released_share: Option<f64>,
    /// Length of the two windows creep compares, per scenario: the first full one after
    /// `[monitor] warmup` (counted from the start of the load) and the last full one before
    /// the load ends, e.g. `"10m"` (the default); `"off"` measures no creep. A run needs
    /// `warmup + 2 × creep_window` of load to judge it.
    pub creep_window: Option<String>,
    /// A measure (p99 of request duration, TTFT, or a proxy-added stage) fails when its last
    /// window's p99 is more than this many times its first window's AND more than `min_creep`
    /// above it (default 1.5 when creep is judged: by default, or when this or `min_creep` is
    /// set).
    pub max_creep_ratio: Option<f64>,
    /// The absolute floor of creep, a duration such as `"50ms"` (the default when creep is
    /// judged): a measure fails only when its p99 grew by more than this and by more than
    /// `max_creep_ratio`.
    pub min_creep: Option<String>,
    /// Two-sided soak: most upstream calls orphaned (their client gave up and their answer had
    /// not ended `orphan_after` later).
    pub max_orphans: Option<u64>,
    /// Two-sided soak: largest share (0..=1) of give-ups with an upstream call to cancel whose
    /// cancel did not reach it in time ((not propagated + orphaned) / (those + propagated)).
    pub max_not_propagated_ratio: Option<f64>,
    /// Two-sided soak: most output tokens the upstream generated after the client gave up.
    pub max_wasted_output_tokens: Option<u64>,
    /// Two-sided soak: most upstream attempts per client request, over the requests sent
    /// during storms (over the whole run when no storm is configured), e.g. `1.5`.
    pub max_retry_amplification: Option<f64>,
    /// Two-sided soak: most ghost attempts (upstream attempts after the client finished).
    pub max_ghost_attempts: Option<u64>,
    /// Two-sided soak: most next attempts sooner than the upstream's `Retry-After`.
    pub max_retry_after_violations: Option<u64>,
    /// Two-sided soak with storms: longest recovery after any storm occurrence, e.g. `"30s"`;
    /// an occurrence that never recovered fails.
    pub max_recovery: Option<String>,
    /// `p99_proxy_added_<stage> = "<duration>"`: the p99 of each stage of
    /// `soakd_proxy_added_seconds` (`request`, `first_token`, `chunk`, …) must stay at or
    /// below it. Any other key here is an error.
    #[serde(flatten)]
    pub other: BTreeMap<String, serde_json::Value>,
}

impl RawThresholds {
    /// Validates the raw section into typed [`Thresholds`].
    ///
    /// Errors name the field (`thresholds.<key>`), the value and the reason.
    pub fn validate(&self) -> Result<Thresholds, ConfigError> {
        let p99_ttft = self
            .p99_ttft
            .as_deref()
            .map(|v| units::positive_duration("thresholds.p99_ttft", v))
            .transpose()?;
        let p99_duration = self
            .p99_duration
            .as_deref()
            .map(|v| units::positive_duration("thresholds.p99_duration", v))
            .transpose()?;
        let defaults = self.defaults.unwrap_or(true);
        let mut defaulted = Vec::new();
        // Called only for keys the config left unset: applies the default when they are on.
        let mut default_for = |name: &'static str| {
            if defaults {
                defaulted.push(name);
            }
            defaults
        };
        let error_ratio = match self.error_ratio {
            Some(v) => Some(units::fraction("thresholds.error_ratio", v)?),
            None => default_for("error_ratio").then_some(DEFAULT_ERROR_RATIO),
        };
        let max_dropped = match self.max_dropped {
            Some(v) => Some(v),
            None => default_for("dropped").then_some(DEFAULT_MAX_DROPPED),
        };
        let leak_verdicts = match self.leak_verdicts {
            Some(v) => v,
            None => default_for("leak"),
        };
        let creep_window = match self.creep_window.as_deref().map(str::trim) {
            None => Some(DEFAULT_CREEP_WINDOW),
            Some("off") => None,
            Some(v) => {
                let d = units::positive_duration("thresholds.creep_window", v)?;
                if d < MIN_CREEP_WINDOW {
                    return Err(ConfigError::invalid(
                        "thresholds.creep_window",
                        v,
                        "must be at least 6s (the last window moves in sixths of it), or \"off\"",
                    ));
                }
                Some(d)
            }
        };
        let max_ratio = self
            .max_creep_ratio
            .map(|v| {
                if v.is_finite() && v > 1.0 {
                    Ok(v)
                } else {
                    Err(ConfigError::invalid(
                        "thresholds.max_creep_ratio",
                        v,
                        "must be a number greater than 1 (the last p99 over the first)",
                    ))
                }
            })
            .transpose()?;
        let min_creep = self
            .min_creep
            .as_deref()
            .map(|v| units::duration("thresholds.min_creep", v))
            .transpose()?;
        let set = max_ratio.is_some() || min_creep.is_some();
        if set && creep_window.is_none() {
            let key = if max_ratio.is_some() {
                "thresholds.max_creep_ratio"
            } else {
                "thresholds.min_creep"
            };
            let value = self
                .max_creep_ratio
                .map(|v| v.to_string())
                .or_else(|| self.min_creep.clone())
                .unwrap_or_default();
            return Err(ConfigError::invalid(
                key,
                value,
                "judges creep, but creep_window = \"off\" measures none",
            ));
        }
        let creep_judged = creep_window.is_some() && (set || default_for("creep"));
        let creep = creep_judged.then(|| CreepRules {
            max_ratio: max_ratio.unwrap_or(DEFAULT_MAX_CREEP_RATIO),
            min_creep: min_creep.unwrap_or(DEFAULT_MIN_CREEP),
        });
        let truncated_ratio = self
            .truncated_ratio
            .map(|v| units::fraction("thresholds.truncated_ratio", v))
            .transpose()?;
        let rss_growth_per_hour = self
            .rss_growth_per_hour
            .as_deref()
            .map(|v| {
                units::parse_size(v).map_err(|reason| {
                    ConfigError::invalid("thresholds.rss_growth_per_hour", v, reason)
                })
            })
            .transpose()?;
        let rss_process = match self.rss_process.as_deref() {
            None => DEFAULT_RSS_PROCESS.to_owned(),
            Some(p) if p.trim().is_empty() => {
                return Err(ConfigError::invalid(
                    "thresholds.rss_process",
                    p,
                    "must name a monitored process",
                ))
            }
            Some(p) => p.to_owned(),
        };
        let max_retry_amplification = self
            .max_retry_amplification
            .map(|v| {
                if v.is_finite() && v >= 1.0 {
                    Ok(v)
                } else {
                    Err(ConfigError::invalid(
                        "thresholds.max_retry_amplification",
                        v,
                        "must be at least 1 (one attempt per client request)",
                    ))
                }
            })
            .transpose()?;
        let max_recovery = self
            .max_recovery
            .as_deref()
            .map(|v| units::duration("thresholds.max_recovery", v))
            .transpose()?;
        let stages = || stage_thresholds().iter().map(|(_, t)| t.as_str());
        if let Some((key, value)) = self.other.iter().find(|(k, _)| !stages().any(|t| t == *k)) {
            let known: Vec<&str> = stages().collect();
            return Err(ConfigError::invalid(
                format!("thresholds.{key}"),
                value,
                format!(
                    "unknown key in [thresholds] (the per-stage keys are {})",
                    known.join(", ")
                ),
            ));
        }
        let mut p99_proxy_added = Vec::new();
        for name in stages() {
            if let Some(v) = self.other.get(name) {
                let field = format!("thresholds.{name}");
                let Some(text) = v.as_str() else {
                    return Err(ConfigError::invalid(
                        field,
                        v,
                        "must be a duration such as \"50ms\"",
                    ));
                };
                p99_proxy_added.push((name, units::positive_duration(&field, text)?));
            }
        }
        let proxy = ProxyLimits {
            max_orphans: self.max_orphans,
            max_not_propagated_ratio: self
                .max_not_propagated_ratio
                .map(|v| units::fraction("thresholds.max_not_propagated_ratio", v))
                .transpose()?,
            max_wasted_output_tokens: self.max_wasted_output_tokens,
        };
        Ok(Thresholds {
            max_retry_amplification,
            max_ghost_attempts: self.max_ghost_attempts,
            max_retry_after_violations: self.max_retry_after_violations,
            max_recovery,
            p99_proxy_added,
            abort_on_fail: self.abort_on_fail,
            p99_ttft,
            p99_duration,
            error_ratio,
            truncated_ratio,
            max_dropped,
            max_aborted: self.max_aborted,
            leak_verdicts,
            defaulted,
            rss_growth_per_hour,
            rss_process,
            min_requests: self.min_requests.unwrap_or(DEFAULT_MIN_REQUESTS),
            min_released_share: self
                .min_released_share
                .map(|v| units::fraction("thresholds.min_released_share", v))
                .transpose()?,
            creep_window,
            creep,
            proxy,
        })
    }
}

/// Validated thresholds; build with [`RawThresholds::validate`].
#[derive(Debug, Clone, PartialEq)]
pub struct Thresholds {
    /// Stop the run as soon as a live evaluation has a failed threshold.
    pub abort_on_fail: bool,
    /// Limit on the p99 time to first token.
    pub p99_ttft: Option<Duration>,
    /// Limit on the p99 end-to-end request duration.
    pub p99_duration: Option<Duration>,
    /// Limit on errors / requests, a fraction in 0..=1.
    pub error_ratio: Option<f64>,
    /// Limit on truncated streams / finished streams, a fraction in 0..=1.
    pub truncated_ratio: Option<f64>,
    /// Limit on dropped (scheduled but never sent) requests.
    pub max_dropped: Option<u64>,
    /// Limit on requests still running at the end of the grace period (`aborted`).
    pub max_aborted: Option<u64>,
    /// Every monitored process's leak verdict is judged (except soakd's own and processes
    /// with `fail_on_leak = false`).
    pub leak_verdicts: bool,
    /// Thresholds that hold their default because the config left them unset: any of
    /// `error_ratio`, `dropped`, `leak`, `creep`.
    pub defaulted: Vec<&'static str>,
    /// Limit on RSS growth of [`Thresholds::rss_process`], in bytes per hour.
    pub rss_growth_per_hour: Option<u64>,
    /// The monitored process whose RSS growth is judged.
    pub rss_process: String,
    /// Ratios are judged live only once their denominator reaches this count.
    pub min_requests: u64,
    /// Least released share of each judged process after the cooldown.
    pub min_released_share: Option<f64>,
    /// The creep windows' length; `None` when `creep_window = "off"` (no creep measured).
    pub creep_window: Option<Duration>,
    /// How creep is judged; `None` when it is not.
    pub creep: Option<CreepRules>,
    /// Limits on the two-sided soak's give-ups.
    pub proxy: ProxyLimits,
    /// Limit on upstream attempts per client request (during storms, else over the run).
    pub max_retry_amplification: Option<f64>,
    /// Limit on ghost attempts.
    pub max_ghost_attempts: Option<u64>,
    /// Limit on `Retry-After` violations.
    pub max_retry_after_violations: Option<u64>,
    /// Limit on the recovery after any storm occurrence.
    pub max_recovery: Option<Duration>,
    /// (threshold name, limit) of each `p99_proxy_added_<stage>`, in stage order.
    pub p99_proxy_added: Vec<(&'static str, Duration)>,
}

impl Thresholds {
    /// The proxy thresholds need the two-sided soak (`storms`: `None` when `[upstream]` is
    /// off, else whether storms are configured), and `max_recovery` needs storms.
    pub fn check_two_sided(&self, storms: Option<bool>) -> Result<(), ConfigError> {
        let set = [
            (
                "max_retry_amplification",
                self.max_retry_amplification.is_some(),
            ),
            ("max_ghost_attempts", self.max_ghost_attempts.is_some()),
            (
                "max_retry_after_violations",
                self.max_retry_after_violations.is_some(),
            ),
            ("max_recovery", self.max_recovery.is_some()),
        ]
        .into_iter()
        .filter(|(_, on)| *on)
        .map(|(k, _)| k)
        .chain(self.p99_proxy_added.iter().map(|(n, _)| *n));
        for key in set {
            match storms {
                None => {
                    return Err(ConfigError::invalid(
                        format!("thresholds.{key}"),
                        "(set)",
                        "judges the proxy from both sides: needs [upstream] listen",
                    ))
                }
                Some(false) if key == "max_recovery" => {
                    return Err(ConfigError::invalid(
                        "thresholds.max_recovery",
                        "(set)",
                        "judges recovery after storms: needs [[upstream.storms]]",
                    ))
                }
                Some(_) => {}
            }
        }
        Ok(())
    }
}
