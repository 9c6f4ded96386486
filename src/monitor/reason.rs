//! Why a verdict is what it is, in words: every "no", "ok" and "unknown" states its reason,
//! and a pass states its limit.
//!
//! The rules themselves are in [`super::judge`]; this module only explains their result, so
//! `soakd analyze` (its `leak` column and `reason` fields), the live `/status`
//! (`processes[].reason`), the summary and the `leak:…` thresholds say the same thing:
//! - a window that does not call a leak names each rule it failed: the slope's lower bound
//!   under the limit (`lower bound +938.57KiB/h is under the limit 1MiB/h
//!   (rss_mib_per_hour)`), the growth under the floor (`below growth floor: +2.98MiB < 4MiB
//!   (min_growth_bytes)`), a newer half that slowed down; a window without a fit says why
//!   ([`no_fit`]: still filling, or too few troughs);
//! - a resource's verdict ([`verdict`]): `unknown` names the longest window and why it has no
//!   fit; `ok` gives the longest window's slope and its limit — `does not leak` only when the
//!   slope's interval holds zero (growth indistinguishable from none), else `+1.72MiB/h over
//!   the 60m window is under the limit (50MiB/h and 10%/h; floor 4MiB)` — or the shorter
//!   window that disagrees; `leak` the bound and growth that called it.
//!
//! Amounts are in the resource's unit ([`amount`], [`rate`]): RSS in binary byte units,
//! fds and threads as counts.

use std::time::Duration;

use super::judge::{LeakRules, WindowLimits};
use super::trend::{NoFit, TrendFit, MIN_FIT_POINTS};
use super::{Resource, Verdict};
use crate::units::{fmt_bytes, fmt_duration, trim_num};

/// An amount in the resource's unit: `64MiB`, `90 fds`, `12 threads`.
pub fn amount(r: Resource, v: f64) -> String {
    match r {
        Resource::Rss => fmt_bytes(v),
        Resource::Fds => format!("{} fds", trim_num(v, 2)),
        Resource::Threads => format!("{} threads", trim_num(v, 2)),
    }
}

/// A signed rate per hour: `+64MiB/h`, `-3 fds/h`; `-inf`/`+inf` when unbounded.
pub fn rate(r: Resource, v: f64) -> String {
    if v.is_infinite() {
        return if v > 0.0 { "+inf" } else { "-inf" }.into();
    }
    let sign = if v >= 0.0 { "+" } else { "" };
    format!("{sign}{}/h", amount(r, v))
}

/// A signed amount: `+2.98MiB`, `-1 fds`.
fn signed(r: Resource, v: f64) -> String {
    let sign = if v >= 0.0 { "+" } else { "" };
    format!("{sign}{}", amount(r, v))
}

/// Seconds as `1m 30s`.
pub fn secs(s: f64) -> String {
    if !(s.is_finite() && s >= 0.0) {
        return "-".into();
    }
    if s < 1.0 {
        return format!("{}s", trim_num(s, 3));
    }
    fmt_duration(Duration::from_secs(s.round() as u64))
}

/// Why a window has no fit: `it holds 40s of 90s (a fit needs half, after the warm-up)`,
/// `4 troughs one sawtooth period (40s) apart; a fit needs 6`.
pub fn no_fit(nf: NoFit) -> String {
    match nf {
        NoFit::NoData => "no samples after the warm-up yet".into(),
        NoFit::Filling { held, span } => format!(
            "it holds {} of {} (a fit needs half, after the warm-up)",
            secs(held),
            secs(span)
        ),
        NoFit::FewTroughs {
            points,
            period: Some(p),
        } => format!(
            "{points} troughs one cycle ({}) apart; a fit needs {MIN_FIT_POINTS}: the window \
             holds too few sawtooth (GC or load) cycles",
            secs(p)
        ),
        NoFit::FewTroughs {
            points,
            period: None,
        } => format!("{points} points; a fit needs {MIN_FIT_POINTS}"),
    }
}

/// [`no_fit`] in a few words, for the progress line: `no samples`, `filling 40s of 1m 30s`,
/// `4 troughs < 6, one per 40s`.
pub fn no_fit_short(nf: NoFit) -> String {
    match nf {
        NoFit::NoData => "no samples".into(),
        NoFit::Filling { held, span } => format!("filling {} of {}", secs(held), secs(span)),
        NoFit::FewTroughs { points, period } => format!(
            "{points} troughs < {MIN_FIT_POINTS}{}",
            period.map_or(String::new(), |p| format!(", one per {}", secs(p)))
        ),
    }
}

/// The thresholds a resource is held to, for a message: `50MiB/h and 10%/h; floor 4MiB`
/// (RSS: both rate thresholds, of which the larger applies, and the floor in force at this
/// baseline), `60 fds/h`, `30 threads/h`.
pub fn limits(r: Resource, rules: &LeakRules, baseline: Option<f64>) -> String {
    match r {
        Resource::Rss => {
            let floor = rules.growth_floor(r, baseline);
            let floor = if floor.is_finite() {
                fmt_bytes(floor)
            } else {
                format!(
                    "{} and {}%",
                    fmt_bytes(rules.min_growth_bytes),
                    trim_num(rules.min_growth_fraction * 100.0, 2)
                )
            };
            format!(
                "{}/h and {}%/h; floor {floor}",
                fmt_bytes(rules.rss_bytes_per_hour),
                trim_num(rules.rss_fraction_per_hour * 100.0, 2)
            )
        }
        Resource::Fds => format!("{}/h", amount(r, rules.fds_per_hour)),
        Resource::Threads => format!("{}/h", amount(r, rules.threads_per_hour)),
    }
}

/// The rate limit and the key that sets it: `50MiB/h (rss_mib_per_hour)`,
/// `19.88MiB/h (rss_percent_per_hour 10% of the baseline 198.84MiB)`.
fn limit_key(r: Resource, rules: &LeakRules, baseline: Option<f64>) -> String {
    let limit = rules.rate_limit(r, baseline);
    let key = match (r, baseline) {
        (Resource::Rss, Some(b)) if b * rules.rss_fraction_per_hour > rules.rss_bytes_per_hour => {
            format!(
                "rss_percent_per_hour {}% of the baseline {}",
                trim_num(rules.rss_fraction_per_hour * 100.0, 2),
                fmt_bytes(b)
            )
        }
        (Resource::Rss, _) => "rss_mib_per_hour".into(),
        (Resource::Fds, _) => "fds_per_hour".into(),
        (Resource::Threads, _) => "threads_per_hour".into(),
    };
    format!("{} ({key})", rate(r, limit).trim_start_matches('+'))
}

/// The growth floor and the key that sets it: `4MiB (min_growth_bytes)`.
fn floor_key(rules: &LeakRules, baseline: Option<f64>) -> String {
    let floor = rules.growth_floor(Resource::Rss, baseline);
    let key = match baseline {
        Some(b) if b * rules.min_growth_fraction > rules.min_growth_bytes => format!(
            "min_growth_percent {}% of the baseline {}",
            trim_num(rules.min_growth_fraction * 100.0, 2),
            fmt_bytes(b)
        ),
        _ => "min_growth_bytes".into(),
    };
    format!("{} ({key})", fmt_bytes(floor))
}

/// Why a window's fit does not call a leak, each failed rule of [`WindowLimits::calls_leak`]
/// in turn, joined by `; `; `None` when it calls one.
pub fn window_no(
    r: Resource,
    fit: &TrendFit,
    rules: &LeakRules,
    baseline: Option<f64>,
) -> Option<String> {
    let lim = rules.window_limits(r, baseline);
    if lim.calls_leak(fit) {
        return None;
    }
    let mut why = Vec::new();
    if !lim.limit.is_finite() {
        why.push("no baseline yet for the relative threshold".to_string());
    } else if fit.slope_lo * 3600.0 <= lim.limit {
        let lo = fit.slope_lo * 3600.0;
        let what = if fit.slope * 3600.0 <= lim.limit {
            format!("{} is under the limit", rate(r, fit.per_hour()))
        } else if lo.is_finite() {
            format!("lower bound {} is under the limit", rate(r, lo))
        } else {
            "the slope's interval is unbounded (too few troughs), so it is not surely over the \
             limit"
                .to_string()
        };
        why.push(format!("{what} {}", limit_key(r, rules, baseline)));
    }
    if fit.growth <= lim.floor {
        why.push(format!(
            "below growth floor: {} < {}",
            signed(r, fit.growth),
            floor_key(rules, baseline)
        ));
    }
    if !recent_keeps_up(&lim, fit) {
        why.push(if fit.recent_hi.is_finite() {
            format!(
                "newer half slower: {} (upper bound {}) < {} over the whole window",
                rate(r, fit.recent_slope * 3600.0),
                rate(r, fit.recent_hi * 3600.0),
                rate(r, fit.per_hour())
            )
        } else {
            format!(
                "newer half {} is under the limit {}",
                rate(r, fit.recent_slope * 3600.0),
                limit_key(r, rules, baseline)
            )
        });
    }
    if why.is_empty() {
        // Unreachable while this mirrors `calls_leak`; say something true regardless.
        why.push("the window's rules do not call a leak".into());
    }
    Some(why.join("; "))
}

/// The newer-half rule of [`WindowLimits::calls_leak`].
fn recent_keeps_up(lim: &WindowLimits, fit: &TrendFit) -> bool {
    if fit.recent_hi.is_finite() {
        fit.recent_hi >= fit.slope
            || (fit.recent_lo * 3600.0 > lim.limit && fit.recent_slope >= 0.5 * fit.slope)
    } else {
        fit.recent_slope * 3600.0 > lim.limit
    }
}

/// A window as the verdict explanation sees it.
#[derive(Debug, Clone, Copy)]
pub struct WindowState<'a> {
    /// Its label, e.g. `30m`.
    pub label: &'a str,
    /// Its fit of the resource.
    pub fit: Option<TrendFit>,
    /// Why it has none.
    pub no_fit: NoFit,
}

/// Why resource `r` has verdict `v`, from its windows (shortest first), see the module docs.
pub fn verdict(
    r: Resource,
    v: Verdict,
    windows: &[WindowState<'_>],
    rules: &LeakRules,
    baseline: Option<f64>,
) -> String {
    let Some((long, shorter)) = windows.split_last() else {
        return "no growth windows".into();
    };
    let Some(fit) = long.fit else {
        return format!(
            "the longest window ({}) has no fit: {}",
            long.label,
            no_fit(long.no_fit)
        );
    };
    let lim = rules.window_limits(r, baseline);
    let slope = format!("{} over the {} window", rate(r, fit.per_hour()), long.label);
    let limits = limits(r, rules, baseline);
    if v == Verdict::Leak {
        return format!(
            "{slope}: lower bound {} > limit {}, grew {}",
            rate(r, fit.slope_lo * 3600.0),
            limit_key(r, rules, baseline),
            signed(r, fit.growth)
        );
    }
    if fit.slope_lo <= 0.0 && fit.slope_hi >= 0.0 {
        return format!(
            "does not leak: {slope} is indistinguishable from zero (95% interval {} .. {}; \
             limit {limits})",
            rate(r, fit.slope_lo * 3600.0),
            rate(r, fit.slope_hi * 3600.0)
        );
    }
    if !lim.calls_leak(&fit) {
        if fit.slope * 3600.0 <= lim.limit {
            return format!("{slope} is under the limit ({limits})");
        }
        let why = window_no(r, &fit, rules, baseline).unwrap_or_default();
        return format!("{slope}, but {why} (limit {limits})");
    }
    // The longest window calls it: a shorter one must disagree.
    for w in shorter {
        let Some(f) = w.fit else { continue };
        if lim.resolves(&f) && lim.reaches_floor(&f) {
            if let Some(why) = window_no(r, &f, rules, baseline) {
                return format!(
                    "{slope}, but the {} window does not call it: {why} (limit {limits})",
                    w.label
                );
            }
        } else if !lim.consistent(&f, &fit) {
            return format!(
                "{slope}, but the {} window grows slower: upper bound {} < the {} window's \
                 lower bound {} (limit {limits})",
                w.label,
                rate(r, f.slope_hi * 3600.0),
                long.label,
                rate(r, fit.slope_lo * 3600.0)
            );
        }
    }
    format!(
        "{slope} is over the limit ({limits}): the leak call waits for [monitor] confirm, or a \
         leak called before no longer holds in every window"
    )
}

#[cfg(test)]
#[path = "reason_tests.rs"]
mod tests;
