//! What the run looks like now and at the end: `/status`, the progress line, the summary.
//!
//! Everything here is read from the metric handles, the HDR [`Stats`], the engine state and
//! the monitor; nothing is recorded twice. A [`Snapshot`] is cheap to build (a few hundred
//! counter reads and four histogram merges) and is built at most once a second by the progress
//! ticker and on each `/status` request.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;
use tokio::time::Instant;

use crate::client::error_body::TopBody;
use crate::client::{Outcome, StreamResult};
use crate::engine::{DropReason, EngineState, ScenarioHandles};
use crate::metrics::Metrics;
pub use crate::monitor::report::monitor_text;
use crate::monitor::settings::SELF_NAME;
use crate::monitor::{FitReport, Monitor, MonitorReport, ProcessReport, Resource, Verdict};
use crate::phases::{PhaseSpan, RunPhases, RunState};
use crate::plan::Phase;
use crate::signals::LoadSignals;
use crate::stats::creep::CreepReport;
use crate::stats::{Percentiles, Series, Stats};
use crate::units::{fmt_elapsed, fmt_secs};
use crate::upstream::{ProxyReport, Tracker};
use crate::verdict::{
    LeakInput, LeakState, ProxyInputs, ReleasedInput, ThresholdResult, VerdictInputs,
};

/// Version of the summary JSON's layout ([`Summary`]); `soakd compare` refuses any other.
/// Bump it when a field that `soakd compare` reads changes meaning or place.
pub const SUMMARY_SCHEMA_VERSION: u32 = 1;

/// How far back the "achieved rate now" looks.
const RATE_WINDOW: Duration = Duration::from_secs(10);
const METER_SLOTS: usize = 64;

/// Counts of one scenario.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ScenarioCounts {
    pub name: String,
    pub requests: BTreeMap<&'static str, u64>,
    pub dropped: BTreeMap<&'static str, u64>,
    pub streams: BTreeMap<&'static str, u64>,
    pub streams_active: i64,
    pub chunks: u64,
    pub output_tokens: u64,
    pub response_bytes: u64,
    /// Stream events of a type soakd does not know, tolerated (a proxy or provider newer
    /// than soakd's parsers).
    pub unknown_events: u64,
    /// Per outcome of an HTTP error status, the most frequent body (a redacted one-line
    /// excerpt, [`crate::client::error_body`]), how often it came and of how many.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub error_bodies: BTreeMap<&'static str, TopBody>,
}

/// Latency percentiles, in seconds.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Latencies {
    pub duration: Percentiles,
    pub ttft: Percentiles,
    pub chunk_gap: Percentiles,
    pub schedule_lag: Percentiles,
}

/// The state of the run at one instant: `/status` and the summary.
#[derive(Debug, Clone, Serialize)]
pub struct Snapshot {
    pub run_id: String,
    pub shard: u32,
    pub shards: u32,
    pub target: String,
    /// The engine's phase: starting, ramp, steady, burst, drain, done.
    pub phase: &'static str,
    /// The run's state ([`crate::phases`]): idle, load, drain, cooldown, linger (`starting`
    /// before the run began).
    pub state: &'static str,
    /// Every run state entered so far, with its time span.
    pub phases: Vec<PhaseSpan>,
    pub elapsed_seconds: f64,
    /// The rate the plan asks for now.
    pub target_rate: f64,
    /// Requests sent per second over the last 10 s.
    pub achieved_rate: f64,
    /// Requests the plan asked for per second over the same 10 s (bursts included), what
    /// `achieved_rate` is to be read against.
    pub planned_rate: f64,
    pub in_flight: i64,
    pub streams_active: i64,
    pub requests_sent: u64,
    pub requests_finished: u64,
    /// Finished requests by outcome, over all scenarios and phases.
    pub outcomes: BTreeMap<&'static str, u64>,
    pub dropped: BTreeMap<&'static str, u64>,
    pub streams: BTreeMap<&'static str, u64>,
    pub output_tokens: u64,
    pub latency: Latencies,
    pub scenarios: Vec<ScenarioCounts>,
    pub monitor: Option<MonitorReport>,
    /// The two-sided soak, while `[upstream]` is on.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub proxy: Option<ProxyReport>,
    /// First and last full `creep_window` of each scenario's p99s, unless creep is off.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub creep: Option<CreepReport>,
    pub thresholds: Vec<ThresholdResult>,
}

impl Snapshot {
    /// Finished requests that failed: every outcome but ok, cancelled and aborted
    /// ([`Outcome::is_error`]).
    pub fn errors(&self) -> u64 {
        self.count_where(Outcome::is_error)
    }

    /// Requests soakd stopped at the end of the grace period (`aborted`): not successes and
    /// not errors, counted on their own.
    pub fn aborted(&self) -> u64 {
        self.count_where(|o| o == Outcome::Aborted)
    }

    fn count_where(&self, f: impl Fn(Outcome) -> bool) -> u64 {
        Outcome::ALL
            .iter()
            .filter(|&&o| f(o))
            .filter_map(|o| self.outcomes.get(o.as_str()))
            .sum()
    }

    pub fn dropped_total(&self) -> u64 {
        self.dropped.values().sum()
    }

    /// Arrivals dropped because the generator could not send them (every reason but
    /// `shutdown`: an arrival due after the stop is the end of the run, not saturation). What
    /// `max_dropped` judges, like the `SoakdRequestsDropped` alert.
    pub fn dropped_saturated(&self) -> u64 {
        self.dropped
            .iter()
            .filter(|(r, _)| **r != DropReason::Shutdown.as_str())
            .map(|(_, n)| n)
            .sum()
    }

    pub fn streams_total(&self) -> u64 {
        self.streams.values().sum()
    }

    /// The inputs thresholds are judged on.
    pub fn verdict_inputs(&self) -> VerdictInputs {
        let p99 = |p: &Percentiles| (p.count > 0).then(|| Duration::from_secs_f64(p.p99));
        VerdictInputs {
            requests: self.requests_finished,
            errors: self.errors(),
            aborted: self.aborted(),
            streams: self.streams_total(),
            streams_truncated: self
                .streams
                .get(StreamResult::Truncated.as_str())
                .copied()
                .unwrap_or(0),
            dropped: self.dropped_saturated(),
            p99_ttft: p99(&self.latency.ttft),
            p99_duration: p99(&self.latency.duration),
            rss_growth_per_hour: self
                .monitor
                .as_ref()
                .map(rss_growth_per_hour)
                .unwrap_or_default(),
            leaks: self.monitor.as_ref().map(leak_inputs).unwrap_or_default(),
            released: self
                .monitor
                .as_ref()
                .map(released_inputs)
                .unwrap_or_default(),
            creep: self.creep.clone(),
            proxy: self.proxy.as_ref().map(|p| ProxyInputs {
                orphans: p.give_ups.orphaned,
                not_propagated_ratio: p.give_ups.not_propagated_ratio(),
                wasted_output_tokens: p.give_ups.wasted_output_tokens,
            }),
            weather: self.proxy.as_ref().map(crate::verdict::weather::inputs),
        }
    }
}

/// Every process's leak verdict per resource, with the slope of the longest window that has a
/// fit for that resource.
pub fn leak_inputs(m: &MonitorReport) -> Vec<LeakInput> {
    m.processes
        .iter()
        .flat_map(|p| Resource::ALL.iter().map(move |r| leak_input(p, *r)))
        .collect()
}

/// Every process's released share after the cooldown, from its memory arc.
pub fn released_inputs(m: &MonitorReport) -> Vec<ReleasedInput> {
    let input = |p: &ProcessReport| {
        let (idle_peak_recovered, share) = p.arc.memory_release();
        ReleasedInput {
            process: p.name.clone(),
            measured: idle_peak_recovered.iter().all(Option::is_some),
            share,
            idle_peak_recovered,
            fail_on_leak: p.fail_on_leak,
            is_self: p.name == SELF_NAME,
        }
    };
    m.processes.iter().map(input).collect()
}

fn leak_input(p: &ProcessReport, r: Resource) -> LeakInput {
    let verdict = match r {
        Resource::Rss => p.verdict.rss,
        Resource::Fds => p.verdict.fds,
        Resource::Threads => p.verdict.threads,
    };
    let fit = |w: &crate::monitor::WindowReport| -> Option<FitReport> {
        match r {
            Resource::Rss => w.rss,
            Resource::Fds => w.fds,
            Resource::Threads => w.threads,
        }
    };
    let longest = p
        .windows
        .iter()
        .rev()
        .find_map(|w| fit(w).map(|f| (w.window.clone(), f)));
    LeakInput {
        process: p.name.clone(),
        resource: r.as_str(),
        state: match verdict {
            Verdict::Leak => LeakState::Leak,
            Verdict::Ok => LeakState::Ok,
            Verdict::Unknown => LeakState::Unknown,
        },
        slope_per_hour: longest.as_ref().map(|(_, f)| f.slope_per_hour),
        r2: longest.as_ref().map(|(_, f)| f.r2),
        window: longest.map(|(w, _)| w),
        fail_on_leak: p.fail_on_leak,
        is_self: p.name == SELF_NAME,
        reason: p.reason.get(r).clone(),
        limit_per_hour: *p.limit_per_hour.get(r),
    }
}

/// The progress line's rate: requests sent per second over the last 10 s, over those the
/// plan asked for in the same 10 s; the sent rate alone when nothing was planned then and
/// nothing is now (the closed model asks for users, not a rate; a drained run).
fn fmt_rate(achieved: f64, planned: f64, target_now: f64) -> String {
    if planned == 0.0 && target_now == 0.0 {
        format!("{achieved:.1}")
    } else {
        format!("{achieved:.1}/{planned:.1}")
    }
}

/// Sent-request counts sampled once a second, for the recent achieved rate.
#[derive(Debug)]
struct RateMeter {
    /// (when, requests sent, requests planned) at each tick.
    samples: std::collections::VecDeque<(Instant, u64, f64)>,
}

impl RateMeter {
    fn new() -> Self {
        RateMeter {
            samples: std::collections::VecDeque::with_capacity(METER_SLOTS),
        }
    }

    fn sample(&mut self, now: Instant, sent: u64, planned: f64) {
        if self.samples.len() == METER_SLOTS {
            self.samples.pop_front();
        }
        self.samples.push_back((now, sent, planned));
    }

    /// Sent and planned rates over the newest samples spanning at most `RATE_WINDOW`.
    fn rates(&self) -> (f64, f64) {
        let Some(&(t1, n1, p1)) = self.samples.back() else {
            return (0.0, 0.0);
        };
        let oldest = self
            .samples
            .iter()
            .find(|(t, _, _)| t1.saturating_duration_since(*t) <= RATE_WINDOW)
            .copied();
        match oldest {
            Some((t0, n0, p0)) if t1 > t0 => {
                let dt = (t1 - t0).as_secs_f64();
                ((n1 - n0) as f64 / dt, (p1 - p0).max(0.0) / dt)
            }
            _ => (0.0, 0.0),
        }
    }
}

/// Reads the run's state for status, progress and summary.
pub struct RunView {
    p: RunViewParts,
    meter: Mutex<RateMeter>,
    thresholds: Mutex<Vec<ThresholdResult>>,
}

/// What a [`RunView`] reads, given to [`RunView::new`].
pub struct RunViewParts {
    pub run_id: String,
    pub shard: u32,
    pub shards: u32,
    pub target: String,
    pub metrics: Arc<Metrics>,
    pub stats: Arc<Stats>,
    pub state: Arc<EngineState>,
    pub signals: Arc<LoadSignals>,
    pub scenarios: Vec<ScenarioHandles>,
    pub monitor: Option<Arc<Monitor>>,
    /// The run's states.
    pub phases: Option<Arc<RunPhases>>,
    /// The two-sided soak's tracker and the upstream's address.
    pub proxy: Option<(Arc<Tracker>, String)>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl RunView {
    pub fn new(p: RunViewParts) -> Self {
        RunView {
            p,
            meter: Mutex::new(RateMeter::new()),
            thresholds: Mutex::new(Vec::new()),
        }
    }

    /// The target URL (the proxy under test).
    pub fn target(&self) -> &str {
        &self.p.target
    }

    pub fn state(&self) -> &EngineState {
        &self.p.state
    }

    pub fn metrics(&self) -> &Metrics {
        &self.p.metrics
    }

    /// The run's HDR histograms, with the run id and shard they belong to (`GET /histograms`).
    pub fn histograms(&self) -> crate::stats::wire::HistogramsDoc {
        crate::stats::wire::document(&self.p.stats, &self.p.run_id, self.p.shard)
    }

    /// Takes one sample for the recent-rate meter (and lets the storms read the time);
    /// call about once a second.
    pub fn tick(&self) {
        if let Some((t, _)) = &self.p.proxy {
            t.weather().tick(std::time::Instant::now());
        }
        lock(&self.meter).sample(
            Instant::now(),
            self.p.signals.requests_sent(),
            self.p.signals.requests_planned(),
        );
    }

    /// Keeps the latest threshold results for status and summary.
    pub fn set_thresholds(&self, results: Vec<ThresholdResult>) {
        *lock(&self.thresholds) = results;
    }

    pub fn snapshot(&self) -> Snapshot {
        let mut outcomes: BTreeMap<&'static str, u64> = BTreeMap::new();
        let mut dropped: BTreeMap<&'static str, u64> = BTreeMap::new();
        let mut streams: BTreeMap<&'static str, u64> = BTreeMap::new();
        let mut output_tokens = 0;
        let mut streams_active = 0;
        let scenarios = self
            .p
            .scenarios
            .iter()
            .map(|h| {
                let m = &h.metrics;
                let mut c = ScenarioCounts {
                    name: h.name.clone(),
                    streams_active: m.streams_active.get(),
                    chunks: m.chunks.get(),
                    output_tokens: m.output_tokens.get(),
                    response_bytes: m.response_bytes.get(),
                    unknown_events: m.unknown_events(),
                    error_bodies: m.top_error_bodies(),
                    ..ScenarioCounts::default()
                };
                for &o in Outcome::ALL {
                    let n: u64 = Phase::ALL.iter().map(|&p| m.request(p, o).get()).sum();
                    if n > 0 {
                        c.requests.insert(o.as_str(), n);
                        *outcomes.entry(o.as_str()).or_default() += n;
                    }
                }
                for &r in DropReason::ALL {
                    let n = h.dropped.get(r).get();
                    if n > 0 {
                        c.dropped.insert(r.as_str(), n);
                        *dropped.entry(r.as_str()).or_default() += n;
                    }
                }
                for &r in StreamResult::ALL {
                    let n = m.stream_finished(r).get();
                    if n > 0 {
                        c.streams.insert(r.as_str(), n);
                        *streams.entry(r.as_str()).or_default() += n;
                    }
                }
                output_tokens += c.output_tokens;
                streams_active += c.streams_active;
                c
            })
            .collect();
        let (achieved_rate, planned_rate) = lock(&self.meter).rates();
        Snapshot {
            run_id: self.p.run_id.clone(),
            shard: self.p.shard,
            shards: self.p.shards,
            target: self.p.target.clone(),
            phase: self.p.state.phase().as_str(),
            state: self
                .p
                .phases
                .as_ref()
                .and_then(|p| p.current())
                .map_or("starting", RunState::as_str),
            phases: self
                .p
                .phases
                .as_ref()
                .map(|p| p.spans())
                .unwrap_or_default(),
            elapsed_seconds: self.p.state.elapsed().as_secs_f64(),
            target_rate: self.p.metrics.target_rate.get(),
            achieved_rate,
            planned_rate,
            in_flight: self.p.metrics.in_flight_requests.get(),
            streams_active,
            requests_sent: self.p.signals.requests_sent(),
            requests_finished: outcomes.values().sum(),
            outcomes,
            dropped,
            streams,
            output_tokens,
            latency: Latencies {
                duration: self.p.stats.percentiles(Series::Duration),
                ttft: self.p.stats.percentiles(Series::Ttft),
                chunk_gap: self.p.stats.percentiles(Series::ChunkGap),
                schedule_lag: self.p.stats.percentiles(Series::ScheduleLag),
            },
            scenarios,
            monitor: self.p.monitor.as_ref().map(|m| m.snapshot()),
            proxy: self.p.proxy.as_ref().map(|(t, addr)| t.report(addr)),
            creep: self.p.stats.creep().map(|c| c.report()),
            thresholds: lock(&self.thresholds).clone(),
        }
    }

    /// The one-line progress log.
    pub fn progress_line(&self, s: &Snapshot) -> String {
        let mut line = format!(
            "{} {} rate {} rps | p50/p99 {}/{} ttft {}/{} | streams {} in-flight {} | errors {} dropped {}",
            fmt_elapsed(s.elapsed_seconds),
            crate::phases::progress_label(s.state, s.phase),
            fmt_rate(s.achieved_rate, s.planned_rate, s.target_rate),
            fmt_secs(s.latency.duration.p50),
            fmt_secs(s.latency.duration.p99),
            fmt_secs(s.latency.ttft.p50),
            fmt_secs(s.latency.ttft.p99),
            s.streams_active,
            s.in_flight,
            s.errors(),
            s.dropped_total(),
        );
        if let Some(m) = &self.p.monitor {
            let frag = m.progress_fragment();
            if !frag.is_empty() {
                line.push_str(" | ");
                line.push_str(&frag);
            }
        }
        if let Some(p) = &s.proxy {
            line.push_str(" | ");
            line.push_str(&p.progress_fragment());
        }
        line
    }
}

/// RSS growth per hour of each process, from the longest window that has a fit.
pub fn rss_growth_per_hour(m: &MonitorReport) -> BTreeMap<String, Option<f64>> {
    m.processes
        .iter()
        .map(|p| {
            let slope = p
                .windows
                .iter()
                .rev()
                .find_map(|w| w.rss.as_ref())
                .map(|f| f.slope_per_hour);
            (p.name.clone(), slope)
        })
        .collect()
}

/// The summary's most frequent HTTP error body per scenario and outcome, one line each:
/// `  error body: chat http_5xx (37 of 40): {"error":"connect ECONNREFUSED …"}`. Empty
/// when no error status had a body.
fn error_bodies_text(scenarios: &[ScenarioCounts]) -> String {
    let mut out = String::new();
    for sc in scenarios {
        for (outcome, top) in &sc.error_bodies {
            let _ = writeln!(
                out,
                "  error body: {} {outcome} ({} of {}): {}",
                sc.name, top.count, top.of, top.body
            );
        }
    }
    out
}

/// The end-of-run summary.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    /// Layout version of this JSON: [`SUMMARY_SCHEMA_VERSION`].
    pub schema_version: u32,
    /// Seconds during which the plan was sending.
    pub sending_seconds: f64,
    /// Requests the plan scheduled (sent + dropped), per second of sending.
    pub target_rate_avg: f64,
    /// Requests sent per second of sending.
    pub achieved_rate_avg: f64,
    pub verdict: &'static str,
    pub exit_code: i32,
    /// Finished requests whose outcome is neither ok, cancelled nor aborted (the
    /// `error_ratio` numerator; its denominator is `requests_finished`).
    pub errors: u64,
    /// Requests soakd stopped at the end of the grace period (outcome `aborted`): not
    /// successes, not errors; `[thresholds] max_aborted` judges them.
    pub aborted: u64,
    /// soakd's own process leaked during the run: its measurements may be skewed. Never
    /// changes the verdict.
    pub suspect: bool,
    /// Why the soak is suspect, one sentence per leaking resource of soakd itself.
    pub suspect_reasons: Vec<String>,
    #[serde(flatten)]
    pub snapshot: Snapshot,
}

impl Summary {
    pub fn new(
        snapshot: Snapshot,
        sending: Duration,
        verdict: &'static str,
        exit_code: i32,
    ) -> Self {
        let secs = sending.as_secs_f64().max(1e-9);
        let scheduled = snapshot.requests_sent + snapshot.dropped_total();
        let suspect_reasons = crate::verdict::suspicions(&snapshot.verdict_inputs().leaks);
        Summary {
            schema_version: SUMMARY_SCHEMA_VERSION,
            sending_seconds: sending.as_secs_f64(),
            target_rate_avg: scheduled as f64 / secs,
            achieved_rate_avg: snapshot.requests_sent as f64 / secs,
            verdict,
            exit_code,
            errors: snapshot.errors(),
            aborted: snapshot.aborted(),
            suspect: !suspect_reasons.is_empty(),
            suspect_reasons,
            snapshot,
        }
    }

    /// The human-readable summary printed at exit.
    pub fn to_text(&self) -> String {
        let s = &self.snapshot;
        let mut out = String::new();
        let _ = writeln!(
            out,
            "soakd summary — run {} (shard {}/{}) against {}",
            s.run_id, s.shard, s.shards, s.target
        );
        let _ = writeln!(
            out,
            "  sent {} requests in {} — target {:.2} rps, achieved {:.2} rps",
            s.requests_sent,
            fmt_elapsed(self.sending_seconds),
            self.target_rate_avg,
            self.achieved_rate_avg
        );
        out.push_str(&crate::phases::states_line(&s.phases));
        let join = |m: &BTreeMap<&'static str, u64>| {
            if m.is_empty() {
                "none".to_string()
            } else {
                m.iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect::<Vec<_>>()
                    .join(" ")
            }
        };
        let _ = writeln!(out, "  outcomes: {}", join(&s.outcomes));
        if self.aborted > 0 {
            let _ = writeln!(
                out,
                "  aborted:  {} requests still running at the end of the grace period (not \
                 successes; [thresholds] max_aborted judges them)",
                self.aborted
            );
        }
        let _ = writeln!(out, "  dropped:  {}", join(&s.dropped));
        let _ = writeln!(out, "  streams:  {}", join(&s.streams));
        let _ = writeln!(out, "  output tokens: {}", s.output_tokens);
        out.push_str(&error_bodies_text(&s.scenarios));
        let row = |name: &str, p: &Percentiles| {
            format!(
                "  {name:<13} n={:<9} p50 {:>9} p90 {:>9} p99 {:>9} p99.9 {:>9} max {:>9}\n",
                p.count,
                fmt_secs(p.p50),
                fmt_secs(p.p90),
                fmt_secs(p.p99),
                fmt_secs(p.p999),
                fmt_secs(p.max)
            )
        };
        out.push_str(&row("latency", &s.latency.duration));
        out.push_str(&row("ttft", &s.latency.ttft));
        out.push_str(&row("chunk gap", &s.latency.chunk_gap));
        out.push_str(&row("schedule lag", &s.latency.schedule_lag));
        if let Some(m) = &s.monitor {
            out.push_str(&monitor_text(m));
        }
        if let Some(p) = &s.proxy {
            out.push_str(&p.text());
        }
        if let Some(c) = &s.creep {
            out.push_str(&c.text());
        }
        verdict_text(
            &mut out,
            &s.thresholds,
            &self.suspect_reasons,
            self.verdict,
            self.exit_code,
        );
        out
    }
}

/// The end of a summary's text, for a run and for a fleet alike: one line per threshold, the
/// reasons the soak is suspect, and the verdict with its exit code.
pub fn verdict_text(
    out: &mut String,
    thresholds: &[ThresholdResult],
    suspect_reasons: &[String],
    verdict: &str,
    exit_code: i32,
) {
    let width = thresholds
        .iter()
        .map(|t| t.name.chars().count())
        .max()
        .unwrap_or(0)
        .max(16);
    for t in thresholds {
        let _ = writeln!(
            out,
            "  threshold {:<width$} {:<10}  {}",
            t.name,
            t.status.label(),
            t.message
        );
    }
    for why in suspect_reasons {
        let _ = writeln!(out, "  SUSPECT: {why}");
    }
    let suspect = if suspect_reasons.is_empty() {
        ""
    } else {
        ", soak suspect"
    };
    let _ = writeln!(out, "  verdict: {verdict}{suspect} (exit {exit_code})");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_progress_rate_is_sent_over_planned_unless_nothing_is_planned() {
        assert_eq!(fmt_rate(81.24, 80.0, 50.0), "81.2/80.0");
        // Open model between stages at 0 rps but about to rise: still "/planned".
        assert_eq!(fmt_rate(0.0, 0.0, 5.0), "0.0/0.0");
        // The closed model plans no rate (users), and a drained run none any more.
        assert_eq!(fmt_rate(4012.6, 0.0, 0.0), "4012.6");
    }

    #[test]
    fn the_progress_line_and_summary_show_the_run_state() {
        let mut s = snapshot(None);
        s.phase = "steady";
        s.state = "load";
        assert_eq!(
            crate::phases::progress_label(s.state, s.phase),
            "steady",
            "the plan's phase while loading"
        );
        s.phase = "done";
        s.state = "cooldown";
        assert_eq!(crate::phases::progress_label(s.state, s.phase), "cooldown");
        s.state = "idle";
        s.phase = "starting";
        assert_eq!(crate::phases::progress_label(s.state, s.phase), "idle");
        s.phases = ["idle", "load", "drain", "cooldown"]
            .iter()
            .zip([5.0, 125.0, 0.04, 30.0])
            .map(|(state, seconds)| PhaseSpan {
                state,
                from: 0.0,
                to: None,
                seconds,
            })
            .collect();
        let text = Summary::new(s, Duration::from_secs(125), "pass", 0).to_text();
        assert!(
            text.contains("  states: idle 5.0s, load 2m05s, drain 0.0s, cooldown 30.0s\n"),
            "{text}"
        );
    }

    #[test]
    fn rate_meter_uses_the_last_ten_seconds() {
        let mut m = RateMeter::new();
        let t0 = Instant::now();
        assert_eq!(m.rates(), (0.0, 0.0));
        for i in 0..30u64 {
            // 10 rps for 20 s, then 50 rps; the plan asked for 12 rps throughout.
            let sent = if i <= 20 { i * 10 } else { 200 + (i - 20) * 50 };
            m.sample(t0 + Duration::from_secs(i), sent, 12.0 * i as f64);
        }
        // Window 19 s..29 s: 1 s at 10 rps and 9 s at 50 rps.
        let (sent, planned) = m.rates();
        assert!((sent - 46.0).abs() < 1e-9, "{sent}");
        assert!((planned - 12.0).abs() < 1e-9, "{planned}");
        for i in 30..200u64 {
            m.sample(t0 + Duration::from_secs(i), 700, 360.0);
        }
        assert_eq!(m.samples.len(), METER_SLOTS, "bounded");
        assert_eq!(m.rates(), (0.0, 0.0));
    }

    #[test]
    fn formatting() {
        assert_eq!(fmt_elapsed(3723.0), "1h02m03s");
        assert_eq!(fmt_elapsed(65.0), "1m05s");
    }

    fn fit(slope_per_hour: f64) -> Option<FitReport> {
        Some(FitReport {
            slope_per_sec: slope_per_hour / 3600.0,
            slope_per_hour,
            intercept: 0.0,
            from_secs: 0.0,
            to_secs: 90.0,
            slope_lower_per_hour: None,
            slope_upper_per_hour: None,
            trend_p: 0.01,
            period_secs: None,
            r2: 0.97,
            points: 40,
        })
    }

    fn process(name: &str, rss: Verdict, fail_on_leak: bool) -> ProcessReport {
        let window = |w: &str, rss_slope: Option<FitReport>| crate::monitor::WindowReport {
            window: w.into(),
            rss: rss_slope,
            fds: None,
            threads: None,
            request_rate_per_sec: None,
            rss_bytes_per_request: None,
            avg_open_streams: None,
            rss_bytes_per_sec_per_open_stream: None,
            rss_bytes_per_request_by_scenario: Default::default(),
        };
        ProcessReport {
            name: name.into(),
            source: "pid",
            up: true,
            pid: Some(1),
            restarts: 0,
            samples: 100,
            baseline_rss_bytes: None,
            peak_rss_bytes: None,
            rss_bytes: None,
            open_fds: None,
            threads: None,
            cpu_seconds: 0.0,
            // The longest window with a fit is "30s": "90s" has none yet.
            windows: vec![
                window("10s", fit(1e9)),
                window("30s", fit(2e9)),
                window("90s", None),
            ],
            retained_after_burst_bytes: None,
            verdict: crate::monitor::ResourceVerdicts {
                rss,
                fds: Verdict::Ok,
                threads: Verdict::Unknown,
            },
            reason: crate::monitor::PerResource::from_fn(|r| format!("{} reason", r.as_str())),
            limit_per_hour: Default::default(),
            source_label: "pid 1".into(),
            fail_on_leak,
            arc: Default::default(),
            tree: None,
        }
    }

    fn snapshot(monitor: Option<MonitorReport>) -> Snapshot {
        Snapshot {
            run_id: "r".into(),
            shard: 0,
            shards: 1,
            target: "t".into(),
            phase: "done",
            state: "drain",
            phases: vec![],
            elapsed_seconds: 10.0,
            target_rate: 0.0,
            achieved_rate: 0.0,
            planned_rate: 0.0,
            in_flight: 0,
            streams_active: 0,
            requests_sent: 10,
            requests_finished: 10,
            outcomes: [("ok", 10)].into(),
            dropped: BTreeMap::new(),
            streams: BTreeMap::new(),
            output_tokens: 0,
            latency: Latencies::default(),
            scenarios: vec![],
            monitor,
            proxy: None,
            creep: None,
            thresholds: vec![],
        }
    }

    /// `max_dropped` judges saturation drops only: arrivals due after the stop are reported
    /// but not judged (the same rule as the `SoakdRequestsDropped` alert).
    #[test]
    fn shutdown_drops_are_reported_not_judged() {
        let mut s = snapshot(None);
        s.dropped = [("shutdown", 3), ("in_flight_cap", 2)].into();
        assert_eq!(s.dropped_total(), 5);
        assert_eq!(s.verdict_inputs().dropped, 2);
        s.dropped = [("shutdown", 1)].into();
        assert_eq!(s.verdict_inputs().dropped, 0);
    }

    #[test]
    fn leak_inputs_carry_verdict_slope_window_and_opt_out() {
        let m = MonitorReport {
            started_unix_secs: 0.0,
            sample_interval_secs: 1.0,
            windows: vec!["10s".into(), "30s".into(), "90s".into()],
            processes: vec![
                process("soakd", Verdict::Leak, false),
                process("target", Verdict::Leak, true),
                process("sidecar", Verdict::Ok, false),
            ],
        };
        let l = leak_inputs(&m);
        assert_eq!(l.len(), 9, "three resources of three processes");
        let target_rss = &l[3];
        assert_eq!(
            (target_rss.process.as_str(), target_rss.resource),
            ("target", "rss")
        );
        assert_eq!(target_rss.state, LeakState::Leak);
        assert_eq!(target_rss.slope_per_hour, Some(2e9));
        assert_eq!(target_rss.window.as_deref(), Some("30s"));
        assert_eq!(target_rss.r2, Some(0.97));
        assert!(target_rss.fail_on_leak && !target_rss.is_self);
        assert_eq!(l[4].state, LeakState::Ok, "fds");
        assert_eq!(l[4].slope_per_hour, None, "no fds fit in any window");
        assert_eq!(l[5].state, LeakState::Unknown, "threads");
        assert!(l[0].is_self && !l[0].fail_on_leak);
        assert!(!l[6].fail_on_leak);

        // The summary: soakd's leak makes it suspect; the verdict itself is the caller's.
        let s = Summary::new(snapshot(Some(m)), Duration::from_secs(10), "fail", 1);
        assert_eq!(s.schema_version, SUMMARY_SCHEMA_VERSION);
        assert!(s.suspect);
        assert_eq!(s.suspect_reasons.len(), 1, "{:?}", s.suspect_reasons);
        assert!(
            s.suspect_reasons[0]
                .starts_with("soakd itself leaks rss: +1.86GiB/h over the 30s window"),
            "{:?}",
            s.suspect_reasons
        );
        let text = s.to_text();
        assert!(text.contains("SUSPECT: soakd itself leaks rss"), "{text}");
        // The process line names the pid and its source; each verdict is followed by its
        // reason.
        assert!(text.contains("  process target (pid 1): up "), "{text}");
        assert!(
            text.contains(
                "    leak verdict: rss leak  fds ok  threads unknown\n      rss: rss reason\n      \
                 fds: fds reason\n      threads: threads reason\n"
            ),
            "{text}"
        );
        assert!(
            text.contains("verdict: fail, soak suspect (exit 1)"),
            "{text}"
        );
        let json = serde_json::to_value(&s).unwrap();
        assert_eq!(json["schema_version"], 1);
        assert_eq!(json["suspect"], true);
        assert_eq!(json["errors"], 0);
        assert_eq!(json["monitor"]["processes"][2]["fail_on_leak"], false);

        let clean = Summary::new(snapshot(None), Duration::from_secs(10), "pass", 0);
        assert!(!clean.suspect && clean.suspect_reasons.is_empty());
        assert!(clean.to_text().contains("verdict: pass (exit 0)"));
    }

    #[test]
    fn summary_rates_count_drops_as_scheduled() {
        let snap = Snapshot {
            requests_sent: 90,
            requests_finished: 90,
            outcomes: [("ok", 80), ("http_5xx", 5), ("cancelled", 5)].into(),
            dropped: [("in_flight_cap", 10)].into(),
            ..snapshot(None)
        };
        assert_eq!(snap.errors(), 5, "cancelled is not an error");
        let ended = Snapshot {
            outcomes: [("ok", 80), ("timeout", 2), ("cancelled", 5), ("aborted", 3)].into(),
            ..snapshot(None)
        };
        assert_eq!((ended.errors(), ended.aborted()), (2, 3));
        let ended = Summary::new(ended, Duration::from_secs(10), "pass", 0);
        assert_eq!(serde_json::to_value(&ended).unwrap()["aborted"], 3);
        assert!(
            ended
                .to_text()
                .contains("  aborted:  3 requests still running at the end"),
            "{}",
            ended.to_text()
        );
        let s = Summary::new(snap, Duration::from_secs(10), "pass", 0);
        assert_eq!(s.target_rate_avg, 10.0);
        assert_eq!(s.achieved_rate_avg, 9.0);
        let text = s.to_text();
        assert!(
            text.contains("http_5xx=5") && text.contains("in_flight_cap=10"),
            "{text}"
        );
        assert!(!text.contains("error body"), "{text}");
        let mut snap = snapshot(None);
        snap.scenarios = vec![ScenarioCounts {
            name: "chat".into(),
            error_bodies: [(
                "http_5xx",
                TopBody {
                    body: "connect ECONNREFUSED 127.0.0.1:19799".into(),
                    count: 37,
                    of: 40,
                },
            )]
            .into(),
            ..ScenarioCounts::default()
        }];
        let s = Summary::new(snap, Duration::from_secs(10), "fail", 1);
        assert!(
            s.to_text().contains(
                "  error body: chat http_5xx (37 of 40): connect ECONNREFUSED 127.0.0.1:19799\n"
            ),
            "{}",
            s.to_text()
        );
        let json = serde_json::to_value(&s).unwrap();
        assert_eq!(
            json["scenarios"][0]["error_bodies"]["http_5xx"]["body"],
            "connect ECONNREFUSED 127.0.0.1:19799"
        );
    }
}
