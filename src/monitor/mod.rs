//! Leak detection: process sampling, remote scraping, slope estimation and the leak verdict.
//!
//! # Sources
//! Every watched process has a name (the `process` label) and exactly one [`Source`]: a pid,
//! a pid file (re-read at every sample), a name/cmdline match (re-resolved when the process
//! is gone; among a wrapper and what it runs, the innermost: [`local`]), or the process's own
//! Prometheus endpoint. soakd itself is always sampled as `process="soakd"` (where the
//! platform allows). Local sources go through one [`local::ProcessTable`]: /proc on Linux
//! ([`procfs`] — `stat`, `status` and the `fd/` directory of the watched pids only, no
//! full-table refresh), sysinfo elsewhere; what a platform cannot give is said once at
//! start-up. With `include_children` a local process is read with all its descendants,
//! found again at every sample: summed PSS, fds and threads ([`local::read_tree`]).
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
//! Per process, one [`trend::TrendSet`]: per window, samples go into at most
//! [`estimate::MAX_BUCKETS`] (120) equal time buckets holding each resource's MINIMUM, and a
//! ring of slot minima from which the dominant GC sawtooth period is detected
//! ([`period`]). The fit points are the minima of groups of buckets at least one period wide
//! — one trough per GC cycle; without a sawtooth, the bucket minima — fitted by Sen's slope
//! with a Mann–Kendall trend test, Hamed–Rao corrected for autocorrelation, that gives the
//! slope's 95 % confidence interval ([`mann_kendall`]). Why the minimum: a garbage-collected
//! or arena-caching process shows a sawtooth whose peaks are garbage and whose troughs are
//! what it retains, and a leak is what moves the retained floor. R² is kept as a diagnostic
//! only (`soakd_process_growth_fit_r2`); under a slow sawtooth it is low even when the trend
//! is certain. Rules, measured accuracy and cost: [`trend`]; the detection-time matrix:
//! BENCHMARKS.md. A window has a fit only when its closed buckets cover half its span and
//! give at least [`trend::MIN_FIT_POINTS`] troughs; otherwise its gauges are absent. Samples
//! within `warmup` of the start of an incarnation are not fitted. Memory per process is fixed
//! from the first sample; a refit runs only when a bucket closes.
//!
//! # Verdict
//! [`judge`] has the rules. In short: a window CALLS a leak when the LOWER confidence bound
//! of its slope exceeds the resource's threshold — RSS: the larger of `rss_mib_per_hour`
//! (default 50 MiB/h) and `rss_percent_per_hour` of the baseline (default 10 %/h); fds 60/h;
//! threads 30/h — its fitted growth across the window exceeds the floor (RSS:
//! `min_growth_bytes`, default 4 MiB, and `min_growth_percent` of the baseline, default 2 %)
//! and its newer half keeps up. A resource is `leak` when the longest window calls it and
//! the shorter windows agree (see [`judge`]); `unknown` until the longest window has a fit.
//! The raw verdict is re-judged at every refit; the reported one (`soakd_leak_suspected`,
//! `/status`, the summary) changes into or out of `leak` only after the raw verdict held the
//! new side for `[monitor] confirm` (default 15 s), and each such change is logged once.
//! `min_r2` is deprecated and ignored (a warning says so). The lower bound of every window's
//! slope is exported as `soakd_process_growth_lower_bound_per_second`.
//!
//! # Run states
//! Inside a run ([`Monitor::with_phases`]) every process is sampled from the start to the
//! summary, but only samples taken under load (the `load` and `drain` states of
//! [`crate::phases`]) feed the growth windows, the burst retention and the attribution: an
//! idle stretch before the load and a cooldown after it would otherwise read as a step or a
//! drop of the trend. `warmup` counts from the start of the load (or from the first sight of
//! a process, whichever is later). The leak verdict is therefore the load's; a cooldown only
//! lets a pending change of it pass its `confirm` time.
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

pub mod arc;
pub mod attribution;
pub mod estimate;
pub mod expo;
mod gauges;
pub mod judge;
pub mod local;
pub mod mann_kendall;
pub mod period;
#[cfg(target_os = "linux")]
pub mod procfs;
pub mod reading;
pub mod reason;
pub mod replay;
pub mod report;
mod sample;
pub mod settings;
pub mod source;
pub mod synth;
#[cfg(any(not(target_os = "linux"), feature = "sysinfo"))]
pub mod sysinfo_source;
pub mod trend;

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use prometheus::{Gauge, IntCounter, IntGauge};
use serde::Serialize;
use tokio_util::sync::CancellationToken;

use crate::metrics::{label_enum, Counter, Metrics};
use crate::phases::{RunPhases, RunState};
use crate::signals::LoadSignals;
use crate::telemetry::WarnLimiter;

use arc::{ArcPhase, ArcRecorder};
use estimate::{Point, N_RES};
use judge::{Hysteresis, LeakRules, Transition};
use local::ProcessTable;
pub use report::{
    FitReport, MonitorReport, PerResource, ProcessReport, ResourceVerdicts, WindowReport,
};
pub use settings::{
    LeakThresholds, MonitorSettings, ProcessSpec, RawLeakThresholds, RawMonitor, RawProcess,
    RawScrapeMetrics, ScrapeNames, Source, Window,
};
use source::{Reading, SampleError};
use trend::TrendSet;

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
    /// The HTTP client for scrape sources could not be built (the message names reqwest's
    /// error, which is not also a `source()`).
    #[error("building the scrape HTTP client: {0}")]
    Client(reqwest::Error),
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
    /// The run's state (`None`: no phases, always under load).
    state: Option<RunState>,
    /// When the load started, in the monitor's time (`None`: not yet, or no phases).
    load_start: Option<f64>,
    /// When the current state began, in the monitor's time.
    since: Option<f64>,
}

impl Tick<'_> {
    /// Whether this sample belongs to the load (load or drain, or a monitor without phases):
    /// only those feed the growth fits and the leak verdict.
    fn under_load(&self) -> bool {
        self.state
            .is_none_or(|s| matches!(s, RunState::Load | RunState::Drain))
    }

    /// The part of the memory arc this sample belongs to (`None` in the linger).
    fn arc_phase(&self) -> Option<ArcPhase> {
        match self.state {
            None | Some(RunState::Load) => Some(ArcPhase::Load),
            Some(RunState::Idle) => Some(ArcPhase::Idle),
            Some(RunState::Drain) => Some(ArcPhase::Drain),
            Some(RunState::Cooldown) => Some(ArcPhase::Cooldown),
            Some(RunState::Linger) => None,
        }
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
    /// The growth windows, shortest first.
    trend: TrendSet,
    /// Attribution by scenario, one per window.
    attribution: Vec<attribution::AttributionBuf>,
    /// Raw verdict per resource, re-judged at every refit.
    raw: [Verdict; N_RES],
    /// The reported verdict per resource: the raw one through `[monitor] confirm`.
    shown: [Hysteresis; N_RES],
    burst: BurstTrack,
    retained: Option<f64>,
    /// Unreadable-process warnings, one budget per [`SampleError`] kind.
    warn: WarnLimiter,
    /// Partly-unreadable warnings.
    partial_warn: WarnLimiter,
    /// The memory arc over the whole run.
    arc: ArcRecorder,
    /// What the memory values are: `rss`, or `pss` for a process tree.
    memory: &'static str,
    /// Read with its descendants.
    include_children: bool,
    /// The tree at the last sample (with `include_children`).
    tree: Option<source::TreeReading>,
}

impl ProcState {
    /// The reported verdict of `r`.
    fn verdict(&self, r: Resource) -> Verdict {
        self.shown[r.index()].verdict()
    }
}

/// Whether any configured process is read locally (soakd itself always is, where it can).
fn watch_self_or_local(settings: &MonitorSettings) -> bool {
    local::supported()
        || settings
            .processes
            .iter()
            .any(|p| source::is_local(&p.source))
}

/// Samples the watched processes and judges their growth. Build with [`Monitor::new`], run
/// with [`Monitor::run`], read with [`Monitor::snapshot`].
pub struct Monitor {
    settings: MonitorSettings,
    rules: LeakRules,
    metrics: Arc<Metrics>,
    signals: Arc<LoadSignals>,
    client: Option<reqwest::Client>,
    procs: Vec<Mutex<ProcState>>,
    start: Instant,
    start_unix: f64,
    self_pid: u32,
    /// The run's states, when the monitor runs inside a run.
    phases: Option<Arc<RunPhases>>,
    /// The platform's process table, for local sources.
    table: Arc<dyn ProcessTable>,
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
                    .build()
                    .map_err(MonitorError::Client)?,
            )
        } else {
            None
        };
        let table = local::default_table();
        // soakd watches itself where the platform lets it.
        let watch_self = local::supported().then(|| ProcessSpec {
            name: settings::SELF_NAME.into(),
            source: Source::Pid(self_pid),
            fail_on_leak: false,
            include_children: false,
        });
        if watch_self.is_none() {
            tracing::warn!(
                "process sampling is not available on this platform: soakd does not watch itself"
            );
        }
        let specs = watch_self
            .into_iter()
            .chain(settings.processes.iter().cloned());
        let missing = table.unavailable();
        let has_pss = !missing.iter().any(|m| m.starts_with("PSS"));
        if !missing.is_empty() && watch_self_or_local(&settings) {
            tracing::warn!(
                backend = table.name(),
                "not available on this platform for local processes: {}; those resources have \
                 no samples and no leak verdict",
                missing.join(", ")
            );
        }
        let interval = settings.sample_interval.as_secs_f64();
        let spans: Vec<f64> = settings
            .windows
            .iter()
            .map(|w| w.duration.as_secs_f64())
            .collect();
        let confirm = settings.confirm.as_secs_f64();
        if let Some(w) = judge::min_r2_deprecation(settings.thresholds.min_r2) {
            tracing::warn!("{w}");
        }
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
                    trend: TrendSet::new(&spans, interval, trend::DEFAULT_CONFIDENCE)
                        .with_load_period(settings.load_period.map(|d| d.as_secs_f64())),
                    attribution: attribution::bufs(&settings, signals.mix.names.len()),
                    raw: [Verdict::Unknown; N_RES],
                    shown: std::array::from_fn(|_| Hysteresis::new(confirm)),
                    burst: BurstTrack::default(),
                    retained: None,
                    warn: WarnLimiter::new(SampleError::KINDS, WARN_EVERY),
                    partial_warn: WarnLimiter::new(1, WARN_EVERY),
                    arc: ArcRecorder::new(),
                    memory: if spec.include_children && has_pss {
                        "pss"
                    } else {
                        "rss"
                    },
                    include_children: spec.include_children,
                    tree: None,
                })
            })
            .collect();
        Ok(Monitor {
            rules: LeakRules::from_thresholds(&settings.thresholds),
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
            phases: None,
            table,
        })
    }

    /// Reads the run's states: samples outside load and drain (idle, cooldown) do not feed the
    /// growth fits, and the warm-up counts from the start of the load.
    pub fn with_phases(mut self, phases: Arc<RunPhases>) -> Self {
        self.phases = Some(phases);
        self
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

    fn apply(&self, st: &mut ProcState, r: Reading, tick: Tick<'_>) {
        if matches!(st.source, Source::Match { .. }) {
            st.resolved = r.identity.pid;
        }
        if let Some(pid) = r.identity.pid {
            st.pid = Some(pid);
        }
        if r.tree.is_some() {
            st.tree = r.tree.clone();
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
        self.record_arc(st, &values, tick);
        if !tick.under_load() {
            // Idle and cooldown: sampled and shown, not fitted.
            self.report_verdicts(st, tick.t);
            return;
        }
        self.track_burst(st, r.rss, tick);

        let fit_from = st.fit_from.max(tick.load_start.unwrap_or(0.0));
        if tick.t < fit_from + self.settings.warmup.as_secs_f64() {
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
        if st.trend.push(&point) {
            for wi in 0..self.settings.windows.len() {
                self.export_window(st, wi);
            }
            self.judge_raw(st);
        }
        self.report_verdicts(st, tick.t);
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

    fn reset_fit(&self, st: &mut ProcState, t: f64) {
        st.trend.clear();
        st.attribution.iter_mut().for_each(|a| a.clear());
        st.fit_from = t;
        st.baseline_rss = None;
        st.burst = BurstTrack::default();
        self.remove_growth_gauges(st);
        st.raw = [Verdict::Unknown; N_RES];
        for r in Resource::ALL {
            if let Some(tr) = st.shown[r.index()].reset(t) {
                self.log_transition(st, *r, tr);
            }
        }
    }

    /// Re-judges the raw verdict of every resource from the current fits ([`judge`]).
    fn judge_raw(&self, st: &mut ProcState) {
        for r in Resource::ALL {
            let fits: Vec<Option<trend::TrendFit>> = (0..st.trend.windows().len())
                .map(|wi| st.trend.fit(wi, r.index()))
                .collect();
            let was_leak = st.raw[r.index()] == Verdict::Leak;
            st.raw[r.index()] =
                judge::resource_verdict(*r, &fits, st.baseline_rss, &self.rules, was_leak);
        }
    }

    /// Feeds the raw verdicts through the hysteresis; reports and logs each change once.
    fn report_verdicts(&self, st: &mut ProcState, t: f64) {
        for r in Resource::ALL {
            let i = r.index();
            if let Some(tr) = st.shown[i].update(t, st.raw[i]) {
                self.log_transition(st, *r, tr);
            }
        }
    }

    fn log_transition(&self, st: &ProcState, r: Resource, tr: Transition) {
        let (was, is) = (tr.from == Verdict::Leak, tr.to == Verdict::Leak);
        if was == is {
            return;
        }
        st.handles.leak(r).set(i64::from(is));
        let long = st.trend.windows().len().checked_sub(1);
        let fit = long.and_then(|wi| st.trend.fit(wi, r.index()));
        let window = self.settings.windows.last().map(|w| w.label.as_str());
        let held = tr.at - tr.since;
        if is {
            tracing::warn!(
                process = %st.name,
                resource = r.as_str(),
                window,
                slope_per_hour = fit.map(|f| f.per_hour()),
                lower_bound_per_hour = fit.map(|f| f.slope_lo * 3600.0),
                held_secs = held,
                "leak suspected"
            );
        } else {
            tracing::info!(process = %st.name, resource = r.as_str(), verdict = ?tr.to, held_secs = held, "leak no longer suspected");
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
