//! What the monitor shows: the serialisable report behind `/status` and the summary, and the
//! monitor's fragment of the progress line.

use serde::Serialize;

use super::attribution::AttributionReport;
use super::settings::Source;
use super::trend::{TrendFit, TrendWindow};
use super::{lock, reason, Monitor, ProcState, Resource, Verdict};
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
    /// Which process was read and how it was found, for labels: `pid 20677`, `pid 20677 from
    /// pid_file /run/litellm.pid`, `pid 20677 from match_cmdline "litellm"`, `scrape_url
    /// http://10.0.0.7:4000/metrics` ([`source_label`]).
    pub source_label: String,
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
    /// Why each verdict is what it is, in words ([`super::reason::verdict`]): the reason of
    /// an `unknown` or `ok`, and the limit a pass is under.
    pub reason: PerResource<String>,
    /// The rate limit each resource is judged against, units per hour (RSS: the larger of
    /// `rss_mib_per_hour` and `rss_percent_per_hour` of the baseline; absent before a
    /// baseline).
    pub limit_per_hour: PerResource<Option<f64>>,
    /// Whether a `leak` verdict of this process fails the run (`fail_on_leak`; always false
    /// for soakd itself, whose leak only makes the soak suspect).
    pub fail_on_leak: bool,
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

/// One value per resource.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct PerResource<T> {
    /// Resident memory.
    pub rss: T,
    /// Open file descriptors.
    pub fds: T,
    /// Threads.
    pub threads: T,
}

impl<T> PerResource<T> {
    /// Builds each value from its resource.
    pub fn from_fn(mut f: impl FnMut(Resource) -> T) -> Self {
        PerResource {
            rss: f(Resource::Rss),
            fds: f(Resource::Fds),
            threads: f(Resource::Threads),
        }
    }

    /// The value of `r`.
    pub fn get(&self, r: Resource) -> &T {
        match r {
            Resource::Rss => &self.rss,
            Resource::Fds => &self.fds,
            Resource::Threads => &self.threads,
        }
    }
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
            source_label: source_label(&st.source, st.pid),
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
            reason: PerResource::from_fn(|r| self.reason(st, r)),
            limit_per_hour: PerResource::from_fn(|r| {
                Some(self.rules.rate_limit(r, st.baseline_rss)).filter(|l| l.is_finite())
            }),
            // soakd itself is not among the configured processes: false.
            fail_on_leak: self
                .settings
                .processes
                .iter()
                .any(|p| p.name == st.name && p.fail_on_leak),
        }
    }

    /// Why resource `r` of `st` has its reported verdict ([`reason::verdict`]).
    fn reason(&self, st: &ProcState, r: Resource) -> String {
        let windows: Vec<reason::WindowState<'_>> = self
            .settings
            .windows
            .iter()
            .enumerate()
            .map(|(wi, w)| reason::WindowState {
                label: &w.label,
                fit: st.trend.fit(wi, r.index()),
                no_fit: st.trend.no_fit(wi, r.index()),
            })
            .collect();
        reason::verdict(r, st.verdict(r), &windows, &self.rules, st.baseline_rss)
    }

    /// The RSS slope of the progress line, from the longest FULL window that has a fit:
    /// `+1.2MiB/h(30m)`. A window not yet full shows no slope (its fit covers less time than
    /// its label says, and early growth reads many times the truth): until one is full,
    /// `slope:filling(5m: 2m of 5m)` (`slope:warm-up` before the first sample after it); a
    /// full window without a fit says why (`slope:none(30m: 4 troughs < 6, one per 2m)`), so
    /// a slope never turns into a bare "pending".
    fn progress_slope(&self, st: &ProcState) -> String {
        let r = Resource::Rss.index();
        let windows = || self.settings.windows.iter().zip(st.trend.windows()).rev();
        let full = windows().filter(|(_, b)| b.is_full());
        if let Some((w, f)) = full.clone().find_map(|(w, b)| b.fit(r).map(|f| (w, f))) {
            let sign = if f.slope >= 0.0 { "+" } else { "-" };
            return format!("{sign}{}/h({})", fmt_bytes(f.slope.abs() * 3600.0), w.label);
        }
        if let Some((w, b)) = full.clone().next() {
            return format!(
                "slope:none({}: {})",
                w.label,
                reason::no_fit_short(b.no_fit(r))
            );
        }
        let shortest = self.settings.windows.iter().zip(st.trend.windows()).next();
        match shortest {
            Some((w, b)) if b.covered() > 0.0 => format!(
                "slope:filling({}: {} of {})",
                w.label,
                reason::secs(b.covered()),
                reason::secs(b.span())
            ),
            _ => "slope:warm-up".into(),
        }
    }

    /// Short text for the progress line, e.g.
    /// `target rss 412MiB +1.2MiB/h(30m) leak:none`. Lists the configured processes (soakd
    /// only when nothing else is watched); the slope is [`Self::progress_slope`]'s.
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
                s.push(' ');
                s.push_str(&self.progress_slope(&st));
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

/// How a process is labelled: the pid that was read, then where it came from, each config
/// key by its name (`pid 20677 from pid_file /run/litellm.pid`, `pid 20677 from match_name
/// "litellm" and match_cmdline "serve"`); a scrape names its URL without a password.
pub fn source_label(source: &Source, pid: Option<u32>) -> String {
    let pid = |rest: String| match pid {
        Some(p) => format!("pid {p}{rest}"),
        None => format!("no pid yet{rest}"),
    };
    match source {
        Source::Pid(p) => format!("pid {p}"),
        Source::PidFile(path) => pid(format!(" from pid_file {}", path.display())),
        Source::Match { name, cmdline } => {
            let keys: Vec<String> = [("match_name", name), ("match_cmdline", cmdline)]
                .into_iter()
                .filter_map(|(k, v)| v.as_ref().map(|v| format!("{k} {v:?}")))
                .collect();
            pid(format!(" from {}", keys.join(" and ")))
        }
        Source::Scrape { url, .. } => {
            let mut url = url.clone();
            if url.password().is_some() {
                let _ = url.set_password(Some("redacted"));
            }
            format!("scrape_url {url}")
        }
    }
}

/// RSS slope ÷ request rate over the window, when both are known.
pub(super) fn per_request(w: &TrendWindow) -> Option<f64> {
    let fit = w.fit(Resource::Rss.index())?;
    let load = w.load()?;
    (load.request_rate > 0.0).then(|| fit.slope / load.request_rate)
}

/// The summary's attribution table of one process: a row per scenario, a column per window,
/// each cell the published bytes per request (± its standard error) or why there is none.
/// With one scenario configured the table is titled as what it is, the overall growth per
/// request; with several, a value published while only its scenario had requests in the
/// window is marked so. Empty when no scenario is known.
pub fn attribution_table(p: &ProcessReport) -> String {
    use std::fmt::Write;
    let Some(first) = p.windows.first() else {
        return String::new();
    };
    let names: Vec<&str> = first
        .rss_bytes_per_request_by_scenario
        .scenarios
        .iter()
        .map(|s| s.scenario.as_str())
        .collect();
    if names.is_empty() {
        return String::new();
    }
    let mut cells: Vec<Vec<String>> = vec![Vec::new(); names.len()];
    for w in &p.windows {
        let a = &w.rss_bytes_per_request_by_scenario;
        for (row, s) in cells.iter_mut().zip(&a.scenarios) {
            let s = &s.attribution;
            let only = if a.single_scenario && names.len() > 1 {
                " (the only one with requests)"
            } else {
                ""
            };
            row.push(match (s.bytes_per_request, s.withheld.or(a.withheld)) {
                (Some(v), _) => match s.std_error {
                    Some(se) => format!("{} ±{}{only}", fmt_bytes(v), fmt_bytes(se)),
                    None => format!("{}{only}", fmt_bytes(v)),
                },
                (None, Some(why)) => format!("- ({})", why.as_str()),
                (None, None) => "-".into(),
            });
        }
    }
    let name_w = names.iter().map(|n| n.len()).max().unwrap_or(0).max(8);
    let col_w: Vec<usize> = (0..p.windows.len())
        .map(|c| {
            cells
                .iter()
                .map(|r| r[c].chars().count())
                .chain(std::iter::once(p.windows[c].window.len()))
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::from(if names.len() == 1 {
        "    rss growth per request (one scenario: the overall growth per request, no mix \
         changes needed):\n"
    } else {
        "    rss growth per request by scenario:\n"
    });
    let _ = write!(out, "      {:<name_w$}", "scenario");
    for (w, cw) in p.windows.iter().zip(&col_w) {
        let _ = write!(out, "  {:>cw$}", w.window);
    }
    out.push('\n');
    for (name, row) in names.iter().zip(&cells) {
        let _ = write!(out, "      {name:<name_w$}");
        for (cell, cw) in row.iter().zip(&col_w) {
            let pad = cw.saturating_sub(cell.chars().count());
            let _ = write!(out, "  {}{cell}", " ".repeat(pad));
        }
        out.push('\n');
    }
    out
}
