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
//! failure of each cause and at most once a minute per cause after, and the sample
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
//! The open streams are `LoadSignals::streams_open`, kept by the client's stream guard.
//! Growth per request of each scenario, and the rule for publishing it: [`attribution`].

pub mod attribution;
pub mod estimate;
pub mod expo;
pub mod judge;
pub mod mann_kendall;
pub mod period;
pub mod replay;
pub mod report;
pub mod settings;
pub mod source;
pub mod synth;
pub mod trend;

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use futures_util::future::join_all;
use prometheus::{Gauge, IntCounter, IntGauge};
use serde::Serialize;
use tokio_util::sync::CancellationToken;

use crate::metrics::{label_enum, Counter, Metrics};
use crate::signals::LoadSignals;
use crate::telemetry::WarnLimiter;

use estimate::{Point, WindowBuf, N_RES};
use report::per_request;
pub use report::{FitReport, MonitorReport, ProcessReport, ResourceVerdicts, WindowReport};
pub use settings::{
    LeakThresholds, MonitorSettings, ProcessSpec, RawLeakThresholds, RawMonitor, RawProcess,
    RawScrapeMetrics, ScrapeNames, Source, Window,
};
use source::{Reading, SampleError};

/// A process that stays unreadable is warned about at most once a minute per cause.
const WARN_EVERY: Duration = Duration::from_secs(60);

label_enum! {
    /// A monitored resource (`resource` label).
    Resource {
        Rss => "rss",
        Fds => "fds",
        Threads => "threads",
    }
}

/// Sample gauges for one monitored process, resolved once.
#[derive(Clone)]
pub struct ProcessMetrics {
    pub up: IntGauge,
    pub cpu_seconds: Counter,
    pub restarts: IntCounter,
    pub retained_after_burst: Gauge,
    leak: Vec<IntGauge>,
}

impl ProcessMetrics {
    /// Resolves the handles of `process`.
    pub fn new(m: &Metrics, process: &str) -> Self {
        ProcessMetrics {
            up: m.process_up.with_label_values(&[process]),
            cpu_seconds: m.process_cpu_seconds_total.with_label_values(&[process]),
            restarts: m.process_restarts_total.with_label_values(&[process]),
            retained_after_burst: m
                .process_rss_retained_after_burst
                .with_label_values(&[process]),
            leak: Resource::ALL
                .iter()
                .map(|r| m.leak_suspected.with_label_values(&[process, r.as_str()]))
                .collect(),
        }
    }

    /// `soakd_leak_suspected{resource}` of this process.
    pub fn leak(&self, resource: Resource) -> &IntGauge {
        &self.leak[resource.index()]
    }
}

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

/// The load signals read once per tick.
#[derive(Debug, Clone, Copy)]
struct Tick<'a> {
    t: f64,
    requests: u64,
    streams: f64,
    burst: bool,
    mix: attribution::MixTick<'a>,
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
    /// Attribution by scenario, one per window.
    attribution: Vec<attribution::AttributionBuf>,
    verdicts: [Verdict; N_RES],
    burst: BurstTrack,
    retained: Option<f64>,
    /// Unreadable-process warnings, one budget per [`SampleError`] kind.
    warn: WarnLimiter,
    /// Partly-unreadable warnings.
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
    start_unix: f64,
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
            fail_on_leak: false,
        })
        .chain(settings.processes.iter().cloned());
        let interval = settings.sample_interval.as_secs_f64();
        let procs = specs
            .map(|spec| {
                let handles = ProcessMetrics::new(&metrics, &spec.name);
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
                    attribution: attribution::bufs(&settings, signals.mix.names.len()),
                    verdicts: [Verdict::Unknown; N_RES],
                    burst: BurstTrack::default(),
                    retained: None,
                    warn: WarnLimiter::new(SampleError::KINDS, WARN_EVERY),
                    partial_warn: WarnLimiter::new(1, WARN_EVERY),
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
            start_unix: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0.0, |d| d.as_secs_f64()),
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
        let mut counts = Vec::new();
        let tick = Tick {
            t: self.start.elapsed().as_secs_f64(),
            requests: self.signals.requests_finished(),
            streams: self.signals.streams_open() as f64,
            burst: self.signals.burst_active(),
            mix: attribution::MixTick::read(&self.signals, &mut counts),
        };
        join_all(self.procs.iter().map(|p| self.sample_process(p, tick))).await;
    }

    async fn sample_process(&self, cell: &Mutex<ProcState>, tick: Tick<'_>) {
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

    fn apply(&self, st: &mut ProcState, r: Reading, tick: Tick<'_>) {
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
            if st.partial_warn.admit(0).is_some() {
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
        if let Some(rss) = r.rss {
            self.push_attribution(st, tick.t, rss, tick.mix);
        }
    }

    fn apply_error(&self, st: &mut ProcState, e: SampleError) {
        if matches!(st.source, Source::Match { .. }) {
            st.resolved = None;
        }
        if let Some(suppressed) = st.warn.admit(e.kind_index()) {
            tracing::warn!(process = %st.name, error = %e, suppressed, "monitored process unreadable; its growth gauges are withdrawn");
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
        self.remove_attribution_gauges(st);
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
        st.attribution.iter_mut().for_each(|a| a.clear());
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

    fn track_burst(&self, st: &mut ProcState, rss: Option<f64>, tick: Tick<'_>) {
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
}

/// A poisoned lock only means a panic elsewhere mid-update; the state is still usable.
fn lock(m: &Mutex<ProcState>) -> MutexGuard<'_, ProcState> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests;
