//! The engine: paces requests by the plan, caps what is in flight, dispatches to the client.
//!
//! Open model (`pacer.rs`): one pacer thread walks the plan's arrivals in virtual time and
//! sleeps until each intended send instant, at least 200 µs at a time so that at high rates
//! one wake-up hands a batch of due requests to the runtime. At that instant it takes a permit
//! of the in-flight cap without waiting — no permit means the request is counted in
//! `soakd_requests_dropped_total{reason="in_flight_cap"}` and forgotten, never queued — and
//! spawns the request on the load runtime with its intended send time, from which latency is
//! measured. A slow target therefore never slows the schedule (open loop) and never grows
//! memory past `max_in_flight` requests.
//!
//! Closed model (`request.rs`): `users` tasks, started over the ramp-up, each looping
//! request → think time.
//!
//! Both models pick scenarios from the [`Mix`] of the moment; for the monitor the engine
//! publishes the mix epoch and each scenario's finished requests in [`LoadSignals`].
//!
//! The client: [`crate::client::Http1Pool`] (the plain-HTTP/1.1 fast path, one pool for the
//! target, its idle connections capped by the run's concurrency: `max_in_flight`, or the
//! closed model's users) when the target allows it, else the shared reqwest client; the
//! choice is logged once at build.
//!
//! Stopping: cancelling `stop` ends scheduling (arrivals already due but not yet sent are
//! counted as dropped with reason `shutdown`); in-flight requests then have the grace period
//! to finish before `abort` cancels them, which records them as `cancelled`.

mod pacer;
mod request;

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use prometheus::IntCounter;

use crate::client::{ClientSettings, H1Head, Http1Pool, RequestSpec, ScenarioMetrics};
use crate::metrics::{label_enum, Metrics};
use crate::plan::{Phase, Plan};
use crate::signals::LoadSignals;
use crate::stats::Stats;
use crate::upstream::Tracker;
use crate::workload::{BodyTemplate, Mix, Scenario};

label_enum! {
    /// Why a scheduled request was never sent (`reason` label).
    DropReason {
        InFlightCap => "in_flight_cap",
        Shutdown => "shutdown",
    }
}

/// `soakd_requests_dropped_total{scenario}` by reason, resolved once per scenario.
#[derive(Clone)]
pub struct DropCounters(Vec<IntCounter>);

impl DropCounters {
    /// Resolves the counters of `scenario`.
    pub fn new(m: &Metrics, scenario: &str) -> Self {
        DropCounters(
            DropReason::ALL
                .iter()
                .map(|r| {
                    m.requests_dropped_total
                        .with_label_values(&[scenario, r.as_str()])
                })
                .collect(),
        )
    }

    /// The counter of one reason.
    pub fn get(&self, reason: DropReason) -> &IntCounter {
        &self.0[reason.index()]
    }
}

/// A scenario's handles as the run view reads them: its name, request metrics and drops.
#[derive(Clone)]
pub struct ScenarioHandles {
    pub name: String,
    pub metrics: ScenarioMetrics,
    pub dropped: DropCounters,
}

/// What the engine is doing, for `/status`, `/readyz` and the progress line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunPhase {
    Starting = 0,
    Ramp = 1,
    Steady = 2,
    Burst = 3,
    Drain = 4,
    Done = 5,
}

impl RunPhase {
    pub fn as_str(self) -> &'static str {
        match self {
            RunPhase::Starting => "starting",
            RunPhase::Ramp => "ramp",
            RunPhase::Steady => "steady",
            RunPhase::Burst => "burst",
            RunPhase::Drain => "drain",
            RunPhase::Done => "done",
        }
    }

    fn from_u8(v: u8) -> RunPhase {
        match v {
            1 => RunPhase::Ramp,
            2 => RunPhase::Steady,
            3 => RunPhase::Burst,
            4 => RunPhase::Drain,
            5 => RunPhase::Done,
            _ => RunPhase::Starting,
        }
    }

    fn from_plan(p: Phase) -> RunPhase {
        match p {
            Phase::Ramp => RunPhase::Ramp,
            Phase::Steady => RunPhase::Steady,
            Phase::Burst => RunPhase::Burst,
            Phase::Drain => RunPhase::Drain,
        }
    }
}

/// The engine's live state, shared with the admin server.
#[derive(Debug)]
pub struct EngineState {
    phase: AtomicU8,
    started: Instant,
}

impl EngineState {
    fn new() -> Self {
        EngineState {
            phase: AtomicU8::new(RunPhase::Starting as u8),
            started: Instant::now(),
        }
    }
    pub fn phase(&self) -> RunPhase {
        RunPhase::from_u8(self.phase.load(Ordering::Relaxed))
    }
    fn set_phase(&self, p: RunPhase) {
        self.phase.store(p as u8, Ordering::Relaxed);
    }
    /// Ready once requests are being sent.
    pub fn is_sending(&self) -> bool {
        matches!(
            self.phase(),
            RunPhase::Ramp | RunPhase::Steady | RunPhase::Burst
        )
    }
    /// Time since the engine was built.
    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }
}

/// One scenario, ready to send.
struct ScenarioRuntime {
    spec: RequestSpec,
    /// The request head on the HTTP/1.1 fast path, when the run uses it.
    head: Option<H1Head>,
    template: BodyTemplate,
    metrics: ScenarioMetrics,
    dropped: DropCounters,
    scenario: Scenario,
}

/// Everything a request task needs, shared.
struct Shared {
    client: reqwest::Client,
    /// The plain-HTTP/1.1 fast path (`client::http1`), when the target allows it.
    fast: Option<Http1Pool>,
    settings: ClientSettings,
    scenarios: Vec<ScenarioRuntime>,
    mix: Mix,
    metrics: Arc<Metrics>,
    stats: Arc<Stats>,
    signals: Arc<LoadSignals>,
    state: Arc<EngineState>,
    trace_requests: bool,
    /// The two-sided soak's tracker, while `[upstream]` is on.
    two_sided: Option<Arc<Tracker>>,
}

/// The load engine, built and ready to run.
pub struct Engine {
    shared: Arc<Shared>,
    plan: Plan,
    duration: Option<Duration>,
    max_in_flight: usize,
    seed: u64,
}

/// Errors building the engine.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The message names the client error whole (not also a `source()`).
    #[error("scenario {scenario}: {error}")]
    Request {
        scenario: String,
        error: crate::client::ClientError,
    },
}

/// Inputs of [`Engine::build`].
pub struct EngineParts {
    pub client: reqwest::Client,
    pub settings: ClientSettings,
    pub target: url::Url,
    pub api_key: Option<String>,
    pub scenarios: Vec<Scenario>,
    pub plan: Plan,
    pub duration: Option<Duration>,
    pub max_in_flight: usize,
    /// `load.mix_variation`'s period (`None`: fixed weights).
    pub mix_variation: Option<Duration>,
    pub seed: u64,
    /// Wrap each request in a root tracing span (for OTLP export).
    pub trace_requests: bool,
    pub metrics: Arc<Metrics>,
    pub stats: Arc<Stats>,
    pub signals: Arc<LoadSignals>,
    /// Tag each request with a soakd id and report it to this tracker (two-sided soak).
    pub two_sided: Option<Arc<Tracker>>,
}

impl Engine {
    /// Prepares every scenario's request spec, body template and metric handles.
    pub fn build(p: EngineParts) -> Result<Engine, EngineError> {
        let concurrent = match &p.plan {
            Plan::Open(_) => p.max_in_flight,
            Plan::Closed(c) => c.users as usize,
        };
        let fast = Http1Pool::for_target(&p.target, &p.settings, concurrent.max(1));
        match &fast {
            Some(pool) => tracing::info!(
                idle_cap = pool.cap(),
                "load client: HTTP/1.1 fast path (SOAKD_HTTP_CLIENT=reqwest turns it off)"
            ),
            None => tracing::info!("load client: reqwest"),
        }
        let mut scenarios = Vec::with_capacity(p.scenarios.len());
        for s in p.scenarios {
            let url = join_path(&p.target, &s.path);
            let spec = RequestSpec::new(s.api, url, p.api_key.as_deref(), &s.headers)
                .map_err(|error| EngineError::Request {
                    scenario: s.name.clone(),
                    error,
                })?
                .with_stream(s.stream)
                .with_ttft_on(s.ttft_on)
                .with_inputs(s.inputs)
                .with_scenario(&s.name);
            let head = fast
                .as_ref()
                .and_then(|_| H1Head::new(&spec, &p.settings.user_agent));
            scenarios.push(ScenarioRuntime {
                spec,
                head,
                template: BodyTemplate::new(&s),
                metrics: ScenarioMetrics::new(&p.metrics, &s.name, p.stats.clone()),
                dropped: DropCounters::new(&p.metrics, &s.name),
                scenario: s,
            });
        }
        let weights = scenarios.iter().map(|s| s.scenario.weight);
        let mix = Mix::new(weights, p.mix_variation, p.seed);
        p.signals.mix.varies.store(mix.varies(), Ordering::Relaxed);
        if let Some(why) = mix.fixed_reason() {
            tracing::info!("{why}");
        }
        Ok(Engine {
            shared: Arc::new(Shared {
                client: p.client,
                fast,
                settings: p.settings,
                scenarios,
                mix,
                metrics: p.metrics,
                stats: p.stats,
                signals: p.signals,
                state: Arc::new(EngineState::new()),
                trace_requests: p.trace_requests,
                two_sided: p.two_sided,
            }),
            plan: p.plan,
            duration: p.duration,
            max_in_flight: p.max_in_flight.max(1),
            seed: p.seed,
        })
    }

    /// The engine's live state.
    pub fn state(&self) -> Arc<EngineState> {
        self.shared.state.clone()
    }

    /// Scenario names and their metric handles, for status and summaries.
    pub fn scenario_handles(&self) -> Vec<ScenarioHandles> {
        self.shared
            .scenarios
            .iter()
            .map(|s| ScenarioHandles {
                name: s.scenario.name.clone(),
                metrics: s.metrics.clone(),
                dropped: s.dropped.clone(),
            })
            .collect()
    }

    /// Runs the plan until its duration ends or `stop` is cancelled, then waits for in-flight
    /// requests up to `grace` and cancels the rest. Returns, once every request task is done,
    /// how long the plan was sending.
    pub async fn run(self, stop: CancellationToken, grace: Duration) -> Duration {
        let tracker = TaskTracker::new();
        let abort = CancellationToken::new();
        let shared = self.shared.clone();
        let start = Instant::now();
        let gauges = tokio::spawn(plan_gauges(
            self.plan.clone(),
            start,
            shared.clone(),
            stop.clone(),
        ));
        match self.plan.clone() {
            Plan::Open(plan) => {
                let pacer = pacer::Pacer {
                    shared: shared.clone(),
                    plan,
                    start,
                    duration: self.duration,
                    permits: Arc::new(Semaphore::new(self.max_in_flight)),
                    tracker: tracker.clone(),
                    abort: abort.clone(),
                    seed: self.seed,
                    handle: tokio::runtime::Handle::current(),
                };
                let (wake_tx, wake_rx) = std::sync::mpsc::channel::<()>();
                let thread = std::thread::Builder::new()
                    .name("soakd-pacer".into())
                    .spawn(move || pacer.run(wake_rx));
                let thread = match thread {
                    Ok(t) => t,
                    Err(e) => {
                        tracing::error!(error = %e, "cannot start the pacer thread");
                        stop.cancel();
                        return Duration::ZERO;
                    }
                };
                // The pacer ends on its own at the end of the duration; a stop wakes it early.
                let done = tokio::task::spawn_blocking(move || thread.join());
                tokio::pin!(done);
                tokio::select! {
                    _ = &mut done => {}
                    _ = stop.cancelled() => {
                        let _ = wake_tx.send(());
                        let _ = done.await;
                    }
                }
            }
            Plan::Closed(plan) => {
                let users_stop = stop.child_token();
                request::spawn_users(
                    &shared,
                    plan,
                    start,
                    self.seed,
                    &tracker,
                    &users_stop,
                    &abort,
                );
                match self.duration.map(|d| start + d) {
                    Some(end) => {
                        tokio::select! {
                            _ = tokio::time::sleep_until(end) => {}
                            _ = stop.cancelled() => {}
                        }
                    }
                    None => stop.cancelled().await,
                }
                users_stop.cancel();
            }
        }
        let sending = start.elapsed();
        stop.cancel();
        shared.state.set_phase(RunPhase::Drain);
        let _ = gauges.await;
        shared.metrics.target_rate.set(0.0);
        shared.metrics.burst_active.set(0);
        tracker.close();
        if tokio::time::timeout(grace, tracker.wait()).await.is_err() {
            tracing::warn!(
                in_flight = shared.metrics.in_flight_requests.get(),
                grace = %humantime::format_duration(grace),
                "grace period over; cancelling requests still in flight"
            );
            abort.cancel();
            tracker.wait().await;
        }
        shared.state.set_phase(RunPhase::Done);
        sending
    }
}

/// Keeps the target-rate and burst gauges, the burst signal, the planned-request total and
/// the run phase current.
async fn plan_gauges(plan: Plan, start: Instant, shared: Arc<Shared>, stop: CancellationToken) {
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let (mut last_t, mut last_rate) = (Duration::ZERO, 0.0);
    loop {
        let t = start.elapsed();
        let (rate, phase, burst) = match &plan {
            Plan::Open(p) => {
                let at = p.at(t);
                (at.rate, at.phase, at.burst)
            }
            // The closed model asks for users, not a rate.
            Plan::Closed(p) => (0.0, p.phase_at(t), false),
        };
        // The rate set at the last update held until now.
        shared
            .signals
            .add_planned(last_rate * t.saturating_sub(last_t).as_secs_f64());
        (last_t, last_rate) = (t, rate);
        shared.metrics.target_rate.set(rate);
        shared.metrics.burst_active.set(i64::from(burst));
        shared.signals.burst_active.store(burst, Ordering::Relaxed);
        shared.signals.mix.set_epoch(shared.mix.epoch(t));
        shared.state.set_phase(RunPhase::from_plan(phase));
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.cancelled() => break,
        }
    }
    shared
        .signals
        .add_planned(last_rate * start.elapsed().saturating_sub(last_t).as_secs_f64());
    shared.signals.burst_active.store(false, Ordering::Relaxed);
}

/// Joins a scenario path to the target URL, keeping any path prefix of the target
/// (`http://gw/openai` + `/v1/chat/completions` → `http://gw/openai/v1/chat/completions`).
pub fn join_path(base: &url::Url, path: &str) -> url::Url {
    let mut full = base.path().trim_end_matches('/').to_string();
    full.push_str(path);
    let mut u = base.clone();
    u.set_path(&full);
    u
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn join_path_keeps_the_target_prefix() {
        let b = url::Url::parse("http://127.0.0.1:8080").unwrap();
        assert_eq!(
            join_path(&b, "/v1/messages").as_str(),
            "http://127.0.0.1:8080/v1/messages"
        );
        let b = url::Url::parse("https://gw.test/openai/").unwrap();
        assert_eq!(
            join_path(&b, "/v1/chat/completions").as_str(),
            "https://gw.test/openai/v1/chat/completions"
        );
    }

    #[test]
    fn run_phase_round_trips() {
        for p in [
            RunPhase::Starting,
            RunPhase::Ramp,
            RunPhase::Steady,
            RunPhase::Burst,
            RunPhase::Drain,
            RunPhase::Done,
        ] {
            assert_eq!(RunPhase::from_u8(p as u8), p);
        }
    }
}
