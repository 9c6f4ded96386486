//! The `GET /series` document: one column per value, ready for uPlot.
//!
//! Both buffers are laid out the same way (`recent`, `run`): `t` is each point's mid-time in
//! Unix seconds and `dt` its duration; rates are per second over the point; percentiles are
//! in seconds and `null` for a point without values; process columns are `null` while the
//! process was unreadable. `processes` lists, per monitored process, its state, verdicts and
//! the fitted line of each window and resource: `value(t) = intercept + slope_per_sec ×
//! (t − origin)`, drawn from `from` to `to` (Unix seconds), where `origin` is the monitor's
//! t = 0. `spans` are labelled stretches of time the charts shade as bands: the run's states
//! (kind `phase`: idle, load, drain, cooldown, linger), each from the instant it was entered
//! to the next one's (`to` absent for the current state).

use std::collections::BTreeMap;

use serde::Serialize;

use super::point::Point;
use super::{Buffer, Series};
use crate::client::Outcome;
use crate::monitor::{FitReport, PerResource, ResourceVerdicts};

/// The whole document.
#[derive(Debug, Serialize)]
pub struct SeriesJson<'a> {
    /// Format version.
    pub version: u32,
    /// When recording started (Unix seconds).
    pub started: f64,
    /// The last tick (Unix seconds).
    pub now: f64,
    /// The last hour at 10 s.
    pub recent: Block<'a>,
    /// The whole run.
    pub run: Block<'a>,
    /// Per monitored process.
    pub processes: Vec<ProcessInfo<'a>>,
    /// Labelled time spans to shade on the time charts.
    pub spans: Vec<Span>,
}

/// A labelled stretch of time (Unix seconds) the charts shade as a band.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Span {
    /// What kind of span: `phase` for the run's states.
    pub kind: &'static str,
    /// Its label, e.g. `cooldown`.
    pub label: &'static str,
    /// Start, Unix seconds.
    pub from: f64,
    /// End, Unix seconds; absent while it lasts.
    pub to: Option<f64>,
}

/// One buffer as columns.
#[derive(Debug, Serialize)]
pub struct Block<'a> {
    pub step_secs: f64,
    pub t: Vec<f64>,
    pub dt: Vec<f64>,
    pub planned_rps: Vec<Option<f64>>,
    pub achieved_rps: Vec<f64>,
    /// Fraction of the point's ticks inside a burst.
    pub burst: Vec<Option<f64>>,
    pub latency_p50: Vec<Option<f64>>,
    pub latency_p99: Vec<Option<f64>>,
    pub ttft_p50: Vec<Option<f64>>,
    pub ttft_p99: Vec<Option<f64>>,
    /// Finished requests per second, by outcome; only outcomes seen in this buffer.
    pub outcomes: BTreeMap<&'static str, Vec<f64>>,
    pub streams_active: Vec<Option<f64>>,
    pub streams_active_max: Vec<Option<f64>>,
    pub processes: Vec<ProcessColumns<'a>>,
}

/// One process's columns in a [`Block`].
#[derive(Debug, Serialize)]
pub struct ProcessColumns<'a> {
    pub name: &'a str,
    pub rss: Vec<Option<f64>>,
    pub rss_min: Vec<Option<f64>>,
    pub rss_max: Vec<Option<f64>>,
    pub fds: Vec<Option<f64>>,
    pub threads: Vec<Option<f64>>,
}

/// A monitored process now.
#[derive(Debug, Serialize)]
pub struct ProcessInfo<'a> {
    pub name: &'a str,
    pub source: &'static str,
    pub up: bool,
    pub pid: Option<u32>,
    pub baseline_rss_bytes: Option<f64>,
    pub peak_rss_bytes: Option<f64>,
    pub retained_after_burst_bytes: Option<f64>,
    pub verdict: ResourceVerdicts,
    /// Why each verdict is what it is (the monitor's words).
    pub reason: &'a PerResource<String>,
    pub fits: Vec<FitLine<'a>>,
}

/// One window's fitted line for one resource.
#[derive(Debug, Clone, Serialize)]
pub struct FitLine<'a> {
    pub window: &'a str,
    /// The window's length, seconds (from its label).
    pub window_secs: Option<f64>,
    /// `rss`, `fds` or `threads`.
    pub resource: &'static str,
    pub slope_per_sec: f64,
    pub slope_per_hour: f64,
    /// The line's value at `origin`.
    pub intercept: f64,
    /// The monitor's t = 0 (Unix seconds).
    pub origin: f64,
    /// First and last fitted point (Unix seconds).
    pub from: f64,
    pub to: f64,
    /// The line's value at `from` and at `to`.
    pub from_value: f64,
    pub to_value: f64,
    pub r2: f64,
    pub points: usize,
}

fn block<'a>(buf: &Buffer, names: &'a [String]) -> Block<'a> {
    let points = buf.points();
    let col = |f: &dyn Fn(&Point) -> Option<f64>| points.iter().map(f).collect::<Vec<_>>();
    let per_sec = |p: &Point, n: u64| if p.dt() > 0.0 { n as f64 / p.dt() } else { 0.0 };
    let ticks = |p: &Point| (p.ticks > 0).then_some(f64::from(p.ticks));
    let mut outcomes = BTreeMap::new();
    for o in Outcome::ALL {
        let i = o.index();
        if points.iter().any(|p| p.outcomes[i] > 0) {
            let v = points.iter().map(|p| per_sec(p, p.outcomes[i])).collect();
            outcomes.insert(o.as_str(), v);
        }
    }
    let processes = names
        .iter()
        .enumerate()
        .map(|(i, name)| {
            let g = |f: &dyn Fn(&super::point::ProcPoint) -> Option<f64>| {
                points
                    .iter()
                    .map(|p| p.procs.get(i).and_then(f))
                    .collect::<Vec<_>>()
            };
            ProcessColumns {
                name,
                rss: g(&|p| p.rss.mean()),
                rss_min: g(&|p| p.rss.min()),
                rss_max: g(&|p| p.rss.max()),
                fds: g(&|p| p.fds.mean()),
                threads: g(&|p| p.threads.mean()),
            }
        })
        .collect();
    Block {
        step_secs: buf.step(),
        t: points.iter().map(Point::mid).collect(),
        dt: points.iter().map(Point::dt).collect(),
        planned_rps: col(&|p| (p.dt() > 0.0).then(|| p.planned / p.dt())),
        achieved_rps: points.iter().map(|p| per_sec(p, p.sent)).collect(),
        burst: col(&|p| ticks(p).map(|n| f64::from(p.burst_ticks) / n)),
        latency_p50: col(&|p| p.latency.p50()),
        latency_p99: col(&|p| p.latency.p99()),
        ttft_p50: col(&|p| p.ttft.p50()),
        ttft_p99: col(&|p| p.ttft.p99()),
        outcomes,
        streams_active: col(&|p| p.streams.mean()),
        streams_active_max: col(&|p| p.streams.max()),
        processes,
    }
}

fn fit_line<'a>(
    window: &'a str,
    resource: &'static str,
    f: &FitReport,
    origin: f64,
) -> FitLine<'a> {
    let at = |t: f64| f.intercept + f.slope_per_sec * t;
    FitLine {
        window,
        window_secs: humantime::parse_duration(window)
            .ok()
            .map(|d| d.as_secs_f64()),
        resource,
        slope_per_sec: f.slope_per_sec,
        slope_per_hour: f.slope_per_hour,
        intercept: f.intercept,
        origin,
        from: origin + f.from_secs,
        to: origin + f.to_secs,
        from_value: at(f.from_secs),
        to_value: at(f.to_secs),
        r2: f.r2,
        points: f.points,
    }
}

impl Series {
    /// The `GET /series` document.
    pub fn json(&self) -> SeriesJson<'_> {
        let processes = self
            .monitor
            .as_ref()
            .map(|m| {
                let origin = m.started_unix_secs;
                m.processes
                    .iter()
                    .map(|p| {
                        let mut fits = Vec::new();
                        for w in &p.windows {
                            for (res, f) in
                                [("rss", &w.rss), ("fds", &w.fds), ("threads", &w.threads)]
                            {
                                if let Some(f) = f {
                                    fits.push(fit_line(&w.window, res, f, origin));
                                }
                            }
                        }
                        ProcessInfo {
                            name: &p.name,
                            source: p.source,
                            up: p.up,
                            pid: p.pid,
                            baseline_rss_bytes: p.baseline_rss_bytes,
                            peak_rss_bytes: p.peak_rss_bytes,
                            retained_after_burst_bytes: p.retained_after_burst_bytes,
                            verdict: p.verdict,
                            reason: &p.reason,
                            fits,
                        }
                    })
                    .collect()
            })
            .unwrap_or_default();
        SeriesJson {
            version: 1,
            started: self.started,
            now: self.prev.at,
            recent: block(&self.recent, &self.names),
            run: block(&self.run, &self.names),
            processes,
            spans: Vec::new(),
        }
    }
}
