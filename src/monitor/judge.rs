//! The leak verdict as pure functions of the window fits, and its hysteresis.
//!
//! # A window's call
//! Let `limit` be the resource's rate threshold per hour — RSS: the larger of
//! `rss_bytes_per_hour` and `rss_fraction_per_hour` × baseline (no baseline yet: no call);
//! fds: `fds_per_hour`; threads: `threads_per_hour` — and `floor` the growth floor — RSS: the
//! larger of `min_growth_bytes` (default 4 MiB) and `min_growth_fraction` × baseline (default
//! 2 %); none for fds and threads. A window's fit ([`TrendFit`])
//! - CALLS a leak when the LOWER confidence bound of its slope exceeds `limit`, its fitted
//!   growth (slope × the time its points span) exceeds `floor` — so a short window cannot
//!   turn a few MiB of warm-up into "GiB/h" — and its newer half is not significantly slower
//!   than the whole: the upper bound of the newer half's slope is at least the window's
//!   slope, or, when that half has too few points for a bounded interval (under about five),
//!   its own slope exceeds `limit`. A window holding an old ramp and a recent plateau does
//!   not call. A newer half that is significantly but not materially slower still calls when
//!   it proves a leak on its own (its lower bound exceeds `limit`) at no less than half the
//!   window's slope: on a clean, fast leak the intervals are so narrow that a 0.1 % dip in the
//!   request rate would otherwise veto it;
//! - SUPPORTS a leak already called when its slope itself exceeds `limit`, its growth
//!   `floor`, and its newer half is not significantly below `limit` (the upper bound of the
//!   newer half's slope is at least `limit`);
//! - RESOLVES the threshold when its confidence interval is no wider than `limit`: only then
//!   can it tell no growth from growth at the threshold on its own;
//! - REACHES the floor when growth at the threshold rate across its points would exceed the
//!   floor: a shorter window that does not (5 min of a 1 GiB process: 50 MiB/h × 5 min is
//!   4.2 MiB, under its 20 MiB floor) cannot call a leak near the threshold, so it is treated
//!   as one that does not resolve it.
//!
//! Using the lower bound makes the call a one-sided test at (1 − confidence)/2 = 2.5 %: the
//! window is 97.5 % sure the growth is above the threshold. Under big noise or a slow
//! sawtooth R² is low even when the trend is certain, so R² gates nothing any more.
//! **`min_r2` is deprecated**: the key still loads and is validated (0–1), but it is ignored;
//! [`min_r2_deprecation`] gives the warning to log once when a config sets it.
//!
//! # A resource's verdict
//! `unknown` until the LONGEST window has a fit (until then a plateau cannot be told from a
//! leak). Then, with `L` the longest window's fit, the verdict RISES to `leak` when
//! - `L` calls it;
//! - every shorter window with a fit is CONSISTENT with `L`: its upper bound is at least `L`'s
//!   lower bound (the recent growth is not significantly slower than the long-term one — a
//!   plateau, a stopped leak, a warm-up step long past), or it proves growth past `limit` on
//!   its own at no less than half `L`'s slope (a clean, fast leak whose intervals are so
//!   narrow that a 0.1 % dip in the request rate is "significant");
//! - and every shorter window that resolves the threshold and reaches the floor calls it too
//!   — in particular the shortest, when it can: "both the shortest and the longest window".
//!
//! Once `leak`, it STAYS while `L` and every shorter window that resolves the threshold
//! support it; otherwise it FALLS to `ok`. Rising on confidence and falling on the estimate
//! (or on a newer half confidently under the threshold: a plateau reached after the call)
//! keeps a leak near the threshold from flapping. Windows that do not resolve the threshold
//! are not asked again once the leak is called: evaluated every few seconds, sooner or later
//! one would hit its 2.5 % tail and drop a real leak (measured while tuning: up to six
//! re-rises per matrix cell in 3 h).
//!
//! # Hysteresis
//! [`Hysteresis`] turns the raw verdict, evaluated at every sample, into the reported one: a
//! change into or out of `leak` is reported only after the raw verdict has held on the new
//! side for `confirm` seconds (default 15 s) without interruption; `ok` ↔ `unknown` changes
//! pass at once. Each change is returned once, as a [`Transition`], for the log line.

use crate::monitor::Resource;

use super::settings::LeakThresholds;
use super::trend::TrendFit;
use super::Verdict;

/// Default `confirm`, seconds.
pub const DEFAULT_CONFIRM_SECS: f64 = 15.0;

/// The thresholds a window's fit is judged by (per-hour rates).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LeakRules {
    /// Absolute RSS growth, bytes per hour.
    pub rss_bytes_per_hour: f64,
    /// Relative RSS growth per hour, fraction of the baseline.
    pub rss_fraction_per_hour: f64,
    /// File descriptors per hour.
    pub fds_per_hour: f64,
    /// Threads per hour.
    pub threads_per_hour: f64,
    /// Least fitted RSS growth across a window, bytes.
    pub min_growth_bytes: f64,
    /// Least fitted RSS growth across a window, fraction of the baseline.
    pub min_growth_fraction: f64,
}

impl Default for LeakRules {
    fn default() -> Self {
        LeakRules::from_thresholds(&LeakThresholds::default())
    }
}

impl LeakRules {
    /// Rules from the validated `[monitor.thresholds]`, growth floor included (its `min_r2`
    /// is ignored, see the module docs).
    pub fn from_thresholds(th: &LeakThresholds) -> Self {
        LeakRules {
            rss_bytes_per_hour: th.rss_bytes_per_hour,
            rss_fraction_per_hour: th.rss_fraction_per_hour,
            fds_per_hour: th.fds_per_hour,
            threads_per_hour: th.threads_per_hour,
            min_growth_bytes: th.min_growth_bytes,
            min_growth_fraction: th.min_growth_fraction,
        }
    }

    /// Every threshold and floor multiplied by `factor` (the matrix scales the defaults down
    /// for small leaks).
    pub fn scaled(&self, factor: f64) -> Self {
        LeakRules {
            rss_bytes_per_hour: self.rss_bytes_per_hour * factor,
            rss_fraction_per_hour: self.rss_fraction_per_hour * factor,
            fds_per_hour: self.fds_per_hour * factor,
            threads_per_hour: self.threads_per_hour * factor,
            min_growth_bytes: self.min_growth_bytes * factor,
            min_growth_fraction: self.min_growth_fraction * factor,
        }
    }

    /// The rate a window's lower bound must exceed, per hour (∞ for RSS without a baseline).
    pub fn rate_limit(&self, r: Resource, baseline: Option<f64>) -> f64 {
        match r {
            Resource::Rss => match baseline {
                Some(b) => self.rss_bytes_per_hour.max(b * self.rss_fraction_per_hour),
                None => f64::INFINITY,
            },
            Resource::Fds => self.fds_per_hour,
            Resource::Threads => self.threads_per_hour,
        }
    }

    /// The growth a window's fit must exceed (0 for fds and threads).
    pub fn growth_floor(&self, r: Resource, baseline: Option<f64>) -> f64 {
        match r {
            Resource::Rss => match baseline {
                Some(b) => self.min_growth_bytes.max(b * self.min_growth_fraction),
                None => f64::INFINITY,
            },
            Resource::Fds | Resource::Threads => 0.0,
        }
    }
}

/// The two thresholds one window of a resource is judged against (module rules).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WindowLimits {
    /// `limit`: the rate per hour (∞ for RSS without a baseline).
    pub limit: f64,
    /// `floor`: the growth the fit must exceed.
    pub floor: f64,
}

impl LeakRules {
    /// The limits for resource `r` with this baseline.
    pub fn window_limits(&self, r: Resource, baseline: Option<f64>) -> WindowLimits {
        WindowLimits {
            limit: self.rate_limit(r, baseline),
            floor: self.growth_floor(r, baseline),
        }
    }
}

impl WindowLimits {
    /// Whether one window's fit calls a leak (module rules).
    pub fn calls_leak(&self, fit: &TrendFit) -> bool {
        let limit = self.limit;
        let recent_keeps_up = if fit.recent_hi.is_finite() {
            fit.recent_hi >= fit.slope
                || (fit.recent_lo * 3600.0 > limit && fit.recent_slope >= 0.5 * fit.slope)
        } else {
            fit.recent_slope * 3600.0 > limit
        };
        fit.slope_lo * 3600.0 > limit && fit.growth > self.floor && recent_keeps_up
    }

    /// Whether one window's fit still supports a leak already called (module rules).
    pub fn supports_leak(&self, fit: &TrendFit) -> bool {
        fit.slope * 3600.0 > self.limit
            && fit.recent_hi * 3600.0 >= self.limit
            && fit.growth > self.floor
    }

    /// Whether a shorter window's fit is consistent with the longest window's `long`
    /// (module rules): its upper bound reaches `long`'s lower bound, or it proves growth past
    /// the threshold on its own at no less than half `long`'s slope.
    pub fn consistent(&self, fit: &TrendFit, long: &TrendFit) -> bool {
        fit.slope_hi >= long.slope_lo
            || (fit.slope_lo * 3600.0 > self.limit && fit.slope >= 0.5 * long.slope)
    }

    /// Whether a window's confidence interval is no wider than the threshold (module rules).
    pub fn resolves(&self, fit: &TrendFit) -> bool {
        (fit.slope_hi - fit.slope_lo) * 3600.0 <= self.limit
    }

    /// Whether growth at the threshold rate across the window's points would pass the growth
    /// floor: a window too short for that (a 5 min window of a 1 GiB process: 50 MiB/h × 5 min
    /// = 4.2 MiB under a 20 MiB floor) cannot call a leak near the threshold, so it is not
    /// asked to.
    pub fn reaches_floor(&self, fit: &TrendFit) -> bool {
        self.limit / 3600.0 * fit.span >= self.floor
    }
}

/// A resource's raw verdict from its window fits (shortest window first) and whether the
/// previous raw verdict was `leak` (module rules).
pub fn resource_verdict(
    r: Resource,
    fits: &[Option<TrendFit>],
    baseline: Option<f64>,
    rules: &LeakRules,
    was_leak: bool,
) -> Verdict {
    let Some((Some(long), shorter)) = fits.split_last() else {
        return Verdict::Unknown;
    };
    let limits = rules.window_limits(r, baseline);
    let judge = if was_leak {
        WindowLimits::supports_leak
    } else {
        WindowLimits::calls_leak
    };
    let mut leak = judge(&limits, long);
    for f in shorter.iter().flatten() {
        if limits.resolves(f) && limits.reaches_floor(f) {
            leak &= judge(&limits, f);
        } else if !was_leak {
            leak &= limits.consistent(f, long);
        }
    }
    if leak {
        Verdict::Leak
    } else {
        Verdict::Ok
    }
}

/// The warning to log once when a config sets the deprecated `min_r2`.
pub fn min_r2_deprecation(min_r2: Option<f64>) -> Option<String> {
    min_r2.map(|v| {
        format!(
            "monitor.thresholds.min_r2 = {v} is deprecated and ignored: a window now calls a leak \
             when the lower confidence bound of its slope exceeds the thresholds"
        )
    })
}

/// A change of the reported verdict.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Transition {
    /// Reported before.
    pub from: Verdict,
    /// Reported now.
    pub to: Verdict,
    /// When the change was reported.
    pub at: f64,
    /// When the raw verdict first showed it (`at − since` ≥ confirm for leak changes).
    pub since: f64,
}

/// Debounces a raw verdict (module rules). Driven by the caller's timestamps, in seconds.
#[derive(Debug, Clone)]
pub struct Hysteresis {
    confirm: f64,
    shown: Verdict,
    pending: Option<f64>,
}

impl Hysteresis {
    /// Starts at `unknown`; leak changes need `confirm` seconds.
    pub fn new(confirm: f64) -> Self {
        Hysteresis {
            confirm: confirm.max(0.0),
            shown: Verdict::Unknown,
            pending: None,
        }
    }

    /// The reported verdict.
    pub fn verdict(&self) -> Verdict {
        self.shown
    }

    /// Feeds the raw verdict at time `t`; returns the change of the reported one, if any.
    pub fn update(&mut self, t: f64, raw: Verdict) -> Option<Transition> {
        let (raw_leak, shown_leak) = (raw == Verdict::Leak, self.shown == Verdict::Leak);
        if raw_leak == shown_leak {
            self.pending = None;
            if raw == self.shown {
                return None;
            }
            return Some(self.switch(raw, t, t));
        }
        let since = *self.pending.get_or_insert(t);
        if t - since >= self.confirm {
            self.pending = None;
            return Some(self.switch(raw, t, since));
        }
        None
    }

    /// Back to `unknown` at once (a restart: the fit starts over).
    pub fn reset(&mut self, t: f64) -> Option<Transition> {
        self.pending = None;
        (self.shown != Verdict::Unknown).then(|| self.switch(Verdict::Unknown, t, t))
    }

    fn switch(&mut self, to: Verdict, at: f64, since: f64) -> Transition {
        let from = std::mem::replace(&mut self.shown, to);
        Transition {
            from,
            to,
            at,
            since,
        }
    }
}

#[cfg(test)]
#[path = "judge_tests.rs"]
mod tests;
