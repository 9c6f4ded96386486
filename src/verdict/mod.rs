//! Pass/fail verdicts: k6-style thresholds judged live and at the end of a run, and the
//! monitor's leak verdicts as thresholds of their own.
//!
//! # Design
//! The `[thresholds]` section of the config is read into [`RawThresholds`] (strings, as the
//! user wrote them) and validated once ([`settings`]) into [`Thresholds`] (typed `Duration`s,
//! byte counts and ratios). Evaluation is a pure function: the daemon gathers a
//! [`VerdictInputs`] snapshot from its counters, HDR histograms and the monitor's report,
//! calls [`Thresholds::evaluate`] and gets one [`ThresholdResult`] per threshold. The module
//! keeps no state, does no I/O and never exits the process; the binary exports
//! `soakd_threshold_passing{threshold}`, prints the results and maps the [`ExitVerdict`] to an
//! exit code.
//!
//! # Defaults
//! Unless `[thresholds] defaults = false`, every one of these keys the config leaves unset
//! takes its default, key by key (a config that sets only `p99_ttft` keeps all three):
//! - `error_ratio` = 0.05 ([`DEFAULT_ERROR_RATIO`]);
//! - `max_dropped` = 0 ([`DEFAULT_MAX_DROPPED`]): a saturated generator makes the soak invalid;
//! - `leak_verdicts` = true.
//!
//! A failure of a defaulted threshold says so in its message, with the key that changes it.
//!
//! # Leak verdicts
//! With `leak_verdicts` on, every monitored process gets one threshold per resource, named
//! `leak:PROCESS:RESOURCE` (resource `rss`, `fds` or `threads`), judged on the monitor's
//! verdict for it ([`leak`]):
//! - `leak` fails (live too, so `abort_on_fail` stops on it); the message names the process,
//!   the resource, the slope per hour and the window it was fitted over;
//! - `ok` passes, and says why with the limit it is under (`passed: process target rss
//!   +1.72MiB/h over the 60m window is under the limit (50MiB/h and 10%/h; floor 4MiB)`;
//!   `does not leak` only when the slope's interval holds zero); `limit` is the rate limit;
//! - `unknown` (the longest window has no fit) is pending during the run and **not judged**
//!   at the end ([`ThresholdStatus::NotJudged`]): reported, never a failure, with the reason
//!   the longest window has no fit.
//!
//! Two kinds of process have no leak threshold: soakd itself (`process="soakd"`), whose leak
//! verdict instead marks the soak **suspect** ([`suspicions`]) — its own growth may skew what
//! it measured, but it is not the system under test — and a process configured with
//! `fail_on_leak = false`.
//!
//! An explicit `rss_growth_per_hour` keeps its own, stricter rule side by side with these: it
//! judges one process's RSS slope against a fixed limit and fails at the end when there is not
//! enough data to fit a slope, where a leak verdict that could not be made is only "not judged".
//!
//! # Live and final evaluation
//! Each result is in one of four states ([`ThresholdStatus`]):
//! - **pass**: there is data and it is within the limit (`observed <= limit`);
//! - **fail**: there is data and it exceeds the limit;
//! - **pending**: only during a live evaluation (`final_ = false`), when there is not enough
//!   data to judge yet: no TTFT/duration samples, fewer than `min_requests` requests (or
//!   finished streams, for `truncated_ratio`), too little RSS history to fit a slope, or a
//!   leak verdict still unknown. A pending threshold is not failing: `passed` is `true` and
//!   `abort_on_fail` ignores it;
//! - **not judged**: only at the final evaluation, for a leak verdict that stayed unknown.
//!   `passed` is `true`.
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

pub mod leak;
pub mod proxy;
pub mod settings;

pub use leak::{leak_threshold_name, suspicions, LeakInput, LeakState};
pub use proxy::{ProxyInputs, ProxyLimits};
pub use settings::{
    RawThresholds, Thresholds, DEFAULT_ERROR_RATIO, DEFAULT_MAX_DROPPED, DEFAULT_MIN_REQUESTS,
    DEFAULT_RSS_PROCESS,
};

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
    /// Requests scheduled but never sent because the generator was saturated (the in-flight
    /// cap); arrivals due after the stop (`reason="shutdown"`) do not count.
    pub dropped: u64,
    /// p99 time to first token; `None` when there is no sample.
    pub p99_ttft: Option<Duration>,
    /// p99 request duration; `None` when there is no sample.
    pub p99_duration: Option<Duration>,
    /// RSS growth in bytes per hour per monitored process (robust slope over the longest window
    /// with data); `None` when there is not enough data to fit a slope.
    pub rss_growth_per_hour: BTreeMap<String, Option<f64>>,
    /// The monitor's leak verdict per process and resource, soakd's own included.
    pub leaks: Vec<LeakInput>,
    /// The two-sided soak's give-ups, while `[upstream]` is on.
    pub proxy: Option<ProxyInputs>,
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
    /// Never judged: a leak verdict still unknown at the end of the run. Not a failure.
    NotJudged,
}

impl ThresholdStatus {
    /// How the summary prints it: `PASS`, `FAIL`, `PENDING`, `NOT JUDGED`.
    pub fn label(self) -> &'static str {
        match self {
            ThresholdStatus::Pass => "PASS",
            ThresholdStatus::Fail => "FAIL",
            ThresholdStatus::Pending => "PENDING",
            ThresholdStatus::NotJudged => "NOT JUDGED",
        }
    }
}

/// The outcome of one threshold.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ThresholdResult {
    /// Threshold name: `p99_ttft`, `p99_duration`, `error_ratio`, `truncated_ratio`,
    /// `dropped`, `rss_growth`, or `leak:PROCESS:RESOURCE`. Also the `threshold` label.
    pub name: String,
    /// `false` only when the threshold failed; a pending or not-judged threshold counts as
    /// passing.
    pub passed: bool,
    /// Pass, fail, pending or not judged; pending and not judged imply `passed`.
    pub status: ThresholdStatus,
    /// The observed value in `unit`, when there is one (for a leak verdict: the slope per hour
    /// of the longest window with a fit).
    pub observed: Option<f64>,
    /// The configured limit in `unit`; for a leak verdict the rate limit the monitor held the
    /// slope to (`[monitor.thresholds]`; RSS: the larger of the absolute and the relative one
    /// at the baseline), `None` before there is a baseline.
    pub limit: Option<f64>,
    /// Unit of `observed` and `limit`: `seconds`, `ratio`, `requests`, `bytes_per_hour` or
    /// `per_hour` (fds, threads).
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
    PerHour,
    Tokens,
}

impl Unit {
    fn name(self) -> &'static str {
        match self {
            Unit::Seconds => "seconds",
            Unit::Ratio => "ratio",
            Unit::Requests => "requests",
            Unit::BytesPerHour => "bytes_per_hour",
            Unit::PerHour => "per_hour",
            Unit::Tokens => "tokens",
        }
    }

    fn fmt(self, v: f64) -> String {
        match self {
            Unit::Seconds => format!("{}s", trim_num(v, 3)),
            Unit::Ratio => format!("{}%", trim_num(v * 100.0, 3)),
            Unit::Requests => trim_num(v, 0),
            Unit::BytesPerHour => format!("{}/h", fmt_bytes(v)),
            Unit::PerHour => format!("{}/h", trim_num(v, 1)),
            Unit::Tokens => format!("{} tokens", trim_num(v, 0)),
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
            name: name.to_owned(),
            passed,
            status: if passed {
                ThresholdStatus::Pass
            } else {
                ThresholdStatus::Fail
            },
            observed: Some(observed),
            limit: Some(limit),
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
            name: name.to_owned(),
            passed: true,
            status: ThresholdStatus::Pending,
            observed,
            limit: Some(limit),
            unit: unit.name(),
            message: format!("pending: {why}"),
        }
    }

    fn failed_no_data(name: &'static str, unit: Unit, limit: f64, why: String) -> Self {
        ThresholdResult {
            name: name.to_owned(),
            passed: false,
            status: ThresholdStatus::Fail,
            observed: None,
            limit: Some(limit),
            unit: unit.name(),
            message: format!("{name} failed: {why}"),
        }
    }
}

impl Thresholds {
    /// True when no threshold is configured and leak verdicts are off (`abort_on_fail` alone
    /// does not count).
    pub fn is_empty(&self) -> bool {
        self.names().is_empty() && !self.leak_verdicts
    }

    /// Names of the configured fixed thresholds, in evaluation order. The leak thresholds
    /// (`leak:PROCESS:RESOURCE`) follow them; their names depend on the monitored processes
    /// ([`leak_threshold_name`]).
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
        .chain(self.proxy.names())
        .collect()
    }

    /// Judges every configured threshold against `i`, in the order of [`Thresholds::names`].
    ///
    /// `final_ = false` is a live evaluation (thresholds without enough data are pending);
    /// `final_ = true` is the end-of-run evaluation (no data fails). The leak thresholds
    /// follow the fixed ones, in the order of `i.leaks`. See the module docs.
    pub fn evaluate(&self, i: &VerdictInputs, final_: bool) -> Vec<ThresholdResult> {
        let mut out = Vec::with_capacity(6 + i.leaks.len());
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
        out.extend(self.proxy.evaluate(i.proxy.as_ref(), final_));
        if self.leak_verdicts {
            out.extend(
                i.leaks
                    .iter()
                    .filter(|l| l.judged())
                    .map(|l| leak::judge(l, final_)),
            );
        }
        for r in out.iter_mut().filter(|r| !r.passed) {
            if let Some(hint) = self.default_hint(&r.name) {
                r.message.push_str(&hint);
            }
        }
        out
    }

    /// For a failed threshold that holds its default: where to change it.
    fn default_hint(&self, name: &str) -> Option<String> {
        let key = if name.starts_with(leak::PREFIX) {
            "leak"
        } else {
            name
        };
        if !self.defaulted.contains(&key) {
            return None;
        }
        Some(match key {
            "error_ratio" => format!(
                " (the default error_ratio {}: set [thresholds] error_ratio, or defaults = false)",
                Unit::Ratio.fmt(DEFAULT_ERROR_RATIO)
            ),
            "dropped" => {
                " (the default max_dropped 0: a saturated generator makes the soak \
                          invalid; raise max_dropped or the in-flight cap, or set defaults = false)"
                    .to_owned()
            }
            _ => " (leak verdicts are on by default: set fail_on_leak = false on the process, \
                  or [thresholds] leak_verdicts = false)"
                .to_owned(),
        })
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
