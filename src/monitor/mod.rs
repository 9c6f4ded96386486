//! Leak detection: process sampling, remote scraping, slope estimation and the leak verdict.
//!
//! # Sources
//! Every watched process has a name (the `process` label) and exactly one [`Source`]: a pid,
//! a pid file (re-read at every sample), a name/cmdline match (re-resolved when the process
//! is gone), or the process's own Prometheus endpoint. soakd itself is always sampled as
//! `process="soakd"`. Local sources read /proc directly — `stat`, `status` and the `fd/`
//! directory of the watched pids only, no full-table refresh.
//!
//! A restart (new pid, or a different start time) is logged, counted in
//! `soakd_process_restarts_total`, and starts the fit over: buffers cleared, warm-up again.
//! When a process cannot be read, `soakd_process_up` is 0, a warning is logged at the first
//! failure and at most once a minute after (or at once when the cause changes), and the sample
//! and growth gauges of that process are REMOVED, so no stale slope looks current. The buffers
//! of the same incarnation are kept (a flaky scrape does not reset a 2 h window); gauges come
//! back at the next successful sample that refits a window holding enough data, and buckets
//! older than the window are evicted as usual. Partial data (e.g. `fd/` unreadable for another
//! user's process) keeps `up=1` and drops only the missing gauges; that resource's verdict
//! stays unknown.
//!
//! # Estimation
//! Per process and window, samples are aggregated into at most [`estimate::MAX_BUCKETS`] (120)
//! equal time buckets (width = window / 120, at least one sample interval). Each bucket keeps
//! per resource its MINIMUM and when it was seen, plus the load signals. A fit over the closed
//! buckets is Theil–Sen restricted to pairs at least a quarter of the span apart
//! ([`estimate::MIN_SEPARATION`]), followed by two lower-envelope refits
//! ([`estimate::ENVELOPE_ITERATIONS`]: keep the points on or under the line, fit again). R²
//! is computed against the final envelope points and clamped to [0, 1]; `points` is the
//! number of buckets fitted. Memory per window is fixed (121 buckets and preallocated scratch);
//! a fit costs O(120²) and runs only when a bucket closes, so the cost per sample does not
//! grow with the run length.
//!
//! Why the minimum: a garbage-collected or arena-caching process shows a sawtooth whose peaks
//! are garbage and whose troughs are what it retains — and a leak is what moves the retained
//! floor. When the sawtooth period is shorter than a bucket, the bucket minimum is the trough
//! and the points lie on the lower envelope. When the period is longer than a bucket, the
//! minima follow the saw itself: plain Theil–Sen is then biased upwards, because pairs inside
//! one ramp all carry the ramp's slope. Dropping close pairs removes most of them and the
//! envelope refits keep the troughs. A per-bucket mean or median would carry the sawtooth's
//! phase into every point and track the middle of the saw rather than the floor.
//!
//! Measured (`estimate::tests::sawtooth_table`, seeds 0–4: 20 MiB/h leak + 30 MiB sawtooth +
//! ±2 MiB uniform noise, 30 min window = 15 s buckets, 1 s samples, slope error / R²):
//!
//! | sawtooth period | plain Theil–Sen | chosen fit (sep. 0.25 + 2 envelope refits) |
//! |---|---|---|
//! | 7 s (< bucket) | −3.2 … +6.2 % (R² ≈ 0.9) | −0.9 … +1.0 % (R² 1.00) |
//! | 30 s (2 buckets) | −2.1 … +2.1 % (R² ≈ 0) | −9.0 … +4.9 % (R² ≈ 0.97) |
//! | 60 s | +0.1 … +3.8 % | −6.2 … +9.7 % (R² ≈ 0.94) |
//! | 120 s (8 buckets) | +10 … +15 % | −0.8 … +1.1 % (R² ≈ 0.68) |
//! | 300 s (20 buckets) | +68 … +71 % | −2.7 … +9.9 % (R² ≈ 0.67) |
//! | 600 s (3 periods per window) | +155 … +159 % | +9 … +25 % (R² ≈ 0.71) |
//!
//! The chosen fit trades a few percent of scatter at periods of 2–4 buckets (fewer envelope
//! points) for removing the large bias at long periods; a flat 40 MiB sawtooth reads under
//! 5 MiB/h at every period tested, and three 90–500 MiB outliers move the slope by under 5 %.
//! A sawtooth spanning only a few periods of the window still reads high, with R² well under
//! the default `min_r2` 0.8, so no verdict is made from it; the longer windows (larger
//! buckets) see such a process correctly. On a real child leaking 20 MiB/s
//! (`tests/monitor_live.rs`, 200 ms samples) both windows read within 0.5 % with R² 1.00.
//!
//! A window reports a slope only when it holds at least [`settings::MIN_POINTS`] closed
//! buckets spanning at least half the window; otherwise its gauges are absent. Samples
//! within `warmup` of the start of an incarnation are not fitted.
//!
//! # Verdict
//! A window calls a leak when its R² ≥ `min_r2` and its slope per hour exceeds the resource's
//! threshold: RSS — both `rss_mib_per_hour` (default 50 MiB/h: 1.2 GiB a day, which no
//! healthy proxy at steady load accumulates) AND `rss_percent_per_hour` of the baseline
//! (default 10 %/h: a multi-GiB proxy's slow drift stays below it). Requiring both keeps a
//! small process's allocator noise (soakd itself, at 30 MiB, grows by kilobytes while pools
//! fill: over 10 %/h on a two-minute window, far under 50 MiB/h) from being a leak; fds — 60/h (one a minute: a healthy pool is flat after warm-up); threads —
//! 30/h (thread pools are bounded; steady thread growth is a leak or runaway spawning).
//! `min_r2` 0.8 rejects noisy or step-shaped series. A resource's verdict is `leak` only when
//! BOTH the shortest and the longest configured window call a leak (a plateau makes the long
//! window disagree; a stopped leak makes the short one disagree); `unknown` until the longest
//! window holds enough data (until then a plateau cannot be told from a leak), else `ok`. `soakd_leak_suspected` is 1 for `leak`,
//! else 0, and a log line marks each change.
//!
//! # Load normalisation
//! Each bucket also records `requests_finished` and `streams_open`, so a window knows its
//! request rate and mean open streams: `soakd_process_rss_growth_bytes_per_request` = RSS
//! slope ÷ request rate (absent without requests), and the report carries RSS growth per
//! second per open stream. Post-burst retention: RSS at the last sample before a burst, and
//! `burst_settle` after it ends, the difference goes to
//! `soakd_process_rss_retained_after_burst_bytes`. The burst signal is read at sample times,
//! so a burst shorter than the interval can go unseen; a burst that starts before the
//! previous one settled abandons that measurement.

pub mod estimate;
pub mod expo;
pub mod judge;
pub mod mann_kendall;
pub mod period;
pub mod replay;
pub mod settings;
pub mod source;
pub mod synth;
pub mod trend;

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use futures_util::future::join_all;
use serde::Serialize;
use tokio_util::sync::CancellationToken;

use crate::metrics::{Metrics, ProcessMetrics, Resource};
use crate::signals::LoadSignals;

use estimate::{Point, WindowBuf, N_RES};
pub use settings::{
    LeakThresholds, MonitorSettings, ProcessSpec, RawLeakThresholds, RawMonitor, RawProcess,
    RawScrapeMetrics, ScrapeNames, Source, Window,
};
use source::{Reading, SampleError};

const WARN_EVERY: Duration = Duration::from_secs(60);
const MIB: f64 = 1024.0 * 1024.0;

/// Errors building a [`Monitor`].
#[derive(Debug, thiserror::Error)]
pub enum MonitorError {
    /// The HTTP client for scrape sources could not be built.
    #[error("building the scrape HTTP client: {0}")]
    Client(#[from] reqwest::Error),
}

/// A resource's leak verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// Both the shortest and the longest ready window pass the thresholds.
    Leak,
    /// Enough data, no leak.
    Ok,
    /// No window holds enough data yet.
    Unknown,
}

/// The monitor's state for `/status`, the progress line and the summary.
#[derive(Debug, Clone, Serialize)]
pub struct MonitorReport {
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
}

/// A fitted slope.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct FitReport {
    /// Units per second.
    pub slope_per_sec: f64,
    /// Units per hour.
    pub slope_per_hour: f64,
    /// R² of the fit.
    pub r2: f64,
    /// Points fitted.
    pub points: usize,
}

/// The load signals read once per tick.
#[derive(Debug, Clone, Copy)]
struct Tick {
    t: f64,
    requests: u64,
    streams: f64,
    burst: bool,
}

#[derive(Debug, Default)]
struct WarnLimiter {
    last: Option<(Instant, &'static str)>,
}

impl WarnLimiter {
    fn allow(&mut self, key: &'static str) -> bool {
        let now = Instant::now();
        let ok = match self.last {
            Some((at, k)) => k != key || now.duration_since(at) >= WARN_EVERY,
            None => true,
        };
        if ok {
            self.last = Some((now, key));
        }
        ok
    }
}

#[derive(Debug, Default)]
struct BurstTrack {
    was_active: bool,
    pre_rss: Option<f64>,
    frozen: Option<f64>,
    ended_at: Option<f64>,
}

struct ProcState {
    name: String,
    source: Source,
    handles: ProcessMetrics,
    up: bool,
    identity: Option<source::Identity>,
    /// Pid resolved by a match source.
    resolved: Option<u32>,
    pid: Option<u32>,
    restarts: u64,
    samples: u64,
    fit_from: f64,
    baseline_rss: Option<f64>,
    peak_rss: Option<f64>,
    last: [Option<f64>; N_RES],
    cpu_total: f64,
    cpu_prev: Option<f64>,
    windows: Vec<WindowBuf>,
    verdicts: [Verdict; N_RES],
    burst: BurstTrack,
    retained: Option<f64>,
    warn: WarnLimiter,
    partial_warn: WarnLimiter,
}

/// Samples the watched processes and judges their growth. Build with [`Monitor::new`], run
/// with [`Monitor::run`], read with [`Monitor::snapshot`].
pub struct Monitor {
    settings: MonitorSettings,
    metrics: Arc<Metrics>,
    signals: Arc<LoadSignals>,
    client: Option<reqwest::Client>,
    procs: Vec<Mutex<ProcState>>,
    start: Instant,
    self_pid: u32,
}

impl Monitor {
    /// Builds the monitor. Nothing is resolved here: a bad pid shows as `up=0` at runtime.
    pub fn new(
        settings: MonitorSettings,
        metrics: Arc<Metrics>,
        signals: Arc<LoadSignals>,
    ) -> Result<Self, MonitorError> {
        let self_pid = std::process::id();
        let needs_client = settings
            .processes
            .iter()
            .any(|p| !source::is_local(&p.source));
        let client = if needs_client {
            let timeout = settings
                .sample_interval
                .clamp(Duration::from_secs(1), Duration::from_secs(5));
            Some(
                reqwest::Client::builder()
                    .timeout(timeout)
                    .connect_timeout(timeout)
                    .pool_max_idle_per_host(1)
                    .build()?,
            )
        } else {
            None
        };
        let specs = std::iter::once(ProcessSpec {
            name: settings::SELF_NAME.into(),
            source: Source::Pid(self_pid),
        })
        .chain(settings.processes.iter().cloned());
        let interval = settings.sample_interval.as_secs_f64();
        let procs = specs
            .map(|spec| {
                let handles = metrics.process(&spec.name);
                // `Metrics::process` creates every child at 0; sample gauges and retention
                // must stay absent until there is a value.
                let n = [spec.name.as_str()];
                let _ = metrics
                    .process_resident_memory_bytes
                    .remove_label_values(&n);
                let _ = metrics.process_open_fds.remove_label_values(&n);
                let _ = metrics.process_threads.remove_label_values(&n);
                let _ = metrics
                    .process_rss_retained_after_burst
                    .remove_label_values(&n);
                handles.up.set(0);
                Mutex::new(ProcState {
                    name: spec.name,
                    source: spec.source,
                    handles,
                    up: false,
                    identity: None,
                    resolved: None,
                    pid: None,
                    restarts: 0,
                    samples: 0,
                    fit_from: 0.0,
                    baseline_rss: None,
                    peak_rss: None,
                    last: [None; N_RES],
                    cpu_total: 0.0,
                    cpu_prev: None,
                    windows: settings
                        .windows
                        .iter()
                        .map(|w| WindowBuf::new(w.duration.as_secs_f64(), interval))
                        .collect(),
                    verdicts: [Verdict::Unknown; N_RES],
                    burst: BurstTrack::default(),
                    retained: None,
                    warn: WarnLimiter::default(),
                    partial_warn: WarnLimiter::default(),
                })
            })
            .collect();
        Ok(Monitor {
            settings,
            metrics,
            signals,
            client,
            procs,
            start: Instant::now(),
            self_pid,
        })
    }

    /// The validated settings.
    pub fn settings(&self) -> &MonitorSettings {
        &self.settings
    }

    /// Samples every `sample_interval` until `shutdown` is cancelled.
    pub async fn run(self: Arc<Self>, shutdown: CancellationToken) {
        let mut tick = tokio::time::interval(self.settings.sample_interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = tick.tick() => self.sample_once().await,
            }
        }
    }

    /// Takes one sample of every process now (what [`Monitor::run`] does each tick).
    pub async fn sample_once(&self) {
        let tick = Tick {
            t: self.start.elapsed().as_secs_f64(),
            requests: self.signals.requests_finished(),
            streams: self.signals.streams_open() as f64,
            burst: self.signals.burst_active(),
        };
        join_all(self.procs.iter().map(|p| self.sample_process(p, tick))).await;
    }

    async fn sample_process(&self, cell: &Mutex<ProcState>, tick: Tick) {
        let (source, resolved) = {
            let st = lock(cell);
            (st.source.clone(), st.resolved)
        };
        let result = match &source {
            Source::Pid(pid) => source::read_local(*pid),
            Source::PidFile(path) => source::read_pid_file(path).and_then(source::read_local),
            Source::Match { name, cmdline } => {
                let (n, c) = (name.as_deref(), cmdline.as_deref());
                let first = resolved.map(source::read_local);
                match first {
                    Some(Ok(r)) => Ok(r),
                    _ => match source::find_match(n, c, self.self_pid) {
                        Some(pid) => source::read_local(pid),
                        None => Err(SampleError::NoMatch(source::describe_match(n, c))),
                    },
                }
            }
            Source::Scrape { url, names } => match &self.client {
                Some(client) => source::read_scrape(client, url, names).await,
                None => Err(SampleError::Scrape("no HTTP client".into())),
            },
        };
        let mut st = lock(cell);
        match result {
            Ok(reading) => self.apply(&mut st, reading, tick),
            Err(e) => self.apply_error(&mut st, e),
        }
    }

    fn apply(&self, st: &mut ProcState, r: Reading, tick: Tick) {
        if matches!(st.source, Source::Match { .. }) {
            st.resolved = r.identity.pid;
        }
        if let Some(pid) = r.identity.pid {
            st.pid = Some(pid);
        }
        match st.identity {
            None => {
                // First sight: CPU counts from here.
                st.fit_from = tick.t;
                st.cpu_prev = r.cpu;
            }
            Some(old) if old != r.identity => {
                st.restarts += 1;
                st.handles.restarts.inc();
                tracing::info!(
                    process = %st.name,
                    old_pid = ?old.pid,
                    new_pid = ?r.identity.pid,
                    "monitored process restarted; growth fit starts over"
                );
                self.reset_fit(st, tick.t);
                // The new incarnation started while we watched: all its CPU counts.
                st.cpu_prev = Some(0.0);
            }
            Some(_) => {}
        }
        st.identity = Some(r.identity);
        if !st.up {
            if st.samples > 0 {
                tracing::info!(process = %st.name, pid = ?r.identity.pid, "monitored process is readable again");
            }
            st.up = true;
        }
        st.handles.up.set(1);
        st.samples += 1;

        let values = [r.rss, r.fds, r.threads];
        st.last = values;
        for (res, v) in Resource::ALL.iter().zip(values) {
            let vec = self.sample_gauge(*res);
            match v {
                Some(v) => vec.with_label_values(&[&st.name]).set(v),
                None => {
                    let _ = vec.remove_label_values(&[&st.name]);
                }
            }
        }
        if let Some(reason) = &r.partial {
            if st.partial_warn.allow("partial") {
                tracing::warn!(process = %st.name, reason = %reason, "monitored process partly unreadable; missing resources have no verdict");
            }
        }
        if let Some(cpu) = r.cpu {
            if let Some(prev) = st.cpu_prev {
                if cpu >= prev {
                    st.handles.cpu_seconds.inc_by(cpu - prev);
                    st.cpu_total += cpu - prev;
                }
            }
            st.cpu_prev = Some(cpu);
        }
        if let Some(rss) = r.rss {
            st.peak_rss = Some(st.peak_rss.map_or(rss, |p| p.max(rss)));
        }
        self.track_burst(st, r.rss, tick);

        if tick.t < st.fit_from + self.settings.warmup.as_secs_f64() {
            return;
        }
        if st.baseline_rss.is_none() {
            st.baseline_rss = r.rss;
        }
        let point = Point {
            t: tick.t,
            values,
            requests: tick.requests,
            streams: tick.streams,
        };
        let mut refit = false;
        for wi in 0..st.windows.len() {
            if st.windows[wi].push(&point) {
                refit = true;
                self.export_window(st, wi);
            }
        }
        if refit {
            self.update_verdicts(st);
        }
    }

    fn apply_error(&self, st: &mut ProcState, e: SampleError) {
        if matches!(st.source, Source::Match { .. }) {
            st.resolved = None;
        }
        if st.warn.allow(e.key()) {
            tracing::warn!(process = %st.name, error = %e, "monitored process unreadable; its growth gauges are withdrawn");
        }
        st.up = false;
        st.handles.up.set(0);
        self.remove_gauges(st);
    }

    fn sample_gauge(&self, r: Resource) -> &prometheus::GaugeVec {
        match r {
            Resource::Rss => &self.metrics.process_resident_memory_bytes,
            Resource::Fds => &self.metrics.process_open_fds,
            Resource::Threads => &self.metrics.process_threads,
        }
    }

    fn growth_gauge(&self, r: Resource) -> &prometheus::GaugeVec {
        match r {
            Resource::Rss => &self.metrics.process_rss_growth,
            Resource::Fds => &self.metrics.process_fd_growth,
            Resource::Threads => &self.metrics.process_thread_growth,
        }
    }

    fn remove_growth_gauges(&self, st: &ProcState) {
        for w in &self.settings.windows {
            let pw = [st.name.as_str(), w.label.as_str()];
            for r in Resource::ALL {
                let _ = self.growth_gauge(*r).remove_label_values(&pw);
                let _ = self.metrics.process_growth_fit_r2.remove_label_values(&[
                    &st.name,
                    r.as_str(),
                    &w.label,
                ]);
            }
            let _ = self
                .metrics
                .process_rss_growth_per_request
                .remove_label_values(&pw);
        }
    }

    fn remove_gauges(&self, st: &ProcState) {
        for r in Resource::ALL {
            let _ = self.sample_gauge(*r).remove_label_values(&[&st.name]);
        }
        self.remove_growth_gauges(st);
    }

    fn reset_fit(&self, st: &mut ProcState, t: f64) {
        for w in &mut st.windows {
            w.clear();
        }
        st.fit_from = t;
        st.baseline_rss = None;
        st.burst = BurstTrack::default();
        self.remove_growth_gauges(st);
        self.update_verdicts(st);
    }

    fn export_window(&self, st: &ProcState, wi: usize) {
        let label = self.settings.windows[wi].label.as_str();
        let w = &st.windows[wi];
        let pw = [st.name.as_str(), label];
        for r in Resource::ALL {
            let r2_labels = [st.name.as_str(), r.as_str(), label];
            match w.fit(r.index()) {
                Some(fit) => {
                    self.growth_gauge(*r).with_label_values(&pw).set(fit.slope);
                    self.metrics
                        .process_growth_fit_r2
                        .with_label_values(&r2_labels)
                        .set(fit.r2);
                }
                None => {
                    let _ = self.growth_gauge(*r).remove_label_values(&pw);
                    let _ = self
                        .metrics
                        .process_growth_fit_r2
                        .remove_label_values(&r2_labels);
                }
            }
        }
        let per_request = per_request(w);
        let g = &self.metrics.process_rss_growth_per_request;
        match per_request {
            Some(v) => g.with_label_values(&pw).set(v),
            None => {
                let _ = g.remove_label_values(&pw);
            }
        }
    }

    fn window_leaks(&self, st: &ProcState, fit: estimate::Fit, r: Resource) -> bool {
        let th = &self.settings.thresholds;
        let per_hour = fit.slope * 3600.0;
        let limit = match r {
            Resource::Rss => {
                let relative = st
                    .baseline_rss
                    .map_or(f64::INFINITY, |b| b * th.rss_fraction_per_hour);
                // Both limits must be passed: the absolute one keeps small processes (soakd
                // itself, a 20 MiB proxy) from being called leaky over allocator noise, the
                // relative one keeps a multi-GiB proxy's normal drift from it.
                th.rss_bytes_per_hour.max(relative)
            }
            Resource::Fds => th.fds_per_hour,
            Resource::Threads => th.threads_per_hour,
        };
        fit.r2 >= th.min_r2 && per_hour > limit
    }

    fn update_verdicts(&self, st: &mut ProcState) {
        for r in Resource::ALL {
            let ready: Vec<estimate::Fit> =
                st.windows.iter().filter_map(|w| w.fit(r.index())).collect();
            // The longest window must have its fit: a plateau looks like a leak in every
            // window shorter than the time since it began.
            let long_ready = st
                .windows
                .last()
                .is_some_and(|w| w.fit(r.index()).is_some());
            let verdict = match (ready.first(), ready.last()) {
                (Some(short), Some(long)) if long_ready => {
                    if self.window_leaks(st, *short, *r) && self.window_leaks(st, *long, *r) {
                        Verdict::Leak
                    } else {
                        Verdict::Ok
                    }
                }
                _ => Verdict::Unknown,
            };
            let old = std::mem::replace(&mut st.verdicts[r.index()], verdict);
            let (was, is) = (old == Verdict::Leak, verdict == Verdict::Leak);
            if was != is {
                st.handles.leak(*r).set(i64::from(is));
                let slope_h = ready.last().map(|f| f.slope * 3600.0);
                if is {
                    tracing::warn!(process = %st.name, resource = r.as_str(), slope_per_hour = ?slope_h, "leak suspected");
                } else {
                    tracing::info!(process = %st.name, resource = r.as_str(), verdict = ?verdict, "leak no longer suspected");
                }
            }
        }
    }

    fn track_burst(&self, st: &mut ProcState, rss: Option<f64>, tick: Tick) {
        let b = &mut st.burst;
        if tick.burst && !b.was_active {
            b.frozen = b.pre_rss;
            b.ended_at = None;
        } else if !tick.burst && b.was_active && b.frozen.is_some() {
            b.ended_at = Some(tick.t);
        }
        b.was_active = tick.burst;
        if tick.burst {
            return;
        }
        if let (Some(end), Some(before), Some(now)) = (b.ended_at, b.frozen, rss) {
            if tick.t - end >= self.settings.burst_settle.as_secs_f64() {
                let retained = now - before;
                b.ended_at = None;
                b.frozen = None;
                st.retained = Some(retained);
                self.metrics
                    .process_rss_retained_after_burst
                    .with_label_values(&[&st.name])
                    .set(retained);
                tracing::info!(process = %st.name, retained_bytes = retained, "RSS retained after burst");
            }
        }
        let b = &mut st.burst;
        if b.ended_at.is_none() && rss.is_some() {
            b.pre_rss = rss;
        }
    }

    /// A serialisable picture of every process now.
    pub fn snapshot(&self) -> MonitorReport {
        MonitorReport {
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
        let fit_report = |f: Option<estimate::Fit>| {
            f.map(|f| FitReport {
                slope_per_sec: f.slope,
                slope_per_hour: f.slope * 3600.0,
                r2: f.r2,
                points: f.points,
            })
        };
        let windows = self
            .settings
            .windows
            .iter()
            .zip(&st.windows)
            .map(|(w, buf)| {
                let load = buf.load();
                let rss = buf.fit(Resource::Rss.index());
                WindowReport {
                    window: w.label.clone(),
                    rss: fit_report(rss),
                    fds: fit_report(buf.fit(Resource::Fds.index())),
                    threads: fit_report(buf.fit(Resource::Threads.index())),
                    request_rate_per_sec: load.map(|l| l.request_rate),
                    rss_bytes_per_request: per_request(buf),
                    avg_open_streams: load.map(|l| l.avg_streams),
                    rss_bytes_per_sec_per_open_stream: match (rss, load) {
                        (Some(f), Some(l)) if l.avg_streams > 0.0 => Some(f.slope / l.avg_streams),
                        _ => None,
                    },
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
                rss: st.verdicts[Resource::Rss.index()],
                fds: st.verdicts[Resource::Fds.index()],
                threads: st.verdicts[Resource::Threads.index()],
            },
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
                    Some(v) => s.push_str(&fmt_mib(v)),
                    None => s.push('?'),
                }
                // The longest window with a slope.
                let longest = self
                    .settings
                    .windows
                    .iter()
                    .zip(&st.windows)
                    .rev()
                    .find_map(|(w, b)| b.fit(Resource::Rss.index()).map(|f| (w, f)));
                match longest {
                    Some((w, f)) => {
                        let sign = if f.slope >= 0.0 { "+" } else { "-" };
                        s.push_str(&format!(
                            " {sign}{}/h({})",
                            fmt_mib(f.slope.abs() * 3600.0),
                            w.label
                        ));
                    }
                    None => s.push_str(" slope:pending"),
                }
                let leaking: Vec<&str> = Resource::ALL
                    .iter()
                    .filter(|r| st.verdicts[r.index()] == Verdict::Leak)
                    .map(|r| r.as_str())
                    .collect();
                if leaking.is_empty() {
                    if st.verdicts.iter().all(|v| *v == Verdict::Unknown) {
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

fn per_request(w: &WindowBuf) -> Option<f64> {
    let fit = w.fit(Resource::Rss.index())?;
    let load = w.load()?;
    (load.request_rate > 0.0).then(|| fit.slope / load.request_rate)
}

fn fmt_mib(bytes: f64) -> String {
    let m = bytes / MIB;
    if m.abs() >= 100.0 {
        format!("{m:.0}MiB")
    } else {
        format!("{m:.1}MiB")
    }
}

/// A poisoned lock only means a panic elsewhere mid-update; the state is still usable.
fn lock(m: &Mutex<ProcState>) -> MutexGuard<'_, ProcState> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests;
