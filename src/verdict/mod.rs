//! Pass/fail verdicts: k6-style thresholds judged live and at the end of a run.
//!
//! # Design
//! The `[thresholds]` section of the config is read into [`RawThresholds`] (strings, as the
//! user wrote them) and validated once ([`settings`]) into [`Thresholds`] (typed `Duration`s, byte counts and
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
//! [`ExitVerdict::exit_code`] maps the verdict to [`crate::exit::PASS`] or [`crate::exit::FAIL`];
//! every exit code of soakd is in [`crate::exit`].

use std::collections::BTreeMap;
use std::time::Duration;

use crate::units::{fmt_bytes, trim_num};

pub mod settings;

pub use settings::{RawThresholds, Thresholds, DEFAULT_MIN_REQUESTS, DEFAULT_RSS_PROCESS};

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

    /// The process exit code: [`crate::exit::PASS`] or [`crate::exit::FAIL`].
    pub fn exit_code(self) -> u8 {
        match self {
            ExitVerdict::Pass => crate::exit::PASS,
            ExitVerdict::Fail => crate::exit::FAIL,
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
mod tests;
