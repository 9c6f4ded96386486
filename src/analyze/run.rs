//! The analysis of recorded series with the monitor's own estimator and verdict.
//!
//! Each series is replayed through [`Replay`] — the live monitor's windows, trough fitting,
//! trend test and verdict rules — with the given windows and thresholds; the sample interval
//! is the median spacing of its timestamps and the baseline its first value after `warmup`.
//! The result describes the END of each series: every window's fit over the last span of the
//! data and the verdict from those fits (the hysteresis is a live-display matter and is not
//! applied). `first_leak_timestamp` says when a leak was first called, if ever.
//!
//! The overall verdict is the worst over the series: `leak` over `unknown` over `ok`.
//! `slope_per_hour` is the longest window's slope when there is exactly one series. A series
//! with too few points for the longest window is `unknown`, never a guess.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::monitor::judge::{LeakRules, DEFAULT_CONFIRM_SECS};
use crate::monitor::mann_kendall::quantile;
use crate::monitor::reason::{self, WindowState};
use crate::monitor::replay::{Replay, ReplayConfig};
use crate::monitor::report::FitReport;
use crate::monitor::settings::Window;
use crate::monitor::trend::{NoFit, TrendFit};
use crate::monitor::Resource;
use crate::monitor::Verdict;

use super::Series;

/// What to analyse and how.
#[derive(Debug, Clone, PartialEq)]
pub struct AnalyzeSettings {
    /// Windows, any order (sorted by length for the verdict).
    pub windows: Vec<Window>,
    /// Thresholds.
    pub rules: LeakRules,
    /// Which resource the values are.
    pub resource: Resource,
    /// Two-sided confidence of the slope intervals.
    pub confidence: f64,
    /// Seconds at the start of each series that are not fitted.
    pub warmup: f64,
    /// The load's own cycle, seconds ([`crate::monitor::trend::TrendSet::with_load_period`]).
    pub load_period: Option<f64>,
}

/// The analysis of every series.
#[derive(Debug, Clone, Serialize)]
pub struct Analysis {
    /// Worst verdict over the series.
    pub verdict: Verdict,
    /// The resource analysed.
    pub resource: &'static str,
    /// The longest window's slope per hour, when there is exactly one series with a fit.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub slope_per_hour: Option<f64>,
    /// Per series, in input order.
    pub series: Vec<SeriesAnalysis>,
}

/// One series.
#[derive(Debug, Clone, Serialize)]
pub struct SeriesAnalysis {
    /// Its labels.
    pub labels: BTreeMap<String, String>,
    /// Points read.
    pub points: usize,
    /// First and last timestamp, seconds.
    pub first_timestamp: Option<f64>,
    /// Last timestamp, seconds.
    pub last_timestamp: Option<f64>,
    /// Median spacing of the timestamps, seconds.
    pub interval_seconds: Option<f64>,
    /// First fitted value.
    pub baseline: Option<f64>,
    /// Verdict at the end of the series.
    pub verdict: Verdict,
    /// Why, in words ([`crate::monitor::reason::verdict`]): what an `unknown` lacks, the
    /// limit an `ok` is under, the bound and growth that called a `leak`.
    pub reason: String,
    /// When a leak was first called, if ever (a timestamp of the series).
    pub first_leak_timestamp: Option<f64>,
    /// Per window, shortest first.
    pub windows: Vec<WindowAnalysis>,
}

/// One window of one series at the end of the data: its fit in the fields `/status` and the
/// summary use ([`FitReport`]: slopes in the resource's unit per second and per hour, the
/// bounds absent when unbounded; times and the intercept's t = 0 are the series' first
/// timestamp), flattened beside the window's label; all of them absent without a fit.
#[derive(Debug, Clone, Serialize)]
pub struct WindowAnalysis {
    /// The window's label, e.g. "30m".
    pub window: String,
    /// The fit of the troughs.
    #[serde(flatten)]
    pub fit: Option<FitReport>,
    /// Fitted growth across the window.
    pub growth: Option<f64>,
    /// Whether this window calls a leak.
    pub leak: bool,
    /// Why it does not, when it does not: each rule it failed, or why it has no fit
    /// ([`crate::monitor::reason::window_no`], [`crate::monitor::reason::no_fit`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// Analyses `series` (see the module docs).
pub fn analyze(series: &[Series], s: &AnalyzeSettings) -> Analysis {
    let mut windows = s.windows.clone();
    windows.sort_by_key(|w| w.duration);
    let results: Vec<SeriesAnalysis> = series.iter().map(|x| one(x, &windows, s)).collect();
    let verdict = results.iter().map(|r| r.verdict).fold(Verdict::Ok, worst);
    let slope_per_hour = match results.as_slice() {
        [only] => only
            .windows
            .last()
            .and_then(|w| w.fit)
            .map(|f| f.slope_per_hour),
        _ => None,
    };
    Analysis {
        verdict,
        resource: s.resource.as_str(),
        slope_per_hour,
        series: results,
    }
}

/// `leak` over `unknown` over `ok`.
pub fn worst(a: Verdict, b: Verdict) -> Verdict {
    let rank = |v| match v {
        Verdict::Leak => 2,
        Verdict::Unknown => 1,
        Verdict::Ok => 0,
    };
    if rank(b) > rank(a) {
        b
    } else {
        a
    }
}

fn one(x: &Series, windows: &[Window], s: &AnalyzeSettings) -> SeriesAnalysis {
    let mut gaps: Vec<f64> = x.points.windows(2).map(|w| w[1].0 - w[0].0).collect();
    let interval = (!gaps.is_empty()).then(|| quantile(&mut gaps, 0.5));
    let mut cfg = ReplayConfig::new(
        windows.iter().map(|w| w.duration.as_secs_f64()).collect(),
        interval.unwrap_or(1.0).max(1e-3),
        s.resource,
    );
    cfg.rules = s.rules;
    cfg.confidence = s.confidence;
    cfg.confirm = DEFAULT_CONFIRM_SECS;
    cfg.warmup = s.warmup;
    cfg.load_period = s.load_period;
    let mut replay = Replay::new(cfg);
    for &(t, v) in &x.points {
        replay.push(t, v);
    }
    let start = x.points.first().map(|p| p.0);
    let baseline = replay.baseline();
    let fits = replay.fits();
    let per_window = windows
        .iter()
        .zip(fits)
        .enumerate()
        .map(|(i, (w, f))| {
            let no_fit = replay.no_fit(i);
            window_report(w, f.as_ref(), no_fit, s.resource, baseline, &s.rules)
        })
        .collect();
    let states: Vec<WindowState<'_>> = windows
        .iter()
        .zip(fits)
        .enumerate()
        .map(|(i, (w, f))| WindowState {
            label: &w.label,
            fit: *f,
            no_fit: replay.no_fit(i),
        })
        .collect();
    let verdict = replay.raw_verdict();
    let reason = reason::verdict(s.resource, verdict, &states, &s.rules, baseline);
    SeriesAnalysis {
        labels: x.labels.clone(),
        points: x.points.len(),
        first_timestamp: start,
        last_timestamp: x.points.last().map(|p| p.0),
        interval_seconds: interval,
        baseline,
        verdict,
        reason,
        first_leak_timestamp: replay.first_raw_leak().zip(start).map(|(a, b)| a + b),
        windows: per_window,
    }
}

fn window_report(
    w: &Window,
    f: Option<&TrendFit>,
    no_fit: NoFit,
    r: Resource,
    baseline: Option<f64>,
    rules: &LeakRules,
) -> WindowAnalysis {
    let reason = match f {
        Some(f) => reason::window_no(r, f, rules, baseline),
        None => Some(format!("no fit: {}", reason::no_fit(no_fit))),
    };
    WindowAnalysis {
        window: w.label.clone(),
        fit: f.map(FitReport::of),
        growth: f.map(|f| f.growth),
        leak: reason.is_none(),
        reason,
    }
}

#[cfg(test)]
pub(super) mod tests {
    use std::time::Duration;

    use super::*;
    use crate::monitor::synth::{mib, Synth, SynthSpec};

    /// Default rules and 95 % intervals over `windows` (label, seconds).
    pub(in crate::analyze) fn settings(
        windows: &[(&str, u64)],
        resource: Resource,
    ) -> AnalyzeSettings {
        AnalyzeSettings {
            windows: windows
                .iter()
                .map(|(l, s)| Window {
                    label: (*l).into(),
                    duration: Duration::from_secs(*s),
                })
                .collect(),
            rules: LeakRules::default(),
            resource,
            confidence: 0.95,
            warmup: 0.0,
            load_period: None,
        }
    }

    /// `spec` sampled every `step` s for `hours`, at Unix times from 1.7e9.
    fn recorded(
        spec: SynthSpec,
        seed: u64,
        step: f64,
        hours: f64,
        labels: &[(&str, &str)],
    ) -> Series {
        let mut s = Synth::new(spec, seed);
        let n = (hours * 3600.0 / step) as u64;
        Series {
            labels: labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            points: (0..n)
                .map(|i| {
                    let t = i as f64 * step;
                    (1.7e9 + t, s.value(t))
                })
                .collect(),
        }
    }

    #[test]
    fn one_leaking_series_gives_leak_and_its_slope() {
        let spec = SynthSpec {
            leak_per_hour: mib(120.0),
            saw_amplitude: mib(64.0),
            saw_period: 90.0,
            noise_sd: mib(0.5),
            ..SynthSpec::default()
        };
        let series = [recorded(spec, 1, 15.0, 6.0, &[("job", "proxy")])];
        let a = analyze(
            &series,
            &settings(&[("2h", 7200), ("30m", 1800)], Resource::Rss),
        );
        assert_eq!(a.verdict, Verdict::Leak);
        let slope = a.slope_per_hour.unwrap();
        assert!(
            (slope / mib(120.0) - 1.0).abs() < 0.1,
            "{}",
            slope / mib(1.0)
        );
        let s = &a.series[0];
        assert_eq!(s.labels.get("job").map(String::as_str), Some("proxy"));
        assert_eq!(s.interval_seconds, Some(15.0));
        assert_eq!(s.windows[0].window, "30m", "sorted shortest first");
        assert!(s
            .windows
            .iter()
            .all(|w| w.leak && w.fit.unwrap().slope_lower_per_hour.unwrap() > mib(50.0)));
        let first = s.first_leak_timestamp.unwrap();
        assert!(
            (1.7e9 + 3000.0..1.7e9 + 4.0 * 3600.0).contains(&first),
            "{first}"
        );
        // The JSON carries what the issue asks for, a window's fit in the fields of /status.
        let json = serde_json::to_value(&a).unwrap();
        assert_eq!(json["verdict"], "leak");
        assert_eq!(json["resource"], "rss");
        assert!(json["slope_per_hour"].is_f64());
        let w = &json["series"][0]["windows"][1];
        for key in [
            "slope_lower_per_hour",
            "r2",
            "trend_p",
            "slope_per_sec",
            "intercept",
        ] {
            assert!(w[key].is_f64(), "{key}: {w}");
        }
        assert_eq!(w["window"], "2h");
        assert_eq!(w["leak"], true);
    }

    #[test]
    fn verdict_is_the_worst_and_slope_only_for_one_series() {
        let flat = recorded(
            SynthSpec {
                noise_sd: mib(0.5),
                ..SynthSpec::default()
            },
            2,
            15.0,
            3.0,
            &[("i", "flat")],
        );
        let leak = recorded(
            SynthSpec {
                leak_per_hour: mib(200.0),
                ..SynthSpec::default()
            },
            3,
            15.0,
            3.0,
            &[("i", "leak")],
        );
        let short = recorded(SynthSpec::default(), 4, 15.0, 0.5, &[("i", "short")]);
        let st = settings(&[("30m", 1800), ("2h", 7200)], Resource::Rss);
        let a = analyze(&[flat.clone(), short.clone()], &st);
        assert_eq!(a.verdict, Verdict::Unknown);
        assert_eq!(a.slope_per_hour, None);
        assert_eq!(a.series[0].verdict, Verdict::Ok);
        assert_eq!(
            a.series[1].verdict,
            Verdict::Unknown,
            "30 min of data for a 2 h window"
        );
        assert!(a.series[1].windows[1].fit.is_none());
        let w = serde_json::to_value(&a.series[1].windows[1]).unwrap();
        assert_eq!(
            w,
            serde_json::json!({"window": "2h", "growth": null, "leak": false,
                "reason": "no fit: it holds 29m of 2h (a fit needs half, after the warm-up)"})
        );
        // The series says why it is unknown, and an ok why it is ok, with its limit.
        let json = serde_json::to_value(&a.series).unwrap();
        assert_eq!(
            json[1]["reason"],
            "the longest window (2h) has no fit: it holds 29m of 2h (a fit needs half, after \
             the warm-up)"
        );
        let ok = json[0]["reason"].as_str().unwrap();
        assert!(
            ok.contains("over the 2h window") && ok.contains("limit 50MiB/h and 10%/h"),
            "{ok}"
        );
        let a = analyze(&[flat, leak, short], &st);
        assert_eq!(a.verdict, Verdict::Leak);
        assert!(serde_json::to_value(&a)
            .unwrap()
            .get("slope_per_hour")
            .is_none());
    }

    #[test]
    fn fds_use_their_own_threshold() {
        // +90 fds per hour: a leak for fds (60/h).
        let series = Series {
            labels: BTreeMap::new(),
            points: (0..1440)
                .map(|i| {
                    (
                        f64::from(i) * 5.0,
                        100.0 + (f64::from(i) * 5.0 / 40.0).floor(),
                    )
                })
                .collect(),
        };
        let a = analyze(
            &[series],
            &settings(&[("30m", 1800), ("1h", 3600)], Resource::Fds),
        );
        assert_eq!(a.verdict, Verdict::Leak);
        assert!(
            (a.slope_per_hour.unwrap() - 90.0).abs() < 5.0,
            "{:?}",
            a.slope_per_hour
        );
        assert_eq!(worst(Verdict::Ok, Verdict::Unknown), Verdict::Unknown);
        assert_eq!(worst(Verdict::Leak, Verdict::Unknown), Verdict::Leak);
    }

    #[test]
    fn empty_and_single_point_series_are_unknown() {
        let st = settings(&[("30m", 1800)], Resource::Rss);
        let a = analyze(
            &[
                Series::default(),
                Series {
                    labels: BTreeMap::new(),
                    points: vec![(0.0, 1.0)],
                },
            ],
            &st,
        );
        assert_eq!(a.verdict, Verdict::Unknown);
        assert_eq!(a.series[0].interval_seconds, None);
        assert_eq!(a.series[1].baseline, Some(1.0));
    }
}
