//! What the monitor shows: the serialisable report behind `/status` and the summary, and the
//! monitor's fragment of the progress line.

use serde::Serialize;

use super::arc::ArcReport;
use super::attribution::AttributionReport;
use super::trend::{TrendFit, TrendWindow};
use super::{lock, Monitor, ProcState, Resource, Verdict};
use crate::units::fmt_bytes;

/// The monitor's state for `/status`, the progress line and the summary.
#[derive(Debug, Clone, Serialize)]
pub struct MonitorReport {
    /// Wall-clock time (Unix seconds) of the monitor's t = 0, the time base of the fits.
    pub started_unix_secs: f64,
    /// Sample interval, seconds.
    pub sample_interval_secs: f64,
    /// Window labels, shortest first.
    pub windows: Vec<String>,
    /// soakd first, then the configured processes in order.
    pub processes: Vec<ProcessReport>,
}

/// One process in a [`MonitorReport`].
#[derive(Debug, Clone, Serialize)]
pub struct ProcessReport {
    /// The `process` label.
    pub name: String,
    /// Source kind: pid, pid_file, match, scrape.
    pub source: &'static str,
    /// Whether the last sample succeeded.
    pub up: bool,
    /// Last pid seen (local sources).
    pub pid: Option<u32>,
    /// Restarts seen.
    pub restarts: u64,
    /// Successful samples.
    pub samples: u64,
    /// First post-warm-up RSS of the current incarnation, bytes.
    pub baseline_rss_bytes: Option<f64>,
    /// Highest RSS seen during the run, bytes.
    pub peak_rss_bytes: Option<f64>,
    /// Latest RSS, bytes (kept when the process goes down: the final value).
    pub rss_bytes: Option<f64>,
    /// Latest open fds.
    pub open_fds: Option<f64>,
    /// Latest threads.
    pub threads: Option<f64>,
    /// CPU seconds counted while watched.
    pub cpu_seconds: f64,
    /// Per window, shortest first.
    pub windows: Vec<WindowReport>,
    /// Latest post-burst retained RSS, bytes.
    pub retained_after_burst_bytes: Option<f64>,
    /// Verdict per resource.
    pub verdict: ResourceVerdicts,
    /// Whether a `leak` verdict of this process fails the run (`fail_on_leak`; always false
    /// for soakd itself, whose leak only makes the soak suspect).
    pub fail_on_leak: bool,
    /// The memory arc over the run: idle, peak, plateau, recovered, released share
    /// ([`super::arc`]).
    pub arc: ArcReport,
    /// With `include_children`: the tree at the last sample (members, largest descendants).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tree: Option<super::source::TreeReading>,
}

/// Verdicts per resource.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct ResourceVerdicts {
    /// Resident memory.
    pub rss: Verdict,
    /// Open file descriptors.
    pub fds: Verdict,
    /// Threads.
    pub threads: Verdict,
}

/// One window of one process.
#[derive(Debug, Clone, Serialize)]
pub struct WindowReport {
    /// The `window` label.
    pub window: String,
    /// RSS fit (bytes).
    pub rss: Option<FitReport>,
    /// fds fit.
    pub fds: Option<FitReport>,
    /// Threads fit.
    pub threads: Option<FitReport>,
    /// Finished requests per second over the window.
    pub request_rate_per_sec: Option<f64>,
    /// RSS slope ÷ request rate.
    pub rss_bytes_per_request: Option<f64>,
    /// Mean open streams over the window.
    pub avg_open_streams: Option<f64>,
    /// RSS slope ÷ mean open streams, bytes per second per open stream.
    pub rss_bytes_per_sec_per_open_stream: Option<f64>,
    /// RSS growth per request of each scenario, or why it is withheld
    /// ([`super::attribution`]).
    pub rss_bytes_per_request_by_scenario: AttributionReport,
}

/// A fitted line: `value(t) = intercept + slope_per_sec × t`, with `t` in seconds since the
/// monitor started ([`MonitorReport::started_unix_secs`]).
#[derive(Debug, Clone, Copy, Serialize)]
pub struct FitReport {
    /// Units per second.
    pub slope_per_sec: f64,
    /// Units per hour.
    pub slope_per_hour: f64,
    /// The line's value at t = 0 (units).
    pub intercept: f64,
    /// Time of the first fitted point, seconds since the monitor started.
    pub from_secs: f64,
    /// Time of the last fitted point, seconds since the monitor started.
    pub to_secs: f64,
    /// Lower bound of the slope's 95 % confidence interval, units per hour (absent when the
    /// interval is unbounded: too few troughs).
    pub slope_lower_per_hour: Option<f64>,
    /// Upper bound of that interval, units per hour.
    pub slope_upper_per_hour: Option<f64>,
    /// Two-sided Mann–Kendall p-value of the trend (autocorrelation-corrected).
    pub trend_p: f64,
    /// The GC sawtooth period the troughs were cut by, seconds (absent: no sawtooth).
    pub period_secs: Option<f64>,
    /// R² of the line over the troughs (a diagnostic; it gates nothing).
    pub r2: f64,
    /// Trough points fitted.
    pub points: usize,
}

impl FitReport {
    /// The report of a window's fit.
    pub fn of(f: &TrendFit) -> Self {
        let per_hour = |v: f64| v.is_finite().then_some(v * 3600.0);
        FitReport {
            slope_per_sec: f.slope,
            slope_per_hour: f.per_hour(),
            intercept: f.intercept,
            from_secs: f.from,
            to_secs: f.from + f.span,
            slope_lower_per_hour: per_hour(f.slope_lo),
            slope_upper_per_hour: per_hour(f.slope_hi),
            trend_p: f.mk_p,
            period_secs: f.period,
            r2: f.r2,
            points: f.points,
        }
    }
}

impl Monitor {
    /// A serialisable picture of every process now.
    pub fn snapshot(&self) -> MonitorReport {
        MonitorReport {
            started_unix_secs: self.start_unix,
            sample_interval_secs: self.settings.sample_interval.as_secs_f64(),
            windows: self
                .settings
                .windows
                .iter()
                .map(|w| w.label.clone())
                .collect(),
            processes: self.procs.iter().map(|p| self.report(&lock(p))).collect(),
        }
    }

    fn report(&self, st: &ProcState) -> ProcessReport {
        let fit_report =
            |buf: &TrendWindow, r: Resource| buf.fit(r.index()).map(|f| FitReport::of(&f));
        let windows = self
            .settings
            .windows
            .iter()
            .zip(st.trend.windows())
            .enumerate()
            .map(|(wi, (w, buf))| {
                let load = buf.load();
                let rss = buf.fit(Resource::Rss.index());
                WindowReport {
                    window: w.label.clone(),
                    rss: fit_report(buf, Resource::Rss),
                    fds: fit_report(buf, Resource::Fds),
                    threads: fit_report(buf, Resource::Threads),
                    request_rate_per_sec: load.map(|l| l.request_rate),
                    rss_bytes_per_request: per_request(buf),
                    avg_open_streams: load.map(|l| l.avg_streams),
                    rss_bytes_per_sec_per_open_stream: match (rss, load) {
                        (Some(f), Some(l)) if l.avg_streams > 0.0 => Some(f.slope / l.avg_streams),
                        _ => None,
                    },
                    rss_bytes_per_request_by_scenario: self.attribution_report(st, wi),
                }
            })
            .collect();
        ProcessReport {
            name: st.name.clone(),
            source: st.source.kind(),
            up: st.up,
            pid: st.pid,
            restarts: st.restarts,
            samples: st.samples,
            baseline_rss_bytes: st.baseline_rss,
            peak_rss_bytes: st.peak_rss,
            rss_bytes: st.last[Resource::Rss.index()],
            open_fds: st.last[Resource::Fds.index()],
            threads: st.last[Resource::Threads.index()],
            cpu_seconds: st.cpu_total,
            windows,
            retained_after_burst_bytes: st.retained,
            verdict: ResourceVerdicts {
                rss: st.verdict(Resource::Rss),
                fds: st.verdict(Resource::Fds),
                threads: st.verdict(Resource::Threads),
            },
            // soakd itself is not among the configured processes: false.
            fail_on_leak: self
                .settings
                .processes
                .iter()
                .any(|p| p.name == st.name && p.fail_on_leak),
            arc: st.arc.report(st.memory, &self.rules),
            tree: st.tree.clone(),
        }
    }

    /// Short text for the progress line, e.g.
    /// `target rss 412MiB +1.2MiB/h(30m) leak:none`. Lists the configured processes (soakd
    /// only when nothing else is watched).
    pub fn progress_fragment(&self) -> String {
        let skip_self = self.procs.len() > 1;
        let parts: Vec<String> = self
            .procs
            .iter()
            .skip(usize::from(skip_self))
            .map(|p| {
                let st = lock(p);
                if !st.up {
                    return format!("{} down", st.name);
                }
                let mut s = format!("{} rss ", st.name);
                match st.last[Resource::Rss.index()] {
                    Some(v) => s.push_str(&fmt_bytes(v)),
                    None => s.push('?'),
                }
                // The longest window with a slope.
                let longest = self
                    .settings
                    .windows
                    .iter()
                    .zip(st.trend.windows())
                    .rev()
                    .find_map(|(w, b)| b.fit(Resource::Rss.index()).map(|f| (w, f)));
                match longest {
                    Some((w, f)) => {
                        let sign = if f.slope >= 0.0 { "+" } else { "-" };
                        s.push_str(&format!(
                            " {sign}{}/h({})",
                            fmt_bytes(f.slope.abs() * 3600.0),
                            w.label
                        ));
                    }
                    None => s.push_str(" slope:pending"),
                }
                let leaking: Vec<&str> = Resource::ALL
                    .iter()
                    .filter(|r| st.verdict(**r) == Verdict::Leak)
                    .map(|r| r.as_str())
                    .collect();
                if leaking.is_empty() {
                    if Resource::ALL
                        .iter()
                        .all(|r| st.verdict(*r) == Verdict::Unknown)
                    {
                        s.push_str(" leak:?");
                    } else {
                        s.push_str(" leak:none");
                    }
                } else {
                    s.push_str(&format!(" leak:{}", leaking.join(",")));
                }
                s
            })
            .collect();
        parts.join("; ")
    }
}

/// RSS slope ÷ request rate over the window, when both are known.
pub(super) fn per_request(w: &TrendWindow) -> Option<f64> {
    let fit = w.fit(Resource::Rss.index())?;
    let load = w.load()?;
    (load.request_rate > 0.0).then(|| fit.slope / load.request_rate)
}
