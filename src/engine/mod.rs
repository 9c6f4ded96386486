//! The engine: paces requests by the plan, caps what is in flight, dispatches to the client.
//!
//! Open model: one pacer thread walks the plan's arrivals in virtual time and sleeps until
//! each intended send instant (an OS-thread sleep wakes within tens of microseconds, where a
//! tokio timer rounds up to the next millisecond), at least 200 µs at a time so that at high
//! rates one wake-up hands a batch of due requests to the runtime. At that instant it takes a permit of the
//! in-flight cap without waiting — no permit means the request is counted in
//! `soakd_requests_dropped_total{reason="in_flight_cap"}` and forgotten, never queued — and
//! spawns the request on the load runtime with its intended send time, from which latency is
//! measured. A slow target therefore never slows the schedule (open loop) and never grows
//! memory past `max_in_flight` requests.
//!
//! Closed model: `users` tasks, started over the ramp-up, each looping request → think time.
//!
//! Both models pick scenarios from the [`Mix`] of the moment; for the monitor the engine
//! publishes the mix epoch and each scenario's finished requests in [`LoadSignals`].
//!
//! Stopping: cancelling `stop` ends scheduling (arrivals already due but not yet sent are
//! counted as dropped with reason `shutdown`); in-flight requests then have the grace period
//! to finish before `abort` cancels them, which records them as `cancelled`.

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rand::rngs::SmallRng;
use rand::SeedableRng;
use tokio::sync::Semaphore;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use prometheus::IntCounter;

use crate::client::{ClientSettings, Exchange, RequestSpec, ScenarioMetrics, Tag};
use crate::metrics::{label_enum, Metrics};
use crate::plan::{Arrivals, ClosedPlan, OpenPlan, Phase, Plan};
use crate::signals::LoadSignals;
use crate::stats::{Series, Stats};
use crate::upstream::{marker, Tracker};
use crate::workload::{cancel_for, BodyTemplate, Mix, MixCursor, Scenario};

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
    template: BodyTemplate,
    metrics: ScenarioMetrics,
    dropped: DropCounters,
    scenario: Scenario,
}

/// Everything a request task needs, shared.
struct Shared {
    client: reqwest::Client,
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
    #[error("scenario {scenario}: {source}")]
    Request {
        scenario: String,
        source: crate::client::ClientError,
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
        let mut scenarios = Vec::with_capacity(p.scenarios.len());
        for s in p.scenarios {
            let url = join_path(&p.target, &s.path);
            let spec = RequestSpec::new(s.api, url, p.api_key.as_deref(), &s.headers)
                .map_err(|source| EngineError::Request {
                    scenario: s.name.clone(),
                    source,
                })?
                .with_stream(s.stream)
                .with_ttft_on(s.ttft_on)
                .with_inputs(s.inputs)
                .with_scenario(&s.name);
            scenarios.push(ScenarioRuntime {
                spec,
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
                let pacer = Pacer {
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
                let end = self.duration.map(|d| start + d);
                let users_stop = stop.child_token();
                for user in plan.user_ids(0, 1) {
                    tracker.spawn(closed_user(
                        shared.clone(),
                        plan,
                        user,
                        start,
                        self.seed ^ u64::from(user).wrapping_mul(0x9e37_79b9_7f4a_7c15),
                        users_stop.clone(),
                        abort.clone(),
                    ));
                }
                match end {
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

struct Pacer {
    shared: Arc<Shared>,
    plan: OpenPlan,
    start: Instant,
    duration: Option<Duration>,
    permits: Arc<Semaphore>,
    tracker: TaskTracker,
    abort: CancellationToken,
    seed: u64,
    handle: tokio::runtime::Handle,
}

impl Pacer {
    /// Walks the arrivals until the duration ends or `wake` says stop.
    fn run(self, wake: std::sync::mpsc::Receiver<()>) {
        use std::sync::mpsc::RecvTimeoutError;
        let mut arrivals = Arrivals::new(self.plan.clone(), self.seed);
        let mut rng = SmallRng::seed_from_u64(self.seed.rotate_left(17) ^ 0x5eed);
        let mut mix = self.shared.mix.cursor();
        let start = self.start.into_std();
        let mut batch = Vec::with_capacity(64);
        loop {
            let Some((offset, at)) = arrivals.next_offset() else {
                self.flush(&mut batch);
                // The plan sends nothing more; wait for the end or a stop.
                match self.duration {
                    Some(d) => {
                        let _ = wake.recv_timeout(d.saturating_sub(start.elapsed()));
                    }
                    None => {
                        let _ = wake.recv();
                    }
                }
                return;
            };
            if self.duration.is_some_and(|d| offset >= d) {
                self.flush(&mut batch);
                return;
            }
            let intended = start + offset;
            let now = std::time::Instant::now();
            if intended > now {
                // Hand over what is due, then sleep until the next arrival — but at least
                // MIN_WAKE, so that at high rates one wake-up (and one hand-over to the
                // runtime) serves several arrivals instead of one each.
                self.flush(&mut batch);
                match wake.recv_timeout((intended - now).max(MIN_WAKE)) {
                    Err(RecvTimeoutError::Timeout) => {}
                    _ => {
                        self.drop_backlog(&mut arrivals, &mut rng, &mut mix, offset);
                        return;
                    }
                }
            } else if wake.try_recv().is_ok() {
                self.flush(&mut batch);
                self.drop_backlog(&mut arrivals, &mut rng, &mut mix, offset);
                return;
            }
            let i = mix.pick(&mut rng, offset);
            self.prepare(
                &mut rng,
                i,
                Instant::from_std(intended),
                at.phase,
                &mut batch,
            );
        }
    }

    /// Counts arrivals that were due at the stop but never sent (`reason="shutdown"`).
    fn drop_backlog(
        &self,
        arrivals: &mut Arrivals,
        rng: &mut SmallRng,
        mix: &mut MixCursor<'_>,
        first: Duration,
    ) {
        let now = self.start.elapsed();
        let mut offset = first;
        while offset <= now {
            let i = mix.pick(rng, offset);
            self.shared.scenarios[i]
                .dropped
                .get(DropReason::Shutdown)
                .inc();
            match arrivals.next_offset() {
                Some((o, _)) => offset = o,
                None => break,
            }
        }
    }

    /// Takes a permit and builds a request of scenario `i`; one over the cap is dropped here.
    fn prepare(
        &self,
        rng: &mut SmallRng,
        i: usize,
        intended: Instant,
        phase: Phase,
        batch: &mut Vec<Due>,
    ) {
        let shared = &self.shared;
        let sc = &shared.scenarios[i];
        let Ok(permit) = self.permits.clone().try_acquire_owned() else {
            sc.dropped.get(DropReason::InFlightCap).inc();
            return;
        };
        let lag = Instant::now().saturating_duration_since(intended);
        shared
            .metrics
            .schedule_lag_seconds
            .observe(lag.as_secs_f64());
        shared.stats.record(Series::ScheduleLag, lag);
        shared.metrics.in_flight_requests.inc();
        shared.signals.requests_sent.fetch_add(1, Ordering::Relaxed);
        let (body, tag) = shared.body(i, rng);
        batch.push(Due {
            permit,
            scenario: i,
            body,
            tag,
            cancel: cancel_for(sc.scenario.cancel.as_ref(), rng),
            intended,
            phase,
        });
    }

    /// Spawns the due requests on the load runtime: one hand-over for the whole batch, whose
    /// task then spawns each request from inside the runtime.
    fn flush(&self, batch: &mut Vec<Due>) {
        match batch.len() {
            0 => {}
            1 => {
                let due = batch.pop().expect("one request");
                self.tracker.spawn_on(
                    request_task(self.shared.clone(), due, self.abort.clone()),
                    &self.handle,
                );
            }
            _ => {
                let dues = std::mem::replace(batch, Vec::with_capacity(64));
                let (shared, abort, tracker) = (
                    self.shared.clone(),
                    self.abort.clone(),
                    self.tracker.clone(),
                );
                self.tracker.spawn_on(
                    async move {
                        for due in dues {
                            tracker.spawn(request_task(shared.clone(), due, abort.clone()));
                        }
                    },
                    &self.handle,
                );
            }
        }
    }
}

/// Shortest pacer sleep: arrivals closer than this to the previous wake-up wait for the next
/// one, which bounds wake-ups at 5,000 a second and adds at most 200 µs of schedule lag.
const MIN_WAKE: Duration = Duration::from_micros(200);

/// A request whose send time has come, with its in-flight permit.
struct Due {
    permit: tokio::sync::OwnedSemaphorePermit,
    scenario: usize,
    body: bytes::Bytes,
    tag: Option<Tag>,
    cancel: Option<crate::client::CancelAt>,
    intended: Instant,
    phase: Phase,
}

async fn request_task(shared: Arc<Shared>, due: Due, abort: CancellationToken) {
    let Due {
        permit,
        scenario,
        body,
        tag,
        cancel,
        intended,
        phase,
    } = due;
    let request = Request {
        scenario,
        body,
        tag,
        intended,
        phase,
        cancel,
    };
    send(&shared, request, &abort).await;
    shared.metrics.in_flight_requests.dec();
    drop(permit);
}

/// One request, ready to send.
struct Request {
    scenario: usize,
    body: bytes::Bytes,
    tag: Option<Tag>,
    intended: Instant,
    phase: Phase,
    cancel: Option<crate::client::CancelAt>,
}

impl Shared {
    /// A body for scenario `i`, carrying a new soakd id while the two-sided soak is on.
    fn body(&self, i: usize, rng: &mut SmallRng) -> (bytes::Bytes, Option<Tag>) {
        let template = &self.scenarios[i].template;
        match &self.two_sided {
            Some(t) => {
                let id = t.next_id();
                let body = template.body_tagged(rng, Some(&marker::id_tag(id)));
                (body, Some(Tag { id, scenario: i }))
            }
            None => (template.body(rng), None),
        }
    }
}

/// Sends one request; the exchange records it, an abort included (as cancelled).
async fn send(shared: &Shared, r: Request, abort: &CancellationToken) {
    let Request {
        scenario: i,
        body,
        tag,
        intended,
        phase,
        cancel,
    } = r;
    let sc = &shared.scenarios[i];
    let exchange = Exchange {
        client: &shared.client,
        spec: &sc.spec,
        settings: &shared.settings,
        metrics: &sc.metrics,
        tracker: shared.two_sided.as_deref(),
        open_streams: Some(&shared.signals.streams_open),
    };
    let span = if shared.trace_requests {
        tracing::info_span!(
            parent: None,
            "request",
            scenario = %sc.scenario.name,
            api = sc.scenario.api.as_str(),
            phase = phase.as_str(),
            outcome = tracing::field::Empty,
        )
    } else {
        tracing::Span::none()
    };
    let report = tracing::Instrument::instrument(
        exchange.execute(body, intended, phase, cancel, abort, tag),
        span.clone(),
    )
    .await;
    span.record("outcome", report.outcome.as_str());
    shared.signals.finish(i);
}

/// One closed-model user: request → think time, until stopped.
async fn closed_user(
    shared: Arc<Shared>,
    plan: ClosedPlan,
    user: u32,
    start: Instant,
    seed: u64,
    stop: CancellationToken,
    abort: CancellationToken,
) {
    let mut rng = SmallRng::seed_from_u64(seed);
    let mut mix = shared.mix.cursor();
    let begin = start + plan.start_of(user);
    tokio::select! {
        _ = tokio::time::sleep_until(begin) => {}
        _ = stop.cancelled() => return,
    }
    while !stop.is_cancelled() {
        let i = mix.pick(&mut rng, start.elapsed());
        let sc = &shared.scenarios[i];
        let (body, tag) = shared.body(i, &mut rng);
        let cancel = cancel_for(sc.scenario.cancel.as_ref(), &mut rng);
        let phase = plan.phase_at(start.elapsed());
        let intended = Instant::now();
        shared.metrics.in_flight_requests.inc();
        shared.signals.requests_sent.fetch_add(1, Ordering::Relaxed);
        let request = Request {
            scenario: i,
            body,
            tag,
            intended,
            phase,
            cancel,
        };
        send(&shared, request, &abort).await;
        shared.metrics.in_flight_requests.dec();
        if !plan.think_time.is_zero() {
            tokio::select! {
                _ = tokio::time::sleep(plan.think_time) => {}
                _ = stop.cancelled() => return,
            }
        }
    }
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
