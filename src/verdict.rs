//! Pass/fail verdicts: k6-style thresholds judged live and at the end of a run.
//!
//! # Design
//! The `[thresholds]` section of the config is read into [`RawThresholds`] (strings, as the
//! user wrote them) and validated once into [`Thresholds`] (typed `Duration`s, byte counts and
//! ratios). Evaluation is a pure function: the daemon gathers a [`VerdictInputs`] snapshot from
//! its counters, HDR histograms and leak estimator, calls [`Thresholds::evaluate`] and gets one
//! [`ThresholdResult`] per configured threshold. The module keeps no state, does no I/O and
//! never exits the process; the binary exports `soakd_threshold_passing{threshold}`, prints the
//! results and maps the [`ExitVerdict`] to an exit code.
//!
//! # Live and final evaluation
//! Each result is in one of three states ([`ThresholdStatus`]):
//! - **pass**: there is data and it is within the limit (`observed <= limit`);
//! - **fail**: there is data and it exceeds the limit;
//! - **pending**: only during a live evaluation (`final_ = false`), when there is not enough
//!   data to judge yet: no TTFT/duration samples, fewer than `min_requests` requests (or
//!   finished streams, for `truncated_ratio`), or too little RSS history to fit a slope.
//!   A pending threshold is not failing: `passed` is `true` and `abort_on_fail` ignores it.
//!
//! At the final evaluation nothing is pending:
//! - ratios are judged whatever the request count (`min_requests` only delays live judgement);
//! - a threshold with **no data at all** fails with a message containing `no data` — a latency
//!   threshold with no sample, a ratio with a zero denominator (no request, or no finished
//!   stream for `truncated_ratio`);
//! - `rss_growth` with not enough data to fit a slope **fails** too: a soak too short to judge
//!   memory growth is not a pass. Run longer, or drop `rss_growth_per_hour`.
//!
//! `dropped` always has data (a count of zero is data) and is never pending.
//!
//! # Exit codes
//! The binary maps outcomes to these process exit codes (see [`exit_code`]):
//! - `0` ([`exit_code::PASS`]): every threshold passed (or none configured);
//! - `1` ([`exit_code::THRESHOLD_FAILED`]): at least one threshold failed;
//! - `2` ([`exit_code::RUNTIME_FAILURE`]): the run itself failed (I/O, panic, bind error…);
//! - `78` ([`exit_code::BAD_CONFIG`]): the configuration is invalid (`EX_CONFIG`).

use std::collections::BTreeMap;
use std::time::Duration;

use crate::config::ConfigError;

/// Process exit codes of `soakd run`; the binary maps verdicts and errors to these.
pub mod exit_code {
    /// Every threshold passed, or none was configured.
    pub const PASS: u8 = 0;
    /// At least one threshold failed (live with `abort_on_fail`, or at the end).
    pub const THRESHOLD_FAILED: u8 = 1;
    /// The run failed for a reason other than a threshold (I/O, bind, internal error).
    pub const RUNTIME_FAILURE: u8 = 2;
    /// The configuration was invalid (`EX_CONFIG` from sysexits.h).
    pub const BAD_CONFIG: u8 = 78;
}

/// Default for [`RawThresholds::min_requests`].
pub const DEFAULT_MIN_REQUESTS: u64 = 100;
/// Default for [`RawThresholds::rss_process`].
pub const DEFAULT_RSS_PROCESS: &str = "target";

/// The `[thresholds]` section as written in the config file.
#[derive(Debug, Clone, Default, PartialEq, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawThresholds {
    /// Stop the run as soon as a threshold fails during a live evaluation.
    pub abort_on_fail: bool,
    /// p99 time to first token must stay at or below this duration, e.g. `"2s"`.
    pub p99_ttft: Option<String>,
    /// p99 end-to-end request duration must stay at or below this duration, e.g. `"30s"`.
    pub p99_duration: Option<String>,
    /// Maximum fraction (0..=1) of finished requests whose outcome is neither ok nor cancelled.
    pub error_ratio: Option<f64>,
    /// Maximum fraction (0..=1) of finished streams that were truncated.
    pub truncated_ratio: Option<f64>,
    /// Scheduled-but-never-sent requests allowed (`0` = none).
    pub max_dropped: Option<u64>,
    /// Maximum RSS growth per hour of `rss_process`, as a size such as `"50MiB"`; judged on the
    /// robust slope over the longest window that has data.
    pub rss_growth_per_hour: Option<String>,
    /// The monitored process whose RSS growth is judged (default `"target"`).
    pub rss_process: Option<String>,
    /// Ratios are judged live only after this many requests (default 100); the final
    /// evaluation judges them regardless.
    pub min_requests: Option<u64>,
}

impl RawThresholds {
    /// Validates the raw section into typed [`Thresholds`].
    ///
    /// Errors name the field (`thresholds.<key>`), the value and the reason.
    pub fn validate(&self) -> Result<Thresholds, ConfigError> {
        let p99_ttft = self
            .p99_ttft
            .as_deref()
            .map(|v| parse_limit_duration("thresholds.p99_ttft", v))
            .transpose()?;
        let p99_duration = self
            .p99_duration
            .as_deref()
            .map(|v| parse_limit_duration("thresholds.p99_duration", v))
            .transpose()?;
        let error_ratio = self
            .error_ratio
            .map(|v| check_ratio("thresholds.error_ratio", v))
            .transpose()?;
        let truncated_ratio = self
            .truncated_ratio
            .map(|v| check_ratio("thresholds.truncated_ratio", v))
            .transpose()?;
        let rss_growth_per_hour = self
            .rss_growth_per_hour
            .as_deref()
            .map(|v| {
                parse_size(v).map_err(|reason| {
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
        Ok(Thresholds {
            abort_on_fail: self.abort_on_fail,
            p99_ttft,
            p99_duration,
            error_ratio,
            truncated_ratio,
            max_dropped: self.max_dropped,
            rss_growth_per_hour,
            rss_process,
            min_requests: self.min_requests.unwrap_or(DEFAULT_MIN_REQUESTS),
        })
    }
}

fn parse_limit_duration(field: &str, value: &str) -> Result<Duration, ConfigError> {
    let d = humantime::parse_duration(value.trim())
        .map_err(|e| ConfigError::invalid(field, value, format!("not a duration ({e})")))?;
    if d.is_zero() {
        return Err(ConfigError::invalid(
            field,
            value,
            "must be greater than zero",
        ));
    }
    Ok(d)
}

fn check_ratio(field: &str, value: f64) -> Result<f64, ConfigError> {
    if !value.is_finite() || !(0.0..=1.0).contains(&value) {
        return Err(ConfigError::invalid(
            field,
            value,
            "must be a fraction between 0 and 1 (0.01 = 1%)",
        ));
    }
    Ok(value)
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
        "mib" | "mi" => 1024.0 * 1024.0,
        "gib" | "gi" => 1024.0 * 1024.0 * 1024.0,
        "tib" | "ti" => 1024.0 * 1024.0 * 1024.0 * 1024.0,
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
    /// Limit on RSS growth of [`Thresholds::rss_process`], in bytes per hour.
    pub rss_growth_per_hour: Option<u64>,
    /// The monitored process whose RSS growth is judged.
    pub rss_process: String,
    /// Ratios are judged live only once their denominator reaches this count.
    pub min_requests: u64,
}

/// A snapshot of what the run observed so far, gathered by the daemon for an evaluation.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct VerdictInputs {
    /// Finished requests, every outcome included.
    pub requests: u64,
    /// Finished requests whose outcome is neither ok nor cancelled.
    pub errors: u64,
    /// Finished streams, every result included.
    pub streams: u64,
    /// Finished streams whose result is truncated.
    pub streams_truncated: u64,
    /// Requests scheduled but never sent.
    pub dropped: u64,
    /// p99 time to first token; `None` when there is no sample.
    pub p99_ttft: Option<Duration>,
    /// p99 request duration; `None` when there is no sample.
    pub p99_duration: Option<Duration>,
    /// RSS growth in bytes per hour per monitored process (robust slope over the longest window
    /// with data); `None` when there is not enough data to fit a slope.
    pub rss_growth_per_hour: BTreeMap<String, Option<f64>>,
}

/// The state of one threshold after an evaluation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ThresholdStatus {
    /// Judged and within its limit.
    Pass,
    /// Judged and over its limit (or no data at the final evaluation).
    Fail,
    /// Not judged yet: a live evaluation without enough data.
    Pending,
}

/// The outcome of one threshold.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ThresholdResult {
    /// Threshold name: `p99_ttft`, `p99_duration`, `error_ratio`, `truncated_ratio`,
    /// `dropped` or `rss_growth`.
    pub name: &'static str,
    /// `false` only when the threshold failed; a pending threshold counts as passing.
    pub passed: bool,
    /// Pass, fail or pending; pending implies `passed`.
    pub status: ThresholdStatus,
    /// The observed value in `unit`, when there is one.
    pub observed: Option<f64>,
    /// The configured limit in `unit`.
    pub limit: f64,
    /// Unit of `observed` and `limit`: `seconds`, `ratio`, `requests` or `bytes_per_hour`.
    pub unit: &'static str,
    /// Human-readable explanation, e.g. `p99_ttft 2.41s > 2s (exceeded by 0.41s)`.
    pub message: String,
}

/// The run's overall verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ExitVerdict {
    /// No threshold failed.
    Pass,
    /// At least one threshold failed.
    Fail,
}

impl ExitVerdict {
    /// `Fail` when any result failed, otherwise `Pass` (also for no results).
    pub fn from_results(results: &[ThresholdResult]) -> Self {
        if results.iter().any(|r| !r.passed) {
            ExitVerdict::Fail
        } else {
            ExitVerdict::Pass
        }
    }

    /// The process exit code: [`exit_code::PASS`] or [`exit_code::THRESHOLD_FAILED`].
    pub fn exit_code(self) -> u8 {
        match self {
            ExitVerdict::Pass => exit_code::PASS,
            ExitVerdict::Fail => exit_code::THRESHOLD_FAILED,
        }
    }
}

/// How a quantity is printed in messages.
#[derive(Clone, Copy)]
enum Unit {
    Seconds,
    Ratio,
    Requests,
    BytesPerHour,
}

impl Unit {
    fn name(self) -> &'static str {
        match self {
            Unit::Seconds => "seconds",
            Unit::Ratio => "ratio",
            Unit::Requests => "requests",
            Unit::BytesPerHour => "bytes_per_hour",
        }
    }

    fn fmt(self, v: f64) -> String {
        match self {
            Unit::Seconds => format!("{}s", trim_num(v, 3)),
            Unit::Ratio => format!("{}%", trim_num(v * 100.0, 3)),
            Unit::Requests => trim_num(v, 0),
            Unit::BytesPerHour => format!("{}/h", fmt_bytes(v)),
        }
    }

    /// The amount over the limit, in words.
    fn fmt_excess(self, v: f64) -> String {
        match self {
            Unit::Ratio => format!("{} percentage points", trim_num(v * 100.0, 3)),
            _ => self.fmt(v),
        }
    }
}

/// Formats with at most `decimals` decimals, trailing zeros removed.
fn trim_num(v: f64, decimals: usize) -> String {
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

/// Formats a byte amount with the largest binary unit that keeps it at least 1.
fn fmt_bytes(v: f64) -> String {
    const UNITS: [(&str, f64); 4] = [
        ("TiB", 1024.0 * 1024.0 * 1024.0 * 1024.0),
        ("GiB", 1024.0 * 1024.0 * 1024.0),
        ("MiB", 1024.0 * 1024.0),
        ("KiB", 1024.0),
    ];
    for (name, size) in UNITS {
        if v.abs() >= size {
            return format!("{}{name}", trim_num(v / size, 2));
        }
    }
    format!("{}B", trim_num(v, 0))
}

impl ThresholdResult {
    fn judged(name: &'static str, unit: Unit, observed: f64, limit: f64) -> Self {
        let passed = observed <= limit;
        let message = if passed {
            format!(
                "passed: {name} {} <= {}",
                unit.fmt(observed),
                unit.fmt(limit)
            )
        } else {
            format!(
                "{name} {} > {} (exceeded by {})",
                unit.fmt(observed),
                unit.fmt(limit),
                unit.fmt_excess(observed - limit)
            )
        };
        ThresholdResult {
            name,
            passed,
            status: if passed {
                ThresholdStatus::Pass
            } else {
                ThresholdStatus::Fail
            },
            observed: Some(observed),
            limit,
            unit: unit.name(),
            message,
        }
    }

    fn pending(
        name: &'static str,
        unit: Unit,
        observed: Option<f64>,
        limit: f64,
        why: String,
    ) -> Self {
        ThresholdResult {
            name,
            passed: true,
            status: ThresholdStatus::Pending,
            observed,
            limit,
            unit: unit.name(),
            message: format!("pending: {why}"),
        }
    }

    fn failed_no_data(name: &'static str, unit: Unit, limit: f64, why: String) -> Self {
        ThresholdResult {
            name,
            passed: false,
            status: ThresholdStatus::Fail,
            observed: None,
            limit,
            unit: unit.name(),
            message: format!("{name} failed: {why}"),
        }
    }
}

impl Thresholds {
    /// True when no threshold is configured (`abort_on_fail` alone does not count).
    pub fn is_empty(&self) -> bool {
        self.names().is_empty()
    }

    /// Names of the configured thresholds, in evaluation order.
    pub fn names(&self) -> Vec<&'static str> {
        [
            ("p99_ttft", self.p99_ttft.is_some()),
            ("p99_duration", self.p99_duration.is_some()),
            ("error_ratio", self.error_ratio.is_some()),
            ("truncated_ratio", self.truncated_ratio.is_some()),
            ("dropped", self.max_dropped.is_some()),
            ("rss_growth", self.rss_growth_per_hour.is_some()),
        ]
        .into_iter()
        .filter_map(|(n, on)| on.then_some(n))
        .collect()
    }

    /// Judges every configured threshold against `i`, in the order of [`Thresholds::names`].
    ///
    /// `final_ = false` is a live evaluation (thresholds without enough data are pending);
    /// `final_ = true` is the end-of-run evaluation (no data fails). See the module docs.
    pub fn evaluate(&self, i: &VerdictInputs, final_: bool) -> Vec<ThresholdResult> {
        let mut out = Vec::with_capacity(6);
        if let Some(limit) = self.p99_ttft {
            out.push(latency(
                "p99_ttft",
                "time-to-first-token",
                i.p99_ttft,
                limit,
                final_,
            ));
        }
        if let Some(limit) = self.p99_duration {
            out.push(latency(
                "p99_duration",
                "request duration",
                i.p99_duration,
                limit,
                final_,
            ));
        }
        if let Some(limit) = self.error_ratio {
            out.push(self.ratio(
                "error_ratio",
                "requests",
                i.errors,
                i.requests,
                limit,
                final_,
            ));
        }
        if let Some(limit) = self.truncated_ratio {
            out.push(self.ratio(
                "truncated_ratio",
                "finished streams",
                i.streams_truncated,
                i.streams,
                limit,
                final_,
            ));
        }
        if let Some(limit) = self.max_dropped {
            out.push(ThresholdResult::judged(
                "dropped",
                Unit::Requests,
                i.dropped as f64,
                limit as f64,
            ));
        }
        if let Some(limit) = self.rss_growth_per_hour {
            out.push(self.rss_growth(i, limit as f64, final_));
        }
        out
    }

    fn ratio(
        &self,
        name: &'static str,
        what: &str,
        num: u64,
        den: u64,
        limit: f64,
        final_: bool,
    ) -> ThresholdResult {
        let observed = (den > 0).then(|| num as f64 / den as f64);
        match (observed, final_) {
            (None, true) => ThresholdResult::failed_no_data(
                name,
                Unit::Ratio,
                limit,
                format!("no data: no {what} finished during the run"),
            ),
            (Some(o), false) if den < self.min_requests => ThresholdResult::pending(
                name,
                Unit::Ratio,
                Some(o),
                limit,
                format!(
                    "{den} of {} {what} needed to judge (min_requests)",
                    self.min_requests
                ),
            ),
            (None, false) => ThresholdResult::pending(
                name,
                Unit::Ratio,
                None,
                limit,
                format!(
                    "0 of {} {what} needed to judge (min_requests)",
                    self.min_requests
                ),
            ),
            (Some(o), _) => ThresholdResult::judged(name, Unit::Ratio, o, limit),
        }
    }

    fn rss_growth(&self, i: &VerdictInputs, limit: f64, final_: bool) -> ThresholdResult {
        const NAME: &str = "rss_growth";
        let p = &self.rss_process;
        match i.rss_growth_per_hour.get(p) {
            Some(Some(g)) => ThresholdResult::judged(NAME, Unit::BytesPerHour, *g, limit),
            Some(None) if final_ => ThresholdResult::failed_no_data(
                NAME,
                Unit::BytesPerHour,
                limit,
                format!(
                    "not enough data to fit an RSS slope for process {p:?}: \
                     the soak was too short to judge memory growth (run longer or drop \
                     rss_growth_per_hour)"
                ),
            ),
            None if final_ => ThresholdResult::failed_no_data(
                NAME,
                Unit::BytesPerHour,
                limit,
                format!("no data: process {p:?} was never sampled (check [[monitor.processes]])"),
            ),
            Some(None) => ThresholdResult::pending(
                NAME,
                Unit::BytesPerHour,
                None,
                limit,
                format!("not enough RSS samples of process {p:?} to fit a slope yet"),
            ),
            None => ThresholdResult::pending(
                NAME,
                Unit::BytesPerHour,
                None,
                limit,
                format!("no RSS samples of process {p:?} yet"),
            ),
        }
    }
}

fn latency(
    name: &'static str,
    what: &str,
    observed: Option<Duration>,
    limit: Duration,
    final_: bool,
) -> ThresholdResult {
    let limit = limit.as_secs_f64();
    match observed {
        Some(d) => ThresholdResult::judged(name, Unit::Seconds, d.as_secs_f64(), limit),
        None if final_ => ThresholdResult::failed_no_data(
            name,
            Unit::Seconds,
            limit,
            format!("no data: no {what} samples were recorded"),
        ),
        None => ThresholdResult::pending(
            name,
            Unit::Seconds,
            None,
            limit,
            format!("no {what} samples yet"),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: f64 = 1024.0 * 1024.0;

    fn raw() -> RawThresholds {
        RawThresholds::default()
    }

    fn all() -> Thresholds {
        RawThresholds {
            abort_on_fail: true,
            p99_ttft: Some("2s".into()),
            p99_duration: Some("30s".into()),
            error_ratio: Some(0.01),
            truncated_ratio: Some(0.005),
            max_dropped: Some(0),
            rss_growth_per_hour: Some("50MiB".into()),
            rss_process: None,
            min_requests: None,
        }
        .validate()
        .expect("valid")
    }

    fn only(f: impl FnOnce(&mut RawThresholds)) -> Thresholds {
        let mut r = raw();
        f(&mut r);
        r.validate().expect("valid")
    }

    fn one(t: &Thresholds, i: &VerdictInputs, final_: bool) -> ThresholdResult {
        let mut v = t.evaluate(i, final_);
        assert_eq!(v.len(), 1, "{v:?}");
        v.remove(0)
    }

    fn invalid_field(r: RawThresholds) -> (String, String, String) {
        match r.validate() {
            Err(ConfigError::Invalid {
                field,
                value,
                reason,
            }) => (field, value, reason),
            other => panic!("expected Invalid, got {other:?}"),
        }
    }

    // ---------- validation ----------

    #[test]
    fn validate_defaults_and_all_fields() {
        let t = all();
        assert!(t.abort_on_fail);
        assert_eq!(t.p99_ttft, Some(Duration::from_secs(2)));
        assert_eq!(t.p99_duration, Some(Duration::from_secs(30)));
        assert_eq!(t.error_ratio, Some(0.01));
        assert_eq!(t.truncated_ratio, Some(0.005));
        assert_eq!(t.max_dropped, Some(0));
        assert_eq!(t.rss_growth_per_hour, Some(50 * 1024 * 1024));
        assert_eq!(t.rss_process, "target");
        assert_eq!(t.min_requests, 100);
        let empty = raw().validate().unwrap();
        assert!(empty.is_empty());
        assert!(empty.names().is_empty());
        assert!(empty.evaluate(&VerdictInputs::default(), true).is_empty());
    }

    #[test]
    fn names_follow_configuration_and_order() {
        assert_eq!(
            all().names(),
            vec![
                "p99_ttft",
                "p99_duration",
                "error_ratio",
                "truncated_ratio",
                "dropped",
                "rss_growth"
            ]
        );
        let t = only(|r| {
            r.max_dropped = Some(3);
            r.p99_ttft = Some("1s".into());
        });
        assert_eq!(t.names(), vec!["p99_ttft", "dropped"]);
        assert!(!t.is_empty());
        // abort_on_fail alone configures no threshold.
        assert!(only(|r| r.abort_on_fail = true).is_empty());
    }

    #[test]
    fn validate_rejects_negative_ratio() {
        let (f, v, reason) = invalid_field(RawThresholds {
            error_ratio: Some(-0.1),
            ..raw()
        });
        assert_eq!(f, "thresholds.error_ratio");
        assert_eq!(v, "-0.1");
        assert!(reason.contains("between 0 and 1"), "{reason}");
    }

    #[test]
    fn validate_rejects_ratio_above_one_and_nan() {
        let (f, v, _) = invalid_field(RawThresholds {
            truncated_ratio: Some(1.5),
            ..raw()
        });
        assert_eq!(
            (f.as_str(), v.as_str()),
            ("thresholds.truncated_ratio", "1.5")
        );
        let (f, _, _) = invalid_field(RawThresholds {
            error_ratio: Some(f64::NAN),
            ..raw()
        });
        assert_eq!(f, "thresholds.error_ratio");
        // The bounds themselves are valid.
        assert!(RawThresholds {
            error_ratio: Some(0.0),
            truncated_ratio: Some(1.0),
            ..raw()
        }
        .validate()
        .is_ok());
    }

    #[test]
    fn validate_rejects_bad_durations() {
        let (f, v, reason) = invalid_field(RawThresholds {
            p99_ttft: Some("two seconds".into()),
            ..raw()
        });
        assert_eq!(f, "thresholds.p99_ttft");
        assert_eq!(v, "two seconds");
        assert!(reason.contains("not a duration"), "{reason}");
        let (f, _, reason) = invalid_field(RawThresholds {
            p99_duration: Some("0s".into()),
            ..raw()
        });
        assert_eq!(f, "thresholds.p99_duration");
        assert!(reason.contains("greater than zero"), "{reason}");
        let t = only(|r| r.p99_ttft = Some("1500ms".into()));
        assert_eq!(t.p99_ttft, Some(Duration::from_millis(1500)));
    }

    #[test]
    fn validate_rejects_bad_sizes() {
        for bad in [
            "50 parsecs",
            "MiB",
            "",
            "-5MiB",
            "1.2.3MiB",
            "99999999999TiB",
        ] {
            let (f, v, _) = invalid_field(RawThresholds {
                rss_growth_per_hour: Some(bad.into()),
                ..raw()
            });
            assert_eq!(f, "thresholds.rss_growth_per_hour", "{bad}");
            assert_eq!(v, bad);
        }
    }

    #[test]
    fn validate_rejects_empty_rss_process() {
        let (f, _, _) = invalid_field(RawThresholds {
            rss_process: Some("  ".into()),
            ..raw()
        });
        assert_eq!(f, "thresholds.rss_process");
        assert_eq!(
            only(|r| r.rss_process = Some("proxy".into())).rss_process,
            "proxy"
        );
    }

    #[test]
    fn raw_rejects_unknown_keys() {
        let err = serde_json::from_str::<RawThresholds>(r#"{"p99_ttf": "2s"}"#).unwrap_err();
        assert!(err.to_string().contains("unknown field"), "{err}");
        let ok: RawThresholds =
            serde_json::from_str(r#"{"p99_ttft": "2s", "max_dropped": 0}"#).unwrap();
        assert_eq!(ok.p99_ttft.as_deref(), Some("2s"));
        assert_eq!(ok.max_dropped, Some(0));
        assert!(!ok.abort_on_fail);
    }

    #[test]
    fn parse_size_units() {
        assert_eq!(parse_size("1048576"), Ok(1_048_576));
        assert_eq!(parse_size("512B"), Ok(512));
        assert_eq!(parse_size("512KB"), Ok(512_000));
        assert_eq!(parse_size("512kb"), Ok(512_000));
        assert_eq!(parse_size("4KiB"), Ok(4096));
        assert_eq!(parse_size("50MiB"), Ok(50 * 1024 * 1024));
        assert_eq!(parse_size("50 MiB"), Ok(50 * 1024 * 1024));
        assert_eq!(parse_size("10MB"), Ok(10_000_000));
        assert_eq!(parse_size("1GiB"), Ok(1 << 30));
        assert_eq!(parse_size("1.5GiB"), Ok(3 << 29));
        assert_eq!(parse_size("2GB"), Ok(2_000_000_000));
        assert_eq!(parse_size("1TiB"), Ok(1 << 40));
        assert_eq!(parse_size("0"), Ok(0));
        assert!(parse_size("5 XB")
            .unwrap_err()
            .contains("unknown size unit"));
    }

    // ---------- latency ----------

    #[test]
    fn p99_ttft_pass_fail_pending_no_data() {
        let t = only(|r| r.p99_ttft = Some("2s".into()));
        let mut i = VerdictInputs {
            p99_ttft: Some(Duration::from_millis(1200)),
            ..Default::default()
        };
        let r = one(&t, &i, false);
        assert_eq!(r.name, "p99_ttft");
        assert_eq!(r.status, ThresholdStatus::Pass);
        assert!(r.passed);
        assert_eq!(r.observed, Some(1.2));
        assert_eq!(r.limit, 2.0);
        assert_eq!(r.unit, "seconds");
        assert_eq!(r.message, "passed: p99_ttft 1.2s <= 2s");

        i.p99_ttft = Some(Duration::from_millis(2410));
        for final_ in [false, true] {
            let r = one(&t, &i, final_);
            assert_eq!(r.status, ThresholdStatus::Fail);
            assert!(!r.passed);
            assert_eq!(r.message, "p99_ttft 2.41s > 2s (exceeded by 0.41s)");
        }

        // Exactly at the limit passes.
        i.p99_ttft = Some(Duration::from_secs(2));
        assert!(one(&t, &i, true).passed);

        i.p99_ttft = None;
        let live = one(&t, &i, false);
        assert_eq!(live.status, ThresholdStatus::Pending);
        assert!(live.passed);
        assert_eq!(live.observed, None);
        assert!(live.message.starts_with("pending:"), "{}", live.message);

        let fin = one(&t, &i, true);
        assert_eq!(fin.status, ThresholdStatus::Fail);
        assert!(!fin.passed);
        assert!(fin.message.contains("no data"), "{}", fin.message);
    }

    #[test]
    fn p99_duration_pass_fail_pending_no_data() {
        let t = only(|r| r.p99_duration = Some("30s".into()));
        let mut i = VerdictInputs {
            p99_duration: Some(Duration::from_secs(29)),
            ..Default::default()
        };
        assert_eq!(one(&t, &i, true).status, ThresholdStatus::Pass);
        i.p99_duration = Some(Duration::from_millis(45_500));
        let r = one(&t, &i, false);
        assert_eq!(r.name, "p99_duration");
        assert_eq!(r.status, ThresholdStatus::Fail);
        assert_eq!(r.message, "p99_duration 45.5s > 30s (exceeded by 15.5s)");
        i.p99_duration = None;
        assert_eq!(one(&t, &i, false).status, ThresholdStatus::Pending);
        let fin = one(&t, &i, true);
        assert!(!fin.passed);
        assert!(fin.message.contains("no data"));
    }

    // ---------- ratios ----------

    #[test]
    fn error_ratio_pass_and_fail() {
        let t = only(|r| r.error_ratio = Some(0.01));
        let i = VerdictInputs {
            requests: 1000,
            errors: 8,
            ..Default::default()
        };
        let r = one(&t, &i, false);
        assert_eq!(r.name, "error_ratio");
        assert_eq!(r.status, ThresholdStatus::Pass);
        assert_eq!(r.unit, "ratio");
        assert_eq!(r.observed, Some(0.008));
        assert_eq!(r.message, "passed: error_ratio 0.8% <= 1%");

        let i = VerdictInputs {
            requests: 1000,
            errors: 25,
            ..Default::default()
        };
        let r = one(&t, &i, true);
        assert_eq!(r.status, ThresholdStatus::Fail);
        assert_eq!(r.observed, Some(0.025));
        assert_eq!(
            r.message,
            "error_ratio 2.5% > 1% (exceeded by 1.5 percentage points)"
        );
    }

    #[test]
    fn error_ratio_below_min_requests_pending_live_judged_at_end() {
        let t = only(|r| {
            r.error_ratio = Some(0.01);
            r.min_requests = Some(200);
        });
        let i = VerdictInputs {
            requests: 150,
            errors: 30,
            ..Default::default()
        };
        let live = one(&t, &i, false);
        assert_eq!(live.status, ThresholdStatus::Pending);
        assert!(live.passed);
        assert_eq!(live.observed, Some(0.2));
        assert!(live.message.contains("150 of 200"), "{}", live.message);
        let fin = one(&t, &i, true);
        assert_eq!(fin.status, ThresholdStatus::Fail);
        assert!(
            fin.message.contains("exceeded by 19 percentage points"),
            "{}",
            fin.message
        );

        // Once the denominator reaches min_requests the live evaluation judges.
        let i = VerdictInputs {
            requests: 200,
            errors: 30,
            ..Default::default()
        };
        assert_eq!(one(&t, &i, false).status, ThresholdStatus::Fail);
    }

    #[test]
    fn error_ratio_no_requests() {
        let t = only(|r| r.error_ratio = Some(0.01));
        let i = VerdictInputs::default();
        assert_eq!(one(&t, &i, false).status, ThresholdStatus::Pending);
        let fin = one(&t, &i, true);
        assert_eq!(fin.status, ThresholdStatus::Fail);
        assert_eq!(fin.observed, None);
        assert!(fin.message.contains("no data"), "{}", fin.message);
    }

    #[test]
    fn truncated_ratio_uses_streams_as_denominator() {
        let t = only(|r| {
            r.truncated_ratio = Some(0.005);
            r.min_requests = Some(10);
        });
        // Many requests but few streams: still pending live.
        let i = VerdictInputs {
            requests: 10_000,
            streams: 5,
            streams_truncated: 1,
            ..Default::default()
        };
        assert_eq!(one(&t, &i, false).status, ThresholdStatus::Pending);
        let i = VerdictInputs {
            requests: 10_000,
            streams: 2000,
            streams_truncated: 4,
            ..Default::default()
        };
        let r = one(&t, &i, false);
        assert_eq!(r.name, "truncated_ratio");
        assert_eq!(r.status, ThresholdStatus::Pass);
        assert_eq!(r.message, "passed: truncated_ratio 0.2% <= 0.5%");
        let i = VerdictInputs {
            streams: 2000,
            streams_truncated: 30,
            ..Default::default()
        };
        let r = one(&t, &i, true);
        assert_eq!(r.status, ThresholdStatus::Fail);
        assert_eq!(
            r.message,
            "truncated_ratio 1.5% > 0.5% (exceeded by 1 percentage points)"
        );
        let fin = one(&t, &VerdictInputs::default(), true);
        assert!(!fin.passed);
        assert!(fin.message.contains("no data"));
    }

    #[test]
    fn min_requests_zero_judges_immediately() {
        let t = only(|r| {
            r.error_ratio = Some(0.5);
            r.min_requests = Some(0);
        });
        let i = VerdictInputs {
            requests: 1,
            errors: 1,
            ..Default::default()
        };
        assert_eq!(one(&t, &i, false).status, ThresholdStatus::Fail);
    }

    // ---------- dropped ----------

    #[test]
    fn dropped_pass_fail_never_pending() {
        let t = only(|r| r.max_dropped = Some(0));
        let i = VerdictInputs::default();
        for final_ in [false, true] {
            let r = one(&t, &i, final_);
            assert_eq!(r.name, "dropped");
            assert_eq!(r.status, ThresholdStatus::Pass);
            assert_eq!(r.observed, Some(0.0));
            assert_eq!(r.unit, "requests");
            assert_eq!(r.message, "passed: dropped 0 <= 0");
        }
        let t = only(|r| r.max_dropped = Some(10));
        let i = VerdictInputs {
            dropped: 17,
            ..Default::default()
        };
        let r = one(&t, &i, false);
        assert_eq!(r.status, ThresholdStatus::Fail);
        assert_eq!(r.message, "dropped 17 > 10 (exceeded by 7)");
    }

    // ---------- rss growth ----------

    fn rss(proc_: &str, v: Option<f64>) -> VerdictInputs {
        VerdictInputs {
            rss_growth_per_hour: BTreeMap::from([(proc_.to_owned(), v)]),
            ..Default::default()
        }
    }

    #[test]
    fn rss_growth_pass_and_fail() {
        let t = only(|r| r.rss_growth_per_hour = Some("50MiB".into()));
        let r = one(&t, &rss("target", Some(12.5 * MIB)), false);
        assert_eq!(r.name, "rss_growth");
        assert_eq!(r.status, ThresholdStatus::Pass);
        assert_eq!(r.unit, "bytes_per_hour");
        assert_eq!(r.limit, 50.0 * MIB);
        assert_eq!(r.message, "passed: rss_growth 12.5MiB/h <= 50MiB/h");
        // Shrinking memory passes.
        assert!(one(&t, &rss("target", Some(-3.0 * MIB)), true).passed);

        let r = one(&t, &rss("target", Some(62.5 * MIB)), true);
        assert_eq!(r.status, ThresholdStatus::Fail);
        assert_eq!(r.observed, Some(62.5 * MIB));
        assert_eq!(
            r.message,
            "rss_growth 62.5MiB/h > 50MiB/h (exceeded by 12.5MiB/h)"
        );
    }

    #[test]
    fn rss_growth_not_enough_data_pending_live_fails_at_end() {
        let t = only(|r| r.rss_growth_per_hour = Some("1GiB".into()));
        let i = rss("target", None);
        let live = one(&t, &i, false);
        assert_eq!(live.status, ThresholdStatus::Pending);
        assert!(live.passed);
        let fin = one(&t, &i, true);
        assert_eq!(fin.status, ThresholdStatus::Fail);
        assert!(!fin.passed);
        assert!(fin.message.contains("not enough data"), "{}", fin.message);
        assert!(fin.message.contains("too short"), "{}", fin.message);
    }

    #[test]
    fn rss_growth_judges_the_configured_process_only() {
        let t = only(|r| {
            r.rss_growth_per_hour = Some("1MiB".into());
            r.rss_process = Some("proxy".into());
        });
        // Only "target" and "soakd" have data: "proxy" has none.
        let mut i = rss("target", Some(500.0 * MIB));
        i.rss_growth_per_hour.insert("soakd".into(), Some(0.0));
        assert_eq!(one(&t, &i, false).status, ThresholdStatus::Pending);
        let fin = one(&t, &i, true);
        assert!(!fin.passed);
        assert!(fin.message.contains("no data"), "{}", fin.message);
        assert!(fin.message.contains("\"proxy\""), "{}", fin.message);
        i.rss_growth_per_hour
            .insert("proxy".into(), Some(100.0 * 1024.0));
        let r = one(&t, &i, true);
        assert!(r.passed);
        assert_eq!(r.message, "passed: rss_growth 100KiB/h <= 1MiB/h");
    }

    // ---------- whole evaluation and verdict ----------

    #[test]
    fn evaluate_all_and_exit_verdict() {
        let t = all();
        let healthy = VerdictInputs {
            requests: 10_000,
            errors: 10,
            streams: 8000,
            streams_truncated: 2,
            dropped: 0,
            p99_ttft: Some(Duration::from_millis(900)),
            p99_duration: Some(Duration::from_secs(12)),
            rss_growth_per_hour: BTreeMap::from([("target".into(), Some(MIB))]),
        };
        let res = t.evaluate(&healthy, true);
        let names: Vec<_> = res.iter().map(|r| r.name).collect();
        assert_eq!(names, t.names());
        assert!(
            res.iter().all(|r| r.status == ThresholdStatus::Pass),
            "{res:?}"
        );
        assert_eq!(ExitVerdict::from_results(&res), ExitVerdict::Pass);
        assert_eq!(ExitVerdict::from_results(&res).exit_code(), exit_code::PASS);

        let mut sick = healthy.clone();
        sick.dropped = 1;
        let res = t.evaluate(&sick, false);
        let failed: Vec<_> = res.iter().filter(|r| !r.passed).map(|r| r.name).collect();
        assert_eq!(failed, vec!["dropped"]);
        assert_eq!(ExitVerdict::from_results(&res), ExitVerdict::Fail);
        assert_eq!(ExitVerdict::Fail.exit_code(), exit_code::THRESHOLD_FAILED);

        // Early in a run: everything without data is pending, nothing fails.
        let res = t.evaluate(&VerdictInputs::default(), false);
        assert_eq!(ExitVerdict::from_results(&res), ExitVerdict::Pass);
        assert_eq!(
            res.iter()
                .filter(|r| r.status == ThresholdStatus::Pending)
                .count(),
            5
        );
        // The same inputs at the end: every data-less threshold fails.
        let res = t.evaluate(&VerdictInputs::default(), true);
        let failed: Vec<_> = res.iter().filter(|r| !r.passed).map(|r| r.name).collect();
        assert_eq!(
            failed,
            vec![
                "p99_ttft",
                "p99_duration",
                "error_ratio",
                "truncated_ratio",
                "rss_growth"
            ]
        );
        assert_eq!(ExitVerdict::from_results(&[]), ExitVerdict::Pass);
    }

    #[test]
    fn exit_codes_match_documented_contract() {
        let codes = [
            exit_code::PASS,
            exit_code::THRESHOLD_FAILED,
            exit_code::RUNTIME_FAILURE,
            exit_code::BAD_CONFIG,
        ];
        assert_eq!(codes, [0, 1, 2, 78]);
    }

    #[test]
    fn result_serializes_for_summary_json() {
        let t = only(|r| r.p99_ttft = Some("2s".into()));
        let r = one(&t, &VerdictInputs::default(), false);
        let v = serde_json::to_value(&r).unwrap();
        assert_eq!(v["name"], "p99_ttft");
        assert_eq!(v["status"], "pending");
        assert_eq!(v["passed"], true);
        assert_eq!(v["observed"], serde_json::Value::Null);
        assert_eq!(v["limit"], 2.0);
        assert_eq!(v["unit"], "seconds");
    }

    #[test]
    fn formatting_helpers() {
        assert_eq!(trim_num(2.0, 3), "2");
        assert_eq!(trim_num(0.41, 3), "0.41");
        assert_eq!(trim_num(-0.0001, 3), "0");
        assert_eq!(fmt_bytes(512.0), "512B");
        assert_eq!(fmt_bytes(1536.0), "1.5KiB");
        assert_eq!(fmt_bytes(-2.0 * MIB), "-2MiB");
        assert_eq!(fmt_bytes(3.0 * 1024.0 * MIB), "3GiB");
    }
}
